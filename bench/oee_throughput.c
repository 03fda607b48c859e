/* oee_throughput: the `oee` operator on one core, through its plugin API as a pipeline calls
 * it (no journal).
 *
 * 10,000 machines (1,000 lines of 10) under a 3-shift calendar with breaks, interval 1m
 * (a partial result of 16 records per machine every event-time minute), lines and days on.
 * Each machine completes a part every 6 s of event time (cycle_count, good_count,
 * reject_count: 3 records) and changes state every ~50 parts (a 30-s stop: a small stop).
 * Records come in batches of 1024 in event-time order; after each batch the watermark of
 * every asset in it is advanced (1 s behind), then the pipeline watermark (asset 0), as the
 * engine does. Reported: input records/s and CPU ns per input record (process CPU time of the
 * operator calls only; building the records is not counted), against the 250 ns share of
 * the 1 us per record for the four analytics families together; and the limit in the
 * same run: the same records through a bare keyed counter (one key lookup and one add per
 * record: what touching 10,000 machines' state costs).
 *
 *   oee_throughput [--seconds N] [--dir DIR]   (--dir is accepted and unused)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/keymap.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/plugin.h"

extern const struct mr_plugin mr_operator_oee;

#define MACHINES 10000
#define BATCH    1024
#define SEC      1000000000LL

struct bench_host {
    struct mr_operator_host host;
    uint64_t emitted;
};

static int count_emit(struct mr_operator_host *h, const struct mr_record *recs, size_t n)
{
    (void)recs;
    ((struct bench_host *)h->arg)->emitted += n;
    return 0;
}

static int no_side(struct mr_operator_host *h, const char *topic, struct mr_err *err)
{
    (void)h;
    (void)topic;
    return MR_ERR_SET(err, MR_ENOTSUP, "no side outputs in the benchmark");
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static void emit(const char *metric, double value, const char *unit, const char *limit)
{
    printf("{\"bench\":\"oee_throughput\",\"metric\":\"%s\",\"value\":%.2f,\"unit\":\"%s\","
           "\"limit\":%s}\n",
           metric, value, unit, limit);
}

static const char *const yaml =
    "ideal_cycle_time: 5s\n"
    "interval: 1m\n"
    "shifts:\n"
    "  - {name: early, start: \"06:00\", end: \"14:00\"}\n"
    "  - {name: late, start: \"14:00\", end: \"22:00\"}\n"
    "  - {name: night, start: \"22:00\", end: \"06:00\"}\n"
    "breaks: [{start: \"10:00\", end: \"10:30\"}, {start: \"18:00\", end: \"18:30\"}]\n"
    "targets: {oee: 0.5}\n"
    "max_machines: 20000\n";

struct gen {
    mr_name_id assets[MACHINES];
    mr_name_id sig[4]; /* state, cycle_count, good_count, reject_count */
    int64_t count[MACHINES];
    int64_t t;      /* event time of the current round */
    uint32_t m;     /* next machine in the round */
    uint32_t phase; /* 0..2: which counter of the machine's part */
    uint64_t rng;
};

static uint64_t next_rand(struct gen *g)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return g->rng;
}

static const char *const states[] = {"RUNNING", "DOWN"};

/* Fill a batch in event-time order: each machine's part at t + its offset within 6 s. */
static void gen_batch(struct gen *g, struct mr_record *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct mr_record *r = &recs[i];
        uint32_t m = g->m;
        memset(r, 0, offsetof(struct mr_record, tags));
        r->time_ns = g->t + (int64_t)m * (6 * SEC / MACHINES);
        r->asset = g->assets[m];
        r->quality = MR_QUALITY_GOOD;
        if (g->phase == 0 && next_rand(g) % 50 == 0) {
            /* a state change instead of this part's first counter */
            const char *st = states[(g->count[m] / 7) % 2];
            r->signal = g->sig[0];
            r->type = MR_VALUE_STRING;
            r->v.str = (struct mr_bytes){.ptr = st, .len = (uint32_t)strlen(st)};
        } else {
            r->signal = g->sig[1 + g->phase];
            r->type = MR_VALUE_I64;
            r->v.i64 = g->phase == 2 ? g->count[m] / 40
                                     : g->count[m] - (g->phase == 1 ? g->count[m] / 40 : 0);
        }
        if (++g->phase == 3) {
            g->phase = 0;
            g->count[m]++;
            if (++g->m == MACHINES) {
                g->m = 0;
                g->t += 6 * SEC;
            }
        }
    }
}

