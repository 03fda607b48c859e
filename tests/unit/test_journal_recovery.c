/* Journal crash recovery, index rebuild, retention, verification, read-only use and write
 * failures (full disk, I/O errors). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "millrace/journal.h"
#include "support/tmpdir.h"

/* Test hooks in src/journal/journal.c. */
void mr_journal_test_fail_write(struct mr_journal *j, int errnum, uint64_t after_bytes);
void mr_journal_test_fail_sync(struct mr_journal *j, int errnum);

static char dir[64];

static int setup(void **state)
{
    (void)state;
    return mr_test_tmpdir_create(dir, sizeof(dir), "mr_jrec");
}

static int teardown(void **state)
{
    (void)state;
    return mr_test_tmpdir_remove(dir);
}

static struct mr_journal *open_j(bool ro, uint64_t seg_bytes, struct mr_journal_recovery *rep)
{
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = dir;
    o.segment_bytes = seg_bytes;
    o.index_interval_bytes = 200;
    o.read_only = ro;
    struct mr_journal *j = NULL;
    struct mr_err err;
    int rc = mr_journal_open(&o, &j, rep, &err);
    if (rc != 0) {
        print_error("open: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    return j;
}

static size_t build(uint8_t *buf, size_t cap, int count, int64_t ts)
{
    struct mr_batch_builder b;
    assert_int_equal(mr_batch_builder_init(&b, buf, cap), 0);
    for (int i = 0; i < count; i++) {
        assert_int_equal(mr_batch_builder_add(&b, ts, "key", 3, "some value bytes", 16, NULL, 0),
                         0);
    }
    const uint8_t *data;
    size_t len;
    assert_int_equal(mr_batch_builder_finish(&b, &data, &len), 0);
    return len;
}

static int64_t append(struct mr_journal_topic *t, int count, int64_t ts)
{
    uint8_t buf[8192];
    size_t len = build(buf, sizeof(buf), count, ts);
    int64_t base = -1;
    int rc = mr_journal_append_wait(t, 0, buf, len, &base);
    return rc != 0 ? rc : base;
}

static int64_t count_records(struct mr_journal_topic *t, int64_t from)
{
    struct mr_journal_reader *r;
    assert_int_equal(mr_journal_reader_create(t, 0, from, &r), 0);
    struct mr_batch_record rec;
    int64_t n = 0, expect = mr_journal_reader_position(r);
    int rc;
    while ((rc = mr_journal_reader_next(r, &rec)) == 0) {
        assert_int_equal(rec.offset, expect);
        expect++;
        n++;
    }
    assert_int_equal(rc, MR_EEOF);
    mr_journal_reader_destroy(r);
    return n;
}

static void seg_path(char *out, size_t cap, int64_t base, const char *ext)
{
    snprintf(out, cap, "%s/t/0/%020lld%s", dir, (long long)base, ext);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* A child process appends 10 batches of 10 records and dies without closing, as kill -9 would
 * kill it (SIGKILL: no atexit, no leak check of the child under valgrind or LeakSanitizer). */
static void crash_after_appends(uint64_t seg_bytes)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct mr_journal *j = open_j(false, seg_bytes, NULL);
        struct mr_journal_topic *t;
        if (mr_journal_topic_create(j, "t", 1, NULL, &t, NULL) != 0) {
            _exit(1);
        }
        for (int i = 0; i < 10; i++) {
            if (append(t, 10, 1000 + i) != i * 10) {
                _exit(2);
            }
        }
        raise(SIGKILL);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void test_torn_tail(void **state)
{
    (void)state;
    crash_after_appends(1 << 20);
    char log[256];
    seg_path(log, sizeof(log), 0, ".log");
    off_t size = file_size(log);
    off_t batch = size / 10;
    assert_int_equal(batch * 10, size);
    /* Tear the last batch (5 bytes missing) and add garbage after it. */
    assert_int_equal(truncate(log, size - 5), 0);
    int fd = open(log, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    static const char junk[37] = "garbage garbage garbage garbage garb";
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);

    struct mr_journal_recovery rep;
    struct mr_journal *j = open_j(false, 1 << 20, &rep);
    assert_false(rep.clean_shutdown);
    assert_int_equal(rep.truncations, 1);
    assert_int_equal(rep.bytes_dropped, (uint64_t)(batch - 5 + 37));
    assert_int_equal(rep.event_count, 1);
    assert_int_equal(rep.events[0].offset, 90);
    assert_int_equal(rep.events[0].position, (uint64_t)(9 * batch));
    assert_string_equal(rep.events[0].topic, "t");
    assert_int_equal(file_size(log), 9 * batch);
    struct mr_journal_topic *t = mr_journal_topic_find(j, "t");
    assert_int_equal(count_records(t, 0), 90);
    assert_int_equal(append(t, 3, 5000), 90); /* offsets continue where the good data ends */
    assert_int_equal(count_records(t, 0), 93);
    assert_int_equal(mr_journal_close(j), 0);
    assert_int_equal(mr_journal_verify(dir, NULL, NULL, NULL, NULL), 0);
}

static void test_corrupt_tail_crc(void **state)
{
    (void)state;
    crash_after_appends(1 << 20);
    char log[256];
    seg_path(log, sizeof(log), 0, ".log");
    off_t size = file_size(log);
    int fd = open(log, O_RDWR);
    uint8_t b = 0x55;
    assert_int_equal(pwrite(fd, &b, 1, size - 3), 1); /* inside the last batch's value */
    close(fd);
    struct mr_journal_recovery rep;
    struct mr_journal *j = open_j(false, 1 << 20, &rep);
    assert_int_equal(rep.truncations, 1);
    assert_int_equal(rep.events[0].offset, 90);
    assert_non_null(strstr(rep.events[0].reason, "CRC"));
    assert_int_equal(count_records(mr_journal_topic_find(j, "t"), 0), 90);
    assert_int_equal(mr_journal_close(j), 0);
}

static void test_index_rebuild(void **state)
{
    (void)state;
    struct mr_journal *j = open_j(false, 4096, NULL);
    struct mr_journal_topic *t;
    assert_int_equal(mr_journal_topic_create(j, "t", 1, NULL, &t, NULL), 0);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(append(t, 5, 1000 + i), i * 5);
    }
    int64_t off_before;
    assert_int_equal(mr_journal_offset_for_time(t, 0, 1030, &off_before), 0);
    assert_int_equal(off_before, 150);
    struct mr_journal_partition_stats st;
    mr_journal_partition_stats(t, 0, &st);
    assert_true(st.segments >= 3);
    assert_int_equal(mr_journal_close(j), 0);

    /* Delete the first segment's indexes, garble the second's, delete the newest's. */
    char p[256];
    seg_path(p, sizeof(p), 0, ".index");
    assert_int_equal(unlink(p), 0);
    seg_path(p, sizeof(p), 0, ".timeindex");
    assert_int_equal(unlink(p), 0);
    struct mr_journal_recovery rep;
    j = open_j(false, 4096, &rep);
    assert_true(rep.clean_shutdown);
    assert_int_equal(rep.indexes_rebuilt, 1);
    assert_int_equal(rep.truncations, 0);
    t = mr_journal_topic_find(j, "t");
    assert_int_equal(count_records(t, 0), 250);
    assert_int_equal(count_records(t, 123), 127);
    int64_t off;
    assert_int_equal(mr_journal_offset_for_time(t, 0, 1030, &off), 0);
    assert_int_equal(off, 150);
    seg_path(p, sizeof(p), 0, ".index");
    assert_true(file_size(p) > 0);
    assert_int_equal(mr_journal_close(j), 0);

    seg_path(p, sizeof(p), 0, ".index");
    int fd = open(p, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "xyz", 3), 3); /* not a whole entry */
    close(fd);
    j = open_j(false, 4096, &rep);
    assert_int_equal(rep.indexes_rebuilt, 1);
    t = mr_journal_topic_find(j, "t");
    assert_int_equal(count_records(t, 77), 250 - 77);
    assert_int_equal(mr_journal_close(j), 0);
}

static void test_retention(void **state)
{
    (void)state;
    struct mr_journal *j = open_j(false, 4096, NULL);
    struct mr_journal_topic_options o;
    mr_journal_topic_options_init(&o);
    o.retention_bytes = 3 * 4096;
    struct mr_journal_topic *t;
    assert_int_equal(mr_journal_topic_create(j, "t", 1, &o, &t, NULL), 0);
    int64_t now = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (int64_t)ts.tv_sec * 1000;
    for (int i = 0; i < 100; i++) {
        append(t, 5, now);
    }
    struct mr_journal_partition_stats st0, st;
    mr_journal_partition_stats(t, 0, &st0);
    assert_true(st0.bytes > 3 * 4096);
    struct mr_journal_reader *old;
    assert_int_equal(mr_journal_reader_create(t, 0, 0, &old), 0);
    long deleted = mr_journal_enforce_retention(j);
    assert_true(deleted > 0);
    mr_journal_partition_stats(t, 0, &st);
    assert_int_equal(st.segments, st0.segments - (uint32_t)deleted);
    assert_true(st.bytes <= 3 * 4096);
    assert_true(st.bytes + 4096 > 3 * 4096); /* only what had to go */
    assert_true(st.earliest > 0);
    assert_int_equal(st.end, 500);
    /* A reader that already held the deleted first segment still reads it. */
    struct mr_batch_record rec;
    assert_int_equal(mr_journal_reader_next(old, &rec), 0);
    assert_int_equal(rec.offset, 0);
    mr_journal_reader_destroy(old);
    struct mr_journal_reader *r;
    assert_int_equal(mr_journal_reader_create(t, 0, 0, &r), MR_ERANGE);
    assert_int_equal(count_records(t, MR_JOURNAL_EARLIEST), 500 - st.earliest);
    char p[256];
    seg_path(p, sizeof(p), 0, ".log");
    assert_int_equal(file_size(p), -1);
    assert_int_equal(mr_journal_enforce_retention(j), 0);

    /* By age: old timestamps in the next segments, current ones after. Only old go, and never
     * the active segment. */
    o.retention_bytes = MR_JOURNAL_UNLIMITED;
    o.retention_age_ms = 3600 * 1000;
    assert_int_equal(mr_journal_topic_create(j, "t", 1, &o, &t, NULL), 0);
    struct mr_journal_topic *t2;
    assert_int_equal(mr_journal_topic_create(j, "aged", 1, &o, &t2, NULL), 0);
    uint8_t buf[8192];
    for (int i = 0; i < 40; i++) {
        size_t len = build(buf, sizeof(buf), 5, i < 30 ? 1000 : now);
        assert_int_equal(mr_journal_append_wait(t2, 0, buf, len, NULL), 0);
    }
    struct mr_journal_partition_stats a0, a1;
    mr_journal_partition_stats(t2, 0, &a0);
    assert_true(mr_journal_enforce_retention(j) > 0);
    mr_journal_partition_stats(t2, 0, &a1);
    assert_true(a1.segments < a0.segments);
    assert_true(a1.earliest > 0 && a1.earliest <= 150);
    /* The first record left is old only if it shares a segment with new ones. */
    struct mr_journal_topic *t3;
    assert_int_equal(mr_journal_topic_create(j, "allold", 1, &o, &t3, NULL), 0);
    for (int i = 0; i < 40; i++) {
        size_t len = build(buf, sizeof(buf), 5, 1000);
        assert_int_equal(mr_journal_append_wait(t3, 0, buf, len, NULL), 0);
    }
    assert_true(mr_journal_enforce_retention(j) > 0);
    mr_journal_partition_stats(t3, 0, &a1);
    assert_int_equal(a1.segments, 1); /* the active segment stays */
    assert_int_equal(a1.end, 200);
    assert_int_equal(mr_journal_close(j), 0);

    /* The override survives a reopen. */
    j = open_j(false, 4096, NULL);
    t3 = mr_journal_topic_find(j, "allold");
    assert_non_null(t3);
    assert_int_equal(append(t3, 1, 1), 200);
    assert_int_equal(mr_journal_close(j), 0);
}

struct problems {
    int n;
    char where[256];
    uint64_t pos;
};

static void on_problem(void *arg, const struct mr_journal_problem *p)
{
    struct problems *pr = arg;
    pr->n++;
    snprintf(pr->where, sizeof(pr->where), "%s", p->segment);
    pr->pos = p->position;
}

static void test_verify(void **state)
{
    (void)state;
    struct mr_journal *j = open_j(false, 4096, NULL);
    struct mr_journal_topic *t;
    assert_int_equal(mr_journal_topic_create(j, "t", 1, NULL, &t, NULL), 0);
    for (int i = 0; i < 30; i++) {
        append(t, 5, 1000);
    }
    assert_int_equal(mr_journal_close(j), 0);
    struct mr_journal_verify_stats vs;
    struct problems pr = {0};
    assert_int_equal(mr_journal_verify(dir, on_problem, &pr, &vs, NULL), 0);
    assert_int_equal(vs.records, 150);
    assert_int_equal(vs.batches, 30);
    assert_int_equal(pr.n, 0);

    char p[256];
    seg_path(p, sizeof(p), 0, ".log");
    off_t size = file_size(p);
    int fd = open(p, O_RDWR);
    uint8_t b = 0xee;
    assert_int_equal(pwrite(fd, &b, 1, size / 2), 1);
    close(fd);
    assert_int_equal(mr_journal_verify(dir, on_problem, &pr, &vs, NULL), MR_ECORRUPT);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.where, p);
    assert_true(pr.pos <= (uint64_t)size / 2);
    assert_int_equal(mr_journal_verify("/nonexistent/x", NULL, NULL, NULL, NULL), MR_ENOENT);
}

