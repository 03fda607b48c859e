/* Output `prometheus_client`: the latest value of selected signals and KPIs as Prometheus gauges
 * on millrace's own /metrics (http.listen), so a Prometheus that scrapes millrace gets plant
 * values next to millrace's health without another exporter.
 *
 *   outputs:
 *     plant_gauges:
 *       type: prometheus_client
 *       signals: ["oee*", "energy.kw"]   # shell-style globs on the signal
 *       assets: ["north*"]               # globs on the asset path (default all)
 *
 *   millrace_signal{asset="north/l1/m1",signal="oee"} 0.82
 *
 * Per series the newest record by record time wins (a replay after a restart cannot move a
 * gauge back in time). A record of bad quality sets the gauge to NaN: the last good value is no
 * longer the machine's state. Strings and sample blocks have no gauge form and are passed over.
 *
 * Cost per record: the glob decision is cached per asset and per signal id (one fnmatch per new
 * name, never per record) and the series is found by the two ids in an open-addressing table;
 * only a new series registers a gauge (under the registry's lock). At most `max_series` series:
 * more are counted in millrace_prometheus_series_dropped_total and logged once, since every
 * series costs Prometheus memory on every scrape.
 *
 * Series are never removed while millrace runs (a machine that stops reporting keeps its last
 * value: watch millrace_output_lag_seconds or the machine's own state signal for staleness).
 */
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/log.h"
#include "millrace/metrics.h"
#include "millrace/plugin.h"

extern const struct mr_plugin mr_output_prometheus_client;

#define SELECT_UNKNOWN 0
#define SELECT_YES     1
#define SELECT_NO      2

struct prom_conf {
    struct mr_strlist signals;
    struct mr_strlist assets;
    char *metric;
    int64_t max_series;
};

struct series {
    uint64_t key; /* asset << 32 | signal; 0 = empty slot */
    int64_t time_ns;
    struct mr_gauge *gauge;
};

struct prom_ctx {
    const struct prom_conf *conf;
    struct mr_output_host *host;
    struct mr_plugin_counters counters;
    struct mr_counter *dropped;
    uint8_t *asset_sel; /* by name id: SELECT_* */
    uint8_t *signal_sel;
    size_t sel_cap;
    struct series *table; /* open addressing, power-of-two size, at most half full */
    size_t table_cap;
    size_t nseries;
    bool warned_full;
    bool warned_metric;
};

static const struct mr_field prom_fields[] = {
    {.name = "signals",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct prom_conf, signals),
     .flags = MR_FIELD_REQUIRED,
     .help = "Signals to expose, as shell-style globs (`oee*`, `*.temperature`, `energy.kw`). "
             "Choose KPIs and a few key signals: every series costs Prometheus memory."},
    {.name = "assets",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct prom_conf, assets),
     .def = "[*]",
     .help = "Asset paths to expose, as globs (`north/*` matches every asset under north; `*` "
             "matches across `/`)."},
    {.name = "metric",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct prom_conf, metric),
     .def = "millrace_signal",
     .help = "Metric name of the gauges (labels `asset` and `signal`)."},
    {.name = "max_series",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct prom_conf, max_series),
     .def = "10000",
     .min = "1",
     .max = "1000000",
     .help = "Most asset/signal series exposed; further ones are counted in "
             "millrace_prometheus_series_dropped_total and logged once."},
    {0},
};

static bool any_glob(const struct mr_strlist *globs, const char *s)
{
    for (size_t i = 0; i < globs->n; i++) {
        if (fnmatch(globs->items[i], s, 0) == 0) {
            return true;
        }
    }
    return false;
}

/* Is the name with this id selected by globs? Decided once per id. */
static bool selected(struct prom_ctx *c, uint8_t *cache, mr_name_id id,
                     const struct mr_strlist *globs)
{
    if (id < c->sel_cap && cache[id] != SELECT_UNKNOWN) {
        return cache[id] == SELECT_YES;
    }
    const char *s = mr_names_str(c->host->names, id, NULL);
    bool yes = s != NULL && any_glob(globs, s);
    if (id < c->sel_cap) {
        cache[id] = yes ? SELECT_YES : SELECT_NO;
    }
    return yes;
}

