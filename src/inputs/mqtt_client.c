/* The MQTT input's MQTT 3.1.1 client: see mqtt_client.h.
 *
 * Read path: a uv_tcp stream (TCP_NODELAY) reads into one buffer `in` (at least 64 KiB, room for
 * the largest accepted message); every complete packet in it is parsed in place and each
 * PUBLISH payload handed to hooks->message, then hooks->flush emits the read's batch at once.
 * With TLS the stream carries ciphertext: it goes into a memory BIO and SSL_read fills `in`.
 *
 * Acknowledgement (the reason this client exists): a QoS 1 or 2 message is entered in a FIFO
 * with the emit count that will carry it (its `seq`, known after the read's flush). PUBACK /
 * PUBREC go out only when hooks->durable() >= seq, checked after every read and on a 1 ms
 * one-shot timer that runs only while acknowledgements wait. PUBREL is answered with PUBCOMP
 * at once (PUBREC already promised the message is safe).
 *
 * Duplicates: `held` has one bit per packet id received and not yet completed (QoS 1: until its
 * PUBACK is sent; QoS 2: until PUBREL). A QoS 2 PUBLISH, or a QoS 1 PUBLISH with DUP set, whose
 * id is held is a redelivery of a message already handed on: it is acknowledged, not kept
 * again. `held` lives as long as the process and survives reconnects (cleared when the broker
 * reports no session), so a lost connection produces no duplicates; a restart of millrace
 * (kill -9 included) forgets it, and the broker's redelivery of what was handed on but not yet
 * acknowledged is kept again: at least once across restarts.
 *
 * Flow control: with more than UNACKED_MAX messages waiting for the journal, reading pauses
 * (the broker and the socket buffer hold the rest) until acknowledgements catch up.
 *
 * Batching at high rates: a read that carried little (< LINGER_BYTES) and came less than
 * LINGER_NS after the previous one pauses reading for LINGER_NS (a one-shot timerfd), so the
 * next read and emit carry what arrived meanwhile instead of one message per wake-up. This
 * trades at most 0.25 ms of latency, only at high rates, for about a third of the CPU per
 * message (bench/RESULTS.md); at low rates every read is handled at once.
 *
 * Keepalive: PINGREQ after keepalive/2 without sending; the connection is dead (closed and
 * reopened) after 1.5 x keepalive without receiving anything, or 10 s without a CONNACK.
 */
#include "inputs/mqtt_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "inputs/mqtt_wire.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"

#define READ_MIN     (64u * 1024u)
#define TOPIC_MAX    65535u
#define OUT_CAP      (256u * 1024u)
#define ACK_RING     65536u
#define UNACKED_MAX  16384u /* received, not yet acknowledged: beyond this reading pauses */
#define UNASSIGNED   UINT64_MAX
#define MISC_MS      1000
#define ACK_POLL_MS  1
#define RESUME_MS    10
#define CONNECT_NS   (10 * 1000000000LL)
#define SUBSCRIBE_ID 1
#define DEFAULT_URL  "tcp://127.0.0.1:1883"
#define HOST_MAX     256
#define LINGER_NS    250000 /* 0.25 ms */
#define LINGER_BYTES 16384

enum state { ST_IDLE, ST_RESOLVING, ST_CONNECTING, ST_TLS, ST_CONNACK, ST_UP };

struct server {
    char host[HOST_MAX];
    char port[8];
    bool tls;
};

struct ack {
    uint64_t seq;
    uint16_t id;
    uint8_t type; /* MQTT_PKT_PUBACK or MQTT_PKT_PUBREC */
};

struct mqtt_client {
    uv_loop_t *loop;
    const char *name;
    const struct mqtt_conf *conf;
    const char *const *filters;
    size_t nfilters;
    struct mqtt_client_hooks hooks;
    struct mr_log_ratelimit rl;
    struct server *servers;
    size_t nservers, server;
    int state;
    bool stopping, paused, writing, tcp_open, ping_out, was_up;
    int pending; /* open handles and active requests; stopped when it reaches 0 */
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai;
    uv_write_t write_req;
    uv_timer_t misc, ack_timer, reconnect, resume;
    uv_poll_t linger; /* on linger_fd: a sub-millisecond pause between small reads */
    int linger_fd;
    bool lingering;
    int64_t backoff_ms, started_ns, last_rx_ns, last_tx_ns, ping_ns, prev_read_ns;
    /* read side */
    uint8_t *in;
    size_t in_used, in_cap, skip;
    uint8_t *net; /* TLS: ciphertext as read */
    char *topic;  /* the PUBLISH topic, NUL-terminated */
    /* write side: packets collect in `out`; `wire` is what the write in flight sends */
    uint8_t *out, *wire;
    size_t out_used;
    /* session */
    struct ack *acks;
    size_t ack_head, ack_n;
    uint8_t held[65536 / 8];
    /* TLS */
    SSL_CTX *ssl_ctx;
    SSL *ssl;
};

