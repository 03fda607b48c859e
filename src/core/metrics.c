/* Metrics registry: counters, gauges and histograms rendered in Prometheus text format 0.0.4.
 *
 * Layout: the registry holds families (one per metric name: kind, help, histogram bounds) in
 * registration order, each holding its series (one per label string). Every family and series
 * is its own heap block, so handles stay valid while the arrays that point at them grow. Two
 * open-addressing hash indexes find a family by name and a series by (family, labels), keeping
 * registration cheap up to the hard cap of MR_METRICS_MAX_SERIES series.
 *
 * Updates touch only the series' atomics with relaxed ordering: a counter add is one
 * fetch_add; gauges and histogram sums keep the bit pattern of a double in an atomic uint64 and
 * add with a compare-and-swap loop. A histogram keeps one non-cumulative counter per bucket and
 * derives _count from their sum when rendering, so _count always equals the +Inf bucket even
 * while observations race with a scrape.
 */
#include "millrace/metrics.h"

#include "millrace/alloc.h"
#include "millrace/error.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hard caps: a registry is filled at plugin init from configuration, so these bound what a
 * configuration (or a bug registering per record) can make the process hold. */
#define MR_METRICS_MAX_SERIES 65536
#define MAX_NAME_LEN          256
#define MAX_LABELS_LEN        4096
#define MAX_HELP_LEN          4096
#define MAX_BUCKETS           1024

enum kind {
    KIND_COUNTER,
    KIND_GAUGE,
    KIND_HISTOGRAM,
};

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

struct mr_counter {
    _Atomic uint64_t value;
};

struct mr_gauge {
    _Atomic uint64_t bits; /* bit pattern of a double */
};

struct mr_histogram {
    const double *bounds; /* borrowed from the family */
    size_t n;             /* finite bounds; buckets has n + 1 entries, the last is +Inf */
    _Atomic uint64_t sum_bits;
    _Atomic uint64_t buckets[];
};

struct family;

struct series {
    struct family *family;
    char *labels; /* "" when the series has no labels */
    uint64_t hash;
    union {
        struct mr_counter counter;
        struct mr_gauge gauge;
    } u;
    struct mr_histogram *hist; /* histograms only */
};

struct family {
    char *name;
    char *help;
    enum kind kind;
    double *bounds; /* histograms only */
    size_t nbounds;
    uint64_t hash;
    struct series **series;
    size_t nseries;
    size_t cap;
};

struct slot {
    uint64_t hash;
    void *entry; /* NULL when free */
};

struct index {
    struct slot *slots;
    size_t size; /* power of two, or 0 */
    size_t used;
};

struct mr_metrics {
    pthread_mutex_t lock;
    struct family **families;
    size_t nfamilies;
    size_t cap;
    size_t total_series;
    struct index by_name;   /* family by name */
    struct index by_labels; /* series by (family, labels) */
    struct {
        void (*fn)(void *arg);
        void *arg;
    } collectors[MR_METRICS_MAX_COLLECTORS];
};

/* ---- doubles in atomics ---- */

static uint64_t double_bits(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits;
}

