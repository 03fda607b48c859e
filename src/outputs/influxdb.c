/* Output `influxdb`: writes records to InfluxDB 1.x (v1 HTTP API, POST /write) as line protocol.
 *
 *   outputs:
 *     historian:
 *       type: influxdb
 *       urls: ["http://influx.plant:8086"]   # several: one cluster, the next on failure
 *       database: factory
 *       retention_policy: ""                 # default: the database's default policy
 *       precision: ns                        # ns | us | ms | s
 *       username: ${INFLUX_USER}             # optional (HTTP basic auth)
 *       password: ${INFLUX_PASSWORD}
 *       content_encoding: gzip               # gzip | identity
 *       timeout: 5s
 *       skip_database_creation: false        # false: CREATE DATABASE at start (Telegraf's default)
 *       measurement: ""                      # unset: signal "spindle.temp" -> spindle / temp
 *       asset_tag: asset                     # tag holding the whole asset path ("" for none)
 *       asset_path_tags: [site, area, line, machine]   # tag per asset path segment
 *       quality: field                       # field | tag | drop (only when not good)
 *
 * Rendering: src/outputs/lineproto_out.h. Each write renders its batch into one body of at most
 * max_batch_bytes (a larger batch is sent as several bodies, one after the other) and answers
 * OK only after InfluxDB confirmed every body (204).
 *
 * Idempotent by construction: a point is identified by measurement, tag set, field and
 * timestamp, and writing it again overwrites it with the same value. So a batch sent again (a
 * RETRY, a replay of what came after the last cursor commit after a crash) never duplicates a
 * point. (Two different records that map to the same series, field and time - e.g. two values
 * within one second at precision s - do overwrite each other: the last one wins.)
 *
 * Answers: 204 -> OK. No answer (refused, timeout), 5xx, 408, 429 -> the next URL is tried;
 * when none answers -> RETRY. 401/403 -> FATAL (credentials). 404 "database not found" ->
 * CREATE DATABASE and RETRY when creation is on, else FATAL. 400 saying a point was bad
 * ("partial write: ..." for a field type conflict or points outside the retention policy,
 * "unable to parse ..." for a line it cannot read): InfluxDB 1.x wrote the other points and
 * does not say which lines it refused, so the body is split in halves and each half sent again
 * (rewriting the good points is harmless: idempotent) until single lines remain; each refused
 * line's record goes to host->reject with InfluxDB's own message. That costs about
 * 2*log2(lines) extra requests per bad point. Any other 400 (e.g. "retention policy not found")
 * is a configuration problem -> FATAL. Records that cannot be line protocol at all (NaN,
 * sample blocks, names ending in '\' or holding a line break) are rejected without a request.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"
#include "millrace/plugin.h"
#include "outputs/curl_out.h"
#include "outputs/lineproto_out.h"

extern const struct mr_plugin mr_output_influxdb;

enum { ENC_GZIP = 0, ENC_IDENTITY = 1 };

struct influx_conf {
    struct mr_strlist urls;
    char *database;
    char *retention_policy;
    int precision;
    char *username;
    char *password;
    int content_encoding;
    int64_t timeout_ns;
    bool skip_database_creation;
    char *measurement;
    char *asset_tag;
    struct mr_strlist asset_path_tags;
    int quality;
    uint64_t max_batch_bytes;
    struct mr_curl_tls tls;
};

/* Lines of one body: at most this many records per request, so that a write of
 * delivery.batch_size records (up to 100000) goes out as one request when max_batch_bytes
 * allows; the line tables take 16 bytes a line. */
#define MAX_LINES 100000u
#define MIN_LINE                                                                                   \
    32u /* lines per body: at most max_batch_bytes / MIN_LINE (shorter lines: more                 \
           requests, nothing lost) */

