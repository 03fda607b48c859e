/* Input `stdin`: records from lines of text on a file descriptor (standard input by default) or
 * a file.
 *
 *   inputs:
 *     console: {type: stdin, format: json}
 *     probe: {type: stdin, format: value, asset: plant/press/line1/press3, signal: temp}
 *
 * Reading never blocks the loop. What fd 0 is decides how (uv_guess_handle):
 *  - a pipe, socket or terminal is a libuv stream (uv_pipe_open / uv_tty_init): readable
 *    notifications, no thread, and stop() can end it at any moment;
 *  - a regular file (`millrace run < data.jsonl`) cannot be polled (epoll refuses regular
 *    files), so it is read with a chain of uv_fs_read requests on libuv's thread pool. A file
 *    read always completes quickly, so a pool thread is never parked on it.
 * A reader thread handing batches over with uv_async would cover both, but a thread blocked in
 * read() on an idle pipe cannot be stopped cleanly; these two paths share everything after the
 * bytes arrive.
 *
 * Lines go into one buffer of max_line bytes; complete lines are parsed into a batch of up to
 * `batch` records whose string values are copied into a per-batch arena, and the batch is
 * offered to the host at the end of each chunk read (or when full). MR_EAGAIN from the host
 * (back-pressure) keeps the batch, pauses reading and offers it again after a short timer.
 * A malformed or overlong line is counted in millrace_errors_total, logged (rate-limited) with
 * its line number and skipped. At end of data the last line without a newline still counts,
 * then host->ended(host, 0) is called. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"
#include "millrace/plugin.h"

#define RETRY_MS    10
#define ARENA_EXTRA (64u * 1024u)
/* Arena bytes reserved for a line of len bytes: decoded strings and samples never need more
 * than twice the text, plus alignment. */
#define SLICE(len)  ((2 * (len) + 64 + 15) & ~(size_t)15)

extern const struct mr_plugin mr_input_stdin;

enum stdin_format {
    FORMAT_JSON = 0,
    FORMAT_VALUE = 1,
};

struct stdin_conf {
    int64_t fd;
    char *path;
    int format; /* enum stdin_format */
    char *asset;
    char *signal;
    int64_t batch;
    uint64_t max_line;
};

struct stdin_ctx {
    const struct stdin_conf *conf;
    struct mr_input_host *host;
    struct mr_plugin_counters counters;
    struct mr_log_ratelimit rl;
    mr_name_id asset;
    mr_name_id signal;
    int fd; /* ours (a dup or an open), -1 once a stream handle owns or closed it */
    bool is_stream;
    union {
        uv_pipe_t pipe;
        uv_tty_t tty;
        uv_stream_t stream;
    } h;
    uv_fs_t req;
    uv_timer_t retry;
    int open_handles;
    bool started, reading, req_busy, pending, eof, ended, stopping, skipping;
    char *buf; /* [start, end) not yet split into lines */
    size_t start, end, cap;
    uint64_t line_no;
    struct mr_record *recs;
    size_t nrecs;
    char *arena;
    size_t arena_used, arena_cap;
};

static const char *const format_values[] = {"json", "value", NULL};

static void stdin_conf_check(void *conf, struct mr_config_check *chk)
{
    const struct stdin_conf *c = conf;
    if (c->format == FORMAT_VALUE) {
        if (c->asset == NULL || c->asset[0] == '\0') {
            mr_config_check_fail(chk, "asset",
                                 "format: value needs the asset the numbers "
                                 "belong to");
        }
        if (c->signal == NULL || c->signal[0] == '\0') {
            mr_config_check_fail(chk, "signal", "format: value needs the signal name");
        }
    } else if (c->asset != NULL || c->signal != NULL) {
        mr_config_check_fail(chk, c->asset != NULL ? "asset" : "signal",
                             "only used with format: value (JSON lines name their own asset "
                             "and signal)");
    }
}

static const struct mr_field stdin_fields[] = {
    {.name = "fd",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct stdin_conf, fd),
     .def = "0",
     .min = "0",
     .max = "65535",
     .help = "File descriptor to read (0 is standard input). Ignored when path is set."},
    {.name = "path",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct stdin_conf, path),
     .help = "Read this file (or named pipe) instead of a file descriptor."},
    {.name = "format",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct stdin_conf, format),
     .def = "json",
     .values = format_values,
     .help = "'json': one record per line as written by the stdout output. 'value': one plain "
             "number per line, stamped with the current time, asset and signal."},
    {.name = "asset",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct stdin_conf, asset),
     .help = "With format: value, the asset path (site/area/line/machine) of every record."},
    {.name = "signal",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct stdin_conf, signal),
     .help = "With format: value, the signal name of every record (e.g. temperature)."},
    {.name = "batch",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct stdin_conf, batch),
     .def = "256",
     .min = "1",
     .max = "65536",
     .help = "Most records handed on at once."},
    {.name = "max_line",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct stdin_conf, max_line),
     .def = "64KiB",
     .min = "64B",
     .max = "16MiB",
     .help = "Longest line accepted; longer lines are counted as errors and skipped."},
    {0},
};

