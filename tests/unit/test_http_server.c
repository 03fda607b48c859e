/* The HTTP server (src/web/http_server.c) on a real libuv loop, driven by real clients: libcurl
 * (easy interface) and raw sockets on a client thread while the test's loop runs the server.
 * The client thread only records what it saw; the assertions run on the main thread after it.
 * Covers: query and header parsing, Content-Length, chunked and gzip bodies, 100-continue,
 * keep-alive reuse, pipelining in order, async answers, a client leaving before its answer,
 * limits (413 body and gzip bomb, 400, 408, 431, 503), HTTP/1.0, streaming, stop with a request
 * pending. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#define CURL_DISABLE_TYPECHECK /* its checking macros do not build with -std=c11 -Wpedantic */
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>
#include <zlib.h>

#include "millrace/http_server.h"
#include "millrace/log.h"

#define NRES 10

static int test_port;
static char big_chunk[2u << 20];

struct fx;
typedef void (*client_fn)(struct fx *f);

struct res {
    long code;
    char body[8192];
    size_t body_len;
    char headers[2048];
    size_t headers_len;
    int writes; /* write callbacks of the body: how many pieces arrived */
    long connects;
    double seconds;
};

struct fx {
    uv_loop_t loop;
    struct mr_http_server *srv;
    struct mr_http_server_options opts;
    int port;
    uv_async_t finished;
    client_fn client;
    pthread_t thread;
    /* server side */
    struct mr_http_request *pending;
    uv_timer_t timer;
    int step;
    int gone_seen;
    int late_rc;
    int stream_rc_big;
    int done_calls;
    int requests;
    /* client side */
    struct res r[NRES];
    char raw[NRES][4096];
};

/* ---- server side: the handler answers by path ---- */

static void server_done(void *arg)
{
    struct fx *f = arg;
    f->done_calls++;
}

static void late_answer(uv_timer_t *t)
{
    struct fx *f = t->data;
    struct mr_http_request *r = f->pending;
    const char *path = mr_http_request_path(r);
    if (strcmp(path, "/stream") == 0) {
        static const char *parts[] = {"one\n", "two\n", "three\n"};
        if (f->step < 3) {
            mr_http_stream_write(r, parts[f->step], strlen(parts[f->step]));
            f->step++;
            uv_timer_start(&f->timer, late_answer, 30, 0);
            return;
        }
        mr_http_stream_end(r);
    } else {
        f->gone_seen = mr_http_request_gone(r);
        f->late_rc = mr_http_respond(r, 200, "text/plain", NULL, "late\n", 5);
    }
    f->pending = NULL;
}

static void echo(struct mr_http_request *r)
{
    char out[8192];
    size_t blen;
    const uint8_t *body = mr_http_request_body(r, &blen);
    const char *a = mr_http_request_query(r, "a"), *b = mr_http_request_query(r, "b");
    const char *c = mr_http_request_query(r, "c"), *d = mr_http_request_query(r, "d");
    const char *x = mr_http_request_header(r, "x-test");
    unsigned long crc = crc32(0, body, (uInt)blen);
    int n = snprintf(out, sizeof(out), "%s %s a=%s b=%s c=%s d=%s x=%s len=%zu crc=%08lx nul=%d",
                     mr_http_request_method(r), mr_http_request_path(r), a ? a : "-", b ? b : "-",
                     c ? c : "-", d ? d : "-", x ? x : "-", blen, crc, body[blen] == '\0');
    mr_http_respond(r, 200, "text/plain", "X-Echo: 1\r\n", out, (size_t)n);
}

static void handler(void *arg, struct mr_http_request *r)
{
    struct fx *f = arg;
    f->requests++;
    const char *path = mr_http_request_path(r);
    bool slow = strncmp(path, "/slow", 5) == 0, stop = strcmp(path, "/stop") == 0;
    if (slow || stop || strcmp(path, "/stream") == 0) {
        f->pending = r;
        f->step = 0;
        unsigned ms = strcmp(path, "/slow-gone") == 0 ? 300 : 50;
        if (strcmp(path, "/stream") == 0) {
            mr_http_stream_begin(r, 200, "text/plain", NULL);
            f->stream_rc_big = mr_http_stream_write(r, big_chunk, sizeof(big_chunk));
            ms = 0;
        }
        if (stop) {
            mr_http_server_stop(f->srv, server_done, f);
            f->srv = NULL;
        }
        uv_timer_start(&f->timer, late_answer, ms, 0);
        return;
    }
    echo(r);
}

