/* Output `file`: records appended to a file as JSON lines or CSV, with size- and age-based
 * rotation.
 *
 *   outputs:
 *     archive:
 *       type: file
 *       path: /var/lib/millrace/press3.jsonl
 *       format: json          # or csv
 *       rotate_bytes: 64MiB   # 0: never
 *       rotate_age: 1d        # 0: never
 *       keep: 5               # rotated files kept: press3.jsonl.1 (newest) .. .5 (oldest)
 *       fsync: false          # true: each flush reaches the disk (fdatasync)
 *     detections:             # one flat JSON object per record, chosen keys
 *       type: file
 *       path: out/detections.jsonl
 *       fields: [time, value, anomaly_score, alert]
 *       time_format: "%Y-%m-%d %H:%M:%S"
 *
 * Formats:
 *  - json: one line per record, exactly as mr_record_to_json writes it (and the file input and
 *    the stdin input read back); sample blocks included.
 *  - json with `fields`: one flat object per record with just those keys, in that order, e.g.
 *    {"time":"2013-12-02 21:15:00","value":73.967,"anomaly_score":0,"alert":false}. A key is
 *    a part of the record (time, asset, signal, value, quality) or a tag's name (tags.NAME
 *    names a tag whose name collides with a part). Values keep their type (numbers, true/false,
 *    text; a sample block or a NaN is null); tag text that is a number or true/false is
 *    written as a JSON number or boolean, other text as a string, a missing tag as null.
 *    `time` follows time_format: rfc3339 (default), unix_s / unix_ms / unix_ns (numbers) or a
 *    strftime pattern in UTC (whole seconds), so a CSV time column can be written back as it
 *    was read. The file input reads these objects with `columns` (flat JSON lines).
 *  - csv: a header `time,asset,signal,value,quality,tags`, then one row per record: time in
 *    RFC 3339 UTC with nanoseconds, the value as a number (shortest text that reads back to the
 *    same double), true/false or text, tags as key=value pairs joined by ';' with '\' before a
 *    literal ';', '=' or '\'. Fields are quoted per RFC 4180 when they hold a comma, quote,
 *    line end or surrounding blanks. The file input reads it back with signal_column: signal,
 *    asset_column: asset, quality_column: quality, tags_column: tags. A sample block has no
 *    sensible cell (thousands of numbers): such records are counted as errors, logged
 *    (rate-limited) and skipped; use format: json to keep them. CSV does not keep the
 *    difference between integer and floating values, nor a string that looks like a number.
 *
 * Rotation renames, like logrotate: before the write that would take the file past
 * rotate_bytes (or at the first write after rotate_age since the file was opened), path.{keep}
 * is deleted, path.{i} becomes path.{i+1}, path becomes path.1 and a new path is started (with
 * the CSV header). So path.1 is always the newest rotated file, and concatenating
 * path.{keep} .. path.1, path gives every record in order. A file never exceeds rotate_bytes
 * unless one record alone does. Only regular files rotate: a device or pipe as path (e.g.
 * /dev/null) is written without rotation.
 *
 * write() renders a batch into one buffer (grown up to max_record for a huge record) and writes
 * it with as few write() calls as the kernel takes, resuming after EINTR and short writes; it
 * runs on the output's own delivery thread, so blocking here holds back only this output.
 * A failed write (ENOSPC, EIO, ...) truncates the file back to where that write began, so a
 * retried batch never follows a torn line, and answers MR_SINK_RETRY saying why; the host
 * retries the batch later (records written by earlier write() calls of the same batch may be
 * written twice: delivery is at least once). The directory must exist: init fails naming it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"
#include "millrace/plugin.h"
#include "millrace/numtext.h"

#define INITIAL_BUF (256u * 1024u)
#define CSV_HEADER  "time,asset,signal,value,quality,tags\n"
#define MAX_FIELDS  64

extern const struct mr_plugin mr_output_file;

enum file_out_format {
    OUT_JSON = 0,
    OUT_CSV = 1,
};

static const char *const out_format_values[] = {"json", "csv", NULL};

struct file_out_conf {
    char *path;
    int format; /* enum file_out_format */
    uint64_t rotate_bytes;
    int64_t rotate_age_ns;
    int64_t keep;
    bool fsync;
    uint64_t max_record;
    struct mr_strlist fields;
    char *time_format;
};

