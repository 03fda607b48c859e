/* Operator `energy`: power, energy, cost and demand per machine, line and site, on event time.
 *
 *   steps:
 *     - type: energy
 *       energy_from: counter        # counter: the kWh meter (signal energy); power: integrate kW
 *       rollover: 1000000           # the meter wraps to 0 after 999999.99 kWh (0: never)
 *       interval: 15m               # demand interval, aligned to the clock
 *       forecast_every: 1m          # forecast of the running interval's demand
 *       utc_offset_min: 60          # local time of the tariff and of days (no DST)
 *       currency: EUR
 *       price: 0.18                 # per kWh outside the periods below
 *       tariff:
 *         - {days: [weekdays], from: "07:00", to: "21:00", price: 0.32}
 *         - {days: [all], from: "22:00", to: "06:00", price: 0.11}
 *       line_level: 3               # plant1/area/line1/press1 -> line plant1/area/line1
 *       site_level: 1               #                            -> site plant1
 *       idle_kw: 5                  # alert: more than 5 kW on average while IDLE/PLANNED_STOP
 *       idle_min: 10m               #   for at least 10 min
 *       spike_sigma: 4              # alert: power 4 sigma above the machine's own baseline
 *       deferrable: [plant1/utilities/]   # loads that could run in the cheapest period
 *
 * Energy per machine. energy_from: counter takes the differences of the kWh meter (signal
 * `energy`); a decrease by more than half the rollover value is a wrap (delta = rollover -
 * last + value), any other decrease a meter reset (the new value is the energy since the
 * reset). The energy between two readings is spread evenly over the time between them (the
 * power is taken as constant), so it splits exactly at tariff, forecast and interval
 * boundaries. energy_from: power integrates the power signal (kW) with the trapezoid rule on
 * event time; a gap longer than max_gap is not integrated (no data, no guess). Records older
 * than the machine's last sample are late: counted, not integrated.
 *
 * Per demand interval [s, s + interval) (aligned to the epoch, so to the clock), records at
 * time s + interval with tags window_start, window_end (ns): energy.kwh, energy.cost (the
 * energy of each minute at that minute's tariff price; tag currency), demand.kw (kWh / the
 * interval in hours: the demand a utility bills), energy.idle_kwh (drawn while the state was
 * in idle_states), energy.per_good_part (kWh / good parts counted in the interval from the
 * good_count counter, when there were any). Lines and sites get the same records with sums
 * of their machines' energy (never averages of ratios). A machine's interval is emitted when
 * its watermark passes the end + grace; a parent's when the pipeline-wide watermark does.
 * Energy for an interval already emitted (late data, a very long counter gap) is booked to the
 * first open interval, so totals stay exact.
 *
 * Forecast: demand.forecast_kw every forecast_every inside the running interval = the energy
 * so far / the time so far: the average power so far extrapolated to the whole interval (what
 * the interval's demand will be if the load stays as it was). Machines: when their data
 * passes the step; parents: when the pipeline-wide watermark passes it + grace.
 *
 * Per local day (after its last interval): energy.day_kwh, energy.day_cost, demand.peak_kw
 * (the highest interval demand; tag peak_start) and energy.day_per_good_part, time = day end.
 * For each deferrable machine whose day cost at its actual times exceeds the cost of the same
 * energy at the cheapest price of the week by at least min_saving: energy.suggestion, a
 * sentence with tags cost_saved and price_to.
 *
 * Alerts (signal alert, MAINTENANCE.md conventions): idle consumption (detector energy.idle):
 * once per idle episode, when the machine has been in an idle state for idle_min and its
 * average power in the episode is above idle_kw. Spikes (detector energy.spike): a power value
 * more than spike_sigma standard deviations and spike_min_kw above the machine's baseline:
 * the exponentially weighted mean and variance of its power over about spike_window values,
 * learned and scored only in spike_states after spike_settle (start-up inrush is no spike);
 * one alert per excursion, spike values are not learned.
 *
 * State: about 330 bytes per machine (700 with the key map's slack, measured by
 * bench/energy_throughput) and 2.3 KiB per line or site (forecast steps); machines and parents
 * are each capped by max_machines (further ones are counted as errors, their records pass).
 * Checkpoints store everything by asset name (energy_state.c).
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "analytics/energy_internal.h"
#include "millrace/alloc.h"

#define KWH_NS 3.6e12 /* ns in an hour: kW * ns / KWH_NS = kWh */

