/* The request as the handler sees it, and its answer: one mr_http_respond, or a stream
 * (chunked transfer encoding) for server-sent events and the like. Part of the HTTP server
 * (http_server.c; structures in http_internal.h).
 *
 * An answer is first offered to the socket directly (uv_try_write of head and body from where
 * they are); only what the kernel did not take is copied, into the connection's reused output
 * buffer. A stream chunk that does not fit is copied into one allocation of its own; the bytes
 * waiting that way are capped at 1 MiB per client (MR_EAGAIN beyond).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "millrace/alloc.h"
#include "web/http_internal.h"

static struct mr_http_conn *conn_of(const struct mr_http_request *r)
{
    return (struct mr_http_conn *)(void *)r; /* the request is the connection's first member */
}

const char *mr_http_request_method(const struct mr_http_request *r)
{
    return r->method != NULL ? r->method : "";
}

const char *mr_http_request_path(const struct mr_http_request *r)
{
    return conn_of(r)->head + r->path;
}

const char *mr_http_request_query(const struct mr_http_request *r, const char *key)
{
    const char *p = conn_of(r)->head + r->query;
    for (uint32_t i = 0; i < r->nquery; i++) {
        const char *value = p + strlen(p) + 1;
        if (strcmp(p, key) == 0) {
            return value;
        }
        p = value + strlen(value) + 1;
    }
    return NULL;
}

const char *mr_http_request_header(const struct mr_http_request *r, const char *name)
{
    const char *head = conn_of(r)->head;
    size_t n = strlen(name);
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        const struct mr_http_hdr *h = &r->hdrs[i];
        if (h->name_len == n && strncasecmp(head + h->name, name, n) == 0) {
            return head + h->value;
        }
    }
    return NULL;
}

const uint8_t *mr_http_request_body(const struct mr_http_request *r, size_t *len)
{
    static const uint8_t empty[1] = {0};
    const struct mr_http_conn *c = conn_of(r);
    *len = c->body != NULL ? c->body_len : 0;
    return c->body != NULL ? c->body : empty;
}

const char *mr_http_request_peer(const struct mr_http_request *r)
{
    return conn_of(r)->peer;
}

int mr_http_request_gone(const struct mr_http_request *r)
{
    return conn_of(r)->gone ? 1 : 0;
}

const char *mr_http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 507:
        return "Insufficient Storage";
    default:
        return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

static size_t put(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return n;
}

long mr_http_head_build(struct mr_http_conn *c, int status, const char *content_type,
                        const char *extra_headers, bool stream, size_t len)
{
    size_t tlen = content_type != NULL ? strlen(content_type) : 0;
    size_t elen = extra_headers != NULL ? strlen(extra_headers) : 0;
    if (mr_http_conn_out_reserve(c, 192 + tlen + elen) != 0) {
        return MR_ENOMEM;
    }
    char *o = c->out;
    size_t n = (size_t)snprintf(o, 64, "HTTP/1.1 %d ", status);
    n += put(o + n, mr_http_status_text(status));
    n += put(o + n, "\r\n");
    if (content_type != NULL) {
        n += put(o + n, "Content-Type: ");
        memcpy(o + n, content_type, tlen);
        n += tlen;
        n += put(o + n, "\r\n");
    }
    if (stream) {
        if (c->chunked) {
            n += put(o + n, "Transfer-Encoding: chunked\r\n");
        }
    } else if (status >= 200 && status != 204 && status != 304) {
        n += (size_t)snprintf(o + n, 48, "Content-Length: %zu\r\n", len);
    }
    if (elen > 0) {
        memcpy(o + n, extra_headers, elen);
        n += elen;
        if (elen < 2 || memcmp(extra_headers + elen - 2, "\r\n", 2) != 0) {
            n += put(o + n, "\r\n");
        }
    }
    if (!c->keep_alive) {
        n += put(o + n, "Connection: close\r\n");
    }
    n += put(o + n, "\r\n");
    return (long)n;
}

/* The request ends without an answer reaching the client (gone, or no memory). */
static int finish_gone(struct mr_http_conn *c, int rc)
{
    c->state = MR_HTTP_WAIT;
    mr_http_conn_close(c);
    mr_http_conn_maybe_free(c);
    return rc;
}

int mr_http_respond(struct mr_http_request *r, int status, const char *content_type,
                    const char *extra_headers, const void *body, size_t len)
{
    struct mr_http_conn *c = conn_of(r);
    if (c->state != MR_HTTP_HANDLER) {
        return MR_EINVAL; /* answered twice: a bug in the caller */
    }
    if (c->gone || c->closing) {
        return finish_gone(c, MR_ECLOSED);
    }
    long hlen = mr_http_head_build(c, status, content_type, extra_headers, false, len);
    if (hlen < 0) {
        return finish_gone(c, MR_ENOMEM);
    }
    c->state = MR_HTTP_WRITING;
    bool with_body = !c->head_only && len > 0;
    int rc =
        mr_http_conn_send(c, c->out, (size_t)hlen, with_body ? body : NULL, with_body ? len : 0);
    if (rc == 0) {
        mr_http_conn_answered(c);
        return 0;
    }
    if (rc == 1) {
        /* A client that does not read its answer is cut off after the request timeout. */
        mr_http_conn_timer(c, c->srv->opts.request_timeout_ms);
        return 0;
    }
    return finish_gone(c, MR_ECLOSED);
}

