/* The record model's two encodings: every value type round-trips through binary and JSON with
 * exact sizes, every malformed input is refused with MR_ECORRUPT/MR_EPARSE naming the problem
 * (and never crashes or touches the output record), and RFC 3339 timestamps parse and format
 * correctly across the whole int64 ns range. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/error.h"
#include "millrace/names.h"
#include "millrace/record.h"

#define LIT(s) (s), (sizeof(s) - 1)

static float g_samples[MR_RECORD_MAX_SAMPLES];

static int setup_samples(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < MR_RECORD_MAX_SAMPLES; i++) {
        g_samples[i] = sinf((float)i * 0.013f) * 4.2f;
    }
    g_samples[1] = -0.0f;
    g_samples[2] = FLT_MIN / 4; /* subnormal */
    g_samples[3] = FLT_MAX;
    g_samples[4] = -FLT_MAX;
    g_samples[5] = 0.1f;
    g_samples[6] = 1.0f;
    g_samples[7] = 1e-30f;
    return 0;
}

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

static void assert_name_equal(const struct mr_names *na, mr_name_id a, const struct mr_names *nb,
                              mr_name_id b)
{
    const char *sa = mr_names_str(na, a, NULL);
    const char *sb = mr_names_str(nb, b, NULL);
    assert_non_null(sa);
    assert_non_null(sb);
    assert_string_equal(sa, sb);
}

static void assert_bytes_equal(struct mr_bytes a, struct mr_bytes b)
{
    assert_int_equal(a.len, b.len);
    if (a.len != 0) {
        assert_memory_equal(a.ptr, b.ptr, a.len);
    }
}

/* Field-by-field equality; names compared as strings so the tables may differ; floating point
 * compared bit for bit. */
static void assert_record_equal(const struct mr_record *a, const struct mr_names *na,
                                const struct mr_record *b, const struct mr_names *nb)
{
    assert_int_equal(a->time_ns, b->time_ns);
    assert_name_equal(na, a->asset, nb, b->asset);
    assert_name_equal(na, a->signal, nb, b->signal);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->quality, b->quality);
    assert_int_equal(a->ntags, b->ntags);
    switch (a->type) {
    case MR_VALUE_F64:
        assert_memory_equal(&a->v.f64, &b->v.f64, sizeof(double));
        break;
    case MR_VALUE_I64:
        assert_int_equal(a->v.i64, b->v.i64);
        break;
    case MR_VALUE_BOOL:
        assert_int_equal(a->v.b, b->v.b);
        break;
    case MR_VALUE_STRING:
        assert_bytes_equal(a->v.str, b->v.str);
        break;
    case MR_VALUE_SAMPLES:
        assert_int_equal(a->v.samples.n, b->v.samples.n);
        assert_memory_equal(&a->v.samples.rate_hz, &b->v.samples.rate_hz, sizeof(double));
        if (a->v.samples.n != 0) {
            assert_memory_equal(a->v.samples.data, b->v.samples.data, a->v.samples.n * 4);
        }
        break;
    default:
        fail_msg("bad type %u", a->type);
    }
    for (uint16_t i = 0; i < a->ntags; i++) {
        assert_name_equal(na, a->tags[i].key, nb, b->tags[i].key);
        assert_bytes_equal(a->tags[i].value, b->tags[i].value);
    }
}

/* ---- round trips ------------------------------------------------------------------------- */

struct rt_case {
    const char *label;
    int64_t time_ns;
    const char *asset, *signal;
    uint8_t type, quality;
    double f64;
    int64_t i64;
    bool b;
    const char *str;
    size_t str_len;
    uint32_t nsamples;
    double rate_hz;
    int ntags; /* -1: MR_RECORD_MAX_TAGS generated tags k0=v0.. */
    const char *tags[4];
    size_t size; /* exact binary size; 0 = not hand-computed */
    bool json;   /* false when the value has no JSON form (NaN, infinity) */
};

static const struct rt_case rt_cases[] = {
    {"f64 at epoch", 0, "a", "s", MR_VALUE_F64, MR_QUALITY_GOOD, .f64 = 1.5, .size = 17,
     .json = true},
    {"f64 negative time, tags", -1, "site/line", "temp", MR_VALUE_F64, MR_QUALITY_UNCERTAIN,
     .f64 = -273.15, .ntags = 2, .tags = {"unit", "degC", "sensor", "pt100"}, .size = 51,
     .json = true},
    {"i64 min, large time", 1795538940123456789LL, "s/a/l/m", "count", MR_VALUE_I64,
     MR_QUALITY_GOOD, .i64 = INT64_MIN, .size = 37, .json = true},
    {"i64 max at int64 min time", INT64_MIN, "a", "s", MR_VALUE_I64, MR_QUALITY_BAD,
     .i64 = INT64_MAX, .size = 28, .json = true},
    {"i64 -65 (two-byte varint)", 0, "a", "s", MR_VALUE_I64, MR_QUALITY_GOOD, .i64 = -65,
     .size = 11, .json = true},
    {"time int64 max", INT64_MAX, "a", "s", MR_VALUE_I64, MR_QUALITY_GOOD, .i64 = 0, .size = 19,
     .json = true},
    {"bool true", 5, "a", "s", MR_VALUE_BOOL, MR_QUALITY_BAD, .b = true, .size = 10, .json = true},
    {"bool false", 5, "a", "s", MR_VALUE_BOOL, MR_QUALITY_GOOD, .b = false, .size = 10,
     .json = true},
    {"empty string", 0, "a", "s", MR_VALUE_STRING, MR_QUALITY_GOOD, .str = "", .str_len = 0,
     .size = 10, .json = true},
    {"string with NUL", 0, "a", "s", MR_VALUE_STRING, MR_QUALITY_GOOD, .str = "a\0b", .str_len = 3,
     .size = 13, .json = true},
    {"string with escapes and UTF-8", -1000000000, "plant/area", "state", MR_VALUE_STRING,
     MR_QUALITY_GOOD, .str = "line \"3\"\n\t\\ \x01 \xc3\xbc \xe2\x82\xac \xf0\x9f\x98\x80",
     .str_len = 25, .json = true},
    {"samples x3", 0, "a", "s", MR_VALUE_SAMPLES, MR_QUALITY_GOOD, .nsamples = 3, .rate_hz = 10000,
     .size = 30, .json = true},
    {"samples empty", 0, "a", "s", MR_VALUE_SAMPLES, MR_QUALITY_GOOD, .nsamples = 0, .rate_hz = 0.5,
     .size = 18, .json = true},
    {"samples max block", 42, "a", "s", MR_VALUE_SAMPLES, MR_QUALITY_GOOD,
     .nsamples = MR_RECORD_MAX_SAMPLES, .rate_hz = 100000, .size = 400020, .json = true},
    {"16 tags", 0, "a", "s", MR_VALUE_F64, MR_QUALITY_GOOD, .f64 = 0, .ntags = -1, .size = 125,
     .json = true},
    {"tag with empty value", 0, "a", "s", MR_VALUE_F64, MR_QUALITY_GOOD, .f64 = 1, .ntags = 1,
     .tags = {"k", ""}, .size = 20, .json = true},
    {"f64 NaN", 0, "a", "s", MR_VALUE_F64, MR_QUALITY_BAD, .f64 = NAN, .size = 17},
    {"f64 -inf", 0, "a", "s", MR_VALUE_F64, MR_QUALITY_BAD, .f64 = -INFINITY, .size = 17},
    {"f64 -0.0", 0, "a", "s", MR_VALUE_F64, MR_QUALITY_GOOD, .f64 = -0.0, .size = 17, .json = true},
    {"f64 integral 2.0", 0, "a", "s", MR_VALUE_F64, MR_QUALITY_GOOD, .f64 = 2.0, .size = 17,
     .json = true},
    {"f64 0.1", 0, "a", "s", MR_VALUE_F64, MR_QUALITY_GOOD, .f64 = 0.1, .size = 17, .json = true},
    {"f64 1/3", 0, "a", "s", MR_VALUE_F64, MR_QUALITY_GOOD, .f64 = 1.0 / 3.0, .size = 17,
     .json = true},
    {"f64 smallest subnormal", 0, "a", "s", MR_VALUE_F64, MR_QUALITY_GOOD, .f64 = 5e-324,
     .size = 17, .json = true},
    {"f64 max", 0, "a", "s", MR_VALUE_F64, MR_QUALITY_GOOD, .f64 = DBL_MAX, .size = 17,
     .json = true},
    {"f64 1e15 (integral, exponent form)", 0, "a", "s", MR_VALUE_F64, MR_QUALITY_GOOD, .f64 = 1e15,
     .size = 17, .json = true},
};

