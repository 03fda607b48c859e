/* Drive one operator plugin in a unit test, the way a pipeline would, and capture what it
 * emits (deep copies, so tests can look at them after the operator reused its buffers).
 *
 *   struct op_harness h;
 *   assert_int_equal(op_harness_open(&h, &mr_operator_window, "size: 1s\naggregates: [mean]\n"),
 * 0); struct mr_record r = op_rec(&h, "s/a/l/m1", "temp", 1000000000, 21.5); op_harness_push(&h,
 * &r, 1); op_harness_advance(&h, "s/a/l/m1", 3000000000);
 *   ... h.out[i], h.out_port[i] (0 = main chain, >0 = side output), h.nout ...
 *   op_harness_close(&h);
 */
#ifndef MR_TEST_OP_HARNESS_H
#define MR_TEST_OP_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "millrace/plugin.h"

#define OP_HARNESS_MAX_OUT   100000
#define OP_HARNESS_MAX_SIDES 8

struct op_harness {
    struct mr_names *names;
    struct mr_metrics *metrics;
    struct mr_operator_host host;
    const struct mr_plugin *plugin;
    void *conf; /* plugin->conf.size bytes, loaded from YAML */
    void *ctx;
    struct mr_err err; /* of the last failing call */
    /* captured output */
    struct mr_record *out;
    int *out_port;
    size_t nout;
    char *arena; /* copies of strings, samples and tag values */
    size_t arena_used;
    size_t arena_cap;
    char side_topics[OP_HARNESS_MAX_SIDES][64]; /* port p is side_topics[p-1] */
    int nsides;
    int emit_rc; /* returned by emit (tests of back-pressure/error propagation) */
};

/* Load yaml (the operator's settings, without `type`) into the plugin's config and init it.
 * Returns the init result (h->err says why); on failure nothing needs closing except
 * op_harness_close, which is safe. `plugin` is the operator's struct (extern it in the test),
 * so the test does not depend on the registry. */
int op_harness_open(struct op_harness *h, const struct mr_plugin *plugin, const char *yaml);
int op_harness_push(struct op_harness *h, const struct mr_record *recs, size_t n);
int op_harness_advance(struct op_harness *h, const char *asset, int64_t watermark_ns);
/* Snapshot, fini, init a fresh instance with the same config and restore: a checkpoint
 * round trip. Returns the first failure. */
int op_harness_roundtrip(struct op_harness *h);
/* Forget captured output. */
void op_harness_clear(struct op_harness *h);
void op_harness_close(struct op_harness *h);

mr_name_id op_name(struct op_harness *h, const char *s);
/* A good-quality f64 record. */
struct mr_record op_rec(struct op_harness *h, const char *asset, const char *signal,
                        int64_t time_ns, double value);
/* String of a name id (asserts it exists). */
const char *op_str(struct op_harness *h, mr_name_id id);
/* Value of tag `key` of captured record i as a string, or NULL. */
const char *op_tag(struct op_harness *h, size_t i, const char *key, char *buf, size_t cap);
/* Index of the first captured record with this asset and signal at or after `from`, or -1. */
long op_find(struct op_harness *h, size_t from, const char *asset, const char *signal);

#endif
