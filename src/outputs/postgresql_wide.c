/* The `postgresql` output's wide layout: one row per (asset, time), one column per signal.
 *
 *   outputs:
 *     line_table:
 *       type: postgresql
 *       connection: "host=db dbname=mes user=millrace"
 *       table: press_line
 *       layout: wide
 *       signals: [temp, pressure, state]   # optional: only these (others rejected)
 *       quality_columns: false             # true: temp_quality, ... beside each signal
 *
 *   CREATE TABLE press_line (time timestamptz NOT NULL, asset text NOT NULL,
 *                            PRIMARY KEY (asset, time));
 *   ALTER TABLE press_line ADD COLUMN IF NOT EXISTS "temp" double precision;  -- first "temp"
 *   ALTER TABLE press_line ADD COLUMN IF NOT EXISTS "state" text;             -- a string
 *
 * A batch (records of one journal partition, in offset order) is merged: records of the same
 * asset and microsecond become one row; of two records of the same signal there the later
 * wins. The rows are COPYed into a temp table (created per connection as the target's shape)
 * and upserted:
 *
 *   INSERT INTO press_line AS t ("time", "asset", "temp", "state")
 *     SELECT "time", "asset", "temp", "state" FROM pg_temp.millrace_stage
 *     ON CONFLICT ("asset", "time") DO UPDATE
 *       SET "temp" = COALESCE(EXCLUDED."temp", t."temp"), ...
 *
 * so a row written by an earlier batch gets the new signals merged in (a NULL never erases a
 * value). This runs inside the narrow layout's transaction (postgresql.c): the offset upsert is
 * in the same transaction, so exactly once holds; and writing a record again (a replay whose
 * commit was lost) sets the same value again.
 *
 * Columns are found per signal id once (an id-indexed table: no hashing per record). A new
 * signal adds its column before the batch's transaction (ALTER ... IF NOT EXISTS, autocommit:
 * harmless when the batch is retried): double precision for numbers and booleans, text for a
 * string. Records that cannot be stored are rejected with the reason: names longer than 63
 * bytes, time/asset, a signal outside `signals:`, a missing column with create_tables: false, a
 * string for a numeric or boolean column, the 1600-column limit, sample blocks.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/alloc.h"
#include "outputs/postgresql_internal.h"

#define WIDE_MAX_COLS 1600 /* PostgreSQL's limit of columns per table */
#define MAX_SIG_IDS   (1u << 24)
#define SQL_MAX       (8u * 1024u * 1024u)
#define STAGE         "pg_temp.millrace_stage"

/* What a signal id maps to; negative: why it cannot be stored. */
enum {
    SIG_UNRESOLVED = -1,
    SIG_BAD_NAME = -2,   /* too long for a column name */
    SIG_KEY = -3,        /* time or asset */
    SIG_NOT_LISTED = -4, /* outside `signals:` */
    SIG_MISSING = -5,    /* no column and create_tables: false */
    SIG_FULL = -6,       /* 1600 columns */
    SIG_REFUSED = -7,    /* PostgreSQL refused to add the column */
    SIG_CLASH = -8,      /* the column is another signal's quality column or vice versa */
    SIG_QUEUED = -9,     /* its column is being added (within pg_wide_prepare only) */
};

enum { USE_NONE = 0, USE_VALUE = 1, USE_QUALITY = 2 };

struct wide_col {
    char name[PG_NAME_MAX + 1];
    char quoted[2 * PG_NAME_MAX + 3];
    char type[48]; /* format_type(), for messages */
    char category; /* pg_type.typcategory: N numeric, B boolean, S string, ... */
    uint8_t use;   /* USE_*: what a signal writes here */
};

struct wide_sig {
    int32_t col;  /* column index or SIG_* */
    int32_t qcol; /* quality column index, -1: none */
};

struct wide_key {
    mr_name_id asset;
    uint32_t idx;
    int64_t us; /* PostgreSQL's resolution: records in the same microsecond are one row */
};

