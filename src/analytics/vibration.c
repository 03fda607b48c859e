/* Operator `vibration`: condition-monitoring features of vibration sample blocks.
 *
 *   steps:
 *     - type: vibration
 *       signals: [vibration]            # sample-block signals (acceleration) to analyse
 *       block: 10000                    # samples per result window (1 s at 10 kHz)
 *       nfft: 2048                      # Welch segment: 4.9 Hz resolution at 10 kHz
 *       features: [rms, kurtosis, bands, bearing, velocity]
 *       bands: ["10-1000", "1000-5000"] # Hz
 *       shaft_rpm: 2000
 *       bearing: {balls: 16, ball_diameter: 0.331, pitch_diameter: 2.815,
 *                 contact_angle_deg: 15.17}
 *       envelope_band: "2000-4500"      # a structural resonance excited by bearing impacts
 *       unit: g                         # of the samples, for velocity: g or m/s2
 *       iso_group: 2                    # ISO 10816-3 machine group (15-300 kW) ...
 *       foundation: rigid               # ... and foundation: the zone boundaries
 *
 * Sample blocks (value type samples) of the listed signals are collected per (asset, signal).
 * Every `block` samples (a window; a window may span several records) yield one record per
 * feature, named <signal>.<feature>, with the asset of the blocks, time = time of the window's
 * last sample + 1 / rate (deterministic) and a tag window_start (ns since the epoch, time of
 * the window's first sample). A block's time is the time of its first sample. Every input
 * record passes through unchanged; add a filter to drop raw blocks.
 *
 * Time domain, exact over the window's samples: rms, peak (max |x|), peak_to_peak, crest
 * (peak / rms), skewness, kurtosis (Pearson: 3 for Gaussian noise, 1.5 for a sine).
 *
 * Frequency domain, Welch's method: the stream is cut into segments of nfft samples that
 * overlap by half (a segment every nfft / 2 samples, continuing across windows), each
 * Hann-windowed and transformed; a window's spectral features average the power of the
 * segments that completed in it (about 2 * block / nfft of them). Resolution rate / nfft.
 *  - bands: RMS in each band [LO, HI) Hz (<signal>.band_LO_HI; a sine of amplitude A in a band
 *    gives A / sqrt 2).
 *  - velocity: the acceleration integrated in the frequency domain (each bin divided by
 *    2 pi f) over velocity_band, as RMS in mm/s (<signal>.velocity_rms), and its ISO
 *    10816-3 / 20816-3 severity zone A, B, C or D (<signal>.iso_zone, text). A velocity equal
 *    to a boundary belongs to the lower zone (v <= A/B is A). Entering zone C raises an alert
 *    (severity warning), entering D another (alarm); each re-arms once the velocity is
 *    `hysteresis` percent below its boundary. Alert tags: feature, value, baseline (the mean
 *    velocity of the key's first 30 windows: the machine as first seen), threshold (the
 *    boundary), zone, detector (iso10816), severity, window_start, window_end.
 *  - bearing (with a bearing geometry and shaft_rpm): the envelope spectrum (band-pass
 *    envelope_band, analytic signal magnitude, FFT) averaged over the segments; the amplitude
 *    at FTF, BPFO, BPFI, BSF and their 2nd to 4th harmonics (<signal>.ftf_amp, ftf_amp2 ..
 *    ftf_amp4, bpfo_amp ..): the largest peak within `tolerance` percent, at least +-1 bin.
 * Values are in the signal's unit (g for `sim`), velocity in mm/s.
 *
 * A window restarts (the partial one and the segment are dropped) when a block does not
 * continue the previous one (gap or overlap of more than one sample period) or the sample rate
 * changes. Bad-quality blocks are passed on but not analysed (the window restarts after them).
 * A window with NaN or infinite samples yields nothing and counts as an error (so may the
 * next one, when a segment spans both).
 *
 * State per key: nfft * 4 bytes (the segment) + about 350 bytes + the envelope bins up to the
 * 4th harmonic of the highest defect frequency (4 bytes each): 8.6 KiB at nfft 2048 and 10 kHz
 * with a bearing. Keys are capped by max_keys; blocks of further keys pass unanalysed and count
 * as errors. Checkpoints store every key's segment and window sums.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/vibration_dsp.h"
#include "millrace/alloc.h"
#include "operators/op_common.h"

#define MAX_SIGNALS   16
#define MAX_BANDS     16
#define NSTATS        6
#define NHARM         4
#define STATE_VERSION 3
#define MM_PER_M      1000.0
#define G_MS2         9.80665
#define VEL_BASELINE  30 /* windows: the velocity baseline a zone alert reports */

/* Feature ids per signal: statistics, bands, defect amplitudes, velocity, zone. */
#define FEAT_BANDS   NSTATS
#define FEAT_DEFECTS (FEAT_BANDS + MAX_BANDS)
#define FEAT_VEL     (FEAT_DEFECTS + MR_VIB_NDEFECTS * NHARM)
#define FEAT_ZONE    (FEAT_VEL + 1)
#define MAX_FEATURES (FEAT_ZONE + 1)

