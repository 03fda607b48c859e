/* Output `postgresql`: writes records into a PostgreSQL (or TimescaleDB) table, exactly once.
 *
 *   outputs:
 *     historian:
 *       type: postgresql
 *       connection: "host=db.plant port=5432 dbname=mes user=millrace password=${PGPASSWORD}"
 *       schema: public
 *       table: measurements         # created when missing (create_tables: true)
 *       layout: narrow              # one row per record; wide: one column per signal
 *       timescaledb: auto           # a hypertable when the extension is installed
 *   pipelines:
 *     store: {from: [plant.clean], to: [historian]}
 *
 * The narrow table: time timestamptz (microseconds, UTC), asset text, signal text, value
 * double precision (numbers; booleans as 1/0), value_text text (strings), quality smallint
 * (0 good, 1 uncertain, 2 bad), tags jsonb ({"key": "value"}). A table that already exists is
 * mapped by column name: time, asset and signal are required, the others are written when
 * present (their types may differ: values go as text, PostgreSQL converts them).
 *
 * Exactly once. The host calls write_at with a batch from one partition of one journal topic
 * and each record's offset. In ONE transaction the batch's rows are COPYed in and the next
 * offset is stored in millrace_output_offsets (output, topic, partition). Records whose offset
 * is below the stored one are already in the table (a batch read again after a crash, whose
 * journal cursor lagged behind the database) and are skipped. So every journal record is in the
 * table once, whatever moment the process dies.
 *
 * A row PostgreSQL refuses (a value out of range for a mapped column, a NOT NULL or CHECK
 * constraint, a string with a NUL byte or invalid UTF-8) fails the whole COPY. The batch is then
 * split in halves under SAVEPOINTs until the refused rows stand alone: each is rejected with
 * PostgreSQL's message (host->reject: the engine keeps it on the output's dead-letter topic) and
 * remembered in millrace_output_rejects in the same transaction, so a replay after a crash
 * rejects it again rather than losing it. The rest commits with the offset.
 *
 * Answers: server away, restarting, shutting down, out of disk, serialization failure, timeout
 * -> MR_SINK_RETRY (reconnect on the next call; the journal buffers); credentials, database,
 * privileges, a mapped table without the needed columns -> MR_SINK_FATAL with the reason.
 * Sample blocks are not stored (rejected with a reason).
 *
 * layout: wide (postgresql_wide.c) writes one row per (asset, time) with one column per signal
 * instead, in the same transaction as the offset; the checks above and the halving of a refused
 * batch are shared, only the rows differ.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "millrace/alloc.h"
#include "millrace/log.h"
#include "millrace/plugin.h"
#include "millrace/numtext.h"
#include "outputs/postgresql_internal.h"

extern const struct mr_plugin mr_output_postgresql;

#define MAX_NAME_IDS (1u << 24)

static const char *const layouts[] = {"narrow", "wide", NULL};
static const char *const tsdb_modes[] = {"auto", "on", "off", NULL};

/* A signal name usable as a column of the wide table (names the problem otherwise). */
static const char *signal_name_problem(const char *name, bool quality_columns)
{
    size_t len = strlen(name);
    if (len == 0 || len > PG_NAME_MAX) {
        return "must be 1..63 bytes (PostgreSQL's limit for a column name)";
    }
    if (quality_columns && len + sizeof("_quality") - 1 > PG_NAME_MAX) {
        return "must be at most 55 bytes with quality_columns (<signal>_quality is a column "
               "name too)";
    }
    if (strcmp(name, "time") == 0 || strcmp(name, "asset") == 0) {
        return "time and asset are the key columns of the wide table";
    }
    return NULL;
}

static void pg_check(void *conf, struct mr_config_check *chk)
{
    const struct pg_conf *c = conf;
    if (c->layout != PG_LAYOUT_WIDE && (c->signals.n > 0 || c->quality_columns)) {
        mr_config_check_fail(chk, c->signals.n > 0 ? "signals" : "quality_columns",
                             "only for layout: wide (narrow stores every signal and its quality)");
    }
    for (size_t i = 0; i < c->signals.n; i++) {
        const char *why = signal_name_problem(c->signals.items[i], c->quality_columns);
        if (why != NULL) {
            mr_config_check_fail(chk, "signals", "\"%s\": %s", c->signals.items[i], why);
        }
    }
    if (c->table != NULL && (c->table[0] == '\0' || strlen(c->table) > 63)) {
        mr_config_check_fail(chk, "table", "must be 1..63 characters (a PostgreSQL name)");
    }
    if (c->schema != NULL && (c->schema[0] == '\0' || strlen(c->schema) > 63)) {
        mr_config_check_fail(chk, "schema", "must be 1..63 characters (a PostgreSQL name)");
    }
    /* libpq takes a string without '=' that is no URI as a plain database name */
    const char *ci = c->connection;
    if (ci != NULL && (strchr(ci, '=') != NULL || strncmp(ci, "postgres://", 11) == 0 ||
                       strncmp(ci, "postgresql://", 13) == 0)) {
        char *why = NULL;
        PQconninfoOption *opts = PQconninfoParse(ci, &why);
        if (opts == NULL) {
            char msg[200];
            snprintf(msg, sizeof(msg), "%s", why != NULL ? why : "out of memory");
            msg[strcspn(msg, "\n")] = '\0';
            mr_config_check_fail(chk, "connection", "not a valid libpq connection string: %s", msg);
        }
        PQconninfoFree(opts);
        PQfreemem(why);
    }
}

