/* Signal processing of the `vibration` operator; see vibration_dsp.h.
 *
 * - Moments: each chunk is reduced in two passes over data already in L1 (sum / min / max /
 *   sum of squares, then powers of x - chunk mean) with two pairs of four float lanes, then merged
 * into the window's double-precision moments by the pairwise formulas. Float lanes hold at most
 *   65536 / 8 terms of values centred on their chunk mean, so the relative error stays near
 *   1e-5, far below what vibration features resolve; the merge keeps long windows exact.
 * - Hann in the frequency domain: the periodic Hann window w[n] = 0.5 - 0.5 cos(2 pi n / N) has
 *   three spectral lines, so the windowed spectrum is Xw[k] = 0.5 X[k] - 0.25 (X[k-1] + X[k+1])
 *   (with X[-1] = conj X[1], X[N/2+1] = conj X[N/2-1] for real input). Same result as windowing
 *   in time, and the raw spectrum stays available for the envelope.
 * - Envelope: the band's bins of the raw spectrum, doubled (analytic signal: positive
 *   frequencies only), are shifted down to bin 0 before the inverse FFT. A frequency shift only
 *   multiplies the analytic signal by a unit phasor, so |analytic| is unchanged, and the
 *   inverse FFT needs only as many points as the band has bins, which also decimates the
 *   envelope for free. The envelope spectrum keeps the segment's resolution (rate / n).
 */
#include "analytics/vibration_dsp.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "analytics/fft.h"
#include "millrace/alloc.h"
#include "millrace/error.h"

#define HANN_MS 0.375 /* mean of w^2 for the Hann window */
#define LANES   4

/* Four float lanes (GCC/clang vector extension: one SSE register on any x86-64, NEON on
 * aarch64); the loops run two of them side by side, eight partial sums in all. */
typedef float vf4 __attribute__((vector_size(LANES * sizeof(float))));
typedef int32_t vi4 __attribute__((vector_size(LANES * sizeof(int32_t))));

