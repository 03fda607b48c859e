/* Operator `spc`: in-line quality. Tolerance checks against spec limits, statistical process
 * control charts (individuals/moving range, X-bar/R) with the Western Electric and Nelson
 * rules, rolling capability (Cp, Cpk, Pp, Ppk), and actions on violations: flag events on a
 * quality topic, `adjust` and `halt` commands on a commands topic, rate-limited per machine.
 *
 *   steps:
 *     - type: spc
 *       characteristics:
 *         - signal: dimension
 *           assets: [plant1/machining/line2/lathe2]
 *           lsl: 19.98                  # spec limits, mm
 *           usl: 20.02
 *           target: 20.0
 *           chart: individuals          # or xbar_r with subgroup_size: 2..10
 *           baseline: 25                # first 25 parts set the control limits
 *           rules: [nelson1, nelson2, nelson3, nelson5, nelson6]
 *           actions:
 *             - {when: [tolerance, nelson1], do: flag}
 *             - {when: [nelson2, nelson3, nelson5, nelson6], do: adjust}
 *       commands_topic: commands
 *       quality_topic: quality
 *       cooldown: 10m                   # per machine and command kind
 *       max_commands: 6                 # per machine ...
 *       per: 1h                         # ... within this period
 *
 * Keys. Each (machine asset, characteristic signal) has its own chart. A characteristic applies
 * to the machines its `assets` patterns match (the first characteristic of that signal whose
 * patterns match wins, so one signal can have different specs on different machines). Values
 * are taken in arrival order, which is production order per machine: an SPC point is a part,
 * so the operator needs no watermark and a late value is charted when it arrives.
 * Only good-quality finite numbers are charted; every input record passes through unchanged.
 *
 * Charts. individuals: each value is a point; its moving range |x_i - x_(i-1)| feeds the MR
 * chart. xbar_r: `subgroup_size` consecutive values form a subgroup; its mean and range are
 * the points (records <signal>.xbar and <signal>.range at the subgroup's last value). Phase I:
 * the first `baseline` points give the centre line (mean of the points) and the mean range;
 * sigma = R-bar / d2 (MR-bar / 1.128), limits CL +- 3 sigma for individuals and CL +- A2 R-bar
 * for X-bar, range chart D3 R-bar .. D4 R-bar; then the limits stay fixed (phase II) and are
 * emitted once as <signal>.cl, <signal>.ucl, <signal>.lcl (tags chart, sigma, rbar, range_ucl,
 * range_lcl). `center` and `sigma` declare them instead (both: no baseline).
 *
 * Rules (spc_chart.h): weco1..4, nelson1..8 and range, evaluated on each point after the
 * baseline; tolerance on every value (also during the baseline) when lsl or usl is set. A
 * point exactly on the centre line breaks a one-side run; ties break trends; zone C is
 * |z| <= 1; the point completing a pattern and every further point of it violate.
 *
 * Outputs. alert (main chain, for the alerts topic): when a rule starts to be violated (not on
 * every further point), a sentence with tags feature, value, baseline (centre line),
 * threshold (the limit crossed, or the centre line for runs), sigma, detector (spc), rule
 * (names of all rules starting), severity (alarm for tolerance and beyond-3-sigma, else
 * warning), window_start/window_end (first and last point of the pattern, ns). flag (quality
 * topic): one per violating value or point with a flag action. command (commands topic):
 * string value adjust or halt; tags characteristic, rule, machine, target, mean, reason and,
 * for adjust, offset = adjust_gain * (target - mean of the latest adjust_points points),
 * clamped to +- adjust_max: the amount to add to the machine's setpoint. adjust goes to the
 * machine's asset, halt to its line (the first line_level path segments). A command is
 * suppressed (counted in millrace_spc_commands_suppressed_total) within `cooldown` of the
 * previous command of the same kind to that machine, or when the machine's bucket of
 * max_commands per `per` is empty. All times are event times, so replays give the same
 * commands. Capability: <signal>.cp, .cpk, .pp, .ppk every capability_every values once
 * capability_window values are held (tags window_start, window_end, n, mean, sigma_within,
 * sigma_overall); Cp/Pp need both spec limits.
 *
 * State per key: about 520 bytes plus capability_window * 16 bytes; per machine 40 bytes.
 * Checkpoints (version 1) keep every key by name with its chart, history and window.
 */
