/* Durable named consumer cursors: one small file per (topic, consumer) with every partition.
 *
 *   <dir>/<topic>/cursors/<consumer>.cursor       replaced atomically: write .cursor.tmp,
 *                                                 fsync, close, rename, fsync the directory
 *   0      4        6        8           12            20                        20+8N  24+8N
 *   +------+--------+--------+-----------+-------------+-------------------------+------+
 *   |"MRCU"| ver=1  | 0      | count N   | updated_ms  | offset[0..N-1]          | crc  |
 *   |      | u16    | u16    | u32       | i64         | i64 each, -1 = none     | u32  |
 *   +------+--------+--------+-----------+-------------+-------------------------+------+
 *   Big-endian. crc = CRC-32C of every byte before it. offset = next offset to consume.
 *
 * A leftover .tmp (crash before the rename) is ignored: the previous file is still whole.
 * A damaged file is reported as MR_ECORRUPT every time; it is never reset silently, since
 * restarting a consumer from 0 or from the end would replay or lose data without anyone knowing.
 */
#include "journal/journal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "millrace/alloc.h"
#include "millrace/crc32c.h"

#define CURSOR_MAGIC   "MRCU"
#define CURSOR_VERSION 1
#define CURSOR_HEADER  20

struct mr_cursor_file {
    struct mr_cursor_file *next;
    char name[MR_JOURNAL_CONSUMER_MAX + 1];
    int64_t *offsets; /* nparts entries */
};

void mr_cursor_free_all(struct mr_journal_topic *t)
{
    struct mr_cursor_file *c = t->cursors;
    while (c != NULL) {
        struct mr_cursor_file *next = c->next;
        mr_free(c->offsets);
        mr_free(c);
        c = next;
    }
    t->cursors = NULL;
}

static int cursor_decode(const struct mr_journal_topic *t, const char *path, const uint8_t *d,
                         size_t len, int64_t *offsets, struct mr_err *err)
{
    if (len < CURSOR_HEADER + 4 || memcmp(d, CURSOR_MAGIC, 4) != 0) {
        return MR_ERR_SET(err, MR_ECORRUPT, "cursor file %s is damaged: bad header", path);
    }
    uint32_t crc = mr_be32_get(d + len - 4);
    if (crc != mr_crc32c(0, d, len - 4)) {
        return MR_ERR_SET(err, MR_ECORRUPT, "cursor file %s is damaged: checksum mismatch", path);
    }
    if (mr_be16_get(d + 4) != CURSOR_VERSION) {
        return MR_ERR_SET(err, MR_ECORRUPT, "cursor file %s has unknown version %u", path,
                          mr_be16_get(d + 4));
    }
    uint32_t n = mr_be32_get(d + 8);
    if ((uint64_t)CURSOR_HEADER + 8ull * n + 4 != len) {
        return MR_ERR_SET(err, MR_ECORRUPT, "cursor file %s is damaged: length", path);
    }
    if (n > t->nparts) {
        return MR_ERR_SET(err, MR_ECORRUPT, "cursor file %s has %u partitions, topic %s has %u",
                          path, n, t->name, t->nparts);
    }
    for (uint32_t i = 0; i < t->nparts; i++) {
        offsets[i] = i < n ? (int64_t)mr_be64_get(d + CURSOR_HEADER + 8 * i) : -1;
        if (offsets[i] < -1) {
            return MR_ERR_SET(err, MR_ECORRUPT, "cursor file %s: negative offset", path);
        }
    }
    return 0;
}

static int cursor_path(const struct mr_journal_topic *t, const char *consumer, char *dir,
                       char *path, size_t cap)
{
    if (mr_journal_fmt(dir, cap, "%s/cursors", t->dir) != 0 ||
        mr_journal_fmt(path, cap, "%s/cursors/%s.cursor", t->dir, consumer) != 0) {
        return MR_ETOOBIG;
    }
    return 0;
}

