/* Edge operators with per-signal state: deadband, report_by_exception, downsample. Exact
 * outputs for tables of inputs and watermarks, stale marking, late records, key caps, and
 * checkpoint round trips that must not change what comes out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "millrace/state.h"
#include "support/op_harness.h"

extern const struct mr_plugin mr_operator_deadband;
extern const struct mr_plugin mr_operator_report_by_exception;
extern const struct mr_plugin mr_operator_downsample;

#define SEC   1000000000LL
#define PRESS "plant1/line2/press3"
#define OVEN  "plant1/line4/oven1"
#define END   -12345.0 /* ends a value list */

static void open_ok(struct op_harness *h, const struct mr_plugin *p, const char *yaml)
{
    int rc = op_harness_open(h, p, yaml);
    if (rc != 0) {
        fail_msg("%s: %s", p->name, h->err.msg);
    }
}

static uint64_t errors_of(struct op_harness *h)
{
    struct mr_plugin_counters c;
    assert_int_equal(mr_plugin_counters_register(h->metrics, h->plugin, h->host.name, &c), 0);
    return mr_counter_value(c.errors);
}

static struct mr_record text_rec(struct op_harness *h, const char *asset, const char *signal,
                                 int64_t t, const char *s)
{
    struct mr_record r = op_rec(h, asset, signal, t, 0);
    r.type = MR_VALUE_STRING;
    r.v.str = (struct mr_bytes){.ptr = s, .len = (uint32_t)strlen(s)};
    return r;
}

static struct mr_record bool_rec(struct op_harness *h, const char *asset, const char *signal,
                                 int64_t t, bool b)
{
    struct mr_record r = op_rec(h, asset, signal, t, 0);
    r.type = MR_VALUE_BOOL;
    r.v.b = b;
    return r;
}

static struct mr_record i64_rec(struct op_harness *h, const char *asset, const char *signal,
                                int64_t t, int64_t v)
{
    struct mr_record r = op_rec(h, asset, signal, t, 0);
    r.type = MR_VALUE_I64;
    r.v.i64 = v;
    return r;
}

static bool same_f64(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

/* ---- deadband and report_by_exception: number tables ---- */

struct band_case {
    const char *yaml;
    double in[12]; /* at t = 0, 5, 10, ... s; END ends */
    int bad_at;    /* index whose quality is bad, or -1 */
    int want[12];  /* indexes of `in` forwarded; -1 ends */
};

static const struct band_case band_cases[] = {
    {"absolute: 0.5", {10, 10.2, 10.6, 10.4, 11.2, 11.2, END}, -1, {0, 2, 4, -1}},
    {"percent: 10", {100, 105, 111, 120, 130, END}, -1, {0, 2, 4, -1}},
    {"absolute: 1\npercent: 10", {0, 0.5, 2, 2.1, 100, 105, 111, END}, -1, {0, 2, 4, 6, -1}},
    {"percent: 10", {0, 0.001, 0, END}, -1, {0, 1, 2, -1}}, /* 10 % of 0 is no band */
    {"absolute: 5\nheartbeat: 10s", {1, 1, 1, 1, 1, 1, END}, -1, {0, 2, 4, -1}},
    {"absolute: 1",
     {NAN, NAN, 1, 1, INFINITY, INFINITY, -INFINITY, NAN, END},
     -1,
     {0, 2, 4, 6, 7, -1}},
    {"absolute: 1", {1, 1, 1, END}, 1, {0, 1, 2, -1}}, /* quality change, and back */
    {"heartbeat: 0s", {1, 1, 1.0000001, 1.0000001, END}, -1, {0, 2, -1}},
    {"heartbeat: 10s", {3, 3, 3, 3, 4, END}, -1, {0, 2, 4, -1}},
};

static void test_band_tables(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(band_cases) / sizeof(band_cases[0]); k++) {
        const struct band_case *c = &band_cases[k];
        /* The first seven cases are deadband settings, the last two report_by_exception. */
        const struct mr_plugin *p =
            k < 7 ? &mr_operator_deadband : &mr_operator_report_by_exception;
        struct op_harness h;
        open_ok(&h, p, c->yaml);
        struct mr_record recs[12];
        size_t n = 0;
        for (; c->in[n] != END; n++) {
            recs[n] = op_rec(&h, PRESS, "temp", (int64_t)n * 5 * SEC, c->in[n]);
            recs[n].quality = (int)n == c->bad_at ? MR_QUALITY_BAD : MR_QUALITY_GOOD;
        }
        assert_int_equal(op_harness_push(&h, recs, n), 0);
        size_t nwant = 0;
        for (; c->want[nwant] >= 0; nwant++) {
            int i = c->want[nwant];
            if (nwant >= h.nout || h.out[nwant].time_ns != recs[i].time_ns ||
                !same_f64(h.out[nwant].v.f64, c->in[i])) {
                fail_msg("case %zu (%s): forwarded record %zu is not input %d", k, c->yaml, nwant,
                         i);
            }
        }
        if (h.nout != nwant) {
            fail_msg("case %zu (%s): %zu forwarded, want %zu", k, c->yaml, h.nout, nwant);
        }
        op_harness_close(&h);
    }
}

