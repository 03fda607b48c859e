/* window_throughput: keyed event-time window aggregation on one core, the engine's hot path
 * without the journal: records -> per-asset watermarks (watermark.h, as a pipeline tracks them)
 * -> the `window` operator's process and advance -> results counted.
 *
 * Cases: 1k / 10k / 100k / 1M keys (asset x signal, 10 signals per asset), through a 1 s
 * tumbling window and a 60 s window hopping every 10 s, aggregates count/sum/min/max/mean.
 * The limit, measured in the same run on the same records: the bare aggregation kernel (a dense
 * array of count/sum/min/max per key, no windows, no watermarks), i.e. what the memory system
 * allows for this key count. Also reported: bytes of window state per key (heap in use after the
 * keys are loaded, divided by keys), and late/out-of-order cost (C4 in research/perf.md).
 *
 *   window_throughput [--records N] [--keys N] [--dir DIR]   (--dir is accepted and unused;
 *   --keys runs only the case with that many keys)
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/watermark.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/plugin.h"

#include "bench_op.h"

#define SIGNALS_PER_ASSET 10
#define BATCH             1024

static int advance_cb(void *arg, mr_name_id asset, int64_t wm)
{
    struct bench_op *o = arg;
    struct mr_err err;
    return o->plugin->op.advance(o->ctx, asset, wm, &err);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Records over `seconds` of event time, keys drawn at random, `late_share` of them 300 ms
 * older than their neighbours (within the out-of-orderness). */
static struct mr_record *make_records(struct mr_names *names, size_t n, uint32_t keys,
                                      double seconds, double late_share)
{
    struct mr_record *recs = calloc(n, sizeof(*recs));
    uint32_t assets = keys / SIGNALS_PER_ASSET;
    mr_name_id *asset_ids = calloc(assets, sizeof(mr_name_id));
    mr_name_id sig[SIGNALS_PER_ASSET];
    char buf[64];
    for (uint32_t a = 0; a < assets; a++) {
        int len = snprintf(buf, sizeof(buf), "site/area/line%u/m%u", a % 20, a);
        mr_names_intern(names, buf, (size_t)len, &asset_ids[a]);
    }
    for (int s = 0; s < SIGNALS_PER_ASSET; s++) {
        int len = snprintf(buf, sizeof(buf), "signal%d", s);
        mr_names_intern(names, buf, (size_t)len, &sig[s]);
    }
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int64_t t0 = 1764000000000000000LL;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = xorshift(&seed);
        uint32_t k = (uint32_t)(r % keys);
        recs[i].asset = asset_ids[k / SIGNALS_PER_ASSET];
        recs[i].signal = sig[k % SIGNALS_PER_ASSET];
        recs[i].time_ns = t0 + (int64_t)((double)i / (double)n * seconds * 1e9);
        if ((double)(r >> 40) / (double)(1ull << 24) < late_share) {
            recs[i].time_ns -= 300000000;
        }
        recs[i].type = MR_VALUE_F64;
        recs[i].v.f64 = (double)(r >> 11) / (double)(1ull << 53) * 100.0;
    }
    free(asset_ids);
    return recs;
}

/* Records/s through watermarks + window. */
static double run_window(struct mr_names *names, const struct mr_record *recs, size_t n,
                         const char *yaml)
{
    struct bench_op o;
    if (bench_op_open(&o, names, "window", yaml) != 0) {
        return -1;
    }
    struct mr_watermarks wm;
    mr_wm_init(&wm, 500000000LL, 3600LL * 1000000000LL);
    struct mr_err err;
    int64_t start = mr_clock_mono_ns();
    for (size_t i = 0; i < n; i += BATCH) {
        size_t m = n - i < BATCH ? n - i : BATCH;
        for (size_t k = 0; k < m; k++) {
            mr_wm_observe(&wm, recs[i + k].asset, recs[i + k].time_ns, 0);
        }
        if (o.plugin->op.process(o.ctx, recs + i, m, &err) != 0) {
            fprintf(stderr, "window_throughput: process: %s\n", err.msg);
            return -1;
        }
        mr_wm_collect(&wm, 0, false, advance_cb, &o);
    }
    int64_t ns = mr_clock_mono_ns() - start;
    if (o.emitted == 0) {
        fprintf(stderr, "window_throughput: no window fired\n");
        return -1;
    }
    mr_wm_fini(&wm);
    bench_op_close(&o);
    return (double)n / ((double)ns / 1e9);
}

/* Heap bytes per key of window state with one open window per key: one record per key, all in
 * the same window, nothing fired yet (the state a steady stream keeps between firings). */
static double state_per_key(struct mr_names *names, uint32_t keys, const char *yaml)
{
    struct mr_record *recs = make_records(names, keys, keys, 0.0, 0.0);
    char buf[64];
    for (uint32_t i = 0; i < keys; i++) { /* every key exactly once */
        int len = snprintf(buf, sizeof(buf), "site/area/line%u/m%u", (i / SIGNALS_PER_ASSET) % 20,
                           i / SIGNALS_PER_ASSET);
        recs[i].asset = mr_names_find(names, buf, (size_t)len);
        len = snprintf(buf, sizeof(buf), "signal%u", i % SIGNALS_PER_ASSET);
        recs[i].signal = mr_names_find(names, buf, (size_t)len);
    }
    struct bench_op o;
    double per_key = -1;
    size_t heap0 = bench_heap_in_use();
    if (bench_op_open(&o, names, "window", yaml) == 0) {
        struct mr_err err;
        for (uint32_t i = 0; i < keys; i += BATCH) {
            o.plugin->op.process(o.ctx, recs + i, keys - i < BATCH ? keys - i : BATCH, &err);
        }
        per_key = (double)(bench_heap_in_use() - heap0) / keys;
        bench_op_close(&o);
    }
    free(recs);
    return per_key;
}