static char g_tag_names[MR_RECORD_MAX_TAGS][2][16];

static void build_record(const struct rt_case *c, struct mr_names *names, struct mr_record *r)
{
    memset(r, 0, sizeof(*r));
    r->time_ns = c->time_ns;
    r->asset = intern(names, c->asset);
    r->signal = intern(names, c->signal);
    r->type = c->type;
    r->quality = c->quality;
    switch (c->type) {
    case MR_VALUE_F64:
        r->v.f64 = c->f64;
        break;
    case MR_VALUE_I64:
        r->v.i64 = c->i64;
        break;
    case MR_VALUE_BOOL:
        r->v.b = c->b;
        break;
    case MR_VALUE_STRING:
        r->v.str.ptr = c->str;
        r->v.str.len = (uint32_t)c->str_len;
        break;
    case MR_VALUE_SAMPLES:
        r->v.samples.data = c->nsamples ? g_samples : NULL;
        r->v.samples.n = c->nsamples;
        r->v.samples.rate_hz = c->rate_hz;
        break;
    default:
        break;
    }
    if (c->ntags < 0) {
        for (unsigned i = 0; i < MR_RECORD_MAX_TAGS; i++) {
            snprintf(g_tag_names[i][0], sizeof(g_tag_names[i][0]), "k%u", i);
            snprintf(g_tag_names[i][1], sizeof(g_tag_names[i][1]), "v%u", i);
            r->tags[i].key = intern(names, g_tag_names[i][0]);
            r->tags[i].value.ptr = g_tag_names[i][1];
            r->tags[i].value.len = (uint32_t)strlen(g_tag_names[i][1]);
        }
        r->ntags = MR_RECORD_MAX_TAGS;
        return;
    }
    for (int i = 0; i < c->ntags; i++) {
        r->tags[i].key = intern(names, c->tags[2 * i]);
        r->tags[i].value.ptr = c->tags[2 * i + 1];
        r->tags[i].value.len = (uint32_t)strlen(c->tags[2 * i + 1]);
    }
    r->ntags = (uint16_t)c->ntags;
}

enum { BIG = 4u << 20 };

static void test_binary_round_trip(void **state)
{
    (void)state;
    uint8_t *buf = malloc(BIG);
    assert_non_null(buf);
    for (size_t i = 0; i < sizeof(rt_cases) / sizeof(rt_cases[0]); i++) {
        const struct rt_case *c = &rt_cases[i];
        struct mr_names *wn = names_new();
        struct mr_names *rn = names_new(); /* the reader is another process */
        struct mr_record in, out;
        struct mr_err err = {0};
        build_record(c, wn, &in);

        size_t size = mr_record_encoded_size(&in, wn);
        if (c->size != 0) {
            assert_int_equal(size, c->size);
        }
        long n = mr_record_encode(&in, wn, buf, BIG);
        assert_int_equal(n, (long)size);
        assert_int_equal(buf[0], 1); /* version */
        int rc = mr_record_decode(&out, rn, buf, (size_t)n, &err);
        if (rc != 0) {
            fail_msg("%s: %s", c->label, err.msg);
        }
        assert_record_equal(&in, wn, &out, rn);

        /* Canonical: re-encoding the decoded record gives the same bytes. */
        uint8_t *again = malloc((size_t)n);
        assert_non_null(again);
        assert_int_equal(mr_record_encode(&out, rn, again, (size_t)n), n);
        assert_memory_equal(again, buf, (size_t)n);
        free(again);
        mr_names_destroy(wn);
        mr_names_destroy(rn);
    }
    free(buf);
}

static void test_json_round_trip(void **state)
{
    (void)state;
    char *json = malloc(BIG);
    char *scratch = malloc(BIG);
    assert_non_null(json);
    assert_non_null(scratch);
    for (size_t i = 0; i < sizeof(rt_cases) / sizeof(rt_cases[0]); i++) {
        const struct rt_case *c = &rt_cases[i];
        struct mr_names *names = names_new();
        struct mr_record in, out;
        struct mr_err err = {0};
        build_record(c, names, &in);

        long n = mr_record_to_json(&in, names, json, BIG);
        assert_true(n > 0);
        assert_int_equal(strlen(json), (size_t)n); /* no NUL inside; escaped */
        int rc = mr_record_from_json(&out, names, json, (size_t)n, scratch, BIG, &err);
        if (!c->json) {
            assert_non_null(strstr(json, "\"value\":null"));
            assert_int_equal(rc, MR_EPARSE);
            mr_names_destroy(names);
            continue;
        }
        if (rc != 0) {
            fail_msg("%s: %s in %.200s", c->label, err.msg, json);
        }
        assert_record_equal(&in, names, &out, names);
        mr_names_destroy(names);
    }
    free(json);
    free(scratch);
}

/* ---- binary: encode errors --------------------------------------------------------------- */

static void test_encode_cap_too_small(void **state)
{
    (void)state;
    struct mr_names *names = names_new();
    struct mr_record r;
    uint8_t buf[256];
    build_record(&rt_cases[1], names, &r);
    size_t size = mr_record_encoded_size(&r, names);
    assert_int_equal(size, 51);
    for (size_t cap = 0; cap < size; cap++) {
        assert_int_equal(mr_record_encode(&r, names, buf, cap), MR_ETOOBIG);
    }
    assert_int_equal(mr_record_encode(&r, names, buf, size), (long)size);
    assert_int_equal(mr_record_encode(&r, names, NULL, 0), MR_ETOOBIG);
    mr_names_destroy(names);
}

