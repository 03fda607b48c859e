/* The `forward` output (src/forward/forward.c) against a real HTTP peer: millrace's own HTTP
 * server (src/web/http_server.c) on a libuv loop in a thread, with a handler that decodes each
 * body with the wire codec and answers as the `receive` input does (200 {"kept": n,
 * "duplicates": d} after keeping each offset once), or with 503, 429 and 400 on demand; and a
 * closed port. Checks that every record arrives once with its offset and value, gzip on and
 * off, large batches split under max_batch_bytes, the answer mapping (RETRY, FATAL with the
 * receiver's message), a retried batch resends only what was not acknowledged, duplicates are
 * counted, the rate limit paces, and the metrics say so. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "forward/wire.h"
#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/http_server.h"
#include "millrace/log.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "millrace/plugin.h"
#include "support/output_open.h"

extern const struct mr_plugin mr_output_forward;

/* ---- the peer: a receiver on its own loop thread ---- */

enum peer_mode { PEER_OK, PEER_503, PEER_429, PEER_400, PEER_HANG };

#define PEER_MAX_OFFSETS 20000

struct peer {
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t wake;
    struct mr_http_server *server;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready;
    bool stopping;
    /* guarded by mu */
    enum peer_mode mode;
    int ok_before_fail;     /* >= 0: answer this many requests OK, then as `mode` */
    uint32_t requests;      /* every request */
    uint32_t gzip_requests; /* requests that came with Content-Encoding: gzip */
    uint32_t decoded;       /* bodies that decoded */
    uint32_t kept;          /* records kept */
    uint32_t duplicates;    /* records already kept */
    int64_t high;           /* highest offset kept (partition 0 of one topic) */
    int64_t offsets[PEER_MAX_OFFSETS];
    uint8_t first_value[64];
    size_t first_value_len;
    char node[256];
    char topic[256];
    char auth[128];
    struct mr_http_request *held; /* PEER_HANG: never answered until the peer stops */
};

static void peer_answer(struct peer *p, struct mr_http_request *req)
{
    size_t len;
    const uint8_t *body = mr_http_request_body(req, &len);
    const char *enc = mr_http_request_header(req, "Content-Encoding");
    const char *auth = mr_http_request_header(req, "Authorization");
    pthread_mutex_lock(&p->mu);
    p->requests++;
    p->gzip_requests += enc != NULL && strcmp(enc, "gzip") == 0;
    snprintf(p->auth, sizeof(p->auth), "%s", auth != NULL ? auth : "");
    enum peer_mode mode = p->mode;
    if (p->ok_before_fail >= 0) {
        mode = p->ok_before_fail > 0 ? PEER_OK : mode;
        p->ok_before_fail -= p->ok_before_fail > 0;
    }
    pthread_mutex_unlock(&p->mu);
    if (mode == PEER_HANG) {
        p->held = req; /* loop thread only */
        return;
    }
    if (mode == PEER_503) {
        mr_http_respond(req, 503, "text/plain", NULL, "journal busy", 12);
        return;
    }
    if (mode == PEER_429) {
        mr_http_respond(req, 429, "text/plain", NULL, "slow down", 9);
        return;
    }
    struct mr_fwd_batch b;
    struct mr_err err = {0};
    if (mode == PEER_400 || mr_fwd_decode(&b, body, len, &err) != 0) {
        char msg[400];
        int n = snprintf(msg, sizeof(msg), "{\"error\":\"%s\"}",
                         mode == PEER_400 ? "node edge-1 is not allowed here" : "bad body");
        mr_http_respond(req, 400, "application/json", NULL, msg, (size_t)n);
        return;
    }
    uint32_t kept = 0, dups = 0;
    int64_t off;
    const uint8_t *v;
    size_t vlen;
    pthread_mutex_lock(&p->mu);
    p->decoded++;
    snprintf(p->node, sizeof(p->node), "%s", b.node);
    snprintf(p->topic, sizeof(p->topic), "%s", b.topic);
    while (mr_fwd_next(&b, &off, &v, &vlen) == 0) {
        if (off <= p->high) {
            dups++;
            continue;
        }
        if (p->kept == 0 && vlen <= sizeof(p->first_value)) {
            memcpy(p->first_value, v, vlen);
            p->first_value_len = vlen;
        }
        if (p->kept < PEER_MAX_OFFSETS) {
            p->offsets[p->kept] = off;
        }
        p->kept++;
        kept++;
        p->high = off;
    }
    p->duplicates += dups;
    pthread_mutex_unlock(&p->mu);
    char answer[64];
    int n = snprintf(answer, sizeof(answer), "{\"kept\":%u,\"duplicates\":%u}", kept, dups);
    mr_http_respond(req, 200, "application/json", NULL, answer, (size_t)n);
}

