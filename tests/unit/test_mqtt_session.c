/* The mqtt input's session against a scripted broker (a thread speaking raw MQTT 3.1.1 over a
 * blocking socket, packets built and checked with mqtt_wire): acknowledgements wait for the
 * host's `durable`, QoS 2 (PUBREC, PUBREL, PUBCOMP) and its duplicate suppression, a message
 * larger than the buffer skipped exactly and still acknowledged, a QoS 1 redelivery after a
 * lost connection recognised and not kept twice, keepalive and CONNECT fields. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "inputs/mqtt_internal.h"
#include "inputs/mqtt_wire.h"
#include "millrace/metrics.h"
#include "millrace/plugin.h"

extern const struct mr_plugin mr_input_mqtt;

#define BIG (200 * 1024) /* larger than the client's 128 KiB buffer with max_payload 64KiB */

struct sess {
    int lfd, port;
    pthread_t th;
    atomic_uint_least64_t durable_limit; /* what the host reports as committed, at most */
    atomic_int done;                     /* 1: script passed, -1: failed */
    char fail[256];
    /* loop side */
    uv_loop_t loop;
    uv_timer_t tick;
    struct mr_input_host host;
    void *ctx;
    uint64_t emits;
    long values[64];
    size_t nvalues;
    bool stopping;
    int stopped;
};

/* ---- the scripted broker ---- */

static bool read_full(int fd, uint8_t *buf, size_t len)
{
    size_t k = 0;
    while (k < len) {
        ssize_t n = read(fd, buf + k, len - k);
        if (n <= 0) {
            return false;
        }
        k += (size_t)n;
    }
    return true;
}

/* Read one packet (fails after the socket's 3 s timeout). */
static bool read_packet(int fd, uint8_t *buf, size_t cap, struct mqtt_packet *p)
{
    size_t have = 0, rem = 0;
    uint8_t type, flags;
    struct mr_err err;
    int h = 0;
    while (h == 0) {
        if (have == 5 || !read_full(fd, buf + have, 1)) {
            return false;
        }
        have++;
        h = mqtt_wire_header(buf, have, &type, &flags, &rem, &err);
    }
    if (h < 0 || (size_t)h + rem > cap || !read_full(fd, buf + h, rem)) {
        return false;
    }
    return mqtt_wire_decode(buf, (size_t)h + rem, p, &err) == 0;
}

static bool write_all(int fd, const void *buf, size_t len)
{
    return write(fd, buf, len) == (ssize_t)len;
}

static bool send_publish(int fd, const char *topic, const char *payload, uint8_t qos, uint16_t id,
                         bool dup)
{
    uint8_t buf[256];
    long n = mqtt_wire_publish(buf, sizeof(buf), topic, payload, strlen(payload), qos, id, false);
    buf[0] |= dup ? 8 : 0;
    return n > 0 && write_all(fd, buf, (size_t)n);
}

/* Accept the input's connection, check CONNECT, answer CONNACK and SUBACK. */
static int session_open(struct sess *s, bool present)
{
    uint8_t buf[512];
    struct mqtt_packet p;
    int fd = accept(s->lfd, NULL, NULL);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (fd < 0 || !read_packet(fd, buf, sizeof(buf), &p) || p.type != MQTT_PKT_CONNECT ||
        p.keepalive_s != 5 || p.client_id.len != 6 || memcmp(p.client_id.ptr, "edge-1", 6) != 0 ||
        (p.connect_flags & 0x02) != 0) {
        snprintf(s->fail, sizeof(s->fail), "bad CONNECT (persistent session, id edge-1, 5 s)");
        return -1;
    }
    const uint8_t connack[] = {0x20, 2, present ? 1 : 0, 0};
    if (!write_all(fd, connack, 4) || !read_packet(fd, buf, sizeof(buf), &p) ||
        p.type != MQTT_PKT_SUBSCRIBE || p.filter_qos != 2) {
        snprintf(s->fail, sizeof(s->fail), "no SUBSCRIBE with QoS 2");
        return -1;
    }
    const uint8_t suback[] = {0x90, 3, (uint8_t)(p.id >> 8), (uint8_t)p.id, 2};
    write_all(fd, suback, sizeof(suback));
    return fd;
}