static void test_encode_invalid_records(void **state)
{
    (void)state;
    enum {
        UNKNOWN_ASSET,
        UNKNOWN_SIGNAL,
        UNKNOWN_TAG,
        TYPE_0,
        TYPE_6,
        QUALITY_3,
        TAGS_17,
        DUP_TAG,
        STR_NULL,
        SAMPLES_NULL,
        SAMPLES_TOO_MANY,
        RATE_0,
        RATE_NEG,
        RATE_NAN,
        RATE_INF,
        TAG_VALUE_NULL,
        NCASES
    };
    struct mr_names *names = names_new();
    uint8_t buf[64];
    for (int k = 0; k < NCASES; k++) {
        struct mr_record r;
        build_record(&rt_cases[11], names, &r); /* samples x3, valid */
        r.ntags = 1;
        r.tags[0].key = intern(names, "unit");
        r.tags[0].value = (struct mr_bytes){"g", 1};
        switch (k) {
        case UNKNOWN_ASSET:
            r.asset = 999;
            break;
        case UNKNOWN_SIGNAL:
            r.signal = 0;
            break;
        case UNKNOWN_TAG:
            r.tags[0].key = 999;
            break;
        case TYPE_0:
            r.type = 0;
            break;
        case TYPE_6:
            r.type = 6;
            break;
        case QUALITY_3:
            r.quality = 3;
            break;
        case TAGS_17:
            r.ntags = 17;
            break;
        case DUP_TAG:
            r.ntags = 2;
            r.tags[1] = r.tags[0];
            break;
        case STR_NULL:
            r.type = MR_VALUE_STRING;
            r.v.str = (struct mr_bytes){NULL, 3};
            break;
        case SAMPLES_NULL:
            r.v.samples.data = NULL;
            break;
        case SAMPLES_TOO_MANY:
            r.v.samples.n = MR_RECORD_MAX_SAMPLES + 1;
            break;
        case RATE_0:
            r.v.samples.rate_hz = 0;
            break;
        case RATE_NEG:
            r.v.samples.rate_hz = -1;
            break;
        case RATE_NAN:
            r.v.samples.rate_hz = NAN;
            break;
        case RATE_INF:
            r.v.samples.rate_hz = INFINITY;
            break;
        case TAG_VALUE_NULL:
            r.tags[0].value = (struct mr_bytes){NULL, 2};
            break;
        default:
            break;
        }
        assert_int_equal(mr_record_encoded_size(&r, names), 0);
        assert_int_equal(mr_record_encode(&r, names, buf, sizeof(buf)), MR_EINVAL);
    }
    assert_int_equal(mr_record_encoded_size(NULL, names), 0);
    mr_names_destroy(names);
}

/* ---- binary: malformed input ------------------------------------------------------------- */

#define HDR_F64 "\x01\x01\x00\x00"
#define NAMES                                                                                      \
    "\x01"                                                                                         \
    "a"                                                                                            \
    "\x01"                                                                                         \
    "s"
#define ONE "\x00\x00\x00\x00\x00\x00\xf0\x3f" /* 1.0 LE */

struct bad_case {
    const char *label;
    const char *bytes;
    size_t len;
    const char *msg; /* expected substring of err.msg */
};

static const struct bad_case bad_cases[] = {
    {"empty input", LIT(""), "truncated at byte 0 reading version"},
    {"header only", LIT("\x01\x01\x00"), "truncated at byte 3 reading ntags"},
    {"version 0", LIT("\x00\x01\x00\x00\x00" NAMES ONE), "unknown version 0"},
    {"version 2", LIT("\x02\x01\x00\x00\x00" NAMES ONE), "unknown version 2"},
    {"type 0", LIT("\x01\x00\x00\x00\x00" NAMES ONE), "unknown value type 0"},
    {"type 6", LIT("\x01\x06\x00\x00\x00" NAMES ONE), "unknown value type 6"},
    {"quality 3", LIT("\x01\x01\x03\x00\x00" NAMES ONE), "unknown quality 3"},
    {"17 tags", LIT("\x01\x01\x00\x11\x00" NAMES ONE), "17 tags at byte 3"},
    {"time varint 11 bytes", LIT(HDR_F64 "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01" NAMES ONE),
     "malformed varint for time at byte 4"},
    {"time varint overflows 64 bits",
     LIT(HDR_F64 "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02" NAMES ONE),
     "malformed varint for time"},
    {"time varint non-minimal", LIT(HDR_F64 "\x80\x00" NAMES ONE),
     "non-minimal varint for time at byte 4"},
    {"time varint truncated", LIT(HDR_F64 "\x80"), "truncated at byte 4 reading time"},
    {"empty asset", LIT(HDR_F64 "\x00\x00\x01s" ONE), "empty asset at byte 5"},
    {"asset with NUL",
     LIT(HDR_F64 "\x00\x03"
                 "a\0b"
                 "\x01s" ONE),
     "asset contains NUL"},
    {"asset longer than input",
     LIT(HDR_F64 "\x00\x05"
                 "ab"),
     "truncated at byte 6 reading asset (need 5 bytes, 2 left)"},
    {"asset length beyond 32 bits",
     LIT(HDR_F64 "\x00\x80\x80\x80\x80\x10"
                 "a"),
     "asset length 4294967296 too large"},
    {"empty signal",
     LIT(HDR_F64 "\x00\x01"
                 "a"
                 "\x00" ONE),
     "empty signal at byte 7"},
    {"f64 truncated", LIT(HDR_F64 "\x00" NAMES "\x00\x00\x00"),
     "truncated at byte 9 reading f64 value"},
    {"i64 truncated", LIT("\x01\x02\x00\x00\x00" NAMES "\xff"), "reading i64 value"},
    {"bool 2", LIT("\x01\x03\x00\x00\x00" NAMES "\x02"), "bool value 2 at byte 9 is not 0/1"},
    {"bool missing", LIT("\x01\x03\x00\x00\x00" NAMES), "reading bool value"},
    {"string longer than input",
     LIT("\x01\x04\x00\x00\x00" NAMES "\x04"
         "abc"),
     "truncated at byte 10 reading string value"},
    {"samples rate 0", LIT("\x01\x05\x00\x00\x00" NAMES "\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
     "sample rate 0 at byte 9"},
    {"samples rate -1", LIT("\x01\x05\x00\x00\x00" NAMES "\x00\x00\x00\x00\x00\x00\xf0\xbf\x00"),
     "sample rate -1"},
    {"samples rate NaN", LIT("\x01\x05\x00\x00\x00" NAMES "\x00\x00\x00\x00\x00\x00\xf8\x7f\x00"),
     "sample rate nan"},
    {"samples rate inf", LIT("\x01\x05\x00\x00\x00" NAMES "\x00\x00\x00\x00\x00\x00\xf0\x7f\x00"),
     "sample rate inf"},
    {"samples 100001", LIT("\x01\x05\x00\x00\x00" NAMES ONE "\xa1\x8d\x06"),
     "100001 samples at byte 17 exceed the limit of 100000"},
    {"samples shorter than n", LIT("\x01\x05\x00\x00\x00" NAMES ONE "\x02\x00\x00\x80\x3f"),
     "truncated at byte 18 reading samples (need 8 bytes, 4 left)"},
    {"trailing byte", LIT(HDR_F64 "\x00" NAMES ONE "\x00"), "1 trailing bytes at byte 17"},
    {"tag missing", LIT("\x01\x01\x00\x01\x00" NAMES ONE), "truncated at byte 17 reading tag key"},
    {"empty tag key", LIT("\x01\x01\x00\x01\x00" NAMES ONE "\x00\x01v"), "empty tag key"},
    {"tag key with NUL", LIT("\x01\x01\x00\x01\x00" NAMES ONE "\x02k\0\x01v"),
     "tag key contains NUL"},
    {"tag value truncated", LIT("\x01\x01\x00\x01\x00" NAMES ONE "\x01k\x05vv"),
     "reading tag value"},
    {"duplicate tag keys", LIT("\x01\x01\x00\x02\x00" NAMES ONE "\x01k\x01v\x01k\x01w"),
     "duplicate tag key \"k\""},
};

static void test_decode_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct mr_names *names = names_new();
        struct mr_record rec, before;
        struct mr_err err = {0};
        memset(&rec, 0xab, sizeof(rec));
        before = rec;
        int rc = mr_record_decode(&rec, names, (const uint8_t *)c->bytes, c->len, &err);
        if (rc != MR_ECORRUPT || strstr(err.msg, c->msg) == NULL) {
            fail_msg("%s: rc %d, msg \"%s\", want \"%s\"", c->label, rc, err.msg, c->msg);
        }
        assert_int_equal(err.code, MR_ECORRUPT);
        assert_memory_equal(&rec, &before, sizeof(rec)); /* untouched on failure */
        mr_names_destroy(names);
    }
}