/* One key of a flat JSON object: a part of the record, or a tag (by interned key). */
enum flat_kind { FLAT_TIME, FLAT_ASSET, FLAT_SIGNAL, FLAT_VALUE, FLAT_QUALITY, FLAT_TAG };

struct flat_field {
    enum flat_kind kind;
    mr_name_id tag;
    const char *name; /* the key written: conf->fields item, without a "tags." prefix */
};

enum time_kind { TIME_RFC3339, TIME_UNIX_S, TIME_UNIX_MS, TIME_UNIX_NS, TIME_PATTERN };

struct file_out_ctx {
    const struct file_out_conf *conf;
    const struct mr_output_host *host;
    struct mr_plugin_counters counters;
    struct mr_log_ratelimit rl;
    char dir[PATH_MAX];
    int fd;
    bool regular;     /* only regular files rotate and are truncated after a failed write */
    bool need_header; /* CSV: the file is new, the header goes first */
    bool has_records; /* the current file holds a record: rotation may start a new one */
    bool dirty;       /* written since the last fdatasync */
    uint64_t size;
    int64_t opened_ns;
    char *buf;
    size_t used, cap;
    struct flat_field flat[MAX_FIELDS]; /* fields: one flat JSON object per record */
    size_t nflat;
    enum time_kind time_kind;
};

static const struct mr_field file_out_fields[] = {
    {.name = "path",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct file_out_conf, path),
     .flags = MR_FIELD_REQUIRED,
     .help = "File to append records to; it is created if missing, its directory must exist."},
    {.name = "format",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct file_out_conf, format),
     .def = "json",
     .values = out_format_values,
     .help = "'json': one record per line, as the stdout output writes it (the file input reads "
             "it back exactly). 'csv': time,asset,signal,value,quality,tags rows for "
             "spreadsheets; records holding sample blocks are skipped and counted as errors."},
    {.name = "rotate_bytes",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct file_out_conf, rotate_bytes),
     .def = "64MiB",
     .help = "Start a new file before the current one would grow past this size; 0 never."},
    {.name = "rotate_age",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct file_out_conf, rotate_age_ns),
     .def = "0",
     .help = "Start a new file at the first write after the current one has been open this "
             "long (e.g. 1d for a file per day); 0 never."},
    {.name = "keep",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct file_out_conf, keep),
     .def = "5",
     .min = "0",
     .max = "1000",
     .help = "Rotated files kept, named PATH.1 (newest) to PATH.N; older ones are deleted. 0 "
             "deletes the file at rotation."},
    {.name = "fsync",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct file_out_conf, fsync),
     .def = "false",
     .help = "Make every flush wait until the data is on disk (fdatasync): nothing written is "
             "lost on power failure, at the cost of speed."},
    {.name = "max_record",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct file_out_conf, max_record),
     .def = "16MiB",
     .min = "64KiB",
     .max = "256MiB",
     .help = "Largest line written (a block of samples can be large); larger records are "
             "counted as errors and skipped."},
    {.name = "fields",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct file_out_conf, fields),
     .max = "64",
     .help = "format json only: write each record as one flat object with just these keys, in "
             "this order, e.g. [time, value, anomaly_score, alert]: time, asset, signal, value, "
             "quality, or a tag's name (tags.NAME also works). Tags holding a number or "
             "true/false are written as JSON numbers and booleans; a missing one as null. "
             "Empty: millrace's full record JSON."},
    {.name = "time_format",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct file_out_conf, time_format),
     .def = "rfc3339",
     .help = "How `time` is written with fields: rfc3339 (2026-11-24T16:49:00.500000000Z), "
             "unix_s, "
             "unix_ms, unix_ns (numbers), or a strftime pattern in UTC such as "
             "\"%Y-%m-%d %H:%M:%S\" (whole seconds), as the file input's time_format reads "
             "it back."},
    {0},
};

/* ---- rendering --------------------------------------------------------------------------- */

/* Bounded writer into the tail of the buffer. */
struct out {
    char *p;
    size_t len;
    size_t cap;
    bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->full || n > o->cap - o->len) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_ch(struct out *o, char ch)
{
    put(o, &ch, 1);
}

static bool csv_needs_quotes(const char *s, size_t len)
{
    if (len == 0) {
        return false;
    }
    if (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t') {
        return true;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r') {
            return true;
        }
    }
    return false;
}

