/* Inventory projection and consumption rate for operator `supply` (formulas in supply.h and
 * docs/OPERATIONS.md). */
#include <math.h>

#include "analytics/supply.h"

#define NS 1e9

/* t + seconds, saturating at NEVER (a stock that lasts centuries). */
static int64_t time_after(int64_t t, double seconds)
{
    double ns = seconds * NS;
    if (!(ns < (double)(INT64_MAX - t))) {
        return MR_SUPPLY_NEVER;
    }
    return t + (int64_t)ns;
}

static int64_t arrival_of(const struct mr_supply_shipment *s, int64_t t0, int64_t shift)
{
    int64_t a = s->eta > t0 ? s->eta : t0;
    return a > INT64_MAX - shift ? MR_SUPPLY_NEVER : a + shift;
}

double mr_supply_level_now(double level, int64_t level_t, double rate, int64_t t0)
{
    if (rate > 0 && t0 > level_t) {
        level -= rate * (double)(t0 - level_t) / NS;
    }
    return level > 0 ? level : 0.0;
}

/* First time the curve reaches zero with every arrival `shift` late, and the arrival after it.
 * Arrivals are taken in order of their effective time: shifting all by the same amount and
 * clamping overdue ones to t0 keeps the eta order. */
static int64_t walk(double level, double rate, int64_t t0, const struct mr_supply_shipment *s,
                    size_t n, int64_t shift, int64_t *after)
{
    double cur = level;
    int64_t tc = t0;
    *after = MR_SUPPLY_NEVER;
    for (size_t i = 0; i < n; i++) {
        int64_t a = arrival_of(&s[i], t0, shift);
        if (cur <= 0) {
            *after = a;
            return tc;
        }
        if (rate > 0) {
            int64_t out = time_after(tc, cur / rate);
            if (out < a) {
                *after = a;
                return out;
            }
            cur -= rate * (double)(a - tc) / NS;
        }
        cur += s[i].qty;
        tc = a;
    }
    if (cur <= 0) {
        return tc;
    }
    return rate > 0 ? time_after(tc, cur / rate) : MR_SUPPLY_NEVER;
}

void mr_supply_project(double level, double rate, int64_t t0, const struct mr_supply_shipment *s,
                       size_t n, int64_t margin, int64_t horizon, struct mr_supply_projection *out)
{
    int64_t end = t0 > INT64_MAX - horizon ? MR_SUPPLY_NEVER : t0 + horizon;
    struct mr_supply_projection p = {0};
    p.stockout = walk(level, rate, t0, s, n, 0, &p.stockout_arrival);
    p.stockout_late = walk(level, rate, t0, s, n, margin, &p.late_arrival);
    if (p.stockout > end) {
        p.stockout = MR_SUPPLY_NEVER;
        p.stockout_arrival = MR_SUPPLY_NEVER;
    }
    if (p.stockout_late > end) {
        p.stockout_late = MR_SUPPLY_NEVER;
        p.late_arrival = MR_SUPPLY_NEVER;
    }
    *out = p;
}

int mr_supply_risk(const struct mr_supply_projection *p, int64_t t0, int64_t uncovered_within)
{
    if (p->stockout != MR_SUPPLY_NEVER && p->stockout_arrival != MR_SUPPLY_NEVER) {
        return 2;
    }
    if (p->stockout_late != MR_SUPPLY_NEVER && p->late_arrival != MR_SUPPLY_NEVER) {
        return 1;
    }
    if (uncovered_within > 0 && p->stockout != MR_SUPPLY_NEVER &&
        p->stockout - t0 <= uncovered_within) {
        return 1;
    }
    return 0;
}

double mr_supply_curve_at(double level, double rate, int64_t t0, const struct mr_supply_shipment *s,
                          size_t n, int64_t t)
{
    double cur = level;
    int64_t tc = t0;
    for (size_t i = 0; i < n; i++) {
        int64_t a = arrival_of(&s[i], t0, 0);
        if (a > t) {
            break;
        }
        cur = mr_supply_level_now(cur, tc, rate, a) + s[i].qty;
        tc = a;
    }
    return mr_supply_level_now(cur, tc, rate, t);
}

double mr_supply_rate_update(double rate, bool have_rate, double consumed, int64_t dt_ns,
                             int64_t horizon_ns)
{
    if (dt_ns <= 0) {
        return rate;
    }
    double obs = consumed / ((double)dt_ns / NS);
    if (!have_rate) {
        return obs;
    }
    double alpha = 1.0 - exp(-(double)dt_ns / (double)horizon_ns);
    return rate + alpha * (obs - rate);
}
