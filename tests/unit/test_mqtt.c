/* The MQTT input's parts that need no broker: the line protocol parser, the JSON path walker,
 * the topic template and the payload decoder (driven through the plugin's own config table).
 * The broker side is tests/integration/mqtt_formats_and_broker_restart_qos1.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "inputs/jsonpath.h"
#include "inputs/lineproto.h"
#include "inputs/mqtt_internal.h"
#include "millrace/metrics.h"
#include "millrace/plugin.h"
#include "support/mosquitto_peer.h"
#include "support/tmpdir.h"

extern const struct mr_plugin mr_input_mqtt;

static bool bytes_is(struct mr_bytes b, const char *s)
{
    return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0;
}

static void test_lineproto_good(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *measurement;
        size_t ntags, nfields;
        const char *tag0_key, *tag0_value;
        const char *field0_key;
        int type0;
        double value0;
        bool has_time;
        int64_t time_ns;
    } cases[] = {
        {"cpu value=1.5", "cpu", 0, 1, NULL, NULL, "value", MR_LP_FLOAT, 1.5, false, 0},
        {"cpu,host=a,dc=x v=3i 17", "cpu", 2, 1, "host", "a", "v", MR_LP_INT, 3, true, 17},
        {"w\\,x\\ y,t\\=k=v\\ 1 f=t", "w,x y", 1, 1, "t=k", "v 1", "f", MR_LP_BOOL, 1, false, 0},
        {"m u=18446744073709551615u,b=FALSE", "m", 0, 2, NULL, NULL, "u", MR_LP_UINT,
         1.8446744073709552e19, false, 0},
        {"m s=\"a \\\"q\\\" \\\\ b\" -5", "m", 0, 1, NULL, NULL, "s", MR_LP_STRING, 0, true, -5},
        {"m  x=-1e3   1700000000000000000  ", "m", 0, 1, NULL, NULL, "x", MR_LP_FLOAT, -1000, true,
         1700000000000000000},
    };
    char scratch[256];
    struct mr_lp_point pt;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_err err = {0};
        int rc = mr_lineproto_parse_line(cases[i].line, strlen(cases[i].line), MR_LP_NS, &pt,
                                         scratch, sizeof(scratch), &err);
        assert_int_equal(rc, 0);
        assert_true(bytes_is(pt.measurement, cases[i].measurement));
        assert_int_equal(pt.ntags, cases[i].ntags);
        assert_int_equal(pt.nfields, cases[i].nfields);
        if (cases[i].tag0_key != NULL) {
            assert_true(bytes_is(pt.tags[0].key, cases[i].tag0_key));
            assert_true(bytes_is(pt.tags[0].value, cases[i].tag0_value));
        }
        assert_true(bytes_is(pt.fields[0].key, cases[i].field0_key));
        assert_int_equal(pt.fields[0].type, cases[i].type0);
        switch (cases[i].type0) {
        case MR_LP_FLOAT:
            assert_true(pt.fields[0].v.f == cases[i].value0);
            break;
        case MR_LP_INT:
            assert_int_equal(pt.fields[0].v.i, (int64_t)cases[i].value0);
            break;
        case MR_LP_UINT:
            assert_true(pt.fields[0].v.u == UINT64_MAX);
            assert_int_equal(pt.fields[1].type, MR_LP_BOOL);
            assert_false(pt.fields[1].v.b);
            break;
        case MR_LP_BOOL:
            assert_true(pt.fields[0].v.b);
            break;
        default:
            assert_true(bytes_is(pt.fields[0].v.s, "a \"q\" \\ b"));
        }
        assert_int_equal(pt.has_time, cases[i].has_time);
        assert_true(pt.time_ns == cases[i].time_ns);
    }
    /* precision */
    struct mr_err err;
    assert_int_equal(mr_lineproto_parse_line("m v=1 1700000000", 16, MR_LP_S, &pt, scratch,
                                             sizeof(scratch), &err),
                     0);
    assert_true(pt.time_ns == 1700000000000000000);
    assert_int_equal(
        mr_lineproto_parse_line("  # comment", 11, MR_LP_NS, &pt, scratch, sizeof(scratch), &err),
        MR_LP_EMPTY);
    enum mr_lp_precision p;
    assert_int_equal(mr_lineproto_precision_parse("ms", &p), 0);
    assert_int_equal(p, MR_LP_MS);
    assert_int_equal(mr_lineproto_precision_parse("h", &p), MR_EINVAL);
}

