/* output_delivery: records/s that millrace's `influxdb` and `postgresql` outputs deliver from
 * the journal to the real peer (issue 7: "at least 80 % of the plain bulk load while keeping
 * the durability guarantee"), against a plain bulk load of the same data in the same run.
 *
 * The data: --points records (default 500,000), 200 machines on 10 lines of one site, one
 * float signal machine.temp, ns timestamps 1 us apart (every point its own series+time):
 *
 *   InfluxDB line:   machine,site=north,line=l3,machine=m37 temp=21.53 1700000000000037000
 *   PostgreSQL row:  2023-11-14 22:13:20.000037+00,north/l3/m37,machine.temp,21.53,,0,
 *   millrace record: asset north/l3/m37, signal machine.temp, f64 21.53
 *
 * Peers started by this program on 127.0.0.1 on free ports, data under --dir: influxd 1.6
 * (/usr/bin/influxd) and PostgreSQL 15 (initdb + postgres, as the user postgres via setpriv
 * when we are root; default fsync and synchronous_commit: the durability the output promises).
 *
 *   influx_bulk_points_per_s       the pre-built line protocol POSTed to /write?db=bulk with
 *                                  libcurl (one keep-alive connection, --lines lines a body,
 *                                  default 5000, uncompressed): what `curl --data-binary` of a
 *                                  pre-built file manages. Limit null.
 *   influx_bulk_gzip_points_per_s  the same bodies gzipped (libdeflate level 1, as the output)
 *                                  before the clock starts, sent with Content-Encoding: gzip:
 *                                  the bytes and the work for influxd of the output's default.
 *                                  Limit null.
 *   influx_delivered_records_per_s the same records in a journal topic (written beforehand with
 *                                  the library), then `millrace run` with only the influxdb
 *                                  output on that topic (database `delivered`, default gzip):
 *                                  from the first /metrics answer until
 *                                  millrace_output_delivered_total covers every record, polled
 *                                  every 5 ms. Limit: influx_bulk_gzip_points_per_s.
 *   influx_identity_delivered_records_per_s  the same with content_encoding: identity.
 *                                  Limit: influx_bulk_points_per_s.
 *   pg_copy_rows_per_s             a CSV of the same rows COPYed (PQputCopyData, 1 MiB pieces,
 *                                  one transaction, as psql \copy does) into a table with the
 *                                  output's narrow layout and index. Limit null.
 *   pg_delivered_records_per_s     the postgresql output (exactly once: COPY + offset per
 *                                  batch, one transaction each). Limit: pg_copy_rows_per_s.
 * Each InfluxDB case runs against its own fresh influxd (a later case would otherwise pay for
 * the cache snapshots and compactions of the earlier ones' data). Each delivered case checks
 * afterwards that the peer holds exactly --points records. millrace, the peers and this program
 * share the machine's cores.
 *
 * For finding where the time goes: --lines N sends the bulk load in bodies of N lines and
 * --copy-rows N COPYs in transactions of N rows (one commit, one WAL flush each, as the output
 * does per write), to compare with the outputs at --batch-size N.
 *
 *   output_delivery [--dir DIR] [--points N] [--lines L] [--copy-rows R] [--case all|influx|pg]
 *                   [--batch-size B]   (delivery.batch_size of the outputs; default millrace's)
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libdeflate.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pwd.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench_proc.h"
#include "engine/topic_writer.h"
#include "millrace/clock.h"
#include "millrace/journal.h"
#include "millrace/names.h"
#include "millrace/record.h"

#define PGBIN    "/usr/lib/postgresql/15/bin"
#define TOPIC    "store"
#define MACHINES 200
#define T0_NS    1700000000000000000LL

extern char **environ;

struct bench {
    const char *dir;
    char millrace[PATH_MAX + 16];
    long points, lines;
    long copy_rows; /* rows per COPY transaction of the PostgreSQL peer; 0: all in one */
    const char *which;
    long batch_size; /* delivery.batch_size of the outputs; 0: millrace's default */
    double pg_copy;
};

static void emit(const char *metric, double v, const char *unit, const char *limit)
{
    if (limit != NULL) {
        printf("{\"bench\":\"output_delivery\",\"metric\":\"%s\",\"value\":%.1f,\"unit\":\"%s\","
               "\"limit\":\"output_delivery.%s\"}\n",
               metric, v, unit, limit);
    } else {
        printf("{\"bench\":\"output_delivery\",\"metric\":\"%s\",\"value\":%.1f,\"unit\":\"%s\","
               "\"limit\":null}\n",
               metric, v, unit);
    }
    fflush(stdout);
}