static void conn_drop(struct mqtt_client *c, const char *why);
static void reconnect_cb(uv_timer_t *t);
static void out_flush(struct mqtt_client *c);
static void process(struct mqtt_client *c);

static bool held_test(const struct mqtt_client *c, uint16_t id)
{
    return (c->held[id >> 3] >> (id & 7)) & 1;
}

static void held_set(struct mqtt_client *c, uint16_t id, bool on)
{
    if (on) {
        c->held[id >> 3] |= (uint8_t)(1u << (id & 7));
    } else {
        c->held[id >> 3] &= (uint8_t) ~(1u << (id & 7));
    }
}

static const struct server *cur(const struct mqtt_client *c)
{
    return &c->servers[c->server % c->nservers];
}

/* ---- handles ---- */

static void maybe_stopped(struct mqtt_client *c)
{
    if (c->stopping && c->pending == 0 && c->hooks.stopped != NULL) {
        void (*stopped)(void *) = c->hooks.stopped;
        c->hooks.stopped = NULL;
        stopped(c->hooks.ctx);
    }
}

static void close_cb(uv_handle_t *h)
{
    struct mqtt_client *c = h->data;
    if (h == (uv_handle_t *)&c->tcp) {
        c->state = ST_IDLE;
    }
    c->pending--;
    maybe_stopped(c);
}

static void schedule_reconnect(struct mqtt_client *c)
{
    int64_t min_ms = c->conf->reconnect_min_ns / 1000000;
    int64_t max_ms = c->conf->reconnect_max_ns / 1000000;
    c->backoff_ms = c->backoff_ms == 0 ? min_ms : c->backoff_ms * 2;
    if (c->backoff_ms > max_ms) {
        c->backoff_ms = max_ms;
    }
    c->server++;
    uv_timer_start(&c->reconnect, reconnect_cb, (uint64_t)c->backoff_ms, 0);
}

/* The connection is gone or refused: close it, forget what only it knew, try again later. */
static void conn_drop(struct mqtt_client *c, const char *why)
{
    if (c->was_up && !c->stopping) {
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->name, "lost the connection to %s:%s (%s); reconnecting",
                  cur(c)->host, cur(c)->port, why);
    } else if (!c->stopping && why != NULL) {
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->name, "cannot connect to %s:%s: %s", cur(c)->host,
                  cur(c)->port, why);
    }
    c->was_up = false;
    if (c->tcp_open) {
        c->tcp_open = false;
        uv_close((uv_handle_t *)&c->tcp, close_cb);
    } else if (c->state != ST_RESOLVING) {
        c->state = ST_IDLE;
    }
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    c->in_used = c->skip = c->out_used = 0;
    c->ack_n = 0;
    c->ping_out = false;
    uv_timer_stop(&c->ack_timer);
    if (c->lingering) {
        uv_poll_stop(&c->linger);
        c->lingering = false;
    }
    if (!c->stopping) {
        schedule_reconnect(c);
    }
}

/* ---- writing ---- */

static void write_cb(uv_write_t *req, int status)
{
    struct mqtt_client *c = req->data;
    c->writing = false;
    if (status == UV_ECANCELED || !c->tcp_open) {
        return;
    }
    if (status < 0) {
        conn_drop(c, uv_strerror(status));
        return;
    }
    out_flush(c);
}

static void out_flush(struct mqtt_client *c)
{
    if (c->writing || !c->tcp_open || c->state < ST_TLS) {
        return;
    }
    size_t len = 0;
    if (c->ssl != NULL) {
        if (c->out_used > 0) {
            if (SSL_write(c->ssl, c->out, (int)c->out_used) <= 0) {
                conn_drop(c, "TLS write failed");
                return;
            }
            c->out_used = 0;
        }
        int n = BIO_read(SSL_get_wbio(c->ssl), c->wire, (int)OUT_CAP);
        len = n > 0 ? (size_t)n : 0;
    } else if (c->out_used > 0) {
        uint8_t *t = c->wire;
        c->wire = c->out;
        c->out = t;
        len = c->out_used;
        c->out_used = 0;
    }
    if (len == 0) {
        return;
    }
    uv_buf_t b = uv_buf_init((char *)c->wire, (unsigned)len);
    c->write_req.data = c;
    int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
    if (rc != 0) {
        conn_drop(c, uv_strerror(rc));
        return;
    }
    c->writing = true;
    c->last_tx_ns = mr_clock_mono_ns();
}

/* Append an encoded packet to `out`; false when it does not fit now. */
static bool out_ack(struct mqtt_client *c, uint8_t type, uint16_t id)
{
    long n = mqtt_wire_ack(c->out + c->out_used, OUT_CAP - c->out_used, type, id);
    if (n < 0) {
        return false;
    }
    c->out_used += (size_t)n;
    return true;
}

/* ---- acknowledgements ---- */

static void ack_timer_cb(uv_timer_t *t);

