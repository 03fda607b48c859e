/* InfluxDB line protocol parser (see lineproto.h for the grammar and the ownership rules).
 *
 * One pass over the line with a cursor; names are borrowed from the line unless they hold
 * escapes, in which case a second, short pass copies them unescaped into the scratch buffer.
 * Bytes are classified through one 256-entry table. Numbers are parsed without copying where we
 * can (integers, timestamps, short decimal floats through an exact fast path); other floats go
 * through strtod on a small stack copy after their characters were checked, so "nan", "inf" and
 * hex floats, which InfluxDB refuses, are refused here too.
 */
#include "inputs/lineproto.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cursor {
    const char *s;
    size_t n;
    size_t i;
    char *scratch;
    size_t used;
    size_t cap;
};

/* Character classes, one table lookup per byte instead of a strchr per byte (the scanner's
 * inner loop). A name stops at an unescaped character of its STOP class; `\X` is an escape when
 * X is in its ESC class. '\0' is in no class, as it was in no strchr set. */
enum {
    C_STOP_MEAS = 1u << 0,  /* measurement ends: ',' ' ' */
    C_STOP_KEY = 1u << 1,   /* tag key, field key: '=' ',' ' ' */
    C_STOP_VALUE = 1u << 2, /* tag value: ',' ' ' */
    C_ESC_MEAS = 1u << 3,   /* escapable in a measurement: ',' ' ' */
    C_ESC_NAME = 1u << 4,   /* escapable in tag keys, tag values and field keys: ',' '=' ' ' */
    C_FLOAT = 1u << 5,      /* may appear in a float: digits . e E + - */
    C_BACKSLASH = 1u << 6,
};

static const uint8_t cls[256] = {
    [','] = C_STOP_MEAS | C_STOP_KEY | C_STOP_VALUE | C_ESC_MEAS | C_ESC_NAME,
    [' '] = C_STOP_MEAS | C_STOP_KEY | C_STOP_VALUE | C_ESC_MEAS | C_ESC_NAME,
    ['='] = C_STOP_KEY | C_ESC_NAME,
    ['\\'] = C_BACKSLASH,
    ['0'] = C_FLOAT,
    ['1'] = C_FLOAT,
    ['2'] = C_FLOAT,
    ['3'] = C_FLOAT,
    ['4'] = C_FLOAT,
    ['5'] = C_FLOAT,
    ['6'] = C_FLOAT,
    ['7'] = C_FLOAT,
    ['8'] = C_FLOAT,
    ['9'] = C_FLOAT,
    ['.'] = C_FLOAT,
    ['e'] = C_FLOAT,
    ['E'] = C_FLOAT,
    ['+'] = C_FLOAT,
    ['-'] = C_FLOAT,
};

static inline bool is(char ch, unsigned mask)
{
    return (cls[(unsigned char)ch] & mask) != 0;
}

static int fail(struct mr_err *err, size_t col, const char *what)
{
    return MR_ERR_SET(err, MR_EPARSE, "column %zu: %s", col + 1, what);
}

/* A name up to an unescaped character of class `stops`; `\X` for X of class `escapable`
 * stands for X. */
static int read_name(struct cursor *c, unsigned stops, unsigned escapable, struct mr_bytes *out)
{
    size_t start = c->i;
    bool escaped = false;
    const char *s = c->s;
    size_t i = c->i, n = c->n;
    unsigned watch = stops | C_BACKSLASH;
    while (i < n) {
        char ch = s[i];
        if (!is(ch, watch)) {
            i++;
            continue;
        }
        if (ch == '\\') {
            if (i + 1 < n && is(s[i + 1], escapable)) {
                escaped = true;
                i += 2;
            } else {
                i++;
            }
            continue;
        }
        break;
    }
    c->i = i;
    size_t len = c->i - start;
    if (!escaped) {
        *out = (struct mr_bytes){.ptr = c->s + start, .len = (uint32_t)len};
        return 0;
    }
    if (c->cap - c->used < len) {
        return MR_ETOOBIG;
    }
    char *d = c->scratch + c->used;
    size_t k = 0;
    for (size_t j = start; j < c->i; j++) {
        if (c->s[j] == '\\' && j + 1 < c->i && is(c->s[j + 1], escapable)) {
            j++;
        }
        d[k++] = c->s[j];
    }
    c->used += k;
    *out = (struct mr_bytes){.ptr = d, .len = (uint32_t)k};
    return 0;
}