static double bits_double(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

static void atomic_double_add(_Atomic uint64_t *a, double delta)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    /* On failure old is reloaded, so each retry adds to the value another thread just wrote. */
    while (!atomic_compare_exchange_weak_explicit(a, &old, double_bits(bits_double(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* ---- updates (hot path: no locks, no allocation) ---- */

void mr_counter_add(struct mr_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t mr_counter_value(const struct mr_counter *c)
{
    return atomic_load_explicit(&c->value, memory_order_relaxed);
}

void mr_gauge_set(struct mr_gauge *g, double v)
{
    atomic_store_explicit(&g->bits, double_bits(v), memory_order_relaxed);
}

void mr_gauge_add(struct mr_gauge *g, double delta)
{
    atomic_double_add(&g->bits, delta);
}

double mr_gauge_value(const struct mr_gauge *g)
{
    return bits_double(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

void mr_histogram_observe(struct mr_histogram *h, double v)
{
    /* First bucket whose upper bound is >= v; NaN compares false everywhere and lands in +Inf,
     * as in the Prometheus client libraries. */
    size_t lo = 0;
    size_t hi = h->n;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    atomic_fetch_add_explicit(&h->buckets[lo], 1, memory_order_relaxed);
    atomic_double_add(&h->sum_bits, v);
}

/* ---- validation ---- */

static bool is_name_start(char c, bool colon_ok)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
}

static bool is_name_char(char c, bool colon_ok)
{
    return is_name_start(c, colon_ok) || (c >= '0' && c <= '9');
}

/* Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]* */
bool mr_metrics_name_valid(const char *name)
{
    size_t len = strnlen(name, MAX_NAME_LEN + 1);
    if (len == 0 || len > MAX_NAME_LEN || !is_name_start(name[0], true)) {
        return false;
    }
    for (size_t i = 1; i < len; i++) {
        if (!is_name_char(name[i], true)) {
            return false;
        }
    }
    return true;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not valid UTF-8 (overlong
 * forms, surrogates and code points past U+10FFFF included). Prometheus rejects such text. */
static size_t utf8_seq_len(const unsigned char *s)
{
    const unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        n = 2;
        cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        cp = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0; /* also stops at the NUL */
        }
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return n;
}

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        const size_t n = utf8_seq_len(p);
        if (n == 0) {
            return false;
        }
        p += n;
    }
    return true;
}

/* Parse one `name="value"` pair at *p; advances *p past it and returns the name's length, or 0
 * when the pair is malformed. The value must already be escaped (\\, \" and \n only), with no
 * raw newline, and be valid UTF-8. */
static size_t label_pair_parse(const char **p, const char **name)
{
    const char *s = *p;
    *name = s;
    if (!is_name_start(*s, false)) {
        return 0;
    }
    while (is_name_char(*s, false)) {
        s++;
    }
    const size_t name_len = (size_t)(s - *name);
    if (s[0] != '=' || s[1] != '"') {
        return 0;
    }
    s += 2;
    while (*s != '"') {
        if (*s == '\0' || *s == '\n') {
            return 0;
        }
        if (*s == '\\') {
            if (s[1] != '\\' && s[1] != '"' && s[1] != 'n') {
                return 0;
            }
            s += 2;
            continue;
        }
        const size_t n = utf8_seq_len((const unsigned char *)s);
        if (n == 0) {
            return 0;
        }
        s += n;
    }
    *p = s + 1;
    return name_len;
}

/* Label string: empty, or name="value" pairs separated by single commas. Names starting with
 * "__" are reserved by Prometheus; a name may appear once; histograms may not use "le". */
static bool labels_valid(const char *labels, enum kind kind)
{
    const char *names[64];
    size_t lens[64];
    size_t count = 0;
    const char *p = labels;

    if (strnlen(labels, MAX_LABELS_LEN + 1) > MAX_LABELS_LEN) {
        return false;
    }
    while (*p != '\0') {
        if (count == sizeof(names) / sizeof(names[0])) {
            return false;
        }
        const char *name;
        const size_t len = label_pair_parse(&p, &name);
        if (len == 0 || (len >= 2 && name[0] == '_' && name[1] == '_') ||
            (kind == KIND_HISTOGRAM && len == 2 && memcmp(name, "le", 2) == 0)) {
            return false;
        }
        for (size_t i = 0; i < count; i++) {
            if (lens[i] == len && memcmp(names[i], name, len) == 0) {
                return false;
            }
        }
        names[count] = name;
        lens[count] = len;
        count++;
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                return false; /* trailing comma */
            }
        } else if (*p != '\0') {
            return false;
        }
    }
    return true;
}

static bool bounds_valid(const double *bounds, size_t n)
{
    if (n > MAX_BUCKETS || (n > 0 && bounds == NULL)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
            return false;
        }
    }
    return true;
}

/* ---- hash indexes ---- */

static uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static uint64_t hash_name(const char *name)
{
    return hash_bytes(UINT64_C(0xcbf29ce484222325), name, strlen(name));
}

static uint64_t hash_series(const struct family *f, const char *labels)
{
    return hash_bytes(f->hash, labels, strlen(labels) + 1);
}

/* Make room for one more entry (load factor at most 1/2). The old table stays in place if
 * allocation fails, so a failed registration leaves the index as it was. */
static int index_reserve(struct index *ix)
{
    if ((ix->used + 1) * 2 <= ix->size) {
        return 0;
    }
    const size_t size = ix->size == 0 ? 64 : ix->size * 2;
    struct slot *slots = mr_calloc(size, sizeof(*slots));
    if (slots == NULL) {
        return MR_ENOMEM;
    }
    for (size_t i = 0; i < ix->size; i++) {
        if (ix->slots[i].entry != NULL) {
            size_t j = (size_t)ix->slots[i].hash & (size - 1);
            while (slots[j].entry != NULL) {
                j = (j + 1) & (size - 1);
            }
            slots[j] = ix->slots[i];
        }
    }
    mr_free(ix->slots);
    ix->slots = slots;
    ix->size = size;
    return 0;
}

/* Caller has reserved room. */
static void index_insert(struct index *ix, uint64_t hash, void *entry)
{
    size_t j = (size_t)hash & (ix->size - 1);
    while (ix->slots[j].entry != NULL) {
        j = (j + 1) & (ix->size - 1);
    }
    ix->slots[j].hash = hash;
    ix->slots[j].entry = entry;
    ix->used++;
}

static struct family *family_find(const struct mr_metrics *m, const char *name, uint64_t hash)
{
    if (m->by_name.size == 0) {
        return NULL;
    }
    const size_t mask = m->by_name.size - 1;
    for (size_t j = (size_t)hash & mask; m->by_name.slots[j].entry != NULL; j = (j + 1) & mask) {
        struct family *f = m->by_name.slots[j].entry;
        if (m->by_name.slots[j].hash == hash && strcmp(f->name, name) == 0) {
            return f;
        }
    }
    return NULL;
}

static struct series *series_find(const struct mr_metrics *m, const struct family *f,
                                  const char *labels, uint64_t hash)
{
    if (m->by_labels.size == 0) {
        return NULL;
    }
    const size_t mask = m->by_labels.size - 1;
    for (size_t j = (size_t)hash & mask; m->by_labels.slots[j].entry != NULL; j = (j + 1) & mask) {
        struct series *s = m->by_labels.slots[j].entry;
        if (m->by_labels.slots[j].hash == hash && s->family == f &&
            strcmp(s->labels, labels) == 0) {
            return s;
        }
    }
    return NULL;
}

/* ---- registry ---- */

int mr_metrics_create(struct mr_metrics **out)
{
    if (out == NULL) {
        return MR_EINVAL;
    }
    struct mr_metrics *m = mr_calloc(1, sizeof(*m));
    if (m == NULL) {
        return MR_ENOMEM;
    }
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        mr_free(m);
        return MR_ESYS;
    }
    *out = m;
    return 0;
}

static void series_free(struct series *s)
{
    if (s != NULL) {
        mr_free(s->labels);
        mr_free(s->hist);
        mr_free(s);
    }
}

static void family_free(struct family *f)
{
    if (f == NULL) {
        return;
    }
    for (size_t i = 0; i < f->nseries; i++) {
        series_free(f->series[i]);
    }
    mr_free(f->series);
    mr_free(f->bounds);
    mr_free(f->help);
    mr_free(f->name);
    mr_free(f);
}

void mr_metrics_destroy(struct mr_metrics *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->nfamilies; i++) {
        family_free(m->families[i]);
    }
    mr_free(m->families);
    mr_free(m->by_name.slots);
    mr_free(m->by_labels.slots);
    pthread_mutex_destroy(&m->lock);
    mr_free(m);
}

