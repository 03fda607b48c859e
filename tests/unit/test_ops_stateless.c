/* Stateless operators: filter, scale, rename, route. Exact outputs for tables of inputs,
 * counters, configuration errors with their positions, emit failures, and a speed check of
 * filter (printed; the number for the report comes from the release build). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>

#include <cmocka.h>

#include "millrace/alloc.h"
#include "millrace/config.h"
#include "support/op_harness.h"

extern const struct mr_plugin mr_operator_filter;
extern const struct mr_plugin mr_operator_scale;
extern const struct mr_plugin mr_operator_rename;
extern const struct mr_plugin mr_operator_route;
extern const struct mr_plugin mr_operator_deadband;
extern const struct mr_plugin mr_operator_report_by_exception;
extern const struct mr_plugin mr_operator_downsample;

#define SEC      1000000000LL
#define PRESS    "plant1/line2/press3"
#define MAX_CASE 8
#define NO_VALUE -999.0

struct counts {
    uint64_t in;
    uint64_t out;
    uint64_t errors;
};

static struct counts counts_of(struct op_harness *h)
{
    struct mr_plugin_counters c;
    assert_int_equal(mr_plugin_counters_register(h->metrics, h->plugin, h->host.name, &c), 0);
    return (struct counts){.in = mr_counter_value(c.records_in),
                           .out = mr_counter_value(c.records_out),
                           .errors = mr_counter_value(c.errors)};
}

static void open_ok(struct op_harness *h, const struct mr_plugin *p, const char *yaml)
{
    int rc = op_harness_open(h, p, yaml);
    if (rc != 0) {
        fail_msg("%s: %s", p->name, h->err.msg);
    }
}

static struct mr_record tagged(struct op_harness *h, const char *asset, const char *signal,
                               int64_t t, double v, const char *k1, const char *v1)
{
    struct mr_record r = op_rec(h, asset, signal, t, v);
    if (k1 != NULL) {
        r.ntags = 1;
        r.tags[0] = (struct mr_tag){.key = op_name(h, k1),
                                    .value = {.ptr = v1, .len = (uint32_t)strlen(v1)}};
    }
    return r;
}

/* ---- filter ---- */

struct filter_case {
    const char *yaml;
    double in[MAX_CASE]; /* values at t = 0, 1, 2, ... s; NO_VALUE ends */
    double want[MAX_CASE];
};

static const struct filter_case filter_cases[] = {
    {"where: value > 20", {10, 25, 30, 5, 21, NO_VALUE}, {25, 30, 21, NO_VALUE}},
    {"where: \"value >= 10 and value < 30\"",
     {10, 25, 30, 5, 21, NO_VALUE},
     {10, 25, 21, NO_VALUE}},
    {"where: \"asset == 'plant1/line2/press3'\"", {1, 2, NO_VALUE}, {1, 2, NO_VALUE}},
    {"where: \"signal != 'temp'\"", {1, 2, NO_VALUE}, {NO_VALUE}},
    {"where: \"value / 0 > 1\"", {1, 2, NO_VALUE}, {NO_VALUE}},
    {"where: \"time >= 2e9\"", {10, 25, 30, 5, 21, NO_VALUE}, {30, 5, 21, NO_VALUE}},
    {"where: \"abs(value - 20) <= 5 or not (value < 30)\"",
     {10, 25, 30, 5, 21, NO_VALUE},
     {25, 30, 21, NO_VALUE}},
};

static void test_filter_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(filter_cases) / sizeof(filter_cases[0]); k++) {
        const struct filter_case *c = &filter_cases[k];
        struct op_harness h;
        open_ok(&h, &mr_operator_filter, c->yaml);
        struct mr_record recs[MAX_CASE];
        size_t n = 0;
        for (; c->in[n] != NO_VALUE; n++) {
            recs[n] = op_rec(&h, PRESS, "temp", (int64_t)n * SEC, c->in[n]);
        }
        assert_int_equal(op_harness_push(&h, recs, n), 0);
        size_t nwant = 0;
        for (; c->want[nwant] != NO_VALUE; nwant++) {
            if (nwant >= h.nout || h.out[nwant].v.f64 != c->want[nwant]) {
                fail_msg("case %zu (%s): output %zu differs", k, c->yaml, nwant);
            }
        }
        assert_int_equal(h.nout, nwant);
        struct counts ct = counts_of(&h);
        assert_int_equal(ct.in, n);
        assert_int_equal(ct.out, nwant);
        op_harness_close(&h);
    }
}

