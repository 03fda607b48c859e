/* Delivery: one thread per output, draining the topics that feed it through a journal cursor.
 *
 *   topics --reader thread--> copy, decode --slots--> writer thread: output.write --OK-->
 *            (gathered up to delivery.batch_size             (every 250 ms) flush, commit cursor
 *             records a write)                   |RETRY--> wait, same write again
 *                                                |FATAL--> stop delivering; the cursor stays
 *
 * Waits after RETRY start at delivery.retry_min and double up to retry_max, each with up to a
 * quarter of random jitter (outputs that failed together do not come back in step). After
 * delivery.circuit_failures failures in a row the circuit opens: one probe every circuit_open,
 * logged once, visible as millrace_output_state 2; the first success closes it.
 *
 * The cursor ("output.<name>") is committed only after the output answered OK to flush, so a
 * crash re-delivers at most the records since the last commit (at least once). A slow or absent
 * peer holds back only its own output: the journal buffers, within its retention.
 *
 * Records the destination refuses for good (host->reject during write) go to the dead-letter
 * topic "deadletter.<name>" with the reason in an "mr.reject" record header; that topic is
 * synced before the cursor moves past them, so a rejected record is never simply gone.
 *
 * Batching: a write carries up to delivery.batch_size records of one topic partition, gathered
 * from as many journal batches as the reader has right now (or within delivery.batch_wait), so a
 * backlog goes out in few large requests/transactions whatever sizes the journal batches have.
 * Decoded records borrow string values, tag values and sample blocks from the batch bytes, which
 * the reader reuses at its next call: each journal batch's records are therefore copied into
 * the arena of the write being gathered (one memcpy per journal batch, no allocation per
 * record) and decoded from there; the arena is reused once that write is confirmed.
 *
 * Two threads, so that reading and decoding the next write overlaps the destination's answer
 * to the current one (a backlog drains at the pace of the slower of the two, not their sum):
 * the reader gathers writes into NSLOTS slots and hands each over in order; the writer calls
 * the output (only ever from this one thread), moves the source's position once a write is
 * confirmed, and owns retries, dead letters and cursor commits. The reader waits while every
 * slot is handed over and not yet written, so at most NSLOTS writes are decoded ahead.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "engine/topic_writer.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/engine.h"
#include "millrace/log.h"

#define BATCH_DEFAULT 5000
#define COMMIT_NS     (250 * 1000000LL) /* cursor saves: 2 fsyncs each; bounds re-delivery */
#define SLEEP_STEP_NS (50 * 1000000LL)
/* The arena holding the copied journal batches of the records not yet written: ARENA_PER_REC
 * bytes a record of batch_size (a record of a few short tags fits), at least ARENA_MIN, grown
 * (while empty) to the largest journal batch seen, never beyond MR_BATCH_MAX_BYTES. */
#define ARENA_PER_REC 256u
#define ARENA_MIN     (2u * 1024u * 1024u)
#define REJECTS_MIN   64u
#define NSLOTS        2 /* the write in flight and the one gathered meanwhile */

enum output_state { /* millrace_output_state */
                    STATE_OK = 0,
                    STATE_RETRYING = 1,
                    STATE_CIRCUIT_OPEN = 2,
                    STATE_STOPPED = 3,
};
#define REASON_MAX 200

/* One record of the batch being written that the destination refused for good. */
struct rejection {
    size_t index;
    char reason[REASON_MAX];
};

struct dsource {
    struct mr_journal_topic *topic;
    uint32_t partition;
    struct mr_journal_reader *reader;
    int64_t read_pos;   /* reader: next offset to decode (records before it are in slots) */
    int64_t queued_pos; /* reader: end position of the last slot handed over */
    /* position and oldest_ms are also read by the metrics collector (another thread) */
    _Atomic int64_t position;  /* next offset to deliver */
    int64_t committed;         /* last committed position */
    _Atomic int64_t oldest_ms; /* record time of the batch at position (-1: none read yet) */
};

/* A write being gathered by the reader or waiting for the writer: up to batch_size decoded
 * records of one source, with the copies of the journal batches they borrow from. */
struct wslot {
    struct dsource *s;
    struct mr_record *recs;
    int64_t *offsets;     /* journal offset of recs[i], for outputs that relay the journal */
    size_t n;             /* recs[0..n) decoded */
    int64_t end_position; /* the source's position once this slot is written */
    int64_t oldest_ms;    /* record time of the slot's first journal batch */
    int64_t fill_start;   /* when recs[0] was decoded (for batch_wait) */
    uint8_t *arena;       /* copies of the journal batches recs[] borrow from */
    size_t arena_cap;
    size_t arena_used;
};

