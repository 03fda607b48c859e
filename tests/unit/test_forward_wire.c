/* Store-and-forward wire codec (src/forward/wire.c): records of every value type, with tags and
 * sample blocks, round-trip with their offsets; the encoder keeps every body under its cap and
 * its record limit; and every damaged body (bad magic, any truncation, any flipped byte, zero
 * count, offsets not increasing, lengths too large, stray bytes) is refused with MR_ECORRUPT and
 * a message saying what and where. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/wire.h"
#include "millrace/crc32c.h"
#include "millrace/names.h"
#include "millrace/record.h"
#include "millrace/varint.h"

static struct mr_names *names_new(void)
{
    struct mr_names *names = NULL;
    assert_int_equal(mr_names_create(&names, 1000, 1u << 20), 0);
    return names;
}

static mr_name_id intern(struct mr_names *names, const char *s)
{
    mr_name_id id = 0;
    assert_int_equal(mr_names_intern(names, s, strlen(s), &id), 0);
    return id;
}

static float g_samples[2000];

/* Five records, one per value type, the string and sample ones with tags. */
static size_t make_records(struct mr_names *names, struct mr_record *recs)
{
    for (size_t i = 0; i < sizeof(g_samples) / sizeof(g_samples[0]); i++) {
        g_samples[i] = (float)i * 0.25f - 3.0f;
    }
    mr_name_id asset = intern(names, "plant1/press/line2/p7");
    struct mr_record base = {.time_ns = 1764000000123456789, .asset = asset};
    recs[0] = base;
    recs[0].signal = intern(names, "temp");
    recs[0].type = MR_VALUE_F64;
    recs[0].v.f64 = -21.5;
    recs[1] = base;
    recs[1].signal = intern(names, "count");
    recs[1].type = MR_VALUE_I64;
    recs[1].v.i64 = -9000000000;
    recs[1].quality = MR_QUALITY_UNCERTAIN;
    recs[2] = base;
    recs[2].signal = intern(names, "running");
    recs[2].type = MR_VALUE_BOOL;
    recs[2].v.b = true;
    recs[2].quality = MR_QUALITY_BAD;
    recs[3] = base;
    recs[3].signal = intern(names, "order");
    recs[3].type = MR_VALUE_STRING;
    recs[3].v.str = (struct mr_bytes){.ptr = "PO-4711", .len = 7};
    recs[3].ntags = 2;
    recs[3].tags[0] = (struct mr_tag){intern(names, "unit"), {.ptr = "pcs", .len = 3}};
    recs[3].tags[1] = (struct mr_tag){intern(names, "shift"), {.ptr = "B", .len = 1}};
    recs[4] = base;
    recs[4].time_ns = -5; /* before the epoch: still a valid record */
    recs[4].signal = intern(names, "vib");
    recs[4].type = MR_VALUE_SAMPLES;
    recs[4].v.samples = (struct mr_samples){.data = g_samples, .n = 2000, .rate_hz = 25600.0};
    recs[4].ntags = 1;
    recs[4].tags[0] = (struct mr_tag){intern(names, "axis"), {.ptr = "x", .len = 1}};
    return 5;
}

static const int64_t g_offsets[5] = {0, 1, 7, 1000000, (int64_t)1 << 40};

