/* The http_listener input: its body decoder (line protocol and JSON -> records, all or nothing,
 * errors naming the line or item), table-driven without a socket; then the input itself on a
 * libuv loop with libcurl as the client (in a thread): answers, credentials, back-pressure (503
 * keeps nothing), answers held until the host reports the commit, and 503 for what is still
 * waiting when the input stops. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <zlib.h>

#include "inputs/http_listener.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "millrace/plugin.h"

extern const struct mr_plugin mr_input_http_listener;

#define NOW_NS 1800000000000000000LL

struct fx {
    struct mr_names *names;
    struct hl_conf conf;
    struct hl_decoder dec;
    struct hl_report rep;
    char *asset_tags[4];
    char *paths[1];
};

static char s_asset[] = "site1";
static char s_machine[] = "machine";
static char s_db[] = "db";

static void fx_open(struct fx *f, const char *asset, bool machine_tag, int64_t max_records)
{
    struct mr_err err = {0};
    memset(f, 0, sizeof(*f));
    assert_int_equal(mr_names_create(&f->names, 4096, 1 << 18), 0);
    f->conf.asset = asset != NULL ? s_asset : NULL;
    f->asset_tags[0] = s_machine;
    f->conf.asset_tags = (struct mr_strlist){.items = f->asset_tags, .n = machine_tag ? 1 : 0};
    f->conf.database_tag = s_db;
    f->conf.max_records = max_records;
    assert_int_equal(hl_decoder_init(&f->dec, &f->conf, f->names, &err), 0);
}

static void fx_close(struct fx *f)
{
    hl_decoder_fini(&f->dec);
    mr_names_destroy(f->names);
}

static const char *name_of(struct fx *f, mr_name_id id)
{
    const char *s = mr_names_str(f->names, id, NULL);
    return s != NULL ? s : "?";
}

/* "key=value" of tag i of record r. */
static void tag_text(struct fx *f, const struct mr_record *r, size_t i, char *out, size_t cap)
{
    snprintf(out, cap, "%s=%.*s", name_of(f, r->tags[i].key), (int)r->tags[i].value.len,
             r->tags[i].value.ptr);
}

/* One record as text: asset|signal|type:value|time|quality|tags. */
static void rec_text(struct fx *f, const struct mr_record *r, char *out, size_t cap)
{
    char v[128], tags[256] = "";
    switch (r->type) {
    case MR_VALUE_F64:
        snprintf(v, sizeof(v), "f:%g", r->v.f64);
        break;
    case MR_VALUE_I64:
        snprintf(v, sizeof(v), "i:%lld", (long long)r->v.i64);
        break;
    case MR_VALUE_BOOL:
        snprintf(v, sizeof(v), "b:%d", r->v.b);
        break;
    case MR_VALUE_STRING:
        snprintf(v, sizeof(v), "s:%.*s", (int)r->v.str.len, r->v.str.ptr);
        break;
    default:
        snprintf(v, sizeof(v), "?");
    }
    size_t k = 0;
    for (uint16_t i = 0; i < r->ntags; i++) {
        char t[96];
        tag_text(f, r, i, t, sizeof(t));
        k += (size_t)snprintf(tags + k, sizeof(tags) - k, "%s%s", i > 0 ? "," : "", t);
    }
    snprintf(out, cap, "%s|%s|%s|%lld|%s|%s", name_of(f, r->asset), name_of(f, r->signal), v,
             (long long)r->time_ns, mr_quality_name(r->quality), tags);
}

/* ---- line protocol ---- */

struct lp_case {
    const char *name;
    const char *body;
    enum mr_lp_precision prec;
    const char *db;
    int rc;
    const char *want[6]; /* records as rec_text, NULL-terminated */
};

