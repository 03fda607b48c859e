/* Stockham autosort FFT (see fft.h for conventions and layout).
 *
 * Complex FFT of N = 4^k or 8 * 4^k points, decimation in frequency. Pass t splits sub-transforms
 * of length n into 4 of length n/4; s = N/n of them are interleaved with stride s, m = n/4:
 *
 *   for p < m, q < s:  a,b,c,d = x[q + s*(p + 0m)], x[q + s*(p + 1m)], ... x[q + s*(p + 3m)]
 *     y[q + s*(4p+0)] = (a+c) + (b+d)
 *     y[q + s*(4p+1)] = ((a-c) - i(b-d)) w^p
 *     y[q + s*(4p+2)] = ((a+c) - (b+d)) w^2p          w = e^{-2 pi i/n}
 *     y[q + s*(4p+3)] = ((a-c) + i(b-d)) w^3p
 *
 * then n /= 4, s *= 4. When log2 N is odd the last pass is radix 8 (n = 8, p = 0: no twiddles)
 * instead of a radix-4 and a radix-2 pass. Reads
 * are contiguous in j = s*p + q for every pass; writes are contiguous runs of s, so passes with
 * s >= the vector width vectorise over q with the twiddles broadcast, and the first two passes
 * (s = 1 and s = 4) vectorise over j with per-lane twiddles ("expanded" tables) and shuffle
 * their results into place. Tiny transforms use the same formulas in scalar loops.
 *
 * Real FFT of n: z_j = x_2j + i x_2j+1 (de-interleaved while the first pass loads), Z = FFT_n/2
 * (z), then with R = conj(Z_{n/2-k}) and w = e^{-2 pi i k/n}:
 *   X_k = (Z_k + R)/2 + w (Z_k - R)/(2i),   X_0 = Re Z_0 + Im Z_0,   X_n/2 = Re Z_0 - Im Z_0.
 *
 * Twiddles are computed in double from exactly reduced angles and rounded once to float.
 * Vector code uses only IEEE add/sub/mul in a fixed order per element, so the result does not
 * depend on the vector width.
 *
 * This file holds the plans and the dispatch; the kernels are in fft_kernels.h, compiled here at
 * the build's baseline width and in fft_avx2.c for AVX2 (picked per plan from the CPU).
 */
#include "analytics/fft.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "analytics/fft_internal.h"
#include "millrace/alloc.h"
#include "millrace/error.h"

/* The baseline kernels: whatever the build targets (8 lanes if that includes AVX). */
#if defined(__AVX__)
#define VL 8
typedef float vf __attribute__((vector_size(32)));
#else
#define VL 4
typedef float vf __attribute__((vector_size(16)));
#endif
#define KFN(name) mr_fft_base_##name
#include "analytics/fft_kernels.h"

/* The widest kernel set this CPU runs. */
static uint32_t isa_detect(void)
{
#if defined(MR_FFT_HAVE_AVX2)
    if (__builtin_cpu_supports("avx2")) {
        return MR_FFT_ISA_AVX2;
    }
#endif
    return MR_FFT_ISA_BASE;
}

/* --- plans --------------------------------------------------------------------------------- */