/* The sanity of the table above: with its one defect fixed, the base encoding decodes. */
static void test_decode_minimal_valid(void **state)
{
    (void)state;
    struct mr_names *names = names_new();
    struct mr_record rec;
    struct mr_err err = {0};
    static const char ok[] = HDR_F64 "\x00" NAMES ONE;
    assert_int_equal(mr_record_decode(&rec, names, (const uint8_t *)ok, sizeof(ok) - 1, &err), 0);
    assert_int_equal(rec.type, MR_VALUE_F64);
    assert_true(rec.v.f64 == 1.0);
    assert_string_equal(mr_names_str(names, rec.asset, NULL), "a");
    assert_string_equal(mr_names_str(names, rec.signal, NULL), "s");
    mr_names_destroy(names);
}

/* Every proper prefix of a valid encoding is truncated input, and every single-byte corruption
 * either decodes or is refused: never a crash or an over-read (ASan). */
static void test_decode_truncation_and_flips(void **state)
{
    (void)state;
    static const size_t pick[] = {1, 2, 9, 10, 11, 14};
    for (size_t p = 0; p < sizeof(pick) / sizeof(pick[0]); p++) {
        struct mr_names *wn = names_new();
        struct mr_record r;
        uint8_t full[512];
        build_record(&rt_cases[pick[p]], wn, &r);
        r.ntags = 2;
        r.tags[0].key = intern(wn, "unit");
        r.tags[0].value = (struct mr_bytes){"mm/s", 4};
        r.tags[1].key = intern(wn, "axis");
        r.tags[1].value = (struct mr_bytes){"", 0};
        long n = mr_record_encode(&r, wn, full, sizeof(full));
        assert_true(n > 0);
        for (long len = 0; len < n; len++) {
            struct mr_names *rn = names_new();
            struct mr_err err = {0};
            struct mr_record out;
            /* A heap copy of exactly len bytes so ASan catches any read past the end. */
            uint8_t *copy = malloc(len == 0 ? 1 : (size_t)len);
            memcpy(copy, full, (size_t)len);
            assert_int_equal(mr_record_decode(&out, rn, copy, (size_t)len, &err), MR_ECORRUPT);
            assert_non_null(strstr(err.msg, "truncated"));
            assert_int_equal(mr_names_count(rn), 0); /* nothing interned from bad input */
            free(copy);
            mr_names_destroy(rn);
        }
        for (long at = 0; at < n; at++) {
            static const uint8_t flips[] = {0x01, 0x80, 0xff};
            for (size_t f = 0; f < sizeof(flips); f++) {
                struct mr_names *rn = names_new();
                struct mr_record out;
                uint8_t *copy = malloc((size_t)n);
                memcpy(copy, full, (size_t)n);
                copy[at] ^= flips[f];
                int rc = mr_record_decode(&out, rn, copy, (size_t)n, NULL);
                assert_true(rc == 0 || rc == MR_ECORRUPT);
                free(copy);
                mr_names_destroy(rn);
            }
        }
        mr_names_destroy(wn);
    }
}

static void test_decode_names_table_full(void **state)
{
    (void)state;
    struct mr_names *names;
    struct mr_record rec, before;
    struct mr_err err = {0};
    static const char ok[] = HDR_F64 "\x00" NAMES ONE;
    assert_int_equal(mr_names_create(&names, 1, 100), 0);
    memset(&rec, 0, sizeof(rec));
    before = rec;
    assert_int_equal(mr_record_decode(&rec, names, (const uint8_t *)ok, sizeof(ok) - 1, &err),
                     MR_ETOOBIG);
    assert_non_null(strstr(err.msg, "cannot intern"));
    assert_memory_equal(&rec, &before, sizeof(rec));
    assert_int_equal(mr_record_decode(&rec, names, NULL, 0, &err), MR_ECORRUPT);
    assert_int_equal(mr_record_decode(NULL, names, (const uint8_t *)ok, 3, &err), MR_EINVAL);
    mr_names_destroy(names);
}

/* ---- JSON writer ------------------------------------------------------------------------- */

static void test_json_exact_output(void **state)
{
    (void)state;
    struct mr_names *names = names_new();
    struct mr_record r;
    char out[512];
    memset(&r, 0, sizeof(r));
    r.time_ns = 1795538940123456789LL;
    r.asset = intern(names, "s/a/l/m");
    r.signal = intern(names, "temp");
    r.type = MR_VALUE_F64;
    r.v.f64 = 21.5;
    r.ntags = 1;
    r.tags[0].key = intern(names, "unit");
    r.tags[0].value = (struct mr_bytes){"degC", 4};
    static const char want[] = "{\"time\":\"2026-11-24T16:49:00.123456789Z\",\"asset\":\"s/a/l/m\","
                               "\"signal\":\"temp\",\"value\":21.5,\"quality\":\"good\","
                               "\"tags\":{\"unit\":\"degC\"}}";
    long n = mr_record_to_json(&r, names, out, sizeof(out));
    assert_int_equal(n, (long)strlen(want));
    assert_string_equal(out, want);

    /* Every smaller buffer is refused; exactly len + 1 (for the NUL) fits. */
    for (size_t cap = 0; cap <= (size_t)n; cap++) {
        assert_int_equal(mr_record_to_json(&r, names, out, cap), MR_ETOOBIG);
    }
    assert_int_equal(mr_record_to_json(&r, names, out, (size_t)n + 1), n);

    /* No tags: the field is omitted. */
    r.ntags = 0;
    r.quality = MR_QUALITY_UNCERTAIN;
    r.time_ns = 0;
    n = mr_record_to_json(&r, names, out, sizeof(out));
    assert_string_equal(out, "{\"time\":\"1970-01-01T00:00:00.000000000Z\",\"asset\":\"s/a/l/m\","
                             "\"signal\":\"temp\",\"value\":21.5,\"quality\":\"uncertain\"}");

    r.asset = 999;
    assert_int_equal(mr_record_to_json(&r, names, out, sizeof(out)), MR_EINVAL);
    mr_names_destroy(names);
}

