/* The oee operator: the worked examples of research/domain.md §1.5 reproduced exactly (the
 * Vorne worksheet 74.79 %, the ISO-vocabulary example with every time element and its loss
 * waterfall, day OEE from summed shift times), edge cases (micro-stops on both sides of the
 * threshold, planned downtime by calendar and by state, a stop across a shift change, counter
 * resets, late records), partial updates, line sums, the below-target alert, config errors
 * and a checkpoint round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "support/op_harness.h"

extern const struct mr_plugin mr_operator_oee;

#define SEC    1000000000LL
#define MINUTE (60 * SEC)
#define HOUR   (60 * MINUTE)
#define DAY0   (1795392000LL * SEC) /* 2026-11-23T00:00:00Z */
#define M1     "plant1/assembly/line1/press1"
#define M2     "plant1/assembly/line1/press2"
#define LINE   "plant1/assembly/line1"

static int64_t at(int h, int m, int s)
{
    return DAY0 + h * HOUR + m * MINUTE + s * SEC;
}

static void open_ok(struct op_harness *h, const char *yaml)
{
    int rc = op_harness_open(h, &mr_operator_oee, yaml);
    if (rc != 0) {
        fail_msg("%s: %s", yaml, h->err.msg);
    }
}

static void state(struct op_harness *h, const char *asset, int64_t t, const char *st)
{
    struct mr_record r = op_rec(h, asset, "state", t, 0);
    r.type = MR_VALUE_STRING;
    r.v.str = (struct mr_bytes){.ptr = st, .len = (uint32_t)strlen(st)};
    assert_int_equal(op_harness_push(h, &r, 1), 0);
}

static void counter(struct op_harness *h, const char *asset, const char *sig, int64_t t, int64_t v)
{
    struct mr_record r = op_rec(h, asset, sig, t, 0);
    r.type = MR_VALUE_I64;
    r.v.i64 = v;
    assert_int_equal(op_harness_push(h, &r, 1), 0);
}

static void counts(struct op_harness *h, const char *asset, int64_t t, int64_t produced,
                   int64_t good)
{
    counter(h, asset, "cycle_count", t, produced);
    counter(h, asset, "good_count", t, good);
    counter(h, asset, "reject_count", t, produced - good);
}

/* Pipeline watermark (asset 0), as the engine advances it for keys without an asset. */
static void advance_all(struct op_harness *h, int64_t wm)
{
    assert_int_equal(h->plugin->op.advance(h->ctx, 0, wm, &h->err), 0);
}

static bool tag_is(struct op_harness *h, size_t i, const char *key, const char *want)
{
    char buf[64];
    const char *v = op_tag(h, i, key, buf, sizeof(buf));
    return want == NULL || (v != NULL && strcmp(v, want) == 0);
}

/* Value of the result (asset, signal) with tags period/status (and shift when not NULL) at
 * time t (any time when t == 0); NAN when absent. */
static double result(struct op_harness *h, const char *asset, const char *signal,
                     const char *period, const char *status, const char *shift, int64_t t)
{
    for (long i = op_find(h, 0, asset, signal); i >= 0;
         i = op_find(h, (size_t)i + 1, asset, signal)) {
        if (tag_is(h, (size_t)i, "period", period) && tag_is(h, (size_t)i, "status", status) &&
            tag_is(h, (size_t)i, "shift", shift) && (t == 0 || h->out[i].time_ns == t)) {
            return h->out[i].v.f64;
        }
    }
    return NAN;
}

static double final_shift(struct op_harness *h, const char *asset, const char *signal,
                          const char *shift)
{
    return result(h, asset, signal, "shift", "final", shift, 0);
}

#define assert_near(a, b, eps)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (eps))) {                                                           \
            fail_msg("%s = %.9g, expected %.9g", #a, a_, b_);                                      \
        }                                                                                          \
    } while (0)

/* ---- (a) the Vorne worksheet: 74.79 % ---- */