/* Keys are (asset, signal); other value types are forwarded on change; blocks pass. */
static void test_rbe_types_and_keys(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, &mr_operator_report_by_exception, "{}");
    static const char long1[] = "a text value longer than the thirty-two bytes kept inline, "
                                "so it is kept in a buffer of the key";
    static const char long2[] = "a text value longer than the thirty-two bytes kept inline, "
                                "so it is kept in a buffer of the kez";
    float samples[3] = {1, 2, 3};
    struct mr_record recs[] = {
        text_rec(&h, PRESS, "state", 0, "RUNNING"),            /* 0 fwd */
        text_rec(&h, PRESS, "state", 1, "RUNNING"),            /* 1 */
        text_rec(&h, OVEN, "state", 2, "RUNNING"),             /* 2 fwd: other asset */
        text_rec(&h, PRESS, "state", 3, "IDLE"),               /* 3 fwd */
        text_rec(&h, PRESS, "state", 4, long1),                /* 4 fwd */
        text_rec(&h, PRESS, "state", 5, long1),                /* 5 */
        text_rec(&h, PRESS, "state", 6, long2),                /* 6 fwd: last byte differs */
        text_rec(&h, PRESS, "state", 7, ""),                   /* 7 fwd */
        text_rec(&h, PRESS, "state", 8, ""),                   /* 8 */
        bool_rec(&h, PRESS, "running", 9, true),               /* 9 fwd */
        bool_rec(&h, PRESS, "running", 10, true),              /* 10 */
        bool_rec(&h, PRESS, "running", 11, false),             /* 11 fwd */
        i64_rec(&h, PRESS, "count", 12, 1LL << 60),            /* 12 fwd */
        i64_rec(&h, PRESS, "count", 13, (1LL << 60) + 1),      /* 13 fwd: exact, not as doubles */
        i64_rec(&h, PRESS, "count", 14, (1LL << 60) + 1),      /* 14 */
        op_rec(&h, PRESS, "count", 15, 1152921504606846977.0), /* 15 fwd: type changed */
        op_rec(&h, PRESS, "vib", 16, 0),                       /* 16 fwd: a block passes */
        op_rec(&h, PRESS, "vib", 17, 0),                       /* 17 fwd */
    };
    recs[16].type = MR_VALUE_SAMPLES;
    recs[16].v.samples = (struct mr_samples){.data = samples, .n = 3, .rate_hz = 1000};
    recs[17] = recs[16];
    recs[17].time_ns = 17;
    static const int want[] = {0, 2, 3, 4, 6, 7, 9, 11, 12, 13, 15, 16, 17};
    size_t nwant = sizeof(want) / sizeof(want[0]);
    assert_int_equal(op_harness_push(&h, recs, sizeof(recs) / sizeof(recs[0])), 0);
    assert_int_equal(h.nout, nwant);
    for (size_t i = 0; i < nwant; i++) {
        assert_int_equal(h.out[i].time_ns, want[i]);
    }
    assert_int_equal(h.out[4].v.str.len, strlen(long2));
    assert_memory_equal(h.out[4].v.str.ptr, long2, strlen(long2));
    assert_true(h.out[12].v.samples.n == 3 && h.out[12].v.samples.data[2] == 3);
    op_harness_close(&h);
}

