/* mr_fft (src/analytics/fft.c): real and complex transforms against a naive double-precision DFT
 * for every power of two 16..8192 (relative L2 error <= 1e-5), special signals with known
 * spectra (impulse, DC, a tone on a bin), inverse(forward(x)) == m x up to 65536, the real
 * transform against the complex one, in-place and unaligned buffers, rejected sizes, allocation
 * failures, and bit-for-bit determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "analytics/fft.h"
#include "millrace/alloc.h"
#include "millrace/error.h"

#define NMAX   65536u
#define NAIVE  8192u /* largest size checked against the O(n^2) DFT */
#define REL_L2 1e-5

static uint64_t rng_state = 88172645463325252ull;
static float uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Scratch shared by the tests (static: too big for the stack). */
static float xr[NMAX + 8], xi[NMAX + 8], yr[NMAX + 8], yi[NMAX + 8], zr[NMAX + 8], zi[NMAX + 8];
static double dre[NAIVE], dim[NAIVE], cosv[NAIVE], sinv[NAIVE];

/* Naive DFT of (re, im) (im may be NULL: real input) in double into dre/dim. */
static void naive_dft(const float *re, const float *im, uint32_t n, int sign)
{
    for (uint32_t j = 0; j < n; j++) {
        cosv[j] = cos(2.0 * M_PI * j / n);
        sinv[j] = sign * sin(2.0 * M_PI * j / n);
    }
    for (uint32_t k = 0; k < n; k++) {
        double sr = 0, si = 0;
        uint32_t idx = 0;
        for (uint32_t j = 0; j < n; j++) {
            double a = re[j], b = im != NULL ? im[j] : 0.0;
            sr += a * cosv[idx] - b * sinv[idx];
            si += a * sinv[idx] + b * cosv[idx];
            idx = (idx + k) & (n - 1);
        }
        dre[k] = sr;
        dim[k] = si;
    }
}

/* Relative L2 error of (re, im)[0..count) against dre/dim. */
static double rel_l2(const float *re, const float *im, uint32_t count)
{
    double num = 0, den = 0;
    for (uint32_t k = 0; k < count; k++) {
        double a = re[k] - dre[k], b = im[k] - dim[k];
        num += a * a + b * b;
        den += dre[k] * dre[k] + dim[k] * dim[k];
    }
    return sqrt(num / den);
}

static void fill_random(float *x, uint32_t n)
{
    for (uint32_t j = 0; j < n; j++) {
        x[j] = uniform();
    }
}

static void test_real_vs_naive(void **state)
{
    (void)state;
    for (uint32_t n = MR_FFT_MIN; n <= NAIVE; n *= 2) {
        struct mr_fft_real f;
        assert_int_equal(mr_fft_real_init(&f, n), 0);
        fill_random(xr, n);
        mr_fft_real_forward(&f, xr, yr, yi);
        naive_dft(xr, NULL, n, -1);
        double e = rel_l2(yr, yi, n / 2 + 1);
        if (!(e <= REL_L2)) {
            fail_msg("real n=%u: relative L2 error %.3g", n, e);
        }
        assert_true(yi[0] == 0.0f && yi[n / 2] == 0.0f);
        mr_fft_real_fini(&f);
    }
}

static void test_complex_vs_naive(void **state)
{
    (void)state;
    for (uint32_t m = MR_FFT_MIN; m <= NAIVE; m *= 2) {
        struct mr_fft_cpx f;
        assert_int_equal(mr_fft_cpx_init(&f, m), 0);
        fill_random(xr, m);
        fill_random(xi, m);
        for (int sign = -1; sign <= 1; sign += 2) {
            if (sign < 0) {
                mr_fft_cpx_forward(&f, xr, xi, yr, yi);
            } else {
                mr_fft_cpx_inverse(&f, xr, xi, yr, yi);
            }
            naive_dft(xr, xi, m, sign);
            double e = rel_l2(yr, yi, m);
            if (!(e <= REL_L2)) {
                fail_msg("complex m=%u sign=%d: relative L2 error %.3g", m, sign, e);
            }
        }
        mr_fft_cpx_fini(&f);
    }
}

