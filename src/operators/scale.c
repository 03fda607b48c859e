/* Operator `scale`: linear conversion of numbers, y = x * scale + offset, or a named unit
 * conversion.
 *
 *   steps:
 *     - {type: scale, scale: 0.1, signals: [pressure_raw]}            # raw counts -> bar
 *     - {type: scale, from_unit: degC, to_unit: degF, signals: [temp], unit_tag: unit}
 *
 * Applies to f64 and i64 values (an i64 becomes an f64) and to every sample of a sample block;
 * booleans, text, and signals not listed in `signals` (when given) pass unchanged. Unit
 * conversions are exact linear maps through SI units (temperature, pressure, length, velocity,
 * acceleration, power, energy, volume flow, frequency); the two units must measure the same
 * quantity. `unit_tag: unit` sets the tag `unit` of converted records to `to_unit`.
 *
 * Input records are borrowed read-only, so scaled sample blocks are written into a scratch
 * buffer of this operator (up to 4 blocks of the largest size; emitted before it is reused).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/alloc.h"
#include "operators/op_common.h"

#define SCRATCH_MIN 4096u
#define SCRATCH_MAX (4u * MR_RECORD_MAX_SAMPLES)

extern const struct mr_plugin mr_operator_scale;

/* si = x * factor + add. In long double, so that a conversion's coefficients come out as the
 * nearest doubles (degC to degF: exactly 1.8 and 32). */
struct unit {
    const char *name;
    const char *quantity;
    long double factor;
    long double add;
};

static const struct unit units[] = {
    {"K", "temperature", 1L, 0L},
    {"degC", "temperature", 1L, 273.15L},
    {"degF", "temperature", 5.0L / 9.0L, 273.15L - 32.0L * 5.0L / 9.0L},
    {"Pa", "pressure", 1L, 0L},
    {"kPa", "pressure", 1e3L, 0L},
    {"MPa", "pressure", 1e6L, 0L},
    {"bar", "pressure", 1e5L, 0L},
    {"mbar", "pressure", 1e2L, 0L},
    {"psi", "pressure", 0.45359237L * 9.80665L / (0.0254L * 0.0254L), 0L},
    {"m", "length", 1L, 0L},
    {"mm", "length", 1e-3L, 0L},
    {"um", "length", 1e-6L, 0L},
    {"in", "length", 0.0254L, 0L},
    {"m/s", "velocity", 1L, 0L},
    {"mm/s", "velocity", 1e-3L, 0L},
    {"in/s", "velocity", 0.0254L, 0L},
    {"m/s2", "acceleration", 1L, 0L},
    {"g", "acceleration", 9.80665L, 0L},
    {"W", "power", 1L, 0L},
    {"kW", "power", 1e3L, 0L},
    {"MW", "power", 1e6L, 0L},
    {"hp", "power", 550.0L * 0.3048L * 0.45359237L * 9.80665L, 0L},
    {"J", "energy", 1L, 0L},
    {"kJ", "energy", 1e3L, 0L},
    {"MJ", "energy", 1e6L, 0L},
    {"Wh", "energy", 3600L, 0L},
    {"kWh", "energy", 3.6e6L, 0L},
    {"MWh", "energy", 3.6e9L, 0L},
    {"m3/s", "volume flow", 1L, 0L},
    {"m3/h", "volume flow", 1.0L / 3600.0L, 0L},
    {"l/s", "volume flow", 1e-3L, 0L},
    {"l/min", "volume flow", 1e-3L / 60.0L, 0L},
    {"gal/min", "volume flow", 3.785411784e-3L / 60.0L, 0L},
    {"Hz", "frequency", 1L, 0L},
    {"rpm", "frequency", 1.0L / 60.0L, 0L},
};

struct scale_conf {
    double scale;
    double offset;
    char *from_unit;
    char *to_unit;
    struct mr_strlist signals;
    char *unit_tag;
    bool has_scale;
    bool has_offset;
};

