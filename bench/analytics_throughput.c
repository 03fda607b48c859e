/* analytics_throughput: the predictive-maintenance operators on one core, through their plugin
 * API as a pipeline calls them (no journal).
 *
 * vibration: 200 channels of 10 kHz acceleration in 1000-sample blocks (as the simulator and
 * most edge DAQs deliver them), 1-s result windows, Welch segments of 2048:
 *  - time-domain + spectral band features (rms, peak, peak_to_peak, crest, skewness, kurtosis,
 *    4 band RMS, velocity RMS + ISO zone): CPU per 10 kHz sensor-second, against the 40 us
 *    target (research/perf.md B1), and samples/s;
 *  - the same plus the bearing envelope spectrum (FTF/BPFO/BPFI/BSF and harmonics);
 *  - state per channel (heap in use after 1000 channels, divided), against 16 KiB;
 *  - the limit in the same run: one pass over the same samples computing only sum and sum of
 *    squares (what reading the data costs), as samples/s.
 * detector: 10k keys (1000 assets x 10 signals), f64 records, zscore / ewma / cusum, updates/s;
 * the limit in the same run: the bare EWMA update on a dense array per key (no records, no
 * key lookup, no outputs).
 *
 *   analytics_throughput [--seconds N] [--dir DIR]   (--dir is accepted and unused)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/plugin.h"

#include "bench_op.h"

#define RATE     10000.0
#define BLOCK    1000
#define CHANNELS 200
#define SEC      1000000000LL

static void emit(const char *metric, double value, const char *unit, const char *limit)
{
    printf("{\"bench\":\"analytics_throughput\",\"metric\":\"%s\",\"value\":%.2f,\"unit\":\"%s\","
           "\"limit\":%s}\n",
           metric, value, unit, limit);
}

/* One second of a machine with a developing outer-race fault: shaft tone, noise, impacts. */
static float *make_signal(void)
{
    float *x = malloc(sizeof(float) * (size_t)RATE);
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < (size_t)RATE; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double u = (double)(s >> 11) / 9007199254740992.0 - 0.5;
        double t = (double)i / RATE, since = fmod(t, 1 / 88.4);
        x[i] = (float)(0.05 * sin(2 * M_PI * 24.67 * t) + 0.05 * u +
                       0.3 * exp(-since / 0.0008) * sin(2 * M_PI * 3000 * since));
    }
    return x;
}

/* CPU us per sensor-second of the vibration operator with this configuration. */
static double run_vibration(struct mr_names *names, const float *x, int seconds, const char *yaml)
{
    struct bench_op o;
    if (bench_op_open(&o, names, "vibration", yaml) != 0) {
        return -1;
    }
    mr_name_id sig = 0, assets[CHANNELS];
    mr_names_intern(names, "vibration", 9, &sig);
    for (int c = 0; c < CHANNELS; c++) {
        char buf[64];
        int len = snprintf(buf, sizeof(buf), "plant/line/machine%d", c);
        mr_names_intern(names, buf, (size_t)len, &assets[c]);
    }
    struct mr_record batch[CHANNELS];
    struct mr_err err;
    int64_t t0 = mr_clock_mono_ns();
    for (int s = 0; s < seconds; s++) {
        for (int b = 0; b < (int)RATE / BLOCK; b++) {
            for (int c = 0; c < CHANNELS; c++) {
                batch[c] = (struct mr_record){
                    .time_ns = 1000 * SEC + s * SEC + b * (SEC / 10),
                    .asset = assets[c],
                    .signal = sig,
                    .type = MR_VALUE_SAMPLES,
                    .quality = MR_QUALITY_GOOD,
                    .v.samples = {.data = x + b * BLOCK, .n = BLOCK, .rate_hz = RATE}};
            }
            if (o.plugin->op.process(o.ctx, batch, CHANNELS, &err) != 0) {
                fprintf(stderr, "analytics_throughput: %s\n", err.msg);
                return -1;
            }
        }
    }
    double us = (double)(mr_clock_mono_ns() - t0) / 1e3 / ((double)seconds * CHANNELS);
    bench_op_close(&o);
    return us;
}

/* Heap bytes per channel once 1000 channels hold state. */
static double vibration_state(struct mr_names *names, const float *x, const char *yaml)
{
    enum { N = 1000 };
    struct bench_op o;
    if (bench_op_open(&o, names, "vibration", yaml) != 0) {
        return -1;
    }
    mr_name_id sig = 0;
    mr_names_intern(names, "vibration", 9, &sig);
    size_t before = bench_heap_in_use();
    struct mr_err err;
    for (int c = 0; c < N; c++) {
        char buf[64];
        int len = snprintf(buf, sizeof(buf), "plant/state/machine%d", c);
        mr_name_id a = 0;
        mr_names_intern(names, buf, (size_t)len, &a);
        struct mr_record r = {.time_ns = 1000 * SEC,
                              .asset = a,
                              .signal = sig,
                              .type = MR_VALUE_SAMPLES,
                              .quality = MR_QUALITY_GOOD,
                              .v.samples = {.data = x, .n = BLOCK, .rate_hz = RATE}};
        o.plugin->op.process(o.ctx, &r, 1, &err);
    }
    double per = (double)(bench_heap_in_use() - before) / N;
    bench_op_close(&o);
    return per;
}

