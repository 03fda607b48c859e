/* One segment of a partition: the .log file of batches and its two sparse indexes.
 *
 *   <partition dir>/00000000000000001234.log        batches, base offset 1234 (20 digits)
 *                   00000000000000001234.index      offset index
 *                   00000000000000001234.timeindex  time index
 *
 * .log: RecordBatch v2 batches back to back (layout in batch.c); the only source of truth.
 *
 * .index: one entry each time more than index_interval_bytes were appended since the previous
 * entry, for the batch that starts there (big-endian):
 *   +----------------+----------------+
 *   | relOffset u32  | position u32   |   relOffset = batch baseOffset - segment base
 *   +----------------+----------------+   position  = byte position of the batch in the .log
 *
 * .timeindex: written together with an .index entry when the newest timestamp grew, plus a
 * final entry when the segment stops being active:
 *   +--------------------------------+----------------+
 *   | maxTimestamp i64 (ms)          | relOffset u32  |  every record at or before
 *   +--------------------------------+----------------+  base+relOffset has ts <= maxTimestamp
 *
 * Both indexes are derived data: they are rebuilt from the .log whenever they are missing or
 * disagree with it. Entries are appended (pwrite) once per group commit, fsynced when the
 * segment is sealed (rolled) or the journal closes cleanly.
 */
#include "journal/journal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "millrace/alloc.h"

int mr_rbuf_init(struct mr_rbuf *rb, int fd, size_t cap, uint64_t limit)
{
    rb->buf = mr_malloc(cap);
    if (rb->buf == NULL) {
        return MR_ENOMEM;
    }
    rb->fd = fd;
    rb->cap = cap;
    rb->start = 0;
    rb->len = 0;
    rb->limit = limit;
    return 0;
}

void mr_rbuf_fini(struct mr_rbuf *rb)
{
    mr_free(rb->buf);
    rb->buf = NULL;
}

long mr_rbuf_ensure(struct mr_rbuf *rb, uint64_t pos, size_t need, const uint8_t **ptr)
{
    if (pos >= rb->start && pos + need <= rb->start + rb->len) {
        *ptr = rb->buf + (pos - rb->start);
        return (long)(rb->start + rb->len - pos);
    }
    if (pos >= rb->start && pos < rb->start + rb->len) {
        size_t keep = (size_t)(rb->start + rb->len - pos);
        memmove(rb->buf, rb->buf + (pos - rb->start), keep);
        rb->len = keep;
    } else {
        rb->len = 0;
    }
    rb->start = pos;
    if (need > rb->cap) {
        if (need > MR_BATCH_MAX_BYTES) {
            need = MR_BATCH_MAX_BYTES;
        }
        uint8_t *nb = mr_realloc(rb->buf, need);
        if (nb == NULL) {
            return MR_ENOMEM;
        }
        rb->buf = nb;
        rb->cap = need;
    }
    while (rb->len < need) {
        uint64_t fpos = rb->start + rb->len;
        if (fpos >= rb->limit) {
            break;
        }
        uint64_t left = rb->limit - fpos;
        size_t want = rb->cap - rb->len;
        if (want > left) {
            want = (size_t)left;
        }
        ssize_t r = pread(rb->fd, rb->buf + rb->len, want, (off_t)fpos);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return mr_err_from_errno(errno);
        }
        if (r == 0) {
            break;
        }
        rb->len += (size_t)r;
    }
    *ptr = rb->buf;
    return (long)rb->len;
}

