/* The `mqtt` output (src/outputs/mqtt_out.c) against a real mosquitto started on 127.0.0.1 on a
 * free port, with libmosquitto subscribers in the test counting what arrives: JSON and plain
 * value payloads, topic templates ({asset} with its slashes, {signal}, {tag:NAME}), retained
 * messages handed to a late subscriber, a record with a wildcard in its topic rejected with a
 * reason; broker killed -> RETRY, restarted -> the same batch delivered, nothing lost; Sparkplug
 * B edge node checked with millrace's own Sparkplug decoder (births, aliases, continuous seq, a
 * new signal -> new DBIRTH, NCMD Rebirth answered, NDEATH at the end); commands with an
 * acknowledgement topic (no confirmation -> RETRY, confirmation -> OK); bad configuration ->
 * clear errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <mosquitto.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inputs/sparkplug.h"
#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/log.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "millrace/plugin.h"
#include "support/certs.h"
#include "support/mosquitto_peer.h"
#include "support/tmpdir.h"
#include "support/output_open.h"

extern const struct mr_plugin mr_output_mqtt;

#define MAX_MSGS 2048

/* ---- a libmosquitto subscriber collecting messages ---- */

struct msg {
    char topic[256];
    uint8_t payload[1024];
    int len;
    bool retain;
};

struct sub {
    struct mosquitto *m;
    const char *filter;
    pthread_mutex_t mu;
    struct msg *msgs;
    int n;
    bool subscribed;
    bool device; /* answer commands on <topic>/ack (from the second one on) */
    int commands;
};

static void sub_on_connect(struct mosquitto *m, void *arg, int rc)
{
    struct sub *s = arg;
    if (rc == 0) {
        mosquitto_subscribe(m, NULL, s->filter, 1);
    }
}

static void sub_on_subscribe(struct mosquitto *m, void *arg, int mid, int n, const int *qos)
{
    struct sub *s = arg;
    (void)m;
    (void)mid;
    (void)n;
    (void)qos;
    pthread_mutex_lock(&s->mu);
    s->subscribed = true;
    pthread_mutex_unlock(&s->mu);
}

static void sub_on_disconnect(struct mosquitto *m, void *arg, int rc)
{
    struct sub *s = arg;
    (void)m;
    (void)rc;
    pthread_mutex_lock(&s->mu);
    s->subscribed = false;
    pthread_mutex_unlock(&s->mu);
}

static void sub_on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
    struct sub *s = arg;
    pthread_mutex_lock(&s->mu);
    if (s->n < MAX_MSGS) {
        struct msg *x = &s->msgs[s->n++];
        snprintf(x->topic, sizeof(x->topic), "%s", msg->topic);
        x->len = msg->payloadlen < (int)sizeof(x->payload) ? msg->payloadlen : 0;
        memcpy(x->payload, msg->payload, (size_t)x->len);
        x->retain = msg->retain;
    }
    bool answer = s->device && strstr(msg->topic, "/ack") == NULL && s->commands++ > 0;
    pthread_mutex_unlock(&s->mu);
    if (answer) {
        char ack[300];
        snprintf(ack, sizeof(ack), "%s/ack", msg->topic);
        mosquitto_publish(m, NULL, ack, 2, "ok", 1, false);
    }
}

static struct sub *sub_open(int port, const char *filter, const char *id)
{
    struct sub *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->msgs = calloc(MAX_MSGS, sizeof(*s->msgs));
    s->filter = filter;
    pthread_mutex_init(&s->mu, NULL);
    s->m = mosquitto_new(id, true, s);
    assert_non_null(s->m);
    mosquitto_reconnect_delay_set(s->m, 1, 1, false);
    mosquitto_connect_callback_set(s->m, sub_on_connect);
    mosquitto_subscribe_callback_set(s->m, sub_on_subscribe);
    mosquitto_disconnect_callback_set(s->m, sub_on_disconnect);
    mosquitto_message_callback_set(s->m, sub_on_message);
    assert_int_equal(mosquitto_connect(s->m, "127.0.0.1", port, 5), MOSQ_ERR_SUCCESS);
    assert_int_equal(mosquitto_loop_start(s->m), MOSQ_ERR_SUCCESS);
    return s;
}

