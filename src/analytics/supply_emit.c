/* Operator `supply`, output side: one projection of a material as records, and the stockout
 * alert (semantics in supply.c's header comment). Everything here is a function of the state
 * and the triggering record's time, never of the wall clock, so a replay emits the same
 * records. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "analytics/supply_internal.h"

#define NS 1e9

/* Text in c->text, borrowed by the records until the flush at the end of supply_emit. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static struct mr_bytes
text(struct supply_ctx *c, uint32_t *len_out, const char *fmt, ...)
{
    char *p = c->text + c->text_used;
    size_t room = sizeof(c->text) - c->text_used;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
    }
    size_t len = (size_t)n < room ? (size_t)n : room > 0 ? room - 1 : 0;
    c->text_used += room > 0 ? len + 1 : 0;
    if (len_out != NULL) {
        *len_out = (uint32_t)len;
    }
    return (struct mr_bytes){.ptr = p, .len = (uint32_t)len};
}

static struct mr_bytes text_time(struct supply_ctx *c, int64_t t)
{
    char *p = c->text + c->text_used;
    size_t len = mr_time_format_rfc3339(t, p, sizeof(c->text) - c->text_used);
    c->text_used += len > 0 ? len + 1 : 0;
    return (struct mr_bytes){.ptr = p, .len = (uint32_t)len};
}

static struct mr_bytes lit(const char *s)
{
    return (struct mr_bytes){.ptr = s, .len = (uint32_t)strlen(s)};
}

static struct mr_record rec_new(const struct supply_ctx *c, mr_name_id asset, int sig, int64_t t)
{
    return (struct mr_record){.time_ns = t,
                              .asset = asset,
                              .signal = c->sig[sig],
                              .type = MR_VALUE_F64,
                              .quality = MR_QUALITY_GOOD};
}

static void rec_tag(const struct supply_ctx *c, struct mr_record *r, int tag, struct mr_bytes v)
{
    r->tags[r->ntags++] = (struct mr_tag){.key = c->tag[tag], .value = v};
}

static double seconds(int64_t from, int64_t to)
{
    return (double)(to - from) / NS;
}

static int push_stockout(struct supply_ctx *c, mr_name_id asset, int64_t t0,
                         const struct mr_supply_projection *p)
{
    struct mr_record r = rec_new(c, asset, OUT_STOCKOUT_IN, t0);
    rec_tag(c, &r, TAG_UNIT, lit("s"));
    if (p->stockout == MR_SUPPLY_NEVER) {
        r.v.f64 = (double)c->conf->horizon_ns / NS;
        rec_tag(c, &r, TAG_BEYOND, lit("true"));
    } else {
        r.v.f64 = seconds(t0, p->stockout);
        rec_tag(c, &r, TAG_AT, text_time(c, p->stockout));
    }
    return mr_op_buf_push(&c->out, &r);
}

static int push_levels(struct supply_ctx *c, mr_name_id asset, const struct supply_material *m,
                       int64_t t0, double level, double rate)
{
    static const char *const src_names[] = {"none", "inventory", "counters", "events"};
    struct mr_record r = rec_new(c, asset, OUT_LEVEL, t0);
    r.v.f64 = level;
    int rc = mr_op_buf_push(&c->out, &r);
    r = rec_new(c, asset, OUT_RATE, t0);
    r.v.f64 = rate * 3600.0;
    rec_tag(c, &r, TAG_UNIT, lit("per_hour"));
    rec_tag(c, &r, TAG_SOURCE, lit(src_names[m->src <= SRC_EVENTS ? m->src : 0]));
    rc = rc == 0 ? mr_op_buf_push(&c->out, &r) : rc;
    if (rate > 0) {
        r = rec_new(c, asset, OUT_DAYS_OF_COVER, t0);
        r.v.f64 = level / (rate * 86400.0);
        rec_tag(c, &r, TAG_UNIT, lit("d"));
        rc = rc == 0 ? mr_op_buf_push(&c->out, &r) : rc;
    }
    if (m->nship > 0) {
        const struct mr_supply_shipment *s = &m->ship[0];
        r = rec_new(c, asset, OUT_NEXT_ARRIVAL, t0);
        r.v.f64 = s->eta > t0 ? seconds(t0, s->eta) : 0.0;
        rec_tag(c, &r, TAG_UNIT, lit("s"));
        rec_tag(c, &r, TAG_AT, text_time(c, s->eta));
        rec_tag(c, &r, TAG_QTY, text(c, NULL, "%.6g", s->qty));
        rec_tag(c, &r, TAG_OVERDUE, lit(s->eta < t0 ? "true" : "false"));
        rc = rc == 0 ? mr_op_buf_push(&c->out, &r) : rc;
    }
    return rc;
}

static int push_curve(struct supply_ctx *c, mr_name_id asset, const struct supply_material *m,
                      int64_t t0, double level, double rate)
{
    int64_t n = c->conf->curve_points;
    int64_t step = c->conf->horizon_ns / (n > 0 ? n : 1);
    int rc = 0;
    for (int64_t k = 1; k <= n && rc == 0; k++) {
        int64_t at = mr_op_time_add(t0, step * k);
        struct mr_record r = rec_new(c, asset, OUT_CURVE, t0);
        r.v.f64 = mr_supply_curve_at(level, rate, t0, m->ship, m->nship, at);
        rec_tag(c, &r, TAG_AT, text_time(c, at));
        rc = mr_op_buf_push(&c->out, &r);
    }
    return rc;
}

/* "in 3.5 h" style durations for the alert sentence. */
static void human(char *out, size_t cap, double s)
{
    if (s < 120) {
        snprintf(out, cap, "%.0f s", s);
    } else if (s < 3600) {
        snprintf(out, cap, "%.1f min", s / 60);
    } else if (s < 2 * 86400) {
        snprintf(out, cap, "%.1f h", s / 3600);
    } else {
        snprintf(out, cap, "%.1f d", s / 86400);
    }
}

