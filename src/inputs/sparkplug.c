/* Sparkplug B host-side decoding (see sparkplug.h for the semantics).
 *
 * Used by the MQTT input; example of its configuration there:
 *
 *   inputs:
 *     - type: mqtt
 *       servers: ["tcp://127.0.0.1:1883"]
 *       topics: ["spBv1.0/#"]
 *       data_format: sparkplug_b
 *
 * State, per edge node and per device ("entity"), created on first sight and never removed
 * (bounded by max_entities):
 *
 *   entity index (open addressing on a hash of group/node/device) -> entity
 *   entity: born?, metric table from the last birth, alias index, name index
 *   node only: bdSeq of its NBIRTH, last seq, rebirth request pending since
 *
 * Births rebuild an entity's metric table (allocating once per birth); data messages look
 * metrics up by alias (integer hash) or, for publishers that do not use aliases, by name.
 */
#include "inputs/sparkplug.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "millrace/alloc.h"
#include "sparkplug_b.pb-c.h"

#define BATCH_MAX       64
#define ARENA_ALIGN     16
#define ASSET_MAX       1024
#define NS_PER_MS       1000000
#define SEQ_MOD         256
#define REBIRTH_METRIC  "Node Control/Rebirth"
#define DEFAULT_ENTS    4096u
#define DEFAULT_METRICS 10000u
#define DEFAULT_ARENA   (4u << 20)
#define DEFAULT_RETRY   (10 * (int64_t)1000000000)

struct metric {
    char *name;
    uint32_t name_len;
    uint32_t datatype;
    uint64_t alias;
    bool has_alias;
    bool protocol; /* bdSeq, Node/Device Control: no records */
    bool has_last;
    uint8_t last_type;
    mr_name_id signal;
    union {
        double f64;
        int64_t i64;
        bool b;
    } last;
};

struct entity {
    char *group, *node, *device; /* one allocation; device NULL for an edge node */
    uint32_t group_len, node_len, device_len;
    uint32_t hash;
    struct entity *parent; /* the edge node of a device; NULL for a node */
    mr_name_id asset;
    bool born;
    struct metric *metrics;
    uint32_t nmetrics;
    uint32_t slots;     /* size of by_alias and by_name, a power of two */
    uint32_t *by_alias; /* metric index + 1; 0 = empty */
    uint32_t *by_name;
    /* edge nodes only */
    bool has_bdseq;
    uint64_t bdseq;
    uint8_t seq;
    bool rebirth_pending;
    int64_t rebirth_at;
};

struct topic {
    const char *part[5];
    uint32_t len[5];
    int nparts;
};

struct mr_sparkplug {
    struct mr_names *names;
    struct mr_sparkplug_conf conf;
    struct mr_sparkplug_hooks hooks;
    char *prefix;
    mr_name_id tag_historical;
    struct entity **ents;
    uint32_t nents;
    uint32_t *ent_index; /* entity index + 1; 0 = empty */
    uint32_t ent_slots;
    uint8_t *arena;
    size_t arena_used;
    bool arena_full;
    ProtobufCAllocator alloc;
    struct mr_record batch[BATCH_MAX];
    size_t nbatch;
    int hook_rc;
    struct mr_sparkplug_stats stats;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static uint32_t hash_bytes(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    }
    return h;
}

static uint32_t hash_u64(uint64_t v)
{
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    return (uint32_t)v;
}

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t p = 8;
    while (p < n) {
        p <<= 1;
    }
    return p;
}

static bool bytes_eq(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* protobuf-c allocates through this bump arena, reset per message: no malloc per message. */
static void *arena_alloc(void *data, size_t size)
{
    struct mr_sparkplug *sp = data;
    size_t at = (sp->arena_used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size > sp->conf.arena_bytes || at > sp->conf.arena_bytes - size) {
        sp->arena_full = true;
        return NULL;
    }
    sp->arena_used = at + size;
    return sp->arena + at;
}

static void arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

/* ---- entities ----------------------------------------------------------------------------- */

static uint32_t entity_hash(const struct topic *t, bool device)
{
    uint32_t h = hash_bytes(2166136261u, t->part[1], t->len[1]);
    h = hash_bytes(h * 31u + 1u, t->part[3], t->len[3]);
    if (device) {
        h = hash_bytes(h * 31u + 2u, t->part[4], t->len[4]);
    }
    return h;
}

static bool entity_matches(const struct entity *e, const struct topic *t, bool device)
{
    if (!bytes_eq(e->group, e->group_len, t->part[1], t->len[1]) ||
        !bytes_eq(e->node, e->node_len, t->part[3], t->len[3])) {
        return false;
    }
    if (!device) {
        return e->device == NULL;
    }
    return e->device != NULL && bytes_eq(e->device, e->device_len, t->part[4], t->len[4]);
}

static struct entity *entity_find(struct mr_sparkplug *sp, const struct topic *t, bool device,
                                  uint32_t *slot_out)
{
    uint32_t h = entity_hash(t, device);
    uint32_t mask = sp->ent_slots - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t v = sp->ent_index[i];
        if (v == 0) {
            *slot_out = i;
            return NULL;
        }
        struct entity *e = sp->ents[v - 1];
        if (e->hash == h && entity_matches(e, t, device)) {
            return e;
        }
    }
}