static void test_filter_types_and_tags(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, &mr_operator_filter,
            "where: \"text == 'FAULT' or (value > 1 and tags.shift != 'night')\"\n");
    struct mr_record recs[5];
    recs[0] = op_rec(&h, PRESS, "state", 0, 0);
    recs[0].type = MR_VALUE_STRING;
    recs[0].v.str = (struct mr_bytes){.ptr = "FAULT", .len = 5};
    recs[1] = recs[0];
    recs[1].v.str = (struct mr_bytes){.ptr = "RUNNING", .len = 7};
    recs[2] = tagged(&h, PRESS, "temp", 1, 5, "shift", "night");
    recs[3] = tagged(&h, PRESS, "temp", 2, 5, "shift", "day");
    recs[4] = op_rec(&h, PRESS, "running", 3, 0);
    recs[4].type = MR_VALUE_BOOL;
    recs[4].v.b = true; /* value 1: not > 1 */
    assert_int_equal(op_harness_push(&h, recs, 5), 0);
    assert_int_equal(h.nout, 2);
    assert_int_equal(h.out[0].type, MR_VALUE_STRING);
    assert_memory_equal(h.out[0].v.str.ptr, "FAULT", 5);
    assert_int_equal(h.out[1].time_ns, 2);
    op_harness_close(&h);
}

