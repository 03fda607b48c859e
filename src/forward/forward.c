/* Output `forward`: the sending half of store-and-forward. Relays the journal topics feeding it
 * to another millrace (its `receive` input) over HTTP, in compressed batches.
 *
 *   outputs:
 *     to_central:
 *       type: forward
 *       url: http://central.example:8080/millrace/forward/v1
 *       node: press-hall-2          # this site's name at the receiver (default: host name)
 *       token: ${FORWARD_TOKEN}     # optional bearer token
 *       rate_limit: 5000            # records/s while catching up; 0 = unlimited
 *   pipelines:
 *     uplink: {from: [plant.features, plant.alarms], to: [to_central]}
 *
 * Semantics. The host calls write_at with a batch from one partition of one journal topic and
 * each record's offset there. The batch is encoded (src/forward/wire.h: node, topic, partition,
 * then each record with its offset), split into several requests when it exceeds
 * max_batch_bytes, gzip-compressed (content_encoding) and POSTed one request after the other on
 * one kept-alive connection. The receiver answers only after its journal committed the records
 * (200 {"kept": n, "duplicates": d}); only then does write_at go on, and only when the whole batch
 * is acknowledged does it answer MR_SINK_OK, after which the host advances this output's cursor.
 * The receiver keeps each (node, topic, partition, offset) once, so sending a batch again after
 * a lost answer, a crash or a restart of either side never duplicates a record: forwarding is
 * exactly once end to end. While the link is down the journal buffers (its retention bounds
 * the disk).
 *
 * Answers: connection failure, timeout, HTTP 5xx, 429 or 408 -> MR_SINK_RETRY (the host
 * retries the same batch with backoff; requests of the batch already acknowledged are skipped);
 * any other 4xx (or a redirect) -> MR_SINK_FATAL with the receiver's message. write (a batch
 * without journal positions) answers MR_SINK_FATAL: forward only runs where the host provides
 * positions, which the engine always does for outputs with write_at.
 *
 * rate_limit paces catch-up after an outage, so the uplink keeps room for live traffic: a token
 * bucket of rate_limit records per second holding at most 0.1 s of tokens; a request of k records
 * takes k tokens and, when that leaves the bucket in debt, waits (in slices of at most 100 ms)
 * until the debt is paid before it is sent. Over any long stretch at most rate_limit records/s
 * (plus one request) go out. A request then holds at most rate_limit records (one second's
 * worth), so a low limit means small, evenly spaced requests rather than long silences.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "forward/wire.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"
#include "millrace/plugin.h"
#include "outputs/curl_out.h"

extern const struct mr_plugin mr_output_forward;

enum { ENC_GZIP = 0, ENC_IDENTITY = 1 };

struct forward_conf {
    char *url;
    char *node;
    int64_t timeout_ns;
    int content_encoding;
    char *token;
    struct mr_curl_tls tls;
    uint64_t max_batch_bytes;
    int64_t rate_limit;
};

#define RESP_MAX 2048u

struct forward_metrics {
    struct mr_counter *records;
    struct mr_counter *bytes;
    struct mr_counter *ubytes;
    struct mr_counter *duplicates;
    struct mr_gauge *backlog_age;
    struct mr_counter *req_ok;
    struct mr_counter *req_retry;
    struct mr_counter *req_fatal;
};

struct forward_ctx {
    const struct forward_conf *conf;
    const struct mr_output_host *host;
    struct mr_plugin_counters counters;
    struct forward_metrics m;
    char node[MR_FWD_NODE_MAX + 1];
    CURL *curl;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    struct mr_fwd_encoder enc;
    bool z_ready;
    z_stream z;
    uint8_t *zbuf;
    size_t zcap;
    char resp[RESP_MAX];
    size_t resp_len;
    /* stall detection of the request in flight */
    curl_off_t seen_up;
    curl_off_t seen_down;
    int64_t progress_ns;
    /* token bucket (rate_limit > 0) */
    double tokens;
    double burst;
    uint32_t max_records; /* per request: about one second of rate_limit */
    int64_t refilled_ns;
    /* link state, for logging an outage once and its end */
    bool down;
    int64_t down_since_ns;
    struct mr_log_ratelimit rl;
    struct mr_log_ratelimit rl_answer;
    /* the last request acknowledged: a retried batch skips what the receiver already has */
    bool has_acked;
    uint32_t acked_partition;
    int64_t acked_offset;
    char acked_topic[MR_FWD_TOPIC_MAX + 1];
};