/* stale_after: one bad-quality record per silent key, at last time + stale_after, driven by
 * that asset's watermark only; again only after new data went silent again. */
static void test_stale_marking(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, &mr_operator_deadband, "absolute: 1\nstale_after: 10s\n");
    struct mr_record recs[] = {
        op_rec(&h, PRESS, "a", 0, 5),
        op_rec(&h, PRESS, "b", 0, 7),
        op_rec(&h, PRESS, "a", 3 * SEC, 5.5), /* within the band: seen, not forwarded */
        text_rec(&h, OVEN, "state", 1 * SEC, "HEATING"),
    };
    assert_int_equal(op_harness_push(&h, recs, 4), 0);
    assert_int_equal(h.nout, 3);
    op_harness_clear(&h);
    assert_int_equal(op_harness_advance(&h, PRESS, 9 * SEC), 0);
    assert_int_equal(op_harness_advance(&h, OVEN, 5 * SEC), 0);
    assert_int_equal(h.nout, 0);
    assert_int_equal(op_harness_advance(&h, PRESS, 10 * SEC), 0);
    assert_int_equal(h.nout, 1);
    char buf[16];
    const struct mr_record *r = &h.out[0];
    assert_string_equal(op_str(&h, r->signal), "b");
    assert_string_equal(op_str(&h, r->asset), PRESS);
    assert_int_equal(r->time_ns, 10 * SEC);
    assert_true(r->type == MR_VALUE_F64 && r->v.f64 == 7);
    assert_int_equal(r->quality, MR_QUALITY_BAD);
    assert_int_equal(r->ntags, 1);
    assert_string_equal(op_tag(&h, 0, "stale", buf, sizeof(buf)), "true");
    assert_int_equal(op_harness_advance(&h, PRESS, 13 * SEC), 0);
    assert_int_equal(h.nout, 2);
    assert_string_equal(op_str(&h, h.out[1].signal), "a");
    assert_int_equal(h.out[1].time_ns, 13 * SEC);
    assert_true(h.out[1].v.f64 == 5); /* the last forwarded value */
    assert_int_equal(op_harness_advance(&h, PRESS, 100 * SEC), 0);
    assert_int_equal(op_harness_advance(&h, "plant9/unknown", 100 * SEC), 0);
    assert_int_equal(h.nout, 2); /* once */
    assert_int_equal(op_harness_advance(&h, OVEN, 11 * SEC), 0);
    assert_int_equal(h.nout, 3);
    assert_int_equal(h.out[2].type, MR_VALUE_STRING);
    assert_memory_equal(h.out[2].v.str.ptr, "HEATING", 7);
    op_harness_clear(&h);
    /* New data after a stale record is forwarded even when unchanged, then can go stale again. */
    struct mr_record back = op_rec(&h, PRESS, "a", 50 * SEC, 5);
    assert_int_equal(op_harness_push(&h, &back, 1), 0);
    assert_int_equal(h.nout, 1);
    assert_int_equal(h.out[0].quality, MR_QUALITY_GOOD);
    assert_int_equal(op_harness_advance(&h, PRESS, 59 * SEC), 0);
    assert_int_equal(h.nout, 1);
    assert_int_equal(op_harness_advance(&h, PRESS, 60 * SEC), 0);
    assert_int_equal(h.nout, 2);
    assert_int_equal(h.out[1].time_ns, 60 * SEC);
    op_harness_close(&h);
}