static double now_s(void)
{
    return (double)mr_clock_mono_ns() / 1e9;
}

/* ---- the data ------------------------------------------------------------------------------ */

static double value_of(long i)
{
    return 20.0 + (double)((i * 7919) % 10000) / 100.0;
}

static void asset_of(long i, char *out, size_t cap)
{
    unsigned m = (unsigned)(i % MACHINES);
    snprintf(out, cap, "north/l%u/m%u", m / 20, m);
}

/* Bodies of `lines` lines each, concatenated; starts[k] is body k's offset (nbodies + 1). */
struct bodies {
    char *data;
    size_t *starts;
    size_t n;
};

static int bodies_build(const struct bench *b, struct bodies *bd)
{
    size_t cap = (size_t)b->points * 80 + 1;
    bd->n = (size_t)((b->points + b->lines - 1) / b->lines);
    bd->data = malloc(cap);
    bd->starts = calloc(bd->n + 1, sizeof(size_t));
    if (bd->data == NULL || bd->starts == NULL) {
        return 1;
    }
    size_t used = 0;
    for (long i = 0; i < b->points; i++) {
        if (i % b->lines == 0) {
            bd->starts[i / b->lines] = used;
        }
        unsigned m = (unsigned)(i % MACHINES);
        int w = snprintf(bd->data + used, cap - used,
                         "machine,site=north,line=l%u,machine=m%u temp=%.2f %lld\n", m / 20, m,
                         value_of(i), (long long)(T0_NS + i * 1000LL));
        if (w <= 0 || (size_t)w >= cap - used) {
            return 1;
        }
        used += (size_t)w;
    }
    bd->starts[bd->n] = used;
    return 0;
}

/* Every body of in gzipped (libdeflate level 1, as the output compresses), before any timing. */
static int bodies_gzip(const struct bodies *in, struct bodies *out)
{
    struct libdeflate_compressor *z = libdeflate_alloc_compressor(1);
    size_t cap = z != NULL ? libdeflate_gzip_compress_bound(z, in->starts[in->n]) + in->n * 32 : 0;
    out->data = malloc(cap);
    out->starts = calloc(in->n + 1, sizeof(size_t));
    out->n = in->n;
    int rc = z == NULL || out->data == NULL || out->starts == NULL;
    size_t used = 0;
    for (size_t k = 0; rc == 0 && k < in->n; k++) {
        size_t w =
            libdeflate_gzip_compress(z, in->data + in->starts[k], in->starts[k + 1] - in->starts[k],
                                     out->data + used, cap - used);
        out->starts[k] = used;
        used += w;
        rc = w == 0;
    }
    out->starts[out->n] = used;
    libdeflate_free_compressor(z);
    return rc;
}