static void test_emit_failure_propagates(void **state)
{
    (void)state;
    static const struct {
        const struct mr_plugin *p;
        const char *yaml;
    } cases[] = {
        {&mr_operator_filter, "where: value > 0"},
        {&mr_operator_scale, "scale: 2"},
        {&mr_operator_rename, "signals: {temp: t}"},
        {&mr_operator_route, "routes: [{where: value > 5, to: high}]"},
        {&mr_operator_deadband, "absolute: 1"},
        {&mr_operator_report_by_exception, "heartbeat: 1m"},
        {&mr_operator_downsample, "every: 1"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct op_harness h;
        open_ok(&h, cases[k].p, cases[k].yaml);
        h.emit_rc = MR_EIO;
        struct mr_record recs[2] = {op_rec(&h, PRESS, "temp", 0, 1),
                                    op_rec(&h, PRESS, "temp", 1, 9)};
        int rc = op_harness_push(&h, recs, 2);
        if (rc != MR_EIO) {
            fail_msg("%s returned %d", cases[k].p->name, rc);
        }
        assert_int_equal(counts_of(&h).out, 0);
        op_harness_close(&h);
    }
}

/* ---- configuration errors ---- */

struct conf_case {
    const struct mr_plugin *p;
    const char *yaml;
    const char *msg; /* exact */
};

static void test_config_errors(void **state)
{
    (void)state;
    const struct conf_case cases[] = {
        {&mr_operator_filter, "where: \"value >> 3\"\n",
         "test.yaml:1:8: where: expression 'value >> 3': unexpected '>' at column 8"},
        {&mr_operator_filter, "where: \"asset == 3\"\n",
         "test.yaml:1:8: where: expression 'asset == 3': cannot compare a string with a number at "
         "column 7"},
        {&mr_operator_filter, "{}\n", "test.yaml:1:1: missing required field 'where'"},
        {&mr_operator_scale, "from_unit: degC\nto_unit: degK\n",
         "test.yaml:2:10: to_unit: unknown unit 'degK' (known: K degC degF Pa kPa MPa bar mbar "
         "psi m mm um in m/s mm/s in/s m/s2 g W kW MW hp J kJ MJ Wh kWh MWh m3/s m3/h l/s l/min "
         "gal/min Hz rpm)"},
        {&mr_operator_scale, "from_unit: degC\nto_unit: bar\n",
         "test.yaml:2:10: to_unit: cannot convert degC (temperature) to bar (pressure)"},
        {&mr_operator_scale, "from_unit: degC\n",
         "test.yaml:1:12: from_unit: set both from_unit and to_unit"},
        {&mr_operator_scale, "scale: 2\nfrom_unit: degC\nto_unit: degF\n",
         "test.yaml:1:1: use either scale/offset or from_unit/to_unit, not both"},
        {&mr_operator_scale, "signals: [temp]\n",
         "test.yaml:1:1: set `scale` and/or `offset`, or `from_unit` and `to_unit`"},
        {&mr_operator_scale, "scale: 2\nunit_tag: unit\n",
         "test.yaml:2:11: unit_tag: unit_tag needs to_unit (the unit it records)"},
        {&mr_operator_rename, "{}\n",
         "test.yaml:1:1: nothing to do: set signals, assets, add_tags or drop_tags"},
        {&mr_operator_rename, "signals: {temp: ''}\n",
         "test.yaml:1:17: signals.temp: the new name of 'temp' is empty"},
        {&mr_operator_route, "routes: []\n", "test.yaml:1:1: routes: needs at least 1 item, got 0"},
        {&mr_operator_route, "routes:\n  - {where: \"value >\", to: q}\n",
         "test.yaml:2:13: routes[0].where: expression 'value >': unexpected end of expression at "
         "column 8"},
        {&mr_operator_route, "routes:\n  - {where: value > 1}\n",
         "test.yaml:2:5: routes[0]: missing required field 'to'"},
        {&mr_operator_deadband, "heartbeat: 1m\n",
         "test.yaml:1:1: set `absolute` or `percent` (to forward every change, use "
         "report_by_exception)"},
        {&mr_operator_deadband, "absolute: -1\n",
         "test.yaml:1:11: absolute: -1 is too small: must be at least 0"},
        {&mr_operator_report_by_exception, "heartbeat: 5\n", NULL},
        {&mr_operator_downsample, "{}\n",
         "test.yaml:1:1: set exactly one of `every` (count) or `interval` (time)"},
        {&mr_operator_downsample, "every: 2\ninterval: 1s\n",
         "test.yaml:1:1: set exactly one of `every` (count) or `interval` (time)"},
        {&mr_operator_downsample, "every: 2\naggregate: max\n",
         "test.yaml:2:12: aggregate: aggregate needs `interval`"},
        {&mr_operator_downsample, "interval: 1s\naggregate: median\n",
         "test.yaml:2:12: aggregate: expected one of: mean, min, max, first, last, sum, count; "
         "got 'median' (did you mean 'mean'?)"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct op_harness h;
        int rc = op_harness_open(&h, cases[k].p, cases[k].yaml);
        if (rc != MR_ECONFIG) {
            fail_msg("%s '%s': rc %d", cases[k].p->name, cases[k].yaml, rc);
        }
        if (cases[k].msg != NULL && strcmp(h.err.msg, cases[k].msg) != 0) {
            fail_msg("%s:\n got  %s\n want %s", cases[k].p->name, h.err.msg, cases[k].msg);
        }
        op_harness_close(&h);
    }
}

/* Every table is well formed (defaults parse, bounds fit): what `config docs` relies on. */
static void test_field_tables_validate(void **state)
{
    (void)state;
    const struct mr_plugin *all[] = {&mr_operator_filter,    &mr_operator_scale,
                                     &mr_operator_rename,    &mr_operator_route,
                                     &mr_operator_deadband,  &mr_operator_report_by_exception,
                                     &mr_operator_downsample};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        struct mr_err err = {0};
        if (mr_section_validate(&all[i]->conf, all[i]->name, &err) != 0) {
            fail_msg("%s: %s", all[i]->name, err.msg);
        }
        assert_non_null(all[i]->help);
    }
}

/* ---- scale ---- */

struct scale_case {
    const char *yaml;
    double in;
    double want;
};

static const struct scale_case scale_cases[] = {
    {"scale: 2\noffset: 1", 10, 21},
    {"offset: -5", 10, 5},
    {"from_unit: degC\nto_unit: degF", 100, 212},
    {"from_unit: degC\nto_unit: degF", -40, -40},
    {"from_unit: degF\nto_unit: degC", 212, 100},
    {"from_unit: degF\nto_unit: K", 32, 273.15},
    {"from_unit: K\nto_unit: degC", 0, -273.15},
    {"from_unit: bar\nto_unit: kPa", 1, 100},
    {"from_unit: bar\nto_unit: psi", 1, 14.503773773375085},
    {"from_unit: psi\nto_unit: Pa", 1, 6894.757293168361},
    {"from_unit: MPa\nto_unit: bar", 1, 10},
    {"from_unit: Pa\nto_unit: MPa", 2.5e6, 2.5},
    {"from_unit: mbar\nto_unit: Pa", 1, 100},
    {"from_unit: in\nto_unit: mm", 1, 25.4},
    {"from_unit: um\nto_unit: mm", 1000, 1},
    {"from_unit: mm\nto_unit: in", 25.4, 1},
    {"from_unit: mm/s\nto_unit: in/s", 25.4, 1},
    {"from_unit: kW\nto_unit: hp", 1, 1.3410220895950279},
    {"from_unit: hp\nto_unit: W", 1, 745.6998715822702},
    {"from_unit: kWh\nto_unit: MJ", 1, 3.6},
    {"from_unit: Wh\nto_unit: kWh", 1000, 1},
    {"from_unit: m3/h\nto_unit: l/min", 1, 1000.0 / 60.0},
    {"from_unit: l/s\nto_unit: m3/h", 1, 3.6},
    {"from_unit: rpm\nto_unit: Hz", 60, 1},
    {"from_unit: Hz\nto_unit: rpm", 50, 3000},
    {"from_unit: g\nto_unit: m/s2", 1, 9.80665},
    {"from_unit: m/s2\nto_unit: g", 9.80665, 1},
};

static void test_scale_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(scale_cases) / sizeof(scale_cases[0]); k++) {
        const struct scale_case *c = &scale_cases[k];
        struct op_harness h;
        open_ok(&h, &mr_operator_scale, c->yaml);
        struct mr_record r = op_rec(&h, PRESS, "x", 0, c->in);
        assert_int_equal(op_harness_push(&h, &r, 1), 0);
        assert_int_equal(h.nout, 1);
        double got = h.out[0].v.f64;
        if (fabs(got - c->want) > 1e-9 * (fabs(c->want) + 1)) {
            fail_msg("%s: %.17g -> %.17g, want %.17g", c->yaml, c->in, got, c->want);
        }
        op_harness_close(&h);
    }
}

