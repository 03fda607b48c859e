/* The `oee` operator's configuration, life cycle and checkpoints (semantics: oee.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analytics/oee_internal.h"
#include "millrace/alloc.h"

#define STATE_VERSION 1

extern const struct mr_plugin mr_operator_oee;

static const char *const planned_names[] = {"state", "calendar", NULL};

/* ---- checkpoints ----
 * version, machine count, per machine: asset name, 0 (signal), cursor, ep_start, run_since,
 * last[3], next_tick, below_since[4], cat | ep_cat << 8 | has_last << 16 | alerted << 24
 * (bytes, +1 on the signed ones), then the accumulators acc[0], acc[1], slice, day; then the
 * line windows (all slots) and the line sums: count, per entry line name, window, accumulator.
 */
static void acc_put(struct mr_state_writer *w, const struct oee_acc *a)
{
    const int64_t v[] = {a->start, a->end,     a->t[0],  a->t[1],    a->t[2],
                         a->t[3],  a->t[4],    a->micro, a->pending, a->pq,
                         a->gq,    a->startup, a->shift, a->nmicro,  a->used};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        mr_state_put_i64(w, v[i]);
    }
    mr_state_put_f64(w, a->ideal_pq);
    mr_state_put_f64(w, a->ideal_gq);
    mr_state_put_f64(w, a->ideal_startup);
}

static void acc_get(struct mr_state_reader *r, struct oee_acc *a, int nshifts)
{
    int64_t v[15];
    for (size_t i = 0; i < 15; i++) {
        mr_state_get_i64(r, &v[i]);
    }
    *a = (struct oee_acc){.start = v[0],
                          .end = v[1],
                          .t = {v[2], v[3], v[4], v[5], v[6]},
                          .micro = v[7],
                          .pending = v[8],
                          .pq = v[9],
                          .gq = v[10],
                          .startup = v[11],
                          .shift = (int32_t)v[12],
                          .nmicro = (uint32_t)v[13],
                          .used = (uint32_t)v[14]};
    mr_state_get_f64(r, &a->ideal_pq);
    mr_state_get_f64(r, &a->ideal_gq);
    mr_state_get_f64(r, &a->ideal_startup);
    if (a->shift >= nshifts || a->shift < -1) {
        r->err = MR_ECORRUPT; /* a changed calendar: the shift index is meaningless */
    }
}

static int oee_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err)
{
    struct oee_ctx *c = ctx;
    uint32_t n = mr_op_keyed_count(&c->keyed);
    mr_op_state_begin(w, STATE_VERSION, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct oee_machine *m = mr_keymap_value_at(&c->keyed.keys, i);
        mr_op_keyed_put_key(&c->keyed, i, w);
        const int64_t v[] = {m->cursor,         m->ep_start,       m->run_since,
                             m->last[0],        m->last[1],        m->last[2],
                             m->next_tick,      m->below_since[0], m->below_since[1],
                             m->below_since[2], m->below_since[3]};
        for (size_t j = 0; j < sizeof(v) / sizeof(v[0]); j++) {
            mr_state_put_i64(w, v[j]);
        }
        mr_state_put_u64(w, (uint64_t)(uint8_t)(m->cat + 1) |
                                (uint64_t)(uint8_t)(m->ep_cat + 1) << 8 |
                                (uint64_t)m->has_last << 16 | (uint64_t)m->alerted << 24);
        acc_put(w, &m->acc[0]);
        acc_put(w, &m->acc[1]);
        acc_put(w, &m->slice);
        acc_put(w, &m->day);
    }
    for (int i = 0; i < OEE_MAX_WINDOWS; i++) {
        const struct oee_window *win = &c->windows[i];
        const int64_t v[] = {win->start, win->end,  win->emit_at, win->due,
                             win->shift, win->kind, win->used};
        for (size_t j = 0; j < sizeof(v) / sizeof(v[0]); j++) {
            mr_state_put_i64(w, v[j]);
        }
    }
    uint32_t nl = mr_keymap_count(&c->lines);
    mr_state_put_u64(w, nl);
    for (uint32_t i = 0; i < nl; i++) {
        uint64_t key = mr_keymap_key_at(&c->lines, i);
        mr_state_put_name(w, (mr_name_id)(key >> 32));
        mr_state_put_u64(w, (uint32_t)key);
        acc_put(w, mr_keymap_value_at(&c->lines, i));
    }
    if (w->err != 0) {
        return MR_ERR_SET(err, w->err, "checkpoint: %s", mr_strerror(w->err));
    }
    return 0;
}