/* Text as one CSV field; with tag_escape, ';' '=' '\' get a backslash first. */
static void put_text(struct out *o, const char *s, size_t len, bool quoted, bool tag_escape)
{
    if (!quoted && !tag_escape) {
        put(o, s, len);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (quoted && ch == '"') {
            put_ch(o, '"');
        } else if (tag_escape && (ch == ';' || ch == '=' || ch == '\\')) {
            put_ch(o, '\\');
        }
        put_ch(o, ch);
    }
}

static void put_field(struct out *o, const char *s, size_t len)
{
    bool q = csv_needs_quotes(s, len);
    if (q) {
        put_ch(o, '"');
    }
    put_text(o, s, len, q, false);
    if (q) {
        put_ch(o, '"');
    }
}

static void put_name(struct out *o, const struct mr_names *names, mr_name_id id)
{
    size_t len;
    const char *s = mr_names_str(names, id, &len);
    put_field(o, s, len);
}

static void put_double(struct out *o, double v)
{
    char tmp[40];
    int n;
    if (isnan(v)) {
        n = snprintf(tmp, sizeof(tmp), "NaN");
    } else if (isinf(v)) {
        n = snprintf(tmp, sizeof(tmp), "%s", v < 0 ? "-Inf" : "Inf");
    } else {
        n = mr_double_text(v, tmp, sizeof(tmp));
    }
    put(o, tmp, (size_t)n);
}

static void put_tags(struct out *o, const struct mr_record *rec, const struct mr_names *names)
{
    bool q = false; /* quote the whole cell when any part would need it alone */
    for (uint16_t i = 0; i < rec->ntags && !q; i++) {
        size_t klen;
        const char *k = mr_names_str(names, rec->tags[i].key, &klen);
        q = csv_needs_quotes(k, klen) ||
            csv_needs_quotes(rec->tags[i].value.ptr, rec->tags[i].value.len);
    }
    if (q) {
        put_ch(o, '"');
    }
    for (uint16_t i = 0; i < rec->ntags; i++) {
        size_t klen;
        const char *k = mr_names_str(names, rec->tags[i].key, &klen);
        if (i > 0) {
            put_ch(o, ';');
        }
        put_text(o, k, klen, q, true);
        put_ch(o, '=');
        put_text(o, rec->tags[i].value.ptr, rec->tags[i].value.len, q, true);
    }
    if (q) {
        put_ch(o, '"');
    }
}

/* One CSV row. Returns the length, MR_ETOOBIG (does not fit), MR_EINVAL (unknown name) or
 * MR_ENOTSUP (a sample block). */
static long csv_render(const struct mr_record *rec, const struct mr_names *names, char *out,
                       size_t cap)
{
    char ts[40];
    struct out o = {.p = out, .cap = cap};
    if (rec->type == MR_VALUE_SAMPLES) {
        return MR_ENOTSUP;
    }
    if (mr_names_str(names, rec->asset, NULL) == NULL ||
        mr_names_str(names, rec->signal, NULL) == NULL || rec->ntags > MR_RECORD_MAX_TAGS ||
        rec->quality > MR_QUALITY_BAD) {
        return MR_EINVAL;
    }
    for (uint16_t i = 0; i < rec->ntags; i++) {
        if (mr_names_str(names, rec->tags[i].key, NULL) == NULL) {
            return MR_EINVAL;
        }
    }
    put(&o, ts, mr_time_format_rfc3339(rec->time_ns, ts, sizeof(ts)));
    put_ch(&o, ',');
    put_name(&o, names, rec->asset);
    put_ch(&o, ',');
    put_name(&o, names, rec->signal);
    put_ch(&o, ',');
    switch (rec->type) {
    case MR_VALUE_F64:
        put_double(&o, rec->v.f64);
        break;
    case MR_VALUE_I64: {
        char tmp[24];
        int n = snprintf(tmp, sizeof(tmp), "%" PRId64, rec->v.i64);
        put(&o, tmp, (size_t)n);
        break;
    }
    case MR_VALUE_BOOL:
        put(&o, rec->v.b ? "true" : "false", rec->v.b ? 4 : 5);
        break;
    case MR_VALUE_STRING:
        put_field(&o, rec->v.str.ptr, rec->v.str.len);
        break;
    default:
        return MR_EINVAL;
    }
    put_ch(&o, ',');
    const char *q = mr_quality_name((enum mr_quality)rec->quality);
    put(&o, q, strlen(q));
    put_ch(&o, ',');
    put_tags(&o, rec, names);
    put_ch(&o, '\n');
    return o.full ? MR_ETOOBIG : (long)o.len;
}

