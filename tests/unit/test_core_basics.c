/* Error table, allocation fault injection, CRC-32C against published check values, varints. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/crc32c.h"
#include "millrace/error.h"
#include "millrace/varint.h"

static void test_error_table(void **state)
{
    (void)state;
    assert_string_equal(mr_strerror(MR_OK), "success");
    assert_string_equal(mr_strerror(MR_ENOSPC), "no space left on device");
    assert_string_equal(mr_error_name(MR_ECORRUPT), "MR_ECORRUPT");
    assert_string_equal(mr_strerror(-9999), "unknown error");
    assert_string_equal(mr_error_name(-9999), "MR_UNKNOWN");
    static const struct {
        int errnum;
        int code;
    } map[] = {{0, MR_OK},        {ENOSPC, MR_ENOSPC}, {EDQUOT, MR_ENOSPC},
               {EROFS, MR_EROFS}, {ENOENT, MR_ENOENT}, {EACCES, MR_EACCES},
               {EIO, MR_EIO},     {ENOMEM, MR_ENOMEM}, {EXDEV, MR_ESYS}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        assert_int_equal(mr_err_from_errno(map[i].errnum), map[i].code);
    }
}

static void test_err_set(void **state)
{
    (void)state;
    struct mr_err err;
    mr_err_clear(&err);
    assert_int_equal(err.code, 0);
    int rc = MR_ERR_SET(&err, MR_ECONFIG, "%s:%d:%d: bad port %d", "a.yaml", 3, 7, 70000);
    assert_int_equal(rc, MR_ECONFIG);
    assert_int_equal(err.code, MR_ECONFIG);
    assert_string_equal(err.msg, "a.yaml:3:7: bad port 70000");
    assert_non_null(strstr(err.file, "test_core_basics.c"));
    assert_true(err.line > 0);
    assert_int_equal(MR_ERR_SET(NULL, MR_EIO, "ignored"), MR_EIO);
    char long_name[400];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    MR_ERR_SET(&err, MR_EINVAL, "%s", long_name); /* truncated, still terminated */
    assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
}

static void test_alloc_fault_injection(void **state)
{
    (void)state;
    mr_alloc_fail_after(2);
    void *a = mr_malloc(8);
    void *b = mr_calloc(2, 8);
    void *c = mr_malloc(8);
    void *d = mr_strdup("x");
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    assert_null(d);
    assert_int_equal(mr_alloc_injected_failures(), 2);
    mr_alloc_fail_after(-1);
    void *e = mr_malloc(8);
    assert_non_null(e);
    char *s = mr_strndup("abcdef", 3);
    assert_string_equal(s, "abc");
    mr_free(a);
    mr_free(b);
    mr_free(e);
    mr_free(s);
    mr_free(NULL);
}

/* Check values from RFC 3720 appendix B.4 (iSCSI CRC32C) and the "123456789" catalogue value. */
static void test_crc32c_published(void **state)
{
    (void)state;
    uint8_t zeros[32], ones[32], inc[32], dec[32];
    memset(zeros, 0, sizeof(zeros));
    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++) {
        inc[i] = (uint8_t)i;
        dec[i] = (uint8_t)(31 - i);
    }
    static const char check[] = "123456789";
    const struct {
        const void *p;
        size_t n;
        uint32_t crc;
    } cases[] = {{check, 9, 0xE3069283u}, {zeros, 32, 0x8A9136AAu}, {ones, 32, 0x62A8AB43u},
                 {inc, 32, 0x46DD794Eu},  {dec, 32, 0x113FDB5Cu},   {check, 0, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(mr_crc32c(0, cases[i].p, cases[i].n), cases[i].crc);
        assert_int_equal(mr_crc32c_portable(0, cases[i].p, cases[i].n), cases[i].crc);
    }
}

static void test_crc32c_paths_agree(void **state)
{
    (void)state;
    uint8_t buf[1031];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t len = 0; len < sizeof(buf); len += 37) {
        uint32_t whole = mr_crc32c(0, buf, len);
        assert_int_equal(mr_crc32c_portable(0, buf, len), whole);
        size_t cut = len / 3;
        assert_int_equal(mr_crc32c(mr_crc32c(0, buf, cut), buf + cut, len - cut), whole);
    }
}

static void test_varint_table(void **state)
{
    (void)state;
    /* Signed zig-zag values and their encodings (protobuf / Kafka "varint"). */
    static const struct {
        int64_t v;
        uint8_t bytes[10];
        size_t n;
    } cases[] = {
        {0, {0x00}, 1},
        {-1, {0x01}, 1},
        {1, {0x02}, 1},
        {-64, {0x7f}, 1},
        {64, {0x80, 0x01}, 2},
        {150, {0xac, 0x02}, 2},
        {INT64_MAX, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
        {INT64_MIN, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[MR_VARINT_MAX];
        size_t n = mr_varint_put(out, cases[i].v);
        assert_int_equal(n, cases[i].n);
        assert_int_equal(mr_varint_len(cases[i].v), n);
        assert_memory_equal(out, cases[i].bytes, n);
        int64_t back = 0;
        assert_int_equal(mr_varint_get(out, n, &back), n);
        assert_true(back == cases[i].v);
        /* every truncation is rejected */
        for (size_t cut = 0; cut < n; cut++) {
            assert_int_equal(mr_varint_get(out, cut, &back), 0);
        }
    }
}

static void test_varint_malformed(void **state)
{
    (void)state;
    uint64_t v;
    const uint8_t eleven[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    assert_int_equal(mr_uvarint_get(eleven, sizeof(eleven), &v), 0);
    const uint8_t overflow[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    assert_int_equal(mr_uvarint_get(overflow, sizeof(overflow), &v), 0);
    const uint8_t max[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(mr_uvarint_get(max, sizeof(max), &v), 10);
    assert_true(v == UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_table),           cmocka_unit_test(test_err_set),
        cmocka_unit_test(test_alloc_fault_injection), cmocka_unit_test(test_crc32c_published),
        cmocka_unit_test(test_crc32c_paths_agree),    cmocka_unit_test(test_varint_table),
        cmocka_unit_test(test_varint_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
