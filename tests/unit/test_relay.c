/* Relay de-duplication (engine/relay.h) and topic-writer marks, on a real journal: records
 * written with their origin mark are recognised after a reopen, per (stream, local partition),
 * marks say which flushes are durable, and commit timing observes every acknowledged batch. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/relay.h"
#include "engine/topic_writer.h"
#include "millrace/journal.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "support/tmpdir.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    return mr_test_tmpdir_create(dir, sizeof(dir), "mr_relay");
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

static struct mr_record rec_of(struct mr_names *names, const char *asset, double v)
{
    mr_name_id a, s;
    assert_int_equal(mr_names_intern(names, asset, strlen(asset), &a), 0);
    assert_int_equal(mr_names_intern(names, "temp", 4, &s), 0);
    return (struct mr_record){.time_ns = 1700000000000000000LL + (int64_t)v * 1000000,
                              .asset = a,
                              .signal = s,
                              .type = MR_VALUE_F64,
                              .v.f64 = v};
}

static const char *const assets[] = {"site/l1/m1", "site/l1/m2", "site/l2/m3", "site/l2/m4"};

/* Write records 0..n-1 of origin (node, topic, 0) with offsets 100+i through a relay, the way
 * ingest does: skip what is seen, mark the rest. Returns how many were written. */
static size_t relay_write(struct mr_relay *r, struct mr_topic_writer *w, struct mr_names *names,
                          const char *node, size_t from, size_t n)
{
    struct mr_record_origin o = {.node = node, .topic = "press_raw", .partition = 0};
    uint64_t stream = mr_relay_stream(&o);
    size_t written = 0;
    for (size_t i = from; i < from + n; i++) {
        struct mr_record rec = rec_of(names, assets[i % 4], (double)i);
        uint32_t p = mr_topic_writer_partition(w, &rec);
        int64_t off = 100 + (int64_t)i;
        if (mr_relay_seen(r, stream, p, off)) {
            continue;
        }
        uint8_t buf[16];
        struct mr_batch_header h;
        mr_relay_header(&h, buf, stream, off);
        assert_int_equal(mr_topic_writer_add_with(w, &rec, &h), 0);
        assert_int_equal(mr_relay_note(r, stream, p, off), 0);
        written++;
    }
    assert_int_equal(mr_topic_writer_sync(w), 0);
    return written;
}

static void test_recover_after_reopen(void **state)
{
    (void)state;
    struct mr_names *names = NULL;
    assert_int_equal(mr_names_create(&names, 1024, 1 << 16), 0);
    struct mr_journal *j = open_j();
    struct mr_journal_topic *t;
    assert_int_equal(mr_journal_topic_create(j, "central", 3, NULL, &t, NULL), 0);
    struct mr_topic_writer w;
    assert_int_equal(mr_topic_writer_init(&w, t, names, 64 * 1024), 0);
    struct mr_relay r;
    assert_int_equal(mr_relay_init(&r), 0);
    assert_int_equal(relay_write(&r, &w, names, "edge1", 0, 40), 40);
    assert_int_equal(relay_write(&r, &w, names, "edge2", 0, 10), 10);
    /* The same batch again: nothing new. */
    assert_int_equal(relay_write(&r, &w, names, "edge1", 0, 40), 0);
    mr_topic_writer_fini(&w);
    mr_relay_fini(&r);
    assert_int_equal(mr_journal_close(j), 0);

    /* A new process: the journal alone says what was kept. */
    j = open_j();
    t = mr_journal_topic_find(j, "central");
    assert_non_null(t);
    assert_int_equal(mr_topic_writer_init(&w, t, names, 64 * 1024), 0);
    assert_int_equal(mr_relay_init(&r), 0);
    struct mr_err err;
    assert_int_equal(mr_relay_recover(&r, t, &err), 0);
    /* Overlapping resend: 30..59 of edge1, only 40..59 are new; edge2 continues; edge3 new. */
    assert_int_equal(relay_write(&r, &w, names, "edge1", 30, 30), 20);
    assert_int_equal(relay_write(&r, &w, names, "edge2", 5, 10), 5);
    assert_int_equal(relay_write(&r, &w, names, "edge3", 0, 3), 3);
    uint64_t total = 0;
    for (uint32_t p = 0; p < 3; p++) {
        struct mr_journal_partition_stats st;
        assert_int_equal(mr_journal_partition_stats(t, p, &st), 0);
        total += (uint64_t)(st.end - st.earliest);
    }
    assert_int_equal(total, 60 + 15 + 3);
    mr_topic_writer_fini(&w);
    mr_relay_fini(&r);
    assert_int_equal(mr_journal_close(j), 0);
    mr_names_destroy(names);
}

/* Per local partition: a crash that kept partition A's batch but not B's must let B's records of
 * the resent batch in while A's are dropped. */
