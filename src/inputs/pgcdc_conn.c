/* The replication session of `postgres_cdc`, on its worker thread (libpq blocks).
 *
 *   connect (replication=database) -> check publication -> find or create the slot
 *   -> START_REPLICATION SLOT s LOGICAL <lsn> (proto_version '1', publication_names 'p')
 *   -> CopyBoth: 'w' XLogData (pgoutput message) and 'k' keepalive from the server,
 *      'r' standby status (write = flush = apply = the durable LSN) from us.
 *
 * Every wait is a poll() of at most 100 ms, so stop() is answered within about that. The LSN we
 * confirm is `durable_lsn`, which the loop thread raises only when the journal has committed
 * the batch completing that transaction (pgcdc.c). When nothing is open or unconfirmed, a
 * keepalive's WAL position is confirmed too, so a busy server with no changes for us does not
 * keep WAL for the slot forever. A reconnect inside one run resumes after the last transaction
 * handed to the loop (START_REPLICATION at posted_lsn: the server skips transactions that
 * ended before it); a new process resumes from the slot's confirmed position. */
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "inputs/pgcdc_internal.h"
#include "millrace/alloc.h"

#define POLL_MS        100
#define PG_EPOCH_US    946684800000000LL
#define STATUS_MIN_NS  100000000LL /* confirm a newly durable LSN at most every 100 ms */
#define RETRY_FIRST_NS 500000000LL

struct session {
    struct pgcdc_ctx *c;
    struct mr_worker *worker;
    PGconn *conn;
    struct pgcdc_batch *b;
    uint64_t sent_lsn; /* last confirmed to the server */
    uint64_t idle_lsn; /* keepalive position, confirmable when nothing is open */
    int64_t last_status_ns;
    char msg[256];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Copy libpq's message onto one line. */
static const char *pg_msg(struct session *s, const char *m)
{
    snprintf(s->msg, sizeof(s->msg), "%s", m != NULL ? m : "");
    for (char *p = s->msg; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\t') {
            *p = ' '; /* libpq's hints come on a second line: keep the log line whole */
        }
    }
    size_t n = strlen(s->msg);
    while (n > 0 && s->msg[n - 1] == ' ') {
        s->msg[--n] = '\0';
    }
    while (n > 0 && (s->msg[n - 1] == '\n' || s->msg[n - 1] == '\r')) {
        s->msg[--n] = '\0';
    }
    return s->msg;
}

static bool stopping(const struct session *s)
{
    return mr_worker_stopping(s->worker);
}

static int wait_socket(struct session *s, short events)
{
    struct pollfd p = {.fd = PQsocket(s->conn), .events = events};
    if (p.fd < 0) {
        return MR_ECLOSED;
    }
    (void)poll(&p, 1, POLL_MS); /* EINTR and timeouts both mean: look again */
    return 0;
}