static void test_scale_types_selection_and_unit_tag(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, &mr_operator_scale,
            "from_unit: degC\nto_unit: degF\nsignals: [temp, oil_temp]\nunit_tag: unit\n");
    struct mr_record recs[6];
    recs[0] = tagged(&h, PRESS, "temp", 0, 100, "unit", "degC");
    recs[1] = op_rec(&h, PRESS, "oil_temp", 0, 0);
    recs[1].type = MR_VALUE_I64;
    recs[1].v.i64 = 10;
    recs[2] = op_rec(&h, PRESS, "pressure", 0, 5); /* not selected */
    recs[3] = op_rec(&h, PRESS, "temp", 0, 0);
    recs[3].type = MR_VALUE_BOOL; /* not numeric */
    recs[3].v.b = true;
    recs[4] = op_rec(&h, PRESS, "temp", 0, 0);
    recs[4].type = MR_VALUE_STRING;
    recs[4].v.str = (struct mr_bytes){.ptr = "n/a", .len = 3};
    recs[5] = recs[0];
    recs[5].ntags = MR_RECORD_MAX_TAGS; /* no room for the unit tag: converted, counted */
    for (uint16_t t = 0; t < MR_RECORD_MAX_TAGS; t++) {
        char key[16];
        snprintf(key, sizeof(key), "k%u", t);
        recs[5].tags[t] = (struct mr_tag){.key = op_name(&h, key), .value = {.ptr = "v", .len = 1}};
    }
    assert_int_equal(op_harness_push(&h, recs, 6), 0);
    assert_int_equal(h.nout, 6);
    char buf[32];
    assert_true(h.out[0].type == MR_VALUE_F64 && fabs(h.out[0].v.f64 - 212) < 1e-9);
    assert_int_equal(h.out[0].ntags, 1);
    assert_string_equal(op_tag(&h, 0, "unit", buf, sizeof(buf)), "degF");
    assert_true(h.out[1].type == MR_VALUE_F64 && fabs(h.out[1].v.f64 - 50) < 1e-9);
    assert_string_equal(op_tag(&h, 1, "unit", buf, sizeof(buf)), "degF");
    assert_true(h.out[2].type == MR_VALUE_F64 && h.out[2].v.f64 == 5);
    assert_null(op_tag(&h, 2, "unit", buf, sizeof(buf)));
    assert_true(h.out[3].type == MR_VALUE_BOOL && h.out[3].v.b);
    assert_true(h.out[4].type == MR_VALUE_STRING && h.out[4].v.str.len == 3);
    assert_true(fabs(h.out[5].v.f64 - 212) < 1e-9 && h.out[5].ntags == MR_RECORD_MAX_TAGS);
    struct counts ct = counts_of(&h);
    assert_int_equal(ct.in, 6);
    assert_int_equal(ct.out, 6);
    assert_int_equal(ct.errors, 1);
    /* The input was only read. */
    assert_true(recs[0].v.f64 == 100 && recs[0].tags[0].value.len == 4);
    op_harness_close(&h);
}

