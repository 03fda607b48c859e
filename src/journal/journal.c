/* Journal: open/close, the append queue and the writer thread (group commit).
 *
 *   <dir>/lock               flock()ed by the one process that opens the journal for writing
 *   <dir>/clean_shutdown     exists only between a clean close and the next open
 *   <dir>/<topic>/...        one directory per topic (topic.c, partition.c, segment.c, cursor.c)
 *
 * Group commit. Producers on any thread call mr_journal_append: the batch is checked, copied
 * (or taken), and queued; the call blocks only when queue_max_bytes are in flight. The writer
 * thread repeatedly takes everything queued, and per partition (in first-seen order):
 *   1. assigns offsets in queue order and writes the batches with pwritev at the end of the
 *      active segment (one call per up to IOV_MAX batches), rolling the segment first when it
 *      is full or old;
 *   2. fsync policy always:   fdatasync the partition, then commit and ack;
 *                   interval: commit and ack at the next tick (every fsync_interval_ms), after
 *                             one fdatasync of each partition written since the last tick;
 *                   never:    commit and ack right after the write.
 * "Commit" makes the batches readable (the partition's committed end advances, sparse indexes
 * grow, followers wake, on_commit runs); readers never see bytes past it, so never half a
 * batch and, under always/interval, never data that a crash could take back. Acks run on the
 * writer thread in offset order per partition; a failed write or sync is truncated back to the
 * committed end and fails exactly the affected appends (MR_ENOSPC, MR_EIO...), later appends
 * may succeed.
 *
 * fsync_interval_ms defaults to 10: an ack then waits at most ~10 ms plus one fdatasync (well
 * under MQTT/Kafka producer timeouts), at most 100 syncs/s spare flash-backed edge disks, and at
 * the 200 MB/s target one sync covers ~2 MB, past the 1 MiB point where this machine's disk, not
 * the sync count, is the limit (research/perf.md 2.2).
 */
#include "journal/journal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "millrace/alloc.h"

#include <stdarg.h>

#define WRITER_IOV 1024

int mr_journal_fmt(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= cap ? MR_ETOOBIG : 0;
}

/* ---- small shared helpers */

bool mr_journal_grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) {
        return true;
    }
    size_t ncap = *cap ? *cap * 2 : 16;
    void *na = mr_realloc(*arr, ncap * elem);
    if (na == NULL) {
        return false;
    }
    *arr = na;
    *cap = ncap;
    return true;
}

int mr_journal_dir_sync(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return mr_err_from_errno(errno);
    }
    int rc = fsync(fd) != 0 ? mr_err_from_errno(errno) : 0;
    close(fd);
    return rc;
}

int mr_journal_write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    char tmp[4096], dst[4096];
    if (mr_journal_fmt(tmp, sizeof(tmp), "%s/%s.tmp", dir, name) != 0 ||
        mr_journal_fmt(dst, sizeof(dst), "%s/%s", dir, name) != 0) {
        return MR_ETOOBIG;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return mr_err_from_errno(errno);
    }
    int rc = 0;
    const uint8_t *p = data;
    while (len > 0 && rc == 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno != EINTR) {
            rc = mr_err_from_errno(errno);
        } else if (w > 0) {
            p += w;
            len -= (size_t)w;
        }
    }
    if (rc == 0 && fsync(fd) != 0) {
        rc = mr_err_from_errno(errno);
    }
    if (close(fd) != 0 && rc == 0) {
        rc = mr_err_from_errno(errno);
    }
    if (rc == 0 && rename(tmp, dst) != 0) {
        rc = mr_err_from_errno(errno);
    }
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    return mr_journal_dir_sync(dir);
}

int mr_journal_read_small(const char *path, size_t max, uint8_t **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return mr_err_from_errno(errno);
    }
    int rc = 0;
    uint8_t *buf = mr_malloc(max + 1);
    size_t got = 0;
    if (buf == NULL) {
        rc = MR_ENOMEM;
    }
    while (rc == 0) {
        ssize_t r = read(fd, buf + got, max + 1 - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            rc = mr_err_from_errno(errno);
        } else if (r == 0) {
            break;
        } else if ((got += (size_t)r) > max) {
            rc = MR_ETOOBIG;
        }
    }
    close(fd);
    if (rc != 0) {
        mr_free(buf);
        return rc;
    }
    *data = buf;
    *len = got;
    return 0;
}