static const float g_json_samples[] = {1.0f, -0.0f, 0.1f, FLT_MAX, 1e-45f, NAN};

static void test_json_value_forms(void **state)
{
    (void)state;
    static const struct {
        const char *label;
        uint8_t type;
        double f64;
        int64_t i64;
        const char *str;
        size_t str_len;
        const char *want;
    } cases[] = {
        {"integral f64", MR_VALUE_F64, .f64 = 2.0, .want = "2.0"},
        {"0.1", MR_VALUE_F64, .f64 = 0.1, .want = "0.1"},
        {"1/3: the shortest that reads back", MR_VALUE_F64, .f64 = 1.0 / 3.0,
         .want = "0.3333333333333333"},
        {"negative zero", MR_VALUE_F64, .f64 = -0.0, .want = "-0.0"},
        {"1e300", MR_VALUE_F64, .f64 = 1e300, .want = "1e+300"},
        {"NaN", MR_VALUE_F64, .f64 = NAN, .want = "null"},
        {"infinity", MR_VALUE_F64, .f64 = INFINITY, .want = "null"},
        {"i64 min", MR_VALUE_I64, .i64 = INT64_MIN, .want = "-9223372036854775808"},
        {"i64 zero", MR_VALUE_I64, .i64 = 0, .want = "0"},
        {"bool", MR_VALUE_BOOL, .want = "true"},
        {"escapes", MR_VALUE_STRING, .str = "a\"b\\c\n\r\t\b\f\x01\x1f\x7f/", .str_len = 14,
         .want = "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f/\""},
        {"NUL byte", MR_VALUE_STRING, .str = "a\0b", .str_len = 3, .want = "\"a\\u0000b\""},
        {"valid UTF-8 kept", MR_VALUE_STRING, .str = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
         .str_len = 9, .want = "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
        {"invalid byte", MR_VALUE_STRING, .str = "\xff(", .str_len = 2, .want = "\"\\ufffd(\""},
        {"overlong", MR_VALUE_STRING, .str = "\xc0\xaf", .str_len = 2,
         .want = "\"\\ufffd\\ufffd\""},
        {"surrogate", MR_VALUE_STRING, .str = "\xed\xa0\x80", .str_len = 3,
         .want = "\"\\ufffd\\ufffd\\ufffd\""},
        {"above U+10FFFF", MR_VALUE_STRING, .str = "\xf4\x90\x80\x80", .str_len = 4,
         .want = "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
        {"truncated sequence", MR_VALUE_STRING, .str = "x\xe2\x82", .str_len = 3,
         .want = "\"x\\ufffd\\ufffd\""},
        {"samples", MR_VALUE_SAMPLES,
         .want = "{\"rate_hz\":10000.0,\"samples\":[1,-0.0,0.1,3.40282347e+38,1.401298e-45,"
                 "null]}"},
    };
    struct mr_names *names = names_new();
    char out[512], want[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_record r;
        memset(&r, 0, sizeof(r));
        r.asset = intern(names, "a");
        r.signal = intern(names, "s");
        r.type = cases[i].type;
        r.v.f64 = cases[i].f64;
        if (r.type == MR_VALUE_I64) {
            r.v.i64 = cases[i].i64;
        } else if (r.type == MR_VALUE_BOOL) {
            r.v.b = true;
        } else if (r.type == MR_VALUE_STRING) {
            r.v.str = (struct mr_bytes){cases[i].str, (uint32_t)cases[i].str_len};
        } else if (r.type == MR_VALUE_SAMPLES) {
            r.v.samples = (struct mr_samples){g_json_samples, 6, 10000};
        }
        assert_true(mr_record_to_json(&r, names, out, sizeof(out)) > 0);
        snprintf(want, sizeof(want), ",\"value\":%s,\"quality\"", cases[i].want);
        if (strstr(out, want) == NULL) {
            fail_msg("%s: got %s, want %s", cases[i].label, out, cases[i].want);
        }
    }
    mr_names_destroy(names);
}

/* ---- JSON reader ------------------------------------------------------------------------- */

static void test_json_accepts(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int64_t time_ns;
        uint8_t type, quality, ntags;
    } cases[] = {
        {"{\"time\":0,\"asset\":\"a\",\"signal\":\"s\",\"value\":1}", 0, MR_VALUE_I64,
         MR_QUALITY_GOOD, 0},
        {"{\"time\":\"2026-01-01T02:00:00+02:00\",\"asset\":\"a\",\"signal\":\"s\","
         "\"value\":1.0}",
         1767225600000000000LL, MR_VALUE_F64, MR_QUALITY_GOOD, 0},
        {" {\n \"value\" : true , \"signal\":\"s\", \"asset\":\"a\", \"time\": -5 }\n", -5,
         MR_VALUE_BOOL, MR_QUALITY_GOOD, 0},
        {"{\"time\":1,\"asset\":\"a\",\"signal\":\"s\",\"value\":\"x\",\"quality\":\"bad\"}", 1,
         MR_VALUE_STRING, MR_QUALITY_BAD, 0},
        {"{\"time\":1,\"asset\":\"a\",\"signal\":\"s\",\"value\":1e3,\"quality\":\"uncertain\","
         "\"tags\":{\"unit\":\"g\",\"axis\":\"x\"}}",
         1, MR_VALUE_F64, MR_QUALITY_UNCERTAIN, 2},
        {"{\"time\":2,\"asset\":\"a\",\"signal\":\"s\",\"value\":{\"samples\":[1,2.5,-3],"
         "\"rate_hz\":25600},\"tags\":{}}",
         2, MR_VALUE_SAMPLES, MR_QUALITY_GOOD, 0},
    };
    struct mr_names *names = names_new();
    char scratch[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_record r;
        struct mr_err err = {0};
        int rc = mr_record_from_json(&r, names, cases[i].json, strlen(cases[i].json), scratch,
                                     sizeof(scratch), &err);
        if (rc != 0) {
            fail_msg("case %zu: %s", i, err.msg);
        }
        assert_int_equal(r.time_ns, cases[i].time_ns);
        assert_int_equal(r.type, cases[i].type);
        assert_int_equal(r.quality, cases[i].quality);
        assert_int_equal(r.ntags, cases[i].ntags);
        assert_string_equal(mr_names_str(names, r.asset, NULL), "a");
    }
    /* Sample values land aligned in scratch. */
    struct mr_record r;
    const char *j = "{\"time\":2,\"asset\":\"a\",\"signal\":\"s\",\"value\":\"xyz\","
                    "\"tags\":{\"t\":\"q\"}}";
    assert_int_equal(mr_record_from_json(&r, names, j, strlen(j), scratch, sizeof(scratch), NULL),
                     0);
    assert_int_equal(r.v.str.len, 3);
    assert_memory_equal(r.v.str.ptr, "xyz", 3);
    assert_true(r.v.str.ptr >= scratch && r.v.str.ptr < scratch + sizeof(scratch));
    assert_memory_equal(r.tags[0].value.ptr, "q", 1);
    mr_names_destroy(names);
}

struct json_bad {
    const char *json;
    int code;
    const char *msg;
};

#define REC(rest) "{\"time\":0,\"asset\":\"a\",\"signal\":\"s\"," rest "}"

static const struct json_bad json_bad_cases[] = {
    {"", MR_EPARSE, "json:"},
    {"not json", MR_EPARSE, "json:"},
    {"[1,2]", MR_EPARSE, "must be an object"},
    {"\"str\"", MR_EPARSE, "json:"},
    {"null", MR_EPARSE, "json:"},
    {"{\"time\":0,\"signal\":\"s\",\"value\":1}", MR_EPARSE, "missing field \"asset\""},
    {"{\"time\":0,\"asset\":\"a\",\"value\":1}", MR_EPARSE, "missing field \"signal\""},
    {"{\"time\":0,\"asset\":\"a\",\"signal\":\"s\"}", MR_EPARSE, "missing field \"value\""},
    {"{\"asset\":\"a\",\"signal\":\"s\",\"value\":1}", MR_EPARSE, "missing field \"time\""},
    {"{\"time\":0,\"asset\":1,\"signal\":\"s\",\"value\":1}", MR_EPARSE,
     "field \"asset\" must be a string"},
    {"{\"time\":0,\"asset\":\"\",\"signal\":\"s\",\"value\":1}", MR_EPARSE,
     "field \"asset\" must be a non-empty name"},
    {"{\"time\":0,\"asset\":\"a\\u0000b\",\"signal\":\"s\",\"value\":1}", MR_EPARSE, "without NUL"},
    {"{\"time\":0,\"asset\":\"a\",\"signal\":[],\"value\":1}", MR_EPARSE,
     "field \"signal\" must be a string"},
    {REC("\"value\":null"), MR_EPARSE, "field \"value\" must be"},
    {REC("\"value\":[1]"), MR_EPARSE, "field \"value\" must be"},
    {REC("\"value\":NaN"), MR_EPARSE, "json:"},
    {REC("\"value\":Infinity"), MR_EPARSE, "json:"},
    {REC("\"value\":1e400"), MR_EPARSE, "json:"},
    {REC("\"value\":-1e400"), MR_EPARSE, "json:"},
    {REC("\"value\":99999999999999999999"), MR_EPARSE, "json:"},
    {"{\"time\":\"2026-02-30T00:00:00Z\",\"asset\":\"a\",\"signal\":\"s\",\"value\":1}", MR_EPARSE,
     "\"time\" \"2026-02-30T00:00:00Z\" is not a valid RFC 3339"},
    {"{\"time\":\"3000-01-01T00:00:00Z\",\"asset\":\"a\",\"signal\":\"s\",\"value\":1}", MR_EPARSE,
     "int64 ns range"},
    {"{\"time\":1.5,\"asset\":\"a\",\"signal\":\"s\",\"value\":1}", MR_EPARSE,
     "\"time\" must be an RFC 3339 string or integer"},
    {"{\"time\":null,\"asset\":\"a\",\"signal\":\"s\",\"value\":1}", MR_EPARSE, "\"time\""},
    {REC("\"value\":1,\"quality\":\"excellent\""), MR_EPARSE, "\"quality\" must be"},
    {REC("\"value\":1,\"quality\":1"), MR_EPARSE, "\"quality\" must be"},
    {REC("\"value\":1,\"quality\":\"good\\u0000\""), MR_EPARSE, "\"quality\" must be"},
    {REC("\"value\":1,\"tags\":[]"), MR_EPARSE, "\"tags\" must be an object"},
    {REC("\"value\":1,\"tags\":{\"unit\":5}"), MR_EPARSE, "tag \"unit\" must have a string"},
    {REC("\"value\":1,\"tags\":{\"\":\"x\"}"), MR_EPARSE, "a tag key must be a non-empty"},
    {REC("\"value\":1,\"tags\":{\"a\\u0000\":\"x\"}"), MR_EPARSE, "NUL byte in object key"},
    {REC("\"value\":1,\"tags\":{\"a\":\"1\",\"b\":\"1\",\"c\":\"1\",\"d\":\"1\",\"e\":\"1\","
         "\"f\":\"1\",\"g\":\"1\",\"h\":\"1\",\"i\":\"1\",\"j\":\"1\",\"k\":\"1\",\"l\":\"1\","
         "\"m\":\"1\",\"n\":\"1\",\"o\":\"1\",\"p\":\"1\",\"q\":\"1\"}"),
     MR_ETOOBIG, "17 tags exceed the limit of 16"},
    {REC("\"value\":1,\"qualty\":\"bad\""), MR_EPARSE, "unknown field \"qualty\""},
    {REC("\"value\":1,\"value\":2"), MR_EPARSE, "duplicate"},
    {REC("\"value\":1") " x", MR_EPARSE, "json:"},
    {REC("\"value\":1") "{}", MR_EPARSE, "json:"},
    {REC("\"value\":{\"samples\":[1]}"), MR_EPARSE, "needs \"rate_hz\" and \"samples\""},
    {REC("\"value\":{\"rate_hz\":1}"), MR_EPARSE, "needs \"rate_hz\" and \"samples\""},
    {REC("\"value\":{\"rate_hz\":0,\"samples\":[]}"), MR_EPARSE, "\"rate_hz\" must be a positive"},
    {REC("\"value\":{\"rate_hz\":-1,\"samples\":[]}"), MR_EPARSE, "\"rate_hz\" must be"},
    {REC("\"value\":{\"rate_hz\":\"x\",\"samples\":[]}"), MR_EPARSE, "\"rate_hz\" must be"},
    {REC("\"value\":{\"rate_hz\":1,\"samples\":1}"), MR_EPARSE, "must be an array"},
    {REC("\"value\":{\"rate_hz\":1,\"samples\":[1,\"a\"]}"), MR_EPARSE, "\"samples\"[1] must be"},
    {REC("\"value\":{\"rate_hz\":1,\"samples\":[null]}"), MR_EPARSE, "\"samples\"[0] must be"},
    {REC("\"value\":{\"rate_hz\":1,\"samples\":[1e39]}"), MR_EPARSE, "in float range"},
    {REC("\"value\":{\"rate_hz\":1,\"samples\":[],\"unit\":\"g\"}"), MR_EPARSE,
     "unknown field \"unit\" in \"value\""},
    {REC("\"value\":{}"), MR_EPARSE, "needs"},
};

static void test_json_rejects(void **state)
{
    (void)state;
    struct mr_names *names = names_new();
    char scratch[256];
    for (size_t i = 0; i < sizeof(json_bad_cases) / sizeof(json_bad_cases[0]); i++) {
        const struct json_bad *c = &json_bad_cases[i];
        struct mr_record r, before;
        struct mr_err err = {0};
        memset(&r, 0x5a, sizeof(r));
        before = r;
        int rc = mr_record_from_json(&r, names, c->json, strlen(c->json), scratch, sizeof(scratch),
                                     &err);
        if (rc != c->code || strstr(err.msg, c->msg) == NULL) {
            fail_msg("%s: rc %d msg \"%s\", want %d \"%s\"", c->json, rc, err.msg, c->code, c->msg);
        }
        assert_memory_equal(&r, &before, sizeof(r));
    }
    mr_names_destroy(names);
}

static void test_json_limits(void **state)
{
    (void)state;
    struct mr_names *names = names_new();
    struct mr_record r;
    struct mr_err err = {0};
    char small[8];

    /* Scratch too small for a string, for samples; no scratch at all. */
    const char *j = REC("\"value\":\"123456789\"");
    assert_int_equal(mr_record_from_json(&r, names, j, strlen(j), small, sizeof(small), &err),
                     MR_ETOOBIG);
    assert_non_null(strstr(err.msg, "scratch"));
    assert_int_equal(mr_record_from_json(&r, names, j, strlen(j), NULL, 0, &err), MR_ETOOBIG);
    j = REC("\"value\":{\"rate_hz\":1,\"samples\":[1,2,3]}");
    assert_int_equal(mr_record_from_json(&r, names, j, strlen(j), small, sizeof(small), &err),
                     MR_ETOOBIG);
    assert_non_null(strstr(err.msg, "3 samples do not fit"));
    /* Misaligned scratch: the block is placed at the next float boundary. */
    _Alignas(float) char aligned[16];
    j = REC("\"value\":{\"rate_hz\":1,\"samples\":[1,2]}");
    assert_int_equal(mr_record_from_json(&r, names, j, strlen(j), aligned + 1, 11, &err), 0);
    assert_ptr_equal(r.v.samples.data, (const float *)(const void *)(aligned + 4));
    assert_true(r.v.samples.data[1] == 2.0f);
    assert_int_equal(mr_record_from_json(&r, names, j, strlen(j), aligned + 1, 10, &err),
                     MR_ETOOBIG);
    assert_int_equal(((uintptr_t)r.v.samples.data) % _Alignof(float), 0);
    /* An empty string and an empty block need no scratch. */
    j = REC("\"value\":\"\"");
    assert_int_equal(mr_record_from_json(&r, names, j, strlen(j), NULL, 0, &err), 0);
    assert_int_equal(r.v.str.len, 0);
    assert_non_null(r.v.str.ptr);

    /* Float range: FLT_MAX however spelt is accepted; half an ulp above it is infinity. */
    j = REC("\"value\":{\"rate_hz\":1,\"samples\":[3.40282347e+38,-3.4028235677973e+38]}");
    assert_int_equal(mr_record_from_json(&r, names, j, strlen(j), aligned, 16, &err), 0);
    assert_true(r.v.samples.data[0] == FLT_MAX && r.v.samples.data[1] == -FLT_MAX);
    j = REC("\"value\":{\"rate_hz\":1,\"samples\":[3.4028235677973366e+38]}");
    assert_int_equal(mr_record_from_json(&r, names, j, strlen(j), aligned, 16, &err), MR_EPARSE);

    /* One sample over the limit. */
    size_t cap = 128 + 2 * (MR_RECORD_MAX_SAMPLES + 1);
    char *big = malloc(cap);
    assert_non_null(big);
    size_t n = (size_t)snprintf(big, cap,
                                "{\"time\":0,\"asset\":\"a\",\"signal\":\"s\","
                                "\"value\":{\"rate_hz\":1,\"samples\":[0");
    for (uint32_t i = 1; i <= MR_RECORD_MAX_SAMPLES; i++) {
        big[n++] = ',';
        big[n++] = '0';
    }
    memcpy(big + n, "]}}", 3);
    n += 3;
    assert_int_equal(mr_record_from_json(&r, names, big, n, NULL, 0, &err), MR_ETOOBIG);
    assert_non_null(strstr(err.msg, "100001 samples exceed the limit"));
    free(big);

    /* A full names table is reported as such. */
    struct mr_names *tiny;
    assert_int_equal(mr_names_create(&tiny, 1, 100), 0);
    j = REC("\"value\":1");
    assert_int_equal(mr_record_from_json(&r, tiny, j, strlen(j), NULL, 0, &err), MR_ETOOBIG);
    assert_non_null(strstr(err.msg, "signal"));
    mr_names_destroy(tiny);

    assert_int_equal(mr_record_from_json(&r, names, NULL, 0, NULL, 0, &err), MR_EINVAL);
    mr_names_destroy(names);
}

/* ---- RFC 3339 ---------------------------------------------------------------------------- */

static void test_rfc3339_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        int64_t ns;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0, 0},
        {"1970-01-01T00:00:00.000000001Z", 0, 1},
        {"1969-12-31T23:59:59.999999999Z", 0, -1},
        {"1969-12-31T23:59:59Z", 0, -1000000000},
        {"2026-11-24T16:49:00.123456789Z", 0, 1795538940123456789LL},
        {"2000-01-01T00:00:00Z", 0, 946684800000000000LL},
        {"2000-02-29T00:00:00Z", 0, 951782400000000000LL},  /* divisible by 400: leap */
        {"2024-02-29T12:00:00Z", 0, 1709208000000000000LL}, /* divisible by 4: leap */
        {"1900-03-01T00:00:00Z", 0, -2203891200000000000LL},
        {"2026-01-01T02:00:00+02:00", 0, 1767225600000000000LL},
        {"2025-12-31T19:30:00-04:30", 0, 1767225600000000000LL},
        {"2026-01-01T00:00:00-00:00", 0, 1767225600000000000LL},
        {"2026-01-01T05:45:00.5+05:45", 0, 1767225600500000000LL},
        {"2026-01-01t00:00:00z", 0, 1767225600000000000LL},
        {"2026-01-01 00:00:00Z", 0, 1767225600000000000LL},
        {"1677-09-21T00:12:43.145224192Z", 0, INT64_MIN},
        {"2262-04-11T23:47:16.854775807Z", 0, INT64_MAX},
        {"1677-09-21T00:12:43.145224191Z", MR_ERANGE, 0},
        {"2262-04-11T23:47:16.854775808Z", MR_ERANGE, 0},
        {"1677-09-21T00:12:43Z", MR_ERANGE, 0},
        {"9999-12-31T23:59:59Z", MR_ERANGE, 0},
        {"0000-01-01T00:00:00Z", MR_ERANGE, 0},
        {"1900-02-29T00:00:00Z", MR_EPARSE, 0}, /* divisible by 100, not 400: not leap */
        {"2023-02-29T00:00:00Z", MR_EPARSE, 0},
        {"2026-02-30T00:00:00Z", MR_EPARSE, 0},
        {"2026-04-31T00:00:00Z", MR_EPARSE, 0},
        {"2026-13-01T00:00:00Z", MR_EPARSE, 0},
        {"2026-00-10T00:00:00Z", MR_EPARSE, 0},
        {"2026-01-00T00:00:00Z", MR_EPARSE, 0},
        {"2026-01-01T24:00:00Z", MR_EPARSE, 0},
        {"2026-01-01T23:60:00Z", MR_EPARSE, 0},
        {"2026-12-31T23:59:60Z", MR_EPARSE, 0}, /* leap second: not representable */
        {"2026-01-01T00:00:00.1234567891Z", MR_EPARSE, 0},
        {"2026-01-01T00:00:00.Z", MR_EPARSE, 0},
        {"2026-01-01T00:00:00", MR_EPARSE, 0},
        {"2026-01-01T00:00:00+2:00", MR_EPARSE, 0},
        {"2026-01-01T00:00:00+24:00", MR_EPARSE, 0},
        {"2026-01-01T00:00:00+02:60", MR_EPARSE, 0},
        {"2026-01-01T00:00:00+0200", MR_EPARSE, 0},
        {"2026-01-01T00:00:00ZZ", MR_EPARSE, 0},
        {"2026-01-01T00:00:00Z ", MR_EPARSE, 0},
        {"2026-01-01X00:00:00Z", MR_EPARSE, 0},
        {"2026/01/01T00:00:00Z", MR_EPARSE, 0},
        {"20a6-01-01T00:00:00Z", MR_EPARSE, 0},
        {"2026-1-01T00:00:00Z", MR_EPARSE, 0},
        {"-026-01-01T00:00:00Z", MR_EPARSE, 0},
        {"2026-01-01", MR_EPARSE, 0},
        {"", MR_EPARSE, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ns = 12345;
        int rc = mr_time_parse_rfc3339(cases[i].s, strlen(cases[i].s), &ns);
        if (rc != cases[i].rc) {
            fail_msg("%s: rc %d, want %d", cases[i].s, rc, cases[i].rc);
        }
        assert_int_equal(ns, rc == 0 ? cases[i].ns : 12345);
    }
    /* Fractional digits 0..9 scale to ns. */
    static const int64_t frac[] = {0,         100000000, 120000000, 123000000, 123400000,
                                   123450000, 123456000, 123456700, 123456780, 123456789};
    for (int k = 0; k <= 9; k++) {
        char s[40];
        int64_t ns;
        int len =
            snprintf(s, sizeof(s), "2000-01-01T00:00:00%s%.*sZ", k ? "." : "", k, "123456789");
        assert_int_equal(mr_time_parse_rfc3339(s, (size_t)len, &ns), 0);
        assert_int_equal(ns, 946684800000000000LL + frac[k]);
    }
    /* Length is honoured: a valid prefix followed by junk the caller excluded. */
    int64_t ns;
    assert_int_equal(mr_time_parse_rfc3339("1970-01-01T00:00:01Zjunk", 20, &ns), 0);
    assert_int_equal(ns, 1000000000);
    assert_int_equal(mr_time_parse_rfc3339(NULL, 0, &ns), MR_EPARSE);
}

