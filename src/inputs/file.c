/* Input `file`: records from CSV or JSON-lines files, as fast as they can be read or replayed
 * at the pace they were recorded.
 *
 *   inputs:
 *     press_log:                           # a historian export, one column per signal
 *       type: file
 *       path: /data/press3-*.csv           # a glob: matching files are read in name order
 *       format: csv
 *       time_column: Timestamp
 *       time_format: "%d/%m/%Y %H:%M:%S"   # or rfc3339 (default), unix_s, unix_ms, ...
 *       timezone: "+01:00"                 # for times written without an offset
 *       asset: plant/press/line1/press3
 *       columns: {Temp_C: temperature, P_bar: pressure}
 *       tag_columns: [batch_id]
 *       pace: realtime                     # replay at recorded speed ...
 *       speed: 10                          # ... ten times faster
 *     replay:                              # what the file output (format: json) wrote
 *       type: file
 *       path: archive/records.jsonl
 *       format: json
 *
 * Semantics:
 *  - CSV (RFC 4180): a header row names the columns (header: false numbers them from 1).
 *    Each row has a time (time_column), an asset (the constant `asset`, or asset_column) and
 *    values: by default every other column is a signal named after it; `columns` picks and
 *    renames columns; or a long file names the signal in signal_column and the value in
 *    value_column (the layout the file output's CSV has). tag_columns become tags;
 *    tags_column holds tags as k=v;k=v; quality_column holds good/uncertain/bad. What a cell
 *    becomes (number, bool, string or nothing) is described in file_rows.c.
 *  - JSON lines: by default millrace's record JSON (mr_record_from_json); with `columns` or
 *    signal_column, flat objects {"time": ..., "temp": 21.5} whose fields map like CSV columns.
 *  - pace: fast reads as fast as the pipeline takes records; realtime releases a record when
 *    the wall time since the first record is (its time - the first record's time) / speed.
 *    Records in a file are expected in time order; one earlier than its predecessors is
 *    released at once.
 *  - follow: true keeps reading lines appended to the last file (like tail -f); a file that
 *    shrinks is read again from its start. Files that appear later are not picked up.
 *  - At the end of the last file (without follow) the input ends: host->ended(host, 0).
 *
 * Reading: one regular file at a time, with plain read() of 64 KiB per turn of the loop (from
 * a uv_idle callback, so timers and sockets get their turn between chunks); local file reads
 * complete quickly, so a thread pool buys nothing here. The whole file is never in memory: one
 * buffer of max_line + 64 KiB holds the unparsed rest. Records borrow text from that buffer
 * and a per-batch arena, so the buffer is only compacted after the batch was handed over.
 * Back-pressure (MR_EAGAIN from the host) keeps the batch and offers it again after a short
 * timer; nothing is lost or read twice.
 *
 * Bad data never stops the input: a line with an unreadable time, the wrong number of fields,
 * bad quoting, an unknown quality or malformed JSON is counted in millrace_errors_total, logged
 * (rate-limited) as FILE:LINE: reason, and skipped. A file that is missing when the input
 * starts, or whose header lacks a configured column, fails start() with the path in the
 * message; the same problem with a later file of a glob is logged and that file skipped. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inputs/file_internal.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"

#define RETRY_MS  10  /* back-pressure: offer the batch again after this long */
#define FOLLOW_MS 250 /* follow: look for appended data this often */

extern const struct mr_plugin mr_input_file;

static const char *const format_values[] = {"csv", "json", NULL};
static const char *const pace_values[] = {"fast", "realtime", NULL};

/* ---- configuration ----------------------------------------------------------------------- */

static bool all_digits(const char *s)
{
    if (s == NULL || *s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
    }
    return true;
}

/* "," ";" "|" a tab ("\t" in YAML double quotes), or the word "tab". */
static int delimiter_of(const char *s)
{
    if (s != NULL && strcmp(s, "tab") == 0) {
        return '\t';
    }
    if (s == NULL || strlen(s) != 1 || s[0] == '"' || s[0] == '\n' || s[0] == '\r') {
        return -1;
    }
    return (unsigned char)s[0];
}

