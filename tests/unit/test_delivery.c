/* Delivery (src/engine/delivery.c) with a scripted output: records reach the output once each
 * and in order; RETRY answers back off and then open the circuit (fewer attempts, state 2),
 * the first success closes it; records the output rejects land on the dead-letter topic with
 * the reason and are counted; FATAL stops the output with state 3 and the cursor stays before
 * the undelivered records; `delivery:` settings are parsed and checked; writes gather records
 * of several journal batches up to delivery.batch_size (rejection indexes point at the right
 * record; a restart resumes at the committed position); the reader thread decoding ahead of
 * a slow output never hands it a record whose bytes were reused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/log.h"
#include "support/tmpdir.h"

#define NREC     200
#define UNLUCKY  13  /* the record the scripted output rejects */
#define UNLUCKY2 150 /* rejected too when script.unlucky2 is set */
#define MAXW     64
#define T0       1795538940000000000LL
#define FAIL_ALL 1000000
#define WAIT_S   20

/* ---- the scripted output */

static struct {
    pthread_mutex_t mu;
    int fail_next; /* answer RETRY to this many more writes */
    bool fatal;    /* answer FATAL */
    int attempts;  /* write calls */
    int ok_limit;  /* > 0: answer RETRY to every write after this many OK ones */
    bool unlucky2; /* reject UNLUCKY2 too */
    int64_t got[NREC * 2];
    size_t ngot;
    size_t sizes[MAXW];   /* records of each write answered OK */
    int64_t firsts[MAXW]; /* the first record's value of each */
    int nok;
} script = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct flaky {
    struct mr_output_host *host;
};

static int flaky_init(void *ctx, const void *conf, struct mr_output_host *host, struct mr_err *err)
{
    (void)conf;
    (void)err;
    ((struct flaky *)ctx)->host = host;
    return 0;
}

static int flaky_write(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct flaky *f = ctx;
    pthread_mutex_lock(&script.mu);
    script.attempts++;
    int rc = MR_SINK_OK;
    if (script.fatal) {
        rc = MR_SINK_FATAL;
        MR_ERR_SET(err, MR_EACCES, "destination refuses our credentials");
    } else if (script.fail_next > 0 || (script.ok_limit > 0 && script.nok >= script.ok_limit)) {
        script.fail_next -= script.fail_next > 0;
        rc = MR_SINK_RETRY;
        MR_ERR_SET(err, MR_EIO, "destination down");
    }
    if (rc == MR_SINK_OK && script.nok < MAXW) {
        script.sizes[script.nok] = n;
        script.firsts[script.nok] = (int64_t)recs[0].v.f64;
    }
    script.nok += rc == MR_SINK_OK;
    for (size_t i = 0; rc == MR_SINK_OK && i < n; i++) {
        int64_t k = (int64_t)recs[i].v.f64;
        if (k == UNLUCKY) {
            f->host->reject(f->host, i, "value 13 is not allowed here");
        } else if (k == UNLUCKY2 && script.unlucky2) {
            f->host->reject(f->host, i, "value 150 is not allowed either");
        } else if (script.ngot < NREC * 2) {
            script.got[script.ngot++] = k;
        }
    }
    pthread_mutex_unlock(&script.mu);
    return rc;
}

static int flaky_flush(void *ctx, struct mr_err *err)
{
    (void)ctx;
    (void)err;
    return MR_SINK_OK;
}

static void flaky_fini(void *ctx)
{
    (void)ctx;
}

static const struct mr_field no_fields[] = {{0}};
static const struct mr_plugin flaky_plugin = {
    .kind = MR_PLUGIN_OUTPUT,
    .name = "flaky",
    .help = "test",
    .conf = {.fields = no_fields, .size = 1},
    .ctx_size = sizeof(struct flaky),
    .output = {.init = flaky_init, .write = flaky_write, .flush = flaky_flush, .fini = flaky_fini},
};

static void script_reset(void)
{
    pthread_mutex_lock(&script.mu);
    script.fail_next = 0;
    script.fatal = false;
    script.attempts = 0;
    script.ok_limit = 0;
    script.unlucky2 = false;
    script.ngot = 0;
    script.nok = 0;
    pthread_mutex_unlock(&script.mu);
}

/* ---- fixture: a journal with NREC records in topic "src", an env, a config */

