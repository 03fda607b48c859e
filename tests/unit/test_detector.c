/* The detector operator: the NIST/SEMATECH e-Handbook EWMA and CUSUM examples
 * (tests/data/nist_spc_examples, SOURCE.md lists what each certifies), detection delays for
 * steps and ramps, false-alarm rates on N(0,1) noise, the rolling z-score against a two-pass
 * reference (and its step, ramp and noise behaviour), emit: annotate, only_when gating,
 * config errors and a checkpoint round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "analytics/detector_methods.h"
#include "support/op_harness.h"

extern const struct mr_plugin mr_operator_detector;

#define SEC   1000000000LL
#define PRESS "plant1/line2/press3"
#define DATA  "tests/data/nist_spc_examples/"

static void open_ok(struct op_harness *h, const char *yaml)
{
    int rc = op_harness_open(h, &mr_operator_detector, yaml);
    if (rc != 0) {
        fail_msg("%s: %s", yaml, h->err.msg);
    }
}

/* ---- CSV of the NIST examples: up to 8 numeric columns, empty cells are NAN ---- */

struct csv {
    double v[32][8];
    int n;
};

static void csv_load(struct csv *c, const char *file)
{
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        fail_msg("cannot open %s (run tests from the repository root)", file);
    }
    char line[512];
    c->n = 0;
    assert_non_null(fgets(line, sizeof(line), f)); /* header */
    while (c->n < 32 && fgets(line, sizeof(line), f) != NULL) {
        char *p = line;
        for (int col = 0; col < 8; col++) {
            char *end = NULL;
            double x = strtod(p, &end);
            c->v[c->n][col] = end == p ? NAN : x;
            p = strchr(end, ',');
            if (p == NULL) {
                for (col++; col < 8; col++) {
                    c->v[c->n][col] = NAN;
                }
                break;
            }
            p++;
        }
        c->n++;
    }
    fclose(f);
}

/* ---- NIST EWMA example (e-Handbook 6.3.2.4) ---- */

static void test_nist_ewma(void **state)
{
    (void)state;
    struct csv c;
    csv_load(&c, DATA "ewma_example.csv");
    assert_int_equal(c.n, 21);
    struct mr_det_params p = {.method = MR_DET_EWMA, .lambda = 0.3, .L = 3};
    struct mr_det_state s;
    mr_det_state_start(&s, 50, 2.0539, 1);
    assert_float_equal(s.a, c.v[0][2], 1e-9); /* EWMA_0 = target */
    for (int t = 1; t <= 20; t++) {
        double score = mr_det_state_step(&p, &s, c.v[t][1]);
        if (fabs(s.a - c.v[t][2]) > 0.005 + 1e-9) {
            fail_msg("t=%d: EWMA %.4f, published %.2f", t, s.a, c.v[t][2]);
        }
        if (score >= 1.0) {
            fail_msg("t=%d: score %.3f, NIST: no point out of control", t, score);
        }
    }
    /* Exact time-varying limits published in SOURCE.md. */
    static const struct {
        uint64_t t;
        double ucl, lcl;
    } lim[] = {{1, 51.8485, 48.1515},
               {2, 52.2564, 47.7436},
               {5, 52.5516, 47.4484},
               {20, 52.5884, 47.4116}};
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
        double w = mr_det_ewma_limit(&p, 2.0539, lim[i].t);
        assert_float_equal(50 + w, lim[i].ucl, 1e-4);
        assert_float_equal(50 - w, lim[i].lcl, 1e-4);
    }
    assert_float_equal(50 + mr_det_ewma_limit(&p, 2.0539, 100000), 52.5884, 1e-4);

    /* The operator with the declared baseline: 20 scores, the same statistic, no alert. */
    struct op_harness h;
    open_ok(&h, "method: ewma\nlambda: 0.3\nL: 3\ntarget: 50\nsigma: 2.0539\n");
    for (int t = 1; t <= 20; t++) {
        struct mr_record r = op_rec(&h, PRESS, "flow", t * SEC, c.v[t][1]);
        assert_int_equal(op_harness_push(&h, &r, 1), 0);
    }
    assert_int_equal(h.nout, 20 * 3); /* value, score, anomaly_score */
    assert_int_equal(op_find(&h, 0, PRESS, "alert"), -1);
    long i = op_find(&h, 0, PRESS, "flow.score");
    assert_true(i >= 0);
    /* t=1: EWMA 50.6, limit 1.8485 */
    assert_float_equal(h.out[i].v.f64, 0.6 / mr_det_ewma_limit(&p, 2.0539, 1), 1e-9);
    op_harness_close(&h);
}

/* ---- NIST CUSUM example (e-Handbook 6.3.2.3) ---- */

