/* Delivery: one thread per output, draining the topics that feed it through a journal cursor.
 *
 *   topics --reader--> copy, decode --> output.write --OK--> (every 250 ms) flush, commit cursor
 *                      (gathered up to delivery.batch_size records)
 *                                      |RETRY--> wait, same batch again
 *                                      |FATAL--> stop delivering; the cursor stays, nothing lost
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
 * an arena owned by the output (one memcpy per journal batch, no allocation per record) and
 * decoded from there; the arena is reused once the pending records are written.
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
    int64_t read_pos; /* next offset to decode (records before it are pending or written) */
    /* position and oldest_ms are also read by the metrics collector (another thread) */
    _Atomic int64_t position;  /* next offset to deliver */
    int64_t committed;         /* last committed position */
    _Atomic int64_t oldest_ms; /* record time of the batch at position (-1: none read yet) */
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
    struct mr_record *recs; /* batch_size records of one source, gathered for the next write */
    int64_t *offsets;       /* journal offset of recs[i], for outputs that relay the journal */
    size_t npending;        /* recs[0..npending) decoded, not yet written */
    int64_t fill_start;     /* when recs[0] was decoded (for batch_wait) */
    int64_t next_commit;    /* when the cursor is saved next */
    uint8_t *arena;         /* copies of the journal batches recs[] borrow from */
    size_t arena_cap;
    size_t arena_used;
    struct mr_names_memo memo;
    struct mr_log_ratelimit rl;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_bool drain;
    int64_t drain_deadline;
    bool failed;
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

/* The batch's rejected records (recs[0..n)) onto the dead-letter topic. Returns 0 or the
 * journal's error (the batch is then written again: the rejections come again too). */