/* The read limit: samples/s of one sum + sum-of-squares pass over the same blocks. */
static double read_limit(const float *x, int seconds)
{
    double check = 0;
    int64_t t0 = mr_clock_mono_ns();
    for (int s = 0; s < seconds * CHANNELS; s++) {
        float a = 0, q = 0;
        for (size_t i = 0; i < (size_t)RATE; i++) {
            a += x[i];
            q += x[i] * x[i];
        }
        check += a + q;
    }
    double sec = (double)(mr_clock_mono_ns() - t0) / 1e9;
    return check != 0 ? (double)seconds * CHANNELS * RATE / sec : 0;
}

/* Detector updates/s over 10k keys. */
static double run_detector(struct mr_names *names, const char *yaml, int rounds)
{
    enum { ASSETS = 1000, SIGNALS = 10, BATCH = 1024 };
    struct bench_op o;
    if (bench_op_open(&o, names, "detector", yaml) != 0) {
        return -1;
    }
    size_t n = (size_t)ASSETS * SIGNALS;
    struct mr_record *recs = calloc(n, sizeof(*recs));
    for (size_t k = 0; k < n; k++) {
        char buf[64];
        int len = snprintf(buf, sizeof(buf), "plant/det/machine%zu", k / SIGNALS);
        mr_names_intern(names, buf, (size_t)len, &recs[k].asset);
        len = snprintf(buf, sizeof(buf), "feature%zu", k % SIGNALS);
        mr_names_intern(names, buf, (size_t)len, &recs[k].signal);
        recs[k].type = MR_VALUE_F64;
        recs[k].quality = MR_QUALITY_GOOD;
    }
    uint64_t s = 1;
    struct mr_err err;
    int64_t t0 = mr_clock_mono_ns();
    for (int r = 0; r < rounds; r++) {
        for (size_t k = 0; k < n; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            recs[k].time_ns = 1000 * SEC + r * SEC;
            recs[k].v.f64 = 10 + (double)(s >> 40) / (double)(1ull << 24);
        }
        for (size_t i = 0; i < n; i += BATCH) {
            size_t m = n - i < BATCH ? n - i : BATCH;
            if (o.plugin->op.process(o.ctx, recs + i, m, &err) != 0) {
                fprintf(stderr, "analytics_throughput: %s\n", err.msg);
                return -1;
            }
        }
    }
    double sec = (double)(mr_clock_mono_ns() - t0) / 1e9;
    free(recs);
    bench_op_close(&o);
    return (double)n * rounds / sec;
}

/* The bare EWMA update per key on a dense array: what the arithmetic costs. */
static double detector_limit(int rounds)
{
    enum { KEYS = 10000 };
    double *e = calloc(KEYS, sizeof(double));
    uint64_t s = 1, alarms = 0;
    int64_t t0 = mr_clock_mono_ns();
    for (int r = 0; r < rounds; r++) {
        for (size_t k = 0; k < KEYS; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            double x = 10 + (double)(s >> 40) / (double)(1ull << 24);
            e[k] = 0.2 * x + 0.8 * e[k];
            alarms += fabs(e[k] - 10.5) > 3;
        }
    }
    double sec = (double)(mr_clock_mono_ns() - t0) / 1e9;
    free(e);
    return alarms < UINT64_MAX ? (double)KEYS * rounds / sec : 0;
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
            fprintf(stderr, "usage: analytics_throughput [--seconds N] [--dir DIR]\n");
            return 2;
        }
    }
    struct mr_names *names;
    mr_names_create(&names, 100000, 16u << 20);
    float *x = make_signal();
    const char *bands = "features: [rms, peak, peak_to_peak, crest, skewness, kurtosis, bands, "
                        "velocity]\nmax_keys: 100000\n";
    const char *all = "shaft_rpm: 1480\nbearing: {balls: 9, ball_diameter: 7.94, "
                      "pitch_diameter: 39.04}\nenvelope_band: 2000-4500\nmax_keys: 100000\n";
    double limit = read_limit(x, seconds);
    emit("read_pass_samples_per_s", limit, "samples/s", "null");
    double us = run_vibration(names, x, seconds, bands);
    double env = run_vibration(names, x, seconds, all);
    if (us < 0 || env < 0) {
        return 1;
    }
    emit("features_us_per_sensor_second", us, "us", "40");
    emit("features_samples_per_s", RATE * 1e6 / us, "samples/s",
         "\"analytics_throughput.read_pass_samples_per_s\"");
    emit("features_channels_per_core", 1e6 / us, "channels", "25000");
    emit("features_with_envelope_us_per_sensor_second", env, "us", "null");
    emit("state_bytes_per_channel", vibration_state(names, x, all), "bytes", "16384");
    int rounds = 100;
    double lim = detector_limit(rounds * 10);
    emit("detector_kernel_updates_per_s", lim, "updates/s", "null");
    static const char *const methods[] = {"zscore", "ewma", "cusum"};
    for (size_t m = 0; m < 3; m++) {
        char yaml[128], metric[96];
        snprintf(yaml, sizeof(yaml), "method: %s\nbaseline_samples: 30\nmax_keys: 100000\n",
                 methods[m]);
        double ups = run_detector(names, yaml, rounds);
        if (ups < 0) {
            return 1;
        }
        snprintf(metric, sizeof(metric), "detector_%s_10k_keys_updates_per_s", methods[m]);
        emit(metric, ups, "updates/s", "\"analytics_throughput.detector_kernel_updates_per_s\"");
    }
    free(x);
    mr_names_destroy(names);
    return 0;
}