struct mr_delivery {
    struct mr_engine_env *env;
    const struct mr_plugin_conf *pc;
    struct mr_output_host host;
    char consumer[300];
    void *ctx;
    bool ready;
    struct dsource *sources;
    size_t nsources;
    /* slots[q_head], slots[q_head + 1], ... (q_ready of them) wait for the writer, in order;
     * the reader gathers into `fill`, the next one after them */
    struct wslot slots[NSLOTS];
    size_t q_head;
    size_t q_ready;
    struct wslot *fill;
    bool reader_done; /* q_ready, q_head, reader_done, writer_done: under q_lock */
    bool writer_done;
    pthread_mutex_t q_lock;
    pthread_cond_t q_cv;
    int64_t next_commit;             /* writer: when the cursor is saved next */
    struct mr_names_memo memo;       /* reader's */
    struct mr_log_ratelimit rl;      /* writer's log lines */
    struct mr_log_ratelimit rl_read; /* reader's log lines */
    pthread_t thread;                /* the writer */
    pthread_t reader;
    bool started;
    atomic_bool stop;
    atomic_bool drain;
    int64_t drain_deadline;
    atomic_bool failed; /* FATAL: set by the writer, the reader stops too */
    struct mr_counter *m_delivered;
    struct mr_counter *m_retries;
    struct mr_counter *m_skipped;
    struct mr_counter *m_deleted_unread;
    struct mr_counter *m_rejected;
    struct mr_gauge *m_lag;
    struct mr_gauge *m_lag_seconds;
    struct mr_gauge *m_bytes_pending;
    struct mr_gauge *m_state;
    /* retry state */
    struct mr_delivery_conf conf; /* pc->delivery, zero fields (hand-built confs) defaulted */
    int64_t backoff_ns;
    int64_t failures; /* in a row */
    uint64_t rng;
    /* rejections of the write in progress (kept only if it answers OK); grown on demand up to
     * batch_size entries */
    struct rejection *rejects;
    size_t nrejects;
    size_t rejects_cap;
    size_t rejects_lost; /* more than batch_size in one write, or no memory: counted, not kept */
    char dlq_name[320];
    struct mr_topic_writer *dlq; /* opened at the first rejection */
    bool collecting;             /* update_lag is a metrics collector */
    /* for mr_delivery_status (read on the loop thread) */
    _Atomic int64_t last_delivery_ms;
    pthread_mutex_t error_lock;
    char last_error[256];
    int64_t last_error_ms;
};

/* Keep why the last attempt failed, for `millrace outputs` (the log says it too). */
static void note_error(struct mr_delivery *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note_error(struct mr_delivery *d, const char *fmt, ...)
{
    pthread_mutex_lock(&d->error_lock);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->last_error, sizeof(d->last_error), fmt, ap);
    va_end(ap);
    d->last_error_ms = mr_clock_wall_ms();
    pthread_mutex_unlock(&d->error_lock);
}

static void host_reject(struct mr_output_host *host, size_t index, const char *reason)
{
    struct mr_delivery *d = host->arg;
    size_t max = (size_t)d->conf.batch_size;
    if (d->nrejects == d->rejects_cap && d->rejects_cap < max) {
        size_t cap = d->rejects_cap * 2 < max ? d->rejects_cap * 2 : max;
        struct rejection *grown = mr_realloc(d->rejects, cap * sizeof(*grown));
        if (grown != NULL) {
            d->rejects = grown;
            d->rejects_cap = cap;
        }
    }
    if (d->nrejects == d->rejects_cap) {
        d->rejects_lost++;
        return;
    }
    struct rejection *r = &d->rejects[d->nrejects++];
    r->index = index;
    snprintf(r->reason, sizeof(r->reason), "%s", reason != NULL ? reason : "rejected");
}

static int dlq_open(struct mr_delivery *d)
{
    if (d->dlq != NULL) {
        return 0;
    }
    struct mr_journal_topic *t = NULL;
    struct mr_err err;
    int rc = mr_engine_topic(d->env, d->dlq_name, &t, &err);
    struct mr_topic_writer *w = rc == 0 ? mr_calloc(1, sizeof(*w)) : NULL;
    if (rc == 0 && w == NULL) {
        rc = MR_ENOMEM;
    }
    if (rc == 0) {
        rc = mr_topic_writer_init(w, t, d->env->names, MR_BATCH_DEFAULT_CAP);
    }
    if (rc != 0) {
        mr_free(w);
        return rc;
    }
    d->dlq = w;
    return 0;
}

/* The rejected records of write w onto the dead-letter topic. Returns 0 or the journal's error
 * (the write is then sent again: the rejections come again too). */
static int dlq_put(struct mr_delivery *d, const struct wslot *w)
{
    size_t n = w->n;
    int rc = d->nrejects > 0 ? dlq_open(d) : 0;
    for (size_t i = 0; rc == 0 && i < d->nrejects; i++) {
        const struct rejection *r = &d->rejects[i];
        if (r->index >= n) {
            continue; /* an output bug: nothing to point at */
        }
        struct mr_batch_header h = {.key = "mr.reject",
                                    .key_len = 9,
                                    .value = r->reason,
                                    .value_len = (int32_t)strlen(r->reason)};
        rc = mr_topic_writer_add_with(d->dlq, &w->recs[r->index], &h);
        if (rc == 0) {
            mr_counter_add(d->m_rejected, 1);
            MR_LOG_RL(&d->rl, MR_LOG_WARN, d->host.name,
                      "%s[%u] offset %" PRId64 " rejected by the destination (kept in %s): %s",
                      mr_journal_topic_name(w->s->topic), w->s->partition, w->offsets[r->index],
                      d->dlq_name, r->reason);
        }
    }
    if (rc == 0 && d->dlq != NULL) {
        rc = mr_topic_writer_flush(d->dlq);
    }
    if (d->rejects_lost > 0) {
        MR_LOG_RL(&d->rl, MR_LOG_ERROR, d->host.name,
                  "output rejected more records than the batch holds (%zu), or no memory for "
                  "them; %zu rejections not recorded",
                  n, d->rejects_lost);
    }
    return rc;
}

/* What waits for this output: records, journal bytes (estimated from each partition's average
 * record size) and the record time of the oldest batch not yet confirmed (-1: none). */
struct lag {
    int64_t records;
    double bytes;
    int64_t oldest_ms;
};

