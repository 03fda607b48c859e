/* Topics: a directory per topic with its metadata file and one directory per partition.
 *
 *   <dir>/<topic>/topic.meta     text, replaced atomically (write temp, fsync, rename, fsync dir)
 *   <dir>/<topic>/0/ ... N-1/    partitions (layout in partition.c)
 *   <dir>/<topic>/cursors/       consumer cursors (layout in cursor.c)
 *
 * topic.meta:
 *   +-----------------------------------------+
 *   | millrace-topic 1                        |   format version
 *   | partitions 4                            |
 *   | retention_age_ms 86400000               |   optional per-topic overrides
 *   | retention_bytes 1073741824              |
 *   | crc32c 1a2b3c4d                         |   CRC-32C of every byte before this line
 *   +-----------------------------------------+
 */
#include "journal/journal_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "millrace/alloc.h"
#include "millrace/crc32c.h"

#define META_MAX 1024

void mr_journal_topic_options_init(struct mr_journal_topic_options *o)
{
    o->retention_age_ms = MR_JOURNAL_DEFAULT;
    o->retention_bytes = MR_JOURNAL_DEFAULT;
}

static int meta_format(char *buf, size_t cap, uint32_t partitions,
                       const struct mr_journal_topic_options *o)
{
    int n = snprintf(buf, cap, "millrace-topic 1\npartitions %" PRIu32 "\n", partitions);
    if (o->retention_age_ms != MR_JOURNAL_DEFAULT) {
        n += snprintf(buf + n, cap - (size_t)n, "retention_age_ms %" PRId64 "\n",
                      o->retention_age_ms);
    }
    if (o->retention_bytes != MR_JOURNAL_DEFAULT) {
        n +=
            snprintf(buf + n, cap - (size_t)n, "retention_bytes %" PRId64 "\n", o->retention_bytes);
    }
    uint32_t crc = mr_crc32c(0, buf, (size_t)n);
    n += snprintf(buf + n, cap - (size_t)n, "crc32c %08" PRIx32 "\n", crc);
    return n;
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

static int meta_parse_line(char *line, uint32_t *partitions, struct mr_journal_topic_options *o)
{
    char *sp = strchr(line, ' ');
    if (sp == NULL) {
        return MR_ECORRUPT;
    }
    *sp = '\0';
    int64_t v;
    if (!parse_i64(sp + 1, &v)) {
        return MR_ECORRUPT;
    }
    if (strcmp(line, "partitions") == 0 && v >= 1 && v <= 10000) {
        *partitions = (uint32_t)v;
    } else if (strcmp(line, "retention_age_ms") == 0 && v >= -1) {
        o->retention_age_ms = v;
    } else if (strcmp(line, "retention_bytes") == 0 && v >= -1) {
        o->retention_bytes = v;
    } else if (strcmp(line, "millrace-topic") == 0 && v == 1) {
        /* version */
    } else {
        return MR_ECORRUPT;
    }
    return 0;
}

int mr_topic_meta_read(const char *path, uint32_t *partitions, struct mr_journal_topic_options *o,
                       struct mr_err *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = mr_journal_read_small(path, META_MAX, &data, &len);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot read %s: %s", path, mr_strerror(rc));
    }
    char *text = (char *)data;
    text[len] = '\0';
    char *crc_line = strstr(text, "crc32c ");
    uint32_t np = 0;
    struct mr_journal_topic_options oo;
    mr_journal_topic_options_init(&oo);
    if (crc_line == NULL || (crc_line != text && crc_line[-1] != '\n') ||
        strtoul(crc_line + 7, NULL, 16) != mr_crc32c(0, text, (size_t)(crc_line - text))) {
        rc = MR_ERR_SET(err, MR_ECORRUPT, "%s: missing or wrong checksum", path);
        goto out;
    }
    *crc_line = '\0';
    for (char *line = text, *nl; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        if (nl == NULL) {
            rc = MR_ECORRUPT;
            break;
        }
        *nl = '\0';
        if ((rc = meta_parse_line(line, &np, &oo)) != 0) {
            break;
        }
    }
    if (rc != 0 || np == 0) {
        rc = MR_ERR_SET(err, MR_ECORRUPT, "%s: malformed topic metadata", path);
        goto out;
    }
    *partitions = np;
    *o = oo;
out:
    mr_free(data);
    return rc;
}

