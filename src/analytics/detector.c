/* Operator `detector`: change and anomaly detection on any numeric signal, per (asset, signal),
 * with the classic control charts (zscore, EWMA, tabular CUSUM, Page-Hinkley).
 *
 *   steps:
 *     - type: detector
 *       signals: [vibration.kurtosis, temperature.mean]   # empty: every numeric signal
 *       method: cusum             # zscore | ewma | cusum | page_hinkley
 *       baseline_samples: 30      # learn mean and sigma from the first 30 values per key
 *       # baseline_from: "2026-11-01T00:00:00Z"   # or a declared healthy period
 *       # baseline_to:   "2026-11-02T00:00:00Z"
 *       k: 0.5                    # cusum allowance, sigmas
 *       h: 5                      # cusum decision interval, sigmas
 *       direction: both           # up | down | both
 *       only_when: {signal: state, values: [RUNNING]}   # score only while RUNNING
 *
 *     - type: detector            # rolling z-score, one annotated record per value
 *       signals: [value]
 *       method: zscore
 *       window: 6400              # mean/sigma of the last 6400 values before each value
 *       baseline_samples: 750     # start scoring when the window holds 750 values
 *       threshold: 4
 *       emit: annotate            # tags score, anomaly_score, alert on each value
 *
 * Baseline. Per key (asset, signal) the detector first learns a baseline: the mean and
 * standard deviation of the first `baseline_samples` good, finite values, or of the values
 * whose time lies in [baseline_from, baseline_to] (values before the period are not scored;
 * when fewer than 2 values fell in the period, the first baseline_samples values after it are
 * used instead). `target` and `sigma` declare the baseline instead of learning it (both set:
 * no learning at all). A sigma below `min_sigma` (a constant signal) is raised to it, or to
 * 1e-9 * max(1, |mean|) when min_sigma is 0.
 *
 * Rolling baseline (window > 0, zscore only): each value is scored against the mean and the
 * population standard deviation of the last `window` values BEFORE it (a spike cannot mask
 * itself), kept by Welford add/remove and recomputed exactly every `window` values
 * (detector_methods.h); scoring starts when the window holds baseline_samples values. The ring
 * costs window * 8 bytes per key, allocated once when the key is first seen; window * 8 *
 * max_keys is capped at 1 GiB by the config check (lower max_keys for long windows).
 *
 * Gating (only_when): records of only_when.signal (text, number or bool) pass through and set
 * the state of their asset; values of an asset whose latest state is not in only_when.values,
 * or whose state has not been seen yet, pass unscored and are not learned from. So do values
 * earlier than only_when.settle after the state entered the allowed set, and values whose
 * window (tag window_start) began before that: a window mixing a stop and a start is not the
 * running machine.
 *
 * Output. With emit: scores (default) every input record passes through unchanged and each
 * scored value adds two records at the value's time:
 *   <signal>.score          the statistic / its limit: 1.0 = at the control limit
 *   <signal>.anomaly_score  0..1: zscore: erf(|z| / sqrt 2), the two-sided normal probability
 *                           of a less extreme value (0.9973 at 3 sigma; NAB's windowed
 *                           Gaussian uses the same tail); other methods: the score clamped to
 *                           [0, 1] (1 = at or beyond the limit)
 * With emit: annotate each watched numeric value passes on ONCE, with tags score,
 * anomaly_score and alert ("true" on the value that raised an alert) added; values not scored
 * (learning, window filling, gated, bad quality) carry 0, 0, false. A value that already has
 * more than 13 tags passes unannotated (counted as an error).
 *
 * Alerts (both modes): when the score crosses 1.0, an alert record (signal `alert`, severity
 * warning) follows the value; when it then reaches `alarm_at` (default 2, i.e. twice the
 * limit) a second alert with severity alarm. Re-arming: after an alert no further alert is
 * raised for the key until its score has fallen below `rearm` (default 1.0: back inside the
 * limit). The statistics are not reset by an alert (a persistent shift keeps the CUSUM above
 * h, as in the NIST charts). Alert tags: feature, value, baseline (mean), baseline_std,
 * threshold (zscore and ewma: the control limit's distance from the baseline in the signal's
 * unit; cusum and page_hinkley: the decision level h or lambda in sigmas), score, detector
 * (the method), severity, and window_start / window_end (ns) when the value carries a
 * window_start tag (features of `vibration` and `window`): the window behind the alert, up to
 * the value's time. The alert's value is a sentence such as "temp 14 above baseline 10
 * (sigma 1.1547), score 1.15 (zscore)". Bad or uncertain quality, non-finite values, text,
 * booleans and sample blocks pass through unscored.
 *
 * State per key: 160 bytes (link, derived names, Welford sums, struct mr_det_state, the ring
 * header) plus the key map's slot, plus window * 8 bytes with a rolling window; per gated
 * asset 1 byte plus its slot. Keys and gated assets are each capped by max_keys; further keys
 * pass unscored and count as errors. Checkpoints (version 2) store every key by name, its
 * window values, and the gate state of every asset. Method formulas: detector_methods.h.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/detector_methods.h"
#include "millrace/alloc.h"
#include "operators/op_common.h"

#define STATE_VERSION 2
#define NAME_MAX_LEN  240

extern const struct mr_plugin mr_operator_detector;

static const char *const method_names[] = {"zscore", "ewma", "cusum", "page_hinkley", NULL};
static const char *const direction_names[] = {"both", "up", "down", NULL};
static const char *const emit_names[] = {"scores", "annotate", NULL};

enum { EMIT_SCORES = 0, EMIT_ANNOTATE = 1 };

/* Largest rolling state in all (window * 8 bytes * max_keys; window itself is capped at 1e6
 * values by its field): the ring buffers are the detector's only large state. */
#define ROLL_STATE_MAX (1ull << 30)

struct det_gate_conf {
    char *signal;
    struct mr_strlist values;
    int64_t settle_ns;
};