static const struct lp_case lp_cases[] = {
    {"types and tags, precision ms",
     "cpu,machine=m1,host=h1 temp=21.5,count=3i,ok=true,note=\"a b\" 1700000000000\n",
     MR_LP_MS,
     "telegraf",
     0,
     {"site1/m1|cpu.temp|f:21.5|1700000000000000000|good|db=telegraf,host=h1",
      "site1/m1|cpu.count|i:3|1700000000000000000|good|db=telegraf,host=h1",
      "site1/m1|cpu.ok|b:1|1700000000000000000|good|db=telegraf,host=h1",
      "site1/m1|cpu.note|s:a b|1700000000000000000|good|db=telegraf,host=h1", NULL}},
    {"precision s",
     "m,machine=a v=1 1700000000",
     MR_LP_S,
     NULL,
     0,
     {"site1/a|m.v|f:1|1700000000000000000|good|", NULL}},
    {"precision us, unsigned",
     "m,machine=a v=7u 1700000000000001",
     MR_LP_US,
     NULL,
     0,
     {"site1/a|m.v|f:7|1700000000000001000|good|", NULL}},
    {"precision ns, no timestamp gets now, CRLF, blank and comment lines",
     "# comment\r\n\r\nm,machine=a v=1 1700000000000000001\r\nm,machine=b v=2\r\n",
     MR_LP_NS,
     "",
     0,
     {"site1/a|m.v|f:1|1700000000000000001|good|", "site1/b|m.v|f:2|1800000000000000000|good|",
      NULL}},
    {"escapes in names and tag values",
     "my\\ meas,machine=m\\,1,loc=a\\ b f\\=x=1i 1",
     MR_LP_NS,
     NULL,
     0,
     {"site1/m,1|my meas.f=x|i:1|1|good|loc=a b", NULL}},
    {"empty body keeps nothing and is fine", "\n\n", MR_LP_NS, NULL, 0, {NULL}},
};

static void test_lineproto_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(lp_cases) / sizeof(lp_cases[0]); i++) {
        const struct lp_case *tc = &lp_cases[i];
        struct fx f;
        fx_open(&f, "site1", true, 1000);
        int rc = hl_decode_lineproto(&f.dec, tc->body, strlen(tc->body), tc->prec, tc->db, NOW_NS,
                                     &f.rep);
        if (rc != tc->rc) {
            print_message("case '%s': rc %d, first problem: %s\n", tc->name, rc,
                          f.rep.nshown > 0 ? f.rep.msg[0] : "-");
        }
        assert_int_equal(rc, tc->rc);
        size_t n = 0;
        while (tc->want[n] != NULL) {
            n++;
        }
        assert_int_equal(f.dec.nrecs, n);
        for (size_t j = 0; j < n; j++) {
            char got[512];
            rec_text(&f, &f.dec.recs[j], got, sizeof(got));
            if (strcmp(got, tc->want[j]) != 0) {
                print_message("case '%s' record %zu:\n got  %s\n want %s\n", tc->name, j, got,
                              tc->want[j]);
                fail();
            }
        }
        fx_close(&f);
    }
}

struct lp_bad {
    const char *name;
    const char *body;
    int rc;
    size_t nbad;
    const char *first;  /* substring of the first problem */
    const char *second; /* substring of the second problem, or NULL */
};

static const struct lp_bad lp_bads[] = {
    {"not a number names line, column and text",
     "m,machine=a v=1\nm,machine=a v=2\nm,machine=a v=abc\n", MR_EPARSE, 1,
     "line 3: column 15: field value is not a number", NULL},
    {"the text at fault is quoted", "m,machine=a v=abc", MR_EPARSE, 1, "(at 'abc')", NULL},
    {"missing asset tag", "m,machine=a v=1\nm,host=x v=2", MR_EPARSE, 1,
     "line 2: tag 'machine' (one of asset_tags) is missing", NULL},
    {"two bad lines both named", "m,machine=a v=1\nm,machine=a\nm,machine=a v=\"x", MR_EPARSE, 2,
     "line 2:", "line 3: column 15: string value without its closing quote"},
    {"bad timestamp", "m,machine=a v=1 12x", MR_EPARSE, 1, "line 1: column 17: timestamp", NULL},
    {"too many records", "m,machine=a a=1,b=2,c=3\nm,machine=a d=4,e=5", MR_ETOOBIG, 1,
     "line 2: more than 4 records", NULL},
};

