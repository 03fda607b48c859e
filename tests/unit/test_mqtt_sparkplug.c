/* The MQTT input with data_format sparkplug_b against a real mosquitto, in process: Sparkplug B
 * payloads built with the generated protobuf-c code are published by a libmosquitto client of
 * the test; NBIRTH + NDATA by alias arrive as records (asset, signal, value, time), a sequence
 * gap makes the input publish an NCMD "Node Control/Rebirth" (the test subscribes to it and
 * decodes it), NDEATH turns the node's metrics bad quality, and the decoder's counters are in
 * the metrics registry. Third-party publisher: tests/integration/mqtt_sparkplug_client.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <mosquitto.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "inputs/mqtt_internal.h"
#include "inputs/sparkplug.h"
#include "millrace/metrics.h"
#include "millrace/plugin.h"
#include "support/mosquitto_peer.h"
#include "support/tmpdir.h"
#include "sparkplug_b.pb-c.h"

extern const struct mr_plugin mr_input_mqtt;

#define T0_MS   1800000000000ull
#define MAXREC  64
#define TICK_MS 20

struct got {
    char asset[64], signal[64];
    uint8_t type, quality;
    double f64;
    int64_t i64, time_ns;
};

struct live {
    uv_loop_t loop;
    uv_timer_t tick;
    struct mr_input_host host;
    void *ctx;
    struct mosquitto *pub; /* the test's edge node: publishes data, hears NCMD */
    char dir[64];
    int port;
    struct got rec[MAXREC];
    size_t n;
    int step, ticks, wait_from, stopped;
    atomic_int ncmd; /* NCMD rebirth requests seen (written by libmosquitto's thread) */
    atomic_bool ncmd_ok;
};

static int live_emit(struct mr_input_host *host, const struct mr_record *recs, size_t n)
{
    struct live *l = host->arg;
    for (size_t i = 0; i < n && l->n < MAXREC; i++) {
        struct got *g = &l->rec[l->n++];
        snprintf(g->asset, sizeof(g->asset), "%s", mr_names_str(host->names, recs[i].asset, NULL));
        snprintf(g->signal, sizeof(g->signal), "%s",
                 mr_names_str(host->names, recs[i].signal, NULL));
        g->type = recs[i].type;
        g->quality = recs[i].quality;
        g->time_ns = recs[i].time_ns;
        g->f64 = recs[i].type == MR_VALUE_F64 ? recs[i].v.f64 : 0;
        g->i64 = recs[i].type == MR_VALUE_I64 ? recs[i].v.i64 : 0;
    }
    return 0;
}

static void live_ended(struct mr_input_host *host, int status)
{
    (void)host;
    fail_msg("an MQTT input never ends by itself (status %d)", status);
}

static void live_stopped(struct mr_input_host *host)
{
    struct live *l = host->arg;
    l->stopped++;
}

/* ---- the test's edge node ---- */

static void on_ncmd(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    struct live *l = obj;
    (void)m;
    Spb__Payload *p = spb__payload__unpack(NULL, (size_t)msg->payloadlen, msg->payload);
    bool ok = p != NULL && strcmp(msg->topic, "spBv1.0/G1/NCMD/N1") == 0 && p->n_metrics == 1 &&
              strcmp(p->metrics[0]->name, "Node Control/Rebirth") == 0 &&
              p->metrics[0]->value_case == SPB__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE &&
              p->metrics[0]->boolean_value && !msg->retain;
    if (p != NULL) {
        spb__payload__free_unpacked(p, NULL);
    }
    atomic_store(&l->ncmd_ok, ok);
    atomic_fetch_add(&l->ncmd, 1);
}

struct m {
    const char *name; /* NULL: by alias only */
    uint64_t alias;
    uint32_t datatype;
    double d;
    uint64_t u;
};

