/* Run a configuration until stopped: see run_loop.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli/run_loop.h"
#include "millrace/alloc.h"
#include "millrace/config.h"
#include "millrace/engine.h"
#include "millrace/api.h"
#include "millrace/http_metrics.h"
#include "millrace/log.h"

#define FINAL_DRAIN_MS (24 * 3600 * 1000)

struct run {
    const struct mr_run_options *o;
    uv_loop_t loop;
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t duration;
    struct mr_engine *engine;
    struct mr_http_metrics *http;
    int stopping;  /* 0 running, 1 stop requested */
    int signalled; /* SIGTERM/SIGINT received: a second one exits at once */
    bool reloading;
    int exit_code;
};

int mr_run_load_config(const struct mr_run_options *o, struct mr_config **cfg)
{
    struct mr_config_errors *errs = mr_calloc(1, sizeof(*errs));
    if (errs == NULL) {
        fprintf(stderr, "millrace: out of memory\n");
        return MR_ENOMEM;
    }
    struct mr_config_opts opts = {.sets = o->sets, .nsets = o->nsets};
    int rc = o->path != NULL ? mr_config_load(cfg, o->path, &opts, errs)
                             : mr_config_load_buffer(cfg, o->buffer_name, o->buffer, o->buffer_len,
                                                     &opts, errs);
    if (rc != 0) {
        for (size_t i = 0; i < errs->n; i++) {
            fprintf(stderr, "%s\n", errs->msg[i]);
        }
        if (errs->total > errs->n) {
            fprintf(stderr, "... and %zu more problems\n", errs->total - errs->n);
        }
    }
    mr_free(errs);
    return rc;
}

static void close_handles(struct run *r)
{
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    uv_close((uv_handle_t *)&r->sighup, NULL);
    uv_close((uv_handle_t *)&r->duration, NULL);
    /* Closing the last watcher restores the default action; the stop is complete and the
     * process exits 0 in a moment, so a late SIGTERM must not turn that into "killed". */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
}

static void stopped(void *arg)
{
    struct run *r = arg;
    mr_http_metrics_stop(r->http, NULL, NULL);
    r->http = NULL;
    close_handles(r);
}

/* Metrics over HTTP are a convenience: a busy port is reported, not fatal. */
static void http_start(struct run *r)
{
    const char *listen = mr_engine_config(r->engine)->http.listen;
    struct mr_err err;
    mr_err_clear(&err);
    if (mr_http_metrics_start(&r->http, &r->loop, listen, mr_engine_metrics(r->engine), &err) !=
        0) {
        MR_LOG_WARN("run", "metrics are not served over HTTP: %s (set http.listen)", err.msg);
        r->http = NULL;
        return;
    }
    (void)mr_http_metrics_route_json(r->http, "/api/v1/outputs", mr_api_outputs_json, r->engine);
    char host[256];
    const char *colon = strrchr(listen, ':');
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    MR_LOG_INFO("run", "metrics at http://%s:%d/metrics", host, mr_http_metrics_port(r->http));
}

static void request_stop_mode(struct run *r, const char *why, bool final)
{
    if (r->stopping) {
        return; /* already stopping (the duration or the inputs' end came first) */
    }
    r->stopping = 1;
    MR_LOG_INFO("run", "%s: stopping (inputs, then pipelines checkpoint, then outputs drain)", why);
    uv_timer_stop(&r->duration);
    /* Finished inputs: everything they produced must come out, however long that takes (a
     * second signal still stops at once). */
    mr_engine_stop(r->engine, final ? FINAL_DRAIN_MS : r->o->drain_timeout_ms, final, stopped, r);
}

/* A signal: the first stops in order, the second exits at once. */
static void request_stop(struct run *r, const char *why)
{
    if (r->signalled++ > 0) {
        MR_LOG_WARN("run",
                    "%s again: exiting now; the journal and the last checkpoints make "
                    "the restart safe",
                    why);
        exit(1);
    }
    if (r->stopping) {
        MR_LOG_INFO("run", "%s: already stopping (a second signal exits at once)", why);
        return;
    }
    request_stop_mode(r, why, false);
}