static const char *const encodings[] = {"gzip", "identity", NULL};

static bool node_name_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > MR_FWD_NODE_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) {
            return false;
        }
    }
    return true;
}

static void forward_check(void *conf, struct mr_config_check *chk)
{
    const struct forward_conf *c = conf;
    if (c->url != NULL && strncmp(c->url, "http://", 7) != 0 &&
        strncmp(c->url, "https://", 8) != 0) {
        mr_config_check_fail(chk, "url", "'%s' must start with http:// or https://", c->url);
    }
    if (c->node != NULL && !node_name_ok(c->node)) {
        mr_config_check_fail(chk, "node", "'%s' must be 1..255 of A-Z a-z 0-9 . _ -", c->node);
    }
    mr_curl_tls_check(&c->tls, chk);
}

static const struct mr_field forward_fields[] = {
    {.name = "url",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct forward_conf, url),
     .flags = MR_FIELD_REQUIRED,
     .help = "Where the receiving millrace listens: its `receive` input's address and path, "
             "e.g. http://central:8080/millrace/forward/v1 (https:// for TLS)."},
    {.name = "node",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct forward_conf, node),
     .help = "This site's name at the receiver (1..255 of A-Z a-z 0-9 . _ -); default: the "
             "host name. The receiver keeps each record of a node once, so give every sending "
             "site its own name and never change it."},
    {.name = "timeout",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct forward_conf, timeout_ns),
     .def = "10s",
     .min = "100ms",
     .max = "10m",
     .help =
         "Longest time a request may make no progress (connecting, sending, or waiting for "
         "the receiver's journal commit); after it the request is retried. Checked about once a "
         "second."},
    {.name = "content_encoding",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct forward_conf, content_encoding),
     .def = "gzip",
     .values = encodings,
     .help = "gzip compresses each request (fewer bytes on a slow or metered uplink, for some "
             "CPU); identity sends it as is (a fast LAN, little CPU to spare)."},
    {.name = "token",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct forward_conf, token),
     .help = "Bearer token sent as `Authorization: Bearer TOKEN`, when the receiver asks for "
             "one. Use ${NAME} to take it from the environment."},
    MR_CURL_TLS_FIELDS(struct forward_conf, tls),
    {.name = "max_batch_bytes",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct forward_conf, max_batch_bytes),
     .def = "1MiB",
     .min = "64KiB",
     .max = "16MiB",
     .help = "Largest request before compression; a larger batch is sent as several requests. "
             "Must hold the largest single record (a block of samples can be 400 KB)."},
    {.name = "rate_limit",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct forward_conf, rate_limit),
     .def = "0",
     .min = "0",
     .max = "100000000",
     .help = "Most records per second sent, 0 for no limit. Paces the catch-up after an "
             "outage so the uplink keeps room for live data (and other traffic)."},
    {0},
};

/* ---- HTTP ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_lib_init(void)
{
    /* Process-wide and never undone: libcurl's global state lives as long as the process. */
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct forward_ctx *c = arg;
    size_t n = size * nmemb;
    size_t room = sizeof(c->resp) - 1 - c->resp_len;
    size_t take = n < room ? n : room; /* the rest of a long answer is not needed */
    memcpy(c->resp + c->resp_len, data, take);
    c->resp_len += take;
    c->resp[c->resp_len] = '\0';
    return n;
}

