/* The supply operator: the projection math on hand-computed cases, then scenarios through the
 * plugin as a pipeline drives it: a delayed shipment causing a projected stockout (warning,
 * then alarm), the arrival clearing it, a cancelled shipment without ids, consumption from
 * part counters x bill of materials (with a counter reset) and from consumption events, bad
 * input counted and survived, config errors, and a checkpoint round trip that changes nothing.
 *
 * Units in the comments: hours (H) and units of material; rates in units per hour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "analytics/supply.h"
#include "support/op_harness.h"

extern const struct mr_plugin mr_operator_supply;

#define SEC   1000000000LL
#define H     (3600 * SEC)
#define NEVER MR_SUPPLY_NEVER
#define MAT   "plant1/warehouse/steel_blank"
#define MAT2  "plant1/warehouse/screws"
#define PAINT "plant1/assembly/line1/paint1"
/* 2026-11-24T00:00:00Z: every scenario starts there, so etas read as whole hours. */
#define T0    (1795478400LL * SEC)

/* ---- the projection (supply.h) ---- */

struct proj_case {
    const char *what;
    double level, rate_h; /* units, units per hour */
    int64_t eta[3];       /* hours after t0; 0 ends */
    double qty[3];
    int64_t margin_h;
    double want_out_h, want_after_h, want_late_h, want_late_after_h; /* -1: NEVER */
    int want_risk;
};

static int64_t hours(double h)
{
    return h < 0 ? NEVER : T0 + (int64_t)(h * (double)H);
}

/* Equal event times, up to 1 us of floating-point rounding. */
static bool near(int64_t a, int64_t b)
{
    if (a == NEVER || b == NEVER) {
        return a == b;
    }
    return llabs(a - b) < 1000;
}

