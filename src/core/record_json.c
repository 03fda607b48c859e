/* JSON encoding of records, and RFC 3339 timestamps.
 *
 * Writing is by hand into the caller's buffer: no allocation, one pass, bounded by cap.
 *   {"time":"2026-11-24T16:49:00.123456789Z","asset":"s/a/l/m","signal":"temp","value":21.5,
 *    "quality":"good","tags":{"unit":"degC"}}
 * - time always has 9 fractional digits and "Z": fixed width, so text order is time order.
 * - an f64 value always carries a '.' or an exponent ("2.0", not "2"), so reading it back gives
 *   an f64 again and not an i64. Doubles use the shorter of %.15g/%.17g that reads back
 *   exactly; samples (f32) the shorter of %.7g/%.9g.
 * - NaN and infinities have no JSON form and are written as null (such a record cannot be read
 *   back; the binary encoding keeps them).
 * - strings are escaped per RFC 8259; bytes that are not valid UTF-8 become U+FFFD, because
 *   string values and tag values are arbitrary bytes and JSON text must be UTF-8.
 * - "tags" is omitted when there are none.
 *
 * Reading uses jansson (not the hot path: this is for people and line-oriented tools). The
 * reader is strict: unknown fields, duplicate keys, wrong types and trailing text are errors
 * that name the field, since a misspelt "qualty" silently defaulting to good would be worse.
 * Number formatting and parsing assume the C locale (millrace never calls setlocale).
 */
#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/record.h"
#include "millrace/numtext.h"

#define NS_PER_SEC     1000000000LL
#define RFC3339_LEN    30 /* "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" */
/* FLT_MAX plus half an ulp (2^128 - 2^103): the smallest double that rounds to float infinity. */
#define FLOAT_OVERFLOW 3.4028235677973366e+38

/* ---- RFC 3339 ---------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (the era/day-of-era method: 400-year
 * eras of 146097 days make the arithmetic exact for negative years too). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

static inline int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

size_t mr_time_format_rfc3339(int64_t ns, char *out, size_t cap)
{
    if (out == NULL || cap < RFC3339_LEN + 1) {
        return 0;
    }
    int64_t secs = floor_div(ns, NS_PER_SEC);
    int64_t frac = ns % NS_PER_SEC; /* not ns - secs * 1e9: that overflows near INT64_MIN */
    if (frac < 0) {
        frac += NS_PER_SEC;
    }
    int64_t days = floor_div(secs, 86400);
    int64_t sod = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    /* int64 nanoseconds span 1677..2262, so the year always has four digits. */
    int n = snprintf(out, cap, "%04d-%02u-%02uT%02d:%02d:%02d.%09dZ", (int)y, m, d,
                     (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)frac);
    return n == RFC3339_LEN ? (size_t)n : 0;
}

/* n ASCII digits at s, or -1. */
static int64_t parse_digits(const char *s, size_t n)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Seconds east of UTC from "Z" or "+hh:mm"/"-hh:mm" at s[0..len), or MR_EPARSE. */
static int parse_offset(const char *s, size_t len, int64_t *offset)
{
    if (len == 1 && (s[0] == 'Z' || s[0] == 'z')) {
        *offset = 0;
        return 0;
    }
    if (len != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':') {
        return MR_EPARSE;
    }
    int64_t hh = parse_digits(s + 1, 2);
    int64_t mm = parse_digits(s + 4, 2);
    if (hh < 0 || hh > 23 || mm < 0 || mm > 59) {
        return MR_EPARSE;
    }
    *offset = (s[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    return 0;
}

/* "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+hh:mm|-hh:mm)"; 't', 'z' and a space separator are accepted
 * as RFC 3339 allows. Leap seconds (:60) are rejected: Unix time cannot represent them. */
int mr_time_parse_rfc3339(const char *s, size_t len, int64_t *ns)
{
    if (s == NULL || ns == NULL || len < 20 || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':') {
        return MR_EPARSE;
    }
    int64_t y = parse_digits(s, 4), mo = parse_digits(s + 5, 2), d = parse_digits(s + 8, 2);
    int64_t h = parse_digits(s + 11, 2), mi = parse_digits(s + 14, 2);
    int64_t sec = parse_digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, (unsigned)mo) || h < 0 ||
        h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59) {
        return MR_EPARSE;
    }
    size_t pos = 19;
    int64_t frac = 0;
    if (s[pos] == '.') {
        size_t start = ++pos;
        while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
            pos++;
        }
        size_t ndigits = pos - start;
        if (ndigits == 0 || ndigits > 9) {
            return MR_EPARSE;
        }
        frac = parse_digits(s + start, ndigits);
        for (size_t i = ndigits; i < 9; i++) {
            frac *= 10;
        }
    }
    int64_t offset;
    if (parse_offset(s + pos, len - pos, &offset) != 0) {
        return MR_EPARSE;
    }
    /* Years 0..9999 keep secs within +-3.2e11: no overflow until scaled to ns. */
    int64_t secs =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    int64_t v;
    if (__builtin_mul_overflow(secs, NS_PER_SEC, &v)) {
        /* INT64_MIN itself needs the negative side scaled one second up, then the fraction. */
        if (secs >= 0 || frac == 0 || __builtin_mul_overflow(secs + 1, NS_PER_SEC, &v) ||
            __builtin_sub_overflow(v, NS_PER_SEC - frac, &v)) {
            return MR_ERANGE;
        }
    } else if (__builtin_add_overflow(v, frac, &v)) {
        return MR_ERANGE;
    }
    *ns = v;
    return 0;
}