/* Impulse at j0: X_k = e^{-2 pi i j0 k/n}; DC c: X_0 = n c, rest 0; cos on bin k0: X_k0 = n/2. */
static void test_special_signals(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {16, 64, 1024, 4096, 65536};
    for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        uint32_t n = sizes[t], h = n / 2, j0 = 3, k0 = n / 8 + 1;
        struct mr_fft_real f;
        assert_int_equal(mr_fft_real_init(&f, n), 0);

        memset(xr, 0, n * sizeof(float));
        xr[j0] = 1.0f;
        mr_fft_real_forward(&f, xr, yr, yi);
        for (uint32_t k = 0; k <= h; k++) {
            double a = -2.0 * M_PI * (double)((uint64_t)j0 * k % n) / n;
            if (fabs(yr[k] - cos(a)) > 1e-5 || fabs(yi[k] - sin(a)) > 1e-5) {
                fail_msg("impulse n=%u bin %u: %g%+gi, want %g%+gi", n, k, yr[k], yi[k], cos(a),
                         sin(a));
            }
        }

        for (uint32_t j = 0; j < n; j++) {
            xr[j] = 0.25f;
        }
        mr_fft_real_forward(&f, xr, yr, yi);
        assert_true(fabs(yr[0] - 0.25 * n) <= 1e-6 * n);
        for (uint32_t k = 1; k <= h; k++) {
            assert_true(fabs(yr[k]) <= 1e-6 * n && fabs(yi[k]) <= 1e-6 * n);
        }

        for (uint32_t j = 0; j < n; j++) {
            xr[j] = (float)cos(2.0 * M_PI * (double)((uint64_t)k0 * j % n) / n);
        }
        mr_fft_real_forward(&f, xr, yr, yi);
        for (uint32_t k = 0; k <= h; k++) {
            double want = k == k0 ? n / 2.0 : 0.0;
            if (fabs(yr[k] - want) > 2e-6 * n || fabs(yi[k]) > 2e-6 * n) {
                fail_msg("tone n=%u bin %u: %g%+gi, want %g", n, k, yr[k], yi[k], want);
            }
        }
        mr_fft_real_fini(&f);
    }
}

/* inverse(forward(x)) == m x for every size; also in place (in == out). */
static void test_roundtrip(void **state)
{
    (void)state;
    for (uint32_t m = MR_FFT_MIN; m <= NMAX; m *= 2) {
        struct mr_fft_cpx f;
        assert_int_equal(mr_fft_cpx_init(&f, m), 0);
        fill_random(xr, m);
        fill_random(xi, m);
        memcpy(zr, xr, m * sizeof(float));
        memcpy(zi, xi, m * sizeof(float));
        mr_fft_cpx_forward(&f, zr, zi, zr, zi); /* in place */
        mr_fft_cpx_inverse(&f, zr, zi, yr, yi);
        double num = 0, den = 0;
        for (uint32_t j = 0; j < m; j++) {
            double a = yr[j] - (double)m * xr[j], b = yi[j] - (double)m * xi[j];
            num += a * a + b * b;
            den += (double)m * m * ((double)xr[j] * xr[j] + (double)xi[j] * xi[j]);
        }
        if (!(sqrt(num / den) <= REL_L2)) {
            fail_msg("roundtrip m=%u: relative L2 error %.3g", m, sqrt(num / den));
        }
        mr_fft_cpx_fini(&f);
    }
}

/* The real transform of x equals the complex transform of (x, 0) on bins 0..n/2, all sizes. The
 * input is read at an odd offset to check unaligned buffers. */
static void test_real_vs_complex(void **state)
{
    (void)state;
    for (uint32_t n = MR_FFT_MIN; n <= NMAX; n *= 2) {
        struct mr_fft_real fr;
        struct mr_fft_cpx fc;
        assert_int_equal(mr_fft_real_init(&fr, n), 0);
        assert_int_equal(mr_fft_cpx_init(&fc, n), 0);
        fill_random(xr + 1, n);
        memset(xi, 0, n * sizeof(float));
        mr_fft_real_forward(&fr, xr + 1, yr + 3, yi + 3);
        mr_fft_cpx_forward(&fc, xr + 1, xi, zr, zi);
        double num = 0, den = 0;
        for (uint32_t k = 0; k <= n / 2; k++) {
            double a = yr[k + 3] - zr[k], b = yi[k + 3] - zi[k];
            num += a * a + b * b;
            den += (double)zr[k] * zr[k] + (double)zi[k] * zi[k];
        }
        if (!(sqrt(num / den) <= REL_L2)) {
            fail_msg("real vs complex n=%u: relative L2 error %.3g", n, sqrt(num / den));
        }
        mr_fft_real_fini(&fr);
        mr_fft_cpx_fini(&fc);
    }
}

static void test_bad_sizes(void **state)
{
    (void)state;
    static const uint32_t bad[] = {0, 1, 2, 8, 15, 17, 24, 1000, 65535, 131072, 0x80000000u};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mr_fft_real fr;
        struct mr_fft_cpx fc;
        assert_int_equal(mr_fft_real_init(&fr, bad[i]), MR_EINVAL);
        assert_int_equal(mr_fft_cpx_init(&fc, bad[i]), MR_EINVAL);
        mr_fft_real_fini(&fr); /* safe after a failed init */
        mr_fft_cpx_fini(&fc);
    }
    mr_fft_real_fini(NULL);
    mr_fft_cpx_fini(NULL);
}

