/* Operator `supply`: supply-chain visibility. Joins, per material at a site, the inventory
 * level, the shipments on the way and the consumption, projects the inventory curve and the
 * stockout time, and alerts when the stock will not last until the next arrival plus a safety
 * margin.
 *
 *   steps:
 *     - type: supply
 *       rate_from: auto          # auto | inventory | counters | events
 *       rate_window: 8h          # consumption rate: EWMA over about this long
 *       safety_margin: 2h        # stock must last until each arrival + this
 *       horizon: 7d              # look this far ahead for a stockout
 *       uncovered_within: 1d     # optional: also warn when nothing inbound covers the next day
 *       curve_points: 12         # optional: the projected curve, 12 points over the horizon
 *
 * Inputs (names configurable), every record passes on unchanged:
 *   <material asset> inventory    number: units on hand now (authoritative, resets the level;
 *                                 a reading older than the level it would replace is ignored)
 *   <material asset> shipment     text status, tags qty, eta (RFC 3339), id (optional):
 *       inbound | confirmed | shipped | in_transit | dispatched | announced: a shipment on the
 *           way (new, or updated when its id is known); delayed | rescheduled | updated: new
 *           eta (and qty) of a known shipment: the projection changes at once;
 *       arrived | delivered | received: it came; its qty is added to the level (a following
 *           inventory reading corrects it); cancelled | canceled: it will not come.
 *       Without an id tag a status other than inbound applies to the earliest shipment of the
 *       same qty (the earliest of all when qty is missing).
 *   <material asset> consumption  number: units used since the last one (direct events)
 *   <material asset> bom          number or tag qty: units per good part, tag consumer: the
 *                                 machine asset whose good parts consume it
 *   <machine asset>  good_count   cumulative good parts of a consumer (resets handled)
 * The material asset (e.g. plant1/warehouse/steel_blank) is the key: it names site and
 * material. Records of bad or uncertain quality pass without effect; unusable values (not a
 * number, unknown status, bad eta) are ignored, logged and counted as errors.
 *
 * Consumption rate (units/s): each observation of `consumed` units over dt moves the rate by
 * 1 - exp(-dt / rate_window) toward consumed / dt (supply.h). Observations come from inventory
 * decreases between readings (arrivals in between added back; an unexplained increase is a
 * receipt we did not hear of: no observation), from good parts x bom qty, or from consumption
 * events. rate_from: auto uses the best source seen per material (events > counters >
 * inventory); counted consumption (counters, events) also lowers the level between readings,
 * and each inventory reading closes an interval of counted use (none counted: zero use, so a
 * stopped line's rate decays instead of staying at its running value).
 *
 * Projection, emitted at the time of every material record (so a delayed shipment updates it
 * at once), all on the material asset, time = that record's time:
 *   level_estimate     the level now: last level, minus rate x time since it
 *   consumption_rate   units per hour (tag source)
 *   days_of_cover      level / daily use (only while consuming)
 *   next_arrival_in    s until the earliest shipment's eta (0 when overdue; tags at, qty,
 *                      overdue)
 *   stockout_in        s until the projected stockout (tag at); the horizon with tag
 *                      beyond_horizon=true when none within it
 *   projected_inventory  curve_points records: the level at tag `at`
 *   stockout_risk      bool; tag severity none | warning | alarm
 * Curve: level - rate x t, plus each shipment's qty at max(eta, now) (an overdue shipment is
 * expected any moment). Risk, within the horizon: alarm when the stock runs out while a
 * shipment is still due (it comes too late even on time); warning when it runs out only if
 * shipments are safety_margin late (it does not last until an arrival + safety_margin), or,
 * with uncovered_within > 0, when it runs out within uncovered_within with no shipment due
 * after the stockout. A stockout after the last known arrival is reported in stockout_in but
 * raises no alert by default: beyond the inbound plan, orders not yet placed are expected to
 * cover it. An alert (signal `alert`, conventions of docs/MAINTENANCE.md, detector supply,
 * feature stockout_in) goes out when the risk rises (none -> warning -> alarm); it re-arms
 * when the risk falls.
 *
 * Determinism: outputs depend on the records in the order the pipeline delivers them (a
 * journal replay delivers the same order) and never on the wall clock.
 *
 * State: about 830 bytes per material (32 shipments), 160 per consuming machine; materials are
 * capped by max_materials (further ones pass unprojected, counted as errors). Checkpoints store
 * everything by name.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/supply_internal.h"
#include "millrace/alloc.h"

extern const struct mr_plugin mr_operator_supply;

static const struct mr_bytes *tag_of(const struct mr_record *rec, mr_name_id key)
{
    for (uint16_t i = 0; i < rec->ntags && i < MR_RECORD_MAX_TAGS; i++) {
        if (rec->tags[i].key == key) {
            return &rec->tags[i].value;
        }
    }
    return NULL;
}

static bool rec_number(const struct mr_record *rec, double *x)
{
    if (rec->type == MR_VALUE_F64) {
        *x = rec->v.f64;
    } else if (rec->type == MR_VALUE_I64) {
        *x = (double)rec->v.i64;
    } else {
        return false;
    }
    return isfinite(*x);
}

/* A number written as tag text ("500", "2.5"). */
static bool bytes_number(const struct mr_bytes *b, double *x)
{
    char buf[64];
    if (b == NULL || b->len == 0 || b->len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, b->ptr, b->len);
    buf[b->len] = '\0';
    char *end = NULL;
    double v = strtod(buf, &end);
    if (end != buf + b->len || !isfinite(v)) {
        return false;
    }
    *x = v;
    return true;
}

