/* Output de-duplication after a crash replay: see dedupe.h. */
#include <string.h>

#include "engine/dedupe.h"
#include "millrace/error.h"

int mr_dedupe_init(struct mr_dedupe *d, uint32_t max_records)
{
    memset(d, 0, sizeof(*d));
    return mr_keymap_init(&d->seen, sizeof(uint32_t), max_records);
}

void mr_dedupe_fini(struct mr_dedupe *d)
{
    mr_keymap_fini(&d->seen);
}

int mr_dedupe_add(struct mr_dedupe *d, uint64_t identity)
{
    void *v;
    int inserted;
    int rc = mr_keymap_upsert(&d->seen, identity, &v, &inserted);
    if (rc != 0) {
        return rc;
    }
    uint32_t c;
    memcpy(&c, v, sizeof(c));
    c++;
    memcpy(v, &c, sizeof(c));
    d->pending++;
    return 0;
}

bool mr_dedupe_take(struct mr_dedupe *d, uint64_t identity)
{
    void *v = mr_keymap_find(&d->seen, identity);
    if (v == NULL) {
        return false;
    }
    uint32_t c;
    memcpy(&c, v, sizeof(c));
    if (c <= 1) {
        mr_keymap_remove(&d->seen, identity);
    } else {
        c--;
        memcpy(v, &c, sizeof(c));
    }
    d->pending--;
    d->dropped++;
    return true;
}

uint64_t mr_dedupe_reset(struct mr_dedupe *d)
{
    uint64_t left = d->pending;
    mr_keymap_clear(&d->seen);
    d->pending = 0;
    d->dropped = 0;
    return left;
}

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

uint64_t mr_record_identity(const struct mr_record *r, const struct mr_names *names,
                            struct mr_name_hashes *cache)
{
    uint64_t h = mr_name_hash(cache, names, r->asset);
    h = mix(h, mr_name_hash(cache, names, r->signal));
    h = mix(h, (uint64_t)r->time_ns);
    h = mix(h, ((uint64_t)r->type << 8) | r->quality);
    uint64_t v = 0;
    switch (r->type) {
    case MR_VALUE_F64:
        memcpy(&v, &r->v.f64, sizeof(v));
        break;
    case MR_VALUE_I64:
        v = (uint64_t)r->v.i64;
        break;
    case MR_VALUE_BOOL:
        v = r->v.b;
        break;
    case MR_VALUE_STRING:
        v = mr_hash_bytes(r->v.str.ptr, r->v.str.len);
        break;
    case MR_VALUE_SAMPLES:
        v = mr_hash_bytes(r->v.samples.data, (size_t)r->v.samples.n * sizeof(float));
        break;
    default:
        break;
    }
    h = mix(h, v);
    for (uint16_t t = 0; t < r->ntags && t < MR_RECORD_MAX_TAGS; t++) {
        h = mix(h, mr_name_hash(cache, names, r->tags[t].key));
        h = mix(h, mr_hash_bytes(r->tags[t].value.ptr, r->tags[t].value.len));
    }
    return h;
}
