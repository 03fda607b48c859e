/* The energy operator, against hand-computed scenarios: a meter rollover and a meter reset, a
 * tariff boundary inside a demand interval (meter and trapezoid, UTC and local time), the
 * demand forecast per machine and per line, idle consumption, power spikes, a full day
 * (energy per good part, peak, the off-peak suggestion), config errors and a checkpoint round
 * trip that changes nothing. Times start on Monday 2026-11-23 00:00 UTC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "millrace/config.h"
#include "millrace/state.h"
#include "support/op_harness.h"

extern const struct mr_plugin mr_operator_energy;

#define SEC    1000000000LL
#define MINUTE (60 * SEC)
#define MONDAY (1795392000LL * SEC)
#define M1     "plant1/assembly/line1/press1"
#define M2     "plant1/assembly/line1/press2"
#define LINE   "plant1/assembly/line1"
#define SITE   "plant1"

static void open_ok(struct op_harness *h, const char *yaml)
{
    int rc = op_harness_open(h, &mr_operator_energy, yaml);
    if (rc != 0) {
        fail_msg("%s: %s", yaml, h->err.msg);
    }
}

static void push1(struct op_harness *h, struct mr_record r)
{
    if (op_harness_push(h, &r, 1) != 0) {
        fail_msg("push: %s", h->err.msg);
    }
}

static void num(struct op_harness *h, const char *asset, const char *sig, int64_t t, double v)
{
    push1(h, op_rec(h, asset, sig, t, v));
}

static void count_rec(struct op_harness *h, const char *asset, int64_t t, int64_t v)
{
    struct mr_record r = op_rec(h, asset, "good_count", t, 0);
    r.type = MR_VALUE_I64;
    r.v.i64 = v;
    push1(h, r);
}

static void state(struct op_harness *h, const char *asset, int64_t t, const char *s)
{
    struct mr_record r = op_rec(h, asset, "state", t, 0);
    r.type = MR_VALUE_STRING;
    r.v.str = (struct mr_bytes){.ptr = s, .len = (uint32_t)strlen(s)};
    push1(h, r);
}

static void advance(struct op_harness *h, const char *asset, int64_t wm)
{
    int rc = asset != NULL ? op_harness_advance(h, asset, wm)
                           : h->plugin->op.advance(h->ctx, 0, wm, &h->err);
    if (rc != 0) {
        fail_msg("advance: %s", h->err.msg);
    }
}

/* Index of the record (asset, signal) at time t; fails when there is none. */
static size_t find_at(struct op_harness *h, const char *asset, const char *sig, int64_t t)
{
    for (long i = op_find(h, 0, asset, sig); i >= 0; i = op_find(h, (size_t)i + 1, asset, sig)) {
        if (h->out[i].time_ns == t) {
            return (size_t)i;
        }
    }
    fail_msg("no %s %s at %lld", asset, sig, (long long)t);
    return 0;
}

static double val_at(struct op_harness *h, const char *asset, const char *sig, int64_t t)
{
    return h->out[find_at(h, asset, sig, t)].v.f64;
}

static size_t count_sig(struct op_harness *h, const char *sig)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nout; i++) {
        n += strcmp(op_str(h, h->out[i].signal), sig) == 0;
    }
    return n;
}

/* ---- meter rollover and reset ---- */