struct det_conf {
    struct mr_strlist signals;
    int method;
    int direction;
    int64_t baseline_samples;
    char *baseline_from;
    char *baseline_to;
    double target;
    double sigma;
    double min_sigma;
    double threshold;
    double lambda;
    double L;
    double k;
    double h;
    double delta;
    double rearm;
    double alarm_at;
    int64_t max_keys;
    int64_t window;
    int emit;
    struct det_gate_conf only_when;
    bool has_target;
    bool has_sigma;
    bool has_lambda;
};

enum { PH_LEARN = 0, PH_RUN = 1 };

struct det_entry {
    struct mr_op_link link;
    mr_name_id score_id; /* <signal>.score */
    mr_name_id anom_id;  /* <signal>.anomaly_score */
    uint32_t nbase;      /* baseline values seen */
    uint8_t phase;
    uint8_t level; /* 0: armed, 1: warning raised, 2: alarm raised */
    double bmean;  /* Welford mean and sum of squared deviations of the baseline */
    double bm2;
    struct mr_det_state st;
    struct mr_det_roll roll; /* window > 0: the last `window` values (ring owned here) */
};

/* Latest value of the gate signal of one asset. */
struct det_gate {
    int64_t since; /* time of the state record that opened the gate */
    uint8_t open;  /* 1: the last gate value is one of only_when.values */
};

/* What scoring one value gave. */
struct verdict {
    bool scored;
    double score;
    int level; /* alert raised by this value: 0 none, 1 warning, 2 alarm */
};

enum {
    TAG_FEATURE,
    TAG_VALUE,
    TAG_BASELINE,
    TAG_STD,
    TAG_THRESHOLD,
    TAG_SCORE,
    TAG_DETECTOR,
    TAG_SEVERITY,
    TAG_WSTART, /* these two only when the value came from a window (it has window_start) */
    TAG_WEND,
    NTAGS
};
enum { ANN_SCORE, ANN_ANOMALY, ANN_ALERT, NANN };
static const char *const ann_names[NANN] = {"score", "anomaly_score", "alert"};
static const char *const tag_names[NTAGS] = {
    "feature", "value",    "baseline", "baseline_std", "threshold",
    "score",   "detector", "severity", "window_start", "window_end"};

struct det_ctx {
    struct mr_op_base base;
    const struct det_conf *conf;
    struct mr_det_params params;
    struct mr_op_keyed keyed;
    struct mr_op_buf out;
    mr_name_id *signals; /* conf->signals interned */
    size_t nsignals;
    mr_name_id alert_id;
    mr_name_id tag_ids[NTAGS];
    mr_name_id ann_ids[NANN];
    mr_name_id gate_id;     /* only_when.signal; 0: no gating */
    struct mr_keymap gates; /* asset -> struct det_gate */
    /* annotate: the text of the score tags of each buffered record (slot = buffer index) */
    char (*ann_text)[2][32];
    int64_t from_ns;
    int64_t to_ns;
    bool period;
    char text[256];         /* alert sentence (lives until the alert is flushed) */
    char tagbuf[NTAGS][32]; /* alert tag values */
};

/* The value of rec's tag `key`, or NULL. */
static const struct mr_bytes *tag_of(const struct mr_record *rec, mr_name_id key)
{
    for (uint16_t i = 0; i < rec->ntags && i < MR_RECORD_MAX_TAGS; i++) {
        if (rec->tags[i].key == key) {
            return &rec->tags[i].value;
        }
    }
    return NULL;
}

static double param_lambda(const struct det_conf *c)
{
    if (c->has_lambda) {
        return c->lambda;
    }
    return c->method == MR_DET_EWMA ? 0.2 : 5.0;
}

static bool watched(const struct det_ctx *c, mr_name_id signal)
{
    if (c->nsignals == 0) {
        return true;
    }
    for (size_t i = 0; i < c->nsignals; i++) {
        if (c->signals[i] == signal) {
            return true;
        }
    }
    return false;
}

static int intern_suffix(struct det_ctx *c, mr_name_id signal, const char *suffix, mr_name_id *id)
{
    size_t len = 0;
    const char *s = mr_names_str(c->base.host->names, signal, &len);
    char buf[NAME_MAX_LEN + 32];
    size_t sl = strlen(suffix);
    if (s == NULL || len > NAME_MAX_LEN) {
        return MR_ETOOBIG;
    }
    memcpy(buf, s, len);
    memcpy(buf + len, suffix, sl);
    return mr_names_intern(c->base.host->names, buf, len + sl, id);
}

/* Derived names: once per new key (and per key restored from a checkpoint). */
static int entry_names(struct det_ctx *c, struct det_entry *e, mr_name_id signal)
{
    int rc = intern_suffix(c, signal, ".score", &e->score_id);
    return rc == 0 ? intern_suffix(c, signal, ".anomaly_score", &e->anom_id) : rc;
}

static void baseline_finish(struct det_ctx *c, struct det_entry *e)
{
    const struct det_conf *cf = c->conf;
    double mu = cf->has_target ? cf->target : e->bmean;
    double sd = e->nbase > 1 ? sqrt(e->bm2 / (double)(e->nbase - 1)) : 0;
    if (cf->has_sigma) {
        sd = cf->sigma;
    }
    double floor = cf->min_sigma > 0 ? cf->min_sigma : 1e-9 * fmax(1.0, fabs(mu));
    e->phase = PH_RUN;
    mr_det_state_start(&e->st, mu, sd > floor ? sd : floor, (double)e->nbase);
}