/* ---- JSON writer ------------------------------------------------------------------------- */

/* Output buffer: len excludes the NUL, which always has room reserved. */
struct jbuf {
    char *p;
    size_t len;
    size_t cap;
    bool full;
};

static void jb_put(struct jbuf *b, const char *s, size_t n)
{
    if (b->full || n > b->cap - 1 - b->len) {
        b->full = true;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void jb_lit(struct jbuf *b, const char *s)
{
    jb_put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 (RFC 3629: no overlongs, surrogates or
 * code points above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < need; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return need;
}

static void jb_string(struct jbuf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    jb_put(b, "\"", 1);
    while (i < n) {
        size_t run = i;
        while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\') {
            run++;
        }
        jb_put(b, str + i, run - i);
        i = run;
        if (i == n) {
            break;
        }
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t k = utf8_seq(s + i, n - i);
            if (k == 0) {
                jb_put(b, "\\ufffd", 6);
                k = 1;
            } else {
                jb_put(b, str + i, k);
            }
            i += k;
            continue;
        }
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        switch (c) {
        case '"':
            jb_put(b, "\\\"", 2);
            break;
        case '\\':
            jb_put(b, "\\\\", 2);
            break;
        case '\b':
            jb_put(b, "\\b", 2);
            break;
        case '\f':
            jb_put(b, "\\f", 2);
            break;
        case '\n':
            jb_put(b, "\\n", 2);
            break;
        case '\r':
            jb_put(b, "\\r", 2);
            break;
        case '\t':
            jb_put(b, "\\t", 2);
            break;
        default:
            jb_put(b, esc, sizeof(esc));
            break;
        }
        i++;
    }
    jb_put(b, "\"", 1);
}

static void jb_i64(struct jbuf *b, int64_t v)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp);
    char *p = end;
    /* Work in unsigned so INT64_MIN negates without overflow. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        *--p = '-';
    }
    jb_put(b, p, (size_t)(end - p));
}

/* A double that reads back bit-exact (except NaN payloads), always with '.' or an exponent. */
static void jb_f64(struct jbuf *b, double v)
{
    char tmp[40];
    if (!isfinite(v)) {
        jb_put(b, "null", 4);
        return;
    }
    int n = mr_double_text(v, tmp, sizeof(tmp));
    jb_put(b, tmp, (size_t)n);
    if (strpbrk(tmp, ".e") == NULL) {
        jb_put(b, ".0", 2);
    }
}

/* Readers widen to double and narrow to float, so check the short form that same way. */
static void jb_f32(struct jbuf *b, float v)
{
    char tmp[32];
    if (!isfinite(v)) {
        jb_put(b, "null", 4);
        return;
    }
    if (v == 0 && signbit(v)) {
        jb_put(b, "-0.0", 4); /* "-0" would read back as the integer 0, losing the sign */
        return;
    }
    int n = snprintf(tmp, sizeof(tmp), "%.7g", (double)v);
    if ((float)strtod(tmp, NULL) != v) {
        n = snprintf(tmp, sizeof(tmp), "%.9g", (double)v);
    }
    jb_put(b, tmp, (size_t)n);
}

