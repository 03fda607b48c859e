/* The `postgresql` output's connection and tables: connect (with timeouts so a dead server
 * cannot hold the delivery thread), create the data table when missing (a TimescaleDB
 * hypertable when the extension is there) or map onto an existing one, create the bookkeeping
 * tables, read back the offsets stored by earlier runs, and sort PostgreSQL's errors into what
 * the engine should do: RETRY (the server is away, busy or restarting), FATAL (credentials,
 * database, privileges: a person must act) or a row's data refused (rejected by itself).
 *
 * Bookkeeping tables, in the configured schema, shared by every postgresql output writing to
 * that database (one row per output, topic and partition):
 *
 *   millrace_output_offsets (output text, topic text, partition int, next_offset bigint,
 *                            PRIMARY KEY (output, topic, partition))
 *   millrace_output_rejects (output text, topic text, partition int, journal_offset bigint,
 *                            reason text, PRIMARY KEY (output, topic, partition, journal_offset))
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/alloc.h"
#include "outputs/postgresql_internal.h"

static const char *const col_names[COL_N] = {"time",       "asset",   "signal", "value",
                                             "value_text", "quality", "tags"};

static void on_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and the like: not for the log */
}

/* Last line of a libpq message without its newline. */
static void msg_copy(char *out, size_t cap, const char *msg)
{
    snprintf(out, cap, "%s", msg != NULL && msg[0] != '\0' ? msg : "no message");
    size_t len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' ')) {
        out[--len] = '\0';
    }
    for (char *p = out; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\t') {
            *p = ' ';
        }
    }
}

/* A failed connection that retrying cannot fix. libpq gives no SQLSTATE for the startup phase,
 * so the server's (English) words decide; anything else is treated as an outage. */
static bool connect_fatal(const PGconn *conn, const char *msg)
{
    static const char *const fatal[] = {
        "password authentication failed",
        "authentication failed",
        "no password supplied",
        "does not exist", /* database "x" / role "x" does not exist */
        "no pg_hba.conf entry",
        "permission denied for database",
        "is not permitted to log in",
        "invalid connection option",
        "invalid integer value",
        "missing \"=\" after",
        "invalid URI",
    };
    if (PQconnectionNeedsPassword(conn)) {
        return true;
    }
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
        if (strstr(msg, fatal[i]) != NULL) {
            return true;
        }
    }
    return false;
}

int pg_classify(struct pg_ctx *c, const PGresult *res, const char *what, struct mr_err *err)
{
    char msg[220];
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    msg_copy(msg, sizeof(msg), primary != NULL ? primary : PQerrorMessage(c->conn));
    if (PQstatus(c->conn) != CONNECTION_OK || state == NULL) {
        MR_ERR_SET(err, MR_ECLOSED, "%s: connection lost: %s", what, msg);
        pg_disconnect(c);
        return MR_SINK_RETRY;
    }
    MR_ERR_SET(err, MR_EIO, "%s: %s (SQLSTATE %s)", what, msg, state);
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
        pg_disconnect(c); /* connection failure, server shutting down: connect afresh */
        return MR_SINK_RETRY;
    }
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 ||
        strcmp(state, "54000") == 0) {
        return PG_DATA; /* data exception, integrity constraint, value too large */
    }
    if (strcmp(state, "42P01") == 0 && c->conf->create_tables) {
        c->ready = false; /* the table was dropped under us: create it again */
        return MR_SINK_RETRY;
    }
    if (strncmp(state, "28", 2) == 0 || strncmp(state, "3D", 2) == 0 ||
        strncmp(state, "42", 2) == 0 || strncmp(state, "0A", 2) == 0) {
        /* credentials, database, privileges, undefined objects, unsupported: a person acts */
        err->code = MR_ECONFIG;
        return MR_SINK_FATAL;
    }
    /* 08 connection, 40 serialization/deadlock, 53 resources (disk full), 55 lock, 57 shutdown
     * or statement timeout, 25006 read-only standby, and anything unknown: try again later */
    return MR_SINK_RETRY;
}