static void test_projection_table(void **state)
{
    (void)state;
    static const struct proj_case cases[] = {
        /* 100 at 10/h: 10 h of cover; the truck at 8 h lifts 20 left to 70: out at 15 h. */
        {"covered", 100, 10, {8}, {50}, 2, 15, -1, 15, -1, 0},
        /* The same truck at 11 h: out at 10 h while it is still due. */
        {"too late", 100, 10, {11}, {50}, 2, 10, 11, 10, 13, 2},
        /* At 9 h it is on time (10 left), 2 h late (11 h) it is not. */
        {"inside margin", 100, 10, {9}, {50}, 2, 15, -1, 10, 11, 1},
        /* Overdue (eta 1 h ago): expected now, 40 + 60 = 100 at 10/h. */
        {"overdue", 40, 10, {-1}, {60}, 1, 10, -1, 10, -1, 0},
        /* No consumption: never out, even with nothing inbound. */
        {"no use", 5, 0, {0}, {0}, 2, -1, -1, -1, -1, 0},
        /* Empty now, truck in 3 h: out at t0, ended at 3 h. */
        {"empty", 0, 10, {3}, {100}, 2, 0, 3, 0, 5, 2},
        /* Two trucks, the second too late: 50 lasts 5 h, +50 at 4 h -> 60 at 4 h -> out at
         * 10 h; the truck at 12 h comes too late. 2 h late, the first (6 h) already does. */
        {"second truck", 50, 10, {4, 12}, {50, 100}, 2, 10, 12, 5, 6, 2},
        /* Beyond the 7-day horizon: 10000 at 10/h is 1000 h. */
        {"horizon", 10000, 10, {0}, {0}, 2, -1, -1, -1, -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct proj_case *k = &cases[i];
        struct mr_supply_shipment s[3];
        size_t n = 0;
        for (; n < 3 && k->eta[n] != 0; n++) {
            s[n] = (struct mr_supply_shipment){.eta = hours((double)k->eta[n]), .qty = k->qty[n]};
            if (k->eta[n] < 0) {
                s[n].eta = T0 + k->eta[n] * H;
            }
        }
        struct mr_supply_projection p;
        mr_supply_project(k->level, k->rate_h / 3600.0, T0, s, n, k->margin_h * H, 7 * 24 * H, &p);
        if (!near(p.stockout, hours(k->want_out_h)) ||
            !near(p.stockout_arrival, hours(k->want_after_h)) ||
            !near(p.stockout_late, hours(k->want_late_h)) ||
            !near(p.late_arrival, hours(k->want_late_after_h))) {
            fail_msg("%s: out %.3f h after %.3f h late %.3f h after %.3f h", k->what,
                     (double)(p.stockout - T0) / (double)H,
                     (double)(p.stockout_arrival - T0) / (double)H,
                     (double)(p.stockout_late - T0) / (double)H,
                     (double)(p.late_arrival - T0) / (double)H);
        }
        assert_int_equal(mr_supply_risk(&p, T0, 0), k->want_risk);
    }
}

static void test_curve_and_rate(void **state)
{
    (void)state;
    struct mr_supply_shipment s[1] = {{.eta = T0 + 8 * H, .qty = 50}};
    double r = 10.0 / 3600.0;
    assert_float_equal(mr_supply_curve_at(100, r, T0, s, 1, T0 + 4 * H), 60, 1e-9);
    assert_float_equal(mr_supply_curve_at(100, r, T0, s, 1, T0 + 8 * H), 70, 1e-9);
    assert_float_equal(mr_supply_curve_at(100, r, T0, s, 1, T0 + 15 * H), 0, 1e-9);
    assert_float_equal(mr_supply_curve_at(100, r, T0, s, 1, T0 + 20 * H), 0, 1e-9);
    /* Uncovered: 100 at 10/h runs out at 10 h with nothing due after it. */
    struct mr_supply_projection p;
    mr_supply_project(100, r, T0, NULL, 0, 2 * H, 7 * 24 * H, &p);
    assert_int_equal(mr_supply_risk(&p, T0, 0), 0);
    assert_int_equal(mr_supply_risk(&p, T0, 12 * H), 1);
    assert_int_equal(mr_supply_risk(&p, T0, 9 * H), 0);
    /* EWMA: first observation sets it, then 1 - exp(-dt / window) of the way. */
    double x = mr_supply_rate_update(0, false, 10, H, H);
    assert_float_equal(x * 3600, 10, 1e-12);
    x = mr_supply_rate_update(x, true, 20, H, H);
    assert_float_equal(x * 3600, 10 + (1 - exp(-1.0)) * 10, 1e-9);
    x = mr_supply_rate_update(x, true, 5, 0, H); /* no interval: unchanged */
    assert_float_equal(x * 3600, 10 + (1 - exp(-1.0)) * 10, 1e-9);
}

/* ---- scenarios through the plugin ---- */

static void open_ok(struct op_harness *h, const char *yaml)
{
    int rc = op_harness_open(h, &mr_operator_supply, yaml);
    if (rc != 0) {
        fail_msg("%s: %s", yaml, h->err.msg);
    }
}

static uint64_t errors_of(struct op_harness *h)
{
    struct mr_plugin_counters c;
    assert_int_equal(mr_plugin_counters_register(h->metrics, h->plugin, h->host.name, &c), 0);
    return mr_counter_value(c.errors);
}

static void push(struct op_harness *h, struct mr_record r)
{
    assert_int_equal(op_harness_push(h, &r, 1), 0);
}

static void inv(struct op_harness *h, const char *mat, double t_h, double v)
{
    push(h, op_rec(h, mat, "inventory", hours(t_h), v));
}

/* A shipment status; eta_h < 0: no eta tag; qty < 0: no qty tag; id NULL: no id tag. */
static void ship(struct op_harness *h, const char *mat, double t_h, const char *status, double qty,
                 double eta_h, const char *id)
{
    static char texts[64][48]; /* tag values live until the push returns */
    struct mr_record r = op_rec(h, mat, "shipment", hours(t_h), 0);
    r.type = MR_VALUE_STRING;
    r.v.str = (struct mr_bytes){.ptr = status, .len = (uint32_t)strlen(status)};
    if (qty >= 0) {
        int n = snprintf(texts[0], sizeof(texts[0]), "%g", qty);
        r.tags[r.ntags++] =
            (struct mr_tag){.key = op_name(h, "qty"), .value = {texts[0], (uint32_t)n}};
    }
    if (eta_h >= 0) {
        size_t n = mr_time_format_rfc3339(hours(eta_h), texts[1], sizeof(texts[1]));
        r.tags[r.ntags++] =
            (struct mr_tag){.key = op_name(h, "eta"), .value = {texts[1], (uint32_t)n}};
    }
    if (id != NULL) {
        r.tags[r.ntags++] =
            (struct mr_tag){.key = op_name(h, "id"), .value = {id, (uint32_t)strlen(id)}};
    }
    push(h, r);
}

/* Value of the last captured (MAT-like asset, signal) record; NAN when none. */
static long last_of(struct op_harness *h, const char *asset, const char *signal)
{
    long at = -1;
    for (long i = op_find(h, 0, asset, signal); i >= 0;
         i = op_find(h, (size_t)i + 1, asset, signal)) {
        at = i;
    }
    return at;
}

static double last_value(struct op_harness *h, const char *asset, const char *signal)
{
    long i = last_of(h, asset, signal);
    if (i < 0) {
        return NAN;
    }
    const struct mr_record *r = &h->out[i];
    return r->type == MR_VALUE_BOOL ? (double)r->v.b : r->v.f64;
}

static size_t count_of(struct op_harness *h, const char *asset, const char *signal)
{
    size_t n = 0;
    for (long i = op_find(h, 0, asset, signal); i >= 0;
         i = op_find(h, (size_t)i + 1, asset, signal)) {
        n++;
    }
    return n;
}

static void want_tag(struct op_harness *h, long i, const char *key, const char *want)
{
    char buf[256];
    assert_true(i >= 0);
    const char *got = op_tag(h, (size_t)i, key, buf, sizeof(buf));
    if (got == NULL || strcmp(got, want) != 0) {
        fail_msg("tag %s: got '%s', want '%s'", key, got != NULL ? got : "(none)", want);
    }
}

/* The string value of captured record i, NUL-terminated. */
static const char *text_of(struct op_harness *h, long i)
{
    static char buf[512];
    assert_true(i >= 0);
    const struct mr_record *r = &h->out[i];
    assert_int_equal(r->type, MR_VALUE_STRING);
    size_t n = r->v.str.len < sizeof(buf) - 1 ? r->v.str.len : sizeof(buf) - 1;
    memcpy(buf, r->v.str.ptr, n);
    buf[n] = '\0';
    return buf;
}

#define CONF "rate_from: inventory\nrate_window: 1h\nsafety_margin: 2h\n"

/* The delayed shipment, step by step. Returns with the stock cleared by the arrival. With
 * cut >= 0 a checkpoint round trip happens before step `cut`. */
static void delayed_scenario(struct op_harness *h, int cut)
{
    int step = 0;
#define STEP()                                                                                     \
    do {                                                                                           \
        if (step++ == cut) {                                                                       \
            assert_int_equal(op_harness_roundtrip(h), 0);                                          \
        }                                                                                          \
        op_harness_clear(h);                                                                       \
    } while (0)
    STEP();
    inv(h, MAT, 0, 100);
    ship(h, MAT, 0, "inbound", 50, 6, "ASN-1");
    assert_float_equal(last_value(h, MAT, "stockout_in"), 7 * 24 * 3600.0, 1e-6); /* no rate */
    want_tag(h, last_of(h, MAT, "stockout_in"), "beyond_horizon", "true");

    /* 1 H: 90 left: 10/h. Out at 6 H + (90 - 50 + 50) / 10 = 15 H: 14 h from now. */
    STEP();
    inv(h, MAT, 1, 90);
    assert_float_equal(last_value(h, MAT, "consumption_rate"), 10, 1e-9);
    assert_float_equal(last_value(h, MAT, "stockout_in"), 14 * 3600.0, 1e-3);
    want_tag(h, last_of(h, MAT, "stockout_in"), "at", "2026-11-24T15:00:00.000000000Z");
    assert_float_equal(last_value(h, MAT, "days_of_cover"), 90.0 / 240.0, 1e-9);
    assert_float_equal(last_value(h, MAT, "next_arrival_in"), 5 * 3600.0, 1e-6);
    want_tag(h, last_of(h, MAT, "next_arrival_in"), "qty", "50");
    assert_float_equal(last_value(h, MAT, "stockout_risk"), 0, 0);
    assert_int_equal(count_of(h, MAT, "alert"), 0);

    /* 2 H: delayed to 9 H. 80 now; on time it comes with 10 left, 2 h late it does not:
     * warning, out at 10 H when late. */
    STEP();
    ship(h, MAT, 2, "delayed", -1, 9, "ASN-1");
    assert_float_equal(last_value(h, MAT, "level_estimate"), 80, 1e-9);
    assert_float_equal(last_value(h, MAT, "stockout_in"), 13 * 3600.0, 1e-3);
    long a = last_of(h, MAT, "alert");
    assert_int_equal(count_of(h, MAT, "alert"), 1);
    want_tag(h, a, "severity", "warning");
    want_tag(h, a, "detector", "supply");
    want_tag(h, a, "feature", "stockout_in");
    want_tag(h, a, "value", "28800");     /* 8 h to the late stockout */
    want_tag(h, a, "threshold", "32400"); /* eta 9 H + 2 h margin, 9 h from now */
    assert_non_null(strstr(text_of(h, a), "if a shipment is 2.0 h late"));
    want_tag(h, last_of(h, MAT, "stockout_risk"), "severity", "warning");

    /* 3 H: 70 on hand, warning persists: no second alert. */
    STEP();
    inv(h, MAT, 3, 70);
    assert_int_equal(count_of(h, MAT, "alert"), 0);
    assert_float_equal(last_value(h, MAT, "stockout_risk"), 1, 0);

    /* 4 H: delayed again to 11 H. 60 now, out at 10 H, 1 h before it: alarm. */
    STEP();
    ship(h, MAT, 4, "delayed", -1, 11, "ASN-1");
    assert_float_equal(last_value(h, MAT, "stockout_in"), 6 * 3600.0, 1e-3);
    a = last_of(h, MAT, "alert");
    assert_int_equal(count_of(h, MAT, "alert"), 1);
    want_tag(h, a, "severity", "alarm");
    want_tag(h, a, "value", "21600");
    want_tag(h, a, "threshold", "32400");                /* 11 H + 2 h - 4 H */
    want_tag(h, a, "window_end", "1795514400000000000"); /* 10 H */

    /* 5 H: it arrives early after all (50): 50 + 70 at 3 H - 20 = 100 now, out at 15 H,
     * nothing inbound: no risk. The inventory reading agrees. */
    STEP();
    ship(h, MAT, 5, "arrived", 50, -1, "ASN-1");
    assert_float_equal(last_value(h, MAT, "level_estimate"), 100, 1e-9);
    assert_float_equal(last_value(h, MAT, "stockout_risk"), 0, 0);
    assert_int_equal(last_of(h, MAT, "next_arrival_in"), -1);
    inv(h, MAT, 5, 100);
    assert_float_equal(last_value(h, MAT, "consumption_rate"), 10, 1e-9);
    assert_float_equal(last_value(h, MAT, "stockout_in"), 10 * 3600.0, 1e-3);
    assert_int_equal(count_of(h, MAT, "alert"), 0);
#undef STEP
}

static void test_delayed_shipment(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, CONF);
    delayed_scenario(&h, -1);
    /* Input records pass through: 2 inventory + 1 shipment at the end. */
    assert_int_equal(count_of(&h, MAT, "inventory"), 1);
    assert_int_equal(errors_of(&h), 0);
    op_harness_close(&h);
}