struct scale_ctx {
    struct mr_op_base base;
    const struct scale_conf *conf;
    double a; /* y = x * a + b */
    double b;
    mr_name_id *signals; /* sorted; NULL: every signal */
    size_t nsignals;
    mr_name_id unit_key; /* 0: no unit tag */
    struct mr_bytes unit_value;
    struct mr_op_buf out;
    float *scratch; /* scaled sample blocks of the records in `out` */
    size_t scratch_used;
    size_t scratch_cap;
};

static const struct unit *unit_find(const char *name)
{
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(units[i].name, name) == 0) {
            return &units[i];
        }
    }
    return NULL;
}

/* The linear map from one unit to another, or an error in msg (cap bytes). */
static int unit_map(const char *from, const char *to, double *a, double *b, char *msg, size_t cap)
{
    const struct unit *u1 = unit_find(from);
    const struct unit *u2 = unit_find(to);
    if (u1 == NULL || u2 == NULL) {
        int w = snprintf(msg, cap, "unknown unit '%.32s' (known:", u1 == NULL ? from : to);
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && w > 0 && (size_t)w < cap; i++) {
            w += snprintf(msg + w, cap - (size_t)w, " %s", units[i].name);
        }
        if (w > 0 && (size_t)w < cap) {
            snprintf(msg + w, cap - (size_t)w, ")");
        }
        return MR_ECONFIG;
    }
    if (strcmp(u1->quantity, u2->quantity) != 0) {
        snprintf(msg, cap, "cannot convert %s (%s) to %s (%s)", u1->name, u1->quantity, u2->name,
                 u2->quantity);
        return MR_ECONFIG;
    }
    *a = (double)(u1->factor / u2->factor);
    *b = (double)((u1->add - u2->add) / u2->factor);
    return 0;
}

static void scale_check(void *conf, struct mr_config_check *chk)
{
    const struct scale_conf *c = conf;
    bool linear = c->has_scale || c->has_offset;
    bool named = c->from_unit != NULL || c->to_unit != NULL;
    char msg[256];
    double a;
    double b;
    if (linear && named) {
        mr_config_check_fail(chk, NULL, "use either scale/offset or from_unit/to_unit, not both");
    } else if (!linear && !named) {
        mr_config_check_fail(chk, NULL,
                             "set `scale` and/or `offset`, or `from_unit` and `to_unit`");
    } else if (named && (c->from_unit == NULL || c->to_unit == NULL)) {
        mr_config_check_fail(chk, c->from_unit == NULL ? "to_unit" : "from_unit",
                             "set both from_unit and to_unit");
    } else if (named && unit_map(c->from_unit, c->to_unit, &a, &b, msg, sizeof(msg)) != 0) {
        mr_config_check_fail(chk, unit_find(c->from_unit) == NULL ? "from_unit" : "to_unit", "%s",
                             msg);
    }
    if (c->unit_tag != NULL && c->to_unit == NULL) {
        mr_config_check_fail(chk, "unit_tag", "unit_tag needs to_unit (the unit it records)");
    }
}

static const struct mr_field scale_fields[] = {
    {.name = "scale",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct scale_conf, scale),
     .def = "1",
     .present = MR_FIELD_PRESENT(struct scale_conf, has_scale),
     .help = "Factor each value is multiplied by (y = x * scale + offset)."},
    {.name = "offset",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct scale_conf, offset),
     .def = "0",
     .present = MR_FIELD_PRESENT(struct scale_conf, has_offset),
     .help = "Added after scaling (y = x * scale + offset)."},
    {.name = "from_unit",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct scale_conf, from_unit),
     .help = "Convert from this unit, instead of scale/offset: K, degC, degF, Pa, kPa, MPa, bar, "
             "mbar, psi, m, mm, um, in, m/s, mm/s, in/s, m/s2, g, W, kW, MW, hp, J, kJ, MJ, Wh, "
             "kWh, MWh, m3/s, m3/h, l/s, l/min, gal/min, Hz, rpm."},
    {.name = "to_unit",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct scale_conf, to_unit),
     .help = "Convert to this unit (same quantity as from_unit)."},
    {.name = "signals",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct scale_conf, signals),
     .help = "Signals to convert; when absent, every numeric signal is converted."},
    {.name = "unit_tag",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct scale_conf, unit_tag),
     .help = "Tag set to to_unit on converted records, e.g. `unit`; absent: tags unchanged."},
    {0},
};

