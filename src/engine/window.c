/* Operator `window`: keyed event-time windows with aggregates.
 *
 *   pipelines:
 *     press_stats:
 *       from: [press_raw]
 *       steps:
 *         - type: window
 *           kind: tumbling            # tumbling | hopping | session | count
 *           size: 1m                  # hopping: also `hop: 10s`; session: `gap: 30s`;
 *                                     # count: `count: 1000`
 *           key_by: [asset, signal]   # or [asset] or [signal]
 *           signals: [temperature, vibration]   # empty: every numeric signal
 *           aggregates: [count, mean, min, max, p95]
 *           allowed_lateness: 10s
 *           late: update              # drop | side (with late_topic) | update
 *       to: [press_stats]
 *
 * What it consumes: records of the selected signals whose value is numeric: f64, i64, bool
 * (0/1) and sample blocks (every sample of a block counts, all at the record's time, e.g. the
 * RMS of a vibration block). Everything else (strings, other signals, empty blocks) passes
 * through unchanged, so later steps still see it.
 *
 * Keys: `key_by: [asset, signal]` keeps one window per asset and signal; [asset] merges the
 * selected signals of each asset; [signal] merges each signal over all assets.
 *
 * Windows (event time, aligned to the Unix epoch):
 *   tumbling  [k*size, (k+1)*size)
 *   hopping   [k*hop, k*hop + size): kept as panes of gcd(size, hop) that are merged when a
 *             window fires, so a sample costs one update however many windows hold it
 *   session   samples closer than `gap` together; ends at the last sample + gap; a sample that
 *             bridges two open sessions merges them
 *   count     every `count` samples of a key (bad ones included); no event time, never late
 *
 * Firing: a window fires when the watermark of its key's asset reaches its end (keyed without
 * asset: the pipeline's watermark, advance with asset 0). So an asset replaying a backlog with
 * old timestamps gets its windows computed: lateness is judged against its own watermark only.
 * A fired window is held until watermark >= end + allowed_lateness, then freed for good.
 *
 * Late records (their window already fired; with hopping: every window holding them fired):
 *   drop    discarded and counted
 *   side    sent unchanged to `late_topic`
 *   update  added to the held window, whose result is emitted again with revision + 1 (once
 *           per window per batch); too late when the window was freed: dropped and counted
 * Counted in millrace_late_records_total{instance,policy} (policy="drop" for too-late updates)
 * and logged (rate-limited). For sessions, a late record is one that would join a fired
 * session or form a session that has already closed; late records never merge sessions.
 *
 * Results: per fired window one record per configured aggregate: asset = the key's asset (or
 * `asset`), signal = "<signal>.<aggregate>" (or "<name>.<aggregate>" when not keyed by signal),
 * time = window end (exclusive; session: last sample + gap; count: the last sample's time),
 * value f64 (count: i64), quality good, or uncertain when include_bad let bad samples in.
 * Aggregates that are undefined for the window are left out (stddev/variance of one sample,
 * rate over no time). A window whose samples were all left out emits only <signal>.count = 0
 * with quality bad. Tags: window_start (ns since the epoch), samples (all samples covered,
 * whatever their quality), max_gap_ms (largest gap between consecutive sample times; exact for
 * in-order data, an upper bound when samples arrived out of order), bad_share (bad-quality or
 * non-finite samples / samples), revision (only > 0) and, for count windows, window_seq (the
 * key's window number: results of one sample block split over windows stay distinct).
 *
 * Quality: bad samples are left out of the aggregates (but counted in samples and bad_share)
 * unless include_bad; uncertain samples are used. NaN and infinite values are never used and
 * count as bad.
 *
 * Costs: per record one hash lookup for the key (its asset is usually the previous record's)
 * and one aggregate update; the newest window of a key is looked at first. Per-key state
 * (window_internal.h): 16 bytes of key entry + 80 bytes of window for one open tumbling window
 * of [count, sum, min, max, mean], plus 8 in the asset's key list and the keymap's 8-16 byte
 * index. Variance/stddev add 16 bytes, first/last 16 each, percentiles a 4 KiB sketch per
 * window or pane (aggregate.h). advance() is O(1) until a window of that asset is due, then
 * walks that asset's keys only, and for panes only their live windows and the held ones whose
 * lateness ran out (held windows cost nothing per record or advance). Sessions are simpler:
 * a record and a due advance look at all of its key's sessions, open and held, which stays
 * cheap while allowed_lateness spans few sessions. Memory: millrace_window_state_bytes.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/window_internal.h"
#include "millrace/alloc.h"
#include "millrace/error.h"

extern const struct mr_plugin mr_operator_window;

/* Times beyond +-2^62 ns (year 1824..2116) are refused, so window arithmetic cannot
 * overflow. */
#define TIME_LIMIT ((int64_t)1 << 62)
#define MAX_PANES  4096 /* panes per hopping window */

