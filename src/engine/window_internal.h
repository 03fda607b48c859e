/* Internals of the `window` operator (window.c: configuration, records, watermarks;
 * window_emit.c: firing, results and late updates; window_state.c: the window pool and
 * checkpoints). Not a plugin-facing header.
 *
 * State:
 *   keys    keymap key -> struct win_key {tail, live}: the key's windows (panes or
 *           sessions), a circular singly linked list of pool slots in ascending start order
 *           (the tail's next is the head, so one index reaches both ends). Key =
 *           asset << 32 | signal, with the part not keyed by set to 0. For panes, `live` is
 *           the first pane some window of which has not ended yet: the panes before it are
 *           only held for late records, so firing looks at [live, tail] and freeing stops at
 *           the first pane still held.
 *   assets  keymap asset -> struct win_asset {watermark, due, keys[]}: per-asset event time.
 *           `due` is at most the earliest deadline (fire or free) of any window of the asset's
 *           keys, so advance() returns in O(1) until something is due and then walks only that
 *           asset's keys. When not keyed by asset everything hangs off asset 0 (the pipeline's
 *           watermark).
 *   pool    fixed-size slots (struct win header + aggregate state) in chunks that never move,
 *           so a slot index stays valid; freed slots go on a free list. Hard cap: max_windows.
 * A tumbling window is one pane (pane = size); a hopping window of `size` every `hop` is the
 * merge of its size/pane panes, pane = gcd(size, hop). A session or count window is one slot.
 */
#ifndef MR_ENGINE_WINDOW_INTERNAL_H
#define MR_ENGINE_WINDOW_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/aggregate.h"
#include "engine/keymap.h"
#include "millrace/log.h"
#include "millrace/plugin.h"

enum win_kind { KIND_TUMBLING = 0, KIND_HOPPING = 1, KIND_SESSION = 2, KIND_COUNT = 3 };
enum win_late { LATE_DROP = 0, LATE_SIDE = 1, LATE_UPDATE = 2 };

struct window_conf {
    int kind; /* enum win_kind */
    int64_t size_ns;
    int64_t hop_ns;
    int64_t gap_ns;
    int64_t count;
    struct mr_strlist key_by;
    struct mr_strlist signals;
    struct mr_strlist aggregates;
    bool include_bad;
    int64_t lateness_ns;
    int late; /* enum win_late */
    char *late_topic;
    char *name;
    char *asset;
    int64_t max_keys;
    int64_t max_windows;
};

#define WIN_NIL UINT32_MAX

/* Window flags. */
#define WIN_FIRED 0x1u /* sessions: the result was emitted (panes: derived from the watermark) */
#define WIN_DIRTY 0x2u /* late: update changed it; re-emit at the end of the batch */

/* Header of every pool slot; the aggregate state follows at ctx->agg_off (after the optional
 * `skipped` counter). A pane with no samples (made only to hold a window's revision count)
 * keeps its start in t_min. */
struct win {
    uint32_t next;    /* next slot of the key's list, or WIN_NIL (also the free list) */
    uint16_t emitted; /* results emitted so far: the next one's revision */
    uint16_t flags;
    int64_t t_min;   /* earliest sample time */
    int64_t t_max;   /* latest sample time */
    int64_t max_gap; /* largest gap between consecutive sample times seen (an upper bound when
                        samples arrived out of order) */
    uint64_t bad;    /* bad-quality or non-finite samples */
};

/* Followed, with include_bad, by uint64_t skipped (samples left out: non-finite ones); without
 * it, every bad sample is left out, so skipped == bad and is not stored. */

struct win_key {
    uint32_t tail; /* WIN_NIL: no windows */
    uint32_t live; /* panes: first pane not held (WIN_NIL: all are); sessions: unused */
    uint64_t seq;  /* count windows: number of windows emitted (the window_seq tag); only
                      stored for kind: count */
};

struct win_asset {
    int64_t wm;  /* INT64_MIN until the first advance */
    int64_t due; /* <= earliest deadline of its windows; INT64_MAX when it has none */
    uint64_t *keys;
    uint32_t nkeys;
    uint32_t cap;
};

struct win_pool {
    uint8_t **chunks;
    uint32_t nchunks;
    uint32_t used;  /* live slots */
    uint32_t hw;    /* slots ever handed out (the rest of the chunks is untouched) */
    uint32_t total; /* slots allocated */
    uint32_t max;
    uint32_t free_head;
    size_t slot_size;
};

struct win_dirty {
    uint64_t key;
    uint32_t slot;
};

#define WIN_OUT_CAP     256
#define WIN_SCRATCH_CAP (WIN_OUT_CAP * 64)
#define WIN_TAGS        6

struct win_ctx {
    const struct window_conf *conf;
    struct mr_operator_host *host;
    struct mr_plugin_counters counters;
    struct mr_counter *late_count;   /* {policy=<configured>} */
    struct mr_counter *late_dropped; /* late: update, too late to update: {policy="drop"} */
    struct mr_gauge *state_bytes;
    struct mr_log_ratelimit rl_late;
    struct mr_log_ratelimit rl_err;
    int kind;
    int late;
    bool by_asset;
    bool by_signal;
    bool include_bad;
    bool track_revisions; /* late: update with allowed_lateness > 0 */
    int side_port;
    int64_t size, hop, pane, gap, lateness;
    uint64_t count;
    struct mr_agg_layout layout;
    enum mr_agg_kind aggs[MR_AGG_KINDS]; /* in the order configured */
    size_t naggs;
    size_t agg_off;
    struct mr_keymap keys;
    struct mr_keymap assets;
    struct win_asset *asset_cache; /* the last asset looked up (valid until an asset insert) */
    mr_name_id asset_cache_id;
    size_t key_lists_bytes;    /* the assets' key lists, for the state-size gauge */
    struct mr_keymap outnames; /* signal (0 when not keyed by signal) -> mr_name_id[naggs+1] */
    struct mr_keymap filter;   /* selected signals; empty: all */
    struct win_pool pool;
    mr_name_id tag_start, tag_samples, tag_gap, tag_bad, tag_rev, tag_seq;
    mr_name_id out_asset; /* when not keyed by asset */
    struct mr_record *out;
    size_t nout;
    char *scratch;
    size_t scratch_used;
    struct win_dirty *dirty;
    size_t ndirty;
    size_t dirty_cap;
    struct win *tmp; /* one slot for merging panes */
};

