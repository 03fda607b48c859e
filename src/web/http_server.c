/* The HTTP/1.1 server on the loop (include/millrace/http_server.h): listener, connections,
 * reading requests and handing them to the handler.
 * Parsing (http-parser callbacks, URL and body decoding) is in http_parse.c, answers and streams
 * in http_respond.c, the shared structures in http_internal.h.
 *
 * A connection's life:
 *
 *   WAIT --first byte--> READ --complete--> HANDLER --respond--> WRITING --written--> WAIT
 *     (idle timeout)      (request timeout)   (no timer)   \--stream_begin--> STREAM --end-->
 *   any server-detected error: error answer, then LINGER (drain until EOF or 2 s), close.
 *
 * Pipelining: the parser pauses at the end of each request; bytes after it stay in the read
 * buffer until the answer was written. Reading goes on meanwhile (so a client that goes away is
 * noticed: mr_http_request_gone) until the read buffer is full, which stops a client that
 * sends without reading answers.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "millrace/alloc.h"
#include "web/http_internal.h"

void mr_http_server_options_init(struct mr_http_server_options *o)
{
    *o = (struct mr_http_server_options){
        .listen = "127.0.0.1:0",
        .log_name = "http",
        .max_body_bytes = 32u * 1024u * 1024u,
        .max_connections = 256,
        .request_timeout_ms = 30000,
        .idle_timeout_ms = 60000,
    };
}

/* ---- logging: per client address, at most 10 error messages per 10 s ---- */

static struct mr_log_ratelimit *peer_rl(struct mr_http_server *s, const char *peer)
{
    char ip[48];
    size_t n = strcspn(peer, "]");
    if (peer[0] != '[') {
        n = strcspn(peer, ":");
    }
    if (n >= sizeof(ip)) {
        n = sizeof(ip) - 1;
    }
    memcpy(ip, peer, n);
    ip[n] = '\0';
    struct mr_http_peer_rl *oldest = &s->peers[0];
    for (uint32_t i = 0; i < MR_HTTP_PEERS_RL; i++) {
        if (strcmp(s->peers[i].ip, ip) == 0) {
            return &s->peers[i].rl;
        }
        if (s->peers[i].rl.window_start_ms < oldest->rl.window_start_ms) {
            oldest = &s->peers[i];
        }
    }
    memcpy(oldest->ip, ip, n + 1);
    oldest->rl = (struct mr_log_ratelimit){0};
    return &oldest->rl;
}

/* ---- connection life ---- */

static void server_maybe_done(struct mr_http_server *s)
{
    if (!s->stopping || !s->listener_closed || s->conns != NULL) {
        return;
    }
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    mr_free(s);
    if (done != NULL) {
        done(arg);
    }
}

void mr_http_conn_maybe_free(struct mr_http_conn *c)
{
    if (c->handles > 0 || c->state == MR_HTTP_HANDLER || c->state == MR_HTTP_STREAM ||
        c->writes > 0 || c->in_drive) {
        return;
    }
    struct mr_http_server *s = c->srv;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    if (c->rejected) {
        s->nrejects--;
    } else {
        s->nconns--;
    }
    if (c->z_ready) {
        inflateEnd(&c->z);
    }
    mr_free(c->head);
    mr_free(c->body);
    mr_free(c->out);
    mr_free(c);
    server_maybe_done(s);
}

static void conn_handle_closed(uv_handle_t *h)
{
    struct mr_http_conn *c = h->data;
    c->handles--;
    mr_http_conn_maybe_free(c);
}

