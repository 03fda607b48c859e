/* Sparkplug B decoding: births bind aliases, data decodes every datatype into typed records,
 * seq gaps, unknown aliases and data before a birth ask for a rebirth (once per retry period),
 * deaths make metrics stale (bad quality) unless they belong to an older session, malformed
 * topics and bytes are refused with a message naming the topic, and the rebirth NCMD payload
 * decodes as the specification says. Payloads are built with the generated protobuf-c code. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "inputs/sparkplug.h"
#include "millrace/alloc.h"
#include "millrace/names.h"
#include "sparkplug_b.pb-c.h"

#define MAXREC  256
#define NOW_NS  ((int64_t)1700000000000 * 1000000)
#define T0_MS   1800000000000ull
#define NO_SEQ  -1
#define NO_QUAL -1

/* ---- fixture: a state whose hooks copy what comes out ------------------------------------ */

struct got {
    struct mr_record rec[MAXREC];
    char str[MAXREC][64];
    size_t n;
    int rebirths;
    char last_group[64], last_node[64], last_reason[128];
    int fail_with; /* records hook returns this when negative */
};

struct fix {
    struct mr_names *names;
    struct mr_sparkplug *sp;
    struct got got;
};

static int on_records(void *ctx, const struct mr_record *recs, size_t n)
{
    struct got *g = ctx;
    if (g->fail_with < 0) {
        return g->fail_with;
    }
    for (size_t i = 0; i < n && g->n < MAXREC; i++, g->n++) {
        g->rec[g->n] = recs[i];
        if (recs[i].type == MR_VALUE_STRING) {
            size_t len = recs[i].v.str.len < 63 ? recs[i].v.str.len : 63;
            memcpy(g->str[g->n], recs[i].v.str.ptr, len);
            g->str[g->n][len] = '\0';
            g->rec[g->n].v.str.ptr = g->str[g->n];
        }
    }
    return 0;
}

static void on_rebirth(void *ctx, const char *group, const char *node, const char *reason)
{
    struct got *g = ctx;
    g->rebirths++;
    snprintf(g->last_group, sizeof g->last_group, "%s", group);
    snprintf(g->last_node, sizeof g->last_node, "%s", node);
    snprintf(g->last_reason, sizeof g->last_reason, "%s", reason);
}