#include "analytics/spc.h"
#include "millrace/alloc.h"

#define NAME_MAX_LEN 200

static const char *const out_suffix[NOUT] = {".xbar", ".range", ".cl", ".ucl", ".lcl",
                                             ".cp",   ".cpk",   ".pp", ".ppk"};
static const char *const tag_names[NTAG] = {
    "feature",        "value",     "baseline", "threshold",    "sigma",
    "detector",       "rule",      "severity", "window_start", "window_end",
    "characteristic", "machine",   "target",   "mean",         "reason",
    "offset",         "lsl",       "usl",      "chart",        "rbar",
    "range_ucl",      "range_lcl", "n",        "sigma_within", "sigma_overall"};

/* ---- keys ---- */

static bool numeric(const struct mr_record *rec, double *x)
{
    if (rec->type == MR_VALUE_F64) {
        *x = rec->v.f64;
        return true;
    }
    if (rec->type == MR_VALUE_I64) {
        *x = (double)rec->v.i64;
        return true;
    }
    return false;
}

/* Glob with `*` (any run of characters, also '/'). */
static bool glob_match(const char *p, const char *s, size_t n)
{
    const char *star = NULL;
    size_t si = 0;
    size_t back = 0;
    while (si < n) {
        if (*p == '*') {
            star = ++p;
            back = si;
        } else if (*p != '\0' && *p == s[si]) {
            p++;
            si++;
        } else if (star != NULL) {
            p = star;
            si = ++back;
        } else {
            return false;
        }
    }
    while (*p == '*') {
        p++;
    }
    return *p == '\0';
}

/* The line of an asset: its first line_level path segments (0: the asset itself). */
static int line_of(struct spc_ctx *c, mr_name_id asset, mr_name_id *line)
{
    size_t len = 0;
    const char *s = spc_name_of(c, asset, &len);
    size_t cut = mr_op_path_prefix(s, len, c->conf->line_level);
    if (cut == 0) {
        *line = asset;
        return 0;
    }
    return mr_names_intern(c->base.host->names, s, cut, line);
}

/* Which characteristic charts (asset, signal): the first of that signal whose patterns match. */
static uint8_t char_for(struct spc_ctx *c, mr_name_id asset, mr_name_id signal)
{
    size_t len = 0;
    const char *s = spc_name_of(c, asset, &len);
    for (size_t i = 0; i < c->nchars; i++) {
        const struct spc_char *ch = &c->chars[i];
        if (ch->signal != signal) {
            continue;
        }
        if (ch->conf->assets.n == 0) {
            return (uint8_t)i;
        }
        for (size_t j = 0; j < ch->conf->assets.n; j++) {
            if (glob_match(ch->conf->assets.items[j], s, len)) {
                return (uint8_t)i;
            }
        }
    }
    return SPC_NO_CHAR;
}

/* A new key: its characteristic, line and window (once per key). */
int mr_spc_entry_setup(struct spc_ctx *c, struct spc_entry *e, mr_name_id asset, mr_name_id sig)
{
    e->charx = char_for(c, asset, sig);
    if (e->charx == SPC_NO_CHAR) {
        return 0;
    }
    int rc = line_of(c, asset, &e->line);
    if (rc != 0) {
        return rc;
    }
    size_t cap = (size_t)c->chars[e->charx].conf->capability_window;
    e->ring = mr_calloc(cap, sizeof(*e->ring));
    return e->ring != NULL ? 0 : MR_ENOMEM;
}

static struct spc_entry *entry_get(struct spc_ctx *c, const struct mr_record *rec)
{
    void *v = NULL;
    bool inserted = false;
    int rc = mr_op_keyed_get(&c->keyed, rec->asset, rec->signal, &v, &inserted);
    if (rc == 0 && inserted) {
        rc = mr_spc_entry_setup(c, v, rec->asset, rec->signal);
        if (rc != 0) {
            ((struct spc_entry *)v)->charx = SPC_NO_CHAR;
        }
    }
    if (rc == MR_ETOOBIG) {
        mr_op_warn(&c->base, "value not charted: max_keys (%lld) reached or name too long",
                   (long long)c->conf->max_keys);
    } else if (rc != 0) {
        mr_op_warn(&c->base, "value not charted: %s", mr_strerror(rc));
    }
    return rc == 0 ? v : NULL;
}

