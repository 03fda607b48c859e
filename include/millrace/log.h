/* Levelled diagnostic logging ("log" never means the journal).
 *
 * One process-wide logger: messages go to stderr (or a sink set by mr_log_set_sink, e.g. for
 * tests) as one line each: `2026-11-24T16:49:00.123Z WARN  [inputs.press_temp] message`.
 * The macros test the level before evaluating their arguments. Library code returns errors;
 * only the layer that knows the context logs them.
 */
#ifndef MILLRACE_LOG_H
#define MILLRACE_LOG_H

#include <stdint.h>

enum mr_log_level {
    MR_LOG_ERROR = 0,
    MR_LOG_WARN = 1,
    MR_LOG_INFO = 2,
    MR_LOG_DEBUG = 3,
    MR_LOG_TRACE = 4,
};

/* Sink for formatted lines (without trailing newline); default writes to stderr. */
typedef void (*mr_log_sink_cb)(enum mr_log_level level, const char *line, void *arg);

void mr_log_set_level(enum mr_log_level level);
enum mr_log_level mr_log_get_level(void);
/* Parse "error|warn|info|debug|trace"; returns 0 or MR_EINVAL. */
int mr_log_level_parse(const char *s, enum mr_log_level *out);
const char *mr_log_level_name(enum mr_log_level level);
/* sink NULL restores stderr. */
void mr_log_set_sink(mr_log_sink_cb sink, void *arg);

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
void mr_log_write(enum mr_log_level level, const char *component, const char *file, int line,
                  const char *fmt, ...);

/* Rate limiting for repeated messages: a caller-owned state per message site. At most `burst`
 * messages per `interval_ms`; when messages were suppressed, the next one that passes says how
 * many. Returns the number suppressed since the last pass (>= 0) when the message may be
 * written, or -1 when it must be dropped. */
struct mr_log_ratelimit {
    int64_t window_start_ms;
    uint32_t in_window;
    uint32_t suppressed;
};
long mr_log_ratelimit_pass(struct mr_log_ratelimit *rl, uint32_t burst, uint32_t interval_ms);

#define MR_LOGC(level, component, ...)                                                             \
    do {                                                                                           \
        if ((level) <= mr_log_get_level()) {                                                       \
            mr_log_write((level), (component), __FILE__, __LINE__, __VA_ARGS__);                   \
        }                                                                                          \
    } while (0)

/* A message that may repeat per record or batch: at most 10 per 10 s through state rl (the
 * next one that passes says how many were suppressed). */
#define MR_LOG_RL(rl, level, component, ...)                                                       \
    do {                                                                                           \
        if ((level) <= mr_log_get_level() && mr_log_ratelimit_pass((rl), 10, 10000) >= 0) {        \
            mr_log_write((level), (component), __FILE__, __LINE__, __VA_ARGS__);                   \
        }                                                                                          \
    } while (0)

#define MR_LOG_ERROR(component, ...) MR_LOGC(MR_LOG_ERROR, component, __VA_ARGS__)
#define MR_LOG_WARN(component, ...)  MR_LOGC(MR_LOG_WARN, component, __VA_ARGS__)
#define MR_LOG_INFO(component, ...)  MR_LOGC(MR_LOG_INFO, component, __VA_ARGS__)
#define MR_LOG_DEBUG(component, ...) MR_LOGC(MR_LOG_DEBUG, component, __VA_ARGS__)

#endif