static int connect_db(struct session *s, struct mr_err *err)
{
    const struct pgcdc_conf *cf = s->c->conf;
    const char *keys[] = {"dbname", "replication", "fallback_application_name", NULL};
    const char *vals[] = {cf->address, "database", "millrace", NULL};
    s->conn = PQconnectStartParams(keys, vals, 1);
    if (s->conn == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    int64_t deadline = now_ns() + s->c->conf->timeout_ns;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (PQstatus(s->conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
           st != PGRES_POLLING_FAILED) {
        if (stopping(s)) {
            return MR_ECLOSED;
        }
        if (now_ns() > deadline) {
            return MR_ERR_SET(err, MR_ETIMEDOUT, "connecting timed out");
        }
        wait_socket(s, st == PGRES_POLLING_READING ? POLLIN : POLLOUT);
        st = PQconnectPoll(s->conn);
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        return MR_ERR_SET(err, MR_ECLOSED, "cannot connect: %s",
                          pg_msg(s, PQerrorMessage(s->conn)));
    }
    return 0;
}

/* Run one command; *out gets its (last) result, which the caller clears. */
static int query(struct session *s, const char *sql, ExecStatusType want, PGresult **out,
                 struct mr_err *err)
{
    if (!PQsendQuery(s->conn, sql)) {
        return MR_ERR_SET(err, MR_ECLOSED, "%s", pg_msg(s, PQerrorMessage(s->conn)));
    }
    int64_t deadline = now_ns() + s->c->conf->timeout_ns;
    PGresult *last = NULL;
    for (;;) {
        while (!PQisBusy(s->conn)) {
            PGresult *res = PQgetResult(s->conn);
            if (res == NULL || PQresultStatus(res) == PGRES_COPY_BOTH) {
                if (res != NULL) {
                    PQclear(last);
                    last = res;
                }
                goto done;
            }
            PQclear(last);
            last = res;
        }
        if (stopping(s)) {
            PQclear(last);
            return MR_ECLOSED;
        }
        if (now_ns() > deadline) {
            PQclear(last);
            return MR_ERR_SET(err, MR_ETIMEDOUT, "no answer to '%.60s'", sql);
        }
        wait_socket(s, POLLIN);
        if (!PQconsumeInput(s->conn)) {
            PQclear(last);
            return MR_ERR_SET(err, MR_ECLOSED, "%s", pg_msg(s, PQerrorMessage(s->conn)));
        }
    }
done:
    if (last == NULL || PQresultStatus(last) != want) {
        int rc = MR_ERR_SET(err, MR_EIO, "'%.60s': %s", sql,
                            last != NULL ? pg_msg(s, PQresultErrorMessage(last)) : "no result");
        PQclear(last);
        return rc;
    }
    *out = last;
    return 0;
}

/* One query with one escaped literal in it; true when it returned a row. */
static int exists(struct session *s, const char *fmt, const char *name, bool *found,
                  struct mr_err *err)
{
    char *lit = PQescapeLiteral(s->conn, name, strlen(name));
    if (lit == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "%s", pg_msg(s, PQerrorMessage(s->conn)));
    }
    char sql[512];
    snprintf(sql, sizeof(sql), fmt, lit);
    PQfreemem(lit);
    PGresult *res = NULL;
    int rc = query(s, sql, PGRES_TUPLES_OK, &res, err);
    if (rc == 0) {
        *found = PQntuples(res) > 0;
        PQclear(res);
    }
    return rc;
}

static int prepare(struct session *s, struct mr_err *err)
{
    const struct pgcdc_conf *cf = s->c->conf;
    bool found = false;
    int rc =
        exists(s, "SELECT 1 FROM pg_publication WHERE pubname = %s", cf->publication, &found, err);
    if (rc == 0 && !found) {
        return MR_ERR_SET(err, MR_ENOENT,
                          "publication '%s' does not exist (CREATE PUBLICATION %s FOR TABLE ...)",
                          cf->publication, cf->publication);
    }
    if (rc == 0) {
        rc = exists(s, "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", cf->slot, &found,
                    err);
    }
    if (rc != 0 || found) {
        return rc;
    }
    if (!cf->create_slot) {
        return MR_ERR_SET(err, MR_ENOENT,
                          "replication slot '%s' does not exist (set create_slot: true)", cf->slot);
    }
    char *id = PQescapeIdentifier(s->conn, cf->slot, strlen(cf->slot));
    if (id == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "%s", pg_msg(s, PQerrorMessage(s->conn)));
    }
    char sql[512];
    snprintf(sql, sizeof(sql), "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput", id);
    PQfreemem(id);
    PGresult *res = NULL;
    rc = query(s, sql, PGRES_TUPLES_OK, &res, err);
    if (rc == 0) {
        MR_LOG_INFO(s->c->host->name, "created replication slot '%s' at %s", cf->slot,
                    PQgetvalue(res, 0, 1));
        PQclear(res);
    }
    return rc;
}

static int start_streaming(struct session *s, struct mr_err *err)
{
    const struct pgcdc_conf *cf = s->c->conf;
    char *slot = PQescapeIdentifier(s->conn, cf->slot, strlen(cf->slot));
    char *pub = PQescapeIdentifier(s->conn, cf->publication, strlen(cf->publication));
    char *publit = pub != NULL ? PQescapeLiteral(s->conn, pub, strlen(pub)) : NULL;
    int rc = 0;
    if (slot == NULL || publit == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "%s", pg_msg(s, PQerrorMessage(s->conn)));
        goto out;
    }
    char lsn[24], sql[768];
    pgcdc_lsn_format(s->c->posted_lsn, lsn, sizeof(lsn));
    snprintf(sql, sizeof(sql),
             "START_REPLICATION SLOT %s LOGICAL %s (proto_version '1', publication_names %s)", slot,
             lsn, publit);
    PGresult *res = NULL;
    rc = query(s, sql, PGRES_COPY_BOTH, &res, err);
    PQclear(res);
    if (rc == 0) {
        MR_LOG_INFO(s->c->host->name, "streaming slot '%s' of publication '%s' from %s", cf->slot,
                    cf->publication, lsn);
    }
