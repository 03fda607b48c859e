/* Checkpoints of the `spc` operator. */
#include "analytics/spc.h"

#define STATE_VERSION 1

/* ---- checkpoints ----
 * Version 1: version, key count, then per key in first-seen order:
 *   asset name, signal name, phase | has_prev << 8, firing, nbase, nr, sub_n, nvalues,
 *   nrecent, bmean, rsum, prev, cl, sigma, splot, rbar, sub_sum, sub_min, sub_max, sub_t0,
 *   the history (8 masks, n, last), 16 recent points and their times, then the window:
 *   count, (value, time) oldest first;
 * then the machines: count, per machine its name, tokens, refill time, last adjust, last
 * halt, seen. A key whose characteristic is gone after a restart is kept uncharted. */
static void entry_put(const struct spc_entry *e, struct mr_state_writer *w)
{
    const uint64_t u[] = {(uint64_t)e->phase | (uint64_t)e->has_prev << 8,
                          e->firing,
                          e->nbase,
                          e->nr,
                          e->sub_n,
                          e->nvalues,
                          e->nrecent};
    const double d[] = {e->bmean, e->rsum, e->prev,    e->cl,      e->sigma,
                        e->splot, e->rbar, e->sub_sum, e->sub_min, e->sub_max};
    const struct mr_spc_hist *h = &e->hist;
    const uint64_t hm[] = {h->above, h->below, h->hi1,  h->lo1, h->hi2,
                           h->lo2,   h->up,    h->down, h->n};
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        mr_state_put_u64(w, u[i]);
    }
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
        mr_state_put_f64(w, d[i]);
    }
    mr_state_put_i64(w, e->sub_t0);
    for (size_t i = 0; i < sizeof(hm) / sizeof(hm[0]); i++) {
        mr_state_put_u64(w, hm[i]);
    }
    mr_state_put_f64(w, h->last);
    for (int i = 0; i < MR_SPC_RECENT; i++) {
        mr_state_put_f64(w, e->recent[i]);
        mr_state_put_i64(w, e->recent_t[i]);
    }
    uint32_t cap = e->ring_n;
    mr_state_put_u64(w, e->ring_n);
    for (uint32_t i = 0; i < e->ring_n; i++) {
        /* ring_n < capacity only before the ring wrapped, when ring_head is 0 */
        const struct spc_pt *p = &e->ring[(e->ring_head + i) % (cap > 0 ? cap : 1)];
        mr_state_put_f64(w, p->x);
        mr_state_put_i64(w, p->t);
    }
}

int mr_spc_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err)
{
    struct spc_ctx *c = ctx;
    uint32_t n = mr_op_keyed_count(&c->keyed);
    mr_op_state_begin(w, STATE_VERSION, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct spc_entry *e = mr_keymap_value_at(&c->keyed.keys, i);
        mr_op_keyed_put_key(&c->keyed, i, w);
        entry_put(e, w);
    }
    uint32_t nm = mr_keymap_count(&c->machines);
    mr_state_put_u64(w, nm);
    for (uint32_t i = 0; i < nm; i++) {
        const struct spc_machine *m = mr_keymap_value_at(&c->machines, i);
        mr_state_put_name(w, (mr_name_id)mr_keymap_key_at(&c->machines, i));
        mr_state_put_f64(w, m->tokens);
        mr_state_put_i64(w, m->refill_t);
        mr_state_put_i64(w, m->last[0]);
        mr_state_put_i64(w, m->last[1]);
        mr_state_put_u64(w, m->seen);
    }
    if (w->err != 0) {
        return MR_ERR_SET(err, w->err, "checkpoint: %s", mr_strerror(w->err));
    }
    return 0;
}