const char *const mr_energy_sig_names[EN_NSIG] = {"energy.kwh",
                                                  "energy.cost",
                                                  "demand.kw",
                                                  "energy.idle_kwh",
                                                  "energy.per_good_part",
                                                  "demand.forecast_kw",
                                                  "energy.day_kwh",
                                                  "energy.day_cost",
                                                  "demand.peak_kw",
                                                  "energy.day_per_good_part",
                                                  "energy.suggestion",
                                                  "alert"};
const char *const mr_energy_tag_names[EN_NTAG] = {
    "window_start", "window_end", "currency", "feature",    "value",      "baseline",
    "threshold",    "detector",   "severity", "peak_start", "cost_saved", "price_to"};

/* ---- output ---- */

static void set_tag(struct en_ctx *c, int i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_tag(struct en_ctx *c, int i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->tagbuf[i], sizeof(c->tagbuf[i]), fmt, ap);
    va_end(ap);
}

/* A record at t with value v (or the sentence in c->text when signal is a text one) and the
 * listed tags, whose values are c->tagbuf (flush before they are reused). */
static int push(struct en_ctx *c, mr_name_id asset, int sig, int64_t t, double v, const int *tags,
                int ntags)
{
    struct mr_record r = {
        .time_ns = t,
        .asset = asset,
        .signal = c->sig[sig],
        .type = MR_VALUE_F64,
        .quality = MR_QUALITY_GOOD,
        .v.f64 = v,
    };
    if (sig == EN_SIG_ALERT || sig == EN_SIG_SUGGESTION) {
        r.type = MR_VALUE_STRING;
        r.v.str = (struct mr_bytes){.ptr = c->text, .len = (uint32_t)strlen(c->text)};
    }
    for (int i = 0; i < ntags; i++) {
        if (tags[i] == TAG_CURRENCY && c->conf->currency == NULL) {
            continue;
        }
        const char *s = tags[i] == TAG_CURRENCY ? c->conf->currency : c->tagbuf[tags[i]];
        r.tags[r.ntags++] = (struct mr_tag){.key = c->tag[tags[i]],
                                            .value = {.ptr = s, .len = (uint32_t)strlen(s)}};
    }
    return mr_op_buf_push(&c->out, &r);
}

static int emit_interval(struct en_ctx *c, mr_name_id asset, int64_t s, const struct en_acc *a)
{
    int64_t e = s + c->conf->interval_ns;
    const int w[] = {TAG_WSTART, TAG_WEND};
    const int wc[] = {TAG_WSTART, TAG_WEND, TAG_CURRENCY};
    set_tag(c, TAG_WSTART, "%" PRId64, s);
    set_tag(c, TAG_WEND, "%" PRId64, e);
    int rc = push(c, asset, EN_SIG_KWH, e, a->kwh, w, 2);
    rc = rc == 0 ? push(c, asset, EN_SIG_COST, e, a->cost, wc, 3) : rc;
    rc = rc == 0 ? push(c, asset, EN_SIG_DEMAND, e, a->kwh * KWH_NS / (double)(e - s), w, 2) : rc;
    rc = rc == 0 ? push(c, asset, EN_SIG_IDLE_KWH, e, a->idle_kwh, w, 2) : rc;
    if (rc == 0 && a->good > 0) {
        rc = push(c, asset, EN_SIG_PER_PART, e, a->kwh / a->good, w, 2);
    }
    return rc == 0 ? mr_op_buf_flush(&c->out) : rc;
}

static int emit_suggestion(struct en_ctx *c, mr_name_id asset, int64_t end,
                           const struct en_series *ser)
{
    double cheap = c->tariff->min_price;
    double saved = ser->day.cost - ser->day.kwh * cheap;
    if (!(saved >= c->conf->min_saving) || ser->day.kwh <= 0) {
        return 0;
    }
    const char *cur = c->conf->currency != NULL ? c->conf->currency : "";
    size_t len = 0;
    const char *name = mr_names_str(c->base.host->names, asset, &len);
    snprintf(c->text, sizeof(c->text),
             "move %.*s (%.6g kWh, cost %.2f %s today) to the cheapest tariff period "
             "(%.4g %s/kWh): saves %.2f %s per day",
             (int)(len > 120 ? 120 : len), name, ser->day.kwh, ser->day.cost, cur, cheap, cur,
             saved, cur);
    set_tag(c, TAG_COST_SAVED, "%.6g", saved);
    set_tag(c, TAG_PRICE_TO, "%.6g", cheap);
    const int t[] = {TAG_WSTART, TAG_WEND, TAG_COST_SAVED, TAG_PRICE_TO, TAG_CURRENCY};
    return push(c, asset, EN_SIG_SUGGESTION, end, 0, t, 5);
}

