/* Relay de-duplication: what an input that relays another millrace's journal (store-and-forward's
 * `receive`) has already kept, so a batch sent again is kept exactly once.
 *
 * Each relayed record is written with one extra Kafka record header, "mr.src", whose value is
 * 16 bytes: the origin stream (a 64-bit hash of node, topic and partition; little-endian) and
 * the record's offset there (little-endian i64). The journal itself is therefore the memory of
 * what was kept: after a crash the relay reads those headers back (mr_relay_recover) and no
 * separate position file can disagree with the data.
 *
 * Positions are kept per (origin stream, local partition): records of one origin partition can
 * land in several local partitions (the local topic may be partitioned differently), and a crash
 * can keep one local partition's batch without another's. Within one local partition a stream's
 * records are appended in origin order, so "the highest origin offset kept there" says exactly
 * which of them a resent batch already holds.
 */
#ifndef MR_ENGINE_RELAY_H
#define MR_ENGINE_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/keymap.h"
#include "millrace/journal.h"
#include "millrace/plugin.h"

#define MR_RELAY_HEADER_KEY  "mr.src"
#define MR_RELAY_MAX_STREAMS (1u << 20) /* (stream, partition) pairs remembered */

struct mr_relay {
    struct mr_keymap kept; /* key(stream, partition) -> int64 highest origin offset kept */
    bool recovered;        /* kept reflects the journal */
};

int mr_relay_init(struct mr_relay *r);
void mr_relay_fini(struct mr_relay *r);

/* The stream id of an origin (node, topic, partition). */
uint64_t mr_relay_stream(const struct mr_record_origin *o);

/* Rebuild `kept` from the "mr.src" headers of every record the topic still stores. Returns 0 or
 * the journal's error (err says which partition). */
int mr_relay_recover(struct mr_relay *r, struct mr_journal_topic *topic, struct mr_err *err);
/* Forget everything (after a failed append: what was noted may not be in the journal); the next
 * relayed emit recovers again. */
void mr_relay_invalidate(struct mr_relay *r);

/* True when the record at origin `offset` of `stream`, bound for local `partition`, was kept. */
bool mr_relay_seen(const struct mr_relay *r, uint64_t stream, uint32_t partition, int64_t offset);
/* It is being kept now. Returns 0 or MR_ETOOBIG/MR_ENOMEM. */
int mr_relay_note(struct mr_relay *r, uint64_t stream, uint32_t partition, int64_t offset);

/* The "mr.src" header for (stream, offset); buf (16 bytes) holds its value. */
void mr_relay_header(struct mr_batch_header *h, uint8_t buf[16], uint64_t stream, int64_t offset);

#endif