static void test_lineproto_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(lp_bads) / sizeof(lp_bads[0]); i++) {
        const struct lp_bad *tc = &lp_bads[i];
        struct fx f;
        fx_open(&f, NULL, true, 4);
        int rc =
            hl_decode_lineproto(&f.dec, tc->body, strlen(tc->body), MR_LP_NS, NULL, NOW_NS, &f.rep);
        print_message("case '%s': %s\n", tc->name, f.rep.nshown > 0 ? f.rep.msg[0] : "-");
        assert_int_equal(rc, tc->rc);
        assert_int_equal(f.dec.nrecs, 0); /* all or nothing */
        assert_int_equal(f.rep.nbad, tc->nbad);
        assert_non_null(strstr(f.rep.msg[0], tc->first));
        if (tc->second != NULL) {
            assert_non_null(strstr(f.rep.msg[1], tc->second));
        }
        fx_close(&f);
    }
}

/* Seven bad lines among good ones: the first five are named, all seven counted. */
static void test_lineproto_many_bad(void **state)
{
    (void)state;
    char body[1024];
    size_t k = 0;
    for (int i = 1; i <= 20; i++) {
        k += (size_t)snprintf(body + k, sizeof(body) - k, "m v=%s\n", i % 3 == 0 ? "x" : "1");
    }
    struct fx f;
    fx_open(&f, "site1", false, 1000);
    assert_int_equal(hl_decode_lineproto(&f.dec, body, k, MR_LP_NS, NULL, NOW_NS, &f.rep),
                     MR_EPARSE);
    assert_int_equal(f.rep.nbad, 6);
    assert_int_equal(f.rep.nshown, HL_MAX_REPORTED);
    assert_non_null(strstr(f.rep.msg[0], "line 3:"));
    assert_non_null(strstr(f.rep.msg[4], "line 15:"));
    /* The decoder is usable again at once. */
    const char *good = "m v=1 5";
    assert_int_equal(
        hl_decode_lineproto(&f.dec, good, strlen(good), MR_LP_NS, NULL, NOW_NS, &f.rep), 0);
    assert_int_equal(f.dec.nrecs, 1);
    assert_string_equal(name_of(&f, f.dec.recs[0].asset), "site1");
    fx_close(&f);
}

static void test_lineproto_no_asset(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL, false, 1000);
    const char *body = "m v=1";
    assert_int_equal(
        hl_decode_lineproto(&f.dec, body, strlen(body), MR_LP_NS, NULL, NOW_NS, &f.rep), MR_EPARSE);
    assert_non_null(strstr(f.rep.msg[0], "line 1: no asset"));
    fx_close(&f);
}

/* A body whose records outgrow the first batch allocation several times. */
static void test_lineproto_large(void **state)
{
    (void)state;
    size_t lines = 3000, cap = lines * 48;
    char *body = malloc(cap);
    assert_non_null(body);
    size_t k = 0;
    for (size_t i = 0; i < lines; i++) {
        k += (size_t)snprintf(body + k, cap - k, "m,machine=m%zu a=%zu,b=%zui %zu\n", i % 7, i, i,
                              i + 1);
    }
    struct fx f;
    fx_open(&f, NULL, true, 100000);
    assert_int_equal(hl_decode_lineproto(&f.dec, body, k, MR_LP_NS, NULL, NOW_NS, &f.rep), 0);
    assert_int_equal(f.dec.nrecs, 2 * lines);
    const struct mr_record *last = &f.dec.recs[2 * lines - 1];
    assert_string_equal(name_of(&f, last->asset), "m3"); /* 2999 % 7 */
    assert_int_equal(last->v.i64, 2999);
    assert_int_equal(last->time_ns, 3000);
    fx_close(&f);
    free(body);
}

/* ---- JSON ---- */

