/* Journal append and read: offsets, segment rolls, reopen, timestamps, follow, fsync policies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "millrace/alloc.h"
#include "millrace/journal.h"
#include "support/tmpdir.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    return mr_test_tmpdir_create(dir, sizeof(dir), "mr_jlog");
}

static int teardown(void **state)
{
    (void)state;
    return mr_test_tmpdir_remove(dir);
}

static struct mr_journal *open_j(enum mr_journal_fsync f, uint64_t seg_bytes,
                                 struct mr_journal_recovery *rep)
{
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = dir;
    o.fsync = f;
    o.segment_bytes = seg_bytes;
    o.index_interval_bytes = 256;
    struct mr_journal *j = NULL;
    struct mr_err err;
    int rc = mr_journal_open(&o, &j, rep, &err);
    if (rc != 0) {
        print_error("open: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    return j;
}

static struct mr_journal_topic *topic(struct mr_journal *j, const char *name, uint32_t n)
{
    struct mr_journal_topic *t = NULL;
    assert_int_equal(mr_journal_topic_create(j, name, n, NULL, &t, NULL), 0);
    return t;
}

/* Append `count` records "v<first+i>" with timestamps ts0 + i, waiting for the ack. */
static int64_t append_n(struct mr_journal_topic *t, uint32_t part, int first, int count,
                        int64_t ts0)
{
    uint8_t buf[16384];
    struct mr_batch_builder b;
    assert_int_equal(mr_batch_builder_init(&b, buf, sizeof(buf)), 0);
    for (int i = 0; i < count; i++) {
        char v[32];
        int n = snprintf(v, sizeof(v), "v%d", first + i);
        assert_int_equal(mr_batch_builder_add(&b, ts0 + i, NULL, -1, v, n, NULL, 0), 0);
    }
    const uint8_t *data;
    size_t len;
    assert_int_equal(mr_batch_builder_finish(&b, &data, &len), 0);
    int64_t base = -1;
    assert_int_equal(mr_journal_append_wait(t, part, buf, len, &base), 0);
    return base;
}

/* Read every record from `from` and check values v<from>..v<end-1>. Returns records read. */
static int64_t check_read(struct mr_journal_topic *t, uint32_t part, int64_t from, int64_t vfirst)
{
    struct mr_journal_reader *r;
    assert_int_equal(mr_journal_reader_create(t, part, from, &r), 0);
    struct mr_batch_record rec;
    int64_t n = 0;
    int rc;
    while ((rc = mr_journal_reader_next(r, &rec)) == 0) {
        char v[32];
        int len = snprintf(v, sizeof(v), "v%lld", (long long)(vfirst + n));
        assert_int_equal(rec.offset, (from < 0 ? 0 : from) + n);
        assert_int_equal(rec.value_len, len);
        assert_memory_equal(rec.value, v, (size_t)len);
        n++;
    }
    assert_int_equal(rc, MR_EEOF);
    mr_journal_reader_destroy(r);
    return n;
}

static void test_append_read_rolls_reopen(void **state)
{
    (void)state;
    struct mr_journal *j = open_j(MR_JOURNAL_FSYNC_ALWAYS, 4096, NULL);
    struct mr_journal_topic *t = topic(j, "line1", 2);
    int64_t expect = 0;
    for (int b = 0; b < 60; b++) {
        assert_int_equal(append_n(t, 0, (int)expect, 10, 1000 + expect), expect);
        expect += 10;
    }
    struct mr_journal_partition_stats st;
    assert_int_equal(mr_journal_partition_stats(t, 0, &st), 0);
    assert_int_equal(st.end, 600);
    assert_int_equal(st.earliest, 0);
    assert_true(st.segments > 2); /* rolled by size */
    assert_int_equal(check_read(t, 0, MR_JOURNAL_EARLIEST, 0), 600);
    assert_int_equal(check_read(t, 0, 333, 333), 600 - 333); /* starts mid-batch */
    assert_int_equal(check_read(t, 1, MR_JOURNAL_EARLIEST, 0), 0);
    struct mr_journal_reader *r;
    assert_int_equal(mr_journal_reader_create(t, 0, 601, &r), MR_ERANGE);
    assert_int_equal(mr_journal_close(j), 0);

    struct mr_journal_recovery rep;
    j = open_j(MR_JOURNAL_FSYNC_ALWAYS, 4096, &rep);
    assert_true(rep.clean_shutdown);
    assert_int_equal(rep.truncations, 0);
    t = mr_journal_topic_find(j, "line1");
    assert_non_null(t);
    assert_int_equal(mr_journal_topic_partitions(t), 2);
    assert_int_equal(append_n(t, 0, 600, 5, 5000), 600);
    assert_int_equal(check_read(t, 0, 0, 0), 605);
    assert_int_equal(mr_journal_close(j), 0);
}

