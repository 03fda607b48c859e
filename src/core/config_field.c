/* Config values: text -> typed value for every field type, bounds, "did you mean" hints and the
 * self-check of field tables. Defaults and bounds are text too and go through the same parsers,
 * so a table cannot declare a default its own users could not write. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config_internal.h"
#include "millrace/alloc.h"

/* Longest slice of user text echoed back in a message. */
#define ECHO_LEN 60

union value {
    bool b;
    int64_t i;
    double d;
    uint64_t u;
    int e;
};

struct unit {
    const char *name;
    uint64_t mult;
};

static const struct unit duration_units[] = {
    {.name = "ns", .mult = 1},
    {.name = "us", .mult = 1000},
    {.name = "\xc2\xb5s", .mult = 1000}, /* µs */
    {.name = "ms", .mult = 1000000},
    {.name = "s", .mult = 1000000000},
    {.name = "m", .mult = 60ull * 1000000000},
    {.name = "h", .mult = 3600ull * 1000000000},
    {.name = "d", .mult = 86400ull * 1000000000},
};

static const struct unit size_units[] = {
    {.name = "", .mult = 1},
    {.name = "B", .mult = 1},
    {.name = "KB", .mult = 1000},
    {.name = "MB", .mult = 1000000},
    {.name = "GB", .mult = 1000000000},
    {.name = "TB", .mult = 1000000000000},
    {.name = "KiB", .mult = 1ull << 10},
    {.name = "MiB", .mult = 1ull << 20},
    {.name = "GiB", .mult = 1ull << 30},
    {.name = "TiB", .mult = 1ull << 40},
};

/* A decimal number "123" or "1.25": integer part and up to 9 fraction digits (further digits
 * are below any unit's resolution and are dropped). */
struct decimal {
    uint64_t ip;
    uint64_t frac;
    uint64_t scale; /* 10^(fraction digits kept) */
};

/* Parses a decimal at *pp, advancing it. Returns 0, MR_EINVAL (no digits) or MR_ERANGE. */
static int decimal_parse(const char **pp, struct decimal *d)
{
    const char *p = *pp;
    bool digits = false;
    d->ip = 0;
    d->frac = 0;
    d->scale = 1;
    while (isdigit((unsigned char)*p)) {
        unsigned digit = (unsigned)(*p - '0');
        if (d->ip > (UINT64_MAX - digit) / 10) {
            return MR_ERANGE;
        }
        d->ip = d->ip * 10 + digit;
        digits = true;
        p++;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (d->scale < 1000000000) {
                d->frac = d->frac * 10 + (uint64_t)(*p - '0');
                d->scale *= 10;
            }
            digits = true;
            p++;
        }
    }
    if (!digits) {
        return MR_EINVAL;
    }
    *pp = p;
    return 0;
}

/* d * mult, exactly (floor), or MR_ERANGE above limit. */
static int decimal_scale(const struct decimal *d, uint64_t mult, uint64_t limit, uint64_t *out)
{
    if (mult != 0 && d->ip > limit / mult) {
        return MR_ERANGE;
    }
    uint64_t whole = d->ip * mult;
    /* frac/scale * mult split so nothing overflows: frac < scale <= 1e9. */
    uint64_t part = d->frac * (mult / d->scale) + d->frac * (mult % d->scale) / d->scale;
    if (part > limit - whole) {
        return MR_ERANGE;
    }
    *out = whole + part;
    return 0;
}

static const struct unit *unit_find(const struct unit *units, size_t n, const char *s, size_t len,
                                    bool nocase)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(units[i].name) != len) {
            continue;
        }
        if (nocase ? strncasecmp(units[i].name, s, len) == 0
                   : strncmp(units[i].name, s, len) == 0) {
            return &units[i];
        }
    }
    return NULL;
}