static int asset_intern(struct mr_sparkplug *sp, struct entity *e)
{
    char buf[ASSET_MAX];
    int n;
    if (e->device != NULL) {
        n = snprintf(buf, sizeof buf, "%s%s%s/%s/%s", sp->prefix, sp->prefix[0] ? "/" : "",
                     e->group, e->node, e->device);
    } else {
        n = snprintf(buf, sizeof buf, "%s%s%s/%s", sp->prefix, sp->prefix[0] ? "/" : "", e->group,
                     e->node);
    }
    if (n < 0 || (size_t)n >= sizeof buf) {
        return MR_ETOOBIG;
    }
    return mr_names_intern(sp->names, buf, (size_t)n, &e->asset);
}

/* The entity for the topic's node (device false) or device, created when new. NULL when a cap
 * is reached or memory runs out (counted as dropped by the caller). */
static struct entity *entity_get(struct mr_sparkplug *sp, const struct topic *t, bool device,
                                 struct entity *parent)
{
    uint32_t slot;
    struct entity *e = entity_find(sp, t, device, &slot);
    if (e != NULL || sp->nents >= sp->conf.max_entities) {
        return e;
    }
    size_t dlen = device ? t->len[4] : 0;
    size_t sz = sizeof *e + t->len[1] + t->len[3] + dlen + 3;
    e = mr_calloc(1, sz);
    if (e == NULL) {
        return NULL;
    }
    char *p = (char *)(e + 1);
    e->group = p;
    memcpy(p, t->part[1], t->len[1]);
    p += t->len[1] + 1;
    e->node = p;
    memcpy(p, t->part[3], t->len[3]);
    p += t->len[3] + 1;
    if (device) {
        e->device = p;
        memcpy(p, t->part[4], dlen);
    }
    e->group_len = t->len[1];
    e->node_len = t->len[3];
    e->device_len = (uint32_t)dlen;
    e->hash = entity_hash(t, device);
    e->parent = parent;
    if (asset_intern(sp, e) != 0) {
        mr_free(e);
        return NULL;
    }
    sp->ents[sp->nents++] = e;
    sp->ent_index[slot] = sp->nents;
    return e;
}

static void entity_clear_metrics(struct entity *e)
{
    for (uint32_t i = 0; i < e->nmetrics; i++) {
        mr_free(e->metrics[i].name);
    }
    mr_free(e->metrics);
    mr_free(e->by_alias);
    mr_free(e->by_name);
    e->metrics = NULL;
    e->by_alias = NULL;
    e->by_name = NULL;
    e->nmetrics = 0;
    e->slots = 0;
}

static struct metric *metric_by_alias(const struct entity *e, uint64_t alias)
{
    if (e->slots == 0) {
        return NULL;
    }
    uint32_t mask = e->slots - 1;
    for (uint32_t i = hash_u64(alias) & mask;; i = (i + 1) & mask) {
        uint32_t v = e->by_alias[i];
        if (v == 0) {
            return NULL;
        }
        if (e->metrics[v - 1].alias == alias) {
            return &e->metrics[v - 1];
        }
    }
}

static struct metric *metric_by_name(const struct entity *e, const char *name)
{
    if (e->slots == 0) {
        return NULL;
    }
    size_t len = strlen(name);
    uint32_t mask = e->slots - 1;
    for (uint32_t i = hash_bytes(2166136261u, name, len) & mask;; i = (i + 1) & mask) {
        uint32_t v = e->by_name[i];
        if (v == 0) {
            return NULL;
        }
        const struct metric *m = &e->metrics[v - 1];
        if (bytes_eq(m->name, m->name_len, name, (uint32_t)len)) {
            return &e->metrics[v - 1];
        }
    }
}