static void jb_value(struct jbuf *b, const struct mr_record *rec)
{
    switch (rec->type) {
    case MR_VALUE_F64:
        jb_f64(b, rec->v.f64);
        break;
    case MR_VALUE_I64:
        jb_i64(b, rec->v.i64);
        break;
    case MR_VALUE_BOOL:
        jb_lit(b, rec->v.b ? "true" : "false");
        break;
    case MR_VALUE_STRING:
        jb_string(b, rec->v.str.ptr, rec->v.str.len);
        break;
    case MR_VALUE_SAMPLES:
        jb_lit(b, "{\"rate_hz\":");
        jb_f64(b, rec->v.samples.rate_hz);
        jb_lit(b, ",\"samples\":[");
        for (uint32_t i = 0; i < rec->v.samples.n && !b->full; i++) {
            float f;
            memcpy(&f, (const char *)rec->v.samples.data + (size_t)i * sizeof(f), sizeof(f));
            if (i != 0) {
                jb_put(b, ",", 1);
            }
            jb_f32(b, f);
        }
        jb_lit(b, "]}");
        break;
    default:
        break;
    }
}

static bool record_writable(const struct mr_record *rec, const struct mr_names *names)
{
    if (rec->type < MR_VALUE_F64 || rec->type > MR_VALUE_SAMPLES || rec->quality > MR_QUALITY_BAD ||
        rec->ntags > MR_RECORD_MAX_TAGS || mr_names_str(names, rec->asset, NULL) == NULL ||
        mr_names_str(names, rec->signal, NULL) == NULL) {
        return false;
    }
    if ((rec->type == MR_VALUE_STRING && rec->v.str.ptr == NULL && rec->v.str.len != 0) ||
        (rec->type == MR_VALUE_SAMPLES && rec->v.samples.data == NULL && rec->v.samples.n != 0)) {
        return false;
    }
    for (uint16_t i = 0; i < rec->ntags; i++) {
        if (mr_names_str(names, rec->tags[i].key, NULL) == NULL ||
            (rec->tags[i].value.ptr == NULL && rec->tags[i].value.len != 0)) {
            return false;
        }
    }
    return true;
}

static void jb_name(struct jbuf *b, const struct mr_names *names, mr_name_id id)
{
    size_t len;
    const char *s = mr_names_str(names, id, &len);
    jb_string(b, s, len);
}

long mr_record_to_json(const struct mr_record *rec, const struct mr_names *names, char *out,
                       size_t cap)
{
    char ts[RFC3339_LEN + 1];
    struct jbuf b = {.p = out, .len = 0, .cap = cap, .full = false};

    if (rec == NULL || names == NULL || !record_writable(rec, names)) {
        return MR_EINVAL;
    }
    if (out == NULL || cap == 0) {
        return MR_ETOOBIG;
    }
    size_t tslen = mr_time_format_rfc3339(rec->time_ns, ts, sizeof(ts));
    jb_lit(&b, "{\"time\":\"");
    jb_put(&b, ts, tslen);
    jb_lit(&b, "\",\"asset\":");
    jb_name(&b, names, rec->asset);
    jb_lit(&b, ",\"signal\":");
    jb_name(&b, names, rec->signal);
    jb_lit(&b, ",\"value\":");
    jb_value(&b, rec);
    jb_lit(&b, ",\"quality\":\"");
    jb_lit(&b, mr_quality_name((enum mr_quality)rec->quality));
    jb_lit(&b, "\"");
    if (rec->ntags > 0) {
        jb_lit(&b, ",\"tags\":{");
        for (uint16_t i = 0; i < rec->ntags; i++) {
            if (i != 0) {
                jb_put(&b, ",", 1);
            }
            jb_name(&b, names, rec->tags[i].key);
            jb_put(&b, ":", 1);
            jb_string(&b, rec->tags[i].value.ptr, rec->tags[i].value.len);
        }
        jb_lit(&b, "}");
    }
    jb_lit(&b, "}");
    if (b.full) {
        return MR_ETOOBIG;
    }
    out[b.len] = '\0';
    return (long)b.len;
}