/* ---- the chart ---- */

/* Phase I is over: fix the limits and publish them. */
static int freeze(struct spc_ctx *c, const struct spc_char *ch, struct spc_entry *e,
                  const struct mr_record *rec, int64_t t)
{
    const struct mr_spc_char_conf *cf = ch->conf;
    double rootn = sqrt((double)ch->sub);
    e->cl = cf->has_center ? cf->center : e->bmean;
    if (cf->has_sigma) {
        e->sigma = cf->sigma;
        e->rbar = ch->k->d2 * cf->sigma;
        e->splot = cf->sigma / rootn;
    } else {
        e->rbar = e->nr > 0 ? e->rsum / (double)e->nr : 0;
        e->sigma = e->rbar / ch->k->d2;
        /* X-bar limits are CL +- A2 R-bar (the published constant, as hand calculations use) */
        e->splot = ch->sub == 1 ? e->sigma : ch->k->a2 * e->rbar / 3;
    }
    if (!(e->splot > 0)) {
        /* constant values during the baseline: any change is a signal */
        e->sigma = 1e-9 * fmax(1.0, fabs(e->cl));
        e->splot = e->sigma / rootn;
        mr_op_warn(&c->base, "baseline without variation: sigma set to %g", e->sigma);
    }
    e->phase = SPC_RUN;
    const double v[3] = {e->cl, e->cl + 3 * e->splot, e->cl - 3 * e->splot};
    const int ids[3] = {O_CL, O_UCL, O_LCL};
    spc_tag_set(c, T_SIGMA, "%.10g", e->sigma);
    spc_tag_set(c, T_RBAR, "%.10g", e->rbar);
    spc_tag_set(c, T_RUCL, "%.10g", ch->k->d4 * e->rbar);
    spc_tag_set(c, T_RLCL, "%.10g", ch->k->d3 * e->rbar);
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        struct mr_record r = spc_derived(rec, t, ch->out[ids[i]]);
        r.v.f64 = v[i];
        spc_tag_add(c, &r, T_CHART, ch->sub == 1 ? "individuals" : "xbar_r");
        const int tags[] = {T_SIGMA, T_RBAR, T_RUCL, T_RLCL};
        for (size_t j = 0; j < 4; j++) {
            spc_tag_add(c, &r, tags[j], NULL);
        }
        rc = mr_op_buf_push(&c->out, &r);
    }
    return rc == 0 ? mr_op_buf_flush(&c->out) : rc;
}

/* A plotted point p (a value, or a subgroup mean at t) with its range r (NAN: none). Adds
 * the rules it violates to f->rules and the rules evaluated to *evaluated. */
static int plot(struct spc_ctx *c, const struct spc_char *ch, struct spc_entry *e,
                struct spc_finding *f, double r, int64_t t0, uint32_t *evaluated)
{
    const struct mr_spc_char_conf *cf = ch->conf;
    if (e->phase == SPC_LEARN) {
        if (!(cf->has_center && cf->has_sigma)) {
            e->nbase++;
            e->bmean += (f->p - e->bmean) / (double)e->nbase;
            if (!isnan(r)) {
                e->rsum += r;
                e->nr++;
            }
            return e->nbase >= (uint64_t)cf->baseline ? freeze(c, ch, e, f->rec, f->t) : 0;
        }
        int rc = freeze(c, ch, e, f->rec, f->t); /* declared limits: chart from the start */
        if (rc != 0) {
            return rc;
        }
    }
    double z = (f->p - e->cl) / e->splot;
    uint32_t fired = mr_spc_hist_push(&e->hist, f->p, z);
    if (!isnan(r) && (r > ch->k->d4 * e->rbar || r < ch->k->d3 * e->rbar)) {
        fired |= MR_SPC_BIT(MR_SPC_RANGE);
    }
    f->rules |= fired & ch->rules;
    *evaluated |= ch->rules & MR_SPC_CHART_MASK;
    e->recent[e->nrecent % MR_SPC_RECENT] = f->p;
    e->recent_t[e->nrecent % MR_SPC_RECENT] = t0;
    e->nrecent++;
    return 0;
}