static const struct mr_field pg_fields[] = {
    {.name = "connection",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct pg_conf, connection),
     .flags = MR_FIELD_REQUIRED,
     .help = "How to reach the database, as a libpq connection string (\"host=db port=5432 "
             "dbname=mes user=millrace password=...\") or URI (postgres://user@db/mes). Use "
             "${NAME} to take the password from the environment."},
    {.name = "schema",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct pg_conf, schema),
     .def = "public",
     .help = "Schema holding the data table and millrace's bookkeeping tables "
             "(millrace_output_offsets, millrace_output_rejects)."},
    {.name = "table",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct pg_conf, table),
     .def = "measurements",
     .help = "Table the records go to. layout narrow: one row per record (time, asset, signal, "
             "value, value_text, quality, tags); wide: one row per asset and time, one column "
             "per signal."},
    {.name = "layout",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct pg_conf, layout),
     .def = "narrow",
     .values = layouts,
     .help = "narrow: one row per record (time, asset, signal, value). wide: one row per asset "
             "and time with one column per signal (what Grafana and Telegraf users expect); "
             "records of the same asset and time are merged into one row, new signals add "
             "columns (with create_tables). See docs/OUTPUT_POSTGRESQL.md."},
    {.name = "timescaledb",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct pg_conf, timescaledb),
     .def = "auto",
     .values = tsdb_modes,
     .help = "auto: a table millrace creates becomes a TimescaleDB hypertable when the "
             "timescaledb extension is installed in the database, a plain table otherwise; "
             "on: require the extension; off: always a plain table."},
    {.name = "create_tables",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct pg_conf, create_tables),
     .def = "true",
     .help = "Create the schema and table (and, layout wide, a column per new signal) when they "
             "do not exist. false: the table must exist (made by your DBA): narrow with at least "
             "the columns time, asset, signal and value or value_text; wide with time, asset, a "
             "unique key on (asset, time) and a column per signal."},
    {.name = "timeout",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct pg_conf, timeout_ns),
     .def = "30s",
     .min = "1s",
     .max = "1h",
     .help = "Longest wait for the database: connecting, a silent network, one statement. "
             "After it the batch is retried."},
    {.name = "signals",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct pg_conf, signals),
     .help = "layout wide only: the signals stored, one column each (empty: every signal gets "
             "a column when it first appears). Records of other signals are rejected with the "
             "reason (dead-letter topic)."},
    {.name = "quality_columns",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct pg_conf, quality_columns),
     .def = "false",
     .help = "layout wide only: beside each signal column a <signal>_quality column (smallint: "
             "0 good, 1 uncertain, 2 bad). false: quality is not stored, values of bad quality "
             "are stored like good ones."},
    {0},
};

/* ---- escaping ---- */

/* Room for len more bytes in the COPY buffer (within PG_BUF_MAX). */
int pg_buf_reserve(struct pg_ctx *c, size_t len)
{
    if (c->used + len <= c->cap) {
        return 0;
    }
    if (c->used + len > PG_BUF_MAX + PG_FLUSH_BYTES) {
        return MR_ETOOBIG;
    }
    size_t cap = c->cap == 0 ? 64u * 1024u : c->cap;
    while (cap < c->used + len) {
        cap *= 2;
    }
    char *grown = mr_realloc(c->buf, cap);
    if (grown == NULL) {
        return MR_ENOMEM;
    }
    c->buf = grown;
    c->cap = cap;
    return 0;
}

/* COPY text format: backslash, newline, carriage return and tab are escaped; everything else
 * goes as is (PostgreSQL checks the encoding: a NUL byte or invalid UTF-8 is refused there). */