static bool bytes_is(const struct mr_bytes *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = b->ptr[i];
        ch = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
        if (ch != s[i]) {
            return false;
        }
    }
    return true;
}

static bool bytes_in(const struct mr_bytes *b, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (bytes_is(b, list[i])) {
            return true;
        }
    }
    return false;
}

/* FNV-1a of a shipment id; never 0 (0 means "no id"). */
static uint64_t id_hash(const struct mr_bytes *b)
{
    uint64_t h = 1469598103934665603ull;
    for (uint32_t i = 0; i < b->len; i++) {
        h = (h ^ (uint8_t)b->ptr[i]) * 1099511628211ull;
    }
    return h != 0 ? h : 1;
}

/* ---- consumption rate ---- */

static bool src_allowed(const struct supply_ctx *c, const struct supply_material *m, int src)
{
    return c->conf->rate_from == SRC_AUTO ? src >= m->src : src == c->conf->rate_from;
}

/* `consumed` units used up to time t from source src. The first observation of a source only
 * starts the interval: what came before it has no known duration. */
static void observe(struct supply_ctx *c, struct supply_material *m, int src, double consumed,
                    int64_t t)
{
    if (!src_allowed(c, m, src)) {
        return;
    }
    if (src > m->src) {
        m->src = (uint8_t)src;
        m->have_obs = 0;
    }
    if (!m->have_obs) {
        m->have_obs = 1;
        m->obs_t = t;
        m->obs_pending = 0;
        return;
    }
    if (t <= m->obs_t) {
        m->obs_pending += consumed;
        return;
    }
    m->rate = mr_supply_rate_update(m->rate, m->have_rate, m->obs_pending + consumed, t - m->obs_t,
                                    c->conf->rate_window_ns);
    m->have_rate = 1;
    m->obs_t = t;
    m->obs_pending = 0;
}

/* Counted consumption (counters, events) lowers the level when its source feeds the rate. */
static void use(struct supply_material *m, int src, double consumed, int64_t t)
{
    if (m->src != src || !m->have_level) {
        return;
    }
    m->level = m->level > consumed ? m->level - consumed : 0.0;
    m->level_t = t > m->level_t ? t : m->level_t;
}