/* ---- window_state.c ---- */

int win_pool_init(struct win_pool *p, size_t slot_size, uint32_t max);
void win_pool_fini(struct win_pool *p);
/* A fresh slot (header zeroed, aggregate state reset), or WIN_NIL when the pool is full. */
uint32_t win_alloc(struct win_ctx *c);
void win_release(struct win_ctx *c, uint32_t idx);

static inline struct win *win_at(const struct win_ctx *c, uint32_t idx)
{
    return (struct win *)(void *)(c->pool.chunks[idx >> 10] +
                                  (size_t)(idx & 1023u) * c->pool.slot_size);
}

static inline void *win_agg(const struct win_ctx *c, struct win *w)
{
    return (char *)w + c->agg_off;
}

static inline uint64_t *win_skipped(struct win *w)
{
    return (uint64_t *)(void *)(w + 1);
}

/* Samples the window covered (included or not). */
static inline uint64_t win_samples(const struct win_ctx *c, struct win *w)
{
    return mr_agg_count(win_agg(c, w)) + (c->include_bad ? *win_skipped(w) : w->bad);
}

/* Floor division for times that may be negative. */
static inline int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static inline int64_t align_down(int64_t t, int64_t unit)
{
    return floor_div(t, unit) * unit;
}

/* Start of the pane a (non-empty or marker) pane slot stands for. */
static inline int64_t pane_start(const struct win_ctx *c, const struct win *w)
{
    return align_down(w->t_min, c->pane);
}

static inline int64_t floor_hop(const struct win_ctx *c, int64_t t)
{
    return align_down(t, c->hop);
}

/* Every window holding the pane starting at p ended by wm: it only waits for late records.
 * Monotonic in p, so held panes are a prefix of a key's list. */
static inline bool pane_held(const struct win_ctx *c, int64_t p, int64_t wm)
{
    return wm != INT64_MIN && floor_hop(c, p) + c->size <= wm;
}

/* First, next (WIN_NIL after the tail) window of a key's circular list. */
static inline uint32_t key_head(const struct win_ctx *c, const struct win_key *k)
{
    return k->tail == WIN_NIL ? WIN_NIL : win_at(c, k->tail)->next;
}

static inline uint32_t key_next(const struct win_ctx *c, const struct win_key *k, uint32_t idx)
{
    return idx == k->tail ? WIN_NIL : win_at(c, idx)->next;
}

/* Link slot idx into k's list after prev (WIN_NIL: at the front). */
void win_key_insert(struct win_ctx *c, struct win_key *k, uint32_t prev, uint32_t idx);
/* Unlink idx, whose predecessor is prev (WIN_NIL: idx is the head); the slot is not freed. */
void win_key_unlink(struct win_ctx *c, struct win_key *k, uint32_t prev, uint32_t idx);

/* dst += src: counts, times, gaps and aggregates. */
void win_merge(struct win_ctx *c, struct win *dst, struct win *src);
/* Reset a slot to an empty window (keeps `next`). */
void win_clear(struct win_ctx *c, struct win *w);

struct win_asset *win_asset_get(struct win_ctx *c, mr_name_id asset, int *rc);
/* Memory held by keys, assets, names and windows (the state-size gauge). */
size_t win_state_bytes(const struct win_ctx *c);
/* Add a new key to its asset's list. */
int win_asset_add_key(struct win_ctx *c, struct win_asset *a, uint64_t key);

int win_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err);
int win_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err);

/* ---- window_emit.c ---- */

/* Intern "<signal>.<aggregate>" for every configured aggregate (and count) once per signal. */
int win_names_ensure(struct win_ctx *c, mr_name_id signal, struct mr_err *err);

/* Emit a window's results (one record per aggregate) into the output buffer. */
int win_emit_result(struct win_ctx *c, uint64_t key, struct win *w, int64_t start, int64_t end,
                    unsigned revision, const uint64_t *seq);
int win_flush(struct win_ctx *c);
/* Fire and free what the watermark moving from wm0 to wm makes due for one key; *due gets the
 * key's next deadline. The key may be left without windows. */
int win_key_advance(struct win_ctx *c, uint64_t key, struct win_key *k, int64_t wm0, int64_t wm,
                    int64_t *due);
/* Remember that a fired window changed (late: update). */
int win_mark_dirty(struct win_ctx *c, uint64_t key, uint32_t slot);
/* Re-emit every dirty window. */
int win_flush_dirty(struct win_ctx *c);
/* Find the pane starting at p in the key's list, creating it (empty, start in t_min) when
 * absent; wm is the asset's watermark (for k->live). Returns WIN_NIL when the pool is full. */
uint32_t win_pane_get(struct win_ctx *c, struct win_key *k, int64_t p, int64_t wm);

#endif
