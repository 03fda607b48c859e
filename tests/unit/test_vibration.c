/* Operator `vibration`: time-domain statistics of known signals (and their chunked moments
 * against a two-pass reference), band RMS of a tone and of noise (Parseval), velocity RMS of
 * tones and the ISO 10816-3 zones with their alerts, bearing defect frequencies of the IMS rig
 * (domain.md §3.3), the envelope spectrum of impacts at BPFO, window timing, gaps, bad input
 * and config, and a checkpoint round trip in the middle of a window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "analytics/vibration_dsp.h"
#include "millrace/alloc.h"
#include "support/op_harness.h"

extern const struct mr_plugin mr_operator_vibration;

/* |a - b| <= tol, with both values in the message (old cmocka has no assert_double_equal). */
#define assert_near(a, b, tol) assert_near_at((a), (b), (tol), #a, __LINE__)
static void assert_near_at(double a, double b, double tol, const char *what, int line)
{
    if (!(fabs(a - b) <= tol)) {
        fail_msg("line %d: %s = %.9g, want %.9g +- %.3g", line, what, a, b, tol);
    }
}

#define SEC   1000000000LL
#define M1    "plant1/line1/spindle1"
#define RATE  10000.0
#define BLOCK 10000
#define T0    (100 * SEC)

static const char *const IMS_YAML =
    "shaft_rpm: 2000\n"
    "bearing: {balls: 16, ball_diameter: 0.331, pitch_diameter: 2.815, contact_angle_deg: "
    "15.17}\n"
    "envelope_band: 2000-4000\n";

static float sig[3 * BLOCK];

/* Deterministic standard normal (xorshift + Box-Muller). */
static uint64_t rng_state = 88172645463325252ull;
static double uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}
static double gauss(void)
{
    return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

static void open_ok(struct op_harness *h, const char *yaml)
{
    if (op_harness_open(h, &mr_operator_vibration, yaml) != 0) {
        fail_msg("open: %s", h->err.msg);
    }
}

/* Push x[0..n) as records of `per` samples from time t0. */
static void feed(struct op_harness *h, int64_t t0, const float *x, size_t n, size_t per)
{
    for (size_t i = 0; i < n; i += per) {
        struct mr_record r = {
            .time_ns = t0 + (int64_t)llround((double)i * 1e9 / RATE),
            .asset = op_name(h, M1),
            .signal = op_name(h, "vibration"),
            .type = MR_VALUE_SAMPLES,
            .quality = MR_QUALITY_GOOD,
            .v.samples = {.data = x + i,
                          .n = (uint32_t)(n - i < per ? n - i : per),
                          .rate_hz = RATE},
        };
        assert_int_equal(op_harness_push(h, &r, 1), 0);
    }
}

/* Value of the first captured record named `name` at or after index from (fails if none). */
static double value_of(struct op_harness *h, const char *name, long *at)
{
    long i = op_find(h, 0, M1, name);
    if (i < 0) {
        fail_msg("no record %s", name);
    }
    assert_int_equal(h->out[i].type, MR_VALUE_F64);
    if (at != NULL) {
        *at = i;
    }
    return h->out[i].v.f64;
}

static uint64_t errors_of(struct op_harness *h)
{
    struct mr_plugin_counters c;
    assert_int_equal(mr_plugin_counters_register(h->metrics, h->plugin, h->host.name, &c), 0);
    return mr_counter_value(c.errors);
}

enum { SIG_SINE, SIG_NOISE, SIG_IMPULSES };

static void make_signal(int kind, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (kind) {
        case SIG_SINE: /* 50 Hz, amplitude 2: whole periods, a sample on each crest */
            sig[i] = (float)(2 * sin(2 * M_PI * 50 * (double)i / RATE));
            break;
        case SIG_NOISE:
            sig[i] = (float)gauss();
            break;
        default: /* 10 unit impulses in 10000 samples */
            sig[i] = i % 1000 == 500 ? 1.0f : 0.0f;
            break;
        }
    }
}

