/* The engine: builds, starts, stops and reloads the parts of a configuration (engine.h). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "millrace/alloc.h"
#include "millrace/engine.h"
#include "millrace/log.h"

#define MAX_TOPICS 32
#define LOG_NAME   "engine"

struct input_part {
    const struct mr_plugin_conf *pc;
    struct mr_ingest *in;
};

struct pipeline_part {
    const char *name;
    const struct mr_pipeline_conf *conf;
    struct mr_pipeline *p;
};

struct output_part {
    const struct mr_plugin_conf *pc;
    const char *topics[MAX_TOPICS];
    size_t ntopics;
    struct mr_delivery *d;
};

struct parts {
    struct input_part *inputs;
    size_t ninputs;
    struct pipeline_part *pipes;
    size_t npipes;
    struct output_part *outputs;
    size_t noutputs;
};

struct mr_engine {
    uv_loop_t *loop;
    struct mr_engine_env env;
    struct mr_config **cfgs; /* every configuration applied; parts point into them */
    size_t ncfgs;
    struct parts cur;
    struct parts old; /* during a reload: parts being replaced */
    /* stop / reload in progress */
    size_t inputs_pending;
    int drain_ms;
    void (*stop_done)(void *arg);
    void *stop_arg;
    void (*reload_done)(void *arg, int status);
    void *reload_arg;
    bool final;
    /* every input ended on its own */
    void (*inputs_done)(void *arg, int status);
    void *inputs_done_arg;
    size_t inputs_ended;
    int inputs_status;
    /* the journal's disk use, set at every scrape (collect_journal) */
    struct mr_gauge *g_disk_bytes, *g_disk_max, *g_disk_full, *g_disk_dropped;
    bool collector;
};

static void collect_journal(void *arg)
{
    struct mr_engine *e = arg;
    struct mr_journal_disk d;
    mr_journal_disk_stats(e->env.journal, &d);
    mr_gauge_set(e->g_disk_bytes, (double)d.bytes);
    mr_gauge_set(e->g_disk_full, d.full ? 1.0 : 0.0);
    mr_gauge_set(e->g_disk_dropped, (double)d.dropped_records);
}

static int journal_metrics(struct mr_engine *e)
{
    struct mr_metrics *m = e->env.metrics;
    int rc = mr_metrics_gauge(m, "millrace_journal_disk_bytes",
                              "Bytes the journal stores (every topic; updated when "
                              "journal.max_bytes is set).",
                              "", &e->g_disk_bytes);
    if (rc == 0) {
        rc = mr_metrics_gauge(m, "millrace_journal_max_bytes", "journal.max_bytes (0: unlimited).",
                              "", &e->g_disk_max);
    }
    if (rc == 0) {
        rc = mr_metrics_gauge(m, "millrace_journal_full",
                              "1 while the journal is at max_bytes and inputs are paused.", "",
                              &e->g_disk_full);
    }
    if (rc == 0) {
        rc = mr_metrics_gauge(m, "millrace_journal_dropped_records",
                              "Records deleted unread to stay under max_bytes (overflow: "
                              "drop_oldest or downsample), since start.",
                              "", &e->g_disk_dropped);
    }
    if (rc == 0) {
        mr_gauge_set(e->g_disk_max, (double)e->env.cfg->journal.max_bytes);
        rc = mr_metrics_collector_add(m, collect_journal, e);
        e->collector = rc == 0;
    }
    return rc;
}

/* ---- shared helpers (engine_internal.h) ---- */

void mr_engine_env_wait(struct mr_engine_env *env, uint64_t *seen, int timeout_ms)
{
    pthread_mutex_lock(&env->data_mu);
    if (env->data_version == *seen) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)timeout_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&env->data_cv, &env->data_mu, &ts);
    }
    *seen = env->data_version;
    pthread_mutex_unlock(&env->data_mu);
}

void mr_engine_env_wake(struct mr_engine_env *env)
{
    pthread_mutex_lock(&env->data_mu);
    env->data_version++;
    pthread_cond_broadcast(&env->data_cv);
    pthread_mutex_unlock(&env->data_mu);
}

static void input_ended(struct mr_engine_env *env, int status);

