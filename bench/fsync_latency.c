/* fsync_latency: the latency floor of one durable commit on this disk, measured in the same run
 * as the journal's ack latency (research/perf.md §2.2, goals A2/A3).
 *
 * COUNT times: write 4 KiB at the end of the file, fdatasync, take the time of both together.
 * Two files: one that grows (every commit also commits a size change to the ext4 journal) and
 * one pre-zeroed and synced first, then overwritten (what pre-allocated segments cost).
 *
 *   fsync_latency [--dir DIR] [--count N] [--size BYTES] [--max-seconds S]
 *
 * Prints JSON lines in bench/run.sh's format, e.g.
 *   {"bench":"fsync_latency","metric":"append_p50","value":175.0,"unit":"us","limit":null}
 * with p50, p90, p99, p999, max and commits_per_s for each of "append" and "overwrite".
 * Exit 0 on success, 1 on an I/O error, 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct config {
    const char *dir;
    long count;
    long size;
    double max_seconds;
};

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const double *v, long n, double p)
{
    long rank = (long)(p / 100.0 * (double)n + 0.999999);

    if (rank < 1) {
        rank = 1;
    }
    if (rank > n) {
        rank = n;
    }
    return v[rank - 1];
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

static void print_metric(const char *mode, const char *metric, double value, const char *unit)
{
    printf("{\"bench\":\"fsync_latency\",\"metric\":\"%s_%s\",\"value\":%.1f,\"unit\":\"%s\","
           "\"limit\":null}\n",
           mode, metric, value, unit);
}

/* Measures one file; lat must hold cfg->count doubles. */
static int measure(const struct config *cfg, int overwrite, const unsigned char *buf, double *lat)
{
    const char *mode = overwrite ? "overwrite" : "append";
    char path[4096];
    long done = 0;
    double start;
    double total;
    int fd;
    int rc = -1;

    if (snprintf(path, sizeof(path), "%s/fsync_latency.%ld.tmp", cfg->dir, (long)getpid()) >=
        (int)sizeof(path)) {
        fprintf(stderr, "fsync_latency: --dir is too long\n");
        return -1;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "fsync_latency: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (overwrite) {
        unsigned char *zeros = calloc(1, (size_t)cfg->size);
        int bad = zeros == NULL;
        for (long i = 0; i < cfg->count && !bad; i++) {
            bad = write_all(fd, zeros, (size_t)cfg->size) != 0;
        }
        free(zeros);
        if (bad || fdatasync(fd) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
            fprintf(stderr, "fsync_latency: pre-zeroing %s: %s\n", path, strerror(errno));
            goto out;
        }
    }

    start = now_us();
    while (done < cfg->count) {
        double t0 = now_us();
        if (write_all(fd, buf, (size_t)cfg->size) != 0 || fdatasync(fd) != 0) {
            fprintf(stderr, "fsync_latency: %s: %s\n", path, strerror(errno));
            goto out;
        }
        lat[done++] = now_us() - t0;
        if (lat[done - 1] + t0 - start > cfg->max_seconds * 1e6) {
            break;
        }
    }
    total = now_us() - start;

    qsort(lat, (size_t)done, sizeof(lat[0]), cmp_double);
    print_metric(mode, "p50", percentile(lat, done, 50.0), "us");
    print_metric(mode, "p90", percentile(lat, done, 90.0), "us");
    print_metric(mode, "p99", percentile(lat, done, 99.0), "us");
    print_metric(mode, "p999", percentile(lat, done, 99.9), "us");
    print_metric(mode, "max", lat[done - 1], "us");
    print_metric(mode, "commits_per_s", (double)done / (total / 1e6), "1/s");
    fflush(stdout);
    rc = 0;
out:
    close(fd);
    unlink(path);
    return rc;
}

static int parse_long(const char *opt, const char *val, long max, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(val, &end, 10);
    if (errno != 0 || end == val || *end != '\0' || v <= 0 || v > max) {
        fprintf(stderr, "fsync_latency: %s needs a number from 1 to %ld, not '%s'\n", opt, max,
                val);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            printf("usage: fsync_latency [--dir DIR] [--count N] [--size BYTES] "
                   "[--max-seconds S]\n");
            exit(0);
        }
        if (val == NULL) {
            fprintf(stderr, "fsync_latency: %s needs a value\n", opt);
            return -1;
        }
        i++;
        if (strcmp(opt, "--dir") == 0) {
            cfg->dir = val;
        } else if (strcmp(opt, "--count") == 0) {
            if (parse_long(opt, val, 10000000, &cfg->count) != 0) {
                return -1;
            }
        } else if (strcmp(opt, "--size") == 0) {
            if (parse_long(opt, val, 64L * 1024 * 1024, &cfg->size) != 0) {
                return -1;
            }
        } else if (strcmp(opt, "--max-seconds") == 0) {
            char *end = NULL;
            cfg->max_seconds = strtod(val, &end);
            if (end == val || *end != '\0' || !(cfg->max_seconds > 0)) {
                fprintf(stderr, "fsync_latency: --max-seconds needs a positive number\n");
                return -1;
            }
        } else {
            fprintf(stderr, "fsync_latency: unknown option '%s'\n", opt);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct config cfg = {.dir = ".", .count = 16384, .size = 4096, .max_seconds = 15.0};
    unsigned char *buf;
    double *lat;
    int rc = 1;

    if (parse_args(argc, argv, &cfg) != 0) {
        return 2;
    }
    buf = malloc((size_t)cfg.size);
    lat = malloc((size_t)cfg.count * sizeof(*lat));
    if (buf == NULL || lat == NULL) {
        fprintf(stderr, "fsync_latency: out of memory\n");
        goto out;
    }
    for (long i = 0; i < cfg.size; i++) {
        buf[i] = (unsigned char)(i * 2654435761u >> 13);
    }
    if (measure(&cfg, 0, buf, lat) != 0 || measure(&cfg, 1, buf, lat) != 0) {
        goto out;
    }
    rc = 0;
out:
    free(lat);
    free(buf);
    return rc;
}