struct influx_ctx {
    const struct influx_conf *conf;
    struct mr_output_host *host;
    struct mr_plugin_counters counters;
    struct mr_counter *m_bytes;
    struct mr_counter *m_rejected;
    struct mr_lineproto lp;
    struct mr_curl_out http;
    struct curl_slist *write_headers;
    struct curl_slist *query_headers;
    char **write_urls; /* per configured url: .../write?db=..&rp=..&precision=.. */
    char **query_urls; /* per configured url: .../query */
    size_t nurls;
    size_t cur; /* the URL that answered last */
    char *body;
    size_t body_cap;
    size_t max_lines;
    size_t *line_off; /* max_lines + 1: line k is body[line_off[k]..line_off[k+1]) */
    size_t *line_rec; /* max_lines: the record index of line k */
    bool down;
    struct mr_log_ratelimit rl;
};

static const char *const encodings[] = {"gzip", "identity", NULL};
static const char *const precisions[] = {"ns", "us", "ms", "s", NULL};
static const char *const qualities[] = {"field", "tag", "drop", NULL};

static void influx_check(void *conf, struct mr_config_check *chk)
{
    const struct influx_conf *c = conf;
    mr_curl_tls_check(&c->tls, chk);
    for (size_t i = 0; i < c->urls.n; i++) {
        const char *u = c->urls.items[i];
        if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
            mr_config_check_fail(chk, "urls", "'%s' must start with http:// or https://", u);
        }
    }
    if (c->asset_path_tags.n > MR_LP_MAX_PATH_TAGS) {
        mr_config_check_fail(chk, "asset_path_tags", "at most %d entries", MR_LP_MAX_PATH_TAGS);
    }
    if ((c->username == NULL) != (c->password == NULL)) {
        mr_config_check_fail(chk, c->username == NULL ? "password" : "username",
                             "username and password go together");
    }
}

static const struct mr_field influx_fields[] = {
    {.name = "urls",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct influx_conf, urls),
     .def = "[\"http://127.0.0.1:8086\"]",
     .min = "1",
     .help = "InfluxDB 1.x addresses (http:// or https://). Several URLs are one cluster: writes "
             "go to the one that answered last and move on to the next when it does not."},
    {.name = "database",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct influx_conf, database),
     .def = "millrace",
     .help = "Database the points are written to."},
    {.name = "retention_policy",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct influx_conf, retention_policy),
     .help = "Retention policy to write to; unset: the database's default policy."},
    {.name = "precision",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct influx_conf, precision),
     .def = "ns",
     .values = precisions,
     .help = "Time precision written (ns, us, ms, s). Coarser saves space, but two values of the "
             "same signal within one unit then overwrite each other (the last one stays)."},
    {.name = "username",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct influx_conf, username),
     .help = "User for HTTP basic authentication (with password), when InfluxDB has auth on."},
    {.name = "password",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct influx_conf, password),
     .help = "Password of username. Use ${NAME} to take it from the environment."},
    {.name = "content_encoding",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct influx_conf, content_encoding),
     .def = "gzip",
     .values = encodings,
     .help = "gzip compresses each request (about 10x fewer bytes, some CPU); identity sends "
             "the line protocol as is."},
    {.name = "timeout",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct influx_conf, timeout_ns),
     .def = "5s",
     .min = "100ms",
     .max = "10m",
     .help = "Longest a request may take; after it the next URL is tried, then the batch is "
             "retried later."},
    {.name = "skip_database_creation",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct influx_conf, skip_database_creation),
     .def = "false",
     .help = "false: create the database at start and when InfluxDB says it is missing. true: "
             "never create it (a missing database then stops this output with an error)."},
    {.name = "measurement",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct influx_conf, measurement),
     .help = "Write every record to this measurement, with the signal name as the field. "
             "Unset: the signal's part before the first '.' is the measurement and the rest the "
             "field (spindle.temp -> measurement spindle, field temp; a signal without '.' -> "
             "measurement = signal, field value)."},
    {.name = "asset_tag",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct influx_conf, asset_tag),
     .def = "asset",
     .help = "Tag key holding the whole asset path (e.g. asset=plant/hall2/line1/press); "
             "empty: no such tag."},
    {.name = "asset_path_tags",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct influx_conf, asset_path_tags),
     .max = "8",
     .help = "Tag keys for the asset path's segments in order, e.g. [site, area, line, machine] "
             "turns plant/hall2/line1/press into site=plant,area=hall2,...; \"-\" skips a "
             "segment."},
    {.name = "quality",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct influx_conf, quality),
     .def = "field",
     .values = qualities,
     .help = "How a value that is not good is marked: field (FIELD_quality=\"bad\" next to the "
             "value), tag (quality=bad: a separate series) or drop (not written). Good values "
             "carry no mark."},
    {.name = "max_batch_bytes",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct influx_conf, max_batch_bytes),
     .def = "1MiB",
     .min = "64KiB",
     .max = "16MiB",
     .help = "Largest request body (before compression); a larger batch goes out as several "
             "requests. Keep it below InfluxDB's max-body-size (25 MB by default)."},
    MR_CURL_TLS_FIELDS(struct influx_conf, tls),
    {0},
};