static struct lag measure_lag(const struct mr_delivery *d)
{
    struct lag l = {.oldest_ms = -1};
    for (size_t i = 0; i < d->nsources; i++) {
        const struct dsource *s = &d->sources[i];
        struct mr_journal_partition_stats st;
        int64_t pos = s->position;
        if (mr_journal_partition_stats(s->topic, s->partition, &st) != 0 || st.end <= pos) {
            continue;
        }
        l.records += st.end - pos;
        if (st.end > st.earliest) {
            l.bytes += (double)st.bytes / (double)(st.end - st.earliest) * (double)(st.end - pos);
        }
        int64_t t = s->oldest_ms >= 0 ? s->oldest_ms : st.max_timestamp;
        if (t >= 0 && (l.oldest_ms < 0 || t < l.oldest_ms)) {
            l.oldest_ms = t;
        }
    }
    return l;
}

/* Seconds since the record time of the oldest waiting record (0: nothing waits). */
static double backlog_age_s(const struct lag *l)
{
    int64_t now_ms = mr_clock_wall_ms();
    return l->records > 0 && l->oldest_ms >= 0 && now_ms > l->oldest_ms
               ? (double)(now_ms - l->oldest_ms) / 1e3
               : 0;
}

/* The lag gauges. A metrics collector: it runs at every scrape, so the lag is current even
 * while the output thread waits in a long write. */
static void update_lag(void *arg)
{
    struct mr_delivery *d = arg;
    struct lag l = measure_lag(d);
    mr_gauge_set(d->m_lag, (double)l.records);
    mr_gauge_set(d->m_bytes_pending, l.bytes);
    mr_gauge_set(d->m_lag_seconds, backlog_age_s(&l));
}

static void set_state(struct mr_delivery *d, enum output_state st)
{
    mr_gauge_set(d->m_state, (double)st);
}

/* xorshift64*: jitter only, no need for anything better. */
static uint64_t next_random(struct mr_delivery *d)
{
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return d->rng * 2685821657736338717ULL;
}

/* Sleep ns in steps, so stop is noticed; false when told to stop (and not draining). */
static bool rest(struct mr_delivery *d, int64_t ns)
{
    for (int64_t t = 0; t < ns; t += SLEEP_STEP_NS) {
        if (atomic_load(&d->stop) &&
            (!atomic_load(&d->drain) || mr_clock_mono_ns() > d->drain_deadline)) {
            return false;
        }
        mr_clock_sleep_ns(ns - t < SLEEP_STEP_NS ? ns - t : SLEEP_STEP_NS);
    }
    return true;
}

static int write_once(struct mr_delivery *d, const struct wslot *w, struct mr_err *err)
{
    const struct mr_output_ops *ops = &d->pc->plugin->output;
    if (w == NULL) {
        return ops->flush(d->ctx, err);
    }
    if (ops->write_at != NULL) {
        struct mr_output_position pos = {.topic = mr_journal_topic_name(w->s->topic),
                                         .partition = w->s->partition,
                                         .offsets = w->offsets};
        return ops->write_at(d->ctx, &pos, w->recs, w->n, err);
    }
    return ops->write(d->ctx, w->recs, w->n, err);
}

/* Write the records of w (NULL: flush) until the output answers OK; RETRY waits (backoff, then
 * the open circuit). Returns false on FATAL or stop. Writer thread. */
static bool deliver(struct mr_delivery *d, const struct wslot *w)
{
    for (;;) {
        struct mr_err err;
        mr_err_clear(&err);
        d->nrejects = 0;
        d->rejects_lost = 0;
        int rc = write_once(d, w, &err);
        if (rc == MR_SINK_OK && d->nrejects > 0 && w != NULL) {
            int jrc = dlq_put(d, w);
            if (jrc != 0) {
                rc = MR_SINK_RETRY;
                MR_ERR_SET(&err, jrc, "cannot keep rejected records in %s: %s", d->dlq_name,
                           mr_strerror(jrc));
            }
        }
        if (rc == MR_SINK_OK) {
            if (w != NULL) {
                atomic_store(&d->last_delivery_ms, mr_clock_wall_ms());
            }
            if (d->failures >= d->conf.circuit_failures) {
                MR_LOG_INFO(d->host.name, "destination is back after %" PRId64 " failed attempts",
                            d->failures);
            }
            d->failures = 0;
            d->backoff_ns = d->conf.retry_min_ns;
            set_state(d, STATE_OK);
            return true;
        }
        const char *why = err.msg[0] != '\0' ? err.msg : "output not ready";
        note_error(d, "%s", why);
        if (rc == MR_SINK_FATAL) {
            MR_LOG_ERROR(d->host.name,
                         "gave up: %s. Delivery stops here; the records stay in "
                         "the journal (fix the cause, then reload or restart)",
                         why);
            set_state(d, STATE_STOPPED);
            atomic_store(&d->failed, true);
            return false;
        }
        mr_counter_add(d->m_retries, 1);
        int64_t wait;
        if (++d->failures >= d->conf.circuit_failures) {
            wait = d->conf.circuit_open_ns;
            if (d->failures == d->conf.circuit_failures) {
                MR_LOG_WARN(d->host.name,
                            "circuit open after %" PRId64 " failed attempts in a row (%s); "
                            "probing every %.1f s, the journal keeps everything meanwhile",
                            d->failures, why, (double)wait / 1e9);
            }
            set_state(d, STATE_CIRCUIT_OPEN);
        } else {
            wait = d->backoff_ns + (int64_t)(next_random(d) % (uint64_t)(d->backoff_ns / 4 + 1));
            MR_LOG_RL(&d->rl, MR_LOG_WARN, d->host.name, "will retry in %" PRId64 " ms: %s",
                      wait / 1000000, why);
            d->backoff_ns =
                d->backoff_ns * 2 > d->conf.retry_max_ns ? d->conf.retry_max_ns : d->backoff_ns * 2;
            set_state(d, STATE_RETRYING);
        }
        if (!rest(d, wait)) {
            return false;
        }
    }
}