int mr_duration_parse(const char *s, int64_t *ns, struct mr_err *err)
{
    const char *p = s;
    uint64_t total = 0;
    if (*p == '\0') {
        return MR_ERR_SET(err, MR_EINVAL, "expected a duration such as 250ms, 5m or 1h30m");
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*p == '-') {
        return MR_ERR_SET(err, MR_EINVAL, "a duration cannot be negative, got '%.*s'", ECHO_LEN, s);
    }
    while (*p != '\0') {
        struct decimal d;
        int rc = decimal_parse(&p, &d);
        if (rc == MR_ERANGE) {
            return MR_ERR_SET(err, MR_ERANGE, "duration '%.*s' is too large", ECHO_LEN, s);
        }
        if (rc != 0) {
            return MR_ERR_SET(err, MR_EINVAL,
                              "expected a duration such as 250ms, 5m or 1h30m, got '%.*s'",
                              ECHO_LEN, s);
        }
        const char *u = p;
        while (isalpha((unsigned char)*p) || (unsigned char)*p >= 0x80) {
            p++;
        }
        if (p == u) {
            return MR_ERR_SET(err, MR_EINVAL,
                              "duration '%.*s' needs a unit: write e.g. '%.*ss' or '%.*sms' "
                              "(units: ns, us, ms, s, m, h, d)",
                              ECHO_LEN, s, ECHO_LEN, s, ECHO_LEN, s);
        }
        const struct unit *unit =
            unit_find(duration_units, sizeof(duration_units) / sizeof(duration_units[0]), u,
                      (size_t)(p - u), false);
        if (unit == NULL) {
            return MR_ERR_SET(err, MR_EINVAL,
                              "unknown unit '%.*s' in duration '%.*s' (units: ns, us, ms, s, m, "
                              "h, d)",
                              (int)(p - u > 16 ? 16 : p - u), u, ECHO_LEN, s);
        }
        uint64_t part;
        if (decimal_scale(&d, unit->mult, (uint64_t)INT64_MAX, &part) != 0 ||
            part > (uint64_t)INT64_MAX - total) {
            return MR_ERR_SET(err, MR_ERANGE, "duration '%.*s' is too large (max about 292 years)",
                              ECHO_LEN, s);
        }
        total += part;
    }
    *ns = (int64_t)total;
    return 0;
}

int mr_size_parse(const char *s, uint64_t *bytes, struct mr_err *err)
{
    const char *p = s;
    struct decimal d;
    if (*p == '-') {
        return MR_ERR_SET(err, MR_EINVAL, "a size cannot be negative, got '%.*s'", ECHO_LEN, s);
    }
    int rc = decimal_parse(&p, &d);
    if (rc == MR_ERANGE) {
        return MR_ERR_SET(err, MR_ERANGE, "size '%.*s' is too large", ECHO_LEN, s);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, MR_EINVAL,
                          "expected a size such as 4096, 512KiB, 64MiB or 1GB, "
                          "got '%.*s'",
                          ECHO_LEN, s);
    }
    if (*p == ' ') {
        p++;
    }
    const struct unit *unit =
        unit_find(size_units, sizeof(size_units) / sizeof(size_units[0]), p, strlen(p), true);
    if (unit == NULL) {
        return MR_ERR_SET(err, MR_EINVAL,
                          "unknown unit in size '%.*s' (units: B, KB, MB, GB, TB, KiB, MiB, GiB, "
                          "TiB)",
                          ECHO_LEN, s);
    }
    uint64_t v;
    if (decimal_scale(&d, unit->mult, UINT64_MAX, &v) != 0) {
        return MR_ERR_SET(err, MR_ERANGE, "size '%.*s' is too large", ECHO_LEN, s);
    }
    *bytes = v;
    return 0;
}

static int bool_parse(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return MR_EINVAL;
}