size_t pg_esc_copy(char *out, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        const char *e = ch == '\\'   ? "\\\\"
                        : ch == '\n' ? "\\n"
                        : ch == '\r' ? "\\r"
                        : ch == '\t' ? "\\t"
                                     : NULL;
        if (e != NULL) {
            out[o++] = e[0];
            out[o++] = e[1];
        } else {
            out[o++] = ch;
        }
    }
    return o;
}

/* The body of a JSON string, then COPY-escaped (at most 7 bytes per input byte). */
static size_t esc_json_copy(char *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"') {
            memcpy(out + o, "\\\\\"", 3); /* JSON \" ; COPY doubles the backslash */
            o += 3;
        } else if (ch == '\\') {
            memcpy(out + o, "\\\\\\\\", 4);
            o += 4;
        } else if (ch < 0x20) {
            memcpy(out + o, "\\\\u00", 5);
            out[o + 5] = hex[ch >> 4];
            out[o + 6] = hex[ch & 15];
            o += 7;
        } else {
            out[o++] = (char)ch;
        }
    }
    return o;
}

/* A name's escaped forms, made on its first use. NULL when out of memory or unknown. */
const struct pg_name *pg_name_get(struct pg_ctx *c, mr_name_id id)
{
    if (id == 0 || id >= MAX_NAME_IDS) {
        return NULL;
    }
    if (mr_array_hold((void **)&c->names, &c->nnames, sizeof(*c->names), id, 256, 0) != 0) {
        return NULL;
    }
    struct pg_name *e = &c->names[id];
    if (e->copy == NULL) {
        size_t len;
        const char *s = mr_names_str(c->host->names, id, &len);
        if (s == NULL || len > 65536) {
            return NULL;
        }
        e->copy = mr_malloc(2 * len + 1);
        e->json = mr_malloc(7 * len + 1);
        if (e->copy == NULL || e->json == NULL) {
            mr_free(e->copy);
            mr_free(e->json);
            e->copy = e->json = NULL;
            return NULL;
        }
        e->copy_len = (uint32_t)pg_esc_copy(e->copy, s, len);
        e->json_len = (uint32_t)esc_json_copy(e->json, s, len);
    }
    return e;
}

/* ---- rows ---- */

/* "YYYY-MM-DD HH:MM:SS.uuuuuu+00": microseconds (PostgreSQL's resolution), rounded down. */
size_t pg_fmt_time(struct pg_ctx *c, int64_t ns, char *out)
{
    int64_t us = ns / 1000 - (ns % 1000 < 0 ? 1 : 0);
    int64_t sec = us / 1000000 - (us % 1000000 < 0 ? 1 : 0);
    int frac = (int)(us - sec * 1000000);
    if (sec != c->fmt_sec || c->fmt_len == 0) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        /* int64 ns spans the years 1677..2262: always 19 characters */
        int n = snprintf(c->fmt_buf, sizeof(c->fmt_buf), "%04d-%02d-%02d %02d:%02d:%02d",
                         (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100,
                         tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100);
        c->fmt_len = n > 0 && (size_t)n < sizeof(c->fmt_buf) ? (size_t)n : 0;
        c->fmt_sec = sec;
    }
    memcpy(out, c->fmt_buf, c->fmt_len);
    int n = snprintf(out + c->fmt_len, 16, ".%06d+00", frac % 1000000);
    return c->fmt_len + (n > 0 ? (size_t)n : 0);
}

size_t pg_fmt_value(const struct mr_record *r, char *out)
{
    if (r->type == MR_VALUE_I64) {
        return (size_t)snprintf(out, 32, "%" PRId64, r->v.i64);
    }
    if (r->type == MR_VALUE_BOOL) {
        return (size_t)snprintf(out, 32, "%d", r->v.b ? 1 : 0);
    }
    double v = r->v.f64;
    if (isnan(v)) {
        return (size_t)snprintf(out, 32, "NaN");
    }
    if (isinf(v)) {
        return (size_t)snprintf(out, 32, "%s", v > 0 ? "Infinity" : "-Infinity");
    }
    /* exact, and readable in PostgreSQL's messages about the value */
    return (size_t)mr_double_text(v, out, 32);
}

/* Why recs cannot become a row of this table, or NULL when it can. */
static const char *row_refusal(const struct pg_ctx *c, const struct mr_record *r)
{
    if (r->type == MR_VALUE_SAMPLES) {
        return "sample blocks are not stored by the postgresql output (aggregate them first, "
               "e.g. with the vibration operator)";
    }
    if (r->type == MR_VALUE_STRING && !c->has_col[COL_VALUE_TEXT]) {
        return "string value, but the table has no value_text column";
    }
    if (r->type != MR_VALUE_STRING && !c->has_col[COL_VALUE]) {
        return "numeric value, but the table has no value column";
    }
    return NULL;
}