/* ---- the client thread and the loop ---- */

static void finished_cb(uv_async_t *a)
{
    struct fx *f = a->data;
    if (f->srv != NULL) {
        mr_http_server_stop(f->srv, server_done, f);
        f->srv = NULL;
    }
    uv_close((uv_handle_t *)a, NULL);
    uv_close((uv_handle_t *)&f->timer, NULL);
}

static void *client_main(void *arg)
{
    struct fx *f = arg;
    f->client(f);
    uv_async_send(&f->finished);
    return NULL;
}

static void run(struct fx *f, client_fn client)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    struct mr_err err;
    assert_int_equal(mr_http_server_start(&f->srv, &f->loop, &f->opts, handler, f, &err), 0);
    f->port = mr_http_server_port(f->srv);
    assert_true(f->port > 0);
    uv_timer_init(&f->loop, &f->timer);
    f->timer.data = f;
    uv_async_init(&f->loop, &f->finished, finished_cb);
    f->finished.data = f;
    f->client = client;
    assert_int_equal(pthread_create(&f->thread, NULL, client_main, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(f->thread, NULL);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(f->done_calls, 1);
}

static struct fx *fx_new(void)
{
    struct fx *f = calloc(1, sizeof(*f));
    mr_http_server_options_init(&f->opts);
    f->opts.listen = "127.0.0.1:0";
    f->opts.log_name = "test.http";
    f->opts.max_body_bytes = 1024 * 1024;
    return f;
}

/* ---- libcurl helpers ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    struct res *r = arg;
    size_t len = sz * n;
    size_t room = sizeof(r->body) - 1 - r->body_len;
    size_t take = len < room ? len : room;
    memcpy(r->body + r->body_len, p, take);
    r->body_len += take;
    r->body[r->body_len] = '\0';
    r->writes++;
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    struct res *r = arg;
    size_t len = sz * n;
    size_t room = sizeof(r->headers) - 1 - r->headers_len;
    size_t take = len < room ? len : room;
    memcpy(r->headers + r->headers_len, p, take);
    r->headers_len += take;
    r->headers[r->headers_len] = '\0';
    return len;
}

struct upload {
    const char *data;
    size_t len, pos;
};

static size_t on_read(char *p, size_t sz, size_t n, void *arg)
{
    struct upload *u = arg;
    size_t take = sz * n < 1000 ? sz * n : 1000; /* several chunks */
    if (take > u->len - u->pos) {
        take = u->len - u->pos;
    }
    memcpy(p, u->data + u->pos, take);
    u->pos += take;
    return take;
}

/* One request on handle h (or a fresh one). body NULL: GET. chunked: body via read callback. */
static void request(CURL *h, struct res *r, const char *path, const char *body, size_t len,
                    bool chunked, struct curl_slist *hdrs)
{
    bool own = h == NULL;
    if (own) {
        h = curl_easy_init();
    }
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", test_port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 4000L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    struct upload u = {.data = body, .len = len};
    if (chunked) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &u);
    } else if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    r->code = -1;
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        fprintf(stderr, "curl %s: %s\n", path, curl_easy_strerror(cc));
    }
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->code);
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
        curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &r->seconds);
    }
    if (own) {
        curl_easy_cleanup(h);
    }
}

/* ---- raw socket helpers ---- */

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send req in one write; read until EOF (or `until` is seen, or timeout) into out. */
static void raw_exchange(int port, const char *req, size_t len, char *out, size_t cap,
                         const char *until)
{
    int fd = raw_connect(port);
    out[0] = '\0';
    if (fd < 0) {
        return;
    }
    if (write(fd, req, len) != (ssize_t)len) {
        close(fd);
        return;
    }
    size_t used = 0;
    while (used + 1 < cap) {
        ssize_t n = read(fd, out + used, cap - 1 - used);
        if (n <= 0) {
            break;
        }
        used += (size_t)n;
        out[used] = '\0';
        if (until != NULL && strstr(out, until) != NULL) {
            break;
        }
    }
    close(fd);
}