static void test_roundtrip(void **state)
{
    (void)state;
    for (int cut = 1; cut <= 5; cut++) {
        struct op_harness h;
        open_ok(&h, CONF);
        delayed_scenario(&h, cut);
        op_harness_close(&h);
    }
}

/* No ids: statuses find the earliest shipment of the same qty. */
static void test_cancelled_shipment(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, CONF);
    inv(&h, MAT, 0, 100);
    ship(&h, MAT, 0, "inbound", 100, 5, NULL);
    ship(&h, MAT, 0, "inbound", 100, 12, NULL);
    inv(&h, MAT, 1, 90);
    /* 90 -> 50 at 5 H +100 -> 80 at 12 H +100 -> out at 30 H. */
    assert_float_equal(last_value(&h, MAT, "stockout_in"), 29 * 3600.0, 1e-3);
    assert_int_equal(count_of(&h, MAT, "alert"), 0);
    op_harness_clear(&h);
    ship(&h, MAT, 2, "cancelled", 100, -1, NULL);
    /* 80 at 2 H lasts to 10 H, the 12 H truck comes too late. */
    assert_float_equal(last_value(&h, MAT, "stockout_in"), 8 * 3600.0, 1e-3);
    assert_float_equal(last_value(&h, MAT, "next_arrival_in"), 10 * 3600.0, 1e-6);
    long a = last_of(&h, MAT, "alert");
    want_tag(&h, a, "severity", "alarm");
    want_tag(&h, a, "threshold", "43200"); /* 12 H + 2 h - 2 H */
    /* A cancel for a shipment nobody announced is an error, not a crash. */
    ship(&h, MAT, 2, "cancelled", 7, -1, NULL);
    assert_int_equal(errors_of(&h), 1);
    op_harness_close(&h);
}

