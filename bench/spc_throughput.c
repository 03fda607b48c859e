/* spc_throughput: the in-line quality operator (`spc`) on one core, through its plugin API as
 * a pipeline calls it (no journal).
 *
 * 10,000 machines, one measured characteristic each (dimension, N(20, 0.004) in control, spec
 * 19.98..20.02), records in batches of 1024, one value per machine per round:
 *  - individuals chart, Nelson 1, 2, 3, 5, 6, tolerance flags and adjust commands declared:
 *    updates/s and CPU ns per input record (target: 250 ns, a quarter of the 1 us budget of
 *    all four operations-analytics families);
 *  - the same with an X-bar/R chart (subgroups of 5) and all twelve chart rules;
 *  - the limit in the same run: records of a signal the operator does not chart (the cost of
 *    passing a record through: the floor for any record-by-record operator).
 *
 *   spc_throughput [--seconds N] [--dir DIR]   (--dir is accepted and unused)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "millrace/config.h"
#include "millrace/plugin.h"

extern const struct mr_plugin mr_operator_spc;

#define SEC      1000000000LL
#define MACHINES 10000
#define BATCH    1024

struct bench_host {
    struct mr_operator_host host;
    uint64_t emitted;
    int nsides;
};

static int count_emit(struct mr_operator_host *h, const struct mr_record *recs, size_t n)
{
    (void)recs;
    ((struct bench_host *)h->arg)->emitted += n;
    return 0;
}

static int side_open(struct mr_operator_host *h, const char *topic, struct mr_err *err)
{
    (void)topic;
    (void)err;
    return ++((struct bench_host *)h->arg)->nsides;
}

static int side_emit(struct mr_operator_host *h, int port, const struct mr_record *recs, size_t n)
{
    (void)port;
    return count_emit(h, recs, n);
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static void emit(const char *metric, double value, const char *unit, const char *limit)
{
    printf("{\"bench\":\"spc_throughput\",\"metric\":\"%s\",\"value\":%.2f,\"unit\":\"%s\","
           "\"limit\":%s}\n",
           metric, value, unit, limit);
}

struct result {
    double per_s;
    double ns_per_record;
    uint64_t emitted;
};

/* Run `seconds` of CPU through a fresh instance; signal: the records' signal name. */
static int run(struct mr_names *names, const char *yaml, const char *signal, double seconds,
               struct result *res)
{
    static struct mr_config_errors errs;
    const struct mr_plugin *p = &mr_operator_spc;
    void *conf = calloc(1, p->conf.size);
    void *ctx = calloc(1, p->ctx_size);
    struct bench_host bh = {0};
    bh.host = (struct mr_operator_host){.name = "bench.spc",
                                        .names = names,
                                        .emit = count_emit,
                                        .side_open = side_open,
                                        .side_emit = side_emit,
                                        .arg = &bh};
    mr_metrics_create(&bh.host.metrics);
    struct mr_err err;
    if (mr_section_load_buffer(&p->conf, conf, "bench", yaml, strlen(yaml), NULL, &errs) != 0) {
        fprintf(stderr, "spc_throughput: %s\n", errs.msg[0]);
        return -1;
    }
    if (p->op.init(ctx, conf, &bh.host, &err) != 0) {
        fprintf(stderr, "spc_throughput: init: %s\n", err.msg);
        return -1;
    }
    struct mr_record *recs = calloc(MACHINES, sizeof(*recs));
    mr_name_id sig = 0;
    mr_names_intern(names, signal, strlen(signal), &sig);
    for (size_t k = 0; k < MACHINES; k++) {
        char buf[64];
        int len =
            snprintf(buf, sizeof(buf), "plant1/area%zu/line%zu/machine%zu", k / 1000, k / 10, k);
        mr_names_intern(names, buf, (size_t)len, &recs[k].asset);
        recs[k].signal = sig;
        recs[k].type = MR_VALUE_F64;
        recs[k].quality = MR_QUALITY_GOOD;
    }
    /* a table of N(0, 1) values, so the benchmark measures the operator, not the generator */
    static double normal[4096];
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < 4096; i += 2) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double u1 = ((double)(s >> 11) + 1) / 9007199254740993.0;
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double u2 = (double)(s >> 11) / 9007199254740992.0;
        normal[i] = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        normal[i + 1] = sqrt(-2 * log(u1)) * sin(2 * M_PI * u2);
    }
    uint64_t n = 0;
    int64_t t0 = cpu_ns();
    int64_t budget = (int64_t)(seconds * 1e9);
    for (int64_t r = 0; cpu_ns() - t0 < budget; r++) {
        for (size_t k = 0; k < MACHINES; k++) {
            recs[k].time_ns = 1000 * SEC + r * 12 * SEC;
            recs[k].v.f64 = 20.0 + 0.004 * normal[(k * 7 + (size_t)r * 13) & 4095];
        }
        for (size_t i = 0; i < MACHINES; i += BATCH) {
            size_t m = MACHINES - i < BATCH ? MACHINES - i : BATCH;
            if (p->op.process(ctx, recs + i, m, &err) != 0) {
                fprintf(stderr, "spc_throughput: %s\n", err.msg);
                return -1;
            }
        }
        n += MACHINES;
    }
    double ns = (double)(cpu_ns() - t0);
    res->per_s = (double)n / (ns / 1e9);
    res->ns_per_record = ns / (double)n;
    res->emitted = bh.emitted;
    p->op.fini(ctx);
    mr_section_free(&p->conf, conf);
    free(conf);
    free(ctx);
    free(recs);
    mr_metrics_destroy(bh.host.metrics);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL) > 0 ? strtod(argv[i], NULL) : 3;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            i++;
        } else {
            fprintf(stderr, "usage: spc_throughput [--seconds N] [--dir DIR]\n");
            return 2;
        }
    }
    struct mr_names *names;
    mr_names_create(&names, 100000, 16u << 20);
    const char *imr = "characteristics:\n"
                      "  - {signal: dimension, lsl: 19.98, usl: 20.02, target: 20.0,\n"
                      "     actions: [{when: [tolerance], do: flag},\n"
                      "               {when: [nelson2, nelson3, nelson5, nelson6], do: adjust}]}\n";
    const char *xbar = "characteristics:\n"
                       "  - {signal: dimension, chart: xbar_r, subgroup_size: 5, lsl: 19.98,\n"
                       "     usl: 20.02, rules: [range, weco1, weco2, weco3, weco4, nelson1,\n"
                       "     nelson2, nelson3, nelson4, nelson5, nelson6, nelson7, nelson8]}\n";
    struct result pass;
    struct result a;
    struct result b;
    if (run(names, imr, "temperature", seconds, &pass) != 0 ||
        run(names, imr, "dimension", seconds, &a) != 0 ||
        run(names, xbar, "dimension", seconds, &b) != 0) {
        return 1;
    }
    emit("passthrough_records_per_s", pass.per_s, "records/s", "null");
    emit("imr_10k_machines_updates_per_s", a.per_s, "updates/s",
         "\"spc_throughput.passthrough_records_per_s\"");
    emit("imr_cpu_ns_per_record", a.ns_per_record, "ns", "250");
    emit("xbar_r_10k_machines_updates_per_s", b.per_s, "updates/s",
         "\"spc_throughput.passthrough_records_per_s\"");
    emit("xbar_r_cpu_ns_per_record", b.ns_per_record, "ns", "250");
    emit("imr_records_out_per_record_in", (double)a.emitted / (a.per_s * seconds), "ratio", "null");
    mr_names_destroy(names);
    return 0;
}
