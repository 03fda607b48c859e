/* Vibration of a simulated machine (acceleration in g), one block at a time.
 *
 * Healthy, while the shaft turns (RUNNING or IDLE): a once-per-revolution tone (unbalance,
 * amplitude vibration_level), a weaker twice-per-revolution tone (misalignment, 30 %) and
 * broadband noise (40 % of vibration_level). Stopped: sensor noise only.
 *
 * A bearing with an outer-race defect adds, as its damage s grows from 0 to 1 over `growth`:
 *  - impacts: every 1/BPFO s (with 0.5 % jitter for slip) the rolling element hits the
 *    defect and rings the structure at `resonance`, decaying within about a millisecond. The
 *    peak is impact x sqrt(s): sharp and isolated at first, so kurtosis and crest factor rise
 *    early while RMS barely moves;
 *  - a tone at BPFO and extra broadband noise growing with s^2: the damage spreads, RMS rises
 *    late and kurtosis falls back (domain.md, vibration features).
 * BPFO = (n f_r / 2)(1 - (d/D) cos phi) from the bearing geometry in bearing_fault.
 *
 * Cost: the tones use rotating phasors (a complex multiply per sample, re-anchored at each
 * block start from the exact phase so no error accumulates); the noise is a sum of four
 * 16-bit uniforms from one xoshiro draw (Irwin-Hall, near-normal, kurtosis 2.7). No libm call
 * per sample. */
#include <math.h>

#include "inputs/sim_internal.h"

#define TWO_PI        6.28318530717958647692
#define IH_MEAN       131070.0 /* 4 x 65535 / 2 */
#define IH_SD         37837.2  /* 65536 x sqrt(4/12) */
#define IMPACT_TAU_S  0.0008
#define FLOOR_G       0.003
#define HEALTHY_NOISE 0.4

static inline double noise(struct sim_rng *r)
{
    uint64_t x = sim_rng_next(r);
    double sum = (double)(x & 0xffff) + (double)((x >> 16) & 0xffff) +
                 (double)((x >> 32) & 0xffff) + (double)(x >> 48);
    return (sum - IH_MEAN) / IH_SD;
}

void sim_vib_init(struct mr_sim_model *m, struct sim_machine *mc)
{
    (void)m;
    mc->vib.shaft_hz = mc->conf->rpm / 60.0;
    mc->vib.level_g = mc->conf->vibration_g;
    mc->vib.ring_re = 1.0;
}

double sim_vib_severity(const struct sim_vib *v, int64_t t)
{
    if (!v->faulty || t <= v->fault_start_ns) {
        return 0.0;
    }
    double s = (double)(t - v->fault_start_ns) / (double)v->growth_ns;
    return s < 1.0 ? s : 1.0;
}

/* A phasor for a tone of f Hz at sample n: phase from the exact product, kept in [0, 1). */
struct phasor {
    double re, im, c, s;
};

static void phasor_at(struct phasor *p, double f, uint64_t n, double rate)
{
    double cycles = f * (double)n / rate;
    double ph = TWO_PI * (cycles - floor(cycles));
    p->re = cos(ph);
    p->im = sin(ph);
    p->c = cos(TWO_PI * f / rate);
    p->s = sin(TWO_PI * f / rate);
}

static inline void phasor_step(struct phasor *p)
{
    double re = p->re * p->c - p->im * p->s;
    p->im = p->re * p->s + p->im * p->c;
    p->re = re;
}

static void quiet_block(struct sim_rng *r, float *out, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        out[i] = (float)(FLOOR_G * noise(r));
    }
}

/* The impacts and the BPFO tone added onto out[0..n). */
static void fault_block(struct mr_sim_model *m, struct sim_machine *mc, uint64_t first, double s,
                        float *out)
{
    struct sim_vib *v = &mc->vib;
    uint32_t n = m->vib_block;
    double rate = m->vib_rate;
    double spacing = rate / v->bpfo_hz;
    double peak = v->impact_g * sqrt(s);
    double decay = exp(-1.0 / (rate * IMPACT_TAU_S));
    double rc = cos(TWO_PI * v->res_hz / rate);
    double rs = sin(TWO_PI * v->res_hz / rate);
    double extra = 0.15 * v->impact_g * s * s;
    struct phasor tone;
    phasor_at(&tone, v->bpfo_hz, first, rate);
    double tone_g = 0.25 * v->impact_g * s * s;
    if (v->next_impact < (double)first) {
        v->next_impact = (double)first; /* the shaft was stopped: impacts resume now */
    }
    for (uint32_t i = 0; i < n; i++) {
        if ((double)(first + i) >= v->next_impact) {
            v->env = peak * (0.8 + 0.4 * sim_rng_uniform(&mc->rng_vib));
            v->ring_re = 1.0;
            v->ring_im = 0.0;
            v->next_impact += spacing * (1.0 + 0.005 * noise(&mc->rng_vib));
        }
        double re = v->ring_re * rc - v->ring_im * rs;
        v->ring_im = v->ring_re * rs + v->ring_im * rc;
        v->ring_re = re;
        double x = v->env * v->ring_im + tone_g * tone.im + extra * noise(&mc->rng_vib);
        v->env *= decay;
        phasor_step(&tone);
        out[i] += (float)x;
    }
}

void sim_vib_block(struct mr_sim_model *m, struct sim_machine *mc, uint64_t first, int64_t t,
                   float *out)
{
    struct sim_vib *v = &mc->vib;
    uint32_t n = m->vib_block;
    if (!(mc->state == ST_RUNNING || mc->state == ST_IDLE)) {
        quiet_block(&mc->rng_vib, out, n);
        v->env = 0.0;
        return;
    }
    double rate = m->vib_rate;
    struct phasor one;
    struct phasor two;
    phasor_at(&one, v->shaft_hz, first, rate);
    phasor_at(&two, 2.0 * v->shaft_hz, first, rate);
    double a1 = v->level_g;
    double a2 = 0.3 * v->level_g;
    double sn = HEALTHY_NOISE * v->level_g + FLOOR_G;
    for (uint32_t i = 0; i < n; i++) {
        out[i] = (float)(a1 * one.im + a2 * two.im + sn * noise(&mc->rng_vib));
        phasor_step(&one);
        phasor_step(&two);
    }
    double s = sim_vib_severity(v, t);
    if (s > 0.0) {
        fault_block(m, mc, first, s, out);
    }
}
