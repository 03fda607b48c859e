/* The journal: millrace's embedded, durable, Kafka-like event log.
 *
 * A journal is a directory of topics; a topic has N partitions; a partition is an ordered
 * sequence of record batches in the Kafka RecordBatch v2 layout (magic 2, CRC-32C), each record
 * addressed by a 64-bit offset. Batches are stored verbatim, so serving the Kafka protocol or
 * mirroring to Kafka needs no re-encoding. docs/ARCHITECTURE.md describes the on-disk layout,
 * threading and acknowledgement semantics; the layouts are drawn at the top of the .c files in
 * src/journal/ that write them.
 *
 * Threading: every function here may be called from any thread unless stated. One writer thread
 * per journal writes, syncs and acknowledges appends (group commit). Ack callbacks and the
 * on_commit hook run on that writer thread: keep them short and never call a blocking journal
 * function from them (a blocking append from the writer thread returns MR_EAGAIN instead of
 * deadlocking).
 */
#ifndef MILLRACE_JOURNAL_H
#define MILLRACE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "millrace/error.h"

/* ---------------------------------------------------------------------------------------------
 * Record batches (Kafka RecordBatch v2). Offsets of the fixed header fields, all big-endian.
 */
#define MR_BATCH_HEADER_SIZE       61 /* bytes before the first record */
#define MR_BATCH_LENGTH_OFFSET     8  /* batchLength: bytes after this field */
#define MR_BATCH_CRC_OFFSET        17 /* crc covers bytes [21, end) */
#define MR_BATCH_ATTRIBUTES_OFFSET 21
#define MR_BATCH_MAGIC             2
#define MR_BATCH_DEFAULT_CAP       (1024u * 1024u)       /* default hard cap of one batch */
#define MR_BATCH_MAX_BYTES         (64u * 1024u * 1024u) /* no batch may ever exceed this */

/* One record header (Kafka record header): key is a string, value may be NULL (value_len -1). */
struct mr_batch_header {
    const char *key;
    int32_t key_len;
    const void *value;
    int32_t value_len; /* -1 = null */
};

/* Encodes records straight into one caller-owned contiguous buffer, with no allocation.
 * Usage: init, add..., finish (computes the CRC), hand the bytes to mr_journal_append, reset.
 * Fields are private. */
struct mr_batch_builder {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int32_t count;
    int64_t base_ts;
    int64_t max_ts;
    bool finished;
};

/* Borrow buf (cap bytes, at least MR_BATCH_HEADER_SIZE + a record) for building batches. */
int mr_batch_builder_init(struct mr_batch_builder *b, void *buf, size_t cap);
/* Forget the records added so far; the buffer is reused. */
void mr_batch_builder_reset(struct mr_batch_builder *b);
/* Append one record. key_len/value_len -1 mean null. timestamp_ms: milliseconds since the epoch.
 * Returns MR_ETOOBIG when the record does not fit in the remaining buffer (the builder is
 * unchanged: finish what is there and start a new batch), MR_EINVAL on bad arguments or after
 * finish. */
int mr_batch_builder_add(struct mr_batch_builder *b, int64_t timestamp_ms, const void *key,
                         int32_t key_len, const void *value, int32_t value_len,
                         const struct mr_batch_header *headers, size_t header_count);
/* Fill in the batch header and CRC. *data and *len receive the complete batch (borrowed from
 * the builder's buffer). MR_EINVAL if no record was added. */
int mr_batch_builder_finish(struct mr_batch_builder *b, const uint8_t **data, size_t *len);
static inline uint32_t mr_batch_builder_count(const struct mr_batch_builder *b)
{
    return (uint32_t)b->count;
}

/* A parsed batch header. `records` points into the parsed buffer. */
struct mr_batch_info {
    int64_t base_offset;
    int32_t leader_epoch;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t count;
    const uint8_t *records;
    size_t records_len;
    size_t size; /* whole batch: 12 + batchLength */
};

/* Parse and check one batch at the start of buf: length against len, magic, CRC, counts.
 * Records are not walked (mr_batch_iter does that, validating each). Returns 0, MR_EEOF when
 * buf holds less than the whole batch (the length field says how much; a torn tail), or
 * MR_ECORRUPT. err (may be NULL) says what is wrong. Never reads past len. */
