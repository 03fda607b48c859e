/* Helpers shared by the record-by-record operators (operators/op_common.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "millrace/alloc.h"
#include "operators/op_common.h"

/* ---- instance basics ---- */

int mr_op_base_init(struct mr_op_base *b, const struct mr_plugin *plugin,
                    struct mr_operator_host *host, struct mr_err *err)
{
    memset(b, 0, sizeof(*b));
    b->host = host;
    int rc = mr_plugin_counters_register(host->metrics, plugin, host->name, &b->counters);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
    }
    return 0;
}

void mr_op_warn(struct mr_op_base *b, const char *fmt, ...)
{
    mr_counter_add(b->counters.errors, 1);
    long suppressed = mr_log_ratelimit_pass(&b->rl, 5, 10000);
    if (suppressed < 0 || MR_LOG_WARN > mr_log_get_level()) {
        return;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (suppressed > 0) {
        MR_LOG_WARN(b->host->name, "%s (%ld similar messages suppressed)", msg, suppressed);
    } else {
        MR_LOG_WARN(b->host->name, "%s", msg);
    }
}

/* ---- output buffer ---- */

int mr_op_buf_init(struct mr_op_buf *b, struct mr_op_base *base, int port)
{
    memset(b, 0, sizeof(*b));
    b->base = base;
    b->port = port;
    b->recs = mr_calloc(MR_OP_BUF_RECORDS, sizeof(struct mr_record));
    return b->recs != NULL ? 0 : MR_ENOMEM;
}

void mr_op_buf_fini(struct mr_op_buf *b)
{
    mr_free(b->recs);
    b->recs = NULL;
}

int mr_op_buf_flush(struct mr_op_buf *b)
{
    if (b->n == 0) {
        return 0;
    }
    struct mr_operator_host *h = b->base->host;
    size_t n = b->n;
    b->n = 0;
    int rc = b->port == 0 ? h->emit(h, b->recs, n) : h->side_emit(h, b->port, b->recs, n);
    if (rc == 0) {
        mr_counter_add(b->base->counters.records_out, n);
    }
    return rc;
}

int mr_op_process_each(struct mr_op_base *b, struct mr_op_buf *out, const struct mr_record *recs,
                       size_t n, int (*one)(void *ctx, const struct mr_record *rec), void *ctx,
                       struct mr_err *err)
{
    mr_counter_add(b->counters.records_in, n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = one(ctx, &recs[i]);
    }
    rc = rc == 0 ? mr_op_buf_flush(out) : rc;
    out->n = 0;
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "passing records on failed: %s", mr_strerror(rc));
    }
    return 0;
}

void mr_op_state_begin(struct mr_state_writer *w, uint64_t version, uint64_t count)
{
    mr_state_put_u64(w, version);
    mr_state_put_u64(w, count);
}

int mr_op_state_open(struct mr_state_reader *r, uint64_t version, uint64_t *count,
                     struct mr_err *err)
{
    uint64_t v = 0;
    mr_state_get_u64(r, &v);
    if (mr_state_get_u64(r, count) != 0 || v != version) {
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: unknown state version %llu",
                          (unsigned long long)v);
    }
    return 0;
}

int mr_op_buf_push(struct mr_op_buf *b, const struct mr_record *r)
{
    if (b->n == MR_OP_BUF_RECORDS) {
        int rc = mr_op_buf_flush(b);
        if (rc != 0) {
            return rc;
        }
    }
    mr_op_record_copy(&b->recs[b->n++], r);
    return 0;
}

/* ---- keyed state ---- */

/* The keys of one asset: a chain through their entries, and the earliest due time among them
 * (a lower bound: entries may have moved theirs later since). */
struct chain {
    uint32_t head; /* entry index + 1; 0: empty */
    uint32_t tail;
    int64_t due;
};