static void test_nist_cusum(void **state)
{
    (void)state;
    struct csv c;
    csv_load(&c, DATA "cusum_example.csv");
    assert_int_equal(c.n, 20);
    const double sigma = 0.635;  /* of the subgroup means */
    const double h_raw = 4.1959; /* NIST's h in the unit of x */
    struct mr_det_params p = {.method = MR_DET_CUSUM, .k = 0.5, .h = h_raw / sigma};
    struct mr_det_state s;
    mr_det_state_start(&s, 325, sigma, 1);
    for (int g = 0; g < c.n; g++) {
        double score = mr_det_state_step(&p, &s, c.v[g][1]);
        double hi = s.a * sigma;
        double lo = s.b * sigma;
        /* 2 dp published; ties printed either way (SOURCE.md): 0.005 plus float slack */
        if (fabs(hi - c.v[g][3]) > 0.0051 || fabs(lo - c.v[g][4]) > 0.0051) {
            fail_msg("group %d: S_hi %.4f S_lo %.4f, published %.2f %.2f", g + 1, hi, lo, c.v[g][3],
                     c.v[g][4]);
        }
        int flagged = score >= 1.0;
        if (flagged != (int)c.v[g][6]) {
            fail_msg("group %d: flagged %d, NIST %d (S_hi %.3f)", g + 1, flagged, (int)c.v[g][6],
                     hi);
        }
    }

    /* Through the operator: one alert, at group 14, with S_hi = 4.94. */
    struct op_harness h;
    char yaml[200];
    snprintf(yaml, sizeof(yaml),
             "method: cusum\nk: 0.5\nh: %.10g\ntarget: 325\nsigma: 0.635\n"
             "alarm_at: 100\n",
             h_raw / sigma);
    open_ok(&h, yaml);
    for (int g = 0; g < c.n; g++) {
        struct mr_record r = op_rec(&h, PRESS, "width", (g + 1) * SEC, c.v[g][1]);
        assert_int_equal(op_harness_push(&h, &r, 1), 0);
    }
    long a = op_find(&h, 0, PRESS, "alert");
    assert_true(a >= 0);
    assert_int_equal(h.out[a].time_ns, 14 * SEC);
    assert_int_equal(op_find(&h, (size_t)a + 1, PRESS, "alert"), -1);
    char buf[64];
    assert_string_equal(op_tag(&h, (size_t)a, "feature", buf, sizeof(buf)), "width");
    assert_string_equal(op_tag(&h, (size_t)a, "detector", buf, sizeof(buf)), "cusum");
    assert_string_equal(op_tag(&h, (size_t)a, "severity", buf, sizeof(buf)), "warning");
    assert_string_equal(op_tag(&h, (size_t)a, "value", buf, sizeof(buf)), "327.25");
    assert_string_equal(op_tag(&h, (size_t)a, "baseline", buf, sizeof(buf)), "325");
    assert_string_equal(op_tag(&h, (size_t)a, "baseline_std", buf, sizeof(buf)), "0.635");
    double score = strtod(op_tag(&h, (size_t)a, "score", buf, sizeof(buf)), NULL);
    assert_float_equal(score * h_raw, 4.94, 0.006);
    assert_true(h.out[a].type == MR_VALUE_STRING && h.out[a].v.str.len > 10);
    op_harness_close(&h);
}

/* ---- seeded N(0,1): xorshift64* and Box-Muller ---- */

struct rng {
    uint64_t s;
    double spare;
    int has_spare;
};

