/* The line protocol parser alone (lineproto.h): its float parser against strtod bit for bit on
 * edge cases and a million random texts (the fast exact path must never differ from strtod,
 * nor accept or refuse differently), and a table of lines through the byte-class scanner
 * (escapes, booleans, numbers, errors with their column). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/lineproto.h"

/* What the parser must answer for text[0..len): strtod's value when strtod takes all of it,
 * only characters of a number are present (at least one digit) and the value is finite. */
static int reference(const char *p, size_t len, double *out)
{
    char text[128];
    bool digit = false;
    if (len == 0 || len >= 72) {
        return MR_EPARSE;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            digit = true;
        } else if (strchr(".eE+-", p[i]) == NULL || p[i] == '\0') {
            return MR_EPARSE;
        }
    }
    if (!digit) {
        return MR_EPARSE;
    }
    memcpy(text, p, len);
    text[len] = '\0';
    char *end;
    double v = strtod(text, &end);
    if (end != text + len) {
        return MR_EPARSE;
    }
    if (!isfinite(v)) {
        return MR_ERANGE;
    }
    *out = v;
    return 0;
}

static void check_float(const char *p, size_t len)
{
    double want = 0, got = 0;
    int wrc = reference(p, len, &want);
    int grc = mr_lineproto_parse_float(p, len, &got);
    if (wrc != grc || (wrc == 0 && memcmp(&want, &got, sizeof(double)) != 0)) {
        fail_msg("'%.*s': strtod says rc %d value %.17g, parser rc %d value %.17g", (int)len, p,
                 wrc, want, grc, got);
    }
}