int pg_exec(struct pg_ctx *c, const char *sql, ExecStatusType want, struct mr_err *err)
{
    PGresult *res = PQexec(c->conn, sql);
    int answer = MR_SINK_OK;
    if (res == NULL || PQresultStatus(res) != want) {
        answer = pg_classify(c, res, sql, err);
    }
    PQclear(res);
    return answer;
}

void pg_disconnect(struct pg_ctx *c)
{
    if (c->conn != NULL) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
    c->ready = false;
}

struct pg_offset *pg_offset_slot(struct pg_ctx *c, const char *topic, uint32_t partition)
{
    for (size_t i = 0; i < c->noffsets; i++) {
        if (c->offsets[i].partition == partition && strcmp(c->offsets[i].topic, topic) == 0) {
            return &c->offsets[i];
        }
    }
    if (c->noffsets == PG_MAX_OFFSETS || strlen(topic) >= sizeof(c->offsets[0].topic)) {
        return NULL;
    }
    struct pg_offset *o = &c->offsets[c->noffsets++];
    snprintf(o->topic, sizeof(o->topic), "%s", topic);
    o->partition = partition;
    o->next = 0;
    return o;
}

static int do_connect(struct pg_ctx *c, struct mr_err *err)
{
    char timeout_s[32], timeout_ms[32];
    int64_t ms = c->conf->timeout_ns / 1000000;
    snprintf(timeout_s, sizeof(timeout_s), "%" PRId64, ms < 2000 ? 2 : ms / 1000);
    snprintf(timeout_ms, sizeof(timeout_ms), "%" PRId64, ms);
    /* Later keys win: the user's conninfo (dbname, expanded) overrides our defaults, except the
     * client encoding, which the names and values we send are in. */
    const char *keys[] = {"connect_timeout",
                          "tcp_user_timeout",
                          "keepalives_idle",
                          "application_name",
                          "dbname",
                          "client_encoding",
                          NULL};
    const char *vals[] = {timeout_s,           timeout_ms, "10", "millrace",
                          c->conf->connection, "UTF8",     NULL};
    c->conn = PQconnectdbParams(keys, vals, 1);
    if (c->conn == NULL) {
        MR_ERR_SET(err, MR_ENOMEM, "out of memory connecting to PostgreSQL");
        return MR_SINK_RETRY;
    }
    PQsetNoticeProcessor(c->conn, on_notice, NULL);
    if (PQstatus(c->conn) == CONNECTION_OK) {
        return MR_SINK_OK;
    }
    char msg[220];
    msg_copy(msg, sizeof(msg), PQerrorMessage(c->conn));
    bool fatal = connect_fatal(c->conn, msg);
    pg_disconnect(c);
    if (fatal) {
        MR_ERR_SET(err, MR_ECONFIG,
                   "PostgreSQL refused the connection: %s (check `connection`: host, dbname, "
                   "user, password)",
                   msg);
        return MR_SINK_FATAL;
    }
    MR_ERR_SET(err, MR_ECLOSED, "cannot connect to PostgreSQL: %s", msg);
    return MR_SINK_RETRY;
}

/* One-row, one-column query with text parameters; *found says whether a row came back and
 * out (may be NULL) gets its value. */
int pg_query_one(struct pg_ctx *c, const char *sql, int nparams, const char *const *params,
                 bool *found, char *out, size_t cap, struct mr_err *err)
{
    PGresult *res = PQexecParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    int answer = MR_SINK_OK;
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        answer = pg_classify(c, res, sql, err);
    } else {
        *found = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0);
        if (*found && out != NULL) {
            snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
        }
    }
    PQclear(res);
    return answer;
}

