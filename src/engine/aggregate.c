/* Streaming aggregates and the percentile sketch: see aggregate.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/aggregate.h"
#include "millrace/error.h"

static const char *const agg_names[MR_AGG_KINDS] = {
    [MR_AGG_COUNT] = "count",       [MR_AGG_SUM] = "sum",     [MR_AGG_MEAN] = "mean",
    [MR_AGG_MIN] = "min",           [MR_AGG_MAX] = "max",     [MR_AGG_STDDEV] = "stddev",
    [MR_AGG_VARIANCE] = "variance", [MR_AGG_FIRST] = "first", [MR_AGG_LAST] = "last",
    [MR_AGG_RATE] = "rate",         [MR_AGG_RMS] = "rms",     [MR_AGG_P50] = "p50",
    [MR_AGG_P95] = "p95",           [MR_AGG_P99] = "p99",
};

const char *mr_agg_name(enum mr_agg_kind k)
{
    return (unsigned)k < MR_AGG_KINDS ? agg_names[k] : "?";
}

int mr_agg_parse(const char *s, enum mr_agg_kind *out)
{
    for (int k = 0; k < MR_AGG_KINDS; k++) {
        if (strcmp(s, agg_names[k]) == 0) {
            *out = (enum mr_agg_kind)k;
            return 0;
        }
    }
    return MR_EINVAL;
}

const char *mr_agg_names_list(void)
{
    return "count, sum, mean, min, max, stddev, variance, first, last, rate, rms, p50, p95, p99";
}

/* ---- percentile sketch (merging t-digest, k1 scale) ---- */

void mr_qsketch_reset(struct mr_qsketch *s)
{
    s->n = 0;
    s->sorted = 0;
    s->total = 0;
    s->min = INFINITY;
    s->max = -INFINITY;
}

static int centroid_cmp(const void *a, const void *b)
{
    const struct mr_centroid *x = a;
    const struct mr_centroid *y = b;
    if (x->mean != y->mean) {
        return x->mean < y->mean ? -1 : 1;
    }
    if (x->weight != y->weight) {
        return x->weight < y->weight ? -1 : 1;
    }
    return 0;
}

/* Largest quantile a centroid starting at q_left may reach: one unit further on the k1 scale
 * k(q) = delta / (2 pi) * asin(2q - 1). */
static double q_limit(double q_left)
{
    double a = asin(2.0 * q_left - 1.0) + 2.0 * M_PI / MR_QSKETCH_DELTA;
    if (a >= M_PI / 2) {
        return 1.0;
    }
    return (sin(a) + 1.0) / 2.0;
}

/* Put all centroids in order: sort the ones appended since the last time, then merge the two
 * sorted runs. The order is a total one (mean, then weight; equal pairs are interchangeable),
 * so the result does not depend on the order centroids were appended in. */
static void qsketch_sort(struct mr_qsketch *s)
{
    if (s->sorted >= s->n) {
        return;
    }
    struct mr_centroid *c = s->c;
    qsort(c + s->sorted, (size_t)(s->n - s->sorted), sizeof(c[0]), centroid_cmp);
    if (s->sorted > 0) {
        struct mr_centroid tmp[MR_QSKETCH_CAP];
        uint64_t i = 0;
        uint64_t j = s->sorted;
        uint64_t o = 0;
        while (i < s->sorted && j < s->n) {
            tmp[o++] = centroid_cmp(&c[j], &c[i]) < 0 ? c[j++] : c[i++];
        }
        while (i < s->sorted) {
            tmp[o++] = c[i++];
        }
        while (j < s->n) {
            tmp[o++] = c[j++];
        }
        memcpy(c, tmp, (size_t)s->n * sizeof(c[0]));
    }
    s->sorted = s->n;
}