/* The CSV of the narrow table (time, asset, signal, value, value_text, quality, tags). */
static char *csv_build(const struct bench *b, size_t *len, size_t *starts, long every)
{
    size_t cap = (size_t)b->points * 96 + 1, used = 0;
    char *out = malloc(cap);
    for (long i = 0; out != NULL && i < b->points; i++) {
        if (i % every == 0) {
            starts[i / every] = used;
        }
        int64_t us = (T0_NS + i * 1000LL) / 1000;
        time_t secs = (time_t)(us / 1000000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        char ts[32], asset[32];
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
        asset_of(i, asset, sizeof(asset));
        int w = snprintf(out + used, cap - used, "%s.%06lld+00,%s,machine.temp,%.2f,,0,\n", ts,
                         (long long)(us % 1000000), asset, value_of(i));
        if (w <= 0 || (size_t)w >= cap - used) {
            free(out);
            return NULL;
        }
        used += (size_t)w;
    }
    *len = used;
    return out;
}

/* A journal at path whose topic TOPIC holds every record (what a pipeline would have written). */
static int journal_prepare(const struct bench *b, const char *path)
{
    struct mr_names *names = NULL;
    struct mr_journal *j = NULL;
    struct mr_journal_topic *t = NULL;
    struct mr_topic_writer w;
    bool winit = false;
    struct mr_err err = {0};
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = path;
    o.fsync = MR_JOURNAL_FSYNC_NEVER;
    mr_name_id assets[MACHINES], signal = 0;
    int rc = mr_names_create(&names, 4096, 1 << 20) != 0 ||
             mr_journal_open(&o, &j, NULL, &err) != 0 ||
             mr_journal_topic_create(j, TOPIC, 1, NULL, &t, &err) != 0 ||
             mr_names_intern(names, "machine.temp", 12, &signal) != 0;
    for (unsigned m = 0; rc == 0 && m < MACHINES; m++) {
        char a[32];
        asset_of(m, a, sizeof(a));
        rc = mr_names_intern(names, a, strlen(a), &assets[m]) != 0;
    }
    if (rc == 0) {
        rc = mr_topic_writer_init(&w, t, names, 256u * 1024u) != 0;
        winit = rc == 0;
    }
    for (long i = 0; rc == 0 && i < b->points; i++) {
        struct mr_record r = {.time_ns = T0_NS + i * 1000LL,
                              .asset = assets[i % MACHINES],
                              .signal = signal,
                              .type = MR_VALUE_F64,
                              .quality = MR_QUALITY_GOOD,
                              .v.f64 = value_of(i)};
        rc = mr_topic_writer_add(&w, &r) != 0;
    }
    if (rc == 0) {
        rc = mr_topic_writer_sync(&w) != 0;
    }
    if (rc != 0) {
        fprintf(stderr, "output_delivery: journal %s: %s\n", path,
                err.msg[0] != '\0' ? err.msg : "cannot write the records");
    }
    if (winit) {
        mr_topic_writer_fini(&w);
    }
    mr_journal_close(j);
    mr_names_destroy(names);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tree_remove(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- HTTP with libcurl ---------------------------------------------------------------------- */

struct answer {
    char buf[65536];
    size_t len;
};

static size_t answer_add(char *data, size_t size, size_t nmemb, void *arg)
{
    struct answer *a = arg;
    size_t n = size * nmemb,
           take = n < sizeof(a->buf) - 1 - a->len ? n : sizeof(a->buf) - 1 - a->len;
    memcpy(a->buf + a->len, data, take);
    a->len += take;
    a->buf[a->len] = '\0';
    return n;
}

/* GET (body NULL) or POST url on handle h; the status, the answer's start in a (may be NULL). */
static long http(CURL *h, const char *url, const char *body, size_t len, struct answer *a)
{
    static struct answer scratch;
    a = a != NULL ? a : &scratch;
    a->len = 0;
    a->buf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, answer_add);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    }
    return status;
}

/* millrace_output_delivered_total of outputs.historian from /metrics on port, or -1. */
static double delivered_of(CURL *h, int port)
{
    static struct answer a;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    if (http(h, url, NULL, 0, &a) != 200) {
        return -1;
    }
    for (char *p = strstr(a.buf, "millrace_output_delivered_total{"); p != NULL;
         p = strstr(p + 1, "millrace_output_delivered_total{")) {
        char *eol = strchr(p, '\n'), *sp = strchr(p, '}');
        if (sp != NULL && (eol == NULL || sp < eol) && strstr(p, "outputs.historian") != NULL &&
            strstr(p, "outputs.historian") < sp) {
            return strtod(sp + 1, NULL);
        }
    }
    return 0;
}

/* ---- millrace ------------------------------------------------------------------------------ */

/* Start `millrace run` with the output section `out` over a journal holding the records; wait
 * until delivered covers them. Returns records/s over the stretch from the first /metrics
 * answer (0 on failure). */
static double millrace_deliver(const struct bench *b, const char *name, const char *out)
{
    char conf[PATH_MAX], log[PATH_MAX], journal[PATH_MAX];
    snprintf(conf, sizeof(conf), "%s/%s.yaml", b->dir, name);
    snprintf(log, sizeof(log), "%s/%s.log", b->dir, name);
    snprintf(journal, sizeof(journal), "%s/journal-%s", b->dir, name);
    if (journal_prepare(b, journal) != 0) {
        return 0;
    }
    int port = bench_free_port();
    FILE *f = fopen(conf, "w");
    if (f == NULL) {
        fprintf(stderr, "output_delivery: %s: %s\n", conf, strerror(errno));
        return 0;
    }
    /* The pipeline `store` (from an idle topic) only makes the topic `store` the output's
     * source: the records are in it already. */
    fprintf(f,
            "journal: {dir: %s}\nhttp: {listen: \"127.0.0.1:%d\"}\n"
            "pipelines:\n  " TOPIC ": {from: [idle], to: [historian]}\n"
            "outputs:\n  historian:\n%s",
            journal, port, out);
    if (b->batch_size > 0) {
        fprintf(f, "    delivery: {batch_size: %ld}\n", b->batch_size);
    }
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
    CURL *h = curl_easy_init();
    double t_fork = now_s(), t_first = 0, d_first = 0, d = -1, rate = 0;
    int64_t cpu0 = -1;
    while (now_s() - t_fork < 300) {
        d = delivered_of(h, port);
        if (d >= 0 && t_first == 0) {
            t_first = now_s();
            d_first = d;
            cpu0 = bench_cpu_ticks(pid, 0);
        }
        if (d >= (double)b->points) {
            break;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            pid = 0;
            break;
        }
        mr_clock_sleep_ns(5 * 1000000LL);
    }
    double t_done = now_s();
    int64_t cpu1 = pid > 0 ? bench_cpu_ticks(pid, 0) : -1;
    if (d >= (double)b->points && t_done > t_first) {
        rate = ((double)b->points - d_first) / (t_done - t_first);
        printf("# %s: %ld records, %.0f already delivered at the first /metrics answer "
               "(%.3f s after start); %.3f s for the rest; %.3f s in all; millrace CPU %.2f s\n",
               name, b->points, d_first, t_first - t_fork, t_done - t_first, t_done - t_fork,
               cpu0 >= 0 && cpu1 >= 0 ? (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK)
                                      : -1.0);
    } else {
        fprintf(stderr, "output_delivery: %s: delivered %.0f of %ld (see %s)\n", name, d, b->points,
                log);
    }
    curl_easy_cleanup(h);
    bench_stop(&pid);
    tree_remove(journal);
    return rate;
}

/* ---- InfluxDB ------------------------------------------------------------------------------ */

struct influx {
    char dir[PATH_MAX];
    int port;
    pid_t pid;
};

static int influx_start(const struct bench *b, struct influx *ix, CURL *h)
{
    char conf[PATH_MAX + 32], log[PATH_MAX + 32], url[128];
    snprintf(ix->dir, sizeof(ix->dir), "%s/influx", b->dir);
    snprintf(conf, sizeof(conf), "%s/influxdb.conf", ix->dir);
    snprintf(log, sizeof(log), "%s/influxd.log", ix->dir);
    mkdir(ix->dir, 0755);
    ix->port = bench_free_port();
    FILE *f = fopen(conf, "w");
    if (f == NULL) {
        return 1;
    }
    fprintf(f,
            "reporting-disabled = true\nbind-address = \"127.0.0.1:%d\"\n"
            "[meta]\n  dir = \"%s/meta\"\n  logging-enabled = false\n"
            "[data]\n  dir = \"%s/data\"\n  wal-dir = \"%s/wal\"\n  query-log-enabled = false\n"
            "[monitor]\n  store-enabled = false\n"
            "[http]\n  bind-address = \"127.0.0.1:%d\"\n  log-enabled = false\n"
            "[continuous_queries]\n  enabled = false\n",
            bench_free_port(), ix->dir, ix->dir, ix->dir, ix->port);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl("/usr/bin/influxd", "influxd", "run", "-config", conf, (char *)NULL);
        _exit(127);
    }
    ix->pid = pid;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ping", ix->port);
    for (int i = 0; i < 300; i++) {
        if (http(h, url, NULL, 0, NULL) == 204) {
            return 0;
        }
        mr_clock_sleep_ns(100 * 1000000LL);
    }
    fprintf(stderr, "output_delivery: influxd did not answer /ping (see %s)\n", log);
    return 1;
}

