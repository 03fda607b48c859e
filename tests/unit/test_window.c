/* Operator `window` (src/engine/window*.c) driven through the operator harness: every window
 * kind against a naive recomputation, out-of-order input, the three late policies, per-asset
 * replay, quality handling, gaps, key_by variants, pass-through, config errors, state size and
 * a checkpoint round trip that must not change any later output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/window_internal.h"
#include "millrace/metrics.h"
#include "support/op_harness.h"

extern const struct mr_plugin mr_operator_window;

#define SEC 1000000000ll
#define MS  1000000ll

/* ---- helpers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static void open_ok(struct op_harness *h, const char *yaml)
{
    int rc = op_harness_open(h, &mr_operator_window, yaml);
    if (rc != 0) {
        fail_msg("open failed: %s", h->err.msg);
    }
}

static void push1(struct op_harness *h, const char *asset, const char *signal, int64_t t, double v)
{
    struct mr_record r = op_rec(h, asset, signal, t, v);
    assert_int_equal(op_harness_push(h, &r, 1), 0);
}

static void advance(struct op_harness *h, const char *asset, int64_t wm)
{
    assert_int_equal(op_harness_advance(h, asset, wm), 0);
}

/* The pipeline-wide watermark (asset 0). */
static void advance_global(struct op_harness *h, int64_t wm)
{
    assert_int_equal(h->plugin->op.advance(h->ctx, 0, wm, &h->err), 0);
}

static bool rec_is(struct op_harness *h, size_t i, const char *asset, const char *signal)
{
    return strcmp(op_str(h, h->out[i].asset), asset) == 0 &&
           strcmp(op_str(h, h->out[i].signal), signal) == 0;
}

static int revision_of(struct op_harness *h, size_t i)
{
    char buf[32];
    const char *r = op_tag(h, i, "revision", buf, sizeof(buf));
    return r != NULL ? atoi(r) : 0;
}

/* Index of the result for asset/signal at window end t with that revision; -1 when absent,
 * fails when there are several. */
static long find_at(struct op_harness *h, const char *asset, const char *signal, int64_t t, int rev)
{
    long found = -1;
    for (size_t i = 0; i < h->nout; i++) {
        if (h->out_port[i] == 0 && h->out[i].time_ns == t && rec_is(h, i, asset, signal) &&
            revision_of(h, i) == rev) {
            if (found >= 0) {
                fail_msg("%s %s at %" PRId64 " rev %d emitted twice", asset, signal, t, rev);
            }
            found = (long)i;
        }
    }
    return found;
}

static double value_of(struct op_harness *h, long i)
{
    assert_true(i >= 0);
    const struct mr_record *r = &h->out[i];
    return r->type == MR_VALUE_I64 ? (double)r->v.i64 : r->v.f64;
}

static double result(struct op_harness *h, const char *asset, const char *signal, int64_t t)
{
    long i = find_at(h, asset, signal, t, 0);
    if (i < 0) {
        fail_msg("no %s %s at %" PRId64, asset, signal, t);
    }
    return value_of(h, i);
}

static const char *tag(struct op_harness *h, long i, const char *key)
{
    static char buf[64];
    assert_true(i >= 0);
    const char *v = op_tag(h, (size_t)i, key, buf, sizeof(buf));
    return v != NULL ? v : "(none)";
}

static void assert_near(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol * fmax(1.0, fabs(want)))) {
        fail_msg("%s: got %.17g, want %.17g", what, got, want);
    }
}

static uint64_t metric(struct op_harness *h, const char *series)
{
    static char text[65536];
    size_t needed;
    assert_true(mr_metrics_render(h->metrics, text, sizeof(text), &needed) >= 0);
    const char *p = strstr(text, series);
    if (p == NULL) {
        return 0;
    }
    return strtoull(p + strlen(series), NULL, 10);
}

/* ---- naive reference ---- */

struct sample {
    int64_t t;
    double v;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

struct naive {
    size_t n;
    double sum, mean, min, max, var, first, last, rate, rms, p50, p95, p99;
};

static double lin_q(const double *s, size_t n, double q)
{
    double hq = q * (double)(n - 1);
    size_t lo = (size_t)floor(hq);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return s[lo] + (hq - (double)lo) * (s[hi] - s[lo]);
}

static struct naive naive_of(const struct sample *s, size_t n)
{
    struct naive r = {.n = n, .min = INFINITY, .max = -INFINITY};
    double *sorted = malloc(n * sizeof(double));
    long double sum = 0;
    long double sq = 0;
    size_t f = 0;
    size_t l = 0;
    for (size_t i = 0; i < n; i++) {
        sum += s[i].v;
        sq += (long double)s[i].v * s[i].v;
        r.min = fmin(r.min, s[i].v);
        r.max = fmax(r.max, s[i].v);
        f = s[i].t < s[f].t ? i : f;
        l = s[i].t >= s[l].t ? i : l;
        sorted[i] = s[i].v;
    }
    long double mean = sum / (long double)n;
    long double m2 = 0;
    for (size_t i = 0; i < n; i++) {
        m2 += (s[i].v - mean) * (s[i].v - mean);
    }
    r.sum = (double)sum;
    r.mean = (double)mean;
    r.var = n > 1 ? (double)(m2 / (long double)(n - 1)) : NAN;
    r.first = s[f].v;
    r.last = s[l].v;
    r.rate = s[l].t > s[f].t ? (r.last - r.first) / ((double)(s[l].t - s[f].t) / 1e9) : NAN;
    r.rms = (double)sqrtl(sq / (long double)n);
    qsort(sorted, n, sizeof(double), cmp_double);
    r.p50 = lin_q(sorted, n, 0.5);
    r.p95 = lin_q(sorted, n, 0.95);
    r.p99 = lin_q(sorted, n, 0.99);
    free(sorted);
    return r;
}

/* Compare every aggregate of one window with the reference (n <= 256: percentiles exact). */
static void check_window(struct op_harness *h, const char *asset, const char *signal, int64_t end,
                         const struct sample *s, size_t n)
{
    struct naive r = naive_of(s, n);
    char name[64];
    struct {
        const char *agg;
        double want;
    } expect[] = {
        {"count", (double)r.n},  {"sum", r.sum},     {"mean", r.mean}, {"min", r.min},
        {"max", r.max},          {"first", r.first}, {"last", r.last}, {"rms", r.rms},
        {"p50", r.p50},          {"p95", r.p95},     {"p99", r.p99},   {"variance", r.var},
        {"stddev", sqrt(r.var)}, {"rate", r.rate},
    };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        snprintf(name, sizeof(name), "%s.%s", signal, expect[i].agg);
        long at = find_at(h, asset, name, end, 0);
        if (isnan(expect[i].want)) {
            assert_int_equal(at, -1); /* undefined: left out */
            continue;
        }
        if (at < 0) {
            fail_msg("missing %s %s at %" PRId64, asset, name, end);
        }
        char what[128];
        snprintf(what, sizeof(what), "%s %s at %" PRId64, asset, name, end);
        assert_near(value_of(h, at), expect[i].want, 1e-9, what);
        assert_int_equal(h->out[at].quality, MR_QUALITY_GOOD);
    }
}

