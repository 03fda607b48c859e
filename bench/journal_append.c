/* Journal append and read throughput, each next to the physical limit measured in the same run.
 *
 * For each fsync policy (always, interval, never):
 *   - append RECORDS records of 100 bytes into one partition, in batches of BATCH records, keeping
 *     several batches in flight so group commit can merge them; time from the first append to the
 *     last acknowledgement (every record is durably acknowledged under always/interval);
 *   - CPU per record: user+system time of the whole process (producer + writer thread) / records;
 *   - the raw limit at the same cadence: a plain write()+fdatasync() loop over the same number of
 *     bytes, syncing every (bytes written / fdatasyncs) of the journal run, in the same directory.
 * Then read every record back with a reader (page cache warm) against a plain sequential read()
 * of the same number of bytes, with memcpy bandwidth for reference.
 * Also the framing cost alone: encoding 100-byte records into batches plus CRC-32C, no I/O.
 *
 * Output: JSON lines for bench/run.sh ({"bench","metric","value","unit","limit"}).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "millrace/clock.h"
#include "millrace/journal.h"

#define RECORD_BYTES    100
#define BATCH_RECORDS   2000
#define IN_FLIGHT_BYTES (16u * 1024u * 1024u)

struct cfg {
    const char *dir;
    long records;
};

struct acks {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t records;
    int error;
};

static void on_ack(void *arg, int status, uint32_t partition, int64_t base, uint32_t count)
{
    struct acks *a = arg;
    (void)partition;
    (void)base;
    pthread_mutex_lock(&a->lock);
    if (status != 0 && a->error == 0) {
        a->error = status;
    }
    a->records += count;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void emit(const char *metric, double value, const char *unit, const char *limit)
{
    printf("{\"bench\":\"journal_append\",\"metric\":\"%s\",\"value\":%.6g,\"unit\":\"%s\","
           "\"limit\":%s}\n",
           metric, value, unit, limit);
    fflush(stdout);
}

/* Build one batch of `n` 100-byte records (timestamps advance 1 ms per batch). */
static int build_batch(struct mr_batch_builder *b, int64_t ts, long first, int n,
                       const uint8_t **data, size_t *len)
{
    uint8_t value[RECORD_BYTES];
    mr_batch_builder_reset(b);
    for (int i = 0; i < n; i++) {
        long id = first + i;
        memset(value, 'a' + (int)(id % 26), sizeof(value));
        memcpy(value, &id, sizeof(id));
        int rc = mr_batch_builder_add(b, ts, NULL, -1, value, RECORD_BYTES, NULL, 0);
        if (rc != 0) {
            return rc;
        }
    }
    return mr_batch_builder_finish(b, data, len);
}

/* Plain sequential read() of a whole file in `chunk`-byte reads (page cache warm). */
static double raw_read_mib_s(const char *path, uint8_t *buf, size_t chunk)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return -1;
    }
    uint64_t total = 0;
    int64_t t0 = mr_clock_mono_ns();
    ssize_t n;
    while ((n = read(fd, buf, chunk)) > 0) {
        total += (uint64_t)n;
    }
    double secs = (double)(mr_clock_mono_ns() - t0) / 1e9;
    close(fd);
    return (double)total / (1024.0 * 1024.0) / secs;
}

/* The raw limit: write `total` bytes in `chunk`-byte writes with fdatasync every `sync_every`.
 * With read_mib_s, the file is then read back sequentially: the raw limit for reading. */
static double raw_write_mib_s(const char *dir, uint64_t total, size_t chunk, uint64_t sync_every,
                              double *read_mib_s)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/raw.%ld", dir, (long)getpid()) >= (int)sizeof(path)) {
        return -1;
    }
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) {
        return -1;
    }
    uint8_t *buf = malloc(chunk);
    memset(buf, 'r', chunk);
    int64_t t0 = mr_clock_mono_ns();
    uint64_t written = 0, since_sync = 0;
    while (written < total) {
        size_t n = total - written < chunk ? (size_t)(total - written) : chunk;
        if (write(fd, buf, n) != (ssize_t)n) {
            break;
        }
        written += n;
        since_sync += n;
        if (since_sync >= sync_every) {
            fdatasync(fd);
            since_sync = 0;
        }
    }
    if (sync_every != UINT64_MAX) { /* `never` is compared with a loop that never syncs */
        fdatasync(fd);
    }
    double secs = (double)(mr_clock_mono_ns() - t0) / 1e9;
    close(fd);
    if (read_mib_s != NULL) {
        *read_mib_s = raw_read_mib_s(path, buf, chunk);
    }
    unlink(path);
    free(buf);
    return (double)written / (1024.0 * 1024.0) / secs;
}