/* Upper bound of the row's COPY text. */
static size_t row_bound(struct pg_ctx *c, const struct mr_record *r)
{
    size_t n = 128;
    const struct pg_name *a = pg_name_get(c, r->asset);
    const struct pg_name *s = pg_name_get(c, r->signal);
    n += (a != NULL ? a->copy_len : 0) + (s != NULL ? s->copy_len : 0);
    if (r->type == MR_VALUE_STRING) {
        n += 2u * r->v.str.len;
    }
    for (uint16_t t = 0; t < r->ntags && t < MR_RECORD_MAX_TAGS; t++) {
        const struct pg_name *k = pg_name_get(c, r->tags[t].key);
        n += 8 + (k != NULL ? k->json_len : 0) + 7u * r->tags[t].value.len;
    }
    return n;
}

/* Append recs as one COPY line. Returns 0, MR_ETOOBIG, MR_ENOMEM or MR_EINVAL (unknown name). */
static int row_encode(struct pg_ctx *c, const struct mr_record *r)
{
    const struct pg_name *a = pg_name_get(c, r->asset);
    const struct pg_name *s = pg_name_get(c, r->signal);
    if (a == NULL || s == NULL) {
        return MR_EINVAL;
    }
    int rc = pg_buf_reserve(c, row_bound(c, r));
    if (rc != 0) {
        return rc;
    }
    char *p = c->buf + c->used;
    p += pg_fmt_time(c, r->time_ns, p);
    *p++ = '\t';
    memcpy(p, a->copy, a->copy_len);
    p += a->copy_len;
    *p++ = '\t';
    memcpy(p, s->copy, s->copy_len);
    p += s->copy_len;
    if (c->has_col[COL_VALUE]) {
        *p++ = '\t';
        if (r->type == MR_VALUE_STRING) {
            memcpy(p, "\\N", 2);
            p += 2;
        } else {
            p += pg_fmt_value(r, p);
        }
    }
    if (c->has_col[COL_VALUE_TEXT]) {
        *p++ = '\t';
        if (r->type == MR_VALUE_STRING) {
            p += pg_esc_copy(p, r->v.str.ptr, r->v.str.len);
        } else {
            memcpy(p, "\\N", 2);
            p += 2;
        }
    }
    if (c->has_col[COL_QUALITY]) {
        *p++ = '\t';
        *p++ = (char)('0' + (r->quality <= MR_QUALITY_BAD ? r->quality : MR_QUALITY_BAD));
    }
    if (c->has_col[COL_TAGS]) {
        *p++ = '\t';
        *p++ = '{';
        for (uint16_t t = 0; t < r->ntags && t < MR_RECORD_MAX_TAGS; t++) {
            const struct pg_name *k = pg_name_get(c, r->tags[t].key);
            if (k == NULL) {
                return MR_EINVAL;
            }
            if (t > 0) {
                *p++ = ',';
            }
            *p++ = '"';
            memcpy(p, k->json, k->json_len);
            p += k->json_len;
            memcpy(p, "\":\"", 3);
            p += 3;
            p += esc_json_copy(p, r->tags[t].value.ptr, r->tags[t].value.len);
            *p++ = '"';
        }
        *p++ = '}';
    }
    *p++ = '\n';
    c->used = (size_t)(p - c->buf);
    return 0;
}

/* ---- one transaction ---- */

/* Cut a truncated UTF-8 sequence off the end of s (a reason is stored as text). */
static void utf8_trim(char *s)
{
    size_t len = strlen(s);
    size_t i = len;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
    }
    if (i == 0 || (unsigned char)s[i - 1] < 0x80) {
        return;
    }
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (len - (i - 1) < need) {
        s[i - 1] = '\0';
    }
}

int pg_reject_add(struct pg_ctx *c, size_t index, const char *reason)
{
    if (c->nrejects == c->rejects_cap) {
        size_t cap = c->rejects_cap == 0 ? 16 : c->rejects_cap * 2;
        struct pg_reject *grown = mr_realloc(c->rejects, cap * sizeof(*grown));
        if (grown == NULL) {
            return MR_ENOMEM;
        }
        c->rejects = grown;
        c->rejects_cap = cap;
    }
    c->rejects[c->nrejects].index = index;
    snprintf(c->rejects[c->nrejects].reason, sizeof(c->rejects[0].reason), "%s", reason);
    utf8_trim(c->rejects[c->nrejects].reason);
    c->nrejects++;
    c->skip[index] = 1;
    return 0;
}