void mr_segment_scan(int fd, uint64_t from, uint64_t limit, int64_t expect, bool records,
                     mr_scan_cb cb, void *arg, struct mr_scan *out)
{
    memset(out, 0, sizeof(*out));
    out->valid_end = from;
    out->next_offset = expect;
    out->max_ts = -1;
    out->first_ts = -1;
    struct mr_rbuf rb;
    if (mr_rbuf_init(&rb, fd, 1024 * 1024, limit) != 0) {
        out->error = MR_ENOMEM;
        mr_journal_fmt(out->reason, sizeof(out->reason), "out of memory");
        return;
    }
    uint64_t pos = from;
    struct mr_err err;
    mr_err_clear(&err);
    while (pos < limit) {
        const uint8_t *ptr;
        long n = mr_rbuf_ensure(&rb, pos, 12, &ptr);
        if (n >= 12) {
            uint32_t blen = mr_be32_get(ptr + 8);
            size_t want = blen <= MR_BATCH_MAX_BYTES - 12 ? 12 + (size_t)blen : 12;
            n = mr_rbuf_ensure(&rb, pos, want, &ptr);
        }
        if (n < 0) {
            out->error = (int)n;
            mr_journal_fmt(out->reason, sizeof(out->reason), "read failed: %s",
                           mr_strerror((int)n));
            break;
        }
        struct mr_batch_info bi;
        int rc = records ? mr_batch_validate(ptr, (size_t)n, &bi, &err)
                         : mr_batch_parse(ptr, (size_t)n, &bi, &err);
        /* The writer assigns offsets without gaps, and the base offset is outside the CRC:
         * any other value than the next offset is damage, not a Kafka-style gap. */
        if (rc == 0 && expect >= 0 && bi.base_offset != out->next_offset) {
            rc = MR_ERR_SET(&err, MR_ECORRUPT, "base offset %lld, expected %lld",
                            (long long)bi.base_offset, (long long)out->next_offset);
        }
        if (rc == 0 && bi.count == 0) {
            rc = MR_ERR_SET(&err, MR_ECORRUPT, "empty batch");
        }
        if (rc != 0) {
            out->error = rc;
            mr_journal_fmt(out->reason, sizeof(out->reason), "%s", err.msg);
            break;
        }
        if (cb != NULL) {
            cb(arg, &bi, pos);
        }
        if (out->first_ts < 0) {
            out->first_ts = bi.max_timestamp;
        }
        if (bi.max_timestamp > out->max_ts) {
            out->max_ts = bi.max_timestamp;
        }
        out->next_offset = bi.base_offset + bi.last_offset_delta + 1;
        out->batches++;
        out->records += (uint64_t)bi.count;
        pos += bi.size;
        out->valid_end = pos;
    }
    mr_rbuf_fini(&rb);
}

int mr_segment_path(const struct mr_partition *p, int64_t base, const char *ext, char *out,
                    size_t cap)
{
    return mr_journal_fmt(out, cap, "%s/%020lld%s", p->dir, (long long)base, ext);
}

int mr_segment_open(struct mr_partition *p, int64_t base, bool create, bool read_only,
                    struct mr_segment **out, struct mr_err *err)
{
    char path[4096];
    int rc = mr_segment_path(p, base, ".log", path, sizeof(path));
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "segment path too long in %s", p->dir);
    }
    struct mr_segment *s = mr_calloc(1, sizeof(*s));
    if (s == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory opening %s", path);
    }
    int flags = read_only ? O_RDONLY : O_RDWR;
    if (create) {
        flags |= O_CREAT | O_EXCL;
    }
    s->fd = open(path, flags | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        rc = mr_err_from_errno(errno);
        MR_ERR_SET(err, rc, "cannot open %s: %s", path, strerror(errno));
        mr_free(s);
        return rc;
    }
    struct stat st;
    if (fstat(s->fd, &st) != 0) {
        rc = mr_err_from_errno(errno);
        MR_ERR_SET(err, rc, "cannot stat %s: %s", path, strerror(errno));
        close(s->fd);
        mr_free(s);
        return rc;
    }
    s->p = p;
    s->base = base;
    atomic_init(&s->refs, 1);
    atomic_init(&s->deleted, false);
    s->size = (uint64_t)st.st_size;
    s->write_size = s->size;
    s->end_offset = base;
    s->max_ts = -1;
    s->first_ts = -1;
    s->created_ms = mr_clock_wall_ms();
    *out = s;
    return 0;
}

void mr_segment_ref(struct mr_segment *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void mr_segment_unref(struct mr_segment *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1) {
        return;
    }
    close(s->fd);
    mr_index_free(s->mem);
    mr_free(s);
}

void mr_segment_unlink(struct mr_segment *s)
{
    static const char *const exts[] = {".index", ".timeindex", ".log"};
    char path[4096];
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        if (mr_segment_path(s->p, s->base, exts[i], path, sizeof(path)) == 0) {
            unlink(path);
        }
    }
    atomic_store(&s->deleted, true);
}