int mr_op_keyed_init(struct mr_op_keyed *k, size_t entry_size, uint32_t max_keys)
{
    memset(k, 0, sizeof(*k));
    int rc = mr_keymap_init(&k->keys, entry_size, max_keys);
    if (rc == 0) {
        rc = mr_keymap_init(&k->assets, sizeof(struct chain), max_keys);
    }
    if (rc != 0) {
        mr_op_keyed_fini(k);
    }
    return rc;
}

void mr_op_keyed_fini(struct mr_op_keyed *k)
{
    mr_keymap_fini(&k->keys);
    mr_keymap_fini(&k->assets);
}

static struct mr_op_link *link_at(struct mr_op_keyed *k, uint32_t index1)
{
    return mr_keymap_value_at(&k->keys, index1 - 1);
}

int mr_op_keyed_get(struct mr_op_keyed *k, mr_name_id asset, mr_name_id signal, void **entry,
                    bool *inserted)
{
    uint64_t key = mr_op_key(asset, signal);
    void *v = mr_keymap_find(&k->keys, key);
    if (v != NULL) {
        *entry = v;
        *inserted = false;
        return 0;
    }
    void *cv;
    int ins;
    int rc = mr_keymap_upsert(&k->assets, asset, &cv, &ins);
    if (rc != 0) {
        return rc;
    }
    struct chain *c = cv;
    if (ins) {
        c->due = INT64_MAX;
    }
    rc = mr_keymap_upsert(&k->keys, key, &v, &ins);
    if (rc != 0) {
        return rc; /* an empty chain left behind is harmless */
    }
    uint32_t index1 = mr_keymap_count(&k->keys); /* new entries are appended */
    struct mr_op_link *l = v;
    l->due = INT64_MAX;
    if (c->tail != 0) {
        link_at(k, c->tail)->next = index1;
    } else {
        c->head = index1;
    }
    c->tail = index1;
    *entry = v;
    *inserted = true;
    return 0;
}

void mr_op_keyed_set_due(struct mr_op_keyed *k, mr_name_id asset, void *entry, int64_t due)
{
    struct mr_op_link *l = entry;
    l->due = due;
    struct chain *c = mr_keymap_find(&k->assets, asset);
    if (c != NULL && due < c->due) {
        c->due = due;
    }
}

int mr_op_keyed_advance(struct mr_op_keyed *k, mr_name_id asset, int64_t watermark,
                        mr_op_visit_cb visit, void *arg)
{
    struct chain *c = mr_keymap_find(&k->assets, asset);
    if (c == NULL || c->due > watermark) {
        return 0;
    }
    int64_t due = INT64_MAX;
    int rc = 0;
    for (uint32_t i = c->head; i != 0;) {
        struct mr_op_link *l = link_at(k, i);
        if (l->due <= watermark && rc == 0) {
            rc = visit(arg, mr_keymap_key_at(&k->keys, i - 1), l);
        }
        if (l->due < due) {
            due = l->due;
        }
        i = l->next;
    }
    c->due = due;
    return rc;
}

int mr_op_keyed_put_key(struct mr_op_keyed *k, uint32_t i, struct mr_state_writer *w)
{
    uint64_t key = mr_keymap_key_at(&k->keys, i);
    mr_state_put_name(w, (mr_name_id)(key >> 32));
    return mr_state_put_name(w, (mr_name_id)key);
}

int mr_op_keyed_get_key(struct mr_op_keyed *k, struct mr_state_reader *r, void **entry,
                        mr_name_id *asset, struct mr_err *err)
{
    mr_name_id a = 0;
    mr_name_id s = 0;
    mr_state_get_name(r, &a);
    int rc = mr_state_get_name(r, &s);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "checkpoint: cannot read a key: %s", mr_strerror(rc));
    }
    bool inserted = false;
    rc = mr_op_keyed_get(k, a, s, entry, &inserted);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "checkpoint: cannot restore a key: %s", mr_strerror(rc));
    }
    if (!inserted) {
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: the same key appears twice");
    }
    *asset = a;
    return 0;
}