/* Learn from x; returns true when x belongs to the baseline (not scored). */
static bool baseline_learn(struct det_ctx *c, struct det_entry *e, int64_t t, double x)
{
    if (c->period && t < c->from_ns && e->nbase == 0) {
        return true; /* before the healthy period: neither learned nor scored */
    }
    bool has_to = c->period && c->to_ns != INT64_MAX;
    if (!(has_to && t <= c->to_ns) &&
        ((has_to && e->nbase >= 2) || e->nbase >= (uint64_t)c->conf->baseline_samples)) {
        baseline_finish(c, e);
        return false;
    }
    e->nbase++;
    double d = x - e->bmean;
    e->bmean += d / (double)e->nbase;
    e->bm2 += d * (x - e->bmean);
    return true;
}

static void fmt_num(char *buf, double v)
{
    snprintf(buf, 32, "%.6g", v);
}

static int alert_push(struct det_ctx *c, const struct det_entry *e, const struct mr_record *rec,
                      double x, double score, int level)
{
    const struct det_conf *cf = c->conf;
    size_t flen = 0;
    const char *feature = mr_names_str(c->base.host->names, rec->signal, &flen);
    const char *method = method_names[cf->method];
    const char *sev = level == 2 ? "alarm" : "warning";
    bool up = x >= e->st.mu;
    double limit = cf->method == MR_DET_ZSCORE ? cf->threshold * e->st.sigma
                   : cf->method == MR_DET_EWMA ? mr_det_ewma_limit(&c->params, e->st.sigma, e->st.i)
                   : cf->method == MR_DET_CUSUM ? cf->h
                                                : c->params.lambda;
    fmt_num(c->tagbuf[TAG_VALUE], x);
    fmt_num(c->tagbuf[TAG_BASELINE], e->st.mu);
    fmt_num(c->tagbuf[TAG_STD], e->st.sigma);
    fmt_num(c->tagbuf[TAG_THRESHOLD], limit);
    fmt_num(c->tagbuf[TAG_SCORE], score);
    int n = snprintf(c->text, sizeof(c->text), "%.*s %s %s baseline %s (sigma %s), score %.3g (%s)",
                     (int)(flen > 100 ? 100 : flen), feature, c->tagbuf[TAG_VALUE],
                     up ? "above" : "below", c->tagbuf[TAG_BASELINE], c->tagbuf[TAG_STD], score,
                     method);
    struct mr_record a = {
        .time_ns = rec->time_ns,
        .asset = rec->asset,
        .signal = c->alert_id,
        .type = MR_VALUE_STRING,
        .quality = MR_QUALITY_GOOD,
        .ntags = TAG_WSTART,
        .v.str = {.ptr = c->text, .len = (uint32_t)(n < (int)sizeof(c->text) ? n : 255)},
    };
    const char *fixed[NTAGS] = {
        [TAG_FEATURE] = feature, [TAG_DETECTOR] = method, [TAG_SEVERITY] = sev};
    for (int i = 0; i < TAG_WSTART; i++) {
        const char *v = fixed[i] != NULL ? fixed[i] : c->tagbuf[i];
        size_t len = i == TAG_FEATURE ? flen : strlen(v);
        a.tags[i] =
            (struct mr_tag){.key = c->tag_ids[i], .value = {.ptr = v, .len = (uint32_t)len}};
    }
    /* A feature computed over a window (vibration, window) names it: the alert's evidence is
     * that window, [window_start, the feature's time). */
    const struct mr_bytes *ws = tag_of(rec, c->tag_ids[TAG_WSTART]);
    if (ws != NULL) {
        snprintf(c->tagbuf[TAG_WEND], sizeof(c->tagbuf[TAG_WEND]), "%" PRId64, rec->time_ns);
        a.tags[TAG_WSTART] = (struct mr_tag){.key = c->tag_ids[TAG_WSTART], .value = *ws};
        a.tags[TAG_WEND] = (struct mr_tag){
            .key = c->tag_ids[TAG_WEND],
            .value = {.ptr = c->tagbuf[TAG_WEND], .len = (uint32_t)strlen(c->tagbuf[TAG_WEND])}};
        a.ntags = NTAGS;
    }
    int rc = mr_op_buf_push(&c->out, &a);
    /* The alert borrows c->text and c->tagbuf: send it before the next alert reuses them. */
    return rc == 0 ? mr_op_buf_flush(&c->out) : rc;
}

static int score_push(struct det_ctx *c, const struct mr_record *rec, mr_name_id id, double v)
{
    struct mr_record s = {
        .time_ns = rec->time_ns,
        .asset = rec->asset,
        .signal = id,
        .type = MR_VALUE_F64,
        .quality = MR_QUALITY_GOOD,
        .v.f64 = v,
    };
    return mr_op_buf_push(&c->out, &s);
}

/* 0..1 for every method. zscore: the two-sided normal probability of a value less extreme
 * than this one, erf(|z| / sqrt 2), as NAB's windowed Gaussian (0.9973 at 3 sigma); the
 * other methods: the score clamped to 1 (1 = at or beyond the limit). */
static double anomaly_of(const struct det_conf *cf, double score)
{
    if (cf->method == MR_DET_ZSCORE) {
        return erf(score * cf->threshold / 1.4142135623730951);
    }
    return score < 1.0 ? score : 1.0;
}

/* Rolling baseline: score x against the window before adding it. */
static void roll_score(struct det_ctx *c, struct det_entry *e, double x, struct verdict *v)
{
    const struct det_conf *cf = c->conf;
    struct mr_det_roll *r = &e->roll;
    if (r->n >= (uint32_t)cf->baseline_samples) {
        double floor = cf->min_sigma > 0 ? cf->min_sigma : 1e-9 * fmax(1.0, fabs(r->mean));
        double sd = mr_det_roll_std(r);
        e->st.mu = r->mean;
        e->st.sigma = sd > floor ? sd : floor;
        e->phase = PH_RUN;
        v->score = mr_det_state_step(&c->params, &e->st, x);
        v->scored = true;
    }
    mr_det_roll_push(r, x);
}

