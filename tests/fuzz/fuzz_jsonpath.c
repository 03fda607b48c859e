/* libFuzzer target for the MQTT input's JSON path extractor (src/inputs/jsonpath.c).
 *
 * The input is walked as one JSON document. Checks:
 *  - every leaf's raw token lies inside the input, its path is NUL-terminated at path_len and
 *    no longer than MR_JSON_MAX_PATH;
 *  - a number leaf's value equals strtod of its token; an integer leaf's value equals strtoll;
 *  - a string leaf unescapes (it passed the walker's escape check) into at most its raw length;
 *  - the walk is deterministic: a second walk reports the same number of leaves and answer.
 * Any mismatch aborts: that is the fuzzer's signal. Build and run: tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/jsonpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_jsonpath: check failed: %s (line %d)\n", #cond, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct state {
    const char *buf;
    size_t size;
    size_t leaves;
};

static int leaf_cb(void *arg, const struct mr_json_leaf *leaf)
{
    struct state *s = arg;
    s->leaves++;
    CHECK(leaf->raw >= s->buf && leaf->raw + leaf->raw_len <= s->buf + s->size);
    CHECK(leaf->path_len <= MR_JSON_MAX_PATH && leaf->path[leaf->path_len] == '\0');
    char text[128];
    if (leaf->kind == MR_JSON_NUMBER) {
        CHECK(leaf->raw_len < sizeof(text));
        memcpy(text, leaf->raw, leaf->raw_len);
        text[leaf->raw_len] = '\0';
        double v = strtod(text, NULL);
        CHECK(v == leaf->num || (v != v && leaf->num != leaf->num));
        if (leaf->is_int) {
            CHECK(strtoll(text, NULL, 10) == leaf->i);
        }
    } else if (leaf->kind == MR_JSON_STRING) {
        char *out = malloc(leaf->raw_len + 1);
        CHECK(out != NULL);
        long n = mr_json_unescape(leaf->raw, leaf->raw_len, out, leaf->raw_len);
        CHECK(n >= 0 && (size_t)n <= leaf->raw_len);
        if (!leaf->escaped) {
            CHECK((size_t)n == leaf->raw_len && memcmp(out, leaf->raw, leaf->raw_len) == 0);
        }
        free(out);
    } else {
        CHECK(leaf->kind == MR_JSON_BOOL || leaf->kind == MR_JSON_NULL);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct state a = {.buf = (const char *)data, .size = size};
    struct state b = a;
    struct mr_err err;
    int rc = mr_json_walk(a.buf, size, leaf_cb, &a, &err);
    int rc2 = mr_json_walk(b.buf, size, leaf_cb, &b, &err);
    CHECK(rc == rc2 && a.leaves == b.leaves);
    CHECK(rc == 0 || rc == MR_EPARSE || rc == MR_ETOOBIG);
    return 0;
}
