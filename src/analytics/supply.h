/* The projection behind operator `supply` (supply.c): where a material's stock goes given its
 * level now, a consumption rate and the shipments on the way. Pure functions of their
 * arguments (no names, no records), so the hand-computed scenarios test them directly.
 *
 * The inventory curve is piecewise linear: from `level` at t0 it falls by `rate` per second and
 * jumps by each shipment's quantity at its arrival time, max(eta, t0): a shipment whose eta has
 * passed without an arrival (overdue) is taken to arrive now, because nothing better is known.
 * The stockout is the first time the curve reaches zero; a level of zero or less at t0 is a
 * stockout at t0.
 */
#ifndef MR_ANALYTICS_SUPPLY_H
#define MR_ANALYTICS_SUPPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Shipments remembered per material (the simulator keeps at most 16 on the way). */
#define MR_SUPPLY_MAX_SHIPMENTS 32
#define MR_SUPPLY_NEVER         INT64_MAX

struct mr_supply_shipment {
    int64_t eta; /* promised arrival, ns since the epoch */
    double qty;
    uint64_t id; /* hash of the shipment id tag; 0: the shipment came without one */
};

struct mr_supply_projection {
    /* Stockout with every shipment on time, MR_SUPPLY_NEVER when not within the horizon. */
    int64_t stockout;
    /* The arrival (on time) that comes after that stockout and ends it; NEVER when none. */
    int64_t stockout_arrival;
    /* Stockout with every shipment `margin` late: the stock must last until each arrival plus
     * the safety margin. NEVER when not within the horizon. */
    int64_t stockout_late;
    int64_t late_arrival; /* the (late) arrival that comes after it, or NEVER */
};

/* Level at t0 of a level measured at level_t, extrapolated at rate (units/s), never below 0. */
double mr_supply_level_now(double level, int64_t level_t, double rate, int64_t t0);

/* Project from (level, t0) at rate (units/s, <= 0: no consumption) with n shipments sorted by
 * eta; horizon (ns, > 0) bounds how far ahead a stockout is looked for. */
void mr_supply_project(double level, double rate, int64_t t0, const struct mr_supply_shipment *s,
                       size_t n, int64_t margin, int64_t horizon, struct mr_supply_projection *out);

/* Risk of a projection made at t0: 2 (alarm) when the stock runs out while a shipment is still
 * due (on time); 1 (warning) when it runs out only if every shipment is the margin late, or,
 * with uncovered_within > 0, when it runs out within that time with no shipment due after;
 * 0 otherwise. */
int mr_supply_risk(const struct mr_supply_projection *p, int64_t t0, int64_t uncovered_within);

/* The curve's level at time t >= t0 (arrivals at t count; never below 0). */
double mr_supply_curve_at(double level, double rate, int64_t t0, const struct mr_supply_shipment *s,
                          size_t n, int64_t t);

/* Exponentially weighted consumption rate over irregular intervals: `consumed` units in the
 * dt_ns before an observation move the rate toward consumed / dt by 1 - exp(-dt / horizon),
 * so the weight of the past halves every horizon * ln 2 whatever the reporting interval. The
 * first observation sets the rate. */
double mr_supply_rate_update(double rate, bool have_rate, double consumed, int64_t dt_ns,
                             int64_t horizon_ns);

#endif
