/* Window aggregates (src/engine/aggregate.c) against naive references and published values:
 *  - every aggregate on random data of several shapes, added one by one, as f32 blocks and as
 *    merged parts (the panes of hopping windows), against a long double two-pass reference;
 *  - NIST StRD univariate summary statistics (all files in tests/data/nist_strd_univariate,
 *    a copy of ../shared/datasets, or $MR_DATASETS): certified mean and sample standard deviation;
 *  - the percentile sketch: exact up to MR_QSKETCH_CAP samples, rank error bounds beyond;
 *  - non-finite samples are skipped, undefined results say so, checkpoints round-trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/aggregate.h"
#include "millrace/error.h"
#include "millrace/state.h"

#define ALL_KINDS ((1u << MR_AGG_KINDS) - 1)

/* ---- random data ---- */

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_normal(void)
{
    double u = rng_unit();
    double v = rng_unit();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}

enum shape {
    UNIFORM,
    NORMAL,
    EXPONENTIAL,
    INTEGERS,
    CONSTANT,
    OFFSET,
    BIMODAL,
    RAMP_UP,
    RAMP_DOWN
};

static double ramp;

static double draw(enum shape s)
{
    switch (s) {
    case UNIFORM:
        return rng_unit() * 10.0 - 5.0;
    case NORMAL:
        return 20.0 + 3.0 * rng_normal();
    case EXPONENTIAL:
        return -log(1.0 - rng_unit()) * 2.0;
    case INTEGERS:
        return (double)(rng_next() % 1000);
    case CONSTANT:
        return 42.5;
    case OFFSET:
        return 1e9 + rng_unit();
    case BIMODAL:
        return rng_unit() < 0.7 ? 10.0 + rng_normal() : 50.0 + 5.0 * rng_normal();
    case RAMP_UP: /* a warming machine: sorted input is the hard case for sketches */
        return ramp += 0.01;
    case RAMP_DOWN:
        return ramp -= 0.01;
    }
    return 0;
}

/* ---- reference ---- */

struct ref {
    size_t n;
    double sum, mean, min, max, var, first, last, rate, rms;
    bool var_ok, rate_ok;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

/* The linear ("numpy default") percentile of sorted data. */
static double exact_quantile(const double *sorted, size_t n, double q)
{
    double h = q * (double)(n - 1);
    size_t lo = (size_t)floor(h);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (h - (double)lo) * (sorted[hi] - sorted[lo]);
}

/* Distance between q and the range of ranks v takes in sorted data. */
static double rank_error(const double *sorted, size_t n, double v, double q)
{
    size_t below = 0;
    size_t upto = 0;
    while (below < n && sorted[below] < v) {
        below++;
    }
    upto = below;
    while (upto < n && sorted[upto] <= v) {
        upto++;
    }
    double lo = (double)below / (double)n;
    double hi = (double)upto / (double)n;
    return q < lo ? lo - q : (q > hi ? q - hi : 0.0);
}

/* Neumaier's compensated sum, so the reference does not depend on long double (valgrind runs
 * long double at double precision). */
struct ksum {
    double s, c;
};

static void ksum_add(struct ksum *k, double x)
{
    double t = k->s + x;
    k->c += fabs(k->s) >= fabs(x) ? (k->s - t) + x : (x - t) + k->s;
    k->s = t;
}

/* Corrected two-pass on compensated sums (Chan, Golub, LeVeque 1983): relative error of a few
 * ulps whatever the offset. Times t[i] for first/last/rate. */
static struct ref reference(const double *x, const int64_t *t, size_t n)
{
    struct ref r = {.n = n, .min = INFINITY, .max = -INFINITY};
    struct ksum sum = {0, 0};
    struct ksum sq = {0, 0};
    size_t ifirst = 0;
    size_t ilast = 0;
    for (size_t i = 0; i < n; i++) {
        ksum_add(&sum, x[i]);
        ksum_add(&sq, x[i] * x[i]);
        r.min = x[i] < r.min ? x[i] : r.min;
        r.max = x[i] > r.max ? x[i] : r.max;
        ifirst = t[i] < t[ifirst] ? i : ifirst;
        ilast = t[i] >= t[ilast] ? i : ilast;
    }
    double mean = (sum.s + sum.c) / (double)n;
    struct ksum d1 = {0, 0};
    struct ksum d2 = {0, 0};
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - mean;
        ksum_add(&d1, d);
        ksum_add(&d2, d * d);
    }
    double s1 = d1.s + d1.c;
    double m2 = (d2.s + d2.c) - s1 * s1 / (double)n;
    r.sum = sum.s + sum.c;
    r.mean = mean + s1 / (double)n;
    r.var_ok = n > 1;
    r.var = n > 1 ? m2 / (double)(n - 1) : 0;
    r.first = x[ifirst];
    r.last = x[ilast];
    r.rate_ok = t[ilast] > t[ifirst];
    r.rate = r.rate_ok ? (r.last - r.first) / ((double)(t[ilast] - t[ifirst]) * 1e-9) : 0;
    r.rms = sqrt((sq.s + sq.c) / (double)n);
    return r;
}

