/* One partition: its ordered segments, crash recovery, roll and retention.
 *
 *   <dir>/<topic>/<partition>/00000000000000000000.log   oldest segment (sealed)
 *                             00000000000000000000.index
 *                             00000000000000000000.timeindex
 *                             00000000000000052311.log   newest segment (active)
 *                             ...
 *
 * Invariants: only the newest segment is appended to; a segment is sealed (its .log fdatasync'd,
 * its indexes completed and fsync'd) before a newer one is created, so after a crash only the
 * newest segment can hold a torn tail, and only segments whose indexes fail their checks need a
 * full scan. Retention deletes whole segments from the oldest, never the active one.
 */
#include "journal/journal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "millrace/alloc.h"

int64_t mr_partition_retention_age(const struct mr_partition *p)
{
    int64_t v = p->topic->retention_age_ms;
    return v != MR_JOURNAL_DEFAULT ? v : p->topic->j->opts.retention_age_ms;
}

int64_t mr_partition_retention_bytes(const struct mr_partition *p)
{
    int64_t v = p->topic->retention_bytes;
    return v != MR_JOURNAL_DEFAULT ? v : p->topic->j->opts.retention_bytes;
}

static bool parse_segment_name(const char *name, int64_t *base)
{
    size_t len = strlen(name);
    if (len != 24 || strcmp(name + 20, ".log") != 0) {
        return false;
    }
    int64_t v = 0;
    for (size_t i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10) {
            return false;
        }
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return true;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sorted base offsets of the .log files in dir, above `after`. */
int mr_partition_list_segments(const char *dir, int64_t after, int64_t **out, size_t *n)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return mr_err_from_errno(errno);
    }
    int64_t *bases = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t base;
        if (!parse_segment_name(de->d_name, &base) || base <= after) {
            continue;
        }
        if (!mr_journal_grow((void **)&bases, &cap, cnt, sizeof(*bases))) {
            rc = MR_ENOMEM;
            break;
        }
        bases[cnt++] = base;
    }
    closedir(d);
    if (rc != 0) {
        mr_free(bases);
        return rc;
    }
    if (cnt > 1) {
        qsort(bases, cnt, sizeof(*bases), cmp_i64);
    }
    *out = bases;
    *n = cnt;
    return 0;
}

static int segs_push(struct mr_partition *p, struct mr_segment *s)
{
    if (!mr_journal_grow((void **)&p->segs, &p->segs_cap, p->nsegs, sizeof(*p->segs))) {
        return MR_ENOMEM;
    }
    p->segs[p->nsegs++] = s;
    return 0;
}

struct note_ctx {
    struct mr_segment *s;
    uint32_t interval;
};

/* Scan callback: index every good batch and track the segment's end and newest timestamp. */
static void note_batch(void *arg, const struct mr_batch_info *bi, uint64_t pos)
{
    struct note_ctx *c = arg;
    int64_t last = bi->base_offset + bi->last_offset_delta;
    mr_index_note(c->s, c->interval, bi->base_offset, last, pos, bi->size, bi->max_timestamp);
    if (bi->max_timestamp > c->s->max_ts) {
        c->s->max_ts = bi->max_timestamp;
    }
}

/* Drop a bad tail found by a scan: truncate (unless read-only) and report it. */
static int drop_tail(struct mr_partition *p, struct mr_segment *s, const struct mr_scan *sc,
                     uint64_t file_size, struct mr_journal_recovery *rep)
{
    bool ro = p->topic->j->opts.read_only;
    uint64_t dropped = file_size - sc->valid_end;
    char reason[160];
    mr_journal_fmt(reason, sizeof(reason), "%s%s", ro ? "read-only, not truncated: " : "",
                   sc->reason);
    if (!ro) {
        if (ftruncate(s->fd, (off_t)sc->valid_end) != 0 || fdatasync(s->fd) != 0) {
            return mr_err_from_errno(errno);
        }
    }
    mr_journal_report(rep, p, s->base, sc->valid_end, sc->next_offset, dropped, reason);
    if (rep != NULL) {
        rep->truncations++;
        rep->bytes_dropped += dropped;
    }
    return 0;
}