static int setup_conf(void **state, const struct mr_sparkplug_conf *conf)
{
    struct fix *f = test_calloc(1, sizeof *f);
    struct mr_err err = {0};
    assert_int_equal(mr_names_create(&f->names, 4096, 1 << 20), 0);
    struct mr_sparkplug_hooks hooks = {
        .ctx = &f->got, .records = on_records, .rebirth = on_rebirth};
    assert_int_equal(mr_sparkplug_create(&f->sp, f->names, conf, &hooks, &err), 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    struct mr_sparkplug_conf conf = {.asset_prefix = "plant", .rebirth_retry_ns = 1000000000};
    return setup_conf(state, &conf);
}

static int teardown(void **state)
{
    struct fix *f = *state;
    mr_sparkplug_destroy(f->sp);
    mr_names_destroy(f->names);
    test_free(f);
    return 0;
}

/* ---- payload builder -------------------------------------------------------------------- */

struct m {
    const char *name;
    int64_t alias; /* < 0: none */
    uint32_t datatype;
    int vcase; /* SPB__PAYLOAD__METRIC__VALUE_* */
    uint64_t u;
    double d;
    const char *s;
    uint64_t ts; /* 0: none */
    bool historical, is_null;
    int quality; /* NO_QUAL: no property */
};

/* Pack a payload (timestamp 0: none) into out; returns its length. */
static size_t build(uint8_t *out, size_t cap, uint64_t ts, int seq, const struct m *ms, size_t n)
{
    Spb__Payload p = SPB__PAYLOAD__INIT;
    Spb__Payload__Metric mm[40];
    Spb__Payload__Metric *mp[40];
    Spb__Payload__PropertySet ps[40];
    Spb__Payload__PropertyValue pv[40];
    Spb__Payload__PropertyValue *pvp[40];
    char *qkey[1] = {(char *)"Quality"};
    assert_true(n <= 40);
    for (size_t i = 0; i < n; i++) {
        Spb__Payload__Metric *x = &mm[i];
        spb__payload__metric__init(x);
        x->name = (char *)ms[i].name;
        x->has_alias = ms[i].alias >= 0;
        x->alias = (uint64_t)ms[i].alias;
        x->has_datatype = ms[i].datatype != 0;
        x->datatype = ms[i].datatype;
        x->has_timestamp = ms[i].ts != 0;
        x->timestamp = ms[i].ts;
        x->has_is_historical = ms[i].historical;
        x->is_historical = ms[i].historical;
        x->has_is_null = ms[i].is_null;
        x->is_null = ms[i].is_null;
        x->value_case = (Spb__Payload__Metric__ValueCase)ms[i].vcase;
        switch (ms[i].vcase) {
        case SPB__PAYLOAD__METRIC__VALUE_INT_VALUE:
            x->int_value = (uint32_t)ms[i].u;
            break;
        case SPB__PAYLOAD__METRIC__VALUE_LONG_VALUE:
            x->long_value = ms[i].u;
            break;
        case SPB__PAYLOAD__METRIC__VALUE_FLOAT_VALUE:
            x->float_value = (float)ms[i].d;
            break;
        case SPB__PAYLOAD__METRIC__VALUE_DOUBLE_VALUE:
            x->double_value = ms[i].d;
            break;
        case SPB__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE:
            x->boolean_value = ms[i].u != 0;
            break;
        case SPB__PAYLOAD__METRIC__VALUE_STRING_VALUE:
            x->string_value = (char *)ms[i].s;
            break;
        case SPB__PAYLOAD__METRIC__VALUE_BYTES_VALUE:
            x->bytes_value = (ProtobufCBinaryData){.len = 3, .data = (uint8_t *)"abc"};
            break;
        default:
            x->value_case = SPB__PAYLOAD__METRIC__VALUE__NOT_SET;
            break;
        }
        if (ms[i].quality != NO_QUAL) {
            spb__payload__property_set__init(&ps[i]);
            spb__payload__property_value__init(&pv[i]);
            pv[i].has_type = true;
            pv[i].type = MR_SPB_INT32;
            pv[i].value_case = SPB__PAYLOAD__PROPERTY_VALUE__VALUE_INT_VALUE;
            pv[i].int_value = (uint32_t)ms[i].quality;
            pvp[i] = &pv[i];
            ps[i].n_keys = 1;
            ps[i].keys = qkey;
            ps[i].n_values = 1;
            ps[i].values = &pvp[i];
            x->properties = &ps[i];
        }
        mp[i] = x;
    }
    p.has_timestamp = ts != 0;
    p.timestamp = ts;
    p.has_seq = seq >= 0;
    p.seq = (uint64_t)(seq < 0 ? 0 : seq);
    p.n_metrics = n;
    p.metrics = mp;
    size_t len = spb__payload__get_packed_size(&p);
    assert_true(len <= cap);
    return spb__payload__pack(&p, out);
}

#define I32(name_, alias_, v_)                                                                     \
    {                                                                                              \
        .name = (name_), .alias = (alias_), .datatype = MR_SPB_INT32,                              \
        .vcase = SPB__PAYLOAD__METRIC__VALUE_INT_VALUE, .u = (uint32_t)(v_), .quality = NO_QUAL    \
    }
#define DBL(name_, alias_, v_)                                                                     \
    {                                                                                              \
        .name = (name_), .alias = (alias_), .datatype = MR_SPB_DOUBLE,                             \
        .vcase = SPB__PAYLOAD__METRIC__VALUE_DOUBLE_VALUE, .d = (v_), .quality = NO_QUAL           \
    }
#define BDSEQ(v_)                                                                                  \
    {                                                                                              \
        .name = "bdSeq", .alias = -1, .datatype = MR_SPB_INT64,                                    \
        .vcase = SPB__PAYLOAD__METRIC__VALUE_LONG_VALUE, .u = (v_), .quality = NO_QUAL             \
    }

static int send(struct fix *f, const char *topic, uint64_t ts, int seq, const struct m *ms,
                size_t n)
{
    uint8_t buf[8192];
    struct mr_err err = {0};
    size_t len = build(buf, sizeof buf, ts, seq, ms, n);
    return mr_sparkplug_handle(f->sp, topic, strlen(topic), buf, len, NOW_NS, &err);
}

static const char *name_of(struct fix *f, mr_name_id id)
{
    const char *s = mr_names_str(f->names, id, NULL);
    return s != NULL ? s : "?";
}

static struct mr_sparkplug_stats stats(struct fix *f)
{
    struct mr_sparkplug_stats s;
    mr_sparkplug_stats_get(f->sp, &s);
    return s;
}

/* NBIRTH of g1/n1 with bdSeq 3, a control metric, Temperature (alias 1) and Count (alias 2). */
static void birth_node(struct fix *f)
{
    const struct m birth[] = {
        BDSEQ(3),
        {.name = "Node Control/Rebirth",
         .alias = 9,
         .datatype = MR_SPB_BOOLEAN,
         .vcase = SPB__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE,
         .quality = NO_QUAL},
        DBL("Temperature", 1, 20.0),
        I32("Count", 2, -5),
    };
    assert_int_equal(send(f, "spBv1.0/g1/NBIRTH/n1", T0_MS, 0, birth, 4), 0);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_birth_then_data_by_alias(void **state)
{
    struct fix *f = *state;
    birth_node(f);
    /* Births emit their values; bdSeq and Node Control metrics are protocol, not data. */
    assert_int_equal(f->got.n, 2);
    assert_string_equal(name_of(f, f->got.rec[0].asset), "plant/g1/n1");
    assert_string_equal(name_of(f, f->got.rec[0].signal), "Temperature");
    assert_int_equal(f->got.rec[0].type, MR_VALUE_F64);
    assert_true(f->got.rec[0].v.f64 == 20.0);
    assert_int_equal(f->got.rec[0].time_ns, (int64_t)T0_MS * 1000000);
    assert_string_equal(name_of(f, f->got.rec[1].signal), "Count");
    assert_int_equal(f->got.rec[1].v.i64, -5);

    /* Data by alias only, metric timestamp wins over the payload's. */
    struct m data[] = {DBL(NULL, 1, 21.5), I32(NULL, 2, 7)};
    data[0].ts = T0_MS + 500;
    assert_int_equal(send(f, "spBv1.0/g1/NDATA/n1", T0_MS + 1000, 1, data, 2), 0);
    assert_int_equal(f->got.n, 4);
    assert_string_equal(name_of(f, f->got.rec[2].signal), "Temperature");
    assert_true(f->got.rec[2].v.f64 == 21.5);
    assert_int_equal(f->got.rec[2].time_ns, (int64_t)(T0_MS + 500) * 1000000);
    assert_int_equal(f->got.rec[2].quality, MR_QUALITY_GOOD);
    assert_int_equal(f->got.rec[3].time_ns, (int64_t)(T0_MS + 1000) * 1000000);
    assert_int_equal(f->got.rec[3].v.i64, 7);
    assert_int_equal(f->got.rebirths, 0);

    /* A payload without any timestamp takes the receive time. */
    assert_int_equal(send(f, "spBv1.0/g1/NDATA/n1", 0, 2, data + 1, 1), 0);
    assert_int_equal(f->got.rec[4].time_ns, NOW_NS);
    struct mr_sparkplug_stats s = stats(f);
    assert_int_equal(s.messages, 3);
    assert_int_equal(s.records, 5);
    assert_int_equal(s.seq_gaps, 0);
}

static void test_data_by_name_without_aliases(void **state)
{
    struct fix *f = *state;
    const struct m birth[] = {BDSEQ(0), DBL("Line/Speed", -1, 1.0), I32("Line/Count", -1, 1)};
    assert_int_equal(send(f, "spBv1.0/g1/NBIRTH/n1", T0_MS, 0, birth, 3), 0);
    const struct m data[] = {I32("Line/Count", -1, 42)};
    assert_int_equal(send(f, "spBv1.0/g1/NDATA/n1", T0_MS, 1, data, 1), 0);
    assert_int_equal(f->got.n, 3);
    assert_string_equal(name_of(f, f->got.rec[2].signal), "Line/Count");
    assert_int_equal(f->got.rec[2].v.i64, 42);
}

/* Every datatype: the record type and value it decodes to, or not turned into a record. */
static void test_every_datatype(void **state)
{
    struct fix *f = *state;
    enum {
        I = SPB__PAYLOAD__METRIC__VALUE_INT_VALUE,
        L = SPB__PAYLOAD__METRIC__VALUE_LONG_VALUE,
        F = SPB__PAYLOAD__METRIC__VALUE_FLOAT_VALUE,
        D = SPB__PAYLOAD__METRIC__VALUE_DOUBLE_VALUE,
        B = SPB__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE,
        S = SPB__PAYLOAD__METRIC__VALUE_STRING_VALUE,
        Y = SPB__PAYLOAD__METRIC__VALUE_BYTES_VALUE
    };
    static const struct {
        uint32_t datatype;
        int vcase;
        uint64_t u;
        double d;
        const char *s;
        uint8_t want_type; /* 0: no record */
        int64_t want_i;
        double want_f;
    } table[] = {
        {MR_SPB_INT8, I, 0xff, 0, NULL, MR_VALUE_I64, -1, 0},
        {MR_SPB_INT8, I, 0xffffff80u, 0, NULL, MR_VALUE_I64, -128, 0},
        {MR_SPB_INT16, I, 0x8000, 0, NULL, MR_VALUE_I64, -32768, 0},
        {MR_SPB_INT32, I, 0x80000000u, 0, NULL, MR_VALUE_I64, INT32_MIN, 0},
        {MR_SPB_INT64, L, (uint64_t)-2, 0, NULL, MR_VALUE_I64, -2, 0},
        {MR_SPB_UINT8, I, 200, 0, NULL, MR_VALUE_I64, 200, 0},
        {MR_SPB_UINT16, I, 65535, 0, NULL, MR_VALUE_I64, 65535, 0},
        {MR_SPB_UINT32, I, 4000000000u, 0, NULL, MR_VALUE_I64, 4000000000, 0},
        {MR_SPB_UINT64, L, 42, 0, NULL, MR_VALUE_I64, 42, 0},
        {MR_SPB_UINT64, L, 1ull << 63, 0, NULL, MR_VALUE_F64, 0, 9223372036854775808.0},
        {MR_SPB_FLOAT, F, 0, 1.5, NULL, MR_VALUE_F64, 0, 1.5},
        {MR_SPB_DOUBLE, D, 0, -2.25, NULL, MR_VALUE_F64, 0, -2.25},
        {MR_SPB_BOOLEAN, B, 1, 0, NULL, MR_VALUE_BOOL, 1, 0},
        {MR_SPB_STRING, S, 0, 0, "running", MR_VALUE_STRING, 0, 0},
        {MR_SPB_DATETIME, L, T0_MS, 0, NULL, MR_VALUE_I64, (int64_t)T0_MS, 0},
        {MR_SPB_TEXT, S, 0, 0, "long text", MR_VALUE_STRING, 0, 0},
        {MR_SPB_UUID, S, 0, 0, "0f8fad5b-d9cb-469f-a165-70867728950e", MR_VALUE_STRING, 0, 0},
        {MR_SPB_DATASET, 0, 0, 0, NULL, 0, 0, 0},
        {MR_SPB_BYTES, Y, 0, 0, NULL, 0, 0, 0},
        {MR_SPB_FILE, Y, 0, 0, NULL, 0, 0, 0},
        {MR_SPB_TEMPLATE, 0, 0, 0, NULL, 0, 0, 0},
        {MR_SPB_INT32ARRAY, Y, 0, 0, NULL, 0, 0, 0},
        {MR_SPB_DATETIMEARRAY, Y, 0, 0, NULL, 0, 0, 0},
        {99, L, 1, 0, NULL, 0, 0, 0},
    };
    enum { N = sizeof table / sizeof table[0] };
    struct m ms[N + 1];
    char names[N][16];
    ms[0] = (struct m)BDSEQ(1);
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "m%zu", i);
        ms[i + 1] = (struct m){.name = names[i],
                               .alias = (int64_t)i + 10,
                               .datatype = table[i].datatype,
                               .vcase = table[i].vcase,
                               .u = table[i].u,
                               .d = table[i].d,
                               .s = table[i].s,
                               .quality = NO_QUAL};
    }
    assert_int_equal(send(f, "spBv1.0/g1/NBIRTH/n1", T0_MS, 0, ms, N + 1), 0);
    /* The same values again as data, by alias only. */
    for (size_t i = 0; i < N; i++) {
        ms[i + 1].name = NULL;
    }
    assert_int_equal(send(f, "spBv1.0/g1/NDATA/n1", T0_MS, 1, ms + 1, N), 0);

    size_t want_records = 0;
    for (size_t i = 0; i < N; i++) {
        want_records += table[i].want_type != 0;
    }
    assert_int_equal(f->got.n, 2 * want_records);
    for (size_t pass = 0; pass < 2; pass++) {
        size_t k = pass * want_records;
        for (size_t i = 0; i < N; i++) {
            if (table[i].want_type == 0) {
                continue;
            }
            const struct mr_record *r = &f->got.rec[k++];
            assert_string_equal(name_of(f, r->signal), names[i]);
            assert_int_equal(r->type, table[i].want_type);
            assert_int_equal(r->quality, MR_QUALITY_GOOD);
            if (r->type == MR_VALUE_I64) {
                assert_int_equal(r->v.i64, table[i].want_i);
            } else if (r->type == MR_VALUE_F64) {
                assert_true(r->v.f64 == table[i].want_f);
            } else if (r->type == MR_VALUE_BOOL) {
                assert_true(r->v.b);
            } else {
                assert_string_equal(f->got.str[k - 1], table[i].s);
            }
        }
    }
    assert_int_equal(stats(f).unsupported, 2 * (N - want_records));
}