static void test_read_by_time(void **state)
{
    (void)state;
    struct mr_journal *j = open_j(MR_JOURNAL_FSYNC_NEVER, 4096, NULL);
    struct mr_journal_topic *t = topic(j, "times", 1);
    /* 400 records, timestamps 10000 + 10*i, across several segments. */
    for (int b = 0; b < 40; b++) {
        uint8_t buf[2048];
        struct mr_batch_builder bb;
        assert_int_equal(mr_batch_builder_init(&bb, buf, sizeof(buf)), 0);
        for (int i = 0; i < 10; i++) {
            int64_t ts = 10000 + 10 * (b * 10 + i);
            assert_int_equal(mr_batch_builder_add(&bb, ts, "k", 1, "value", 5, NULL, 0), 0);
        }
        const uint8_t *data;
        size_t len;
        assert_int_equal(mr_batch_builder_finish(&bb, &data, &len), 0);
        assert_int_equal(mr_journal_append_wait(t, 0, buf, len, NULL), 0);
    }
    static const struct {
        int64_t ts;
        int64_t offset;
    } cases[] = {
        {0, 0},       {10000, 0},   {10001, 1},   {10010, 1},
        {12345, 235}, {13990, 399}, {13991, 400}, {99999, 400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t off = -5;
        assert_int_equal(mr_journal_offset_for_time(t, 0, cases[i].ts, &off), 0);
        assert_int_equal(off, cases[i].offset);
    }
    /* Same answers after a reopen (sealed segments answer from their index files). */
    assert_int_equal(mr_journal_close(j), 0);
    j = open_j(MR_JOURNAL_FSYNC_NEVER, 4096, NULL);
    t = mr_journal_topic_find(j, "times");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t off = -5;
        assert_int_equal(mr_journal_offset_for_time(t, 0, cases[i].ts, &off), 0);
        assert_int_equal(off, cases[i].offset);
    }
    assert_int_equal(mr_journal_close(j), 0);
}

static void test_next_batch(void **state)
{
    (void)state;
    struct mr_journal *j = open_j(MR_JOURNAL_FSYNC_NEVER, 1 << 20, NULL);
    struct mr_journal_topic *t = topic(j, "batches", 1);
    append_n(t, 0, 0, 3, 1);
    append_n(t, 0, 3, 4, 1);
    struct mr_journal_reader *r;
    assert_int_equal(mr_journal_reader_create(t, 0, 4, &r), 0);
    struct mr_batch_info bi;
    assert_int_equal(mr_journal_reader_next_batch(r, &bi), 0);
    assert_int_equal(bi.base_offset, 3); /* the whole batch holding offset 4 */
    assert_int_equal(bi.count, 4);
    assert_int_equal(mr_journal_reader_position(r), 7);
    assert_int_equal(mr_journal_reader_next_batch(r, &bi), MR_EEOF);
    assert_int_equal(mr_journal_reader_seek(r, MR_JOURNAL_EARLIEST), 0);
    struct mr_batch_record rec;
    assert_int_equal(mr_journal_reader_next(r, &rec), 0);
    assert_int_equal(rec.offset, 0);
    assert_int_equal(mr_journal_reader_seek(r, MR_JOURNAL_LATEST), 0);
    assert_int_equal(mr_journal_reader_next(r, &rec), MR_EEOF);
    assert_int_equal(mr_journal_reader_seek(r, 8), MR_ERANGE);
    mr_journal_reader_destroy(r);
    assert_int_equal(mr_journal_close(j), 0);
}

struct follower {
    struct mr_journal_topic *t;
    int rc;
    int64_t offset;
};

static void *follow_main(void *arg)
{
    struct follower *f = arg;
    struct mr_journal_reader *r;
    f->rc = mr_journal_reader_create(f->t, 0, MR_JOURNAL_LATEST, &r);
    if (f->rc != 0) {
        return NULL;
    }
    struct mr_batch_record rec;
    while ((f->rc = mr_journal_reader_next(r, &rec)) == MR_EEOF) {
        f->rc = mr_journal_reader_wait(r, 5000);
        if (f->rc != 0) {
            break;
        }
    }
    if (f->rc == 0) {
        f->offset = rec.offset;
    }
    mr_journal_reader_destroy(r);
    return NULL;
}