/* Full scan: rebuild the indexes from the log and cut a bad tail. */
static int recover_full(struct mr_partition *p, struct mr_segment *s, bool active,
                        struct mr_journal_recovery *rep)
{
    bool ro = p->topic->j->opts.read_only;
    int rc = mr_index_reset(s, ro);
    if (rc != 0) {
        return rc;
    }
    s->max_ts = -1;
    struct note_ctx c = {.s = s, .interval = p->topic->j->opts.index_interval_bytes};
    struct mr_scan sc;
    uint64_t file_size = s->size;
    mr_segment_scan(s->fd, 0, file_size, s->base, false, note_batch, &c, &sc);
    if (rep != NULL) {
        rep->segments_scanned++;
    }
    if (sc.error != 0 && sc.error != MR_ECORRUPT && sc.error != MR_EEOF) {
        return sc.error; /* an I/O error is not a torn tail: do not cut anything */
    }
    if (sc.error != 0) {
        rc = drop_tail(p, s, &sc, file_size, rep);
        if (rc != 0) {
            return rc;
        }
    }
    s->size = s->write_size = sc.valid_end;
    s->end_offset = sc.next_offset;
    s->first_ts = sc.first_ts;
    if (active) {
        return mr_index_flush(s);
    }
    s->end_offset = sc.next_offset;
    return mr_index_seal(s, ro);
}

static int64_t first_batch_ts(int fd, uint64_t size)
{
    uint8_t h[MR_BATCH_HEADER_SIZE];
    if (size < sizeof(h) || pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
        return -1;
    }
    return (int64_t)mr_be64_get(h + 35);
}

/* Newest segment after a clean shutdown: trust the index, walk only the batches after its last
 * entry. Returns MR_ECORRUPT when that is not possible (caller falls back to a full scan). */
static int recover_clean_tail(struct mr_partition *p, struct mr_segment *s)
{
    bool ro = p->topic->j->opts.read_only;
    if (mr_index_load(s, s->size, ro) != 0) {
        return MR_ECORRUPT;
    }
    struct mr_index_mem *m = s->mem;
    uint64_t from = m->off_n ? m->off[m->off_n - 1].pos : 0;
    int64_t expect = m->off_n ? s->base + m->off[m->off_n - 1].rel : s->base;
    struct mr_scan sc;
    mr_segment_scan(s->fd, from, s->size, expect, false, NULL, NULL, &sc);
    if (sc.error != 0 || sc.valid_end != s->size) {
        return MR_ECORRUPT;
    }
    int64_t tmax = m->time_n ? m->time[m->time_n - 1].ts : -1;
    s->max_ts = sc.max_ts > tmax ? sc.max_ts : tmax;
    s->end_offset = sc.next_offset;
    s->first_ts = first_batch_ts(s->fd, s->size);
    return 0;
}

static int recover_segment(struct mr_partition *p, struct mr_segment *s, bool newest, bool clean,
                           int64_t next_base, struct mr_journal_recovery *rep)
{
    if (newest) {
        if (clean && recover_clean_tail(p, s) == 0) {
            return 0;
        }
    } else if (mr_index_check_sealed(s, s->size) == 0) {
        s->end_offset = next_base;
        s->first_ts = first_batch_ts(s->fd, s->size);
        return 0;
    }
    if (clean || !newest) {
        mr_journal_report(rep, p, s->base, 0, s->base, 0, "index missing or inconsistent: rebuilt");
    }
    if (rep != NULL) {
        rep->indexes_rebuilt++;
    }
    return recover_full(p, s, newest, rep);
}

