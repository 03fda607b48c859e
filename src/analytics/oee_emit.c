/* The `oee` operator's results: KPI and loss records of a window, line sums, and the alert
 * when a KPI stays below its target (analytics/oee_internal.h; semantics in oee.c). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analytics/oee_internal.h"

enum {
    OUT_OEE,
    OUT_A,
    OUT_P,
    OUT_Q,
    OUT_PBT,
    OUT_APT,
    OUT_PDOT,
    OUT_PRODUCED,
    OUT_GOOD,
    OUT_L_BREAKDOWN,
    OUT_L_SETUP,
    OUT_L_IDLE,
    OUT_L_SMALL,
    OUT_L_SPEED,
    OUT_L_STARTUP,
    OUT_L_REJECTS,
    NOUT
};

static const char *const out_names[NOUT] = {
    "oee",
    "oee.availability",
    "oee.performance",
    "oee.quality",
    "oee.planned_busy_time",
    "oee.run_time",
    "oee.planned_downtime",
    "oee.produced",
    "oee.good",
    "oee.loss.breakdown",
    "oee.loss.setup",
    "oee.loss.idle",
    "oee.loss.small_stops",
    "oee.loss.speed",
    "oee.loss.startup_rejects",
    "oee.loss.production_rejects",
};

enum {
    TAG_PERIOD,
    TAG_SHIFT,
    TAG_STATUS,
    TAG_WS,
    TAG_WE,
    TAG_DQ,
    TAG_FEATURE,
    TAG_VALUE,
    TAG_THRESHOLD,
    TAG_DETECTOR,
    TAG_SEVERITY,
    NTAG
};

static const char *const tag_names[NTAG] = {"period",     "shift",        "status",  "window_start",
                                            "window_end", "data_quality", "feature", "value",
                                            "threshold",  "detector",     "severity"};

static const char *const kpi_names[NKPI] = {"oee", "oee.availability", "oee.performance",
                                            "oee.quality"};

#define NS_PER_S 1e9

int oee_emit_names(struct oee_ctx *c)
{
    struct mr_names *names = c->base.host->names;
    int rc = mr_names_intern(names, "alert", 5, &c->alert_id);
    for (int i = 0; i < NOUT && rc == 0; i++) {
        rc = mr_names_intern(names, out_names[i], strlen(out_names[i]), &c->out_ids[i]);
    }
    for (int i = 0; i < NTAG && rc == 0; i++) {
        rc = mr_names_intern(names, tag_names[i], strlen(tag_names[i]), &c->tag_ids[i]);
    }
    return rc;
}

void oee_acc_add(struct oee_acc *dst, const struct oee_acc *src)
{
    for (int i = 0; i < NCAT; i++) {
        dst->t[i] += src->t[i];
    }
    dst->micro += src->micro + src->pending; /* a view: an open short stop counts as small */
    dst->pq += src->pq;
    dst->gq += src->gq;
    dst->startup += src->startup;
    dst->ideal_pq += src->ideal_pq;
    dst->ideal_gq += src->ideal_gq;
    dst->ideal_startup += src->ideal_startup;
    dst->nmicro += src->nmicro;
}

static double pbt_of(const struct oee_acc *a)
{
    return (double)(a->t[CAT_RUN] + a->micro + a->pending + a->t[CAT_DOWN] + a->t[CAT_IDLE] +
                    a->t[CAT_SETUP]) /
           NS_PER_S;
}

static double apt_of(const struct oee_acc *a)
{
    return (double)(a->t[CAT_RUN] + a->micro + a->pending) / NS_PER_S;
}

/* OEE = ideal x good / PBT (the identity A x E x QR telescopes to), so it stays defined when
 * nothing ran (0) and is NaN only without planned busy time. */
void oee_acc_kpis(const struct oee_acc *a, double k[NKPI])
{
    double pbt = pbt_of(a);
    double apt = apt_of(a);
    k[KPI_OEE] = pbt > 0 ? a->ideal_gq / pbt : NAN;
    k[KPI_A] = pbt > 0 ? apt / pbt : NAN;
    k[KPI_P] = apt > 0 ? a->ideal_pq / apt : NAN;
    k[KPI_Q] = a->pq > 0 ? (double)a->gq / (double)a->pq : NAN;
}

static struct oee_text *text_slot(struct oee_ctx *c)
{
    if (c->ntext == OEE_TEXT_SLOTS) {
        /* the buffered records borrow these texts: send them before reusing the slots */
        int rc = mr_op_buf_flush(&c->out);
        if (rc != 0) {
            return NULL;
        }
        c->ntext = 0;
    }
    return &c->text[c->ntext++];
}

static struct mr_tag tag_str(struct oee_ctx *c, int tag, const char *s)
{
    return (struct mr_tag){.key = c->tag_ids[tag], .value = {.ptr = s, .len = (uint32_t)strlen(s)}};
}