/* ---- tests ---- */

static void client_basic(struct fx *f)
{
    test_port = f->port;
    struct curl_slist *hdrs = curl_slist_append(NULL, "X-Test:  hello there  ");
    request(NULL, &f->r[0], "/p%20q?a=1&b=x+y%21&c", NULL, 0, false, hdrs);
    static char big[300000];
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (char)('a' + i % 26);
    }
    request(NULL, &f->r[1], "/post", big, sizeof(big), false, NULL);
    request(NULL, &f->r[2], "/chunked", big, 5000, true, NULL);
    /* gzip body, compressed here */
    static unsigned char gz[400000];
    z_stream z = {0};
    deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)big;
    z.avail_in = sizeof(big);
    z.next_out = gz;
    z.avail_out = sizeof(gz);
    deflate(&z, Z_FINISH);
    size_t gzlen = z.total_out;
    deflateEnd(&z);
    struct curl_slist *gzh = curl_slist_append(NULL, "Content-Encoding: gzip");
    request(NULL, &f->r[3], "/gz", (const char *)gz, gzlen, false, gzh);
    /* keep-alive: two requests, one connection */
    CURL *h = curl_easy_init();
    request(h, &f->r[4], "/one", NULL, 0, false, NULL);
    request(h, &f->r[5], "/two", NULL, 0, false, NULL);
    curl_easy_cleanup(h);
    /* Expect: 100-continue is answered at once (curl would wait 1 s) */
    struct curl_slist *ex = curl_slist_append(NULL, "Expect: 100-continue");
    request(NULL, &f->r[6], "/expect", big, 2000, false, ex);
    /* HTTP/1.0: answered, then closed */
    h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_0);
    request(h, &f->r[7], "/old", NULL, 0, false, NULL);
    curl_easy_cleanup(h);
    /* Content-Encoding: deflate, as zlib data (RFC 9110) and as raw deflate (what some send) */
    struct curl_slist *dh = curl_slist_append(NULL, "Content-Encoding: deflate");
    for (int raw = 0; raw < 2; raw++) {
        z_stream d = {0};
        deflateInit2(&d, 6, Z_DEFLATED, raw ? -15 : 15, 8, Z_DEFAULT_STRATEGY);
        d.next_in = (Bytef *)big;
        d.avail_in = 10000;
        d.next_out = gz;
        d.avail_out = sizeof(gz);
        deflate(&d, Z_FINISH);
        size_t dlen = d.total_out;
        deflateEnd(&d);
        request(NULL, &f->r[8 + raw], "/deflate", (const char *)gz, dlen, false, dh);
    }
    curl_slist_free_all(dh);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(gzh);
    curl_slist_free_all(ex);
}

static void test_requests_and_bodies(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    run(f, client_basic);
    struct res *r = f->r;
    assert_int_equal(r[0].code, 200);
    assert_string_equal(r[0].body,
                        "GET /p q a=1 b=x y! c= d=- x=hello there len=0 crc=00000000 nul=1");
    assert_non_null(strstr(r[0].headers, "X-Echo: 1\r\n"));
    char want[256];
    static char big[300000];
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (char)('a' + i % 26);
    }
    snprintf(want, sizeof(want), "POST /post a=- b=- c=- d=- x=- len=300000 crc=%08lx nul=1",
             crc32(0, (const Bytef *)big, sizeof(big)));
    assert_int_equal(r[1].code, 200);
    assert_string_equal(r[1].body, want);
    snprintf(want, sizeof(want), "POST /chunked a=- b=- c=- d=- x=- len=5000 crc=%08lx nul=1",
             crc32(0, (const Bytef *)big, 5000));
    assert_int_equal(r[2].code, 200);
    assert_string_equal(r[2].body, want);
    snprintf(want, sizeof(want), "POST /gz a=- b=- c=- d=- x=- len=300000 crc=%08lx nul=1",
             crc32(0, (const Bytef *)big, sizeof(big)));
    assert_int_equal(r[3].code, 200);
    assert_string_equal(r[3].body, want);
    assert_int_equal(r[4].code, 200);
    assert_int_equal(r[5].code, 200);
    assert_int_equal(r[4].connects, 1);
    assert_int_equal(r[5].connects, 0); /* reused */
    assert_int_equal(r[6].code, 200);
    assert_true(r[6].seconds < 0.5);
    assert_int_equal(r[7].code, 200);
    assert_non_null(strstr(r[7].headers, "Connection: close"));
    snprintf(want, sizeof(want), "POST /deflate a=- b=- c=- d=- x=- len=10000 crc=%08lx nul=1",
             crc32(0, (const Bytef *)big, 10000));
    assert_string_equal(r[8].body, want);
    assert_string_equal(r[9].body, want);
    assert_int_equal(f->requests, 10);
    free(f);
}

