/* Input `postgres_cdc`: inserts, updates and deletes of PostgreSQL tables as records, read
 * with logical replication (the built-in pgoutput plugin and a publication), so MES and ERP
 * tables (production orders, work in progress, inventory) stream into millrace as they change.
 *
 *   inputs:
 *     mes:
 *       type: postgres_cdc
 *       address: "host=10.0.0.5 port=5432 dbname=mes user=millrace password=${PGPASSWORD}"
 *       publication: millrace        # CREATE PUBLICATION millrace FOR TABLE work_orders, ...
 *       slot: millrace_mes           # created by millrace when create_slot is true
 *       create_slot: true
 *       tables:
 *         - table: public.work_orders
 *           asset: "plant1/{line}/{machine}"   # literal text and {column} values
 *           signals: [qty_good, qty_scrap, status]
 *           tags: [order_no]
 *
 * Semantics: each committed transaction arrives in commit order. An inserted or updated row
 * gives one record per signal column (NULL columns give none): signal = column name, value by
 * the column's type (integers i64, real/numeric f64, boolean bool, anything else the text),
 * time = the commit time, tags op=insert|update, table=schema.name and the tag columns. A
 * deleted row gives one record `row_deleted` = true (its asset and tag columns must be in the
 * old row the server sends: the primary key, or every column with REPLICA IDENTITY FULL).
 *
 * Delivery: the position confirmed to the server (the slot's confirmed_flush_lsn) is the end
 * of the last transaction whose records the journal has committed (host->durable), never more.
 * After a crash the server sends again what was not confirmed: nothing is lost, and what is
 * repeated is at most the transactions handed over since the last confirmation (typically the
 * last batch; the confirmation follows a commit within about 100 ms). A connection lost in the
 * middle of a transaction may repeat that transaction's records already handed over.
 *
 * Threads: libpq runs on a worker thread (pgcdc_conn.c) that decodes whole batches and hands
 * them to the loop thread (millrace/worker.h), which emits them and tracks what is durable. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "inputs/pgcdc_internal.h"
#include "millrace/alloc.h"

#define TICK_MS 20

extern const struct mr_plugin mr_input_postgres_cdc;

static void tables_check(void *conf, struct mr_config_check *chk)
{
    const struct pgcdc_table_conf *t = conf;
    const char *dot = t->table != NULL ? strchr(t->table, '.') : NULL;
    if (t->table != NULL && (t->table[0] == '.' || (dot != NULL && dot[1] == '\0'))) {
        mr_config_check_fail(chk, "table", "'%s': write schema.name or just name", t->table);
    }
    if (t->asset != NULL) {
        for (const char *p = t->asset; *p != '\0'; p++) {
            if (*p == '{') {
                const char *end = strchr(p, '}');
                if (end == NULL || end == p + 1) {
                    mr_config_check_fail(chk, "asset", "'%s': unclosed or empty {column}",
                                         t->asset);
                    break;
                }
                p = end;
            }
        }
    }
    for (size_t i = 0; i < t->tags.n; i++) {
        for (size_t j = 0; j < t->signals.n; j++) {
            if (strcmp(t->tags.items[i], t->signals.items[j]) == 0) {
                mr_config_check_fail(chk, "tags", "column '%s' is both a signal and a tag",
                                     t->tags.items[i]);
            }
        }
    }
}

static const struct mr_field table_fields[] = {
    {.name = "table",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct pgcdc_table_conf, table),
     .flags = MR_FIELD_REQUIRED,
     .help = "The table, as schema.name or name (schema public). It must be in the publication."},
    {.name = "asset",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct pgcdc_table_conf, asset),
     .flags = MR_FIELD_REQUIRED,
     .help = "Asset path of the row's records: fixed text (plant1/assembly/line1) or a template "
             "with column values in braces, e.g. plant1/{line}/{machine}."},
    {.name = "signals",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct pgcdc_table_conf, signals),
     .max = "256",
     .help = "Columns that become records (signal = column name). Absent: every column that is "
             "not used in the asset template or as a tag."},
    {.name = "tags",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct pgcdc_table_conf, tags),
     .max = "14",
     .help = "Columns attached as tags to every record of the row (e.g. the order number)."},
    {0},
};

static const struct mr_section table_section = {
    .fields = table_fields,
    .size = sizeof(struct pgcdc_table_conf),
    .check = tables_check,
};

static const struct mr_field pgcdc_fields[] = {
    {.name = "address",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct pgcdc_conf, address),
     .flags = MR_FIELD_REQUIRED,
     .help = "Connection string of the database (libpq: \"host=... port=5432 dbname=mes "
             "user=...\" or a postgres:// URL). The user needs the REPLICATION attribute."},
    {.name = "publication",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct pgcdc_conf, publication),
     .def = "millrace",
     .help = "Publication naming the tables to follow (CREATE PUBLICATION ... FOR TABLE ...)."},
    {.name = "slot",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct pgcdc_conf, slot),
     .def = "millrace",
     .help = "Logical replication slot: the server keeps changes for it until millrace "
             "confirms them, so nothing is lost while millrace is down. One slot per input."},
    {.name = "create_slot",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct pgcdc_conf, create_slot),
     .def = "false",
     .help = "Create the slot (with the pgoutput plugin) when it does not exist. A slot holds "
             "back the server's WAL: drop it (pg_drop_replication_slot) when you remove the "
             "input."},
    {.name = "tables",
     .type = MR_FIELD_SECTION_LIST,
     .offset = offsetof(struct pgcdc_conf, tables),
     .section = &table_section,
     .min = "1",
     .max = "64",
     .flags = MR_FIELD_REQUIRED,
     .help = "Which tables to turn into records and how. Changes of other tables of the "
             "publication are ignored."},
    {.name = "status_interval",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct pgcdc_conf, status_interval_ns),
     .def = "10s",
     .min = "100ms",
     .max = "1m",
     .help = "Report progress to the server at least this often (it drops silent clients after "
             "wal_sender_timeout, 60 s by default). New progress is reported sooner."},
    {.name = "timeout",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct pgcdc_conf, timeout_ns),
     .def = "10s",
     .min = "100ms",
     .max = "5m",
     .help = "Give up connecting, or waiting for an answer to a command, after this long."},
    {.name = "retry_max",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct pgcdc_conf, retry_max_ns),
     .def = "30s",
     .min = "1s",
     .max = "1h",
     .help = "Longest wait between reconnection attempts (it starts at 0.5 s and doubles)."},
    {.name = "batch",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct pgcdc_conf, batch),
     .def = "1024",
     .min = "16",
     .max = "65536",
     .help = "Most records handed to the journal at once."},
    {.name = "batch_bytes",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct pgcdc_conf, batch_bytes),
     .def = "1MiB",
     .min = "64KiB",
     .max = "64MiB",
     .help = "Most bytes of text values (strings, tags) in one batch; one row must fit."},
    {0},
};

/* ---- loop thread ---- */

