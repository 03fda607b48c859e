/* Reading a partition: by offset, by timestamp, earliest/latest, and following new commits.
 *
 * A reader holds a reference on the segment it reads, so retention may delete that segment's
 * files meanwhile (the open descriptor keeps the bytes). It reads with pread through a buffer,
 * never past the segment's committed size, and checks every batch (length, CRC, records).
 */
#include "journal/journal_internal.h"

#include <time.h>
#include <unistd.h>

#include "millrace/alloc.h"

#define READER_BUF (256 * 1024)

struct mr_journal_reader {
    struct mr_journal *j;
    struct mr_partition *p;
    struct mr_segment *seg; /* referenced; NULL until located */
    uint64_t pos;           /* file position of the next batch to parse */
    uint64_t batch_pos;     /* file position of the current batch */
    int64_t next;           /* next offset to return */
    struct mr_rbuf rb;
    struct mr_batch_info bi;
    struct mr_batch_iter it;
    bool in_batch;
    bool counted; /* counted in j->readers */
};

static void reader_set_seg(struct mr_journal_reader *r, struct mr_segment *s, uint64_t pos)
{
    mr_segment_unref(r->seg);
    r->seg = s;
    r->pos = pos;
    r->rb.fd = s != NULL ? s->fd : -1;
    r->rb.start = 0;
    r->rb.len = 0;
    r->in_batch = false;
}

static int locate(struct mr_journal_reader *r)
{
    struct mr_segment *s = mr_partition_find(r->p, r->next);
    if (s == NULL) {
        pthread_mutex_lock(&r->p->lock);
        bool empty = r->p->nsegs == 0;
        pthread_mutex_unlock(&r->p->lock);
        return empty ? MR_EEOF : MR_ERANGE;
    }
    reader_set_seg(r, s, mr_index_lookup_offset(s, r->next));
    return 0;
}

/* Move to the segment after the current one; false if the current one is the newest. */
static bool next_segment(struct mr_journal_reader *r, uint64_t *limit)
{
    struct mr_partition *p = r->p;
    struct mr_segment *n = NULL;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->nsegs; i++) {
        if (p->segs[i]->base > r->seg->base) {
            n = p->segs[i];
            mr_segment_ref(n);
            break;
        }
    }
    if (n != NULL) {
        *limit = n->size;
    }
    pthread_mutex_unlock(&p->lock);
    if (n == NULL) {
        return false;
    }
    if (n->base > r->next) {
        r->next = n->base; /* a gap (a damaged segment was cut short): skip it */
    }
    reader_set_seg(r, n, 0);
    return true;
}

/* Next checked batch that ends at or after r->next. */
static int read_batch(struct mr_journal_reader *r, struct mr_batch_info *bi)
{
    for (;;) {
        if (r->seg == NULL) {
            int rc = locate(r);
            if (rc != 0) {
                return rc;
            }
        }
        pthread_mutex_lock(&r->p->lock);
        uint64_t limit = r->seg->size;
        pthread_mutex_unlock(&r->p->lock);
        if (r->pos >= limit) {
            if (!next_segment(r, &limit)) {
                return MR_EEOF;
            }
            continue;
        }
        r->rb.limit = limit;
        const uint8_t *ptr;
        long n = mr_rbuf_ensure(&r->rb, r->pos, 12, &ptr);
        if (n >= 12) {
            uint32_t blen = mr_be32_get(ptr + 8);
            size_t want = blen <= MR_BATCH_MAX_BYTES - 12 ? 12 + (size_t)blen : 12;
            n = mr_rbuf_ensure(&r->rb, r->pos, want, &ptr);
        }
        if (n < 0) {
            return (int)n;
        }
        int rc = mr_batch_parse(ptr, (size_t)n, bi, NULL);
        if (rc != 0) {
            return MR_ECORRUPT; /* committed bytes must hold whole, valid batches */
        }
        r->batch_pos = r->pos;
        r->pos += bi->size;
        if (bi->base_offset + bi->last_offset_delta >= r->next) {
            return 0;
        }
    }
}