bool mr_journal_name_ok(const char *name, size_t max)
{
    size_t n = strlen(name);
    if (n == 0 || n > max || name[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

void mr_journal_report(struct mr_journal_recovery *rep, const struct mr_partition *p,
                       int64_t seg_base, uint64_t pos, int64_t offset, uint64_t dropped,
                       const char *reason)
{
    if (rep == NULL) {
        return;
    }
    if (rep->event_count >= MR_JOURNAL_RECOVERY_EVENTS) {
        rep->events_lost++;
        return;
    }
    struct mr_journal_recovery_event *e = &rep->events[rep->event_count++];
    mr_journal_fmt(e->topic, sizeof(e->topic), "%s", p->topic->name);
    e->partition = p->id;
    e->segment_base = seg_base;
    e->position = pos;
    e->offset = offset;
    e->bytes_dropped = dropped;
    mr_journal_fmt(e->reason, sizeof(e->reason), "%s", reason);
}

/* ---- options */

void mr_journal_options_init(struct mr_journal_options *o)
{
    memset(o, 0, sizeof(*o));
    o->fsync = MR_JOURNAL_FSYNC_ALWAYS;
    o->fsync_interval_ms = 10;
    o->segment_bytes = 64ull * 1024 * 1024;
    o->segment_age_ms = 3600LL * 1000; /* 1 h: retention by age then frees space hourly */
    o->retention_age_ms = 7LL * 24 * 3600 * 1000;
    o->retention_bytes = MR_JOURNAL_UNLIMITED;
    o->index_interval_bytes = 4096;
    o->max_batch_bytes = MR_BATCH_DEFAULT_CAP;
    o->queue_max_bytes = 64ull * 1024 * 1024;
    o->retention_check_ms = 60000;
    o->max_bytes = MR_JOURNAL_UNLIMITED;
    o->overflow = MR_JOURNAL_OVERFLOW_BLOCK;
}

int mr_journal_fsync_parse(const char *s, enum mr_journal_fsync *out)
{
    static const char *const names[] = {"always", "interval", "never"};
    for (int i = 0; i < 3; i++) {
        if (s != NULL && strcmp(s, names[i]) == 0) {
            *out = (enum mr_journal_fsync)i;
            return 0;
        }
    }
    return MR_EINVAL;
}

const char *mr_journal_fsync_name(enum mr_journal_fsync f)
{
    switch (f) {
    case MR_JOURNAL_FSYNC_ALWAYS:
        return "always";
    case MR_JOURNAL_FSYNC_INTERVAL:
        return "interval";
    case MR_JOURNAL_FSYNC_NEVER:
        return "never";
    }
    return "unknown";
}

static int options_check(const struct mr_journal_options *o, struct mr_err *err)
{
    if (o->dir == NULL || o->dir[0] == '\0') {
        return MR_ERR_SET(err, MR_EINVAL, "journal: dir is required");
    }
    if ((unsigned)o->fsync > MR_JOURNAL_FSYNC_NEVER) {
        return MR_ERR_SET(err, MR_EINVAL, "journal: unknown fsync policy %d", (int)o->fsync);
    }
    if (o->fsync == MR_JOURNAL_FSYNC_INTERVAL &&
        (o->fsync_interval_ms < 1 || o->fsync_interval_ms > 60000)) {
        return MR_ERR_SET(err, MR_EINVAL, "journal: fsync_interval_ms %u not in 1..60000",
                          o->fsync_interval_ms);
    }
    if (o->segment_bytes < 4096 || o->segment_bytes > MR_SEGMENT_MAX_BYTES) {
        return MR_ERR_SET(err, MR_EINVAL, "journal: segment_bytes %llu not in 4096..1 GiB",
                          (unsigned long long)o->segment_bytes);
    }
    if (o->index_interval_bytes < 1) {
        return MR_ERR_SET(err, MR_EINVAL, "journal: index_interval_bytes must be > 0");
    }
    if (o->max_batch_bytes < MR_BATCH_HEADER_SIZE + 8 || o->max_batch_bytes > MR_BATCH_MAX_BYTES ||
        o->queue_max_bytes < o->max_batch_bytes) {
        return MR_ERR_SET(err, MR_EINVAL,
                          "journal: max_batch_bytes %u must be 69..64 MiB and <= queue_max_bytes",
                          o->max_batch_bytes);
    }
    if (o->retention_check_ms < 10) {
        return MR_ERR_SET(err, MR_EINVAL, "journal: retention_check_ms must be >= 10");
    }
    if (o->retention_age_ms < -1 || o->retention_bytes < -1 || o->segment_age_ms < -1 ||
        o->max_bytes < -1) {
        return MR_ERR_SET(err, MR_EINVAL, "journal: ages and sizes must be >= 0 or -1 (none)");
    }
    return 0;
}

/* ---- writer: write, sync, commit, ack */

struct wstate {
    struct mr_journal *j;
    int fail_write_errno; /* test hook, copied under q_lock */
    uint64_t fail_write_after;
    int fail_sync_errno;
    struct mr_partition *unsynced; /* interval policy: written, not yet synced */
    int64_t next_sync;             /* monotonic ms, 0 = nothing unsynced */
};

static struct mr_segment *active_seg(struct mr_partition *p)
{
    return p->segs[p->nsegs - 1]; /* the writer is the only one that adds segments */
}

static void pend_push(struct mr_partition *p, struct append_req *r)
{
    r->next = NULL;
    if (p->pend_tail != NULL) {
        p->pend_tail->next = r;
    } else {
        p->pend_head = r;
    }
    p->pend_tail = r;
}

static void req_free(struct append_req *r)
{
    if (r->owned) {
        mr_free(r->data);
    }
    mr_free(r);
}

/* Ack every pending append of p in order, then release their queue bytes. */
static void ack_pending(struct mr_journal *j, struct mr_partition *p)
{
    uint64_t bytes = 0;
    struct append_req *r = p->pend_head;
    p->pend_head = p->pend_tail = NULL;
    while (r != NULL) {
        struct append_req *next = r->next;
        r->cb(r->arg, r->status, p->id, r->base_offset, (uint32_t)r->count);
        bytes += r->len;
        req_free(r);
        r = next;
    }
    pthread_mutex_lock(&j->q_lock);
    j->q_bytes -= bytes;
    pthread_cond_broadcast(&j->q_space);
    pthread_mutex_unlock(&j->q_lock);
}

static void req_fail(struct append_req *r, int status)
{
    r->base_offset = -1;
    r->status = status;
}

/* Make every successfully written pending append readable, optionally syncing first. */
static void commit_pending(struct wstate *w, struct mr_partition *p, bool sync)
{
    struct mr_journal *j = w->j;
    struct mr_segment *s = active_seg(p);
    bool any = false;
    for (struct append_req *r = p->pend_head; r != NULL; r = r->next) {
        any |= r->base_offset >= 0;
    }
    if (any && sync) {
        int rc = 0;
        if (w->fail_sync_errno != 0) {
            rc = mr_err_from_errno(w->fail_sync_errno);
            w->fail_sync_errno = 0;
        } else if (fdatasync(s->fd) != 0) {
            rc = mr_err_from_errno(errno);
        } else {
            atomic_fetch_add_explicit(&j->stat_syncs, 1, memory_order_relaxed);
        }
        if (rc != 0) {
            /* After a failed sync the page cache cannot be trusted: cut back to the last
             * committed (synced) end and fail everything written since. */
            for (struct append_req *r = p->pend_head; r != NULL; r = r->next) {
                if (r->base_offset >= 0) {
                    req_fail(r, rc);
                }
            }
            if (ftruncate(s->fd, (off_t)s->size) == 0) {
                s->write_size = s->size;
            }
            p->next_offset = p->end;
            any = false;
        }
    }
    if (any) {
        pthread_mutex_lock(&p->lock);
        for (struct append_req *r = p->pend_head; r != NULL; r = r->next) {
            if (r->base_offset < 0) {
                continue;
            }
            int64_t last = r->base_offset + r->count - 1;
            mr_index_note(s, j->opts.index_interval_bytes, r->base_offset, last, r->pos, r->len,
                          r->max_ts);
            if (r->max_ts > s->max_ts) {
                s->max_ts = r->max_ts;
            }
            if (s->first_ts < 0) {
                s->first_ts = r->max_ts;
            }
            s->size = r->pos + r->len;
            s->end_offset = last + 1;
            p->end = last + 1;
        }
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->lock);
        mr_index_flush(s); /* derived data: a failure only means a rebuild at the next open */
        if (j->opts.on_commit != NULL) {
            j->opts.on_commit(j->opts.on_commit_arg, p->topic, p->id, p->end);
        }
    }
    ack_pending(j, p);
}

static int pwritev_all(struct wstate *w, int fd, struct iovec *iov, int n, uint64_t pos)
{
    if (w->fail_write_errno != 0) {
        /* Test hook: write only the first fail_write_after bytes, then fail like a full disk. */
        uint64_t left = w->fail_write_after;
        for (int i = 0; i < n && left > 0; i++) {
            size_t k = iov[i].iov_len < left ? iov[i].iov_len : (size_t)left;
            if (pwrite(fd, iov[i].iov_base, k, (off_t)pos) != (ssize_t)k) {
                break;
            }
            pos += k;
            left -= k;
        }
        int e = w->fail_write_errno;
        w->fail_write_errno = 0;
        return mr_err_from_errno(e);
    }
    while (n > 0) {
        ssize_t wr = pwritev(fd, iov, n, (off_t)pos);
        if (wr < 0) {
            if (errno == EINTR) {
                continue;
            }
            return mr_err_from_errno(errno);
        }
        pos += (uint64_t)wr;
        size_t done = (size_t)wr;
        while (n > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

/* Batches assigned offsets but not yet written. */
struct chunk {
    struct iovec iov[WRITER_IOV];
    struct append_req *head, *tail;
    int n;
    uint64_t bytes;
};

/* Write the chunk at the end of the active segment. On failure the file is cut back to where
 * the chunk started, offsets are handed out again, and every append in it fails. */
static int chunk_flush(struct wstate *w, struct mr_partition *p, struct chunk *c)
{
    if (c->n == 0) {
        return 0;
    }
    struct mr_segment *s = active_seg(p);
    uint64_t start = s->write_size;
    int rc = pwritev_all(w, s->fd, c->iov, c->n, start);
    if (rc == 0) {
        s->write_size += c->bytes;
        atomic_fetch_add_explicit(&w->j->stat_writes, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->j->stat_bytes, c->bytes, memory_order_relaxed);
    } else {
        if (ftruncate(s->fd, (off_t)start) != 0) {
            /* The next write overwrites from `start`; roll and close cut to write_size. */
        }
        p->next_offset = c->head->base_offset;
    }
    for (struct append_req *r = c->head, *next; r != NULL; r = next) {
        next = r->next;
        if (rc != 0) {
            req_fail(r, rc);
        }
        pend_push(p, r);
    }
    c->head = c->tail = NULL;
    c->n = 0;
    c->bytes = 0;
    return rc;
}

/* `queued` bytes are assigned to the active segment but not written yet. */
static bool needs_roll(const struct mr_journal *j, const struct mr_segment *s, uint64_t queued,
                       size_t len, int64_t now)
{
    uint64_t size = s->write_size + queued;
    if (size == 0) {
        return false;
    }
    if (size + len > j->opts.segment_bytes) {
        return true;
    }
    return j->opts.segment_age_ms >= 0 && now - s->created_ms >= j->opts.segment_age_ms;
}

/* Write this group's appends of one partition (rolling as needed). */
static void write_partition(struct wstate *w, struct mr_partition *p, struct chunk *c)
{
    struct mr_journal *j = w->j;
    int64_t now = mr_clock_wall_ms();
    int err = 0;
    struct append_req *r = p->grp_head;
    p->grp_head = p->grp_tail = NULL;
    while (r != NULL) {
        struct append_req *next = r->next;
        r->next = NULL;
        if (err == 0 && needs_roll(j, active_seg(p), c->bytes, r->len, now)) {
            err = chunk_flush(w, p, c);
            commit_pending(w, p, true); /* the old segment is synced at roll anyway */
            if (err == 0) {
                err = mr_partition_roll(p);
            }
        }
        if (err != 0) {
            req_fail(r, err);
            pend_push(p, r);
            r = next;
            continue;
        }
        r->base_offset = p->next_offset;
        mr_be64_put(r->data, (uint64_t)r->base_offset);
        r->pos = active_seg(p)->write_size + c->bytes;
        p->next_offset += r->count;
        c->iov[c->n].iov_base = r->data;
        c->iov[c->n].iov_len = r->len;
        c->n++;
        c->bytes += r->len;
        if (c->tail != NULL) {
            c->tail->next = r;
        } else {
            c->head = r;
        }
        c->tail = r;
        if (c->n == WRITER_IOV) {
            err = chunk_flush(w, p, c);
        }
        r = next;
    }
    chunk_flush(w, p, c);
}

static void mark_unsynced(struct wstate *w, struct mr_partition *p)
{
    if (!p->unsynced) {
        p->unsynced = true;
        p->next_unsynced = w->unsynced;
        w->unsynced = p;
    }
    if (w->next_sync == 0) {
        w->next_sync = mr_clock_mono_ms() + w->j->opts.fsync_interval_ms;
    }
}

static void sync_unsynced(struct wstate *w)
{
    struct mr_partition *p = w->unsynced;
    w->unsynced = NULL;
    w->next_sync = 0;
    while (p != NULL) {
        struct mr_partition *next = p->next_unsynced;
        p->unsynced = false;
        p->next_unsynced = NULL;
        commit_pending(w, p, true);
        p = next;
    }
}

static void process_group(struct wstate *w, struct append_req *list, struct chunk *c)
{
    struct mr_partition *dirty = NULL, *dirty_tail = NULL;
    while (list != NULL) {
        struct append_req *r = list;
        list = r->next;
        r->next = NULL;
        struct mr_partition *p = r->p;
        if (p->grp_tail != NULL) {
            p->grp_tail->next = r;
        } else {
            p->grp_head = r;
        }
        p->grp_tail = r;
        if (!p->dirty) {
            p->dirty = true;
            p->next_dirty = NULL;
            if (dirty_tail != NULL) {
                dirty_tail->next_dirty = p;
            } else {
                dirty = p;
            }
            dirty_tail = p;
        }
    }
    for (struct mr_partition *p = dirty; p != NULL; p = p->next_dirty) {
        write_partition(w, p, c);
    }
    for (struct mr_partition *p = dirty, *next; p != NULL; p = next) {
        next = p->next_dirty;
        p->dirty = false;
        p->next_dirty = NULL;
        switch (w->j->opts.fsync) {
        case MR_JOURNAL_FSYNC_ALWAYS:
            commit_pending(w, p, true);
            break;
        case MR_JOURNAL_FSYNC_NEVER:
            commit_pending(w, p, false);
            break;
        case MR_JOURNAL_FSYNC_INTERVAL:
            mark_unsynced(w, p);
            break;
        }
    }
}

static long retention_all(struct mr_journal *j)
{
    long deleted = 0;
    int64_t now = mr_clock_wall_ms();
    pthread_mutex_lock(&j->topics_lock);
    for (size_t i = 0; i < j->ntopics; i++) {
        struct mr_journal_topic *t = j->topics[i];
        for (uint32_t k = 0; k < t->nparts; k++) {
            deleted += mr_partition_retention(t->parts[k], now);
        }
    }
    pthread_mutex_unlock(&j->topics_lock);
    return deleted;
}

static void deadline_ts(int64_t mono_ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000;
}

static void *writer_main(void *arg)
{
    struct mr_journal *j = arg;
    struct wstate w = {.j = j};
    struct chunk *c = j->chunk;
    int64_t next_retention = mr_clock_mono_ms() + j->opts.retention_check_ms;
    int64_t next_disk = 0; /* while full: check the cap every second */
    pthread_mutex_lock(&j->q_lock);
    for (;;) {
        while (j->q_head == NULL && !j->stopping && j->retention_req == j->retention_done) {
            int64_t deadline = next_retention;
            if (w.next_sync != 0 && w.next_sync < deadline) {
                deadline = w.next_sync;
            }
            if (atomic_load(&j->disk_full) && next_disk < deadline) {
                deadline = next_disk;
            }
            if (mr_clock_mono_ms() >= deadline) {
                break;
            }
            struct timespec ts;
            deadline_ts(deadline, &ts);
            pthread_cond_timedwait(&j->q_cv, &j->q_lock, &ts);
        }
        struct append_req *list = j->q_head;
        j->q_head = j->q_tail = NULL;
        bool stopping = j->stopping;
        uint64_t ret_req = j->retention_req;
        if (j->fail_write_errno != 0) {
            w.fail_write_errno = j->fail_write_errno;
            w.fail_write_after = j->fail_write_after;
            j->fail_write_errno = 0;
        }
        if (j->fail_sync_errno != 0) {
            w.fail_sync_errno = j->fail_sync_errno;
            j->fail_sync_errno = 0;
        }
        pthread_mutex_unlock(&j->q_lock);

        if (list != NULL) {
            process_group(&w, list, c);
            mr_journal_disk_enforce(j);
        }
        int64_t now = mr_clock_mono_ms();
        if (w.unsynced != NULL && (now >= w.next_sync || (stopping && list == NULL))) {
            sync_unsynced(&w);
        }
        bool want_ret = ret_req != j->retention_done;
        long deleted = 0;
        if (want_ret || now >= next_retention) {
            deleted = retention_all(j);
            mr_journal_disk_enforce(j);
            next_retention = now + j->opts.retention_check_ms;
        } else if (atomic_load(&j->disk_full) && now >= next_disk) {
            mr_journal_disk_enforce(j);
            next_disk = now + 1000;
        }
        pthread_mutex_lock(&j->q_lock);
        if (want_ret) {
            j->retention_done = ret_req;
            j->retention_result = deleted;
            pthread_cond_broadcast(&j->retention_cv);
        }
        if (stopping && list == NULL && j->q_head == NULL && w.unsynced == NULL &&
            j->retention_req == j->retention_done) {
            break;
        }
    }
    pthread_mutex_unlock(&j->q_lock);
    return NULL;
}

/* ---- producers */

int mr_journal_append(struct mr_journal_topic *t, uint32_t partition, void *batch, size_t len,
                      unsigned flags, mr_journal_ack_cb cb, void *arg)
{
    if (t == NULL || batch == NULL || cb == NULL || partition >= t->nparts) {
        return MR_EINVAL;
    }
    struct mr_journal *j = t->j;
    if (j->opts.read_only) {
        return MR_EROFS;
    }
    if (len > j->opts.max_batch_bytes) {
        return MR_ETOOBIG;
    }
    struct mr_batch_info bi;
    int rc = (flags & MR_JOURNAL_APPEND_TRUSTED) != 0 ? mr_batch_parse_trusted(batch, len, &bi)
                                                      : mr_batch_parse(batch, len, &bi, NULL);
    if (rc != 0) {
        return MR_ECORRUPT;
    }
    if (bi.size != len || bi.count < 1 || bi.last_offset_delta != bi.count - 1) {
        return MR_EINVAL;
    }
    bool take = (flags & MR_JOURNAL_APPEND_TAKE) != 0;
    struct append_req *r = mr_malloc(sizeof(*r) + (take ? 0 : len));
    if (r == NULL) {
        return MR_ENOMEM;
    }
    *r = (struct append_req){.p = t->parts[partition],
                             .cb = cb,
                             .arg = arg,
                             .len = len,
                             .owned = take,
                             .count = bi.count,
                             .max_ts = bi.max_timestamp};
    if (take) {
        r->data = batch;
    } else {
        r->data = r->inline_data;
        memcpy(r->data, batch, len);
    }
    bool nowait = (flags & MR_JOURNAL_APPEND_NOWAIT) != 0;
    pthread_mutex_lock(&j->q_lock);
    if (j->writer_started && pthread_equal(pthread_self(), j->writer)) {
        nowait = true; /* the writer cannot wait for itself */
    }
    while (!j->stopping && j->q_bytes > 0 && j->q_bytes + len > j->opts.queue_max_bytes) {
        if (nowait) {
            rc = MR_EAGAIN;
            break;
        }
        pthread_cond_wait(&j->q_space, &j->q_lock);
    }
    if (rc == 0 && j->stopping) {
        rc = MR_ECLOSED;
    }
    if (rc == 0) {
        if (j->q_tail != NULL) {
            j->q_tail->next = r;
        } else {
            j->q_head = r;
            pthread_cond_signal(&j->q_cv);
        }
        j->q_tail = r;
        j->q_bytes += len;
    }
    pthread_mutex_unlock(&j->q_lock);
    if (rc != 0) {
        r->owned = false; /* on error the caller keeps its batch */
        req_free(r);
    }
    return rc;
}

struct waiter {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
    int status;
    int64_t base;
};

static void waiter_cb(void *arg, int status, uint32_t partition, int64_t base, uint32_t count)
{
    struct waiter *w = arg;
    (void)partition;
    (void)count;
    pthread_mutex_lock(&w->m);
    w->status = status;
    w->base = base;
    w->done = true;
    pthread_cond_signal(&w->c);
    pthread_mutex_unlock(&w->m);
}

int mr_journal_append_wait(struct mr_journal_topic *t, uint32_t partition, void *batch, size_t len,
                           int64_t *base_offset)
{
    if (t != NULL && t->j->writer_started && pthread_equal(pthread_self(), t->j->writer)) {
        return MR_EAGAIN;
    }
    struct waiter w = {.done = false};
    pthread_mutex_init(&w.m, NULL);
    pthread_cond_init(&w.c, NULL);
    int rc = mr_journal_append(t, partition, batch, len, 0, waiter_cb, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.m);
        while (!w.done) {
            pthread_cond_wait(&w.c, &w.m);
        }
        pthread_mutex_unlock(&w.m);
        rc = w.status;
        if (rc == 0 && base_offset != NULL) {
            *base_offset = w.base;
        }
    }
    pthread_mutex_destroy(&w.m);
    pthread_cond_destroy(&w.c);
    return rc;
}

long mr_journal_enforce_retention(struct mr_journal *j)
{
    if (j == NULL) {
        return MR_EINVAL;
    }
    if (j->opts.read_only) {
        return MR_EROFS;
    }
    if (j->writer_started && pthread_equal(pthread_self(), j->writer)) {
        return MR_EAGAIN;
    }
    pthread_mutex_lock(&j->q_lock);
    if (j->stopping) {
        pthread_mutex_unlock(&j->q_lock);
        return MR_ECLOSED;
    }
    uint64_t gen = ++j->retention_req;
    pthread_cond_signal(&j->q_cv);
    while (j->retention_done < gen) {
        pthread_cond_wait(&j->retention_cv, &j->q_lock);
    }
    long n = j->retention_result;
    pthread_mutex_unlock(&j->q_lock);
    return n;
}

/* Test hooks (declared in tests, not in the public header). */
void mr_journal_test_fail_write(struct mr_journal *j, int errnum, uint64_t after_bytes);
void mr_journal_test_fail_sync(struct mr_journal *j, int errnum);

void mr_journal_test_fail_write(struct mr_journal *j, int errnum, uint64_t after_bytes)
{
    pthread_mutex_lock(&j->q_lock);
    j->fail_write_errno = errnum;
    j->fail_write_after = after_bytes;
    pthread_mutex_unlock(&j->q_lock);
}

void mr_journal_test_fail_sync(struct mr_journal *j, int errnum)
{
    pthread_mutex_lock(&j->q_lock);
    j->fail_sync_errno = errnum;
    pthread_mutex_unlock(&j->q_lock);
}

/* ---- open and close */

static struct mr_journal *journal_new(const struct mr_journal_options *opts)
{
    struct mr_journal *j = mr_calloc(1, sizeof(*j));
    if (j == NULL) {
        return NULL;
    }
    j->opts = *opts;
    j->dir = mr_strdup(opts->dir);
    if (j->dir == NULL) {
        mr_free(j);
        return NULL;
    }
    j->opts.dir = j->dir;
    j->lock_fd = -1;
    pthread_mutex_init(&j->topics_lock, NULL);
    pthread_mutex_init(&j->q_lock, NULL);
    pthread_mutex_init(&j->readers_lock, NULL);
    pthread_mutex_init(&j->cursor_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->q_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&j->q_space, NULL);
    pthread_cond_init(&j->retention_cv, NULL);
    pthread_cond_init(&j->readers_cv, NULL);
    atomic_init(&j->closing, false);
    return j;
}

static void journal_free(struct mr_journal *j)
{
    for (size_t i = 0; i < j->ntopics; i++) {
        mr_topic_free(j->topics[i]);
    }
    mr_free(j->topics);
    mr_free(j->chunk);
    if (j->lock_fd >= 0) {
        close(j->lock_fd);
    }
    pthread_mutex_destroy(&j->topics_lock);
    pthread_mutex_destroy(&j->q_lock);
    pthread_mutex_destroy(&j->readers_lock);
    pthread_mutex_destroy(&j->cursor_lock);
    pthread_cond_destroy(&j->q_cv);
    pthread_cond_destroy(&j->q_space);
    pthread_cond_destroy(&j->retention_cv);
    pthread_cond_destroy(&j->readers_cv);
    mr_free(j->dir);
    mr_free(j);
}

static int take_lock(struct mr_journal *j, struct mr_err *err)
{
    if (mkdir(j->dir, 0755) != 0 && errno != EEXIST) {
        int rc = mr_err_from_errno(errno);
        return MR_ERR_SET(err, rc, "cannot create journal directory %s: %s", j->dir,
                          strerror(errno));
    }
    char path[4096];
    mr_journal_fmt(path, sizeof(path), "%s/%s", j->dir, MR_LOCK_FILE);
    j->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (j->lock_fd < 0) {
        int rc = mr_err_from_errno(errno);
        return MR_ERR_SET(err, rc, "cannot open %s for writing: %s%s", path, strerror(errno),
                          rc == MR_EROFS ? " (open the journal read-only to read it)" : "");
    }
    if (flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        return MR_ERR_SET(err, MR_EBUSY,
                          "journal %s is already open for writing by another "
                          "process",
                          j->dir);
    }
    return 0;
}

static int load_topics(struct mr_journal *j, struct mr_journal_recovery *rep, struct mr_err *err)
{
    DIR *d = opendir(j->dir);
    if (d == NULL) {
        int rc = mr_err_from_errno(errno);
        return MR_ERR_SET(err, rc, "cannot read journal directory %s: %s", j->dir, strerror(errno));
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        char meta[4096];
        mr_journal_fmt(meta, sizeof(meta), "%s/%s/%s", j->dir, de->d_name, MR_TOPIC_META);
        if (!mr_journal_name_ok(de->d_name, MR_JOURNAL_TOPIC_MAX) || access(meta, F_OK) != 0) {
            continue; /* not a topic (or one whose creation never finished) */
        }
        struct mr_journal_topic *t;
        rc = mr_topic_load(j, de->d_name, rep, &t, err);
        if (rc == 0 && (rc = mr_topic_insert(j, t)) != 0) {
            mr_topic_free(t);
            MR_ERR_SET(err, rc, "cannot add topic %s", de->d_name);
        }
    }
    closedir(d);
    return rc;
}

int mr_journal_open(const struct mr_journal_options *opts, struct mr_journal **out,
                    struct mr_journal_recovery *report, struct mr_err *err)
{
    if (opts == NULL || out == NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "journal: missing options");
    }
    int rc = options_check(opts, err);
    if (rc != 0) {
        return rc;
    }
    struct mr_journal *j = journal_new(opts);
    if (j == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory opening journal %s", opts->dir);
    }
    if (report != NULL) {
        memset(report, 0, sizeof(*report));
    }
    char marker[4096];
    mr_journal_fmt(marker, sizeof(marker), "%s/%s", j->dir, MR_CLEAN_MARKER);
    if (opts->read_only) {
        if (access(j->dir, R_OK | X_OK) != 0) {
            rc = mr_err_from_errno(errno);
            MR_ERR_SET(err, rc, "cannot read journal directory %s: %s", j->dir, strerror(errno));
            goto fail;
        }
    } else if ((rc = take_lock(j, err)) != 0) {
        goto fail;
    }
    j->clean_open = access(marker, F_OK) == 0;
    if (report != NULL) {
        report->clean_shutdown = j->clean_open;
    }
    rc = load_topics(j, report, err);
    j->clean_open = false;
    if (rc != 0) {
        goto fail;
    }
    if (!opts->read_only) {
        /* From here on a crash is not a clean shutdown. */
        if (unlink(marker) == 0) {
            rc = mr_journal_dir_sync(j->dir);
        }
        j->chunk = mr_calloc(1, sizeof(struct chunk));
        if (rc == 0 && j->chunk == NULL) {
            rc = MR_ENOMEM;
        }
        if (rc == 0) {
            mr_journal_disk_enforce(j); /* a journal reopened over its cap starts full */
        }
        if (rc == 0 && pthread_create(&j->writer, NULL, writer_main, j) != 0) {
            rc = MR_ESYS;
        }
        if (rc != 0) {
            MR_ERR_SET(err, rc, "cannot start the journal writer for %s", j->dir);
            goto fail;
        }
        j->writer_started = true;
    }
    *out = j;
    return 0;
fail:
    journal_free(j);
    return rc;
}

/* After the writer stopped: sync and flush every active segment, then mark a clean shutdown. */
static int final_flush(struct mr_journal *j)
{
    int rc = 0;
    for (size_t i = 0; i < j->ntopics; i++) {
        struct mr_journal_topic *t = j->topics[i];
        for (uint32_t k = 0; k < t->nparts; k++) {
            struct mr_partition *p = t->parts[k];
            if (p->nsegs == 0) {
                continue;
            }
            struct mr_segment *s = p->segs[p->nsegs - 1];
            int r = mr_index_flush(s);
            if (r == 0 && ftruncate(s->fd, (off_t)s->write_size) != 0) {
                r = mr_err_from_errno(errno);
            }
            if (r == 0 && fdatasync(s->fd) != 0) {
                r = mr_err_from_errno(errno);
            }
            if (r == 0 && s->mem != NULL &&
                (fdatasync(s->mem->idx_fd) != 0 || fdatasync(s->mem->tidx_fd) != 0)) {
                r = mr_err_from_errno(errno);
            }
            if (r != 0 && rc == 0) {
                rc = r;
            }
        }
    }
    if (rc == 0) {
        rc = mr_journal_write_atomic(j->dir, MR_CLEAN_MARKER, "", 0);
    }
    return rc;
}

int mr_journal_close(struct mr_journal *j)
{
    if (j == NULL) {
        return 0;
    }
    atomic_store(&j->closing, true);
    for (size_t i = 0; i < j->ntopics; i++) {
        struct mr_journal_topic *t = j->topics[i];
        for (uint32_t k = 0; k < t->nparts; k++) {
            pthread_mutex_lock(&t->parts[k]->lock);
            pthread_cond_broadcast(&t->parts[k]->cv);
            pthread_mutex_unlock(&t->parts[k]->lock);
        }
    }
    pthread_mutex_lock(&j->readers_lock);
    while (j->readers > 0) {
        pthread_cond_wait(&j->readers_cv, &j->readers_lock);
    }
    pthread_mutex_unlock(&j->readers_lock);
    int rc = 0;
    if (j->writer_started) {
        pthread_mutex_lock(&j->q_lock);
        j->stopping = true;
        pthread_cond_signal(&j->q_cv);
        pthread_cond_broadcast(&j->q_space);
        pthread_mutex_unlock(&j->q_lock);
        pthread_join(j->writer, NULL);
        rc = final_flush(j);
    }
    journal_free(j);
    return rc;
}

void mr_journal_stats(struct mr_journal *j, struct mr_journal_stats *out)
{
    out->writes = atomic_load_explicit(&j->stat_writes, memory_order_relaxed);
    out->bytes_written = atomic_load_explicit(&j->stat_bytes, memory_order_relaxed);
    out->syncs = atomic_load_explicit(&j->stat_syncs, memory_order_relaxed);
}
