/* Record expressions: values of a table of expressions over fixed records, compile errors with
 * their exact messages (column included), interning of compared literals and the per-name cache
 * of string functions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "engine/expr.h"
#include "millrace/names.h"

enum fixture {
    REC_NUM,  /* f64 21.5, plant1/line2/press3 temp, good, tags shift=night q=good */
    REC_TEXT, /* string "RUNNING", plant1/line2/press3 state, bad */
    REC_I64,  /* i64 42, plant2/line1/oven1 count, uncertain */
    REC_BOOL, /* bool true, plant1/line2/press3 running */
    NFIXTURES,
};

struct world {
    struct mr_names *names;
    struct mr_record rec[NFIXTURES];
};

static mr_name_id nm(struct world *w, const char *s)
{
    mr_name_id id = 0;
    assert_int_equal(mr_names_intern(w->names, s, strlen(s), &id), 0);
    return id;
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    assert_int_equal(mr_names_create(&w->names, 1u << 16, 1u << 22), 0);
    struct mr_record *r = &w->rec[REC_NUM];
    r->time_ns = 1000000000;
    r->asset = nm(w, "plant1/line2/press3");
    r->signal = nm(w, "temp");
    r->type = MR_VALUE_F64;
    r->v.f64 = 21.5;
    r->ntags = 2;
    r->tags[0] = (struct mr_tag){.key = nm(w, "shift"), .value = {.ptr = "night", .len = 5}};
    r->tags[1] = (struct mr_tag){.key = nm(w, "q"), .value = {.ptr = "good", .len = 4}};
    r = &w->rec[REC_TEXT];
    r->time_ns = 2000000000;
    r->asset = nm(w, "plant1/line2/press3");
    r->signal = nm(w, "state");
    r->type = MR_VALUE_STRING;
    r->quality = MR_QUALITY_BAD;
    r->v.str = (struct mr_bytes){.ptr = "RUNNING", .len = 7};
    r = &w->rec[REC_I64];
    r->asset = nm(w, "plant2/line1/oven1");
    r->signal = nm(w, "count");
    r->type = MR_VALUE_I64;
    r->quality = MR_QUALITY_UNCERTAIN;
    r->v.i64 = 42;
    r = &w->rec[REC_BOOL];
    r->asset = nm(w, "plant1/line2/press3");
    r->signal = nm(w, "running");
    r->type = MR_VALUE_BOOL;
    r->v.b = true;
}

static void world_fini(struct world *w)
{
    mr_names_destroy(w->names);
}

struct value_case {
    const char *src;
    enum fixture rec;
    double want; /* NAN: expect NaN */
};

