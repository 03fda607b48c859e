/* Logging: level filtering (arguments not evaluated below the level), line format, sinks,
 * escaping, truncation, level names, rate limiting, and whole lines from concurrent threads. */
/* cmocka needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "millrace/clock.h"
#include "millrace/error.h"
#include "millrace/log.h"

#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- capture sink ---- */

#define CAPTURE_MAX 16

struct capture {
    int count;
    enum mr_log_level levels[CAPTURE_MAX];
    char lines[CAPTURE_MAX][4200];
};

static void capture_sink(enum mr_log_level level, const char *line, void *arg)
{
    struct capture *c = arg;
    if (c->count < CAPTURE_MAX) {
        c->levels[c->count] = level;
        (void)snprintf(c->lines[c->count], sizeof(c->lines[0]), "%s", line);
    }
    c->count++;
}

static int setup(void **state)
{
    struct capture *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return -1;
    }
    mr_log_set_sink(capture_sink, c);
    mr_log_set_level(MR_LOG_INFO);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    mr_log_set_sink(NULL, NULL);
    mr_log_set_level(MR_LOG_INFO);
    free(*state);
    return 0;
}

static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    const int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (rc != 0) {
        fail_msg("line '%s' does not match /%s/", text, pattern);
    }
}

/* ---- stderr capture through a temp file ---- */

struct stderr_capture {
    int saved;
    int fd;
};

static void stderr_capture_start(struct stderr_capture *sc)
{
    char path[] = "/tmp/millrace-test-log-XXXXXX";
    sc->fd = mkstemp(path);
    assert_true(sc->fd >= 0);
    unlink(path);
    fflush(stderr);
    sc->saved = dup(STDERR_FILENO);
    assert_true(sc->saved >= 0);
    assert_true(dup2(sc->fd, STDERR_FILENO) >= 0);
}