static void test_key_cap(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, &mr_operator_deadband, "absolute: 1\nmax_keys: 2\n");
    struct mr_record recs[] = {
        op_rec(&h, PRESS, "a", 0, 1), op_rec(&h, PRESS, "b", 0, 1), op_rec(&h, PRESS, "c", 0, 1),
        op_rec(&h, PRESS, "a", 1, 1), op_rec(&h, PRESS, "b", 1, 1), op_rec(&h, PRESS, "c", 1, 1),
    };
    assert_int_equal(op_harness_push(&h, recs, 6), 0);
    assert_int_equal(h.nout, 4); /* a, b, and c twice: unfiltered past the cap */
    assert_int_equal(errors_of(&h), 2);
    op_harness_close(&h);
}

/* signals: only the listed signals are filtered; a counter passes every increment. */
static void test_signals_list(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, &mr_operator_deadband, "percent: 10\nsignals: [temperature]\n");
    struct mr_record recs[] = {
        op_rec(&h, PRESS, "temperature", 0, 50), op_rec(&h, PRESS, "good_count", 0, 100),
        op_rec(&h, PRESS, "temperature", 1, 51), op_rec(&h, PRESS, "good_count", 1, 101),
        op_rec(&h, PRESS, "temperature", 2, 60), op_rec(&h, PRESS, "good_count", 2, 102),
    };
    assert_int_equal(op_harness_push(&h, recs, 6), 0);
    assert_int_equal(h.nout, 5); /* temperature 51 is within 10 % of 50: the only one dropped */
    assert_int_equal(op_find(&h, 0, PRESS, "temperature"), 0);
    long t = op_find(&h, 1, PRESS, "temperature");
    assert_true(t > 0 && h.out[t].v.f64 == 60);
    op_harness_close(&h);
}

/* ---- downsample ---- */

static void test_downsample_every(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, &mr_operator_downsample, "every: 3\n");
    struct mr_record recs[20];
    size_t n = 0;
    for (int i = 0; i < 10; i++) {
        recs[n++] = op_rec(&h, PRESS, "a", i, i);
        recs[n++] = op_rec(&h, PRESS, i % 2 == 0 ? "b" : "c", i, 100 + i);
    }
    assert_int_equal(op_harness_push(&h, recs, n), 0);
    /* a: 0 3 6 9; b (even i): 0 6; c (odd i): 1 7 */
    static const double want[] = {0, 100, 101, 3, 6, 106, 107, 9};
    assert_int_equal(h.nout, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < h.nout; i++) {
        assert_true(h.out[i].v.f64 == want[i]);
    }
    op_harness_close(&h);
}

struct agg_case {
    const char *aggregate;
    uint8_t type;
    double f64;
    int64_t i64;
};