static bool sub_wait(struct sub *s, int want_msgs, bool want_subscribed, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        pthread_mutex_lock(&s->mu);
        bool ok = s->n >= want_msgs && (!want_subscribed || s->subscribed);
        pthread_mutex_unlock(&s->mu);
        if (ok) {
            return true;
        }
        usleep(10000);
    }
    return false;
}

static void sub_close(struct sub *s)
{
    mosquitto_disconnect(s->m);
    mosquitto_loop_stop(s->m, false);
    mosquitto_destroy(s->m);
    pthread_mutex_destroy(&s->mu);
    free(s->msgs);
    free(s);
}

/* ---- the output under test ---- */

struct rig {
    char dir[128];
    int port;
    pid_t broker;
    struct mr_names *names;
    struct mr_metrics *metrics;
    struct mr_output_host host;
    unsigned char conf[1024];
    void *ctx;
    size_t rejected[64];
    char reasons[64][128];
    int nrejected;
    mr_name_id asset, bad_asset, sig[4], unit;
    float samples[4];
};

static void on_reject(struct mr_output_host *host, size_t index, const char *reason)
{
    struct rig *r = host->arg;
    if (r->nrejected < 64) {
        r->rejected[r->nrejected] = index;
        snprintf(r->reasons[r->nrejected], sizeof(r->reasons[0]), "%s", reason);
        r->nrejected++;
    }
}

static void quiet(enum mr_log_level level, const char *line, void *arg)
{
    (void)level;
    (void)line;
    (void)arg;
}

static void broker_start(struct rig *r)
{
    r->broker = mr_test_mosquitto_start(r->dir, r->port);
    assert_true(r->broker > 0);
}

static void broker_kill(struct rig *r)
{
    kill(r->broker, SIGKILL);
    waitpid(r->broker, NULL, 0);
    r->broker = -1;
}

static struct rig *rig_new(void)
{
    struct rig *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    assert_int_equal(mr_test_tmpdir_create(r->dir, sizeof(r->dir), "mr_mqttout"), 0);
    r->port = mr_test_free_port();
    broker_start(r);
    assert_int_equal(mr_names_create(&r->names, 1000, 1u << 20), 0);
    assert_int_equal(mr_metrics_create(&r->metrics), 0);
    r->host = (struct mr_output_host){.name = "outputs.alerts",
                                      .names = r->names,
                                      .metrics = r->metrics,
                                      .reject = on_reject,
                                      .arg = r};
    assert_int_equal(mr_names_intern(r->names, "plant/line1/press", 17, &r->asset), 0);
    assert_int_equal(mr_names_intern(r->names, "plant/bad+x", 11, &r->bad_asset), 0);
    static const char *const signals[] = {"temp", "count", "running", "order"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mr_names_intern(r->names, signals[i], strlen(signals[i]), &r->sig[i]), 0);
    }
    assert_int_equal(mr_names_intern(r->names, "unit", 4, &r->unit), 0);
    mr_log_set_sink(quiet, NULL);
    return r;
}

/* Configure and init the output; yaml_fmt has one %d for the port. Returns init's code. */
static int out_open(struct rig *r, const char *yaml_fmt, struct mr_err *err)
{
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), yaml_fmt, r->port);
    assert_true(mr_output_mqtt.conf.size <= sizeof(r->conf));
    int rc = mr_test_output_open(&mr_output_mqtt, r->conf, yaml, &r->host, &r->ctx, err);
    if (rc != 0 && strncmp(err->msg, "config:", 7) == 0) {
        fail_msg("%s", err->msg);
    }
    return rc;
}

static void out_close(struct rig *r)
{
    if (r->ctx != NULL) {
        mr_output_mqtt.output.fini(r->ctx);
        free(r->ctx);
        r->ctx = NULL;
        mr_section_free(&mr_output_mqtt.conf, r->conf);
    }
}

static void rig_free(struct rig *r)
{
    out_close(r);
    mr_log_set_sink(NULL, NULL);
    if (r->broker > 0) {
        broker_kill(r);
    }
    mr_test_tmpdir_remove(r->dir);
    mr_metrics_destroy(r->metrics);
    mr_names_destroy(r->names);
    free(r);
}