static void test_round_trip_every_type(void **state)
{
    (void)state;
    struct mr_names *names = names_new();
    struct mr_names *theirs = names_new(); /* the receiver's own names table */
    struct mr_record recs[5];
    size_t n = make_records(names, recs);
    struct mr_fwd_encoder enc;
    assert_int_equal(mr_fwd_encoder_init(&enc, 1u << 20), 0);
    assert_int_equal(mr_fwd_encoder_begin(&enc, "site-a.edge_1", "plant.raw", 3), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(mr_fwd_encoder_add(&enc, g_offsets[i], &recs[i], names), 0);
    }
    assert_int_equal(mr_fwd_encoder_count(&enc), 5);
    const uint8_t *body;
    size_t len;
    assert_int_equal(mr_fwd_encoder_finish(&enc, &body, &len), 0);
    assert_memory_equal(body, "MRF1", 4);

    struct mr_fwd_batch b;
    struct mr_err err = {0};
    assert_int_equal(mr_fwd_decode(&b, body, len, &err), 0);
    assert_string_equal(b.node, "site-a.edge_1");
    assert_string_equal(b.topic, "plant.raw");
    assert_int_equal(b.partition, 3);
    assert_int_equal(b.count, 5);
    assert_int_equal(b.first_offset, 0);
    assert_int_equal(b.last_offset, (int64_t)1 << 40);
    int64_t off;
    const uint8_t *v;
    size_t vlen;
    uint8_t again[16384];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(mr_fwd_next(&b, &off, &v, &vlen), 0);
        assert_int_equal(off, g_offsets[i]);
        struct mr_record r;
        assert_int_equal(mr_record_decode(&r, theirs, v, vlen, &err), 0);
        assert_int_equal(r.type, recs[i].type);
        assert_int_equal(r.time_ns, recs[i].time_ns);
        assert_int_equal(r.quality, recs[i].quality);
        assert_int_equal(r.ntags, recs[i].ntags);
        assert_string_equal(mr_names_str(theirs, r.signal, NULL),
                            mr_names_str(names, recs[i].signal, NULL));
        /* The value bytes are exactly what the record encodes to. */
        long k = mr_record_encode(&recs[i], names, again, sizeof(again));
        assert_int_equal(k, (long)vlen);
        assert_memory_equal(again, v, vlen);
    }
    assert_int_equal(mr_fwd_next(&b, &off, &v, &vlen), MR_EEOF);
    assert_int_equal(mr_fwd_next(&b, &off, &v, &vlen), MR_EEOF);

    /* The encoder is reusable: a new body for another partition, offsets start over. */
    assert_int_equal(mr_fwd_encoder_begin(&enc, "n", "t", 0), 0);
    assert_int_equal(mr_fwd_encoder_add(&enc, 5, &recs[0], names), 0);
    assert_int_equal(mr_fwd_encoder_finish(&enc, &body, &len), 0);
    assert_int_equal(mr_fwd_decode(&b, body, len, &err), 0);
    assert_int_equal(b.count, 1);
    assert_int_equal(b.first_offset, 5);
    assert_int_equal(b.last_offset, 5);
    mr_fwd_encoder_fini(&enc);
    mr_names_destroy(theirs);
    mr_names_destroy(names);
}

/* The cap holds for every body, ETOOBIG adds nothing, and a new body takes the refused record. */
static void test_cap_splits_bodies(void **state)
{
    (void)state;
    struct mr_names *names = names_new();
    struct mr_record recs[5];
    make_records(names, recs);
    struct mr_fwd_encoder enc;
    assert_int_equal(mr_fwd_encoder_init(&enc, 100), MR_EINVAL); /* below MR_FWD_MIN_CAP */
    assert_int_equal(mr_fwd_encoder_init(&enc, 1500), 0);
    assert_int_equal(mr_fwd_encoder_begin(&enc, "edge", "t", 0), 0);
    /* The 2000-sample record (8 KB) never fits a 1500-byte body. */
    assert_int_equal(mr_fwd_encoder_add(&enc, 0, &recs[4], names), MR_ETOOBIG);
    int64_t offset = 0;
    uint32_t bodies = 0, total = 0;
    const uint8_t *body;
    size_t len;
    struct mr_fwd_batch b;
    struct mr_err err = {0};
    while (offset < 1000) {
        int rc = mr_fwd_encoder_add(&enc, offset, &recs[offset % 4], names);
        if (rc == MR_ETOOBIG) {
            assert_true(mr_fwd_encoder_count(&enc) > 0);
            assert_int_equal(mr_fwd_encoder_finish(&enc, &body, &len), 0);
            assert_true(len <= 1500);
            assert_true(len > 1400); /* filled, not split early */
            assert_int_equal(mr_fwd_decode(&b, body, len, &err), 0);
            assert_int_equal(b.first_offset, offset - (int64_t)b.count);
            total += b.count;
            bodies++;
            assert_int_equal(mr_fwd_encoder_begin(&enc, "edge", "t", 0), 0);
            continue;
        }
        assert_int_equal(rc, 0);
        offset++;
    }
    assert_int_equal(mr_fwd_encoder_finish(&enc, &body, &len), 0);
    assert_int_equal(mr_fwd_decode(&b, body, len, &err), 0);
    total += b.count;
    assert_int_equal(total, 1000);
    assert_true(bodies >= 10);
    mr_fwd_encoder_fini(&enc);
    mr_names_destroy(names);
}