static void test_rfc3339_format(void **state)
{
    (void)state;
    static const struct {
        int64_t ns;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000000000Z"},
        {-1, "1969-12-31T23:59:59.999999999Z"},
        {1795538940123456789LL, "2026-11-24T16:49:00.123456789Z"},
        {951782400000000000LL, "2000-02-29T00:00:00.000000000Z"},
        {-2203891200000000000LL, "1900-03-01T00:00:00.000000000Z"},
        {INT64_MIN, "1677-09-21T00:12:43.145224192Z"},
        {INT64_MAX, "2262-04-11T23:47:16.854775807Z"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(mr_time_format_rfc3339(cases[i].ns, out, sizeof(out)), 30);
        assert_string_equal(out, cases[i].want);
    }
    assert_int_equal(mr_time_format_rfc3339(0, out, 30), 0); /* no room for the NUL */
    assert_int_equal(mr_time_format_rfc3339(0, out, 31), 30);
    assert_int_equal(mr_time_format_rfc3339(0, NULL, 0), 0);

    /* Format then parse is the identity across the whole range (xorshift sample). */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t v = (int64_t)x, back;
        size_t len = mr_time_format_rfc3339(v, out, sizeof(out));
        assert_int_equal(len, 30);
        assert_int_equal(mr_time_parse_rfc3339(out, len, &back), 0);
        assert_int_equal(back, v);
    }
}

