/* operations_throughput: the four operations-analytics operators (oee, spc, supply, energy)
 * together on one plant stream, as four pipelines reading the same topic would run them.
 *
 * The plant: 10,000 machines on 100 lines plus 50 materials. Per simulated second every
 * machine sends power (kW) and its energy meter (kWh); every 8 s a cycle: cycle_count,
 * good_count, reject_count and the part's dimension; every 10 min or so a state change
 * (RUNNING / IDLE / DOWN / SETUP); each material its inventory every 10 s and a shipment now
 * and then. Records arrive one simulated second per batch, time-ordered; after each second
 * every machine's watermark and the pipeline-wide one advance, as the engine does.
 *
 * Metrics: CPU ns per input record for each operator alone over the whole stream (records not
 * its own pass through it, as they would in a pipeline without a filter), and for all four
 * together (the target: under 1 us per input record); the limit in the same run: one
 * pass that only reads each record's value and adds it into a per-asset array.
 *
 *   operations_throughput [--seconds N] [--dir DIR]   (--dir is accepted and unused)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/names.h"
#include "millrace/plugin.h"

#include "bench_op.h"

#define MACHINES  10000
#define LINES     100
#define MATERIALS 50
#define SEC       1000000000LL
#define T0        (1795500000LL * SEC) /* a Tuesday, 2026-11-24 */
#define BATCH     1024

enum { S_POWER, S_ENERGY, S_CYCLE, S_GOOD, S_REJECT, S_DIM, S_STATE, S_INV, S_SHIP, NSIGNALS };
static const char *const sig_names[NSIGNALS] = {"power",      "energy",       "cycle_count",
                                                "good_count", "reject_count", "dimension",
                                                "state",      "inventory",    "shipment"};
static const char *const states[] = {"RUNNING", "IDLE", "DOWN", "SETUP"};

struct plant {
    struct mr_names *names;
    mr_name_id machine[MACHINES], material[MATERIALS], sig[NSIGNALS], qty, eta;
    double energy[MACHINES];
    int64_t parts[MACHINES];
    uint64_t rng;
    char eta_text[MATERIALS][24];
};

static uint64_t next_rand(struct plant *p)
{
    p->rng = p->rng * 6364136223846793005ull + 1442695040888963407ull;
    return p->rng >> 33;
}

