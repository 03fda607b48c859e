/* What the benchmarks that run the real `millrace` binary share: finding it next to the bench
 * program, a free port on 127.0.0.1, a process's CPU from /proc, stopping it by PID, and
 * counting records through a read-only view of its journal. Header-only: each bench/ program is
 * a single file. */
#ifndef MR_BENCH_PROC_H
#define MR_BENCH_PROC_H

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "millrace/journal.h"

/* $MR_BUILD/millrace, i.e. ../millrace from this program's directory, into out (cap >=
 * PATH_MAX + 16). Returns 0, or 1 with a message naming `bench`. */
static inline int bench_find_millrace(const char *bench, char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        return 1;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    snprintf(out, cap, "%s/../millrace", self);
    if (access(out, X_OK) != 0) {
        fprintf(stderr, "%s: %s not found\n", bench, out);
        return 1;
    }
    return 0;
}

/* A port nobody listens on right now (bound and released), or -1. */
static inline int bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

/* GET path from 127.0.0.1:port (HTTP/1.1, Connection: close) into buf, NUL-terminated: the
 * bytes read (headers and body), or -1. */
static inline long bench_http_get(int port, const char *path, char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    char req[256];
    int len = snprintf(req, sizeof(req),
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    long got = write(fd, req, (size_t)len) == len ? 0 : -1;
    while (got >= 0 && (size_t)got + 1 < cap) {
        ssize_t n = read(fd, buf + got, cap - 1 - (size_t)got);
        if (n <= 0) {
            break;
        }
        got += n;
    }
    close(fd);
    if (got >= 0) {
        buf[got] = '\0';
    }
    return got;
}

/* utime + stime in clock ticks of process pid (main_thread_only: of its main thread, the loop
 * thread), or -1. */
static inline int64_t bench_cpu_ticks(pid_t pid, int main_thread_only)
{
    char path[64], buf[1024];
    if (main_thread_only) {
        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)pid);
    } else {
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name (which may hold spaces): state is field 3, utime 14. */
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
        return -1;
    }
    return (int64_t)(ut + st);
}

/* SIGTERM our child *pid and reap it; *pid becomes 0. */
static inline void bench_stop(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

/* Records a topic holds (every partition's end offset), through a read-only journal view. */
static inline int64_t bench_journal_count(struct mr_journal_topic *t)
{
    int64_t sum = 0;
    for (uint32_t p = 0; p < mr_journal_topic_partitions(t); p++) {
        struct mr_journal_partition_stats st;
        if (mr_journal_partition_stats(t, p, &st) == 0) {
            sum += st.end;
        }
    }
    return sum;
}

#endif
