/* Actions of the `spc` operator (spc.c has the semantics): alerts, flag events and commands
 * with their per-machine cool-down and rate limit. */
#include "analytics/spc.h"

/* ---- actions ---- */

static double target_of(const struct spc_char *ch, const struct spc_entry *e)
{
    const struct mr_spc_char_conf *cf = ch->conf;
    if (cf->has_target) {
        return cf->target;
    }
    if (cf->has_lsl && cf->has_usl) {
        return (cf->lsl + cf->usl) / 2;
    }
    return e->phase == SPC_RUN ? e->cl : e->bmean;
}

/* Mean of the latest adjust_points points (the value itself before any was plotted). */
static double recent_mean(const struct spc_char *ch, const struct spc_entry *e, double x)
{
    uint64_t m = (uint64_t)ch->conf->adjust_points;
    m = m < e->nrecent ? m : e->nrecent;
    if (m == 0) {
        return x;
    }
    double s = 0;
    for (uint64_t i = 0; i < m; i++) {
        s += e->recent[(e->nrecent - 1 - i) % MR_SPC_RECENT];
    }
    return s / (double)m;
}

/* Names of the rules in mask, comma-separated, into c->tagbuf[T_RULE]. */
static const char *rules_text(struct spc_ctx *c, uint32_t mask)
{
    char *b = c->tagbuf[T_RULE];
    size_t used = 0;
    b[0] = '\0';
    for (int r = 0; r < MR_SPC_NRULES; r++) {
        if ((mask & MR_SPC_BIT(r)) == 0) {
            continue;
        }
        int n = snprintf(b + used, sizeof(c->tagbuf[T_RULE]) - used, "%s%s", used ? "," : "",
                         mr_spc_rule_names[r]);
        if (n < 0 || used + (size_t)n >= sizeof(c->tagbuf[T_RULE])) {
            break;
        }
        used += (size_t)n;
    }
    return b;
}

static int lowest_rule(uint32_t mask)
{
    return mask != 0 ? __builtin_ctz(mask) : 0;
}

/* Time of the first point of the longest pattern among rules. */
static int64_t pattern_start(const struct spc_entry *e, uint32_t rules, int64_t t)
{
    if ((rules & ~MR_SPC_BIT(MR_SPC_TOLERANCE)) == 0 || e->nrecent == 0) {
        return t;
    }
    uint64_t span = 1;
    for (int r = 0; r < MR_SPC_NRULES; r++) {
        if ((rules & MR_SPC_BIT(r)) != 0 && (uint64_t)mr_spc_rule_span(r) > span) {
            span = (uint64_t)mr_spc_rule_span(r);
        }
    }
    span = span < e->nrecent ? span : e->nrecent;
    return e->recent_t[(e->nrecent - span) % MR_SPC_RECENT];
}

/* The limit a rule looks at, on the side of the point. */
static double threshold_of(const struct spc_char *ch, const struct spc_entry *e, int rule,
                           const struct spc_finding *f)
{
    const struct mr_spc_char_conf *cf = ch->conf;
    double side = f->p >= e->cl ? 1 : -1;
    switch (rule) {
    case MR_SPC_TOLERANCE:
        return cf->has_usl && (!cf->has_lsl || f->x > cf->usl) ? cf->usl : cf->lsl;
    case MR_SPC_RANGE:
        return ch->k->d4 * e->rbar;
    case MR_SPC_WECO1:
    case MR_SPC_NELSON1:
        return e->cl + side * 3 * e->splot;
    case MR_SPC_WECO2:
    case MR_SPC_NELSON5:
        return e->cl + side * 2 * e->splot;
    case MR_SPC_WECO3:
    case MR_SPC_NELSON6:
    case MR_SPC_NELSON7:
    case MR_SPC_NELSON8:
        return e->cl + side * e->splot;
    default:
        return e->cl;
    }
}

