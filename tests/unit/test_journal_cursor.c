/* Durable consumer cursors: commit, reopen, atomic replace, damaged files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "millrace/journal.h"
#include "support/tmpdir.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    return mr_test_tmpdir_create(dir, sizeof(dir), "mr_jcur");
}

static int teardown(void **state)
{
    (void)state;
    return mr_test_tmpdir_remove(dir);
}

static struct mr_journal *open_j(void)
{
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = dir;
    struct mr_journal *j = NULL;
    assert_int_equal(mr_journal_open(&o, &j, NULL, NULL), 0);
    return j;
}

static void cursor_file(char *out, size_t cap, const char *consumer)
{
    snprintf(out, cap, "%s/t/cursors/%s.cursor", dir, consumer);
}

static void test_commit_reopen(void **state)
{
    (void)state;
    struct mr_journal *j = open_j();
    struct mr_journal_topic *t;
    assert_int_equal(mr_journal_topic_create(j, "t", 3, NULL, &t, NULL), 0);
    int64_t off = -7;
    struct mr_err err;
    assert_int_equal(mr_journal_cursor_get(t, "influx", 0, &off, &err), MR_ENOENT);
    assert_int_equal(off, -7);
    assert_int_equal(mr_journal_cursor_commit(t, "influx", 0, 42, &err), 0);
    assert_int_equal(mr_journal_cursor_commit(t, "influx", 2, 7, &err), 0);
    assert_int_equal(mr_journal_cursor_commit(t, "mirror", 1, 1000, &err), 0);
    int64_t all[3] = {43, -1, 8};
    assert_int_equal(mr_journal_cursor_commit_all(t, "influx", all, 3, &err), 0);
    assert_int_equal(mr_journal_close(j), 0);

    j = open_j();
    t = mr_journal_topic_find(j, "t");
    assert_int_equal(mr_journal_cursor_get(t, "influx", 0, &off, &err), 0);
    assert_int_equal(off, 43);
    assert_int_equal(mr_journal_cursor_get(t, "influx", 1, &off, &err), MR_ENOENT);
    assert_int_equal(mr_journal_cursor_get(t, "influx", 2, &off, &err), 0);
    assert_int_equal(off, 8);
    assert_int_equal(mr_journal_cursor_get(t, "mirror", 1, &off, &err), 0);
    assert_int_equal(off, 1000);

    /* Bad input: clear errors. */
    assert_int_equal(mr_journal_cursor_commit(t, "../x", 0, 1, &err), MR_EINVAL);
    assert_non_null(strstr(err.msg, "consumer"));
    assert_int_equal(mr_journal_cursor_commit(t, "", 0, 1, &err), MR_EINVAL);
    assert_int_equal(mr_journal_cursor_commit(t, "ok", 3, 1, &err), MR_EINVAL);
    assert_int_equal(mr_journal_cursor_commit(t, "ok", 0, -1, &err), MR_EINVAL);
    assert_int_equal(mr_journal_cursor_get(t, "ok", 9, &off, &err), MR_EINVAL);
    assert_int_equal(mr_journal_close(j), 0);
}

static void test_leftover_tmp_ignored(void **state)
{
    (void)state;
    struct mr_journal *j = open_j();
    struct mr_journal_topic *t;
    assert_int_equal(mr_journal_topic_create(j, "t", 1, NULL, &t, NULL), 0);
    assert_int_equal(mr_journal_cursor_commit(t, "c", 0, 5, NULL), 0);
    assert_int_equal(mr_journal_close(j), 0);
    /* A crash between writing the temp file and the rename leaves a half-written temp. */
    char p[256];
    snprintf(p, sizeof(p), "%s/t/cursors/c.cursor.tmp", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_int_equal(write(fd, "MRCU\0\1", 6), 6);
    close(fd);
    j = open_j();
    t = mr_journal_topic_find(j, "t");
    int64_t off;
    assert_int_equal(mr_journal_cursor_get(t, "c", 0, &off, NULL), 0);
    assert_int_equal(off, 5);
    assert_int_equal(mr_journal_cursor_commit(t, "c", 0, 6, NULL), 0);
    assert_int_equal(access(p, F_OK), -1); /* replaced by the new commit's rename */
    assert_int_equal(mr_journal_close(j), 0);
}

static void test_corrupt_cursor(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        off_t pos; /* byte to flip; -1: truncate to 10 bytes; -2: append a byte */
    } cases[] = {
        {"flipped offset", 25}, {"flipped magic", 0}, {"flipped crc", 31},
        {"truncated", -1},      {"too long", -2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_journal *j = open_j();
        struct mr_journal_topic *t;
        assert_int_equal(mr_journal_topic_create(j, "t", 1, NULL, &t, NULL), 0);
        assert_int_equal(mr_journal_cursor_commit(t, "c", 0, 123456, NULL), 0);
        assert_int_equal(mr_journal_close(j), 0);
        char p[256];
        cursor_file(p, sizeof(p), "c");
        int fd = open(p, O_RDWR);
        assert_true(fd >= 0);
        if (cases[i].pos >= 0) {
            uint8_t b;
            assert_int_equal(pread(fd, &b, 1, cases[i].pos), 1);
            b ^= 0x40;
            assert_int_equal(pwrite(fd, &b, 1, cases[i].pos), 1);
        } else if (cases[i].pos == -1) {
            assert_int_equal(ftruncate(fd, 10), 0);
        } else {
            assert_int_equal(pwrite(fd, "x", 1, 32), 1);
        }
        close(fd);
        j = open_j();
        t = mr_journal_topic_find(j, "t");
        int64_t off = -5;
        struct mr_err err;
        mr_err_clear(&err);
        for (int k = 0; k < 2; k++) { /* reported every time, never reset */
            assert_int_equal(mr_journal_cursor_get(t, "c", 0, &off, &err), MR_ECORRUPT);
            assert_non_null(strstr(err.msg, p));
            assert_int_equal(off, -5);
        }
        assert_int_equal(mr_journal_cursor_commit(t, "c", 0, 1, &err), MR_ECORRUPT);
        assert_int_equal(mr_journal_close(j), 0);
        unlink(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftover_tmp_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_cursor, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