void mr_http_conn_close(struct mr_http_conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    c->gone = true;
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static void timer_cb(uv_timer_t *t);
static void read_start(struct mr_http_conn *c);
static void conn_drive(struct mr_http_conn *c);

void mr_http_conn_timer(struct mr_http_conn *c, uint32_t ms)
{
    uv_timer_start(&c->timer, timer_cb, ms, 0);
}

void mr_http_conn_answered(struct mr_http_conn *c)
{
    c->state = MR_HTTP_WAIT;
    if (c->closing) {
        mr_http_conn_maybe_free(c);
        return;
    }
    if (!c->keep_alive || c->srv->stopping) {
        mr_http_conn_close(c);
        return;
    }
    if (c->body_cap > MR_HTTP_KEEP_BODY) {
        mr_free(c->body);
        c->body = NULL;
        c->body_cap = 0;
    }
    mr_http_conn_timer(c, c->srv->opts.idle_timeout_ms);
    conn_drive(c);
}

static void linger_start(struct mr_http_conn *c)
{
    c->state = MR_HTTP_LINGER;
    c->rstart = c->rend = 0;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, NULL) != 0) {
        mr_http_conn_close(c);
        return;
    }
    mr_http_conn_timer(c, MR_HTTP_LINGER_MS);
    read_start(c);
}

void mr_http_conn_write_done(struct mr_http_conn *c, int status)
{
    c->writes--;
    if (status < 0) {
        mr_http_conn_close(c);
    }
    if (c->state == MR_HTTP_STREAM) {
        if (c->stream_ended && c->writes == 0) {
            mr_http_conn_answered(c);
        }
        return;
    }
    if (c->closing) {
        if (c->state == MR_HTTP_WRITING || c->state == MR_HTTP_LINGER) {
            c->state = MR_HTTP_WAIT;
        }
        mr_http_conn_maybe_free(c);
        return;
    }
    if (c->state == MR_HTTP_WRITING && c->writes == 0) {
        if (c->linger_after) {
            linger_start(c);
        } else {
            mr_http_conn_answered(c);
        }
    }
}

static void wreq_done(uv_write_t *w, int status)
{
    mr_http_conn_write_done(w->data, status);
}

void mr_http_conn_continue(struct mr_http_conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
    c->creq.data = c;
    if (uv_write(&c->creq, (uv_stream_t *)&c->tcp, &b, 1, wreq_done) == 0) {
        c->writes++;
    }
}

int mr_http_conn_out_reserve(struct mr_http_conn *c, size_t cap)
{
    if (cap <= c->out_cap) {
        return 0;
    }
    size_t ncap = c->out_cap < 512 ? 512 : c->out_cap;
    while (ncap < cap) {
        ncap *= 2;
    }
    char *p = mr_realloc(c->out, ncap);
    if (p == NULL) {
        return MR_ENOMEM;
    }
    c->out = p;
    c->out_cap = ncap;
    return 0;
}

int mr_http_conn_send(struct mr_http_conn *c, const char *head, size_t hlen, const void *body,
                      size_t blen)
{
    if (c->closing) {
        return MR_ECLOSED;
    }
    uv_buf_t bufs[2] = {uv_buf_init((char *)head, (unsigned)hlen),
                        uv_buf_init((char *)body, (unsigned)blen)};
    size_t done = 0;
    if (c->writes == 0) {
        int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, blen > 0 ? 2 : 1);
        if (n < 0 && n != UV_EAGAIN) {
            mr_http_conn_close(c);
            return MR_ECLOSED;
        }
        done = n > 0 ? (size_t)n : 0;
    }
    if (done == hlen + blen) {
        return 0;
    }
    /* What did not fit goes to conn->out; head may itself be in conn->out (move it first). */
    size_t hrest = done < hlen ? hlen - done : 0;
    size_t bskip = done > hlen ? done - hlen : 0;
    size_t rest = hrest + blen - bskip;
    if (head == c->out) {
        memmove(c->out, head + (hlen - hrest), hrest);
        if (mr_http_conn_out_reserve(c, rest) != 0) {
            return MR_ENOMEM;
        }
    } else {
        if (mr_http_conn_out_reserve(c, rest) != 0) {
            return MR_ENOMEM;
        }
        memcpy(c->out, head + (hlen - hrest), hrest);
    }
    memcpy(c->out + hrest, (const char *)body + bskip, blen - bskip);
    uv_buf_t b = uv_buf_init(c->out, (unsigned)rest);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, wreq_done) != 0) {
        mr_http_conn_close(c);
        return MR_ECLOSED;
    }
    c->writes++;
    return 1;
}

