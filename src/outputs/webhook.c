/* Output `http` (webhook): POSTs records as JSON batches to an HTTP endpoint, e.g. a
 * maintenance ticketing system or a chat webhook. Key names follow Telegraf's outputs.http.
 *
 *   outputs:
 *     tickets:
 *       type: http
 *       url: https://cmms.example/api/alerts
 *       method: POST                    # POST | PUT | PATCH
 *       headers: {Authorization: "Bearer ${CMMS_TOKEN}", X-Site: hall2}
 *       timeout: 5s
 *       content_encoding: identity      # identity | gzip
 *       data_format: json
 *       max_batch: 100                  # records per request
 *       body_template: '{"source": "{{output}}", "n": {{count}}, "alerts": {{records}}}'
 *
 * Body: a JSON array of records, each {"time": RFC 3339 with ns, "asset", "signal", "value",
 * "quality", "tags"} (as millrace/record.h's mr_record_to_json writes it). With body_template,
 * the template's text is sent with {{records}} replaced by that array, {{count}} by the number
 * of records and {{output}} by this output's name (JSON-escaped): nothing else is interpreted,
 * so a template cannot run code or read anything but these three.
 *
 * Answers: 2xx -> delivered. No answer (refused, timeout), 408, 429, 5xx -> RETRY (the host
 * retries the batch with backoff; requests of the batch already acknowledged are skipped when
 * the same batch comes again). 401, 403, 404, 405, 407, 413 and redirects -> FATAL (wrong URL,
 * credentials or size: retrying or rejecting cannot help, nothing is lost). Any other 4xx (400,
 * 409, 422, ...): the endpoint refused the request's content, and a webhook cannot tell which
 * record was bad, so every record of that request is rejected (dead-letter topic) with the status
 * and the first 200 bytes of the answer, and delivery goes on.
 *
 * Delivery is at least once: after a crash the records since the last cursor commit (about a
 * second's worth) are posted again. Receivers that must not see duplicates can de-duplicate on
 * (asset, signal, time).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "millrace/alloc.h"
#include "millrace/log.h"
#include "millrace/plugin.h"
#include "outputs/curl_out.h"

extern const struct mr_plugin mr_output_http;

enum { ENC_IDENTITY = 0, ENC_GZIP = 1 };

struct webhook_conf {
    char *url;
    int method;
    struct mr_strmap headers;
    int64_t timeout_ns;
    int content_encoding;
    int data_format;
    int64_t max_batch;
    char *body_template;
    uint64_t max_batch_bytes;
    struct mr_curl_tls tls;
};

static const char *const methods[] = {"POST", "PUT", "PATCH", NULL};
static const char *const encodings[] = {"identity", "gzip", NULL};
static const char *const formats[] = {"json", NULL};

/* A template is literal text and placeholders, split once at init. */
enum part_kind { PART_TEXT, PART_RECORDS, PART_COUNT, PART_OUTPUT };
#define MAX_PARTS 33

struct part {
    enum part_kind kind;
    const char *text; /* PART_TEXT: into the template string */
    size_t len;
};

struct webhook_ctx {
    const struct webhook_conf *conf;
    struct mr_output_host *host;
    struct mr_plugin_counters counters;
    struct mr_counter *m_rejected;
    struct mr_counter *m_bytes;
    struct mr_curl_out http;
    struct curl_slist *headers;
    struct part parts[MAX_PARTS];
    size_t nparts;
    char output_json[512]; /* the output's name, JSON-escaped (no quotes) */
    char *recs_buf;        /* the JSON array */
    char *body;            /* the templated body */
    size_t cap;
    /* the prefix of the last batch already acknowledged (a RETRY resends the same batch) */
    size_t acked;
    size_t acked_n;
    int64_t acked_first_time;
    mr_name_id acked_first_signal;
    bool down;
    struct mr_log_ratelimit rl;
};

