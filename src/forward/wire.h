/* Store-and-forward wire codec: the body of one POST from a `forward` output to a `receive`
 * input (before Content-Encoding). One body carries one run of records of one journal partition,
 * each with its offset there, so the receiver can keep every record exactly once.
 *
 * Version 1 ("MRF1"); varints are the unsigned ones of millrace/varint.h:
 *
 *   +--------+-----------------+-----------+------------------+------------+
 *   | "MRF1" | uvarint node_len| node      | uvarint topic_len| topic      |
 *   | 4 bytes| 1..255          | [A-Za-z0-9._-]               | 1..249     |
 *   +--------+-----------------+-----------+------------------+------------+
 *   | uvarint partition (< 2^32) | uvarint count (1..100000)               |
 *   +----------------------------+-----------------------------------------+
 *   | count x { uvarint offset_delta | uvarint value_len | value bytes }    |
 *   |   offset_delta: the first record's absolute offset (0..2^63-1), then  |
 *   |   offset minus the previous offset (>= 1: offsets strictly increase)  |
 *   |   value: the record in millrace's binary encoding (record.h), >= 1 B  |
 *   +-----------------------------------------------------------------------+
 *   | u32 CRC-32C, little-endian, over every byte before it                |
 *   +-----------------------------------------------------------------------+
 *
 * Neither side allocates per record: the encoder appends into one buffer that grows up to a hard
 * cap (the request size); the decoder validates a whole body first, then walks it in place.
 */
#ifndef MILLRACE_FORWARD_WIRE_H
#define MILLRACE_FORWARD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "millrace/error.h"
#include "millrace/names.h"
#include "millrace/record.h"

#define MR_FWD_MAGIC        "MRF1"
#define MR_FWD_NODE_MAX     255u
#define MR_FWD_TOPIC_MAX    249u
#define MR_FWD_MAX_RECORDS  100000u
/* Smallest body the encoder accepts as a cap: the largest header, one small record, the CRC. */
#define MR_FWD_MIN_CAP      1024u
/* Media type of the body. */
#define MR_FWD_CONTENT_TYPE "application/x-millrace-forward"

/* ---- encoding ---- */

struct mr_fwd_encoder {
    uint8_t *buf;    /* header area (reserved, filled by finish) then records, then the CRC */
    size_t alloc;    /* bytes allocated */
    size_t cap;      /* hard cap on one finished body */
    size_t used;     /* end of the records written so far */
    size_t head_len; /* bytes the header will take (known at begin, except the count) */
    uint32_t count;
    int64_t last_offset;
    uint32_t partition;
    uint8_t node_len;
    uint8_t topic_len;
    char node[MR_FWD_NODE_MAX + 1];
    char topic[MR_FWD_TOPIC_MAX + 1];
};

/* Caller-owned storage; cap (>= MR_FWD_MIN_CAP) bounds every finished body. Allocates nothing
 * yet (the buffer grows on demand). Returns 0 or MR_EINVAL. */
int mr_fwd_encoder_init(struct mr_fwd_encoder *enc, size_t cap);
/* Start a body for one partition. node: 1..255 of [A-Za-z0-9._-]; topic: 1..249 of the same
 * (a journal topic name). Discards anything added before. Returns 0 or MR_EINVAL. */
int mr_fwd_encoder_begin(struct mr_fwd_encoder *enc, const char *node, const char *topic,
                         uint32_t partition);
/* Append one record at its journal offset (>= 0, greater than the previous one). Returns 0;
 * MR_ETOOBIG when it would take the body past the cap or past MR_FWD_MAX_RECORDS (nothing
 * added: finish and send what is there, then begin again; with nothing added yet, the record
 * alone is larger than the cap); MR_EINVAL for a bad offset or a record mr_record_encode
 * rejects; MR_ENOMEM. */
int mr_fwd_encoder_add(struct mr_fwd_encoder *enc, int64_t offset, const struct mr_record *rec,
                       const struct mr_names *names);
/* The same with a record already in binary encoding (len >= 1 bytes, copied). */
int mr_fwd_encoder_add_raw(struct mr_fwd_encoder *enc, int64_t offset, const uint8_t *value,
                           size_t len);
/* Records added since begin. */
static inline uint32_t mr_fwd_encoder_count(const struct mr_fwd_encoder *enc)
{
    return enc->count;
}
/* Complete the body (header and CRC); *body (owned by the encoder, valid until the next begin,
 * add or fini) and *len receive it. Returns 0, or MR_EINVAL when nothing was added (a body holds
 * at least one record). */
int mr_fwd_encoder_finish(struct mr_fwd_encoder *enc, const uint8_t **body, size_t *len);
void mr_fwd_encoder_fini(struct mr_fwd_encoder *enc);

/* ---- decoding ---- */

struct mr_fwd_batch {
    char node[MR_FWD_NODE_MAX + 1]; /* NUL-terminated */
    char topic[MR_FWD_TOPIC_MAX + 1];
    uint32_t partition;
    uint32_t count;
    int64_t first_offset;
    int64_t last_offset;
    /* iteration state */
    const uint8_t *buf; /* borrowed: the body passed to mr_fwd_decode */
    size_t pos;
    uint32_t index;
    int64_t offset;
};

/* Validate a whole body: magic, every length and count, offsets strictly increasing, values
 * inside the body, nothing left over, CRC. Returns 0 (then iterate with mr_fwd_next; b borrows
 * buf) or MR_ECORRUPT with err saying what is wrong at which byte. Never reads past len. */
int mr_fwd_decode(struct mr_fwd_batch *b, const uint8_t *buf, size_t len, struct mr_err *err);
/* Next record of a decoded body, in order: its offset and its value (borrowed from the body).
 * Returns 0, or MR_EEOF after the last one. */
int mr_fwd_next(struct mr_fwd_batch *b, int64_t *offset, const uint8_t **value, size_t *value_len);

#endif