/* The day summed in ser ended: its records, then a fresh day. */
static int emit_day(struct en_ctx *c, mr_name_id asset, struct en_series *ser, bool deferrable)
{
    int64_t end = ser->day_s + MR_DAY_NS;
    const int w[] = {TAG_WSTART, TAG_WEND};
    const int wc[] = {TAG_WSTART, TAG_WEND, TAG_CURRENCY};
    const int wp[] = {TAG_WSTART, TAG_WEND, TAG_PEAK_START};
    set_tag(c, TAG_WSTART, "%" PRId64, ser->day_s);
    set_tag(c, TAG_WEND, "%" PRId64, end);
    set_tag(c, TAG_PEAK_START, "%" PRId64, ser->peak_s);
    int rc = push(c, asset, EN_SIG_DAY_KWH, end, ser->day.kwh, w, 2);
    rc = rc == 0 ? push(c, asset, EN_SIG_DAY_COST, end, ser->day.cost, wc, 3) : rc;
    rc = rc == 0 ? push(c, asset, EN_SIG_PEAK, end, ser->peak_kw, wp, 3) : rc;
    if (rc == 0 && ser->day.good > 0) {
        rc = push(c, asset, EN_SIG_DAY_PER_PART, end, ser->day.kwh / ser->day.good, w, 2);
    }
    if (rc == 0 && deferrable) {
        rc = emit_suggestion(c, asset, end, ser);
    }
    rc = rc == 0 ? mr_op_buf_flush(&c->out) : rc;
    memset(&ser->day, 0, sizeof(ser->day));
    ser->day_s = EN_NONE;
    ser->peak_kw = 0;
    ser->peak_s = EN_NONE;
    return rc;
}

/* Emit slot k of ser and free it; sum it into the day (emitting days that ended). */
static int slot_close(struct en_ctx *c, mr_name_id asset, struct en_series *ser, int k,
                      bool deferrable)
{
    struct en_slot *sl = &ser->slot[k];
    int64_t s = sl->s;
    int64_t e = s + c->conf->interval_ns;
    int rc = emit_interval(c, asset, s, &sl->acc);
    if (rc == 0 && ser->day_s != EN_NONE && s >= ser->day_s + MR_DAY_NS) {
        rc = emit_day(c, asset, ser, deferrable);
    }
    if (ser->day_s == EN_NONE) {
        ser->day_s = mr_tariff_day_start(c->tariff, s);
    }
    ser->day.kwh += sl->acc.kwh;
    ser->day.cost += sl->acc.cost;
    ser->day.idle_kwh += sl->acc.idle_kwh;
    ser->day.good += sl->acc.good;
    double kw = sl->acc.kwh * KWH_NS / (double)c->conf->interval_ns;
    if (ser->peak_s == EN_NONE || kw > ser->peak_kw) {
        ser->peak_kw = kw;
        ser->peak_s = s;
    }
    ser->closed_until = ser->closed_until > e ? ser->closed_until : e;
    sl->s = EN_NONE;
    memset(&sl->acc, 0, sizeof(sl->acc));
    if (rc == 0 && e == ser->day_s + MR_DAY_NS) {
        rc = emit_day(c, asset, ser, deferrable);
    }
    return rc;
}

/* Emit every open interval of ser that ends at or before `limit`, oldest first. */
static int series_close(struct en_ctx *c, mr_name_id asset, struct en_series *ser, int64_t limit,
                        bool deferrable)
{
    for (;;) {
        int best = -1;
        for (int k = 0; k < EN_SLOTS; k++) {
            const struct en_slot *sl = &ser->slot[k];
            if (sl->s != EN_NONE && sl->s + c->conf->interval_ns <= limit &&
                (best < 0 || sl->s < ser->slot[best].s)) {
                best = k;
            }
        }
        if (best < 0) {
            return 0;
        }
        int rc = slot_close(c, asset, ser, best, deferrable);
        if (rc != 0) {
            return rc;
        }
    }
}