static void commit(struct mr_delivery *d)
{
    bool moved = false;
    for (size_t i = 0; i < d->nsources; i++) {
        moved |= d->sources[i].position != d->sources[i].committed;
    }
    if (!moved || !deliver(d, NULL)) {
        return;
    }
    /* Rejected records are durable before the cursor passes them. */
    int drc = d->dlq != NULL ? mr_topic_writer_sync(d->dlq) : 0;
    if (drc != 0) {
        MR_LOG_RL(&d->rl, MR_LOG_ERROR, d->host.name,
                  "cannot store rejected records in %s: %s; position not saved", d->dlq_name,
                  mr_strerror(drc));
        note_error(d, "cannot store rejected records in %s: %s", d->dlq_name, mr_strerror(drc));
        return;
    }
    for (size_t i = 0; i < d->nsources; i++) {
        struct dsource *s = &d->sources[i];
        if (s->position == s->committed) {
            continue;
        }
        struct mr_err err;
        int rc = mr_journal_cursor_commit(s->topic, d->consumer, s->partition, s->position, &err);
        if (rc != 0) {
            MR_LOG_RL(&d->rl, MR_LOG_WARN, d->host.name, "cannot save position: %s",
                      mr_strerror(rc));
            note_error(d, "cannot save position in %s: %s", mr_journal_topic_name(s->topic),
                       mr_strerror(rc));
        } else {
            s->committed = s->position;
        }
    }
}

/* ---- the hand-over between the two threads ---- */

static void q_wait(struct mr_delivery *d, int64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t at = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + ns;
    ts.tv_sec = at / 1000000000LL;
    ts.tv_nsec = at % 1000000000LL;
    pthread_cond_timedwait(&d->q_cv, &d->q_lock, &ts);
}

static bool past_drain_deadline(const struct mr_delivery *d)
{
    return atomic_load(&d->drain) && mr_clock_mono_ns() > d->drain_deadline;
}

/* Called with q_lock held. */
static bool reader_must_quit(const struct mr_delivery *d)
{
    return atomic_load(&d->failed) || d->writer_done ||
           (atomic_load(&d->stop) && (!atomic_load(&d->drain) || past_drain_deadline(d)));
}

/* Hand the slot being gathered to the writer with the position s reaches once it is written,
 * then wait for a free slot to gather into. A slot without records is handed over only when it
 * moves the position (records passed over). False when the reader must stop. Reader thread. */
static bool slot_handover(struct mr_delivery *d, struct dsource *s, int64_t end_position)
{
    struct wslot *w = d->fill;
    if (w->n == 0 && end_position <= s->queued_pos) {
        return true;
    }
    w->s = s;
    w->end_position = end_position;
    s->queued_pos = end_position;
    pthread_mutex_lock(&d->q_lock);
    d->q_ready++;
    pthread_cond_broadcast(&d->q_cv);
    while (d->q_ready == NSLOTS && !reader_must_quit(d)) {
        q_wait(d, SLEEP_STEP_NS); /* stop and drain are flags, not signalled under the lock */
    }
    bool ok = d->q_ready < NSLOTS;
    d->fill = ok ? &d->slots[(d->q_head + d->q_ready) % NSLOTS] : NULL;
    pthread_mutex_unlock(&d->q_lock);
    if (ok) {
        d->fill->n = 0;
        d->fill->arena_used = 0;
    }
    return ok;
}

/* Wait until the writer has written every slot handed over (their records may borrow from the
 * journal reader's bytes). False when the reader must stop. Reader thread. */
static bool slots_wait_written(struct mr_delivery *d)
{
    pthread_mutex_lock(&d->q_lock);
    while (d->q_ready > 0 && !reader_must_quit(d)) {
        q_wait(d, SLEEP_STEP_NS);
    }
    bool ok = d->q_ready == 0;
    pthread_mutex_unlock(&d->q_lock);
    return ok;
}

/* The oldest slot handed over, waiting up to ns for one; NULL when none. Writer thread. */
static struct wslot *slot_next(struct mr_delivery *d, int64_t ns)
{
    pthread_mutex_lock(&d->q_lock);
    if (d->q_ready == 0 && !d->reader_done) {
        q_wait(d, ns);
    }
    struct wslot *w = d->q_ready > 0 ? &d->slots[d->q_head] : NULL;
    pthread_mutex_unlock(&d->q_lock);
    return w;
}

/* The oldest slot is written: the reader may gather into it again. Writer thread. */
static void slot_release(struct mr_delivery *d)
{
    pthread_mutex_lock(&d->q_lock);
    d->q_head = (d->q_head + 1) % NSLOTS;
    d->q_ready--;
    pthread_cond_broadcast(&d->q_cv);
    pthread_mutex_unlock(&d->q_lock);
}

/* ---- the reader: journal batches into slots ---- */

/* A copy of the journal batch's records in the arena of the slot being gathered. When it does
 * not fit behind what the slot holds, the slot is handed over first; an empty slot's arena
 * grows for a batch larger than it. NULL on stop or FATAL (*rc 0) or without memory (*rc
 * MR_ENOMEM). */