/* Blocks of samples are scaled into the operator's scratch; more blocks than it holds make it
 * emit and reuse it, and every block must still come out right. */
static void test_scale_sample_blocks(void **state)
{
    (void)state;
    enum { NB = 40, NS = 30000 };
    static float data[NB][NS];
    struct op_harness h;
    open_ok(&h, &mr_operator_scale, "scale: 2\noffset: 1\n");
    static struct mr_record recs[NB];
    for (int b = 0; b < NB; b++) {
        for (int i = 0; i < NS; i++) {
            data[b][i] = (float)(b * 1000 + i % 1000);
        }
        recs[b] = op_rec(&h, PRESS, "vib", b, 0);
        recs[b].type = MR_VALUE_SAMPLES;
        recs[b].v.samples = (struct mr_samples){.data = data[b], .n = NS, .rate_hz = 10000};
    }
    recs[3].v.samples.n = 0; /* an empty block passes */
    assert_int_equal(op_harness_push(&h, recs, NB), 0);
    assert_int_equal(h.nout, NB);
    for (int b = 0; b < NB; b++) {
        const struct mr_record *r = &h.out[b];
        assert_int_equal(r->time_ns, b);
        assert_int_equal(r->type, MR_VALUE_SAMPLES);
        assert_true(r->v.samples.rate_hz == 10000);
        assert_int_equal(r->v.samples.n, b == 3 ? 0 : NS);
        for (uint32_t i = 0; i < r->v.samples.n; i++) {
            float want = (float)((b * 1000 + (int)i % 1000) * 2.0 + 1.0);
            if (r->v.samples.data[i] != want) {
                fail_msg("block %d sample %u: %g, want %g", b, i, r->v.samples.data[i], want);
            }
        }
        assert_true(data[b][1] == (float)(b * 1000 + 1)); /* input untouched */
    }
    op_harness_close(&h);
}

/* ---- rename ---- */

struct rename_case {
    const char *asset;
    const char *want;
};

static void test_rename_assets(void **state)
{
    (void)state;
    static const struct rename_case cases[] = {
        {"plant1/line2", "site/l2"},
        {"plant1/line2/press3", "site/l2/press3"},
        {"plant1/line20/press1", "p/line20/press1"}, /* segments: only 'plant1' matches */
        {"plant1", "p"},
        {"plant2/x", "plant2/x"},
        {"plc1", "plant1/line2/press3"},
        {"plc1/axis2", "plant1/line2/press3/axis2"},
        {"plc10", "plc10"},
        {"old/a/b", "a/b"},
        {"old", "old"},                            /* would become empty: left alone, counted */
        {"plant1/line2/press3", "site/l2/press3"}, /* again: from the cache */
    };
    struct op_harness h;
    open_ok(&h, &mr_operator_rename,
            "assets:\n  plant1: p\n  plant1/line2/: site/l2\n  plc1: plant1/line2/press3\n"
            "  old/: ''\n");
    size_t n = sizeof(cases) / sizeof(cases[0]);
    for (size_t i = 0; i < n; i++) {
        struct mr_record r = op_rec(&h, cases[i].asset, "temp", (int64_t)i, (double)i);
        assert_int_equal(op_harness_push(&h, &r, 1), 0);
    }
    assert_int_equal(h.nout, n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(op_str(&h, h.out[i].asset), cases[i].want) != 0) {
            fail_msg("%s -> %s, want %s", cases[i].asset, op_str(&h, h.out[i].asset),
                     cases[i].want);
        }
        assert_true(h.out[i].v.f64 == (double)i);
        assert_string_equal(op_str(&h, h.out[i].signal), "temp");
    }
    assert_int_equal(counts_of(&h).errors, 1);
    op_harness_close(&h);
}

