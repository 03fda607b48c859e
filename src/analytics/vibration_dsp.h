/* Signal processing behind the `vibration` operator (vibration.c): running time-domain
 * moments, the Hann-windowed power spectrum of one Welch segment, band power, velocity power
 * (acceleration integrated in the frequency domain), bearing defect frequencies and the
 * envelope spectrum of a segment.
 *
 * Everything that allocates (FFT plans, scratch) happens in mr_vib_dsp_init and, for the
 * envelope, once per new sample rate or band in mr_vib_dsp_prepare; analysing a segment
 * allocates nothing.
 */
#ifndef MR_ANALYTICS_VIBRATION_DSP_H
#define MR_ANALYTICS_VIBRATION_DSP_H

#include <stddef.h>
#include <stdint.h>

#include "analytics/fft.h"

/* Time-domain statistics of a window. rms is of the raw values (DC included); skewness and
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

/* Central moments of the samples seen so far, merged chunk by chunk with the pairwise update
 * (Chan et al. for M2, Pebay 2008 for M3 and M4): exact for any chunking, stable for signals
 * far from zero mean. 64 bytes. */
struct mr_vib_moments {
    double n;
    double mean;
    double m2, m3, m4; /* sums of (x - mean)^p */
    double sumsq;      /* of the raw values */
    double min, max;
};

void mr_vib_moments_reset(struct mr_vib_moments *m);
/* Add x[0..n) (n <= 65536). NaN or infinite samples make the result non-finite. */
void mr_vib_moments_add(struct mr_vib_moments *m, const float *x, size_t n);
void mr_vib_moments_stats(const struct mr_vib_moments *m, struct mr_vib_stats *out);
/* The statistics of one block: reset, add, stats. */
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

/* Plans and scratch for segments of n samples (a power of two). */
struct mr_vib_dsp {
    uint32_t n;
    struct mr_fft_real fwd; /* real FFT of n */
    float *re, *im;         /* [n/2+1]: raw spectrum of the last segment */
    float *power;           /* [n/2+1]: Hann-windowed power per bin, units^2 (sums to MS) */
    float *inv_k2;          /* [n/2+1]: 1 / k^2 (0 at k = 0), for the velocity */
    /* envelope, for one sample rate and band (mr_vib_dsp_prepare) */
    double env_rate;
    double env_lo, env_hi;
    uint32_t m;                /* envelope length (power of two, <= n) */
    uint32_t klo;              /* first bin of the band */
    uint32_t kwidth;           /* bins in the band */
    struct mr_fft_cpx inv;     /* inverse complex FFT of m */
    struct mr_fft_real envfwd; /* real FFT of m */
    float *bre, *bim;          /* [m]: band shifted to baseband, then the analytic signal */
    float *env;                /* [m]: the envelope, Hann-windowed */
    float *ere, *eim;          /* [m/2+1]: its spectrum */
    float *hann;               /* [m]: periodic Hann window */
    float *envpow;             /* [m/2+1]: squared one-sided amplitude spectrum of the envelope */
};

/* Returns 0 or MR_ENOMEM / MR_EINVAL (n not a power of two in 16..65536). */
int mr_vib_dsp_init(struct mr_vib_dsp *d, uint32_t n);
void mr_vib_dsp_fini(struct mr_vib_dsp *d);

/* FFT of x[0..n) into d->re/im and d->power (Hann window applied in the frequency domain). */
void mr_vib_dsp_spectrum(struct mr_vib_dsp *d, const float *x);
/* Power (mean square) in the band [lo, hi) Hz from d->power (bin k is at k * rate / n). */
double mr_vib_band_power(const struct mr_vib_dsp *d, double rate_hz, double lo, double hi);
/* Mean square of the integral of the signal over the band [lo, hi) Hz (lo > 0): each bin's
 * power divided by (2 pi f)^2, times scale^2 (unit conversion, e.g. g -> mm/s^2). */
double mr_vib_velocity_power(const struct mr_vib_dsp *d, double rate_hz, double lo, double hi,
                             double scale);

/* Make the envelope plans ready for this rate and band [lo, hi] Hz, with an envelope spectrum
 * reaching at least fmax Hz. Allocates only when rate or band changed. Returns 0, MR_ENOMEM or
 * MR_EINVAL (band empty or outside 0..rate/2). */
int mr_vib_dsp_prepare(struct mr_vib_dsp *d, double rate_hz, double lo, double hi, double fmax);
/* Envelope spectrum of the segment whose spectrum mr_vib_dsp_spectrum just computed: keep the
 * band's bins, analytic signal (positive frequencies only) shifted to baseband, |.|, remove its
 * mean, Hann window, FFT -> d->envpow (bin k at k * rate / n, squared amplitude in signal
 * units^2, so that averaging segments averages power). */
void mr_vib_dsp_envelope(struct mr_vib_dsp *d);

#endif