struct wide_add {
    mr_name_id id;
    bool text;
};

struct pg_wide {
    char qname[600];
    struct wide_col *cols; /* WIDE_MAX_COLS */
    size_t ncols;
    struct wide_sig *sigs; /* by signal id */
    uint32_t nsigs;
    int32_t *cell;  /* by column: index of the record giving this row's value, -1: none */
    int32_t *bcols; /* the columns of the batch being copied, in column order */
    struct wide_add *adds;
    size_t nadds;
    struct wide_key *keys;
    size_t keys_cap;
    char *sql;
    size_t sql_len, sql_cap;
    bool stage_ok; /* the temp table exists with every column of cols */
};

int pg_wide_create(struct pg_ctx *c)
{
    struct pg_wide *w = mr_calloc(1, sizeof(*w));
    if (w == NULL) {
        return MR_ENOMEM;
    }
    w->cols = mr_calloc(WIDE_MAX_COLS, sizeof(*w->cols));
    w->cell = mr_malloc(WIDE_MAX_COLS * sizeof(*w->cell));
    w->bcols = mr_malloc(WIDE_MAX_COLS * sizeof(*w->bcols));
    w->adds = mr_malloc(WIDE_MAX_COLS * sizeof(*w->adds));
    if (w->cols == NULL || w->cell == NULL || w->bcols == NULL || w->adds == NULL) {
        pg_wide_destroy(w);
        return MR_ENOMEM;
    }
    memset(w->cell, 0xff, WIDE_MAX_COLS * sizeof(*w->cell)); /* -1 */
    c->wide = w;
    return 0;
}

void pg_wide_destroy(struct pg_wide *w)
{
    if (w == NULL) {
        return;
    }
    mr_free(w->cols);
    mr_free(w->sigs);
    mr_free(w->cell);
    mr_free(w->bcols);
    mr_free(w->adds);
    mr_free(w->keys);
    mr_free(w->sql);
    mr_free(w);
}

/* ---- statements ---- */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
sql_add(struct pg_wide *w, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = w->sql_cap - w->sql_len;
        int n = vsnprintf(w->sql != NULL ? w->sql + w->sql_len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            return MR_EINVAL;
        }
        if ((size_t)n < room) {
            w->sql_len += (size_t)n;
            return 0;
        }
        size_t cap = w->sql_cap == 0 ? 16u * 1024u : w->sql_cap * 2;
        while (cap < w->sql_len + (size_t)n + 1) {
            cap *= 2;
        }
        if (cap > SQL_MAX) {
            return MR_ETOOBIG;
        }
        char *grown = mr_realloc(w->sql, cap);
        if (grown == NULL) {
            return MR_ENOMEM;
        }
        w->sql = grown;
        w->sql_cap = cap;
    }
}

static void sql_reset(struct pg_wide *w)
{
    w->sql_len = 0;
    if (w->sql != NULL) {
        w->sql[0] = '\0';
    }
}

