/* Ingest: an input plugin hosted on the loop thread, its records kept in the journal topic named
 * after the input before anything else sees them.
 *
 * The input's emit encodes the batch into per-partition journal batches (topic_writer.h) and
 * appends them; when the journal's queue is full the append blocks, which slows the input down
 * instead of dropping data (a plant's PLC buffers or the input's own socket does). Pipelines
 * read the topic on their own threads, so a slow pipeline never holds an input back.
 */
#include <stdio.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "engine/relay.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"

#define BATCH_BYTES (256u * 1024u)
#define MARKS       64 /* emits whose durability is tracked one by one (the rest: in groups) */

struct mr_ingest {
    struct mr_engine_env *env;
    const struct mr_plugin_conf *pc;
    struct mr_input_host host;
    void *ctx;
    bool ready;   /* init succeeded: fini owed */
    bool started; /* start called: stop owed */
    bool stopping;
    bool handles_closed;
    bool ended_reported;
    struct mr_journal_topic *topic;
    struct mr_topic_writer writer;
    bool writer_ready;
    struct mr_log_ratelimit rl;
    void (*done)(void *arg);
    void *done_arg;
    struct mr_counter *m_errors;
    uint64_t emitted;          /* emit calls that returned 0 */
    uint64_t durable;          /* of those, committed by the journal (host->durable) */
    uint64_t *marks;           /* MARKS rows of per-partition append counts (topic_writer marks) */
    uint64_t mark_emit[MARKS]; /* the emit number each row covers */
    size_t mark_head, mark_count;
    struct mr_relay relay; /* for emit_relayed: what was kept, by origin */
    bool relay_ready;
    struct mr_counter *m_relay_dropped;
};

/* One more emit call succeeded: remember where the journal must be for it to be durable. */
static void note_emitted(struct mr_ingest *in)
{
    in->emitted++;
    if (in->marks == NULL || in->mark_count == MARKS) {
        return;
    }
    size_t slot = (in->mark_head + in->mark_count) % MARKS;
    mr_topic_writer_mark(&in->writer, in->marks + slot * in->writer.nparts);
    in->mark_emit[slot] = in->emitted;
    in->mark_count++;
}

static int ingest_emit(struct mr_input_host *host, const struct mr_record *recs, size_t n)
{
    struct mr_ingest *in = host->arg;
    if (mr_journal_full(in->env->journal)) {
        return MR_EAGAIN; /* journal.max_bytes reached: the input keeps its batch and waits */
    }
    for (size_t i = 0; i < n; i++) {
        int rc = mr_topic_writer_add(&in->writer, &recs[i]);
        if (rc == MR_EINVAL || rc == MR_ETOOBIG) {
            mr_counter_add(in->m_errors, 1);
            MR_LOG_RL(&in->rl, MR_LOG_WARN, host->name, "record not kept: %s", mr_strerror(rc));
        } else if (rc != 0) {
            MR_LOG_RL(&in->rl, MR_LOG_ERROR, host->name, "journal write failed: %s",
                      mr_strerror(rc));
            return rc;
        }
    }
    int rc = mr_topic_writer_flush(&in->writer);
    if (rc != 0) {
        MR_LOG_RL(&in->rl, MR_LOG_ERROR, host->name, "journal write failed: %s", mr_strerror(rc));
    } else {
        note_emitted(in);
    }
    return rc;
}

/* Records relayed from another millrace: drop what this topic already holds (by origin, see
 * relay.h), keep the rest with their origin mark. The first call reads the marks back from the
 * journal (once per process: after a crash this is what makes a resent batch harmless). */
