/* A hash map from 64-bit keys to fixed-size entries, for keyed operator state.
 *
 * Entries live densely in one array (entry i at entries + i * stride), so iterating state (for
 * snapshots, idle eviction) is a linear walk and per-key memory is the entry plus one 8-byte
 * index slot at a load factor of at most 1/2. The index slot holds (upper 32 bits of the mixed
 * key, entry number + 1), so most probes are answered without touching the entry.
 *
 * Pointers to entries are valid until the next insert or remove (both may move entries).
 * Keys are caller-made, e.g. (uint64_t)asset << 32 | signal; a key of any value is allowed.
 * The map is not thread-safe: one operator instance, one thread.
 */
#ifndef MR_ENGINE_KEYMAP_H
#define MR_ENGINE_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

struct mr_keymap {
    uint64_t *slots; /* 0 = empty */
    uint32_t mask;   /* slot count - 1 */
    uint8_t *entries;
    uint32_t count;
    uint32_t cap;      /* entries allocated */
    uint32_t max;      /* hard cap on entries */
    size_t value_size; /* caller's bytes per entry */
    size_t stride;     /* 8-byte key + value, rounded to 8 */
};

/* value_size: bytes of caller state per key; max_entries: hard cap (inserts beyond it fail
 * with MR_ETOOBIG). */
int mr_keymap_init(struct mr_keymap *m, size_t value_size, uint32_t max_entries);
void mr_keymap_fini(struct mr_keymap *m);
void mr_keymap_clear(struct mr_keymap *m);

/* splitmix64 finaliser: keys built from small ids need mixing before they index slots. */
static inline uint64_t mr_keymap_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Start loading the index slot of key into the cache: a caller walking a batch prefetches a few
 * records ahead, so large maps (a million keys) cost less than one cache miss per lookup. */
static inline void mr_keymap_prefetch(const struct mr_keymap *m, uint64_t key)
{
    __builtin_prefetch(&m->slots[(uint32_t)(mr_keymap_mix(key) >> 32) & m->mask]);
}

/* Value of key, or NULL. */
void *mr_keymap_find(const struct mr_keymap *m, uint64_t key);
/* Value of key, inserting a zeroed one when absent (*inserted says which). Returns 0,
 * MR_ETOOBIG (cap reached) or MR_ENOMEM; *value is written only on success. */
int mr_keymap_upsert(struct mr_keymap *m, uint64_t key, void **value, int *inserted);
/* Remove key (no-op when absent). The last entry moves into its place. */
void mr_keymap_remove(struct mr_keymap *m, uint64_t key);

static inline uint32_t mr_keymap_count(const struct mr_keymap *m)
{
    return m->count;
}
/* Entry i (0 <= i < count): its key and value. Removal during a walk: walk backwards. */
static inline uint64_t mr_keymap_key_at(const struct mr_keymap *m, uint32_t i)
{
    return *(const uint64_t *)(const void *)(m->entries + (size_t)i * m->stride);
}
static inline void *mr_keymap_value_at(const struct mr_keymap *m, uint32_t i)
{
    return m->entries + (size_t)i * m->stride + 8;
}
/* Bytes of memory held (entries + index), for metrics and the state-size benchmark. */
size_t mr_keymap_memory(const struct mr_keymap *m);

#endif
