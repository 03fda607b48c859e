/* Operator test harness: see op_harness.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/config.h"
#include "millrace/state.h"
#include "support/op_harness.h"

static char *arena_copy(struct op_harness *h, const void *p, size_t n)
{
    if (h->arena_used + n + 8 > h->arena_cap) {
        /* Grow by moving: fix up is not possible once records point in, so allocate a fresh
         * block per overflow and keep the old ones alive (leaked into a chain). */
        size_t cap = h->arena_cap * 2 + n + 4096;
        char *nb = malloc(cap);
        if (nb == NULL) {
            abort();
        }
        /* chain: first word of each block points to the previous block */
        memcpy(nb, &h->arena, sizeof(char *));
        h->arena = nb;
        h->arena_cap = cap;
        h->arena_used = sizeof(char *);
    }
    char *dst = h->arena + h->arena_used;
    if (n > 0) {
        memcpy(dst, p, n);
    }
    h->arena_used += (n + 7) & ~(size_t)7;
    return dst;
}

static void capture(struct op_harness *h, const struct mr_record *recs, size_t n, int port)
{
    for (size_t i = 0; i < n && h->nout < OP_HARNESS_MAX_OUT; i++) {
        struct mr_record r = recs[i];
        if (r.type == MR_VALUE_STRING) {
            r.v.str.ptr = arena_copy(h, r.v.str.ptr, r.v.str.len);
        } else if (r.type == MR_VALUE_SAMPLES) {
            r.v.samples.data = (const float *)(void *)arena_copy(h, r.v.samples.data,
                                                                 r.v.samples.n * sizeof(float));
        }
        for (uint16_t t = 0; t < r.ntags && t < MR_RECORD_MAX_TAGS; t++) {
            r.tags[t].value.ptr = arena_copy(h, r.tags[t].value.ptr, r.tags[t].value.len);
        }
        h->out[h->nout] = r;
        h->out_port[h->nout] = port;
        h->nout++;
    }
}

static int host_emit(struct mr_operator_host *host, const struct mr_record *recs, size_t n)
{
    struct op_harness *h = host->arg;
    capture(h, recs, n, 0);
    return h->emit_rc;
}

static int host_side_open(struct mr_operator_host *host, const char *topic, struct mr_err *err)
{
    struct op_harness *h = host->arg;
    if (h->nsides >= OP_HARNESS_MAX_SIDES) {
        return MR_ERR_SET(err, MR_ETOOBIG, "too many side outputs");
    }
    snprintf(h->side_topics[h->nsides], sizeof(h->side_topics[0]), "%s", topic);
    return ++h->nsides;
}

static int host_side_emit(struct mr_operator_host *host, int port, const struct mr_record *recs,
                          size_t n)
{
    struct op_harness *h = host->arg;
    if (port < 1 || port > h->nsides) {
        return MR_EINVAL;
    }
    capture(h, recs, n, port);
    return h->emit_rc;
}

static int instance_init(struct op_harness *h)
{
    h->ctx = mr_calloc(1, h->plugin->ctx_size != 0 ? h->plugin->ctx_size : 1);
    if (h->ctx == NULL) {
        return MR_ENOMEM;
    }
    int rc = h->plugin->op.init(h->ctx, h->conf, &h->host, &h->err);
    if (rc != 0) {
        mr_free(h->ctx);
        h->ctx = NULL;
    }
    return rc;
}

int op_harness_open(struct op_harness *h, const struct mr_plugin *plugin, const char *yaml)
{
    memset(h, 0, sizeof(*h));
    if (mr_names_create(&h->names, 1u << 20, 64u << 20) != 0 ||
        mr_metrics_create(&h->metrics) != 0) {
        return MR_ENOMEM;
    }
    h->out = calloc(OP_HARNESS_MAX_OUT, sizeof(*h->out));
    h->out_port = calloc(OP_HARNESS_MAX_OUT, sizeof(*h->out_port));
    if (h->out == NULL || h->out_port == NULL) {
        return MR_ENOMEM;
    }
    h->plugin = plugin;
    h->host = (struct mr_operator_host){.name = "pipelines.test.steps[0]",
                                        .names = h->names,
                                        .metrics = h->metrics,
                                        .emit = host_emit,
                                        .side_open = host_side_open,
                                        .side_emit = host_side_emit,
                                        .arg = h};
    h->conf = mr_calloc(1, h->plugin->conf.size != 0 ? h->plugin->conf.size : 1);
    if (h->conf == NULL) {
        return MR_ENOMEM;
    }
    static struct mr_config_errors errs;
    memset(&errs, 0, sizeof(errs));
    int rc = mr_section_load_buffer(&h->plugin->conf, h->conf, "test.yaml", yaml, strlen(yaml),
                                    NULL, &errs);
    if (rc != 0) {
        return MR_ERR_SET(&h->err, rc, "%s", errs.n > 0 ? errs.msg[0] : "config error");
    }
    return instance_init(h);
}