int mr_http_stream_begin(struct mr_http_request *r, int status, const char *content_type,
                         const char *extra_headers)
{
    struct mr_http_conn *c = conn_of(r);
    if (c->state != MR_HTTP_HANDLER) {
        return MR_EINVAL;
    }
    c->state = MR_HTTP_STREAM;
    c->stream_ended = false;
    c->stream_pending = 0;
    if (c->gone || c->closing) {
        return MR_ECLOSED;
    }
    /* HTTP/1.0 has no chunks: the body ends where the connection does. */
    c->chunked = c->parser.http_minor >= 1 && !c->head_only;
    if (!c->chunked) {
        c->keep_alive = false;
    }
    long hlen = mr_http_head_build(c, status, content_type, extra_headers, true, 0);
    if (hlen < 0) {
        mr_http_conn_close(c);
        return MR_ECLOSED;
    }
    int rc = mr_http_conn_send(c, c->out, (size_t)hlen, NULL, 0);
    return rc < 0 ? MR_ECLOSED : 0;
}

struct chunk_block {
    uv_write_t req;
    struct mr_http_conn *c;
    size_t size;
    char data[];
};

static void block_done(uv_write_t *w, int status)
{
    struct chunk_block *b = (struct chunk_block *)(void *)w;
    struct mr_http_conn *c = b->c;
    c->stream_pending -= b->size;
    mr_free(b);
    mr_http_conn_write_done(c, status);
}

/* Send the pieces: directly if the socket takes them, else one copied block. */
static int stream_send(struct mr_http_conn *c, uv_buf_t *bufs, unsigned nbufs)
{
    size_t total = 0, done = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        total += bufs[i].len;
    }
    if (c->writes == 0) {
        int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
        if (n < 0 && n != UV_EAGAIN) {
            mr_http_conn_close(c);
            return MR_ECLOSED;
        }
        done = n > 0 ? (size_t)n : 0;
    }
    if (done == total) {
        return 0;
    }
    struct chunk_block *b = mr_malloc(sizeof(*b) + total - done);
    if (b == NULL) {
        return MR_EAGAIN; /* the caller drops or retries: the stream stays consistent */
    }
    size_t at = 0, skip = done;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t len = bufs[i].len;
        size_t s = skip < len ? skip : len;
        skip -= s;
        memcpy(b->data + at, bufs[i].base + s, len - s);
        at += len - s;
    }
    b->c = c;
    b->size = at;
    uv_buf_t one = uv_buf_init(b->data, (unsigned)at);
    if (uv_write(&b->req, (uv_stream_t *)&c->tcp, &one, 1, block_done) != 0) {
        mr_free(b);
        mr_http_conn_close(c);
        return MR_ECLOSED;
    }
    c->writes++;
    c->stream_pending += at;
    return 0;
}

int mr_http_stream_write(struct mr_http_request *r, const void *data, size_t len)
{
    struct mr_http_conn *c = conn_of(r);
    if (c->state != MR_HTTP_STREAM || c->stream_ended) {
        return MR_EINVAL;
    }
    if (c->gone || c->closing) {
        return MR_ECLOSED;
    }
    if (len == 0 || c->head_only) {
        return 0; /* an empty chunk would end the stream */
    }
    if (c->stream_pending + len > MR_HTTP_STREAM_CAP) {
        return MR_EAGAIN;
    }
    char pre[24];
    int plen = snprintf(pre, sizeof(pre), "%zx\r\n", len);
    uv_buf_t bufs[3] = {uv_buf_init(pre, (unsigned)plen), uv_buf_init((char *)data, (unsigned)len),
                        uv_buf_init((char *)"\r\n", 2)};
    if (!c->chunked) {
        return stream_send(c, &bufs[1], 1);
    }
    return stream_send(c, bufs, 3);
}

void mr_http_stream_end(struct mr_http_request *r)
{
    struct mr_http_conn *c = conn_of(r);
    if (c->state != MR_HTTP_STREAM || c->stream_ended) {
        return;
    }
    c->stream_ended = true;
    if (!c->gone && !c->closing && c->chunked) {
        uv_buf_t last = uv_buf_init((char *)"0\r\n\r\n", 5);
        if (stream_send(c, &last, 1) != 0) {
            mr_http_conn_close(c);
        }
    }
    if (c->writes == 0) {
        mr_http_conn_answered(c);
    }
}