out:
    PQfreemem(slot);
    PQfreemem(pub);
    PQfreemem(publit);
    return rc;
}

static int send_status(struct session *s, uint64_t lsn)
{
    uint8_t m[34];
    m[0] = 'r';
    put_u64(m + 1, lsn);
    put_u64(m + 9, lsn);
    put_u64(m + 17, lsn);
    put_u64(m + 25, (uint64_t)(wall_us() - PG_EPOCH_US));
    m[33] = 0;
    if (PQputCopyData(s->conn, (const char *)m, sizeof(m)) != 1 || PQflush(s->conn) != 0) {
        return MR_ECLOSED;
    }
    s->sent_lsn = lsn;
    s->last_status_ns = now_ns();
    return 0;
}

/* What the server may forget: the durable LSN, or the keepalive position when nothing is
 * half-read here, nothing is waiting to be handed over or emitted, and everything emitted is
 * durable (the order of the two loads matters: see pgcdc_deliver). */
static uint64_t confirmable(const struct session *s)
{
    uint64_t lsn = atomic_load(&s->c->durable_lsn);
    bool quiet = !s->c->dec.in_txn && s->b->n == 0 && s->b->ack_lsn == 0 &&
                 atomic_load(&s->c->inflight) == 0 && atomic_load(&s->c->settled);
    if (quiet && s->idle_lsn > lsn) {
        lsn = s->idle_lsn;
    }
    return lsn;
}

static int maybe_status(struct session *s, bool force)
{
    uint64_t lsn = confirmable(s);
    int64_t since = now_ns() - s->last_status_ns;
    if (force || since >= s->c->conf->status_interval_ns ||
        (lsn > s->sent_lsn && since >= STATUS_MIN_NS)) {
        return send_status(s, lsn);
    }
    return 0;
}

/* Hand the batch to the loop; waits while PGCDC_MAX_INFLIGHT batches are unemitted. */
static int post(struct session *s)
{
    struct pgcdc_ctx *c = s->c;
    struct pgcdc_batch *next = pgcdc_batch_get(c);
    if (next == NULL) {
        return MR_ENOMEM;
    }
    while (atomic_load(&c->inflight) >= PGCDC_MAX_INFLIGHT) {
        if (stopping(s)) {
            pgcdc_batch_put(c, next);
            return MR_ECLOSED;
        }
        struct timespec ts = {.tv_nsec = 5000000};
        nanosleep(&ts, NULL);
        if (maybe_status(s, false) != 0) {
            pgcdc_batch_put(c, next);
            return MR_ECLOSED;
        }
    }
    atomic_fetch_add(&c->inflight, 1);
    uint64_t ack = s->b->ack_lsn; /* once posted, the batch belongs to the loop */
    /* The ring holds more than PGCDC_MAX_INFLIGHT batches, so this rarely waits. */
    while (mr_worker_post(s->worker, s->b) != 0) {
        if (stopping(s)) {
            atomic_fetch_sub(&c->inflight, 1);
            pgcdc_batch_put(c, next);
            return MR_ECLOSED;
        }
        mr_worker_wait_room(s->worker, POLL_MS);
    }
    if (ack != 0) {
        c->posted_lsn = ack;
    }
    s->b = next;
    return 0;
}

static int on_xlogdata(struct session *s, const uint8_t *buf, size_t len)
{
    struct pgcdc_ctx *c = s->c;
    if (len < 25) {
        return MR_ECORRUPT;
    }
    struct mr_err e;
    mr_err_clear(&e);
    int rc = pgcdc_decode(&c->dec, buf + 25, len - 25, s->b, &e);
    if (rc == MR_ETOOBIG) {
        rc = post(s);
        if (rc == 0) {
            rc = pgcdc_decode(&c->dec, buf + 25, len - 25, s->b, &e);
        } else {
            return rc;
        }
    }
    if (rc == PGCDC_COMMIT) {
        s->b->ack_lsn = c->dec.commit_end_lsn;
        rc = 0;
    } else if (rc < 0) {
        mr_counter_add(c->counters.errors, 1);
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name, "change at %" PRIX64 " skipped: %s",
                  get_u64(buf + 1), e.msg);
        rc = 0;
    }
    return rc;
}

