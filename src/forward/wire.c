/* Store-and-forward wire codec (format: wire.h).
 *
 * The encoder reserves room for the largest header this body can have at the front of its
 * buffer and appends records after it; finish writes the header so that it ends exactly where
 * the records begin (only the count's varint length was unknown), so nothing is moved. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "forward/wire.h"
#include "millrace/alloc.h"
#include "millrace/crc32c.h"
#include "millrace/varint.h"

#define MAGIC_LEN     4u
#define CRC_LEN       4u
#define COUNT_MAX_LEN 3u /* uvarint of 100000 */
#define INITIAL_ALLOC (16u * 1024u)

static bool name_ok(const char *s, size_t len)
{
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

int mr_fwd_encoder_init(struct mr_fwd_encoder *enc, size_t cap)
{
    if (enc == NULL || cap < MR_FWD_MIN_CAP) {
        return MR_EINVAL;
    }
    *enc = (struct mr_fwd_encoder){.cap = cap};
    return 0;
}

void mr_fwd_encoder_fini(struct mr_fwd_encoder *enc)
{
    if (enc != NULL) {
        mr_free(enc->buf);
        enc->buf = NULL;
        enc->alloc = 0;
    }
}

/* Header bytes apart from the count. */
static size_t head_fixed(const struct mr_fwd_encoder *enc)
{
    return MAGIC_LEN + mr_uvarint_len(enc->node_len) + enc->node_len +
           mr_uvarint_len(enc->topic_len) + enc->topic_len + mr_uvarint_len(enc->partition);
}

int mr_fwd_encoder_begin(struct mr_fwd_encoder *enc, const char *node, const char *topic,
                         uint32_t partition)
{
    if (enc == NULL || node == NULL || topic == NULL) {
        return MR_EINVAL;
    }
    size_t nlen = strnlen(node, MR_FWD_NODE_MAX + 1);
    size_t tlen = strnlen(topic, MR_FWD_TOPIC_MAX + 1);
    if (nlen > MR_FWD_NODE_MAX || tlen > MR_FWD_TOPIC_MAX || !name_ok(node, nlen) ||
        !name_ok(topic, tlen)) {
        return MR_EINVAL;
    }
    memcpy(enc->node, node, nlen + 1);
    memcpy(enc->topic, topic, tlen + 1);
    enc->node_len = (uint8_t)nlen;
    enc->topic_len = (uint8_t)tlen;
    enc->partition = partition;
    enc->count = 0;
    enc->last_offset = -1;
    enc->head_len = head_fixed(enc) + COUNT_MAX_LEN;
    enc->used = enc->head_len;
    return 0;
}

/* Make room for `need` more bytes at the end (the caller checked the cap). */
static int reserve(struct mr_fwd_encoder *enc, size_t need)
{
    size_t want = enc->used + need;
    if (want <= enc->alloc) {
        return 0;
    }
    size_t alloc = enc->alloc == 0 ? INITIAL_ALLOC : enc->alloc;
    while (alloc < want) {
        alloc *= 2;
    }
    size_t limit = enc->cap + COUNT_MAX_LEN; /* the reserve may exceed the body by the count */
    if (alloc > limit) {
        alloc = limit;
    }
    uint8_t *grown = mr_realloc(enc->buf, alloc);
    if (grown == NULL) {
        return MR_ENOMEM;
    }
    enc->buf = grown;
    enc->alloc = alloc;
    return 0;
}

/* Bytes the next record adds, checked against the count limit and the cap; 0 when it is fine. */
static int room_for(const struct mr_fwd_encoder *enc, int64_t offset, size_t len, size_t *need)
{
    if (offset < 0 || offset <= enc->last_offset || len == 0 || enc->used == 0) {
        return MR_EINVAL;
    }
    if (enc->count >= MR_FWD_MAX_RECORDS) {
        return MR_ETOOBIG;
    }
    uint64_t delta = enc->count == 0 ? (uint64_t)offset : (uint64_t)(offset - enc->last_offset);
    *need = mr_uvarint_len(delta) + mr_uvarint_len(len) + len;
    size_t body =
        head_fixed(enc) + mr_uvarint_len(enc->count + 1) + (enc->used - enc->head_len) + CRC_LEN;
    if (*need > enc->cap || body > enc->cap - *need) {
        return MR_ETOOBIG;
    }
    return 0;
}

static size_t put_prefix(struct mr_fwd_encoder *enc, int64_t offset, size_t len)
{
    uint64_t delta = enc->count == 0 ? (uint64_t)offset : (uint64_t)(offset - enc->last_offset);
    size_t n = mr_uvarint_put(enc->buf + enc->used, delta);
    n += mr_uvarint_put(enc->buf + enc->used + n, len);
    return n;
}

int mr_fwd_encoder_add(struct mr_fwd_encoder *enc, int64_t offset, const struct mr_record *rec,
                       const struct mr_names *names)
{
    if (enc == NULL || rec == NULL || names == NULL) {
        return MR_EINVAL;
    }
    size_t len = mr_record_encoded_size(rec, names);
    size_t need;
    int rc = room_for(enc, offset, len, &need);
    if (rc == 0) {
        rc = reserve(enc, need);
    }
    if (rc != 0) {
        return rc;
    }
    size_t pre = put_prefix(enc, offset, len);
    long n = mr_record_encode(rec, names, enc->buf + enc->used + pre, len);
    if (n < 0 || (size_t)n != len) {
        return n < 0 ? (int)n : MR_EINVAL;
    }
    enc->used += pre + len;
    enc->count++;
    enc->last_offset = offset;
    return 0;
}

int mr_fwd_encoder_add_raw(struct mr_fwd_encoder *enc, int64_t offset, const uint8_t *value,
                           size_t len)
{
    if (enc == NULL || value == NULL) {
        return MR_EINVAL;
    }
    size_t need;
    int rc = room_for(enc, offset, len, &need);
    if (rc == 0) {
        rc = reserve(enc, need);
    }
    if (rc != 0) {
        return rc;
    }
    size_t pre = put_prefix(enc, offset, len);
    memcpy(enc->buf + enc->used + pre, value, len);
    enc->used += pre + len;
    enc->count++;
    enc->last_offset = offset;
    return 0;
}

int mr_fwd_encoder_finish(struct mr_fwd_encoder *enc, const uint8_t **body, size_t *len)
{
    if (enc == NULL || body == NULL || len == NULL || enc->count == 0 || enc->buf == NULL) {
        return MR_EINVAL;
    }
    int rc = reserve(enc, CRC_LEN);
    if (rc != 0) {
        return rc;
    }
    size_t start = enc->head_len - (head_fixed(enc) + mr_uvarint_len(enc->count));
    uint8_t *p = enc->buf + start;
    memcpy(p, MR_FWD_MAGIC, MAGIC_LEN);
    p += MAGIC_LEN;
    p += mr_uvarint_put(p, enc->node_len);
    memcpy(p, enc->node, enc->node_len);
    p += enc->node_len;
    p += mr_uvarint_put(p, enc->topic_len);
    memcpy(p, enc->topic, enc->topic_len);
    p += enc->topic_len;
    p += mr_uvarint_put(p, enc->partition);
    p += mr_uvarint_put(p, enc->count);
    uint32_t crc = mr_crc32c(0, enc->buf + start, enc->used - start);
    uint8_t *c = enc->buf + enc->used;
    c[0] = (uint8_t)crc;
    c[1] = (uint8_t)(crc >> 8);
    c[2] = (uint8_t)(crc >> 16);
    c[3] = (uint8_t)(crc >> 24);
    *body = enc->buf + start;
    *len = enc->used + CRC_LEN - start;
    return 0;
}

/* ---- decoding ---- */

/* A cursor over the body without its CRC; every read is bounds-checked and says what it read
 * and where when it fails. */
struct rd {
    const uint8_t *buf;
    size_t pos;
    size_t end;
    struct mr_err *err;
};

static int rd_uvarint(struct rd *r, const char *what, uint64_t min, uint64_t max, uint64_t *out)
{
    size_t at = r->pos;
    size_t n = mr_uvarint_get(r->buf + r->pos, r->end - r->pos, out);
    if (n == 0) {
        return MR_ERR_SET(r->err, MR_ECORRUPT,
                          "forward body: %s at byte %zu is truncated or not a valid varint", what,
                          at);
    }
    if (*out < min || *out > max) {
        return MR_ERR_SET(r->err, MR_ECORRUPT,
                          "forward body: %s at byte %zu is %" PRIu64 ", allowed %" PRIu64
                          "..%" PRIu64,
                          what, at, *out, min, max);
    }
    r->pos += n;
    return 0;
}

static int rd_bytes(struct rd *r, const char *what, size_t len, const uint8_t **out)
{
    if (len > r->end - r->pos) {
        return MR_ERR_SET(r->err, MR_ECORRUPT,
                          "forward body: %s at byte %zu needs %zu bytes, only %zu left before "
                          "the CRC",
                          what, r->pos, len, r->end - r->pos);
    }
    *out = r->buf + r->pos;
    r->pos += len;
    return 0;
}

static int rd_name(struct rd *r, const char *what, uint64_t max, char *out)
{
    uint64_t len = 0;
    const uint8_t *p = NULL;
    char label[48];
    snprintf(label, sizeof(label), "%s length", what);
    int rc = rd_uvarint(r, label, 1, max, &len);
    if (rc == 0) {
        rc = rd_bytes(r, what, (size_t)len, &p);
    }
    if (rc != 0) {
        return rc;
    }
    if (!name_ok((const char *)p, (size_t)len)) {
        return MR_ERR_SET(r->err, MR_ECORRUPT,
                          "forward body: %s at byte %zu is not made of A-Z a-z 0-9 . _ -", what,
                          (size_t)(p - r->buf));
    }
    memcpy(out, p, (size_t)len);
    out[len] = '\0';
    return 0;
}

/* Walk the records once: offsets increasing, values inside the body, nothing left over. */
static int check_records(struct rd *r, struct mr_fwd_batch *b)
{
    int64_t offset = -1;
    for (uint32_t i = 0; i < b->count; i++) {
        uint64_t delta, vlen;
        char what[64];
        snprintf(what, sizeof(what), "record %" PRIu32 " offset %s", i,
                 i == 0 ? "(absolute)" : "delta");
        int rc = rd_uvarint(r, what, i == 0 ? 0 : 1,
                            i == 0 ? (uint64_t)INT64_MAX : (uint64_t)(INT64_MAX - offset), &delta);
        if (rc != 0) {
            return rc;
        }
        offset = i == 0 ? (int64_t)delta : offset + (int64_t)delta;
        snprintf(what, sizeof(what), "record %" PRIu32 " value length", i);
        size_t at = r->pos;
        rc = rd_uvarint(r, what, 1, UINT64_MAX, &vlen);
        if (rc != 0) {
            return rc;
        }
        if (vlen > r->end - r->pos) {
            return MR_ERR_SET(r->err, MR_ECORRUPT,
                              "forward body: %s at byte %zu is %" PRIu64
                              ", only %zu bytes left before the CRC",
                              what, at, vlen, r->end - r->pos);
        }
        r->pos += (size_t)vlen;
        if (i == 0) {
            b->first_offset = offset;
        }
    }
    b->last_offset = offset;
    if (r->pos != r->end) {
        return MR_ERR_SET(r->err, MR_ECORRUPT,
                          "forward body: %zu unexpected bytes at byte %zu after record %" PRIu32,
                          r->end - r->pos, r->pos, b->count - 1);
    }
    return 0;
}

static int parse_head(struct rd *r, struct mr_fwd_batch *b)
{
    uint64_t v;
    int rc = rd_name(r, "node", MR_FWD_NODE_MAX, b->node);
    if (rc == 0) {
        rc = rd_name(r, "topic", MR_FWD_TOPIC_MAX, b->topic);
    }
    if (rc == 0) {
        rc = rd_uvarint(r, "partition", 0, UINT32_MAX, &v);
        b->partition = (uint32_t)v;
    }
    if (rc == 0) {
        rc = rd_uvarint(r, "record count", 1, MR_FWD_MAX_RECORDS, &v);
        b->count = (uint32_t)v;
    }
    return rc;
}

int mr_fwd_decode(struct mr_fwd_batch *b, const uint8_t *buf, size_t len, struct mr_err *err)
{
    if (b == NULL || (buf == NULL && len > 0)) {
        return MR_ERR_SET(err, MR_EINVAL, "forward body: missing argument");
    }
    if (len < MAGIC_LEN + CRC_LEN) {
        return MR_ERR_SET(err, MR_ECORRUPT,
                          "forward body: %zu bytes is shorter than magic and CRC (8 bytes)", len);
    }
    if (memcmp(buf, MR_FWD_MAGIC, MAGIC_LEN) != 0) {
        return MR_ERR_SET(err, MR_ECORRUPT,
                          "forward body: bad magic at byte 0 (expected \"MRF1\"): not a "
                          "millrace forward body, or a version this receiver does not know");
    }
    const uint8_t *c = buf + len - CRC_LEN;
    uint32_t want =
        (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
    uint32_t got = mr_crc32c(0, buf, len - CRC_LEN);
    struct mr_fwd_batch tmp = {0};
    struct rd r = {.buf = buf, .pos = MAGIC_LEN, .end = len - CRC_LEN, .err = err};
    int rc = parse_head(&r, &tmp);
    size_t first = r.pos;
    if (rc == 0) {
        rc = check_records(&r, &tmp);
    }
    if (rc != 0) {
        if (err != NULL && got != want) {
            /* Most likely cut short or damaged in transit: say so first, then what broke. */
            char what[sizeof(err->msg)];
            const char *detail = err->msg + strlen("forward body: ");
            snprintf(what, sizeof(what), "%s", strlen(err->msg) > 14 ? detail : err->msg);
            MR_ERR_SET(err, rc, "forward body: CRC mismatch (truncated or damaged); %s", what);
        }
        return rc;
    }
    if (got != want) {
        return MR_ERR_SET(err, MR_ECORRUPT,
                          "forward body: CRC-32C mismatch at byte %zu (body says 0x%08" PRIx32
                          ", bytes 0..%zu give 0x%08" PRIx32 "): damaged in transit",
                          len - CRC_LEN, want, len - CRC_LEN - 1, got);
    }
    tmp.buf = buf;
    tmp.pos = first;
    tmp.index = 0;
    tmp.offset = -1;
    *b = tmp;
    return 0;
}

int mr_fwd_next(struct mr_fwd_batch *b, int64_t *offset, const uint8_t **value, size_t *value_len)
{
    if (b == NULL || b->buf == NULL || b->index >= b->count) {
        return MR_EEOF;
    }
    uint64_t delta = 0, vlen = 0;
    /* Validated by mr_fwd_decode: the varints are complete and the value lies in the body. */
    b->pos += mr_uvarint_get(b->buf + b->pos, MR_VARINT_MAX, &delta);
    b->pos += mr_uvarint_get(b->buf + b->pos, MR_VARINT_MAX, &vlen);
    b->offset = b->index == 0 ? (int64_t)delta : b->offset + (int64_t)delta;
    b->index++;
    if (offset != NULL) {
        *offset = b->offset;
    }
    if (value != NULL) {
        *value = b->buf + b->pos;
    }
    if (value_len != NULL) {
        *value_len = (size_t)vlen;
    }
    b->pos += (size_t)vlen;
    return 0;
}