/* Cp, Cpk, Pp, Ppk of the window, when due. */
static int capability_push(struct spc_ctx *c, const struct spc_char *ch, struct spc_entry *e,
                           const struct mr_record *rec)
{
    const struct mr_spc_char_conf *cf = ch->conf;
    uint32_t cap = (uint32_t)cf->capability_window;
    if (e->ring_n < cap || e->nvalues % (uint64_t)cf->capability_every != 0 ||
        (!cf->has_lsl && !cf->has_usl)) {
        return 0;
    }
    for (uint32_t i = 0; i < cap; i++) {
        c->scratch[i] = e->ring[(e->ring_head + i) % cap].x;
    }
    struct mr_spc_cap k;
    if (mr_spc_capability(c->scratch, cap, ch->sub, cf->lsl, cf->usl, cf->has_lsl, cf->has_usl,
                          &k) != 0) {
        return 0;
    }
    spc_tag_time(c, T_WSTART, e->ring[e->ring_head].t);
    spc_tag_time(c, T_WEND, rec->time_ns);
    spc_tag_set(c, T_N, "%.0f", (double)cap);
    spc_tag_set(c, T_MEAN, "%.10g", k.mean);
    spc_tag_set(c, T_SWITHIN, "%.10g", k.s_within);
    spc_tag_set(c, T_SOVERALL, "%.10g", k.s_overall);
    const double v[4] = {k.cp, k.cpk, k.pp, k.ppk};
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++) {
        if (!isfinite(v[i])) {
            continue;
        }
        struct mr_record r = spc_derived(rec, rec->time_ns, ch->out[O_CP + i]);
        r.v.f64 = v[i];
        const int tags[] = {T_WSTART, T_WEND, T_N, T_MEAN, T_SWITHIN, T_SOVERALL};
        for (size_t j = 0; j < 6; j++) {
            spc_tag_add(c, &r, tags[j], NULL);
        }
        rc = mr_op_buf_push(&c->out, &r);
    }
    return rc == 0 ? mr_op_buf_flush(&c->out) : rc;
}

/* X-bar/R: add x to the open subgroup; a full one becomes a point. */
static int subgroup_add(struct spc_ctx *c, const struct spc_char *ch, struct spc_entry *e,
                        struct spc_finding *f, uint32_t *evaluated)
{
    if (e->sub_n == 0) {
        e->sub_t0 = f->t;
        e->sub_sum = 0;
        e->sub_min = f->x;
        e->sub_max = f->x;
    }
    e->sub_sum += f->x;
    e->sub_min = fmin(e->sub_min, f->x);
    e->sub_max = fmax(e->sub_max, f->x);
    if (++e->sub_n < (uint32_t)ch->sub) {
        return 0;
    }
    e->sub_n = 0;
    f->p = e->sub_sum / (double)ch->sub;
    double r = e->sub_max - e->sub_min;
    struct mr_record xr = spc_derived(f->rec, f->t, ch->out[O_XBAR]);
    xr.v.f64 = f->p;
    int rc = mr_op_buf_push(&c->out, &xr);
    xr.signal = ch->out[O_RANGE];
    xr.v.f64 = r;
    rc = rc == 0 ? mr_op_buf_push(&c->out, &xr) : rc;
    return rc == 0 ? plot(c, ch, e, f, r, e->sub_t0, evaluated) : rc;
}

static int value_step(struct spc_ctx *c, struct spc_entry *e, const struct mr_record *rec, double x)
{
    const struct spc_char *ch = &c->chars[e->charx];
    const struct mr_spc_char_conf *cf = ch->conf;
    uint32_t cap = (uint32_t)cf->capability_window;
    struct spc_finding f = {.rec = rec, .x = x, .p = x, .t = rec->time_ns};
    uint32_t evaluated = 0;
    if (cf->has_lsl || cf->has_usl) {
        evaluated |= MR_SPC_BIT(MR_SPC_TOLERANCE);
        if ((cf->has_lsl && x < cf->lsl) || (cf->has_usl && x > cf->usl)) {
            f.rules |= MR_SPC_BIT(MR_SPC_TOLERANCE);
        }
    }
    e->ring[(e->ring_head + e->ring_n) % cap] = (struct spc_pt){.x = x, .t = rec->time_ns};
    if (e->ring_n < cap) {
        e->ring_n++;
    } else {
        e->ring_head = (e->ring_head + 1) % cap;
    }
    e->nvalues++;
    int rc = 0;
    if (ch->sub == 1) {
        double r = e->has_prev ? fabs(x - e->prev) : NAN;
        e->prev = x;
        e->has_prev = 1;
        rc = plot(c, ch, e, &f, r, rec->time_ns, &evaluated);
    } else {
        rc = subgroup_add(c, ch, e, &f, &evaluated);
    }
    rc = rc == 0 ? mr_spc_act(c, ch, e, &f, evaluated) : rc;
    return rc == 0 ? capability_push(c, ch, e, rec) : rc;
}