static int partition_new(struct mr_journal_topic *t, uint32_t id, struct mr_partition **out)
{
    struct mr_partition *p = mr_calloc(1, sizeof(*p));
    if (p == NULL) {
        return MR_ENOMEM;
    }
    char path[4096];
    int n = mr_journal_fmt(path, sizeof(path), "%s/%u", t->dir, id);
    p->dir = n == 0 ? mr_strdup(path) : NULL;
    if (p->dir == NULL) {
        mr_free(p);
        return MR_ENOMEM;
    }
    p->topic = t;
    p->id = id;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = p;
    return 0;
}

static int open_segments(struct mr_partition *p, bool clean, struct mr_journal_recovery *rep,
                         struct mr_err *err)
{
    bool ro = p->topic->j->opts.read_only;
    int64_t *bases = NULL;
    size_t n = 0;
    int rc = mr_partition_list_segments(p->dir, -1, &bases, &n);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot list %s: %s", p->dir, mr_strerror(rc));
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct mr_segment *s;
        rc = mr_segment_open(p, bases[i], false, ro, &s, err);
        if (rc != 0) {
            break;
        }
        rc = segs_push(p, s);
        if (rc != 0) {
            mr_segment_unref(s);
            MR_ERR_SET(err, rc, "out of memory in %s", p->dir);
            break;
        }
        bool newest = i + 1 == n;
        rc = recover_segment(p, s, newest, clean, newest ? 0 : bases[i + 1], rep);
        if (rc != 0) {
            MR_ERR_SET(err, rc, "recovering %s/%020lld.log: %s", p->dir, (long long)bases[i],
                       mr_strerror(rc));
        }
    }
    if (rep != NULL) {
        rep->segments += (uint32_t)n;
    }
    mr_free(bases);
    return rc;
}

int mr_partition_open(struct mr_journal_topic *t, uint32_t id, bool clean,
                      struct mr_journal_recovery *rep, struct mr_partition **out,
                      struct mr_err *err)
{
    bool ro = t->j->opts.read_only;
    struct mr_partition *p;
    int rc = partition_new(t, id, &p);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "out of memory opening partition %u of %s", id, t->name);
    }
    if (!ro && mkdir(p->dir, 0755) != 0 && errno != EEXIST) {
        rc = mr_err_from_errno(errno);
        MR_ERR_SET(err, rc, "cannot create %s: %s", p->dir, strerror(errno));
        goto fail;
    }
    if (access(p->dir, F_OK) == 0) {
        rc = open_segments(p, clean, rep, err);
        if (rc != 0) {
            goto fail;
        }
    }
    if (p->nsegs == 0 && !ro) {
        struct mr_segment *s;
        rc = mr_segment_open(p, 0, true, false, &s, err);
        if (rc == 0 && (rc = mr_index_reset(s, false)) != 0) {
            mr_segment_unref(s);
            MR_ERR_SET(err, rc, "cannot create index in %s", p->dir);
        }
        if (rc == 0 && (rc = segs_push(p, s)) != 0) {
            mr_segment_unref(s);
        }
        if (rc == 0) {
            rc = mr_journal_dir_sync(p->dir);
        }
        if (rc != 0) {
            goto fail;
        }
    }
    p->end = p->nsegs ? p->segs[p->nsegs - 1]->end_offset : 0;
    p->next_offset = p->end;
    if (rep != NULL) {
        rep->partitions++;
    }
    *out = p;
    return 0;
fail:
    mr_partition_free(p);
    return rc;
}

void mr_partition_free(struct mr_partition *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->nsegs; i++) {
        mr_segment_unref(p->segs[i]);
    }
    mr_free(p->segs);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cv);
    mr_free(p->dir);
    mr_free(p);
}