/* ---- inputs ---- */

static int material_get(struct supply_ctx *c, mr_name_id asset, struct supply_material **out)
{
    void *v = NULL;
    int inserted = 0;
    int rc = mr_keymap_upsert(&c->materials, asset, &v, &inserted);
    if (rc != 0) {
        mr_op_warn(&c->base, "material record not projected: %s",
                   rc == MR_ETOOBIG ? "max_materials reached" : mr_strerror(rc));
        return rc;
    }
    *out = v;
    return 0;
}

static void on_inventory(struct supply_ctx *c, struct supply_material *m,
                         const struct mr_record *rec, double x)
{
    if (m->have_level && src_allowed(c, m, SRC_INVENTORY)) {
        double consumed = m->level - x;
        if (consumed >= 0) {
            observe(c, m, SRC_INVENTORY, consumed, rec->time_ns);
        } else if (m->src == SRC_INVENTORY) {
            m->obs_t = rec->time_ns; /* an unannounced receipt hides the use: skip the interval */
            m->obs_pending = 0;
        }
    } else if (!m->have_level) {
        observe(c, m, SRC_INVENTORY, 0, rec->time_ns);
    }
    if (m->src == SRC_COUNTERS || m->src == SRC_EVENTS) {
        /* Nothing counted since the last observation is a stop, not a gap: without this a
         * rate learned while running would outlive a long stop. */
        observe(c, m, m->src, 0, rec->time_ns);
    }
    m->level = x;
    m->level_t = rec->time_ns;
    m->have_level = 1;
}

static void on_consumption(struct supply_ctx *c, struct supply_material *m,
                           const struct mr_record *rec, double x)
{
    if (x < 0) {
        mr_op_warn(&c->base, "negative consumption %g ignored", x);
        return;
    }
    observe(c, m, SRC_EVENTS, x, rec->time_ns);
    use(m, SRC_EVENTS, x, rec->time_ns);
}

static void on_bom(struct supply_ctx *c, mr_name_id material, const struct mr_record *rec)
{
    double qty = 0;
    const struct mr_bytes *who = tag_of(rec, c->tag[TAG_CONSUMER]);
    if (!bytes_number(tag_of(rec, c->tag[TAG_QTY]), &qty) && !rec_number(rec, &qty)) {
        mr_op_warn(&c->base, "bom record without a number (value or tag qty) ignored");
        return;
    }
    mr_name_id machine = 0;
    if (who == NULL || who->len == 0 ||
        mr_names_intern(c->base.host->names, who->ptr, who->len, &machine) != 0) {
        mr_op_warn(&c->base, "bom record without a usable consumer tag ignored");
        return;
    }
    void *v = NULL;
    int inserted = 0;
    if (mr_keymap_upsert(&c->consumers, machine, &v, &inserted) != 0) {
        mr_op_warn(&c->base, "bom record ignored: too many consuming machines");
        return;
    }
    struct supply_consumer *k = v;
    for (uint32_t i = 0; i < k->nlinks; i++) {
        if (k->link[i].material == material) {
            k->link[i].qty = qty;
            return;
        }
    }
    if (k->nlinks == SUPPLY_MAX_LINKS) {
        mr_op_warn(&c->base, "bom record ignored: a machine consumes at most %d materials",
                   SUPPLY_MAX_LINKS);
        return;
    }
    k->link[k->nlinks++] = (struct supply_link){.material = material, .qty = qty};
}