static int commits;

static void on_commit(void *arg, struct mr_journal_topic *t, uint32_t partition, int64_t end)
{
    (void)arg;
    (void)t;
    (void)partition;
    (void)end;
    __atomic_add_fetch(&commits, 1, __ATOMIC_SEQ_CST);
}

static void test_follow(void **state)
{
    (void)state;
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = dir;
    o.on_commit = on_commit;
    struct mr_journal *j;
    assert_int_equal(mr_journal_open(&o, &j, NULL, NULL), 0);
    struct mr_journal_topic *t = topic(j, "follow", 1);
    append_n(t, 0, 0, 5, 1);
    struct mr_journal_reader *r;
    assert_int_equal(mr_journal_reader_create(t, 0, MR_JOURNAL_LATEST, &r), 0);
    assert_int_equal(mr_journal_reader_wait(r, 30), MR_ETIMEDOUT);
    assert_int_equal(mr_journal_reader_wait(r, 0), MR_ETIMEDOUT);
    mr_journal_reader_destroy(r);

    struct follower f = {.t = t, .rc = 99, .offset = -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, follow_main, &f), 0);
    usleep(50000);
    int before = __atomic_load_n(&commits, __ATOMIC_SEQ_CST);
    append_n(t, 0, 5, 1, 2);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(f.rc, 0);
    assert_int_equal(f.offset, 5);
    assert_true(__atomic_load_n(&commits, __ATOMIC_SEQ_CST) > before);

    /* Close wakes a follower that waits without limit. */
    f.rc = 99;
    assert_int_equal(pthread_create(&th, NULL, follow_main, &f), 0);
    usleep(50000);
    assert_int_equal(mr_journal_close(j), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(f.rc, MR_ECLOSED);
}

struct acks {
    struct mr_journal_topic *t;
    int n;
    int64_t next;
    int bad;
};

static void ack_cb(void *arg, int status, uint32_t partition, int64_t base, uint32_t count)
{
    struct acks *a = arg;
    struct mr_journal_partition_stats st;
    mr_journal_partition_stats(a->t, partition, &st);
    /* In offset order, contiguous, and readable (committed) before the ack. */
    if (status != 0 || base != a->next || st.end < base + count) {
        a->bad++;
    }
    a->next = base + count;
    __atomic_add_fetch(&a->n, 1, __ATOMIC_SEQ_CST);
}

static void test_fsync_policies(void **state)
{
    (void)state;
    static const enum mr_journal_fsync policies[] = {
        MR_JOURNAL_FSYNC_ALWAYS, MR_JOURNAL_FSYNC_INTERVAL, MR_JOURNAL_FSYNC_NEVER};
    for (size_t pi = 0; pi < 3; pi++) {
        struct mr_journal *j = open_j(policies[pi], 1 << 16, NULL);
        char name[32];
        snprintf(name, sizeof(name), "pol%zu", pi);
        struct mr_journal_topic *t = topic(j, name, 1);
        struct acks a = {.t = t};
        uint8_t buf[4096];
        struct mr_batch_builder b;
        mr_batch_builder_init(&b, buf, sizeof(buf));
        for (int i = 0; i < 200; i++) {
            mr_batch_builder_reset(&b);
            for (int k = 0; k < 7; k++) {
                assert_int_equal(mr_batch_builder_add(&b, i, "key", 3, "0123456789", 10, NULL, 0),
                                 0);
            }
            const uint8_t *data;
            size_t len;
            mr_batch_builder_finish(&b, &data, &len);
            unsigned flags = 0;
            void *batch = buf;
            if (i % 2 == 1) { /* every other append hands its buffer over */
                batch = mr_malloc(len);
                memcpy(batch, data, len);
                flags = MR_JOURNAL_APPEND_TAKE;
            }
            assert_int_equal(mr_journal_append(t, 0, batch, len, flags, ack_cb, &a), 0);
        }
        assert_int_equal(mr_journal_close(j), 0); /* close drains and acks everything */
        assert_int_equal(a.n, 200);
        assert_int_equal(a.bad, 0);
        assert_int_equal(a.next, 1400);
    }
}

