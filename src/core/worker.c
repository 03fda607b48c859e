#include "millrace/worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "millrace/alloc.h"
#include "millrace/error.h"
#include "millrace/ring.h"

struct mr_worker {
    uv_async_t wake; /* first member: the close callback recovers the worker from the handle */
    uv_loop_t *loop;
    struct mr_ring *ring;
    mr_worker_fn fn;
    mr_worker_deliver_cb deliver;
    void *arg;
    pthread_t thread;
    atomic_bool stopping;
    /* The loop signals room after draining; the worker waits on it when the ring is full. */
    pthread_mutex_t room_lock;
    pthread_cond_t room_cond;
};

static void drain(struct mr_worker *w)
{
    void *item;
    while ((item = mr_ring_pop(w->ring)) != NULL) {
        w->deliver(item, w->arg);
    }
    pthread_mutex_lock(&w->room_lock);
    pthread_cond_signal(&w->room_cond);
    pthread_mutex_unlock(&w->room_lock);
}

static void on_wake(uv_async_t *handle)
{
    drain((struct mr_worker *)handle);
}

static void *thread_main(void *arg)
{
    struct mr_worker *w = arg;
    w->fn(w, w->arg);
    return NULL;
}

static void on_closed(uv_handle_t *handle)
{
    struct mr_worker *w = (struct mr_worker *)handle;
    pthread_mutex_destroy(&w->room_lock);
    pthread_cond_destroy(&w->room_cond);
    mr_ring_destroy(w->ring);
    mr_free(w);
}

int mr_worker_start(struct mr_worker **out, uv_loop_t *loop, mr_worker_fn fn,
                    mr_worker_deliver_cb deliver, void *arg, size_t ring_capacity)
{
    struct mr_worker *w = mr_calloc(1, sizeof(*w));
    if (w == NULL) {
        return MR_ENOMEM;
    }
    int rc = mr_ring_create(&w->ring, ring_capacity);
    if (rc != 0) {
        mr_free(w);
        return rc;
    }
    w->loop = loop;
    w->fn = fn;
    w->deliver = deliver;
    w->arg = arg;
    atomic_init(&w->stopping, false);
    pthread_mutex_init(&w->room_lock, NULL);
    pthread_cond_init(&w->room_cond, NULL);
    if (uv_async_init(loop, &w->wake, on_wake) != 0) {
        rc = MR_ESYS;
        goto fail;
    }
    if (pthread_create(&w->thread, NULL, thread_main, w) != 0) {
        /* The handle is live: the loop frees the worker in the close callback. */
        uv_close((uv_handle_t *)&w->wake, on_closed);
        return MR_ESYS;
    }
    *out = w;
    return 0;
fail:
    pthread_mutex_destroy(&w->room_lock);
    pthread_cond_destroy(&w->room_cond);
    mr_ring_destroy(w->ring);
    mr_free(w);
    return rc;
}

int mr_worker_post(struct mr_worker *w, void *item)
{
    if (!mr_ring_push(w->ring, item)) {
        uv_async_send(&w->wake); /* make sure the loop is draining */
        return MR_EAGAIN;
    }
    uv_async_send(&w->wake); /* coalesced by libuv: cheap when the loop is already awake */
    return 0;
}

bool mr_worker_wait_room(struct mr_worker *w, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->room_lock);
    bool room = mr_ring_count(w->ring) < mr_ring_capacity(w->ring);
    while (!room && !atomic_load(&w->stopping)) {
        if (pthread_cond_timedwait(&w->room_cond, &w->room_lock, &deadline) != 0) {
            break;
        }
        room = mr_ring_count(w->ring) < mr_ring_capacity(w->ring);
    }
    room = mr_ring_count(w->ring) < mr_ring_capacity(w->ring);
    pthread_mutex_unlock(&w->room_lock);
    return room;
}

bool mr_worker_stopping(const struct mr_worker *w)
{
    return atomic_load(&((struct mr_worker *)w)->stopping);
}

void mr_worker_stop(struct mr_worker *w)
{
    if (w == NULL) {
        return;
    }
    atomic_store(&w->stopping, true);
    pthread_mutex_lock(&w->room_lock);
    pthread_cond_broadcast(&w->room_cond);
    pthread_mutex_unlock(&w->room_lock);
    pthread_join(w->thread, NULL);
    drain(w); /* nothing posted is lost: deliver what the thread left behind */
    uv_close((uv_handle_t *)&w->wake, on_closed);
}