/* Index metric i of e by name (and alias); a duplicate keeps the first binding. */
static void metric_index(struct entity *e, uint32_t i)
{
    struct metric *m = &e->metrics[i];
    uint32_t mask = e->slots - 1;
    uint32_t s;
    if (metric_by_name(e, m->name) == NULL) {
        for (s = hash_bytes(2166136261u, m->name, m->name_len) & mask; e->by_name[s] != 0;
             s = (s + 1) & mask) {
        }
        e->by_name[s] = i + 1;
    }
    if (!m->has_alias || metric_by_alias(e, m->alias) != NULL) {
        return;
    }
    for (s = hash_u64(m->alias) & mask; e->by_alias[s] != 0; s = (s + 1) & mask) {
    }
    e->by_alias[s] = i + 1;
}

/* ---- values ------------------------------------------------------------------------------- */

static bool metric_is_protocol(const char *name)
{
    return strcmp(name, "bdSeq") == 0 || strncmp(name, "Node Control/", 13) == 0 ||
           strncmp(name, "Device Control/", 15) == 0;
}

/* Signed value of an integer metric of width bits, from int_value or long_value. */
static bool int_of(const Spb__Payload__Metric *m, int bits, int64_t *out)
{
    uint64_t raw;
    if (m->value_case == SPB__PAYLOAD__METRIC__VALUE_INT_VALUE) {
        raw = m->int_value;
    } else if (m->value_case == SPB__PAYLOAD__METRIC__VALUE_LONG_VALUE) {
        raw = m->long_value;
    } else {
        return false;
    }
    /* Two's complement in the low `bits` bits, whatever the publisher did with the rest. */
    switch (bits) {
    case 8:
        *out = (int8_t)(uint8_t)raw;
        break;
    case 16:
        *out = (int16_t)(uint16_t)raw;
        break;
    case 32:
        *out = (int32_t)(uint32_t)raw;
        break;
    default:
        *out = (int64_t)raw;
        break;
    }
    return true;
}

static bool uint_of(const Spb__Payload__Metric *m, uint64_t *out)
{
    if (m->value_case == SPB__PAYLOAD__METRIC__VALUE_INT_VALUE) {
        *out = m->int_value;
    } else if (m->value_case == SPB__PAYLOAD__METRIC__VALUE_LONG_VALUE) {
        *out = m->long_value;
    } else {
        return false;
    }
    return true;
}

/* The record value type a Sparkplug datatype maps to, or 0 when it is not turned into records
 * (DataSet, Template, Bytes, File, arrays, unknown codes). */
static uint8_t value_type_of(uint32_t datatype)
{
    switch (datatype) {
    case MR_SPB_INT8:
    case MR_SPB_INT16:
    case MR_SPB_INT32:
    case MR_SPB_INT64:
    case MR_SPB_UINT8:
    case MR_SPB_UINT16:
    case MR_SPB_UINT32:
    case MR_SPB_UINT64:
    case MR_SPB_DATETIME:
        return MR_VALUE_I64;
    case MR_SPB_FLOAT:
    case MR_SPB_DOUBLE:
        return MR_VALUE_F64;
    case MR_SPB_BOOLEAN:
        return MR_VALUE_BOOL;
    case MR_SPB_STRING:
    case MR_SPB_TEXT:
    case MR_SPB_UUID:
        return MR_VALUE_STRING;
    default:
        return 0;
    }
}

/* Fill rec's value from m as datatype. Returns false when the value field does not fit the
 * datatype (a malformed metric). */
static bool value_fill(struct mr_record *rec, const Spb__Payload__Metric *m, uint32_t datatype)
{
    static const int bits[] = {
        [MR_SPB_INT8] = 8, [MR_SPB_INT16] = 16, [MR_SPB_INT32] = 32, [MR_SPB_INT64] = 64};
    uint64_t u;
    rec->type = value_type_of(datatype);
    switch (datatype) {
    case MR_SPB_INT8:
    case MR_SPB_INT16:
    case MR_SPB_INT32:
    case MR_SPB_INT64:
        return int_of(m, bits[datatype], &rec->v.i64);
    case MR_SPB_UINT64:
        if (!uint_of(m, &u)) {
            return false;
        }
        /* Beyond int64: keep the magnitude as a double rather than wrap to negative. */
        if (u > (uint64_t)INT64_MAX) {
            rec->type = MR_VALUE_F64;
            rec->v.f64 = (double)u;
        } else {
            rec->v.i64 = (int64_t)u;
        }
        return true;
    case MR_SPB_UINT8:
    case MR_SPB_UINT16:
    case MR_SPB_UINT32:
    case MR_SPB_DATETIME:
        if (!uint_of(m, &u) || u > (uint64_t)INT64_MAX) {
            return false;
        }
        rec->v.i64 = (int64_t)u;
        return true;
    case MR_SPB_FLOAT:
    case MR_SPB_DOUBLE:
        if (m->value_case == SPB__PAYLOAD__METRIC__VALUE_FLOAT_VALUE) {
            rec->v.f64 = m->float_value;
        } else if (m->value_case == SPB__PAYLOAD__METRIC__VALUE_DOUBLE_VALUE) {
            rec->v.f64 = m->double_value;
        } else {
            return false;
        }
        return true;
    case MR_SPB_BOOLEAN:
        rec->v.b = m->boolean_value;
        return m->value_case == SPB__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE;
    default: /* strings */
        if (m->value_case != SPB__PAYLOAD__METRIC__VALUE_STRING_VALUE ||
            strlen(m->string_value) > UINT32_MAX) {
            return false;
        }
        rec->v.str.ptr = m->string_value;
        rec->v.str.len = (uint32_t)strlen(m->string_value);
        return true;
    }
}