/* ---- requests ---- */

enum answer { ANS_OK, ANS_RETRY, ANS_FATAL, ANS_POINTS, ANS_NO_DB };

static void link_down(struct influx_ctx *c, const char *url, const char *why)
{
    mr_counter_add(c->counters.errors, 1);
    if (!c->down) {
        c->down = true;
        c->rl = (struct mr_log_ratelimit){0};
        (void)mr_log_ratelimit_pass(&c->rl, 1, 60000);
        MR_LOG_WARN(c->host->name, "cannot write to %s: %s; records wait in the journal", url, why);
    } else if (mr_log_ratelimit_pass(&c->rl, 1, 60000) >= 0) {
        MR_LOG_WARN(c->host->name, "still cannot write to %s: %s", url, why);
    }
}

/* Sort a non-2xx /write answer. msg gets InfluxDB's error text. */
static enum answer classify(long status, const char *msg)
{
    if (status == 400 &&
        (strstr(msg, "partial write") != NULL || strstr(msg, "unable to parse") != NULL ||
         strstr(msg, "field type conflict") != NULL)) {
        return ANS_POINTS;
    }
    if (status == 404 && strstr(msg, "database not found") != NULL) {
        return ANS_NO_DB;
    }
    if (strstr(msg, "retention policy not found") != NULL) {
        return ANS_FATAL; /* InfluxDB 1.6 answers it with a 500, but retrying cannot help */
    }
    if (status >= 500 || status == 408 || status == 429) {
        return ANS_RETRY;
    }
    return ANS_FATAL;
}

/* POST body[0..len) to the URLs in turn, starting with the one that answered last. */
static enum answer post_lines(struct influx_ctx *c, const char *body, size_t len, char *msg,
                              size_t msg_cap, struct mr_err *err)
{
    bool gzip = c->conf->content_encoding == ENC_GZIP;
    for (size_t tries = 0; tries < c->nurls; tries++) {
        const char *url = c->write_urls[c->cur];
        long status = 0;
        size_t wire = 0;
        const char *why = NULL;
        int rc = mr_curl_out_send(&c->http, "POST", url, c->write_headers, body, len, gzip, &status,
                                  &wire, &why);
        if (rc != 0) {
            link_down(c, c->conf->urls.items[c->cur], why);
            MR_ERR_SET(err, rc, "%s: %s", c->conf->urls.items[c->cur], why);
            c->cur = (c->cur + 1) % c->nurls;
            continue;
        }
        mr_counter_add(c->m_bytes, wire);
        if (status >= 200 && status < 300) {
            if (c->down) {
                c->down = false;
                MR_LOG_INFO(c->host->name, "%s answers again; catching up",
                            c->conf->urls.items[c->cur]);
            }
            return ANS_OK;
        }
        mr_curl_out_answer_text(&c->http, msg, msg_cap);
        enum answer a = classify(status, msg);
        if (a != ANS_RETRY) {
            MR_ERR_SET(err, MR_EINVAL, "%s answered HTTP %ld: %s", c->conf->urls.items[c->cur],
                       status, msg);
            return a;
        }
        char why2[300];
        snprintf(why2, sizeof(why2), "HTTP %ld: %s", status, msg);
        link_down(c, c->conf->urls.items[c->cur], why2);
        MR_ERR_SET(err, MR_EAGAIN, "%s answered %s", c->conf->urls.items[c->cur], why2);
        c->cur = (c->cur + 1) % c->nurls;
    }
    return ANS_RETRY;
}