static int run_policy(const struct cfg *c, enum mr_journal_fsync policy)
{
    char dir[4000];
    if (snprintf(dir, sizeof(dir), "%s/journal-%s", c->dir, mr_journal_fsync_name(policy)) >=
        (int)sizeof(dir)) {
        fprintf(stderr, "journal_append: --dir is too long\n");
        return 1;
    }
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = dir;
    o.fsync = policy;
    o.queue_max_bytes = IN_FLIGHT_BYTES;
    o.max_batch_bytes = 4u * 1024u * 1024u;
    struct mr_journal *j;
    struct mr_journal_topic *t;
    struct mr_err err = {0};
    if (mr_journal_open(&o, &j, NULL, &err) != 0 ||
        mr_journal_topic_create(j, "bench", 1, NULL, &t, &err) != 0) {
        fprintf(stderr, "journal_append: %s\n", err.msg);
        return 1;
    }
    size_t cap = (size_t)BATCH_RECORDS * (RECORD_BYTES + 16) + MR_BATCH_HEADER_SIZE;
    uint8_t *buf = malloc(cap);
    struct mr_batch_builder b;
    mr_batch_builder_init(&b, buf, cap);
    struct acks a = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    double cpu0 = cpu_seconds();
    int64_t t0 = mr_clock_mono_ns();
    int rc = 0;
    for (long sent = 0; sent < c->records && rc == 0; sent += BATCH_RECORDS) {
        int n = (int)(c->records - sent < BATCH_RECORDS ? c->records - sent : BATCH_RECORDS);
        const uint8_t *data;
        size_t len;
        rc = build_batch(&b, 1700000000000LL + sent / BATCH_RECORDS, sent, n, &data, &len);
        if (rc == 0) {
            /* copies the batch; blocks while IN_FLIGHT_BYTES are unacknowledged */
            rc = mr_journal_append(t, 0, (void *)data, len, 0, on_ack, &a);
        }
    }
    pthread_mutex_lock(&a.lock);
    while (rc == 0 && a.records < (uint64_t)c->records && a.error == 0) {
        pthread_cond_wait(&a.cond, &a.lock);
    }
    pthread_mutex_unlock(&a.lock);
    double secs = (double)(mr_clock_mono_ns() - t0) / 1e9;
    double cpu = cpu_seconds() - cpu0;
    struct mr_journal_stats st;
    mr_journal_stats(j, &st);
    if (rc != 0 || a.error != 0) {
        fprintf(stderr, "journal_append: append failed: %s\n", mr_strerror(rc ? rc : a.error));
        return 1;
    }
    double rps = (double)c->records / secs;
    double mib_s = (double)st.bytes_written / (1024.0 * 1024.0) / secs;
    uint64_t cadence = st.syncs > 0 ? st.bytes_written / st.syncs : st.bytes_written;
    const char *p = mr_journal_fsync_name(policy);
    char metric[128], limit[64];
    snprintf(metric, sizeof(metric), "append_%s_records_per_s", p);
    emit(metric, rps, "records/s", "null");
    snprintf(metric, sizeof(metric), "append_%s_cpu_ns_per_record", p);
    emit(metric, cpu * 1e9 / (double)c->records, "ns", "500");
    snprintf(metric, sizeof(metric), "append_%s_bytes_per_fdatasync", p);
    emit(metric, (double)cadence, "bytes", "null");
    /* The raw loop writes the same bytes in the same directory, syncing at the same cadence
     * (or once at the end for `never`). */
    uint64_t every = policy == MR_JOURNAL_FSYNC_NEVER ? UINT64_MAX : cadence;
    double raw_read = -1;
    double raw = raw_write_mib_s(dir, st.bytes_written, 256 * 1024, every,
                                 policy == MR_JOURNAL_FSYNC_ALWAYS ? &raw_read : NULL);
    snprintf(metric, sizeof(metric), "raw_write_same_cadence_%s_mib_per_s", p);
    emit(metric, raw, "MiB/s", "null");
    snprintf(metric, sizeof(metric), "append_%s_mib_per_s", p);
    snprintf(limit, sizeof(limit), "\"journal_append.raw_write_same_cadence_%s_mib_per_s\"", p);
    emit(metric, mib_s, "MiB/s", limit);
    /* The ratio within this run: the disk is shared and noisy, so a ratio of two medians taken
     * from different runs says less than the median of per-run ratios. */
    snprintf(metric, sizeof(metric), "append_%s_percent_of_raw_same_run", p);
    emit(metric, raw > 0 ? 100.0 * mib_s / raw : 0, "%", "null");

    if (policy == MR_JOURNAL_FSYNC_ALWAYS) {
        /* Read everything back (page cache warm) against a plain sequential read() of a file
         * of the same size, and memcpy bandwidth for reference. */
        emit("raw_read_same_bytes_mib_per_s", raw_read, "MiB/s", "null");
        struct mr_journal_reader *r;
        mr_journal_reader_create(t, 0, MR_JOURNAL_EARLIEST, &r);
        struct mr_batch_record rec;
        uint64_t n = 0, bytes = 0;
        t0 = mr_clock_mono_ns();
        while (mr_journal_reader_next(r, &rec) == 0) {
            n++;
            bytes += (uint64_t)rec.value_len;
        }
        secs = (double)(mr_clock_mono_ns() - t0) / 1e9;
        mr_journal_reader_destroy(r);
        if (n != (uint64_t)c->records) {
            fprintf(stderr, "journal_append: read %" PRIu64 " of %ld records\n", n, c->records);
            return 1;
        }
        emit("read_records_per_s", (double)n / secs, "records/s", "null");
        double read_mib_s = (double)st.bytes_written / (1024.0 * 1024.0) / secs;
        emit("read_mib_per_s", read_mib_s, "MiB/s",
             "\"journal_append.raw_read_same_bytes_mib_per_s\"");
        emit("read_percent_of_raw_same_run", raw_read > 0 ? 100.0 * read_mib_s / raw_read : 0, "%",
             "null");
    }
    mr_journal_close(j);
    free(buf);
    return 0;
}