static int dlq_put(struct mr_delivery *d, const struct dsource *s, size_t n)
{
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
        rc = mr_topic_writer_add_with(d->dlq, &d->recs[r->index], &h);
        if (rc == 0) {
            mr_counter_add(d->m_rejected, 1);
            MR_LOG_RL(&d->rl, MR_LOG_WARN, d->host.name,
                      "%s[%u] offset %" PRId64 " rejected by the destination (kept in %s): %s",
                      s != NULL ? mr_journal_topic_name(s->topic) : "?",
                      s != NULL ? s->partition : 0, d->offsets[r->index], d->dlq_name, r->reason);
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

static int write_once(struct mr_delivery *d, const struct dsource *s, size_t n, struct mr_err *err)
{
    const struct mr_output_ops *ops = &d->pc->plugin->output;
    if (n == 0) {
        return ops->flush(d->ctx, err);
    }
    if (ops->write_at != NULL) {
        struct mr_output_position pos = {.topic = mr_journal_topic_name(s->topic),
                                         .partition = s->partition,
                                         .offsets = d->offsets};
        return ops->write_at(d->ctx, &pos, d->recs, n, err);
    }
    return ops->write(d->ctx, d->recs, n, err);
}

/* Write the first n decoded records of s (n == 0: flush) until the output answers OK; RETRY
 * waits (backoff, then the open circuit). Returns false on FATAL or stop. */
static bool deliver(struct mr_delivery *d, const struct dsource *s, size_t n)
{
    for (;;) {
        struct mr_err err;
        mr_err_clear(&err);
        d->nrejects = 0;
        d->rejects_lost = 0;
        int rc = write_once(d, s, n, &err);
        if (rc == MR_SINK_OK && d->nrejects > 0) {
            int jrc = dlq_put(d, s, n);
            if (jrc != 0) {
                rc = MR_SINK_RETRY;
                MR_ERR_SET(&err, jrc, "cannot keep rejected records in %s: %s", d->dlq_name,
                           mr_strerror(jrc));
            }
        }
        if (rc == MR_SINK_OK) {
            if (n > 0) {
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
            d->failed = true;
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
    if (!moved || !deliver(d, NULL, 0)) {
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

/* Write the pending records of s until the output confirmed them; the position moves past
 * them only then. False on FATAL or stop. */
static bool pending_write(struct mr_delivery *d, struct dsource *s)
{
    size_t n = d->npending;
    if (n == 0) {
        return true;
    }
    if (!deliver(d, s, n)) {
        return false;
    }
    mr_counter_add(d->m_delivered, n - d->nrejects); /* rejected: not delivered */
    s->position = d->offsets[n - 1] + 1;
    d->npending = 0;
    int64_t now = mr_clock_mono_ns();
    if (now >= d->next_commit) { /* a long backlog: save the position as often as between reads */
        commit(d);
        d->next_commit = now + COMMIT_NS;
    }
    return true;
}

/* The records of a journal batch, copied behind the pending ones (whose bytes stay put). When
 * they do not fit, the pending records are written first; an arena too small for one batch
 * grows while empty. NULL on stop or FATAL (*rc 0) or without memory (*rc MR_ENOMEM). */
static const uint8_t *arena_keep(struct mr_delivery *d, struct dsource *s,
                                 const struct mr_batch_info *info, int *rc)
{
    *rc = 0;
    size_t len = info->records_len;
    if (len > d->arena_cap - d->arena_used && !pending_write(d, s)) {
        return NULL;
    }
    if (d->npending == 0) {
        d->arena_used = 0; /* no record borrows from it any more */
    }
    if (len > d->arena_cap - d->arena_used) { /* empty now: only a batch larger than the arena */
        uint8_t *grown = mr_realloc(d->arena, len);
        if (grown == NULL) {
            *rc = MR_ENOMEM;
            return NULL;
        }
        d->arena = grown;
        d->arena_cap = len;
    }
    uint8_t *copy = d->arena + d->arena_used;
    if (len > 0) {
        memcpy(copy, info->records, len);
    }
    d->arena_used += len;
    return copy;
}

/* Decode the records of one journal batch of s behind the pending ones, writing whenever
 * batch_size are gathered. False on stop or FATAL. */
static bool batch_take(struct mr_delivery *d, struct dsource *s, const struct mr_batch_info *info)
{
    int rc = 0;
    struct mr_batch_info kept = *info;
    kept.records = arena_keep(d, s, info, &rc);
    if (kept.records == NULL) {
        if (rc == 0) {
            return false;
        }
        /* Without room for a copy, deliver this batch alone from the reader's bytes (valid
         * until its next call): correct, only smaller writes. */
        if (!pending_write(d, s)) {
            return false;
        }
        kept.records = info->records;
    }
    if (d->npending == 0) {
        s->oldest_ms = info->base_timestamp;
        d->fill_start = mr_clock_mono_ns();
    }
    struct mr_batch_iter it;
    struct mr_batch_record br;
    mr_batch_iter_init(&it, &kept);
    while (mr_batch_iter_next(&it, &br, NULL) == 0) {
        if (br.offset < s->read_pos || br.value_len <= 0) {
            continue;
        }
        struct mr_err e;
        mr_err_clear(&e);
        bool ours = mr_batch_record_is_millrace(&br);
        if (!ours || mr_record_decode_memo(&d->recs[d->npending], d->env->names, &d->memo, br.value,
                                           (size_t)br.value_len, &e) != 0) {
            /* Not a millrace record (appended raw with `journal append`): nothing an output
             * can render. Counted and named, then passed over. */
            mr_counter_add(d->m_skipped, 1);
            MR_LOG_RL(&d->rl, MR_LOG_WARN, d->host.name, "%s[%u] offset %" PRId64 " skipped: %s",
                      mr_journal_topic_name(s->topic), s->partition, br.offset,
                      ours ? e.msg : "not a millrace record");
            continue;
        }
        d->offsets[d->npending] = br.offset;
        if (++d->npending == (size_t)d->conf.batch_size) {
            if (!pending_write(d, s)) {
                return false;
            }
            s->oldest_ms = info->base_timestamp;
            d->fill_start = mr_clock_mono_ns();
        }
    }
    s->read_pos = info->base_offset + info->last_offset_delta + 1;
    if (d->npending == 0) {
        s->position = s->read_pos; /* skipped records at the end are passed too */
    }
    if (kept.records == info->records) { /* not copied: may not outlive this call */
        return pending_write(d, s);
    }
    return true;
}

/* The journal holds fewer than batch_size records for s right now: wait for more (up to
 * batch_wait after the first pending record)? True to read again. */
static bool fill_wait(struct mr_delivery *d, struct dsource *s)
{
    if (d->npending == 0 || d->conf.batch_wait_ns <= 0 || atomic_load(&d->stop)) {
        return false;
    }
    int64_t left = d->fill_start + d->conf.batch_wait_ns - mr_clock_mono_ns();
    if (left <= 0) {
        return false;
    }
    int64_t step = left < SLEEP_STEP_NS ? left : SLEEP_STEP_NS;
    int rc = mr_journal_reader_wait(s->reader, (int)(step / 1000000) + 1);
    return rc == 0 || rc == MR_ETIMEDOUT;
}

/* Retention or the journal's disk cap deleted records before this output read them: say how
 * many, continue with what is left. */
static void deleted_skip(struct mr_delivery *d, struct dsource *s)
{
    int64_t now_at = mr_journal_reader_position(s->reader);
    mr_counter_add(d->m_deleted_unread, (uint64_t)(now_at - s->read_pos));
    MR_LOG_WARN(d->host.name,
                "%s[%u]: %" PRId64 " records were deleted (retention or journal.max_bytes) "
                "before they were delivered; continuing at offset %" PRId64,
                mr_journal_topic_name(s->topic), s->partition, now_at - s->read_pos, now_at);
    s->read_pos = now_at;
    s->position = now_at;
}

/* Deliver what s holds now, in writes of up to batch_size records gathered across journal
 * batches: 1 done, 0 nothing to read, -1 stop. Reads for at most COMMIT_NS (then writes what
 * it has), so other sources and the cursor commit get their turn during a long backlog. */
static int deliver_source(struct mr_delivery *d, struct dsource *s)
{
    int64_t until = mr_clock_mono_ns() + COMMIT_NS;
    int did = 0;
    d->npending = 0;
    for (;;) {
        struct mr_batch_info info;
        int rc = mr_journal_reader_next_batch(s->reader, &info);
        if (rc == MR_ERANGE) {
            if (!pending_write(d, s)) {
                return -1;
            }
            if (mr_journal_reader_seek(s->reader, MR_JOURNAL_EARLIEST) == 0) {
                deleted_skip(d, s);
                did = 1;
                continue;
            }
        }
        if (rc != 0) {
            if (rc != MR_EAGAIN && rc != MR_EEOF) {
                MR_LOG_RL(&d->rl, MR_LOG_ERROR, d->host.name, "reading %s[%u]: %s",
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
    if (!pending_write(d, s)) {
        return -1;
    }
    s->position = s->read_pos;
    return did;
}

static void *delivery_main(void *arg)
{
    struct mr_delivery *d = arg;
    uint64_t seen = 0;
    d->next_commit = mr_clock_mono_ns() + COMMIT_NS;
    while (!d->failed) {
        if (atomic_load(&d->stop) && (!atomic_load(&d->drain) || measure_lag(d).records == 0 ||
                                      mr_clock_mono_ns() > d->drain_deadline)) {
            break;
        }
        int done = 0;
        for (size_t i = 0; i < d->nsources && !d->failed; i++) {
            int rc = deliver_source(d, &d->sources[i]);
            if (rc < 0) {
                break;
            }
            done += rc;
        }
        int64_t now = mr_clock_mono_ns();
        if (now >= d->next_commit) {
            commit(d);
            d->next_commit = now + COMMIT_NS;
        }
        if (done == 0 && !atomic_load(&d->stop)) {
            mr_engine_env_wait(d->env, &seen, 50);
        }
    }
    if (!d->failed) {
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
    pthread_mutex_init(&d->error_lock, NULL);
    snprintf(d->consumer, sizeof(d->consumer), "output.%s", pc->name);
    d->conf = pc->delivery;
    d->conf.retry_min_ns = d->conf.retry_min_ns > 0 ? d->conf.retry_min_ns : 100 * 1000000LL;
    d->conf.retry_max_ns =
        d->conf.retry_max_ns >= d->conf.retry_min_ns ? d->conf.retry_max_ns : d->conf.retry_min_ns;
    d->conf.circuit_failures = d->conf.circuit_failures > 0 ? d->conf.circuit_failures : 10;
    d->conf.circuit_open_ns = d->conf.circuit_open_ns > 0 ? d->conf.circuit_open_ns : 30000000000LL;
    d->conf.batch_size = d->conf.batch_size > 0 ? d->conf.batch_size : BATCH_DEFAULT;
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
    d->recs = mr_calloc(cap, sizeof(struct mr_record));
    d->offsets = mr_calloc(cap, sizeof(int64_t));
    d->rejects_cap = cap < REJECTS_MIN ? cap : REJECTS_MIN;
    d->rejects = mr_calloc(d->rejects_cap, sizeof(struct rejection));
    d->arena_cap = cap * ARENA_PER_REC;
    d->arena_cap = d->arena_cap < ARENA_MIN ? ARENA_MIN : d->arena_cap;
    d->arena_cap = d->arena_cap > MR_BATCH_MAX_BYTES ? MR_BATCH_MAX_BYTES : d->arena_cap;
    d->arena = mr_malloc(d->arena_cap);
    int rc = d->recs != NULL && d->offsets != NULL && d->rejects != NULL && d->arena != NULL
                 ? 0
                 : MR_ERR_SET(err, MR_ENOMEM, "out of memory");
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
    if (pthread_create(&d->thread, NULL, delivery_main, d) != 0) {
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
    pthread_join(d->thread, NULL);
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
    mr_free(d->recs);
    mr_free(d->offsets);
    mr_free(d->rejects);
    pthread_mutex_destroy(&d->error_lock);
    mr_free(d->arena);
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
