/* Levelled diagnostic logging.
 *
 * Each message becomes one line, `<UTC timestamp> <LEVEL> [component] message[ (file:line)]`,
 * assembled on the stack and handed to the sink in one call; the default sink writes it to
 * stderr with a single write(), so lines from threads (and from processes sharing the terminal
 * or a pipe, for lines up to PIPE_BUF) never interleave. Control characters in the component and
 * message are escaped so that text from outside (a peer's error string, a config value) cannot
 * forge extra log lines.
 */
#include "millrace/log.h"

#include "millrace/clock.h"
#include "millrace/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Longest line handed to a sink, including the NUL; longer messages end in "...". 4096 is
 * PIPE_BUF on Linux, so a default-sink line is written atomically even to a pipe. */
#define LOG_LINE_MAX 4096
#define LOG_ELLIPSIS "..."

static atomic_int log_level = MR_LOG_INFO;

/* The sink and its argument change together, so both are read and written under one lock; the
 * sink is called with the lock held, which also serialises lines from all threads. */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static mr_log_sink_cb sink_cb = NULL;
static void *sink_arg = NULL;

/* Set while this thread is inside a sink: a sink that logs would deadlock on sink_lock, so
 * such nested messages are dropped instead. */
static _Thread_local bool in_sink = false;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};
static const char *const level_tags[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

static enum mr_log_level level_clamp(enum mr_log_level level)
{
    if ((int)level < (int)MR_LOG_ERROR) {
        return MR_LOG_ERROR;
    }
    if ((int)level > (int)MR_LOG_TRACE) {
        return MR_LOG_TRACE;
    }
    return level;
}

void mr_log_set_level(enum mr_log_level level)
{
    atomic_store_explicit(&log_level, (int)level_clamp(level), memory_order_relaxed);
}

enum mr_log_level mr_log_get_level(void)
{
    return (enum mr_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

int mr_log_level_parse(const char *s, enum mr_log_level *out)
{
    if (s == NULL || out == NULL) {
        return MR_EINVAL;
    }
    for (int i = MR_LOG_ERROR; i <= MR_LOG_TRACE; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum mr_log_level)i;
            return 0;
        }
    }
    return MR_EINVAL;
}

const char *mr_log_level_name(enum mr_log_level level)
{
    if ((int)level < (int)MR_LOG_ERROR || (int)level > (int)MR_LOG_TRACE) {
        return "unknown";
    }
    return level_names[level];
}

void mr_log_set_sink(mr_log_sink_cb sink, void *arg)
{
    pthread_mutex_lock(&sink_lock);
    sink_cb = sink;
    sink_arg = sink == NULL ? NULL : arg;
    pthread_mutex_unlock(&sink_lock);
}

/* A line under construction. line_limit keeps room for the ellipsis, a newline and the NUL. */
struct line {
    char buf[LOG_LINE_MAX + 1];
    size_t len;
    bool truncated;
};

static const size_t line_limit = LOG_LINE_MAX - sizeof(LOG_ELLIPSIS);

static void line_putn(struct line *l, const char *s, size_t n)
{
    if (l->truncated) {
        return;
    }
    if (n > line_limit - l->len) {
        n = line_limit - l->len;
        l->truncated = true;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Append all of s or, when it does not fit, nothing (for escapes, which must not be cut). */
static void line_put_whole(struct line *l, const char *s, size_t n)
{
    if (!l->truncated && n > line_limit - l->len) {
        l->truncated = true;
    }
    line_putn(l, s, n);
}

static void line_puts(struct line *l, const char *s)
{
    line_putn(l, s, strlen(s));
}

/* Append s with control characters escaped (\n, \r, \t, \xHH) so one message stays one line.
 * An escape is never split by truncation. */
static void line_put_escaped(struct line *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && !l->truncated; p++) {
        const unsigned char c = *p;
        if (c >= 0x20 && c != 0x7f) {
            line_putn(l, (const char *)p, 1);
        } else if (c == '\n') {
            line_put_whole(l, "\\n", 2);
        } else if (c == '\r') {
            line_put_whole(l, "\\r", 2);
        } else if (c == '\t') {
            line_put_whole(l, "\\t", 2);
        } else {
            const char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 0xf]};
            line_put_whole(l, esc, sizeof(esc));
        }
    }
}