static int gen_init(struct gen *g, struct mr_names *names)
{
    memset(g, 0, sizeof(*g));
    g->rng = 88172645463325252ull;
    g->t = 1795392000LL * SEC;
    const char *sigs[4] = {"state", "cycle_count", "good_count", "reject_count"};
    for (int i = 0; i < 4; i++) {
        if (mr_names_intern(names, sigs[i], strlen(sigs[i]), &g->sig[i]) != 0) {
            return -1;
        }
    }
    for (int m = 0; m < MACHINES; m++) {
        char a[64];
        int len = snprintf(a, sizeof(a), "plant1/area%d/line%d/m%d", m / 1000, m / 10, m % 10);
        if (mr_names_intern(names, a, (size_t)len, &g->assets[m]) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Records/s and CPU ns per record of the oee operator for `seconds`. */
static int run_oee(struct mr_names *names, int seconds, double *rps, double *ns_per, double *out)
{
    struct bench_host bh = {0};
    bh.host = (struct mr_operator_host){
        .name = "bench.oee", .names = names, .emit = count_emit, .side_open = no_side, .arg = &bh};
    mr_metrics_create(&bh.host.metrics);
    static struct mr_config_errors errs;
    void *conf = calloc(1, mr_operator_oee.conf.size);
    void *ctx = calloc(1, mr_operator_oee.ctx_size);
    struct gen *g = malloc(sizeof(*g));
    struct mr_record *recs = malloc(sizeof(*recs) * BATCH);
    struct mr_err err;
    if (conf == NULL || ctx == NULL || g == NULL || recs == NULL || gen_init(g, names) != 0 ||
        mr_section_load_buffer(&mr_operator_oee.conf, conf, "bench", yaml, strlen(yaml), NULL,
                               &errs) != 0 ||
        mr_operator_oee.op.init(ctx, conf, &bh.host, &err) != 0) {
        fprintf(stderr, "oee_throughput: setup failed: %s\n", errs.n > 0 ? errs.msg[0] : err.msg);
        return -1;
    }
    uint64_t nrec = 0;
    int64_t cpu = 0;
    int64_t wall_end = mr_clock_mono_ns() + (int64_t)seconds * SEC;
    while (mr_clock_mono_ns() < wall_end) {
        for (int k = 0; k < 64; k++) {
            gen_batch(g, recs, BATCH);
            int64_t c0 = cpu_ns();
            int rc = mr_operator_oee.op.process(ctx, recs, BATCH, &err);
            mr_name_id last = 0;
            for (size_t i = 0; i < BATCH && rc == 0; i++) {
                if (recs[i].asset != last) { /* each asset of the batch once (they are grouped) */
                    last = recs[i].asset;
                    rc = mr_operator_oee.op.advance(ctx, last, recs[i].time_ns - SEC, &err);
                }
            }
            rc = rc == 0 ? mr_operator_oee.op.advance(ctx, 0, recs[0].time_ns - SEC, &err) : rc;
            cpu += cpu_ns() - c0;
            if (rc != 0) {
                fprintf(stderr, "oee_throughput: %s\n", err.msg);
                return -1;
            }
            nrec += BATCH;
        }
    }
    *rps = (double)nrec / ((double)cpu / 1e9);
    *ns_per = (double)cpu / (double)nrec;
    *out = (double)bh.emitted / (double)nrec;
    mr_operator_oee.op.fini(ctx);
    mr_section_free(&mr_operator_oee.conf, conf);
    free(conf);
    free(ctx);
    free(g);
    free(recs);
    mr_metrics_destroy(bh.host.metrics);
    return 0;
}

/* The same records through one keyed add per record: the cost of touching the state. */
static double run_limit(struct mr_names *names, int seconds)
{
    struct gen *g = malloc(sizeof(*g));
    struct mr_record *recs = malloc(sizeof(*recs) * BATCH);
    struct mr_keymap map;
    if (g == NULL || recs == NULL || gen_init(g, names) != 0 ||
        mr_keymap_init(&map, 64, 2 * MACHINES) != 0) {
        return -1;
    }
    uint64_t nrec = 0, sum = 0;
    int64_t cpu = 0;
    int64_t wall_end = mr_clock_mono_ns() + (int64_t)seconds * SEC;
    while (mr_clock_mono_ns() < wall_end) {
        for (int k = 0; k < 64; k++) {
            gen_batch(g, recs, BATCH);
            int64_t c0 = cpu_ns();
            for (size_t i = 0; i < BATCH; i++) {
                void *v = NULL;
                int ins = 0;
                if (mr_keymap_upsert(&map, recs[i].asset, &v, &ins) == 0) {
                    ((int64_t *)v)[recs[i].signal & 7] += recs[i].v.i64;
                    sum += (uint64_t)((int64_t *)v)[0];
                }
            }
            cpu += cpu_ns() - c0;
            nrec += BATCH;
        }
    }
    mr_keymap_fini(&map);
    free(g);
    free(recs);
    return sum != 1 ? (double)nrec / ((double)cpu / 1e9) : 0;
}

int main(int argc, char **argv)
{
    int seconds = 10;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = (int)strtol(argv[++i], NULL, 10);
            seconds = seconds > 0 ? seconds : 10;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            i++;
        } else {
            fprintf(stderr, "usage: oee_throughput [--seconds N] [--dir DIR]\n");
            return 2;
        }
    }
    struct mr_names *names;
    if (mr_names_create(&names, 100000, 16u << 20) != 0) {
        return 1;
    }
    double lim = run_limit(names, seconds);
    double rps = 0, ns = 0, out = 0;
    if (lim < 0 || run_oee(names, seconds, &rps, &ns, &out) != 0) {
        return 1;
    }
    emit("keyed_add_10k_machines_records_per_s", lim, "records/s", "null");
    emit("oee_10k_machines_records_per_s", rps, "records/s",
         "\"oee_throughput.keyed_add_10k_machines_records_per_s\"");
    emit("oee_cpu_ns_per_record", ns, "ns", "250");
    emit("oee_results_per_input_record", out, "records", "null");
    mr_names_destroy(names);
    return 0;
}
