/* Binary record encoding: the value of a Kafka record in the journal.
 *
 * Version 1. Fixed-width numbers are little-endian; varints are the Kafka/protobuf ones of
 * millrace/varint.h (signed values zig-zag encoded).
 *
 *   0         1         2         3         4
 *   +---------+---------+---------+---------+----------------------+
 *   | version |  type   | quality |  ntags  | time_ns              |
 *   |  u8 = 1 | u8 1..5 | u8 0..2 | u8 0..16| varint (zig-zag)     |
 *   +---------+---------+---------+---------+----------------------+
 *   | asset_len: uvarint  | asset bytes (1.., no NUL)              |
 *   +---------------------+----------------------------------------+
 *   | signal_len: uvarint | signal bytes (1.., no NUL)             |
 *   +---------------------+----------------------------------------+
 *   | value, by type:                                              |
 *   |   1 f64      8 bytes IEEE 754 binary64 LE (NaN bits kept)     |
 *   |   2 i64      varint (zig-zag)                                |
 *   |   3 bool     u8 0 | 1                                        |
 *   |   4 string   uvarint len | len bytes (any bytes)             |
 *   |   5 samples  f64 rate_hz LE (finite, > 0) | uvarint n        |
 *   |              (n <= MR_RECORD_MAX_SAMPLES) | n x f32 LE       |
 *   +--------------------------------------------------------------+
 *   | ntags x { uvarint klen | key bytes (1.., no NUL, distinct)    |
 *   |           uvarint vlen | value bytes (any bytes) }            |
 *   +--------------------------------------------------------------+
 *
 * Names travel as strings, not ids: ids are private to one process's names table, and the
 * journal is read by other processes (and after restarts). The decoder interns them.
 *
 * The encoding is canonical: varints must be minimal and nothing may follow the last tag, so a
 * record has exactly one encoding and decode(encode(r)) == r byte for byte (the fuzzer checks).
 * A version byte other than 1 is rejected; a future version 2 bumps it and keeps 1 readable.
 *
 * Neither direction allocates: strings, sample blocks and tag values are borrowed from the
 * input buffer, names are interned (no allocation when already known).
 */
#include <math.h>
#include <string.h>

#include "millrace/record.h"
#include "millrace/varint.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
/* Decoded sample blocks are borrowed from the buffer as host floats. */
#error "millrace's record codec assumes a little-endian host"
#endif

#define RECORD_VERSION 1u
#define HEADER_BYTES   4u

const char *mr_quality_name(enum mr_quality q)
{
    switch (q) {
    case MR_QUALITY_GOOD:
        return "good";
    case MR_QUALITY_UNCERTAIN:
        return "uncertain";
    case MR_QUALITY_BAD:
        return "bad";
    }
    return "unknown";
}

const char *mr_value_type_name(enum mr_value_type t)
{
    switch (t) {
    case MR_VALUE_F64:
        return "f64";
    case MR_VALUE_I64:
        return "i64";
    case MR_VALUE_BOOL:
        return "bool";
    case MR_VALUE_STRING:
        return "string";
    case MR_VALUE_SAMPLES:
        return "samples";
    }
    return "unknown";
}

/* ---- encoding ---------------------------------------------------------------------------- */

/* Everything encode needs, resolved and validated once. */
struct enc_plan {
    const char *asset, *signal;
    size_t asset_len, signal_len;
    const char *keys[MR_RECORD_MAX_TAGS];
    size_t key_lens[MR_RECORD_MAX_TAGS];
    size_t size;
};

static inline size_t len_prefixed(size_t len)
{
    return mr_uvarint_len(len) + len;
}

static size_t value_size(const struct mr_record *rec)
{
    switch (rec->type) {
    case MR_VALUE_F64:
        return 8;
    case MR_VALUE_I64:
        return mr_varint_len(rec->v.i64);
    case MR_VALUE_BOOL:
        return 1;
    case MR_VALUE_STRING:
        return len_prefixed(rec->v.str.len);
    case MR_VALUE_SAMPLES:
        return 8 + mr_uvarint_len(rec->v.samples.n) + (size_t)rec->v.samples.n * 4;
    default:
        return 0;
    }
}

