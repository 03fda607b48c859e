#include "millrace/clock.h"

#include <errno.h>
#include <time.h>

#define NS_PER_SEC INT64_C(1000000000)
#define NS_PER_MS  INT64_C(1000000)

static int64_t clock_read_ns(clockid_t id)
{
    struct timespec ts;
    /* clock_gettime cannot fail for these clock ids on Linux; a zero reading is a safe answer
     * should it ever happen, so callers need no error path on the hot path. */
    if (clock_gettime(id, &ts) != 0) {
        return 0;
    }
    return (int64_t)ts.tv_sec * NS_PER_SEC + (int64_t)ts.tv_nsec;
}

int64_t mr_clock_mono_ns(void)
{
    return clock_read_ns(CLOCK_MONOTONIC);
}

int64_t mr_clock_mono_ms(void)
{
    return mr_clock_mono_ns() / NS_PER_MS;
}

int64_t mr_clock_wall_ns(void)
{
    return clock_read_ns(CLOCK_REALTIME);
}

int64_t mr_clock_wall_ms(void)
{
    return mr_clock_wall_ns() / NS_PER_MS;
}

void mr_clock_sleep_ns(int64_t ns)
{
    if (ns <= 0) {
        return;
    }
    struct timespec req = {.tv_sec = (time_t)(ns / NS_PER_SEC), .tv_nsec = (long)(ns % NS_PER_SEC)};
    struct timespec rem;
    /* Restart with the remaining time when a signal interrupts, so the sleep is never short. */
    while (nanosleep(&req, &rem) != 0 && errno == EINTR) {
        req = rem;
    }
}
