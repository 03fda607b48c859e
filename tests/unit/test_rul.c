/* Operator `rul`: synthetic degradation series with a known failure time (linear, exponential,
 * falling), noise-only series, alerts once per crossing, bad configuration, pass-through and a
 * checkpoint round trip that must not change what comes out.
 *
 * Accuracy bound: once 20 % of the life has been seen, every estimate's predicted failure time
 * (record time + RUL) is within 5 % of the true life (measured errors are printed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "millrace/metrics.h"
#include "millrace/state.h"
#include "support/op_harness.h"

extern const struct mr_plugin mr_operator_rul;

#define SEC  1000000000LL
#define HOUR (3600 * SEC)
#define T0   (1795000000LL * SEC) /* a realistic epoch: t must be centred to stay exact */
#define PUMP "plant1/line2/pump7"
#define SIG  "vibration.rms"
#define OUT  "vibration.rms.rul"
#define STEP (60 * SEC)

enum shape { LIN_UP, EXP_UP, LIN_DOWN, FLAT };

struct series {
    enum shape shape;
    double life_h; /* true time to threshold */
    double noise;  /* sigma: absolute (EXP_UP: relative) */
    uint64_t rng;
};

static double gauss(struct series *s)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        s->rng ^= s->rng << 13;
        s->rng ^= s->rng >> 7;
        s->rng ^= s->rng << 17;
        u[i] = ((double)(s->rng >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

/* Value at t hours: LIN_UP 1 -> 7.1, EXP_UP 0.5 -> 0.5 e^3, LIN_DOWN 100 -> 60 over the life. */
static double series_value(struct series *s, double th)
{
    double x = th / s->life_h;
    switch (s->shape) {
    case LIN_UP:
        return 1 + 6.1 * x + s->noise * gauss(s);
    case EXP_UP:
        return 0.5 * exp(3 * x) * (1 + s->noise * gauss(s));
    case LIN_DOWN:
        return 100 - 40 * x + s->noise * gauss(s);
    default:
        return 3 + s->noise * gauss(s);
    }
}

/* Push samples every minute from `from` to `to` (ns after T0) in batches of an hour. */
static void feed(struct op_harness *h, struct series *s, int64_t from, int64_t to)
{
    static struct mr_record batch[60];
    size_t n = 0;
    for (int64_t t = from; t < to; t += STEP) {
        batch[n++] = op_rec(h, PUMP, SIG, T0 + t, series_value(s, (double)t / (double)HOUR));
        if (n == 60) {
            assert_int_equal(op_harness_push(h, batch, n), 0);
            n = 0;
        }
    }
    if (n > 0) {
        assert_int_equal(op_harness_push(h, batch, n), 0);
    }
}

static void open_ok(struct op_harness *h, const char *yaml)
{
    if (op_harness_open(h, &mr_operator_rul, yaml) != 0) {
        fail_msg("rul: %s", h->err.msg);
    }
}

static size_t count_signal(struct op_harness *h, const char *sig)
{
    size_t n = 0;
    for (long i = op_find(h, 0, PUMP, sig); i >= 0; i = op_find(h, (size_t)i + 1, PUMP, sig)) {
        n++;
    }
    return n;
}

struct accuracy {
    double max_err; /* largest |predicted - true| / life once 20 % was seen */
    size_t n;       /* estimates checked */
    size_t wrong_model;
};

static struct accuracy check_estimates(struct op_harness *h, double life_h, const char *model)
{
    struct accuracy a = {0};
    char buf[64];
    for (long i = op_find(h, 0, PUMP, OUT); i >= 0; i = op_find(h, (size_t)i + 1, PUMP, OUT)) {
        const struct mr_record *r = &h->out[i];
        double seen_h = (double)(r->time_ns - T0) / (double)HOUR;
        assert_true(r->v.f64 >= 0);
        if (seen_h < 0.2 * life_h) {
            continue;
        }
        double pred_h = seen_h + r->v.f64 / 3600;
        double err = fabs(pred_h - life_h) / life_h;
        a.max_err = err > a.max_err ? err : a.max_err;
        a.n++;
        const char *m = op_tag(h, (size_t)i, "model", buf, sizeof(buf));
        assert_non_null(m);
        a.wrong_model += model != NULL && strcmp(m, model) != 0;
    }
    return a;
}

/* ---- accuracy table ---- */

struct accuracy_case {
    const char *name;
    const char *yaml;
    struct series s;
    const char *model; /* expected model tag; NULL: either (on a straight line over a day,
                        * the exponential fit is as good and `best` may pick it) */
    double max_err;
};

static void test_accuracy(void **state)
{
    (void)state;
    static const struct accuracy_case cases[] = {
        {"linear, best",
         "signals: [vibration.rms]\nthreshold: 7.1\nevery: 1h\n",
         {LIN_UP, 100, 0.1, 0x9e3779b97f4a7c15ull},
         NULL,
         0.05},
        {"linear, linear model",
         "signals: [vibration.rms]\nthreshold: 7.1\nevery: 1h\nmodel: linear\n",
         {LIN_UP, 100, 0.1, 0x9e3779b97f4a7c15ull},
         "linear",
         0.05},
        {"linear, small ring (bucketing)",
         "signals: [vibration.rms]\nthreshold: 7.1\nevery: 1h\nmax_points: 32\nmodel: linear\n",
         {LIN_UP, 100, 0.1, 12345},
         "linear",
         0.05},
        {"exponential, best",
         "signals: [vibration.rms]\nthreshold: 10.0427684\nevery: 1h\nhistory: 200h\n",
         {EXP_UP, 100, 0.01, 777},
         "exponential",
         0.05},
        {"linear down",
         "signals: [vibration.rms]\nthreshold: 60\ndirection: down\nevery: 1h\n",
         {LIN_DOWN, 80, 0.5, 4242},
         "linear",
         0.05},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct op_harness h;
        struct series s = cases[i].s;
        open_ok(&h, cases[i].yaml);
        feed(&h, &s, 0, (int64_t)(0.98 * s.life_h * (double)HOUR));
        struct accuracy a = check_estimates(&h, s.life_h, cases[i].model);
        printf("  %-30s estimates %zu, max error %.2f %% of life\n", cases[i].name, a.n,
               100 * a.max_err);
        assert_true(a.n > 50);
        assert_int_equal(a.wrong_model, 0);
        assert_true(a.max_err < cases[i].max_err);
        /* every input record passes through */
        assert_int_equal(count_signal(&h, SIG), (size_t)(0.98 * s.life_h * 60));
        op_harness_close(&h);
    }
}

/* The exponential series: its model's R^2 beats the linear one's at the same point. */
static void test_best_prefers_higher_r2(void **state)
{
    (void)state;
    double r2[2];
    const char *models[2] = {"linear", "exponential"};
    for (int m = 0; m < 2; m++) {
        char yaml[200];
        snprintf(yaml, sizeof(yaml),
                 "signals: [vibration.rms]\nthreshold: 10.0427684\nevery: 1h\nhistory: 200h\n"
                 "model: %s\n",
                 models[m]);
        struct op_harness h;
        struct series s = {EXP_UP, 100, 0.01, 777};
        open_ok(&h, yaml);
        feed(&h, &s, 0, 60 * HOUR);
        long last = -1;
        for (long i = op_find(&h, 0, PUMP, OUT); i >= 0;
             i = op_find(&h, (size_t)i + 1, PUMP, OUT)) {
            last = i;
        }
        assert_true(last >= 0);
        char buf[64];
        r2[m] = strtod(op_tag(&h, (size_t)last, "r2", buf, sizeof(buf)), NULL);
        op_harness_close(&h);
    }
    printf("  R2 at 60 %% of life: linear %.4f, exponential %.4f\n", r2[0], r2[1]);
    assert_true(r2[1] > r2[0]);
}

/* Flat noise, a trend away from the threshold, too few points: no estimate at all. */
static void test_no_estimate(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        struct series s;
        int64_t hours;
    } cases[] = {
        {"signals: [vibration.rms]\nthreshold: 7.1\nevery: 0s\n", {FLAT, 100, 0.2, 99}, 40},
        {"signals: [vibration.rms]\nthreshold: 7.1\nevery: 1m\nmodel: exponential\n",
         {FLAT, 100, 0.2, 5},
         40},
        {"signals: [vibration.rms]\nthreshold: 7.1\nevery: 0s\n", {LIN_DOWN, 80, 0.5, 7}, 40},
        {"signals: [vibration.rms]\nthreshold: 7.1\nmin_points: 100\nevery: 0s\n",
         {LIN_UP, 1, 0.0, 7},
         1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct op_harness h;
        struct series s = cases[i].s;
        open_ok(&h, cases[i].yaml);
        feed(&h, &s, 0, cases[i].hours * HOUR);
        if (count_signal(&h, OUT) != 0) {
            fail_msg("case %zu: %zu estimates", i, count_signal(&h, OUT));
        }
        assert_int_equal(count_signal(&h, SIG), (size_t)cases[i].hours * 60);
        op_harness_close(&h);
    }
}

static void test_alert_once(void **state)
{
    (void)state;
    struct op_harness h;
    struct series s = {LIN_UP, 100, 0.1, 31337};
    open_ok(&h, "signals: [vibration.rms]\nthreshold: 7.1\nevery: 10m\nalert_before: 10h\n");
    feed(&h, &s, 0, 99 * HOUR);
    assert_int_equal(count_signal(&h, "alert"), 1);
    long i = op_find(&h, 0, PUMP, "alert");
    const struct mr_record *a = &h.out[i];
    double at_h = (double)(a->time_ns - T0) / (double)HOUR;
    printf("  alert at %.2f h (expected about 90 h)\n", at_h);
    assert_true(at_h > 85 && at_h < 92);
    assert_int_equal(a->type, MR_VALUE_STRING);
    char buf[64];
    assert_string_equal(op_tag(&h, (size_t)i, "detector", buf, sizeof(buf)), "rul");
    assert_string_equal(op_tag(&h, (size_t)i, "feature", buf, sizeof(buf)), OUT);
    assert_string_equal(op_tag(&h, (size_t)i, "threshold", buf, sizeof(buf)), "36000");
    assert_string_equal(op_tag(&h, (size_t)i, "severity", buf, sizeof(buf)), "warning");
    assert_true(strtod(op_tag(&h, (size_t)i, "value", buf, sizeof(buf)), NULL) < 36000);
    op_harness_close(&h);
}

static void test_bad_config(void **state)
{
    (void)state;
    struct mr_err verr = {0};
    if (mr_section_validate(&mr_operator_rul.conf, "rul", &verr) != 0) {
        fail_msg("field table: %s", verr.msg);
    }
    static const struct {
        const char *yaml;
        const char *needle;
    } cases[] = {
        {"signals: [vibration.rms]\n", "threshold"},
        {"threshold: 7\n", "signals"},
        {"signals: [x]\nthreshold: 7\ndirection: sideways\n", "direction"},
        {"signals: [x]\nthreshold: 0\nmodel: exponential\n", "positive threshold"},
        {"signals: [x]\nthreshold: 7\nmin_points: 600\n", "min_points"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct op_harness h;
        assert_int_not_equal(op_harness_open(&h, &mr_operator_rul, cases[i].yaml), 0);
        if (strstr(h.err.msg, cases[i].needle) == NULL) {
            fail_msg("case %zu: '%s' does not mention %s", i, h.err.msg, cases[i].needle);
        }
        printf("  %s\n", h.err.msg);
        op_harness_close(&h);
    }
}

/* Snapshot and restore half way: the same estimates and alert come out as without. */
static void test_roundtrip(void **state)
{
    (void)state;
    const char *yaml = "signals: [vibration.rms]\nthreshold: 7.1\nevery: 30m\nalert_before: 10h\n"
                       "max_points: 64\n";
    struct op_harness a, b;
    struct series sa = {LIN_UP, 100, 0.1, 2024};
    struct series sb = sa;
    open_ok(&a, yaml);
    open_ok(&b, yaml);
    feed(&a, &sa, 0, 99 * HOUR);
    feed(&b, &sb, 0, 50 * HOUR);
    assert_int_equal(op_harness_roundtrip(&b), 0);
    feed(&b, &sb, 50 * HOUR, 99 * HOUR);
    assert_int_equal(a.nout, b.nout);
    size_t nest = 0;
    for (size_t i = 0; i < a.nout; i++) {
        assert_int_equal(a.out[i].time_ns, b.out[i].time_ns);
        assert_string_equal(op_str(&a, a.out[i].signal), op_str(&b, b.out[i].signal));
        if (a.out[i].type == MR_VALUE_F64) {
            assert_true(a.out[i].v.f64 == b.out[i].v.f64);
        }
        nest += strcmp(op_str(&a, a.out[i].signal), OUT) == 0;
    }
    assert_true(nest > 100);
    assert_int_equal(count_signal(&b, "alert"), 1);
    op_harness_close(&a);
    op_harness_close(&b);
}

static uint64_t errors_of(struct op_harness *h)
{
    struct mr_plugin_counters c;
    assert_int_equal(mr_plugin_counters_register(h->metrics, h->plugin, h->host.name, &c), 0);
    return mr_counter_value(c.errors);
}

/* State stays bounded (max_points per key) however long the series; bad-quality, text and
 * out-of-order values are not fitted (out of order counts as an error); a damaged checkpoint
 * is refused. */
static void test_bounds_and_bad_input(void **state)
{
    (void)state;
    struct op_harness h;
    struct series s = {LIN_UP, 100, 0.1, 11};
    open_ok(&h, "signals: [vibration.rms]\nthreshold: 7.1\nmax_points: 64\nevery: 0s\n");
    feed(&h, &s, 0, 72 * HOUR);
    struct mr_state_writer w;
    mr_state_writer_init(&w, h.names, 0);
    assert_int_equal(mr_operator_rul.op.snapshot(h.ctx, &w, &h.err), 0);
    printf("  checkpoint of one key after 72 h of 1-min values: %zu bytes\n", w.len);
    assert_true(w.len <= 16 + 80 + 64 * 32 + 64);

    struct mr_state_reader r;
    mr_state_reader_init(&r, h.names, w.buf, w.len - 8);
    struct op_harness h2;
    open_ok(&h2, "signals: [vibration.rms]\nthreshold: 7.1\n");
    assert_int_equal(mr_operator_rul.op.restore(h2.ctx, &r, &h2.err), MR_ECORRUPT);
    op_harness_close(&h2);
    mr_state_writer_fini(&w);

    op_harness_clear(&h);
    struct mr_record recs[3];
    recs[0] = op_rec(&h, PUMP, SIG, T0 + 80 * HOUR, 100); /* bad quality: a spike, not fitted */
    recs[0].quality = MR_QUALITY_BAD;
    recs[1] = op_rec(&h, PUMP, SIG, T0 + 10 * HOUR, 100); /* out of order */
    recs[2] = op_rec(&h, PUMP, SIG, T0 + 72 * HOUR, 1 + 6.1 * 0.72);
    recs[2].type = MR_VALUE_STRING;
    recs[2].v.str = (struct mr_bytes){.ptr = "n/a", .len = 3};
    assert_int_equal(op_harness_push(&h, recs, 3), 0);
    assert_int_equal(count_signal(&h, SIG), 3);
    assert_int_equal(count_signal(&h, OUT), 0);
    assert_int_equal(errors_of(&h), 1);
    struct mr_record ok = op_rec(&h, PUMP, SIG, T0 + 72 * HOUR, 1 + 6.1 * 0.72);
    assert_int_equal(op_harness_push(&h, &ok, 1), 0);
    long i = op_find(&h, 0, PUMP, OUT);
    assert_true(i >= 0);
    assert_true(fabs(h.out[i].v.f64 / 3600 - 28) < 2);
    op_harness_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_best_prefers_higher_r2),
        cmocka_unit_test(test_no_estimate),
        cmocka_unit_test(test_alert_once),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_bounds_and_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