static bool charted_signal(const struct spc_ctx *c, mr_name_id signal)
{
    for (size_t i = 0; i < c->nchars; i++) {
        if (c->chars[i].signal == signal) {
            return true;
        }
    }
    return false;
}

static int process_one(void *ctx, const struct mr_record *rec)
{
    struct spc_ctx *c = ctx;
    double x = 0;
    int rc = mr_op_buf_push(&c->out, rec);
    if (rc != 0 || !charted_signal(c, rec->signal) || !numeric(rec, &x) ||
        rec->quality != MR_QUALITY_GOOD || !isfinite(x)) {
        return rc;
    }
    struct spc_entry *e = entry_get(c, rec);
    if (e == NULL || e->charx == SPC_NO_CHAR) {
        return 0;
    }
    return value_step(c, e, rec, x);
}

static int spc_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct spc_ctx *c = ctx;
    return mr_op_process_each(&c->base, &c->out, recs, n, process_one, c, err);
}

/* ---- life cycle ---- */

static void spc_fini(void *ctx)
{
    struct spc_ctx *c = ctx;
    if (c->keyed.keys.entries != NULL) {
        for (uint32_t i = 0; i < mr_op_keyed_count(&c->keyed); i++) {
            struct spc_entry *e = mr_keymap_value_at(&c->keyed.keys, i);
            mr_free(e->ring);
        }
    }
    mr_free(c->scratch);
    mr_keymap_fini(&c->machines);
    mr_op_keyed_fini(&c->keyed);
    mr_op_buf_fini(&c->out);
    mr_op_buf_fini(&c->quality);
    mr_op_buf_fini(&c->commands);
    memset(c, 0, sizeof(*c));
}

static int intern_suffix(struct mr_names *names, const char *s, const char *suffix, mr_name_id *id)
{
    char buf[NAME_MAX_LEN + 16];
    int n = snprintf(buf, sizeof(buf), "%s%s", s, suffix);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        return MR_ETOOBIG;
    }
    return mr_names_intern(names, buf, (size_t)n, id);
}

/* Names, masks and constants of each characteristic (once, at init). */
static int chars_init(struct spc_ctx *c, struct mr_err *err)
{
    struct mr_names *names = c->base.host->names;
    const struct mr_spc_char_conf *cfs = c->conf->characteristics.items;
    int rc = 0;
    for (size_t i = 0; i < c->conf->characteristics.n && rc == 0; i++) {
        const struct mr_spc_char_conf *cf = &cfs[i];
        struct spc_char *ch = &c->chars[i];
        ch->conf = cf;
        ch->sub = cf->chart == SPC_CHART_XBAR_R ? (int)cf->subgroup_size : 1;
        ch->k = mr_spc_constants(ch->sub < 2 ? 2 : ch->sub);
        ch->rules = mr_spc_rule_mask(&cf->rules) & MR_SPC_CHART_MASK;
        if (cf->has_lsl || cf->has_usl) {
            ch->rules |= MR_SPC_BIT(MR_SPC_TOLERANCE);
        }
        const struct mr_spc_action_conf *acts = cf->actions.items;
        for (size_t j = 0; j < cf->actions.n; j++) {
            ch->act[acts[j].what] |= mr_spc_rule_mask(&acts[j].when) & ch->rules;
        }
        rc = mr_names_intern(names, cf->signal, strlen(cf->signal), &ch->signal);
        for (int j = 0; j < NOUT && rc == 0; j++) {
            rc = intern_suffix(names, cf->signal, out_suffix[j], &ch->out[j]);
        }
        c->nchars++;
    }
    rc = rc == 0 ? mr_names_intern(names, "alert", 5, &c->alert_id) : rc;
    rc = rc == 0 ? mr_names_intern(names, "flag", 4, &c->flag_id) : rc;
    rc = rc == 0 ? mr_names_intern(names, "command", 7, &c->command_id) : rc;
    for (int i = 0; i < NTAG && rc == 0; i++) {
        rc = mr_names_intern(names, tag_names[i], strlen(tag_names[i]), &c->tag_ids[i]);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot intern names: %s", mr_strerror(rc));
    }
    return 0;
}