/* ---- tumbling ---- */

static void test_tumbling_every_aggregate_matches_naive(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "size: 10s\naggregates: [count, sum, mean, min, max, stddev, variance, first, "
                "last, rate, rms, p50, p95, p99]\n");
    static const char *const assets[] = {"s/a/l/m1", "s/a/l/m2"};
    static const char *const signals[] = {"temperature", "pressure"};
    enum { N = 600 };
    static struct sample all[2][2][N];
    size_t count[2][2] = {{0}};
    int64_t now[2] = {3 * SEC, 5 * SEC};
    struct mr_record batch[16];
    size_t nb = 0;
    for (int i = 0; i < N; i++) {
        int a = (int)(rng_next() % 2);
        int s = (int)(rng_next() % 2);
        now[a] += (int64_t)(rng_next() % 700) * MS;
        double v = 20.0 + 10.0 * rng_unit() + (s == 1 ? 1000.0 : 0.0);
        all[a][s][count[a][s]++] = (struct sample){now[a], v};
        batch[nb++] = op_rec(&h, assets[a], signals[s], now[a], v);
        if (nb == 16) {
            assert_int_equal(op_harness_push(&h, batch, nb), 0);
            nb = 0;
        }
    }
    assert_int_equal(op_harness_push(&h, batch, nb), 0);
    assert_int_equal(h.nout, 0); /* nothing fires before a watermark */
    for (int a = 0; a < 2; a++) {
        advance(&h, assets[a], now[a] + 20 * SEC);
    }
    size_t windows = 0;
    for (int a = 0; a < 2; a++) {
        for (int s = 0; s < 2; s++) {
            size_t i = 0;
            while (i < count[a][s]) {
                int64_t start = all[a][s][i].t / (10 * SEC) * (10 * SEC);
                size_t j = i;
                while (j < count[a][s] && all[a][s][j].t < start + 10 * SEC) {
                    j++;
                }
                check_window(&h, assets[a], signals[s], start + 10 * SEC, &all[a][s][i], j - i);
                char name[64];
                snprintf(name, sizeof(name), "%s.count", signals[s]);
                long at = find_at(&h, assets[a], name, start + 10 * SEC, 0);
                char want[32];
                snprintf(want, sizeof(want), "%" PRId64, start);
                assert_string_equal(tag(&h, at, "window_start"), want);
                snprintf(want, sizeof(want), "%zu", j - i);
                assert_string_equal(tag(&h, at, "samples"), want);
                assert_string_equal(tag(&h, at, "bad_share"), "0");
                assert_string_equal(tag(&h, at, "revision"), "(none)");
                windows++;
                i = j;
            }
        }
    }
    assert_true(windows > 20);
    assert_true(metric(&h, "millrace_records_in_total{instance=\"pipelines.test.steps[0]\","
                           "plugin=\"window\"} ") == N);
    op_harness_close(&h);
}

/* ---- hopping ---- */

static void check_hopping(const char *yaml, int64_t size, int64_t hop)
{
    struct op_harness h;
    open_ok(&h, yaml);
    enum { N = 400 };
    static struct sample s[N];
    int64_t t = 1 * SEC;
    for (int i = 0; i < N; i++) {
        t += (int64_t)(rng_next() % 900) * MS;
        s[i] = (struct sample){t, rng_unit() * 100.0};
        push1(&h, "m1", "temp", t, s[i].v);
        if (i % 50 == 49) {
            advance(&h, "m1", t - 2 * SEC); /* fire as we go, like a live pipeline */
        }
    }
    advance(&h, "m1", t + size + hop);
    /* Every window [k*hop, k*hop + size) holding a sample, once. */
    size_t windows = 0;
    for (int64_t start = (s[0].t - size) / hop * hop; start <= t; start += hop) {
        size_t i = 0;
        while (i < N && s[i].t < start) {
            i++;
        }
        size_t j = i;
        while (j < N && s[j].t < start + size) {
            j++;
        }
        if (j == i || start + size <= 0) {
            assert_int_equal(find_at(&h, "m1", "temp.count", start + size, 0), -1);
            continue;
        }
        check_window(&h, "m1", "temp", start + size, &s[i], j - i);
        windows++;
    }
    assert_true(windows > (size_t)((t - s[0].t) / hop));
    op_harness_close(&h);
}

static void test_hopping_matches_naive(void **state)
{
    (void)state;
    static const char *const aggs = "aggregates: [count, sum, mean, min, max, stddev, variance, "
                                    "first, last, rate, rms, p50, p95, p99]\n";
    char yaml[512];
    /* hop divides size: panes of 5s */
    snprintf(yaml, sizeof(yaml), "kind: hopping\nsize: 20s\nhop: 5s\n%s", aggs);
    check_hopping(yaml, 20 * SEC, 5 * SEC);
    /* hop does not divide size: panes of gcd = 2s */
    snprintf(yaml, sizeof(yaml), "kind: hopping\nsize: 10s\nhop: 4s\n%s", aggs);
    check_hopping(yaml, 10 * SEC, 4 * SEC);
    /* hop == size is tumbling */
    snprintf(yaml, sizeof(yaml), "kind: hopping\nsize: 7s\nhop: 7s\n%s", aggs);
    check_hopping(yaml, 7 * SEC, 7 * SEC);
}