struct fixture {
    char dir[256];
    struct mr_journal *journal;
    struct mr_names *names;
    struct mr_metrics *metrics;
    struct mr_config *cfg;
    struct mr_engine_env env;
    struct mr_plugin_conf pc;
};

static const char yaml[] = "inputs: {src: {type: stdin}}\n"
                           "outputs:\n"
                           "  flaky:\n"
                           "    type: stdout\n"
                           "    delivery: {retry_min: 10ms, retry_max: 40ms, circuit_failures: 3,\n"
                           "               circuit_open: 300ms}\n"
                           "pipelines: {p: {from: [src], to: [flaky]}}\n";

/* The same with batches of at most 120 records: writes span the 50-record journal batches. */
static const char yaml_batch[] =
    "inputs: {src: {type: stdin}}\n"
    "outputs:\n"
    "  flaky:\n"
    "    type: stdout\n"
    "    delivery: {retry_min: 10ms, retry_max: 40ms, batch_size: 120}\n"
    "pipelines: {p: {from: [src], to: [flaky]}}\n";

/* batch_wait: fewer than batch_size records wait up to 2 s for more. */
static const char yaml_wait[] = "inputs: {src: {type: stdin}}\n"
                                "outputs:\n"
                                "  flaky:\n"
                                "    type: stdout\n"
                                "    delivery: {batch_size: 300, batch_wait: 2s}\n"
                                "pipelines: {p: {from: [src], to: [flaky]}}\n";

