/* http_ingest: InfluxDB line protocol POSTed to the real `millrace run` with an `http_listener`
 * input until the journal holds every point (issue 6: "line-protocol ingest at 1,000,000
 * points/s or more on one core"), against what the parser, the decoder and the HTTP path alone
 * manage in the same run.
 *
 * The bodies are built once: --points lines (default 1,000,000) in bodies of --lines (5000) as
 * plant gateways send them: measurement `machine`, tags site/line/machine (200 machines on 10
 * lines), 4 or 3 fields (float, float, bool, integer / three floats), ns timestamps, ~100 bytes:
 *
 *   machine,site=north,line=l3,machine=m37 temp=21.53,pressure=3.0125,running=true,parts=1234i 17..
 *   machine,site=north,line=l3,machine=m38 temp=22.10,power=4.512,spindle_rpm=11873.0 17..
 *
 * A point is a line; the journal holds one record per field (asset_tags [line, machine], so
 * asset l3/m37, signal machine.temp, tag site). The gzip case sends the same bodies compressed
 * (zlib level 6, Go's and so Telegraf's default), compressed before the clock starts.
 *
 * Clients: --conns threads of this program (default 4), each with one keep-alive connection over
 * raw sockets and TCP_NODELAY, take the next body and POST it (one writev), read the answer,
 * repeat. A 503 (the journal pushes back) is sent again; any other unexpected answer fails.
 *
 * Cases, each with a fresh `millrace run` ($MR_BUILD/millrace, next to this program's directory)
 * and journal:
 *   ingest_[gzip_]fsync_F_points_per_s  POST /write until the journal holds every record, seen
 *       from this process through a read-only view (mr_journal_partition_stats, polled every
 *       1 ms; the answers come after the commit anyway). Limit: the target, 1 M points/s.
 *   cpu_..._us_per_point  millrace's utime+stime (/proc/PID/stat) over the measured stretch per
 *       point. Limit 1 us: 1 M points/s on one core.
 *   http_null_[gzip_]points_per_s  the same bodies POSTed to /ping of the same input: the server
 *       reads (and inflates) every body and the input answers 405 without looking at it. What
 *       HTTP, the kernel and these clients cost, without decoding and journal.
 *   parse_points_per_s  mr_lineproto_next + mr_lineproto_parse_line over the same bodies in this
 *       process, thread CPU time (as bench/lineproto_parse.c).
 *   decode_points_per_s  hl_decode_lineproto (parse + asset path + interned signal names +
 *       records, what the input does per body) over the same bodies, thread CPU time.
 * Clients and millrace share the machine's cores.
 *
 *   http_ingest [--dir DIR] [--points N] [--lines L] [--conns C] [--case all|ingest|limits]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "inputs/http_listener.h"
#include "inputs/lineproto.h"
#include "bench_lp.h"
#include "bench_proc.h"
#include "millrace/clock.h"
#include "millrace/journal.h"
#include "millrace/names.h"

#define MAX_CONNS   64
#define NULL_MIN_NS 1000000000LL
#define STALL_NS    (20 * 1000000000LL)
#define ANSWER_MAX  8192
#define TOPIC       "plant"

struct body {
    char *data;
    size_t len;
    char *gz;
    size_t gzlen;
    long points;
};

struct bench {
    const char *dir;
    char millrace[PATH_MAX + 16];
    long points;
    long lines;
    int conns;
    bool ingest, limits;
    struct body *bodies;
    size_t nbodies;
    long records; /* fields in all bodies: what the journal must hold */
    size_t bytes, gzbytes;
};

static void emit(const char *metric, double v, const char *unit, const char *limit)
{
    printf("{\"bench\":\"http_ingest\",\"metric\":\"%s\",\"value\":%.3f,\"unit\":\"%s\","
           "\"limit\":%s}\n",
           metric, v, unit, limit);
    fflush(stdout);
}

/* ---- bodies (lines from bench_lp.h) --------------------------------------------------------- */

static int gzip_body(struct body *b)
{
    z_stream z = {0};
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return 1;
    }
    size_t cap = deflateBound(&z, b->len) + 32;
    b->gz = malloc(cap);
    if (b->gz == NULL) {
        deflateEnd(&z);
        return 1;
    }
    z.next_in = (Bytef *)b->data;
    z.avail_in = (uInt)b->len;
    z.next_out = (Bytef *)b->gz;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    b->gzlen = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : 1;
}

