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