/* Every allocation failure is reported as MR_ENOMEM and leaks nothing (ASan checks leaks). */
static void test_alloc_failure(void **state)
{
    (void)state;
    for (long after = 0; after < 2; after++) {
        struct mr_fft_real fr;
        mr_alloc_fail_after(after);
        assert_int_equal(mr_fft_real_init(&fr, 1024), MR_ENOMEM);
        mr_fft_real_fini(&fr);
    }
    struct mr_fft_cpx fc;
    mr_alloc_fail_after(0);
    assert_int_equal(mr_fft_cpx_init(&fc, 1024), MR_ENOMEM);
    mr_alloc_fail_after(-1);
    mr_fft_cpx_fini(&fc);
    struct mr_fft_real fr;
    assert_int_equal(mr_fft_real_init(&fr, 1024), 0);
    mr_fft_real_fini(&fr);
    mr_fft_real_fini(&fr); /* twice is fine */
}

/* Same input, same bits: repeated on one plan and on a fresh plan. */
static void test_determinism(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {16, 256, 1024, 2048, 4096, 32768};
    for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        uint32_t n = sizes[t];
        struct mr_fft_real a, b;
        assert_int_equal(mr_fft_real_init(&a, n), 0);
        assert_int_equal(mr_fft_real_init(&b, n), 0);
        fill_random(xr, n);
        mr_fft_real_forward(&a, xr, yr, yi);
        mr_fft_real_forward(&a, xr, zr, zi);
        assert_memory_equal(yr, zr, (n / 2 + 1) * sizeof(float));
        assert_memory_equal(yi, zi, (n / 2 + 1) * sizeof(float));
        mr_fft_real_forward(&b, xr, zr, zi);
        assert_memory_equal(yr, zr, (n / 2 + 1) * sizeof(float));
        assert_memory_equal(yi, zi, (n / 2 + 1) * sizeof(float));
        mr_fft_real_fini(&a);
        mr_fft_real_fini(&b);
    }
}

/* mr_fft_real_power_add == window loop + mr_fft_real_forward + power loop, bit for bit, with
 * and without a window, tiny sizes (scalar path) included; power accumulates across calls. */
static void test_power_add(void **state)
{
    (void)state;
    static float win[NMAX], pa[NMAX / 2 + 1], pb[NMAX / 2 + 1];
    for (uint32_t n = MR_FFT_MIN; n <= 8192; n *= 2) {
        struct mr_fft_real f;
        assert_int_equal(mr_fft_real_init(&f, n), 0);
        for (uint32_t j = 0; j < n; j++) {
            win[j] = (float)(0.5 - 0.5 * cos(2 * M_PI * j / n));
        }
        for (int windowed = 0; windowed < 2; windowed++) {
            memset(pa, 0, sizeof(pa));
            memset(pb, 0, sizeof(pb));
            for (int seg = 0; seg < 3; seg++) {
                fill_random(xr, n);
                mr_fft_real_power_add(&f, xr, windowed ? win : NULL, pa);
                for (uint32_t j = 0; j < n; j++) {
                    zr[j] = windowed ? xr[j] * win[j] : xr[j];
                }
                mr_fft_real_forward(&f, zr, yr, yi);
                for (uint32_t k = 0; k <= n / 2; k++) {
                    pb[k] += yr[k] * yr[k] + yi[k] * yi[k];
                }
            }
            assert_memory_equal(pa, pb, (n / 2 + 1) * sizeof(float));
        }
        mr_fft_real_fini(&f);
    }
}

/* The baseline (4-lane) and AVX2 (8-lane) kernels give the same bits; when this CPU has no
 * AVX2 both plans run the baseline and the test still checks run-to-run identity. */
static void test_kernel_sets_agree(void **state)
{
    (void)state;
    for (uint32_t n = MR_FFT_MIN; n <= NMAX; n *= 2) {
        struct mr_fft_real a, b;
        struct mr_fft_cpx c, d;
        assert_int_equal(mr_fft_real_init(&a, n), 0);
        assert_int_equal(mr_fft_real_init(&b, n), 0);
        assert_int_equal(mr_fft_cpx_init(&c, n), 0);
        assert_int_equal(mr_fft_cpx_init(&d, n), 0);
        b.half.isa = MR_FFT_ISA_BASE;
        d.isa = MR_FFT_ISA_BASE;
        fill_random(xr, n);
        fill_random(xi, n);
        mr_fft_real_forward(&a, xr, yr, yi);
        mr_fft_real_forward(&b, xr, zr, zi);
        assert_memory_equal(yr, zr, (n / 2 + 1) * sizeof(float));
        assert_memory_equal(yi, zi, (n / 2 + 1) * sizeof(float));
        mr_fft_cpx_inverse(&c, xr, xi, yr, yi);
        mr_fft_cpx_inverse(&d, xr, xi, zr, zi);
        assert_memory_equal(yr, zr, n * sizeof(float));
        assert_memory_equal(yi, zi, n * sizeof(float));
        mr_fft_real_fini(&a);
        mr_fft_real_fini(&b);
        mr_fft_cpx_fini(&c);
        mr_fft_cpx_fini(&d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_vs_naive),   cmocka_unit_test(test_complex_vs_naive),
        cmocka_unit_test(test_special_signals), cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_real_vs_complex), cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_alloc_failure),   cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_power_add),       cmocka_unit_test(test_kernel_sets_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
