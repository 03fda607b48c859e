/* The plant simulator's event loop and machines (see sim_model.h for the signals).
 *
 * Every entity keeps the time of its next event: the site (bill of materials at the start,
 * breaks), each material (inventory report, shipment announced, shipment arrived), each
 * machine (state change, cycle end, temperature, power, vibration block) and each late fault
 * (release of a held record). mr_sim_model_next repeatedly takes the earliest event (ties:
 * site, materials, machines, faults in declaration order; within a machine in the order just
 * listed) and runs it. Nothing depends on where the caller's time bounds fall, which is what
 * makes the output reproducible at any speed.
 *
 * A machine's PLC state machine: RUNNING ends after the first of three competing clocks,
 * an exponential time to breakdown (mean mtbf), an exponential time to a wait (mean
 * idle_every) and the scheduled changeover (setup_every, +-20 %); DOWN, IDLE and SETUP return
 * to RUNNING after their drawn duration. Site-wide breaks preempt any state. The line's last
 * machine consumes material per good part and goes DOWN (material_shortage) when the
 * warehouse cannot cover the next part. A cycle interrupted by a stop resumes where it was.
 *
 * Temperature follows a first-order lag towards ambient + rise x load(state) (+ heat from a
 * damaged bearing); power is rated x load(state) with a short inrush on start-up; energy is
 * the exact integral of the noise-free power. Both are integrated piecewise between events, so
 * they too are independent of the caller's time steps. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "inputs/sim_internal.h"
#include "millrace/alloc.h"

const char *const sim_signal_names[SIG_COUNT] = {
    "state", "cycle_count", "good_count", "reject_count", "cycle_time", "dimension", "temperature",
    "power", "energy",      "vibration",  "inventory",    "shipment",   "bom",
};
static const char *const tag_names[TAG_COUNT] = {"unit",    "reason",   "qty",     "eta",
                                                 "product", "material", "consumer"};
static const char *const state_names[ST_COUNT] = {"RUNNING", "IDLE", "DOWN", "SETUP",
                                                  "PLANNED_STOP"};
/* Share of the full-load heat and power in each state. */
static const double heat_load[ST_COUNT] = {1.0, 0.4, 0.1, 0.2, 0.05};
static const double power_load[ST_COUNT] = {1.0, 0.35, 0.1, 0.25, 0.05};

enum { STOP_FAIL = 0, STOP_IDLE = 1, STOP_SETUP = 2 };

#define BATCH_RECS      1024
#define BATCH_TEXT      (64u * 1024u)
#define BATCH_BLOCKS    64
#define BATCH_MAX_FLOAT (1u << 20)
#define INRUSH_NS       (2 * SIM_NS)

/* ---- random numbers ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void sim_rng_seed(struct sim_rng *r, uint64_t seed, uint64_t entity, uint64_t stream)
{
    uint64_t x = seed;
    uint64_t a = splitmix64(&x);
    x = a ^ (entity + 1) * 0xD1B54A32D192ED03ULL;
    uint64_t b = splitmix64(&x);
    x = b ^ (stream + 1) * 0x8CB92BA72F3D8DD7ULL;
    for (int i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&x);
    }
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sim_rng_uniform(struct sim_rng *r)
{
    return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

double sim_rng_normal(struct sim_rng *r)
{
    const double two_pi = 6.28318530717958647692;
    double u1 = 1.0 - sim_rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = sim_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}

double sim_rng_exp(struct sim_rng *r, double mean)
{
    return -mean * log(1.0 - sim_rng_uniform(r));
}

/* ---- the batch ---- */

struct mr_record *sim_batch_add(struct mr_sim_model *m, int64_t t, mr_name_id asset, int signal)
{
    struct mr_record *r = &m->batch.recs[m->batch.n++];
    r->time_ns = t;
    r->asset = asset;
    r->signal = m->sig[signal];
    r->type = MR_VALUE_F64;
    r->quality = MR_QUALITY_GOOD;
    r->ntags = 0;
    r->v.f64 = 0;
    return r;
}