/* Abort a request that moved no byte either way for `timeout`. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct forward_ctx *c = arg;
    (void)dltotal;
    (void)ultotal;
    int64_t now = mr_clock_mono_ns();
    if (dlnow != c->seen_down || ulnow != c->seen_up) {
        c->seen_down = dlnow;
        c->seen_up = ulnow;
        c->progress_ns = now;
        return 0;
    }
    return now - c->progress_ns > c->conf->timeout_ns ? 1 : 0;
}

static int headers_add(struct forward_ctx *c, const char *line)
{
    struct curl_slist *l = curl_slist_append(c->headers, line);
    if (l == NULL) {
        return MR_ENOMEM;
    }
    c->headers = l;
    return 0;
}

static int curl_setup(struct forward_ctx *c, struct mr_err *err)
{
    const struct forward_conf *cf = c->conf;
    int rc = headers_add(c, "Content-Type: " MR_FWD_CONTENT_TYPE);
    if (rc == 0 && cf->content_encoding == ENC_GZIP) {
        rc = headers_add(c, "Content-Encoding: gzip");
    }
    if (rc == 0) {
        rc = headers_add(c, "Expect:"); /* no 100-continue round trip before each body */
    }
    if (rc == 0 && cf->token != NULL) {
        char auth[1024];
        int w = snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cf->token);
        rc = w < 0 || (size_t)w >= sizeof(auth) ? MR_ETOOBIG : headers_add(c, auth);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot build the request headers: %s", mr_strerror(rc));
    }
    CURL *h = c->curl;
    long timeout_ms = (long)(cf->timeout_ns / 1000000);
    CURLcode e = curl_easy_setopt(h, CURLOPT_URL, cf->url);
    e = e ? e : curl_easy_setopt(h, CURLOPT_POST, 1L);
    e = e ? e : curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    /* A stall limit (on_progress) rather than a limit on the whole request: on a slow uplink a
     * large request may take minutes while bytes still move, and must not be retried forever
     * for that. (libcurl's LOW_SPEED_TIME averages over several seconds: too coarse.) */
    e = e ? e : curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    e = e ? e : curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    e = e ? e : curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    e = e ? e : curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    e = e ? e : curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* we run on a delivery thread */
    e = e ? e : curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    e = e ? e : curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    e = e ? e : curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    e = e ? e : curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    e = e ? e : curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    e = e ? e : curl_easy_setopt(h, CURLOPT_USERAGENT, "millrace-forward/1");
    e = e ? e : mr_curl_tls_apply(h, &cf->tls);
    if (e != CURLE_OK) {
        return MR_ERR_SET(err, MR_EINVAL, "libcurl refused a setting: %s", curl_easy_strerror(e));
    }
    return 0;
}

/* gzip body into zbuf. Returns 0 or MR_EIO. */
static int compress_body(struct forward_ctx *c, const uint8_t *body, size_t len, size_t *out_len)
{
    if (deflateReset(&c->z) != Z_OK) {
        return MR_EIO;
    }
    c->z.next_in = (Bytef *)(uintptr_t)body;
    c->z.avail_in = (uInt)len;
    c->z.next_out = c->zbuf;
    c->z.avail_out = (uInt)c->zcap;
    if (deflate(&c->z, Z_FINISH) != Z_STREAM_END) {
        return MR_EIO; /* cannot happen: zcap is deflateBound of the largest body */
    }
    *out_len = c->zcap - c->z.avail_out;
    return 0;
}

/* ---- link state and metrics ---- */

static void link_down(struct forward_ctx *c, const char *why)
{
    mr_counter_add(c->m.req_retry, 1);
    mr_counter_add(c->counters.errors, 1);
    int64_t now = mr_clock_mono_ns();
    if (!c->down) {
        c->down = true;
        c->down_since_ns = now;
        c->rl = (struct mr_log_ratelimit){0};
        (void)mr_log_ratelimit_pass(&c->rl, 1, 60000);
        MR_LOG_WARN(c->host->name,
                    "cannot deliver to %s: %s; records wait in the journal until it answers",
                    c->conf->url, why);
        return;
    }
    if (mr_log_ratelimit_pass(&c->rl, 1, 60000) >= 0) {
        MR_LOG_WARN(c->host->name, "still cannot deliver to %s after %" PRId64 " s: %s",
                    c->conf->url, (now - c->down_since_ns) / 1000000000, why);
    }
}

static void link_up(struct forward_ctx *c)
{
    if (c->down) {
        c->down = false;
        MR_LOG_INFO(c->host->name, "link to %s back after %" PRId64 " s; catching up", c->conf->url,
                    (mr_clock_mono_ns() - c->down_since_ns) / 1000000000);
    }
}

