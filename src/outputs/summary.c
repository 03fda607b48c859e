/* Output `summary`: a compact live table on the terminal, one row per asset, the latest value of
 * chosen signals per column, reprinted every few seconds. For `millrace demo` and for a quick
 * look at a running plant without a dashboard.
 *
 *   outputs:
 *     screen:
 *       type: summary
 *       interval: 5s
 *       columns: [state, good_count, temperature.mean, vibration.rms]
 *       titles: [state, parts, temp 1m, vib rms]
 *       alert_signals: [alert]
 *
 *   2026-11-24T19:40:05Z  event time 2026-11-24T19:40:03Z  records 48213
 *   asset                          state     parts    temp 1m   vib rms  alerts
 *   plant1/assembly/line1/press1   RUNNING   1204     61.32     0.412    0
 *
 * Rows are kept for at most max_rows assets (the first seen); a record of another asset is
 * counted but not shown. Nothing here allocates per record: values are copied into fixed cells.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"
#include "millrace/plugin.h"

#define MAX_COLUMNS 12
#define CELL        16

extern const struct mr_plugin mr_output_summary;

struct summary_conf {
    int64_t fd;
    int64_t interval_ns;
    int64_t max_rows;
    struct mr_strlist columns;
    struct mr_strlist titles;
    struct mr_strlist alert_signals;
};

struct row {
    mr_name_id asset;
    char cells[MAX_COLUMNS][CELL];
    uint64_t alerts;
};

struct summary_ctx {
    const struct summary_conf *conf;
    const struct mr_output_host *host;
    struct mr_plugin_counters counters;
    int fd;
    mr_name_id col_ids[MAX_COLUMNS];
    size_t ncols;
    mr_name_id alert_ids[8];
    size_t nalerts;
    struct row *rows;
    size_t nrows;
    uint64_t records;
    int64_t newest_ns;
    int64_t next_print;
    char *out;
    size_t out_cap;
};

static const struct mr_field summary_fields[] = {
    {.name = "fd",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct summary_conf, fd),
     .def = "1",
     .min = "0",
     .max = "65535",
     .help = "File descriptor the table is written to (1 is standard output)."},
    {.name = "interval",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct summary_conf, interval_ns),
     .def = "5s",
     .min = "100ms",
     .max = "1h",
     .help = "How often the table is printed (while records arrive)."},
    {.name = "max_rows",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct summary_conf, max_rows),
     .def = "40",
     .min = "1",
     .max = "1000",
     .help = "Most assets shown (the first ones seen); others are counted only."},
    {.name = "columns",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct summary_conf, columns),
     .def = "[state, good_count, temperature.mean, vibration.rms]",
     .min = "1",
     .max = "12",
     .help = "Signals shown, one column each: the latest value of that signal per asset."},
    {.name = "titles",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct summary_conf, titles),
     .max = "12",
     .help = "Column headings, in the order of `columns` (default: the signal names)."},
    {.name = "alert_signals",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct summary_conf, alert_signals),
     .def = "[alert]",
     .max = "8",
     .help = "Signals counted in the alerts column."},
    {0},
};

static void summary_check(void *conf, struct mr_config_check *chk)
{
    const struct summary_conf *c = conf;
    if (c->titles.n != 0 && c->titles.n != c->columns.n) {
        mr_config_check_fail(chk, "titles", "give one title per column (%zu columns, %zu titles)",
                             c->columns.n, c->titles.n);
    }
}

static struct row *row_for(struct summary_ctx *c, mr_name_id asset)
{
    for (size_t i = 0; i < c->nrows; i++) {
        if (c->rows[i].asset == asset) {
            return &c->rows[i];
        }
    }
    if (c->nrows >= (size_t)c->conf->max_rows) {
        return NULL;
    }
    struct row *r = &c->rows[c->nrows++];
    memset(r, 0, sizeof(*r));
    r->asset = asset;
    return r;
}

static void format_value(const struct mr_record *rec, char *cell)
{
    switch (rec->type) {
    case MR_VALUE_F64:
        snprintf(cell, CELL, "%.3g", rec->v.f64);
        break;
    case MR_VALUE_I64:
        snprintf(cell, CELL, "%" PRId64, rec->v.i64);
        break;
    case MR_VALUE_BOOL:
        snprintf(cell, CELL, "%s", rec->v.b ? "true" : "false");
        break;
    case MR_VALUE_STRING:
        snprintf(cell, CELL, "%.*s", (int)rec->v.str.len, rec->v.str.ptr);
        break;
    default:
        snprintf(cell, CELL, "[%" PRIu32 "]", rec->v.samples.n);
        break;
    }
}

static int cmp_rows(const void *a, const void *b, void *names)
{
    const char *x = mr_names_str(names, ((const struct row *)a)->asset, NULL);
    const char *y = mr_names_str(names, ((const struct row *)b)->asset, NULL);
    return strcmp(x != NULL ? x : "", y != NULL ? y : "");
}

static size_t put(char *out, size_t cap, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t put(char *out, size_t cap, size_t at, const char *fmt, ...)
{
    if (at >= cap) {
        return at;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + at, cap - at, fmt, ap);
    va_end(ap);
    return n < 0 ? at : (at + (size_t)n < cap ? at + (size_t)n : cap - 1);
}

static void print_table(struct summary_ctx *c)
{
    qsort_r(c->rows, c->nrows, sizeof(struct row), cmp_rows, c->host->names);
    char now[40], ev[40];
    /* Seconds are enough on a terminal: "2026-11-24T19:40:05Z". */
    if (mr_time_format_rfc3339(mr_clock_wall_ns(), now, sizeof(now)) > 20) {
        memcpy(now + 19, "Z", 2);
    }
    if (c->newest_ns <= 0 || mr_time_format_rfc3339(c->newest_ns, ev, sizeof(ev)) <= 20) {
        snprintf(ev, sizeof(ev), "-");
    } else {
        memcpy(ev + 19, "Z", 2);
    }
    size_t at = put(c->out, c->out_cap, 0, "\n%s  event time %s  records %" PRIu64 "\n", now, ev,
                    c->records);
    at = put(c->out, c->out_cap, at, "%-34s", "asset");
    for (size_t k = 0; k < c->ncols; k++) {
        const char *t =
            c->conf->titles.n == c->ncols ? c->conf->titles.items[k] : c->conf->columns.items[k];
        at = put(c->out, c->out_cap, at, " %-12.12s", t);
    }
    at = put(c->out, c->out_cap, at, " alerts\n");
    for (size_t i = 0; i < c->nrows; i++) {
        const char *a = mr_names_str(c->host->names, c->rows[i].asset, NULL);
        at = put(c->out, c->out_cap, at, "%-34.34s", a != NULL ? a : "?");
        for (size_t k = 0; k < c->ncols; k++) {
            at = put(c->out, c->out_cap, at, " %-12.12s",
                     c->rows[i].cells[k][0] != '\0' ? c->rows[i].cells[k] : "-");
        }
        at = put(c->out, c->out_cap, at, " %" PRIu64 "\n", c->rows[i].alerts);
    }
    for (size_t done = 0; done < at;) {
        ssize_t w = write(c->fd, c->out + done, at - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            break; /* a terminal that went away: the table is best effort */
        }
        done += (size_t)w;
    }
}

