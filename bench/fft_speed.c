/* fft_speed: the real FFT behind the vibration features (src/analytics/fft.c) against KissFFT
 * (kiss_fftr, Debian libkissfft-dev, BSD-3), the permissive FFT millrace used before, measured
 * in the same run on the same data, on one core, warm cache.
 *
 * Metrics (CPU time of the thread, median of 9 rounds of about 20 ms each):
 *   - real_N_ns / kissfft_real_N_ns: ns per real forward transform of N floats, N = 256 ..
 *     8192. Targets (research/perf.md B2): N = 1024 <= 1.2 us, N = 4096 <= 5.5 us.
 *     real_N_baseline_ns: the same with mr_fft forced to its baseline kernels, i.e. what a CPU
 *     without AVX2 runs (SSE2 on x86-64); real_N_ns uses the kernels picked for this CPU.
 *   - welch_NFFT_us / kissfft_welch_NFFT_us: CPU per 10 kHz sensor-second of spectral
 *     features: 10,000 samples as Welch segments of NFFT (1024, 2048) with 50 % overlap; per
 *     segment copy + Hann window + real FFT + |X|^2 accumulated into a power array, then 8 band
 *     sums. Time-domain moments are not included (B1's 40 us budget covers both).
 *     welch_NFFT_us uses mr_fft_real_power_add (window and power fused into the FFT);
 *     welch_NFFT_unfused_us does KissFFT's loop (plain window and power loops around
 *     mr_fft_real_forward); welch_NFFT_baseline_us is the fused call on the baseline kernels.
 *   - rel_l2_N / kissfft_rel_l2_N: relative L2 error against a double-precision DFT (B5:
 *     <= 1e-5).
 *
 *   fft_speed [--dir DIR]   (--dir is accepted and unused)
 */
#include <kiss_fft.h>
#include <kiss_fftr.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics/fft.h"

#define NMAX    8192
#define SAMPLES 10000 /* one second at 10 kHz */
#define BANDS   8
#define ROUNDS  9

/* What is timed: mr_fft (the kernels picked for this CPU; Welch with mr_fft_real_power_add),
 * KissFFT, mr_fft with plain window and power loops, mr_fft forced to its baseline kernels (what
 * a CPU without AVX2 runs: SSE2 on x86-64). */
enum { KIND_MR = 0, KIND_KISS = 1, KIND_MR_UNFUSED = 2, KIND_MR_BASE = 3, KINDS = 4 };

/* What one timed call works on (both libraries, so the loops around them are identical). */
struct subject {
    struct mr_fft_real mr;
    kiss_fftr_cfg kiss;
    uint32_t n;
    int kind;       /* KIND_* */
    float *in;      /* [NMAX] */
    float *re, *im; /* [NMAX/2+1] */
    kiss_fft_cpx *cpx;
    float *win;   /* Hann window [n] */
    float *seg;   /* windowed segment [n] */
    float *power; /* [n/2+1] */
    float *signal;
    double bands[BANDS];
    double sink;
};

static void emit(const char *metric, double value, const char *unit, const char *limit)
{
    printf("{\"bench\":\"fft_speed\",\"metric\":\"%s\",\"value\":%.6g,\"unit\":\"%s\","
           "\"limit\":%s}\n",
           metric, value, unit, limit);
}

static void transform(struct subject *s, const float *x)
{
    if (s->kind == KIND_KISS) {
        kiss_fftr(s->kiss, x, s->cpx);
    } else {
        mr_fft_real_forward(&s->mr, x, s->re, s->im);
    }
}

static void run_fft(struct subject *s)
{
    transform(s, s->in);
    s->sink += s->kind == KIND_KISS ? s->cpx[1].r : s->re[1];
}

