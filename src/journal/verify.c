/* Offline verification: read every batch of every segment of every topic and check its length,
 * CRC, records and offsets, reporting each problem with its file and byte position. Only reads:
 * safe on a journal another process is writing (a batch being written at that moment may show
 * as a torn tail of the newest segment).
 */
#include "journal/journal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "millrace/alloc.h"

struct verify_ctx {
    mr_journal_problem_cb cb;
    void *arg;
    struct mr_journal_verify_stats st;
};

static void problem(struct verify_ctx *v, const char *topic, uint32_t part, const char *file,
                    uint64_t pos, const char *msg)
{
    v->st.problems++;
    if (v->cb != NULL) {
        struct mr_journal_problem pr = {
            .topic = topic, .partition = part, .segment = file, .position = pos, .message = msg};
        v->cb(v->arg, &pr);
    }
}

static void verify_partition(struct verify_ctx *v, const char *topic, uint32_t part,
                             const char *pdir)
{
    int64_t *bases = NULL;
    size_t n = 0;
    int rc = mr_partition_list_segments(pdir, -1, &bases, &n);
    if (rc != 0) {
        if (rc != MR_ENOENT) {
            problem(v, topic, part, pdir, 0, "cannot list the partition directory");
        }
        return;
    }
    int64_t prev_end = -1;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        mr_journal_fmt(path, sizeof(path), "%s/%020lld.log", pdir, (long long)bases[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            problem(v, topic, part, path, 0, "cannot open the segment");
            if (fd >= 0) {
                close(fd);
            }
            continue;
        }
        v->st.segments++;
        if (prev_end > bases[i]) {
            problem(v, topic, part, path, 0, "segment overlaps the offsets of the previous one");
        }
        struct mr_scan sc;
        mr_segment_scan(fd, 0, (uint64_t)st.st_size, bases[i], true, NULL, NULL, &sc);
        v->st.batches += sc.batches;
        v->st.records += sc.records;
        v->st.bytes += sc.valid_end;
        if (sc.error != 0) {
            char msg[192];
            mr_journal_fmt(msg, sizeof(msg), "%s at offset %lld (%llu bytes after it unreadable)",
                           sc.reason, (long long)sc.next_offset,
                           (unsigned long long)((uint64_t)st.st_size - sc.valid_end));
            problem(v, topic, part, path, sc.valid_end, msg);
        }
        prev_end = sc.next_offset;
        close(fd);
    }
    mr_free(bases);
}

static void verify_topic(struct verify_ctx *v, const char *dir, const char *topic)
{
    char tdir[4096], meta[4096];
    mr_journal_fmt(tdir, sizeof(tdir), "%s/%s", dir, topic);
    mr_journal_fmt(meta, sizeof(meta), "%s/%s", tdir, MR_TOPIC_META);
    uint32_t nparts;
    struct mr_journal_topic_options o;
    struct mr_err err;
    if (mr_topic_meta_read(meta, &nparts, &o, &err) != 0) {
        problem(v, topic, 0, meta, 0, err.msg);
        return;
    }
    v->st.topics++;
    for (uint32_t i = 0; i < nparts; i++) {
        char pdir[4096];
        mr_journal_fmt(pdir, sizeof(pdir), "%s/%u", tdir, i);
        v->st.partitions++;
        verify_partition(v, topic, i, pdir);
    }
}

int mr_journal_verify(const char *dir, mr_journal_problem_cb cb, void *arg,
                      struct mr_journal_verify_stats *stats, struct mr_err *err)
{
    if (dir == NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "verify: no directory");
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        int rc = mr_err_from_errno(errno);
        return MR_ERR_SET(err, rc, "cannot read journal directory %s: %s", dir, strerror(errno));
    }
    struct verify_ctx v = {.cb = cb, .arg = arg};
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char meta[4096];
        mr_journal_fmt(meta, sizeof(meta), "%s/%s/%s", dir, de->d_name, MR_TOPIC_META);
        if (!mr_journal_name_ok(de->d_name, MR_JOURNAL_TOPIC_MAX) || access(meta, F_OK) != 0) {
            continue;
        }
        char *name = mr_strdup(de->d_name);
        if (name == NULL || !mr_journal_grow((void **)&names, &cap, n, sizeof(*names))) {
            mr_free(name);
            rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
            break;
        }
        names[n++] = name;
    }
    closedir(d);
    /* Sorted, so reports come in a stable order. */
    for (size_t i = 1; i < n; i++) {
        for (size_t k = i; k > 0 && strcmp(names[k - 1], names[k]) > 0; k--) {
            char *tmp = names[k];
            names[k] = names[k - 1];
            names[k - 1] = tmp;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            verify_topic(&v, dir, names[i]);
        }
        mr_free(names[i]);
    }
    mr_free(names);
    if (rc != 0) {
        return rc;
    }
    if (stats != NULL) {
        *stats = v.st;
    }
    return v.st.problems > 0 ? MR_ECORRUPT : 0;
}