static void on_commit(void *arg, struct mr_journal_topic *topic, uint32_t partition,
                      int64_t end_offset)
{
    (void)topic;
    (void)partition;
    (void)end_offset;
    mr_engine_env_wake(arg);
}

static const struct mr_plugin_conf *plugin_named(const struct mr_plugin_confs *c, const char *n)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->items[i].name, n) == 0) {
            return &c->items[i];
        }
    }
    return NULL;
}

bool mr_config_is_input(const struct mr_config *cfg, const char *name)
{
    return plugin_named(&cfg->inputs, name) != NULL;
}

bool mr_config_is_output(const struct mr_config *cfg, const char *name)
{
    return plugin_named(&cfg->outputs, name) != NULL;
}

size_t mr_pipeline_result_topics(const struct mr_config *cfg, const char *name,
                                 const struct mr_pipeline_conf *pc, const char **out, size_t cap)
{
    size_t n = 0;
    bool any_output = false;
    for (size_t i = 0; i < pc->to.n; i++) {
        if (mr_config_is_output(cfg, pc->to.items[i])) {
            any_output = true;
        } else if (n < cap) {
            out[n++] = pc->to.items[i];
        }
    }
    if (n == 0 && any_output && cap > 0) {
        out[n++] = name;
    }
    return n;
}

int mr_engine_topic(struct mr_engine_env *env, const char *name, struct mr_journal_topic **out,
                    struct mr_err *err)
{
    struct mr_journal_topic *t = mr_journal_topic_find(env->journal, name);
    if (t == NULL) {
        struct mr_journal_topic_options o;
        uint32_t parts = mr_journal_topic_from_conf(&env->cfg->journal, name, &o);
        int rc = mr_journal_topic_create(env->journal, name, parts != 0 ? parts : 1, &o, &t, err);
        if (rc != 0) {
            return rc;
        }
    }
    mr_journal_topic_set_low_priority(
        t, mr_journal_topic_low_priority_from_conf(&env->cfg->journal, name));
    *out = t;
    return 0;
}

/* ---- building the parts of a configuration ---- */

size_t mr_engine_output_topics(const struct mr_config *cfg, const char *name, const char **out,
                               size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->pipelines.n; i++) {
        const struct mr_pipeline_conf *pc = cfg->pipelines.items[i].conf;
        bool feeds = false;
        for (size_t k = 0; k < pc->to.n; k++) {
            feeds |= strcmp(pc->to.items[k], name) == 0;
        }
        const char *rt[1];
        if (!feeds ||
            mr_pipeline_result_topics(cfg, cfg->pipelines.items[i].name, pc, rt, 1) == 0) {
            continue;
        }
        bool dup = false;
        for (size_t k = 0; k < n; k++) {
            dup |= strcmp(out[k], rt[0]) == 0;
        }
        if (!dup && n < cap) {
            out[n++] = rt[0];
        }
    }
    return n;
}

static void output_topics(const struct mr_config *cfg, const char *output, struct output_part *op)
{
    op->ntopics = mr_engine_output_topics(cfg, output, op->topics, MAX_TOPICS);
}

static int parts_alloc(struct parts *ps, const struct mr_config *cfg)
{
    memset(ps, 0, sizeof(*ps));
    ps->inputs = mr_calloc(cfg->inputs.n + 1, sizeof(*ps->inputs));
    ps->pipes = mr_calloc(cfg->pipelines.n + 1, sizeof(*ps->pipes));
    ps->outputs = mr_calloc(cfg->outputs.n + 1, sizeof(*ps->outputs));
    if (ps->inputs == NULL || ps->pipes == NULL || ps->outputs == NULL) {
        return MR_ENOMEM;
    }
    ps->ninputs = cfg->inputs.n;
    ps->npipes = cfg->pipelines.n;
    ps->noutputs = cfg->outputs.n;
    for (size_t i = 0; i < cfg->inputs.n; i++) {
        ps->inputs[i].pc = &cfg->inputs.items[i];
    }
    for (size_t i = 0; i < cfg->pipelines.n; i++) {
        ps->pipes[i].name = cfg->pipelines.items[i].name;
        ps->pipes[i].conf = cfg->pipelines.items[i].conf;
    }
    for (size_t i = 0; i < cfg->outputs.n; i++) {
        ps->outputs[i].pc = &cfg->outputs.items[i];
        output_topics(cfg, cfg->outputs.items[i].name, &ps->outputs[i]);
    }
    return 0;
}

