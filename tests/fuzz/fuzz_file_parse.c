/* libFuzzer target for the file input's text parsers (src/inputs/file_parse.c).
 *
 * The input's first line is a time format (pattern or keyword), the rest is CSV:
 *  - mr_time_format_init on the first line; when it is accepted, every field of every row is
 *    also parsed as a time with it (must not crash; a success must be reproducible);
 *  - the rest is split into rows the way the file input walks its buffer: each row must stay
 *    inside the bytes given, consume at least one byte, and splitting the same bytes with a
 *    shorter window must either ask for more or give the same row;
 *  - every field goes through mr_csv_unescape (never longer than the field) and
 *    mr_number_parse, whose answer must equal strtod's for text strtod reads entirely.
 * Any mismatch aborts: that is the fuzzer's signal. Build and run: tests/fuzz/run.sh. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/file_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_file_parse: check failed: %s (line %d)\n", #cond, __LINE__);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct mr_csv_row row;
static struct mr_csv_row again;

static void check_number(const struct mr_csv_field *f)
{
    char text[80];
    double v;
    int rc = mr_number_parse(f->ptr, f->len, &v);
    if (f->len >= sizeof(text) || memchr(f->ptr, '\0', f->len) != NULL) {
        return;
    }
    memcpy(text, f->ptr, f->len);
    text[f->len] = '\0';
    if (rc == 0) {
        /* What we accept, strtod reads to the same double (after the blanks we trim). */
        const char *s = text;
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        CHECK(strtod(s, NULL) == v);
        CHECK(isfinite(v));
    }
}

static void check_fields(const char *p, size_t n, const struct mr_time_format *tf)
{
    char out[256];
    for (size_t i = 0; i < row.nfields; i++) {
        const struct mr_csv_field *f = &row.fields[i];
        CHECK(f->ptr >= p && f->ptr + f->len <= p + n);
        long u = mr_csv_unescape(f, out, sizeof(out));
        CHECK(u <= (long)f->len);
        check_number(f);
        if (tf != NULL) {
            int64_t a, b;
            int rc = mr_time_format_parse(tf, f->ptr, f->len, &a);
            CHECK(rc == 0 || rc == MR_EPARSE || rc == MR_ERANGE);
            if (rc == 0) {
                CHECK(mr_time_format_parse(tf, f->ptr, f->len, &b) == 0 && a == b);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nl = memchr(p, '\n', size);
    size_t head = nl != NULL ? (size_t)(nl - p) : size;
    char pattern[128];
    struct mr_time_format tf;
    bool have_tf = false;
    if (head < sizeof(pattern) && memchr(p, '\0', head) == NULL) {
        memcpy(pattern, p, head);
        pattern[head] = '\0';
        have_tf = mr_time_format_init(&tf, pattern, size % 3 == 0 ? "+01:30" : NULL, NULL) == 0;
    }
    size_t pos = nl != NULL ? head + 1 : size;
    char delim = size % 2 == 0 ? ',' : ';';
    while (pos < size) {
        size_t n = size - pos;
        int rc = mr_csv_split(p + pos, n, true, delim, &row);
        CHECK(rc == 0 || rc == MR_EPARSE);
        CHECK(row.consumed > 0 && row.consumed <= n);
        if (rc == 0) {
            check_fields(p + pos, n, have_tf ? &tf : NULL);
            /* Without the end of the data, the same row or a request for more. */
            int rc2 = mr_csv_split(p + pos, row.consumed, false, delim, &again);
            CHECK(rc2 == MR_CSV_MORE ||
                  (rc2 == 0 && again.consumed == row.consumed && again.nfields == row.nfields));
        }
        pos += row.consumed;
    }
    return 0;
}