static const char *const vorne_yaml = "ideal_cycle_time: 1s\n"
                                      "interval: 0s\n"
                                      "line_level: 0\n"
                                      "day: false\n"
                                      "shifts: [{name: early, start: \"06:00\", end: \"14:00\"}]\n"
                                      "breaks:\n"
                                      "  - {start: \"08:00\", end: \"08:15\"}\n"
                                      "  - {name: lunch, start: \"10:00\", end: \"10:30\"}\n"
                                      "  - {start: \"12:00\", end: \"12:15\"}\n";

static void test_vorne_example(void **s)
{
    (void)s;
    struct op_harness h;
    open_ok(&h, vorne_yaml);
    state(&h, M1, at(6, 0, 0), "RUNNING");
    counts(&h, M1, at(6, 0, 0), 0, 0);
    state(&h, M1, at(7, 0, 0), "DOWN"); /* 47 min down time */
    state(&h, M1, at(7, 47, 0), "RUNNING");
    state(&h, M1, at(8, 0, 0), "PLANNED_STOP");
    state(&h, M1, at(8, 15, 0), "RUNNING");
    state(&h, M1, at(10, 0, 0), "PLANNED_STOP");
    state(&h, M1, at(10, 30, 0), "RUNNING");
    state(&h, M1, at(12, 0, 0), "PLANNED_STOP");
    state(&h, M1, at(12, 15, 0), "RUNNING");
    counts(&h, M1, at(13, 59, 0), 19271, 18848);
    op_harness_advance(&h, M1, at(13, 59, 59));
    assert_true(isnan(final_shift(&h, M1, "oee", "early")));
    op_harness_advance(&h, M1, at(14, 0, 0));
    assert_near(final_shift(&h, M1, "oee.availability", "early"), 373.0 / 420, 1e-12);
    assert_near(final_shift(&h, M1, "oee.performance", "early"), 19271.0 / (373 * 60), 1e-12);
    assert_near(final_shift(&h, M1, "oee.quality", "early"), 18848.0 / 19271, 1e-12);
    double oee = final_shift(&h, M1, "oee", "early");
    assert_near(oee, 18848.0 / 25200, 1e-12);
    assert_near(round(oee * 10000) / 100, 74.79, 1e-9);
    assert_near(round(final_shift(&h, M1, "oee.availability", "early") * 10000) / 100, 88.81, 1e-9);
    assert_near(round(final_shift(&h, M1, "oee.performance", "early") * 10000) / 100, 86.11, 1e-9);
    assert_near(round(final_shift(&h, M1, "oee.quality", "early") * 10000) / 100, 97.80, 1e-9);
    long i = op_find(&h, 0, M1, "oee");
    assert_true(i >= 0);
    assert_int_equal(h.out[i].time_ns, at(14, 0, 0)); /* the shift end, not the watermark */
    assert_true(tag_is(&h, (size_t)i, "window_start", NULL));
    op_harness_close(&h);
}

/* ---- (b) every ISO element; (c) the day from summed shift times ---- */

static const char *const iso_yaml = "ideal_cycle_time: 30s\n"
                                    "interval: 0s\n"
                                    "line_level: 0\n"
                                    "shifts:\n"
                                    "  - {name: early, start: \"06:00\", end: \"14:00\"}\n"
                                    "  - {name: late, start: \"14:00\", end: \"18:00\"}\n"
                                    "breaks: [{name: lunch, start: \"10:00\", end: \"10:30\"}]\n";

/* Shift early of domain.md §1.5 (b): PDOT 45 (lunch 30 by calendar + planned maintenance 15
 * by state), breakdown 25, changeover 20, waiting 10, 8 micro-stops of 1 min, PRI 0.5 min,
 * PQ 700, GQ 665. The records with from <= time < until, in time order. */
