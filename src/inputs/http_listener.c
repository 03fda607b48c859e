/* Input `http_listener`: HTTP ingest. InfluxDB clients and Telegraf (its influxdb output) post
 * line protocol to /write; other clients post JSON records. A request is answered only after
 * its records are committed to the journal.
 *
 *   inputs:
 *     plant_http:
 *       type: http_listener
 *       service_address: "0.0.0.0:8186"        # default 127.0.0.1:8186
 *       paths: ["/api/v1/ingest"]              # JSON ingest path(s)
 *       asset: site1                           # line protocol: put in front of the asset path
 *       asset_tags: [line, machine]            # line protocol: tags naming the asset path
 *       database_tag: db                       # keep ?db= (or ?bucket=) as this tag
 *       max_body_size: 32MiB
 *       max_records: 100000                    # per request
 *       read_timeout: 10s
 *       basic_username: telegraf               # or token: ${INGEST_TOKEN}
 *       basic_password: ${INGEST_PASSWORD}
 *
 * Endpoints (docs/EDGE_HTTP.md has the details and curl examples):
 *   POST /write?db=..&precision=ns|us|ms|s (n, u too)   line protocol -> 204 No Content
 *   POST /api/v2/write?bucket=..&org=..&precision=..    the same
 *   GET|HEAD /ping                                      204 (no credentials needed)
 *   POST <paths>                                        JSON object or array -> 200 {"accepted":n}
 * gzip/deflate bodies are inflated by the server (src/web/http_server.c), which also answers
 * 413 for bodies over max_body_size. Errors: 400 with {"error": "line 3: ..."} naming the first
 * bad lines (or JSON items) and counting them, 401, 404, 405, 413 (more than max_records),
 * 503 with Retry-After when the journal pushes back or millrace is stopping, 500 when the
 * journal failed.
 *
 * All or nothing per request: the body is decoded completely (http_listener_decode.c) before
 * anything is kept, and its records are handed to the journal in ONE emit call, so a request
 * that was refused (4xx, 503) kept nothing and may be sent again as it is.
 *
 * Answer after commit: each request whose records were emitted waits in a FIFO with the number
 * of the emit call that carried them; host->durable says how many emit calls the journal has
 * committed, and a 1 ms timer (running only while something waits) answers the requests it
 * covers. A host without durable (tests) gets the answer right after the emit. On stop the
 * server stops listening, waiting requests get up to STOP_WAIT_MS to become durable, the rest
 * are answered 503 (their records may still be committed: a client that resends them then
 * duplicates them; at least once across a stop, exactly once otherwise).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "inputs/commit_wait.h"
#include "inputs/http_listener.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/http_server.h"
#include "millrace/log.h"
#include "millrace/plugin.h"

#define STOP_WAIT_MS 2000
#define AUTH_MAX     1024
#define ERR_BODY_MAX 4096

extern const struct mr_plugin mr_input_http_listener;

enum answer_kind {
    ANSWER_WRITE = 0, /* 204, as InfluxDB */
    ANSWER_JSON = 1,  /* 200 {"accepted": n} */
};

enum status_class { CLASS_2XX = 0, CLASS_4XX = 1, CLASS_5XX = 2, NCLASSES = 3 };

struct hl_ctx {
    const struct hl_conf *conf;
    struct mr_input_host *host;
    struct mr_plugin_counters counters;
    struct mr_counter *m_requests[NCLASSES];
    struct mr_counter *m_bytes;
    struct mr_log_ratelimit rl;
    struct hl_decoder dec;
    struct mr_http_server *server;
    struct mr_commit_wait wait; /* answers waiting for the journal commit */
    bool wait_ready;
    int open; /* server and wait timer not yet closed */
    bool stopping, failed, stopped_reported;
    char basic[AUTH_MAX]; /* "base64(user:password)" expected after "Basic " */
};