static void check_columns(const struct file_in_conf *c, struct mr_config_check *chk)
{
    const char *named[] = {c->time_column,   c->asset_column, c->quality_column,
                           c->signal_column, c->value_column, c->tags_column};
    const char *keys[] = {"time_column",   "asset_column", "quality_column",
                          "signal_column", "value_column", "tags_column"};
    for (size_t i = 0; !c->header && i < sizeof(named) / sizeof(named[0]); i++) {
        if (named[i] != NULL && (i != 4 || c->signal_column != NULL) && !all_digits(named[i])) {
            mr_config_check_fail(chk, keys[i],
                                 "with header: false, name columns by position from 1 "
                                 "(e.g. %s: 1), not '%s'",
                                 keys[i], named[i]);
        }
    }
    if (c->tag_columns.n > MR_RECORD_MAX_TAGS) {
        mr_config_check_fail(chk, "tag_columns", "at most %d tag columns", MR_RECORD_MAX_TAGS);
    }
    if (c->columns.n > MR_CSV_MAX_FIELDS) {
        mr_config_check_fail(chk, "columns", "at most %d columns", MR_CSV_MAX_FIELDS);
    }
    if (c->signal_column != NULL && c->columns.n > 0) {
        mr_config_check_fail(chk, "signal_column",
                             "use either signal_column (one signal per row, named in that "
                             "column) or columns (one column per signal), not both");
    }
}

static void file_conf_check(void *conf, struct mr_config_check *chk)
{
    const struct file_in_conf *c = conf;
    struct mr_time_format tf;
    struct mr_err err = {0};
    bool flat = c->format == FILE_FORMAT_CSV || c->columns.n > 0 || c->signal_column != NULL;
    if (mr_time_format_init(&tf, c->time_format, NULL, &err) != 0) {
        mr_config_check_fail(chk, "time_format", "%s", err.msg);
    }
    if (mr_time_format_init(&tf, NULL, c->timezone, &err) != 0) {
        mr_config_check_fail(chk, "timezone", "%s", err.msg);
    }
    if (delimiter_of(c->delimiter) < 0) {
        mr_config_check_fail(chk, "delimiter",
                             "one character such as ',' ';' '|', or \"\\t\" / tab, not '%s'",
                             c->delimiter != NULL ? c->delimiter : "");
    }
    if (flat && (c->asset == NULL) == (c->asset_column == NULL)) {
        mr_config_check_fail(chk, c->asset != NULL ? "asset_column" : "asset",
                             "set exactly one of asset (the same asset path for every row) "
                             "and asset_column (the column holding it)");
    }
    if (!flat) {
        const char *set = c->asset != NULL            ? "asset"
                          : c->asset_column != NULL   ? "asset_column"
                          : c->tag_columns.n > 0      ? "tag_columns"
                          : c->tags_column != NULL    ? "tags_column"
                          : c->quality_column != NULL ? "quality_column"
                                                      : NULL;
        if (set != NULL) {
            mr_config_check_fail(chk, set,
                                 "JSON lines in millrace's record format name their own asset, "
                                 "quality and tags; set columns or signal_column to read flat "
                                 "JSON objects instead");
        }
    }
    if (c->format == FILE_FORMAT_CSV) {
        check_columns(c, chk);
    } else if (!c->header) {
        mr_config_check_fail(chk, "header", "only used with format: csv");
    }
}