int mr_partition_roll(struct mr_partition *p)
{
    struct mr_segment *old = p->segs[p->nsegs - 1];
    /* A failed write may have left bytes past write_size that could not be cut at the time. */
    if (ftruncate(old->fd, (off_t)old->write_size) != 0 || fdatasync(old->fd) != 0) {
        return mr_err_from_errno(errno);
    }
    int rc = mr_index_seal(old, false);
    if (rc != 0) {
        return rc; /* the index would be rebuilt at the next open; refuse to go on blind */
    }
    struct mr_segment *s;
    struct mr_err err;
    rc = mr_segment_open(p, p->next_offset, true, false, &s, &err);
    if (rc != 0) {
        return rc;
    }
    rc = mr_index_reset(s, false);
    if (rc == 0) {
        rc = mr_journal_dir_sync(p->dir);
    }
    if (rc == 0) {
        pthread_mutex_lock(&p->lock);
        rc = segs_push(p, s);
        pthread_mutex_unlock(&p->lock);
    }
    if (rc != 0) {
        mr_segment_unlink(s);
        mr_segment_unref(s);
    }
    return rc;
}

long mr_partition_retention(struct mr_partition *p, int64_t now_ms)
{
    int64_t age = mr_partition_retention_age(p);
    int64_t limit = mr_partition_retention_bytes(p);
    long deleted = 0;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (p->nsegs <= 1) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        struct mr_segment *s = p->segs[0];
        uint64_t total = 0;
        for (size_t i = 0; i < p->nsegs; i++) {
            total += p->segs[i]->size;
        }
        bool expired = age >= 0 && (s->max_ts < 0 || s->max_ts < now_ms - age);
        bool too_big = limit >= 0 && total > (uint64_t)limit;
        if (!expired && !too_big) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        memmove(p->segs, p->segs + 1, (p->nsegs - 1) * sizeof(*p->segs));
        p->nsegs--;
        pthread_mutex_unlock(&p->lock);
        mr_segment_unlink(s);
        mr_segment_unref(s);
        deleted++;
    }
    return deleted;
}

struct mr_segment *mr_partition_find(struct mr_partition *p, int64_t offset)
{
    struct mr_segment *s = NULL;
    pthread_mutex_lock(&p->lock);
    for (size_t i = p->nsegs; i-- > 0;) {
        if (p->segs[i]->base <= offset) {
            s = p->segs[i];
            break;
        }
    }
    if (s != NULL) {
        mr_segment_ref(s);
    }
    pthread_mutex_unlock(&p->lock);
    return s;
}

/* Read-only journals: catch up with what a writer process appended to the active segment. */
static void refresh_active(struct mr_partition *p, struct mr_segment *s)
{
    struct stat st;
    if (fstat(s->fd, &st) != 0 || (uint64_t)st.st_size <= s->size) {
        return;
    }
    struct note_ctx c = {.s = s, .interval = p->topic->j->opts.index_interval_bytes};
    struct mr_scan sc;
    /* A batch still being written fails its length or CRC check: stop there, retry later. */
    mr_segment_scan(s->fd, s->size, (uint64_t)st.st_size, s->end_offset, false, note_batch, &c,
                    &sc);
    if (sc.valid_end > s->size) {
        s->size = sc.valid_end;
        s->end_offset = sc.next_offset;
    }
}

void mr_partition_refresh(struct mr_partition *p)
{
    pthread_mutex_lock(&p->lock);
    /* Segments deleted by the writer's retention disappear from the list (open fds stay valid
     * for readers that hold them). */
    while (p->nsegs > 1) {
        char path[4096];
        if (mr_segment_path(p, p->segs[0]->base, ".log", path, sizeof(path)) != 0 ||
            access(path, F_OK) == 0) {
            break;
        }
        struct mr_segment *s = p->segs[0];
        memmove(p->segs, p->segs + 1, (p->nsegs - 1) * sizeof(*p->segs));
        p->nsegs--;
        mr_segment_unref(s);
    }
    int64_t last = p->nsegs ? p->segs[p->nsegs - 1]->base : -1;
    if (p->nsegs > 0) {
        refresh_active(p, p->segs[p->nsegs - 1]);
    }
    int64_t *bases = NULL;
    size_t n = 0;
    if (mr_partition_list_segments(p->dir, last, &bases, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            struct mr_segment *s;
            struct mr_err err;
            if (mr_segment_open(p, bases[i], false, true, &s, &err) != 0) {
                break;
            }
            s->size = 0;
            if (mr_index_reset(s, true) != 0 || segs_push(p, s) != 0) {
                mr_segment_unref(s);
                break;
            }
            if (p->nsegs > 1) {
                struct mr_segment *prev = p->segs[p->nsegs - 2];
                refresh_active(p, prev);
                mr_index_free(prev->mem);
                prev->mem = NULL;
            }
            refresh_active(p, s);
        }
        mr_free(bases);
    }
    if (p->nsegs > 0) {
        struct mr_segment *a = p->segs[p->nsegs - 1];
        if (a->end_offset > p->end) {
            p->end = a->end_offset;
            pthread_cond_broadcast(&p->cv);
        }
    }
    pthread_mutex_unlock(&p->lock);
}