/* Grow the per-id caches to cover id (ids are dense, so this happens once per new name). */
static int sel_reserve(struct prom_ctx *c, mr_name_id id)
{
    if (id < c->sel_cap) {
        return 0;
    }
    size_t cap = c->sel_cap;
    while (cap <= id) {
        cap *= 2;
    }
    uint8_t *a = mr_realloc(c->asset_sel, cap);
    if (a == NULL) {
        return MR_ENOMEM;
    }
    c->asset_sel = a;
    uint8_t *s = mr_realloc(c->signal_sel, cap);
    if (s == NULL) {
        return MR_ENOMEM;
    }
    c->signal_sel = s;
    memset(c->asset_sel + c->sel_cap, SELECT_UNKNOWN, cap - c->sel_cap);
    memset(c->signal_sel + c->sel_cap, SELECT_UNKNOWN, cap - c->sel_cap);
    c->sel_cap = cap;
    return 0;
}

static size_t slot_of(const struct prom_ctx *c, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ULL;
    size_t mask = c->table_cap - 1;
    size_t i = (size_t)(h >> 17) & mask;
    while (c->table[i].key != 0 && c->table[i].key != key) {
        i = (i + 1) & mask;
    }
    return i;
}

static int table_grow(struct prom_ctx *c)
{
    size_t cap = c->table_cap * 2;
    struct series *t = mr_calloc(cap, sizeof(*t));
    if (t == NULL) {
        return MR_ENOMEM;
    }
    struct series *old = c->table;
    size_t old_cap = c->table_cap;
    c->table = t;
    c->table_cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].key != 0) {
            c->table[slot_of(c, old[i].key)] = old[i];
        }
    }
    mr_free(old);
    return 0;
}

/* The series of rec, registering its gauge the first time; NULL when not exposed. */
static struct series *series_for(struct prom_ctx *c, const struct mr_record *rec)
{
    uint64_t key = (uint64_t)rec->asset << 32 | rec->signal;
    if (key == 0) {
        return NULL;
    }
    struct series *s = &c->table[slot_of(c, key)];
    if (s->key == key) {
        return s;
    }
    if (c->nseries >= (size_t)c->conf->max_series) {
        mr_counter_add(c->dropped, 1);
        if (!c->warned_full) {
            c->warned_full = true;
            MR_LOG_WARN(c->host->name,
                        "max_series (%lld) reached: further asset/signal pairs are not exposed "
                        "(narrow `signals`/`assets`, or raise max_series)",
                        (long long)c->conf->max_series);
        }
        return NULL;
    }
    char asset[512], signal[512], labels[1100];
    const char *a = mr_names_str(c->host->names, rec->asset, NULL);
    const char *g = mr_names_str(c->host->names, rec->signal, NULL);
    struct mr_gauge *gauge = NULL;
    if (a == NULL || g == NULL || mr_metrics_label_escape(a, asset, sizeof(asset)) < 0 ||
        mr_metrics_label_escape(g, signal, sizeof(signal)) < 0) {
        return NULL;
    }
    snprintf(labels, sizeof(labels), "asset=\"%s\",signal=\"%s\"", asset, signal);
    int rc = mr_metrics_gauge(c->host->metrics, c->conf->metric,
                              "Latest value of a plant signal (output prometheus_client).", labels,
                              &gauge);
    if (rc != 0) {
        if (!c->warned_metric) {
            c->warned_metric = true;
            MR_LOG_ERROR(c->host->name,
                         "cannot expose %s{%s}: %s (is `metric` a name millrace "
                         "already uses?)",
                         c->conf->metric, labels, mr_strerror(rc));
        }
        return NULL;
    }
    if ((c->nseries + 1) * 2 > c->table_cap) {
        if (table_grow(c) != 0) {
            return NULL;
        }
        s = &c->table[slot_of(c, key)];
    }
    *s = (struct series){.key = key, .time_ns = INT64_MIN, .gauge = gauge};
    c->nseries++;
    return s;
}