/* The `features` options: the statistics by name, then these groups. */
enum { OPT_BANDS = NSTATS, OPT_BEARING, OPT_VELOCITY, NOPTS };

extern const struct mr_plugin mr_operator_vibration;

static const char *const stat_names[NSTATS] = {"rms",   "peak",     "peak_to_peak",
                                               "crest", "skewness", "kurtosis"};
static const char *const group_names[] = {"bands", "bearing", "velocity"};
static const char *const default_bands[] = {"10-500", "500-1000", "1000-2000", "2000-5000"};
static const char *const defect_names[MR_VIB_NDEFECTS] = {"ftf", "bpfo", "bpfi", "bsf"};
static const char *const unit_names[] = {"g", "m/s2", NULL};
static const char *const foundation_names[] = {"rigid", "flexible", NULL};
static const char *const zone_names[] = {"A", "B", "C", "D"};

/* ISO 10816-3 boundaries A/B, B/C, C/D in mm/s r.m.s. [group - 1][foundation] (domain.md 3.4). */
static const double iso_zones[2][2][3] = {
    {{2.3, 4.5, 7.1}, {3.5, 7.1, 11.0}},
    {{1.4, 2.8, 4.5}, {2.3, 4.5, 7.1}},
};

struct bearing_conf {
    int64_t balls;
    double ball_diameter;
    double pitch_diameter;
    double contact_angle_deg;
};

struct zones_conf {
    double ab, bc, cd;
};

struct vib_conf {
    struct mr_strlist signals;
    int64_t block;
    int64_t nfft;
    struct mr_strlist features;
    struct mr_strlist bands;
    struct bearing_conf bearing;
    double shaft_rpm;
    char *envelope_band;
    double tolerance_pct;
    int unit;
    char *velocity_band;
    int64_t iso_group;
    int foundation;
    struct zones_conf zones;
    double hysteresis_pct;
    int64_t max_keys;
};

/* Window sums of one key: reset at each window end. */
struct vib_window {
    struct mr_vib_moments mom;
    double band_pow[MAX_BANDS];
    double vel_pow;
    int64_t start_ns;
    uint32_t n;    /* samples */
    uint32_t nseg; /* segments completed */
    uint32_t bad;  /* segments with NaN or infinite samples (they poison every bin) */
    uint32_t pad;
};

struct vib_entry {
    struct mr_op_link link;
    float *seg; /* [nfft] the current segment, filled up to fill */
    float *env; /* [env_bins] envelope power summed over the window's segments */
    uint32_t env_bins;
    uint32_t fill;
    uint32_t sig;        /* index into the configured signals */
    uint8_t zone_level;  /* 0 armed, 1 zone C alert raised, 2 zone D alert raised */
    uint32_t vel_base_n; /* windows in the velocity baseline (up to VEL_BASELINE) */
    double vel_base;     /* their mean velocity: the machine as first seen */
    double rate_hz;
    int64_t next_ns; /* expected time of the next sample */
    struct vib_window win;
};

enum {
    ATAG_FEATURE,
    ATAG_VALUE,
    ATAG_BASELINE,
    ATAG_THRESHOLD,
    ATAG_ZONE,
    ATAG_DETECTOR,
    ATAG_SEVERITY,
    ATAG_WSTART,
    ATAG_WEND,
    NATAGS
};
static const char *const atag_names[NATAGS] = {"feature",   "value",        "baseline",
                                               "threshold", "zone",         "detector",
                                               "severity",  "window_start", "window_end"};