static void iso_events(struct op_harness *h, int64_t from, int64_t until)
{
    struct ev {
        int64_t t;
        const char *st; /* NULL: counters */
        int64_t produced, good;
    } ev[40] = {
        {at(6, 0, 0), "RUNNING", 0, 0},       {at(6, 0, 0), NULL, 1000, 900}, /* bases */
        {at(7, 0, 0), "DOWN", 0, 0},          {at(7, 25, 0), "RUNNING", 0, 0},
        {at(8, 0, 0), "SETUP", 0, 0},         {at(8, 20, 0), "RUNNING", 0, 0},
        {at(9, 0, 0), "IDLE", 0, 0},          {at(9, 10, 0), "RUNNING", 0, 0},
        {at(10, 0, 0), "IDLE", 0, 0},         {at(10, 30, 0), "RUNNING", 0, 0},
        {at(11, 0, 0), "PLANNED_STOP", 0, 0}, {at(11, 15, 0), "RUNNING", 0, 0},
    };
    int n = 12;
    for (int k = 0; k < 8; k++) {
        ev[n++] = (struct ev){at(12, 5 * k, 0), "DOWN", 0, 0};
        ev[n++] = (struct ev){at(12, 5 * k + 1, 0), "RUNNING", 0, 0};
    }
    ev[n++] = (struct ev){at(13, 0, 0), NULL, 1000 + 350, 900 + 330};
    ev[n++] = (struct ev){at(13, 59, 0), NULL, 1000 + 700, 900 + 665};
    for (int i = 0; i < n; i++) {
        if (ev[i].t < from || ev[i].t >= until) {
            continue;
        }
        if (ev[i].st != NULL) {
            state(h, M1, ev[i].t, ev[i].st);
        } else {
            counts(h, M1, ev[i].t, ev[i].produced, ev[i].good);
        }
    }
}

static void iso_early(struct op_harness *h, int64_t until)
{
    iso_events(h, INT64_MIN, until);
}

static void iso_check_early(struct op_harness *h)
{
    assert_near(final_shift(h, M1, "oee.availability", "early"), 380.0 / 435, 1e-12);
    assert_near(final_shift(h, M1, "oee.performance", "early"), 350.0 / 380, 1e-12);
    assert_near(final_shift(h, M1, "oee.quality", "early"), 0.95, 1e-12);
    assert_near(final_shift(h, M1, "oee", "early"), 332.5 / 435, 1e-12);
    assert_near(final_shift(h, M1, "oee", "early"), 0.764368, 5e-7);
    assert_near(final_shift(h, M1, "oee.planned_busy_time", "early"), 435 * 60, 1e-6);
    assert_near(final_shift(h, M1, "oee.run_time", "early"), 380 * 60, 1e-6);
    assert_near(final_shift(h, M1, "oee.planned_downtime", "early"), 45 * 60, 1e-6);
    assert_near(final_shift(h, M1, "oee.produced", "early"), 700, 0);
    assert_near(final_shift(h, M1, "oee.good", "early"), 665, 0);
    /* six big losses + waiting; with PRI x GQ they add up to PBT (55+30+17.5+332.5 min) */
    double l[] = {
        final_shift(h, M1, "oee.loss.breakdown", "early"),
        final_shift(h, M1, "oee.loss.setup", "early"),
        final_shift(h, M1, "oee.loss.idle", "early"),
        final_shift(h, M1, "oee.loss.small_stops", "early"),
        final_shift(h, M1, "oee.loss.speed", "early"),
        final_shift(h, M1, "oee.loss.startup_rejects", "early"),
        final_shift(h, M1, "oee.loss.production_rejects", "early"),
    };
    assert_near(l[0], 25 * 60, 1e-6);
    assert_near(l[1], 20 * 60, 1e-6);
    assert_near(l[2], 10 * 60, 1e-6);
    assert_near(l[3], 8 * 60, 1e-6);
    assert_near(l[4], 22 * 60, 1e-6);
    assert_near(l[5], 0, 1e-6);
    assert_near(l[6], 17.5 * 60, 1e-6);
    assert_near(l[0] + l[1] + l[2], 55 * 60, 1e-6);
    assert_near(l[3] + l[4], 30 * 60, 1e-6);
    assert_near(l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + 332.5 * 60, 435 * 60, 1e-6);
}