/* Cached cursor of a consumer, loaded from its file on first use (j->cursor_lock held). */
static int cursor_get_locked(struct mr_journal_topic *t, const char *consumer,
                             struct mr_cursor_file **out, struct mr_err *err)
{
    for (struct mr_cursor_file *c = t->cursors; c != NULL; c = c->next) {
        if (strcmp(c->name, consumer) == 0) {
            *out = c;
            return 0;
        }
    }
    char dir[4096], path[4096];
    if (cursor_path(t, consumer, dir, path, sizeof(path)) != 0) {
        return MR_ERR_SET(err, MR_ETOOBIG, "cursor path too long");
    }
    struct mr_cursor_file *c = mr_calloc(1, sizeof(*c));
    int64_t *offs = mr_malloc(t->nparts * sizeof(*offs));
    int rc = 0;
    if (c == NULL || offs == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory loading cursor %s", consumer);
        goto fail;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    rc = mr_journal_read_small(path, CURSOR_HEADER + 8ull * t->nparts + 4, &data, &len);
    if (rc == MR_ENOENT) {
        for (uint32_t i = 0; i < t->nparts; i++) {
            offs[i] = -1;
        }
        rc = 0;
    } else if (rc == MR_ETOOBIG) {
        rc = MR_ERR_SET(err, MR_ECORRUPT, "cursor file %s is damaged: too long", path);
    } else if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot read cursor file %s: %s", path, mr_strerror(rc));
    } else {
        rc = cursor_decode(t, path, data, len, offs, err);
    }
    mr_free(data);
    if (rc != 0) {
        goto fail;
    }
    mr_journal_fmt(c->name, sizeof(c->name), "%s", consumer);
    c->offsets = offs;
    c->next = t->cursors;
    t->cursors = c;
    *out = c;
    return 0;
fail:
    mr_free(offs);
    mr_free(c);
    return rc;
}

static int cursor_write(struct mr_journal_topic *t, const char *consumer, const int64_t *offs,
                        struct mr_err *err)
{
    char dir[4096], path[4096];
    if (cursor_path(t, consumer, dir, path, sizeof(path)) != 0) {
        return MR_ERR_SET(err, MR_ETOOBIG, "cursor path too long");
    }
    if (mkdir(dir, 0755) == 0) {
        mr_journal_dir_sync(t->dir);
    } else if (errno != EEXIST) {
        int rc = mr_err_from_errno(errno);
        return MR_ERR_SET(err, rc, "cannot create %s: %s", dir, strerror(errno));
    }
    size_t len = CURSOR_HEADER + 8ull * t->nparts + 4;
    uint8_t *d = mr_malloc(len);
    if (d == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory writing cursor %s", consumer);
    }
    memcpy(d, CURSOR_MAGIC, 4);
    mr_be16_put(d + 4, CURSOR_VERSION);
    mr_be16_put(d + 6, 0);
    mr_be32_put(d + 8, t->nparts);
    mr_be64_put(d + 12, (uint64_t)mr_clock_wall_ms());
    for (uint32_t i = 0; i < t->nparts; i++) {
        mr_be64_put(d + CURSOR_HEADER + 8 * i, (uint64_t)offs[i]);
    }
    mr_be32_put(d + len - 4, mr_crc32c(0, d, len - 4));
    char name[MR_JOURNAL_CONSUMER_MAX + 16];
    mr_journal_fmt(name, sizeof(name), "%s.cursor", consumer);
    int rc = mr_journal_write_atomic(dir, name, d, len);
    mr_free(d);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot write cursor file %s: %s", path, mr_strerror(rc));
    }
    return 0;
}

static int check_args(struct mr_journal_topic *t, const char *consumer, struct mr_err *err)
{
    if (t == NULL || consumer == NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "missing topic or consumer");
    }
    if (!mr_journal_name_ok(consumer, MR_JOURNAL_CONSUMER_MAX)) {
        return MR_ERR_SET(err, MR_EINVAL, "bad consumer name '%s': use 1..128 of A-Z a-z 0-9 . _ -",
                          consumer);
    }
    return 0;
}