static int machine_restore(struct oee_ctx *c, struct oee_machine *m, mr_name_id asset,
                           struct mr_state_reader *r)
{
    int rc = oee_machine_init(c, m, asset);
    int64_t *v[] = {&m->cursor,         &m->ep_start,       &m->run_since,     &m->last[0],
                    &m->last[1],        &m->last[2],        &m->next_tick,     &m->below_since[0],
                    &m->below_since[1], &m->below_since[2], &m->below_since[3]};
    for (size_t j = 0; j < sizeof(v) / sizeof(v[0]); j++) {
        mr_state_get_i64(r, v[j]);
    }
    uint64_t bits = 0;
    mr_state_get_u64(r, &bits);
    m->cat = (int8_t)((int)(bits & 0xff) - 1);
    m->ep_cat = (int8_t)((int)(bits >> 8 & 0xff) - 1);
    m->has_last = (uint8_t)(bits >> 16);
    m->alerted = (uint8_t)(bits >> 24);
    acc_get(r, &m->acc[0], c->cal.nshifts);
    acc_get(r, &m->acc[1], c->cal.nshifts);
    acc_get(r, &m->slice, c->cal.nshifts);
    acc_get(r, &m->day, c->cal.nshifts);
    if (r->err == 0 && (m->cat >= NCAT || m->ep_cat >= NCAT)) {
        return MR_ECORRUPT;
    }
    return r->err != 0 ? r->err : rc;
}

static int lines_restore(struct oee_ctx *c, struct mr_state_reader *r, struct mr_err *err)
{
    c->lines_due = INT64_MAX;
    for (int i = 0; i < OEE_MAX_WINDOWS; i++) {
        struct oee_window *win = &c->windows[i];
        int64_t v[7];
        for (int j = 0; j < 7; j++) {
            mr_state_get_i64(r, &v[j]);
        }
        *win = (struct oee_window){.start = v[0],
                                   .end = v[1],
                                   .emit_at = v[2],
                                   .due = v[3],
                                   .shift = (int32_t)v[4],
                                   .kind = (uint8_t)v[5],
                                   .used = (uint8_t)v[6]};
        if (win->used && win->due < c->lines_due) {
            c->lines_due = win->due;
        }
    }
    uint64_t nl = 0;
    mr_state_get_u64(r, &nl);
    for (uint64_t i = 0; i < nl && r->err == 0; i++) {
        mr_name_id line = 0;
        uint64_t win = 0;
        void *v = NULL;
        int inserted = 0;
        mr_state_get_name(r, &line);
        mr_state_get_u64(r, &win);
        struct oee_acc a;
        acc_get(r, &a, c->cal.nshifts);
        if (r->err == 0 &&
            (win >= OEE_MAX_WINDOWS ||
             mr_keymap_upsert(&c->lines, (uint64_t)line << 32 | win, &v, &inserted) != 0 ||
             !inserted)) {
            r->err = MR_ECORRUPT;
        }
        if (r->err == 0) {
            *(struct oee_acc *)v = a;
        }
    }
    if (r->err != 0) {
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: truncated or malformed line sums");
    }
    return 0;
}

static int oee_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err)
{
    struct oee_ctx *c = ctx;
    uint64_t n = 0;
    int rc = mr_op_state_open(r, STATE_VERSION, &n, err);
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        void *v = NULL;
        mr_name_id asset = 0;
        rc = mr_op_keyed_get_key(&c->keyed, r, &v, &asset, err);
        if (rc == 0 && machine_restore(c, v, asset, r) != 0) {
            rc = MR_ERR_SET(err, MR_ECORRUPT,
                            "checkpoint: truncated or malformed machine %llu (shift calendar "
                            "changed?)",
                            (unsigned long long)i);
        }
        if (rc == 0) {
            oee_set_due(c, v);
        }
    }
    return rc == 0 ? lines_restore(c, r, err) : rc;
}

/* ---- life cycle ---- */