void sim_rec_tag(struct mr_sim_model *m, struct mr_record *r, int tag, const char *value,
                 size_t len)
{
    r->tags[r->ntags].key = m->tag[tag];
    r->tags[r->ntags].value = (struct mr_bytes){.ptr = value, .len = (uint32_t)len};
    r->ntags++;
}

const char *sim_batch_text(struct mr_sim_model *m, const char *s, size_t len)
{
    char *p = m->batch.text + m->batch.ntext;
    memcpy(p, s, len);
    m->batch.ntext += len;
    return p;
}

static bool batch_room(const struct mr_sim_model *m)
{
    const struct sim_batch *b = &m->batch;
    return b->n + SIM_EVENT_RECS <= b->cap && b->ntext + SIM_EVENT_TEXT <= b->cap_text &&
           (!m->conf->vibration || b->nsamples + m->vib_block <= b->cap_samples);
}

static void rec_unit(struct mr_sim_model *m, struct mr_record *r, const char *unit)
{
    sim_rec_tag(m, r, TAG_UNIT, unit, strlen(unit));
}

static void emit_f64(struct mr_sim_model *m, struct sim_machine *mc, int64_t t, int sig, double v,
                     const char *unit)
{
    struct mr_record *r = sim_batch_add(m, t, mc->asset, sig);
    r->v.f64 = v;
    rec_unit(m, r, unit);
}

static void emit_i64(struct mr_sim_model *m, struct sim_machine *mc, int64_t t, int sig, int64_t v)
{
    struct mr_record *r = sim_batch_add(m, t, mc->asset, sig);
    r->type = MR_VALUE_I64;
    r->v.i64 = v;
    rec_unit(m, r, "parts");
}

/* ---- machines ---- */

static int64_t ns_of(double s)
{
    return (int64_t)llround(s * 1e9);
}

static double s_of(int64_t ns)
{
    return (double)ns / 1e9;
}

static bool rotating(const struct sim_machine *mc)
{
    return mc->state == ST_RUNNING || mc->state == ST_IDLE;
}

/* Noise-free electrical power now (kW). */
static double power_kw(const struct sim_machine *mc, double severity)
{
    int st = mc->state < 0 ? ST_RUNNING : mc->state;
    return mc->conf->rated_power_kw * power_load[st] * (1.0 + 0.05 * severity);
}

/* Bring temperature and energy up to t with the state constant since integ_ns. */
static void integrate(const struct mr_sim_model *m, struct sim_machine *mc, int64_t t)
{
    if (t <= mc->integ_ns) {
        return;
    }
    double dt = s_of(t - mc->integ_ns);
    int st = mc->state < 0 ? ST_RUNNING : mc->state;
    double sev = rotating(mc) ? sim_vib_severity(&mc->vib, mc->integ_ns) : 0.0;
    double target = m->conf->ambient + mc->conf->temp_rise * heat_load[st] + 8.0 * sev;
    mc->temp = target + (mc->temp - target) * exp(-dt / s_of(mc->conf->thermal_tau_ns));
    mc->energy_kwh += power_kw(mc, sev) * dt / 3600.0;
    mc->integ_ns = t;
}

static void start_cycle(struct sim_machine *mc, int64_t t)
{
    const struct mr_sim_machine_conf *c = mc->conf;
    double slow = c->slowdown * (1.0 + 0.5 * sim_rng_normal(&mc->rng_proc));
    double s = s_of(c->ideal_cycle_ns) * (1.0 + (slow > 0 ? slow : 0));
    if (sim_rng_uniform(&mc->rng_proc) < c->microstop_rate) {
        s += 5.0 + 55.0 * sim_rng_uniform(&mc->rng_proc);
    }
    mc->cycle_s = s;
    mc->cycle_end = t + ns_of(s);
}