/* Every input ended on its own (a file read to its end): close all windows, deliver, exit. */
static void on_inputs_done(void *arg, int status)
{
    struct run *r = arg;
    if (status != 0) {
        r->exit_code = 1;
    }
    request_stop_mode(r, status == 0 ? "every input reached its end" : "every input has stopped",
                      true);
}

static void on_reloaded(void *arg, int status)
{
    struct run *r = arg;
    r->reloading = false;
    (void)status;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct run *r = h->data;
    if (signum != SIGHUP) {
        request_stop(r, signum == SIGINT ? "interrupted" : "SIGTERM");
        return;
    }
    if (r->stopping || r->reloading) {
        MR_LOG_WARN("run", "SIGHUP ignored: %s", r->stopping ? "stopping" : "reload running");
        return;
    }
    MR_LOG_INFO("run", "SIGHUP: reloading %s", r->o->path != NULL ? r->o->path : "configuration");
    struct mr_config *cfg = NULL;
    if (mr_run_load_config(r->o, &cfg) != 0) {
        MR_LOG_ERROR("run", "the new configuration has errors (above); still running the "
                            "previous one");
        return;
    }
    struct mr_err err;
    mr_err_clear(&err);
    r->reloading = true;
    if (mr_engine_reload(r->engine, cfg, on_reloaded, r, &err) != 0) {
        r->reloading = false;
        mr_config_destroy(cfg);
        MR_LOG_ERROR("run", "reload failed: %s; still running the previous configuration", err.msg);
    }
}

static void on_duration(uv_timer_t *t)
{
    request_stop_mode(t->data, "duration reached", false);
}

int mr_run_config(const struct mr_run_options *o)
{
    struct mr_config *cfg = NULL;
    if (mr_run_load_config(o, &cfg) != 0) {
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    struct run *r = mr_calloc(1, sizeof(*r));
    if (r == NULL || uv_loop_init(&r->loop) != 0) {
        mr_free(r);
        mr_config_destroy(cfg);
        fprintf(stderr, "millrace: cannot start the event loop\n");
        return 1;
    }
    r->o = o;
    struct mr_err err;
    mr_err_clear(&err);
    int rc = mr_engine_create(&r->engine, cfg, &r->loop, &err);
    if (rc == 0) {
        mr_engine_on_inputs_done(r->engine, on_inputs_done, r);
        rc = mr_engine_start(r->engine, &err);
        if (rc != 0) {
            fprintf(stderr, "millrace: %s\n", err.msg);
            r->exit_code = 1;
            r->stopping = 1;
            mr_engine_stop(r->engine, 0, false, NULL, NULL);
        }
    } else {
        fprintf(stderr, "millrace: %s\n", err.msg);
        uv_loop_close(&r->loop);
        mr_free(r);
        return 1;
    }
    uv_signal_init(&r->loop, &r->sigint);
    uv_signal_init(&r->loop, &r->sigterm);
    uv_signal_init(&r->loop, &r->sighup);
    uv_timer_init(&r->loop, &r->duration);
    r->sigint.data = r->sigterm.data = r->sighup.data = r->duration.data = r;
    if (r->stopping) {
        close_handles(r);
    } else {
        uv_signal_start(&r->sigint, on_signal, SIGINT);
        uv_signal_start(&r->sigterm, on_signal, SIGTERM);
        uv_signal_start(&r->sighup, on_signal, SIGHUP);
        http_start(r);
        if (o->duration_ns > 0) {
            uv_timer_start(&r->duration, on_duration, (uint64_t)(o->duration_ns / 1000000), 0);
        }
    }
    uv_run(&r->loop, UV_RUN_DEFAULT);
    mr_engine_destroy(r->engine);
    uv_loop_close(&r->loop);
    int code = r->exit_code;
    mr_free(r);
    return code;
}
