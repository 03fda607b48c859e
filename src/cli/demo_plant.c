#include "cli/demo_plant.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "millrace/clock.h"

static const char *const state_names[] = {"RUNNING", "IDLE", "DOWN", "SETUP", "PLANNED_STOP"};
enum { RUNNING, IDLE, DOWN, SETUP, PLANNED_STOP };
static const char *const signal_names[DEMO_SIGNALS] = {"state", "part_count", "temperature",
                                                       "power", "energy",     "vibration_rms"};
static const char *const units[DEMO_SIGNALS] = {"", "parts", "degC", "kW", "kWh", "mm/s"};

/* xorshift64*: small, seeded, good enough for a simulation. */
static uint64_t next_u64(struct demo_plant *p)
{
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return p->rng * 0x2545F4914F6CDD1DULL;
}

static double uniform(struct demo_plant *p)
{
    return (double)(next_u64(p) >> 11) / 9007199254740992.0;
}

int demo_plant_init(struct demo_plant *plant, struct mr_names *names, uint64_t seed)
{
    memset(plant, 0, sizeof(*plant));
    plant->rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    plant->time_ns = mr_clock_wall_ns();
    for (uint32_t s = 0; s < DEMO_SIGNALS; s++) {
        int rc = mr_names_intern(names, signal_names[s], strlen(signal_names[s]), &plant->sig[s]);
        if (rc != 0) {
            return rc;
        }
    }
    int rc = mr_names_intern(names, "unit", 4, &plant->tag_unit);
    if (rc != 0) {
        return rc;
    }
    static const char *const kinds[3] = {"press", "weld", "paint"};
    for (uint32_t i = 0; i < DEMO_MACHINES; i++) {
        struct demo_machine *m = &plant->machines[i];
        snprintf(m->asset, sizeof(m->asset), "demo/assembly/line%u/%s%u", i / 3 + 1, kinds[i % 3],
                 i % 3 + 1);
        m->asset_len = (int32_t)strlen(m->asset);
        rc = mr_names_intern(names, m->asset, (size_t)m->asset_len, &m->asset_id);
        if (rc != 0) {
            return rc;
        }
        m->state = RUNNING;
        m->state_ticks = 600 + (int64_t)(uniform(plant) * 600);
        m->temp = 40.0 + 5.0 * i;
        m->vib = 1.2 + 0.1 * i;
        m->cycle_left_s = 3.0;
    }
    return 0;
}

/* PLC state machine: long RUNNING stretches, occasional IDLE/DOWN/SETUP, rare planned stops. */
static void step_state(struct demo_plant *p, struct demo_machine *m)
{
    if (--m->state_ticks > 0) {
        return;
    }
    double u = uniform(p);
    if (m->state != RUNNING) {
        m->state = RUNNING;
        m->state_ticks = 1200 + (int64_t)(uniform(p) * 2400);
    } else if (u < 0.5) {
        m->state = IDLE;
        m->state_ticks = 20 + (int64_t)(uniform(p) * 100);
    } else if (u < 0.8) {
        m->state = DOWN;
        m->state_ticks = 100 + (int64_t)(uniform(p) * 600);
    } else if (u < 0.95) {
        m->state = SETUP;
        m->state_ticks = 300 + (int64_t)(uniform(p) * 300);
    } else {
        m->state = PLANNED_STOP;
        m->state_ticks = 1800;
    }
}

static void step_physics(struct demo_plant *p, struct demo_machine *m, uint32_t i)
{
    const double dt = (double)DEMO_TICK_NS / 1e9;
    bool running = m->state == RUNNING;
    double target_kw = running ? 18.0 + 2.0 * i : (m->state == IDLE ? 3.5 : 0.8);
    m->kw += 0.2 * (target_kw - m->kw) + (uniform(p) - 0.5) * 0.4;
    if (m->kw < 0) {
        m->kw = 0;
    }
    m->kwh += m->kw * dt / 3600.0;
    double target_temp = running ? 65.0 + 3.0 * i : 35.0;
    m->temp += 0.01 * (target_temp - m->temp) + (uniform(p) - 0.5) * 0.05;
    m->vib = running ? 1.2 + 0.1 * i + (uniform(p) - 0.5) * 0.2 : 0.05 * uniform(p);
    if (running) {
        m->cycle_left_s -= dt;
        if (m->cycle_left_s <= 0) {
            m->parts++;
            m->cycle_left_s += 2.5 + 0.2 * i + uniform(p) * 0.5;
        }
    }
}

size_t demo_plant_tick(struct demo_plant *plant, struct mr_record *recs, uint32_t *machine_of,
                       size_t cap)
{
    plant->ticks++;
    plant->time_ns += DEMO_TICK_NS;
    size_t n = 0;
    for (uint32_t i = 0; i < DEMO_MACHINES && n + DEMO_SIGNALS <= cap; i++) {
        struct demo_machine *m = &plant->machines[i];
        step_state(plant, m);
        step_physics(plant, m, i);
        for (uint32_t s = 0; s < DEMO_SIGNALS; s++) {
            struct mr_record *r = &recs[n];
            memset(r, 0, offsetof(struct mr_record, tags));
            r->time_ns = plant->time_ns;
            r->asset = m->asset_id;
            r->signal = plant->sig[s];
            r->quality = MR_QUALITY_GOOD;
            switch (s) {
            case 0:
                r->type = MR_VALUE_STRING;
                r->v.str.ptr = state_names[m->state];
                r->v.str.len = (uint32_t)strlen(state_names[m->state]);
                break;
            case 1:
                r->type = MR_VALUE_I64;
                r->v.i64 = m->parts;
                break;
            default: {
                const double values[] = {0, 0, m->temp, m->kw, m->kwh, m->vib};
                r->type = MR_VALUE_F64;
                r->v.f64 = values[s];
                break;
            }
            }
            if (units[s][0] != '\0') {
                r->ntags = 1;
                r->tags[0].key = plant->tag_unit;
                r->tags[0].value.ptr = units[s];
                r->tags[0].value.len = (uint32_t)strlen(units[s]);
            }
            machine_of[n++] = i;
        }
    }
    return n;
}

void demo_plant_observe(struct demo_plant *plant, uint32_t machine, const struct mr_record *rec)
{
    struct demo_machine *m = &plant->machines[machine];
    if (rec->signal == plant->sig[0] && rec->type == MR_VALUE_STRING) {
        size_t n =
            rec->v.str.len < sizeof(m->last_state) - 1 ? rec->v.str.len : sizeof(m->last_state) - 1;
        memcpy(m->last_state, rec->v.str.ptr, n);
        m->last_state[n] = '\0';
    } else if (rec->signal == plant->sig[1] && rec->type == MR_VALUE_I64) {
        m->last_parts = rec->v.i64;
    } else if (rec->type == MR_VALUE_F64) {
        if (rec->signal == plant->sig[2]) {
            m->last_temp = rec->v.f64;
        } else if (rec->signal == plant->sig[3]) {
            m->last_kw = rec->v.f64;
        } else if (rec->signal == plant->sig[4]) {
            m->last_kwh = rec->v.f64;
        }
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void demo_remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