void mr_energy_series_init(struct en_series *ser)
{
    memset(ser, 0, sizeof(*ser));
    ser->closed_until = EN_NONE;
    ser->day_s = EN_NONE;
    ser->peak_s = EN_NONE;
    for (int k = 0; k < EN_SLOTS; k++) {
        ser->slot[k].s = EN_NONE;
    }
}

/* The slot booking energy of interval *s (moved to the first open interval when *s was
 * emitted already); an older interval in the way is emitted first. NULL on an emit error. */
static struct en_slot *series_slot(struct en_ctx *c, mr_name_id asset, struct en_series *ser,
                                   int64_t *s, bool deferrable, int *rc, bool *fresh)
{
    int64_t T = c->conf->interval_ns;
    if (ser->closed_until != EN_NONE && *s < ser->closed_until) {
        *s = ser->closed_until;
    }
    int k = (int)(((mr_floor_div(*s, T) % EN_SLOTS) + EN_SLOTS) % EN_SLOTS);
    struct en_slot *sl = &ser->slot[k];
    if (sl->s != EN_NONE && sl->s != *s) {
        *rc = series_close(c, asset, ser, *s - (EN_SLOTS - 1) * T, deferrable);
        if (*rc != 0) {
            return NULL;
        }
    }
    *fresh = sl->s == EN_NONE;
    if (*fresh) {
        sl->s = *s;
    }
    return sl;
}

/* ---- booking energy ---- */

/* One piece of energy [a, b) inside one interval, one tariff minute run and one state. */
struct piece {
    int64_t a;
    int64_t b;
    int64_t s; /* its interval */
    double kwh;
    double price;
    bool idle;
};

static int parent_book(struct en_ctx *c, uint32_t idx, const struct piece *pc)
{
    struct en_parent *p = mr_keymap_value_at(&c->parents, idx - 1);
    int64_t s = pc->s;
    int rc = 0;
    bool fresh = false;
    struct en_slot *sl = series_slot(c, p->asset, &p->ser, &s, false, &rc, &fresh);
    if (sl == NULL) {
        return rc;
    }
    if (fresh) {
        memset(p->bins[sl - p->ser.slot], 0, sizeof(p->bins[0]));
    }
    sl->acc.kwh += pc->kwh;
    sl->acc.cost += pc->kwh * pc->price;
    sl->acc.idle_kwh += pc->idle ? pc->kwh : 0;
    int64_t F = c->conf->forecast_every_ns;
    if (F > 0) {
        int64_t bin = s == pc->s ? (pc->a - s) / F : 0;
        p->bins[sl - p->ser.slot][bin < EN_MAX_BINS ? bin : EN_MAX_BINS - 1] += pc->kwh;
        if (p->fc_next == EN_NONE) {
            p->fc_next = (mr_floor_div(pc->a, F) + 1) * F;
        }
    }
    return 0;
}