/* COPY recs[lo..hi) except the skipped ones. MR_SINK_OK, RETRY, FATAL or PG_DATA. */
static int copy_rows(struct pg_ctx *c, const struct mr_record *recs, size_t lo, size_t hi,
                     struct mr_err *err)
{
    PGresult *res = PQexec(c->conn, c->copy_sql);
    if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
        int answer = pg_classify(c, res, "COPY", err);
        PQclear(res);
        return answer;
    }
    PQclear(res);
    c->used = 0;
    int put = 1;
    for (size_t i = lo; i < hi && put == 1; i++) {
        if (c->skip[i]) {
            continue;
        }
        int rc = row_encode(c, &recs[i]);
        if (rc != 0) { /* checked before: only memory can fail here */
            PQputCopyEnd(c->conn, "millrace: out of memory");
            PQclear(PQgetResult(c->conn));
            MR_ERR_SET(err, rc, "cannot build the COPY data: %s", mr_strerror(rc));
            return MR_SINK_RETRY;
        }
        if (c->used >= PG_FLUSH_BYTES) {
            put = PQputCopyData(c->conn, c->buf, (int)c->used);
            c->used = 0;
        }
    }
    if (put == 1 && c->used > 0) {
        put = PQputCopyData(c->conn, c->buf, (int)c->used);
    }
    if (put != 1 || PQputCopyEnd(c->conn, NULL) != 1) {
        return pg_classify(c, NULL, "COPY", err);
    }
    int answer = MR_SINK_OK;
    while ((res = PQgetResult(c->conn)) != NULL) {
        if (answer == MR_SINK_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            answer = pg_classify(c, res, PG_REJECT_PREFIX, err);
        }
        PQclear(res);
        if (c->conn == NULL) {
            break;
        }
    }
    return answer;
}

/* COPY recs[lo..hi): the wide or the narrow rows. MR_SINK_OK, RETRY, FATAL or PG_DATA. */
static int copy_any(struct pg_ctx *c, const struct mr_record *recs, size_t lo, size_t hi,
                    struct mr_err *err)
{
    return c->wide != NULL ? pg_wide_copy(c, recs, lo, hi, err) : copy_rows(c, recs, lo, hi, err);
}

/* COPY recs[lo..hi) under a savepoint; rows PostgreSQL refuses are found by halving the range
 * and rejected one by one. MR_SINK_OK (the rest is in), RETRY or FATAL. */
static int copy_range(struct pg_ctx *c, const struct mr_record *recs, size_t lo, size_t hi,
                      struct mr_err *err)
{
    size_t rows = 0, last = lo;
    for (size_t i = lo; i < hi; i++) {
        if (!c->skip[i]) {
            rows++;
            last = i;
        }
    }
    if (rows == 0) {
        return MR_SINK_OK;
    }
    int answer = pg_exec(c, "SAVEPOINT millrace_rows", PGRES_COMMAND_OK, err);
    if (answer == MR_SINK_OK) {
        answer = copy_any(c, recs, lo, hi, err);
    }
    if (answer == MR_SINK_OK) {
        return pg_exec(c, "RELEASE SAVEPOINT millrace_rows", PGRES_COMMAND_OK, err);
    }
    if (answer != PG_DATA) {
        return answer;
    }
    char reason[256];
    snprintf(reason, sizeof(reason), "%s", err->msg);
    mr_err_clear(err);
    answer = pg_exec(c, "ROLLBACK TO SAVEPOINT millrace_rows", PGRES_COMMAND_OK, err);
    answer = answer == MR_SINK_OK
                 ? pg_exec(c, "RELEASE SAVEPOINT millrace_rows", PGRES_COMMAND_OK, err)
                 : answer;
    if (answer != MR_SINK_OK) {
        return answer == PG_DATA ? MR_SINK_RETRY : answer;
    }
    if (rows == 1) {
        if (pg_reject_add(c, last, reason) != 0) {
            MR_ERR_SET(err, MR_ENOMEM, "out of memory");
            return MR_SINK_RETRY;
        }
        return MR_SINK_OK;
    }
    size_t mid = lo + (hi - lo) / 2;
    answer = copy_range(c, recs, lo, mid, err);
    return answer == MR_SINK_OK ? copy_range(c, recs, mid, hi, err) : answer;
}

static int exec_params(struct pg_ctx *c, const char *sql, int n, const char *const *params,
                       struct mr_err *err)
{
    PGresult *res = PQexecParams(c->conn, sql, n, NULL, params, NULL, NULL, 0);
    int answer = MR_SINK_OK;
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        answer = pg_classify(c, res, sql, err);
        answer = answer == PG_DATA ? MR_SINK_FATAL : answer; /* our own tables: not the row's */
    }
    PQclear(res);
    return answer;
}