/* Merge neighbours of a sorted run c[0..n) (total weight `total`) while each stays within one
 * unit of the k1 scale, writing the result to out (which may be c itself). Leaves at most
 * DELTA + 1 centroids, because two neighbours together always span more than one unit of k,
 * whose range is DELTA / 2. Returns how many. */
static uint64_t centroids_compress(const struct mr_centroid *c, uint64_t n, double total,
                                   struct mr_centroid *out)
{
    double before = 0; /* weight of the centroids already written */
    double limit = q_limit(0.0);
    struct mr_centroid cur = c[0];
    uint64_t o = 0;
    for (uint64_t i = 1; i < n; i++) {
        if ((before + cur.weight + c[i].weight) / total <= limit) {
            cur.weight += c[i].weight;
            cur.mean += (c[i].mean - cur.mean) * c[i].weight / cur.weight;
            continue;
        }
        out[o++] = cur;
        before += cur.weight;
        limit = q_limit(before / total);
        cur = c[i];
    }
    out[o++] = cur;
    return o;
}

static void qsketch_compress(struct mr_qsketch *s)
{
    if (s->n < 2) {
        return;
    }
    qsketch_sort(s);
    s->n = centroids_compress(s->c, s->n, s->total, s->c);
    s->sorted = s->n;
}

static void qsketch_push(struct mr_qsketch *s, double mean, double weight)
{
    if (s->n == MR_QSKETCH_CAP) {
        qsketch_compress(s);
    }
    s->c[s->n].mean = mean;
    s->c[s->n].weight = weight;
    s->n++;
}

void mr_qsketch_add(struct mr_qsketch *s, double x)
{
    s->total += 1.0;
    if (x < s->min) {
        s->min = x;
    }
    if (x > s->max) {
        s->max = x;
    }
    qsketch_push(s, x, 1.0);
}

void mr_qsketch_merge(struct mr_qsketch *dst, const struct mr_qsketch *src)
{
    if (src->n == 0) {
        return;
    }
    dst->total += src->total;
    if (src->min < dst->min) {
        dst->min = src->min;
    }
    if (src->max > dst->max) {
        dst->max = src->max;
    }
    if (dst->n + src->n <= MR_QSKETCH_CAP) {
        memcpy(dst->c + dst->n, src->c, (size_t)src->n * sizeof(src->c[0]));
        dst->n += src->n;
        return;
    }
    /* Compress both together against the combined total: compressing part of src into dst
     * first would size centroids by a distribution that is not the final one. */
    struct mr_centroid all[2 * MR_QSKETCH_CAP];
    uint64_t n = dst->n;
    memcpy(all, dst->c, (size_t)n * sizeof(all[0]));
    memcpy(all + n, src->c, (size_t)src->n * sizeof(all[0]));
    n += src->n;
    qsort(all, (size_t)n, sizeof(all[0]), centroid_cmp);
    dst->n = centroids_compress(all, n, dst->total, dst->c);
    dst->sorted = dst->n;
}

/* Linear interpolation at x between (x0, v0) and (x1, v1), x0 <= x <= x1. */
static double lerp(double x0, double v0, double x1, double v1, double x)
{
    if (x1 <= x0) {
        return v1;
    }
    return v0 + (v1 - v0) * (x - x0) / (x1 - x0);
}

double mr_qsketch_quantile(struct mr_qsketch *s, double q)
{
    if (s->n == 0) {
        return NAN;
    }
    if (q <= 0) {
        return s->min;
    }
    if (q >= 1) {
        return s->max;
    }
    qsketch_sort(s);
    /* Positions in "centre" coordinates: sample j of a sorted run of singletons sits at j+0.5,
     * so the target q(n-1)+0.5 reproduces the linear (numpy) percentile exactly. */
    double target = q * (s->total - 1.0) + 0.5;
    double px = 0.5;
    double pv = s->min;
    double cum = 0;
    for (uint64_t i = 0; i < s->n; i++) {
        double x = cum + s->c[i].weight / 2.0;
        if (target <= x) {
            return lerp(px, pv, x, s->c[i].mean, target);
        }
        px = x;
        pv = s->c[i].mean;
        cum += s->c[i].weight;
    }
    double x = s->total - 0.5;
    return target >= x ? s->max : lerp(px, pv, x, s->max, target);
}