static void peer_handler(void *arg, struct mr_http_request *req)
{
    peer_answer(arg, req);
}

static void peer_stopped(void *arg)
{
    struct peer *p = arg;
    uv_close((uv_handle_t *)&p->wake, NULL);
}

static void peer_wake(uv_async_t *a)
{
    struct peer *p = a->data;
    if (p->held != NULL) {
        mr_http_respond(p->held, 503, "text/plain", NULL, "stopping", 8);
        p->held = NULL;
    }
    mr_http_server_stop(p->server, peer_stopped, p);
}

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    struct mr_http_server_options o;
    struct mr_err err = {0};
    mr_http_server_options_init(&o);
    o.listen = "127.0.0.1:0";
    o.log_name = "test-receiver";
    assert_int_equal(uv_loop_init(&p->loop), 0);
    assert_int_equal(uv_async_init(&p->loop, &p->wake, peer_wake), 0);
    p->wake.data = p;
    int rc = mr_http_server_start(&p->server, &p->loop, &o, peer_handler, p, &err);
    pthread_mutex_lock(&p->mu);
    p->port = rc == 0 ? mr_http_server_port(p->server) : -1;
    p->ready = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (rc == 0) {
        uv_run(&p->loop, UV_RUN_DEFAULT);
    } else {
        uv_close((uv_handle_t *)&p->wake, NULL);
        uv_run(&p->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&p->loop);
    return NULL;
}

