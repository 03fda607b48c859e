/* Operator `supply`: checkpoints (snapshot and restore of every material and consuming
 * machine, names as strings). */
#include "analytics/supply_internal.h"

#define STATE_VERSION 1

/* Layout: version, material count, per material: name, level, level_t, rate, obs_t, obs_pending,
 * flags (have_level | have_rate << 8 | have_obs << 16 | src << 24 | risk << 32), nship, per
 * shipment eta, qty, id; then consumer count, per consumer: name, count, t, have, nlinks, per
 * link material name, qty. */
int supply_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err)
{
    struct supply_ctx *c = ctx;
    uint32_t n = mr_keymap_count(&c->materials);
    mr_op_state_begin(w, STATE_VERSION, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct supply_material *m = mr_keymap_value_at(&c->materials, i);
        mr_state_put_name(w, (mr_name_id)mr_keymap_key_at(&c->materials, i));
        mr_state_put_f64(w, m->level);
        mr_state_put_i64(w, m->level_t);
        mr_state_put_f64(w, m->rate);
        mr_state_put_i64(w, m->obs_t);
        mr_state_put_f64(w, m->obs_pending);
        mr_state_put_u64(w, (uint64_t)m->have_level | (uint64_t)m->have_rate << 8 |
                                (uint64_t)m->have_obs << 16 | (uint64_t)m->src << 24 |
                                (uint64_t)m->risk << 32);
        mr_state_put_u64(w, m->nship);
        for (uint32_t j = 0; j < m->nship; j++) {
            mr_state_put_i64(w, m->ship[j].eta);
            mr_state_put_f64(w, m->ship[j].qty);
            mr_state_put_u64(w, m->ship[j].id);
        }
    }
    uint32_t nk = mr_keymap_count(&c->consumers);
    mr_state_put_u64(w, nk);
    for (uint32_t i = 0; i < nk; i++) {
        const struct supply_consumer *k = mr_keymap_value_at(&c->consumers, i);
        mr_state_put_name(w, (mr_name_id)mr_keymap_key_at(&c->consumers, i));
        mr_state_put_i64(w, k->count);
        mr_state_put_i64(w, k->t);
        mr_state_put_u64(w, k->have);
        mr_state_put_u64(w, k->nlinks);
        for (uint32_t j = 0; j < k->nlinks; j++) {
            mr_state_put_name(w, k->link[j].material);
            mr_state_put_f64(w, k->link[j].qty);
        }
    }
    if (w->err != 0) {
        return MR_ERR_SET(err, w->err, "checkpoint: %s", mr_strerror(w->err));
    }
    return 0;
}

/* A fresh entry for a name read from the checkpoint; NULL when the name repeats or the map is
 * full. */
static void *restore_entry(struct mr_keymap *map, struct mr_state_reader *r)
{
    mr_name_id id = 0;
    void *v = NULL;
    int inserted = 0;
    if (mr_state_get_name(r, &id) != 0 || id == 0 ||
        mr_keymap_upsert(map, id, &v, &inserted) != 0 || !inserted) {
        return NULL;
    }
    return v;
}

static int restore_material(struct mr_state_reader *r, struct supply_material *m)
{
    uint64_t flags = 0, nship = 0;
    mr_state_get_f64(r, &m->level);
    mr_state_get_i64(r, &m->level_t);
    mr_state_get_f64(r, &m->rate);
    mr_state_get_i64(r, &m->obs_t);
    mr_state_get_f64(r, &m->obs_pending);
    mr_state_get_u64(r, &flags);
    mr_state_get_u64(r, &nship);
    if (r->err != 0 || nship > MR_SUPPLY_MAX_SHIPMENTS || (flags >> 24 & 0xff) > SRC_EVENTS) {
        return MR_ECORRUPT;
    }
    m->have_level = (uint8_t)(flags & 1);
    m->have_rate = (uint8_t)(flags >> 8 & 1);
    m->have_obs = (uint8_t)(flags >> 16 & 1);
    m->src = (uint8_t)(flags >> 24);
    m->risk = (uint8_t)(flags >> 32 & 3);
    m->nship = (uint32_t)nship;
    for (uint32_t j = 0; j < m->nship; j++) {
        mr_state_get_i64(r, &m->ship[j].eta);
        mr_state_get_f64(r, &m->ship[j].qty);
        mr_state_get_u64(r, &m->ship[j].id);
    }
    return r->err != 0 ? MR_ECORRUPT : 0;
}

static int restore_consumer(struct mr_state_reader *r, struct supply_consumer *k)
{
    uint64_t have = 0, nlinks = 0;
    mr_state_get_i64(r, &k->count);
    mr_state_get_i64(r, &k->t);
    mr_state_get_u64(r, &have);
    mr_state_get_u64(r, &nlinks);
    if (r->err != 0 || nlinks > SUPPLY_MAX_LINKS) {
        return MR_ECORRUPT;
    }
    k->have = have != 0;
    k->nlinks = (uint32_t)nlinks;
    for (uint32_t j = 0; j < k->nlinks; j++) {
        mr_state_get_name(r, &k->link[j].material);
        mr_state_get_f64(r, &k->link[j].qty);
    }
    return r->err != 0 ? MR_ECORRUPT : 0;
}

int supply_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err)
{
    struct supply_ctx *c = ctx;
    uint64_t n = 0, nk = 0;
    int rc = mr_op_state_open(r, STATE_VERSION, &n, err);
    if (rc != 0) {
        return rc;
    }
    for (uint64_t i = 0; i < n; i++) {
        struct supply_material *m = restore_entry(&c->materials, r);
        if (m == NULL || restore_material(r, m) != 0) {
            return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: bad material entry %llu",
                              (unsigned long long)i);
        }
    }
    mr_state_get_u64(r, &nk);
    for (uint64_t i = 0; i < nk && r->err == 0; i++) {
        struct supply_consumer *k = restore_entry(&c->consumers, r);
        if (k == NULL || restore_consumer(r, k) != 0) {
            return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: bad consumer entry %llu",
                              (unsigned long long)i);
        }
    }
    if (r->err != 0) {
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: truncated supply state");
    }
    return 0;
}