struct vib_ctx {
    struct mr_op_base base;
    const struct vib_conf *conf;
    struct mr_op_keyed keyed;
    struct mr_op_buf out;
    struct mr_vib_dsp dsp;
    uint32_t block, nfft;
    bool want[NOPTS];
    size_t nbands;
    double band_lo[MAX_BANDS], band_hi[MAX_BANDS];
    double vel_lo, vel_hi, vel_scale; /* velocity band (Hz), sample unit -> mm/s^2 */
    double zone_limit[3];             /* A/B, B/C, C/D in mm/s */
    double env_lo_frac, env_hi_frac;  /* of the rate, when envelope_band is absent */
    double env_lo, env_hi;            /* Hz, when given */
    double defect_hz[MR_VIB_NDEFECTS];
    double env_fmax; /* highest frequency searched in the envelope spectrum */
    size_t nsig;
    const char *sig_name[MAX_SIGNALS];
    mr_name_id sig_id[MAX_SIGNALS];
    mr_name_id feat_id[MAX_SIGNALS][MAX_FEATURES];
    mr_name_id alert_id, wstart_id;
    mr_name_id atag_id[NATAGS];
    char wstart_text[24];       /* window_start tag of the window being emitted */
    uint32_t wstart_len;        /* its length */
    char atext[200];            /* zone alert sentence */
    char atag_text[NATAGS][24]; /* zone alert tag values */
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

static int option_index(const char *name)
{
    for (int i = 0; i < NSTATS; i++) {
        if (strcmp(name, stat_names[i]) == 0) {
            return i;
        }
    }
    for (int i = 0; i < NOPTS - NSTATS; i++) {
        if (strcmp(name, group_names[i]) == 0) {
            return NSTATS + i;
        }
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
    if ((c->nfft & (c->nfft - 1)) != 0) {
        mr_config_check_fail(chk, "nfft", "must be a power of two (e.g. 1024, 2048, 4096)");
    }
    if (c->block < c->nfft) {
        mr_config_check_fail(chk, "block", "must hold at least one segment (nfft = %" PRId64 ")",
                             c->nfft);
    }
    for (size_t i = 0; i < c->features.n; i++) {
        if (option_index(c->features.items[i]) < 0) {
            mr_config_check_fail(chk, "features",
                                 "unknown feature '%s' (rms, peak, peak_to_peak, crest, "
                                 "skewness, kurtosis, bands, bearing, velocity)",
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
    if (parse_range(c->velocity_band, &lo, &hi) != 0 || !(lo > 0)) {
        mr_config_check_fail(chk, "velocity_band", "'%s' is not a band \"LO-HI\" in Hz with LO > 0",
                             c->velocity_band);
    }
    const struct zones_conf *z = &c->zones;
    bool any = z->ab > 0 || z->bc > 0 || z->cd > 0;
    if (any && !(z->ab > 0 && z->bc > z->ab && z->cd > z->bc)) {
        mr_config_check_fail(chk, "zones", "needs 0 < ab < bc < cd (mm/s)");
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

static int intern1(struct vib_ctx *c, const char *name, mr_name_id *id, struct mr_err *err)
{
    int rc = mr_names_intern(c->base.host->names, name, strlen(name), id);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot intern '%s': %s", name, mr_strerror(rc));
    }
    return 0;
}

static int intern_signal(struct vib_ctx *c, size_t s, struct mr_err *err)
{
    const char *sig = c->sig_name[s];
    int rc = intern1(c, sig, &c->sig_id[s], err);
    mr_name_id *ids = c->feat_id[s];
    for (int i = 0; i < NSTATS && rc == 0; i++) {
        rc = intern2(c, sig, stat_names[i], &ids[i], err);
    }
    for (size_t b = 0; b < c->nbands && rc == 0; b++) {
        char suffix[96];
        snprintf(suffix, sizeof(suffix), "band_%g_%g", c->band_lo[b], c->band_hi[b]);
        rc = intern2(c, sig, suffix, &ids[FEAT_BANDS + b], err);
    }
    for (int d = 0; d < MR_VIB_NDEFECTS && rc == 0; d++) {
        for (int h = 0; h < NHARM && rc == 0; h++) {
            char suffix[32];
            if (h == 0) {
                snprintf(suffix, sizeof(suffix), "%s_amp", defect_names[d]);
            } else {
                snprintf(suffix, sizeof(suffix), "%s_amp%d", defect_names[d], h + 1);
            }
            rc = intern2(c, sig, suffix, &ids[FEAT_DEFECTS + d * NHARM + h], err);
        }
    }
    rc = rc == 0 ? intern2(c, sig, "velocity_rms", &ids[FEAT_VEL], err) : rc;
    rc = rc == 0 ? intern2(c, sig, "iso_zone", &ids[FEAT_ZONE], err) : rc;
    return rc;
}

static int intern_fixed(struct vib_ctx *c, struct mr_err *err)
{
    int rc = intern1(c, "alert", &c->alert_id, err);
    rc = rc == 0 ? intern1(c, "window_start", &c->wstart_id, err) : rc;
    for (int i = 0; i < NATAGS && rc == 0; i++) {
        rc = intern1(c, atag_names[i], &c->atag_id[i], err);
    }
    return rc;
}

static void setup_features(struct vib_ctx *c)
{
    const struct vib_conf *cf = c->conf;
    for (int f = 0; f < NOPTS; f++) {
        bool want = cf->features.n == 0;
        for (size_t i = 0; i < cf->features.n; i++) {
            want |= option_index(cf->features.items[i]) == f;
        }
        c->want[f] = want;
    }
    c->want[OPT_BEARING] &= has_bearing(cf);
    bool dflt = cf->bands.n == 0;
    size_t nb = dflt ? sizeof(default_bands) / sizeof(default_bands[0]) : cf->bands.n;
    c->nbands = nb < MAX_BANDS ? nb : MAX_BANDS;
    for (size_t b = 0; b < c->nbands; b++) {
        parse_range(dflt ? default_bands[b] : cf->bands.items[b], &c->band_lo[b], &c->band_hi[b]);
    }
    c->nsig = cf->signals.n == 0 ? 1 : cf->signals.n;
    for (size_t i = 0; i < c->nsig; i++) {
        c->sig_name[i] = cf->signals.n == 0 ? "vibration" : cf->signals.items[i];
    }
    parse_range(cf->velocity_band, &c->vel_lo, &c->vel_hi);
    c->vel_scale = (cf->unit == 0 ? G_MS2 : 1.0) * MM_PER_M;
    const struct zones_conf *z = &cf->zones;
    const double *iso = iso_zones[cf->iso_group - 1][cf->foundation];
    bool own = z->ab > 0;
    c->zone_limit[0] = own ? z->ab : iso[0];
    c->zone_limit[1] = own ? z->bc : iso[1];
    c->zone_limit[2] = own ? z->cd : iso[2];
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
        for (int d = 0; d < MR_VIB_NDEFECTS; d++) {
            c->env_fmax = fmax(c->env_fmax, c->defect_hz[d] * NHARM);
        }
        c->env_fmax *= 1 + cf->tolerance_pct / 100.0;
    }
}

/* ---- results ---- */

static int emit_value(struct vib_ctx *c, mr_name_id asset, mr_name_id sig, int64_t t, double v)
{
    struct mr_record r = {.time_ns = t,
                          .asset = asset,
                          .signal = sig,
                          .type = MR_VALUE_F64,
                          .quality = MR_QUALITY_GOOD,
                          .ntags = 1,
                          .v.f64 = v};
    r.tags[0] = (struct mr_tag){.key = c->wstart_id,
                                .value = {.ptr = c->wstart_text, .len = c->wstart_len}};
    return mr_op_buf_push(&c->out, &r);
}

/* Largest averaged envelope amplitude within f * (1 +- tol) (at least +-1 bin). */
static double env_peak(const struct vib_ctx *c, const struct vib_entry *e, double f)
{
    double tol = c->conf->tolerance_pct / 100.0;
    double centre = f * c->nfft / e->rate_hz;
    double lo = floor(fmin(centre * (1 - tol), centre - 1));
    double hi = ceil(fmax(centre * (1 + tol), centre + 1));
    lo = lo < 1 ? 1 : lo;
    hi = hi > e->env_bins - 1.0 ? e->env_bins - 1.0 : hi;
    double best = 0;
    for (double k = lo; k <= hi; k++) {
        best = fmax(best, e->env[(uint32_t)k]);
    }
    return sqrt(best / e->win.nseg);
}

static int zone_of(const struct vib_ctx *c, double v)
{
    int z = 0;
    while (z < 3 && v > c->zone_limit[z]) {
        z++;
    }
    return z;
}

/* An alert when the zone rises into C (warning) or D (alarm). Each re-arms only once the
 * velocity is `hysteresis` percent below the boundary it crossed, so a machine running right
 * at a boundary does not raise an alert every few windows. */
static int zone_alert(struct vib_ctx *c, struct vib_entry *e, mr_name_id asset, int64_t t, double v,
                      int zone)
{
    double keep = 1 - c->conf->hysteresis_pct / 100.0;
    while (e->zone_level > 0 && v < c->zone_limit[e->zone_level] * keep) {
        e->zone_level--; /* level 1 re-arms below B/C, level 2 below C/D */
    }
    int level = zone - 1; /* C: 1, D: 2 */
    if (level <= e->zone_level) {
        return 0;
    }
    e->zone_level = (uint8_t)level;
    size_t flen = 0;
    const char *feature = mr_names_str(c->base.host->names, c->feat_id[e->sig][FEAT_VEL], &flen);
    char(*tv)[24] = c->atag_text;
    snprintf(tv[ATAG_VALUE], 24, "%.4g", v);
    snprintf(tv[ATAG_BASELINE], 24, "%.4g", e->vel_base);
    snprintf(tv[ATAG_THRESHOLD], 24, "%.4g", c->zone_limit[zone - 1]);
    snprintf(tv[ATAG_ZONE], 24, "%s", zone_names[zone]);
    snprintf(tv[ATAG_DETECTOR], 24, "iso10816");
    snprintf(tv[ATAG_SEVERITY], 24, "%s", level == 2 ? "alarm" : "warning");
    snprintf(tv[ATAG_WSTART], 24, "%s", c->wstart_text);
    snprintf(tv[ATAG_WEND], 24, "%" PRId64, t);
    int n =
        snprintf(c->atext, sizeof(c->atext),
                 "velocity %s mm/s above the zone %s/%s boundary %s mm/s: zone %s (ISO 10816-3)",
                 tv[ATAG_VALUE], zone_names[zone - 1], zone_names[zone], tv[ATAG_THRESHOLD],
                 zone_names[zone]);
    struct mr_record a = {
        .time_ns = t,
        .asset = asset,
        .signal = c->alert_id,
        .type = MR_VALUE_STRING,
        .quality = MR_QUALITY_GOOD,
        .ntags = NATAGS,
        .v.str = {.ptr = c->atext, .len = (uint32_t)(n < (int)sizeof(c->atext) ? n : 199)},
    };
    for (int i = 0; i < NATAGS; i++) {
        const char *s = i == ATAG_FEATURE ? feature : tv[i];
        a.tags[i] = (struct mr_tag){
            .key = c->atag_id[i],
            .value = {.ptr = s, .len = (uint32_t)(i == ATAG_FEATURE ? flen : strlen(s))}};
    }
    return mr_op_buf_push(&c->out, &a);
}

static int emit_spectral(struct vib_ctx *c, struct vib_entry *e, mr_name_id asset, int64_t t)
{
    const mr_name_id *ids = c->feat_id[e->sig];
    const struct vib_window *w = &e->win;
    int rc = 0;
    for (size_t b = 0; b < c->nbands && c->want[OPT_BANDS] && rc == 0; b++) {
        rc = emit_value(c, asset, ids[FEAT_BANDS + b], t, sqrt(w->band_pow[b] / w->nseg));
    }
    for (int d = 0; d < MR_VIB_NDEFECTS && c->want[OPT_BEARING] && e->env != NULL && rc == 0; d++) {
        for (int h = 0; h < NHARM && rc == 0; h++) {
            double a = env_peak(c, e, c->defect_hz[d] * (h + 1));
            rc = emit_value(c, asset, ids[FEAT_DEFECTS + d * NHARM + h], t, a);
        }
    }
    if (c->want[OPT_VELOCITY] && rc == 0) {
        double v = sqrt(w->vel_pow / w->nseg);
        int zone = zone_of(c, v);
        if (e->vel_base_n < VEL_BASELINE) {
            e->vel_base_n++;
            e->vel_base += (v - e->vel_base) / e->vel_base_n;
        }
        rc = emit_value(c, asset, ids[FEAT_VEL], t, v);
        struct mr_record z = {.time_ns = t,
                              .asset = asset,
                              .signal = ids[FEAT_ZONE],
                              .type = MR_VALUE_STRING,
                              .quality = MR_QUALITY_GOOD,
                              .v.str = {.ptr = zone_names[zone], .len = 1}};
        rc = rc == 0 ? mr_op_buf_push(&c->out, &z) : rc;
        rc = rc == 0 ? zone_alert(c, e, asset, t, v, zone) : rc;
    }
    return rc;
}

static void window_reset(struct vib_entry *e, uint32_t env_bins)
{
    memset(&e->win, 0, sizeof(e->win));
    if (e->env != NULL) {
        memset(e->env, 0, env_bins * sizeof(float));
    }
}

/* The window of e is complete: emit every feature (window end t), start the next one. */
static int window_close(struct vib_ctx *c, struct vib_entry *e, mr_name_id asset, int64_t t)
{
    struct mr_vib_stats st;
    mr_vib_moments_stats(&e->win.mom, &st);
    int rc = 0;
    bool spectral =
        e->win.nseg > 0 && (c->want[OPT_BANDS] || c->want[OPT_BEARING] || c->want[OPT_VELOCITY]);
    if (!isfinite(st.rms) || !isfinite(st.peak) || e->win.bad > 0) {
        mr_op_warn(&c->base, "window of %u samples dropped: NaN or infinite samples", e->win.n);
        e->fill = 0; /* do not carry the bad samples into the next window's segments */
    } else {
        int n = snprintf(c->wstart_text, sizeof(c->wstart_text), "%" PRId64, e->win.start_ns);
        c->wstart_len = n > 0 ? (uint32_t)n : 0;
        const mr_name_id *ids = c->feat_id[e->sig];
        double vals[NSTATS] = {st.rms,   st.peak,     st.peak_to_peak,
                               st.crest, st.skewness, st.kurtosis};
        for (int i = 0; i < NSTATS && rc == 0; i++) {
            rc = c->want[i] ? emit_value(c, asset, ids[i], t, vals[i]) : 0;
        }
        rc = rc == 0 && spectral ? emit_spectral(c, e, asset, t) : rc;
        /* The results borrow wstart_text and the alert's texts: send them now. */
        rc = rc == 0 ? mr_op_buf_flush(&c->out) : rc;
    }
    window_reset(e, e->env_bins);
    return rc;
}

/* A full segment: add its spectral features to the window; keep its second half. */
static void segment_done(struct vib_ctx *c, struct vib_entry *e)
{
    struct vib_window *w = &e->win;
    struct mr_vib_dsp *d = &c->dsp;
    mr_vib_dsp_spectrum(d, e->seg);
    if (!isfinite(d->power[0] + d->power[1])) {
        w->bad++;
        w->nseg++;
        e->fill = 0;
        return;
    }
    for (size_t b = 0; b < c->nbands && c->want[OPT_BANDS]; b++) {
        w->band_pow[b] += mr_vib_band_power(d, e->rate_hz, c->band_lo[b], c->band_hi[b]);
    }
    if (c->want[OPT_VELOCITY]) {
        w->vel_pow += mr_vib_velocity_power(d, e->rate_hz, c->vel_lo, c->vel_hi, c->vel_scale);
    }
    if (e->env != NULL) {
        double lo = c->conf->envelope_band != NULL ? c->env_lo : c->env_lo_frac * e->rate_hz;
        double hi = c->conf->envelope_band != NULL ? c->env_hi : c->env_hi_frac * e->rate_hz;
        if (mr_vib_dsp_prepare(d, e->rate_hz, lo, hi, c->env_fmax) == 0) {
            mr_vib_dsp_envelope(d);
            uint32_t nb = e->env_bins <= d->m / 2 + 1 ? e->env_bins : d->m / 2 + 1;
            for (uint32_t k = 0; k < nb; k++) {
                e->env[k] += d->envpow[k];
            }
        }
    }
    w->nseg++;
    uint32_t half = c->nfft / 2;
    memmove(e->seg, e->seg + half, half * sizeof(float));
    e->fill = half;
}

/* ---- keys ---- */

static int entry_of(struct vib_ctx *c, mr_name_id asset, mr_name_id sig, int s,
                    struct vib_entry **out)
{
    void *v = NULL;
    bool inserted = false;
    int rc = mr_op_keyed_get(&c->keyed, asset, sig, &v, &inserted);
    if (rc != 0) {
        mr_op_warn(&c->base, "block not analysed: %s",
                   rc == MR_ETOOBIG ? "max_keys reached" : mr_strerror(rc));
        return rc;
    }
    struct vib_entry *e = v;
    if (e->seg == NULL) {
        e->seg = mr_calloc(c->nfft, sizeof(float));
        if (e->seg == NULL) {
            mr_op_warn(&c->base, "block not analysed: out of memory");
            return MR_ENOMEM;
        }
        e->sig = (uint32_t)s;
    }
    *out = e;
    return 0;
}

/* Envelope bins a key at this rate needs (0 without bearing analysis). */
static uint32_t env_bins_for(const struct vib_ctx *c, double rate)
{
    if (!c->want[OPT_BEARING]) {
        return 0;
    }
    double k = ceil(c->env_fmax * c->nfft / rate) + 2;
    return k > c->nfft / 2 ? c->nfft / 2 + 1 : (uint32_t)k + 1;
}

/* A new rate (or the first block): size the envelope sums; start over. */
static int entry_set_rate(struct vib_ctx *c, struct vib_entry *e, double rate)
{
    uint32_t bins = env_bins_for(c, rate);
    if (bins != e->env_bins) {
        mr_free(e->env);
        e->env = bins > 0 ? mr_calloc(bins, sizeof(float)) : NULL;
        e->env_bins = e->env != NULL ? bins : 0;
        if (bins > 0 && e->env == NULL) {
            mr_op_warn(&c->base, "no bearing analysis for a key: out of memory");
        }
    }
    e->rate_hz = rate;
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
            window_reset(e, e->env_bins);
        }
        return 0;
    }
    struct vib_entry *e = NULL;
    if (entry_of(c, rec->asset, rec->signal, s, &e) != 0) {
        return 0;
    }
    int64_t period = span_ns(1, rate);
    int64_t gap = rec->time_ns - e->next_ns;
    if (rate != e->rate_hz || gap > period || gap < -period) {
        entry_set_rate(c, e, rate);
        e->fill = 0;
        window_reset(e, e->env_bins);
    }
    e->next_ns = rec->time_ns + span_ns(sm->n, rate);
    const char *src = (const char *)(const void *)sm->data;
    int rc = 0;
    for (uint32_t i = 0; i < sm->n && rc == 0;) {
        if (e->win.n == 0) {
            e->win.start_ns = rec->time_ns + span_ns(i, rate);
        }
        uint32_t take = sm->n - i;
        take = take < c->nfft - e->fill ? take : c->nfft - e->fill;
        take = take < c->block - e->win.n ? take : c->block - e->win.n;
        float *dst = e->seg + e->fill;
        memcpy(dst, src + (size_t)i * sizeof(float), take * sizeof(float));
        mr_vib_moments_add(&e->win.mom, dst, take);
        e->fill += take;
        e->win.n += take;
        i += take;
        if (e->fill == c->nfft) {
            segment_done(c, e);
        }
        if (e->win.n == c->block) {
            rc = window_close(c, e, rec->asset, rec->time_ns + span_ns(i, rate));
        }
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

/* ---- checkpoints ---- */

/* Version, block, nfft, bands, key count, then per key: asset, signal, rate, next_ns, zone
 * level | baseline windows << 8, velocity baseline, the segment (fill floats), the window sums
 * (moments, bands, velocity, start, counts) and the envelope sums (env_bins floats), floats and
 * doubles as in memory (little-endian). */
static int vib_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err)
{
    struct vib_ctx *c = ctx;
    uint32_t n = mr_op_keyed_count(&c->keyed);
    mr_state_put_u64(w, STATE_VERSION);
    mr_state_put_u64(w, c->block);
    mr_state_put_u64(w, c->nfft);
    mr_state_put_u64(w, c->nbands);
    mr_state_put_u64(w, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct vib_entry *e = mr_keymap_value_at(&c->keyed.keys, i);
        mr_op_keyed_put_key(&c->keyed, i, w);
        mr_state_put_f64(w, e->rate_hz);
        mr_state_put_i64(w, e->next_ns);
        mr_state_put_u64(w, e->zone_level | (uint64_t)e->vel_base_n << 8);
        mr_state_put_f64(w, e->vel_base);
        mr_state_put_bytes(w, e->seg, e->seg != NULL ? e->fill * sizeof(float) : 0);
        mr_state_put_bytes(w, &e->win, sizeof(e->win));
        mr_state_put_bytes(w, e->env, e->env_bins * sizeof(float));
    }
    if (w->err != 0) {
        return MR_ERR_SET(err, w->err, "checkpoint: %s", mr_strerror(w->err));
    }
    return 0;
}

static int restore_entry(struct vib_ctx *c, struct mr_state_reader *r, bool same_shape,
                         struct mr_err *err)
{
    mr_name_id asset = 0, sig = 0;
    double rate = 0;
    int64_t next = 0;
    uint64_t level = 0;
    double vel_base = 0;
    const void *seg = NULL, *win = NULL, *env = NULL;
    size_t seg_len = 0, win_len = 0, env_len = 0;
    mr_state_get_name(r, &asset);
    mr_state_get_name(r, &sig);
    mr_state_get_f64(r, &rate);
    mr_state_get_i64(r, &next);
    mr_state_get_u64(r, &level);
    mr_state_get_f64(r, &vel_base);
    mr_state_get_bytes(r, &seg, &seg_len);
    mr_state_get_bytes(r, &win, &win_len);
    if (mr_state_get_bytes(r, &env, &env_len) != 0 || seg_len % sizeof(float) != 0 ||
        win_len != sizeof(struct vib_window)) {
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: truncated or malformed key");
    }
    int s = signal_index(c, sig);
    if (s < 0 || !(rate > 0)) {
        return 0; /* signal no longer configured, or nothing seen yet: forget it */
    }
    struct vib_entry *e = NULL;
    int rc = entry_of(c, asset, sig, s, &e);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "checkpoint: cannot restore a key: %s", mr_strerror(rc));
    }
    entry_set_rate(c, e, rate);
    e->next_ns = next;
    e->zone_level = (uint8_t)((level & 0xff) < 3 ? level & 0xff : 0);
    e->vel_base_n = (uint32_t)(level >> 8) <= VEL_BASELINE ? (uint32_t)(level >> 8) : 0;
    e->vel_base = isfinite(vel_base) ? vel_base : 0;
    /* Another window or segment length, band list or envelope size: start the window over
     * (its sums would mix two shapes). */
    if (same_shape && env_len == e->env_bins * sizeof(float) &&
        seg_len <= c->nfft * sizeof(float)) {
        memcpy(e->seg, seg, seg_len);
        e->fill = (uint32_t)(seg_len / sizeof(float));
        memcpy(&e->win, win, sizeof(e->win));
        if (env_len > 0) {
            memcpy(e->env, env, env_len);
        }
    }
    if (e->win.n >= c->block || e->fill == c->nfft) {
        e->fill = 0;
        window_reset(e, e->env_bins);
    }
    return 0;
}

static int vib_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err)
{
    struct vib_ctx *c = ctx;
    uint64_t version = 0, block = 0, nfft = 0, nbands = 0, n = 0;
    mr_state_get_u64(r, &version);
    mr_state_get_u64(r, &block);
    mr_state_get_u64(r, &nfft);
    mr_state_get_u64(r, &nbands);
    if (mr_state_get_u64(r, &n) != 0 || version != STATE_VERSION) {
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: unknown state version %llu",
                          (unsigned long long)version);
    }
    bool same = block == c->block && nfft == c->nfft && nbands == c->nbands;
    for (uint64_t i = 0; i < n; i++) {
        int rc = restore_entry(c, r, same, err);
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
        mr_free(e->seg);
        mr_free(e->env);
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
    c->nfft = (uint32_t)c->conf->nfft;
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
    rc = mr_vib_dsp_init(&c->dsp, c->nfft);
    if (rc != 0) {
        vib_fini(c);
        return MR_ERR_SET(err, rc, "cannot prepare an FFT of %u samples: %s", c->nfft,
                          mr_strerror(rc));
    }
    setup_features(c);
    rc = intern_fixed(c, err);
    for (size_t s = 0; s < c->nsig && rc == 0; s++) {
        rc = intern_signal(c, s, err);
    }
    if (rc != 0) {
        vib_fini(c);
    }
    return rc;
}

/* ---- configuration ---- */

#define F(m) offsetof(struct vib_conf, m)

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

static const struct mr_field zones_fields[] = {
    {.name = "ab",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct zones_conf, ab),
     .def = "0",
     .min = "0",
     .help = "Boundary between zones A and B in mm/s r.m.s."},
    {.name = "bc",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct zones_conf, bc),
     .def = "0",
     .min = "0",
     .help = "Boundary between zones B and C in mm/s r.m.s."},
    {.name = "cd",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct zones_conf, cd),
     .def = "0",
     .min = "0",
     .help = "Boundary between zones C and D in mm/s r.m.s."},
    {0},
};