/* CREATE DATABASE on the current URL. Returns 0, or an MR_E* code with err filled. */
static int database_create(struct influx_ctx *c, struct mr_err *err)
{
    /* q=CREATE DATABASE "name" (a double quote or backslash inside must be escaped) */
    char stmt[600], form[2048];
    size_t w = 0;
    const char *db = c->conf->database;
    for (size_t i = 0; db[i] != '\0' && w + 3 < sizeof(stmt); i++) {
        if (db[i] == '"' || db[i] == '\\') {
            stmt[w++] = '\\';
        }
        stmt[w++] = db[i];
    }
    stmt[w] = '\0';
    char quoted[700];
    snprintf(quoted, sizeof(quoted), "CREATE DATABASE \"%s\"", stmt);
    char *q = curl_easy_escape(c->http.curl, quoted, 0);
    if (q == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    int n = snprintf(form, sizeof(form), "q=%s", q);
    curl_free(q);
    long status = 0;
    const char *why = NULL;
    int rc = mr_curl_out_send(&c->http, "POST", c->query_urls[c->cur], c->query_headers, form,
                              (size_t)n, false, &status, NULL, &why);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "%s: %s", c->conf->urls.items[c->cur], why);
    }
    if (status != 200) {
        char msg[256];
        mr_curl_out_answer_text(&c->http, msg, sizeof(msg));
        return MR_ERR_SET(err, status == 401 || status == 403 ? MR_EACCES : MR_EIO,
                          "CREATE DATABASE \"%s\" on %s: HTTP %ld: %s", db,
                          c->conf->urls.items[c->cur], status, msg);
    }
    MR_LOG_INFO(c->host->name, "database \"%s\" ready on %s", db, c->conf->urls.items[c->cur]);
    return 0;
}

/* Lines [a, b) were refused in part: find which by halving, reject those. */
static enum answer bisect(struct influx_ctx *c, size_t a, size_t b, const char *msg_ab,
                          struct mr_err *err)
{
    if (b - a == 1) {
        char reason[320];
        snprintf(reason, sizeof(reason), "InfluxDB refused the point: %s", msg_ab);
        c->host->reject(c->host, c->line_rec[a], reason);
        mr_counter_add(c->m_rejected, 1);
        mr_counter_add(c->counters.errors, 1);
        return ANS_OK;
    }
    size_t mid = a + (b - a) / 2;
    size_t ranges[2][2] = {{a, mid}, {mid, b}};
    for (int h = 0; h < 2; h++) {
        size_t lo = ranges[h][0], hi = ranges[h][1];
        char msg[256] = "";
        enum answer ans = post_lines(c, c->body + c->line_off[lo],
                                     c->line_off[hi] - c->line_off[lo], msg, sizeof(msg), err);
        if (ans == ANS_POINTS) {
            ans = bisect(c, lo, hi, msg, err);
        }
        if (ans != ANS_OK) {
            return ans == ANS_NO_DB ? ANS_RETRY : ans;
        }
    }
    return ANS_OK;
}