static void pump(struct stdin_ctx *c);
static void read_more(struct stdin_ctx *c);

static void finish(struct stdin_ctx *c, int status)
{
    if (c->ended) {
        return;
    }
    c->ended = true;
    if (c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = false;
    }
    c->host->ended(c->host, status);
}

static void retry_cb(uv_timer_t *t)
{
    pump(t->data);
}

/* Hand the batch to the host. False when the pump must pause (back-pressure) or end. */
static bool offer(struct stdin_ctx *c)
{
    int rc = c->host->emit(c->host, c->recs, c->nrecs);
    if (rc == MR_EAGAIN) {
        c->pending = true;
        if (c->reading) {
            uv_read_stop(&c->h.stream);
            c->reading = false;
        }
        uv_timer_start(&c->retry, retry_cb, RETRY_MS, 0);
        return false;
    }
    c->pending = false;
    if (rc != 0) {
        MR_LOG_ERROR(c->host->name, "the host refused %zu records: %s; stopping", c->nrecs,
                     mr_strerror(rc));
        mr_counter_add(c->counters.errors, c->nrecs);
        c->nrecs = 0;
        c->arena_used = 0;
        finish(c, rc);
        return false;
    }
    mr_counter_add(c->counters.records_out, c->nrecs);
    c->nrecs = 0;
    c->arena_used = 0;
    return true;
}

static void line_error(struct stdin_ctx *c, const char *what)
{
    mr_counter_add(c->counters.errors, 1);
    long suppressed = mr_log_ratelimit_pass(&c->rl, 5, 10000);
    if (suppressed > 0) {
        MR_LOG_WARN(c->host->name,
                    "line %" PRIu64 ": %s; skipped (%ld similar messages "
                    "suppressed)",
                    c->line_no, what, suppressed);
    } else if (suppressed == 0) {
        MR_LOG_WARN(c->host->name, "line %" PRIu64 ": %s; skipped", c->line_no, what);
    }
}

static int value_line(struct stdin_ctx *c, const char *line, size_t len, struct mr_record *rec)
{
    char text[64];
    char *end;
    if (len >= sizeof(text)) {
        line_error(c, "expected a number");
        return MR_EPARSE;
    }
    memcpy(text, line, len);
    text[len] = '\0';
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(v)) {
        line_error(c, "expected a number");
        return MR_EPARSE;
    }
    memset(rec, 0, sizeof(*rec));
    rec->time_ns = mr_clock_wall_ns();
    rec->asset = c->asset;
    rec->signal = c->signal;
    rec->type = MR_VALUE_F64;
    rec->quality = MR_QUALITY_GOOD;
    rec->v.f64 = v;
    return 0;
}

/* Room in the arena for a line of len bytes, offering the batch first if needed; false when
 * the pump must pause. */
static bool room_for(struct stdin_ctx *c, size_t len)
{
    return c->nrecs == 0 || c->arena_used + SLICE(len) <= c->arena_cap || offer(c);
}

/* One line (without its newline) into the batch (room_for said it fits); false when the pump
 * must pause. */
static bool take_line(struct stdin_ctx *c, const char *line, size_t len)
{
    c->line_no++;
    while (len > 0 && isspace((unsigned char)line[len - 1])) {
        len--;
    }
    while (len > 0 && isspace((unsigned char)*line)) {
        line++;
        len--;
    }
    if (len == 0) {
        return true;
    }
    mr_counter_add(c->counters.records_in, 1);
    size_t slice = SLICE(len);
    struct mr_record *rec = &c->recs[c->nrecs];
    int rc;
    if (c->conf->format == FORMAT_VALUE) {
        rc = value_line(c, line, len, rec);
    } else {
        struct mr_err err;
        rc = mr_record_from_json(rec, c->host->names, line, len, c->arena + c->arena_used, slice,
                                 &err);
        if (rc != 0) {
            line_error(c, err.msg);
        }
    }
    if (rc != 0) {
        return true;
    }
    c->arena_used += slice;
    c->nrecs++;
    return c->nrecs < (size_t)c->conf->batch || offer(c);
}