static void publish(struct live *l, const char *topic, uint64_t ts, int seq, const struct m *ms,
                    size_t n)
{
    Spb__Payload p = SPB__PAYLOAD__INIT;
    Spb__Payload__Metric mm[8], *mp[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        spb__payload__metric__init(&mm[i]);
        mm[i].name = (char *)ms[i].name;
        mm[i].has_alias = true;
        mm[i].alias = ms[i].alias;
        mm[i].has_datatype = ms[i].name != NULL; /* births declare, data relies on the alias */
        mm[i].datatype = ms[i].datatype;
        if (ms[i].datatype == MR_SPB_DOUBLE) {
            mm[i].value_case = SPB__PAYLOAD__METRIC__VALUE_DOUBLE_VALUE;
            mm[i].double_value = ms[i].d;
        } else if (ms[i].datatype == MR_SPB_BOOLEAN) {
            mm[i].value_case = SPB__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE;
            mm[i].boolean_value = ms[i].u != 0;
        } else {
            mm[i].value_case = SPB__PAYLOAD__METRIC__VALUE_LONG_VALUE;
            mm[i].long_value = ms[i].u;
        }
        mp[i] = &mm[i];
    }
    p.has_timestamp = true;
    p.timestamp = ts;
    p.has_seq = seq >= 0;
    p.seq = seq >= 0 ? (uint64_t)seq : 0;
    p.n_metrics = n;
    p.metrics = mp;
    uint8_t buf[1024];
    size_t len = spb__payload__get_packed_size(&p);
    assert_true(len <= sizeof(buf));
    spb__payload__pack(&p, buf);
    assert_int_equal(mosquitto_publish(l->pub, NULL, topic, (int)len, buf, 1, false), 0);
}

/* ---- the script, one step per tick ---- */

static const struct m nbirth[] = {
    {"bdSeq", 0, MR_SPB_INT64, 0, 4},
    {"Node Control/Rebirth", 1, MR_SPB_BOOLEAN, 0, 0},
    {"Temperature", 2, MR_SPB_DOUBLE, 20.5, 0},
    {"Count", 3, MR_SPB_INT64, 0, 7},
};

static void stop_all(struct live *l)
{
    mr_input_mqtt.input.stop(l->ctx);
    uv_close((uv_handle_t *)&l->tick, NULL);
}

static void live_tick(uv_timer_t *t)
{
    struct live *l = t->data;
    l->ticks++;
    if (l->ticks > 5000 / TICK_MS) { /* bounded: report what was reached */
        print_error("stuck at step %d with %zu records, %d NCMD\n", l->step, l->n,
                    atomic_load(&l->ncmd));
        stop_all(l);
        return;
    }
    switch (l->step) {
    case 0: /* the input has had 300 ms to connect and subscribe */
        if (l->ticks < 300 / TICK_MS) {
            return;
        }
        publish(l, "spBv1.0/G1/NBIRTH/N1", T0_MS, 0, nbirth, 4);
        {
            const struct m ndata[] = {{NULL, 2, MR_SPB_DOUBLE, 21.25, 0},
                                      {NULL, 3, MR_SPB_INT64, 0, 8}};
            publish(l, "spBv1.0/G1/NDATA/N1", T0_MS + 1000, 1, ndata, 2);
        }
        l->step++;
        return;
    case 1: /* births and data by alias arrived: lose seq 2 */
        if (l->n < 4) {
            return;
        }
        {
            const struct m ndata[] = {{NULL, 2, MR_SPB_DOUBLE, 22.0, 0}};
            publish(l, "spBv1.0/G1/NDATA/N1", T0_MS + 3000, 3, ndata, 1);
        }
        l->step++;
        return;
    case 2: /* the gap brought an NCMD rebirth request: the node dies */
        if (atomic_load(&l->ncmd) < 1) {
            return;
        }
        publish(l, "spBv1.0/G1/NDEATH/N1", T0_MS + 4000, -1, nbirth, 1);
        l->step++;
        return;
    case 3: /* NBIRTH 2 + NDATA 2 + NDATA 1 + NDEATH 2 stale */
        if (l->n < 7) {
            return;
        }
        l->step++;
        l->wait_from = l->ticks;
        return;
    default: /* a little longer: nothing more may arrive */
        if (l->ticks - l->wait_from >= 100 / TICK_MS) {
            stop_all(l);
        }
        return;
    }
}

/* ---- broker ---- */