static int cmp_id(const void *a, const void *b)
{
    mr_name_id x = *(const mr_name_id *)a;
    mr_name_id y = *(const mr_name_id *)b;
    return x < y ? -1 : x > y;
}

static void scale_fini(void *ctx)
{
    struct scale_ctx *c = ctx;
    mr_free(c->signals);
    mr_free(c->scratch);
    mr_op_buf_fini(&c->out);
    memset(c, 0, sizeof(*c));
}

static int intern_signals(struct scale_ctx *c, const struct scale_conf *cf, struct mr_err *err)
{
    if (cf->signals.n == 0) {
        return 0;
    }
    c->signals = mr_calloc(cf->signals.n, sizeof(mr_name_id));
    if (c->signals == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < cf->signals.n; i++) {
        const char *s = cf->signals.items[i];
        int rc = mr_names_intern(c->base.host->names, s, strlen(s), &c->signals[i]);
        if (rc != 0) {
            return MR_ERR_SET(err, rc, "signals: cannot use '%.60s': %s", s, mr_strerror(rc));
        }
    }
    c->nsignals = cf->signals.n;
    qsort(c->signals, c->nsignals, sizeof(mr_name_id), cmp_id);
    return 0;
}

static int scale_init(void *ctx, const void *conf, struct mr_operator_host *host,
                      struct mr_err *err)
{
    struct scale_ctx *c = ctx;
    const struct scale_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->a = cf->scale;
    c->b = cf->offset;
    char msg[256];
    int rc = mr_op_base_init(&c->base, &mr_operator_scale, host, err);
    if (rc == 0 && cf->from_unit != NULL && cf->to_unit != NULL) {
        rc = unit_map(cf->from_unit, cf->to_unit, &c->a, &c->b, msg, sizeof(msg));
        if (rc != 0) {
            MR_ERR_SET(err, rc, "%s", msg);
        }
    }
    if (rc == 0 && cf->unit_tag != NULL && cf->to_unit != NULL) {
        rc = mr_names_intern(host->names, cf->unit_tag, strlen(cf->unit_tag), &c->unit_key);
        if (rc != 0) {
            MR_ERR_SET(err, rc, "unit_tag: cannot use '%.60s': %s", cf->unit_tag, mr_strerror(rc));
        }
        c->unit_value = (struct mr_bytes){.ptr = cf->to_unit, .len = (uint32_t)strlen(cf->to_unit)};
    }
    if (rc == 0) {
        rc = intern_signals(c, cf, err);
    }
    if (rc == 0 && mr_op_buf_init(&c->out, &c->base, 0) != 0) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    if (rc != 0) {
        scale_fini(c);
    }
    return rc;
}

static bool selected(const struct scale_ctx *c, mr_name_id signal)
{
    return c->signals == NULL ||
           bsearch(&signal, c->signals, c->nsignals, sizeof(mr_name_id), cmp_id) != NULL;
}

/* Room for n scaled samples in the scratch buffer, emitting what borrows from it first when
 * it is full. Returns the place, or NULL with *rc set (0: the block is too large to scale). */
static float *scratch_take(struct scale_ctx *c, size_t n, int *rc)
{
    *rc = 0;
    if (n > SCRATCH_MAX) {
        return NULL;
    }
    if (c->scratch_used + n > c->scratch_cap) {
        *rc = mr_op_buf_flush(&c->out);
        if (*rc != 0) {
            return NULL;
        }
        c->scratch_used = 0;
    }
    if (n > c->scratch_cap) {
        size_t cap = c->scratch_cap * 2 > n ? c->scratch_cap * 2 : n;
        cap = cap < SCRATCH_MIN ? SCRATCH_MIN : cap > SCRATCH_MAX ? SCRATCH_MAX : cap;
        float *grown = mr_realloc(c->scratch, cap * sizeof(float));
        if (grown == NULL) {
            *rc = MR_ENOMEM;
            return NULL;
        }
        c->scratch = grown;
        c->scratch_cap = cap;
    }
    float *p = c->scratch + c->scratch_used;
    c->scratch_used += n;
    return p;
}

