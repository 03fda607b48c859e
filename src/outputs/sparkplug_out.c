/* Sparkplug B edge node state and payloads (see sparkplug_out.h for the semantics).
 *
 * State:
 *   by_asset: asset name id -> device index + 1 (id-indexed, grows by doubling)
 *   devices[]: name (flattened asset path), born?, metric indexes in birth order
 *   metric map: (device, signal id) -> metric (open addressing on an integer hash)
 *   metrics[]: signal name (borrowed from the names table), alias, datatype, last value
 */
#include "outputs/sparkplug_out.h"

#include <stdio.h>
#include <string.h>

#include "millrace/alloc.h"
#include "sparkplug_b.pb-c.h"

#define SPB_NS          "spBv1.0"
#define DEVICE_NAME_MAX 255
#define DEFAULT_DEVICES 1000u
#define DEFAULT_METRICS 1000u
#define STR_KEEP_MAX    4096u /* longest string value remembered for births */

/* Sparkplug DataType codes used here (specification 3.0, 6.4.16). */
enum { DT_INT32 = 3, DT_INT64 = 4, DT_UINT64 = 8, DT_DOUBLE = 10, DT_BOOLEAN = 11, DT_STRING = 12 };

union val {
    double f64;
    int64_t i64;
    bool b;
};

struct metric {
    uint32_t device;
    mr_name_id signal;
    const char *name; /* borrowed from the names table */
    uint64_t alias;
    uint32_t datatype;
    uint8_t quality;
    bool has_value;
    int64_t time_ns;
    union val v;
    char *str; /* string value, str_len bytes (NUL-terminated), capacity str_cap */
    uint32_t str_len, str_cap;
};

struct device {
    char name[DEVICE_NAME_MAX + 1];
    bool born;
    uint32_t *metrics; /* indexes into e->metrics, birth order */
    uint32_t nmetrics, cap;
};

struct mr_spb_edge {
    struct mr_names *names;
    char *group, *node, *sep;
    uint32_t max_devices, max_metrics;
    uint32_t *by_asset; /* asset id -> device + 1 */
    uint32_t by_asset_len;
    struct device *devices;
    uint32_t ndevices, devices_cap;
    struct metric *metrics;
    uint32_t nmetrics, metrics_cap;
    uint32_t *slots; /* metric index + 1; 0 = empty; power of two */
    uint32_t nslots;
    uint64_t next_alias;
    uint8_t seq;
    bool seq_started;
};

static bool id_ok(const char *s)
{
    return s != NULL && s[0] != '\0' && strpbrk(s, "/+#") == NULL && strlen(s) <= 255;
}