static int make_bodies(struct bench *b)
{
    b->nbodies = (size_t)((b->points + b->lines - 1) / b->lines);
    b->bodies = calloc(b->nbodies, sizeof(*b->bodies));
    if (b->bodies == NULL) {
        return 1;
    }
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int64_t t0 = mr_clock_wall_ns() - 3600LL * 1000000000LL;
    long i = 0;
    for (size_t k = 0; k < b->nbodies; k++) {
        long n = b->points - i < b->lines ? b->points - i : b->lines;
        size_t cap = (size_t)n * 160, used = 0;
        struct body *bd = &b->bodies[k];
        bd->data = malloc(cap);
        if (bd->data == NULL) {
            return 1;
        }
        for (long j = 0; j < n; j++, i++) {
            int f;
            int w = bench_lp_line(bd->data + used, cap - used, &rng, i, t0, &f);
            if (w <= 0 || (size_t)w >= cap - used) {
                return 1;
            }
            used += (size_t)w;
            b->records += f;
        }
        bd->len = used;
        bd->points = n;
        b->bytes += used;
        if (gzip_body(bd) != 0) {
            return 1;
        }
        b->gzbytes += bd->gzlen;
    }
    return 0;
}

static void free_bodies(struct bench *b)
{
    for (size_t k = 0; k < b->nbodies && b->bodies != NULL; k++) {
        free(b->bodies[k].data);
        free(b->bodies[k].gz);
    }
    free(b->bodies);
}

/* ---- in-process limits -------------------------------------------------------------------- */

/* Parse every body (repeatedly, at least 1 s of thread CPU); points per CPU second. */
static double parse_rate(const struct bench *b)
{
    static struct mr_lp_point pt;
    static char scratch[512];
    long points = 0, errors = 0;
    int64_t t0 = bench_lp_thread_cpu_ns(), t1 = t0;
    while (t1 - t0 < 1000000000LL) {
        for (size_t k = 0; k < b->nbodies; k++) {
            size_t pos = 0, n;
            const char *line;
            while (mr_lineproto_next(b->bodies[k].data, b->bodies[k].len, &pos, &line, &n)) {
                struct mr_err err;
                if (mr_lineproto_parse_line(line, n, MR_LP_NS, &pt, scratch, sizeof(scratch),
                                            &err) != 0) {
                    errors++;
                }
                points++;
            }
        }
        t1 = bench_lp_thread_cpu_ns();
    }
    if (errors > 0) {
        fprintf(stderr, "http_ingest: %ld lines did not parse\n", errors);
        return 0;
    }
    return (double)points / ((double)(t1 - t0) / 1e9);
}

/* hl_decode_lineproto over every body, as the input does per request. */
static double decode_rate(const struct bench *b)
{
    char *tags[] = {"line", "machine"};
    struct hl_conf conf = {.asset_tags = {.items = tags, .n = 2}, .max_records = 100000};
    struct mr_names *names = NULL;
    struct hl_decoder d;
    struct mr_err err;
    double rate = 0;
    if (mr_names_create(&names, 65536, 1 << 22) != 0) {
        return 0;
    }
    if (hl_decoder_init(&d, &conf, names, &err) != 0) {
        mr_names_destroy(names);
        return 0;
    }
    long points = 0, records = 0;
    int64_t t0 = bench_lp_thread_cpu_ns(), t1 = t0;
    while (t1 - t0 < 1000000000LL) {
        for (size_t k = 0; k < b->nbodies; k++) {
            struct hl_report rep;
            if (hl_decode_lineproto(&d, b->bodies[k].data, b->bodies[k].len, MR_LP_NS, NULL,
                                    mr_clock_wall_ns(), &rep) != 0) {
                fprintf(stderr, "http_ingest: decode: %s\n", rep.nshown > 0 ? rep.msg[0] : "?");
                goto done;
            }
            points += b->bodies[k].points;
            records += (long)d.nrecs;
        }
        t1 = bench_lp_thread_cpu_ns();
    }
    rate = (double)points / ((double)(t1 - t0) / 1e9);
    (void)records;
done:
    hl_decoder_fini(&d);
    mr_names_destroy(names);
    return rate;
}

