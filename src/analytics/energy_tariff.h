/* Time-of-use tariff for the energy operator: a price per kWh for every minute of the week
 * (local time = UTC + a fixed offset), compiled once from the configured periods, so that
 * pricing a stretch of energy is an array lookup and splitting it exactly at tariff boundaries
 * is one more lookup (the minutes until the price changes).
 *
 * Periods apply in file order, later ones over earlier ones; minutes no period covers cost the
 * default price. `from` > `to` wraps past midnight (22:00 to 06:00 covers the night starting
 * on each listed day); `to` may be 24:00. No daylight-saving rules: the offset is fixed.
 */
#ifndef MR_ANALYTICS_ENERGY_TARIFF_H
#define MR_ANALYTICS_ENERGY_TARIFF_H

#include <stdint.h>

#include "millrace/config.h"
#include "millrace/error.h"

#define MR_TARIFF_WEEK_MIN (7 * 1440)
#define MR_MIN_NS          60000000000LL
#define MR_DAY_NS          (1440 * MR_MIN_NS)

/* One configured period (the `tariff` list of the energy operator). */
struct mr_tariff_period {
    struct mr_strlist days; /* mon..sun, weekdays, weekend, all; empty: every day */
    char *from;             /* "HH:MM" */
    char *to;               /* "HH:MM", up to "24:00" */
    double price;           /* per kWh */
};

extern const struct mr_section mr_tariff_period_section;

struct mr_tariff {
    int64_t offset_ns; /* local time = UTC + offset */
    double min_price;  /* cheapest price of the week */
    double price[MR_TARIFF_WEEK_MIN];
    uint16_t next[MR_TARIFF_WEEK_MIN]; /* minutes from the start of this minute to a change */
};

/* Compile periods (n of them) into t. Returns 0 or MR_EINVAL with err naming the period and
 * key (also used by the config check, so a bad period is reported with file:line). */
int mr_tariff_compile(struct mr_tariff *t, const struct mr_tariff_period *p, size_t n,
                      double default_price, int64_t offset_ns, struct mr_err *err);

/* Price at time t (ns UTC) and the first time after t at which the price may change. */
double mr_tariff_at(const struct mr_tariff *t, int64_t time_ns, int64_t *change_ns);

/* Start of the local day holding time_ns, in ns UTC. */
int64_t mr_tariff_day_start(const struct mr_tariff *t, int64_t time_ns);

/* Floor division for event times before 1970 too. */
static inline int64_t mr_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

#endif