/* ---- JSON reader ------------------------------------------------------------------------- */

/* Bump allocator over the caller's scratch buffer. */
struct scratch {
    char *base;
    size_t cap;
    size_t used;
};

static void *scratch_take(struct scratch *s, size_t n, size_t align)
{
    uintptr_t at = (uintptr_t)s->base + s->used;
    size_t pad = (size_t)(-at & (uintptr_t)(align - 1));
    if (s->base == NULL || pad > s->cap - s->used || n > s->cap - s->used - pad) {
        return NULL;
    }
    void *p = s->base + s->used + pad;
    s->used += pad + n;
    return p;
}

/* The JSON fields of a record, borrowed from the parsed document. */
struct json_fields {
    json_t *time, *asset, *signal, *value, *quality, *tags;
};

static int copy_string(struct scratch *s, const json_t *str, const char *field,
                       struct mr_bytes *out, struct mr_err *err)
{
    size_t n = json_string_length(str);
    if (n > UINT32_MAX) {
        return MR_ERR_SET(err, MR_ETOOBIG, "json: field \"%s\" is too long", field);
    }
    char *p = n == 0 ? NULL : scratch_take(s, n, 1);
    if (n != 0 && p == NULL) {
        return MR_ERR_SET(err, MR_ETOOBIG, "json: field \"%s\" does not fit the scratch buffer",
                          field);
    }
    if (n != 0) {
        memcpy(p, json_string_value(str), n);
    }
    out->ptr = n == 0 ? "" : p;
    out->len = (uint32_t)n;
    return 0;
}

/* Interns a JSON string as a name; field names the JSON field for the message. */
static int intern_json(struct mr_names *names, const char *s, size_t len, const char *field,
                       mr_name_id *id, struct mr_err *err)
{
    int rc = mr_names_intern(names, s, len, id);
    if (rc == MR_EINVAL) {
        return MR_ERR_SET(err, MR_EPARSE, "json: %s must be a non-empty name without NUL", field);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "json: cannot intern %s: %s", field, mr_strerror(rc));
    }
    return 0;
}

static int read_name(struct mr_names *names, const json_t *v, const char *field, mr_name_id *id,
                     struct mr_err *err)
{
    if (v == NULL) {
        return MR_ERR_SET(err, MR_EPARSE, "json: missing field \"%s\"", field);
    }
    if (!json_is_string(v)) {
        return MR_ERR_SET(err, MR_EPARSE, "json: field \"%s\" must be a string", field);
    }
    char what[32];
    snprintf(what, sizeof(what), "field \"%s\"", field);
    return intern_json(names, json_string_value(v), json_string_length(v), what, id, err);
}

