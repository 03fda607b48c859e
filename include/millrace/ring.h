/* Single-producer single-consumer ring of pointers: the hand-off between threads.
 *
 * millrace's threading model (docs/ARCHITECTURE.md) moves work between threads only as whole
 * batches through rings like this one: one thread pushes, one thread pops, no lock, no
 * allocation after creation. Capacity is a power of two. Push/pop use acquire/release atomics,
 * and the two indices sit on separate cache lines so the threads do not false-share.
 */
#ifndef MILLRACE_RING_H
#define MILLRACE_RING_H

#include <stdbool.h>
#include <stddef.h>

struct mr_ring;

/* capacity is rounded up to a power of two (>= 2, <= 2^24). */
int mr_ring_create(struct mr_ring **out, size_t capacity);
/* Items still queued are not freed: the ring does not own them. */
void mr_ring_destroy(struct mr_ring *ring);
/* Producer thread only. Returns false when the ring is full (the caller applies back-pressure). */
bool mr_ring_push(struct mr_ring *ring, void *item);
/* Consumer thread only. Returns NULL when empty. */
void *mr_ring_pop(struct mr_ring *ring);
/* Approximate from any thread; exact from the consumer thread when the producer is idle. */
size_t mr_ring_count(const struct mr_ring *ring);
size_t mr_ring_capacity(const struct mr_ring *ring);

#endif