/* ---- flat JSON (fields) ------------------------------------------------------------------ */

static void put_json_str(struct out *o, const char *s, size_t len)
{
    put_ch(o, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            put_ch(o, '\\');
            put_ch(o, (char)ch);
        } else if (ch < 0x20) {
            char esc[8];
            int n = snprintf(esc, sizeof(esc), "\\u%04x", ch);
            put(o, esc, (size_t)n);
        } else {
            put_ch(o, (char)ch);
        }
    }
    put_ch(o, '"');
}

/* A finite double as a JSON number, the shortest text that reads back to it; NaN and
 * infinities have none: null. */
static void put_json_double(struct out *o, double v)
{
    char tmp[40];
    int n = 4;
    if (!isfinite(v)) {
        put(o, "null", 4);
        return;
    }
    n = mr_double_text(v, tmp, sizeof(tmp));
    put(o, tmp, (size_t)n);
}

/* Tag text typed: true/false as booleans, a number as a number, anything else as a string. */
static void put_json_typed(struct out *o, const char *s, size_t len)
{
    char tmp[64];
    if ((len == 4 && memcmp(s, "true", 4) == 0) || (len == 5 && memcmp(s, "false", 5) == 0)) {
        put(o, s, len);
        return;
    }
    if (len > 0 && len < sizeof(tmp) && s[0] != ' ') {
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        char *end = NULL;
        double v = strtod(tmp, &end);
        if (end == tmp + len && isfinite(v)) {
            put_json_double(o, v);
            return;
        }
    }
    put_json_str(o, s, len);
}

static void put_time(const struct file_out_ctx *c, struct out *o, int64_t ns)
{
    char tmp[128];
    size_t n = 0;
    int64_t sec = ns / 1000000000;
    int64_t frac = ns % 1000000000;
    if (frac < 0) {
        sec--;
        frac += 1000000000;
    }
    switch (c->time_kind) {
    case TIME_UNIX_S:
        n = (size_t)snprintf(tmp, sizeof(tmp), "%" PRId64 ".%09" PRId64, sec, frac);
        break;
    case TIME_UNIX_MS:
        n = (size_t)snprintf(tmp, sizeof(tmp), "%" PRId64, sec * 1000 + frac / 1000000);
        break;
    case TIME_UNIX_NS:
        n = (size_t)snprintf(tmp, sizeof(tmp), "%" PRId64, ns);
        break;
    case TIME_PATTERN: {
        time_t t = (time_t)sec;
        struct tm tm;
        n = gmtime_r(&t, &tm) != NULL ? strftime(tmp, sizeof(tmp), c->conf->time_format, &tm) : 0;
        put_json_str(o, tmp, n);
        return;
    }
    default:
        n = mr_time_format_rfc3339(ns, tmp, sizeof(tmp));
        put_json_str(o, tmp, n);
        return;
    }
    put(o, tmp, n);
}

static void put_value(struct out *o, const struct mr_record *rec)
{
    switch (rec->type) {
    case MR_VALUE_F64:
        put_json_double(o, rec->v.f64);
        break;
    case MR_VALUE_I64: {
        char tmp[24];
        int n = snprintf(tmp, sizeof(tmp), "%" PRId64, rec->v.i64);
        put(o, tmp, (size_t)n);
        break;
    }
    case MR_VALUE_BOOL:
        put(o, rec->v.b ? "true" : "false", rec->v.b ? 4 : 5);
        break;
    case MR_VALUE_STRING:
        put_json_str(o, rec->v.str.ptr, rec->v.str.len);
        break;
    default:
        put(o, "null", 4); /* a sample block has no single value */
        break;
    }
}