/* The receiver's words for a refusal: the "error" member of a JSON answer, or the text. */
static const char *refusal_text(struct forward_ctx *c, char *out, size_t cap)
{
    json_error_t jerr;
    json_t *root = json_loadb(c->resp, c->resp_len, 0, &jerr);
    const char *msg = json_string_value(json_object_get(root, "error"));
    const char *src = msg != NULL ? msg : c->resp;
    size_t n = strnlen(src, cap - 1); /* a long message is cut, not an error */
    memcpy(out, src, n);
    out[n] = '\0';
    json_decref(root);
    for (char *p = out; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = ' '; /* one line in logs, whatever the receiver sent */
        }
    }
    return out[0] != '\0' ? out : "(no message)";
}

/* A 2xx answer: the receiver committed the request. Counts what it says it kept. */
static void on_acknowledged(struct forward_ctx *c, uint32_t count)
{
    json_error_t jerr;
    json_t *root = json_loadb(c->resp, c->resp_len, 0, &jerr);
    json_t *kept = json_object_get(root, "kept");
    json_t *dups = json_object_get(root, "duplicates");
    if (json_is_integer(kept) && json_is_integer(dups) && json_integer_value(dups) >= 0) {
        mr_counter_add(c->m.duplicates, (uint64_t)json_integer_value(dups));
        if (json_integer_value(kept) + json_integer_value(dups) != (json_int_t)count) {
            MR_LOG_RL(&c->rl_answer, MR_LOG_WARN, c->host->name,
                      "receiver says it kept %" JSON_INTEGER_FORMAT " and had %" JSON_INTEGER_FORMAT
                      " of %" PRIu32 " records sent",
                      json_integer_value(kept), json_integer_value(dups), count);
        }
    } else {
        MR_LOG_RL(&c->rl_answer, MR_LOG_WARN, c->host->name,
                  "receiver acknowledged without {\"kept\": n, \"duplicates\": d}: %.80s", c->resp);
    }
    json_decref(root);
    mr_counter_add(c->m.req_ok, 1);
    mr_counter_add(c->m.records, count);
    mr_counter_add(c->counters.records_out, count);
    link_up(c);
}

/* POST one finished body. Returns MR_SINK_OK, MR_SINK_RETRY or MR_SINK_FATAL. */
static int send_body(struct forward_ctx *c, const uint8_t *body, size_t len, uint32_t count,
                     struct mr_err *err)
{
    const uint8_t *payload = body;
    size_t plen = len;
    if (c->conf->content_encoding == ENC_GZIP) {
        int rc = compress_body(c, body, len, &plen);
        if (rc != 0) {
            MR_ERR_SET(err, rc, "gzip failed on a %zu-byte request", len);
            return MR_SINK_FATAL;
        }
        payload = c->zbuf;
    }
    c->resp_len = 0;
    c->resp[0] = '\0';
    c->errbuf[0] = '\0';
    c->seen_up = 0;
    c->seen_down = 0;
    c->progress_ns = mr_clock_mono_ns();
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)plen);
    CURLcode e = curl_easy_perform(c->curl);
    if (e != CURLE_OK) {
        char stalled[96];
        snprintf(stalled, sizeof(stalled), "no progress for %" PRId64 " ms (timeout)",
                 c->conf->timeout_ns / 1000000);
        const char *why = e == CURLE_ABORTED_BY_CALLBACK ? stalled
                          : c->errbuf[0] != '\0'         ? c->errbuf
                                                         : curl_easy_strerror(e);
        link_down(c, why);
        bool timed_out = e == CURLE_OPERATION_TIMEDOUT || e == CURLE_ABORTED_BY_CALLBACK;
        MR_ERR_SET(err, timed_out ? MR_ETIMEDOUT : MR_EIO, "%s: %s", c->conf->url, why);
        return MR_SINK_RETRY;
    }
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    mr_counter_add(c->m.bytes, plen);
    mr_counter_add(c->m.ubytes, len);
    if (status >= 200 && status < 300) {
        on_acknowledged(c, count);
        return MR_SINK_OK;
    }
    char msg[200];
    refusal_text(c, msg, sizeof(msg));
    if (status >= 500 || status == 429 || status == 408) {
        char why[256];
        snprintf(why, sizeof(why), "HTTP %ld: %s", status, msg);
        link_down(c, why);
        MR_ERR_SET(err, MR_EAGAIN, "%s answered %s", c->conf->url, why);
        return MR_SINK_RETRY;
    }
    mr_counter_add(c->m.req_fatal, 1);
    mr_counter_add(c->counters.errors, 1);
    MR_ERR_SET(err, MR_EINVAL, "%s refused the records (HTTP %ld): %s%s", c->conf->url, status, msg,
               status == 413 ? " (lower max_batch_bytes or raise the receiver's limit)" : "");
    return MR_SINK_FATAL;
}

