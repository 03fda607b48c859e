/* Operator `oee`: continuous Overall Equipment Effectiveness per machine, line, shift and day
 * (ISO 22400-2), on event time, with the six big losses.
 *
 *   steps:
 *     - type: oee
 *       ideal_cycle_time: 6s                  # PRI; per machine: ideal_cycle_times
 *       ideal_cycle_times: {weld1: 9s}        # by machine name (last path segment) or asset
 *       shifts:
 *         - {name: early, start: "06:00", end: "14:00"}
 *         - {name: late,  start: "14:00", end: "22:00"}
 *       breaks:
 *         - {name: lunch, start: "10:00", end: "10:30"}
 *       utc_offset: "+01:00"                  # shift times are local
 *       microstop_threshold: 2m               # shorter stops are small stops (performance)
 *       interval: 1m                          # continuous updates; 0: only at shift end
 *       line_level: 3                         # line = first 3 path segments
 *       targets: {oee: 0.6}                   # alert when below for alert_after
 *       alert_after: 30m
 *
 * Inputs per machine asset: `state` (text; lists running_states, down_states, idle_states,
 * setup_states, planned_states map it to the ISO 22400 elements APT, ADET, ADOT, AUST, PDOT),
 * and the counters `cycle_count` (produced), `good_count` (good) and `reject_count` (used to
 * tell start-up rejects). Records of other signals are dropped (pass_through: keep them).
 *
 * Time model. A state holds from its record's time until the next state record of the machine
 * (or the watermark): durations come from event times only. Time is booked to the shift
 * occurrence of the calendar containing it, split at every shift and break boundary; time
 * outside every shift is outside planned operation time and not booked. Inside a planned
 * break, any state but running is planned downtime (a machine that keeps running through a
 * break books production). planned_stop: state counts the planned states as planned downtime
 * anywhere; planned_stop: calendar counts them as planned only inside a break (an overrun
 * break, or an unplanned "planned" stop, is a breakdown). A down or idle stop shorter than
 * microstop_threshold is a small stop: its time stays in APT (Nakajima: performance loss);
 * it is known to be short only when it ends, so a shift closes at most microstop_threshold
 * after its end. Parts count at their record's time (counter increments; the first value of a
 * counter is its base; a counter going down was reset: counting restarts from the new value).
 * Rejects within startup_period after the machine returns to running from setup, planned
 * downtime or a (long) breakdown are start-up rejects.
 *
 * KPIs (ISO 22400-2): PBT = APT + ADET + ADOT + AUST; A = APT / PBT; P = PRI x PQ / APT;
 * Q = GQ / PQ; OEE = PRI x GQ / PBT (= A x P x Q). Line and day results sum the elements of
 * their machines and shifts, never average ratios. Losses (s): breakdown ADET, setup AUST,
 * idle ADOT, small_stops, speed = APT - small_stops - PRI x PQ, startup_rejects and
 * production_rejects = PRI x rejects; with PRI x GQ they sum to PBT.
 *
 * Output: records oee, oee.availability, oee.performance, oee.quality (absent when undefined)
 * and with details: oee.planned_busy_time, oee.run_time, oee.planned_downtime (s),
 * oee.produced, oee.good, oee.loss.* (s); tags period (shift|day), shift, status (final at
 * the shift's or day's end, partial at each interval tick), window_start, window_end (ns).
 * Times: the window end (final) or the tick (partial): deterministic. Machines are emitted when
 * their watermark passes; lines and days when the pipeline watermark (advance with asset 0)
 * passes plus microstop_threshold. An alert (signal alert) is raised when a KPI of every
 * interval slice stays below its target for alert_after.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/oee_internal.h"
#include "millrace/alloc.h"

enum { CNT_PRODUCED, CNT_GOOD, CNT_REJECT };

/* ---- calendar segments and booking ---- */

static struct oee_acc *bucket_get(struct oee_ctx *c, struct oee_machine *m,
                                  const struct mr_oee_span *s, bool create);
static int bucket_close(struct oee_ctx *c, struct oee_machine *m, int i);

static bool is_stop(int cat)
{
    return cat == CAT_DOWN || cat == CAT_IDLE;
}

/* The open stop is over: its pending time becomes small stops or its own element. */
static void episode_resolve(struct oee_machine *m, bool small)
{
    struct oee_acc *accs[] = {&m->acc[0], &m->acc[1], &m->slice};
    for (size_t i = 0; i < sizeof(accs) / sizeof(accs[0]); i++) {
        struct oee_acc *a = accs[i];
        if (a->pending == 0) {
            continue;
        }
        if (small) {
            a->micro += a->pending;
            a->nmicro++;
        } else {
            a->t[m->ep_cat] += a->pending;
        }
        a->pending = 0;
    }
    m->ep_cat = -1;
}