static struct peer *peer_start(void)
{
    struct peer *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->high = -1;
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

struct rig {
    struct mr_names *names;
    struct mr_metrics *metrics;
    struct mr_output_host host;
    unsigned char conf[512];
    void *ctx;
    struct mr_record recs[1000];
    int64_t offsets[1000];
    float samples[2000];
    char log[4096];
    size_t log_used;
};

static void log_sink(enum mr_log_level level, const char *line, void *arg)
{
    struct rig *r = arg;
    (void)level;
    int w = snprintf(r->log + r->log_used, sizeof(r->log) - r->log_used, "%s\n", line);
    if (w > 0 && (size_t)w < sizeof(r->log) - r->log_used) {
        r->log_used += (size_t)w;
    }
}

/* An output configured by `yaml_fmt` (with %d for the port), and 1000 records of every type. */
static struct rig *rig_open(const char *yaml_fmt, int port)
{
    struct rig *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    assert_true(mr_output_forward.conf.size <= sizeof(r->conf));
    assert_int_equal(mr_names_create(&r->names, 1000, 1u << 20), 0);
    assert_int_equal(mr_metrics_create(&r->metrics), 0);
    r->host =
        (struct mr_output_host){.name = "outputs.uplink", .names = r->names, .metrics = r->metrics};
    char yaml[512];
    snprintf(yaml, sizeof(yaml), yaml_fmt, port);
    struct mr_err err = {0};
    if (mr_test_output_open(&mr_output_forward, r->conf, yaml, &r->host, &r->ctx, &err) != 0) {
        fail_msg("%s", err.msg);
    }
    mr_name_id asset, sig[5], unit;
    assert_int_equal(mr_names_intern(r->names, "plant/line1/press", 17, &asset), 0);
    static const char *const signals[] = {"temp", "count", "running", "order", "vib"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(mr_names_intern(r->names, signals[i], strlen(signals[i]), &sig[i]), 0);
    }
    assert_int_equal(mr_names_intern(r->names, "unit", 4, &unit), 0);
    int64_t now = mr_clock_wall_ns();
    for (int i = 0; i < 1000; i++) {
        struct mr_record *rec = &r->recs[i];
        *rec = (struct mr_record){.time_ns = now - 60000000000 + i,
                                  .asset = asset,
                                  .signal = sig[i % 5],
                                  .type = (uint8_t)(i % 5 + 1)};
        switch (rec->type) {
        case MR_VALUE_F64:
            rec->v.f64 = i * 0.5;
            break;
        case MR_VALUE_I64:
            rec->v.i64 = -i;
            break;
        case MR_VALUE_BOOL:
            rec->v.b = i & 1;
            break;
        case MR_VALUE_STRING:
            rec->v.str = (struct mr_bytes){.ptr = "PO-4711", .len = 7};
            break;
        default:
            rec->v.samples = (struct mr_samples){.data = r->samples, .n = 16, .rate_hz = 1e3};
        }
        rec->ntags = 1;
        rec->tags[0] = (struct mr_tag){unit, {.ptr = "degC", .len = 4}};
        r->offsets[i] = 1000 + 2 * i; /* gaps: offsets need not be dense */
    }
    mr_log_set_sink(log_sink, r);
    return r;
}

static void rig_close(struct rig *r)
{
    mr_log_set_sink(NULL, NULL);
    mr_output_forward.output.fini(r->ctx);
    free(r->ctx);
    mr_section_free(&mr_output_forward.conf, r->conf);
    mr_metrics_destroy(r->metrics);
    mr_names_destroy(r->names);
    free(r);
}

static int write_range(struct rig *r, size_t from, size_t n, struct mr_err *err)
{
    struct mr_output_position pos = {
        .topic = "plant.raw", .partition = 0, .offsets = r->offsets + from};
    return mr_output_forward.output.write_at(r->ctx, &pos, r->recs + from, n, err);
}

/* Value of one sample of the exposition, e.g. "millrace_forward_records_total" with labels. */
static double metric(struct rig *r, const char *series)
{
    static char text[65536];
    size_t needed;
    assert_true(mr_metrics_render(r->metrics, text, sizeof(text), &needed) > 0);
    char key[256];
    snprintf(key, sizeof(key), "\n%s ", series);
    const char *p = strstr(text, key);
    if (p == NULL) {
        fail_msg("no series %s in:\n%s", series, text);
    }
    return strtod(p + strlen(key), NULL);
}

#define INST "instance=\"outputs.uplink\""

static const char *const g_conf_gzip = "{url: \"http://127.0.0.1:%d/millrace/forward/v1\", "
                                       "node: edge-1, token: s3cret}";

/* ---- tests ---- */

static void test_delivers_every_record_once_gzip(void **state)
{
    (void)state;
    struct peer *p = peer_start();
    struct rig *r = rig_open(g_conf_gzip, p->port);
    struct mr_err err = {0};
    for (size_t i = 0; i < 1000; i += 250) {
        int rc = write_range(r, i, 250, &err);
        if (rc != MR_SINK_OK) {
            fail_msg("write_at: %d %s", rc, err.msg);
        }
    }
    pthread_mutex_lock(&p->mu);
    assert_int_equal(p->kept, 1000);
    assert_int_equal(p->duplicates, 0);
    assert_int_equal(p->requests, 4);
    assert_int_equal(p->gzip_requests, 4);
    assert_string_equal(p->node, "edge-1");
    assert_string_equal(p->topic, "plant.raw");
    assert_string_equal(p->auth, "Bearer s3cret");
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(p->offsets[i], 1000 + 2 * i);
    }
    /* The first value is the record exactly as the journal encodes it. */
    uint8_t want[64];
    long n = mr_record_encode(&r->recs[0], r->names, want, sizeof(want));
    assert_int_equal(n, (long)p->first_value_len);
    assert_memory_equal(want, p->first_value, (size_t)n);
    pthread_mutex_unlock(&p->mu);
    assert_int_equal(metric(r, "millrace_forward_records_total{" INST "}"), 1000);
    assert_int_equal(metric(r, "millrace_forward_requests_total{" INST ",result=\"ok\"}"), 4);
    double wire = metric(r, "millrace_forward_bytes_total{" INST "}");
    double raw = metric(r, "millrace_forward_uncompressed_bytes_total{" INST "}");
    assert_true(wire > 0 && wire < raw / 2); /* repetitive records compress well */
    double age = metric(r, "millrace_forward_backlog_age_seconds{" INST "}");
    assert_true(age > 59.0 && age < 70.0);
    assert_int_equal(metric(r, "millrace_forward_duplicates_total{" INST "}"), 0);
    rig_close(r);