/* POST the nlines rendered lines; points InfluxDB refused are found and rejected. */
static enum answer post_body(struct influx_ctx *c, size_t nlines, struct mr_err *err)
{
    char msg[256] = "";
    enum answer ans = post_lines(c, c->body, c->line_off[nlines], msg, sizeof(msg), err);
    return ans == ANS_POINTS ? bisect(c, 0, nlines, msg, err) : ans;
}

/* Send the nlines rendered lines; returns an MR_SINK_* answer. */
static int send_body(struct influx_ctx *c, size_t nlines, struct mr_err *err)
{
    if (nlines == 0) {
        return MR_SINK_OK;
    }
    enum answer ans = post_body(c, nlines, err);
    if (ans == ANS_NO_DB) {
        if (c->conf->skip_database_creation) {
            MR_ERR_SET(err, MR_ECONFIG,
                       "database \"%s\" not found on %s: create it, or set "
                       "skip_database_creation: false",
                       c->conf->database, c->conf->urls.items[c->cur]);
            return MR_SINK_FATAL;
        }
        struct mr_err cerr = {0};
        if (database_create(c, &cerr) != 0) {
            MR_ERR_SET(err, cerr.code, "database \"%s\" missing and %s", c->conf->database,
                       cerr.msg);
            return cerr.code == MR_EACCES ? MR_SINK_FATAL : MR_SINK_RETRY;
        }
        ans = post_body(c, nlines, err);
    }
    switch (ans) {
    case ANS_OK:
        return MR_SINK_OK;
    case ANS_RETRY:
    case ANS_NO_DB:
        return MR_SINK_RETRY;
    default:
        if (strstr(err->msg, "HTTP 401") != NULL || strstr(err->msg, "HTTP 403") != NULL) {
            size_t l = strlen(err->msg);
            snprintf(err->msg + l, sizeof(err->msg) - l, " (check username and password)");
        } else if (strstr(err->msg, "HTTP 413") != NULL) {
            size_t l = strlen(err->msg);
            snprintf(err->msg + l, sizeof(err->msg) - l, " (lower max_batch_bytes)");
        }
        mr_counter_add(c->counters.errors, 1);
        return MR_SINK_FATAL;
    }
}

static void reject_local(struct influx_ctx *c, size_t index, const char *why)
{
    char reason[200];
    snprintf(reason, sizeof(reason), "not representable as InfluxDB line protocol: %s", why);
    c->host->reject(c->host, index, reason);
    mr_counter_add(c->m_rejected, 1);
    mr_counter_add(c->counters.errors, 1);
}

static int influx_write(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct influx_ctx *c = ctx;
    mr_counter_add(c->counters.records_in, n);
    size_t i = 0;
    while (i < n) {
        size_t nlines = 0, len = 0, first = i;
        for (; i < n && nlines < c->max_lines; i++) {
            if (recs[i].quality != MR_QUALITY_GOOD && c->conf->quality == MR_LP_QUALITY_DROP) {
                continue;
            }
            const char *why = NULL;
            c->line_off[nlines] = len;
            int rc = mr_lineproto_render(&c->lp, &recs[i], c->body, c->body_cap, &len, &why);
            if (rc == MR_ETOOBIG && nlines > 0) {
                break; /* this record starts the next body */
            }
            if (rc == MR_ETOOBIG) {
                reject_local(c, i, "record larger than max_batch_bytes");
                continue;
            }
            if (rc == MR_EINVAL) {
                reject_local(c, i, why);
                continue;
            }
            if (rc != 0) {
                MR_ERR_SET(err, rc, "rendering line protocol: %s", mr_strerror(rc));
                return MR_SINK_RETRY; /* out of memory: try again later */
            }
            c->line_rec[nlines++] = i;
        }
        c->line_off[nlines] = len;
        int answer = send_body(c, nlines, err);
        if (answer != MR_SINK_OK) {
            return answer;
        }
        mr_counter_add(c->counters.records_out, i - first);
    }
    return MR_SINK_OK;
}

