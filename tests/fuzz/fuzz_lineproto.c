/* libFuzzer target for the InfluxDB line protocol parser (src/inputs/lineproto.c), shared by
 * the MQTT input and the HTTP /write ingest.
 *
 * The input is split into lines with mr_lineproto_next, and each line is parsed at every
 * precision. Checks:
 *  - splitting: each line lies inside the input and the walk ends;
 *  - a parsed point's names, tag values and string fields lie inside the line or inside the
 *    scratch bytes the parser used (which never exceed the line's length), and are non-empty
 *    where the grammar requires it; counts stay within their caps;
 *  - parsing is deterministic (same line, same answer), and a timestamp at precision s is the
 *    one at ns times 10^9 whenever both parse.
 * Any mismatch aborts: that is the fuzzer's signal. Build and run: tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/lineproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_lineproto: check failed: %s (line %d)\n", #cond, __LINE__);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct mr_lp_point pt, again;

static void check_bytes(struct mr_bytes b, const char *line, size_t len, const char *scratch,
                        size_t cap, int nonempty)
{
    int in_line = b.ptr >= line && b.ptr + b.len <= line + len;
    int in_scratch = b.ptr >= scratch && b.ptr + b.len <= scratch + cap;
    CHECK(in_line || in_scratch || b.len == 0);
    if (nonempty) {
        CHECK(b.len > 0);
    }
}

static void check_line(const char *line, size_t len)
{
    char *scratch = malloc(len + 1);
    char *scratch2 = malloc(len + 1);
    CHECK(scratch != NULL && scratch2 != NULL);
    struct mr_err err;
    int rc = mr_lineproto_parse_line(line, len, MR_LP_NS, &pt, scratch, len, &err);
    int rc2 = mr_lineproto_parse_line(line, len, MR_LP_NS, &again, scratch2, len, &err);
    CHECK(rc == rc2);
    if (rc == 0) {
        CHECK(pt.nfields >= 1 && pt.nfields <= MR_LP_MAX_FIELDS);
        CHECK(pt.ntags <= MR_LP_MAX_TAGS);
        CHECK(pt.nfields == again.nfields && pt.ntags == again.ntags);
        CHECK(pt.has_time == again.has_time && pt.time_ns == again.time_ns);
        check_bytes(pt.measurement, line, len, scratch, len, 1);
        for (size_t i = 0; i < pt.ntags; i++) {
            check_bytes(pt.tags[i].key, line, len, scratch, len, 1);
            check_bytes(pt.tags[i].value, line, len, scratch, len, 1);
        }
        for (size_t i = 0; i < pt.nfields; i++) {
            check_bytes(pt.fields[i].key, line, len, scratch, len, 1);
            CHECK(pt.fields[i].type >= MR_LP_FLOAT && pt.fields[i].type <= MR_LP_BOOL);
            CHECK(pt.fields[i].type == again.fields[i].type);
            if (pt.fields[i].type == MR_LP_STRING) {
                check_bytes(pt.fields[i].v.s, line, len, scratch, len, 0);
            }
        }
        int rs = mr_lineproto_parse_line(line, len, MR_LP_S, &again, scratch2, len, &err);
        if (rs == 0 && pt.has_time) {
            CHECK(again.time_ns / 1000000000 == pt.time_ns);
        }
    }
    free(scratch);
    free(scratch2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t pos = 0, len, lines = 0;
    const char *line;
    while (mr_lineproto_next(buf, size, &pos, &line, &len)) {
        CHECK(line >= buf && line + len <= buf + size);
        CHECK(pos <= size);
        CHECK(++lines <= size);
        check_line(line, len);
    }
    return 0;
}