/* The bare kernel: count/sum/min/max per key in a dense array, no windows. */
static double run_kernel(const struct mr_record *recs, size_t n, uint32_t max_id)
{
    struct cell {
        double sum, min, max;
        uint64_t count;
    } *cells = calloc((size_t)max_id * SIGNALS_PER_ASSET + SIGNALS_PER_ASSET, sizeof(*cells));
    int64_t start = mr_clock_mono_ns();
    for (size_t i = 0; i < n; i++) {
        struct cell *c =
            &cells[(size_t)recs[i].asset * SIGNALS_PER_ASSET + recs[i].signal % SIGNALS_PER_ASSET];
        double v = recs[i].v.f64;
        c->sum += v;
        c->count++;
        c->min = c->count == 1 || v < c->min ? v : c->min;
        c->max = c->count == 1 || v > c->max ? v : c->max;
    }
    int64_t ns = mr_clock_mono_ns() - start;
    double check = 0;
    for (uint32_t k = 0; k < max_id; k++) {
        check += cells[k].sum;
    }
    free(cells);
    return check >= 0 ? (double)n / ((double)ns / 1e9) : 0;
}

static void emit(const char *metric, double value, const char *unit, const char *limit)
{
    printf("{\"bench\":\"window_throughput\",\"metric\":\"%s\",\"value\":%.1f,\"unit\":\"%s\","
           "\"limit\":%s}\n",
           metric, value, unit, limit);
}

int main(int argc, char **argv)
{
    size_t n = 4000000;
    unsigned long only_keys = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--records") == 0 && i + 1 < argc) {
            n = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc) {
            only_keys = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            i++;
        } else {
            fprintf(stderr, "usage: window_throughput [--records N] [--keys N] [--dir DIR]\n");
            return 2;
        }
    }
    static const uint32_t key_counts[] = {1000, 10000, 100000, 1000000};
    static const char *const key_names[] = {"1k", "10k", "100k", "1M"};
    /* Caps raised so that no case drops records (1M keys x 6 panes of a 60 s/10 s window). */
    const char *tumbling = "kind: tumbling\nsize: 1s\naggregates: [count, sum, min, max, mean]\n"
                           "max_keys: 2000000\nmax_windows: 20000000\n";
    const char *hopping = "kind: hopping\nsize: 60s\nhop: 10s\naggregates: [count, sum, min, max, "
                          "mean]\nmax_keys: 2000000\nmax_windows: 20000000\n";
    for (size_t c = 0; c < sizeof(key_counts) / sizeof(key_counts[0]); c++) {
        uint32_t keys = key_counts[c];
        if (only_keys != 0 && keys != only_keys) {
            continue;
        }
        struct mr_names *names;
        mr_names_create(&names, 2000000, 64u << 20);
        /* Enough event time for windows to fire: 1 s windows over 8 s, 60 s hopping over 120 s */
        struct mr_record *recs = make_records(names, n, keys, 8.0, 0.0);
        char metric[128], limit[160];
        uint32_t max_id = mr_names_count(names) + 1;
        double kernel = run_kernel(recs, n, max_id);
        snprintf(metric, sizeof(metric), "kernel_%s_keys_records_per_s", key_names[c]);
        emit(metric, kernel, "records/s", "null");
        snprintf(limit, sizeof(limit), "\"window_throughput.%s\"", metric);
        double tps = run_window(names, recs, n, tumbling);
        if (tps < 0) {
            return 1;
        }
        snprintf(metric, sizeof(metric), "tumbling_1s_%s_keys_records_per_s", key_names[c]);
        emit(metric, tps, "records/s", limit);
        snprintf(metric, sizeof(metric), "tumbling_1s_%s_keys_state_bytes_per_key", key_names[c]);
        emit(metric, state_per_key(names, keys, tumbling), "bytes", "128");
        free(recs);
        recs = make_records(names, n, keys, 120.0, 0.0);
        double hps = run_window(names, recs, n, hopping);
        if (hps < 0) {
            return 1;
        }
        snprintf(metric, sizeof(metric), "hopping_60s_10s_%s_keys_records_per_s", key_names[c]);
        emit(metric, hps, "records/s", limit);
        if (keys == 10000) {
            free(recs);
            recs = make_records(names, n, keys, 8.0, 0.2);
            double late = run_window(names, recs, n, tumbling);
            emit("tumbling_1s_10k_keys_20pct_out_of_order_records_per_s", late, "records/s",
                 "\"window_throughput.tumbling_1s_10k_keys_records_per_s\"");
        }
        free(recs);
        mr_names_destroy(names);
    }
    return 0;
}
