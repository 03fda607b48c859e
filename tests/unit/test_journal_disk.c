/* The journal's disk cap (journal.max_bytes) and its overflow policies, on a real journal with
 * 4 KiB segments: what every consumer read is deleted first; then block reports full,
 * drop_oldest deletes the oldest segment of any topic (readers skip with MR_ERANGE), and
 * downsample deletes only low-priority topics' segments and blocks when none is left. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "millrace/clock.h"
#include "millrace/journal.h"
#include "support/tmpdir.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    return mr_test_tmpdir_create(dir, sizeof(dir), "mr_jdisk");
}

static int teardown(void **state)
{
    (void)state;
    return mr_test_tmpdir_remove(dir);
}

static struct mr_journal *open_capped(int64_t max_bytes, enum mr_journal_overflow policy)
{
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = dir;
    o.fsync = MR_JOURNAL_FSYNC_NEVER;
    o.segment_bytes = 4096;
    o.max_bytes = max_bytes;
    o.overflow = policy;
    struct mr_journal *j = NULL;
    assert_int_equal(mr_journal_open(&o, &j, NULL, NULL), 0);
    return j;
}

/* One batch of 10 records of 100 bytes each (~1.1 KiB): four fill a segment. */
static void append_batch(struct mr_journal_topic *t, int64_t ts)
{
    uint8_t buf[4096];
    struct mr_batch_builder b;
    assert_int_equal(mr_batch_builder_init(&b, buf, sizeof(buf)), 0);
    char v[100];
    memset(v, 'x', sizeof(v));
    /* Recent times: retention by age (7 days) must not be what deletes anything here. */
    int64_t now_ms = mr_clock_wall_ms() - 3600 * 1000;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(mr_batch_builder_add(&b, now_ms + ts + i, NULL, -1, v, sizeof(v), NULL, 0),
                         0);
    }
    const uint8_t *data;
    size_t len;
    assert_int_equal(mr_batch_builder_finish(&b, &data, &len), 0);
    assert_int_equal(mr_journal_append_wait(t, 0, buf, len, NULL), 0);
}

static int64_t earliest(struct mr_journal_topic *t)
{
    struct mr_journal_partition_stats st;
    assert_int_equal(mr_journal_partition_stats(t, 0, &st), 0);
    return st.earliest;
}

static void test_block_then_release_what_was_read(void **state)
{
    (void)state;
    struct mr_journal *j = open_capped(32 * 1024, MR_JOURNAL_OVERFLOW_BLOCK);
    struct mr_journal_topic *t;
    assert_int_equal(mr_journal_topic_create(j, "raw", 1, NULL, &t, NULL), 0);
    for (int i = 0; i < 40; i++) { /* ~44 KiB */
        append_batch(t, 1000 + i * 10);
    }
    mr_journal_enforce_retention(j);
    struct mr_journal_disk d;
    mr_journal_disk_stats(j, &d);
    assert_true(d.full);
    assert_true(mr_journal_full(j));
    assert_true(d.bytes > 32 * 1024);
    assert_int_equal(d.dropped_segments, 0);
    assert_int_equal(earliest(t), 0); /* nothing unread was deleted */

    /* A consumer reads half: what it passed is released, the journal is below the cap. */
    struct mr_err err;
    assert_int_equal(mr_journal_cursor_commit(t, "output.uplink", 0, 200, &err), 0);
    mr_journal_enforce_retention(j);
    mr_journal_disk_stats(j, &d);
    assert_false(d.full);
    assert_true(d.released_segments > 0);
    assert_true(d.bytes <= 32 * 1024);
    assert_true(earliest(t) > 0 && earliest(t) <= 200);
    /* A second consumer that read less holds back what it has not read. */
    assert_int_equal(mr_journal_cursor_commit(t, "pipeline.features", 0, 0, &err), 0);
    for (int i = 0; i < 40; i++) {
        append_batch(t, 5000 + i * 10);
    }
    int64_t before = earliest(t);
    mr_journal_enforce_retention(j);
    assert_int_equal(earliest(t), before);
    assert_true(mr_journal_full(j));
    assert_int_equal(mr_journal_close(j), 0);
}

static void test_drop_oldest_counts_and_readers_skip(void **state)
{
    (void)state;
    struct mr_journal *j = open_capped(16 * 1024, MR_JOURNAL_OVERFLOW_DROP_OLDEST);
    struct mr_journal_topic *a, *b;
    assert_int_equal(mr_journal_topic_create(j, "alarms", 1, NULL, &a, NULL), 0);
    assert_int_equal(mr_journal_topic_create(j, "raw", 1, NULL, &b, NULL), 0);
    struct mr_journal_reader *r;
    assert_int_equal(mr_journal_reader_create(a, 0, MR_JOURNAL_EARLIEST, &r), 0);
    for (int i = 0; i < 12; i++) { /* alarms are older */
        append_batch(a, 1000 + i * 10);
    }
    for (int i = 0; i < 12; i++) {
        append_batch(b, 9000 + i * 10);
    }
    mr_journal_enforce_retention(j);
    struct mr_journal_disk d;
    mr_journal_disk_stats(j, &d);
    assert_false(d.full);
    assert_true(d.dropped_segments > 0);
    assert_true(d.dropped_records >= 40);
    assert_true(earliest(a) > 0); /* the oldest data went first, whatever its topic */
    /* A reader still at the deleted start is told, and can continue at what is left. */
    struct mr_batch_record rec;
    int rc = mr_journal_reader_next(r, &rec);
    if (rc == 0) {
        /* it held the old segment open: it reads it to its end, then hits the gap */
        while ((rc = mr_journal_reader_next(r, &rec)) == 0) {
        }
    }
    assert_true(rc == MR_ERANGE || rc == MR_EEOF);
    mr_journal_reader_destroy(r);
    assert_int_equal(mr_journal_close(j), 0);
}

static void test_downsample_gives_up_low_priority_only(void **state)
{
    (void)state;
    struct mr_journal *j = open_capped(16 * 1024, MR_JOURNAL_OVERFLOW_DOWNSAMPLE);
    struct mr_journal_topic *a, *b;
    assert_int_equal(mr_journal_topic_create(j, "alarms", 1, NULL, &a, NULL), 0);
    assert_int_equal(mr_journal_topic_create(j, "raw", 1, NULL, &b, NULL), 0);
    mr_journal_topic_set_low_priority(b, true);
    for (int i = 0; i < 12; i++) {
        append_batch(a, 1000 + i * 10);
        append_batch(b, 1000 + i * 10);
    }
    mr_journal_enforce_retention(j);
    struct mr_journal_disk d;
    mr_journal_disk_stats(j, &d);
    assert_int_equal(earliest(a), 0); /* alarms kept whole */
    assert_true(earliest(b) > 0);     /* raw gave up its oldest segments */
    assert_true(d.dropped_segments > 0);
    /* alarms alone above the cap: nothing more may go; inputs pause */
    for (int i = 0; i < 12; i++) {
        append_batch(a, 5000 + i * 10);
    }
    mr_journal_enforce_retention(j);
    mr_journal_disk_stats(j, &d);
    assert_int_equal(earliest(a), 0);
    assert_true(d.full);
    assert_int_equal(mr_journal_close(j), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_block_then_release_what_was_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_oldest_counts_and_readers_skip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downsample_gives_up_low_priority_only, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