static int ack_push(struct mqtt_client *c, uint16_t id, uint8_t type)
{
    if (c->ack_n == ACK_RING) {
        return MR_ETOOBIG;
    }
    struct ack *a = &c->acks[(c->ack_head + c->ack_n++) % ACK_RING];
    *a = (struct ack){.seq = UNASSIGNED, .id = id, .type = type};
    return 0;
}

/* The batch holding every message entered since the last flush was emitted as call `seq`. */
static void ack_assign(struct mqtt_client *c, uint64_t seq)
{
    for (size_t i = c->ack_n; i > 0; i--) {
        struct ack *a = &c->acks[(c->ack_head + i - 1) % ACK_RING];
        if (a->seq != UNASSIGNED) {
            break;
        }
        a->seq = seq;
    }
}

/* Send what the journal has committed; keep polling on a short timer while more waits. */
static void ack_check(struct mqtt_client *c)
{
    if (c->ack_n == 0 || c->state != ST_UP) {
        return;
    }
    uint64_t durable = c->hooks.durable(c->hooks.ctx);
    while (c->ack_n > 0) {
        struct ack *a = &c->acks[c->ack_head];
        if (a->seq == UNASSIGNED || a->seq > durable || !out_ack(c, a->type, a->id)) {
            break;
        }
        if (a->type == MQTT_PKT_PUBACK) {
            held_set(c, a->id, false);
        }
        c->ack_head = (c->ack_head + 1) % ACK_RING;
        c->ack_n--;
    }
    out_flush(c);
    if (c->ack_n > 0 && !c->stopping && !uv_is_active((uv_handle_t *)&c->ack_timer)) {
        uv_timer_start(&c->ack_timer, ack_timer_cb, ACK_POLL_MS, 0);
    }
}

static void ack_timer_cb(uv_timer_t *t)
{
    ack_check(t->data);
}

/* Hand the batch on. A failed emit loses the batch: its messages are not acknowledged and the
 * connection is dropped, so the broker (persistent session) delivers them again. */
static int batch_flush(struct mqtt_client *c)
{
    int rc = c->hooks.flush(c->hooks.ctx);
    if (rc == 0) {
        ack_assign(c, c->hooks.emitted(c->hooks.ctx));
    } else if (rc != MR_EAGAIN) {
        for (size_t i = c->ack_n; i > 0; i--) {
            struct ack *a = &c->acks[(c->ack_head + i - 1) % ACK_RING];
            if (a->seq != UNASSIGNED) {
                break;
            }
            held_set(c, a->id, false);
        }
        conn_drop(c, "the host refused the batch");
    }
    return rc;
}

/* ---- packets ---- */

static int on_publish(struct mqtt_client *c, const struct mqtt_packet *p)
{
    uint8_t ack = p->qos == 2 ? MQTT_PKT_PUBREC : MQTT_PKT_PUBACK;
    if (p->qos > 0 && c->ack_n >= UNACKED_MAX) {
        return MR_EAGAIN; /* flow control: read on once the journal has caught up */
    }
    if (p->qos > 0 && held_test(c, p->id) && (p->qos == 2 || p->dup)) {
        return ack_push(c, p->id, ack); /* a redelivery of a message already handed on */
    }
    memcpy(c->topic, p->topic.ptr, p->topic.len);
    c->topic[p->topic.len] = '\0';
    int rc = c->hooks.message(c->hooks.ctx, c->topic, p->payload, p->payload_len);
    if (rc == MR_EAGAIN) {
        rc = batch_flush(c);
        if (rc == 0) {
            rc = c->hooks.message(c->hooks.ctx, c->topic, p->payload, p->payload_len);
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (p->qos > 0) {
        held_set(c, p->id, true);
        return ack_push(c, p->id, ack);
    }
    return 0;
}

static void on_connack(struct mqtt_client *c, const struct mqtt_packet *p)
{
    if (p->return_code != 0) {
        MR_LOG_RL(&c->rl, MR_LOG_ERROR, c->name, "%s:%s refused the connection: %s", cur(c)->host,
                  cur(c)->port, mqtt_wire_connack_reason(p->return_code));
        conn_drop(c, NULL);
        return;
    }
    if (!p->session_present) {
        memset(c->held, 0, sizeof(c->held)); /* the broker redelivers nothing */
    }
    c->state = ST_UP;
    c->was_up = true;
    c->backoff_ms = 0;
    MR_LOG_INFO(c->name, "connected to %s:%s%s", cur(c)->host, cur(c)->port,
                p->session_present ? " (session resumed)" : "");
    long n = mqtt_wire_subscribe(c->out + c->out_used, OUT_CAP - c->out_used, SUBSCRIBE_ID,
                                 c->filters, c->nfilters, (uint8_t)c->conf->qos);
    if (n < 0) {
        MR_LOG_RL(&c->rl, MR_LOG_ERROR, c->name, "topic filters too long for one SUBSCRIBE");
        return;
    }
    c->out_used += (size_t)n;
    out_flush(c);
}

static void on_suback(struct mqtt_client *c, const struct mqtt_packet *p)
{
    for (size_t i = 0; i < p->ngranted && i < c->nfilters; i++) {
        if (p->granted[i] == 0x80) {
            MR_LOG_RL(&c->rl, MR_LOG_ERROR, c->name,
                      "%s:%s refused the subscription to %s (not authorized or bad filter)",
                      cur(c)->host, cur(c)->port, c->filters[i]);
        } else if (p->granted[i] < c->conf->qos) {
            MR_LOG_RL(&c->rl, MR_LOG_WARN, c->name, "%s:%s granted QoS %u for %s (asked %d)",
                      cur(c)->host, cur(c)->port, p->granted[i], c->filters[i], (int)c->conf->qos);
        }
    }
    if (p->ngranted != c->nfilters) {
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->name, "SUBACK answers %zu of %zu topic filters",
                  p->ngranted, c->nfilters);
    }
}

/* One complete packet. Returns 0, MR_EAGAIN (host pushed back: keep it, pause) or another
 * negative code (the connection was dropped). */
static int on_packet(struct mqtt_client *c, const struct mqtt_packet *p)
{
    if (c->state == ST_CONNACK && p->type != MQTT_PKT_CONNACK) {
        conn_drop(c, "the broker sent something else before CONNACK");
        return MR_EPARSE;
    }
    switch (p->type) {
    case MQTT_PKT_CONNACK:
        on_connack(c, p);
        return c->state == ST_UP ? 0 : MR_ECLOSED;
    case MQTT_PKT_PUBLISH: {
        int rc = on_publish(c, p);
        if (rc == MR_ETOOBIG) {
            conn_drop(c, "more than 65536 messages waiting for acknowledgement");
        }
        return rc;
    }
    case MQTT_PKT_PUBREL:
        held_set(c, p->id, false);
        if (!out_ack(c, MQTT_PKT_PUBCOMP, p->id)) {
            return MR_EAGAIN; /* `out` full: answer after the write in flight */
        }
        return 0;
    case MQTT_PKT_SUBACK:
        on_suback(c, p);
        return 0;
    case MQTT_PKT_PINGRESP:
        c->ping_out = false;
        return 0;
    default:
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->name, "%s:%s sent an unexpected %s; ignored",
                  cur(c)->host, cur(c)->port, mqtt_wire_name(p->type));
        return 0;
    }
}

