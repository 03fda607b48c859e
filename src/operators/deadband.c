/* Operator `deadband`: forwards a value only when it moved far enough from the last value
 * forwarded for its (asset, signal); with report_by_exception.c it shares everything below
 * (report_by_exception is a deadband of zero that also tracks text).
 *
 *   steps:
 *     - {type: deadband, absolute: 0.5, heartbeat: 5m, stale_after: 30s}
 *     - {type: deadband, percent: 2}            # 2 % of the last forwarded value
 *
 * Per (asset, signal) a number is forwarded when |x - last| > max(absolute, percent% * |last|):
 * with both set the absolute band is a floor for values near zero. The first value of a
 * signal, a change of value type or quality, and the first value after a stale record are
 * always forwarded. Booleans and text are forwarded when they change. NaN equals NaN here
 * (a stuck NaN is not news); infinities are forwarded when they change. Sample blocks, and
 * signals not in `signals` when that list is set, pass through untouched.
 *
 * heartbeat: an unchanged value is forwarded anyway once the last forwarded one is at least
 * this old, by record time. stale_after: when the asset's watermark reaches the last record
 * time of a signal + stale_after (the signal went silent while its source moved on), one record
 * is emitted with the last forwarded value, quality bad, tag stale=true and time = last record
 * time + stale_after; not again until new data arrived and went silent again.
 *
 * State per key is about 120 bytes plus text longer than 32 bytes (kept in a buffer of the key
 * that only grows, up to 64 KiB; a longer text is always forwarded and never repeated as
 * stale). Keys are capped by max_keys; records of further keys pass unchanged and count as
 * errors. Checkpoints store every key by name.
 */
#include <math.h>
#include <string.h>

#include "millrace/alloc.h"
#include "operators/op_common.h"

#define INLINE_TEXT   32
#define MAX_TEXT      (64u * 1024u)
#define STATE_VERSION 1

extern const struct mr_plugin mr_operator_deadband;

enum {
    ST_LIVE = 1,  /* data arrived since the last stale record */
    ST_STALE = 2, /* a stale record was emitted */
};

struct change_entry {
    struct mr_op_link link;
    int64_t fwd_time;  /* time of the last forwarded record */
    int64_t seen_time; /* latest time of any record */
    union {
        double f64;
        int64_t i64;
        bool b;
    } v; /* last forwarded value */
    uint8_t type;
    uint8_t quality;
    uint8_t state;
    uint8_t untracked; /* text longer than MAX_TEXT: not remembered */
    uint32_t len;      /* text bytes */
    uint32_t heap_cap;
    char *heap; /* text longer than INLINE_TEXT */
    char text[INLINE_TEXT];
};

static const char *entry_text(const struct change_entry *e)
{
    return e->len > INLINE_TEXT ? e->heap : e->text;
}

static bool num_differs(const struct mr_change_conf *cf, double last, double x)
{
    if (x == last) {
        return false;
    }
    if (isnan(x) || isnan(last)) {
        return !(isnan(x) && isnan(last));
    }
    if (!isfinite(x) || !isfinite(last)) {
        return true;
    }
    double band = cf->percent / 100.0 * fabs(last);
    band = band > cf->absolute ? band : cf->absolute;
    return fabs(x - last) > band;
}

static bool value_differs(const struct mr_change_conf *cf, const struct change_entry *e,
                          const struct mr_record *r)
{
    switch (r->type) {
    case MR_VALUE_F64:
        return num_differs(cf, e->v.f64, r->v.f64);
    case MR_VALUE_I64:
        if (r->v.i64 == e->v.i64) {
            return false;
        }
        /* Exact for any change without a band (doubles would merge ints above 2^53). */
        return (cf->absolute == 0 && cf->percent == 0) ||
               num_differs(cf, (double)e->v.i64, (double)r->v.i64);
    case MR_VALUE_BOOL:
        return r->v.b != e->v.b;
    case MR_VALUE_STRING:
        return e->untracked || r->v.str.len != e->len ||
               (e->len > 0 && memcmp(entry_text(e), r->v.str.ptr, e->len) != 0);
    default:
        return true;
    }
}

