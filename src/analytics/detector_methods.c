/* Control-chart statistics of the detector operator; formulas in detector_methods.h. */
#include "analytics/detector_methods.h"

#include <math.h>

void mr_det_state_start(struct mr_det_state *s, double mu, double sigma, double nbase)
{
    *s = (struct mr_det_state){
        .mu = mu,
        .sigma = sigma,
        .a = mu, /* ewma starts at the target; the other methods reset a below */
        .run_mean = mu,
        .run_n = nbase >= 1 ? nbase : 1,
    };
}

double mr_det_ewma_limit(const struct mr_det_params *p, double sigma, uint64_t i)
{
    double lam = p->lambda;
    /* (1-lambda)^(2i) underflows to 0 for large i, which is the asymptotic limit. */
    double decay = pow(1.0 - lam, 2.0 * (double)i);
    return sigma * p->L * sqrt(lam / (2.0 - lam) * (1.0 - decay));
}

static double pick(int direction, double up, double down)
{
    if (direction == MR_DET_UP) {
        return up;
    }
    if (direction == MR_DET_DOWN) {
        return down;
    }
    return up > down ? up : down;
}

static double step_page_hinkley(const struct mr_det_params *p, struct mr_det_state *s, double x)
{
    s->run_n += 1.0;
    s->run_mean += (x - s->run_mean) / s->run_n;
    double z = (x - s->run_mean) / s->sigma;
    if (s->i == 1) {
        s->a = s->b = s->amin = s->bmin = 0;
    }
    s->a += z - p->delta;
    s->b += -z - p->delta;
    s->amin = s->a < s->amin ? s->a : s->amin;
    s->bmin = s->b < s->bmin ? s->b : s->bmin;
    return pick(p->direction, (s->a - s->amin) / p->lambda, (s->b - s->bmin) / p->lambda);
}

double mr_det_state_step(const struct mr_det_params *p, struct mr_det_state *s, double x)
{
    s->i++;
    double z = (x - s->mu) / s->sigma;
    switch (p->method) {
    case MR_DET_EWMA: {
        s->a = p->lambda * x + (1.0 - p->lambda) * s->a;
        double dev = (s->a - s->mu) / mr_det_ewma_limit(p, s->sigma, s->i);
        return pick(p->direction, dev > 0 ? dev : 0, dev < 0 ? -dev : 0);
    }
    case MR_DET_CUSUM: {
        if (s->i == 1) {
            s->a = s->b = 0;
        }
        double hi = s->a + z - p->k;
        double lo = s->b - z - p->k;
        s->a = hi > 0 ? hi : 0;
        s->b = lo > 0 ? lo : 0;
        return pick(p->direction, s->a / p->h, s->b / p->h);
    }
    case MR_DET_PAGE_HINKLEY:
        return step_page_hinkley(p, s, x);
    default: {
        double up = z > 0 ? z / p->threshold : 0;
        double down = z < 0 ? -z / p->threshold : 0;
        return pick(p->direction, up, down);
    }
    }
}

void mr_det_roll_init(struct mr_det_roll *r, double *ring, uint32_t cap)
{
    *r = (struct mr_det_roll){.ring = ring, .cap = cap};
}

double mr_det_roll_at(const struct mr_det_roll *r, uint32_t i)
{
    uint32_t oldest = r->n < r->cap ? 0 : r->head;
    return r->ring[(oldest + i) % r->cap];
}

void mr_det_roll_recompute(struct mr_det_roll *r)
{
    /* Oldest first, so that a ring restored from a checkpoint (laid out from slot 0) sums in
     * the same order and gives the same bits. */
    double sum = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        sum += mr_det_roll_at(r, i);
    }
    double mean = r->n > 0 ? sum / (double)r->n : 0;
    double m2 = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        double d = mr_det_roll_at(r, i) - mean;
        m2 += d * d;
    }
    r->mean = mean;
    r->m2 = m2;
    r->since = 0;
}

void mr_det_roll_push(struct mr_det_roll *r, double x)
{
    if (r->n == r->cap) {
        double y = r->ring[r->head];
        /* Welford removal of y, then addition of x, at constant n. */
        double n = (double)r->n;
        double old_mean = r->mean;
        r->mean += (x - y) / n;
        r->m2 += (x - y) * (x - r->mean + y - old_mean);
        if (r->m2 < 0) {
            r->m2 = 0;
        }
        r->ring[r->head] = x;
        r->head = (r->head + 1) % r->cap;
        if (++r->since >= r->cap) {
            mr_det_roll_recompute(r);
        }
        return;
    }
    r->ring[r->head] = x;
    r->head = (r->head + 1) % r->cap;
    r->n++;
    double d = x - r->mean;
    r->mean += d / (double)r->n;
    r->m2 += d * (x - r->mean);
}

double mr_det_roll_std(const struct mr_det_roll *r)
{
    return r->n > 1 ? sqrt(r->m2 / (double)r->n) : 0;
}