/* n records; record i has signal sig[i % 4] with a value of that kind derived from i. */
static void recs_make(struct rig *r, struct mr_record *recs, size_t n, int base)
{
    static const char *const orders[] = {"PO-0", "PO-1", "PO-2", "PO-3", "PO-4",
                                         "PO-5", "PO-6", "PO-7", "PO-8", "PO-9"};
    for (size_t k = 0; k < n; k++) {
        int i = base + (int)k;
        struct mr_record *rec = &recs[k];
        *rec = (struct mr_record){.time_ns = 1800000000000000000 + (int64_t)i * 1000000,
                                  .asset = r->asset,
                                  .signal = r->sig[i % 4],
                                  .ntags = 1,
                                  .tags[0] = {r->unit, {.ptr = "degC", .len = 4}}};
        switch (i % 4) {
        case 0:
            rec->type = MR_VALUE_F64;
            rec->v.f64 = i + 0.5;
            break;
        case 1:
            rec->type = MR_VALUE_I64;
            rec->v.i64 = -i;
            break;
        case 2:
            rec->type = MR_VALUE_BOOL;
            rec->v.b = i & 1;
            break;
        default:
            rec->type = MR_VALUE_STRING;
            rec->v.str = (struct mr_bytes){.ptr = orders[i % 10], .len = 4};
        }
    }
}

static int out_write(struct rig *r, const struct mr_record *recs, size_t n)
{
    struct mr_err err = {0};
    return mr_output_mqtt.output.write(r->ctx, recs, n, &err);
}