/* OPC DA style quality in a "Quality" property (Ignition and others): 192 good. */
static uint8_t quality_of(const Spb__Payload__Metric *m)
{
    const Spb__Payload__PropertySet *ps = m->properties;
    if (ps == NULL) {
        return MR_QUALITY_GOOD;
    }
    for (size_t i = 0; i < ps->n_keys && i < ps->n_values; i++) {
        const Spb__Payload__PropertyValue *v = ps->values[i];
        if (strcmp(ps->keys[i], "Quality") != 0 || v == NULL) {
            continue;
        }
        uint64_t q;
        if (v->value_case == SPB__PAYLOAD__PROPERTY_VALUE__VALUE_INT_VALUE) {
            q = v->int_value;
        } else if (v->value_case == SPB__PAYLOAD__PROPERTY_VALUE__VALUE_LONG_VALUE) {
            q = v->long_value;
        } else {
            continue;
        }
        q &= 0xc0;
        return q == 0xc0 ? MR_QUALITY_GOOD : q == 0x40 ? MR_QUALITY_UNCERTAIN : MR_QUALITY_BAD;
    }
    return MR_QUALITY_GOOD;
}

static bool time_of(uint64_t ms, int64_t *ns)
{
    if (ms > (uint64_t)(INT64_MAX / NS_PER_MS)) {
        return false;
    }
    *ns = (int64_t)ms * NS_PER_MS;
    return true;
}

/* ---- output -------------------------------------------------------------------------------- */

static void batch_flush(struct mr_sparkplug *sp)
{
    if (sp->nbatch > 0 && sp->hook_rc == 0 && sp->hooks.records != NULL) {
        int rc = sp->hooks.records(sp->hooks.ctx, sp->batch, sp->nbatch);
        if (rc < 0) {
            sp->hook_rc = rc;
        }
    }
    sp->nbatch = 0;
}

static struct mr_record *batch_next(struct mr_sparkplug *sp)
{
    if (sp->nbatch == BATCH_MAX) {
        batch_flush(sp);
    }
    struct mr_record *r = &sp->batch[sp->nbatch];
    memset(r, 0, offsetof(struct mr_record, tags));
    return r;
}

static void request_rebirth(struct mr_sparkplug *sp, struct entity *node, int64_t now_ns,
                            const char *reason)
{
    if (node->rebirth_pending && now_ns - node->rebirth_at < sp->conf.rebirth_retry_ns) {
        return;
    }
    node->rebirth_pending = true;
    node->rebirth_at = now_ns;
    sp->stats.rebirths++;
    if (sp->hooks.rebirth != NULL) {
        sp->hooks.rebirth(sp->hooks.ctx, node->group, node->node, reason);
    }
}

/* Emit one decoded metric of entity e (known as mt). */
static void metric_emit(struct mr_sparkplug *sp, struct entity *e, struct metric *mt,
                        const Spb__Payload__Metric *m, int64_t payload_ns)
{
    uint32_t datatype = m->has_datatype ? m->datatype : mt->datatype;
    if (value_type_of(datatype) == 0) {
        sp->stats.unsupported++;
        return;
    }
    struct mr_record *r = batch_next(sp);
    r->time_ns = payload_ns;
    if (m->has_timestamp && !time_of(m->timestamp, &r->time_ns)) {
        sp->stats.dropped++;
        return;
    }
    r->asset = e->asset;
    r->signal = mt->signal;
    bool is_null =
        (m->has_is_null && m->is_null) || m->value_case == SPB__PAYLOAD__METRIC__VALUE__NOT_SET;
    if (is_null) {
        /* No value: a bad-quality record of the declared type carrying a zero value. */
        r->type = value_type_of(datatype);
        r->quality = MR_QUALITY_BAD;
    } else if (!value_fill(r, m, datatype)) {
        sp->stats.dropped++;
        return;
    } else {
        r->quality = quality_of(m);
    }
    if (m->has_is_historical && m->is_historical) {
        r->tags[0] = (struct mr_tag){.key = sp->tag_historical, .value = {"true", 4}};
        r->ntags = 1;
    } else if (r->type != MR_VALUE_STRING && !is_null) {
        /* The live value, kept for the stale records a death produces. */
        mt->has_last = true;
        mt->last_type = r->type;
        memcpy(&mt->last, &r->v, sizeof mt->last);
    }
    sp->nbatch++;
    sp->stats.records++;
}