/* Keep the value of a forwarded record. */
static void remember(struct mr_change_ctx *c, struct change_entry *e, const struct mr_record *r)
{
    e->fwd_time = r->time_ns;
    e->type = r->type;
    e->quality = r->quality;
    e->untracked = 0;
    e->len = 0;
    if (r->type != MR_VALUE_STRING) {
        memcpy(&e->v, &r->v, sizeof(e->v));
        return;
    }
    uint32_t n = r->v.str.len;
    if (n > INLINE_TEXT && n <= MAX_TEXT && n > e->heap_cap) {
        uint32_t cap = e->heap_cap != 0 ? e->heap_cap : 64;
        while (cap < n) {
            cap *= 2;
        }
        char *grown = mr_realloc(e->heap, cap);
        if (grown == NULL) {
            mr_op_warn(&c->base, "out of memory keeping a text value: it will be forwarded "
                                 "every time");
            e->untracked = 1;
            return;
        }
        e->heap = grown;
        e->heap_cap = cap;
    }
    if (n > MAX_TEXT) {
        e->untracked = 1;
        return;
    }
    char *dst = n > INLINE_TEXT ? e->heap : e->text;
    if (n > 0) {
        memcpy(dst, r->v.str.ptr, n);
    }
    e->len = n;
}

/* One record; mr_op_process_each runs it over a batch. */
/* No `signals` list watches every signal. */
static bool watched(const struct mr_change_ctx *c, mr_name_id signal)
{
    for (size_t i = 0; i < c->nsignals; i++) {
        if (c->signals[i] == signal) {
            return true;
        }
    }
    return c->nsignals == 0;
}

static int change_one(void *ctx, const struct mr_record *rec)
{
    struct mr_change_ctx *c = ctx;
    const struct mr_change_conf *cf = c->conf;
    if (rec->type == MR_VALUE_SAMPLES || !watched(c, rec->signal)) {
        return mr_op_buf_push(&c->out, rec);
    }
    void *v = NULL;
    bool inserted = false;
    int rc = mr_op_keyed_get(&c->keyed, rec->asset, rec->signal, &v, &inserted);
    if (rc != 0) {
        if (rc == MR_ETOOBIG) {
            mr_op_warn(&c->base, "record passed unfiltered: max_keys (%lld signals) reached",
                       (long long)cf->max_keys);
        } else {
            mr_op_warn(&c->base, "record passed unfiltered: %s", mr_strerror(rc));
        }
        return mr_op_buf_push(&c->out, rec);
    }
    struct change_entry *e = v;
    bool fwd =
        inserted || e->state != ST_LIVE || e->type != rec->type || e->quality != rec->quality ||
        (cf->heartbeat_ns > 0 && rec->time_ns >= mr_op_time_add(e->fwd_time, cf->heartbeat_ns)) ||
        value_differs(cf, e, rec);
    if (inserted || rec->time_ns > e->seen_time) {
        e->seen_time = rec->time_ns;
    }
    e->state = ST_LIVE;
    if (cf->stale_after_ns > 0) {
        mr_op_keyed_set_due(&c->keyed, rec->asset, e,
                            mr_op_time_add(e->seen_time, cf->stale_after_ns));
    }
    if (!fwd) {
        return 0;
    }
    remember(c, e, rec);
    return mr_op_buf_push(&c->out, rec);
}

int mr_change_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct mr_change_ctx *c = ctx;
    return mr_op_process_each(&c->base, &c->out, recs, n, change_one, c, err);
}

static int stale_visit(void *arg, uint64_t key, void *entry)
{
    struct mr_change_ctx *c = arg;
    struct change_entry *e = entry;
    e->link.due = INT64_MAX;
    if (e->state != ST_LIVE || e->untracked) {
        return 0;
    }
    e->state = ST_STALE;
    struct mr_record r = {
        .time_ns = mr_op_time_add(e->seen_time, c->conf->stale_after_ns),
        .asset = (mr_name_id)(key >> 32),
        .signal = (mr_name_id)key,
        .type = e->type,
        .quality = MR_QUALITY_BAD,
        .ntags = 1,
        .tags = {{.key = c->stale_key, .value = {.ptr = "true", .len = 4}}},
    };
    if (e->type == MR_VALUE_STRING) {
        r.v.str = (struct mr_bytes){.ptr = entry_text(e), .len = e->len};
    } else {
        memcpy(&r.v, &e->v, sizeof(e->v));
    }
    return mr_op_buf_push(&c->out, &r);
}