static int alert_push(struct spc_ctx *c, const struct spc_char *ch, const struct spc_entry *e,
                      const struct spc_finding *f, uint32_t onset)
{
    size_t flen = 0;
    const char *feature = spc_name_of(c, f->rec->signal, &flen);
    int rule = lowest_rule(onset);
    double v = rule == MR_SPC_TOLERANCE ? f->x : f->p;
    spc_tag_set(c, T_VALUE, "%.10g", v);
    spc_tag_set(c, T_BASELINE, "%.10g", e->cl);
    spc_tag_set(c, T_THRESHOLD, "%.10g", threshold_of(ch, e, rule, f));
    spc_tag_set(c, T_SIGMA, "%.6g", e->splot);
    spc_tag_time(c, T_WSTART, pattern_start(e, onset, f->t));
    spc_tag_time(c, T_WEND, f->t);
    snprintf(c->text, sizeof(c->text), "%.*s %s: %s (%s), centre line %s, limit %s",
             (int)(flen > 100 ? 100 : flen), feature, c->tagbuf[T_VALUE], mr_spc_rule_text(rule),
             rules_text(c, onset), c->tagbuf[T_BASELINE], c->tagbuf[T_THRESHOLD]);
    bool alarm = (onset & (MR_SPC_BIT(MR_SPC_TOLERANCE) | MR_SPC_BIT(MR_SPC_NELSON1) |
                           MR_SPC_BIT(MR_SPC_WECO1))) != 0;
    struct mr_record a = spc_derived(f->rec, f->t, c->alert_id);
    a.type = MR_VALUE_STRING;
    a.v.str = (struct mr_bytes){.ptr = c->text, .len = (uint32_t)strnlen(c->text, sizeof(c->text))};
    spc_tag_bytes(c, &a, T_FEATURE, feature, flen);
    const int order[] = {T_VALUE, T_BASELINE, T_THRESHOLD, T_SIGMA, T_RULE, T_WSTART, T_WEND};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        spc_tag_add(c, &a, order[i], NULL);
    }
    spc_tag_add(c, &a, T_DETECTOR, "spc");
    spc_tag_add(c, &a, T_SEVERITY, alarm ? "alarm" : "warning");
    return spc_push_now(&c->out, &a);
}

static int flag_push(struct spc_ctx *c, const struct spc_char *ch, const struct spc_entry *e,
                     const struct spc_finding *f, uint32_t rules)
{
    size_t flen = 0;
    const char *feature = spc_name_of(c, f->rec->signal, &flen);
    int rule = lowest_rule(rules);
    spc_tag_set(c, T_VALUE, "%.10g", rule == MR_SPC_TOLERANCE ? f->x : f->p);
    spc_tag_time(c, T_WSTART, pattern_start(e, rules, f->t));
    spc_tag_time(c, T_WEND, f->t);
    snprintf(c->text, sizeof(c->text), "%.*s %s flagged: %s (%s)", (int)(flen > 100 ? 100 : flen),
             feature, c->tagbuf[T_VALUE], mr_spc_rule_text(rule), rules_text(c, rules));
    struct mr_record r = spc_derived(f->rec, f->t, c->flag_id);
    r.type = MR_VALUE_STRING;
    r.v.str = (struct mr_bytes){.ptr = c->text, .len = (uint32_t)strlen(c->text)};
    spc_tag_bytes(c, &r, T_CHAR, feature, flen);
    spc_tag_add(c, &r, T_RULE, NULL);
    spc_tag_add(c, &r, T_VALUE, NULL);
    if (ch->conf->has_lsl) {
        spc_tag_add(c, &r, T_LSL, spc_tag_set(c, T_LSL, "%.10g", ch->conf->lsl));
    }
    if (ch->conf->has_usl) {
        spc_tag_add(c, &r, T_USL, spc_tag_set(c, T_USL, "%.10g", ch->conf->usl));
    }
    spc_tag_add(c, &r, T_WSTART, NULL);
    spc_tag_add(c, &r, T_WEND, NULL);
    return spc_push_now(&c->quality, &r);
}

