/* A pipeline: journal topics in, a chain of operators, journal topics out, on its own thread.
 *
 *   sources (topic partitions, one reader each)
 *     -> decode a batch into records -> observe event time per asset (watermark.h)
 *     -> steps[0].process -> emit -> steps[1].process -> ... -> sinks (topic_writer.h)
 *     -> watermark changes -> steps[i].advance (results flow down the rest of the chain)
 *   every checkpoint_interval: wait until every written record is durable, then save source
 *   offsets + sink end offsets + watermarks + operator state in one file (checkpoint.h).
 *
 * Failure model: crash-only. If writing results fails (disk full, I/O error) the pipeline
 * cannot prove what reached the journal, so it throws its in-memory state away, waits, and
 * restarts from the last checkpoint; the replay is de-duplicated (dedupe.h). An operator that
 * rejects a batch (bad data) is logged and counted, and the pipeline goes on.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "engine/checkpoint.h"
#include "engine/engine_internal.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"
#include "millrace/state.h"

#define CHUNK            1024 /* records decoded and pushed down the chain at a time */
#define MAX_TOPICS       32
#define SINK_BATCH_BYTES (256u * 1024u)
#define IDLE_CHECK_NS    (100 * 1000000LL)
#define PROGRESS_NS      (10 * 1000000000LL)
#define RETRY_MIN_MS     100
#define RETRY_MAX_MS     10000
#define DEDUPE_MAX       (16u << 20)

struct source {
    struct mr_journal_topic *topic;
    const char *topic_name;
    uint32_t partition;
    struct mr_journal_reader *reader;
    int64_t position;     /* next offset to process */
    int64_t replay_until; /* while replaying: the end at restore (the crashed run read less) */
};

struct writer {
    struct mr_topic_writer w;
    struct mr_journal_topic *topic;
    /* Per partition: where the results of the replay in progress may already be (the end saved
     * by the checkpoint that was restored). Checkpoints taken while replaying keep these, so a
     * crash during a replay still de-duplicates what the first crashed run wrote. */
    int64_t *scan_from;
};

struct step {
    struct mr_operator_host host;
    const struct mr_plugin_conf *pc;
    void *ctx;
    struct mr_pipeline *p;
    size_t index;
    int *side_writers; /* port - 1 -> writer index */
    size_t nsides;
};

struct mr_pipeline {
    char *name;
    char log_name[300];
    const struct mr_pipeline_conf *conf;
    struct mr_engine_env *env;
    struct source *sources;
    size_t nsources;
    struct writer **writers; /* result topics first, then side-output topics; each allocated
                                 once: the journal holds a pointer to its topic writer */
    size_t nwriters;
    size_t nresults;
    struct step *steps;
    size_t nsteps;
    bool steps_ready;
    struct mr_watermarks wm;
    struct mr_dedupe dedupe;
    bool replaying; /* after a restore, until every source passed its replay_until */
    struct mr_name_hashes hashes;
    struct mr_names_memo memo; /* decoding without hashing names per record */
    struct mr_record *recs;
    struct mr_err err;
    struct mr_log_ratelimit rl;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_bool drain;
    atomic_bool final;      /* with drain: close every window once caught up */
    int64_t drain_deadline; /* monotonic ns; set before stop is raised */
    bool dirty;             /* processed or wrote something since the last checkpoint */
    int sink_error;         /* first failed write since the last restore */
    int64_t next_checkpoint;
    int64_t next_idle_check;
    int64_t next_progress;
    uint64_t progress_in;
    /* metrics */
    struct mr_counter *m_in;
    struct mr_counter *m_out;
    struct mr_counter *m_errors;
    struct mr_counter *m_checkpoints;
    struct mr_counter *m_restarts;
    struct mr_counter *m_deduped;
    struct mr_counter *m_bytes_in;  /* journal batch bytes read */
    struct mr_counter *m_bytes_out; /* journal batch bytes written */
    uint64_t bytes_out_seen;        /* of the writers' bytes_appended, already counted */
    struct mr_gauge *m_lag;
    struct mr_gauge *m_watermark;
};

const char *mr_pipeline_name(const struct mr_pipeline *p)
{
    return p->name;
}

/* ---- writing results ---- */

static int write_records(struct mr_pipeline *p, size_t first, size_t count,
                         const struct mr_record *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (mr_dedupe_active(&p->dedupe) &&
            mr_dedupe_take(&p->dedupe, mr_record_identity(&recs[i], p->env->names, &p->hashes))) {
            mr_counter_add(p->m_deduped, 1);
            continue;
        }
        for (size_t k = first; k < first + count; k++) {
            int rc = mr_topic_writer_add(&p->writers[k]->w, &recs[i]);
            if (rc == MR_EINVAL || rc == MR_ETOOBIG) {
                /* This record cannot be written (an operator made something unencodable);
                 * the rest can. */
                mr_counter_add(p->m_errors, 1);
                MR_LOG_RL(&p->rl, MR_LOG_WARN, p->log_name, "record not written to %s: %s",
                          p->writers[k]->w.topic_name, mr_strerror(rc));
            } else if (rc != 0) {
                if (p->sink_error == 0) {
                    p->sink_error = rc;
                }
                return rc;
            }
        }
        mr_counter_add(p->m_out, 1);
        p->dirty = true;
    }
    return 0;
}