int mr_change_advance(void *ctx, mr_name_id asset, int64_t watermark_ns, struct mr_err *err)
{
    struct mr_change_ctx *c = ctx;
    if (c->conf->stale_after_ns == 0) {
        return 0;
    }
    /* Stale records borrow text from the entries: no key is created before the flush. */
    int rc = mr_op_keyed_advance(&c->keyed, asset, watermark_ns, stale_visit, c);
    rc = rc == 0 ? mr_op_buf_flush(&c->out) : rc;
    c->out.n = 0;
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "passing stale records on failed: %s", mr_strerror(rc));
    }
    return 0;
}

/* Checkpoint: version, key count, then per key in first-seen order:
 *   asset name, signal name, fwd_time, seen_time, due, type|quality<<8|state<<16|untracked<<24,
 *   value (f64, i64, bool as u64, or text bytes) */
int mr_change_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err)
{
    struct mr_change_ctx *c = ctx;
    uint32_t n = mr_op_keyed_count(&c->keyed);
    mr_op_state_begin(w, STATE_VERSION, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct change_entry *e = mr_keymap_value_at(&c->keyed.keys, i);
        mr_op_keyed_put_key(&c->keyed, i, w);
        mr_state_put_i64(w, e->fwd_time);
        mr_state_put_i64(w, e->seen_time);
        mr_state_put_i64(w, e->link.due);
        mr_state_put_u64(w, (uint64_t)e->type | (uint64_t)e->quality << 8 |
                                (uint64_t)e->state << 16 | (uint64_t)e->untracked << 24);
        if (e->type == MR_VALUE_STRING) {
            mr_state_put_bytes(w, entry_text(e), e->len);
        } else if (e->type == MR_VALUE_I64) {
            mr_state_put_i64(w, e->v.i64);
        } else if (e->type == MR_VALUE_BOOL) {
            mr_state_put_u64(w, e->v.b);
        } else {
            mr_state_put_f64(w, e->v.f64);
        }
    }
    if (w->err != 0) {
        return MR_ERR_SET(err, w->err, "checkpoint: %s", mr_strerror(w->err));
    }
    return 0;
}

static int restore_value(struct mr_change_ctx *c, struct change_entry *e, struct mr_state_reader *r)
{
    uint64_t u = 0;
    if (e->type == MR_VALUE_STRING) {
        const void *p = NULL;
        size_t n = 0;
        if (mr_state_get_bytes(r, &p, &n) != 0 || n > MAX_TEXT) {
            return MR_ECORRUPT;
        }
        bool untracked = e->untracked;
        struct mr_record tmp = {.type = MR_VALUE_STRING,
                                .quality = e->quality,
                                .time_ns = e->fwd_time,
                                .v.str = {.ptr = p, .len = (uint32_t)n}};
        remember(c, e, &tmp);
        e->untracked = untracked;
        return 0;
    }
    if (e->type == MR_VALUE_I64) {
        return mr_state_get_i64(r, &e->v.i64);
    }
    if (e->type == MR_VALUE_BOOL) {
        int rc = mr_state_get_u64(r, &u);
        e->v.b = u != 0;
        return rc;
    }
    return mr_state_get_f64(r, &e->v.f64);
}

int mr_change_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err)
{
    struct mr_change_ctx *c = ctx;
    uint64_t n = 0;
    int orc = mr_op_state_open(r, STATE_VERSION, &n, err);
    if (orc != 0) {
        return orc;
    }
    for (uint64_t i = 0; i < n; i++) {
        void *v = NULL;
        mr_name_id asset = 0;
        int rc = mr_op_keyed_get_key(&c->keyed, r, &v, &asset, err);
        if (rc != 0) {
            return rc;
        }
        struct change_entry *e = v;
        int64_t due = INT64_MAX;
        uint64_t bits = 0;
        mr_state_get_i64(r, &e->fwd_time);
        mr_state_get_i64(r, &e->seen_time);
        mr_state_get_i64(r, &due);
        mr_state_get_u64(r, &bits);
        e->type = (uint8_t)bits;
        e->quality = (uint8_t)(bits >> 8);
        e->state = (uint8_t)(bits >> 16);
        e->untracked = (uint8_t)(bits >> 24);
        if (restore_value(c, e, r) != 0 || r->err != 0) {
            return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: truncated or malformed entry %llu",
                              (unsigned long long)i);
        }
        mr_op_keyed_set_due(&c->keyed, asset, e, due);
    }
    return 0;
}

