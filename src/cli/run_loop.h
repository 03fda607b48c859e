/* Running a configuration on a libuv loop with the signals a service expects: shared by
 * `millrace run` and `millrace demo`. */
#ifndef MILLRACE_CLI_RUN_LOOP_H
#define MILLRACE_CLI_RUN_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct mr_run_options {
    const char *path;   /* configuration file; or NULL and: */
    const char *buffer; /*   the configuration text itself (e.g. the embedded demo) */
    size_t buffer_len;
    const char *buffer_name; /*   name used in messages */
    const char *const *sets; /* --set overrides */
    size_t nsets;
    int drain_timeout_ms;
    int64_t duration_ns; /* stop on its own after this long; 0 = until a signal */
};

struct mr_config;

/* Load and validate the configuration of o (path or buffer, with its --set overrides); every
 * problem goes to stderr. Returns 0 with *cfg set (caller destroys), or the loader's error. */
int mr_run_load_config(const struct mr_run_options *o, struct mr_config **cfg);

/* Load, start, run until SIGTERM/SIGINT (or duration), stop in order. SIGHUP reloads (from
 * path; a buffer is reloaded unchanged). Returns the exit code: 0 after an orderly stop, 1 when
 * the configuration is invalid or the engine cannot start. */
int mr_run_config(const struct mr_run_options *o);

#endif
