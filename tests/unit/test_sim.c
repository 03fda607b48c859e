/* The plant simulator (input `sim`): the model driven directly (determinism, state machine,
 * counters, bearing defect tone and kurtosis, quality drift, injected faults, supply,
 * configuration errors) and the plugin on a real libuv loop (end of run, pacing,
 * back-pressure, stop). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "inputs/sim_model.h"
#include "millrace/alloc.h"
#include "millrace/config.h"
#include "millrace/log.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "millrace/plugin.h"

extern const struct mr_plugin mr_input_sim;

#define START_NS 1767592800000000000LL /* 2026-01-05T06:00:00Z */
#define SEC      1000000000LL
#define PI       3.14159265358979323846

/* ---- helpers: run the model, look at what it made ---- */

typedef void (*rec_fn)(const struct mr_record *r, struct mr_names *names, void *arg);

static void conf_load(struct mr_sim_conf *conf, const char *yaml)
{
    static struct mr_config_errors errs;
    int rc = mr_section_load_buffer(&mr_input_sim.conf, conf, "test.yaml", yaml, strlen(yaml), NULL,
                                    &errs);
    for (size_t i = 0; i < errs.n; i++) {
        print_message("config: %s\n", errs.msg[i]);
    }
    assert_int_equal(rc, 0);
}

/* Run yaml (which must set a duration) to its end, calling fn for each record in emission
 * order. The simulated time advances by `step` per call (0: all at once). Returns the count. */
static size_t model_run(const char *yaml, int64_t step, rec_fn fn, void *arg)
{
    struct mr_sim_conf conf;
    struct mr_names *names;
    struct mr_sim_model *m;
    struct mr_err err = {0};
    conf_load(&conf, yaml);
    assert_int_equal(mr_names_create(&names, 4096, 1 << 20), 0);
    int rc = mr_sim_model_create(&m, &conf, START_NS, names, &err);
    if (rc != 0) {
        print_message("create: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    size_t total = 0;
    int64_t until = START_NS;
    while (!mr_sim_model_finished(m)) {
        const struct mr_record *recs;
        bool caught_up;
        until = step > 0 ? until + step : INT64_MAX;
        do {
            size_t n = mr_sim_model_next(m, until, &recs, &caught_up);
            for (size_t i = 0; i < n; i++) {
                fn(&recs[i], names, arg);
            }
            total += n;
        } while (!caught_up);
    }
    mr_sim_model_destroy(m);
    mr_section_free(&mr_input_sim.conf, &conf);
    mr_names_destroy(names);
    return total;
}

static bool is(const struct mr_record *r, struct mr_names *names, const char *asset_suffix,
               const char *signal)
{
    size_t alen;
    const char *a = mr_names_str(names, r->asset, &alen);
    const char *s = mr_names_str(names, r->signal, NULL);
    size_t slen = strlen(asset_suffix);
    return strcmp(s, signal) == 0 && alen >= slen && strcmp(a + alen - slen, asset_suffix) == 0;
}

static const char *tag(const struct mr_record *r, struct mr_names *names, const char *key,
                       char *buf, size_t cap)
{
    for (uint16_t i = 0; i < r->ntags; i++) {
        if (strcmp(mr_names_str(names, r->tags[i].key, NULL), key) == 0) {
            snprintf(buf, cap, "%.*s", (int)r->tags[i].value.len, r->tags[i].value.ptr);
            return buf;
        }
    }
    return NULL;
}

/* ---- determinism ---- */

struct digest {
    uint64_t h;
    size_t n;
};

static void digest_fn(const struct mr_record *r, struct mr_names *names, void *arg)
{
    static uint8_t buf[8 * 1024 * 1024];
    struct digest *d = arg;
    long len = mr_record_encode(r, names, buf, sizeof(buf));
    assert_true(len > 0);
    for (long i = 0; i < len; i++) {
        d->h = (d->h ^ buf[i]) * 0x100000001B3ULL;
    }
    d->n++;
}

static const char det_yaml[] = "seed: %d\n"
                               "duration: 90s\n"
                               "vibration_block: 500\n"
                               "bearing_fault: {machine: press1, start: 10s, growth: 1m}\n"
                               "quality_drift: {machine: weld1, rate_per_hour: 0.5}\n"
                               "faults:\n"
                               "  - {machine: paint1, kind: late, at: 20s, duration: 10s, "
                               "delay: 7s}\n"
                               "  - {machine: weld1, signal: power, kind: skew, at: 5s, skew: "
                               "-3s}\n";

static struct digest det_run(int seed, int64_t step)
{
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), det_yaml, seed);
    struct digest d = {.h = 0xcbf29ce484222325ULL};
    model_run(yaml, step, digest_fn, &d);
    return d;
}