/* Doubling capacity for the pointer arrays, starting at 8. */
static size_t grow_cap(size_t cap)
{
    return cap == 0 ? 8 : cap * 2;
}

static int families_reserve(struct mr_metrics *m)
{
    if (m->nfamilies < m->cap) {
        return 0;
    }
    const size_t cap = grow_cap(m->cap);
    struct family **p = mr_realloc(m->families, cap * sizeof(*p));
    if (p == NULL) {
        return MR_ENOMEM;
    }
    m->families = p;
    m->cap = cap;
    return 0;
}

static int family_series_reserve(struct family *f)
{
    if (f->nseries < f->cap) {
        return 0;
    }
    const size_t cap = grow_cap(f->cap);
    struct series **p = mr_realloc(f->series, cap * sizeof(*p));
    if (p == NULL) {
        return MR_ENOMEM;
    }
    f->series = p;
    f->cap = cap;
    return 0;
}

static struct family *family_new(const char *name, const char *help, enum kind kind,
                                 const double *bounds, size_t n, uint64_t hash)
{
    struct family *f = mr_calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->kind = kind;
    f->hash = hash;
    f->name = mr_strdup(name);
    f->help = mr_strdup(help);
    if (f->name == NULL || f->help == NULL) {
        goto fail;
    }
    if (kind == KIND_HISTOGRAM && n > 0) {
        f->bounds = mr_malloc(n * sizeof(*bounds));
        if (f->bounds == NULL) {
            goto fail;
        }
        memcpy(f->bounds, bounds, n * sizeof(*bounds));
    }
    f->nbounds = n;
    return f;
fail:
    family_free(f);
    return NULL;
}