static int ingest_emit_relayed(struct mr_input_host *host, const struct mr_record *recs, size_t n,
                               const struct mr_record_origin *origin, size_t *dropped)
{
    struct mr_ingest *in = host->arg;
    if (mr_journal_full(in->env->journal)) {
        return MR_EAGAIN;
    }
    size_t skipped = 0;
    int rc = in->relay_ready ? 0 : MR_ENOMEM;
    if (rc == 0 && !in->relay.recovered) {
        struct mr_err err;
        int64_t t0 = mr_clock_mono_ns();
        rc = mr_relay_recover(&in->relay, in->topic, &err);
        if (rc != 0) {
            MR_LOG_ERROR(host->name, "%s", err.msg);
        } else {
            MR_LOG_INFO(host->name, "read back the origins of relayed records in %.1f ms",
                        (double)(mr_clock_mono_ns() - t0) / 1e6);
        }
    }
    uint64_t stream = mr_relay_stream(origin);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint32_t part = mr_topic_writer_partition(&in->writer, &recs[i]);
        if (mr_relay_seen(&in->relay, stream, part, origin->offsets[i])) {
            skipped++;
            continue;
        }
        uint8_t buf[16];
        struct mr_batch_header h;
        mr_relay_header(&h, buf, stream, origin->offsets[i]);
        rc = mr_topic_writer_add_with(&in->writer, &recs[i], &h);
        if (rc == MR_EINVAL || rc == MR_ETOOBIG) {
            /* Never keepable: counted as rejected, and noted so a resend does not retry it. */
            mr_counter_add(in->m_errors, 1);
            MR_LOG_RL(&in->rl, MR_LOG_WARN, host->name, "record not kept: %s", mr_strerror(rc));
            rc = 0;
        }
        if (rc == 0) {
            rc = mr_relay_note(&in->relay, stream, part, origin->offsets[i]);
        }
    }
    if (rc == 0) {
        rc = mr_topic_writer_flush(&in->writer);
    }
    if (rc != 0) {
        /* What was noted may not be in the journal: read it back before the next batch. */
        mr_relay_invalidate(&in->relay);
        MR_LOG_RL(&in->rl, MR_LOG_ERROR, host->name, "journal write failed: %s", mr_strerror(rc));
        return rc;
    }
    note_emitted(in);
    mr_counter_add(in->m_relay_dropped, skipped);
    if (dropped != NULL) {
        *dropped = skipped;
    }
    return 0;
}

/* Emit flushes everything it added, so an emit is durable once every batch handed to the journal
 * up to its flush is acknowledged: a mark per emit (up to MARKS outstanding; an emit without
 * one is covered by the next mark) answers that while later emits are still in flight, and a
 * settled writer covers everything. Never ahead of the journal. */
static uint64_t ingest_durable(struct mr_input_host *host)
{
    struct mr_ingest *in = host->arg;
    if (!in->writer_ready) {
        return in->durable;
    }
    while (in->mark_count > 0 &&
           mr_topic_writer_durable_at(&in->writer, in->marks + in->mark_head * in->writer.nparts)) {
        in->durable = in->mark_emit[in->mark_head];
        in->mark_head = (in->mark_head + 1) % MARKS;
        in->mark_count--;
    }
    if (mr_topic_writer_settled(&in->writer)) {
        in->durable = in->emitted;
        in->mark_count = 0;
    }
    return in->durable;
}

static void ingest_ended(struct mr_input_host *host, int status)
{
    struct mr_ingest *in = host->arg;
    if (status == 0) {
        MR_LOG_INFO(host->name, "input finished (end of data)");
    } else {
        MR_LOG_ERROR(host->name, "input stopped: %s", mr_strerror(status));
    }
    if (!in->ended_reported) {
        in->ended_reported = true;
        if (in->env->input_ended != NULL) {
            in->env->input_ended(in->env, status);
        }
    }
}

static void finish_stop(struct mr_ingest *in)
{
    /* Everything emitted is durable before the engine moves on to the pipelines. */
    int rc = in->writer_ready ? mr_topic_writer_sync(&in->writer) : 0;
    if (rc != 0) {
        MR_LOG_ERROR(in->host.name, "records not confirmed by the journal: %s", mr_strerror(rc));
    }
    if (in->done != NULL) {
        void (*done)(void *) = in->done;
        in->done = NULL;
        done(in->done_arg);
    }
}

static void ingest_stopped(struct mr_input_host *host)
{
    struct mr_ingest *in = host->arg;
    in->handles_closed = true;
    finish_stop(in);
}

