/* The `postgresql` output's parts: configuration and context (postgresql.c writes batches,
 * postgresql_schema.c connects, creates or maps tables, reads the stored offsets and sorts
 * PostgreSQL's errors into OK / RETRY / FATAL). */
#ifndef MR_OUTPUTS_POSTGRESQL_INTERNAL_H
#define MR_OUTPUTS_POSTGRESQL_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "millrace/config.h"
#include "millrace/log.h"
#include "millrace/plugin.h"

enum { PG_LAYOUT_NARROW = 0, PG_LAYOUT_WIDE = 1 };
enum { PG_TSDB_AUTO = 0, PG_TSDB_ON = 1, PG_TSDB_OFF = 2 };

struct pg_conf {
    char *connection;
    char *schema;
    char *table;
    int layout;
    int timescaledb;
    bool create_tables;
    int64_t timeout_ns;
    struct mr_strlist signals; /* wide: the only signals stored (empty: every signal) */
    bool quality_columns;      /* wide: a <signal>_quality column beside each signal */
};

/* Columns of the narrow table, in COPY order. A table mapped onto may lack the optional ones. */
enum pg_col {
    COL_TIME,
    COL_ASSET,
    COL_SIGNAL,
    COL_VALUE,
    COL_VALUE_TEXT,
    COL_QUALITY,
    COL_TAGS,
    COL_N
};

/* Next journal offset stored for one topic partition (millrace_output_offsets). */
struct pg_offset {
    char topic[256];
    uint32_t partition;
    int64_t next;
};

#define PG_MAX_OFFSETS   4096
/* COPY data goes to libpq in pieces of this size: the server parses one while we encode the
 * next (a whole write encoded first would leave it idle meanwhile). */
#define PG_FLUSH_BYTES   (64u * 1024u)
#define PG_BUF_MAX       (64u * 1024u * 1024u) /* largest single row */
#define PG_REJECT_PREFIX "PostgreSQL refused the row"
#define PG_NAME_MAX      63 /* PostgreSQL's identifier limit (NAMEDATALEN - 1) */

/* A name escaped once for COPY text (and, for tag keys, for JSON inside it). */
struct pg_name {
    char *copy; /* COPY-escaped; NULL until first used */
    char *json; /* JSON-string body, then COPY-escaped */
    uint32_t copy_len;
    uint32_t json_len;
};

struct pg_reject {
    size_t index;
    char reason[256];
};

struct pg_ctx {
    const struct pg_conf *conf;
    struct mr_output_host *host;
    struct mr_plugin_counters counters;
    struct mr_counter *m_skipped;
    struct mr_counter *m_txn;
    struct mr_log_ratelimit rl;
    PGconn *conn;
    bool ready; /* connected, tables checked, offsets loaded */
    bool down;  /* an outage was logged: log its end */
    bool hypertable;
    bool skip_logged; /* the replay after this connection was logged */
    bool has_col[COL_N];
    char copy_sql[1024];   /* COPY "schema"."table" (cols) FROM STDIN */
    char offsets_tbl[600]; /* "schema".millrace_output_offsets */
    char rejects_tbl[600]; /* "schema".millrace_output_rejects */
    struct pg_offset *offsets;
    size_t noffsets;
    /* names by id */
    struct pg_name *names;
    uint32_t nnames;
    /* per batch */
    char *buf; /* COPY data */
    size_t used, cap;
    uint8_t *skip; /* skip[i]: recs[i] is not copied (rejected or already stored) */
    size_t skip_cap;
    struct pg_reject *rejects;
    size_t nrejects, rejects_cap;
    struct pg_wide *wide; /* layout: wide only (postgresql_wide.c) */
    /* "YYYY-MM-DD HH:MM:SS" of the last second formatted */
    int64_t fmt_sec;
    char fmt_buf[64];
    size_t fmt_len;
};