void mr_http_conn_fail(struct mr_http_conn *c, int status, const char *msg)
{
    struct mr_http_server *s = c->srv;
    MR_LOG_RL(peer_rl(s, c->peer), MR_LOG_WARN, s->log_name, "%s: %d %s: %s", c->peer, status,
              mr_http_status_text(status), msg);
    uv_timer_stop(&c->timer);
    c->keep_alive = false;
    c->head_only = false;
    c->linger_after = true;
    c->state = MR_HTTP_WRITING;
    size_t mlen = strlen(msg);
    long hlen = mr_http_head_build(c, status, "text/plain; charset=utf-8", NULL, false, mlen + 1);
    if (hlen < 0) {
        mr_http_conn_close(c);
        return;
    }
    /* The message and its newline follow the head in conn->out. */
    if (mr_http_conn_out_reserve(c, (size_t)hlen + mlen + 1) != 0) {
        mr_http_conn_close(c);
        return;
    }
    memcpy(c->out + hlen, msg, mlen);
    c->out[(size_t)hlen + mlen] = '\n';
    int rc = mr_http_conn_send(c, c->out, (size_t)hlen + mlen + 1, NULL, 0);
    if (rc == 0) {
        linger_start(c);
    } else if (rc < 0) {
        mr_http_conn_close(c);
    }
}

static void dispatch(struct mr_http_conn *c)
{
    http_parser *p = &c->parser;
    http_parser_pause(p, 0);
    c->state = MR_HTTP_HANDLER;
    c->keep_alive = http_should_keep_alive(p) && p->http_major == 1 && p->http_minor >= 1 &&
                    !p->upgrade && !c->srv->stopping;
    c->head_only = p->method == HTTP_HEAD;
    c->srv->handler(c->srv->arg, &c->req);
}

/* Parse bytes; deliver a complete request, answer a bad one. Returns the bytes consumed. */
static size_t parse(struct mr_http_conn *c, const char *p, size_t len)
{
    size_t n = http_parser_execute(&c->parser, &mr_http_parser_settings, p, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->fail_status != 0) {
        mr_http_conn_fail(c, c->fail_status, c->fail_msg);
    } else if (e == HPE_PAUSED) {
        dispatch(c);
    } else if (e != HPE_OK) {
        char msg[128];
        snprintf(msg, sizeof(msg), "malformed request: %s", http_errno_description(e));
        mr_http_conn_fail(c, 400, msg);
    }
    return n;
}

