/* Control-chart arithmetic (analytics/spc_chart.h).
 *
 * Rules are evaluated from bit histories: each plotted point shifts one bit into masks such as
 * "above the centre line" or "beyond 2 sigma high", so a run of K points is K low bits set and
 * "2 of 3" is a population count. That keeps every rule O(1) and the state at 48 bytes.
 */
#include <math.h>
#include <string.h>

#include "analytics/spc_chart.h"
#include "millrace/error.h"

/* NIST e-Handbook 6.3.2.1 / ASTM E2587, re-derived in research/domain.md section 2.3. */
static const struct mr_spc_const constants[MR_SPC_MAX_N + 1] = {
    [2] = {.a2 = 1.880, .d3 = 0, .d4 = 3.267, .d2 = 1.128},
    [3] = {.a2 = 1.023, .d3 = 0, .d4 = 2.574, .d2 = 1.693},
    [4] = {.a2 = 0.729, .d3 = 0, .d4 = 2.282, .d2 = 2.059},
    [5] = {.a2 = 0.577, .d3 = 0, .d4 = 2.114, .d2 = 2.326},
    [6] = {.a2 = 0.483, .d3 = 0, .d4 = 2.004, .d2 = 2.534},
    [7] = {.a2 = 0.419, .d3 = 0.076, .d4 = 1.924, .d2 = 2.704},
    [8] = {.a2 = 0.373, .d3 = 0.136, .d4 = 1.864, .d2 = 2.847},
    [9] = {.a2 = 0.337, .d3 = 0.184, .d4 = 1.816, .d2 = 2.970},
    [10] = {.a2 = 0.308, .d3 = 0.223, .d4 = 1.777, .d2 = 3.078},
};

const struct mr_spc_const *mr_spc_constants(int n)
{
    return n >= MR_SPC_MIN_N && n <= MR_SPC_MAX_N ? &constants[n] : NULL;
}

const char *const mr_spc_rule_names[] = {"tolerance", "range",   "weco1",   "weco2",   "weco3",
                                         "weco4",     "nelson1", "nelson2", "nelson3", "nelson4",
                                         "nelson5",   "nelson6", "nelson7", "nelson8", NULL};

static const struct {
    int span;
    const char *text;
} rule_info[MR_SPC_NRULES] = {
    [MR_SPC_TOLERANCE] = {1, "outside the specification limits"},
    [MR_SPC_RANGE] = {2, "range beyond its control limits"},
    [MR_SPC_WECO1] = {1, "1 point beyond 3 sigma"},
    [MR_SPC_WECO2] = {3, "2 of 3 points beyond 2 sigma on one side"},
    [MR_SPC_WECO3] = {5, "4 of 5 points beyond 1 sigma on one side"},
    [MR_SPC_WECO4] = {8, "8 points in a row on one side of the centre line"},
    [MR_SPC_NELSON1] = {1, "1 point beyond 3 sigma"},
    [MR_SPC_NELSON2] = {9, "9 points in a row on one side of the centre line"},
    [MR_SPC_NELSON3] = {6, "6 points in a row steadily increasing or decreasing"},
    [MR_SPC_NELSON4] = {14, "14 points in a row alternating up and down"},
    [MR_SPC_NELSON5] = {3, "2 of 3 points beyond 2 sigma on one side"},
    [MR_SPC_NELSON6] = {5, "4 of 5 points beyond 1 sigma on one side"},
    [MR_SPC_NELSON7] = {15, "15 points in a row within 1 sigma"},
    [MR_SPC_NELSON8] = {8, "8 points in a row beyond 1 sigma"},
};