static void on_parts(struct supply_ctx *c, const struct mr_record *rec)
{
    struct supply_consumer *k = mr_keymap_find(&c->consumers, rec->asset);
    double x = 0;
    if (k == NULL || !rec_number(rec, &x) || rec->quality != MR_QUALITY_GOOD) {
        return;
    }
    int64_t count = (int64_t)x;
    int64_t prev = k->count;
    bool had = k->have != 0;
    k->count = count;
    k->t = rec->time_ns;
    k->have = 1;
    if (!had) {
        return;
    }
    /* A counter that went down was reset (PLC restart): it counted from zero since. */
    int64_t delta = count >= prev ? count - prev : count;
    for (uint32_t i = 0; i < k->nlinks; i++) {
        struct supply_material *m = mr_keymap_find(&c->materials, k->link[i].material);
        if (m != NULL) {
            double used = (double)delta * k->link[i].qty;
            observe(c, m, SRC_COUNTERS, used, rec->time_ns);
            use(m, SRC_COUNTERS, used, rec->time_ns);
        }
    }
}

/* ---- shipments ---- */

static const char *const st_add[] = {"inbound",    "confirmed", "shipped", "in_transit",
                                     "dispatched", "announced", NULL};
static const char *const st_move[] = {"delayed", "rescheduled", "updated", NULL};
static const char *const st_arrive[] = {"arrived", "delivered", "received", NULL};
static const char *const st_cancel[] = {"cancelled", "canceled", NULL};

/* The shipment a status refers to: by id when it has one, else the earliest of the same qty
 * (of all when qty is unknown). -1 when none. */
static int ship_find(const struct supply_material *m, uint64_t id, bool have_qty, double qty)
{
    for (uint32_t i = 0; i < m->nship; i++) {
        const struct mr_supply_shipment *s = &m->ship[i];
        if (id != 0 ? s->id == id : !have_qty || fabs(s->qty - qty) <= 1e-9 * fabs(qty)) {
            return (int)i;
        }
    }
    return -1;
}

static void ship_remove(struct supply_material *m, int i)
{
    memmove(&m->ship[i], &m->ship[i + 1], (m->nship - (uint32_t)i - 1) * sizeof(m->ship[0]));
    m->nship--;
}

/* Insert keeping eta order; equal etas keep announcement order. */
static void ship_insert(struct supply_material *m, struct mr_supply_shipment s)
{
    uint32_t at = m->nship;
    while (at > 0 && m->ship[at - 1].eta > s.eta) {
        m->ship[at] = m->ship[at - 1];
        at--;
    }
    m->ship[at] = s;
    m->nship++;
}

static void on_shipment(struct supply_ctx *c, struct supply_material *m,
                        const struct mr_record *rec)
{
    if (rec->type != MR_VALUE_STRING) {
        mr_op_warn(&c->base, "shipment record whose value is not a status text ignored");
        return;
    }
    const struct mr_bytes *st = &rec->v.str;
    const struct mr_bytes *idt = tag_of(rec, c->tag[TAG_ID]);
    const struct mr_bytes *etat = tag_of(rec, c->tag[TAG_ETA]);
    uint64_t id = idt != NULL && idt->len > 0 ? id_hash(idt) : 0;
    double qty = 0;
    bool have_qty = bytes_number(tag_of(rec, c->tag[TAG_QTY]), &qty);
    int64_t eta = 0;
    bool have_eta = etat != NULL && mr_time_parse_rfc3339(etat->ptr, etat->len, &eta) == 0;
    if (etat != NULL && !have_eta) {
        mr_op_warn(&c->base, "shipment eta '%.*s' is not an RFC 3339 time: ignored",
                   (int)(etat->len > 40 ? 40 : etat->len), etat->ptr);
        return;
    }
    bool add = bytes_in(st, st_add);
    bool move = bytes_in(st, st_move);
    int i = add && id == 0 ? -1 : ship_find(m, id, have_qty, qty);
    if (add || move) {
        struct mr_supply_shipment s = {.eta = eta, .qty = qty, .id = id};
        if (i >= 0) {
            s = m->ship[i];
            s.eta = have_eta ? eta : s.eta;
            s.qty = have_qty && id != 0 ? qty : s.qty;
            ship_remove(m, i);
        } else if (!have_eta || !have_qty || qty <= 0) {
            mr_op_warn(&c->base, "shipment '%.*s' without a known shipment, eta or qty ignored",
                       (int)(st->len > 20 ? 20 : st->len), st->ptr);
            return;
        } else if (m->nship == MR_SUPPLY_MAX_SHIPMENTS) {
            mr_op_warn(&c->base, "shipment ignored: %d already on the way",
                       MR_SUPPLY_MAX_SHIPMENTS);
            return;
        }
        ship_insert(m, s);
    } else if (bytes_in(st, st_arrive)) {
        double got = have_qty ? qty : i >= 0 ? m->ship[i].qty : 0.0;
        if (i >= 0) {
            ship_remove(m, i);
        }
        m->level += got;
    } else if (bytes_in(st, st_cancel)) {
        if (i < 0) {
            mr_op_warn(&c->base, "cancelled shipment not known: ignored");
            return;
        }
        ship_remove(m, i);
    } else {
        mr_op_warn(&c->base, "unknown shipment status '%.*s' ignored",
                   (int)(st->len > 20 ? 20 : st->len), st->ptr);
    }
}