/* A bad-quality record for every known metric of e: its values are stale from time_ns. */
static void entity_stale(struct mr_sparkplug *sp, struct entity *e, int64_t time_ns)
{
    for (uint32_t i = 0; i < e->nmetrics; i++) {
        struct metric *mt = &e->metrics[i];
        uint8_t type = mt->has_last ? mt->last_type : value_type_of(mt->datatype);
        if (type == 0 || mt->protocol) {
            continue;
        }
        struct mr_record *r = batch_next(sp);
        r->time_ns = time_ns;
        r->asset = e->asset;
        r->signal = mt->signal;
        r->type = type;
        r->quality = MR_QUALITY_BAD;
        if (mt->has_last) {
            memcpy(&r->v, &mt->last, sizeof mt->last);
        }
        sp->nbatch++;
        sp->stats.records++;
        sp->stats.stale++;
    }
    e->born = false;
}

/* ---- messages ------------------------------------------------------------------------------ */

/* Rebuild e's metric table from a birth. Metrics without a name are skipped (counted). */
static int birth_load(struct mr_sparkplug *sp, struct entity *e, const Spb__Payload *p,
                      struct mr_err *err)
{
    if (p->n_metrics > sp->conf.max_metrics) {
        /* The old aliases no longer hold: the entity stays unborn until a birth that fits. */
        entity_clear_metrics(e);
        e->born = false;
        return MR_ERR_SET(err, MR_ETOOBIG, "birth of %s/%s%s%s declares %zu metrics, more than %u",
                          e->group, e->node, e->device ? "/" : "", e->device ? e->device : "",
                          p->n_metrics, sp->conf.max_metrics);
    }
    entity_clear_metrics(e);
    uint32_t slots = pow2_at_least(2 * (uint64_t)p->n_metrics + 1);
    e->metrics = mr_calloc(p->n_metrics + 1, sizeof *e->metrics);
    e->by_alias = mr_calloc(slots, sizeof *e->by_alias);
    e->by_name = mr_calloc(slots, sizeof *e->by_name);
    if (e->metrics == NULL || e->by_alias == NULL || e->by_name == NULL) {
        entity_clear_metrics(e);
        e->born = false;
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory loading a birth");
    }
    e->slots = slots;
    for (size_t i = 0; i < p->n_metrics; i++) {
        const Spb__Payload__Metric *m = p->metrics[i];
        struct metric *mt = &e->metrics[e->nmetrics];
        size_t len = m->name != NULL ? strlen(m->name) : 0;
        if (len == 0 || mr_names_intern(sp->names, m->name, len, &mt->signal) != 0 ||
            (mt->name = mr_strndup(m->name, len)) == NULL) {
            sp->stats.dropped++;
            continue;
        }
        mt->name_len = (uint32_t)len;
        mt->protocol = metric_is_protocol(mt->name);
        mt->datatype = m->has_datatype ? m->datatype : MR_SPB_UNKNOWN;
        mt->has_alias = m->has_alias;
        mt->alias = m->alias;
        metric_index(e, e->nmetrics++);
    }
    return 0;
}

/* Emit the values of a birth or data payload of e. Unknown metrics are counted; returns whether
 * one was seen (the caller asks for a rebirth). */
static bool payload_emit(struct mr_sparkplug *sp, struct entity *e, const Spb__Payload *p,
                         int64_t now_ns, bool birth)
{
    int64_t payload_ns = now_ns;
    bool unknown = false;
    if (p->has_timestamp && !time_of(p->timestamp, &payload_ns)) {
        payload_ns = now_ns;
    }
    for (size_t i = 0; i < p->n_metrics && sp->hook_rc == 0; i++) {
        const Spb__Payload__Metric *m = p->metrics[i];
        struct metric *mt = NULL;
        if (m->has_alias) {
            mt = metric_by_alias(e, m->alias);
        }
        if (mt == NULL && m->name != NULL && m->name[0] != '\0') {
            mt = metric_by_name(e, m->name);
        }
        if (mt == NULL) {
            if (!birth) {
                sp->stats.unknown_alias++;
                unknown = true;
            }
            continue;
        }
        if (!mt->protocol) {
            metric_emit(sp, e, mt, m, payload_ns);
        }
    }
    batch_flush(sp);
    return unknown;
}

