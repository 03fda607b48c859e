/* Keyed state map: see keymap.h. Open addressing with linear probing; deletion shifts later
 * slots of the same run back (no tombstones, so probe lengths stay short under churn). */
#include <string.h>

#include "engine/keymap.h"
#include "millrace/alloc.h"
#include "millrace/error.h"

#define MIN_SLOTS 16u

#define mix mr_keymap_mix

static inline uint64_t slot_make(uint64_t h, uint32_t index)
{
    return (h & 0xffffffff00000000ull) | (uint64_t)(index + 1);
}

static inline uint32_t slot_index(uint64_t s)
{
    return (uint32_t)s - 1;
}

int mr_keymap_init(struct mr_keymap *m, size_t value_size, uint32_t max_entries)
{
    memset(m, 0, sizeof(*m));
    if (max_entries == 0 || max_entries > 0x7fffffffu) {
        return MR_EINVAL;
    }
    m->value_size = value_size;
    m->stride = (8 + value_size + 7) & ~(size_t)7;
    m->max = max_entries;
    m->slots = mr_calloc(MIN_SLOTS, sizeof(uint64_t));
    if (m->slots == NULL) {
        return MR_ENOMEM;
    }
    m->mask = MIN_SLOTS - 1;
    return 0;
}

void mr_keymap_fini(struct mr_keymap *m)
{
    mr_free(m->slots);
    mr_free(m->entries);
    memset(m, 0, sizeof(*m));
}

void mr_keymap_clear(struct mr_keymap *m)
{
    memset(m->slots, 0, ((size_t)m->mask + 1) * sizeof(uint64_t));
    m->count = 0;
}

/* Slot holding key, or the empty slot where it would go (*found says which). */
static uint32_t probe(const struct mr_keymap *m, uint64_t key, uint64_t h, int *found)
{
    uint32_t i = (uint32_t)(h >> 32) & m->mask;
    for (;;) {
        uint64_t s = m->slots[i];
        if (s == 0) {
            *found = 0;
            return i;
        }
        if ((s ^ h) >> 32 == 0 && mr_keymap_key_at(m, slot_index(s)) == key) {
            *found = 1;
            return i;
        }
        i = (i + 1) & m->mask;
    }
}

void *mr_keymap_find(const struct mr_keymap *m, uint64_t key)
{
    int found;
    uint32_t i = probe(m, key, mix(key), &found);
    return found ? mr_keymap_value_at(m, slot_index(m->slots[i])) : NULL;
}

static int grow_slots(struct mr_keymap *m)
{
    size_t n = ((size_t)m->mask + 1) * 2;
    uint64_t *slots = mr_calloc(n, sizeof(uint64_t));
    if (slots == NULL) {
        return MR_ENOMEM;
    }
    uint32_t mask = (uint32_t)(n - 1);
    for (uint32_t e = 0; e < m->count; e++) {
        uint64_t h = mix(mr_keymap_key_at(m, e));
        uint32_t i = (uint32_t)(h >> 32) & mask;
        while (slots[i] != 0) {
            i = (i + 1) & mask;
        }
        slots[i] = slot_make(h, e);
    }
    mr_free(m->slots);
    m->slots = slots;
    m->mask = mask;
    return 0;
}

static int grow_entries(struct mr_keymap *m)
{
    uint32_t cap = m->cap != 0 ? m->cap * 2 : 64;
    if (cap > m->max) {
        cap = m->max;
    }
    uint8_t *e = mr_realloc(m->entries, (size_t)cap * m->stride);
    if (e == NULL) {
        return MR_ENOMEM;
    }
    m->entries = e;
    m->cap = cap;
    return 0;
}

int mr_keymap_upsert(struct mr_keymap *m, uint64_t key, void **value, int *inserted)
{
    uint64_t h = mix(key);
    int found;
    uint32_t i = probe(m, key, h, &found);
    if (found) {
        *value = mr_keymap_value_at(m, slot_index(m->slots[i]));
        *inserted = 0;
        return 0;
    }
    if (m->count >= m->max) {
        return MR_ETOOBIG;
    }
    if (m->count == m->cap) {
        int rc = grow_entries(m);
        if (rc != 0) {
            return rc;
        }
    }
    if (((size_t)m->count + 1) * 2 > (size_t)m->mask + 1) {
        int rc = grow_slots(m);
        if (rc != 0) {
            return rc;
        }
        i = probe(m, key, h, &found);
    }
    uint32_t e = m->count++;
    uint8_t *entry = m->entries + (size_t)e * m->stride;
    memcpy(entry, &key, 8);
    memset(entry + 8, 0, m->stride - 8);
    m->slots[i] = slot_make(h, e);
    *value = entry + 8;
    *inserted = 1;
    return 0;
}

/* Slot currently pointing at entry e. */
static uint32_t slot_of_entry(const struct mr_keymap *m, uint32_t e)
{
    int found;
    return probe(m, mr_keymap_key_at(m, e), mix(mr_keymap_key_at(m, e)), &found);
}

void mr_keymap_remove(struct mr_keymap *m, uint64_t key)
{
    int found;
    uint32_t i = probe(m, key, mix(key), &found);
    if (!found) {
        return;
    }
    uint32_t e = slot_index(m->slots[i]);
    /* Backward-shift deletion: move later members of the run into the hole when their home
     * slot is at or before it (cyclically). */
    uint32_t hole = i;
    uint32_t j = (i + 1) & m->mask;
    while (m->slots[j] != 0) {
        uint32_t home = (uint32_t)(m->slots[j] >> 32) & m->mask;
        if (((j - home) & m->mask) >= ((j - hole) & m->mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
        j = (j + 1) & m->mask;
    }
    m->slots[hole] = 0;
    /* Keep entries dense: the last one moves into e. */
    uint32_t last = m->count - 1;
    if (e != last) {
        uint32_t s = slot_of_entry(m, last);
        memcpy(m->entries + (size_t)e * m->stride, m->entries + (size_t)last * m->stride,
               m->stride);
        m->slots[s] = (m->slots[s] & 0xffffffff00000000ull) | (uint64_t)(e + 1);
    }
    m->count--;
}

size_t mr_keymap_memory(const struct mr_keymap *m)
{
    return ((size_t)m->mask + 1) * sizeof(uint64_t) + (size_t)m->cap * m->stride;
}