#define LATE_HELP                                                                                  \
    "Records that arrived after their window had fired, by what happened to them (drop, side, "    \
    "update)."

enum disposition { DISP_CONSUMED = 0, DISP_PASS = 1, DISP_SIDE = 2 };

static const char *const kind_values[] = {"tumbling", "hopping", "session", "count", NULL};
static const char *const late_values[] = {"drop", "side", "update", NULL};

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b != 0) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Kinds configured in `aggregates` (the loader applies the table's default and its minimum of
 * one), in order. Returns the count, or -1 with *bad naming the unknown or repeated entry. */
static int aggs_parse(const struct window_conf *cf, enum mr_agg_kind *out, const char **bad,
                      bool *dup)
{
    uint32_t seen = 0;
    for (size_t i = 0; i < cf->aggregates.n; i++) {
        enum mr_agg_kind k;
        if (mr_agg_parse(cf->aggregates.items[i], &k) != 0 || (seen & (1u << k)) != 0) {
            *bad = cf->aggregates.items[i];
            *dup = mr_agg_parse(cf->aggregates.items[i], &k) == 0;
            return -1;
        }
        seen |= 1u << k;
        out[i] = k;
    }
    return (int)cf->aggregates.n;
}

/* key_by as two flags; false with *bad naming a wrong entry. */
static bool key_by_parse(const struct window_conf *cf, bool *by_asset, bool *by_signal,
                         const char **bad)
{
    *by_asset = false; /* key_by has the table's default and at least one entry */
    *by_signal = false;
    for (size_t i = 0; i < cf->key_by.n; i++) {
        const char *s = cf->key_by.items[i];
        bool *flag = strcmp(s, "asset") == 0    ? by_asset
                     : strcmp(s, "signal") == 0 ? by_signal
                                                : NULL;
        if (flag == NULL || *flag) {
            *bad = s;
            return false;
        }
        *flag = true;
    }
    return true;
}

/* A setting that only some kinds use must not be given to the others. */
static void unused_check(struct mr_config_check *chk, const char *kind, const char *field,
                         bool given)
{
    if (given) {
        mr_config_check_fail(chk, field, "is not used by kind: %s", kind);
    }
}

static void window_conf_check(void *conf, struct mr_config_check *chk)
{
    const struct window_conf *c = conf;
    const char *kind = kind_values[c->kind];
    bool need_size = c->kind == KIND_TUMBLING || c->kind == KIND_HOPPING;
    if (need_size && c->size_ns == 0) {
        mr_config_check_fail(chk, "size", "kind: %s needs the window length, e.g. size: 1m", kind);
    }
    unused_check(chk, kind, "size", !need_size && c->size_ns != 0);
    if (c->kind == KIND_HOPPING) {
        if (c->hop_ns == 0) {
            mr_config_check_fail(chk, "hop",
                                 "kind: hopping needs how often a window starts, "
                                 "e.g. hop: 10s");
        } else if (c->hop_ns > c->size_ns && c->size_ns != 0) {
            mr_config_check_fail(chk, "hop",
                                 "must not be longer than size (windows would leave gaps)");
        } else if (c->size_ns != 0 && c->size_ns / gcd64(c->size_ns, c->hop_ns) > MAX_PANES) {
            mr_config_check_fail(chk, "hop",
                                 "size / gcd(size, hop) must be at most %d: choose a hop that "
                                 "divides size",
                                 MAX_PANES);
        }
    }
    unused_check(chk, kind, "hop", c->kind != KIND_HOPPING && c->hop_ns != 0);
    if (c->kind == KIND_SESSION && c->gap_ns == 0) {
        mr_config_check_fail(chk, "gap",
                             "kind: session needs the silence that ends a session, "
                             "e.g. gap: 30s");
    }
    unused_check(chk, kind, "gap", c->kind != KIND_SESSION && c->gap_ns != 0);
    if (c->kind == KIND_COUNT && c->count == 0) {
        mr_config_check_fail(chk, "count",
                             "kind: count needs the samples per window, "
                             "e.g. count: 100");
    }
    unused_check(chk, kind, "count", c->kind != KIND_COUNT && c->count != 0);
    if (c->kind == KIND_COUNT && c->lateness_ns != 0) {
        mr_config_check_fail(chk, "allowed_lateness",
                             "count windows have no event time: nothing is ever late");
    }
    if (c->late == LATE_SIDE && (c->late_topic == NULL || c->late_topic[0] == '\0')) {
        mr_config_check_fail(chk, "late_topic", "late: side needs the topic late records go to");
    } else if (c->late != LATE_SIDE && c->late_topic != NULL) {
        mr_config_check_fail(chk, "late_topic", "is only used with late: side");
    }
    enum mr_agg_kind aggs[MR_AGG_KINDS + 1];
    const char *bad = NULL;
    bool dup = false;
    if (c->aggregates.n > MR_AGG_KINDS || aggs_parse(c, aggs, &bad, &dup) < 0) {
        if (bad != NULL && !dup) {
            mr_config_check_fail(chk, "aggregates", "unknown aggregate '%s' (available: %s)", bad,
                                 mr_agg_names_list());
        } else {
            mr_config_check_fail(chk, "aggregates", "'%s' is listed twice",
                                 bad != NULL ? bad : "?");
        }
    }
    bool ba;
    bool bs;
    if (!key_by_parse(c, &ba, &bs, &bad)) {
        mr_config_check_fail(chk, "key_by",
                             "'%s' is not allowed: use asset and/or signal, once each", bad);
    }
}

