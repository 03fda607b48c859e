/* Operator `energy`: configuration, instance life and per-machine entries (energy.c has the
 * semantics and the record handling, energy_state.c the checkpoints). */
#include <stdio.h>
#include <string.h>

#include "analytics/energy_internal.h"
#include "millrace/alloc.h"

extern const struct mr_plugin mr_operator_energy;

static const char *const from_names[] = {"counter", "power", NULL};

uint32_t mr_energy_parent(struct en_ctx *c, mr_name_id asset, int64_t level)
{
    size_t len = 0;
    const char *path = mr_names_str(c->base.host->names, asset, &len);
    size_t plen = mr_op_path_prefix(path, len, level);
    mr_name_id id = 0;
    if (plen == 0) {
        return 0;
    }
    void *v = NULL;
    int inserted = 0;
    int rc = mr_names_intern(c->base.host->names, path, plen, &id);
    rc = rc == 0 ? mr_keymap_upsert(&c->parents, id, &v, &inserted) : rc;
    if (rc != 0) {
        mr_op_warn(&c->base, "line/site of %.*s not tracked: %s (max_machines %lld)", (int)len,
                   path, mr_strerror(rc), (long long)c->conf->max_machines);
        return 0;
    }
    struct en_parent *p = v;
    if (inserted) {
        mr_energy_series_init(&p->ser);
        p->asset = id;
        p->fc_next = EN_NONE;
    }
    return (uint32_t)(((uint8_t *)v - 8 - c->parents.entries) / c->parents.stride) + 1;
}

static bool is_deferrable(const struct en_conf *cf, const char *path, size_t len)
{
    for (size_t i = 0; i < cf->deferrable.n; i++) {
        const char *d = cf->deferrable.items[i];
        size_t dl = strlen(d);
        bool prefix = dl > 0 && d[dl - 1] == '/';
        if ((dl == len || (prefix && dl < len)) && memcmp(d, path, dl) == 0) {
            return true;
        }
    }
    return false;
}

struct en_machine *mr_energy_machine(struct en_ctx *c, mr_name_id asset)
{
    struct en_machine *m = mr_keymap_find(&c->machines, asset);
    if (m != NULL) {
        return m;
    }
    void *v = NULL;
    int inserted = 0;
    int rc = mr_keymap_upsert(&c->machines, asset, &v, &inserted);
    if (rc != 0) {
        mr_op_warn(&c->base, "machine not tracked: %s (max_machines %lld)", mr_strerror(rc),
                   (long long)c->conf->max_machines);
        return NULL;
    }
    m = v;
    mr_energy_series_init(&m->ser);
    m->last_t = EN_NONE;
    m->good_t = EN_NONE;
    m->state_since = EN_NONE;
    size_t len = 0;
    const char *path = mr_names_str(c->base.host->names, asset, &len);
    m->deferrable = path != NULL && is_deferrable(c->conf, path, len);
    /* Parents are created after the machine: their inserts do not move machine entries. */
    m->line = mr_energy_parent(c, asset, c->conf->line_level);
    m->site = mr_energy_parent(c, asset, c->conf->site_level);
    if (m->site != 0 && m->site == m->line) {
        m->site = 0;
    }
    return m;
}

static void energy_fini(void *ctx)
{
    struct en_ctx *c = ctx;
    mr_free(c->tariff);
    mr_keymap_fini(&c->machines);
    mr_keymap_fini(&c->parents);
    mr_op_buf_fini(&c->out);
    memset(c, 0, sizeof(*c));
}

static int intern(struct en_ctx *c, const char *s, mr_name_id *id)
{
    return mr_names_intern(c->base.host->names, s, strlen(s), id);
}

static int intern_names(struct en_ctx *c, struct mr_err *err)
{
    const struct en_conf *cf = c->conf;
    int rc = intern(c, cf->power_signal, &c->power_id);
    rc = rc == 0 ? intern(c, cf->energy_signal, &c->energy_id) : rc;
    rc = rc == 0 ? intern(c, cf->good_signal, &c->good_id) : rc;
    rc = rc == 0 ? intern(c, cf->state_signal, &c->state_id) : rc;
    for (int i = 0; i < EN_NSIG && rc == 0; i++) {
        rc = intern(c, mr_energy_sig_names[i], &c->sig[i]);
    }
    for (int i = 0; i < EN_NTAG && rc == 0; i++) {
        rc = intern(c, mr_energy_tag_names[i], &c->tag[i]);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot intern names: %s", mr_strerror(rc));
    }
    return 0;
}