static void parts_free(struct parts *ps)
{
    for (size_t i = 0; i < ps->ninputs; i++) {
        mr_ingest_destroy(ps->inputs[i].in);
    }
    for (size_t i = 0; i < ps->npipes; i++) {
        mr_pipeline_destroy(ps->pipes[i].p);
    }
    for (size_t i = 0; i < ps->noutputs; i++) {
        mr_delivery_destroy(ps->outputs[i].d);
    }
    mr_free(ps->inputs);
    mr_free(ps->pipes);
    mr_free(ps->outputs);
    memset(ps, 0, sizeof(*ps));
}

/* Create whatever is not created yet (a reload carries unchanged parts over). */
static int parts_create(struct mr_engine *e, struct parts *ps, struct mr_err *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ps->noutputs; i++) {
        struct output_part *op = &ps->outputs[i];
        if (op->d == NULL) {
            if (op->ntopics == 0) {
                MR_LOG_WARN(LOG_NAME, "%s: no pipeline sends anything to this output",
                            op->pc->path);
            }
            rc = mr_delivery_create(&op->d, &e->env, op->pc, op->topics, op->ntopics, err);
        }
    }
    for (size_t i = 0; rc == 0 && i < ps->npipes; i++) {
        if (ps->pipes[i].p == NULL) {
            rc = mr_pipeline_create(&ps->pipes[i].p, &e->env, ps->pipes[i].name, ps->pipes[i].conf,
                                    err);
        }
    }
    for (size_t i = 0; rc == 0 && i < ps->ninputs; i++) {
        if (ps->inputs[i].in == NULL) {
            rc = mr_ingest_create(&ps->inputs[i].in, &e->env, e->loop, ps->inputs[i].pc, err);
        }
    }
    return rc;
}

static int parts_start(struct parts *ps, struct mr_err *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ps->noutputs; i++) {
        rc = mr_delivery_start(ps->outputs[i].d, err);
    }
    for (size_t i = 0; rc == 0 && i < ps->npipes; i++) {
        rc = mr_pipeline_start(ps->pipes[i].p, err);
    }
    for (size_t i = 0; rc == 0 && i < ps->ninputs; i++) {
        rc = mr_ingest_start(ps->inputs[i].in, err);
    }
    return rc;
}

/* ---- life cycle ---- */

