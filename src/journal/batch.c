/* Kafka RecordBatch v2 (magic 2): builder and validating parser.
 *
 * Batch (all fixed-width fields big-endian):
 *
 *   0        8        12          16    17     21     23          27         35        43
 *   +--------+--------+-----------+-----+------+------+-----------+----------+---------+
 *   |baseOff |batchLen|leaderEpoch|magic| crc  |attrs |lastOffDelta|baseTs   | maxTs   | ...
 *   | i64    | i32    | i32 (0)   | i8=2| u32  | i16=0| i32        | i64     | i64     |
 *   +--------+--------+-----------+-----+------+------+-----------+----------+---------+
 *   43          51       53        57       61
 *   +-----------+--------+---------+--------+--------------------------------------------+
 *   |producerId |prodEpoch|baseSeq |count   | records ...                                |
 *   | i64 (-1)  | i16(-1)| i32(-1) | i32    |                                            |
 *   +-----------+--------+---------+--------+--------------------------------------------+
 *   batchLen = total size - 12.  crc = CRC-32C over bytes [21, end) (attributes .. last record).
 *   baseOffset is outside the CRC: the journal writes it at append time.
 *
 * Record (varint = zig-zag base-128, as protobuf; timestamps in ms since the epoch):
 *
 *   length varint | attrs i8 | tsDelta varlong | offDelta varint | keyLen varint (-1 null) |
 *   key | valueLen varint (-1 null) | value | headerCount varint |
 *   headers: (keyLen varint | key | valueLen varint (-1 null) | value) * headerCount
 *
 *   length counts the bytes after the length field. tsDelta = timestamp - baseTs,
 *   offDelta = offset - baseOffset.
 */
#include "journal/journal_internal.h"

#include <string.h>

#include "millrace/crc32c.h"
#include "millrace/record.h"
#include "millrace/varint.h"

int mr_batch_builder_init(struct mr_batch_builder *b, void *buf, size_t cap)
{
    if (b == NULL || buf == NULL || cap < MR_BATCH_HEADER_SIZE + 8 || cap > MR_BATCH_MAX_BYTES) {
        return MR_EINVAL;
    }
    b->buf = buf;
    b->cap = cap;
    mr_batch_builder_reset(b);
    return 0;
}

void mr_batch_builder_reset(struct mr_batch_builder *b)
{
    b->len = MR_BATCH_HEADER_SIZE;
    b->count = 0;
    b->base_ts = 0;
    b->max_ts = 0;
    b->finished = false;
}

static size_t bytes_field_len(int32_t len)
{
    return mr_varint_len(len) + (len > 0 ? (size_t)len : 0);
}

static uint8_t *put_bytes_field(uint8_t *p, const void *data, int32_t len)
{
    p += mr_varint_put(p, len);
    if (len > 0) {
        memcpy(p, data, (size_t)len);
        p += len;
    }
    return p;
}

int mr_batch_builder_add(struct mr_batch_builder *b, int64_t timestamp_ms, const void *key,
                         int32_t key_len, const void *value, int32_t value_len,
                         const struct mr_batch_header *headers, size_t header_count)
{
    if (b->finished || key_len < -1 || value_len < -1 || (key_len > 0 && key == NULL) ||
        (value_len > 0 && value == NULL) || (header_count > 0 && headers == NULL) ||
        header_count > INT32_MAX || b->count == INT32_MAX) {
        return MR_EINVAL;
    }
    int64_t base_ts = b->count == 0 ? timestamp_ms : b->base_ts;
    int64_t ts_delta = timestamp_ms - base_ts;
    size_t body = 1 + mr_varint_len(ts_delta) + mr_varint_len(b->count) + bytes_field_len(key_len) +
                  bytes_field_len(value_len) + mr_varint_len((int64_t)header_count);
    for (size_t i = 0; i < header_count; i++) {
        const struct mr_batch_header *h = &headers[i];
        if (h->key_len < 0 || h->value_len < -1 || (h->key_len > 0 && h->key == NULL) ||
            (h->value_len > 0 && h->value == NULL)) {
            return MR_EINVAL;
        }
        body += bytes_field_len(h->key_len) + bytes_field_len(h->value_len);
    }
    if (body > INT32_MAX) {
        return MR_ETOOBIG;
    }
    size_t need = mr_varint_len((int64_t)body) + body;
    if (need > b->cap - b->len) {
        return MR_ETOOBIG;
    }
    uint8_t *p = b->buf + b->len;
    p += mr_varint_put(p, (int64_t)body);
    *p++ = 0; /* record attributes: unused in v2 */
    p += mr_varint_put(p, ts_delta);
    p += mr_varint_put(p, b->count);
    p = put_bytes_field(p, key, key_len);
    p = put_bytes_field(p, value, value_len);
    p += mr_varint_put(p, (int64_t)header_count);
    for (size_t i = 0; i < header_count; i++) {
        p = put_bytes_field(p, headers[i].key, headers[i].key_len);
        p = put_bytes_field(p, headers[i].value, headers[i].value_len);
    }
    b->len += need;
    if (b->count == 0) {
        b->base_ts = timestamp_ms;
        b->max_ts = timestamp_ms;
    } else if (timestamp_ms > b->max_ts) {
        b->max_ts = timestamp_ms;
    }
    b->count++;
    return 0;
}