static bool has_msg(struct sub *s, const char *topic, const char *payload, bool retain)
{
    bool found = false;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n && !found; i++) {
        found = strcmp(s->msgs[i].topic, topic) == 0 && s->msgs[i].len == (int)strlen(payload) &&
                memcmp(s->msgs[i].payload, payload, strlen(payload)) == 0 &&
                s->msgs[i].retain == retain;
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

/* ---- tests ---- */

static void test_json_topics_retain_and_reject(void **state)
{
    (void)state;
    struct rig *r = rig_new();
    struct sub *s = sub_open(r->port, "m/#", "t-sub");
    assert_true(sub_wait(s, 0, true, 3000));
    struct mr_err err = {0};
    assert_int_equal(out_open(r,
                              "{servers: [\"tcp://127.0.0.1:%d\"], topic: "
                              "\"m/{asset}/{signal}/{tag:unit}\", retain: true, qos: 1}",
                              &err),
                     0);
    struct mr_record recs[41];
    recs_make(r, recs, 40, 0);
    recs[40] = recs[0];
    recs[40].asset = r->bad_asset; /* '+' in the topic: the broker can never take it */
    assert_int_equal(out_write(r, recs, 41), MR_SINK_OK);
    assert_int_equal(r->nrejected, 1);
    assert_int_equal(r->rejected[0], 40);
    assert_non_null(strstr(r->reasons[0], "nvalid"));
    assert_true(sub_wait(s, 40, false, 3000));
    assert_true(has_msg(s, "m/plant/line1/press/temp/degC",
                        "{\"time\":\"2027-01-15T08:00:00.000000000Z\",\"asset\":"
                        "\"plant/line1/press\",\"signal\":\"temp\",\"value\":0.5,\"quality\":"
                        "\"good\",\"tags\":{\"unit\":\"degC\"}}",
                        false));
    assert_true(has_msg(s, "m/plant/line1/press/order/degC",
                        "{\"time\":\"2027-01-15T08:00:00.039000000Z\",\"asset\":"
                        "\"plant/line1/press\",\"signal\":\"order\",\"value\":\"PO-9\","
                        "\"quality\":\"good\",\"tags\":{\"unit\":\"degC\"}}",
                        false));
    /* retained: a subscriber that comes later gets the last value of each topic at once */
    struct sub *late = sub_open(r->port, "m/#", "t-late");
    assert_true(sub_wait(late, 4, true, 3000));
    assert_true(has_msg(late, "m/plant/line1/press/count/degC",
                        "{\"time\":\"2027-01-15T08:00:00.037000000Z\",\"asset\":"
                        "\"plant/line1/press\",\"signal\":\"count\",\"value\":-37,\"quality\":"
                        "\"good\",\"tags\":{\"unit\":\"degC\"}}",
                        true));
    usleep(100000);
    assert_int_equal(late->n, 4);
    sub_close(late);
    sub_close(s);
    rig_free(r);
}

static void test_value_format(void **state)
{
    (void)state;
    struct rig *r = rig_new();
    struct sub *s = sub_open(r->port, "v/#", "t-sub");
    assert_true(sub_wait(s, 0, true, 3000));
    struct mr_err err = {0};
    assert_int_equal(out_open(r,
                              "{servers: [\"tcp://127.0.0.1:%d\"], topic: \"v/{signal}\", "
                              "data_format: value, qos: 2}",
                              &err),
                     0);
    struct mr_record recs[5];
    recs_make(r, recs, 4, 0);
    recs[0].v.f64 = 0.1;
    recs[4] = recs[0];
    recs[4].type = MR_VALUE_SAMPLES;
    recs[4].v.samples = (struct mr_samples){.data = r->samples, .n = 4, .rate_hz = 1000};
    assert_int_equal(out_write(r, recs, 5), MR_SINK_OK);
    assert_int_equal(r->nrejected, 1);
    assert_int_equal(r->rejected[0], 4);
    assert_non_null(strstr(r->reasons[0], "data_format json"));
    assert_true(sub_wait(s, 4, false, 3000));
    assert_true(has_msg(s, "v/temp", "0.1", false));
    assert_true(has_msg(s, "v/count", "-1", false));
    assert_true(has_msg(s, "v/running", "false", false));
    assert_true(has_msg(s, "v/order", "PO-3", false));
    sub_close(s);
    rig_free(r);
}

/* How many distinct values in [lo, n) (payload "i") the subscriber saw. */
static int distinct_from(struct sub *s, int lo, int n)
{
    char *seen = calloc((size_t)n, 1);
    int k = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n; i++) {
        char buf[32];
        int len = s->msgs[i].len < 31 ? s->msgs[i].len : 31;
        memcpy(buf, s->msgs[i].payload, (size_t)len);
        buf[len] = '\0';
        long v = strtol(buf, NULL, 10);
        if (v >= lo && v < n && !seen[v]) {
            seen[v] = 1;
            k++;
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(seen);
    return k;
}

static int distinct(struct sub *s, int n)
{
    return distinct_from(s, 0, n);
}

static void test_broker_restart_retry_nothing_lost(void **state)
{
    (void)state;
    struct rig *r = rig_new();
    struct sub *s = sub_open(r->port, "c/#", "t-sub");
    assert_true(sub_wait(s, 0, true, 3000));
    struct mr_err err = {0};
    assert_int_equal(out_open(r,
                              "{servers: [\"tcp://127.0.0.1:%d\"], topic: \"c/{signal}\", "
                              "data_format: value, timeout: 700ms}",
                              &err),
                     0);
    struct mr_record recs[200];
    for (int i = 0; i < 200; i++) {
        recs[i] = (struct mr_record){
            .time_ns = i, .asset = r->asset, .signal = r->sig[1], .type = MR_VALUE_I64, .v.i64 = i};
    }
    assert_int_equal(out_write(r, recs, 100), MR_SINK_OK);
    assert_true(sub_wait(s, 100, false, 3000));
    broker_kill(r);
    int64_t t0 = mr_clock_mono_ns();
    assert_int_equal(out_write(r, recs + 100, 100), MR_SINK_RETRY);
    assert_true(mr_clock_mono_ns() - t0 < 2000000000); /* bounded by timeout */
    broker_start(r);
    /* a subscriber at the new broker before the output reconnects (>= 1 s), since libmosquitto
     * resends what it had queued on its own then */
    struct sub *s2 = sub_open(r->port, "c/#", "t-sub2");
    assert_true(sub_wait(s2, 0, true, 3000));
    int answer = MR_SINK_RETRY;
    for (int i = 0; i < 20 && answer == MR_SINK_RETRY; i++) {
        answer = out_write(r, recs + 100, 100); /* the engine offers the same batch again */
    }
    assert_int_equal(answer, MR_SINK_OK);
    assert_true(sub_wait(s2, 100, false, 3000));
    assert_int_equal(distinct_from(s2, 100, 200), 100);
    sub_close(s2);
    sub_close(s);
    broker_kill(r); /* stopping while the broker is away does not hang */
    usleep(100000);
    t0 = mr_clock_mono_ns();
    out_close(r);
    assert_true(mr_clock_mono_ns() - t0 < 1500000000);
    rig_free(r);
}

/* Messages in flight when the broker stops answering: write times out (RETRY) with them queued
 * in libmosquitto; offered the same batch again, the output only waits for their
 * acknowledgements instead of publishing everything twice. Then the same with a broker that
 * dies with messages in flight: libmosquitto resends them to the new broker; none is lost. */
static void test_in_flight_resumed_not_doubled(void **state)
{
    (void)state;
    struct rig *r = rig_new();
    struct sub *s = sub_open(r->port, "c/#", "t-sub");
    assert_true(sub_wait(s, 0, true, 3000));
    struct mr_err err = {0};
    assert_int_equal(out_open(r,
                              "{servers: [\"tcp://127.0.0.1:%d\"], topic: \"c/{signal}\", "
                              "data_format: value, timeout: 500ms}",
                              &err),
                     0);
    struct mr_record recs[200];
    for (int i = 0; i < 200; i++) {
        recs[i] = (struct mr_record){
            .time_ns = i, .asset = r->asset, .signal = r->sig[1], .type = MR_VALUE_I64, .v.i64 = i};
    }
    kill(r->broker, SIGSTOP);
    assert_int_equal(out_write(r, recs, 100), MR_SINK_RETRY);
    kill(r->broker, SIGCONT);
    assert_int_equal(out_write(r, recs, 100), MR_SINK_OK);
    assert_true(sub_wait(s, 100, false, 3000));
    usleep(200000);
    assert_int_equal(s->n, 100); /* every one once */
    assert_int_equal(distinct(s, 100), 100);

    kill(r->broker, SIGSTOP);
    assert_int_equal(out_write(r, recs + 100, 100), MR_SINK_RETRY);
    kill(r->broker, SIGKILL);
    waitpid(r->broker, NULL, 0);
    broker_start(r);
    /* libmosquitto resends on its own once it reconnects (>= 1 s): subscribe before that */
    struct sub *s2 = sub_open(r->port, "c/#", "t-sub2");
    assert_true(sub_wait(s2, 0, true, 3000));
    int answer = MR_SINK_RETRY;
    for (int i = 0; i < 20 && answer == MR_SINK_RETRY; i++) {
        answer = out_write(r, recs + 100, 100);
    }
    assert_int_equal(answer, MR_SINK_OK);
    assert_true(sub_wait(s2, 100, false, 3000));
    assert_int_equal(distinct_from(s2, 100, 200), 100);
    sub_close(s2);
    sub_close(s);
    rig_free(r);
}

/* ---- Sparkplug B, checked with millrace's own decoder ---- */

struct decoded {
    struct mr_names *names;
    char text[64][160]; /* "asset signal value quality" */
    int n;
    int rebirths;
};

static int dec_records(void *ctx, const struct mr_record *recs, size_t n)
{
    struct decoded *d = ctx;
    for (size_t i = 0; i < n && d->n < 64; i++) {
        char json[512];
        long len = mr_record_to_json(&recs[i], d->names, json, sizeof(json));
        const char *a = strstr(json, "\"asset\"");
        snprintf(d->text[d->n++], sizeof(d->text[0]), "%s", len > 0 && a != NULL ? a : "?");
    }
    return 0;
}

static void dec_rebirth(void *ctx, const char *group, const char *node, const char *reason)
{
    struct decoded *d = ctx;
    (void)group;
    (void)node;
    (void)reason;
    d->rebirths++;
}

static bool decoded_has(const struct decoded *d, const char *text)
{
    for (int i = 0; i < d->n; i++) {
        if (strstr(d->text[i], text) != NULL) {
            return true;
        }
    }
    return false;
}

static int count_type(struct sub *s, const char *type, int from)
{
    int k = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = from; i < s->n; i++) {
        k += strstr(s->msgs[i].topic, type) != NULL;
    }
    pthread_mutex_unlock(&s->mu);
    return k;
}

static void test_sparkplug_edge_node(void **state)
{
    (void)state;
    struct rig *r = rig_new();
    struct sub *s = sub_open(r->port, "spBv1.0/#", "t-host");
    assert_true(sub_wait(s, 0, true, 3000));
    struct mr_err err = {0};
    assert_int_equal(out_open(r,
                              "{servers: [\"tcp://127.0.0.1:%d\"], sparkplug: {group_id: G1, "
                              "edge_node_id: N1}}",
                              &err),
                     0);
    struct mr_record recs[8];
    recs_make(r, recs, 8, 0);
    assert_int_equal(out_write(r, recs, 2), MR_SINK_OK); /* temp, count */
    assert_int_equal(out_write(r, recs + 2, 6), MR_SINK_OK);
    /* NBIRTH, DBIRTH(temp), DDATA, DBIRTH(+count), DDATA, DBIRTH(+running), DDATA,
     * DBIRTH(+order), DDATA, then 4 DDATA */
    assert_true(sub_wait(s, 13, false, 3000));
    assert_int_equal(count_type(s, "/NBIRTH/N1", 0), 1);
    assert_int_equal(count_type(s, "/DBIRTH/N1/plant.line1.press", 0), 4);
    assert_int_equal(count_type(s, "/DDATA/N1/plant.line1.press", 0), 8);
    /* rebirth on request */
    uint8_t cmd[64];
    char topic[128];
    long n = mr_sparkplug_rebirth_encode(1, cmd, sizeof(cmd));
    mr_sparkplug_rebirth_topic("G1", "N1", topic, sizeof(topic));
    assert_int_equal(mosquitto_publish(s->m, NULL, topic, (int)n, cmd, 1, false), 0);
    assert_true(sub_wait(s, 16, false, 3000)); /* our NCMD, NBIRTH, DBIRTH */
    assert_int_equal(count_type(s, "/NBIRTH/N1", 0), 2);
    assert_int_equal(count_type(s, "/DBIRTH/", 13), 1);
    assert_int_equal(out_write(r, recs, 1), MR_SINK_OK);
    assert_true(sub_wait(s, 17, false, 3000));
    struct mr_record many[300]; /* seq wraps 255 -> 0 */
    for (int i = 0; i < 300; i++) {
        many[i] = recs[0];
        many[i].v.f64 = 1000 + i;
    }
    assert_int_equal(out_write(r, many, 300), MR_SINK_OK);
    assert_true(sub_wait(s, 317, false, 3000));
    out_close(r); /* a clean goodbye publishes the NDEATH */
    assert_true(sub_wait(s, 318, false, 3000));
    assert_int_equal(count_type(s, "/NDEATH/N1", 0), 1);

    /* everything through our own Sparkplug host decoder, in arrival order */
    struct decoded d = {.names = r->names};
    struct mr_sparkplug *sp;
    struct mr_sparkplug_conf sc = {0};
    struct mr_sparkplug_hooks hooks = {.ctx = &d, .records = dec_records, .rebirth = dec_rebirth};
    assert_int_equal(mr_sparkplug_create(&sp, r->names, &sc, &hooks, &err), 0);
    for (int i = 0; i < s->n; i++) {
        struct msg *m = &s->msgs[i];
        if (strstr(m->topic, "/NCMD/") != NULL) {
            continue;
        }
        assert_int_equal(mr_sparkplug_handle(sp, m->topic, strlen(m->topic), m->payload,
                                             (size_t)m->len, 0, &err),
                         0);
    }
    struct mr_sparkplug_stats st;
    mr_sparkplug_stats_get(sp, &st);
    assert_int_equal(st.seq_gaps, 0);
    assert_int_equal(st.unknown_alias, 0);
    assert_int_equal(st.no_birth, 0);
    assert_int_equal(d.rebirths, 0);
    assert_true(st.stale > 0);          /* the NDEATH made the metrics stale */
    assert_int_equal(st.messages, 317); /* all but our NCMD */
    const char *A = "\"asset\":\"G1/N1/plant.line1.press\",";
    char want[200];
    snprintf(want, sizeof(want), "%s\"signal\":\"temp\",\"value\":4.5,\"quality\":\"good\"", A);
    assert_true(decoded_has(&d, want));
    snprintf(want, sizeof(want), "%s\"signal\":\"count\",\"value\":-5,\"quality\":\"good\"", A);
    assert_true(decoded_has(&d, want));
    snprintf(want, sizeof(want), "%s\"signal\":\"order\",\"value\":\"PO-7\"", A);
    assert_true(decoded_has(&d, want));
    snprintf(want, sizeof(want), "%s\"signal\":\"running\",\"value\":false", A);
    assert_true(decoded_has(&d, want));
    mr_sparkplug_destroy(sp);
    sub_close(s);
    rig_free(r);
}

static void test_ack_topic(void **state)
{
    (void)state;
    struct rig *r = rig_new();
    struct sub *dev = sub_open(r->port, "cmd/#", "t-device");
    dev->device = true; /* ignores the first command, confirms the others */
    assert_true(sub_wait(dev, 0, true, 3000));
    struct mr_err err = {0};
    assert_int_equal(out_open(r,
                              "{servers: [\"tcp://127.0.0.1:%d\"], topic: \"cmd/{signal}\", "
                              "data_format: value, ack_topic: \"cmd/{signal}/ack\", "
                              "ack_timeout: 300ms}",
                              &err),
                     0);
    struct mr_record recs[2];
    recs_make(r, recs, 2, 0);
    assert_int_equal(out_write(r, recs, 2), MR_SINK_RETRY); /* the first was not confirmed */
    assert_int_equal(out_write(r, recs, 2), MR_SINK_OK);
    assert_true(sub_wait(dev, 5, false, 3000)); /* 3 commands, 2 confirmations */
    assert_true(has_msg(dev, "cmd/temp/ack", "ok", false));
    assert_true(has_msg(dev, "cmd/count/ack", "ok", false));
    sub_close(dev);
    rig_free(r);
}

/* Run a shell command line (test fixtures only); true when it exits 0. */
static bool sh(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    return p != NULL && pclose(p) == 0;
}

/* TLS: a broker whose certificate our CA signed takes the records; with another CA the
 * handshake fails and write answers RETRY (records stay in the journal). */
static void test_tls(void **state)
{
    (void)state;
    struct rig *r = rig_new();
    broker_kill(r);
    assert_int_equal(mr_test_make_certs(r->dir), 0);
    char cmd[512];
    int tls_port = mr_test_free_port();
    char path[256];
    snprintf(path, sizeof(path), "%s/tls.conf", r->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "allow_anonymous true\npersistence false\nper_listener_settings false\n"
            "listener %d 127.0.0.1\nlistener %d 127.0.0.1\ncafile %s/ca.crt\ncertfile "
            "%s/srv.crt\nkeyfile %s/srv.key\n",
            r->port, tls_port, r->dir, r->dir, r->dir);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "/usr/sbin/mosquitto -c %s >/dev/null 2>&1 & echo $!", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int pid = -1;
    assert_int_equal(fscanf(p, "%d", &pid), 1);
    pclose(p);
    r->broker = pid;
    struct sub *s = NULL;
    for (int i = 0; i < 100 && s == NULL; i++) {
        usleep(20000);
        snprintf(cmd, sizeof(cmd), "mosquitto_pub -p %d -t ping -m x 2>/dev/null", r->port);
        if (sh(cmd)) {
            s = sub_open(r->port, "tls/#", "t-sub");
        }
    }
    assert_non_null(s);
    assert_true(sub_wait(s, 0, true, 3000));
    struct mr_err err = {0};
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "{servers: [\"ssl://127.0.0.1:%%d\"], tls_ca: %s/ca.crt, topic: \"tls/{signal}\", "
             "data_format: value}",
             r->dir);
    r->port = tls_port;
    assert_int_equal(out_open(r, yaml, &err), 0);
    struct mr_record recs[4];
    recs_make(r, recs, 4, 0);
    assert_int_equal(out_write(r, recs, 4), MR_SINK_OK);
    assert_true(sub_wait(s, 4, false, 3000));
    assert_true(has_msg(s, "tls/temp", "0.5", false));
    out_close(r);
    snprintf(yaml, sizeof(yaml),
             "{servers: [\"ssl://127.0.0.1:%%d\"], tls_ca: %s/other.crt, timeout: 300ms}", r->dir);
    assert_int_equal(out_open(r, yaml, &err), 0);
    assert_int_equal(out_write(r, recs, 4), MR_SINK_RETRY);
    sub_close(s);
    rig_free(r);
}

