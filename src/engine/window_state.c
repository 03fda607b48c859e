/* The window operator's state: the slot pool, per-asset key lists, merging windows, and
 * checkpoints (see window_internal.h for the structures).
 *
 * Checkpoint layout (millrace/state.h words, names as strings):
 *
 *   u64 version (1)
 *   u64 kind, size, hop, gap, count, aggregate mask, include_bad    must match the config
 *   u64 number of assets
 *   per asset:  name asset, i64 watermark, u64 number of keys
 *     per key (in the asset's list order):
 *                name asset part, name signal part, u64 seq, u64 number of windows
 *       per window (in list order):
 *                u64 emitted | flags << 16, i64 t_min, i64 t_max, i64 max_gap, u64 bad,
 *                [u64 skipped, with include_bad], aggregate state (mr_agg_snapshot)
 *
 * Restoring rebuilds the same lists in the same order, so later output is identical; each
 * asset's `due` is set to "now" so the next advance recomputes it. */
#include <string.h>

#include "engine/window_internal.h"
#include "millrace/alloc.h"
#include "millrace/error.h"
#include "millrace/state.h"

#define CHUNK_SLOTS  1024u
#define SNAP_VERSION 1u

int win_pool_init(struct win_pool *p, size_t slot_size, uint32_t max)
{
    memset(p, 0, sizeof(*p));
    p->slot_size = slot_size;
    p->max = max;
    p->free_head = WIN_NIL;
    uint32_t nchunks = (max + CHUNK_SLOTS - 1) / CHUNK_SLOTS;
    p->chunks = mr_calloc(nchunks, sizeof(*p->chunks));
    return p->chunks == NULL ? MR_ENOMEM : 0;
}

void win_pool_fini(struct win_pool *p)
{
    for (uint32_t i = 0; p->chunks != NULL && i < p->nchunks; i++) {
        mr_free(p->chunks[i]);
    }
    mr_free(p->chunks);
    memset(p, 0, sizeof(*p));
}

static int pool_grow(struct win_pool *p)
{
    if (p->total >= p->max) {
        return MR_ETOOBIG;
    }
    uint32_t n = p->max - p->total < CHUNK_SLOTS ? p->max - p->total : CHUNK_SLOTS;
    uint8_t *chunk = mr_malloc((size_t)n * p->slot_size);
    if (chunk == NULL) {
        return MR_ENOMEM;
    }
    p->chunks[p->nchunks++] = chunk;
    p->total += n;
    return 0;
}

void win_clear(struct win_ctx *c, struct win *w)
{
    uint32_t next = w->next;
    memset(w, 0, c->agg_off);
    w->next = next;
    mr_agg_reset(&c->layout, win_agg(c, w));
}

uint32_t win_alloc(struct win_ctx *c)
{
    struct win_pool *p = &c->pool;
    uint32_t idx;
    if (p->free_head != WIN_NIL) {
        idx = p->free_head;
        p->free_head = win_at(c, idx)->next;
    } else {
        if (p->hw == p->total && pool_grow(p) != 0) {
            return WIN_NIL;
        }
        idx = p->hw++;
    }
    p->used++;
    struct win *w = win_at(c, idx);
    w->next = WIN_NIL;
    win_clear(c, w);
    return idx;
}

void win_release(struct win_ctx *c, uint32_t idx)
{
    struct win *w = win_at(c, idx);
    w->next = c->pool.free_head;
    c->pool.free_head = idx;
    c->pool.used--;
}

void win_key_insert(struct win_ctx *c, struct win_key *k, uint32_t prev, uint32_t idx)
{
    struct win *w = win_at(c, idx);
    if (k->tail == WIN_NIL) {
        w->next = idx;
        k->tail = idx;
        return;
    }
    struct win *p = win_at(c, prev == WIN_NIL ? k->tail : prev); /* the head follows the tail */
    w->next = p->next;
    p->next = idx;
    if (prev == k->tail) {
        k->tail = idx;
    }
}

