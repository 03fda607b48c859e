/* Interned names.
 *
 * Three structures, all owned by struct mr_names:
 *
 *   slots    open-addressing hash table of (hash, id), linear probing, load factor <= 1/2,
 *            doubled under the mutex. id 0 marks an empty slot.
 *   entries  id -> (string pointer, length). A two-level table: a fixed top-level array of
 *            ENTRY_LEVELS chunk pointers, chunk k holding ENTRY_CHUNK0 << k entries. Chunks are
 *            allocated on demand and never move, so 32 pointers cover every possible id and
 *            readers never see a reallocated array.
 *   arena    NUL-terminated copies of the names in blocks that are never reallocated.
 *
 * Writers (mr_names_intern of a new name) hold the mutex. Readers take no lock:
 *   - mr_names_str: an entry is fully written before `count` is published with a release store,
 *     and readers check the id against an acquire load of `count`.
 *   - lookups (mr_names_find, and mr_names_intern of a known name, the common case on the hot
 *     path): each slot is one atomic 64-bit word (upper half of the hash, id), stored with
 *     release after its entry is written; the table pointer is published with release after a
 *     resize has filled the new table. Old tables are retired, not freed, until destroy (their
 *     total is at most the size of the current one), so a reader still probing an old table
 *     reads valid memory; it may miss a name inserted after the switch, which only sends
 *     mr_names_intern to its locked slow path, where the lookup is repeated.
 */
#include "millrace/names.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/error.h"

#define ENTRY_CHUNK0_BITS 6u
#define ENTRY_CHUNK0      (1u << ENTRY_CHUNK0_BITS)
/* Chunk k holds 64 << k entries; 27 chunks already exceed 2^32 ids. */
#define ENTRY_LEVELS      32u
#define SLOTS_INITIAL     64u
/* Arena blocks: large enough that most tables need a handful, small enough not to waste much. */
#define ARENA_BLOCK       (64u * 1024u)

struct name_entry {
    const char *str;
    uint32_t len;
};

/* A slot is (upper 32 bits of the hash) << 32 | id; 0 = empty. One word, so readers load it
 * atomically without a lock. The slot index also comes from those upper 32 bits, so a resize
 * places every word from the word alone, without re-hashing its name. */
struct slot_table {
    struct slot_table *retired; /* the table this one replaced (freed at destroy) */
    uint32_t mask;              /* slot count - 1; slot count is a power of two */
    _Atomic uint64_t slots[];
};

struct arena_block {
    struct arena_block *next;
    char data[];
};

struct mr_names {
    pthread_mutex_t lock;
    uint32_t max_names;
    size_t max_bytes;
    size_t used_bytes; /* name bytes plus their NULs, counted against max_bytes */

    _Atomic(struct slot_table *) table;

    struct name_entry *chunks[ENTRY_LEVELS];
    _Atomic uint32_t count; /* ids 1..count are published */

    struct arena_block *blocks;
    char *arena_pos;
    size_t arena_left;
};

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64u - r));
}

/* Final avalanche (the splitmix64 finaliser): every input bit affects every output bit, which
 * linear probing with a power-of-two mask needs. */
static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Word-at-a-time multiply-rotate hash. Names are short (tens of bytes), so a cheap per-word
 * step plus one strong finaliser beats byte-at-a-time FNV-1a. */
static uint64_t hash_bytes(const char *s, size_t len)
{
    const uint64_t k1 = 0x9e3779b97f4a7c15ull;
    const uint64_t k2 = 0xc2b2ae3d27d4eb4full;
    uint64_t h = 0x243f6a8885a308d3ull ^ ((uint64_t)len * k1);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = rotl64(h ^ (w * k2), 31) * k1;
    }
    if (i < len) {
        uint64_t w = 0;
        memcpy(&w, s + i, len - i);
        h = rotl64(h ^ (w * k2), 31) * k1;
    }
    return mix64(h);
}

/* Chunk and offset of 0-based entry index i: chunk k covers [64(2^k - 1), 64(2^(k+1) - 1)). */
static inline void entry_locate(uint32_t i, uint32_t *chunk, uint32_t *off)
{
    uint64_t j = (uint64_t)i + ENTRY_CHUNK0;
    uint32_t top = 63u - (uint32_t)__builtin_clzll(j);
    *chunk = top - ENTRY_CHUNK0_BITS;
    *off = (uint32_t)(j - ((uint64_t)ENTRY_CHUNK0 << *chunk));
}

static inline const struct name_entry *entry_get(const struct mr_names *names, mr_name_id id)
{
    uint32_t chunk, off;
    entry_locate(id - 1, &chunk, &off);
    return &names->chunks[chunk][off];
}

static struct slot_table *table_new(uint32_t n)
{
    struct slot_table *t = mr_calloc(1, sizeof(*t) + (size_t)n * sizeof(t->slots[0]));
    if (t != NULL) {
        t->mask = n - 1;
        for (uint32_t i = 0; i < n; i++) {
            atomic_init(&t->slots[i], 0);
        }
    }
    return t;
}