/* "schema".name into out. */
static int qualify(struct pg_ctx *c, const char *name, char *out, size_t cap, struct mr_err *err)
{
    char *s = PQescapeIdentifier(c->conn, c->conf->schema, strlen(c->conf->schema));
    char *t = PQescapeIdentifier(c->conn, name, strlen(name));
    int answer = MR_SINK_OK;
    if (s == NULL || t == NULL) {
        MR_ERR_SET(err, MR_ENOMEM, "cannot quote %s.%s", c->conf->schema, name);
        answer = MR_SINK_RETRY;
    } else if ((size_t)snprintf(out, cap, "%s.%s", s, t) >= cap) {
        MR_ERR_SET(err, MR_ECONFIG, "schema and table names too long");
        answer = MR_SINK_FATAL;
    }
    PQfreemem(s);
    PQfreemem(t);
    return answer;
}

static int timescale_check(struct pg_ctx *c, struct mr_err *err)
{
    c->hypertable = false;
    if (c->conf->timescaledb == PG_TSDB_OFF) {
        return MR_SINK_OK;
    }
    bool found = false;
    int answer =
        pg_query_one(c, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'", 0,
                     NULL, &found, NULL, 0, err);
    if (answer != MR_SINK_OK) {
        return answer;
    }
    if (!found && c->conf->timescaledb == PG_TSDB_ON) {
        MR_ERR_SET(err, MR_ECONFIG,
                   "timescaledb: on, but the timescaledb extension is not installed in this "
                   "database (CREATE EXTENSION timescaledb; or set timescaledb: auto)");
        return MR_SINK_FATAL;
    }
    c->hypertable = found;
    return MR_SINK_OK;
}

int pg_hypertable(struct pg_ctx *c, const char *qname, struct mr_err *err)
{
    if (!c->hypertable) {
        return MR_SINK_OK;
    }
    char lit[700], sql[900];
    char *l = PQescapeLiteral(c->conn, qname, strlen(qname));
    snprintf(lit, sizeof(lit), "%s", l != NULL ? l : "''");
    PQfreemem(l);
    snprintf(sql, sizeof(sql),
             "SELECT create_hypertable(%s::regclass, 'time', if_not_exists => TRUE, "
             "migrate_data => TRUE)",
             lit);
    return pg_exec(c, sql, PGRES_TUPLES_OK, err);
}

static int create_data_table(struct pg_ctx *c, const char *qname, struct mr_err *err)
{
    char sql[1600];
    snprintf(sql, sizeof(sql),
             "CREATE TABLE IF NOT EXISTS %s (time timestamptz NOT NULL, asset text NOT NULL, "
             "signal text NOT NULL, value double precision, value_text text, "
             "quality smallint NOT NULL DEFAULT 0, tags jsonb)",
             qname);
    int answer = pg_exec(c, sql, PGRES_COMMAND_OK, err);
    answer = answer == MR_SINK_OK ? pg_hypertable(c, qname, err) : answer;
    if (answer == MR_SINK_OK) {
        /* what plant queries filter on: one signal of one asset over a time range */
        char *idx = NULL;
        char iname[200];
        snprintf(iname, sizeof(iname), "%.150s_asset_signal_time", c->conf->table);
        idx = PQescapeIdentifier(c->conn, iname, strlen(iname));
        snprintf(sql, sizeof(sql), "CREATE INDEX IF NOT EXISTS %s ON %s (asset, signal, time DESC)",
                 idx != NULL ? idx : "millrace_idx", qname);
        PQfreemem(idx);
        answer = pg_exec(c, sql, PGRES_COMMAND_OK, err);
    }
    return answer;
}

static int create_bookkeeping(struct pg_ctx *c, struct mr_err *err)
{
    char sql[1600];
    snprintf(sql, sizeof(sql),
             "CREATE TABLE IF NOT EXISTS %s (output text NOT NULL, topic text NOT NULL, "
             "partition int NOT NULL, next_offset bigint NOT NULL, "
             "PRIMARY KEY (output, topic, partition))",
             c->offsets_tbl);
    int answer = pg_exec(c, sql, PGRES_COMMAND_OK, err);
    if (answer == MR_SINK_OK) {
        snprintf(sql, sizeof(sql),
                 "CREATE TABLE IF NOT EXISTS %s (output text NOT NULL, topic text NOT NULL, "
                 "partition int NOT NULL, journal_offset bigint NOT NULL, reason text, "
                 "PRIMARY KEY (output, topic, partition, journal_offset))",
                 c->rejects_tbl);
        answer = pg_exec(c, sql, PGRES_COMMAND_OK, err);
    }
    return answer;
}