static void put_flat_field(const struct file_out_ctx *c, struct out *o, const struct flat_field *f,
                           const struct mr_record *rec)
{
    size_t len = 0;
    const char *s = NULL;
    switch (f->kind) {
    case FLAT_TIME:
        put_time(c, o, rec->time_ns);
        return;
    case FLAT_ASSET:
    case FLAT_SIGNAL:
        s = mr_names_str(c->host->names, f->kind == FLAT_ASSET ? rec->asset : rec->signal, &len);
        put_json_str(o, s != NULL ? s : "", s != NULL ? len : 0);
        return;
    case FLAT_VALUE:
        put_value(o, rec);
        return;
    case FLAT_QUALITY:
        s = mr_quality_name((enum mr_quality)rec->quality);
        put_json_str(o, s, strlen(s));
        return;
    default:
        for (uint16_t i = 0; i < rec->ntags && i < MR_RECORD_MAX_TAGS; i++) {
            if (rec->tags[i].key == f->tag) {
                put_json_typed(o, rec->tags[i].value.ptr, rec->tags[i].value.len);
                return;
            }
        }
        put(o, "null", 4);
        return;
    }
}

/* {"time":...,"value":...} with the configured keys, newline included. */
static long flat_render(const struct file_out_ctx *c, const struct mr_record *rec, char *out,
                        size_t cap)
{
    struct out o = {.p = out, .cap = cap};
    put_ch(&o, '{');
    for (size_t i = 0; i < c->nflat; i++) {
        if (i > 0) {
            put_ch(&o, ',');
        }
        put_json_str(&o, c->flat[i].name, strlen(c->flat[i].name));
        put_ch(&o, ':');
        put_flat_field(c, &o, &c->flat[i], rec);
    }
    put(&o, "}\n", 2);
    return o.full ? MR_ETOOBIG : (long)o.len;
}

static enum time_kind time_kind_of(const char *s)
{
    static const struct {
        const char *name;
        enum time_kind kind;
    } kinds[] = {{"rfc3339", TIME_RFC3339},
                 {"unix_s", TIME_UNIX_S},
                 {"unix_ms", TIME_UNIX_MS},
                 {"unix_ns", TIME_UNIX_NS}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (s == NULL || strcmp(s, kinds[i].name) == 0) {
            return s == NULL ? TIME_RFC3339 : kinds[i].kind;
        }
    }
    return TIME_PATTERN;
}

/* Resolve conf->fields once: parts of the record by name, the rest as interned tag keys. */
static int flat_init(struct file_out_ctx *c, struct mr_err *err)
{
    static const char *const parts[] = {"time", "asset", "signal", "value", "quality"};
    const struct mr_strlist *fl = &c->conf->fields;
    c->time_kind = time_kind_of(c->conf->time_format);
    for (size_t i = 0; i < fl->n && i < MAX_FIELDS; i++) {
        struct flat_field *f = &c->flat[i];
        const char *name = fl->items[i];
        f->kind = FLAT_TAG;
        if (strncmp(name, "tags.", 5) == 0) {
            name += 5;
        } else {
            for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
                if (strcmp(name, parts[k]) == 0) {
                    f->kind = (enum flat_kind)k;
                }
            }
        }
        f->name = name;
        int rc =
            f->kind == FLAT_TAG ? mr_names_intern(c->host->names, name, strlen(name), &f->tag) : 0;
        if (rc != 0) {
            return MR_ERR_SET(err, rc, "fields: cannot intern '%s': %s", name, mr_strerror(rc));
        }
    }
    c->nflat = fl->n < MAX_FIELDS ? fl->n : MAX_FIELDS;
    return 0;
}

static void file_out_check(void *conf, struct mr_config_check *chk)
{
    const struct file_out_conf *c = conf;
    if (c->fields.n > 0 && c->format != OUT_JSON) {
        mr_config_check_fail(chk, "fields", "fields (flat objects) need format: json");
    }
    for (size_t i = 0; i < c->fields.n; i++) {
        const char *f = c->fields.items[i];
        if (f[0] == '\0' || strcmp(f, "tags.") == 0) {
            mr_config_check_fail(chk, "fields", "item %zu is empty: name a record part or a tag",
                                 i + 1);
        }
    }
    const char *tf = c->time_format;
    if (tf != NULL && time_kind_of(tf) == TIME_PATTERN && strchr(tf, '%') == NULL) {
        mr_config_check_fail(chk, "time_format",
                             "'%s' is neither rfc3339, unix_s, unix_ms, unix_ns nor a strftime "
                             "pattern such as \"%%Y-%%m-%%d %%H:%%M:%%S\"",
                             tf);
    }
    if (tf != NULL && time_kind_of(tf) != TIME_RFC3339 && c->fields.n == 0) {
        mr_config_check_fail(chk, "time_format",
                             "applies to flat objects only: set fields too (the record JSON and "
                             "CSV always write RFC 3339)");
    }
}