/* The side outputs the actions need, and the suppressed-commands counter. */
static int outputs_init(struct spc_ctx *c, struct mr_err *err)
{
    struct mr_operator_host *h = c->base.host;
    uint32_t flag = 0;
    uint32_t command = 0;
    for (size_t i = 0; i < c->nchars; i++) {
        flag |= c->chars[i].act[SPC_DO_FLAG];
        command |= c->chars[i].act[SPC_DO_ADJUST] | c->chars[i].act[SPC_DO_HALT];
    }
    int port = 0;
    if (flag != 0) {
        port = h->side_open(h, c->conf->quality_topic, err);
        if (port < 0 || mr_op_buf_init(&c->quality, &c->base, port) != 0) {
            return port < 0 ? port : MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        }
    }
    if (command != 0) {
        port = h->side_open(h, c->conf->commands_topic, err);
        if (port < 0 || mr_op_buf_init(&c->commands, &c->base, port) != 0) {
            return port < 0 ? port : MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        }
    }
    char inst[256];
    char labels[300];
    if (mr_metrics_label_escape(h->name, inst, sizeof(inst)) < 0) {
        return MR_ERR_SET(err, MR_EINVAL, "instance name too long for metrics");
    }
    snprintf(labels, sizeof(labels), "instance=\"%s\"", inst);
    int rc = mr_metrics_counter(h->metrics, "millrace_spc_commands_suppressed_total",
                                "Commands not sent by spc because of the cool-down or the rate "
                                "limit.",
                                labels, &c->suppressed);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
    }
    return 0;
}

static int spc_init(void *ctx, const void *conf, struct mr_operator_host *host, struct mr_err *err)
{
    struct spc_ctx *c = ctx;
    const struct mr_spc_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    int rc = mr_op_base_init(&c->base, &mr_operator_spc, host, err);
    if (rc != 0) {
        return rc;
    }
    if (cf->characteristics.n > MR_SPC_MAX_CHARS) {
        return MR_ERR_SET(err, MR_ECONFIG, "at most %d characteristics", MR_SPC_MAX_CHARS);
    }
    int64_t window = 0;
    const struct mr_spc_char_conf *cfs = cf->characteristics.items;
    for (size_t i = 0; i < cf->characteristics.n; i++) {
        window = cfs[i].capability_window > window ? cfs[i].capability_window : window;
    }
    c->scratch = mr_calloc((size_t)window + 1, sizeof(double));
    if (c->scratch == NULL ||
        mr_op_keyed_init(&c->keyed, sizeof(struct spc_entry), (uint32_t)cf->max_keys) != 0 ||
        mr_keymap_init(&c->machines, sizeof(struct spc_machine), (uint32_t)cf->max_keys) != 0 ||
        mr_op_buf_init(&c->out, &c->base, 0) != 0) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    rc = rc == 0 ? chars_init(c, err) : rc;
    rc = rc == 0 ? outputs_init(c, err) : rc;
    if (rc != 0) {
        spc_fini(c);
    }
    return rc;
}

const struct mr_plugin mr_operator_spc = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "spc",
    .help = "In-line quality: checks measured characteristics against spec limits, charts them "
            "(individuals or X-bar/R) with the Western Electric and Nelson rules, reports "
            "rolling Cp/Cpk/Pp/Ppk, and on violations flags parts and sends adjust or halt "
            "commands to the line, rate-limited per machine.",
    .conf = {.fields = mr_spc_fields, .size = sizeof(struct mr_spc_conf), .check = mr_spc_check},
    .ctx_size = sizeof(struct spc_ctx),
    .op = {.init = spc_init,
           .process = spc_process,
           .snapshot = mr_spc_snapshot,
           .restore = mr_spc_restore,
           .fini = spc_fini},
};
