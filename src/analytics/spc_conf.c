/* Configuration of the `spc` operator: one table, its checks (spc.c has the semantics). */
#include <stddef.h>
#include <string.h>

#include "analytics/spc.h"

static const char *const chart_names[] = {"individuals", "xbar_r", NULL};
static const char *const do_names[] = {"flag", "adjust", "halt", NULL};

/* Largest capability state in all (window * 16 bytes * max_keys). */
#define CAP_STATE_MAX (1ull << 30)

uint32_t mr_spc_rule_mask(const struct mr_strlist *names)
{
    uint32_t m = 0;
    for (size_t i = 0; i < names->n; i++) {
        int r = mr_spc_rule_find(names->items[i]);
        if (r >= 0) {
            m |= MR_SPC_BIT(r);
        }
    }
    return m;
}

static void check_rule_names(struct mr_config_check *chk, const char *field,
                             const struct mr_strlist *names)
{
    for (size_t i = 0; i < names->n; i++) {
        if (mr_spc_rule_find(names->items[i]) < 0) {
            mr_config_check_fail(chk, field,
                                 "unknown rule '%s': use tolerance, range, weco1..weco4 or "
                                 "nelson1..nelson8",
                                 names->items[i]);
        }
    }
}

static void action_check(void *conf, struct mr_config_check *chk)
{
    const struct mr_spc_action_conf *a = conf;
    check_rule_names(chk, "when", &a->when);
}

static void char_check(void *conf, struct mr_config_check *chk)
{
    const struct mr_spc_char_conf *c = conf;
    check_rule_names(chk, "rules", &c->rules);
    if (c->has_lsl && c->has_usl && !(c->lsl < c->usl)) {
        mr_config_check_fail(chk, "usl", "must be above lsl (%g), got %g", c->lsl, c->usl);
    }
    if (c->has_sigma && !(c->sigma > 0)) {
        mr_config_check_fail(chk, "sigma", "must be > 0, got %g", c->sigma);
    }
    int sub = c->chart == SPC_CHART_XBAR_R ? (int)c->subgroup_size : 1;
    if (c->chart == SPC_CHART_XBAR_R && c->capability_window % sub != 0) {
        mr_config_check_fail(
            chk, "capability_window",
            "must be a multiple of subgroup_size (%d) for an xbar_r chart, got %lld", sub,
            (long long)c->capability_window);
    }
    if (c->capability_every % sub != 0) {
        mr_config_check_fail(
            chk, "capability_every",
            "must be a multiple of subgroup_size (%d) for an xbar_r chart, got %lld", sub,
            (long long)c->capability_every);
    }
    const struct mr_spc_action_conf *acts = c->actions.items;
    uint32_t rules = mr_spc_rule_mask(&c->rules) | MR_SPC_BIT(MR_SPC_TOLERANCE);
    for (size_t i = 0; i < c->actions.n; i++) {
        uint32_t m = mr_spc_rule_mask(&acts[i].when);
        if ((m & ~rules) != 0) {
            mr_config_check_fail(chk, "actions",
                                 "an action names a rule that is not in `rules`: add it there");
        }
        if ((m & MR_SPC_BIT(MR_SPC_TOLERANCE)) != 0 && !c->has_lsl && !c->has_usl) {
            mr_config_check_fail(chk, "actions",
                                 "an action on tolerance needs lsl and/or usl (spec limits)");
        }
    }
}

void mr_spc_check(void *conf, struct mr_config_check *chk)
{
    const struct mr_spc_conf *c = conf;
    const struct mr_spc_char_conf *chars = c->characteristics.items;
    int64_t most = 0;
    for (size_t i = 0; i < c->characteristics.n; i++) {
        most = chars[i].capability_window > most ? chars[i].capability_window : most;
    }
    uint64_t bytes = (uint64_t)most * 16u * (uint64_t)c->max_keys;
    if (bytes > CAP_STATE_MAX) {
        mr_config_check_fail(chk, "max_keys",
                             "capability_window %lld values * 16 bytes * max_keys %lld = %llu MiB, "
                             "above the 1024 MiB limit: lower max_keys or capability_window",
                             (long long)most, (long long)c->max_keys,
                             (unsigned long long)(bytes >> 20));
    }
    if (c->commands_topic[0] == '\0' || c->quality_topic[0] == '\0') {
        mr_config_check_fail(chk, "commands_topic", "topic names must not be empty");
    }
}

