/* A small HTTP/1.1 server on the loop thread for `GET /metrics` (Prometheus text format) and
 * `GET /` (a pointer to it), at the configuration's `http.listen`. The dashboard (a later issue)
 * grows from here; until then this is how progress, lag and errors are read by Prometheus or
 * by a person with curl.
 *
 * Deliberately small: one request per connection (the response closes it), request heads up to
 * 8 KiB, at most 64 connections at once, and a connection that has not sent a whole request head
 * within 5 s is closed, so a slow or hostile client cannot hold resources.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/http_metrics.h"
#include "millrace/log.h"

#define MAX_CONNS    64
#define MAX_HEAD     8192
#define HEAD_TIMEOUT 5000
#define LOG_NAME     "http"

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write;
    struct mr_http_metrics *srv;
    char head[MAX_HEAD];
    size_t used;
    char *resp;
    int closing; /* handles still to close */
};

struct mr_http_metrics {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct mr_metrics *metrics;
    int conns;
    struct conn *live[MAX_CONNS];
    bool stopping;
    void (*done)(void *arg);
    void *done_arg;
    int port;
};

static void maybe_done(struct mr_http_metrics *s)
{
    if (s->stopping && s->conns == 0) {
        if (s->done != NULL) {
            s->done(s->done_arg);
        }
        mr_free(s);
    }
}

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->closing == 0) {
        struct mr_http_metrics *s = c->srv;
        for (int i = 0; i < MAX_CONNS; i++) {
            if (s->live[i] == c) {
                s->live[i] = NULL;
            }
        }
        mr_free(c->resp);
        mr_free(c);
        s->conns--;
        maybe_done(s);
    }
}

static void conn_close(struct conn *c)
{
    if (c->closing != 0) {
        return;
    }
    c->closing = 2;
    uv_close((uv_handle_t *)&c->timer, conn_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

static void respond(struct conn *c, const char *status, const char *type, const char *body,
                    size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, type, len);
    c->resp = mr_malloc((size_t)n + len);
    if (c->resp == NULL) {
        conn_close(c);
        return;
    }
    memcpy(c->resp, head, (size_t)n);
    memcpy(c->resp + n, body, len);
    uv_buf_t buf = uv_buf_init(c->resp, (unsigned)((size_t)n + len));
    c->write.data = c;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, written) != 0) {
        conn_close(c);
    }
}