static const struct mr_field file_fields[] = {
    {.name = "path",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct file_in_conf, path),
     .flags = MR_FIELD_REQUIRED,
     .help = "File to read, or a pattern such as /data/press-*.csv: the matching files are read "
             "one after another in name order."},
    {.name = "format",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct file_in_conf, format),
     .def = "csv",
     .values = format_values,
     .help = "'csv': comma-separated values with a header row. 'json': one JSON object per line, "
             "either millrace records (as the file and stdout outputs write them) or, with "
             "columns or signal_column, flat objects mapped like CSV columns."},
    {.name = "header",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct file_in_conf, header),
     .def = "true",
     .help = "The first CSV row holds the column names. With false, columns are named by their "
             "position, 1 for the first (time_column: 1)."},
    {.name = "delimiter",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct file_in_conf, delimiter),
     .def = ",",
     .help = "Character between CSV fields: ',' ';' '|' or tab (write \"\\t\" or tab)."},
    {.name = "time_column",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct file_in_conf, time_column),
     .def = "time",
     .help = "Column (or JSON field) holding each row's timestamp."},
    {.name = "time_format",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct file_in_conf, time_format),
     .def = "rfc3339",
     .help = "How timestamps are written: rfc3339 (2026-11-24T16:49:00.5Z), unix_s, unix_ms, "
             "unix_us, unix_ns (numbers since 1970 UTC), or a pattern such as \"%Y-%m-%d "
             "%H:%M:%S\" (%Y %m %d %H %M %S %f %y %b %I %p %j %z %T %F; seconds may carry a "
             "fraction)."},
    {.name = "timezone",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct file_in_conf, timezone),
     .def = "UTC",
     .help = "UTC offset of timestamps written without one, e.g. \"+01:00\" or \"-05:30\". A "
             "fixed offset: daylight-saving changes inside a file are not followed."},
    {.name = "asset",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct file_in_conf, asset),
     .help = "Asset path of every row (site/area/line/machine), when the file is of one asset."},
    {.name = "asset_column",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct file_in_conf, asset_column),
     .help = "Column holding each row's asset path, when the file mixes assets."},
    {.name = "columns",
     .type = MR_FIELD_STRING_MAP,
     .offset = offsetof(struct file_in_conf, columns),
     .help = "Which columns are signals, and their signal names: {Temp_C: temperature}. Other "
             "columns are ignored. Default: every column not used otherwise is a signal of "
             "its own name."},
    {.name = "signal_column",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct file_in_conf, signal_column),
     .help = "For long files with one value per row: the column naming the signal (the "
             "value is in value_column)."},
    {.name = "value_column",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct file_in_conf, value_column),
     .def = "value",
     .help = "With signal_column: the column holding the value."},
    {.name = "quality_column",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct file_in_conf, quality_column),
     .help = "Column holding good, uncertain or bad for the row's values (empty: good). "
             "Default: every value is good."},
    {.name = "tag_columns",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct file_in_conf, tag_columns),
     .help = "Columns whose text is attached to the row's records as tags (key: the column "
             "name), e.g. [batch_id, operator]. Empty cells give no tag."},
    {.name = "tags_column",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct file_in_conf, tags_column),
     .help = "Column holding tags as key=value pairs separated by ';' (as the file output's CSV "
             "writes them; \\; \\= \\\\ escape those characters)."},
    {.name = "pace",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct file_in_conf, pace),
     .def = "fast",
     .values = pace_values,
     .help = "'fast': as fast as the pipeline takes records. 'realtime': replay at the pace "
             "the timestamps say, times speed."},
    {.name = "speed",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct file_in_conf, speed),
     .def = "1",
     .min = "0.001",
     .max = "1000000",
     .help = "With pace: realtime, how many times faster than recorded to replay (10: an hour "
             "of data in six minutes)."},
    {.name = "follow",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct file_in_conf, follow),
     .def = "false",
     .help = "At the end of the last file, keep waiting for lines appended to it (like tail "
             "-f) instead of ending."},
    {.name = "batch",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct file_in_conf, batch),
     .def = "1024",
     .min = "1",
     .max = "65536",
     .help = "Most records handed on at once."},
    {.name = "max_line",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct file_in_conf, max_line),
     .def = "1MiB",
     .min = "256B",
     .max = "64MiB",
     .help = "Longest line (CSV row or JSON line) accepted; longer ones are counted as errors "
             "and skipped."},
    {0},
};

/* ---- messages ---------------------------------------------------------------------------- */

static const char *cur_path(const struct file_ctx *c)
{
    return c->cur < c->npaths ? c->paths[c->cur] : "?";
}

static void line_error(struct file_ctx *c, uint64_t line, const char *why)
{
    mr_counter_add(c->counters.errors, 1);
    long suppressed = mr_log_ratelimit_pass(&c->rl, 5, 10000);
    if (suppressed > 0) {
        MR_LOG_WARN(c->host->name,
                    "%s:%" PRIu64 ": %s; line skipped (%ld similar messages suppressed)",
                    cur_path(c), line, why, suppressed);
    } else if (suppressed == 0) {
        MR_LOG_WARN(c->host->name, "%s:%" PRIu64 ": %s; line skipped", cur_path(c), line, why);
    }
}

/* ---- flow: batches, pauses, pace --------------------------------------------------------- */

static void idle_cb(uv_idle_t *h);

static void run(struct file_ctx *c)
{
    if (!c->running && !c->stopping && !c->ended) {
        uv_idle_start(&c->idle, idle_cb);
        c->running = true;
    }
}

static void timer_cb(uv_timer_t *t)
{
    run(t->data);
}