static void test_lineproto_bad(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        int rc;
        const char *msg;
    } cases[] = {
        {"cpu", MR_EPARSE, "column 4: expected a space"},
        {"cpu value", MR_EPARSE, "column 5: field must be key=value"},
        {"cpu v=", MR_EPARSE, "column 7: field without a value"},
        {"cpu v=abc", MR_EPARSE, "column 7: field value is not"},
        {"cpu v=nan", MR_EPARSE, "column 7"},
        {"cpu v=1e999", MR_ERANGE, "out of range"},
        {"cpu v=99999999999999999999i", MR_ERANGE, "column 7: number out of range"},
        {"cpu v=\"open", MR_EPARSE, "column 7: string value without its closing quote"},
        {"cpu,host v=1", MR_EPARSE, "column 5: tag must be key=value"},
        {"cpu,host= v=1", MR_EPARSE, "column 10: tag without a value"},
        {",t=1 v=1", MR_EPARSE, "without a measurement"},
        {"cpu v=1 12x", MR_EPARSE, "column 9: timestamp must be an integer"},
        {"cpu v=1 9223372036854775807", MR_ERANGE, "timestamp out of range"},
        {"cpu v=1 1 2", MR_EPARSE, "column 11: unexpected text"},
    };
    char scratch[256];
    struct mr_lp_point pt;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_err err = {0};
        enum mr_lp_precision prec = i == 12 ? MR_LP_MS : MR_LP_NS;
        int rc = mr_lineproto_parse_line(cases[i].line, strlen(cases[i].line), prec, &pt, scratch,
                                         sizeof(scratch), &err);
        if (rc != cases[i].rc || strstr(err.msg, cases[i].msg) == NULL) {
            fail_msg("%s: rc %d, '%s'", cases[i].line, rc, err.msg);
        }
    }
    size_t pos = 0, len;
    const char *line;
    const char *buf = "a v=1\r\n\nb v=2";
    assert_true(mr_lineproto_next(buf, strlen(buf), &pos, &line, &len));
    assert_int_equal(len, 5);
    assert_true(mr_lineproto_next(buf, strlen(buf), &pos, &line, &len));
    assert_int_equal(len, 0);
    assert_true(mr_lineproto_next(buf, strlen(buf), &pos, &line, &len));
    assert_int_equal(len, 5);
    assert_false(mr_lineproto_next(buf, strlen(buf), &pos, &line, &len));
}

struct collected {
    char text[1024];
    size_t len;
};

static int collect(void *arg, const struct mr_json_leaf *leaf)
{
    struct collected *c = arg;
    int n = snprintf(c->text + c->len, sizeof(c->text) - c->len, "%s=%.*s;", leaf->path,
                     (int)leaf->raw_len, leaf->raw);
    c->len += (size_t)n;
    return 0;
}