static void test_iso_example(void **s)
{
    (void)s;
    struct op_harness h;
    open_ok(&h, iso_yaml);
    iso_early(&h, INT64_MAX);
    op_harness_advance(&h, M1, at(14, 2, 0));
    iso_check_early(&h);
    op_harness_close(&h);
}

static void test_day_from_summed_times(void **s)
{
    (void)s;
    struct op_harness h;
    open_ok(&h, iso_yaml);
    iso_early(&h, INT64_MAX);
    /* shift late, (c): PBT 200 (40 planned of 240), PRI x GQ 180 min */
    state(&h, M1, at(14, 0, 0), "PLANNED_STOP");
    state(&h, M1, at(14, 40, 0), "RUNNING");
    counts(&h, M1, at(17, 59, 0), 1700 + 360, 1565 + 360);
    state(&h, M1, at(18, 0, 0), "IDLE"); /* after the last shift: not counted */
    op_harness_advance(&h, M1, at(19, 0, 0));
    iso_check_early(&h);
    assert_near(final_shift(&h, M1, "oee", "late"), 0.9, 1e-12);
    double day = result(&h, M1, "oee", "day", "final", "all", 0);
    assert_near(day, 512.5 / 635, 1e-12);
    assert_near(day, 0.807087, 5e-7);
    assert_true(fabs(day - (0.764368 + 0.9) / 2) > 0.02); /* not the mean of shift OEEs */
    assert_near(result(&h, M1, "oee.planned_busy_time", "day", "final", NULL, 0), 635 * 60, 1e-6);
    long i = op_find(&h, 0, M1, "oee");
    for (; i >= 0 && !tag_is(&h, (size_t)i, "period", "day");
         i = op_find(&h, (size_t)i + 1, M1, "oee")) {
    }
    assert_true(i >= 0);
    assert_int_equal(h.out[i].time_ns, at(18, 0, 0));
    op_harness_close(&h);
}

/* ---- edge cases ---- */

/* A stop of `len` with a 2-min threshold: small stop below, breakdown at or above. */
static void test_microstop_threshold(void **s)
{
    (void)s;
    const int64_t lens[] = {119 * SEC, 121 * SEC, 120 * SEC};
    const bool small[] = {true, false, false};
    for (size_t k = 0; k < 3; k++) {
        struct op_harness h;
        open_ok(&h, iso_yaml);
        state(&h, M1, at(6, 0, 0), "RUNNING");
        state(&h, M1, at(7, 0, 0), "DOWN");
        state(&h, M1, at(7, 0, 0) + lens[k], "RUNNING");
        op_harness_advance(&h, M1, at(14, 5, 0));
        double sec = (double)lens[k] / SEC;
        assert_near(final_shift(&h, M1, "oee.loss.small_stops", "early"), small[k] ? sec : 0, 0);
        assert_near(final_shift(&h, M1, "oee.loss.breakdown", "early"), small[k] ? 0 : sec, 0);
        assert_near(final_shift(&h, M1, "oee.availability", "early"),
                    small[k] ? 1.0 : (480 * 60 - sec) / (480 * 60), 1e-12);
        op_harness_close(&h);
    }
}

/* A stop 13:50-14:20 across the 14:00 shift change: 10 min to early, 20 min to late. */
static void test_stop_across_shift_change(void **s)
{
    (void)s;
    struct op_harness h;
    open_ok(&h, iso_yaml);
    state(&h, M1, at(6, 0, 0), "RUNNING");
    state(&h, M1, at(13, 50, 0), "DOWN");
    state(&h, M1, at(14, 20, 0), "RUNNING");
    op_harness_advance(&h, M1, at(18, 5, 0));
    assert_near(final_shift(&h, M1, "oee.loss.breakdown", "early"), 600, 0);
    assert_near(final_shift(&h, M1, "oee.loss.breakdown", "late"), 1200, 0);
    assert_near(final_shift(&h, M1, "oee.planned_busy_time", "late"), 240 * 60, 0);
    op_harness_close(&h);

    /* a stop open at the shift end may still turn out short: the shift waits for it */
    open_ok(&h, iso_yaml);
    state(&h, M1, at(6, 0, 0), "RUNNING");
    state(&h, M1, at(13, 59, 30), "DOWN");
    op_harness_advance(&h, M1, at(14, 0, 30));
    assert_true(isnan(final_shift(&h, M1, "oee", "early")));
    state(&h, M1, at(14, 0, 45), "RUNNING"); /* 75 s: a small stop, 30 s of it in early */
    op_harness_advance(&h, M1, at(14, 0, 46));
    assert_near(final_shift(&h, M1, "oee.loss.small_stops", "early"), 30, 0);
    assert_near(final_shift(&h, M1, "oee.loss.breakdown", "early"), 0, 0);
    assert_near(final_shift(&h, M1, "oee.availability", "early"), 1.0, 0);
    op_harness_close(&h);
}