int mr_ingest_create(struct mr_ingest **out, struct mr_engine_env *env, uv_loop_t *loop,
                     const struct mr_plugin_conf *pc, struct mr_err *err)
{
    struct mr_ingest *in = mr_calloc(1, sizeof(*in));
    if (in == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    in->env = env;
    in->pc = pc;
    in->host = (struct mr_input_host){.name = pc->path,
                                      .names = env->names,
                                      .metrics = env->metrics,
                                      .loop = loop,
                                      .emit = ingest_emit,
                                      .ended = ingest_ended,
                                      .stopped = ingest_stopped,
                                      .durable = ingest_durable,
                                      .emit_relayed = ingest_emit_relayed,
                                      .arg = in};
    in->relay_ready = mr_relay_init(&in->relay) == 0;
    int rc = mr_engine_topic(env, pc->name, &in->topic, err);
    if (rc == 0) {
        rc = mr_topic_writer_init(&in->writer, in->topic, env->names, BATCH_BYTES);
        if (rc != 0) {
            MR_ERR_SET(err, rc, "%s: cannot set up its journal topic", pc->path);
        }
        in->writer_ready = rc == 0;
        in->marks = rc == 0 ? mr_calloc((size_t)MARKS * in->writer.nparts, sizeof(uint64_t)) : NULL;
    }
    char inst[256], labels[300];
    if (rc == 0 && mr_metrics_label_escape(pc->path, inst, sizeof(inst)) >= 0) {
        snprintf(labels, sizeof(labels), "input=\"%s\"", inst);
        rc = mr_metrics_counter(env->metrics, "millrace_input_rejected_total",
                                "Records an input produced that could not be kept.", labels,
                                &in->m_errors);
        if (rc == 0) {
            rc = mr_metrics_counter(env->metrics, "millrace_input_relay_duplicates_total",
                                    "Relayed records dropped because this journal already "
                                    "holds them (a resent batch).",
                                    labels, &in->m_relay_dropped);
        }
        /* Received -> committed: an emit appends its batches right after the input read and
         * decoded them, so append -> journal acknowledgement is that latency, less the decode
         * (microseconds). Timed on the journal's writer thread as each batch is acknowledged. */
        static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025,
                                        0.005,  0.01,    0.025,  0.1,     1};
        struct mr_histogram *h = NULL;
        if (rc == 0) {
            rc = mr_metrics_histogram(env->metrics, "millrace_input_commit_seconds",
                                      "Seconds from an input's batch being appended to the "
                                      "journal until the journal committed it (durable with "
                                      "fsync: always).",
                                      labels, bounds, sizeof(bounds) / sizeof(bounds[0]), &h);
        }
        if (rc == 0) {
            rc = mr_topic_writer_time_commits(&in->writer, h);
            if (rc != 0) {
                MR_ERR_SET(err, rc, "out of memory");
            }
        }
    }
    if (rc == 0) {
        in->ctx = mr_calloc(1, pc->plugin->ctx_size != 0 ? pc->plugin->ctx_size : 1);
        struct mr_err e;
        mr_err_clear(&e);
        rc = in->ctx == NULL ? MR_ENOMEM : pc->plugin->input.init(in->ctx, pc->conf, &in->host, &e);
        if (rc != 0) {
            MR_ERR_SET(err, rc, "%s (%s, %s): %s", pc->path, pc->plugin->name, pc->where,
                       e.msg[0] != '\0' ? e.msg : mr_strerror(rc));
        } else {
            in->ready = true;
        }
    }
    if (rc != 0) {
        mr_ingest_destroy(in);
        return rc;
    }
    *out = in;
    return 0;
}

int mr_ingest_start(struct mr_ingest *in, struct mr_err *err)
{
    if (in->started) {
        return 0;
    }
    in->started = true;
    struct mr_err e;
    mr_err_clear(&e);
    int rc = in->pc->plugin->input.start(in->ctx, &e);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "%s: %s", in->pc->path,
                          e.msg[0] != '\0' ? e.msg : mr_strerror(rc));
    }
    return 0;
}

void mr_ingest_stop(struct mr_ingest *in, void (*done)(void *arg), void *arg)
{
    in->done = done;
    in->done_arg = arg;
    if (!in->started || in->handles_closed) {
        finish_stop(in);
        return;
    }
    if (!in->stopping) {
        in->stopping = true;
        in->pc->plugin->input.stop(in->ctx);
    }
}

void mr_ingest_destroy(struct mr_ingest *in)
{
    if (in == NULL) {
        return;
    }
    if (in->ready) {
        in->pc->plugin->input.fini(in->ctx);
    }
    mr_free(in->ctx);
    if (in->writer_ready) {
        mr_topic_writer_fini(&in->writer);
    }
    if (in->relay_ready) {
        mr_relay_fini(&in->relay);
    }
    mr_free(in->marks);
    mr_free(in);
}

bool mr_ingest_ended(const struct mr_ingest *in)
{
    return in->ended_reported;
}