/* ---- layout and state ---- */

#define KIND(k) (1u << (k))

static inline double *dref(void *st, uint32_t off)
{
    return (double *)(void *)((char *)st + off);
}

static inline const double *cdref(const void *st, uint32_t off)
{
    return (const double *)(const void *)((const char *)st + off);
}

static inline int64_t *tref(void *st, uint32_t off)
{
    return (int64_t *)(void *)((char *)st + off);
}

static inline const int64_t *ctref(const void *st, uint32_t off)
{
    return (const int64_t *)(const void *)((const char *)st + off);
}

static inline struct mr_qsketch *sketch(void *st, const struct mr_agg_layout *l)
{
    return (struct mr_qsketch *)(void *)((char *)st + l->off_sketch);
}

/* first and last are (value, time) pairs: value at off, time at off + 8. */
void mr_agg_layout_init(struct mr_agg_layout *l, uint32_t kinds)
{
    memset(l, 0, sizeof(*l));
    l->kinds = kinds;
    uint32_t off = 8; /* the count */
    if (kinds & KIND(MR_AGG_SUM)) {
        l->off_sum = off;
        off += 8;
    }
    if (kinds & (KIND(MR_AGG_MEAN) | KIND(MR_AGG_STDDEV) | KIND(MR_AGG_VARIANCE))) {
        l->off_mean = off;
        off += 8;
    }
    if (kinds & (KIND(MR_AGG_STDDEV) | KIND(MR_AGG_VARIANCE))) {
        l->off_m2 = off;
        l->off_shift = off + 8;
        off += 16;
    }
    if (kinds & KIND(MR_AGG_MIN)) {
        l->off_min = off;
        off += 8;
    }
    if (kinds & KIND(MR_AGG_MAX)) {
        l->off_max = off;
        off += 8;
    }
    if (kinds & (KIND(MR_AGG_FIRST) | KIND(MR_AGG_RATE))) {
        l->off_first = off;
        off += 16;
    }
    if (kinds & (KIND(MR_AGG_LAST) | KIND(MR_AGG_RATE))) {
        l->off_last = off;
        off += 16;
    }
    if (kinds & KIND(MR_AGG_RMS)) {
        l->off_msq = off;
        off += 8;
    }
    if (kinds & (KIND(MR_AGG_P50) | KIND(MR_AGG_P95) | KIND(MR_AGG_P99))) {
        l->off_sketch = off;
        off += (uint32_t)sizeof(struct mr_qsketch);
    }
    l->size = off;
}

void mr_agg_reset(const struct mr_agg_layout *l, void *st)
{
    *(uint64_t *)st = 0;
    if (l->off_sum) {
        *dref(st, l->off_sum) = 0;
    }
    if (l->off_mean) {
        *dref(st, l->off_mean) = 0;
    }
    if (l->off_m2) {
        *dref(st, l->off_m2) = 0;
        *dref(st, l->off_shift) = 0;
    }
    if (l->off_min) {
        *dref(st, l->off_min) = INFINITY;
    }
    if (l->off_max) {
        *dref(st, l->off_max) = -INFINITY;
    }
    if (l->off_first) {
        *dref(st, l->off_first) = 0;
        *tref(st, l->off_first + 8) = INT64_MAX;
    }
    if (l->off_last) {
        *dref(st, l->off_last) = 0;
        *tref(st, l->off_last + 8) = INT64_MIN;
    }
    if (l->off_msq) {
        *dref(st, l->off_msq) = 0;
    }
    if (l->off_sketch) {
        mr_qsketch_reset(sketch(st, l));
    }
}