/* The batch's rejects, then the next offset and COMMIT in one round trip (a simple query of
 * two statements: PostgreSQL stops at the first that fails, and the transaction with it). */
static int store_and_commit(struct pg_ctx *c, const struct mr_output_position *pos, size_t n,
                            struct mr_err *err)
{
    char part[16], off[24], sql[800];
    snprintf(part, sizeof(part), "%" PRIu32, pos->partition);
    snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
             c->rejects_tbl);
    int answer = MR_SINK_OK;
    for (size_t k = 0; k < c->nrejects && answer == MR_SINK_OK; k++) {
        snprintf(off, sizeof(off), "%" PRId64, pos->offsets[c->rejects[k].index]);
        const char *p[5] = {c->host->name, pos->topic, part, off, c->rejects[k].reason};
        answer = exec_params(c, sql, 5, p, err);
    }
    if (answer != MR_SINK_OK) {
        return answer;
    }
    char *out_lit = PQescapeLiteral(c->conn, c->host->name, strlen(c->host->name));
    char *topic_lit = PQescapeLiteral(c->conn, pos->topic, strlen(pos->topic));
    int len =
        out_lit != NULL && topic_lit != NULL
            ? snprintf(sql, sizeof(sql),
                       "INSERT INTO %s VALUES (%s, %s, %" PRIu32 ", %" PRId64
                       ") ON CONFLICT (output, topic, partition) DO UPDATE SET "
                       "next_offset = EXCLUDED.next_offset; COMMIT",
                       c->offsets_tbl, out_lit, topic_lit, pos->partition, pos->offsets[n - 1] + 1)
            : -1;
    PQfreemem(out_lit);
    PQfreemem(topic_lit);
    if (len < 0 || (size_t)len >= sizeof(sql)) {
        MR_ERR_SET(err, MR_ENOMEM, "cannot build the offset statement");
        return MR_SINK_RETRY;
    }
    PGresult *res = PQexec(c->conn, sql);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        answer = pg_classify(c, res, "storing the offset and COMMIT", err);
        /* our own table, not the rows: not a rejection; a lost COMMIT: the offsets will tell */
        answer = answer == MR_SINK_FATAL ? MR_SINK_FATAL : MR_SINK_RETRY;
    } else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        MR_ERR_SET(err, MR_EIO, "COMMIT answered %s", PQcmdStatus(res));
        answer = MR_SINK_RETRY;
    }
    PQclear(res);
    return answer;
}

/* Every name of r resolves (row_encode cannot fail on names then). */
static bool names_known(struct pg_ctx *c, const struct mr_record *r)
{
    bool ok = pg_name_get(c, r->asset) != NULL && pg_name_get(c, r->signal) != NULL;
    for (uint16_t t = 0; ok && t < r->ntags && t < MR_RECORD_MAX_TAGS; t++) {
        ok = pg_name_get(c, r->tags[t].key) != NULL;
    }
    return ok;
}

static int write_txn(struct pg_ctx *c, const struct mr_output_position *pos,
                     const struct mr_record *recs, size_t first, size_t n, struct mr_err *err)
{
    for (size_t i = first; i < n && c->wide == NULL; i++) {
        const char *why = row_refusal(c, &recs[i]);
        char big[96];
        if (why == NULL && row_bound(c, &recs[i]) > PG_BUF_MAX) {
            snprintf(big, sizeof(big), "record too large for one row (over %u MiB as text)",
                     PG_BUF_MAX >> 20);
            why = big;
        }
        if (why == NULL && !names_known(c, &recs[i])) {
            why = "unknown asset, signal or tag name id";
        }
        if (why != NULL && pg_reject_add(c, i, why) != 0) {
            MR_ERR_SET(err, MR_ENOMEM, "out of memory");
            return MR_SINK_RETRY;
        }
    }
    int answer = c->wide != NULL ? pg_wide_prepare(c, recs, first, n, err) : MR_SINK_OK;
    answer = answer == MR_SINK_OK ? pg_exec(c, "BEGIN", PGRES_COMMAND_OK, err) : answer;
    /* Usually every row goes in: one COPY, no savepoint (two round trips fewer). When one is
     * refused, the transaction is lost: again from BEGIN, halving under savepoints. */
    size_t rows = 0;
    for (size_t i = first; i < n; i++) {
        rows += !c->skip[i];
    }
    if (answer == MR_SINK_OK && rows > 0) {
        answer = copy_any(c, recs, first, n, err);
        if (answer == PG_DATA) {
            mr_err_clear(err);
            answer = pg_exec(c, "ROLLBACK", PGRES_COMMAND_OK, err);
            answer = answer == MR_SINK_OK ? pg_exec(c, "BEGIN", PGRES_COMMAND_OK, err) : answer;
            answer = answer == MR_SINK_OK ? copy_range(c, recs, first, n, err) : answer;
        }
    }
    answer = answer == MR_SINK_OK ? store_and_commit(c, pos, n, err) : answer;
    return answer == PG_DATA ? MR_SINK_RETRY : answer;
}