static long influx_count(CURL *h, int port, const char *db)
{
    struct answer a;
    char url[256];
    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/query?db=%s&q=SELECT%%20count(temp)%%20FROM%%20machine", port,
             db);
    if (http(h, url, NULL, 0, &a) != 200) {
        return -1;
    }
    /* {"results":[{"statement_id":0,"series":[{...,"values":[["1970-...",200000]]}]}]} */
    char *v = strstr(a.buf, "\"values\":[[");
    char *comma = v != NULL ? strchr(v, ',') : NULL;
    return comma != NULL ? strtol(comma + 1, NULL, 10) : 0;
}

/* POST the bodies to /write?db=db (created first) one after the other on one connection;
 * points/s, or -1 when influxd refused one or does not hold every point afterwards. */
static double influx_bulk(const struct bench *b, const struct influx *ix, CURL *h,
                          const struct bodies *bd, const char *db, bool gzip)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/query?q=CREATE%%20DATABASE%%20%s", ix->port,
             db);
    if (http(h, url, "", 0, NULL) != 200) {
        return -1;
    }
    struct curl_slist *hdr = gzip ? curl_slist_append(NULL, "Content-Encoding: gzip") : NULL;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/write?db=%s&precision=ns", ix->port, db);
    int rc = 0;
    double t0 = now_s();
    for (size_t k = 0; rc == 0 && k < bd->n; k++) {
        long st = http(h, url, bd->data + bd->starts[k], bd->starts[k + 1] - bd->starts[k], NULL);
        if (st != 204) {
            fprintf(stderr, "output_delivery: influxd /write answered %ld\n", st);
            rc = 1;
        }
    }
    double dt = now_s() - t0;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdr);
    long n = rc == 0 ? influx_count(h, ix->port, db) : -1;
    if (rc == 0 && n != b->points) {
        fprintf(stderr, "output_delivery: %s: influxd holds %ld of %ld\n", db, n, b->points);
        rc = 1;
    }
    return rc == 0 ? (double)b->points / dt : -1;
}