static void test_rename_signals_and_tags(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, &mr_operator_rename,
            "signals: {Temp_PV: temperature, \"DB10.DBD4\": spindle_speed}\n"
            "add_tags: {unit: degC, source: plc1}\n"
            "drop_tags: [raw, addr]\n");
    struct mr_record recs[3];
    recs[0] = op_rec(&h, PRESS, "Temp_PV", 0, 20);
    recs[0].ntags = 3;
    recs[0].tags[0] = (struct mr_tag){.key = op_name(&h, "raw"), .value = {.ptr = "1", .len = 1}};
    recs[0].tags[1] = (struct mr_tag){.key = op_name(&h, "unit"), .value = {.ptr = "C", .len = 1}};
    recs[0].tags[2] = (struct mr_tag){.key = op_name(&h, "line"), .value = {.ptr = "2", .len = 1}};
    recs[1] = op_rec(&h, PRESS, "DB10.DBD4", 1, 1500);
    recs[2] = op_rec(&h, PRESS, "other", 2, 1);
    assert_int_equal(op_harness_push(&h, recs, 3), 0);
    assert_int_equal(h.nout, 3);
    char buf[32];
    assert_string_equal(op_str(&h, h.out[0].signal), "temperature");
    assert_string_equal(op_str(&h, h.out[1].signal), "spindle_speed");
    assert_string_equal(op_str(&h, h.out[2].signal), "other");
    assert_int_equal(h.out[0].ntags, 3); /* unit (replaced), line, source */
    assert_string_equal(op_tag(&h, 0, "unit", buf, sizeof(buf)), "degC");
    assert_string_equal(op_tag(&h, 0, "line", buf, sizeof(buf)), "2");
    assert_string_equal(op_tag(&h, 0, "source", buf, sizeof(buf)), "plc1");
    assert_null(op_tag(&h, 0, "raw", buf, sizeof(buf)));
    assert_int_equal(h.out[2].ntags, 2);
    assert_string_equal(op_str(&h, recs[0].signal), "Temp_PV"); /* input untouched */
    assert_int_equal(recs[0].ntags, 3);
    op_harness_close(&h);
}

/* More assets than the cache holds: it starts over and answers stay right. */
static void test_rename_cache_bound(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, &mr_operator_rename, "assets: {a: b}\n");
    enum { N = 70000 };
    char name[32];
    for (int round = 0; round < 2; round++) {
        op_harness_clear(&h);
        for (int i = 0; i < N; i++) {
            snprintf(name, sizeof(name), "%s/m%d", i % 2 == 0 ? "a" : "c", i);
            struct mr_record r = op_rec(&h, name, "s", i, i);
            assert_int_equal(op_harness_push(&h, &r, 1), 0);
            const char *got = op_str(&h, h.out[h.nout - 1].asset);
            if (got[0] != (i % 2 == 0 ? 'b' : 'c') || strcmp(got + 1, name + 1) != 0) {
                fail_msg("%s -> %s", name, got);
            }
        }
    }
    op_harness_close(&h);
}

/* ---- route ---- */

static void test_route(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, &mr_operator_route,
            "routes:\n"
            "  - {where: \"quality == 'bad'\", to: quarantine}\n"
            "  - {where: value > 100, to: high, copy: true}\n"
            "  - {where: value > 50, to: quarantine}\n");
    assert_int_equal(h.nsides, 2);
    assert_string_equal(h.side_topics[0], "quarantine");
    assert_string_equal(h.side_topics[1], "high");
    static const struct {
        double v;
        int bad;
    } in[] = {{10, 0}, {10, 1}, {200, 0}, {60, 0}, {200, 1}, {11, 0}};
    enum { N = sizeof(in) / sizeof(in[0]) };
    struct mr_record recs[N];
    for (size_t i = 0; i < N; i++) {
        recs[i] = op_rec(&h, PRESS, "temp", (int64_t)i, in[i].v);
        recs[i].quality = in[i].bad ? MR_QUALITY_BAD : MR_QUALITY_GOOD;
    }
    assert_int_equal(op_harness_push(&h, recs, N), 0);
    /* per port, the input times in order */
    static const int64_t want_main[] = {0, 2, 5};
    static const int64_t want_q[] = {1, 3, 4};
    static const int64_t want_high[] = {2};
    const int64_t *want[3] = {want_main, want_q, want_high};
    size_t nwant[3] = {3, 3, 1};
    size_t got[3] = {0, 0, 0};
    for (size_t i = 0; i < h.nout; i++) {
        int p = h.out_port[i];
        assert_true(p >= 0 && p <= 2);
        assert_true(got[p] < nwant[p]);
        assert_int_equal(h.out[i].time_ns, want[p][got[p]]);
        got[p]++;
    }
    assert_int_equal(got[0], 3);
    assert_int_equal(got[1], 3);
    assert_int_equal(got[2], 1);
    struct counts ct = counts_of(&h);
    assert_int_equal(ct.in, N);
    assert_int_equal(ct.out, 7);
    op_harness_close(&h);
}