static double rng_unit(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return ((r->s * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_normal(struct rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u = 0;
    while (u <= 0) {
        u = rng_unit(r);
    }
    double v = rng_unit(r);
    double m = sqrt(-2 * log(u));
    r->spare = m * sin(2 * M_PI * v);
    r->has_spare = 1;
    return m * cos(2 * M_PI * v);
}

/* Default parameters of each method, as the operator's config table sets them. */
static const struct {
    const char *name;
    struct mr_det_params p;
    double max_step_delay; /* mean samples to detect a 2-sigma step */
    double max_ramp_delay; /* mean samples to detect a ramp of 0.05 sigma per sample */
    double far_lo, far_hi; /* bounds of the alert rate per sample on N(0,1) */
} methods[] = {
    /* zscore: P(|z| > 3) = 0.0027; a 2-sigma step exceeds 3 with p = 0.16: ARL 6.3 */
    {"zscore", {.method = MR_DET_ZSCORE, .threshold = 3}, 9, 45, 0.0022, 0.0032},
    /* ewma 0.2/3: ARL0 ~ 560 (Lucas & Saccucci), ARL1(2 sigma) ~ 3.6 */
    {"ewma", {.method = MR_DET_EWMA, .lambda = 0.2, .L = 3}, 5, 30, 0.0010, 0.0040},
    /* cusum 0.5/5 two-sided: ARL0 ~ 465, ARL1(2 sigma) ~ 4 */
    {"cusum", {.method = MR_DET_CUSUM, .k = 0.5, .h = 5}, 6, 30, 0.0010, 0.0050},
    {"page_hinkley",
     {.method = MR_DET_PAGE_HINKLEY, .lambda = 5, .delta = 0.5},
     8,
     35,
     0.0005,
     0.0050},
};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

/* Mean delay (samples after the change, 0 = the first changed sample) over `trials` runs of
 * 200 in-control samples then x = drift(i) added; runs with an alarm before the change are
 * skipped. */
static double mean_delay(const struct mr_det_params *p, double step, double slope, int trials)
{
    struct rng r = {.s = 0x9E3779B97F4A7C15ULL};
    double sum = 0;
    int counted = 0;
    for (int t = 0; t < trials; t++) {
        struct mr_det_state s;
        mr_det_state_start(&s, 0, 1, 30);
        int early = 0;
        for (int i = 0; i < 200; i++) {
            early |= mr_det_state_step(p, &s, rng_normal(&r)) >= 1.0;
        }
        int d = 0;
        while (d < 10000 && mr_det_state_step(p, &s, rng_normal(&r) + step + slope * d) < 1.0) {
            d++;
        }
        if (!early) {
            sum += d;
            counted++;
        }
    }
    assert_true(counted > trials / 2);
    return sum / counted;
}

static void test_step_and_ramp_delays(void **state)
{
    (void)state;
    for (size_t m = 0; m < NMETHODS; m++) {
        double step = mean_delay(&methods[m].p, 2.0, 0, 300);
        double ramp = mean_delay(&methods[m].p, 0, 0.05, 300);
        print_message("%-13s mean delay: 2-sigma step %.2f, ramp 0.05 sigma/sample %.2f\n",
                      methods[m].name, step, ramp);
        if (step > methods[m].max_step_delay || ramp > methods[m].max_ramp_delay) {
            fail_msg("%s: delays %.2f / %.2f above %.0f / %.0f", methods[m].name, step, ramp,
                     methods[m].max_step_delay, methods[m].max_ramp_delay);
        }
    }
}

/* Operator on 100k N(0,1) values per method (declared baseline 0/1, rearm 1): alerts per
 * sample. */
static void test_false_alarm_rates(void **state)
{
    (void)state;
    enum { N = 100000, BATCH = 1000 };
    static struct mr_record recs[BATCH];
    for (size_t m = 0; m < NMETHODS; m++) {
        struct op_harness h;
        char yaml[160];
        snprintf(yaml, sizeof(yaml), "method: %s\ntarget: 0\nsigma: 1\nalarm_at: 1000\n",
                 methods[m].name);
        open_ok(&h, yaml);
        struct rng r = {.s = 0x2545F4914F6CDD1DULL + m};
        long alerts = 0;
        for (int b = 0; b < N / BATCH; b++) {
            for (int i = 0; i < BATCH; i++) {
                recs[i] = op_rec(&h, PRESS, "temp", (int64_t)(b * BATCH + i) * SEC, rng_normal(&r));
            }
            assert_int_equal(op_harness_push(&h, recs, BATCH), 0);
            long in_batch = 0;
            for (long i = 0; (i = op_find(&h, (size_t)i, PRESS, "alert")) >= 0; i++) {
                in_batch++;
            }
            /* every value passes, and each gets a score and an anomaly_score */
            assert_int_equal(h.nout, BATCH * 3 + (size_t)in_batch);
            alerts += in_batch;
            op_harness_clear(&h);
        }
        double rate = (double)alerts / N;
        print_message("%-13s false alerts on N(0,1): %ld in %d samples = %.5f per sample\n",
                      methods[m].name, alerts, N, rate);
        if (rate < methods[m].far_lo || rate > methods[m].far_hi) {
            fail_msg("%s: false alarm rate %.5f outside [%.4f, %.4f]", methods[m].name, rate,
                     methods[m].far_lo, methods[m].far_hi);
        }
        op_harness_close(&h);
    }
}

/* ---- operator behaviour ---- */

static size_t count_signal(struct op_harness *h, const char *signal)
{
    size_t n = 0;
    for (long i = 0; (i = op_find(h, (size_t)i, PRESS, signal)) >= 0; i++) {
        n++;
    }
    return n;
}

/* Learned baseline, signal selection, pass-through of everything, scores after the baseline,
 * severity escalation and re-arming. */
static void test_learn_select_alert(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "signals: [temp]\nmethod: zscore\nbaseline_samples: 4\nthreshold: 3\n");
    static const double temp[] = {9,  11,   9,   11, /* baseline: mean 10, sd 1.1547 */
                                  10, 14,   15,  10, /* 14: warning (3.46 sd); 15: no new alert */
                                  18, 10.5, 14.5};   /* 18: alarm (6.9 sd); back; warning again */
    size_t n = sizeof(temp) / sizeof(temp[0]);
    for (size_t i = 0; i < n; i++) {
        struct mr_record r[3] = {op_rec(&h, PRESS, "temp", (int64_t)i * SEC, temp[i]),
                                 op_rec(&h, PRESS, "speed", (int64_t)i * SEC, 1000.0 * i),
                                 op_rec(&h, PRESS, "note", (int64_t)i * SEC, 0)};
        r[2].type = MR_VALUE_STRING;
        r[2].v.str = (struct mr_bytes){.ptr = "ok", .len = 2};
        assert_int_equal(op_harness_push(&h, r, 3), 0);
    }
    assert_int_equal(count_signal(&h, "temp"), n);
    assert_int_equal(count_signal(&h, "speed"), n);
    assert_int_equal(count_signal(&h, "note"), n);
    assert_int_equal(count_signal(&h, "temp.score"), n - 4);
    assert_int_equal(count_signal(&h, "temp.anomaly_score"), n - 4);
    assert_int_equal(count_signal(&h, "speed.score"), 0);
    long s = op_find(&h, 0, PRESS, "temp.score");
    double sd = sqrt(4.0 / 3.0);
    assert_float_equal(h.out[s].v.f64, 0.0, 1e-12);
    s = op_find(&h, (size_t)s + 1, PRESS, "temp.score");
    assert_float_equal(h.out[s].v.f64, 4 / sd / 3, 1e-9);
    long a = op_find(&h, (size_t)s + 1, PRESS, "temp.anomaly_score");
    assert_float_equal(h.out[a].v.f64, erf(4 / sd / sqrt(2)), 1e-12); /* zscore: 2-sided */
    static const struct {
        int64_t t;
        const char *severity;
        const char *value;
    } want[] = {
        {5 * SEC, "warning", "14"}, {8 * SEC, "alarm", "18"}, {10 * SEC, "warning", "14.5"}};
    char buf[64];
    long at = -1;
    for (size_t k = 0; k < 3; k++) {
        at = op_find(&h, (size_t)(at + 1), PRESS, "alert");
        assert_true(at >= 0);
        assert_int_equal(h.out[at].time_ns, want[k].t);
        assert_string_equal(op_tag(&h, (size_t)at, "severity", buf, sizeof(buf)), want[k].severity);
        assert_string_equal(op_tag(&h, (size_t)at, "value", buf, sizeof(buf)), want[k].value);
        assert_string_equal(op_tag(&h, (size_t)at, "baseline", buf, sizeof(buf)), "10");
        assert_string_equal(op_tag(&h, (size_t)at, "detector", buf, sizeof(buf)), "zscore");
        assert_string_equal(op_tag(&h, (size_t)at, "threshold", buf, sizeof(buf)), "3.4641");
    }
    assert_int_equal(op_find(&h, (size_t)at + 1, PRESS, "alert"), -1);
    op_harness_close(&h);
}

/* A declared healthy period: values before it are ignored, values in it learned. */
static void test_baseline_period(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "baseline_from: \"1970-01-01T00:00:10Z\"\nbaseline_to: "
                "\"1970-01-01T00:00:13Z\"\n");
    static const double v[] = {100, 100, 100, 100, 100, 100, 100, 100, 100, 100, /* t 0..9 */
                               4,   6,   4,   6, /* t 10..13: mean 5 */
                               5,   50};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct mr_record r = op_rec(&h, PRESS, "temp", (int64_t)i * SEC, v[i]);
        assert_int_equal(op_harness_push(&h, &r, 1), 0);
    }
    assert_int_equal(count_signal(&h, "temp.score"), 2);
    long a = op_find(&h, 0, PRESS, "alert");
    assert_true(a >= 0);
    assert_int_equal(h.out[a].time_ns, 15 * SEC);
    char buf[64];
    assert_string_equal(op_tag(&h, (size_t)a, "baseline", buf, sizeof(buf)), "5");
    op_harness_close(&h);
}