/* seq of a message from node: must follow the previous one (mod 256). */
static void seq_check(struct mr_sparkplug *sp, struct entity *node, const Spb__Payload *p,
                      int64_t now_ns)
{
    uint8_t want = (uint8_t)((node->seq + 1) % SEQ_MOD);
    if (p->has_seq && p->seq == want) {
        node->seq = want;
        return;
    }
    char reason[96];
    if (p->has_seq) {
        snprintf(reason, sizeof reason, "sequence gap: expected %u, got %llu", want,
                 (unsigned long long)p->seq);
        node->seq = (uint8_t)(p->seq % SEQ_MOD);
    } else {
        snprintf(reason, sizeof reason, "message without seq (expected %u)", want);
    }
    sp->stats.seq_gaps++;
    request_rebirth(sp, node, now_ns, reason);
}

/* The bdSeq metric of an NBIRTH or NDEATH. */
static bool bdseq_of(const Spb__Payload *p, uint64_t *out)
{
    for (size_t i = 0; i < p->n_metrics; i++) {
        const Spb__Payload__Metric *m = p->metrics[i];
        if (m->name != NULL && strcmp(m->name, "bdSeq") == 0) {
            if (m->value_case == SPB__PAYLOAD__METRIC__VALUE_LONG_VALUE) {
                *out = m->long_value;
                return true;
            }
            if (m->value_case == SPB__PAYLOAD__METRIC__VALUE_INT_VALUE) {
                *out = m->int_value;
                return true;
            }
        }
    }
    return false;
}

static int on_nbirth(struct mr_sparkplug *sp, struct entity *node, const Spb__Payload *p,
                     int64_t now_ns, struct mr_err *err)
{
    int rc = birth_load(sp, node, p, err);
    if (rc != 0) {
        return rc;
    }
    node->has_bdseq = bdseq_of(p, &node->bdseq);
    node->seq = (uint8_t)(p->has_seq ? p->seq % SEQ_MOD : 0);
    node->born = true;
    node->rebirth_pending = false;
    /* A new session of the node: its devices are unknown until they are born again. */
    for (uint32_t i = 0; i < sp->nents; i++) {
        if (sp->ents[i]->parent == node) {
            sp->ents[i]->born = false;
        }
    }
    payload_emit(sp, node, p, now_ns, true);
    return 0;
}

static void on_ndeath(struct mr_sparkplug *sp, struct entity *node, const Spb__Payload *p,
                      int64_t now_ns)
{
    uint64_t bdseq;
    if (node->has_bdseq && bdseq_of(p, &bdseq) && bdseq != node->bdseq) {
        sp->stats.stale_deaths++;
        return;
    }
    /* The receive time, not the payload's: an NDEATH is the node's MQTT will, registered (and
     * stamped) when it connected, so its timestamp predates the data it makes stale. */
    int64_t t = now_ns;
    for (uint32_t i = 0; i < sp->nents; i++) {
        if (sp->ents[i]->parent == node && sp->ents[i]->born) {
            entity_stale(sp, sp->ents[i], t);
        }
    }
    entity_stale(sp, node, t);
    batch_flush(sp);
}

enum msg_type { MSG_NBIRTH, MSG_NDEATH, MSG_NDATA, MSG_DBIRTH, MSG_DDEATH, MSG_DDATA, MSG_OTHER };

static int topic_parse(struct topic *t, const char *s, size_t len, enum msg_type *type)
{
    static const char *const names[] = {"NBIRTH", "NDEATH", "NDATA", "DBIRTH", "DDEATH", "DDATA"};
    t->nparts = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '/') {
            continue;
        }
        if (t->nparts == 5 || i == start || i - start > UINT16_MAX) {
            return MR_EPARSE;
        }
        t->part[t->nparts] = s + start;
        t->len[t->nparts++] = (uint32_t)(i - start);
        start = i + 1;
    }
    if (t->nparts < 3 || !bytes_eq(t->part[0], t->len[0], "spBv1.0", 7)) {
        return MR_EPARSE;
    }
    *type = MSG_OTHER;
    if (bytes_eq(t->part[1], t->len[1], "STATE", 5)) {
        return 0;
    }
    for (int i = 0; i < 6; i++) {
        if (bytes_eq(t->part[2], t->len[2], names[i], (uint32_t)strlen(names[i]))) {
            *type = (enum msg_type)i;
        }
    }
    bool device = *type >= MSG_DBIRTH && *type <= MSG_DDATA;
    if (*type != MSG_OTHER && t->nparts != (device ? 5 : 4)) {
        return MR_EPARSE;
    }
    return 0;
}

