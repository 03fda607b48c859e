/* Input `sim`: a simulated plant producing the signals a real one would, for demos, tests and
 * benchmarks without hardware.
 *
 *   inputs:
 *     plant:
 *       type: sim
 *       seed: 7
 *       speed: 10                  # 10 simulated seconds per real second; 0: as fast as possible
 *       start: 2026-01-05T06:00:00Z
 *       duration: 8h               # then the input ends; 0 runs forever
 *       lines:
 *         - name: line1
 *           area: assembly
 *           machines:
 *             - {name: press1, ideal_cycle_time: 6s}
 *             - {name: weld1, ideal_cycle_time: 9s, rpm: 2900}
 *       bearing_fault: {machine: press1, start: 10m, growth: 1h}
 *       quality_drift: {machine: weld1, rate_per_hour: 0.02}
 *       faults:
 *         - {machine: weld1, signal: temperature, kind: late, at: 5m, duration: 1m, delay: 30s}
 *
 * `{type: sim}` alone gives one line of three machines and a warehouse of two materials.
 * sim_model.h lists every signal, its unit and its tags; sim_model.c, sim_vib.c,
 * sim_supply.c and sim_faults.c describe the model. The records are a pure function of the
 * configuration, the seed and the start time, whatever the speed.
 *
 * Pacing: a timer on the host's loop. With speed > 0 it fires every PACE_MS and generates
 * everything up to simulated now = start + elapsed x speed; with speed 0 it generates batch
 * after batch and yields to the loop (a 1 ms timer) after BUDGET_NS of work, so other handles
 * on the loop keep running. A batch the host refuses with MR_EAGAIN is kept and offered again
 * after RETRY_MS; generation waits for it, so back-pressure never loses a record. With a
 * duration, the input calls host->ended(0) once the last record is accepted. */
#include <inttypes.h>
#include <string.h>

#include "inputs/sim_model.h"
#include "millrace/clock.h"
#include "millrace/log.h"
#include "millrace/plugin.h"

#define PACE_MS   20
#define RETRY_MS  10
#define BUDGET_NS (5 * 1000 * 1000)

extern const struct mr_plugin mr_input_sim;

struct sim_ctx {
    const struct mr_sim_conf *conf;
    struct mr_input_host *host;
    struct mr_plugin_counters counters;
    struct mr_sim_model *model;
    uv_timer_t timer;
    bool timer_open, stopping, ended;
    const struct mr_record *pending; /* a batch the host has not accepted yet */
    size_t npending;
    int64_t mono0_ns; /* real time of start() */
    uint64_t overflows;
};

static void tick_cb(uv_timer_t *t);

static void schedule(struct sim_ctx *c, uint64_t ms)
{
    uv_timer_start(&c->timer, tick_cb, ms, 0);
}

static void finish(struct sim_ctx *c, int status)
{
    if (c->ended) {
        return;
    }
    c->ended = true;
    if (c->timer_open) {
        uv_timer_stop(&c->timer);
    }
    c->host->ended(c->host, status);
}

/* Hand the pending batch over; false when generation must pause (back-pressure) or end. */
static bool offer(struct sim_ctx *c)
{
    int rc = c->host->emit(c->host, c->pending, c->npending);
    if (rc == MR_EAGAIN) {
        schedule(c, RETRY_MS);
        return false;
    }
    if (rc != 0) {
        MR_LOG_ERROR(c->host->name, "the host refused %zu records: %s; stopping", c->npending,
                     mr_strerror(rc));
        mr_counter_add(c->counters.errors, c->npending);
        c->npending = 0;
        finish(c, rc);
        return false;
    }
    mr_counter_add(c->counters.records_out, c->npending);
    c->npending = 0;
    return true;
}

static void note_overflows(struct sim_ctx *c)
{
    uint64_t now = mr_sim_model_overflows(c->model);
    if (now > c->overflows) {
        MR_LOG_WARN(c->host->name,
                    "a late fault holds too much: %" PRIu64 " records delivered on time instead",
                    now - c->overflows);
        mr_counter_add(c->counters.errors, now - c->overflows);
        c->overflows = now;
    }
}

