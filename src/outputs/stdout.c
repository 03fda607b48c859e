/* Output `stdout`: one JSON line per record (mr_record_to_json) on standard output or another
 * file descriptor, for watching a pipeline and for piping into jq, files or other tools.
 *
 *   outputs:
 *     console: {type: stdout}
 *
 * A batch is rendered into one buffer and written with as few write() calls as the descriptor
 * takes; the write is synchronous on the loop thread, which is what a terminal or pipe reader
 * expects of a debugging sink (a slow reader slows the pipeline: the journal in front buffers).
 * A non-blocking descriptor that stays full for `write_timeout` answers MR_SINK_RETRY. A record
 * too large to render within max_record is counted as an error and skipped. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "millrace/alloc.h"
#include "millrace/log.h"
#include "millrace/plugin.h"

#define INITIAL_BUF (64u * 1024u)

extern const struct mr_plugin mr_output_stdout;

struct stdout_conf {
    int64_t fd;
    uint64_t max_record;
    int64_t write_timeout_ns;
};

struct stdout_ctx {
    const struct stdout_conf *conf;
    const struct mr_output_host *host;
    struct mr_plugin_counters counters;
    struct mr_log_ratelimit rl;
    int fd;
    char *buf;
    size_t used;
    size_t cap;
};

static const struct mr_field stdout_fields[] = {
    {.name = "fd",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct stdout_conf, fd),
     .def = "1",
     .min = "0",
     .max = "65535",
     .help = "File descriptor to write to (1 is standard output, 2 standard error)."},
    {.name = "max_record",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct stdout_conf, max_record),
     .def = "16MiB",
     .min = "64KiB",
     .max = "256MiB",
     .help = "Largest JSON line written (a block of samples can be large); larger records are "
             "counted as errors and skipped."},
    {.name = "write_timeout",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct stdout_conf, write_timeout_ns),
     .def = "5s",
     .min = "1ms",
     .max = "1h",
     .help = "How long a full, non-blocking descriptor may stay full before the batch is "
             "retried later."},
    {0},
};

/* Write all of buf. Returns MR_SINK_OK, MR_SINK_RETRY or MR_SINK_FATAL. */
static int write_all(struct stdout_ctx *c, const char *buf, size_t len, struct mr_err *err)
{
    size_t done = 0;
    int timeout_ms = (int)(c->conf->write_timeout_ns / 1000000);
    while (done < len) {
        ssize_t n = write(c->fd, buf + done, len - done);
        if (n >= 0) {
            done += (size_t)n;
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd p = {.fd = c->fd, .events = POLLOUT};
            int r = poll(&p, 1, timeout_ms);
            if (r == 0) {
                MR_ERR_SET(err, MR_ETIMEDOUT, "output stayed full for %d ms", timeout_ms);
                return MR_SINK_RETRY;
            }
            continue;
        }
        if (errno == EPIPE || errno == EBADF) {
            MR_ERR_SET(err, MR_ECLOSED, "the reader went away: %s", strerror(errno));
            return MR_SINK_FATAL;
        }
        MR_ERR_SET(err, mr_err_from_errno(errno), "write failed: %s", strerror(errno));
        return MR_SINK_RETRY;
    }
    return MR_SINK_OK;
}

/* Render rec plus a newline at the end of the buffer; grows it up to max_record. Returns 0,
 * MR_ETOOBIG (too large even alone: skip it) or MR_EAGAIN (flush the buffer first). */
static int render(struct stdout_ctx *c, const struct mr_record *rec)
{
    for (;;) {
        long n = c->cap - c->used > 1 ? mr_record_to_json(rec, c->host->names, c->buf + c->used,
                                                          c->cap - c->used - 1)
                                      : MR_ETOOBIG;
        if (n >= 0) {
            c->used += (size_t)n;
            c->buf[c->used++] = '\n';
            return 0;
        }
        if (n != MR_ETOOBIG) {
            return (int)n;
        }
        if (c->used > 0) {
            return MR_EAGAIN;
        }
        if (c->cap >= c->conf->max_record) {
            return MR_ETOOBIG;
        }
        size_t cap = c->cap * 2 > c->conf->max_record ? (size_t)c->conf->max_record : c->cap * 2;
        char *grown = mr_realloc(c->buf, cap);
        if (grown == NULL) {
            return MR_ENOMEM;
        }
        c->buf = grown;
        c->cap = cap;
    }
}

