/* Exactly-once output after a crash.
 *
 * A pipeline checkpoints its input offsets, operator state and the end offsets of the topics it
 * writes, together. After a crash it resumes from the checkpoint and recomputes what it had
 * produced since; some of those records reached the output topics before the crash. Operators
 * are deterministic (a window result's time is its window end, never the wall clock), so a
 * recomputed record is identical to the one already written. On restore the pipeline reads its
 * output topics from the checkpointed ends to their current ends and counts each record's
 * identity (a hash of asset, signal, time, value, quality and tags); while replaying, a record
 * whose identity is still counted is dropped instead of written again. The set lives until the
 * replay has read past everything the crashed run could have read (the source ends at restore);
 * checkpoints taken meanwhile keep the restored output positions, so a second crash during the
 * replay still finds what the first run wrote.
 */
#ifndef MR_ENGINE_DEDUPE_H
#define MR_ENGINE_DEDUPE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/keymap.h"
#include "engine/name_hash.h"
#include "millrace/record.h"

struct mr_dedupe {
    struct mr_keymap seen; /* identity -> uint32 count */
    uint64_t pending;      /* sum of counts */
    uint64_t dropped;      /* replayed records not written again */
};

int mr_dedupe_init(struct mr_dedupe *d, uint32_t max_records);
void mr_dedupe_fini(struct mr_dedupe *d);
int mr_dedupe_add(struct mr_dedupe *d, uint64_t identity);
/* True (and the count decremented) when identity was already written. */
bool mr_dedupe_take(struct mr_dedupe *d, uint64_t identity);
static inline bool mr_dedupe_active(const struct mr_dedupe *d)
{
    return d->pending != 0;
}
/* Forget everything (when the replay is over); returns how many were never matched. */
uint64_t mr_dedupe_reset(struct mr_dedupe *d);

/* Identity of a record: stable across processes (names hashed by string). */
uint64_t mr_record_identity(const struct mr_record *r, const struct mr_names *names,
                            struct mr_name_hashes *cache);

#endif
