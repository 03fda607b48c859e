/* The JSON documents of the HTTP API (/api/v1, docs/API.md), each rendered by one function
 * for mr_http_metrics_route_json (src/web/api_*.c). All run on the loop thread and return a
 * string from malloc (free it with free), or NULL when out of memory. */
#ifndef MILLRACE_API_H
#define MILLRACE_API_H

/* GET /api/v1/outputs: {"outputs": [{name, type, state, delivered, lag_records, ...}]}.
 * engine: the struct mr_engine running the configuration. */
char *mr_api_outputs_json(void *engine);

#endif