/* Cool-down and token bucket of the machine, on event time. True: send the command. */
static bool command_allowed(struct spc_ctx *c, mr_name_id machine, int kind, int64_t t)
{
    const struct mr_spc_conf *cf = c->conf;
    void *v = NULL;
    int inserted = 0;
    if (mr_keymap_upsert(&c->machines, machine, &v, &inserted) != 0) {
        mr_op_warn(&c->base, "command not sent: max_keys (%lld) machines reached",
                   (long long)cf->max_keys);
        return false;
    }
    struct spc_machine *m = v;
    double cap = (double)cf->max_commands;
    if (inserted) {
        m->tokens = cap;
        m->refill_t = t;
    } else if (t > m->refill_t) {
        m->tokens += (double)(t - m->refill_t) * cap / (double)cf->per_ns;
        m->tokens = m->tokens < cap ? m->tokens : cap;
        m->refill_t = t;
    }
    bool cooling = (m->seen & (1u << kind)) != 0 && t - m->last[kind] < cf->cooldown_ns;
    if (cooling || m->tokens < 1.0) {
        mr_counter_add(c->suppressed, 1);
        return false;
    }
    m->tokens -= 1.0;
    m->last[kind] = t;
    m->seen |= 1u << kind;
    return true;
}

static int command_push(struct spc_ctx *c, const struct spc_char *ch, const struct spc_entry *e,
                        const struct spc_finding *f, uint32_t rules, int what)
{
    int kind = what == SPC_DO_ADJUST ? 0 : 1;
    if (!command_allowed(c, f->rec->asset, kind, f->t)) {
        return 0;
    }
    const struct mr_spc_char_conf *cf = ch->conf;
    size_t flen = 0;
    size_t mlen = 0;
    const char *feature = spc_name_of(c, f->rec->signal, &flen);
    const char *machine = spc_name_of(c, f->rec->asset, &mlen);
    double target = target_of(ch, e);
    double mean = recent_mean(ch, e, f->p);
    double offset = cf->adjust_gain * (target - mean);
    if (cf->adjust_max > 0 && fabs(offset) > cf->adjust_max) {
        offset = offset > 0 ? cf->adjust_max : -cf->adjust_max;
    }
    int rule = lowest_rule(rules);
    snprintf(c->text, sizeof(c->text), "%s", mr_spc_rule_text(rule));
    const char *verb = what == SPC_DO_ADJUST ? "adjust" : "halt";
    struct mr_record r = spc_derived(f->rec, f->t, c->command_id);
    r.asset = what == SPC_DO_ADJUST ? f->rec->asset : e->line;
    r.type = MR_VALUE_STRING;
    r.v.str = (struct mr_bytes){.ptr = verb, .len = (uint32_t)strlen(verb)};
    spc_tag_bytes(c, &r, T_CHAR, feature, flen);
    spc_tag_add(c, &r, T_RULE, rules_text(c, rules));
    spc_tag_bytes(c, &r, T_MACHINE, machine, mlen);
    spc_tag_add(c, &r, T_TARGET, spc_tag_set(c, T_TARGET, "%.10g", target));
    spc_tag_add(c, &r, T_MEAN, spc_tag_set(c, T_MEAN, "%.10g", mean));
    spc_tag_add(c, &r, T_REASON, c->text);
    if (what == SPC_DO_ADJUST) {
        spc_tag_add(c, &r, T_OFFSET, spc_tag_set(c, T_OFFSET, "%.8g", offset));
    }
    return spc_push_now(&c->commands, &r);
}

/* Report what an evaluation found: alerts for rules that start, then the actions. */
int mr_spc_act(struct spc_ctx *c, const struct spc_char *ch, struct spc_entry *e,
               const struct spc_finding *f, uint32_t evaluated)
{
    uint32_t onset = f->rules & ~e->firing;
    e->firing = (e->firing & ~evaluated) | f->rules;
    int rc = 0;
    if (onset != 0) {
        rc = alert_push(c, ch, e, f, onset);
    }
    if (rc == 0 && (f->rules & ch->act[SPC_DO_FLAG]) != 0) {
        rc = flag_push(c, ch, e, f, f->rules & ch->act[SPC_DO_FLAG]);
    }
    if (rc == 0 && (f->rules & ch->act[SPC_DO_ADJUST]) != 0) {
        rc = command_push(c, ch, e, f, f->rules & ch->act[SPC_DO_ADJUST], SPC_DO_ADJUST);
    }
    if (rc == 0 && (f->rules & ch->act[SPC_DO_HALT]) != 0) {
        rc = command_push(c, ch, e, f, f->rules & ch->act[SPC_DO_HALT], SPC_DO_HALT);
    }
    return rc;
}