/* Each case against its own fresh influxd: a later case would otherwise pay for the cache
 * snapshots and compactions of the earlier ones' data. */
static int influx_case(struct bench *b)
{
    static const struct {
        const char *metric, *db, *enc, *limit;
    } cases[] = {
        {"influx_bulk_points_per_s", "bulk", "identity", NULL},
        {"influx_bulk_gzip_points_per_s", "bulk_gzip", "gzip", NULL},
        {"influx_delivered_records_per_s", "delivered", "gzip", "influx_bulk_gzip_points_per_s"},
        {"influx_identity_delivered_records_per_s", "delivered_identity", "identity",
         "influx_bulk_points_per_s"},
    };
    struct bodies bd = {0}, bdz = {0};
    CURL *h = curl_easy_init();
    int rc = bodies_build(b, &bd) != 0 || bodies_gzip(&bd, &bdz) != 0;
    for (size_t i = 0; rc == 0 && i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct influx ix = {.pid = 0};
        bool gzip = strcmp(cases[i].enc, "gzip") == 0;
        double rate = -1;
        if (influx_start(b, &ix, h) != 0) {
            rc = 1;
        } else if (cases[i].limit == NULL) {
            rate = influx_bulk(b, &ix, h, gzip ? &bdz : &bd, cases[i].db, gzip);
        } else {
            char out[512];
            snprintf(out, sizeof(out),
                     "    type: influxdb\n    urls: [\"http://127.0.0.1:%d\"]\n    database: %s\n"
                     "    content_encoding: %s\n    asset_tag: \"\"\n"
                     "    asset_path_tags: [site, line, machine]\n",
                     ix.port, cases[i].db, cases[i].enc);
            rate = millrace_deliver(b, cases[i].db, out);
            long n = rate > 0 ? influx_count(h, ix.port, cases[i].db) : -1;
            if (n != b->points) {
                fprintf(stderr, "output_delivery: %s: influxd holds %ld of %ld\n", cases[i].db, n,
                        b->points);
                rate = -1;
            }
        }
        if (rate > 0) {
            emit(cases[i].metric, rate, cases[i].limit == NULL ? "points/s" : "records/s",
                 cases[i].limit);
        } else {
            rc = 1;
        }
        if (ix.pid > 0) {
            bench_stop(&ix.pid);
        }
        tree_remove(ix.dir);
    }
    curl_easy_cleanup(h);
    free(bd.data);
    free(bd.starts);
    free(bdz.data);
    free(bdz.starts);
    return rc;
}

/* ---- PostgreSQL ---------------------------------------------------------------------------- */

/* Run argv (as the user postgres when we are root: initdb and postgres refuse root), output
 * to log. */
