/* The FFT's vector kernels, written once for a vector width VL and compiled once per width:
 * fft.c includes this file for the baseline width (4 lanes: SSE2 / NEON, or 8 when the whole
 * build targets AVX) and fft_avx2.c again with 8 lanes under an AVX2 target pragma, chosen at
 * plan init by CPU detection. The includer defines VL, the vector type vf and KFN(name), which
 * names this width's two entry points (the rest is static). See fft.c for the algorithm.
 *
 * Every kernel applies the same IEEE operations in the same order to each element whatever VL
 * is, which is why both widths give identical bits (test_fft checks it).
 */
#ifndef VL
#error "define VL, vf and KFN before including fft_kernels.h"
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "analytics/fft.h"
#include "analytics/fft_internal.h"

/* Bit-reproducibility needs a*b+c rounded twice everywhere: GCC does not contract under
 * -std=c11, clang would (and GCC rejects this pragma under -Werror). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define INLINE static inline __attribute__((always_inline))

INLINE vf vload(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof(v));
    return v;
}

INLINE void vstore(float *p, vf v)
{
    memcpy(p, &v, sizeof(v));
}

INLINE vf vset1(float x)
{
    return (vf){0} + x;
}

/* Radix-4 DIF butterfly on vectors: inputs a..d (re, im), outputs y0..y3 before twiddles. */
struct b4 {
    vf r0, i0, r1, i1, r2, i2, r3, i3;
};

INLINE struct b4 bfly4(vf ar, vf ai, vf br, vf bi, vf cr, vf ci, vf dr, vf di)
{
    vf t0r = ar + cr, t0i = ai + ci, t1r = ar - cr, t1i = ai - ci;
    vf t2r = br + dr, t2i = bi + di, t3r = br - dr, t3i = bi - di;
    return (struct b4){.r0 = t0r + t2r,
                       .i0 = t0i + t2i,
                       .r1 = t1r + t3i,
                       .i1 = t1i - t3r,
                       .r2 = t0r - t2r,
                       .i2 = t0i - t2i,
                       .r3 = t1r - t3i,
                       .i3 = t1i + t3r};
}

/* Multiply outputs 1..3 by the twiddles w1..w3 (re, im). */
INLINE void twiddle4(struct b4 *y, vf w1r, vf w1i, vf w2r, vf w2i, vf w3r, vf w3i)
{
    vf r;
    r = y->r1 * w1r - y->i1 * w1i;
    y->i1 = y->r1 * w1i + y->i1 * w1r;
    y->r1 = r;
    r = y->r2 * w2r - y->i2 * w2i;
    y->i2 = y->r2 * w2i + y->i2 * w2r;
    y->r2 = r;
    r = y->r3 * w3r - y->i3 * w3i;
    y->i3 = y->r3 * w3i + y->i3 * w3r;
    y->r3 = r;
}