struct json_case {
    const char *name;
    const char *body;
    const char *want[4];
};

static const struct json_case json_cases[] = {
    {"one object, everything given",
     "{\"asset\":\"plant/l1/press3\",\"signal\":\"temp\",\"value\":21.5,"
     "\"time\":\"2023-11-14T22:13:20.5Z\",\"quality\":\"uncertain\",\"tags\":{\"unit\":\"degC\"}}",
     {"plant/l1/press3|temp|f:21.5|1700000000500000000|uncertain|unit=degC", NULL}},
    {"array, value types, time as ns number, default time and asset",
     "[{\"asset\":\"a\",\"signal\":\"n\",\"value\":3,\"time\":1700000000000000007},"
     " {\"signal\":\"on\",\"value\":true},"
     " {\"asset\":\"a\",\"signal\":\"state\",\"value\":\"running\",\"quality\":\"bad\"}]",
     {"a|n|i:3|1700000000000000007|good|", "site1|on|b:1|1800000000000000000|good|",
      "a|state|s:running|1800000000000000000|bad|", NULL}},
    {"empty array", "[]", {NULL}},
};

static void test_json_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++) {
        const struct json_case *tc = &json_cases[i];
        struct fx f;
        fx_open(&f, "site1", false, 100);
        int rc = hl_decode_json(&f.dec, tc->body, strlen(tc->body), NOW_NS, &f.rep);
        if (rc != 0) {
            print_message("case '%s': %s\n", tc->name, f.rep.msg[0]);
        }
        assert_int_equal(rc, 0);
        size_t n = 0;
        while (tc->want[n] != NULL) {
            n++;
        }
        assert_int_equal(f.dec.nrecs, n);
        for (size_t j = 0; j < n; j++) {
            char got[512];
            rec_text(&f, &f.dec.recs[j], got, sizeof(got));
            if (strcmp(got, tc->want[j]) != 0) {
                print_message("case '%s' record %zu:\n got  %s\n want %s\n", tc->name, j, got,
                              tc->want[j]);
                fail();
            }
        }
        fx_close(&f);
    }
}

struct json_bad {
    const char *name;
    const char *body;
    int rc;
    size_t nbad;
    const char *first;
    const char *second;
};

static const struct json_bad json_bads[] = {
    {"syntax", "[{\"asset\":\"a\",}]", MR_EPARSE, 1, "JSON: ", NULL},
    {"missing signal, bad quality: both named",
     "[{\"asset\":\"a\",\"signal\":\"s\",\"value\":1},{\"asset\":\"a\",\"value\":1},"
     "{\"asset\":\"a\",\"signal\":\"s\",\"value\":1,\"quality\":\"ok\"}]",
     MR_EPARSE, 2, "item 2: missing \"signal\"", "item 3: \"quality\" must be"},
    {"no asset and none configured", "{\"signal\":\"s\",\"value\":1}", MR_EPARSE, 1,
     "item 1: missing \"asset\"", NULL},
    {"typo in a field", "{\"asset\":\"a\",\"signal\":\"s\",\"valeu\":1}", MR_EPARSE, 1,
     "item 1: unknown field \"valeu\"", NULL},
    {"time in seconds", "{\"asset\":\"a\",\"signal\":\"s\",\"value\":1,\"time\":1700000000}",
     MR_EPARSE, 1, "before 1973", NULL},
    {"time text", "{\"asset\":\"a\",\"signal\":\"s\",\"value\":1,\"time\":\"yesterday\"}",
     MR_EPARSE, 1, "\"time\" \"yesterday\" is not an RFC 3339 time", NULL},
    {"null value", "{\"asset\":\"a\",\"signal\":\"s\",\"value\":null}", MR_EPARSE, 1,
     "\"value\" must be a number", NULL},
    {"not an object", "[1]", MR_EPARSE, 1, "item 1: expected an object", NULL},
    {"tag not text", "{\"asset\":\"a\",\"signal\":\"s\",\"value\":1,\"tags\":{\"k\":1}}", MR_EPARSE,
     1, "item 1: tag \"k\" must have", NULL},
    {"too many items", "[{},{},{},{},{}]", MR_ETOOBIG, 1, "5 items exceed max_records (4)", NULL},
};