/* ---- the operator ---- */

static int supply_one(void *ctx, const struct mr_record *rec)
{
    struct supply_ctx *c = ctx;
    int rc = mr_op_buf_push(&c->out, rec);
    mr_name_id s = rec->signal;
    if (rc != 0 || rec->quality != MR_QUALITY_GOOD) {
        return rc;
    }
    if (s == c->sig[SIG_PARTS]) {
        on_parts(c, rec);
        return 0;
    }
    if (s != c->sig[SIG_INVENTORY] && s != c->sig[SIG_SHIPMENT] && s != c->sig[SIG_CONSUMPTION] &&
        s != c->sig[SIG_BOM]) {
        return 0;
    }
    double x = 0;
    if (s != c->sig[SIG_SHIPMENT] && s != c->sig[SIG_BOM] && !rec_number(rec, &x)) {
        mr_op_warn(&c->base, "%s record without a finite number ignored",
                   s == c->sig[SIG_INVENTORY] ? "inventory" : "consumption");
        return 0;
    }
    struct supply_material *m = NULL;
    if (material_get(c, rec->asset, &m) != 0) {
        return 0;
    }
    if (s == c->sig[SIG_INVENTORY]) {
        if (m->have_level && rec->time_ns < m->level_t) {
            return 0; /* late reading: a newer level is known (late data is not an error) */
        }
        on_inventory(c, m, rec, x);
    } else if (s == c->sig[SIG_CONSUMPTION]) {
        on_consumption(c, m, rec, x);
    } else if (s == c->sig[SIG_SHIPMENT]) {
        on_shipment(c, m, rec);
    } else {
        on_bom(c, rec->asset, rec);
        /* on_bom may have grown the consumers map only: m is still valid */
    }
    return m->have_level ? supply_emit(c, rec->asset, m, rec->time_ns) : 0;
}

static int supply_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct supply_ctx *c = ctx;
    return mr_op_process_each(&c->base, &c->out, recs, n, supply_one, c, err);
}

static void supply_fini(void *ctx)
{
    struct supply_ctx *c = ctx;
    mr_keymap_fini(&c->materials);
    mr_keymap_fini(&c->consumers);
    mr_op_buf_fini(&c->out);
    memset(c, 0, sizeof(*c));
}

static const char *const out_names[NSIGNALS] = {
    [OUT_STOCKOUT_IN] = "stockout_in",      [OUT_DAYS_OF_COVER] = "days_of_cover",
    [OUT_RATE] = "consumption_rate",        [OUT_LEVEL] = "level_estimate",
    [OUT_NEXT_ARRIVAL] = "next_arrival_in", [OUT_RISK] = "stockout_risk",
    [OUT_CURVE] = "projected_inventory",    [OUT_ALERT] = "alert",
};