static void test_value_not_matching_datatype_is_dropped(void **state)
{
    struct fix *f = *state;
    birth_node(f);
    /* Temperature is a Double: a string value for it is malformed and dropped, counted. */
    const struct m data[] = {{.alias = 1,
                              .vcase = SPB__PAYLOAD__METRIC__VALUE_STRING_VALUE,
                              .s = "hot",
                              .quality = NO_QUAL},
                             I32(NULL, 2, 3)};
    assert_int_equal(send(f, "spBv1.0/g1/NDATA/n1", T0_MS, 1, data, 2), 0);
    assert_int_equal(f->got.n, 3);
    assert_int_equal(f->got.rec[2].v.i64, 3);
    assert_int_equal(stats(f).dropped, 1);
}

static void test_quality_historical_null(void **state)
{
    struct fix *f = *state;
    birth_node(f);
    struct m data[] = {DBL(NULL, 1, 1.0), DBL(NULL, 1, 2.0), DBL(NULL, 1, 3.0), DBL(NULL, 1, 4.0),
                       DBL(NULL, 1, 5.0)};
    data[0].quality = 192; /* OPC good */
    data[1].quality = 64;  /* uncertain */
    data[2].quality = 0;   /* bad */
    data[3].historical = true;
    data[4].is_null = true;
    assert_int_equal(send(f, "spBv1.0/g1/NDATA/n1", T0_MS, 1, data, 5), 0);
    assert_int_equal(f->got.n, 7);
    assert_int_equal(f->got.rec[2].quality, MR_QUALITY_GOOD);
    assert_int_equal(f->got.rec[3].quality, MR_QUALITY_UNCERTAIN);
    assert_int_equal(f->got.rec[4].quality, MR_QUALITY_BAD);
    assert_int_equal(f->got.rec[5].ntags, 1);
    assert_string_equal(name_of(f, f->got.rec[5].tags[0].key), "historical");
    assert_memory_equal(f->got.rec[5].tags[0].value.ptr, "true", 4);
    assert_int_equal(f->got.rec[6].quality, MR_QUALITY_BAD);
    assert_int_equal(f->got.rec[6].type, MR_VALUE_F64);
    assert_int_equal(f->got.rec[2].ntags, 0);
}