int mr_journal_cursor_commit_all(struct mr_journal_topic *t, const char *consumer,
                                 const int64_t *offsets, uint32_t count, struct mr_err *err)
{
    int rc = check_args(t, consumer, err);
    if (rc != 0) {
        return rc;
    }
    if (offsets == NULL || count == 0 || count > t->nparts) {
        return MR_ERR_SET(err, MR_EINVAL, "topic %s: %u offsets for %u partitions", t->name, count,
                          t->nparts);
    }
    for (uint32_t i = 0; i < count; i++) {
        if (offsets[i] < -1) {
            return MR_ERR_SET(err, MR_EINVAL, "negative offset for partition %u", i);
        }
    }
    if (t->j->opts.read_only) {
        return MR_ERR_SET(err, MR_EROFS, "journal %s is open read-only", t->j->dir);
    }
    struct mr_journal *j = t->j;
    pthread_mutex_lock(&j->cursor_lock);
    struct mr_cursor_file *c;
    int64_t *next = mr_malloc(t->nparts * sizeof(*next));
    rc = next == NULL ? MR_ERR_SET(err, MR_ENOMEM, "out of memory") : 0;
    if (rc == 0) {
        rc = cursor_get_locked(t, consumer, &c, err);
    }
    if (rc == 0) {
        for (uint32_t i = 0; i < t->nparts; i++) {
            next[i] = i < count && offsets[i] >= 0 ? offsets[i] : c->offsets[i];
        }
        rc = cursor_write(t, consumer, next, err);
    }
    if (rc == 0) {
        memcpy(c->offsets, next, t->nparts * sizeof(*next));
    }
    pthread_mutex_unlock(&j->cursor_lock);
    mr_free(next);
    return rc;
}

int mr_journal_cursor_commit(struct mr_journal_topic *t, const char *consumer, uint32_t partition,
                             int64_t offset, struct mr_err *err)
{
    if (t == NULL || partition >= t->nparts || offset < 0) {
        return MR_ERR_SET(err, MR_EINVAL, "cursor commit: bad partition or offset");
    }
    int64_t offs[1];
    int64_t *all = offs;
    if (partition > 0) {
        all = mr_malloc((partition + 1) * sizeof(*all));
        if (all == NULL) {
            return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        }
    }
    for (uint32_t i = 0; i < partition; i++) {
        all[i] = -1;
    }
    all[partition] = offset;
    int rc = mr_journal_cursor_commit_all(t, consumer, all, partition + 1, err);
    if (all != offs) {
        mr_free(all);
    }
    return rc;
}

int mr_journal_cursor_get(struct mr_journal_topic *t, const char *consumer, uint32_t partition,
                          int64_t *offset, struct mr_err *err)
{
    int rc = check_args(t, consumer, err);
    if (rc != 0) {
        return rc;
    }
    if (partition >= t->nparts || offset == NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "topic %s has no partition %u", t->name, partition);
    }
    pthread_mutex_lock(&t->j->cursor_lock);
    struct mr_cursor_file *c;
    rc = cursor_get_locked(t, consumer, &c, err);
    int64_t v = rc == 0 ? c->offsets[partition] : -1;
    if (rc == 0 && t->j->opts.read_only) {
        /* Another process may commit: read the file again next time. */
        t->cursors = c->next;
        mr_free(c->offsets);
        mr_free(c);
    }
    pthread_mutex_unlock(&t->j->cursor_lock);
    if (rc != 0) {
        return rc;
    }
    if (v < 0) {
        return MR_ERR_SET(err, MR_ENOENT, "consumer %s has no cursor for %s/%u", consumer, t->name,
                          partition);
    }
    *offset = v;
    return 0;
}

int mr_cursor_min(struct mr_journal_topic *t, uint32_t partition, int64_t *min)
{
    char dir[4096];
    if (mr_journal_fmt(dir, sizeof(dir), "%s/cursors", t->dir) != 0) {
        return MR_ETOOBIG;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        return MR_ENOENT;
    }
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        const char *suffix = ".cursor";
        size_t sl = strlen(suffix);
        if (n <= sl || n - sl > MR_JOURNAL_CONSUMER_MAX ||
            strcmp(e->d_name + n - sl, suffix) != 0) {
            continue;
        }
        char consumer[MR_JOURNAL_CONSUMER_MAX + 1];
        memcpy(consumer, e->d_name, n - sl);
        consumer[n - sl] = '\0';
        int64_t pos;
        struct mr_err err;
        /* A consumer without a position for this partition has read nothing of it. */
        int rc = mr_journal_cursor_get(t, consumer, partition, &pos, &err);
        if (rc == MR_ENOENT) {
            pos = 0;
        } else if (rc != 0) {
            continue; /* damaged file: reported where it is used; it pins nothing here */
        }
        if (found == 0 || pos < *min) {
            *min = pos;
        }
        found = 1;
    }
    closedir(d);
    return found ? 0 : MR_ENOENT;
}