/* A PUBLISH larger than the buffer: acknowledge it, skip its bytes. Returns 0 with *total set,
 * 1 when more bytes are needed, or a negative code (connection dropped). */
static int oversize(struct mqtt_client *c, uint8_t type, uint8_t flags, size_t hlen, size_t rem,
                    size_t avail)
{
    struct mqtt_packet p;
    struct mr_err err;
    if (type != MQTT_PKT_PUBLISH) {
        conn_drop(c, "oversized packet");
        return MR_EPARSE;
    }
    int rc = mqtt_wire_publish_head(flags, c->in + hlen, avail - hlen, rem, &p, &err);
    if (rc == 1) {
        return 1;
    }
    if (rc != 0) {
        conn_drop(c, err.msg);
        return rc;
    }
    memcpy(c->topic, p.topic.ptr, p.topic.len);
    c->topic[p.topic.len] = '\0';
    c->hooks.oversize(c->hooks.ctx, c->topic, p.payload_len);
    if (p.qos > 0 && (rc = ack_push(c, p.id, p.qos == 2 ? MQTT_PKT_PUBREC : MQTT_PKT_PUBACK))) {
        conn_drop(c, "too many messages waiting for acknowledgement");
        return rc;
    }
    if (p.qos > 0) {
        held_set(c, p.id, true);
    }
    c->skip = hlen + rem;
    return 0;
}

/* Parse every complete packet in `in`; keep an incomplete one for the next read. */
static void parse_all(struct mqtt_client *c)
{
    size_t pos = 0;
    while (c->tcp_open && !c->paused) {
        if (c->skip > 0) {
            size_t k = c->skip < c->in_used - pos ? c->skip : c->in_used - pos;
            pos += k;
            c->skip -= k;
            if (c->skip > 0) {
                break;
            }
        }
        uint8_t type = 0, flags = 0;
        size_t rem = 0;
        struct mr_err err;
        struct mqtt_packet p;
        int h = mqtt_wire_header(c->in + pos, c->in_used - pos, &type, &flags, &rem, &err);
        if (h < 0) {
            conn_drop(c, err.msg);
            return;
        }
        if (h == 0) {
            break;
        }
        size_t total = (size_t)h + rem;
        if (total > c->in_cap) {
            memmove(c->in, c->in + pos, c->in_used - pos); /* the head at the start */
            c->in_used -= pos;
            pos = 0;
            int rc = oversize(c, type, flags, (size_t)h, rem, c->in_used);
            if (rc != 0) {
                return; /* need more, or dropped */
            }
            continue;
        }
        if (c->in_used - pos < total) {
            break;
        }
        if (mqtt_wire_decode(c->in + pos, total, &p, &err) != 0) {
            conn_drop(c, err.msg);
            return;
        }
        int rc = on_packet(c, &p);
        if (rc == MR_EAGAIN) {
            c->paused = true;
            break;
        }
        if (rc != 0 || !c->tcp_open) {
            return;
        }
        pos += total;
    }
    memmove(c->in, c->in + pos, c->in_used - pos);
    c->in_used -= pos;
}

