/* Operator `vibration`: condition-monitoring features of vibration sample blocks.
 *
 *   steps:
 *     - type: vibration
 *       signals: [vibration]            # sample-block signals to analyse
 *       block: 10000                    # samples per analysis window (1 s at 10 kHz)
 *       features: [rms, kurtosis, bands, bearing]
 *       bands: ["10-1000", "1000-5000"] # Hz
 *       shaft_rpm: 2000
 *       bearing: {balls: 16, ball_diameter: 0.331, pitch_diameter: 2.815,
 *                 contact_angle_deg: 15.17}
 *       envelope_band: "2000-4500"      # a structural resonance excited by bearing impacts
 *
 * Sample blocks (value type samples) of the listed signals are collected per (asset, signal)
 * into windows of `block` samples (non-overlapping; a window may span several records). Every
 * full window yields one f64 record per feature, named <signal>.<feature> (vibration.rms,
 * vibration.kurtosis, vibration.band_10_1000, vibration.bpfo_amp, vibration.bpfo_amp2 ...), with
 * the asset of the block and time = time of the window's last sample + 1 / rate (deterministic).
 * A block's time is the time of its first sample. Every input record passes through unchanged
 * (features follow the block that completed their window); add a filter to drop raw blocks.
 *
 * Features: rms, peak (max |x|), peak_to_peak, crest (peak / rms), skewness, kurtosis (Pearson:
 * 3 for Gaussian noise, 1.5 for a sine), bands (RMS in each band from the Hann-windowed power
 * spectrum; a sine of amplitude A in a band gives A / sqrt 2), bearing (with a bearing geometry
 * and shaft_rpm: amplitude of the envelope spectrum at FTF, BPFO, BPFI, BSF and their 2nd to
 * 4th harmonics: <signal>.ftf_amp, ftf_amp2 .. ftf_amp4, bpfo_amp .., the largest peak within
 * `tolerance` percent, at least +-1 bin). Values are in the signal's unit (g for `sim`).
 *
 * A window restarts (the partial one is dropped, silently) when a block does not continue the
 * previous one (gap or overlap of more than one sample period) or the sample rate changes.
 * Bad-quality blocks are passed on but not analysed (the window restarts after them). A window
 * with NaN or infinite samples yields nothing and counts as an error.
 *
 * State per key: block * 4 bytes of samples plus about 64 bytes (40 KiB for the default 1 s at
 * 10 kHz; block: 4096 keeps it under 16 KiB). Keys are capped by max_keys; blocks of further keys
 * pass unanalysed and count as errors. Checkpoints store the partial window of every key.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/vibration_fft.h"
#include "millrace/alloc.h"
#include "operators/op_common.h"

#define MAX_SIGNALS   16
#define MAX_BANDS     16
#define NSTATS        6
#define NHARM         4
#define MAX_FEATURES  (NSTATS + MAX_BANDS + MR_VIB_NDEFECTS * NHARM)
#define STATE_VERSION 1

extern const struct mr_plugin mr_operator_vibration;

static const char *const stat_names[NSTATS] = {"rms",   "peak",     "peak_to_peak",
                                               "crest", "skewness", "kurtosis"};
/* List defaults in the field table are documentation: an absent list arrives empty. */
static const char *const default_signals[] = {"vibration"};
static const char *const default_bands[] = {"10-500", "500-1000", "1000-2000", "2000-5000"};

static const char *const defect_names[MR_VIB_NDEFECTS] = {"ftf", "bpfo", "bpfi", "bsf"};

struct bearing_conf {
    int64_t balls;
    double ball_diameter;
    double pitch_diameter;
    double contact_angle_deg;
};

struct vib_conf {
    struct mr_strlist signals;
    int64_t block;
    struct mr_strlist features;
    struct mr_strlist bands;
    struct bearing_conf bearing;
    double shaft_rpm;
    char *envelope_band;
    double tolerance_pct;
    int64_t max_keys;
};