static void test_read_only(void **state)
{
    (void)state;
    struct mr_journal *w = open_j(false, 4096, NULL);
    struct mr_journal_topic *t;
    assert_int_equal(mr_journal_topic_create(w, "t", 1, NULL, &t, NULL), 0);
    for (int i = 0; i < 20; i++) {
        append(t, 5, 1000);
    }
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = dir;
    struct mr_journal *second;
    assert_int_equal(mr_journal_open(&o, &second, NULL, NULL), MR_EBUSY);

    struct mr_journal *ro = open_j(true, 4096, NULL);
    struct mr_journal_topic *rt = mr_journal_topic_find(ro, "t");
    assert_non_null(rt);
    assert_int_equal(count_records(rt, 0), 100);
    uint8_t buf[512];
    size_t len = build(buf, sizeof(buf), 1, 1);
    assert_int_equal(mr_journal_append_wait(rt, 0, buf, len, NULL), MR_EROFS);
    assert_int_equal(mr_journal_cursor_commit(rt, "c", 0, 1, NULL), MR_EROFS);
    struct mr_journal_topic *nt;
    assert_int_equal(mr_journal_topic_create(ro, "new", 1, NULL, &nt, NULL), MR_EROFS);
    assert_int_equal(mr_journal_enforce_retention(ro), MR_EROFS);

    /* The read-only journal follows what the writer appends (across segment rolls). */
    struct mr_journal_reader *r;
    assert_int_equal(mr_journal_reader_create(rt, 0, MR_JOURNAL_LATEST, &r), 0);
    assert_int_equal(mr_journal_reader_wait(r, 20), MR_ETIMEDOUT);
    for (int i = 0; i < 30; i++) {
        append(t, 5, 2000);
    }
    assert_int_equal(mr_journal_reader_wait(r, 2000), 0);
    struct mr_batch_record rec;
    int64_t n = 0;
    for (;;) {
        int rc = mr_journal_reader_next(r, &rec);
        if (rc == MR_EEOF) {
            if (n == 150 || mr_journal_reader_wait(r, 500) != 0) {
                break;
            }
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(rec.offset, 100 + n);
        n++;
    }
    assert_int_equal(n, 150);
    mr_journal_reader_destroy(r);
    assert_int_equal(mr_journal_close(ro), 0);
    assert_int_equal(mr_journal_close(w), 0);
}

static void test_write_failures(void **state)
{
    (void)state;
    struct mr_journal *j = open_j(false, 1 << 20, NULL);
    struct mr_journal_topic *t;
    assert_int_equal(mr_journal_topic_create(j, "t", 1, NULL, &t, NULL), 0);
    assert_int_equal(append(t, 10, 1000), 0);
    char p[256];
    seg_path(p, sizeof(p), 0, ".log");
    off_t good = file_size(p);

    mr_journal_test_fail_write(j, ENOSPC, 100); /* 100 bytes reach the file, then ENOSPC */
    assert_int_equal(append(t, 10, 1000), MR_ENOSPC);
    assert_int_equal(file_size(p), good); /* never half a batch */
    assert_int_equal(count_records(t, 0), 10);
    assert_int_equal(append(t, 10, 1000), 10); /* space is back: same offset again */

    mr_journal_test_fail_write(j, EIO, 0);
    assert_int_equal(append(t, 1, 1000), MR_EIO);
    mr_journal_test_fail_sync(j, EIO);
    assert_int_equal(append(t, 1, 1000), MR_EIO);
    assert_int_equal(count_records(t, 0), 20);
    assert_int_equal(append(t, 1, 1000), 20);

    /* A real short write: the kernel refuses to grow the file past RLIMIT_FSIZE (EFBIG). */
    off_t now = file_size(p);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)now + 50;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    assert_int_equal(append(t, 10, 1000), MR_ENOSPC);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(file_size(p), now);
    assert_int_equal(append(t, 10, 1000), 21);
    assert_int_equal(count_records(t, 0), 31);
    assert_int_equal(mr_journal_close(j), 0);
    assert_int_equal(mr_journal_verify(dir, NULL, NULL, NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_tail_crc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_rebuild, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