/* Same seed: identical encoded records, whatever the caller's time steps; another seed:
 * different records. */
static void test_determinism(void **state)
{
    (void)state;
    struct digest a = det_run(7, 0);
    struct digest b = det_run(7, 20 * 1000 * 1000);
    struct digest c = det_run(7, 3 * SEC + 1);
    struct digest d = det_run(8, 0);
    print_message("records %zu digest %016llx\n", a.n, (unsigned long long)a.h);
    assert_true(a.n > 3000);
    assert_int_equal(a.n, b.n);
    assert_true(a.h == b.h);
    assert_true(a.h == c.h);
    assert_true(a.h != d.h);
}

/* ---- PLC states and counters over a long run ---- */

#define NM 3
struct states {
    const char *machines[NM];
    int64_t since[NM];
    int cur[NM];
    int64_t in_state[NM][5];
    int seen_reason[8];
    int64_t cycles[NM], good[NM], rejects[NM];
    int64_t last_cycle_time[NM];
    int pending[NM]; /* counters of the current cycle seen */
    double min_cycle_s[NM];
    bool flat_energy_ok;
    double energy[NM];
};

static const char *const st_names[5] = {"RUNNING", "IDLE", "DOWN", "SETUP", "PLANNED_STOP"};
static const char *const reasons[8] = {"jam",     "electrical", "mechanical",  "starved",
                                       "blocked", "changeover", "tool_change", "break"};

static void states_fn(const struct mr_record *r, struct mr_names *names, void *arg)
{
    struct states *s = arg;
    for (int i = 0; i < NM; i++) {
        if (is(r, names, s->machines[i], "state")) {
            int st = -1;
            for (int k = 0; k < 5; k++) {
                if (r->v.str.len == strlen(st_names[k]) &&
                    memcmp(r->v.str.ptr, st_names[k], r->v.str.len) == 0) {
                    st = k;
                }
            }
            assert_true(st >= 0);
            assert_true(r->time_ns >= s->since[i]);
            if (s->cur[i] >= 0) {
                s->in_state[i][s->cur[i]] += r->time_ns - s->since[i];
            }
            s->cur[i] = st;
            s->since[i] = r->time_ns;
            char buf[64];
            const char *why = tag(r, names, "reason", buf, sizeof(buf));
            assert_true((st == 0) == (why == NULL)); /* a reason for every stop */
            for (int k = 0; why != NULL && k < 8; k++) {
                s->seen_reason[k] += strcmp(why, reasons[k]) == 0;
            }
        } else if (is(r, names, s->machines[i], "cycle_count")) {
            assert_int_equal(r->v.i64, s->cycles[i] + 1); /* monotonic, one per cycle */
            s->cycles[i] = r->v.i64;
            s->last_cycle_time[i] = r->time_ns;
        } else if (is(r, names, s->machines[i], "good_count")) {
            assert_true(r->v.i64 >= s->good[i]);
            s->good[i] = r->v.i64;
        } else if (is(r, names, s->machines[i], "reject_count")) {
            assert_true(r->v.i64 >= s->rejects[i]);
            s->rejects[i] = r->v.i64;
            assert_int_equal(r->time_ns, s->last_cycle_time[i]);
            assert_int_equal(s->good[i] + s->rejects[i], s->cycles[i]);
        } else if (is(r, names, s->machines[i], "cycle_time")) {
            s->min_cycle_s[i] = r->v.f64 < s->min_cycle_s[i] ? r->v.f64 : s->min_cycle_s[i];
        } else if (is(r, names, s->machines[i], "energy")) {
            assert_true(r->v.f64 >= s->energy[i]);
            s->energy[i] = r->v.f64;
        }
    }
}