static void test_record_limit(void **state)
{
    (void)state;
    struct mr_fwd_encoder enc;
    assert_int_equal(mr_fwd_encoder_init(&enc, 4u << 20), 0);
    assert_int_equal(mr_fwd_encoder_begin(&enc, "edge", "t", 1), 0);
    const uint8_t v = 1;
    for (int64_t i = 0; i < (int64_t)MR_FWD_MAX_RECORDS; i++) {
        assert_int_equal(mr_fwd_encoder_add_raw(&enc, i * 3, &v, 1), 0);
    }
    assert_int_equal(mr_fwd_encoder_add_raw(&enc, 1u << 30, &v, 1), MR_ETOOBIG);
    const uint8_t *body;
    size_t len;
    assert_int_equal(mr_fwd_encoder_finish(&enc, &body, &len), 0);
    struct mr_fwd_batch b;
    assert_int_equal(mr_fwd_decode(&b, body, len, NULL), 0);
    assert_int_equal(b.count, MR_FWD_MAX_RECORDS);
    assert_int_equal(b.last_offset, ((int64_t)MR_FWD_MAX_RECORDS - 1) * 3);
    int64_t off;
    uint32_t seen = 0;
    while (mr_fwd_next(&b, &off, NULL, NULL) == 0) {
        assert_int_equal(off, (int64_t)seen * 3);
        seen++;
    }
    assert_int_equal(seen, MR_FWD_MAX_RECORDS);
    mr_fwd_encoder_fini(&enc);
}

static void test_encoder_refuses_bad_input(void **state)
{
    (void)state;
    struct mr_names *names = names_new();
    struct mr_record recs[5];
    make_records(names, recs);
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    struct mr_fwd_encoder enc;
    assert_int_equal(mr_fwd_encoder_init(&enc, 4096), 0);
    assert_int_equal(mr_fwd_encoder_add(&enc, 0, &recs[0], names), MR_EINVAL); /* no begin */
    assert_int_equal(mr_fwd_encoder_begin(&enc, "", "t", 0), MR_EINVAL);
    assert_int_equal(mr_fwd_encoder_begin(&enc, "site a", "t", 0), MR_EINVAL);
    assert_int_equal(mr_fwd_encoder_begin(&enc, "edge", "a/b", 0), MR_EINVAL);
    assert_int_equal(mr_fwd_encoder_begin(&enc, long_name, "t", 0), MR_EINVAL);
    long_name[MR_FWD_TOPIC_MAX + 1] = '\0';
    assert_int_equal(mr_fwd_encoder_begin(&enc, "edge", long_name, 0), MR_EINVAL);
    long_name[MR_FWD_TOPIC_MAX] = '\0';
    assert_int_equal(mr_fwd_encoder_begin(&enc, long_name, long_name, UINT32_MAX), 0);
    const uint8_t *body;
    size_t len;
    assert_int_equal(mr_fwd_encoder_finish(&enc, &body, &len), MR_EINVAL); /* no record */
    assert_int_equal(mr_fwd_encoder_add(&enc, -1, &recs[0], names), MR_EINVAL);
    assert_int_equal(mr_fwd_encoder_add(&enc, 10, &recs[0], names), 0);
    assert_int_equal(mr_fwd_encoder_add(&enc, 10, &recs[1], names), MR_EINVAL);
    assert_int_equal(mr_fwd_encoder_add(&enc, 9, &recs[1], names), MR_EINVAL);
    struct mr_record bad = recs[0];
    bad.signal = 9999; /* unknown name id */
    assert_int_equal(mr_fwd_encoder_add(&enc, 11, &bad, names), MR_EINVAL);
    assert_int_equal(mr_fwd_encoder_add(&enc, INT64_MAX, &recs[1], names), 0);
    assert_int_equal(mr_fwd_encoder_finish(&enc, &body, &len), 0);
    struct mr_fwd_batch b;
    assert_int_equal(mr_fwd_decode(&b, body, len, NULL), 0);
    assert_int_equal(b.count, 2);
    assert_int_equal(b.partition, UINT32_MAX);
    assert_int_equal(strlen(b.node), MR_FWD_TOPIC_MAX);
    assert_int_equal(b.last_offset, INT64_MAX);
    mr_fwd_encoder_fini(&enc);
    mr_names_destroy(names);
}