static void assert_close(double got, double want, double rel, double abs_tol, const char *what)
{
    double err = fabs(got - want);
    if (err > abs_tol && err > rel * fabs(want)) {
        fail_msg("%s: got %.17g, want %.17g (error %.3g)", what, got, want, err);
    }
}

/* Check every non-percentile aggregate of st against the reference. */
static void check_state(const struct mr_agg_layout *l, void *st, const struct ref *r,
                        const char *label)
{
    double v;
    double scale = fmax(fabs(r->min), fabs(r->max));
    char what[96];
    assert_int_equal(mr_agg_count(st), r->n);
    static const enum mr_agg_kind kinds[] = {
        MR_AGG_SUM,   MR_AGG_MEAN, MR_AGG_MIN,  MR_AGG_MAX, MR_AGG_VARIANCE, MR_AGG_STDDEV,
        MR_AGG_FIRST, MR_AGG_LAST, MR_AGG_RATE, MR_AGG_RMS, MR_AGG_COUNT};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        enum mr_agg_kind k = kinds[i];
        snprintf(what, sizeof(what), "%s %s", label, mr_agg_name(k));
        int rc = mr_agg_result(l, st, k, &v);
        if ((k == MR_AGG_VARIANCE || k == MR_AGG_STDDEV) && !r->var_ok) {
            assert_int_equal(rc, MR_ERANGE);
            continue;
        }
        if (k == MR_AGG_RATE && !r->rate_ok) {
            assert_int_equal(rc, MR_ERANGE);
            continue;
        }
        assert_int_equal(rc, 0);
        switch (k) {
        case MR_AGG_SUM:
            assert_close(v, r->sum, 1e-12, 1e-9 * scale, what);
            break;
        case MR_AGG_MEAN:
            assert_close(v, r->mean, 1e-13, 1e-12 * scale, what);
            break;
        case MR_AGG_MIN:
            assert_true(v == r->min);
            break;
        case MR_AGG_MAX:
            assert_true(v == r->max);
            break;
        case MR_AGG_VARIANCE:
            assert_close(v, r->var, 1e-12, 1e-20, what);
            break;
        case MR_AGG_STDDEV:
            assert_close(v, sqrt(r->var), 1e-12, 1e-12, what);
            break;
        case MR_AGG_FIRST:
            assert_true(v == r->first);
            break;
        case MR_AGG_LAST:
            assert_true(v == r->last);
            break;
        case MR_AGG_RATE:
            assert_close(v, r->rate, 1e-12, 1e-12, what);
            break;
        case MR_AGG_RMS:
            assert_close(v, r->rms, 1e-12, 1e-300, what);
            break;
        case MR_AGG_COUNT:
            assert_true(v == (double)r->n);
            break;
        default:
            break;
        }
    }
}

static void *state_new(const struct mr_agg_layout *l)
{
    void *st = calloc(1, l->size);
    assert_non_null(st);
    mr_agg_reset(l, st);
    return st;
}