int oee_emit_view(struct oee_ctx *c, mr_name_id asset, const struct oee_acc *a, int kind,
                  int64_t at, bool final)
{
    struct oee_text *tx = text_slot(c);
    if (tx == NULL) {
        return MR_EIO;
    }
    snprintf(tx->ws, sizeof(tx->ws), "%" PRId64, a->start);
    snprintf(tx->we, sizeof(tx->we), "%" PRId64, a->end);
    double k[NKPI];
    oee_acc_kpis(a, k);
    double pbt = pbt_of(a), apt = apt_of(a);
    double small = (double)(a->micro + a->pending) / NS_PER_S;
    double v[NOUT] = {
        [OUT_OEE] = k[KPI_OEE],
        [OUT_A] = k[KPI_A],
        [OUT_P] = k[KPI_P],
        [OUT_Q] = k[KPI_Q],
        [OUT_PBT] = pbt,
        [OUT_APT] = apt,
        [OUT_PDOT] = (double)a->t[CAT_PLANNED] / NS_PER_S,
        [OUT_PRODUCED] = (double)a->pq,
        [OUT_GOOD] = (double)a->gq,
        [OUT_L_BREAKDOWN] = (double)a->t[CAT_DOWN] / NS_PER_S,
        [OUT_L_SETUP] = (double)a->t[CAT_SETUP] / NS_PER_S,
        [OUT_L_IDLE] = (double)a->t[CAT_IDLE] / NS_PER_S,
        [OUT_L_SMALL] = small,
        [OUT_L_SPEED] = apt - small - a->ideal_pq,
        [OUT_L_STARTUP] = a->ideal_startup,
        [OUT_L_REJECTS] = a->ideal_pq - a->ideal_gq - a->ideal_startup,
    };
    struct mr_record r = {
        .time_ns = at,
        .asset = asset,
        .type = MR_VALUE_F64,
        .quality = MR_QUALITY_GOOD,
        .ntags = 5,
    };
    r.tags[0] = tag_str(c, TAG_PERIOD, kind == WIN_DAY ? "day" : "shift");
    r.tags[1] = tag_str(c, TAG_SHIFT, kind == WIN_DAY ? "all" : c->shift_names[a->shift]);
    r.tags[2] = tag_str(c, TAG_STATUS, final ? "final" : "partial");
    r.tags[3] = tag_str(c, TAG_WS, tx->ws);
    r.tags[4] = tag_str(c, TAG_WE, tx->we);
    int nout = c->conf->details ? NOUT : OUT_PBT;
    int rc = 0;
    for (int i = 0; i < nout && rc == 0; i++) {
        if (isnan(v[i])) {
            continue; /* undefined (ISO 22400: no plan, nothing produced): no record */
        }
        r.signal = c->out_ids[i];
        r.v.f64 = v[i];
        r.ntags = 5;
        if (i == OUT_P && v[i] > 1.0 + 1e-9) {
            /* E > 1: ideal cycle time set too slow or counts duplicated; reported raw */
            r.tags[r.ntags++] = tag_str(c, TAG_DQ, "performance_above_1");
            if (final) {
                mr_op_warn(&c->base, "performance %.3f above 1: check ideal_cycle_time", v[i]);
            }
        }
        rc = mr_op_buf_push(&c->out, &r);
    }
    return rc;
}

/* ---- line windows ---- */

static int window_find(struct oee_ctx *c, int kind, const struct oee_acc *a, int64_t emit_at,
                       int64_t due)
{
    int free_slot = -1;
    for (int i = 0; i < OEE_MAX_WINDOWS; i++) {
        struct oee_window *w = &c->windows[i];
        if (w->used && w->kind == kind && w->start == a->start && w->end == a->end &&
            w->emit_at == emit_at) {
            return i;
        }
        if (!w->used && free_slot < 0) {
            free_slot = i;
        }
    }
    if (free_slot >= 0) {
        c->windows[free_slot] = (struct oee_window){.start = a->start,
                                                    .end = a->end,
                                                    .emit_at = emit_at,
                                                    .due = due,
                                                    .shift = a->shift,
                                                    .kind = (uint8_t)kind,
                                                    .used = 1};
        c->lines_due = due < c->lines_due ? due : c->lines_due;
    }
    return free_slot;
}

int oee_line_add(struct oee_ctx *c, mr_name_id line, const struct oee_acc *a, int kind,
                 int64_t emit_at, int64_t due)
{
    if (line == 0) {
        return 0;
    }
    int w = window_find(c, kind, a, emit_at, due);
    void *v = NULL;
    int inserted = 0;
    if (w < 0 ||
        mr_keymap_upsert(&c->lines, (uint64_t)line << 32 | (uint32_t)w, &v, &inserted) != 0) {
        mr_op_warn(&c->base, "line result dropped: too many open line windows or lines");
        return 0;
    }
    struct oee_acc *la = v;
    if (inserted) {
        la->start = a->start;
        la->end = a->end;
        la->shift = a->shift;
        la->used = 1;
    }
    oee_acc_add(la, a);
    return 0;
}