/* The hot path: with names already known, encode, decode and to_json never allocate. */
static void test_hot_path_does_not_allocate(void **state)
{
    (void)state;
    struct mr_names *names = names_new();
    struct mr_record r, out;
    struct mr_err err = {0};
    uint8_t buf[256];
    char json[512];
    build_record(&rt_cases[1], names, &r);
    long n = mr_record_encode(&r, names, buf, sizeof(buf));
    assert_true(n > 0);
    mr_alloc_fail_after(0);
    assert_int_equal(mr_record_encode(&r, names, buf, sizeof(buf)), n);
    assert_int_equal(mr_record_decode(&out, names, buf, (size_t)n, &err), 0);
    assert_true(mr_record_to_json(&out, names, json, sizeof(json)) > 0);
    long failures = mr_alloc_injected_failures();
    mr_alloc_fail_after(-1);
    assert_int_equal(failures, 0);
    assert_record_equal(&r, names, &out, names);
    mr_names_destroy(names);
}

static void test_names_of_enums(void **state)
{
    (void)state;
    assert_string_equal(mr_quality_name(MR_QUALITY_GOOD), "good");
    assert_string_equal(mr_quality_name(MR_QUALITY_UNCERTAIN), "uncertain");
    assert_string_equal(mr_quality_name(MR_QUALITY_BAD), "bad");
    assert_string_equal(mr_quality_name((enum mr_quality)7), "unknown");
    assert_string_equal(mr_value_type_name(MR_VALUE_F64), "f64");
    assert_string_equal(mr_value_type_name(MR_VALUE_I64), "i64");
    assert_string_equal(mr_value_type_name(MR_VALUE_BOOL), "bool");
    assert_string_equal(mr_value_type_name(MR_VALUE_STRING), "string");
    assert_string_equal(mr_value_type_name(MR_VALUE_SAMPLES), "samples");
    assert_string_equal(mr_value_type_name((enum mr_value_type)0), "unknown");
}

