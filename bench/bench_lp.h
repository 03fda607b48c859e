/* The line-protocol workload that bench/http_ingest.c and bench/lp_ingest_path.c share, so the
 * HTTP figures and the instruction counts of the ingest path describe the same lines: ~100-byte
 * plant gateway lines, measurement `machine`, tags site/line/machine (200 machines on 10 lines),
 * alternately 4 fields (float, float, bool, integer) and 3 floats, ns timestamps. Header-only:
 * each bench/ program is a single file. */
#ifndef MR_BENCH_LP_H
#define MR_BENCH_LP_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* CPU time of the calling thread: what the parse and decode cases measure. */
static inline int64_t bench_lp_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* xorshift64: deterministic values, the same in every run. */
static inline uint64_t bench_lp_rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Line i (timestamps t0 + i us, in ns) into out, as snprintf; *fields (may be NULL) gets its
 * number of fields. */
static inline int bench_lp_line(char *out, size_t cap, uint64_t *rng, long i, int64_t t0,
                                int *fields)
{
    unsigned m = (unsigned)(i % 200), l = m / 20;
    double x = (double)(bench_lp_rng(rng) % 100000) / 1000.0;
    long long ts = (long long)t0 + (long long)i * 1000LL;
    if (i % 2 == 0) {
        if (fields != NULL) {
            *fields = 4;
        }
        return snprintf(out, cap,
                        "machine,site=north,line=l%u,machine=m%u temp=%.2f,pressure=%.4f,"
                        "running=%s,parts=%ldi %lld\n",
                        l, m, 20 + x / 10, 3 + x / 1000, (i & 8) ? "true" : "false", i / 200, ts);
    }
    if (fields != NULL) {
        *fields = 3;
    }
    return snprintf(out, cap,
                    "machine,site=north,line=l%u,machine=m%u temp=%.2f,power=%.3f,"
                    "spindle_rpm=%.1f %lld\n",
                    l, m, 20 + x / 10, x / 20, 10000 + x * 40, ts);
}

#endif