/* Emit and drop every line window due at the pipeline watermark wm. */
int oee_lines_advance(struct oee_ctx *c, int64_t wm)
{
    if (wm < c->lines_due) {
        return 0;
    }
    bool due[OEE_MAX_WINDOWS] = {0};
    int64_t next = INT64_MAX;
    for (int i = 0; i < OEE_MAX_WINDOWS; i++) {
        struct oee_window *w = &c->windows[i];
        if (w->used && w->due <= wm) {
            due[i] = true;
        } else if (w->used && w->due < next) {
            next = w->due;
        }
    }
    int rc = 0;
    /* first-seen order is kept by walking forwards; removals happen after the walk */
    uint32_t n = mr_keymap_count(&c->lines);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        uint64_t key = mr_keymap_key_at(&c->lines, i);
        uint32_t w = (uint32_t)key;
        if (due[w]) {
            const struct oee_window *win = &c->windows[w];
            rc = oee_emit_view(c, (mr_name_id)(key >> 32), mr_keymap_value_at(&c->lines, i),
                               win->kind, win->emit_at, win->kind != WIN_PARTIAL);
        }
    }
    for (uint32_t i = n; i-- > 0;) {
        if (due[(uint32_t)mr_keymap_key_at(&c->lines, i)]) {
            mr_keymap_remove(&c->lines, mr_keymap_key_at(&c->lines, i));
        }
    }
    for (int i = 0; i < OEE_MAX_WINDOWS; i++) {
        if (due[i]) {
            c->windows[i].used = 0;
        }
    }
    c->lines_due = next;
    return rc;
}

/* ---- alerts ---- */

static int alert_push(struct oee_ctx *c, const struct oee_machine *m, int kpi, double value,
                      int64_t since, int64_t at)
{
    int rc = mr_op_buf_flush(&c->out); /* the alert's texts are reused by the next one */
    c->ntext = 0;
    if (rc != 0) {
        return rc;
    }
    double target = c->conf->targets[kpi];
    char(*t)[32] = c->alert_tags;
    snprintf(t[0], 32, "%.6g", value);
    snprintf(t[1], 32, "%.6g", target);
    snprintf(t[2], 32, "%" PRId64, since);
    snprintf(t[3], 32, "%" PRId64, at);
    int n =
        snprintf(c->alert_text, sizeof(c->alert_text), "%s %.1f%% below target %.1f%% for %.0f min",
                 kpi_names[kpi], value * 100, target * 100, (double)(at - since) / 60e9);
    struct mr_record a = {
        .time_ns = at,
        .asset = m->asset,
        .signal = c->alert_id,
        .type = MR_VALUE_STRING,
        .quality = MR_QUALITY_GOOD,
        .ntags = 7,
        .v.str = {.ptr = c->alert_text,
                  .len = (uint32_t)(n < (int)sizeof(c->alert_text) ? n : 255)},
    };
    a.tags[0] = tag_str(c, TAG_FEATURE, kpi_names[kpi]);
    a.tags[1] = tag_str(c, TAG_VALUE, t[0]);
    a.tags[2] = tag_str(c, TAG_THRESHOLD, t[1]);
    a.tags[3] = tag_str(c, TAG_DETECTOR, "oee");
    a.tags[4] = tag_str(c, TAG_SEVERITY, "warning");
    a.tags[5] = tag_str(c, TAG_WS, t[2]);
    a.tags[6] = tag_str(c, TAG_WE, t[3]);
    rc = mr_op_buf_push(&c->out, &a);
    return rc == 0 ? mr_op_buf_flush(&c->out) : rc;
}

/* One interval slice [slice->start, at) of machine m ended: a KPI below its target in every
 * slice for alert_after raises one alert; it re-arms when a slice is at or above target.
 * Slices without planned busy time (breaks, no shift) leave the state as it is. */
int oee_alert_check(struct oee_ctx *c, struct oee_machine *m, const struct oee_acc *slice,
                    int64_t at)
{
    double k[NKPI];
    oee_acc_kpis(slice, k);
    int rc = 0;
    for (int i = 0; i < NKPI && rc == 0; i++) {
        double target = c->conf->targets[i];
        if (!(target > 0) || isnan(k[i])) {
            continue;
        }
        if (k[i] >= target) {
            m->below_since[i] = INT64_MIN;
            m->alerted &= (uint8_t) ~(1u << i);
            continue;
        }
        if (m->below_since[i] == INT64_MIN) {
            m->below_since[i] = slice->start;
        }
        if (!(m->alerted & (1u << i)) && at - m->below_since[i] >= c->conf->alert_after_ns) {
            m->alerted |= (uint8_t)(1u << i);
            rc = alert_push(c, m, i, k[i], m->below_since[i], at);
        }
    }
    return rc;
}