struct vib_entry {
    struct mr_op_link link;
    float *buf; /* block samples */
    uint32_t fill;
    uint32_t sig; /* index into the configured signals */
    double rate_hz;
    int64_t next_ns; /* expected time of the next sample */
};

struct vib_ctx {
    struct mr_op_base base;
    const struct vib_conf *conf;
    struct mr_op_keyed keyed;
    struct mr_op_buf out;
    struct mr_vib_dsp dsp;
    uint32_t block;
    bool want_stat[NSTATS];
    bool want_bands;
    bool want_bearing;
    size_t nbands;
    double band_lo[MAX_BANDS], band_hi[MAX_BANDS];
    double env_lo_frac, env_hi_frac; /* of the rate, when envelope_band is absent */
    double env_lo, env_hi;           /* Hz, when given */
    double defect_hz[MR_VIB_NDEFECTS];
    size_t nsig;
    const char *sig_name[MAX_SIGNALS];
    mr_name_id sig_id[MAX_SIGNALS];
    mr_name_id feat_id[MAX_SIGNALS][MAX_FEATURES];
};

/* "LO-HI" in Hz, 0 <= LO < HI. */
static int parse_range(const char *s, double *lo, double *hi)
{
    char *end = NULL;
    *lo = strtod(s, &end);
    if (end == s || *end != '-') {
        return -1;
    }
    const char *p = end + 1;
    *hi = strtod(p, &end);
    if (end == p || *end != '\0' || !(*lo >= 0) || !(*hi > *lo) || !isfinite(*hi)) {
        return -1;
    }
    return 0;
}

static int feature_index(const char *name)
{
    for (int i = 0; i < NSTATS; i++) {
        if (strcmp(name, stat_names[i]) == 0) {
            return i;
        }
    }
    if (strcmp(name, "bands") == 0) {
        return NSTATS;
    }
    if (strcmp(name, "bearing") == 0) {
        return NSTATS + 1;
    }
    return -1;
}

static bool has_bearing(const struct vib_conf *c)
{
    return c->bearing.balls > 0;
}

static void vib_check(void *conf, struct mr_config_check *chk)
{
    const struct vib_conf *c = conf;
    double lo = 0, hi = 0;
    if (c->block % 2 != 0) {
        mr_config_check_fail(chk, "block", "must be even (the FFT works on even sizes)");
    }
    for (size_t i = 0; i < c->features.n; i++) {
        if (feature_index(c->features.items[i]) < 0) {
            mr_config_check_fail(chk, "features",
                                 "unknown feature '%s' (rms, peak, peak_to_peak, crest, "
                                 "skewness, kurtosis, bands, bearing)",
                                 c->features.items[i]);
        }
    }
    for (size_t i = 0; i < c->bands.n; i++) {
        if (parse_range(c->bands.items[i], &lo, &hi) != 0) {
            mr_config_check_fail(chk, "bands", "'%s' is not a band \"LO-HI\" in Hz with LO < HI",
                                 c->bands.items[i]);
        }
    }
    if (c->envelope_band != NULL && parse_range(c->envelope_band, &lo, &hi) != 0) {
        mr_config_check_fail(chk, "envelope_band", "'%s' is not a band \"LO-HI\" in Hz",
                             c->envelope_band);
    }
    if (has_bearing(c)) {
        if (!(c->bearing.ball_diameter > 0) ||
            !(c->bearing.pitch_diameter > c->bearing.ball_diameter)) {
            mr_config_check_fail(chk, "bearing",
                                 "needs 0 < ball_diameter < pitch_diameter (same unit)");
        }
        if (!(c->shaft_rpm > 0)) {
            mr_config_check_fail(chk, "shaft_rpm", "is needed with a bearing geometry");
        }
    }
}