int mr_batch_parse(const void *buf, size_t len, struct mr_batch_info *info, struct mr_err *err);
/* mr_batch_parse plus every record (mr_batch_iter over the whole batch). */
int mr_batch_validate(const void *buf, size_t len, struct mr_batch_info *info, struct mr_err *err);

/* One record inside a batch; pointers borrow from the batch buffer. */
struct mr_batch_record {
    int64_t offset;
    int64_t timestamp; /* ms since the epoch */
    int8_t attributes;
    const uint8_t *key;
    int32_t key_len; /* -1 = null */
    const uint8_t *value;
    int32_t value_len; /* -1 = null */
    uint32_t header_count;
    const uint8_t *headers; /* raw headers; walk with mr_batch_header_next */
    size_t headers_len;
};

struct mr_batch_iter {
    const struct mr_batch_info *info;
    size_t pos;
    int32_t index;
    int64_t last_delta;
};

void mr_batch_iter_init(struct mr_batch_iter *it, const struct mr_batch_info *info);
/* 0 and *rec filled, MR_EEOF after the last record, MR_ECORRUPT (err says why) on a malformed
 * record or a count that does not match, MR_ENOTSUP for compressed batches. */
int mr_batch_iter_next(struct mr_batch_iter *it, struct mr_batch_record *rec, struct mr_err *err);
/* Walk a record's headers: *pos starts at 0. Returns 0, MR_EEOF, or MR_ECORRUPT. */
int mr_batch_header_next(const struct mr_batch_record *rec, size_t *pos,
                         struct mr_batch_header *out);
/* True when rec carries the header that marks its value as a binary millrace record
 * (MR_RECORD_HEADER_KEY: MR_RECORD_HEADER_VALUE, record.h), as opposed to raw bytes appended
 * with `millrace journal append` or by a Kafka client. */
bool mr_batch_record_is_millrace(const struct mr_batch_record *rec);

/* ---------------------------------------------------------------------------------------------
 * Journal.
 */
enum mr_journal_fsync {
    MR_JOURNAL_FSYNC_ALWAYS = 0,   /* fdatasync each dirty partition, then ack (default) */
    MR_JOURNAL_FSYNC_INTERVAL = 1, /* write now, fdatasync every fsync_interval_ms, then ack */
    MR_JOURNAL_FSYNC_NEVER = 2,    /* ack after write(); the OS flushes when it likes */
};

/* Parse "always|interval|never". */
int mr_journal_fsync_parse(const char *s, enum mr_journal_fsync *out);
const char *mr_journal_fsync_name(enum mr_journal_fsync f);

struct mr_journal_topic;

/* Called on the writer thread after new data of a partition became readable; end_offset is the
 * new end (next offset to be assigned). For waking an event loop (uv_async_send). */
typedef void (*mr_journal_commit_cb)(void *arg, struct mr_journal_topic *topic, uint32_t partition,
                                     int64_t end_offset);

#define MR_JOURNAL_UNLIMITED (-1)

/* What the journal does at max_bytes, after deleting the closed segments every consumer (every
 * cursor of the topic) has passed: */
enum mr_journal_overflow {
    MR_JOURNAL_OVERFLOW_BLOCK = 0,       /* report full (mr_journal_full): inputs pause */
    MR_JOURNAL_OVERFLOW_DROP_OLDEST = 1, /* delete the oldest closed segments of any topic */
    MR_JOURNAL_OVERFLOW_DOWNSAMPLE = 2,  /* ... of low-priority topics only; then block */
};

struct mr_journal_options {
    const char *dir;                   /* required */
    enum mr_journal_fsync fsync;       /* default always */
    uint32_t fsync_interval_ms;        /* interval policy: default 10 (see journal.c) */
    uint64_t segment_bytes;            /* roll at this size: default 64 MiB, 4 KiB..1 GiB */
    int64_t segment_age_ms;            /* roll a non-empty segment this old: default 1 hour */
    int64_t retention_age_ms;          /* delete segments whose newest record is older; 7 days */
    int64_t retention_bytes;           /* per partition; default MR_JOURNAL_UNLIMITED */
    uint32_t index_interval_bytes;     /* sparse index spacing: default 4096 */
    uint32_t max_batch_bytes;          /* largest accepted batch: default 1 MiB */
    uint64_t queue_max_bytes;          /* appends in flight (queued, written, unacked): 64 MiB */
    uint32_t retention_check_ms;       /* how often the writer enforces retention: 60000 */
    int64_t max_bytes;                 /* every topic together; default MR_JOURNAL_UNLIMITED */
    enum mr_journal_overflow overflow; /* default block */
    bool read_only;                    /* no writer, no recovery truncation; appends MR_EROFS */
    mr_journal_commit_cb on_commit;    /* optional */
    void *on_commit_arg;
};