/* Split tpl into parts. Returns NULL or why it is not a valid template. */
static const char *template_parse(const char *tpl, struct part *parts, size_t *nparts)
{
    static const struct {
        const char *name;
        enum part_kind kind;
    } names[] = {
        {"{{records}}", PART_RECORDS}, {"{{count}}", PART_COUNT}, {"{{output}}", PART_OUTPUT}};
    size_t n = 0;
    const char *p = tpl;
    while (*p != '\0') {
        const char *open = strstr(p, "{{");
        size_t lit = open != NULL ? (size_t)(open - p) : strlen(p);
        if (lit > 0) {
            if (n == MAX_PARTS) {
                return "too many placeholders (at most 16)";
            }
            parts[n++] = (struct part){.kind = PART_TEXT, .text = p, .len = lit};
        }
        if (open == NULL) {
            break;
        }
        size_t k = 0;
        while (k < 3 && strncmp(open, names[k].name, strlen(names[k].name)) != 0) {
            k++;
        }
        if (k == 3) {
            return "unknown placeholder: only {{records}}, {{count}} and {{output}} exist";
        }
        if (n == MAX_PARTS) {
            return "too many placeholders (at most 16)";
        }
        parts[n++] = (struct part){.kind = names[k].kind};
        p = open + strlen(names[k].name);
    }
    *nparts = n;
    return NULL;
}

static void webhook_check(void *conf, struct mr_config_check *chk)
{
    const struct webhook_conf *c = conf;
    mr_curl_tls_check(&c->tls, chk);
    if (c->url != NULL && strncmp(c->url, "http://", 7) != 0 &&
        strncmp(c->url, "https://", 8) != 0) {
        mr_config_check_fail(chk, "url", "'%s' must start with http:// or https://", c->url);
    }
    struct part parts[MAX_PARTS];
    size_t n;
    const char *bad = c->body_template != NULL ? template_parse(c->body_template, parts, &n) : NULL;
    if (bad != NULL) {
        mr_config_check_fail(chk, "body_template", "%s", bad);
    }
    for (size_t i = 0; i < c->headers.n; i++) {
        const char *k = c->headers.items[i].key, *v = c->headers.items[i].value;
        if (strpbrk(k, ":\r\n ") != NULL || strpbrk(v, "\r\n") != NULL) {
            mr_config_check_fail(chk, "headers", "header '%s' has a ':', space or line break", k);
        }
    }
}

static const struct mr_field webhook_fields[] = {
    {.name = "url",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct webhook_conf, url),
     .flags = MR_FIELD_REQUIRED,
     .help = "Endpoint the batches are sent to (http:// or https://)."},
    {.name = "method",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct webhook_conf, method),
     .def = "POST",
     .values = methods,
     .help = "HTTP method: POST, PUT or PATCH."},
    {.name = "headers",
     .type = MR_FIELD_STRING_MAP,
     .offset = offsetof(struct webhook_conf, headers),
     .help = "Extra request headers, e.g. {Authorization: \"Bearer ${TOKEN}\"}. Content-Type "
             "defaults to application/json."},
    {.name = "timeout",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct webhook_conf, timeout_ns),
     .def = "5s",
     .min = "100ms",
     .max = "10m",
     .help = "Longest a request may take; after it the batch is retried later."},
    {.name = "content_encoding",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct webhook_conf, content_encoding),
     .def = "identity",
     .values = encodings,
     .help = "identity sends the body as is; gzip compresses it (only if the endpoint accepts "
             "Content-Encoding: gzip)."},
    {.name = "data_format",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct webhook_conf, data_format),
     .def = "json",
     .values = formats,
     .help = "Body format: json (an array of records with time, asset, signal, value, quality, "
             "tags)."},
    {.name = "max_batch",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct webhook_conf, max_batch),
     .def = "100",
     .min = "1",
     .max = "10000",
     .help = "Most records per request. 1 sends one request per record (e.g. one ticket per "
             "alert)."},
    {.name = "body_template",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct webhook_conf, body_template),
     .help = "Body text with {{records}} (the JSON array), {{count}} and {{output}} (this "
             "output's name) filled in; nothing else is interpreted. Unset: the array alone."},
    {.name = "max_batch_bytes",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct webhook_conf, max_batch_bytes),
     .def = "1MiB",
     .min = "4KiB",
     .max = "16MiB",
     .help = "Largest request body; fewer records go into a request when they would not fit. "
             "A single record larger than this is rejected to the dead-letter topic."},
    MR_CURL_TLS_FIELDS(struct webhook_conf, tls),
    {0},
};