static void client_pipeline(struct fx *f)
{
    /* Two requests in one write: the first is answered late, yet first. */
    const char *two = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                      "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                      "GET /fast?a=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw_exchange(f->port, two, strlen(two), f->raw[0], sizeof(f->raw[0]), NULL);
    /* The client leaves before its answer. */
    int fd = raw_connect(f->port);
    const char *req = "GET /slow-gone HTTP/1.1\r\nHost: x\r\n\r\n";
    if (write(fd, req, strlen(req)) < 0) {
        f->raw[1][0] = 'E';
    }
    usleep(50 * 1000);
    close(fd);
    usleep(400 * 1000);
}

static void test_pipelining_async_and_gone(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    run(f, client_pipeline);
    const char *a = strstr(f->raw[0], "late\n");
    const char *p = strstr(f->raw[0], "POST /p a=- b=- c=- d=- x=- len=5 crc=3610a686 nul=1");
    const char *b = strstr(f->raw[0], "GET /fast a=2");
    assert_non_null(a);
    assert_non_null(p);
    assert_non_null(b);
    assert_true(a < p && p < b);
    assert_non_null(strstr(f->raw[0], "Connection: close"));
    assert_int_equal(f->gone_seen, 1);
    assert_int_equal(f->late_rc, MR_ECLOSED);
    assert_int_equal(f->requests, 4);
    free(f);
}

struct raw_case {
    const char *name;
    const char *request;
    const char *want; /* the answer starts with this */
    const char *body; /* and contains this */
};

static const struct raw_case raw_cases[] = {
    {"malformed", "GARBAGE\r\n\r\n", "HTTP/1.1 400 ", "malformed request"},
    {"body over limit", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\nabc",
     "HTTP/1.1 413 ", "larger than the limit of 1048576 bytes"},
    {"encoding",
     "POST /x HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\nContent-Length: 1\r\n\r\nx",
     "HTTP/1.1 415 ", "'br' is not supported"},
    {"slow", "GET /x HTTP/1.1\r\nHost: x\r\n", "HTTP/1.1 408 ", "not complete within 300 ms"},
    {"nul", "GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 ", "NUL"},
    {"bad gzip",
     "POST /x HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello",
     "HTTP/1.1 400 ", "cannot decode the gzip body"},
};

static char long_head[12000];

static void client_raw(struct fx *f)
{
    test_port = f->port;
    for (size_t i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]); i++) {
        raw_exchange(f->port, raw_cases[i].request, strlen(raw_cases[i].request), f->raw[i],
                     sizeof(f->raw[i]), NULL);
    }
    int n = snprintf(long_head, sizeof(long_head), "GET / HTTP/1.1\r\nX-Long: ");
    memset(long_head + n, 'v', 9000);
    memcpy(long_head + n + 9000, "\r\n\r\n", 5);
    raw_exchange(f->port, long_head, strlen(long_head), f->raw[6], sizeof(f->raw[6]), NULL);
    /* gzip bomb: 64 MiB of zeros in about 64 KiB */
    size_t plain = 64u << 20;
    unsigned char *zeros = calloc(1, 1 << 20);
    static unsigned char gz[200000];
    z_stream z = {0};
    deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
    z.next_out = gz;
    z.avail_out = sizeof(gz);
    for (size_t done = 0; done < plain; done += 1 << 20) {
        z.next_in = zeros;
        z.avail_in = 1 << 20;
        deflate(&z, done + (1 << 20) == plain ? Z_FINISH : Z_NO_FLUSH);
    }
    size_t gzlen = z.total_out;
    deflateEnd(&z);
    free(zeros);
    struct curl_slist *gzh = curl_slist_append(NULL, "Content-Encoding: gzip");
    request(NULL, &f->r[0], "/bomb", (const char *)gz, gzlen, false, gzh);
    curl_slist_free_all(gzh);
    /* 2 MiB plain body with curl (Expect: 100-continue or not, whatever curl does) */
    char *big = calloc(1, 2u << 20);
    request(NULL, &f->r[1], "/big", big, 2u << 20, false, NULL);
    free(big);
}

