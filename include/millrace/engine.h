/* The engine: runs a configuration's inputs, pipelines and outputs around one journal.
 *
 *   inputs  (on the caller's libuv loop)   -> journal topic named after each input
 *   pipelines (one thread each)            topics -> operators -> topics, checkpointed
 *   outputs (one thread each)              topics -> cursor -> output plugin
 *
 * All calls on the loop thread. docs/ARCHITECTURE.md ("Stream engine") explains the design.
 */
#ifndef MILLRACE_ENGINE_H
#define MILLRACE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "millrace/config.h"
#include "millrace/error.h"
#include "millrace/metrics.h"
#include "millrace/names.h"

struct mr_engine;

/* Open the journal and build every part of cfg (takes ownership of cfg, also on failure).
 * Fails with err naming the part and its position in the file. */
int mr_engine_create(struct mr_engine **out, struct mr_config *cfg, uv_loop_t *loop,
                     struct mr_err *err);
/* Start outputs, then pipelines, then inputs (so nothing is produced before it can flow). */
int mr_engine_start(struct mr_engine *e, struct mr_err *err);
/* Orderly stop: inputs stop and everything they emitted becomes durable; pipelines process
 * what reached their topics and checkpoint; outputs deliver what is waiting (up to
 * drain_timeout_ms); then done(arg) runs on the loop. final: the inputs are finished for good
 * (bounded inputs such as a file reached their end): pipelines process everything, then move
 * every watermark to the end of time so every window closes, before they checkpoint. */
void mr_engine_stop(struct mr_engine *e, int drain_timeout_ms, bool final, void (*done)(void *arg),
                    void *arg);
/* cb(arg, status) runs on the loop once every input has ended on its own (end of data: status
 * 0; otherwise the first error). Not called for a configuration without inputs. */
void mr_engine_on_inputs_done(struct mr_engine *e, void (*cb)(void *arg, int status), void *arg);
/* Apply a new configuration (takes ownership of cfg on success): parts whose settings are
 * unchanged keep running; changed ones are stopped (pipelines checkpoint first) and started
 * again with the new settings; removed ones stop; new ones start. Journal settings apply at
 * the next start. done(arg, status) runs on the loop when the reload is complete. */
int mr_engine_reload(struct mr_engine *e, struct mr_config *cfg,
                     void (*done)(void *arg, int status), void *arg, struct mr_err *err);
/* Closes the journal. Call after stop completed (or instead of it after a failed start). */
void mr_engine_destroy(struct mr_engine *e);

/* What one output is doing, for `millrace outputs` and GET /api/v1/outputs. */
struct mr_output_status {
    const char *name;         /* "historian" (valid until the next reload) */
    const char *type;         /* the plugin: "postgresql" */
    const char *state;        /* "ok", "retrying", "circuit_open", "stopped", "starting" */
    const char *dead_letter;  /* topic of the records the destination refused */
    uint64_t delivered;       /* records the destination confirmed */
    uint64_t retries;         /* batches the output asked to retry */
    uint64_t rejected;        /* records refused for good (kept in dead_letter) */
    uint64_t skipped;         /* not millrace records, passed over */
    uint64_t deleted_unread;  /* deleted by retention before delivery */
    int64_t lag_records;      /* records waiting in the journal */
    double backlog_age_s;     /* record-time age of the oldest waiting record; 0 when none */
    double pending_bytes;     /* journal bytes waiting (estimated) */
    int64_t last_delivery_ms; /* wall clock of the last confirmed batch; -1 never */
    int64_t last_error_ms;    /* wall clock of last_error; -1 none since start */
    char last_error[256];     /* why the last attempt failed ("" none) */
};

/* The status of every output of the running configuration, in configuration order: fills up to
 * cap entries of out, returns how many outputs there are. */
size_t mr_engine_outputs(struct mr_engine *e, struct mr_output_status *out, size_t cap);
/* Journal topics that feed output `name` of cfg (the result topics of the pipelines whose `to`
 * names it): fills up to cap, returns how many it wrote. */
size_t mr_engine_output_topics(const struct mr_config *cfg, const char *name, const char **out,
                               size_t cap);

struct mr_metrics *mr_engine_metrics(struct mr_engine *e);
struct mr_names *mr_engine_names(struct mr_engine *e);
const struct mr_config *mr_engine_config(struct mr_engine *e);

#endif