static void test_stats(void **state)
{
    (void)state;
    static const struct {
        int kind;
        double rms, peak, crest, skew, kurt, tol;
    } cases[] = {
        {SIG_SINE, M_SQRT2, 2, M_SQRT2, 0, 1.5, 1e-4},
        {SIG_NOISE, 1, -1, -1, 0, 3, 0.15},
        /* p = 1/1000: kurtosis = (1 - 3p + 3p^2) / (p (1 - p)) = 998.0 */
        {SIG_IMPULSES, 0.0316227766016838, 1, 31.6227766016838, -1, 998.0, 0.01},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct op_harness h;
        open_ok(&h, "features: [rms, peak, peak_to_peak, crest, skewness, kurtosis]\n");
        make_signal(cases[c].kind, BLOCK);
        feed(&h, T0, sig, BLOCK, 1000);
        long at = 0;
        assert_near(value_of(&h, "vibration.rms", &at), cases[c].rms, cases[c].tol * cases[c].rms);
        /* window end = last sample + 1/rate = T0 + 1 s; after the 10 raw blocks */
        assert_int_equal(h.out[at].time_ns, T0 + SEC);
        assert_int_equal(at, 10);
        if (cases[c].peak >= 0) {
            assert_near(value_of(&h, "vibration.peak", NULL), cases[c].peak, 1e-4);
        }
        if (cases[c].crest >= 0) {
            assert_near(value_of(&h, "vibration.crest", NULL), cases[c].crest,
                        cases[c].tol * cases[c].crest);
        }
        if (cases[c].skew >= 0) {
            assert_near(value_of(&h, "vibration.skewness", NULL), cases[c].skew, 0.1);
        }
        assert_near(value_of(&h, "vibration.kurtosis", NULL), cases[c].kurt,
                    cases[c].tol * cases[c].kurt);
        assert_int_equal(h.nout, 10 + 6);
        op_harness_close(&h);
    }
}

static void test_bands(void **state)
{
    (void)state;
    struct op_harness h;
    /* a tone of amplitude 1 at 1500 Hz: band RMS 1/sqrt 2 in its band, ~0 elsewhere */
    open_ok(&h, "features: [bands]\nbands: [10-500, 500-1000, 1000-2000, 2000-5000]\n");
    for (size_t i = 0; i < BLOCK; i++) {
        sig[i] = (float)sin(2 * M_PI * 1500 * (double)i / RATE + 0.3);
    }
    feed(&h, T0, sig, BLOCK, 1000);
    assert_near(value_of(&h, "vibration.band_1000_2000", NULL), M_SQRT1_2, 1e-3);
    assert_true(value_of(&h, "vibration.band_10_500", NULL) < 1e-3);
    assert_true(value_of(&h, "vibration.band_500_1000", NULL) < 1e-3);
    assert_true(value_of(&h, "vibration.band_2000_5000", NULL) < 1e-3);
    op_harness_close(&h);

    /* Parseval: bands covering 0..Nyquist add up (in power) to the mean square */
    open_ok(&h, "features: [rms, bands]\nbands: [0-1000, 1000-3000, 3000-5001]\n");
    make_signal(SIG_NOISE, BLOCK);
    feed(&h, T0, sig, BLOCK, 1000);
    double rms = value_of(&h, "vibration.rms", NULL);
    double a = value_of(&h, "vibration.band_0_1000", NULL);
    double b = value_of(&h, "vibration.band_1000_3000", NULL);
    double c = value_of(&h, "vibration.band_3000_5001", NULL);
    assert_near(sqrt(a * a + b * b + c * c), rms, 0.02 * rms);
    assert_near(b / a, sqrt(2.0), 0.1); /* white: power proportional to bandwidth */
    op_harness_close(&h);
}

static void test_defect_freqs(void **state)
{
    (void)state;
    /* IMS rig, Rexnord ZA-2115 at 2000 rpm (domain.md §3.3) and CWRU 6205 at 1797 rpm */
    static const struct {
        struct mr_vib_bearing b;
        double rpm, ftf, bpfo, bpfi, bsf;
    } cases[] = {
        {{16, 0.331, 2.815, 15.17}, 2000, 14.78, 236.40, 296.93, 139.92},
        {{9, 0.3126, 1.537, 0}, 1797, 11.93, 107.36, 162.19, 70.58},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double f[MR_VIB_NDEFECTS];
        mr_vib_defect_freqs(&cases[i].b, cases[i].rpm / 60, f);
        assert_near(f[MR_VIB_FTF], cases[i].ftf, 0.001 * cases[i].ftf);
        assert_near(f[MR_VIB_BPFO], cases[i].bpfo, 0.001 * cases[i].bpfo);
        assert_near(f[MR_VIB_BPFI], cases[i].bpfi, 0.001 * cases[i].bpfi);
        assert_near(f[MR_VIB_BSF], cases[i].bsf, 0.001 * cases[i].bsf);
    }
}

