/* The HTTP endpoint for metrics and the JSON API: GET /metrics in Prometheus text format and
 * GET routes answering JSON, on the loop thread (src/web/http_metrics.c). */
#ifndef MILLRACE_HTTP_METRICS_H
#define MILLRACE_HTTP_METRICS_H

#include <uv.h>

#include "millrace/error.h"
#include "millrace/metrics.h"

struct mr_http_metrics;

/* Listen on `listen` ("HOST:PORT", an IP address or localhost; port 0 picks a free one).
 * Returns 0, MR_EINVAL (bad address) or MR_EIO (cannot bind/listen: err says why). metrics is
 * borrowed and must outlive the server. */
int mr_http_metrics_start(struct mr_http_metrics **out, uv_loop_t *loop, const char *listen,
                          struct mr_metrics *metrics, struct mr_err *err);
/* Serve GET `path` (a string that outlives the server) with the JSON document render(arg)
 * returns: a string from malloc, freed after sending (NULL: 500). Render runs on the loop
 * thread. MR_EEXIST: path taken or too many routes (8). */
int mr_http_metrics_route_json(struct mr_http_metrics *m, const char *path,
                               char *(*render)(void *arg), void *arg);
/* The port actually bound (useful with port 0). */
int mr_http_metrics_port(const struct mr_http_metrics *s);
/* Close the listener and every connection; done(arg) (may be NULL) runs when all handles are
 * closed, and the server is freed. NULL s: done runs at once. */
void mr_http_metrics_stop(struct mr_http_metrics *s, void (*done)(void *arg), void *arg);

#endif