static int energy_init(void *ctx, const void *conf, struct mr_operator_host *host,
                       struct mr_err *err)
{
    struct en_ctx *c = ctx;
    const struct en_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    int rc = mr_op_base_init(&c->base, &mr_operator_energy, host, err);
    if (rc != 0) {
        return rc;
    }
    /* Parents: at most one line and one site per machine. */
    uint32_t max = (uint32_t)cf->max_machines;
    c->tariff = mr_calloc(1, sizeof(*c->tariff));
    if (c->tariff == NULL || mr_keymap_init(&c->machines, sizeof(struct en_machine), max) != 0 ||
        mr_keymap_init(&c->parents, sizeof(struct en_parent), max) != 0 ||
        mr_op_buf_init(&c->out, &c->base, 0) != 0) {
        energy_fini(c);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    rc = mr_tariff_compile(c->tariff, cf->tariff.items, cf->tariff.n, cf->price,
                           cf->utc_offset_min * MR_MIN_NS, err);
    rc = rc == 0 ? intern_names(c, err) : rc;
    if (rc != 0) {
        energy_fini(c);
    }
    return rc;
}

static void energy_check(void *conf, struct mr_config_check *chk)
{
    const struct en_conf *c = conf;
    int64_t T = c->interval_ns;
    int64_t F = c->forecast_every_ns;
    if (T > 0 && MR_DAY_NS % T != 0) {
        mr_config_check_fail(chk, "interval", "must divide a day (e.g. 5m, 15m, 30m, 1h)");
    }
    if (T > 0 && (c->utc_offset_min * MR_MIN_NS) % T != 0) {
        mr_config_check_fail(chk, "utc_offset_min",
                             "must be a whole number of intervals (%lld min), so that days start "
                             "on an interval boundary",
                             (long long)(T / MR_MIN_NS));
    }
    if (F > 0 && (T % F != 0 || T / F > EN_MAX_BINS)) {
        mr_config_check_fail(chk, "forecast_every",
                             "must divide the interval into at most %d steps", EN_MAX_BINS);
    }
    struct mr_err err = {0};
    struct mr_tariff *t = mr_calloc(1, sizeof(*t));
    if (t != NULL && mr_tariff_compile(t, c->tariff.items, c->tariff.n, c->price, 0, &err) != 0) {
        mr_config_check_fail(chk, "tariff", "%s", err.msg);
    }
    mr_free(t);
}

#define F(member) offsetof(struct en_conf, member)

static const struct mr_field energy_fields[] = {
    {.name = "energy_from",
     .type = MR_FIELD_ENUM,
     .offset = F(energy_from),
     .def = "counter",
     .values = from_names,
     .help = "Where energy comes from: counter (differences of the kWh meter reading, exact "
             "even with gaps) or power (integrate the kW values over time, trapezoid rule)."},
    {.name = "power_signal",
     .type = MR_FIELD_STRING,
     .offset = F(power_signal),
     .def = "power",
     .help = "Signal with the machine's electrical power in kW."},
    {.name = "energy_signal",
     .type = MR_FIELD_STRING,
     .offset = F(energy_signal),
     .def = "energy",
     .help = "Signal with the machine's energy meter reading in kWh (energy_from: counter)."},
    {.name = "good_signal",
     .type = MR_FIELD_STRING,
     .offset = F(good_signal),
     .def = "good_count",
     .help = "Counter of good parts (integer), for energy per good part."},
    {.name = "state_signal",
     .type = MR_FIELD_STRING,
     .offset = F(state_signal),
     .def = "state",
     .help = "Text signal with the machine state (RUNNING, IDLE, PLANNED_STOP, ...)."},
    {.name = "rollover",
     .type = MR_FIELD_DOUBLE,
     .offset = F(rollover),
     .def = "0",
     .min = "0",
     .help = "Value at which the kWh meter wraps to 0 (e.g. 1000000 for a 6-digit meter); 0: "
             "it never wraps, so any decrease is a meter reset."},
    {.name = "max_gap",
     .type = MR_FIELD_DURATION,
     .offset = F(max_gap_ns),
     .def = "5m",
     .min = "1ms",
     .help = "energy_from: power: two power values further apart than this are not "
             "integrated (data is missing; guessing would invent energy)."},
    {.name = "interval",
     .type = MR_FIELD_DURATION,
     .offset = F(interval_ns),
     .def = "15m",
     .min = "1m",
     .max = "1d",
     .help = "Demand interval, aligned to the clock: energy, cost and demand (average kW) are "
             "reported per interval; the utility bills the highest interval demand."},
    {.name = "grace",
     .type = MR_FIELD_DURATION,
     .offset = F(grace_ns),
     .def = "1m",
     .help = "How long after an interval ends (in event time) its results wait for late "
             "data before they are emitted."},
    {.name = "forecast_every",
     .type = MR_FIELD_DURATION,
     .offset = F(forecast_every_ns),
     .def = "1m",
     .help = "Forecast the running interval's demand this often (average power so far); "
             "0: no forecast."},
    {.name = "tariff",
     .type = MR_FIELD_SECTION_LIST,
     .offset = F(tariff),
     .section = &mr_tariff_period_section,
     .help = "Time-of-use periods with their price per kWh, e.g. [{days: [weekdays], from: "
             "\"07:00\", to: \"21:00\", price: 0.32}]; later periods override earlier ones."},
    {.name = "price",
     .type = MR_FIELD_DOUBLE,
     .offset = F(price),
     .def = "0",
     .min = "0",
     .help = "Price per kWh at times no tariff period covers."},
    {.name = "currency",
     .type = MR_FIELD_STRING,
     .offset = F(currency),
     .help = "Currency of the prices (e.g. EUR), added as tag currency to cost results."},
    {.name = "utc_offset_min",
     .type = MR_FIELD_INT,
     .offset = F(utc_offset_min),
     .def = "0",
     .min = "-840",
     .max = "840",
     .help = "Local time of the plant in minutes ahead of UTC (60 for CET), for the tariff "
             "periods and the start of days. Fixed: no daylight-saving change."},
    {.name = "line_level",
     .type = MR_FIELD_INT,
     .offset = F(line_level),
     .def = "3",
     .min = "0",
     .max = "16",
     .help = "Path segments of the line asset: 3 sums plant1/area/line1/press1 into "
             "plant1/area/line1. 0: no line results."},
    {.name = "site_level",
     .type = MR_FIELD_INT,
     .offset = F(site_level),
     .def = "1",
     .min = "0",
     .max = "16",
     .help = "Path segments of the site asset: 1 sums every machine under plant1 into plant1. "
             "0: no site results."},
    {.name = "idle_states",
     .type = MR_FIELD_STRING_LIST,
     .offset = F(idle_states),
     .def = "[IDLE, PLANNED_STOP]",
     .help = "Machine states in which energy counts as idle consumption."},
    {.name = "idle_kw",
     .type = MR_FIELD_DOUBLE,
     .offset = F(idle_kw),
     .def = "0",
     .min = "0",
     .help = "Alert when a machine draws more than this average power (kW) while idle; 0: no "
             "idle alerts."},
    {.name = "idle_min",
     .type = MR_FIELD_DURATION,
     .offset = F(idle_min_ns),
     .def = "5m",
     .help = "How long a machine must have been idle before its idle consumption is judged."},
    {.name = "spike_states",
     .type = MR_FIELD_STRING_LIST,
     .offset = F(spike_states),
     .def = "[RUNNING]",
     .help = "States in which power spikes are looked for (and the baseline learned); empty: "
             "all states."},
    {.name = "spike_window",
     .type = MR_FIELD_INT,
     .offset = F(spike_window),
     .def = "60",
     .min = "2",
     .max = "1000000",
     .help = "Power values the machine's baseline remembers (about; exponentially weighted); "
             "spikes are judged after this many values."},
    {.name = "spike_sigma",
     .type = MR_FIELD_DOUBLE,
     .offset = F(spike_sigma),
     .def = "4",
     .min = "0",
     .help = "Alert when power is this many standard deviations above the machine's own "
             "baseline; 0: no spike alerts."},
    {.name = "spike_min_kw",
     .type = MR_FIELD_DOUBLE,
     .offset = F(spike_min_kw),
     .def = "0.5",
     .min = "0",
     .help = "A spike must also be at least this many kW above the baseline (a very steady "
             "machine has a tiny standard deviation)."},
    {.name = "spike_settle",
     .type = MR_FIELD_DURATION,
     .offset = F(spike_settle_ns),
     .def = "30s",
     .help = "Ignore power this long after the machine entered a spike state (start-up "
             "inrush is no spike)."},
    {.name = "deferrable",
     .type = MR_FIELD_STRING_LIST,
     .offset = F(deferrable),
     .help = "Loads that could run at another time of day (chillers, compressors filling "
             "tanks, batch ovens): asset paths, or prefixes ending in '/'. Each day they get a "
             "suggestion with the cost saved by running in the cheapest tariff period."},
    {.name = "min_saving",
     .type = MR_FIELD_DOUBLE,
     .offset = F(min_saving),
     .def = "0.01",
     .min = "0",
     .help = "Smallest daily saving (in currency) worth a suggestion."},
    {.name = "pass_through",
     .type = MR_FIELD_BOOL,
     .offset = F(pass_through),
     .def = "true",
     .help = "Pass the input records on, followed by the results (false: emit the results only)."},
    {.name = "max_machines",
     .type = MR_FIELD_INT,
     .offset = F(max_machines),
     .def = "100000",
     .min = "1",
     .max = "10000000",
     .help = "Most machines tracked (and lines plus sites); records of further machines pass "
             "on uncounted and count as errors."},
    {0},
};

const struct mr_plugin mr_operator_energy = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "energy",
    .help = "Energy per machine, line and site on event time: kWh from meters (with rollover) "
            "or by integrating kW, cost under a time-of-use tariff, demand per interval with a "
            "forecast, energy per good part, idle consumption and power spike alerts, and "
            "daily suggestions to move deferrable loads off-peak.",
    .conf = {.fields = energy_fields, .size = sizeof(struct en_conf), .check = energy_check},
    .ctx_size = sizeof(struct en_ctx),
    .op = {.init = energy_init,
           .process = mr_energy_process,
           .advance = mr_energy_advance,
           .snapshot = mr_energy_snapshot,
           .restore = mr_energy_restore,
           .fini = energy_fini},
};