/* Decimal integer with an optional leading '-' over exactly p[0..len). */
static int parse_i64(const char *p, size_t len, int64_t *out)
{
    bool neg = len > 0 && p[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == len) {
        return MR_EPARSE;
    }
    uint64_t v = 0;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return MR_EPARSE;
        }
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (limit - d) / 10) {
            return MR_ERANGE;
        }
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int parse_u64(const char *p, size_t len, uint64_t *out)
{
    if (len == 0) {
        return MR_EPARSE;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return MR_EPARSE;
        }
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return MR_ERANGE;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* 10^0 .. 10^22: every one exactly representable in a double. */
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The common decimal case without strtod: [-]digits[.digits][(e|E)[+-]digits] with at most 19
 * significant digits, whose mantissa w <= 2^53 and decimal exponent |e| <= 22. Then w and 10^|e|
 * are exact doubles and one IEEE multiply or divide rounds correctly (Clinger's fast path), so
 * the result is strtod's bit for bit. Returns false for anything else (the caller asks strtod). */
static bool float_fast(const char *p, size_t len, double *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && p[i] == '-') {
        neg = true;
        i++;
    }
    uint64_t w = 0;
    int sig = 0, exp10 = 0, ndigits = 0;
    for (; i < len && p[i] >= '0' && p[i] <= '9'; i++, ndigits++) {
        if (w == 0 && p[i] == '0') {
            continue; /* leading zeros are not significant */
        }
        if (++sig > 19) {
            return false;
        }
        w = w * 10 + (uint64_t)(p[i] - '0');
    }
    if (i < len && p[i] == '.') {
        for (i++; i < len && p[i] >= '0' && p[i] <= '9'; i++, ndigits++) {
            exp10--;
            if (w == 0 && p[i] == '0') {
                continue;
            }
            if (++sig > 19) {
                return false;
            }
            w = w * 10 + (uint64_t)(p[i] - '0');
        }
    }
    if (ndigits == 0) {
        return false;
    }
    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < len && (p[i] == '+' || p[i] == '-')) {
            eneg = p[i] == '-';
            i++;
        }
        int e = 0, edigits = 0;
        for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
            if (++edigits > 4) {
                return false;
            }
            e = e * 10 + (p[i] - '0');
        }
        if (edigits == 0) {
            return false;
        }
        exp10 += eneg ? -e : e;
    }
    if (i != len || w > (1ull << 53)) {
        return false;
    }
    double v = (double)w;
    if (w == 0) {
        v = 0.0;
    } else if (exp10 >= 0 && exp10 <= 22) {
        v *= pow10_exact[exp10];
    } else if (exp10 < 0 && exp10 >= -22) {
        v /= pow10_exact[-exp10];
    } else {
        return false;
    }
    *out = neg ? -v : v;
    return true;
}

int mr_lineproto_parse_float(const char *p, size_t len, double *out)
{
    char text[72];
    bool digit = false;
    if (len == 0 || len >= sizeof(text)) {
        return MR_EPARSE;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        if (!is(ch, C_FLOAT)) {
            return MR_EPARSE;
        }
        digit |= ch >= '0' && ch <= '9';
    }
    if (!digit) {
        return MR_EPARSE;
    }
    if (float_fast(p, len, out)) {
        return 0;
    }
    memcpy(text, p, len);
    text[len] = '\0';
    char *end;
    double v = strtod(text, &end);
    if (end != text + len) {
        return MR_EPARSE;
    }
    if (!isfinite(v)) {
        return MR_ERANGE;
    }
    *out = v;
    return 0;
}

/* t, T, true, True, TRUE, f, F, false, False, FALSE. */
static int parse_bool(const char *p, size_t len, bool *out)
{
    if (len == 1 && (p[0] == 't' || p[0] == 'T' || p[0] == 'f' || p[0] == 'F')) {
        *out = p[0] == 't' || p[0] == 'T';
        return 0;
    }
    if ((len == 4 &&
         (memcmp(p, "true", 4) == 0 || memcmp(p, "True", 4) == 0 || memcmp(p, "TRUE", 4) == 0))) {
        *out = true;
        return 0;
    }
    if ((len == 5 && (memcmp(p, "false", 5) == 0 || memcmp(p, "False", 5) == 0 ||
                      memcmp(p, "FALSE", 5) == 0))) {
        *out = false;
        return 0;
    }
    return MR_EPARSE;
}