/* ---- sessions ---- */

static void test_session_windows(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "kind: session\ngap: 5s\naggregates: [count, sum, first, last]\n");
    /* Bursts: {1,2,3}, {20,22}, then 40 and 48 that a later 44 bridges. */
    static const int64_t times[] = {1, 2, 3, 20, 22, 40, 48};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        push1(&h, "m1", "x", times[i] * SEC, (double)times[i]);
    }
    advance(&h, "m1", 30 * SEC); /* closes the first two (end = last + gap: 8s, 27s) */
    assert_true(result(&h, "m1", "x.count", 8 * SEC) == 3);
    assert_true(result(&h, "m1", "x.sum", 8 * SEC) == 6);
    assert_string_equal(tag(&h, find_at(&h, "m1", "x.count", 8 * SEC, 0), "window_start"),
                        "1000000000");
    assert_true(result(&h, "m1", "x.count", 27 * SEC) == 2);
    assert_string_equal(tag(&h, find_at(&h, "m1", "x.count", 27 * SEC, 0), "max_gap_ms"), "2000");
    size_t before = h.nout;
    push1(&h, "m1", "x", 44 * SEC, 44); /* bridges 40 and 48 */
    advance(&h, "m1", 52 * SEC);
    assert_int_equal(h.nout, before); /* 48 + 5 = 53 not reached, 40 + 5 no longer counts */
    advance(&h, "m1", 53 * SEC);
    assert_true(result(&h, "m1", "x.count", 53 * SEC) == 3);
    assert_true(result(&h, "m1", "x.sum", 53 * SEC) == 132);
    assert_true(result(&h, "m1", "x.first", 53 * SEC) == 40);
    assert_true(result(&h, "m1", "x.last", 53 * SEC) == 48);
    assert_string_equal(tag(&h, find_at(&h, "m1", "x.count", 53 * SEC, 0), "window_start"),
                        "40000000000");
    /* A sample exactly gap after the last one starts a new session. */
    push1(&h, "m1", "x", 60 * SEC, 1);
    push1(&h, "m1", "x", 65 * SEC, 1);
    advance(&h, "m1", 100 * SEC);
    assert_true(result(&h, "m1", "x.count", 65 * SEC) == 1);
    assert_true(result(&h, "m1", "x.count", 70 * SEC) == 1);
    op_harness_close(&h);
}

/* ---- count windows and sample blocks ---- */

static struct mr_record block_rec(struct op_harness *h, const char *asset, const char *signal,
                                  int64_t t, const float *data, uint32_t n)
{
    struct mr_record r = op_rec(h, asset, signal, t, 0);
    r.type = MR_VALUE_SAMPLES;
    r.v.samples = (struct mr_samples){.data = data, .n = n, .rate_hz = 1000};
    return r;
}

static void test_count_windows_and_sample_blocks(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "kind: count\ncount: 1000\naggregates: [count, rms, max]\n");
    /* Vibration: 2500 samples of a 3.0-amplitude sine over two blocks: windows of 1000 split
     * the blocks; each window covers whole periods of 100 samples, so rms = 3/sqrt(2). */
    static float data[2500];
    for (int i = 0; i < 2500; i++) {
        data[i] = (float)(3.0 * sin(2.0 * M_PI * (i % 100) / 100.0));
    }
    struct mr_record recs[2] = {block_rec(&h, "m1", "vib", 10 * SEC, data, 1700),
                                block_rec(&h, "m1", "vib", 11 * SEC, data + 1700, 800)};
    assert_int_equal(op_harness_push(&h, recs, 2), 0);
    assert_int_equal(h.nout, 6); /* two windows x (count, rms, max); 500 samples wait */
    long w0 = find_at(&h, "m1", "vib.count", 10 * SEC, 0);
    long w1 = find_at(&h, "m1", "vib.count", 11 * SEC, 0);
    assert_true(value_of(&h, w0) == 1000);
    assert_true(value_of(&h, w1) == 1000);
    assert_string_equal(tag(&h, w0, "window_seq"), "0");
    assert_string_equal(tag(&h, w1, "window_seq"), "1");
    assert_string_equal(tag(&h, w1, "window_start"), "10000000000");
    assert_near(result(&h, "m1", "vib.rms", 10 * SEC), 3.0 / sqrt(2.0), 1e-6, "rms");
    op_harness_close(&h);
}

static void test_count_windows_scalars(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "kind: count\ncount: 3\naggregates: [count, mean]\n");
    for (int i = 1; i <= 7; i++) {
        push1(&h, "m1", "x", i * SEC, i);
    }
    advance(&h, "m1", 100 * SEC); /* count windows ignore watermarks */
    assert_int_equal(h.nout, 4);
    assert_true(result(&h, "m1", "x.mean", 3 * SEC) == 2);
    assert_true(result(&h, "m1", "x.mean", 6 * SEC) == 5);
    op_harness_close(&h);
}

/* ---- out of order ---- */

/* Records shuffled within 3 s, with the watermark 3 s behind the newest (as a source with
 * out_of_orderness: 3s emits it), give the same results as in-order input. */
