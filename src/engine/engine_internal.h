/* The engine's parts and what they share. See docs/ARCHITECTURE.md ("Stream engine").
 *
 *   inputs (loop thread) --ingest--> journal topic per input
 *   pipeline thread: topics --> operators --> topics (+ checkpoints)
 *   output thread:   topics --cursor--> output plugin
 *
 * Every hand-over between threads goes through the journal, so each part can stop, crash or
 * fall behind without losing what the others produced.
 */
#ifndef MR_ENGINE_INTERNAL_H
#define MR_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "engine/dedupe.h"
#include "engine/topic_writer.h"
#include "engine/watermark.h"
#include "millrace/config.h"
#include "millrace/journal.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "millrace/plugin.h"

/* What every part borrows from the engine. */
struct mr_engine_env {
    struct mr_journal *journal;
    const char *journal_dir;
    struct mr_names *names;
    struct mr_metrics *metrics;
    const struct mr_config *cfg; /* the configuration the part was started with */
    /* An input reached its end (status 0) or failed: called on the loop thread. */
    void (*input_ended)(struct mr_engine_env *env, int status);
    /* New data in the journal: pipelines and outputs wait on this instead of polling. */
    pthread_mutex_t data_mu;
    pthread_cond_t data_cv;
    uint64_t data_version;
};

/* Wait until the journal committed something after *seen, or timeout_ms passed. */
void mr_engine_env_wait(struct mr_engine_env *env, uint64_t *seen, int timeout_ms);
void mr_engine_env_wake(struct mr_engine_env *env);

/* Topics a pipeline's results go to: the topics in `to`, or one named after the pipeline when
 * `to` lists only outputs. Returns how many were written to out (at most cap). */
size_t mr_pipeline_result_topics(const struct mr_config *cfg, const char *name,
                                 const struct mr_pipeline_conf *pc, const char **out, size_t cap);
/* Topic an input's records are kept in: the input's name. */
bool mr_config_is_input(const struct mr_config *cfg, const char *name);
bool mr_config_is_output(const struct mr_config *cfg, const char *name);
/* Create (or open) a topic with the partition count the configuration gives it. */
int mr_engine_topic(struct mr_engine_env *env, const char *name, struct mr_journal_topic **out,
                    struct mr_err *err);

/* ---- pipelines (pipeline.c) ---- */
struct mr_pipeline;
int mr_pipeline_create(struct mr_pipeline **out, struct mr_engine_env *env, const char *name,
                       const struct mr_pipeline_conf *conf, struct mr_err *err);
int mr_pipeline_start(struct mr_pipeline *p, struct mr_err *err);
/* drain: first process what is already in the source topics, for at most timeout_ms (the rest
 * is replayed from the checkpoint at the next start). final (with drain, once caught up): the
 * inputs are finished for good, so every source's watermark moves to the end of time and every
 * window closes. Then checkpoint and join. */
void mr_pipeline_stop(struct mr_pipeline *p, bool drain, bool final, int timeout_ms);
void mr_pipeline_destroy(struct mr_pipeline *p);
const char *mr_pipeline_name(const struct mr_pipeline *p);

/* ---- outputs (delivery.c) ---- */
struct mr_delivery;
struct mr_output_status;
int mr_delivery_create(struct mr_delivery **out, struct mr_engine_env *env,
                       const struct mr_plugin_conf *pc, const char *const *topics, size_t ntopics,
                       struct mr_err *err);
int mr_delivery_start(struct mr_delivery *d, struct mr_err *err);
/* drain: deliver what is in the topics now (up to timeout_ms) before stopping. */
void mr_delivery_stop(struct mr_delivery *d, bool drain, int timeout_ms);
void mr_delivery_destroy(struct mr_delivery *d);
/* What the output is doing now (any thread; name and type are left for the caller). */
void mr_delivery_status(struct mr_delivery *d, struct mr_output_status *st);

/* ---- inputs (ingest.c) ---- */
struct mr_ingest;
int mr_ingest_create(struct mr_ingest **out, struct mr_engine_env *env, uv_loop_t *loop,
                     const struct mr_plugin_conf *pc, struct mr_err *err);
int mr_ingest_start(struct mr_ingest *in, struct mr_err *err);
/* Stop the input; done(arg) runs on the loop when its handles are closed and everything it
 * emitted is durable in the journal. */
void mr_ingest_stop(struct mr_ingest *in, void (*done)(void *arg), void *arg);
void mr_ingest_destroy(struct mr_ingest *in);
/* The input ended on its own (end of data or an error). */
bool mr_ingest_ended(const struct mr_ingest *in);

#endif