static void ack_push(struct pgcdc_ctx *c, uint64_t seq, uint64_t lsn)
{
    if (c->ack_n == PGCDC_ACK_RING) {
        /* Full: fold into the newest entry (its later seq only delays the confirmation). */
        size_t last = (c->ack_head + c->ack_n - 1) % PGCDC_ACK_RING;
        c->acks[last].seq = seq;
        c->acks[last].lsn = lsn;
        return;
    }
    size_t i = (c->ack_head + c->ack_n++) % PGCDC_ACK_RING;
    c->acks[i].seq = seq;
    c->acks[i].lsn = lsn;
}

/* Confirm what the journal has committed. */
void pgcdc_settle(struct pgcdc_ctx *c)
{
    uint64_t durable = c->host->durable != NULL ? c->host->durable(c->host) : c->emitted;
    uint64_t lsn = 0;
    while (c->ack_n > 0 && c->acks[c->ack_head].seq <= durable) {
        lsn = c->acks[c->ack_head].lsn;
        c->ack_head = (c->ack_head + 1) % PGCDC_ACK_RING;
        c->ack_n--;
    }
    if (lsn != 0) {
        atomic_store(&c->durable_lsn, lsn);
    }
    atomic_store(&c->settled, !c->failed && c->head == NULL && durable >= c->emitted);
}