static const struct mr_section zones_section = {
    .fields = zones_fields,
    .size = sizeof(struct zones_conf),
};

static const struct mr_field vib_fields[] = {
    {.name = "signals",
     .type = MR_FIELD_STRING_LIST,
     .offset = F(signals),
     .def = "[vibration]",
     .min = "1",
     .max = "16",
     .help = "Sample-block signals to analyse; other records pass through untouched."},
    {.name = "block",
     .type = MR_FIELD_INT,
     .offset = F(block),
     .def = "10000",
     .min = "64",
     .max = "10000000",
     .help = "Samples per result window: 10000 is one set of features per second at 10 kHz. "
             "At least nfft."},
    {.name = "nfft",
     .type = MR_FIELD_INT,
     .offset = F(nfft),
     .def = "2048",
     .min = "64",
     .max = "65536",
     .help = "Samples per spectral segment (a power of two; segments overlap by half). The "
             "spectral resolution is the sample rate / nfft (4.9 Hz for 2048 at 10 kHz); "
             "memory per channel is 4 bytes per sample of it."},
    {.name = "features",
     .type = MR_FIELD_STRING_LIST,
     .offset = F(features),
     .def = "[rms, peak, peak_to_peak, crest, skewness, kurtosis, bands, bearing, velocity]",
     .min = "1",
     .max = "9",
     .help = "What to compute per window: rms, peak, peak_to_peak, crest, skewness, kurtosis "
             "(time domain), bands (RMS per frequency band), bearing (envelope amplitudes at "
             "the bearing defect frequencies; needs `bearing` and `shaft_rpm`), velocity "
             "(velocity RMS in mm/s and the ISO 10816-3 zone, with alerts in zones C and D)."},
    {.name = "bands",
     .type = MR_FIELD_STRING_LIST,
     .offset = F(bands),
     .def = "[10-500, 500-1000, 1000-2000, 2000-5000]",
     .max = "16",
     .help = "Frequency bands \"LO-HI\" in Hz; each gives <signal>.band_LO_HI, the RMS of the "
             "signal within the band."},
    {.name = "bearing",
     .type = MR_FIELD_SECTION,
     .offset = F(bearing),
     .section = &bearing_section,
     .help = "Geometry of the monitored rolling bearing, for its defect frequencies (FTF, BPFO, "
             "BPFI, BSF)."},
    {.name = "shaft_rpm",
     .type = MR_FIELD_DOUBLE,
     .offset = F(shaft_rpm),
     .def = "0",
     .min = "0",
     .help = "Shaft speed in revolutions per minute (fixed-speed machines)."},
    {.name = "envelope_band",
     .type = MR_FIELD_STRING,
     .offset = F(envelope_band),
     .help = "Band \"LO-HI\" in Hz around a structural resonance that bearing impacts excite, "
             "demodulated for the envelope spectrum. Absent: 20 % to 45 % of the sample rate."},
    {.name = "tolerance",
     .type = MR_FIELD_DOUBLE,
     .offset = F(tolerance_pct),
     .def = "2",
     .min = "0",
     .max = "20",
     .help = "Search +- this percentage around each defect frequency for its peak (real peaks "
             "sit 1-2 % below the kinematic value because of slip); at least +-1 bin."},
    {.name = "unit",
     .type = MR_FIELD_ENUM,
     .offset = F(unit),
     .def = "g",
     .values = unit_names,
     .help = "Unit of the acceleration samples, for the velocity: g (9.80665 m/s2) or m/s2."},
    {.name = "velocity_band",
     .type = MR_FIELD_STRING,
     .offset = F(velocity_band),
     .def = "10-1000",
     .help = "Band \"LO-HI\" in Hz of the velocity RMS: ISO 10816-3 uses 10-1000 for machines "
             "above 600 r/min and 2-1000 for 120-600 r/min."},
    {.name = "iso_group",
     .type = MR_FIELD_INT,
     .offset = F(iso_group),
     .def = "2",
     .min = "1",
     .max = "2",
     .help = "ISO 10816-3 machine group: 1 for large machines (above 300 kW), 2 for medium "
             "ones (15 to 300 kW). Selects the zone boundaries with `foundation`."},
    {.name = "foundation",
     .type = MR_FIELD_ENUM,
     .offset = F(foundation),
     .def = "rigid",
     .values = foundation_names,
     .help = "Foundation of the machine: rigid or flexible (ISO 10816-3). Group 2 rigid: "
             "A/B 1.4, B/C 2.8, C/D 4.5 mm/s."},
    {.name = "zones",
     .type = MR_FIELD_SECTION,
     .offset = F(zones),
     .section = &zones_section,
     .help = "Own zone boundaries in mm/s instead of the ISO table, e.g. {ab: 2, bc: 4, cd: 6} "
             "(from the machine maker or a baseline: ISO suggests an alarm at baseline + 25 % "
             "of B/C)."},
    {.name = "hysteresis",
     .type = MR_FIELD_DOUBLE,
     .offset = F(hysteresis_pct),
     .def = "5",
     .min = "0",
     .max = "50",
     .help = "After a zone alert, raise the next one for the same boundary only once the "
             "velocity has been this many percent below it."},
    {.name = "max_keys",
     .type = MR_FIELD_INT,
     .offset = F(max_keys),
     .def = "10000",
     .min = "1",
     .max = "1000000",
     .help = "Most (asset, signal) pairs analysed; blocks of further pairs pass unanalysed and "
             "count as errors."},
    {0},
};

#undef F

const struct mr_plugin mr_operator_vibration = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "vibration",
    .help = "Condition-monitoring features of vibration sample blocks per window: RMS, peak, "
            "crest factor, kurtosis, band RMS (Welch spectrum), velocity RMS with its ISO "
            "10816-3 zone, bearing defect amplitudes (envelope spectrum).",
    .conf = {.fields = vib_fields, .size = sizeof(struct vib_conf), .check = vib_check},
    .ctx_size = sizeof(struct vib_ctx),
    .op = {.init = vib_init,
           .process = vib_process,
           .snapshot = vib_snapshot,
           .restore = vib_restore,
           .fini = vib_fini},
};
