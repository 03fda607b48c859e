/* The spc operator: the standard constants, the NIST/SEMATECH individuals chart example
 * (tests/data/nist_spc_examples/imr_flowrate.csv), a hand-computed X-bar/R case, a positive and
 * a negative case for every rule (WECO 1-4, Nelson 1-8, range, tolerance), capability indices
 * against hand-computed values, actions with cool-down and rate limit, the lathe drift of the
 * demo (a Nelson rule trips and an adjust command is sent before a part leaves tolerance),
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

#include "analytics/spc_chart.h"
#include "support/op_harness.h"

extern const struct mr_plugin mr_operator_spc;

#define SEC    1000000000LL
#define MINUTE (60 * SEC)
#define LATHE  "plant1/machining/line2/lathe2"
#define DATA   "tests/data/nist_spc_examples/"

static void open_ok(struct op_harness *h, const char *yaml)
{
    int rc = op_harness_open(h, &mr_operator_spc, yaml);
    if (rc != 0) {
        fail_msg("%s: %s", yaml, h->err.msg);
    }
}

static void push_value(struct op_harness *h, const char *asset, const char *signal, int64_t t,
                       double x)
{
    struct mr_record r = op_rec(h, asset, signal, t, x);
    assert_int_equal(op_harness_push(h, &r, 1), 0);
}

/* Topic of captured record i ("" for the main chain). */
static const char *topic_of(const struct op_harness *h, size_t i)
{
    return h->out_port[i] == 0 ? "" : h->side_topics[h->out_port[i] - 1];
}

/* Index of the n-th (0-based) captured record with this signal on this topic, or -1. */
static long nth(struct op_harness *h, const char *topic, const char *signal, int n)
{
    for (size_t i = 0; i < h->nout; i++) {
        if (strcmp(topic_of(h, i), topic) == 0 &&
            strcmp(op_str(h, h->out[i].signal), signal) == 0 && n-- == 0) {
            return (long)i;
        }
    }
    return -1;
}

static int count(struct op_harness *h, const char *topic, const char *signal)
{
    int n = 0;
    while (nth(h, topic, signal, n) >= 0) {
        n++;
    }
    return n;
}

static double tag_num(struct op_harness *h, long i, const char *key)
{
    char buf[128];
    const char *s = op_tag(h, (size_t)i, key, buf, sizeof(buf));
    if (s == NULL) {
        fail_msg("record %ld has no tag %s", i, key);
    }
    return strtod(s, NULL);
}

static double value_of(struct op_harness *h, const char *signal)
{
    long i = nth(h, "", signal, 0);
    if (i < 0) {
        fail_msg("no %s record", signal);
    }
    return h->out[i].v.f64;
}

/* ---- constants ---- */

static void test_constants(void **state)
{
    (void)state;
    assert_null(mr_spc_constants(1));
    assert_null(mr_spc_constants(11));
    for (int n = 2; n <= 10; n++) {
        const struct mr_spc_const *k = mr_spc_constants(n);
        assert_non_null(k);
        /* A2 = 3 / (d2 sqrt n), to the 3 decimals published */
        assert_true(fabs(k->a2 - 3 / (k->d2 * sqrt(n))) < 0.0015);
    }
    assert_true(mr_spc_constants(2)->d4 == 3.267 && mr_spc_constants(2)->d2 == 1.128);
    assert_true(mr_spc_constants(5)->a2 == 0.577 && mr_spc_constants(10)->d3 == 0.223);
}

/* ---- NIST e-Handbook 6.3.2.2: individuals chart of 10 flow rates ---- */

static int load_flowrate(double *x)
{
    FILE *f = fopen(DATA "imr_flowrate.csv", "r");
    if (f == NULL) {
        fail_msg("cannot open %s (run tests from the repository root)", DATA);
    }
    char line[256];
    int n = 0;
    assert_non_null(fgets(line, sizeof(line), f));
    while (n < 16 && fgets(line, sizeof(line), f) != NULL) {
        char *comma = strchr(line, ',');
        assert_non_null(comma);
        x[n++] = strtod(comma + 1, NULL);
    }
    fclose(f);
    return n;
}