int mr_journal_reader_next_batch(struct mr_journal_reader *r, struct mr_batch_info *info)
{
    if (r->in_batch) {
        r->in_batch = false;
        r->pos = r->batch_pos; /* hand out the whole batch the position is in */
    }
    struct mr_batch_info bi;
    int rc = read_batch(r, &bi);
    if (rc != 0) {
        return rc;
    }
    r->next = bi.base_offset + bi.last_offset_delta + 1;
    *info = bi;
    return 0;
}

int mr_journal_reader_next(struct mr_journal_reader *r, struct mr_batch_record *rec)
{
    for (;;) {
        if (!r->in_batch) {
            int rc = read_batch(r, &r->bi);
            if (rc != 0) {
                return rc;
            }
            mr_batch_iter_init(&r->it, &r->bi);
            r->in_batch = true;
        }
        struct mr_batch_record one;
        int rc = mr_batch_iter_next(&r->it, &one, NULL);
        if (rc == MR_EEOF) {
            r->in_batch = false;
            int64_t end = r->bi.base_offset + r->bi.last_offset_delta + 1;
            if (end > r->next) {
                r->next = end;
            }
            continue;
        }
        if (rc != 0) {
            return rc;
        }
        if (one.offset < r->next) {
            continue;
        }
        r->next = one.offset + 1;
        *rec = one;
        return 0;
    }
}

static int resolve(struct mr_journal_reader *r, int64_t offset, int64_t *out)
{
    struct mr_journal_partition_stats st;
    int rc = mr_journal_partition_stats(r->p->topic, r->p->id, &st);
    if (rc != 0) {
        return rc;
    }
    if (offset == MR_JOURNAL_EARLIEST) {
        offset = st.earliest;
    } else if (offset == MR_JOURNAL_LATEST) {
        offset = st.end;
    } else if (offset < st.earliest || offset > st.end) {
        return MR_ERANGE;
    }
    *out = offset;
    return 0;
}

int mr_journal_reader_seek(struct mr_journal_reader *r, int64_t offset)
{
    int64_t o;
    int rc = resolve(r, offset, &o);
    if (rc != 0) {
        return rc;
    }
    reader_set_seg(r, NULL, 0);
    r->next = o;
    /* Hold the segment now, so retention cannot take it from under a new reader. */
    rc = locate(r);
    return rc == MR_EEOF ? 0 : rc;
}

static int reader_init(struct mr_journal_reader *r, struct mr_journal_topic *t, uint32_t part)
{
    memset(r, 0, sizeof(*r));
    r->j = t->j;
    r->p = t->parts[part];
    return mr_rbuf_init(&r->rb, -1, READER_BUF, 0);
}

static void reader_fini(struct mr_journal_reader *r)
{
    mr_segment_unref(r->seg);
    mr_rbuf_fini(&r->rb);
}

int mr_journal_reader_create(struct mr_journal_topic *t, uint32_t partition, int64_t offset,
                             struct mr_journal_reader **out)
{
    if (t == NULL || out == NULL || partition >= t->nparts || offset < MR_JOURNAL_EARLIEST) {
        return MR_EINVAL;
    }
    if (atomic_load(&t->j->closing)) {
        return MR_ECLOSED;
    }
    struct mr_journal_reader *r = mr_malloc(sizeof(*r));
    if (r == NULL) {
        return MR_ENOMEM;
    }
    int rc = reader_init(r, t, partition);
    if (rc == 0) {
        rc = mr_journal_reader_seek(r, offset);
    }
    if (rc != 0) {
        reader_fini(r);
        mr_free(r);
        return rc;
    }
    pthread_mutex_lock(&t->j->readers_lock);
    t->j->readers++;
    r->counted = true;
    pthread_mutex_unlock(&t->j->readers_lock);
    *out = r;
    return 0;
}