/* Intern "<signal>.<suffix>". */
static int intern2(struct vib_ctx *c, const char *sig, const char *suffix, mr_name_id *id,
                   struct mr_err *err)
{
    char name[256];
    int len = snprintf(name, sizeof(name), "%s.%s", sig, suffix);
    if (len < 0 || (size_t)len >= sizeof(name)) {
        return MR_ERR_SET(err, MR_EINVAL, "feature name '%s.%s' is too long", sig, suffix);
    }
    int rc = mr_names_intern(c->base.host->names, name, (size_t)len, id);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot intern '%s': %s", name, mr_strerror(rc));
    }
    return 0;
}

static int intern_signal(struct vib_ctx *c, size_t s, struct mr_err *err)
{
    const char *sig = c->sig_name[s];
    int rc = mr_names_intern(c->base.host->names, sig, strlen(sig), &c->sig_id[s]);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot intern '%s': %s", sig, mr_strerror(rc));
    }
    mr_name_id *ids = c->feat_id[s];
    for (int i = 0; i < NSTATS && rc == 0; i++) {
        rc = intern2(c, sig, stat_names[i], &ids[i], err);
    }
    for (size_t b = 0; b < c->nbands && rc == 0; b++) {
        char suffix[96];
        snprintf(suffix, sizeof(suffix), "band_%g_%g", c->band_lo[b], c->band_hi[b]);
        rc = intern2(c, sig, suffix, &ids[NSTATS + b], err);
    }
    for (int d = 0; d < MR_VIB_NDEFECTS && rc == 0; d++) {
        for (int h = 0; h < NHARM && rc == 0; h++) {
            char suffix[32];
            if (h == 0) {
                snprintf(suffix, sizeof(suffix), "%s_amp", defect_names[d]);
            } else {
                snprintf(suffix, sizeof(suffix), "%s_amp%d", defect_names[d], h + 1);
            }
            rc = intern2(c, sig, suffix, &ids[NSTATS + MAX_BANDS + d * NHARM + h], err);
        }
    }
    return rc;
}

static void setup_features(struct vib_ctx *c)
{
    const struct vib_conf *cf = c->conf;
    for (int f = 0; f < NSTATS + 2; f++) {
        bool want = cf->features.n == 0;
        for (size_t i = 0; i < cf->features.n; i++) {
            want |= feature_index(cf->features.items[i]) == f;
        }
        if (f < NSTATS) {
            c->want_stat[f] = want;
        }
        c->want_bands |= want && f == NSTATS;
        c->want_bearing |= want && f == NSTATS + 1 && has_bearing(cf);
    }
    bool dflt = cf->bands.n == 0;
    size_t nb = dflt ? sizeof(default_bands) / sizeof(default_bands[0]) : cf->bands.n;
    c->nbands = nb < MAX_BANDS ? nb : MAX_BANDS;
    for (size_t b = 0; b < c->nbands; b++) {
        parse_range(dflt ? default_bands[b] : cf->bands.items[b], &c->band_lo[b], &c->band_hi[b]);
    }
    c->nsig = cf->signals.n == 0 ? 1 : cf->signals.n;
    for (size_t i = 0; i < c->nsig; i++) {
        c->sig_name[i] = cf->signals.n == 0 ? default_signals[i] : cf->signals.items[i];
    }
    c->env_lo_frac = 0.2;
    c->env_hi_frac = 0.45;
    if (cf->envelope_band != NULL) {
        parse_range(cf->envelope_band, &c->env_lo, &c->env_hi);
    }
    if (has_bearing(cf)) {
        struct mr_vib_bearing g = {.balls = (double)cf->bearing.balls,
                                   .ball_diameter = cf->bearing.ball_diameter,
                                   .pitch_diameter = cf->bearing.pitch_diameter,
                                   .contact_angle_deg = cf->bearing.contact_angle_deg};
        mr_vib_defect_freqs(&g, cf->shaft_rpm / 60.0, c->defect_hz);
    }
}