static int chain_push(struct mr_pipeline *p, size_t index, const struct mr_record *recs, size_t n);

static int step_emit(struct mr_operator_host *host, const struct mr_record *recs, size_t n)
{
    struct step *s = host->arg;
    return chain_push(s->p, s->index + 1, recs, n);
}

static int find_or_add_writer(struct mr_pipeline *p, const char *topic, struct mr_err *err)
{
    for (size_t k = 0; k < p->nwriters; k++) {
        if (strcmp(p->writers[k]->w.topic_name, topic) == 0) {
            return (int)k;
        }
    }
    struct writer **nw = mr_realloc(p->writers, (p->nwriters + 1) * sizeof(*nw));
    struct writer *w = mr_calloc(1, sizeof(*w));
    if (nw != NULL) {
        p->writers = nw;
    }
    if (nw == NULL || w == NULL) {
        mr_free(w);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    int rc = mr_engine_topic(p->env, topic, &w->topic, err);
    if (rc == 0) {
        rc = mr_topic_writer_init(&w->w, w->topic, p->env->names, SINK_BATCH_BYTES);
        if (rc != 0) {
            MR_ERR_SET(err, rc, "cannot set up writing to topic %s", topic);
        }
    }
    if (rc != 0) {
        mr_free(w);
        return rc;
    }
    w->scan_from = mr_calloc(w->w.nparts, sizeof(int64_t));
    if (w->scan_from == NULL) {
        mr_topic_writer_fini(&w->w);
        mr_free(w);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    p->writers[p->nwriters] = w;
    return (int)p->nwriters++;
}

static int step_side_open(struct mr_operator_host *host, const char *topic, struct mr_err *err)
{
    struct step *s = host->arg;
    int k = find_or_add_writer(s->p, topic, err);
    if (k < 0) {
        return k;
    }
    int *ns = mr_realloc(s->side_writers, (s->nsides + 1) * sizeof(int));
    if (ns == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    s->side_writers = ns;
    s->side_writers[s->nsides++] = k;
    return (int)s->nsides;
}

static int step_side_emit(struct mr_operator_host *host, int port, const struct mr_record *recs,
                          size_t n)
{
    struct step *s = host->arg;
    if (port < 1 || (size_t)port > s->nsides) {
        return MR_EINVAL;
    }
    return write_records(s->p, (size_t)s->side_writers[port - 1], 1, recs, n);
}

static int chain_push(struct mr_pipeline *p, size_t index, const struct mr_record *recs, size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (index >= p->nsteps) {
        return write_records(p, 0, p->nresults, recs, n);
    }
    struct step *s = &p->steps[index];
    int rc = s->pc->plugin->op.process(s->ctx, recs, n, &p->err);
    if (rc != 0 && p->sink_error == 0) {
        mr_counter_add(p->m_errors, 1);
        MR_LOG_RL(&p->rl, MR_LOG_WARN, p->log_name, "%s: %s", s->host.name,
                  p->err.msg[0] != '\0' ? p->err.msg : mr_strerror(rc));
        mr_err_clear(&p->err);
    }
    return p->sink_error;
}

static int advance_cb(void *arg, mr_name_id asset, int64_t watermark)
{
    struct mr_pipeline *p = arg;
    for (size_t i = 0; i < p->nsteps; i++) {
        struct step *s = &p->steps[i];
        if (s->pc->plugin->op.advance == NULL) {
            continue;
        }
        int rc = s->pc->plugin->op.advance(s->ctx, asset, watermark, &p->err);
        if (rc != 0 && p->sink_error == 0) {
            mr_counter_add(p->m_errors, 1);
            MR_LOG_RL(&p->rl, MR_LOG_WARN, p->log_name, "%s: %s", s->host.name,
                      p->err.msg[0] != '\0' ? p->err.msg : mr_strerror(rc));
            mr_err_clear(&p->err);
        }
        if (p->sink_error != 0) {
            return p->sink_error;
        }
    }
    if (asset == 0) {
        mr_gauge_set(p->m_watermark, (double)watermark / 1e9);
    }
    return 0;
}

/* ---- operators ---- */

static void steps_fini(struct mr_pipeline *p)
{
    if (!p->steps_ready) {
        return;
    }
    for (size_t i = 0; i < p->nsteps; i++) {
        struct step *s = &p->steps[i];
        if (s->ctx != NULL) {
            s->pc->plugin->op.fini(s->ctx);
            mr_free(s->ctx);
            s->ctx = NULL;
        }
        mr_free(s->side_writers);
        s->side_writers = NULL;
        s->nsides = 0;
    }
    p->steps_ready = false;
}

static int steps_init(struct mr_pipeline *p, struct mr_err *err)
{
    for (size_t i = 0; i < p->nsteps; i++) {
        struct step *s = &p->steps[i];
        const struct mr_plugin *pl = s->pc->plugin;
        s->ctx = mr_calloc(1, pl->ctx_size != 0 ? pl->ctx_size : 1);
        if (s->ctx == NULL) {
            steps_fini(p);
            return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        }
        p->steps_ready = true;
        struct mr_err e;
        mr_err_clear(&e);
        int rc = pl->op.init(s->ctx, s->pc->conf, &s->host, &e);
        if (rc != 0) {
            mr_free(s->ctx);
            s->ctx = NULL;
            steps_fini(p);
            return MR_ERR_SET(err, rc, "%s (%s, %s): %s", s->host.name, pl->name, s->pc->where,
                              e.msg[0] != '\0' ? e.msg : mr_strerror(rc));
        }
    }
    p->steps_ready = true;
    return 0;
}

/* ---- checkpoints ---- */

static int sync_writers(struct mr_pipeline *p)
{
    int first = p->sink_error;
    for (size_t k = 0; k < p->nwriters; k++) {
        int rc = mr_topic_writer_sync(&p->writers[k]->w);
        if (rc != 0 && first == 0) {
            first = rc;
        }
    }
    return first;
}

/* With a disk cap (journal.max_bytes), the journal deletes first what every consumer has read,
 * and learns that from cursors: the checkpointed positions are this pipeline's. A failure only
 * means space is freed later, so it is logged, not fatal. */
static void commit_cursors(struct mr_pipeline *p)
{
    if (p->env->cfg->journal.max_bytes == 0) {
        return;
    }
    char consumer[300];
    snprintf(consumer, sizeof(consumer), "pipeline.%s", p->name);
    for (size_t i = 0; i < p->nsources; i++) {
        struct mr_err err;
        int rc = mr_journal_cursor_commit(p->sources[i].topic, consumer, p->sources[i].partition,
                                          p->sources[i].position, &err);
        if (rc != 0) {
            MR_LOG_RL(&p->rl, MR_LOG_WARN, p->log_name, "cannot save its read position: %s",
                      err.msg);
        }
    }
}

static int checkpoint(struct mr_pipeline *p)
{
    int rc = sync_writers(p);
    if (rc != 0) {
        if (p->sink_error == 0) {
            p->sink_error = rc;
        }
        return rc;
    }
    struct mr_state_writer w;
    mr_state_writer_init(&w, p->env->names, 0);
    mr_state_put_bytes(&w, p->name, strlen(p->name));
    mr_state_put_i64(&w, mr_clock_wall_ns());
    mr_state_put_u64(&w, p->nsources);
    for (size_t i = 0; i < p->nsources; i++) {
        mr_state_put_bytes(&w, p->sources[i].topic_name, strlen(p->sources[i].topic_name));
        mr_state_put_u64(&w, p->sources[i].partition);
        mr_state_put_i64(&w, p->sources[i].position);
    }
    uint64_t nparts = 0;
    for (size_t k = 0; k < p->nwriters; k++) {
        nparts += p->writers[k]->w.nparts;
    }
    mr_state_put_u64(&w, nparts);
    for (size_t k = 0; k < p->nwriters; k++) {
        for (uint32_t part = 0; part < p->writers[k]->w.nparts; part++) {
            struct mr_journal_partition_stats st;
            memset(&st, 0, sizeof(st));
            mr_journal_partition_stats(p->writers[k]->topic, part, &st);
            int64_t at = p->replaying && p->writers[k]->scan_from != NULL
                             ? p->writers[k]->scan_from[part]
                             : st.end;
            mr_state_put_bytes(&w, p->writers[k]->w.topic_name,
                               strlen(p->writers[k]->w.topic_name));
            mr_state_put_u64(&w, part);
            mr_state_put_i64(&w, at);
        }
    }
    mr_wm_snapshot(&p->wm, &w);
    mr_state_put_u64(&w, p->nsteps);
    struct mr_state_writer sw;
    mr_state_writer_init(&sw, p->env->names, 0);
    for (size_t i = 0; i < p->nsteps && w.err == 0 && rc == 0; i++) {
        struct step *s = &p->steps[i];
        mr_state_writer_reset(&sw);
        if (s->pc->plugin->op.snapshot != NULL) {
            rc = s->pc->plugin->op.snapshot(s->ctx, &sw, &p->err);
            if (rc == 0) {
                rc = sw.err;
            }
        }
        mr_state_put_bytes(&w, s->pc->plugin->name, strlen(s->pc->plugin->name));
        mr_state_put_bytes(&w, sw.buf, sw.len);
    }
    mr_state_writer_fini(&sw);
    if (rc == 0) {
        rc = w.err;
    }
    if (rc == 0) {
        rc = mr_checkpoint_write(p->env->journal_dir, p->name, w.buf, w.len, &p->err);
    }
    mr_state_writer_fini(&w);
    if (rc != 0) {
        MR_LOG_RL(&p->rl, MR_LOG_ERROR, p->log_name, "checkpoint failed: %s",
                  p->err.msg[0] != '\0' ? p->err.msg : mr_strerror(rc));
        mr_err_clear(&p->err);
        return rc;
    }
    mr_counter_add(p->m_checkpoints, 1);
    p->dirty = false;
    commit_cursors(p);
    return 0;
}

/* Count what reached a sink topic partition after the checkpoint, so the replay skips it. */
static int dedupe_scan(struct mr_pipeline *p, const char *topic, uint32_t part, int64_t from)
{
    struct mr_journal_topic *t = mr_journal_topic_find(p->env->journal, topic);
    if (t == NULL || part >= mr_journal_topic_partitions(t)) {
        return 0;
    }
    struct mr_journal_partition_stats st;
    int rc = mr_journal_partition_stats(t, part, &st);
    if (rc != 0 || st.end <= from) {
        return rc;
    }
    struct mr_journal_reader *r = NULL;
    rc = mr_journal_reader_create(t, part, from, &r);
    struct mr_batch_record br;
    struct mr_record rec;
    while (rc == 0 && mr_journal_reader_position(r) < st.end) {
        rc = mr_journal_reader_next(r, &br);
        if (rc == 0 && br.value_len > 0 &&
            mr_record_decode(&rec, p->env->names, br.value, (size_t)br.value_len, NULL) == 0) {
            rc = mr_dedupe_add(&p->dedupe, mr_record_identity(&rec, p->env->names, &p->hashes));
        }
    }
    mr_journal_reader_destroy(r);
    return rc == MR_EAGAIN || rc == MR_EEOF ? 0 : rc;
}

static struct source *source_find(struct mr_pipeline *p, const void *topic, size_t len,
                                  uint64_t part)
{
    for (size_t i = 0; i < p->nsources; i++) {
        struct source *s = &p->sources[i];
        if (strlen(s->topic_name) == len && memcmp(s->topic_name, topic, len) == 0 &&
            s->partition == part) {
            return s;
        }
    }
    return NULL;
}

static int restore_steps(struct mr_pipeline *p, struct mr_state_reader *r)
{
    uint64_t n = 0;
    mr_state_get_u64(r, &n);
    bool same = n == p->nsteps;
    for (size_t i = 0; same && i < p->nsteps; i++) {
        /* Peek the names first: state of a different chain must not be fed to operators. */
        struct mr_state_reader peek = *r;
        for (size_t k = 0; k < i; k++) {
            const void *b;
            size_t bl;
            mr_state_get_bytes(&peek, &b, &bl);
            mr_state_get_bytes(&peek, &b, &bl);
        }
        const void *name;
        size_t nl;
        mr_state_get_bytes(&peek, &name, &nl);
        const char *want = p->steps[i].pc->plugin->name;
        same = peek.err == 0 && nl == strlen(want) && memcmp(name, want, nl) == 0;
    }
    if (!same) {
        MR_LOG_WARN(p->log_name, "the steps changed since the checkpoint: operator state is "
                                 "discarded, reading resumes where it stopped");
        return r->err;
    }
    for (size_t i = 0; i < p->nsteps && r->err == 0; i++) {
        struct step *s = &p->steps[i];
        const void *name, *st;
        size_t nl, sl;
        mr_state_get_bytes(r, &name, &nl);
        mr_state_get_bytes(r, &st, &sl);
        if (r->err == 0 && s->pc->plugin->op.restore != NULL && sl > 0) {
            struct mr_state_reader sr;
            mr_state_reader_init(&sr, p->env->names, st, sl);
            int rc = s->pc->plugin->op.restore(s->ctx, &sr, &p->err);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return r->err;
}

/* Load the checkpoint (if any): positions, watermarks, operator state, and the records to skip
 * while replaying. */
static int restore(struct mr_pipeline *p, struct mr_err *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = mr_checkpoint_read(p->env->journal_dir, p->name, &data, &len, err);
    int64_t now = mr_clock_wall_ns();
    for (size_t i = 0; i < p->nsources; i++) {
        struct source *s = &p->sources[i];
        struct mr_journal_partition_stats st;
        mr_journal_partition_stats(s->topic, s->partition, &st);
        s->position = p->conf->start == MR_PIPELINE_START_LATEST ? st.end : st.earliest;
        s->replay_until = st.end; /* the crashed run cannot have read further */
    }
    for (size_t k = 0; k < p->nwriters; k++) {
        for (uint32_t part = 0; part < p->writers[k]->w.nparts; part++) {
            struct mr_journal_partition_stats st;
            mr_journal_partition_stats(p->writers[k]->topic, part, &st);
            p->writers[k]->scan_from[part] = st.end;
        }
    }
    if (rc == MR_ENOENT) {
        /* First start: checkpoint the starting point before producing anything. Otherwise a
         * crash before the first interval would leave results in the output topics that no
         * checkpoint knows of, and the next start would write them again. */
        mr_err_clear(err);
        rc = checkpoint(p);
        return rc != 0 ? MR_ERR_SET(err, rc, "cannot write the first checkpoint of pipeline %s",
                                    p->name)
                       : 0;
    }
    if (rc != 0) {
        return rc;
    }
    struct mr_state_reader r;
    mr_state_reader_init(&r, p->env->names, data, len);
    const void *b;
    size_t bl;
    int64_t when = 0;
    uint64_t n = 0;
    mr_state_get_bytes(&r, &b, &bl);
    mr_state_get_i64(&r, &when);
    mr_state_get_u64(&r, &n);
    for (uint64_t i = 0; i < n && r.err == 0; i++) {
        uint64_t part = 0;
        int64_t pos = 0;
        mr_state_get_bytes(&r, &b, &bl);
        mr_state_get_u64(&r, &part);
        mr_state_get_i64(&r, &pos);
        struct source *s = r.err == 0 ? source_find(p, b, bl, part) : NULL;
        if (s != NULL) {
            s->position = pos;
        }
    }
    mr_state_get_u64(&r, &n);
    for (uint64_t i = 0; i < n && r.err == 0 && rc == 0; i++) {
        uint64_t part = 0;
        int64_t end = 0;
        char topic[MR_JOURNAL_TOPIC_MAX + 1];
        mr_state_get_bytes(&r, &b, &bl);
        mr_state_get_u64(&r, &part);
        mr_state_get_i64(&r, &end);
        if (r.err == 0 && bl < sizeof(topic)) {
            memcpy(topic, b, bl);
            topic[bl] = '\0';
            rc = dedupe_scan(p, topic, (uint32_t)part, end);
            for (size_t k = 0; k < p->nwriters; k++) {
                if (strcmp(p->writers[k]->w.topic_name, topic) == 0 &&
                    part < p->writers[k]->w.nparts && p->writers[k]->scan_from != NULL) {
                    p->writers[k]->scan_from[part] = end;
                }
            }
        }
    }
    if (rc == 0) {
        rc = mr_wm_restore(&p->wm, &r, now);
    }
    if (rc == 0) {
        rc = restore_steps(p, &r);
        if (rc != 0 && r.err == 0) {
            /* An operator refused its saved state, typically because its settings changed
             * (a reload with another window size). Waiting would not help: start the operators
             * fresh and go on from the saved offsets. */
            MR_LOG_WARN(p->log_name,
                        "saved operator state does not fit the current settings "
                        "(%s): discarded; reading resumes where it stopped",
                        p->err.msg[0] != '\0' ? p->err.msg : mr_strerror(rc));
            mr_err_clear(&p->err);
            steps_fini(p);
            rc = steps_init(p, err);
        }
    }
    if (rc == 0 && r.err != 0) {
        rc = r.err;
    }
    mr_free(data);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot restore checkpoint of pipeline %s: %s", p->name,
                          p->err.msg[0] != '\0' ? p->err.msg : mr_strerror(rc));
    }
    p->replaying = mr_dedupe_active(&p->dedupe);
    MR_LOG_INFO(p->log_name,
                "restored checkpoint of %.1f s ago; %" PRIu64 " results already written will "
                "not be repeated",
                (double)(now - when) / 1e9, p->dedupe.pending);
    return 0;
}

/* ---- reading ---- */

static int push_chunk(struct mr_pipeline *p, size_t n)
{
    mr_counter_add(p->m_in, n);
    p->progress_in += n;
    int rc = chain_push(p, 0, p->recs, n);
    if (rc == 0) {
        rc = mr_wm_collect(&p->wm, mr_clock_wall_ns(), false, advance_cb, p);
    }
    return rc;
}

/* Process one journal batch of source s. Returns 1 when a batch was processed, 0 when there
 * was nothing to read, or a negative error. */
static int process_batch(struct mr_pipeline *p, struct source *s)
{
    struct mr_batch_info info;
    int rc = mr_journal_reader_next_batch(s->reader, &info);
    if (rc == MR_EAGAIN || rc == MR_EEOF) {
        return 0;
    }
    if (rc == MR_ERANGE && mr_journal_reader_seek(s->reader, MR_JOURNAL_EARLIEST) == 0) {
        int64_t now_at = mr_journal_reader_position(s->reader);
        MR_LOG_WARN(p->log_name,
                    "%s[%u]: %" PRId64 " records were deleted (retention or journal.max_bytes) "
                    "before this pipeline read them; continuing at offset %" PRId64,
                    s->topic_name, s->partition, now_at - s->position, now_at);
        s->position = now_at;
        return 1;
    }
    if (rc != 0) {
        MR_LOG_RL(&p->rl, MR_LOG_ERROR, p->log_name, "reading %s[%u]: %s", s->topic_name,
                  s->partition, mr_strerror(rc));
        return 0;
    }
    struct mr_batch_iter it;
    struct mr_batch_record br;
    mr_batch_iter_init(&it, &info);
    size_t n = 0;
    int64_t now = mr_clock_wall_ns();
    while (rc == 0 && mr_batch_iter_next(&it, &br, NULL) == 0) {
        if (br.offset < s->position) {
            continue; /* batch starts before the checkpointed position */
        }
        struct mr_record *rec = &p->recs[n];
        struct mr_err e;
        if (br.value_len <= 0 || !mr_batch_record_is_millrace(&br) ||
            mr_record_decode_memo(rec, p->env->names, &p->memo, br.value, (size_t)br.value_len,
                                  &e) != 0) {
            mr_counter_add(p->m_errors, 1);
            MR_LOG_RL(&p->rl, MR_LOG_WARN, p->log_name,
                      "%s[%u] offset %" PRId64 ": not a millrace record, skipped", s->topic_name,
                      s->partition, br.offset);
            continue;
        }
        mr_wm_observe(&p->wm, rec->asset, rec->time_ns, now);
        if (++n == CHUNK) {
            rc = push_chunk(p, n);
            n = 0;
        }
    }
    if (rc == 0 && n > 0) {
        rc = push_chunk(p, n);
    }
    if (rc != 0) {
        return rc;
    }
    s->position = info.base_offset + info.last_offset_delta + 1;
    p->dirty = true;
    mr_counter_add(p->m_bytes_in, info.size);
    return 1;
}

/* Count the bytes the writers handed to the journal since the last call. */
static void count_bytes_out(struct mr_pipeline *p)
{
    uint64_t total = 0;
    for (size_t k = 0; k < p->nwriters; k++) {
        total += p->writers[k]->w.bytes_appended;
    }
    if (total > p->bytes_out_seen) {
        mr_counter_add(p->m_bytes_out, total - p->bytes_out_seen);
    }
    p->bytes_out_seen = total;
}

/* ---- the thread ---- */

static void readers_close(struct mr_pipeline *p)
{
    for (size_t i = 0; i < p->nsources; i++) {
        mr_journal_reader_destroy(p->sources[i].reader);
        p->sources[i].reader = NULL;
    }
}

/* Everything a (re)start builds: operators, watermarks, checkpoint, readers. */
static int run_setup(struct mr_pipeline *p, struct mr_err *err)
{
    mr_wm_init(&p->wm, p->conf->out_of_orderness_ns, p->conf->idle_timeout_ns);
    mr_dedupe_reset(&p->dedupe);
    p->replaying = false;
    p->sink_error = 0;
    int rc = steps_init(p, err);
    if (rc == 0) {
        rc = restore(p, err);
    }
    for (size_t i = 0; rc == 0 && i < p->nsources; i++) {
        struct source *s = &p->sources[i];
        rc = mr_journal_reader_create(s->topic, s->partition, s->position, &s->reader);
        if (rc == MR_ERANGE) {
            /* Retention removed what the checkpoint points at: start at what is left. */
            MR_LOG_WARN(p->log_name,
                        "%s[%u]: offset %" PRId64 " is no longer kept; resuming "
                        "at the earliest record",
                        s->topic_name, s->partition, s->position);
            rc = mr_journal_reader_create(s->topic, s->partition, MR_JOURNAL_EARLIEST, &s->reader);
            if (rc == 0) {
                s->position = mr_journal_reader_position(s->reader);
            }
        }
        if (rc != 0) {
            MR_ERR_SET(err, rc, "cannot read %s[%u]: %s", s->topic_name, s->partition,
                       mr_strerror(rc));
        }
    }
    return rc;
}

static void run_teardown(struct mr_pipeline *p)
{
    readers_close(p);
    steps_fini(p);
    /* What is queued was written or failed; either way wait for the acks. */
    for (size_t k = 0; k < p->nwriters; k++) {
        mr_topic_writer_sync(&p->writers[k]->w);
        p->writers[k]->w.first_error = 0;
        for (uint32_t part = 0; part < p->writers[k]->w.nparts; part++) {
            mr_batch_builder_reset(&p->writers[k]->w.builders[part]);
        }
    }
    mr_wm_fini(&p->wm);
}

static int64_t source_lag(struct mr_pipeline *p)
{
    int64_t lag = 0;
    for (size_t i = 0; i < p->nsources; i++) {
        struct mr_journal_partition_stats st;
        if (mr_journal_partition_stats(p->sources[i].topic, p->sources[i].partition, &st) == 0 &&
            st.end > p->sources[i].position) {
            lag += st.end - p->sources[i].position;
        }
    }
    return lag;
}

static void periodic(struct mr_pipeline *p, int64_t now)
{
    if (now >= p->next_idle_check) {
        p->next_idle_check = now + IDLE_CHECK_NS;
        mr_wm_collect(&p->wm, now, true, advance_cb, p);
        mr_gauge_set(p->m_lag, (double)source_lag(p));
    }
    if (now >= p->next_checkpoint) {
        p->next_checkpoint = now + p->conf->checkpoint_interval_ns;
        if (p->dirty) { /* an idle pipeline does not rewrite the same checkpoint */
            checkpoint(p);
        }
    }
    if (now >= p->next_progress) {
        if (p->next_progress != 0) {
            MR_LOG_INFO(p->log_name, "%.0f records/s in, %" PRId64 " behind the journal",
                        (double)p->progress_in / ((double)PROGRESS_NS / 1e9), source_lag(p));
        }
        p->progress_in = 0;
        p->next_progress = now + PROGRESS_NS;
    }
}

/* One pass over the sources: up to a few batches each, round robin. Returns batches done. */
static int poll_sources(struct mr_pipeline *p)
{
    int done = 0;
    for (size_t i = 0; i < p->nsources && p->sink_error == 0; i++) {
        for (int k = 0; k < 8; k++) {
            int rc = process_batch(p, &p->sources[i]);
            if (rc <= 0) {
                break;
            }
            done++;
        }
    }
    for (size_t k = 0; k < p->nwriters && p->sink_error == 0; k++) {
        int rc = mr_topic_writer_flush(&p->writers[k]->w);
        if (rc != 0) {
            p->sink_error = rc;
        }
    }
    count_bytes_out(p);
    return done;
}

/* The replay after a restore is over once every source passed where the crashed run could have
 * read to; results it wrote and the replay did not produce again are forgotten then (expected
 * after several crashes in a row: the earlier runs got further than this one started). */
static void replay_check(struct mr_pipeline *p)
{
    if (!p->replaying) {
        return;
    }
    for (size_t i = 0; i < p->nsources; i++) {
        if (p->sources[i].position < p->sources[i].replay_until) {
            return;
        }
    }
    p->replaying = false;
    uint64_t skipped = p->dedupe.dropped;
    uint64_t left = mr_dedupe_reset(&p->dedupe);
    MR_LOG_INFO(p->log_name,
                "replay after restart complete: %" PRIu64 " results not written "
                "again, %" PRIu64 " older ones not met",
                skipped, left);
}

static bool caught_up(struct mr_pipeline *p)
{
    return source_lag(p) == 0;
}

static void *pipeline_main(void *arg)
{
    struct mr_pipeline *p = arg;
    int backoff = RETRY_MIN_MS;
    uint64_t seen = 0;
    while (!atomic_load(&p->stop)) {
        struct mr_err err;
        mr_err_clear(&err);
        int rc = run_setup(p, &err);
        if (rc != 0) {
            MR_LOG_ERROR(p->log_name, "%s; retrying in %d ms", err.msg, backoff);
            run_teardown(p);
            mr_counter_add(p->m_restarts, 1);
            for (int t = 0; t < backoff && !atomic_load(&p->stop); t += 50) {
                mr_clock_sleep_ns(50 * 1000000LL);
            }
            backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
            continue;
        }
        int64_t now = mr_clock_wall_ns();
        p->next_checkpoint = now + p->conf->checkpoint_interval_ns;
        while (p->sink_error == 0) {
            bool stopping = atomic_load(&p->stop);
            if (stopping && atomic_load(&p->drain) && atomic_load(&p->final) && caught_up(p)) {
                /* Bounded inputs are finished: nothing older can arrive, close everything. */
                mr_wm_finish(&p->wm, advance_cb, p);
                for (size_t k = 0; k < p->nwriters && p->sink_error == 0; k++) {
                    int frc = mr_topic_writer_flush(&p->writers[k]->w);
                    if (frc != 0) {
                        p->sink_error = frc;
                    }
                }
                count_bytes_out(p);
                break;
            }
            if (stopping && (!atomic_load(&p->drain) || caught_up(p) ||
                             mr_clock_mono_ns() > p->drain_deadline)) {
                break; /* what is left is replayed from the checkpoint at the next start */
            }
            int done = poll_sources(p);
            replay_check(p);
            periodic(p, mr_clock_wall_ns());
            if (done == 0 && !stopping) {
                mr_engine_env_wait(p->env, &seen, 20);
            }
        }
        if (p->sink_error == 0 && checkpoint(p) == 0) {
            run_teardown(p);
            break;
        }
        MR_LOG_ERROR(p->log_name,
                     "writing results failed (%s): restarting from the last "
                     "checkpoint in %d ms",
                     mr_strerror(p->sink_error), backoff);
        run_teardown(p);
        mr_counter_add(p->m_restarts, 1);
        for (int t = 0; t < backoff && !atomic_load(&p->stop); t += 50) {
            mr_clock_sleep_ns(50 * 1000000LL);
        }
        backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
    }
    return NULL;
}

/* ---- life cycle ---- */

static int register_metrics(struct mr_pipeline *p)
{
    char inst[256], labels[300];
    if (mr_metrics_label_escape(p->name, inst, sizeof(inst)) < 0) {
        return MR_ETOOBIG;
    }
    snprintf(labels, sizeof(labels), "pipeline=\"%s\"", inst);
    struct mr_metrics *m = p->env->metrics;
    int rc = mr_metrics_counter(m, "millrace_pipeline_records_in_total",
                                "Records a pipeline read from its topics.", labels, &p->m_in);
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_pipeline_records_out_total",
                                "Records a pipeline wrote to its topics.", labels, &p->m_out);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_pipeline_errors_total",
                                "Records or batches a pipeline could not process.", labels,
                                &p->m_errors);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_pipeline_checkpoints_total",
                                "Checkpoints a pipeline completed.", labels, &p->m_checkpoints);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_pipeline_restarts_total",
                                "Times a pipeline restarted from its checkpoint after an error.",
                                labels, &p->m_restarts);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_pipeline_replayed_skipped_total",
                                "Results recomputed after a crash and not written again.", labels,
                                &p->m_deduped);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_pipeline_bytes_in_total",
                                "Bytes of journal batches a pipeline read (what came in).", labels,
                                &p->m_bytes_in);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_pipeline_bytes_out_total",
                                "Bytes of journal batches a pipeline wrote (what goes on): with "
                                "bytes_in, the reduction an edge pipeline achieves.",
                                labels, &p->m_bytes_out);
    }
    if (rc == 0) {
        rc = mr_metrics_gauge(m, "millrace_pipeline_lag_records",
                              "Records in a pipeline's topics it has not processed yet.", labels,
                              &p->m_lag);
    }
    if (rc == 0) {
        rc = mr_metrics_gauge(m, "millrace_pipeline_watermark_seconds",
                              "A pipeline's overall event-time watermark (Unix seconds).", labels,
                              &p->m_watermark);
    }
    return rc;
}