static void test_json_walk(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int rc;
        const char *out; /* leaves, or the error's text */
    } cases[] = {
        {"{\"a\":1,\"b\":{\"c\":[true,null,\"x\"]}}", 0, "a=1;b.c.0=true;b.c.1=null;b.c.2=x;"},
        {" 42 ", 0, "=42;"},
        {"{\"k\\u00e9y\":-0.5e2}", 0, "k\xc3\xa9y=-0.5e2;"},
        {"[]", 0, ""},
        {"{\"a\":1,}", MR_EPARSE, "JSON byte 8: expected a key in quotes"},
        {"{\"a\":01}", MR_EPARSE, "expected ',' or '}'"},
        {"{\"a\":\"\\x\"}", MR_EPARSE, "bad escape"},
        {"{\"a\":1} x", MR_EPARSE, "unexpected text after"},
        {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", MR_ETOOBIG,
         "nested deeper than 32"},
        {"{\"a\":", MR_EPARSE, "value expected"},
        {"nul", MR_EPARSE, "unexpected character"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct collected c = {.len = 0};
        struct mr_err err = {0};
        c.text[0] = '\0';
        int rc = mr_json_walk(cases[i].json, strlen(cases[i].json), collect, &c, &err);
        const char *got = rc == 0 ? c.text : err.msg;
        if (rc != cases[i].rc ||
            (rc == 0 ? strcmp(got, cases[i].out) != 0 : strstr(got, cases[i].out) == NULL)) {
            fail_msg("%s: rc %d, '%s'", cases[i].json, rc, got);
        }
    }
    char out[16];
    const char *raw = "a\\n\\ud83d\\ude00\\udc00";
    long n = mr_json_unescape(raw, strlen(raw), out, sizeof(out));
    assert_int_equal(n, 2 + 4 + 3);
    assert_memory_equal(out, "a\n\xf0\x9f\x98\x80\xef\xbf\xbd", 9);
    assert_int_equal(mr_json_unescape("\\q", 2, out, sizeof(out)), MR_EPARSE);
}

static void test_template(void **state)
{
    (void)state;
    struct mqtt_template t;
    struct mr_err err;
    char filter[64];
    assert_int_equal(mqtt_template_parse(&t, "plant/{site}/+/{machine}/{signal}", &err), 0);
    assert_int_equal(t.nasset, 2);
    assert_true(t.has_signal);
    assert_int_equal(mqtt_template_filter(&t, filter, sizeof(filter)), 13);
    assert_string_equal(filter, "plant/+/+/+/+");
    assert_int_equal(mqtt_template_parse(&t, "a/#", &err), 0);
    assert_int_equal(mqtt_template_filter(&t, filter, sizeof(filter)), 3);
    assert_int_equal(mqtt_template_parse(&t, "a/#/b", &err), MR_EINVAL);
    assert_int_equal(mqtt_template_parse(&t, "a/{signal}/{signal}", &err), MR_EINVAL);
    assert_int_equal(mqtt_template_parse(&t, "a/x{y}", &err), MR_EINVAL);
    assert_non_null(strstr(err.msg, "level 'x{y}'"));
}

struct decode_fixture {
    struct mqtt_conf conf;
    struct mr_names *names;
    struct mqtt_decoder dec;
};

static void fixture_open(struct decode_fixture *f, const char *yaml)
{
    struct mr_config_errors errs = {0};
    int rc = mr_section_load_buffer(&mr_input_mqtt.conf, &f->conf, "t.yaml", yaml, strlen(yaml),
                                    NULL, &errs);
    if (rc != 0) {
        fail_msg("%s", errs.msg[0]);
    }
    assert_int_equal(mr_names_create(&f->names, 1000, 64 * 1024), 0);
    struct mr_err err;
    assert_int_equal(mqtt_decoder_init(&f->dec, &f->conf, f->names, &err), 0);
}

static void fixture_close(struct decode_fixture *f)
{
    mqtt_decoder_fini(&f->dec);
    mr_names_destroy(f->names);
    mr_section_free(&mr_input_mqtt.conf, &f->conf);
}

static const char *name(struct decode_fixture *f, mr_name_id id)
{
    return mr_names_str(f->names, id, NULL);
}

