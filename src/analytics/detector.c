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
 *
 * Every input record passes through unchanged. Per key (asset, signal) the detector first
 * learns a baseline: the mean and standard deviation of the first `baseline_samples` good,
 * finite values, or of the values whose time lies in [baseline_from, baseline_to] (values
 * before the period are not scored; when fewer than 2 values fell in the period, the first
 * baseline_samples values after it are used instead). `target` and `sigma` declare the
 * baseline instead of learning it (both set: no learning at all). A sigma below `min_sigma`
 * (a constant signal) is raised to it, or to 1e-9 * max(1, |mean|) when min_sigma is 0.
 *
 * After the baseline, each value yields two records at the value's time:
 *   <signal>.score          the statistic / its limit: 1.0 = at the control limit
 *   <signal>.anomaly_score  the score clamped to [0, 1] (1 = at or beyond the limit)
 * and, when the score crosses 1.0, an alert record (signal `alert`, severity warning); when
 * it then reaches `alarm_at` (default 2, i.e. twice the limit) a second alert with severity
 * alarm. Re-arming: after an alert no further alert is raised for the key until its score
 * has fallen below `rearm` (default 1.0: back inside the limit). The statistics are not reset
 * by an alert (a persistent shift keeps the CUSUM above h, as in the NIST charts).
 * Alert tags: feature, value, baseline (mean), baseline_std, threshold (zscore and ewma: the
 * control limit's distance from the baseline in the signal's unit; cusum and page_hinkley:
 * the decision level h or lambda in sigmas), score, detector (the method), severity. The
 * alert's value is a sentence such as "temp 14 above baseline 10 (sigma 1.1547), score 1.15
 * (zscore)". Bad or uncertain quality, non-finite values, text, booleans and
 * sample blocks pass through unscored.
 *
 * State per key: 120 bytes (link, derived names, Welford sums, struct mr_det_state) plus the
 * key map's slot. Keys are capped by max_keys; further keys pass unscored and count as errors.
 * Checkpoints store every key by name. Method formulas: detector_methods.h.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analytics/detector_methods.h"
#include "millrace/alloc.h"
#include "operators/op_common.h"

#define STATE_VERSION 1
#define NAME_MAX_LEN  240

extern const struct mr_plugin mr_operator_detector;