/* ---- rolling z-score ---- */

/* The ring's Welford sums against a plain two-pass computation over the same last W values,
 * on a series with a large offset (where naive sums lose digits) and many recomputes. */
static void test_roll_against_two_pass(void **state)
{
    (void)state;
    enum { W = 97, N = 5000 };
    static double all[N];
    static double ring[W];
    struct mr_det_roll r;
    mr_det_roll_init(&r, ring, W);
    struct rng g = {.s = 7};
    for (int i = 0; i < N; i++) {
        all[i] = 1e6 + 0.001 * i + rng_normal(&g);
        mr_det_roll_push(&r, all[i]);
        int n = i + 1 < W ? i + 1 : W;
        double mean = 0;
        double m2 = 0;
        for (int k = i + 1 - n; k <= i; k++) {
            mean += all[k];
        }
        mean /= n;
        for (int k = i + 1 - n; k <= i; k++) {
            m2 += (all[k] - mean) * (all[k] - mean);
        }
        double sd = n > 1 ? sqrt(m2 / n) : 0;
        assert_int_equal(r.n, n);
        assert_float_equal(mr_det_roll_at(&r, 0), all[i + 1 - n], 0);
        if (fabs(r.mean - mean) > 1e-9 * 1e6 || fabs(mr_det_roll_std(&r) - sd) > 1e-6) {
            fail_msg("i=%d: mean %.12g sd %.12g, two-pass %.12g %.12g", i, r.mean,
                     mr_det_roll_std(&r), mean, sd);
        }
    }
}