/* Records of a replayed stretch that an earlier run rejected: reject them again (the engine
 * may not have kept them before the crash). */
static int replay_rejects(struct pg_ctx *c, const struct mr_output_position *pos, size_t first,
                          struct mr_err *err)
{
    char sql[800], part[16], lo[24], hi[24];
    snprintf(sql, sizeof(sql),
             "SELECT journal_offset, reason FROM %s WHERE output = $1 AND topic = $2 AND "
             "partition = $3 AND journal_offset BETWEEN $4 AND $5 ORDER BY journal_offset",
             c->rejects_tbl);
    snprintf(part, sizeof(part), "%" PRIu32, pos->partition);
    snprintf(lo, sizeof(lo), "%" PRId64, pos->offsets[0]);
    snprintf(hi, sizeof(hi), "%" PRId64, pos->offsets[first - 1]);
    const char *p[5] = {c->host->name, pos->topic, part, lo, hi};
    PGresult *res = PQexecParams(c->conn, sql, 5, NULL, p, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        int answer = pg_classify(c, res, "reading stored rejections", err);
        PQclear(res);
        return answer == PG_DATA ? MR_SINK_RETRY : answer;
    }
    size_t i = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        int64_t off = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        while (i < first && pos->offsets[i] < off) {
            i++;
        }
        if (i < first && pos->offsets[i] == off) {
            c->host->reject(c->host, i, PQgetvalue(res, r, 1));
        }
    }
    PQclear(res);
    return MR_SINK_OK;
}

static int skip_reserve(struct pg_ctx *c, size_t n)
{
    if (n > c->skip_cap) {
        uint8_t *grown = mr_realloc(c->skip, n);
        if (grown == NULL) {
            return MR_ENOMEM;
        }
        c->skip = grown;
        c->skip_cap = n;
    }
    memset(c->skip, 0, n);
    c->nrejects = 0;
    return 0;
}

static int failed(struct pg_ctx *c, int answer, struct mr_err *err)
{
    mr_counter_add(c->counters.errors, 1);
    if (c->conn != NULL && PQtransactionStatus(c->conn) != PQTRANS_IDLE) {
        PQclear(PQexec(c->conn, "ROLLBACK"));
    }
    if (answer == MR_SINK_RETRY && !c->down) {
        c->down = true;
        MR_LOG_WARN(c->host->name, "cannot write to PostgreSQL: %s; records wait in the journal",
                    err->msg);
    }
    return answer;
}

static int pg_write_at(void *ctx, const struct mr_output_position *pos,
                       const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct pg_ctx *c = ctx;
    if (pos == NULL || pos->topic == NULL || pos->offsets == NULL) {
        MR_ERR_SET(err, MR_EINVAL, "postgresql needs each record's journal position");
        return MR_SINK_FATAL;
    }
    if (n == 0) {
        return MR_SINK_OK;
    }
    mr_counter_add(c->counters.records_in, n);
    int answer = pg_ready(c, err);
    if (answer != MR_SINK_OK) {
        return failed(c, answer, err);
    }
    struct pg_offset *slot = pg_offset_slot(c, pos->topic, pos->partition);
    if (slot == NULL) {
        MR_ERR_SET(err, MR_ETOOBIG, "more than %d topic partitions (or topic name too long)",
                   PG_MAX_OFFSETS);
        return failed(c, MR_SINK_FATAL, err);
    }
    size_t first = 0;
    while (first < n && pos->offsets[first] < slot->next) {
        first++;
    }
    if (first > 0) {
        mr_counter_add(c->m_skipped, first);
        if (!c->skip_logged) { /* once per connection: the replay spans several batches */
            c->skip_logged = true;
            MR_LOG_INFO(c->host->name,
                        "records of %s[%" PRIu32 "] from offset %" PRId64 " read again after a "
                        "restart were already in the table: skipped (exactly once)",
                        pos->topic, pos->partition, pos->offsets[0]);
        }
        answer = replay_rejects(c, pos, first, err);
        if (answer != MR_SINK_OK) {
            return failed(c, answer, err);
        }
    }
    if (first == n) {
        return MR_SINK_OK;
    }
    if (skip_reserve(c, n) != 0) {
        MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        return failed(c, MR_SINK_RETRY, err);
    }
    answer = write_txn(c, pos, recs, first, n, err);
    if (answer != MR_SINK_OK) {
        return failed(c, answer, err);
    }
    slot->next = pos->offsets[n - 1] + 1;
    mr_counter_add(c->m_txn, 1);
    mr_counter_add(c->counters.records_out, n - first - c->nrejects);
    for (size_t k = 0; k < c->nrejects; k++) {
        c->host->reject(c->host, c->rejects[k].index, c->rejects[k].reason);
    }
    return MR_SINK_OK;
}

