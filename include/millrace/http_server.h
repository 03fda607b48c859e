/* An HTTP/1.1 server on a libuv loop (src/web/http_server.c), shared by everything millrace
 * serves over HTTP: /metrics, the HTTP ingest input, the `receive` input of store-and-forward,
 * and the dashboard API.
 *
 * Why our own layer on the loop (with Debian's http-parser) rather than libmicrohttpd: an input
 * answers a POST only after the journal committed its records, which is an event on the loop
 * thread; on the loop, a request can simply wait for it (no thread hand-off, no suspended
 * connections), and server-sent events are writes on the same loop.
 *
 * Every call is made on the loop thread. Connections are kept alive (HTTP/1.1 keep-alive,
 * pipelined requests answered in order: the next request of a connection is read only after the
 * previous one was answered). Limits: request head (8 KiB per header line, 64 KiB in all), body
 * (options.max_body_bytes, after gzip/deflate decoding), connections; a client that is too slow
 * sending a request is cut off. Errors the server detects itself are answered with a short
 * text body that says what was wrong (400 malformed request, 408 too slow, 413 body too large,
 * 415 unsupported Content-Encoding, 431 head too large, 503 too many connections).
 */
#ifndef MILLRACE_HTTP_SERVER_H
#define MILLRACE_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "millrace/error.h"

struct mr_http_server;
struct mr_http_request;

struct mr_http_server_options {
    const char *listen;          /* "HOST:PORT": IPv4/IPv6 literal or localhost; port 0 = pick */
    const char *log_name;        /* log component, e.g. "http" or "inputs.plant_http" */
    size_t max_body_bytes;       /* default 32 MiB; larger bodies get 413 */
    uint32_t max_connections;    /* default 256; beyond: 503 and close */
    uint32_t request_timeout_ms; /* a started request must be complete within this: 30000 */
    uint32_t idle_timeout_ms;    /* keep-alive connection with no request: closed after 60000 */
};

void mr_http_server_options_init(struct mr_http_server_options *o);

/* Called once per complete request (head and decoded body). The handler, now or later, answers
 * with exactly one mr_http_respond (or a stream: mr_http_stream_begin ... mr_http_stream_end).
 * The request stays valid until then, even if the client went away meanwhile (the answer is
 * then discarded). */
typedef void (*mr_http_handler)(void *arg, struct mr_http_request *req);

/* Bind and listen. Returns 0, MR_EINVAL (bad address; err says why) or MR_EIO (cannot bind). */
int mr_http_server_start(struct mr_http_server **out, uv_loop_t *loop,
                         const struct mr_http_server_options *opts, mr_http_handler handler,
                         void *arg, struct mr_err *err);
/* The port actually bound. */
int mr_http_server_port(const struct mr_http_server *s);
/* Stop listening and close idle connections; connections with a request not yet answered are
 * closed as soon as it is answered. done(arg) (may be NULL) runs once every handle is closed;
 * then the server is freed. NULL s: done runs at once. */
void mr_http_server_stop(struct mr_http_server *s, void (*done)(void *arg), void *arg);

/* ---- the request ---- */

const char *mr_http_request_method(const struct mr_http_request *r); /* "GET", "POST", ... */
/* Path without the query, percent-decoded ("/write"). */
const char *mr_http_request_path(const struct mr_http_request *r);
/* Query parameter `key`, percent-decoded ('+' is a space), or NULL when absent. Valid until the
 * request is answered. */
const char *mr_http_request_query(const struct mr_http_request *r, const char *key);
/* Header value (name compared without case; surrounding spaces trimmed), or NULL. */
const char *mr_http_request_header(const struct mr_http_request *r, const char *name);
/* Body after Content-Encoding (gzip, deflate) was undone; *len its length. Never NULL (an empty
 * body is ""), and one extra NUL byte follows it, so text parsers may rely on termination. */
const uint8_t *mr_http_request_body(const struct mr_http_request *r, size_t *len);
/* Peer address as text ("127.0.0.1:51234"), for logs. */
const char *mr_http_request_peer(const struct mr_http_request *r);
/* Nonzero once the client has closed the connection (the answer will be discarded). */
int mr_http_request_gone(const struct mr_http_request *r);

/* Answer: status (200, 204, 400, ...), content type (NULL for none; body must then be empty),
 * extra_headers ("Name: value\r\n" lines, or NULL), body (copied). Returns 0, or MR_ECLOSED
 * when the client is gone (the request is finished either way: do not touch r again). */
int mr_http_respond(struct mr_http_request *r, int status, const char *content_type,
                    const char *extra_headers, const void *body, size_t len);

/* Streaming answer (chunked transfer encoding), e.g. server-sent events: begin once, write any
 * number of times, end once (r is finished after end). write returns 0, MR_EAGAIN when more
 * than 1 MiB is waiting to be sent to this client (drop or coalesce: a slow client never grows
 * memory without bound), or MR_ECLOSED when the client is gone (call end). */
int mr_http_stream_begin(struct mr_http_request *r, int status, const char *content_type,
                         const char *extra_headers);
int mr_http_stream_write(struct mr_http_request *r, const void *data, size_t len);
void mr_http_stream_end(struct mr_http_request *r);

#endif