static struct mr_record bom(struct op_harness *h, const char *mat, const char *consumer, double q)
{
    struct mr_record r = op_rec(h, mat, "bom", hours(0), q);
    r.tags[r.ntags++] = (struct mr_tag){.key = op_name(h, "consumer"),
                                        .value = {consumer, (uint32_t)strlen(consumer)}};
    return r;
}

static struct mr_record count(struct op_harness *h, double t_h, int64_t n)
{
    struct mr_record r = op_rec(h, PAINT, "good_count", hours(t_h), 0);
    r.type = MR_VALUE_I64;
    r.v.i64 = n;
    return r;
}

/* Good parts x bom qty, a counter reset, two materials on one machine. */
static void test_counters(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "rate_window: 1h\ncurve_points: 4\nhorizon: 4d\n");
    push(&h, bom(&h, MAT, PAINT, 2));
    push(&h, bom(&h, MAT2, PAINT, 4));
    inv(&h, MAT, 0, 1000);
    inv(&h, MAT2, 0, 1000);
    push(&h, count(&h, 0, 100));
    push(&h, count(&h, 1, 110)); /* first delta starts the interval */
    push(&h, count(&h, 2, 120)); /* 10 parts/h: 20/h steel, 40/h screws */
    op_harness_clear(&h);
    inv(&h, MAT, 2, 960);
    assert_float_equal(last_value(&h, MAT, "consumption_rate"), 20, 1e-9);
    want_tag(&h, last_of(&h, MAT, "consumption_rate"), "source", "counters");
    assert_float_equal(last_value(&h, MAT, "days_of_cover"), 2.0, 1e-9);
    assert_float_equal(last_value(&h, MAT, "stockout_in"), 48 * 3600.0, 1e-3);
    /* Curve over 4 d in 4 points: 960 - 480 = 480, then 0, 0, 0. */
    assert_int_equal(count_of(&h, MAT, "projected_inventory"), 4);
    long c = op_find(&h, 0, MAT, "projected_inventory");
    assert_float_equal(h.out[c].v.f64, 480, 1e-6);
    want_tag(&h, c, "at", "2026-11-25T02:00:00.000000000Z");
    /* Counter reset to 5 at 3 H: 5 parts in the hour, 10 steel: rate moves toward 10. */
    push(&h, count(&h, 3, 5));
    op_harness_clear(&h);
    inv(&h, MAT2, 3, 880);
    double want = (40 + (1 - exp(-1.0)) * (20 - 40));
    assert_float_equal(last_value(&h, MAT2, "consumption_rate"), want, 1e-9);
    /* Counted use lowered the level between readings: 1000 - 40 - 40 - 20 = 900, then the
     * reading (880) is the truth. */
    assert_float_equal(last_value(&h, MAT2, "level_estimate"), 880, 1e-9);
    assert_int_equal(errors_of(&h), 0);
    op_harness_close(&h);
}