static int emit_value(struct vib_ctx *c, mr_name_id asset, mr_name_id sig, int64_t t, double v)
{
    struct mr_record r = {.time_ns = t,
                          .asset = asset,
                          .signal = sig,
                          .type = MR_VALUE_F64,
                          .quality = MR_QUALITY_GOOD,
                          .v.f64 = v};
    return mr_op_buf_push(&c->out, &r);
}

static int emit_bearing(struct vib_ctx *c, const mr_name_id *ids, mr_name_id asset, int64_t t,
                        double rate)
{
    double lo = c->conf->envelope_band != NULL ? c->env_lo : c->env_lo_frac * rate;
    double hi = c->conf->envelope_band != NULL ? c->env_hi : c->env_hi_frac * rate;
    double tol = c->conf->tolerance_pct / 100.0;
    double fmax = 0;
    for (int d = 0; d < MR_VIB_NDEFECTS; d++) {
        fmax = fmax > c->defect_hz[d] ? fmax : c->defect_hz[d];
    }
    int rc = mr_vib_dsp_prepare(&c->dsp, rate, lo, hi, fmax * NHARM * (1 + tol));
    if (rc != 0) {
        mr_op_warn(&c->base, "no envelope spectrum at %g Hz sample rate, band %g-%g Hz: %s", rate,
                   lo, hi, mr_strerror(rc));
        return 0;
    }
    mr_vib_dsp_envelope(&c->dsp);
    for (int d = 0; d < MR_VIB_NDEFECTS && rc == 0; d++) {
        for (int h = 0; h < NHARM && rc == 0; h++) {
            double a = mr_vib_env_peak(&c->dsp, c->defect_hz[d] * (h + 1), tol);
            rc = emit_value(c, asset, ids[NSTATS + MAX_BANDS + d * NHARM + h], t, a);
        }
    }
    return rc;
}

/* One full window of entry e: compute and emit every feature. */
static int analyse(struct vib_ctx *c, struct vib_entry *e, mr_name_id asset, int64_t t)
{
    struct mr_vib_stats st;
    mr_vib_stats(e->buf, c->block, &st);
    if (!isfinite(st.rms) || !isfinite(st.peak)) {
        mr_op_warn(&c->base, "window of %u samples dropped: NaN or infinite samples", c->block);
        return 0;
    }
    const mr_name_id *ids = c->feat_id[e->sig];
    double vals[NSTATS] = {st.rms, st.peak, st.peak_to_peak, st.crest, st.skewness, st.kurtosis};
    int rc = 0;
    for (int i = 0; i < NSTATS && rc == 0; i++) {
        rc = c->want_stat[i] ? emit_value(c, asset, ids[i], t, vals[i]) : 0;
    }
    if (rc != 0 || !(c->want_bands || c->want_bearing)) {
        return rc;
    }
    mr_vib_dsp_spectrum(&c->dsp, e->buf);
    for (size_t b = 0; b < c->nbands && c->want_bands && rc == 0; b++) {
        double v = mr_vib_band_rms(&c->dsp, e->rate_hz, c->band_lo[b], c->band_hi[b]);
        rc = emit_value(c, asset, ids[NSTATS + b], t, v);
    }
    if (rc == 0 && c->want_bearing) {
        rc = emit_bearing(c, ids, asset, t, e->rate_hz);
    }
    return rc;
}

static int signal_index(const struct vib_ctx *c, mr_name_id sig)
{
    for (size_t s = 0; s < c->nsig; s++) {
        if (c->sig_id[s] == sig) {
            return (int)s;
        }
    }
    return -1;
}