void win_key_unlink(struct win_ctx *c, struct win_key *k, uint32_t prev, uint32_t idx)
{
    struct win *w = win_at(c, idx);
    if (k->live == idx) {
        k->live = key_next(c, k, idx);
    }
    if (w->next == idx) {
        k->tail = WIN_NIL; /* it was the only one */
        return;
    }
    uint32_t p = prev == WIN_NIL ? k->tail : prev;
    win_at(c, p)->next = w->next;
    if (k->tail == idx) {
        k->tail = p;
    }
}

void win_merge(struct win_ctx *c, struct win *dst, struct win *src)
{
    uint64_t ns = win_samples(c, src);
    if (ns == 0) {
        return;
    }
    if (win_samples(c, dst) == 0) {
        dst->t_min = src->t_min;
        dst->t_max = src->t_max;
        dst->max_gap = src->max_gap;
    } else {
        /* Between the two runs; overlapping runs add no gap larger than their own. */
        int64_t between = 0;
        if (src->t_min >= dst->t_max) {
            between = src->t_min - dst->t_max;
        } else if (src->t_max <= dst->t_min) {
            between = dst->t_min - src->t_max;
        }
        int64_t g = src->max_gap > between ? src->max_gap : between;
        dst->max_gap = g > dst->max_gap ? g : dst->max_gap;
        dst->t_min = src->t_min < dst->t_min ? src->t_min : dst->t_min;
        dst->t_max = src->t_max > dst->t_max ? src->t_max : dst->t_max;
    }
    dst->bad += src->bad;
    if (c->include_bad) {
        *win_skipped(dst) += *win_skipped(src);
    }
    mr_agg_merge(&c->layout, win_agg(c, dst), win_agg(c, src));
}

struct win_asset *win_asset_get(struct win_ctx *c, mr_name_id asset, int *rc)
{
    *rc = 0;
    if (c->asset_cache != NULL && c->asset_cache_id == asset) {
        return c->asset_cache; /* batches mostly hold runs of one asset */
    }
    void *v;
    int inserted;
    *rc = mr_keymap_upsert(&c->assets, asset, &v, &inserted);
    if (*rc != 0) {
        return NULL;
    }
    struct win_asset *a = v;
    if (inserted) {
        a->wm = INT64_MIN;
        a->due = INT64_MAX;
    }
    /* An insert may have moved every entry: only this pointer is known good now. */
    c->asset_cache = a;
    c->asset_cache_id = asset;
    return a;
}

size_t win_state_bytes(const struct win_ctx *c)
{
    return mr_keymap_memory(&c->keys) + mr_keymap_memory(&c->assets) +
           mr_keymap_memory(&c->outnames) + (size_t)c->pool.total * c->pool.slot_size +
           c->key_lists_bytes;
}

int win_asset_add_key(struct win_ctx *c, struct win_asset *a, uint64_t key)
{
    if (a->nkeys == a->cap) {
        uint32_t cap = a->cap != 0 ? a->cap * 2 : 8;
        if (cap > c->keys.max) {
            cap = c->keys.max;
        }
        if (cap <= a->nkeys) {
            return MR_ETOOBIG;
        }
        uint64_t *keys = mr_realloc(a->keys, (size_t)cap * sizeof(*keys));
        if (keys == NULL) {
            return MR_ENOMEM;
        }
        c->key_lists_bytes += (size_t)(cap - a->cap) * sizeof(*keys);
        a->keys = keys;
        a->cap = cap;
    }
    a->keys[a->nkeys++] = key;
    return 0;
}

/* ---- checkpoints ---- */

static void put_fingerprint(struct win_ctx *c, struct mr_state_writer *w)
{
    mr_state_put_u64(w, (uint64_t)c->kind);
    mr_state_put_i64(w, c->size);
    mr_state_put_i64(w, c->hop);
    mr_state_put_i64(w, c->gap);
    mr_state_put_u64(w, c->count);
    mr_state_put_u64(w, c->layout.kinds);
    mr_state_put_u64(w, c->include_bad ? 1 : 0);
}