static void edge_node_open(struct live *l)
{
    l->pub = mosquitto_new("test-edge-node", true, l);
    assert_non_null(l->pub);
    mosquitto_message_callback_set(l->pub, on_ncmd);
    assert_int_equal(mosquitto_connect(l->pub, "127.0.0.1", l->port, 30), MOSQ_ERR_SUCCESS);
    assert_int_equal(mosquitto_subscribe(l->pub, NULL, "spBv1.0/G1/NCMD/N1", 1), MOSQ_ERR_SUCCESS);
    assert_int_equal(mosquitto_loop_start(l->pub), MOSQ_ERR_SUCCESS);
}

static void assert_metric(const char *text, const char *name, const char *value)
{
    char line[256];
    snprintf(line, sizeof(line), "%s{instance=\"inputs.spb\",plugin=\"mqtt\"} %s\n", name, value);
    if (strstr(text, line) == NULL) {
        fail_msg("metrics lack '%s' in:\n%s", line, text);
    }
}

static void test_sparkplug_through_mosquitto(void **state)
{
    (void)state;
    struct live *l = calloc(1, sizeof(*l));
    struct mr_names *names;
    struct mr_metrics *metrics;
    struct mqtt_conf conf;
    struct mr_config_errors errs = {0};
    struct mr_err err;
    assert_non_null(l);
    assert_int_equal(mr_test_tmpdir_create(l->dir, sizeof(l->dir), "mr-spb"), 0);
    l->port = mr_test_free_port();
    pid_t broker = mr_test_mosquitto_start(l->dir, l->port);
    mosquitto_lib_init();
    edge_node_open(l);
    char yaml[256];
    snprintf(yaml, sizeof(yaml),
             "servers: ['tcp://127.0.0.1:%d']\ndata_format: sparkplug_b\nasset: site1\n", l->port);
    assert_int_equal(mr_section_load_buffer(&mr_input_mqtt.conf, &conf, "t.yaml", yaml,
                                            strlen(yaml), NULL, &errs),
                     0);
    assert_int_equal(mr_names_create(&names, 100, 4096), 0);
    assert_int_equal(mr_metrics_create(&metrics), 0);
    assert_int_equal(uv_loop_init(&l->loop), 0);
    l->host = (struct mr_input_host){.name = "inputs.spb",
                                     .names = names,
                                     .metrics = metrics,
                                     .loop = &l->loop,
                                     .emit = live_emit,
                                     .ended = live_ended,
                                     .stopped = live_stopped,
                                     .arg = l};
    l->ctx = calloc(1, mr_input_mqtt.ctx_size);
    assert_int_equal(mr_input_mqtt.input.init(l->ctx, &conf, &l->host, &err), 0);
    assert_int_equal(mr_input_mqtt.input.start(l->ctx, &err), 0);
    uv_timer_init(&l->loop, &l->tick);
    l->tick.data = l;
    uv_timer_start(&l->tick, live_tick, TICK_MS, TICK_MS);
    assert_int_equal(uv_run(&l->loop, UV_RUN_DEFAULT), 0);

    char *text = malloc(1 << 16);
    size_t needed;
    assert_non_null(text);
    assert_true(mr_metrics_render(metrics, text, 1 << 16, &needed) > 0);
    mr_input_mqtt.input.fini(l->ctx);
    free(l->ctx);
    assert_int_equal(uv_loop_close(&l->loop), 0);
    mosquitto_disconnect(l->pub);
    mosquitto_loop_stop(l->pub, false);
    mosquitto_destroy(l->pub);
    kill(broker, SIGTERM);
    waitpid(broker, NULL, 0);

    assert_int_equal(l->step, 4);
    assert_int_equal(l->stopped, 1);
    assert_int_equal(atomic_load(&l->ncmd), 1); /* one request for one gap */
    assert_true(atomic_load(&l->ncmd_ok));
    static const struct {
        const char *signal;
        uint8_t type, quality;
        double value;
        int64_t time_ms; /* 0: the receive time */
    } want[] = {
        {"Temperature", MR_VALUE_F64, MR_QUALITY_GOOD, 20.5, T0_MS},         /* NBIRTH */
        {"Count", MR_VALUE_I64, MR_QUALITY_GOOD, 7, T0_MS},                  /* NBIRTH */
        {"Temperature", MR_VALUE_F64, MR_QUALITY_GOOD, 21.25, T0_MS + 1000}, /* NDATA by alias */
        {"Count", MR_VALUE_I64, MR_QUALITY_GOOD, 8, T0_MS + 1000},
        {"Temperature", MR_VALUE_F64, MR_QUALITY_GOOD, 22.0, T0_MS + 3000}, /* after the gap */
        {"Temperature", MR_VALUE_F64, MR_QUALITY_BAD, 22.0, 0}, /* NDEATH: last value, stale */
        {"Count", MR_VALUE_I64, MR_QUALITY_BAD, 8, 0},
    };
    assert_int_equal(l->n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < l->n; i++) {
        const struct got *g = &l->rec[i];
        assert_string_equal(g->asset, "site1/G1/N1");
        assert_string_equal(g->signal, want[i].signal);
        assert_int_equal(g->type, want[i].type);
        assert_int_equal(g->quality, want[i].quality);
        assert_true(g->type == MR_VALUE_F64 ? g->f64 == want[i].value
                                            : g->i64 == (int64_t)want[i].value);
        if (want[i].time_ms != 0) {
            assert_int_equal(g->time_ns, want[i].time_ms * 1000000);
        } else {
            assert_true(g->time_ns > (int64_t)1700000000000 * 1000000); /* the receive time */
        }
    }
    /* 4 published by the edge node, plus the input's own NCMD (spBv1.0/# hears it; ignored). */
    assert_metric(text, "millrace_sparkplug_messages_total", "5");
    assert_metric(text, "millrace_sparkplug_records_total", "7");
    assert_metric(text, "millrace_sparkplug_seq_gaps_total", "1");
    assert_metric(text, "millrace_sparkplug_rebirths_total", "1");
    assert_metric(text, "millrace_sparkplug_stale_total", "2");
    assert_metric(text, "millrace_records_in_total", "5");
    assert_metric(text, "millrace_records_out_total", "7");
    free(text);
    assert_int_equal(mr_test_tmpdir_remove(l->dir), 0);
    mr_metrics_destroy(metrics);
    mr_names_destroy(names);
    mr_section_free(&mr_input_mqtt.conf, &conf);
    free(l);
}