uint64_t mr_agg_count(const void *st)
{
    return *(const uint64_t *)st;
}

int mr_agg_add(const struct mr_agg_layout *l, void *st, double x, int64_t t)
{
    if (!isfinite(x)) {
        return 0;
    }
    uint64_t n = ++*(uint64_t *)st;
    if (l->off_sum) {
        *dref(st, l->off_sum) += x;
    }
    if (l->off_m2) {
        /* Welford on x - shift, the shift being the state's first sample. */
        double *shift = dref(st, l->off_shift);
        if (n == 1) {
            *shift = x;
        }
        double y = x - *shift;
        double *mean = dref(st, l->off_mean);
        double d = y - *mean;
        *mean += d / (double)n;
        *dref(st, l->off_m2) += d * (y - *mean);
    } else if (l->off_mean) {
        double *mean = dref(st, l->off_mean);
        *mean += (x - *mean) / (double)n;
    }
    if (l->off_min && x < *dref(st, l->off_min)) {
        *dref(st, l->off_min) = x;
    }
    if (l->off_max && x > *dref(st, l->off_max)) {
        *dref(st, l->off_max) = x;
    }
    if (l->off_first && t < *tref(st, l->off_first + 8)) {
        *dref(st, l->off_first) = x;
        *tref(st, l->off_first + 8) = t;
    }
    if (l->off_last && t >= *tref(st, l->off_last + 8)) {
        *dref(st, l->off_last) = x;
        *tref(st, l->off_last + 8) = t;
    }
    if (l->off_msq) {
        double *msq = dref(st, l->off_msq);
        *msq += (x * x - *msq) / (double)n;
    }
    if (l->off_sketch) {
        mr_qsketch_add(sketch(st, l), x);
    }
    return 1;
}

/* Summary of a run of samples, merged into a state with Chan et al.'s formulas. `mean` is
 * that of the samples minus `shift`. */
struct moments {
    uint64_t n;
    double sum, shift, mean, m2, min, max, msq;
};

static void moments_merge(const struct mr_agg_layout *l, void *st, const struct moments *b)
{
    uint64_t na = *(uint64_t *)st;
    if (b->n == 0) {
        return;
    }
    uint64_t n = na + b->n;
    *(uint64_t *)st = n;
    double fb = (double)b->n / (double)n; /* share of the new run */
    if (l->off_sum) {
        *dref(st, l->off_sum) += b->sum;
    }
    if (l->off_m2) {
        double *shift = dref(st, l->off_shift);
        double *mean = dref(st, l->off_mean);
        if (na == 0) {
            *shift = b->shift;
            *mean = b->mean;
            *dref(st, l->off_m2) = b->m2;
        } else {
            /* b's mean in this state's frame; shifts of nearby data subtract exactly. */
            double d = (b->mean + (b->shift - *shift)) - *mean;
            *dref(st, l->off_m2) += b->m2 + d * d * (double)na * fb;
            *mean += d * fb;
        }
    } else if (l->off_mean) {
        double *mean = dref(st, l->off_mean);
        *mean += ((b->shift + b->mean) - *mean) * fb;
    }
    if (l->off_min && b->min < *dref(st, l->off_min)) {
        *dref(st, l->off_min) = b->min;
    }
    if (l->off_max && b->max > *dref(st, l->off_max)) {
        *dref(st, l->off_max) = b->max;
    }
    if (l->off_msq) {
        double *msq = dref(st, l->off_msq);
        *msq += (b->msq - *msq) * fb;
    }
}

/* Up to CHUNK finite samples at once: a two-pass mean/m2 per chunk (exact to rounding), then
 * one parallel merge per chunk. */
#define CHUNK 256