static void fixture_open_with(struct fixture *fx, const char *conf)
{
    memset(fx, 0, sizeof(*fx));
    assert_int_equal(mr_test_tmpdir_create(fx->dir, sizeof(fx->dir), "mr_delivery"), 0);
    static struct mr_config_errors errs;
    int rc = mr_config_load_buffer(&fx->cfg, "plant.yaml", conf, strlen(conf), NULL, &errs);
    if (rc != 0) {
        fprintf(stderr, "%s\n", errs.msg[0]);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(mr_names_create(&fx->names, 1024, 1 << 16), 0);
    assert_int_equal(mr_metrics_create(&fx->metrics), 0);
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = fx->dir;
    struct mr_err err;
    assert_int_equal(mr_journal_open(&o, &fx->journal, NULL, &err), 0);
    fx->env = (struct mr_engine_env){.journal = fx->journal,
                                     .journal_dir = fx->dir,
                                     .names = fx->names,
                                     .metrics = fx->metrics,
                                     .cfg = fx->cfg};
    pthread_mutex_init(&fx->env.data_mu, NULL);
    pthread_cond_init(&fx->env.data_cv, NULL);
    fx->pc = fx->cfg->outputs.items[0];
    fx->pc.plugin = &flaky_plugin;

    struct mr_journal_topic *t;
    assert_int_equal(mr_engine_topic(&fx->env, "src", &t, &err), 0);
    struct mr_topic_writer w;
    assert_int_equal(mr_topic_writer_init(&w, t, fx->names, MR_BATCH_DEFAULT_CAP), 0);
    mr_name_id asset, signal;
    assert_int_equal(mr_names_intern(fx->names, "s/a/l/m", 7, &asset), 0);
    assert_int_equal(mr_names_intern(fx->names, "temp", 4, &signal), 0);
    for (int i = 0; i < NREC; i++) {
        struct mr_record r = {.time_ns = T0 + i * 1000000LL,
                              .asset = asset,
                              .signal = signal,
                              .type = MR_VALUE_F64,
                              .quality = MR_QUALITY_GOOD,
                              .v.f64 = i};
        assert_int_equal(mr_topic_writer_add(&w, &r), 0);
        if (i % 50 == 49) { /* several journal batches */
            assert_int_equal(mr_topic_writer_flush(&w), 0);
        }
    }
    assert_int_equal(mr_topic_writer_sync(&w), 0);
    mr_topic_writer_fini(&w);

    script_reset();
}

static void fixture_open(struct fixture *fx)
{
    fixture_open_with(fx, yaml);
}

static void fixture_close(struct fixture *fx)
{
    assert_int_equal(mr_journal_close(fx->journal), 0);
    mr_metrics_destroy(fx->metrics);
    mr_names_destroy(fx->names);
    mr_config_destroy(fx->cfg);
    pthread_mutex_destroy(&fx->env.data_mu);
    pthread_cond_destroy(&fx->env.data_cv);
    assert_int_equal(mr_test_tmpdir_remove(fx->dir), 0);
}

static struct mr_delivery *start(struct fixture *fx)
{
    const char *topics[] = {"src"};
    struct mr_delivery *d = NULL;
    struct mr_err err;
    mr_err_clear(&err);
    int rc = mr_delivery_create(&d, &fx->env, &fx->pc, topics, 1, &err);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(mr_delivery_start(d, &err), 0);
    return d;
}

/* The value of one metric line "NAME{output=\"outputs.flaky\"} V", or -1 if absent. */
static double metric(struct fixture *fx, const char *name)
{
    static char buf[1 << 16];
    assert_true(mr_metrics_render(fx->metrics, buf, sizeof(buf), NULL) > 0);
    char key[160];
    snprintf(key, sizeof(key), "\n%s{output=\"outputs.flaky\"} ", name);
    const char *p = strstr(buf, key);
    return p != NULL ? strtod(p + strlen(key), NULL) : -1;
}

static size_t delivered(void)
{
    pthread_mutex_lock(&script.mu);
    size_t n = script.ngot;
    pthread_mutex_unlock(&script.mu);
    return n;
}

static bool wait_delivered(size_t n)
{
    for (int i = 0; i < WAIT_S * 100; i++) {
        if (delivered() >= n) {
            return true;
        }
        mr_clock_sleep_ns(10 * 1000000LL);
    }
    return false;
}

static int64_t cursor(struct fixture *fx)
{
    struct mr_journal_topic *t = mr_journal_topic_find(fx->journal, "src");
    int64_t pos = -1;
    struct mr_err err;
    assert_int_equal(mr_journal_cursor_get(t, "output.flaky", 0, &pos, &err), 0);
    return pos;
}

/* ---- tests */

static void test_delivery_conf_parsed(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_open(&fx);
    const struct mr_delivery_conf *c = &fx.cfg->outputs.items[0].delivery;
    assert_int_equal(c->retry_min_ns, 10 * 1000000LL);
    assert_int_equal(c->retry_max_ns, 40 * 1000000LL);
    assert_int_equal(c->circuit_failures, 3);
    assert_int_equal(c->circuit_open_ns, 300 * 1000000LL);
    assert_null(c->dead_letter_topic);
    assert_int_equal(c->batch_size, 0); /* unset: the output's default */
    assert_int_equal(c->batch_wait_ns, 0);
    fixture_close(&fx);

    static const struct {
        const char *yaml;
        const char *message;
    } bad[] = {
        {"outputs: {o: {type: stdout, delivery: {retry_min: 1s, retry_max: 100ms}}}\n",
         "retry_max must not be shorter than retry_min"},
        {"outputs: {o: {type: stdout, delivery: {circuit_failures: 0}}}\n", "circuit_failures"},
        {"outputs: {o: {type: stdout, delivery: {retries: 3}}}\n", "retries"},
        {"outputs: {o: {type: stdout, delivery: 5}}\n", "expected a section"},
        {"outputs: {o: {type: stdout, delivery: {batch_size: 0}}}\n", "batch_size"},
        {"outputs: {o: {type: stdout, delivery: {batch_size: 100001}}}\n", "batch_size"},
        {"outputs: {o: {type: stdout, delivery: {batch_wait: 11s}}}\n", "batch_wait"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mr_config *cfg = NULL;
        static struct mr_config_errors errs;
        memset(&errs, 0, sizeof(errs));
        int rc =
            mr_config_load_buffer(&cfg, "bad.yaml", bad[i].yaml, strlen(bad[i].yaml), NULL, &errs);
        assert_int_equal(rc, MR_ECONFIG);
        assert_true(errs.n > 0);
        if (strstr(errs.msg[0], bad[i].message) == NULL ||
            strstr(errs.msg[0], "delivery") == NULL) {
            fail_msg("case %zu: '%s' not in: %s", i, bad[i].message, errs.msg[0]);
        }
    }
}

/* Every record once, in order, the unlucky one on the dead-letter topic with its reason. */
static void test_delivers_in_order_and_dead_letters_rejects(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_open(&fx);
    struct mr_delivery *d = start(&fx);
    assert_true(wait_delivered(NREC - 1));
    mr_delivery_stop(d, true, 2000);
    mr_delivery_destroy(d);

    assert_int_equal(delivered(), NREC - 1);
    for (size_t i = 0, k = 0; i < NREC; i++) {
        if (i != UNLUCKY) {
            assert_int_equal(script.got[k++], (int64_t)i);
        }
    }
    /* the four journal batches of 50 went out in one write (batch_size 5000) */
    assert_int_equal(script.nok, 1);
    assert_int_equal(script.sizes[0], NREC);
    assert_int_equal(cursor(&fx), NREC);
    assert_true(metric(&fx, "millrace_output_rejected_total") == 1);
    assert_true(metric(&fx, "millrace_output_delivered_total") >= NREC - 1);
    assert_true(metric(&fx, "millrace_output_state") == 0);
    assert_true(metric(&fx, "millrace_output_lag_records") == 0);

    struct mr_journal_topic *dlq = mr_journal_topic_find(fx.journal, "deadletter.flaky");
    assert_non_null(dlq);
    struct mr_journal_reader *r;
    assert_int_equal(mr_journal_reader_create(dlq, 0, MR_JOURNAL_EARLIEST, &r), 0);
    struct mr_batch_record br;
    assert_int_equal(mr_journal_reader_next(r, &br), 0);
    struct mr_record rec;
    struct mr_err err;
    assert_int_equal(mr_record_decode(&rec, fx.names, br.value, (size_t)br.value_len, &err), 0);
    assert_true(rec.v.f64 == UNLUCKY);
    bool found = false;
    size_t pos = 0;
    struct mr_batch_header h;
    while (mr_batch_header_next(&br, &pos, &h) == 0) {
        if (h.key_len == 9 && memcmp(h.key, "mr.reject", 9) == 0) {
            found = h.value_len == 28 && memcmp(h.value, "value 13 is not allowed here", 28) == 0;
        }
    }
    assert_true(found);
    assert_int_not_equal(mr_journal_reader_next(r, &br), 0); /* just the one */
    mr_journal_reader_destroy(r);
    fixture_close(&fx);
}

/* The dead-letter topic's records: values into vals (at most cap), each with its reason. */
static size_t dead_letters(struct fixture *fx, int64_t *vals, char (*reasons)[64], size_t cap)
{
    struct mr_journal_topic *dlq = mr_journal_topic_find(fx->journal, "deadletter.flaky");
    assert_non_null(dlq);
    struct mr_journal_reader *r;
    assert_int_equal(mr_journal_reader_create(dlq, 0, MR_JOURNAL_EARLIEST, &r), 0);
    struct mr_batch_record br;
    size_t n = 0;
    while (n < cap && mr_journal_reader_next(r, &br) == 0) {
        struct mr_record rec;
        struct mr_err err;
        assert_int_equal(mr_record_decode(&rec, fx->names, br.value, (size_t)br.value_len, &err),
                         0);
        vals[n] = (int64_t)rec.v.f64;
        reasons[n][0] = '\0';
        size_t pos = 0;
        struct mr_batch_header h;
        while (mr_batch_header_next(&br, &pos, &h) == 0) {
            if (h.key_len == 9 && memcmp(h.key, "mr.reject", 9) == 0) {
                snprintf(reasons[n], sizeof(reasons[n]), "%.*s", (int)h.value_len,
                         (const char *)h.value);
            }
        }
        n++;
    }
    mr_journal_reader_destroy(r);
    return n;
}

/* batch_size 120 over journal batches of 50: writes of 120 and 80 records, each spanning
 * several journal batches; a rejection in the second write (its index 30) names the right
 * record; the cursor ends past everything. */
static void test_batches_span_journal_batches(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_open_with(&fx, yaml_batch);
    pthread_mutex_lock(&script.mu);
    script.unlucky2 = true;
    pthread_mutex_unlock(&script.mu);
    struct mr_delivery *d = start(&fx);
    assert_true(wait_delivered(NREC - 2));
    mr_delivery_stop(d, true, 2000);
    mr_delivery_destroy(d);

    assert_int_equal(delivered(), NREC - 2);
    for (size_t i = 0, k = 0; i < NREC; i++) {
        if (i != UNLUCKY && i != UNLUCKY2) {
            assert_int_equal(script.got[k++], (int64_t)i);
        }
    }
    assert_int_equal(script.nok, 2);
    assert_int_equal(script.sizes[0], 120);
    assert_int_equal(script.firsts[0], 0);
    assert_int_equal(script.sizes[1], 80);
    assert_int_equal(script.firsts[1], 120);
    assert_int_equal(cursor(&fx), NREC);
    assert_true(metric(&fx, "millrace_output_rejected_total") == 2);

    int64_t vals[4];
    char reasons[4][64];
    assert_int_equal(dead_letters(&fx, vals, reasons, 4), 2);
    assert_int_equal(vals[0], UNLUCKY);
    assert_string_equal(reasons[0], "value 13 is not allowed here");
    assert_int_equal(vals[1], UNLUCKY2);
    assert_string_equal(reasons[1], "value 150 is not allowed either");
    fixture_close(&fx);
}

/* The first write (records 0..119) is confirmed, every later one fails; stopped during the
 * outage, the cursor is saved at 120, not further. A new delivery (the restart) resumes there:
 * records 120..199 in one write, none of the confirmed ones again. */
static void test_restart_resumes_at_committed_position(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_open_with(&fx, yaml_batch);
    pthread_mutex_lock(&script.mu);
    script.ok_limit = 1;
    pthread_mutex_unlock(&script.mu);
    struct mr_delivery *d = start(&fx);
    int attempts = 0;
    for (int i = 0; i < WAIT_S * 100 && attempts < 3; i++) {
        mr_clock_sleep_ns(10 * 1000000LL);
        pthread_mutex_lock(&script.mu);
        attempts = script.attempts;
        pthread_mutex_unlock(&script.mu);
    }
    assert_true(attempts >= 3);
    mr_delivery_stop(d, false, 0);
    mr_delivery_destroy(d);
    assert_int_equal(cursor(&fx), 120);
    assert_int_equal(delivered(), 119); /* 0..119 without UNLUCKY */

    script_reset();
    d = start(&fx);
    assert_true(wait_delivered(80));
    mr_delivery_stop(d, true, 2000);
    mr_delivery_destroy(d);
    assert_int_equal(delivered(), 80);
    for (size_t k = 0; k < 80; k++) {
        assert_int_equal(script.got[k], (int64_t)(120 + k));
    }
    assert_int_equal(script.nok, 1);
    assert_int_equal(script.sizes[0], 80);
    assert_int_equal(cursor(&fx), NREC);
    fixture_close(&fx);
}

/* batch_wait 2 s, batch_size 300: the 200 records in the journal wait; 100 more appended
 * 100 ms later complete the batch, which goes out as one write of 300 at once. */
static void test_batch_wait_fills_the_batch(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_open_with(&fx, yaml_wait);
    int64_t t0 = mr_clock_mono_ns();
    struct mr_delivery *d = start(&fx);
    mr_clock_sleep_ns(100 * 1000000LL);
    assert_int_equal(delivered(), 0);
    struct mr_journal_topic *t = mr_journal_topic_find(fx.journal, "src");
    struct mr_topic_writer w;
    assert_int_equal(mr_topic_writer_init(&w, t, fx.names, MR_BATCH_DEFAULT_CAP), 0);
    mr_name_id asset, signal;
    assert_int_equal(mr_names_intern(fx.names, "s/a/l/m", 7, &asset), 0);
    assert_int_equal(mr_names_intern(fx.names, "temp", 4, &signal), 0);
    for (int i = NREC; i < NREC + 100; i++) {
        struct mr_record r = {.time_ns = T0 + i * 1000000LL,
                              .asset = asset,
                              .signal = signal,
                              .type = MR_VALUE_F64,
                              .v.f64 = i};
        assert_int_equal(mr_topic_writer_add(&w, &r), 0);
    }
    assert_int_equal(mr_topic_writer_sync(&w), 0);
    mr_topic_writer_fini(&w);
    assert_true(wait_delivered(NREC + 100 - 1));
    /* full before the 2 s were up: sent then, not at the deadline */
    assert_true(mr_clock_mono_ns() - t0 < 1900 * 1000000LL);
    mr_delivery_stop(d, true, 2000);
    mr_delivery_destroy(d);
    assert_int_equal(script.nok, 1);
    assert_int_equal(script.sizes[0], 300);
    assert_int_equal(cursor(&fx), NREC + 100);
    fixture_close(&fx);
}

/* A destination down for a while: backoff, then the open circuit rests between probes; when it
 * comes back everything arrives once. */
static void test_retry_then_circuit_then_recovery(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_open(&fx);
    pthread_mutex_lock(&script.mu);
    script.fail_next = FAIL_ALL;
    pthread_mutex_unlock(&script.mu);
    struct mr_delivery *d = start(&fx);

    int64_t t0 = mr_clock_mono_ns();
    bool opened = false;
    while (mr_clock_mono_ns() - t0 < 1500 * 1000000LL) {
        opened |= metric(&fx, "millrace_output_state") == 2;
        mr_clock_sleep_ns(10 * 1000000LL);
    }
    assert_true(opened);
    pthread_mutex_lock(&script.mu);
    int attempts = script.attempts;
    script.fail_next = 0;
    pthread_mutex_unlock(&script.mu);
    /* 3 quick attempts (10, 20 ms waits), then one probe per 300 ms: about 8 in 1.5 s; without
     * the circuit it would be ~40 (40 ms each). Fewer is fine (a slow machine). */
    assert_in_range(attempts, 3, 10);
    assert_true(metric(&fx, "millrace_output_retries_total") >= 3);
    assert_true(metric(&fx, "millrace_output_lag_records") == NREC);

    assert_true(wait_delivered(NREC - 1));
    for (int i = 0; i < 200 && metric(&fx, "millrace_output_state") != 0; i++) {
        mr_clock_sleep_ns(10 * 1000000LL);
    }
    assert_true(metric(&fx, "millrace_output_state") == 0);
    mr_delivery_stop(d, true, 2000);
    mr_delivery_destroy(d);
    assert_int_equal(delivered(), NREC - 1);
    for (size_t i = 0, k = 0; i < NREC; i++) {
        if (i != UNLUCKY) {
            assert_int_equal(script.got[k++], (int64_t)i);
        }
    }
    assert_int_equal(cursor(&fx), NREC);
    fixture_close(&fx);
}

/* FATAL stops the output: state 3, nothing committed past what was confirmed. */
static void test_fatal_stops_and_keeps_records(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_open(&fx);
    pthread_mutex_lock(&script.mu);
    script.fatal = true;
    pthread_mutex_unlock(&script.mu);
    struct mr_delivery *d = start(&fx);
    for (int i = 0; i < 500 && metric(&fx, "millrace_output_state") != 3; i++) {
        mr_clock_sleep_ns(10 * 1000000LL);
    }
    assert_true(metric(&fx, "millrace_output_state") == 3);
    mr_delivery_stop(d, true, 200);
    mr_delivery_destroy(d);
    assert_int_equal(delivered(), 0);
    struct mr_journal_topic *t = mr_journal_topic_find(fx.journal, "src");
    int64_t pos = -1;
    struct mr_err err;
    int rc = mr_journal_cursor_get(t, "output.flaky", 0, &pos, &err);
    assert_true(rc == MR_ENOENT || pos == 0);
    fixture_close(&fx);
}

/* ---- read-ahead: the reader decodes the next writes while the output is busy with one */

#define NSTR 20000 /* string records behind the fixture's NREC numbers */

static struct {
    pthread_mutex_t mu;
    int64_t next; /* the index the next record must have */
    size_t bad;   /* records with another time or value than their index gives */
    size_t writes;
    bool retry_once; /* every 50th write: RETRY the first time */
} check = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void str_of(int64_t k, char *out, size_t cap)
{
    /* varying lengths, so records do not sit at the same place in every batch */
    snprintf(out, cap, "value-%" PRId64 "-%.*s", k, (int)(k % 23), "xxxxxxxxxxxxxxxxxxxxxxx");
}

static int checker_write(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    (void)ctx;
    pthread_mutex_lock(&check.mu);
    check.writes++;
    if (check.writes % 50 == 0 && !check.retry_once) {
        check.retry_once = true;
        check.writes--;
        pthread_mutex_unlock(&check.mu);
        MR_ERR_SET(err, MR_EIO, "busy");
        return MR_SINK_RETRY; /* the same records must come again, intact */
    }
    check.retry_once = false;
    for (size_t i = 0; i < n; i++, check.next++) {
        const struct mr_record *r = &recs[i];
        bool ok = r->time_ns == T0 + check.next * 1000000LL;
        if (check.next < NREC) {
            ok = ok && r->type == MR_VALUE_F64 && r->v.f64 == (double)check.next;
        } else {
            char want[64];
            str_of(check.next - NREC, want, sizeof(want));
            ok = ok && r->type == MR_VALUE_STRING && r->v.str.len == strlen(want) &&
                 memcmp(r->v.str.ptr, want, r->v.str.len) == 0;
        }
        check.bad += !ok;
    }
    pthread_mutex_unlock(&check.mu);
    mr_clock_sleep_ns(200000); /* a destination slower than the reader: it runs ahead */
    return MR_SINK_OK;
}

static const struct mr_plugin checker_plugin = {
    .kind = MR_PLUGIN_OUTPUT,
    .name = "checker",
    .help = "test",
    .conf = {.fields = no_fields, .size = 1},
    .ctx_size = sizeof(struct flaky),
    .output = {.init = flaky_init,
               .write = checker_write,
               .flush = flaky_flush,
               .fini = flaky_fini},
};

/* Writes of 97 records over journal batches of 37 string records: most writes end inside a
 * journal batch, whose rest is then decoded into the next slot, and every slot's arena is
 * reused many times while the output, slower than the reader, still holds the other. Every
 * record arrives once, in order, with its own time and string, also after retries. */
static void test_read_ahead_keeps_records_intact(void **state)
{
    (void)state;
    static const char conf[] = "inputs: {src: {type: stdin}}\n"
                               "outputs:\n"
                               "  flaky:\n"
                               "    type: stdout\n"
                               "    delivery: {retry_min: 10ms, retry_max: 10ms, batch_size: 97}\n"
                               "pipelines: {p: {from: [src], to: [flaky]}}\n";
    struct fixture fx;
    fixture_open_with(&fx, conf);
    fx.pc.plugin = &checker_plugin;
    check.next = 0;
    check.bad = 0;
    check.writes = 0;
    struct mr_journal_topic *t = mr_journal_topic_find(fx.journal, "src");
    struct mr_topic_writer w;
    assert_int_equal(mr_topic_writer_init(&w, t, fx.names, MR_BATCH_DEFAULT_CAP), 0);
    mr_name_id asset, signal;
    assert_int_equal(mr_names_intern(fx.names, "s/a/l/m", 7, &asset), 0);
    assert_int_equal(mr_names_intern(fx.names, "note", 4, &signal), 0);
    for (int64_t k = 0; k < NSTR; k++) {
        char v[64];
        str_of(k, v, sizeof(v));
        struct mr_record r = {.time_ns = T0 + (NREC + k) * 1000000LL,
                              .asset = asset,
                              .signal = signal,
                              .type = MR_VALUE_STRING,
                              .quality = MR_QUALITY_GOOD,
                              .v.str = {.ptr = v, .len = (uint32_t)strlen(v)}};
        assert_int_equal(mr_topic_writer_add(&w, &r), 0);
        if (k % 37 == 36) {
            assert_int_equal(mr_topic_writer_flush(&w), 0);
        }
    }
    assert_int_equal(mr_topic_writer_sync(&w), 0);
    mr_topic_writer_fini(&w);

    struct mr_delivery *d = start(&fx);
    for (int i = 0; i < WAIT_S * 100; i++) {
        pthread_mutex_lock(&check.mu);
        bool all = check.next >= NREC + NSTR;
        pthread_mutex_unlock(&check.mu);
        if (all) {
            break;
        }
        mr_clock_sleep_ns(10 * 1000000LL);
    }
    mr_delivery_stop(d, true, 2000);
    mr_delivery_destroy(d);
    assert_int_equal(check.next, NREC + NSTR);
    assert_int_equal(check.bad, 0);
    assert_true(check.writes >= (NREC + NSTR) / 97);
    assert_true(metric(&fx, "millrace_output_retries_total") >= 2);
    assert_int_equal(cursor(&fx), NREC + NSTR);
    fixture_close(&fx);
}

int main(void)
{
    mr_log_set_level(MR_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivery_conf_parsed),
        cmocka_unit_test(test_delivers_in_order_and_dead_letters_rejects),
        cmocka_unit_test(test_retry_then_circuit_then_recovery),
        cmocka_unit_test(test_fatal_stops_and_keeps_records),
        cmocka_unit_test(test_batches_span_journal_batches),
        cmocka_unit_test(test_restart_resumes_at_committed_position),
        cmocka_unit_test(test_batch_wait_fills_the_batch),
        cmocka_unit_test(test_read_ahead_keeps_records_intact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