static void test_seq_gap_requests_rebirth_once(void **state)
{
    struct fix *f = *state;
    birth_node(f);
    const struct m data[] = {DBL(NULL, 1, 1.0)};
    assert_int_equal(send(f, "spBv1.0/g1/NDATA/n1", T0_MS, 1, data, 1), 0);
    assert_int_equal(f->got.rebirths, 0);
    /* seq 2 lost: the data still decodes (its aliases are known), a rebirth is asked. */
    assert_int_equal(send(f, "spBv1.0/g1/NDATA/n1", T0_MS, 3, data, 1), 0);
    assert_int_equal(f->got.n, 4);
    assert_int_equal(f->got.rebirths, 1);
    assert_string_equal(f->got.last_group, "g1");
    assert_string_equal(f->got.last_node, "n1");
    assert_string_equal(f->got.last_reason, "sequence gap: expected 2, got 3");
    /* Another gap within the retry period: no second request. */
    assert_int_equal(send(f, "spBv1.0/g1/NDATA/n1", T0_MS, 9, data, 1), 0);
    assert_int_equal(f->got.rebirths, 1);
    assert_int_equal(stats(f).seq_gaps, 2);
    /* A message without seq is a gap too. */
    assert_int_equal(send(f, "spBv1.0/g1/NDATA/n1", T0_MS, NO_SEQ, data, 1), 0);
    assert_int_equal(stats(f).seq_gaps, 3);
    /* After the retry period the request is repeated. */
    uint8_t buf[256];
    size_t len = build(buf, sizeof buf, T0_MS, 200, data, 1);
    assert_int_equal(
        mr_sparkplug_handle(f->sp, "spBv1.0/g1/NDATA/n1", 19, buf, len, NOW_NS + 2000000000, NULL),
        0);
    assert_int_equal(f->got.rebirths, 2);
    /* The rebirth clears the pending request; seq restarts at 0 and wraps 255 -> 0. */
    birth_node(f);
    for (int seq = 1; seq <= 300; seq++) {
        assert_int_equal(send(f, "spBv1.0/g1/NDATA/n1", T0_MS, seq % 256, data, 1), 0);
    }
    assert_int_equal(f->got.rebirths, 2);
    assert_int_equal(stats(f).seq_gaps, 4);
}

