/* lineproto_parse: the InfluxDB line-protocol parser (src/inputs/lineproto.c) on one core.
 *
 * The parser is shared by the MQTT input (data_format: influx) and the HTTP /write ingest; the
 * target is 1,000,000 points/s on one core (issue 6). One point is one line. The lines are what
 * Telegraf and plant gateways send: a measurement, 3-4 tags, 1-5 fields of mixed types and a
 * nanosecond timestamp, about 90 bytes each:
 *
 *   machine,site=north,line=l2,machine=m17 temp=21.53,pressure=3.0125,running=true,parts=1234i 17..
 *   cpu,host=edge01,cpu=cpu0 usage_user=12.5,usage_system=3.1,usage_idle=84.4 17..
 *   vibration,site=north,asset=press\ 4 rms=0.0312 17..
 *   state,site=north,line=l2,machine=m17 code=3i,reason="tool change" 17..
 *
 * It parses a 16 MiB buffer of such lines (mr_lineproto_next + mr_lineproto_parse_line, as the
 * inputs do) until one second of thread CPU time has passed, and reports points/s, fields/s and
 * ns per point. `escaped_points_per_s` is the same with an escaped space or comma in most names
 * (the slow path that unescapes into the scratch buffer). The limit of `points_per_s` is the
 * target; `scan_points_per_s` (only finding the line ends with mr_lineproto_next) is what reading
 * the bytes costs.
 *
 *   lineproto_parse [--dir DIR] [--seconds S]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_lp.h"
#include "inputs/lineproto.h"

#define BUF_BYTES (16u * 1024u * 1024u)
#define LINE_MAX  512

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One realistic line into out (without the newline); returns its length. */
static int make_line(char *out, size_t cap, uint64_t *rng, long i, bool escaped)
{
    long long ts = 1700000000000000000LL + i * 1000000LL;
    unsigned m = (unsigned)(rng_next(rng) % 200), l = m / 20;
    double x = (double)(rng_next(rng) % 100000) / 1000.0;
    const char *sp = escaped ? "\\ " : "_";
    switch (i % 4) {
    case 0:
        return snprintf(out, cap,
                        "machine,site=north,line=l%u,machine=m%u temp=%.2f,pressure=%.4f,"
                        "running=%s,parts=%lldi %lld",
                        l, m, 20 + x / 10, 3 + x / 1000, (i & 8) ? "true" : "false",
                        (long long)(i / 4), ts);
    case 1:
        return snprintf(out, cap,
                        "cpu,host=edge%02u,cpu=cpu%u usage_user=%.1f,usage_system=%.1f,"
                        "usage_idle=%.1f %lld",
                        l, m % 4, x / 2, x / 10, 100 - x / 2 - x / 10, ts);
    case 2:
        return snprintf(out, cap, "vibration,site=north,asset=press%s%u rms=%.4f %lld", sp, m,
                        x / 1000, ts);
    default:
        return snprintf(out, cap,
                        "state%s,site=north,line=l%u,machine=m%u code=%ui,reason=\"tool%schange\" "
                        "%lld",
                        escaped ? "\\,x" : "", l, m, m % 7, escaped ? "\\\"" : " ", ts);
    }
}

static char *make_buffer(bool escaped, size_t *len, long *lines)
{
    char *buf = malloc(BUF_BYTES);
    if (buf == NULL) {
        return NULL;
    }
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    size_t used = 0;
    long i = 0;
    char line[LINE_MAX];
    for (;;) {
        int n = make_line(line, sizeof(line), &rng, i, escaped);
        if (n <= 0 || used + (size_t)n + 1 > BUF_BYTES) {
            break;
        }
        memcpy(buf + used, line, (size_t)n);
        used += (size_t)n;
        buf[used++] = '\n';
        i++;
    }
    *len = used;
    *lines = i;
    return buf;
}

struct result {
    double points_per_s;
    double fields_per_s;
    long errors;
};

/* Parse the whole buffer repeatedly until `seconds` of CPU time. parse=false only scans. */
static struct result run(const char *buf, size_t len, double seconds, bool parse)
{
    static struct mr_lp_point pt;
    static char scratch[LINE_MAX];
    uint64_t points = 0, fields = 0;
    long errors = 0;
    volatile double sink = 0;
    int64_t t0 = bench_lp_thread_cpu_ns(), t1 = t0;
    while ((double)(t1 - t0) < seconds * 1e9) {
        size_t pos = 0;
        const char *line;
        size_t n;
        while (mr_lineproto_next(buf, len, &pos, &line, &n)) {
            points++;
            if (!parse) {
                sink += (double)n;
                continue;
            }
            struct mr_err err;
            int rc =
                mr_lineproto_parse_line(line, n, MR_LP_NS, &pt, scratch, sizeof(scratch), &err);
            if (rc != 0) {
                errors++;
                continue;
            }
            fields += pt.nfields;
            sink += (double)pt.time_ns;
        }
        t1 = bench_lp_thread_cpu_ns();
    }
    (void)sink;
    double s = (double)(t1 - t0) / 1e9;
    return (struct result){
        .points_per_s = (double)points / s, .fields_per_s = (double)fields / s, .errors = errors};
}

static void emit(const char *metric, double v, const char *unit, const char *limit)
{
    printf("{\"bench\":\"lineproto_parse\",\"metric\":\"%s\",\"value\":%.1f,\"unit\":\"%s\","
           "\"limit\":%s}\n",
           metric, v, unit, limit);
}

int main(int argc, char **argv)
{
    double seconds = 1.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            i++; /* no files: the parser works in memory */
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else {
            fprintf(stderr, "usage: lineproto_parse [--dir DIR] [--seconds S]\n");
            return 2;
        }
    }
    if (seconds <= 0) {
        fprintf(stderr, "lineproto_parse: --seconds must be > 0\n");
        return 2;
    }
    size_t len, elen;
    long lines, elines;
    char *plain = make_buffer(false, &len, &lines);
    char *esc = make_buffer(true, &elen, &elines);
    if (plain == NULL || esc == NULL) {
        fprintf(stderr, "lineproto_parse: out of memory\n");
        free(plain);
        free(esc);
        return 1;
    }
    struct result scan = run(plain, len, seconds / 2, false);
    struct result r = run(plain, len, seconds, true);
    struct result e = run(esc, elen, seconds, true);
    free(plain);
    free(esc);
    if (r.errors != 0 || e.errors != 0) {
        fprintf(stderr, "lineproto_parse: %ld + %ld lines did not parse\n", r.errors, e.errors);
        return 1;
    }
    emit("points_per_s", r.points_per_s, "points/s", "1000000");
    emit("fields_per_s", r.fields_per_s, "fields/s", "null");
    emit("ns_per_point", 1e9 / r.points_per_s, "ns", "null");
    emit("escaped_points_per_s", e.points_per_s, "points/s", "1000000");
    emit("scan_points_per_s", scan.points_per_s, "points/s", "null");
    printf("lineproto_parse: %ld lines, %.1f bytes per line\n", lines, (double)len / (double)lines);
    return 0;
}