/* A counter going down was reset: counting restarts from the new value. */
static void test_counter_reset(void **s)
{
    (void)s;
    struct op_harness h;
    open_ok(&h, iso_yaml);
    state(&h, M1, at(6, 0, 0), "RUNNING");
    const int64_t v[] = {0, 100, 150, 5, 25};
    for (int i = 0; i < 5; i++) {
        counter(&h, M1, "cycle_count", at(7 + i, 0, 0), v[i]);
        counter(&h, M1, "good_count", at(7 + i, 0, 0), v[i]);
    }
    op_harness_advance(&h, M1, at(14, 5, 0));
    assert_near(final_shift(&h, M1, "oee.produced", "early"), 170, 0);
    assert_near(final_shift(&h, M1, "oee.good", "early"), 170, 0);
    assert_near(final_shift(&h, M1, "oee.quality", "early"), 1.0, 0);
    op_harness_close(&h);
}

/* planned_stop: calendar: a planned state outside a break is unplanned (an overrun). */
static void test_planned_stop_policy(void **s)
{
    (void)s;
    const char *modes[] = {"state", "calendar"};
    for (int k = 0; k < 2; k++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml), "%splanned_stop: %s\n", iso_yaml, modes[k]);
        struct op_harness h;
        open_ok(&h, yaml);
        state(&h, M1, at(6, 0, 0), "RUNNING");
        state(&h, M1, at(10, 0, 0), "PLANNED_STOP"); /* lunch 10:00-10:30, overrun to 10:40 */
        state(&h, M1, at(10, 40, 0), "RUNNING");
        op_harness_advance(&h, M1, at(14, 5, 0));
        assert_near(final_shift(&h, M1, "oee.planned_downtime", "early"), k == 0 ? 2400 : 1800, 0);
        assert_near(final_shift(&h, M1, "oee.loss.breakdown", "early"), k == 0 ? 0 : 600, 0);
        op_harness_close(&h);
    }
}

/* Rejects in the start-up period after a changeover are start-up rejects. */
static void test_startup_rejects(void **s)
{
    (void)s;
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "%sstartup_period: 10m\n", iso_yaml);
    struct op_harness h;
    open_ok(&h, yaml);
    state(&h, M1, at(6, 0, 0), "SETUP");
    counts(&h, M1, at(6, 0, 0), 0, 0);
    state(&h, M1, at(6, 30, 0), "RUNNING");
    counts(&h, M1, at(6, 35, 0), 10, 6); /* 4 start-up rejects */
    counts(&h, M1, at(7, 0, 0), 60, 53); /* 3 production rejects */
    op_harness_advance(&h, M1, at(14, 5, 0));
    assert_near(final_shift(&h, M1, "oee.loss.startup_rejects", "early"), 4 * 30, 1e-9);
    assert_near(final_shift(&h, M1, "oee.loss.production_rejects", "early"), 3 * 30, 1e-9);
    op_harness_close(&h);
}