/* ---- clients ------------------------------------------------------------------------------ */

struct load {
    const struct bench *b;
    int port;
    const char *path;
    bool gzip;
    int expect;   /* status of a successful answer */
    size_t total; /* requests to send: the bodies, cycled */
    atomic_size_t next;
    atomic_long retries;
    atomic_int failed;
};

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    int one = 1;
    if (fd < 0) {
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return 1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Read one answer (head and Content-Length body); returns its status, -1 on error. */
static int read_answer(int fd, char *buf, size_t cap)
{
    size_t used = 0;
    char *end = NULL;
    while (end == NULL) {
        ssize_t r = read(fd, buf + used, cap - used - 1);
        if (r <= 0) {
            return -1;
        }
        used += (size_t)r;
        buf[used] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end == NULL && used >= cap - 1) {
            return -1;
        }
    }
    int status = (int)strtol(buf + 9, NULL, 10); /* "HTTP/1.1 204" */
    size_t clen = 0;
    for (char *h = strstr(buf, "\r\n"); h != NULL && h < end; h = strstr(h + 2, "\r\n")) {
        if (strncasecmp(h + 2, "Content-Length:", 15) == 0) {
            clen = strtoul(h + 17, NULL, 10);
        }
    }
    size_t have = used - (size_t)(end + 4 - buf);
    while (have < clen) {
        ssize_t r = read(fd, buf, cap - 1);
        if (r <= 0) {
            return -1;
        }
        have += (size_t)r;
    }
    return status;
}

/* POST one body; the status of the answer or -1. */
static int post(int fd, const char *path, const struct body *bd, bool gz, char *buf, size_t cap)
{
    char head[512];
    int h = snprintf(head, sizeof(head),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: http_ingest-bench\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n%s\r\n",
                     path, gz ? bd->gzlen : bd->len, gz ? "Content-Encoding: gzip\r\n" : "");
    struct iovec iov[2] = {
        {.iov_base = head, .iov_len = (size_t)h},
        {.iov_base = gz ? bd->gz : bd->data, .iov_len = gz ? bd->gzlen : bd->len}};
    if (write_all(fd, iov, 2) != 0) {
        return -1;
    }
    return read_answer(fd, buf, cap);
}

static void *client_main(void *arg)
{
    struct load *l = arg;
    char buf[ANSWER_MAX];
    int fd = connect_port(l->port);
    if (fd < 0) {
        atomic_store(&l->failed, 1);
        return NULL;
    }
    for (;;) {
        size_t k = atomic_fetch_add(&l->next, 1);
        if (k >= l->total || atomic_load(&l->failed)) {
            break;
        }
        k %= l->b->nbodies;
        int st;
        while ((st = post(fd, l->path, &l->b->bodies[k], l->gzip, buf, sizeof(buf))) == 503) {
            atomic_fetch_add(&l->retries, 1);
            mr_clock_sleep_ns(1000000);
        }
        if (st != l->expect) {
            fprintf(stderr, "http_ingest: POST %s: answer %d (expected %d)%s%.200s\n", l->path, st,
                    l->expect, st > 0 ? ": " : "", st > 0 ? buf : "");
            atomic_store(&l->failed, 1);
            break;
        }
    }
    close(fd);
    return NULL;
}

/* Send every body over the connections; 0 when every answer was the expected one. */
static int load_run(struct load *l, int conns)
{
    pthread_t th[MAX_CONNS];
    int started = 0;
    for (; started < conns; started++) {
        if (pthread_create(&th[started], NULL, client_main, l) != 0) {
            atomic_store(&l->failed, 1);
            break;
        }
    }
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
    return atomic_load(&l->failed) ? 1 : 0;
}

/* ---- millrace ----------------------------------------------------------------------------- */

struct run {
    char name[64];
    char journal[PATH_MAX];
    pid_t pid;
    int port;
};