static const struct mr_field window_fields[] = {
    {.name = "kind",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct window_conf, kind),
     .def = "tumbling",
     .values = kind_values,
     .help = "tumbling: back-to-back windows of `size`. hopping: windows of `size` starting "
             "every `hop` (they overlap). session: a window per burst of samples, ended by "
             "`gap` without samples. count: a window per `count` samples."},
    {.name = "size",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct window_conf, size_ns),
     .min = "1ms",
     .max = "366d",
     .help = "Length of a tumbling or hopping window (required for those; event time, aligned "
             "to midnight UTC 1970, so 1h windows start on the hour)."},
    {.name = "hop",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct window_conf, hop_ns),
     .min = "1ms",
     .max = "366d",
     .help = "Hopping windows (required): how often a window starts (at most size; cheapest "
             "when it divides size)."},
    {.name = "gap",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct window_conf, gap_ns),
     .min = "1ms",
     .max = "30d",
     .help = "Session windows (required): a session ends after this long without samples."},
    {.name = "count",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct window_conf, count),
     .min = "1",
     .max = "1000000000",
     .help = "Count windows (required): samples per window, bad ones included (every sample of "
             "a block counts)."},
    {.name = "key_by",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct window_conf, key_by),
     .def = "[asset, signal]",
     .min = "1",
     .max = "2",
     .help = "What gets its own window: [asset, signal] (each signal of each machine), [asset] "
             "(all selected signals of a machine together) or [signal] (a signal over all "
             "machines)."},
    {.name = "signals",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct window_conf, signals),
     .help = "Only these signals are windowed (empty: every numeric signal); other records "
             "pass through unchanged."},
    {.name = "aggregates",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct window_conf, aggregates),
     .def = "[count, mean, min, max]",
     .min = "1",
     .max = "14",
     .help = "Results per window, each a record named <signal>.<aggregate>: count, sum, mean, "
             "min, max, stddev, variance (sample, n-1), first, last, rate (change per second "
             "from first to last), rms, p50, p95, p99 (exact up to 256 samples per window, then "
             "within about 1% in rank)."},
    {.name = "include_bad",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct window_conf, include_bad),
     .def = "false",
     .help = "Use bad-quality samples in the aggregates (results are then marked uncertain). "
             "They are always counted in the samples and bad_share tags."},
    {.name = "allowed_lateness",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct window_conf, lateness_ns),
     .def = "0",
     .min = "0",
     .max = "30d",
     .help = "How long after a window fired its state is kept for late records (late: "
             "update); then it is freed for good."},
    {.name = "late",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct window_conf, late),
     .def = "drop",
     .values = late_values,
     .help = "What happens to a record whose window already fired: drop it (counted), side "
             "(send it unchanged to late_topic) or update (correct the window and emit it again "
             "with a revision tag, while allowed_lateness lasts)."},
    {.name = "late_topic",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct window_conf, late_topic),
     .help = "Journal topic late records go to with late: side."},
    {.name = "name",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct window_conf, name),
     .def = "window",
     .help = "Signal name of the results when not keyed by signal: <name>.<aggregate>."},
    {.name = "asset",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct window_conf, asset),
     .def = "all",
     .help = "Asset of the results when not keyed by asset."},
    {.name = "max_keys",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct window_conf, max_keys),
     .def = "1000000",
     .min = "1",
     .max = "100000000",
     .help = "Most keys (asset/signal combinations) with open windows; records of further "
             "keys are counted as errors and dropped."},
    {.name = "max_windows",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct window_conf, max_windows),
     .def = "1000000",
     .min = "1",
     .max = "1000000000",
     .help = "Most windows (hopping: panes) open or held at once over all keys; records that "
             "would need more are counted as errors and dropped."},
    {0},
};

/* ---- records ---- */

static void log_error(struct win_ctx *c, const struct mr_record *rec, const char *what, int rc)
{
    mr_counter_add(c->counters.errors, 1);
    if (mr_log_ratelimit_pass(&c->rl_err, 5, 10000) >= 0) {
        const char *a = mr_names_str(c->host->names, rec->asset, NULL);
        const char *s = mr_names_str(c->host->names, rec->signal, NULL);
        MR_LOG_WARN(c->host->name, "record of %s/%s dropped: %s (%s)", a != NULL ? a : "?",
                    s != NULL ? s : "?", what, mr_strerror(rc));
    }
}