/* out[4i + k] = yk[i]: interleave four vectors into four consecutive vectors. */
INLINE void interleave4(float *out, vf y0, vf y1, vf y2, vf y3)
{
#if VL == 8
    vf t0 = __builtin_shufflevector(y0, y1, 0, 8, 1, 9, 4, 12, 5, 13);
    vf t1 = __builtin_shufflevector(y2, y3, 0, 8, 1, 9, 4, 12, 5, 13);
    vf t2 = __builtin_shufflevector(y0, y1, 2, 10, 3, 11, 6, 14, 7, 15);
    vf t3 = __builtin_shufflevector(y2, y3, 2, 10, 3, 11, 6, 14, 7, 15);
    vf u0 = __builtin_shufflevector(t0, t1, 0, 1, 8, 9, 4, 5, 12, 13);
    vf u1 = __builtin_shufflevector(t0, t1, 2, 3, 10, 11, 6, 7, 14, 15);
    vf u2 = __builtin_shufflevector(t2, t3, 0, 1, 8, 9, 4, 5, 12, 13);
    vf u3 = __builtin_shufflevector(t2, t3, 2, 3, 10, 11, 6, 7, 14, 15);
    vstore(out, __builtin_shufflevector(u0, u1, 0, 1, 2, 3, 8, 9, 10, 11));
    vstore(out + 8, __builtin_shufflevector(u2, u3, 0, 1, 2, 3, 8, 9, 10, 11));
    vstore(out + 16, __builtin_shufflevector(u0, u1, 4, 5, 6, 7, 12, 13, 14, 15));
    vstore(out + 24, __builtin_shufflevector(u2, u3, 4, 5, 6, 7, 12, 13, 14, 15));
#else
    vf t0 = __builtin_shufflevector(y0, y1, 0, 4, 1, 5);
    vf t1 = __builtin_shufflevector(y2, y3, 0, 4, 1, 5);
    vf t2 = __builtin_shufflevector(y0, y1, 2, 6, 3, 7);
    vf t3 = __builtin_shufflevector(y2, y3, 2, 6, 3, 7);
    vstore(out, __builtin_shufflevector(t0, t1, 0, 1, 4, 5));
    vstore(out + 4, __builtin_shufflevector(t0, t1, 2, 3, 6, 7));
    vstore(out + 8, __builtin_shufflevector(t2, t3, 0, 1, 4, 5));
    vstore(out + 12, __builtin_shufflevector(t2, t3, 2, 3, 6, 7));
#endif
}

/* Stride-4 pass output: lanes hold (p, q = 0..3) [and (p+1, q = 0..3)]; y[16p + 4k + q] = yk. */
INLINE void store_s4(float *out, vf y0, vf y1, vf y2, vf y3)
{
#if VL == 8
    vstore(out, __builtin_shufflevector(y0, y1, 0, 1, 2, 3, 8, 9, 10, 11));
    vstore(out + 8, __builtin_shufflevector(y2, y3, 0, 1, 2, 3, 8, 9, 10, 11));
    vstore(out + 16, __builtin_shufflevector(y0, y1, 4, 5, 6, 7, 12, 13, 14, 15));
    vstore(out + 24, __builtin_shufflevector(y2, y3, 4, 5, 6, 7, 12, 13, 14, 15));
#else
    vstore(out, y0);
    vstore(out + 4, y1);
    vstore(out + 8, y2);
    vstore(out + 12, y3);
#endif
}

/* Load VL complex values from interleaved (re, im) floats, times the window w when set. */
INLINE void load_pairs(const float *x, const float *w, vf *re, vf *im)
{
    vf lo = vload(x), hi = vload(x + VL);
    if (w != NULL) {
        lo *= vload(w);
        hi *= vload(w + VL);
    }
#if VL == 8
    *re = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14);
    *im = __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15);
#else
    *re = __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
    *im = __builtin_shufflevector(lo, hi, 1, 3, 5, 7);
#endif
}

/* Where a pass reads and writes. xint, when set, replaces xr/xi: interleaved (re, im) input,
 * multiplied by win[] when that is set too (the real FFT's window). */
struct io {
    const float *restrict xr;
    const float *restrict xi;
    const float *restrict xint;
    const float *restrict win;
    float *restrict yr;
    float *restrict yi;
};

/* First pass, s = 1: vectorised over p, expanded twiddles, results interleaved into place.
 * input: 0 split, 1 interleaved, 2 interleaved and windowed (constants: one copy each). */