/* Fill every option with its default (dir NULL). */
void mr_journal_options_init(struct mr_journal_options *opts);

/* What crash recovery found and did at open. */
#define MR_JOURNAL_RECOVERY_EVENTS 16
struct mr_journal_recovery_event {
    char topic[256];
    uint32_t partition;
    int64_t segment_base;   /* segment file (base offset) */
    uint64_t position;      /* byte position in the segment */
    int64_t offset;         /* first offset lost (or expected there) */
    uint64_t bytes_dropped; /* 0 for an index rebuild */
    char reason[128];
};

struct mr_journal_recovery {
    bool clean_shutdown; /* the last close was clean: tails were not rescanned */
    uint32_t topics;
    uint32_t partitions;
    uint32_t segments;
    uint32_t segments_scanned;
    uint32_t indexes_rebuilt;
    uint32_t truncations;
    uint64_t bytes_dropped;
    uint32_t event_count; /* events[] used */
    uint32_t events_lost; /* events beyond MR_JOURNAL_RECOVERY_EVENTS */
    struct mr_journal_recovery_event events[MR_JOURNAL_RECOVERY_EVENTS];
};

struct mr_journal;

/* Open (creating dir if needed) and recover. report (may be NULL) receives what recovery did.
 * Fails with MR_EBUSY if another process has it open for writing, MR_EROFS when the directory
 * is not writable and read_only is false. */
int mr_journal_open(const struct mr_journal_options *opts, struct mr_journal **out,
                    struct mr_journal_recovery *report, struct mr_err *err);
/* Stop accepting appends, write, sync and acknowledge everything queued, flush indexes, mark a
 * clean shutdown, and free. Readers waiting in mr_journal_reader_wait return MR_ECLOSED; close
 * then waits until every reader is destroyed (never close from a thread that owns a reader).
 * NULL is a no-op. Returns the first write/sync error seen during the final drain, or 0. */
int mr_journal_close(struct mr_journal *j);

/* Per-topic overrides; MR_JOURNAL_DEFAULT means "use the journal's option". */
#define MR_JOURNAL_DEFAULT INT64_MIN
struct mr_journal_topic_options {
    int64_t retention_age_ms;
    int64_t retention_bytes;
};
void mr_journal_topic_options_init(struct mr_journal_topic_options *o);

/* Topic names: 1..249 of [A-Za-z0-9._-], not "." or "..". */
#define MR_JOURNAL_TOPIC_MAX 249
/* Create a topic with `partitions` (1..10000) partitions, or return the existing one if it has
 * that many (MR_EEXIST if it has another count). overrides may be NULL; they are stored in the
 * topic metadata and replace earlier overrides. The topic lives until mr_journal_close. */
int mr_journal_topic_create(struct mr_journal *j, const char *name, uint32_t partitions,
                            const struct mr_journal_topic_options *overrides,
                            struct mr_journal_topic **out, struct mr_err *err);
/* The partition Kafka's default partitioner picks for a key (murmur2, positive, modulo), so
 * keyed records land where a Kafka producer would put them. */
uint32_t mr_journal_partition_for_key(const void *key, size_t len, uint32_t partitions);
/* Existing topic or NULL. */
struct mr_journal_topic *mr_journal_topic_find(struct mr_journal *j, const char *name);
size_t mr_journal_topic_count(struct mr_journal *j);
/* Topics in name order; NULL past the end. */
struct mr_journal_topic *mr_journal_topic_at(struct mr_journal *j, size_t i);
const char *mr_journal_topic_name(const struct mr_journal_topic *t);
uint32_t mr_journal_topic_partitions(const struct mr_journal_topic *t);

struct mr_journal_partition_stats {
    int64_t earliest; /* first offset still stored */
    int64_t end;      /* next offset to be assigned (last offset + 1); readable end */
    uint64_t bytes;   /* committed bytes in all segments */
    uint32_t segments;
    int64_t max_timestamp; /* newest record timestamp seen, -1 if none */
};
int mr_journal_partition_stats(struct mr_journal_topic *t, uint32_t partition,
                               struct mr_journal_partition_stats *out);