static int entry_of(struct vib_ctx *c, const struct mr_record *rec, int s, struct vib_entry **out)
{
    void *v = NULL;
    bool inserted = false;
    int rc = mr_op_keyed_get(&c->keyed, rec->asset, rec->signal, &v, &inserted);
    if (rc != 0) {
        mr_op_warn(&c->base, "block not analysed: %s",
                   rc == MR_ETOOBIG ? "max_keys reached" : mr_strerror(rc));
        return rc;
    }
    struct vib_entry *e = v;
    if (e->buf == NULL) {
        e->buf = mr_calloc(c->block, sizeof(float));
        if (e->buf == NULL) {
            mr_op_warn(&c->base, "block not analysed: out of memory");
            return MR_ENOMEM;
        }
        e->sig = (uint32_t)s;
    }
    *out = e;
    return 0;
}

static int64_t span_ns(uint64_t samples, double rate)
{
    return (int64_t)llround((double)samples * 1e9 / rate);
}

static int vib_block(struct vib_ctx *c, const struct mr_record *rec, int s)
{
    const struct mr_samples *sm = &rec->v.samples;
    double rate = sm->rate_hz;
    if (rec->quality == MR_QUALITY_BAD || !(rate > 0) || !isfinite(rate) || sm->n == 0) {
        struct vib_entry *e = mr_keymap_find(&c->keyed.keys, mr_op_key(rec->asset, rec->signal));
        if (e != NULL) {
            e->fill = 0;
        }
        return 0;
    }
    struct vib_entry *e = NULL;
    if (entry_of(c, rec, s, &e) != 0) {
        return 0;
    }
    int64_t period = span_ns(1, rate);
    int64_t gap = rec->time_ns - e->next_ns;
    if (rate != e->rate_hz || gap > period || gap < -period) {
        e->fill = 0;
        e->rate_hz = rate;
    }
    e->next_ns = rec->time_ns + span_ns(sm->n, rate);
    const char *src = (const char *)(const void *)sm->data;
    int rc = 0;
    for (uint32_t i = 0; i < sm->n && rc == 0;) {
        uint32_t take = sm->n - i < c->block - e->fill ? sm->n - i : c->block - e->fill;
        memcpy(e->buf + e->fill, src + (size_t)i * sizeof(float), take * sizeof(float));
        e->fill += take;
        i += take;
        if (e->fill == c->block) {
            e->fill = 0;
            rc = analyse(c, e, rec->asset, rec->time_ns + span_ns(i, rate));
        }
    }
    return rc;
}

static int vib_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct vib_ctx *c = ctx;
    mr_counter_add(c->base.counters.records_in, n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct mr_record *r = &recs[i];
        rc = mr_op_buf_push(&c->out, r);
        int s = r->type == MR_VALUE_SAMPLES ? signal_index(c, r->signal) : -1;
        if (rc == 0 && s >= 0) {
            rc = vib_block(c, r, s);
        }
    }
    rc = rc == 0 ? mr_op_buf_flush(&c->out) : rc;
    c->out.n = 0;
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "passing records on failed: %s", mr_strerror(rc));
    }
    return 0;
}

/* Checkpoint: version, block, key count, then per key: asset, signal, rate, next_ns, the
 * partial window's samples (fill * 4 bytes, little-endian floats as in memory). */
static int vib_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err)
{
    struct vib_ctx *c = ctx;
    uint32_t n = mr_op_keyed_count(&c->keyed);
    mr_state_put_u64(w, STATE_VERSION);
    mr_state_put_u64(w, c->block);
    mr_state_put_u64(w, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct vib_entry *e = mr_keymap_value_at(&c->keyed.keys, i);
        mr_op_keyed_put_key(&c->keyed, i, w);
        mr_state_put_f64(w, e->rate_hz);
        mr_state_put_i64(w, e->next_ns);
        mr_state_put_bytes(w, e->buf, e->buf != NULL ? e->fill * sizeof(float) : 0);
    }
    if (w->err != 0) {
        return MR_ERR_SET(err, w->err, "checkpoint: %s", mr_strerror(w->err));
    }
    return 0;
}

