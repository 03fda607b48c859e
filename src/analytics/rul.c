/* Operator `rul`: remaining useful life from the trend of a degradation feature.
 *
 *   steps:
 *     - type: rul
 *       signals: [vibration.rms]   # degradation features to watch (numeric records)
 *       threshold: 7.1             # failure level of the feature (required)
 *       direction: up              # up: fails when rising to threshold; down: when falling
 *       history: 24h               # event time of trend to fit
 *       max_points: 512            # points kept per (asset, signal)
 *       min_points: 10             # samples needed before any estimate
 *       model: best                # linear | exponential | best (higher R^2)
 *       every: 1m                  # at most one estimate per key per minute of event time
 *       alert_before: 24h          # alert when the predicted time to threshold drops below
 *
 * Per (asset, signal) the operator keeps the recent points of the feature and fits, by
 * weighted least squares (times in seconds relative to the key's first point, centred on
 * their weighted mean: stable for months of data in doubles):
 *   linear       y = a + b t
 *   exponential  y = c exp(d t), as a straight line through ln y (only when every point is
 *                positive; otherwise this model is skipped)
 *   best         the one of the two with the higher R^2, both computed on y itself
 * The failure time is where the fit reaches `threshold`; RUL = t_fail - t_now in seconds of
 * event time (t_now = the time of the record that triggered the estimate), 0 when the fit is
 * already past the threshold.
 *
 * No estimate (no record) while fewer than min_points samples are in the history, when the
 * trend does not move toward the threshold (slope <= 0 for up, >= 0 for down), or when the
 * slope is not significant: |slope| must be at least 3 standard errors (t statistic >= 3). So a
 * flat or noise-only series yields no RUL rather than a huge, meaningless one.
 *
 * Output: every input record passes through unchanged. For a watched signal, after its record
 * and at most once per `every` of event time per key (0: after every value), one record
 * `<signal>.rul` (f64 seconds, time = the triggering record's time) with tags model
 * (linear|exponential), r2, slope (per second; exponential: the rate d of ln y), threshold and
 * points (samples in the fit). Records of bad quality, non-numeric or non-finite values, and
 * values older than the key's newest point (out of order; counted as errors) are not fitted.
 *
 * Alerts (detector=rul): when an estimate drops below alert_before, one record with signal
 * `alert` (string value, a sentence), tags feature=<signal>.rul, value (RUL s), baseline (the
 * failure threshold), threshold (alert_before in s), detector=rul, model and severity (alarm
 * when RUL < alert_before / 2 at the crossing, else warning). Once per crossing: re-armed when
 * a later estimate is at least 1.1 x alert_before (the 10 % hysteresis keeps a noisy estimate
 * near the limit from re-alerting).
 *
 * Bounded history: the history is split into max_points - 1 buckets of equal event time
 * (aligned on the key's first value; 24h / 511 = 169 s by default). Values of one bucket are
 * folded into one point (running means of t, y and ln y; weight = values it stands for), so at
 * most max_points points are live, every value keeps its weight in the fit, and a bucket is
 * dropped whole once it lies entirely before the history (the history is thus rounded up to
 * whole buckets). The slope's standard error uses points - 2 degrees of freedom (a point's mean
 * has variance sigma^2 / w), so bucketing does not make the significance test optimistic. The
 * exponential fit of a bucket uses the mean of ln y of its values.
 *
 * State per key: about 80 bytes plus max_points x 40 bytes (20 KiB at the default 512),
 * allocated when the key is first seen; keys are capped by max_keys (further keys pass through
 * and count as errors). Checkpoints store each key by name with its points.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "millrace/alloc.h"
#include "operators/op_common.h"

#define STATE_VERSION 1
#define MAX_SIGNALS   64
#define MIN_TSTAT     3.0
#define REARM_FACTOR  1.1
#define TAG_LEN       40
#define MSG_LEN       200
#define NTAGS_MAX     8

extern const struct mr_plugin mr_operator_rul;

enum { DIR_UP = 0, DIR_DOWN = 1 };
enum { MODEL_LINEAR = 0, MODEL_EXP = 1, MODEL_BEST = 2 };

struct rul_conf {
    struct mr_strlist signals;
    double threshold;
    int direction;
    int model;
    int64_t history_ns;
    int64_t max_points;
    int64_t min_points;
    int64_t every_ns;
    int64_t alert_before_ns;
    int64_t max_keys;
};

/* One point of the trend: means over the `w` samples it stands for. ly is NaN when one of
 * them was not positive (no exponential fit then). */