static void resume_cb(uv_timer_t *t);

/* After new bytes: parse, emit the read's batch, acknowledge what is durable, write. */
static void process(struct mqtt_client *c)
{
    parse_all(c);
    if (!c->tcp_open) {
        return;
    }
    int rc = batch_flush(c);
    if (rc == MR_EAGAIN) {
        c->paused = true;
    }
    if (!c->tcp_open) {
        return;
    }
    if (c->paused) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        uv_timer_start(&c->resume, resume_cb, RESUME_MS, 0);
    }
    ack_check(c);
    out_flush(c);
}

/* ---- TLS over memory BIOs ---- */

static const char *tls_error(struct mqtt_client *c, char *buf, size_t cap)
{
    long v = c->ssl != NULL ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    unsigned long e = ERR_get_error();
    if (v != X509_V_OK) {
        snprintf(buf, cap, "TLS: broker certificate not accepted: %s",
                 X509_verify_cert_error_string(v));
    } else if (e != 0) {
        char msg[200];
        ERR_error_string_n(e, msg, sizeof(msg));
        snprintf(buf, cap, "TLS: %s", msg);
    } else {
        snprintf(buf, cap, "TLS: connection closed during the handshake");
    }
    ERR_clear_error();
    return buf;
}

static void send_connect(struct mqtt_client *c);

/* Decrypt what the BIO holds into `in` and process it; false when the connection was dropped. */
static void tls_pump(struct mqtt_client *c)
{
    char why[300];
    if (c->state == ST_TLS) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
            conn_drop(c, tls_error(c, why, sizeof(why)));
            return;
        }
        out_flush(c);
        if (r != 1) {
            return;
        }
        send_connect(c);
    }
    while (c->tcp_open && !c->paused) {
        if (c->in_used == c->in_cap) {
            process(c);
            if (c->in_used == c->in_cap) {
                return;
            }
            continue;
        }
        int n = SSL_read(c->ssl, c->in + c->in_used, (int)(c->in_cap - c->in_used));
        if (n > 0) {
            c->in_used += (size_t)n;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
            break;
        }
        conn_drop(c, e == SSL_ERROR_ZERO_RETURN ? "closed by the broker (TLS close)"
                                                : tls_error(c, why, sizeof(why)));
        return;
    }
    if (c->tcp_open) {
        process(c);
    }
}

static int tls_begin(struct mqtt_client *c)
{
    const struct server *s = cur(c);
    c->ssl = SSL_new(c->ssl_ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || rb == NULL || wb == NULL) {
        BIO_free(rb);
        BIO_free(wb);
        return MR_ENOMEM;
    }
    SSL_set_bio(c->ssl, rb, wb);
    SSL_set_connect_state(c->ssl);
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, s->host, ip) == 1 || inet_pton(AF_INET6, s->host, ip) == 1;
    if (!is_ip) {
        SSL_set_tlsext_host_name(c->ssl, s->host);
    }
    if (!c->conf->insecure_skip_verify) {
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), s->host)
                       : SSL_set1_host(c->ssl, s->host);
        if (ok != 1) {
            return MR_EINVAL;
        }
    }
    c->state = ST_TLS;
    tls_pump(c);
    return 0;
}

/* ---- connecting ---- */