int mr_engine_create(struct mr_engine **out, struct mr_config *cfg, uv_loop_t *loop,
                     struct mr_err *err)
{
    struct mr_engine *e = mr_calloc(1, sizeof(*e));
    struct mr_config **cfgs = mr_calloc(1, sizeof(*cfgs));
    if (e == NULL || cfgs == NULL) {
        mr_free(e);
        mr_free(cfgs);
        mr_config_destroy(cfg);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    e->loop = loop;
    e->cfgs = cfgs;
    e->cfgs[e->ncfgs++] = cfg;
    pthread_mutex_init(&e->env.data_mu, NULL);
    pthread_cond_init(&e->env.data_cv, NULL);
    e->env.cfg = cfg;
    e->env.journal_dir = cfg->journal.dir;
    e->env.input_ended = input_ended;
    int rc = mr_names_create(&e->env.names, 1u << 22, 256u << 20);
    if (rc == 0) {
        rc = mr_metrics_create(&e->env.metrics);
    }
    if (rc != 0) {
        MR_ERR_SET(err, rc, "out of memory");
    }
    if (rc == 0) {
        struct mr_journal_options o;
        mr_journal_options_from_conf(&o, &cfg->journal);
        o.on_commit = on_commit;
        o.on_commit_arg = &e->env;
        struct mr_journal_recovery rep;
        rc = mr_journal_open(&o, &e->env.journal, &rep, err);
        if (rc == 0 && rep.truncations > 0) {
            MR_LOG_WARN(LOG_NAME,
                        "journal recovery dropped %llu bytes of torn writes (%u "
                        "truncations): those records were never acknowledged",
                        (unsigned long long)rep.bytes_dropped, rep.truncations);
        }
    }
    if (rc == 0) {
        rc = journal_metrics(e);
    }
    if (rc == 0) {
        rc = parts_alloc(&e->cur, cfg);
        if (rc != 0) {
            MR_ERR_SET(err, rc, "out of memory");
        }
    }
    if (rc == 0) {
        rc = parts_create(e, &e->cur, err);
    }
    if (rc != 0) {
        mr_engine_destroy(e);
        return rc;
    }
    *out = e;
    return 0;
}

int mr_engine_start(struct mr_engine *e, struct mr_err *err)
{
    int rc = parts_start(&e->cur, err);
    if (rc == 0) {
        MR_LOG_INFO(LOG_NAME, "running: %zu inputs, %zu pipelines, %zu outputs; journal in %s",
                    e->cur.ninputs, e->cur.npipes, e->cur.noutputs, e->env.journal_dir);
    }
    return rc;
}

/* Pipelines in an order where a pipeline stops after those that write its topics, so a drain
 * sees everything upstream produced. */
static void pipelines_stop_ordered(struct parts *ps, bool drain, bool final, int timeout_ms)
{
    bool *stopped = mr_calloc(ps->npipes + 1, sizeof(bool));
    for (size_t round = 0; round < ps->npipes; round++) {
        for (size_t i = 0; i < ps->npipes; i++) {
            if (ps->pipes[i].p == NULL || (stopped != NULL && stopped[i])) {
                continue;
            }
            bool upstream_running = false;
            for (size_t k = 0; stopped != NULL && k < ps->npipes && round + 1 < ps->npipes; k++) {
                if (k == i || stopped[k] || ps->pipes[k].p == NULL) {
                    continue;
                }
                const struct mr_pipeline_conf *up = ps->pipes[k].conf;
                for (size_t t = 0; t < up->to.n; t++) {
                    for (size_t f = 0; f < ps->pipes[i].conf->from.n; f++) {
                        upstream_running |=
                            strcmp(up->to.items[t], ps->pipes[i].conf->from.items[f]) == 0;
                    }
                }
            }
            if (!upstream_running) {
                mr_pipeline_stop(ps->pipes[i].p, drain, final, timeout_ms);
                if (stopped != NULL) {
                    stopped[i] = true;
                }
            }
        }
    }
    for (size_t i = 0; i < ps->npipes; i++) {
        if (ps->pipes[i].p != NULL) {
            mr_pipeline_stop(ps->pipes[i].p, drain, final, timeout_ms);
        }
    }
    mr_free(stopped);
}

static void after_inputs_stopped(struct mr_engine *e)
{
    pipelines_stop_ordered(&e->cur, true, e->final, e->drain_ms);
    for (size_t i = 0; i < e->cur.noutputs; i++) {
        if (e->cur.outputs[i].d != NULL) {
            mr_delivery_stop(e->cur.outputs[i].d, true, e->drain_ms);
        }
    }
    MR_LOG_INFO(LOG_NAME, "stopped: inputs confirmed, pipelines checkpointed, outputs drained");
    if (e->stop_done != NULL) {
        e->stop_done(e->stop_arg);
    }
}

static void input_stopped(void *arg)
{
    struct mr_engine *e = arg;
    if (--e->inputs_pending == 0) {
        after_inputs_stopped(e);
    }
}

void mr_engine_on_inputs_done(struct mr_engine *e, void (*cb)(void *arg, int status), void *arg)
{
    e->inputs_done = cb;
    e->inputs_done_arg = arg;
}

/* The parts only know the env they were given; the engine around it is found from its offset. */
static void input_ended(struct mr_engine_env *env, int status)
{
    struct mr_engine *e = (struct mr_engine *)((char *)env - offsetof(struct mr_engine, env));
    if (status != 0 && e->inputs_status == 0) {
        e->inputs_status = status;
    }
    if (++e->inputs_ended == e->cur.ninputs && e->inputs_done != NULL) {
        e->inputs_done(e->inputs_done_arg, e->inputs_status);
    }
}

void mr_engine_stop(struct mr_engine *e, int drain_timeout_ms, bool final, void (*done)(void *arg),
                    void *arg)
{
    e->drain_ms = drain_timeout_ms;
    e->final = final;
    e->stop_done = done;
    e->stop_arg = arg;
    e->inputs_pending = 1; /* held until every input is asked, so none can finish the stop */
    for (size_t i = 0; i < e->cur.ninputs; i++) {
        if (e->cur.inputs[i].in != NULL) {
            e->inputs_pending++;
            mr_ingest_stop(e->cur.inputs[i].in, input_stopped, e);
        }
    }
    input_stopped(e);
}

/* ---- reload ---- */

static bool same_topics(const struct output_part *a, const struct output_part *b)
{
    if (a->ntopics != b->ntopics) {
        return false;
    }
    for (size_t i = 0; i < a->ntopics; i++) {
        if (strcmp(a->topics[i], b->topics[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* Move unchanged parts from e->cur into next; what stays in e->cur is to be replaced. */
static void carry_over(struct mr_engine *e, struct parts *next, size_t *kept, size_t *changed)
{
    struct parts *cur = &e->cur;
    for (size_t i = 0; i < next->noutputs; i++) {
        for (size_t k = 0; k < cur->noutputs; k++) {
            if (cur->outputs[k].d != NULL &&
                mr_plugin_conf_equal(cur->outputs[k].pc, next->outputs[i].pc) &&
                same_topics(&cur->outputs[k], &next->outputs[i])) {
                next->outputs[i].d = cur->outputs[k].d;
                cur->outputs[k].d = NULL;
                (*kept)++;
            }
        }
    }
    for (size_t i = 0; i < next->npipes; i++) {
        for (size_t k = 0; k < cur->npipes; k++) {
            if (cur->pipes[k].p != NULL && strcmp(cur->pipes[k].name, next->pipes[i].name) == 0 &&
                mr_section_equal(&mr_pipeline_section, cur->pipes[k].conf, next->pipes[i].conf)) {
                next->pipes[i].p = cur->pipes[k].p;
                cur->pipes[k].p = NULL;
                (*kept)++;
            }
        }
    }
    for (size_t i = 0; i < next->ninputs; i++) {
        for (size_t k = 0; k < cur->ninputs; k++) {
            if (cur->inputs[k].in != NULL &&
                mr_plugin_conf_equal(cur->inputs[k].pc, next->inputs[i].pc)) {
                next->inputs[i].in = cur->inputs[k].in;
                cur->inputs[k].in = NULL;
                (*kept)++;
            }
        }
    }
    *changed = 0;
    for (size_t k = 0; k < cur->noutputs; k++) {
        *changed += cur->outputs[k].d != NULL;
    }
    for (size_t k = 0; k < cur->npipes; k++) {
        *changed += cur->pipes[k].p != NULL;
    }
    for (size_t k = 0; k < cur->ninputs; k++) {
        *changed += cur->inputs[k].in != NULL;
    }
}

static void reload_finish(struct mr_engine *e)
{
    /* Replaced inputs are stopped (their records durable); replaced pipelines checkpoint as
     * they stop, so their successors resume exactly there. */
    pipelines_stop_ordered(&e->old, false, false, 0);
    for (size_t i = 0; i < e->old.noutputs; i++) {
        if (e->old.outputs[i].d != NULL) {
            mr_delivery_stop(e->old.outputs[i].d, false, 0);
        }
    }
    parts_free(&e->old);
    struct mr_err err;
    mr_err_clear(&err);
    int rc = parts_create(e, &e->cur, &err);
    /* Start only what is new; carried-over parts are running. */
    for (size_t i = 0; rc == 0 && i < e->cur.noutputs; i++) {
        struct mr_delivery *d = e->cur.outputs[i].d;
        rc = mr_delivery_start(d, &err);
    }
    for (size_t i = 0; rc == 0 && i < e->cur.npipes; i++) {
        rc = mr_pipeline_start(e->cur.pipes[i].p, &err);
    }
    for (size_t i = 0; rc == 0 && i < e->cur.ninputs; i++) {
        rc = mr_ingest_start(e->cur.inputs[i].in, &err);
    }
    e->inputs_ended = 0;
    for (size_t i = 0; i < e->cur.ninputs; i++) {
        e->inputs_ended += e->cur.inputs[i].in != NULL && mr_ingest_ended(e->cur.inputs[i].in);
    }
    if (rc != 0) {
        MR_LOG_ERROR(LOG_NAME, "reload: %s", err.msg);
    } else {
        MR_LOG_INFO(LOG_NAME, "configuration reloaded");
    }
    if (e->reload_done != NULL) {
        e->reload_done(e->reload_arg, rc);
    }
}

static void reload_input_stopped(void *arg)
{
    struct mr_engine *e = arg;
    if (--e->inputs_pending == 0) {
        reload_finish(e);
    }
}

int mr_engine_reload(struct mr_engine *e, struct mr_config *cfg,
                     void (*done)(void *arg, int status), void *arg, struct mr_err *err)
{
    struct mr_config **nc = mr_realloc(e->cfgs, (e->ncfgs + 1) * sizeof(*nc));
    struct parts next;
    if (nc == NULL || parts_alloc(&next, cfg) != 0) {
        if (nc != NULL) {
            e->cfgs = nc;
        }
        parts_free(&next);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    e->cfgs = nc;
    e->cfgs[e->ncfgs++] = cfg;
    if (!mr_section_equal(&mr_journal_section, &e->env.cfg->journal, &cfg->journal)) {
        MR_LOG_WARN(LOG_NAME, "journal settings changed: they take effect at the next start");
    }
    size_t kept = 0, changed = 0;
    carry_over(e, &next, &kept, &changed);
    MR_LOG_INFO(LOG_NAME, "reloading: %zu parts unchanged, %zu replaced or removed", kept, changed);
    e->old = e->cur;
    e->cur = next;
    e->env.cfg = cfg;
    e->reload_done = done;
    e->reload_arg = arg;
    /* Replaced parts stop in order: inputs first (asynchronously, on the loop). */
    e->inputs_pending = 1;
    for (size_t i = 0; i < e->old.ninputs; i++) {
        if (e->old.inputs[i].in != NULL) {
            e->inputs_pending++;
            mr_ingest_stop(e->old.inputs[i].in, reload_input_stopped, e);
        }
    }
    reload_input_stopped(e);
    return 0;
}

void mr_engine_destroy(struct mr_engine *e)
{
    if (e == NULL) {
        return;
    }
    parts_free(&e->old);
    parts_free(&e->cur);
    if (e->collector) {
        mr_metrics_collector_remove(e->env.metrics, collect_journal, e);
    }
    if (e->env.journal != NULL) {
        int rc = mr_journal_close(e->env.journal);
        if (rc != 0) {
            MR_LOG_ERROR(LOG_NAME, "closing the journal: %s", mr_strerror(rc));
        }
    }
    mr_metrics_destroy(e->env.metrics);
    mr_names_destroy(e->env.names);
    for (size_t i = 0; i < e->ncfgs; i++) {
        mr_config_destroy(e->cfgs[i]);
    }
    mr_free(e->cfgs);
    pthread_mutex_destroy(&e->env.data_mu);
    pthread_cond_destroy(&e->env.data_cv);
    mr_free(e);
}

size_t mr_engine_outputs(struct mr_engine *e, struct mr_output_status *out, size_t cap)
{
    for (size_t i = 0; i < e->cur.noutputs && i < cap; i++) {
        const struct output_part *op = &e->cur.outputs[i];
        if (op->d != NULL) {
            mr_delivery_status(op->d, &out[i]);
        } else { /* a reload is creating it */
            out[i] = (struct mr_output_status){
                .state = "starting", .last_delivery_ms = -1, .last_error_ms = -1};
        }
        out[i].name = op->pc->name;
        out[i].type = op->pc->plugin->name;
    }
    return e->cur.noutputs;
}

struct mr_metrics *mr_engine_metrics(struct mr_engine *e)
{
    return e->env.metrics;
}

struct mr_names *mr_engine_names(struct mr_engine *e)
{
    return e->env.names;
}

const struct mr_config *mr_engine_config(struct mr_engine *e)
{
    return e->env.cfg;
}