static void oee_fini(void *ctx)
{
    struct oee_ctx *c = ctx;
    mr_free(c->shift_names);
    mr_free(c->out_ids);
    mr_keymap_fini(&c->lines);
    mr_op_keyed_fini(&c->keyed);
    mr_op_buf_fini(&c->out);
    memset(c, 0, sizeof(*c));
}

static char *const default_shift_name = "day";

/* The calendar from the config (already validated by oee_check). */
static int calendar_init(struct oee_ctx *c, struct mr_err *err)
{
    const struct oee_conf *cf = c->conf;
    int64_t st[MR_OEE_MAX_SHIFTS] = {0}, en[MR_OEE_MAX_SHIFTS] = {0};
    int64_t bs[MR_OEE_MAX_BREAKS] = {0}, be[MR_OEE_MAX_BREAKS] = {0};
    int64_t off = 0;
    size_t ns = cf->shifts.n > 0 ? cf->shifts.n : 1;
    c->shift_names = mr_calloc(ns, sizeof(char *));
    if (c->shift_names == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    c->shift_names[0] = default_shift_name; /* no shifts: one 24-hour shift "day" */
    int bad = 0;
    const struct oee_shift_conf *sh = cf->shifts.items;
    for (size_t i = 0; i < cf->shifts.n && i < MR_OEE_MAX_SHIFTS; i++) {
        bad |= mr_oee_tod_parse(sh[i].start, &st[i]) | mr_oee_tod_parse(sh[i].end, &en[i]);
        c->shift_names[i] = sh[i].name;
    }
    const struct oee_break_conf *br = cf->breaks.items;
    for (size_t i = 0; i < cf->breaks.n && i < MR_OEE_MAX_BREAKS; i++) {
        bad |= mr_oee_tod_parse(br[i].start, &bs[i]) | mr_oee_tod_parse(br[i].end, &be[i]);
    }
    bad |= mr_oee_offset_parse(cf->utc_offset, &off);
    if (bad != 0) {
        return MR_ERR_SET(err, MR_EINVAL, "shift calendar: bad time (use HH:MM)");
    }
    return mr_oee_cal_init(&c->cal, st, en, (int)ns, bs, be, (int)cf->breaks.n, off, err);
}

static int oee_init(void *ctx, const void *conf, struct mr_operator_host *host, struct mr_err *err)
{
    struct oee_ctx *c = ctx;
    const struct oee_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->sweep_due = INT64_MAX;
    c->lines_due = INT64_MAX;
    int rc = mr_op_base_init(&c->base, &mr_operator_oee, host, err);
    if (rc != 0) {
        return rc;
    }
    c->out_ids = mr_calloc(32, sizeof(mr_name_id));
    if (c->out_ids == NULL ||
        mr_op_keyed_init(&c->keyed, sizeof(struct oee_machine), (uint32_t)cf->max_machines) != 0 ||
        mr_keymap_init(&c->lines, sizeof(struct oee_acc), (uint32_t)cf->max_machines) != 0 ||
        mr_op_buf_init(&c->out, &c->base, 0) != 0) {
        oee_fini(c);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    rc = calendar_init(c, err);
    if (rc != 0) {
        oee_fini(c);
        return rc;
    }
    struct mr_names *names = host->names;
    const char *sig[4] = {cf->produced_signal, cf->good_signal, cf->reject_signal,
                          cf->state_signal};
    for (int i = 0; i < 4 && rc == 0; i++) {
        mr_name_id *id = i < 3 ? &c->sig_count[i] : &c->sig_state;
        rc = sig[i] != NULL && sig[i][0] != '\0'
                 ? mr_names_intern(names, sig[i], strlen(sig[i]), id)
                 : 0;
    }
    rc = rc == 0 ? oee_emit_names(c) : rc;
    if (rc != 0) {
        oee_fini(c);
        return MR_ERR_SET(err, rc, "cannot intern names: %s", mr_strerror(rc));
    }
    return 0;
}

static void check_tod(struct mr_config_check *chk, const char *field, const char *what,
                      const char *s)
{
    int64_t ns = 0;
    if (s == NULL || mr_oee_tod_parse(s, &ns) != 0) {
        mr_config_check_fail(chk, field, "%s '%s' is not a time of day HH:MM (00:00 to 24:00)",
                             what, s != NULL ? s : "");
    }
}

/* Shifts must not overlap: build the calendar as init will (only when every time parses). */
static void check_overlap(const struct oee_conf *c, struct mr_config_check *chk)
{
    int64_t st[MR_OEE_MAX_SHIFTS], en[MR_OEE_MAX_SHIFTS];
    const struct oee_shift_conf *sh = c->shifts.items;
    if (c->shifts.n > MR_OEE_MAX_SHIFTS) {
        return;
    }
    for (size_t i = 0; i < c->shifts.n; i++) {
        if (mr_oee_tod_parse(sh[i].start, &st[i]) != 0 ||
            mr_oee_tod_parse(sh[i].end, &en[i]) != 0) {
            return;
        }
    }
    struct mr_oee_cal cal;
    struct mr_err err;
    if (mr_oee_cal_init(&cal, st, en, (int)c->shifts.n, NULL, NULL, 0, 0, &err) != 0) {
        mr_config_check_fail(chk, "shifts", "%s", err.msg);
    }
}

static void oee_check(void *conf, struct mr_config_check *chk)
{
    const struct oee_conf *c = conf;
    if (c->shifts.n > MR_OEE_MAX_SHIFTS) {
        mr_config_check_fail(chk, "shifts", "at most %d shifts", MR_OEE_MAX_SHIFTS);
    }
    if (c->breaks.n > MR_OEE_MAX_BREAKS) {
        mr_config_check_fail(chk, "breaks", "at most %d breaks", MR_OEE_MAX_BREAKS);
    }
    const struct oee_shift_conf *sh = c->shifts.items;
    for (size_t i = 0; i < c->shifts.n; i++) {
        check_tod(chk, "shifts", "start", sh[i].start);
        check_tod(chk, "shifts", "end", sh[i].end);
    }
    const struct oee_break_conf *br = c->breaks.items;
    for (size_t i = 0; i < c->breaks.n; i++) {
        check_tod(chk, "breaks", "start", br[i].start);
        check_tod(chk, "breaks", "end", br[i].end);
    }
    int64_t off = 0;
    if (mr_oee_offset_parse(c->utc_offset, &off) != 0) {
        mr_config_check_fail(chk, "utc_offset", "'%s' is not an offset like +01:00 or -05:00",
                             c->utc_offset != NULL ? c->utc_offset : "");
    }
    for (size_t i = 0; i < c->ideal_by_machine.n; i++) {
        struct mr_err e;
        int64_t ns = 0;
        if (mr_duration_parse(c->ideal_by_machine.items[i].value, &ns, &e) != 0 || ns <= 0) {
            mr_config_check_fail(chk, "ideal_cycle_times", "%s: '%s' is not a duration like 6s",
                                 c->ideal_by_machine.items[i].key,
                                 c->ideal_by_machine.items[i].value);
        }
    }
    if (c->ideal_ns <= 0 && c->ideal_by_machine.n == 0) {
        mr_config_check_fail(chk, "ideal_cycle_time",
                             "set the ideal cycle time (the fastest possible time per part, "
                             "e.g. 6s), or ideal_cycle_times per machine");
    }
    for (int i = 0; i < NKPI; i++) {
        if (c->targets[i] < 0 || c->targets[i] > 1) {
            mr_config_check_fail(chk, "targets", "targets are fractions between 0 and 1");
        }
    }
    check_overlap(c, chk);
}

#define F(member) offsetof(struct oee_conf, member)

static const struct mr_field shift_fields[] = {
    {.name = "name",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct oee_shift_conf, name),
     .flags = MR_FIELD_REQUIRED,
     .help = "Name of the shift, e.g. early; results carry it in tag shift."},
    {.name = "start",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct oee_shift_conf, start),
     .flags = MR_FIELD_REQUIRED,
     .help = "Local start time, HH:MM, e.g. \"06:00\"."},
    {.name = "end",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct oee_shift_conf, end),
     .flags = MR_FIELD_REQUIRED,
     .help = "Local end time, HH:MM; an end before the start crosses midnight (\"22:00\" to "
             "\"06:00\"); equal to the start: a 24-hour shift."},
    {0},
};