static void test_nist_individuals(void **state)
{
    (void)state;
    double x[16];
    int n = load_flowrate(x);
    assert_int_equal(n, 10);
    struct op_harness h;
    open_ok(&h, "characteristics:\n"
                "  - {signal: flow, chart: individuals, baseline: 10,\n"
                "     rules: [range, weco1, weco2, weco3, weco4, nelson1, nelson2, nelson3,\n"
                "             nelson4, nelson5, nelson6, nelson7, nelson8]}\n");
    for (int i = 0; i < n; i++) {
        push_value(&h, "plant/batch", "flow", (i + 1) * SEC, x[i]);
    }
    assert_true(fabs(value_of(&h, "flow.cl") - 50.81) < 1e-9);
    assert_true(fabs(value_of(&h, "flow.ucl") - 55.8041) < 1e-4);
    assert_true(fabs(value_of(&h, "flow.lcl") - 45.8159) < 1e-4);
    long cl = nth(&h, "", "flow.cl", 0);
    assert_true(fabs(tag_num(&h, cl, "rbar") - 1.8777777778) < 1e-9);
    assert_true(fabs(tag_num(&h, cl, "range_ucl") - 6.1347) < 1e-4);
    assert_int_equal(h.out[cl].time_ns, 10 * SEC);
    op_harness_close(&h);

    /* The same data charted against those limits: NIST finds it in control, under every rule. */
    open_ok(&h, "characteristics:\n"
                "  - {signal: flow, center: 50.81, sigma: 1.664695,\n"
                "     rules: [range, weco1, weco2, weco3, weco4, nelson1, nelson2, nelson3,\n"
                "             nelson4, nelson5, nelson6, nelson7, nelson8]}\n");
    for (int i = 0; i < n; i++) {
        push_value(&h, "plant/batch", "flow", (i + 1) * SEC, x[i]);
    }
    assert_int_equal(count(&h, "", "alert"), 0);
    assert_true(fabs(value_of(&h, "flow.ucl") - 55.8041) < 1e-4);
    op_harness_close(&h);
}

/* ---- X-bar/R, computed by hand with the published constants ---- */

static void test_xbar_r(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "characteristics:\n"
                "  - {signal: d, chart: xbar_r, subgroup_size: 5, baseline: 4,\n"
                "     capability_window: 20, capability_every: 5,\n"
                "     rules: [nelson1, range]}\n");
    /* means 3, 4, 3, 2 (X-double-bar 3); ranges 4, 4, 2, 6 (R-bar 4) */
    static const double base[4][5] = {
        {1, 2, 3, 4, 5}, {2, 3, 4, 5, 6}, {2, 3, 3, 3, 4}, {-1, 2, 2, 2, 5}};
    int64_t t = 0;
    for (int g = 0; g < 4; g++) {
        for (int j = 0; j < 5; j++) {
            push_value(&h, "p/a/l/m", "d", t += SEC, base[g][j]);
        }
    }
    assert_int_equal(count(&h, "", "d.xbar"), 4);
    assert_true(fabs(h.out[nth(&h, "", "d.xbar", 1)].v.f64 - 4) < 1e-12);
    assert_true(fabs(h.out[nth(&h, "", "d.range", 3)].v.f64 - 6) < 1e-12);
    assert_true(fabs(value_of(&h, "d.cl") - 3) < 1e-12);
    assert_true(fabs(value_of(&h, "d.ucl") - (3 + 0.577 * 4)) < 1e-12);
    assert_true(fabs(value_of(&h, "d.lcl") - (3 - 0.577 * 4)) < 1e-12);
    long cl = nth(&h, "", "d.cl", 0);
    assert_true(fabs(tag_num(&h, cl, "range_ucl") - 2.114 * 4) < 1e-9);
    assert_true(fabs(tag_num(&h, cl, "sigma") - 4 / 2.326) < 1e-9);
    assert_int_equal(count(&h, "", "alert"), 0);
    /* a subgroup in control, then one with mean 6 > UCL 5.308, then one with range 9 > 8.456 */
    static const double next[3][5] = {{2, 3, 3, 4, 3}, {5, 6, 6, 6, 7}, {-1.5, 3, 3, 3, 7.5}};
    for (int g = 0; g < 3; g++) {
        for (int j = 0; j < 5; j++) {
            push_value(&h, "p/a/l/m", "d", t += SEC, next[g][j]);
        }
    }
    assert_int_equal(count(&h, "", "alert"), 2);
    char buf[64];
    long a = nth(&h, "", "alert", 0);
    assert_string_equal(op_tag(&h, (size_t)a, "rule", buf, sizeof(buf)), "nelson1");
    assert_int_equal(h.out[a].time_ns, 30 * SEC);
    assert_int_equal((int64_t)tag_num(&h, a, "window_start"), 26 * SEC); /* its subgroup */
    a = nth(&h, "", "alert", 1);
    assert_string_equal(op_tag(&h, (size_t)a, "rule", buf, sizeof(buf)), "range");
    assert_int_equal(h.out[a].time_ns, 35 * SEC);
    op_harness_close(&h);
}