/* Ack: status 0 or MR_E*; base_offset is -1 on failure. Called on the writer thread, in offset
 * order per partition, exactly once per accepted append. */
typedef void (*mr_journal_ack_cb)(void *arg, int status, uint32_t partition, int64_t base_offset,
                                  uint32_t count);

/* Flags for mr_journal_append. */
#define MR_JOURNAL_APPEND_NOWAIT  0x1u /* queue full: return MR_EAGAIN instead of blocking */
#define MR_JOURNAL_APPEND_TAKE    0x2u /* take ownership of `batch` (an mr_malloc block) */
/* The batch was just finished by mr_batch_builder_finish in this process (a trusted producer):
 * its CRC is not computed a second time; its layout is still checked. */
#define MR_JOURNAL_APPEND_TRUSTED 0x4u

/* Queue one finished batch (e.g. from mr_batch_builder_finish) for `partition`. The batch is
 * checked (layout, CRC unless MR_JOURNAL_APPEND_TRUSTED, lastOffsetDelta == count-1, size <=
 * max_batch_bytes) on the calling thread; its base offset bytes are overwritten with the assigned
 * offset. Without MR_JOURNAL_APPEND_TAKE the bytes are copied and the caller may reuse them at
 * once; with it the journal frees `batch` with mr_free after the ack (on error the caller keeps
 * it). Back-pressure: while queue_max_bytes are in flight, blocks (or MR_EAGAIN with NOWAIT, or
 * when called from the writer thread). Returns 0 (cb will be called exactly once), or an error
 * (cb is never called): MR_EINVAL/MR_ECORRUPT bad batch, MR_ETOOBIG, MR_EAGAIN, MR_EROFS,
 * MR_ECLOSED. */
int mr_journal_append(struct mr_journal_topic *t, uint32_t partition, void *batch, size_t len,
                      unsigned flags, mr_journal_ack_cb cb, void *arg);
/* Append and wait for the ack; *base_offset (may be NULL) receives the first offset. */
int mr_journal_append_wait(struct mr_journal_topic *t, uint32_t partition, void *batch, size_t len,
                           int64_t *base_offset);
/* What the writer thread has done since open: for metrics and benchmarks (the fsync cadence is
 * bytes_written / syncs). Relaxed counters: a snapshot, not a consistent cut. */
struct mr_journal_stats {
    uint64_t writes;        /* pwritev calls that succeeded (one per partition per group) */
    uint64_t bytes_written; /* batch bytes written to segment files */
    uint64_t syncs;         /* successful fdatasync calls of segment data */
};
void mr_journal_stats(struct mr_journal *j, struct mr_journal_stats *out);

/* The disk cap (max_bytes), checked by the writer thread after every group commit. */
struct mr_journal_disk {
    uint64_t bytes;             /* bytes of every topic (below the cap: an upper bound) */
    bool full;                  /* over max_bytes with nothing more to delete: inputs pause */
    uint64_t released_segments; /* deleted because every consumer had read them */
    uint64_t dropped_segments;  /* deleted unread by drop_oldest / downsample */
    uint64_t dropped_records;   /* records in those */
};
void mr_journal_disk_stats(struct mr_journal *j, struct mr_journal_disk *out);
/* True while the journal is over max_bytes and the overflow policy holds new data back. Cheap
 * (an atomic load): ingest asks before every batch. */
bool mr_journal_full(struct mr_journal *j);
/* Mark a topic as bulk data that overflow: downsample may give up first (from the configuration
 * at each start; not stored in the topic's metadata). */
void mr_journal_topic_set_low_priority(struct mr_journal_topic *t, bool low);

/* Run retention now on the writer thread and wait for it (tests, operators). Returns the
 * number of segments deleted, or an error. */
long mr_journal_enforce_retention(struct mr_journal *j);

/* From the configuration's `journal:` section (include/millrace/config.h): fill every option
 * (defaults first), translating units and "0 = unlimited". o->dir borrows c->dir. */
struct mr_journal_conf;
void mr_journal_options_from_conf(struct mr_journal_options *o, const struct mr_journal_conf *c);
/* Per-topic settings from `journal.topics.<topic>`: fills *o (inheriting what the topic does not
 * set) and returns the configured partition count, or 0 when the configuration does not say. */
uint32_t mr_journal_topic_from_conf(const struct mr_journal_conf *c, const char *topic,
                                    struct mr_journal_topic_options *o);
