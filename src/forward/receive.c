/* Input `receive`: the central end of store-and-forward. Edge millraces POST batches of their
 * journal here (the `forward` output; wire format in src/forward/wire.h); each batch is kept in
 * this input's journal topic exactly once and answered only after the journal committed it.
 *
 *   inputs:
 *     sites:
 *       type: receive
 *       service_address: 0.0.0.0:8190   # where edges send (default 127.0.0.1:8190)
 *       token: ${FORWARD_TOKEN}          # edges must send "Authorization: Bearer <token>"
 *       nodes: [press-shop, paint-shop]  # optional: only these edges are accepted
 *
 * Exactly once: a batch names its origin (node, topic, partition) and every record's offset
 * there; the host's emit_relayed drops records this journal already holds and marks the rest
 * with their origin (src/engine/relay.h), so a batch sent again after a lost answer, an edge
 * crash or a central crash is harmless. Answers:
 *   200 {"kept": n, "duplicates": d}   after the journal commit of the kept records
 *   400 malformed batch (what and where; the edge stops forwarding: a bug, not an outage)
 *   401 missing or wrong token        403 node not in `nodes`
 *   404 other path                    405 not POST
 *   413 body too large (server)       503 journal busy or stopping (the edge retries)
 * Records keep their asset, signal, time, value, quality and tags: the central pipelines see
 * what the edge's pipelines wrote.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "forward/wire.h"
#include "inputs/commit_wait.h"
#include "millrace/alloc.h"
#include "millrace/http_server.h"
#include "millrace/log.h"
#include "millrace/plugin.h"

#define DEFAULT_PATH "/millrace/forward/v1"
#define MAX_PENDING  1024
#define STOP_WAIT_MS 2000
#define REPLY_CAP    128

extern const struct mr_plugin mr_input_receive;

struct receive_conf {
    char *service_address;
    char *path;
    char *token;
    struct mr_strlist nodes;
    uint64_t max_body_size;
};

struct receive_ctx {
    const struct receive_conf *conf;
    struct mr_input_host *host;
    struct mr_plugin_counters counters;
    struct mr_log_ratelimit rl;
    struct mr_http_server *server;
    struct mr_commit_wait wait; /* answers waiting for the journal commit */
    bool wait_ready, stopping;
    int open_handles;
    struct mr_record *recs; /* one batch, reused (capacity MR_FWD_MAX_RECORDS) */
    int64_t *offsets;
    struct mr_names_memo memo;
};

static const struct mr_field receive_fields[] = {
    {.name = "service_address",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct receive_conf, service_address),
     .def = "127.0.0.1:8190",
     .help = "HOST:PORT to listen on for edge millraces (0.0.0.0:8190 for every interface; "
             "then set a token)."},
    {.name = "path",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct receive_conf, path),
     .def = DEFAULT_PATH,
     .help = "URL path the forward outputs POST to."},
    {.name = "token",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct receive_conf, token),
     .help = "When set, every request must carry 'Authorization: Bearer <token>' (the "
             "forward output's `token`)."},
    {.name = "nodes",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct receive_conf, nodes),
     .help = "Node names accepted (the forward output's `node`); empty accepts any."},
    {.name = "max_body_size",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct receive_conf, max_body_size),
     .def = "64MiB",
     .min = "64KiB",
     .max = "1GiB",
     .help = "Largest batch accepted, after decompression (larger ones get 413)."},
    {0},
};

static void respond_text(struct receive_ctx *c, struct mr_http_request *req, int status,
                         const char *msg)
{
    if (status >= 400) {
        mr_counter_add(c->counters.errors, 1);
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name, "%d to %s: %s", status,
                  mr_http_request_peer(req), msg);
    }
    const char *extra = status == 503 ? "Retry-After: 1\r\n" : NULL;
    mr_http_respond(req, status, "text/plain; charset=utf-8", extra, msg, strlen(msg));
}

