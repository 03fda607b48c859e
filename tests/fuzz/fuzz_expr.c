/* libFuzzer target for the record expression compiler (engine/expr.h), whose input comes from
 * configuration files.
 *
 * The bytes (up to the first NUL) are compiled twice: for checking only (names NULL) and for
 * real. Both must agree on the outcome and the message. A compiled expression is evaluated on
 * records of every value type, twice each (the second answer comes from the name cache) and
 * must give the same answer both times. Any disagreement aborts: that is the fuzzer's signal.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/expr.h"
#include "millrace/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_expr: check failed: %s (line %d)\n", #cond, __LINE__);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool same(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mr_names *names;
    static struct mr_record recs[5];
    static const float samples[2] = {1, 2};
    if (names == NULL) {
        CHECK(mr_names_create(&names, 1u << 20, 64u << 20) == 0);
        mr_name_id asset = 0;
        mr_name_id signal = 0;
        mr_name_id key = 0;
        CHECK(mr_names_intern(names, "plant1/line2/press3", 19, &asset) == 0);
        CHECK(mr_names_intern(names, "temp", 4, &signal) == 0);
        CHECK(mr_names_intern(names, "x", 1, &key) == 0);
        for (int i = 0; i < 5; i++) {
            recs[i] = (struct mr_record){.time_ns = 1000000000LL * i,
                                         .asset = asset,
                                         .signal = signal,
                                         .type = (uint8_t)(i + 1),
                                         .quality = (uint8_t)(i % 3),
                                         .ntags = 1,
                                         .tags = {{.key = key, .value = {.ptr = "v", .len = 1}}}};
        }
        recs[0].v.f64 = 21.5;
        recs[1].v.i64 = -7;
        recs[2].v.b = true;
        recs[3].v.str = (struct mr_bytes){.ptr = "RUNNING", .len = 7};
        recs[4].v.samples = (struct mr_samples){.data = samples, .n = 2, .rate_hz = 10};
    }
    char src[MR_EXPR_MAX_LEN + 2];
    size_t n = size < sizeof(src) - 1 ? size : sizeof(src) - 1;
    memcpy(src, data, n);
    src[n] = '\0';

    struct mr_expr *check = NULL;
    struct mr_expr *e = NULL;
    struct mr_err err1 = {0};
    struct mr_err err2 = {0};
    int rc1 = mr_expr_compile(&check, src, NULL, &err1);
    int rc2 = mr_expr_compile(&e, src, names, &err2);
    /* Interning can only fail when the names table is full, which this target never fills. */
    CHECK(rc1 == rc2);
    CHECK(rc1 != 0 || (check != NULL && e != NULL));
    CHECK(rc1 == 0 || strcmp(err1.msg, err2.msg) == 0);
    for (int i = 0; rc2 == 0 && i < 5; i++) {
        double a = mr_expr_eval(e, &recs[i]);
        double b = mr_expr_eval(e, &recs[i]);
        CHECK(same(a, b));
        CHECK(mr_expr_test(e, &recs[i]) == (!isnan(a) && a != 0));
    }
    mr_expr_destroy(check);
    mr_expr_destroy(e);
    return 0;
}