#define A(member) offsetof(struct mr_spc_action_conf, member)

static const struct mr_field action_fields[] = {
    {.name = "when",
     .type = MR_FIELD_STRING_LIST,
     .offset = A(when),
     .min = "1",
     .flags = MR_FIELD_REQUIRED,
     .help = "Rules that trigger this action, e.g. [nelson2, nelson3] (each must be in the "
             "characteristic's rules, or tolerance)."},
    {.name = "do",
     .type = MR_FIELD_ENUM,
     .offset = A(what),
     .values = do_names,
     .flags = MR_FIELD_REQUIRED,
     .help = "flag: an event for each violating part on the quality topic; adjust: a command "
             "to move the process back to target by the computed offset; halt: a command to "
             "stop the line."},
    {0},
};

static const struct mr_section action_section = {
    .fields = action_fields,
    .size = sizeof(struct mr_spc_action_conf),
    .check = action_check,
};

#define C(member) offsetof(struct mr_spc_char_conf, member)
#define P(member) MR_FIELD_PRESENT(struct mr_spc_char_conf, member)

static const struct mr_field char_fields[] = {
    {.name = "signal",
     .type = MR_FIELD_STRING,
     .offset = C(signal),
     .flags = MR_FIELD_REQUIRED,
     .help = "The measured characteristic, e.g. dimension (one value per part)."},
    {.name = "assets",
     .type = MR_FIELD_STRING_LIST,
     .offset = C(assets),
     .help = "Machines this characteristic applies to, as patterns with * (e.g. "
             "[plant1/machining/*/lathe*]). Empty: every machine sending the signal."},
    {.name = "lsl",
     .type = MR_FIELD_DOUBLE,
     .offset = C(lsl),
     .present = P(has_lsl),
     .help = "Lower specification limit (smallest acceptable value), in the signal's unit."},
    {.name = "usl",
     .type = MR_FIELD_DOUBLE,
     .offset = C(usl),
     .present = P(has_usl),
     .help = "Upper specification limit (largest acceptable value)."},
    {.name = "target",
     .type = MR_FIELD_DOUBLE,
     .offset = C(target),
     .present = P(has_target),
     .help = "Nominal value the adjust command steers to (default: midway between lsl and usl, "
             "else the chart's centre line)."},
    {.name = "chart",
     .type = MR_FIELD_ENUM,
     .offset = C(chart),
     .def = "individuals",
     .values = chart_names,
     .help = "individuals: each value is a point (with its moving range); xbar_r: consecutive "
             "values form subgroups of subgroup_size, their mean and range are the points."},
    {.name = "subgroup_size",
     .type = MR_FIELD_INT,
     .offset = C(subgroup_size),
     .def = "5",
     .min = "2",
     .max = "10",
     .help = "xbar_r: parts per subgroup (2 to 10)."},
    {.name = "baseline",
     .type = MR_FIELD_INT,
     .offset = C(baseline),
     .def = "25",
     .min = "2",
     .max = "100000",
     .help = "Points (values, or subgroups for xbar_r) per machine used to compute the control "
             "limits before rules are checked; the limits are then kept (phase II)."},
    {.name = "center",
     .type = MR_FIELD_DOUBLE,
     .offset = C(center),
     .present = P(has_center),
     .help = "Known centre line (process mean); set with sigma to skip the baseline."},
    {.name = "sigma",
     .type = MR_FIELD_DOUBLE,
     .offset = C(sigma),
     .present = P(has_sigma),
     .help = "Known standard deviation of single values (process spread), in the signal's "
             "unit."},
    {.name = "rules",
     .type = MR_FIELD_STRING_LIST,
     .offset = C(rules),
     .def = "[nelson1, nelson2, nelson3, nelson5, nelson6]",
     .help = "Rules checked on each point: range (the range chart), weco1..weco4 (Western "
             "Electric), nelson1..nelson8. Out-of-spec values are always reported when lsl or "
             "usl is set."},
    {.name = "actions",
     .type = MR_FIELD_SECTION_LIST,
     .offset = C(actions),
     .section = &action_section,
     .max = "8",
     .help = "What to do on a violation, e.g. [{when: [tolerance], do: flag}, {when: [nelson2, "
             "nelson3], do: adjust}]. Without actions, violations only raise alerts."},
    {.name = "capability_window",
     .type = MR_FIELD_INT,
     .offset = C(capability_window),
     .def = "100",
     .min = "10",
     .max = "100000",
     .help = "Last values used for Cp, Cpk, Pp and Ppk."},
    {.name = "capability_every",
     .type = MR_FIELD_INT,
     .offset = C(capability_every),
     .def = "25",
     .min = "1",
     .max = "100000",
     .help = "Emit the capability indices every this many values (once the window is full)."},
    {.name = "adjust_points",
     .type = MR_FIELD_INT,
     .offset = C(adjust_points),
     .def = "8",
     .min = "1",
     .max = "16",
     .help = "The adjust offset is target minus the mean of this many latest points."},
    {.name = "adjust_gain",
     .type = MR_FIELD_DOUBLE,
     .offset = C(adjust_gain),
     .def = "1",
     .min = "0.01",
     .max = "1",
     .help = "Share of the deviation the adjust command corrects (1: all of it; 0.5: half, "
             "for a cautious first correction)."},
    {.name = "adjust_max",
     .type = MR_FIELD_DOUBLE,
     .offset = C(adjust_max),
     .def = "0",
     .min = "0",
     .help = "Largest offset one adjust command may carry (0: no limit)."},
    {0},
};