static int topic_new(struct mr_journal *j, const char *name, uint32_t nparts,
                     struct mr_journal_topic **out)
{
    struct mr_journal_topic *t = mr_calloc(1, sizeof(*t));
    if (t == NULL) {
        return MR_ENOMEM;
    }
    char path[4096];
    int n = mr_journal_fmt(path, sizeof(path), "%s/%s", j->dir, name);
    t->j = j;
    t->name = mr_strdup(name);
    t->dir = n == 0 ? mr_strdup(path) : NULL;
    t->parts = mr_calloc(nparts, sizeof(*t->parts));
    t->retention_age_ms = MR_JOURNAL_DEFAULT;
    t->retention_bytes = MR_JOURNAL_DEFAULT;
    if (t->name == NULL || t->dir == NULL || t->parts == NULL) {
        mr_topic_free(t);
        return MR_ENOMEM;
    }
    *out = t;
    return 0;
}

void mr_topic_free(struct mr_journal_topic *t)
{
    if (t == NULL) {
        return;
    }
    for (uint32_t i = 0; i < t->nparts; i++) {
        mr_partition_free(t->parts[i]);
    }
    mr_cursor_free_all(t);
    mr_free(t->parts);
    mr_free(t->name);
    mr_free(t->dir);
    mr_free(t);
}

static int topic_open_partitions(struct mr_journal_topic *t, uint32_t nparts,
                                 struct mr_journal_recovery *rep, struct mr_err *err)
{
    bool clean = t->j->clean_open;
    for (uint32_t i = 0; i < nparts; i++) {
        int rc = mr_partition_open(t, i, clean, rep, &t->parts[i], err);
        if (rc != 0) {
            return rc;
        }
        t->nparts = i + 1;
    }
    return 0;
}

int mr_topic_load(struct mr_journal *j, const char *name, struct mr_journal_recovery *rep,
                  struct mr_journal_topic **out, struct mr_err *err)
{
    char path[4096];
    mr_journal_fmt(path, sizeof(path), "%s/%s/%s", j->dir, name, MR_TOPIC_META);
    uint32_t nparts;
    struct mr_journal_topic_options o;
    int rc = mr_topic_meta_read(path, &nparts, &o, err);
    if (rc != 0) {
        return rc;
    }
    struct mr_journal_topic *t;
    rc = topic_new(j, name, nparts, &t);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "out of memory loading topic %s", name);
    }
    t->retention_age_ms = o.retention_age_ms;
    t->retention_bytes = o.retention_bytes;
    rc = topic_open_partitions(t, nparts, rep, err);
    if (rc != 0) {
        mr_topic_free(t);
        return rc;
    }
    if (rep != NULL) {
        rep->topics++;
    }
    *out = t;
    return 0;
}

static int meta_write(struct mr_journal_topic *t, uint32_t nparts)
{
    char buf[META_MAX];
    struct mr_journal_topic_options o = {.retention_age_ms = t->retention_age_ms,
                                         .retention_bytes = t->retention_bytes};
    int n = meta_format(buf, sizeof(buf), nparts, &o);
    return mr_journal_write_atomic(t->dir, MR_TOPIC_META, buf, (size_t)n);
}

static struct mr_journal_topic *find_locked(struct mr_journal *j, const char *name, size_t *at)
{
    size_t lo = 0, hi = j->ntopics;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(j->topics[mid]->name, name);
        if (c == 0) {
            *at = mid;
            return j->topics[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *at = lo;
    return NULL;
}

/* Insert a loaded topic in name order (caller holds topics_lock or is the only user). */
int mr_topic_insert(struct mr_journal *j, struct mr_journal_topic *t)
{
    size_t at;
    if (find_locked(j, t->name, &at) != NULL) {
        return MR_EEXIST;
    }
    if (!mr_journal_grow((void **)&j->topics, &j->topics_cap, j->ntopics, sizeof(*j->topics))) {
        return MR_ENOMEM;
    }
    memmove(j->topics + at + 1, j->topics + at, (j->ntopics - at) * sizeof(*j->topics));
    j->topics[at] = t;
    j->ntopics++;
    return 0;
}

static int update_overrides(struct mr_journal_topic *t, const struct mr_journal_topic_options *o,
                            struct mr_err *err)
{
    int64_t age = t->retention_age_ms, bytes = t->retention_bytes;
    t->retention_age_ms = o->retention_age_ms;
    t->retention_bytes = o->retention_bytes;
    int rc = meta_write(t, t->nparts);
    if (rc != 0) {
        t->retention_age_ms = age;
        t->retention_bytes = bytes;
        return MR_ERR_SET(err, rc, "cannot write %s/%s: %s", t->dir, MR_TOPIC_META,
                          mr_strerror(rc));
    }
    return 0;
}

static int topic_create_locked(struct mr_journal *j, const char *name, uint32_t partitions,
                               const struct mr_journal_topic_options *overrides,
                               struct mr_journal_topic **out, struct mr_err *err)
{
    struct mr_journal_topic *t;
    int rc = topic_new(j, name, partitions, &t);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "out of memory creating topic %s", name);
    }
    if (overrides != NULL) {
        t->retention_age_ms = overrides->retention_age_ms;
        t->retention_bytes = overrides->retention_bytes;
    }
    if (mkdir(t->dir, 0755) != 0 && errno != EEXIST) {
        rc = mr_err_from_errno(errno);
        MR_ERR_SET(err, rc, "cannot create %s: %s", t->dir, strerror(errno));
        goto fail;
    }
    rc = meta_write(t, partitions);
    if (rc == 0) {
        rc = mr_journal_dir_sync(j->dir);
    }
    if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot write %s/%s: %s", t->dir, MR_TOPIC_META, mr_strerror(rc));
        goto fail;
    }
    rc = topic_open_partitions(t, partitions, NULL, err);
    if (rc == 0 && (rc = mr_topic_insert(j, t)) != 0) {
        MR_ERR_SET(err, rc, "cannot add topic %s", name);
    }
    if (rc != 0) {
        goto fail;
    }
    *out = t;
    return 0;