    /* A restarted edge sends again from an older cursor: the receiver says duplicates. */
    r = rig_open(g_conf_gzip, p->port);
    assert_int_equal(write_range(r, 0, 300, &err), MR_SINK_OK);
    assert_int_equal(metric(r, "millrace_forward_duplicates_total{" INST "}"), 300);
    assert_int_equal(metric(r, "millrace_forward_records_total{" INST "}"), 300);
    pthread_mutex_lock(&p->mu);
    assert_int_equal(p->kept, 1000);
    assert_int_equal(p->duplicates, 300);
    pthread_mutex_unlock(&p->mu);
    rig_close(r);
    peer_stop(p);
}

static void test_identity_and_split(void **state)
{
    (void)state;
    struct peer *p = peer_start();
    struct rig *r = rig_open("{url: \"http://127.0.0.1:%d/f\", node: edge-1, "
                             "content_encoding: identity, max_batch_bytes: 64KiB}",
                             p->port);
    /* Sample records of 8 KB: 100 of them need 13 or more requests of 64 KiB. */
    for (int i = 0; i < 100; i++) {
        r->recs[i].type = MR_VALUE_SAMPLES;
        r->recs[i].v.samples = (struct mr_samples){.data = r->samples, .n = 2000, .rate_hz = 1e4};
    }
    struct mr_err err = {0};
    assert_int_equal(write_range(r, 0, 100, &err), MR_SINK_OK);
    pthread_mutex_lock(&p->mu);
    assert_int_equal(p->kept, 100);
    assert_true(p->requests >= 13);
    assert_int_equal(p->gzip_requests, 0);
    uint32_t requests = p->requests;
    pthread_mutex_unlock(&p->mu);
    assert_int_equal(metric(r, "millrace_forward_bytes_total{" INST "}"),
                     metric(r, "millrace_forward_uncompressed_bytes_total{" INST "}"));
    assert_int_equal(metric(r, "millrace_forward_requests_total{" INST ",result=\"ok\"}"),
                     requests);
    rig_close(r);
    peer_stop(p);
}

/* 503 and 429 and a closed port are transient; a 400 is final and says why. A batch retried
 * after a failure in its middle resends only what was not acknowledged. */