/* `journal.topics.<topic>.priority: low`. */
bool mr_journal_topic_low_priority_from_conf(const struct mr_journal_conf *c, const char *topic);

/* ---------------------------------------------------------------------------------------------
 * Reading.
 */
#define MR_JOURNAL_EARLIEST (-2)
#define MR_JOURNAL_LATEST   (-1)

/* First offset whose record timestamp >= timestamp_ms (the partition end if none yet). */
int mr_journal_offset_for_time(struct mr_journal_topic *t, uint32_t partition, int64_t timestamp_ms,
                               int64_t *offset);

struct mr_journal_reader;

/* Reader positioned at `offset` (or MR_JOURNAL_EARLIEST / MR_JOURNAL_LATEST). An offset inside a
 * batch starts at that record. MR_ERANGE if the offset is before the earliest stored or after
 * the end. A reader is used by one thread at a time; destroy it before mr_journal_close. */
int mr_journal_reader_create(struct mr_journal_topic *t, uint32_t partition, int64_t offset,
                             struct mr_journal_reader **out);
void mr_journal_reader_destroy(struct mr_journal_reader *r);
/* Next record at or after the position; its pointers are valid until the next call.
 * MR_EEOF: nothing more committed yet (wait, then call again). MR_ERANGE: the position was
 * deleted by retention (seek to MR_JOURNAL_EARLIEST to continue). MR_ECORRUPT: bad data. */
int mr_journal_reader_next(struct mr_journal_reader *r, struct mr_batch_record *rec);
/* Next whole batch containing the position (may start before it when the position is
 * mid-batch, like a Kafka fetch); the reader moves past it. Bytes valid until the next call. */
int mr_journal_reader_next_batch(struct mr_journal_reader *r, struct mr_batch_info *info);
/* Next offset the reader will return. */
int64_t mr_journal_reader_position(const struct mr_journal_reader *r);
int mr_journal_reader_seek(struct mr_journal_reader *r, int64_t offset);
/* Wait until data past the position is committed: 0, MR_ETIMEDOUT, or MR_ECLOSED.
 * timeout_ms < 0 waits without limit. In a read_only journal this polls the files, so another
 * process's appends become visible. */
int mr_journal_reader_wait(struct mr_journal_reader *r, int timeout_ms);

/* ---------------------------------------------------------------------------------------------
 * Durable consumer cursors: the committed offset is the next offset the consumer will read
 * (Kafka semantics). One file per (topic, consumer), replaced atomically.
 * Consumer names: 1..128 of [A-Za-z0-9._-], not starting with '.'.
 */
#define MR_JOURNAL_CONSUMER_MAX 128
int mr_journal_cursor_commit(struct mr_journal_topic *t, const char *consumer, uint32_t partition,
                             int64_t offset, struct mr_err *err);
/* Commit offsets[i] for partitions 0..count-1 in one file replacement (offset -1: unchanged). */
int mr_journal_cursor_commit_all(struct mr_journal_topic *t, const char *consumer,
                                 const int64_t *offsets, uint32_t count, struct mr_err *err);
/* MR_ENOENT if this consumer never committed this partition; MR_ECORRUPT (err names the file)
 * if the cursor file is damaged: it is never silently reset. */
int mr_journal_cursor_get(struct mr_journal_topic *t, const char *consumer, uint32_t partition,
                          int64_t *offset, struct mr_err *err);

/* ---------------------------------------------------------------------------------------------
 * Offline verification: every batch (header, CRC, records) of every segment of every topic.
 * Works on a journal in use by another process (it only reads).
 */
struct mr_journal_problem {
    const char *topic;
    uint32_t partition;
    const char *segment; /* file path */
    uint64_t position;   /* byte position in the file */
    const char *message;
};
typedef void (*mr_journal_problem_cb)(void *arg, const struct mr_journal_problem *p);

struct mr_journal_verify_stats {
    uint32_t topics;
    uint32_t partitions;
    uint32_t segments;
    uint64_t batches;
    uint64_t records;
    uint64_t bytes;
    uint32_t problems;
};
/* Returns 0 when everything is intact, MR_ECORRUPT when problems were reported, or another
 * error if the directory cannot be read. */
int mr_journal_verify(const char *dir, mr_journal_problem_cb cb, void *arg,
                      struct mr_journal_verify_stats *stats, struct mr_err *err);

#endif