static void test_decode_json(void **state)
{
    (void)state;
    struct decode_fixture f;
    struct mr_err err;
    fixture_open(&f, "topic_template: 'p/{site}/{machine}/{signal}'\n"
                     "json_value_key: data.v\njson_time_key: ts\njson_quality_key: q\n");
    const char *msg = "{\"ts\":1700000000123,\"data\":{\"v\":2.5},\"q\":2147483648}";
    assert_int_equal(mqtt_decode(&f.dec, "p/s1/m1/temp", msg, strlen(msg), 7, &err), 1);
    struct mr_record *r = &f.dec.recs[0];
    assert_string_equal(name(&f, r->asset), "s1/m1");
    assert_string_equal(name(&f, r->signal), "temp");
    assert_true(r->v.f64 == 2.5);
    assert_true(r->time_ns == 1700000000123000000);
    assert_int_equal(r->quality, MR_QUALITY_BAD); /* OPC UA Bad class */
    /* no time: the receipt time; quality by name */
    msg = "{\"data\":{\"v\":\"on\\n\"},\"q\":\"Uncertain\"}";
    assert_int_equal(mqtt_decode(&f.dec, "p/s1/m1/state", msg, strlen(msg), 7, &err), 1);
    r = &f.dec.recs[1];
    assert_true(r->time_ns == 7);
    assert_int_equal(r->type, MR_VALUE_STRING);
    assert_true(bytes_is(r->v.str, "on\n"));
    assert_int_equal(r->quality, MR_QUALITY_UNCERTAIN);
    /* errors leave the batch alone and name the topic */
    static const struct {
        const char *topic, *payload, *msg;
    } bad[] = {
        {"p/s1/m1/x", "{\"v\":1}", "p/s1/m1/x: no value at JSON path 'data.v'"},
        {"p/s1/m1/x", "{\"data\":{\"v\":null}}", "null or unusable"},
        {"p/s1/m1/x", "{\"data\":{\"v\":1},\"ts\":\"yesterday\"}", "ts is not a time"},
        {"p/s1/m1/x", "{\"data\":{\"v\":1},\"q\":\"great\"}", "q must be good/uncertain/bad"},
        {"p/s1/m1/x", "{\"data\":", "p/s1/m1/x: JSON byte 9"},
        {"q/s1/m1/x", "{}", "does not match topic_template at 'q'"},
        {"p/s1/m1", "{}", "fewer levels"},
        {"p/s1/m1/x/y", "{}", "more levels"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long n = mqtt_decode(&f.dec, bad[i].topic, bad[i].payload, strlen(bad[i].payload), 7, &err);
        if (n >= 0 || strstr(err.msg, bad[i].msg) == NULL) {
            fail_msg("%s %s: %ld '%s'", bad[i].topic, bad[i].payload, n, err.msg);
        }
    }
    assert_int_equal(f.dec.nrecs, 2);
    fixture_close(&f);
}

static void test_decode_flatten_value_influx(void **state)
{
    (void)state;
    struct decode_fixture f;
    struct mr_err err;
    fixture_open(&f, "topic_template: 'f/{machine}/{signal}'\nasset: site\njson_flatten: true\n");
    const char *msg =
        "{\"a\":{\"b\":1,\"c\":[true,2]},\"s\":\"skip\",\"time\":\"2026-01-01T00:00:00Z\"}";
    assert_int_equal(mqtt_decode(&f.dec, "f/m1/axis", msg, strlen(msg), 7, &err), 3);
    assert_string_equal(name(&f, f.dec.recs[0].asset), "site/m1");
    assert_string_equal(name(&f, f.dec.recs[0].signal), "axis.a.b");
    assert_string_equal(name(&f, f.dec.recs[1].signal), "axis.a.c.0");
    assert_int_equal(f.dec.recs[1].type, MR_VALUE_BOOL);
    assert_string_equal(name(&f, f.dec.recs[2].signal), "axis.a.c.1");
    assert_true(f.dec.recs[2].time_ns == 1767225600000000000);
    fixture_close(&f);

    fixture_open(&f, "topics: [v/#]\nasset: a/b\ndata_format: value\ndata_type: integer\n");
    assert_int_equal(mqtt_decode(&f.dec, "v/x/speed", " -12\n", 5, 9, &err), 1);
    assert_string_equal(name(&f, f.dec.recs[0].asset), "a/b");
    assert_string_equal(name(&f, f.dec.recs[0].signal), "speed");
    assert_int_equal(f.dec.recs[0].v.i64, -12);
    assert_true(mqtt_decode(&f.dec, "v/x/speed", "1.5", 3, 9, &err) < 0);
    assert_non_null(strstr(err.msg, "v/x/speed: expected an integer, got '1.5'"));
    fixture_close(&f);

    fixture_open(&f, "topic_template: 'i/{site}'\ndata_format: influx\n");
    msg = "m,line=l1 a=1,b=\"x\" 5\n\n# c\nm c=2u\n";
    assert_int_equal(mqtt_decode(&f.dec, "i/s1", msg, strlen(msg), 9, &err), 3);
    assert_string_equal(name(&f, f.dec.recs[0].signal), "m.a");
    assert_int_equal(f.dec.recs[0].ntags, 1);
    assert_true(bytes_is(f.dec.recs[0].tags[0].value, "l1"));
    assert_true(f.dec.recs[0].time_ns == 5);
    assert_true(bytes_is(f.dec.recs[1].v.str, "x"));
    assert_true(f.dec.recs[2].time_ns == 9);
    msg = "m a=1\nm a=\n";
    assert_true(mqtt_decode(&f.dec, "i/s1", msg, strlen(msg), 9, &err) < 0);
    assert_non_null(strstr(err.msg, "i/s1: line 2: column 5: field without a value"));
    assert_int_equal(f.dec.nrecs, 3); /* all or nothing per message */
    fixture_close(&f);
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *msg;
    } cases[] = {
        {"topics: [a]\nasset: x\npersistent_session: true\n", "needs a fixed client_id"},
        {"asset: x\n", "give topics to subscribe to"},
        {"topics: [a]\n", "without a topic_template, asset names"},
        {"topic_template: 'a/#/b'\n", "'#' must be the last level"},
        {"topic_template: 'a/{x}'\ndata_format: sparkplug_b\n", "topics name group, node"},
        {"data_format: sparkplug\nsparkplug_max_metrics: 0\n", "sparkplug_max_metrics"},
        {"topic_template: 'a/{x}'\nqos: 3\n", "qos"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_config_errors errs = {0};
        struct mqtt_conf conf;
        int rc = mr_section_load_buffer(&mr_input_mqtt.conf, &conf, "t.yaml", cases[i].yaml,
                                        strlen(cases[i].yaml), NULL, &errs);
        if (rc == 0 || strstr(errs.msg[0], cases[i].msg) == NULL) {
            fail_msg("%s: rc %d '%s'", cases[i].yaml, rc, errs.n > 0 ? errs.msg[0] : "");
        }
    }
    struct mr_err err;
    assert_int_equal(mr_section_validate(&mr_input_mqtt.conf, "inputs.x", &err), 0);
}

/* ---- the plugin against a real mosquitto, in process: connect, back-pressure, stop ---- */

struct live {
    uv_loop_t loop;
    uv_timer_t tick;
    uv_process_t pub;
    struct mr_input_host host;
    const struct mr_plugin *plugin;
    void *ctx;
    char dir[64];
    int port;
    int refuse; /* answer MR_EAGAIN this often first */
    int emits_refused;
    long sum;
    size_t records;
    int stopped;
    int ticks;
    bool published, stopping;
};

static int live_emit(struct mr_input_host *host, const struct mr_record *recs, size_t n)
{
    struct live *l = host->arg;
    if (l->refuse > 0) {
        l->refuse--;
        l->emits_refused++;
        return MR_EAGAIN;
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(recs[i].type, MR_VALUE_I64);
        assert_string_equal(mr_names_str(host->names, recs[i].signal, NULL), "count");
        l->sum += recs[i].v.i64;
    }
    l->records += n;
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

static void pub_exit(uv_process_t *p, int64_t status, int sig)
{
    assert_int_equal(status, 0);
    assert_int_equal(sig, 0);
    uv_close((uv_handle_t *)p, NULL);
}

static void live_tick(uv_timer_t *t)
{
    struct live *l = t->data;
    l->ticks++;
    if (l->ticks == 5 && !l->published) { /* 250 ms: connected and subscribed */
        char port[16], file[96];
        snprintf(port, sizeof(port), "%d", l->port);
        snprintf(file, sizeof(file), "%s/lines", l->dir);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "mosquitto_pub -p %s -q 1 -t m/press1/count -l < %s", port,
                 file);
        char *args_l[] = {"/bin/sh", "-c", cmd, NULL};
        uv_process_options_t o = {.file = "/bin/sh", .args = args_l, .exit_cb = pub_exit};
        assert_int_equal(uv_spawn(&l->loop, &l->pub, &o), 0);
        l->published = true;
    }
    if ((l->records == 100 || l->ticks > 200) && !l->stopping) {
        l->stopping = true;
        l->plugin->input.stop(l->ctx);
        uv_close((uv_handle_t *)t, NULL);
    }
}

static void test_live_broker(void **state)
{
    (void)state;
    struct live l = {.refuse = 2};
    struct mr_names *names;
    struct mr_metrics *metrics;
    struct mqtt_conf conf;
    struct mr_config_errors errs = {0};
    struct mr_err err;
    assert_int_equal(mr_test_tmpdir_create(l.dir, sizeof(l.dir), "mr-mqtt"), 0);
    l.port = mr_test_free_port();
    pid_t broker = mr_test_mosquitto_start(l.dir, l.port);
    char lines[96];
    snprintf(lines, sizeof(lines), "%s/lines", l.dir);
    FILE *f = fopen(lines, "w");
    assert_non_null(f);
    for (int i = 1; i <= 100; i++) {
        fprintf(f, "%d\n", i);
    }
    fclose(f);
    char yaml[256];
    snprintf(yaml, sizeof(yaml),
             "servers: ['tcp://127.0.0.1:%d']\ntopic_template: 'm/{machine}/{signal}'\n"
             "data_format: value\ndata_type: integer\nbatch: 8\n",
             l.port);
    assert_int_equal(mr_section_load_buffer(&mr_input_mqtt.conf, &conf, "t.yaml", yaml,
                                            strlen(yaml), NULL, &errs),
                     0);
    assert_int_equal(mr_names_create(&names, 100, 4096), 0);
    assert_int_equal(mr_metrics_create(&metrics), 0);
    assert_int_equal(uv_loop_init(&l.loop), 0);
    l.host = (struct mr_input_host){.name = "inputs.live",
                                    .names = names,
                                    .metrics = metrics,
                                    .loop = &l.loop,
                                    .emit = live_emit,
                                    .ended = live_ended,
                                    .stopped = live_stopped,
                                    .arg = &l};
    l.plugin = &mr_input_mqtt;
    l.ctx = calloc(1, mr_input_mqtt.ctx_size);
    assert_int_equal(mr_input_mqtt.input.init(l.ctx, &conf, &l.host, &err), 0);
    assert_int_equal(mr_input_mqtt.input.start(l.ctx, &err), 0);
    uv_timer_init(&l.loop, &l.tick);
    l.tick.data = &l;
    uv_timer_start(&l.tick, live_tick, 50, 50);
    assert_int_equal(uv_run(&l.loop, UV_RUN_DEFAULT), 0);
    mr_input_mqtt.input.fini(l.ctx);
    free(l.ctx);
    assert_int_equal(uv_loop_close(&l.loop), 0);
    kill(broker, SIGTERM);
    waitpid(broker, NULL, 0);
    assert_int_equal(l.stopped, 1);
    assert_int_equal(l.emits_refused, 2);
    assert_int_equal(l.records, 100); /* back-pressure lost nothing */
    assert_int_equal(l.sum, 5050);
    assert_int_equal(mr_test_tmpdir_remove(l.dir), 0);
    mr_metrics_destroy(metrics);
    mr_names_destroy(names);
    mr_section_free(&mr_input_mqtt.conf, &conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lineproto_good), cmocka_unit_test(test_lineproto_bad),
        cmocka_unit_test(test_json_walk),      cmocka_unit_test(test_template),
        cmocka_unit_test(test_decode_json),    cmocka_unit_test(test_decode_flatten_value_influx),
        cmocka_unit_test(test_config_errors),  cmocka_unit_test(test_live_broker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
