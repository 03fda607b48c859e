/* window_latency: end-to-end latency of a window result at a steady input rate.
 *
 * Runs the real `millrace run` (the binary next to this program's directory: $MR_BUILD/millrace)
 * with a stdin input, a pipeline with a 100 ms tumbling window per asset (out_of_orderness 0)
 * whose results go to a journal topic and to a stdout output. This program writes records at a
 * steady rate, stamped with the wall clock, and reads the results back from millrace's stdout.
 *
 *   latency = time the result line arrived here
 *           - time the record that moved its asset's watermark past the window's end was written
 *
 * So it covers: pipe -> stdin input -> journal append (fsync per policy) -> pipeline wake-up ->
 * window fires -> results appended (fsync) -> output thread wakes -> stdout -> here. That is an
 * upper bound of "result committed after its watermark passed" (research/perf.md D3). The
 * physical limit in the same run is the disk's fsync latency (fsync_latency.append_p99):
 * with fsync=always two commits are on the path.
 *
 *   window_latency [--dir DIR] [--rate N] [--seconds S]
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_proc.h"
#include "millrace/clock.h"
#include "millrace/record.h"

#define ASSETS     10
#define WINDOW_NS  100000000LL
#define RING       4096
#define MAX_SAMPLE 200000

struct pass {
    int64_t window_end;
    int64_t sent_wall;
};

struct shared {
    pthread_mutex_t mu;
    struct pass ring[ASSETS][RING]; /* per asset: when each window end was passed */
    uint64_t head[ASSETS];
    int64_t measure_from;
    double lat_us[MAX_SAMPLE];
    size_t nlat;
    int out_fd;
};

static int64_t lookup(struct shared *s, int a, int64_t end)
{
    for (uint64_t i = s->head[a]; i > 0 && s->head[a] - i < RING; i--) {
        struct pass *p = &s->ring[a][(i - 1) % RING];
        if (p->window_end == end) {
            return p->sent_wall;
        }
    }
    return -1;
}