static int put_window(struct win_ctx *c, struct win *win, struct mr_state_writer *w)
{
    mr_state_put_u64(w, (uint64_t)win->emitted | (uint64_t)(win->flags & ~WIN_DIRTY) << 16);
    mr_state_put_i64(w, win->t_min);
    mr_state_put_i64(w, win->t_max);
    mr_state_put_i64(w, win->max_gap);
    mr_state_put_u64(w, win->bad);
    if (c->include_bad) {
        mr_state_put_u64(w, *win_skipped(win));
    }
    return mr_agg_snapshot(&c->layout, win_agg(c, win), w);
}

int win_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err)
{
    struct win_ctx *c = ctx;
    mr_state_put_u64(w, SNAP_VERSION);
    put_fingerprint(c, w);
    mr_state_put_u64(w, mr_keymap_count(&c->assets));
    for (uint32_t i = 0; i < mr_keymap_count(&c->assets); i++) {
        const struct win_asset *a = mr_keymap_value_at(&c->assets, i);
        mr_state_put_name(w, (mr_name_id)mr_keymap_key_at(&c->assets, i));
        mr_state_put_i64(w, a->wm);
        mr_state_put_u64(w, a->nkeys);
        for (uint32_t j = 0; j < a->nkeys; j++) {
            uint64_t key = a->keys[j];
            const struct win_key *k = mr_keymap_find(&c->keys, key);
            uint64_t nwin = 0;
            for (uint32_t x = k != NULL ? key_head(c, k) : WIN_NIL; x != WIN_NIL;
                 x = key_next(c, k, x)) {
                nwin++;
            }
            mr_state_put_name(w, (mr_name_id)(key >> 32));
            mr_state_put_name(w, (mr_name_id)key);
            mr_state_put_u64(w, c->kind == KIND_COUNT && k != NULL ? k->seq : 0);
            mr_state_put_u64(w, nwin);
            for (uint32_t x = k != NULL ? key_head(c, k) : WIN_NIL; x != WIN_NIL;
                 x = key_next(c, k, x)) {
                put_window(c, win_at(c, x), w);
            }
        }
    }
    if (w->err != 0) {
        return MR_ERR_SET(err, w->err, "window state snapshot failed: %s", mr_strerror(w->err));
    }
    return 0;
}

static int check_fingerprint(struct win_ctx *c, struct mr_state_reader *r, struct mr_err *err)
{
    uint64_t v[7] = {0};
    for (size_t i = 0; i < 7; i++) {
        mr_state_get_u64(r, &v[i]);
    }
    if (r->err != 0) {
        return MR_ERR_SET(err, r->err, "window checkpoint is truncated");
    }
    if (v[0] != (uint64_t)c->kind || (int64_t)v[1] != c->size || (int64_t)v[2] != c->hop ||
        (int64_t)v[3] != c->gap || v[4] != c->count || v[5] != c->layout.kinds ||
        v[6] != (c->include_bad ? 1u : 0u)) {
        return MR_ERR_SET(err, MR_EINVAL,
                          "the window checkpoint was written with a different kind, size, hop, "
                          "gap, count, aggregates or include_bad: it cannot be restored");
    }
    return 0;
}

static int get_window(struct win_ctx *c, struct win_key *k, struct mr_state_reader *r)
{
    uint64_t word = 0;
    uint32_t idx = win_alloc(c);
    if (idx == WIN_NIL) {
        return MR_ETOOBIG;
    }
    struct win *win = win_at(c, idx);
    mr_state_get_u64(r, &word);
    win->emitted = (uint16_t)word;
    win->flags = (uint16_t)(word >> 16) & WIN_FIRED;
    mr_state_get_i64(r, &win->t_min);
    mr_state_get_i64(r, &win->t_max);
    mr_state_get_i64(r, &win->max_gap);
    mr_state_get_u64(r, &win->bad);
    if (c->include_bad) {
        mr_state_get_u64(r, win_skipped(win));
    }
    mr_agg_restore(&c->layout, win_agg(c, win), r);
    win_key_insert(c, k, k->tail, idx);
    return r->err;
}