/* A batch larger than the operators' output buffers keeps its order per destination. */
static void test_route_large_batch(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, &mr_operator_route, "routes: [{where: \"value % 3 == 0\", to: thirds}]\n");
    enum { N = 2000 };
    static struct mr_record recs[N];
    for (int i = 0; i < N; i++) {
        recs[i] = op_rec(&h, PRESS, "n", i, i);
    }
    assert_int_equal(op_harness_push(&h, recs, N), 0);
    assert_int_equal(h.nout, N);
    int64_t last[2] = {-1, -1};
    size_t per[2] = {0, 0};
    for (size_t i = 0; i < h.nout; i++) {
        int p = h.out_port[i];
        assert_int_equal(p == 1, h.out[i].time_ns % 3 == 0);
        assert_true(h.out[i].time_ns > last[p]);
        last[p] = h.out[i].time_ns;
        per[p]++;
    }
    assert_int_equal(per[1], (N + 2) / 3);
    op_harness_close(&h);
}

/* ---- speed ---- */

static int count_emit(struct mr_operator_host *host, const struct mr_record *recs, size_t n)
{
    (void)recs;
    *(size_t *)host->arg += n;
    return 0;
}

/* filter over 1M records in batches of 1024, its host doing nothing but counting. */
static void test_filter_speed(void **state)
{
    (void)state;
    struct op_harness h; /* for names, metrics and the loaded config */
    open_ok(&h, &mr_operator_filter,
            "where: \"value > 50 and asset == 'plant1/line2/press3' and quality == 'good'\"\n");
    size_t kept = 0;
    struct mr_operator_host host = h.host;
    host.emit = count_emit;
    host.arg = &kept;
    void *ctx = mr_calloc(1, mr_operator_filter.ctx_size);
    struct mr_err err = {0};
    assert_int_equal(mr_operator_filter.op.init(ctx, h.conf, &host, &err), 0);
    enum { B = 1024, N = 1024 * 1024 };
    static struct mr_record recs[B];
    mr_name_id other = op_name(&h, "plant1/line2/press4");
    for (int i = 0; i < B; i++) {
        recs[i] = op_rec(&h, PRESS, "temp", i, (i * 37) % 100);
        recs[i].asset = i % 4 == 0 ? other : recs[i].asset;
    }
    struct timespec t0;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int done = 0; done < N; done += B) {
        assert_int_equal(mr_operator_filter.op.process(ctx, recs, B, &err), 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("filter: %.1f ns/record over %d records (%zu kept)\n", ns / N, N, kept);
    assert_true(kept > 0 && kept < N);
    assert_true(ns / N < 5000); /* sanity under sanitizers too; release is far below 100 */
    mr_operator_filter.op.fini(ctx);
    mr_free(ctx);
    op_harness_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_table),
        cmocka_unit_test(test_filter_types_and_tags),
        cmocka_unit_test(test_emit_failure_propagates),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_field_tables_validate),
        cmocka_unit_test(test_scale_table),
        cmocka_unit_test(test_scale_types_selection_and_unit_tag),
        cmocka_unit_test(test_scale_sample_blocks),
        cmocka_unit_test(test_rename_assets),
        cmocka_unit_test(test_rename_signals_and_tags),
        cmocka_unit_test(test_rename_cache_bound),
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_route_large_batch),
        cmocka_unit_test(test_filter_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