/* Partial results at every interval tick, on event time; late records are dropped. */
static void test_partial_and_late(void **s)
{
    (void)s;
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "%s", iso_yaml);
    char *iv = strstr(yaml, "interval: 0s");
    memcpy(iv, "interval: 1h", 12);
    struct op_harness h;
    open_ok(&h, yaml);
    state(&h, M1, at(6, 0, 0), "RUNNING");
    counts(&h, M1, at(6, 0, 0), 0, 0);
    state(&h, M1, at(6, 30, 0), "DOWN");
    counts(&h, M1, at(6, 29, 0), 60, 60);
    op_harness_advance(&h, M1, at(7, 0, 0));
    /* 06:00-07:00: 30 min run, 30 min down; 60 parts x 30 s = 30 min: OEE 0.5 */
    assert_near(result(&h, M1, "oee", "shift", "partial", "early", at(7, 0, 0)), 0.5, 1e-12);
    assert_near(result(&h, M1, "oee.availability", "shift", "partial", "early", at(7, 0, 0)), 0.5,
                1e-12);
    size_t before = h.nout;
    state(&h, M1, at(6, 50, 0), "RUNNING"); /* late: 06:50 was booked as DOWN */
    assert_int_equal(h.nout, before);
    state(&h, M1, at(7, 30, 0), "RUNNING");
    op_harness_advance(&h, M1, at(14, 5, 0));
    assert_near(final_shift(&h, M1, "oee.loss.breakdown", "early"), 3600, 0);
    op_harness_close(&h);
}

/* Line results sum the time elements of their machines (never average ratios). */
static void test_line_sums(void **s)
{
    (void)s;
    struct op_harness h;
    open_ok(&h, "ideal_cycle_time: 30s\ninterval: 1h\nday: false\n"
                "shifts: [{name: early, start: \"06:00\", end: \"14:00\"}]\n");
    state(&h, M1, at(6, 0, 0), "RUNNING");
    counts(&h, M1, at(6, 0, 0), 0, 0);
    counts(&h, M1, at(13, 0, 0), 960, 960); /* 480 min PBT, 480 min value: OEE 1.0 */
    state(&h, M2, at(6, 0, 0), "RUNNING");
    counts(&h, M2, at(6, 0, 0), 0, 0);
    state(&h, M2, at(10, 0, 0), "DOWN");
    state(&h, M2, at(13, 0, 0), "RUNNING");
    counts(&h, M2, at(13, 30, 0), 240, 240); /* 480 PBT, 120 min value: OEE 0.25 */
    op_harness_advance(&h, M1, at(14, 3, 0));
    op_harness_advance(&h, M2, at(14, 3, 0));
    advance_all(&h, at(14, 1, 0));
    assert_true(isnan(final_shift(&h, LINE, "oee", "early"))); /* waits for small stops */
    advance_all(&h, at(14, 3, 0));
    assert_near(final_shift(&h, M1, "oee", "early"), 1.0, 1e-12);
    assert_near(final_shift(&h, M2, "oee", "early"), 0.25, 1e-12);
    assert_near(final_shift(&h, LINE, "oee", "early"), 600.0 / 960, 1e-12);
    assert_near(final_shift(&h, LINE, "oee.availability", "early"), 780.0 / 960, 1e-12);
    assert_near(final_shift(&h, LINE, "oee.planned_busy_time", "early"), 960 * 60, 1e-9);
    /* continuous line results: at 11:00 M1 ran 300 min, M2 240 of 300 */
    assert_near(result(&h, LINE, "oee.availability", "shift", "partial", "early", at(11, 0, 0)),
                540.0 / 600, 1e-12);
    assert_near(result(&h, M2, "oee.availability", "shift", "partial", "early", at(11, 0, 0)), 0.8,
                1e-12);
    op_harness_close(&h);
}

/* An idle source: the pipeline watermark closes its shift too. */
static void test_idle_machine_closed_by_pipeline_watermark(void **s)
{
    (void)s;
    struct op_harness h;
    open_ok(&h, "ideal_cycle_time: 30s\ninterval: 0s\nday: false\n"
                "shifts: [{name: early, start: \"06:00\", end: \"14:00\"}]\n");
    state(&h, M1, at(6, 0, 0), "RUNNING");
    advance_all(&h, at(14, 5, 0));
    assert_near(final_shift(&h, M1, "oee.availability", "early"), 1.0, 0);
    assert_near(final_shift(&h, LINE, "oee.availability", "early"), 1.0, 0);
    op_harness_close(&h);
}