static int restore_entry(struct vib_ctx *c, struct mr_state_reader *r, bool same_block,
                         struct mr_err *err)
{
    mr_name_id asset = 0, sig = 0;
    double rate = 0;
    int64_t next = 0;
    const void *p = NULL;
    size_t len = 0;
    mr_state_get_name(r, &asset);
    mr_state_get_name(r, &sig);
    mr_state_get_f64(r, &rate);
    mr_state_get_i64(r, &next);
    if (mr_state_get_bytes(r, &p, &len) != 0 || len % sizeof(float) != 0) {
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: truncated or malformed key");
    }
    int s = signal_index(c, sig);
    if (s < 0) {
        return 0; /* signal no longer configured: forget it */
    }
    struct mr_record key = {.asset = asset, .signal = sig};
    struct vib_entry *e = NULL;
    int rc = entry_of(c, &key, s, &e);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "checkpoint: cannot restore a key: %s", mr_strerror(rc));
    }
    e->rate_hz = rate;
    e->next_ns = next;
    e->fill = 0;
    if (same_block && len / sizeof(float) < c->block) {
        memcpy(e->buf, p, len);
        e->fill = (uint32_t)(len / sizeof(float));
    }
    return 0;
}

static int vib_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err)
{
    struct vib_ctx *c = ctx;
    uint64_t version = 0, block = 0, n = 0;
    mr_state_get_u64(r, &version);
    mr_state_get_u64(r, &block);
    if (mr_state_get_u64(r, &n) != 0 || version != STATE_VERSION) {
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: unknown state version %llu",
                          (unsigned long long)version);
    }
    /* A changed block size drops the partial windows (they would mix two window lengths). */
    for (uint64_t i = 0; i < n; i++) {
        int rc = restore_entry(c, r, block == c->block, err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static void vib_fini(void *ctx)
{
    struct vib_ctx *c = ctx;
    for (uint32_t i = 0; i < mr_op_keyed_count(&c->keyed); i++) {
        struct vib_entry *e = mr_keymap_value_at(&c->keyed.keys, i);
        mr_free(e->buf);
    }
    mr_op_keyed_fini(&c->keyed);
    mr_op_buf_fini(&c->out);
    mr_vib_dsp_fini(&c->dsp);
    memset(c, 0, sizeof(*c));
}

static int vib_init(void *ctx, const void *conf, struct mr_operator_host *host, struct mr_err *err)
{
    struct vib_ctx *c = ctx;
    memset(c, 0, sizeof(*c));
    c->conf = conf;
    c->block = (uint32_t)c->conf->block;
    int rc = mr_op_base_init(&c->base, &mr_operator_vibration, host, err);
    if (rc != 0) {
        return rc;
    }
    if (c->conf->signals.n > MAX_SIGNALS || c->conf->bands.n > MAX_BANDS) {
        return MR_ERR_SET(err, MR_EINVAL, "at most %d signals and %d bands", MAX_SIGNALS,
                          MAX_BANDS);
    }
    if (mr_op_keyed_init(&c->keyed, sizeof(struct vib_entry), (uint32_t)c->conf->max_keys) != 0 ||
        mr_op_buf_init(&c->out, &c->base, 0) != 0) {
        vib_fini(c);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    rc = mr_vib_dsp_init(&c->dsp, c->block);
    if (rc != 0) {
        vib_fini(c);
        return MR_ERR_SET(err, rc, "cannot prepare an FFT of %u samples: %s", c->block,
                          mr_strerror(rc));
    }
    setup_features(c);
    for (size_t s = 0; s < c->nsig && rc == 0; s++) {
        rc = intern_signal(c, s, err);
    }
    if (rc != 0) {
        vib_fini(c);
    }
    return rc;
}

static const struct mr_field bearing_fields[] = {
    {.name = "balls",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct bearing_conf, balls),
     .def = "0",
     .min = "0",
     .max = "200",
     .help = "Number of rolling elements per row. 0: no bearing analysis."},
    {.name = "ball_diameter",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct bearing_conf, ball_diameter),
     .def = "0",
     .min = "0",
     .help = "Rolling element diameter d (any length unit, the same as pitch_diameter)."},
    {.name = "pitch_diameter",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct bearing_conf, pitch_diameter),
     .def = "0",
     .min = "0",
     .help = "Pitch diameter D (circle through the centres of the rolling elements)."},
    {.name = "contact_angle_deg",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct bearing_conf, contact_angle_deg),
     .def = "0",
     .min = "0",
     .max = "89",
     .help = "Contact angle in degrees (0 for deep-groove ball bearings under radial load)."},
    {0},
};

