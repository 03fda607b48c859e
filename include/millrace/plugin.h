/* Plugins: inputs, operators and outputs.
 *
 * A plugin is a `static const struct mr_plugin` with designated initializers: its name (the
 * `type:` users write), help, configuration table (millrace/config.h), the size of its
 * per-instance context and a small vtable. src/plugins.c is the one registry listing them all.
 *
 * Life of an input instance (the host, i.e. the engine or a test, drives it; all calls on the
 * loop thread; operators and outputs: see their ops below):
 *   ctx = zeroed allocation of plugin->ctx_size bytes (owned by the host)
 *   init(ctx, conf, host, err)      conf: the instance's config struct (borrowed from the
 *                                   struct mr_config, which must outlive the instance)
 *   start(ctx, err)                 inputs only: begin producing
 *   ... emit / write / process ...
 *   stop(ctx)                       inputs: stop producing and close every handle; when the
 *                                   last one is closed, the plugin calls host->stopped(host)
 *   fini(ctx)                       release what init acquired; then the host frees ctx
 * init that fails leaves nothing to release (fini is not called). After start, even a start
 * that failed, the host calls stop and waits for host->stopped before fini (stop without start
 * is allowed too). A process hosting outputs that write to pipes ignores SIGPIPE.
 */
#ifndef MILLRACE_PLUGIN_H
#define MILLRACE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "millrace/config.h"
#include "millrace/error.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "millrace/record.h"

/* Answers of an output's write and flush. */
#define MR_SINK_OK    0
#define MR_SINK_RETRY 1 /* transient (peer away, buffer full): the host retries the same batch */
#define MR_SINK_FATAL 2 /* will not succeed (bad config, auth refused): the host gives up */

/* Where relayed records come from: one partition of a topic in another millrace (`node` names
 * that millrace), and each record's offset there (increasing). */
struct mr_record_origin {
    const char *node;
    const char *topic;
    uint32_t partition;
    const int64_t *offsets; /* offsets[i] belongs to recs[i] */
};

/* Where an output's batch sits in the journal (for outputs that relay it: `forward`). */
struct mr_output_position {
    const char *topic;
    uint32_t partition;
    const int64_t *offsets; /* offsets[i] belongs to recs[i]; increasing */
};

/* What an input sees of its host. The host owns it; it outlives the instance. */
struct mr_input_host {
    const char *name;       /* "inputs.press_temp": log component and metrics instance */
    struct mr_names *names; /* intern asset, signal and tag names here */
    struct mr_metrics *metrics;
    uv_loop_t *loop;
    /* Hand over a batch (borrowed for the call). Returns 0, MR_EAGAIN for back-pressure (keep
     * the batch, pause, offer it again later) or another negative MR_E* code (stop producing
     * and report it through `ended`). */
    int (*emit)(struct mr_input_host *host, const struct mr_record *recs, size_t n);
    /* The source ended on its own: status 0 at end of data, or a negative MR_E* code. */
    void (*ended)(struct mr_input_host *host, int status);
    /* stop() completed: every handle is closed, fini may be called. */
    void (*stopped)(struct mr_input_host *host);
    /* Optional (NULL: the host does not tell). How many of this input's emit calls that
     * returned 0 are committed to the journal (under its fsync policy): k means calls 1..k, in
     * call order. Never blocks. Inputs that acknowledge their source (MQTT, CDC, HTTP) confirm
     * only what this covers, so a crash loses nothing the source was told is safe. */
    uint64_t (*durable)(struct mr_input_host *host);
    /* Optional (NULL: not offered). emit for inputs that relay another millrace's journal (the
     * `receive` input of store-and-forward): records whose origin (node, topic, partition,
     * offset) this host already kept are dropped, so a batch sent again after a crash or a lost
     * answer is kept exactly once; the rest are kept as emit keeps them, each marked with its
     * origin (which is how the host knows after a restart). *dropped (may be NULL) receives the
     * number of records dropped as already kept. Same return codes as emit; a call that
     * returned 0 counts as an emit call for `durable`. */
    int (*emit_relayed)(struct mr_input_host *host, const struct mr_record *recs, size_t n,
                        const struct mr_record_origin *origin, size_t *dropped);
    void *arg; /* for the host */
};

/* What an output sees of its host. */
struct mr_output_host {
    const char *name; /* "outputs.console" */
    struct mr_names *names;
    struct mr_metrics *metrics;
    /* The destination refused recs[index] of the batch being written for good (bad data, not an
     * outage: a 400 for one point, a constraint violation for one row). Call it during
     * write/write_at, then answer for the rest of the batch: the host puts the record on the
     * output's dead-letter topic with the reason, counts it rejected and never offers it again.
     * reason is copied. */
    void (*reject)(struct mr_output_host *host, size_t index, const char *reason);
    void *arg;
};

/* What an operator sees of its host (the pipeline it is a step of). Operators run on their
 * pipeline's thread: every call of one instance comes from that one thread, so an operator
 * needs no locks; it must not block. */