/* Decimal, or hexadecimal with 0x (register addresses). Octal is never guessed from a 0. */
static int int_parse(const char *s, int64_t *out)
{
    const char *p = s;
    int base = 10;
    bool neg = *p == '-';
    if (*p == '-' || *p == '+') {
        p++;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    if (!isxdigit((unsigned char)*p)) {
        return MR_EINVAL;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p, &end, base);
    if (*end != '\0') {
        return MR_EINVAL;
    }
    if (errno == ERANGE || v > (unsigned long long)INT64_MAX + (neg ? 1u : 0u)) {
        return MR_ERANGE;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int double_parse(const char *s, double *out)
{
    char *end;
    if (*s == '\0' || isspace((unsigned char)*s)) {
        return MR_EINVAL;
    }
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0' || !isfinite(v)) {
        return MR_EINVAL;
    }
    if (errno == ERANGE && fabs(v) > 1.0) {
        return MR_ERANGE;
    }
    *out = v;
    return 0;
}

static size_t enum_count(const struct mr_field *f)
{
    size_t n = 0;
    while (f->values != NULL && f->values[n] != NULL) {
        n++;
    }
    return n;
}

/* "a, b, c" into out. */
static void enum_list(const struct mr_field *f, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; f->values != NULL && f->values[i] != NULL && used < cap; i++) {
        int w = snprintf(out + used, cap - used, "%s%s", i > 0 ? ", " : "", f->values[i]);
        if (w < 0) {
            break;
        }
        used += (size_t)w;
    }
}

/* Parse without bounds. */
static int value_parse(const struct mr_field *f, const char *s, union value *v, struct mr_err *err)
{
    int rc;
    switch (f->type) {
    case MR_FIELD_BOOL:
        if (bool_parse(s, &v->b) != 0) {
            return MR_ERR_SET(err, MR_EINVAL, "expected true or false, got '%.*s'", ECHO_LEN, s);
        }
        return 0;
    case MR_FIELD_INT:
        rc = int_parse(s, &v->i);
        if (rc == MR_ERANGE) {
            return MR_ERR_SET(err, MR_ERANGE, "integer '%.*s' is too large", ECHO_LEN, s);
        }
        if (rc != 0) {
            return MR_ERR_SET(err, MR_EINVAL, "expected an integer, got '%.*s'", ECHO_LEN, s);
        }
        return 0;
    case MR_FIELD_DOUBLE:
        rc = double_parse(s, &v->d);
        if (rc != 0) {
            return MR_ERR_SET(err, rc, "expected a number, got '%.*s'", ECHO_LEN, s);
        }
        return 0;
    case MR_FIELD_DURATION:
        return mr_duration_parse(s, &v->i, err);
    case MR_FIELD_SIZE:
        return mr_size_parse(s, &v->u, err);
    case MR_FIELD_ENUM: {
        size_t n = enum_count(f);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(s, f->values[i]) == 0) {
                v->e = (int)i;
                return 0;
            }
        }
        char list[160];
        enum_list(f, list, sizeof(list));
        const char *hint = cfg_suggest(s, f->values, n);
        if (hint != NULL) {
            return MR_ERR_SET(err, MR_EINVAL,
                              "expected one of: %s; got '%.*s' (did you mean '%s'?)", list,
                              ECHO_LEN, s, hint);
        }
        return MR_ERR_SET(err, MR_EINVAL, "expected one of: %s; got '%.*s'", list, ECHO_LEN, s);
    }
    default:
        return MR_ERR_SET(err, MR_EINVAL, "expected a %s", cfg_field_type_name(f->type));
    }
}

/* <0, 0, >0 like strcmp, for two parsed values of the field's type. */
static int value_cmp(enum mr_field_type t, const union value *a, const union value *b)
{
    switch (t) {
    case MR_FIELD_INT:
    case MR_FIELD_DURATION:
        return a->i < b->i ? -1 : a->i > b->i;
    case MR_FIELD_SIZE:
        return a->u < b->u ? -1 : a->u > b->u;
    case MR_FIELD_DOUBLE:
        return a->d < b->d ? -1 : a->d > b->d;
    default:
        return 0;
    }
}

static bool has_bounds(enum mr_field_type t)
{
    return t == MR_FIELD_INT || t == MR_FIELD_DOUBLE || t == MR_FIELD_DURATION ||
           t == MR_FIELD_SIZE;
}

static int bounds_check(const struct mr_field *f, const char *s, const union value *v,
                        struct mr_err *err)
{
    union value lo;
    union value hi;
    bool below = false;
    bool above = false;
    if (f->min != NULL) {
        int rc = value_parse(f, f->min, &lo, err);
        if (rc != 0) {
            return rc;
        }
        below = value_cmp(f->type, v, &lo) < 0;
    }
    if (f->max != NULL) {
        int rc = value_parse(f, f->max, &hi, err);
        if (rc != 0) {
            return rc;
        }
        above = value_cmp(f->type, v, &hi) > 0;
    }
    if (!below && !above) {
        return 0;
    }
    if (f->min != NULL && f->max != NULL) {
        return MR_ERR_SET(err, MR_ERANGE, "%.*s is out of range: must be between %s and %s",
                          ECHO_LEN, s, f->min, f->max);
    }
    if (below) {
        return MR_ERR_SET(err, MR_ERANGE, "%.*s is too small: must be at least %s", ECHO_LEN, s,
                          f->min);
    }
    return MR_ERR_SET(err, MR_ERANGE, "%.*s is too large: must be at most %s", ECHO_LEN, s, f->max);
}

