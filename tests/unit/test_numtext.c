/* mr_double_text (src/core/numtext.c): every double it writes reads back bit for bit, across
 * short decimals (the fast path), random bit patterns, integers near 2^53, subnormals and
 * signed zero; short decimals come out as a person writes them; a small buffer is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/numtext.h"

static void assert_reads_back(double v)
{
    char buf[32];
    int n = mr_double_text(v, buf, sizeof(buf));
    assert_true(n > 0 && (size_t)n == strlen(buf));
    double back = strtod(buf, NULL);
    if (memcmp(&back, &v, sizeof(v)) != 0) {
        fail_msg("%.17g written as \"%s\" reads back as %.17g", v, buf, back);
    }
}

static void test_text_of_plant_values(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {21.53, "21.53"},
        {0, "0"},
        {-0.0, "-0"},
        {42, "42"},
        {-4, "-4"},
        {0.001, "0.001"},
        {-0.05, "-0.05"},
        {12.5, "12.5"},
        {1e-9, "0.000000001"},
        {123456.789, "123456.789"},
        {1e15, "1000000000000000"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1e300, "1e+300"},
        {9007199254740993.0, "9007199254740992"},
        {1.5e-10, "1.5e-10"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        int n = mr_double_text(cases[i].v, buf, sizeof(buf));
        if (n < 0 || strcmp(buf, cases[i].text) != 0) {
            fail_msg("%.17g: \"%s\", want \"%s\"", cases[i].v, buf, cases[i].text);
        }
        assert_reads_back(cases[i].v);
    }
}

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_round_trip(void **state)
{
    (void)state;
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 300000; i++) {
        uint64_t bits = next(&s);
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (isfinite(v)) {
            assert_reads_back(v); /* any bit pattern */
        }
        /* decimals as sensors give them: up to 9 places, a wide range of magnitudes */
        int places = (int)(next(&s) % 10);
        double scaled = (double)(int64_t)(next(&s) % 2000000000000ULL) - 1e12;
        assert_reads_back(scaled / pow(10, places));
        assert_reads_back((double)(int64_t)(next(&s) >> 10) * ((i & 1) ? 1 : -1));
    }
    static const double edges[] = {5e-324,
                                   -5e-324,
                                   2.2250738585072014e-308,
                                   1.7976931348623157e308,
                                   9007199254740991.0,
                                   9007199254740992.0,
                                   0.5,
                                   1e-10,
                                   99.99};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        assert_reads_back(edges[i]);
    }
}

static void test_small_buffer_and_non_finite(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(mr_double_text(21.53, buf, 5), -1); /* "21.53" needs 6 */
    assert_int_equal(mr_double_text(21.53, buf, 6), 5);
    assert_int_equal(mr_double_text(0.1 + 0.2, buf, 8), -1);
    assert_true(mr_double_text(NAN, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "nan");
    assert_true(mr_double_text(-INFINITY, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "-inf");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_of_plant_values),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_small_buffer_and_non_finite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