static void test_counter_rollover(void **st)
{
    (void)st;
    /* readings every 5 min; the third wraps (rollover 1000) or resets (no rollover) */
    static const double reads[] = {990, 995, 5, 10, 3, 7};
    static const struct {
        const char *yaml;
        double kwh1; /* [00:00, 00:15): 995-990 + wrap 10 (or reset 5) + 5 */
        double kwh2; /* [00:15, 00:25]: 10 -> 3 is a reset either way (3), + 4 */
    } cases[] = {
        {"rollover: 1000\n", 20, 7},
        {"rollover: 0\n", 15, 7},
    };
    for (size_t k = 0; k < 2; k++) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml),
                 "%sprice: 0.2\nforecast_every: 0s\nline_level: 0\nsite_level: 0\ngrace: 0s\n",
                 cases[k].yaml);
        struct op_harness h;
        open_ok(&h, yaml);
        for (int i = 0; i < 6; i++) {
            num(&h, M1, "energy", MONDAY + i * 5 * MINUTE, reads[i]);
        }
        advance(&h, M1, MONDAY + 30 * MINUTE);
        int64_t e1 = MONDAY + 15 * MINUTE;
        int64_t e2 = MONDAY + 30 * MINUTE;
        assert_float_equal(val_at(&h, M1, "energy.kwh", e1), cases[k].kwh1, 1e-9);
        assert_float_equal(val_at(&h, M1, "demand.kw", e1), cases[k].kwh1 * 4, 1e-9);
        assert_float_equal(val_at(&h, M1, "energy.cost", e1), cases[k].kwh1 * 0.2, 1e-9);
        assert_float_equal(val_at(&h, M1, "energy.kwh", e2), cases[k].kwh2, 1e-9);
        char buf[32];
        assert_string_equal(
            op_tag(&h, find_at(&h, M1, "energy.kwh", e1), "window_start", buf, sizeof(buf)),
            "1795392000000000000");
        op_harness_close(&h);
    }
}

/* ---- a tariff boundary inside an interval ---- */

static void test_tariff_boundary(void **st)
{
    (void)st;
    static const struct {
        const char *yaml;
        int counter;     /* 1: meter 100 at 06:55 -> 115 at 07:10 (60 kW); 0: power ramp */
        double kwh_0645; /* interval [06:45, 07:00) */
        double cost_0645;
        double kwh_0700; /* interval [07:00, 07:15) */
        double cost_0700;
    } cases[] = {
        /* 06:55-07:00 5 kWh @0.10; 07:00-07:05 5 kWh @0.10 + 07:05-07:10 5 kWh @0.30 */
        {"tariff: [{days: [weekdays], from: \"07:05\", to: \"21:00\", price: 0.3}]\n", 1, 5, 0.5,
         10, 2.0},
        /* the same at local time UTC+1 */
        {"utc_offset_min: 60\ntariff: [{days: [mon], from: \"08:05\", to: \"22:00\", "
         "price: 0.3}]\n",
         1, 5, 0.5, 10, 2.0},
        /* a Sunday-only period does not apply on Monday */
        {"tariff: [{days: [sun], from: \"07:05\", to: \"21:00\", price: 0.3}]\n", 1, 5, 0.5, 10,
         1.0},
        /* power 0 kW at 07:00 rising to 60 kW at 07:10: 1.25 kWh before 07:05 (@0.10),
         * 3.75 kWh after (@0.30) */
        {"energy_from: power\nmax_gap: 15m\ntariff: [{days: [all], from: \"07:05\", to: \"21:00\", "
         "price: 0.3}]\n",
         0, 0, 0, 5, 1.25},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 "%sprice: 0.1\nforecast_every: 0s\nline_level: 0\nsite_level: 0\n", cases[k].yaml);
        struct op_harness h;
        open_ok(&h, yaml);
        if (cases[k].counter) {
            num(&h, M1, "energy", MONDAY + 415 * MINUTE, 100);
            num(&h, M1, "energy", MONDAY + 430 * MINUTE, 115);
        } else {
            num(&h, M1, "power", MONDAY + 420 * MINUTE, 0);
            num(&h, M1, "power", MONDAY + 430 * MINUTE, 60);
        }
        advance(&h, M1, MONDAY + 480 * MINUTE);
        if (cases[k].counter) {
            assert_float_equal(val_at(&h, M1, "energy.kwh", MONDAY + 420 * MINUTE),
                               cases[k].kwh_0645, 1e-9);
            assert_float_equal(val_at(&h, M1, "energy.cost", MONDAY + 420 * MINUTE),
                               cases[k].cost_0645, 1e-9);
        }
        assert_float_equal(val_at(&h, M1, "energy.kwh", MONDAY + 435 * MINUTE), cases[k].kwh_0700,
                           1e-9);
        assert_float_equal(val_at(&h, M1, "energy.cost", MONDAY + 435 * MINUTE), cases[k].cost_0700,
                           1e-9);
        op_harness_close(&h);
    }
}