static void test_json_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(json_bads) / sizeof(json_bads[0]); i++) {
        const struct json_bad *tc = &json_bads[i];
        struct fx f;
        fx_open(&f, NULL, false, 4);
        int rc = hl_decode_json(&f.dec, tc->body, strlen(tc->body), NOW_NS, &f.rep);
        print_message("case '%s': %s\n", tc->name, f.rep.nshown > 0 ? f.rep.msg[0] : "-");
        assert_int_equal(rc, tc->rc);
        assert_int_equal(f.dec.nrecs, 0);
        assert_int_equal(f.rep.nbad, tc->nbad);
        assert_non_null(strstr(f.rep.msg[0], tc->first));
        if (tc->second != NULL) {
            assert_non_null(strstr(f.rep.msg[1], tc->second));
        }
        fx_close(&f);
    }
}

/* ---- the input on a loop, libcurl as the client ---- */

#define MAX_STEPS 16
#define HOLD_MS   150

struct answer {
    long status;
    char body[1024];
    char retry_after[16];
    int64_t done_ms;
};

struct live {
    struct mr_names *names;
    struct mr_metrics *metrics;
    struct hl_conf conf;
    struct mr_input_host host;
    void *ctx;
    uv_loop_t loop;
    uv_timer_t watch;
    uv_async_t client_done;
    int port;
    /* loop thread */
    size_t emits, records;
    uint64_t committed;
    int refuse;
    bool stop_called;
    int stopped;
    int64_t last_emit_ms;
    char seen[4096];
    size_t seen_len;
    /* shared with the client thread */
    atomic_bool hold;  /* durable lags: committed HOLD_MS after the emit */
    atomic_bool stuck; /* durable never advances; stop once something waits */
    atomic_int refuse_next;
    atomic_llong commit_ms;
    struct answer answers[MAX_STEPS];
    size_t nanswers;
};

static int live_emit(struct mr_input_host *host, const struct mr_record *recs, size_t n)
{
    struct live *l = host->arg;
    if (atomic_exchange(&l->refuse_next, 0) != 0) {
        return MR_EAGAIN;
    }
    l->emits++;
    l->records += n;
    l->last_emit_ms = mr_clock_mono_ms();
    for (size_t i = 0; i < n; i++) {
        char t[256];
        struct fx f = {.names = l->names};
        rec_text(&f, &recs[i], t, sizeof(t));
        int w = snprintf(l->seen + l->seen_len, sizeof(l->seen) - l->seen_len, "%s\n", t);
        if (w > 0 && (size_t)w < sizeof(l->seen) - l->seen_len) {
            l->seen_len += (size_t)w;
        }
    }
    return 0;
}

static uint64_t live_durable(struct mr_input_host *host)
{
    struct live *l = host->arg;
    return atomic_load(&l->hold) || atomic_load(&l->stuck) ? l->committed : l->emits;
}

static void live_ended(struct mr_input_host *host, int status)
{
    (void)host;
    (void)status;
}

static void live_stopped(struct mr_input_host *host)
{
    struct live *l = host->arg;
    l->stopped++;
}

static void live_stop(struct live *l)
{
    if (!l->stop_called) {
        l->stop_called = true;
        mr_input_http_listener.input.stop(l->ctx);
    }
}

static void watch_cb(uv_timer_t *t)
{
    struct live *l = t->data;
    int64_t now = mr_clock_mono_ms();
    if (!atomic_load(&l->hold) && !atomic_load(&l->stuck)) {
        l->committed = l->emits;
    } else if (atomic_load(&l->hold) && l->emits > l->committed &&
               now - l->last_emit_ms >= HOLD_MS) {
        l->committed = l->emits;
        atomic_store(&l->commit_ms, now);
    } else if (atomic_load(&l->stuck) && l->emits > l->committed) {
        live_stop(l);
    }
}