static const struct value_case value_cases[] = {
    {"value > 20", REC_NUM, 1},
    {"value >= 21.5 and value <= 21.5", REC_NUM, 1},
    {"value < 21.5 || value > 21.5", REC_NUM, 0},
    {"value + 1 * 2", REC_NUM, 23.5},
    {"(value + 1) * 2", REC_NUM, 45},
    {"value - 1 - 0.5", REC_NUM, 20},
    {"-value", REC_NUM, -21.5},
    {"- -3", REC_NUM, 3},
    {"-(1 + 2) * 2", REC_NUM, -6},
    {"10 % 4", REC_NUM, 2},
    {"1.5e3 / 3", REC_NUM, 500},
    {".5 + 1", REC_NUM, 1.5},
    {"7 / 0", REC_NUM, NAN},
    {"7 % 0", REC_NUM, NAN},
    {"7 / 0 > 1", REC_NUM, 0},
    {"7 / 0 != 1", REC_NUM, 0},
    {"not (7 / 0 == 1)", REC_NUM, 1},
    {"abs(-3)", REC_NUM, 3},
    {"min(3, 1, 2)", REC_NUM, 1},
    {"max(1, 5, 2)", REC_NUM, 5},
    {"max(1, 0 / 0)", REC_NUM, NAN},
    {"sqrt(16)", REC_NUM, 4},
    {"sqrt(-1)", REC_NUM, NAN},
    {"abs(value - 20) >= 1.5", REC_NUM, 1},
    {"time == 1000000000", REC_NUM, 1},
    {"time / 1e9", REC_NUM, 1},
    {"true and not false", REC_NUM, 1},
    {"true && !false", REC_NUM, 1},
    {"false || 2", REC_NUM, 1},
    {"0 or 0", REC_NUM, 0},
    {"1 or 1 / 0 > 0", REC_NUM, 1},
    {"0 and 1 / 0 > 0", REC_NUM, 0},
    {"1 and 0 or 1", REC_NUM, 1},
    {"not 1 and 0", REC_NUM, 0},
    {"asset == 'plant1/line2/press3'", REC_NUM, 1},
    {"asset != 'plant1/line2/press3'", REC_NUM, 0},
    {"'plant1/line2/press3' == asset", REC_NUM, 1},
    {"asset == 'plant1/line2/press4'", REC_NUM, 0},
    {"asset == ''", REC_NUM, 0},
    {"signal == 'temp'", REC_NUM, 1},
    {"signal == \"temp\"", REC_NUM, 1},
    {"signal == 'state'", REC_TEXT, 1},
    {"quality == 'good'", REC_NUM, 1},
    {"quality != 'bad'", REC_TEXT, 0},
    {"quality == 'uncertain'", REC_I64, 1},
    {"quality == tags.q", REC_NUM, 1},
    {"asset < 'plant2'", REC_NUM, 1},
    {"asset >= 'plant2'", REC_I64, 1},
    {"asset == signal", REC_NUM, 0},
    {"startswith(asset, 'plant1/line2')", REC_NUM, 1},
    {"startswith(asset, 'plant1/line3')", REC_NUM, 0},
    {"endswith(asset, 'press3')", REC_NUM, 1},
    {"contains(asset, 'line2')", REC_NUM, 1},
    {"contains(asset, 'line9')", REC_NUM, 0},
    {"contains(signal, '')", REC_NUM, 1},
    {"match(asset, 'plant1/*/press*')", REC_NUM, 1},
    {"match(asset, 'plant1/*')", REC_NUM, 0},
    {"match(asset, 'plant1/**')", REC_NUM, 1},
    {"match(asset, '**/press?')", REC_NUM, 1},
    {"match(asset, '**press3')", REC_NUM, 1},
    {"match(asset, 'plant1/line2/press3')", REC_NUM, 1},
    {"match(asset, 'plant1/line2/press')", REC_NUM, 0},
    {"match(asset, '*')", REC_NUM, 0},
    {"match(asset, '**')", REC_NUM, 1},
    {"match(asset, 'plant?/line?/*3')", REC_NUM, 1},
    {"match(signal, 't*p')", REC_NUM, 1},
    {"match(tags.shift, 'n*t')", REC_NUM, 1},
    {"tags.shift == 'night'", REC_NUM, 1},
    {"tags.missing == ''", REC_NUM, 1},
    {"tag('shift') == 'night'", REC_NUM, 1},
    {"startswith(tags.shift, 'ni')", REC_NUM, 1},
    {"text == 'RUNNING'", REC_TEXT, 1},
    {"text == ''", REC_NUM, 1},
    {"text == 'it\\'s'", REC_NUM, 0},
    {"value == value", REC_TEXT, 0},
    {"value != 0", REC_TEXT, 0},
    {"value", REC_TEXT, NAN},
    {"value == 42", REC_I64, 1},
    {"value == 1", REC_BOOL, 1},
    {"value", REC_BOOL, 1},
};

static void test_values(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
        const struct value_case *c = &value_cases[i];
        struct mr_expr *e = NULL;
        struct mr_err err = {0};
        int rc = mr_expr_compile(&e, c->src, w.names, &err);
        if (rc != 0) {
            fail_msg("'%s' did not compile: %s", c->src, err.msg);
        }
        double got = mr_expr_eval(e, &w.rec[c->rec]);
        bool ok = isnan(c->want) ? isnan(got) : got == c->want;
        if (!ok) {
            fail_msg("'%s' gave %g, want %g", c->src, got, c->want);
        }
        assert_int_equal(mr_expr_test(e, &w.rec[c->rec]), !isnan(got) && got != 0);
        assert_string_equal(mr_expr_source(e), c->src);
        mr_expr_destroy(e);
        /* Compiling for checking only accepts the same text. */
        assert_int_equal(mr_expr_compile(&e, c->src, NULL, &err), 0);
        mr_expr_destroy(e);
    }
    world_fini(&w);
}