/* Split what was read into lines and hand them on; read more when all is taken. */
static void pump(struct stdin_ctx *c)
{
    if (c->ended || c->stopping || (c->pending && !offer(c))) {
        return;
    }
    while (c->start < c->end) {
        char *line = c->buf + c->start;
        char *nl = memchr(line, '\n', c->end - c->start);
        if (nl == NULL) {
            break;
        }
        if (!room_for(c, (size_t)(nl - line))) {
            return;
        }
        c->start = (size_t)(nl - c->buf) + 1;
        if (c->skipping) {
            c->skipping = false; /* the tail of an overlong line, already counted */
            c->line_no++;
            continue;
        }
        if (!take_line(c, line, (size_t)(nl - line))) {
            return;
        }
    }
    if (c->eof) {
        if (c->start < c->end && !c->skipping) {
            size_t len = c->end - c->start;
            if (!room_for(c, len)) {
                return;
            }
            c->start = c->end;
            if (!take_line(c, c->buf + c->end - len, len)) {
                return;
            }
        }
        c->start = c->end;
        if (c->nrecs > 0 && !offer(c)) {
            return;
        }
        finish(c, 0);
        return;
    }
    if (c->nrecs > 0 && !offer(c)) {
        return;
    }
    read_more(c);
}

/* Make room at the end of the buffer; an overlong line is dropped here. */
static void make_room(struct stdin_ctx *c)
{
    if (c->start > 0) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    if (c->end == c->cap) {
        if (!c->skipping) {
            c->line_no++;
            line_error(c, "longer than max_line");
            c->line_no--; /* the rest of it ends with the newline that numbers it */
        }
        c->skipping = true;
        c->start = 0;
        c->end = 0;
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct stdin_ctx *c = h->data;
    (void)suggested;
    make_room(c);
    *buf = uv_buf_init(c->buf + c->end, (unsigned)(c->cap - c->end));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct stdin_ctx *c = s->data;
    (void)buf;
    if (nread > 0) {
        c->end += (size_t)nread;
    } else if (nread == UV_EOF) {
        c->eof = true;
    } else if (nread < 0) {
        MR_LOG_ERROR(c->host->name, "read failed: %s", uv_strerror((int)nread));
        finish(c, mr_err_from_errno((int)-nread));
        return;
    } else {
        return;
    }
    /* Stop the stream while the pump decides; read_more restarts it. */
    uv_read_stop(s);
    c->reading = false;
    pump(c);
}

static void maybe_stopped(struct stdin_ctx *c)
{
    if (!c->stopping || c->open_handles > 0 || c->req_busy) {
        return;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->host->stopped(c->host);
}

static void fs_cb(uv_fs_t *req)
{
    struct stdin_ctx *c = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    c->req_busy = false;
    if (c->stopping) {
        maybe_stopped(c);
        return;
    }
    if (n > 0) {
        c->end += (size_t)n;
    } else if (n == 0) {
        c->eof = true;
    } else {
        MR_LOG_ERROR(c->host->name, "read failed: %s", uv_strerror((int)n));
        finish(c, mr_err_from_errno((int)-n));
        return;
    }
    pump(c);
}

static void read_more(struct stdin_ctx *c)
{
    if (c->stopping || c->ended || c->eof) {
        return;
    }
    if (c->is_stream) {
        int rc = uv_read_start(&c->h.stream, alloc_cb, read_cb);
        if (rc != 0) {
            MR_LOG_ERROR(c->host->name, "cannot read: %s", uv_strerror(rc));
            finish(c, mr_err_from_errno(-rc));
            return;
        }
        c->reading = true;
        return;
    }
    make_room(c);
    uv_buf_t b = uv_buf_init(c->buf + c->end, (unsigned)(c->cap - c->end));
    int rc = uv_fs_read(c->host->loop, &c->req, c->fd, &b, 1, -1, fs_cb);
    if (rc != 0) {
        MR_LOG_ERROR(c->host->name, "cannot read: %s", uv_strerror(rc));
        finish(c, mr_err_from_errno(-rc));
        return;
    }
    c->req_busy = true;
}

static int open_source(const struct stdin_conf *conf, int *fd, struct mr_err *err)
{
    int f;
    if (conf->path != NULL) {
        /* O_NONBLOCK so that opening a named pipe without a writer does not block the loop. */
        f = open(conf->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (f < 0) {
            int rc = mr_err_from_errno(errno);
            return MR_ERR_SET(err, rc, "cannot open %s: %s", conf->path, strerror(errno));
        }
    } else {
        /* A duplicate above stderr, so closing ours never closes the caller's stdin. */
        f = fcntl((int)conf->fd, F_DUPFD_CLOEXEC, 3);
        if (f < 0) {
            int rc = mr_err_from_errno(errno);
            return MR_ERR_SET(err, rc, "cannot use file descriptor %" PRId64 ": %s", conf->fd,
                              strerror(errno));
        }
    }
    *fd = f;
    return 0;
}

static void stdin_fini(void *ctx)
{
    struct stdin_ctx *c = ctx;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    mr_free(c->buf);
    mr_free(c->recs);
    mr_free(c->arena);
}

static int stdin_init(void *ctx, const void *conf, struct mr_input_host *host, struct mr_err *err)
{
    struct stdin_ctx *c = ctx;
    const struct stdin_conf *cf = conf;
    int rc;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->host = host;
    c->fd = -1;
    c->cap = (size_t)cf->max_line;
    c->arena_cap = 2 * c->cap + 64 + ARENA_EXTRA;
    c->buf = mr_malloc(c->cap);
    c->recs = mr_calloc((size_t)cf->batch, sizeof(*c->recs));
    c->arena = mr_malloc(c->arena_cap);
    if (c->buf == NULL || c->recs == NULL || c->arena == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        goto fail;
    }
    if (cf->format == FORMAT_VALUE &&
        ((rc = mr_names_intern(host->names, cf->asset, strlen(cf->asset), &c->asset)) != 0 ||
         (rc = mr_names_intern(host->names, cf->signal, strlen(cf->signal), &c->signal)) != 0)) {
        MR_ERR_SET(err, rc, "cannot intern asset or signal name: %s", mr_strerror(rc));
        goto fail;
    }
    rc = mr_plugin_counters_register(host->metrics, &mr_input_stdin, host->name, &c->counters);
    if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
        goto fail;
    }
    rc = open_source(cf, &c->fd, err);
    if (rc != 0) {
        goto fail;
    }
    return 0;
fail:
    stdin_fini(c);
    return rc;
}

static int stdin_start(void *ctx, struct mr_err *err)
{
    struct stdin_ctx *c = ctx;
    uv_loop_t *loop = c->host->loop;
    int rc = uv_timer_init(loop, &c->retry);
    if (rc != 0) {
        return MR_ERR_SET(err, mr_err_from_errno(-rc), "timer: %s", uv_strerror(rc));
    }
    c->retry.data = c;
    c->open_handles = 1;
    c->started = true;
    uv_handle_type type = uv_guess_handle(c->fd);
    if (type == UV_NAMED_PIPE || type == UV_TTY) {
        rc = type == UV_TTY ? uv_tty_init(loop, &c->h.tty, c->fd, 0)
                            : uv_pipe_init(loop, &c->h.pipe, 0);
        if (rc != 0) {
            return MR_ERR_SET(err, mr_err_from_errno(-rc), "cannot read: %s", uv_strerror(rc));
        }
        c->open_handles++;
        c->is_stream = true;
        c->h.stream.data = c;
        if (type == UV_NAMED_PIPE) {
            rc = uv_pipe_open(&c->h.pipe, c->fd);
            if (rc != 0) {
                return MR_ERR_SET(err, mr_err_from_errno(-rc), "cannot read: %s", uv_strerror(rc));
            }
        }
        c->fd = -1; /* the handle closes it */
    } else if (type != UV_FILE && type != UV_UNKNOWN_HANDLE) {
        return MR_ERR_SET(err, MR_ENOTSUP, "cannot read this kind of file descriptor (%s)",
                          uv_handle_type_name(type));
    }
    c->req.data = c;
    read_more(c);
    return 0;
}

static void close_cb(uv_handle_t *h)
{
    struct stdin_ctx *c = h->data;
    c->open_handles--;
    maybe_stopped(c);
}

static void stdin_stop(void *ctx)
{
    struct stdin_ctx *c = ctx;
    if (c->stopping) {
        return;
    }
    c->stopping = true;
    if (c->started) {
        uv_close((uv_handle_t *)&c->retry, close_cb);
        if (c->is_stream) {
            uv_close((uv_handle_t *)&c->h.stream, close_cb);
            c->reading = false;
        }
    }
    maybe_stopped(c);
}

const struct mr_plugin mr_input_stdin = {
    .kind = MR_PLUGIN_INPUT,
    .name = "stdin",
    .help = "Reads records from lines of text on standard input (or another file descriptor or "
            "a file): JSON lines as the stdout output writes them, or plain numbers. Useful for "
            "trying pipelines, replaying captures and feeding data from scripts.",
    .conf = {.fields = stdin_fields, .size = sizeof(struct stdin_conf), .check = stdin_conf_check},
    .ctx_size = sizeof(struct stdin_ctx),
    .input = {.init = stdin_init, .start = stdin_start, .stop = stdin_stop, .fini = stdin_fini},
};