/* JSON parsing allocates (jansson builds a tree) through mr_malloc: an allocation failure is a
 * clean MR_ENOMEM, and the next parse succeeds. */
static void test_json_parse_out_of_memory(void **state)
{
    (void)state;
    struct mr_names *names = names_new();
    static const char line[] = "{\"time\":1,\"asset\":\"a/b/c/d\",\"signal\":\"t\",\"value\":1.5}";
    struct mr_record r;
    struct mr_err err = {0};
    char scratch[256];
    mr_alloc_fail_after(0);
    int rc = mr_record_from_json(&r, names, line, sizeof(line) - 1, scratch, sizeof(scratch), &err);
    long failures = mr_alloc_injected_failures();
    mr_alloc_fail_after(-1);
    assert_int_equal(rc, MR_ENOMEM);
    assert_true(failures > 0);
    assert_int_equal(
        mr_record_from_json(&r, names, line, sizeof(line) - 1, scratch, sizeof(scratch), &err), 0);
    assert_true(r.type == MR_VALUE_F64 && r.v.f64 == 1.5);
    mr_names_destroy(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_round_trip),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_encode_cap_too_small),
        cmocka_unit_test(test_encode_invalid_records),
        cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_decode_minimal_valid),
        cmocka_unit_test(test_decode_truncation_and_flips),
        cmocka_unit_test(test_decode_names_table_full),
        cmocka_unit_test(test_json_exact_output),
        cmocka_unit_test(test_json_value_forms),
        cmocka_unit_test(test_json_accepts),
        cmocka_unit_test(test_json_rejects),
        cmocka_unit_test(test_json_limits),
        cmocka_unit_test(test_rfc3339_parse),
        cmocka_unit_test(test_rfc3339_format),
        cmocka_unit_test(test_hot_path_does_not_allocate),
        cmocka_unit_test(test_names_of_enums),
        cmocka_unit_test(test_json_parse_out_of_memory),
    };
    return cmocka_run_group_tests(tests, setup_samples, NULL);
}