static const uint8_t *arena_keep(struct mr_delivery *d, struct dsource *s,
                                 const struct mr_batch_info *info, int *rc)
{
    *rc = 0;
    size_t len = info->records_len;
    struct wslot *w = d->fill;
    if (w->n == 0) {
        w->arena_used = 0; /* no record borrows from it */
    }
    if (len > w->arena_cap - w->arena_used) {
        if (!slot_handover(d, s, s->read_pos)) {
            return NULL;
        }
        w = d->fill;
    }
    if (len > w->arena_cap - w->arena_used) { /* empty now: only a batch larger than the arena */
        uint8_t *grown = mr_realloc(w->arena, len);
        if (grown == NULL) {
            *rc = MR_ENOMEM;
            return NULL;
        }
        w->arena = grown;
        w->arena_cap = len;
    }
    uint8_t *copy = w->arena + w->arena_used;
    if (len > 0) {
        memcpy(copy, info->records, len);
    }
    w->arena_used += len;
    return copy;
}

/* Decode the records of one journal batch of s into slots, handing each over when batch_size
 * are gathered. False on stop or FATAL. */
static bool batch_take(struct mr_delivery *d, struct dsource *s, const struct mr_batch_info *info)
{
    int64_t from = s->read_pos; /* records before it are in slots already */
    int64_t last = info->base_offset + info->last_offset_delta;
    bool borrowed = false; /* decoding from the reader's bytes: valid until its next call */
    struct mr_batch_info kept = *info;
keep:
    if (!borrowed) {
        int rc = 0;
        kept.records = arena_keep(d, s, info, &rc);
        if (kept.records == NULL && rc == 0) {
            return false;
        }
        if (kept.records == NULL) {
            /* Without room for a copy, decode from the reader's bytes, once every slot handed
             * over is written, and have these written before the next read: correct, only
             * slower. */
            if (!slot_handover(d, s, s->read_pos) || !slots_wait_written(d)) {
                return false;
            }
            kept.records = info->records;
            borrowed = true;
        }
    }
    struct wslot *w = d->fill;
    if (w->n == 0) {
        w->oldest_ms = info->base_timestamp;
        w->fill_start = mr_clock_mono_ns();
    }
    struct mr_batch_iter it;
    struct mr_batch_record br;
    mr_batch_iter_init(&it, &kept);
    while (mr_batch_iter_next(&it, &br, NULL) == 0) {
        if (br.offset < from || br.value_len <= 0) {
            continue;
        }
        struct mr_err e;
        mr_err_clear(&e);
        bool ours = mr_batch_record_is_millrace(&br);
        if (!ours || mr_record_decode_memo(&w->recs[w->n], d->env->names, &d->memo, br.value,
                                           (size_t)br.value_len, &e) != 0) {
            /* Not a millrace record (appended raw with `journal append`): nothing an output
             * can render. Counted and named, then passed over. */
            mr_counter_add(d->m_skipped, 1);
            MR_LOG_RL(&d->rl_read, MR_LOG_WARN, d->host.name,
                      "%s[%u] offset %" PRId64 " skipped: %s", mr_journal_topic_name(s->topic),
                      s->partition, br.offset, ours ? e.msg : "not a millrace record");
            continue;
        }
        w->offsets[w->n] = br.offset;
        if (++w->n == (size_t)d->conf.batch_size) {
            from = br.offset + 1;
            if (!slot_handover(d, s, from)) {
                return false;
            }
            if (from > last) {
                break;
            }
            /* The rest of this journal batch is decoded into the next slot, from a copy in
             * that slot's arena: the full slot's arena is reused once it is written. */
            goto keep;
        }
    }
    s->read_pos = last + 1;
    if (borrowed) {
        return slot_handover(d, s, s->read_pos) && slots_wait_written(d);
    }
    return true;
}

/* The journal holds fewer than batch_size records for s right now: wait for more (up to
 * batch_wait after the slot's first record)? True to read again. */
static bool fill_wait(struct mr_delivery *d, struct dsource *s)
{
    const struct wslot *w = d->fill;
    if (w->n == 0 || d->conf.batch_wait_ns <= 0 || atomic_load(&d->stop)) {
        return false;
    }
    int64_t left = w->fill_start + d->conf.batch_wait_ns - mr_clock_mono_ns();
    if (left <= 0) {
        return false;
    }
    int64_t step = left < SLEEP_STEP_NS ? left : SLEEP_STEP_NS;
    int rc = mr_journal_reader_wait(s->reader, (int)(step / 1000000) + 1);
    return rc == 0 || rc == MR_ETIMEDOUT;
}

/* Retention or the journal's disk cap deleted records before this output read them: say how
 * many, continue with what is left (the position moves there once the slots before are
 * written). False on stop. */
static bool deleted_skip(struct mr_delivery *d, struct dsource *s)
{
    int64_t now_at = mr_journal_reader_position(s->reader);
    mr_counter_add(d->m_deleted_unread, (uint64_t)(now_at - s->read_pos));
    MR_LOG_WARN(d->host.name,
                "%s[%u]: %" PRId64 " records were deleted (retention or journal.max_bytes) "
                "before they were delivered; continuing at offset %" PRId64,
                mr_journal_topic_name(s->topic), s->partition, now_at - s->read_pos, now_at);
    s->read_pos = now_at;
    return slot_handover(d, s, now_at);
}

/* Gather what s holds now into writes of up to batch_size records across journal batches:
 * 1 read something, 0 nothing to read, -1 stop. Reads for at most COMMIT_NS, so other sources
 * get their turn during a long backlog. */
