/* supply_throughput: the supply operator on one core, through its plugin API as a pipeline
 * calls it (no journal), on a plant of 10,000 machines and 2,000 materials.
 *
 * Each machine is the consumer of 2 materials (bill of materials records first), so a good
 * part touches two materials' rates and levels. Streams measured, CPU ns per input record
 * (thread CPU time) and records/s:
 *  - counters: good_count records only (the join's hot path: two keyed updates, no output);
 *  - inventory: inventory records only (each emits a full projection: 6 records, 1 shipment
 *    on the way);
 *  - passthrough: records of other signals (what the operator costs a stream it does not
 *    use);
 *  - mixed: a plant-like stream: per machine and second 9 other signals and 1 good_count,
 *    and each material's inventory every 10 s. The number to hold against the target
 *    (all four analytics families under 1 us per input record: ~250 ns for this one).
 * The limit in the same run: one pass over the same mixed records reading signal and value
 * (what touching the records costs).
 *
 *   supply_throughput [--seconds N] [--dir DIR]   (--dir is accepted and unused)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "millrace/alloc.h"
#include "millrace/config.h"
#include "millrace/metrics.h"
#include "millrace/plugin.h"

#define SEC       1000000000LL
#define MACHINES  10000
#define MATERIALS 2000
#define OTHERS    9
#define BATCH     1024

extern const struct mr_plugin mr_operator_supply;

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
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static void emit(const char *metric, double value, const char *unit, const char *limit)
{
    printf("{\"bench\":\"supply_throughput\",\"metric\":\"%s\",\"value\":%.2f,\"unit\":\"%s\","
           "\"limit\":%s}\n",
           metric, value, unit, limit);
}

struct plant {
    struct mr_names *names;
    mr_name_id machine[MACHINES], material[MATERIALS], other[OTHERS];
    mr_name_id sig_count, sig_inv, sig_ship, sig_bom, tag_consumer, tag_qty, tag_eta;
    char machine_path[MACHINES][40];
};

static struct plant *plant_create(void)
{
    struct plant *p = calloc(1, sizeof(*p));
    mr_names_create(&p->names, 100000, 16u << 20);
    char buf[64];
    for (int i = 0; i < MACHINES; i++) {
        int n = snprintf(p->machine_path[i], sizeof(p->machine_path[i]), "site%d/area/line%d/m%d",
                         i / 5000, i / 10, i % 10);
        mr_names_intern(p->names, p->machine_path[i], (size_t)n, &p->machine[i]);
    }
    for (int i = 0; i < MATERIALS; i++) {
        int n = snprintf(buf, sizeof(buf), "site%d/warehouse/mat%d", i / 1000, i);
        mr_names_intern(p->names, buf, (size_t)n, &p->material[i]);
    }
    for (int i = 0; i < OTHERS; i++) {
        int n = snprintf(buf, sizeof(buf), "signal%d", i);
        mr_names_intern(p->names, buf, (size_t)n, &p->other[i]);
    }
    mr_names_intern(p->names, "good_count", 10, &p->sig_count);
    mr_names_intern(p->names, "inventory", 9, &p->sig_inv);
    mr_names_intern(p->names, "shipment", 8, &p->sig_ship);
    mr_names_intern(p->names, "bom", 3, &p->sig_bom);
    mr_names_intern(p->names, "consumer", 8, &p->tag_consumer);
    mr_names_intern(p->names, "qty", 3, &p->tag_qty);
    mr_names_intern(p->names, "eta", 3, &p->tag_eta);
    return p;
}

struct op {
    void *conf;
    void *ctx;
    struct bench_host bh;
};

static int push(struct op *o, const struct mr_record *recs, size_t n)
{
    struct mr_err err;
    for (size_t i = 0; i < n; i += BATCH) {
        size_t m = n - i < BATCH ? n - i : BATCH;
        if (mr_operator_supply.op.process(o->ctx, recs + i, m, &err) != 0) {
            fprintf(stderr, "supply_throughput: %s\n", err.msg);
            return -1;
        }
    }
    return 0;
}

/* An instance that knows the bill of materials, every material's level and one shipment. */
static int op_open(struct op *o, struct plant *p)
{
    static const char yaml[] = "rate_window: 1h\nsafety_margin: 30m\nhorizon: 2d\n";
    static struct mr_config_errors errs;
    memset(o, 0, sizeof(*o));
    o->bh.host = (struct mr_operator_host){.name = "bench.supply",
                                           .names = p->names,
                                           .emit = count_emit,
                                           .side_open = no_side,
                                           .arg = &o->bh};
    mr_metrics_create(&o->bh.host.metrics);
    o->conf = calloc(1, mr_operator_supply.conf.size);
    o->ctx = calloc(1, mr_operator_supply.ctx_size);
    struct mr_err err;
    if (mr_section_load_buffer(&mr_operator_supply.conf, o->conf, "bench", yaml, strlen(yaml), NULL,
                               &errs) != 0 ||
        mr_operator_supply.op.init(o->ctx, o->conf, &o->bh.host, &err) != 0) {
        fprintf(stderr, "supply_throughput: cannot open the operator\n");
        return -1;
    }
    struct mr_record r[2] = {0};
    for (int i = 0; i < MACHINES; i++) {
        for (int k = 0; k < 2; k++) {
            r[k] = (struct mr_record){.asset = p->material[(i / 10 * 2 + k) % MATERIALS],
                                      .signal = p->sig_bom,
                                      .type = MR_VALUE_F64,
                                      .v.f64 = 1 + k,
                                      .ntags = 1};
            r[k].tags[0] = (struct mr_tag){
                .key = p->tag_consumer,
                .value = {p->machine_path[i], (uint32_t)strlen(p->machine_path[i])}};
        }
        if (push(o, r, 2) != 0) {
            return -1;
        }
    }
    for (int i = 0; i < MATERIALS; i++) {
        r[0] = (struct mr_record){.asset = p->material[i],
                                  .signal = p->sig_inv,
                                  .type = MR_VALUE_F64,
                                  .v.f64 = 100000,
                                  .time_ns = 1000 * SEC};
        r[1] = (struct mr_record){.asset = p->material[i],
                                  .signal = p->sig_ship,
                                  .type = MR_VALUE_STRING,
                                  .v.str = {"inbound", 7},
                                  .time_ns = 1000 * SEC,
                                  .ntags = 2};
        r[1].tags[0] = (struct mr_tag){.key = p->tag_qty, .value = {"5000", 4}};
        r[1].tags[1] = (struct mr_tag){.key = p->tag_eta, .value = {"1970-01-01T08:00:00Z", 20}};
        if (push(o, r, 2) != 0) {
            return -1;
        }
    }
    return 0;
}