static void test_float_edges(void **state)
{
    (void)state;
    static const char *const cases[] = {"0",
                                        "-0",
                                        "0.0",
                                        "-0.0",
                                        "00",
                                        "007",
                                        "0.",
                                        ".0",
                                        ".5",
                                        "-.5",
                                        "5.",
                                        "1",
                                        "-1",
                                        "1.5",
                                        "21.53",
                                        "3.0125",
                                        "11873.0",
                                        "0.1",
                                        "0.2",
                                        "0.3",
                                        "1e0",
                                        "1e22",
                                        "1e23",
                                        "1e-22",
                                        "1e-23",
                                        "9007199254740992",
                                        "9007199254740993",
                                        "9007199254740991",
                                        "18446744073709551615",
                                        "18446744073709551616",
                                        "1234567890123456789",
                                        "12345678901234567890",
                                        "0.1234567890123456789",
                                        "0.00000000000000000000000001",
                                        "1.7976931348623157e308",
                                        "1.8e308",
                                        "-1.8e308",
                                        "4.9e-324",
                                        "2.5e-324",
                                        "1e-400",
                                        "1e400",
                                        "1e+5",
                                        "1E5",
                                        "1e-5",
                                        "1e",
                                        "1e+",
                                        "1e-",
                                        "e5",
                                        "-",
                                        "+",
                                        "+1",
                                        "++1",
                                        "--1",
                                        "1-",
                                        "1+1",
                                        "1.2.3",
                                        "1..2",
                                        ".",
                                        "-.",
                                        "1e5.5",
                                        "1e99999",
                                        "1e00000000001",
                                        "0e999999",
                                        "123456789012345678e-5",
                                        "9999999999999999999",
                                        "99999999999999999999e-20",
                                        "0.000000000000000000000000000000000000000000000000001",
                                        "3.14159265358979323846",
                                        "2.2250738585072014e-308",
                                        "2.2250738585072011e-308",
                                        "100000000000000000000000",
                                        "1.0000000000000000000000000000001",
                                        "-9007199254740992e22",
                                        "9007199254740992e-22",
                                        "1e-7",
                                        "123.456e-2",
                                        "0x10",
                                        "nan",
                                        "inf",
                                        "",
                                        "1 ",
                                        "1,"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_float(cases[i], strlen(cases[i]));
    }
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A decimal in the forms gateways send (and some they do not): sign, digits, point, digits,
 * exponent, with leading and trailing zeros and up to 25 digits. */
static size_t random_decimal(char *out, uint64_t *rng)
{
    size_t k = 0;
    uint64_t r = rng_next(rng);
    if (r % 4 == 0) {
        out[k++] = '-';
    }
    size_t idigits = (size_t)(rng_next(rng) % 14), fdigits = (size_t)(rng_next(rng) % 14);
    if (r % 7 == 0) {
        out[k++] = '0';
    }
    for (size_t i = 0; i < idigits; i++) {
        out[k++] = (char)('0' + rng_next(rng) % 10);
    }
    if (r % 3 != 0) {
        out[k++] = '.';
        for (size_t i = 0; i < fdigits; i++) {
            out[k++] = (char)('0' + (r % 11 == 0 ? 0 : rng_next(rng) % 10));
        }
    }
    if (r % 5 == 0) {
        out[k++] = (r >> 8) % 2 ? 'e' : 'E';
        if ((r >> 9) % 3 != 0) {
            out[k++] = (r >> 10) % 2 ? '-' : '+';
        }
        size_t edigits = 1 + (size_t)((r >> 12) % 3);
        for (size_t i = 0; i < edigits; i++) {
            out[k++] = (char)('0' + rng_next(rng) % (i == 0 ? 4 : 10));
        }
    }
    if (k == 0) {
        out[k++] = '7';
    }
    return k;
}

/* Any mix of the characters a float may hold: most do not parse, and both must agree. */
static size_t random_chars(char *out, uint64_t *rng)
{
    static const char set[] = "0123456789.eE+-";
    size_t n = 1 + (size_t)(rng_next(rng) % 12);
    for (size_t i = 0; i < n; i++) {
        out[i] = set[rng_next(rng) % (sizeof(set) - 1)];
    }
    return n;
}

static void test_float_random(void **state)
{
    (void)state;
    uint64_t rng = 0x2545f4914f6cdd1dull;
    char text[80];
    size_t fast = 0;
    for (long i = 0; i < 1100000; i++) {
        size_t n = i % 8 == 7 ? random_chars(text, &rng) : random_decimal(text, &rng);
        check_float(text, n);
        double v;
        fast += mr_lineproto_parse_float(text, n, &v) == 0;
    }
    /* Every random double printed with %.17g (the shortest round trip, exponents included). */
    for (long i = 0; i < 100000; i++) {
        uint64_t bits = rng_next(&rng);
        double d;
        memcpy(&d, &bits, sizeof(d));
        if (!isfinite(d)) {
            continue;
        }
        int n = snprintf(text, sizeof(text), i % 2 ? "%.17g" : "%.6f", d);
        check_float(text, (size_t)n);
    }
    assert_true(fast > 500000);
}

struct line_case {
    const char *line;
    int rc;
    const char *measurement;
    size_t ntags;
    const char *tag0; /* key=value of the first tag */
    size_t nfields;
    const char *field0; /* key of the first field */
    int type0;
    double value0; /* float, int, uint or bool as a number */
    const char *err;
};

static const struct line_case line_cases[] = {
    {"m f=1", 0, "m", 0, NULL, 1, "f", MR_LP_FLOAT, 1, NULL},
    {"m,a=b f=1.5,g=2i 10", 0, "m", 1, "a=b", 2, "f", MR_LP_FLOAT, 1.5, NULL},
    {"my\\ m\\,x,k\\=1=v\\ w f\\,g=3u", 0, "my m,x", 1, "k=1=v w", 1, "f,g", MR_LP_UINT, 3, NULL},
    {"m\\=x f=1", 0, "m\\=x", 0, NULL, 1, "f", MR_LP_FLOAT, 1, NULL},
    {"m,a=b\\c f=1", 0, "m", 1, "a=b\\c", 1, "f", MR_LP_FLOAT, 1, NULL},
    {"m f=t", 0, "m", 0, NULL, 1, "f", MR_LP_BOOL, 1, NULL},
    {"m f=FALSE", 0, "m", 0, NULL, 1, "f", MR_LP_BOOL, 0, NULL},
    {"m f=True", 0, "m", 0, NULL, 1, "f", MR_LP_BOOL, 1, NULL},
    {"m f=tRUE", MR_EPARSE, NULL, 0, NULL, 0, NULL, 0, 0, "column 5"},
    {"m f=-12i", 0, "m", 0, NULL, 1, "f", MR_LP_INT, -12, NULL},
    {"m f=-0.0125e2", 0, "m", 0, NULL, 1, "f", MR_LP_FLOAT, -1.25, NULL},
    {"m f=\"a \\\"b\\\\\"", 0, "m", 0, NULL, 1, "f", MR_LP_STRING, 0, NULL},
    {"# comment", MR_LP_EMPTY, NULL, 0, NULL, 0, NULL, 0, 0, NULL},
    {"   ", MR_LP_EMPTY, NULL, 0, NULL, 0, NULL, 0, 0, NULL},
    {"m f=nan", MR_EPARSE, NULL, 0, NULL, 0, NULL, 0, 0, "column 5"},
    {"m f=1e999", MR_ERANGE, NULL, 0, NULL, 0, NULL, 0, 0, "column 5"},
    {"m,a f=1", MR_EPARSE, NULL, 0, NULL, 0, NULL, 0, 0, "column 3"},
    {"m,a= f=1", MR_EPARSE, NULL, 0, NULL, 0, NULL, 0, 0, "column 5"},
    {",a=b f=1", MR_EPARSE, NULL, 0, NULL, 0, NULL, 0, 0, "measurement"},
    {"m f=1 x", MR_EPARSE, NULL, 0, NULL, 0, NULL, 0, 0, "timestamp"},
    {"m f=1 1 2", MR_EPARSE, NULL, 0, NULL, 0, NULL, 0, 0, "column 9"},
};

static void test_lines(void **state)
{
    (void)state;
    static struct mr_lp_point pt;
    for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
        const struct line_case *tc = &line_cases[i];
        char scratch[128];
        struct mr_err err = {0};
        int rc = mr_lineproto_parse_line(tc->line, strlen(tc->line), MR_LP_NS, &pt, scratch,
                                         sizeof(scratch), &err);
        if (rc != tc->rc) {
            fail_msg("'%s': rc %d, want %d (%s)", tc->line, rc, tc->rc, err.msg);
        }
        if (tc->err != NULL && strstr(err.msg, tc->err) == NULL) {
            fail_msg("'%s': error '%s' does not say '%s'", tc->line, err.msg, tc->err);
        }
        if (rc != 0) {
            continue;
        }
        assert_int_equal(pt.measurement.len, strlen(tc->measurement));
        assert_memory_equal(pt.measurement.ptr, tc->measurement, pt.measurement.len);
        assert_int_equal(pt.ntags, tc->ntags);
        if (tc->ntags > 0) {
            char kv[64];
            snprintf(kv, sizeof(kv), "%.*s=%.*s", (int)pt.tags[0].key.len, pt.tags[0].key.ptr,
                     (int)pt.tags[0].value.len, pt.tags[0].value.ptr);
            assert_string_equal(kv, tc->tag0);
        }
        assert_int_equal(pt.nfields, tc->nfields);
        assert_int_equal(pt.fields[0].key.len, strlen(tc->field0));
        assert_memory_equal(pt.fields[0].key.ptr, tc->field0, pt.fields[0].key.len);
        assert_int_equal(pt.fields[0].type, tc->type0);
        switch (tc->type0) {
        case MR_LP_FLOAT:
            assert_true(pt.fields[0].v.f == tc->value0);
            break;
        case MR_LP_INT:
            assert_true((double)pt.fields[0].v.i == tc->value0);
            break;
        case MR_LP_UINT:
            assert_true((double)pt.fields[0].v.u == tc->value0);
            break;
        case MR_LP_BOOL:
            assert_int_equal(pt.fields[0].v.b, tc->value0 != 0);
            break;
        default:
            assert_int_equal(pt.fields[0].v.s.len, 5);
            assert_memory_equal(pt.fields[0].v.s.ptr, "a \"b\\", 5);
            break;
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_edges),
        cmocka_unit_test(test_float_random),
        cmocka_unit_test(test_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
