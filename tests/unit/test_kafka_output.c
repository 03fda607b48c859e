/* The kafka output against librdkafka's mock cluster (a real Kafka-protocol peer on 127.0.0.1
 * with fault injection): records arrive as keyed JSON messages, one asset stays in one
 * partition in order; brokers down -> RETRY within the timeout, then everything delivered;
 * injected Produce errors are retried by librdkafka (transient) or rejected (permanent) or stop
 * the output (authorization); bad configuration fails init with a clear message. */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "millrace/plugin.h"
#include "support/output_open.h"

extern const struct mr_plugin mr_output_kafka;

#define API_PRODUCE 0 /* Kafka protocol ApiKey of ProduceRequest */

/* ---- the mock cluster ---- */

struct mock {
    rd_kafka_t *owner; /* the handle the mock cluster lives in */
    rd_kafka_mock_cluster_t *mc;
    char bootstrap[256];
};

static struct mock *mock_start(int brokers)
{
    struct mock *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "2", why, sizeof(why)), 0);
    m->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    assert_non_null(m->owner);
    m->mc = rd_kafka_mock_cluster_new(m->owner, brokers);
    assert_non_null(m->mc);
    snprintf(m->bootstrap, sizeof(m->bootstrap), "%s", rd_kafka_mock_cluster_bootstraps(m->mc));
    assert_non_null(strstr(m->bootstrap, "127.0.0.1:"));
    return m;
}

static void mock_stop(struct mock *m)
{
    rd_kafka_mock_cluster_destroy(m->mc);
    rd_kafka_destroy(m->owner);
    free(m);
}

/* ---- consuming back ---- */

struct msg {
    int32_t partition;
    int64_t offset;
    char key[128];
    char value[1024];
};

/* Every message of topic (np partitions), waiting until at least `want` arrived (max 10 s),
 * then 300 ms more for duplicates. Returns the count; out holds up to cap. */
static size_t consume_all(const struct mock *m, const char *topic, int np, size_t want,
                          struct msg *out, size_t cap)
{
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", m->bootstrap, why, sizeof(why)),
                     0);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "test", why, sizeof(why)), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false", why, sizeof(why)), 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++) {
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    assert_int_equal(rd_kafka_assign(rk, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    size_t n = 0;
    int64_t deadline = mr_clock_mono_ns() + 10000000000;
    int64_t extra = 0;
    while (mr_clock_mono_ns() < deadline) {
        if (n >= want && extra == 0) {
            extra = mr_clock_mono_ns() + 300000000;
        }
        if (extra != 0 && mr_clock_mono_ns() > extra) {
            break;
        }
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 50);
        if (msg == NULL) {
            continue;
        }
        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR && n < cap) {
            struct msg *o = &out[n];
            o->partition = msg->partition;
            o->offset = msg->offset;
            snprintf(o->key, sizeof(o->key), "%.*s", (int)msg->key_len,
                     msg->key != NULL ? (const char *)msg->key : "");
            snprintf(o->value, sizeof(o->value), "%.*s", (int)msg->len, (const char *)msg->payload);
            n++;
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

/* ---- the output under test ---- */

struct rejection {
    size_t index;
    char reason[200];
};

struct rig {
    struct mr_names *names;
    struct mr_metrics *metrics;
    struct mr_output_host host;
    unsigned char conf[512];
    void *ctx;
    struct rejection rejects[16];
    size_t nrejects;
    mr_name_id assets[3];
    mr_name_id sig_temp, sig_count, sig_state, tag_unit;
};

static void on_reject(struct mr_output_host *host, size_t index, const char *reason)
{
    struct rig *r = host->arg;
    if (r->nrejects < 16) {
        r->rejects[r->nrejects].index = index;
        snprintf(r->rejects[r->nrejects].reason, sizeof(r->rejects[0].reason), "%s", reason);
    }
    r->nrejects++;
}

static int rig_try(struct rig *r, const char *yaml, struct mr_err *err)
{
    assert_true(mr_output_kafka.conf.size <= sizeof(r->conf));
    return mr_test_output_open(&mr_output_kafka, r->conf, yaml, &r->host, &r->ctx, err);
}

static struct rig *rig_new(void)
{
    struct rig *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    assert_int_equal(mr_names_create(&r->names, 1000, 1u << 20), 0);
    assert_int_equal(mr_metrics_create(&r->metrics), 0);
    r->host = (struct mr_output_host){.name = "outputs.kafka",
                                      .names = r->names,
                                      .metrics = r->metrics,
                                      .reject = on_reject,
                                      .arg = r};
    static const char *const assets[] = {"site/hall1/line1/press", "site/hall1/line1/oven",
                                         "site/hall1/line2/robot"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mr_names_intern(r->names, assets[i], strlen(assets[i]), &r->assets[i]), 0);
    }
    assert_int_equal(mr_names_intern(r->names, "temp", 4, &r->sig_temp), 0);
    assert_int_equal(mr_names_intern(r->names, "count", 5, &r->sig_count), 0);
    assert_int_equal(mr_names_intern(r->names, "state", 5, &r->sig_state), 0);
    assert_int_equal(mr_names_intern(r->names, "unit", 4, &r->tag_unit), 0);
    return r;
}

static struct rig *rig_open(const char *fmt, const struct mock *m)
{
    struct rig *r = rig_new();
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), fmt, m->bootstrap);
    struct mr_err err = {0};
    if (rig_try(r, yaml, &err) != 0) {
        fail_msg("init: %s", err.msg);
    }
    return r;
}