struct rul_point {
    double t; /* seconds since the key's origin */
    double y;
    double ly;
    double w;
    int64_t bucket; /* (time - origin) / bucket width */
};

struct rul_entry {
    struct mr_op_link link;
    struct rul_point *pts; /* max_points, owned; live points are pts[start .. start + n) */
    uint32_t start;
    uint32_t n;
    int64_t t0_ns;        /* origin of t */
    int64_t last_ns;      /* newest fitted sample */
    int64_t next_emit_ns; /* earliest time of the next estimate */
    mr_name_id out_sig;   /* "<signal>.rul" */
    uint32_t alerted;
};

/* Text the tags of one buffered output record borrow until the buffer is flushed. */
struct rul_scratch {
    char tag[NTAGS_MAX][TAG_LEN];
    char msg[MSG_LEN];
};

enum {
    TK_MODEL,
    TK_R2,
    TK_SLOPE,
    TK_THRESHOLD,
    TK_POINTS,
    TK_FEATURE,
    TK_VALUE,
    TK_BASELINE,
    TK_DETECTOR,
    TK_SEVERITY,
    TK_COUNT
};
static const char *const tag_names[TK_COUNT] = {"model",    "r2",      "slope", "threshold",
                                                "points",   "feature", "value", "baseline",
                                                "detector", "severity"};

struct rul_ctx {
    struct mr_op_base base;
    const struct rul_conf *conf;
    struct mr_op_keyed keyed;
    struct mr_op_buf out;
    struct rul_scratch *scratch; /* MR_OP_BUF_RECORDS, parallel to out.recs */
    mr_name_id sigs[MAX_SIGNALS];
    size_t nsigs;
    mr_name_id tk[TK_COUNT];
    mr_name_id alert_sig;
};

struct rul_fit {
    int ok;
    int model;
    double a, b; /* linear: y = a + b t; exponential: ln y = a + b t */
    double r2;
    double tstat;
    double w; /* samples */
};

static const char *const model_names[] = {"linear", "exponential", "best", NULL};
static const char *const dir_names[] = {"up", "down", NULL};

/* ---- fitting ---- */

static void fit_model(const struct rul_point *p, uint32_t n, int model, struct rul_fit *f)
{
    bool lg = model == MODEL_EXP;
    double W = 0, tm = 0, ym = 0, yraw = 0;
    memset(f, 0, sizeof(*f));
    for (uint32_t i = 0; i < n; i++) {
        double y = lg ? p[i].ly : p[i].y;
        if (!isfinite(y)) {
            return; /* a non-positive value: no exponential fit */
        }
        W += p[i].w;
        tm += p[i].w * p[i].t;
        ym += p[i].w * y;
        yraw += p[i].w * p[i].y;
    }
    if (n < 3 || W <= 2) {
        return;
    }
    tm /= W;
    ym /= W;
    yraw /= W;
    double sxx = 0, sxy = 0, syy = 0;
    for (uint32_t i = 0; i < n; i++) {
        double dt = p[i].t - tm;
        double dy = (lg ? p[i].ly : p[i].y) - ym;
        sxx += p[i].w * dt * dt;
        sxy += p[i].w * dt * dy;
        syy += p[i].w * dy * dy;
    }
    if (!(sxx > 0)) {
        return;
    }
    f->b = sxy / sxx;
    f->a = ym - f->b * tm;
    double ssres = syy - f->b * sxy;
    ssres = ssres > 0 ? ssres : 0;
    /* A point is the mean of w values (variance sigma^2 / w), so sum w r^2 estimates
     * sigma^2 with n - 2 degrees of freedom (points, not samples). */
    double se = sqrt(ssres / (double)(n - 2) / sxx);
    f->tstat = se > 0 ? fabs(f->b) / se : (f->b != 0 ? INFINITY : 0);
    /* R^2 on y itself for both models, so that `best` compares like with like. */
    double res = 0, tot = 0;
    for (uint32_t i = 0; i < n; i++) {
        double lin = f->a + f->b * p[i].t;
        double yhat = lg ? exp(lin) : lin;
        res += p[i].w * (p[i].y - yhat) * (p[i].y - yhat);
        tot += p[i].w * (p[i].y - yraw) * (p[i].y - yraw);
    }
    f->r2 = tot > 0 ? 1 - res / tot : 0;
    f->w = W;
    f->model = model;
    f->ok = isfinite(f->a) && isfinite(f->b);
}