fail:
    mr_topic_free(t);
    return rc;
}

int mr_journal_topic_create(struct mr_journal *j, const char *name, uint32_t partitions,
                            const struct mr_journal_topic_options *overrides,
                            struct mr_journal_topic **out, struct mr_err *err)
{
    if (j == NULL || name == NULL || out == NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "missing argument");
    }
    if (!mr_journal_name_ok(name, MR_JOURNAL_TOPIC_MAX)) {
        return MR_ERR_SET(err, MR_EINVAL, "bad topic name '%s': use 1..249 of A-Z a-z 0-9 . _ -",
                          name);
    }
    if (partitions < 1 || partitions > 10000) {
        return MR_ERR_SET(err, MR_EINVAL, "topic %s: partitions %u not in 1..10000", name,
                          partitions);
    }
    if (overrides != NULL &&
        ((overrides->retention_age_ms != MR_JOURNAL_DEFAULT && overrides->retention_age_ms < -1) ||
         (overrides->retention_bytes != MR_JOURNAL_DEFAULT && overrides->retention_bytes < -1))) {
        return MR_ERR_SET(err, MR_EINVAL, "topic %s: retention must be >= 0 or -1 (unlimited)",
                          name);
    }
    pthread_mutex_lock(&j->topics_lock);
    size_t at;
    int rc = 0;
    struct mr_journal_topic *t = find_locked(j, name, &at);
    if (t != NULL) {
        if (t->nparts != partitions) {
            rc = MR_ERR_SET(err, MR_EEXIST, "topic %s exists with %u partitions, not %u", name,
                            t->nparts, partitions);
        } else if (overrides != NULL && !j->opts.read_only) {
            rc = update_overrides(t, overrides, err);
        }
    } else if (j->opts.read_only) {
        rc = MR_ERR_SET(err, MR_EROFS, "journal %s is open read-only: cannot create topic %s",
                        j->dir, name);
    } else {
        rc = topic_create_locked(j, name, partitions, overrides, &t, err);
    }
    pthread_mutex_unlock(&j->topics_lock);
    if (rc == 0) {
        *out = t;
    }
    return rc;
}

struct mr_journal_topic *mr_journal_topic_find(struct mr_journal *j, const char *name)
{
    size_t at;
    pthread_mutex_lock(&j->topics_lock);
    struct mr_journal_topic *t = find_locked(j, name, &at);
    pthread_mutex_unlock(&j->topics_lock);
    return t;
}

size_t mr_journal_topic_count(struct mr_journal *j)
{
    pthread_mutex_lock(&j->topics_lock);
    size_t n = j->ntopics;
    pthread_mutex_unlock(&j->topics_lock);
    return n;
}

struct mr_journal_topic *mr_journal_topic_at(struct mr_journal *j, size_t i)
{
    pthread_mutex_lock(&j->topics_lock);
    struct mr_journal_topic *t = i < j->ntopics ? j->topics[i] : NULL;
    pthread_mutex_unlock(&j->topics_lock);
    return t;
}

const char *mr_journal_topic_name(const struct mr_journal_topic *t)
{
    return t->name;
}

uint32_t mr_journal_topic_partitions(const struct mr_journal_topic *t)
{
    return t->nparts;
}