struct pgcdc_batch *pgcdc_batch_get(struct pgcdc_ctx *c)
{
    pthread_mutex_lock(&c->pool_mu);
    struct pgcdc_batch *b = c->pool;
    if (b != NULL) {
        c->pool = b->next;
        c->pool_n--;
    }
    pthread_mutex_unlock(&c->pool_mu);
    if (b == NULL) {
        return pgcdc_batch_create((size_t)c->conf->batch, c->conf->batch_bytes);
    }
    b->next = NULL;
    b->n = 0;
    b->used = 0;
    b->ack_lsn = 0;
    return b;
}

void pgcdc_batch_put(struct pgcdc_ctx *c, struct pgcdc_batch *b)
{
    pthread_mutex_lock(&c->pool_mu);
    if (b != NULL && c->pool_n <= PGCDC_MAX_INFLIGHT && b->cap == (size_t)c->conf->batch &&
        b->arena_cap == c->conf->batch_bytes) {
        b->next = c->pool;
        c->pool = b;
        c->pool_n++;
        b = NULL;
    }
    pthread_mutex_unlock(&c->pool_mu);
    pgcdc_batch_destroy(b);
}

static void batch_done(struct pgcdc_ctx *c, struct pgcdc_batch *b)
{
    c->head = b->next;
    if (c->head == NULL) {
        c->tail = NULL;
    }
    pgcdc_batch_put(c, b);
    atomic_fetch_sub(&c->inflight, 1);
}

/* Emit delivered batches in order until the host pushes back. */
static void pump(struct pgcdc_ctx *c)
{
    while (c->head != NULL) {
        struct pgcdc_batch *b = c->head;
        if (c->failed) {
            mr_counter_add(c->counters.errors, b->n);
            batch_done(c, b);
            continue;
        }
        int rc = b->n > 0 ? c->host->emit(c->host, b->recs, b->n) : 0;
        if (rc == MR_EAGAIN) {
            return; /* the tick offers it again */
        }
        if (rc != 0) {
            /* Nothing from here on is confirmed: the server keeps it for the next run. */
            c->failed = true;
            mr_counter_add(c->counters.errors, b->n);
            MR_LOG_ERROR(c->host->name, "records not accepted: %s", mr_strerror(rc));
            c->host->ended(c->host, rc);
            batch_done(c, b);
            continue;
        }
        if (b->n > 0) {
            c->emitted++;
            mr_counter_add(c->counters.records_out, b->n);
            mr_counter_add(c->counters.records_in, b->n);
        }
        if (b->ack_lsn != 0) {
            ack_push(c, c->emitted, b->ack_lsn);
        }
        batch_done(c, b);
    }
}

void pgcdc_deliver(void *item, void *arg)
{
    struct pgcdc_ctx *c = arg;
    struct pgcdc_batch *b = item;
    /* Before inflight drops in pump: the worker must never see inflight 0 with a stale
     * "settled" from before this batch. */
    atomic_store(&c->settled, false);
    b->next = NULL;
    if (c->tail != NULL) {
        c->tail->next = b;
    } else {
        c->head = b;
    }
    c->tail = b;
    pump(c);
    pgcdc_settle(c);
}

static void on_tick(uv_timer_t *t)
{
    struct pgcdc_ctx *c = t->data;
    pump(c);
    pgcdc_settle(c);
}