static void score_value(struct det_ctx *c, struct det_entry *e, int64_t t, double x,
                        struct verdict *v)
{
    if (c->conf->window > 0) {
        roll_score(c, e, x, v);
    } else if (e->phase == PH_RUN || !baseline_learn(c, e, t, x)) {
        v->score = mr_det_state_step(&c->params, &e->st, x);
        v->scored = true;
    }
    if (!v->scored) {
        return;
    }
    if (e->level > 0 && v->score < c->conf->rearm) {
        e->level = 0;
    }
    int level = v->score >= c->conf->alarm_at ? 2 : v->score >= 1.0 ? 1 : 0;
    if (level > e->level) {
        e->level = (uint8_t)level;
        v->level = level;
    }
}

/* annotate: the record itself with tags score, anomaly_score and alert added. */
static int annotated_push(struct det_ctx *c, const struct mr_record *rec, const struct verdict *v)
{
    if (rec->ntags + NANN > MR_RECORD_MAX_TAGS) {
        mr_op_warn(&c->base, "value not annotated: it already has %u tags", (unsigned)rec->ntags);
        return mr_op_buf_push(&c->out, rec);
    }
    int rc = mr_op_buf_push(&c->out, rec);
    if (rc != 0) {
        return rc;
    }
    size_t slot = c->out.n - 1; /* the copy's text lives until the buffer is flushed */
    struct mr_record *r = &c->out.recs[slot];
    char *score = c->ann_text[slot][0];
    char *anom = c->ann_text[slot][1];
    int ns = snprintf(score, 32, "%.10g", v->scored ? v->score : 0.0);
    int na = snprintf(anom, 32, "%.10g", v->scored ? anomaly_of(c->conf, v->score) : 0.0);
    const char *alert = v->level > 0 ? "true" : "false";
    struct mr_bytes vals[NANN] = {
        [ANN_SCORE] = {.ptr = score, .len = (uint32_t)ns},
        [ANN_ANOMALY] = {.ptr = anom, .len = (uint32_t)na},
        [ANN_ALERT] = {.ptr = alert, .len = (uint32_t)strlen(alert)},
    };
    for (int i = 0; i < NANN; i++) {
        r->tags[r->ntags++] = (struct mr_tag){.key = c->ann_ids[i], .value = vals[i]};
    }
    return 0;
}

/* The gate value of rec's asset changed: open when it is one of only_when.values. */
static void gate_update(struct det_ctx *c, const struct mr_record *rec)
{
    char num[40];
    const char *s = num;
    size_t len = 0;
    if (rec->type == MR_VALUE_STRING) {
        s = rec->v.str.ptr;
        len = rec->v.str.len;
    } else if (rec->type == MR_VALUE_I64) {
        len = (size_t)snprintf(num, sizeof(num), "%lld", (long long)rec->v.i64);
    } else if (rec->type == MR_VALUE_F64) {
        len = (size_t)snprintf(num, sizeof(num), "%.15g", rec->v.f64);
    } else if (rec->type == MR_VALUE_BOOL) {
        s = rec->v.b ? "true" : "false";
        len = strlen(s);
    } else {
        return;
    }
    void *v = NULL;
    int inserted = 0;
    if (mr_keymap_upsert(&c->gates, rec->asset, &v, &inserted) != 0) {
        mr_op_warn(&c->base, "machine state not tracked: max_keys (%lld) reached",
                   (long long)c->conf->max_keys);
        return;
    }
    struct det_gate *g = v;
    const struct mr_strlist *vals = &c->conf->only_when.values;
    uint8_t was = g->open;
    g->open = 0;
    for (size_t i = 0; i < vals->n; i++) {
        if (strlen(vals->items[i]) == len && memcmp(vals->items[i], s, len) == 0) {
            g->open = 1;
        }
    }
    if (g->open && (!was || inserted)) {
        g->since = rec->time_ns; /* a repeated RUNNING keeps the time it started */
    }
}

/* Scoring allowed for this value: no gate, or its asset's latest gate value is an allowed one
 * (an asset whose state has not been seen yet is not scored) since at least `settle` before
 * the value, or before its window started when it has one (a 1-s vibration window that began
 * while the machine was stopped mixes silence and running: not the running machine). */
static bool gate_open(const struct det_ctx *c, const struct mr_record *rec)
{
    if (c->gate_id == 0) {
        return true;
    }
    const struct det_gate *g = mr_keymap_find(&c->gates, rec->asset);
    if (g == NULL || !g->open) {
        return false;
    }
    int64_t from = rec->time_ns;
    const struct mr_bytes *ws = tag_of(rec, c->tag_ids[TAG_WSTART]);
    if (ws != NULL && ws->len > 0 && ws->len < 24) {
        char buf[24];
        memcpy(buf, ws->ptr, ws->len);
        buf[ws->len] = '\0';
        from = strtoll(buf, NULL, 10);
    }
    return from >= mr_op_time_add(g->since, c->conf->only_when.settle_ns);
}

/* The state of (asset, signal), created on first use. NULL when it cannot be (logged). */
static struct det_entry *entry_get(struct det_ctx *c, const struct mr_record *rec)
{
    void *v = NULL;
    bool inserted = false;
    int rc = mr_op_keyed_get(&c->keyed, rec->asset, rec->signal, &v, &inserted);
    struct det_entry *e = v;
    if (rc == 0 && inserted) {
        rc = entry_names(c, e, rec->signal);
        if (rc == 0 && c->conf->has_target && c->conf->has_sigma) {
            baseline_finish(c, e); /* declared baseline: nothing to learn */
        }
    }
    if (rc == 0 && c->conf->window > 0 && e->roll.ring == NULL) {
        /* once per key: the ring is the key's declared state (window * 8 bytes) */
        double *ring = mr_calloc((size_t)c->conf->window, sizeof(double));
        if (ring == NULL) {
            rc = MR_ENOMEM;
        } else {
            mr_det_roll_init(&e->roll, ring, (uint32_t)c->conf->window);
        }
    }
    if (rc == MR_ETOOBIG) {
        mr_op_warn(&c->base, "value not scored: max_keys (%lld signals) reached or name too long",
                   (long long)c->conf->max_keys);
    } else if (rc != 0) {
        mr_op_warn(&c->base, "value not scored: %s", mr_strerror(rc));
    }
    return rc == 0 ? e : NULL;
}