static void op_close(struct op *o)
{
    mr_operator_supply.op.fini(o->ctx);
    free(o->ctx);
    mr_section_free(&mr_operator_supply.conf, o->conf);
    free(o->conf);
    mr_metrics_destroy(o->bh.host.metrics);
}

enum { S_COUNTERS, S_INVENTORY, S_PASS, S_MIXED };

/* One second of stream kind `kind` at second `sec` into recs; returns the count. */
static size_t fill(const struct plant *p, struct mr_record *recs, int kind, int sec)
{
    size_t n = 0;
    int64_t t = 1001 * SEC + (int64_t)sec * SEC;
    for (int i = 0; i < MACHINES; i++) {
        if (kind == S_PASS || kind == S_MIXED) {
            for (int k = 0; k < OTHERS; k++) {
                recs[n++] = (struct mr_record){.time_ns = t,
                                               .asset = p->machine[i],
                                               .signal = p->other[k],
                                               .type = MR_VALUE_F64,
                                               .v.f64 = k};
            }
        }
        if (kind == S_COUNTERS || kind == S_MIXED) {
            recs[n++] = (struct mr_record){.time_ns = t,
                                           .asset = p->machine[i],
                                           .signal = p->sig_count,
                                           .type = MR_VALUE_I64,
                                           .v.i64 = sec / 6};
        }
    }
    for (int i = 0; i < MATERIALS; i++) {
        if (kind == S_INVENTORY || (kind == S_MIXED && (sec + i) % 10 == 0)) {
            recs[n++] = (struct mr_record){.time_ns = t,
                                           .asset = p->material[i],
                                           .signal = p->sig_inv,
                                           .type = MR_VALUE_F64,
                                           .v.f64 = 100000 - sec};
        }
    }
    return n;
}

