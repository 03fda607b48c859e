/* A worker thread for one blocking client, handing results to the event loop.
 *
 * Blocking client libraries (libmodbus, libpq, a journal follower) never run on the loop
 * thread. Each such client gets its own worker thread that runs `fn` until asked to stop; `fn`
 * passes whole batches (opaque pointers) back with mr_worker_post(), which pushes them on a
 * single-producer single-consumer ring and wakes the loop with uv_async_send(). On the loop
 * thread, `deliver` is called for each batch in the order posted. Ownership of a posted item
 * passes to `deliver`.
 *
 * Back-pressure: mr_worker_post() returns MR_EAGAIN when the ring is full; the worker decides
 * whether to wait (mr_worker_wait_room) or drop with a counted error.
 */
#ifndef MILLRACE_WORKER_H
#define MILLRACE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct mr_worker;

/* Runs on the worker thread; should return soon after mr_worker_stopping() becomes true. */
typedef void (*mr_worker_fn)(struct mr_worker *worker, void *arg);
/* Runs on the loop thread, once per posted item, in order. Takes ownership of item. */
typedef void (*mr_worker_deliver_cb)(void *item, void *arg);

/* Start a worker on loop (called on the loop thread). ring_capacity bounds queued batches. */
int mr_worker_start(struct mr_worker **out, uv_loop_t *loop, mr_worker_fn fn,
                    mr_worker_deliver_cb deliver, void *arg, size_t ring_capacity);
/* Worker thread only. 0, or MR_EAGAIN when the ring is full. */
int mr_worker_post(struct mr_worker *worker, void *item);
/* Worker thread only: wait up to timeout_ms for room in the ring; true if there is room. */
bool mr_worker_wait_room(struct mr_worker *worker, int timeout_ms);
/* True once mr_worker_stop() was called; fn polls it. */
bool mr_worker_stopping(const struct mr_worker *worker);
/* Loop thread: ask fn to return, join the thread, deliver what is still queued, then close the
 * loop handle and free the worker (after the loop runs the close callback). NULL is a no-op. */
void mr_worker_stop(struct mr_worker *worker);

#endif
