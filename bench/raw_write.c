/* raw_write: the physical limit for the journal's append benchmark, measured in the same run.
 *
 * A plain loop writes 100-byte records, packed into CHUNK-byte write() calls, to a new file and
 * calls fdatasync every SYNC_EVERY bytes (0 = only once at the end). This is what any append-only
 * log on this disk can at best do with the same sync policy, so the journal's numbers are
 * reported as a fraction of it (bench/run.sh). Modes:
 *   append     the file grows: every sync also commits a size change to the ext4 journal;
 *   overwrite  the file is written with zeros and synced first, then overwritten: what a log
 *              that pre-allocates and pre-zeroes its segments can reach (research/perf.md §2.2).
 *
 *   raw_write [--dir DIR] [--bytes N] [--chunk N] [--record N] [--sync-every N]
 *             [--mode append|overwrite] [--max-seconds S]
 * Sizes accept K/M/G suffixes (powers of 1024). Without --sync-every (and --mode) it runs the
 * default suite: append with sync every 1 MiB, every 64 KiB and only at the end, and overwrite
 * with sync every 1 MiB. Each configuration prints JSON lines in bench/run.sh's format:
 *   {"bench":"raw_write","metric":"append_sync_1MiB_mib_per_s","value":...,"unit":"MiB/s",
 *    "limit":null}
 * (also _records_per_s, the 100-byte-record equivalent, and _syncs_per_s when it syncs).
 * The file is deleted afterwards. Exit 0 on success, 1 on an I/O error, 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)

struct config {
    const char *dir;
    long long bytes;
    long long chunk;
    long long record;
    long long sync_every;
    int overwrite;
    double max_seconds;
};

struct result {
    long long written;
    long long syncs;
    double seconds;
};

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parses "123", "64K", "1M", "1G"; returns -1 when the text is not a positive size. */
static long long parse_size(const char *text)
{
    char *end = NULL;
    long long mult = 1;
    long long v;

    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || v < 0) {
        return -1;
    }
    if (*end == 'K' || *end == 'k') {
        mult = 1024;
        end++;
    } else if (*end == 'M' || *end == 'm') {
        mult = 1024 * 1024;
        end++;
    } else if (*end == 'G' || *end == 'g') {
        mult = 1024LL * 1024 * 1024;
        end++;
    }
    if (*end != '\0' || v > INT64_MAX / mult) {
        return -1;
    }
    return v * mult;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: raw_write [--dir DIR] [--bytes N] [--chunk N] [--record N]\n"
                 "                 [--sync-every N] [--mode append|overwrite] [--max-seconds S]\n");
}

/* Fills buf with 100-byte (record-sized) records: a sequence number and pseudo-random bytes, so
 * that nothing below us can compress or deduplicate the data. */
static void fill_records(unsigned char *buf, size_t len, size_t record)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    uint64_t seq = 0;

    for (size_t off = 0; off < len; off += record) {
        size_t n = record < len - off ? record : len - off;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[off + i] = (unsigned char)x;
        }
        memcpy(buf + off, &seq, n < sizeof(seq) ? n : sizeof(seq));
        seq++;
    }
}

static int write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes cfg->bytes of zeros and syncs, so the measured pass overwrites allocated blocks. */
static int prezero(int fd, const struct config *cfg)
{
    unsigned char *zeros = calloc(1, (size_t)cfg->chunk);
    int rc = -1;

    if (zeros == NULL) {
        return -1;
    }
    for (long long done = 0; done < cfg->bytes; done += cfg->chunk) {
        long long n = cfg->bytes - done < cfg->chunk ? cfg->bytes - done : cfg->chunk;
        if (write_all(fd, zeros, (size_t)n) != 0) {
            goto out;
        }
    }
    if (fdatasync(fd) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
        goto out;
    }
    rc = 0;
out:
    free(zeros);
    return rc;
}

static int run_once(const struct config *cfg, const unsigned char *buf, struct result *res)
{
    char path[4096];
    long long written = 0;
    long long since_sync = 0;
    long long syncs = 0;
    double start;
    double elapsed;
    int fd;
    int rc = -1;

    if (snprintf(path, sizeof(path), "%s/raw_write.%ld.tmp", cfg->dir, (long)getpid()) >=
        (int)sizeof(path)) {
        fprintf(stderr, "raw_write: --dir is too long\n");
        return -1;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "raw_write: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (cfg->overwrite && prezero(fd, cfg) != 0) {
        fprintf(stderr, "raw_write: pre-zeroing %s: %s\n", path, strerror(errno));
        goto out;
    }

    start = now_seconds();
    while (written < cfg->bytes) {
        long long n = cfg->bytes - written < cfg->chunk ? cfg->bytes - written : cfg->chunk;
        if (write_all(fd, buf, (size_t)n) != 0) {
            fprintf(stderr, "raw_write: write %s: %s\n", path, strerror(errno));
            goto out;
        }
        written += n;
        since_sync += n;
        if (cfg->sync_every > 0 && since_sync >= cfg->sync_every) {
            if (fdatasync(fd) != 0) {
                fprintf(stderr, "raw_write: fdatasync %s: %s\n", path, strerror(errno));
                goto out;
            }
            syncs++;
            since_sync = 0;
            /* Checking the clock only at syncs keeps it off the write loop. */
            if (now_seconds() - start > cfg->max_seconds) {
                break;
            }
        } else if (cfg->sync_every == 0 && (written % (64 * cfg->chunk)) == 0 &&
                   now_seconds() - start > cfg->max_seconds) {
            break;
        }
    }
    if (since_sync > 0 || cfg->sync_every == 0) {
        if (fdatasync(fd) != 0) {
            fprintf(stderr, "raw_write: fdatasync %s: %s\n", path, strerror(errno));
            goto out;
        }
        syncs++;
    }
    elapsed = now_seconds() - start;
    res->written = written;
    res->syncs = syncs;
    res->seconds = elapsed;
    rc = 0;
out:
    close(fd);
    unlink(path);
    return rc;
}