/* ---- every rule: a positive and a negative case (centre 0, sigma 1, individuals) ---- */

struct rule_case {
    const char *rule;
    const char *extra; /* more settings */
    double pos[16];
    int npos;
    int fires_at; /* index of the point completing the pattern */
    double neg[32];
    int nneg;
};

static const struct rule_case rule_cases[] = {
    {"nelson1", "", {0.5, -0.5, 3.5}, 3, 2, {2.9, -2.9, 3.0, -3.0}, 4},
    {"weco1", "", {0.5, -3.2}, 2, 1, {2.99, -2.99}, 2},
    {"nelson2",
     "",
     {.5, .5, .5, .5, .5, .5, .5, .5, .5},
     9,
     8,
     {.5, .5, .5, .5, .5, .5, .5, .5, 0, .5, .5, .5, .5, .5, .5, .5, .5},
     17},
    {"weco4",
     "",
     {-.5, -.5, -.5, -.5, -.5, -.5, -.5, -.5},
     8,
     7,
     {-.5, -.5, -.5, -.5, -.5, -.5, -.5, .5, -.5, -.5, -.5, -.5, -.5, -.5, -.5},
     15},
    {"nelson3", "", {0, .1, .2, .3, .4, .5}, 6, 5, {0, .1, .2, .3, .3, .4, .5, .6, .7}, 9},
    {"nelson4",
     "",
     {.5, -.5, .5, -.5, .5, -.5, .5, -.5, .5, -.5, .5, -.5, .5, -.5},
     14,
     13,
     {.5, -.5, .5, -.5, .5, -.5, .5, -.5, .5, -.5, .5, -.5, .5, .5, -.5, .5, -.5},
     17},
    {"nelson5", "", {2.5, 0, 2.5}, 3, 2, {2.5, 0, -2.5, 0, 2.5, 1.9, 1.9, 2.1, -2.1}, 9},
    {"weco2", "", {-2.5, -2.1}, 2, 1, {-2.5, 2.5, -1, 2.0, -2.0}, 5},
    {"nelson6", "", {1.5, 1.5, 0, 1.5, 1.5}, 5, 4, {1.5, 1.5, 0, -1.5, 1.5, 1.0, 1.5, 0}, 8},
    {"weco3", "", {-1.5, -1.5, -1.5, -1.5}, 4, 3, {-1.5, -1.5, -1.5, 1.5, -1, -1.5}, 6},
    {"nelson7",
     "",
     {.5, -.5, .9, -.9, 0, .1, -.1, .2, -.2, .3, -.3, .4, -.4, 1, -1},
     15,
     14,
     {.5, -.5, .9, -.9, 0, .1, -.1, .2, -.2, .3, -.3, .4, -.4, 1.1,
      .5, -.5, .9, -.9, 0, .1, -.1, .2, -.2, .3, -.3, .4, -.4, .5},
     28},
    {"nelson8",
     "",
     {1.5, -1.5, 1.5, -1.5, 1.5, -1.5, 1.5, -1.5},
     8,
     7,
     {1.5, -1.5, 1.5, -1.5, 1.5, -1.5, 1.5, 1.0, -1.5, 1.5, -1.5, 1.5, -1.5, 1.5, -1.5},
     15},
    /* MR UCL = 3.267 * 1.128 = 3.685 */
    {"range", "", {0, 2.0, -2.0}, 3, 2, {0, 1.8, -1.8, 0}, 4},
    {"tolerance", "lsl: -2, usl: 2, ", {0, 2.5}, 2, 1, {0, 2.0, -2.0, 1.99}, 4},
};