int mr_names_create(struct mr_names **out, uint32_t max_names, size_t max_bytes)
{
    int rc = MR_ENOMEM;
    struct mr_names *names = NULL;
    struct slot_table *t = NULL;

    if (out == NULL || max_names == 0 || max_bytes == 0) {
        return MR_EINVAL;
    }
    names = mr_calloc(1, sizeof(*names));
    if (names == NULL) {
        goto fail;
    }
    t = table_new(SLOTS_INITIAL);
    if (t == NULL) {
        goto fail;
    }
    if (pthread_mutex_init(&names->lock, NULL) != 0) {
        rc = MR_ESYS;
        goto fail;
    }
    atomic_init(&names->table, t);
    names->max_names = max_names;
    names->max_bytes = max_bytes;
    atomic_init(&names->count, 0);
    *out = names;
    return 0;

fail:
    mr_free(t);
    mr_free(names);
    return rc;
}

void mr_names_destroy(struct mr_names *names)
{
    if (names == NULL) {
        return;
    }
    for (uint32_t k = 0; k < ENTRY_LEVELS; k++) {
        mr_free(names->chunks[k]);
    }
    struct arena_block *b = names->blocks;
    while (b != NULL) {
        struct arena_block *next = b->next;
        mr_free(b);
        b = next;
    }
    struct slot_table *t = atomic_load_explicit(&names->table, memory_order_relaxed);
    while (t != NULL) {
        struct slot_table *older = t->retired;
        mr_free(t);
        t = older;
    }
    pthread_mutex_destroy(&names->lock);
    mr_free(names);
}

static inline uint64_t slot_word(uint64_t hash, mr_name_id id)
{
    return (hash & 0xffffffff00000000ull) | id;
}

/* First slot to probe for a hash (or for a slot word: both carry the same upper half). */
static inline uint32_t slot_home(uint64_t hash_or_word, const struct slot_table *t)
{
    return (uint32_t)(hash_or_word >> 32) & t->mask;
}

/* Lock-free: the index of the slot holding s, or of the empty slot where it belongs, in t.
 * *word gets what that slot held when it was examined (0 when s was not found), so a caller
 * never re-reads a slot that another thread may fill with a different name meanwhile. */
static uint32_t slot_probe(const struct mr_names *names, const struct slot_table *t, uint64_t hash,
                           const char *s, size_t len, uint64_t *word)
{
    uint32_t i = slot_home(hash, t);
    for (;;) {
        uint64_t w =
            atomic_load_explicit(&((struct slot_table *)t)->slots[i], memory_order_acquire);
        mr_name_id id = (mr_name_id)w;
        if (id == 0) {
            *word = 0;
            return i;
        }
        if ((w ^ hash) >> 32 == 0) {
            const struct name_entry *e = entry_get(names, id);
            if (e->len == len && memcmp(e->str, s, len) == 0) {
                *word = w;
                return i;
            }
        }
        i = (i + 1) & t->mask;
    }
}

/* Lock-free lookup: id of s, or 0. */
static mr_name_id lookup(const struct mr_names *names, uint64_t hash, const char *s, size_t len)
{
    const struct slot_table *t =
        atomic_load_explicit(&((struct mr_names *)names)->table, memory_order_acquire);
    uint64_t w;
    slot_probe(names, t, hash, s, len, &w);
    return (mr_name_id)w;
}

/* Caller holds the lock. Doubles the slot table, publishing the full new table at once and
 * retiring the old one; leaves everything unchanged on failure. */
static int slots_grow(struct mr_names *names)
{
    struct slot_table *old = atomic_load_explicit(&names->table, memory_order_relaxed);
    uint32_t old_n = old->mask + 1;
    if (old_n > UINT32_MAX / 2) {
        return MR_ETOOBIG; /* 2^30 names: far beyond any plant, and beyond 32-bit slot indices */
    }
    uint32_t new_n = old_n * 2;
    struct slot_table *fresh = table_new(new_n);
    if (fresh == NULL) {
        return MR_ENOMEM;
    }
    for (uint32_t i = 0; i < old_n; i++) {
        uint64_t w = atomic_load_explicit(&old->slots[i], memory_order_relaxed);
        if ((mr_name_id)w == 0) {
            continue;
        }
        uint32_t j = slot_home(w, fresh);
        while (atomic_load_explicit(&fresh->slots[j], memory_order_relaxed) != 0) {
            j = (j + 1) & fresh->mask;
        }
        atomic_store_explicit(&fresh->slots[j], w, memory_order_relaxed);
    }
    fresh->retired = old;
    atomic_store_explicit(&names->table, fresh, memory_order_release);
    return 0;
}

/* Caller holds the lock. Copies s into the arena; returns NULL on allocation failure. */
static char *arena_copy(struct mr_names *names, const char *s, size_t len)
{
    size_t need = len + 1;
    if (need > names->arena_left) {
        size_t size = ARENA_BLOCK;
        if (size > names->max_bytes) {
            size = names->max_bytes; /* small tables: do not reserve far beyond their cap */
        }
        if (size < need) {
            size = need;
        }
        struct arena_block *b = mr_malloc(sizeof(*b) + size);
        if (b == NULL) {
            return NULL;
        }
        /* The tail of the previous block is abandoned; at most one name's worth per block. */
        b->next = names->blocks;
        names->blocks = b;
        names->arena_pos = b->data;
        names->arena_left = size;
    }
    char *p = names->arena_pos;
    memcpy(p, s, len);
    p[len] = '\0';
    names->arena_pos += need;
    names->arena_left -= need;
    return p;
}