static void test_config_errors(void **state)
{
    (void)state;
    struct mr_err err = {0};
    assert_int_equal(mr_section_validate(&mr_output_mqtt.conf, "outputs.m", &err), 0);
    static const struct {
        const char *yaml;
        const char *says;
    } cases[] = {
        {"{servers: [\"http://x:1\"]}", "use tcp://host:port or ssl://host:port"},
        {"{servers: [\"tcp://a:1\", \"tcp://b:1\"]}", "give one broker"},
        {"{topic: \"a/{site}\"}", "bad placeholder at '{site}'"},
        {"{topic: \"a/+/b\"}", "wildcards"},
        {"{tls_cert: c.pem}", "tls_cert and tls_key go together"},
        {"{batch: true}", "not supported"},
        {"{sparkplug: {group_id: g}}", "needs group_id and edge_node_id"},
        {"{ack_topic: a/ack, qos: 0}", "ack_topic needs qos 1 or 2"},
        {"{qos: 3}", "qos"},
        {"{data_format: xml}", "data_format"},
        {"{timeout: 10}", "timeout"},
    };
    struct mr_config_errors *errs = calloc(1, sizeof(*errs));
    unsigned char conf[1024];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(errs, 0, sizeof(*errs));
        int rc = mr_section_load_buffer(&mr_output_mqtt.conf, conf, "t.yaml", cases[i].yaml,
                                        strlen(cases[i].yaml), NULL, errs);
        if (rc == 0 || strstr(errs->msg[0], cases[i].says) == NULL) {
            fail_msg("case %zu: rc %d, \"%s\", expected \"%s\"", i, rc, errs->msg[0],
                     cases[i].says);
        }
    }
    free(errs);
    /* errors only init can see: an unreadable CA file, a bad Sparkplug id */
    struct rig *r = rig_new();
    assert_int_not_equal(
        out_open(r, "{servers: [\"ssl://127.0.0.1:%d\"], tls_ca: /nonexistent}", &err), 0);
    assert_non_null(strstr(err.msg, "tls_ca"));
    assert_int_not_equal(out_open(r,
                                  "{servers: [\"tcp://127.0.0.1:%d\"], sparkplug: {group_id: "
                                  "\"a/b\", edge_node_id: n}}",
                                  &err),
                         0);
    assert_non_null(strstr(err.msg, "sparkplug.group_id 'a/b'"));
    rig_free(r);
}

