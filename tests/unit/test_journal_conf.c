/* The configuration's journal section becomes journal options with the right units and
 * "unlimited" spellings, and a journal opened from it behaves as configured. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "millrace/config.h"
#include "millrace/journal.h"
#include "support/tmpdir.h"

static struct mr_config *load(const char *yaml)
{
    struct mr_config *cfg = NULL;
    static struct mr_config_errors errs;
    memset(&errs, 0, sizeof(errs));
    int rc = mr_config_load_buffer(&cfg, "j.yaml", yaml, strlen(yaml), NULL, &errs);
    if (rc != 0) {
        for (size_t i = 0; i < errs.n; i++) {
            fprintf(stderr, "%s\n", errs.msg[i]);
        }
    }
    assert_int_equal(rc, 0);
    return cfg;
}

static void test_defaults_match_journal_defaults(void **state)
{
    (void)state;
    struct mr_config *cfg = load("journal: {}\n");
    struct mr_journal_options from_conf, plain;
    mr_journal_options_from_conf(&from_conf, &cfg->journal);
    mr_journal_options_init(&plain);
    assert_string_equal(from_conf.dir, "./millrace-data");
    assert_int_equal(from_conf.fsync, plain.fsync);
    assert_int_equal(from_conf.fsync_interval_ms, plain.fsync_interval_ms);
    assert_true(from_conf.segment_bytes == plain.segment_bytes);
    assert_true(from_conf.segment_age_ms == plain.segment_age_ms);
    assert_true(from_conf.retention_age_ms == plain.retention_age_ms);
    assert_true(from_conf.retention_bytes == plain.retention_bytes);
    assert_true(from_conf.max_bytes == plain.max_bytes);
    assert_int_equal(from_conf.overflow, plain.overflow);
    mr_config_destroy(cfg);
}

static void test_units_and_unlimited(void **state)
{
    (void)state;
    struct mr_config *cfg =
        load("journal:\n"
             "  dir: /var/lib/millrace\n"
             "  fsync: interval\n"
             "  fsync_interval: 250ms\n"
             "  segment_bytes: 16MiB\n"
             "  segment_age: 10m\n"
             "  retention_age: 0\n"
             "  retention_bytes: 2GiB\n"
             "  max_bytes: 20GiB\n"
             "  overflow: downsample\n"
             "  topics:\n"
             "    plant.raw: {partitions: 6, retention_age: 1d, priority: low}\n"
             "    alerts: {retention_bytes: 0}\n");
    struct mr_journal_options o;
    mr_journal_options_from_conf(&o, &cfg->journal);
    assert_string_equal(o.dir, "/var/lib/millrace");
    assert_int_equal(o.fsync, MR_JOURNAL_FSYNC_INTERVAL);
    assert_int_equal(o.fsync_interval_ms, 250);
    assert_true(o.segment_bytes == 16ull << 20);
    assert_true(o.segment_age_ms == 600000);
    assert_true(o.retention_age_ms == MR_JOURNAL_UNLIMITED);
    assert_true(o.retention_bytes == 2LL << 30);
    assert_true(o.max_bytes == 20LL << 30);
    assert_int_equal(o.overflow, MR_JOURNAL_OVERFLOW_DOWNSAMPLE);
    assert_true(mr_journal_topic_low_priority_from_conf(&cfg->journal, "plant.raw"));
    assert_false(mr_journal_topic_low_priority_from_conf(&cfg->journal, "alerts"));

    struct mr_journal_topic_options t;
    assert_int_equal(mr_journal_topic_from_conf(&cfg->journal, "plant.raw", &t), 6);
    assert_true(t.retention_age_ms == 86400000);
    assert_true(t.retention_bytes == MR_JOURNAL_DEFAULT); /* inherits the journal's */
    assert_int_equal(mr_journal_topic_from_conf(&cfg->journal, "alerts", &t), 1);
    assert_true(t.retention_bytes == MR_JOURNAL_UNLIMITED);
    assert_true(t.retention_age_ms == MR_JOURNAL_DEFAULT);
    assert_int_equal(mr_journal_topic_from_conf(&cfg->journal, "unknown", &t), 0);
    assert_true(t.retention_age_ms == MR_JOURNAL_DEFAULT &&
                t.retention_bytes == MR_JOURNAL_DEFAULT);
    mr_config_destroy(cfg);
}

/* A journal opened from a configuration file takes appends and keeps its topic settings. */
static void test_open_from_conf(void **state)
{
    (void)state;
    char dir[64];
    assert_int_equal(mr_test_tmpdir_create(dir, sizeof(dir), "mr_jconf"), 0);
    char yaml[256];
    snprintf(yaml, sizeof(yaml),
             "journal:\n  dir: %s\n  fsync: never\n  topics:\n    t: {partitions: 3}\n", dir);
    struct mr_config *cfg = load(yaml);
    struct mr_journal_options o;
    mr_journal_options_from_conf(&o, &cfg->journal);
    struct mr_journal *j;
    assert_int_equal(mr_journal_open(&o, &j, NULL, NULL), 0);
    struct mr_journal_topic_options to;
    uint32_t parts = mr_journal_topic_from_conf(&cfg->journal, "t", &to);
    struct mr_journal_topic *t;
    assert_int_equal(mr_journal_topic_create(j, "t", parts, &to, &t, NULL), 0);
    assert_int_equal(mr_journal_topic_partitions(t), 3);
    uint8_t buf[128];
    struct mr_batch_builder b;
    assert_int_equal(mr_batch_builder_init(&b, buf, sizeof(buf)), 0);
    assert_int_equal(mr_batch_builder_add(&b, 1, NULL, -1, "v", 1, NULL, 0), 0);
    const uint8_t *data;
    size_t len;
    assert_int_equal(mr_batch_builder_finish(&b, &data, &len), 0);
    int64_t base = -1;
    assert_int_equal(mr_journal_append_wait(t, 2, (void *)data, len, &base), 0);
    assert_int_equal(base, 0);
    assert_int_equal(mr_journal_close(j), 0);
    mr_config_destroy(cfg);
    assert_int_equal(mr_test_tmpdir_remove(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_journal_defaults),
        cmocka_unit_test(test_units_and_unlimited),
        cmocka_unit_test(test_open_from_conf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
