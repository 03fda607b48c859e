/* Signal processing behind the `vibration` operator (vibration.c): time-domain statistics of a
 * block, its Hann-windowed power spectrum, band RMS, bearing defect frequencies and the
 * envelope spectrum, on KissFFT (Debian libkissfft-dev, pkg-config kissfft-float).
 *
 * Everything that allocates (plans, scratch) happens in mr_vib_dsp_init and, for the envelope,
 * once per new sample rate in mr_vib_dsp_prepare; analysing a block allocates nothing.
 */
#ifndef MR_ANALYTICS_VIBRATION_FFT_H
#define MR_ANALYTICS_VIBRATION_FFT_H

#include <stddef.h>
#include <stdint.h>

/* Time-domain statistics of a block. rms is of the raw values (DC included); skewness and
 * kurtosis are of the mean-removed values; kurtosis is Pearson's (3 for Gaussian noise, 1.5 for
 * a sine), not the excess. */
struct mr_vib_stats {
    double rms;
    double peak; /* max |x| */
    double peak_to_peak;
    double crest; /* peak / rms (0 when rms is 0) */
    double skewness;
    double kurtosis;
};

void mr_vib_stats(const float *x, size_t n, struct mr_vib_stats *out);

/* Rolling-element bearing kinematics (Hz) for a shaft rate f_r:
 *   FTF = f_r/2 (1 - d/D cos a), BPFO = n f_r/2 (1 - d/D cos a), BPFI = n f_r/2 (1 + d/D cos a),
 *   BSF = D f_r/(2d) (1 - (d/D cos a)^2). d and D in the same unit. */
struct mr_vib_bearing {
    double balls;
    double ball_diameter;
    double pitch_diameter;
    double contact_angle_deg;
};

enum { MR_VIB_FTF = 0, MR_VIB_BPFO = 1, MR_VIB_BPFI = 2, MR_VIB_BSF = 3, MR_VIB_NDEFECTS = 4 };

void mr_vib_defect_freqs(const struct mr_vib_bearing *b, double shaft_hz,
                         double out[MR_VIB_NDEFECTS]);

/* Plans and scratch for blocks of n samples (n even). */
struct mr_vib_dsp {
    uint32_t n;
    void *fwd; /* kiss_fftr_cfg of n */
    float *in;
    void *spec;    /* kiss_fft_cpx[n/2+1]: spectrum of the raw block */
    double *power; /* [n/2+1]: Hann-windowed power per bin, in signal units^2 (sums to MS) */
    /* envelope, for one sample rate and band (mr_vib_dsp_prepare) */
    double env_rate;
    double env_lo, env_hi;
    uint32_t m;      /* envelope length (even) */
    uint32_t klo;    /* first bin of the band */
    uint32_t kwidth; /* bins in the band */
    void *inv;       /* kiss_fft_cfg of m, inverse */
    void *envfwd;    /* kiss_fftr_cfg of m */
    void *base;      /* kiss_fft_cpx[n]: band shifted to baseband, then the analytic signal */
    void *ana;       /* kiss_fft_cpx[n] */
    float *env;      /* [n] */
    void *envspec;   /* kiss_fft_cpx[n/2+1] */
    double *envamp;  /* [n/2+1]: one-sided amplitude spectrum of the envelope */
};

/* Returns 0 or MR_ENOMEM / MR_EINVAL (n odd or < 16). */
int mr_vib_dsp_init(struct mr_vib_dsp *d, uint32_t n);
void mr_vib_dsp_fini(struct mr_vib_dsp *d);

/* FFT of x[0..n) into d->power (Hann window applied in the frequency domain). */
void mr_vib_dsp_spectrum(struct mr_vib_dsp *d, const float *x);
/* RMS of the band [lo, hi) Hz from d->power (bin k is at k * rate / n). */
double mr_vib_band_rms(const struct mr_vib_dsp *d, double rate_hz, double lo, double hi);

/* Make the envelope plans ready for this rate and band [lo, hi] Hz, with an envelope spectrum
 * reaching at least fmax Hz. Allocates only when rate or band changed. Returns 0, MR_ENOMEM or
 * MR_EINVAL (band empty or outside 0..rate/2). */
int mr_vib_dsp_prepare(struct mr_vib_dsp *d, double rate_hz, double lo, double hi, double fmax);
/* Envelope spectrum of the block whose spectrum mr_vib_dsp_spectrum just computed: keep the
 * band's bins, analytic signal (positive frequencies only) shifted to baseband, |.|, remove its
 * mean, Hann window, FFT -> d->envamp (bin k at k * rate / n, amplitude in signal units). */
void mr_vib_dsp_envelope(struct mr_vib_dsp *d);
/* Largest envelope amplitude within f * (1 +- tol) (at least +-1 bin). */
double mr_vib_env_peak(const struct mr_vib_dsp *d, double f, double tol);

#endif