static void test_limits_and_errors(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->opts.request_timeout_ms = 300;
    run(f, client_raw);
    for (size_t i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]); i++) {
        if (strncmp(f->raw[i], raw_cases[i].want, strlen(raw_cases[i].want)) != 0 ||
            strstr(f->raw[i], raw_cases[i].body) == NULL) {
            fail_msg("%s: got '%s'", raw_cases[i].name, f->raw[i]);
        }
    }
    assert_true(strncmp(f->raw[6], "HTTP/1.1 431 ", 13) == 0);
    assert_int_equal(f->r[0].code, 413);
    assert_non_null(strstr(f->r[0].body, "decoded body is larger than the limit"));
    assert_int_equal(f->r[1].code, 413);
    assert_int_equal(f->requests, 0);
    free(f);
}

static void client_conns(struct fx *f)
{
    test_port = f->port;
    /* two connections in use (answered, kept alive), the third gets 503 */
    int a = raw_connect(f->port), b = raw_connect(f->port);
    const char *req = "GET /k HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[1024];
    for (int i = 0; i < 2; i++) {
        int fd = i == 0 ? a : b;
        if (write(fd, req, strlen(req)) < 0 || read(fd, buf, sizeof(buf)) <= 0) {
            f->raw[0][0] = 'E';
        }
    }
    request(NULL, &f->r[0], "/third", NULL, 0, false, NULL);
    close(a);
    close(b);
    usleep(50 * 1000);
    request(NULL, &f->r[1], "/stream", NULL, 0, false, NULL);
    request(NULL, &f->r[2], "/stop", NULL, 0, false, NULL);
}

static void test_connections_stream_and_stop(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->opts.max_connections = 2;
    run(f, client_conns);
    assert_int_equal(f->raw[0][0], '\0');
    assert_int_equal(f->r[0].code, 503);
    assert_non_null(strstr(f->r[0].body, "too many connections"));
    assert_int_equal(f->r[1].code, 200);
    assert_string_equal(f->r[1].body, "one\ntwo\nthree\n");
    assert_true(f->r[1].writes >= 2);
    assert_non_null(strstr(f->r[1].headers, "Transfer-Encoding: chunked"));
    assert_int_equal(f->stream_rc_big, MR_EAGAIN);
    /* stopped with /stop pending: it was answered, then done ran once (run() checks) */
    assert_int_equal(f->r[2].code, 200);
    assert_string_equal(f->r[2].body, "late\n");
    assert_non_null(strstr(f->r[2].headers, "Connection: close"));
    free(f);
}

static void test_bad_listen(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mr_http_server_options o;
    mr_http_server_options_init(&o);
    struct mr_http_server *s = NULL;
    struct mr_err err;
    o.listen = "nohost";
    assert_int_equal(mr_http_server_start(&s, &loop, &o, handler, NULL, &err), MR_EINVAL);
    assert_non_null(strstr(err.msg, "HOST:PORT"));
    o.listen = "example.com:80";
    assert_int_equal(mr_http_server_start(&s, &loop, &o, handler, NULL, &err), MR_EINVAL);
    o.listen = "127.0.0.1:99999";
    assert_int_equal(mr_http_server_start(&s, &loop, &o, handler, NULL, &err), MR_EINVAL);
    mr_http_server_stop(NULL, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    mr_log_set_level(MR_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_and_bodies),
        cmocka_unit_test(test_pipelining_async_and_gone),
        cmocka_unit_test(test_limits_and_errors),
        cmocka_unit_test(test_connections_stream_and_stop),
        cmocka_unit_test(test_bad_listen),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