static const struct mr_section shift_section = {.fields = shift_fields,
                                                .size = sizeof(struct oee_shift_conf)};

static const struct mr_field break_fields[] = {
    {.name = "name",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct oee_break_conf, name),
     .help = "Name of the break, for people reading the file (e.g. lunch)."},
    {.name = "start",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct oee_break_conf, start),
     .flags = MR_FIELD_REQUIRED,
     .help = "Local start time, HH:MM."},
    {.name = "end",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct oee_break_conf, end),
     .flags = MR_FIELD_REQUIRED,
     .help = "Local end time, HH:MM."},
    {0},
};

static const struct mr_section break_section = {.fields = break_fields,
                                                .size = sizeof(struct oee_break_conf)};

static const struct mr_field target_fields[] = {
    {.name = "oee",
     .type = MR_FIELD_DOUBLE,
     .offset = 0,
     .def = "0",
     .help = "OEE target as a fraction (0.6 = 60 %); 0: no alert."},
    {.name = "availability",
     .type = MR_FIELD_DOUBLE,
     .offset = sizeof(double),
     .def = "0",
     .help = "Availability target as a fraction; 0: no alert."},
    {.name = "performance",
     .type = MR_FIELD_DOUBLE,
     .offset = 2 * sizeof(double),
     .def = "0",
     .help = "Performance target as a fraction; 0: no alert."},
    {.name = "quality",
     .type = MR_FIELD_DOUBLE,
     .offset = 3 * sizeof(double),
     .def = "0",
     .help = "Quality target as a fraction; 0: no alert."},
    {0},
};

