/* Checkpoints of the energy operator (version 1), everything by asset name:
 *
 *   version, machine count, then per machine in first-seen order:
 *     asset, series, last_t, last_v, good_t, good_last, state_since,
 *     flags | prev_flags << 8 | idle_alerted << 16 | spiking << 24, idle_kwh,
 *     sp_mean, sp_var, sp_n
 *   parent count, then per line or site: asset, series, fc_next, the forecast steps
 *     (EN_SLOTS x EN_MAX_BINS f64)
 *   series = closed_until, day_s, day (kwh, cost, idle_kwh, good), peak_kw, peak_s,
 *            EN_SLOTS x (s, kwh, cost, idle_kwh, good)
 *
 * A machine's line, site and deferrable flag are derived again from the current config.
 */
#include <string.h>

#include "analytics/energy_internal.h"

#define STATE_VERSION 1

static void acc_put(struct mr_state_writer *w, const struct en_acc *a)
{
    mr_state_put_f64(w, a->kwh);
    mr_state_put_f64(w, a->cost);
    mr_state_put_f64(w, a->idle_kwh);
    mr_state_put_f64(w, a->good);
}

static void acc_get(struct mr_state_reader *r, struct en_acc *a)
{
    mr_state_get_f64(r, &a->kwh);
    mr_state_get_f64(r, &a->cost);
    mr_state_get_f64(r, &a->idle_kwh);
    mr_state_get_f64(r, &a->good);
}

static void series_put(struct mr_state_writer *w, const struct en_series *s)
{
    mr_state_put_i64(w, s->closed_until);
    mr_state_put_i64(w, s->day_s);
    acc_put(w, &s->day);
    mr_state_put_f64(w, s->peak_kw);
    mr_state_put_i64(w, s->peak_s);
    for (int k = 0; k < EN_SLOTS; k++) {
        mr_state_put_i64(w, s->slot[k].s);
        acc_put(w, &s->slot[k].acc);
    }
}

static void series_get(struct mr_state_reader *r, struct en_series *s)
{
    mr_state_get_i64(r, &s->closed_until);
    mr_state_get_i64(r, &s->day_s);
    acc_get(r, &s->day);
    mr_state_get_f64(r, &s->peak_kw);
    mr_state_get_i64(r, &s->peak_s);
    for (int k = 0; k < EN_SLOTS; k++) {
        mr_state_get_i64(r, &s->slot[k].s);
        acc_get(r, &s->slot[k].acc);
    }
}

int mr_energy_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err)
{
    struct en_ctx *c = ctx;
    uint32_t n = mr_keymap_count(&c->machines);
    mr_op_state_begin(w, STATE_VERSION, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct en_machine *m = mr_keymap_value_at(&c->machines, i);
        mr_state_put_name(w, (mr_name_id)mr_keymap_key_at(&c->machines, i));
        series_put(w, &m->ser);
        mr_state_put_i64(w, m->last_t);
        mr_state_put_f64(w, m->last_v);
        mr_state_put_i64(w, m->good_t);
        mr_state_put_i64(w, m->good_last);
        mr_state_put_i64(w, m->state_since);
        mr_state_put_u64(w, (uint64_t)m->flags | (uint64_t)m->prev_flags << 8 |
                                (uint64_t)m->idle_alerted << 16 | (uint64_t)m->spiking << 24);
        mr_state_put_f64(w, m->idle_kwh);
        mr_state_put_f64(w, m->sp_mean);
        mr_state_put_f64(w, m->sp_var);
        mr_state_put_u64(w, m->sp_n);
    }
    uint32_t np = mr_keymap_count(&c->parents);
    mr_state_put_u64(w, np);
    for (uint32_t i = 0; i < np; i++) {
        const struct en_parent *p = mr_keymap_value_at(&c->parents, i);
        mr_state_put_name(w, p->asset);
        series_put(w, &p->ser);
        mr_state_put_i64(w, p->fc_next);
        for (int k = 0; k < EN_SLOTS; k++) {
            for (int b = 0; b < EN_MAX_BINS; b++) {
                mr_state_put_f64(w, p->bins[k][b]);
            }
        }
    }
    if (w->err != 0) {
        return MR_ERR_SET(err, w->err, "checkpoint: %s", mr_strerror(w->err));
    }
    return 0;
}

static int machine_restore(struct en_ctx *c, struct mr_state_reader *r, uint64_t i,
                           struct mr_err *err)
{
    mr_name_id asset = 0;
    mr_state_get_name(r, &asset);
    if (r->err != 0 || asset == 0 || mr_keymap_find(&c->machines, asset) != NULL) {
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: bad or repeated machine %llu",
                          (unsigned long long)i);
    }
    struct en_machine *m = mr_energy_machine(c, asset);
    if (m == NULL) {
        return MR_ERR_SET(err, MR_ETOOBIG, "checkpoint: more machines than max_machines");
    }
    uint64_t bits = 0;
    series_get(r, &m->ser);
    mr_state_get_i64(r, &m->last_t);
    mr_state_get_f64(r, &m->last_v);
    mr_state_get_i64(r, &m->good_t);
    mr_state_get_i64(r, &m->good_last);
    mr_state_get_i64(r, &m->state_since);
    mr_state_get_u64(r, &bits);
    mr_state_get_f64(r, &m->idle_kwh);
    mr_state_get_f64(r, &m->sp_mean);
    mr_state_get_f64(r, &m->sp_var);
    mr_state_get_u64(r, &m->sp_n);
    m->flags = (uint8_t)bits;
    m->prev_flags = (uint8_t)(bits >> 8);
    m->idle_alerted = (uint8_t)(bits >> 16);
    m->spiking = (uint8_t)(bits >> 24);
    if (r->err != 0) {
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: truncated machine %llu",
                          (unsigned long long)i);
    }
    return 0;
}

static int parents_restore(struct en_ctx *c, struct mr_state_reader *r, struct mr_err *err)
{
    uint64_t n = 0;
    mr_state_get_u64(r, &n);
    for (uint64_t i = 0; i < n && r->err == 0; i++) {
        mr_name_id asset = 0;
        struct en_parent tmp;
        mr_state_get_name(r, &asset);
        series_get(r, &tmp.ser);
        mr_state_get_i64(r, &tmp.fc_next);
        for (int k = 0; k < EN_SLOTS; k++) {
            for (int b = 0; b < EN_MAX_BINS; b++) {
                mr_state_get_f64(r, &tmp.bins[k][b]);
            }
        }
        void *v = NULL;
        int inserted = 0;
        /* A parent no machine derives any more (config changed) is restored anyway: its
         * open intervals still get emitted. */
        if (r->err == 0 && asset != 0 && mr_keymap_upsert(&c->parents, asset, &v, &inserted) == 0) {
            tmp.asset = asset;
            memcpy(v, &tmp, sizeof(tmp));
        }
    }
    if (r->err != 0) {
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: truncated lines and sites");
    }
    return 0;
}

int mr_energy_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err)
{
    struct en_ctx *c = ctx;
    uint64_t n = 0;
    int rc = mr_op_state_open(r, STATE_VERSION, &n, err);
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        rc = machine_restore(c, r, i, err);
    }
    return rc == 0 ? parents_restore(c, r, err) : rc;
}