/* Stop reading for ms, then go on. */
static void pause_for(struct file_ctx *c, uint64_t ms)
{
    if (c->running) {
        uv_idle_stop(&c->idle);
        c->running = false;
    }
    uv_timer_start(&c->timer, timer_cb, ms, 0);
}

static void finish(struct file_ctx *c, int status)
{
    if (c->ended) {
        return;
    }
    c->ended = true;
    if (c->running) {
        uv_idle_stop(&c->idle);
        c->running = false;
    }
    if (c->started) {
        uv_timer_stop(&c->timer);
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->host->ended(c->host, status); /* last: the host may stop us from here */
}

bool mr_file_offer(struct file_ctx *c)
{
    if (c->nrecs == 0) {
        c->pending = false;
        return true;
    }
    int rc = c->host->emit(c->host, c->recs, c->nrecs);
    if (rc == MR_EAGAIN) {
        c->pending = true;
        pause_for(c, RETRY_MS);
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

bool mr_file_not_due(struct file_ctx *c, int64_t t)
{
    if (c->conf->pace != FILE_PACE_REALTIME) {
        return false;
    }
    if (!c->have_t0) {
        c->have_t0 = true;
        c->t0_event_ns = t;
        c->t0_mono_ns = c->now_mono_ns = mr_clock_mono_ns();
        return false;
    }
    if (t <= c->t0_event_ns) {
        return false;
    }
    double offset = ((double)t - (double)c->t0_event_ns) / c->conf->speed; /* no overflow */
    int64_t due = c->t0_mono_ns + (offset < 9e18 ? (int64_t)offset : INT64_MAX / 2);
    if (due <= c->now_mono_ns) {
        return false; /* the cached clock is enough while records are overdue */
    }
    c->now_mono_ns = mr_clock_mono_ns();
    if (due <= c->now_mono_ns) {
        return false;
    }
    c->wait_ns = due - c->now_mono_ns;
    return true;
}

/* A row is not due yet or the batch is stuck: hand over what is ready and wait. */
static void wait_row(struct file_ctx *c)
{
    if (c->pending || c->ended) {
        return; /* the retry timer is already set (or we are done) */
    }
    if (!mr_file_offer(c)) {
        return;
    }
    pause_for(c, (uint64_t)((c->wait_ns + 999999) / 1000000));
}

/* ---- lines ------------------------------------------------------------------------------- */

static bool last_followed(const struct file_ctx *c)
{
    return c->conf->follow && c->cur + 1 == c->npaths;
}

/* Skip the rest of an overlong line; true when its end was found. */
static bool skip_overlong(struct file_ctx *c)
{
    const char *nl = memchr(c->buf + c->start, '\n', c->end - c->start);
    if (nl == NULL) {
        c->start = c->end;
        return false;
    }
    c->start = (size_t)(nl - c->buf) + 1;
    c->skipping = false;
    c->line_no++;
    return true;
}

static bool blank_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
            return false;
        }
    }
    return true;
}

static void line_taken(struct file_ctx *c, int rc, bool blank)
{
    if (rc == ROW_BAD) {
        line_error(c, c->line_no + 1, c->why);
    }
    if (!blank) {
        mr_counter_add(c->counters.records_in, 1); /* lines read, good or bad */
    }
}

static int too_long(struct file_ctx *c)
{
    snprintf(c->why, sizeof(c->why), "longer than max_line (%" PRIu64 " bytes)", c->conf->max_line);
    return ROW_BAD;
}

/* One CSV row at c->start. Returns ROW_* or MR_CSV_MORE. */
static int csv_step(struct file_ctx *c, bool eof)
{
    struct mr_csv_row *row = &c->row;
    int rc = mr_csv_split(c->buf + c->start, c->end - c->start, eof, c->delim, row);
    bool blank = false;
    if (rc == MR_CSV_MORE) {
        return MR_CSV_MORE;
    }
    if (rc == MR_EPARSE) {
        snprintf(c->why, sizeof(c->why), "%s", row->why);
        rc = ROW_BAD;
    } else if (row->consumed > c->conf->max_line) {
        rc = too_long(c); /* the batch's arena is sized for max_line */
    } else if (row->nfields == 1 && !row->fields[0].quoted &&
               blank_text(row->fields[0].ptr, row->fields[0].len)) {
        blank = true;
        rc = ROW_DONE;
    } else {
        rc = mr_file_row_take(c, row->fields, row->nfields, 2 * row->consumed + 64);
    }
    if (rc == ROW_WAIT) {
        return rc;
    }
    line_taken(c, rc, blank);
    c->start += row->consumed;
    c->line_no += row->newlines > 0 ? row->newlines : 1;
    return rc;
}