static inline vf4 vf4_load(const float *p)
{
    vf4 v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* mask ? a : b, lane by lane (C has no ?: on vectors). */
static inline vf4 vf4_select(vi4 mask, vf4 a, vf4 b)
{
    vi4 ai, bi;
    memcpy(&ai, &a, sizeof(ai));
    memcpy(&bi, &b, sizeof(bi));
    vi4 r = (ai & mask) | (bi & ~mask);
    vf4 out;
    memcpy(&out, &r, sizeof(out));
    return out;
}

static double vf4_sum(vf4 a, vf4 b)
{
    double s = 0;
    for (int i = 0; i < LANES; i++) {
        s += (double)a[i] + (double)b[i];
    }
    return s;
}

void mr_vib_moments_reset(struct mr_vib_moments *m)
{
    memset(m, 0, sizeof(*m));
}

struct chunk {
    double n, mean, m2, m3, m4, sumsq, min, max;
};

/* Pass 1: sum, sum of squares, min, max. */
static void chunk_pass1(const float *x, size_t n, struct chunk *c)
{
    vf4 s0 = {0}, s1 = {0}, q0 = {0}, q1 = {0};
    vf4 lo = n >= LANES ? vf4_load(x) : (vf4){0}, hi = lo;
    size_t i = 0;
    for (; i + 2 * LANES <= n; i += 2 * LANES) {
        vf4 a = vf4_load(x + i), b = vf4_load(x + i + LANES);
        s0 += a;
        s1 += b;
        q0 += a * a;
        q1 += b * b;
        lo = vf4_select(a < lo, a, lo);
        hi = vf4_select(a > hi, a, hi);
        lo = vf4_select(b < lo, b, lo);
        hi = vf4_select(b > hi, b, hi);
    }
    double sum = vf4_sum(s0, s1), sumsq = vf4_sum(q0, q1), mn = x[0], mx = x[0];
    for (int l = 0; l < LANES && i > 0; l++) {
        mn = lo[l] < mn ? lo[l] : mn;
        mx = hi[l] > mx ? hi[l] : mx;
    }
    /* a NaN never wins a comparison: look for one where the vector loop may have hidden it */
    bool nan = isnan(sum) || isnan(sumsq);
    for (; i < n; i++) {
        double v = x[i];
        sum += v;
        sumsq += v * v;
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        nan |= isnan(v);
    }
    c->n = (double)n;
    c->mean = sum / (double)n;
    c->sumsq = sumsq;
    c->min = nan ? NAN : mn;
    c->max = nan ? NAN : mx;
}

/* Pass 2: central moments about the chunk's mean (corrected for its float rounding). */
static void chunk_pass2(const float *x, size_t n, struct chunk *c)
{
    float centre = (float)c->mean;
    vf4 vc = centre - (vf4){0};
    vf4 a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, b1 = {0}, b2 = {0}, b3 = {0}, b4 = {0};
    size_t i = 0;
    for (; i + 2 * LANES <= n; i += 2 * LANES) {
        vf4 d = vf4_load(x + i) - vc, e = vf4_load(x + i + LANES) - vc;
        vf4 d2 = d * d, e2 = e * e;
        a1 += d;
        a2 += d2;
        a3 += d2 * d;
        a4 += d2 * d2;
        b1 += e;
        b2 += e2;
        b3 += e2 * e;
        b4 += e2 * e2;
    }
    double S1 = vf4_sum(a1, b1), S2 = vf4_sum(a2, b2), S3 = vf4_sum(a3, b3), S4 = vf4_sum(a4, b4);
    for (; i < n; i++) {
        double d = (double)x[i] - centre, d2 = d * d;
        S1 += d;
        S2 += d2;
        S3 += d2 * d;
        S4 += d2 * d2;
    }
    double nn = (double)n, u = S1 / nn; /* chunk mean - centre */
    c->mean = centre + u;
    c->m2 = S2 - nn * u * u;
    c->m3 = S3 - 3 * u * S2 + 2 * nn * u * u * u;
    c->m4 = S4 - 4 * u * S3 + 6 * u * u * S2 - 3 * nn * u * u * u * u;
    c->m2 = c->m2 > 0 ? c->m2 : 0;
    c->m4 = c->m4 > 0 ? c->m4 : 0;
}

void mr_vib_moments_add(struct mr_vib_moments *m, const float *x, size_t n)
{
    if (n == 0) {
        return;
    }
    struct chunk b;
    chunk_pass1(x, n, &b);
    chunk_pass2(x, n, &b);
    if (m->n == 0) {
        *m = (struct mr_vib_moments){.n = b.n,
                                     .mean = b.mean,
                                     .m2 = b.m2,
                                     .m3 = b.m3,
                                     .m4 = b.m4,
                                     .sumsq = b.sumsq,
                                     .min = b.min,
                                     .max = b.max};
        return;
    }
    double na = m->n, nb = b.n, nt = na + nb, d = b.mean - m->mean;
    double d2 = d * d;
    double m4 = m->m4 + b.m4 + d2 * d2 * na * nb * (na * na - na * nb + nb * nb) / (nt * nt * nt) +
                6 * d2 * (na * na * b.m2 + nb * nb * m->m2) / (nt * nt) +
                4 * d * (na * b.m3 - nb * m->m3) / nt;
    double m3 = m->m3 + b.m3 + d2 * d * na * nb * (na - nb) / (nt * nt) +
                3 * d * (na * b.m2 - nb * m->m2) / nt;
    m->m2 += b.m2 + d2 * na * nb / nt;
    m->m3 = m3;
    m->m4 = m4;
    m->mean += d * nb / nt;
    m->n = nt;
    m->sumsq += b.sumsq;
    m->min = b.min < m->min || isnan(b.min) ? b.min : m->min;
    m->max = b.max > m->max || isnan(b.max) ? b.max : m->max;
}

void mr_vib_moments_stats(const struct mr_vib_moments *m, struct mr_vib_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (m->n == 0) {
        return;
    }
    double m2 = m->m2 / m->n, m3 = m->m3 / m->n, m4 = m->m4 / m->n;
    out->rms = sqrt(m->sumsq / m->n);
    out->peak = fabs(m->min) > fabs(m->max) ? fabs(m->min) : fabs(m->max);
    out->peak_to_peak = m->max - m->min;
    out->crest = out->rms > 0 ? out->peak / out->rms : 0;
    /* A constant window has no shape: report 0 rather than NaN. Below 1e-12 of the mean
     * square the spread is float rounding, not signal. */
    bool flat = !(m2 > 1e-12 * (m->sumsq / m->n));
    out->skewness = flat ? 0 : m3 / (m2 * sqrt(m2));
    out->kurtosis = flat ? 0 : m4 / (m2 * m2);
}

void mr_vib_stats(const float *x, size_t n, struct mr_vib_stats *out)
{
    struct mr_vib_moments m;
    mr_vib_moments_reset(&m);
    for (size_t i = 0; i < n; i += 4096) {
        mr_vib_moments_add(&m, x + i, n - i < 4096 ? n - i : 4096);
    }
    mr_vib_moments_stats(&m, out);
}

void mr_vib_defect_freqs(const struct mr_vib_bearing *b, double shaft_hz,
                         double out[MR_VIB_NDEFECTS])
{
    double r = b->ball_diameter / b->pitch_diameter * cos(b->contact_angle_deg * M_PI / 180.0);
    out[MR_VIB_FTF] = shaft_hz / 2 * (1 - r);
    out[MR_VIB_BPFO] = b->balls * shaft_hz / 2 * (1 - r);
    out[MR_VIB_BPFI] = b->balls * shaft_hz / 2 * (1 + r);
    out[MR_VIB_BSF] = b->pitch_diameter * shaft_hz / (2 * b->ball_diameter) * (1 - r * r);
}

static bool power_of_two(uint32_t n)
{
    return n >= 16 && n <= 65536 && (n & (n - 1)) == 0;
}

static void free_envelope(struct mr_vib_dsp *d)
{
    mr_fft_cpx_fini(&d->inv);
    mr_fft_real_fini(&d->envfwd);
    mr_free(d->bre);
    d->bre = d->bim = d->env = d->ere = d->eim = d->hann = d->envpow = NULL;
    d->m = 0;
}

int mr_vib_dsp_init(struct mr_vib_dsp *d, uint32_t n)
{
    memset(d, 0, sizeof(*d));
    if (!power_of_two(n)) {
        return MR_EINVAL;
    }
    d->n = n;
    size_t half = n / 2 + 1;
    int rc = mr_fft_real_init(&d->fwd, n);
    d->re = mr_calloc(4 * half, sizeof(float)); /* re, im, power, inv_k2 in one block */
    if (rc != 0 || d->re == NULL) {
        mr_vib_dsp_fini(d);
        return rc != 0 ? rc : MR_ENOMEM;
    }
    d->im = d->re + half;
    d->power = d->im + half;
    d->inv_k2 = d->power + half;
    for (size_t k = 1; k < half; k++) {
        d->inv_k2[k] = (float)(1.0 / ((double)k * (double)k));
    }
    return 0;
}

void mr_vib_dsp_fini(struct mr_vib_dsp *d)
{
    free_envelope(d);
    mr_fft_real_fini(&d->fwd);
    mr_free(d->re);
    memset(d, 0, sizeof(*d));
}

static inline void vf4_store(float *p, vf4 v)
{
    memcpy(p, &v, sizeof(v));
}

/* |Hann-windowed X[k]|^2 into power[0..half], from re/im (see the top of the file). */
static void hann_power(const float *re, const float *im, uint32_t half, float scale, float *power)
{
    if (half < 2) {
        return;
    }
    /* edges: X[-1] = conj X[1] and X[half+1] = conj X[half-1] */
    float r0 = 0.5f * re[0] - 0.5f * re[1];
    power[0] = r0 * r0 * scale;
    vf4 two_scale = (2 * scale) - (vf4){0}; /* one-sided: both signs of k */
    uint32_t k = 1;
    for (; k + LANES <= half; k += LANES) {
        vf4 r = 0.5f * vf4_load(re + k) - 0.25f * (vf4_load(re + k - 1) + vf4_load(re + k + 1));
        vf4 i = 0.5f * vf4_load(im + k) - 0.25f * (vf4_load(im + k - 1) + vf4_load(im + k + 1));
        vf4_store(power + k, (r * r + i * i) * two_scale);
    }
    for (; k < half; k++) {
        float r = 0.5f * re[k] - 0.25f * (re[k - 1] + re[k + 1]);
        float i = 0.5f * im[k] - 0.25f * (im[k - 1] + im[k + 1]);
        power[k] = (r * r + i * i) * (2 * scale);
    }
    float rh = 0.5f * re[half] - 0.5f * re[half - 1];
    power[half] = rh * rh * scale;
}

/* sum of x[k] * (w ? w[k] : 1), k in [lo, hi], in float lanes (a few thousand terms at most). */
static double sum_range(const float *x, const float *w, uint32_t lo, uint32_t hi)
{
    vf4 a = {0}, b = {0};
    uint32_t k = lo;
    for (; k + 2 * LANES <= hi + 1; k += 2 * LANES) {
        vf4 x0 = vf4_load(x + k), x1 = vf4_load(x + k + LANES);
        if (w != NULL) {
            x0 *= vf4_load(w + k);
            x1 *= vf4_load(w + k + LANES);
        }
        a += x0;
        b += x1;
    }
    double sum = vf4_sum(a, b);
    for (; k <= hi; k++) {
        sum += (double)x[k] * (w != NULL ? w[k] : 1.0f);
    }
    return sum;
}

void mr_vib_dsp_spectrum(struct mr_vib_dsp *d, const float *x)
{
    mr_fft_real_forward(&d->fwd, x, d->re, d->im);
    double norm = 1.0 / ((double)d->n * (double)d->n * HANN_MS);
    hann_power(d->re, d->im, d->n / 2, (float)norm, d->power);
}

/* Bins [klo, khi] of the band [lo, hi) Hz; false when no bin lies in it. */
static bool band_bins(const struct mr_vib_dsp *d, double rate_hz, double lo, double hi,
                      uint32_t *klo, uint32_t *khi)
{
    double per_bin = (double)d->n / rate_hz;
    double a = ceil(lo * per_bin), b = ceil(hi * per_bin) - 1, half = d->n / 2;
    a = a < 0 ? 0 : a;
    b = b > half ? half : b;
    if (!(b >= a)) {
        return false;
    }
    *klo = (uint32_t)a;
    *khi = (uint32_t)b;
    return true;
}

double mr_vib_band_power(const struct mr_vib_dsp *d, double rate_hz, double lo, double hi)
{
    uint32_t klo = 0, khi = 0;
    return band_bins(d, rate_hz, lo, hi, &klo, &khi) ? sum_range(d->power, NULL, klo, khi) : 0;
}

double mr_vib_velocity_power(const struct mr_vib_dsp *d, double rate_hz, double lo, double hi,
                             double scale)
{
    uint32_t klo = 0, khi = 0;
    if (!band_bins(d, rate_hz, lo > 0 ? lo : 1e-9, hi, &klo, &khi)) { /* DC has no velocity */
        return 0;
    }
    double sum = sum_range(d->power, d->inv_k2, klo, khi);
    double w = scale * (double)d->n / (2 * M_PI * rate_hz); /* 1 / (2 pi f_k) = w / k */
    return sum * w * w;
}

int mr_vib_dsp_prepare(struct mr_vib_dsp *d, double rate_hz, double lo, double hi, double fmax)
{
    if (d->m != 0 && rate_hz == d->env_rate && lo == d->env_lo && hi == d->env_hi) {
        return 0;
    }
    double per_bin = (double)d->n / rate_hz;
    double half = d->n / 2;
    double klo = ceil(lo * per_bin), khi = floor(hi * per_bin);
    klo = klo < 1 ? 1 : klo;
    khi = khi > half ? half : khi;
    if (!(rate_hz > 0) || khi < klo) {
        return MR_EINVAL;
    }
    uint32_t width = (uint32_t)(khi - klo + 1);
    double span = 2 * (ceil(fmax * per_bin) + 2);
    double need = width > span ? width : span;
    uint32_t m = 16;
    while (m < need && m < d->n) {
        m *= 2;
    }
    free_envelope(d);
    int rc = mr_fft_cpx_init(&d->inv, m);
    rc = rc == 0 ? mr_fft_real_init(&d->envfwd, m) : rc;
    size_t eh = m / 2 + 1;
    d->bre = rc == 0 ? mr_calloc(5 * (size_t)m + 3 * eh, sizeof(float)) : NULL;
    if (rc != 0 || d->bre == NULL) {
        free_envelope(d);
        return rc != 0 ? rc : MR_ENOMEM;
    }
    d->bim = d->bre + m;
    d->env = d->bim + m;
    d->hann = d->env + m;
    float *scratch = d->hann + m; /* m floats: imaginary part of the inverse transform */
    d->ere = scratch + m;
    d->eim = d->ere + eh;
    d->envpow = d->eim + eh;
    for (uint32_t i = 0; i < m; i++) {
        d->hann[i] = (float)(0.5 - 0.5 * cos(2 * M_PI * i / m));
    }
    d->env_rate = rate_hz;
    d->env_lo = lo;
    d->env_hi = hi;
    d->m = m;
    d->klo = (uint32_t)klo;
    d->kwidth = width > m ? m : width;
    return 0;
}

void mr_vib_dsp_envelope(struct mr_vib_dsp *d)
{
    uint32_t m = d->m, w = d->kwidth;
    float *ar = d->env, *ai = d->hann + m; /* the analytic signal, before |.| */
    for (uint32_t j = 0; j < m; j++) {
        d->bre[j] = j < w ? 2 * d->re[d->klo + j] : 0;
        d->bim[j] = j < w ? 2 * d->im[d->klo + j] : 0;
    }
    mr_fft_cpx_inverse(&d->inv, d->bre, d->bim, ar, ai);
    double sum = 0, scale = 1.0 / d->n;
    for (uint32_t i = 0; i < m; i++) {
        double e = sqrt((double)ar[i] * ar[i] + (double)ai[i] * ai[i]) * scale;
        ar[i] = (float)e;
        sum += e;
    }
    float mean = (float)(sum / m);
    for (uint32_t i = 0; i < m; i++) {
        ar[i] = (ar[i] - mean) * d->hann[i];
    }
    mr_fft_real_forward(&d->envfwd, ar, d->ere, d->eim);
    /* one-sided amplitude with Hann: 2 |Xw| / sum(w) = 4 |Xw| / m */
    double k2 = 16.0 / ((double)m * m);
    for (uint32_t k = 0; k <= m / 2; k++) {
        d->envpow[k] =
            (float)(((double)d->ere[k] * d->ere[k] + (double)d->eim[k] * d->eim[k]) * k2);
    }
}