static bool numeric(const struct mr_record *rec, double *x)
{
    if (rec->type == MR_VALUE_F64) {
        *x = rec->v.f64;
        return true;
    }
    if (rec->type == MR_VALUE_I64) {
        *x = (double)rec->v.i64;
        return true;
    }
    return false;
}

/* One record; mr_op_process_each runs it over a batch. */
static int process_one(void *ctx, const struct mr_record *rec)
{
    struct det_ctx *c = ctx;
    double x = 0;
    if (c->gate_id != 0 && rec->signal == c->gate_id) {
        gate_update(c, rec);
        return mr_op_buf_push(&c->out, rec);
    }
    if (!watched(c, rec->signal) || !numeric(rec, &x)) {
        return mr_op_buf_push(&c->out, rec);
    }
    struct verdict v = {0};
    struct det_entry *e = NULL;
    if (rec->quality == MR_QUALITY_GOOD && isfinite(x) && gate_open(c, rec)) {
        e = entry_get(c, rec);
        if (e != NULL) {
            score_value(c, e, rec->time_ns, x, &v);
        }
    }
    int rc = 0;
    if (c->conf->emit == EMIT_ANNOTATE) {
        rc = annotated_push(c, rec, &v);
    } else {
        rc = mr_op_buf_push(&c->out, rec);
        if (rc == 0 && v.scored) {
            rc = score_push(c, rec, e->score_id, v.score);
            rc = rc == 0 ? score_push(c, rec, e->anom_id, anomaly_of(c->conf, v.score)) : rc;
        }
    }
    if (rc == 0 && v.level > 0) {
        rc = alert_push(c, e, rec, x, v.score, v.level);
    }
    return rc;
}

static int detector_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct det_ctx *c = ctx;
    return mr_op_process_each(&c->base, &c->out, recs, n, process_one, c, err);
}

/* Checkpoint (version 2): version, key count, then per key in first-seen order:
 *   asset name, signal name, nbase | phase << 32 | level << 40, bmean, bm2,
 *   mu, sigma, a, b, amin, bmin, run_mean, run_n, i,
 *   n | since << 32, mean, m2, then the n window values held, oldest first (n = 0 without
 *   a window; a restart may change or drop the window: the newest values are kept)
 * then the gate: asset count, per asset its name, open (0/1) and since. */
static void roll_put(const struct mr_det_roll *r, struct mr_state_writer *w)
{
    mr_state_put_u64(w, (uint64_t)r->n | (uint64_t)r->since << 32);
    mr_state_put_f64(w, r->mean);
    mr_state_put_f64(w, r->m2);
    for (uint32_t i = 0; i < r->n; i++) {
        mr_state_put_f64(w, mr_det_roll_at(r, i));
    }
}

static int detector_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err)
{
    struct det_ctx *c = ctx;
    uint32_t n = mr_op_keyed_count(&c->keyed);
    mr_op_state_begin(w, STATE_VERSION, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct det_entry *e = mr_keymap_value_at(&c->keyed.keys, i);
        const struct mr_det_state *s = &e->st;
        mr_op_keyed_put_key(&c->keyed, i, w);
        mr_state_put_u64(w,
                         (uint64_t)e->nbase | (uint64_t)e->phase << 32 | (uint64_t)e->level << 40);
        const double f[] = {e->bmean, e->bm2,  s->mu,   s->sigma,    s->a,
                            s->b,     s->amin, s->bmin, s->run_mean, s->run_n};
        for (size_t j = 0; j < sizeof(f) / sizeof(f[0]); j++) {
            mr_state_put_f64(w, f[j]);
        }
        mr_state_put_u64(w, s->i);
        roll_put(&e->roll, w); /* n = 0 without a window */
    }
    uint32_t ng = mr_keymap_count(&c->gates);
    mr_state_put_u64(w, ng);
    for (uint32_t i = 0; i < ng; i++) {
        const struct det_gate *g = mr_keymap_value_at(&c->gates, i);
        mr_state_put_name(w, (mr_name_id)mr_keymap_key_at(&c->gates, i));
        mr_state_put_u64(w, g->open);
        mr_state_put_i64(w, g->since);
    }
    if (w->err != 0) {
        return MR_ERR_SET(err, w->err, "checkpoint: %s", mr_strerror(w->err));
    }
    return 0;
}

/* The values are pushed again (a changed window keeps the newest ones); with the same window
 * the saved sums are put back, so the scores continue bit for bit. */
static int roll_restore(struct det_ctx *c, struct det_entry *e, struct mr_state_reader *r)
{
    uint64_t bits = 0;
    double mean = 0;
    double m2 = 0;
    mr_state_get_u64(r, &bits);
    mr_state_get_f64(r, &mean);
    mr_state_get_f64(r, &m2);
    uint32_t n = (uint32_t)bits;
    if (r->err != 0 || n > mr_state_remaining(r) / 8) {
        return MR_ECORRUPT;
    }
    if (c->conf->window == 0) {
        for (uint32_t i = 0; i < n; i++) {
            mr_state_get_f64(r, &mean); /* the window was dropped: skip its values */
        }
        return r->err;
    }
    double *ring = mr_calloc((size_t)c->conf->window, sizeof(double));
    if (ring == NULL) {
        return MR_ENOMEM;
    }
    mr_det_roll_init(&e->roll, ring, (uint32_t)c->conf->window);
    for (uint32_t i = 0; i < n; i++) {
        double x = 0;
        mr_state_get_f64(r, &x);
        mr_det_roll_push(&e->roll, x);
    }
    if (n <= e->roll.cap) {
        e->roll.mean = mean;
        e->roll.m2 = m2;
        e->roll.since = (uint32_t)(bits >> 32) % e->roll.cap;
    }
    return r->err;
}