static const struct mr_section target_section = {.fields = target_fields,
                                                 .size = NKPI * sizeof(double)};

#define STATES(key, idx, dflt, what)                                                               \
    {                                                                                              \
        .name = key, .type = MR_FIELD_STRING_LIST,                                                 \
        .offset = F(states) + (idx) * sizeof(struct mr_strlist), .def = dflt, .help = what         \
    }

static const struct mr_field oee_fields[] = {
    {.name = "ideal_cycle_time",
     .type = MR_FIELD_DURATION,
     .offset = F(ideal_ns),
     .def = "0s",
     .help = "Ideal cycle time (ISO 22400 PRI): the fastest time per part the machine is "
             "designed for, e.g. 6s. Used for machines not in ideal_cycle_times."},
    {.name = "ideal_cycle_times",
     .type = MR_FIELD_STRING_MAP,
     .offset = F(ideal_by_machine),
     .help = "Ideal cycle time per machine, by machine name (last part of the asset path) or "
             "full asset path, e.g. {press1: 6s, weld1: 9s}."},
    {.name = "state_signal",
     .type = MR_FIELD_STRING,
     .offset = F(state_signal),
     .def = "state",
     .help = "Signal carrying the machine state (text, or a number matched as text)."},
    {.name = "produced_signal",
     .type = MR_FIELD_STRING,
     .offset = F(produced_signal),
     .def = "cycle_count",
     .help = "Counter of parts produced (good and bad)."},
    {.name = "good_signal",
     .type = MR_FIELD_STRING,
     .offset = F(good_signal),
     .def = "good_count",
     .help = "Counter of good parts (first pass: reworked parts are not good)."},
    {.name = "reject_signal",
     .type = MR_FIELD_STRING,
     .offset = F(reject_signal),
     .def = "reject_count",
     .help = "Counter of rejected parts; only used to tell start-up rejects from production "
             "rejects (quality itself comes from produced and good)."},
    STATES("running_states", CAT_RUN, "[RUNNING]",
           "States in which the machine produces (actual production time)."),
    STATES("down_states", CAT_DOWN, "[DOWN]",
           "Unplanned stops: breakdowns (availability loss). Unknown states count here too."),
    STATES("idle_states", CAT_IDLE, "[IDLE]",
           "Machine ready but waiting (no material, no order, blocked): availability loss."),
    STATES("setup_states", CAT_SETUP, "[SETUP]", "Setup and changeover (availability loss)."),
    STATES("planned_states", CAT_PLANNED, "[PLANNED_STOP]",
           "Planned stops (breaks, planned maintenance): excluded from OEE."),
    {.name = "planned_stop",
     .type = MR_FIELD_ENUM,
     .offset = F(planned_stop),
     .def = "state",
     .values = planned_names,
     .help = "state: a planned state is planned downtime whenever it occurs; calendar: only "
             "inside the breaks listed here, so a break that overruns counts as breakdown."},
    {.name = "microstop_threshold",
     .type = MR_FIELD_DURATION,
     .offset = F(microstop_ns),
     .def = "2m",
     .help = "Down or idle stops shorter than this are small stops: their time counts as "
             "running at reduced performance, not as lost availability. 0: every stop counts "
             "as downtime. Shift results wait this long after the shift end."},
    {.name = "startup_period",
     .type = MR_FIELD_DURATION,
     .offset = F(startup_ns),
     .def = "0s",
     .help = "Rejects within this time after a setup, planned stop or breakdown are start-up "
             "rejects; later ones production rejects. 0: all rejects are production rejects."},
    {.name = "shifts",
     .type = MR_FIELD_SECTION_LIST,
     .offset = F(shifts),
     .section = &shift_section,
     .help = "Shift calendar (planned operation time), e.g. [{name: early, start: \"06:00\", "
             "end: \"14:00\"}]. Time outside every shift is not counted. Empty: one 24-hour "
             "shift named day."},
    {.name = "breaks",
     .type = MR_FIELD_SECTION_LIST,
     .offset = F(breaks),
     .section = &break_section,
     .help = "Planned breaks every day, e.g. [{name: lunch, start: \"10:00\", end: "
             "\"10:30\"}]: planned downtime, unless the machine keeps running."},
    {.name = "utc_offset",
     .type = MR_FIELD_STRING,
     .offset = F(utc_offset),
     .def = "+00:00",
     .help = "Offset of the plant's local time from UTC for the shift times, e.g. +01:00."},
    {.name = "interval",
     .type = MR_FIELD_DURATION,
     .offset = F(interval_ns),
     .def = "1m",
     .help = "How often (in event time) the running shift's OEE so far is emitted (status "
             "partial) and targets are checked; 0: only at shift end."},
    {.name = "line_level",
     .type = MR_FIELD_INT,
     .offset = F(line_level),
     .def = "3",
     .min = "0",
     .max = "16",
     .help = "Line results go to the first line_level parts of the machine's asset path "
             "(plant1/assembly/line1/press1 -> plant1/assembly/line1 with 3); 0: no line "
             "results."},
    {.name = "day",
     .type = MR_FIELD_BOOL,
     .offset = F(day),
     .def = "true",
     .help = "Also emit day results (all shifts starting that day, from summed times)."},
    {.name = "details",
     .type = MR_FIELD_BOOL,
     .offset = F(details),
     .def = "true",
     .help = "Also emit the time elements, part counts and the six big losses (in seconds)."},
    {.name = "pass_through",
     .type = MR_FIELD_BOOL,
     .offset = F(pass_through),
     .def = "false",
     .help = "Pass the input records on as well (default: only results)."},
    {.name = "targets",
     .type = MR_FIELD_SECTION,
     .offset = F(targets),
     .section = &target_section,
     .help = "Targets for an alert, as fractions, e.g. {oee: 0.6, availability: 0.8}."},
    {.name = "alert_after",
     .type = MR_FIELD_DURATION,
     .offset = F(alert_after_ns),
     .def = "15m",
     .help = "Raise the alert when a KPI was below its target in every interval for this long."},
    {.name = "max_machines",
     .type = MR_FIELD_INT,
     .offset = F(max_machines),
     .def = "100000",
     .min = "1",
     .max = "10000000",
     .help = "Most machines tracked (also the most line sums open at once); records of further "
             "machines count as errors."},
    {0},
};

const struct mr_plugin mr_operator_oee = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "oee",
    .help = "Overall Equipment Effectiveness (ISO 22400-2) per machine, line, shift and day from "
            "machine states and part counters, on event time: availability, performance, "
            "quality, the six big losses, continuous updates and below-target alerts.",
    .conf = {.fields = oee_fields, .size = sizeof(struct oee_conf), .check = oee_check},
    .ctx_size = sizeof(struct oee_ctx),
    .op = {.init = oee_init,
           .process = oee_process,
           .advance = oee_advance,
           .snapshot = oee_snapshot,
           .restore = oee_restore,
           .fini = oee_fini},
};