/* ---- demand forecast, machine and line ---- */

/* press1: meter 0, 10, 15, 20 at 00:00, 00:05, 00:10, 00:15 (120, 60, 60 kW);
 * press2: 0, 5, 10, 15 (60 kW throughout). */
static void forecast_feed(struct op_harness *h, int from, int to)
{
    static const double m1[] = {0, 10, 15, 20};
    static const double m2[] = {0, 5, 10, 15};
    for (int i = from; i < to; i++) {
        int64_t t = MONDAY + i * 5 * MINUTE;
        num(h, M1, "energy", t, m1[i]);
        num(h, M2, "energy", t, m2[i]);
        advance(h, M1, t);
        advance(h, M2, t);
        advance(h, NULL, t);
    }
}

static void forecast_check(struct op_harness *h)
{
    /* machine: energy so far / time so far */
    assert_float_equal(val_at(h, M1, "demand.forecast_kw", MONDAY + 5 * MINUTE), 120, 1e-9);
    assert_float_equal(val_at(h, M1, "demand.forecast_kw", MONDAY + 10 * MINUTE), 90, 1e-9);
    assert_float_equal(val_at(h, M2, "demand.forecast_kw", MONDAY + 10 * MINUTE), 60, 1e-9);
    /* line and site: (10 + 5) kWh in 5 min, (15 + 10) in 10 min */
    assert_float_equal(val_at(h, LINE, "demand.forecast_kw", MONDAY + 5 * MINUTE), 180, 1e-9);
    assert_float_equal(val_at(h, LINE, "demand.forecast_kw", MONDAY + 10 * MINUTE), 150, 1e-9);
    assert_float_equal(val_at(h, SITE, "demand.forecast_kw", MONDAY + 10 * MINUTE), 150, 1e-9);
    /* the interval's demand: 20 and 15 kWh in a quarter hour; the line sums energies */
    int64_t e = MONDAY + 15 * MINUTE;
    assert_float_equal(val_at(h, M1, "demand.kw", e), 80, 1e-9);
    assert_float_equal(val_at(h, M2, "demand.kw", e), 60, 1e-9);
    assert_float_equal(val_at(h, LINE, "demand.kw", e), 140, 1e-9);
    assert_float_equal(val_at(h, LINE, "energy.kwh", e), 35, 1e-9);
    assert_float_equal(val_at(h, SITE, "energy.kwh", e), 35, 1e-9);
}

static void test_peak_forecast(void **st)
{
    (void)st;
    static const char *yaml = "forecast_every: 5m\ngrace: 0s\n";
    for (int rt = 0; rt < 2; rt++) {
        struct op_harness h;
        open_ok(&h, yaml);
        forecast_feed(&h, 0, 2);
        if (rt) {
            assert_int_equal(op_harness_roundtrip(&h), 0); /* mid-interval */
        }
        forecast_feed(&h, 2, 4);
        /* no forecast at the interval end: the interval's demand is final there */
        assert_int_equal(count_sig(&h, "demand.forecast_kw"), 2 * 2 + 2 * 2);
        advance(&h, M1, MONDAY + 16 * MINUTE);
        advance(&h, M2, MONDAY + 16 * MINUTE);
        advance(&h, NULL, MONDAY + 16 * MINUTE);
        forecast_check(&h);
        op_harness_close(&h);
    }
}

/* ---- idle consumption ---- */

