/* Answers held until the journal commits: see commit_wait.h. */
#include "inputs/commit_wait.h"

#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"

#define TICK_MS 1

int mr_commit_wait_init(struct mr_commit_wait *w, struct mr_input_host *host, size_t cap,
                        mr_commit_wait_release release, void *arg)
{
    *w = (struct mr_commit_wait){.host = host, .release = release, .arg = arg, .cap = cap};
    w->ring = mr_calloc(cap, sizeof(*w->ring));
    if (w->ring == NULL) {
        return MR_ENOMEM;
    }
    if (uv_timer_init(host->loop, &w->tick) != 0) {
        mr_free(w->ring);
        w->ring = NULL;
        return MR_ENOMEM;
    }
    w->tick.data = w;
    w->timer_init = true;
    return 0;
}

void mr_commit_wait_fini(struct mr_commit_wait *w)
{
    mr_free(w->ring);
    w->ring = NULL;
}

static void pop(struct mr_commit_wait *w, bool durable)
{
    struct mr_commit_wait_item item = w->ring[w->head].item;
    w->head = (w->head + 1) % w->cap;
    w->n--;
    w->release(w->arg, item, durable);
}

/* Release what the journal has committed. */
static void settle(struct mr_commit_wait *w)
{
    uint64_t durable = w->host->durable != NULL ? w->host->durable(w->host) : w->emitted;
    while (w->n > 0 && w->ring[w->head].emit_no <= durable) {
        pop(w, true);
    }
}

static void on_closed(uv_handle_t *h)
{
    struct mr_commit_wait *w = h->data;
    w->timer_init = false;
    if (w->closed != NULL) {
        w->closed(w->closed_arg);
    }
}

/* While stopping: once everything is released or the grace is over, close. */
static void stop_progress(struct mr_commit_wait *w)
{
    if (w->n > 0 && mr_clock_mono_ms() < w->stop_deadline_ms) {
        return;
    }
    if (w->n > 0) {
        MR_LOG_WARN(w->host->name,
                    "stopping: %zu answers not confirmed by the journal in time; their senders "
                    "are told to send again (the records may still be kept)",
                    w->n);
    }
    while (w->n > 0) {
        pop(w, false);
    }
    if (w->timer_init && !uv_is_closing((uv_handle_t *)&w->tick)) {
        uv_close((uv_handle_t *)&w->tick, on_closed);
    }
}

static void tick_cb(uv_timer_t *t)
{
    struct mr_commit_wait *w = t->data;
    settle(w);
    if (w->stopping) {
        stop_progress(w);
    } else if (w->n == 0 && w->ticking) {
        uv_timer_stop(&w->tick);
        w->ticking = false;
    }
}

static void keep_ticking(struct mr_commit_wait *w)
{
    if (w->n > 0 && !w->ticking) {
        uv_timer_start(&w->tick, tick_cb, TICK_MS, TICK_MS);
        w->ticking = true;
    }
}

void mr_commit_wait_push(struct mr_commit_wait *w, struct mr_commit_wait_item item)
{
    w->emitted++;
    w->ring[(w->head + w->n) % w->cap] =
        (struct mr_commit_wait_slot){.item = item, .emit_no = w->emitted};
    w->n++;
    settle(w);
    keep_ticking(w);
}

void mr_commit_wait_stop(struct mr_commit_wait *w, int64_t grace_ms, void (*closed)(void *arg),
                         void *arg)
{
    w->stopping = true;
    w->closed = closed;
    w->closed_arg = arg;
    w->stop_deadline_ms = mr_clock_mono_ms() + grace_ms;
    if (!w->timer_init) {
        if (closed != NULL) {
            closed(arg);
        }
        return;
    }
    settle(w);
    if (w->n > 0) {
        keep_ticking(w);
        return;
    }
    stop_progress(w);
}