static void test_out_of_order_within_bound(void **state)
{
    (void)state;
    enum { N = 500 };
    static struct sample s[N];
    int64_t t = 0;
    for (int i = 0; i < N; i++) {
        t += (int64_t)(50 + rng_next() % 400) * MS;
        s[i] = (struct sample){t, rng_unit() * 50.0};
    }
    static struct sample shuffled[N];
    memcpy(shuffled, s, sizeof(s));
    for (int i = 0; i < N; i++) { /* swap with a neighbour less than 3 s away */
        int j = i + (int)(rng_next() % 8);
        if (j < N && shuffled[j].t - shuffled[i].t < 3 * SEC) {
            struct sample x = shuffled[i];
            shuffled[i] = shuffled[j];
            shuffled[j] = x;
        }
    }
    const char *yaml = "size: 5s\naggregates: [count, sum, mean, min, max, first, last, p50]\n";
    struct op_harness a;
    struct op_harness b;
    open_ok(&a, yaml);
    open_ok(&b, yaml);
    int64_t newest = INT64_MIN;
    for (int i = 0; i < N; i++) {
        push1(&a, "m1", "x", s[i].t, s[i].v);
        push1(&b, "m1", "x", shuffled[i].t, shuffled[i].v);
        newest = shuffled[i].t > newest ? shuffled[i].t : newest;
        if (i % 10 == 9) {
            advance(&a, "m1", s[i].t - 3 * SEC);
            advance(&b, "m1", newest - 3 * SEC);
        }
    }
    advance(&a, "m1", t + 10 * SEC);
    advance(&b, "m1", t + 10 * SEC);
    assert_int_equal(a.nout, b.nout);
    assert_int_equal(metric(&b, "millrace_late_records_total{instance=\"pipelines.test.steps[0]\","
                                "policy=\"drop\"} "),
                     0);
    for (size_t i = 0; i < a.nout; i++) {
        const char *sig = op_str(&a, a.out[i].signal);
        long j = find_at(&b, "m1", sig, a.out[i].time_ns, 0);
        char what[64];
        snprintf(what, sizeof(what), "%s at %" PRId64, sig, a.out[i].time_ns);
        assert_near(value_of(&b, j), value_of(&a, (long)i), 1e-12, what);
    }
    op_harness_close(&a);
    op_harness_close(&b);
}

/* ---- late records ---- */

static void test_late_drop(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "size: 10s\naggregates: [count]\n");
    push1(&h, "m1", "x", 1 * SEC, 1);
    push1(&h, "m1", "x", 2 * SEC, 2);
    advance(&h, "m1", 10 * SEC);
    assert_true(result(&h, "m1", "x.count", 10 * SEC) == 2);
    push1(&h, "m1", "x", 3 * SEC, 3);  /* late */
    push1(&h, "m1", "x", 11 * SEC, 4); /* on time, next window */
    advance(&h, "m1", 20 * SEC);
    assert_int_equal(h.nout, 2);
    assert_true(result(&h, "m1", "x.count", 20 * SEC) == 1);
    assert_int_equal(metric(&h, "millrace_late_records_total{instance=\"pipelines.test.steps[0]\","
                                "policy=\"drop\"} "),
                     1);
    op_harness_close(&h);
}

static void test_late_side(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "size: 10s\naggregates: [count]\nlate: side\nlate_topic: late_press\n");
    assert_int_equal(h.nsides, 1);
    assert_string_equal(h.side_topics[0], "late_press");
    push1(&h, "m1", "x", 1 * SEC, 1);
    advance(&h, "m1", 10 * SEC);
    struct mr_record late[3] = {op_rec(&h, "m1", "x", 4 * SEC, 7.5),
                                op_rec(&h, "m1", "x", 5 * SEC, 8.5),
                                op_rec(&h, "m1", "x", 12 * SEC, 9.5)};
    assert_int_equal(op_harness_push(&h, late, 3), 0);
    assert_int_equal(h.nout, 3); /* the result, then the two late records unchanged */
    for (int i = 1; i <= 2; i++) {
        assert_int_equal(h.out_port[i], 1);
        assert_true(h.out[i].time_ns == late[i - 1].time_ns);
        assert_true(h.out[i].v.f64 == late[i - 1].v.f64);
        assert_true(rec_is(&h, (size_t)i, "m1", "x"));
    }
    assert_int_equal(metric(&h, "millrace_late_records_total{instance=\"pipelines.test.steps[0]\","
                                "policy=\"side\"} "),
                     2);
    op_harness_close(&h);
}

static void test_late_update_revisions(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "size: 10s\naggregates: [count, sum]\nallowed_lateness: 5s\nlate: update\n");
    push1(&h, "m1", "x", 1 * SEC, 1);
    push1(&h, "m1", "x", 2 * SEC, 2);
    advance(&h, "m1", 12 * SEC);
    assert_true(result(&h, "m1", "x.sum", 10 * SEC) == 3);
    /* Three late records in one batch: one corrected result (revision 1). */
    struct mr_record late[3] = {op_rec(&h, "m1", "x", 3 * SEC, 10),
                                op_rec(&h, "m1", "x", 4 * SEC, 20),
                                op_rec(&h, "m1", "x", 5 * SEC, 30)};
    assert_int_equal(op_harness_push(&h, late, 3), 0);
    long i = find_at(&h, "m1", "x.sum", 10 * SEC, 1);
    assert_true(value_of(&h, i) == 63);
    assert_true(value_of(&h, find_at(&h, "m1", "x.count", 10 * SEC, 1)) == 5);
    assert_string_equal(tag(&h, i, "revision"), "1");
    assert_int_equal(h.nout, 4);
    push1(&h, "m1", "x", 6 * SEC, 100);
    assert_true(result(&h, "m1", "x.sum", 10 * SEC) == 3);
    assert_true(value_of(&h, find_at(&h, "m1", "x.sum", 10 * SEC, 2)) == 163);
    /* Past end + allowed_lateness the window is gone: too late, counted as dropped. */
    advance(&h, "m1", 15 * SEC);
    size_t before = h.nout;
    push1(&h, "m1", "x", 7 * SEC, 1000);
    assert_int_equal(h.nout, before);
    assert_int_equal(metric(&h, "millrace_late_records_total{instance=\"pipelines.test.steps[0]\","
                                "policy=\"update\"} "),
                     4);
    assert_int_equal(metric(&h, "millrace_late_records_total{instance=\"pipelines.test.steps[0]\","
                                "policy=\"drop\"} "),
                     1);
    /* A late record for a held window that had no samples when it fired: first result. */
    advance(&h, "m1", 32 * SEC);
    push1(&h, "m1", "x", 21 * SEC, 5);
    i = find_at(&h, "m1", "x.sum", 30 * SEC, 0);
    assert_true(value_of(&h, i) == 5);
    op_harness_close(&h);
}

