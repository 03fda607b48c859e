/* Variable-length integers as Kafka RecordBatch v2 and protobuf use them: 7 bits per byte,
 * least significant group first, high bit set on every byte but the last. Signed values are
 * zig-zag encoded first so small negative numbers stay short.
 *
 * Encoders write at most MR_VARINT_MAX bytes and return how many they wrote. Decoders return
 * the bytes consumed, or 0 when the input is truncated or longer than 10 bytes (malformed).
 */
#ifndef MILLRACE_VARINT_H
#define MILLRACE_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define MR_VARINT_MAX 10

static inline uint64_t mr_zigzag_encode(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t mr_zigzag_decode(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static inline size_t mr_uvarint_put(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static inline size_t mr_varint_put(uint8_t *out, int64_t v)
{
    return mr_uvarint_put(out, mr_zigzag_encode(v));
}

/* Bytes mr_varint_put would write for v. */
static inline size_t mr_uvarint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline size_t mr_varint_len(int64_t v)
{
    return mr_uvarint_len(mr_zigzag_encode(v));
}

static inline size_t mr_uvarint_get(const uint8_t *in, size_t avail, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < avail && i < MR_VARINT_MAX; i++) {
        uint8_t b = in[i];
        if (i == 9 && b > 1) {
            return 0; /* would overflow 64 bits */
        }
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

static inline size_t mr_varint_get(const uint8_t *in, size_t avail, int64_t *out)
{
    uint64_t u;
    size_t n = mr_uvarint_get(in, avail, &u);
    if (n != 0) {
        *out = mr_zigzag_decode(u);
    }
    return n;
}

#endif