static void test_states_and_counts(void **state)
{
    (void)state;
    struct states s = {.machines = {"/press1", "/weld1", "/paint1"}};
    for (int i = 0; i < NM; i++) {
        s.cur[i] = -1;
        s.min_cycle_s[i] = 1e9;
    }
    model_run("duration: 24h\nvibration: false\nseed: 3\n", 0, states_fn, &s);
    const double ideal[NM] = {5.0, 5.5, 6.0};
    for (int i = 0; i < NM; i++) {
        int64_t total = 0;
        s.in_state[i][s.cur[i]] += START_NS + 24 * 3600 * SEC - s.since[i];
        for (int k = 0; k < 5; k++) {
            total += s.in_state[i][k];
        }
        assert_int_equal(total, 24 * 3600 * SEC);
        print_message("%s:", s.machines[i]);
        for (int k = 0; k < 5; k++) {
            double share = (double)s.in_state[i][k] / (double)total;
            print_message(" %s %.3f", st_names[k], share);
            assert_true(share > 0.0); /* every state occurs */
        }
        double run = (double)s.in_state[i][0] / (double)total;
        double planned = (double)s.in_state[i][4] / (double)total;
        print_message(" cycles %lld rejects %lld\n", (long long)s.cycles[i],
                      (long long)s.rejects[i]);
        assert_true(run > 0.6 && run < 0.92);
        /* 20 min every 4 h: 5 breaks in 24 h */
        assert_true(fabs(planned - 100.0 / 1440.0) < 0.01);
        /* real cycles are never faster than ideal; rejects are a few percent */
        assert_true(s.min_cycle_s[i] >= ideal[i]);
        double rej = (double)s.rejects[i] / (double)s.cycles[i];
        assert_true(rej > 0.005 && rej < 0.04);
        /* parts made fit the running time: between 70 % and 100 % of ideal speed */
        double ideal_parts = (double)s.in_state[i][0] / 1e9 / ideal[i];
        assert_true(s.cycles[i] > 0.7 * ideal_parts && s.cycles[i] <= ideal_parts + 1);
    }
    for (int k = 0; k < 8; k++) {
        assert_true(s.seen_reason[k] > 0);
    }
}

/* ---- vibration: bearing defect frequencies, tone and kurtosis ---- */

static void test_bpfo_formula(void **state)
{
    (void)state;
    /* domain.md 3.3 test vectors: IMS rig (Rexnord ZA-2115) and CWRU drive end (SKF 6205). */
    assert_true(fabs(mr_sim_bpfo_hz(2000.0 / 60.0, 16, 0.331, 2.815, 15.17) - 236.40) < 0.01);
    assert_true(fabs(mr_sim_bpfo_hz(1797.0 / 60.0, 9, 0.3126, 1.537, 0) - 107.36) < 0.01);
    assert_true(fabs(mr_sim_bpfo_hz(1.0, 9, 0.3126, 1.537, 0) - 3.5848) < 0.0001);
}

struct vib {
    /* per machine (0 faulty, 1 healthy) and phase (0 early, 1 late): sums over blocks */
    double kurt[2][2], rms[2][2], tone[2][2], side[2][2];
    int n[2][2];
    double bpfo;
};

/* Magnitude at f of a Hann-windowed block (Goertzel). */
static double goertzel(const float *x, uint32_t n, double rate, double f)
{
    double w = 2.0 * PI * f / rate;
    double c = 2.0 * cos(w);
    double s1 = 0;
    double s2 = 0;
    for (uint32_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, &x[i], sizeof(v));
        double hann = 0.5 - 0.5 * cos(2.0 * PI * i / (n - 1));
        double s0 = v * hann + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    return sqrt(s1 * s1 + s2 * s2 - c * s1 * s2);
}

static void features(const float *x, uint32_t n, double *rms, double *kurt)
{
    double mean = 0;
    for (uint32_t i = 0; i < n; i++) {
        mean += x[i];
    }
    mean /= n;
    double m2 = 0;
    double m4 = 0;
    for (uint32_t i = 0; i < n; i++) {
        double d = x[i] - mean;
        m2 += d * d;
        m4 += d * d * d * d;
    }
    m2 /= n;
    m4 /= n;
    *rms = sqrt(m2);
    *kurt = m4 / (m2 * m2);
}

static void vib_fn(const struct mr_record *r, struct mr_names *names, void *arg)
{
    struct vib *v = arg;
    if (r->type != MR_VALUE_SAMPLES) {
        return;
    }
    int mach = is(r, names, "/press1", "vibration") ? 0 : 1;
    int64_t t = r->time_ns - START_NS;
    /* fault from 1 min, severe at 11 min: early = minutes 2-3, late = minutes 11-12 */
    int phase = t >= 2 * 60 * SEC && t < 3 * 60 * SEC ? 0 : t >= 11 * 60 * SEC ? 1 : -1;
    if (phase < 0) {
        return;
    }
    double rms;
    double kurt;
    features(r->v.samples.data, r->v.samples.n, &rms, &kurt);
    v->rms[mach][phase] += rms;
    v->kurt[mach][phase] += kurt;
    v->tone[mach][phase] += goertzel(r->v.samples.data, r->v.samples.n, 10000, v->bpfo);
    v->side[mach][phase] += goertzel(r->v.samples.data, r->v.samples.n, 10000, 1.5 * v->bpfo);
    v->n[mach][phase]++;
}