/* RUL in seconds at t_now (seconds since origin), or false when the fit gives none. */
static bool fit_rul(const struct rul_conf *cf, const struct rul_fit *f, double t_now, double *rul)
{
    if (!f->ok || f->tstat < MIN_TSTAT || (cf->direction == DIR_UP ? f->b <= 0 : f->b >= 0)) {
        return false;
    }
    double target = cf->threshold;
    if (f->model == MODEL_EXP) {
        if (!(target > 0)) {
            return false;
        }
        target = log(target);
    }
    double t_fail = (target - f->a) / f->b;
    double r = t_fail - t_now;
    if (!isfinite(r)) {
        return false;
    }
    *rul = r > 0 ? r : 0;
    return true;
}

/* ---- history ---- */

/* Bucket width: history split into max_points - 1 buckets (so at most max_points are live). */
static int64_t bucket_width(const struct rul_conf *cf)
{
    int64_t w = cf->history_ns / (cf->max_points - 1);
    return w > 0 ? w : 1;
}

static void history_add(const struct rul_conf *cf, struct rul_entry *e, int64_t now_ns, double y)
{
    uint32_t cap = (uint32_t)cf->max_points;
    int64_t k = (now_ns - e->t0_ns) / bucket_width(cf);
    double t = (double)(now_ns - e->t0_ns) / 1e9;
    double ly = y > 0 ? log(y) : NAN;
    while (e->n > 0 && e->pts[e->start].bucket <= k - (int64_t)cap) {
        e->start++;
        e->n--;
    }
    struct rul_point *last = e->n > 0 ? &e->pts[e->start + e->n - 1] : NULL;
    if (last != NULL && last->bucket == k) {
        /* Same bucket: fold the sample into its running means. */
        double w = last->w + 1;
        last->t += (t - last->t) / w;
        last->y += (y - last->y) / w;
        last->ly += (ly - last->ly) / w;
        last->w = w;
        e->last_ns = now_ns;
        return;
    }
    if (e->n == cap) {
        e->start++; /* only after a restore with a different max_points */
        e->n--;
    }
    if (e->start + e->n == cap) {
        memmove(e->pts, e->pts + e->start, e->n * sizeof(*e->pts));
        e->start = 0;
    }
    e->pts[e->start + e->n] = (struct rul_point){.t = t, .y = y, .ly = ly, .w = 1, .bucket = k};
    e->n++;
    e->last_ns = now_ns;
}

/* ---- output ---- */

/* Buffer r; *out is the buffered copy to fill in, *scratch the text its tags may borrow. */
static int push_rec(struct rul_ctx *c, const struct mr_record *r, struct mr_record **out,
                    struct rul_scratch **scratch)
{
    int rc = mr_op_buf_push(&c->out, r);
    if (rc == 0) {
        *out = &c->out.recs[c->out.n - 1];
        *scratch = &c->scratch[c->out.n - 1];
    }
    return rc;
}

static void set_tag(struct mr_record *r, struct rul_scratch *s, mr_name_id key, const char *fmt,
                    double v)
{
    int i = r->ntags;
    int len = snprintf(s->tag[i], TAG_LEN, fmt, v);
    len = len < 0 ? 0 : (len >= TAG_LEN ? TAG_LEN - 1 : len);
    r->tags[i] = (struct mr_tag){.key = key, .value = {.ptr = s->tag[i], .len = (uint32_t)len}};
    r->ntags++;
}

