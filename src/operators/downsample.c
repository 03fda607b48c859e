/* Operator `downsample`: fewer records per signal, by count or by time bucket.
 *
 *   steps:
 *     - {type: downsample, every: 10}                          # keep records 1, 11, 21, ...
 *     - {type: downsample, interval: 10s, aggregate: mean}     # one mean per 10 s bucket
 *
 * Everything is per (asset, signal). `every: N` keeps the first record and then every Nth
 * (any value type except sample blocks, which always pass).
 *
 * `interval` cuts event time into buckets aligned to the Unix epoch ([0, 10s), [10s, 20s),
 * ...) and emits one record per bucket that had numbers (f64 or i64; other types pass
 * unchanged): the min, max, mean, sum, count, first or last value, stamped with the bucket's
 * END time, with the worst quality seen in the bucket and no tags. min/max/mean/sum are f64,
 * count is i64, first/last keep the value's type. A bucket is emitted when a record of a later
 * bucket arrives for its signal, or when its asset's watermark reaches the bucket end. Both
 * depend on the input alone, so a replay emits the same records. A record older than a bucket
 * already emitted (or than the open one) is late: dropped and counted as an error.
 */
#include <math.h>
#include <string.h>

#include "millrace/alloc.h"
#include "operators/op_common.h"

#define STATE_VERSION 1

extern const struct mr_plugin mr_operator_downsample;

enum aggregate {
    AGG_MEAN,
    AGG_MIN,
    AGG_MAX,
    AGG_FIRST,
    AGG_LAST,
    AGG_SUM,
    AGG_COUNT,
};

static const char *const aggregate_values[] = {"mean", "min", "max",   "first",
                                               "last", "sum", "count", NULL};

struct downsample_conf {
    int64_t every;
    int64_t interval_ns;
    int aggregate; /* enum aggregate */
    int64_t max_keys;
    bool has_aggregate;
};

union num {
    double f64;
    int64_t i64;
};

struct ds_entry {
    struct mr_op_link link;
    uint64_t count;     /* every: records seen */
    int64_t start;      /* interval: the open bucket's start */
    int64_t closed_end; /* records before this are late */
    uint64_t n;         /* values in the open bucket; 0: none open */
    double acc;         /* min, max or sum */
    union num first;
    union num last;
    uint8_t first_type;
    uint8_t last_type;
    uint8_t quality; /* worst in the bucket */
    uint8_t has_closed;
};

struct downsample_ctx {
    struct mr_op_base base;
    const struct downsample_conf *conf;
    struct mr_op_keyed keyed;
    struct mr_op_buf out;
};

static void downsample_check(void *conf, struct mr_config_check *chk)
{
    const struct downsample_conf *c = conf;
    if ((c->every > 0) == (c->interval_ns > 0)) {
        mr_config_check_fail(chk, NULL, "set exactly one of `every` (count) or `interval` (time)");
    } else if (c->has_aggregate && c->interval_ns == 0) {
        mr_config_check_fail(chk, "aggregate", "aggregate needs `interval`");
    }
}

static const struct mr_field downsample_fields[] = {
    {.name = "every",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct downsample_conf, every),
     .def = "0",
     .min = "0",
     .help = "Keep one record in N per signal (the first, then every Nth). 0: not used."},
    {.name = "interval",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct downsample_conf, interval_ns),
     .def = "0",
     .help = "Emit one record per signal per time bucket of this length (buckets aligned to "
             "midnight UTC of 1970-01-01, stamped with their end time). 0: not used."},
    {.name = "aggregate",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct downsample_conf, aggregate),
     .def = "mean",
     .values = aggregate_values,
     .present = MR_FIELD_PRESENT(struct downsample_conf, has_aggregate),
     .help = "What a bucket's record holds: the mean, min, max, first, last or sum of its values, "
             "or their count."},
    {.name = "max_keys",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct downsample_conf, max_keys),
     .def = "1000000",
     .min = "1",
     .max = "100000000",
     .help = "Most (asset, signal) pairs remembered; records of further pairs pass unchanged and "
             "count as errors."},
    {0},
};

static void downsample_fini(void *ctx)
{
    struct downsample_ctx *c = ctx;
    mr_op_keyed_fini(&c->keyed);
    mr_op_buf_fini(&c->out);
    memset(c, 0, sizeof(*c));
}

