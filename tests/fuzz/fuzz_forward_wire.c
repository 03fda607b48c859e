/* libFuzzer target for the store-and-forward wire codec (src/forward/wire.c), which decodes
 * bodies a `receive` input gets from the network.
 *
 * Each input is decoded twice: as it is, and with a correct CRC-32C appended (so the fuzzer
 * reaches the structure checks behind the CRC). Checks:
 *  - decode answers 0 or MR_ECORRUPT with a message, and never reads outside the input;
 *  - a decoded body walks exactly `count` records, offsets strictly increasing from
 *    first_offset to last_offset, every value non-empty and inside the body;
 *  - re-encoding what was walked (mr_fwd_encoder_add_raw) gives a body that decodes to the same
 *    node, topic, partition, offsets and value bytes;
 *  - a value that decodes as a record re-encodes (mr_fwd_encoder_add) to the same bytes.
 * Any mismatch aborts: that is the fuzzer's signal. Build and run: tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/wire.h"
#include "millrace/crc32c.h"
#include "millrace/names.h"
#include "millrace/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_forward_wire: check failed: %s (line %d)\n", #cond, __LINE__);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct mr_names *g_names;

/* Walk a decoded body and check it; re-encode it into enc. */
static void walk(struct mr_fwd_batch *b, const uint8_t *buf, size_t len, struct mr_fwd_encoder *enc)
{
    CHECK(b->count >= 1 && b->count <= MR_FWD_MAX_RECORDS);
    CHECK(strlen(b->node) >= 1 && strlen(b->topic) >= 1);
    CHECK(mr_fwd_encoder_begin(enc, b->node, b->topic, b->partition) == 0);
    int64_t off, prev = -1;
    const uint8_t *v;
    size_t vlen;
    uint32_t n = 0;
    while (mr_fwd_next(b, &off, &v, &vlen) == 0) {
        CHECK(off > prev);
        CHECK(n > 0 || off == b->first_offset);
        CHECK(vlen >= 1 && v >= buf && v + vlen <= buf + len - 4);
        int rc = mr_fwd_encoder_add_raw(enc, off, v, vlen);
        CHECK(rc == 0 || rc == MR_ETOOBIG);
        if (rc == MR_ETOOBIG) {
            return; /* larger than the fuzzer's cap: not comparable */
        }
        struct mr_record rec;
        struct mr_err err;
        if (mr_record_decode(&rec, g_names, v, vlen, &err) == 0) {
            struct mr_fwd_encoder one;
            const uint8_t *body;
            size_t blen;
            CHECK(mr_fwd_encoder_init(&one, vlen + 1024) == 0);
            CHECK(mr_fwd_encoder_begin(&one, "n", "t", 0) == 0);
            CHECK(mr_fwd_encoder_add(&one, off, &rec, g_names) == 0);
            CHECK(mr_fwd_encoder_finish(&one, &body, &blen) == 0);
            CHECK(blen >= vlen + 4 && memcmp(body + blen - 4 - vlen, v, vlen) == 0);
            mr_fwd_encoder_fini(&one);
        }
        prev = off;
        n++;
    }
    CHECK(n == b->count);
    CHECK(prev == b->last_offset);
    CHECK(mr_fwd_next(b, &off, &v, &vlen) == MR_EEOF);
}

static void check_body(const uint8_t *buf, size_t len)
{
    struct mr_fwd_batch b, again;
    struct mr_err err = {0};
    int rc = mr_fwd_decode(&b, buf, len, &err);
    CHECK(rc == 0 || rc == MR_ECORRUPT);
    if (rc != 0) {
        CHECK(strncmp(err.msg, "forward body: ", 14) == 0);
        return;
    }
    struct mr_fwd_encoder enc;
    CHECK(mr_fwd_encoder_init(&enc, 1u << 20) == 0);
    walk(&b, buf, len, &enc);
    const uint8_t *body;
    size_t blen;
    if (mr_fwd_encoder_count(&enc) == b.count) {
        CHECK(mr_fwd_encoder_finish(&enc, &body, &blen) == 0);
        CHECK(mr_fwd_decode(&again, body, blen, &err) == 0);
        CHECK(strcmp(again.node, b.node) == 0 && strcmp(again.topic, b.topic) == 0);
        CHECK(again.partition == b.partition && again.count == b.count);
        CHECK(again.first_offset == b.first_offset && again.last_offset == b.last_offset);
        CHECK(mr_fwd_decode(&b, buf, len, &err) == 0); /* walk both side by side */
        int64_t o1, o2;
        const uint8_t *v1, *v2;
        size_t l1, l2;
        while (mr_fwd_next(&b, &o1, &v1, &l1) == 0) {
            CHECK(mr_fwd_next(&again, &o2, &v2, &l2) == 0);
            CHECK(o1 == o2 && l1 == l2 && memcmp(v1, v2, l1) == 0);
        }
        CHECK(mr_fwd_next(&again, &o2, &v2, &l2) == MR_EEOF);
    }
    mr_fwd_encoder_fini(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_names == NULL) {
        CHECK(mr_names_create(&g_names, 100000, 16u << 20) == 0);
    }
    /* Each body in an allocation of its exact size, so ASan catches any read past the end. */
    uint8_t *exact = malloc(size == 0 ? 1 : size);
    CHECK(exact != NULL);
    memcpy(exact, data, size);
    check_body(exact, size);
    free(exact);
    uint8_t *copy = malloc(size + 4);
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    uint32_t crc = mr_crc32c(0, data, size);
    copy[size] = (uint8_t)crc;
    copy[size + 1] = (uint8_t)(crc >> 8);
    copy[size + 2] = (uint8_t)(crc >> 16);
    copy[size + 3] = (uint8_t)(crc >> 24);
    check_body(copy, size + 4);
    free(copy);
    return 0;
}