static void set_tag_str(struct mr_record *r, mr_name_id key, const char *v, size_t len)
{
    r->tags[r->ntags++] = (struct mr_tag){.key = key, .value = {.ptr = v, .len = (uint32_t)len}};
}

static int emit_alert(struct rul_ctx *c, const struct mr_record *in, const struct rul_entry *e,
                      const struct rul_fit *f, double rul)
{
    const struct rul_conf *cf = c->conf;
    double before = (double)cf->alert_before_ns / 1e9;
    const char *sev = rul < before / 2 ? "alarm" : "warning";
    size_t flen = 0;
    const char *feature = mr_names_str(c->base.host->names, e->out_sig, &flen);
    struct mr_record a = {.time_ns = in->time_ns,
                          .asset = in->asset,
                          .signal = c->alert_sig,
                          .type = MR_VALUE_STRING,
                          .quality = MR_QUALITY_GOOD};
    struct mr_record *r = NULL;
    struct rul_scratch *s = NULL;
    int rc = push_rec(c, &a, &r, &s);
    if (rc != 0) {
        return rc;
    }
    int len = snprintf(s->msg, MSG_LEN,
                       "%.*s: %.3g h to threshold %.6g (%s fit, R2 %.2f), below alert_before "
                       "%.3g h (rul)",
                       (int)flen, feature, rul / 3600, cf->threshold, model_names[f->model], f->r2,
                       before / 3600);
    len = len < 0 ? 0 : (len >= MSG_LEN ? MSG_LEN - 1 : len);
    r->v.str = (struct mr_bytes){.ptr = s->msg, .len = (uint32_t)len};
    set_tag_str(r, c->tk[TK_FEATURE], feature, flen);
    set_tag(r, s, c->tk[TK_VALUE], "%.6g", rul);
    set_tag(r, s, c->tk[TK_BASELINE], "%.6g", cf->threshold);
    set_tag(r, s, c->tk[TK_THRESHOLD], "%.6g", before);
    set_tag_str(r, c->tk[TK_DETECTOR], "rul", 3);
    set_tag_str(r, c->tk[TK_MODEL], model_names[f->model], strlen(model_names[f->model]));
    set_tag_str(r, c->tk[TK_SEVERITY], sev, strlen(sev));
    return 0;
}

/* Fit the key's history and emit its estimate (and an alert on a crossing). */
static int estimate(struct rul_ctx *c, const struct mr_record *in, struct rul_entry *e)
{
    const struct rul_conf *cf = c->conf;
    const struct rul_point *p = e->pts + e->start;
    struct rul_fit lin = {0}, ex = {0};
    if (cf->model != MODEL_EXP) {
        fit_model(p, e->n, MODEL_LINEAR, &lin);
    }
    if (cf->model != MODEL_LINEAR) {
        fit_model(p, e->n, MODEL_EXP, &ex);
    }
    const struct rul_fit *f = &lin;
    if (cf->model == MODEL_EXP ||
        (cf->model == MODEL_BEST && ex.ok && (!lin.ok || ex.r2 > lin.r2))) {
        f = &ex;
    }
    double rul = 0;
    double t_now = (double)(in->time_ns - e->t0_ns) / 1e9;
    if (f->w < (double)cf->min_points || !fit_rul(cf, f, t_now, &rul)) {
        return 0;
    }
    struct mr_record o = {.time_ns = in->time_ns,
                          .asset = in->asset,
                          .signal = e->out_sig,
                          .type = MR_VALUE_F64,
                          .quality = MR_QUALITY_GOOD,
                          .v.f64 = rul};
    struct mr_record *r = NULL;
    struct rul_scratch *s = NULL;
    int rc = push_rec(c, &o, &r, &s);
    if (rc != 0) {
        return rc;
    }
    const char *m = model_names[f->model];
    set_tag_str(r, c->tk[TK_MODEL], m, strlen(m));
    set_tag(r, s, c->tk[TK_R2], "%.4f", f->r2);
    set_tag(r, s, c->tk[TK_SLOPE], "%.6g", f->b);
    set_tag(r, s, c->tk[TK_THRESHOLD], "%.6g", cf->threshold);
    set_tag(r, s, c->tk[TK_POINTS], "%.0f", f->w);
    if (cf->alert_before_ns <= 0) {
        return 0;
    }
    double before = (double)cf->alert_before_ns / 1e9;
    if (e->alerted && rul >= REARM_FACTOR * before) {
        e->alerted = 0;
    } else if (!e->alerted && rul < before) {
        e->alerted = 1;
        return emit_alert(c, in, e, f, rul);
    }
    return 0;
}

