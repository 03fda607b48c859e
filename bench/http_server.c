/* http_server: requests/s through our HTTP server (src/web/http_server.c, one libuv loop thread)
 * against libmicrohttpd serving the same answers, in the same run (issue 8: measure, then choose).
 *
 * Both servers run in this process on 127.0.0.1: ours on a loop in its own thread; libmicrohttpd
 * with one internal epoll thread (the same one-thread shape; `mhd_pool` also measures it with a
 * pool of as many threads as there are cores). N client threads (--conns, default 8) each keep
 * one connection alive over raw sockets and send one request at a time (write the request, read
 * the whole answer, repeat) for --seconds each case:
 *
 *   get:      GET /small            -> 200 "ok\n"
 *   post64k:  POST /post, 64 KiB body with Content-Length -> 200 "ok\n" once the body is in
 *             (ours hands the handler the whole body in one buffer; libmicrohttpd's access
 *             handler sees it in pieces and discards them: it does less work here)
 *
 * Metrics: ours_get_req_per_s (limit: mhd_get_req_per_s), mhd_get_req_per_s, and likewise for
 * post64k; the pool variants have no limit. Clients and servers share the machine's cores.
 *
 *   http_server [--dir DIR] [--seconds S] [--conns N]
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "millrace/http_server.h"
#include "millrace/log.h"

#define POST_BYTES (64 * 1024)
#define MAX_CONNS  256

static char post_body[POST_BYTES];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- our server on a loop thread ---- */

struct ours {
    uv_loop_t loop;
    uv_async_t stop;
    struct mr_http_server *srv;
    pthread_t thread;
    int port;
};

static void ours_handle(void *arg, struct mr_http_request *r)
{
    (void)arg;
    size_t len;
    mr_http_request_body(r, &len);
    mr_http_respond(r, 200, "text/plain", NULL, "ok\n", 3);
}