static int machine_book(struct en_ctx *c, mr_name_id asset, struct en_machine *m,
                        const struct piece *pc)
{
    int64_t s = pc->s;
    int rc = 0;
    bool fresh = false;
    struct en_slot *sl = series_slot(c, asset, &m->ser, &s, m->deferrable, &rc, &fresh);
    if (sl == NULL) {
        return rc;
    }
    sl->acc.kwh += pc->kwh;
    sl->acc.cost += pc->kwh * pc->price;
    if (pc->idle) {
        sl->acc.idle_kwh += pc->kwh;
        m->idle_kwh += pc->kwh;
    }
    rc = m->line != 0 ? parent_book(c, m->line, pc) : 0;
    rc = rc == 0 && m->site != 0 ? parent_book(c, m->site, pc) : rc;
    int64_t F = c->conf->forecast_every_ns;
    int64_t e = s + c->conf->interval_ns;
    if (rc == 0 && F > 0 && s == pc->s && pc->b % F == 0 && pc->b < e) {
        const int w[] = {TAG_WSTART, TAG_WEND};
        set_tag(c, TAG_WSTART, "%" PRId64, s);
        set_tag(c, TAG_WEND, "%" PRId64, e);
        rc = push(c, asset, EN_SIG_FORECAST, pc->b, sl->acc.kwh * KWH_NS / (double)(pc->b - s), w,
                  2);
        rc = rc == 0 ? mr_op_buf_flush(&c->out) : rc;
    }
    return rc;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Book the energy of a straight power ramp p0 (at t0) -> p1 (at t1), cut exactly at interval,
 * forecast, tariff and state-change boundaries. */
static int segment_book(struct en_ctx *c, mr_name_id asset, struct en_machine *m, int64_t t0,
                        int64_t t1, double p0, double p1)
{
    int64_t T = c->conf->interval_ns;
    int64_t F = c->conf->forecast_every_ns;
    double slope = (p1 - p0) / (double)(t1 - t0);
    for (int64_t a = t0; a < t1;) {
        int64_t change = 0;
        struct piece pc = {.a = a, .price = mr_tariff_at(c->tariff, a, &change)};
        pc.s = mr_floor_div(a, T) * T;
        int64_t b = min64(min64(t1, change), pc.s + T);
        if (F > 0) {
            b = min64(b, (mr_floor_div(a, F) + 1) * F);
        }
        if (m->state_since != EN_NONE && m->state_since > a && m->state_since < b) {
            b = m->state_since;
        }
        uint8_t flags = m->state_since != EN_NONE && a < m->state_since ? m->prev_flags : m->flags;
        pc.b = b;
        pc.idle = (flags & EN_ST_IDLE) != 0;
        double pa = p0 + slope * (double)(a - t0);
        double pb = p0 + slope * (double)(b - t0);
        pc.kwh = (pa + pb) * 0.5 * (double)(b - a) / KWH_NS;
        int rc = machine_book(c, asset, m, &pc);
        if (rc != 0) {
            return rc;
        }
        a = b;
    }
    return 0;
}

static int alert_push(struct en_ctx *c, mr_name_id asset, int64_t t, const char *detector,
                      int64_t from)
{
    set_tag(c, TAG_DETECTOR, "%s", detector);
    set_tag(c, TAG_FEATURE, "power");
    set_tag(c, TAG_SEVERITY, "warning");
    set_tag(c, TAG_WSTART, "%" PRId64, from);
    set_tag(c, TAG_WEND, "%" PRId64, t);
    const int tags[] = {TAG_FEATURE,  TAG_VALUE,    TAG_BASELINE, TAG_THRESHOLD,
                        TAG_DETECTOR, TAG_SEVERITY, TAG_WSTART,   TAG_WEND};
    int rc = push(c, asset, EN_SIG_ALERT, t, 0, tags, 8);
    return rc == 0 ? mr_op_buf_flush(&c->out) : rc;
}

/* Idle episode long enough and drawing too much: one alert per episode. */
static int idle_check(struct en_ctx *c, mr_name_id asset, struct en_machine *m, int64_t t)
{
    const struct en_conf *cf = c->conf;
    if (!(m->flags & EN_ST_IDLE) || m->idle_alerted || cf->idle_kw <= 0 ||
        t - m->state_since < cf->idle_min_ns || t <= m->state_since) {
        return 0;
    }
    double kw = m->idle_kwh * KWH_NS / (double)(t - m->state_since);
    if (!(kw > cf->idle_kw)) {
        return 0;
    }
    m->idle_alerted = 1;
    size_t len = 0;
    const char *name = mr_names_str(c->base.host->names, asset, &len);
    snprintf(c->text, sizeof(c->text),
             "%.*s drew %.4g kW on average (%.4g kWh) while idle for %.4g min, above %.4g kW",
             (int)(len > 120 ? 120 : len), name, kw, m->idle_kwh,
             (double)(t - m->state_since) / (double)MR_MIN_NS, cf->idle_kw);
    set_tag(c, TAG_VALUE, "%.6g", kw);
    set_tag(c, TAG_BASELINE, "0");
    set_tag(c, TAG_THRESHOLD, "%.6g", cf->idle_kw);
    return alert_push(c, asset, t, "energy.idle", m->state_since);
}

/* ---- records in ---- */

static bool numeric(const struct mr_record *rec, double *x)
{
    if (rec->quality != MR_QUALITY_GOOD) {
        return false;
    }
    if (rec->type == MR_VALUE_F64) {
        *x = rec->v.f64;
    } else if (rec->type == MR_VALUE_I64) {
        *x = (double)rec->v.i64;
    } else {
        return false;
    }
    return isfinite(*x);
}

/* A sample of the integrated signal (meter or power) at t: book since the previous one. */
static int on_sample(struct en_ctx *c, const struct mr_record *rec, struct en_machine *m, double x)
{
    const struct en_conf *cf = c->conf;
    int64_t t = rec->time_ns;
    if (m->last_t != EN_NONE && t <= m->last_t) {
        if (t < m->last_t) {
            mr_op_warn(&c->base, "late sample not integrated (older than the last one)");
        }
        return 0;
    }
    int64_t t0 = m->last_t;
    double v0 = m->last_v;
    m->last_t = t;
    m->last_v = x;
    if (t0 == EN_NONE) {
        return 0;
    }
    int rc = 0;
    if (cf->energy_from == EN_FROM_POWER) {
        if (t - t0 <= cf->max_gap_ns) {
            rc = segment_book(c, rec->asset, m, t0, t, v0, x);
        }
    } else {
        double d = x - v0;
        if (d < 0) {
            bool wrap = cf->rollover > 0 && v0 - x > cf->rollover / 2;
            d = wrap ? cf->rollover - v0 + x : x;
        }
        double kw = d * KWH_NS / (double)(t - t0);
        rc = segment_book(c, rec->asset, m, t0, t, kw, kw);
    }
    return rc == 0 ? idle_check(c, rec->asset, m, t) : rc;
}

/* Power against the machine's own baseline (exponentially weighted, warm-up: plain mean). */
static int spike_check(struct en_ctx *c, const struct mr_record *rec, struct en_machine *m,
                       double x)
{
    const struct en_conf *cf = c->conf;
    if (cf->spike_sigma <= 0 || !(m->flags & EN_ST_SPIKE) ||
        rec->time_ns < mr_op_time_add(m->state_since, cf->spike_settle_ns)) {
        return 0;
    }
    double sd = sqrt(m->sp_var);
    double limit = m->sp_mean + cf->spike_sigma * sd;
    bool ready = m->sp_n >= (uint64_t)cf->spike_window;
    if (ready && x > limit && x - m->sp_mean > cf->spike_min_kw) {
        if (m->spiking) {
            return 0;
        }
        m->spiking = 1;
        size_t len = 0;
        const char *name = mr_names_str(c->base.host->names, rec->asset, &len);
        snprintf(c->text, sizeof(c->text),
                 "%.*s power %.4g kW above its baseline %.4g kW (sigma %.3g kW), limit %.4g kW",
                 (int)(len > 120 ? 120 : len), name, x, m->sp_mean, sd, limit);
        set_tag(c, TAG_VALUE, "%.6g", x);
        set_tag(c, TAG_BASELINE, "%.6g", m->sp_mean);
        set_tag(c, TAG_THRESHOLD, "%.6g", limit);
        return alert_push(c, rec->asset, rec->time_ns, "energy.spike", rec->time_ns);
    }
    m->spiking = 0;
    double d = x - m->sp_mean;
    if (!ready) {
        m->sp_n++;
        m->sp_mean += d / (double)m->sp_n;
        m->sp_var += (d * (x - m->sp_mean) - m->sp_var) / (double)m->sp_n; /* population */
        return 0;
    }
    double alpha = 2.0 / ((double)cf->spike_window + 1.0);
    m->sp_mean += alpha * d;
    m->sp_var = (1 - alpha) * (m->sp_var + alpha * d * d);
    return 0;
}

static bool listed(const struct mr_strlist *l, const char *s, size_t len)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strlen(l->items[i]) == len && memcmp(l->items[i], s, len) == 0) {
            return true;
        }
    }
    return false;
}