static int gather_source(struct mr_delivery *d, struct dsource *s)
{
    int64_t until = mr_clock_mono_ns() + COMMIT_NS;
    int did = 0;
    for (;;) {
        struct mr_batch_info info;
        int rc = mr_journal_reader_next_batch(s->reader, &info);
        if (rc == MR_ERANGE) {
            if (!slot_handover(d, s, s->read_pos)) {
                return -1;
            }
            if (mr_journal_reader_seek(s->reader, MR_JOURNAL_EARLIEST) == 0) {
                if (!deleted_skip(d, s)) {
                    return -1;
                }
                did = 1;
                continue;
            }
        }
        if (rc != 0) {
            if (rc != MR_EAGAIN && rc != MR_EEOF) {
                MR_LOG_RL(&d->rl_read, MR_LOG_ERROR, d->host.name, "reading %s[%u]: %s",
                          mr_journal_topic_name(s->topic), s->partition, mr_strerror(rc));
                note_error(d, "reading %s[%u]: %s", mr_journal_topic_name(s->topic), s->partition,
                           mr_strerror(rc));
            }
            if ((rc == MR_EAGAIN || rc == MR_EEOF) && fill_wait(d, s)) {
                continue;
            }
            break;
        }
        did = 1;
        if (!batch_take(d, s, &info)) {
            return -1;
        }
        if (mr_clock_mono_ns() > until || (atomic_load(&d->stop) && !atomic_load(&d->drain))) {
            break;
        }
    }
    /* what is gathered goes out now, and records passed over at the end move the position */
    return slot_handover(d, s, s->read_pos) ? did : -1;
}

static void *reader_main(void *arg)
{
    struct mr_delivery *d = arg;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&d->q_lock);
        bool quit = reader_must_quit(d);
        pthread_mutex_unlock(&d->q_lock);
        if (quit) {
            break;
        }
        int done = 0;
        size_t i = 0;
        for (; i < d->nsources; i++) {
            int rc = gather_source(d, &d->sources[i]);
            if (rc < 0) {
                break;
            }
            done += rc;
        }
        if (i < d->nsources || (done == 0 && atomic_load(&d->stop))) {
            break; /* told to stop, or draining and nothing is left to read */
        }
        if (done == 0) {
            mr_engine_env_wait(d->env, &seen, 50);
        }
    }
    pthread_mutex_lock(&d->q_lock);
    d->reader_done = true;
    pthread_cond_broadcast(&d->q_cv);
    pthread_mutex_unlock(&d->q_lock);
    return NULL;
}

/* ---- the writer: slots to the output ---- */

/* Write slot w until the output confirmed it; the source's position moves past it only then.
 * False on FATAL or stop. */
static bool slot_write(struct mr_delivery *d, const struct wslot *w)
{
    struct dsource *s = w->s;
    if (w->n > 0) {
        atomic_store(&s->oldest_ms, w->oldest_ms);
        if (!deliver(d, w)) {
            return false;
        }
        mr_counter_add(d->m_delivered, w->n - d->nrejects); /* rejected: not delivered */
    }
    atomic_store(&s->position, w->end_position);
    return true;
}

static bool writer_must_quit(struct mr_delivery *d)
{
    if (atomic_load(&d->failed)) {
        return true;
    }
    if (!atomic_load(&d->stop)) {
        return false;
    }
    if (!atomic_load(&d->drain) || past_drain_deadline(d)) {
        return true;
    }
    pthread_mutex_lock(&d->q_lock);
    bool drained = d->reader_done && d->q_ready == 0;
    pthread_mutex_unlock(&d->q_lock);
    return drained;
}

static void *delivery_main(void *arg)
{
    struct mr_delivery *d = arg;
    d->next_commit = mr_clock_mono_ns() + COMMIT_NS;
    while (!writer_must_quit(d)) {
        struct wslot *w = slot_next(d, SLEEP_STEP_NS);
        if (w != NULL) {
            if (!slot_write(d, w)) {
                break;
            }
            slot_release(d);
        }
        int64_t now = mr_clock_mono_ns();
        if (now >= d->next_commit) { /* also during a long backlog: bounds re-delivery */
            commit(d);
            d->next_commit = now + COMMIT_NS;
        }
    }
    pthread_mutex_lock(&d->q_lock);
    d->writer_done = true;
    pthread_cond_broadcast(&d->q_cv);
    pthread_mutex_unlock(&d->q_lock);
    if (!atomic_load(&d->failed)) {
        commit(d);
    }
    return NULL;
}