static int summary_write(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    (void)err;
    struct summary_ctx *c = ctx;
    mr_counter_add(c->counters.records_in, n);
    for (size_t i = 0; i < n; i++) {
        const struct mr_record *rec = &recs[i];
        c->records++;
        if (rec->time_ns > c->newest_ns) {
            c->newest_ns = rec->time_ns;
        }
        for (size_t k = 0; k < c->nalerts; k++) {
            if (rec->signal == c->alert_ids[k]) {
                struct row *r = row_for(c, rec->asset);
                if (r != NULL) {
                    r->alerts++;
                }
            }
        }
        for (size_t k = 0; k < c->ncols; k++) {
            if (rec->signal == c->col_ids[k]) {
                struct row *r = row_for(c, rec->asset);
                if (r != NULL) {
                    format_value(rec, r->cells[k]);
                }
            }
        }
    }
    mr_counter_add(c->counters.records_out, n);
    int64_t now = mr_clock_mono_ns();
    if (now >= c->next_print) {
        c->next_print = now + c->conf->interval_ns;
        print_table(c);
    }
    return MR_SINK_OK;
}

static int summary_flush(void *ctx, struct mr_err *err)
{
    (void)ctx;
    (void)err;
    return MR_SINK_OK;
}

static void summary_fini(void *ctx)
{
    struct summary_ctx *c = ctx;
    if (c->rows != NULL && c->nrows > 0) {
        print_table(c); /* the final state, at stop */
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    mr_free(c->rows);
    mr_free(c->out);
    c->rows = NULL;
    c->out = NULL;
    c->fd = -1;
}

static int summary_init(void *ctx, const void *conf, struct mr_output_host *host,
                        struct mr_err *err)
{
    struct summary_ctx *c = ctx;
    const struct summary_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->host = host;
    c->fd = fcntl((int)cf->fd, F_DUPFD_CLOEXEC, 3);
    int rc = 0;
    if (c->fd < 0) {
        rc = MR_ERR_SET(err, mr_err_from_errno(errno), "cannot use file descriptor %" PRId64 ": %s",
                        cf->fd, strerror(errno));
        goto fail;
    }
    c->ncols = cf->columns.n;
    for (size_t k = 0; k < c->ncols && rc == 0; k++) {
        rc = mr_names_intern(host->names, cf->columns.items[k], strlen(cf->columns.items[k]),
                             &c->col_ids[k]);
    }
    c->nalerts = cf->alert_signals.n;
    for (size_t k = 0; k < c->nalerts && rc == 0; k++) {
        rc = mr_names_intern(host->names, cf->alert_signals.items[k],
                             strlen(cf->alert_signals.items[k]), &c->alert_ids[k]);
    }
    if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot intern column names: %s", mr_strerror(rc));
        goto fail;
    }
    c->rows = mr_calloc((size_t)cf->max_rows, sizeof(struct row));
    c->out_cap = 256 + (size_t)(cf->max_rows + 1) * (40 + 14 * MAX_COLUMNS + 24);
    c->out = mr_malloc(c->out_cap);
    if (c->rows == NULL || c->out == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        goto fail;
    }
    rc = mr_plugin_counters_register(host->metrics, &mr_output_summary, host->name, &c->counters);
    if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
        goto fail;
    }
    c->next_print = mr_clock_mono_ns() + cf->interval_ns;
    return 0;
fail:
    c->nrows = 0;
    summary_fini(c);
    return rc;
}

const struct mr_plugin mr_output_summary = {
    .kind = MR_PLUGIN_OUTPUT,
    .name = "summary",
    .help = "Prints a compact table to the terminal every few seconds: one row per asset, the "
            "latest value of chosen signals, and a count of alerts. For `millrace demo` and a "
            "quick look at a running plant.",
    .conf = {.fields = summary_fields, .size = sizeof(struct summary_conf), .check = summary_check},
    .ctx_size = sizeof(struct summary_ctx),
    .output = {.init = summary_init,
               .write = summary_write,
               .flush = summary_flush,
               .fini = summary_fini},
};