/* ---- indexes */

void mr_index_free(struct mr_index_mem *m)
{
    if (m == NULL) {
        return;
    }
    if (m->idx_fd >= 0) {
        close(m->idx_fd);
    }
    if (m->tidx_fd >= 0) {
        close(m->tidx_fd);
    }
    mr_free(m->off);
    mr_free(m->time);
    mr_free(m);
}

static void push_time(struct mr_index_mem *m, int64_t ts, uint32_t rel)
{
    if (m->time_n > 0 && m->time[m->time_n - 1].ts >= ts) {
        return;
    }
    /* Out of memory only makes the sparse index sparser: lookups scan a little further. */
    if (mr_journal_grow((void **)&m->time, &m->time_cap, m->time_n, sizeof(*m->time))) {
        m->time[m->time_n++] = (struct mr_time_entry){.ts = ts, .rel = rel};
    }
}

void mr_index_note(struct mr_segment *s, uint32_t interval, int64_t base_offset,
                   int64_t last_offset, uint64_t pos, uint64_t size, int64_t max_ts)
{
    struct mr_index_mem *m = s->mem;
    if (m == NULL) {
        return;
    }
    if (m->bytes_since >= interval) {
        if (mr_journal_grow((void **)&m->off, &m->off_cap, m->off_n, sizeof(*m->off))) {
            m->off[m->off_n++] = (struct mr_index_entry){.rel = (uint32_t)(base_offset - s->base),
                                                         .pos = (uint32_t)pos};
        }
        int64_t so_far = s->max_ts > max_ts ? s->max_ts : max_ts;
        push_time(m, so_far, (uint32_t)(last_offset - s->base));
        m->bytes_since = 0;
    }
    m->bytes_since += size;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t pos)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t)pos);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return mr_err_from_errno(errno);
        }
        p += w;
        len -= (size_t)w;
        pos += (uint64_t)w;
    }
    return 0;
}

int mr_index_flush(struct mr_segment *s)
{
    struct mr_index_mem *m = s->mem;
    uint8_t buf[4096 * 3];
    if (m == NULL || m->idx_fd < 0) {
        return 0;
    }
    while (m->off_flushed < m->off_n) {
        size_t n = 0, first = m->off_flushed;
        while (m->off_flushed < m->off_n && n + MR_INDEX_ENTRY <= sizeof(buf)) {
            const struct mr_index_entry *e = &m->off[m->off_flushed++];
            mr_be32_put(buf + n, e->rel);
            mr_be32_put(buf + n + 4, e->pos);
            n += MR_INDEX_ENTRY;
        }
        int rc = pwrite_all(m->idx_fd, buf, n, (uint64_t)first * MR_INDEX_ENTRY);
        if (rc != 0) {
            m->off_flushed = first;
            return rc;
        }
    }
    while (m->time_flushed < m->time_n) {
        size_t n = 0, first = m->time_flushed;
        while (m->time_flushed < m->time_n && n + MR_TIMEINDEX_ENTRY <= sizeof(buf)) {
            const struct mr_time_entry *e = &m->time[m->time_flushed++];
            mr_be64_put(buf + n, (uint64_t)e->ts);
            mr_be32_put(buf + n + 8, e->rel);
            n += MR_TIMEINDEX_ENTRY;
        }
        int rc = pwrite_all(m->tidx_fd, buf, n, (uint64_t)first * MR_TIMEINDEX_ENTRY);
        if (rc != 0) {
            m->time_flushed = first;
            return rc;
        }
    }
    return 0;
}

/* Read a whole index file (at most the entries a 1 GiB segment can need). */
static int read_file(const char *path, uint8_t **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return mr_err_from_errno(errno);
    }
    int rc = 0;
    uint8_t *buf = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = mr_err_from_errno(errno);
        goto out;
    }
    if ((uint64_t)st.st_size > MR_SEGMENT_MAX_BYTES / 64) {
        rc = MR_ECORRUPT;
        goto out;
    }
    size_t n = (size_t)st.st_size;
    buf = mr_malloc(n ? n : 1);
    if (buf == NULL) {
        rc = MR_ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            rc = r < 0 ? mr_err_from_errno(errno) : MR_ECORRUPT;
            goto out;
        }
        got += (size_t)r;
    }
    *data = buf;
    *len = n;
    buf = NULL;
