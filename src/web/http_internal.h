/* Internals of the HTTP server (include/millrace/http_server.h), shared by its files:
 * src/web/http_server.c (listener, connections, reading requests), src/web/http_parse.c
 * (http-parser callbacks, URL and body decoding) and src/web/http_respond.c (the request
 * accessors, answers and streams).
 *
 * One connection holds at most one request at a time (pipelined requests wait, unparsed, in the
 * read buffer), so the request is embedded in the connection, and the connection's memory lives
 * until its request is answered even when the client went away meanwhile. Every buffer belongs
 * to the connection and is reused by its next request; each has a cap.
 */
#ifndef MILLRACE_WEB_HTTP_INTERNAL_H
#define MILLRACE_WEB_HTTP_INTERNAL_H

#include <http_parser.h>
#include <stdbool.h>
#include <zlib.h>

#include "millrace/http_server.h"
#include "millrace/log.h"

#define MR_HTTP_HEAD_MAX    (64u * 1024u) /* request line and headers in all */
#define MR_HTTP_LINE_MAX    (8u * 1024u)  /* one header line, or the request target */
#define MR_HTTP_HEADERS_MAX 100u
#define MR_HTTP_RBUF        (16u * 1024u) /* read buffer: also holds pipelined requests */
#define MR_HTTP_STREAM_CAP  (1024u * 1024u)
#define MR_HTTP_LINGER_MS   2000u /* after an error answer: drain what the client still sends */
#define MR_HTTP_KEEP_BODY   (1024u * 1024u) /* body buffers larger than this are not kept */
#define MR_HTTP_PEERS_RL    32u

enum mr_http_conn_state {
    MR_HTTP_WAIT,    /* keep-alive: no byte of the next request yet (idle timeout) */
    MR_HTTP_READ,    /* a request is being received (request timeout) */
    MR_HTTP_HANDLER, /* delivered to the handler, not answered yet */
    MR_HTTP_WRITING, /* answered; the answer is still being written (timeout) */
    MR_HTTP_STREAM,  /* a streaming answer is open */
    MR_HTTP_LINGER,  /* an error answer was sent: discard input until EOF or a short timer */
};

struct mr_http_hdr {
    uint32_t name, name_len, value, value_len; /* offsets into conn->head */
};

struct mr_http_request {
    const char *method;
    uint32_t url_len;
    uint32_t path;  /* offset of the decoded path in conn->head */
    uint32_t query; /* offset of "key\0value\0" pairs in conn->head */
    uint32_t nquery;
    uint32_t nhdrs;
    struct mr_http_hdr hdrs[MR_HTTP_HEADERS_MAX];
};

struct mr_http_conn {
    struct mr_http_request req; /* first: a request pointer is its connection's */
    struct mr_http_server *srv;
    struct mr_http_conn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq; /* the answer (or an error answer, or a stream head) */
    uv_write_t creq; /* "100 Continue" */
    uv_shutdown_t sreq;
    http_parser parser;
    enum mr_http_conn_state state;
    int handles; /* handles not yet closed */
    bool closing, gone, reading, in_drive, keep_alive, rejected, linger_after, chunked, head_only;
    bool in_body, last_was_value, z_ready, z_done;
    bool direct;     /* the read in progress goes into the body buffer */
    int coding;      /* 0 identity, 1 gzip, 2 deflate */
    uint32_t writes; /* uv_write requests in flight */
    size_t stream_pending;
    bool stream_ended;
    /* the request head: URL, then "name\0value\0" per header, then the decoded path and query */
    char *head;
    size_t head_len, head_cap, line_len;
    /* the decoded body (+1 byte for the NUL) */
    uint8_t *body;
    size_t body_len, body_cap, raw_len, raw_limit;
    z_stream z;
    /* outgoing bytes that did not fit into the socket at once */
    char *out;
    size_t out_cap;
    int fail_status;
    char fail_msg[160];
    char peer[64];
    size_t rstart, rend;
    char rbuf[MR_HTTP_RBUF];
};

struct mr_http_peer_rl {
    char ip[48];
    struct mr_log_ratelimit rl;
};

struct mr_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct mr_http_server_options opts;
    char log_name[64];
    mr_http_handler handler;
    void *arg;
    struct mr_http_conn *conns; /* list of live connections (also those closing) */
    uint32_t nconns, nrejects;
    bool stopping, listener_closed;
    void (*done)(void *arg);
    void *done_arg;
    int port;
    struct mr_http_peer_rl peers[MR_HTTP_PEERS_RL];
    struct mr_log_ratelimit conn_rl;
};

/* http_server.c */
void mr_http_conn_close(struct mr_http_conn *c);
/* (Re)start the connection's one timer; what it means depends on the state. */
void mr_http_conn_timer(struct mr_http_conn *c, uint32_t ms);
/* The answer is fully handed to the kernel: next request, or close. */
void mr_http_conn_answered(struct mr_http_conn *c);
/* The connection's memory may go once its handles are closed and no request is pending. */
void mr_http_conn_maybe_free(struct mr_http_conn *c);
/* Write head+body; returns 0 when all was written at once, 1 when a write is in flight (then
 * mr_http_conn_write_done runs), MR_ECLOSED when the client is gone, MR_ENOMEM. */
int mr_http_conn_send(struct mr_http_conn *c, const char *head, size_t hlen, const void *body,
                      size_t blen);
/* Ensure conn->out can hold cap bytes (keeps the content). */
int mr_http_conn_out_reserve(struct mr_http_conn *c, size_t cap);
/* A write of this connection finished (status < 0: failed). */
void mr_http_conn_write_done(struct mr_http_conn *c, int status);
/* A server-detected error: answer with a text body and close. */
void mr_http_conn_fail(struct mr_http_conn *c, int status, const char *msg);

/* Answer "Expect: 100-continue". */
void mr_http_conn_continue(struct mr_http_conn *c);

/* http_parse.c: callbacks; conn->fail_status/fail_msg say why one stopped the parser. */
extern const http_parser_settings mr_http_parser_settings;

/* Grow the body buffer to hold need bytes (at most max_body_bytes + 2): 0, MR_ETOOBIG, MR_ENOMEM.
 */
int mr_http_body_reserve(struct mr_http_conn *c, size_t need);

/* http_respond.c */
const char *mr_http_status_text(int status);
/* Build the answer head into conn->out; returns its length or a negative MR_E* code. */
long mr_http_head_build(struct mr_http_conn *c, int status, const char *content_type,
                        const char *extra_headers, bool chunked, size_t len);

#endif
