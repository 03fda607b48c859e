/* `GET /metrics` (Prometheus text format), `GET /` (a pointer to it) and the JSON routes of the
 * HTTP API (docs/API.md, added with mr_http_metrics_route_json) at the configuration's
 * `http.listen`, served by the shared HTTP server (src/web/http_server.c). The dashboard (a
 * later issue) grows from here; until then this is how progress, lag and errors are read by
 * Prometheus or by a person with curl.
 *
 * Only GET (and HEAD) are served: other methods get 405, other paths 404. Small limits, since
 * nothing here takes a body: at most 64 connections, request bodies up to 64 KiB, a request must
 * arrive within 5 s. Connections are kept alive (Prometheus scrapes over one connection).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/http_metrics.h"
#include "millrace/http_server.h"

#define MAX_CONNS       64
#define MAX_BODY        (64u * 1024u)
#define REQUEST_TIMEOUT 5000
#define RENDER_START    (64u * 1024u)
#define RENDER_MAX      (64u * 1024u * 1024u)
#define MAX_ROUTES      8

struct json_route {
    const char *path;
    char *(*render)(void *arg);
    void *arg;
};

struct mr_http_metrics {
    struct mr_http_server *srv;
    struct mr_metrics *metrics;
    char *buf; /* the rendered exposition, reused by the next scrape */
    size_t cap;
    void (*done)(void *arg);
    void *done_arg;
    struct json_route routes[MAX_ROUTES];
    size_t nroutes;
};

static void text(struct mr_http_request *r, int status, const char *extra, const char *msg)
{
    mr_http_respond(r, status, "text/plain; charset=utf-8", extra, msg, strlen(msg));
}

static void serve_metrics(struct mr_http_metrics *m, struct mr_http_request *r)
{
    for (int tries = 0; tries < 4; tries++) {
        if (m->buf == NULL) {
            m->buf = mr_malloc(m->cap);
            if (m->buf == NULL) {
                break;
            }
        }
        size_t needed = 0;
        long n = mr_metrics_render(m->metrics, m->buf, m->cap, &needed);
        if (n >= 0) {
            mr_http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, m->buf,
                            (size_t)n);
            return;
        }
        if (needed + 4096 > RENDER_MAX) {
            break;
        }
        mr_free(m->buf); /* grow: the next try allocates what the registry needs */
        m->buf = NULL;
        m->cap = needed + 4096;
    }
    text(r, 500, NULL, "cannot render metrics\n");
}

static const struct json_route *route_find(const struct mr_http_metrics *m, const char *path)
{
    for (size_t i = 0; i < m->nroutes; i++) {
        if (strcmp(m->routes[i].path, path) == 0) {
            return &m->routes[i];
        }
    }
    return NULL;
}

static void serve_json(const struct json_route *jr, struct mr_http_request *r)
{
    char *body = jr->render(jr->arg);
    if (body == NULL) {
        const char *msg = "{\"error\":\"cannot render the answer (out of memory?)\"}\n";
        mr_http_respond(r, 500, "application/json", NULL, msg, strlen(msg));
        return;
    }
    mr_http_respond(r, 200, "application/json", "Cache-Control: no-store\r\n", body, strlen(body));
    free(body);
}

static void handle(void *arg, struct mr_http_request *r)
{
    struct mr_http_metrics *m = arg;
    const char *method = mr_http_request_method(r);
    const char *path = mr_http_request_path(r);
    const struct json_route *jr = route_find(m, path);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        text(r, 405, "Allow: GET, HEAD\r\n", "only GET is served here\n");
    } else if (jr != NULL) {
        serve_json(jr, r);
    } else if (strcmp(path, "/metrics") == 0) {
        serve_metrics(m, r);
    } else if (strcmp(path, "/") == 0) {
        text(r, 200, NULL, "millrace: metrics at /metrics (Prometheus text format)\n");
    } else {
        text(r, 404, NULL, "not found: try /metrics\n");
    }
}

int mr_http_metrics_start(struct mr_http_metrics **out, uv_loop_t *loop, const char *listen,
                          struct mr_metrics *metrics, struct mr_err *err)
{
    struct mr_http_metrics *m = mr_calloc(1, sizeof(*m));
    if (m == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    m->metrics = metrics;
    m->cap = RENDER_START;
    struct mr_http_server_options o;
    mr_http_server_options_init(&o);
    o.listen = listen;
    o.log_name = "http";
    o.max_body_bytes = MAX_BODY;
    o.max_connections = MAX_CONNS;
    o.request_timeout_ms = REQUEST_TIMEOUT;
    int rc = mr_http_server_start(&m->srv, loop, &o, handle, m, err);
    if (rc != 0) {
        mr_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int mr_http_metrics_route_json(struct mr_http_metrics *m, const char *path,
                               char *(*render)(void *arg), void *arg)
{
    if (m->nroutes == MAX_ROUTES || route_find(m, path) != NULL) {
        return MR_EEXIST;
    }
    m->routes[m->nroutes++] = (struct json_route){.path = path, .render = render, .arg = arg};
    return 0;
}

int mr_http_metrics_port(const struct mr_http_metrics *s)
{
    return mr_http_server_port(s->srv);
}

static void stopped(void *arg)
{
    struct mr_http_metrics *m = arg;
    void (*done)(void *) = m->done;
    void *done_arg = m->done_arg;
    mr_free(m->buf);
    mr_free(m);
    if (done != NULL) {
        done(done_arg);
    }
}

void mr_http_metrics_stop(struct mr_http_metrics *s, void (*done)(void *arg), void *arg)
{
    if (s == NULL) {
        if (done != NULL) {
            done(arg);
        }
        return;
    }
    s->done = done;
    s->done_arg = arg;
    mr_http_server_stop(s->srv, stopped, s);
}