INLINE void pass_s1(const struct mr_fft_pass *ps, uint32_t nq, struct io io, int input)
{
    uint32_t m = nq; /* N/4 */
    const float *tw = ps->tw;
    size_t L = ps->tw_len;
    for (uint32_t p = 0; p < m; p += VL) {
        vf ar, ai, br, bi, cr, ci, dr, di;
        if (input != 0) {
            const float *w = input == 2 ? io.win : NULL;
            load_pairs(io.xint + 2 * (size_t)p, w ? w + 2 * (size_t)p : NULL, &ar, &ai);
            load_pairs(io.xint + 2 * ((size_t)p + m), w ? w + 2 * ((size_t)p + m) : NULL, &br, &bi);
            load_pairs(io.xint + 2 * ((size_t)p + 2 * m), w ? w + 2 * ((size_t)p + 2 * m) : NULL,
                       &cr, &ci);
            load_pairs(io.xint + 2 * ((size_t)p + 3 * m), w ? w + 2 * ((size_t)p + 3 * m) : NULL,
                       &dr, &di);
        } else {
            ar = vload(io.xr + p), ai = vload(io.xi + p);
            br = vload(io.xr + p + m), bi = vload(io.xi + p + m);
            cr = vload(io.xr + p + 2 * m), ci = vload(io.xi + p + 2 * m);
            dr = vload(io.xr + p + 3 * m), di = vload(io.xi + p + 3 * m);
        }
        struct b4 y = bfly4(ar, ai, br, bi, cr, ci, dr, di);
        twiddle4(&y, vload(tw + p), vload(tw + L + p), vload(tw + 2 * L + p), vload(tw + 3 * L + p),
                 vload(tw + 4 * L + p), vload(tw + 5 * L + p));
        interleave4(io.yr + 4 * (size_t)p, y.r0, y.r1, y.r2, y.r3);
        interleave4(io.yi + 4 * (size_t)p, y.i0, y.i1, y.i2, y.i3);
    }
}

/* Second pass, s = 4: vectorised over j = 4p + q, expanded twiddles. */
static void pass_s4(const struct mr_fft_pass *ps, uint32_t nq, struct io io)
{
    const float *tw = ps->tw;
    size_t L = ps->tw_len;
    for (uint32_t j = 0; j < nq; j += VL) {
        struct b4 y =
            bfly4(vload(io.xr + j), vload(io.xi + j), vload(io.xr + j + nq), vload(io.xi + j + nq),
                  vload(io.xr + j + 2 * nq), vload(io.xi + j + 2 * nq), vload(io.xr + j + 3 * nq),
                  vload(io.xi + j + 3 * nq));
        twiddle4(&y, vload(tw + j), vload(tw + L + j), vload(tw + 2 * L + j), vload(tw + 3 * L + j),
                 vload(tw + 4 * L + j), vload(tw + 5 * L + j));
        store_s4(io.yr + 4 * (size_t)j, y.r0, y.r1, y.r2, y.r3);
        store_s4(io.yi + 4 * (size_t)j, y.i0, y.i1, y.i2, y.i3);
    }
}

/* Passes with s >= VL: vectorised over q; twiddles per lane from the expanded table, or
 * broadcast per p (none at all when m = 1). */
INLINE void pass_wide_body(const struct mr_fft_pass *ps, uint32_t nq, struct io io, int expanded)
{
    uint32_t s = ps->s, m = ps->n / 4;
    const float *tw = ps->tw;
    size_t L = ps->tw_len;
    for (uint32_t p = 0; p < m; p++) {
        vf w1r = vset1(tw[p]), w1i = vset1(tw[L + p]), w2r = vset1(tw[2 * L + p]);
        vf w2i = vset1(tw[3 * L + p]), w3r = vset1(tw[4 * L + p]), w3i = vset1(tw[5 * L + p]);
        size_t in = (size_t)s * p, out = (size_t)s * 4 * p;
        for (uint32_t q = 0; q < s; q += VL) {
            size_t j = in + q;
            struct b4 y =
                bfly4(vload(io.xr + j), vload(io.xi + j), vload(io.xr + j + nq),
                      vload(io.xi + j + nq), vload(io.xr + j + 2 * nq), vload(io.xi + j + 2 * nq),
                      vload(io.xr + j + 3 * nq), vload(io.xi + j + 3 * nq));
            if (expanded) {
                twiddle4(&y, vload(tw + j), vload(tw + L + j), vload(tw + 2 * L + j),
                         vload(tw + 3 * L + j), vload(tw + 4 * L + j), vload(tw + 5 * L + j));
            } else if (m > 1) {
                twiddle4(&y, w1r, w1i, w2r, w2i, w3r, w3i);
            }
            size_t o = out + q;
            vstore(io.yr + o, y.r0), vstore(io.yi + o, y.i0);
            vstore(io.yr + o + s, y.r1), vstore(io.yi + o + s, y.i1);
            vstore(io.yr + o + 2 * s, y.r2), vstore(io.yi + o + 2 * s, y.i2);
            vstore(io.yr + o + 3 * s, y.r3), vstore(io.yi + o + 3 * s, y.i3);
        }
    }
}