static uint32_t chunk_add(const struct mr_agg_layout *l, void *st, const float *raw, uint32_t n,
                          int64_t t)
{
    double x[CHUNK];
    struct moments m = {.min = INFINITY, .max = -INFINITY};
    double sumsq = 0;
    double ysum = 0;
    for (uint32_t i = 0; i < n; i++) {
        double v = raw[i];
        if (!isfinite(v)) {
            continue;
        }
        if (m.n == 0) {
            m.shift = v;
        }
        x[m.n++] = v;
        m.sum += v;
        ysum += v - m.shift;
        sumsq += v * v;
        m.min = v < m.min ? v : m.min;
        m.max = v > m.max ? v : m.max;
    }
    if (m.n == 0) {
        return 0;
    }
    m.mean = ysum / (double)m.n;
    m.msq = sumsq / (double)m.n;
    if (l->off_m2) {
        for (uint64_t i = 0; i < m.n; i++) {
            double d = (x[i] - m.shift) - m.mean;
            m.m2 += d * d;
        }
    }
    moments_merge(l, st, &m);
    if (l->off_first && t < *tref(st, l->off_first + 8)) {
        *dref(st, l->off_first) = x[0];
        *tref(st, l->off_first + 8) = t;
    }
    if (l->off_last && t >= *tref(st, l->off_last + 8)) {
        *dref(st, l->off_last) = x[m.n - 1];
        *tref(st, l->off_last + 8) = t;
    }
    if (l->off_sketch) {
        for (uint64_t i = 0; i < m.n; i++) {
            mr_qsketch_add(sketch(st, l), x[i]);
        }
    }
    return (uint32_t)m.n;
}

uint32_t mr_agg_add_block(const struct mr_agg_layout *l, void *st, const void *data, uint32_t n,
                          int64_t t)
{
    float raw[CHUNK];
    uint32_t added = 0;
    for (uint32_t off = 0; off < n; off += CHUNK) {
        uint32_t k = n - off < CHUNK ? n - off : CHUNK;
        memcpy(raw, (const char *)data + (size_t)off * sizeof(float), (size_t)k * sizeof(float));
        added += chunk_add(l, st, raw, k, t);
    }
    return added;
}

void mr_agg_merge(const struct mr_agg_layout *l, void *dst, const void *src)
{
    uint64_t nb = mr_agg_count(src);
    if (nb == 0) {
        return;
    }
    struct moments m = {
        .n = nb,
        .sum = l->off_sum ? *cdref(src, l->off_sum) : 0,
        .shift = l->off_m2 ? *cdref(src, l->off_shift) : 0,
        .mean = l->off_mean ? *cdref(src, l->off_mean) : 0,
        .m2 = l->off_m2 ? *cdref(src, l->off_m2) : 0,
        .min = l->off_min ? *cdref(src, l->off_min) : 0,
        .max = l->off_max ? *cdref(src, l->off_max) : 0,
        .msq = l->off_msq ? *cdref(src, l->off_msq) : 0,
    };
    moments_merge(l, dst, &m);
    if (l->off_first && *ctref(src, l->off_first + 8) < *tref(dst, l->off_first + 8)) {
        memcpy((char *)dst + l->off_first, (const char *)src + l->off_first, 16);
    }
    if (l->off_last && *ctref(src, l->off_last + 8) >= *tref(dst, l->off_last + 8)) {
        memcpy((char *)dst + l->off_last, (const char *)src + l->off_last, 16);
    }
    if (l->off_sketch) {
        mr_qsketch_merge(
            sketch(dst, l),
            (const struct mr_qsketch *)(const void *)((const char *)src + l->off_sketch));
    }
}