static void run_case(const struct rule_case *rc, const double *x, int n, int fires_at)
{
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "characteristics:\n  - {signal: z, center: 0, sigma: 1, %srules: [%s]}\n", rc->extra,
             strcmp(rc->rule, "tolerance") == 0 ? "nelson1" : rc->rule);
    struct op_harness h;
    open_ok(&h, yaml);
    for (int i = 0; i < n; i++) {
        push_value(&h, "s/a/l/m", "z", (i + 1) * SEC, x[i]);
    }
    long a = nth(&h, "", "alert", 0);
    if (fires_at < 0) {
        if (a >= 0) {
            fail_msg("%s: negative case raised an alert at %lld s", rc->rule,
                     (long long)(h.out[a].time_ns / SEC));
        }
        op_harness_close(&h);
        return;
    }
    if (a < 0) {
        fail_msg("%s: positive case raised no alert", rc->rule);
    }
    char buf[64];
    assert_string_equal(op_tag(&h, (size_t)a, "rule", buf, sizeof(buf)), rc->rule);
    assert_int_equal(h.out[a].time_ns, (fires_at + 1) * SEC);
    int span = mr_spc_rule_span((enum mr_spc_rule)mr_spc_rule_find(rc->rule));
    int first = strcmp(rc->rule, "tolerance") == 0 ? fires_at : fires_at + 1 - span;
    first = first < 0 ? 0 : first; /* a pattern completed before span points were seen */
    assert_int_equal((int64_t)tag_num(&h, a, "window_start"), (first + 1) * SEC);
    assert_int_equal(count(&h, "", "alert"), 1);
    op_harness_close(&h);
}

static void test_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
        const struct rule_case *rc = &rule_cases[i];
        run_case(rc, rc->pos, rc->npos, rc->fires_at);
        run_case(rc, rc->neg, rc->nneg, -1);
    }
}

/* A continuing pattern violates on every further point: one alert, a flag per point. */
static void test_rule_continues(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "characteristics:\n"
                "  - {signal: z, center: 0, sigma: 1, rules: [nelson2],\n"
                "     actions: [{when: [nelson2], do: flag}]}\n");
    for (int i = 0; i < 12; i++) {
        push_value(&h, "s/a/l/m", "z", (i + 1) * SEC, 0.5);
    }
    assert_int_equal(count(&h, "", "alert"), 1);
    assert_int_equal(count(&h, "quality", "flag"), 4); /* points 9..12 */
    op_harness_close(&h);
}

/* ---- capability ---- */