/* One bucket of 4, 9, -2, 1 (and i64 7, 3), closed by the watermark at its end. */
static void test_downsample_aggregates(void **state)
{
    (void)state;
    static const struct agg_case cases[] = {
        {"mean", MR_VALUE_F64, 3, 0},  {"min", MR_VALUE_F64, -2, 0}, {"max", MR_VALUE_F64, 9, 0},
        {"first", MR_VALUE_F64, 4, 0}, {"last", MR_VALUE_F64, 1, 0}, {"sum", MR_VALUE_F64, 12, 0},
        {"count", MR_VALUE_I64, 0, 4},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char yaml[64];
        snprintf(yaml, sizeof(yaml), "interval: 10s\naggregate: %s\n", cases[k].aggregate);
        struct op_harness h;
        open_ok(&h, &mr_operator_downsample, yaml);
        struct mr_record recs[] = {
            op_rec(&h, PRESS, "x", 1 * SEC, 4),  op_rec(&h, PRESS, "x", 2 * SEC, 9),
            op_rec(&h, PRESS, "x", 3 * SEC, -2), op_rec(&h, PRESS, "x", 9 * SEC, 1),
            i64_rec(&h, PRESS, "n", 4 * SEC, 7), i64_rec(&h, PRESS, "n", 5 * SEC, 3),
        };
        recs[2].quality = MR_QUALITY_UNCERTAIN;
        assert_int_equal(op_harness_push(&h, recs, 6), 0);
        assert_int_equal(op_harness_advance(&h, PRESS, 10 * SEC - 1), 0);
        assert_int_equal(h.nout, 0);
        assert_int_equal(op_harness_advance(&h, PRESS, 10 * SEC), 0);
        assert_int_equal(h.nout, 2);
        const struct mr_record *r = &h.out[0];
        assert_int_equal(r->time_ns, 10 * SEC);
        assert_int_equal(r->quality, MR_QUALITY_UNCERTAIN);
        assert_int_equal(r->ntags, 0);
        assert_int_equal(r->type, cases[k].type);
        if (r->type == MR_VALUE_F64) {
            assert_true(r->v.f64 == cases[k].f64);
        } else {
            assert_int_equal(r->v.i64, cases[k].i64);
        }
        /* The i64 signal: first/last keep the type, count is 2, the others are doubles. */
        const struct mr_record *q = &h.out[1];
        assert_string_equal(op_str(&h, q->signal), "n");
        bool keeps =
            strcmp(cases[k].aggregate, "first") == 0 || strcmp(cases[k].aggregate, "last") == 0;
        if (keeps) {
            assert_int_equal(q->type, MR_VALUE_I64);
            assert_int_equal(q->v.i64, strcmp(cases[k].aggregate, "first") == 0 ? 7 : 3);
        } else if (q->type == MR_VALUE_I64) {
            assert_int_equal(q->v.i64, 2);
        } else {
            static const double want_n[] = {5, 3, 7, 0, 0, 10};
            assert_true(q->v.f64 == want_n[k]);
        }
        op_harness_close(&h);
    }
}

/* Buckets close when a later bucket's record arrives, or by the asset's own watermark; late
 * records are dropped and counted; other types pass; times before 1970 floor correctly. */
static void test_downsample_buckets(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, &mr_operator_downsample, "interval: 10s\n");
    float samples[2] = {1, 2};
    struct mr_record recs[] = {
        op_rec(&h, PRESS, "a", 1 * SEC, 1),
        op_rec(&h, PRESS, "a", 5 * SEC, 3),
        op_rec(&h, OVEN, "a", 5 * SEC, 100),
        text_rec(&h, PRESS, "state", 6 * SEC, "RUN"), /* passes at once */
        op_rec(&h, PRESS, "a", 12 * SEC, 10),         /* closes [0, 10) of PRESS a */
        op_rec(&h, PRESS, "a", 15 * SEC, 20),
        op_rec(&h, PRESS, "a", 31 * SEC, 7), /* closes [10, 20) */
        op_rec(&h, PRESS, "a", 25 * SEC, 9), /* late: before the open bucket */
        op_rec(&h, PRESS, "b", -1 * SEC, 4), /* bucket [-10 s, 0) */
        op_rec(&h, PRESS, "vib", 0, 0),
    };
    recs[9].type = MR_VALUE_SAMPLES;
    recs[9].v.samples = (struct mr_samples){.data = samples, .n = 2, .rate_hz = 100};
    assert_int_equal(op_harness_push(&h, recs, 10), 0);
    assert_int_equal(h.nout, 4);
    assert_int_equal(h.out[0].type, MR_VALUE_STRING);
    assert_true(h.out[1].time_ns == 10 * SEC && h.out[1].v.f64 == 2);
    assert_true(h.out[2].time_ns == 20 * SEC && h.out[2].v.f64 == 15);
    assert_int_equal(h.out[3].type, MR_VALUE_SAMPLES);
    assert_int_equal(errors_of(&h), 1);
    op_harness_clear(&h);
    assert_int_equal(op_harness_advance(&h, OVEN, 100 * SEC), 0);
    assert_int_equal(h.nout, 1); /* only the oven's bucket: PRESS has its own watermark */
    assert_true(h.out[0].time_ns == 10 * SEC && h.out[0].v.f64 == 100);
    assert_string_equal(op_str(&h, h.out[0].asset), OVEN);
    assert_int_equal(op_harness_advance(&h, PRESS, 0), 0);
    assert_int_equal(h.nout, 2);
    assert_true(h.out[1].time_ns == 0 && h.out[1].v.f64 == 4);
    assert_int_equal(op_harness_advance(&h, PRESS, 40 * SEC), 0);
    assert_int_equal(h.nout, 3);
    assert_true(h.out[2].time_ns == 40 * SEC && h.out[2].v.f64 == 7);
    /* A record for a bucket the watermark already closed is late too. */
    struct mr_record late = op_rec(&h, PRESS, "a", 39 * SEC, 1);
    assert_int_equal(op_harness_push(&h, &late, 1), 0);
    assert_int_equal(h.nout, 3);
    assert_int_equal(errors_of(&h), 2);
    op_harness_close(&h);
}