static void rig_close(struct rig *r)
{
    if (r->ctx != NULL) {
        mr_output_kafka.output.fini(r->ctx);
        free(r->ctx);
        mr_section_free(&mr_output_kafka.conf, r->conf);
    }
    mr_metrics_destroy(r->metrics);
    mr_names_destroy(r->names);
    free(r);
}

/* Record i: asset i % 3, time base + i ms, rotating value types; value identifies i. */
static struct mr_record rec_make(const struct rig *r, int i)
{
    struct mr_record rec = {.time_ns = 1764003000000000000 + (int64_t)i * 1000000 + 7,
                            .asset = r->assets[i % 3],
                            .quality = MR_QUALITY_GOOD};
    switch (i % 3) {
    case 0:
        rec.signal = r->sig_temp;
        rec.type = MR_VALUE_F64;
        rec.v.f64 = i + 0.5;
        rec.ntags = 1;
        rec.tags[0] = (struct mr_tag){r->tag_unit, {.ptr = "degC", .len = 4}};
        break;
    case 1:
        rec.signal = r->sig_count;
        rec.type = MR_VALUE_I64;
        rec.v.i64 = i;
        break;
    default:
        rec.signal = r->sig_state;
        rec.type = MR_VALUE_STRING;
        rec.v.str = (struct mr_bytes){.ptr = "RUN", .len = 3};
        rec.quality = MR_QUALITY_UNCERTAIN;
    }
    return rec;
}

static int write_n(struct rig *r, int from, int n, struct mr_err *err)
{
    struct mr_record recs[64];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        recs[i] = rec_make(r, from + i);
    }
    return mr_output_kafka.output.write(r->ctx, recs, (size_t)n, err);
}