int cfg_scalar_parse(const struct mr_field *f, const char *text, void *dst, struct mr_err *err)
{
    union value v;
    if (f->type == MR_FIELD_STRING) {
        char *copy = mr_strdup(text);
        if (copy == NULL) {
            return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        }
        *(char **)dst = copy;
        return 0;
    }
    int rc = value_parse(f, text, &v, err);
    if (rc == 0 && has_bounds(f->type)) {
        rc = bounds_check(f, text, &v, err);
    }
    if (rc != 0) {
        return rc;
    }
    switch (f->type) {
    case MR_FIELD_BOOL:
        *(bool *)dst = v.b;
        break;
    case MR_FIELD_INT:
    case MR_FIELD_DURATION:
        *(int64_t *)dst = v.i;
        break;
    case MR_FIELD_DOUBLE:
        *(double *)dst = v.d;
        break;
    case MR_FIELD_SIZE:
        *(uint64_t *)dst = v.u;
        break;
    case MR_FIELD_ENUM:
        *(int *)dst = v.e;
        break;
    default:
        return MR_ERR_SET(err, MR_EINVAL, "not a scalar field");
    }
    return 0;
}

int cfg_count_parse(const char *text, size_t *out)
{
    int64_t v = 0;
    if (text != NULL && (int_parse(text, &v) != 0 || v < 0)) {
        return MR_EINVAL;
    }
    *out = (size_t)v;
    return 0;
}

bool cfg_field_is_scalar(enum mr_field_type t)
{
    return t >= MR_FIELD_BOOL && t <= MR_FIELD_ENUM;
}

const char *cfg_field_type_name(enum mr_field_type t)
{
    switch (t) {
    case MR_FIELD_BOOL:
        return "bool";
    case MR_FIELD_INT:
        return "integer";
    case MR_FIELD_DOUBLE:
        return "number";
    case MR_FIELD_STRING:
        return "string";
    case MR_FIELD_DURATION:
        return "duration";
    case MR_FIELD_SIZE:
        return "size";
    case MR_FIELD_ENUM:
        return "enum";
    case MR_FIELD_STRING_LIST:
        return "list of strings";
    case MR_FIELD_STRING_MAP:
        return "map of strings";
    case MR_FIELD_SECTION:
        return "section";
    case MR_FIELD_SECTION_LIST:
        return "list of sections";
    case MR_FIELD_SECTION_MAP:
        return "map of sections";
    case MR_FIELD_PLUGIN_MAP:
        return "map of plugin instances";
    case MR_FIELD_PLUGIN_LIST:
        return "list of plugin instances";
    }
    return "unknown";
}

/* Levenshtein distance, capped: returns a value > 2 early for long or very different words. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAXW = 64 };
    size_t la = strlen(a);
    size_t lb = strlen(b);
    size_t row[MAXW + 1];
    if (la > MAXW || lb > MAXW) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *cfg_suggest(const char *key, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3;
    size_t klen = strlen(key);
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(key, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    if (best != NULL || klen < 3) {
        return best;
    }
    /* "ret" -> "retention_age", "segment_bytes_max" -> "segment_bytes". */
    for (size_t i = 0; i < n; i++) {
        size_t clen = strlen(cands[i]);
        if (strncmp(key, cands[i], klen < clen ? klen : clen) == 0) {
            return cands[i];
        }
    }
    return NULL;
}

/* ---- self-check of tables ---- */

static size_t storage_size(const struct mr_field *f)
{
    switch (f->type) {
    case MR_FIELD_BOOL:
        return sizeof(bool);
    case MR_FIELD_INT:
    case MR_FIELD_DURATION:
        return sizeof(int64_t);
    case MR_FIELD_DOUBLE:
        return sizeof(double);
    case MR_FIELD_SIZE:
        return sizeof(uint64_t);
    case MR_FIELD_ENUM:
        return sizeof(int);
    case MR_FIELD_STRING:
        return sizeof(char *);
    case MR_FIELD_STRING_LIST:
        return sizeof(struct mr_strlist);
    case MR_FIELD_STRING_MAP:
        return sizeof(struct mr_strmap);
    case MR_FIELD_SECTION:
        return f->section != NULL ? f->section->size : 0;
    case MR_FIELD_SECTION_LIST:
        return sizeof(struct mr_conf_list);
    case MR_FIELD_SECTION_MAP:
        return sizeof(struct mr_conf_map);
    case MR_FIELD_PLUGIN_MAP:
    case MR_FIELD_PLUGIN_LIST:
        return sizeof(struct mr_plugin_confs);
    }
    return 0;
}

