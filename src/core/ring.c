#include "millrace/ring.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "millrace/alloc.h"
#include "millrace/error.h"

#define CACHE_LINE   64
#define MAX_CAPACITY ((size_t)1 << 24)

struct mr_ring {
    /* Written by the producer, read by the consumer. */
    alignas(CACHE_LINE) atomic_size_t head;
    /* Producer's cached copy of tail: saves a shared load on most pushes. */
    size_t tail_cache;
    /* Written by the consumer, read by the producer. */
    alignas(CACHE_LINE) atomic_size_t tail;
    size_t head_cache;
    alignas(CACHE_LINE) size_t mask;
    void **slots;
};

int mr_ring_create(struct mr_ring **out, size_t capacity)
{
    if (capacity < 2 || capacity > MAX_CAPACITY) {
        return MR_EINVAL;
    }
    size_t cap = 2;
    while (cap < capacity) {
        cap <<= 1;
    }
    /* aligned_alloc would bypass the fault-injection wrapper; mr_malloc's 16-byte alignment is
     * enough for correctness, the padding keeps the indices apart. */
    struct mr_ring *ring = mr_calloc(1, sizeof(*ring));
    if (ring == NULL) {
        return MR_ENOMEM;
    }
    ring->slots = mr_calloc(cap, sizeof(void *));
    if (ring->slots == NULL) {
        mr_free(ring);
        return MR_ENOMEM;
    }
    ring->mask = cap - 1;
    atomic_init(&ring->head, 0);
    atomic_init(&ring->tail, 0);
    *out = ring;
    return 0;
}

void mr_ring_destroy(struct mr_ring *ring)
{
    if (ring == NULL) {
        return;
    }
    mr_free(ring->slots);
    mr_free(ring);
}

bool mr_ring_push(struct mr_ring *ring, void *item)
{
    size_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
    if (head - ring->tail_cache > ring->mask) {
        ring->tail_cache = atomic_load_explicit(&ring->tail, memory_order_acquire);
        if (head - ring->tail_cache > ring->mask) {
            return false;
        }
    }
    ring->slots[head & ring->mask] = item;
    atomic_store_explicit(&ring->head, head + 1, memory_order_release);
    return true;
}

void *mr_ring_pop(struct mr_ring *ring)
{
    size_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
    if (tail == ring->head_cache) {
        ring->head_cache = atomic_load_explicit(&ring->head, memory_order_acquire);
        if (tail == ring->head_cache) {
            return NULL;
        }
    }
    void *item = ring->slots[tail & ring->mask];
    atomic_store_explicit(&ring->tail, tail + 1, memory_order_release);
    return item;
}

size_t mr_ring_count(const struct mr_ring *ring)
{
    size_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
    size_t tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
    return head - tail;
}

size_t mr_ring_capacity(const struct mr_ring *ring)
{
    return ring->mask + 1;
}