static void send_connect(struct mqtt_client *c)
{
    const struct mqtt_conf *cf = c->conf;
    struct mqtt_connect m = {.client_id = cf->client_id != NULL ? cf->client_id : "",
                             .clean_session = !cf->persistent_session,
                             .keepalive_s = (uint16_t)(cf->keepalive_ns / 1000000000LL),
                             .username = cf->username,
                             .password = cf->password};
    long n = mqtt_wire_connect(c->out, OUT_CAP, &m);
    if (n < 0) {
        conn_drop(c, "client_id, username or password longer than 65535 bytes");
        return;
    }
    c->out_used = (size_t)n;
    c->state = ST_CONNACK;
    out_flush(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct mqtt_client *c = h->data;
    (void)suggested;
    if (c->ssl != NULL) {
        *buf = uv_buf_init((char *)c->net, READ_MIN);
    } else {
        *buf = uv_buf_init((char *)c->in + c->in_used, (unsigned)(c->in_cap - c->in_used));
    }
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void linger_cb(uv_poll_t *p, int status, int events)
{
    struct mqtt_client *c = p->data;
    uint64_t expirations;
    (void)status;
    (void)events;
    if (read(c->linger_fd, &expirations, sizeof(expirations)) < 0) {
        /* nothing to do: the timer is one-shot and disarmed either way */
    }
    uv_poll_stop(&c->linger);
    c->lingering = false;
    if (c->tcp_open && !c->paused && !c->stopping) {
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    }
}

/* At a high message rate every read would carry one or two messages and cost a wake-up, a
 * read and an emit each. After a small read that followed the previous one closely, reading
 * pauses for LINGER_NS, so the next read (and emit) carries what arrived meanwhile. At low
 * rates nothing waits. */
static void linger_maybe(struct mqtt_client *c, size_t n, int64_t now)
{
    int64_t gap = now - c->prev_read_ns;
    c->prev_read_ns = now;
    if (c->linger_fd < 0 || n >= LINGER_BYTES || gap >= LINGER_NS || c->paused || !c->tcp_open ||
        c->state != ST_UP) {
        return;
    }
    struct itimerspec its = {.it_value = {.tv_nsec = LINGER_NS}};
    if (timerfd_settime(c->linger_fd, 0, &its, NULL) == 0 &&
        uv_poll_start(&c->linger, UV_READABLE, linger_cb) == 0) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->lingering = true;
    }
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct mqtt_client *c = s->data;
    (void)buf;
    if (n == 0) {
        return;
    }
    if (n < 0) {
        conn_drop(c, n == UV_EOF ? "closed by the broker" : uv_strerror((int)n));
        return;
    }
    c->last_rx_ns = mr_clock_mono_ns();
    if (c->ssl != NULL) {
        if (BIO_write(SSL_get_rbio(c->ssl), c->net, (int)n) != (int)n) {
            conn_drop(c, "TLS buffer");
            return;
        }
        tls_pump(c);
    } else {
        c->in_used += (size_t)n;
        process(c);
    }
    linger_maybe(c, (size_t)n, c->last_rx_ns);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct mqtt_client *c = req->data;
    c->pending--;
    if (status == UV_ECANCELED || !c->tcp_open || c->stopping) {
        maybe_stopped(c);
        return;
    }
    if (status < 0) {
        conn_drop(c, uv_strerror(status));
        return;
    }
    c->last_rx_ns = c->last_tx_ns = mr_clock_mono_ns();
    int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (rc != 0) {
        conn_drop(c, uv_strerror(rc));
        return;
    }
    if (c->ssl_ctx != NULL && cur(c)->tls) {
        if (tls_begin(c) != 0) {
            conn_drop(c, "TLS setup failed");
        }
        return;
    }
    c->state = ST_TLS; /* lets out_flush write; CONNECT moves it on */
    send_connect(c);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct mqtt_client *c = req->data;
    c->pending--;
    if (c->stopping || status < 0) {
        uv_freeaddrinfo(res);
        c->state = ST_IDLE;
        if (!c->stopping) {
            conn_drop(c, uv_strerror(status));
        }
        maybe_stopped(c);
        return;
    }
    int rc = uv_tcp_init(c->loop, &c->tcp);
    if (rc == 0) {
        c->tcp.data = c;
        c->tcp_open = true;
        c->pending++;
        c->state = ST_CONNECTING;
        uv_tcp_nodelay(&c->tcp, 1);
        c->connect_req.data = c;
        rc = uv_tcp_connect(&c->connect_req, &c->tcp, res->ai_addr, connect_cb);
        if (rc == 0) {
            c->pending++;
        }
    }
    uv_freeaddrinfo(res);
    if (rc != 0) {
        conn_drop(c, uv_strerror(rc));
    }
}

static void connect_now(struct mqtt_client *c)
{
    const struct server *s = cur(c);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    c->state = ST_RESOLVING;
    c->started_ns = mr_clock_mono_ns();
    c->paused = false;
    c->gai.data = c;
    int rc = uv_getaddrinfo(c->loop, &c->gai, gai_cb, s->host, s->port, &hints);
    if (rc != 0) {
        c->state = ST_IDLE;
        conn_drop(c, uv_strerror(rc));
        return;
    }
    c->pending++;
}

static void reconnect_cb(uv_timer_t *t)
{
    struct mqtt_client *c = t->data;
    if (c->stopping) {
        return;
    }
    if (c->state != ST_IDLE) { /* the old connection is still closing */
        uv_timer_start(&c->reconnect, reconnect_cb, RESUME_MS, 0);
        return;
    }
    connect_now(c);
}

/* The host pushed back: offer the batch again; once taken, go on parsing and reading. */
static void resume_cb(uv_timer_t *t)
{
    struct mqtt_client *c = t->data;
    if (c->stopping) {
        return;
    }
    if (!c->tcp_open) { /* the connection went meanwhile: only the batch is left */
        int rc = c->hooks.flush(c->hooks.ctx);
        if (rc == MR_EAGAIN) {
            uv_timer_start(&c->resume, resume_cb, RESUME_MS, 0);
        } else {
            c->paused = false;
        }
        return;
    }
    c->paused = false;
    c->last_rx_ns = mr_clock_mono_ns(); /* a pause is not the broker's silence */
    if (batch_flush(c) == MR_EAGAIN) {
        c->paused = true;
        uv_timer_start(&c->resume, resume_cb, RESUME_MS, 0);
        return;
    }
    if (!c->tcp_open) {
        return;
    }
    if (c->ssl != NULL && c->state != ST_TLS) {
        tls_pump(c);
    } else {
        process(c);
    }
    if (c->tcp_open && !c->paused && !c->lingering) {
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    }
}

/* Once a second: connect timeout, keepalive ping, dead connection. */
static void misc_cb(uv_timer_t *t)
{
    struct mqtt_client *c = t->data;
    int64_t now = mr_clock_mono_ns(), ka = c->conf->keepalive_ns;
    char why[96];
    if (c->state >= ST_CONNECTING && c->state < ST_UP && now - c->started_ns > CONNECT_NS) {
        conn_drop(c, "no CONNACK within 10 s");
        return;
    }
    if (c->state != ST_UP) {
        return;
    }
    if (now - c->last_rx_ns > ka + ka / 2 && !c->paused) {
        snprintf(why, sizeof(why), "nothing heard for %lld s, keepalive %lld s",
                 (long long)((now - c->last_rx_ns) / 1000000000LL), (long long)(ka / 1000000000LL));
        conn_drop(c, why);
        return;
    }
    if (now - c->last_tx_ns >= ka / 2) {
        long n = mqtt_wire_bare(c->out + c->out_used, OUT_CAP - c->out_used, MQTT_PKT_PINGREQ);
        if (n > 0) {
            c->out_used += (size_t)n;
            c->ping_out = true;
            c->ping_ns = now;
            c->last_tx_ns = now; /* one ping per half keepalive even while a write waits */
            out_flush(c);
        }
    }
}

/* ---- life cycle ---- */

static int parse_server(const char *url, struct server *s, bool have_ca, struct mr_err *err)
{
    static const struct {
        const char *scheme;
        bool tls;
    } schemes[] = {{"tcp://", false},
                   {"mqtt://", false},
                   {"ssl://", true},
                   {"tls://", true},
                   {"mqtts://", true}};
    const char *p = url;
    s->tls = false;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strncmp(p, schemes[i].scheme, strlen(schemes[i].scheme)) == 0) {
            p += strlen(schemes[i].scheme);
            s->tls = schemes[i].tls;
            break;
        }
    }
    if (strstr(p, "://") != NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "server %s: use tcp:// or ssl://", url);
    }
    long port = s->tls ? 8883 : 1883;
    const char *colon = strrchr(p, ':');
    size_t len = colon != NULL ? (size_t)(colon - p) : strlen(p);
    if (colon != NULL) {
        char *end;
        port = strtol(colon + 1, &end, 10);
        if (*end != '\0' || port <= 0 || port > 65535) {
            return MR_ERR_SET(err, MR_EINVAL, "server %s: bad port", url);
        }
    }
    if (len == 0 || len >= sizeof(s->host)) {
        return MR_ERR_SET(err, MR_EINVAL, "server %s: bad host", url);
    }
    memcpy(s->host, p, len);
    s->host[len] = '\0';
    snprintf(s->port, sizeof(s->port), "%ld", port);
    if (s->tls && !have_ca) {
        return MR_ERR_SET(err, MR_EINVAL, "server %s: TLS needs tls_ca", url);
    }
    return 0;
}

