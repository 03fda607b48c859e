/* Fast Fourier transforms for the analytics operators (vibration spectra, envelopes), written
 * from the math (no third-party FFT code): a Stockham autosort complex FFT, radix 4 with a final
 * radix-8 pass when log2(m) is odd, on split re[]/im[] arrays, vectorised with GCC vector
 * extensions (4 lanes: SSE2 on any x86-64, NEON on aarch64; on x86 an 8-lane AVX2 set is
 * compiled too and chosen at plan init when the CPU has AVX2), plus the standard split
 * post-processing that turns a complex FFT of n/2 points into the real FFT of n points.
 *
 * Conventions (same as KissFFT, so results can be compared bin by bin):
 *   forward  X_k = sum_j x_j e^{-2 pi i jk/n}, unnormalised;
 *   inverse  x_j = sum_k X_k e^{+2 pi i jk/n}, unnormalised: inverse(forward(x)) = m * x.
 *
 * Layout: complex data is always two float arrays, re[] and im[] (this suits the vectorised
 * power and band loops that read the spectrum). The real transform of n samples writes n/2+1
 * bins: re[0..n/2] and im[0..n/2] (im[0] and im[n/2] are 0).
 *
 * Plans: init allocates everything (twiddles, scratch) once; transforms allocate nothing. A plan
 * holds scratch, so one plan serves one thread at a time. Results are bit-reproducible: the
 * same input gives the same bits on every run, and (no FMA contraction) the same bits whatever
 * the vector width or CPU.
 */
#ifndef MR_ANALYTICS_FFT_H
#define MR_ANALYTICS_FFT_H

#include <stdint.h>

#define MR_FFT_MIN        16u
#define MR_FFT_MAX        65536u
#define MR_FFT_MAX_PASSES 12

/* One pass of the complex FFT (private to fft.c). */
struct mr_fft_pass {
    uint32_t radix;  /* 4, or 8 for the last pass when log2 m is odd */
    uint32_t n;      /* length of the sub-transforms this pass splits */
    uint32_t s;      /* stride: how many sub-transforms are interleaved */
    uint32_t tw_len; /* entries per twiddle array (0 for the radix-8 pass: no twiddles) */
    int expanded;    /* twiddles per flat index j = s*p + q (else per p) */
    const float *tw; /* 6 arrays of tw_len: re/im of w^p, w^2p, w^3p */
};

/* Kernel sets (struct mr_fft_cpx.isa). Both give identical bits; tests compare them. */
enum { MR_FFT_ISA_BASE = 0, MR_FFT_ISA_AVX2 = 1 };

/* Complex FFT plan of m points (caller-owned storage; fields are private). */
struct mr_fft_cpx {
    uint32_t m;
    uint32_t isa; /* MR_FFT_ISA_*: chosen at init from the CPU; a test may lower it to BASE */
    uint32_t npasses;
    struct mr_fft_pass pass[MR_FFT_MAX_PASSES];
    void *mem;  /* the one allocation: twiddles and scratch */
    float *buf; /* scratch: two buffers of m complex (4 * m floats) */
};

/* Real FFT plan of n samples (caller-owned storage; fields are private). */
struct mr_fft_real {
    uint32_t n;
    struct mr_fft_cpx half; /* complex FFT of n/2 points */
    void *mem;
    float *post; /* 2 arrays of n/2+1: 0.5 * e^{-2 pi i k/n}, re then im */
    float *z;    /* 2 arrays of n/2: the half-size transform */
};

/* m a power of two in MR_FFT_MIN..MR_FFT_MAX. Returns 0, MR_EINVAL (bad m) or MR_ENOMEM; on
 * failure nothing is left to free (fini is still safe). */
int mr_fft_cpx_init(struct mr_fft_cpx *p, uint32_t m);
/* Frees what init allocated; safe on a zeroed or failed plan, and twice. */
void mr_fft_cpx_fini(struct mr_fft_cpx *p);
/* out = forward / inverse FFT of in, each m floats per array. in and out may be the same arrays
 * (in place); otherwise they must not overlap. */
void mr_fft_cpx_forward(struct mr_fft_cpx *p, const float *in_re, const float *in_im, float *out_re,
                        float *out_im);
void mr_fft_cpx_inverse(struct mr_fft_cpx *p, const float *in_re, const float *in_im, float *out_re,
                        float *out_im);

/* n a power of two in MR_FFT_MIN..MR_FFT_MAX. Returns 0, MR_EINVAL or MR_ENOMEM (as above). */
int mr_fft_real_init(struct mr_fft_real *p, uint32_t n);
void mr_fft_real_fini(struct mr_fft_real *p);
/* in[n] (borrowed, unchanged) -> out_re[n/2+1], out_im[n/2+1]. */
void mr_fft_real_forward(struct mr_fft_real *p, const float *in, float *out_re, float *out_im);
/* One Welch segment in one call: power[k] += |X_k|^2, k = 0..n/2, where X is the real FFT of
 * in[j] * win[j] (win NULL: no window). in[n], win[n] borrowed; power[n/2+1] caller-owned. The
 * window multiply is fused into the first pass and X is never stored, which saves two sweeps
 * over the segment compared with window + mr_fft_real_forward + a power loop. The products
 * in[j] * win[j] and the power sums are rounded exactly as that sequence would round them. */
void mr_fft_real_power_add(struct mr_fft_real *p, const float *in, const float *win, float *power);

#endif
