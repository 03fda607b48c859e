/* The statistics behind the `detector` operator (detector.c), free of records and names so
 * that tests can check them against published control-chart examples.
 *
 * Every method works on standardised values z = (x - mu) / sigma, where mu and sigma are the
 * baseline (learned or declared), and returns a score: the statistic divided by its alarm
 * threshold, so 1.0 means "at the control limit" whatever the method. The score is >= 0; with
 * direction both it is the larger of the upward and downward scores.
 *
 *   zscore        stat = z                      limit = threshold
 *   ewma          e_i = lambda*x_i + (1-lambda)*e_{i-1}, e_0 = mu; exact time-varying limit
 *                 sigma * L * sqrt(lambda/(2-lambda) * (1-(1-lambda)^(2i)))   (NIST 6.3.2.4)
 *   cusum         tabular: hi = max(0, hi + z - k), lo = max(0, lo - z - k); limit h (NIST
 *                 6.3.2.3); k and h in sigma units
 *   page_hinkley  m_t = sum(z'_j - delta), PH = m_t - min m; z' is taken against the running
 *                 mean of everything seen (the baseline counts as nbase values), so a slow
 *                 drift of the level is partly absorbed; limit lambda (sigma units)
 *
 * Rolling baseline (struct mr_det_roll): the last `cap` values in a ring, with their mean and
 * sum of squared deviations kept by Welford add/remove in O(1) per value and recomputed from
 * the ring (two passes) after every cap replacements, so rounding errors cannot accumulate
 * over a long stream. The standard deviation is the population one (divide by n), as NAB's
 * windowed Gaussian detector uses.
 */
#ifndef MR_ANALYTICS_DETECTOR_METHODS_H
#define MR_ANALYTICS_DETECTOR_METHODS_H

#include <stdint.h>

enum mr_det_method {
    MR_DET_ZSCORE = 0,
    MR_DET_EWMA = 1,
    MR_DET_CUSUM = 2,
    MR_DET_PAGE_HINKLEY = 3,
};

enum mr_det_direction {
    MR_DET_BOTH = 0,
    MR_DET_UP = 1,
    MR_DET_DOWN = 2,
};

struct mr_det_params {
    int method;       /* enum mr_det_method */
    int direction;    /* enum mr_det_direction */
    double threshold; /* zscore: sigmas */
    double lambda;    /* ewma: weight of the newest value (0, 1]; page_hinkley: alarm level */
    double L;         /* ewma: limit width in sigmas of the EWMA */
    double k;         /* cusum: allowance (sigmas) */
    double h;         /* cusum: decision interval (sigmas) */
    double delta;     /* page_hinkley: tolerated change (sigmas) */
};

/* Running state of one (asset, signal): 72 bytes. */
struct mr_det_state {
    double mu;       /* baseline mean */
    double sigma;    /* baseline standard deviation (> 0) */
    double a;        /* ewma: e_i; cusum: hi; page_hinkley: upward sum */
    double b;        /* cusum: lo; page_hinkley: downward sum */
    double amin;     /* page_hinkley: minimum of the upward sum */
    double bmin;     /* page_hinkley: minimum of the downward sum */
    double run_mean; /* page_hinkley: running mean */
    double run_n;    /* page_hinkley: weight of the running mean */
    uint64_t i;      /* values scored since the baseline */
};

/* Start detecting with baseline (mu, sigma); nbase is the weight of mu in page_hinkley's
 * running mean (the number of baseline values, at least 1). */
void mr_det_state_start(struct mr_det_state *s, double mu, double sigma, double nbase);
/* Feed one value; returns its score (1.0 = at the threshold). */
double mr_det_state_step(const struct mr_det_params *p, struct mr_det_state *s, double x);
/* ewma: half-width of the exact limit at step i (in the signal's unit). */
double mr_det_ewma_limit(const struct mr_det_params *p, double sigma, uint64_t i);

/* The last cap values of one key; ring (cap doubles) is owned by the caller. 32 bytes. */
struct mr_det_roll {
    double *ring;
    uint32_t cap;
    uint32_t n;     /* values held, <= cap */
    uint32_t head;  /* next slot written; the oldest value when n == cap */
    uint32_t since; /* replacements since the last exact recompute */
    double mean;
    double m2; /* sum of squared deviations from mean */
};

void mr_det_roll_init(struct mr_det_roll *r, double *ring, uint32_t cap);
/* Add x, dropping the oldest value when the ring is full. */
void mr_det_roll_push(struct mr_det_roll *r, double x);
/* Mean and M2 again from the values held (two passes). */
void mr_det_roll_recompute(struct mr_det_roll *r);
/* Population standard deviation of the values held (0 when fewer than 2). */
double mr_det_roll_std(const struct mr_det_roll *r);
/* i-th value held, 0 = the oldest. */
double mr_det_roll_at(const struct mr_det_roll *r, uint32_t i);

#endif