struct error_case {
    const char *src;
    const char *msg; /* exact */
};

static const struct error_case error_cases[] = {
    {"value >> 3", "expression 'value >> 3': unexpected '>' at column 8"},
    {"value >", "expression 'value >': unexpected end of expression at column 8"},
    {"value = 3", "expression 'value = 3': unexpected '=' (compare with '==') at column 7"},
    {"value & 1",
     "expression 'value & 1': unexpected '&' (use 'and' / 'or', or '&&' / '||') at column 7"},
    {"value @ 1", "expression 'value @ 1': unexpected '@' at column 7"},
    {"foo > 1", "expression 'foo > 1': unknown name 'foo' (known: value, time, text, signal, "
                "asset, quality, tags.NAME) at column 1"},
    {"bogus(1)", "expression 'bogus(1)': unknown function 'bogus' (known: abs, sqrt, min, max, "
                 "startswith, endswith, contains, match, tag) at column 1"},
    {"value == 'a'",
     "expression 'value == 'a'': cannot compare a number with a string at column 7"},
    {"asset + 1", "expression 'asset + 1': '+' needs numbers, not strings at column 7"},
    {"asset", "expression 'asset': the result is a string, not a condition (compare it: asset == "
              "'plant1/press3') at column 1"},
    {"abs(1, 2)", "expression 'abs(1, 2)': 'abs' takes 1 argument at column 1"},
    {"min(1)", "expression 'min(1)': 'min' takes at least 2 arguments at column 1"},
    {"startswith(value, 'a')", "expression 'startswith(value, 'a')': 'startswith' takes strings "
                               "at column 12"},
    {"match(asset, signal)", "expression 'match(asset, signal)': the pattern of 'match' must be a "
                             "quoted string at column 14"},
    {"tag(signal) == ''", "expression 'tag(signal) == ''': 'tag' takes a quoted tag name at "
                          "column 5"},
    {"'abc", "expression ''abc': unterminated string at column 1"},
    {"'a\\n' == text", "expression ''a\\n' == text': unknown escape (use \\', \\\" or \\\\) at "
                       "column 3"},
    {"quality == 'great'", "expression 'quality == 'great'': quality is 'good', 'uncertain' or "
                           "'bad', not 'great' at column 12"},
    {"1 < 2 < 3", "expression '1 < 2 < 3': comparisons do not chain: write 'a < b and b < c' at "
                  "column 7"},
    {"(value > 1", "expression '(value > 1': '(' is never closed at column 1"},
    {"(value > 1 1)", "expression '(value > 1 1)': unexpected '1' at column 12"},
    {"", "expression '': empty expression at column 1"},
    {"   ", "expression '   ': empty expression at column 1"},
    {"not asset", "expression 'not asset': 'not' needs a condition, not a string at column 1"},
    {"asset and 1", "expression 'asset and 1': 'and' needs conditions, not strings at column 7"},
    {"1 || signal", "expression '1 || signal': '||' needs conditions, not strings at column 3"},
    {"-asset == 1", "expression '-asset == 1': '-' needs a number at column 1"},
    {"1.2.3 > 0", "expression '1.2.3 > 0': bad number '1.2.3' at column 1"},
    {"10s > 0", "expression '10s > 0': bad number '10s' at column 1"},
    {"tags. == 'a'", "expression 'tags. == 'a'': tag name missing after 'tags.' at column 6"},
    {"value > 1)", "expression 'value > 1)': unexpected ')' at column 10"},
    {"max(1, 2", "expression 'max(1, 2': missing ')' after the arguments of 'max' at column 9"},
};

