/* RecordBatch v2 builder and parser: exact bytes, round trips, every malformed input rejected. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "millrace/crc32c.h"
#include "millrace/journal.h"

/* One record (ts 1000, key "k", value "v", no headers). CRC 0x716a6189 computed independently
 * (bitwise CRC-32C in Python over bytes 21..69). */
static const uint8_t known_batch[70] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x00, 0x00,
    0x00, 0x00, 0x02, 0x71, 0x6a, 0x61, 0x89, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
    0xe8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x00, 0x00, 0x00, 0x01, 0x10, 0x00, 0x00, 0x00, 0x02, 0x6b, 0x02, 0x76, 0x00};

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void fix_crc(uint8_t *b, size_t len)
{
    put32(b + 17, mr_crc32c(0, b + 21, len - 21));
}

static void test_known_bytes(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct mr_batch_builder b;
    assert_int_equal(mr_batch_builder_init(&b, buf, sizeof(buf)), 0);
    assert_int_equal(mr_batch_builder_add(&b, 1000, "k", 1, "v", 1, NULL, 0), 0);
    const uint8_t *data;
    size_t len;
    assert_int_equal(mr_batch_builder_finish(&b, &data, &len), 0);
    assert_int_equal(len, sizeof(known_batch));
    assert_memory_equal(data, known_batch, sizeof(known_batch));
    assert_int_equal(mr_crc32c(0, "123456789", 9), 0xE3069283u);

    struct mr_batch_info bi;
    assert_int_equal(mr_batch_validate(known_batch, sizeof(known_batch), &bi, NULL), 0);
    assert_int_equal(bi.count, 1);
    assert_int_equal(bi.crc, 0x716a6189u);
    assert_int_equal(bi.base_timestamp, 1000);
    assert_int_equal(bi.producer_id, -1);
    assert_int_equal(bi.producer_epoch, -1);
    assert_int_equal(bi.base_sequence, -1);
}

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t buf[4096];
    struct mr_batch_builder b;
    assert_int_equal(mr_batch_builder_init(&b, buf, sizeof(buf)), 0);
    struct mr_batch_header hdrs[2] = {
        {.key = "unit", .key_len = 4, .value = "degC", .value_len = 4},
        {.key = "nil", .key_len = 3, .value = NULL, .value_len = -1},
    };
    static const struct {
        int64_t ts;
        const char *key;
        const char *value;
        size_t nh;
    } rows[] = {
        {1700000000123, "press-1", "21.5", 2},
        {1700000000100, NULL, "", 0}, /* earlier timestamp: negative delta */
        {1700000009999, "k", NULL, 1},
    };
    for (size_t i = 0; i < 3; i++) {
        int32_t kl = rows[i].key ? (int32_t)strlen(rows[i].key) : -1;
        int32_t vl = rows[i].value ? (int32_t)strlen(rows[i].value) : -1;
        assert_int_equal(mr_batch_builder_add(&b, rows[i].ts, rows[i].key, kl, rows[i].value, vl,
                                              hdrs, rows[i].nh),
                         0);
    }
    const uint8_t *data;
    size_t len;
    assert_int_equal(mr_batch_builder_finish(&b, &data, &len), 0);
    buf[7] = 40; /* base offset 40 (outside the CRC) */
    struct mr_batch_info bi;
    assert_int_equal(mr_batch_parse(data, len, &bi, NULL), 0);
    assert_int_equal(bi.base_offset, 40);
    assert_int_equal(bi.max_timestamp, 1700000009999);
    assert_int_equal(bi.last_offset_delta, 2);
    struct mr_batch_iter it;
    struct mr_batch_record rec;
    mr_batch_iter_init(&it, &bi);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(mr_batch_iter_next(&it, &rec, NULL), 0);
        assert_int_equal(rec.offset, 40 + (int64_t)i);
        assert_int_equal(rec.timestamp, rows[i].ts);
        if (rows[i].key == NULL) {
            assert_int_equal(rec.key_len, -1);
        } else {
            assert_int_equal(rec.key_len, strlen(rows[i].key));
            assert_memory_equal(rec.key, rows[i].key, strlen(rows[i].key));
        }
        if (rows[i].value == NULL) {
            assert_int_equal(rec.value_len, -1);
        } else {
            assert_int_equal(rec.value_len, strlen(rows[i].value));
        }
        assert_int_equal(rec.header_count, rows[i].nh);
        size_t pos = 0;
        struct mr_batch_header h;
        for (size_t k = 0; k < rows[i].nh; k++) {
            assert_int_equal(mr_batch_header_next(&rec, &pos, &h), 0);
            assert_int_equal(h.key_len, hdrs[k].key_len);
            assert_int_equal(h.value_len, hdrs[k].value_len);
            assert_memory_equal(h.key, hdrs[k].key, (size_t)h.key_len);
        }
        assert_int_equal(mr_batch_header_next(&rec, &pos, &h), MR_EEOF);
    }
    assert_int_equal(mr_batch_iter_next(&it, &rec, NULL), MR_EEOF);
}