static int pg_write(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    (void)ctx;
    (void)recs;
    (void)n;
    MR_ERR_SET(err, MR_ENOTSUP,
               "postgresql needs each record's journal position (write_at), which the engine "
               "provides when it reads from journal topics");
    return MR_SINK_FATAL;
}

static int pg_flush(void *ctx, struct mr_err *err)
{
    (void)ctx;
    (void)err;
    return MR_SINK_OK; /* each write_at commits its transaction before answering */
}

static void pg_fini(void *ctx)
{
    struct pg_ctx *c = ctx;
    pg_disconnect(c);
    for (uint32_t i = 0; i < c->nnames; i++) {
        mr_free(c->names[i].copy);
        mr_free(c->names[i].json);
    }
    mr_free(c->names);
    mr_free(c->offsets);
    mr_free(c->buf);
    mr_free(c->skip);
    mr_free(c->rejects);
    pg_wide_destroy(c->wide);
    *c = (struct pg_ctx){0};
}

static int metrics_register(struct pg_ctx *c, struct mr_err *err)
{
    char inst[256], labels[320];
    int rc = mr_plugin_counters_register(c->host->metrics, &mr_output_postgresql, c->host->name,
                                         &c->counters);
    if (rc == 0 && mr_metrics_label_escape(c->host->name, inst, sizeof(inst)) < 0) {
        rc = MR_ETOOBIG;
    }
    if (rc == 0) {
        snprintf(labels, sizeof(labels), "instance=\"%s\"", inst);
        rc = mr_metrics_counter(c->host->metrics, "millrace_postgresql_replay_skipped_total",
                                "Records read again after a restart that the table already "
                                "held (skipped: exactly once).",
                                labels, &c->m_skipped);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(c->host->metrics, "millrace_postgresql_transactions_total",
                                "Transactions committed (rows plus the stored journal offset).",
                                labels, &c->m_txn);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
    }
    return 0;
}

/* Connects once to report a wrong password or database at start; an unreachable server is not
 * an error here (the journal buffers; write_at connects when it can). */
static int pg_init(void *ctx, const void *conf, struct mr_output_host *host, struct mr_err *err)
{
    struct pg_ctx *c = ctx;
    memset(c, 0, sizeof(*c));
    c->conf = conf;
    c->host = host;
    int rc = 0;
    c->offsets = mr_calloc(PG_MAX_OFFSETS, sizeof(*c->offsets));
    if (c->offsets == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        goto fail;
    }
    rc = metrics_register(c, err);
    if (rc != 0) {
        goto fail;
    }
    if (c->conf->layout == PG_LAYOUT_WIDE && pg_wide_create(c) != 0) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        goto fail;
    }
    struct mr_err cerr;
    mr_err_clear(&cerr);
    int answer = pg_ready(c, &cerr);
    if (answer == MR_SINK_FATAL) {
        rc = MR_ERR_SET(err, MR_ECONFIG, "%s", cerr.msg);
        goto fail;
    }
    if (answer != MR_SINK_OK) {
        c->down = true;
        MR_LOG_WARN(host->name, "PostgreSQL not reachable yet: %s; records wait in the journal",
                    cerr.msg);
    }
    return 0;
fail:
    pg_fini(c);
    return rc;
}

const struct mr_plugin mr_output_postgresql = {
    .kind = MR_PLUGIN_OUTPUT,
    .name = "postgresql",
    .help = "Writes records into a PostgreSQL table (a TimescaleDB hypertable when available), "
            "one row per record (layout: narrow) or one row per asset and time with a column "
            "per signal (layout: wide), exactly once: the rows and the journal position go in "
            "one transaction, so crashes and outages neither lose nor duplicate rows.",
    .conf = {.fields = pg_fields, .size = sizeof(struct pg_conf), .check = pg_check},
    .ctx_size = sizeof(struct pg_ctx),
    .output = {.init = pg_init,
               .write = pg_write,
               .write_at = pg_write_at,
               .flush = pg_flush,
               .fini = pg_fini,
               /* every write commits and waits for its WAL flush: larger writes catch up
                * faster (bench/output_delivery: ~75 % of a bulk COPY at 5000, ~90 % at 20000) */
               .batch_default = 20000},
};
