/* Per-asset event-time watermarks: see watermark.h. */
#include <string.h>

#include "engine/watermark.h"
#include "millrace/alloc.h"
#include "millrace/error.h"

void mr_wm_init(struct mr_watermarks *w, int64_t out_of_orderness_ns, int64_t idle_timeout_ns)
{
    memset(w, 0, sizeof(*w));
    w->out_of_orderness = out_of_orderness_ns;
    w->idle_timeout = idle_timeout_ns;
    w->global_sent = MR_WM_NONE;
}

void mr_wm_fini(struct mr_watermarks *w)
{
    mr_free(w->src);
    mr_free(w->sources);
    mr_free(w->dirty);
    memset(w, 0, sizeof(*w));
}

static int grow_ids(mr_name_id **a, size_t *cap, size_t need)
{
    if (need <= *cap) {
        return 0;
    }
    size_t n = *cap != 0 ? *cap * 2 : 64;
    while (n < need) {
        n *= 2;
    }
    mr_name_id *na = mr_realloc(*a, n * sizeof(mr_name_id));
    if (na == NULL) {
        return MR_ENOMEM;
    }
    *a = na;
    *cap = n;
    return 0;
}

static struct mr_wm_source *source(struct mr_watermarks *w, mr_name_id asset)
{
    if (asset >= w->cap) {
        size_t n = w->cap != 0 ? w->cap * 2 : 256;
        while (n <= asset) {
            n *= 2;
        }
        struct mr_wm_source *ns = mr_realloc(w->src, n * sizeof(*ns));
        if (ns == NULL) {
            return NULL;
        }
        for (size_t i = w->cap; i < n; i++) {
            ns[i] = (struct mr_wm_source){.newest = MR_WM_NONE, .sent = MR_WM_NONE};
        }
        w->src = ns;
        w->cap = n;
    }
    struct mr_wm_source *s = &w->src[asset];
    if (!s->known) {
        if (grow_ids(&w->sources, &w->sources_cap, w->nsources + 1) != 0 ||
            grow_ids(&w->dirty, &w->dirty_cap, w->nsources + 1) != 0) {
            return NULL;
        }
        w->sources[w->nsources++] = asset;
        s->known = true;
    }
    return s;
}

int mr_wm_observe(struct mr_watermarks *w, mr_name_id asset, int64_t t, int64_t now)
{
    struct mr_wm_source *s = source(w, asset);
    if (s == NULL) {
        return MR_ENOMEM;
    }
    s->last_wall = now;
    s->idle = false;
    if (t > s->newest) {
        s->newest = t;
        if (!s->dirty) {
            s->dirty = true;
            w->dirty[w->ndirty++] = asset; /* dirty has room for every source */
        }
    }
    return 0;
}