/* A late record under drop/side (or too late to update): count it, log, dispose. */
static int late_record(struct win_ctx *c, const struct mr_record *rec, int64_t wm, bool too_late)
{
    bool side = c->late == LATE_SIDE && !too_late;
    mr_counter_add(too_late ? c->late_dropped : c->late_count, 1);
    if (mr_log_ratelimit_pass(&c->rl_late, 5, 10000) >= 0) {
        char t[40];
        char w[40];
        mr_time_format_rfc3339(rec->time_ns, t, sizeof(t));
        mr_time_format_rfc3339(wm, w, sizeof(w));
        const char *a = mr_names_str(c->host->names, rec->asset, NULL);
        const char *s = mr_names_str(c->host->names, rec->signal, NULL);
        MR_LOG_WARN(c->host->name,
                    "late record of %s/%s at %s: its window already fired (watermark %s); %s",
                    a != NULL ? a : "?", s != NULL ? s : "?", t, w,
                    side ? "sent to late_topic"
                         : (too_late ? "dropped (past allowed_lateness)" : "dropped"));
    }
    return side ? DISP_SIDE : DISP_CONSUMED;
}

/* The key's state, made (with its derived names) on first use. */
static struct win_key *key_get(struct win_ctx *c, struct win_asset *a, uint64_t key, int *rc)
{
    void *v;
    int inserted;
    *rc = mr_keymap_upsert(&c->keys, key, &v, &inserted);
    if (*rc != 0 || !inserted) {
        return *rc != 0 ? NULL : v;
    }
    struct win_key *k = v;
    k->tail = k->live = WIN_NIL;
    struct mr_err err;
    *rc = win_names_ensure(c, c->by_signal ? (mr_name_id)key : 0, &err);
    if (*rc == 0) {
        *rc = win_asset_add_key(c, a, key);
    }
    if (*rc != 0) {
        mr_keymap_remove(&c->keys, key);
        return NULL;
    }
    return k;
}

/* Add samples [off, off + n) of rec (a scalar: off 0, n 1) to w. */
static void win_add(struct win_ctx *c, struct win *w, const struct mr_record *rec, double x,
                    uint32_t off, uint32_t n)
{
    int64_t t = rec->time_ns;
    if (win_samples(c, w) == 0) {
        w->t_min = w->t_max = t;
    } else if (t > w->t_max) {
        w->max_gap = t - w->t_max > w->max_gap ? t - w->t_max : w->max_gap;
        w->t_max = t;
    } else if (t < w->t_min) {
        w->max_gap = w->t_min - t > w->max_gap ? w->t_min - t : w->max_gap;
        w->t_min = t;
    }
    bool bad = rec->quality == MR_QUALITY_BAD;
    if (bad && !c->include_bad) {
        w->bad += n;
        return;
    }
    uint32_t added;
    if (rec->type == MR_VALUE_SAMPLES) {
        const char *data = (const char *)(const void *)rec->v.samples.data;
        added =
            mr_agg_add_block(&c->layout, win_agg(c, w), data + (size_t)off * sizeof(float), n, t);
    } else {
        added = (uint32_t)mr_agg_add(&c->layout, win_agg(c, w), x, t);
    }
    w->bad += bad ? n : n - added;
    if (c->include_bad) {
        *win_skipped(w) += n - added;
    }
}

static int pane_record(struct win_ctx *c, struct win_asset *a, uint64_t key,
                       const struct mr_record *rec, double x, uint32_t n)
{
    int64_t wm = a->wm;
    int64_t p = align_down(rec->time_ns, c->pane);
    int64_t s_max = align_down(p, c->hop); /* the last window holding p starts here */
    bool late = wm != INT64_MIN && s_max + c->size <= wm;
    if (late && (c->late != LATE_UPDATE || s_max + c->size + c->lateness <= wm)) {
        return late_record(c, rec, wm, c->late == LATE_UPDATE);
    }
    int rc;
    struct win_key *k = key_get(c, a, key, &rc);
    uint32_t idx = k != NULL ? win_pane_get(c, k, p, wm) : WIN_NIL;
    if (idx == WIN_NIL) {
        log_error(c, rec, k == NULL ? "too many keys" : "too many open windows (max_windows)",
                  k == NULL ? rc : MR_ETOOBIG);
        return DISP_CONSUMED;
    }
    win_add(c, win_at(c, idx), rec, x, 0, n);
    a->due = p + c->pane < a->due ? p + c->pane : a->due;
    if (!c->track_revisions || wm == INT64_MIN) {
        return DISP_CONSUMED;
    }
    /* late: update: every fired, still held window holding p is corrected. */
    int64_t s = -align_down(-(p - c->size + c->pane), c->hop);
    for (; s <= s_max && s + c->size <= wm; s += c->hop) {
        if (s + c->size + c->lateness <= wm) {
            continue;
        }
        uint32_t ps = win_pane_get(c, k, s, wm);
        rc = ps != WIN_NIL ? win_mark_dirty(c, key, ps) : MR_ETOOBIG;
        if (rc != 0) {
            log_error(c, rec, "cannot re-emit a window", rc);
            break;
        }
    }
    if (late) {
        mr_counter_add(c->late_count, 1);
    }
    return DISP_CONSUMED;
}