/* Entering RUNNING: draw what ends it. */
static int64_t draw_running_end(struct sim_machine *mc, int64_t t)
{
    const struct mr_sim_machine_conf *c = mc->conf;
    int64_t fail = ns_of(sim_rng_exp(&mc->rng_state, s_of(c->mtbf_ns)));
    int64_t idle = ns_of(sim_rng_exp(&mc->rng_state, s_of(c->idle_every_ns)));
    int64_t setup = mc->setup_due - t;
    if (setup < SIM_NS) {
        setup = SIM_NS;
    }
    mc->next_stop = STOP_FAIL;
    int64_t d = fail;
    if (idle < d) {
        d = idle;
        mc->next_stop = STOP_IDLE;
    }
    if (setup < d) {
        d = setup;
        mc->next_stop = STOP_SETUP;
    }
    return t + (d > 0 ? d : 1);
}

static void enter_state(struct mr_sim_model *m, struct sim_machine *mc, int64_t t, int st,
                        const char *reason, int64_t end)
{
    integrate(m, mc, t);
    if (mc->state == ST_RUNNING && st != ST_RUNNING && mc->cycle_end != SIM_NEVER) {
        mc->cycle_left = mc->cycle_end - t;
        mc->cycle_end = SIM_NEVER;
    }
    if (st == ST_RUNNING && mc->state >= 0 && !rotating(mc)) {
        mc->inrush_until = t + INRUSH_NS;
    }
    mc->state = st;
    mc->reason = reason;
    mc->state_end = end;
    mc->starved = reason != NULL && strcmp(reason, "material_shortage") == 0;
    if (st == ST_RUNNING) {
        if (mc->cycle_left > 0) {
            mc->cycle_end = t + mc->cycle_left;
            mc->cycle_left = 0;
        } else {
            start_cycle(mc, t);
        }
        mc->state_end = draw_running_end(mc, t);
    }
    struct mr_record *r = sim_batch_add(m, t, mc->asset, SIG_STATE);
    r->type = MR_VALUE_STRING;
    r->v.str = (struct mr_bytes){.ptr = state_names[st], .len = (uint32_t)strlen(state_names[st])};
    if (reason != NULL) {
        sim_rec_tag(m, r, TAG_REASON, reason, strlen(reason));
    }
}

/* Back to production, unless the line's material is out. */
static void resume(struct mr_sim_model *m, struct sim_machine *mc, int64_t t)
{
    if (mc->consumer && mc->cycle_left == 0 && !sim_supply_available(m, mc->line)) {
        enter_state(m, mc, t, ST_DOWN, "material_shortage", SIM_NEVER);
        return;
    }
    enter_state(m, mc, t, ST_RUNNING, NULL, 0);
}

static void stop_running(struct mr_sim_model *m, struct sim_machine *mc, int64_t t)
{
    const struct mr_sim_machine_conf *c = mc->conf;
    struct sim_rng *r = &mc->rng_state;
    double u = sim_rng_uniform(r);
    if (mc->next_stop == STOP_FAIL) {
        /* Jams are quick to clear, mechanical failures take longest. */
        const char *reason = u < 0.45 ? "jam" : u < 0.7 ? "electrical" : "mechanical";
        double scale = u < 0.45 ? 0.5 : u < 0.7 ? 1.0 : 1.8;
        double d = sim_rng_exp(r, s_of(c->mttr_ns)) * scale;
        enter_state(m, mc, t, ST_DOWN, reason, t + ns_of(d > 20.0 ? d : 20.0));
    } else if (mc->next_stop == STOP_IDLE) {
        double d = sim_rng_exp(r, s_of(c->idle_duration_ns));
        enter_state(m, mc, t, ST_IDLE, u < 0.6 ? "starved" : "blocked",
                    t + ns_of(d > 10.0 ? d : 10.0));
    } else {
        bool tool = u >= 0.7;
        double d = s_of(c->setup_duration_ns) * (0.7 + 0.6 * sim_rng_uniform(r)) * (tool ? 0.5 : 1);
        int64_t end = t + ns_of(d);
        mc->setup_due = end + ns_of(s_of(c->setup_every_ns) * (0.8 + 0.4 * sim_rng_uniform(r)));
        enter_state(m, mc, t, ST_SETUP, tool ? "tool_change" : "changeover", end);
    }
}