static int stream(struct session *s, struct mr_err *err)
{
    for (;;) {
        if (stopping(s)) {
            maybe_status(s, true);
            return MR_ECLOSED;
        }
        char *buf = NULL;
        int n = PQgetCopyData(s->conn, &buf, 1);
        int rc = 0;
        if (n > 0) {
            const uint8_t *m = (const uint8_t *)buf;
            if (m[0] == 'w') {
                rc = on_xlogdata(s, m, (size_t)n);
                if (rc == 0) {
                    rc = maybe_status(s, false); /* a steady stream is confirmed as it goes */
                }
            } else if (m[0] == 'k' && n >= 18) {
                s->idle_lsn = get_u64(m + 1);
                rc = maybe_status(s, m[17] != 0);
            }
            PQfreemem(buf);
        } else if (n == 0) {
            /* Caught up for now: hand over what we have, then wait for the server. */
            if (s->b->n > 0 || s->b->ack_lsn != 0) {
                rc = post(s);
            }
            if (rc == 0) {
                rc = maybe_status(s, false);
            }
            if (rc == 0) {
                wait_socket(s, POLLIN);
                if (!PQconsumeInput(s->conn)) {
                    return MR_ERR_SET(err, MR_ECLOSED, "%s", pg_msg(s, PQerrorMessage(s->conn)));
                }
            }
        } else {
            PGresult *res = PQgetResult(s->conn);
            MR_ERR_SET(
                err, MR_ECLOSED, "replication ended: %s",
                pg_msg(s, res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(s->conn)));
            PQclear(res);
            return MR_ECLOSED;
        }
        if (rc == MR_ECORRUPT) {
            return MR_ERR_SET(err, rc, "malformed replication message");
        }
        if (rc != 0) {
            return MR_ERR_SET(err, rc, "connection lost: %s", pg_msg(s, PQerrorMessage(s->conn)));
        }
    }
}

static int session_run(struct session *s, struct mr_err *err)
{
    int rc = connect_db(s, err);
    if (rc == 0) {
        rc = prepare(s, err);
    }
    if (rc == 0) {
        rc = start_streaming(s, err);
    }
    if (rc == 0) {
        s->sent_lsn = 0;
        s->last_status_ns = now_ns();
        rc = stream(s, err);
    }
    return rc;
}

void pgcdc_worker_run(struct mr_worker *worker, void *arg)
{
    struct pgcdc_ctx *c = arg;
    int64_t backoff = RETRY_FIRST_NS;
    bool first = true;
    while (!mr_worker_stopping(worker)) {
        struct session s = {.c = c, .worker = worker};
        s.b = pgcdc_batch_get(c);
        if (s.b == NULL) {
            MR_LOG_ERROR(c->host->name, "out of memory");
            break;
        }
        pgcdc_decoder_reset(&c->dec);
        if (!first) {
            mr_counter_add(c->m_reconnects, 1);
        }
        first = false;
        struct mr_err e;
        mr_err_clear(&e);
        int64_t began = now_ns();
        int rc = session_run(&s, &e);
        PQfinish(s.conn);
        /* A transaction cut off by the disconnect is sent again in full: drop its part. */
        pgcdc_batch_put(c, s.b);
        if (mr_worker_stopping(worker)) {
            break;
        }
        mr_counter_add(c->counters.errors, 1);
        if (now_ns() - began > 60 * 1000000000LL) {
            backoff = RETRY_FIRST_NS; /* it ran a good while: the server came back */
        }
        MR_LOG_WARN(c->host->name, "postgres: %s; retrying in %" PRId64 " ms",
                    e.msg[0] != '\0' ? e.msg : mr_strerror(rc), backoff / 1000000);
        for (int64_t waited = 0; waited < backoff && !mr_worker_stopping(worker);
             waited += POLL_MS * 1000000LL) {
            struct timespec ts = {.tv_nsec = POLL_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        backoff = backoff * 2 > c->conf->retry_max_ns ? c->conf->retry_max_ns : backoff * 2;
    }
}