int mr_agg_result(const struct mr_agg_layout *l, void *st, enum mr_agg_kind k, double *out)
{
    uint64_t n = mr_agg_count(st);
    double v;
    if (n == 0 && k != MR_AGG_COUNT && k != MR_AGG_SUM) {
        return MR_ERANGE;
    }
    switch (k) {
    case MR_AGG_COUNT:
        v = (double)n;
        break;
    case MR_AGG_SUM:
        v = *dref(st, l->off_sum);
        break;
    case MR_AGG_MEAN:
        v = *dref(st, l->off_mean) + (l->off_m2 ? *dref(st, l->off_shift) : 0);
        break;
    case MR_AGG_MIN:
        v = *dref(st, l->off_min);
        break;
    case MR_AGG_MAX:
        v = *dref(st, l->off_max);
        break;
    case MR_AGG_VARIANCE:
    case MR_AGG_STDDEV:
        if (n < 2) {
            return MR_ERANGE;
        }
        v = *dref(st, l->off_m2) / (double)(n - 1);
        v = v > 0 ? v : 0;
        v = k == MR_AGG_STDDEV ? sqrt(v) : v;
        break;
    case MR_AGG_FIRST:
        v = *dref(st, l->off_first);
        break;
    case MR_AGG_LAST:
        v = *dref(st, l->off_last);
        break;
    case MR_AGG_RATE: {
        int64_t dt = *tref(st, l->off_last + 8) - *tref(st, l->off_first + 8);
        if (dt <= 0) {
            return MR_ERANGE;
        }
        v = (*dref(st, l->off_last) - *dref(st, l->off_first)) / ((double)dt * 1e-9);
        break;
    }
    case MR_AGG_RMS:
        v = sqrt(*dref(st, l->off_msq));
        break;
    case MR_AGG_P50:
        v = mr_qsketch_quantile(sketch(st, l), 0.50);
        break;
    case MR_AGG_P95:
        v = mr_qsketch_quantile(sketch(st, l), 0.95);
        break;
    case MR_AGG_P99:
        v = mr_qsketch_quantile(sketch(st, l), 0.99);
        break;
    default:
        return MR_EINVAL;
    }
    *out = v;
    return 0;
}

/* ---- checkpoints ---- */

/* The plain words of a state (everything but the sketch), in offset order. */
static size_t plain_words(const struct mr_agg_layout *l)
{
    return (l->off_sketch ? l->off_sketch : l->size) / 8;
}

int mr_agg_snapshot(const struct mr_agg_layout *l, const void *st, struct mr_state_writer *w)
{
    const uint64_t *words = st;
    for (size_t i = 0; i < plain_words(l); i++) {
        mr_state_put_u64(w, words[i]); /* doubles travel as their bit patterns */
    }
    if (l->off_sketch) {
        const struct mr_qsketch *s =
            (const struct mr_qsketch *)(const void *)((const char *)st + l->off_sketch);
        mr_state_put_u64(w, s->n);
        mr_state_put_f64(w, s->total);
        mr_state_put_f64(w, s->min);
        mr_state_put_f64(w, s->max);
        for (uint64_t i = 0; i < s->n; i++) {
            mr_state_put_f64(w, s->c[i].mean);
            mr_state_put_f64(w, s->c[i].weight);
        }
    }
    return w->err;
}

int mr_agg_restore(const struct mr_agg_layout *l, void *st, struct mr_state_reader *r)
{
    uint64_t *words = st;
    for (size_t i = 0; i < plain_words(l); i++) {
        mr_state_get_u64(r, &words[i]);
    }
    if (l->off_sketch) {
        struct mr_qsketch *s = sketch(st, l);
        mr_qsketch_reset(s); /* `sorted` restarts at 0: order does not change any result */
        uint64_t n = 0;
        mr_state_get_u64(r, &n);
        if (r->err == 0 && n > MR_QSKETCH_CAP) {
            r->err = MR_ECORRUPT;
        }
        mr_state_get_f64(r, &s->total);
        mr_state_get_f64(r, &s->min);
        mr_state_get_f64(r, &s->max);
        for (uint64_t i = 0; i < n && r->err == 0; i++) {
            mr_state_get_f64(r, &s->c[i].mean);
            mr_state_get_f64(r, &s->c[i].weight);
        }
        s->n = r->err == 0 ? n : 0;
    }
    return r->err;
}
