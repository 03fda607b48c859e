/* lp_ingest_path: what one line-protocol point costs on millrace's own ingest path, in this
 * process, without HTTP and clients: the same bodies as bench/http_ingest.c (~100-byte lines of
 * 3-4 fields, 200 machines), then
 *
 *   parse   mr_lineproto_next + mr_lineproto_parse_line over every body;
 *   decode  hl_decode_lineproto (parse + asset path + interned names + records);
 *   ingest  decode + every record into a journal topic through the topic writer (encode,
 *           batch, CRC, append; fsync never), as the input's emit does, then sync.
 *
 * Each pass is its own function (pass_parse, pass_decode, pass_ingest) so that
 *   valgrind --tool=callgrind build/release/bench/lp_ingest_path --points 20000 --passes 1
 * gives instructions per point from their inclusive cost (the journal's writer thread shows
 * apart, under its thread function). Without valgrind it prints thread-CPU ns per point (noisy
 * on a shared machine).
 *
 *   lp_ingest_path [--dir DIR] [--points N] [--lines L] [--passes P]
 */
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/topic_writer.h"
#include "inputs/http_listener.h"
#include "inputs/lineproto.h"
#include "bench_lp.h"
#include "millrace/clock.h"
#include "millrace/journal.h"
#include "millrace/names.h"

struct body {
    char *data;
    size_t len;
    long points;
};

struct cfg {
    const char *dir;
    long points, lines;
    int passes;
    struct body *bodies;
    size_t nbodies;
};

/* The bodies of bench/http_ingest.c (lines from bench_lp.h). */
static int make_bodies(struct cfg *c)
{
    c->nbodies = (size_t)((c->points + c->lines - 1) / c->lines);
    c->bodies = calloc(c->nbodies, sizeof(*c->bodies));
    if (c->bodies == NULL) {
        return 1;
    }
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int64_t t0 = 1700000000000000000LL;
    long i = 0;
    for (size_t k = 0; k < c->nbodies; k++) {
        long n = c->points - i < c->lines ? c->points - i : c->lines;
        size_t cap = (size_t)n * 160, used = 0;
        struct body *bd = &c->bodies[k];
        bd->data = malloc(cap);
        if (bd->data == NULL) {
            return 1;
        }
        for (long j = 0; j < n; j++, i++) {
            int w = bench_lp_line(bd->data + used, cap - used, &rng, i, t0, NULL);
            if (w <= 0 || (size_t)w >= cap - used) {
                return 1;
            }
            used += (size_t)w;
        }
        bd->len = used;
        bd->points = n;
    }
    return 0;
}

static __attribute__((noinline)) long pass_parse(const struct cfg *c)
{
    static struct mr_lp_point pt;
    static char scratch[512];
    long points = 0;
    for (size_t k = 0; k < c->nbodies; k++) {
        size_t pos = 0, n;
        const char *line;
        while (mr_lineproto_next(c->bodies[k].data, c->bodies[k].len, &pos, &line, &n)) {
            struct mr_err err;
            if (mr_lineproto_parse_line(line, n, MR_LP_NS, &pt, scratch, sizeof(scratch), &err) !=
                0) {
                fprintf(stderr, "lp_ingest_path: parse: %s\n", err.msg);
                return -1;
            }
            points++;
        }
    }
    return points;
}

static __attribute__((noinline)) long pass_decode(const struct cfg *c, struct hl_decoder *d,
                                                  struct mr_topic_writer *w)
{
    long points = 0;
    for (size_t k = 0; k < c->nbodies; k++) {
        struct hl_report rep;
        if (hl_decode_lineproto(d, c->bodies[k].data, c->bodies[k].len, MR_LP_NS, NULL,
                                1700000000000000000LL, &rep) != 0) {
            fprintf(stderr, "lp_ingest_path: decode: %s\n", rep.nshown > 0 ? rep.msg[0] : "?");
            return -1;
        }
        for (size_t i = 0; w != NULL && i < d->nrecs; i++) {
            if (mr_topic_writer_add(w, &d->recs[i]) != 0) {
                fprintf(stderr, "lp_ingest_path: topic writer add failed\n");
                return -1;
            }
        }
        if (w != NULL && mr_topic_writer_flush(w) != 0) {
            fprintf(stderr, "lp_ingest_path: topic writer flush failed\n");
            return -1;
        }
        points += c->bodies[k].points;
    }
    return points;
}