int mr_spb_edge_create(struct mr_spb_edge **out, struct mr_names *names,
                       const struct mr_spb_edge_conf *conf, struct mr_err *err)
{
    if (!id_ok(conf->group_id)) {
        return MR_ERR_SET(err, MR_ECONFIG,
                          "sparkplug.group_id '%s' must be 1..255 bytes without / + #",
                          conf->group_id != NULL ? conf->group_id : "");
    }
    if (!id_ok(conf->edge_node_id)) {
        return MR_ERR_SET(err, MR_ECONFIG,
                          "sparkplug.edge_node_id '%s' must be 1..255 bytes without / + #",
                          conf->edge_node_id != NULL ? conf->edge_node_id : "");
    }
    const char *sep = conf->device_separator != NULL ? conf->device_separator : ".";
    if (strpbrk(sep, "/+#") != NULL || strlen(sep) > 8) {
        return MR_ERR_SET(err, MR_ECONFIG,
                          "sparkplug.device_separator '%s' must be at most 8 bytes without / + #",
                          sep);
    }
    struct mr_spb_edge *e = mr_calloc(1, sizeof(*e));
    if (e == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    e->names = names;
    e->group = mr_strdup(conf->group_id);
    e->node = mr_strdup(conf->edge_node_id);
    e->sep = mr_strdup(sep);
    e->max_devices = conf->max_devices > 0 ? conf->max_devices : DEFAULT_DEVICES;
    e->max_metrics = conf->max_metrics > 0 ? conf->max_metrics : DEFAULT_METRICS;
    e->next_alias = 1;
    if (e->group == NULL || e->node == NULL || e->sep == NULL) {
        mr_spb_edge_destroy(e);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    *out = e;
    return 0;
}

void mr_spb_edge_destroy(struct mr_spb_edge *e)
{
    if (e == NULL) {
        return;
    }
    for (uint32_t i = 0; i < e->ndevices; i++) {
        mr_free(e->devices[i].metrics);
    }
    for (uint32_t i = 0; i < e->nmetrics; i++) {
        mr_free(e->metrics[i].str);
    }
    mr_free(e->devices);
    mr_free(e->metrics);
    mr_free(e->slots);
    mr_free(e->by_asset);
    mr_free(e->group);
    mr_free(e->node);
    mr_free(e->sep);
    mr_free(e);
}

uint32_t mr_spb_edge_device_count(const struct mr_spb_edge *e)
{
    return e->ndevices;
}

/* ---- lookup ---- */

static uint32_t key_hash(uint32_t dev, mr_name_id sig)
{
    uint64_t k = ((uint64_t)dev << 32) | sig;
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (uint32_t)k;
}

static struct metric *metric_find(const struct mr_spb_edge *e, uint32_t dev, mr_name_id sig)
{
    if (e->nslots == 0) {
        return NULL;
    }
    for (uint32_t h = key_hash(dev, sig) & (e->nslots - 1);; h = (h + 1) & (e->nslots - 1)) {
        uint32_t s = e->slots[h];
        if (s == 0) {
            return NULL;
        }
        struct metric *m = &e->metrics[s - 1];
        if (m->device == dev && m->signal == sig) {
            return m;
        }
    }
}

static void slot_put(uint32_t *slots, uint32_t nslots, const struct metric *m, uint32_t index)
{
    uint32_t h = key_hash(m->device, m->signal) & (nslots - 1);
    while (slots[h] != 0) {
        h = (h + 1) & (nslots - 1);
    }
    slots[h] = index + 1;
}

/* Keep the map at most half full. */
static int slots_reserve(struct mr_spb_edge *e)
{
    if ((uint64_t)(e->nmetrics + 1) * 2 <= e->nslots) {
        return 0;
    }
    uint32_t n = e->nslots > 0 ? e->nslots * 2 : 64;
    uint32_t *slots = mr_calloc(n, sizeof(*slots));
    if (slots == NULL) {
        return MR_ENOMEM;
    }
    for (uint32_t i = 0; i < e->nmetrics; i++) {
        slot_put(slots, n, &e->metrics[i], i);
    }
    mr_free(e->slots);
    e->slots = slots;
    e->nslots = n;
    return 0;
}

static int device_name(const struct mr_spb_edge *e, mr_name_id asset, char *out)
{
    size_t len;
    const char *path = mr_names_str(e->names, asset, &len);
    if (path == NULL) {
        return MR_EINVAL;
    }
    size_t seplen = strlen(e->sep), k = 0;
    for (size_t i = 0; i < len; i++) {
        const char *piece = &path[i];
        size_t plen = 1;
        if (path[i] == '/') {
            piece = e->sep;
            plen = seplen;
        }
        if (k + plen > DEVICE_NAME_MAX) {
            return MR_ETOOBIG;
        }
        memcpy(out + k, piece, plen);
        if (plen == 1 && (out[k] == '+' || out[k] == '#')) {
            out[k] = '_'; /* MQTT wildcards cannot appear in a topic */
        }
        k += plen;
    }
    out[k] = '\0';
    return k > 0 ? 0 : MR_EINVAL;
}

static int device_get(struct mr_spb_edge *e, mr_name_id asset, uint32_t *dev, const char **reason)
{
    if (asset < e->by_asset_len && e->by_asset[asset] != 0) {
        *dev = e->by_asset[asset] - 1;
        return 0;
    }
    if (e->ndevices >= e->max_devices) {
        *reason = "more devices than sparkplug.max_devices";
        return MR_ETOOBIG;
    }
    if (mr_array_hold((void **)&e->by_asset, &e->by_asset_len, sizeof(*e->by_asset), asset, 64,
                      0) != 0) {
        *reason = "out of memory";
        return MR_ENOMEM;
    }
    if (mr_array_hold((void **)&e->devices, &e->devices_cap, sizeof(*e->devices), e->ndevices, 8,
                      0) != 0) {
        *reason = "out of memory";
        return MR_ENOMEM;
    }
    struct device *d = &e->devices[e->ndevices];
    memset(d, 0, sizeof(*d));
    int rc = device_name(e, asset, d->name);
    if (rc != 0) {
        *reason = rc == MR_ETOOBIG ? "asset path too long for a Sparkplug device id (255 bytes)"
                                   : "record without an asset path";
        return rc;
    }
    e->by_asset[asset] = ++e->ndevices;
    *dev = e->ndevices - 1;
    return 0;
}

static uint32_t datatype_of(uint8_t type)
{
    switch (type) {
    case MR_VALUE_F64:
        return DT_DOUBLE;
    case MR_VALUE_I64:
        return DT_INT64;
    case MR_VALUE_BOOL:
        return DT_BOOLEAN;
    case MR_VALUE_STRING:
        return DT_STRING;
    default:
        return 0;
    }
}

static int metric_add(struct mr_spb_edge *e, uint32_t dev, const struct mr_record *rec,
                      struct metric **out, const char **reason)
{
    struct device *d = &e->devices[dev];
    const char *name = mr_names_str(e->names, rec->signal, NULL);
    if (name == NULL) {
        *reason = "record without a signal name";
        return MR_EINVAL;
    }
    if (d->nmetrics >= e->max_metrics) {
        *reason = "more signals on one device than sparkplug.max_metrics";
        return MR_ETOOBIG;
    }
    if (slots_reserve(e) != 0 ||
        mr_array_hold((void **)&e->metrics, &e->metrics_cap, sizeof(*e->metrics), e->nmetrics, 8,
                      0) != 0 ||
        mr_array_hold((void **)&d->metrics, &d->cap, sizeof(*d->metrics), d->nmetrics, 8, 0) != 0) {
        *reason = "out of memory";
        return MR_ENOMEM;
    }
    struct metric *m = &e->metrics[e->nmetrics];
    *m = (struct metric){.device = dev,
                         .signal = rec->signal,
                         .name = name,
                         .alias = e->next_alias++,
                         .datatype = datatype_of(rec->type)};
    slot_put(e->slots, e->nslots, m, e->nmetrics);
    d->metrics[d->nmetrics++] = e->nmetrics++;
    *out = m;
    return 0;
}

/* Remember rec's value for births. Strings longer than STR_KEEP_MAX are born as null. */
static void metric_keep(struct metric *m, const struct mr_record *rec)
{
    m->time_ns = rec->time_ns;
    m->quality = rec->quality;
    m->has_value = true;
    switch (rec->type) {
    case MR_VALUE_F64:
        m->v.f64 = rec->v.f64;
        break;
    case MR_VALUE_I64:
        m->v.i64 = rec->v.i64;
        break;
    case MR_VALUE_BOOL:
        m->v.b = rec->v.b;
        break;
    default: {
        uint32_t len = rec->v.str.len;
        if (len > STR_KEEP_MAX) {
            m->has_value = false;
            break;
        }
        if (len + 1 > m->str_cap) {
            char *p = mr_realloc(m->str, len + 1);
            if (p == NULL) {
                m->has_value = false;
                break;
            }
            m->str = p;
            m->str_cap = len + 1;
        }
        memcpy(m->str, rec->v.str.ptr, len);
        m->str[len] = '\0';
        m->str_len = len;
        break;
    }
    }
}

int mr_spb_edge_observe(struct mr_spb_edge *e, const struct mr_record *rec, uint32_t *dev,
                        bool *birth, const char **reason)
{
    if (datatype_of(rec->type) == 0) {
        *reason = "sample blocks cannot be published as Sparkplug metrics";
        return MR_ENOTSUP;
    }
    if (rec->type == MR_VALUE_STRING && memchr(rec->v.str.ptr, '\0', rec->v.str.len) != NULL) {
        *reason = "string value contains a NUL byte (not allowed in a Sparkplug String)";
        return MR_EINVAL;
    }
    if (rec->type == MR_VALUE_STRING && rec->v.str.len > STR_KEEP_MAX) {
        *reason = "string value longer than 4096 bytes (too long for a Sparkplug metric here)";
        return MR_ETOOBIG;
    }
    uint32_t d;
    int rc = device_get(e, rec->asset, &d, reason);
    if (rc != 0) {
        return rc;
    }
    *birth = !e->devices[d].born;
    struct metric *m = metric_find(e, d, rec->signal);
    if (m == NULL) {
        if ((rc = metric_add(e, d, rec, &m, reason)) != 0) {
            return rc;
        }
        *birth = true;
    } else if (m->datatype != datatype_of(rec->type)) {
        m->datatype = datatype_of(rec->type);
        *birth = true;
    }
    metric_keep(m, rec);
    if (*birth) {
        e->devices[d].born = false;
    }
    *dev = d;
    return 0;
}

/* ---- encoding ---- */

long mr_spb_edge_topic(const struct mr_spb_edge *e, enum mr_spb_msg type, uint32_t dev, char *out,
                       size_t cap)
{
    static const char *const types[] = {[MR_SPB_NBIRTH] = "NBIRTH",
                                        [MR_SPB_NDEATH] = "NDEATH",
                                        [MR_SPB_NCMD] = "NCMD",
                                        [MR_SPB_DBIRTH] = "DBIRTH",
                                        [MR_SPB_DDATA] = "DDATA"};
    bool device = type == MR_SPB_DBIRTH || type == MR_SPB_DDATA;
    int n = snprintf(out, cap, SPB_NS "/%s/%s/%s%s%s", e->group, types[type], e->node,
                     device ? "/" : "", device ? e->devices[dev].name : "");
    return n < 0 || (size_t)n >= cap ? MR_ETOOBIG : n;
}

static long pack(const Spb__Payload *p, uint8_t *out, size_t cap)
{
    size_t n = spb__payload__get_packed_size(p);
    if (n > cap) {
        return MR_ETOOBIG;
    }
    return (long)spb__payload__pack(p, out);
}

static uint64_t ms_of(int64_t ns)
{
    return ns > 0 ? (uint64_t)(ns / 1000000) : 0;
}

/* Quality as the OPC-style property our input reads; NULL for good. */
struct quality_prop {
    Spb__Payload__PropertySet set;
    Spb__Payload__PropertyValue value;
    Spb__Payload__PropertyValue *values[1];
    char *keys[1];
};

static Spb__Payload__PropertySet *quality_set(struct quality_prop *q, uint8_t quality)
{
    if (quality == MR_QUALITY_GOOD) {
        return NULL;
    }
    static char key[] = "Quality";
    spb__payload__property_set__init(&q->set);
    spb__payload__property_value__init(&q->value);
    q->value.has_type = true;
    q->value.type = DT_INT32;
    q->value.value_case = SPB__PAYLOAD__PROPERTY_VALUE__VALUE_INT_VALUE;
    q->value.int_value = quality == MR_QUALITY_UNCERTAIN ? 64 : 0;
    q->keys[0] = key;
    q->values[0] = &q->value;
    q->set.n_keys = 1;
    q->set.keys = q->keys;
    q->set.n_values = 1;
    q->set.values = q->values;
    return &q->set;
}

/* Only the member of v that datatype names is read. */
static void value_set(Spb__Payload__Metric *pm, uint32_t datatype, const union val *v, char *str)
{
    pm->has_datatype = true;
    pm->datatype = datatype;
    switch (datatype) {
    case DT_DOUBLE:
        pm->value_case = SPB__PAYLOAD__METRIC__VALUE_DOUBLE_VALUE;
        pm->double_value = v->f64;
        break;
    case DT_INT64:
        pm->value_case = SPB__PAYLOAD__METRIC__VALUE_LONG_VALUE;
        pm->long_value = (uint64_t)v->i64; /* two's complement, as the specification says */
        break;
    case DT_BOOLEAN:
        pm->value_case = SPB__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE;
        pm->boolean_value = v->b;
        break;
    default:
        pm->value_case = SPB__PAYLOAD__METRIC__VALUE_STRING_VALUE;
        pm->string_value = str;
        break;
    }
}

static uint8_t seq_next(struct mr_spb_edge *e)
{
    e->seq = (uint8_t)(e->seq + 1); /* wraps 255 -> 0 */
    return e->seq;
}

void mr_spb_edge_seq_undo(struct mr_spb_edge *e)
{
    e->seq = (uint8_t)(e->seq - 1);
}

uint8_t mr_spb_edge_seq(const struct mr_spb_edge *e)
{
    return e->seq;
}

long mr_spb_edge_nbirth(struct mr_spb_edge *e, uint64_t bdseq, int64_t now_ms, uint8_t *out,
                        size_t cap)
{
    static char bd_name[] = "bdSeq", rebirth_name[] = "Node Control/Rebirth";
    Spb__Payload__Metric bd = SPB__PAYLOAD__METRIC__INIT, rb = SPB__PAYLOAD__METRIC__INIT;
    bd.name = bd_name;
    bd.has_timestamp = rb.has_timestamp = true;
    bd.timestamp = rb.timestamp = (uint64_t)now_ms;
    bd.has_datatype = true;
    bd.datatype = DT_UINT64;
    bd.value_case = SPB__PAYLOAD__METRIC__VALUE_LONG_VALUE;
    bd.long_value = bdseq;
    rb.name = rebirth_name;
    value_set(&rb, DT_BOOLEAN, &(union val){.b = false}, NULL);
    Spb__Payload__Metric *ms[] = {&bd, &rb};
    Spb__Payload p = SPB__PAYLOAD__INIT;
    p.has_timestamp = p.has_seq = true;
    p.timestamp = (uint64_t)now_ms;
    p.seq = 0;
    p.n_metrics = 2;
    p.metrics = ms;
    long n = pack(&p, out, cap);
    if (n >= 0) {
        e->seq = 0;
        for (uint32_t i = 0; i < e->ndevices; i++) {
            e->devices[i].born = false;
        }
    }
    return n;
}

long mr_spb_edge_ndeath(uint64_t bdseq, int64_t now_ms, uint8_t *out, size_t cap)
{
    static char bd_name[] = "bdSeq";
    Spb__Payload__Metric bd = SPB__PAYLOAD__METRIC__INIT;
    bd.name = bd_name;
    bd.has_datatype = true;
    bd.datatype = DT_UINT64;
    bd.value_case = SPB__PAYLOAD__METRIC__VALUE_LONG_VALUE;
    bd.long_value = bdseq;
    Spb__Payload__Metric *ms[] = {&bd};
    Spb__Payload p = SPB__PAYLOAD__INIT;
    p.has_timestamp = true;
    p.timestamp = (uint64_t)now_ms;
    p.n_metrics = 1;
    p.metrics = ms;
    return pack(&p, out, cap);
}

long mr_spb_edge_dbirth(struct mr_spb_edge *e, uint32_t dev, int64_t now_ms, uint8_t *out,
                        size_t cap)
{
    struct device *d = &e->devices[dev];
    size_t n = d->nmetrics;
    Spb__Payload__Metric *pms = mr_calloc(n > 0 ? n : 1, sizeof(*pms));
    Spb__Payload__Metric **ptrs = mr_calloc(n > 0 ? n : 1, sizeof(*ptrs));
    struct quality_prop *qs = mr_calloc(n > 0 ? n : 1, sizeof(*qs));
    long rc = MR_ENOMEM;
    if (pms == NULL || ptrs == NULL || qs == NULL) {
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const struct metric *m = &e->metrics[d->metrics[i]];
        Spb__Payload__Metric *pm = &pms[i];
        spb__payload__metric__init(pm);
        pm->name = (char *)(uintptr_t)m->name; /* protobuf-c only reads it */
        pm->has_alias = true;
        pm->alias = m->alias;
        pm->has_timestamp = true;
        pm->timestamp = m->has_value ? ms_of(m->time_ns) : (uint64_t)now_ms;
        if (m->has_value) {
            value_set(pm, m->datatype, &m->v, m->str);
            pm->properties = quality_set(&qs[i], m->quality);
        } else {
            pm->has_datatype = true;
            pm->datatype = m->datatype;
            pm->has_is_null = pm->is_null = true;
        }
        ptrs[i] = pm;
    }
    Spb__Payload p = SPB__PAYLOAD__INIT;
    p.has_timestamp = p.has_seq = true;
    p.timestamp = (uint64_t)now_ms;
    p.seq = (uint8_t)(e->seq + 1);
    p.n_metrics = n;
    p.metrics = ptrs;
    rc = pack(&p, out, cap);
    if (rc >= 0) {
        seq_next(e);
        d->born = true;
    }
done:
    mr_free(pms);
    mr_free(ptrs);
    mr_free(qs);
    return rc;
}

long mr_spb_edge_ddata(struct mr_spb_edge *e, uint32_t dev, const struct mr_record *rec,
                       int64_t now_ms, uint8_t *out, size_t cap)
{
    const struct metric *m = metric_find(e, dev, rec->signal);
    if (m == NULL) {
        return MR_EINVAL; /* observe first */
    }
    /* A string value is borrowed from the record: protobuf-c needs it NUL-terminated, and the
     * record's bytes are not; the copy metric_keep made is (or the value is too long to keep). */
    if (rec->type == MR_VALUE_STRING && (m->str == NULL || m->str_len != rec->v.str.len)) {
        return MR_ETOOBIG;
    }
    struct quality_prop q;
    Spb__Payload__Metric pm = SPB__PAYLOAD__METRIC__INIT;
    pm.has_alias = true;
    pm.alias = m->alias;
    pm.has_timestamp = true;
    pm.timestamp = ms_of(rec->time_ns);
    union val v = {0};
    if (rec->type == MR_VALUE_F64) {
        v.f64 = rec->v.f64;
    } else if (rec->type == MR_VALUE_I64) {
        v.i64 = rec->v.i64;
    } else if (rec->type == MR_VALUE_BOOL) {
        v.b = rec->v.b;
    }
    value_set(&pm, m->datatype, &v, m->str);
    pm.properties = quality_set(&q, rec->quality);
    Spb__Payload__Metric *ms[] = {&pm};
    Spb__Payload p = SPB__PAYLOAD__INIT;
    p.has_timestamp = p.has_seq = true;
    p.timestamp = (uint64_t)now_ms;
    p.seq = (uint8_t)(e->seq + 1);
    p.n_metrics = 1;
    p.metrics = ms;
    long n = pack(&p, out, cap);
    if (n >= 0) {
        seq_next(e);
    }
    return n;
}

bool mr_spb_edge_is_rebirth(const uint8_t *payload, size_t len)
{
    Spb__Payload *p = spb__payload__unpack(NULL, len, payload);
    bool yes = false;
    for (size_t i = 0; p != NULL && i < p->n_metrics; i++) {
        const Spb__Payload__Metric *m = p->metrics[i];
        if (m->name != NULL && strcmp(m->name, "Node Control/Rebirth") == 0 &&
            m->value_case == SPB__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE && m->boolean_value) {
            yes = true;
        }
    }
    if (p != NULL) {
        spb__payload__free_unpacked(p, NULL);
    }
    return yes;
}