static void on_state_end(struct mr_sim_model *m, struct sim_machine *mc, int64_t t)
{
    if (mc->break_until > t) {
        enter_state(m, mc, t, ST_PLANNED, "break", mc->break_until);
    } else if (mc->state == ST_RUNNING) {
        stop_running(m, mc, t);
    } else {
        resume(m, mc, t);
    }
}

static void on_cycle_end(struct mr_sim_model *m, struct sim_machine *mc, int64_t t)
{
    const struct mr_sim_machine_conf *c = mc->conf;
    double drift = 0;
    if (mc->drifting && t > mc->drift_start) {
        drift = mc->drift_mm_per_ns * (double)(t - mc->drift_start);
    }
    double dim = c->target_mm + drift + c->sigma_mm * sim_rng_normal(&mc->rng_proc);
    bool reject = fabs(dim - c->target_mm) > c->tolerance_mm ||
                  sim_rng_uniform(&mc->rng_proc) < c->reject_rate;
    mc->cycles++;
    if (reject) {
        mc->rejects++;
    } else {
        mc->good++;
        if (mc->consumer) {
            sim_supply_consume(m, mc->line);
        }
    }
    emit_i64(m, mc, t, SIG_CYCLE_COUNT, mc->cycles);
    emit_i64(m, mc, t, SIG_GOOD_COUNT, mc->good);
    emit_i64(m, mc, t, SIG_REJECT_COUNT, mc->rejects);
    emit_f64(m, mc, t, SIG_CYCLE_TIME, mc->cycle_s, "s");
    emit_f64(m, mc, t, SIG_DIMENSION, dim, "mm");
    mc->cycle_end = SIM_NEVER;
    if (mc->consumer && !sim_supply_available(m, mc->line)) {
        enter_state(m, mc, t, ST_DOWN, "material_shortage", SIM_NEVER);
    } else {
        start_cycle(mc, t);
    }
}

static void on_temperature(struct mr_sim_model *m, struct sim_machine *mc, int64_t t)
{
    integrate(m, mc, t);
    emit_f64(m, mc, t, SIG_TEMPERATURE, mc->temp + 0.05 * sim_rng_normal(&mc->rng_sens), "degC");
    mc->temp_next += m->conf->temperature_interval_ns;
}

static void on_power(struct mr_sim_model *m, struct sim_machine *mc, int64_t t)
{
    integrate(m, mc, t);
    double sev = rotating(mc) ? sim_vib_severity(&mc->vib, t) : 0.0;
    double kw = power_kw(mc, sev) * (1.0 + 0.02 * sim_rng_normal(&mc->rng_sens));
    if (mc->state == ST_RUNNING && t < mc->inrush_until) {
        kw *= 1.6; /* motor start-up */
    }
    emit_f64(m, mc, t, SIG_POWER, kw, "kW");
    emit_f64(m, mc, t, SIG_ENERGY, mc->energy_kwh, "kWh");
    mc->power_next += m->conf->power_interval_ns;
}

/* Time of sample n since the start (exact, no overflow for any realistic run). */
static int64_t sample_time(const struct mr_sim_model *m, uint64_t n)
{
    uint64_t rate = m->vib_rate;
    return m->start_ns + (int64_t)((n / rate) * (uint64_t)SIM_NS) +
           (int64_t)((n % rate) * (uint64_t)SIM_NS / rate);
}