static void test_late_update_hopping_and_session(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "kind: hopping\nsize: 10s\nhop: 5s\naggregates: [sum]\nallowed_lateness: 10s\n"
                "late: update\n");
    push1(&h, "m1", "x", 6 * SEC, 1);
    advance(&h, "m1", 16 * SEC); /* fires [0,10) and [5,15) */
    assert_true(result(&h, "m1", "x.sum", 10 * SEC) == 1);
    assert_true(result(&h, "m1", "x.sum", 15 * SEC) == 1);
    push1(&h, "m1", "x", 7 * SEC, 2); /* late for both */
    assert_true(value_of(&h, find_at(&h, "m1", "x.sum", 10 * SEC, 1)) == 3);
    assert_true(value_of(&h, find_at(&h, "m1", "x.sum", 15 * SEC, 1)) == 3);
    push1(&h, "m1", "x", 12 * SEC, 4); /* [5,15) fired, [10,20) open: partly late */
    assert_true(value_of(&h, find_at(&h, "m1", "x.sum", 15 * SEC, 2)) == 7);
    advance(&h, "m1", 20 * SEC);
    assert_true(result(&h, "m1", "x.sum", 20 * SEC) == 4);
    op_harness_close(&h);

    open_ok(&h, "kind: session\ngap: 5s\naggregates: [count]\nallowed_lateness: 10s\n"
                "late: update\n");
    push1(&h, "m1", "x", 1 * SEC, 1);
    push1(&h, "m1", "x", 3 * SEC, 1);
    advance(&h, "m1", 9 * SEC); /* session [1, 3+5) fired */
    assert_true(result(&h, "m1", "x.count", 8 * SEC) == 2);
    push1(&h, "m1", "x", 4 * SEC, 1); /* joins the fired session: its end moves to 9 */
    assert_true(value_of(&h, find_at(&h, "m1", "x.count", 9 * SEC, 1)) == 3);
    op_harness_close(&h);
}

/* Windows are held for allowed_lateness after they fire (and only that long), however many
 * there are; when all are gone, so is the key. */
static void test_long_lateness_holds_and_frees(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "size: 1s\naggregates: [count, sum]\nallowed_lateness: 30s\nlate: update\n");
    const struct win_ctx *c = h.ctx;
    for (int64_t t = 0; t < 60; t++) {
        push1(&h, "m1", "x", t * SEC + 500 * MS, (double)t);
        advance(&h, "m1", t * SEC + 600 * MS);
    }
    assert_int_equal(c->pool.used, 31);  /* [29s,30s) .. [59s,60s): 30 held + 1 open */
    push1(&h, "m1", "x", 35 * SEC, 100); /* 25 s late: held, corrected */
    assert_true(value_of(&h, find_at(&h, "m1", "x.sum", 36 * SEC, 1)) == 135);
    size_t before = h.nout;
    push1(&h, "m1", "x", 28 * SEC, 100); /* freed: too late */
    assert_int_equal(h.nout, before);
    assert_int_equal(metric(&h, "millrace_late_records_total{instance=\"pipelines.test.steps[0]\","
                                "policy=\"drop\"} "),
                     1);
    push1(&h, "m1", "x", 59 * SEC + 900 * MS, 1); /* on time for the open window */
    advance(&h, "m1", 200 * SEC);
    assert_true(result(&h, "m1", "x.count", 60 * SEC) == 2);
    assert_int_equal(c->pool.used, 0);
    assert_int_equal(mr_keymap_count(&c->keys), 0);
    op_harness_close(&h);
}

/* ---- per-asset event time ---- */

/* Asset A is live at t=1000s; asset B then replays a backlog from t=100s. B's records are
 * judged against B's watermark only: all its windows come out, none is late. */
static void test_replay_of_one_asset_is_not_late(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "size: 10s\naggregates: [count, sum]\n");
    for (int i = 0; i < 20; i++) {
        push1(&h, "A", "x", (990 + i) * SEC, 1);
    }
    advance(&h, "A", 1000 * SEC);
    assert_true(result(&h, "A", "x.count", 1000 * SEC) == 10);
    for (int64_t t = 100; t < 200; t++) {
        push1(&h, "B", "x", t * SEC, (double)t);
        if (t % 10 == 9) {
            advance(&h, "B", (t - 5) * SEC);
        }
    }
    advance(&h, "B", 200 * SEC);
    for (int64_t w = 100; w < 200; w += 10) {
        assert_true(result(&h, "B", "x.count", (w + 10) * SEC) == 10);
        assert_true(result(&h, "B", "x.sum", (w + 10) * SEC) == (double)(10 * w + 45));
    }
    assert_int_equal(metric(&h, "millrace_late_records_total{instance=\"pipelines.test.steps[0]\","
                                "policy=\"drop\"} "),
                     0);
    assert_int_equal(find_at(&h, "A", "x.count", 1010 * SEC, 0), -1); /* A still open */
    op_harness_close(&h);
}

/* ---- quality, gaps ---- */

static void push_q(struct op_harness *h, int64_t t, double v, uint8_t q)
{
    struct mr_record r = op_rec(h, "m1", "x", t, v);
    r.quality = q;
    assert_int_equal(op_harness_push(h, &r, 1), 0);
}