/* Which of our columns the data table has; builds the COPY statement. */
static int map_columns(struct pg_ctx *c, const char *qname, struct mr_err *err)
{
    const char *params[1] = {qname};
    PGresult *res = PQexecParams(c->conn,
                                 "SELECT attname FROM pg_attribute WHERE attrelid = "
                                 "to_regclass($1) AND attnum > 0 AND NOT attisdropped",
                                 1, NULL, params, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        int answer = pg_classify(c, res, "reading the table's columns", err);
        PQclear(res);
        return answer;
    }
    int rows = PQntuples(res);
    memset(c->has_col, 0, sizeof(c->has_col));
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < COL_N; k++) {
            c->has_col[k] |= strcmp(PQgetvalue(res, r, 0), col_names[k]) == 0;
        }
    }
    PQclear(res);
    if (rows == 0) {
        MR_ERR_SET(err, MR_ECONFIG,
                   "table %s does not exist and create_tables is false: create it (see "
                   "docs/OUTPUT_POSTGRESQL.md) or set create_tables: true",
                   qname);
        return MR_SINK_FATAL;
    }
    for (int k = COL_TIME; k <= COL_SIGNAL; k++) {
        if (!c->has_col[k]) {
            MR_ERR_SET(err, MR_ECONFIG,
                       "table %s has no column \"%s\" (needs time, asset, signal "
                       "and value and/or value_text)",
                       qname, col_names[k]);
            return MR_SINK_FATAL;
        }
    }
    if (!c->has_col[COL_VALUE] && !c->has_col[COL_VALUE_TEXT]) {
        MR_ERR_SET(err, MR_ECONFIG, "table %s has neither a \"value\" nor a \"value_text\" column",
                   qname);
        return MR_SINK_FATAL;
    }
    size_t len = (size_t)snprintf(c->copy_sql, sizeof(c->copy_sql), "COPY %s (", qname);
    const char *sep = "";
    for (int k = 0; k < COL_N && len < sizeof(c->copy_sql); k++) {
        if (c->has_col[k]) {
            len += (size_t)snprintf(c->copy_sql + len, sizeof(c->copy_sql) - len, "%s\"%s\"", sep,
                                    col_names[k]);
            sep = ", ";
        }
    }
    if (len >= sizeof(c->copy_sql) ||
        (size_t)snprintf(c->copy_sql + len, sizeof(c->copy_sql) - len, ") FROM STDIN") >=
            sizeof(c->copy_sql) - len) {
        MR_ERR_SET(err, MR_ECONFIG, "table name too long");
        return MR_SINK_FATAL;
    }
    return MR_SINK_OK;
}

static int load_offsets(struct pg_ctx *c, struct mr_err *err)
{
    char sql[800];
    snprintf(sql, sizeof(sql), "SELECT topic, partition, next_offset FROM %s WHERE output = $1",
             c->offsets_tbl);
    const char *params[1] = {c->host->name};
    PGresult *res = PQexecParams(c->conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        int answer = pg_classify(c, res, "reading the stored offsets", err);
        PQclear(res);
        return answer;
    }
    c->noffsets = 0;
    int answer = MR_SINK_OK;
    for (int r = 0; r < PQntuples(res); r++) {
        unsigned long long part = strtoull(PQgetvalue(res, r, 1), NULL, 10);
        struct pg_offset *o = pg_offset_slot(c, PQgetvalue(res, r, 0), (uint32_t)part);
        if (o == NULL) {
            MR_ERR_SET(err, MR_ETOOBIG, "more than %d topic partitions stored for %s",
                       PG_MAX_OFFSETS, c->host->name);
            answer = MR_SINK_FATAL;
            break;
        }
        o->next = strtoll(PQgetvalue(res, r, 2), NULL, 10);
    }
    PQclear(res);
    return answer;
}