/* Device messages: DBIRTH, DDATA, DDEATH of a born node. */
static int on_device(struct mr_sparkplug *sp, enum msg_type type, struct entity *node,
                     const struct topic *t, const Spb__Payload *p, int64_t now_ns,
                     struct mr_err *err)
{
    seq_check(sp, node, p, now_ns);
    struct entity *dev = entity_get(sp, t, true, node);
    if (dev == NULL) {
        sp->stats.dropped++;
        return 0;
    }
    if (type == MSG_DBIRTH) {
        int rc = birth_load(sp, dev, p, err);
        if (rc != 0) {
            return rc;
        }
        dev->born = true;
        payload_emit(sp, dev, p, now_ns, true);
    } else if (!dev->born) {
        sp->stats.no_birth++;
        request_rebirth(sp, node, now_ns, "device data before its DBIRTH");
    } else if (type == MSG_DDATA) {
        if (payload_emit(sp, dev, p, now_ns, false)) {
            request_rebirth(sp, node, now_ns, "unknown metric alias");
        }
    } else {
        int64_t ts = now_ns;
        if (p->has_timestamp && !time_of(p->timestamp, &ts)) {
            ts = now_ns;
        }
        entity_stale(sp, dev, ts);
        batch_flush(sp);
    }
    return 0;
}

static int dispatch(struct mr_sparkplug *sp, enum msg_type type, const struct topic *t,
                    const Spb__Payload *p, int64_t now_ns, struct mr_err *err)
{
    struct entity *node = entity_get(sp, t, false, NULL);
    if (node == NULL) {
        sp->stats.dropped++;
        return 0;
    }
    if (type == MSG_NBIRTH) {
        return on_nbirth(sp, node, p, now_ns, err);
    }
    if (!node->born) {
        sp->stats.no_birth++;
        if (type != MSG_NDEATH && type != MSG_DDEATH) {
            request_rebirth(sp, node, now_ns, "data before the node's NBIRTH");
        }
        return 0;
    }
    if (type == MSG_NDEATH) {
        on_ndeath(sp, node, p, now_ns);
        return 0;
    }
    if (type == MSG_NDATA) {
        seq_check(sp, node, p, now_ns);
        if (payload_emit(sp, node, p, now_ns, false)) {
            request_rebirth(sp, node, now_ns, "unknown metric alias");
        }
        return 0;
    }
    return on_device(sp, type, node, t, p, now_ns, err);
}