static void tick(struct sim_ctx *c)
{
    int64_t deadline = mr_clock_mono_ns() + BUDGET_NS;
    for (;;) {
        if (c->stopping || c->ended) {
            return; /* the host stopped us from inside emit */
        }
        if (c->npending > 0 && !offer(c)) {
            return;
        }
        if (mr_sim_model_finished(c->model)) {
            finish(c, 0);
            return;
        }
        int64_t now = mr_clock_mono_ns();
        int64_t until = INT64_MAX;
        if (c->conf->speed > 0) {
            until = mr_sim_model_start_ns(c->model) +
                    (int64_t)((double)(now - c->mono0_ns) * c->conf->speed);
        }
        bool caught_up;
        c->npending = mr_sim_model_next(c->model, until, &c->pending, &caught_up);
        mr_counter_add(c->counters.records_in, c->npending);
        note_overflows(c);
        if (c->npending > 0 && (!offer(c) || c->stopping)) {
            return;
        }
        if (mr_sim_model_finished(c->model)) {
            finish(c, 0);
            return;
        }
        if (caught_up && c->conf->speed > 0) {
            schedule(c, PACE_MS);
            return;
        }
        if (mr_clock_mono_ns() >= deadline) {
            /* 1 ms, not 0: libuv runs a timer re-armed with 0 from its own callback again in the
             * same pass, so the loop would never poll and signals (SIGTERM) would wait forever. */
            schedule(c, 1);
            return;
        }
    }
}

static void tick_cb(uv_timer_t *t)
{
    struct sim_ctx *c = t->data;
    if (!c->stopping && !c->ended) {
        tick(c);
    }
}

static void sim_fini(void *ctx)
{
    struct sim_ctx *c = ctx;
    mr_sim_model_destroy(c->model);
    c->model = NULL;
}

static int sim_init(void *ctx, const void *conf, struct mr_input_host *host, struct mr_err *err)
{
    struct sim_ctx *c = ctx;
    const struct mr_sim_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->host = host;
    int64_t start = 0;
    if (strcmp(cf->start, "now") == 0) {
        start = mr_clock_wall_ns();
    } else if (mr_time_parse_rfc3339(cf->start, strlen(cf->start), &start) != 0) {
        return MR_ERR_SET(err, MR_ECONFIG,
                          "start: expected 'now' or an RFC 3339 time like "
                          "2026-01-05T06:00:00Z, got '%.60s'",
                          cf->start);
    }
    int rc = mr_plugin_counters_register(host->metrics, &mr_input_sim, host->name, &c->counters);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
    }
    return mr_sim_model_create(&c->model, cf, start, host->names, err);
}

static int sim_start(void *ctx, struct mr_err *err)
{
    struct sim_ctx *c = ctx;
    int rc = uv_timer_init(c->host->loop, &c->timer);
    if (rc != 0) {
        return MR_ERR_SET(err, mr_err_from_errno(-rc), "timer: %s", uv_strerror(rc));
    }
    c->timer.data = c;
    c->timer_open = true;
    char plant[512];
    char when[40];
    mr_sim_model_describe(c->model, plant, sizeof(plant));
    mr_time_format_rfc3339(mr_sim_model_start_ns(c->model), when, sizeof(when));
    if (c->conf->speed > 0) {
        MR_LOG_INFO(c->host->name, "simulating %s; from %s at %gx real time", plant, when,
                    c->conf->speed);
    } else {
        MR_LOG_INFO(c->host->name, "simulating %s; from %s as fast as accepted", plant, when);
    }
    c->mono0_ns = mr_clock_mono_ns();
    schedule(c, 0);
    return 0;
}

static void close_cb(uv_handle_t *h)
{
    struct sim_ctx *c = h->data;
    c->host->stopped(c->host);
}

static void sim_stop(void *ctx)
{
    struct sim_ctx *c = ctx;
    if (c->stopping) {
        return;
    }
    c->stopping = true;
    if (c->timer_open) {
        uv_close((uv_handle_t *)&c->timer, close_cb);
    } else {
        c->host->stopped(c->host);
    }
}

const struct mr_plugin mr_input_sim = {
    .kind = MR_PLUGIN_INPUT,
    .name = "sim",
    .help = "A simulated plant: lines of machines with PLC states, part counts, cycle times, "
            "part dimensions, temperature, power, energy and 10 kHz vibration, a warehouse "
            "with shipments, and faults on demand (a failing bearing, quality drift, sensor "
            "dropouts, stuck values, late data, clock skew). Seeded: runs repeat exactly.",
    .conf = {.fields = mr_sim_conf_fields,
             .size = sizeof(struct mr_sim_conf),
             .check = mr_sim_conf_check},
    .ctx_size = sizeof(struct sim_ctx),
    .input = {.init = sim_init, .start = sim_start, .stop = sim_stop, .fini = sim_fini},
};