static struct series *series_new(struct family *f, const char *labels, uint64_t hash)
{
    struct series *s = mr_calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->family = f;
    s->hash = hash;
    s->labels = mr_strdup(labels);
    if (s->labels == NULL) {
        goto fail;
    }
    if (f->kind == KIND_HISTOGRAM) {
        const size_t size = sizeof(*s->hist) + (f->nbounds + 1) * sizeof(s->hist->buckets[0]);
        s->hist = mr_calloc(1, size);
        if (s->hist == NULL) {
            goto fail;
        }
        s->hist->bounds = f->bounds;
        s->hist->n = f->nbounds;
        atomic_init(&s->hist->sum_bits, double_bits(0.0));
        for (size_t i = 0; i <= f->nbounds; i++) {
            atomic_init(&s->hist->buckets[i], 0);
        }
    } else if (f->kind == KIND_GAUGE) {
        atomic_init(&s->u.gauge.bits, double_bits(0.0));
    } else {
        atomic_init(&s->u.counter.value, 0);
    }
    return s;
fail:
    series_free(s);
    return NULL;
}

static bool family_matches(const struct family *f, const char *help, enum kind kind,
                           const double *bounds, size_t n)
{
    if (f->kind != kind || strcmp(f->help, help) != 0) {
        return false;
    }
    if (kind == KIND_HISTOGRAM) {
        return f->nbounds == n && (n == 0 || memcmp(f->bounds, bounds, n * sizeof(*bounds)) == 0);
    }
    return true;
}

/* Under the lock: find or add the series. All capacity is reserved before anything new is
 * linked in, so a failure leaves the registry exactly as it was (growth aside). */
static int series_get_locked(struct mr_metrics *m, const char *name, const char *help,
                             enum kind kind, const char *labels, const double *bounds, size_t n,
                             struct series **out)
{
    const uint64_t fhash = hash_name(name);
    struct family *f = family_find(m, name, fhash);
    struct family *new_family = NULL;
    int rc;

    if (f != NULL) {
        if (!family_matches(f, help, kind, bounds, n)) {
            return MR_EEXIST;
        }
        struct series *s = series_find(m, f, labels, hash_series(f, labels));
        if (s != NULL) {
            *out = s;
            return 0;
        }
    }
    if (m->total_series >= MR_METRICS_MAX_SERIES) {
        return MR_ETOOBIG;
    }
    if (f == NULL) {
        rc = families_reserve(m);
        if (rc == 0) {
            rc = index_reserve(&m->by_name);
        }
        if (rc != 0) {
            return rc;
        }
        new_family = family_new(name, help, kind, bounds, n, fhash);
        if (new_family == NULL) {
            return MR_ENOMEM;
        }
        f = new_family;
    }
    const uint64_t shash = hash_series(f, labels);
    struct series *s = NULL;
    rc = family_series_reserve(f);
    if (rc == 0) {
        rc = index_reserve(&m->by_labels);
    }
    if (rc == 0) {
        s = series_new(f, labels, shash);
        rc = s == NULL ? MR_ENOMEM : 0;
    }
    if (rc != 0) {
        family_free(new_family);
        return rc;
    }
    if (new_family != NULL) {
        m->families[m->nfamilies++] = new_family;
        index_insert(&m->by_name, fhash, new_family);
    }
    f->series[f->nseries++] = s;
    index_insert(&m->by_labels, shash, s);
    m->total_series++;
    *out = s;
    return 0;
}