static void hl_conf_check(void *conf, struct mr_config_check *chk)
{
    const struct hl_conf *c = conf;
    if ((c->basic_username == NULL) != (c->basic_password == NULL)) {
        mr_config_check_fail(chk, c->basic_username == NULL ? "basic_username" : "basic_password",
                             "basic_username and basic_password go together");
    }
    for (size_t i = 0; i < c->paths.n; i++) {
        const char *p = c->paths.items[i];
        if (p[0] != '/' || strcmp(p, "/write") == 0 || strcmp(p, "/ping") == 0 ||
            strcmp(p, "/api/v2/write") == 0) {
            mr_config_check_fail(chk, "paths",
                                 "'%s': a path starts with / and is not /write, /api/v2/write or "
                                 "/ping (those are the InfluxDB endpoints)",
                                 p);
        }
    }
}

static const struct mr_field hl_fields[] = {
    {.name = "service_address",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct hl_conf, service_address),
     .def = "127.0.0.1:8186",
     .help = "Address and port to listen on, HOST:PORT. 127.0.0.1 accepts only local clients; "
             "0.0.0.0 (or [::]) accepts clients from the network. Port 8186 is Telegraf's "
             "influxdb_listener default."},
    {.name = "paths",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct hl_conf, paths),
     .def = "[/api/v1/ingest]",
     .min = "1",
     .help = "URL paths where JSON records are posted (one object or an array of objects with "
             "asset, signal, value, time, quality, tags). Line protocol always goes to /write "
             "and /api/v2/write."},
    {.name = "max_body_size",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct hl_conf, max_body_size),
     .def = "32MiB",
     .min = "1KiB",
     .max = "1GiB",
     .help = "Largest request body accepted (after gzip is undone); larger ones are refused "
             "with 413 and nothing of them is kept."},
    {.name = "max_records",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct hl_conf, max_records),
     .def = "100000",
     .min = "1",
     .max = "10000000",
     .help = "Most records (line protocol fields, or JSON objects) one request may carry; a "
             "larger request is refused with 413 and nothing of it is kept. Memory for one "
             "request's records grows up to this."},
    {.name = "read_timeout",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct hl_conf, read_timeout_ns),
     .def = "10s",
     .min = "100ms",
     .max = "1h",
     .help = "A client must send its whole request within this time, else it is cut off."},
    {.name = "max_connections",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct hl_conf, max_connections),
     .def = "256",
     .min = "1",
     .max = "65536",
     .help = "Most clients connected at once; further ones are answered 503."},
    {.name = "basic_username",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct hl_conf, basic_username),
     .help = "Require HTTP basic authentication with this user name (Telegraf's username; "
             "InfluxDB v1 clients may also send ?u=&p=)."},
    {.name = "basic_password",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct hl_conf, basic_password),
     .help = "Password for basic_username (use ${ENV} to keep it out of the file)."},
    {.name = "token",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct hl_conf, token),
     .help = "Require 'Authorization: Bearer <token>' (or 'Token <token>', as InfluxDB 2 clients "
             "send). With basic_username too, either is accepted."},
    {.name = "asset",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct hl_conf, asset),
     .help = "Line protocol: the asset path of every record, or what goes in front of the "
             "asset_tags values (e.g. the site). JSON: the asset of objects that name none."},
    {.name = "asset_tags",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct hl_conf, asset_tags),
     .help = "Line protocol: tags whose values, in this order, are the levels of the asset "
             "path (e.g. [line, machine]); every line must carry them. They are not repeated "
             "as record tags. Signal = measurement.field."},
    {.name = "database_tag",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct hl_conf, database_tag),
     .help = "Line protocol: keep the request's ?db= (or ?bucket=) as a tag of this name "
             "(Telegraf's database_tag). Unset: the database is ignored."},
    {0},
};

/* ---- answers ---- */

static void count_status(struct hl_ctx *c, int status)
{
    int k = status < 300 ? CLASS_2XX : status < 500 ? CLASS_4XX : CLASS_5XX;
    mr_counter_add(c->m_requests[k], 1);
}

static void respond(struct hl_ctx *c, struct mr_http_request *req, int status, const char *ctype,
                    const char *headers, const char *body, size_t len)
{
    count_status(c, status);
    mr_http_respond(req, status, ctype, headers, body, len);
}