/* A quoted string value starting at the opening quote: `\"` and `\\` stand for one character. */
static int read_string(struct cursor *c, struct mr_bytes *out, struct mr_err *err)
{
    size_t open = c->i++;
    size_t start = c->i;
    bool escaped = false;
    while (c->i < c->n && c->s[c->i] != '"') {
        if (c->s[c->i] == '\\' && c->i + 1 < c->n &&
            (c->s[c->i + 1] == '"' || c->s[c->i + 1] == '\\')) {
            escaped = true;
            c->i++;
        }
        c->i++;
    }
    if (c->i >= c->n) {
        return fail(err, open, "string value without its closing quote");
    }
    size_t len = c->i - start;
    c->i++; /* the closing quote */
    if (!escaped) {
        *out = (struct mr_bytes){.ptr = c->s + start, .len = (uint32_t)len};
        return 0;
    }
    if (c->cap - c->used < len) {
        return MR_ERR_SET(err, MR_ETOOBIG, "scratch buffer too small");
    }
    char *d = c->scratch + c->used;
    size_t k = 0;
    for (size_t j = start; j < start + len; j++) {
        if (c->s[j] == '\\' && j + 1 < start + len && (c->s[j + 1] == '"' || c->s[j + 1] == '\\')) {
            j++;
        }
        d[k++] = c->s[j];
    }
    c->used += k;
    *out = (struct mr_bytes){.ptr = d, .len = (uint32_t)k};
    return 0;
}

static int read_value(struct cursor *c, struct mr_lp_field *f, struct mr_err *err)
{
    if (c->i < c->n && c->s[c->i] == '"') {
        f->type = MR_LP_STRING;
        return read_string(c, &f->v.s, err);
    }
    size_t start = c->i;
    while (c->i < c->n && c->s[c->i] != ',' && c->s[c->i] != ' ') {
        c->i++;
    }
    const char *p = c->s + start;
    size_t len = c->i - start;
    int rc;
    if (len == 0) {
        return fail(err, start, "field without a value");
    }
    if (p[len - 1] == 'i') {
        f->type = MR_LP_INT;
        rc = parse_i64(p, len - 1, &f->v.i);
    } else if (p[len - 1] == 'u') {
        f->type = MR_LP_UINT;
        rc = parse_u64(p, len - 1, &f->v.u);
    } else if (parse_bool(p, len, &f->v.b) == 0) {
        f->type = MR_LP_BOOL;
        rc = 0;
    } else {
        f->type = MR_LP_FLOAT;
        rc = mr_lineproto_parse_float(p, len, &f->v.f);
    }
    if (rc == MR_ERANGE) {
        return MR_ERR_SET(err, MR_ERANGE, "column %zu: number out of range", start + 1);
    }
    if (rc != 0) {
        return fail(err, start,
                    "field value is not a number, integer (3i), unsigned (3u), boolean or "
                    "quoted string");
    }
    return 0;
}

static int read_tags(struct cursor *c, struct mr_lp_point *pt, struct mr_err *err)
{
    while (c->i < c->n && c->s[c->i] == ',') {
        c->i++;
        if (pt->ntags == MR_LP_MAX_TAGS) {
            return MR_ERR_SET(err, MR_ETOOBIG, "column %zu: more than %d tags", c->i,
                              MR_LP_MAX_TAGS);
        }
        struct mr_lp_tag *t = &pt->tags[pt->ntags];
        size_t at = c->i;
        if (read_name(c, C_STOP_KEY, C_ESC_NAME, &t->key) != 0) {
            return MR_ERR_SET(err, MR_ETOOBIG, "scratch buffer too small");
        }
        if (t->key.len == 0 || c->i >= c->n || c->s[c->i] != '=') {
            return fail(err, at, "tag must be key=value");
        }
        c->i++;
        at = c->i;
        if (read_name(c, C_STOP_VALUE, C_ESC_NAME, &t->value) != 0) {
            return MR_ERR_SET(err, MR_ETOOBIG, "scratch buffer too small");
        }
        if (t->value.len == 0) {
            return fail(err, at, "tag without a value");
        }
        pt->ntags++;
    }
    return 0;
}

static int read_fields(struct cursor *c, struct mr_lp_point *pt, struct mr_err *err)
{
    for (;;) {
        if (pt->nfields == MR_LP_MAX_FIELDS) {
            return MR_ERR_SET(err, MR_ETOOBIG, "column %zu: more than %d fields", c->i + 1,
                              MR_LP_MAX_FIELDS);
        }
        struct mr_lp_field *f = &pt->fields[pt->nfields];
        size_t at = c->i;
        if (read_name(c, C_STOP_KEY, C_ESC_NAME, &f->key) != 0) {
            return MR_ERR_SET(err, MR_ETOOBIG, "scratch buffer too small");
        }
        if (f->key.len == 0 || c->i >= c->n || c->s[c->i] != '=') {
            return fail(err, at, "field must be key=value");
        }
        c->i++;
        int rc = read_value(c, f, err);
        if (rc != 0) {
            return rc;
        }
        pt->nfields++;
        if (c->i >= c->n || c->s[c->i] != ',') {
            return 0;
        }
        c->i++;
    }
}