static int push_alert(struct supply_ctx *c, mr_name_id asset, int64_t t0, int level,
                      const struct mr_supply_projection *p)
{
    const struct supply_conf *cf = c->conf;
    /* Which case raised it: on time (alarm), late by the margin, or nothing due after. */
    bool late =
        level == 1 && p->stockout_late != MR_SUPPLY_NEVER && p->late_arrival != MR_SUPPLY_NEVER;
    int64_t out = late ? p->stockout_late : p->stockout;
    int64_t arrival = level == 2 ? p->stockout_arrival
                      : late     ? p->late_arrival - cf->safety_margin_ns
                                 : MR_SUPPLY_NEVER;
    size_t nlen = 0;
    const char *name = mr_names_str(c->base.host->names, asset, &nlen);
    int nl = (int)(nlen > 120 ? 120 : nlen);
    char in[32], margin[32], when[40], due[40], what[96];
    human(in, sizeof(in), seconds(t0, out));
    human(margin, sizeof(margin), (double)cf->safety_margin_ns / NS);
    mr_time_format_rfc3339(out, when, sizeof(when));
    if (out <= t0) {
        snprintf(what, sizeof(what), "is out of stock");
    } else {
        snprintf(what, sizeof(what), "runs out in %s (%s)", in, when);
    }
    mr_time_format_rfc3339(arrival, due, sizeof(due));
    struct mr_record r = rec_new(c, asset, OUT_ALERT, t0);
    r.type = MR_VALUE_STRING;
    if (arrival == MR_SUPPLY_NEVER) {
        r.v.str = text(c, NULL, "%.*s %s, with no shipment due before then", nl, name, what);
    } else if (level == 2 && arrival <= t0) {
        r.v.str = text(c, NULL, "%.*s %s, the next shipment is overdue", nl, name, what);
    } else if (level == 2) {
        r.v.str = text(c, NULL, "%.*s %s, before the next arrival (%s)", nl, name, what, due);
    } else {
        r.v.str = text(c, NULL,
                       "%.*s %s if a shipment is %s late: it does not last until the arrival "
                       "due %s plus the safety margin",
                       nl, name, what, margin, due);
    }
    /* The time the stock had to last: the arrival plus the margin (or the uncovered limit). */
    int64_t limit = arrival != MR_SUPPLY_NEVER ? mr_op_time_add(arrival, cf->safety_margin_ns)
                                               : mr_op_time_add(t0, cf->uncovered_within_ns);
    rec_tag(c, &r, TAG_FEATURE, lit("stockout_in"));
    rec_tag(c, &r, TAG_VALUE, text(c, NULL, "%.6g", seconds(t0, out)));
    rec_tag(c, &r, TAG_THRESHOLD, text(c, NULL, "%.6g", seconds(t0, limit)));
    rec_tag(c, &r, TAG_DETECTOR, lit("supply"));
    rec_tag(c, &r, TAG_SEVERITY, lit(level == 2 ? "alarm" : "warning"));
    rec_tag(c, &r, TAG_WSTART, text(c, NULL, "%" PRId64, t0));
    rec_tag(c, &r, TAG_WEND, text(c, NULL, "%" PRId64, out));
    return mr_op_buf_push(&c->out, &r);
}

int supply_emit(struct supply_ctx *c, mr_name_id asset, struct supply_material *m, int64_t t0)
{
    const struct supply_conf *cf = c->conf;
    double rate = m->have_rate && m->rate > 0 ? m->rate : 0.0;
    double level = mr_supply_level_now(m->level, m->level_t, rate, t0);
    struct mr_supply_projection p;
    mr_supply_project(level, rate, t0, m->ship, m->nship, cf->safety_margin_ns, cf->horizon_ns, &p);
    int risk = mr_supply_risk(&p, t0, cf->uncovered_within_ns);
    c->text_used = 0;
    int rc = push_stockout(c, asset, t0, &p);
    rc = rc == 0 ? push_levels(c, asset, m, t0, level, rate) : rc;
    rc = rc == 0 ? push_curve(c, asset, m, t0, level, rate) : rc;
    struct mr_record r = rec_new(c, asset, OUT_RISK, t0);
    r.type = MR_VALUE_BOOL;
    r.v.b = risk > 0;
    rec_tag(c, &r, TAG_SEVERITY, lit(risk == 2 ? "alarm" : risk == 1 ? "warning" : "none"));
    rc = rc == 0 ? mr_op_buf_push(&c->out, &r) : rc;
    if (rc == 0 && risk > m->risk) {
        rc = push_alert(c, asset, t0, risk, &p);
    }
    m->risk = (uint8_t)risk;
    /* The records borrow c->text: send them before the next projection reuses it. */
    rc = rc == 0 ? mr_op_buf_flush(&c->out) : rc;
    c->text_used = 0;
    return rc;
}