/* "name" with embedded quotes doubled (name is at most PG_NAME_MAX bytes). */
static void quote_ident(char *out, const char *name)
{
    size_t o = 0;
    out[o++] = '"';
    for (const char *p = name; *p != '\0'; p++) {
        if (*p == '"') {
            out[o++] = '"';
        }
        out[o++] = *p;
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* ---- the table's columns ---- */

static int cols_load(struct pg_ctx *c, struct mr_err *err)
{
    struct pg_wide *w = c->wide;
    const char *params[1] = {w->qname};
    PGresult *res = PQexecParams(c->conn,
                                 "SELECT a.attname, t.typcategory, "
                                 "format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                                 "JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = "
                                 "to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
                                 "ORDER BY a.attnum",
                                 1, NULL, params, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        int answer = pg_classify(c, res, "reading the table's columns", err);
        PQclear(res);
        return answer;
    }
    int rows = PQntuples(res);
    w->ncols = 0;
    for (int r = 0; r < rows && w->ncols < WIDE_MAX_COLS; r++) {
        struct wide_col *col = &w->cols[w->ncols++];
        snprintf(col->name, sizeof(col->name), "%s", PQgetvalue(res, r, 0));
        quote_ident(col->quoted, col->name);
        col->category = PQgetvalue(res, r, 1)[0];
        snprintf(col->type, sizeof(col->type), "%s", PQgetvalue(res, r, 2));
        col->use = USE_NONE;
    }
    PQclear(res);
    /* indexes changed: every signal is looked up again */
    if (w->sigs != NULL) {
        memset(w->sigs, 0xff, w->nsigs * sizeof(*w->sigs));
    }
    w->stage_ok = false;
    return MR_SINK_OK;
}

static int32_t col_find(const struct pg_wide *w, const char *name)
{
    for (size_t i = 0; i < w->ncols; i++) {
        if (strcmp(w->cols[i].name, name) == 0) {
            return (int32_t)i;
        }
    }
    return -1;
}

/* The table has a unique key on exactly (asset, time): what ON CONFLICT needs. */
static int key_check(struct pg_ctx *c, struct mr_err *err)
{
    struct pg_wide *w = c->wide;
    if (col_find(w, "time") < 0 || col_find(w, "asset") < 0) {
        MR_ERR_SET(err, MR_ECONFIG,
                   "table %s has no column \"%s\" (layout wide needs time and asset)", w->qname,
                   col_find(w, "time") < 0 ? "time" : "asset");
        return MR_SINK_FATAL;
    }
    const char *params[1] = {w->qname};
    bool found = false;
    int answer = pg_query_one(
        c,
        "SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass($1) AND i.indisunique AND "
        "i.indpred IS NULL AND i.indnkeyatts = 2 AND (SELECT array_agg(a.attname::text ORDER BY "
        "a.attname) FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY "
        "(i.indkey)) = ARRAY['asset', 'time']",
        1, params, &found, NULL, 0, err);
    if (answer == MR_SINK_OK && !found) {
        MR_ERR_SET(err, MR_ECONFIG,
                   "table %s has no PRIMARY KEY or UNIQUE constraint on (asset, time), which "
                   "layout wide merges rows on: ALTER TABLE %s ADD PRIMARY KEY (asset, time)",
                   w->qname, w->qname);
        answer = MR_SINK_FATAL;
    }
    return answer;
}

int pg_wide_setup(struct pg_ctx *c, const char *qname, struct mr_err *err)
{
    struct pg_wide *w = c->wide;
    snprintf(w->qname, sizeof(w->qname), "%s", qname);
    int answer = MR_SINK_OK;
    if (c->conf->create_tables) {
        char sql[900];
        snprintf(sql, sizeof(sql),
                 "CREATE TABLE IF NOT EXISTS %s (\"time\" timestamptz NOT NULL, \"asset\" text "
                 "NOT NULL, PRIMARY KEY (\"asset\", \"time\"))",
                 qname);
        answer = pg_exec(c, sql, PGRES_COMMAND_OK, err);
        answer = answer == MR_SINK_OK ? pg_hypertable(c, qname, err) : answer;
    }
    answer = answer == MR_SINK_OK ? cols_load(c, err) : answer;
    if (answer == MR_SINK_OK && w->ncols == 0) {
        MR_ERR_SET(err, MR_ECONFIG,
                   "table %s does not exist and create_tables is false: create it (see "
                   "docs/OUTPUT_POSTGRESQL.md, \"Wide layout\") or set create_tables: true",
                   qname);
        answer = MR_SINK_FATAL;
    }
    answer = answer == MR_SINK_OK ? key_check(c, err) : answer;
    if (answer == MR_SINK_OK) {
        snprintf(c->copy_sql, sizeof(c->copy_sql), "wide table %s, %zu columns", qname, w->ncols);
    }
    return answer;
}

/* ---- signals to columns ---- */

static struct wide_sig *sig_slot(struct pg_wide *w, mr_name_id id)
{
    if (id == 0 || id >= MAX_SIG_IDS) {
        return NULL;
    }
    /* 0xff: col and qcol -1 (SIG_UNRESOLVED, no quality column) */
    if (mr_array_hold((void **)&w->sigs, &w->nsigs, sizeof(*w->sigs), id, 256, 0xff) != 0) {
        return NULL;
    }
    return &w->sigs[id];
}

static bool listed(const struct pg_conf *conf, const char *name)
{
    if (conf->signals.n == 0) {
        return true;
    }
    for (size_t i = 0; i < conf->signals.n; i++) {
        if (strcmp(conf->signals.items[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* Claim column col for use; SIG_CLASH when a signal uses it the other way. */
static int32_t col_claim(struct pg_wide *w, int32_t col, uint8_t use)
{
    if (col < 0) {
        return col;
    }
    if (w->cols[col].use != USE_NONE && w->cols[col].use != use) {
        return SIG_CLASH;
    }
    w->cols[col].use = use;
    return col;
}

/* Map signal id (first seen in r) to its columns. With may_add, a missing column is queued in
 * w->adds (SIG_QUEUED until the columns are reloaded). */
static void sig_resolve(struct pg_ctx *c, struct wide_sig *s, mr_name_id id,
                        const struct mr_record *r, bool may_add)
{
    struct pg_wide *w = c->wide;
    size_t len = 0;
    const char *name = mr_names_str(c->host->names, id, &len);
    char qname[PG_NAME_MAX + 16];
    s->qcol = -1;
    if (name == NULL || len > PG_NAME_MAX || (c->conf->quality_columns && len + 8 > PG_NAME_MAX)) {
        s->col = SIG_BAD_NAME;
        return;
    }
    if (strcmp(name, "time") == 0 || strcmp(name, "asset") == 0) {
        s->col = SIG_KEY;
        return;
    }
    if (!listed(c->conf, name)) {
        s->col = SIG_NOT_LISTED;
        return;
    }
    snprintf(qname, sizeof(qname), "%s_quality", name);
    int32_t col = col_find(w, name);
    int32_t qcol = c->conf->quality_columns ? col_find(w, qname) : -1;
    bool need = col < 0 || (c->conf->quality_columns && qcol < 0 && c->conf->create_tables);
    if (need && c->conf->create_tables && may_add) {
        if (w->ncols + 2 * (w->nadds + 1) > WIDE_MAX_COLS) {
            s->col = SIG_FULL;
            return;
        }
        w->adds[w->nadds++] = (struct wide_add){.id = id, .text = r->type == MR_VALUE_STRING};
        s->col = SIG_QUEUED;
        return;
    }
    if (col < 0) {
        s->col = c->conf->create_tables ? SIG_REFUSED : SIG_MISSING;
        return;
    }
    s->col = col_claim(w, col, USE_VALUE);
    s->qcol = s->col >= 0 ? col_claim(w, qcol, USE_QUALITY) : -1;
    if (s->qcol == SIG_CLASH) {
        s->col = SIG_CLASH;
        s->qcol = -1;
    }
}

/* " ADD COLUMN IF NOT EXISTS ..." clauses for adds[from..to). */
static int alter_sql(struct pg_ctx *c, size_t from, size_t to)
{
    struct pg_wide *w = c->wide;
    sql_reset(w);
    int rc = sql_add(w, "ALTER TABLE %s", w->qname);
    for (size_t k = from; k < to && rc == 0; k++) {
        char q[2 * PG_NAME_MAX + 3], qq[2 * PG_NAME_MAX + 20], name[PG_NAME_MAX + 16];
        size_t len = 0;
        const char *s = mr_names_str(c->host->names, w->adds[k].id, &len);
        snprintf(name, sizeof(name), "%.*s", (int)len, s);
        quote_ident(q, name);
        rc = sql_add(w, "%s ADD COLUMN IF NOT EXISTS %s %s", k > from ? "," : "", q,
                     w->adds[k].text ? "text" : "double precision");
        if (rc == 0 && c->conf->quality_columns) {
            snprintf(name, sizeof(name), "%.*s_quality", (int)len, s);
            quote_ident(qq, name);
            rc = sql_add(w, ", ADD COLUMN IF NOT EXISTS %s smallint", qq);
        }
    }
    return rc;
}

/* Whether a failed ALTER is about that column (refused for good) rather than the server. */
static bool alter_refused(PGconn *conn, const PGresult *res)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (PQstatus(conn) != CONNECTION_OK || state == NULL) {
        return false;
    }
    return strncmp(state, "22", 2) == 0 || strncmp(state, "42", 2) == 0 ||
           strncmp(state, "54", 2) == 0 || strncmp(state, "0A", 2) == 0;
}

/* Add the queued columns: all in one ALTER; when PostgreSQL refuses it, one by one, and the
 * signals it refuses are marked SIG_REFUSED. Then reload the columns. */
static int columns_add(struct pg_ctx *c, struct mr_err *err)
{
    struct pg_wide *w = c->wide;
    if (alter_sql(c, 0, w->nadds) != 0) {
        MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        return MR_SINK_RETRY;
    }
    PGresult *res = PQexec(c->conn, w->sql);
    bool ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    bool single = !ok && alter_refused(c->conn, res);
    int answer = ok || single ? MR_SINK_OK : pg_classify(c, res, "adding columns", err);
    PQclear(res);
    for (size_t k = 0; single && k < w->nadds && answer == MR_SINK_OK; k++) {
        if (alter_sql(c, k, k + 1) != 0) {
            MR_ERR_SET(err, MR_ENOMEM, "out of memory");
            return MR_SINK_RETRY;
        }
        res = PQexec(c->conn, w->sql);
        if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
            if (alter_refused(c->conn, res)) {
                MR_LOG_WARN(c->host->name, "PostgreSQL refused to add a column: %s",
                            PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
                w->adds[k].id = 0; /* not logged as added; its signal resolves to SIG_REFUSED */
            } else {
                answer = pg_classify(c, res, "adding a column", err);
            }
        }
        PQclear(res);
    }
    if (answer == MR_SINK_OK) {
        answer = cols_load(c, err);
    }
    for (size_t k = 0; k < w->nadds && answer == MR_SINK_OK; k++) {
        if (w->adds[k].id == 0) {
            continue;
        }
        MR_LOG_INFO(c->host->name, "added column for signal \"%s\" (%s)",
                    mr_names_str(c->host->names, w->adds[k].id, NULL),
                    w->adds[k].text ? "text" : "double precision");
    }
    return answer == PG_DATA ? MR_SINK_RETRY : answer;
}

/* Why r cannot be stored, into why (cap bytes), or false when it can. */
static bool refusal(struct pg_ctx *c, const struct mr_record *r, char *why, size_t cap)
{
    struct pg_wide *w = c->wide;
    const struct wide_sig *s = r->signal < w->nsigs ? &w->sigs[r->signal] : NULL;
    size_t len = 0;
    const char *name = mr_names_str(c->host->names, r->signal, &len);
    int nlen = len > 80 ? 80 : (int)len;
    if (r->type == MR_VALUE_SAMPLES) {
        snprintf(why, cap,
                 "sample blocks are not stored by the postgresql output (aggregate "
                 "them first, e.g. with the vibration operator)");
        return true;
    }
    if (s == NULL || name == NULL || pg_name_get(c, r->asset) == NULL) {
        snprintf(why, cap, "unknown asset or signal name id");
        return true;
    }
    static const char *const reasons[] = {
        [-SIG_UNRESOLVED] = "its column could not be found",
        [-SIG_BAD_NAME] = "name longer than PostgreSQL's 63-byte limit for a column (55 with "
                          "quality_columns)",
        [-SIG_KEY] = "time and asset are the key columns of the wide table",
        [-SIG_NOT_LISTED] = "not in the output's `signals` list",
        [-SIG_MISSING] = "the table has no column for it and create_tables is false (add the "
                         "column, then restart)",
        [-SIG_FULL] = "the table has reached PostgreSQL's limit of 1600 columns",
        [-SIG_REFUSED] = "PostgreSQL refused to add its column (see the log)",
        [-SIG_CLASH] = "its column is another signal's <signal>_quality column",
        [-SIG_QUEUED] = "its column could not be added",
    };
    if (s->col < 0) {
        snprintf(why, cap, "signal \"%.*s%s\": %s", nlen, name, len > 80 ? "..." : "",
                 reasons[-s->col]);
        return true;
    }
    const struct wide_col *col = &w->cols[s->col];
    if (r->type == MR_VALUE_STRING && (col->category == 'N' || col->category == 'B')) {
        snprintf(why, cap, "signal \"%.*s\": a string value, but its column is %s", nlen, name,
                 col->type);
        return true;
    }
    if (r->type == MR_VALUE_STRING && r->v.str.len > PG_BUF_MAX / 2 - 1024) {
        snprintf(why, cap, "record too large for one row (over %u MiB as text)", PG_BUF_MAX >> 20);
        return true;
    }
    return false;
}

int pg_wide_prepare(struct pg_ctx *c, const struct mr_record *recs, size_t first, size_t n,
                    struct mr_err *err)
{
    struct pg_wide *w = c->wide;
    w->nadds = 0;
    for (size_t i = first; i < n; i++) {
        struct wide_sig *s = sig_slot(w, recs[i].signal);
        if (s != NULL && s->col == SIG_UNRESOLVED) {
            sig_resolve(c, s, recs[i].signal, &recs[i], true);
        }
    }
    int answer = w->nadds > 0 ? columns_add(c, err) : MR_SINK_OK;
    for (size_t i = first; i < n; i++) {
        struct wide_sig *s = sig_slot(w, recs[i].signal);
        if (s != NULL && s->col == SIG_QUEUED) {
            s->col = SIG_UNRESOLVED; /* the ALTER failed (retried) or cols_load reset it */
        }
        if (answer == MR_SINK_OK && s != NULL && s->col == SIG_UNRESOLVED) {
            sig_resolve(c, s, recs[i].signal, &recs[i], false);
        }
    }
    if (answer != MR_SINK_OK) {
        return answer;
    }
    if (!w->stage_ok) {
        char sql[900];
        snprintf(sql, sizeof(sql),
                 "DROP TABLE IF EXISTS " STAGE "; CREATE TEMP TABLE millrace_stage AS SELECT * "
                 "FROM %s WITH NO DATA",
                 w->qname);
        answer = pg_exec(c, sql, PGRES_COMMAND_OK, err);
        if (answer != MR_SINK_OK) {
            return answer == PG_DATA ? MR_SINK_RETRY : answer;
        }
        w->stage_ok = true;
    }
    for (size_t i = first; i < n; i++) {
        char why[256];
        if (refusal(c, &recs[i], why, sizeof(why)) && pg_reject_add(c, i, why) != 0) {
            MR_ERR_SET(err, MR_ENOMEM, "out of memory");
            return MR_SINK_RETRY;
        }
    }
    return MR_SINK_OK;
}

/* ---- rows ---- */

static int key_cmp(const void *a, const void *b)
{
    const struct wide_key *x = a, *y = b;
    if (x->asset != y->asset) {
        return x->asset < y->asset ? -1 : 1;
    }
    if (x->us != y->us) {
        return x->us < y->us ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sorted keys of the records to copy; their count, or -1 when out of memory. */
static long keys_build(struct pg_ctx *c, const struct mr_record *recs, size_t lo, size_t hi)
{
    struct pg_wide *w = c->wide;
    if (hi - lo > w->keys_cap) {
        struct wide_key *grown = mr_realloc(w->keys, (hi - lo) * sizeof(*grown));
        if (grown == NULL) {
            return -1;
        }
        w->keys = grown;
        w->keys_cap = hi - lo;
    }
    size_t k = 0;
    for (size_t i = lo; i < hi; i++) {
        if (!c->skip[i]) {
            int64_t ns = recs[i].time_ns;
            w->keys[k++] = (struct wide_key){
                .asset = recs[i].asset,
                .idx = (uint32_t)i,
                .us = ns / 1000 - (ns % 1000 < 0 ? 1 : 0),
            };
        }
    }
    qsort(w->keys, k, sizeof(*w->keys), key_cmp);
    return (long)k;
}

/* The COPY and INSERT statements for the batch's columns (w->bcols[0..nb)): "COPY ...\0INSERT
 * ..." in w->sql; *insert points at the second. */
static int batch_sql(struct pg_wide *w, size_t nb, size_t *insert)
{
    sql_reset(w);
    int rc = sql_add(w, "COPY " STAGE " (\"time\", \"asset\"");
    for (size_t b = 0; b < nb && rc == 0; b++) {
        rc = sql_add(w, ", %s", w->cols[w->bcols[b]].quoted);
    }
    rc = rc == 0 ? sql_add(w, ") FROM STDIN") : rc;
    w->sql_len++; /* keep the NUL: the next statement starts after it */
    *insert = w->sql_len;
    rc = rc == 0 ? sql_add(w, "INSERT INTO %s AS t (\"time\", \"asset\"", w->qname) : rc;
    for (size_t b = 0; b < nb && rc == 0; b++) {
        rc = sql_add(w, ", %s", w->cols[w->bcols[b]].quoted);
    }
    rc = rc == 0 ? sql_add(w, ") SELECT \"time\", \"asset\"") : rc;
    for (size_t b = 0; b < nb && rc == 0; b++) {
        rc = sql_add(w, ", %s", w->cols[w->bcols[b]].quoted);
    }
    rc = rc == 0 ? sql_add(w, " FROM " STAGE " ON CONFLICT (\"asset\", \"time\") DO UPDATE SET")
                 : rc;
    for (size_t b = 0; b < nb && rc == 0; b++) {
        const char *q = w->cols[w->bcols[b]].quoted;
        rc = sql_add(w, "%s %s = COALESCE(EXCLUDED.%s, t.%s)", b > 0 ? "," : "", q, q, q);
    }
    return rc == 0 ? sql_add(w, "; TRUNCATE " STAGE) : rc;
}

/* Append the row of keys[from..to) (one asset and microsecond) as a COPY line. */
static int row_encode(struct pg_ctx *c, const struct mr_record *recs, size_t from, size_t to,
                      size_t nb)
{
    struct pg_wide *w = c->wide;
    const struct mr_record *r0 = &recs[w->keys[from].idx];
    const struct pg_name *a = pg_name_get(c, r0->asset);
    size_t bound = 64 + a->copy_len + 3 * nb;
    for (size_t k = from; k < to; k++) {
        const struct mr_record *r = &recs[w->keys[k].idx];
        const struct wide_sig *s = &w->sigs[r->signal];
        w->cell[s->col] = (int32_t)w->keys[k].idx; /* the later record of a signal wins */
        if (s->qcol >= 0) {
            w->cell[s->qcol] = (int32_t)w->keys[k].idx;
        }
        bound += 36 + (r->type == MR_VALUE_STRING ? 2u * r->v.str.len : 0);
    }
    int rc = bound > PG_BUF_MAX ? MR_ETOOBIG : pg_buf_reserve(c, bound);
    char *p = c->buf + c->used;
    if (rc == 0) {
        p += pg_fmt_time(c, r0->time_ns, p);
        *p++ = '\t';
        memcpy(p, a->copy, a->copy_len);
        p += a->copy_len;
    }
    for (size_t b = 0; b < nb; b++) {
        int32_t col = w->bcols[b];
        int32_t idx = w->cell[col];
        w->cell[col] = -1;
        if (rc != 0) {
            continue; /* only reset the cells */
        }
        *p++ = '\t';
        const struct mr_record *r = idx >= 0 ? &recs[idx] : NULL;
        if (r == NULL) {
            memcpy(p, "\\N", 2);
            p += 2;
        } else if (w->cols[col].use == USE_QUALITY) {
            *p++ = (char)('0' + (r->quality <= MR_QUALITY_BAD ? r->quality : MR_QUALITY_BAD));
        } else if (r->type == MR_VALUE_STRING) {
            p += pg_esc_copy(p, r->v.str.ptr, r->v.str.len);
        } else {
            p += pg_fmt_value(r, p);
        }
    }
    if (rc == 0) {
        *p++ = '\n';
        c->used = (size_t)(p - c->buf);
    }
    return rc;
}

/* Stream the rows into the COPY started on the connection. */
static int rows_put(struct pg_ctx *c, const struct mr_record *recs, size_t nkeys, size_t nb,
                    struct mr_err *err)
{
    struct pg_wide *w = c->wide;
    c->used = 0;
    int put = 1;
    for (size_t from = 0; from < nkeys && put == 1;) {
        size_t to = from + 1;
        while (to < nkeys && w->keys[to].asset == w->keys[from].asset &&
               w->keys[to].us == w->keys[from].us) {
            to++;
        }
        int rc = row_encode(c, recs, from, to, nb);
        if (rc != 0) {
            PQputCopyEnd(c->conn, "millrace: row too large");
            PQclear(PQgetResult(c->conn));
            if (rc == MR_ETOOBIG) { /* narrowed down to single records by the caller */
                MR_ERR_SET(err, rc, "%s: row too large (over %u MiB as text)", PG_REJECT_PREFIX,
                           PG_BUF_MAX >> 20);
                return PG_DATA;
            }
            MR_ERR_SET(err, rc, "cannot build the COPY data: %s", mr_strerror(rc));
            return MR_SINK_RETRY;
        }
        if (c->used >= PG_FLUSH_BYTES) {
            put = PQputCopyData(c->conn, c->buf, (int)c->used);
            c->used = 0;
        }
        from = to;
    }
    if (put == 1 && c->used > 0) {
        put = PQputCopyData(c->conn, c->buf, (int)c->used);
    }
    if (put != 1 || PQputCopyEnd(c->conn, NULL) != 1) {
        return pg_classify(c, NULL, "COPY", err);
    }
    int answer = MR_SINK_OK;
    PGresult *res;
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

int pg_wide_copy(struct pg_ctx *c, const struct mr_record *recs, size_t lo, size_t hi,
                 struct mr_err *err)
{
    struct pg_wide *w = c->wide;
    long nkeys = keys_build(c, recs, lo, hi);
    if (nkeys < 0) {
        MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        return MR_SINK_RETRY;
    }
    /* the batch's columns, in table order (cell[] marks them for the moment) */
    for (long k = 0; k < nkeys; k++) {
        const struct wide_sig *s = &w->sigs[recs[w->keys[k].idx].signal];
        w->cell[s->col] = 0;
        if (s->qcol >= 0) {
            w->cell[s->qcol] = 0;
        }
    }
    size_t nb = 0;
    for (size_t col = 0; col < w->ncols; col++) {
        if (w->cell[col] == 0) {
            w->bcols[nb++] = (int32_t)col;
            w->cell[col] = -1;
        }
    }
    size_t insert = 0;
    if (batch_sql(w, nb, &insert) != 0) {
        MR_ERR_SET(err, MR_ENOMEM, "cannot build the statements (out of memory)");
        return MR_SINK_RETRY;
    }
    PGresult *res = PQexec(c->conn, w->sql);
    if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
        int answer = pg_classify(c, res, "COPY", err);
        PQclear(res);
        return answer;
    }
    PQclear(res);
    int answer = rows_put(c, recs, (size_t)nkeys, nb, err);
    if (answer != MR_SINK_OK) {
        return answer;
    }
    res = PQexec(c->conn, w->sql + insert);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        answer = pg_classify(c, res, PG_REJECT_PREFIX, err);
    }
    PQclear(res);
    return answer;
}