/* Every aggregate, three ways (one by one, f32 blocks, merged parts), per shape and size. */
static void test_aggregates_match_reference(void **state)
{
    (void)state;
    static const struct {
        enum shape shape;
        size_t n;
    } cases[] = {
        {UNIFORM, 1},     {UNIFORM, 2},    {UNIFORM, 1000}, {NORMAL, 5000},  {EXPONENTIAL, 777},
        {INTEGERS, 3000}, {CONSTANT, 300}, {OFFSET, 2000},  {BIMODAL, 4096},
    };
    struct mr_agg_layout l;
    mr_agg_layout_init(&l, ALL_KINDS);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t n = cases[c].n;
        double *x = calloc(n, sizeof(double));
        float *xf = calloc(n, sizeof(float));
        double *xd = calloc(n, sizeof(double)); /* the f32 values, widened */
        int64_t *t = calloc(n, sizeof(int64_t));
        for (size_t i = 0; i < n; i++) {
            x[i] = draw(cases[c].shape);
            xf[i] = (float)x[i];
            xd[i] = xf[i];
            t[i] = 1000000000ll + (int64_t)(rng_next() % 100000) * 1000; /* out of order */
        }
        struct ref r = reference(x, t, n);
        char label[64];
        snprintf(label, sizeof(label), "case %zu (n=%zu) one by one", c, n);
        void *st = state_new(&l);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(mr_agg_add(&l, st, x[i], t[i]), 1);
        }
        check_state(&l, st, &r, label);

        /* Merged from random parts, in time order of the parts (as panes are). */
        void *parts[5];
        for (int p = 0; p < 5; p++) {
            parts[p] = state_new(&l);
        }
        for (size_t i = 0; i < n; i++) {
            mr_agg_add(&l, parts[(t[i] / 1000) % 5], x[i], t[i]);
        }
        void *merged = state_new(&l);
        for (int p = 0; p < 5; p++) {
            mr_agg_merge(&l, merged, parts[p]);
            free(parts[p]);
        }
        snprintf(label, sizeof(label), "case %zu (n=%zu) merged", c, n);
        check_state(&l, merged, &r, label);

        /* A block of f32 samples all at one time: first/last are its first and last sample. */
        int64_t *same = calloc(n, sizeof(int64_t));
        for (size_t i = 0; i < n; i++) {
            same[i] = 5;
        }
        struct ref rb = reference(xd, same, n);
        rb.first = xd[0];
        rb.last = xd[n - 1];
        void *blk = state_new(&l);
        size_t half = n / 3;
        assert_int_equal(mr_agg_add_block(&l, blk, xf, (uint32_t)half, 5), half);
        assert_int_equal(mr_agg_add_block(&l, blk, xf + half, (uint32_t)(n - half), 5), n - half);
        snprintf(label, sizeof(label), "case %zu (n=%zu) blocks", c, n);
        check_state(&l, blk, &rb, label);

        free(st);
        free(merged);
        free(blk);
        free(x);
        free(xf);
        free(xd);
        free(t);
        free(same);
    }
}

/* ---- NIST StRD ---- */

struct nist {
    char name[64];
    double mean, sd;
    double *y;
    size_t n;
};

static double last_number(const char *line)
{
    const char *colon = strrchr(line, ':');
    return strtod(colon != NULL ? colon + 1 : line, NULL);
}

static bool nist_load(const char *path, struct nist *out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    char line[256];
    bool in_data = false;
    size_t cap = 0;
    out->n = 0;
    out->y = NULL;
    long data_at = -1;
    /* Data follow the last line starting with "---": find it first. */
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *p = line + strspn(line, " \t");
        if (strncmp(p, "---", 3) == 0) {
            data_at = ftell(f);
        }
        if (strstr(line, "Sample Mean") != NULL) {
            out->mean = last_number(line);
        } else if (strstr(line, "Sample Standard Deviation") != NULL) {
            out->sd = last_number(line);
        }
    }
    if (data_at >= 0 && fseek(f, data_at, SEEK_SET) == 0) {
        in_data = true;
    }
    while (in_data && fgets(line, sizeof(line), f) != NULL) {
        char *end;
        double v = strtod(line, &end);
        if (end == line) {
            continue;
        }
        if (out->n == cap) {
            cap = cap != 0 ? cap * 2 : 256;
            out->y = realloc(out->y, cap * sizeof(double));
        }
        out->y[out->n++] = v;
    }
    fclose(f);
    return out->n > 0 && out->sd > 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct nist *)a)->name, ((const struct nist *)b)->name);
}

static size_t nist_all(struct nist *sets, size_t cap)
{
    /* The files are public domain (NIST) and small, so a copy travels with the tests
     * (tests/data, see its SOURCE.md); MR_DATASETS points at another copy. */
    char dir[512];
    const char *env = getenv("MR_DATASETS");
    snprintf(dir, sizeof(dir), "%s/nist_strd_univariate",
             env != NULL && env[0] != '\0' ? env : "tests/data");
    DIR *d = opendir(dir);
    if (d == NULL) {
        fail_msg("NIST StRD data not found in %s (set MR_DATASETS)", dir);
    }
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < cap) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".dat") != 0) {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        snprintf(sets[n].name, sizeof(sets[n].name), "%.63s", e->d_name);
        if (!nist_load(path, &sets[n])) {
            fail_msg("%s: no certified values or data", path);
        }
        n++;
    }
    closedir(d);
    qsort(sets, n, sizeof(sets[0]), name_cmp);
    return n;
}