static bool value_valid(const struct mr_record *rec)
{
    switch (rec->type) {
    case MR_VALUE_F64:
    case MR_VALUE_I64:
    case MR_VALUE_BOOL:
        return true;
    case MR_VALUE_STRING:
        return rec->v.str.ptr != NULL || rec->v.str.len == 0;
    case MR_VALUE_SAMPLES: {
        const struct mr_samples *s = &rec->v.samples;
        return s->n <= MR_RECORD_MAX_SAMPLES && (s->data != NULL || s->n == 0) &&
               isfinite(s->rate_hz) && s->rate_hz > 0;
    }
    default:
        return false;
    }
}

/* Returns 0 and fills plan, or MR_EINVAL for a record the decoder would not accept back. */
static int plan_record(const struct mr_record *rec, const struct mr_names *names,
                       struct enc_plan *plan)
{
    if (rec == NULL || names == NULL || rec->quality > MR_QUALITY_BAD ||
        rec->ntags > MR_RECORD_MAX_TAGS || !value_valid(rec)) {
        return MR_EINVAL;
    }
    plan->asset = mr_names_str(names, rec->asset, &plan->asset_len);
    plan->signal = mr_names_str(names, rec->signal, &plan->signal_len);
    if (plan->asset == NULL || plan->signal == NULL) {
        return MR_EINVAL;
    }
    size_t size = HEADER_BYTES + mr_varint_len(rec->time_ns) + len_prefixed(plan->asset_len) +
                  len_prefixed(plan->signal_len) + value_size(rec);
    for (uint16_t i = 0; i < rec->ntags; i++) {
        const struct mr_tag *t = &rec->tags[i];
        plan->keys[i] = mr_names_str(names, t->key, &plan->key_lens[i]);
        if (plan->keys[i] == NULL || (t->value.ptr == NULL && t->value.len != 0)) {
            return MR_EINVAL;
        }
        for (uint16_t j = 0; j < i; j++) {
            if (rec->tags[j].key == t->key) {
                return MR_EINVAL; /* a tag set is a map: one value per key */
            }
        }
        size += len_prefixed(plan->key_lens[i]) + len_prefixed(t->value.len);
    }
    plan->size = size;
    return 0;
}

size_t mr_record_encoded_size(const struct mr_record *rec, const struct mr_names *names)
{
    struct enc_plan plan;
    if (plan_record(rec, names, &plan) != 0) {
        return 0;
    }
    return plan.size;
}

static inline uint8_t *put_f64(uint8_t *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(bits >> (8 * i));
    }
    return p + 8;
}

static inline uint8_t *put_bytes(uint8_t *p, const void *bytes, size_t len)
{
    p += mr_uvarint_put(p, len);
    if (len != 0) {
        memcpy(p, bytes, len);
    }
    return p + len;
}

static uint8_t *put_value(uint8_t *p, const struct mr_record *rec)
{
    switch (rec->type) {
    case MR_VALUE_F64:
        return put_f64(p, rec->v.f64);
    case MR_VALUE_I64:
        return p + mr_varint_put(p, rec->v.i64);
    case MR_VALUE_BOOL:
        *p = rec->v.b ? 1 : 0;
        return p + 1;
    case MR_VALUE_STRING:
        return put_bytes(p, rec->v.str.ptr, rec->v.str.len);
    case MR_VALUE_SAMPLES:
        p = put_f64(p, rec->v.samples.rate_hz);
        p += mr_uvarint_put(p, rec->v.samples.n);
        if (rec->v.samples.n != 0) {
            /* Host floats are little-endian IEEE binary32 (checked above): one copy. */
            memcpy(p, rec->v.samples.data, (size_t)rec->v.samples.n * 4);
        }
        return p + (size_t)rec->v.samples.n * 4;
    default:
        return p;
    }
}