static const struct mr_section char_section = {
    .fields = char_fields,
    .size = sizeof(struct mr_spc_char_conf),
    .check = char_check,
};

#define F(member) offsetof(struct mr_spc_conf, member)

const struct mr_field mr_spc_fields[] = {
    {.name = "characteristics",
     .type = MR_FIELD_SECTION_LIST,
     .offset = F(characteristics),
     .section = &char_section,
     .min = "1",
     .max = "16",
     .flags = MR_FIELD_REQUIRED,
     .help = "The measured characteristics, each with its spec limits, chart, rules and "
             "actions."},
    {.name = "commands_topic",
     .type = MR_FIELD_STRING,
     .offset = F(commands_topic),
     .def = "commands",
     .help = "Topic for adjust and halt commands (records with signal command) that outputs "
             "deliver to the line."},
    {.name = "quality_topic",
     .type = MR_FIELD_STRING,
     .offset = F(quality_topic),
     .def = "quality",
     .help = "Topic for flag events (signal flag), one per violating part or point."},
    {.name = "cooldown",
     .type = MR_FIELD_DURATION,
     .offset = F(cooldown_ns),
     .def = "10m",
     .help = "After a command to a machine, no other command of the same kind (adjust or "
             "halt) to it for this long (event time): the process needs time to respond."},
    {.name = "max_commands",
     .type = MR_FIELD_INT,
     .offset = F(max_commands),
     .def = "6",
     .min = "1",
     .max = "1000",
     .help = "Most commands per machine within `per` (a flapping signal cannot spam the PLC)."},
    {.name = "per",
     .type = MR_FIELD_DURATION,
     .offset = F(per_ns),
     .def = "1h",
     .min = "1s",
     .help = "Period of max_commands."},
    {.name = "line_level",
     .type = MR_FIELD_INT,
     .offset = F(line_level),
     .def = "3",
     .min = "0",
     .max = "16",
     .help = "A halt goes to the line: the first line_level segments of the machine's asset "
             "path (3: plant1/machining/line2); 0: to the machine itself."},
    {.name = "max_keys",
     .type = MR_FIELD_INT,
     .offset = F(max_keys),
     .def = "100000",
     .min = "1",
     .max = "10000000",
     .help = "Most (machine, characteristic) pairs tracked; values of further pairs pass "
             "unchecked and count as errors."},
    {0},
};