/* Book [a, b) in the machine's current state. */
static void book(struct oee_ctx *c, struct oee_machine *m, int64_t a, int64_t b)
{
    const struct oee_conf *cf = c->conf;
    while (m->cat >= 0 && a < b) {
        if (a < m->seg.from || a >= m->seg.to) {
            mr_oee_cal_at(&c->cal, a, &m->seg);
        }
        int64_t end = b < m->seg.to ? b : m->seg.to;
        if (m->seg.shift >= 0) {
            int cat = m->cat;
            if (m->seg.brk && cat != CAT_RUN) {
                cat = CAT_PLANNED;
            } else if (!m->seg.brk && cat == CAT_PLANNED && cf->planned_stop == 1) {
                cat = CAT_DOWN; /* planned_stop: calendar: outside a break it is unplanned */
            }
            struct oee_acc *acc = bucket_get(c, m, &m->seg, true);
            bool pend = m->ep_cat >= 0 && cat == m->ep_cat;
            if (acc != NULL) {
                *(pend ? &acc->pending : &acc->t[cat]) += end - a;
            }
            *(pend ? &m->slice.pending : &m->slice.t[cat]) += end - a;
        }
        a = end;
    }
    if (m->ep_cat >= 0 && b - m->ep_start >= cf->microstop_ns) {
        episode_resolve(m, false); /* long enough: a real stop from its start */
    }
}

static void book_to(struct oee_ctx *c, struct oee_machine *m, int64_t t)
{
    if (t > m->cursor) {
        if (m->cursor != INT64_MIN) {
            book(c, m, m->cursor, t);
        }
        m->cursor = t;
    }
}

/* The open shift bucket of span s; a third shift closes the oldest first. */
static struct oee_acc *bucket_get(struct oee_ctx *c, struct oee_machine *m,
                                  const struct mr_oee_span *s, bool create)
{
    for (int i = 0; i < 2; i++) {
        if (m->acc[i].used && m->acc[i].start == s->occ_start) {
            return &m->acc[i];
        }
    }
    if (!create) {
        return NULL;
    }
    if (m->acc[1].used) {
        if (m->acc[0].pending > 0) {
            episode_resolve(m, m->cursor - m->ep_start < c->conf->microstop_ns);
        }
        /* only when records run more than a shift ahead of the watermark; an emit error
         * here is the host's and comes back from the next flush */
        (void)bucket_close(c, m, 0);
    }
    int i = m->acc[0].used ? 1 : 0;
    m->acc[i] =
        (struct oee_acc){.start = s->occ_start, .end = s->occ_end, .shift = s->shift, .used = 1};
    return &m->acc[i];
}

/* ---- results ---- */

static int day_close(struct oee_ctx *c, struct oee_machine *m)
{
    int64_t at = m->day.end;
    int rc = oee_emit_view(c, m->asset, &m->day, WIN_DAY, at, true);
    if (rc == 0) {
        rc = oee_line_add(c, m->line, &m->day, WIN_DAY, at,
                          mr_op_time_add(at, c->conf->microstop_ns));
    }
    m->day.used = 0;
    return rc;
}

/* Emit bucket i as final, add it to its line and day; the newer bucket moves down. */
static int bucket_close(struct oee_ctx *c, struct oee_machine *m, int i)
{
    struct oee_acc *a = &m->acc[i];
    const struct oee_conf *cf = c->conf;
    int rc = oee_emit_view(c, m->asset, a, WIN_SHIFT, a->end, true);
    if (rc == 0) {
        rc = oee_line_add(c, m->line, a, WIN_SHIFT, a->end,
                          mr_op_time_add(a->end, cf->microstop_ns));
    }
    if (rc == 0 && cf->day) {
        struct mr_oee_span s;
        mr_oee_cal_at(&c->cal, a->start, &s);
        int64_t first = s.day + c->cal.day_first;
        if (m->day.used && m->day.start != first) {
            rc = day_close(c, m);
        }
        if (!m->day.used) {
            m->day = (struct oee_acc){
                .start = first, .end = s.day + c->cal.day_last, .shift = -1, .used = 1};
        }
        oee_acc_add(&m->day, a);
    }
    if (i == 0) {
        m->acc[0] = m->acc[1];
    }
    m->acc[1].used = 0;
    return rc;
}