static int add_sources(struct mr_pipeline *p, struct mr_err *err)
{
    for (size_t i = 0; i < p->conf->from.n; i++) {
        struct mr_journal_topic *t = NULL;
        int rc = mr_engine_topic(p->env, p->conf->from.items[i], &t, err);
        if (rc != 0) {
            return rc;
        }
        uint32_t np = mr_journal_topic_partitions(t);
        struct source *ns = mr_realloc(p->sources, (p->nsources + np) * sizeof(*ns));
        if (ns == NULL) {
            return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        }
        p->sources = ns;
        for (uint32_t part = 0; part < np; part++) {
            p->sources[p->nsources++] = (struct source){
                .topic = t, .topic_name = mr_journal_topic_name(t), .partition = part};
        }
    }
    return 0;
}

int mr_pipeline_create(struct mr_pipeline **out, struct mr_engine_env *env, const char *name,
                       const struct mr_pipeline_conf *conf, struct mr_err *err)
{
    struct mr_pipeline *p = mr_calloc(1, sizeof(*p));
    if (p == NULL || (p->name = mr_strdup(name)) == NULL) {
        mr_free(p);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    p->conf = conf;
    p->env = env;
    snprintf(p->log_name, sizeof(p->log_name), "pipelines.%s", name);
    atomic_init(&p->stop, false);
    atomic_init(&p->drain, false);
    atomic_init(&p->final, false);
    int rc = register_metrics(p);
    if (rc != 0) {
        MR_ERR_SET(err, rc, "pipeline %s: cannot register metrics", name);
    }
    if (rc == 0) {
        rc = mr_dedupe_init(&p->dedupe, DEDUPE_MAX);
    }
    p->recs = mr_calloc(CHUNK, sizeof(struct mr_record));
    if (rc == 0 && p->recs == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        rc = add_sources(p, err);
    }
    const char *topics[MAX_TOPICS];
    size_t nt = mr_pipeline_result_topics(env->cfg, name, conf, topics, MAX_TOPICS);
    for (size_t i = 0; rc == 0 && i < nt; i++) {
        int k = find_or_add_writer(p, topics[i], err);
        rc = k < 0 ? k : 0;
    }
    p->nresults = p->nwriters;
    p->nsteps = conf->steps.n;
    p->steps = mr_calloc(p->nsteps != 0 ? p->nsteps : 1, sizeof(struct step));
    if (rc == 0 && p->steps == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == 0 && i < p->nsteps; i++) {
        struct step *s = &p->steps[i];
        s->pc = &conf->steps.items[i];
        s->p = p;
        s->index = i;
        s->host = (struct mr_operator_host){.name = s->pc->path,
                                            .names = env->names,
                                            .metrics = env->metrics,
                                            .emit = step_emit,
                                            .side_open = step_side_open,
                                            .side_emit = step_side_emit,
                                            .arg = s};
    }
    if (rc == 0) {
        /* Try the operators once here, so a bad setting fails `run` at start with its
         * position instead of in a retry loop. */
        rc = steps_init(p, err);
        steps_fini(p);
    }
    if (rc != 0) {
        mr_pipeline_destroy(p);
        return rc;
    }
    *out = p;
    return 0;
}

int mr_pipeline_start(struct mr_pipeline *p, struct mr_err *err)
{
    if (p->started) {
        return 0;
    }
    int rc = pthread_create(&p->thread, NULL, pipeline_main, p);
    if (rc != 0) {
        return MR_ERR_SET(err, MR_ESYS, "pipeline %s: cannot start thread", p->name);
    }
    p->started = true;
    return 0;
}

void mr_pipeline_stop(struct mr_pipeline *p, bool drain, bool final, int timeout_ms)
{
    if (!p->started) {
        return;
    }
    p->drain_deadline = mr_clock_mono_ns() + (int64_t)timeout_ms * 1000000;
    atomic_store(&p->final, final);
    atomic_store(&p->drain, drain);
    atomic_store(&p->stop, true);
    mr_engine_env_wake(p->env);
    pthread_join(p->thread, NULL);
    p->started = false;
}

void mr_pipeline_destroy(struct mr_pipeline *p)
{
    if (p == NULL) {
        return;
    }
    mr_pipeline_stop(p, false, false, 0);
    steps_fini(p);
    for (size_t k = 0; k < p->nwriters; k++) {
        mr_topic_writer_fini(&p->writers[k]->w);
        mr_free(p->writers[k]->scan_from);
        mr_free(p->writers[k]);
    }
    mr_free(p->writers);
    mr_free(p->sources);
    mr_free(p->steps);
    mr_free(p->recs);
    mr_dedupe_fini(&p->dedupe);
    mr_name_hashes_fini(&p->hashes);
    mr_free(p->name);
    mr_free(p);
}