static void test_bearing_fault(void **state)
{
    (void)state;
    /* Two identical machines that never stop; press1's bearing fails. */
    const char *yaml =
        "duration: 12m\n"
        "break_every: 0\n"
        "supply: {enabled: false}\n"
        "lines:\n"
        "  - name: line1\n"
        "    machines:\n"
        "      - {name: press1, mtbf: 1000h, idle_every: 1000h, setup_every: 1000h}\n"
        "      - {name: weld1, mtbf: 1000h, idle_every: 1000h, setup_every: 1000h}\n"
        "bearing_fault: {machine: press1, start: 1m, growth: 10m}\n";
    struct vib v = {.bpfo = mr_sim_bpfo_hz(1480.0 / 60.0, 9, 7.94, 39.04, 0)};
    model_run(yaml, 0, vib_fn, &v);
    for (int m = 0; m < 2; m++) {
        for (int p = 0; p < 2; p++) {
            assert_int_equal(v.n[m][p], 600); /* 10 blocks a second for a minute */
            v.rms[m][p] /= v.n[m][p];
            v.kurt[m][p] /= v.n[m][p];
            v.tone[m][p] /= v.n[m][p];
            v.side[m][p] /= v.n[m][p];
        }
    }
    print_message("BPFO %.2f Hz\n", v.bpfo);
    for (int p = 0; p < 2; p++) {
        print_message("%s: faulty rms %.4f kurt %.2f tone %.2f side %.2f | healthy rms %.4f "
                      "kurt %.2f tone %.2f side %.2f\n",
                      p == 0 ? "early" : "late", v.rms[0][p], v.kurt[0][p], v.tone[0][p],
                      v.side[0][p], v.rms[1][p], v.kurt[1][p], v.tone[1][p], v.side[1][p]);
    }
    /* Late: a clear tone at BPFO (against 1.5 x BPFO and against the healthy machine), higher
     * kurtosis and a much higher RMS than the healthy machine. */
    assert_true(v.tone[0][1] > 5.0 * v.side[0][1]);
    assert_true(v.tone[0][1] > 5.0 * v.tone[1][1]);
    assert_true(v.kurt[0][1] > v.kurt[1][1] + 0.5);
    assert_true(v.rms[0][1] > 2.5 * v.rms[1][1]);
    /* Early: kurtosis already up while RMS has barely moved. */
    assert_true(v.kurt[0][0] > v.kurt[1][0] + 1.0);
    assert_true(v.rms[0][0] < 1.5 * v.rms[1][0]);
    /* The healthy machine is the same early and late. */
    assert_true(fabs(v.rms[1][1] / v.rms[1][0] - 1.0) < 0.05);
}

/* ---- quality drift ---- */

struct dims {
    double sum[2], rej[2];
    int n[2];
    int64_t rejects_before, rejects_late;
};

static void dims_fn(const struct mr_record *r, struct mr_names *names, void *arg)
{
    struct dims *d = arg;
    if (is(r, names, "/weld1", "reject_count")) {
        if (r->time_ns - START_NS < 210 * 60 * SEC) {
            d->rejects_before = r->v.i64;
        } else {
            d->rejects_late = r->v.i64 - d->rejects_before;
        }
    }
    if (!is(r, names, "/weld1", "dimension")) {
        return;
    }
    int64_t t = r->time_ns - START_NS;
    int half = t < 30 * 60 * SEC ? 0 : t >= 210 * 60 * SEC ? 1 : -1;
    char buf[16];
    assert_string_equal(tag(r, names, "unit", buf, sizeof(buf)), "mm");
    if (half >= 0) {
        d->sum[half] += r->v.f64;
        d->n[half]++;
        d->rej[half] += fabs(r->v.f64 - 25.0) > 0.05;
    }
}

static void test_quality_drift(void **state)
{
    (void)state;
    struct dims d = {0};
    model_run("duration: 4h\nvibration: false\n"
              "quality_drift: {machine: weld1, rate_per_hour: 0.02, start: 30m}\n",
              0, dims_fn, &d);
    double early = d.sum[0] / d.n[0];
    double late = d.sum[1] / d.n[1];
    print_message("dimension mean %.4f -> %.4f (out of tolerance %.0f -> %.0f)\n", early, late,
                  d.rej[0], d.rej[1]);
    assert_true(fabs(early - 25.0) < 0.003);
    /* minutes 210-240: 3.25 h of drift on average, 0.065 mm: most parts out of tolerance
     * (and rejected), none at the start */
    assert_true(fabs(late - early - 0.065) < 0.006);
    assert_true(d.rej[0] == 0);
    assert_true(d.rej[1] > 0.8 * d.n[1]);
    assert_true(d.rejects_late > 0.8 * d.n[1]);
}

/* ---- injected faults ---- */

struct times {
    int64_t t[512];
    double v[512];
    size_t n;
    size_t other; /* records of the other machine's temperature */
    size_t weld_all;
};

static void times_fn(const struct mr_record *r, struct mr_names *names, void *arg)
{
    struct times *s = arg;
    if (is(r, names, "/press1", "temperature")) {
        assert_true(s->n < 512);
        s->t[s->n] = (r->time_ns - START_NS) / 1000000; /* ms */
        s->v[s->n] = r->v.f64;
        s->n++;
    } else if (is(r, names, "/weld1", "temperature")) {
        s->other++;
    }
}