/* Value of tag `key` of captured record i as a double (asserts it is there). */
static double tag_num(struct op_harness *h, size_t i, const char *key)
{
    char buf[64];
    const char *s = op_tag(h, i, key, buf, sizeof(buf));
    assert_non_null(s);
    return strtod(s, NULL);
}

/* The operator (window 200, scoring from 50 values): each value's z against the two-pass
 * mean and population deviation of the (up to) 200 values before it; anomaly_score is
 * erf(|z|/sqrt 2); one output record per input value (emit: annotate). */
static void test_rolling_operator(void **state)
{
    (void)state;
    enum { W = 200, MIN = 50, N = 1500 };
    static double x[N];
    struct op_harness h;
    open_ok(&h, "method: zscore\nwindow: 200\nbaseline_samples: 50\nemit: annotate\n"
                "signals: [temp]\nmax_keys: 10\n");
    struct rng g = {.s = 99};
    for (int i = 0; i < N; i++) {
        x[i] = 20 + 0.01 * i + rng_normal(&g) * (i > 700 ? 2 : 1);
        struct mr_record r = op_rec(&h, PRESS, "temp", (int64_t)i * SEC, x[i]);
        assert_int_equal(op_harness_push(&h, &r, 1), 0);
    }
    assert_int_equal(count_signal(&h, "temp"), N);
    long at = -1;
    for (int i = 0; i < N; i++) {
        at = op_find(&h, (size_t)(at + 1), PRESS, "temp");
        assert_true(at >= 0);
        assert_int_equal(h.out[at].time_ns, (int64_t)i * SEC);
        double score = tag_num(&h, (size_t)at, "score");
        double anom = tag_num(&h, (size_t)at, "anomaly_score");
        if (i < MIN) {
            assert_float_equal(score, 0, 0);
            assert_float_equal(anom, 0, 0);
            continue;
        }
        int n = i < W ? i : W;
        double mean = 0;
        double m2 = 0;
        for (int k = i - n; k < i; k++) {
            mean += x[k];
        }
        mean /= n;
        for (int k = i - n; k < i; k++) {
            m2 += (x[k] - mean) * (x[k] - mean);
        }
        double z = fabs(x[i] - mean) / sqrt(m2 / n);
        if (fabs(score * 3 - z) > 1e-8 * (1 + z) || fabs(anom - erf(z / sqrt(2))) > 1e-9) {
            fail_msg("i=%d: score %.10g anomaly %.10g, two-pass z %.10g", i, score, anom, z);
        }
    }
    op_harness_close(&h);
}

/* Alerts raised by a rolling zscore (window 1000, threshold 3) on 300 noise values then
 * f(i) added; returns the delay of the first alert at or after the change (-1: none). */
static int rolling_delay(double step, double slope, uint64_t seed)
{
    struct op_harness h;
    open_ok(&h, "window: 1000\nbaseline_samples: 100\nthreshold: 3\nmax_keys: 10\n");
    struct rng g = {.s = seed};
    int delay = -1;
    for (int i = 0; i < 2000 && delay == -1; i++) {
        int d = i - 300;
        double x = rng_normal(&g) + (d >= 0 ? step + slope * d : 0);
        struct mr_record r = op_rec(&h, PRESS, "temp", (int64_t)i * SEC, x);
        assert_int_equal(op_harness_push(&h, &r, 1), 0);
        if (d >= 0 && op_find(&h, 0, PRESS, "alert") >= 0) {
            delay = d;
        }
        op_harness_clear(&h);
    }
    op_harness_close(&h);
    return delay;
}

/* Step of 4 sigma: caught within 1 value on average (P(|z| > 3) = 0.84 each); a ramp of
 * 0.05 sigma per value: within 120 values (the deviation reaches 3 sigma after 60 values
 * while the window mean and deviation follow it only slowly). A rolling baseline absorbs a
 * ramp that lasts longer than the window: |z| of a pure ramp tends to sqrt(3) = 1.73, so a
 * ramp that is not caught early is not caught at all (documented). */
static void test_rolling_step_ramp(void **state)
{
    (void)state;
    double step = 0;
    double ramp = 0;
    int n = 0;
    for (uint64_t s = 1; s <= 20; s++) {
        int a = rolling_delay(4, 0, s);
        int b = rolling_delay(0, 0.05, s + 100);
        if (a < 0 || b < 0) {
            continue; /* never caught (a ramp the window absorbed): counted below */
        }
        step += a;
        ramp += b;
        n++;
    }
    assert_true(n >= 18);
    print_message("rolling zscore mean delay: 4-sigma step %.2f, ramp 0.05 sigma/value %.2f\n",
                  step / n, ramp / n);
    assert_true(step / n <= 1.0);
    assert_true(ramp / n <= 120);
}