static void ours_stop_cb(uv_async_t *a)
{
    struct ours *o = a->data;
    mr_http_server_stop(o->srv, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void *ours_main(void *arg)
{
    struct ours *o = arg;
    uv_run(&o->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int ours_start(struct ours *o)
{
    uv_loop_init(&o->loop);
    struct mr_http_server_options opts;
    mr_http_server_options_init(&opts);
    opts.listen = "127.0.0.1:0";
    opts.log_name = "bench.http";
    opts.max_connections = MAX_CONNS;
    struct mr_err err;
    if (mr_http_server_start(&o->srv, &o->loop, &opts, ours_handle, o, &err) != 0) {
        fprintf(stderr, "http_server: %s\n", err.msg);
        return -1;
    }
    o->port = mr_http_server_port(o->srv);
    uv_async_init(&o->loop, &o->stop, ours_stop_cb);
    o->stop.data = o;
    return pthread_create(&o->thread, NULL, ours_main, o) == 0 ? 0 : -1;
}

static void ours_finish(struct ours *o)
{
    uv_async_send(&o->stop);
    pthread_join(o->thread, NULL);
    uv_loop_close(&o->loop);
}

/* ---- libmicrohttpd, the same answers ---- */

static struct MHD_Response *mhd_ok;

static enum MHD_Result mhd_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload_data;
    static int started;
    if (*con_cls == NULL) { /* first call: headers only */
        *con_cls = &started;
        return MHD_YES;
    }
    if (*upload_size > 0) { /* a piece of the body: consumed */
        *upload_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response(conn, 200, mhd_ok);
}

static struct MHD_Daemon *mhd_start(bool pool, int *port)
{
    unsigned threads = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO, 0, NULL, NULL, mhd_handle,
                         NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNS,
                         MHD_OPTION_THREAD_POOL_SIZE, pool ? threads : 1u, MHD_OPTION_END);
    if (d == NULL) {
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info != NULL ? info->port : 0;
    return d;
}

/* ---- clients: one keep-alive connection each, one request at a time ---- */

struct client {
    pthread_t thread;
    int port;
    bool post;
    double until;
    long requests;
    int failed;
};

static atomic_int clients_ready;

static int read_answer(int fd, char *buf, size_t cap)
{
    size_t used = 0;
    for (;;) {
        ssize_t n = read(fd, buf + used, cap - 1 - used);
        if (n <= 0) {
            return -1;
        }
        used += (size_t)n;
        buf[used] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL) {
            continue;
        }
        char *cl = strcasestr(buf, "\r\ncontent-length:");
        if (cl == NULL || cl > end) {
            return -1;
        }
        size_t want = (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10);
        if (used >= want) {
            return strncmp(buf, "HTTP/1.1 200 ", 13) == 0 ? 0 : -1;
        }
    }
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        c->failed = 1;
        close(fd);
        return NULL;
    }
    static const char get[] = "GET /small HTTP/1.1\r\nHost: bench\r\n\r\n";
    char post_head[128];
    int plen = snprintf(post_head, sizeof(post_head),
                        "POST /post HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                        "application/octet-stream\r\nContent-Length: %d\r\n\r\n",
                        POST_BYTES);
    struct iovec iov[2] = {{.iov_base = c->post ? post_head : (char *)get,
                            .iov_len = c->post ? (size_t)plen : sizeof(get) - 1},
                           {.iov_base = post_body, .iov_len = c->post ? POST_BYTES : 0}};
    char buf[4096];
    atomic_fetch_add(&clients_ready, 1);
    while (now_s() < c->until) {
        size_t total = iov[0].iov_len + iov[1].iov_len, sent = 0;
        while (sent < total) {
            struct iovec v[2];
            int nv = 0;
            size_t skip = sent;
            for (int i = 0; i < 2; i++) {
                if (skip >= iov[i].iov_len) {
                    skip -= iov[i].iov_len;
                    continue;
                }
                v[nv].iov_base = (char *)iov[i].iov_base + skip;
                v[nv++].iov_len = iov[i].iov_len - skip;
                skip = 0;
            }
            ssize_t n = writev(fd, v, nv);
            if (n <= 0) {
                c->failed = 1;
                close(fd);
                return NULL;
            }
            sent += (size_t)n;
        }
        if (read_answer(fd, buf, sizeof(buf)) != 0) {
            c->failed = 1;
            break;
        }
        c->requests++;
    }
    close(fd);
    return NULL;
}

/* N clients against port for `seconds`; returns requests/s, or -1 when a client failed. */
static double measure(int port, bool post, int conns, double seconds)
{
    struct client *cs = calloc((size_t)conns, sizeof(*cs));
    double t0 = now_s();
    for (int i = 0; i < conns; i++) {
        cs[i] = (struct client){.port = port, .post = post, .until = t0 + seconds};
        pthread_create(&cs[i].thread, NULL, client_main, &cs[i]);
    }
    long total = 0;
    int failed = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(cs[i].thread, NULL);
        total += cs[i].requests;
        failed |= cs[i].failed;
    }
    double elapsed = now_s() - t0;
    free(cs);
    return failed ? -1 : (double)total / elapsed;
}

static void emit(const char *metric, double v, const char *limit)
{
    printf("{\"bench\":\"http_server\",\"metric\":\"%s\",\"value\":%.1f,\"unit\":\"req/s\","
           "\"limit\":%s}\n",
           metric, v, limit);
}

int main(int argc, char **argv)
{
    double seconds = 2.0;
    int conns = 8;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            i++; /* no files */
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc) {
            conns = (int)strtol(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: http_server [--dir DIR] [--seconds S] [--conns N]\n");
            return 2;
        }
    }
    if (seconds <= 0 || conns < 1 || conns > MAX_CONNS) {
        fprintf(stderr, "http_server: --seconds must be > 0, --conns 1..%d\n", MAX_CONNS);
        return 2;
    }
    memset(post_body, 'x', sizeof(post_body));
    mr_log_set_level(MR_LOG_ERROR);
    mhd_ok = MHD_create_response_from_buffer(3, (void *)"ok\n", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(mhd_ok, "Content-Type", "text/plain");

    struct ours o;
    if (ours_start(&o) != 0) {
        return 1;
    }
    double ours_get = measure(o.port, false, conns, seconds);
    double ours_post = measure(o.port, true, conns, seconds);
    ours_finish(&o);

    int port = 0;
    struct MHD_Daemon *d = mhd_start(false, &port);
    if (d == NULL) {
        fprintf(stderr, "http_server: libmicrohttpd did not start\n");
        return 1;
    }
    double mhd_get = measure(port, false, conns, seconds);
    double mhd_post = measure(port, true, conns, seconds);
    MHD_stop_daemon(d);
    d = mhd_start(true, &port);
    if (d == NULL) {
        fprintf(stderr, "http_server: libmicrohttpd (thread pool) did not start\n");
        return 1;
    }
    double pool_get = measure(port, false, conns, seconds);
    double pool_post = measure(port, true, conns, seconds);
    MHD_stop_daemon(d);
    MHD_destroy_response(mhd_ok);

    if (ours_get < 0 || ours_post < 0 || mhd_get < 0 || mhd_post < 0 || pool_get < 0 ||
        pool_post < 0) {
        fprintf(stderr,
                "http_server: a client failed (ours %.0f/%.0f, mhd %.0f/%.0f, pool %.0f/%.0f)\n",
                ours_get, ours_post, mhd_get, mhd_post, pool_get, pool_post);
        return 1;
    }
    emit("ours_get_req_per_s", ours_get, "\"http_server.mhd_get_req_per_s\"");
    emit("mhd_get_req_per_s", mhd_get, "null");
    emit("mhd_pool_get_req_per_s", pool_get, "null");
    emit("ours_post64k_req_per_s", ours_post, "\"http_server.mhd_post64k_req_per_s\"");
    emit("mhd_post64k_req_per_s", mhd_post, "null");
    emit("mhd_pool_post64k_req_per_s", pool_post, "null");
    printf("http_server: %d keep-alive connections, %.1f s per case, %ld cores\n", conns, seconds,
           sysconf(_SC_NPROCESSORS_ONLN));
    return 0;
}