/* ---- pacing ---- */

static void bucket_refill(struct forward_ctx *c)
{
    int64_t now = mr_clock_mono_ns();
    c->tokens += (double)(now - c->refilled_ns) * (double)c->conf->rate_limit / 1e9;
    if (c->tokens > c->burst) {
        c->tokens = c->burst;
    }
    c->refilled_ns = now;
}

/* Take k tokens; when that leaves a debt, wait until it is paid (in slices of <= 100 ms). */
static void bucket_take(struct forward_ctx *c, uint32_t k)
{
    if (c->conf->rate_limit <= 0) {
        return;
    }
    bucket_refill(c);
    c->tokens -= k;
    while (c->tokens < 0) {
        double wait_ns = -c->tokens / (double)c->conf->rate_limit * 1e9;
        mr_clock_sleep_ns(wait_ns > 1e8 ? 100000000 : (int64_t)wait_ns + 1);
        bucket_refill(c);
    }
}

/* A request that was not acknowledged used no uplink worth pacing: give its tokens back. */
static void bucket_refund(struct forward_ctx *c, uint32_t k)
{
    if (c->conf->rate_limit > 0) {
        c->tokens += k;
        if (c->tokens > c->burst) {
            c->tokens = c->burst;
        }
    }
}

/* ---- the output ---- */

/* Encode recs[*i..] into one request (as many as fit). Returns 0, MR_SINK_RETRY (out of
 * memory) or MR_SINK_FATAL (a record that can never be sent). */
static int encode_request(struct forward_ctx *c, const struct mr_output_position *pos,
                          const struct mr_record *recs, size_t n, size_t *i, int64_t *oldest,
                          struct mr_err *err)
{
    if (mr_fwd_encoder_begin(&c->enc, c->node, pos->topic, pos->partition) != 0) {
        MR_ERR_SET(err, MR_EINVAL, "topic '%s' cannot be forwarded (bad name)", pos->topic);
        return MR_SINK_FATAL;
    }
    *oldest = INT64_MAX;
    for (; *i < n && mr_fwd_encoder_count(&c->enc) < c->max_records; (*i)++) {
        int rc = mr_fwd_encoder_add(&c->enc, pos->offsets[*i], &recs[*i], c->host->names);
        if (rc == MR_ETOOBIG && mr_fwd_encoder_count(&c->enc) > 0) {
            break; /* send what is there; this record starts the next request */
        }
        if (rc != 0) {
            MR_ERR_SET(err, rc, "%s[%" PRIu32 "] offset %" PRId64 ": %s", pos->topic,
                       pos->partition, pos->offsets[*i],
                       rc == MR_ETOOBIG  ? "record larger than max_batch_bytes: raise it"
                       : rc == MR_EINVAL ? "invalid record or offsets not increasing"
                                         : mr_strerror(rc));
            return rc == MR_ENOMEM ? MR_SINK_RETRY : MR_SINK_FATAL;
        }
        if (recs[*i].time_ns < *oldest) {
            *oldest = recs[*i].time_ns;
        }
    }
    return 0;
}

/* Index of the first record the receiver has not acknowledged yet (a retried batch). */
static size_t first_unacked(const struct forward_ctx *c, const struct mr_output_position *pos,
                            size_t n)
{
    if (!c->has_acked || c->acked_partition != pos->partition ||
        strcmp(c->acked_topic, pos->topic) != 0) {
        return 0;
    }
    size_t i = 0;
    while (i < n && pos->offsets[i] <= c->acked_offset) {
        i++;
    }
    return i;
}