/* Certified mean and sample standard deviation of every StRD univariate set, one by one and
 * through merged parts (as hopping panes are).
 *
 * Tolerance: the files give decimal data, and each value's nearest double differs from it by
 * up to half an ulp, which can move the standard deviation by up to max|dx| (a standard
 * deviation is 1-Lipschitz in the max norm, times sqrt(n/(n-1))). For NumAcc4 (1e7 + 0.1k)
 * that is 9.3e-10 of 0.1, i.e. 9.3e-9 relative: no algorithm on doubles can promise better
 * against the certified 0.1 (the exact statistic of the doubles is 0.1000000006). So each set
 * is held to that bound plus 1e-12 against the certified values, and to 1e-12 relative against
 * the exact statistic of the same doubles (a compensated, corrected two-pass): Welford on samples
 * shifted by the first one gets ~1e-15 there, where the naive one-pass formula returns a negative
 * variance (checked below) and unshifted Welford is off by ~1e-12 on NumAcc4. */
static void test_nist_strd_certified_values(void **state)
{
    (void)state;
    struct nist sets[16];
    size_t nsets = nist_all(sets, 16);
    assert_true(nsets >= 8); /* Lew, Lottery, Mavro, Michelso, NumAcc1-4 */
    struct mr_agg_layout l;
    mr_agg_layout_init(&l, (1u << MR_AGG_MEAN) | (1u << MR_AGG_STDDEV));
    for (size_t s = 0; s < nsets; s++) {
        const struct nist *d = &sets[s];
        double max_ulp = 0;
        int64_t *t = calloc(d->n, sizeof(int64_t));
        for (size_t i = 0; i < d->n; i++) {
            double u = nextafter(fabs(d->y[i]), INFINITY) - fabs(d->y[i]);
            max_ulp = u > max_ulp ? u : max_ulp;
            t[i] = (int64_t)i;
        }
        struct ref r = reference(d->y, t, d->n);
        double repr = max_ulp / 2.0 * sqrt((double)d->n / (double)(d->n - 1)) / d->sd;
        void *one = state_new(&l);
        void *merged = state_new(&l);
        void *part = state_new(&l);
        for (size_t i = 0; i < d->n; i++) {
            mr_agg_add(&l, one, d->y[i], t[i]);
            mr_agg_add(&l, part, d->y[i], t[i]);
            if (i % 37 == 36 || i + 1 == d->n) {
                mr_agg_merge(&l, merged, part);
                mr_agg_reset(&l, part);
            }
        }
        void *states[2] = {one, merged};
        for (int k = 0; k < 2; k++) {
            double mean;
            double sd;
            assert_int_equal(mr_agg_result(&l, states[k], MR_AGG_MEAN, &mean), 0);
            assert_int_equal(mr_agg_result(&l, states[k], MR_AGG_STDDEV, &sd), 0);
            char what[96];
            snprintf(what, sizeof(what), "%.40s %s mean", d->name, k == 0 ? "welford" : "merged");
            assert_close(mean, d->mean, 1e-14, 0, what);
            snprintf(what, sizeof(what), "%.40s %s stddev vs certified", d->name,
                     k == 0 ? "welford" : "merged");
            assert_close(sd, d->sd, repr * 1.01 + 1e-12, 0, what);
            snprintf(what, sizeof(what), "%.40s %s stddev vs exact of the doubles", d->name,
                     k == 0 ? "welford" : "merged");
            assert_close(sd, sqrt(r.var), 1e-12, 0, what);
            print_message("%-12s n=%4zu mean rel %.1e  sd rel %.1e (bound %.1e)  vs doubles "
                          "%.1e\n",
                          d->name, d->n, fabs(mean - d->mean) / fabs(d->mean),
                          fabs(sd - d->sd) / d->sd, repr, fabs(sd - sqrt(r.var)) / sqrt(r.var));
        }
        /* The naive formula really fails where it should. */
        if (strcmp(d->name, "NumAcc4.dat") == 0) {
            double s1 = 0;
            double s2 = 0;
            for (size_t i = 0; i < d->n; i++) {
                s1 += d->y[i];
                s2 += d->y[i] * d->y[i];
            }
            double naive = (s2 - s1 * s1 / (double)d->n) / (double)(d->n - 1);
            assert_true(fabs(naive - 0.01) > 0.1);
        }
        free(one);
        free(merged);
        free(part);
        free(t);
        free(sets[s].y);
    }
}