/* One sensor-second of Welch features. */
static void run_welch(struct subject *s)
{
    uint32_t n = s->n, h = n / 2, bins = h + 1;
    memset(s->power, 0, bins * sizeof(float));
    for (uint32_t off = 0; off + n <= SAMPLES; off += h) {
        if (s->kind == KIND_MR || s->kind == KIND_MR_BASE) {
            mr_fft_real_power_add(&s->mr, s->signal + off, s->win, s->power);
            continue;
        }
        for (uint32_t j = 0; j < n; j++) {
            s->seg[j] = s->signal[off + j] * s->win[j];
        }
        transform(s, s->seg);
        if (s->kind == KIND_KISS) {
            for (uint32_t k = 0; k < bins; k++) {
                s->power[k] += s->cpx[k].r * s->cpx[k].r + s->cpx[k].i * s->cpx[k].i;
            }
        } else {
            for (uint32_t k = 0; k < bins; k++) {
                s->power[k] += s->re[k] * s->re[k] + s->im[k] * s->im[k];
            }
        }
    }
    for (int b = 0; b < BANDS; b++) {
        double sum = 0;
        for (uint32_t k = (uint32_t)b * h / BANDS; k < (uint32_t)(b + 1) * h / BANDS; k++) {
            sum += s->power[k];
        }
        s->bands[b] = sum;
    }
    s->sink += s->bands[3];
}

/* CPU time of this thread: the machine is shared, and the goal is stated in CPU time. */
static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median over ROUNDS of the mean CPU ns per call, each round about 20 ms. */
static double time_ns(void (*fn)(struct subject *), struct subject *s)
{
    int64_t t0 = cpu_ns();
    uint64_t calib = 0;
    while (cpu_ns() - t0 < 10000000) {
        fn(s);
        calib++;
    }
    uint64_t iters = calib * 2 + 1;
    double r[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        int64_t a = cpu_ns();
        for (uint64_t k = 0; k < iters; k++) {
            fn(s);
        }
        r[i] = (double)(cpu_ns() - a) / (double)iters;
    }
    qsort(r, ROUNDS, sizeof(r[0]), cmp_double);
    return r[ROUNDS / 2];
}

/* Relative L2 error of the current output against a double DFT of s->in. */
static double rel_l2(const struct subject *s)
{
    uint32_t n = s->n;
    double num = 0, den = 0;
    for (uint32_t k = 0; k <= n / 2; k++) {
        double sr = 0, si = 0;
        for (uint32_t j = 0; j < n; j++) {
            double a = -2.0 * M_PI * (double)((uint64_t)j * k % n) / n;
            sr += s->in[j] * cos(a);
            si += s->in[j] * sin(a);
        }
        double gr = s->kind == KIND_KISS ? s->cpx[k].r : s->re[k];
        double gi = s->kind == KIND_KISS ? s->cpx[k].i : s->im[k];
        num += (gr - sr) * (gr - sr) + (gi - si) * (gi - si);
        den += sr * sr + si * si;
    }
    return sqrt(num / den);
}

static int subject_init(struct subject *s, uint32_t n, int kind)
{
    s->n = n;
    s->kind = kind;
    if (kind == KIND_KISS) {
        s->kiss = kiss_fftr_alloc((int)n, 0, NULL, NULL);
        return s->kiss != NULL ? 0 : -1;
    }
    int rc = mr_fft_real_init(&s->mr, n);
    if (rc == 0 && kind == KIND_MR_BASE) {
        s->mr.half.isa = MR_FFT_ISA_BASE;
    }
    return rc;
}