static void client_done_cb(uv_async_t *a)
{
    struct live *l = a->data;
    live_stop(l);
    uv_close((uv_handle_t *)&l->watch, NULL);
    uv_close((uv_handle_t *)&l->client_done, NULL);
}

static size_t body_cb(char *p, size_t size, size_t n, void *arg)
{
    struct answer *a = arg;
    size_t len = strlen(a->body), add = size * n;
    size_t room = sizeof(a->body) - 1 - len;
    memcpy(a->body + len, p, add < room ? add : room);
    a->body[len + (add < room ? add : room)] = '\0';
    return size * n;
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg)
{
    struct answer *a = arg;
    if (size * n > 13 && strncasecmp(p, "Retry-After: ", 13) == 0) {
        snprintf(a->retry_after, sizeof(a->retry_after), "%.*s", (int)(size * n - 13), p + 13);
        a->retry_after[strcspn(a->retry_after, "\r\n")] = '\0';
    }
    return size * n;
}

static size_t gzip_text(const char *in, unsigned char *out, size_t cap)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)(uintptr_t)in;
    z.avail_in = (uInt)strlen(in);
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = z.total_out;
    deflateEnd(&z);
    return len;
}

/* One request; headers: NULL-terminated "Name: value" lines. */
static void send_req(CURL *h, struct live *l, const char *method, const char *target,
                     const char *const *headers, const void *body, size_t len)
{
    struct answer *a = &l->answers[l->nanswers++];
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", l->port, target);
    struct curl_slist *hl = NULL;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        hl = curl_slist_append(hl, headers[i]);
    }
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    }
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
    }
    a->done_ms = mr_clock_mono_ms();
    curl_slist_free_all(hl);
}

static void *client_run(void *arg)
{
    struct live *l = arg;
    static const char *const auth[] = {"Authorization: Bearer t0ken", NULL};
    static const char *const auth_gz[] = {"Authorization: Bearer t0ken", "Content-Encoding: gzip",
                                          NULL};
    static const char *const wrong[] = {"Authorization: Bearer nope", NULL};
    CURL *h = curl_easy_init();
    unsigned char gz[512];
    size_t gzlen = gzip_text("m,machine=a v=1 1700000000000\nm,machine=b v=2i 1700000000001\n", gz,
                             sizeof(gz));
    const char *bad = "m,machine=a v=1\nm,machine=a v=x\n";
    const char *js =
        "[{\"asset\":\"j\",\"signal\":\"s\",\"value\":true,\"time\":1700000000000000000},"
        "{\"asset\":\"j\",\"signal\":\"t\",\"value\":\"x\",\"time\":1700000000000000000}]";
    const char *one = "{\"asset\":\"k\",\"signal\":\"s\",\"value\":5,\"time\":1700000000000000000}";
    send_req(h, l, "POST", "/write?db=d1&precision=ms", auth_gz, gz, gzlen); /* 0: 204 */
    send_req(h, l, "POST", "/api/v1/ingest", auth, js, strlen(js));          /* 1: 200 */
    send_req(h, l, "POST", "/write", auth, bad, strlen(bad));                /* 2: 400 */
    send_req(h, l, "POST", "/write", wrong, "m v=1", 5);                     /* 3: 401 */
    send_req(h, l, "GET", "/write", auth, NULL, 0);                          /* 4: 405 */
    send_req(h, l, "POST", "/nope", auth, "x", 1);                           /* 5: 404 */
    send_req(h, l, "HEAD", "/ping", NULL, NULL, 0);                          /* 6: 204 */
    atomic_store(&l->refuse_next, 1);
    send_req(h, l, "POST", "/api/v1/ingest", auth, one, strlen(one)); /* 7: 503 */
    send_req(h, l, "POST", "/api/v1/ingest", auth, one, strlen(one)); /* 8: 200 */
    atomic_store(&l->hold, true);
    send_req(h, l, "POST", "/api/v1/ingest", auth, one, strlen(one)); /* 9: 200 late */
    atomic_store(&l->hold, false);
    atomic_store(&l->stuck, true);
    send_req(h, l, "POST", "/api/v1/ingest", auth, one, strlen(one)); /* 10: 503 stop */
    curl_easy_cleanup(h);
    uv_async_send(&l->client_done);
    return NULL;
}

