/* The window operator's results: firing windows as the watermark passes, freeing them after
 * allowed_lateness, re-emitting windows corrected by late records, and building the result
 * records (see window.c for the semantics). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/window_internal.h"
#include "millrace/alloc.h"
#include "millrace/error.h"

#define DIRTY_MAX       65536u
#define NAME_MAX_LEN    512
#define REVISION_MAX    UINT16_MAX
#define WINDOW_TAG_ROOM 160 /* scratch bytes one window's tag values may take */

/* ---- derived signal names ---- */

int win_names_ensure(struct win_ctx *c, mr_name_id signal, struct mr_err *err)
{
    void *v;
    int inserted;
    int rc = mr_keymap_upsert(&c->outnames, signal, &v, &inserted);
    if (rc != 0 || !inserted) {
        return rc != 0 ? MR_ERR_SET(err, rc, "too many signals: %s", mr_strerror(rc)) : 0;
    }
    mr_name_id *ids = v;
    size_t blen = 0;
    const char *base = signal != 0 ? mr_names_str(c->host->names, signal, &blen) : c->conf->name;
    if (base == NULL) {
        rc = MR_ERR_SET(err, MR_EINVAL, "unknown signal id %u", (unsigned)signal);
        goto fail;
    }
    blen = strlen(base);
    for (size_t i = 0; i <= c->naggs; i++) {
        enum mr_agg_kind k = i < c->naggs ? c->aggs[i] : MR_AGG_COUNT;
        char buf[NAME_MAX_LEN];
        int n = snprintf(buf, sizeof(buf), "%s.%s", base, mr_agg_name(k));
        if (n < 0 || (size_t)n >= sizeof(buf)) {
            rc = MR_ERR_SET(err, MR_ETOOBIG, "signal name too long for a derived name: %.40s...",
                            base);
            goto fail;
        }
        rc = mr_names_intern(c->host->names, buf, (size_t)n, &ids[i]);
        if (rc != 0) {
            MR_ERR_SET(err, rc, "cannot intern %s: %s", buf, mr_strerror(rc));
            goto fail;
        }
    }
    return 0;
fail:
    mr_keymap_remove(&c->outnames, signal);
    return rc;
}

/* ---- result records ---- */

