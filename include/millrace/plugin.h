/* Plugins: inputs, operators and outputs.
 *
 * A plugin is a `static const struct mr_plugin` with designated initializers: its name (the
 * `type:` users write), help, configuration table (millrace/config.h), the size of its
 * per-instance context and a small vtable. src/plugins.c is the one registry listing them all.
 *
 * Life of an instance (the host, i.e. the engine or a test, drives it; all calls on the loop
 * thread):
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
#define MR_SINK_FATAL 2 /* will not succeed (bad config, rejected data): the host gives up */

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
    void *arg; /* for the host */
};

/* What an output or operator sees of its host. */
struct mr_output_host {
    const char *name; /* "outputs.console" */
    struct mr_names *names;
    struct mr_metrics *metrics;
    uv_loop_t *loop;
    void *arg;
};

struct mr_operator_host {
    const char *name; /* "pipelines.clean.steps[0]" */
    struct mr_names *names;
    struct mr_metrics *metrics;
    uv_loop_t *loop;
    /* Pass records on to the next step; same contract as mr_input_host.emit. */
    int (*emit)(struct mr_operator_host *host, const struct mr_record *recs, size_t n);
    void *arg;
};

struct mr_input_ops {
    int (*init)(void *ctx, const void *conf, struct mr_input_host *host, struct mr_err *err);
    int (*start)(void *ctx, struct mr_err *err);
    void (*stop)(void *ctx);
    void (*fini)(void *ctx);
};

struct mr_operator_ops {
    int (*init)(void *ctx, const void *conf, struct mr_operator_host *host, struct mr_err *err);
    /* Consume a batch (borrowed for the call); returns 0 or a negative MR_E* code. */
    int (*process)(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err);
    void (*fini)(void *ctx);
};

struct mr_output_ops {
    int (*init)(void *ctx, const void *conf, struct mr_output_host *host, struct mr_err *err);
    /* Deliver a batch (borrowed for the call). Returns MR_SINK_OK, MR_SINK_RETRY or
     * MR_SINK_FATAL (err says why). Delivery is at least once: after RETRY some records of the
     * batch may already have been delivered. */
    int (*write)(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err);
    /* Push out anything buffered; same answers as write. */
    int (*flush)(void *ctx, struct mr_err *err);
    void (*fini)(void *ctx);
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