/* Index i of record i from a consumed message (its time_ns), checking the JSON fields. */
static int msg_index(const struct rig *r, const struct msg *m)
{
    json_error_t jerr;
    json_t *o = json_loads(m->value, 0, &jerr);
    if (o == NULL) {
        fail_msg("not JSON: %s (%s)", m->value, jerr.text);
    }
    int64_t t = json_integer_value(json_object_get(o, "time_ns"));
    int i = (int)((t - 1764003000000000007) / 1000000);
    struct mr_record want = rec_make(r, i);
    const char *asset = json_string_value(json_object_get(o, "asset"));
    assert_non_null(asset);
    assert_string_equal(asset, mr_names_str(r->names, want.asset, NULL));
    assert_string_equal(json_string_value(json_object_get(o, "signal")),
                        mr_names_str(r->names, want.signal, NULL));
    char when[40];
    mr_time_format_rfc3339(want.time_ns, when, sizeof(when));
    assert_string_equal(json_string_value(json_object_get(o, "time")), when);
    json_t *v = json_object_get(o, "value");
    switch (i % 3) {
    case 0:
        assert_true(json_real_value(v) == i + 0.5);
        assert_string_equal(json_string_value(json_object_get(json_object_get(o, "tags"), "unit")),
                            "degC");
        break;
    case 1:
        assert_int_equal(json_integer_value(v), i);
        break;
    default:
        assert_string_equal(json_string_value(v), "RUN");
        assert_string_equal(json_string_value(json_object_get(o, "quality")), "uncertain");
    }
    json_decref(o);
    return i;
}

/* ---- tests ---- */

static void test_records_arrive_keyed_in_order(void **state)
{
    (void)state;
    struct mock *m = mock_start(3);
    assert_int_equal(rd_kafka_mock_topic_create(m->mc, "telemetry", 4, 1), 0);
    struct rig *r = rig_open("brokers: [\"%s\"]\ntopic: telemetry\ncompression_codec: zstd\n"
                             "timeout: 5s\n",
                             m);
    struct mr_err err = {0};
    assert_int_equal(write_n(r, 0, 30, &err), MR_SINK_OK);
    assert_int_equal(write_n(r, 30, 30, &err), MR_SINK_OK);
    assert_int_equal(r->nrejects, 0);

    static struct msg got[256];
    size_t n = consume_all(m, "telemetry", 4, 60, got, 256);
    assert_int_equal(n, 60);
    int seen[60] = {0};
    int32_t part_of[3] = {-1, -1, -1};
    int last_i[3] = {-1, -1, -1};
    int64_t last_off[3] = {-1, -1, -1};
    for (size_t k = 0; k < n; k++) {
        int i = msg_index(r, &got[k]);
        assert_true(i >= 0 && i < 60);
        seen[i]++;
        int a = i % 3;
        /* key = asset path; one asset, one partition, in record order */
        assert_string_equal(got[k].key, mr_names_str(r->names, r->assets[a], NULL));
        if (part_of[a] < 0) {
            part_of[a] = got[k].partition;
        }
        assert_int_equal(got[k].partition, part_of[a]);
        if (got[k].offset > last_off[a]) { /* messages of one partition come in offset order */
            assert_true(i > last_i[a]);
            last_i[a] = i;
            last_off[a] = got[k].offset;
        }
    }
    for (int i = 0; i < 60; i++) {
        assert_int_equal(seen[i], 1);
    }
    rig_close(r);
    mock_stop(m);
}

static void test_topic_template_and_key_none(void **state)
{
    (void)state;
    struct mock *m = mock_start(1);
    assert_int_equal(rd_kafka_mock_topic_create(m->mc, "plant.site.hall1.line1.press.temp", 1, 1),
                     0);
    struct rig *r = rig_open("brokers: [\"%s\"]\ntopic_template: \"plant.{asset}.{signal}\"\n"
                             "routing_key: none\ntimeout: 5s\n",
                             m);
    struct mr_err err = {0};
    assert_int_equal(write_n(r, 0, 9, &err), MR_SINK_OK); /* 3 go to ...press.temp */
    static struct msg got[16];
    size_t n = consume_all(m, "plant.site.hall1.line1.press.temp", 1, 3, got, 16);
    assert_int_equal(n, 3);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(msg_index(r, &got[k]) % 3, 0);
        assert_string_equal(got[k].key, ""); /* no key */
    }
    rig_close(r);
    mock_stop(m);
}