/* SQLSTATE classes and what they mean for a batch. */
enum pg_verdict { PG_DATA = 3 }; /* beside MR_SINK_OK/RETRY/FATAL: this row's data is refused */

/* postgresql.c, for the wide layout */
const struct pg_name *pg_name_get(struct pg_ctx *c, mr_name_id id);
/* Room for len more bytes in c->buf (within PG_BUF_MAX + PG_FLUSH_BYTES). */
int pg_buf_reserve(struct pg_ctx *c, size_t len);
/* COPY text escaping of s: at most 2 * len bytes. */
size_t pg_esc_copy(char *out, const char *s, size_t len);
/* "YYYY-MM-DD HH:MM:SS.uuuuuu+00" (at most 40 bytes). */
size_t pg_fmt_time(struct pg_ctx *c, int64_t ns, char *out);
/* A numeric or boolean value as text (at most 32 bytes). */
size_t pg_fmt_value(const struct mr_record *r, char *out);
/* recs[index] is refused for reason (rejected when the batch commits). 0 or MR_ENOMEM. */
int pg_reject_add(struct pg_ctx *c, size_t index, const char *reason);

/* postgresql_wide.c: one column per signal, one row per (asset, time) */
struct pg_wide;
int pg_wide_create(struct pg_ctx *c);
void pg_wide_destroy(struct pg_wide *w);
/* After (re)connecting: CREATE TABLE (when allowed and missing; hypertable as narrow), read the
 * table's columns and check its unique key on (asset, time). MR_SINK_OK / RETRY / FATAL. */
int pg_wide_setup(struct pg_ctx *c, const char *qname, struct mr_err *err);
/* Before the transaction of recs[first..n): find each record's column, add the missing ones
 * (ALTER TABLE, autocommit: harmless when the batch is retried) and pg_reject_add the records
 * that cannot be stored. MR_SINK_OK / RETRY / FATAL. */
int pg_wide_prepare(struct pg_ctx *c, const struct mr_record *recs, size_t first, size_t n,
                    struct mr_err *err);
/* Merge recs[lo..hi) (except the skipped ones) into rows and upsert them: COPY into a temp
 * table, INSERT ... ON CONFLICT (asset, time) DO UPDATE. MR_SINK_OK, RETRY, FATAL or PG_DATA. */
int pg_wide_copy(struct pg_ctx *c, const struct mr_record *recs, size_t lo, size_t hi,
                 struct mr_err *err);

/* postgresql_schema.c */
/* Connect when not connected, check/create the tables, load the stored offsets. Returns
 * MR_SINK_OK, MR_SINK_RETRY or MR_SINK_FATAL with err filled. */
int pg_ready(struct pg_ctx *c, struct mr_err *err);
/* Drop the connection (after it broke, or at fini). */
void pg_disconnect(struct pg_ctx *c);
/* What a failed result means: MR_SINK_RETRY, MR_SINK_FATAL or PG_DATA (a row's data); err gets
 * PostgreSQL's message prefixed with `what`. res may be NULL (the connection's error). */
int pg_classify(struct pg_ctx *c, const PGresult *res, const char *what, struct mr_err *err);
/* Run sql without parameters; MR_SINK_OK when it answered `want`, else pg_classify's answer. */
int pg_exec(struct pg_ctx *c, const char *sql, ExecStatusType want, struct mr_err *err);
/* Make qname a hypertable when TimescaleDB is there (c->hypertable). */
int pg_hypertable(struct pg_ctx *c, const char *qname, struct mr_err *err);
/* Read a one-row, one-column answer (see postgresql_schema.c). */
int pg_query_one(struct pg_ctx *c, const char *sql, int nparams, const char *const *params,
                 bool *found, char *out, size_t cap, struct mr_err *err);
/* Slot of topic/partition in the offsets cache, added with next = 0 when new (NULL: full). */
struct pg_offset *pg_offset_slot(struct pg_ctx *c, const char *topic, uint32_t partition);

#endif