static int get_key(struct win_ctx *c, struct win_asset *a, struct mr_state_reader *r,
                   struct mr_err *err)
{
    mr_name_id ap = 0;
    mr_name_id sp = 0;
    uint64_t seq = 0;
    uint64_t nwin = 0;
    mr_state_get_name(r, &ap);
    mr_state_get_name(r, &sp);
    mr_state_get_u64(r, &seq);
    mr_state_get_u64(r, &nwin);
    if (r->err != 0 || (ap != 0) != c->by_asset || (sp != 0) != c->by_signal) {
        return MR_ERR_SET(err, MR_ECORRUPT, "window checkpoint: malformed key");
    }
    uint64_t key = (uint64_t)ap << 32 | sp;
    void *v;
    int inserted = 0;
    int rc = mr_keymap_upsert(&c->keys, key, &v, &inserted);
    if (rc == 0 && !inserted) {
        rc = MR_ECORRUPT;
    }
    if (rc == 0) {
        rc = win_asset_add_key(c, a, key);
    }
    if (rc == 0) {
        rc = win_names_ensure(c, sp, err);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "window checkpoint: cannot restore a key: %s", mr_strerror(rc));
    }
    struct win_key *k = v;
    k->tail = k->live = WIN_NIL;
    if (c->kind == KIND_COUNT) {
        k->seq = seq;
    }
    for (uint64_t i = 0; i < nwin; i++) {
        rc = get_window(c, k, r);
        if (rc != 0) {
            return MR_ERR_SET(err, rc, "window checkpoint: cannot restore a window: %s",
                              mr_strerror(rc));
        }
    }
    if (c->kind == KIND_TUMBLING || c->kind == KIND_HOPPING) {
        k->live = key_head(c, k);
        while (k->live != WIN_NIL && pane_held(c, pane_start(c, win_at(c, k->live)), a->wm)) {
            k->live = key_next(c, k, k->live);
        }
    }
    return 0;
}

int win_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err)
{
    struct win_ctx *c = ctx;
    uint64_t version = 0;
    uint64_t nassets = 0;
    mr_state_get_u64(r, &version);
    if (r->err == 0 && version != SNAP_VERSION) {
        return MR_ERR_SET(err, MR_ECORRUPT, "window checkpoint version %llu is not supported",
                          (unsigned long long)version);
    }
    int rc = check_fingerprint(c, r, err);
    if (rc != 0) {
        return rc;
    }
    mr_state_get_u64(r, &nassets);
    for (uint64_t i = 0; i < nassets && r->err == 0; i++) {
        mr_name_id asset = 0;
        int64_t wm = 0;
        uint64_t nkeys = 0;
        mr_state_get_name(r, &asset);
        mr_state_get_i64(r, &wm);
        mr_state_get_u64(r, &nkeys);
        if (r->err != 0) {
            break;
        }
        struct win_asset *a = win_asset_get(c, asset, &rc);
        if (a == NULL) {
            return MR_ERR_SET(err, rc, "window checkpoint: cannot restore an asset: %s",
                              mr_strerror(rc));
        }
        a->wm = wm;
        a->due = INT64_MIN; /* recomputed by the next advance */
        for (uint64_t j = 0; j < nkeys; j++) {
            rc = get_key(c, a, r, err);
            if (rc != 0) {
                return rc;
            }
        }
    }
    if (r->err != 0) {
        return MR_ERR_SET(err, r->err, "window checkpoint is truncated or malformed");
    }
    return 0;
}