/* Outer-race fault: impacts at BPFO each ring a 3 kHz resonance, plus noise. */
static void make_bpfo_signal(size_t n)
{
    const double bpfo = 236.40, fres = 3000, tau = 0.0008;
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / RATE;
        double since = fmod(t, 1 / bpfo);
        sig[i] = (float)(exp(-since / tau) * sin(2 * M_PI * fres * since) + 0.2 * gauss() +
                         0.5 * sin(2 * M_PI * 33.333 * t));
    }
}

static void test_envelope_bpfo(void **state)
{
    (void)state;
    make_bpfo_signal(BLOCK);
    /* the envelope spectrum itself peaks at BPFO */
    struct mr_vib_dsp d;
    assert_int_equal(mr_vib_dsp_init(&d, 8192), 0); /* 1.22 Hz bins */
    mr_vib_dsp_spectrum(&d, sig);
    assert_int_equal(mr_vib_dsp_prepare(&d, RATE, 2000, 4000, 1200), 0);
    mr_vib_dsp_envelope(&d);
    uint32_t best = 0;
    for (uint32_t k = 41; k <= d.m / 2; k++) { /* above the cage and shaft rates */
        best = d.envpow[k] > d.envpow[best] ? k : best;
    }
    assert_true(fabs(best * RATE / 8192 - 236.40) <= RATE / 8192);
    mr_vib_dsp_fini(&d);

    struct op_harness h;
    open_ok(&h, IMS_YAML);
    feed(&h, T0, sig, BLOCK, 1000);
    double bpfo = value_of(&h, "vibration.bpfo_amp", NULL);
    assert_true(bpfo > 0.01);
    assert_true(bpfo > 4 * value_of(&h, "vibration.bpfi_amp", NULL));
    assert_true(bpfo > 4 * value_of(&h, "vibration.bsf_amp", NULL));
    assert_true(value_of(&h, "vibration.bpfo_amp2", NULL) >
                2 * value_of(&h, "vibration.bpfi_amp2", NULL));
    op_harness_close(&h);

    /* the same machine without the fault (same noise and shaft tone): no BPFO line */
    open_ok(&h, IMS_YAML);
    for (size_t i = 0; i < BLOCK; i++) {
        sig[i] = (float)(0.2 * gauss() + 0.5 * sin(2 * M_PI * 33.333 * (double)i / RATE));
    }
    feed(&h, T0, sig, BLOCK, 1000);
    assert_true(value_of(&h, "vibration.bpfo_amp", NULL) < bpfo / 5);
    op_harness_close(&h);
}

/* A checkpoint in the middle of a window changes nothing that comes out. */
static void test_roundtrip(void **state)
{
    (void)state;
    make_bpfo_signal(2 * BLOCK);
    struct op_harness a, b;
    open_ok(&a, IMS_YAML);
    feed(&a, T0, sig, 2 * BLOCK, 1000);
    open_ok(&b, IMS_YAML);
    feed(&b, T0, sig, 15000, 1000);
    assert_int_equal(op_harness_roundtrip(&b), 0);
    feed(&b, T0 + 3 * SEC / 2, sig + 15000, 5000, 1000);
    assert_int_equal(a.nout, b.nout);
    for (size_t i = 0; i < a.nout; i++) {
        assert_int_equal(a.out[i].signal, b.out[i].signal);
        assert_int_equal(a.out[i].time_ns, b.out[i].time_ns);
        if (a.out[i].type == MR_VALUE_F64) {
            assert_true(a.out[i].v.f64 == b.out[i].v.f64);
        }
    }
    op_harness_close(&a);
    op_harness_close(&b);
}