static void test_bad_quality_and_bad_share(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "size: 10s\naggregates: [count, mean, max]\n");
    push_q(&h, 1 * SEC, 10, MR_QUALITY_GOOD);
    push_q(&h, 2 * SEC, 1000, MR_QUALITY_BAD);
    push_q(&h, 3 * SEC, 20, MR_QUALITY_UNCERTAIN);
    push_q(&h, 4 * SEC, NAN, MR_QUALITY_GOOD);
    push_q(&h, 11 * SEC, 5, MR_QUALITY_BAD); /* a window of only bad samples */
    advance(&h, "m1", 20 * SEC);
    long i = find_at(&h, "m1", "x.count", 10 * SEC, 0);
    assert_true(value_of(&h, i) == 2);
    assert_true(result(&h, "m1", "x.mean", 10 * SEC) == 15);
    assert_true(result(&h, "m1", "x.max", 10 * SEC) == 20);
    assert_string_equal(tag(&h, i, "samples"), "4");
    assert_string_equal(tag(&h, i, "bad_share"), "0.5");
    assert_int_equal(h.out[i].quality, MR_QUALITY_GOOD);
    i = find_at(&h, "m1", "x.count", 20 * SEC, 0);
    assert_true(value_of(&h, i) == 0);
    assert_int_equal(h.out[i].quality, MR_QUALITY_BAD);
    assert_string_equal(tag(&h, i, "bad_share"), "1");
    assert_int_equal(find_at(&h, "m1", "x.mean", 20 * SEC, 0), -1);
    op_harness_close(&h);

    open_ok(&h, "size: 10s\naggregates: [count, max]\ninclude_bad: true\n");
    push_q(&h, 1 * SEC, 10, MR_QUALITY_GOOD);
    push_q(&h, 2 * SEC, 1000, MR_QUALITY_BAD);
    push_q(&h, 4 * SEC, NAN, MR_QUALITY_GOOD);
    advance(&h, "m1", 10 * SEC);
    i = find_at(&h, "m1", "x.count", 10 * SEC, 0);
    assert_true(value_of(&h, i) == 2);
    assert_true(result(&h, "m1", "x.max", 10 * SEC) == 1000);
    assert_int_equal(h.out[i].quality, MR_QUALITY_UNCERTAIN);
    assert_string_equal(tag(&h, i, "samples"), "3");
    assert_string_equal(tag(&h, i, "bad_share"), "0.666667");
    op_harness_close(&h);
}

static void test_max_gap(void **state)
{
    (void)state;
    static const struct {
        int64_t times_ms[6];
        size_t n;
        const char *gap;
    } cases[] = {
        {{1000, 2000, 4500, 5000}, 4, "2500"},
        {{1000}, 1, "0"},
        {{1000, 1000}, 2, "0"},
        {{100, 200, 300, 301, 9999}, 5, "9698"},
        {{1000, 1000, 1001, 1500, 1500}, 5, "499"},
        {{2000, 1000}, 2, "1000"}, /* out of order: still counted */
        {{1000, 1000, 1250, 1250, 1250, 1500}, 6, "250"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct op_harness h;
        open_ok(&h, "size: 10s\naggregates: [count]\n");
        for (size_t i = 0; i < cases[c].n; i++) {
            push1(&h, "m1", "x", cases[c].times_ms[i] * MS, 1);
        }
        advance(&h, "m1", 10 * SEC);
        assert_string_equal(tag(&h, find_at(&h, "m1", "x.count", 10 * SEC, 0), "max_gap_ms"),
                            cases[c].gap);
        op_harness_close(&h);
    }
    struct op_harness h; /* sub-millisecond gaps keep their decimals */
    open_ok(&h, "size: 10s\naggregates: [count]\n");
    push1(&h, "m1", "x", 1 * SEC, 1);
    push1(&h, "m1", "x", 1 * SEC + 1500500, 1);
    advance(&h, "m1", 10 * SEC);
    assert_string_equal(tag(&h, find_at(&h, "m1", "x.count", 10 * SEC, 0), "max_gap_ms"), "1.5005");
    op_harness_close(&h);
}

/* ---- keys, filters, pass-through ---- */

static void test_key_by_and_names(void **state)
{
    (void)state;
    struct op_harness h;
    /* [asset]: the selected signals of a machine together, named <name>.<aggregate>. */
    open_ok(&h, "size: 10s\nkey_by: [asset]\nsignals: [t1, t2]\nname: temps\n"
                "aggregates: [count, max]\n");
    push1(&h, "m1", "t1", 1 * SEC, 5);
    push1(&h, "m1", "t2", 2 * SEC, 7);
    push1(&h, "m1", "other", 2 * SEC, 100); /* not selected: passes through */
    push1(&h, "m2", "t1", 2 * SEC, 1);
    assert_int_equal(h.nout, 1);
    assert_true(rec_is(&h, 0, "m1", "other"));
    advance(&h, "m1", 10 * SEC);
    assert_true(result(&h, "m1", "temps.count", 10 * SEC) == 2);
    assert_true(result(&h, "m1", "temps.max", 10 * SEC) == 7);
    assert_int_equal(find_at(&h, "m2", "temps.count", 10 * SEC, 0), -1);
    op_harness_close(&h);

    /* [signal]: a signal over all machines, on the pipeline's watermark (asset 0). */
    open_ok(&h, "size: 10s\nkey_by: [signal]\nasset: plant\naggregates: [count, sum]\n");
    push1(&h, "m1", "power", 1 * SEC, 5);
    push1(&h, "m2", "power", 2 * SEC, 7);
    advance(&h, "m1", 50 * SEC); /* per-asset watermarks do not fire these */
    assert_int_equal(h.nout, 0);
    advance_global(&h, 10 * SEC);
    assert_true(result(&h, "plant", "power.count", 10 * SEC) == 2);
    assert_true(result(&h, "plant", "power.sum", 10 * SEC) == 12);
    push1(&h, "m3", "power", 3 * SEC, 1); /* late against the pipeline's watermark */
    advance_global(&h, 20 * SEC);
    assert_int_equal(h.nout, 2);
    op_harness_close(&h);
}

static void test_pass_through_and_value_types(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "size: 10s\naggregates: [count, sum]\n");
    struct mr_record recs[4];
    recs[0] = op_rec(&h, "m1", "state", 1 * SEC, 0);
    recs[0].type = MR_VALUE_STRING;
    recs[0].v.str = (struct mr_bytes){.ptr = "running", .len = 7};
    recs[1] = op_rec(&h, "m1", "x", 1 * SEC, 0);
    recs[1].type = MR_VALUE_BOOL;
    recs[1].v.b = true;
    recs[2] = op_rec(&h, "m1", "x", 2 * SEC, 0);
    recs[2].type = MR_VALUE_I64;
    recs[2].v.i64 = 41;
    recs[3] = op_rec(&h, "m1", "x", 3 * SEC, 0);
    recs[3].type = MR_VALUE_SAMPLES;
    recs[3].v.samples = (struct mr_samples){.data = NULL, .n = 0, .rate_hz = 100};
    assert_int_equal(op_harness_push(&h, recs, 4), 0);
    assert_int_equal(h.nout, 2); /* the string and the empty block pass through */
    assert_int_equal(h.out[0].type, MR_VALUE_STRING);
    assert_int_equal(h.out[1].type, MR_VALUE_SAMPLES);
    advance(&h, "m1", 10 * SEC);
    assert_true(result(&h, "m1", "x.count", 10 * SEC) == 2);
    assert_true(result(&h, "m1", "x.sum", 10 * SEC) == 42);
    assert_int_equal(h.out[find_at(&h, "m1", "x.count", 10 * SEC, 0)].type, MR_VALUE_I64);
    assert_int_equal(h.out[find_at(&h, "m1", "x.sum", 10 * SEC, 0)].type, MR_VALUE_F64);
    op_harness_close(&h);
}