/* One line (newline included) into out. */
static long line_render(const struct file_out_ctx *c, const struct mr_record *rec, char *out,
                        size_t cap)
{
    if (c->conf->format == OUT_CSV) {
        return csv_render(rec, c->host->names, out, cap);
    }
    if (c->nflat > 0) {
        return flat_render(c, rec, out, cap);
    }
    if (cap < 2) {
        return MR_ETOOBIG;
    }
    long n = mr_record_to_json(rec, c->host->names, out, cap - 1);
    if (n >= 0) {
        out[n++] = '\n';
    }
    return n;
}

/* ---- the file ---------------------------------------------------------------------------- */

static int file_create(struct file_out_ctx *c, struct mr_err *err)
{
    struct stat st;
    const char *path = c->conf->path;
    c->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (c->fd < 0) {
        int e = errno;
        return MR_ERR_SET(err, mr_err_from_errno(e), "cannot open %s: %s", path, strerror(e));
    }
    if (fstat(c->fd, &st) != 0) {
        int e = errno;
        close(c->fd);
        c->fd = -1;
        return MR_ERR_SET(err, mr_err_from_errno(e), "cannot stat %s: %s", path, strerror(e));
    }
    c->regular = S_ISREG(st.st_mode);
    c->size = c->regular ? (uint64_t)st.st_size : 0;
    c->need_header = c->conf->format == OUT_CSV && c->size == 0;
    c->has_records = c->size > 0;
    c->opened_ns = mr_clock_mono_ns();
    return 0;
}

static int dir_sync(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return mr_err_from_errno(errno);
    }
    int rc = fsync(fd) == 0 ? 0 : mr_err_from_errno(errno);
    close(fd);
    return rc;
}

/* path.{i}, or path itself for i == 0. */
static int rotated_name(const char *path, int64_t i, char *out, size_t cap)
{
    int n = i == 0 ? snprintf(out, cap, "%s", path) : snprintf(out, cap, "%s.%" PRId64, path, i);
    return n < 0 || (size_t)n >= cap ? MR_ETOOBIG : 0;
}

/* Shift the rotated files up by one and start a new path. */
static int file_rotate(struct file_out_ctx *c, struct mr_err *err)
{
    const char *path = c->conf->path;
    char from[PATH_MAX];
    char to[PATH_MAX];
    if (c->conf->fsync && c->dirty && fdatasync(c->fd) != 0) {
        int e = errno;
        return MR_ERR_SET(err, mr_err_from_errno(e), "cannot sync %s: %s", path, strerror(e));
    }
    close(c->fd);
    c->fd = -1;
    c->dirty = false;
    int64_t keep = c->conf->keep;
    if (rotated_name(path, keep, from, sizeof(from)) != 0) {
        return MR_ERR_SET(err, MR_ETOOBIG, "path too long to rotate: %s", path);
    }
    if (unlink(from) != 0 && errno != ENOENT) {
        int e = errno;
        return MR_ERR_SET(err, mr_err_from_errno(e), "cannot delete %s: %s", from, strerror(e));
    }
    for (int64_t i = keep - 1; i >= 0; i--) {
        rotated_name(path, i, from, sizeof(from));
        rotated_name(path, i + 1, to, sizeof(to));
        if (rename(from, to) != 0 && errno != ENOENT) {
            int e = errno;
            return MR_ERR_SET(err, mr_err_from_errno(e), "cannot rename %s to %s: %s", from, to,
                              strerror(e));
        }
    }
    if (c->conf->fsync) {
        dir_sync(c->dir);
    }
    MR_LOG_INFO(c->host->name, "rotated %s", path);
    return file_create(c, err);
}

/* Write all of buf (EINTR, short writes). On failure, cut the file back to where this write
 * began. Returns MR_SINK_OK, MR_SINK_RETRY or MR_SINK_FATAL. */