void mr_journal_reader_destroy(struct mr_journal_reader *r)
{
    if (r == NULL) {
        return;
    }
    struct mr_journal *j = r->j;
    reader_fini(r);
    if (r->counted) {
        pthread_mutex_lock(&j->readers_lock);
        j->readers--;
        pthread_cond_broadcast(&j->readers_cv);
        pthread_mutex_unlock(&j->readers_lock);
    }
    mr_free(r);
}

int64_t mr_journal_reader_position(const struct mr_journal_reader *r)
{
    return r->next;
}

static void add_ms(struct timespec *ts, int ms)
{
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Another process writes: poll its files. */
static int wait_polling(struct mr_journal_reader *r, int timeout_ms)
{
    int64_t deadline = mr_clock_mono_ms() + timeout_ms;
    for (;;) {
        mr_partition_refresh(r->p);
        pthread_mutex_lock(&r->p->lock);
        bool ready = r->p->end > r->next;
        pthread_mutex_unlock(&r->p->lock);
        if (ready) {
            return 0;
        }
        if (atomic_load(&r->j->closing)) {
            return MR_ECLOSED;
        }
        int64_t left = deadline - mr_clock_mono_ms();
        if (timeout_ms >= 0 && left <= 0) {
            return MR_ETIMEDOUT;
        }
        int64_t nap = timeout_ms < 0 || left > 50 ? 50 : left;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)nap * 1000000};
        nanosleep(&ts, NULL);
    }
}

int mr_journal_reader_wait(struct mr_journal_reader *r, int timeout_ms)
{
    if (r->j->opts.read_only) {
        return wait_polling(r, timeout_ms);
    }
    struct mr_partition *p = r->p;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (timeout_ms > 0) {
        add_ms(&ts, timeout_ms);
    }
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    while (p->end <= r->next && rc == 0) {
        if (atomic_load(&r->j->closing)) {
            rc = MR_ECLOSED;
        } else if (timeout_ms == 0) {
            rc = MR_ETIMEDOUT;
        } else if (timeout_ms < 0) {
            pthread_cond_wait(&p->cv, &p->lock);
        } else if (pthread_cond_timedwait(&p->cv, &p->lock, &ts) != 0 && p->end <= r->next) {
            rc = MR_ETIMEDOUT;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int mr_journal_offset_for_time(struct mr_journal_topic *t, uint32_t partition, int64_t timestamp_ms,
                               int64_t *offset)
{
    if (t == NULL || partition >= t->nparts || offset == NULL) {
        return MR_EINVAL;
    }
    struct mr_partition *p = t->parts[partition];
    if (t->j->opts.read_only) {
        mr_partition_refresh(p);
    }
    struct mr_segment *s = NULL;
    pthread_mutex_lock(&p->lock);
    int64_t end = p->end;
    for (size_t i = 0; i < p->nsegs; i++) {
        if (p->segs[i]->max_ts >= timestamp_ms) {
            s = p->segs[i];
            mr_segment_ref(s);
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (s == NULL) {
        *offset = end;
        return 0;
    }
    struct mr_journal_reader r;
    int rc = reader_init(&r, t, partition);
    if (rc != 0) {
        mr_segment_unref(s);
        return rc;
    }
    r.next = mr_index_lookup_time(s, timestamp_ms);
    reader_set_seg(&r, s, mr_index_lookup_offset(s, r.next));
    int64_t found = end;
    struct mr_batch_info bi;
    while ((rc = read_batch(&r, &bi)) == 0) {
        if (bi.max_timestamp < timestamp_ms) {
            continue;
        }
        struct mr_batch_iter it;
        struct mr_batch_record rec;
        mr_batch_iter_init(&it, &bi);
        while ((rc = mr_batch_iter_next(&it, &rec, NULL)) == 0) {
            if (rec.offset >= r.next && rec.timestamp >= timestamp_ms) {
                break;
            }
        }
        if (rc == 0) {
            found = rec.offset;
            break;
        }
        if (rc != MR_EEOF) {
            break;
        }
    }
    reader_fini(&r);
    if (rc != 0 && rc != MR_EEOF) {
        return rc;
    }
    *offset = found;
    return 0;
}