/* Restores stderr and returns what was written (malloc'd, NUL-terminated). */
static char *stderr_capture_stop(struct stderr_capture *sc)
{
    assert_true(dup2(sc->saved, STDERR_FILENO) >= 0);
    close(sc->saved);
    const off_t size = lseek(sc->fd, 0, SEEK_END);
    assert_true(size >= 0);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(pread(sc->fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    close(sc->fd);
    return buf;
}

/* ---- tests ---- */

static int evaluations;

static int touch(void)
{
    evaluations++;
    return evaluations;
}

static void test_level_filtering(void **state)
{
    struct capture *c = *state;
    for (int set = MR_LOG_ERROR; set <= MR_LOG_TRACE; set++) {
        for (int msg = MR_LOG_ERROR; msg <= MR_LOG_TRACE; msg++) {
            mr_log_set_level((enum mr_log_level)set);
            assert_int_equal(mr_log_get_level(), set);
            c->count = 0;
            evaluations = 0;
            MR_LOGC((enum mr_log_level)msg, "t", "value %d", touch());
            const int expected = msg <= set ? 1 : 0;
            assert_int_equal(evaluations, expected);
            assert_int_equal(c->count, expected);
            if (expected) {
                assert_int_equal(c->levels[0], msg);
            }
        }
    }
}

static void test_macros(void **state)
{
    struct capture *c = *state;
    mr_log_set_level(MR_LOG_DEBUG);
    MR_LOG_ERROR("a", "e%d", 1);
    MR_LOG_WARN("a", "w%d", 2);
    MR_LOG_INFO("a", "i%d", 3);
    MR_LOG_DEBUG("a", "d%d", 4);
    assert_int_equal(c->count, 4);
    assert_matches(c->lines[0], " ERROR \\[a\\] e1$");
    assert_matches(c->lines[1], " WARN  \\[a\\] w2$");
    assert_matches(c->lines[2], " INFO  \\[a\\] i3$");
    assert_matches(c->lines[3], " DEBUG \\[a\\] d4 \\(.*test_log\\.c:[0-9]+\\)$");
}

static void test_direct_write_is_filtered(void **state)
{
    struct capture *c = *state;
    mr_log_set_level(MR_LOG_WARN);
    mr_log_write(MR_LOG_INFO, "x", __FILE__, __LINE__, "dropped");
    mr_log_write(MR_LOG_WARN, "x", __FILE__, __LINE__, "kept");
    assert_int_equal(c->count, 1);
    assert_matches(c->lines[0], "kept$");
}

static void test_format(void **state)
{
    struct capture *c = *state;
    static const struct {
        enum mr_log_level level;
        const char *component;
        const char *pattern;
    } cases[] = {
        {MR_LOG_ERROR, "inputs.press_temp", " ERROR \\[inputs\\.press_temp\\] hello 42$"},
        {MR_LOG_WARN, "inputs.press_temp", " WARN  \\[inputs\\.press_temp\\] hello 42$"},
        {MR_LOG_INFO, NULL, "Z INFO  hello 42$"},
        {MR_LOG_DEBUG, "c", " DEBUG \\[c\\] hello 42 \\(src/x\\.c:77\\)$"},
        {MR_LOG_TRACE, NULL, "Z TRACE hello 42 \\(src/x\\.c:77\\)$"},
    };
    const char *stamp = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z ";

    mr_log_set_level(MR_LOG_TRACE);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c->count = 0;
        mr_log_write(cases[i].level, cases[i].component, "src/x.c", 77, "hello %d", 42);
        assert_int_equal(c->count, 1);
        assert_matches(c->lines[0], stamp);
        assert_matches(c->lines[0], cases[i].pattern);
    }

    /* The timestamp is UTC wall time, now. */
    struct tm tm = {0};
    const char *rest = strptime(c->lines[0], "%Y-%m-%dT%H:%M:%S", &tm);
    assert_non_null(rest);
    const time_t logged = timegm(&tm);
    /* Not time(): glibc reads a coarse clock for it that can still show the previous second
     * when the line was stamped from CLOCK_REALTIME just after the second turned. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const time_t now = ts.tv_sec;
    assert_true(logged <= now && now - logged <= 2);
}

static void test_escaping(void **state)
{
    struct capture *c = *state;
    mr_log_write(MR_LOG_ERROR, "evil\ncomp", NULL, 0, "line1\nline2\r\t\x01 end");
    assert_int_equal(c->count, 1);
    assert_null(strchr(c->lines[0], '\n'));
    assert_matches(c->lines[0], " \\[evil\\\\ncomp\\] line1\\\\nline2\\\\r\\\\t\\\\x01 end$");
}

static void test_truncation(void **state)
{
    struct capture *c = *state;
    static const size_t lengths[] = {100, 4000, 4095, 5000, 100000};
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        char *big = malloc(lengths[i] + 1);
        assert_non_null(big);
        memset(big, 'x', lengths[i]);
        big[lengths[i]] = '\0';
        c->count = 0;
        MR_LOG_ERROR("t", "%s", big);
        assert_int_equal(c->count, 1);
        const size_t len = strlen(c->lines[0]);
        assert_true(len < 4096);
        if (lengths[i] > 4000) {
            assert_string_equal(c->lines[0] + len - 4, "x...");
        } else {
            assert_string_equal(c->lines[0] + len - 4, "xxxx");
        }
        free(big);
    }
}

static void test_truncation_keeps_escapes_whole(void **state)
{
    struct capture *c = *state;
    static const char *const fills[] = {"\n", "\x01"};
    static const char *const escapes[] = {"\\n", "\\x01"};
    for (size_t f = 0; f < 2; f++) {
        for (size_t shift = 0; shift < 4; shift++) {
            char msg[3000];
            memset(msg, 'y', shift);
            for (size_t i = shift; i < sizeof(msg) - 1; i++) {
                msg[i] = fills[f][0];
            }
            msg[sizeof(msg) - 1] = '\0';
            c->count = 0;
            MR_LOG_ERROR("t", "%s", msg);
            assert_int_equal(c->count, 1);
            const char *body = strstr(c->lines[0], "] ") + 2 + shift;
            const size_t len = strlen(body);
            const size_t esc_len = strlen(escapes[f]);
            assert_string_equal(body + len - 3, "...");
            /* Everything before the ellipsis is whole escapes. */
            assert_int_equal((len - 3) % esc_len, 0);
            for (size_t i = 0; i + 3 < len; i += esc_len) {
                assert_memory_equal(body + i, escapes[f], esc_len);
            }
        }
    }
}