void mr_change_fini(void *ctx)
{
    struct mr_change_ctx *c = ctx;
    for (uint32_t i = 0; i < mr_op_keyed_count(&c->keyed); i++) {
        struct change_entry *e = mr_keymap_value_at(&c->keyed.keys, i);
        mr_free(e->heap);
    }
    mr_op_keyed_fini(&c->keyed);
    mr_op_buf_fini(&c->out);
    memset(c, 0, sizeof(*c));
}

int mr_change_init(void *ctx, const struct mr_change_conf *conf, const struct mr_plugin *plugin,
                   struct mr_operator_host *host, struct mr_err *err)
{
    struct mr_change_ctx *c = ctx;
    memset(c, 0, sizeof(*c));
    c->conf = conf;
    int rc = mr_op_base_init(&c->base, plugin, host, err);
    if (rc != 0) {
        return rc;
    }
    if (mr_op_keyed_init(&c->keyed, sizeof(struct change_entry), (uint32_t)conf->max_keys) != 0 ||
        mr_op_buf_init(&c->out, &c->base, 0) != 0) {
        mr_change_fini(c);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    rc = mr_names_intern(host->names, "stale", 5, &c->stale_key);
    for (size_t i = 0; i < conf->signals.n && i < MR_CHANGE_MAX_SIGNALS && rc == 0; i++) {
        const char *sig = conf->signals.items[i];
        rc = mr_names_intern(host->names, sig, strlen(sig), &c->signals[c->nsignals++]);
    }
    if (rc != 0) {
        mr_change_fini(c);
        return MR_ERR_SET(err, rc, "cannot intern a name: %s", mr_strerror(rc));
    }
    return 0;
}

/* ---- the deadband plugin ---- */

static void deadband_check(void *conf, struct mr_config_check *chk)
{
    const struct mr_change_conf *c = conf;
    if (c->absolute == 0 && c->percent == 0) {
        mr_config_check_fail(chk, NULL,
                             "set `absolute` or `percent` (to forward every change, use "
                             "report_by_exception)");
    }
}

const struct mr_field mr_change_fields[] = {
    {.name = "absolute",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_change_conf, absolute),
     .def = "0",
     .min = "0",
     .help = "Forward a number when it differs from the last forwarded one by more than this "
             "(in the signal's unit)."},
    {.name = "percent",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_change_conf, percent),
     .def = "0",
     .min = "0",
     .max = "1000",
     .help = "Forward a number when it differs from the last forwarded one by more than this "
             "percentage of it. With `absolute` too, a change must exceed both."},
    /* shared with report_by_exception from here (MR_CHANGE_SHARED_FIELDS) */
    {.name = "heartbeat",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_change_conf, heartbeat_ns),
     .def = "0",
     .help = "Forward a value even when it did not change once the last forwarded value of its "
             "signal is this old (in record time), so consumers see the signal is alive. 0 "
             "turns it off."},
    {.name = "stale_after",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_change_conf, stale_after_ns),
     .def = "0",
     .help = "When a signal sends nothing for this long (its asset's event-time clock has moved "
             "on), emit its last value once more with quality bad and the tag stale=true. 0 "
             "turns it off."},
    {.name = "signals",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct mr_change_conf, signals),
     .max = "64",
     .help = "Signals to filter, e.g. [temperature, pressure]; records of other signals pass "
             "unchanged. Empty: every signal."},
    {.name = "max_keys",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mr_change_conf, max_keys),
     .def = "1000000",
     .min = "1",
     .max = "100000000",
     .help = "Most (asset, signal) pairs remembered; records of further pairs pass unchanged "
             "and count as errors."},
    {0},
};

static int deadband_init(void *ctx, const void *conf, struct mr_operator_host *host,
                         struct mr_err *err)
{
    return mr_change_init(ctx, conf, &mr_operator_deadband, host, err);
}

const struct mr_plugin mr_operator_deadband = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "deadband",
    .help = "Forwards a signal's value only when it moved by more than a band (absolute or "
            "percent) since the last forwarded value; optional heartbeat and stale marking.",
    .conf = {.fields = mr_change_fields,
             .size = sizeof(struct mr_change_conf),
             .check = deadband_check},
    .ctx_size = sizeof(struct mr_change_ctx),
    .op = {.init = deadband_init,
           .process = mr_change_process,
           .advance = mr_change_advance,
           .snapshot = mr_change_snapshot,
           .restore = mr_change_restore,
           .fini = mr_change_fini},
};