/* ---- damaged bodies ---- */

struct builder {
    uint8_t buf[1024];
    size_t len;
};

static void put_uv(struct builder *w, uint64_t v)
{
    w->len += mr_uvarint_put(w->buf + w->len, v);
}

static void put_raw(struct builder *w, const void *p, size_t n)
{
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_str(struct builder *w, const char *s)
{
    put_uv(w, strlen(s));
    put_raw(w, s, strlen(s));
}

static void put_crc(struct builder *w)
{
    uint32_t crc = mr_crc32c(0, w->buf, w->len);
    uint8_t c[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16), (uint8_t)(crc >> 24)};
    put_raw(w, c, 4);
}

enum damage {
    D_BAD_MAGIC,
    D_ZERO_COUNT,
    D_COUNT_TOO_BIG,
    D_EQUAL_OFFSETS,
    D_FIRST_OFFSET_TOO_BIG,
    D_OFFSET_OVERFLOW,
    D_NODE_TOO_LONG,
    D_NODE_EMPTY,
    D_NODE_BAD_CHAR,
    D_TOPIC_TOO_LONG,
    D_PARTITION_TOO_BIG,
    D_VALUE_TOO_LONG,
    D_VALUE_EMPTY,
    D_FEWER_RECORDS,
    D_TRAILING_BYTES,
    D_BAD_VARINT,
};

/* A body with one thing wrong, and a correct CRC over it (so the structure check must catch
 * it). */
static void build_damaged(struct builder *w, enum damage d)
{
    char big[300];
    memset(big, 'x', sizeof(big));
    big[299] = '\0';
    w->len = 0;
    put_raw(w, d == D_BAD_MAGIC ? "MRF2" : "MRF1", 4);
    if (d == D_NODE_TOO_LONG) {
        big[256] = '\0';
        put_str(w, big);
    } else {
        put_str(w, d == D_NODE_EMPTY ? "" : d == D_NODE_BAD_CHAR ? "edge/1" : "edge");
    }
    if (d == D_TOPIC_TOO_LONG) {
        big[250] = '\0';
        put_str(w, big);
    } else {
        put_str(w, "raw");
    }
    put_uv(w, d == D_PARTITION_TOO_BIG ? (uint64_t)UINT32_MAX + 1 : 2);
    uint64_t count = d == D_ZERO_COUNT      ? 0
                     : d == D_COUNT_TOO_BIG ? MR_FWD_MAX_RECORDS + 1
                     : d == D_FEWER_RECORDS ? 3
                                            : 2;
    put_uv(w, count);
    if (d == D_BAD_VARINT) {
        put_raw(w, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
    } else {
        put_uv(w, d == D_FIRST_OFFSET_TOO_BIG ? (uint64_t)INT64_MAX + 1
                  : d == D_OFFSET_OVERFLOW    ? (uint64_t)INT64_MAX - 1
                                              : 100);
    }
    put_uv(w, d == D_VALUE_EMPTY ? 0 : 3);
    put_raw(w, "abc", d == D_VALUE_EMPTY ? 0 : 3);
    put_uv(w, d == D_EQUAL_OFFSETS ? 0 : d == D_OFFSET_OVERFLOW ? 5 : 1);
    put_uv(w, d == D_VALUE_TOO_LONG ? 50 : 2);
    put_raw(w, "de", 2);
    if (d == D_TRAILING_BYTES) {
        put_raw(w, "\x00", 1);
    }
    put_crc(w);
}

static void test_damaged_bodies(void **state)
{
    (void)state;
    static const struct {
        enum damage d;
        const char *says;
    } cases[] = {
        {D_BAD_MAGIC, "bad magic at byte 0"},
        {D_ZERO_COUNT, "record count at byte 14 is 0, allowed 1..100000"},
        {D_COUNT_TOO_BIG, "record count at byte 14 is 100001"},
        {D_EQUAL_OFFSETS, "record 1 offset delta at byte 20 is 0, allowed 1.."},
        {D_FIRST_OFFSET_TOO_BIG, "record 0 offset (absolute) at byte 15 is 9223372036854775808"},
        {D_OFFSET_OVERFLOW, "record 1 offset delta"},
        {D_NODE_TOO_LONG, "node length at byte 4 is 256, allowed 1..255"},
        {D_NODE_EMPTY, "node length at byte 4 is 0"},
        {D_NODE_BAD_CHAR, "node at byte 5 is not made of"},
        {D_TOPIC_TOO_LONG, "topic length at byte 9 is 250, allowed 1..249"},
        {D_PARTITION_TOO_BIG, "partition at byte 13 is 4294967296"},
        {D_VALUE_TOO_LONG, "record 1 value length at byte 21 is 50, only 2 bytes left"},
        {D_VALUE_EMPTY, "record 0 value length at byte 16 is 0"},
        {D_FEWER_RECORDS, "record 2 offset delta at byte 24 is truncated"},
        {D_TRAILING_BYTES, "1 unexpected bytes at byte 24 after record 1"},
        {D_BAD_VARINT, "record 0 offset (absolute) at byte 15 is truncated or not a valid varint"},
    };
    struct builder w;
    build_damaged(&w, (enum damage) - 1); /* no damage: the reference body decodes */
    struct mr_fwd_batch b;
    struct mr_err err = {0};
    assert_int_equal(mr_fwd_decode(&b, w.buf, w.len, &err), 0);
    assert_int_equal(b.first_offset, 100);
    assert_int_equal(b.last_offset, 101);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        build_damaged(&w, cases[i].d);
        mr_err_clear(&err);
        int rc = mr_fwd_decode(&b, w.buf, w.len, &err);
        if (rc != MR_ECORRUPT || strstr(err.msg, cases[i].says) == NULL) {
            fail_msg("case %zu: rc %d, message \"%s\", expected \"%s\"", i, rc, err.msg,
                     cases[i].says);
        }
    }
}