static __attribute__((noinline)) long pass_ingest(const struct cfg *c, struct hl_decoder *d,
                                                  struct mr_topic_writer *w)
{
    long points = pass_decode(c, d, w);
    if (points > 0 && mr_topic_writer_sync(w) != 0) {
        fprintf(stderr, "lp_ingest_path: journal sync failed\n");
        return -1;
    }
    return points;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void emit(const char *metric, double v, const char *unit)
{
    printf("{\"bench\":\"lp_ingest_path\",\"metric\":\"%s\",\"value\":%.3f,\"unit\":\"%s\","
           "\"limit\":null}\n",
           metric, v, unit);
    fflush(stdout);
}

static int run(const struct cfg *c)
{
    char jdir[4096];
    snprintf(jdir, sizeof(jdir), "%s/lp_ingest_path-journal", c->dir);
    char *tags[] = {"line", "machine"};
    struct hl_conf conf = {.asset_tags = {.items = tags, .n = 2}, .max_records = 100000};
    struct mr_names *names = NULL;
    struct mr_journal *j = NULL;
    struct mr_journal_topic *t = NULL;
    struct mr_topic_writer w;
    struct hl_decoder d;
    struct mr_err err = {0};
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = jdir;
    o.fsync = MR_JOURNAL_FSYNC_NEVER;
    if (mr_names_create(&names, 65536, 1 << 22) != 0 || hl_decoder_init(&d, &conf, names, &err) ||
        mr_journal_open(&o, &j, NULL, &err) != 0 ||
        mr_journal_topic_create(j, "plant", 1, NULL, &t, &err) != 0 ||
        mr_topic_writer_init(&w, t, names, 256u * 1024u) != 0) {
        fprintf(stderr, "lp_ingest_path: setup: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    double ns[3] = {0};
    long pts[3] = {0};
    for (int p = 0; p < c->passes && rc == 0; p++) {
        int64_t t0 = bench_lp_thread_cpu_ns();
        long a = pass_parse(c);
        int64_t t1 = bench_lp_thread_cpu_ns();
        long b = pass_decode(c, &d, NULL);
        int64_t t2 = bench_lp_thread_cpu_ns();
        long e = pass_ingest(c, &d, &w);
        int64_t t3 = bench_lp_thread_cpu_ns();
        rc = a < 0 || b < 0 || e < 0;
        ns[0] += (double)(t1 - t0);
        ns[1] += (double)(t2 - t1);
        ns[2] += (double)(t3 - t2);
        pts[0] += a;
        pts[1] += b;
        pts[2] += e;
    }
    if (rc == 0) {
        emit("parse_ns_per_point", ns[0] / (double)pts[0], "ns");
        emit("decode_ns_per_point", ns[1] / (double)pts[1], "ns");
        emit("ingest_ns_per_point", ns[2] / (double)pts[2], "ns");
    }
    mr_topic_writer_fini(&w);
    hl_decoder_fini(&d);
    mr_journal_close(j);
    mr_names_destroy(names);
    nftw(jdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

int main(int argc, char **argv)
{
    struct cfg c = {.dir = "/tmp", .points = 200000, .lines = 5000, .passes = 3};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            c.dir = argv[++i];
        } else if (strcmp(argv[i], "--points") == 0 && i + 1 < argc) {
            c.points = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc) {
            c.lines = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc) {
            c.passes = (int)strtol(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: lp_ingest_path [--dir DIR] [--points N] [--lines L] "
                            "[--passes P]\n");
            return 2;
        }
    }
    if (c.points < 1 || c.lines < 1 || c.lines > 25000 || c.passes < 1) {
        fprintf(stderr, "lp_ingest_path: --points >= 1, --lines 1..25000, --passes >= 1\n");
        return 2;
    }
    if (make_bodies(&c) != 0) {
        fprintf(stderr, "lp_ingest_path: cannot build the bodies\n");
        return 1;
    }
    int rc = run(&c);
    for (size_t k = 0; k < c.nbodies; k++) {
        free(c.bodies[k].data);
    }
    free(c.bodies);
    return rc;
}