static pid_t pg_spawn(char *const argv[], const char *log)
{
    char *const *args = argv;
    char *wrapped[32];
    if (geteuid() == 0) {
        wrapped[0] = "/usr/bin/setpriv";
        wrapped[1] = "--reuid=postgres";
        wrapped[2] = "--regid=postgres";
        wrapped[3] = "--init-groups";
        size_t i = 0;
        for (; argv[i] != NULL && i < 26; i++) {
            wrapped[4 + i] = argv[i];
        }
        wrapped[4 + i] = NULL;
        args = wrapped;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, args[0], &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -1;
}

struct pg {
    char dir[PATH_MAX];
    char ci[256];
    int port;
    pid_t pid;
};

static int pg_start(const struct bench *b, struct pg *s)
{
    char data[PATH_MAX + 16], log[PATH_MAX + 16], port[16];
    snprintf(s->dir, sizeof(s->dir), "%s/pg", b->dir);
    snprintf(data, sizeof(data), "%s/data", s->dir);
    snprintf(log, sizeof(log), "%s/pg.log", s->dir);
    chmod(b->dir, 0755); /* the user postgres must reach its directory */
    if (mkdir(s->dir, 0700) != 0) {
        fprintf(stderr, "output_delivery: %s: %s\n", s->dir, strerror(errno));
        return 1;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (pw == NULL || chown(s->dir, pw->pw_uid, pw->pw_gid) != 0) {
            fprintf(stderr, "output_delivery: no user postgres to run PostgreSQL as\n");
            return 1;
        }
    }
    char *initdb[] = {PGBIN "/initdb",    "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--locale=C.UTF-8", "-N", NULL};
    pid_t pid = pg_spawn(initdb, log);
    int status = 0;
    if (pid <= 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "output_delivery: initdb failed (see %s)\n", log);
        return 1;
    }
    s->port = bench_free_port();
    snprintf(port, sizeof(port), "%d", s->port);
    char *postgres[] = {PGBIN "/postgres",
                        "-D",
                        data,
                        "-k",
                        s->dir,
                        "-p",
                        port,
                        "-c",
                        "listen_addresses=127.0.0.1",
                        NULL};
    s->pid = pg_spawn(postgres, log);
    snprintf(s->ci, sizeof(s->ci),
             "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=5", s->port);
    for (int i = 0; s->pid > 0 && i < 400 && PQping(s->ci) != PQPING_OK; i++) {
        mr_clock_sleep_ns(50 * 1000000LL);
    }
    if (PQping(s->ci) != PQPING_OK) {
        fprintf(stderr, "output_delivery: postgres did not start (see %s)\n", log);
        return 1;
    }
    return 0;
}

static int pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : 1;
    if (rc != 0) {
        fprintf(stderr, "output_delivery: %s: %s", sql, PQresultErrorMessage(r));
    }
    PQclear(r);
    return rc;
}

static long pg_count(PGconn *c, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    PGresult *r = PQexec(c, sql);
    long n = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                 ? strtol(PQgetvalue(r, 0, 0), NULL, 10)
                 : -1;
    PQclear(r);
    return n;
}

/* One COPY (one transaction) of csv[0..len). */
static int pg_copy_one(PGconn *c, const char *csv, size_t len)
{
    PGresult *r = PQexec(c, "COPY bulk (time, asset, signal, value, value_text, quality, tags) "
                            "FROM STDIN (FORMAT csv)");
    int ok = PQresultStatus(r) == PGRES_COPY_IN;
    PQclear(r);
    for (size_t off = 0; ok && off < len; off += 1u << 20) {
        size_t n = len - off < (1u << 20) ? len - off : (1u << 20);
        ok = PQputCopyData(c, csv + off, (int)n) == 1;
    }
    ok = ok && PQputCopyEnd(c, NULL) == 1;
    r = PQgetResult(c);
    ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        fprintf(stderr, "output_delivery: COPY: %s", PQerrorMessage(c));
    }
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL) {
        PQclear(r);
    }
    return ok ? 0 : 1;
}

/* COPY the CSV into a table shaped as the output's narrow table (same index), in one
 * transaction or in transactions of copy_rows rows; rows/s. */