static int write_all(struct file_out_ctx *c, const char *buf, size_t len, struct mr_err *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(c->fd, buf + done, len - done);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        int e = n < 0 ? errno : EIO;
        if (done > 0 && c->regular && ftruncate(c->fd, (off_t)c->size) != 0) {
            MR_LOG_WARN(c->host->name, "cannot cut %s back after a failed write: %s", c->conf->path,
                        strerror(errno));
        }
        MR_ERR_SET(err, mr_err_from_errno(e), "cannot write %s: %s", c->conf->path, strerror(e));
        return e == EBADF || e == EINVAL || e == EFBIG ? MR_SINK_FATAL : MR_SINK_RETRY;
    }
    c->size += len;
    c->dirty = true;
    return MR_SINK_OK;
}

/* Write what is buffered; its records count as delivered when that worked. */
static int drain(struct file_out_ctx *c, size_t *nbuffered, struct mr_err *err)
{
    int answer = c->used > 0 ? write_all(c, c->buf, c->used, err) : MR_SINK_OK;
    if (answer == MR_SINK_OK) {
        mr_counter_add(c->counters.records_out, *nbuffered);
    }
    c->used = 0;
    *nbuffered = 0;
    return answer;
}

static bool rotate_due(const struct file_out_ctx *c, size_t more)
{
    uint64_t limit = c->conf->rotate_bytes;
    return c->regular && c->has_records && limit > 0 && c->size + c->used + more > limit;
}

/* Render rec at the end of the buffer (growing it up to max_record when it is empty).
 * Returns the length, MR_EAGAIN (drain first) or a code saying why the record is skipped. */
