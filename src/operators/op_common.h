/* Helpers shared by the record-by-record operators (filter, scale, rename, route, deadband,
 * report_by_exception, downsample, and the analytics operators): counters and rate-limited
 * warnings, an output buffer that batches what an operator emits, and keyed state per (asset,
 * signal) with per-asset chains so that advance(asset, watermark) visits only that asset's keys,
 * and only when one is due.
 */
#ifndef MR_OPERATORS_OP_COMMON_H
#define MR_OPERATORS_OP_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/keymap.h"
#include "millrace/log.h"
#include "millrace/plugin.h"
#include "millrace/state.h"

/* ---- instance basics ---- */

struct mr_op_base {
    struct mr_operator_host *host;
    struct mr_plugin_counters counters;
    struct mr_log_ratelimit rl;
};

/* Register the instance's counters (records_in/out, errors). Returns 0 or an error in err. */
int mr_op_base_init(struct mr_op_base *b, const struct mr_plugin *plugin,
                    struct mr_operator_host *host, struct mr_err *err);
/* Count one error and log it (at most 5 messages per 10 s per instance). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void mr_op_warn(struct mr_op_base *b, const char *fmt, ...);

/* Copy a record's used part (header and its ntags tags; the unused tag slots are big). */
static inline void mr_op_record_copy(struct mr_record *dst, const struct mr_record *src)
{
    size_t ntags = src->ntags <= MR_RECORD_MAX_TAGS ? src->ntags : MR_RECORD_MAX_TAGS;
    memcpy(dst, src, offsetof(struct mr_record, tags) + ntags * sizeof(struct mr_tag));
    dst->ntags = (uint16_t)ntags;
}

/* ---- output buffer ---- */

#define MR_OP_BUF_RECORDS 256

/* Records on their way to the main chain (port 0) or a side output (port > 0), emitted in
 * batches of up to MR_OP_BUF_RECORDS. Buffered records borrow like the input did: flush before
 * whatever they borrow (the input batch, an operator's scratch) goes away. */
struct mr_op_buf {
    struct mr_op_base *base; /* host and records_out */
    int port;
    size_t n;
    struct mr_record *recs;
};

int mr_op_buf_init(struct mr_op_buf *b, struct mr_op_base *base, int port);
void mr_op_buf_fini(struct mr_op_buf *b);
/* Append a copy of r (flushing first when full); the copy is b->recs[b->n - 1], for the caller
 * to modify. Returns 0 or the emit error. */
int mr_op_buf_push(struct mr_op_buf *b, const struct mr_record *r);
/* Emit what is buffered. Returns 0 or the emit error (the buffer is emptied either way). */
int mr_op_buf_flush(struct mr_op_buf *b);

/* Run one(ctx, rec) over a batch (counting it in), then emit what one() buffered in out. The
 * buffer is emptied either way: what it holds borrows from this batch. Returns 0, or the first
 * error with err saying that passing records on failed. */
int mr_op_process_each(struct mr_op_base *b, struct mr_op_buf *out, const struct mr_record *recs,
                       size_t n, int (*one)(void *ctx, const struct mr_record *rec), void *ctx,
                       struct mr_err *err);

/* Keyed operators' checkpoints start with a format version and an entry count. open reads them
 * back; MR_ECORRUPT (err filled) when the version is another or the stream is short. */
void mr_op_state_begin(struct mr_state_writer *w, uint64_t version, uint64_t count);
int mr_op_state_open(struct mr_state_reader *r, uint64_t version, uint64_t *count,
                     struct mr_err *err);

/* ---- keyed state per (asset, signal) ---- */

/* Every keyed entry starts with this link. Keys are never removed (a hard cap bounds them), so
 * entry indices are stable and can chain the keys of one asset. */
struct mr_op_link {
    uint32_t next; /* index + 1 of the next key of the same asset; 0 ends the chain */
    uint32_t pad;
    int64_t due; /* event time when advance should visit this key; INT64_MAX: never */
};

struct mr_op_keyed {
    struct mr_keymap keys;   /* asset << 32 | signal -> entry (starts with struct mr_op_link) */
    struct mr_keymap assets; /* asset -> struct chain (op_common.c) */
};