long mr_record_encode(const struct mr_record *rec, const struct mr_names *names, uint8_t *out,
                      size_t cap)
{
    struct enc_plan plan;
    int rc = plan_record(rec, names, &plan);
    if (rc != 0) {
        return rc;
    }
    if (out == NULL || cap < plan.size) {
        return MR_ETOOBIG;
    }
    uint8_t *p = out;
    p[0] = RECORD_VERSION;
    p[1] = rec->type;
    p[2] = rec->quality;
    p[3] = (uint8_t)rec->ntags;
    p += HEADER_BYTES;
    p += mr_varint_put(p, rec->time_ns);
    p = put_bytes(p, plan.asset, plan.asset_len);
    p = put_bytes(p, plan.signal, plan.signal_len);
    p = put_value(p, rec);
    for (uint16_t i = 0; i < rec->ntags; i++) {
        p = put_bytes(p, plan.keys[i], plan.key_lens[i]);
        p = put_bytes(p, rec->tags[i].value.ptr, rec->tags[i].value.len);
    }
    return (long)(p - out);
}

/* ---- decoding ---------------------------------------------------------------------------- */

_Static_assert(sizeof(float) == 4, "samples are IEEE binary32");

/* Reading position in untrusted input; every read checks the bytes left first. */
struct cursor {
    const uint8_t *in;
    size_t len;
    size_t pos;
    struct mr_err *err;
};

struct span {
    const char *ptr;
    size_t len;
};

static int cur_truncated(struct cursor *c, const char *what, uint64_t need)
{
    return MR_ERR_SET(c->err, MR_ECORRUPT,
                      "record: truncated at byte %zu reading %s (need %llu bytes, %zu left)",
                      c->pos, what, (unsigned long long)need, c->len - c->pos);
}

static int cur_u8(struct cursor *c, const char *what, uint8_t *v)
{
    if (c->pos >= c->len) {
        return cur_truncated(c, what, 1);
    }
    *v = c->in[c->pos++];
    return 0;
}

/* Minimal-length varints only, so that every record has exactly one encoding. */
static int cur_uvarint(struct cursor *c, const char *what, uint64_t *v)
{
    uint64_t u = 0;
    size_t n = mr_uvarint_get(c->in + c->pos, c->len - c->pos, &u);
    if (n == 0) {
        if (c->len - c->pos >= MR_VARINT_MAX) {
            return MR_ERR_SET(c->err, MR_ECORRUPT, "record: malformed varint for %s at byte %zu",
                              what, c->pos);
        }
        return cur_truncated(c, what, c->len - c->pos + 1);
    }
    if (n != mr_uvarint_len(u)) {
        return MR_ERR_SET(c->err, MR_ECORRUPT, "record: non-minimal varint for %s at byte %zu",
                          what, c->pos);
    }
    c->pos += n;
    *v = u;
    return 0;
}

static int cur_take(struct cursor *c, const char *what, uint64_t n, const uint8_t **p)
{
    if (n > c->len - c->pos) {
        return cur_truncated(c, what, n);
    }
    *p = c->in + c->pos;
    c->pos += (size_t)n;
    return 0;
}

static int cur_f64(struct cursor *c, const char *what, double *v)
{
    const uint8_t *p = NULL;
    int rc = cur_take(c, what, 8, &p);
    if (rc != 0) {
        return rc;
    }
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) {
        bits |= (uint64_t)p[i] << (8 * i);
    }
    memcpy(v, &bits, 8);
    return 0;
}

/* uvarint length + that many bytes, borrowed. */
static int cur_bytes(struct cursor *c, const char *what, struct mr_bytes *b)
{
    uint64_t n = 0;
    const uint8_t *p = NULL;
    int rc = cur_uvarint(c, what, &n);
    if (rc != 0) {
        return rc;
    }
    if (n > UINT32_MAX) {
        return MR_ERR_SET(c->err, MR_ECORRUPT, "record: %s length %llu too large at byte %zu", what,
                          (unsigned long long)n, c->pos);
    }
    rc = cur_take(c, what, n, &p);
    if (rc != 0) {
        return rc;
    }
    b->ptr = (const char *)p;
    b->len = (uint32_t)n;
    return 0;
}