/* {"error": text} (InfluxDB's shape), plus the listed problems when there are several. */
static void respond_error(struct hl_ctx *c, struct mr_http_request *req, int status,
                          const char *headers, const char *text, const struct hl_report *rep)
{
    json_t *o = json_object();
    char *s = NULL;
    if (o != NULL) {
        json_object_set_new(o, "error", json_string(text));
        if (rep != NULL && rep->nbad > 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < rep->nshown && arr != NULL; i++) {
                json_array_append_new(arr, json_string(rep->msg[i]));
            }
            json_object_set_new(o, "errors", arr);
            json_object_set_new(o, "bad", json_integer((json_int_t)rep->nbad));
        }
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    }
    if (s == NULL) {
        respond(c, req, status, "text/plain", headers, text, strlen(text));
        return;
    }
    respond(c, req, status, "application/json", headers, s, strlen(s));
    mr_free(s);
}

static void respond_busy(struct hl_ctx *c, struct mr_http_request *req, const char *why)
{
    respond_error(c, req, 503, "Retry-After: 1\r\n", why, NULL);
}

static void respond_ok(struct hl_ctx *c, struct mr_http_request *req, int kind, size_t accepted)
{
    if (kind == ANSWER_WRITE) {
        respond(c, req, 204, NULL, NULL, "", 0);
        return;
    }
    char body[64];
    int w = snprintf(body, sizeof(body), "{\"accepted\":%zu}", accepted);
    respond(c, req, 200, "application/json", NULL, body, (size_t)w);
}

/* 400: "line 3: ...; line 7: ... (2 bad lines; nothing of this request was kept)". */
static void respond_bad(struct hl_ctx *c, struct mr_http_request *req, int status,
                        const struct hl_report *rep, const char *unit)
{
    char text[ERR_BODY_MAX];
    size_t k = 0;
    for (size_t i = 0; i < rep->nshown && k < sizeof(text); i++) {
        int w = snprintf(text + k, sizeof(text) - k, "%s%s", i > 0 ? "; " : "", rep->msg[i]);
        k += w > 0 ? (size_t)w : 0;
    }
    if (k < sizeof(text) && status == 400) {
        snprintf(text + k, sizeof(text) - k, " (%zu bad %s%s; nothing of this request was kept)",
                 rep->nbad, unit, rep->nbad == 1 ? "" : "s");
    } else if (k < sizeof(text)) {
        snprintf(text + k, sizeof(text) - k, " (nothing of this request was kept)");
    }
    mr_counter_add(c->counters.errors, rep->nbad > 0 ? rep->nbad : 1);
    MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name, "%s %s from %s: %d %s",
              mr_http_request_method(req), mr_http_request_path(req), mr_http_request_peer(req),
              status, text);
    respond_error(c, req, status, NULL, text, status == 400 ? rep : NULL);
}

/* ---- waiting for the journal ---- */

static void release(void *arg, struct mr_commit_wait_item item, bool durable)
{
    struct hl_ctx *c = arg;
    if (durable) {
        respond_ok(c, item.ptr, (int)item.b, item.a);
    } else {
        respond_busy(c, item.ptr,
                     "millrace is stopping and the journal did not confirm this request in time");
    }
}

static void close_one(void *arg)
{
    struct hl_ctx *c = arg;
    if (--c->open == 0 && !c->stopped_reported) {
        c->stopped_reported = true;
        c->host->stopped(c->host);
    }
}

static void on_server_done(void *arg)
{
    struct hl_ctx *c = arg;
    c->server = NULL;
    close_one(c);
}

/* ---- requests ---- */

/* Same length and bytes, in time independent of where they differ. */
static bool secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la && i < lb; i++) {
        diff |= (unsigned char)(a[i] ^ b[i]);
    }
    return diff == 0;
}