static void test_bad_credentials_fatal(void **state)
{
    (void)state;
    struct rig *r = rig_new();
    /* a broker that lets nobody in (no anonymous clients, no password file) */
    broker_kill(r);
    char path[256];
    snprintf(path, sizeof(path), "%s/strict.conf", r->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous false\n", r->port);
    fclose(f);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "/usr/sbin/mosquitto -c %s >/dev/null 2>&1 & echo $!", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int pid = -1;
    assert_int_equal(fscanf(p, "%d", &pid), 1);
    pclose(p);
    r->broker = pid;
    usleep(300000);
    struct mr_err err = {0};
    assert_int_equal(out_open(r,
                              "{servers: [\"tcp://127.0.0.1:%d\"], username: intruder, "
                              "password: guess, timeout: 2s}",
                              &err),
                     0);
    struct mr_record recs[1];
    recs_make(r, recs, 1, 0);
    assert_int_equal(mr_output_mqtt.output.write(r->ctx, recs, 1, &err), MR_SINK_FATAL);
    assert_non_null(strstr(err.msg, "refuses millrace"));
    rig_free(r);
}

int main(void)
{
    mosquitto_lib_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_json_topics_retain_and_reject),
        cmocka_unit_test(test_value_format),
        cmocka_unit_test(test_broker_restart_retry_nothing_lost),
        cmocka_unit_test(test_in_flight_resumed_not_doubled),
        cmocka_unit_test(test_sparkplug_edge_node),
        cmocka_unit_test(test_ack_topic),
        cmocka_unit_test(test_bad_credentials_fatal),
        cmocka_unit_test(test_tls),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    mosquitto_lib_cleanup();
    return rc;
}