out:
    mr_free(buf);
    close(fd);
    return rc;
}

static int open_index_fd(const struct mr_segment *s, const char *ext, bool trunc, int *fd)
{
    char path[4096];
    int rc = mr_segment_path(s->p, s->base, ext, path, sizeof(path));
    if (rc != 0) {
        return rc;
    }
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (trunc ? O_TRUNC : 0), 0644);
    return *fd < 0 ? mr_err_from_errno(errno) : 0;
}

static struct mr_index_mem *index_mem_new(void)
{
    struct mr_index_mem *m = mr_calloc(1, sizeof(*m));
    if (m != NULL) {
        m->idx_fd = -1;
        m->tidx_fd = -1;
    }
    return m;
}

int mr_index_reset(struct mr_segment *s, bool read_only)
{
    struct mr_index_mem *m = index_mem_new();
    if (m == NULL) {
        return MR_ENOMEM;
    }
    if (!read_only) {
        int rc = open_index_fd(s, ".index", true, &m->idx_fd);
        if (rc == 0) {
            rc = open_index_fd(s, ".timeindex", true, &m->tidx_fd);
        }
        if (rc != 0) {
            mr_index_free(m);
            return rc;
        }
    }
    mr_index_free(s->mem);
    s->mem = m;
    return 0;
}

/* Decode and check both index files against a log of `size` bytes. */
static int index_decode(struct mr_segment *s, uint64_t size, struct mr_index_mem *m)
{
    char path[4096];
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = mr_segment_path(s->p, s->base, ".index", path, sizeof(path));
    if (rc == 0) {
        rc = read_file(path, &data, &len);
    }
    if (rc != 0 || len % MR_INDEX_ENTRY != 0) {
        mr_free(data);
        return rc != 0 ? rc : MR_ECORRUPT;
    }
    m->off_n = m->off_cap = m->off_flushed = len / MR_INDEX_ENTRY;
    m->off = (struct mr_index_entry *)data;
    for (size_t i = 0; i < m->off_n; i++) {
        uint32_t rel = mr_be32_get(data + i * MR_INDEX_ENTRY);
        uint32_t pos = mr_be32_get(data + i * MR_INDEX_ENTRY + 4);
        /* decode in place: entries are 8 bytes on disk and in memory */
        m->off[i] = (struct mr_index_entry){.rel = rel, .pos = pos};
        if (pos == 0 || pos >= size ||
            (i > 0 && (rel <= m->off[i - 1].rel || pos <= m->off[i - 1].pos))) {
            return MR_ECORRUPT;
        }
    }
    data = NULL;
    rc = mr_segment_path(s->p, s->base, ".timeindex", path, sizeof(path));
    if (rc == 0) {
        rc = read_file(path, &data, &len);
    }
    if (rc != 0 || len % MR_TIMEINDEX_ENTRY != 0) {
        mr_free(data);
        return rc != 0 ? rc : MR_ECORRUPT;
    }
    size_t n = len / MR_TIMEINDEX_ENTRY;
    m->time = mr_malloc((n ? n : 1) * sizeof(*m->time));
    if (m->time == NULL) {
        mr_free(data);
        return MR_ENOMEM;
    }
    m->time_n = m->time_cap = m->time_flushed = n;
    for (size_t i = 0; i < n; i++) {
        m->time[i].ts = (int64_t)mr_be64_get(data + i * MR_TIMEINDEX_ENTRY);
        m->time[i].rel = mr_be32_get(data + i * MR_TIMEINDEX_ENTRY + 8);
        if (i > 0 && (m->time[i].ts <= m->time[i - 1].ts || m->time[i].rel < m->time[i - 1].rel)) {
            mr_free(data);
            return MR_ECORRUPT;
        }
    }
    mr_free(data);
    uint64_t last = m->off_n ? m->off[m->off_n - 1].pos : 0;
    m->bytes_since = size - last;
    return 0;
}