static void test_capability(void **state)
{
    (void)state;
    double x[100];
    for (int i = 0; i < 100; i++) {
        x[i] = i % 2 == 0 ? 14 : 18; /* mean 16, every moving range 4 */
    }
    struct mr_spc_cap k;
    assert_int_equal(mr_spc_capability(x, 100, 1, 8, 20, true, true, &k), 0);
    double sw = 4 / 1.128;
    double so = sqrt(400.0 / 99);
    assert_true(fabs(k.mean - 16) < 1e-12);
    assert_true(fabs(k.cp - 12 / (6 * sw)) < 1e-12);
    assert_true(fabs(k.cpk - 4 / (3 * sw)) < 1e-12);
    assert_true(fabs(k.pp - 12 / (6 * so)) < 1e-12);
    assert_true(fabs(k.ppk - 4 / (3 * so)) < 1e-12);
    /* NIST 6.1.6: USL 20, LSL 8, mu 16, sigma 2 -> Cp 1, Cpk 0.667 (sigma 2 overall) */
    for (int i = 0; i < 100; i++) {
        x[i] = 16 + (i % 2 == 0 ? -2 : 2) * sqrt(99.0 / 100);
    }
    assert_int_equal(mr_spc_capability(x, 100, 1, 8, 20, true, true, &k), 0);
    assert_true(fabs(k.pp - 1.0) < 1e-12 && fabs(k.ppk - 2.0 / 3) < 1e-12);
    /* a large offset (NIST NumAcc4-like) changes nothing: two-pass sums */
    for (int i = 0; i < 100; i++) {
        x[i] += 1e7;
    }
    assert_int_equal(mr_spc_capability(x, 100, 1, 8 + 1e7, 20 + 1e7, true, true, &k), 0);
    assert_true(fabs(k.pp - 1.0) < 1e-6 && fabs(k.ppk - 2.0 / 3) < 1e-6);
    /* one-sided spec: no Cp/Pp, Cpk = Cpu */
    assert_int_equal(mr_spc_capability(x, 100, 1, 0, 20 + 1e7, false, true, &k), 0);
    assert_true(isnan(k.cp) && isnan(k.pp) && fabs(k.ppk - 2.0 / 3) < 1e-6);
    /* subgroups of 2: within sigma = mean range / 1.128 */
    double y[6] = {1, 3, 2, 2, 0, 4}; /* ranges 2, 0, 4 */
    assert_int_equal(mr_spc_capability(y, 6, 2, -10, 10, true, true, &k), 0);
    assert_true(fabs(k.s_within - 2 / 1.128) < 1e-12);
    assert_int_equal(mr_spc_capability(y, 5, 2, -10, 10, true, true, &k), MR_EINVAL);

    /* through the operator: every 25 values once 50 are held */
    struct op_harness h;
    open_ok(&h, "characteristics:\n"
                "  - {signal: d, lsl: 8, usl: 20, capability_window: 50, capability_every: 25,\n"
                "     center: 16, sigma: 2}\n");
    for (int i = 0; i < 100; i++) {
        push_value(&h, "s/a/l/m", "d", (i + 1) * SEC, i % 2 == 0 ? 14 : 18);
    }
    assert_int_equal(count(&h, "", "d.cp"), 3); /* after values 50, 75, 100 */
    long i = nth(&h, "", "d.cpk", 2);
    assert_true(fabs(h.out[i].v.f64 - 4 / (3 * sw)) < 1e-12);
    assert_int_equal((int64_t)tag_num(&h, i, "window_start"), 51 * SEC);
    assert_int_equal(h.out[i].time_ns, 100 * SEC);
    assert_true(fabs(tag_num(&h, i, "n") - 50) < 1e-12);
    assert_true(fabs(h.out[nth(&h, "", "d.ppk", 0)].v.f64 - 4 / (3 * sqrt(200.0 / 49))) < 1e-9);
    op_harness_close(&h);
}

/* ---- actions: flag, adjust, halt; cool-down and rate limit per machine ---- */

static const char *ACTIONS_YAML =
    "characteristics:\n"
    "  - {signal: dimension, assets: ['plant1/machining/*/lathe*'], lsl: 19.98, usl: 20.02,\n"
    "     target: 20.0, center: 20.0, sigma: 0.004, rules: [nelson1],\n"
    "     actions: [{when: [tolerance], do: flag}, {when: [nelson1], do: adjust},\n"
    "               {when: [tolerance], do: halt}]}\n"
    "cooldown: 10m\n"
    "max_commands: %d\n"
    "per: 1h\n";