/* One JSON line at c->start. Returns ROW_* or MR_CSV_MORE. */
static int json_step(struct file_ctx *c, bool eof)
{
    const char *line = c->buf + c->start;
    size_t avail = c->end - c->start;
    const char *nl = memchr(line, '\n', avail);
    if (nl == NULL && (!eof || avail == 0)) {
        return MR_CSV_MORE;
    }
    size_t len = nl != NULL ? (size_t)(nl - line) : avail;
    bool blank = blank_text(line, len);
    int rc = len > c->conf->max_line ? too_long(c) : mr_file_json_take(c, line, len);
    if (rc == ROW_WAIT) {
        return rc;
    }
    line_taken(c, rc, blank);
    c->start += nl != NULL ? len + 1 : len;
    c->line_no++;
    return rc;
}

/* Take every complete line in the buffer, then hand the batch over. False when the input
 * paused (pace, back-pressure) or ended. */
static bool drain(struct file_ctx *c)
{
    bool eof = c->eof && !last_followed(c);
    for (;;) {
        if (c->ended || c->stopping) {
            return false;
        }
        if (c->skipping && !skip_overlong(c)) {
            break;
        }
        int rc = c->conf->format == FILE_FORMAT_CSV ? csv_step(c, eof) : json_step(c, eof);
        if (rc == ROW_WAIT) {
            wait_row(c);
            return false;
        }
        if (rc != MR_CSV_MORE) {
            continue;
        }
        if (c->end - c->start >= c->conf->max_line) {
            too_long(c);
            line_error(c, c->line_no + 1, c->why);
            c->skipping = true;
            continue;
        }
        break;
    }
    return mr_file_offer(c);
}

/* ---- files ------------------------------------------------------------------------------- */

/* Read up to one chunk. Returns bytes read (0 at the end), or a negative MR_E* code. */
static long read_chunk(struct file_ctx *c)
{
    if (c->start > 0) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    size_t room = c->cap - c->end < FILE_CHUNK ? c->cap - c->end : FILE_CHUNK;
    ssize_t n;
    do {
        n = read(c->fd, c->buf + c->end, room);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return mr_err_from_errno(errno);
    }
    if (c->offset == 0 && n >= 3 && memcmp(c->buf, "\xEF\xBB\xBF", 3) == 0) {
        c->start = 3; /* a UTF-8 byte order mark, as spreadsheets write */
    }
    c->end += (size_t)n;
    c->offset += (uint64_t)n;
    return (long)n;
}

/* Read the CSV header row (or, without header, look at the first row) into the plan. An
 * empty file leaves the plan unmade (follow: it is made when the first bytes arrive). */
static int header_read(struct file_ctx *c, struct mr_err *err)
{
    for (;;) {
        if (c->eof && c->start == c->end) {
            return 0;
        }
        int rc = mr_csv_split(c->buf + c->start, c->end - c->start, c->eof, c->delim, &c->row);
        if (rc == 0) {
            break;
        }
        if (rc == MR_EPARSE) {
            return MR_ERR_SET(err, MR_EPARSE, "header row: %s", c->row.why);
        }
        if (c->end - c->start >= c->conf->max_line) {
            return MR_ERR_SET(err, MR_ETOOBIG, "header row longer than max_line");
        }
        long n = read_chunk(c);
        if (n < 0) {
            return MR_ERR_SET(err, (int)n, "cannot read: %s", mr_strerror((int)n));
        }
        c->eof = n == 0;
    }
    int rc = mr_file_plan_csv(c, &c->row, err);
    if (rc == 0) {
        c->has_plan = true;
        if (c->conf->header) {
            c->start += c->row.consumed;
            c->line_no += c->row.newlines;
        }
    }
    return rc;
}