/* A name: non-empty, no NUL (the names table's rules, checked before anything is interned). */
static int cur_name(struct cursor *c, const char *what, struct span *s)
{
    size_t at = c->pos;
    struct mr_bytes b;
    int rc = cur_bytes(c, what, &b);
    if (rc != 0) {
        return rc;
    }
    if (b.len == 0) {
        return MR_ERR_SET(c->err, MR_ECORRUPT, "record: empty %s at byte %zu", what, at);
    }
    if (memchr(b.ptr, '\0', b.len) != NULL) {
        return MR_ERR_SET(c->err, MR_ECORRUPT, "record: %s contains NUL at byte %zu", what, at);
    }
    s->ptr = b.ptr;
    s->len = b.len;
    return 0;
}

static int decode_samples(struct cursor *c, struct mr_samples *s)
{
    size_t at = c->pos;
    uint64_t n = 0;
    const uint8_t *p = NULL;
    int rc = cur_f64(c, "sample rate", &s->rate_hz);
    if (rc != 0) {
        return rc;
    }
    if (!isfinite(s->rate_hz) || s->rate_hz <= 0) {
        return MR_ERR_SET(c->err, MR_ECORRUPT,
                          "record: sample rate %g at byte %zu is not a positive finite number",
                          s->rate_hz, at);
    }
    at = c->pos;
    rc = cur_uvarint(c, "sample count", &n);
    if (rc != 0) {
        return rc;
    }
    if (n > MR_RECORD_MAX_SAMPLES) {
        return MR_ERR_SET(c->err, MR_ECORRUPT,
                          "record: %llu samples at byte %zu exceed the limit of %u",
                          (unsigned long long)n, at, MR_RECORD_MAX_SAMPLES);
    }
    rc = cur_take(c, "samples", n * 4, &p);
    if (rc != 0) {
        return rc;
    }
    s->data = (const float *)(const void *)p; /* may be unaligned: readers memcpy */
    s->n = (uint32_t)n;
    return 0;
}

static int decode_value(struct cursor *c, struct mr_record *r)
{
    size_t at = c->pos;
    uint64_t u = 0;
    uint8_t b = 0;
    int rc;

    switch (r->type) {
    case MR_VALUE_F64:
        return cur_f64(c, "f64 value", &r->v.f64);
    case MR_VALUE_I64:
        rc = cur_uvarint(c, "i64 value", &u);
        if (rc == 0) {
            r->v.i64 = mr_zigzag_decode(u);
        }
        return rc;
    case MR_VALUE_BOOL:
        rc = cur_u8(c, "bool value", &b);
        if (rc == 0 && b > 1) {
            return MR_ERR_SET(c->err, MR_ECORRUPT, "record: bool value %u at byte %zu is not 0/1",
                              b, at);
        }
        r->v.b = b == 1;
        return rc;
    case MR_VALUE_STRING:
        return cur_bytes(c, "string value", &r->v.str);
    case MR_VALUE_SAMPLES:
        return decode_samples(c, &r->v.samples);
    default:
        return MR_ERR_SET(c->err, MR_ECORRUPT, "record: unknown value type %u at byte 1", r->type);
    }
}