static void test_consumption_events(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "rate_from: events\nrate_window: 1h\nuncovered_within: 1d\n");
    inv(&h, MAT, 0, 100);
    push(&h, op_rec(&h, MAT, "consumption", hours(0), 0));
    push(&h, op_rec(&h, MAT, "consumption", hours(1), 25));
    /* 75 left at 25/h: out in 3 h with nothing inbound, inside uncovered_within. */
    assert_float_equal(last_value(&h, MAT, "level_estimate"), 75, 1e-9);
    assert_float_equal(last_value(&h, MAT, "stockout_in"), 3 * 3600.0, 1e-3);
    long a = last_of(&h, MAT, "alert");
    want_tag(&h, a, "severity", "warning");
    assert_non_null(strstr(text_of(&h, a), "with no shipment due before then"));
    /* An inventory drop does not feed the rate in events mode, but an hour without events
     * is an hour of no use: the rate decays by exp(-1 h / 1 h). */
    inv(&h, MAT, 2, 10);
    assert_float_equal(last_value(&h, MAT, "consumption_rate"), 25 * exp(-1.0), 1e-9);
    assert_float_equal(last_value(&h, MAT, "level_estimate"), 10, 1e-9);
    op_harness_close(&h);
}

/* Bad data: counted, named, never fatal; what is usable still counts. */
static void test_bad_input(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, CONF);
    inv(&h, MAT, 0, 100);
    struct mr_record r = op_rec(&h, MAT, "inventory", hours(1), 0);
    r.type = MR_VALUE_STRING;
    r.v.str = (struct mr_bytes){"lots", 4};
    push(&h, r);                                           /* 1: not a number */
    push(&h, op_rec(&h, MAT, "inventory", hours(1), NAN)); /* 2 */
    ship(&h, MAT, 1, "inbound", 50, -1, "X");              /* 3: no eta */
    ship(&h, MAT, 1, "lost_at_sea", 50, 5, "X");           /* 4: unknown status */
    ship(&h, MAT, 1, "inbound", -1, 5, "X");               /* 5: no qty */
    struct mr_record e = op_rec(&h, MAT, "shipment", hours(1), 0);
    e.type = MR_VALUE_STRING;
    e.v.str = (struct mr_bytes){"inbound", 7};
    e.tags[e.ntags++] = (struct mr_tag){.key = op_name(&h, "eta"), .value = {"tomorrow", 8}};
    push(&h, e);                                            /* 6: eta not a time */
    push(&h, op_rec(&h, MAT, "consumption", hours(1), -3)); /* 7: negative */
    assert_int_equal(errors_of(&h), 7);
    r = op_rec(&h, MAT, "inventory", hours(1), 90);
    r.quality = MR_QUALITY_BAD; /* ignored quietly, passes on */
    push(&h, r);
    inv(&h, MAT, 2, 80);
    assert_float_equal(last_value(&h, MAT, "consumption_rate"), 10, 1e-9);
    assert_int_equal(errors_of(&h), 7);
    /* A late reading (older than the level it would replace) changes nothing. */
    op_harness_clear(&h);
    inv(&h, MAT, 1.5, 500);
    assert_int_equal(last_of(&h, MAT, "level_estimate"), -1);
    inv(&h, MAT, 3, 70);
    assert_float_equal(last_value(&h, MAT, "consumption_rate"), 10, 1e-9);
    assert_float_equal(last_value(&h, MAT, "level_estimate"), 70, 1e-9);
    assert_int_equal(errors_of(&h), 7);
    /* Unrelated records pass through untouched. */
    op_harness_clear(&h);
    push(&h, op_rec(&h, PAINT, "temperature", hours(2), 40));
    assert_int_equal(h.nout, 1);
    op_harness_close(&h);
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *want;
    } cases[] = {
        {"safety_margin: 8d\n", "safety_margin"},        {"rate_from: forecast\n", "rate_from"},
        {"inventory_signal: ''\n", "inventory_signal"},  {"curve_points: 100\n", "curve_points"},
        {"uncovered_within: 30d\n", "uncovered_within"}, {"safty_margin: 1h\n", "safty_margin"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct op_harness h;
        int rc = op_harness_open(&h, &mr_operator_supply, cases[i].yaml);
        assert_int_not_equal(rc, 0);
        if (strstr(h.err.msg, cases[i].want) == NULL) {
            fail_msg("%s: error '%s' does not name %s", cases[i].yaml, h.err.msg, cases[i].want);
        }
        op_harness_close(&h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_projection_table),   cmocka_unit_test(test_curve_and_rate),
        cmocka_unit_test(test_delayed_shipment),   cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_cancelled_shipment), cmocka_unit_test(test_counters),
        cmocka_unit_test(test_consumption_events), cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