static double uniform(struct plant *p)
{
    return (double)next_rand(p) / (double)(1ull << 31);
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static mr_name_id intern(struct mr_names *names, const char *s)
{
    mr_name_id id = 0;
    mr_names_intern(names, s, strlen(s), &id);
    return id;
}

static void plant_init(struct plant *p, struct mr_names *names)
{
    memset(p, 0, sizeof(*p));
    p->names = names;
    p->rng = 42;
    char buf[64];
    for (int m = 0; m < MACHINES; m++) {
        snprintf(buf, sizeof(buf), "plant1/area%d/line%d/m%d", m / 1000, m / (MACHINES / LINES), m);
        p->machine[m] = intern(names, buf);
    }
    for (int k = 0; k < MATERIALS; k++) {
        snprintf(buf, sizeof(buf), "plant1/warehouse/mat%d", k);
        p->material[k] = intern(names, buf);
    }
    for (int s = 0; s < NSIGNALS; s++) {
        p->sig[s] = intern(names, sig_names[s]);
    }
    p->qty = intern(names, "qty");
    p->eta = intern(names, "eta");
}

static struct mr_record rec(const struct plant *p, mr_name_id asset, int sig, int64_t t)
{
    return (struct mr_record){.time_ns = t,
                              .asset = asset,
                              .signal = p->sig[sig],
                              .type = MR_VALUE_F64,
                              .quality = MR_QUALITY_GOOD};
}

/* The records of simulated second s into out (capacity cap); returns the count. */
static size_t plant_second(struct plant *p, int s, struct mr_record *out, size_t cap)
{
    size_t n = 0;
    for (int m = 0; m < MACHINES && n + 8 <= cap; m++) {
        int64_t t = T0 + s * SEC + (int64_t)m * 50000; /* spread over the second */
        if ((s + m) % 600 == 0) {
            struct mr_record r = rec(p, p->machine[m], S_STATE, t);
            const char *st = states[s == 0 ? 0 : next_rand(p) % 4];
            r.type = MR_VALUE_STRING;
            r.v.str = (struct mr_bytes){.ptr = st, .len = (uint32_t)strlen(st)};
            out[n++] = r;
        }
        double kw = 10 + 5 * uniform(p);
        p->energy[m] += kw / 3600;
        out[n] = rec(p, p->machine[m], S_POWER, t);
        out[n++].v.f64 = kw;
        out[n] = rec(p, p->machine[m], S_ENERGY, t);
        out[n++].v.f64 = p->energy[m];
        if ((s + m) % 8 == 0) {
            p->parts[m]++;
            int sigs[3] = {S_CYCLE, S_GOOD, S_REJECT};
            int64_t vals[3] = {p->parts[m], p->parts[m] - p->parts[m] / 50, p->parts[m] / 50};
            for (int k = 0; k < 3; k++) {
                out[n] = rec(p, p->machine[m], sigs[k], t);
                out[n].type = MR_VALUE_I64;
                out[n++].v.i64 = vals[k];
            }
            out[n] = rec(p, p->machine[m], S_DIM, t);
            out[n++].v.f64 = 20.0 + 0.004 * (uniform(p) + uniform(p) + uniform(p) - 1.5);
        }
    }
    for (int k = 0; k < MATERIALS && n + 2 <= cap; k++) {
        int64_t t = T0 + s * SEC + 600000000LL + k * 1000;
        if ((s + k) % 10 == 0) {
            out[n] = rec(p, p->material[k], S_INV, t);
            out[n++].v.f64 = 1000 - (s % 3600) * 0.2;
        }
        if ((s + 7 * k) % 1800 == 0) {
            struct mr_record r = rec(p, p->material[k], S_SHIP, t);
            r.type = MR_VALUE_STRING;
            r.v.str = (struct mr_bytes){.ptr = "inbound", .len = 7};
            time_t eta = (time_t)(t / SEC + 3600);
            struct tm tm;
            gmtime_r(&eta, &tm);
            strftime(p->eta_text[k], sizeof(p->eta_text[k]), "%Y-%m-%dT%H:%M:%SZ", &tm);
            r.ntags = 2;
            r.tags[0] = (struct mr_tag){.key = p->qty, .value = {.ptr = "500", .len = 3}};
            r.tags[1] = (struct mr_tag){
                .key = p->eta,
                .value = {.ptr = p->eta_text[k], .len = (uint32_t)strlen(p->eta_text[k])}};
            out[n++] = r;
        }
    }
    return n;
}

static int advance_all(struct bench_op *o, const struct plant *p, int64_t wm)
{
    struct mr_err err;
    if (o->plugin->op.advance == NULL) {
        return 0;
    }
    for (int m = 0; m < MACHINES; m++) {
        if (o->plugin->op.advance(o->ctx, p->machine[m], wm, &err) != 0) {
            fprintf(stderr, "operations_throughput: %s: advance: %s\n", o->plugin->name, err.msg);
            return -1;
        }
    }
    return o->plugin->op.advance(o->ctx, 0, wm, &err);
}

/* CPU ns spent by op over the stream of `seconds`; *records gets the input count. */
static double run_op(struct bench_op *o, int seconds, uint64_t *records)
{
    static struct mr_record recs[8 * MACHINES + 2 * MATERIALS];
    struct plant *p = calloc(1, sizeof(*p));
    plant_init(p, o->host.names);
    int64_t cpu = 0;
    *records = 0;
    struct mr_err err;
    for (int s = 0; s < seconds; s++) {
        size_t n = plant_second(p, s, recs, sizeof(recs) / sizeof(recs[0]));
        int64_t c0 = thread_cpu_ns();
        for (size_t i = 0; i < n; i += BATCH) {
            size_t m = n - i < BATCH ? n - i : BATCH;
            if (o->plugin->op.process(o->ctx, recs + i, m, &err) != 0) {
                fprintf(stderr, "operations_throughput: %s: %s\n", o->plugin->name, err.msg);
                free(p);
                return -1;
            }
        }
        if (advance_all(o, p, T0 + (s + 1) * SEC - 1) != 0) {
            free(p);
            return -1;
        }
        cpu += thread_cpu_ns() - c0;
        *records += n;
    }
    free(p);
    return (double)cpu;
}

/* The limit: read each record's value and add it into a per-asset array. */
static double run_limit(struct mr_names *names, int seconds, uint64_t *records)
{
    static struct mr_record recs[8 * MACHINES + 2 * MATERIALS];
    struct plant *p = calloc(1, sizeof(*p));
    plant_init(p, names);
    double *acc = calloc(mr_names_count(names) + 1, sizeof(double));
    int64_t cpu = 0;
    *records = 0;
    for (int s = 0; s < seconds; s++) {
        size_t n = plant_second(p, s, recs, sizeof(recs) / sizeof(recs[0]));
        int64_t c0 = thread_cpu_ns();
        for (size_t i = 0; i < n; i++) {
            acc[recs[i].asset] += recs[i].type == MR_VALUE_F64 ? recs[i].v.f64 : 1.0;
        }
        cpu += thread_cpu_ns() - c0;
        *records += n;
    }
    double check = acc[p->machine[0]];
    free(acc);
    free(p);
    return check >= 0 ? (double)cpu : -1;
}

static void emit(const char *metric, double value, const char *unit, const char *limit)
{
    printf("{\"bench\":\"operations_throughput\",\"metric\":\"%s\",\"value\":%.2f,\"unit\":\"%s\","
           "\"limit\":%s}\n",
           metric, value, unit, limit);
}

int main(int argc, char **argv)
{
    int seconds = 180;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], NULL, 10);
            seconds = v > 0 && v < 100000 ? (int)v : 180;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            i++;
        } else {
            fprintf(stderr, "usage: operations_throughput [--seconds N] [--dir DIR]\n");
            return 2;
        }
    }
    static const struct {
        const char *type, *yaml;
    } ops[] = {
        {"oee", "ideal_cycle_time: 8s\ninterval: 1m\nline_level: 3\n"
                "shifts: [{name: early, start: \"06:00\", end: \"14:00\"}, {name: late, start: "
                "\"14:00\", end: \"22:00\"}, {name: night, start: \"22:00\", end: \"06:00\"}]\n"
                "targets: {oee: 0.5}\nmax_machines: 20000\n"},
        {"spc", "characteristics: [{signal: dimension, lsl: 19.98, usl: 20.02, target: 20.0, "
                "baseline: 25, actions: [{when: [tolerance, nelson1], do: flag}, {when: [nelson2, "
                "nelson3, nelson5, nelson6], do: adjust}]}]\nmax_keys: 20000\n"},
        {"supply", "rate_window: 1h\nsafety_margin: 30m\nhorizon: 2d\n"},
        {"energy", "energy_from: counter\ninterval: 15m\nprice: 0.12\ncurrency: EUR\nidle_kw: 5\n"
                   "max_machines: 20000\npass_through: false\n"
                   "tariff: [{days: [weekdays], from: \"07:00\", to: \"21:00\", price: 0.31}]\n"},
    };
    struct mr_names *names = NULL;
    mr_names_create(&names, 100000, 16u << 20);
    uint64_t n = 0;
    double limit = run_limit(names, seconds, &n);
    emit("read_and_add_ns_per_record", limit / (double)n, "ns", "null");
    double total = 0;
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        struct bench_op o;
        if (bench_op_open(&o, names, ops[k].type, ops[k].yaml) != 0) {
            return 1;
        }
        double ns = run_op(&o, seconds, &n);
        if (ns < 0) {
            return 1;
        }
        char metric[96];
        snprintf(metric, sizeof(metric), "%s_ns_per_record", ops[k].type);
        emit(metric, ns / (double)n, "ns", "null");
        fprintf(stderr, "operations_throughput: %s: %llu records in, %llu out, %llu side\n",
                ops[k].type, (unsigned long long)n, (unsigned long long)o.emitted,
                (unsigned long long)o.side);
        total += ns;
        bench_op_close(&o);
    }
    emit("all_four_ns_per_record", total / (double)n, "ns", "1000");
    emit("all_four_records_per_s", (double)n / (total / 1e9), "records/s", "null");
    mr_names_destroy(names);
    return 0;
}