static void on_vibration(struct mr_sim_model *m, struct sim_machine *mc, int64_t t)
{
    uint64_t first = mc->vib_block_no * m->vib_block;
    float *out = m->batch.samples + m->batch.nsamples;
    sim_vib_block(m, mc, first, t, out);
    m->batch.nsamples += m->vib_block;
    struct mr_record *r = sim_batch_add(m, t, mc->asset, SIG_VIBRATION);
    r->type = MR_VALUE_SAMPLES;
    r->v.samples = (struct mr_samples){.data = out, .n = m->vib_block, .rate_hz = m->vib_rate};
    rec_unit(m, r, "g");
    mc->vib_block_no++;
    mc->vib_next = sample_time(m, mc->vib_block_no * m->vib_block);
}

static int64_t machine_next(const struct sim_machine *mc)
{
    int64_t t = mc->state_end;
    t = mc->cycle_end < t ? mc->cycle_end : t;
    t = mc->temp_next < t ? mc->temp_next : t;
    t = mc->power_next < t ? mc->power_next : t;
    return mc->vib_next < t ? mc->vib_next : t;
}

static void machine_step(struct mr_sim_model *m, struct sim_machine *mc, int64_t t)
{
    size_t first = m->batch.n;
    if (t == mc->state_end) {
        on_state_end(m, mc, t);
    } else if (t == mc->cycle_end) {
        on_cycle_end(m, mc, t);
    } else if (t == mc->temp_next) {
        on_temperature(m, mc, t);
    } else if (t == mc->power_next) {
        on_power(m, mc, t);
    } else {
        on_vibration(m, mc, t);
    }
    if (m->nfaults > 0) {
        sim_faults_apply(m, mc->index, first);
    }
}

void sim_machines_wake(struct mr_sim_model *m, int64_t t)
{
    for (size_t i = 0; i < m->nmachines; i++) {
        struct sim_machine *mc = &m->machines[i];
        if (mc->starved && mc->state == ST_DOWN && sim_supply_available(m, mc->line)) {
            mc->state_end = t;
        }
    }
}

/* ---- site events ---- */

static void site_break(struct mr_sim_model *m, int64_t t)
{
    for (size_t i = 0; i < m->nmachines; i++) {
        m->machines[i].break_until = t + m->conf->break_duration_ns;
        m->machines[i].state_end = t;
    }
    m->break_next += m->conf->break_every_ns;
}

static void site_bom(struct mr_sim_model *m, int64_t t)
{
    const struct sim_bom *b = &m->bom[m->bom_sent++];
    const struct sim_material *mat = &m->materials[b->material];
    struct mr_record *r = sim_batch_add(m, t, mat->asset, SIG_BOM);
    r->v.f64 = b->qty;
    const struct sim_machine *consumer = NULL;
    for (size_t i = 0; i < m->nmachines; i++) {
        if (m->machines[i].consumer && m->machines[i].line == b->line) {
            consumer = &m->machines[i];
        }
    }
    sim_rec_tag(m, r, TAG_PRODUCT, b->product, strlen(b->product));
    sim_rec_tag(m, r, TAG_MATERIAL, mat->conf->name, strlen(mat->conf->name));
    sim_rec_tag(m, r, TAG_QTY, b->qty_text, strlen(b->qty_text));
    sim_rec_tag(m, r, TAG_CONSUMER, consumer->path, strlen(consumer->path));
    rec_unit(m, r, mat->conf->unit);
}

/* ---- the loop ---- */

enum { EV_NONE, EV_BOM, EV_BREAK, EV_SUPPLY, EV_MACHINE, EV_RELEASE };