static void subject_fini(struct subject *s)
{
    if (s->kind == KIND_KISS) {
        kiss_fftr_free(s->kiss);
    } else {
        mr_fft_real_fini(&s->mr);
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            i++;
        } else {
            fprintf(stderr, "usage: fft_speed [--dir DIR]\n");
            return 2;
        }
    }
    struct subject s = {0};
    s.in = malloc(NMAX * sizeof(float));
    s.re = malloc((NMAX / 2 + 1) * sizeof(float));
    s.im = malloc((NMAX / 2 + 1) * sizeof(float));
    s.cpx = malloc((NMAX / 2 + 1) * sizeof(kiss_fft_cpx));
    s.win = malloc(NMAX * sizeof(float));
    s.seg = malloc(NMAX * sizeof(float));
    s.power = malloc((NMAX / 2 + 1) * sizeof(float));
    s.signal = malloc(SAMPLES * sizeof(float));
    if (!s.in || !s.re || !s.im || !s.cpx || !s.win || !s.seg || !s.power || !s.signal) {
        fprintf(stderr, "fft_speed: out of memory\n");
        return 1;
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint32_t j = 0; j < NMAX; j++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        s.in[j] = (float)((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    /* A machine-like signal: two tones and noise. */
    for (uint32_t j = 0; j < SAMPLES; j++) {
        double t = j / 10000.0;
        s.signal[j] = (float)(sin(2 * M_PI * 29.5 * t) + 0.3 * sin(2 * M_PI * 1630.0 * t)) +
                      0.1f * s.in[j % NMAX];
    }
    static const uint32_t sizes[] = {256, 1024, 2048, 4096, 8192};
    static const int fft_kinds[] = {KIND_KISS, KIND_MR, KIND_MR_BASE};
    char metric[64], limit[96];
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        double ns[KINDS];
        for (size_t t = 0; t < sizeof(fft_kinds) / sizeof(fft_kinds[0]); t++) {
            int k = fft_kinds[t];
            if (subject_init(&s, sizes[i], k) != 0) {
                fprintf(stderr, "fft_speed: plan of %u failed\n", sizes[i]);
                return 1;
            }
            ns[k] = time_ns(run_fft, &s);
            if ((sizes[i] == 1024 || sizes[i] == 4096) && k != KIND_MR_BASE) {
                transform(&s, s.in);
                snprintf(metric, sizeof(metric), "%srel_l2_%u", k == KIND_KISS ? "kissfft_" : "",
                         sizes[i]);
                emit(metric, rel_l2(&s), "ratio", "1e-5");
            }
            subject_fini(&s);
        }
        snprintf(metric, sizeof(metric), "kissfft_real_%u_ns", sizes[i]);
        emit(metric, ns[KIND_KISS], "ns", "null");
        snprintf(limit, sizeof(limit), "\"fft_speed.kissfft_real_%u_ns\"", sizes[i]);
        snprintf(metric, sizeof(metric), "real_%u_ns", sizes[i]);
        emit(metric, ns[KIND_MR], "ns", limit);
        snprintf(metric, sizeof(metric), "real_%u_baseline_ns", sizes[i]);
        emit(metric, ns[KIND_MR_BASE], "ns", limit);
    }
    static const uint32_t nffts[] = {1024, 2048};
    static const int welch_kinds[] = {KIND_KISS, KIND_MR, KIND_MR_UNFUSED, KIND_MR_BASE};
    static const char *const welch_names[] = {"welch_%u_us", "kissfft_welch_%u_us",
                                              "welch_%u_unfused_us", "welch_%u_baseline_us"};
    for (size_t i = 0; i < sizeof(nffts) / sizeof(nffts[0]); i++) {
        uint32_t n = nffts[i];
        for (uint32_t j = 0; j < n; j++) {
            s.win[j] = (float)(0.5 - 0.5 * cos(2 * M_PI * j / n));
        }
        snprintf(limit, sizeof(limit), "\"fft_speed.kissfft_welch_%u_us\"", n);
        for (size_t t = 0; t < sizeof(welch_kinds) / sizeof(welch_kinds[0]); t++) {
            int k = welch_kinds[t];
            if (subject_init(&s, n, k) != 0) {
                fprintf(stderr, "fft_speed: plan of %u failed\n", n);
                return 1;
            }
            double us = time_ns(run_welch, &s) / 1000.0;
            subject_fini(&s);
            snprintf(metric, sizeof(metric), welch_names[k], n);
            emit(metric, us, "us per sensor-second", k == KIND_KISS ? "null" : limit);
        }
    }
    printf("fft_speed: checksum %g\n", s.sink);
    free(s.in), free(s.re), free(s.im), free(s.cpx), free(s.win), free(s.seg), free(s.power);
    free(s.signal);
    return 0;
}