/* Expect exactly these acknowledgements (type, id), in this order. */
static bool expect(struct sess *s, int fd, const uint8_t *types, const uint16_t *ids, size_t n)
{
    uint8_t buf[64];
    struct mqtt_packet p;
    for (size_t i = 0; i < n; i++) {
        if (!read_packet(fd, buf, sizeof(buf), &p) || p.type != types[i] || p.id != ids[i]) {
            snprintf(s->fail, sizeof(s->fail), "ack %zu: wanted %s %u, got %s %u", i,
                     mqtt_wire_name(types[i]), ids[i], mqtt_wire_name(p.type), p.id);
            return false;
        }
    }
    return true;
}

/* Nothing may arrive for 150 ms (acknowledgements held back while nothing is durable). */
static bool silent(struct sess *s, int fd)
{
    struct timeval tv = {.tv_usec = 150000};
    uint8_t b;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    bool quiet = read(fd, &b, 1) < 0;
    tv = (struct timeval){.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (!quiet) {
        snprintf(s->fail, sizeof(s->fail), "acknowledged before the journal committed");
    }
    return quiet;
}

static int script(struct sess *s)
{
    static uint8_t big[BIG + 64];
    int fd = session_open(s, false);
    if (fd < 0) {
        return -1;
    }
    /* 1: QoS 1 id 1, QoS 2 id 2, its duplicate, QoS 0: nothing acknowledged until durable */
    if (!send_publish(fd, "m/a/v", "1", 1, 1, false) ||
        !send_publish(fd, "m/a/v", "2", 2, 2, false) ||
        !send_publish(fd, "m/a/v", "2", 2, 2, true) ||
        !send_publish(fd, "m/a/v", "3", 0, 0, false) || !silent(s, fd)) {
        return -1;
    }
    atomic_store(&s->durable_limit, UINT64_MAX);
    const uint8_t t1[] = {MQTT_PKT_PUBACK, MQTT_PKT_PUBREC, MQTT_PKT_PUBREC};
    const uint16_t i1[] = {1, 2, 2};
    if (!expect(s, fd, t1, i1, 3)) {
        return -1;
    }
    /* 2: release -> complete; a duplicate after PUBREL is a new message */
    uint8_t pkt[8];
    long n = mqtt_wire_ack(pkt, sizeof(pkt), MQTT_PKT_PUBREL, 2);
    const uint8_t t2[] = {MQTT_PKT_PUBCOMP};
    const uint16_t i2[] = {2};
    if (!write_all(fd, pkt, (size_t)n) || !expect(s, fd, t2, i2, 1)) {
        return -1;
    }
    /* 3: a QoS 1 message larger than the buffer: skipped exactly, still acknowledged */
    memset(big, '9', sizeof(big));
    big[BIG] = '\0';
    uint8_t *hdr = calloc(1, BIG + 64);
    n = hdr != NULL ? mqtt_wire_publish(hdr, BIG + 64, "m/a/v", big, BIG, 1, 3, false) : -1;
    bool ok = n > 0 && write_all(fd, hdr, (size_t)n);
    free(hdr);
    const uint16_t i3[] = {3, 4};
    const uint8_t t3[] = {MQTT_PKT_PUBACK, MQTT_PKT_PUBACK};
    if (!ok || !send_publish(fd, "m/a/v", "4", 1, 4, false) || !expect(s, fd, t3, i3, 2)) {
        return -1;
    }
    /* 4: id 5 received, not yet durable, then the connection drops */
    atomic_store(&s->durable_limit, 0);
    if (!send_publish(fd, "m/a/v", "5", 1, 5, false) || !silent(s, fd)) {
        return -1;
    }
    close(fd);
    /* 5: the broker resends id 5 with DUP on the resumed session: acknowledged, kept once */
    fd = session_open(s, true);
    if (fd < 0 || !send_publish(fd, "m/a/v", "5", 1, 5, true) ||
        !send_publish(fd, "m/a/v", "6", 1, 6, false)) {
        return -1;
    }
    atomic_store(&s->durable_limit, UINT64_MAX);
    const uint8_t t5[] = {MQTT_PKT_PUBACK, MQTT_PKT_PUBACK};
    const uint16_t i5[] = {5, 6};
    if (!expect(s, fd, t5, i5, 2)) {
        return -1;
    }
    /* 6: keepalive 5 s: a PINGREQ within 2.5 s + 1 s of silence */
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const uint8_t t6[] = {MQTT_PKT_PINGREQ};
    const uint16_t i6[] = {0};
    ok = expect(s, fd, t6, i6, 1);
    close(fd);
    return ok ? 1 : -1;
}

static void *broker_main(void *arg)
{
    struct sess *s = arg;
    atomic_store(&s->done, script(s));
    return NULL;
}

/* ---- the input's host ---- */

static int s_emit(struct mr_input_host *host, const struct mr_record *recs, size_t n)
{
    struct sess *s = host->arg;
    for (size_t i = 0; i < n && s->nvalues < 64; i++) {
        s->values[s->nvalues++] = recs[i].v.i64;
    }
    s->emits++;
    return 0;
}

static uint64_t s_durable(struct mr_input_host *host)
{
    struct sess *s = host->arg;
    uint64_t lim = atomic_load(&s->durable_limit);
    return lim < s->emits ? lim : s->emits;
}

static void s_ended(struct mr_input_host *host, int status)
{
    (void)host;
    fail_msg("ended %d", status);
}

static void s_stopped(struct mr_input_host *host)
{
    ((struct sess *)host->arg)->stopped++;
}

static void s_tick(uv_timer_t *t)
{
    struct sess *s = t->data;
    if (atomic_load(&s->done) != 0 && !s->stopping) {
        s->stopping = true;
        mr_input_mqtt.input.stop(s->ctx);
        uv_close((uv_handle_t *)t, NULL);
    }
}

static void test_session(void **state)
{
    (void)state;
    struct sess *s = calloc(1, sizeof(*s));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "servers: ['tcp://127.0.0.1:%d']\ntopic_template: 'm/{machine}/{signal}'\n"
             "data_format: value\ndata_type: integer\nqos: 2\nclient_id: edge-1\n"
             "persistent_session: true\nkeepalive: 5s\nmax_payload: 64KiB\n"
             "reconnect_min: 20ms\nreconnect_max: 40ms\n",
             s->port);
    struct mqtt_conf conf;
    struct mr_config_errors errs = {0};
    struct mr_names *names;
    struct mr_metrics *metrics;
    struct mr_err err;
    assert_int_equal(mr_section_load_buffer(&mr_input_mqtt.conf, &conf, "t.yaml", yaml,
                                            strlen(yaml), NULL, &errs),
                     0);
    assert_int_equal(mr_names_create(&names, 100, 4096), 0);
    assert_int_equal(mr_metrics_create(&metrics), 0);
    assert_int_equal(uv_loop_init(&s->loop), 0);
    s->host = (struct mr_input_host){.name = "inputs.sess",
                                     .names = names,
                                     .metrics = metrics,
                                     .loop = &s->loop,
                                     .emit = s_emit,
                                     .ended = s_ended,
                                     .stopped = s_stopped,
                                     .durable = s_durable,
                                     .arg = s};
    s->ctx = calloc(1, mr_input_mqtt.ctx_size);
    assert_int_equal(pthread_create(&s->th, NULL, broker_main, s), 0);
    assert_int_equal(mr_input_mqtt.input.init(s->ctx, &conf, &s->host, &err), 0);
    assert_int_equal(mr_input_mqtt.input.start(s->ctx, &err), 0);
    uv_timer_init(&s->loop, &s->tick);
    s->tick.data = s;
    uv_timer_start(&s->tick, s_tick, 20, 20);
    assert_int_equal(uv_run(&s->loop, UV_RUN_DEFAULT), 0);
    pthread_join(s->th, NULL);
    mr_input_mqtt.input.fini(s->ctx);
    free(s->ctx);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    close(s->lfd);
    if (atomic_load(&s->done) != 1) {
        fail_msg("broker script: %s", s->fail);
    }
    assert_int_equal(s->stopped, 1);
    /* 1, 2 (its duplicate dropped), 3, 4 (the big one skipped), 5 once, 6 */
    static const long want[] = {1, 2, 3, 4, 5, 6};
    assert_int_equal(s->nvalues, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(s->values[i], want[i]);
    }
    mr_metrics_destroy(metrics);
    mr_names_destroy(names);
    mr_section_free(&mr_input_mqtt.conf, &conf);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_session)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