/* Interval tick at t: the open shift's partial result, its line share, the slice's alerts. */
static int tick(struct oee_ctx *c, struct oee_machine *m, int64_t t)
{
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        struct oee_acc *a = &m->acc[i];
        if (a->used && a->start < t && t < a->end) {
            rc = oee_emit_view(c, m->asset, a, WIN_SHIFT, t, false);
            rc = rc == 0 ? oee_line_add(c, m->line, a, WIN_PARTIAL, t, t) : rc;
        }
    }
    if (rc == 0) {
        rc = oee_alert_check(c, m, &m->slice, t);
    }
    m->slice = (struct oee_acc){.start = t};
    return rc;
}

/* A shift of the day is still open. */
static bool day_blocked(const struct oee_machine *m)
{
    return m->acc[0].used && m->acc[0].start < m->day.end;
}

static int64_t machine_due(const struct oee_ctx *c, const struct oee_machine *m)
{
    int64_t due = c->conf->interval_ns > 0 ? m->next_tick : INT64_MAX;
    for (int i = 0; i < 2; i++) {
        if (m->acc[i].used) {
            int64_t d = m->acc[i].end;
            if (m->ep_cat >= 0 && m->acc[i].pending > 0) {
                d = mr_op_time_add(m->ep_start, c->conf->microstop_ns);
                d = d > m->acc[i].end ? d : m->acc[i].end;
            }
            due = d < due ? d : due;
        }
    }
    if (m->cat >= 0 && !m->acc[0].used) {
        /* a state but no open shift: visit when the next shift (or segment) begins or ends,
         * so that the pipeline watermark closes the shifts of a silent machine */
        struct mr_oee_span s;
        mr_oee_cal_at(&c->cal, m->cursor, &s);
        int64_t d = s.shift >= 0 ? s.occ_end : s.to;
        due = d < due ? d : due;
    }
    if (m->day.used && m->day.end < due && !day_blocked(m)) {
        due = m->day.end;
    }
    return due;
}

void oee_set_due(struct oee_ctx *c, struct oee_machine *m)
{
    int64_t due = machine_due(c, m);
    if (due != m->link.due) {
        mr_op_keyed_set_due(&c->keyed, m->asset, m, due); /* a lookup: only on changes */
    }
    c->sweep_due = due < c->sweep_due ? due : c->sweep_due;
}

/* Run the interval ticks at or before t. Called with the watermark and with the time of each
 * record before it is applied, so a partial result at tick T holds exactly the records before
 * T whatever the batching (results must be deterministic: replays are de-duplicated). */
static int ticks_to(struct oee_ctx *c, struct oee_machine *m, int64_t t)
{
    int64_t iv = c->conf->interval_ns;
    int rc = 0;
    while (iv > 0 && m->next_tick <= t && rc == 0) {
        book_to(c, m, m->next_tick);
        rc = tick(c, m, m->next_tick);
        m->next_tick += iv;
        if ((t - m->next_tick) / iv > 100000) {
            m->next_tick = t - t % iv; /* bound the work of one call: skip to the last tick */
        }
    }
    return rc;
}

/* The machine's watermark is wm: book up to it, run ticks, close what is complete. */
static int machine_advance(struct oee_ctx *c, struct oee_machine *m, int64_t wm)
{
    int rc = ticks_to(c, m, wm);
    book_to(c, m, wm);
    while (rc == 0 && m->acc[0].used && m->acc[0].end <= wm &&
           !(m->ep_cat >= 0 && m->acc[0].pending > 0)) {
        rc = bucket_close(c, m, 0);
    }
    if (rc == 0 && m->day.used && m->day.end <= wm && !day_blocked(m)) {
        rc = day_close(c, m);
    }
    return rc;
}

static int visit(void *arg, uint64_t key, void *entry)
{
    (void)key;
    struct oee_ctx *c = ((void **)arg)[0];
    int64_t wm = *(int64_t *)((void **)arg)[1];
    struct oee_machine *m = entry;
    int rc = machine_advance(c, m, wm);
    oee_set_due(c, m);
    return rc;
}

/* ---- records ---- */

static int state_cat(const struct oee_ctx *c, const struct mr_record *rec)
{
    char num[32];
    const char *s = num;
    size_t len = 0;
    if (rec->type == MR_VALUE_STRING) {
        s = rec->v.str.ptr;
        len = rec->v.str.len;
    } else if (rec->type == MR_VALUE_I64) {
        len = (size_t)snprintf(num, sizeof(num), "%lld", (long long)rec->v.i64);
    } else {
        return -1;
    }
    for (int k = 0; k < NCAT; k++) {
        const struct mr_strlist *l = &c->conf->states[k];
        for (size_t i = 0; i < l->n; i++) {
            if (strlen(l->items[i]) == len && memcmp(l->items[i], s, len) == 0) {
                return k;
            }
        }
    }
    return -1;
}