/* Parse what is buffered while the connection is ready for a request; deliver complete ones. */
static void conn_drive(struct mr_http_conn *c)
{
    if (c->in_drive) {
        return;
    }
    c->in_drive = true;
    while (!c->closing && (c->state == MR_HTTP_WAIT || c->state == MR_HTTP_READ) &&
           c->rstart < c->rend) {
        c->rstart += parse(c, c->rbuf + c->rstart, c->rend - c->rstart);
    }
    if (c->rstart == c->rend) {
        c->rstart = c->rend = 0;
    } else if (c->rstart > 0 && c->state != MR_HTTP_LINGER) {
        memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
        c->rend -= c->rstart;
        c->rstart = 0;
    }
    c->in_drive = false;
    if (!c->closing && c->rend < MR_HTTP_RBUF) {
        read_start(c);
    }
    mr_http_conn_maybe_free(c);
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct mr_http_conn *c = h->data;
    /* The rest of a plain body with a known length is read straight into the body buffer (one
     * copy less, and large reads: 64 KiB bodies went 5x faster than through the read buffer).
     * Never more than that rest, so a pipelined request after it still lands in rbuf. */
    const http_parser *p = &c->parser;
    if (c->state == MR_HTTP_READ && c->in_body && c->coding == 0 && c->fail_status == 0 &&
        c->rstart == c->rend && (p->flags & F_CHUNKED) == 0 && p->content_length > 0 &&
        p->content_length <= c->raw_limit &&
        mr_http_body_reserve(c, c->body_len + (size_t)p->content_length + 1) == 0) {
        size_t n = (size_t)p->content_length;
        *buf = uv_buf_init((char *)c->body + c->body_len, (unsigned)(n < UINT_MAX ? n : UINT_MAX));
        c->direct = true;
        return;
    }
    *buf = uv_buf_init(c->rbuf + c->rend, (unsigned)(MR_HTTP_RBUF - c->rend));
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct mr_http_conn *c = st->data;
    if (n <= 0) {
        c->direct = false;
    }
    if (n < 0) {
        mr_http_conn_close(c);
        return;
    }
    if (c->state == MR_HTTP_LINGER) {
        return; /* discarded */
    }
    if (c->direct) { /* read into the body buffer: on_body sees its bytes in place */
        c->direct = false;
        c->in_drive = true;
        parse(c, buf->base, (size_t)n);
        c->in_drive = false;
        conn_drive(c);
        return;
    }
    c->rend += (size_t)n;
    conn_drive(c);
    if (!c->closing && c->rend == MR_HTTP_RBUF && c->reading) {
        uv_read_stop(st); /* full of pipelined requests: wait until answers were written */
        c->reading = false;
    }
}

static void read_start(struct mr_http_conn *c)
{
    if (c->reading || c->closing) {
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) {
        mr_http_conn_close(c);
        return;
    }
    c->reading = true;
}

static void timer_cb(uv_timer_t *t)
{
    struct mr_http_conn *c = t->data;
    char msg[96];
    switch (c->state) {
    case MR_HTTP_READ:
        snprintf(msg, sizeof(msg), "request not complete within %u ms",
                 c->srv->opts.request_timeout_ms);
        mr_http_conn_fail(c, 408, msg);
        break;
    case MR_HTTP_WRITING:
        MR_LOG_RL(peer_rl(c->srv, c->peer), MR_LOG_WARN, c->srv->log_name,
                  "%s: does not read its answer: connection closed", c->peer);
        mr_http_conn_close(c);
        break;
    default: /* idle keep-alive, or lingering after an error */
        mr_http_conn_close(c);
        break;
    }
}

/* ---- listener ---- */

static void peer_name(struct mr_http_conn *c)
{
    struct sockaddr_storage a;
    int alen = sizeof(a);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&a, &alen) == 0) {
        if (a.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&a, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
            snprintf(c->peer, sizeof(c->peer), "[%s]:%d", ip, port);
            return;
        }
        uv_ip4_name((struct sockaddr_in *)&a, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in *)&a)->sin_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct mr_http_server *s = server->data;
    if (status != 0 || s->stopping) {
        return;
    }
    bool reject = s->nconns >= s->opts.max_connections;
    /* Rejections are answered (503) too, but only so many at once: beyond, a plain close. */
    struct mr_http_conn *c = NULL;
    if (!reject || s->nrejects < 16 + s->opts.max_connections / 8) {
        c = mr_calloc(1, sizeof(*c));
    }
    if (c == NULL) {
        uv_tcp_t *tmp = mr_calloc(1, sizeof(*tmp));
        if (tmp != NULL && uv_tcp_init(s->loop, tmp) == 0) {
            uv_accept(server, (uv_stream_t *)tmp);
            uv_close((uv_handle_t *)tmp, (uv_close_cb)mr_free);
        } else {
            mr_free(tmp);
        }
        MR_LOG_RL(&s->conn_rl, MR_LOG_WARN, s->log_name, "too many connections: one closed");
        return;
    }
    c->srv = s;
    c->rejected = reject;
    reject ? s->nrejects++ : s->nconns++;
    c->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = c;
    }
    s->conns = c;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->handles = 2;
    c->tcp.data = c->timer.data = c;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        mr_http_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    peer_name(c);
    if (reject) {
        char msg[96];
        snprintf(msg, sizeof(msg), "too many connections (at most %u): try again later",
                 s->opts.max_connections);
        mr_http_conn_fail(c, 503, msg);
        return;
    }
    mr_http_conn_timer(c, s->opts.idle_timeout_ms);
    read_start(c);
}