/* N(0,1) noise, window 1000, threshold 3, rearm 1: alerts per value near P(|z| > 3) = 0.0027
 * (a little more: the window's own estimate of sigma wobbles). */
static void test_rolling_false_alarms(void **state)
{
    (void)state;
    enum { N = 100000, BATCH = 1000 };
    static struct mr_record recs[BATCH];
    struct op_harness h;
    open_ok(&h, "window: 1000\nbaseline_samples: 1000\nalarm_at: 1000\nmax_keys: 10\n");
    struct rng g = {.s = 0xABCDEF};
    long alerts = 0;
    for (int b = 0; b < N / BATCH; b++) {
        for (int i = 0; i < BATCH; i++) {
            recs[i] = op_rec(&h, PRESS, "temp", (int64_t)(b * BATCH + i) * SEC, rng_normal(&g));
        }
        assert_int_equal(op_harness_push(&h, recs, BATCH), 0);
        for (long i = 0; (i = op_find(&h, (size_t)i, PRESS, "alert")) >= 0; i++) {
            alerts++;
        }
        op_harness_clear(&h);
    }
    double rate = (double)alerts / (N - 1000);
    print_message("rolling zscore false alerts on N(0,1): %ld = %.5f per value\n", alerts, rate);
    assert_true(rate >= 0.0020 && rate <= 0.0035);
    op_harness_close(&h);
}

/* ---- emit: annotate and only_when ---- */

/* One record per value, with score/anomaly_score/alert tags; alert records still come; other
 * signals and text pass untouched; a value with no room for three tags passes unannotated. */
static void test_annotate(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "signals: [temp]\nbaseline_samples: 4\nemit: annotate\n");
    static const double temp[] = {9, 11, 9, 11, 10, 14, 15};
    for (size_t i = 0; i < sizeof(temp) / sizeof(temp[0]); i++) {
        struct mr_record r[2] = {op_rec(&h, PRESS, "temp", (int64_t)i * SEC, temp[i]),
                                 op_rec(&h, PRESS, "speed", (int64_t)i * SEC, 5)};
        assert_int_equal(op_harness_push(&h, r, 2), 0);
    }
    assert_int_equal(count_signal(&h, "temp"), 7);
    assert_int_equal(count_signal(&h, "temp.score"), 0);
    assert_int_equal(count_signal(&h, "alert"), 1);
    char buf[64];
    static const char *const alert[] = {"false", "false", "false", "false",
                                        "false", "true",  "false"};
    long at = -1;
    for (int i = 0; i < 7; i++) {
        at = op_find(&h, (size_t)(at + 1), PRESS, "temp");
        assert_string_equal(op_tag(&h, (size_t)at, "alert", buf, sizeof(buf)), alert[i]);
        if (i == 5) {
            assert_float_equal(tag_num(&h, (size_t)at, "anomaly_score"),
                               erf(4 / sqrt(4.0 / 3.0) / sqrt(2)), 1e-9);
            assert_string_equal(op_tag(&h, (size_t)at + 1, "severity", buf, sizeof(buf)),
                                "warning"); /* the alert record follows its value */
        }
    }
    long s = op_find(&h, 0, PRESS, "speed");
    assert_int_equal(h.out[s].ntags, 0);

    struct mr_record full = op_rec(&h, PRESS, "temp", 100 * SEC, 10);
    full.ntags = MR_RECORD_MAX_TAGS - 2;
    for (int i = 0; i < full.ntags; i++) {
        full.tags[i] = (struct mr_tag){.key = op_name(&h, "line"), .value = {"2", 1}};
    }
    op_harness_clear(&h);
    assert_int_equal(op_harness_push(&h, &full, 1), 0);
    assert_int_equal(h.nout, 1);
    assert_int_equal(h.out[0].ntags, MR_RECORD_MAX_TAGS - 2);
    op_harness_close(&h);
}

static struct mr_record state_rec(struct op_harness *h, const char *asset, int64_t t, const char *s)
{
    struct mr_record r = op_rec(h, asset, "state", t, 0);
    r.type = MR_VALUE_STRING;
    r.v.str = (struct mr_bytes){.ptr = s, .len = (uint32_t)strlen(s)};
    return r;
}

/* only_when: press3 is scored (and learns) only while RUNNING; press4 never reports a state
 * and is never scored; a checkpoint keeps the states. */
