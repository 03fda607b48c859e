/* libFuzzer target for the record decoders.
 *
 * The same bytes go to both readers:
 *  - mr_record_decode: on success the encoding must be canonical (re-encoding gives the input
 *    back byte for byte, and mr_record_encoded_size agrees), and a record whose values JSON can
 *    express (finite numbers, valid UTF-8) must survive to_json -> from_json unchanged.
 *  - mr_record_from_json: on success the record must survive to_json -> from_json unchanged.
 * Any mismatch aborts: that is the fuzzer's signal.
 *
 * Build (see tests/fuzz/run.sh):
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -D_GNU_SOURCE \
 *     tests/fuzz/fuzz_record.c src/core/{error,alloc,crc32c,names,record_codec,record_json}.c \
 *     $(pkg-config --cflags --libs jansson) -lpthread -lm -o fuzz_record
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/names.h"
#include "millrace/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_record: check failed: %s (line %d)\n", #cond, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
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
            return false;
        }
        if (n - i < need || s[i + 1] < lo || s[i + 1] > hi) {
            return false;
        }
        for (size_t k = 2; k < need; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xbf) {
                return false;
            }
        }
        i += need;
    }
    return true;
}

static bool name_utf8(const struct mr_names *names, mr_name_id id)
{
    size_t len;
    const char *s = mr_names_str(names, id, &len);
    return s != NULL && utf8_valid(s, len);
}

/* Whether JSON can carry rec exactly. */
static bool json_expressible(const struct mr_record *r, const struct mr_names *names)
{
    if (!name_utf8(names, r->asset) || !name_utf8(names, r->signal)) {
        return false;
    }
    for (uint16_t i = 0; i < r->ntags; i++) {
        if (!name_utf8(names, r->tags[i].key) ||
            !utf8_valid(r->tags[i].value.ptr, r->tags[i].value.len)) {
            return false;
        }
    }
    switch (r->type) {
    case MR_VALUE_F64:
        return isfinite(r->v.f64);
    case MR_VALUE_STRING:
        return utf8_valid(r->v.str.ptr, r->v.str.len);
    case MR_VALUE_SAMPLES:
        for (uint32_t i = 0; i < r->v.samples.n; i++) {
            float f;
            memcpy(&f, (const char *)r->v.samples.data + (size_t)i * 4, 4);
            if (!isfinite(f)) {
                return false;
            }
        }
        return true;
    default:
        return true;
    }
}

static bool bytes_equal(struct mr_bytes a, struct mr_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Same table, so names compare as ids; floating point compares bit for bit. */
static bool records_equal(const struct mr_record *a, const struct mr_record *b)
{
    if (a->time_ns != b->time_ns || a->asset != b->asset || a->signal != b->signal ||
        a->type != b->type || a->quality != b->quality || a->ntags != b->ntags) {
        return false;
    }
    for (uint16_t i = 0; i < a->ntags; i++) {
        if (a->tags[i].key != b->tags[i].key || !bytes_equal(a->tags[i].value, b->tags[i].value)) {
            return false;
        }
    }
    switch (a->type) {
    case MR_VALUE_F64:
        return memcmp(&a->v.f64, &b->v.f64, sizeof(double)) == 0;
    case MR_VALUE_I64:
        return a->v.i64 == b->v.i64;
    case MR_VALUE_BOOL:
        return a->v.b == b->v.b;
    case MR_VALUE_STRING:
        return bytes_equal(a->v.str, b->v.str);
    case MR_VALUE_SAMPLES:
        return a->v.samples.n == b->v.samples.n &&
               memcmp(&a->v.samples.rate_hz, &b->v.samples.rate_hz, sizeof(double)) == 0 &&
               (a->v.samples.n == 0 ||
                memcmp(a->v.samples.data, b->v.samples.data, (size_t)a->v.samples.n * 4) == 0);
    default:
        return false;
    }
}

/* to_json -> from_json must give rec back. */
static void check_json_round_trip(const struct mr_record *rec, struct mr_names *names)
{
    size_t n = rec->type == MR_VALUE_SAMPLES ? rec->v.samples.n : 0;
    size_t bytes = rec->type == MR_VALUE_STRING ? rec->v.str.len : 0;
    size_t name_bytes = 0, len;
    mr_names_str(names, rec->asset, &len);
    name_bytes += len;
    mr_names_str(names, rec->signal, &len);
    name_bytes += len;
    for (uint16_t i = 0; i < rec->ntags; i++) {
        bytes += rec->tags[i].value.len;
        mr_names_str(names, rec->tags[i].key, &len);
        name_bytes += len;
    }
    /* Worst cases: 6 output bytes per input byte (\u00XX), < 20 per sample. */
    size_t cap = 6 * (bytes + name_bytes) + 20 * n + 4096;
    char *json = malloc(cap);
    char *scratch = malloc(bytes + 4 * n + 64);
    struct mr_record back;
    struct mr_err err;
    CHECK(json != NULL && scratch != NULL);

    long jlen = mr_record_to_json(rec, names, json, cap);
    CHECK(jlen > 0 && (size_t)jlen == strlen(json));
    int rc =
        mr_record_from_json(&back, names, json, (size_t)jlen, scratch, bytes + 4 * n + 64, &err);
    if (rc != 0) {
        fprintf(stderr, "fuzz_record: %s\n%s\n", err.msg, json);
    }
    CHECK(rc == 0);
    CHECK(records_equal(rec, &back));
    free(json);
    free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mr_names *names = NULL;
    struct mr_record rec;
    struct mr_err err;

    if (mr_names_create(&names, 4096, 1u << 20) != 0) {
        return 0;
    }
    if (mr_record_decode(&rec, names, data, size, &err) == 0) {
        CHECK(mr_record_encoded_size(&rec, names) == size);
        uint8_t *again = malloc(size);
        CHECK(again != NULL);
        CHECK(mr_record_encode(&rec, names, again, size) == (long)size);
        CHECK(memcmp(again, data, size) == 0);
        free(again);
        if (json_expressible(&rec, names)) {
            check_json_round_trip(&rec, names);
        }
    } else {
        CHECK(err.code != 0 && err.msg[0] != '\0');
    }

    /* Strings and samples from JSON need at most 4 scratch bytes per input byte. */
    size_t scratch_cap = 4 * size + 64;
    char *scratch = malloc(scratch_cap);
    CHECK(scratch != NULL);
    if (mr_record_from_json(&rec, names, (const char *)data, size, scratch, scratch_cap, &err) ==
        0) {
        CHECK(json_expressible(&rec, names)); /* jansson yields UTF-8 and finite numbers */
        check_json_round_trip(&rec, names);
    } else {
        CHECK(err.code != 0 && err.msg[0] != '\0');
    }
    free(scratch);
    mr_names_destroy(names);
    return 0;
}