static void test_actions(void **state)
{
    (void)state;
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), ACTIONS_YAML, 6);
    struct op_harness h;
    open_ok(&h, yaml);
    /* 30 parts, one a minute, all at 20.03: beyond 3 sigma and out of tolerance */
    for (int i = 0; i < 30; i++) {
        push_value(&h, LATHE, "dimension", i * MINUTE, 20.03);
        push_value(&h, "plant1/machining/line2/saw2", "dimension", i * MINUTE, 55.0);
    }
    assert_int_equal(count(&h, "quality", "flag"), 30);
    /* cool-down 10 min per kind: commands at 0, 10 and 20 min, of each kind */
    assert_int_equal(count(&h, "commands", "command"), 6);
    long a = nth(&h, "commands", "command", 0);
    char buf[128];
    assert_string_equal(op_str(&h, h.out[a].asset), LATHE);
    assert_int_equal(h.out[a].type, MR_VALUE_STRING);
    assert_memory_equal(h.out[a].v.str.ptr, "adjust", 6);
    assert_true(fabs(tag_num(&h, a, "offset") - (-0.03)) < 1e-9);
    assert_string_equal(op_tag(&h, (size_t)a, "characteristic", buf, sizeof(buf)), "dimension");
    assert_string_equal(op_tag(&h, (size_t)a, "rule", buf, sizeof(buf)), "nelson1");
    long halt = nth(&h, "commands", "command", 1);
    assert_memory_equal(h.out[halt].v.str.ptr, "halt", 4);
    assert_string_equal(op_str(&h, h.out[halt].asset), "plant1/machining/line2");
    assert_string_equal(op_tag(&h, (size_t)halt, "machine", buf, sizeof(buf)), LATHE);
    assert_int_equal(h.out[nth(&h, "commands", "command", 2)].time_ns, 10 * MINUTE);
    /* one alert: the violation started once (saw2 has no characteristic: untouched) */
    assert_int_equal(count(&h, "", "alert"), 1);
    long al = nth(&h, "", "alert", 0);
    assert_string_equal(op_tag(&h, (size_t)al, "rule", buf, sizeof(buf)), "tolerance,nelson1");
    assert_string_equal(op_tag(&h, (size_t)al, "severity", buf, sizeof(buf)), "alarm");
    assert_int_equal(count(&h, "", "dimension"), 60); /* every input passes through */
    op_harness_close(&h);

    /* rate limit: 2 commands per hour in all, whatever the cool-down */
    snprintf(yaml, sizeof(yaml), ACTIONS_YAML, 2);
    open_ok(&h, yaml);
    for (int i = 0; i < 30; i++) {
        push_value(&h, LATHE, "dimension", i * MINUTE, 20.03);
    }
    assert_int_equal(count(&h, "commands", "command"), 2);
    /* an hour later the bucket has refilled */
    push_value(&h, LATHE, "dimension", 90 * MINUTE, 20.03);
    assert_int_equal(count(&h, "commands", "command"), 4);
    op_harness_close(&h);
}

/* ---- the demo's lathe: dimension drifts up 0.01 mm/h from 5 min (target 20.0, tolerance
 * +-0.02, sigma 0.004, one part every 12 s), as src/inputs/sim_model.c makes it ---- */