static const char *const method_names[] = {"zscore", "ewma", "cusum", "page_hinkley", NULL};
static const char *const direction_names[] = {"both", "up", "down", NULL};

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
    NTAGS
};
static const char *const tag_names[NTAGS] = {"feature",   "value", "baseline", "baseline_std",
                                             "threshold", "score", "detector", "severity"};

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
    int64_t from_ns;
    int64_t to_ns;
    bool period;
    char text[256];         /* alert sentence (lives until the alert is flushed) */
    char tagbuf[NTAGS][32]; /* alert tag values */
};

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
        .ntags = NTAGS,
        .v.str = {.ptr = c->text, .len = (uint32_t)(n < (int)sizeof(c->text) ? n : 255)},
    };
    const char *fixed[NTAGS] = {
        [TAG_FEATURE] = feature, [TAG_DETECTOR] = method, [TAG_SEVERITY] = sev};
    for (int i = 0; i < NTAGS; i++) {
        const char *v = fixed[i] != NULL ? fixed[i] : c->tagbuf[i];
        size_t len = i == TAG_FEATURE ? flen : strlen(v);
        a.tags[i] =
            (struct mr_tag){.key = c->tag_ids[i], .value = {.ptr = v, .len = (uint32_t)len}};
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

static int detect_one(struct det_ctx *c, struct det_entry *e, const struct mr_record *rec, double x)
{
    if (e->phase == PH_LEARN && baseline_learn(c, e, rec->time_ns, x)) {
        return 0;
    }
    double score = mr_det_state_step(&c->params, &e->st, x);
    int rc = score_push(c, rec, e->score_id, score);
    rc = rc == 0 ? score_push(c, rec, e->anom_id, score < 1.0 ? score : 1.0) : rc;
    if (rc != 0) {
        return rc;
    }
    if (e->level > 0 && score < c->conf->rearm) {
        e->level = 0;
    }
    int level = score >= c->conf->alarm_at ? 2 : score >= 1.0 ? 1 : 0;
    if (level > e->level) {
        e->level = (uint8_t)level;
        return alert_push(c, e, rec, x, score, level);
    }
    return 0;
}

/* One record; mr_op_process_each runs it over a batch. */
static int process_one(void *ctx, const struct mr_record *rec)
{
    struct det_ctx *c = ctx;
    int rc = mr_op_buf_push(&c->out, rec);
    if (rc != 0 || rec->quality != MR_QUALITY_GOOD || !watched(c, rec->signal)) {
        return rc;
    }
    double x = 0;
    if (rec->type == MR_VALUE_F64) {
        x = rec->v.f64;
    } else if (rec->type == MR_VALUE_I64) {
        x = (double)rec->v.i64;
    } else {
        return 0;
    }
    if (!isfinite(x)) {
        return 0;
    }
    void *v = NULL;
    bool inserted = false;
    rc = mr_op_keyed_get(&c->keyed, rec->asset, rec->signal, &v, &inserted);
    if (rc == 0 && inserted) {
        rc = entry_names(c, v, rec->signal);
        if (rc == 0 && c->conf->has_target && c->conf->has_sigma) {
            baseline_finish(c, v); /* declared baseline: nothing to learn */
        }
    }
    if (rc != 0) {
        if (rc == MR_ETOOBIG) {
            mr_op_warn(&c->base,
                       "value not scored: max_keys (%lld signals) reached or name "
                       "too long",
                       (long long)c->conf->max_keys);
        } else {
            mr_op_warn(&c->base, "value not scored: %s", mr_strerror(rc));
        }
        return 0;
    }
    return detect_one(c, v, rec, x);
}

static int detector_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct det_ctx *c = ctx;
    return mr_op_process_each(&c->base, &c->out, recs, n, process_one, c, err);
}

/* Checkpoint: version, key count, then per key in first-seen order:
 *   asset name, signal name, nbase | phase << 32 | level << 40, bmean, bm2,
 *   mu, sigma, a, b, amin, bmin, run_mean, run_n, i */
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
    }
    if (w->err != 0) {
        return MR_ERR_SET(err, w->err, "checkpoint: %s", mr_strerror(w->err));
    }
    return 0;
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
    return entry_names(c, e, signal);
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
        if (restore_entry(c, v, signal, r) != 0) {
            return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: truncated or malformed entry %llu",
                              (unsigned long long)i);
        }
    }
    return 0;
}

static void detector_fini(void *ctx)
{
    struct det_ctx *c = ctx;
    mr_free(c->signals);
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
    for (size_t i = 0; i < cf->signals.n && rc == 0; i++) {
        const char *s = cf->signals.items[i];
        rc = mr_names_intern(names, s, strlen(s), &c->signals[i]);
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
    if (c->signals == NULL ||
        mr_op_keyed_init(&c->keyed, sizeof(struct det_entry), (uint32_t)cf->max_keys) != 0 ||
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
    int64_t from = INT64_MIN;
    int64_t to = INT64_MAX;
    check_time(chk, "baseline_from", c->baseline_from, &from);
    check_time(chk, "baseline_to", c->baseline_to, &to);
    if (from >= to) {
        mr_config_check_fail(chk, "baseline_to", "must be later than baseline_from");
    }
}

#define F(member) offsetof(struct det_conf, member)

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
            "EWMA, CUSUM or Page-Hinkley) against a learned or declared baseline; emits "
            "<signal>.score, <signal>.anomaly_score and alert records.",
    .conf = {.fields = detector_fields, .size = sizeof(struct det_conf), .check = detector_check},
    .ctx_size = sizeof(struct det_ctx),
    .op = {.init = detector_init,
           .process = detector_process,
           .snapshot = detector_snapshot,
           .restore = detector_restore,
           .fini = detector_fini},
};