static bool watched(const struct rul_ctx *c, mr_name_id sig)
{
    for (size_t i = 0; i < c->nsigs; i++) {
        if (c->sigs[i] == sig) {
            return true;
        }
    }
    return false;
}

/* A new key: its point buffer and output name (allocation and interning once per key). */
static int entry_open(struct rul_ctx *c, struct rul_entry *e, mr_name_id signal)
{
    size_t len = 0;
    const char *s = mr_names_str(c->base.host->names, signal, &len);
    char name[256];
    if (s == NULL || len + 5 > sizeof(name)) {
        return MR_ETOOBIG;
    }
    memcpy(name, s, len);
    memcpy(name + len, ".rul", 4);
    int rc = mr_names_intern(c->base.host->names, name, len + 4, &e->out_sig);
    if (rc != 0) {
        return rc;
    }
    e->pts = mr_calloc((size_t)c->conf->max_points, sizeof(*e->pts));
    return e->pts == NULL ? MR_ENOMEM : 0;
}

/* One record; mr_op_process_each runs it over a batch. */
static int rul_one(void *ctx, const struct mr_record *rec)
{
    struct rul_ctx *c = ctx;
    int rc = mr_op_buf_push(&c->out, rec);
    if (rc != 0 || !watched(c, rec->signal) || rec->quality == MR_QUALITY_BAD) {
        return rc;
    }
    double y = rec->type == MR_VALUE_F64   ? rec->v.f64
               : rec->type == MR_VALUE_I64 ? (double)rec->v.i64
                                           : NAN;
    if (!isfinite(y)) {
        return 0;
    }
    void *v = NULL;
    bool inserted = false;
    rc = mr_op_keyed_get(&c->keyed, rec->asset, rec->signal, &v, &inserted);
    if (rc != 0) {
        mr_op_warn(&c->base, "no estimate for a signal: %s (max_keys %lld)", mr_strerror(rc),
                   (long long)c->conf->max_keys);
        return 0;
    }
    struct rul_entry *e = v;
    if (e->pts == NULL) {
        rc = entry_open(c, e, rec->signal);
        if (rc != 0) {
            mr_op_warn(&c->base, "no estimate for a signal: %s", mr_strerror(rc));
            return 0;
        }
        e->t0_ns = rec->time_ns;
        e->last_ns = rec->time_ns;
        e->next_emit_ns = INT64_MIN;
    }
    if (rec->time_ns < e->last_ns) {
        mr_op_warn(&c->base, "value older than the newest one of its signal left out of the "
                             "trend (out of order)");
        return 0;
    }
    history_add(c->conf, e, rec->time_ns, y);
    if (rec->time_ns < e->next_emit_ns) {
        return 0;
    }
    /* every = 0: next_emit stays at this time, so the next value is due too. */
    e->next_emit_ns = mr_op_time_add(rec->time_ns, c->conf->every_ns);
    return estimate(c, rec, e);
}

static int rul_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct rul_ctx *c = ctx;
    return mr_op_process_each(&c->base, &c->out, recs, n, rul_one, c, err);
}

/* ---- checkpoints ----
 * version, key count, then per key: asset, signal, t0, last, next_emit, alerted, n,
 * n x (t, y, ly, w) oldest first. */