static bool authorized(struct hl_ctx *c, struct mr_http_request *req)
{
    const struct hl_conf *cf = c->conf;
    if (cf->basic_username == NULL && cf->token == NULL) {
        return true;
    }
    const char *h = mr_http_request_header(req, "Authorization");
    if (h != NULL && cf->basic_username != NULL && strncasecmp(h, "Basic ", 6) == 0 &&
        secret_equal(h + 6, c->basic)) {
        return true;
    }
    if (h != NULL && cf->token != NULL &&
        ((strncasecmp(h, "Bearer ", 7) == 0 && secret_equal(h + 7, cf->token)) ||
         (strncasecmp(h, "Token ", 6) == 0 && secret_equal(h + 6, cf->token)))) {
        return true;
    }
    /* InfluxDB 1.x clients may put the credentials in the query. */
    const char *u = mr_http_request_query(req, "u"), *p = mr_http_request_query(req, "p");
    return cf->basic_username != NULL && u != NULL && p != NULL &&
           secret_equal(u, cf->basic_username) && secret_equal(p, cf->basic_password);
}

/* Hand the decoded records on in one emit call and answer now or once they are durable. */
static void commit(struct hl_ctx *c, struct mr_http_request *req, int kind)
{
    size_t n = c->dec.nrecs;
    if (n == 0) {
        respond_ok(c, req, kind, 0);
        return;
    }
    if (mr_commit_wait_full(&c->wait)) {
        hl_decoder_reset(&c->dec);
        respond_busy(c, req, "too many requests waiting for the journal: nothing was kept");
        return;
    }
    int rc = c->host->emit(c->host, c->dec.recs, n);
    hl_decoder_reset(&c->dec);
    if (rc == MR_EAGAIN) {
        respond_busy(c, req,
                     "the journal is busy: nothing of this request was kept, send it "
                     "again");
        return;
    }
    if (rc != 0) {
        MR_LOG_ERROR(c->host->name, "the journal refused %zu records: %s; no longer accepting", n,
                     mr_strerror(rc));
        mr_counter_add(c->counters.errors, n);
        respond_error(c, req, 500, NULL, "the journal failed: this request may not be kept", NULL);
        c->failed = true;
        c->host->ended(c->host, rc);
        return;
    }
    mr_counter_add(c->counters.records_out, n);
    mr_commit_wait_push(
        &c->wait, (struct mr_commit_wait_item){.ptr = req, .a = (uint32_t)n, .b = (uint32_t)kind});
}

static void handle_write(struct hl_ctx *c, struct mr_http_request *req, const char *body,
                         size_t len)
{
    const char *ps = mr_http_request_query(req, "precision");
    enum mr_lp_precision prec = MR_LP_NS;
    if (ps != NULL && ps[0] != '\0' && mr_lineproto_precision_parse(ps, &prec) != 0) {
        struct hl_report rep = {.nbad = 1, .nshown = 1};
        snprintf(rep.msg[0], HL_MSG_LEN, "precision '%.40s' is not one of ns, us, ms, s (n, u)",
                 ps);
        respond_bad(c, req, 400, &rep, "parameter");
        return;
    }
    const char *db = mr_http_request_query(req, "db");
    if (db == NULL) {
        db = mr_http_request_query(req, "bucket");
    }
    struct hl_report rep;
    int rc = hl_decode_lineproto(&c->dec, body, len, prec, db, mr_clock_wall_ns(), &rep);
    if (rc == MR_EPARSE || rc == MR_ETOOBIG) {
        respond_bad(c, req, rc == MR_EPARSE ? 400 : 413, &rep, "line");
    } else if (rc != 0) {
        respond_error(c, req, 503, "Retry-After: 1\r\n", rep.nshown > 0 ? rep.msg[0] : "busy",
                      NULL);
    } else {
        commit(c, req, ANSWER_WRITE);
    }
}

