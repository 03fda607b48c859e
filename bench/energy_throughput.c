/* energy_throughput: the energy operator on one core, through its plugin API as a pipeline
 * calls it (no journal).
 *
 * 10,000 machines in 100 lines of one site (plant/areaA/lineL/mM), each sending per second of
 * event time a power value (kW) and an energy meter reading (kWh), a good-part count every
 * 10 s, a state change every 5 min (RUNNING <-> IDLE): about 2.1 input records per machine
 * and second, in batches of 1024, time-ordered. After each second every machine's watermark
 * and the pipeline-wide one advance (as the engine does), so the run includes forecasts
 * (1 min), demand intervals (15 min, machine, line and site), idle accounting and the spike
 * baseline, under a two-period tariff that splits the energy at 07:00.
 * Reported: input records/s, records out/s (inputs pass through, then results), CPU ns per input
 * record (target: all four issue-5 families under 1 us per record, so ~250 ns here), and state
 * bytes per machine.
 *
 *   energy_throughput [--seconds N] [--dir DIR]   (N: event-time seconds, default 1200;
 *                                                  --dir is accepted and unused)
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/plugin.h"

extern const struct mr_plugin mr_operator_energy;

#define SEC      1000000000LL
#define MACHINES 10000
#define PER_LINE 100
#define BATCH    1024
#define START    (1795392000LL * SEC + 6 * 3600 * SEC + 50 * 60 * SEC) /* Mon 06:50 UTC */

static uint64_t emitted;

