/* One operator driven through its plugin API as a pipeline drives it, for the benchmarks:
 * config from YAML, a host that counts what the operator emits (main chain and side outputs)
 * and throws it away, metrics, and the heap in use (for state-per-key figures). Header-only:
 * each bench/ program is a single file. */
#ifndef MR_BENCH_OP_H
#define MR_BENCH_OP_H

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/config.h"
#include "millrace/metrics.h"
#include "millrace/plugin.h"

struct bench_op {
    const struct mr_plugin *plugin;
    void *conf;
    void *ctx;
    struct mr_operator_host host;
    uint64_t emitted; /* records emitted on the main chain */
    uint64_t side;    /* records emitted on side outputs */
    int nsides;
};

static inline int bench_op_emit(struct mr_operator_host *h, const struct mr_record *recs, size_t n)
{
    (void)recs;
    ((struct bench_op *)h->arg)->emitted += n;
    return 0;
}

static inline int bench_op_side_open(struct mr_operator_host *h, const char *topic,
                                     struct mr_err *err)
{
    (void)topic;
    (void)err;
    return ++((struct bench_op *)h->arg)->nsides; /* ports 1, 2, ... */
}

static inline int bench_op_side_emit(struct mr_operator_host *h, int port,
                                     const struct mr_record *recs, size_t n)
{
    (void)port;
    (void)recs;
    ((struct bench_op *)h->arg)->side += n;
    return 0;
}

/* Load yaml (the step's settings without `type`) for operator `type` and init it. Prints why
 * and returns -1 on failure. */
static inline int bench_op_open(struct bench_op *o, struct mr_names *names, const char *type,
                                const char *yaml)
{
    memset(o, 0, sizeof(*o));
    o->host = (struct mr_operator_host){.name = "bench.op",
                                        .names = names,
                                        .emit = bench_op_emit,
                                        .side_open = bench_op_side_open,
                                        .side_emit = bench_op_side_emit,
                                        .arg = o};
    mr_metrics_create(&o->host.metrics);
    o->plugin = mr_plugin_find(MR_PLUGIN_OPERATOR, type);
    if (o->plugin == NULL) {
        fprintf(stderr, "bench: no %s operator registered\n", type);
        return -1;
    }
    static struct mr_config_errors errs;
    o->conf = calloc(1, o->plugin->conf.size);
    if (mr_section_load_buffer(&o->plugin->conf, o->conf, "bench", yaml, strlen(yaml), NULL,
                               &errs) != 0) {
        fprintf(stderr, "bench: %s: %s\n", type, errs.msg[0]);
        return -1;
    }
    o->ctx = calloc(1, o->plugin->ctx_size);
    struct mr_err err;
    if (o->plugin->op.init(o->ctx, o->conf, &o->host, &err) != 0) {
        fprintf(stderr, "bench: %s: init: %s\n", type, err.msg);
        return -1;
    }
    return 0;
}

static inline void bench_op_close(struct bench_op *o)
{
    o->plugin->op.fini(o->ctx);
    free(o->ctx);
    mr_section_free(&o->plugin->conf, o->conf);
    free(o->conf);
    mr_metrics_destroy(o->host.metrics);
}

static inline size_t bench_heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

#endif