static void test_idle_consumption(void **st)
{
    (void)st;
    static const struct {
        const char *state;
        double kw;
        int64_t alert_at; /* minutes after 00:00; -1: none */
    } cases[] = {
        {"IDLE", 8, 10},         /* 8 kW > 5 kW, judged once idle for 10 min */
        {"PLANNED_STOP", 8, 10}, /* also an idle state */
        {"IDLE", 3, -1},         /* below the threshold */
        {"RUNNING", 8, -1},      /* not idle */
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct op_harness h;
        open_ok(&h, "energy_from: power\nidle_kw: 5\nidle_min: 10m\nforecast_every: 0s\n"
                    "spike_sigma: 0\nline_level: 0\nsite_level: 0\n");
        state(&h, M1, MONDAY, cases[k].state);
        for (int i = 0; i <= 14; i++) {
            num(&h, M1, "power", MONDAY + i * MINUTE, cases[k].kw);
        }
        state(&h, M1, MONDAY + 14 * MINUTE, "RUNNING");
        num(&h, M1, "power", MONDAY + 15 * MINUTE, cases[k].kw);
        advance(&h, M1, MONDAY + 20 * MINUTE);
        assert_int_equal(count_sig(&h, "alert"), cases[k].alert_at < 0 ? 0 : 1);
        if (cases[k].alert_at >= 0) {
            size_t i = find_at(&h, M1, "alert", MONDAY + cases[k].alert_at * MINUTE);
            char buf[64];
            assert_string_equal(op_tag(&h, i, "detector", buf, sizeof(buf)), "energy.idle");
            assert_string_equal(op_tag(&h, i, "value", buf, sizeof(buf)), "8");
            assert_string_equal(op_tag(&h, i, "threshold", buf, sizeof(buf)), "5");
            assert_string_equal(op_tag(&h, i, "window_start", buf, sizeof(buf)),
                                "1795392000000000000");
        }
        /* 14 min of idle (the state changes at 00:14) at kw: kw * 14/60 kWh */
        bool idle = strcmp(cases[k].state, "RUNNING") != 0;
        double want = idle ? cases[k].kw * 14.0 / 60.0 : 0;
        assert_float_equal(val_at(&h, M1, "energy.idle_kwh", MONDAY + 15 * MINUTE), want, 1e-9);
        assert_float_equal(val_at(&h, M1, "energy.kwh", MONDAY + 15 * MINUTE), cases[k].kw * 0.25,
                           1e-9);
        op_harness_close(&h);
    }
}

/* ---- spikes against the machine's own baseline ---- */

static void test_spikes(void **st)
{
    (void)st;
    struct op_harness h;
    open_ok(&h, "energy_from: power\nspike_window: 20\nspike_sigma: 4\nspike_settle: 30s\n"
                "forecast_every: 0s\nline_level: 0\nsite_level: 0\n");
    state(&h, M1, MONDAY, "RUNNING");
    int64_t t = MONDAY;
    num(&h, M1, "power", t, 200); /* start-up inrush, inside spike_settle: neither */
    for (int i = 1; i <= 40; i++) {
        t = MONDAY + i * 10 * SEC;
        num(&h, M1, "power", t, i % 2 ? 49 : 51); /* baseline 50 +- 1 */
    }
    assert_int_equal(count_sig(&h, "alert"), 0);
    static const double tail[] = {58, 80, 82, 50, 81};
    static const int alerts[] = {1, 1, 1, 1, 2}; /* cumulative: 58 is 8 sigma out */
    for (int i = 0; i < 5; i++) {
        t += 10 * SEC;
        num(&h, M1, "power", t, tail[i]);
        assert_int_equal(count_sig(&h, "alert"), alerts[i]);
    }
    long a = op_find(&h, 0, M1, "alert");
    char buf[64];
    assert_string_equal(op_tag(&h, (size_t)a, "detector", buf, sizeof(buf)), "energy.spike");
    assert_string_equal(op_tag(&h, (size_t)a, "value", buf, sizeof(buf)), "58");
    op_harness_close(&h);
}

/* ---- a whole day: per good part, peak, the off-peak suggestion ---- */