static int rul_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err)
{
    struct rul_ctx *c = ctx;
    uint32_t n = mr_op_keyed_count(&c->keyed);
    mr_op_state_begin(w, STATE_VERSION, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct rul_entry *e = mr_keymap_value_at(&c->keyed.keys, i);
        mr_op_keyed_put_key(&c->keyed, i, w);
        mr_state_put_i64(w, e->t0_ns);
        mr_state_put_i64(w, e->last_ns);
        mr_state_put_i64(w, e->next_emit_ns);
        mr_state_put_u64(w, e->alerted);
        mr_state_put_u64(w, e->pts != NULL ? e->n : 0);
        for (uint32_t j = 0; e->pts != NULL && j < e->n; j++) {
            const struct rul_point *p = &e->pts[e->start + j];
            mr_state_put_f64(w, p->t);
            mr_state_put_f64(w, p->y);
            mr_state_put_f64(w, p->ly);
            mr_state_put_f64(w, p->w);
        }
    }
    if (w->err != 0) {
        return MR_ERR_SET(err, w->err, "rul: checkpoint: %s", mr_strerror(w->err));
    }
    return 0;
}

static int restore_points(struct rul_ctx *c, struct rul_entry *e, struct mr_state_reader *r)
{
    uint64_t n = 0;
    uint64_t alerted = 0;
    mr_state_get_i64(r, &e->t0_ns);
    mr_state_get_i64(r, &e->last_ns);
    mr_state_get_i64(r, &e->next_emit_ns);
    mr_state_get_u64(r, &alerted);
    if (mr_state_get_u64(r, &n) != 0 || n > mr_state_remaining(r) / 32) {
        return MR_ECORRUPT;
    }
    e->alerted = alerted != 0;
    uint64_t cap = (uint64_t)c->conf->max_points;
    for (uint64_t j = 0; j < n; j++) {
        struct rul_point p = {0};
        mr_state_get_f64(r, &p.t);
        mr_state_get_f64(r, &p.y);
        mr_state_get_f64(r, &p.ly);
        mr_state_get_f64(r, &p.w);
        /* Recomputed: the bucket width follows the current history and max_points. */
        p.bucket = (int64_t)(p.t * 1e9) / bucket_width(c->conf);
        /* A smaller max_points than at the checkpoint keeps the newest points. */
        if (j + cap >= n) {
            e->pts[e->n++] = p;
        }
    }
    return r->err;
}

static int rul_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err)
{
    struct rul_ctx *c = ctx;
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
        uint64_t key = mr_keymap_key_at(&c->keyed.keys, mr_op_keyed_count(&c->keyed) - 1);
        struct rul_entry *e = v;
        rc = entry_open(c, e, (mr_name_id)key);
        if (rc != 0) {
            return MR_ERR_SET(err, rc, "rul: checkpoint: entry %llu: %s", (unsigned long long)i,
                              mr_strerror(rc));
        }
        if (restore_points(c, e, r) != 0) {
            return MR_ERR_SET(err, MR_ECORRUPT,
                              "rul: checkpoint: truncated or malformed entry %llu",
                              (unsigned long long)i);
        }
    }
    return 0;
}

static void rul_fini(void *ctx)
{
    struct rul_ctx *c = ctx;
    for (uint32_t i = 0; i < mr_op_keyed_count(&c->keyed); i++) {
        struct rul_entry *e = mr_keymap_value_at(&c->keyed.keys, i);
        mr_free(e->pts);
    }
    mr_op_keyed_fini(&c->keyed);
    mr_op_buf_fini(&c->out);
    mr_free(c->scratch);
    memset(c, 0, sizeof(*c));
}

static int rul_init(void *ctx, const void *conf, struct mr_operator_host *host, struct mr_err *err)
{
    struct rul_ctx *c = ctx;
    memset(c, 0, sizeof(*c));
    c->conf = conf;
    int rc = mr_op_base_init(&c->base, &mr_operator_rul, host, err);
    if (rc != 0) {
        return rc;
    }
    c->scratch = mr_calloc(MR_OP_BUF_RECORDS, sizeof(*c->scratch));
    if (c->scratch == NULL ||
        mr_op_keyed_init(&c->keyed, sizeof(struct rul_entry), (uint32_t)c->conf->max_keys) != 0 ||
        mr_op_buf_init(&c->out, &c->base, 0) != 0) {
        rul_fini(c);
        return MR_ERR_SET(err, MR_ENOMEM, "rul: out of memory");
    }
    for (size_t i = 0; i < c->conf->signals.n && rc == 0; i++) {
        const char *s = c->conf->signals.items[i];
        rc = mr_names_intern(host->names, s, strlen(s), &c->sigs[c->nsigs++]);
    }
    for (int i = 0; i < TK_COUNT && rc == 0; i++) {
        rc = mr_names_intern(host->names, tag_names[i], strlen(tag_names[i]), &c->tk[i]);
    }
    rc = rc == 0 ? mr_names_intern(host->names, "alert", 5, &c->alert_sig) : rc;
    if (rc != 0) {
        rul_fini(c);
        return MR_ERR_SET(err, rc, "rul: cannot intern names: %s", mr_strerror(rc));
    }
    return 0;
}