static inline uint64_t mr_op_key(mr_name_id asset, mr_name_id signal)
{
    return (uint64_t)asset << 32 | signal;
}

/* entry_size: bytes of the caller's entry, including its leading struct mr_op_link. */
int mr_op_keyed_init(struct mr_op_keyed *k, size_t entry_size, uint32_t max_keys);
void mr_op_keyed_fini(struct mr_op_keyed *k);
/* Entry of (asset, signal), created zeroed (due = INT64_MAX) and chained when new. Returns 0,
 * MR_ETOOBIG (max_keys reached) or MR_ENOMEM. Entry pointers stay valid until the next get. */
int mr_op_keyed_get(struct mr_op_keyed *k, mr_name_id asset, mr_name_id signal, void **entry,
                    bool *inserted);
/* Set the entry's due time (INT64_MAX: nothing due). */
void mr_op_keyed_set_due(struct mr_op_keyed *k, mr_name_id asset, void *entry, int64_t due);
/* Visit the keys of `asset` that are due at watermark (due <= watermark), in the order they
 * were first seen. visit may emit and change the entry's due (it must, or it is visited again
 * next time) but must not create keys. Returns 0 or visit's first error. */
typedef int (*mr_op_visit_cb)(void *arg, uint64_t key, void *entry);
int mr_op_keyed_advance(struct mr_op_keyed *k, mr_name_id asset, int64_t watermark,
                        mr_op_visit_cb visit, void *arg);
static inline uint32_t mr_op_keyed_count(const struct mr_op_keyed *k)
{
    return mr_keymap_count(&k->keys);
}

/* Write the key of entry i as names; read one back and get its entry (new, or an error when
 * the same key appears twice). */
int mr_op_keyed_put_key(struct mr_op_keyed *k, uint32_t i, struct mr_state_writer *w);
int mr_op_keyed_get_key(struct mr_op_keyed *k, struct mr_state_reader *r, void **entry,
                        mr_name_id *asset, struct mr_err *err);

/* Length of the first `level` segments of an asset path ("plant1/area/line1/press1" at level 3:
 * the length of "plant1/area/line1"), or 0 when the path has no more than `level` segments or
 * level <= 0: how the analytics operators find a machine's line or site. */
static inline size_t mr_op_path_prefix(const char *path, size_t len, int64_t level)
{
    int64_t seen = 0;
    for (size_t i = 0; path != NULL && level > 0 && i < len; i++) {
        if (path[i] == '/' && ++seen == level) {
            return i;
        }
    }
    return 0;
}

/* a + b for event times, saturating at INT64_MAX. */
static inline int64_t mr_op_time_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* ---- deadband and report_by_exception (deadband.c) ---- */

/* Configuration of both; report_by_exception leaves absolute and percent at 0 (any change). */
struct mr_change_conf {
    double absolute;
    double percent;
    struct mr_strlist signals; /* empty: every signal */
    int64_t heartbeat_ns;
    int64_t stale_after_ns;
    int64_t max_keys;
};

/* deadband's field table: absolute, percent, then the fields report_by_exception shares
 * (heartbeat, stale_after, max_keys), which start at MR_CHANGE_SHARED_FIELDS. */
extern const struct mr_field mr_change_fields[];
#define MR_CHANGE_SHARED_FIELDS 2
#define MR_CHANGE_MAX_SIGNALS   64

struct mr_change_ctx {
    struct mr_op_base base;
    const struct mr_change_conf *conf;
    struct mr_op_keyed keyed;
    struct mr_op_buf out;
    mr_name_id stale_key;                      /* the tag key "stale" */
    mr_name_id signals[MR_CHANGE_MAX_SIGNALS]; /* conf->signals interned */
    size_t nsignals;
};

int mr_change_init(void *ctx, const struct mr_change_conf *conf, const struct mr_plugin *plugin,
                   struct mr_operator_host *host, struct mr_err *err);
int mr_change_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err);
int mr_change_advance(void *ctx, mr_name_id asset, int64_t watermark_ns, struct mr_err *err);
int mr_change_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err);
int mr_change_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err);
void mr_change_fini(void *ctx);

#endif