/* ---- the body ---- */

static bool put(char *out, size_t cap, size_t *w, const char *s, size_t len)
{
    if (*w + len > cap) {
        return false;
    }
    memcpy(out + *w, s, len);
    *w += len;
    return true;
}

/* Fill c->body from the template and the records array recs_buf[0..rlen). */
static bool body_build(struct webhook_ctx *c, size_t rlen, size_t count, size_t *blen)
{
    if (c->nparts == 0) {
        *blen = rlen;
        return true; /* no template: the body is recs_buf itself */
    }
    size_t w = 0;
    bool ok = true;
    char num[24];
    for (size_t i = 0; ok && i < c->nparts; i++) {
        const struct part *p = &c->parts[i];
        switch (p->kind) {
        case PART_TEXT:
            ok = put(c->body, c->cap, &w, p->text, p->len);
            break;
        case PART_RECORDS:
            ok = put(c->body, c->cap, &w, c->recs_buf, rlen);
            break;
        case PART_COUNT: {
            int n = snprintf(num, sizeof(num), "%zu", count);
            ok = put(c->body, c->cap, &w, num, (size_t)n);
            break;
        }
        default:
            ok = put(c->body, c->cap, &w, c->output_json, strlen(c->output_json));
        }
    }
    *blen = w;
    return ok;
}

/* Bytes the template adds around the records array. */
static size_t template_overhead(const struct webhook_ctx *c)
{
    size_t o = 0;
    for (size_t i = 0; i < c->nparts; i++) {
        o += c->parts[i].kind == PART_TEXT     ? c->parts[i].len
             : c->parts[i].kind == PART_COUNT  ? 20
             : c->parts[i].kind == PART_OUTPUT ? strlen(c->output_json)
                                               : 0;
    }
    return o;
}

/* ---- sending ---- */

enum answer { ANS_OK, ANS_RETRY, ANS_FATAL, ANS_REJECT };

static enum answer post(struct webhook_ctx *c, size_t blen, char *msg, size_t cap,
                        struct mr_err *err)
{
    const char *body = c->nparts == 0 ? c->recs_buf : c->body;
    long status = 0;
    size_t wire = 0;
    const char *why = NULL;
    int rc = mr_curl_out_send(&c->http, methods[c->conf->method], c->conf->url, c->headers, body,
                              blen, c->conf->content_encoding == ENC_GZIP, &status, &wire, &why);
    if (rc != 0) {
        mr_counter_add(c->counters.errors, 1);
        if (!c->down) {
            MR_LOG_WARN(c->host->name, "cannot post to %s: %s; records wait in the journal",
                        c->conf->url, why);
        }
        c->down = true;
        MR_ERR_SET(err, rc, "%s: %s", c->conf->url, why);
        return ANS_RETRY;
    }
    mr_counter_add(c->m_bytes, wire);
    if (status >= 200 && status < 300) {
        if (c->down) {
            MR_LOG_INFO(c->host->name, "%s answers again; catching up", c->conf->url);
        }
        c->down = false;
        return ANS_OK;
    }
    /* the raw answer, not its "error" member: a webhook's answers have no common shape */
    size_t n = c->http.resp_len < 200 ? c->http.resp_len : 200;
    n = n < cap - 1 ? n : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)c->http.resp[i];
        msg[i] = ch < 0x20 ? ' ' : (char)ch;
    }
    msg[n] = '\0';
    mr_counter_add(c->counters.errors, 1);
    if (status >= 500 || status == 408 || status == 429) {
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name, "%s answered HTTP %ld: %s", c->conf->url,
                  status, msg);
        MR_ERR_SET(err, MR_EAGAIN, "%s answered HTTP %ld: %s", c->conf->url, status, msg);
        return ANS_RETRY;
    }
    MR_ERR_SET(err, MR_EINVAL, "%s answered HTTP %ld: %s", c->conf->url, status, msg);
    if (status < 400 || status == 401 || status == 403 || status == 404 || status == 405 ||
        status == 407 || status == 413) {
        return ANS_FATAL;
    }
    return ANS_REJECT;
}