/* Caller holds the lock and has checked the caps; the lookup failed and `slot` is empty. */
static int insert_locked(struct mr_names *names, uint64_t hash, const char *s, size_t len,
                         mr_name_id *id)
{
    uint32_t count = atomic_load_explicit(&names->count, memory_order_relaxed);
    uint32_t chunk, off;

    /* Keep the load factor at or below 1/2 so probe sequences stay short. */
    struct slot_table *cur = atomic_load_explicit(&names->table, memory_order_relaxed);
    if ((uint64_t)(count + 1) * 2 > (uint64_t)cur->mask + 1) {
        int rc = slots_grow(names);
        if (rc != 0) {
            return rc;
        }
    }
    entry_locate(count, &chunk, &off);
    if (names->chunks[chunk] == NULL) {
        struct name_entry *c = mr_calloc((size_t)ENTRY_CHUNK0 << chunk, sizeof(*c));
        if (c == NULL) {
            return MR_ENOMEM;
        }
        names->chunks[chunk] = c;
    }
    char *copy = arena_copy(names, s, len);
    if (copy == NULL) {
        return MR_ENOMEM;
    }
    names->used_bytes += len + 1;

    mr_name_id new_id = count + 1;
    struct name_entry *e = &names->chunks[chunk][off];
    e->str = copy;
    e->len = (uint32_t)len;
    struct slot_table *t = atomic_load_explicit(&names->table, memory_order_relaxed);
    uint64_t found;
    uint32_t slot = slot_probe(names, t, hash, s, len, &found);
    assert(found == 0);
    /* Publish to lookups: a reader that acquire-loads this slot sees the entry written above. */
    atomic_store_explicit(&t->slots[slot], slot_word(hash, new_id), memory_order_release);
    /* Publish to mr_names_str: readers that acquire-load count >= new_id see the entry. */
    atomic_store_explicit(&names->count, new_id, memory_order_release);
    *id = new_id;
    return 0;
}

int mr_names_intern(struct mr_names *names, const char *s, size_t len, mr_name_id *id)
{
    int rc;

    if (names == NULL || s == NULL || id == NULL || len == 0 || memchr(s, '\0', len) != NULL) {
        return MR_EINVAL;
    }
    uint64_t hash = hash_bytes(s, len);
    mr_name_id known = lookup(names, hash, s, len); /* the hot path: no lock */
    if (known != 0) {
        *id = known;
        return 0;
    }

    pthread_mutex_lock(&names->lock);
    known = lookup(names, hash, s, len); /* another thread may have just added it */
    if (known != 0) {
        *id = known;
        rc = 0;
        goto out;
    }
    uint32_t count = atomic_load_explicit(&names->count, memory_order_relaxed);
    if (count >= names->max_names || len > UINT32_MAX ||
        len + 1 > names->max_bytes - names->used_bytes) {
        rc = MR_ETOOBIG;
        goto out;
    }
    rc = insert_locked(names, hash, s, len, id);

out:
    pthread_mutex_unlock(&names->lock);
    return rc;
}

mr_name_id mr_names_find(const struct mr_names *names, const char *s, size_t len)
{
    if (names == NULL || s == NULL || len == 0) {
        return 0;
    }
    return lookup(names, hash_bytes(s, len), s, len);
}

const char *mr_names_str(const struct mr_names *names, mr_name_id id, size_t *len)
{
    if (names == NULL || id == 0 ||
        id > atomic_load_explicit(&((struct mr_names *)names)->count, memory_order_acquire)) {
        return NULL;
    }
    const struct name_entry *e = entry_get(names, id);
    if (len != NULL) {
        *len = e->len;
    }
    return e->str;
}

uint32_t mr_names_count(const struct mr_names *names)
{
    if (names == NULL) {
        return 0;
    }
    return atomic_load_explicit(&((struct mr_names *)names)->count, memory_order_acquire);
}

int mr_names_intern_memo(struct mr_names *names, struct mr_names_memo *memo, const char *s,
                         size_t len, mr_name_id *id)
{
    if (memo == NULL || len == 0) {
        return mr_names_intern(names, s, len, id);
    }
    uint32_t slot = ((uint32_t)len * 31u + (uint8_t)s[0] + (uint8_t)s[len - 1] * 7u +
                     (uint8_t)s[len / 2] * 13u) &
                    (MR_NAMES_MEMO_SLOTS - 1);
    mr_name_id cached = memo->id[slot];
    if (cached != 0) {
        size_t have = 0;
        const char *str = mr_names_str(names, cached, &have);
        if (str != NULL && have == len && memcmp(str, s, len) == 0) {
            *id = cached;
            return 0;
        }
    }
    int rc = mr_names_intern(names, s, len, id);
    if (rc == 0) {
        memo->id[slot] = *id;
    }
    return rc;
}