static int millrace_start(const struct bench *b, struct run *r, const char *fsync)
{
    char conf[PATH_MAX], log[PATH_MAX];
    snprintf(conf, sizeof(conf), "%s/%s.yaml", b->dir, r->name);
    snprintf(log, sizeof(log), "%s/%s.log", b->dir, r->name);
    snprintf(r->journal, sizeof(r->journal), "%s/journal-%s", b->dir, r->name);
    r->port = bench_free_port();
    FILE *f = fopen(conf, "w");
    if (f == NULL) {
        fprintf(stderr, "http_ingest: %s: %s\n", conf, strerror(errno));
        return 1;
    }
    fprintf(f,
            "journal: {dir: %s, fsync: %s}\n"
            "http: {listen: \"127.0.0.1:%d\"}\n"
            "inputs:\n  " TOPIC ":\n    type: http_listener\n"
            "    service_address: \"127.0.0.1:%d\"\n    asset_tags: [line, machine]\n",
            r->journal, fsync, bench_free_port(), r->port);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (lfd >= 0) {
            dup2(lfd, 1);
            dup2(lfd, 2);
        }
        execl(b->millrace, b->millrace, "run", conf, (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    for (int i = 0; i < 200 && pid > 0; i++) {
        int fd = connect_port(r->port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        mr_clock_sleep_ns(50 * 1000000LL);
    }
    fprintf(stderr, "http_ingest: %s: millrace did not listen (see %s)\n", r->name, log);
    return 1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A case's journal is hundreds of MB: delete it before the next case. */
static void journal_remove(const struct run *r)
{
    nftw(r->journal, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* POST one line (answered after its commit, so the topic exists) and open the view. */
static int journal_attach(const struct run *r, struct mr_journal **jo, struct mr_journal_topic **to)
{
    static char probe[] = "machine,site=north,line=l0,machine=probe temp=1\n";
    struct body bd = {.data = probe, .len = strlen(probe)};
    char buf[ANSWER_MAX];
    int fd = connect_port(r->port);
    int st = fd >= 0 ? post(fd, "/write", &bd, false, buf, sizeof(buf)) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (st != 204) {
        fprintf(stderr, "http_ingest: %s: probe answered %d\n", r->name, st);
        return 1;
    }
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = r->journal;
    o.read_only = true;
    struct mr_err err;
    if (mr_journal_open(&o, jo, NULL, &err) != 0) {
        *jo = NULL;
        fprintf(stderr, "http_ingest: %s: journal: %s\n", r->name, err.msg);
        return 1;
    }
    *to = mr_journal_topic_find(*jo, TOPIC);
    if (*to == NULL || bench_journal_count(*to) < 1) {
        fprintf(stderr, "http_ingest: %s: the probe is not in the journal\n", r->name);
        return 1;
    }
    return 0;
}

/* One case: null (POST /ping, no journal view) or ingest (POST /write until all are held). */
static int run_case(const struct bench *b, const char *fsync, bool gz, bool null)
{
    struct run r = {.pid = 0};
    if (null) {
        snprintf(r.name, sizeof(r.name), "http_null%s", gz ? "_gzip" : "");
    } else {
        snprintf(r.name, sizeof(r.name), "ingest_%sfsync_%s", gz ? "gzip_" : "", fsync);
    }
    struct load l = {
        .b = b, .path = null ? "/ping" : "/write", .gzip = gz, .expect = null ? 405 : 204};
    struct mr_journal *j = NULL;
    struct mr_journal_topic *t = NULL;
    int rc = 1;
    if (millrace_start(b, &r, fsync) != 0 || (!null && journal_attach(&r, &j, &t) != 0)) {
        goto done;
    }
    l.port = r.port;
    int64_t base = null ? 0 : bench_journal_count(t);
    int64_t cpu0 = bench_cpu_ticks(r.pid, 0), start = mr_clock_mono_ns();
    /* The null case is fast: it cycles through the bodies for at least NULL_MIN_NS. */
    long points = 0;
    do {
        atomic_store(&l.next, 0);
        l.total = b->nbodies;
        if (load_run(&l, b->conns) != 0) {
            goto done;
        }
        points += b->points;
    } while (null && mr_clock_mono_ns() - start < NULL_MIN_NS);
    int64_t done = mr_clock_mono_ns(), have = 0;
    for (int64_t progress = done; !null && mr_clock_mono_ns() - progress < STALL_NS;) {
        int64_t n = bench_journal_count(t) - base;
        done = mr_clock_mono_ns();
        if (n >= b->records) {
            break;
        }
        if (n != have) {
            have = n;
            progress = done;
        }
        mr_clock_sleep_ns(1000000);
    }
    int64_t cpu1 = bench_cpu_ticks(r.pid, 0);
    if (!null && bench_journal_count(t) - base != b->records) {
        fprintf(stderr, "http_ingest: %s: the journal holds %lld of %ld records\n", r.name,
                (long long)(bench_journal_count(t) - base), b->records);
        goto done;
    }
    double secs = (double)(done - start) / 1e9;
    double us = (double)(cpu1 - cpu0) * 1e6 / (double)sysconf(_SC_CLK_TCK) / (double)points;
    char metric[128];
    snprintf(metric, sizeof(metric), "%s_points_per_s", r.name);
    emit(metric, (double)points / secs, "points/s", null ? "null" : "1000000");
    snprintf(metric, sizeof(metric), "cpu_%s_us_per_point", r.name);
    emit(metric, us, "us", null ? "null" : "1");
    printf("http_ingest %s: %ld points (%ld records, %.1f MB%s) in %.3f s, millrace CPU %.2f s "
           "(%.0f%% of one core), %ld retries after 503\n",
           r.name, points, b->records * (points / b->points),
           (double)(gz ? b->gzbytes : b->bytes) / 1e6 * (double)(points / b->points),
           gz ? " gzip" : "", secs, us * (double)points / 1e6,
           us * (double)points / 1e6 / secs * 100, atomic_load(&l.retries));
    rc = 0;
done:
    if (j != NULL) {
        mr_journal_close(j);
    }
    bench_stop(&r.pid);
    journal_remove(&r);
    return rc;
}

int main(int argc, char **argv)
{
    struct bench b = {.dir = "/tmp",
                      .points = 1000000,
                      .lines = 5000,
                      .conns = 4,
                      .ingest = true,
                      .limits = true};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            b.dir = argv[++i];
        } else if (strcmp(argv[i], "--points") == 0 && i + 1 < argc) {
            b.points = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc) {
            b.lines = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc) {
            b.conns = (int)strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc) {
            i++;
            b.ingest = strcmp(argv[i], "limits") != 0;
            b.limits = strcmp(argv[i], "ingest") != 0;
        } else {
            fprintf(stderr, "usage: http_ingest [--dir DIR] [--points N] [--lines L] "
                            "[--conns C] [--case all|ingest|limits]\n");
            return 2;
        }
    }
    /* 25000 lines of 4 fields stay within the input's default max_records (100000). */
    if (b.points < 1000 || b.lines < 1 || b.lines > 25000 || b.conns < 1 || b.conns > MAX_CONNS) {
        fprintf(stderr, "http_ingest: --points >= 1000, --lines 1..25000, --conns 1..%d\n",
                MAX_CONNS);
        return 2;
    }
    if (bench_find_millrace("http_ingest", b.millrace, sizeof(b.millrace)) != 0) {
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    int rc = make_bodies(&b);
    if (rc != 0) {
        fprintf(stderr, "http_ingest: cannot build the bodies\n");
    } else {
        printf("http_ingest: %ld points, %ld records, %zu bodies of %ld lines, %.1f bytes/line, "
               "gzip %.1f%% of that, %d connections\n",
               b.points, b.records, b.nbodies, b.lines, (double)b.bytes / (double)b.points,
               100.0 * (double)b.gzbytes / (double)b.bytes, b.conns);
    }
    if (rc == 0 && b.limits) {
        double p = parse_rate(&b), d = decode_rate(&b);
        rc = p > 0 && d > 0 ? 0 : 1;
        if (rc == 0) {
            emit("parse_points_per_s", p, "points/s", "null");
            emit("decode_points_per_s", d, "points/s", "null");
        }
        for (int gz = 0; gz <= 1 && rc == 0; gz++) {
            rc = run_case(&b, "interval", gz == 1, true);
        }
    }
    static const struct {
        const char *fsync;
        bool gz;
    } cases[] = {{"interval", false}, {"always", false}, {"interval", true}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) && rc == 0 && b.ingest; i++) {
        rc = run_case(&b, cases[i].fsync, cases[i].gz, false);
    }
    free_bodies(&b);
    return rc;
}