static void test_builder_limits(void **state)
{
    (void)state;
    uint8_t buf[100];
    struct mr_batch_builder b;
    assert_int_equal(mr_batch_builder_init(&b, buf, 10), MR_EINVAL);
    assert_int_equal(mr_batch_builder_init(&b, buf, sizeof(buf)), 0);
    const uint8_t *data;
    size_t len;
    assert_int_equal(mr_batch_builder_finish(&b, &data, &len), MR_EINVAL); /* empty */
    char big[64];
    memset(big, 'x', sizeof(big));
    assert_int_equal(mr_batch_builder_add(&b, 1, NULL, -1, big, 30, NULL, 0), 0);
    size_t before = b.len;
    assert_int_equal(mr_batch_builder_add(&b, 1, NULL, -1, big, 30, NULL, 0), MR_ETOOBIG);
    assert_int_equal(b.len, before);
    assert_int_equal(mr_batch_builder_count(&b), 1);
    assert_int_equal(mr_batch_builder_add(&b, 1, NULL, -2, big, 1, NULL, 0), MR_EINVAL);
    assert_int_equal(mr_batch_builder_add(&b, 1, NULL, 5, big, 1, NULL, 0), MR_EINVAL);
    assert_int_equal(mr_batch_builder_finish(&b, &data, &len), 0);
    assert_int_equal(mr_batch_validate(data, len, &(struct mr_batch_info){0}, NULL), 0);
    assert_int_equal(mr_batch_builder_add(&b, 1, NULL, -1, big, 1, NULL, 0), MR_EINVAL);
    mr_batch_builder_reset(&b);
    assert_int_equal(mr_batch_builder_add(&b, 1, NULL, -1, big, 1, NULL, 0), 0);
}

/* Each case mutates a copy of the known batch; `crc` recomputes the CRC after the change so
 * the parser must catch the inconsistency itself. */
static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t pos; /* byte to overwrite (SIZE_MAX: none) */
        uint8_t val;
        size_t len; /* bytes handed to the parser */
        int crc;
        int expect; /* from mr_batch_validate */
    } cases[] = {
        {"truncated header", SIZE_MAX, 0, 11, 0, MR_EEOF},
        {"truncated before magic", SIZE_MAX, 0, 16, 0, MR_EEOF},
        {"truncated body", SIZE_MAX, 0, 69, 0, MR_EEOF},
        {"bad magic", 16, 1, 70, 0, MR_ECORRUPT},
        {"bad crc", 17, 0x00, 70, 0, MR_ECORRUPT},
        {"flipped value byte", 68, 'w', 70, 0, MR_ECORRUPT},
        {"length below header", 11, 0x10, 70, 0, MR_ECORRUPT},
        {"length beyond buffer", 11, 0x50, 70, 0, MR_EEOF},
        {"huge length", 8, 0x7f, 70, 0, MR_ECORRUPT},
        {"negative count", 57, 0xff, 70, 1, MR_ECORRUPT},
        {"count 2 with one record", 60, 2, 70, 1, MR_ECORRUPT},
        {"count 0 but a record", 60, 0, 70, 1, MR_ECORRUPT},
        {"record length too long", 61, 0x12, 70, 1, MR_ECORRUPT},
        {"record length too short", 61, 0x0e, 70, 1, MR_ECORRUPT},
        {"record length negative", 61, 0x01, 70, 1, MR_ECORRUPT},
        {"key length past record", 65, 0x08, 70, 1, MR_ECORRUPT},
        {"key length below -1", 65, 0x03, 70, 1, MR_ECORRUPT},
        {"offset delta outside", 64, 0x02, 70, 1, MR_ECORRUPT},
        {"header count too big", 69, 0x02, 70, 1, MR_ECORRUPT},
        {"unterminated varint", 69, 0x80, 70, 1, MR_ECORRUPT},
        {"compressed", 22, 0x01, 70, 1, MR_ENOTSUP},
        {"last offset delta negative", 23, 0xff, 70, 1, MR_ECORRUPT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t b[80];
        memcpy(b, known_batch, sizeof(known_batch));
        if (cases[i].pos != SIZE_MAX) {
            b[cases[i].pos] = cases[i].val;
        }
        if (cases[i].crc) {
            fix_crc(b, sizeof(known_batch));
        }
        struct mr_batch_info bi;
        struct mr_err err;
        mr_err_clear(&err);
        int rc = mr_batch_validate(b, cases[i].len, &bi, &err);
        if (rc != cases[i].expect) {
            print_error("case '%s': got %d (%s), want %d\n", cases[i].name, rc, err.msg,
                        cases[i].expect);
        }
        assert_int_equal(rc, cases[i].expect);
        assert_true(err.msg[0] != '\0');
    }
}

static void test_trailing_bytes(void **state)
{
    (void)state;
    /* A batch whose length claims one extra byte after the last record. */
    uint8_t b[71];
    memcpy(b, known_batch, sizeof(known_batch));
    b[70] = 0;
    b[11] = 0x3b;
    fix_crc(b, sizeof(b));
    struct mr_batch_info bi;
    assert_int_equal(mr_batch_parse(b, sizeof(b), &bi, NULL), 0);
    assert_int_equal(mr_batch_validate(b, sizeof(b), &bi, NULL), MR_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_bytes),    cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_builder_limits), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_trailing_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