static size_t find_ms(const struct times *s, int64_t ms)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->t[i] == ms) {
            return i;
        }
    }
    return SIZE_MAX;
}

static void run_fault(struct times *s, const char *fault)
{
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "duration: 2m\nvibration: false\nfaults:\n  - {machine: press1, at: 30s, "
             "duration: 20s, %s}\n",
             fault);
    memset(s, 0, sizeof(*s));
    model_run(yaml, 0, times_fn, s);
    assert_int_equal(s->other, 120); /* the other machine is untouched */
}

static void test_fault_kinds(void **state)
{
    (void)state;
    struct times s;
    /* dropout: a 20 s gap */
    run_fault(&s, "signal: temperature, kind: dropout");
    assert_int_equal(s.n, 100);
    for (size_t i = 0; i < s.n; i++) {
        assert_true(s.t[i] < 30000 || s.t[i] >= 50000);
    }
    assert_int_equal(s.t[30], 50000);
    /* stuck: 20 readings equal to the one at 30 s, then moving again */
    run_fault(&s, "signal: temperature, kind: stuck");
    assert_int_equal(s.n, 120);
    for (size_t i = 30; i < 50; i++) {
        assert_true(s.v[i] == s.v[30]);
    }
    assert_true(s.v[29] != s.v[30] && s.v[50] != s.v[30]);
    /* late by 25 s: everything arrives; nothing of the window before 55 s, then each held
     * reading right after the on-time one 25 s newer (20 inversions) */
    run_fault(&s, "signal: temperature, kind: late, delay: 25s");
    assert_int_equal(s.n, 120);
    for (int64_t ms = 0; ms < 120000; ms += 1000) {
        assert_true(find_ms(&s, ms) != SIZE_MAX);
    }
    assert_int_equal(find_ms(&s, 50000), find_ms(&s, 29000) + 1);
    assert_int_equal(find_ms(&s, 30000), find_ms(&s, 55000) + 1);
    assert_int_equal(find_ms(&s, 49000), find_ms(&s, 74000) + 1);
    size_t inversions = 0;
    for (size_t i = 1; i < s.n; i++) {
        inversions += s.t[i] < s.t[i - 1];
    }
    assert_int_equal(inversions, 20);
    /* skew -2.5 s: the 20 readings of the window are stamped 2.5 s early */
    run_fault(&s, "signal: temperature, kind: skew, skew: -2500ms");
    assert_int_equal(s.n, 120);
    for (size_t i = 0; i < s.n; i++) {
        int64_t expect = (int64_t)i * 1000 - (i >= 30 && i < 50 ? 2500 : 0);
        assert_int_equal(s.t[i], expect);
    }
    /* no signal named: every signal of the machine drops out */
    run_fault(&s, "kind: dropout");
    assert_int_equal(s.n, 100);
}

/* Late vibration blocks come back intact (samples copied out and back). */
struct blocks {
    uint64_t sum_on_time, sum_late;
    size_t n;
    int64_t last;
    size_t inversions;
};

static void blocks_fn(const struct mr_record *r, struct mr_names *names, void *arg)
{
    struct blocks *b = arg;
    if (!is(r, names, "/press1", "vibration")) {
        return;
    }
    assert_int_equal(r->v.samples.n, 1000);
    assert_true(r->v.samples.rate_hz == 10000.0);
    uint64_t h = 0;
    for (uint32_t i = 0; i < r->v.samples.n; i++) {
        uint32_t u;
        memcpy(&u, &r->v.samples.data[i], sizeof(u));
        h = h * 31 + u;
    }
    b->sum_on_time += h;
    b->inversions += r->time_ns < b->last;
    b->last = r->time_ns;
    b->n++;
}

static void test_late_samples(void **state)
{
    (void)state;
    struct blocks a = {0};
    struct blocks b = {0};
    model_run("duration: 20s\nsupply: {enabled: false}\n", 0, blocks_fn, &a);
    model_run("duration: 20s\nsupply: {enabled: false}\nfaults:\n"
              "  - {machine: press1, signal: vibration, kind: late, at: 5s, duration: 3s, "
              "delay: 4s}\n",
              0, blocks_fn, &b);
    assert_int_equal(a.n, 200);
    assert_int_equal(b.n, 200);
    assert_true(a.sum_on_time == b.sum_on_time);
    assert_int_equal(a.inversions, 0);
    assert_int_equal(b.inversions, 30); /* each held block after a newer one */
}

/* ---- supply ---- */