static void test_level_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        enum mr_log_level level;
    } cases[] = {
        {"error", 0, MR_LOG_ERROR}, {"warn", 0, MR_LOG_WARN},   {"info", 0, MR_LOG_INFO},
        {"debug", 0, MR_LOG_DEBUG}, {"trace", 0, MR_LOG_TRACE}, {"WARN", 0, MR_LOG_WARN},
        {"Info", 0, MR_LOG_INFO},   {"warning", MR_EINVAL, 0},  {"", MR_EINVAL, 0},
        {"inf", MR_EINVAL, 0},      {"debug ", MR_EINVAL, 0},   {"3", MR_EINVAL, 0},
        {NULL, MR_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum mr_log_level out = (enum mr_log_level)99;
        assert_int_equal(mr_log_level_parse(cases[i].text, &out), cases[i].rc);
        if (cases[i].rc == 0) {
            assert_int_equal(out, cases[i].level);
            /* The name reads back as the canonical lower-case spelling. */
            enum mr_log_level again;
            assert_int_equal(mr_log_level_parse(mr_log_level_name(out), &again), 0);
            assert_int_equal(again, out);
        } else {
            assert_int_equal(out, 99); /* untouched on failure */
        }
    }
    assert_int_equal(mr_log_level_parse("info", NULL), MR_EINVAL);
    assert_string_equal(mr_log_level_name(MR_LOG_WARN), "warn");
    assert_string_equal(mr_log_level_name((enum mr_log_level)42), "unknown");
    assert_string_equal(mr_log_level_name((enum mr_log_level) - 1), "unknown");
}

static void test_set_level_clamps(void **state)
{
    (void)state;
    mr_log_set_level((enum mr_log_level)17);
    assert_int_equal(mr_log_get_level(), MR_LOG_TRACE);
    mr_log_set_level((enum mr_log_level) - 3);
    assert_int_equal(mr_log_get_level(), MR_LOG_ERROR);
}

static void test_errno_preserved(void **state)
{
    struct capture *c = *state;
    errno = ENOSPC;
    MR_LOG_ERROR("t", "disk full");
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(c->count, 1);
}

static void recursive_sink(enum mr_log_level level, const char *line, void *arg)
{
    (void)level;
    (void)line;
    int *calls = arg;
    (*calls)++;
    /* A sink that logs must not deadlock; the nested message is dropped. */
    MR_LOG_ERROR("sink", "nested");
}

static void test_recursive_sink(void **state)
{
    (void)state;
    int calls = 0;
    mr_log_set_sink(recursive_sink, &calls);
    MR_LOG_ERROR("t", "outer");
    assert_int_equal(calls, 1);
}

static void test_default_sink_stderr(void **state)
{
    struct capture *c = *state;
    struct stderr_capture sc;

    mr_log_set_sink(NULL, c); /* NULL restores stderr; the argument is ignored */
    stderr_capture_start(&sc);
    MR_LOG_WARN("web", "port %d busy", 8080);
    MR_LOG_INFO(NULL, "plain");
    char *out = stderr_capture_stop(&sc);
    assert_int_equal(c->count, 0);
    assert_matches(out, "^[0-9T:.-]+Z WARN  \\[web\\] port 8080 busy\n[0-9T:.-]+Z INFO  plain\n$");
    free(out);
}

#define THREADS          4
#define LINES_PER_THREAD 500

static void *thread_logger(void *arg)
{
    const int id = (int)(intptr_t)arg;
    char pad[301];
    memset(pad, 'a' + id, sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < LINES_PER_THREAD; i++) {
        MR_LOG_INFO("thread", "%d %d %s", id, i, pad);
    }
    return NULL;
}