static const char *const tag_names[NTAGS] = {
    [TAG_QTY] = "qty",           [TAG_ETA] = "eta",           [TAG_ID] = NULL,
    [TAG_CONSUMER] = "consumer", [TAG_UNIT] = "unit",         [TAG_AT] = "at",
    [TAG_OVERDUE] = "overdue",   [TAG_SOURCE] = "source",     [TAG_BEYOND] = "beyond_horizon",
    [TAG_FEATURE] = "feature",   [TAG_VALUE] = "value",       [TAG_THRESHOLD] = "threshold",
    [TAG_DETECTOR] = "detector", [TAG_SEVERITY] = "severity", [TAG_WSTART] = "window_start",
    [TAG_WEND] = "window_end",
};

static int intern(struct supply_ctx *c, const char *s, mr_name_id *id, struct mr_err *err)
{
    int rc = mr_names_intern(c->base.host->names, s, strlen(s), id);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot intern '%s': %s", s, mr_strerror(rc));
    }
    return 0;
}

static int supply_init(void *ctx, const void *conf, struct mr_operator_host *host,
                       struct mr_err *err)
{
    struct supply_ctx *c = ctx;
    const struct supply_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    int rc = mr_op_base_init(&c->base, &mr_operator_supply, host, err);
    if (rc != 0) {
        return rc;
    }
    if (mr_keymap_init(&c->materials, sizeof(struct supply_material),
                       (uint32_t)cf->max_materials) != 0 ||
        mr_keymap_init(&c->consumers, sizeof(struct supply_consumer),
                       (uint32_t)cf->max_materials) != 0 ||
        mr_op_buf_init(&c->out, &c->base, 0) != 0) {
        supply_fini(c);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    const char *in[] = {cf->inventory_signal, cf->shipment_signal, cf->consumption_signal,
                        cf->bom_signal, cf->parts_signal};
    for (int i = 0; i < NSIGNALS && rc == 0; i++) {
        rc = intern(c, i <= SIG_PARTS ? in[i] : out_names[i], &c->sig[i], err);
    }
    for (int i = 0; i < NTAGS && rc == 0; i++) {
        rc = intern(c, i == TAG_ID ? cf->id_tag : tag_names[i], &c->tag[i], err);
    }
    if (rc != 0) {
        supply_fini(c);
    }
    return rc;
}

/* ---- configuration ---- */

static const char *const rate_from_names[] = {"auto", "inventory", "counters", "events", NULL};

#define F(m) offsetof(struct supply_conf, m)

static const struct mr_field supply_fields[] = {
    {.name = "rate_from",
     .type = MR_FIELD_ENUM,
     .offset = F(rate_from),
     .def = "auto",
     .values = rate_from_names,
     .help = "Where the consumption rate comes from: inventory (drops between inventory "
             "readings), counters (good parts of the consuming machine x the bill of "
             "materials), events (consumption records), or auto: the best one each material "
             "has (events, then counters, then inventory)."},
    {.name = "rate_window",
     .type = MR_FIELD_DURATION,
     .offset = F(rate_window_ns),
     .def = "8h",
     .min = "1s",
     .help = "How far back the consumption rate looks: an exponentially weighted average in "
             "which use this long ago weighs 1/e (37 %) of use now. Shorter reacts faster to a "
             "change of production, longer ignores breaks and shift changes."},
    {.name = "safety_margin",
     .type = MR_FIELD_DURATION,
     .offset = F(safety_margin_ns),
     .def = "2h",
     .help = "The stock must last until each shipment's eta plus this much, to absorb late "
             "trucks: a stockout projected while a shipment is due raises an alarm, one that "
             "happens only if shipments are this late a warning."},
    {.name = "horizon",
     .type = MR_FIELD_DURATION,
     .offset = F(horizon_ns),
     .def = "7d",
     .min = "1m",
     .help = "How far ahead a stockout is looked for (and the curve drawn). A stockout later "
             "than this is reported as beyond_horizon and raises no alert."},
    {.name = "uncovered_within",
     .type = MR_FIELD_DURATION,
     .offset = F(uncovered_within_ns),
     .def = "0",
     .help = "Also warn when the stock runs out within this time and no shipment is due after "
             "the stockout to end it (time to reorder). 0: only stockouts before a confirmed "
             "arrival (plus safety_margin) alert."},
    {.name = "curve_points",
     .type = MR_FIELD_INT,
     .offset = F(curve_points),
     .def = "0",
     .min = "0",
     .max = "48",
     .help = "Also emit the projected inventory at this many evenly spaced times over the "
             "horizon (records projected_inventory, tag at), e.g. for a chart. 0: none."},
    {.name = "inventory_signal",
     .type = MR_FIELD_STRING,
     .offset = F(inventory_signal),
     .def = "inventory",
     .help = "Signal of a material asset carrying the units on hand."},
    {.name = "shipment_signal",
     .type = MR_FIELD_STRING,
     .offset = F(shipment_signal),
     .def = "shipment",
     .help = "Signal of a material asset carrying shipment status texts (tags qty, eta, id)."},
    {.name = "consumption_signal",
     .type = MR_FIELD_STRING,
     .offset = F(consumption_signal),
     .def = "consumption",
     .help = "Signal of a material asset carrying units used since the previous one."},
    {.name = "bom_signal",
     .type = MR_FIELD_STRING,
     .offset = F(bom_signal),
     .def = "bom",
     .help = "Signal of a material asset carrying the bill of materials: units per good part "
             "(value or tag qty) of the machine named by tag consumer."},
    {.name = "parts_signal",
     .type = MR_FIELD_STRING,
     .offset = F(parts_signal),
     .def = "good_count",
     .help = "Cumulative good-part counter of the consuming machines."},
    {.name = "id_tag",
     .type = MR_FIELD_STRING,
     .offset = F(id_tag),
     .def = "id",
     .help = "Tag that identifies a shipment (e.g. the ASN or delivery number), so status "
             "changes find it. Without it they apply to the earliest shipment of the same qty."},
    {.name = "max_materials",
     .type = MR_FIELD_INT,
     .offset = F(max_materials),
     .def = "100000",
     .min = "1",
     .max = "10000000",
     .help = "Most materials (and consuming machines) tracked; records of further ones pass "
             "unprojected and count as errors."},
    {0},
};

static void supply_check(void *conf, struct mr_config_check *chk)
{
    const struct supply_conf *c = conf;
    const char *names[] = {c->inventory_signal, c->shipment_signal, c->consumption_signal,
                           c->bom_signal,       c->parts_signal,    c->id_tag};
    const char *keys[] = {"inventory_signal", "shipment_signal", "consumption_signal",
                          "bom_signal",       "parts_signal",    "id_tag"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i] == NULL || names[i][0] == '\0') {
            mr_config_check_fail(chk, keys[i], "must not be empty");
        }
    }
    if (c->uncovered_within_ns > c->horizon_ns) {
        mr_config_check_fail(chk, "uncovered_within", "must not be longer than horizon");
    }
    if (c->safety_margin_ns >= c->horizon_ns) {
        mr_config_check_fail(chk, "safety_margin",
                             "must be shorter than horizon (the stockout search window)");
    }
}

const struct mr_plugin mr_operator_supply = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "supply",
    .help = "Supply-chain visibility per material: joins inventory, inbound shipments and "
            "consumption, projects the inventory curve and stockout time, and alerts when the "
            "stock will not last until the next arrival plus a safety margin.",
    .conf = {.fields = supply_fields, .size = sizeof(struct supply_conf), .check = supply_check},
    .ctx_size = sizeof(struct supply_ctx),
    .op = {.init = supply_init,
           .process = supply_process,
           .snapshot = supply_snapshot,
           .restore = supply_restore,
           .fini = supply_fini},
};