static void test_live(void **state)
{
    (void)state;
    static struct live l;
    static char s_addr[] = "127.0.0.1:0", s_path[] = "/api/v1/ingest", s_token[] = "t0ken";
    static char *paths[] = {s_path}, *tags[] = {s_machine};
    struct mr_err err = {0};
    memset(&l, 0, sizeof(l));
    assert_int_equal(mr_names_create(&l.names, 4096, 1 << 18), 0);
    assert_int_equal(mr_metrics_create(&l.metrics), 0);
    assert_int_equal(uv_loop_init(&l.loop), 0);
    l.conf = (struct hl_conf){.service_address = s_addr,
                              .paths = {.items = paths, .n = 1},
                              .max_body_size = 1 << 20,
                              .max_records = 1000,
                              .read_timeout_ns = 5000000000LL,
                              .max_connections = 8,
                              .token = s_token,
                              .asset_tags = {.items = tags, .n = 1},
                              .database_tag = s_db};
    l.host = (struct mr_input_host){.name = "inputs.http",
                                    .names = l.names,
                                    .metrics = l.metrics,
                                    .loop = &l.loop,
                                    .emit = live_emit,
                                    .ended = live_ended,
                                    .stopped = live_stopped,
                                    .durable = live_durable,
                                    .arg = &l};
    l.ctx = mr_calloc(1, mr_input_http_listener.ctx_size);
    assert_non_null(l.ctx);
    assert_int_equal(mr_input_http_listener.input.init(l.ctx, &l.conf, &l.host, &err), 0);
    int rc = mr_input_http_listener.input.start(l.ctx, &err);
    if (rc != 0) {
        print_message("start: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    l.port = mr_http_listener_port(l.ctx);
    assert_true(l.port > 0);
    assert_int_equal(uv_timer_init(&l.loop, &l.watch), 0);
    l.watch.data = &l;
    uv_timer_start(&l.watch, watch_cb, 5, 5);
    assert_int_equal(uv_async_init(&l.loop, &l.client_done, client_done_cb), 0);
    l.client_done.data = &l;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, client_run, &l), 0);
    assert_int_equal(uv_run(&l.loop, UV_RUN_DEFAULT), 0);
    pthread_join(th, NULL);
    assert_int_equal(l.stopped, 1);

    static const long want[] = {204, 200, 400, 401, 405, 404, 204, 503, 200, 200, 503};
    assert_int_equal(l.nanswers, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < l.nanswers; i++) {
        if (l.answers[i].status != want[i]) {
            print_message("request %zu: %ld %s\n", i, l.answers[i].status, l.answers[i].body);
        }
        assert_int_equal(l.answers[i].status, want[i]);
    }
    assert_string_equal(l.answers[0].body, "");
    assert_string_equal(l.answers[1].body, "{\"accepted\":2}");
    assert_non_null(strstr(l.answers[2].body, "\"error\":\"line 2: column 15: field value"));
    assert_non_null(strstr(l.answers[2].body, "\"bad\":1"));
    assert_string_equal(l.answers[7].retry_after, "1");
    assert_non_null(strstr(l.answers[7].body, "nothing of this request was kept"));
    assert_string_equal(l.answers[8].body, "{\"accepted\":1}");
    /* Held back until the host reported the commit. */
    assert_true(atomic_load(&l.commit_ms) > 0);
    assert_true(l.answers[9].done_ms >= atomic_load(&l.commit_ms));
    assert_non_null(strstr(l.answers[10].body, "stopping"));
    /* Exactly the accepted records, in order: nothing of the 400 or the refused 503. */
    assert_string_equal(l.seen, "a|m.v|f:1|1700000000000000000|good|db=d1\n"
                                "b|m.v|i:2|1700000000001000000|good|db=d1\n"
                                "j|s|b:1|1700000000000000000|good|\n"
                                "j|t|s:x|1700000000000000000|good|\n"
                                "k|s|i:5|1700000000000000000|good|\n"
                                "k|s|i:5|1700000000000000000|good|\n"
                                "k|s|i:5|1700000000000000000|good|\n");
    static char text[1 << 16];
    size_t needed = 0;
    assert_true(mr_metrics_render(l.metrics, text, sizeof(text), &needed) > 0);
    assert_non_null(strstr(text, "millrace_http_listener_requests_total{instance=\"inputs.http\","
                                 "code=\"2xx\"} 5"));
    assert_non_null(strstr(text, "millrace_http_listener_requests_total{instance=\"inputs.http\","
                                 "code=\"4xx\"} 4"));
    assert_non_null(strstr(text, "millrace_http_listener_requests_total{instance=\"inputs.http\","
                                 "code=\"5xx\"} 2"));
    assert_non_null(strstr(text, "millrace_records_out_total{instance=\"inputs.http\","
                                 "plugin=\"http_listener\"} 7"));

    mr_input_http_listener.input.fini(l.ctx);
    mr_free(l.ctx);
    assert_int_equal(uv_loop_close(&l.loop), 0);
    mr_metrics_destroy(l.metrics);
    mr_names_destroy(l.names);
}

