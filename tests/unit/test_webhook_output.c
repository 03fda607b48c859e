/* The `http` (webhook) output (src/outputs/webhook.c) against a real HTTP peer: millrace's own
 * HTTP server (src/web/http_server.c) on a libuv loop in a thread, recording every request
 * (method, headers, body) and answering 200, 503, 400 or 401 on demand; and a closed port.
 * Checks the JSON batches (every record once, its fields), max_batch, headers and method, the
 * body template, RETRY on 503 and on a dead peer with the acknowledged part of a batch not sent
 * again, reject() of every record of a request answered 400 with the status and the answer,
 * FATAL on 401, and config errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "millrace/config.h"
#include "millrace/http_server.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "millrace/plugin.h"
#include "support/output_open.h"

extern const struct mr_plugin mr_output_http;

/* ---- the peer ---- */

enum peer_mode { PEER_OK, PEER_503, PEER_400, PEER_401 };

#define PEER_MAX_BODIES 16

struct peer {
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t wake;
    struct mr_http_server *server;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready;
    /* guarded by mu */
    enum peer_mode mode;
    int ok_before_fail; /* >= 0: answer this many requests OK, then as `mode` */
    uint32_t requests;
    uint32_t records; /* records in bodies answered 200 */
    char method[16];
    char ctype[64];
    char auth[128];
    char site[64];
    char *bodies[PEER_MAX_BODIES]; /* bodies answered 200, in order */
    size_t nbodies;
};

static size_t body_records(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *arr = json_is_array(root) ? root : json_object_get(root, "alerts");
    size_t n = json_array_size(arr);
    json_decref(root);
    return n;
}

static void peer_handler(void *arg, struct mr_http_request *req)
{
    struct peer *p = arg;
    size_t len;
    const uint8_t *body = mr_http_request_body(req, &len);
    const char *ct = mr_http_request_header(req, "Content-Type");
    const char *auth = mr_http_request_header(req, "Authorization");
    const char *site = mr_http_request_header(req, "X-Site");
    pthread_mutex_lock(&p->mu);
    p->requests++;
    snprintf(p->method, sizeof(p->method), "%s", mr_http_request_method(req));
    snprintf(p->ctype, sizeof(p->ctype), "%s", ct != NULL ? ct : "");
    snprintf(p->auth, sizeof(p->auth), "%s", auth != NULL ? auth : "");
    snprintf(p->site, sizeof(p->site), "%s", site != NULL ? site : "");
    enum peer_mode mode = p->mode;
    if (p->ok_before_fail >= 0) {
        mode = p->ok_before_fail > 0 ? PEER_OK : mode;
        p->ok_before_fail -= p->ok_before_fail > 0;
    }
    if (mode == PEER_OK) {
        p->records += (uint32_t)body_records((const char *)body, len);
        if (p->nbodies < PEER_MAX_BODIES) {
            p->bodies[p->nbodies] = calloc(1, len + 1);
            memcpy(p->bodies[p->nbodies++], body, len);
        }
    }
    pthread_mutex_unlock(&p->mu);
    static const char too_long[] =
        "{\"error\": \"unknown asset in alert\", \"detail\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxTAIL\"}";
    switch (mode) {
    case PEER_OK:
        mr_http_respond(req, 200, "application/json", NULL, "{}", 2);
        break;
    case PEER_503:
        mr_http_respond(req, 503, "text/plain", NULL, "maintenance", 11);
        break;
    case PEER_400:
        mr_http_respond(req, 400, "application/json", NULL, too_long, strlen(too_long));
        break;
    default:
        mr_http_respond(req, 401, "text/plain", NULL, "bad token", 9);
    }
}

static void peer_stopped(void *arg)
{
    struct peer *p = arg;
    uv_close((uv_handle_t *)&p->wake, NULL);
}

static void peer_wake(uv_async_t *a)
{
    struct peer *p = a->data;
    mr_http_server_stop(p->server, peer_stopped, p);
}

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    struct mr_http_server_options o;
    struct mr_err err = {0};
    mr_http_server_options_init(&o);
    o.listen = "127.0.0.1:0";
    o.log_name = "test-webhook";
    assert_int_equal(uv_loop_init(&p->loop), 0);
    assert_int_equal(uv_async_init(&p->loop, &p->wake, peer_wake), 0);
    p->wake.data = p;
    int rc = mr_http_server_start(&p->server, &p->loop, &o, peer_handler, p, &err);
    pthread_mutex_lock(&p->mu);
    p->port = rc == 0 ? mr_http_server_port(p->server) : -1;
    p->ready = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (rc != 0) {
        uv_close((uv_handle_t *)&p->wake, NULL);
    }
    uv_run(&p->loop, UV_RUN_DEFAULT);
    uv_loop_close(&p->loop);
    return NULL;
}