static int forward_write_at(void *ctx, const struct mr_output_position *pos,
                            const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct forward_ctx *c = ctx;
    if (pos == NULL || pos->topic == NULL || pos->offsets == NULL) {
        MR_ERR_SET(err, MR_EINVAL, "forward needs each record's journal position");
        return MR_SINK_FATAL;
    }
    mr_counter_add(c->counters.records_in, n);
    size_t i = first_unacked(c, pos, n);
    if (i == n) {
        mr_gauge_set(c->m.backlog_age, 0);
    }
    while (i < n) {
        int64_t oldest;
        int answer = encode_request(c, pos, recs, n, &i, &oldest, err);
        if (answer != 0) {
            mr_counter_add(c->counters.errors, 1);
            return answer;
        }
        const uint8_t *body;
        size_t len;
        if (mr_fwd_encoder_finish(&c->enc, &body, &len) != 0) {
            MR_ERR_SET(err, MR_ENOMEM, "out of memory finishing a request");
            return MR_SINK_RETRY; /* only an allocation can fail here: count > 0 */
        }
        uint32_t count = mr_fwd_encoder_count(&c->enc);
        bucket_take(c, count);
        int64_t age = mr_clock_wall_ns() - oldest;
        mr_gauge_set(c->m.backlog_age, age > 0 ? (double)age / 1e9 : 0.0);
        answer = send_body(c, body, len, count, err);
        if (answer != MR_SINK_OK) {
            bucket_refund(c, count);
            return answer;
        }
        c->has_acked = true;
        c->acked_partition = pos->partition;
        c->acked_offset = pos->offsets[i - 1];
        snprintf(c->acked_topic, sizeof(c->acked_topic), "%s", pos->topic);
    }
    return MR_SINK_OK;
}

static int forward_write(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    (void)ctx;
    (void)recs;
    (void)n;
    MR_ERR_SET(err, MR_ENOTSUP,
               "forward needs each record's journal position (write_at), which the engine "
               "provides when forward reads from journal topics");
    return MR_SINK_FATAL;
}

static int forward_flush(void *ctx, struct mr_err *err)
{
    (void)ctx;
    (void)err;
    return MR_SINK_OK; /* each write_at returns only after its records were acknowledged */
}

static void forward_fini(void *ctx)
{
    struct forward_ctx *c = ctx;
    if (c->curl != NULL) {
        curl_easy_cleanup(c->curl);
        c->curl = NULL;
    }
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    if (c->z_ready) {
        deflateEnd(&c->z);
        c->z_ready = false;
    }
    mr_free(c->zbuf);
    c->zbuf = NULL;
    mr_fwd_encoder_fini(&c->enc);
}

static int metrics_register(struct forward_ctx *c, struct mr_err *err)
{
    struct mr_metrics *m = c->host->metrics;
    char inst[256], labels[320], lab_ok[352], lab_retry[352], lab_fatal[352];
    int rc = mr_plugin_counters_register(m, &mr_output_forward, c->host->name, &c->counters);
    if (rc == 0 && mr_metrics_label_escape(c->host->name, inst, sizeof(inst)) < 0) {
        rc = MR_ETOOBIG;
    }
    if (rc == 0) {
        snprintf(labels, sizeof(labels), "instance=\"%s\"", inst);
        snprintf(lab_ok, sizeof(lab_ok), "%s,result=\"ok\"", labels);
        snprintf(lab_retry, sizeof(lab_retry), "%s,result=\"retry\"", labels);
        snprintf(lab_fatal, sizeof(lab_fatal), "%s,result=\"fatal\"", labels);
        rc = mr_metrics_counter(m, "millrace_forward_records_total",
                                "Records the receiver acknowledged (kept or already had).", labels,
                                &c->m.records);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_forward_bytes_total",
                                "Request bytes sent as on the wire (after compression).", labels,
                                &c->m.bytes);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_forward_uncompressed_bytes_total",
                                "Request bytes sent before compression.", labels, &c->m.ubytes);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_forward_duplicates_total",
                                "Records the receiver said it already kept (resent after a lost "
                                "answer or a restart).",
                                labels, &c->m.duplicates);
    }
    if (rc == 0) {
        rc = mr_metrics_gauge(m, "millrace_forward_backlog_age_seconds",
                              "Age of the oldest record in the request being sent (event time): "
                              "how far behind the forwarding is.",
                              labels, &c->m.backlog_age);
    }
    static const char req_help[] = "Forward requests by result: ok (acknowledged), retry "
                                   "(receiver away or busy), fatal (refused).";
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_forward_requests_total", req_help, lab_ok,
                                &c->m.req_ok);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_forward_requests_total", req_help, lab_retry,
                                &c->m.req_retry);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_forward_requests_total", req_help, lab_fatal,
                                &c->m.req_fatal);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
    }
    return 0;
}