static void line_put_timestamp(struct line *l)
{
    const int64_t ns = mr_clock_wall_ns();
    const time_t secs = (time_t)(ns / 1000000000);
    const int ms = (int)((ns % 1000000000) / 1000000);
    struct tm tm;
    char date[32];
    char stamp[48];

    if (gmtime_r(&secs, &tm) == NULL ||
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        line_puts(l, "0000-00-00T00:00:00.000Z");
        return;
    }
    const int n = snprintf(stamp, sizeof(stamp), "%s.%03dZ", date, ms);
    if (n > 0) {
        line_putn(l, stamp, (size_t)n < sizeof(stamp) ? (size_t)n : sizeof(stamp) - 1);
    }
}

/* Write all of buf to stderr with one write() in the normal case; a short write (only possible
 * past PIPE_BUF or on a full disk) continues, and an error drops the line: there is nowhere
 * left to report it. */
static void stderr_write(const char *buf, size_t len)
{
    while (len > 0) {
        const ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

#if defined(__GNUC__)
__attribute__((format(printf, 6, 0)))
#endif
static void
line_format(struct line *l, enum mr_log_level level, const char *component, const char *file,
            int lineno, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX];
    char tag[8];

    line_put_timestamp(l);
    (void)snprintf(tag, sizeof(tag), " %-5s ", level_tags[level]);
    line_puts(l, tag);
    if (component != NULL) {
        line_putn(l, "[", 1);
        line_put_escaped(l, component);
        line_putn(l, "] ", 2);
    }
    const int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0) {
        line_puts(l, "(message formatting failed)");
    } else {
        line_put_escaped(l, msg);
        /* vsnprintf cut the message itself: say so like any other long line. */
        if ((size_t)n >= sizeof(msg)) {
            l->truncated = true;
        }
    }
    if (level >= MR_LOG_DEBUG && file != NULL) {
        char where[256];
        if (snprintf(where, sizeof(where), " (%s:%d)", file, lineno) > 0) {
            line_put_escaped(l, where);
        }
    }
    if (l->truncated) {
        memcpy(l->buf + l->len, LOG_ELLIPSIS, sizeof(LOG_ELLIPSIS) - 1);
        l->len += sizeof(LOG_ELLIPSIS) - 1;
    }
    l->buf[l->len] = '\0';
}

void mr_log_write(enum mr_log_level level, const char *component, const char *file, int line,
                  const char *fmt, ...)
{
    /* Logging must not disturb the caller's errno: it often logs and then inspects it. */
    const int saved_errno = errno;
    struct line l = {.len = 0, .truncated = false};
    va_list ap;

    if (in_sink || fmt == NULL) {
        goto out;
    }
    level = level_clamp(level);
    if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed)) {
        goto out;
    }
    va_start(ap, fmt);
    line_format(&l, level, component, file, line, fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&sink_lock);
    if (sink_cb != NULL) {
        in_sink = true;
        sink_cb(level, l.buf, sink_arg);
        in_sink = false;
    } else {
        l.buf[l.len] = '\n';
        stderr_write(l.buf, l.len + 1);
    }
    pthread_mutex_unlock(&sink_lock);
out:
    errno = saved_errno;
}

long mr_log_ratelimit_pass(struct mr_log_ratelimit *rl, uint32_t burst, uint32_t interval_ms)
{
    if (rl == NULL) {
        return 0;
    }
    const int64_t now = mr_clock_mono_ms();
    /* A zeroed state starts a window at once; so does a state from before a clock anomaly. */
    if (now - rl->window_start_ms >= (int64_t)interval_ms || now < rl->window_start_ms ||
        rl->window_start_ms == 0) {
        rl->window_start_ms = now;
        rl->in_window = 0;
    }
    if (rl->in_window < burst) {
        rl->in_window++;
        const long suppressed = (long)rl->suppressed;
        rl->suppressed = 0;
        return suppressed;
    }
    if (rl->suppressed < UINT32_MAX) {
        rl->suppressed++;
    }
    return -1;
}