static void rul_check(void *conf, struct mr_config_check *chk)
{
    const struct rul_conf *c = conf;
    if (c->min_points > c->max_points) {
        mr_config_check_fail(chk, "min_points", "min_points (%lld) exceeds max_points (%lld)",
                             (long long)c->min_points, (long long)c->max_points);
    }
    if (c->model == MODEL_EXP && !(c->threshold > 0)) {
        mr_config_check_fail(chk, "threshold",
                             "the exponential model needs a positive threshold (got %g)",
                             c->threshold);
    }
}

static const struct mr_field rul_fields[] = {
    {.name = "signals",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct rul_conf, signals),
     .min = "1",
     .max = "64",
     .flags = MR_FIELD_REQUIRED,
     .help = "Degradation features to watch, e.g. [vibration.rms]: numeric signals that drift "
             "toward a failure level as the machine wears."},
    {.name = "threshold",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct rul_conf, threshold),
     .flags = MR_FIELD_REQUIRED,
     .help = "Failure level of the feature (in its unit): the remaining useful life is the time "
             "until the fitted trend reaches it."},
    {.name = "direction",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct rul_conf, direction),
     .def = "up",
     .values = dir_names,
     .help = "up: the feature rises toward the threshold as the machine wears (vibration, "
             "temperature); down: it falls (efficiency, insulation resistance)."},
    {.name = "history",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct rul_conf, history_ns),
     .def = "24h",
     .min = "1s",
     .help = "How much of the recent trend (event time) the fit uses; older points are "
             "dropped."},
    {.name = "max_points",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct rul_conf, max_points),
     .def = "512",
     .min = "16",
     .max = "65536",
     .help = "Most points kept per machine and signal (40 bytes each): the history is split into "
             "this many time buckets and the values of a bucket are averaged into one point."},
    {.name = "min_points",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct rul_conf, min_points),
     .def = "10",
     .min = "3",
     .help = "Values needed in the history before any estimate is made."},
    {.name = "model",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct rul_conf, model),
     .def = "best",
     .values = model_names,
     .help = "Trend shape: linear (steady wear), exponential (accelerating wear, positive "
             "values only) or best (whichever fits the history better, by R^2)."},
    {.name = "every",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct rul_conf, every_ns),
     .def = "1m",
     .help = "At most one estimate per machine and signal per this much event time; 0: after "
             "every value."},
    {.name = "alert_before",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct rul_conf, alert_before_ns),
     .def = "0",
     .help = "Raise an alert once when the predicted time to the threshold drops below this "
             "(e.g. 48h to plan the repair); 0 turns alerts off."},
    {.name = "max_keys",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct rul_conf, max_keys),
     .def = "10000",
     .min = "1",
     .max = "10000000",
     .help = "Most (machine, signal) pairs tracked; each holds up to max_points x 40 bytes. "
             "Further pairs get no estimate and count as errors."},
    {0},
};

const struct mr_plugin mr_operator_rul = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "rul",
    .help = "Remaining useful life: fits the trend of a degradation feature (linear or "
            "exponential) and predicts how long until it reaches a failure threshold; optional "
            "alert.",
    .conf = {.fields = rul_fields, .size = sizeof(struct rul_conf), .check = rul_check},
    .ctx_size = sizeof(struct rul_ctx),
    .op = {.init = rul_init,
           .process = rul_process,
           .snapshot = rul_snapshot,
           .restore = rul_restore,
           .fini = rul_fini},
};