static void pass_wide(const struct mr_fft_pass *ps, uint32_t nq, struct io io)
{
    if (ps->expanded) {
        pass_wide_body(ps, nq, io, 1);
    } else {
        pass_wide_body(ps, nq, io, 0);
    }
}

/* Any radix-4 pass, one element at a time (tiny transforms). */
static void pass4_scalar(const struct mr_fft_pass *ps, uint32_t nq, struct io io)
{
    uint32_t s = ps->s, m = ps->n / 4;
    const float *tw = ps->tw;
    size_t L = ps->tw_len;
    for (uint32_t p = 0; p < m; p++) {
        for (uint32_t q = 0; q < s; q++) {
            size_t j = (size_t)s * p + q, t = ps->expanded ? j : p;
            float ar = io.xr[j], ai = io.xi[j], br = io.xr[j + nq], bi = io.xi[j + nq];
            float cr = io.xr[j + 2 * nq], ci = io.xi[j + 2 * nq];
            float dr = io.xr[j + 3 * nq], di = io.xi[j + 3 * nq];
            float t0r = ar + cr, t0i = ai + ci, t1r = ar - cr, t1i = ai - ci;
            float t2r = br + dr, t2i = bi + di, t3r = br - dr, t3i = bi - di;
            float yr[4] = {t0r + t2r, t1r + t3i, t0r - t2r, t1r - t3i};
            float yi[4] = {t0i + t2i, t1i - t3r, t0i - t2i, t1i + t3r};
            size_t o = (size_t)s * 4 * p + q;
            io.yr[o] = yr[0];
            io.yi[o] = yi[0];
            for (int k = 1; k < 4; k++) {
                if (m == 1) { /* w = 1: skipped as the vector passes skip it (same bits) */
                    io.yr[o + (size_t)k * s] = yr[k];
                    io.yi[o + (size_t)k * s] = yi[k];
                    continue;
                }
                float wr = tw[(size_t)(2 * k - 2) * L + t], wi = tw[(size_t)(2 * k - 1) * L + t];
                io.yr[o + (size_t)k * s] = yr[k] * wr - yi[k] * wi;
                io.yi[o + (size_t)k * s] = yr[k] * wi + yi[k] * wr;
            }
        }
    }
}

/* d_j = x_j - x_j+4 and u_j = x_j + x_j+4 for one j (re and im). */
#define SPLIT8(j)                                                                                  \
    vf a##j##r = vload(xr + (j)*s), a##j##i = vload(xi + (j)*s);                                   \
    vf b##j##r = vload(xr + ((j) + 4) * s), b##j##i = vload(xi + ((j) + 4) * s);                   \
    vf u##j##r = a##j##r + b##j##r, u##j##i = a##j##i + b##j##i;                                   \
    vf d##j##r = a##j##r - b##j##r, d##j##i = a##j##i - b##j##i

/* 8-point DFT of x[j*s], j < 8, into y[k*s] (natural order): a radix-2 split by W8^j, then two
 * radix-4 butterflies. Straight-line code so that everything stays in registers. */