static void state_apply(struct oee_ctx *c, struct oee_machine *m, const struct mr_record *rec)
{
    int cat = state_cat(c, rec);
    if (cat < 0) {
        int len =
            rec->type == MR_VALUE_STRING ? (int)(rec->v.str.len > 40 ? 40 : rec->v.str.len) : 0;
        mr_op_warn(&c->base,
                   "unknown machine state '%.*s' (booked as breakdown): add it to one of "
                   "running_states, down_states, idle_states, setup_states, planned_states",
                   len, rec->type == MR_VALUE_STRING ? rec->v.str.ptr : "");
        cat = CAT_DOWN;
    }
    int64_t t = rec->time_ns;
    int old = m->cat;
    bool long_stop = old == CAT_DOWN && m->ep_cat < 0;
    if (m->ep_cat >= 0 && cat != m->ep_cat) {
        long_stop = t - m->ep_start >= c->conf->microstop_ns;
        episode_resolve(m, !long_stop);
    }
    if (is_stop(cat) && cat != old && c->conf->microstop_ns > 0) {
        m->ep_cat = (int8_t)cat;
        m->ep_start = t;
    }
    if (cat == CAT_RUN && (old == CAT_SETUP || old == CAT_PLANNED || long_stop)) {
        m->run_since = t;
    }
    m->cat = (int8_t)cat;
}

static void count_apply(struct oee_ctx *c, struct oee_machine *m, const struct mr_record *rec,
                        int which)
{
    int64_t v = rec->v.i64;
    if (rec->type == MR_VALUE_F64) {
        if (!isfinite(rec->v.f64) || fabs(rec->v.f64) > 9e18) {
            mr_op_warn(&c->base, "counter value not finite or out of range");
            return;
        }
        v = (int64_t)rec->v.f64;
    }
    int64_t d = 0;
    if (m->has_last & (1u << which)) {
        d = v >= m->last[which] ? v - m->last[which] : 0; /* down: reset, count from v */
    }
    m->last[which] = v;
    m->has_last |= (uint8_t)(1u << which);
    if (d == 0) {
        return;
    }
    struct mr_oee_span s = m->seg;
    if (rec->time_ns < s.from || rec->time_ns >= s.to) {
        mr_oee_cal_at(&c->cal, rec->time_ns, &s);
    }
    if (s.shift < 0) {
        return; /* outside planned operation time */
    }
    struct oee_acc *a = bucket_get(c, m, &s, rec->time_ns >= m->cursor);
    if (a == NULL) {
        mr_op_warn(&c->base, "late parts dropped: their shift was already reported");
        return;
    }
    struct oee_acc *accs[2] = {a, &m->slice};
    for (int i = 0; i < 2; i++) {
        if (which == CNT_PRODUCED) {
            accs[i]->pq += d;
            accs[i]->ideal_pq += m->pri_s * (double)d;
        } else if (which == CNT_GOOD) {
            accs[i]->gq += d;
            accs[i]->ideal_gq += m->pri_s * (double)d;
        } else if (m->run_since != INT64_MIN &&
                   rec->time_ns < mr_op_time_add(m->run_since, c->conf->startup_ns)) {
            accs[i]->startup += d;
            accs[i]->ideal_startup += m->pri_s * (double)d;
        }
    }
}

/* Line asset: the first line_level segments of the asset path (0 when shorter). */
static int line_of(struct oee_ctx *c, mr_name_id asset, mr_name_id *line)
{
    *line = 0;
    size_t len = 0;
    const char *s = mr_names_str(c->base.host->names, asset, &len);
    size_t cut = mr_op_path_prefix(s, len, c->conf->line_level);
    return cut > 0 ? mr_names_intern(c->base.host->names, s, cut, line) : 0;
}

static double ideal_of(const struct oee_ctx *c, mr_name_id asset)
{
    size_t len = 0;
    const char *s = mr_names_str(c->base.host->names, asset, &len);
    const char *last = s;
    for (size_t i = 0; s != NULL && i < len; i++) {
        if (s[i] == '/') {
            last = s + i + 1;
        }
    }
    const struct mr_strmap *mp = &c->conf->ideal_by_machine;
    for (size_t i = 0; s != NULL && i < mp->n; i++) {
        const char *k = mp->items[i].key;
        size_t kl = strlen(k);
        if ((kl == len && memcmp(k, s, len) == 0) ||
            (kl == (size_t)(s + len - last) && memcmp(k, last, kl) == 0)) {
            struct mr_err err;
            int64_t ns = 0;
            if (mr_duration_parse(mp->items[i].value, &ns, &err) == 0) {
                return (double)ns / 1e9;
            }
        }
    }
    return (double)c->conf->ideal_ns / 1e9;
}

