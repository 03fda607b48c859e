/* Signal processing of the `vibration` operator; see vibration_fft.h.
 *
 * One real FFT per block serves both the band energies and the envelope:
 *  - Hann in the frequency domain: the periodic Hann window w[n] = 0.5 - 0.5 cos(2 pi n / N) has
 *    three spectral lines, so the windowed spectrum is Xw[k] = 0.5 X[k] - 0.25 (X[k-1] + X[k+1])
 *    (with X[-1] = conj X[1], X[N/2+1] = conj X[N/2-1] for real input). Same result as windowing
 *    in time, without a second FFT.
 *  - Envelope: the band's bins of the raw spectrum, doubled (analytic signal: positive
 *    frequencies only), are shifted down to bin 0 before the inverse FFT. A frequency shift only
 *    multiplies the analytic signal by a unit phasor, so |analytic| is unchanged, and the
 *    inverse FFT needs only as many points as the band has bins (a quarter of N for a typical
 *    resonance band), which also decimates the envelope for free. The envelope spectrum keeps
 *    the block's resolution (1 / block duration).
 */
#include "analytics/vibration_fft.h"

#include <kiss_fft.h>
#include <kiss_fftr.h>
#include <math.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/error.h"

#define HANN_MS 0.375 /* mean of w^2 for the Hann window */

void mr_vib_stats(const float *x, size_t n, struct mr_vib_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (n == 0) {
        return;
    }
    double sum = 0, sumsq = 0, mn = x[0], mx = x[0];
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        sum += v;
        sumsq += v * v;
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    double mean = sum / (double)n;
    double m2 = 0, m3 = 0, m4 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - mean;
        double d2 = d * d;
        m2 += d2;
        m3 += d2 * d;
        m4 += d2 * d2;
    }
    m2 /= (double)n;
    m3 /= (double)n;
    m4 /= (double)n;
    out->rms = sqrt(sumsq / (double)n);
    out->peak = fabs(mn) > fabs(mx) ? fabs(mn) : fabs(mx);
    out->peak_to_peak = mx - mn;
    out->crest = out->rms > 0 ? out->peak / out->rms : 0;
    /* A constant block has no shape: report 0 rather than NaN. */
    out->skewness = m2 > 0 ? m3 / (m2 * sqrt(m2)) : 0;
    out->kurtosis = m2 > 0 ? m4 / (m2 * m2) : 0;
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

/* kiss plans in our allocator, so allocation failures can be injected in tests. */
static void *plan_real(uint32_t n, int inverse)
{
    size_t len = 0;
    kiss_fftr_alloc((int)n, inverse, NULL, &len);
    void *mem = mr_malloc(len);
    if (mem != NULL && kiss_fftr_alloc((int)n, inverse, mem, &len) == NULL) {
        mr_free(mem);
        mem = NULL;
    }
    return mem;
}

static void *plan_complex(uint32_t n, int inverse)
{
    size_t len = 0;
    kiss_fft_alloc((int)n, inverse, NULL, &len);
    void *mem = mr_malloc(len);
    if (mem != NULL && kiss_fft_alloc((int)n, inverse, mem, &len) == NULL) {
        mr_free(mem);
        mem = NULL;
    }
    return mem;
}

int mr_vib_dsp_init(struct mr_vib_dsp *d, uint32_t n)
{
    memset(d, 0, sizeof(*d));
    if (n < 16 || n % 2 != 0) {
        return MR_EINVAL;
    }
    d->n = n;
    size_t half = n / 2 + 1;
    d->fwd = plan_real(n, 0);
    d->in = mr_calloc(n, sizeof(float));
    d->spec = mr_calloc(half, sizeof(kiss_fft_cpx));
    d->power = mr_calloc(half, sizeof(double));
    d->base = mr_calloc(n, sizeof(kiss_fft_cpx));
    d->ana = mr_calloc(n, sizeof(kiss_fft_cpx));
    d->env = mr_calloc(n, sizeof(float));
    d->envspec = mr_calloc(half, sizeof(kiss_fft_cpx));
    d->envamp = mr_calloc(half, sizeof(double));
    if (d->fwd == NULL || d->in == NULL || d->spec == NULL || d->power == NULL || d->base == NULL ||
        d->ana == NULL || d->env == NULL || d->envspec == NULL || d->envamp == NULL) {
        mr_vib_dsp_fini(d);
        return MR_ENOMEM;
    }
    return 0;
}

void mr_vib_dsp_fini(struct mr_vib_dsp *d)
{
    mr_free(d->fwd);
    mr_free(d->in);
    mr_free(d->spec);
    mr_free(d->power);
    mr_free(d->inv);
    mr_free(d->envfwd);
    mr_free(d->base);
    mr_free(d->ana);
    mr_free(d->env);
    mr_free(d->envspec);
    mr_free(d->envamp);
    memset(d, 0, sizeof(*d));
}

static kiss_fft_cpx cpx_at(const kiss_fft_cpx *x, uint32_t half_n, long k)
{
    if (k < 0) {
        return (kiss_fft_cpx){.r = x[-k].r, .i = -x[-k].i};
    }
    if (k > (long)half_n) {
        long m = 2 * (long)half_n - k;
        return (kiss_fft_cpx){.r = x[m].r, .i = -x[m].i};
    }
    return x[k];
}