/* ---- percentiles ---- */

static void test_sketch_exact_up_to_cap(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 10, 99, MR_QSKETCH_CAP};
    static const double qs[] = {0.0, 0.01, 0.25, 0.5, 0.95, 0.99, 1.0};
    struct mr_qsketch *s = malloc(sizeof(*s));
    double x[MR_QSKETCH_CAP];
    for (size_t c = 0; c < sizeof(sizes) / sizeof(sizes[0]); c++) {
        mr_qsketch_reset(s);
        assert_true(isnan(mr_qsketch_quantile(s, 0.5)));
        for (size_t i = 0; i < sizes[c]; i++) {
            x[i] = draw(EXPONENTIAL);
            mr_qsketch_add(s, x[i]);
        }
        qsort(x, sizes[c], sizeof(double), cmp_double);
        for (size_t q = 0; q < sizeof(qs) / sizeof(qs[0]); q++) {
            double want = exact_quantile(x, sizes[c], qs[q]);
            assert_close(mr_qsketch_quantile(s, qs[q]), want, 1e-12, 1e-12, "exact percentile");
        }
    }
    free(s);
}

/* Rank error of p50/p95/p99 on large inputs, single sketch and merged from panes; the bounds
 * are the ones aggregate.h promises (measured errors are printed). */
static void test_sketch_rank_error(void **state)
{
    (void)state;
    static const enum shape shapes[] = {UNIFORM,  NORMAL,  EXPONENTIAL, BIMODAL,
                                        INTEGERS, RAMP_UP, RAMP_DOWN};
    static const double qs[] = {0.5, 0.95, 0.99};
    static const double bound[] = {0.015, 0.0075, 0.005};
    enum { N = 20000, PANES = 7 };
    double *x = malloc(N * sizeof(double));
    struct mr_qsketch *one = malloc(sizeof(*one));
    struct mr_qsketch *merged = malloc(sizeof(*merged));
    struct mr_qsketch *pane = malloc(sizeof(*pane));
    for (size_t sh = 0; sh < sizeof(shapes) / sizeof(shapes[0]); sh++) {
        mr_qsketch_reset(one);
        mr_qsketch_reset(merged);
        for (int p = 0; p < PANES; p++) {
            mr_qsketch_reset(pane);
            for (size_t i = (size_t)p * N / PANES; i < (size_t)(p + 1) * N / PANES; i++) {
                x[i] = draw(shapes[sh]);
                mr_qsketch_add(one, x[i]);
                mr_qsketch_add(pane, x[i]);
            }
            mr_qsketch_merge(merged, pane);
        }
        assert_true(one->n <= MR_QSKETCH_CAP);
        qsort(x, N, sizeof(double), cmp_double);
        for (size_t q = 0; q < 3; q++) {
            double e1 = rank_error(x, N, mr_qsketch_quantile(one, qs[q]), qs[q]);
            double e2 = rank_error(x, N, mr_qsketch_quantile(merged, qs[q]), qs[q]);
            print_message("shape %zu p%g: rank error %.4f single, %.4f merged\n", sh, qs[q] * 100,
                          e1, e2);
            assert_true(e1 <= bound[q]);
            assert_true(e2 <= bound[q]);
        }
        assert_true(mr_qsketch_quantile(one, 0.0) == x[0]);
        assert_true(mr_qsketch_quantile(one, 1.0) == x[N - 1]);
    }
    free(x);
    free(one);
    free(merged);
    free(pane);
}

/* ---- edges ---- */