static void serve_metrics(struct conn *c)
{
    size_t cap = 64 * 1024, needed = 0;
    for (int tries = 0; tries < 4; tries++) {
        char *out = mr_malloc(cap);
        if (out == NULL) {
            break;
        }
        long n = mr_metrics_render(c->srv->metrics, out, cap, &needed);
        if (n >= 0) {
            respond(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", out, (size_t)n);
            mr_free(out);
            return;
        }
        mr_free(out);
        cap = needed + 4096;
    }
    const char *msg = "cannot render metrics\n";
    respond(c, "500 Internal Server Error", "text/plain", msg, strlen(msg));
}

static void handle(struct conn *c)
{
    if (strncmp(c->head, "GET ", 4) != 0) {
        const char *msg = "only GET is served here\n";
        respond(c, "405 Method Not Allowed", "text/plain", msg, strlen(msg));
        return;
    }
    const char *path = c->head + 4;
    size_t len = strcspn(path, " ?\r\n");
    if (len == 8 && memcmp(path, "/metrics", 8) == 0) {
        serve_metrics(c);
    } else if (len == 1 && path[0] == '/') {
        const char *msg = "millrace: metrics at /metrics (Prometheus text format)\n";
        respond(c, "200 OK", "text/plain; charset=utf-8", msg, strlen(msg));
    } else {
        const char *msg = "not found: try /metrics\n";
        respond(c, "404 Not Found", "text/plain", msg, strlen(msg));
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = h->data;
    *buf = uv_buf_init(c->head + c->used, (unsigned)(MAX_HEAD - 1 - c->used));
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct conn *c = st->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->used += (size_t)n;
    c->head[c->used] = '\0';
    if (strstr(c->head, "\r\n\r\n") != NULL || strstr(c->head, "\n\n") != NULL) {
        handle(c);
    } else if (c->used >= MAX_HEAD - 1) {
        const char *msg = "request head too large\n";
        respond(c, "431 Request Header Fields Too Large", "text/plain", msg, strlen(msg));
    }
}

static void timeout_cb(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct mr_http_metrics *s = server->data;
    if (status != 0 || s->stopping) {
        return;
    }
    struct conn *c = s->conns < MAX_CONNS ? mr_calloc(1, sizeof(*c)) : NULL;
    if (c == NULL) {
        /* Over the limit: accept and close at once, so the backlog does not fill up. */
        uv_tcp_t *tmp = mr_calloc(1, sizeof(*tmp));
        if (tmp != NULL && uv_tcp_init(s->loop, tmp) == 0) {
            if (uv_accept(server, (uv_stream_t *)tmp) == 0) {
                MR_LOG_WARN(LOG_NAME, "too many connections: one refused");
            }
            uv_close((uv_handle_t *)tmp, (uv_close_cb)mr_free);
        } else {
            mr_free(tmp);
        }
        return;
    }
    c->srv = s;
    s->conns++;
    for (int i = 0; i < MAX_CONNS; i++) {
        if (s->live[i] == NULL) {
            s->live[i] = c;
            break;
        }
    }
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, timeout_cb, HEAD_TIMEOUT, 0);
}

static int parse_listen(const char *listen, struct sockaddr_storage *addr, struct mr_err *err)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || (size_t)(colon - listen) >= sizeof(host)) {
        return MR_ERR_SET(err, MR_EINVAL, "http.listen '%s' is not HOST:PORT", listen);
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port < 0 || port > 65535) {
        return MR_ERR_SET(err, MR_EINVAL, "http.listen '%s': bad port", listen);
    }
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, sizeof(host), "127.0.0.1");
    }
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) != 0 &&
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr) != 0) {
        return MR_ERR_SET(err, MR_EINVAL,
                          "http.listen '%s': the host must be an IP address (or localhost)",
                          listen);
    }
    return 0;
}

static void free_server(uv_handle_t *h)
{
    mr_free(h->data);
}

int mr_http_metrics_start(struct mr_http_metrics **out, uv_loop_t *loop, const char *listen,
                          struct mr_metrics *metrics, struct mr_err *err)
{
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof(addr));
    int rc = parse_listen(listen, &addr, err);
    if (rc != 0) {
        return rc;
    }
    struct mr_http_metrics *s = mr_calloc(1, sizeof(*s));
    if (s == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    s->loop = loop;
    s->metrics = metrics;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    int uvrc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (uvrc == 0) {
        uvrc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    }
    if (uvrc != 0) {
        uv_close((uv_handle_t *)&s->listener, free_server);
        return MR_ERR_SET(err, MR_EIO, "cannot listen on %s: %s", listen, uv_strerror(uvrc));
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen) == 0) {
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    }
    *out = s;
    return 0;
}

int mr_http_metrics_port(const struct mr_http_metrics *s)
{
    return s->port;
}

static void listener_closed(uv_handle_t *h)
{
    struct mr_http_metrics *s = h->data;
    s->conns--; /* the listener counted as one while closing */
    maybe_done(s);
}

void mr_http_metrics_stop(struct mr_http_metrics *s, void (*done)(void *arg), void *arg)
{
    if (s == NULL) {
        if (done != NULL) {
            done(arg);
        }
        return;
    }
    s->stopping = true;
    s->done = done;
    s->done_arg = arg;
    s->conns++;
    for (int i = 0; i < MAX_CONNS; i++) {
        if (s->live[i] != NULL) {
            conn_close(s->live[i]);
        }
    }
    uv_close((uv_handle_t *)&s->listener, listener_closed);
}