/* Sessions of k that rec joins (samples closer than gap): at most two, in order. */
static void sessions_joined(struct win_ctx *c, struct win_key *k, int64_t t, uint32_t j[2],
                            uint32_t *before)
{
    j[0] = j[1] = WIN_NIL;
    *before = WIN_NIL; /* last session starting before t (insertion point) */
    for (uint32_t idx = key_head(c, k); idx != WIN_NIL; idx = key_next(c, k, idx)) {
        struct win *w = win_at(c, idx);
        if (w->t_min - c->gap < t && t < w->t_max + c->gap) {
            j[j[0] == WIN_NIL ? 0 : 1] = idx;
            if (j[1] != WIN_NIL) {
                return;
            }
        }
        if (w->t_min <= t) {
            *before = idx;
        }
    }
}

static uint32_t session_new(struct win_ctx *c, struct win_key *k, uint32_t before)
{
    uint32_t idx = win_alloc(c);
    if (idx != WIN_NIL) {
        win_key_insert(c, k, before, idx);
    }
    return idx;
}

/* Merge session b (the one after a) into a and free it. */
static void session_absorb(struct win_ctx *c, struct win_key *k, uint32_t a, uint32_t b)
{
    win_merge(c, win_at(c, a), win_at(c, b));
    uint32_t prev = a;
    while (key_next(c, k, prev) != b) {
        prev = key_next(c, k, prev);
    }
    win_key_unlink(c, k, prev, b);
    win_release(c, b);
}

static int session_record(struct win_ctx *c, struct win_asset *a, uint64_t key,
                          const struct mr_record *rec, double x, uint32_t n)
{
    int64_t t = rec->time_ns;
    int64_t wm = a->wm;
    uint32_t j[2] = {WIN_NIL, WIN_NIL};
    uint32_t before = WIN_NIL;
    struct win_key *k = mr_keymap_find(&c->keys, key);
    if (k != NULL) {
        sessions_joined(c, k, t, j, &before);
    }
    uint32_t fired = WIN_NIL;
    for (int i = 0; i < 2; i++) {
        if (j[i] != WIN_NIL && (win_at(c, j[i])->flags & WIN_FIRED) != 0 && fired == WIN_NIL) {
            fired = j[i];
        }
    }
    bool closed = j[0] == WIN_NIL && wm != INT64_MIN && t + c->gap <= wm;
    if ((fired != WIN_NIL || closed) && c->late != LATE_UPDATE) {
        return late_record(c, rec, wm, false);
    }
    if (closed && t + c->gap + c->lateness <= wm) {
        return late_record(c, rec, wm, true);
    }
    int rc = 0;
    if (k == NULL) {
        k = key_get(c, a, key, &rc);
    }
    uint32_t idx = fired != WIN_NIL ? fired : j[0];
    if (k != NULL && idx == WIN_NIL) {
        idx = session_new(c, k, before);
        rc = MR_ETOOBIG;
    }
    if (idx == WIN_NIL) {
        log_error(c, rec, k == NULL ? "too many keys" : "too many open windows (max_windows)", rc);
        return DISP_CONSUMED;
    }
    struct win *w = win_at(c, idx);
    win_add(c, w, rec, x, 0, n);
    if (fired == WIN_NIL && j[1] != WIN_NIL) {
        session_absorb(c, k, idx, j[1]);
    }
    if (fired != WIN_NIL || closed) {
        /* late: update. A session that closed before its first record is born fired. */
        w->flags |= WIN_FIRED;
        mr_counter_add(c->late_count, 1);
        rc = win_mark_dirty(c, key, idx);
        if (rc != 0) {
            log_error(c, rec, "cannot re-emit a window", rc);
        }
    }
    int64_t end = w->t_max + c->gap;
    a->due = end < a->due ? end : a->due;
    return DISP_CONSUMED;
}