static int read_time(const json_t *v, int64_t *ns, struct mr_err *err)
{
    if (v == NULL) {
        return MR_ERR_SET(err, MR_EPARSE, "json: missing field \"time\"");
    }
    if (json_is_integer(v)) {
        *ns = (int64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v)) {
        return MR_ERR_SET(err, MR_EPARSE,
                          "json: field \"time\" must be an RFC 3339 string or integer ns");
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    int rc = mr_time_parse_rfc3339(s, len, ns);
    if (rc != 0) {
        return MR_ERR_SET(err, MR_EPARSE,
                          "json: field \"time\" \"%.*s\" is not a valid RFC 3339 "
                          "timestamp%s",
                          (int)(len > 40 ? 40 : len), s,
                          rc == MR_ERANGE ? " in the int64 ns range (1677..2262)" : "");
    }
    return 0;
}

static int read_quality(const json_t *v, uint8_t *q, struct mr_err *err)
{
    static const char *const names[] = {"good", "uncertain", "bad"};
    if (v == NULL) {
        *q = MR_QUALITY_GOOD;
        return 0;
    }
    if (json_is_string(v)) {
        for (uint8_t i = 0; i < 3; i++) {
            if (json_string_length(v) == strlen(names[i]) &&
                strcmp(json_string_value(v), names[i]) == 0) {
                *q = i;
                return 0;
            }
        }
    }
    return MR_ERR_SET(err, MR_EPARSE,
                      "json: field \"quality\" must be \"good\", \"uncertain\" or \"bad\"");
}

static int read_samples(const json_t *v, struct scratch *s, struct mr_samples *out,
                        struct mr_err *err)
{
    const char *key;
    size_t klen;
    json_t *item, *rate = NULL, *arr = NULL;

    json_object_keylen_foreach((json_t *)v, key, klen, item)
    {
        if (klen == 7 && memcmp(key, "rate_hz", 7) == 0) {
            rate = item;
        } else if (klen == 7 && memcmp(key, "samples", 7) == 0) {
            arr = item;
        } else {
            return MR_ERR_SET(err, MR_EPARSE, "json: unknown field \"%.*s\" in \"value\"",
                              (int)(klen > 40 ? 40 : klen), key);
        }
    }
    if (rate == NULL || arr == NULL) {
        return MR_ERR_SET(err, MR_EPARSE,
                          "json: an object \"value\" needs \"rate_hz\" and \"samples\"");
    }
    double hz = json_number_value(rate);
    if (!json_is_number(rate) || !isfinite(hz) || hz <= 0) {
        return MR_ERR_SET(err, MR_EPARSE, "json: \"rate_hz\" must be a positive number");
    }
    if (!json_is_array(arr)) {
        return MR_ERR_SET(err, MR_EPARSE, "json: \"samples\" must be an array of numbers");
    }
    size_t n = json_array_size(arr);
    if (n > MR_RECORD_MAX_SAMPLES) {
        return MR_ERR_SET(err, MR_ETOOBIG, "json: %zu samples exceed the limit of %u", n,
                          MR_RECORD_MAX_SAMPLES);
    }
    float *data = n == 0 ? NULL : scratch_take(s, n * sizeof(float), alignof(float));
    if (n != 0 && data == NULL) {
        return MR_ERR_SET(err, MR_ETOOBIG, "json: %zu samples do not fit the scratch buffer", n);
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(arr, i);
        double d = json_number_value(x);
        /* Out-of-range double to float conversion is undefined: check before narrowing. Values
         * within half a float ulp above FLT_MAX (how "3.40282347e+38" reads) round to FLT_MAX. */
        if (!json_is_number(x) || !isfinite(d) || fabs(d) >= FLOAT_OVERFLOW) {
            return MR_ERR_SET(err, MR_EPARSE,
                              "json: \"samples\"[%zu] must be a finite number in float range", i);
        }
        data[i] = fabs(d) > FLT_MAX ? (d > 0 ? FLT_MAX : -FLT_MAX) : (float)d;
    }
    out->data = data;
    out->n = (uint32_t)n;
    out->rate_hz = hz;
    return 0;
}

static int read_value(const json_t *v, struct scratch *s, struct mr_record *r, struct mr_err *err)
{
    if (v == NULL) {
        return MR_ERR_SET(err, MR_EPARSE, "json: missing field \"value\"");
    }
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        r->type = MR_VALUE_I64;
        r->v.i64 = (int64_t)json_integer_value(v);
        return 0;
    case JSON_REAL:
        r->type = MR_VALUE_F64;
        r->v.f64 = json_real_value(v);
        if (!isfinite(r->v.f64)) {
            return MR_ERR_SET(err, MR_EPARSE, "json: field \"value\" is not finite");
        }
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        r->type = MR_VALUE_BOOL;
        r->v.b = json_is_true(v);
        return 0;
    case JSON_STRING:
        r->type = MR_VALUE_STRING;
        return copy_string(s, v, "value", &r->v.str, err);
    case JSON_OBJECT:
        r->type = MR_VALUE_SAMPLES;
        return read_samples(v, s, &r->v.samples, err);
    default:
        return MR_ERR_SET(err, MR_EPARSE,
                          "json: field \"value\" must be a number, boolean, "
                          "string or {\"rate_hz\":..,\"samples\":[..]}");
    }
}

static int read_tags(const json_t *v, struct mr_names *names, struct scratch *s,
                     struct mr_record *r, struct mr_err *err)
{
    const char *key;
    size_t klen;
    json_t *item;
    int rc;