static int read_time(struct cursor *c, enum mr_lp_precision prec, struct mr_lp_point *pt,
                     struct mr_err *err)
{
    static const int64_t mult[] = {1, 1000, 1000000, 1000000000};
    size_t start = c->i;
    while (c->i < c->n && c->s[c->i] != ' ') {
        c->i++;
    }
    int64_t t;
    int rc = parse_i64(c->s + start, c->i - start, &t);
    if (rc == MR_ERANGE) {
        return MR_ERR_SET(err, MR_ERANGE, "column %zu: timestamp out of range", start + 1);
    }
    if (rc != 0) {
        return fail(err, start, "timestamp must be an integer");
    }
    int64_t m = mult[prec];
    if (t > INT64_MAX / m || t < INT64_MIN / m) {
        return MR_ERR_SET(err, MR_ERANGE, "column %zu: timestamp out of range", start + 1);
    }
    pt->time_ns = t * m;
    pt->has_time = true;
    return 0;
}

int mr_lineproto_parse_line(const char *line, size_t len, enum mr_lp_precision prec,
                            struct mr_lp_point *pt, char *scratch, size_t scratch_cap,
                            struct mr_err *err)
{
    struct cursor c = {.s = line, .n = len, .scratch = scratch, .cap = scratch_cap};
    int rc;
    while (c.i < c.n && (line[c.i] == ' ' || line[c.i] == '\t')) {
        c.i++;
    }
    if (c.i == c.n || line[c.i] == '#') {
        return MR_LP_EMPTY;
    }
    if ((unsigned)prec > MR_LP_S) {
        return MR_ERR_SET(err, MR_EINVAL, "unknown timestamp precision");
    }
    pt->ntags = 0;
    pt->nfields = 0;
    pt->has_time = false;
    pt->time_ns = 0;
    size_t series_start = c.i;
    if (read_name(&c, C_STOP_MEAS, C_ESC_MEAS, &pt->measurement) != 0) {
        return MR_ERR_SET(err, MR_ETOOBIG, "scratch buffer too small");
    }
    if (pt->measurement.len == 0) {
        return fail(err, c.i, "line without a measurement name");
    }
    rc = read_tags(&c, pt, err);
    if (rc != 0) {
        return rc;
    }
    pt->series =
        (struct mr_bytes){.ptr = line + series_start, .len = (uint32_t)(c.i - series_start)};
    if (c.i >= c.n || line[c.i] != ' ') {
        return fail(err, c.i, "expected a space and fields after the measurement and tags");
    }
    while (c.i < c.n && line[c.i] == ' ') {
        c.i++;
    }
    rc = read_fields(&c, pt, err);
    if (rc != 0) {
        return rc;
    }
    while (c.i < c.n && line[c.i] == ' ') {
        c.i++;
    }
    if (c.i < c.n) {
        rc = read_time(&c, prec, pt, err);
        if (rc != 0) {
            return rc;
        }
        while (c.i < c.n && (line[c.i] == ' ' || line[c.i] == '\t')) {
            c.i++;
        }
        if (c.i < c.n) {
            return fail(err, c.i, "unexpected text after the timestamp");
        }
    }
    return 0;
}

bool mr_lineproto_next(const char *buf, size_t len, size_t *pos, const char **line,
                       size_t *line_len)
{
    if (*pos >= len) {
        return false;
    }
    const char *start = buf + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    size_t n = nl != NULL ? (size_t)(nl - start) : len - *pos;
    *pos += n + (nl != NULL ? 1 : 0);
    if (n > 0 && start[n - 1] == '\r') {
        n--;
    }
    *line = start;
    *line_len = n;
    return true;
}

int mr_lineproto_precision_parse(const char *s, enum mr_lp_precision *out)
{
    static const struct {
        const char *name;
        enum mr_lp_precision p;
    } table[] = {{"ns", MR_LP_NS}, {"n", MR_LP_NS},  {"us", MR_LP_US},
                 {"u", MR_LP_US},  {"ms", MR_LP_MS}, {"s", MR_LP_S}};
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strcmp(s, table[i].name) == 0) {
            *out = table[i].p;
            return 0;
        }
    }
    return MR_EINVAL;
}

void mr_lineproto_field_value(const struct mr_lp_field *f, struct mr_record *r)
{
    switch (f->type) {
    case MR_LP_FLOAT:
        r->type = MR_VALUE_F64;
        r->v.f64 = f->v.f;
        break;
    case MR_LP_INT:
        r->type = MR_VALUE_I64;
        r->v.i64 = f->v.i;
        break;
    case MR_LP_UINT:
        r->type = MR_VALUE_F64; /* records have no unsigned type: exact up to 2^53 */
        r->v.f64 = (double)f->v.u;
        break;
    case MR_LP_BOOL:
        r->type = MR_VALUE_BOOL;
        r->v.b = f->v.b;
        break;
    default:
        r->type = MR_VALUE_STRING;
        r->v.str = f->v.s; /* borrowed from the line (or the parser's scratch) */
        break;
    }
}
