/* The FFT kernels again, 8 lanes wide, compiled for AVX2 whatever the build's flags, so that a
 * portable (SSE2) build runs at AVX speed on CPUs that have it (fft.c picks the set at plan
 * init with __builtin_cpu_supports). Only float add/sub/mul and shuffles: no FMA, so the bits
 * are those of the baseline kernels. Empty on other targets and when the whole build already
 * targets AVX (the baseline set is then 8 lanes wide itself). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "analytics/fft_internal.h"

#if defined(MR_FFT_HAVE_AVX2)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2")
#endif

#define VL 8
typedef float vf __attribute__((vector_size(32)));
#define KFN(name) mr_fft_avx2_##name
#include "analytics/fft_kernels.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else
typedef int mr_fft_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