static void on_state(struct en_ctx *c, const struct mr_record *rec, struct en_machine *m)
{
    if (rec->type != MR_VALUE_STRING) {
        return;
    }
    const char *s = rec->v.str.ptr;
    size_t len = rec->v.str.len;
    uint8_t f = (uint8_t)((listed(&c->conf->idle_states, s, len) ? EN_ST_IDLE : 0) |
                          (c->conf->spike_states.n == 0 || listed(&c->conf->spike_states, s, len)
                               ? EN_ST_SPIKE
                               : 0));
    if (m->state_since != EN_NONE && f == m->flags) {
        return; /* a repeated state keeps the time it began */
    }
    m->prev_flags = m->state_since == EN_NONE ? 0 : m->flags;
    m->flags = f;
    m->state_since = rec->time_ns;
    m->idle_kwh = 0;
    m->idle_alerted = 0;
    m->spiking = 0;
}

static int on_good(struct en_ctx *c, const struct mr_record *rec, struct en_machine *m)
{
    if (rec->type != MR_VALUE_I64 || rec->quality != MR_QUALITY_GOOD ||
        (m->good_t != EN_NONE && rec->time_ns < m->good_t)) {
        return 0;
    }
    int64_t v = rec->v.i64;
    int64_t d = v - m->good_last; /* a decrease is a counter reset: v parts since */
    d = d < 0 ? v : d;
    bool first = m->good_t == EN_NONE;
    m->good_t = rec->time_ns;
    m->good_last = v;
    if (first || d <= 0) {
        return 0;
    }
    int64_t s = mr_floor_div(rec->time_ns, c->conf->interval_ns) * c->conf->interval_ns;
    int rc = 0;
    bool fresh = false;
    struct en_slot *sl = series_slot(c, rec->asset, &m->ser, &s, m->deferrable, &rc, &fresh);
    if (sl != NULL) {
        sl->acc.good += (double)d;
    }
    return rc;
}