static void handle_json(struct hl_ctx *c, struct mr_http_request *req, const char *body, size_t len)
{
    struct hl_report rep;
    int rc = hl_decode_json(&c->dec, body, len, mr_clock_wall_ns(), &rep);
    if (rc == MR_EPARSE || rc == MR_ETOOBIG) {
        respond_bad(c, req, rc == MR_EPARSE ? 400 : 413, &rep, "item");
    } else if (rc != 0) {
        respond_error(c, req, 503, "Retry-After: 1\r\n", rep.nshown > 0 ? rep.msg[0] : "busy",
                      NULL);
    } else {
        commit(c, req, ANSWER_JSON);
    }
}

static bool is_json_path(const struct hl_conf *cf, const char *path)
{
    for (size_t i = 0; i < cf->paths.n; i++) {
        if (strcmp(cf->paths.items[i], path) == 0) {
            return true;
        }
    }
    return false;
}

static void on_request(void *arg, struct mr_http_request *req)
{
    struct hl_ctx *c = arg;
    const char *method = mr_http_request_method(req), *path = mr_http_request_path(req);
    size_t len;
    const char *body = (const char *)mr_http_request_body(req, &len);
    mr_counter_add(c->m_bytes, len);
    bool post = strcmp(method, "POST") == 0;
    if (strcmp(path, "/ping") == 0) {
        if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
            respond(c, req, 204, NULL, "X-Influxdb-Version: 1.8.10\r\n", "", 0);
        } else {
            respond_error(c, req, 405, "Allow: GET, HEAD\r\n", "/ping answers GET and HEAD", NULL);
        }
        return;
    }
    bool write = strcmp(path, "/write") == 0 || strcmp(path, "/api/v2/write") == 0;
    if (!write && !is_json_path(c->conf, path)) {
        respond_error(c, req, 404, NULL,
                      "no such endpoint (POST /write, /api/v2/write, or the "
                      "configured JSON paths; GET /ping)",
                      NULL);
    } else if (!post) {
        respond_error(c, req, 405, "Allow: POST\r\n", "this endpoint takes POST", NULL);
    } else if (!authorized(c, req)) {
        respond_error(c, req, 401,
                      c->conf->basic_username != NULL ? "WWW-Authenticate: Basic "
                                                        "realm=\"millrace\"\r\n"
                                                      : "WWW-Authenticate: Bearer\r\n",
                      "missing or wrong credentials", NULL);
    } else if (c->stopping || c->failed) {
        respond_busy(c, req,
                     c->failed ? "this input stopped after a journal failure"
                               : "millrace is stopping: nothing was kept");
    } else if (write) {
        handle_write(c, req, body, len);
    } else {
        handle_json(c, req, body, len);
    }
}

/* ---- life ---- */