static int pgcdc_init(void *ctx, const void *conf, struct mr_input_host *host, struct mr_err *err)
{
    struct pgcdc_ctx *c = ctx;
    const struct pgcdc_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->host = host;
    atomic_init(&c->durable_lsn, 0);
    atomic_init(&c->inflight, 0);
    atomic_init(&c->settled, true);
    pthread_mutex_init(&c->pool_mu, NULL);
    int rc = pgcdc_decoder_init(&c->dec, cf, host->names, host->name, err);
    if (rc == 0) {
        rc = mr_plugin_counters_register(host->metrics, &mr_input_postgres_cdc, host->name,
                                         &c->counters);
        if (rc != 0) {
            MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
        }
    }
    char inst[256], labels[300];
    if (rc == 0 && mr_metrics_label_escape(host->name, inst, sizeof(inst)) >= 0) {
        snprintf(labels, sizeof(labels), "instance=\"%s\"", inst);
        rc = mr_metrics_counter(host->metrics, "millrace_postgres_cdc_reconnects_total",
                                "Times the replication connection was opened again.", labels,
                                &c->m_reconnects);
    }
    if (rc != 0) {
        pgcdc_decoder_fini(&c->dec);
        pthread_mutex_destroy(&c->pool_mu);
    }
    return rc;
}

static int pgcdc_start(void *ctx, struct mr_err *err)
{
    struct pgcdc_ctx *c = ctx;
    int rc = uv_timer_init(c->host->loop, &c->tick);
    if (rc != 0) {
        return MR_ERR_SET(err, mr_err_from_errno(-rc), "timer: %s", uv_strerror(rc));
    }
    c->tick.data = c;
    c->timer_open = true;
    c->started = true;
    if (c->host->durable == NULL) {
        MR_LOG_WARN(c->host->name, "this host does not report journal commits: positions are "
                                   "confirmed when records are handed over");
    }
    uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
    rc = mr_worker_start(&c->worker, c->host->loop, pgcdc_worker_run, pgcdc_deliver, c,
                         2 * PGCDC_MAX_INFLIGHT);
    if (rc != 0) {
        c->worker = NULL;
        return MR_ERR_SET(err, rc, "cannot start the replication thread: %s", mr_strerror(rc));
    }
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct pgcdc_ctx *c = h->data;
    c->timer_open = false;
    c->host->stopped(c->host);
}

static void pgcdc_stop(void *ctx)
{
    struct pgcdc_ctx *c = ctx;
    if (c->stopping) {
        return;
    }
    c->stopping = true;
    /* Joins the thread (it confirms what is durable on its way out) and emits what it left. */
    mr_worker_stop(c->worker);
    c->worker = NULL;
    if (c->timer_open) {
        uv_close((uv_handle_t *)&c->tick, on_closed);
    } else {
        c->host->stopped(c->host);
    }
}

static void pgcdc_fini(void *ctx)
{
    struct pgcdc_ctx *c = ctx;
    while (c->head != NULL) {
        batch_done(c, c->head);
    }
    while (c->pool != NULL) {
        struct pgcdc_batch *b = c->pool;
        c->pool = b->next;
        pgcdc_batch_destroy(b);
    }
    pthread_mutex_destroy(&c->pool_mu);
    pgcdc_decoder_fini(&c->dec);
}

const struct mr_plugin mr_input_postgres_cdc = {
    .kind = MR_PLUGIN_INPUT,
    .name = "postgres_cdc",
    .help = "Streams inserts, updates and deletes of PostgreSQL tables (MES, ERP) as records, "
            "through logical replication with a publication; positions are confirmed to the "
            "server only after the journal committed the records.",
    .conf = {.fields = pgcdc_fields, .size = sizeof(struct pgcdc_conf)},
    .ctx_size = sizeof(struct pgcdc_ctx),
    .input = {.init = pgcdc_init, .start = pgcdc_start, .stop = pgcdc_stop, .fini = pgcdc_fini},
};