static void release(void *arg, struct mr_commit_wait_item item, bool durable)
{
    struct receive_ctx *c = arg;
    if (!durable) {
        respond_text(c, item.ptr, 503, "millrace is stopping; send this batch again\n");
        return;
    }
    char body[REPLY_CAP];
    int n = snprintf(body, sizeof(body), "{\"kept\":%" PRIu32 ",\"duplicates\":%" PRIu32 "}",
                     item.a, item.b);
    mr_http_respond(item.ptr, 200, "application/json", NULL, body, (size_t)n);
}

static bool authorised(struct receive_ctx *c, struct mr_http_request *req)
{
    if (c->conf->token == NULL || c->conf->token[0] == '\0') {
        return true;
    }
    const char *h = mr_http_request_header(req, "Authorization");
    const char *prefix = "Bearer ";
    size_t pl = strlen(prefix);
    return h != NULL && strncmp(h, prefix, pl) == 0 && strcmp(h + pl, c->conf->token) == 0;
}

static bool node_allowed(const struct receive_conf *conf, const char *node)
{
    if (conf->nodes.n == 0) {
        return true;
    }
    for (size_t i = 0; i < conf->nodes.n; i++) {
        if (strcmp(conf->nodes.items[i], node) == 0) {
            return true;
        }
    }
    return false;
}

/* Decode every record of the batch into c->recs/c->offsets; 0 or 400's message in err. */
static int decode_records(struct receive_ctx *c, struct mr_fwd_batch *b, size_t *n,
                          struct mr_err *err)
{
    int64_t offset;
    const uint8_t *value;
    size_t len;
    *n = 0;
    while (mr_fwd_next(b, &offset, &value, &len) == 0) {
        struct mr_err e;
        mr_err_clear(&e);
        if (*n >= MR_FWD_MAX_RECORDS ||
            mr_record_decode_memo(&c->recs[*n], c->host->names, &c->memo, value, len, &e) != 0) {
            return MR_ERR_SET(err, MR_ECORRUPT, "record at offset %" PRId64 ": %s", offset,
                              e.msg[0] != '\0' ? e.msg : "too many records");
        }
        c->offsets[(*n)++] = offset;
    }
    return 0;
}

static void handle_batch(struct receive_ctx *c, struct mr_http_request *req)
{
    size_t len;
    const uint8_t *body = mr_http_request_body(req, &len);
    struct mr_fwd_batch b;
    struct mr_err err;
    mr_err_clear(&err);
    size_t n = 0;
    if (mr_fwd_decode(&b, body, len, &err) != 0 || decode_records(c, &b, &n, &err) != 0) {
        char msg[sizeof(err.msg) + 32];
        snprintf(msg, sizeof(msg), "malformed batch: %s\n", err.msg);
        respond_text(c, req, 400, msg);
        return;
    }
    if (!node_allowed(c->conf, b.node)) {
        char msg[320];
        snprintf(msg, sizeof(msg), "node '%s' is not in this receiver's `nodes`\n", b.node);
        respond_text(c, req, 403, msg);
        return;
    }
    if (mr_commit_wait_full(&c->wait)) {
        respond_text(c, req, 503, "too many batches waiting for the journal\n");
        return;
    }
    mr_counter_add(c->counters.records_in, n);
    struct mr_record_origin origin = {
        .node = b.node, .topic = b.topic, .partition = b.partition, .offsets = c->offsets};
    size_t dropped = 0;
    int rc = c->host->emit_relayed(c->host, c->recs, n, &origin, &dropped);
    if (rc != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "journal %s: %s; send this batch again\n",
                 rc == MR_EAGAIN ? "busy" : "failed", mr_strerror(rc));
        respond_text(c, req, 503, msg);
        return;
    }
    mr_counter_add(c->counters.records_out, n - dropped);
    mr_commit_wait_push(&c->wait, (struct mr_commit_wait_item){.ptr = req,
                                                               .a = (uint32_t)(n - dropped),
                                                               .b = (uint32_t)dropped});
}