int mr_batch_builder_finish(struct mr_batch_builder *b, const uint8_t **data, size_t *len)
{
    if (b->count == 0) {
        return MR_EINVAL;
    }
    uint8_t *h = b->buf;
    mr_be64_put(h + 0, 0);
    mr_be32_put(h + 8, (uint32_t)(b->len - 12));
    mr_be32_put(h + 12, 0);
    h[16] = MR_BATCH_MAGIC;
    mr_be16_put(h + 21, 0);
    mr_be32_put(h + 23, (uint32_t)(b->count - 1));
    mr_be64_put(h + 27, (uint64_t)b->base_ts);
    mr_be64_put(h + 35, (uint64_t)b->max_ts);
    mr_be64_put(h + 43, UINT64_MAX); /* producerId -1 */
    mr_be16_put(h + 51, UINT16_MAX); /* producerEpoch -1 */
    mr_be32_put(h + 53, UINT32_MAX); /* baseSequence -1 */
    mr_be32_put(h + 57, (uint32_t)b->count);
    uint32_t crc =
        mr_crc32c(0, h + MR_BATCH_ATTRIBUTES_OFFSET, b->len - MR_BATCH_ATTRIBUTES_OFFSET);
    mr_be32_put(h + MR_BATCH_CRC_OFFSET, crc);
    b->finished = true;
    *data = b->buf;
    *len = b->len;
    return 0;
}

static int batch_parse(const void *buf, size_t len, bool check_crc, struct mr_batch_info *info,
                       struct mr_err *err)
{
    const uint8_t *p = buf;
    if (len < 12) {
        return MR_ERR_SET(err, MR_EEOF, "batch truncated: %zu bytes, header needs 12", len);
    }
    int32_t blen = (int32_t)mr_be32_get(p + 8);
    if (blen < MR_BATCH_HEADER_SIZE - 12) {
        return MR_ERR_SET(err, MR_ECORRUPT, "batch length %d smaller than the header", blen);
    }
    if ((uint32_t)blen > MR_BATCH_MAX_BYTES - 12) {
        return MR_ERR_SET(err, MR_ECORRUPT, "batch length %d above the %u-byte limit", blen,
                          MR_BATCH_MAX_BYTES);
    }
    size_t size = 12 + (size_t)blen;
    if (len > 16 && p[16] != MR_BATCH_MAGIC) {
        return MR_ERR_SET(err, MR_ECORRUPT, "batch magic %d, expected 2", (int)(int8_t)p[16]);
    }
    if (size > len) {
        return MR_ERR_SET(err, MR_EEOF, "batch truncated: %zu of %zu bytes", len, size);
    }
    uint32_t crc = mr_be32_get(p + MR_BATCH_CRC_OFFSET);
    uint32_t calc =
        check_crc ? mr_crc32c(0, p + MR_BATCH_ATTRIBUTES_OFFSET, size - MR_BATCH_ATTRIBUTES_OFFSET)
                  : crc;
    if (crc != calc) {
        return MR_ERR_SET(err, MR_ECORRUPT, "batch CRC mismatch: stored %08x, computed %08x", crc,
                          calc);
    }
    struct mr_batch_info bi;
    bi.base_offset = (int64_t)mr_be64_get(p);
    bi.leader_epoch = (int32_t)mr_be32_get(p + 12);
    bi.crc = crc;
    bi.attributes = (int16_t)mr_be16_get(p + 21);
    bi.last_offset_delta = (int32_t)mr_be32_get(p + 23);
    bi.base_timestamp = (int64_t)mr_be64_get(p + 27);
    bi.max_timestamp = (int64_t)mr_be64_get(p + 35);
    bi.producer_id = (int64_t)mr_be64_get(p + 43);
    bi.producer_epoch = (int16_t)mr_be16_get(p + 51);
    bi.base_sequence = (int32_t)mr_be32_get(p + 53);
    bi.count = (int32_t)mr_be32_get(p + 57);
    bi.records = p + MR_BATCH_HEADER_SIZE;
    bi.records_len = size - MR_BATCH_HEADER_SIZE;
    bi.size = size;
    if (bi.base_offset < 0) {
        return MR_ERR_SET(err, MR_ECORRUPT, "negative base offset %lld", (long long)bi.base_offset);
    }
    if (bi.count < 0 || bi.last_offset_delta < 0 ||
        (bi.count > 0 && bi.last_offset_delta < bi.count - 1)) {
        return MR_ERR_SET(err, MR_ECORRUPT, "record count %d and last offset delta %d disagree",
                          bi.count, bi.last_offset_delta);
    }
    if (bi.base_offset > INT64_MAX - bi.last_offset_delta) {
        return MR_ERR_SET(err, MR_ECORRUPT, "offsets overflow");
    }
    /* The smallest record is 7 bytes (length, attrs, tsDelta, offDelta, key, value, headers). */
    if ((bi.attributes & 0x7) == 0 && (uint64_t)bi.count * 7 > bi.records_len) {
        return MR_ERR_SET(err, MR_ECORRUPT, "record count %d cannot fit in %zu bytes", bi.count,
                          bi.records_len);
    }
    *info = bi;
    return 0;
}