static void test_answers_and_retry(void **state)
{
    (void)state;
    struct peer *p = peer_start();
    struct rig *r = rig_open("{url: \"http://127.0.0.1:%d/f\", node: edge-1, "
                             "max_batch_bytes: 64KiB}",
                             p->port);
    struct mr_err err = {0};
    peer_set(p, PEER_503, -1);
    assert_int_equal(write_range(r, 0, 10, &err), MR_SINK_RETRY);
    assert_non_null(strstr(err.msg, "HTTP 503: journal busy"));
    assert_non_null(strstr(r->log, "cannot deliver to http://127.0.0.1:"));
    peer_set(p, PEER_429, -1);
    assert_int_equal(write_range(r, 0, 10, &err), MR_SINK_RETRY);
    assert_non_null(strstr(err.msg, "429"));
    peer_set(p, PEER_400, -1);
    assert_int_equal(write_range(r, 0, 10, &err), MR_SINK_FATAL);
    assert_non_null(strstr(err.msg, "HTTP 400"));
    assert_non_null(strstr(err.msg, "node edge-1 is not allowed here"));
    assert_int_equal(metric(r, "millrace_forward_requests_total{" INST ",result=\"retry\"}"), 2);
    assert_int_equal(metric(r, "millrace_forward_requests_total{" INST ",result=\"fatal\"}"), 1);

    /* Large records, so the batch takes several requests; the third one fails. */
    for (int i = 0; i < 100; i++) {
        r->recs[i].type = MR_VALUE_SAMPLES;
        r->recs[i].v.samples = (struct mr_samples){.data = r->samples, .n = 2000, .rate_hz = 1e4};
    }
    peer_set(p, PEER_503, 2);
    assert_int_equal(write_range(r, 0, 100, &err), MR_SINK_RETRY);
    pthread_mutex_lock(&p->mu);
    uint32_t kept = p->kept;
    pthread_mutex_unlock(&p->mu);
    assert_true(kept > 0 && kept < 100);
    peer_set(p, PEER_OK, -1);
    assert_int_equal(write_range(r, 0, 100, &err), MR_SINK_OK); /* the host's retry */
    assert_non_null(strstr(r->log, "catching up"));
    pthread_mutex_lock(&p->mu);
    assert_int_equal(p->kept, 100);
    assert_int_equal(p->duplicates, 0); /* the acknowledged part was not sent again */
    pthread_mutex_unlock(&p->mu);
    rig_close(r);
    peer_stop(p);
}

static void test_closed_port_and_write(void **state)
{
    (void)state;
    /* A port that was just free: bind a server, note its port, stop it. */
    struct peer *p = peer_start();
    int port = p->port;
    peer_stop(p);
    struct rig *r = rig_open("{url: \"http://127.0.0.1:%d/f\", node: edge-1, timeout: 2s}", port);
    struct mr_err err = {0};
    assert_int_equal(write_range(r, 0, 5, &err), MR_SINK_RETRY);
    assert_non_null(strstr(err.msg, "http://127.0.0.1:"));
    assert_int_equal(write_range(r, 0, 5, &err), MR_SINK_RETRY);
    /* One outage, logged once. */
    const char *first = strstr(r->log, "cannot deliver");
    assert_non_null(first);
    assert_null(strstr(first + 1, "cannot deliver"));
    assert_int_equal(mr_output_forward.output.write(r->ctx, r->recs, 5, &err), MR_SINK_FATAL);
    assert_non_null(strstr(err.msg, "journal position"));
    rig_close(r);
}

/* A receiver that takes the request and never answers: after `timeout` without progress the
 * request is abandoned and retried. */
static void test_stalled_receiver_times_out(void **state)
{
    (void)state;
    struct peer *p = peer_start();
    struct rig *r =
        rig_open("{url: \"http://127.0.0.1:%d/f\", node: edge-1, timeout: 1s}", p->port);
    struct mr_err err = {0};
    peer_set(p, PEER_HANG, -1);
    int64_t t0 = mr_clock_mono_ns();
    assert_int_equal(write_range(r, 0, 10, &err), MR_SINK_RETRY);
    int64_t ms = (mr_clock_mono_ns() - t0) / 1000000;
    assert_true(ms >= 900 && ms < 4000);
    assert_int_equal(err.code, MR_ETIMEDOUT);
    assert_non_null(strstr(err.msg, "no progress for 1000 ms"));
    rig_close(r);
    peer_stop(p);
}