static int tls_setup(struct mqtt_client *c, struct mr_err *err)
{
    const struct mqtt_conf *cf = c->conf;
    char msg[200] = "";
    c->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (c->ssl_ctx == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "TLS: cannot create a context");
    }
    SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
    const char *file = cf->tls_ca, *key = "tls_ca";
    int ok = SSL_CTX_load_verify_locations(c->ssl_ctx, cf->tls_ca, NULL);
    if (ok == 1 && cf->tls_cert != NULL) {
        file = cf->tls_cert;
        key = "tls_cert";
        ok = SSL_CTX_use_certificate_chain_file(c->ssl_ctx, cf->tls_cert);
        if (ok == 1) {
            file = cf->tls_key;
            key = "tls_key";
            ok = SSL_CTX_use_PrivateKey_file(c->ssl_ctx, cf->tls_key, SSL_FILETYPE_PEM) == 1 &&
                 SSL_CTX_check_private_key(c->ssl_ctx) == 1;
        }
    }
    if (ok != 1) {
        ERR_error_string_n(ERR_get_error(), msg, sizeof(msg));
        ERR_clear_error();
        return MR_ERR_SET(err, MR_EINVAL, "%s %s: cannot load: %s", key, file, msg);
    }
    return 0;
}

int mqtt_client_create(struct mqtt_client **out, uv_loop_t *loop, const char *name,
                       const struct mqtt_conf *conf, const char *const *filters, size_t nfilters,
                       const struct mqtt_client_hooks *hooks, struct mr_err *err)
{
    struct mqtt_client *c = mr_calloc(1, sizeof(*c));
    int rc = MR_ENOMEM;
    if (c == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    *c = (struct mqtt_client){.loop = loop,
                              .name = name,
                              .conf = conf,
                              .filters = filters,
                              .nfilters = nfilters,
                              .hooks = *hooks,
                              .linger_fd = -1};
    c->nservers = conf->servers.n > 0 ? conf->servers.n : 1;
    c->servers = mr_calloc(c->nservers, sizeof(*c->servers));
    bool tls = false;
    for (size_t i = 0; c->servers != NULL && i < c->nservers; i++) {
        const char *url = conf->servers.n > 0 ? conf->servers.items[i] : DEFAULT_URL;
        if ((rc = parse_server(url, &c->servers[i], conf->tls_ca != NULL, err)) != 0) {
            goto fail;
        }
        tls |= c->servers[i].tls;
    }
    /* Room for the largest message kept: fixed header, topic, packet id, max_payload. */
    c->in_cap = (size_t)conf->max_payload + TOPIC_MAX + 16;
    c->in_cap = c->in_cap < 2 * READ_MIN ? 2 * READ_MIN : c->in_cap;
    c->in = mr_malloc(c->in_cap);
    c->topic = mr_malloc(TOPIC_MAX + 1);
    c->out = mr_malloc(OUT_CAP);
    c->wire = mr_malloc(OUT_CAP);
    c->acks = mr_calloc(ACK_RING, sizeof(*c->acks));
    c->net = tls ? mr_malloc(READ_MIN) : NULL;
    if (c->servers == NULL || c->in == NULL || c->topic == NULL || c->out == NULL ||
        c->wire == NULL || c->acks == NULL || (tls && c->net == NULL)) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        goto fail;
    }
    if (tls && (rc = tls_setup(c, err)) != 0) {
        goto fail;
    }
    *out = c;
    return 0;
fail:
    mqtt_client_destroy(c);
    return rc;
}

