/* The `influxdb` output (src/outputs/influxdb.c, lineproto_out.c) against the REAL InfluxDB 1.6
 * (/usr/bin/influxd) the test starts itself: config and data in a mkdtemp dir, HTTP and the
 * RPC bind on free 127.0.0.1 ports, reporting off, stopped by PID. Checks line-protocol escaping
 * (table), that records of every value kind with tricky names and tags read back via /query with
 * exact values and timestamps, that a server that is down answers RETRY and the same batch is
 * delivered after a restart, that a point InfluxDB refuses (field type conflict) goes to reject()
 * with InfluxDB's reason while the rest is written, that a missing database with creation off is
 * FATAL with a clear message, that a replay overwrites instead of duplicating, and that https
 * verifies the server against tls_ca (a second influxd with a certificate the test makes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/log.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "millrace/plugin.h"
#include "outputs/lineproto_out.h"
#include "support/certs.h"
#include "support/output_open.h"

extern const struct mr_plugin mr_output_influxdb;

/* ---- the peer: influxd ---- */

struct influx {
    char dir[64];
    char conf[128];
    int port;
    int rpc_port;
    pid_t pid;
    bool https; /* serves https with dir/srv.crt, signed by dir/ca.crt */
};

static struct influx g_ix;

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static size_t sink_body(char *data, size_t size, size_t nmemb, void *arg)
{
    char *buf = arg;
    size_t have = strlen(buf), n = size * nmemb;
    size_t take = have + n < 65535 ? n : 65535 - have;
    memcpy(buf + have, data, take);
    buf[have + take] = '\0';
    return n;
}