static struct peer *peer_start(void)
{
    struct peer *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->ok_before_fail = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    assert_int_equal(pthread_create(&p->thread, NULL, peer_main, p), 0);
    pthread_mutex_lock(&p->mu);
    while (!p->ready) {
        pthread_cond_wait(&p->cv, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    assert_true(p->port > 0);
    return p;
}

static void peer_stop(struct peer *p)
{
    uv_async_send(&p->wake);
    pthread_join(p->thread, NULL);
    for (size_t i = 0; i < p->nbodies; i++) {
        free(p->bodies[i]);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

static void peer_set(struct peer *p, enum peer_mode mode, int ok_before_fail)
{
    pthread_mutex_lock(&p->mu);
    p->mode = mode;
    p->ok_before_fail = ok_before_fail;
    pthread_mutex_unlock(&p->mu);
}

/* ---- the output under test ---- */

#define NREC 250

struct rig {
    struct mr_names *names;
    struct mr_metrics *metrics;
    struct mr_output_host host;
    unsigned char conf[1024];
    void *ctx;
    struct mr_record recs[NREC];
    size_t nrejects;
    size_t reject_index[NREC];
    char reason[400];
};

static void on_reject(struct mr_output_host *host, size_t index, const char *reason)
{
    struct rig *r = host->arg;
    if (r->nrejects < NREC) {
        r->reject_index[r->nrejects] = index;
    }
    r->nrejects++;
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

static struct rig *rig_open(const char *yaml_fmt, int port)
{
    struct rig *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    assert_true(mr_output_http.conf.size <= sizeof(r->conf));
    assert_int_equal(mr_names_create(&r->names, 1000, 1u << 20), 0);
    assert_int_equal(mr_metrics_create(&r->metrics), 0);
    r->host = (struct mr_output_host){.name = "outputs.tickets",
                                      .names = r->names,
                                      .metrics = r->metrics,
                                      .reject = on_reject,
                                      .arg = r};
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), yaml_fmt, port);
    struct mr_err err = {0};
    if (mr_test_output_open(&mr_output_http, r->conf, yaml, &r->host, &r->ctx, &err) != 0) {
        fail_msg("%s", err.msg);
    }
    mr_name_id asset, sig, unit;
    assert_int_equal(mr_names_intern(r->names, "plant/line \"1\"/press", 20, &asset), 0);
    assert_int_equal(mr_names_intern(r->names, "spindle.temp", 12, &sig), 0);
    assert_int_equal(mr_names_intern(r->names, "unit", 4, &unit), 0);
    for (int i = 0; i < NREC; i++) {
        r->recs[i] = (struct mr_record){.time_ns = 1767225600000000000LL + 123456789 + i,
                                        .asset = asset,
                                        .signal = sig,
                                        .type = MR_VALUE_F64,
                                        .quality = i == 0 ? MR_QUALITY_BAD : MR_QUALITY_GOOD,
                                        .ntags = 1};
        r->recs[i].v.f64 = i + 0.5;
        r->recs[i].tags[0] = (struct mr_tag){unit, {"degC", 4}};
    }
    return r;
}

static void rig_close(struct rig *r)
{
    mr_output_http.output.fini(r->ctx);
    free(r->ctx);
    mr_section_free(&mr_output_http.conf, r->conf);
    mr_metrics_destroy(r->metrics);
    mr_names_destroy(r->names);
    free(r);
}

/* ---- tests ---- */

static void test_json_batches_and_headers(void **state)
{
    (void)state;
    struct peer *p = peer_start();
    struct rig *r = rig_open("{url: \"http://127.0.0.1:%d/hook\", method: PUT, max_batch: 100, "
                             "headers: {Authorization: \"Bearer s3cret\", X-Site: hall2}}",
                             p->port);
    struct mr_err err = {0};
    int rc = mr_output_http.output.write(r->ctx, r->recs, NREC, &err);
    if (rc != MR_SINK_OK) {
        fail_msg("write: %d %s", rc, err.msg);
    }
    pthread_mutex_lock(&p->mu);
    assert_int_equal(p->requests, 3);
    assert_int_equal(p->records, NREC);
    assert_string_equal(p->method, "PUT");
    assert_string_equal(p->ctype, "application/json");
    assert_string_equal(p->auth, "Bearer s3cret");
    assert_string_equal(p->site, "hall2");
    json_t *root = json_loads(p->bodies[0], 0, NULL);
    assert_int_equal(json_array_size(root), 100);
    json_t *o = json_array_get(root, 0);
    assert_string_equal(json_string_value(json_object_get(o, "time")),
                        "2026-01-01T00:00:00.123456789Z");
    assert_string_equal(json_string_value(json_object_get(o, "asset")), "plant/line \"1\"/press");
    assert_string_equal(json_string_value(json_object_get(o, "signal")), "spindle.temp");
    assert_true(json_real_value(json_object_get(o, "value")) == 0.5);
    assert_string_equal(json_string_value(json_object_get(o, "quality")), "bad");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "tags"), "unit")),
                        "degC");
    json_decref(root);
    root = json_loads(p->bodies[2], 0, NULL);
    assert_int_equal(json_array_size(root), 50);
    assert_true(json_real_value(json_object_get(json_array_get(root, 49), "value")) == 249.5);
    json_decref(root);
    pthread_mutex_unlock(&p->mu);
    rig_close(r);
    peer_stop(p);
}