static void test_gating(void **state)
{
    (void)state;
    static const char *const P4 = "plant1/line2/press4";
    struct op_harness h;
    open_ok(&h, "signals: [temp]\nbaseline_samples: 4\nemit: annotate\n"
                "only_when: {signal: state, values: [RUNNING, SETUP]}\n");
    static const struct {
        const char *state; /* NULL: a temp value */
        double v;
        int scored;
    } steps[] = {
        {NULL, 500, 0},  {"RUNNING", 0, 0}, {NULL, 9, 0},   {NULL, 11, 0},  {NULL, 9, 0},
        {NULL, 11, 0},   {NULL, 10.2, 1},   {"DOWN", 0, 0}, {NULL, 500, 0}, {NULL, -300, 0},
        {"SETUP", 0, 0}, {NULL, 10.5, 1},   {"IDLE", 0, 0}, {NULL, 400, 0},
    };
    int64_t t = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++, t += SEC) {
        if (i == 9) {
            assert_int_equal(op_harness_roundtrip(&h), 0); /* while DOWN */
        }
        op_harness_clear(&h);
        struct mr_record r[2];
        if (steps[i].state != NULL) {
            r[0] = state_rec(&h, PRESS, t, steps[i].state);
        } else {
            r[0] = op_rec(&h, PRESS, "temp", t, steps[i].v);
        }
        r[1] = op_rec(&h, P4, "temp", t, steps[i].v);
        assert_int_equal(op_harness_push(&h, r, 2), 0);
        assert_int_equal(count_signal(&h, "alert"), 0);
        assert_int_equal(h.nout, 2);
        long at = op_find(&h, 0, P4, "temp");
        assert_float_equal(tag_num(&h, (size_t)at, "anomaly_score"), 0, 0);
        if (steps[i].state == NULL) {
            double score = tag_num(&h, (size_t)op_find(&h, 0, PRESS, "temp"), "score");
            if ((score > 0) != steps[i].scored) {
                fail_msg("step %zu: score %g, scored %d", i, score, steps[i].scored);
            }
        } else {
            assert_int_equal(h.out[0].ntags, 0); /* the state itself passes untouched */
        }
    }
    op_harness_close(&h);
}

/* only_when.settle and windows: after RUNNING starts at 10 s with settle 5s, a value at 12 s
 * is not scored, one at 16 s is; a value whose window began at 14 s (before 15 s) is not,
 * one whose window began at 15 s is. An alert from a windowed value names its window. */
static void test_gating_settle_and_windows(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "signals: [temp]\nbaseline_samples: 3\nthreshold: 3\nemit: annotate\n"
                "only_when: {signal: state, values: [RUNNING], settle: 5s}\n");
    struct mr_record st = state_rec(&h, PRESS, 10 * SEC, "RUNNING");
    assert_int_equal(op_harness_push(&h, &st, 1), 0);
    static const struct {
        int64_t t, wstart; /* wstart 0: no window tag */
        double v;
        int scored;
    } steps[] = {
        {12, 0, 50, 0},  {16, 0, 9, 0},   {17, 0, 11, 0},  {18, 0, 10, 0}, /* 9, 11, 10 learned */
        {20, 14, 90, 0}, {21, 15, 11, 1}, {22, 21, 90, 1},
    };
    char ws[8][24] = {{0}};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        op_harness_clear(&h);
        struct mr_record r = op_rec(&h, PRESS, "temp", steps[i].t * SEC, steps[i].v);
        if (steps[i].wstart != 0) {
            int n = snprintf(ws[i], sizeof(ws[i]), "%lld", (long long)(steps[i].wstart * SEC));
            r.tags[0] = (struct mr_tag){.key = op_name(&h, "window_start"),
                                        .value = {.ptr = ws[i], .len = (uint32_t)n}};
            r.ntags = 1;
        }
        assert_int_equal(op_harness_push(&h, &r, 1), 0);
        long at = op_find(&h, 0, PRESS, "temp");
        double score = tag_num(&h, (size_t)at, "score");
        if (!steps[i].scored) {
            assert_float_equal(score, 0, 0);
        }
        if (i == 5) { /* (11 - 10) / 1 / 3: the baseline is 9, 11, 10 and nothing else */
            assert_float_equal(score, 1.0 / 3.0, 1e-12);
        }
        if (i == 6) { /* 90 against the baseline 10 +- 1: an alert naming its window */
            char buf[32];
            long a = op_find(&h, 0, PRESS, "alert");
            assert_true(a >= 0);
            assert_string_equal(op_tag(&h, (size_t)a, "window_start", buf, sizeof(buf)), ws[6]);
            snprintf(buf, sizeof(buf), "%lld", (long long)(22 * SEC));
            char end[32];
            assert_string_equal(op_tag(&h, (size_t)a, "window_end", end, sizeof(end)), buf);
        }
        if (i == 4) {
            assert_int_equal(op_find(&h, 0, PRESS, "alert"), -1);
        }
    }
    op_harness_close(&h);
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *want; /* in the message */
    } cases[] = {
        {"method: ewma\nlambda: 1.5\n", "must be in (0, 1]"},
        {"method: ewma\nlambda: 0\n", "lambda"},
        {"method: page_hinkley\nlambda: -1\n", "alarm level"},
        {"method: shewhart\n", "shewhart"},
        {"direction: sideways\n", "sideways"},
        {"baseline_from: yesterday\n", "RFC 3339"},
        {"baseline_from: \"2026-11-02T00:00:00Z\"\nbaseline_to: \"2026-11-01T00:00:00Z\"\n",
         "later than baseline_from"},
        {"sigma: 0\ntarget: 1\n", "sigma"},
        {"rearm: 3\n", "alarm_at"},
        {"baseline_samples: 1\n", "baseline_samples"},
        {"treshold: 3\n", "treshold"},
        {"method: ewma\nwindow: 100\n", "method zscore only"},
        {"window: 100\ntarget: 3\n", "learns its own baseline"},
        {"window: 10\n", "at most window (10)"},
        {"window: 100000\n", "lower max_keys"},
        {"window: 2000000\n", "window"},
        {"emit: both\n", "both"},
        {"only_when: {signal: state}\n", "set both signal"},
        {"only_when: {values: [RUNNING]}\n", "set both signal"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct op_harness h;
        int rc = op_harness_open(&h, &mr_operator_detector, cases[i].yaml);
        if (rc == 0 || strstr(h.err.msg, cases[i].want) == NULL) {
            fail_msg("case %zu (%s): rc %d, message '%s', want '%s'", i, cases[i].yaml, rc,
                     h.err.msg, cases[i].want);
        }
        op_harness_close(&h);
    }
}