static int downsample_init(void *ctx, const void *conf, struct mr_operator_host *host,
                           struct mr_err *err)
{
    struct downsample_ctx *c = ctx;
    const struct downsample_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    int rc = mr_op_base_init(&c->base, &mr_operator_downsample, host, err);
    if (rc != 0) {
        return rc;
    }
    if ((cf->every > 0) == (cf->interval_ns > 0)) {
        return MR_ERR_SET(err, MR_ECONFIG, "set exactly one of `every` or `interval`");
    }
    if (mr_op_keyed_init(&c->keyed, sizeof(struct ds_entry), (uint32_t)cf->max_keys) != 0 ||
        mr_op_buf_init(&c->out, &c->base, 0) != 0) {
        downsample_fini(c);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    return 0;
}

/* Start of t's bucket, flooring for times before 1970 too. */
static int64_t bucket_start(int64_t t, int64_t iv)
{
    int64_t r = t % iv;
    if (r < 0) {
        r += iv;
    }
    return t >= INT64_MIN + r ? t - r : INT64_MIN;
}

static int emit_bucket(struct downsample_ctx *c, uint64_t key, struct ds_entry *e)
{
    int64_t end = mr_op_time_add(e->start, c->conf->interval_ns);
    struct mr_record r = {
        .time_ns = end,
        .asset = (mr_name_id)(key >> 32),
        .signal = (mr_name_id)key,
        .type = MR_VALUE_F64,
        .quality = e->quality,
    };
    switch ((enum aggregate)c->conf->aggregate) {
    case AGG_MEAN:
        r.v.f64 = e->acc / (double)e->n;
        break;
    case AGG_MIN:
    case AGG_MAX:
    case AGG_SUM:
        r.v.f64 = e->acc;
        break;
    case AGG_COUNT:
        r.type = MR_VALUE_I64;
        r.v.i64 = (int64_t)e->n;
        break;
    case AGG_FIRST:
    case AGG_LAST: {
        bool first = c->conf->aggregate == AGG_FIRST;
        r.type = first ? e->first_type : e->last_type;
        memcpy(&r.v, first ? &e->first : &e->last, sizeof(union num));
        break;
    }
    }
    e->closed_end = end;
    e->has_closed = 1;
    e->n = 0;
    e->link.due = INT64_MAX;
    return mr_op_buf_push(&c->out, &r);
}

static void accumulate(struct downsample_ctx *c, struct ds_entry *e, const struct mr_record *rec)
{
    double x = rec->type == MR_VALUE_F64 ? rec->v.f64 : (double)rec->v.i64;
    union num raw;
    memcpy(&raw, &rec->v, sizeof(raw));
    if (e->n == 0) {
        e->acc = c->conf->aggregate == AGG_MIN || c->conf->aggregate == AGG_MAX ? x : 0;
        e->first = raw;
        e->first_type = rec->type;
        e->quality = rec->quality;
    }
    switch ((enum aggregate)c->conf->aggregate) {
    case AGG_MIN: /* NaN only when every value was NaN */
        e->acc = x < e->acc || isnan(e->acc) ? x : e->acc;
        break;
    case AGG_MAX:
        e->acc = x > e->acc || isnan(e->acc) ? x : e->acc;
        break;
    case AGG_MEAN:
    case AGG_SUM:
        e->acc += x;
        break;
    default:
        break;
    }
    e->last = raw;
    e->last_type = rec->type;
    e->quality = rec->quality > e->quality ? rec->quality : e->quality;
    e->n++;
}

static int bucket_one(struct downsample_ctx *c, const struct mr_record *rec, struct ds_entry *e)
{
    int64_t t = rec->time_ns;
    int64_t start = bucket_start(t, c->conf->interval_ns);
    if ((e->has_closed && t < e->closed_end) || (e->n > 0 && start < e->start)) {
        char when[40];
        mr_time_format_rfc3339(t, when, sizeof(when));
        mr_op_warn(&c->base, "late record of %s dropped: its bucket is closed", when);
        return 0;
    }
    if (e->n > 0 && start != e->start) {
        int rc = emit_bucket(c, mr_op_key(rec->asset, rec->signal), e);
        if (rc != 0) {
            return rc;
        }
    }
    if (e->n == 0) {
        e->start = start;
    }
    accumulate(c, e, rec);
    mr_op_keyed_set_due(&c->keyed, rec->asset, e, mr_op_time_add(start, c->conf->interval_ns));
    return 0;
}

/* One record; mr_op_process_each runs it over a batch. */
static int downsample_one(void *ctx, const struct mr_record *rec)
{
    struct downsample_ctx *c = ctx;
    bool interval = c->conf->interval_ns > 0;
    bool handled = interval ? rec->type == MR_VALUE_F64 || rec->type == MR_VALUE_I64
                            : rec->type != MR_VALUE_SAMPLES;
    if (!handled) {
        return mr_op_buf_push(&c->out, rec);
    }
    void *v = NULL;
    bool inserted = false;
    int rc = mr_op_keyed_get(&c->keyed, rec->asset, rec->signal, &v, &inserted);
    if (rc != 0) {
        if (rc == MR_ETOOBIG) {
            mr_op_warn(&c->base, "record passed as is: max_keys (%lld signals) reached",
                       (long long)c->conf->max_keys);
        } else {
            mr_op_warn(&c->base, "record passed as is: %s", mr_strerror(rc));
        }
        return mr_op_buf_push(&c->out, rec);
    }
    struct ds_entry *e = v;
    if (interval) {
        return bucket_one(c, rec, e);
    }
    bool keep = e->count % (uint64_t)c->conf->every == 0;
    e->count++;
    return keep ? mr_op_buf_push(&c->out, rec) : 0;
}

static int downsample_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct downsample_ctx *c = ctx;
    return mr_op_process_each(&c->base, &c->out, recs, n, downsample_one, c, err);
}