/* Availability below 0.8 in every 10-min slice for 30 min: one alert, re-armed on recovery. */
static void test_below_target_alert(void **s)
{
    (void)s;
    struct op_harness h;
    open_ok(&h, "ideal_cycle_time: 30s\ninterval: 10m\nline_level: 0\n"
                "shifts: [{name: early, start: \"06:00\", end: \"14:00\"}]\n"
                "targets: {availability: 0.8}\nalert_after: 30m\n");
    state(&h, M1, at(6, 0, 0), "RUNNING");
    state(&h, M1, at(7, 0, 0), "DOWN");
    op_harness_advance(&h, M1, at(7, 25, 0));
    assert_true(op_find(&h, 0, M1, "alert") < 0);
    op_harness_advance(&h, M1, at(7, 30, 0));
    long i = op_find(&h, 0, M1, "alert");
    assert_true(i >= 0);
    assert_int_equal(h.out[i].time_ns, at(7, 30, 0));
    assert_true(tag_is(&h, (size_t)i, "feature", "oee.availability"));
    assert_true(tag_is(&h, (size_t)i, "threshold", "0.8"));
    assert_true(tag_is(&h, (size_t)i, "detector", "oee"));
    char ws[32];
    snprintf(ws, sizeof(ws), "%lld", (long long)at(7, 0, 0));
    assert_true(tag_is(&h, (size_t)i, "window_start", ws));
    op_harness_advance(&h, M1, at(8, 30, 0));
    assert_true(op_find(&h, (size_t)i + 1, M1, "alert") < 0); /* once */
    state(&h, M1, at(8, 30, 0), "RUNNING");
    op_harness_advance(&h, M1, at(8, 40, 0)); /* recovered: re-armed */
    state(&h, M1, at(8, 40, 0), "DOWN");
    op_harness_advance(&h, M1, at(9, 10, 0));
    assert_true(op_find(&h, (size_t)i + 1, M1, "alert") >= 0);
    op_harness_close(&h);
}

/* A checkpoint in the middle of the shift changes nothing. */
static void test_checkpoint_roundtrip(void **s)
{
    (void)s;
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "%s", iso_yaml);
    memcpy(strstr(yaml, "interval: 0s"), "interval: 1h", 12);
    struct op_harness h;
    open_ok(&h, yaml);
    iso_early(&h, at(12, 10, 30)); /* inside the third micro-stop */
    op_harness_advance(&h, M1, at(12, 10, 0));
    assert_int_equal(op_harness_roundtrip(&h), 0);
    struct op_harness ref;
    open_ok(&ref, yaml);
    iso_early(&ref, at(12, 10, 30));
    op_harness_advance(&ref, M1, at(12, 10, 0));
    /* continue both with the rest of the shift */
    for (int k = 0; k < 2; k++) {
        struct op_harness *x = k == 0 ? &h : &ref;
        iso_events(x, at(12, 10, 30), INT64_MAX);
        op_harness_advance(x, M1, at(14, 5, 0));
    }
    iso_check_early(&ref);
    iso_check_early(&h);
    op_harness_close(&h);
    op_harness_close(&ref);
}

/* Results do not depend on batching or on when the watermark moves (replays are
 * de-duplicated by content): one batch and one advance, or an advance after every record. */
static void test_deterministic_under_batching(void **s)
{
    (void)s;
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "%s", iso_yaml);
    memcpy(strstr(yaml, "interval: 0s"), "interval: 1h", 12);
    struct op_harness a, b;
    open_ok(&a, yaml);
    open_ok(&b, yaml);
    iso_early(&a, INT64_MAX);
    op_harness_advance(&a, M1, at(14, 5, 0));
    for (int64_t t = at(6, 0, 0); t <= at(14, 5, 0); t += 30 * SEC) {
        /* 30 s of records at a time, each batch followed by a watermark 2 min back */
        iso_events(&b, t - 30 * SEC, t);
        op_harness_advance(&b, M1, t - 2 * MINUTE);
    }
    op_harness_advance(&b, M1, at(14, 5, 0));
    assert_true(a.nout > 100); /* partial results every hour, finals at 14:00 */
    assert_int_equal(a.nout, b.nout);
    for (size_t i = 0; i < a.nout; i++) {
        bool found = false;
        for (size_t j = 0; j < b.nout && !found; j++) {
            found = a.out[i].signal == b.out[j].signal && a.out[i].time_ns == b.out[j].time_ns &&
                    a.out[i].v.f64 == b.out[j].v.f64;
        }
        assert_true(found);
    }
    op_harness_close(&a);
    op_harness_close(&b);
}