size_t mr_sim_model_next(struct mr_sim_model *m, int64_t until_ns, const struct mr_record **recs,
                         bool *caught_up)
{
    m->batch.n = 0;
    m->batch.nsamples = 0;
    m->batch.ntext = 0;
    *caught_up = false;
    int64_t until = until_ns < m->end_ns ? until_ns : m->end_ns;
    while (!m->finished && batch_room(m)) {
        int64_t best = SIM_NEVER;
        int ev = EV_NONE;
        size_t which = 0;
        size_t w;
        if (m->bom_sent < m->nbom) {
            best = m->start_ns;
            ev = EV_BOM;
        }
        if (m->break_next < best) {
            best = m->break_next;
            ev = EV_BREAK;
        }
        int64_t t = sim_supply_next(m, &w);
        if (t < best) {
            best = t;
            ev = EV_SUPPLY;
            which = w;
        }
        for (size_t i = 0; i < m->nmachines; i++) {
            t = machine_next(&m->machines[i]);
            if (t < best) {
                best = t;
                ev = EV_MACHINE;
                which = i;
            }
        }
        t = sim_faults_next(m, &w);
        if (t < best) {
            best = t;
            ev = EV_RELEASE;
            which = w;
        }
        if (best >= until) {
            if (until == m->end_ns && m->end_ns != SIM_NEVER) {
                /* The end: what late faults still hold is delivered now, in order. */
                if (sim_faults_next(m, &w) != SIM_NEVER) {
                    sim_faults_release(m, w);
                    continue;
                }
                m->finished = true;
            }
            *caught_up = true;
            break;
        }
        switch (ev) {
        case EV_BOM:
            site_bom(m, best);
            break;
        case EV_BREAK:
            site_break(m, best);
            break;
        case EV_SUPPLY:
            sim_supply_step(m, which, best);
            break;
        case EV_MACHINE:
            machine_step(m, &m->machines[which], best);
            break;
        default:
            sim_faults_release(m, which);
            break;
        }
    }
    if (m->finished) {
        *caught_up = true;
    }
    *recs = m->batch.recs;
    return m->batch.n;
}

/* ---- set-up ---- */