int mr_index_load(struct mr_segment *s, uint64_t size, bool read_only)
{
    struct mr_index_mem *m = index_mem_new();
    if (m == NULL) {
        return MR_ENOMEM;
    }
    int rc = index_decode(s, size, m);
    if (rc == 0 && !read_only) {
        rc = open_index_fd(s, ".index", false, &m->idx_fd);
        if (rc == 0) {
            rc = open_index_fd(s, ".timeindex", false, &m->tidx_fd);
        }
    }
    if (rc != 0) {
        mr_index_free(m);
        return rc;
    }
    mr_index_free(s->mem);
    s->mem = m;
    return 0;
}

int mr_index_check_sealed(struct mr_segment *s, uint64_t size)
{
    struct mr_index_mem *m = index_mem_new();
    if (m == NULL) {
        return MR_ENOMEM;
    }
    int rc = index_decode(s, size, m);
    if (rc == 0 && size > 0 && m->time_n == 0) {
        rc = MR_ECORRUPT; /* a sealed non-empty segment always has its final time entry */
    }
    if (rc == 0) {
        s->max_ts = m->time_n ? m->time[m->time_n - 1].ts : -1;
    }
    mr_index_free(m);
    return rc;
}

int mr_index_seal(struct mr_segment *s, bool read_only)
{
    struct mr_index_mem *m = s->mem;
    int rc = 0;
    if (m == NULL) {
        return 0;
    }
    if (!read_only) {
        pthread_mutex_lock(&s->p->lock);
        if (s->max_ts >= 0 && s->end_offset > s->base) {
            push_time(m, s->max_ts, (uint32_t)(s->end_offset - 1 - s->base));
        }
        pthread_mutex_unlock(&s->p->lock);
        rc = mr_index_flush(s);
        if (rc == 0 && (fdatasync(m->idx_fd) != 0 || fdatasync(m->tidx_fd) != 0)) {
            rc = mr_err_from_errno(errno);
        }
    }
    pthread_mutex_lock(&s->p->lock);
    s->mem = NULL;
    pthread_mutex_unlock(&s->p->lock);
    mr_index_free(m);
    return rc;
}

static uint64_t lookup_off_entries(const struct mr_index_entry *e, size_t n, uint32_t rel)
{
    size_t lo = 0, hi = n; /* first entry with e.rel > rel */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e[mid].rel <= rel) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo == 0 ? 0 : e[lo - 1].pos;
}

uint64_t mr_index_lookup_offset(struct mr_segment *s, int64_t offset)
{
    if (offset <= s->base) {
        return 0;
    }
    uint32_t rel = offset - s->base > UINT32_MAX ? UINT32_MAX : (uint32_t)(offset - s->base);
    uint64_t pos = 0;
    pthread_mutex_lock(&s->p->lock);
    bool in_mem = s->mem != NULL;
    if (in_mem) {
        pos = lookup_off_entries(s->mem->off, s->mem->off_n, rel);
    }
    pthread_mutex_unlock(&s->p->lock);
    if (in_mem) {
        return pos;
    }
    struct mr_index_mem *m = index_mem_new();
    /* An unreadable index only costs a longer scan from the start of the segment. */
    if (m != NULL && index_decode(s, UINT64_MAX, m) == 0) {
        pos = lookup_off_entries(m->off, m->off_n, rel);
    }
    mr_index_free(m);
    return pos;
}

static int64_t lookup_time_entries(const struct mr_segment *s, const struct mr_time_entry *e,
                                   size_t n, int64_t ts)
{
    size_t lo = 0, hi = n; /* first entry with e.ts >= ts */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e[mid].ts < ts) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    /* Every record up to entry lo-1's offset is older than ts: start after it. */
    return lo == 0 ? s->base : s->base + (int64_t)e[lo - 1].rel + 1;
}

int64_t mr_index_lookup_time(struct mr_segment *s, int64_t ts)
{
    int64_t off = s->base;
    pthread_mutex_lock(&s->p->lock);
    bool in_mem = s->mem != NULL;
    if (in_mem) {
        off = lookup_time_entries(s, s->mem->time, s->mem->time_n, ts);
    }
    pthread_mutex_unlock(&s->p->lock);
    if (in_mem) {
        return off;
    }
    struct mr_index_mem *m = index_mem_new();
    if (m != NULL && index_decode(s, UINT64_MAX, m) == 0) {
        off = lookup_time_entries(s, m->time, m->time_n, ts);
    }
    mr_index_free(m);
    return off;
}