static void count_ack(void *arg, int status, uint32_t partition, int64_t base, uint32_t count)
{
    (void)partition;
    (void)base;
    (void)count;
    if (status == 0) {
        __atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
    }
}

/* Many batches queued at once land in one group: it must still roll at segment_bytes. */
static void test_group_rolls(void **state)
{
    (void)state;
    struct mr_journal *j = open_j(MR_JOURNAL_FSYNC_NEVER, 4096, NULL);
    struct mr_journal_topic *t = topic(j, "group", 1);
    uint8_t buf[1024];
    struct mr_batch_builder b;
    char v[100];
    memset(v, 'a', sizeof(v));
    int acked = 0;
    for (int i = 0; i < 300; i++) {
        mr_batch_builder_init(&b, buf, sizeof(buf));
        for (int k = 0; k < 5; k++) {
            assert_int_equal(mr_batch_builder_add(&b, i, NULL, -1, v, sizeof(v), NULL, 0), 0);
        }
        const uint8_t *data;
        size_t len;
        mr_batch_builder_finish(&b, &data, &len);
        assert_int_equal(mr_journal_append(t, 0, buf, len, 0, count_ack, &acked), 0);
    }
    assert_int_equal(mr_journal_close(j), 0);
    assert_int_equal(acked, 300);
    j = open_j(MR_JOURNAL_FSYNC_NEVER, 4096, NULL);
    t = mr_journal_topic_find(j, "group");
    struct mr_journal_partition_stats st;
    assert_int_equal(mr_journal_partition_stats(t, 0, &st), 0);
    assert_int_equal(st.end, 1500);
    assert_true(st.segments >= st.bytes / 4096); /* no segment grew past segment_bytes */
    assert_int_equal(mr_journal_close(j), 0);
}

static void ignore_ack(void *arg, int status, uint32_t partition, int64_t base, uint32_t count)
{
    (void)arg;
    (void)status;
    (void)partition;
    (void)base;
    (void)count;
}

static void test_bad_appends(void **state)
{
    (void)state;
    struct mr_journal *j = open_j(MR_JOURNAL_FSYNC_NEVER, 1 << 16, NULL);
    struct mr_journal_topic *t = topic(j, "bad", 2);
    struct mr_journal_topic *t2 = NULL;
    struct mr_err err;
    assert_int_equal(mr_journal_topic_create(j, "bad", 3, NULL, &t2, &err), MR_EEXIST);
    assert_int_equal(mr_journal_topic_create(j, "bad", 2, NULL, &t2, &err), 0);
    assert_ptr_equal(t, t2);
    static const char *const bad_names[] = {"", ".", "..", "a/b", "sp ace", ".hidden", "ü"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        assert_int_equal(mr_journal_topic_create(j, bad_names[i], 1, NULL, &t2, &err), MR_EINVAL);
    }
    assert_int_equal(mr_journal_topic_create(j, "zero", 0, NULL, &t2, &err), MR_EINVAL);

    uint8_t buf[256];
    struct mr_batch_builder b;
    mr_batch_builder_init(&b, buf, sizeof(buf));
    mr_batch_builder_add(&b, 1, NULL, -1, "x", 1, NULL, 0);
    const uint8_t *data;
    size_t len;
    mr_batch_builder_finish(&b, &data, &len);
    assert_int_equal(mr_journal_append(t, 2, buf, len, 0, ignore_ack, NULL), MR_EINVAL);
    assert_int_equal(mr_journal_append(t, 0, buf, len - 1, 0, ignore_ack, NULL), MR_ECORRUPT);
    assert_int_equal(mr_journal_append(t, 0, buf, len, 0, NULL, NULL), MR_EINVAL);
    buf[30] ^= 1; /* CRC no longer matches */
    assert_int_equal(mr_journal_append(t, 0, buf, len, 0, ignore_ack, NULL), MR_ECORRUPT);
    buf[30] ^= 1;
    uint8_t *big = mr_calloc(1, 2 * 1024 * 1024);
    assert_int_equal(mr_journal_append(t, 0, big, 2 * 1024 * 1024, 0, ignore_ack, NULL),
                     MR_ETOOBIG);
    mr_free(big);
    assert_int_equal(mr_journal_append_wait(t, 1, buf, len, NULL), 0);
    assert_int_equal(mr_journal_close(j), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_read_rolls_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_by_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_policies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_rolls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