static void test_brokers_down_retry_then_delivered(void **state)
{
    (void)state;
    struct mock *m = mock_start(1);
    assert_int_equal(rd_kafka_mock_topic_create(m->mc, "telemetry", 2, 1), 0);
    struct rig *r = rig_open("brokers: [\"%s\"]\ntopic: telemetry\ntimeout: 1s\n"
                             "librdkafka: {reconnect.backoff.max.ms: \"100\"}\n",
                             m);
    struct mr_err err = {0};
    assert_int_equal(write_n(r, 0, 10, &err), MR_SINK_OK);

    assert_int_equal(rd_kafka_mock_broker_set_down(m->mc, -1), 0);
    int64_t t0 = mr_clock_mono_ns();
    assert_int_equal(write_n(r, 10, 20, &err), MR_SINK_RETRY);
    int64_t took_ms = (mr_clock_mono_ns() - t0) / 1000000;
    assert_true(took_ms >= 900 && took_ms < 2500); /* bounded by the timeout */
    assert_non_null(strstr(err.msg, "records not"));

    assert_int_equal(rd_kafka_mock_broker_set_up(m->mc, -1), 0);
    int answer = MR_SINK_RETRY;
    for (int attempt = 0; attempt < 5 && answer == MR_SINK_RETRY; attempt++) {
        answer = write_n(r, 10, 20, &err); /* the engine sends the same batch again */
    }
    assert_int_equal(answer, MR_SINK_OK);
    assert_int_equal(r->nrejects, 0);

    static struct msg got[256];
    size_t n = consume_all(m, "telemetry", 2, 30, got, 256);
    int seen[30] = {0};
    for (size_t k = 0; k < n; k++) {
        int i = msg_index(r, &got[k]);
        assert_true(i >= 0 && i < 30);
        seen[i]++;
    }
    size_t dups = 0;
    for (int i = 0; i < 30; i++) {
        assert_true(seen[i] >= 1); /* nothing lost */
        dups += (size_t)(seen[i] - 1);
    }
    print_message("broker outage: 30 records delivered, %zu duplicates\n", dups);
    assert_true(dups <= 20); /* at most the batch that was retried */
    rig_close(r);
    mock_stop(m);
}