static int parse_listen(const char *listen, struct sockaddr_storage *addr, struct mr_err *err)
{
    char host[128];
    const char *colon = listen != NULL ? strrchr(listen, ':') : NULL;
    if (colon == NULL || (size_t)(colon - listen) >= sizeof(host)) {
        return MR_ERR_SET(err, MR_EINVAL, "listen address '%s' is not HOST:PORT",
                          listen != NULL ? listen : "");
    }
    const char *h = listen;
    size_t hlen = (size_t)(colon - listen);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port < 0 || port > 65535) {
        return MR_ERR_SET(err, MR_EINVAL, "listen address '%s': bad port", listen);
    }
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, sizeof(host), "127.0.0.1");
    } else if (host[0] == '\0' || strcmp(host, "*") == 0) {
        snprintf(host, sizeof(host), "0.0.0.0");
    }
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) != 0 &&
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr) != 0) {
        return MR_ERR_SET(err, MR_EINVAL,
                          "listen address '%s': the host must be an IP address (or localhost)",
                          listen);
    }
    return 0;
}

static void free_unstarted(uv_handle_t *h)
{
    mr_free(h->data);
}

int mr_http_server_start(struct mr_http_server **out, uv_loop_t *loop,
                         const struct mr_http_server_options *opts, mr_http_handler handler,
                         void *arg, struct mr_err *err)
{
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof(addr));
    int rc = parse_listen(opts->listen, &addr, err);
    if (rc != 0) {
        return rc;
    }
    if (opts->max_body_bytes == 0 || opts->max_body_bytes > (size_t)UINT_MAX / 2 ||
        opts->max_connections == 0 || handler == NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "HTTP server on %s: bad limits", opts->listen);
    }
    struct mr_http_server *s = mr_calloc(1, sizeof(*s));
    if (s == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    s->loop = loop;
    s->opts = *opts;
    s->opts.listen = NULL; /* borrowed strings are not kept */
    snprintf(s->log_name, sizeof(s->log_name), "%s",
             opts->log_name != NULL ? opts->log_name : "http");
    s->opts.log_name = s->log_name;
    s->handler = handler;
    s->arg = arg;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    int uvrc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (uvrc == 0) {
        uvrc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    }
    if (uvrc != 0) {
        uv_close((uv_handle_t *)&s->listener, free_unstarted);
        return MR_ERR_SET(err, MR_EIO, "cannot listen on %s: %s", opts->listen, uv_strerror(uvrc));
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

int mr_http_server_port(const struct mr_http_server *s)
{
    return s->port;
}

static void listener_closed(uv_handle_t *h)
{
    struct mr_http_server *s = h->data;
    s->listener_closed = true;
    server_maybe_done(s);
}

void mr_http_server_stop(struct mr_http_server *s, void (*done)(void *arg), void *arg)
{
    if (s == NULL) {
        if (done != NULL) {
            done(arg);
        }
        return;
    }
    if (s->stopping) {
        return;
    }
    s->stopping = true;
    s->done = done;
    s->done_arg = arg;
    for (struct mr_http_conn *c = s->conns; c != NULL; c = c->next) {
        if (c->state == MR_HTTP_WAIT || c->state == MR_HTTP_READ) {
            mr_http_conn_close(c);
        } else {
            c->keep_alive = false; /* closed once its answer was written */
        }
    }
    uv_close((uv_handle_t *)&s->listener, listener_closed);
}