int win_flush(struct win_ctx *c)
{
    int rc = 0;
    if (c->nout > 0) {
        rc = c->host->emit(c->host, c->out, c->nout);
        if (rc == 0) {
            mr_counter_add(c->counters.records_out, c->nout);
        }
    }
    c->nout = 0;
    c->scratch_used = 0;
    return rc;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static struct mr_bytes
scratch_fmt(struct win_ctx *c, const char *fmt, ...)
{
    char *at = c->scratch + c->scratch_used;
    size_t room = WIN_SCRATCH_CAP - c->scratch_used;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(at, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        n = 0; /* cannot happen: win_emit_result reserved WINDOW_TAG_ROOM */
    }
    c->scratch_used += (size_t)n;
    return (struct mr_bytes){.ptr = at, .len = (uint32_t)n};
}

/* Decimal digits of v into the scratch buffer: integers are most tag values, and snprintf
 * would be most of the cost of emitting a window. */
static struct mr_bytes scratch_int(struct win_ctx *c, int64_t v)
{
    char digits[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    char *at = c->scratch + c->scratch_used;
    size_t len = 0;
    if (v < 0) {
        at[len++] = '-';
    }
    while (n > 0) {
        at[len++] = digits[--n];
    }
    c->scratch_used += len;
    return (struct mr_bytes){.ptr = at, .len = (uint32_t)len};
}

/* Milliseconds with up to 6 decimals and no trailing zeros: "1500", "12.5", "0.000001". */
static struct mr_bytes fmt_ms(struct win_ctx *c, int64_t ns)
{
    int64_t ms = ns / 1000000;
    int64_t frac = ns % 1000000;
    if (frac == 0) {
        return scratch_int(c, ms);
    }
    char digits[8];
    snprintf(digits, sizeof(digits), "%06" PRId64, frac);
    size_t len = 6;
    while (len > 0 && digits[len - 1] == '0') {
        len--;
    }
    return scratch_fmt(c, "%" PRId64 ".%.*s", ms, (int)len, digits);
}

/* Fill the tags every result of one window shares; returns how many. */
static uint16_t window_tags(struct win_ctx *c, struct win *w, int64_t start, unsigned revision,
                            const uint64_t *seq, struct mr_tag *tags)
{
    uint64_t samples = win_samples(c, w);
    uint16_t n = 0;
    tags[n++] = (struct mr_tag){c->tag_start, scratch_int(c, start)};
    tags[n++] = (struct mr_tag){c->tag_samples, scratch_int(c, (int64_t)samples)};
    tags[n++] = (struct mr_tag){c->tag_gap, fmt_ms(c, samples > 1 ? w->max_gap : 0)};
    struct mr_bytes share =
        w->bad == 0 ? scratch_int(c, 0) : scratch_fmt(c, "%.6g", (double)w->bad / (double)samples);
    tags[n++] = (struct mr_tag){c->tag_bad, share};
    if (revision > 0) {
        tags[n++] = (struct mr_tag){c->tag_rev, scratch_int(c, revision)};
    }
    if (seq != NULL) {
        tags[n++] = (struct mr_tag){c->tag_seq, scratch_int(c, (int64_t)*seq)};
    }
    return n;
}

int win_emit_result(struct win_ctx *c, uint64_t key, struct win *w, int64_t start, int64_t end,
                    unsigned revision, const uint64_t *seq)
{
    if (c->nout + c->naggs + 1 > WIN_OUT_CAP ||
        c->scratch_used + WINDOW_TAG_ROOM > WIN_SCRATCH_CAP) {
        int rc = win_flush(c);
        if (rc != 0) {
            return rc;
        }
    }
    const mr_name_id *names = mr_keymap_find(&c->outnames, c->by_signal ? (uint32_t)key : 0);
    if (names == NULL) {
        return MR_EINVAL; /* names are made with the key */
    }
    struct mr_record proto;
    memset(&proto, 0, sizeof(proto));
    proto.time_ns = end;
    proto.asset = c->by_asset ? (mr_name_id)(key >> 32) : c->out_asset;
    proto.ntags = window_tags(c, w, start, revision, seq, proto.tags);
    void *agg = win_agg(c, w);
    uint64_t n = mr_agg_count(agg);
    if (n == 0) {
        /* Every sample was bad: only a count of 0, marked bad. */
        struct mr_record *r = &c->out[c->nout++];
        *r = proto;
        r->signal = names[c->naggs];
        r->type = MR_VALUE_I64;
        r->quality = MR_QUALITY_BAD;
        r->v.i64 = 0;
        return 0;
    }
    uint8_t quality = c->include_bad && w->bad > 0 ? MR_QUALITY_UNCERTAIN : MR_QUALITY_GOOD;
    for (size_t i = 0; i < c->naggs; i++) {
        double v;
        if (mr_agg_result(&c->layout, agg, c->aggs[i], &v) != 0) {
            continue; /* undefined here (stddev of one sample, rate over no time) */
        }
        struct mr_record *r = &c->out[c->nout++];
        *r = proto;
        r->signal = names[i];
        r->quality = quality;
        if (c->aggs[i] == MR_AGG_COUNT) {
            r->type = MR_VALUE_I64;
            r->v.i64 = (int64_t)n;
        } else {
            r->type = MR_VALUE_F64;
            r->v.f64 = v;
        }
    }
    return 0;
}

/* ---- panes (tumbling and hopping) ---- */

static inline int64_t ceil_hop(const struct win_ctx *c, int64_t t)
{
    return -align_down(-t, c->hop);
}

static inline int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static inline int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

uint32_t win_pane_get(struct win_ctx *c, struct win_key *k, int64_t p, int64_t wm)
{
    uint32_t prev = WIN_NIL;
    uint32_t idx = key_head(c, k);
    /* Most records belong to the newest pane: look at the tail first, then skip the held
     * panes when p is not one of them. */
    if (k->tail != WIN_NIL && pane_start(c, win_at(c, k->tail)) <= p) {
        if (pane_start(c, win_at(c, k->tail)) == p) {
            return k->tail;
        }
        prev = k->tail;
        idx = WIN_NIL;
    } else if (k->live != WIN_NIL && pane_start(c, win_at(c, k->live)) <= p) {
        if (pane_start(c, win_at(c, k->live)) == p) {
            return k->live;
        }
        prev = k->live;
        idx = key_next(c, k, k->live);
    }
    for (; idx != WIN_NIL; prev = idx, idx = key_next(c, k, idx)) {
        int64_t s = pane_start(c, win_at(c, idx));
        if (s == p) {
            return idx;
        }
        if (s > p) {
            break;
        }
    }
    uint32_t fresh = win_alloc(c);
    if (fresh == WIN_NIL) {
        return WIN_NIL;
    }
    struct win *w = win_at(c, fresh);
    w->t_min = w->t_max = p;
    win_key_insert(c, k, prev, fresh);
    if (!pane_held(c, p, wm) && (k->live == WIN_NIL || p < pane_start(c, win_at(c, k->live)))) {
        k->live = fresh;
    }
    return fresh;
}

/* The window [s, s + size) of a key: the pane itself for tumbling windows, else the panes in
 * range merged into c->tmp. *from is the first slot to look at (panes before s are skipped
 * and *from is moved past them, so successive windows resume where the last one started). */
static struct win *pane_window(struct win_ctx *c, const struct win_key *k, int64_t s,
                               uint32_t *from)
{
    uint32_t idx = *from;
    while (idx != WIN_NIL && pane_start(c, win_at(c, idx)) < s) {
        idx = key_next(c, k, idx);
    }
    *from = idx;
    if (c->pane == c->size) {
        return idx != WIN_NIL && pane_start(c, win_at(c, idx)) == s ? win_at(c, idx) : NULL;
    }
    win_clear(c, c->tmp);
    for (; idx != WIN_NIL && pane_start(c, win_at(c, idx)) < s + c->size;
         idx = key_next(c, k, idx)) {
        win_merge(c, c->tmp, win_at(c, idx));
    }
    return c->tmp;
}

/* Next revision of the window starting at s, counted in the pane at s (made empty when the
 * window has no samples there). 0 without late: update, which never re-emits. */
static unsigned next_revision(struct win_ctx *c, struct win_key *k, int64_t s, int64_t wm)
{
    if (!c->track_revisions) {
        return 0;
    }
    uint32_t idx = win_pane_get(c, k, s, wm);
    if (idx == WIN_NIL) {
        mr_counter_add(c->counters.errors, 1);
        return 0;
    }
    struct win *w = win_at(c, idx);
    unsigned rev = w->emitted;
    if (w->emitted < REVISION_MAX) {
        w->emitted++;
    }
    return rev;
}

static int fire_pane_window(struct win_ctx *c, uint64_t key, struct win_key *k, int64_t s,
                            int64_t wm, uint32_t *cursor)
{
    struct win *w = pane_window(c, k, s, cursor);
    if (w == NULL || win_samples(c, w) == 0) {
        return 0;
    }
    if (w != c->tmp) {
        /* Tumbling: the pane is the window and holds its own revision count. */
        unsigned rev = 0;
        if (c->track_revisions) {
            rev = w->emitted;
            w->emitted += w->emitted < REVISION_MAX ? 1 : 0;
        }
        return win_emit_result(c, key, w, s, s + c->size, rev, NULL);
    }
    unsigned rev = next_revision(c, k, s, wm);
    return win_emit_result(c, key, w, s, s + c->size, rev, NULL);
}

/* Fire windows whose end passed (wm0, wm], in start order: only windows that hold a pane with
 * samples, each once. Held panes cannot be in such a window: start at k->live. */
static int panes_fire(struct win_ctx *c, uint64_t key, struct win_key *k, int64_t wm0, int64_t wm)
{
    int64_t hi_s = floor_hop(c, wm - c->size);
    int64_t lo_s = wm0 == INT64_MIN ? INT64_MIN : floor_hop(c, wm0 - c->size) + c->hop;
    int64_t last_s = INT64_MIN;
    uint32_t cursor = k->live;
    for (uint32_t idx = k->live; idx != WIN_NIL; idx = key_next(c, k, idx)) {
        struct win *w = win_at(c, idx);
        int64_t p = pane_start(c, w);
        if (p - c->size >= hi_s) {
            break; /* this and later panes are in no window that ended */
        }
        if (win_samples(c, w) == 0) {
            continue;
        }
        int64_t s = max64(ceil_hop(c, p - c->size + c->pane), lo_s);
        if (last_s != INT64_MIN) {
            s = max64(s, last_s + c->hop);
        }
        int64_t s_to = min64(floor_hop(c, p), hi_s);
        for (; s <= s_to; s += c->hop) {
            int rc = fire_pane_window(c, key, k, s, wm, &cursor);
            if (rc != 0) {
                return rc;
            }
            last_s = s;
        }
    }
    return 0;
}

/* Move k->live past the panes that are now held, free the held panes whose lateness ran out
 * (a prefix: their free times ascend), and put the key's next deadline in *due. */
static void panes_free(struct win_ctx *c, struct win_key *k, int64_t wm, int64_t *due)
{
    while (k->live != WIN_NIL && pane_held(c, pane_start(c, win_at(c, k->live)), wm)) {
        k->live = key_next(c, k, k->live);
    }
    for (uint32_t h = key_head(c, k); h != WIN_NIL && h != k->live; h = key_head(c, k)) {
        int64_t free_at = floor_hop(c, pane_start(c, win_at(c, h))) + c->size + c->lateness;
        if (free_at > wm) {
            *due = min64(*due, free_at);
            break;
        }
        win_key_unlink(c, k, WIN_NIL, h);
        win_release(c, h);
    }
    int64_t hi_s = floor_hop(c, wm - c->size);
    for (uint32_t idx = k->live; idx != WIN_NIL; idx = key_next(c, k, idx)) {
        struct win *w = win_at(c, idx);
        if (win_samples(c, w) > 0) {
            /* The first window holding p that has not ended. */
            int64_t p = pane_start(c, w);
            int64_t s = max64(ceil_hop(c, p - c->size + c->pane), hi_s + c->hop);
            *due = min64(*due, s + c->size);
            break; /* later panes' windows end later */
        }
    }
}

/* ---- sessions ---- */

static int sessions_advance(struct win_ctx *c, uint64_t key, struct win_key *k, int64_t wm,
                            int64_t *due)
{
    uint32_t prev = WIN_NIL;
    uint32_t idx = key_head(c, k);
    while (idx != WIN_NIL) {
        struct win *w = win_at(c, idx);
        uint32_t next = key_next(c, k, idx);
        int64_t end = w->t_max + c->gap;
        if ((w->flags & WIN_FIRED) == 0 && end <= wm) {
            unsigned rev = w->emitted;
            w->emitted += c->track_revisions && w->emitted < REVISION_MAX ? 1 : 0;
            w->flags |= WIN_FIRED;
            int rc = win_emit_result(c, key, w, w->t_min, end, rev, NULL);
            if (rc != 0) {
                return rc;
            }
        }
        if ((w->flags & WIN_FIRED) != 0 && end + c->lateness <= wm) {
            win_key_unlink(c, k, prev, idx);
            win_release(c, idx);
            idx = next;
            continue;
        }
        *due = min64(*due, (w->flags & WIN_FIRED) != 0 ? end + c->lateness : end);
        prev = idx;
        idx = next;
    }
    return 0;
}

int win_key_advance(struct win_ctx *c, uint64_t key, struct win_key *k, int64_t wm0, int64_t wm,
                    int64_t *due)
{
    if (c->kind == KIND_SESSION) {
        return sessions_advance(c, key, k, wm, due);
    }
    int rc = panes_fire(c, key, k, wm0, wm);
    if (rc == 0) {
        panes_free(c, k, wm, due);
    }
    return rc;
}

/* ---- late: update ---- */

int win_mark_dirty(struct win_ctx *c, uint64_t key, uint32_t slot)
{
    struct win *w = win_at(c, slot);
    if ((w->flags & WIN_DIRTY) != 0) {
        return 0;
    }
    if (c->ndirty == c->dirty_cap) {
        size_t cap = c->dirty_cap != 0 ? c->dirty_cap * 2 : 64;
        struct win_dirty *d = cap <= DIRTY_MAX ? mr_realloc(c->dirty, cap * sizeof(*d)) : NULL;
        if (d != NULL) {
            c->dirty = d;
            c->dirty_cap = cap;
        } else {
            /* At the cap (or out of memory): re-emit what is pending now. */
            int rc = win_flush_dirty(c);
            if (rc != 0 || c->dirty_cap == 0) {
                return rc != 0 ? rc : MR_ENOMEM;
            }
        }
    }
    w->flags |= WIN_DIRTY;
    c->dirty[c->ndirty++] = (struct win_dirty){.key = key, .slot = slot};
    return 0;
}

int win_flush_dirty(struct win_ctx *c)
{
    int rc = 0;
    for (size_t i = 0; i < c->ndirty && rc == 0; i++) {
        struct win *w = win_at(c, c->dirty[i].slot);
        if ((w->flags & WIN_DIRTY) == 0) {
            continue;
        }
        w->flags &= (uint16_t)~WIN_DIRTY;
        unsigned rev = w->emitted;
        w->emitted += w->emitted < REVISION_MAX ? 1 : 0;
        if (c->kind == KIND_SESSION) {
            rc = win_emit_result(c, c->dirty[i].key, w, w->t_min, w->t_max + c->gap, rev, NULL);
            continue;
        }
        /* w is the pane at the window's start and holds its revision count. */
        const struct win_key *k = mr_keymap_find(&c->keys, c->dirty[i].key);
        int64_t s = pane_start(c, w);
        if (k == NULL) {
            continue;
        }
        uint32_t from = key_head(c, k);
        struct win *res = pane_window(c, k, s, &from);
        if (res != NULL && win_samples(c, res) > 0) {
            rc = win_emit_result(c, c->dirty[i].key, res, s, s + c->size, rev, NULL);
        }
    }
    c->ndirty = 0;
    return rc;
}