static int restore_entry(struct det_ctx *c, struct det_entry *e, mr_name_id signal,
                         struct mr_state_reader *r)
{
    uint64_t bits = 0;
    struct mr_det_state *s = &e->st;
    mr_state_get_u64(r, &bits);
    e->nbase = (uint32_t)bits;
    e->phase = (uint8_t)(bits >> 32);
    e->level = (uint8_t)(bits >> 40);
    double *f[] = {&e->bmean, &e->bm2,  &s->mu,   &s->sigma,    &s->a,
                   &s->b,     &s->amin, &s->bmin, &s->run_mean, &s->run_n};
    for (size_t j = 0; j < sizeof(f) / sizeof(f[0]); j++) {
        mr_state_get_f64(r, f[j]);
    }
    mr_state_get_u64(r, &s->i);
    if (r->err != 0 || e->phase > PH_RUN || e->level > 2 ||
        (e->phase == PH_RUN && !(s->sigma > 0))) {
        return MR_ECORRUPT;
    }
    int rc = roll_restore(c, e, r);
    return rc == 0 ? entry_names(c, e, signal) : rc;
}

static int gates_restore(struct det_ctx *c, struct mr_state_reader *r, struct mr_err *err)
{
    uint64_t n = 0;
    mr_state_get_u64(r, &n);
    for (uint64_t i = 0; i < n && r->err == 0; i++) {
        mr_name_id asset = 0;
        uint64_t open = 0;
        int64_t since = 0;
        void *v = NULL;
        int inserted = 0;
        mr_state_get_name(r, &asset);
        mr_state_get_u64(r, &open);
        mr_state_get_i64(r, &since);
        if (r->err == 0 && mr_keymap_upsert(&c->gates, asset, &v, &inserted) == 0) {
            ((struct det_gate *)v)->open = open != 0;
            ((struct det_gate *)v)->since = since;
        }
    }
    if (r->err != 0) {
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: truncated machine states");
    }
    return 0;
}

static int detector_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err)
{
    struct det_ctx *c = ctx;
    uint64_t n = 0;
    int orc = mr_op_state_open(r, STATE_VERSION, &n, err);
    if (orc != 0) {
        return orc;
    }
    for (uint64_t i = 0; i < n; i++) {
        void *v = NULL;
        mr_name_id asset = 0;
        int rc = mr_op_keyed_get_key(&c->keyed, r, &v, &asset, err);
        if (rc != 0) {
            return rc;
        }
        /* The key just read is the newest: its low half is the signal. */
        uint32_t last = mr_op_keyed_count(&c->keyed) - 1;
        mr_name_id signal = (mr_name_id)mr_keymap_key_at(&c->keyed.keys, last);
        rc = restore_entry(c, v, signal, r);
        if (rc == MR_ENOMEM) {
            return MR_ERR_SET(err, rc, "checkpoint: out of memory for the rolling window");
        }
        if (rc != 0) {
            return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: truncated or malformed entry %llu",
                              (unsigned long long)i);
        }
    }
    return gates_restore(c, r, err);
}

static void detector_fini(void *ctx)
{
    struct det_ctx *c = ctx;
    if (c->keyed.keys.entries != NULL) {
        for (uint32_t i = 0; i < mr_op_keyed_count(&c->keyed); i++) {
            struct det_entry *e = mr_keymap_value_at(&c->keyed.keys, i);
            mr_free(e->roll.ring);
        }
    }
    mr_free(c->signals);
    mr_free(c->ann_text);
    mr_keymap_fini(&c->gates);
    mr_op_keyed_fini(&c->keyed);
    mr_op_buf_fini(&c->out);
    memset(c, 0, sizeof(*c));
}

static int parse_time(const char *s, int64_t *ns)
{
    return mr_time_parse_rfc3339(s, strlen(s), ns);
}

static int intern_names(struct det_ctx *c, struct mr_err *err)
{
    const struct det_conf *cf = c->conf;
    struct mr_names *names = c->base.host->names;
    int rc = mr_names_intern(names, "alert", 5, &c->alert_id);
    for (int i = 0; i < NTAGS && rc == 0; i++) {
        rc = mr_names_intern(names, tag_names[i], strlen(tag_names[i]), &c->tag_ids[i]);
    }
    for (int i = 0; i < NANN && rc == 0; i++) {
        rc = mr_names_intern(names, ann_names[i], strlen(ann_names[i]), &c->ann_ids[i]);
    }
    for (size_t i = 0; i < cf->signals.n && rc == 0; i++) {
        const char *s = cf->signals.items[i];
        rc = mr_names_intern(names, s, strlen(s), &c->signals[i]);
    }
    const char *gate = cf->only_when.signal;
    if (gate != NULL && rc == 0) {
        rc = mr_names_intern(names, gate, strlen(gate), &c->gate_id);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot intern names: %s", mr_strerror(rc));
    }
    c->nsignals = cf->signals.n;
    return 0;
}