int mr_batch_parse(const void *buf, size_t len, struct mr_batch_info *info, struct mr_err *err)
{
    return batch_parse(buf, len, true, info, err);
}

int mr_batch_parse_trusted(const void *buf, size_t len, struct mr_batch_info *info)
{
    return batch_parse(buf, len, false, info, NULL);
}

int mr_batch_validate(const void *buf, size_t len, struct mr_batch_info *info, struct mr_err *err)
{
    struct mr_batch_info bi;
    int rc = mr_batch_parse(buf, len, &bi, err);
    if (rc != 0) {
        return rc;
    }
    struct mr_batch_iter it;
    struct mr_batch_record rec;
    mr_batch_iter_init(&it, &bi);
    while ((rc = mr_batch_iter_next(&it, &rec, err)) == 0) {
    }
    if (rc != MR_EEOF) {
        return rc;
    }
    *info = bi;
    return 0;
}

void mr_batch_iter_init(struct mr_batch_iter *it, const struct mr_batch_info *info)
{
    it->info = info;
    it->pos = 0;
    it->index = 0;
    it->last_delta = -1;
}

/* Read a varint-length-prefixed byte field inside [*pos, end). */
static int get_bytes_field(const uint8_t *base, size_t *pos, size_t end, const uint8_t **data,
                           int32_t *len)
{
    int64_t v;
    size_t n = mr_varint_get(base + *pos, end - *pos, &v);
    if (n == 0 || v < -1 || v > (int64_t)(end - *pos - n)) {
        return MR_ECORRUPT;
    }
    *pos += n;
    *data = v > 0 ? base + *pos : NULL;
    *len = (int32_t)v;
    if (v > 0) {
        *pos += (size_t)v;
    }
    return 0;
}

static int get_varint(const uint8_t *base, size_t *pos, size_t end, int64_t *v)
{
    size_t n = mr_varint_get(base + *pos, end - *pos, v);
    if (n == 0) {
        return MR_ECORRUPT;
    }
    *pos += n;
    return 0;
}