/* ---- checkpoint round trips ---- */

static bool record_equal(struct op_harness *ha, const struct mr_record *a, struct op_harness *hb,
                         const struct mr_record *b)
{
    if (a->time_ns != b->time_ns || a->type != b->type || a->quality != b->quality ||
        a->ntags != b->ntags || strcmp(op_str(ha, a->asset), op_str(hb, b->asset)) != 0 ||
        strcmp(op_str(ha, a->signal), op_str(hb, b->signal)) != 0) {
        return false;
    }
    for (uint16_t t = 0; t < a->ntags; t++) {
        if (strcmp(op_str(ha, a->tags[t].key), op_str(hb, b->tags[t].key)) != 0 ||
            a->tags[t].value.len != b->tags[t].value.len ||
            memcmp(a->tags[t].value.ptr, b->tags[t].value.ptr, a->tags[t].value.len) != 0) {
            return false;
        }
    }
    switch (a->type) {
    case MR_VALUE_F64:
        return same_f64(a->v.f64, b->v.f64);
    case MR_VALUE_I64:
        return a->v.i64 == b->v.i64;
    case MR_VALUE_BOOL:
        return a->v.b == b->v.b;
    case MR_VALUE_STRING:
        return a->v.str.len == b->v.str.len &&
               memcmp(a->v.str.ptr, b->v.str.ptr, a->v.str.len) == 0;
    default:
        return a->v.samples.n == b->v.samples.n;
    }
}

static const char *const texts[] = {"IDLE", "RUNNING",
                                    "ALARM: hydraulic pressure low on the main cylinder",
                                    "ALARM: hydraulic pressure low on the main cylinder!"};

/* Step i of a deterministic stream: records of 3 assets x 3 signals of mixed types, with
 * per-asset watermarks every few steps. */
static void stream_step(struct op_harness *h, uint32_t *x, int i)
{
    static const char *const assets[] = {PRESS, OVEN, "plant2/line1/robot7"};
    *x = *x * 1103515245u + 12345u;
    const char *asset = assets[(*x >> 8) % 3];
    int64_t t = (int64_t)i * SEC / 2;
    struct mr_record r;
    switch ((*x >> 12) % 4) {
    case 0:
        r = op_rec(h, asset, "temp", t, (double)((*x >> 16) % 8) * 0.75);
        break;
    case 1:
        r = text_rec(h, asset, "state", t, texts[(*x >> 16) % 4]);
        break;
    case 2:
        r = i64_rec(h, asset, "count", t, (int64_t)((*x >> 16) % 3));
        break;
    default:
        r = bool_rec(h, asset, "door", t, (*x >> 16) % 2 == 0);
        break;
    }
    r.quality = (*x >> 20) % 11 == 0 ? MR_QUALITY_UNCERTAIN : MR_QUALITY_GOOD;
    if ((*x >> 24) % 17 != 0) { /* now and then a source goes quiet */
        assert_int_equal(op_harness_push(h, &r, 1), 0);
    }
    if (i % 5 == 4) {
        for (int a = 0; a < 3; a++) {
            assert_int_equal(op_harness_advance(h, assets[a], t - (int64_t)a * SEC), 0);
        }
    }
}