static int process_one(void *ctx, const struct mr_record *rec)
{
    struct en_ctx *c = ctx;
    int rc = c->conf->pass_through ? mr_op_buf_push(&c->out, rec) : 0;
    mr_name_id sig = rec->signal;
    bool integ = sig == (c->conf->energy_from == EN_FROM_POWER ? c->power_id : c->energy_id);
    if (rc != 0 || !(integ || sig == c->power_id || sig == c->good_id || sig == c->state_id)) {
        return rc;
    }
    struct en_machine *m = mr_energy_machine(c, rec->asset);
    if (m == NULL) {
        return 0;
    }
    double x = 0;
    if (sig == c->state_id) {
        on_state(c, rec, m);
    } else if (sig == c->good_id) {
        rc = on_good(c, rec, m);
    } else if (numeric(rec, &x)) {
        rc = sig == c->power_id ? spike_check(c, rec, m, x) : 0;
        rc = rc == 0 && integ ? on_sample(c, rec, m, x) : rc;
    }
    return rc;
}

int mr_energy_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct en_ctx *c = ctx;
    return mr_op_process_each(&c->base, &c->out, recs, n, process_one, c, err);
}

/* ---- event time ---- */

/* Parent forecasts up to watermark - grace: the energy booked before each step / its time. */
static int parent_forecast(struct en_ctx *c, struct en_parent *p, int64_t limit)
{
    int64_t T = c->conf->interval_ns;
    int64_t F = c->conf->forecast_every_ns;
    if (F <= 0 || p->fc_next == EN_NONE) {
        return 0;
    }
    if (limit - p->fc_next > 2 * T) {
        p->fc_next = (mr_floor_div(limit - 2 * T, F) + 1) * F; /* a jump: recent steps only */
    }
    for (; p->fc_next <= limit; p->fc_next += F) {
        int64_t f = p->fc_next;
        int64_t s = mr_floor_div(f, T) * T;
        int k = (int)(((mr_floor_div(s, T) % EN_SLOTS) + EN_SLOTS) % EN_SLOTS);
        if (f == s || p->ser.slot[k].s != s) {
            continue;
        }
        double kwh = 0;
        for (int64_t b = 0; b < (f - s) / F && b < EN_MAX_BINS; b++) {
            kwh += p->bins[k][b];
        }
        const int w[] = {TAG_WSTART, TAG_WEND};
        set_tag(c, TAG_WSTART, "%" PRId64, s);
        set_tag(c, TAG_WEND, "%" PRId64, s + T);
        int rc = push(c, p->asset, EN_SIG_FORECAST, f, kwh * KWH_NS / (double)(f - s), w, 2);
        rc = rc == 0 ? mr_op_buf_flush(&c->out) : rc;
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int mr_energy_advance(void *ctx, mr_name_id asset, int64_t watermark_ns, struct mr_err *err)
{
    struct en_ctx *c = ctx;
    int64_t limit = watermark_ns - c->conf->grace_ns;
    int rc = 0;
    if (asset != 0) {
        struct en_machine *m = mr_keymap_find(&c->machines, asset);
        rc = m != NULL ? series_close(c, asset, &m->ser, limit, m->deferrable) : 0;
    } else {
        for (uint32_t i = 0; i < mr_keymap_count(&c->parents) && rc == 0; i++) {
            struct en_parent *p = mr_keymap_value_at(&c->parents, i);
            rc = parent_forecast(c, p, limit);
            rc = rc == 0 ? series_close(c, p->asset, &p->ser, limit, false) : rc;
        }
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "energy: passing results on failed: %s", mr_strerror(rc));
    }
    return 0;
}