static void test_non_finite_skipped_and_undefined_results(void **state)
{
    (void)state;
    struct mr_agg_layout l;
    mr_agg_layout_init(&l, ALL_KINDS);
    void *st = state_new(&l);
    double v;
    for (int k = MR_AGG_SUM + 1; k < MR_AGG_KINDS; k++) {
        assert_int_equal(mr_agg_result(&l, st, (enum mr_agg_kind)k, &v), MR_ERANGE);
    }
    assert_int_equal(mr_agg_result(&l, st, MR_AGG_COUNT, &v), 0);
    assert_true(v == 0);
    assert_int_equal(mr_agg_add(&l, st, NAN, 1), 0);
    assert_int_equal(mr_agg_add(&l, st, INFINITY, 1), 0);
    assert_int_equal(mr_agg_add(&l, st, 3.0, 7), 1);
    float blk[4] = {1.0f, NAN, -INFINITY, 5.0f};
    assert_int_equal(mr_agg_add_block(&l, st, blk, 4, 7), 2);
    assert_int_equal(mr_agg_count(st), 3);
    assert_int_equal(mr_agg_result(&l, st, MR_AGG_MEAN, &v), 0);
    assert_true(v == 3.0);
    assert_int_equal(mr_agg_result(&l, st, MR_AGG_RATE, &v), MR_ERANGE); /* all at t=7 */
    assert_int_equal(mr_agg_result(&l, st, MR_AGG_FIRST, &v), 0);
    assert_true(v == 3.0);
    assert_int_equal(mr_agg_result(&l, st, MR_AGG_LAST, &v), 0);
    assert_true(v == 5.0); /* ties go to the latest to arrive, and a block's last sample */
    void *one = state_new(&l);
    mr_agg_add(&l, one, 2.0, 1);
    assert_int_equal(mr_agg_result(&l, one, MR_AGG_STDDEV, &v), MR_ERANGE);
    assert_int_equal(mr_agg_result(&l, one, MR_AGG_P99, &v), 0);
    assert_true(v == 2.0);
    free(st);
    free(one);
}

static void test_layout_sizes(void **state)
{
    (void)state;
    struct mr_agg_layout l;
    mr_agg_layout_init(&l, (1u << MR_AGG_COUNT) | (1u << MR_AGG_SUM) | (1u << MR_AGG_MIN) |
                               (1u << MR_AGG_MAX) | (1u << MR_AGG_MEAN));
    assert_int_equal(l.size, 40); /* count, sum, mean, min, max */
    mr_agg_layout_init(&l, 1u << MR_AGG_COUNT);
    assert_int_equal(l.size, 8);
    mr_agg_layout_init(&l, 1u << MR_AGG_RATE);
    assert_int_equal(l.size, 8 + 32);
    mr_agg_layout_init(&l, 1u << MR_AGG_P95);
    assert_int_equal(l.size, 8 + sizeof(struct mr_qsketch));
    enum mr_agg_kind k;
    for (int i = 0; i < MR_AGG_KINDS; i++) {
        assert_int_equal(mr_agg_parse(mr_agg_name((enum mr_agg_kind)i), &k), 0);
        assert_int_equal(k, i);
        assert_non_null(strstr(mr_agg_names_list(), mr_agg_name((enum mr_agg_kind)i)));
    }
    assert_int_equal(mr_agg_parse("p90", &k), MR_EINVAL);
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    struct mr_agg_layout l;
    mr_agg_layout_init(&l, ALL_KINDS);
    void *a = state_new(&l);
    void *b = state_new(&l);
    for (int i = 0; i < 1000; i++) {
        mr_agg_add(&l, a, draw(NORMAL), i);
    }
    struct mr_state_writer w;
    mr_state_writer_init(&w, NULL, 0);
    assert_int_equal(mr_agg_snapshot(&l, a, &w), 0);
    struct mr_state_reader r;
    mr_state_reader_init(&r, NULL, w.buf, w.len);
    assert_int_equal(mr_agg_restore(&l, b, &r), 0);
    assert_int_equal(mr_state_remaining(&r), 0);
    /* Same later results after more samples. */
    for (int i = 0; i < 500; i++) {
        double x = draw(NORMAL);
        mr_agg_add(&l, a, x, 1000 + i);
        mr_agg_add(&l, b, x, 1000 + i);
    }
    for (int k = 0; k < MR_AGG_KINDS; k++) {
        double va;
        double vb;
        assert_int_equal(mr_agg_result(&l, a, (enum mr_agg_kind)k, &va), 0);
        assert_int_equal(mr_agg_result(&l, b, (enum mr_agg_kind)k, &vb), 0);
        assert_true(va == vb);
    }
    /* A truncated stream is an error, not a crash. */
    mr_state_reader_init(&r, NULL, w.buf, w.len / 2);
    assert_int_equal(mr_agg_restore(&l, b, &r), MR_ECORRUPT);
    mr_state_writer_fini(&w);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aggregates_match_reference),
        cmocka_unit_test(test_nist_strd_certified_values),
        cmocka_unit_test(test_sketch_exact_up_to_cap),
        cmocka_unit_test(test_sketch_rank_error),
        cmocka_unit_test(test_non_finite_skipped_and_undefined_results),
        cmocka_unit_test(test_layout_sizes),
        cmocka_unit_test(test_snapshot_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
