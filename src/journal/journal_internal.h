/* Internal structures of the journal, shared by the files of src/journal (and white-box tests).
 *
 * Locking (outer to inner): j->topics_lock, p->lock, j->q_lock. The writer thread owns every
 * field marked "writer"; fields marked "p->lock" are shared with readers.
 */
#ifndef MILLRACE_JOURNAL_INTERNAL_H
#define MILLRACE_JOURNAL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "millrace/clock.h"
#include "millrace/error.h"
#include "millrace/journal.h"

static inline void mr_be16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void mr_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void mr_be64_put(uint8_t *p, uint64_t v)
{
    mr_be32_put(p, (uint32_t)(v >> 32));
    mr_be32_put(p + 4, (uint32_t)v);
}

static inline uint16_t mr_be16_get(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t mr_be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t mr_be64_get(const uint8_t *p)
{
    return ((uint64_t)mr_be32_get(p) << 32) | mr_be32_get(p + 4);
}

#define MR_INDEX_ENTRY       8  /* .index: relOffset u32, position u32 */
#define MR_TIMEINDEX_ENTRY   12 /* .timeindex: maxTimestamp i64, relOffset u32 */
#define MR_SEGMENT_MAX_BYTES (1024ull * 1024 * 1024)
#define MR_CLEAN_MARKER      "clean_shutdown"
#define MR_LOCK_FILE         "lock"
#define MR_TOPIC_META        "topic.meta"

struct mr_index_entry {
    uint32_t rel;
    uint32_t pos;
};

struct mr_time_entry {
    int64_t ts;
    uint32_t rel;
};

/* The sparse indexes of the active segment, in memory (older segments read their files). */
struct mr_index_mem {
    struct mr_index_entry *off;
    size_t off_n, off_cap, off_flushed;
    struct mr_time_entry *time;
    size_t time_n, time_cap, time_flushed;
    uint64_t bytes_since; /* bytes appended since the last offset index entry */
    int idx_fd;           /* writer: open index files; -1 in read-only journals */
    int tidx_fd;
};

struct mr_partition;

struct mr_segment {
    struct mr_partition *p;
    int64_t base;             /* base offset = file name */
    int fd;                   /* the .log */
    atomic_int refs;          /* the partition's list holds one; each reader on it one */
    atomic_bool deleted;      /* unlinked by retention: last unref closes */
    uint64_t size;            /* p->lock: committed (readable) bytes */
    uint64_t write_size;      /* writer: bytes written, >= size (unsynced tail under interval) */
    int64_t end_offset;       /* p->lock: offset after the last committed batch */
    int64_t max_ts;           /* p->lock: newest committed record timestamp, -1 none */
    int64_t first_ts;         /* max timestamp of the first batch (age roll), -1 if empty */
    int64_t created_ms;       /* wall clock when created or opened */
    struct mr_index_mem *mem; /* p->lock: active segment only, else NULL */
};

struct append_req {
    struct append_req *next;
    struct mr_partition *p;
    mr_journal_ack_cb cb;
    void *arg;
    uint8_t *data;
    size_t len;
    bool owned; /* data is the caller's mr_malloc block (MR_JOURNAL_APPEND_TAKE) */
    int32_t count;
    int64_t max_ts;
    int status;          /* writer: 0 or the failure to ack with */
    int64_t base_offset; /* writer: -1 when failed */
    uint64_t pos;        /* writer: position in the active segment */
    uint8_t inline_data[];
};

struct mr_partition {
    struct mr_journal_topic *topic;
    uint32_t id;
    char *dir;
    pthread_mutex_t lock;
    pthread_cond_t cv; /* broadcast on every commit and on close */
    /* p->lock */
    struct mr_segment **segs; /* ascending base offsets; the last is active */
    size_t nsegs, segs_cap;
    int64_t end; /* committed end: next offset after the last readable record */
    /* writer */
    int64_t next_offset;
    struct append_req *grp_head, *grp_tail;   /* to be written in this group */
    struct append_req *pend_head, *pend_tail; /* written, awaiting sync/commit */
    struct mr_partition *next_dirty;
    bool dirty;
    struct mr_partition *next_unsynced;
    bool unsynced;
};

struct mr_cursor_file;
struct chunk;

struct mr_journal_topic {
    struct mr_journal *j;
    char *name;
    char *dir;
    uint32_t nparts;
    struct mr_partition **parts;
    int64_t retention_age_ms; /* override or MR_JOURNAL_DEFAULT */
    int64_t retention_bytes;
    atomic_bool low_priority;       /* overflow: downsample gives these up first */
    struct mr_cursor_file *cursors; /* j->cursor_lock */
};

struct mr_journal {
    struct mr_journal_options opts;
    char *dir;
    int lock_fd;
    pthread_mutex_t topics_lock;
    struct mr_journal_topic **topics; /* sorted by name */
    size_t ntopics, topics_cap;
    pthread_mutex_t q_lock;
    pthread_cond_t q_cv;    /* writer waits: work, stop, retention request */
    pthread_cond_t q_space; /* producers wait: in-flight bytes below the limit */
    struct append_req *q_head, *q_tail;
    uint64_t q_bytes; /* queued + written but not yet acked */
    bool stopping;
    uint64_t retention_req, retention_done;
    long retention_result;
    pthread_cond_t retention_cv;
    pthread_t writer;
    bool writer_started;
    struct chunk *chunk; /* writer: iovecs of one write */
    int final_error;
    bool clean_open; /* during open: the previous close was clean */
    atomic_bool closing;
    pthread_mutex_t readers_lock;
    pthread_cond_t readers_cv;
    int readers;
    pthread_mutex_t cursor_lock;
    /* The disk cap (disk.c): written by the writer thread, read from anywhere. */
    atomic_bool disk_full;
    atomic_uint_least64_t disk_bytes, disk_released, disk_dropped, disk_dropped_records;
    uint64_t disk_written_at_check; /* stat_bytes when disk_bytes was last counted (writer) */
    bool disk_counted;              /* disk_bytes has been counted once (writer) */
    /* Counters for mr_journal_stats: written by the writer thread, read from anywhere. */
    atomic_uint_least64_t stat_writes, stat_bytes, stat_syncs;
    /* Fault injection for tests (writer): fail the next write after `fail_after` bytes. */
    int fail_write_errno;
    uint64_t fail_write_after;
    int fail_sync_errno;
};

/* ---- time and files (journal.c) */
/* fsync a directory by path. */
int mr_journal_dir_sync(const char *dir);
/* snprintf that returns MR_ETOOBIG on truncation (paths, messages). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int mr_journal_fmt(char *out, size_t cap, const char *fmt, ...);
/* Grow *arr (elements of elem bytes, *cap of them) so that index n fits. */
bool mr_journal_grow(void **arr, size_t *cap, size_t n, size_t elem);
/* Replace dir/name atomically with data: write dir/name.tmp, fsync, close, rename, fsync dir. */
int mr_journal_write_atomic(const char *dir, const char *name, const void *data, size_t len);
/* Whole small file into a heap buffer (at most max bytes, plus one spare byte for a NUL):
 * MR_ENOENT, MR_ETOOBIG, ... */
int mr_journal_read_small(const char *path, size_t max, uint8_t **data, size_t *len);
/* Names: topic or consumer charset check. */
bool mr_journal_name_ok(const char *name, size_t max);
/* Add a recovery event (report may be NULL). */
void mr_journal_report(struct mr_journal_recovery *rep, const struct mr_partition *p,
                       int64_t seg_base, uint64_t pos, int64_t offset, uint64_t dropped,
                       const char *reason);

/* ---- segment.c */
/* A read buffer over one file: keeps [start, start+len) of the file. */
struct mr_rbuf {
    int fd;
    uint8_t *buf;
    size_t cap;
    uint64_t start;
    size_t len;
    uint64_t limit; /* never read at or past this file position */
};
int mr_rbuf_init(struct mr_rbuf *rb, int fd, size_t cap, uint64_t limit);
void mr_rbuf_fini(struct mr_rbuf *rb);
/* Make bytes from `pos` available, at least `need` unless the limit or end of file comes first.
 * *ptr points at pos; returns the bytes available from pos (>= 0) or a negative MR_E*. */
long mr_rbuf_ensure(struct mr_rbuf *rb, uint64_t pos, size_t need, const uint8_t **ptr);

/* What a scan of a segment file found. */
struct mr_scan {
    uint64_t valid_end;  /* position after the last good batch */
    int64_t next_offset; /* offset after the last good batch (expect if none) */
    int64_t max_ts;      /* -1 if no batch */
    int64_t first_ts;    /* max ts of the first batch seen, -1 if none */
    uint64_t batches;
    uint64_t records;
    int error; /* 0: clean end; MR_ECORRUPT / MR_EEOF (torn) / I/O error */
    char reason[256];
};
/* Called for each good batch with its position. */
typedef void (*mr_scan_cb)(void *arg, const struct mr_batch_info *bi, uint64_t pos);
/* Walk batches of fd in [from, limit), checking header, CRC and base offsets (>= expect),
 * and every record when `records` is set. Stops at the first bad batch. */
void mr_segment_scan(int fd, uint64_t from, uint64_t limit, int64_t expect, bool records,
                     mr_scan_cb cb, void *arg, struct mr_scan *out);
int mr_segment_path(const struct mr_partition *p, int64_t base, const char *ext, char *out,
                    size_t cap);
/* Open an existing segment (size = file size; no scan) or create a new empty one. */
int mr_segment_open(struct mr_partition *p, int64_t base, bool create, bool read_only,
                    struct mr_segment **out, struct mr_err *err);
void mr_segment_ref(struct mr_segment *s);
void mr_segment_unref(struct mr_segment *s);
/* Delete the segment's files; the fd stays valid for readers until the last unref. */
void mr_segment_unlink(struct mr_segment *s);
/* Record a committed batch in the in-memory indexes (p->lock held by the caller). */
void mr_index_note(struct mr_segment *s, uint32_t interval, int64_t base_offset,
                   int64_t last_offset, uint64_t pos, uint64_t size, int64_t max_ts);
/* Write unflushed in-memory entries to the index files (writer). */
int mr_index_flush(struct mr_segment *s);
/* Give the segment in-memory indexes from its files if they are consistent with a log of
 * `size` bytes, else MR_ECORRUPT. Opens the index files for appending unless read_only. */
int mr_index_load(struct mr_segment *s, uint64_t size, bool read_only);
/* Start empty in-memory indexes (and truncate the files unless read_only); the caller then
 * notes every batch (recovery scan) and flushes. */
int mr_index_reset(struct mr_segment *s, bool read_only);
/* Inactive segment: append the final time entry, flush, fsync and drop the memory index. */
int mr_index_seal(struct mr_segment *s, bool read_only);
void mr_index_free(struct mr_index_mem *m);
/* Check an inactive segment's index files against a log of `size` bytes; fills the
 * segment's max timestamp and end offset from them. MR_ECORRUPT if they cannot be trusted. */
int mr_index_check_sealed(struct mr_segment *s, uint64_t size);
/* Position to start scanning for `offset` (largest indexed batch start at or before it). */
uint64_t mr_index_lookup_offset(struct mr_segment *s, int64_t offset);
/* Offset to start scanning for the first record with timestamp >= ts. */
int64_t mr_index_lookup_time(struct mr_segment *s, int64_t ts);

/* ---- partition.c */
int mr_partition_open(struct mr_journal_topic *t, uint32_t id, bool clean,
                      struct mr_journal_recovery *rep, struct mr_partition **out,
                      struct mr_err *err);
void mr_partition_free(struct mr_partition *p);
/* Sorted base offsets of the segment files in dir that are above `after`. */
int mr_partition_list_segments(const char *dir, int64_t after, int64_t **out, size_t *n);
/* Writer: make a new active segment at next_offset (syncs and seals the old one). */
int mr_partition_roll(struct mr_partition *p);
/* Writer: delete old segments per retention; returns segments deleted. */
long mr_partition_retention(struct mr_partition *p, int64_t now_ms);
/* Delete the partition's oldest segment if it is closed (not the active one) and, when
 * below >= 0, ends at or before offset `below`. Returns whether it did; *records and *bytes
 * receive what the segment held. */
bool mr_partition_drop_oldest(struct mr_partition *p, int64_t below, int64_t *records,
                              uint64_t *bytes);
/* Committed bytes of every segment; *oldest_ts the newest timestamp of its oldest closed
 * segment (INT64_MAX when it has none). */
uint64_t mr_partition_bytes(struct mr_partition *p, int64_t *oldest_ts);
/* ---- cursor.c */
/* Lowest position of every consumer with a cursor on the topic's partition; MR_ENOENT when no
 * consumer has one (nobody has declared an interest: nothing counts as read). */
int mr_cursor_min(struct mr_journal_topic *t, uint32_t partition, int64_t *min);
/* ---- disk.c: the journal-wide cap, on the writer thread after each group */
void mr_journal_disk_enforce(struct mr_journal *j);
/* Segment holding offset (ref taken), or the first one after it; NULL if none. */
struct mr_segment *mr_partition_find(struct mr_partition *p, int64_t offset);
/* Read-only journals: pick up batches and segments another process appended. */
void mr_partition_refresh(struct mr_partition *p);
int64_t mr_partition_retention_age(const struct mr_partition *p);
int64_t mr_partition_retention_bytes(const struct mr_partition *p);

/* ---- topic.c */
int mr_topic_load(struct mr_journal *j, const char *name, struct mr_journal_recovery *rep,
                  struct mr_journal_topic **out, struct mr_err *err);
void mr_topic_free(struct mr_journal_topic *t);
int mr_topic_insert(struct mr_journal *j, struct mr_journal_topic *t);
/* Parse a topic.meta file: partitions and overrides. */
int mr_topic_meta_read(const char *path, uint32_t *partitions, struct mr_journal_topic_options *o,
                       struct mr_err *err);

/* ---- cursor.c */
void mr_cursor_free_all(struct mr_journal_topic *t);

/* mr_batch_parse without recomputing the CRC, for a batch our own builder just finished in this
 * process (mr_journal_append with MR_JOURNAL_APPEND_TRUSTED): the layout is still checked. */
int mr_batch_parse_trusted(const void *buf, size_t len, struct mr_batch_info *info);

#endif