static void test_config_errors(void **s)
{
    (void)s;
    struct {
        const char *yaml;
        const char *want;
    } cases[] = {
        {"interval: 1m\n", "ideal_cycle_time"},
        {"ideal_cycle_time: 5s\nshifts: [{name: a, start: \"25:00\", end: \"06:00\"}]\n",
         "time of day"},
        {"ideal_cycle_time: 5s\nutc_offset: \"1h\"\n", "utc_offset"},
        {"ideal_cycle_time: 5s\nideal_cycle_times: {press1: fast}\n", "press1"},
        {"ideal_cycle_time: 5s\nmicrostop_treshold: 1m\n", "microstop_threshold"},
        {"ideal_cycle_time: 5s\ntargets: {oee: 60}\n", "fractions"},
        {"ideal_cycle_time: 5s\nshifts: [{name: a, start: \"06:00\", end: \"14:00\"}, "
         "{name: b, start: \"13:00\", end: \"22:00\"}]\n",
         "overlap"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct op_harness h;
        int rc = op_harness_open(&h, &mr_operator_oee, cases[i].yaml);
        if (rc == 0 || strstr(h.err.msg, cases[i].want) == NULL) {
            fail_msg("case %zu: rc %d, message '%s' lacks '%s'", i, rc, h.err.msg, cases[i].want);
        }
        op_harness_close(&h);
    }
}

/* Per-machine ideal cycle time, a night shift across midnight, a local-time offset. */
static void test_night_shift_and_ideal_by_machine(void **s)
{
    (void)s;
    struct op_harness h;
    open_ok(&h, "ideal_cycle_time: 30s\nideal_cycle_times: {press1: 60s}\ninterval: 0s\n"
                "line_level: 0\nday: false\nutc_offset: \"+01:00\"\n"
                "shifts: [{name: night, start: \"22:00\", end: \"06:00\"}]\n");
    /* 22:00 local = 21:00 UTC */
    state(&h, M1, at(21, 0, 0), "RUNNING");
    counts(&h, M1, at(21, 0, 0), 0, 0);
    counts(&h, M1, at(28, 0, 0), 240, 240); /* 240 min of value in a 480 min shift */
    op_harness_advance(&h, M1, at(29, 5, 0));
    assert_near(final_shift(&h, M1, "oee", "night"), 0.5, 1e-12);
    assert_near(final_shift(&h, M1, "oee.performance", "night"), 0.5, 1e-12);
    long i = op_find(&h, 0, M1, "oee");
    assert_int_equal(h.out[i].time_ns, at(29, 0, 0));
    op_harness_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vorne_example),
        cmocka_unit_test(test_iso_example),
        cmocka_unit_test(test_day_from_summed_times),
        cmocka_unit_test(test_microstop_threshold),
        cmocka_unit_test(test_stop_across_shift_change),
        cmocka_unit_test(test_counter_reset),
        cmocka_unit_test(test_planned_stop_policy),
        cmocka_unit_test(test_startup_rejects),
        cmocka_unit_test(test_partial_and_late),
        cmocka_unit_test(test_line_sums),
        cmocka_unit_test(test_idle_machine_closed_by_pipeline_watermark),
        cmocka_unit_test(test_below_target_alert),
        cmocka_unit_test(test_checkpoint_roundtrip),
        cmocka_unit_test(test_deterministic_under_batching),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_night_shift_and_ideal_by_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