int mr_delivery_create(struct mr_delivery **out, struct mr_engine_env *env,
                       const struct mr_plugin_conf *pc, const char *const *topics, size_t ntopics,
                       struct mr_err *err)
{
    struct mr_delivery *d = mr_calloc(1, sizeof(*d));
    if (d == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    d->env = env;
    d->pc = pc;
    atomic_init(&d->stop, false);
    atomic_init(&d->drain, false);
    atomic_init(&d->last_delivery_ms, -1);
    d->last_error_ms = -1;
    atomic_init(&d->failed, false);
    pthread_mutex_init(&d->error_lock, NULL);
    pthread_mutex_init(&d->q_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->q_cv, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(d->consumer, sizeof(d->consumer), "output.%s", pc->name);
    d->conf = pc->delivery;
    d->conf.retry_min_ns = d->conf.retry_min_ns > 0 ? d->conf.retry_min_ns : 100 * 1000000LL;
    d->conf.retry_max_ns =
        d->conf.retry_max_ns >= d->conf.retry_min_ns ? d->conf.retry_max_ns : d->conf.retry_min_ns;
    d->conf.circuit_failures = d->conf.circuit_failures > 0 ? d->conf.circuit_failures : 10;
    d->conf.circuit_open_ns = d->conf.circuit_open_ns > 0 ? d->conf.circuit_open_ns : 30000000000LL;
    if (d->conf.batch_size <= 0) {
        size_t def = pc->plugin->output.batch_default;
        d->conf.batch_size = def > 0 && def <= 100000 ? (int64_t)def : BATCH_DEFAULT;
    }
    d->backoff_ns = d->conf.retry_min_ns;
    d->rng = (uint64_t)mr_clock_mono_ns() ^ (uint64_t)(uintptr_t)d ^ 0x9e3779b97f4a7c15ULL;
    if (pc->delivery.dead_letter_topic != NULL) {
        snprintf(d->dlq_name, sizeof(d->dlq_name), "%s", pc->delivery.dead_letter_topic);
    } else {
        snprintf(d->dlq_name, sizeof(d->dlq_name), "deadletter.%s", pc->name);
    }
    d->host = (struct mr_output_host){.name = pc->path,
                                      .names = env->names,
                                      .metrics = env->metrics,
                                      .reject = host_reject,
                                      .arg = d};
    size_t cap = (size_t)d->conf.batch_size;
    d->rejects_cap = cap < REJECTS_MIN ? cap : REJECTS_MIN;
    d->rejects = mr_calloc(d->rejects_cap, sizeof(struct rejection));
    bool slots_ok = d->rejects != NULL;
    for (size_t k = 0; k < NSLOTS; k++) {
        struct wslot *w = &d->slots[k];
        w->recs = mr_calloc(cap, sizeof(struct mr_record));
        w->offsets = mr_calloc(cap, sizeof(int64_t));
        w->arena_cap = cap * ARENA_PER_REC;
        w->arena_cap = w->arena_cap < ARENA_MIN ? ARENA_MIN : w->arena_cap;
        w->arena_cap = w->arena_cap > MR_BATCH_MAX_BYTES ? MR_BATCH_MAX_BYTES : w->arena_cap;
        w->arena = mr_malloc(w->arena_cap);
        slots_ok &= w->recs != NULL && w->offsets != NULL && w->arena != NULL;
    }
    int rc = slots_ok ? 0 : MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    for (size_t t = 0; rc == 0 && t < ntopics; t++) {
        struct mr_journal_topic *topic = NULL;
        rc = mr_engine_topic(env, topics[t], &topic, err);
        uint32_t np = rc == 0 ? mr_journal_topic_partitions(topic) : 0;
        struct dsource *ns =
            rc == 0 ? mr_realloc(d->sources, (d->nsources + np) * sizeof(*ns)) : NULL;
        if (rc == 0 && ns == NULL) {
            rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        }
        if (rc == 0) {
            d->sources = ns;
        }
        for (uint32_t part = 0; rc == 0 && part < np; part++) {
            struct dsource *s = &d->sources[d->nsources];
            *s = (struct dsource){.topic = topic, .partition = part, .oldest_ms = -1};
            int64_t pos = MR_JOURNAL_EARLIEST;
            rc = mr_journal_cursor_get(topic, d->consumer, part, &pos, err);
            if (rc == MR_ENOENT) {
                pos = MR_JOURNAL_EARLIEST; /* first run: deliver everything kept */
                rc = 0;
            }
            if (rc == 0) {
                rc = mr_journal_reader_create(topic, part, pos, &s->reader);
            }
            if (rc == MR_ERANGE) {
                rc = mr_journal_reader_create(topic, part, MR_JOURNAL_EARLIEST, &s->reader);
            }
            if (rc != 0) {
                MR_ERR_SET(err, rc, "%s: cannot read %s[%u]", pc->path, topics[t], part);
                break;
            }
            s->position = mr_journal_reader_position(s->reader);
            s->read_pos = s->position;
            s->queued_pos = s->position;
            s->committed = s->position;
            d->nsources++;
        }
    }
    char inst[256], labels[300];
    if (rc == 0 && mr_metrics_label_escape(pc->path, inst, sizeof(inst)) >= 0) {
        snprintf(labels, sizeof(labels), "output=\"%s\"", inst);
        rc = mr_metrics_counter(env->metrics, "millrace_output_delivered_total",
                                "Records the destination accepted (rejected records not included).",
                                labels, &d->m_delivered);
        if (rc == 0) {
            rc = mr_metrics_counter(env->metrics, "millrace_output_retries_total",
                                    "Times an output asked for a batch to be retried.", labels,
                                    &d->m_retries);
        }
        if (rc == 0) {
            rc = mr_metrics_counter(env->metrics, "millrace_output_skipped_total",
                                    "Records in an output's topics that are not millrace records "
                                    "and were passed over.",
                                    labels, &d->m_skipped);
        }
        if (rc == 0) {
            rc = mr_metrics_counter(env->metrics, "millrace_output_deleted_unread_total",
                                    "Records deleted by retention or journal.max_bytes before "
                                    "this output delivered them.",
                                    labels, &d->m_deleted_unread);
        }
        if (rc == 0) {
            rc = mr_metrics_counter(env->metrics, "millrace_output_rejected_total",
                                    "Records the destination refused for good, kept in the "
                                    "output's dead-letter topic.",
                                    labels, &d->m_rejected);
        }
        if (rc == 0) {
            rc = mr_metrics_gauge(env->metrics, "millrace_output_lag_records",
                                  "Records waiting in the journal for an output.", labels,
                                  &d->m_lag);
        }
        if (rc == 0) {
            rc = mr_metrics_gauge(env->metrics, "millrace_output_lag_seconds",
                                  "Age (record time) of the oldest record waiting for an output.",
                                  labels, &d->m_lag_seconds);
        }
        if (rc == 0) {
            rc = mr_metrics_gauge(env->metrics, "millrace_output_pending_bytes",
                                  "Journal bytes waiting for an output (estimated from the "
                                  "average record size).",
                                  labels, &d->m_bytes_pending);
        }
        if (rc == 0) {
            rc = mr_metrics_gauge(env->metrics, "millrace_output_state",
                                  "Destination state: 0 ok, 1 retrying, 2 circuit open (probing "
                                  "every delivery.circuit_open), 3 stopped (fatal error).",
                                  labels, &d->m_state);
        }
    }
    if (rc == 0 && mr_metrics_collector_add(env->metrics, update_lag, d) != 0) {
        rc = MR_ERR_SET(err, MR_ETOOBIG, "%s: too many outputs for the metrics registry", pc->path);
    }
    d->collecting = rc == 0;
    if (rc == 0) {
        d->ctx = mr_calloc(1, pc->plugin->ctx_size != 0 ? pc->plugin->ctx_size : 1);
        struct mr_err e;
        mr_err_clear(&e);
        rc = d->ctx == NULL ? MR_ENOMEM : pc->plugin->output.init(d->ctx, pc->conf, &d->host, &e);
        if (rc != 0) {
            MR_ERR_SET(err, rc, "%s (%s, %s): %s", pc->path, pc->plugin->name, pc->where,
                       e.msg[0] != '\0' ? e.msg : mr_strerror(rc));
        } else {
            d->ready = true;
        }
    }
    if (rc != 0) {
        mr_delivery_destroy(d);
        return rc;
    }
    *out = d;
    return 0;
}

int mr_delivery_start(struct mr_delivery *d, struct mr_err *err)
{
    if (d->started) {
        return 0;
    }
    d->q_head = 0;
    d->q_ready = 0;
    d->fill = &d->slots[0];
    d->fill->n = 0;
    d->reader_done = false;
    d->writer_done = false;
    if (pthread_create(&d->thread, NULL, delivery_main, d) != 0) {
        return MR_ERR_SET(err, MR_ESYS, "%s: cannot start thread", d->host.name);
    }
    if (pthread_create(&d->reader, NULL, reader_main, d) != 0) {
        pthread_mutex_lock(&d->q_lock);
        d->reader_done = true; /* the writer finds nothing to write and quits at stop */
        pthread_mutex_unlock(&d->q_lock);
        atomic_store(&d->stop, true);
        pthread_join(d->thread, NULL);
        atomic_store(&d->stop, false);
        return MR_ERR_SET(err, MR_ESYS, "%s: cannot start thread", d->host.name);
    }
    d->started = true;
    return 0;
}

void mr_delivery_stop(struct mr_delivery *d, bool drain, int timeout_ms)
{
    if (!d->started) {
        return;
    }
    d->drain_deadline = mr_clock_mono_ns() + (int64_t)timeout_ms * 1000000;
    atomic_store(&d->drain, drain);
    atomic_store(&d->stop, true);
    mr_engine_env_wake(d->env);
    pthread_mutex_lock(&d->q_lock);
    pthread_cond_broadcast(&d->q_cv);
    pthread_mutex_unlock(&d->q_lock);
    pthread_join(d->thread, NULL);
    pthread_join(d->reader, NULL);
    d->started = false;
}

void mr_delivery_destroy(struct mr_delivery *d)
{
    if (d == NULL) {
        return;
    }
    mr_delivery_stop(d, false, 0);
    if (d->collecting) {
        mr_metrics_collector_remove(d->env->metrics, update_lag, d);
    }
    if (d->ready) {
        d->pc->plugin->output.fini(d->ctx);
    }
    mr_free(d->ctx);
    for (size_t i = 0; i < d->nsources; i++) {
        mr_journal_reader_destroy(d->sources[i].reader);
    }
    mr_free(d->sources);
    if (d->dlq != NULL) {
        mr_topic_writer_sync(d->dlq);
        mr_topic_writer_fini(d->dlq);
        mr_free(d->dlq);
    }
    for (size_t k = 0; k < NSLOTS; k++) {
        mr_free(d->slots[k].recs);
        mr_free(d->slots[k].offsets);
        mr_free(d->slots[k].arena);
    }
    mr_free(d->rejects);
    pthread_mutex_destroy(&d->error_lock);
    pthread_mutex_destroy(&d->q_lock);
    pthread_cond_destroy(&d->q_cv);
    mr_free(d);
}

void mr_delivery_status(struct mr_delivery *d, struct mr_output_status *st)
{
    static const char *const states[] = {"ok", "retrying", "circuit_open", "stopped"};
    struct lag l = measure_lag(d);
    double state = mr_gauge_value(d->m_state);
    *st = (struct mr_output_status){
        .state = state >= 0 && state <= STATE_STOPPED ? states[(int)state] : "?",
        .dead_letter = d->dlq_name,
        .delivered = mr_counter_value(d->m_delivered),
        .retries = mr_counter_value(d->m_retries),
        .rejected = mr_counter_value(d->m_rejected),
        .skipped = mr_counter_value(d->m_skipped),
        .deleted_unread = mr_counter_value(d->m_deleted_unread),
        .lag_records = l.records,
        .backlog_age_s = backlog_age_s(&l),
        .pending_bytes = l.bytes,
        .last_delivery_ms = atomic_load(&d->last_delivery_ms),
    };
    pthread_mutex_lock(&d->error_lock);
    st->last_error_ms = d->last_error_ms;
    snprintf(st->last_error, sizeof(st->last_error), "%s", d->last_error);
    pthread_mutex_unlock(&d->error_lock);
}