static int count_record(struct win_ctx *c, struct win_asset *a, uint64_t key,
                        const struct mr_record *rec, double x, uint32_t n)
{
    int rc;
    struct win_key *k = key_get(c, a, key, &rc);
    if (k != NULL && k->tail == WIN_NIL) {
        uint32_t idx = win_alloc(c);
        if (idx != WIN_NIL) {
            win_key_insert(c, k, WIN_NIL, idx);
        }
        rc = MR_ETOOBIG;
    }
    if (k == NULL || k->tail == WIN_NIL) {
        log_error(c, rec, k == NULL ? "too many keys" : "too many open windows (max_windows)", rc);
        return DISP_CONSUMED;
    }
    struct win *w = win_at(c, k->tail); /* the one open count window */
    for (uint32_t off = 0; off < n;) {
        uint64_t room = c->count - win_samples(c, w);
        uint32_t take = n - off < room ? n - off : (uint32_t)room;
        win_add(c, w, rec, x, off, take);
        off += take;
        if (win_samples(c, w) >= c->count) {
            rc = win_emit_result(c, key, w, w->t_min, w->t_max, 0, &k->seq);
            if (rc != 0) {
                return rc;
            }
            k->seq++;
            win_clear(c, w);
        }
    }
    return DISP_CONSUMED;
}

/* Numeric value of a record to window, or false when it passes through. */
static bool record_numeric(const struct win_ctx *c, const struct mr_record *rec, double *x,
                           uint32_t *n)
{
    *n = 1;
    switch (rec->type) {
    case MR_VALUE_F64:
        *x = rec->v.f64;
        break;
    case MR_VALUE_I64:
        *x = (double)rec->v.i64;
        break;
    case MR_VALUE_BOOL:
        *x = rec->v.b ? 1.0 : 0.0;
        break;
    case MR_VALUE_SAMPLES:
        *x = 0;
        *n = rec->v.samples.n;
        if (*n == 0) {
            return false;
        }
        break;
    default:
        return false;
    }
    return mr_keymap_count(&c->filter) == 0 || mr_keymap_find(&c->filter, rec->signal) != NULL;
}

/* What becomes of one record: DISP_*, or a negative MR_E* code from emitting. */
static int record_handle(struct win_ctx *c, const struct mr_record *rec)
{
    double x;
    uint32_t n;
    if (!record_numeric(c, rec, &x, &n)) {
        return DISP_PASS;
    }
    if (rec->time_ns <= -TIME_LIMIT || rec->time_ns >= TIME_LIMIT) {
        log_error(c, rec, "time outside the years 1824..2116", MR_ERANGE);
        return DISP_CONSUMED;
    }
    uint64_t key =
        (c->by_asset ? (uint64_t)rec->asset << 32 : 0) | (c->by_signal ? rec->signal : 0);
    int rc;
    struct win_asset *a = win_asset_get(c, c->by_asset ? rec->asset : 0, &rc);
    if (a == NULL) {
        log_error(c, rec, "too many assets", rc);
        return DISP_CONSUMED;
    }
    switch (c->kind) {
    case KIND_SESSION:
        return session_record(c, a, key, rec, x, n);
    case KIND_COUNT:
        return count_record(c, a, key, rec, x, n);
    default:
        return pane_record(c, a, key, rec, x, n);
    }
}

/* Hand on a run of records that pass through or go to the late topic. */
static int run_flush(struct win_ctx *c, int disp, const struct mr_record *recs, size_t n)
{
    if (n == 0 || disp == DISP_CONSUMED) {
        return 0;
    }
    if (disp == DISP_SIDE) {
        return c->host->side_emit(c->host, c->side_port, recs, n);
    }
    int rc = c->host->emit(c->host, recs, n);
    if (rc == 0) {
        mr_counter_add(c->counters.records_out, n);
    }
    return rc;
}

/* With many keys the key lookup is a cache miss; asking for it this many records early hides
 * most of it (measured: bench/window_throughput, 1M keys). */
#define PREFETCH_AHEAD 8

static int window_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct win_ctx *c = ctx;
    mr_counter_add(c->counters.records_in, n);
    size_t run = 0;
    int run_disp = DISP_CONSUMED;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i + PREFETCH_AHEAD < n) {
            const struct mr_record *ahead = &recs[i + PREFETCH_AHEAD];
            mr_keymap_prefetch(&c->keys, (c->by_asset ? (uint64_t)ahead->asset << 32 : 0) |
                                             (c->by_signal ? ahead->signal : 0));
        }
        int disp = record_handle(c, &recs[i]);
        if (disp < 0) {
            rc = disp;
            break;
        }
        if (disp != run_disp) {
            rc = run_flush(c, run_disp, recs + run, i - run);
            run = i;
            run_disp = disp;
        }
    }
    if (rc == 0) {
        rc = run_flush(c, run_disp, recs + run, n - run);
    }
    if (rc == 0) {
        rc = win_flush_dirty(c);
    }
    if (rc == 0) {
        rc = win_flush(c);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "window: passing records on failed: %s", mr_strerror(rc));
    }
    return 0;
}

/* ---- watermarks ---- */