static int influx_flush(void *ctx, struct mr_err *err)
{
    (void)ctx;
    (void)err;
    return MR_SINK_OK; /* each write returns only after InfluxDB confirmed it */
}

static void influx_fini(void *ctx)
{
    struct influx_ctx *c = ctx;
    mr_curl_out_fini(&c->http);
    curl_slist_free_all(c->write_headers);
    curl_slist_free_all(c->query_headers);
    for (size_t i = 0; i < c->nurls; i++) {
        mr_free(c->write_urls != NULL ? c->write_urls[i] : NULL);
        mr_free(c->query_urls != NULL ? c->query_urls[i] : NULL);
    }
    mr_free(c->write_urls);
    mr_free(c->query_urls);
    mr_free(c->body);
    mr_free(c->line_off);
    mr_free(c->line_rec);
    mr_lineproto_fini(&c->lp);
    memset(c, 0, sizeof(*c));
}

/* The /write and /query URLs of each configured base URL. */
static int urls_build(struct influx_ctx *c, struct mr_err *err)
{
    const struct influx_conf *cf = c->conf;
    c->nurls = cf->urls.n;
    c->write_urls = mr_calloc(c->nurls, sizeof(char *));
    c->query_urls = mr_calloc(c->nurls, sizeof(char *));
    char *db = curl_easy_escape(c->http.curl, cf->database, 0);
    char *rp = curl_easy_escape(c->http.curl, cf->retention_policy ? cf->retention_policy : "", 0);
    int rc =
        c->write_urls == NULL || c->query_urls == NULL || db == NULL || rp == NULL ? MR_ENOMEM : 0;
    for (size_t i = 0; rc == 0 && i < c->nurls; i++) {
        const char *base = cf->urls.items[i];
        size_t bl = strlen(base);
        while (bl > 0 && base[bl - 1] == '/') {
            bl--;
        }
        size_t cap = bl + strlen(db) + strlen(rp) + 64;
        c->write_urls[i] = mr_malloc(cap);
        c->query_urls[i] = mr_malloc(cap);
        if (c->write_urls[i] == NULL || c->query_urls[i] == NULL) {
            rc = MR_ENOMEM;
            break;
        }
        snprintf(c->write_urls[i], cap, "%.*s/write?db=%s%s%s&precision=%s", (int)bl, base, db,
                 rp[0] != '\0' ? "&rp=" : "", rp, precisions[cf->precision]);
        snprintf(c->query_urls[i], cap, "%.*s/query", (int)bl, base);
    }
    curl_free(db);
    curl_free(rp);
    return rc != 0 ? MR_ERR_SET(err, rc, "out of memory") : 0;
}

static int http_setup(struct influx_ctx *c, struct mr_err *err)
{
    const struct influx_conf *cf = c->conf;
    int rc =
        mr_curl_out_init(&c->http, (size_t)cf->max_batch_bytes, cf->content_encoding == ENC_GZIP,
                         cf->timeout_ns, "millrace-influxdb/1", &cf->tls, err);
    if (rc != 0) {
        return rc;
    }
    rc = mr_curl_out_header(&c->write_headers, "Content-Type: text/plain; charset=utf-8");
    rc = rc ? rc : mr_curl_out_header(&c->write_headers, "Expect:");
    if (rc == 0 && cf->content_encoding == ENC_GZIP) {
        rc = mr_curl_out_header(&c->write_headers, "Content-Encoding: gzip");
    }
    rc = rc ? rc
            : mr_curl_out_header(&c->query_headers,
                                 "Content-Type: application/x-www-form-urlencoded");
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "out of memory");
    }
    if (cf->username != NULL) {
        curl_easy_setopt(c->http.curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c->http.curl, CURLOPT_USERNAME, cf->username);
        curl_easy_setopt(c->http.curl, CURLOPT_PASSWORD, cf->password);
    }
    return urls_build(c, err);
}