static int ensure_schema(struct pg_ctx *c, struct mr_err *err)
{
    bool found = false;
    const char *params[1] = {c->conf->schema};
    int answer = pg_query_one(c, "SELECT 1 FROM pg_namespace WHERE nspname = $1", 1, params, &found,
                              NULL, 0, err);
    if (answer != MR_SINK_OK || found) {
        return answer;
    }
    if (!c->conf->create_tables) {
        MR_ERR_SET(err, MR_ECONFIG, "schema \"%s\" does not exist and create_tables is false",
                   c->conf->schema);
        return MR_SINK_FATAL;
    }
    char *id = PQescapeIdentifier(c->conn, c->conf->schema, strlen(c->conf->schema));
    char sql[600];
    snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS %s", id != NULL ? id : "\"\"");
    PQfreemem(id);
    return pg_exec(c, sql, PGRES_COMMAND_OK, err);
}

static int setup(struct pg_ctx *c, struct mr_err *err)
{
    char qname[600], sql[128];
    snprintf(sql, sizeof(sql), "SET statement_timeout = %" PRId64, c->conf->timeout_ns / 1000000);
    int answer = pg_exec(c, sql, PGRES_COMMAND_OK, err);
    answer =
        answer == MR_SINK_OK ? pg_exec(c, "SET TIME ZONE 'UTC'", PGRES_COMMAND_OK, err) : answer;
    answer = answer == MR_SINK_OK ? timescale_check(c, err) : answer;
    answer = answer == MR_SINK_OK ? ensure_schema(c, err) : answer;
    answer = answer == MR_SINK_OK ? qualify(c, c->conf->table, qname, sizeof(qname), err) : answer;
    answer = answer == MR_SINK_OK ? qualify(c, "millrace_output_offsets", c->offsets_tbl,
                                            sizeof(c->offsets_tbl), err)
                                  : answer;
    answer = answer == MR_SINK_OK ? qualify(c, "millrace_output_rejects", c->rejects_tbl,
                                            sizeof(c->rejects_tbl), err)
                                  : answer;
    if (answer == MR_SINK_OK && c->conf->create_tables && c->wide == NULL) {
        answer = create_data_table(c, qname, err);
    }
    answer = answer == MR_SINK_OK ? create_bookkeeping(c, err) : answer;
    if (c->wide != NULL) {
        answer = answer == MR_SINK_OK ? pg_wide_setup(c, qname, err) : answer;
    } else {
        answer = answer == MR_SINK_OK ? map_columns(c, qname, err) : answer;
    }
    answer = answer == MR_SINK_OK ? load_offsets(c, err) : answer;
    return answer;
}

int pg_ready(struct pg_ctx *c, struct mr_err *err)
{
    if (c->conn != NULL && PQstatus(c->conn) != CONNECTION_OK) {
        pg_disconnect(c);
    }
    if (c->conn != NULL && c->ready) {
        return MR_SINK_OK;
    }
    if (c->conn != NULL && PQtransactionStatus(c->conn) != PQTRANS_IDLE) {
        PQclear(PQexec(c->conn, "ROLLBACK")); /* a batch failed half way: start clean */
    }
    int answer = c->conn == NULL ? do_connect(c, err) : MR_SINK_OK;
    if (answer == MR_SINK_OK) {
        answer = setup(c, err);
    }
    if (answer != MR_SINK_OK) {
        if (answer == PG_DATA) {
            answer = MR_SINK_RETRY;
        }
        if (answer == MR_SINK_FATAL) {
            pg_disconnect(c);
        }
        return answer;
    }
    c->ready = true;
    c->skip_logged = false;
    if (c->down) {
        c->down = false;
        MR_LOG_INFO(c->host->name, "PostgreSQL is back; delivering the backlog");
    }
    MR_LOG_DEBUG(c->host->name, "connected; %s; %zu stored offsets", c->copy_sql, c->noffsets);
    return MR_SINK_OK;
}