static void test_injected_produce_errors(void **state)
{
    (void)state;
    struct mock *m = mock_start(1);
    assert_int_equal(rd_kafka_mock_topic_create(m->mc, "errs", 1, 1), 0);
    struct rig *r = rig_open("brokers: [\"%s\"]\ntopic: errs\ntimeout: 5s\n"
                             "max_message_bytes: 4KiB\n",
                             m);
    struct mr_err err = {0};
    /* warm up: producer id and metadata in place */
    assert_int_equal(write_n(r, 0, 1, &err), MR_SINK_OK);

    /* transient: librdkafka retries on its own, the batch is confirmed */
    rd_kafka_mock_push_request_errors(m->mc, API_PRODUCE, 2,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    assert_int_equal(write_n(r, 1, 1, &err), MR_SINK_OK);
    assert_int_equal(r->nrejects, 0);

    /* permanent: that record goes to reject() with the broker's reason, the batch is OK */
    static const rd_kafka_resp_err_t permanent[] = {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
                                                    RD_KAFKA_RESP_ERR_INVALID_RECORD};
    for (size_t k = 0; k < 2; k++) {
        r->nrejects = 0;
        rd_kafka_mock_push_request_errors(m->mc, API_PRODUCE, 1, permanent[k]);
        assert_int_equal(write_n(r, 2 + (int)k, 1, &err), MR_SINK_OK);
        assert_int_equal(r->nrejects, 1);
        assert_int_equal(r->rejects[0].index, 0);
        assert_string_equal(r->rejects[0].reason, rd_kafka_err2str(permanent[k]));
    }

    /* too large before it leaves: rejected by us, the rest of the batch delivered */
    r->nrejects = 0;
    static char big[5000];
    memset(big, 'x', sizeof(big));
    struct mr_record recs[3] = {rec_make(r, 4), rec_make(r, 5), rec_make(r, 6)};
    recs[1].type = MR_VALUE_STRING;
    recs[1].v.str = (struct mr_bytes){.ptr = big, .len = sizeof(big)};
    assert_int_equal(mr_output_kafka.output.write(r->ctx, recs, 3, &err), MR_SINK_OK);
    assert_int_equal(r->nrejects, 1);
    assert_int_equal(r->rejects[0].index, 1);
    assert_non_null(strstr(r->rejects[0].reason, "max_message_bytes"));

    /* after all that the producer still works */
    r->nrejects = 0;
    assert_int_equal(write_n(r, 7, 1, &err), MR_SINK_OK);
    assert_int_equal(r->nrejects, 0);

    /* delivered: 0, 1, 4, 6, 7 (2 and 3 refused by the broker, 5 by us) */
    static struct msg got[32];
    size_t n = consume_all(m, "errs", 1, 5, got, 32);
    int seen[8] = {0};
    for (size_t k = 0; k < n; k++) {
        int i = msg_index(r, &got[k]);
        assert_true(i >= 0 && i < 8);
        seen[i]++;
    }
    static const int want[8] = {1, 1, 0, 0, 1, 0, 1, 1};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(seen[i], want[i]);
    }

    /* not authorized: the output stops (FATAL) naming the reason */
    rd_kafka_mock_push_request_errors(m->mc, API_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    assert_int_equal(write_n(r, 8, 1, &err), MR_SINK_FATAL);
    assert_non_null(strstr(err.msg, "uthoriz"));
    rig_close(r);
    mock_stop(m);
}

static void test_bad_config(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *want; /* in the config or init error */
    } cases[] = {
        {"brokers: []\n", "brokers"},
        {"topic: x\n", "brokers"},
        {"brokers: [\"127.0.0.1:1\"]\nlibrdkafka: {no.such.property: 1}\n",
         "librdkafka.no.such.property: No such configuration property"},
        {"brokers: [\"127.0.0.1:1\"]\nlibrdkafka: {linger.ms: soon}\n", "librdkafka.linger.ms"},
        {"brokers: [\"127.0.0.1:1\"]\nlibrdkafka: {enable.idempotence: \"false\"}\n",
         "set by millrace"},
        {"brokers: [\"127.0.0.1:1\"]\nlibrdkafka: {acks: \"1\"}\n", "set by millrace"},
        {"brokers: [\"127.0.0.1:1\"]\ncompression_codec: brotli\n", "compression_codec"},
        {"brokers: [\"\"]\n", "brokers"},
        {"brokers: [\"127.0.0.1:1\"]\ntopic: \"\"\n", "topic"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rig *r = rig_new();
        struct mr_err err = {0};
        int rc = rig_try(r, cases[i].yaml, &err);
        if (rc == 0 || strstr(err.msg, cases[i].want) == NULL) {
            fail_msg("case %zu: rc %d, error '%s', want '%s'", i, rc, err.msg, cases[i].want);
        }
        rig_close(r);
    }
    /* a good one initialises (brokers need not be up) and says nothing is confirmed */
    struct rig *r = rig_new();
    struct mr_err err = {0};
    assert_int_equal(rig_try(r, "brokers: [\"127.0.0.1:1\"]\ntimeout: 1s\n", &err), 0);
    assert_int_equal(write_n(r, 0, 2, &err), MR_SINK_RETRY);
    rig_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_records_arrive_keyed_in_order),
        cmocka_unit_test(test_topic_template_and_key_none),
        cmocka_unit_test(test_brokers_down_retry_then_delivered),
        cmocka_unit_test(test_injected_produce_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