static void roundtrip_case(const struct mr_plugin *p, const char *yaml)
{
    enum { STEPS = 600 };
    struct op_harness a;
    struct op_harness b;
    open_ok(&a, p, yaml);
    open_ok(&b, p, yaml);
    uint32_t xa = 7;
    uint32_t xb = 7;
    for (int i = 0; i < STEPS; i++) {
        stream_step(&a, &xa, i);
        stream_step(&b, &xb, i);
        if (i % 37 == 0) {
            int rc = op_harness_roundtrip(&b);
            if (rc != 0) {
                fail_msg("%s (%s): round trip failed: %s", p->name, yaml, b.err.msg);
            }
        }
    }
    assert_true(a.nout > 20);
    if (a.nout != b.nout) {
        fail_msg("%s (%s): %zu records uninterrupted, %zu with checkpoints", p->name, yaml, a.nout,
                 b.nout);
    }
    for (size_t i = 0; i < a.nout; i++) {
        if (!record_equal(&a, &a.out[i], &b, &b.out[i])) {
            fail_msg("%s (%s): record %zu differs after checkpoints", p->name, yaml, i);
        }
    }
    op_harness_close(&a);
    op_harness_close(&b);
}

static void test_roundtrips(void **state)
{
    (void)state;
    roundtrip_case(&mr_operator_deadband, "absolute: 1\nheartbeat: 20s\nstale_after: 8s\n");
    roundtrip_case(&mr_operator_deadband, "percent: 50\n");
    roundtrip_case(&mr_operator_report_by_exception, "stale_after: 5s\n");
    roundtrip_case(&mr_operator_report_by_exception, "heartbeat: 3s\n");
    roundtrip_case(&mr_operator_downsample, "every: 4\n");
    roundtrip_case(&mr_operator_downsample, "interval: 7s\naggregate: mean\n");
    roundtrip_case(&mr_operator_downsample, "interval: 3s\naggregate: last\n");
    roundtrip_case(&mr_operator_downsample, "interval: 10s\naggregate: count\n");
}

/* A checkpoint from an empty instance restores; a damaged one is refused with a message. */
static void test_restore_rejects_damage(void **state)
{
    (void)state;
    const struct mr_plugin *ps[] = {&mr_operator_deadband, &mr_operator_downsample};
    const char *yamls[] = {"absolute: 1\nstale_after: 1s\n", "interval: 1s\n"};
    for (size_t k = 0; k < 2; k++) {
        struct op_harness h;
        open_ok(&h, ps[k], yamls[k]);
        assert_int_equal(op_harness_roundtrip(&h), 0);
        struct mr_record r = op_rec(&h, PRESS, "a", 0, 1);
        assert_int_equal(op_harness_push(&h, &r, 1), 0);
        struct mr_state_writer w;
        mr_state_writer_init(&w, h.names, 0);
        assert_int_equal(ps[k]->op.snapshot(h.ctx, &w, &h.err), 0);
        for (size_t cut = 0; cut < w.len; cut += 5) {
            void *fresh = calloc(1, ps[k]->ctx_size);
            assert_int_equal(ps[k]->op.init(fresh, h.conf, &h.host, &h.err), 0);
            struct mr_state_reader rd;
            mr_state_reader_init(&rd, h.names, w.buf, cut);
            int rc = ps[k]->op.restore(fresh, &rd, &h.err);
            assert_int_equal(rc, MR_ECORRUPT);
            assert_non_null(strstr(h.err.msg, "checkpoint"));
            ps[k]->op.fini(fresh);
            free(fresh);
        }
        mr_state_writer_fini(&w);
        op_harness_close(&h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_band_tables),
        cmocka_unit_test(test_rbe_types_and_keys),
        cmocka_unit_test(test_stale_marking),
        cmocka_unit_test(test_key_cap),
        cmocka_unit_test(test_signals_list),
        cmocka_unit_test(test_downsample_every),
        cmocka_unit_test(test_downsample_aggregates),
        cmocka_unit_test(test_downsample_buckets),
        cmocka_unit_test(test_roundtrips),
        cmocka_unit_test(test_restore_rejects_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