struct supply {
    double level;
    double arrived;
    int64_t good;
    int shortages;
    int64_t shortage_at, first_shortage_at, resumed_at, arrival_at;
    int inbound;
    int boms;
    bool level_seen;
};

static void supply_fn(const struct mr_record *r, struct mr_names *names, void *arg)
{
    struct supply *s = arg;
    char buf[64];
    if (is(r, names, "plant1/warehouse/blank", "inventory")) {
        assert_true(!s->level_seen || r->v.f64 <= s->level || r->time_ns == s->arrival_at);
        s->level = r->v.f64;
        s->level_seen = true;
    } else if (is(r, names, "plant1/warehouse/blank", "shipment")) {
        char qty[32];
        assert_string_equal(tag(r, names, "qty", qty, sizeof(qty)), "300");
        if (r->v.str.len == 7 && memcmp(r->v.str.ptr, "inbound", 7) == 0) {
            char eta[64];
            int64_t eta_ns;
            assert_non_null(tag(r, names, "eta", eta, sizeof(eta)));
            assert_int_equal(mr_time_parse_rfc3339(eta, strlen(eta), &eta_ns), 0);
            assert_int_equal(eta_ns, r->time_ns + 10 * 60 * SEC);
            s->inbound++;
        } else {
            assert_int_equal(r->v.str.len, 7);
            assert_memory_equal(r->v.str.ptr, "arrived", 7);
            s->arrived += 300;
            s->arrival_at = r->time_ns;
        }
    } else if (is(r, names, "plant1/warehouse/blank", "bom")) {
        assert_true(r->v.f64 == 2.0);
        assert_string_equal(tag(r, names, "product", buf, sizeof(buf)), "bracket");
        assert_string_equal(tag(r, names, "material", buf, sizeof(buf)), "blank");
        assert_string_equal(tag(r, names, "qty", buf, sizeof(buf)), "2");
        assert_string_equal(tag(r, names, "consumer", buf, sizeof(buf)),
                            "plant1/assembly/l1/cutter");
        s->boms++;
    } else if (is(r, names, "/cutter", "good_count")) {
        s->good = r->v.i64;
    } else if (is(r, names, "/cutter", "state")) {
        const char *why = tag(r, names, "reason", buf, sizeof(buf));
        if (why != NULL && strcmp(why, "material_shortage") == 0) {
            s->shortages++;
            s->shortage_at = r->time_ns;
            s->first_shortage_at = s->first_shortage_at ? s->first_shortage_at : r->time_ns;
        } else if (s->shortages > 0 && s->resumed_at == 0) {
            s->resumed_at = r->time_ns;
        }
    }
}

static void test_supply(void **state)
{
    (void)state;
    struct supply s = {0};
    model_run("duration: 25m\nvibration: false\nbreak_every: 0\n"
              "lines:\n"
              "  - name: l1\n"
              "    product: bracket\n"
              "    machines:\n"
              "      - {name: cutter, ideal_cycle_time: 5s, mtbf: 1000h, idle_every: 1000h, "
              "setup_every: 1000h, reject_rate: 0}\n"
              "supply:\n"
              "  interval: 10s\n"
              "  materials:\n"
              "    - {name: blank, initial: 100, shipment_qty: 300, shipment_every: 20m, "
              "lead_time: 10m, delay_max: 0}\n"
              "  bom: [{product: bracket, material: blank, qty: 2}]\n",
              0, supply_fn, &s);
    print_message("good %lld, level %.0f, shortages at +%llds and +%llds, resumed at +%llds\n",
                  (long long)s.good, s.level, (long long)((s.first_shortage_at - START_NS) / SEC),
                  (long long)((s.shortage_at - START_NS) / SEC),
                  (long long)((s.resumed_at - START_NS) / SEC));
    assert_int_equal(s.boms, 1);
    assert_int_equal(s.inbound, 2); /* at 0 and 20 min */
    assert_true(s.arrived == 300);  /* the second arrives after the end */
    /* 100 blanks make 50 parts (4.5 min plus micro-stops), then the cutter waits for the truck at
     * 10 min; its 300 blanks last until about 24 min, and the next truck is not due before
     * 30 min: a second shortage. */
    assert_int_equal(s.shortages, 2);
    assert_true(s.first_shortage_at > START_NS + 4 * 60 * SEC);
    assert_true(s.first_shortage_at < START_NS + 8 * 60 * SEC); /* with a few micro-stops */
    assert_true(s.shortage_at > START_NS + 22 * 60 * SEC);
    assert_int_equal(s.resumed_at, START_NS + 10 * 60 * SEC);
    assert_int_equal(s.good, 200);
    assert_true(s.level == 0);
    assert_int_equal(s.arrival_at, START_NS + 10 * 60 * SEC);
    /* every good part took exactly 2 blanks */
    assert_true(100.0 + s.arrived - 2.0 * (double)s.good == s.level);
}