static int decode_header(struct cursor *c, struct mr_record *r)
{
    uint8_t version = 0, ntags = 0;
    uint64_t t = 0;
    int rc;

    if ((rc = cur_u8(c, "version", &version)) != 0 || (rc = cur_u8(c, "type", &r->type)) != 0 ||
        (rc = cur_u8(c, "quality", &r->quality)) != 0 || (rc = cur_u8(c, "ntags", &ntags)) != 0) {
        return rc;
    }
    if (version != RECORD_VERSION) {
        return MR_ERR_SET(c->err, MR_ECORRUPT, "record: unknown version %u at byte 0", version);
    }
    if (r->type < MR_VALUE_F64 || r->type > MR_VALUE_SAMPLES) {
        return MR_ERR_SET(c->err, MR_ECORRUPT, "record: unknown value type %u at byte 1", r->type);
    }
    if (r->quality > MR_QUALITY_BAD) {
        return MR_ERR_SET(c->err, MR_ECORRUPT, "record: unknown quality %u at byte 2", r->quality);
    }
    if (ntags > MR_RECORD_MAX_TAGS) {
        return MR_ERR_SET(c->err, MR_ECORRUPT, "record: %u tags at byte 3 exceed the limit of %d",
                          ntags, MR_RECORD_MAX_TAGS);
    }
    r->ntags = ntags;
    rc = cur_uvarint(c, "time", &t);
    if (rc == 0) {
        r->time_ns = mr_zigzag_decode(t);
    }
    return rc;
}

/* Interns the names only once the whole record has been validated, so corrupt input does not
 * fill the names table with garbage. */
static int intern_names(struct cursor *c, struct mr_record *r, struct mr_names *names,
                        struct mr_names_memo *memo, const struct span *asset,
                        const struct span *signal, const struct span *keys)
{
    int rc = mr_names_intern_memo(names, memo, asset->ptr, asset->len, &r->asset);
    if (rc == 0) {
        rc = mr_names_intern_memo(names, memo, signal->ptr, signal->len, &r->signal);
    }
    for (uint16_t i = 0; rc == 0 && i < r->ntags; i++) {
        rc = mr_names_intern_memo(names, memo, keys[i].ptr, keys[i].len, &r->tags[i].key);
        for (uint16_t j = 0; rc == 0 && j < i; j++) {
            if (r->tags[j].key == r->tags[i].key) {
                return MR_ERR_SET(c->err, MR_ECORRUPT, "record: duplicate tag key \"%.*s\"",
                                  (int)(keys[i].len > 64 ? 64 : keys[i].len), keys[i].ptr);
            }
        }
    }
    if (rc != 0) {
        return MR_ERR_SET(c->err, rc, "record: cannot intern name: %s", mr_strerror(rc));
    }
    return 0;
}

int mr_record_decode(struct mr_record *rec, struct mr_names *names, const uint8_t *in, size_t len,
                     struct mr_err *err)
{
    return mr_record_decode_memo(rec, names, NULL, in, len, err);
}

int mr_record_decode_memo(struct mr_record *rec, struct mr_names *names, struct mr_names_memo *memo,
                          const uint8_t *in, size_t len, struct mr_err *err)
{
    struct cursor c = {.in = in, .len = len, .pos = 0, .err = err};
    struct mr_record r;
    struct span asset, signal, keys[MR_RECORD_MAX_TAGS];
    int rc;

    if (rec == NULL || names == NULL || (in == NULL && len != 0)) {
        return MR_ERR_SET(err, MR_EINVAL, "record: decode called without record, names or input");
    }
    if ((rc = decode_header(&c, &r)) != 0 || (rc = cur_name(&c, "asset", &asset)) != 0 ||
        (rc = cur_name(&c, "signal", &signal)) != 0 || (rc = decode_value(&c, &r)) != 0) {
        return rc;
    }
    for (uint16_t i = 0; i < r.ntags; i++) {
        if ((rc = cur_name(&c, "tag key", &keys[i])) != 0 ||
            (rc = cur_bytes(&c, "tag value", &r.tags[i].value)) != 0) {
            return rc;
        }
    }
    if (c.pos != len) {
        return MR_ERR_SET(err, MR_ECORRUPT, "record: %zu trailing bytes at byte %zu", len - c.pos,
                          c.pos);
    }
    rc = intern_names(&c, &r, names, memo, &asset, &signal, keys);
    if (rc != 0) {
        return rc;
    }
    *rec = r;
    return 0;
}
