/* Time-of-use tariff: compile periods into a per-minute price table (energy_tariff.h). */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "analytics/energy_tariff.h"

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* "HH:MM" -> minutes of the day (0..1440; 24:00 only when allow_end). */
static int parse_hhmm(const char *s, bool allow_end, int *min)
{
    if (s == NULL || strlen(s) != 5 || s[2] != ':') {
        return MR_EINVAL;
    }
    for (int i = 0; i < 5; i++) {
        if (i != 2 && (s[i] < '0' || s[i] > '9')) {
            return MR_EINVAL;
        }
    }
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_end))) {
        return MR_EINVAL;
    }
    *min = h * 60 + m;
    return 0;
}

/* Bit i set: the period starts on weekday i (0 = Monday). */
static int parse_days(const struct mr_strlist *days, unsigned *mask, const char **bad)
{
    *mask = days->n == 0 ? 0x7fu : 0u;
    for (size_t i = 0; i < days->n; i++) {
        const char *d = days->items[i];
        unsigned m = 0;
        if (strcmp(d, "weekdays") == 0) {
            m = 0x1fu;
        } else if (strcmp(d, "weekend") == 0) {
            m = 0x60u;
        } else if (strcmp(d, "all") == 0) {
            m = 0x7fu;
        }
        for (unsigned k = 0; k < 7 && m == 0; k++) {
            if (strcmp(d, day_names[k]) == 0) {
                m = 1u << k;
            }
        }
        if (m == 0) {
            *bad = d;
            return MR_EINVAL;
        }
        *mask |= m;
    }
    return 0;
}

static void fill(struct mr_tariff *t, unsigned mask, int from, int to, double price)
{
    int len = from < to ? to - from : 1440 - from + to;
    for (int d = 0; d < 7; d++) {
        if ((mask & (1u << d)) == 0) {
            continue;
        }
        for (int m = 0; m < len; m++) {
            t->price[(d * 1440 + from + m) % MR_TARIFF_WEEK_MIN] = price;
        }
    }
}

int mr_tariff_compile(struct mr_tariff *t, const struct mr_tariff_period *p, size_t n,
                      double default_price, int64_t offset_ns, struct mr_err *err)
{
    t->offset_ns = offset_ns;
    for (int m = 0; m < MR_TARIFF_WEEK_MIN; m++) {
        t->price[m] = default_price;
    }
    for (size_t i = 0; i < n; i++) {
        int from = 0;
        int to = 0;
        unsigned mask = 0;
        const char *bad = NULL;
        if (parse_hhmm(p[i].from, false, &from) != 0) {
            return MR_ERR_SET(err, MR_EINVAL, "tariff[%zu].from: '%s' is not a time HH:MM", i,
                              p[i].from != NULL ? p[i].from : "");
        }
        if (parse_hhmm(p[i].to, true, &to) != 0) {
            return MR_ERR_SET(err, MR_EINVAL,
                              "tariff[%zu].to: '%s' is not a time HH:MM (00:00-24:00)", i,
                              p[i].to != NULL ? p[i].to : "");
        }
        if (from == to || (from == 0 && to == 1440)) {
            from = 0;
            to = 1440; /* the whole day */
        }
        if (parse_days(&p[i].days, &mask, &bad) != 0) {
            return MR_ERR_SET(err, MR_EINVAL,
                              "tariff[%zu].days: '%s' is not mon..sun, weekdays, weekend or all", i,
                              bad);
        }
        fill(t, mask, from, to, p[i].price);
    }
    t->min_price = t->price[0];
    for (int m = 0; m < MR_TARIFF_WEEK_MIN; m++) {
        t->min_price = t->price[m] < t->min_price ? t->price[m] : t->min_price;
    }
    /* Minutes to the next change, walking backwards twice round the week (it wraps). */
    int run = MR_TARIFF_WEEK_MIN;
    for (int k = 2 * MR_TARIFF_WEEK_MIN - 1; k >= 0; k--) {
        int m = k % MR_TARIFF_WEEK_MIN;
        int nx = (m + 1) % MR_TARIFF_WEEK_MIN;
        run = t->price[nx] != t->price[m] ? 1 : (run < MR_TARIFF_WEEK_MIN ? run + 1 : run);
        t->next[m] = (uint16_t)run;
    }
    return 0;
}

/* 1970-01-01 was a Thursday: shift by 3 days so that minute 0 of the week is Monday 00:00. */
#define WEEK_SHIFT_NS (3 * MR_DAY_NS)
#define WEEK_NS       (7 * MR_DAY_NS)

double mr_tariff_at(const struct mr_tariff *t, int64_t time_ns, int64_t *change_ns)
{
    int64_t local = time_ns + t->offset_ns + WEEK_SHIFT_NS;
    int64_t in_week = local - mr_floor_div(local, WEEK_NS) * WEEK_NS;
    int m = (int)(in_week / MR_MIN_NS);
    int64_t minute_start = time_ns - in_week % MR_MIN_NS;
    *change_ns = minute_start + (int64_t)t->next[m] * MR_MIN_NS;
    return t->price[m];
}

int64_t mr_tariff_day_start(const struct mr_tariff *t, int64_t time_ns)
{
    int64_t local = time_ns + t->offset_ns;
    return mr_floor_div(local, MR_DAY_NS) * MR_DAY_NS - t->offset_ns;
}

#define F(member) offsetof(struct mr_tariff_period, member)

static const struct mr_field period_fields[] = {
    {.name = "days",
     .type = MR_FIELD_STRING_LIST,
     .offset = F(days),
     .help = "Days on which the period starts: mon, tue, wed, thu, fri, sat, sun, weekdays, "
             "weekend or all. Empty: every day."},
    {.name = "from",
     .type = MR_FIELD_STRING,
     .offset = F(from),
     .flags = MR_FIELD_REQUIRED,
     .help = "Local start time HH:MM, e.g. 07:00."},
    {.name = "to",
     .type = MR_FIELD_STRING,
     .offset = F(to),
     .flags = MR_FIELD_REQUIRED,
     .help = "Local end time HH:MM (24:00 allowed); earlier than from: the period runs past "
             "midnight into the next day."},
    {.name = "price",
     .type = MR_FIELD_DOUBLE,
     .offset = F(price),
     .flags = MR_FIELD_REQUIRED,
     .min = "0",
     .help = "Price per kWh in this period, in the currency of `currency`."},
    {0},
};

const struct mr_section mr_tariff_period_section = {
    .fields = period_fields,
    .size = sizeof(struct mr_tariff_period),
};