static int entry_get_state(struct spc_ctx *c, struct spc_entry *e, struct mr_state_reader *r)
{
    uint64_t u[7] = {0};
    for (size_t i = 0; i < 7; i++) {
        mr_state_get_u64(r, &u[i]);
    }
    e->phase = (uint8_t)u[0];
    e->has_prev = (uint8_t)(u[0] >> 8);
    e->firing = (uint32_t)u[1];
    e->nbase = (uint32_t)u[2];
    e->nr = (uint32_t)u[3];
    e->sub_n = (uint32_t)u[4];
    e->nvalues = u[5];
    e->nrecent = u[6];
    double *d[] = {&e->bmean, &e->rsum, &e->prev,    &e->cl,      &e->sigma,
                   &e->splot, &e->rbar, &e->sub_sum, &e->sub_min, &e->sub_max};
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
        mr_state_get_f64(r, d[i]);
    }
    mr_state_get_i64(r, &e->sub_t0);
    struct mr_spc_hist *h = &e->hist;
    uint32_t *hm[] = {&h->above, &h->below, &h->hi1,  &h->lo1, &h->hi2,
                      &h->lo2,   &h->up,    &h->down, &h->n};
    for (size_t i = 0; i < sizeof(hm) / sizeof(hm[0]); i++) {
        uint64_t v = 0;
        mr_state_get_u64(r, &v);
        *hm[i] = (uint32_t)v;
    }
    mr_state_get_f64(r, &h->last);
    for (int i = 0; i < MR_SPC_RECENT; i++) {
        mr_state_get_f64(r, &e->recent[i]);
        mr_state_get_i64(r, &e->recent_t[i]);
    }
    uint64_t n = 0;
    mr_state_get_u64(r, &n);
    if (r->err != 0 || e->phase > SPC_RUN || n > mr_state_remaining(r) / 16) {
        return MR_ECORRUPT;
    }
    uint32_t cap =
        e->charx != SPC_NO_CHAR ? (uint32_t)c->chars[e->charx].conf->capability_window : 0;
    e->ring_n = 0;
    e->ring_head = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct spc_pt p = {0};
        mr_state_get_f64(r, &p.x);
        mr_state_get_i64(r, &p.t);
        if (cap == 0) {
            continue;
        }
        /* a smaller window after a restart keeps the newest values */
        e->ring[(e->ring_head + e->ring_n) % cap] = p;
        if (e->ring_n < cap) {
            e->ring_n++;
        } else {
            e->ring_head = (e->ring_head + 1) % cap;
        }
    }
    return r->err != 0 ? MR_ECORRUPT : 0;
}

static int machines_restore(struct spc_ctx *c, struct mr_state_reader *r, struct mr_err *err)
{
    uint64_t n = 0;
    mr_state_get_u64(r, &n);
    for (uint64_t i = 0; i < n && r->err == 0; i++) {
        mr_name_id asset = 0;
        struct spc_machine m = {0};
        void *v = NULL;
        int inserted = 0;
        mr_state_get_name(r, &asset);
        mr_state_get_f64(r, &m.tokens);
        mr_state_get_i64(r, &m.refill_t);
        mr_state_get_i64(r, &m.last[0]);
        mr_state_get_i64(r, &m.last[1]);
        mr_state_get_u64(r, &m.seen);
        if (r->err == 0 && mr_keymap_upsert(&c->machines, asset, &v, &inserted) == 0) {
            memcpy(v, &m, sizeof(m));
        }
    }
    if (r->err != 0) {
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: truncated machine command state");
    }
    return 0;
}

int mr_spc_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err)
{
    struct spc_ctx *c = ctx;
    uint64_t n = 0;
    int rc = mr_op_state_open(r, STATE_VERSION, &n, err);
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        void *v = NULL;
        mr_name_id asset = 0;
        rc = mr_op_keyed_get_key(&c->keyed, r, &v, &asset, err);
        if (rc != 0) {
            break;
        }
        uint32_t last = mr_op_keyed_count(&c->keyed) - 1;
        mr_name_id signal = (mr_name_id)mr_keymap_key_at(&c->keyed.keys, last);
        rc = mr_spc_entry_setup(c, v, asset, signal);
        if (rc != 0) {
            rc = MR_ERR_SET(err, rc, "checkpoint: cannot restore a key: %s", mr_strerror(rc));
            break;
        }
        if (entry_get_state(c, v, r) != 0) {
            rc = MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: truncated or malformed entry %llu",
                            (unsigned long long)i);
        }
    }
    return rc == 0 ? machines_restore(c, r, err) : rc;
}
