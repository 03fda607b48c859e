/* Writing millrace records into a journal topic: one batch builder per partition, records go to
 * the partition Kafka's partitioner picks for their asset path (the record key), batches are
 * appended when full or on flush, and acknowledgements are counted so a caller can wait until
 * everything it wrote is durable (before a checkpoint, before reporting a stop).
 *
 * Used by the ingest of inputs (loop thread) and by pipelines (their own thread): one writer,
 * one thread. The ack callback runs on the journal's writer thread and only touches the atomic
 * counters and the condition variable.
 */
#ifndef MR_ENGINE_TOPIC_WRITER_H
#define MR_ENGINE_TOPIC_WRITER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/name_hash.h"
#include "millrace/journal.h"
#include "millrace/record.h"

struct mr_topic_writer {
    struct mr_journal_topic *topic;
    const char *topic_name;
    uint32_t nparts;
    struct mr_batch_builder *builders; /* one per partition */
    uint8_t *bufs;                     /* nparts * batch_cap */
    size_t batch_cap;
    uint8_t *scratch; /* one encoded record */
    size_t scratch_cap;
    const struct mr_names *names;
    struct mr_name_hashes hashes; /* partition choice without re-hashing asset strings */
    uint32_t *part_of;            /* asset id -> partition + 1 (0 = not computed), grows */
    size_t part_of_cap;
    /* acks */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t appended;     /* batches handed to the journal (writer thread: under mu) */
    uint64_t acked;        /* batches acknowledged */
    uint64_t *appended_in; /* per partition (under mu): for marks */
    uint64_t *acked_in;    /* per partition, acks come in order within one (under mu) */
    int first_error;       /* first failed append or ack */
    atomic_uint_least64_t records_acked;
    uint64_t bytes_appended; /* bytes of the batches handed to the journal (writer thread) */
    /* optional (mr_topic_writer_time_commits): append -> acknowledged, per batch */
    struct mr_histogram *commit_seconds;
    int64_t *append_ns; /* nparts * COMMIT_RING: when batch k of partition p was appended */
};

int mr_topic_writer_init(struct mr_topic_writer *w, struct mr_journal_topic *topic,
                         const struct mr_names *names, size_t batch_cap);
void mr_topic_writer_fini(struct mr_topic_writer *w);
/* Add one record (encoded with the mr.enc header, key = asset path, timestamp in ms). Appends a
 * partition's batch when it is full (blocking while the journal's queue is full). Returns 0,
 * MR_EINVAL (record cannot be encoded), MR_ETOOBIG (larger than a batch), or the journal's
 * append error. */
int mr_topic_writer_add(struct mr_topic_writer *w, const struct mr_record *rec);
/* add with one more Kafka record header after mr.enc (extra may be NULL); the relay's origin
 * mark (relay.h) travels this way. */
int mr_topic_writer_add_with(struct mr_topic_writer *w, const struct mr_record *rec,
                             const struct mr_batch_header *extra);
/* The partition add puts rec in (Kafka's partitioner on its asset path). */
uint32_t mr_topic_writer_partition(struct mr_topic_writer *w, const struct mr_record *rec);
/* Append every non-empty batch. */
int mr_topic_writer_flush(struct mr_topic_writer *w);
/* Flush, then wait until every appended batch is acknowledged; returns the first error of any
 * append or ack since init (sticky: a failed write means records may be lost, the caller must
 * not checkpoint past them). */
int mr_topic_writer_sync(struct mr_topic_writer *w);
/* Without waiting: true when every appended batch is acknowledged and none failed. Acks come
 * in order per partition but not across partitions, so this, not a count, says that all
 * records added before the last flush are durable. */
bool mr_topic_writer_settled(struct mr_topic_writer *w);
/* Marks: mark (nparts entries) records how many batches each partition was handed so far;
 * durable_at says, without waiting, whether all of them are acknowledged without error. So a
 * caller under a steady stream learns that an early flush is durable while later ones are
 * still in flight, which settled cannot tell. */
void mr_topic_writer_mark(struct mr_topic_writer *w, uint64_t *mark);
bool mr_topic_writer_durable_at(struct mr_topic_writer *w, const uint64_t *mark);
/* From now on observe, for every batch, the seconds from its append to the journal's
 * acknowledgement (with fsync: always, to its fsync) into h, on the journal's writer thread at
 * the moment of the acknowledgement. Returns 0 or MR_ENOMEM. */
int mr_topic_writer_time_commits(struct mr_topic_writer *w, struct mr_histogram *h);

#endif