/* Write what is buffered; count its records as delivered when that worked. */
static int drain(struct stdout_ctx *c, size_t *nbuffered, struct mr_err *err)
{
    int answer = c->used > 0 ? write_all(c, c->buf, c->used, err) : MR_SINK_OK;
    if (answer == MR_SINK_OK) {
        mr_counter_add(c->counters.records_out, *nbuffered);
    }
    c->used = 0;
    *nbuffered = 0;
    return answer;
}

static int stdout_write(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct stdout_ctx *c = ctx;
    size_t nbuffered = 0;
    int answer = MR_SINK_OK;
    mr_counter_add(c->counters.records_in, n);
    c->used = 0;
    for (size_t i = 0; i < n && answer == MR_SINK_OK;) {
        int rc = render(c, &recs[i]);
        if (rc == MR_EAGAIN) {
            answer = drain(c, &nbuffered, err); /* then render recs[i] into the empty buffer */
            continue;
        }
        i++;
        if (rc == 0) {
            nbuffered++;
            continue;
        }
        mr_counter_add(c->counters.errors, 1);
        if (mr_log_ratelimit_pass(&c->rl, 5, 10000) >= 0) {
            MR_LOG_WARN(c->host->name, "record skipped: %s", mr_strerror(rc));
        }
    }
    if (answer == MR_SINK_OK) {
        answer = drain(c, &nbuffered, err);
    }
    if (c->cap > INITIAL_BUF) {
        /* Give back what one huge record needed. */
        char *shrunk = mr_realloc(c->buf, INITIAL_BUF);
        if (shrunk != NULL) {
            c->buf = shrunk;
            c->cap = INITIAL_BUF;
        }
    }
    return answer;
}

static int stdout_flush(void *ctx, struct mr_err *err)
{
    (void)ctx;
    (void)err;
    return MR_SINK_OK; /* write() leaves nothing buffered here */
}

static void stdout_fini(void *ctx)
{
    struct stdout_ctx *c = ctx;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    mr_free(c->buf);
    c->buf = NULL;
}

static int stdout_init(void *ctx, const void *conf, struct mr_output_host *host, struct mr_err *err)
{
    struct stdout_ctx *c = ctx;
    const struct stdout_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->host = host;
    c->cap = INITIAL_BUF;
    c->buf = mr_malloc(c->cap);
    /* A duplicate above stderr: closing ours never closes the process's stdout. */
    c->fd = fcntl((int)cf->fd, F_DUPFD_CLOEXEC, 3);
    int rc;
    if (c->fd < 0) {
        rc = MR_ERR_SET(err, mr_err_from_errno(errno), "cannot use file descriptor %" PRId64 ": %s",
                        cf->fd, strerror(errno));
        goto fail;
    }
    if (c->buf == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        goto fail;
    }
    rc = mr_plugin_counters_register(host->metrics, &mr_output_stdout, host->name, &c->counters);
    if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
        goto fail;
    }
    return 0;
fail:
    stdout_fini(c);
    return rc;
}

const struct mr_plugin mr_output_stdout = {
    .kind = MR_PLUGIN_OUTPUT,
    .name = "stdout",
    .help = "Writes each record as one line of JSON to standard output (or another file "
            "descriptor): for watching a pipeline, and for piping into jq, files or scripts. "
            "The stdin input reads the same format back.",
    .conf = {.fields = stdout_fields, .size = sizeof(struct stdout_conf)},
    .ctx_size = sizeof(struct stdout_ctx),
    .output = {.init = stdout_init,
               .write = stdout_write,
               .flush = stdout_flush,
               .fini = stdout_fini},
};