static void test_errors(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        const struct error_case *c = &error_cases[i];
        struct mr_expr *e = NULL;
        struct mr_err err = {0};
        int rc = mr_expr_compile(&e, c->src, w.names, &err);
        if (rc == 0) {
            fail_msg("'%s' compiled, but should not", c->src);
        }
        assert_null(e);
        if (strcmp(err.msg, c->msg) != 0) {
            fail_msg("'%s':\n got  %s\n want %s", c->src, err.msg, c->msg);
        }
        /* The check-only compile finds the same problem. */
        struct mr_err err2 = {0};
        assert_int_not_equal(mr_expr_compile(&e, c->src, NULL, &err2), 0);
        assert_string_equal(err2.msg, c->msg);
    }
    world_fini(&w);
}

static void test_limits(void **state)
{
    (void)state;
    struct mr_expr *e = NULL;
    struct mr_err err = {0};
    char deep[400];
    memset(deep, '(', 200);
    snprintf(deep + 200, sizeof(deep) - 200, "1");
    assert_int_equal(mr_expr_compile(&e, deep, NULL, &err), MR_ETOOBIG);
    assert_non_null(strstr(err.msg, "nested too deeply"));
    /* A long but flat expression: 1 + 1 + ... exceeds the code size, not the stack. */
    static char flat[4000];
    size_t n = 0;
    for (int i = 0; i < 600 && n + 8 < sizeof(flat); i++) {
        n += (size_t)snprintf(flat + n, sizeof(flat) - n, "%s1", i > 0 ? "+" : "");
    }
    assert_int_equal(mr_expr_compile(&e, flat, NULL, &err), MR_ETOOBIG);
    assert_non_null(strstr(err.msg, "too long"));
    static char huge[3000];
    memset(huge, '1', sizeof(huge) - 1);
    assert_int_equal(mr_expr_compile(&e, huge, NULL, &err), MR_ETOOBIG);
    /* Long source is shortened in messages. */
    static char longsrc[300];
    memset(longsrc, ' ', sizeof(longsrc) - 1);
    memcpy(longsrc + 200, "value >>", 8);
    assert_int_equal(mr_expr_compile(&e, longsrc, NULL, &err), MR_EPARSE);
    assert_non_null(strstr(err.msg, "...': unexpected '>' at column 208"));
}

static void test_literals_are_interned_once(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    const char *a = "plant9/never/seen";
    assert_int_equal(mr_names_find(w.names, a, strlen(a)), 0);
    struct mr_expr *e = NULL;
    struct mr_err err = {0};
    assert_int_equal(
        mr_expr_compile(&e, "asset == 'plant9/never/seen' or tags.batch == 'x'", w.names, &err), 0);
    mr_name_id id = mr_names_find(w.names, a, strlen(a));
    assert_int_not_equal(id, 0);
    assert_int_not_equal(mr_names_find(w.names, "batch", 5), 0);
    uint32_t count = mr_names_count(w.names);
    struct mr_record r = w.rec[REC_NUM];
    assert_false(mr_expr_test(e, &r));
    r.asset = id;
    assert_true(mr_expr_test(e, &r));
    assert_int_equal(mr_names_count(w.names), count); /* evaluating interns nothing */
    mr_expr_destroy(e);
    world_fini(&w);
}

/* The per-site cache of string functions on names must give the answer of a fresh computation
 * for every id, including ids that share a cache slot. */
static void test_name_cache_is_exact(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct mr_expr *e = NULL;
    struct mr_err err = {0};
    assert_int_equal(mr_expr_compile(&e,
                                     "startswith(asset, 'site/a') and not "
                                     "match(asset, '*/*/m?7')",
                                     w.names, &err),
                     0);
    struct mr_record r = w.rec[REC_NUM];
    char buf[64];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 300; i++) {
            snprintf(buf, sizeof(buf), "site/%s/m%d", i % 3 == 0 ? "a" : "b", i);
            r.asset = nm(&w, buf);
            bool want = i % 3 == 0 && !(i >= 10 && i < 100 && i % 10 == 7);
            if (mr_expr_test(e, &r) != want) {
                fail_msg("%s: got %d", buf, !want);
            }
        }
    }
    mr_expr_destroy(e);
    world_fini(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_literals_are_interned_once),
        cmocka_unit_test(test_name_cache_is_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