struct mr_operator_host {
    const char *name; /* "pipelines.clean.steps[0]" */
    struct mr_names *names;
    struct mr_metrics *metrics;
    /* Pass records on to the next step (or the pipeline's targets after the last step). The
     * records and what they borrow need only live for the call. Returns 0 or a negative MR_E*
     * code (propagate it). */
    int (*emit)(struct mr_operator_host *host, const struct mr_record *recs, size_t n);
    /* Side outputs: records that leave the chain for a named journal topic (route, late
     * records). Open each once, in init; returns a port (> 0) or a negative MR_E* code with err
     * filled. side_emit has emit's contract. */
    int (*side_open)(struct mr_operator_host *host, const char *topic, struct mr_err *err);
    int (*side_emit)(struct mr_operator_host *host, int port, const struct mr_record *recs,
                     size_t n);
    void *arg;
};

struct mr_input_ops {
    int (*init)(void *ctx, const void *conf, struct mr_input_host *host, struct mr_err *err);
    int (*start)(void *ctx, struct mr_err *err);
    void (*stop)(void *ctx);
    void (*fini)(void *ctx);
};

struct mr_state_writer;
struct mr_state_reader;

/* Event time (docs/ARCHITECTURE.md, "Event time"): the pipeline keeps one watermark per source,
 * and a source is an asset (records of one asset arrive in order from one place; a site that
 * replays a backlog holds back only its own assets). A watermark W for asset A promises that
 * records of A with time_ns <= W have been seen, except late ones. */
struct mr_operator_ops {
    int (*init)(void *ctx, const void *conf, struct mr_operator_host *host, struct mr_err *err);
    /* Consume a batch (borrowed for the call); returns 0 or a negative MR_E* code. */
    int (*process)(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err);
    /* Optional. Asset's watermark advanced to watermark_ns (monotonic per asset). Called after
     * the batch that moved it was processed, and when an idle source is advanced for lack of
     * data. Operators fire windows and timers here, emitting through the host. */
    int (*advance)(void *ctx, mr_name_id asset, int64_t watermark_ns, struct mr_err *err);
    /* Optional, for operators with state. snapshot writes everything needed to continue
     * (millrace/state.h; names by string, never by id); restore is called after init on a
     * fresh instance with what snapshot wrote, before any record. */
    int (*snapshot)(void *ctx, struct mr_state_writer *w, struct mr_err *err);
    int (*restore)(void *ctx, struct mr_state_reader *r, struct mr_err *err);
    void (*fini)(void *ctx);
};

/* An output runs on its own delivery thread, which drains the journal topic feeding it through
 * a cursor: write may block (a slow or absent peer holds back only this output; the journal
 * buffers). Every call of one instance comes from that one thread. */
struct mr_output_ops {
    int (*init)(void *ctx, const void *conf, struct mr_output_host *host, struct mr_err *err);
    /* Deliver a batch (borrowed for the call). Returns MR_SINK_OK (the destination confirmed
     * the batch, or it is buffered and flush will confirm it), MR_SINK_RETRY (transient: the
     * same batch comes again later) or MR_SINK_FATAL (retrying cannot help: err says why, this
     * output stops, the records stay in the journal). Delivery is at least once: after RETRY
     * some records of the batch may already have been delivered. Records the destination
     * refuses for good go to host->reject. */
    int (*write)(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err);
    /* Optional, for outputs that relay the journal (`forward`): when set, the host calls it
     * instead of write, and every batch comes from one partition of one topic. Same answers. */
    int (*write_at)(void *ctx, const struct mr_output_position *pos, const struct mr_record *recs,
                    size_t n, struct mr_err *err);
    /* Push out anything buffered; same answers as write. */
    int (*flush)(void *ctx, struct mr_err *err);
    void (*fini)(void *ctx);
    /* Records per write when delivery.batch_size is not set; 0: 5000. Larger for destinations
     * with a high fixed cost per write (a durable commit). */
    size_t batch_default;
};

struct mr_plugin {
    enum mr_plugin_kind kind;
    const char *name; /* the `type:` in the config file */
    const char *help; /* one or two sentences for `config docs` */
    struct mr_section conf;
    size_t ctx_size;
    union {
        struct mr_input_ops input;
        struct mr_operator_ops op;
        struct mr_output_ops output;
    };
};

/* ---- the registry (src/plugins.c) ---- */

/* Plugin of that kind and name, or NULL. */
const struct mr_plugin *mr_plugin_find(enum mr_plugin_kind kind, const char *name);
/* The i-th plugin of a kind in registry order (sorted by name), or NULL past the end. */
const struct mr_plugin *mr_plugin_at(enum mr_plugin_kind kind, size_t i);
/* "input", "operator", "output". */
const char *mr_plugin_kind_name(enum mr_plugin_kind kind);

/* The counters every instance exports, labelled {instance="inputs.x",plugin="stdin"}:
 * millrace_records_in_total, millrace_records_out_total, millrace_errors_total. */
struct mr_plugin_counters {
    struct mr_counter *records_in;
    struct mr_counter *records_out;
    struct mr_counter *errors;
};

int mr_plugin_counters_register(struct mr_metrics *metrics, const struct mr_plugin *plugin,
                                const char *instance, struct mr_plugin_counters *out);

#endif