static int due_visit(void *arg, uint64_t key, void *entry)
{
    struct ds_entry *e = entry;
    if (e->n == 0) {
        e->link.due = INT64_MAX;
        return 0;
    }
    return emit_bucket(arg, key, e);
}

static int downsample_advance(void *ctx, mr_name_id asset, int64_t watermark_ns, struct mr_err *err)
{
    struct downsample_ctx *c = ctx;
    if (c->conf->interval_ns == 0) {
        return 0;
    }
    int rc = mr_op_keyed_advance(&c->keyed, asset, watermark_ns, due_visit, c);
    rc = rc == 0 ? mr_op_buf_flush(&c->out) : rc;
    c->out.n = 0;
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "passing buckets on failed: %s", mr_strerror(rc));
    }
    return 0;
}

/* Checkpoint: version, key count, then per key in first-seen order: asset name, signal name,
 * count, start, closed_end, n, acc, first, last (8 raw bytes each), due,
 * first_type | last_type << 8 | quality << 16 | has_closed << 24. */
static int downsample_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err)
{
    struct downsample_ctx *c = ctx;
    uint32_t n = mr_op_keyed_count(&c->keyed);
    mr_op_state_begin(w, STATE_VERSION, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct ds_entry *e = mr_keymap_value_at(&c->keyed.keys, i);
        uint64_t first;
        uint64_t last;
        memcpy(&first, &e->first, sizeof(first));
        memcpy(&last, &e->last, sizeof(last));
        mr_op_keyed_put_key(&c->keyed, i, w);
        mr_state_put_u64(w, e->count);
        mr_state_put_i64(w, e->start);
        mr_state_put_i64(w, e->closed_end);
        mr_state_put_u64(w, e->n);
        mr_state_put_f64(w, e->acc);
        mr_state_put_u64(w, first);
        mr_state_put_u64(w, last);
        mr_state_put_i64(w, e->link.due);
        mr_state_put_u64(w, (uint64_t)e->first_type | (uint64_t)e->last_type << 8 |
                                (uint64_t)e->quality << 16 | (uint64_t)e->has_closed << 24);
    }
    if (w->err != 0) {
        return MR_ERR_SET(err, w->err, "checkpoint: %s", mr_strerror(w->err));
    }
    return 0;
}

static int downsample_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err)
{
    struct downsample_ctx *c = ctx;
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
        struct ds_entry *e = v;
        uint64_t first = 0;
        uint64_t last = 0;
        uint64_t bits = 0;
        int64_t due = INT64_MAX;
        mr_state_get_u64(r, &e->count);
        mr_state_get_i64(r, &e->start);
        mr_state_get_i64(r, &e->closed_end);
        mr_state_get_u64(r, &e->n);
        mr_state_get_f64(r, &e->acc);
        mr_state_get_u64(r, &first);
        mr_state_get_u64(r, &last);
        mr_state_get_i64(r, &due);
        if (mr_state_get_u64(r, &bits) != 0) {
            return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint: truncated entry %llu",
                              (unsigned long long)i);
        }
        memcpy(&e->first, &first, sizeof(first));
        memcpy(&e->last, &last, sizeof(last));
        e->first_type = (uint8_t)bits;
        e->last_type = (uint8_t)(bits >> 8);
        e->quality = (uint8_t)(bits >> 16);
        e->has_closed = (uint8_t)(bits >> 24);
        mr_op_keyed_set_due(&c->keyed, asset, e, due);
    }
    return 0;
}

const struct mr_plugin mr_operator_downsample = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "downsample",
    .help = "Reduces a signal's rate: keeps every Nth record, or emits one aggregate (mean, min, "
            "max, first, last, sum, count) per fixed time bucket.",
    .conf = {.fields = downsample_fields,
             .size = sizeof(struct downsample_conf),
             .check = downsample_check},
    .ctx_size = sizeof(struct downsample_ctx),
    .op = {.init = downsample_init,
           .process = downsample_process,
           .advance = downsample_advance,
           .snapshot = downsample_snapshot,
           .restore = downsample_restore,
           .fini = downsample_fini},
};