static long render(struct file_out_ctx *c, const struct mr_record *rec)
{
    for (;;) {
        long n = line_render(c, rec, c->buf + c->used, c->cap - c->used);
        if (n >= 0 && (uint64_t)n > c->conf->max_record) {
            return MR_ETOOBIG; /* fitted the buffer, but not the limit */
        }
        if (n != MR_ETOOBIG) {
            return n;
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

static void record_skipped(struct file_out_ctx *c, long why)
{
    mr_counter_add(c->counters.errors, 1);
    long suppressed = mr_log_ratelimit_pass(&c->rl, 5, 10000);
    const char *what = why == MR_ENOTSUP   ? "a sample block has no CSV form; use format: json"
                       : why == MR_ETOOBIG ? "larger than max_record"
                                           : mr_strerror((int)why);
    if (suppressed > 0) {
        MR_LOG_WARN(c->host->name, "record skipped: %s (%ld similar messages suppressed)", what,
                    suppressed);
    } else if (suppressed == 0) {
        MR_LOG_WARN(c->host->name, "record skipped: %s", what);
    }
}

/* The rendered record at buf[used, used + len) goes to a new file: write what precedes it,
 * rotate, and put it (after the CSV header) at the start of the buffer. */
static int rotate_before(struct file_out_ctx *c, size_t len, size_t *nbuffered, struct mr_err *err)
{
    size_t at = c->used;
    int answer = at > 0 ? write_all(c, c->buf, at, err) : MR_SINK_OK;
    if (answer != MR_SINK_OK) {
        return answer;
    }
    mr_counter_add(c->counters.records_out, *nbuffered);
    *nbuffered = 0;
    if (file_rotate(c, err) != 0) {
        c->used = 0;
        return MR_SINK_RETRY;
    }
    size_t hdr = c->need_header ? sizeof(CSV_HEADER) - 1 : 0;
    memmove(c->buf + hdr, c->buf + at, len);
    memcpy(c->buf, CSV_HEADER, hdr);
    c->need_header = false;
    c->used = hdr;
    return MR_SINK_OK;
}

static int file_out_write(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct file_out_ctx *c = ctx;
    size_t nbuffered = 0;
    int answer = MR_SINK_OK;
    mr_counter_add(c->counters.records_in, n);
    c->used = 0;
    if (c->fd < 0 && file_create(c, err) != 0) {
        return MR_SINK_RETRY; /* a rotation failed half-way: try the file again */
    }
    int64_t age = c->conf->rotate_age_ns;
    if (age > 0 && c->regular && c->has_records && mr_clock_mono_ns() - c->opened_ns >= age &&
        file_rotate(c, err) != 0) {
        return MR_SINK_RETRY;
    }
    for (size_t i = 0; i < n && answer == MR_SINK_OK;) {
        if (c->need_header) {
            memcpy(c->buf + c->used, CSV_HEADER, sizeof(CSV_HEADER) - 1); /* cap >= 64 KiB */
            c->used += sizeof(CSV_HEADER) - 1;
            c->need_header = false;
        }
        long len = render(c, &recs[i]);
        if (len == MR_EAGAIN) {
            answer = drain(c, &nbuffered, err);
            continue;
        }
        i++;
        if (len < 0) {
            record_skipped(c, len);
            continue;
        }
        if (rotate_due(c, (size_t)len)) {
            answer = rotate_before(c, (size_t)len, &nbuffered, err);
            if (answer != MR_SINK_OK) {
                break;
            }
        }
        c->used += (size_t)len;
        c->has_records = true;
        nbuffered++;
    }
    if (answer == MR_SINK_OK) {
        answer = drain(c, &nbuffered, err);
    }
    c->used = 0;
    if (c->cap > INITIAL_BUF) {
        char *shrunk = mr_realloc(c->buf, INITIAL_BUF); /* give back what one huge record took */
        if (shrunk != NULL) {
            c->buf = shrunk;
            c->cap = INITIAL_BUF;
        }
    }
    return answer;
}

static int file_out_flush(void *ctx, struct mr_err *err)
{
    struct file_out_ctx *c = ctx;
    if (!c->conf->fsync || !c->dirty || c->fd < 0) {
        return MR_SINK_OK; /* write() leaves nothing buffered in millrace */
    }
    if (fdatasync(c->fd) != 0 && errno != EINVAL) {
        int e = errno;
        MR_ERR_SET(err, mr_err_from_errno(e), "cannot sync %s: %s", c->conf->path, strerror(e));
        return MR_SINK_RETRY;
    }
    c->dirty = false;
    return MR_SINK_OK;
}

static void file_out_fini(void *ctx)
{
    struct file_out_ctx *c = ctx;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    mr_free(c->buf);
    c->buf = NULL;
}

/* The directory of path must exist: say so by name rather than "no such file". */
static int dir_check(struct file_out_ctx *c, struct mr_err *err)
{
    const char *path = c->conf->path;
    const char *slash = strrchr(path, '/');
    struct stat st;
    int n = slash == NULL   ? snprintf(c->dir, sizeof(c->dir), ".")
            : slash == path ? snprintf(c->dir, sizeof(c->dir), "/")
                            : snprintf(c->dir, sizeof(c->dir), "%.*s", (int)(slash - path), path);
    if (n < 0 || (size_t)n >= sizeof(c->dir) || strlen(path) + 8 >= PATH_MAX) {
        return MR_ERR_SET(err, MR_ETOOBIG, "path too long: %s", path);
    }
    if (stat(c->dir, &st) != 0) {
        int e = errno;
        return MR_ERR_SET(err, mr_err_from_errno(e), "directory %s (of %s) %s", c->dir, path,
                          e == ENOENT ? "does not exist: create it first" : strerror(e));
    }
    if (!S_ISDIR(st.st_mode)) {
        return MR_ERR_SET(err, MR_ENOTSUP, "%s (in %s) is not a directory", c->dir, path);
    }
    return 0;
}

static int file_out_init(void *ctx, const void *conf, struct mr_output_host *host,
                         struct mr_err *err)
{
    struct file_out_ctx *c = ctx;
    memset(c, 0, sizeof(*c));
    c->conf = conf;
    c->host = host;
    c->fd = -1;
    c->cap = INITIAL_BUF;
    int rc = dir_check(c, err);
    if (rc != 0) {
        return rc;
    }
    if ((rc = flat_init(c, err)) != 0) {
        return rc;
    }
    c->buf = mr_malloc(c->cap);
    if (c->buf == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    if ((rc = file_create(c, err)) != 0) {
        goto fail;
    }
    rc = mr_plugin_counters_register(host->metrics, &mr_output_file, host->name, &c->counters);
    if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
        goto fail;
    }
    return 0;
fail:
    file_out_fini(c);
    return rc;
}

const struct mr_plugin mr_output_file = {
    .kind = MR_PLUGIN_OUTPUT,
    .name = "file",
    .help = "Appends records to a file as JSON lines or CSV, starting a new file by size or "
            "age and keeping a set number of old ones: for archives, hand-over to other tools "
            "and spreadsheets.",
    .conf = {.fields = file_out_fields,
             .size = sizeof(struct file_out_conf),
             .check = file_out_check},
    .ctx_size = sizeof(struct file_out_ctx),
    .output = {.init = file_out_init,
               .write = file_out_write,
               .flush = file_out_flush,
               .fini = file_out_fini},
};
