/* Clocks.
 *
 * Monotonic time measures intervals (timeouts, rate limits, latencies) and never jumps; wall time
 * (CLOCK_REALTIME) stamps what a person reads (log lines, record timestamps) and may jump when
 * the system clock is set. All values are nanoseconds or milliseconds since the clock's epoch
 * (boot for monotonic, 1970-01-01 UTC for wall).
 */
#ifndef MILLRACE_CLOCK_H
#define MILLRACE_CLOCK_H

#include <stdint.h>

/* Monotonic time in nanoseconds. */
int64_t mr_clock_mono_ns(void);
/* Monotonic time in milliseconds. */
int64_t mr_clock_mono_ms(void);
/* Wall-clock time (Unix epoch, UTC) in nanoseconds. */
int64_t mr_clock_wall_ns(void);
/* Wall clock in ms since the epoch (Kafka record timestamps). */
int64_t mr_clock_wall_ms(void);
/* Sleep at least ns nanoseconds (resumes after signals); ns <= 0 returns at once. */
void mr_clock_sleep_ns(int64_t ns);

#endif