static void bench_memcpy(void)
{
    size_t n = 256u * 1024u * 1024u;
    char *a = malloc(n), *b = malloc(n);
    memset(a, 1, n);
    memset(b, 2, n);
    int64_t t0 = mr_clock_mono_ns();
    for (int i = 0; i < 4; i++) {
        memcpy(b, a, n);
        a[i] = b[n - 1 - (size_t)i];
    }
    double secs = (double)(mr_clock_mono_ns() - t0) / 1e9;
    emit("memcpy_mib_per_s", 4.0 * (double)n / (1024.0 * 1024.0) / secs, "MiB/s", "null");
    free(a);
    free(b);
}

/* Framing alone: records encoded into batches, CRC-32C computed; no I/O, no threads. */
static void bench_framing(void)
{
    size_t cap = (size_t)BATCH_RECORDS * (RECORD_BYTES + 16) + MR_BATCH_HEADER_SIZE;
    uint8_t *buf = malloc(cap);
    struct mr_batch_builder b;
    mr_batch_builder_init(&b, buf, cap);
    const long total = 5000000;
    double cpu0 = cpu_seconds();
    for (long sent = 0; sent < total; sent += BATCH_RECORDS) {
        const uint8_t *data;
        size_t len;
        build_batch(&b, 1700000000000LL, sent, BATCH_RECORDS, &data, &len);
    }
    double cpu = cpu_seconds() - cpu0;
    emit("framing_cpu_ns_per_record", cpu * 1e9 / (double)total, "ns", "500");
    free(buf);
}

int main(int argc, char **argv)
{
    struct cfg c = {.dir = ".", .records = 5000000};
    static const struct option longopts[] = {{"dir", required_argument, NULL, 'd'},
                                             {"records", required_argument, NULL, 'n'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 'd') {
            c.dir = optarg;
        } else if (ch == 'n') {
            c.records = strtol(optarg, NULL, 10);
        } else {
            fprintf(stderr, "usage: journal_append [--dir DIR] [--records N]\n");
            return 2;
        }
    }
    if (c.records <= 0) {
        fprintf(stderr, "journal_append: --records must be positive\n");
        return 2;
    }
    bench_memcpy();
    bench_framing();
    static const enum mr_journal_fsync policies[] = {
        MR_JOURNAL_FSYNC_ALWAYS, MR_JOURNAL_FSYNC_INTERVAL, MR_JOURNAL_FSYNC_NEVER};
    for (size_t i = 0; i < 3; i++) {
        if (run_policy(&c, policies[i]) != 0) {
            return 1;
        }
    }
    return 0;
}