/* ---- limits and errors ---- */

static void test_max_windows_is_enforced(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "size: 1s\naggregates: [count]\nmax_windows: 2\n");
    for (int i = 0; i < 5; i++) {
        push1(&h, "m1", "x", i * SEC, 1); /* five windows open, room for two */
    }
    assert_int_equal(metric(&h, "millrace_errors_total{instance=\"pipelines.test.steps[0]\","
                                "plugin=\"window\"} "),
                     3);
    advance(&h, "m1", 10 * SEC);
    assert_int_equal(h.nout, 2);
    push1(&h, "m1", "x", 11 * SEC, 1); /* freed slots are reused */
    advance(&h, "m1", 12 * SEC);
    assert_int_equal(h.nout, 3);
    op_harness_close(&h);
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *expect[2];
    } cases[] = {
        {"kind: hopping\nsize: 10s\nhop: 20s\n", {"hop", "longer than size"}},
        {"kind: hopping\nsize: 10s\n", {"hop", "needs"}},
        {"size: 10s\nlate: side\n", {"late_topic", "late: side needs"}},
        {"size: 10s\nlate_topic: x\n", {"late_topic", "only used with late: side"}},
        {"size: 10s\naggregates: [mean, p90]\n", {"aggregates", "unknown aggregate 'p90'"}},
        {"size: 10s\naggregates: [mean, mean]\n", {"aggregates", "twice"}},
        {"size: 10s\nkey_by: [machine]\n", {"key_by", "'machine'"}},
        {"size: 10s\nkey_by: []\n", {"key_by", "at least 1"}},
        {"aggregates: [mean]\n", {"size", "needs the window length"}},
        {"size: 10s\ngap: 5s\n", {"gap", "not used by kind: tumbling"}},
        {"kind: session\n", {"gap", "needs"}},
        {"kind: count\n", {"count", "needs"}},
        {"kind: count\ncount: 10\nallowed_lateness: 5s\n",
         {"allowed_lateness", "nothing is ever late"}},
        {"kind: sliding\n", {"kind", "sliding"}},
        {"size: 10\n", {"size", ""}},
        {"kind: hopping\nsize: 1h\nhop: 7ms\n", {"hop", "gcd"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct op_harness h;
        int rc = op_harness_open(&h, &mr_operator_window, cases[i].yaml);
        if (rc == 0) {
            fail_msg("case %zu accepted: %s", i, cases[i].yaml);
        }
        for (int k = 0; k < 2; k++) {
            if (strstr(h.err.msg, cases[i].expect[k]) == NULL) {
                fail_msg("case %zu: '%s' not in: %s", i, cases[i].expect[k], h.err.msg);
            }
        }
        op_harness_close(&h);
    }
    struct mr_err err;
    assert_int_equal(mr_section_validate(&mr_operator_window.conf, "window", &err), 0);
}

/* The per-key state the brief budgets: one open tumbling window of [count, sum, min, max,
 * mean] in at most ~100 bytes (plus the keymap's 8-16 byte index slot). */
static void test_state_size(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "size: 1m\naggregates: [count, sum, min, max, mean]\n");
    const struct win_ctx *c = h.ctx;
    size_t per_key = c->keys.stride + c->pool.slot_size;
    print_message("per key: %zu bytes entry + %zu bytes window = %zu (+ 8 asset list, + 8-16 "
                  "keymap index)\n",
                  c->keys.stride, c->pool.slot_size, per_key);
    assert_true(per_key <= 100);
    op_harness_close(&h);
}

/* ---- checkpoints ---- */

/* A deterministic script: records of 3 assets x 2 signals in batches, up to 3 s out of order
 * (some late against a watermark 1.5 s behind), some bad, some sample blocks, a pause of a2,
 * with advances in between. */
static void run_script(struct op_harness *h, int from, int to, int roundtrip_at)
{
    static const char *const assets[] = {"a1", "a2", "a3"};
    static float blk[64];
    for (int i = 0; i < 64; i++) {
        blk[i] = (float)(i % 7);
    }
    for (int step = from; step < to; step++) {
        if (step == roundtrip_at) {
            assert_int_equal(op_harness_roundtrip(h), 0);
        }
        uint64_t x = (uint64_t)step * 2654435761u;
        struct mr_record recs[6];
        size_t n = 0;
        for (int k = 0; k < 6; k++) {
            if (k % 3 == 1 && step >= 40 && step < 50) {
                continue; /* a2 pauses: gaps, sessions end */
            }
            int64_t t = (int64_t)step * 700 * MS - (int64_t)((x >> k) % 4) * SEC;
            struct mr_record *r = &recs[n++];
            *r = op_rec(h, assets[k % 3], k < 3 ? "temp" : "vib", t,
                        (double)((x >> (2 * k)) % 1000) / 10.0);
            if ((x >> k) % 11 == 0) {
                r->quality = MR_QUALITY_BAD;
            }
            if (k >= 3 && (x >> k) % 3 == 0) {
                r->type = MR_VALUE_SAMPLES;
                r->v.samples = (struct mr_samples){.data = blk, .n = 64, .rate_hz = 64};
            }
        }
        assert_int_equal(op_harness_push(h, recs, n), 0);
        advance(h, assets[step % 3], (int64_t)step * 700 * MS - 1500 * MS);
        advance_global(h, (int64_t)step * 700 * MS - 2 * SEC);
    }
}

/* Where a captured record went: "" for the chain, else the side topic (the harness hands out
 * a new port number when the restored instance opens its side output again). */
static const char *dest_of(struct op_harness *h, size_t i)
{
    return h->out_port[i] == 0 ? "" : h->side_topics[h->out_port[i] - 1];
}