static void test_rate_limit_paces(void **state)
{
    (void)state;
    struct peer *p = peer_start();
    struct rig *r =
        rig_open("{url: \"http://127.0.0.1:%d/f\", node: edge-1, rate_limit: 1000}", p->port);
    struct mr_err err = {0};
    int64_t t0 = mr_clock_mono_ns();
    for (size_t i = 0; i < 400; i += 100) {
        assert_int_equal(write_range(r, i, 100, &err), MR_SINK_OK);
    }
    int64_t ms = (mr_clock_mono_ns() - t0) / 1000000;
    /* 400 records at 1000/s with 100 tokens of burst: at least 300 ms. */
    assert_true(ms >= 250);
    assert_true(ms < 3000);
    rig_close(r);

    /* A low limit makes requests of one second's worth: 150 records at 100/s go as 100 + 50,
     * and take (100 - 10 + 50) / 100 s. */
    r = rig_open("{url: \"http://127.0.0.1:%d/f\", node: edge-1, rate_limit: 100}", p->port);
    pthread_mutex_lock(&p->mu);
    uint32_t before = p->requests;
    pthread_mutex_unlock(&p->mu);
    t0 = mr_clock_mono_ns();
    assert_int_equal(write_range(r, 400, 150, &err), MR_SINK_OK);
    ms = (mr_clock_mono_ns() - t0) / 1000000;
    assert_true(ms >= 1200 && ms < 4000);
    pthread_mutex_lock(&p->mu);
    assert_int_equal(p->requests - before, 2);
    pthread_mutex_unlock(&p->mu);
    rig_close(r);

    r = rig_open("{url: \"http://127.0.0.1:%d/f\", node: edge-1}", p->port);
    t0 = mr_clock_mono_ns();
    assert_int_equal(write_range(r, 550, 400, &err), MR_SINK_OK);
    ms = (mr_clock_mono_ns() - t0) / 1000000;
    assert_true(ms < 250); /* no limit: no pacing */
    pthread_mutex_lock(&p->mu);
    assert_int_equal(p->kept, 950);
    pthread_mutex_unlock(&p->mu);
    rig_close(r);
    peer_stop(p);
}

static void test_config_errors(void **state)
{
    (void)state;
    struct mr_err err = {0};
    assert_int_equal(mr_section_validate(&mr_output_forward.conf, "outputs.f", &err), 0);
    static const struct {
        const char *yaml;
        const char *says;
    } cases[] = {
        {"{node: a}", "url"},
        {"{url: \"ftp://x/\"}", "must start with http:// or https://"},
        {"{url: \"http://x/\", node: \"site 1\"}", "must be 1..255 of"},
        {"{url: \"http://x/\", tls_cert: c.pem}", "tls_cert and tls_key go together"},
        {"{url: \"http://x/\", content_encoding: br}", "content_encoding"},
        {"{url: \"http://x/\", max_batch_bytes: 1KiB}", "max_batch_bytes"},
        {"{url: \"http://x/\", rate_limit: -1}", "rate_limit"},
        {"{url: \"http://x/\", timeout: 10}", "timeout"},
    };
    struct mr_config_errors *errs = calloc(1, sizeof(*errs));
    unsigned char conf[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(errs, 0, sizeof(*errs));
        int rc = mr_section_load_buffer(&mr_output_forward.conf, conf, "t.yaml", cases[i].yaml,
                                        strlen(cases[i].yaml), NULL, errs);
        if (rc == 0 || strstr(errs->msg[0], cases[i].says) == NULL) {
            fail_msg("case %zu: rc %d, \"%s\", expected \"%s\"", i, rc, errs->msg[0],
                     cases[i].says);
        }
    }
    free(errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_delivers_every_record_once_gzip),
        cmocka_unit_test(test_identity_and_split),
        cmocka_unit_test(test_answers_and_retry),
        cmocka_unit_test(test_closed_port_and_write),
        cmocka_unit_test(test_stalled_receiver_times_out),
        cmocka_unit_test(test_rate_limit_paces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