static int detector_init(void *ctx, const void *conf, struct mr_operator_host *host,
                         struct mr_err *err)
{
    struct det_ctx *c = ctx;
    const struct det_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->params = (struct mr_det_params){
        .method = cf->method,
        .direction = cf->direction,
        .threshold = cf->threshold,
        .lambda = param_lambda(cf),
        .L = cf->L,
        .k = cf->k,
        .h = cf->h,
        .delta = cf->delta,
    };
    c->to_ns = INT64_MAX;
    if (cf->baseline_from != NULL || cf->baseline_to != NULL) {
        c->period = true;
        if ((cf->baseline_from != NULL && parse_time(cf->baseline_from, &c->from_ns) != 0) ||
            (cf->baseline_to != NULL && parse_time(cf->baseline_to, &c->to_ns) != 0)) {
            return MR_ERR_SET(err, MR_EINVAL, "baseline_from/baseline_to: not RFC 3339 times");
        }
    }
    int rc = mr_op_base_init(&c->base, &mr_operator_detector, host, err);
    if (rc != 0) {
        return rc;
    }
    c->signals = mr_calloc(cf->signals.n + 1, sizeof(*c->signals));
    if (cf->emit == EMIT_ANNOTATE) {
        c->ann_text = mr_calloc(MR_OP_BUF_RECORDS, sizeof(*c->ann_text));
    }
    if (c->signals == NULL || (cf->emit == EMIT_ANNOTATE && c->ann_text == NULL) ||
        mr_op_keyed_init(&c->keyed, sizeof(struct det_entry), (uint32_t)cf->max_keys) != 0 ||
        mr_keymap_init(&c->gates, sizeof(struct det_gate), (uint32_t)cf->max_keys) != 0 ||
        mr_op_buf_init(&c->out, &c->base, 0) != 0) {
        detector_fini(c);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    rc = intern_names(c, err);
    if (rc != 0) {
        detector_fini(c);
    }
    return rc;
}

static void check_time(struct mr_config_check *chk, const char *field, const char *s, int64_t *ns)
{
    if (s != NULL && parse_time(s, ns) != 0) {
        mr_config_check_fail(chk, field, "'%s' is not an RFC 3339 time (e.g. 2026-11-01T00:00:00Z)",
                             s);
    }
}

static void check_window(const struct det_conf *c, struct mr_config_check *chk)
{
    if (c->window == 0) {
        return;
    }
    if (c->method != MR_DET_ZSCORE) {
        mr_config_check_fail(chk, "window", "a rolling window works with method zscore only");
    }
    if (c->has_target || c->has_sigma || c->baseline_from != NULL || c->baseline_to != NULL) {
        mr_config_check_fail(chk, "window",
                             "a rolling window learns its own baseline: remove target, sigma, "
                             "baseline_from and baseline_to");
    }
    if (c->baseline_samples > c->window) {
        mr_config_check_fail(chk, "baseline_samples",
                             "with a rolling window, scoring starts when the window holds "
                             "baseline_samples values: at most window (%lld), got %lld",
                             (long long)c->window, (long long)c->baseline_samples);
    }
    uint64_t bytes = (uint64_t)c->window * 8u * (uint64_t)c->max_keys;
    if (bytes > ROLL_STATE_MAX) {
        mr_config_check_fail(chk, "max_keys",
                             "window %lld values * 8 bytes * max_keys %lld = %llu MiB of rolling "
                             "state, above the 1024 MiB limit: lower max_keys to the number of "
                             "signals actually watched",
                             (long long)c->window, (long long)c->max_keys,
                             (unsigned long long)(bytes >> 20));
    }
}

static void detector_check(void *conf, struct mr_config_check *chk)
{
    const struct det_conf *c = conf;
    double lam = param_lambda(c);
    if (c->method == MR_DET_EWMA && !(lam > 0 && lam <= 1)) {
        mr_config_check_fail(chk, "lambda",
                             "for method ewma, lambda is the weight of the newest value and must "
                             "be in (0, 1], got %g",
                             lam);
    }
    if (c->method == MR_DET_PAGE_HINKLEY && !(lam > 0)) {
        mr_config_check_fail(chk, "lambda",
                             "for method page_hinkley, lambda is the alarm level in sigmas and "
                             "must be > 0, got %g",
                             lam);
    }
    if (c->has_sigma && !(c->sigma > 0)) {
        mr_config_check_fail(chk, "sigma", "must be > 0, got %g", c->sigma);
    }
    if (c->rearm > c->alarm_at) {
        mr_config_check_fail(chk, "rearm", "must not exceed alarm_at (%g)", c->alarm_at);
    }
    check_window(c, chk);
    if ((c->only_when.signal == NULL) != (c->only_when.values.n == 0)) {
        mr_config_check_fail(chk, "only_when",
                             "set both signal (the machine state signal, e.g. state) and values "
                             "(the states in which to score, e.g. [RUNNING])");
    }
    int64_t from = INT64_MIN;
    int64_t to = INT64_MAX;
    check_time(chk, "baseline_from", c->baseline_from, &from);
    check_time(chk, "baseline_to", c->baseline_to, &to);
    if (from >= to) {
        mr_config_check_fail(chk, "baseline_to", "must be later than baseline_from");
    }
}

#define F(member) offsetof(struct det_conf, member)

static const struct mr_field gate_fields[] = {
    {.name = "signal",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct det_gate_conf, signal),
     .help = "Signal holding the machine state (text or number), e.g. state; its records pass "
             "through, each one updates the state of its machine."},
    {.name = "values",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct det_gate_conf, values),
     .help = "States in which values are scored, e.g. [RUNNING]."},
    {.name = "settle",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct det_gate_conf, settle_ns),
     .def = "0s",
     .help = "Time after entering an allowed state before values count (a machine warming up, "
             "a process settling). A value from a window counts only if the window started "
             "that long after the state change."},
    {0},
};

static const struct mr_section gate_section = {
    .fields = gate_fields,
    .size = sizeof(struct det_gate_conf),
};