    r->ntags = 0;
    if (v == NULL) {
        return 0;
    }
    if (!json_is_object(v)) {
        return MR_ERR_SET(err, MR_EPARSE, "json: field \"tags\" must be an object of strings");
    }
    if (json_object_size(v) > MR_RECORD_MAX_TAGS) {
        return MR_ERR_SET(err, MR_ETOOBIG, "json: %zu tags exceed the limit of %d",
                          json_object_size(v), MR_RECORD_MAX_TAGS);
    }
    json_object_keylen_foreach((json_t *)v, key, klen, item)
    {
        struct mr_tag *t = &r->tags[r->ntags];
        if (!json_is_string(item)) {
            return MR_ERR_SET(err, MR_EPARSE, "json: tag \"%.*s\" must have a string value",
                              (int)(klen > 40 ? 40 : klen), key);
        }
        if ((rc = intern_json(names, key, klen, "a tag key", &t->key, err)) != 0 ||
            (rc = copy_string(s, item, "tags", &t->value, err)) != 0) {
            return rc;
        }
        r->ntags++;
    }
    return 0;
}

/* Sorts the top-level keys into f; unknown keys are errors (duplicates jansson rejects). */
static int collect_fields(json_t *root, struct json_fields *f, struct mr_err *err)
{
    static const char *const keys[] = {"time", "asset", "signal", "value", "quality", "tags"};
    json_t **slots[] = {&f->time, &f->asset, &f->signal, &f->value, &f->quality, &f->tags};
    const char *key;
    size_t klen;
    json_t *item;

    memset(f, 0, sizeof(*f));
    json_object_keylen_foreach(root, key, klen, item)
    {
        size_t k = 0;
        while (k < 6 && !(klen == strlen(keys[k]) && memcmp(key, keys[k], klen) == 0)) {
            k++;
        }
        if (k == 6) {
            return MR_ERR_SET(err, MR_EPARSE, "json: unknown field \"%.*s\"",
                              (int)(klen > 40 ? 40 : klen), key);
        }
        *slots[k] = item;
    }
    return 0;
}

/* jansson's allocator is process-wide: route it through mr_malloc once, so JSON parsing counts
 * against the same fault injection as the rest of libmillrace (and a future memory cap). */
static pthread_once_t jansson_once = PTHREAD_ONCE_INIT;
/* jansson reports an allocation failure as a syntax error (or not at all), so the allocator
 * remembers it for the parse running on this thread. */
static _Thread_local bool jansson_alloc_failed;

static void *jansson_malloc(size_t size)
{
    void *p = mr_malloc(size);
    if (p == NULL) {
        jansson_alloc_failed = true;
    }
    return p;
}

static void jansson_use_mr_alloc(void)
{
    json_set_alloc_funcs(jansson_malloc, mr_free);
}

int mr_record_from_json(struct mr_record *rec, struct mr_names *names, const char *json, size_t len,
                        char *scratch, size_t scratch_cap, struct mr_err *err)
{
    struct scratch s = {.base = scratch, .cap = scratch == NULL ? 0 : scratch_cap, .used = 0};
    struct json_fields f;
    struct mr_record r;
    json_error_t jerr;
    json_t *root = NULL;
    int rc;

    if (rec == NULL || names == NULL || json == NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "json: called without record, names or text");
    }
    pthread_once(&jansson_once, jansson_use_mr_alloc);
    jansson_alloc_failed = false;
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (root == NULL && jansson_alloc_failed) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "json: out of memory while parsing");
        goto out;
    }
    if (root == NULL) {
        rc = MR_ERR_SET(err, MR_EPARSE, "json: %s at line %d column %d", jerr.text, jerr.line,
                        jerr.column);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = MR_ERR_SET(err, MR_EPARSE, "json: a record must be an object");
        goto out;
    }
    if ((rc = collect_fields(root, &f, err)) != 0 ||
        (rc = read_time(f.time, &r.time_ns, err)) != 0 ||
        (rc = read_name(names, f.asset, "asset", &r.asset, err)) != 0 ||
        (rc = read_name(names, f.signal, "signal", &r.signal, err)) != 0 ||
        (rc = read_value(f.value, &s, &r, err)) != 0 ||
        (rc = read_quality(f.quality, &r.quality, err)) != 0 ||
        (rc = read_tags(f.tags, names, &s, &r, err)) != 0) {
        goto out;
    }
    *rec = r;

out:
    json_decref(root);
    return rc;
}