static int machines_init(struct mr_sim_model *m, struct mr_names *names, struct mr_err *err)
{
    const struct mr_sim_conf *conf = m->conf;
    m->nmachines = mr_sim_plant_machine_count(&m->plant);
    m->machines = mr_calloc(m->nmachines, sizeof(*m->machines));
    if (m->machines == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    uint32_t idx = 0;
    for (uint32_t l = 0; l < m->plant.nlines; l++) {
        const struct mr_sim_line_conf *line = &m->plant.lines[l];
        for (size_t j = 0; j < line->machines.n; j++, idx++) {
            struct sim_machine *mc = &m->machines[idx];
            mc->conf = (const struct mr_sim_machine_conf *)line->machines.items + j;
            mc->index = idx;
            mc->line = l;
            mc->consumer = j + 1 == line->machines.n;
            int w = snprintf(mc->path, sizeof(mc->path), "%s/%s/%s/%s", conf->site, line->area,
                             line->name, mc->conf->name);
            if (w < 0 || (size_t)w >= sizeof(mc->path)) {
                return MR_ERR_SET(err, MR_ETOOBIG, "asset path of machine %s is too long",
                                  mc->conf->name);
            }
            int rc = mr_names_intern(names, mc->path, (size_t)w, &mc->asset);
            if (rc != 0) {
                return MR_ERR_SET(err, rc, "cannot intern %s: %s", mc->path, mr_strerror(rc));
            }
            uint64_t seed = (uint64_t)conf->seed;
            sim_rng_seed(&mc->rng_state, seed, idx, 0);
            sim_rng_seed(&mc->rng_proc, seed, idx, 1);
            sim_rng_seed(&mc->rng_sens, seed, idx, 2);
            sim_rng_seed(&mc->rng_vib, seed, idx, 3);
            mc->state = -1;
            mc->state_end = m->start_ns;
            mc->cycle_end = SIM_NEVER;
            /* Changeovers are staggered so machines do not all change over together. */
            mc->setup_due = m->start_ns + ns_of(s_of(mc->conf->setup_every_ns) *
                                                (0.3 + 0.7 * sim_rng_uniform(&mc->rng_state)));
            mc->temp = conf->ambient + mc->conf->temp_rise; /* warm: it was running */
            mc->integ_ns = m->start_ns;
            mc->temp_next = m->start_ns;
            mc->power_next = m->start_ns;
            mc->vib_next = conf->vibration ? m->start_ns : SIM_NEVER;
            mc->break_until = 0;
            sim_vib_init(m, mc);
        }
    }
    return 0;
}

static void special_machines(struct mr_sim_model *m)
{
    const struct mr_sim_conf *conf = m->conf;
    if (conf->quality_drift.machine != NULL) {
        int i = mr_sim_plant_find_machine(&m->plant, conf->quality_drift.machine);
        struct sim_machine *mc = &m->machines[i];
        mc->drifting = true;
        mc->drift_mm_per_ns = conf->quality_drift.rate_per_hour / (3600.0 * 1e9);
        mc->drift_start = m->start_ns + conf->quality_drift.start_ns;
    }
    if (conf->bearing_fault.machine != NULL) {
        const struct mr_sim_bearing_conf *b = &conf->bearing_fault;
        int i = mr_sim_plant_find_machine(&m->plant, b->machine);
        struct sim_vib *v = &m->machines[i].vib;
        v->faulty = true;
        v->bpfo_hz = mr_sim_bpfo_hz(v->shaft_hz, b->balls, b->ball_diameter_mm,
                                    b->pitch_diameter_mm, b->contact_angle_deg);
        v->res_hz = b->resonance_hz;
        v->impact_g = b->impact_g;
        v->fault_start_ns = m->start_ns + b->start_ns;
        v->growth_ns = b->growth_ns;
    }
}

/* Machine names the configuration refers to exist (the config check says so with file:line;
 * this keeps a hand-built configuration from indexing out of bounds). */
static int refs_check(const struct mr_sim_model *m, struct mr_err *err)
{
    const struct mr_sim_conf *c = m->conf;
    const char *refs[2] = {c->bearing_fault.machine, c->quality_drift.machine};
    const char *what[2] = {"bearing_fault.machine", "quality_drift.machine"};
    for (size_t i = 0; i < 2; i++) {
        if (refs[i] != NULL && mr_sim_plant_find_machine(&m->plant, refs[i]) < 0) {
            return MR_ERR_SET(err, MR_ECONFIG, "%s: no single machine named '%s'", what[i],
                              refs[i]);
        }
    }
    return 0;
}

static int batch_init(struct mr_sim_model *m, struct mr_err *err)
{
    struct sim_batch *b = &m->batch;
    size_t block = m->vib_block;
    b->cap = BATCH_RECS;
    b->cap_text = BATCH_TEXT;
    b->cap_samples = 0;
    if (m->conf->vibration) {
        b->cap_samples =
            BATCH_BLOCKS * block < BATCH_MAX_FLOAT ? BATCH_BLOCKS * block : BATCH_MAX_FLOAT;
        b->cap_samples = b->cap_samples > 4 * block ? b->cap_samples : 4 * block;
    }
    b->recs = mr_calloc(b->cap, sizeof(*b->recs));
    b->text = mr_malloc(b->cap_text);
    b->samples = mr_malloc((b->cap_samples > 0 ? b->cap_samples : 1) * sizeof(float));
    if (b->recs == NULL || b->text == NULL || b->samples == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    return 0;
}

int mr_sim_model_create(struct mr_sim_model **out, const struct mr_sim_conf *conf, int64_t start_ns,
                        struct mr_names *names, struct mr_err *err)
{
    struct mr_sim_model *m = mr_calloc(1, sizeof(*m));
    if (m == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    m->conf = conf;
    m->start_ns = start_ns;
    m->end_ns = conf->duration_ns > 0 ? start_ns + conf->duration_ns : SIM_NEVER;
    m->vib_rate = (uint32_t)conf->vibration_rate;
    m->vib_block = (uint32_t)conf->vibration_block;
    m->break_next = conf->break_every_ns > 0 ? start_ns + conf->break_every_ns : SIM_NEVER;
    int rc = mr_sim_plant_resolve(&m->plant, conf, err);
    if (rc != 0) {
        mr_free(m);
        return rc;
    }
    for (int i = 0; i < SIG_COUNT && rc == 0; i++) {
        rc = mr_names_intern(names, sim_signal_names[i], strlen(sim_signal_names[i]), &m->sig[i]);
    }
    for (int i = 0; i < TAG_COUNT && rc == 0; i++) {
        rc = mr_names_intern(names, tag_names[i], strlen(tag_names[i]), &m->tag[i]);
    }
    if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot intern signal names: %s", mr_strerror(rc));
        goto fail;
    }
    if ((rc = refs_check(m, err)) != 0 || (rc = machines_init(m, names, err)) != 0) {
        goto fail;
    }
    special_machines(m);
    if ((rc = sim_supply_init(m, names, err)) != 0 || (rc = sim_faults_init(m, err)) != 0 ||
        (rc = batch_init(m, err)) != 0) {
        goto fail;
    }
    *out = m;
    return 0;
fail:
    mr_sim_model_destroy(m);
    return rc;
}

void mr_sim_model_destroy(struct mr_sim_model *m)
{
    if (m == NULL) {
        return;
    }
    sim_faults_fini(m);
    mr_free(m->batch.recs);
    mr_free(m->batch.text);
    mr_free(m->batch.samples);
    mr_free(m->machines);
    mr_free(m->materials);
    mr_free(m->bom);
    mr_sim_plant_fini(&m->plant);
    mr_free(m);
}

bool mr_sim_model_finished(const struct mr_sim_model *m)
{
    return m->finished;
}

int64_t mr_sim_model_start_ns(const struct mr_sim_model *m)
{
    return m->start_ns;
}

int64_t mr_sim_model_end_ns(const struct mr_sim_model *m)
{
    return m->end_ns;
}

uint64_t mr_sim_model_overflows(const struct mr_sim_model *m)
{
    return m->overflows;
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static void
appendf(char *out, size_t cap, size_t *used, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + *used, *used < cap ? cap - *used : 0, fmt, ap);
    va_end(ap);
    *used += w > 0 ? (size_t)w : 0;
}

void mr_sim_model_describe(const struct mr_sim_model *m, char *out, size_t cap)
{
    size_t used = 0;
    if (cap == 0) {
        return;
    }
    out[0] = '\0';
    appendf(out, cap, &used, "site %s: %zu line%s, %zu machines (", m->conf->site, m->plant.nlines,
            m->plant.nlines == 1 ? "" : "s", m->nmachines);
    for (size_t i = 0; i < m->nmachines; i++) {
        const struct sim_machine *mc = &m->machines[i];
        appendf(out, cap, &used, "%s%s/%s", i > 0 ? " " : "", m->plant.lines[mc->line].name,
                mc->conf->name);
    }
    appendf(out, cap, &used, "), %zu materials", m->nmaterials);
    if (m->conf->vibration) {
        appendf(out, cap, &used, ", vibration %u Hz in blocks of %u", m->vib_rate, m->vib_block);
    } else {
        appendf(out, cap, &used, ", no vibration");
    }
    for (size_t i = 0; i < m->nmachines; i++) {
        const struct sim_machine *mc = &m->machines[i];
        if (mc->vib.faulty) {
            appendf(out, cap, &used, ", bearing fault on %s from +%.0fs (BPFO %.1f Hz at %.0f rpm)",
                    mc->conf->name, s_of(mc->vib.fault_start_ns - m->start_ns), mc->vib.bpfo_hz,
                    mc->conf->rpm);
        }
        if (mc->drifting) {
            appendf(out, cap, &used, ", dimension drift on %s (%g mm/h)", mc->conf->name,
                    m->conf->quality_drift.rate_per_hour);
        }
    }
    if (m->nfaults > 0) {
        appendf(out, cap, &used, ", %zu injected fault%s", m->nfaults, m->nfaults == 1 ? "" : "s");
    }
}