/* Open paths[i] and, for CSV, read its header. err names what is wrong (without the path). */
static int file_open(struct file_ctx *c, size_t i, struct mr_err *err)
{
    struct stat st;
    c->cur = i;
    c->start = c->end = 0;
    c->offset = 0;
    c->line_no = 0;
    c->eof = c->skipping = false;
    c->has_plan = c->flat_json;
    c->fd = open(c->paths[i], O_RDONLY | O_CLOEXEC);
    if (c->fd < 0) {
        return MR_ERR_SET(err, mr_err_from_errno(errno), "cannot open: %s", strerror(errno));
    }
    if (fstat(c->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        return MR_ERR_SET(err, MR_ENOTSUP,
                          "not a regular file (read pipes and devices with the stdin input)");
    }
    if (c->conf->format == FILE_FORMAT_CSV) {
        return header_read(c, err);
    }
    return 0;
}

/* The current file is done: go on with the next one that opens, or end. */
static void file_next(struct file_ctx *c)
{
    struct mr_err err = {0};
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    while (c->cur + 1 < c->npaths) {
        if (file_open(c, c->cur + 1, &err) == 0) {
            return;
        }
        mr_counter_add(c->counters.errors, 1);
        MR_LOG_ERROR(c->host->name, "%s: %s; file skipped", cur_path(c), err.msg);
        if (c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
    }
    finish(c, 0);
}

/* follow: at the end of the last file, wait for more; a file that shrank (or could not be
 * read) starts over. */
static void follow_wait(struct file_ctx *c)
{
    struct stat st;
    struct mr_err err = {0};
    if (c->fd >= 0 && fstat(c->fd, &st) == 0 && (uint64_t)st.st_size < c->offset) {
        MR_LOG_INFO(c->host->name, "%s shrank: reading it again from the start", cur_path(c));
        close(c->fd);
        c->fd = -1;
    }
    if (c->fd < 0 && file_open(c, c->cur, &err) != 0) {
        mr_counter_add(c->counters.errors, 1);
        if (mr_log_ratelimit_pass(&c->rl, 5, 10000) >= 0) {
            MR_LOG_ERROR(c->host->name, "%s: %s; trying again", cur_path(c), err.msg);
        }
        if (c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
    }
    c->eof = false;
    pause_for(c, FOLLOW_MS);
}

/* A CSV file that was empty when opened (and followed) gets its plan from its first bytes.
 * False when the file had to be given up. */
static bool plan_ready(struct file_ctx *c)
{
    struct mr_err err = {0};
    if (c->conf->format != FILE_FORMAT_CSV || c->has_plan || c->start == c->end) {
        return true;
    }
    if (header_read(c, &err) == 0) {
        return true;
    }
    mr_counter_add(c->counters.errors, 1);
    MR_LOG_ERROR(c->host->name, "%s: %s; file skipped", cur_path(c), err.msg);
    close(c->fd);
    c->fd = -1;
    c->start = c->end = 0;
    return false;
}

static void idle_cb(uv_idle_t *h)
{
    struct file_ctx *c = h->data;
    if (c->ended || c->stopping || (c->pending && !mr_file_offer(c))) {
        return;
    }
    if (c->fd < 0) {
        if (last_followed(c)) {
            follow_wait(c);
        } else {
            file_next(c);
        }
        return;
    }
    if (!plan_ready(c) || !drain(c)) {
        return;
    }
    if (c->eof) {
        if (last_followed(c)) {
            follow_wait(c);
        } else {
            file_next(c);
        }
        return;
    }
    long n = read_chunk(c);
    if (n < 0) {
        MR_LOG_ERROR(c->host->name, "%s: read failed: %s", cur_path(c), mr_strerror((int)n));
        finish(c, (int)n);
        return;
    }
    c->eof = n == 0;
    if (plan_ready(c)) {
        drain(c);
    }
}

/* ---- the plugin -------------------------------------------------------------------------- */

static void file_fini(void *ctx)
{
    struct file_ctx *c = ctx;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->globbed) {
        globfree(&c->glob);
        c->globbed = false;
    }
    mr_free(c->buf);
    mr_free(c->recs);
    mr_free(c->arena);
    c->buf = NULL;
    c->recs = NULL;
    c->arena = NULL;
}

static int file_init(void *ctx, const void *conf, struct mr_input_host *host, struct mr_err *err)
{
    struct file_ctx *c = ctx;
    const struct file_in_conf *cf = conf;
    int rc;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->host = host;
    c->fd = -1;
    c->delim = (char)delimiter_of(cf->delimiter);
    c->flat_json = cf->format == FILE_FORMAT_JSON && (cf->columns.n > 0 || cf->signal_column);
    if ((rc = mr_time_format_init(&c->tf, cf->time_format, cf->timezone, err)) != 0) {
        return rc;
    }
    c->cap = (size_t)cf->max_line + FILE_CHUNK;
    c->rec_cap = (size_t)cf->batch;
    c->arena_cap = 2 * (size_t)cf->max_line + 128 + 32 * MR_CSV_MAX_FIELDS;
    c->buf = mr_malloc(c->cap);
    c->recs = mr_calloc(c->rec_cap, sizeof(*c->recs));
    c->arena = mr_malloc(c->arena_cap);
    if (c->buf == NULL || c->recs == NULL || c->arena == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        goto fail;
    }
    if (cf->asset != NULL &&
        (rc = mr_names_intern(host->names, cf->asset, strlen(cf->asset), &c->asset)) != 0) {
        MR_ERR_SET(err, rc, "cannot intern asset '%s': %s", cf->asset, mr_strerror(rc));
        goto fail;
    }
    if (c->flat_json && (rc = mr_file_plan_json(c, err)) != 0) {
        goto fail;
    }
    rc = mr_plugin_counters_register(host->metrics, &mr_input_file, host->name, &c->counters);
    if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
        goto fail;
    }
    return 0;
fail:
    file_fini(c);
    return rc;
}

/* The files to read: the path itself, or what its pattern matches, in name order. */
static int paths_find(struct file_ctx *c, struct mr_err *err)
{
    const char *path = c->conf->path;
    if (strpbrk(path, "*?[") == NULL) {
        c->single[0] = path;
        c->paths = c->single;
        c->npaths = 1;
        return 0;
    }
    int g = glob(path, 0, NULL, &c->glob);
    if (g == GLOB_NOMATCH) {
        return MR_ERR_SET(err, MR_ENOENT, "no file matches %s", path);
    }
    if (g != 0) {
        return MR_ERR_SET(err, g == GLOB_NOSPACE ? MR_ENOMEM : MR_EIO, "cannot list %s", path);
    }
    c->globbed = true;
    c->paths = (const char *const *)c->glob.gl_pathv;
    c->npaths = c->glob.gl_pathc;
    return 0;
}

static int file_start(void *ctx, struct mr_err *err)
{
    struct file_ctx *c = ctx;
    uv_loop_t *loop = c->host->loop;
    int rc = uv_idle_init(loop, &c->idle);
    if (rc != 0) {
        return MR_ERR_SET(err, mr_err_from_errno(-rc), "idle handle: %s", uv_strerror(rc));
    }
    c->idle.data = c;
    c->open_handles++;
    rc = uv_timer_init(loop, &c->timer);
    if (rc != 0) {
        return MR_ERR_SET(err, mr_err_from_errno(-rc), "timer: %s", uv_strerror(rc));
    }
    c->timer.data = c;
    c->open_handles++;
    c->started = true;
    if ((rc = paths_find(c, err)) != 0) {
        return rc;
    }
    struct mr_err ferr = {0};
    rc = file_open(c, 0, &ferr);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "%s: %s", c->paths[0], ferr.msg);
    }
    run(c);
    return 0;
}

