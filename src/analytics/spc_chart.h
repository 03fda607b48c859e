/* Control-chart arithmetic of the `spc` operator (spc.c): the standard constants of X-bar/R
 * and individuals charts, the Western Electric and Nelson run rules evaluated in O(1) per
 * plotted point from bit histories, and process capability (Cp, Cpk, Pp, Ppk) of a window.
 * Pure functions on caller-owned state: no allocation, no names, testable on their own.
 */
#ifndef MR_ANALYTICS_SPC_CHART_H
#define MR_ANALYTICS_SPC_CHART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Subgroup sizes with published constants (NIST e-Handbook 6.3.2, ASTM E2587). */
#define MR_SPC_MIN_N 2
#define MR_SPC_MAX_N 10

struct mr_spc_const {
    double a2; /* X-bar limits: CL +- A2 * R-bar */
    double d3; /* R chart LCL = D3 * R-bar */
    double d4; /* R chart UCL = D4 * R-bar */
    double d2; /* sigma = R-bar / d2 */
};

/* Constants for subgroups of n (2..10), or NULL. n = 2 also serves the moving range of an
 * individuals chart (MR-bar / 1.128, MR UCL = 3.267 MR-bar). */
const struct mr_spc_const *mr_spc_constants(int n);

/* Rules, as bits of a uint32_t mask. TOLERANCE looks at each measured value against the spec
 * limits; every other rule looks at the plotted statistic (the value, or a subgroup mean). */
enum mr_spc_rule {
    MR_SPC_TOLERANCE = 0,
    MR_SPC_RANGE,   /* moving range or subgroup range outside its own chart's limits */
    MR_SPC_WECO1,   /* 1 point beyond 3 sigma */
    MR_SPC_WECO2,   /* 2 of the last 3 beyond 2 sigma, same side */
    MR_SPC_WECO3,   /* 4 of the last 5 beyond 1 sigma, same side */
    MR_SPC_WECO4,   /* 8 in a row on one side of the centre line */
    MR_SPC_NELSON1, /* 1 point beyond 3 sigma */
    MR_SPC_NELSON2, /* 9 in a row on one side */
    MR_SPC_NELSON3, /* 6 in a row steadily increasing or decreasing */
    MR_SPC_NELSON4, /* 14 in a row alternating up and down */
    MR_SPC_NELSON5, /* 2 of the last 3 beyond 2 sigma, same side */
    MR_SPC_NELSON6, /* 4 of the last 5 beyond 1 sigma, same side */
    MR_SPC_NELSON7, /* 15 in a row within 1 sigma */
    MR_SPC_NELSON8, /* 8 in a row beyond 1 sigma, either side */
    MR_SPC_NRULES
};

#define MR_SPC_BIT(rule)  (1u << (rule))
#define MR_SPC_CHART_MASK (((1u << MR_SPC_NRULES) - 1u) & ~MR_SPC_BIT(MR_SPC_TOLERANCE))

/* "tolerance", "range", "weco1".."weco4", "nelson1".."nelson8"; NULL-terminated. */
extern const char *const mr_spc_rule_names[];
/* Index of a rule name, or -1. */
int mr_spc_rule_find(const char *name);
/* Points of the pattern a rule looks at (1 for a single point, 9 for nelson2, ...). */
int mr_spc_rule_span(enum mr_spc_rule rule);
/* One sentence saying what the rule saw, e.g. "9 points in a row above the centre line". */
const char *mr_spc_rule_text(enum mr_spc_rule rule);

/* History of the plotted points, newest in bit 0 of each mask. */
struct mr_spc_hist {
    uint32_t above; /* z > 0 */
    uint32_t below; /* z < 0 */
    uint32_t hi1;   /* z > 1 */
    uint32_t lo1;   /* z < -1 */
    uint32_t hi2;   /* z > 2 */
    uint32_t lo2;   /* z < -2 */
    uint32_t up;    /* step from the previous point: increase (bit 0 = the newest step) */
    uint32_t down;  /* step: decrease; a tie sets neither */
    uint32_t n;     /* points pushed (saturates) */
    uint32_t pad;
    double last; /* previous plotted value */
};

/* Push a plotted point: x the plotted value, z its distance from the centre line in sigmas of
 * the plotted statistic. Returns the mask of rules (WECO1..NELSON8) that the pattern ending at
 * this point meets. A point exactly on the centre line belongs to neither side; ties break
 * trends and alternations; zone C is |z| <= 1, "beyond k sigma" is |z| > k. */
uint32_t mr_spc_hist_push(struct mr_spc_hist *h, double x, double z);

/* Capability of a window of measured values x[0..n) in time order. sub = 1: individuals, the
 * within sigma is the mean moving range / 1.128; sub = 2..10: the values are consecutive
 * subgroups of sub (n a multiple of sub), within sigma = mean range / d2. The overall sigma
 * is the sample standard deviation (n - 1), two-pass. Indices that do not apply (one-sided
 * spec: Cp, Pp) or cannot be computed (sigma 0) are NAN. */
struct mr_spc_cap {
    double mean;
    double s_within;
    double s_overall;
    double cp;
    double cpk;
    double pp;
    double ppk;
};

int mr_spc_capability(const double *x, size_t n, int sub, double lsl, double usl, bool has_lsl,
                      bool has_usl, struct mr_spc_cap *out);

#endif
