/* Clocks: monotonic time never goes back, wall time is the calendar time, sleeps are not short. */
/* cmocka needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "millrace/clock.h"

#include <time.h>

static void test_mono_non_decreasing(void **state)
{
    (void)state;
    int64_t prev = mr_clock_mono_ns();
    assert_true(prev > 0);
    for (int i = 0; i < 100000; i++) {
        const int64_t now = mr_clock_mono_ns();
        assert_true(now >= prev);
        prev = now;
    }
}

static void test_mono_ms_matches_ns(void **state)
{
    (void)state;
    const int64_t ns_before = mr_clock_mono_ns();
    const int64_t ms = mr_clock_mono_ms();
    const int64_t ns_after = mr_clock_mono_ns();
    assert_true(ms >= ns_before / 1000000);
    assert_true(ms <= ns_after / 1000000);
}

static void test_wall_close_to_time(void **state)
{
    (void)state;
    const time_t before = time(NULL);
    const int64_t wall = mr_clock_wall_ns();
    const time_t after = time(NULL);
    /* time() truncates to whole seconds, so the wall clock lies in [before, after + 1). */
    assert_true(wall >= (int64_t)before * 1000000000);
    assert_true(wall < ((int64_t)after + 1) * 1000000000);
}

static void test_sleep(void **state)
{
    (void)state;
    static const struct {
        int64_t ns;
        int64_t min_ns;
    } cases[] = {
        {-5, 0}, {0, 0}, {1000, 1000}, {5000000, 5000000}, {20000000, 20000000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const int64_t start = mr_clock_mono_ns();
        mr_clock_sleep_ns(cases[i].ns);
        const int64_t elapsed = mr_clock_mono_ns() - start;
        assert_true(elapsed >= cases[i].min_ns);
        /* Generous upper bound: catches unit mistakes (ms taken as s), not scheduler jitter. */
        assert_true(elapsed < cases[i].min_ns + 500000000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mono_non_decreasing),
        cmocka_unit_test(test_mono_ms_matches_ns),
        cmocka_unit_test(test_wall_close_to_time),
        cmocka_unit_test(test_sleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