static int series_get(struct mr_metrics *m, const char *name, const char *help, enum kind kind,
                      const char *labels, const double *bounds, size_t n, struct series **out)
{
    if (m == NULL || name == NULL || help == NULL || out == NULL) {
        return MR_EINVAL;
    }
    if (labels == NULL) {
        labels = "";
    }
    if (!mr_metrics_name_valid(name) || !labels_valid(labels, kind) ||
        strnlen(help, MAX_HELP_LEN + 1) > MAX_HELP_LEN || !utf8_valid(help)) {
        return MR_EINVAL;
    }
    if (kind == KIND_HISTOGRAM && !bounds_valid(bounds, n)) {
        return MR_EINVAL;
    }
    pthread_mutex_lock(&m->lock);
    const int rc = series_get_locked(m, name, help, kind, labels, bounds, n, out);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int mr_metrics_counter(struct mr_metrics *m, const char *name, const char *help, const char *labels,
                       struct mr_counter **out)
{
    struct series *s;
    if (out == NULL) {
        return MR_EINVAL;
    }
    const int rc = series_get(m, name, help, KIND_COUNTER, labels, NULL, 0, &s);
    if (rc == 0) {
        *out = &s->u.counter;
    }
    return rc;
}

int mr_metrics_gauge(struct mr_metrics *m, const char *name, const char *help, const char *labels,
                     struct mr_gauge **out)
{
    struct series *s;
    if (out == NULL) {
        return MR_EINVAL;
    }
    const int rc = series_get(m, name, help, KIND_GAUGE, labels, NULL, 0, &s);
    if (rc == 0) {
        *out = &s->u.gauge;
    }
    return rc;
}

int mr_metrics_histogram(struct mr_metrics *m, const char *name, const char *help,
                         const char *labels, const double *bounds, size_t n,
                         struct mr_histogram **out)
{
    struct series *s;
    if (out == NULL) {
        return MR_EINVAL;
    }
    const int rc = series_get(m, name, help, KIND_HISTOGRAM, labels, bounds, n, &s);
    if (rc == 0) {
        *out = s->hist;
    }
    return rc;
}

/* ---- rendering ---- */

/* Output that keeps counting past the end of the buffer, so a too-small buffer still yields
 * the size needed. */
struct writer {
    char *buf;
    size_t cap;
    size_t len;
};

static void writer_putn(struct writer *w, const char *s, size_t n)
{
    if (w->len < w->cap) {
        const size_t room = w->cap - w->len;
        memcpy(w->buf + w->len, s, n < room ? n : room);
    }
    w->len += n;
}

static void writer_puts(struct writer *w, const char *s)
{
    writer_putn(w, s, strlen(s));
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
writer_printf(struct writer *w, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    /* Only numbers go through here; 64 bytes hold any %.17g or uint64. */
    if (n > 0 && (size_t)n < sizeof(tmp)) {
        writer_putn(w, tmp, (size_t)n);
    }
}

/* A float as Prometheus parses it: NaN, +Inf, -Inf, else the shortest of %.15g..%.17g that
 * reads back to the same double (so 0.1 prints as 0.1, yet every value round-trips). */
static void writer_double(struct writer *w, double v)
{
    if (isnan(v)) {
        writer_puts(w, "NaN");
        return;
    }
    if (isinf(v)) {
        writer_puts(w, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char tmp[64];
    for (int prec = 15; prec <= 17; prec++) {
        (void)snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v) {
            break;
        }
    }
    writer_puts(w, tmp);
}

/* HELP text escaping per format 0.0.4: backslash and newline only. */
static void writer_help(struct writer *w, const char *help)
{
    for (const char *p = help; *p != '\0'; p++) {
        if (*p == '\\') {
            writer_putn(w, "\\\\", 2);
        } else if (*p == '\n') {
            writer_putn(w, "\\n", 2);
        } else {
            writer_putn(w, p, 1);
        }
    }
}

/* `name[suffix]{labels[,le="x"]} ` */
static void writer_sample_name(struct writer *w, const struct family *f, const char *suffix,
                               const char *labels, const double *le)
{
    writer_puts(w, f->name);
    writer_puts(w, suffix);
    if (labels[0] == '\0' && le == NULL) {
        writer_putn(w, " ", 1);
        return;
    }
    writer_putn(w, "{", 1);
    writer_puts(w, labels);
    if (le != NULL) {
        writer_puts(w, labels[0] == '\0' ? "le=\"" : ",le=\"");
        writer_double(w, *le);
        writer_putn(w, "\"", 1);
    }
    writer_putn(w, "} ", 2);
}

static void render_histogram(struct writer *w, const struct family *f, const struct series *s)
{
    const struct mr_histogram *h = s->hist;
    const double inf = INFINITY;
    uint64_t cumulative = 0;

    for (size_t i = 0; i <= h->n; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        writer_sample_name(w, f, "_bucket", s->labels, i < h->n ? &h->bounds[i] : &inf);
        writer_printf(w, "%" PRIu64 "\n", cumulative);
    }
    writer_sample_name(w, f, "_sum", s->labels, NULL);
    writer_double(w, bits_double(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
    writer_putn(w, "\n", 1);
    writer_sample_name(w, f, "_count", s->labels, NULL);
    writer_printf(w, "%" PRIu64 "\n", cumulative);
}

static void render_family(struct writer *w, const struct family *f)
{
    writer_puts(w, "# HELP ");
    writer_puts(w, f->name);
    writer_putn(w, " ", 1);
    writer_help(w, f->help);
    writer_puts(w, "\n# TYPE ");
    writer_puts(w, f->name);
    writer_putn(w, " ", 1);
    writer_puts(w, kind_names[f->kind]);
    writer_putn(w, "\n", 1);
    for (size_t i = 0; i < f->nseries; i++) {
        const struct series *s = f->series[i];
        switch (f->kind) {
        case KIND_COUNTER:
            writer_sample_name(w, f, "", s->labels, NULL);
            writer_printf(w, "%" PRIu64 "\n", mr_counter_value(&s->u.counter));
            break;
        case KIND_GAUGE:
            writer_sample_name(w, f, "", s->labels, NULL);
            writer_double(w, mr_gauge_value(&s->u.gauge));
            writer_putn(w, "\n", 1);
            break;
        case KIND_HISTOGRAM:
            render_histogram(w, f, s);
            break;
        }
    }
}

long mr_metrics_render(struct mr_metrics *m, char *out, size_t cap, size_t *needed)
{
    if (m == NULL || (out == NULL && cap > 0)) {
        return MR_EINVAL;
    }
    struct writer w = {.buf = out, .cap = cap, .len = 0};

    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < MR_METRICS_MAX_COLLECTORS; i++) {
        if (m->collectors[i].fn != NULL) {
            /* Under the lock, so a collector being removed is never running; collectors only
             * set their own series (atomics), which takes no lock. */
            m->collectors[i].fn(m->collectors[i].arg);
        }
    }
    for (size_t i = 0; i < m->nfamilies; i++) {
        render_family(&w, m->families[i]);
    }
    pthread_mutex_unlock(&m->lock);

    if (needed != NULL) {
        *needed = w.len + 1;
    }
    if (w.len >= cap || w.len > (size_t)LONG_MAX) {
        return MR_ETOOBIG;
    }
    out[w.len] = '\0';
    return (long)w.len;
}

long mr_metrics_label_escape(const char *value, char *out, size_t cap)
{
    if (value == NULL || (out == NULL && cap > 0)) {
        return MR_EINVAL;
    }
    size_t len = 0;
    for (const char *p = value; *p != '\0'; p++) {
        len += (*p == '\\' || *p == '"' || *p == '\n') ? 2 : 1;
    }
    if (len >= cap || len > (size_t)LONG_MAX) {
        return MR_ETOOBIG;
    }
    char *o = out;
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"') {
            *o++ = '\\';
            *o++ = *p;
        } else if (*p == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return (long)len;
}

int mr_metrics_collector_add(struct mr_metrics *m, void (*fn)(void *arg), void *arg)
{
    int rc = MR_ETOOBIG;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < MR_METRICS_MAX_COLLECTORS; i++) {
        if (m->collectors[i].fn == NULL) {
            m->collectors[i].fn = fn;
            m->collectors[i].arg = arg;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void mr_metrics_collector_remove(struct mr_metrics *m, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < MR_METRICS_MAX_COLLECTORS; i++) {
        if (m->collectors[i].fn == fn && m->collectors[i].arg == arg) {
            m->collectors[i].fn = NULL;
        }
    }
    pthread_mutex_unlock(&m->lock);
}