static int is_pow2(uint32_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

/* e^{-2 pi i num/den} rounded to float, with num reduced exactly first. */
static void unit_root(uint64_t num, uint64_t den, float *re, float *im)
{
    double a = -2.0 * M_PI * (double)(num % den) / (double)den;
    *re = (float)cos(a);
    *im = (float)sin(a);
}

/* 64-byte aligned region inside a block from mr_malloc (which only promises 16). */
static float *align64(void *mem)
{
    uintptr_t u = (uintptr_t)mem;
    return (float *)((u + 63) & ~(uintptr_t)63);
}

/* Floats one pass's 6 twiddle arrays take, rounded up so that every table starts 64-byte
 * aligned. */
static size_t tw_stride(uint32_t len)
{
    return (6 * (size_t)len + 15) & ~(size_t)15;
}

static size_t plan_layout(struct mr_fft_cpx *p, uint32_t N)
{
    uint32_t n = N, s = 1, t = 0;
    size_t floats = 0;
    int odd = (N & 0x55555555u) == 0; /* log2 N odd: finish with one radix-8 pass */
    while (n >= 4 && !(odd && n == 8)) {
        int expanded = s < EXPAND_BELOW;
        uint32_t len = expanded ? N / 4 : n / 4;
        p->pass[t++] =
            (struct mr_fft_pass){.radix = 4, .n = n, .s = s, .tw_len = len, .expanded = expanded};
        floats += tw_stride(len);
        n /= 4;
        s *= 4;
    }
    if (odd) {
        p->pass[t++] = (struct mr_fft_pass){.radix = 8, .n = 8, .s = N / 8};
    }
    p->npasses = t;
    return floats;
}

static void plan_twiddles(struct mr_fft_cpx *p, float *tw)
{
    for (uint32_t t = 0; t < p->npasses; t++) {
        struct mr_fft_pass *ps = &p->pass[t];
        if (ps->radix != 4) {
            continue;
        }
        size_t L = ps->tw_len;
        for (size_t e = 0; e < L; e++) {
            uint64_t pp = ps->expanded ? e / ps->s : e;
            for (uint64_t k = 1; k <= 3; k++) {
                unit_root(k * pp, ps->n, &tw[(2 * k - 2) * L + e], &tw[(2 * k - 1) * L + e]);
            }
        }
        ps->tw = tw;
        tw += tw_stride(ps->tw_len);
    }
}

/* Internal sizes go down to 8 (the half-size transform of a 16-point real FFT). */
static int cpx_init(struct mr_fft_cpx *p, uint32_t m)
{
    memset(p, 0, sizeof(*p));
    if (!is_pow2(m) || m < 8 || m > MR_FFT_MAX) {
        return MR_EINVAL;
    }
    size_t tw_floats = plan_layout(p, m);
    size_t floats = tw_floats + 4 * (size_t)m + 16;
    p->mem = mr_malloc(floats * sizeof(float) + 64);
    if (p->mem == NULL) {
        memset(p, 0, sizeof(*p));
        return MR_ENOMEM;
    }
    float *base = align64(p->mem);
    p->buf = base;
    plan_twiddles(p, base + 4 * (size_t)m + 16);
    p->m = m;
    p->isa = isa_detect();
    return 0;
}

int mr_fft_cpx_init(struct mr_fft_cpx *p, uint32_t m)
{
    if (m < MR_FFT_MIN) {
        memset(p, 0, sizeof(*p));
        return MR_EINVAL;
    }
    return cpx_init(p, m);
}

void mr_fft_cpx_fini(struct mr_fft_cpx *p)
{
    if (p == NULL) {
        return;
    }
    mr_free(p->mem);
    memset(p, 0, sizeof(*p));
}

int mr_fft_real_init(struct mr_fft_real *p, uint32_t n)
{
    memset(p, 0, sizeof(*p));
    if (!is_pow2(n) || n < MR_FFT_MIN || n > MR_FFT_MAX) {
        return MR_EINVAL;
    }
    uint32_t h = n / 2;
    int rc = cpx_init(&p->half, h);
    if (rc != 0) {
        return rc;
    }
    size_t floats = 2 * ((size_t)h + 1) + 2 * (size_t)h + 32;
    p->mem = mr_malloc(floats * sizeof(float) + 64);
    if (p->mem == NULL) {
        mr_fft_cpx_fini(&p->half);
        return MR_ENOMEM;
    }
    float *base = align64(p->mem);
    p->z = base;
    p->post = base + 2 * (size_t)h + 16;
    for (uint32_t k = 0; k <= h; k++) {
        float wr, wi;
        unit_root(k, n, &wr, &wi);
        p->post[k] = 0.5f * wr;
        p->post[h + 1 + k] = 0.5f * wi;
    }
    p->n = n;
    return 0;
}

void mr_fft_real_fini(struct mr_fft_real *p)
{
    if (p == NULL) {
        return;
    }
    mr_fft_cpx_fini(&p->half);
    mr_free(p->mem);
    memset(p, 0, sizeof(*p));
}

/* --- transforms: the kernel set chosen at init ------------------------------------------------ */

static void cpx_dispatch(struct mr_fft_cpx *p, const float *xr, const float *xi, float *out_r,
                         float *out_i)
{
#if defined(MR_FFT_HAVE_AVX2)
    if (p->isa == MR_FFT_ISA_AVX2) {
        mr_fft_avx2_cpx_run(p, xr, xi, out_r, out_i);
        return;
    }
#endif
    mr_fft_base_cpx_run(p, xr, xi, out_r, out_i);
}

static void real_dispatch(struct mr_fft_real *p, const float *in, const float *win, float *out_re,
                          float *out_im, float *power)
{
#if defined(MR_FFT_HAVE_AVX2)
    if (p->half.isa == MR_FFT_ISA_AVX2) {
        mr_fft_avx2_real_run(p, in, win, out_re, out_im, power);
        return;
    }
#endif
    mr_fft_base_real_run(p, in, win, out_re, out_im, power);
}

void mr_fft_cpx_forward(struct mr_fft_cpx *p, const float *in_re, const float *in_im, float *out_re,
                        float *out_im)
{
    cpx_dispatch(p, in_re, in_im, out_re, out_im);
}

/* conj(FFT(conj x)) = swap re/im on the way in and out: free with split arrays. */
void mr_fft_cpx_inverse(struct mr_fft_cpx *p, const float *in_re, const float *in_im, float *out_re,
                        float *out_im)
{
    cpx_dispatch(p, in_im, in_re, out_im, out_re);
}

void mr_fft_real_forward(struct mr_fft_real *p, const float *in, float *out_re, float *out_im)
{
    real_dispatch(p, in, NULL, out_re, out_im, NULL);
}

void mr_fft_real_power_add(struct mr_fft_real *p, const float *in, const float *win, float *power)
{
    real_dispatch(p, in, win, NULL, NULL, power);
}