static void maybe_stopped(struct file_ctx *c)
{
    if (c->stopping && c->open_handles == 0) {
        c->host->stopped(c->host);
    }
}

static void close_cb(uv_handle_t *h)
{
    struct file_ctx *c = h->data;
    c->open_handles--;
    maybe_stopped(c);
}

static void file_stop(void *ctx)
{
    struct file_ctx *c = ctx;
    if (c->stopping) {
        return;
    }
    c->stopping = true;
    c->running = false;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    int handles = c->open_handles;
    if (handles >= 1) {
        uv_close((uv_handle_t *)&c->idle, close_cb);
    }
    if (handles >= 2) {
        uv_close((uv_handle_t *)&c->timer, close_cb);
    }
    maybe_stopped(c);
}

const struct mr_plugin mr_input_file = {
    .kind = MR_PLUGIN_INPUT,
    .name = "file",
    .help = "Reads records from CSV or JSON-lines files (one file, or several by pattern), as "
            "fast as possible or replayed at their recorded pace: historian exports, test-rig "
            "logs, captures written by the file output.",
    .conf = {.fields = file_fields, .size = sizeof(struct file_in_conf), .check = file_conf_check},
    .ctx_size = sizeof(struct file_ctx),
    .input = {.init = file_init, .start = file_start, .stop = file_stop, .fini = file_fini},
};