static void test_body_template(void **state)
{
    (void)state;
    struct peer *p = peer_start();
    struct rig *r =
        rig_open("{url: \"http://127.0.0.1:%d/hook\", max_batch: 7, content_encoding: identity, "
                 "body_template: '{\"source\": \"{{output}}\", \"n\": {{count}}, "
                 "\"alerts\": {{records}}}'}",
                 p->port);
    struct mr_err err = {0};
    assert_int_equal(mr_output_http.output.write(r->ctx, r->recs, 10, &err), MR_SINK_OK);
    pthread_mutex_lock(&p->mu);
    assert_int_equal(p->requests, 2);
    assert_int_equal(p->records, 10);
    json_t *root = json_loads(p->bodies[1], 0, NULL);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "source")), "outputs.tickets");
    assert_int_equal(json_integer_value(json_object_get(root, "n")), 3);
    assert_int_equal(json_array_size(json_object_get(root, "alerts")), 3);
    json_decref(root);
    pthread_mutex_unlock(&p->mu);
    rig_close(r);
    peer_stop(p);
}

static void test_retry_on_503_and_dead_peer(void **state)
{
    (void)state;
    struct peer *p = peer_start();
    struct rig *r = rig_open("{url: \"http://127.0.0.1:%d/hook\", max_batch: 10}", p->port);
    peer_set(p, PEER_503, 1); /* the first request of 10 is taken, then 503 */
    struct mr_err err = {0};
    assert_int_equal(mr_output_http.output.write(r->ctx, r->recs, 30, &err), MR_SINK_RETRY);
    assert_non_null(strstr(err.msg, "503"));
    assert_non_null(strstr(err.msg, "maintenance"));
    peer_set(p, PEER_OK, -1);
    assert_int_equal(mr_output_http.output.write(r->ctx, r->recs, 30, &err), MR_SINK_OK);
    pthread_mutex_lock(&p->mu);
    assert_int_equal(p->records, 30); /* the acknowledged first 10 were not sent again */
    assert_int_equal(p->requests, 4);
    pthread_mutex_unlock(&p->mu);
    assert_int_equal(r->nrejects, 0);
    rig_close(r);
    int port = p->port;
    peer_stop(p);
    r = rig_open("{url: \"http://127.0.0.1:%d/hook\", timeout: 1s}", port);
    err = (struct mr_err){0};
    assert_int_equal(mr_output_http.output.write(r->ctx, r->recs, 5, &err), MR_SINK_RETRY);
    assert_true(err.msg[0] != '\0');
    rig_close(r);
}

static void test_reject_on_400_fatal_on_401(void **state)
{
    (void)state;
    struct peer *p = peer_start();
    struct rig *r = rig_open("{url: \"http://127.0.0.1:%d/hook\", max_batch: 10}", p->port);
    peer_set(p, PEER_400, 1); /* request 1 OK, request 2 refused */
    struct mr_err err = {0};
    assert_int_equal(mr_output_http.output.write(r->ctx, r->recs, 20, &err), MR_SINK_OK);
    assert_int_equal(r->nrejects, 10);
    for (size_t i = 0; i < 10; i++) {
        assert_int_equal(r->reject_index[i], 10 + i);
    }
    assert_non_null(strstr(r->reason, "HTTP 400"));
    assert_non_null(strstr(r->reason, "unknown asset in alert"));
    assert_null(strstr(r->reason, "TAIL")); /* the answer is cut at 200 bytes */
    peer_set(p, PEER_401, -1);
    err = (struct mr_err){0};
    assert_int_equal(mr_output_http.output.write(r->ctx, r->recs + 20, 5, &err), MR_SINK_FATAL);
    assert_non_null(strstr(err.msg, "401"));
    assert_non_null(strstr(err.msg, "bad token"));
    assert_int_equal(r->nrejects, 10);
    pthread_mutex_lock(&p->mu);
    assert_int_equal(p->records, 10);
    pthread_mutex_unlock(&p->mu);
    rig_close(r);
    peer_stop(p);
}

static void test_bad_config(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{url: \"ftp://x\"}",
        "{url: \"http://x\", body_template: '{\"a\": {{recs}}}'}",
        "{url: \"http://x\", method: DELETE}",
        "{url: \"http://x\", max_batch: 0}",
        "{url: \"http://x\", headers: {\"Bad: name\": x}}",
        "{method: POST}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char conf[1024];
        struct mr_config_errors *errs = calloc(1, sizeof(*errs));
        int rc = mr_section_load_buffer(&mr_output_http.conf, conf, "t.yaml", bad[i],
                                        strlen(bad[i]), NULL, errs);
        if (rc == 0) {
            fail_msg("accepted: %s", bad[i]);
        }
        assert_non_null(strstr(errs->msg[0], "t.yaml:1"));
        free(errs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_batches_and_headers),
        cmocka_unit_test(test_body_template),
        cmocka_unit_test(test_retry_on_503_and_dead_peer),
        cmocka_unit_test(test_reject_on_400_fatal_on_401),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