static void *reader(void *arg)
{
    struct shared *s = arg;
    static char buf[1 << 20];
    size_t used = 0;
    for (;;) {
        ssize_t n = read(s->out_fd, buf + used, sizeof(buf) - used - 1);
        if (n <= 0) {
            return NULL;
        }
        int64_t now = mr_clock_wall_ns();
        used += (size_t)n;
        buf[used] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            const char *a = strstr(line, "\"asset\":\"bench/m");
            const char *t = strstr(line, "\"time\":\"");
            int64_t end;
            if (a != NULL && t != NULL) {
                int asset = (int)strtol(a + strlen("\"asset\":\"bench/m"), NULL, 10);
                const char *q = strchr(t + 8, '"');
                if (q != NULL && asset >= 0 && asset < ASSETS &&
                    mr_time_parse_rfc3339(t + 8, (size_t)(q - t - 8), &end) == 0) {
                    pthread_mutex_lock(&s->mu);
                    int64_t sent = lookup(s, asset, end);
                    if (sent > 0 && sent >= s->measure_from && s->nlat < MAX_SAMPLE) {
                        s->lat_us[s->nlat++] = (double)(now - sent) / 1000.0;
                    }
                    pthread_mutex_unlock(&s->mu);
                }
            }
            line = nl + 1;
        }
        used = (size_t)(buf + used - line);
        memmove(buf, line, used);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void emit(const char *fsync, const char *metric, double v, const char *unit,
                 const char *limit)
{
    printf("{\"bench\":\"window_latency\",\"metric\":\"fsync_%s_%s\",\"value\":%.1f,"
           "\"unit\":\"%s\",\"limit\":%s}\n",
           fsync, metric, v, unit, limit);
}

static int run(const char *millrace, const char *dir, const char *fsync, long rate, double seconds)
{
    char conf[PATH_MAX], logp[PATH_MAX];
    snprintf(conf, sizeof(conf), "%s/latency-%s.yaml", dir, fsync);
    snprintf(logp, sizeof(logp), "%s/latency-%s.log", dir, fsync);
    FILE *f = fopen(conf, "w");
    if (f == NULL) {
        fprintf(stderr, "window_latency: %s: %s\n", conf, strerror(errno));
        return 1;
    }
    fprintf(f,
            "journal: {dir: %s/journal-%s, fsync: %s}\n"
            "inputs:\n  raw: {type: stdin, format: json}\n"
            "pipelines:\n  w:\n    from: [raw]\n    out_of_orderness: 0s\n"
            "    idle_timeout: 1h\n    checkpoint_interval: 1s\n"
            "    steps:\n      - {type: window, kind: tumbling, size: 100ms, aggregates: [count]}\n"
            "    to: [results, out]\n"
            "outputs:\n  out: {type: stdout}\n",
            dir, fsync, fsync);
    fclose(f);
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) {
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        int lfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (lfd >= 0) {
            dup2(lfd, 2);
        }
        close(in[1]);
        close(out[0]);
        execl(millrace, millrace, "run", conf, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    static struct shared s;
    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.mu, NULL);
    s.out_fd = out[0];
    pthread_t th;
    pthread_create(&th, NULL, reader, &s);
    mr_clock_sleep_ns(500 * 1000000LL); /* let it start */
    int64_t start = mr_clock_wall_ns();
    s.measure_from = start + 1000000000LL; /* 1 s warm-up */
    int64_t end = start + (int64_t)(seconds * 1e9) + 1000000000LL;
    int64_t last_end[ASSETS] = {0};
    char line[256];
    uint64_t i = 0;
    int64_t gap = 1000000000LL / rate;
    for (int64_t next = start; next < end; next += gap, i++) {
        int64_t now = mr_clock_wall_ns();
        if (next > now) {
            mr_clock_sleep_ns(next - now);
        }
        int a = (int)(i % ASSETS);
        int64_t t = mr_clock_wall_ns();
        int n =
            snprintf(line, sizeof(line),
                     "{\"time\":%lld,\"asset\":\"bench/m%d\",\"signal\":\"v\",\"value\":%llu}\n",
                     (long long)t, a, (unsigned long long)i);
        int64_t wend = t / WINDOW_NS * WINDOW_NS;
        if (wend > last_end[a] && last_end[a] != 0) {
            /* This record passes every window of asset a ending in (last_end, wend]. */
            pthread_mutex_lock(&s.mu);
            for (int64_t e = last_end[a] + WINDOW_NS; e <= wend; e += WINDOW_NS) {
                s.ring[a][s.head[a] % RING] = (struct pass){.window_end = e, .sent_wall = t};
                s.head[a]++;
            }
            pthread_mutex_unlock(&s.mu);
        }
        if (wend > last_end[a]) {
            last_end[a] = wend;
        }
        if (write(in[1], line, (size_t)n) != n) {
            fprintf(stderr, "window_latency: millrace stopped reading\n");
            break;
        }
    }
    mr_clock_sleep_ns(300 * 1000000LL);
    close(in[1]);
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    pthread_join(th, NULL);
    close(out[0]);
    if (s.nlat < 10) {
        fprintf(stderr, "window_latency: only %zu results matched (see %s)\n", s.nlat, logp);
        return 1;
    }
    qsort(s.lat_us, s.nlat, sizeof(double), cmp_double);
    const char *limit = strcmp(fsync, "always") == 0 ? "\"fsync_latency.append_p99\"" : "1000";
    emit(fsync, "p50", s.lat_us[s.nlat / 2], "us", limit);
    emit(fsync, "p99", s.lat_us[s.nlat * 99 / 100], "us", limit);
    emit(fsync, "max", s.lat_us[s.nlat - 1], "us", "null");
    printf("window_latency fsync=%s: %zu window results at %ld records/s\n", fsync, s.nlat, rate);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp";
    long rate = 20000;
    double seconds = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
            rate = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else {
            fprintf(stderr, "usage: window_latency [--dir DIR] [--rate N] [--seconds S]\n");
            return 2;
        }
    }
    if (rate < 10 || rate > 1000000 || seconds <= 0) {
        fprintf(stderr, "window_latency: --rate 10..1000000, --seconds > 0\n");
        return 2;
    }
    char millrace[PATH_MAX + 16];
    if (bench_find_millrace("window_latency", millrace, sizeof(millrace)) != 0) {
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    int rc = run(millrace, dir, "always", rate, seconds);
    if (rc == 0) {
        rc = run(millrace, dir, "never", rate, seconds);
    }
    return rc;
}