static const struct mr_section bearing_section = {
    .fields = bearing_fields,
    .size = sizeof(struct bearing_conf),
};

static const struct mr_field vib_fields[] = {
    {.name = "signals",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct vib_conf, signals),
     .def = "[vibration]",
     .min = "1",
     .max = "16",
     .help = "Sample-block signals to analyse; other records pass through untouched."},
    {.name = "block",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct vib_conf, block),
     .def = "10000",
     .min = "64",
     .max = "100000",
     .help = "Samples per analysis window (even). 10000 is 1 s at 10 kHz, giving 1 Hz "
             "spectral resolution; memory per machine is 4 bytes per sample."},
    {.name = "features",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct vib_conf, features),
     .def = "[rms, peak, peak_to_peak, crest, kurtosis, skewness, bands, bearing]",
     .min = "1",
     .max = "8",
     .help = "What to compute per window: rms, peak, peak_to_peak, crest, kurtosis, skewness "
             "(time domain), bands (RMS per frequency band), bearing (envelope amplitudes at "
             "the bearing defect frequencies; needs `bearing` and `shaft_rpm`)."},
    {.name = "bands",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct vib_conf, bands),
     .def = "[10-500, 500-1000, 1000-2000, 2000-5000]",
     .max = "16",
     .help = "Frequency bands \"LO-HI\" in Hz; each gives <signal>.band_LO_HI, the RMS of the "
             "signal within the band."},
    {.name = "bearing",
     .type = MR_FIELD_SECTION,
     .offset = offsetof(struct vib_conf, bearing),
     .section = &bearing_section,
     .help = "Geometry of the monitored rolling bearing, for its defect frequencies (FTF, BPFO, "
             "BPFI, BSF)."},
    {.name = "shaft_rpm",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct vib_conf, shaft_rpm),
     .def = "0",
     .min = "0",
     .help = "Shaft speed in revolutions per minute (fixed-speed machines)."},
    {.name = "envelope_band",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct vib_conf, envelope_band),
     .help = "Band \"LO-HI\" in Hz around a structural resonance that bearing impacts excite, "
             "demodulated for the envelope spectrum. Absent: 20 % to 45 % of the sample rate."},
    {.name = "tolerance",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct vib_conf, tolerance_pct),
     .def = "2",
     .min = "0",
     .max = "20",
     .help = "Search +- this percentage around each defect frequency for its peak (real peaks "
             "sit 1-2 % below the kinematic value because of slip); at least +-1 bin."},
    {.name = "max_keys",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct vib_conf, max_keys),
     .def = "10000",
     .min = "1",
     .max = "1000000",
     .help = "Most (asset, signal) pairs analysed; blocks of further pairs pass unanalysed and "
             "count as errors."},
    {0},
};

const struct mr_plugin mr_operator_vibration = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "vibration",
    .help = "Condition-monitoring features of vibration sample blocks per window: RMS, peak, "
            "crest factor, kurtosis, band RMS and bearing defect amplitudes (envelope "
            "spectrum).",
    .conf = {.fields = vib_fields, .size = sizeof(struct vib_conf), .check = vib_check},
    .ctx_size = sizeof(struct vib_ctx),
    .op = {.init = vib_init,
           .process = vib_process,
           .snapshot = vib_snapshot,
           .restore = vib_restore,
           .fini = vib_fini},
};