static bool same_record(struct op_harness *a, size_t i, struct op_harness *b, size_t j)
{
    const struct mr_record *x = &a->out[i];
    const struct mr_record *y = &b->out[j];
    if (strcmp(op_str(a, x->asset), op_str(b, y->asset)) != 0 ||
        strcmp(op_str(a, x->signal), op_str(b, y->signal)) != 0 || x->time_ns != y->time_ns ||
        x->type != y->type || x->quality != y->quality || x->ntags != y->ntags ||
        strcmp(dest_of(a, i), dest_of(b, j)) != 0) {
        return false;
    }
    if (x->type == MR_VALUE_SAMPLES) {
        if (x->v.samples.n != y->v.samples.n ||
            memcmp(x->v.samples.data, y->v.samples.data, x->v.samples.n * sizeof(float)) != 0) {
            return false;
        }
    } else if (memcmp(&x->v, &y->v, sizeof(x->v.f64)) != 0) {
        return false;
    }
    for (uint16_t t = 0; t < x->ntags; t++) {
        if (strcmp(op_str(a, x->tags[t].key), op_str(b, y->tags[t].key)) != 0 ||
            x->tags[t].value.len != y->tags[t].value.len ||
            memcmp(x->tags[t].value.ptr, y->tags[t].value.ptr, x->tags[t].value.len) != 0) {
            return false;
        }
    }
    return true;
}

static void test_checkpoint_round_trip_keeps_output(void **state)
{
    (void)state;
    static const char *const configs[] = {
        "size: 5s\naggregates: [count, sum, mean, stddev, first, last, rate, p95]\n"
        "allowed_lateness: 3s\nlate: update\n",
        "kind: hopping\nsize: 6s\nhop: 4s\naggregates: [count, mean, max, p50, rms]\n"
        "allowed_lateness: 2s\nlate: update\ninclude_bad: true\n",
        "kind: session\ngap: 1500ms\naggregates: [count, sum, variance]\nallowed_lateness: 2s\n"
        "late: update\n",
        "kind: count\ncount: 50\naggregates: [count, mean, p99]\n",
        "size: 4s\nkey_by: [signal]\naggregates: [count, min]\nlate: side\nlate_topic: late\n",
        "kind: hopping\nsize: 4s\nhop: 2s\nkey_by: [asset]\naggregates: [sum]\n",
    };
    for (size_t c = 0; c < sizeof(configs) / sizeof(configs[0]); c++) {
        struct op_harness a;
        struct op_harness b;
        open_ok(&a, configs[c]);
        open_ok(&b, configs[c]);
        run_script(&a, 0, 120, -1);
        run_script(&b, 0, 120, 60);
        assert_true(a.nout > 20);
        assert_int_equal(a.nout, b.nout);
        size_t revised = 0;
        size_t side = 0;
        for (size_t i = 0; i < a.nout; i++) {
            revised += revision_of(&a, i) > 0;
            side += a.out_port[i] != 0;
        }
        print_message("config %zu: %zu records, %zu revised, %zu to the late topic\n", c, a.nout,
                      revised, side);
        for (size_t i = 0; i < a.nout; i++) {
            if (!same_record(&a, i, &b, i)) {
                fail_msg("config %zu: output %zu differs after the round trip (%s/%s at %" PRId64
                         " port %d = %g vs %s/%s at %" PRId64 " port %d = %g)",
                         c, i, op_str(&a, a.out[i].asset), op_str(&a, a.out[i].signal),
                         a.out[i].time_ns, a.out_port[i], value_of(&a, (long)i),
                         op_str(&b, b.out[i].asset), op_str(&b, b.out[i].signal), b.out[i].time_ns,
                         b.out_port[i], value_of(&b, (long)i));
            }
        }
        op_harness_close(&a);
        op_harness_close(&b);
    }
}

static void test_restore_rejects_other_config(void **state)
{
    (void)state;
    struct op_harness a;
    open_ok(&a, "size: 5s\naggregates: [count]\n");
    push1(&a, "m1", "x", 1 * SEC, 1);
    struct mr_state_writer w;
    mr_state_writer_init(&w, a.names, 0);
    assert_int_equal(mr_operator_window.op.snapshot(a.ctx, &w, &a.err), 0);
    struct op_harness b;
    open_ok(&b, "size: 6s\naggregates: [count]\n");
    struct mr_state_reader r;
    mr_state_reader_init(&r, b.names, w.buf, w.len);
    assert_int_equal(mr_operator_window.op.restore(b.ctx, &r, &b.err), MR_EINVAL);
    assert_non_null(strstr(b.err.msg, "different"));
    op_harness_close(&b);
    open_ok(&b, "size: 5s\naggregates: [count]\n");
    mr_state_reader_init(&r, b.names, w.buf, w.len - 3);
    assert_int_not_equal(mr_operator_window.op.restore(b.ctx, &r, &b.err), 0);
    op_harness_close(&b);
    mr_state_writer_fini(&w);
    op_harness_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tumbling_every_aggregate_matches_naive),
        cmocka_unit_test(test_hopping_matches_naive),
        cmocka_unit_test(test_session_windows),
        cmocka_unit_test(test_count_windows_and_sample_blocks),
        cmocka_unit_test(test_count_windows_scalars),
        cmocka_unit_test(test_out_of_order_within_bound),
        cmocka_unit_test(test_late_drop),
        cmocka_unit_test(test_late_side),
        cmocka_unit_test(test_late_update_revisions),
        cmocka_unit_test(test_late_update_hopping_and_session),
        cmocka_unit_test(test_long_lateness_holds_and_frees),
        cmocka_unit_test(test_replay_of_one_asset_is_not_late),
        cmocka_unit_test(test_bad_quality_and_bad_share),
        cmocka_unit_test(test_max_gap),
        cmocka_unit_test(test_key_by_and_names),
        cmocka_unit_test(test_pass_through_and_value_types),
        cmocka_unit_test(test_max_windows_is_enforced),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_state_size),
        cmocka_unit_test(test_checkpoint_round_trip_keeps_output),
        cmocka_unit_test(test_restore_rejects_other_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