INLINE void dft8(const float *xr, const float *xi, float *yr, float *yi, size_t s)
{
    const vf r = vset1(0.707106781186547524f); /* sqrt(1/2) */
    SPLIT8(0);
    SPLIT8(1);
    SPLIT8(2);
    SPLIT8(3);
    /* v_j = d_j W8^j: W8 = (1 - i)/sqrt2, W8^2 = -i, W8^3 = -(1 + i)/sqrt2 */
    vf v1r = (d1r + d1i) * r, v1i = (d1i - d1r) * r;
    vf v3r = (d3i - d3r) * r, v3i = -((d3r + d3i) * r);
    struct b4 u = bfly4(u0r, u0i, u1r, u1i, u2r, u2i, u3r, u3i);
    vstore(yr, u.r0), vstore(yi, u.i0), vstore(yr + 2 * s, u.r1), vstore(yi + 2 * s, u.i1);
    vstore(yr + 4 * s, u.r2), vstore(yi + 4 * s, u.i2);
    vstore(yr + 6 * s, u.r3), vstore(yi + 6 * s, u.i3);
    struct b4 v = bfly4(d0r, d0i, v1r, v1i, d2i, -d2r, v3r, v3i);
    vstore(yr + s, v.r0), vstore(yi + s, v.i0), vstore(yr + 3 * s, v.r1), vstore(yi + 3 * s, v.i1);
    vstore(yr + 5 * s, v.r2), vstore(yi + 5 * s, v.i2);
    vstore(yr + 7 * s, v.r3), vstore(yi + 7 * s, v.i3);
}

/* Last pass when log2 N is odd: n = 8, s = N/8, no twiddles (p = 0 only): y[q + s*k] = DFT8 of
 * x[q + s*j]. Replaces a radix-4 and a radix-2 pass: one sweep over the data fewer. When s is
 * below the vector width the lanes go through a small zero-padded copy (same arithmetic), which
 * also makes the pass safe when x and y are the same arrays. */
static void pass8(uint32_t s, struct io io)
{
    if (s % VL == 0) {
        for (uint32_t q = 0; q < s; q += VL) {
            dft8(io.xr + q, io.xi + q, io.yr + q, io.yi + q, s);
        }
        return;
    }
    float tr[8 * VL] = {0}, ti[8 * VL] = {0};
    for (int j = 0; j < 8; j++) {
        memcpy(tr + j * VL, io.xr + (size_t)j * s, s * sizeof(float));
        memcpy(ti + j * VL, io.xi + (size_t)j * s, s * sizeof(float));
    }
    dft8(tr, ti, tr, ti, VL);
    for (int k = 0; k < 8; k++) {
        memcpy(io.yr + (size_t)k * s, tr + k * VL, s * sizeof(float));
        memcpy(io.yi + (size_t)k * s, ti + k * VL, s * sizeof(float));
    }
}

static void pass_run(const struct mr_fft_pass *ps, uint32_t N, struct io io)
{
    uint32_t nq = N / 4;
    if (ps->radix == 8) {
        pass8(ps->s, io);
    } else if (nq % VL != 0) {
        pass4_scalar(ps, nq, io);
    } else if (ps->s == 1) {
        pass_s1(ps, nq, io, 0);
    } else if (ps->s == 4 && ps->expanded) {
        pass_s4(ps, nq, io);
    } else if (ps->s % VL == 0) {
        pass_wide(ps, nq, io);
    } else {
        pass4_scalar(ps, nq, io);
    }
}

/* Runs all passes: input (split, or interleaved when xint is set, windowed by win when set) ->
 * out, through scratch. With two or more passes the first never writes `out`, so in == out
 * works; the one single-pass size (N = 8, radix 8 with s = 1) goes through pass8's copy. */
static void cpx_run(struct mr_fft_cpx *p, const float *xr, const float *xi, const float *xint,
                    const float *win, float *out_r, float *out_i)
{
    uint32_t N = p->m;
    float *bufs[2][2] = {{p->buf, p->buf + N}, {p->buf + 2 * (size_t)N, p->buf + 3 * (size_t)N}};
    const float *sr = xr, *si = xi;
    for (uint32_t t = 0; t < p->npasses; t++) {
        int last = t + 1 == p->npasses;
        float *dr = last ? out_r : bufs[t & 1][0];
        float *di = last ? out_i : bufs[t & 1][1];
        struct io io = {.xr = sr, .xi = si, .xint = NULL, .win = NULL, .yr = dr, .yi = di};
        const struct mr_fft_pass *ps = &p->pass[t];
        if (t == 0 && xint != NULL) {
            /* real_half passes xint only when N/4 % VL == 0 */
            io.xint = xint;
            io.win = win;
            if (win != NULL) {
                pass_s1(ps, N / 4, io, 2);
            } else {
                pass_s1(ps, N / 4, io, 1);
            }
        } else {
            pass_run(ps, N, io);
        }
        sr = dr;
        si = di;
    }
}

