/* The record: one observation from the plant.
 *
 *   event time (ns since the Unix epoch, UTC)
 *   asset path (ISA-95: site/area/line/machine), interned
 *   signal name, interned
 *   value: f64 | i64 | bool | string | block of f32 samples with a sample rate
 *   quality: good | uncertain | bad (OPC UA's three classes)
 *   tags: up to MR_RECORD_MAX_TAGS key=value pairs (keys interned, values borrowed bytes)
 *
 * Records are small structs that borrow their variable-size parts (string values, sample
 * blocks, tag values) from a buffer owned by whoever produced them (a decoded journal batch, an
 * input's read buffer). Nothing here allocates per record.
 *
 * Two encodings:
 *  - binary (mr_record_encode/mr_record_decode): compact, stable, versioned; the value of a
 *    Kafka record in the journal. Layout documented in src/core/record_codec.c.
 *  - JSON (mr_record_to_json/mr_record_from_json): for humans and for line-oriented tools.
 */
#ifndef MILLRACE_RECORD_H
#define MILLRACE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "millrace/error.h"
#include "millrace/names.h"

#define MR_RECORD_MAX_TAGS     16
/* A journal record whose value is a binary-encoded mr_record carries this Kafka record header,
 * so readers (`millrace journal read --format json`, Kafka consumers) can tell it apart from raw
 * bytes appended by `millrace journal append`. */
#define MR_RECORD_HEADER_KEY   "mr.enc"
#define MR_RECORD_HEADER_VALUE "rec1"
/* Largest sample block one record may carry (1 s at 100 kHz). */
#define MR_RECORD_MAX_SAMPLES  100000u

enum mr_value_type {
    MR_VALUE_F64 = 1,
    MR_VALUE_I64 = 2,
    MR_VALUE_BOOL = 3,
    MR_VALUE_STRING = 4,
    MR_VALUE_SAMPLES = 5,
};

enum mr_quality {
    MR_QUALITY_GOOD = 0,
    MR_QUALITY_UNCERTAIN = 1,
    MR_QUALITY_BAD = 2,
};

struct mr_bytes {
    const char *ptr;
    uint32_t len;
};

struct mr_tag {
    mr_name_id key;
    struct mr_bytes value;
};

struct mr_samples {
    const float *data; /* n samples; may be unaligned when borrowed from a buffer: use memcpy */
    uint32_t n;
    double rate_hz;
};

struct mr_record {
    int64_t time_ns;
    mr_name_id asset;
    mr_name_id signal;
    uint8_t type;    /* enum mr_value_type */
    uint8_t quality; /* enum mr_quality */
    uint16_t ntags;
    union {
        double f64;
        int64_t i64;
        bool b;
        struct mr_bytes str;
        struct mr_samples samples;
    } v;
    struct mr_tag tags[MR_RECORD_MAX_TAGS];
};

const char *mr_quality_name(enum mr_quality q);
const char *mr_value_type_name(enum mr_value_type t);

/* Exact number of bytes mr_record_encode will write for rec, or 0 for an invalid record. */
size_t mr_record_encoded_size(const struct mr_record *rec, const struct mr_names *names);
/* Binary-encode rec into out (cap bytes). Returns bytes written (> 0), or MR_ETOOBIG when cap is
 * too small, MR_EINVAL for an invalid record (unknown name id, bad type). */
long mr_record_encode(const struct mr_record *rec, const struct mr_names *names, uint8_t *out,
                      size_t cap);
/* Decode one binary record from in[0..len). Names are interned into names; string values, sample
 * blocks and tag values borrow from `in`. Returns 0, or MR_ECORRUPT with err naming the problem
 * (truncated, unknown version/type, bad length), or the error of interning a name (MR_ETOOBIG
 * when the names table is full, MR_ENOMEM). Never reads past len. */
int mr_record_decode(struct mr_record *rec, struct mr_names *names, const uint8_t *in, size_t len,
                     struct mr_err *err);
/* The same, interning through a per-thread memo (names.h) so that a stream of records of the same
 * few assets and signals costs no hashing. memo may be NULL. */
int mr_record_decode_memo(struct mr_record *rec, struct mr_names *names, struct mr_names_memo *memo,
                          const uint8_t *in, size_t len, struct mr_err *err);

/* Write rec as one JSON object (no newline) into out (cap bytes), NUL-terminated.
 * Returns the length written (excluding NUL), MR_ETOOBIG, or MR_EINVAL for an invalid record.
 * {"time":"2026-11-24T16:49:00.123456789Z","asset":"s/a/l/m","signal":"temp","value":21.5,
 *  "quality":"good","tags":{"unit":"degC"}}; a sample block is
 *  "value":{"rate_hz":10000,"samples":[...]}. */
long mr_record_to_json(const struct mr_record *rec, const struct mr_names *names, char *out,
                       size_t cap);
/* Parse one JSON object (as written by mr_record_to_json; "time" may also be an integer of ns
 * since the epoch; "quality" defaults to good; "tags" optional). String values, sample blocks
 * and tag values are copied into scratch (scratch_cap bytes) and borrowed from there.
 * Returns 0 or MR_EPARSE/MR_ETOOBIG with err naming the field, or MR_ENOMEM. The JSON parser
 * (jansson) allocates through mr_malloc, so mr_alloc_fail_after applies to it too. */
int mr_record_from_json(struct mr_record *rec, struct mr_names *names, const char *json, size_t len,
                        char *scratch, size_t scratch_cap, struct mr_err *err);

/* Parse/format RFC 3339 UTC timestamps with up to 9 fractional digits ("Z" or +hh:mm offsets
 * accepted on input). Parse returns 0, MR_EPARSE or MR_ERANGE (outside int64 ns). Format writes
 * at most 36 bytes including the NUL and returns the length, or 0 when cap is too small. */
int mr_time_parse_rfc3339(const char *s, size_t len, int64_t *ns);
size_t mr_time_format_rfc3339(int64_t ns, char *out, size_t cap);

#endif