static int metrics_register(struct influx_ctx *c, struct mr_err *err)
{
    struct mr_metrics *m = c->host->metrics;
    char inst[256], labels[320];
    int rc = mr_plugin_counters_register(m, &mr_output_influxdb, c->host->name, &c->counters);
    if (rc == 0 && mr_metrics_label_escape(c->host->name, inst, sizeof(inst)) < 0) {
        rc = MR_ETOOBIG;
    }
    if (rc == 0) {
        snprintf(labels, sizeof(labels), "instance=\"%s\"", inst);
        rc = mr_metrics_counter(m, "millrace_influxdb_bytes_total",
                                "Request bytes sent to InfluxDB as on the wire.", labels,
                                &c->m_bytes);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_influxdb_rejected_total",
                                "Records InfluxDB refused for good (or that cannot be line "
                                "protocol), sent to the dead-letter topic.",
                                labels, &c->m_rejected);
    }
    return rc != 0 ? MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc)) : 0;
}

static int influx_init(void *ctx, const void *conf, struct mr_output_host *host, struct mr_err *err)
{
    struct influx_ctx *c = ctx;
    memset(c, 0, sizeof(*c));
    c->conf = conf;
    c->host = host;
    const struct influx_conf *cf = c->conf;
    if (cf->urls.n == 0 || cf->database == NULL || cf->database[0] == '\0') {
        return MR_ERR_SET(err, MR_ECONFIG, "urls and database must be set");
    }
    struct mr_lp_conf lpc = {.measurement = cf->measurement,
                             .asset_tag = cf->asset_tag,
                             .path_tags = (const char *const *)cf->asset_path_tags.items,
                             .n_path_tags = cf->asset_path_tags.n,
                             .quality = cf->quality,
                             .precision = cf->precision};
    int rc = mr_lineproto_init(&c->lp, host->names, &lpc, err);
    if (rc == 0) {
        c->body_cap = (size_t)cf->max_batch_bytes;
        c->body = mr_malloc(c->body_cap);
        c->max_lines = c->body_cap / MIN_LINE < MAX_LINES ? c->body_cap / MIN_LINE : MAX_LINES;
        c->line_off = mr_calloc(c->max_lines + 1, sizeof(size_t));
        c->line_rec = mr_calloc(c->max_lines, sizeof(size_t));
        rc = c->body == NULL || c->line_off == NULL || c->line_rec == NULL
                 ? MR_ERR_SET(err, MR_ENOMEM, "out of memory")
                 : 0;
    }
    rc = rc ? rc : http_setup(c, err);
    rc = rc ? rc : metrics_register(c, err);
    if (rc != 0) {
        influx_fini(c);
        return rc;
    }
    if (!cf->skip_database_creation) {
        struct mr_err cerr = {0};
        if (database_create(c, &cerr) != 0) {
            /* Not fatal: InfluxDB may start later; a write that finds no database creates it. */
            MR_LOG_WARN(host->name, "%s; will create it on the first write", cerr.msg);
        }
    }
    return 0;
}

const struct mr_plugin mr_output_influxdb = {
    .kind = MR_PLUGIN_OUTPUT,
    .name = "influxdb",
    .help = "Writes records to InfluxDB 1.x over HTTP as line protocol (measurement from the "
            "signal, tags from the asset path and the record's tags). Writes are idempotent, so "
            "an outage or a crash neither loses nor duplicates points; points InfluxDB refuses "
            "go to the dead-letter topic with its reason.",
    .conf = {.fields = influx_fields, .size = sizeof(struct influx_conf), .check = influx_check},
    .ctx_size = sizeof(struct influx_ctx),
    .output = {.init = influx_init,
               .write = influx_write,
               .flush = influx_flush,
               .fini = influx_fini},
};
