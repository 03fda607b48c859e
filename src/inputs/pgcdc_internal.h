/* Input `postgres_cdc`: shared between the plugin (pgcdc.c, loop thread), the replication
 * session (pgcdc_conn.c, worker thread) and the pgoutput decoder (pgcdc_decode.c). */
#ifndef MR_INPUTS_PGCDC_INTERNAL_H
#define MR_INPUTS_PGCDC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "millrace/config.h"
#include "millrace/log.h"
#include "millrace/plugin.h"
#include "millrace/worker.h"

#define PGCDC_MAX_TABLES   64  /* configured tables */
#define PGCDC_MAX_RELS     128 /* relations announced by the server in one session */
#define PGCDC_MAX_COLS     256 /* columns of one table we look at */
#define PGCDC_MAX_TAGCOLS  (MR_RECORD_MAX_TAGS - 2) /* op and table take two tags */
#define PGCDC_MAX_PARTS    16  /* literal and {column} pieces of an asset template */
#define PGCDC_ASSET_MAX    512 /* bytes of one rendered asset path */
#define PGCDC_MAX_INFLIGHT 8   /* batches posted by the worker and not yet emitted */
#define PGCDC_ACK_RING     1024

/* One entry of `tables:`. */
struct pgcdc_table_conf {
    char *table;               /* "schema.name", or "name" for schema public */
    char *asset;               /* template: literal text and {column} */
    struct mr_strlist signals; /* columns that become records; empty: every other column */
    struct mr_strlist tags;    /* columns that become tags of every record of the row */
};

struct pgcdc_conf {
    char *address;
    char *slot;
    char *publication;
    bool create_slot;
    struct mr_conf_list tables; /* of struct pgcdc_table_conf */
    int64_t status_interval_ns;
    int64_t timeout_ns;
    int64_t retry_max_ns;
    int64_t batch;
    uint64_t batch_bytes;
};

/* A batch of records handed from the worker to the loop: one allocation, records then arena. */
struct pgcdc_batch {
    struct pgcdc_batch *next; /* loop side FIFO */
    struct mr_record *recs;
    size_t n, cap;
    char *arena;
    size_t used, arena_cap;
    /* End LSN of the last transaction that is complete in this batch and the ones before it;
     * 0 when no transaction ended here. The server may forget everything up to it once this
     * batch is durable. */
    uint64_t ack_lsn;
};

struct pgcdc_batch *pgcdc_batch_create(size_t cap, size_t arena_cap);
void pgcdc_batch_destroy(struct pgcdc_batch *b);

/* ---- decoder: pgoutput (protocol version 1) messages into records ---- */

struct pgcdc_part {
    const char *text; /* literal (borrowed from the config) or column name */
    size_t len;
    bool column;
};

/* A configured table, resolved once at init. */
struct pgcdc_table {
    const struct pgcdc_table_conf *conf;
    char schema[64];
    char name[64];
    char qname[130]; /* "schema.name": the value of the table tag */
    uint32_t qname_len;
    struct pgcdc_part parts[PGCDC_MAX_PARTS];
    size_t nparts;
    bool asset_has_columns;
    mr_name_id fixed_asset; /* template without columns */
};

enum pgcdc_role {
    ROLE_NONE = 0,
    ROLE_SIGNAL = 1,
    ROLE_TAG = 2,
};

struct pgcdc_col {
    uint32_t type_oid;
    uint8_t role;    /* enum pgcdc_role */
    mr_name_id name; /* signal name, or tag key */
};

/* A relation as announced by the server (Relation message), mapped to a configured table. */
struct pgcdc_rel {
    uint32_t relid;
    int table; /* index into tables, -1 when not configured (changes ignored) */
    uint16_t ncols;
    int16_t part_col[PGCDC_MAX_PARTS]; /* template column piece -> column index */
    struct pgcdc_col cols[PGCDC_MAX_COLS];
    char last_asset[PGCDC_ASSET_MAX]; /* memo: a row of the same asset costs no interning */
    size_t last_asset_len;
    mr_name_id last_asset_id;
};

