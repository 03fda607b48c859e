/* libFuzzer target for the journal's batch parser and segment scanner.
 *
 * The input is parsed as one RecordBatch v2 and every record and header is walked; a batch that
 * validates is rebuilt record by record with mr_batch_builder and must parse back to the same
 * timestamps, keys, values and headers. The same bytes are then scanned as a whole segment file
 * (as crash recovery and `journal verify` do), which must stop cleanly at the first bad batch.
 * Any mismatch aborts: that is the fuzzer's signal.
 *
 * Build (see tests/fuzz/run.sh):
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_GNU_SOURCE \
 *     tests/fuzz/fuzz_batch.c src/core/{error,alloc,crc32c}.c src/journal/[a-z]*.c -lpthread \
 *     -o fuzz_batch
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "journal/journal_internal.h"
#include "millrace/alloc.h"
#include "millrace/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_batch: check failed: %s (line %d)\n", #cond, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_HEADERS 32

static bool inside(const uint8_t *p, int32_t len, const struct mr_batch_info *bi)
{
    return len <= 0 || (p >= bi->records && p + len <= bi->records + bi->records_len);
}

/* Rebuild the batch from its records; false if it cannot be expressed (too many headers). */
static bool rebuild(const struct mr_batch_info *bi, uint8_t *out, size_t cap, size_t *len)
{
    struct mr_batch_builder b;
    CHECK(mr_batch_builder_init(&b, out, cap) == 0);
    struct mr_batch_iter it;
    struct mr_batch_record rec;
    mr_batch_iter_init(&it, bi);
    while (mr_batch_iter_next(&it, &rec, NULL) == 0) {
        struct mr_batch_header h[MAX_HEADERS];
        size_t n = 0, pos = 0;
        if (rec.header_count > MAX_HEADERS) {
            return false;
        }
        while (mr_batch_header_next(&rec, &pos, &h[n]) == 0) {
            n++;
        }
        CHECK(n == rec.header_count);
        CHECK(mr_batch_builder_add(&b, rec.timestamp, rec.key, rec.key_len, rec.value,
                                   rec.value_len, h, n) == 0);
    }
    const uint8_t *d;
    return mr_batch_builder_finish(&b, &d, len) == 0;
}

static void compare(const struct mr_batch_info *a, const struct mr_batch_info *b)
{
    struct mr_batch_iter ia, ib;
    struct mr_batch_record ra, rb;
    mr_batch_iter_init(&ia, a);
    mr_batch_iter_init(&ib, b);
    while (mr_batch_iter_next(&ia, &ra, NULL) == 0) {
        CHECK(mr_batch_iter_next(&ib, &rb, NULL) == 0);
        CHECK(ra.timestamp == rb.timestamp);
        CHECK(ra.key_len == rb.key_len && ra.value_len == rb.value_len);
        CHECK(ra.key_len <= 0 || memcmp(ra.key, rb.key, (size_t)ra.key_len) == 0);
        CHECK(ra.value_len <= 0 || memcmp(ra.value, rb.value, (size_t)ra.value_len) == 0);
        CHECK(ra.headers_len == rb.headers_len &&
              memcmp(ra.headers, rb.headers, ra.headers_len) == 0);
    }
    CHECK(mr_batch_iter_next(&ib, &rb, NULL) == MR_EEOF);
}

static void fuzz_one_batch(const uint8_t *data, size_t size)
{
    struct mr_batch_info bi;
    struct mr_err err;
    if (mr_batch_parse(data, size, &bi, &err) != 0) {
        return;
    }
    CHECK(bi.size <= size && bi.records + bi.records_len == data + bi.size);
    struct mr_batch_iter it;
    struct mr_batch_record rec;
    int rc;
    int32_t n = 0;
    mr_batch_iter_init(&it, &bi);
    while ((rc = mr_batch_iter_next(&it, &rec, &err)) == 0) {
        CHECK(inside(rec.key, rec.key_len, &bi) && inside(rec.value, rec.value_len, &bi));
        CHECK(rec.offset >= bi.base_offset && rec.offset <= bi.base_offset + bi.last_offset_delta);
        size_t pos = 0;
        struct mr_batch_header h;
        while (mr_batch_header_next(&rec, &pos, &h) == 0) {
        }
        n++;
    }
    if (rc != MR_EEOF) {
        return;
    }
    CHECK(n == bi.count);
    CHECK(mr_batch_validate(data, size, &bi, NULL) == 0);
    size_t cap = bi.size + 64 + (size_t)bi.count * 16;
    uint8_t *out = mr_malloc(cap);
    size_t len;
    if (out != NULL && rebuild(&bi, out, cap, &len)) {
        struct mr_batch_info nb;
        CHECK(mr_batch_validate(out, len, &nb, NULL) == 0);
        CHECK(nb.count == bi.count);
        compare(&bi, &nb);
    }
    mr_free(out);
}

static void fuzz_segment(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_batch", 0);
    if (fd < 0) {
        return;
    }
    if (write(fd, data, size) == (ssize_t)size) {
        struct mr_scan sc;
        mr_segment_scan(fd, 0, size, 0, true, NULL, NULL, &sc);
        CHECK(sc.valid_end <= size);
        CHECK(sc.error != 0 || sc.valid_end == size);
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_one_batch(data, size);
    fuzz_segment(data, size);
    return 0;
}