static void size_name(long long bytes, char *out, size_t len)
{
    if (bytes == 0) {
        snprintf(out, len, "end");
    } else if (bytes % (1024 * 1024) == 0) {
        snprintf(out, len, "%lldMiB", bytes / (1024 * 1024));
    } else if (bytes % 1024 == 0) {
        snprintf(out, len, "%lldKiB", bytes / 1024);
    } else {
        snprintf(out, len, "%lldB", bytes);
    }
}

static void print_metric(const char *name, const char *metric, double value, const char *unit)
{
    printf("{\"bench\":\"raw_write\",\"metric\":\"%s_%s\",\"value\":%.1f,\"unit\":\"%s\","
           "\"limit\":null}\n",
           name, metric, value, unit);
}

static int run_config(const struct config *cfg, const unsigned char *buf)
{
    struct result res;
    char sync_name[32];
    char name[64];

    if (run_once(cfg, buf, &res) != 0) {
        return -1;
    }
    size_name(cfg->sync_every, sync_name, sizeof(sync_name));
    snprintf(name, sizeof(name), "%s_sync_%s", cfg->overwrite ? "overwrite" : "append", sync_name);
    print_metric(name, "mib_per_s", (double)res.written / MIB / res.seconds, "MiB/s");
    if (cfg->sync_every > 0) {
        print_metric(name, "syncs_per_s", (double)res.syncs / res.seconds, "1/s");
    }
    print_metric(name, "records_per_s", (double)res.written / (double)cfg->record / res.seconds,
                 "rec/s");
    fflush(stdout);
    return 0;
}

static int parse_args(int argc, char **argv, struct config *cfg, int *suite)
{
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        long long *size_out = NULL;

        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (val == NULL) {
            fprintf(stderr, "raw_write: %s needs a value\n", opt);
            return -1;
        }
        i++;
        if (strcmp(opt, "--dir") == 0) {
            cfg->dir = val;
        } else if (strcmp(opt, "--bytes") == 0) {
            size_out = &cfg->bytes;
        } else if (strcmp(opt, "--chunk") == 0) {
            size_out = &cfg->chunk;
        } else if (strcmp(opt, "--record") == 0) {
            size_out = &cfg->record;
        } else if (strcmp(opt, "--sync-every") == 0) {
            size_out = &cfg->sync_every;
            *suite = 0;
        } else if (strcmp(opt, "--mode") == 0) {
            if (strcmp(val, "append") != 0 && strcmp(val, "overwrite") != 0) {
                fprintf(stderr, "raw_write: --mode must be append or overwrite, not '%s'\n", val);
                return -1;
            }
            cfg->overwrite = strcmp(val, "overwrite") == 0;
            *suite = 0;
        } else if (strcmp(opt, "--max-seconds") == 0) {
            char *end = NULL;
            cfg->max_seconds = strtod(val, &end);
            if (end == val || *end != '\0' || !(cfg->max_seconds > 0)) {
                fprintf(stderr, "raw_write: --max-seconds needs a positive number\n");
                return -1;
            }
        } else {
            fprintf(stderr, "raw_write: unknown option '%s'\n", opt);
            return -1;
        }
        if (size_out != NULL && (*size_out = parse_size(val)) < 0) {
            fprintf(stderr, "raw_write: %s: '%s' is not a size\n", opt, val);
            return -1;
        }
    }
    if (cfg->chunk <= 0 || cfg->record <= 0 || cfg->bytes <= 0 || cfg->chunk > (1LL << 30)) {
        fprintf(stderr, "raw_write: --bytes, --chunk (<= 1G) and --record must be > 0\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct config cfg = {
        .dir = ".",
        .bytes = 512LL * 1024 * 1024,
        .chunk = 64 * 1024,
        .record = 100,
        .sync_every = 1024 * 1024,
        .overwrite = 0,
        .max_seconds = 15.0,
    };
    static const struct {
        long long sync_every;
        int overwrite;
    } suite_configs[] = {
        {1024 * 1024, 0},
        {64 * 1024, 0},
        {0, 0},
        {1024 * 1024, 1},
    };
    int suite = 1;
    unsigned char *buf;
    int rc = 0;

    if (parse_args(argc, argv, &cfg, &suite) != 0) {
        usage(stderr);
        return 2;
    }
    buf = malloc((size_t)cfg.chunk);
    if (buf == NULL) {
        fprintf(stderr, "raw_write: out of memory\n");
        return 1;
    }
    fill_records(buf, (size_t)cfg.chunk, (size_t)cfg.record);
    if (!suite) {
        rc = run_config(&cfg, buf);
    } else {
        for (size_t i = 0; i < sizeof(suite_configs) / sizeof(suite_configs[0]) && rc == 0; i++) {
            cfg.sync_every = suite_configs[i].sync_every;
            cfg.overwrite = suite_configs[i].overwrite;
            rc = run_config(&cfg, buf);
        }
    }
    free(buf);
    return rc == 0 ? 0 : 1;
}
