/* The journal-wide disk cap (max_bytes) and its overflow policy, enforced on the writer thread
 * after every group commit and at retention checks.
 *
 * Over the cap, in this order:
 *  1. closed segments that every consumer of their topic has passed (every cursor of the topic:
 *     outputs and pipelines commit one) are deleted: data already delivered everywhere it goes;
 *     a topic nobody consumes keeps its data (it is history someone may replay);
 *  2. then the policy: `drop_oldest` deletes the oldest closed segment of any topic, read or
 *     not (counted: consumers skip to what is left, and say so); `downsample` does that only
 *     for topics marked low priority (bulk samples), so alarms and state events stay;
 *  3. whatever is still over the cap sets `full`: ingest stops taking records from inputs
 *     (they answer back-pressure: brokers queue, PLCs keep their buffers) until consumers free
 *     space. Pipelines and outputs keep running, so the space comes back as they progress.
 * Below the cap a group commit only adds what it wrote to the last count (an upper bound); the
 * segments are counted again when that bound crosses the cap, and every second while full
 * (consumers moving their cursors free space without writing anything).
 * Only closed segments are ever deleted, so the cap holds to within one active segment per
 * partition (keep segment_bytes small against max_bytes).
 */
#include "journal/journal_internal.h"

#include <inttypes.h>

#include "millrace/log.h"

static uint64_t total_bytes(struct mr_journal *j)
{
    uint64_t total = 0;
    for (size_t i = 0; i < j->ntopics; i++) {
        struct mr_journal_topic *t = j->topics[i];
        for (uint32_t k = 0; k < t->nparts; k++) {
            int64_t ts;
            total += mr_partition_bytes(t->parts[k], &ts);
        }
    }
    return total;
}

/* Step 1: delete what every consumer has read. Returns bytes freed. */
static uint64_t release_consumed(struct mr_journal *j, uint64_t excess)
{
    uint64_t freed = 0;
    for (size_t i = 0; i < j->ntopics && freed < excess; i++) {
        struct mr_journal_topic *t = j->topics[i];
        for (uint32_t k = 0; k < t->nparts && freed < excess; k++) {
            int64_t min;
            if (mr_cursor_min(t, k, &min) != 0) {
                continue;
            }
            int64_t records;
            uint64_t b;
            while (freed < excess && mr_partition_drop_oldest(t->parts[k], min, &records, &b)) {
                freed += b;
                atomic_fetch_add(&j->disk_released, 1);
            }
        }
    }
    return freed;
}

/* Step 2: delete the oldest closed segment (by newest record time) among eligible topics until
 * `excess` bytes are freed. Returns bytes freed. */
static uint64_t drop_oldest(struct mr_journal *j, uint64_t excess, bool low_only)
{
    uint64_t freed = 0;
    while (freed < excess) {
        struct mr_partition *best = NULL;
        int64_t best_ts = INT64_MAX;
        for (size_t i = 0; i < j->ntopics; i++) {
            struct mr_journal_topic *t = j->topics[i];
            if (low_only && !atomic_load(&t->low_priority)) {
                continue;
            }
            for (uint32_t k = 0; k < t->nparts; k++) {
                int64_t ts;
                (void)mr_partition_bytes(t->parts[k], &ts);
                if (ts < best_ts) {
                    best = t->parts[k];
                    best_ts = ts;
                }
            }
        }
        int64_t records = 0;
        uint64_t b = 0;
        if (best == NULL || !mr_partition_drop_oldest(best, -1, &records, &b)) {
            break;
        }
        freed += b;
        atomic_fetch_add(&j->disk_dropped, 1);
        atomic_fetch_add(&j->disk_dropped_records, (uint64_t)records);
        MR_LOG_WARN("journal",
                    "over max_bytes: deleted the oldest segment of %s[%u] (%" PRId64
                    " records%s) to make room",
                    best->topic->name, best->id, records, low_only ? ", low priority" : "");
    }
    return freed;
}

void mr_journal_disk_enforce(struct mr_journal *j)
{
    if (j->opts.max_bytes < 0) {
        return;
    }
    uint64_t max = (uint64_t)j->opts.max_bytes;
    /* Below the cap, skip the count: the last count plus what was written since can only
     * over-estimate (deletions only shrink), so a group commit costs no walk of the segments. */
    uint64_t written = atomic_load(&j->stat_bytes);
    uint64_t estimate = atomic_load(&j->disk_bytes) + (written - j->disk_written_at_check);
    if (j->disk_counted && estimate <= max && !atomic_load(&j->disk_full)) {
        atomic_store(&j->disk_bytes, estimate);
        j->disk_written_at_check = written;
        return;
    }
    j->disk_counted = true;
    j->disk_written_at_check = written;
    pthread_mutex_lock(&j->topics_lock);
    uint64_t total = total_bytes(j);
    if (total > max) {
        total -= release_consumed(j, total - max);
    }
    if (total > max && j->opts.overflow != MR_JOURNAL_OVERFLOW_BLOCK) {
        total -= drop_oldest(j, total - max, j->opts.overflow == MR_JOURNAL_OVERFLOW_DOWNSAMPLE);
    }
    pthread_mutex_unlock(&j->topics_lock);
    atomic_store(&j->disk_bytes, total);
    bool full = total > max;
    if (full != atomic_exchange(&j->disk_full, full)) {
        if (full) {
            MR_LOG_WARN("journal",
                        "full: %" PRIu64 " bytes stored, max_bytes %" PRIu64
                        "; inputs pause until consumers free space (overflow: %s)",
                        total, max,
                        j->opts.overflow == MR_JOURNAL_OVERFLOW_BLOCK ? "block" : "downsample");
        } else {
            MR_LOG_INFO("journal", "below max_bytes again (%" PRIu64 " bytes): inputs resume",
                        total);
        }
    }
}

bool mr_journal_full(struct mr_journal *j)
{
    return atomic_load_explicit(&j->disk_full, memory_order_relaxed);
}

void mr_journal_disk_stats(struct mr_journal *j, struct mr_journal_disk *out)
{
    *out = (struct mr_journal_disk){
        .bytes = atomic_load(&j->disk_bytes),
        .full = atomic_load(&j->disk_full),
        .released_segments = atomic_load(&j->disk_released),
        .dropped_segments = atomic_load(&j->disk_dropped),
        .dropped_records = atomic_load(&j->disk_dropped_records),
    };
}

void mr_journal_topic_set_low_priority(struct mr_journal_topic *t, bool low)
{
    atomic_store(&t->low_priority, low);
}