int mr_journal_partition_stats(struct mr_journal_topic *t, uint32_t partition,
                               struct mr_journal_partition_stats *out)
{
    if (t == NULL || partition >= t->nparts || out == NULL) {
        return MR_EINVAL;
    }
    struct mr_partition *p = t->parts[partition];
    if (t->j->opts.read_only) {
        mr_partition_refresh(p);
    }
    struct mr_journal_partition_stats st = {.earliest = 0, .max_timestamp = -1};
    pthread_mutex_lock(&p->lock);
    st.end = p->end;
    st.segments = (uint32_t)p->nsegs;
    if (p->nsegs > 0) {
        st.earliest = p->segs[0]->base;
    }
    for (size_t i = 0; i < p->nsegs; i++) {
        st.bytes += p->segs[i]->size;
        if (p->segs[i]->max_ts > st.max_timestamp) {
            st.max_timestamp = p->segs[i]->max_ts;
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (st.earliest > st.end) {
        st.earliest = st.end;
    }
    *out = st;
    return 0;
}

/* Kafka's default partitioner hash (murmur2, seed 0x9747b28c), so keyed records land on the
 * partition a Kafka producer would choose. */
static uint32_t murmur2(const uint8_t *data, size_t len)
{
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28c ^ (uint32_t)len;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 | (uint32_t)data[i + 2] << 16 |
                     (uint32_t)data[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (len & 3) {
    case 3:
        h ^= (uint32_t)data[i + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[i + 1] << 8;
        /* fall through */
    case 1:
        h ^= data[i];
        h *= m;
        break;
    default:
        break;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

uint32_t mr_journal_partition_for_key(const void *key, size_t len, uint32_t partitions)
{
    return partitions == 0 ? 0 : (murmur2(key, len) & 0x7fffffff) % partitions;
}

bool mr_partition_drop_oldest(struct mr_partition *p, int64_t below, int64_t *records,
                              uint64_t *bytes)
{
    pthread_mutex_lock(&p->lock);
    struct mr_segment *s = p->nsegs > 1 ? p->segs[0] : NULL;
    if (s == NULL || (below >= 0 && s->end_offset > below)) {
        pthread_mutex_unlock(&p->lock);
        return false;
    }
    *bytes = s->size;
    *records = s->end_offset - s->base;
    memmove(p->segs, p->segs + 1, (p->nsegs - 1) * sizeof(*p->segs));
    p->nsegs--;
    pthread_mutex_unlock(&p->lock);
    /* Readers holding it keep reading it; the last unref closes the file. */
    mr_segment_unlink(s);
    mr_segment_unref(s);
    return true;
}

uint64_t mr_partition_bytes(struct mr_partition *p, int64_t *oldest_ts)
{
    uint64_t total = 0;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->nsegs; i++) {
        total += p->segs[i]->size;
    }
    *oldest_ts = p->nsegs > 1 ? p->segs[0]->max_ts : INT64_MAX;
    pthread_mutex_unlock(&p->lock);
    return total;
}