static bool is_list(enum mr_field_type t)
{
    return t == MR_FIELD_STRING_LIST || t == MR_FIELD_SECTION_LIST || t == MR_FIELD_PLUGIN_LIST;
}

static int field_validate(const struct mr_section *sec, const struct mr_field *f, const char *path,
                          struct mr_err *err)
{
    union value v;
    struct mr_err inner;
    size_t count;
    char fpath[CFG_PATH_LEN];
    snprintf(fpath, sizeof(fpath), "%s%s%s", path, path[0] != '\0' ? "." : "", f->name);
    if (f->help == NULL || f->help[0] == '\0') {
        return MR_ERR_SET(err, MR_EINVAL, "%s: no help text", fpath);
    }
    if (storage_size(f) == 0 || f->offset + storage_size(f) > sec->size) {
        return MR_ERR_SET(err, MR_EINVAL, "%s: offset outside the struct", fpath);
    }
    if (f->present != 0 && f->present - 1 + sizeof(bool) > sec->size) {
        return MR_ERR_SET(err, MR_EINVAL, "%s: presence flag outside the struct", fpath);
    }
    if (f->type == MR_FIELD_ENUM && enum_count(f) == 0) {
        return MR_ERR_SET(err, MR_EINVAL, "%s: enum without values", fpath);
    }
    if (cfg_field_is_scalar(f->type) && f->type != MR_FIELD_STRING) {
        const char *texts[] = {f->def, f->min, f->max};
        for (size_t i = 0; i < 3; i++) {
            if (texts[i] != NULL && value_parse(f, texts[i], &v, &inner) != 0) {
                return MR_ERR_SET(err, MR_EINVAL, "%s: '%s' does not parse: %s", fpath, texts[i],
                                  inner.msg);
            }
        }
        if (f->def != NULL && has_bounds(f->type) &&
            (value_parse(f, f->def, &v, &inner) != 0 || bounds_check(f, f->def, &v, &inner) != 0)) {
            return MR_ERR_SET(err, MR_EINVAL, "%s: default %s", fpath, inner.msg);
        }
    } else if (is_list(f->type)) {
        if (cfg_count_parse(f->min, &count) != 0 || cfg_count_parse(f->max, &count) != 0) {
            return MR_ERR_SET(err, MR_EINVAL, "%s: bad item count bound", fpath);
        }
    }
    if ((f->type == MR_FIELD_SECTION || f->type == MR_FIELD_SECTION_LIST ||
         f->type == MR_FIELD_SECTION_MAP) &&
        f->section == NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "%s: section missing", fpath);
    }
    if ((f->type == MR_FIELD_PLUGIN_MAP || f->type == MR_FIELD_PLUGIN_LIST) &&
        f->plugin_kind == 0) {
        return MR_ERR_SET(err, MR_EINVAL, "%s: plugin kind missing", fpath);
    }
    return 0;
}

int mr_section_validate(const struct mr_section *sec, const char *path, struct mr_err *err)
{
    if (sec->fields == NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "%s: no field table", path);
    }
    for (const struct mr_field *f = sec->fields; f->name != NULL; f++) {
        for (const struct mr_field *g = sec->fields; g != f; g++) {
            if (strcmp(f->name, g->name) == 0) {
                return MR_ERR_SET(err, MR_EINVAL, "%s%s%s: declared twice", path,
                                  path[0] != '\0' ? "." : "", f->name);
            }
        }
        int rc = field_validate(sec, f, path, err);
        if (rc != 0) {
            return rc;
        }
        if (f->section != NULL) {
            char sub[CFG_PATH_LEN];
            snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] != '\0' ? "." : "", f->name);
            rc = mr_section_validate(f->section, sub, err);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}