/* GET or POST path (query string included) on ix; returns the status, body in out. */
static long http_on(const struct influx *ix, const char *method, const char *path, char *out)
{
    char url[4096], ca[128];
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d%s", ix->https ? "https" : "http", ix->port, path);
    snprintf(ca, sizeof(ca), "%s/ca.crt", ix->dir);
    CURL *h = curl_easy_init();
    if (ix->https) {
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    }
    out[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_easy_cleanup(h);
    return status;
}

static long http(const char *method, const char *path, char *out)
{
    return http_on(&g_ix, method, path, out);
}

static void influx_start(struct influx *ix)
{
    char buf[65536];
    FILE *f = fopen(ix->conf, "w");
    assert_non_null(f);
    fprintf(f,
            "reporting-disabled = true\nbind-address = \"127.0.0.1:%d\"\n"
            "[meta]\n  dir = \"%s/meta\"\n  logging-enabled = false\n"
            "[data]\n  dir = \"%s/data\"\n  wal-dir = \"%s/wal\"\n  query-log-enabled = false\n"
            "[monitor]\n  store-enabled = false\n"
            "[http]\n  bind-address = \"127.0.0.1:%d\"\n  log-enabled = false\n"
            "  https-enabled = %s\n  https-certificate = \"%s/srv.crt\"\n"
            "  https-private-key = \"%s/srv.key\"\n"
            "[continuous_queries]\n  enabled = false\n",
            ix->rpc_port, ix->dir, ix->dir, ix->dir, ix->port, ix->https ? "true" : "false",
            ix->dir, ix->dir);
    fclose(f);
    char log[128];
    snprintf(log, sizeof(log), "%s/influxd.log", ix->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl("/usr/bin/influxd", "influxd", "run", "-config", ix->conf, (char *)NULL);
        _exit(127);
    }
    ix->pid = pid;
    for (int i = 0; i < 150; i++) { /* at most 15 s */
        if (http_on(ix, "GET", "/ping", buf) == 204) {
            return;
        }
        usleep(100000);
    }
    fail_msg("influxd did not answer /ping on port %d within 15 s (see %s)", ix->port, log);
}

static void influx_stop(struct influx *ix)
{
    if (ix->pid > 0) {
        kill(ix->pid, SIGTERM);
        waitpid(ix->pid, NULL, 0);
        ix->pid = 0;
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(g_ix.dir, sizeof(g_ix.dir), "/tmp/mr-influx.XXXXXX");
    assert_non_null(mkdtemp(g_ix.dir));
    snprintf(g_ix.conf, sizeof(g_ix.conf), "%s/influxdb.conf", g_ix.dir);
    g_ix.port = free_port();
    g_ix.rpc_port = free_port();
    influx_start(&g_ix);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    influx_stop(&g_ix);
    nftw(g_ix.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Rows of q in db as a JSON array of arrays (columns in *cols); caller decrefs the root. */
static json_t *query(const char *db, const char *q, json_t **cols, json_t **root)
{
    static char body[65536];
    CURL *h = curl_easy_init();
    char *eq = curl_easy_escape(h, q, 0);
    char *edb = curl_easy_escape(h, db, 0);
    char path[2048];
    snprintf(path, sizeof(path), "/query?db=%s&epoch=ns&q=%s", edb, eq);
    curl_free(eq);
    curl_free(edb);
    curl_easy_cleanup(h);
    assert_int_equal(http("GET", path, body), 200);
    *root = json_loads(body, 0, NULL);
    assert_non_null(*root);
    json_t *series =
        json_object_get(json_array_get(json_object_get(*root, "results"), 0), "series");
    if (series == NULL) {
        *cols = NULL;
        return NULL;
    }
    json_t *s0 = json_array_get(series, 0);
    *cols = json_object_get(s0, "columns");
    return json_object_get(s0, "values");
}

static json_t *col(json_t *cols, json_t *row, const char *name)
{
    for (size_t i = 0; i < json_array_size(cols); i++) {
        if (strcmp(json_string_value(json_array_get(cols, i)), name) == 0) {
            return json_array_get(row, i);
        }
    }
    fail_msg("no column %s", name);
    return NULL;
}

static long count_points(const char *db, const char *q)
{
    json_t *cols, *root;
    json_t *rows = query(db, q, &cols, &root);
    long n =
        rows != NULL ? (long)json_integer_value(json_array_get(json_array_get(rows, 0), 1)) : 0;
    json_decref(root);
    return n;
}

/* ---- the output under test ---- */

#define MAX_REJECTS 64

struct rig {
    struct mr_names *names;
    struct mr_metrics *metrics;
    struct mr_output_host host;
    unsigned char conf[1024];
    void *ctx;
    size_t nrejects;
    size_t reject_index[MAX_REJECTS];
    char reject_reason[MAX_REJECTS][320];
};

static void on_reject(struct mr_output_host *host, size_t index, const char *reason)
{
    struct rig *r = host->arg;
    if (r->nrejects < MAX_REJECTS) {
        r->reject_index[r->nrejects] = index;
        snprintf(r->reject_reason[r->nrejects], sizeof(r->reject_reason[0]), "%s", reason);
    }
    r->nrejects++;
}

/* A started influxdb output on the test's InfluxDB; yaml_fmt has one %d for its port. */
static struct rig *rig_open(const char *yaml_fmt)
{
    struct rig *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    assert_true(mr_output_influxdb.conf.size <= sizeof(r->conf));
    assert_int_equal(mr_names_create(&r->names, 1000, 1u << 20), 0);
    assert_int_equal(mr_metrics_create(&r->metrics), 0);
    r->host = (struct mr_output_host){.name = "outputs.historian",
                                      .names = r->names,
                                      .metrics = r->metrics,
                                      .reject = on_reject,
                                      .arg = r};
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), yaml_fmt, g_ix.port);
    struct mr_err err = {0};
    if (mr_test_output_open(&mr_output_influxdb, r->conf, yaml, &r->host, &r->ctx, &err) != 0) {
        fail_msg("%s", err.msg);
    }
    return r;
}

static void rig_close(struct rig *r)
{
    mr_output_influxdb.output.fini(r->ctx);
    free(r->ctx);
    mr_section_free(&mr_output_influxdb.conf, r->conf);
    mr_metrics_destroy(r->metrics);
    mr_names_destroy(r->names);
    free(r);
}

static mr_name_id intern(struct rig *r, const char *s)
{
    mr_name_id id;
    assert_int_equal(mr_names_intern(r->names, s, strlen(s), &id), 0);
    return id;
}

#define T0 1767225600000000000LL /* 2026-01-01T00:00:00Z */

/* ---- tests ---- */

static void test_escape_table(void **state)
{
    (void)state;
    static const struct {
        enum mr_lp_escape kind;
        const char *in;
        const char *out;
    } cases[] = {
        {MR_LP_ESC_MEASUREMENT, "a b,c=d\"e\\f", "a\\ b\\,c=d\"e\\f"},
        {MR_LP_ESC_KEY, "a b,c=d\"e\\f", "a\\ b\\,c\\=d\"e\\f"},
        {MR_LP_ESC_STRING, "say \"hi\", a\\b = c", "say \\\"hi\\\", a\\\\b = c"},
        {MR_LP_ESC_KEY, "plain", "plain"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[128];
        long n = mr_lp_escape(cases[i].kind, cases[i].in, strlen(cases[i].in), out, sizeof(out));
        assert_true(n >= 0);
        out[n] = '\0';
        assert_string_equal(out, cases[i].out);
    }
    char tiny[3];
    assert_int_equal(mr_lp_escape(MR_LP_ESC_KEY, "a b", 3, tiny, sizeof(tiny)), -1);
}

static void test_render_lines(void **state)
{
    (void)state;
    struct mr_names *names;
    assert_int_equal(mr_names_create(&names, 100, 1 << 16), 0);
    static const char *const path_tags[] = {"site", "-", "line"};
    struct mr_lp_conf lpc = {.asset_tag = "asset",
                             .path_tags = path_tags,
                             .n_path_tags = 3,
                             .quality = MR_LP_QUALITY_FIELD,
                             .precision = MR_LP_PRECISION_MS};
    struct mr_lineproto lp;
    struct mr_err err = {0};
    assert_int_equal(mr_lineproto_init(&lp, names, &lpc, &err), 0);
    mr_name_id asset, sig, plain, unit, bad;
    mr_names_intern(names, "p1/hall 2/l,1", 13, &asset);
    mr_names_intern(names, "spin dle.te=mp", 14, &sig);
    mr_names_intern(names, "rpm", 3, &plain);
    mr_names_intern(names, "unit", 4, &unit);
    mr_names_intern(names, "bad\\", 4, &bad);
    struct mr_record rec = {.time_ns = -1500001,
                            .asset = asset,
                            .signal = sig,
                            .type = MR_VALUE_F64,
                            .quality = MR_QUALITY_BAD,
                            .ntags = 1};
    rec.v.f64 = 0.1;
    rec.tags[0] = (struct mr_tag){unit, {"deg C", 5}};
    char out[512];
    size_t len = 0;
    const char *why = NULL;
    assert_int_equal(mr_lineproto_render(&lp, &rec, out, sizeof(out), &len, &why), 0);
    out[len] = '\0';
    assert_string_equal(out, "spin\\ dle,asset=p1/hall\\ 2/l\\,1,site=p1,line=l\\,1,unit=deg\\ C "
                             "te\\=mp=0.1,te\\=mp_quality=\"bad\" -2\n");
    rec = (struct mr_record){.time_ns = 5, .asset = asset, .signal = plain, .type = MR_VALUE_I64};
    rec.v.i64 = INT64_MIN;
    len = 0;
    assert_int_equal(mr_lineproto_render(&lp, &rec, out, sizeof(out), &len, &why), 0);
    out[len] = '\0';
    assert_string_equal(
        out, "rpm,asset=p1/hall\\ 2/l\\,1,site=p1,line=l\\,1 value=-9223372036854775808i 0\n");
    /* Not representable: a reason, nothing written. */
    rec.type = MR_VALUE_F64;
    rec.v.f64 = NAN;
    assert_int_equal(mr_lineproto_render(&lp, &rec, out, sizeof(out), &len, &why), MR_EINVAL);
    assert_non_null(strstr(why, "NaN"));
    rec.v.f64 = 1;
    rec.signal = bad;
    assert_int_equal(mr_lineproto_render(&lp, &rec, out, sizeof(out), &len, &why), MR_EINVAL);
    assert_non_null(strstr(why, "backslash"));
    rec.signal = plain;
    rec.type = MR_VALUE_SAMPLES;
    assert_int_equal(mr_lineproto_render(&lp, &rec, out, sizeof(out), &len, &why), MR_EINVAL);
    /* No room: nothing written. */
    rec.type = MR_VALUE_BOOL;
    size_t before = len;
    assert_int_equal(mr_lineproto_render(&lp, &rec, out, before + 10, &len, &why), MR_ETOOBIG);
    assert_int_equal(len, before);
    mr_lineproto_fini(&lp);
    mr_names_destroy(names);
}

/* Records of every kind with tricky names read back exactly. */
static void test_values_read_back_exactly(void **state)
{
    (void)state;
    struct rig *r = rig_open("{urls: [\"http://127.0.0.1:%d\"], database: \"plant db\", "
                             "asset_path_tags: [site, area, line, machine]}");
    mr_name_id asset = intern(r, "plant/hall 2/line,1/press=A");
    mr_name_id unit = intern(r, "unit name");
    static const char *const sigs[] = {"spindle.temp", "spindle.count", "spindle.running",
                                       "spindle.order", "rpm"};
    static const char str[] = "PO \"47\\11\", x=y\nnext";
    struct mr_record recs[6];
    for (int i = 0; i < 5; i++) {
        recs[i] = (struct mr_record){.time_ns = T0 + 123456789 + i,
                                     .asset = asset,
                                     .signal = intern(r, sigs[i]),
                                     .ntags = 1};
        recs[i].tags[0] = (struct mr_tag){unit, {"deg C,=x", 8}};
    }
    recs[0].type = MR_VALUE_F64;
    recs[0].v.f64 = 0.1;
    recs[1].type = MR_VALUE_I64;
    recs[1].v.i64 = 9007199254740993LL; /* not a double */
    recs[2].type = MR_VALUE_BOOL;
    recs[2].v.b = true;
    recs[3].type = MR_VALUE_STRING;
    recs[3].v.str = (struct mr_bytes){str, (uint32_t)strlen(str)};
    recs[4].type = MR_VALUE_F64;
    recs[4].v.f64 = -1.5e-300;
    recs[4].quality = MR_QUALITY_UNCERTAIN;
    recs[5] = recs[0];
    recs[5].time_ns = T0 + 999;
    recs[5].v.f64 = 1e300;
    struct mr_err err = {0};
    int rc = mr_output_influxdb.output.write(r->ctx, recs, 6, &err);
    if (rc != MR_SINK_OK) {
        fail_msg("write: %d %s", rc, err.msg);
    }
    assert_int_equal(r->nrejects, 0);
    json_t *cols, *root;
    json_t *rows = query("plant db", "SELECT * FROM spindle ORDER BY time", &cols, &root);
    assert_int_equal(json_array_size(rows), 5);
    json_t *row = json_array_get(rows, 0);
    assert_int_equal(json_integer_value(col(cols, row, "time")), T0 + 999);
    assert_true(json_real_value(col(cols, row, "temp")) == 1e300);
    row = json_array_get(rows, 1);
    assert_int_equal(json_integer_value(col(cols, row, "time")), T0 + 123456789);
    assert_true(json_real_value(col(cols, row, "temp")) == 0.1);
    assert_string_equal(json_string_value(col(cols, row, "asset")), "plant/hall 2/line,1/press=A");
    assert_string_equal(json_string_value(col(cols, row, "site")), "plant");
    assert_string_equal(json_string_value(col(cols, row, "area")), "hall 2");
    assert_string_equal(json_string_value(col(cols, row, "line")), "line,1");
    assert_string_equal(json_string_value(col(cols, row, "machine")), "press=A");
    assert_string_equal(json_string_value(col(cols, row, "unit name")), "deg C,=x");
    row = json_array_get(rows, 2);
    assert_int_equal(json_integer_value(col(cols, row, "count")), 9007199254740993LL);
    row = json_array_get(rows, 3);
    assert_true(json_is_true(col(cols, row, "running")));
    row = json_array_get(rows, 4);
    assert_string_equal(json_string_value(col(cols, row, "order")), str);
    json_decref(root);
    rows = query("plant db", "SELECT * FROM rpm", &cols, &root);
    assert_int_equal(json_array_size(rows), 1);
    row = json_array_get(rows, 0);
    assert_true(json_real_value(col(cols, row, "value")) == -1.5e-300);
    assert_string_equal(json_string_value(col(cols, row, "value_quality")), "uncertain");
    json_decref(root);
    /* A replay (crash before the cursor commit) overwrites: still 5 + 1 points. */
    assert_int_equal(mr_output_influxdb.output.write(r->ctx, recs, 6, &err), MR_SINK_OK);
    assert_int_equal(count_points("plant db", "SELECT count(temp) FROM spindle"), 2);
    assert_int_equal(count_points("plant db", "SELECT count(value) FROM rpm"), 1);
    rig_close(r);
}

/* A point InfluxDB refuses goes to reject() with its reason; the rest is written. */
static void test_type_conflict_rejected_rest_written(void **state)
{
    (void)state;
    struct rig *r = rig_open("{urls: [\"http://127.0.0.1:%d\"], database: conflicts, "
                             "content_encoding: identity}");
    mr_name_id asset = intern(r, "plant/press");
    mr_name_id sig = intern(r, "press.force");
    struct mr_record recs[40];
    for (int i = 0; i < 40; i++) {
        recs[i] = (struct mr_record){
            .time_ns = T0 + i * 1000000000LL, .asset = asset, .signal = sig, .type = MR_VALUE_F64};
        recs[i].v.f64 = i;
    }
    recs[17].type = MR_VALUE_STRING;
    recs[17].v.str = (struct mr_bytes){"jammed", 6};
    recs[30].v.f64 = NAN; /* refused before sending */
    struct mr_err err = {0};
    int rc = mr_output_influxdb.output.write(r->ctx, recs, 40, &err);
    if (rc != MR_SINK_OK) {
        fail_msg("write: %d %s", rc, err.msg);
    }
    assert_int_equal(r->nrejects, 2);
    assert_int_equal(r->reject_index[0], 30);
    assert_non_null(strstr(r->reject_reason[0], "NaN"));
    assert_int_equal(r->reject_index[1], 17);
    assert_non_null(strstr(r->reject_reason[1], "field type conflict"));
    assert_int_equal(count_points("conflicts", "SELECT count(force) FROM press"), 38);
    rig_close(r);
}

/* Down -> RETRY, same batch after the restart -> OK, everything there once. */
static void test_down_retry_then_recovery(void **state)
{
    (void)state;
    struct rig *r = rig_open("{urls: [\"http://127.0.0.1:%d\"], database: outage, timeout: 1s}");
    mr_name_id asset = intern(r, "plant/press");
    mr_name_id sig = intern(r, "press.count");
    struct mr_record recs[100];
    for (int i = 0; i < 100; i++) {
        recs[i] = (struct mr_record){
            .time_ns = T0 + i, .asset = asset, .signal = sig, .type = MR_VALUE_I64};
        recs[i].v.i64 = i;
    }
    struct mr_err err = {0};
    assert_int_equal(mr_output_influxdb.output.write(r->ctx, recs, 50, &err), MR_SINK_OK);
    influx_stop(&g_ix);
    err = (struct mr_err){0};
    assert_int_equal(mr_output_influxdb.output.write(r->ctx, recs + 50, 50, &err), MR_SINK_RETRY);
    assert_true(err.msg[0] != '\0');
    influx_start(&g_ix);
    assert_int_equal(mr_output_influxdb.output.write(r->ctx, recs + 50, 50, &err), MR_SINK_OK);
    assert_int_equal(count_points("outage", "SELECT count(count) FROM press"), 100);
    assert_int_equal(count_points("outage", "SELECT sum(count) FROM press"), 4950);
    rig_close(r);
}

/* https: with tls_ca the points arrive; without it, or with the wrong authority, the write is
 * retried with the certificate problem in the message (nothing written); insecure_skip_verify
 * accepts the certificate. */
static void test_https_verifies_server(void **state)
{
    (void)state;
    struct influx ix = {.https = true};
    snprintf(ix.dir, sizeof(ix.dir), "/tmp/mr-influx-tls.XXXXXX");
    assert_non_null(mkdtemp(ix.dir));
    snprintf(ix.conf, sizeof(ix.conf), "%s/influxdb.conf", ix.dir);
    ix.port = free_port();
    ix.rpc_port = free_port();
    assert_int_equal(mr_test_make_certs(ix.dir), 0);
    influx_start(&ix);
    static const struct {
        const char *tls; /* %s: the directory */
        int want;
    } cases[] = {
        {"tls_ca: %s/ca.crt", MR_SINK_OK},
        {"tls_ca: %s/other.crt", MR_SINK_RETRY},
        {"timeout: 2s", MR_SINK_RETRY}, /* the system's authorities do not know ours */
        {"insecure_skip_verify: true", MR_SINK_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char tls[256], yaml[512];
        snprintf(tls, sizeof(tls), cases[i].tls, ix.dir);
        snprintf(yaml, sizeof(yaml), "{urls: [\"https://127.0.0.1:%d\"], database: tls, %s}",
                 ix.port, tls);
        struct rig *r = rig_open(yaml);
        struct mr_record rec = {.time_ns = T0 + (int64_t)i,
                                .asset = intern(r, "plant/press"),
                                .signal = intern(r, "press.count"),
                                .type = MR_VALUE_I64};
        rec.v.i64 = (int64_t)i;
        struct mr_err err = {0};
        int rc = mr_output_influxdb.output.write(r->ctx, &rec, 1, &err);
        if (rc != cases[i].want) {
            fail_msg("case %zu (%s): answer %d, want %d: %s", i, tls, rc, cases[i].want, err.msg);
        }
        if (rc == MR_SINK_RETRY) {
            assert_non_null(strstr(err.msg, "certificate"));
        }
        rig_close(r);
    }
    char body[65536];
    assert_int_equal(http_on(&ix, "GET", "/query?db=tls&q=SELECT+sum(count)+FROM+press", body),
                     200);
    assert_non_null(strstr(body, "\"values\":[[\"1970-01-01T00:00:00Z\",3]]")); /* 0 + 3 */
    influx_stop(&ix);
    nftw(ix.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Missing database with creation off -> FATAL naming it; with creation on -> created. */
static void test_missing_database(void **state)
{
    (void)state;
    struct rig *r = rig_open("{urls: [\"http://127.0.0.1:%d\"], database: nosuchdb, "
                             "skip_database_creation: true}");
    mr_name_id asset = intern(r, "a");
    struct mr_record rec = {
        .time_ns = T0, .asset = asset, .signal = intern(r, "x"), .type = MR_VALUE_BOOL};
    struct mr_err err = {0};
    assert_int_equal(mr_output_influxdb.output.write(r->ctx, &rec, 1, &err), MR_SINK_FATAL);
    assert_non_null(strstr(err.msg, "nosuchdb"));
    assert_non_null(strstr(err.msg, "not found"));
    rig_close(r);
    /* A retention policy that does not exist is a configuration error too. */
    r = rig_open("{urls: [\"http://127.0.0.1:%d\"], database: made, retention_policy: nope}");
    rec.asset = intern(r, "a");
    rec.signal = intern(r, "x");
    err = (struct mr_err){0};
    assert_int_equal(mr_output_influxdb.output.write(r->ctx, &rec, 1, &err), MR_SINK_FATAL);
    assert_non_null(strstr(err.msg, "retention policy not found"));
    rig_close(r);
    r = rig_open("{urls: [\"http://127.0.0.1:%d\"], database: made, precision: s}");
    rec.asset = intern(r, "a");
    rec.signal = intern(r, "x");
    rec.time_ns = T0 + 1999999999; /* seconds: truncated to T0 + 1 s */
    assert_int_equal(mr_output_influxdb.output.write(r->ctx, &rec, 1, &err), MR_SINK_OK);
    json_t *cols, *root;
    json_t *rows = query("made", "SELECT * FROM x", &cols, &root);
    assert_int_equal(json_integer_value(col(cols, json_array_get(rows, 0), "time")),
                     T0 + 1000000000);
    json_decref(root);
    rig_close(r);
}

static void test_bad_config(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{urls: [\"ftp://x\"]}",
        "{urls: [\"http://x\"], username: u}",
        "{urls: [\"http://x\"], precision: h}",
        "{urls: [\"http://x\"], quality: maybe}",
        "{urls: [\"https://x\"], tls_cert: /etc/c.pem}", /* without tls_key */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char conf[1024];
        struct mr_config_errors *errs = calloc(1, sizeof(*errs));
        int rc = mr_section_load_buffer(&mr_output_influxdb.conf, conf, "t.yaml", bad[i],
                                        strlen(bad[i]), NULL, errs);
        assert_int_not_equal(rc, 0);
        assert_non_null(strstr(errs->msg[0], "t.yaml:1"));
        free(errs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_table),
        cmocka_unit_test(test_render_lines),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_values_read_back_exactly),
        cmocka_unit_test(test_type_conflict_rejected_rest_written),
        cmocka_unit_test(test_missing_database),
        cmocka_unit_test(test_down_retry_then_recovery),
        cmocka_unit_test(test_https_verifies_server),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