static int window_advance(void *ctx, mr_name_id asset, int64_t wm, struct mr_err *err)
{
    struct win_ctx *c = ctx;
    if (c->kind == KIND_COUNT || c->by_asset != (asset != 0)) {
        return 0; /* keyed by asset: per-asset watermarks; else the pipeline's (asset 0) */
    }
    wm = wm >= TIME_LIMIT ? TIME_LIMIT : (wm <= -TIME_LIMIT ? -TIME_LIMIT : wm);
    int rc;
    struct win_asset *a = win_asset_get(c, asset, &rc);
    if (a == NULL) {
        /* Over max_keys assets: this one's windows cannot fire; the pipeline goes on. */
        mr_counter_add(c->counters.errors, 1);
        if (mr_log_ratelimit_pass(&c->rl_err, 5, 10000) >= 0) {
            MR_LOG_WARN(c->host->name, "cannot track the watermark of one more asset: %s",
                        mr_strerror(rc));
        }
        return 0;
    }
    if (wm <= a->wm) {
        return 0;
    }
    int64_t wm0 = a->wm;
    a->wm = wm;
    if (a->due > wm) {
        return 0;
    }
    int64_t due = INT64_MAX;
    for (uint32_t i = 0; i < a->nkeys && rc == 0;) {
        uint64_t key = a->keys[i];
        struct win_key *k = mr_keymap_find(&c->keys, key);
        if (k != NULL) {
            rc = win_key_advance(c, key, k, wm0, wm, &due);
        }
        if (k == NULL || k->tail == WIN_NIL) {
            mr_keymap_remove(&c->keys, key);
            a->keys[i] = a->keys[--a->nkeys];
            continue;
        }
        i++;
    }
    a->due = rc == 0 ? due : INT64_MIN;
    if (rc == 0) {
        rc = win_flush(c);
        mr_gauge_set(c->state_bytes, (double)win_state_bytes(c));
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "window: emitting results failed: %s", mr_strerror(rc));
    }
    return 0;
}

/* ---- life cycle ---- */

static void window_fini(void *ctx)
{
    struct win_ctx *c = ctx;
    for (uint32_t i = 0; i < mr_keymap_count(&c->assets); i++) {
        struct win_asset *a = mr_keymap_value_at(&c->assets, i);
        mr_free(a->keys);
    }
    mr_keymap_fini(&c->keys);
    mr_keymap_fini(&c->assets);
    mr_keymap_fini(&c->outnames);
    mr_keymap_fini(&c->filter);
    win_pool_fini(&c->pool);
    mr_free(c->out);
    mr_free(c->scratch);
    mr_free(c->dirty);
    mr_free(c->tmp);
    memset(c, 0, sizeof(*c));
}

static int intern(struct win_ctx *c, const char *s, mr_name_id *id, struct mr_err *err)
{
    int rc = mr_names_intern(c->host->names, s, strlen(s), id);
    return rc != 0 ? MR_ERR_SET(err, rc, "cannot intern '%s': %s", s, mr_strerror(rc)) : 0;
}

/* Settings into the context; the config check has vetted them. */
static int conf_apply(struct win_ctx *c, const struct window_conf *cf, struct mr_err *err)
{
    const char *bad = NULL;
    bool dup = false;
    int naggs = aggs_parse(cf, c->aggs, &bad, &dup);
    if (naggs < 0 || !key_by_parse(cf, &c->by_asset, &c->by_signal, &bad)) {
        return MR_ERR_SET(err, MR_ECONFIG, "window: bad setting '%s'", bad != NULL ? bad : "?");
    }
    c->naggs = (size_t)naggs;
    uint32_t mask = 0;
    for (size_t i = 0; i < c->naggs; i++) {
        mask |= 1u << c->aggs[i];
    }
    mr_agg_layout_init(&c->layout, mask);
    c->kind = cf->kind;
    c->late = cf->late;
    c->include_bad = cf->include_bad;
    c->size = cf->kind == KIND_TUMBLING || cf->kind == KIND_HOPPING ? cf->size_ns : 1;
    c->hop = cf->kind == KIND_HOPPING ? cf->hop_ns : c->size;
    c->pane = gcd64(c->size, c->hop);
    c->gap = cf->gap_ns;
    c->count = (uint64_t)cf->count;
    c->lateness = cf->lateness_ns;
    c->track_revisions = c->late == LATE_UPDATE && c->lateness > 0;
    if (c->size <= 0 || c->hop <= 0 || c->hop > c->size ||
        (c->kind == KIND_SESSION && c->gap <= 0) || (c->kind == KIND_COUNT && c->count == 0)) {
        return MR_ERR_SET(err, MR_ECONFIG, "window: size, hop, gap or count missing or invalid");
    }
    c->agg_off = sizeof(struct win) + (c->include_bad ? sizeof(uint64_t) : 0);
    return 0;
}

