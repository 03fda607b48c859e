/* pipeline_throughput: a whole pipeline on one core, journal to journal: read and decode the
 * input topic, per-asset watermarks, a keyed 1 s tumbling window (count/sum/min/max/mean),
 * encode and append the results (fsync: never, so the disk is not what is measured).
 *
 * Phase 1 fills topic "src" with N records (keys = assets x 10 signals, random order, 8 s of
 * event time) straight through the journal API; phase 2 runs the engine with only the pipeline
 * and measures the time until it has read all N records. The limit, in the same `make bench`:
 * the window operator alone on the same kind of records (window_throughput), so the ratio is
 * what the journal, decoding and the pipeline loop cost on top.
 *
 *   pipeline_throughput [--dir DIR] [--records N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/topic_writer.h"
#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/engine.h"
#include "millrace/journal.h"

#define SIGNALS 10

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int fill(const char *dir, size_t n, uint32_t keys)
{
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = dir;
    o.fsync = MR_JOURNAL_FSYNC_NEVER;
    struct mr_journal *j = NULL;
    struct mr_err err;
    if (mr_journal_open(&o, &j, NULL, &err) != 0) {
        fprintf(stderr, "pipeline_throughput: %s\n", err.msg);
        return -1;
    }
    struct mr_journal_topic *t = NULL;
    struct mr_names *names = NULL;
    mr_names_create(&names, 4000000, 128u << 20);
    if (mr_journal_topic_create(j, "src", 1, NULL, &t, &err) != 0) {
        fprintf(stderr, "pipeline_throughput: %s\n", err.msg);
        return -1;
    }
    struct mr_topic_writer w;
    mr_topic_writer_init(&w, t, names, 1u << 20);
    uint32_t assets = keys / SIGNALS;
    mr_name_id *aid = calloc(assets, sizeof(mr_name_id));
    mr_name_id sid[SIGNALS];
    char buf[64];
    for (uint32_t a = 0; a < assets; a++) {
        int len = snprintf(buf, sizeof(buf), "site/area/line%u/m%u", a % 20, a);
        mr_names_intern(names, buf, (size_t)len, &aid[a]);
    }
    for (int s = 0; s < SIGNALS; s++) {
        int len = snprintf(buf, sizeof(buf), "signal%d", s);
        mr_names_intern(names, buf, (size_t)len, &sid[s]);
    }
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t r = xorshift(&seed);
        uint32_t k = (uint32_t)(r % keys);
        struct mr_record rec;
        memset(&rec, 0, sizeof(rec));
        rec.asset = aid[k / SIGNALS];
        rec.signal = sid[k % SIGNALS];
        rec.time_ns = 1764000000000000000LL + (int64_t)((double)i / (double)n * 8e9);
        rec.type = MR_VALUE_F64;
        rec.v.f64 = (double)(r >> 11) / (double)(1ull << 53) * 100.0;
        rc = mr_topic_writer_add(&w, &rec);
    }
    if (rc == 0) {
        rc = mr_topic_writer_sync(&w);
    }
    mr_topic_writer_fini(&w);
    free(aid);
    mr_names_destroy(names);
    mr_journal_close(j);
    return rc;
}

/* The pipeline's records_in counter, read from the metrics text. */
static uint64_t records_in(struct mr_engine *e)
{
    static char buf[1 << 20];
    size_t needed = 0;
    if (mr_metrics_render(mr_engine_metrics(e), buf, sizeof(buf), &needed) < 0) {
        return 0;
    }
    const char *key = "millrace_pipeline_records_in_total{pipeline=\"p\"} ";
    const char *at = strstr(buf, key);
    return at != NULL ? strtoull(at + strlen(key), NULL, 10) : 0;
}

static double run(const char *dir, size_t n, uint32_t keys)
{
    if (fill(dir, n, keys) != 0) {
        return -1;
    }
    char yaml[8192];
    snprintf(yaml, sizeof(yaml),
             "journal: {dir: %s, fsync: never}\n"
             "http: {listen: \"127.0.0.1:0\"}\n"
             "pipelines:\n  p:\n    from: [src]\n    out_of_orderness: 100ms\n"
             "    checkpoint_interval: 1s\n    steps:\n"
             "      - {type: window, kind: tumbling, size: 1s, "
             "aggregates: [count, sum, min, max, mean], max_keys: 2000000}\n"
             "    to: [results]\n",
             dir);
    static struct mr_config_errors errs;
    struct mr_config *cfg = NULL;
    if (mr_config_load_buffer(&cfg, "bench.yaml", yaml, strlen(yaml), NULL, &errs) != 0) {
        fprintf(stderr, "pipeline_throughput: %s\n", errs.msg[0]);
        return -1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mr_engine *e = NULL;
    struct mr_err err;
    if (mr_engine_create(&e, cfg, &loop, &err) != 0) {
        fprintf(stderr, "pipeline_throughput: %s\n", err.msg);
        return -1;
    }
    int64_t start = mr_clock_mono_ns();
    if (mr_engine_start(e, &err) != 0) {
        fprintf(stderr, "pipeline_throughput: %s\n", err.msg);
        return -1;
    }
    int64_t deadline = start + 300LL * 1000000000LL;
    while (records_in(e) < n && mr_clock_mono_ns() < deadline) {
        mr_clock_sleep_ns(2000000);
    }
    int64_t ns = mr_clock_mono_ns() - start;
    uint64_t got = records_in(e);
    mr_engine_stop(e, 0, false, NULL, NULL); /* no inputs: completes at once */
    uv_run(&loop, UV_RUN_DEFAULT);
    mr_engine_destroy(e);
    uv_loop_close(&loop);
    if (got < n) {
        fprintf(stderr, "pipeline_throughput: only %llu of %zu records read\n",
                (unsigned long long)got, n);
        return -1;
    }
    return (double)n / ((double)ns / 1e9);
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp";
    size_t n = 2000000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--records") == 0 && i + 1 < argc) {
            n = strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: pipeline_throughput [--dir DIR] [--records N]\n");
            return 2;
        }
    }
    static const uint32_t key_counts[] = {1000, 100000};
    static const char *const key_names[] = {"1k", "100k"};
    for (size_t c = 0; c < 2; c++) {
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/pipeline-%s", dir, key_names[c]);
        double rps = run(sub, n, key_counts[c]);
        if (rps < 0) {
            return 1;
        }
        printf(
            "{\"bench\":\"pipeline_throughput\",\"metric\":\"tumbling_1s_%s_keys_records_per_s\","
            "\"value\":%.1f,\"unit\":\"records/s\",\"limit\":"
            "\"window_throughput.tumbling_1s_%s_keys_records_per_s\"}\n",
            key_names[c], rps, key_names[c]);
    }
    return 0;
}