/* Parse one record whose body spans [pos, end) of recs. */
static int parse_record(const struct mr_batch_info *bi, size_t pos, size_t end,
                        struct mr_batch_record *rec, int64_t *delta, struct mr_err *err)
{
    const uint8_t *recs = bi->records;
    int64_t ts_delta, off_delta, hcount;
    if (pos >= end) {
        return MR_ERR_SET(err, MR_ECORRUPT, "empty record");
    }
    rec->attributes = (int8_t)recs[pos++];
    if (get_varint(recs, &pos, end, &ts_delta) != 0 ||
        get_varint(recs, &pos, end, &off_delta) != 0) {
        return MR_ERR_SET(err, MR_ECORRUPT, "bad timestamp or offset delta varint");
    }
    if (get_bytes_field(recs, &pos, end, &rec->key, &rec->key_len) != 0) {
        return MR_ERR_SET(err, MR_ECORRUPT, "bad key length");
    }
    if (get_bytes_field(recs, &pos, end, &rec->value, &rec->value_len) != 0) {
        return MR_ERR_SET(err, MR_ECORRUPT, "bad value length");
    }
    if (get_varint(recs, &pos, end, &hcount) != 0 || hcount < 0 || hcount > (int64_t)(end - pos)) {
        return MR_ERR_SET(err, MR_ECORRUPT, "bad header count");
    }
    rec->headers = recs + pos;
    for (int64_t i = 0; i < hcount; i++) {
        const uint8_t *d;
        int32_t l;
        if (get_bytes_field(recs, &pos, end, &d, &l) != 0 || l < 0 ||
            get_bytes_field(recs, &pos, end, &d, &l) != 0) {
            return MR_ERR_SET(err, MR_ECORRUPT, "bad header %lld", (long long)i);
        }
    }
    if (pos != end) {
        return MR_ERR_SET(err, MR_ECORRUPT, "record length disagrees with its fields");
    }
    rec->headers_len = (size_t)(recs + pos - rec->headers);
    rec->header_count = (uint32_t)hcount;
    if (off_delta < 0 || off_delta > bi->last_offset_delta) {
        return MR_ERR_SET(err, MR_ECORRUPT, "offset delta %lld outside the batch",
                          (long long)off_delta);
    }
    /* Wrapping arithmetic: a hostile delta must not be undefined behaviour. */
    rec->timestamp = (int64_t)((uint64_t)bi->base_timestamp + (uint64_t)ts_delta);
    rec->offset = bi->base_offset + off_delta;
    *delta = off_delta;
    return 0;
}

int mr_batch_iter_next(struct mr_batch_iter *it, struct mr_batch_record *rec, struct mr_err *err)
{
    const struct mr_batch_info *bi = it->info;
    if ((bi->attributes & 0x7) != 0) {
        return MR_ERR_SET(err, MR_ENOTSUP, "compressed batch (codec %d)", bi->attributes & 0x7);
    }
    if (it->index >= bi->count) {
        if (it->pos != bi->records_len) {
            return MR_ERR_SET(err, MR_ECORRUPT, "%zu bytes after the last of %d records",
                              bi->records_len - it->pos, bi->count);
        }
        return MR_EEOF;
    }
    int64_t len;
    size_t pos = it->pos;
    if (get_varint(bi->records, &pos, bi->records_len, &len) != 0 || len <= 0 ||
        len > (int64_t)(bi->records_len - pos)) {
        return MR_ERR_SET(err, MR_ECORRUPT, "record %d: bad length", it->index);
    }
    int64_t delta = 0;
    struct mr_batch_record r;
    int rc = parse_record(bi, pos, pos + (size_t)len, &r, &delta, err);
    if (rc != 0) {
        return rc;
    }
    if (delta <= it->last_delta) {
        return MR_ERR_SET(err, MR_ECORRUPT, "record %d: offset delta %lld not increasing",
                          it->index, (long long)delta);
    }
    it->last_delta = delta;
    it->pos = pos + (size_t)len;
    it->index++;
    *rec = r;
    return 0;
}

int mr_batch_header_next(const struct mr_batch_record *rec, size_t *pos,
                         struct mr_batch_header *out)
{
    if (*pos >= rec->headers_len) {
        return MR_EEOF;
    }
    const uint8_t *k, *v;
    int32_t kl, vl;
    size_t p = *pos;
    if (get_bytes_field(rec->headers, &p, rec->headers_len, &k, &kl) != 0 || kl < 0 ||
        get_bytes_field(rec->headers, &p, rec->headers_len, &v, &vl) != 0) {
        return MR_ECORRUPT;
    }
    out->key = (const char *)k;
    out->key_len = kl;
    out->value = v;
    out->value_len = vl;
    *pos = p;
    return 0;
}

bool mr_batch_record_is_millrace(const struct mr_batch_record *rec)
{
    size_t pos = 0;
    struct mr_batch_header h;
    const size_t klen = sizeof(MR_RECORD_HEADER_KEY) - 1;
    const size_t vlen = sizeof(MR_RECORD_HEADER_VALUE) - 1;
    while (mr_batch_header_next(rec, &pos, &h) == 0) {
        if (h.key_len >= 0 && (size_t)h.key_len == klen &&
            memcmp(h.key, MR_RECORD_HEADER_KEY, klen) == 0) {
            return h.value_len >= 0 && (size_t)h.value_len == vlen &&
                   memcmp(h.value, MR_RECORD_HEADER_VALUE, vlen) == 0;
        }
    }
    return false;
}