int mr_sparkplug_handle(struct mr_sparkplug *sp, const char *topic, size_t topic_len,
                        const uint8_t *payload, size_t len, int64_t now_ns, struct mr_err *err)
{
    struct topic t;
    enum msg_type type;
    int tlen = topic_len > 200 ? 200 : (int)topic_len;

    sp->stats.messages++;
    if (topic_parse(&t, topic, topic_len, &type) != 0) {
        sp->stats.malformed++;
        return MR_ERR_SET(err, MR_EPARSE,
                          "topic '%.*s' is not Sparkplug B (spBv1.0/group/type/node[/device])",
                          tlen, topic);
    }
    if (type == MSG_OTHER) {
        return 0; /* STATE, NCMD, DCMD: for edge nodes and other hosts, not data */
    }
    sp->arena_used = 0;
    sp->arena_full = false;
    Spb__Payload *p = spb__payload__unpack(&sp->alloc, len, payload);
    if (p == NULL) {
        sp->stats.malformed++;
        if (sp->arena_full) {
            return MR_ERR_SET(err, MR_EPARSE,
                              "topic '%.*s': payload of %zu bytes needs more than arena_bytes "
                              "(%zu) to decode",
                              tlen, topic, len, sp->conf.arena_bytes);
        }
        return MR_ERR_SET(err, MR_EPARSE,
                          "topic '%.*s': payload of %zu bytes is not a Sparkplug B protobuf", tlen,
                          topic, len);
    }
    sp->hook_rc = 0;
    sp->nbatch = 0;
    int rc = dispatch(sp, type, &t, p, now_ns, err);
    if (rc == MR_ETOOBIG) {
        sp->stats.malformed++;
        rc = MR_EPARSE;
        if (err != NULL) {
            err->code = rc;
        }
    }
    return rc != 0 ? rc : sp->hook_rc;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

int mr_sparkplug_create(struct mr_sparkplug **out, struct mr_names *names,
                        const struct mr_sparkplug_conf *conf,
                        const struct mr_sparkplug_hooks *hooks, struct mr_err *err)
{
    struct mr_sparkplug *sp = NULL;
    int rc = 0;
    if (out == NULL || names == NULL || conf == NULL || hooks == NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "sparkplug: missing argument");
    }
    sp = mr_calloc(1, sizeof *sp);
    if (sp == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "sparkplug: out of memory");
    }
    sp->names = names;
    sp->conf = *conf;
    sp->hooks = *hooks;
    if (sp->conf.max_entities == 0) {
        sp->conf.max_entities = DEFAULT_ENTS;
    }
    if (sp->conf.max_metrics == 0) {
        sp->conf.max_metrics = DEFAULT_METRICS;
    }
    if (sp->conf.arena_bytes == 0) {
        sp->conf.arena_bytes = DEFAULT_ARENA;
    }
    if (sp->conf.rebirth_retry_ns <= 0) {
        sp->conf.rebirth_retry_ns = DEFAULT_RETRY;
    }
    if (sp->conf.max_entities > (1u << 24) || sp->conf.max_metrics > (1u << 24)) {
        rc = MR_ERR_SET(err, MR_ECONFIG, "sparkplug: max_entities and max_metrics must be <= %u",
                        1u << 24);
        goto cleanup;
    }
    sp->ent_slots = pow2_at_least(2 * (uint64_t)sp->conf.max_entities);
    sp->prefix = mr_strdup(conf->asset_prefix != NULL ? conf->asset_prefix : "");
    sp->ents = mr_calloc(sp->conf.max_entities, sizeof *sp->ents);
    sp->ent_index = mr_calloc(sp->ent_slots, sizeof *sp->ent_index);
    sp->arena = mr_malloc(sp->conf.arena_bytes);
    if (sp->prefix == NULL || sp->ents == NULL || sp->ent_index == NULL || sp->arena == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "sparkplug: out of memory");
        goto cleanup;
    }
    rc = mr_names_intern(names, "historical", 10, &sp->tag_historical);
    if (rc != 0) {
        MR_ERR_SET(err, rc, "sparkplug: cannot intern tag name: %s", mr_strerror(rc));
        goto cleanup;
    }
    sp->alloc =
        (ProtobufCAllocator){.alloc = arena_alloc, .free = arena_free, .allocator_data = sp};
    *out = sp;
    sp = NULL;
cleanup:
    mr_sparkplug_destroy(sp);
    return rc;
}

void mr_sparkplug_destroy(struct mr_sparkplug *sp)
{
    if (sp == NULL) {
        return;
    }
    for (uint32_t i = 0; i < sp->nents; i++) {
        entity_clear_metrics(sp->ents[i]);
        mr_free(sp->ents[i]);
    }
    mr_free(sp->ents);
    mr_free(sp->ent_index);
    mr_free(sp->arena);
    mr_free(sp->prefix);
    mr_free(sp);
}

void mr_sparkplug_stats_get(const struct mr_sparkplug *sp, struct mr_sparkplug_stats *out)
{
    *out = sp->stats;
}

long mr_sparkplug_rebirth_topic(const char *group, const char *node, char *out, size_t cap)
{
    int n = snprintf(out, cap, "spBv1.0/%s/NCMD/%s", group, node);
    if (n < 0 || (size_t)n >= cap) {
        return MR_ETOOBIG;
    }
    return n;
}

long mr_sparkplug_rebirth_encode(uint64_t time_ms, uint8_t *out, size_t cap)
{
    Spb__Payload p = SPB__PAYLOAD__INIT;
    Spb__Payload__Metric m = SPB__PAYLOAD__METRIC__INIT;
    Spb__Payload__Metric *metrics[1] = {&m};
    m.name = (char *)REBIRTH_METRIC;
    m.has_timestamp = true;
    m.timestamp = time_ms;
    m.has_datatype = true;
    m.datatype = MR_SPB_BOOLEAN;
    m.value_case = SPB__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE;
    m.boolean_value = true;
    p.has_timestamp = true;
    p.timestamp = time_ms;
    p.n_metrics = 1;
    p.metrics = metrics;
    size_t need = spb__payload__get_packed_size(&p);
    if (need > cap) {
        return MR_ETOOBIG;
    }
    return (long)spb__payload__pack(&p, out);
}