/* Set tag key to value on r: replace it, or append it when there is room. */
static bool tag_set(struct mr_record *r, mr_name_id key, struct mr_bytes value)
{
    for (uint16_t i = 0; i < r->ntags; i++) {
        if (r->tags[i].key == key) {
            r->tags[i].value = value;
            return true;
        }
    }
    if (r->ntags >= MR_RECORD_MAX_TAGS) {
        return false;
    }
    r->tags[r->ntags++] = (struct mr_tag){.key = key, .value = value};
    return true;
}

/* Scale r's samples into the scratch buffer (*scaled: whether it was done). */
static int scale_samples(struct scale_ctx *c, struct mr_record *r, bool *scaled)
{
    int rc = 0;
    uint32_t n = r->v.samples.n;
    *scaled = n == 0;
    float *dst = n > 0 ? scratch_take(c, n, &rc) : NULL;
    if (dst == NULL) {
        if (rc == 0 && n > 0) {
            mr_op_warn(&c->base, "sample block of %u samples passed unscaled: too large", n);
        }
        return rc;
    }
    *scaled = true;
    const unsigned char *src = (const unsigned char *)r->v.samples.data;
    for (uint32_t i = 0; i < n; i++) {
        float x;
        memcpy(&x, src + (size_t)i * sizeof(float), sizeof(float));
        dst[i] = (float)((double)x * c->a + c->b);
    }
    r->v.samples.data = dst;
    return 0;
}

static int scale_one(struct scale_ctx *c, const struct mr_record *rec)
{
    bool numeric =
        rec->type == MR_VALUE_F64 || rec->type == MR_VALUE_I64 || rec->type == MR_VALUE_SAMPLES;
    if (!numeric || !selected(c, rec->signal)) {
        return mr_op_buf_push(&c->out, rec);
    }
    if (rec->type == MR_VALUE_SAMPLES) {
        /* Take the scratch before the record is buffered: taking may flush the buffer. */
        struct mr_record tmp;
        bool scaled = false;
        mr_op_record_copy(&tmp, rec);
        int rc = scale_samples(c, &tmp, &scaled);
        if (rc == 0) {
            rc = mr_op_buf_push(&c->out, &tmp);
        }
        if (rc != 0 || !scaled) {
            return rc; /* failed, or passed unscaled (already counted) */
        }
    } else {
        int rc = mr_op_buf_push(&c->out, rec);
        if (rc != 0) {
            return rc;
        }
        struct mr_record *r = &c->out.recs[c->out.n - 1];
        double x = r->type == MR_VALUE_F64 ? r->v.f64 : (double)r->v.i64;
        r->type = MR_VALUE_F64;
        r->v.f64 = x * c->a + c->b;
    }
    struct mr_record *r = &c->out.recs[c->out.n - 1];
    if (c->unit_key != 0 && !tag_set(r, c->unit_key, c->unit_value)) {
        mr_op_warn(&c->base, "no room for the %s tag: the record has %d tags already",
                   c->conf->unit_tag, MR_RECORD_MAX_TAGS);
    }
    return 0;
}

static int scale_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct scale_ctx *c = ctx;
    mr_counter_add(c->base.counters.records_in, n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = scale_one(c, &recs[i]);
    }
    rc = rc == 0 ? mr_op_buf_flush(&c->out) : rc;
    c->out.n = 0;
    c->scratch_used = 0;
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "passing records on failed: %s", mr_strerror(rc));
    }
    return 0;
}

const struct mr_plugin mr_operator_scale = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "scale",
    .help = "Converts numbers linearly (y = x * scale + offset) or between named units (degC to "
            "degF, bar to psi, kW to hp, ...), including every sample of a sample block.",
    .conf = {.fields = scale_fields, .size = sizeof(struct scale_conf), .check = scale_check},
    .ctx_size = sizeof(struct scale_ctx),
    .op = {.init = scale_init, .process = scale_process, .fini = scale_fini},
};