static int64_t sub_sat(int64_t a, int64_t b)
{
    return a < INT64_MIN + b ? INT64_MIN + 1 : a - b;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t source_watermark(const struct mr_watermarks *w, const struct mr_wm_source *s)
{
    if (s->newest == MR_WM_NONE) {
        return MR_WM_NONE;
    }
    return s->idle ? add_sat(s->newest, w->idle_timeout) : sub_sat(s->newest, w->out_of_orderness);
}

static int send(struct mr_watermarks *w, mr_name_id asset, struct mr_wm_source *s,
                mr_wm_advance_cb cb, void *arg)
{
    (void)w;
    int64_t wm = source_watermark(w, s);
    if (wm == MR_WM_NONE || (s->sent != MR_WM_NONE && wm <= s->sent)) {
        return 0;
    }
    s->sent = wm;
    return cb(arg, asset, wm);
}

int mr_wm_collect(struct mr_watermarks *w, int64_t now, bool check_idle, mr_wm_advance_cb cb,
                  void *arg)
{
    int rc = 0;
    size_t i = 0;
    /* The global watermark is a minimum over every source: recomputing it is O(sources), so it
     * is done only when it can have moved: a source at or below it moved (or is new), or an
     * idle check ran. With 100k assets this keeps collect O(moved sources). */
    bool recompute = check_idle || w->global_sent == MR_WM_NONE;
    for (; i < w->ndirty && rc == 0; i++) {
        struct mr_wm_source *s = &w->src[w->dirty[i]];
        s->dirty = false;
        if (s->sent == MR_WM_NONE || s->sent <= w->global_sent) {
            recompute = true;
        }
        rc = send(w, w->dirty[i], s, cb, arg);
    }
    /* On error keep the unsent ones for the next call. */
    if (i > 0 && i < w->ndirty) {
        memmove(w->dirty, w->dirty + i, (w->ndirty - i) * sizeof(mr_name_id));
    }
    w->ndirty -= i;
    if (rc != 0) {
        return rc;
    }
    if (check_idle) {
        for (size_t k = 0; k < w->nsources && rc == 0; k++) {
            struct mr_wm_source *s = &w->src[w->sources[k]];
            if (!s->idle && s->newest != MR_WM_NONE && now - s->last_wall >= w->idle_timeout) {
                s->idle = true;
                rc = send(w, w->sources[k], s, cb, arg);
            }
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (!recompute) {
        return 0;
    }
    int64_t lo = INT64_MAX, hi = MR_WM_NONE;
    bool any_active = false;
    for (size_t k = 0; k < w->nsources; k++) {
        const struct mr_wm_source *s = &w->src[w->sources[k]];
        if (s->sent == MR_WM_NONE) {
            if (!s->idle) {
                return 0; /* an active source without a watermark yet holds everything */
            }
            continue;
        }
        if (!s->idle) {
            any_active = true;
            lo = s->sent < lo ? s->sent : lo;
        }
        hi = s->sent > hi ? s->sent : hi;
    }
    int64_t global = any_active ? lo : hi;
    if (global != MR_WM_NONE && global != INT64_MAX &&
        (w->global_sent == MR_WM_NONE || global > w->global_sent)) {
        w->global_sent = global;
        return cb(arg, 0, global);
    }
    return 0;
}

int mr_wm_finish(struct mr_watermarks *w, mr_wm_advance_cb cb, void *arg)
{
    int rc = 0;
    for (size_t k = 0; k < w->nsources && rc == 0; k++) {
        struct mr_wm_source *s = &w->src[w->sources[k]];
        if (s->sent != MR_WM_END) {
            s->sent = MR_WM_END;
            rc = cb(arg, w->sources[k], MR_WM_END);
        }
    }
    if (rc == 0 && w->global_sent != MR_WM_END) {
        w->global_sent = MR_WM_END;
        rc = cb(arg, 0, MR_WM_END);
    }
    return rc;
}

int mr_wm_snapshot(const struct mr_watermarks *w, struct mr_state_writer *out)
{
    mr_state_put_u64(out, w->nsources);
    for (size_t k = 0; k < w->nsources; k++) {
        const struct mr_wm_source *s = &w->src[w->sources[k]];
        mr_state_put_name(out, w->sources[k]);
        mr_state_put_i64(out, s->newest);
        mr_state_put_i64(out, s->sent);
        mr_state_put_u64(out, s->idle);
    }
    return mr_state_put_i64(out, w->global_sent);
}

int mr_wm_restore(struct mr_watermarks *w, struct mr_state_reader *in, int64_t now)
{
    uint64_t n = 0;
    mr_state_get_u64(in, &n);
    for (uint64_t k = 0; k < n && in->err == 0; k++) {
        mr_name_id asset = 0;
        int64_t newest = 0, sent = 0;
        uint64_t idle = 0;
        mr_state_get_name(in, &asset);
        mr_state_get_i64(in, &newest);
        mr_state_get_i64(in, &sent);
        mr_state_get_u64(in, &idle);
        if (in->err != 0 || asset == 0) {
            return in->err != 0 ? in->err : MR_ECORRUPT;
        }
        struct mr_wm_source *s = source(w, asset);
        if (s == NULL) {
            return MR_ENOMEM;
        }
        s->newest = newest;
        s->sent = sent;
        s->idle = idle != 0;
        s->last_wall = now;
    }
    mr_state_get_i64(in, &w->global_sent);
    return in->err;
}
