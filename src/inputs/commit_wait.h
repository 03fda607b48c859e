/* Answers held until the journal commits, for inputs that acknowledge their source (the HTTP
 * ingest and `receive` inputs): each answer waits in a FIFO with the number of the emit call
 * that carried its records, and is released in order once the host's `durable` reaches it.
 *
 * A 1 ms timer runs only while something waits (never a repeating 0 ms timer: that would starve
 * the loop). A host without `durable` (unit tests) releases at once. Stopping gives what waits
 * a grace period to become durable; what is still waiting then is released as not durable
 * (the input answers "busy, send again"). All calls on the loop thread.
 */
#ifndef MR_INPUTS_COMMIT_WAIT_H
#define MR_INPUTS_COMMIT_WAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "millrace/plugin.h"

/* What waits: the input's handle (e.g. the HTTP request) and two numbers it wants back with it
 * (e.g. records kept and duplicates), so nothing is allocated per answer. */
struct mr_commit_wait_item {
    void *ptr;
    uint32_t a, b;
};

/* Called once per pushed item, in push order: durable says whether the journal committed it. */
typedef void (*mr_commit_wait_release)(void *arg, struct mr_commit_wait_item item, bool durable);

struct mr_commit_wait {
    struct mr_input_host *host;
    mr_commit_wait_release release;
    void *arg;
    struct mr_commit_wait_slot {
        struct mr_commit_wait_item item;
        uint64_t emit_no;
    } * ring;
    size_t cap, head, n;
    uint64_t emitted; /* emit calls that returned 0 */
    uv_timer_t tick;
    bool timer_init, ticking, stopping;
    int64_t stop_deadline_ms;
    void (*closed)(void *arg);
    void *closed_arg;
};

/* Room for cap waiting items; the timer is created on host->loop. Returns 0 or MR_ENOMEM. */
int mr_commit_wait_init(struct mr_commit_wait *w, struct mr_input_host *host, size_t cap,
                        mr_commit_wait_release release, void *arg);
/* Free the ring (after mr_commit_wait_stop's closed callback, or when never started). */
void mr_commit_wait_fini(struct mr_commit_wait *w);
static inline bool mr_commit_wait_full(const struct mr_commit_wait *w)
{
    return w->n == w->cap;
}
static inline size_t mr_commit_wait_count(const struct mr_commit_wait *w)
{
    return w->n;
}
/* An emit call returned 0 and item's answer waits for it (not full: check first; every emit
 * that returned 0 must be pushed, so the count matches the host's). Released before this
 * returns when the emit is already durable. */
void mr_commit_wait_push(struct mr_commit_wait *w, struct mr_commit_wait_item item);
/* Wait up to grace_ms for what is queued, release the rest as not durable, close the timer,
 * then closed(arg). Safe when nothing was ever pushed. */
void mr_commit_wait_stop(struct mr_commit_wait *w, int64_t grace_ms, void (*closed)(void *arg),
                         void *arg);

#endif