int mr_spc_rule_find(const char *name)
{
    for (int i = 0; mr_spc_rule_names[i] != NULL; i++) {
        if (strcmp(mr_spc_rule_names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

int mr_spc_rule_span(enum mr_spc_rule rule)
{
    return rule < MR_SPC_NRULES ? rule_info[rule].span : 1;
}

const char *mr_spc_rule_text(enum mr_spc_rule rule)
{
    return rule < MR_SPC_NRULES ? rule_info[rule].text : "";
}

/* The low k bits of m all set. */
static bool run_of(uint32_t m, int k)
{
    uint32_t mask = (1u << k) - 1u;
    return (m & mask) == mask;
}

/* Of the low k bits of m, at least j set, and bit 0 (the newest point) among them. */
static bool j_of_k(uint32_t m, int j, int k)
{
    return (m & 1u) != 0 && __builtin_popcount(m & ((1u << k) - 1u)) >= j;
}

uint32_t mr_spc_hist_push(struct mr_spc_hist *h, double x, double z)
{
    h->above = h->above << 1 | (z > 0);
    h->below = h->below << 1 | (z < 0);
    h->hi1 = h->hi1 << 1 | (z > 1);
    h->lo1 = h->lo1 << 1 | (z < -1);
    h->hi2 = h->hi2 << 1 | (z > 2);
    h->lo2 = h->lo2 << 1 | (z < -2);
    if (h->n > 0) {
        h->up = h->up << 1 | (x > h->last);
        h->down = h->down << 1 | (x < h->last);
    }
    h->last = x;
    if (h->n < UINT32_MAX) {
        h->n++;
    }
    uint32_t r = 0;
    if (fabs(z) > 3) {
        r |= MR_SPC_BIT(MR_SPC_WECO1) | MR_SPC_BIT(MR_SPC_NELSON1);
    }
    if (j_of_k(h->hi2, 2, 3) || j_of_k(h->lo2, 2, 3)) {
        r |= MR_SPC_BIT(MR_SPC_WECO2) | MR_SPC_BIT(MR_SPC_NELSON5);
    }
    if (j_of_k(h->hi1, 4, 5) || j_of_k(h->lo1, 4, 5)) {
        r |= MR_SPC_BIT(MR_SPC_WECO3) | MR_SPC_BIT(MR_SPC_NELSON6);
    }
    if (run_of(h->above, 8) || run_of(h->below, 8)) {
        r |= MR_SPC_BIT(MR_SPC_WECO4);
    }
    if (run_of(h->above, 9) || run_of(h->below, 9)) {
        r |= MR_SPC_BIT(MR_SPC_NELSON2);
    }
    if (run_of(h->up, 5) || run_of(h->down, 5)) { /* 6 points, 5 steps */
        r |= MR_SPC_BIT(MR_SPC_NELSON3);
    }
    /* 14 points, 13 steps, none a tie, each the opposite of the one before. */
    if (run_of(h->up | h->down, 13) && run_of(h->up ^ (h->up >> 1), 12)) {
        r |= MR_SPC_BIT(MR_SPC_NELSON4);
    }
    if (h->n >= 15 && run_of(~(h->hi1 | h->lo1), 15)) {
        r |= MR_SPC_BIT(MR_SPC_NELSON7);
    }
    if (run_of(h->hi1 | h->lo1, 8)) {
        r |= MR_SPC_BIT(MR_SPC_NELSON8);
    }
    return r;
}

int mr_spc_capability(const double *x, size_t n, int sub, double lsl, double usl, bool has_lsl,
                      bool has_usl, struct mr_spc_cap *out)
{
    const struct mr_spc_const *k = mr_spc_constants(sub < 2 ? 2 : sub);
    if (n < 2 || k == NULL || (sub > 1 && n % (size_t)sub != 0)) {
        return MR_EINVAL;
    }
    double mean = 0;
    for (size_t i = 0; i < n; i++) {
        mean += x[i];
    }
    mean /= (double)n;
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
        ss += (x[i] - mean) * (x[i] - mean);
    }
    double rsum = 0;
    size_t nr = 0;
    if (sub < 2) {
        for (size_t i = 1; i < n; i++, nr++) {
            rsum += fabs(x[i] - x[i - 1]);
        }
    } else {
        for (size_t i = 0; i < n; i += (size_t)sub, nr++) {
            double lo = x[i];
            double hi = x[i];
            for (int j = 1; j < sub; j++) {
                lo = fmin(lo, x[i + (size_t)j]);
                hi = fmax(hi, x[i + (size_t)j]);
            }
            rsum += hi - lo;
        }
    }
    struct mr_spc_cap c = {
        .mean = mean,
        .s_within = rsum / (double)nr / k->d2,
        .s_overall = sqrt(ss / (double)(n - 1)),
        .cp = NAN,
        .cpk = NAN,
        .pp = NAN,
        .ppk = NAN,
    };
    const double sig[2] = {c.s_within, c.s_overall};
    double *whole[2] = {&c.cp, &c.pp};
    double *worst[2] = {&c.cpk, &c.ppk};
    for (int i = 0; i < 2; i++) {
        if (!(sig[i] > 0)) {
            continue;
        }
        double upper = has_usl ? (usl - mean) / (3 * sig[i]) : INFINITY;
        double lower = has_lsl ? (mean - lsl) / (3 * sig[i]) : INFINITY;
        if (has_lsl && has_usl) {
            *whole[i] = (usl - lsl) / (6 * sig[i]);
        }
        if (has_lsl || has_usl) {
            *worst[i] = fmin(upper, lower);
        }
    }
    *out = c;
    return 0;
}