static const struct mr_field detector_fields[] = {
    {.name = "signals",
     .type = MR_FIELD_STRING_LIST,
     .offset = F(signals),
     .help = "Signals to watch, e.g. [vibration.kurtosis, temperature.mean]. Empty: every "
             "numeric signal."},
    {.name = "method",
     .type = MR_FIELD_ENUM,
     .offset = F(method),
     .def = "zscore",
     .values = method_names,
     .help = "zscore: each value against the baseline; ewma: smoothed values, good for small "
             "shifts; cusum: accumulated deviation, best for small sustained shifts; "
             "page_hinkley: accumulated deviation from the running mean."},
    {.name = "direction",
     .type = MR_FIELD_ENUM,
     .offset = F(direction),
     .def = "both",
     .values = direction_names,
     .help = "Which changes to report: up (values rise), down (values fall) or both."},
    {.name = "baseline_samples",
     .type = MR_FIELD_INT,
     .offset = F(baseline_samples),
     .def = "30",
     .min = "2",
     .max = "100000000",
     .help = "Number of first values per machine and signal used to learn the healthy mean "
             "and standard deviation before detection starts."},
    {.name = "baseline_from",
     .type = MR_FIELD_STRING,
     .offset = F(baseline_from),
     .help = "Start of a known healthy period (RFC 3339, e.g. 2026-11-01T00:00:00Z) to learn "
             "the baseline from instead of the first values."},
    {.name = "baseline_to",
     .type = MR_FIELD_STRING,
     .offset = F(baseline_to),
     .help = "End of the healthy period (RFC 3339); detection starts after it."},
    {.name = "target",
     .type = MR_FIELD_DOUBLE,
     .offset = F(target),
     .present = MR_FIELD_PRESENT(struct det_conf, has_target),
     .help = "Known in-control mean (e.g. the nominal value); set with sigma to skip learning."},
    {.name = "sigma",
     .type = MR_FIELD_DOUBLE,
     .offset = F(sigma),
     .present = MR_FIELD_PRESENT(struct det_conf, has_sigma),
     .help = "Known in-control standard deviation, in the signal's unit."},
    {.name = "min_sigma",
     .type = MR_FIELD_DOUBLE,
     .offset = F(min_sigma),
     .def = "0",
     .min = "0",
     .help = "Smallest standard deviation used, so that a signal that was constant while "
             "learning does not alarm on its first tiny change. 0: 1e-9 of the mean."},
    {.name = "threshold",
     .type = MR_FIELD_DOUBLE,
     .offset = F(threshold),
     .def = "3",
     .min = "0.1",
     .help = "zscore: alert when a value is this many standard deviations from the baseline."},
    {.name = "lambda",
     .type = MR_FIELD_DOUBLE,
     .offset = F(lambda),
     .present = MR_FIELD_PRESENT(struct det_conf, has_lambda),
     .help = "ewma: weight of the newest value, in (0, 1] (default 0.2; smaller reacts to "
             "smaller shifts, slower). page_hinkley: alarm level in standard deviations "
             "(default 5)."},
    {.name = "L",
     .type = MR_FIELD_DOUBLE,
     .offset = F(L),
     .def = "3",
     .min = "0.1",
     .help = "ewma: width of the control limits in standard deviations of the EWMA."},
    {.name = "k",
     .type = MR_FIELD_DOUBLE,
     .offset = F(k),
     .def = "0.5",
     .min = "0",
     .help = "cusum: allowance in standard deviations, about half the shift to detect."},
    {.name = "h",
     .type = MR_FIELD_DOUBLE,
     .offset = F(h),
     .def = "5",
     .min = "0.1",
     .help = "cusum: decision interval in standard deviations (alert when the sum exceeds it)."},
    {.name = "delta",
     .type = MR_FIELD_DOUBLE,
     .offset = F(delta),
     .def = "0.5",
     .min = "0",
     .help = "page_hinkley: change tolerated without accumulating, in standard deviations."},
    {.name = "rearm",
     .type = MR_FIELD_DOUBLE,
     .offset = F(rearm),
     .def = "1",
     .min = "0",
     .help = "After an alert, raise no other one until the score (1 = at the limit) has "
             "fallen below this; 1 means back inside the limits."},
    {.name = "alarm_at",
     .type = MR_FIELD_DOUBLE,
     .offset = F(alarm_at),
     .def = "2",
     .min = "1",
     .help = "Score at which a second alert with severity alarm is raised (2: twice the limit)."},
    {.name = "window",
     .type = MR_FIELD_INT,
     .offset = F(window),
     .def = "0",
     .min = "0",
     .max = "1000000",
     .help = "zscore only: score each value against the mean and standard deviation of the "
             "last `window` values before it (a rolling baseline that follows slow changes) "
             "instead of a fixed learned baseline; 0: fixed baseline. Costs window * 8 bytes "
             "per machine and signal."},
    {.name = "emit",
     .type = MR_FIELD_ENUM,
     .offset = F(emit),
     .def = "scores",
     .values = emit_names,
     .help = "scores: pass values on unchanged and add <signal>.score and "
             "<signal>.anomaly_score records; annotate: pass each watched value on with tags "
             "score, anomaly_score (0..1) and alert (true/false) instead, one record per value "
             "(0 and false while the baseline is learned). Alert records are emitted in both."},
    {.name = "only_when",
     .type = MR_FIELD_SECTION,
     .offset = F(only_when),
     .section = &gate_section,
     .help = "Score (and learn) only while the machine is in given states, e.g. {signal: state, "
             "values: [RUNNING]}; values of a machine in another state, or whose state has not "
             "been seen yet, pass unscored."},
    {.name = "max_keys",
     .type = MR_FIELD_INT,
     .offset = F(max_keys),
     .def = "100000",
     .min = "1",
     .max = "100000000",
     .help = "Most (machine, signal) pairs tracked; values of further pairs are not scored and "
             "count as errors."},
    {0},
};

const struct mr_plugin mr_operator_detector = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "detector",
    .help = "Detects shifts and anomalies in numeric signals with a control chart (zscore, "
            "EWMA, CUSUM or Page-Hinkley) against a learned, declared or rolling baseline, "
            "optionally only while the machine runs; emits <signal>.score and "
            "<signal>.anomaly_score records (or annotates each value) and alert records.",
    .conf = {.fields = detector_fields, .size = sizeof(struct det_conf), .check = detector_check},
    .ctx_size = sizeof(struct det_ctx),
    .op = {.init = detector_init,
           .process = detector_process,
           .snapshot = detector_snapshot,
           .restore = detector_restore,
           .fini = detector_fini},
};
