/* Cached stable hashes of names: see name_hash.h. */
#include <string.h>

#include "engine/name_hash.h"
#include "millrace/alloc.h"

uint64_t mr_hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h != 0 ? h : 1;
}

uint64_t mr_name_hash(struct mr_name_hashes *c, const struct mr_names *names, mr_name_id id)
{
    if (id == 0) {
        return 0;
    }
    if (id < c->cap && c->h[id] != 0) {
        return c->h[id];
    }
    size_t len = 0;
    const char *s = mr_names_str(names, id, &len);
    if (s == NULL) {
        return 0;
    }
    uint64_t h = mr_hash_bytes(s, len);
    if (id >= c->cap) {
        size_t cap = c->cap != 0 ? c->cap : 256;
        while (cap <= id) {
            cap *= 2;
        }
        uint64_t *nh = mr_realloc(c->h, cap * sizeof(uint64_t));
        if (nh == NULL) {
            return h;
        }
        memset(nh + c->cap, 0, (cap - c->cap) * sizeof(uint64_t));
        c->h = nh;
        c->cap = cap;
    }
    c->h[id] = h;
    return h;
}

void mr_name_hashes_fini(struct mr_name_hashes *c)
{
    mr_free(c->h);
    c->h = NULL;
    c->cap = 0;
}