static double pg_copy(const struct bench *b, PGconn *c)
{
    size_t len = 0;
    long every = b->copy_rows > 0 ? b->copy_rows : b->points;
    size_t nchunks = (size_t)((b->points + every - 1) / every);
    size_t *starts = calloc(nchunks + 1, sizeof(size_t));
    char *csv = starts != NULL ? csv_build(b, &len, starts, every) : NULL;
    if (csv != NULL) {
        starts[nchunks] = len;
    }
    if (csv == NULL ||
        pg_exec(c, "CREATE TABLE bulk (time timestamptz NOT NULL, asset text NOT NULL, "
                   "signal text NOT NULL, value double precision, value_text text, "
                   "quality smallint NOT NULL DEFAULT 0, tags jsonb)") != 0 ||
        pg_exec(c, "CREATE INDEX bulk_asset_signal_time ON bulk (asset, signal, time DESC)") != 0) {
        free(csv);
        free(starts);
        return 0;
    }
    double t0 = now_s();
    int ok = 1;
    for (size_t k = 0; ok && k < nchunks; k++) {
        ok = pg_copy_one(c, csv + starts[k], starts[k + 1] - starts[k]) == 0;
    }
    double dt = now_s() - t0;
    free(csv);
    free(starts);
    long n = ok ? pg_count(c, "bulk") : -1;
    if (n != b->points) {
        fprintf(stderr, "output_delivery: bulk: PostgreSQL holds %ld of %ld rows\n", n, b->points);
        return 0;
    }
    return (double)b->points / dt;
}

/* Let the server's background work (autovacuum of what was just loaded, the checkpoint of its
 * WAL) happen now, so it does not land in the next timed case. */
static void pg_settle(PGconn *c)
{
    PQclear(PQexec(c, "VACUUM (ANALYZE)"));
    PQclear(PQexec(c, "CHECKPOINT"));
}

static int pg_case(struct bench *b)
{
    struct pg s = {.pid = 0};
    PGconn *c = NULL;
    int rc = pg_start(b, &s);
    if (rc == 0) {
        c = PQconnectdb(s.ci);
        rc = PQstatus(c) != CONNECTION_OK;
    }
    if (rc == 0) {
        pg_settle(c);
        b->pg_copy = pg_copy(b, c);
        rc = b->pg_copy <= 0;
    }
    if (rc == 0) {
        emit("pg_copy_rows_per_s", b->pg_copy, "rows/s", NULL);
        pg_settle(c); /* the COPY's autovacuum and checkpoint, not during the next case */
        char out[512];
        snprintf(out, sizeof(out),
                 "    type: postgresql\n    connection: \"%s\"\n    table: delivered\n"
                 "    timescaledb: off\n",
                 s.ci);
        double rate = millrace_deliver(b, "pg", out);
        long n = rate > 0 ? pg_count(c, "delivered") : -1;
        if (n != b->points) {
            fprintf(stderr, "output_delivery: pg: PostgreSQL holds %ld of %ld rows\n", n,
                    b->points);
            rc = 1;
        } else {
            emit("pg_delivered_records_per_s", rate, "records/s", "pg_copy_rows_per_s");
        }
    }
    PQfinish(c);
    if (s.pid > 0) {
        kill(s.pid, SIGINT); /* fast shutdown */
        waitpid(s.pid, NULL, 0);
    }
    if (s.dir[0] != '\0') {
        tree_remove(s.dir);
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct bench b = {.dir = "/tmp", .points = 500000, .lines = 5000, .which = "all"};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            b.dir = argv[++i];
        } else if (strcmp(argv[i], "--points") == 0 && i + 1 < argc) {
            b.points = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc) {
            b.lines = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--copy-rows") == 0 && i + 1 < argc) {
            b.copy_rows = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc) {
            b.which = argv[++i];
        } else if (strcmp(argv[i], "--batch-size") == 0 && i + 1 < argc) {
            b.batch_size = strtol(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: output_delivery [--dir DIR] [--points N] [--lines L] "
                            "[--copy-rows R] [--case all|influx|pg] [--batch-size B]\n");
            return 2;
        }
    }
    if (b.points < 1 || b.points > 50000000 || b.lines < 1 || b.copy_rows < 0) {
        fprintf(stderr, "output_delivery: --points 1..50000000, --lines >= 1, --copy-rows >= 0\n");
        return 2;
    }
    if (bench_find_millrace("output_delivery", b.millrace, sizeof(b.millrace)) != 0) {
        return 1;
    }
    mkdir(b.dir, 0755);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 0;
    if (strcmp(b.which, "all") == 0 || strcmp(b.which, "influx") == 0) {
        rc |= influx_case(&b);
    }
    if (strcmp(b.which, "all") == 0 || strcmp(b.which, "pg") == 0) {
        rc |= pg_case(&b);
    }
    curl_global_cleanup();
    return rc;
}