static void test_unknown_alias_and_data_before_birth(void **state)
{
    struct fix *f = *state;
    const struct m data[] = {DBL(NULL, 77, 1.0)};
    /* Data from a node never born: dropped, rebirth asked. */
    assert_int_equal(send(f, "spBv1.0/g1/NDATA/n9", T0_MS, 5, data, 1), 0);
    assert_int_equal(f->got.n, 0);
    assert_int_equal(f->got.rebirths, 1);
    assert_string_equal(f->got.last_node, "n9");
    assert_string_equal(f->got.last_reason, "data before the node's NBIRTH");
    assert_int_equal(stats(f).no_birth, 1);

    birth_node(f);
    size_t before = f->got.n;
    assert_int_equal(send(f, "spBv1.0/g1/NDATA/n1", T0_MS, 1, data, 1), 0);
    assert_int_equal(f->got.n, before);
    assert_int_equal(f->got.rebirths, 2);
    assert_string_equal(f->got.last_reason, "unknown metric alias");
    assert_int_equal(stats(f).unknown_alias, 1);
}

static void test_devices_and_deaths(void **state)
{
    struct fix *f = *state;
    birth_node(f);
    const struct m dbirth[] = {DBL("Pressure", 1, 5.5), I32("Mode", 2, 3)};
    assert_int_equal(send(f, "spBv1.0/g1/DBIRTH/n1/press7", T0_MS, 1, dbirth, 2), 0);
    assert_int_equal(f->got.n, 4);
    assert_string_equal(name_of(f, f->got.rec[2].asset), "plant/g1/n1/press7");
    const struct m ddata[] = {DBL(NULL, 1, 6.5)};
    assert_int_equal(send(f, "spBv1.0/g1/DDATA/n1/press7", T0_MS, 2, ddata, 1), 0);
    assert_true(f->got.rec[4].v.f64 == 6.5);
    /* Data of an unknown device: dropped, the node is asked to rebirth. */
    assert_int_equal(send(f, "spBv1.0/g1/DDATA/n1/other", T0_MS, 3, ddata, 1), 0);
    assert_int_equal(f->got.n, 5);
    assert_int_equal(f->got.rebirths, 1);

    /* An NDEATH of an older session (bdSeq 2, the node was born with 3) is ignored. */
    const struct m old_death[] = {BDSEQ(2)};
    assert_int_equal(send(f, "spBv1.0/g1/NDEATH/n1", T0_MS + 5, NO_SEQ, old_death, 1), 0);
    assert_int_equal(f->got.n, 5);
    assert_int_equal(stats(f).stale_deaths, 1);

    /* The real NDEATH: every metric of the node and its device goes bad, last value kept. */
    const struct m death[] = {BDSEQ(3)};
    assert_int_equal(send(f, "spBv1.0/g1/NDEATH/n1", T0_MS + 9, NO_SEQ, death, 1), 0);
    assert_int_equal(f->got.n, 9);
    for (size_t i = 5; i < 9; i++) {
        assert_int_equal(f->got.rec[i].quality, MR_QUALITY_BAD);
        assert_int_equal(f->got.rec[i].time_ns, NOW_NS); /* the will's stamp is stale */
    }
    assert_string_equal(name_of(f, f->got.rec[5].asset), "plant/g1/n1/press7");
    assert_string_equal(name_of(f, f->got.rec[5].signal), "Pressure");
    assert_true(f->got.rec[5].v.f64 == 6.5);
    assert_string_equal(name_of(f, f->got.rec[7].asset), "plant/g1/n1");
    assert_string_equal(name_of(f, f->got.rec[7].signal), "Temperature");
    assert_true(f->got.rec[7].v.f64 == 20.0);
    assert_int_equal(stats(f).stale, 4);

    /* Dead: data is not accepted until a new birth. */
    const struct m data[] = {DBL(NULL, 1, 1.0)};
    assert_int_equal(send(f, "spBv1.0/g1/NDATA/n1", T0_MS, 4, data, 1), 0);
    assert_int_equal(f->got.n, 9);
    assert_int_equal(stats(f).no_birth, 2); /* the unknown device, then this */

    /* DDEATH makes only the device stale. */
    birth_node(f);
    assert_int_equal(send(f, "spBv1.0/g1/DBIRTH/n1/press7", T0_MS, 1, dbirth, 2), 0);
    size_t before = f->got.n;
    assert_int_equal(send(f, "spBv1.0/g1/DDEATH/n1/press7", T0_MS, 2, NULL, 0), 0);
    assert_int_equal(f->got.n, before + 2);
    assert_int_equal(f->got.rec[before].quality, MR_QUALITY_BAD);
    assert_int_equal(f->got.rec[before].time_ns, (int64_t)T0_MS * 1000000);
    assert_string_equal(name_of(f, f->got.rec[before].asset), "plant/g1/n1/press7");
}