static int metrics_register(struct win_ctx *c, struct mr_err *err)
{
    char inst[256];
    char labels[320];
    int rc = mr_plugin_counters_register(c->host->metrics, &mr_operator_window, c->host->name,
                                         &c->counters);
    if (rc == 0 && mr_metrics_label_escape(c->host->name, inst, sizeof(inst)) < 0) {
        rc = MR_ETOOBIG;
    }
    for (int i = 0; i < 2 && rc == 0; i++) {
        const char *policy = i == 0 ? late_values[c->late] : "drop";
        snprintf(labels, sizeof(labels), "instance=\"%s\",policy=\"%s\"", inst, policy);
        rc = mr_metrics_counter(c->host->metrics, "millrace_late_records_total", LATE_HELP, labels,
                                i == 0 ? &c->late_count : &c->late_dropped);
    }
    if (rc == 0) {
        snprintf(labels, sizeof(labels), "instance=\"%s\"", inst);
        rc = mr_metrics_gauge(c->host->metrics, "millrace_window_state_bytes",
                              "Memory a window operator holds for its keys and open or held "
                              "windows (updated when windows fire).",
                              labels, &c->state_bytes);
    }
    return rc != 0 ? MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc)) : 0;
}

static int names_init(struct win_ctx *c, const struct window_conf *cf, struct mr_err *err)
{
    static const char *const tag_names[WIN_TAGS] = {"window_start", "samples",  "max_gap_ms",
                                                    "bad_share",    "revision", "window_seq"};
    mr_name_id *tags[WIN_TAGS] = {&c->tag_start, &c->tag_samples, &c->tag_gap,
                                  &c->tag_bad,   &c->tag_rev,     &c->tag_seq};
    int rc = 0;
    for (size_t i = 0; i < WIN_TAGS && rc == 0; i++) {
        rc = intern(c, tag_names[i], tags[i], err);
    }
    if (rc == 0 && !c->by_asset) {
        rc = intern(c, cf->asset, &c->out_asset, err);
    }
    if (rc == 0 && !c->by_signal) {
        rc = win_names_ensure(c, 0, err);
    }
    for (size_t i = 0; i < cf->signals.n && rc == 0; i++) {
        mr_name_id id;
        void *v;
        int inserted;
        rc = intern(c, cf->signals.items[i], &id, err);
        if (rc == 0) {
            rc = mr_keymap_upsert(&c->filter, id, &v, &inserted);
        }
    }
    return rc;
}

static int window_init(void *ctx, const void *conf, struct mr_operator_host *host,
                       struct mr_err *err)
{
    struct win_ctx *c = ctx;
    const struct window_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->host = host;
    int rc = conf_apply(c, cf, err);
    if (rc != 0) {
        return rc;
    }
    size_t slot = c->agg_off + c->layout.size;
    uint32_t max_keys = (uint32_t)cf->max_keys;
    size_t key_size =
        c->kind == KIND_COUNT ? sizeof(struct win_key) : offsetof(struct win_key, seq);
    if (mr_keymap_init(&c->keys, key_size, max_keys) != 0 ||
        mr_keymap_init(&c->assets, sizeof(struct win_asset), max_keys + 1) != 0 ||
        mr_keymap_init(&c->outnames, (c->naggs + 1) * sizeof(mr_name_id), max_keys + 1) != 0 ||
        mr_keymap_init(&c->filter, 0, (uint32_t)cf->signals.n + 1) != 0 ||
        win_pool_init(&c->pool, slot, (uint32_t)cf->max_windows) != 0 ||
        (c->tmp = mr_malloc(slot)) == NULL ||
        (c->out = mr_calloc(WIN_OUT_CAP, sizeof(*c->out))) == NULL ||
        (c->scratch = mr_malloc(WIN_SCRATCH_CAP)) == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "window: out of memory");
        goto fail;
    }
    rc = names_init(c, cf, err);
    if (rc == 0) {
        rc = metrics_register(c, err);
    }
    if (rc == 0 && c->late == LATE_SIDE) {
        rc = host->side_open(host, cf->late_topic, err);
        c->side_port = rc;
        rc = rc > 0 ? 0 : rc;
    }
    if (rc != 0) {
        goto fail;
    }
    return 0;
fail:
    window_fini(c);
    return rc;
}

const struct mr_plugin mr_operator_window = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "window",
    .help = "Keyed event-time windows (tumbling, hopping, session or count) with aggregates: "
            "count, sum, mean, min, max, stddev, variance, first, last, rate, rms, p50, p95, "
            "p99. Fires on each asset's watermark; late records are dropped, sent aside or "
            "correct the result.",
    .conf = {.fields = window_fields,
             .size = sizeof(struct window_conf),
             .check = window_conf_check},
    .ctx_size = sizeof(struct win_ctx),
    .op = {.init = window_init,
           .process = window_process,
           .advance = window_advance,
           .snapshot = win_snapshot,
           .restore = win_restore,
           .fini = window_fini},
};