struct result {
    double ns_per_rec, recs_per_s, out_per_in;
};

static int run(struct plant *p, struct mr_record *recs, int kind, int seconds, struct result *res)
{
    struct op o;
    if (op_open(&o, p) != 0) {
        return -1;
    }
    uint64_t in = 0, out0 = o.bh.emitted, cpu = 0;
    for (int s = 0; s < seconds; s++) {
        size_t n = fill(p, recs, kind, s);
        int64_t a = cpu_ns();
        if (push(&o, recs, n) != 0) {
            return -1;
        }
        cpu += (uint64_t)(cpu_ns() - a);
        in += n;
    }
    res->ns_per_rec = (double)cpu / (double)in;
    res->recs_per_s = 1e9 / res->ns_per_rec;
    res->out_per_in = (double)(o.bh.emitted - out0) / (double)in;
    op_close(&o);
    return 0;
}

/* Reading signal and value of the mixed stream: what touching the records costs. */
static double read_limit(struct plant *p, struct mr_record *recs, int seconds)
{
    uint64_t in = 0, cpu = 0;
    double sum = 0;
    for (int s = 0; s < seconds; s++) {
        size_t n = fill(p, recs, S_MIXED, s);
        int64_t a = cpu_ns();
        for (size_t i = 0; i < n; i++) {
            sum += recs[i].signal == p->sig_count ? (double)recs[i].v.i64 : recs[i].v.f64;
        }
        cpu += (uint64_t)(cpu_ns() - a);
        in += n;
    }
    return sum != -1 ? (double)cpu / (double)in : 0;
}

int main(int argc, char **argv)
{
    int seconds = 20;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], NULL, 10);
            seconds = v > 0 && v < 100000 ? (int)v : 20;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            i++;
        } else {
            fprintf(stderr, "usage: supply_throughput [--seconds N] [--dir DIR]\n");
            return 2;
        }
    }
    struct plant *p = plant_create();
    struct mr_record *recs = calloc((size_t)MACHINES * (OTHERS + 1) + MATERIALS, sizeof(*recs));
    static const struct {
        int kind;
        const char *name;
        const char *limit;
    } streams[] = {
        {S_COUNTERS, "counters", "null"},
        {S_INVENTORY, "inventory", "null"},
        {S_PASS, "passthrough", "null"},
        {S_MIXED, "mixed", "250"},
    };
    emit("read_pass_ns_per_record", read_limit(p, recs, seconds), "ns", "null");
    for (size_t k = 0; k < sizeof(streams) / sizeof(streams[0]); k++) {
        struct result r;
        char metric[96];
        if (run(p, recs, streams[k].kind, seconds, &r) != 0) {
            return 1;
        }
        snprintf(metric, sizeof(metric), "%s_ns_per_record", streams[k].name);
        emit(metric, r.ns_per_rec, "ns", streams[k].limit);
        snprintf(metric, sizeof(metric), "%s_records_per_s", streams[k].name);
        emit(metric, r.recs_per_s, "records/s", "null");
        snprintf(metric, sizeof(metric), "%s_out_per_in", streams[k].name);
        emit(metric, r.out_per_in, "records", "null");
    }
    free(recs);
    mr_names_destroy(p->names);
    free(p);
    return 0;
}
