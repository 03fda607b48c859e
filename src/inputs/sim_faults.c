/* Sensor and network faults injected into a machine's records as they leave the model.
 *
 * A fault covers records whose (true) time is in [start + at, start + at + duration), of one
 * machine, and of one signal or all. Several faults may overlap; they apply in the order they
 * are declared:
 *   dropout  the record is removed;
 *   stuck    the value is replaced by the first value the fault saw for that signal (a sample
 *            block becomes constant at its first sample);
 *   skew     `skew` is added to the timestamp (a controller with a wrong clock);
 *   late     the record is held back and released `delay` after its time, as an event of the
 *            model, so it reaches the pipeline after newer records (out of order). What is
 *            still held at the end of a run is delivered before the input ends.
 * A late fault's store is bounded (MAX_HELD records, MAX_HELD_SAMPLES samples); a record that
 * does not fit is delivered on time and counted (mr_sim_model_overflows): nothing is lost. */
#include <string.h>

#include "inputs/sim_internal.h"
#include "millrace/alloc.h"

#define MAX_HELD         65536u
#define MAX_HELD_SAMPLES (8u * 1024u * 1024u)
#define MAX_HELD_TEXT    (4u * 1024u * 1024u)
#define MAX_TEXT_PER_REC 200u

int sim_faults_init(struct mr_sim_model *m, struct mr_err *err)
{
    const struct mr_conf_list *list = &m->conf->faults;
    if (list->n == 0) {
        return 0;
    }
    m->faults = mr_calloc(list->n, sizeof(*m->faults));
    if (m->faults == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    m->nfaults = list->n;
    for (size_t i = 0; i < list->n; i++) {
        const struct mr_sim_fault_conf *fc = (const struct mr_sim_fault_conf *)list->items + i;
        struct sim_fault *f = &m->faults[i];
        int idx = mr_sim_plant_find_machine(&m->plant, fc->machine);
        if (idx < 0) {
            return MR_ERR_SET(err, MR_ECONFIG, "faults[%zu].machine: no single machine named '%s'",
                              i, fc->machine);
        }
        f->machine = (uint32_t)idx;
        f->signal = -1;
        for (int s = 0; fc->signal != NULL && s < SIG_MACHINE_COUNT; s++) {
            if (strcmp(fc->signal, sim_signal_names[s]) == 0) {
                f->signal = s;
            }
        }
        if (fc->signal != NULL && f->signal < 0) {
            return MR_ERR_SET(err, MR_ECONFIG, "faults[%zu].signal: no machine signal '%s'", i,
                              fc->signal);
        }
        int rc = mr_sim_signed_duration_parse(fc->skew, &f->skew, err);
        if (rc != 0) {
            return rc;
        }
        f->kind = fc->kind;
        f->from = m->start_ns + fc->at_ns;
        f->to = f->from + fc->duration_ns;
        f->delay = fc->delay_ns;
    }
    return 0;
}

void sim_faults_fini(struct mr_sim_model *m)
{
    for (size_t i = 0; i < m->nfaults; i++) {
        mr_free(m->faults[i].held);
        mr_free(m->faults[i].samples);
        mr_free(m->faults[i].text);
    }
    mr_free(m->faults);
    m->faults = NULL;
    m->nfaults = 0;
}

static int signal_of(const struct mr_sim_model *m, mr_name_id id)
{
    for (int s = 0; s < SIG_MACHINE_COUNT; s++) {
        if (m->sig[s] == id) {
            return s;
        }
    }
    return -1;
}

static void freeze(struct mr_sim_model *m, struct sim_frozen *fz, struct mr_record *r)
{
    switch (r->type) {
    case MR_VALUE_F64:
        fz->f64 = fz->set ? fz->f64 : r->v.f64;
        r->v.f64 = fz->f64;
        break;
    case MR_VALUE_I64:
        fz->i64 = fz->set ? fz->i64 : r->v.i64;
        r->v.i64 = fz->i64;
        break;
    case MR_VALUE_STRING:
        if (!fz->set) {
            fz->len = r->v.str.len < sizeof(fz->str) ? r->v.str.len : (uint32_t)sizeof(fz->str);
            memcpy(fz->str, r->v.str.ptr, fz->len);
        }
        r->v.str = (struct mr_bytes){.ptr = fz->str, .len = fz->len};
        break;
    case MR_VALUE_SAMPLES: {
        /* The block lives in our batch: write through our own pointer to it. */
        float *d = m->batch.samples + (r->v.samples.data - m->batch.samples);
        fz->sample = fz->set ? fz->sample : d[0];
        for (uint32_t i = 0; i < r->v.samples.n; i++) {
            d[i] = fz->sample;
        }
        break;
    }
    default:
        break;
    }
    fz->set = true;
}

/* buf grown to hold `need` elements of `size` bytes (doubling, never past `max`): buf itself
 * when it is large enough, a new block, or NULL (buf untouched) when it cannot grow. */
static void *reserve(void *buf, size_t *cap, size_t need, size_t size, size_t max)
{
    if (need <= *cap) {
        return buf;
    }
    if (need > max) {
        return NULL;
    }
    size_t n = *cap > 0 ? *cap : 64;
    while (n < need) {
        n *= 2;
    }
    n = n < max ? n : max;
    void *p = mr_realloc(buf, n * size);
    if (p != NULL) {
        *cap = n;
    }
    return p;
}

static size_t text_len(const struct mr_record *r)
{
    size_t n = r->type == MR_VALUE_STRING ? r->v.str.len : 0;
    for (uint16_t i = 0; i < r->ntags; i++) {
        n += r->tags[i].value.len;
    }
    return n;
}

static size_t keep_text(struct sim_fault *f, const char *s, size_t len)
{
    size_t off = f->ntext;
    memcpy(f->text + off, s, len);
    f->ntext += len;
    return off;
}

/* Copy r into the fault's store; false when it does not fit. */
static bool hold(struct sim_fault *f, const struct mr_record *r, int64_t release)
{
    if (f->head == f->nheld) {
        f->head = f->nheld = f->nsamples = f->ntext = 0; /* empty: start over */
    }
    size_t ns = r->type == MR_VALUE_SAMPLES ? r->v.samples.n : 0;
    size_t nt = text_len(r);
    if (nt > MAX_TEXT_PER_REC) {
        return false;
    }
    void *p = reserve(f->held, &f->cap_held, f->nheld + 1, sizeof(*f->held), MAX_HELD);
    if (p == NULL) {
        return false;
    }
    f->held = p;
    p = reserve(f->samples, &f->cap_samples, f->nsamples + ns + 1, sizeof(float), MAX_HELD_SAMPLES);
    if (p == NULL) {
        return false;
    }
    f->samples = p;
    p = reserve(f->text, &f->cap_text, f->ntext + nt + 1, 1, MAX_HELD_TEXT);
    if (p == NULL) {
        return false;
    }
    f->text = p;
    struct sim_held *h = &f->held[f->nheld++];
    h->release = release;
    h->rec = *r;
    if (ns > 0) {
        h->sample_off = f->nsamples;
        memcpy(f->samples + f->nsamples, r->v.samples.data, ns * sizeof(float));
        f->nsamples += ns;
    }
    if (r->type == MR_VALUE_STRING) {
        h->str_off = keep_text(f, r->v.str.ptr, r->v.str.len);
    }
    for (uint16_t i = 0; i < r->ntags; i++) {
        h->tag_off[i] = keep_text(f, r->tags[i].value.ptr, r->tags[i].value.len);
    }
    return true;
}

/* Apply every fault covering r (of signal sig); false when r leaves the batch. */
static bool apply_one(struct mr_sim_model *m, uint32_t machine, struct mr_record *r, int sig)
{
    int64_t t = r->time_ns;
    for (size_t i = 0; i < m->nfaults; i++) {
        struct sim_fault *f = &m->faults[i];
        if (f->machine != machine || t < f->from || t >= f->to ||
            (f->signal >= 0 && f->signal != sig)) {
            continue;
        }
        switch (f->kind) {
        case MR_SIM_FAULT_DROPOUT:
            return false;
        case MR_SIM_FAULT_STUCK:
            freeze(m, &f->frozen[sig], r);
            break;
        case MR_SIM_FAULT_SKEW:
            r->time_ns += f->skew;
            break;
        default:
            if (hold(f, r, t + f->delay)) {
                return false;
            }
            m->overflows++;
            break;
        }
    }
    return true;
}

void sim_faults_apply(struct mr_sim_model *m, uint32_t machine, size_t first)
{
    struct sim_batch *b = &m->batch;
    size_t w = first;
    for (size_t i = first; i < b->n; i++) {
        int sig = signal_of(m, b->recs[i].signal);
        if (sig < 0 || apply_one(m, machine, &b->recs[i], sig)) {
            if (w != i) {
                b->recs[w] = b->recs[i];
            }
            w++;
        }
    }
    b->n = w;
}

int64_t sim_faults_next(const struct mr_sim_model *m, size_t *which)
{
    int64_t best = SIM_NEVER;
    for (size_t i = 0; i < m->nfaults; i++) {
        const struct sim_fault *f = &m->faults[i];
        if (f->head < f->nheld && f->held[f->head].release < best) {
            best = f->held[f->head].release;
            *which = i;
        }
    }
    return best;
}

void sim_faults_release(struct mr_sim_model *m, size_t which)
{
    struct sim_fault *f = &m->faults[which];
    struct sim_held *h = &f->held[f->head++];
    struct mr_record *r = &m->batch.recs[m->batch.n++];
    *r = h->rec;
    if (r->type == MR_VALUE_SAMPLES) {
        float *d = m->batch.samples + m->batch.nsamples;
        memcpy(d, f->samples + h->sample_off, r->v.samples.n * sizeof(float));
        m->batch.nsamples += r->v.samples.n;
        r->v.samples.data = d;
    }
    if (r->type == MR_VALUE_STRING) {
        r->v.str.ptr = sim_batch_text(m, f->text + h->str_off, r->v.str.len);
    }
    for (uint16_t i = 0; i < r->ntags; i++) {
        r->tags[i].value.ptr = sim_batch_text(m, f->text + h->tag_off[i], r->tags[i].value.len);
    }
}