/* Render recs[*i..] as a JSON array into recs_buf (at most max_batch, as fit). Records too large
 * for a request on their own are rejected. Returns the count and sets *rlen. */
static size_t records_render(struct webhook_ctx *c, const struct mr_record *recs, size_t n,
                             size_t *i, size_t *first, size_t *rlen)
{
    size_t room = c->cap - template_overhead(c);
    size_t w = 1, count = 0;
    c->recs_buf[0] = '[';
    *first = *i;
    for (; *i < n && count < (size_t)c->conf->max_batch; (*i)++) {
        size_t at = w + (count > 0 ? 1 : 0);
        long len = at + 2 < room ? mr_record_to_json(&recs[*i], c->host->names, c->recs_buf + at,
                                                     room - at - 1)
                                 : MR_ETOOBIG;
        if (len == MR_ETOOBIG && count > 0) {
            break;
        }
        if (len < 0 && count > 0) {
            break; /* rejected on its own at the start of the next request */
        }
        if (len < 0) {
            char reason[96];
            snprintf(reason, sizeof(reason), "%s",
                     len == MR_ETOOBIG ? "record larger than max_batch_bytes as JSON"
                                       : "invalid record (cannot be written as JSON)");
            c->host->reject(c->host, *i, reason);
            mr_counter_add(c->m_rejected, 1);
            (*first)++;
            continue;
        }
        if (count > 0) {
            c->recs_buf[w] = ',';
        }
        w = at + (size_t)len;
        count++;
    }
    c->recs_buf[w++] = ']';
    *rlen = w;
    return count;
}

static int webhook_write(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct webhook_ctx *c = ctx;
    mr_counter_add(c->counters.records_in, n);
    size_t i = 0;
    bool same = n > 0 && n == c->acked_n && recs[0].time_ns == c->acked_first_time &&
                recs[0].signal == c->acked_first_signal;
    if (same) {
        i = c->acked; /* the same batch again after a RETRY: skip what was acknowledged */
    }
    c->acked = i;
    c->acked_n = n;
    c->acked_first_time = n > 0 ? recs[0].time_ns : 0;
    c->acked_first_signal = n > 0 ? recs[0].signal : 0;
    while (i < n) {
        size_t first, rlen, blen;
        size_t count = records_render(c, recs, n, &i, &first, &rlen);
        if (count > 0) {
            if (!body_build(c, rlen, count, &blen)) {
                MR_ERR_SET(err, MR_ETOOBIG, "body_template too large for max_batch_bytes");
                return MR_SINK_FATAL;
            }
            char msg[256] = "";
            enum answer a = post(c, blen, msg, sizeof(msg), err);
            if (a == ANS_RETRY || a == ANS_FATAL) {
                return a == ANS_RETRY ? MR_SINK_RETRY : MR_SINK_FATAL;
            }
            if (a == ANS_REJECT) {
                char reason[320];
                snprintf(reason, sizeof(reason), "%s (the whole request of %zu records)", err->msg,
                         count);
                for (size_t k = first; k < i; k++) {
                    c->host->reject(c->host, k, reason);
                }
                mr_counter_add(c->m_rejected, count);
                MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name, "%zu records rejected: %s", count,
                          err->msg);
            } else {
                mr_counter_add(c->counters.records_out, count);
            }
        }
        c->acked = i;
    }
    c->acked_n = 0; /* done: the next batch is a new one */
    return MR_SINK_OK;
}

static int webhook_flush(void *ctx, struct mr_err *err)
{
    (void)ctx;
    (void)err;
    return MR_SINK_OK; /* each write returns only after the endpoint answered */
}

static void webhook_fini(void *ctx)
{
    struct webhook_ctx *c = ctx;
    mr_curl_out_fini(&c->http);
    curl_slist_free_all(c->headers);
    mr_free(c->recs_buf);
    mr_free(c->body);
    memset(c, 0, sizeof(*c));
}