/* ---- configuration errors ---- */

static void test_config_errors(void **state)
{
    (void)state;
    static struct mr_config_errors errs;
    struct mr_err err;
    assert_int_equal(mr_section_validate(&mr_input_sim.conf, "sim", &err), 0);
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"bearing_fault: {machine: pres1}\n",
         "bearing_fault.machine: no machine named 'pres1' (machines: line1/press1, line1/weld1, "
         "line1/paint1)"},
        {"start: yesterday\n", "start: expected 'now' or an RFC 3339 time"},
        {"start: 2026-13-01T00:00:00Z\n", "start: expected 'now' or an RFC 3339 time"},
        {"quality_drift: {machine: line2/weld1}\n", "quality_drift.machine: no machine named"},
        {"faults: [{machine: weld1, kind: late, at: 1m, signal: temp}]\n",
         "faults[0].signal: no machine signal 'temp'"},
        {"faults: [{machine: weld1, kind: skew, at: 1m, skew: soon}]\n", "faults[0].skew:"},
        {"faults: [{machine: weld1, kind: sticky, at: 1m}]\n", "kind"},
        {"lines: [{name: a, machines: [{name: m1}]}, {name: b, machines: [{name: m1}]}]\n"
         "bearing_fault: {machine: m1}\n",
         "machine 'm1' is on several lines: write LINE/m1"},
        {"supply: {materials: [{name: steel}], bom: [{material: copper}]}\n",
         "supply.bom[0].material: no material named 'copper'"},
        {"bearing_fault: {machine: press1, resonance: 6000}\n",
         "bearing_fault.resonance: must be below half the vibration_rate"},
        {"lines: [{name: a/b, machines: [{name: m1}]}]\n", "lines[0]: line and area names"},
        {"break_every: 10m\nbreak_duration: 10m\n",
         "break_duration: must be shorter than break_every"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_sim_conf conf;
        int rc = mr_section_load_buffer(&mr_input_sim.conf, &conf, "bad.yaml", cases[i].yaml,
                                        strlen(cases[i].yaml), NULL, &errs);
        assert_int_equal(rc, MR_ECONFIG);
        bool found = false;
        for (size_t k = 0; k < errs.n; k++) {
            print_message("%s\n", errs.msg[k]);
            found = found || strstr(errs.msg[k], cases[i].msg) != NULL;
        }
        assert_true(found);
    }
    /* A hand-built configuration that skipped the check fails at creation, not later. */
    struct mr_sim_conf conf;
    struct mr_names *names;
    struct mr_sim_model *m = NULL;
    conf_load(&conf, "duration: 1m\n");
    conf.quality_drift.machine = "nosuch";
    assert_int_equal(mr_names_create(&names, 256, 1 << 16), 0);
    assert_int_equal(mr_sim_model_create(&m, &conf, START_NS, names, &err), MR_ECONFIG);
    assert_non_null(strstr(err.msg, "quality_drift.machine"));
    conf.quality_drift.machine = NULL;
    mr_section_free(&mr_input_sim.conf, &conf);
    mr_names_destroy(names);
}

/* ---- the plugin on a real loop ---- */

struct rig {
    struct mr_sim_conf conf;
    struct mr_names *names;
    struct mr_metrics *metrics;
    uv_loop_t loop;
    struct mr_input_host host;
    void *ctx;
    int refuse_every; /* answer MR_EAGAIN to every n-th offer (0: never) */
    int refusals_left;
    size_t offers;
    size_t records;
    size_t temperatures;
    struct digest digest;
    int ended, stopped, status;
    bool stop_after_first;
    char log[2048];
    size_t log_used;
};

static void log_sink(enum mr_log_level level, const char *line, void *arg)
{
    struct rig *r = arg;
    (void)level;
    int w = snprintf(r->log + r->log_used, sizeof(r->log) - r->log_used, "%s\n", line);
    if (w > 0 && (size_t)w < sizeof(r->log) - r->log_used) {
        r->log_used += (size_t)w;
    }
}

static int rig_emit(struct mr_input_host *host, const struct mr_record *recs, size_t n)
{
    struct rig *r = host->arg;
    r->offers++;
    if (r->refuse_every > 0 && r->refusals_left > 0 && r->offers % (size_t)r->refuse_every == 0) {
        r->refusals_left--;
        return MR_EAGAIN;
    }
    for (size_t i = 0; i < n; i++) {
        digest_fn(&recs[i], r->names, &r->digest);
        r->temperatures += strcmp(mr_names_str(r->names, recs[i].signal, NULL), "temperature") == 0;
    }
    r->records += n;
    if (r->stop_after_first) {
        mr_input_sim.input.stop(r->ctx);
    }
    return 0;
}