/* ---- configuration ---- */

static void test_config(void **state)
{
    (void)state;
    static struct mr_config_errors errs;
    static const struct {
        const char *yaml;
        const char *want; /* substring of the first error, NULL: loads */
    } cases[] = {
        {"inputs:\n  h: {type: http_listener, asset_tags: [line, machine], token: x}\n", NULL},
        {"inputs:\n  h: {type: http_listener, basic_username: u}\n",
         "rig.yaml:2:3: inputs.h.basic_password: basic_username and basic_password go together"},
        {"inputs:\n  h: {type: http_listener, paths: [/write]}\n",
         "inputs.h.paths: '/write': a path starts with /"},
        {"inputs:\n  h: {type: http_listener, paths: [ingest]}\n", "'ingest': a path starts"},
        {"inputs:\n  h: {type: http_listener, max_records: 0}\n", "inputs.h.max_records"},
        {"inputs:\n  h: {type: http_listener, servce_address: x}\n", "service_address"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_config *cfg = NULL;
        struct mr_config_opts opts = {0};
        int rc = mr_config_load_buffer(&cfg, "rig.yaml", cases[i].yaml, strlen(cases[i].yaml),
                                       &opts, &errs);
        if (cases[i].want == NULL) {
            assert_int_equal(rc, 0);
            const struct hl_conf *c = cfg->inputs.items[0].conf;
            assert_string_equal(c->service_address, "127.0.0.1:8186");
            assert_int_equal(c->paths.n, 1);
            assert_string_equal(c->paths.items[0], "/api/v1/ingest");
            assert_int_equal(c->max_body_size, 32u << 20);
            assert_int_equal(c->max_records, 100000);
            assert_int_equal(c->read_timeout_ns, 10000000000LL);
            mr_config_destroy(cfg);
            continue;
        }
        assert_true(rc != 0);
        assert_true(errs.n > 0);
        if (strstr(errs.msg[0], cases[i].want) == NULL) {
            print_message("case %zu: got '%s', want '%s'\n", i, errs.msg[0], cases[i].want);
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lineproto_table),
        cmocka_unit_test(test_lineproto_bad),
        cmocka_unit_test(test_lineproto_many_bad),
        cmocka_unit_test(test_lineproto_no_asset),
        cmocka_unit_test(test_lineproto_large),
        cmocka_unit_test(test_json_table),
        cmocka_unit_test(test_json_bad),
        cmocka_unit_test(test_live),
        cmocka_unit_test(test_config),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