static int headers_build(struct webhook_ctx *c, struct mr_err *err)
{
    const struct webhook_conf *cf = c->conf;
    bool has_ct = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < cf->headers.n; i++) {
        char line[2048];
        int w = snprintf(line, sizeof(line), "%s: %s", cf->headers.items[i].key,
                         cf->headers.items[i].value);
        has_ct = has_ct || strcasecmp(cf->headers.items[i].key, "Content-Type") == 0;
        rc =
            w < 0 || (size_t)w >= sizeof(line) ? MR_ETOOBIG : mr_curl_out_header(&c->headers, line);
    }
    if (rc == 0 && !has_ct) {
        rc = mr_curl_out_header(&c->headers, "Content-Type: application/json");
    }
    if (rc == 0 && cf->content_encoding == ENC_GZIP) {
        rc = mr_curl_out_header(&c->headers, "Content-Encoding: gzip");
    }
    rc = rc ? rc : mr_curl_out_header(&c->headers, "Expect:");
    return rc != 0 ? MR_ERR_SET(err, rc, "headers: %s", mr_strerror(rc)) : 0;
}

/* name as the inside of a JSON string. */
static void json_escape(const char *s, char *out, size_t cap)
{
    size_t w = 0;
    for (; *s != '\0' && w + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[w++] = '\\';
            out[w++] = (char)ch;
        } else if (ch < 0x20) {
            w += (size_t)snprintf(out + w, cap - w, "\\u%04x", ch);
        } else {
            out[w++] = (char)ch;
        }
    }
    out[w] = '\0';
}

static int webhook_init(void *ctx, const void *conf, struct mr_output_host *host,
                        struct mr_err *err)
{
    struct webhook_ctx *c = ctx;
    memset(c, 0, sizeof(*c));
    c->conf = conf;
    c->host = host;
    const struct webhook_conf *cf = c->conf;
    json_escape(host->name, c->output_json, sizeof(c->output_json));
    int rc = 0;
    if (cf->body_template != NULL) {
        const char *bad = template_parse(cf->body_template, c->parts, &c->nparts);
        if (bad != NULL) {
            return MR_ERR_SET(err, MR_ECONFIG, "body_template: %s", bad);
        }
    }
    c->cap = (size_t)cf->max_batch_bytes;
    if (template_overhead(c) + 64 > c->cap) {
        return MR_ERR_SET(err, MR_ECONFIG, "body_template leaves no room in max_batch_bytes");
    }
    c->recs_buf = mr_malloc(c->cap);
    c->body = c->nparts > 0 ? mr_malloc(c->cap) : NULL;
    if (c->recs_buf == NULL || (c->nparts > 0 && c->body == NULL)) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    rc = rc ? rc
            : mr_curl_out_init(&c->http, c->cap, cf->content_encoding == ENC_GZIP, cf->timeout_ns,
                               "millrace-http/1", &cf->tls, err);
    rc = rc ? rc : headers_build(c, err);
    rc = rc ? rc
            : mr_plugin_counters_register(host->metrics, &mr_output_http, host->name, &c->counters);
    char inst[256], labels[320];
    if (rc == 0 && mr_metrics_label_escape(host->name, inst, sizeof(inst)) >= 0) {
        snprintf(labels, sizeof(labels), "instance=\"%s\"", inst);
        rc = mr_metrics_counter(host->metrics, "millrace_http_output_rejected_total",
                                "Records the endpoint refused (every record of a refused "
                                "request), sent to the dead-letter topic.",
                                labels, &c->m_rejected);
        rc = rc ? rc
                : mr_metrics_counter(host->metrics, "millrace_http_output_bytes_total",
                                     "Request bytes sent as on the wire.", labels, &c->m_bytes);
    }
    if (rc != 0) {
        if (err->msg[0] == '\0') {
            MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
        }
        webhook_fini(c);
    }
    return rc;
}

const struct mr_plugin mr_output_http = {
    .kind = MR_PLUGIN_OUTPUT,
    .name = "http",
    .help = "Webhook: POSTs records as JSON batches (optionally in a small body template) to an "
            "HTTP endpoint such as a ticketing system. At least once; a refused request's "
            "records go to the dead-letter topic with the endpoint's answer.",
    .conf = {.fields = webhook_fields, .size = sizeof(struct webhook_conf), .check = webhook_check},
    .ctx_size = sizeof(struct webhook_ctx),
    .output = {.init = webhook_init,
               .write = webhook_write,
               .flush = webhook_flush,
               .fini = webhook_fini},
};