static void test_gaps_and_bad_input(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "features: [rms]\n");
    make_signal(SIG_SINE, 2 * BLOCK);
    /* 0.5 s, then a 0.1 s gap: the partial window is dropped; 1 s after the gap gives one */
    feed(&h, T0, sig, 5000, 1000);
    feed(&h, T0 + 6 * SEC / 10, sig, BLOCK, 1000);
    long at = 0;
    value_of(&h, "vibration.rms", &at);
    assert_int_equal(h.out[at].time_ns, T0 + 16 * SEC / 10);
    assert_int_equal(op_find(&h, (size_t)at + 1, M1, "vibration.rms"), -1);
    op_harness_clear(&h);

    /* NaN in a window: nothing comes out, one error; raw blocks and other records pass */
    sig[123] = NAN;
    feed(&h, T0 + 10 * SEC, sig, BLOCK, 1000);
    assert_int_equal(h.nout, 10);
    assert_int_equal(errors_of(&h), 1);
    struct mr_record other = op_rec(&h, M1, "temperature", T0, 21.5);
    struct mr_record bad = {.time_ns = T0,
                            .asset = op_name(&h, M1),
                            .signal = op_name(&h, "vibration"),
                            .type = MR_VALUE_SAMPLES,
                            .quality = MR_QUALITY_BAD,
                            .v.samples = {.data = sig, .n = 10, .rate_hz = RATE}};
    struct mr_record norate = bad;
    norate.quality = MR_QUALITY_GOOD;
    norate.v.samples.rate_hz = 0;
    struct mr_record batch[3] = {other, bad, norate};
    assert_int_equal(op_harness_push(&h, batch, 3), 0);
    assert_int_equal(h.nout, 13);
    op_harness_close(&h);
}

static void test_bad_config(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "features: [rms, wobble]\n",
        "bands: [10-500, fast]\n",
        "bands: [500-10]\n",
        "nfft: 1000\n",            /* not a power of two */
        "block: 10\n",             /* below the minimum */
        "block: 1000\n",           /* shorter than a segment */
        "velocity_band: 0-1000\n", /* no velocity at 0 Hz */
        "zones: {ab: 3, bc: 2, cd: 5}\n",
        "iso_group: 3\n",
        "unit: mph\n",
        "envelope_band: high\n",
        "bearing: {balls: 9, ball_diameter: 8, pitch_diameter: 39}\n", /* no shaft_rpm */
        "shaft_rpm: 1800\nbearing: {balls: 9, ball_diameter: 40, pitch_diameter: 39}\n",
    };
    struct mr_err err;
    if (mr_section_validate(&mr_operator_vibration.conf, "vibration", &err) != 0) {
        fail_msg("field table: %s", err.msg);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct op_harness h;
        assert_int_not_equal(op_harness_open(&h, &mr_operator_vibration, bad[i]), 0);
        op_harness_close(&h);
    }
}

/* Chunked moments equal a two-pass double computation on the same samples, for any chunking,
 * also far from zero mean (a DC offset 100 times the vibration). */
static void test_moments(void **state)
{
    (void)state;
    size_t n = 3 * BLOCK;
    for (size_t i = 0; i < n; i++) {
        sig[i] = (float)(100 + gauss() + (i % 997 == 0 ? 8 : 0));
    }
    double mean = 0, m2 = 0, m3 = 0, m4 = 0;
    for (size_t i = 0; i < n; i++) {
        mean += sig[i];
    }
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        double d = sig[i] - mean;
        m2 += d * d;
        m3 += d * d * d;
        m4 += d * d * d * d;
    }
    m2 /= (double)n;
    double skew = m3 / (double)n / pow(m2, 1.5), kurt = m4 / (double)n / (m2 * m2);
    static const size_t chunks[] = {1, 7, 1000, 1024, 4096, 30000};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct mr_vib_moments m;
        mr_vib_moments_reset(&m);
        for (size_t i = 0; i < n; i += chunks[c]) {
            mr_vib_moments_add(&m, sig + i, n - i < chunks[c] ? n - i : chunks[c]);
        }
        struct mr_vib_stats st;
        mr_vib_moments_stats(&m, &st);
        assert_near(m.mean, mean, 1e-9 * mean);
        assert_near(m.m2 / m.n, m2, 1e-4 * m2);
        assert_near(st.skewness, skew, 1e-3);
        assert_near(st.kurtosis, kurt, 1e-4 * kurt);
    }
}

/* ISO 10816-3 velocity: tones of known velocity RMS through zones A, B, C, D (group 2 rigid:
 * 1.4 / 2.8 / 4.5 mm/s), alerts entering C and D, re-armed 5 % below their boundary. */