static int count_emit(struct mr_operator_host *h, const struct mr_record *recs, size_t n)
{
    (void)h;
    (void)recs;
    emitted += n;
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

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void emit(const char *metric, double value, const char *unit, const char *limit)
{
    printf("{\"bench\":\"energy_throughput\",\"metric\":\"%s\",\"value\":%.2f,\"unit\":\"%s\","
           "\"limit\":%s}\n",
           metric, value, unit, limit);
}

struct feed {
    mr_name_id assets[MACHINES];
    mr_name_id power, energy, good, state;
    double meter[MACHINES];
    struct mr_record batch[BATCH];
    size_t n;
};

static int flush(void *ctx, struct feed *f, uint64_t *in)
{
    struct mr_err err;
    if (f->n > 0 && mr_operator_energy.op.process(ctx, f->batch, f->n, &err) != 0) {
        fprintf(stderr, "energy_throughput: %s\n", err.msg);
        return -1;
    }
    *in += f->n;
    f->n = 0;
    return 0;
}

static int add(void *ctx, struct feed *f, uint64_t *in, struct mr_record r)
{
    f->batch[f->n++] = r;
    return f->n == BATCH ? flush(ctx, f, in) : 0;
}

/* One second of event time for every machine. */
static int second(void *ctx, struct feed *f, int s, uint64_t *in)
{
    int64_t t = START + s * SEC;
    int rc = 0;
    for (int m = 0; m < MACHINES && rc == 0; m++) {
        bool idle = ((s + m) / 300) % 2 == 1;
        double kw = (idle ? 8.0 : 40.0) + (double)((s * 7 + m * 13) % 5) * 0.1;
        f->meter[m] += kw / 3600.0;
        struct mr_record r = {.time_ns = t, .asset = f->assets[m], .quality = MR_QUALITY_GOOD};
        if ((s + m) % 300 == 0) {
            static const char *const st[2] = {"RUNNING", "IDLE"};
            r.signal = f->state;
            r.type = MR_VALUE_STRING;
            r.v.str = (struct mr_bytes){.ptr = st[idle], .len = (uint32_t)strlen(st[idle])};
            rc = add(ctx, f, in, r);
        }
        r.signal = f->power;
        r.type = MR_VALUE_F64;
        r.v.f64 = kw;
        rc = rc == 0 ? add(ctx, f, in, r) : rc;
        r.signal = f->energy;
        r.v.f64 = f->meter[m];
        rc = rc == 0 ? add(ctx, f, in, r) : rc;
        if ((s + m) % 10 == 0) {
            r.signal = f->good;
            r.type = MR_VALUE_I64;
            r.v.i64 = s / 10;
            rc = rc == 0 ? add(ctx, f, in, r) : rc;
        }
    }
    rc = rc == 0 ? flush(ctx, f, in) : rc;
    struct mr_err err;
    for (int m = 0; m < MACHINES && rc == 0; m++) {
        rc = mr_operator_energy.op.advance(ctx, f->assets[m], t - 2 * SEC, &err);
    }
    return rc == 0 ? mr_operator_energy.op.advance(ctx, 0, t - 2 * SEC, &err) : rc;
}

int main(int argc, char **argv)
{
    int seconds = 1200;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = (int)strtol(argv[++i], NULL, 10);
            seconds = seconds > 0 ? seconds : 1200;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            i++;
        } else {
            fprintf(stderr, "usage: energy_throughput [--seconds N] [--dir DIR]\n");
            return 2;
        }
    }
    struct mr_names *names = NULL;
    mr_names_create(&names, 100000, 16u << 20);
    struct mr_operator_host host = {
        .name = "bench.energy", .names = names, .emit = count_emit, .side_open = no_side};
    mr_metrics_create(&host.metrics);
    static const char *yaml =
        "price: 0.12\ncurrency: EUR\nidle_kw: 5\nmax_machines: 20000\n"
        "tariff: [{days: [weekdays], from: \"07:00\", to: \"21:00\", price: 0.31}]\n";
    static struct mr_config_errors errs;
    void *conf = calloc(1, mr_operator_energy.conf.size);
    if (mr_section_load_buffer(&mr_operator_energy.conf, conf, "bench", yaml, strlen(yaml), NULL,
                               &errs) != 0) {
        fprintf(stderr, "energy_throughput: %s\n", errs.msg[0]);
        return 1;
    }
    size_t heap0 = heap_in_use();
    void *ctx = calloc(1, mr_operator_energy.ctx_size);
    struct mr_err err;
    if (mr_operator_energy.op.init(ctx, conf, &host, &err) != 0) {
        fprintf(stderr, "energy_throughput: init: %s\n", err.msg);
        return 1;
    }
    static struct feed f;
    mr_names_intern(names, "power", 5, &f.power);
    mr_names_intern(names, "energy", 6, &f.energy);
    mr_names_intern(names, "good_count", 10, &f.good);
    mr_names_intern(names, "state", 5, &f.state);
    for (int m = 0; m < MACHINES; m++) {
        char buf[64];
        int len = snprintf(buf, sizeof(buf), "plant/area%d/line%d/m%d", m / 1000, m / PER_LINE, m);
        mr_names_intern(names, buf, (size_t)len, &f.assets[m]);
        f.meter[m] = 1000.0 + m;
    }
    uint64_t in = 0;
    if (second(ctx, &f, 0, &in) != 0) {
        return 1;
    }
    double state_bytes = (double)(heap_in_use() - heap0) / MACHINES;
    in = 0;
    emitted = 0;
    int64_t c0 = cpu_ns();
    int64_t w0 = mr_clock_mono_ns();
    for (int s = 1; s <= seconds; s++) {
        if (second(ctx, &f, s, &in) != 0) {
            return 1;
        }
    }
    double cpu = (double)(cpu_ns() - c0);
    double wall = (double)(mr_clock_mono_ns() - w0) / 1e9;
    emit("energy_10k_machines_records_per_s", (double)in / wall, "records/s", "null");
    emit("energy_cpu_ns_per_record", cpu / (double)in, "ns", "250");
    emit("energy_records_out_per_s", (double)emitted / wall, "records/s", "null");
    emit("energy_state_bytes_per_machine", state_bytes, "bytes", "null");
    mr_operator_energy.op.fini(ctx);
    free(ctx);
    mr_section_free(&mr_operator_energy.conf, conf);
    free(conf);
    mr_metrics_destroy(host.metrics);
    mr_names_destroy(names);
    return 0;
}
