/* Event-time watermarks of a pipeline, one per source, where a source is an asset.
 *
 *   watermark(A) = newest event time seen from A - out_of_orderness      (monotonic)
 *   A is idle when no record of A arrived for idle_timeout of wall-clock time; its watermark then
 *   moves to newest(A) + idle_timeout, so its last open windows close, and it no longer holds
 *   back the pipeline-wide watermark.
 *   global = min over sources that are not idle (max over all when every source is idle)
 *
 * Why per asset: an edge site that was offline replays hours of buffered records with old
 * timestamps while other sites are live. With one watermark those records would all be late;
 * with one per asset only that asset's windows wait for them. The tracker only computes; the
 * pipeline turns changes into operator advance() calls (millrace/plugin.h).
 */
#ifndef MR_ENGINE_WATERMARK_H
#define MR_ENGINE_WATERMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "millrace/names.h"
#include "millrace/state.h"

#define MR_WM_NONE INT64_MIN

struct mr_wm_source {
    int64_t newest;    /* newest event time seen, MR_WM_NONE before any */
    int64_t sent;      /* watermark last handed to operators, MR_WM_NONE before any */
    int64_t last_wall; /* wall-clock ns of the last record */
    bool dirty;        /* newest moved since the last collect */
    bool idle;
    bool known; /* listed in `sources` */
};

struct mr_watermarks {
    struct mr_wm_source *src; /* by asset id */
    size_t cap;
    mr_name_id *sources; /* every asset seen, in first-seen order */
    size_t nsources, sources_cap;
    mr_name_id *dirty;
    size_t ndirty, dirty_cap;
    int64_t out_of_orderness;
    int64_t idle_timeout;
    int64_t global_sent; /* MR_WM_NONE before any */
};

void mr_wm_init(struct mr_watermarks *w, int64_t out_of_orderness_ns, int64_t idle_timeout_ns);
void mr_wm_fini(struct mr_watermarks *w);
/* A record of asset at event time t arrived (now: wall clock). MR_ENOMEM when the tables
 * cannot grow (the record is still processed; its source just does not advance time). */
int mr_wm_observe(struct mr_watermarks *w, mr_name_id asset, int64_t t, int64_t now);

/* Advances to hand to operators: calls cb(arg, asset, watermark) for each source whose watermark
 * moved since the last call (records observed, or idle for idle_timeout at `now`), then for
 * asset 0 when the global watermark moved. Stops at and returns the first non-zero cb result. */
typedef int (*mr_wm_advance_cb)(void *arg, mr_name_id asset, int64_t watermark);
int mr_wm_collect(struct mr_watermarks *w, int64_t now, bool check_idle, mr_wm_advance_cb cb,
                  void *arg);

/* The end of time: every source (and the global watermark) moves to MR_WM_END, calling cb for
 * each; for bounded inputs that are finished, so that every window closes. */
#define MR_WM_END INT64_MAX
int mr_wm_finish(struct mr_watermarks *w, mr_wm_advance_cb cb, void *arg);

/* Checkpoint the tracker (sources by name); restore into a freshly initialised one. Restored
 * sources count as active from `now` (their idle clock restarts). */
int mr_wm_snapshot(const struct mr_watermarks *w, struct mr_state_writer *out);
int mr_wm_restore(struct mr_watermarks *w, struct mr_state_reader *in, int64_t now);

#endif