/* X_k from Z_k and R = Z_{h-k} (see the top of fft.c), with hw = w/2. */
INLINE void post_one(float zr, float zi, float rr, float ri, float hr, float hi, float *xr,
                     float *xi)
{
    float sr = zr + rr, dr = rr - zr, si = zi + ri, di = zi - ri;
    *xr = 0.5f * sr + hr * si - hi * dr;
    *xi = 0.5f * di + hr * dr + hi * si;
}

INLINE vf vreverse(vf v)
{
#if VL == 8
    return __builtin_shufflevector(v, v, 7, 6, 5, 4, 3, 2, 1, 0);
#else
    return __builtin_shufflevector(v, v, 3, 2, 1, 0);
#endif
}

/* X_k for k = 0..h from p->z; stores X (power == NULL) or adds |X_k|^2 to power[k]. */
INLINE void real_post(const struct mr_fft_real *p, float *restrict out_re, float *restrict out_im,
                      float *restrict power)
{
    uint32_t h = p->n / 2;
    const float *zr = p->z, *zi = p->z + h;
    const float *hr = p->post, *hi = p->post + h + 1;
    float x0 = zr[0] + zi[0], xh = zr[0] - zi[0];
    if (power != NULL) {
        power[0] += x0 * x0;
        power[h] += xh * xh;
    } else {
        out_re[0] = x0, out_im[0] = 0.0f;
        out_re[h] = xh, out_im[h] = 0.0f;
    }
    uint32_t k = 1;
    vf half = vset1(0.5f);
    for (; k + VL <= h; k += VL) {
        vf a = vload(zr + k), b = vload(zi + k);
        vf rr = vreverse(vload(zr + h - k - (VL - 1)));
        vf ri = vreverse(vload(zi + h - k - (VL - 1)));
        vf wr = vload(hr + k), wi = vload(hi + k);
        vf sr = a + rr, dr = rr - a, si = b + ri, di = b - ri;
        vf xr = half * sr + wr * si - wi * dr;
        vf xi = half * di + wr * dr + wi * si;
        if (power != NULL) {
            vstore(power + k, vload(power + k) + (xr * xr + xi * xi));
        } else {
            vstore(out_re + k, xr);
            vstore(out_im + k, xi);
        }
    }
    for (; k < h; k++) {
        float xr, xi;
        post_one(zr[k], zi[k], zr[h - k], zi[h - k], hr[k], hi[k], &xr, &xi);
        if (power != NULL) {
            power[k] += xr * xr + xi * xi;
        } else {
            out_re[k] = xr, out_im[k] = xi;
        }
    }
}

/* The half-size complex FFT of the (windowed) input into p->z. */
static void real_half(struct mr_fft_real *p, const float *in, const float *win)
{
    uint32_t h = p->n / 2;
    float *zr = p->z, *zi = p->z + h;
    if ((h / 4) % VL == 0) {
        cpx_run(&p->half, NULL, NULL, in, win, zr, zi);
        return;
    }
    /* tiny: de-interleave into z, then transform in place */
    for (uint32_t j = 0; j < h; j++) {
        zr[j] = win != NULL ? in[2 * j] * win[2 * j] : in[2 * j];
        zi[j] = win != NULL ? in[2 * j + 1] * win[2 * j + 1] : in[2 * j + 1];
    }
    cpx_run(&p->half, zr, zi, NULL, NULL, zr, zi);
}

void KFN(cpx_run)(struct mr_fft_cpx *p, const float *xr, const float *xi, float *out_r,
                  float *out_i)
{
    cpx_run(p, xr, xi, NULL, NULL, out_r, out_i);
}

void KFN(real_run)(struct mr_fft_real *p, const float *in, const float *win, float *out_re,
                   float *out_im, float *power)
{
    real_half(p, in, win);
    if (power != NULL) {
        real_post(p, NULL, NULL, power);
    } else {
        real_post(p, out_re, out_im, NULL);
    }
}