static void test_threads_lines_whole(void **state)
{
    (void)state;
    struct stderr_capture sc;
    pthread_t threads[THREADS];

    mr_log_set_sink(NULL, NULL);
    stderr_capture_start(&sc);
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_create(&threads[t], NULL, thread_logger, (void *)(intptr_t)t), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
    }
    char *out = stderr_capture_stop(&sc);

    int next[THREADS] = {0};
    int lines = 0;
    for (char *line = out, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        const char *body = strstr(line, " INFO  [thread] ");
        assert_non_null(body);
        int id = -1;
        int seq = -1;
        int used = 0;
        assert_int_equal(sscanf(body, " INFO  [thread] %d %d %n", &id, &seq, &used), 2);
        assert_true(id >= 0 && id < THREADS);
        /* Each thread's lines arrive in order, each whole. */
        assert_int_equal(seq, next[id]);
        next[id]++;
        assert_int_equal(strlen(body + used), 300);
        assert_true(body[used] == 'a' + id && body[used + 299] == 'a' + id);
        lines++;
    }
    assert_int_equal(lines, THREADS * LINES_PER_THREAD);
    free(out);
}

static void test_ratelimit(void **state)
{
    (void)state;
    struct mr_log_ratelimit rl = {0};

    /* Burst of 3 per second: three pass, the rest are counted. */
    assert_int_equal(mr_log_ratelimit_pass(&rl, 3, 1000), 0);
    assert_int_equal(mr_log_ratelimit_pass(&rl, 3, 1000), 0);
    assert_int_equal(mr_log_ratelimit_pass(&rl, 3, 1000), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(mr_log_ratelimit_pass(&rl, 3, 1000), -1);
    }
    assert_int_equal(rl.suppressed, 5);

    /* The window has passed (moved back rather than slept for): the next message reports 5. */
    rl.window_start_ms = mr_clock_mono_ms() - 1001;
    assert_int_equal(mr_log_ratelimit_pass(&rl, 3, 1000), 5);
    assert_int_equal(mr_log_ratelimit_pass(&rl, 3, 1000), 0);
    assert_int_equal(mr_log_ratelimit_pass(&rl, 3, 1000), 0);
    assert_int_equal(mr_log_ratelimit_pass(&rl, 3, 1000), -1);

    /* A real, short interval elapses. */
    struct mr_log_ratelimit fast = {0};
    assert_int_equal(mr_log_ratelimit_pass(&fast, 1, 20), 0);
    assert_int_equal(mr_log_ratelimit_pass(&fast, 1, 20), -1);
    assert_int_equal(mr_log_ratelimit_pass(&fast, 1, 20), -1);
    mr_clock_sleep_ns(25 * 1000000);
    assert_int_equal(mr_log_ratelimit_pass(&fast, 1, 20), 2);

    /* A window start in the future (state copied from elsewhere) restarts the window. */
    struct mr_log_ratelimit future = {
        .window_start_ms = mr_clock_mono_ms() + 100000, .in_window = 9, .suppressed = 4};
    assert_int_equal(mr_log_ratelimit_pass(&future, 1, 1000), 4);
}

static void test_ratelimit_edges(void **state)
{
    (void)state;
    struct mr_log_ratelimit rl = {0};
    /* burst 0 lets nothing through */
    assert_int_equal(mr_log_ratelimit_pass(&rl, 0, 1000), -1);
    assert_int_equal(mr_log_ratelimit_pass(&rl, 0, 1000), -1);
    /* interval 0 lets everything through, reporting what was suppressed before */
    assert_int_equal(mr_log_ratelimit_pass(&rl, 1, 0), 2);
    assert_int_equal(mr_log_ratelimit_pass(&rl, 1, 0), 0);
    /* the suppressed count saturates rather than wrapping */
    rl = (struct mr_log_ratelimit){
        .window_start_ms = mr_clock_mono_ms(), .in_window = 1, .suppressed = UINT32_MAX};
    assert_int_equal(mr_log_ratelimit_pass(&rl, 1, 100000), -1);
    assert_int_equal(rl.suppressed, UINT32_MAX);
    /* NULL state: never drop */
    assert_int_equal(mr_log_ratelimit_pass(NULL, 1, 1000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_level_filtering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_macros, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_write_is_filtered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_keeps_escapes_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_level_clamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errno_preserved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recursive_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_sink_stderr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_lines_whole, setup, teardown),
        cmocka_unit_test(test_ratelimit),
        cmocka_unit_test(test_ratelimit_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