static void test_positions_are_per_partition(void **state)
{
    (void)state;
    struct mr_relay r;
    assert_int_equal(mr_relay_init(&r), 0);
    struct mr_record_origin o = {.node = "n", .topic = "t", .partition = 2};
    uint64_t s = mr_relay_stream(&o);
    assert_int_equal(mr_relay_note(&r, s, 0, 50), 0);
    assert_true(mr_relay_seen(&r, s, 0, 50));
    assert_true(mr_relay_seen(&r, s, 0, 10));
    assert_false(mr_relay_seen(&r, s, 0, 51));
    assert_false(mr_relay_seen(&r, s, 1, 10));
    /* Another partition of the same node and topic is another stream. */
    o.partition = 3;
    assert_false(mr_relay_seen(&r, mr_relay_stream(&o), 0, 10));
    /* Notes never go backwards. */
    assert_int_equal(mr_relay_note(&r, s, 0, 20), 0);
    assert_true(mr_relay_seen(&r, s, 0, 50));
    mr_relay_invalidate(&r);
    assert_false(mr_relay_seen(&r, s, 0, 10));
    assert_false(r.recovered);
    mr_relay_fini(&r);
}

static void test_marks(void **state)
{
    (void)state;
    struct mr_names *names = NULL;
    assert_int_equal(mr_names_create(&names, 1024, 1 << 16), 0);
    struct mr_journal *j = open_j();
    struct mr_journal_topic *t;
    assert_int_equal(mr_journal_topic_create(j, "marks", 2, NULL, &t, NULL), 0);
    struct mr_topic_writer w;
    assert_int_equal(mr_topic_writer_init(&w, t, names, 64 * 1024), 0);
    uint64_t before[2], after[2];
    mr_topic_writer_mark(&w, before);
    assert_true(mr_topic_writer_durable_at(&w, before));
    for (int i = 0; i < 8; i++) {
        struct mr_record rec = rec_of(names, assets[i % 4], i);
        assert_int_equal(mr_topic_writer_add(&w, &rec), 0);
    }
    assert_int_equal(mr_topic_writer_flush(&w), 0);
    mr_topic_writer_mark(&w, after);
    assert_true(after[0] + after[1] >= 1);
    assert_int_equal(mr_topic_writer_sync(&w), 0);
    assert_true(mr_topic_writer_durable_at(&w, after));
    mr_topic_writer_fini(&w);
    assert_int_equal(mr_journal_close(j), 0);
    mr_names_destroy(names);
}

/* Commit timing: every batch the journal acknowledges is observed once, with its duration. */
static void test_commit_timing(void **state)
{
    (void)state;
    struct mr_names *names = NULL;
    assert_int_equal(mr_names_create(&names, 1024, 1 << 16), 0);
    struct mr_metrics *m = NULL;
    assert_int_equal(mr_metrics_create(&m), 0);
    static const double bounds[] = {0.001, 1};
    struct mr_histogram *h = NULL;
    assert_int_equal(
        mr_metrics_histogram(m, "t_commit_seconds", "test", "input=\"t\"", bounds, 2, &h), 0);
    struct mr_journal *j = open_j();
    struct mr_journal_topic *t;
    assert_int_equal(mr_journal_topic_create(j, "timed", 2, NULL, &t, NULL), 0);
    struct mr_topic_writer w;
    assert_int_equal(mr_topic_writer_init(&w, t, names, 64 * 1024), 0);
    assert_int_equal(mr_topic_writer_time_commits(&w, h), 0);
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 4; i++) {
            struct mr_record rec = rec_of(names, assets[i], round * 4 + i);
            assert_int_equal(mr_topic_writer_add(&w, &rec), 0);
        }
        assert_int_equal(mr_topic_writer_flush(&w), 0);
    }
    assert_int_equal(mr_topic_writer_sync(&w), 0);
    uint64_t batches = w.appended;
    assert_true(batches >= 100);
    static char text[8192];
    assert_true(mr_metrics_render(m, text, sizeof(text), NULL) > 0);
    const char *count = strstr(text, "t_commit_seconds_count{input=\"t\"} ");
    const char *sum = strstr(text, "t_commit_seconds_sum{input=\"t\"} ");
    assert_non_null(count);
    assert_non_null(sum);
    assert_int_equal(strtoull(count + strlen("t_commit_seconds_count{input=\"t\"} "), NULL, 10),
                     batches);
    double s = strtod(sum + strlen("t_commit_seconds_sum{input=\"t\"} "), NULL);
    assert_true(s > 0 && s < (double)batches); /* each took more than nothing, less than 1 s */
    mr_topic_writer_fini(&w);
    assert_int_equal(mr_journal_close(j), 0);
    mr_metrics_destroy(m);
    mr_names_destroy(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_recover_after_reopen, setup, teardown),
        cmocka_unit_test(test_positions_are_per_partition),
        cmocka_unit_test_setup_teardown(test_marks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_timing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