static int prom_init(void *ctx, const void *conf, struct mr_output_host *host, struct mr_err *err)
{
    struct prom_ctx *c = ctx;
    c->conf = conf;
    c->host = host;
    int rc = mr_plugin_counters_register(host->metrics, &mr_output_prometheus_client, host->name,
                                         &c->counters);
    char inst[256], labels[300];
    if (rc == 0 && mr_metrics_label_escape(host->name, inst, sizeof(inst)) >= 0) {
        snprintf(labels, sizeof(labels), "output=\"%s\"", inst);
        rc = mr_metrics_counter(host->metrics, "millrace_prometheus_series_dropped_total",
                                "Records of asset/signal pairs beyond max_series, not exposed.",
                                labels, &c->dropped);
    }
    if (rc == 0 && !mr_metrics_name_valid(c->conf->metric)) {
        return MR_ERR_SET(err, MR_EINVAL,
                          "metric '%s' is not a Prometheus metric name (a letter, '_' or ':', "
                          "then letters, digits, '_' and ':')",
                          c->conf->metric);
    }
    c->sel_cap = 1024;
    c->asset_sel = mr_calloc(c->sel_cap, 1);
    c->signal_sel = mr_calloc(c->sel_cap, 1);
    c->table_cap = 1024;
    c->table = mr_calloc(c->table_cap, sizeof(*c->table));
    if (rc == 0 && (c->asset_sel == NULL || c->signal_sel == NULL || c->table == NULL)) {
        rc = MR_ENOMEM;
    }
    return rc != 0 ? MR_ERR_SET(err, rc, "cannot set up: %s", mr_strerror(rc)) : 0;
}

static int prom_write(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct prom_ctx *c = ctx;
    for (size_t i = 0; i < n; i++) {
        const struct mr_record *r = &recs[i];
        double v;
        switch (r->type) {
        case MR_VALUE_F64:
            v = r->v.f64;
            break;
        case MR_VALUE_I64:
            v = (double)r->v.i64;
            break;
        case MR_VALUE_BOOL:
            v = r->v.b ? 1 : 0;
            break;
        default:
            continue; /* strings and sample blocks have no gauge form */
        }
        mr_name_id top = r->asset > r->signal ? r->asset : r->signal;
        if (sel_reserve(c, top) != 0) {
            MR_ERR_SET(err, MR_ENOMEM, "out of memory");
            return MR_SINK_RETRY;
        }
        if (!selected(c, c->signal_sel, r->signal, &c->conf->signals) ||
            !selected(c, c->asset_sel, r->asset, &c->conf->assets)) {
            continue;
        }
        struct series *s = series_for(c, r);
        if (s == NULL || r->time_ns < s->time_ns) {
            continue; /* not exposed, or older than what the gauge shows */
        }
        s->time_ns = r->time_ns;
        mr_gauge_set(s->gauge, r->quality == MR_QUALITY_BAD ? NAN : v);
        mr_counter_add(c->counters.records_out, 1);
    }
    return MR_SINK_OK;
}

static int prom_flush(void *ctx, struct mr_err *err)
{
    (void)ctx;
    (void)err;
    return MR_SINK_OK;
}

static void prom_fini(void *ctx)
{
    struct prom_ctx *c = ctx;
    mr_free(c->asset_sel);
    mr_free(c->signal_sel);
    mr_free(c->table);
}

const struct mr_plugin mr_output_prometheus_client = {
    .kind = MR_PLUGIN_OUTPUT,
    .name = "prometheus_client",
    .help = "The latest value of selected signals and KPIs as Prometheus gauges on millrace's "
            "own /metrics (http.listen): `millrace_signal{asset=...,signal=...}`.",
    .conf = {.fields = prom_fields, .size = sizeof(struct prom_conf)},
    .ctx_size = sizeof(struct prom_ctx),
    .output = {.init = prom_init, .write = prom_write, .flush = prom_flush, .fini = prom_fini},
};