static void test_malformed_input_is_refused(void **state)
{
    struct fix *f = *state;
    static const char *const bad_topics[] = {
        "spAv1.0/g1/NDATA/n1", "spBv1.0/g1",          "spBv1.0/g1/NDATA", "spBv1.0/g1/NDATA/n1/d/x",
        "spBv1.0//NDATA/n1",   "spBv1.0/g1/DDATA/n1", "plant/line/temp",
    };
    struct mr_err err = {0};
    uint8_t ok[64];
    const struct m data[] = {DBL(NULL, 1, 1.0)};
    size_t oklen = build(ok, sizeof ok, T0_MS, 1, data, 1);
    for (size_t i = 0; i < sizeof bad_topics / sizeof bad_topics[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(mr_sparkplug_handle(f->sp, bad_topics[i], strlen(bad_topics[i]), ok, oklen,
                                             NOW_NS, &err),
                         MR_EPARSE);
        assert_non_null(strstr(err.msg, bad_topics[i]));
    }
    /* Bytes that are not a protobuf (truncated, wrong wire type). */
    static const uint8_t junk[][6] = {{0x12, 0x05, 0x0a}, {0x0f, 0xff, 0xff, 0xff, 0xff, 0xff}};
    for (size_t i = 0; i < 2; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(
            mr_sparkplug_handle(f->sp, "spBv1.0/g1/NDATA/n1", 19, junk[i], 6, NOW_NS, &err),
            MR_EPARSE);
        assert_non_null(strstr(err.msg, "spBv1.0/g1/NDATA/n1"));
        assert_non_null(strstr(err.msg, "not a Sparkplug B protobuf"));
    }
    /* Truncating a valid payload anywhere never crashes. */
    for (size_t cut = 1; cut < oklen; cut++) {
        (void)mr_sparkplug_handle(f->sp, "spBv1.0/g1/NDATA/n1", 19, ok, cut, NOW_NS, NULL);
    }
    assert_int_equal(f->got.n, 0);
    assert_true(stats(f).malformed >= 9);
    /* STATE and commands are not data: accepted, nothing emitted. */
    assert_int_equal(mr_sparkplug_handle(f->sp, "spBv1.0/STATE/host1", 19, (const uint8_t *)"{}", 2,
                                         NOW_NS, &err),
                     0);
    assert_int_equal(mr_sparkplug_handle(f->sp, "spBv1.0/g1/NCMD/n1", 18, ok, oklen, NOW_NS, &err),
                     0);
    assert_int_equal(f->got.n, 0);
}

static void test_arena_and_caps(void **state)
{
    (void)state;
    void *st;
    struct mr_sparkplug_conf conf = {.arena_bytes = 2048, .max_metrics = 3, .max_entities = 2};
    setup_conf(&st, &conf);
    struct fix *f = st;
    struct mr_err err = {0};
    uint8_t buf[8192];
    struct m many[30];
    for (size_t i = 0; i < 30; i++) {
        many[i] = (struct m)DBL("some metric name", (int64_t)i, 1.0);
    }
    size_t len = build(buf, sizeof buf, T0_MS, 0, many, 30);
    assert_int_equal(mr_sparkplug_handle(f->sp, "spBv1.0/g/NBIRTH/n", 18, buf, len, NOW_NS, &err),
                     MR_EPARSE);
    assert_non_null(strstr(err.msg, "arena_bytes"));
    /* Four metrics fit the arena but not max_metrics. */
    len = build(buf, sizeof buf, T0_MS, 0, many, 4);
    assert_int_equal(mr_sparkplug_handle(f->sp, "spBv1.0/g/NBIRTH/n", 18, buf, len, NOW_NS, &err),
                     MR_EPARSE);
    assert_non_null(strstr(err.msg, "declares 4 metrics"));
    /* max_entities: the third node is dropped, counted. */
    len = build(buf, sizeof buf, T0_MS, 0, many, 1);
    assert_int_equal(mr_sparkplug_handle(f->sp, "spBv1.0/g/NBIRTH/a", 18, buf, len, NOW_NS, &err),
                     0);
    assert_int_equal(mr_sparkplug_handle(f->sp, "spBv1.0/g/NBIRTH/b", 18, buf, len, NOW_NS, &err),
                     0);
    assert_int_equal(f->got.n, 1);
    assert_true(stats(f).dropped >= 1);
    teardown(&st);
}

static void test_records_hook_error_stops(void **state)
{
    struct fix *f = *state;
    f->got.fail_with = MR_EIO;
    const struct m birth[] = {BDSEQ(0), DBL("x", 1, 1.0)};
    assert_int_equal(send(f, "spBv1.0/g1/NBIRTH/n1", T0_MS, 0, birth, 2), MR_EIO);
}

static void test_create_and_alloc_failures(void **state)
{
    (void)state;
    struct mr_names *names;
    struct mr_sparkplug *sp = NULL;
    struct mr_err err = {0};
    struct mr_sparkplug_conf conf = {0};
    struct mr_sparkplug_hooks hooks = {0};
    assert_int_equal(mr_names_create(&names, 64, 4096), 0);
    assert_int_equal(mr_sparkplug_create(NULL, names, &conf, &hooks, &err), MR_EINVAL);
    conf.max_entities = 1u << 30;
    assert_int_equal(mr_sparkplug_create(&sp, names, &conf, &hooks, &err), MR_ECONFIG);
    assert_null(sp);
    conf.max_entities = 16;
    for (long k = 0; k < 5; k++) {
        mr_alloc_fail_after(k);
        int rc = mr_sparkplug_create(&sp, names, &conf, &hooks, &err);
        mr_alloc_fail_after(-1);
        if (rc == 0) {
            mr_sparkplug_destroy(sp);
            sp = NULL;
        } else {
            assert_int_equal(rc, MR_ENOMEM);
        }
    }
    mr_sparkplug_destroy(NULL);
    mr_names_destroy(names);
}

/* Allocation failures while loading births: the error is reported, nothing leaks, and the
 * state keeps working once memory is back. */
static void test_birth_alloc_failures(void **state)
{
    struct fix *f = *state;
    uint8_t buf[512];
    struct mr_err err;
    const struct m birth[] = {BDSEQ(0), DBL("Temperature", 1, 1.0), I32("Count", 2, 2)};
    size_t len = build(buf, sizeof buf, T0_MS, 0, birth, 3);
    int failures = 0;
    for (long k = 0; k < 12; k++) {
        mr_alloc_fail_after(k);
        int rc = mr_sparkplug_handle(f->sp, "spBv1.0/g1/NBIRTH/n1", 20, buf, len, NOW_NS, &err);
        mr_alloc_fail_after(-1);
        assert_true(rc == 0 || rc == MR_ENOMEM);
        failures += rc != 0;
    }
    assert_true(failures > 0);
    f->got.n = 0;
    assert_int_equal(mr_sparkplug_handle(f->sp, "spBv1.0/g1/NBIRTH/n1", 20, buf, len, NOW_NS, &err),
                     0);
    assert_int_equal(f->got.n, 2);
}

static void test_rebirth_command(void **state)
{
    (void)state;
    char topic[64];
    uint8_t buf[64];
    assert_int_equal(mr_sparkplug_rebirth_topic("g1", "n1", topic, sizeof topic), 18);
    assert_string_equal(topic, "spBv1.0/g1/NCMD/n1");
    assert_int_equal(mr_sparkplug_rebirth_topic("g1", "n1", topic, 10), MR_ETOOBIG);
    assert_int_equal(mr_sparkplug_rebirth_encode(T0_MS, buf, 4), MR_ETOOBIG);
    long len = mr_sparkplug_rebirth_encode(T0_MS, buf, sizeof buf);
    assert_true(len > 0);
    Spb__Payload *p = spb__payload__unpack(NULL, (size_t)len, buf);
    assert_non_null(p);
    assert_true(p->has_timestamp && p->timestamp == T0_MS);
    assert_false(p->has_seq);
    assert_int_equal(p->n_metrics, 1);
    assert_string_equal(p->metrics[0]->name, "Node Control/Rebirth");
    assert_int_equal(p->metrics[0]->datatype, MR_SPB_BOOLEAN);
    assert_int_equal(p->metrics[0]->value_case, SPB__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE);
    assert_true(p->metrics[0]->boolean_value);
    spb__payload__free_unpacked(p, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_birth_then_data_by_alias, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_by_name_without_aliases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_datatype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_not_matching_datatype_is_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_quality_historical_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_gap_requests_rebirth_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_alias_and_data_before_birth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devices_and_deaths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_input_is_refused, setup, teardown),
        cmocka_unit_test(test_arena_and_caps),
        cmocka_unit_test_setup_teardown(test_records_hook_error_stops, setup, teardown),
        cmocka_unit_test(test_create_and_alloc_failures),
        cmocka_unit_test_setup_teardown(test_birth_alloc_failures, setup, teardown),
        cmocka_unit_test(test_rebirth_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