struct pgcdc_decoder {
    struct mr_names *names;
    const char *log_name;
    struct pgcdc_table tables[PGCDC_MAX_TABLES];
    size_t ntables;
    struct pgcdc_rel *rels; /* PGCDC_MAX_RELS */
    size_t nrels;
    mr_name_id k_op, k_table, v_deleted;
    bool in_txn;
    int64_t commit_time_ns; /* of the transaction in progress (from Begin) */
    uint64_t commit_end_lsn;
    uint64_t rows, rows_skipped; /* for tests and logs */
};

/* pgcdc_decode results besides 0 and negative MR_E* codes. */
#define PGCDC_COMMIT 1 /* a transaction ended: d->commit_end_lsn is its end */

int pgcdc_decoder_init(struct pgcdc_decoder *d, const struct pgcdc_conf *conf,
                       struct mr_names *names, const char *log_name, struct mr_err *err);
void pgcdc_decoder_fini(struct pgcdc_decoder *d);
/* Forget the relations of a session (the server announces them again after a reconnect). */
void pgcdc_decoder_reset(struct pgcdc_decoder *d);
/* Decode one pgoutput message into b. Returns 0, PGCDC_COMMIT, MR_ETOOBIG (b cannot take the
 * whole row: hand b over and call again with an empty batch; b is unchanged), MR_ECORRUPT (a
 * malformed message; err says where), MR_ENOTSUP (more tables or columns than supported) or
 * MR_EPARSE (a row that cannot be mapped, e.g. a NULL
 * asset column: skipped, err says why). Rows of unconfigured tables are ignored. */
int pgcdc_decode(struct pgcdc_decoder *d, const uint8_t *msg, size_t len, struct pgcdc_batch *b,
                 struct mr_err *err);

/* ---- the plugin instance ---- */

struct pgcdc_ctx {
    const struct pgcdc_conf *conf;
    struct mr_input_host *host;
    struct mr_plugin_counters counters;
    struct mr_counter *m_reconnects;
    struct mr_log_ratelimit rl;
    struct pgcdc_decoder dec; /* used by the worker thread only, after init */
    /* loop thread */
    struct mr_worker *worker;
    uv_timer_t tick;
    bool started, stopping, failed, timer_open;
    struct pgcdc_batch *head, *tail; /* delivered, not yet emitted (back-pressure) */
    uint64_t emitted;                /* emit calls that returned 0 */
    struct {
        uint64_t seq, lsn;
    } acks[PGCDC_ACK_RING]; /* emit sequence -> LSN it completes, oldest first */
    size_t ack_head, ack_n;
    /* shared */
    atomic_uint_least64_t durable_lsn; /* loop: the source may forget up to here */
    atomic_int inflight;               /* batches posted and not yet emitted or dropped */
    atomic_bool settled;               /* loop: everything emitted is durable */
    pthread_mutex_t pool_mu;           /* emitted batches go back to the worker for reuse */
    struct pgcdc_batch *pool;
    int pool_n;
    /* worker thread */
    uint64_t posted_lsn; /* last ack_lsn posted: reconnects resume after it */
};

/* Loop thread: take a batch the worker posted (ownership passes), emit what the host accepts
 * in order, and raise durable_lsn to what host->durable covers. */
void pgcdc_deliver(void *item, void *arg);
/* Loop thread: raise durable_lsn to the end of the last transaction the journal committed. */
void pgcdc_settle(struct pgcdc_ctx *c);

/* A batch from the pool (emptied) or a new one; NULL when out of memory. Any thread. */
struct pgcdc_batch *pgcdc_batch_get(struct pgcdc_ctx *c);
/* Give a batch back to the pool (freed when the pool is full). Any thread. */
void pgcdc_batch_put(struct pgcdc_ctx *c, struct pgcdc_batch *b);

/* Worker thread body (pgcdc_conn.c): connect, stream, reconnect until stopped. */
void pgcdc_worker_run(struct mr_worker *worker, void *arg);

/* "1A/2B3C" form of an LSN into out (at least 24 bytes). */
void pgcdc_lsn_format(uint64_t lsn, char *out, size_t cap);

#endif