static void base64(const char *in, size_t len, char *out, size_t cap)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t k = 0;
    for (size_t i = 0; i < len && k + 5 <= cap; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        v |= i + 1 < len ? (uint32_t)(unsigned char)in[i + 1] << 8 : 0;
        v |= i + 2 < len ? (uint32_t)(unsigned char)in[i + 2] : 0;
        out[k++] = tab[(v >> 18) & 63];
        out[k++] = tab[(v >> 12) & 63];
        out[k++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[k++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[k] = '\0';
}

static int register_metrics(struct hl_ctx *c, struct mr_err *err)
{
    static const char *const classes[NCLASSES] = {"2xx", "4xx", "5xx"};
    char inst[256], labels[320];
    int rc = mr_plugin_counters_register(c->host->metrics, &mr_input_http_listener, c->host->name,
                                         &c->counters);
    if (rc == 0 && mr_metrics_label_escape(c->host->name, inst, sizeof(inst)) < 0) {
        rc = MR_ETOOBIG;
    }
    for (int i = 0; rc == 0 && i < NCLASSES; i++) {
        snprintf(labels, sizeof(labels), "instance=\"%s\",code=\"%s\"", inst, classes[i]);
        rc = mr_metrics_counter(c->host->metrics, "millrace_http_listener_requests_total",
                                "HTTP ingest requests answered, by status class (2xx accepted, "
                                "4xx refused, 5xx busy or failed).",
                                labels, &c->m_requests[i]);
    }
    if (rc == 0) {
        snprintf(labels, sizeof(labels), "instance=\"%s\"", inst);
        rc = mr_metrics_counter(c->host->metrics, "millrace_http_listener_bytes_total",
                                "Bytes of request bodies received (after gzip was undone).", labels,
                                &c->m_bytes);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
    }
    return 0;
}

static int hl_init(void *ctx, const void *conf, struct mr_input_host *host, struct mr_err *err)
{
    struct hl_ctx *c = ctx;
    const struct hl_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->host = host;
    if (cf->basic_username != NULL) {
        char both[AUTH_MAX / 2];
        int w = snprintf(both, sizeof(both), "%s:%s", cf->basic_username,
                         cf->basic_password != NULL ? cf->basic_password : "");
        if (w < 0 || (size_t)w >= sizeof(both)) {
            return MR_ERR_SET(err, MR_EINVAL, "basic_username and basic_password too long");
        }
        base64(both, (size_t)w, c->basic, sizeof(c->basic));
    }
    int rc = register_metrics(c, err);
    if (rc != 0) {
        return rc;
    }
    /* A connection has at most one request waiting (the server reads the next one only after
     * the answer), so this ring never overflows. */
    return hl_decoder_init(&c->dec, cf, host->names, err);
}

static int hl_start(void *ctx, struct mr_err *err)
{
    struct hl_ctx *c = ctx;
    int rc = mr_commit_wait_init(&c->wait, c->host, (size_t)c->conf->max_connections, release, c);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "out of memory");
    }
    c->wait_ready = true;
    c->open = 1;
    if (c->host->durable == NULL) {
        MR_LOG_DEBUG(c->host->name, "this host does not report journal commits: requests are "
                                    "answered when their records are handed over");
    }
    struct mr_http_server_options o;
    mr_http_server_options_init(&o);
    o.listen = c->conf->service_address;
    o.log_name = c->host->name;
    o.max_body_bytes = (size_t)c->conf->max_body_size;
    o.max_connections = (uint32_t)c->conf->max_connections;
    o.request_timeout_ms = (uint32_t)(c->conf->read_timeout_ns / 1000000);
    rc = mr_http_server_start(&c->server, c->host->loop, &o, on_request, c, err);
    if (rc != 0) {
        c->server = NULL;
        return rc;
    }
    c->open++;
    MR_LOG_INFO(c->host->name, "listening on %s (port %d)", c->conf->service_address,
                mr_http_server_port(c->server));
    return 0;
}

static void hl_stop(void *ctx)
{
    struct hl_ctx *c = ctx;
    if (c->stopping) {
        return;
    }
    c->stopping = true;
    if (c->open == 0) { /* never started */
        c->stopped_reported = true;
        c->host->stopped(c->host);
        return;
    }
    if (c->server != NULL) {
        mr_http_server_stop(c->server, on_server_done, c);
    }
    /* Waiting requests get STOP_WAIT_MS to become durable; the rest are answered 503. */
    mr_commit_wait_stop(&c->wait, STOP_WAIT_MS, close_one, c);
}

static void hl_fini(void *ctx)
{
    struct hl_ctx *c = ctx;
    hl_decoder_fini(&c->dec);
    if (c->wait_ready) {
        mr_commit_wait_fini(&c->wait);
    }
}

int mr_http_listener_port(const void *ctx)
{
    const struct hl_ctx *c = ctx;
    return c->server != NULL ? mr_http_server_port(c->server) : -1;
}

const struct mr_plugin mr_input_http_listener = {
    .kind = MR_PLUGIN_INPUT,
    .name = "http_listener",
    .help = "HTTP ingest: InfluxDB line protocol on /write (Telegraf and InfluxDB clients can "
            "point here) and JSON records on /api/v1/ingest; each request is answered only "
            "after its records are committed to the journal, and is kept all or nothing.",
    .conf = {.fields = hl_fields, .size = sizeof(struct hl_conf), .check = hl_conf_check},
    .ctx_size = sizeof(struct hl_ctx),
    .input = {.init = hl_init, .start = hl_start, .stop = hl_stop, .fini = hl_fini},
};