static void on_request(void *arg, struct mr_http_request *req)
{
    struct receive_ctx *c = arg;
    if (c->stopping) {
        respond_text(c, req, 503, "millrace is stopping\n");
    } else if (strcmp(mr_http_request_path(req), c->conf->path) != 0) {
        respond_text(c, req, 404, "not found: batches go to the receive input's `path`\n");
    } else if (strcmp(mr_http_request_method(req), "POST") != 0) {
        respond_text(c, req, 405, "use POST\n");
    } else if (!authorised(c, req)) {
        respond_text(c, req, 401, "missing or wrong bearer token\n");
    } else {
        handle_batch(c, req);
    }
}

static int receive_init(void *ctx, const void *conf, struct mr_input_host *host, struct mr_err *err)
{
    struct receive_ctx *c = ctx;
    c->conf = conf;
    c->host = host;
    if (host->emit_relayed == NULL) {
        return MR_ERR_SET(err, MR_ENOTSUP, "this host cannot keep relayed records");
    }
    c->recs = mr_calloc(MR_FWD_MAX_RECORDS, sizeof(*c->recs));
    c->offsets = mr_calloc(MR_FWD_MAX_RECORDS, sizeof(*c->offsets));
    if (c->recs == NULL || c->offsets == NULL) {
        mr_free(c->recs);
        mr_free(c->offsets);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    return mr_plugin_counters_register(host->metrics, &mr_input_receive, host->name, &c->counters);
}

static int receive_start(void *ctx, struct mr_err *err)
{
    struct receive_ctx *c = ctx;
    struct mr_http_server_options o;
    mr_http_server_options_init(&o);
    o.listen = c->conf->service_address;
    o.log_name = c->host->name;
    o.max_body_bytes = (size_t)c->conf->max_body_size;
    int rc = mr_commit_wait_init(&c->wait, c->host, MAX_PENDING, release, c);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "out of memory");
    }
    c->wait_ready = true;
    c->open_handles = 1;
    rc = mr_http_server_start(&c->server, c->host->loop, &o, on_request, c, err);
    if (rc == 0) {
        MR_LOG_INFO(c->host->name, "receiving forwarded batches at http://%s%s",
                    c->conf->service_address, c->conf->path);
    }
    return rc;
}

static void closed_one(void *arg)
{
    struct receive_ctx *c = arg;
    if (--c->open_handles == 0) {
        c->host->stopped(c->host);
    }
}

static void server_stopped(void *arg)
{
    struct receive_ctx *c = arg;
    c->server = NULL;
    closed_one(c);
}

static void receive_stop(void *ctx)
{
    struct receive_ctx *c = ctx;
    c->stopping = true;
    if (!c->wait_ready) {
        c->host->stopped(c->host);
        return;
    }
    if (c->server != NULL) {
        c->open_handles++;
        mr_http_server_stop(c->server, server_stopped, c);
    }
    /* What becomes durable within STOP_WAIT_MS is answered 200, the rest 503 (the edge sends
     * it again: harmless, duplicates are dropped). */
    mr_commit_wait_stop(&c->wait, STOP_WAIT_MS, closed_one, c);
}

static void receive_fini(void *ctx)
{
    struct receive_ctx *c = ctx;
    mr_free(c->recs);
    mr_free(c->offsets);
    if (c->wait_ready) {
        mr_commit_wait_fini(&c->wait);
    }
}

const struct mr_plugin mr_input_receive = {
    .kind = MR_PLUGIN_INPUT,
    .name = "receive",
    .help = "The central end of store-and-forward: keeps the journal batches that edge "
            "millraces send with their `forward` output, exactly once, answering each only "
            "after the journal committed it.",
    .conf = {.fields = receive_fields, .size = sizeof(struct receive_conf)},
    .ctx_size = sizeof(struct receive_ctx),
    .input = {.init = receive_init,
              .start = receive_start,
              .stop = receive_stop,
              .fini = receive_fini},
};