static void rig_ended(struct mr_input_host *host, int status)
{
    struct rig *r = host->arg;
    r->ended++;
    r->status = status;
    mr_input_sim.input.stop(r->ctx);
}

static void rig_stopped(struct mr_input_host *host)
{
    struct rig *r = host->arg;
    r->stopped++;
}

static void rig_run(struct rig *r, const char *yaml)
{
    struct mr_err err = {0};
    conf_load(&r->conf, yaml);
    r->digest.h = 0xcbf29ce484222325ULL;
    assert_int_equal(mr_names_create(&r->names, 4096, 1 << 20), 0);
    assert_int_equal(mr_metrics_create(&r->metrics), 0);
    assert_int_equal(uv_loop_init(&r->loop), 0);
    mr_log_set_sink(log_sink, r);
    r->host = (struct mr_input_host){.name = "inputs.plant",
                                     .names = r->names,
                                     .metrics = r->metrics,
                                     .loop = &r->loop,
                                     .emit = rig_emit,
                                     .ended = rig_ended,
                                     .stopped = rig_stopped,
                                     .arg = r};
    r->ctx = mr_calloc(1, mr_input_sim.ctx_size);
    assert_non_null(r->ctx);
    int rc = mr_input_sim.input.init(r->ctx, &r->conf, &r->host, &err);
    if (rc != 0) {
        print_message("init: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(mr_input_sim.input.start(r->ctx, &err), 0);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r->stopped, 1);
    mr_input_sim.input.fini(r->ctx);
    mr_free(r->ctx);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    mr_log_set_sink(NULL, NULL);
}

static void rig_destroy(struct rig *r)
{
    mr_metrics_destroy(r->metrics);
    mr_names_destroy(r->names);
    mr_section_free(&mr_input_sim.conf, &r->conf);
}

static void assert_metric(struct rig *r, const char *line)
{
    static char text[1 << 16];
    size_t needed = 0;
    assert_true(mr_metrics_render(r->metrics, text, sizeof(text), &needed) > 0);
    if (strstr(text, line) == NULL) {
        print_message("metrics:\n%s\nmissing: %s\n", text, line);
        fail();
    }
}

static const char loop_yaml[] = "speed: 0\nstart: 2026-01-05T06:00:00Z\nduration: 60s\n";

/* speed 0 for 60 s: 60 temperature readings from each of the 3 default machines, the end
 * reported with status 0, and the plant described in the log. */
static void test_plugin_loop(void **state)
{
    (void)state;
    struct rig r = {0};
    rig_run(&r, loop_yaml);
    assert_int_equal(r.ended, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.temperatures, 180);
    char line[160];
    snprintf(line, sizeof(line),
             "millrace_records_out_total{instance=\"inputs.plant\",plugin=\"sim\"} %zu", r.records);
    assert_metric(&r, line);
    print_message("%s", r.log);
    assert_non_null(strstr(r.log, "[inputs.plant] simulating site plant1: 1 line, 3 machines "
                                  "(line1/press1 line1/weld1 line1/paint1)"));

    /* The same run through back-pressure (every 3rd offer refused, 10 times) and at speed
     * 100 (paced by the timer) delivers exactly the same records. */
    struct rig b = {.refuse_every = 3, .refusals_left = 10};
    rig_run(&b, loop_yaml);
    assert_int_equal(b.status, 0);
    assert_int_equal(b.refusals_left, 0);
    assert_int_equal(b.records, r.records);
    assert_true(b.digest.h == r.digest.h);

    struct rig c = {0};
    rig_run(&c, "speed: 100\nstart: 2026-01-05T06:00:00Z\nduration: 60s\n");
    assert_int_equal(c.status, 0);
    assert_int_equal(c.records, r.records);
    assert_true(c.digest.h == r.digest.h);
    assert_true(c.offers > 10); /* paced: many small batches */
    rig_destroy(&r);
    rig_destroy(&b);
    rig_destroy(&c);
}

/* A run without end stops cleanly when asked to. */
static void test_plugin_stop(void **state)
{
    (void)state;
    struct rig r = {.stop_after_first = true};
    rig_run(&r, "speed: 0\n");
    assert_int_equal(r.ended, 0);
    assert_true(r.records > 0);
    rig_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),   cmocka_unit_test(test_states_and_counts),
        cmocka_unit_test(test_bpfo_formula),  cmocka_unit_test(test_bearing_fault),
        cmocka_unit_test(test_quality_drift), cmocka_unit_test(test_fault_kinds),
        cmocka_unit_test(test_late_samples),  cmocka_unit_test(test_supply),
        cmocka_unit_test(test_config_errors), cmocka_unit_test(test_plugin_loop),
        cmocka_unit_test(test_plugin_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
