/* The simulated warehouse: one asset per material (SITE/warehouse/MATERIAL).
 *
 * Inventory falls by the bill-of-materials quantity for every good part of a line's last
 * machine and rises when a shipment arrives; it is reported every supply.interval and on each
 * arrival. Shipments are announced every shipment_every (the first at the start) with a
 * promised arrival (eta = announcement + lead_time) and arrive up to delay_max after it, so a
 * projection that trusts the eta is sometimes wrong, as in life. When a line's last machine
 * cannot cover its next part it goes DOWN with reason material_shortage until a delivery
 * covers it. The bill of materials is emitted once at the start, one record per (line,
 * material). */
#include <stdio.h>
#include <string.h>

#include "inputs/sim_internal.h"
#include "millrace/alloc.h"

static bool product_matches(const struct mr_sim_bom_conf *b, const struct mr_sim_line_conf *l)
{
    return b->product == NULL || strcmp(b->product, l->product) == 0;
}

static int material_index(const struct mr_sim_model *m, const char *name)
{
    for (size_t i = 0; i < m->nmaterials; i++) {
        if (strcmp(m->materials[i].conf->name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int bom_init(struct mr_sim_model *m, struct mr_err *err)
{
    const struct mr_sim_plant *p = &m->plant;
    size_t n = 0;
    for (size_t i = 0; i < p->nbom; i++) {
        for (size_t l = 0; l < p->nlines; l++) {
            n += product_matches(&p->bom[i], &p->lines[l]) ? 1 : 0;
        }
    }
    if (n == 0) {
        return 0;
    }
    m->bom = mr_calloc(n, sizeof(*m->bom));
    if (m->bom == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < p->nbom; i++) {
        int mat = material_index(m, p->bom[i].material);
        if (mat < 0) {
            return MR_ERR_SET(err, MR_ECONFIG, "supply.bom: no material named '%s'",
                              p->bom[i].material);
        }
        for (size_t l = 0; l < p->nlines; l++) {
            if (!product_matches(&p->bom[i], &p->lines[l])) {
                continue;
            }
            struct sim_bom *b = &m->bom[m->nbom++];
            b->line = (uint32_t)l;
            b->material = (uint32_t)mat;
            b->qty = p->bom[i].qty;
            b->product = p->lines[l].product;
            snprintf(b->qty_text, sizeof(b->qty_text), "%.6g", b->qty);
        }
    }
    return 0;
}

int sim_supply_init(struct mr_sim_model *m, struct mr_names *names, struct mr_err *err)
{
    const struct mr_sim_plant *p = &m->plant;
    if (p->nmaterials == 0) {
        return 0;
    }
    m->materials = mr_calloc(p->nmaterials, sizeof(*m->materials));
    if (m->materials == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    m->nmaterials = p->nmaterials;
    for (size_t i = 0; i < m->nmaterials; i++) {
        struct sim_material *mat = &m->materials[i];
        mat->conf = &p->materials[i];
        int w = snprintf(mat->path, sizeof(mat->path), "%s/warehouse/%s", m->conf->site,
                         mat->conf->name);
        if (w < 0 || (size_t)w >= sizeof(mat->path)) {
            return MR_ERR_SET(err, MR_ETOOBIG, "asset path of material %s is too long",
                              mat->conf->name);
        }
        int rc = mr_names_intern(names, mat->path, (size_t)w, &mat->asset);
        if (rc != 0) {
            return MR_ERR_SET(err, rc, "cannot intern %s: %s", mat->path, mr_strerror(rc));
        }
        sim_rng_seed(&mat->rng, (uint64_t)m->conf->seed, 1000000 + i, 0);
        mat->level = mat->conf->initial;
        mat->report_next = m->start_ns;
        mat->announce_next = m->start_ns;
    }
    return bom_init(m, err);
}

static int64_t material_next(const struct sim_material *mat)
{
    int64_t t = mat->report_next < mat->announce_next ? mat->report_next : mat->announce_next;
    if (mat->npending > 0 && mat->pending[0].arrive < t) {
        t = mat->pending[0].arrive;
    }
    return t;
}

int64_t sim_supply_next(const struct mr_sim_model *m, size_t *which)
{
    int64_t best = SIM_NEVER;
    for (size_t i = 0; i < m->nmaterials; i++) {
        int64_t t = material_next(&m->materials[i]);
        if (t < best) {
            best = t;
            *which = i;
        }
    }
    return best;
}

static void tag_number(struct mr_sim_model *m, struct mr_record *r, int tag, double v)
{
    char buf[32];
    int w = snprintf(buf, sizeof(buf), "%.6g", v);
    sim_rec_tag(m, r, tag, sim_batch_text(m, buf, (size_t)w), (size_t)w);
}

static void emit_inventory(struct mr_sim_model *m, struct sim_material *mat, int64_t t)
{
    struct mr_record *r = sim_batch_add(m, t, mat->asset, SIG_INVENTORY);
    r->v.f64 = mat->level;
    sim_rec_tag(m, r, TAG_UNIT, mat->conf->unit, strlen(mat->conf->unit));
}

static void emit_shipment(struct mr_sim_model *m, struct sim_material *mat, int64_t t,
                          const char *what, double qty, int64_t eta)
{
    struct mr_record *r = sim_batch_add(m, t, mat->asset, SIG_SHIPMENT);
    r->type = MR_VALUE_STRING;
    r->v.str = (struct mr_bytes){.ptr = what, .len = (uint32_t)strlen(what)};
    tag_number(m, r, TAG_QTY, qty);
    sim_rec_tag(m, r, TAG_UNIT, mat->conf->unit, strlen(mat->conf->unit));
    if (eta != 0) {
        char buf[40];
        size_t len = mr_time_format_rfc3339(eta, buf, sizeof(buf));
        sim_rec_tag(m, r, TAG_ETA, sim_batch_text(m, buf, len), len);
    }
}

static void announce(struct mr_sim_model *m, struct sim_material *mat, int64_t t)
{
    const struct mr_sim_material_conf *c = mat->conf;
    mat->announce_next += c->shipment_every_ns;
    if (mat->npending == SIM_MAX_PENDING) {
        return; /* lead time far longer than the interval: the trucks queue up at the supplier */
    }
    int64_t eta = t + c->lead_time_ns;
    int64_t arrive = eta + (int64_t)(sim_rng_uniform(&mat->rng) * (double)c->delay_max_ns);
    size_t at = mat->npending;
    while (at > 0 && mat->pending[at - 1].arrive > arrive) {
        mat->pending[at] = mat->pending[at - 1];
        at--;
    }
    mat->pending[at] = (struct sim_shipment){.arrive = arrive, .qty = c->shipment_qty};
    mat->npending++;
    emit_shipment(m, mat, t, "inbound", c->shipment_qty, eta);
}

void sim_supply_step(struct mr_sim_model *m, size_t which, int64_t t)
{
    struct sim_material *mat = &m->materials[which];
    if (mat->npending > 0 && mat->pending[0].arrive == t) {
        double qty = mat->pending[0].qty;
        memmove(&mat->pending[0], &mat->pending[1], (mat->npending - 1) * sizeof(mat->pending[0]));
        mat->npending--;
        mat->level += qty;
        emit_shipment(m, mat, t, "arrived", qty, 0);
        emit_inventory(m, mat, t);
        sim_machines_wake(m, t);
    } else if (mat->report_next == t) {
        emit_inventory(m, mat, t);
        mat->report_next += m->conf->supply.interval_ns;
    } else {
        announce(m, mat, t);
    }
}

bool sim_supply_available(const struct mr_sim_model *m, uint32_t line)
{
    for (size_t i = 0; i < m->nbom; i++) {
        const struct sim_bom *b = &m->bom[i];
        if (b->line == line && m->materials[b->material].level < b->qty) {
            return false;
        }
    }
    return true;
}

void sim_supply_consume(struct mr_sim_model *m, uint32_t line)
{
    for (size_t i = 0; i < m->nbom; i++) {
        const struct sim_bom *b = &m->bom[i];
        if (b->line == line) {
            struct sim_material *mat = &m->materials[b->material];
            mat->level = mat->level > b->qty ? mat->level - b->qty : 0.0;
        }
    }
}