/* |Hann-windowed X[k]|^2 from the raw spectrum (see the top of the file). */
static double hann_power(const kiss_fft_cpx *x, uint32_t half_n, long k)
{
    kiss_fft_cpx a = cpx_at(x, half_n, k - 1), b = x[k], c = cpx_at(x, half_n, k + 1);
    double re = 0.5 * b.r - 0.25 * ((double)a.r + c.r);
    double im = 0.5 * b.i - 0.25 * ((double)a.i + c.i);
    return re * re + im * im;
}

void mr_vib_dsp_spectrum(struct mr_vib_dsp *d, const float *x)
{
    uint32_t half = d->n / 2;
    memcpy(d->in, x, d->n * sizeof(float));
    kiss_fftr(d->fwd, d->in, d->spec);
    double norm = 1.0 / ((double)d->n * (double)d->n * HANN_MS);
    for (uint32_t k = 0; k <= half; k++) {
        double one_sided = (k == 0 || k == half) ? 1.0 : 2.0;
        d->power[k] = hann_power(d->spec, half, k) * one_sided * norm;
    }
}

double mr_vib_band_rms(const struct mr_vib_dsp *d, double rate_hz, double lo, double hi)
{
    double per_bin = (double)d->n / rate_hz;
    double klo = ceil(lo * per_bin);
    double khi = ceil(hi * per_bin) - 1;
    double half = d->n / 2;
    klo = klo < 0 ? 0 : klo;
    khi = khi > half ? half : khi;
    double sum = 0;
    for (double k = klo; k <= khi; k++) {
        sum += d->power[(uint32_t)k];
    }
    return sqrt(sum);
}

/* Smallest even number >= need with only the factors 2, 3 and 5 (fast for KissFFT). */
static uint32_t smooth_even(uint32_t need)
{
    for (uint32_t v = need + (need & 1u);; v += 2) {
        uint32_t r = v;
        while (r % 2 == 0) {
            r /= 2;
        }
        while (r % 3 == 0) {
            r /= 3;
        }
        while (r % 5 == 0) {
            r /= 5;
        }
        if (r == 1) {
            return v;
        }
    }
}

int mr_vib_dsp_prepare(struct mr_vib_dsp *d, double rate_hz, double lo, double hi, double fmax)
{
    if (d->inv != NULL && rate_hz == d->env_rate && lo == d->env_lo && hi == d->env_hi) {
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
    uint32_t need = width > span ? width : (uint32_t)span;
    uint32_t m = smooth_even(need < 16 ? 16 : need);
    m = m > d->n ? d->n : m;
    width = width > m ? m : width;
    mr_free(d->inv);
    mr_free(d->envfwd);
    d->inv = plan_complex(m, 1);
    d->envfwd = plan_real(m, 0);
    if (d->inv == NULL || d->envfwd == NULL) {
        mr_free(d->inv);
        mr_free(d->envfwd);
        d->inv = d->envfwd = NULL;
        return MR_ENOMEM;
    }
    d->env_rate = rate_hz;
    d->env_lo = lo;
    d->env_hi = hi;
    d->m = m;
    d->klo = (uint32_t)klo;
    d->kwidth = width;
    return 0;
}

void mr_vib_dsp_envelope(struct mr_vib_dsp *d)
{
    kiss_fft_cpx *spec = d->spec, *base = d->base, *ana = d->ana, *es = d->envspec;
    uint32_t m = d->m, half = m / 2;
    for (uint32_t j = 0; j < m; j++) {
        base[j] = j < d->kwidth
                      ? (kiss_fft_cpx){.r = 2 * spec[d->klo + j].r, .i = 2 * spec[d->klo + j].i}
                      : (kiss_fft_cpx){0};
    }
    kiss_fft(d->inv, base, ana);
    double sum = 0, scale = 1.0 / d->n;
    for (uint32_t i = 0; i < m; i++) {
        double e = sqrt((double)ana[i].r * ana[i].r + (double)ana[i].i * ana[i].i) * scale;
        d->env[i] = (float)e;
        sum += e;
    }
    float mean = (float)(sum / m);
    for (uint32_t i = 0; i < m; i++) {
        d->env[i] -= mean;
    }
    kiss_fftr(d->envfwd, d->env, es);
    /* one-sided amplitude with Hann: 2 |Xw| / sum(w) = 4 |Xw| / m */
    for (uint32_t k = 0; k <= half; k++) {
        d->envamp[k] = sqrt(hann_power(es, half, k)) * 4.0 / m;
    }
    for (uint32_t k = half + 1; k <= d->n / 2; k++) {
        d->envamp[k] = 0;
    }
}

double mr_vib_env_peak(const struct mr_vib_dsp *d, double f, double tol)
{
    if (d->m == 0 || !(f > 0)) {
        return 0;
    }
    double c = f * d->n / d->env_rate;
    double lo = floor(fmin(c * (1 - tol), c - 1));
    double hi = ceil(fmax(c * (1 + tol), c + 1));
    double top = d->m / 2;
    lo = lo < 1 ? 1 : lo;
    hi = hi > top ? top : hi;
    double best = 0;
    for (double k = lo; k <= hi; k++) {
        double a = d->envamp[(uint32_t)k];
        best = a > best ? a : best;
    }
    return best;
}