static int node_init(struct forward_ctx *c, struct mr_err *err)
{
    if (c->conf->node != NULL) {
        snprintf(c->node, sizeof(c->node), "%s", c->conf->node);
    } else if (gethostname(c->node, sizeof(c->node) - 1) != 0) {
        return MR_ERR_SET(err, MR_ECONFIG, "node not set and the host name is unknown: set node");
    }
    if (!node_name_ok(c->node)) {
        return MR_ERR_SET(err, MR_ECONFIG,
                          "node '%s' must be 1..255 of A-Z a-z 0-9 . _ - (set node)", c->node);
    }
    return 0;
}

static int forward_init(void *ctx, const void *conf, struct mr_output_host *host,
                        struct mr_err *err)
{
    struct forward_ctx *c = ctx;
    memset(c, 0, sizeof(*c));
    c->conf = conf;
    c->host = host;
    const struct forward_conf *cf = c->conf;
    int rc = node_init(c, err);
    if (rc != 0) {
        goto fail;
    }
    pthread_once(&curl_once, curl_lib_init);
    if (curl_init_rc != CURLE_OK || (c->curl = curl_easy_init()) == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "cannot start libcurl");
        goto fail;
    }
    if (mr_fwd_encoder_init(&c->enc, (size_t)cf->max_batch_bytes) != 0) {
        rc = MR_ERR_SET(err, MR_ECONFIG, "max_batch_bytes too small");
        goto fail;
    }
    if (cf->content_encoding == ENC_GZIP) {
        if (deflateInit2(&c->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            rc = MR_ERR_SET(err, MR_ENOMEM, "cannot start gzip");
            goto fail;
        }
        c->z_ready = true;
        c->zcap = deflateBound(&c->z, (uLong)cf->max_batch_bytes);
        c->zbuf = mr_malloc(c->zcap);
        if (c->zbuf == NULL) {
            rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
            goto fail;
        }
    }
    rc = curl_setup(c, err);
    if (rc == 0) {
        rc = metrics_register(c, err);
    }
    if (rc != 0) {
        goto fail;
    }
    c->burst = cf->rate_limit / 10.0 < 1.0 ? 1.0 : (double)cf->rate_limit / 10.0;
    c->tokens = c->burst;
    c->max_records = cf->rate_limit > 0 && cf->rate_limit < (int64_t)MR_FWD_MAX_RECORDS
                         ? (uint32_t)cf->rate_limit
                         : MR_FWD_MAX_RECORDS;
    c->refilled_ns = mr_clock_mono_ns();
    return 0;
fail:
    forward_fini(c);
    return rc;
}

const struct mr_plugin mr_output_forward = {
    .kind = MR_PLUGIN_OUTPUT,
    .name = "forward",
    .help = "Store-and-forward: relays journal topics to another millrace (its `receive` input) "
            "over HTTP in compressed batches. Records leave the journal only when the receiver "
            "has committed them, and the receiver keeps each one once, so an outage or a crash "
            "on either side neither loses nor duplicates data; catch-up can be rate-limited.",
    .conf = {.fields = forward_fields, .size = sizeof(struct forward_conf), .check = forward_check},
    .ctx_size = sizeof(struct forward_ctx),
    .output = {.init = forward_init,
               .write = forward_write,
               .write_at = forward_write_at,
               .flush = forward_flush,
               .fini = forward_fini},
};