/* A checkpoint in the middle of learning and of detection changes nothing of the output. */
static void run_series(struct op_harness *h, const char *yaml, int cut1, int cut2)
{
    open_ok(h, yaml);
    struct rng r = {.s = 42};
    struct mr_record st[2] = {state_rec(h, PRESS, 0, "RUNNING"),
                              state_rec(h, "plant1/line2/press4", 0, "RUNNING")};
    assert_int_equal(op_harness_push(h, st, 2), 0);
    for (int i = 0; i < 120; i++) {
        if (i == cut1 || i == cut2) {
            assert_int_equal(op_harness_roundtrip(h), 0);
        }
        double x = rng_normal(&r) + (i >= 80 ? 3.0 : 0.0);
        struct mr_record recs[2] = {
            op_rec(h, PRESS, "temp", (int64_t)i * SEC, x),
            op_rec(h, "plant1/line2/press4", "temp", (int64_t)i * SEC, x * 2 + 7)};
        assert_int_equal(op_harness_push(h, recs, 2), 0);
    }
}

static void test_roundtrip(void **state)
{
    (void)state;
    static const char *const yamls[] = {
        "method: zscore\n",
        "method: ewma\nlambda: 0.1\n",
        "method: cusum\ndirection: up\n",
        "method: page_hinkley\nbaseline_samples: 50\n",
        "method: cusum\ntarget: 0\nsigma: 1\n",
        "method: zscore\nwindow: 30\nbaseline_samples: 10\nthreshold: 2\n",
        "window: 30\nbaseline_samples: 10\nthreshold: 2\nemit: annotate\n"
        "only_when: {signal: state, values: [RUNNING]}\n",
    };
    for (size_t k = 0; k < sizeof(yamls) / sizeof(yamls[0]); k++) {
        struct op_harness a;
        struct op_harness b;
        run_series(&a, yamls[k], -1, -1);
        run_series(&b, yamls[k], 17, 85);
        assert_int_equal(a.nout, b.nout);
        for (size_t i = 0; i < a.nout; i++) {
            if (a.out[i].time_ns != b.out[i].time_ns ||
                strcmp(op_str(&a, a.out[i].signal), op_str(&b, b.out[i].signal)) != 0 ||
                (a.out[i].type == MR_VALUE_F64 && a.out[i].v.f64 != b.out[i].v.f64) ||
                a.out[i].ntags != b.out[i].ntags) {
                fail_msg("%s: record %zu differs after a round trip", yamls[k], i);
            }
            char ta[64];
            char tb[64];
            const char *sa = op_tag(&a, i, "score", ta, sizeof(ta));
            const char *sb = op_tag(&b, i, "score", tb, sizeof(tb));
            if ((sa == NULL) != (sb == NULL) || (sa != NULL && strcmp(sa, sb) != 0)) {
                fail_msg("%s: record %zu: score tag %s vs %s", yamls[k], i, sa, sb);
            }
        }
        assert_true(count_signal(&a, "alert") >= 1);
        op_harness_close(&a);
        op_harness_close(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nist_ewma),
        cmocka_unit_test(test_nist_cusum),
        cmocka_unit_test(test_step_and_ramp_delays),
        cmocka_unit_test(test_false_alarm_rates),
        cmocka_unit_test(test_learn_select_alert),
        cmocka_unit_test(test_baseline_period),
        cmocka_unit_test(test_roll_against_two_pass),
        cmocka_unit_test(test_rolling_operator),
        cmocka_unit_test(test_rolling_step_ramp),
        cmocka_unit_test(test_rolling_false_alarms),
        cmocka_unit_test(test_annotate),
        cmocka_unit_test(test_gating),
        cmocka_unit_test(test_gating_settle_and_windows),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