static uint64_t rng_next(uint64_t *s)
{
    if (*s < (1ull << 32)) { /* a small seed: spread its bits first (splitmix64) */
        uint64_t z = *s + 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        *s = (z ^ (z >> 31)) | (1ull << 63);
    }
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double rng_normal(uint64_t *s)
{
    double u1 = ((double)(rng_next(s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(rng_next(s) >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static const char *DEMO_YAML = "characteristics:\n"
                               "  - signal: dimension\n"
                               "    assets: ['plant1/machining/line2/lathe2']\n"
                               "    lsl: 19.98\n"
                               "    usl: 20.02\n"
                               "    target: 20.0\n"
                               "    baseline: 25\n"
                               "    rules: [nelson1, nelson2, nelson3, nelson5, nelson6]\n"
                               "    actions:\n"
                               "      - {when: [tolerance, nelson1], do: flag}\n"
                               "      - {when: [nelson2, nelson3, nelson5, nelson6], do: adjust}\n"
                               "cooldown: 10m\n";

/* Runs the lathe for `hours`; with closed_loop, each adjust command moves the tool offset.
 * Returns the parts out of tolerance; *first_adjust and *first_out (-1: none) in ns. */
static int lathe_run(uint64_t seed, double hours, bool closed_loop, int64_t *first_adjust,
                     int64_t *first_out)
{
    struct op_harness h;
    open_ok(&h, DEMO_YAML);
    const int64_t cycle = 12 * SEC;
    const int64_t drift_start = 5 * MINUTE;
    double offset = 0;
    int out = 0;
    *first_adjust = -1;
    *first_out = -1;
    size_t seen = 0;
    for (int64_t t = cycle; t <= (int64_t)(hours * 3600) * SEC; t += cycle) {
        double drift = t > drift_start ? 0.01 * (double)(t - drift_start) / (3600.0 * SEC) : 0;
        double x = 20.0 + drift + offset + 0.004 * rng_normal(&seed);
        if (fabs(x - 20.0) > 0.02) {
            out++;
            *first_out = *first_out < 0 ? t : *first_out;
        }
        push_value(&h, LATHE, "dimension", t, x);
        for (; seen < h.nout; seen++) {
            if (strcmp(topic_of(&h, seen), "commands") != 0) {
                continue;
            }
            *first_adjust = *first_adjust < 0 ? t : *first_adjust;
            if (closed_loop) {
                offset += tag_num(&h, (long)seen, "offset");
            }
        }
        op_harness_clear(&h);
        seen = 0;
    }
    op_harness_close(&h);
    return out;
}

static void test_lathe_drift(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        int64_t adjust = 0;
        int64_t out = 0;
        /* open loop: nobody acts on the commands; the first adjust comes before the first
         * part out of tolerance, and while the drift is still under 1.5 sigma (36 min) */
        lathe_run(seed * 7919, 6, false, &adjust, &out);
        assert_true(adjust > 0);
        assert_true(out > 0);
        assert_true(adjust < out);
        assert_true(adjust < 5 * MINUTE + 36 * MINUTE);
        /* closed loop: acting on the adjust commands keeps 8 hours of parts in tolerance */
        assert_int_equal(lathe_run(seed * 7919, 8, true, &adjust, &out), 0);
    }
}

/* ---- config errors ---- */

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"characteristics: [{signal: d, rules: [nelson9]}]\n", "unknown rule 'nelson9'"},
        {"characteristics: [{signal: d, lsl: 5, usl: 4}]\n", "must be above lsl"},
        {"characteristics: [{signal: d, rules: [nelson1],\n"
         "  actions: [{when: [nelson2], do: adjust}]}]\n",
         "not in `rules`"},
        {"characteristics: [{signal: d, actions: [{when: [tolerance], do: flag}]}]\n",
         "needs lsl and/or usl"},
        {"characteristics: [{signal: d, chart: xbar_r, subgroup_size: 4,\n"
         "  capability_window: 30}]\n",
         "multiple of subgroup_size"},
        {"characteristics: [{signal: d, chart: xbar_r, subgroup_size: 11}]\n", "subgroup_size"},
        {"characteristics: [{signal: d, actions: [{when: [nelson1], do: stop}]}]\n", "stop"},
        {"characteristics: []\n", "characteristics"},
        {"characteristics: [{signal: d, sigma: 0}]\n", "sigma"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct op_harness h;
        int rc = op_harness_open(&h, &mr_operator_spc, cases[i].yaml);
        if (rc == 0 || strstr(h.err.msg, cases[i].msg) == NULL) {
            fail_msg("case %zu: rc %d, message '%s', wanted '%s'", i, rc, h.err.msg, cases[i].msg);
        }
        op_harness_close(&h);
    }
    struct mr_err err;
    assert_int_equal(mr_section_validate(&mr_operator_spc.conf, "spc", &err), 0);
}

/* Bad input never stops the operator: text, bad quality and NaN pass through uncharted. */
static void test_bad_input(void **state)
{
    (void)state;
    struct op_harness h;
    open_ok(&h, "characteristics: [{signal: d, center: 0, sigma: 1, lsl: -1, usl: 1}]\n");
    struct mr_record r[3];
    r[0] = op_rec(&h, "s/a/l/m", "d", SEC, NAN);
    r[1] = op_rec(&h, "s/a/l/m", "d", 2 * SEC, 50);
    r[1].quality = MR_QUALITY_BAD;
    r[2] = op_rec(&h, "s/a/l/m", "d", 3 * SEC, 0);
    r[2].type = MR_VALUE_STRING;
    r[2].v.str = (struct mr_bytes){.ptr = "n/a", .len = 3};
    assert_int_equal(op_harness_push(&h, r, 3), 0);
    assert_int_equal(h.nout, 3);
    assert_int_equal(count(&h, "", "alert"), 0);
    op_harness_close(&h);
}

/* ---- checkpoint: a run split by a round trip gives what an unbroken run gives ---- */

static void test_roundtrip(void **state)
{
    (void)state;
    static const char *yaml =
        "characteristics:\n"
        "  - {signal: d, chart: xbar_r, subgroup_size: 4, baseline: 5, lsl: -3, usl: 3,\n"
        "     capability_window: 40, capability_every: 8, rules: [nelson1, nelson2, range],\n"
        "     actions: [{when: [nelson2], do: adjust}, {when: [tolerance], do: flag}]}\n"
        "  - {signal: e, rules: [nelson3, nelson6], baseline: 10,\n"
        "     actions: [{when: [nelson3], do: halt}]}\n"
        "cooldown: 2m\n";
    struct op_harness a;
    struct op_harness b;
    open_ok(&a, yaml);
    open_ok(&b, yaml);
    uint64_t seed = 42;
    const int n = 400;
    for (int i = 0; i < n; i++) {
        double shift = i > 200 ? 0.8 : 0;
        double x = shift + rng_normal(&seed);
        double y = 0.01 * (i % 50) + 0.3 * rng_normal(&seed);
        for (int k = 0; k < 2; k++) {
            struct op_harness *h = k == 0 ? &a : &b;
            push_value(h, "s/a/l/m1", "d", (i + 1) * SEC, x);
            push_value(h, "s/a/l/m2", "e", (i + 1) * SEC, y);
        }
        if (i == 101 || i == 250) { /* mid-subgroup, mid-pattern */
            if (op_harness_roundtrip(&b) != 0) {
                fail_msg("roundtrip: %s", b.err.msg);
            }
        }
    }
    assert_true(count(&a, "commands", "command") > 0);
    assert_true(count(&a, "", "alert") > 0);
    assert_int_equal(a.nout, b.nout);
    for (size_t i = 0; i < a.nout; i++) {
        assert_int_equal(a.out[i].time_ns, b.out[i].time_ns);
        assert_string_equal(op_str(&a, a.out[i].signal), op_str(&b, b.out[i].signal));
        assert_string_equal(topic_of(&a, i), topic_of(&b, i));
        if (a.out[i].type == MR_VALUE_F64) {
            assert_true(a.out[i].v.f64 == b.out[i].v.f64);
        }
    }
    op_harness_close(&a);
    op_harness_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constants),      cmocka_unit_test(test_nist_individuals),
        cmocka_unit_test(test_xbar_r),         cmocka_unit_test(test_rules),
        cmocka_unit_test(test_rule_continues), cmocka_unit_test(test_capability),
        cmocka_unit_test(test_actions),        cmocka_unit_test(test_lathe_drift),
        cmocka_unit_test(test_config_errors),  cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