/* Every truncation and every single-bit flip of a real body is refused. */
static void test_truncated_and_flipped(void **state)
{
    (void)state;
    struct mr_names *names = names_new();
    struct mr_record recs[5];
    make_records(names, recs);
    struct mr_fwd_encoder enc;
    assert_int_equal(mr_fwd_encoder_init(&enc, 1u << 16), 0);
    assert_int_equal(mr_fwd_encoder_begin(&enc, "edge", "raw", 0), 0);
    for (int64_t i = 0; i < 4; i++) {
        assert_int_equal(mr_fwd_encoder_add(&enc, 40 + i, &recs[i], names), 0);
    }
    const uint8_t *body;
    size_t len;
    assert_int_equal(mr_fwd_encoder_finish(&enc, &body, &len), 0);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    struct mr_fwd_batch b;
    struct mr_err err;
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(copy, body, cut); /* a separate allocation: ASan sees any read past `cut` */
        uint8_t *exact = malloc(cut == 0 ? 1 : cut);
        assert_non_null(exact);
        memcpy(exact, body, cut);
        mr_err_clear(&err);
        assert_int_equal(mr_fwd_decode(&b, exact, cut, &err), MR_ECORRUPT);
        assert_true(strstr(err.msg, "forward body: ") == err.msg);
        free(exact);
    }
    size_t crc_errors = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, body, len);
            copy[i] ^= (uint8_t)(1u << bit);
            mr_err_clear(&err);
            assert_int_equal(mr_fwd_decode(&b, copy, len, &err), MR_ECORRUPT);
            crc_errors += strstr(err.msg, i < 4 ? "bad magic" : "CRC") != NULL;
        }
    }
    assert_int_equal(crc_errors, len * 8); /* each says the CRC (or magic) does not match */
    memcpy(copy, body, len);
    copy[len - 1] ^= 0x80;
    mr_err_clear(&err);
    assert_int_equal(mr_fwd_decode(&b, copy, len, &err), MR_ECORRUPT);
    assert_non_null(strstr(err.msg, "CRC-32C mismatch at byte"));
    free(copy);
    mr_fwd_encoder_fini(&enc);
    mr_names_destroy(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_cap_splits_bodies),
        cmocka_unit_test(test_record_limit),
        cmocka_unit_test(test_encoder_refuses_bad_input),
        cmocka_unit_test(test_damaged_bodies),
        cmocka_unit_test(test_truncated_and_flipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