static void test_day(void **st)
{
    (void)st;
    struct op_harness h;
    open_ok(&h, "price: 0.1\ncurrency: EUR\nforecast_every: 0s\ngrace: 0s\n"
                "tariff: [{days: [weekdays], from: \"07:00\", to: \"21:00\", price: 0.3}]\n"
                "deferrable: [plant1/assembly/]\nline_level: 0\nsite_level: 0\n");
    /* 4 kW (1 kWh per quarter hour), 8 kW from 12:00 to 12:15; 10 good parts per quarter,
     * counted mid-quarter */
    double meter = 0;
    for (int q = 0; q <= 96; q++) {
        int64_t t = MONDAY + q * 15 * MINUTE;
        meter += q == 0 ? 0 : q == 49 ? 2 : 1;
        num(&h, M1, "energy", t, meter);
        count_rec(&h, M1, t - 450 * SEC, q * 10); /* mid-quarter */
        advance(&h, M1, t);
    }
    int64_t end = MONDAY + 1440 * MINUTE;
    /* 97 kWh: 14 h at 0.30 (56 + 1 kWh), 10 h at 0.10 (40 kWh) */
    assert_float_equal(val_at(&h, M1, "energy.day_kwh", end), 97, 1e-9);
    assert_float_equal(val_at(&h, M1, "energy.day_cost", end), 57 * 0.3 + 4.0, 1e-9);
    assert_float_equal(val_at(&h, M1, "demand.peak_kw", end), 8, 1e-9);
    char buf[64];
    assert_string_equal(
        op_tag(&h, find_at(&h, M1, "demand.peak_kw", end), "peak_start", buf, sizeof(buf)),
        "1795435200000000000"); /* 12:00 */
    assert_float_equal(val_at(&h, M1, "energy.day_per_good_part", end), 97.0 / 960, 1e-12);
    assert_float_equal(val_at(&h, M1, "energy.per_good_part", MONDAY + 15 * MINUTE), 0.1, 1e-12);
    size_t s = find_at(&h, M1, "energy.suggestion", end);
    /* at 0.10 throughout it would cost 9.70: 21.10 - 9.70 = 11.40 saved */
    assert_string_equal(op_tag(&h, s, "cost_saved", buf, sizeof(buf)), "11.4");
    assert_string_equal(op_tag(&h, s, "currency", buf, sizeof(buf)), "EUR");
    assert_non_null(strstr(h.out[s].v.str.ptr, "saves 11.40 EUR"));
    assert_int_equal(count_sig(&h, "energy.day_kwh"), 1);
    op_harness_close(&h);

    /* the same machine and press2 (2 kW steady) on one line: the line's day sums energies */
    open_ok(&h, "price: 0.1\nforecast_every: 0s\ngrace: 0s\n"
                "tariff: [{days: [weekdays], from: \"07:00\", to: \"21:00\", price: 0.3}]\n");
    meter = 0;
    for (int q = 0; q <= 96; q++) {
        int64_t t = MONDAY + q * 15 * MINUTE;
        meter += q == 0 ? 0 : q == 49 ? 2 : 1;
        num(&h, M1, "energy", t, meter);
        num(&h, M2, "energy", t, q * 0.5);
        advance(&h, NULL, t);
    }
    assert_float_equal(val_at(&h, LINE, "energy.day_kwh", end), 97 + 48, 1e-9);
    assert_float_equal(val_at(&h, SITE, "energy.day_cost", end), 57 * 0.3 + 4.0 + 28 * 0.3 + 2.0,
                       1e-9);
    /* the line's peak: 8 + 2 kW at 12:00, from summed energy, not averaged ratios */
    assert_float_equal(val_at(&h, LINE, "demand.peak_kw", end), 10, 1e-9);
    assert_int_equal(count_sig(&h, "energy.suggestion"), 0); /* nothing deferrable */
    op_harness_close(&h);
}

/* ---- config errors ---- */