int mqtt_client_start(struct mqtt_client *c, struct mr_err *err)
{
    uv_timer_t *timers[] = {&c->misc, &c->ack_timer, &c->reconnect, &c->resume};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        int rc = uv_timer_init(c->loop, timers[i]);
        if (rc != 0) {
            return MR_ERR_SET(err, mr_err_from_errno(-rc), "timer: %s", uv_strerror(rc));
        }
        timers[i]->data = c;
        c->pending++;
    }
    c->linger_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (c->linger_fd >= 0 && uv_poll_init(c->loop, &c->linger, c->linger_fd) == 0) {
        c->linger.data = c;
        c->pending++;
    } else if (c->linger_fd >= 0) {
        close(c->linger_fd); /* no lingering: every read is handled at once */
        c->linger_fd = -1;
    }
    uv_timer_start(&c->misc, misc_cb, MISC_MS, MISC_MS);
    connect_now(c);
    return 0;
}

void mqtt_client_stop(struct mqtt_client *c)
{
    if (c->stopping) {
        return;
    }
    if (c->state == ST_UP && c->tcp_open) {
        ack_check(c); /* what is durable already is acknowledged before we go */
        long n = mqtt_wire_bare(c->out + c->out_used, OUT_CAP - c->out_used, MQTT_PKT_DISCONNECT);
        if (n > 0 && !c->writing && c->ssl == NULL) {
            uv_buf_t b = uv_buf_init((char *)c->out, (unsigned)(c->out_used + (size_t)n));
            uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        }
    }
    c->stopping = true;
    if (c->state == ST_RESOLVING) {
        uv_cancel((uv_req_t *)&c->gai);
    }
    conn_drop(c, NULL);
    uv_timer_t *timers[] = {&c->misc, &c->ack_timer, &c->reconnect, &c->resume};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        if (timers[i]->data == c && !uv_is_closing((uv_handle_t *)timers[i])) {
            uv_close((uv_handle_t *)timers[i], close_cb);
        }
    }
    if (c->linger_fd >= 0 && !uv_is_closing((uv_handle_t *)&c->linger)) {
        uv_close((uv_handle_t *)&c->linger, close_cb);
    }
    maybe_stopped(c);
}

void mqtt_client_destroy(struct mqtt_client *c)
{
    if (c == NULL) {
        return;
    }
    if (c->linger_fd >= 0) {
        close(c->linger_fd); /* its poll handle is closed by now */
    }
    SSL_free(c->ssl);
    SSL_CTX_free(c->ssl_ctx);
    mr_free(c->servers);
    mr_free(c->in);
    mr_free(c->net);
    mr_free(c->topic);
    mr_free(c->out);
    mr_free(c->wire);
    mr_free(c->acks);
    mr_free(c);
}

int mqtt_client_publish(struct mqtt_client *c, const char *topic, const void *payload, size_t len)
{
    if (c->state != ST_UP || !c->tcp_open) {
        return MR_ECLOSED;
    }
    long n = mqtt_wire_publish(c->out + c->out_used, OUT_CAP - c->out_used, topic, payload, len, 0,
                               0, false);
    if (n < 0) {
        return MR_ETOOBIG;
    }
    c->out_used += (size_t)n;
    out_flush(c);
    return 0;
}