/* Records arrive only through a broker; what needs none is checked here: the data_format
 * names, defaults, and the config errors that name the key. */
static void test_sparkplug_config(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *msg; /* NULL: valid */
    } cases[] = {
        {"data_format: sparkplug_b\n", NULL},
        {"data_format: sparkplug\n", NULL},
        {"data_format: sparkplug_b\ntopics: ['spBv1.0/G1/#']\nsparkplug_max_metrics: 50\n", NULL},
        {"data_format: sparkplug_b\ntopic_template: 'a/{x}'\n", "topic_template"},
        {"data_format: sparkplug_b\nsparkplug_max_devices: 0\n", "sparkplug_max_devices"},
        {"data_format: sparkplug_b\nsparkplug_rebirth_retry: 1ms\n", "sparkplug_rebirth_retry"},
        {"data_format: sparkplugb\n", "data_format"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_config_errors errs = {0};
        struct mqtt_conf conf;
        int rc = mr_section_load_buffer(&mr_input_mqtt.conf, &conf, "t.yaml", cases[i].yaml,
                                        strlen(cases[i].yaml), NULL, &errs);
        if (cases[i].msg == NULL) {
            if (rc != 0) {
                fail_msg("%s: %s", cases[i].yaml, errs.msg[0]);
            }
            assert_true(MQTT_IS_SPARKPLUG(&conf));
            mr_section_free(&mr_input_mqtt.conf, &conf);
        } else if (rc == 0 || strstr(errs.msg[0], cases[i].msg) == NULL) {
            fail_msg("%s: rc %d '%s'", cases[i].yaml, rc, errs.n > 0 ? errs.msg[0] : "");
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparkplug_config),
        cmocka_unit_test(test_sparkplug_through_mosquitto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