static void test_config_errors(void **st)
{
    (void)st;
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"interval: 7m\n", "must divide a day"},
        {"forecast_every: 4m\n", "forecast_every"},
        {"utc_offset_min: 5\n", "whole number of intervals"},
        {"tariff: [{from: \"7:00\", to: \"21:00\", price: 1}]\n", "is not a time HH:MM"},
        {"tariff: [{days: [monday], from: \"07:00\", to: \"21:00\", price: 1}]\n",
         "'monday' is not mon..sun"},
        {"tariff: [{from: \"07:00\", to: \"24:01\", price: 1}]\n", "tariff[0].to"},
        {"energy_from: meter\n", "energy_from"},
        {"idle_kw: -1\n", "idle_kw"},
    };
    static struct mr_config_errors errs;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        void *conf = calloc(1, mr_operator_energy.conf.size);
        int rc = mr_section_load_buffer(&mr_operator_energy.conf, conf, "e.yaml", cases[i].yaml,
                                        strlen(cases[i].yaml), NULL, &errs);
        assert_int_not_equal(rc, 0);
        if (strstr(errs.msg[0], cases[i].msg) == NULL) {
            fail_msg("%s: got '%s', want '%s'", cases[i].yaml, errs.msg[0], cases[i].msg);
        }
        assert_non_null(strstr(errs.msg[0], "e.yaml:"));
        mr_section_free(&mr_operator_energy.conf, conf);
        free(conf);
    }
    struct mr_err err;
    assert_int_equal(mr_section_validate(&mr_operator_energy.conf, "energy", &err), 0);
}

/* ---- late data and bad values ---- */

static void test_late_and_bad(void **st)
{
    (void)st;
    struct op_harness h;
    open_ok(&h, "forecast_every: 0s\ngrace: 0s\nline_level: 0\nsite_level: 0\n");
    num(&h, M1, "energy", MONDAY, 0);
    num(&h, M1, "energy", MONDAY + 10 * MINUTE, 10);
    num(&h, M1, "energy", MONDAY + 5 * MINUTE, 3); /* late: not integrated */
    struct mr_record bad = op_rec(&h, M1, "energy", MONDAY + 12 * MINUTE, 999);
    bad.quality = MR_QUALITY_BAD;
    push1(&h, bad);
    num(&h, M1, "energy", MONDAY + 15 * MINUTE, 15);
    advance(&h, M1, MONDAY + 15 * MINUTE);
    assert_float_equal(val_at(&h, M1, "energy.kwh", MONDAY + 15 * MINUTE), 15, 1e-9);
    /* a long gap: 30 kWh over two intervals already emitted up to 00:15 -> 00:45 */
    num(&h, M1, "energy", MONDAY + 45 * MINUTE, 45);
    advance(&h, M1, MONDAY + 45 * MINUTE);
    assert_float_equal(val_at(&h, M1, "energy.kwh", MONDAY + 30 * MINUTE), 15, 1e-9);
    assert_float_equal(val_at(&h, M1, "energy.kwh", MONDAY + 45 * MINUTE), 15, 1e-9);
    assert_int_equal(count_sig(&h, "energy.kwh"), 3);
    op_harness_close(&h);
}

/* A truncated or foreign checkpoint is refused with a clear error, never read past its end. */
static void test_bad_checkpoint(void **st)
{
    (void)st;
    struct op_harness h;
    open_ok(&h, "forecast_every: 5m\n");
    forecast_feed(&h, 0, 3);
    struct mr_state_writer w;
    mr_state_writer_init(&w, h.names, 0);
    assert_int_equal(mr_operator_energy.op.snapshot(h.ctx, &w, &h.err), 0);
    assert_true(w.len > 100);
    void *ctx = calloc(1, mr_operator_energy.ctx_size);
    static const size_t cuts[] = {0, 8, 20, 100, 0};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        size_t len = cuts[i] != 0 || i == 0 ? cuts[i] : w.len - 1;
        struct mr_err err = {0};
        assert_int_equal(mr_operator_energy.op.init(ctx, h.conf, &h.host, &err), 0);
        struct mr_state_reader r;
        mr_state_reader_init(&r, h.names, w.buf, len);
        assert_int_not_equal(mr_operator_energy.op.restore(ctx, &r, &err), 0);
        assert_true(strlen(err.msg) > 0);
        mr_operator_energy.op.fini(ctx);
    }
    free(ctx);
    mr_state_writer_fini(&w);
    op_harness_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_rollover), cmocka_unit_test(test_tariff_boundary),
        cmocka_unit_test(test_peak_forecast),    cmocka_unit_test(test_idle_consumption),
        cmocka_unit_test(test_spikes),           cmocka_unit_test(test_day),
        cmocka_unit_test(test_config_errors),    cmocka_unit_test(test_late_and_bad),
        cmocka_unit_test(test_bad_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