int oee_machine_init(struct oee_ctx *c, struct oee_machine *m, mr_name_id asset)
{
    m->asset = asset;
    m->cursor = INT64_MIN;
    m->run_since = INT64_MIN;
    m->cat = -1;
    m->ep_cat = -1;
    m->seg.to = INT64_MIN;
    m->pri_s = ideal_of(c, asset);
    for (int i = 0; i < NKPI; i++) {
        m->below_since[i] = INT64_MIN;
    }
    return line_of(c, asset, &m->line);
}

static struct oee_machine *machine_get(struct oee_ctx *c, mr_name_id asset, int64_t t)
{
    void *v = NULL;
    bool inserted = false;
    int rc = mr_op_keyed_get(&c->keyed, asset, 0, &v, &inserted);
    if (rc == 0 && inserted) {
        rc = oee_machine_init(c, v, asset);
        int64_t iv = c->conf->interval_ns;
        ((struct oee_machine *)v)->slice.start = t;
        if (iv > 0) {
            ((struct oee_machine *)v)->next_tick = t - t % iv + iv;
        }
    }
    if (rc != 0) {
        mr_op_warn(&c->base, "machine not tracked: %s (max_machines %lld)", mr_strerror(rc),
                   (long long)c->conf->max_machines);
        return NULL;
    }
    return v;
}

static int process_one(void *ctx, const struct mr_record *rec)
{
    struct oee_ctx *c = ctx;
    int which = rec->signal == c->sig_state ? 3 : -1;
    for (int i = 0; i < 3 && which < 0; i++) {
        which = rec->signal == c->sig_count[i] ? i : -1;
    }
    if (c->conf->pass_through) {
        int prc = mr_op_buf_push(&c->out, rec);
        if (prc != 0) {
            return prc;
        }
    }
    if (which < 0) {
        return 0;
    }
    if (rec->quality != MR_QUALITY_GOOD ||
        (which < 3 && rec->type != MR_VALUE_I64 && rec->type != MR_VALUE_F64)) {
        return 0;
    }
    struct oee_machine *m = machine_get(c, rec->asset, rec->time_ns);
    if (m == NULL) {
        return 0;
    }
    int rc = rec->time_ns >= m->next_tick ? ticks_to(c, m, rec->time_ns) : 0;
    if (rc != 0) {
        return rc;
    }
    if (which == 3) {
        if (rec->time_ns < m->cursor) {
            mr_op_warn(&c->base, "late state record dropped: its time was already booked");
            return 0;
        }
        book_to(c, m, rec->time_ns);
        state_apply(c, m, rec);
    } else {
        book_to(c, m, rec->time_ns);
        count_apply(c, m, rec, which);
    }
    oee_set_due(c, m);
    return 0;
}

int oee_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct oee_ctx *c = ctx;
    int rc = mr_op_process_each(&c->base, &c->out, recs, n, process_one, c, err);
    c->ntext = 0;
    return rc;
}

/* asset 0: the pipeline watermark; close what idle machines hold, then line windows. */
static int sweep(struct oee_ctx *c, int64_t wm)
{
    int rc = 0;
    if (wm >= c->sweep_due) {
        c->sweep_due = INT64_MAX;
        uint32_t n = mr_op_keyed_count(&c->keyed);
        for (uint32_t i = 0; i < n && rc == 0; i++) {
            struct oee_machine *m = mr_keymap_value_at(&c->keyed.keys, i);
            if (m->link.due <= wm) {
                rc = machine_advance(c, m, wm);
            }
            oee_set_due(c, m);
        }
    }
    return rc == 0 ? oee_lines_advance(c, wm) : rc;
}

int oee_advance(void *ctx, mr_name_id asset, int64_t wm, struct mr_err *err)
{
    struct oee_ctx *c = ctx;
    int rc = 0;
    if (asset == 0) {
        rc = sweep(c, wm);
    } else {
        void *arg[2] = {c, &wm};
        rc = mr_op_keyed_advance(&c->keyed, asset, wm, visit, arg);
    }
    rc = rc == 0 ? mr_op_buf_flush(&c->out) : rc;
    c->out.n = 0;
    c->ntext = 0;
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "passing OEE results on failed: %s", mr_strerror(rc));
    }
    return 0;
}
