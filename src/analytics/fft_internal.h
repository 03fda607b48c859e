/* Private to fft.c, fft_avx2.c and fft_kernels.h: the kernel sets behind the mr_fft plans. */
#ifndef MR_ANALYTICS_FFT_INTERNAL_H
#define MR_ANALYTICS_FFT_INTERNAL_H

#include "analytics/fft.h"

/* Radix-4 passes with a stride below this read per-lane twiddles (s = 1, 4); wider ones
 * broadcast one twiddle per p. 16 measured as fast as 64 and uses less memory. */
#define EXPAND_BELOW 16

/* An 8-lane AVX2 kernel set is compiled next to the baseline one when the build targets x86
 * without AVX (the default flags: SSE2 only), and chosen at plan init when the CPU has AVX2. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__AVX__)
#define MR_FFT_HAVE_AVX2 1
#endif

/* Each kernel set's entry points (fft_kernels.h). cpx_run: complex FFT of p->m points, split
 * arrays in -> out (in == out allowed). real_run: real FFT of the n inputs (times win[] when
 * set) into out_re/out_im, or, when power is set, |X_k|^2 added to power[k] instead. */
void mr_fft_base_cpx_run(struct mr_fft_cpx *p, const float *xr, const float *xi, float *out_r,
                         float *out_i);
void mr_fft_base_real_run(struct mr_fft_real *p, const float *in, const float *win, float *out_re,
                          float *out_im, float *power);
#if defined(MR_FFT_HAVE_AVX2)
void mr_fft_avx2_cpx_run(struct mr_fft_cpx *p, const float *xr, const float *xi, float *out_r,
                         float *out_i);
void mr_fft_avx2_real_run(struct mr_fft_real *p, const float *in, const float *win, float *out_re,
                          float *out_im, float *power);
#endif

#endif