static void test_velocity_zones(void **state)
{
    (void)state;
    static const struct {
        double v, f; /* mm/s RMS, Hz */
        const char *zone;
        const char *alert; /* severity of the alert this window raises, or NULL */
    } steps[] = {
        {1.0, 100, "A", NULL},      {2.0, 50, "B", NULL},
        {3.5, 200, "C", "warning"}, {3.6, 200, "C", NULL},
        {6.0, 100, "D", "alarm"},   {4.4, 100, "C", NULL}, /* within 5 % of C/D: still armed */
        {4.8, 100, "D", NULL},      {2.7, 100, "B", NULL}, /* within 5 % of B/C */
        {3.0, 100, "C", NULL},      {2.0, 100, "B", NULL}, /* well below: re-armed */
        {4.0, 100, "C", "warning"},
    };
    struct op_harness h;
    open_ok(&h, "features: [velocity]\n");
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        /* amplitude in g of a tone whose velocity RMS is v: A = v sqrt2 2 pi f / 9806.65 */
        double amp = steps[s].v * M_SQRT2 * 2 * M_PI * steps[s].f / 9806.65;
        for (size_t i = 0; i < BLOCK; i++) {
            sig[i] = (float)(amp * sin(2 * M_PI * steps[s].f * (double)i / RATE));
        }
        /* two windows per step: segments overlap, so the first one mixes in the previous step */
        op_harness_clear(&h);
        feed(&h, T0 + (int64_t)(2 * s) * SEC, sig, BLOCK, 1000);
        long a = op_find(&h, 0, M1, "alert");
        feed(&h, T0 + (int64_t)(2 * s + 1) * SEC, sig, BLOCK, 1000);
        long v = op_find(&h, 0, M1, "vibration.velocity_rms");
        v = op_find(&h, (size_t)v + 1, M1, "vibration.velocity_rms"); /* the second window */
        assert_true(v >= 0);
        assert_near(h.out[v].v.f64, steps[s].v, 0.02 * steps[s].v);
        long z = op_find(&h, (size_t)v, M1, "vibration.iso_zone");
        assert_true(z >= 0);
        assert_int_equal(h.out[z].type, MR_VALUE_STRING);
        assert_memory_equal(h.out[z].v.str.ptr, steps[s].zone, 1);
        assert_int_equal(op_find(&h, (size_t)a + 1, M1, "alert"), -1); /* one per step at most */
        if (steps[s].alert == NULL) {
            assert_int_equal(a, -1);
            continue;
        }
        assert_true(a >= 0);
        const struct mr_record *r = &h.out[a];
        assert_int_equal(r->time_ns, T0 + (int64_t)(2 * s + 1) * SEC);
        bool sev = false, det = false, start = false;
        for (size_t t = 0; t < r->ntags; t++) {
            size_t kl = 0;
            const char *k = mr_names_str(h.names, r->tags[t].key, &kl);
            const struct mr_bytes *tv = &r->tags[t].value;
            if (strcmp(k, "severity") == 0) {
                sev = tv->len == strlen(steps[s].alert) &&
                      memcmp(tv->ptr, steps[s].alert, tv->len) == 0;
            }
            det |=
                strcmp(k, "detector") == 0 && tv->len == 8 && memcmp(tv->ptr, "iso10816", 8) == 0;
            if (strcmp(k, "window_start") == 0) {
                start = strtoll(tv->ptr, NULL, 10) == T0 + (int64_t)(2 * s) * SEC;
            }
        }
        assert_true(sev && det && start);
    }
    op_harness_close(&h);

    /* m/s2 samples and own boundaries: 1 m/s2 at 100 Hz = 1.1254 mm/s RMS, above ab 1.0 */
    open_ok(&h, "features: [velocity]\nunit: m/s2\nzones: {ab: 1.0, bc: 2.0, cd: 3.0}\n");
    for (size_t i = 0; i < BLOCK; i++) {
        sig[i] = (float)sin(2 * M_PI * 100 * (double)i / RATE);
    }
    feed(&h, T0, sig, BLOCK, 1000);
    assert_near(value_of(&h, "vibration.velocity_rms", NULL), 1000 / (2 * M_PI * 100) / M_SQRT2,
                0.02);
    long z = op_find(&h, 0, M1, "vibration.iso_zone");
    assert_memory_equal(h.out[z].v.str.ptr, "B", 1);
    op_harness_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats),          cmocka_unit_test(test_bands),
        cmocka_unit_test(test_defect_freqs),   cmocka_unit_test(test_envelope_bpfo),
        cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_gaps_and_bad_input),
        cmocka_unit_test(test_bad_config),     cmocka_unit_test(test_moments),
        cmocka_unit_test(test_velocity_zones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