int op_harness_push(struct op_harness *h, const struct mr_record *recs, size_t n)
{
    return h->plugin->op.process(h->ctx, recs, n, &h->err);
}

int op_harness_advance(struct op_harness *h, const char *asset, int64_t watermark_ns)
{
    if (h->plugin->op.advance == NULL) {
        return 0;
    }
    return h->plugin->op.advance(h->ctx, op_name(h, asset), watermark_ns, &h->err);
}

int op_harness_roundtrip(struct op_harness *h)
{
    struct mr_state_writer w;
    mr_state_writer_init(&w, h->names, 0);
    int rc = 0;
    if (h->plugin->op.snapshot != NULL) {
        rc = h->plugin->op.snapshot(h->ctx, &w, &h->err);
    }
    if (rc == 0) {
        rc = w.err;
    }
    if (rc == 0) {
        h->plugin->op.fini(h->ctx);
        mr_free(h->ctx);
        h->ctx = NULL;
        rc = instance_init(h);
    }
    if (rc == 0 && h->plugin->op.restore != NULL) {
        struct mr_state_reader r;
        mr_state_reader_init(&r, h->names, w.buf, w.len);
        rc = h->plugin->op.restore(h->ctx, &r, &h->err);
        if (rc == 0 && mr_state_remaining(&r) != 0) {
            rc = MR_ERR_SET(&h->err, MR_ECORRUPT, "restore left %zu bytes unread",
                            mr_state_remaining(&r));
        }
    }
    mr_state_writer_fini(&w);
    return rc;
}

void op_harness_clear(struct op_harness *h)
{
    h->nout = 0;
}

void op_harness_close(struct op_harness *h)
{
    if (h->ctx != NULL) {
        h->plugin->op.fini(h->ctx);
        mr_free(h->ctx);
    }
    if (h->conf != NULL) {
        mr_section_free(&h->plugin->conf, h->conf);
        mr_free(h->conf);
    }
    while (h->arena != NULL) {
        char *prev;
        memcpy(&prev, h->arena, sizeof(char *));
        free(h->arena);
        h->arena = prev;
    }
    free(h->out);
    free(h->out_port);
    mr_metrics_destroy(h->metrics);
    mr_names_destroy(h->names);
    memset(h, 0, sizeof(*h));
}

mr_name_id op_name(struct op_harness *h, const char *s)
{
    mr_name_id id = 0;
    if (mr_names_intern(h->names, s, strlen(s), &id) != 0) {
        abort();
    }
    return id;
}

struct mr_record op_rec(struct op_harness *h, const char *asset, const char *signal,
                        int64_t time_ns, double value)
{
    struct mr_record r;
    memset(&r, 0, sizeof(r));
    r.time_ns = time_ns;
    r.asset = op_name(h, asset);
    r.signal = op_name(h, signal);
    r.type = MR_VALUE_F64;
    r.quality = MR_QUALITY_GOOD;
    r.v.f64 = value;
    return r;
}

const char *op_str(struct op_harness *h, mr_name_id id)
{
    const char *s = mr_names_str(h->names, id, NULL);
    if (s == NULL) {
        abort();
    }
    return s;
}

const char *op_tag(struct op_harness *h, size_t i, const char *key, char *buf, size_t cap)
{
    mr_name_id k = mr_names_find(h->names, key, strlen(key));
    const struct mr_record *r = &h->out[i];
    for (uint16_t t = 0; k != 0 && t < r->ntags; t++) {
        if (r->tags[t].key == k) {
            snprintf(buf, cap, "%.*s", (int)r->tags[t].value.len, r->tags[t].value.ptr);
            return buf;
        }
    }
    return NULL;
}

long op_find(struct op_harness *h, size_t from, const char *asset, const char *signal)
{
    mr_name_id a = mr_names_find(h->names, asset, strlen(asset));
    mr_name_id s = mr_names_find(h->names, signal, strlen(signal));
    for (size_t i = from; i < h->nout; i++) {
        if (h->out[i].asset == a && h->out[i].signal == s) {
            return (long)i;
        }
    }
    return -1;
}
