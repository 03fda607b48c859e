/* The postgres_cdc input without a server: its config table (errors name the key and line),
 * the pgoutput decoder fed with hand-built protocol messages (values by column type, NULL and
 * unchanged columns, deletes, unmapped tables, malformed messages, a full batch), and a start
 * against a closed port that keeps retrying, counts the failure and stops promptly. The real
 * server is in tests/integration/pgcdc_changes_in_order_kill9_nothing_lost.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "inputs/pgcdc_internal.h"
#include "millrace/alloc.h"
#include "millrace/metrics.h"
#include "millrace/names.h"

extern const struct mr_plugin mr_input_postgres_cdc;

static const char base_yaml[] = "address: \"host=127.0.0.1 port=1 dbname=mes\"\n"
                                "tables:\n"
                                "  - table: public.work_orders\n"
                                "    asset: \"plant1/{line}/{machine}\"\n"
                                "    signals: [qty, rate, status, done]\n"
                                "    tags: [order_no]\n"
                                "  - table: counts\n"
                                "    asset: plant1/counter\n";

/* ---- building pgoutput messages ---- */

struct msg {
    uint8_t b[2048];
    size_t n;
};

static void put(struct msg *m, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        m->b[m->n++] = (uint8_t)(v >> (8 * i));
    }
}

static void put_str(struct msg *m, const char *s)
{
    size_t len = strlen(s) + 1;
    memcpy(m->b + m->n, s, len);
    m->n += len;
}

struct colspec {
    const char *name;
    uint32_t oid;
};

static struct msg relation(uint32_t relid, const char *schema, const char *name,
                           const struct colspec *cols, uint16_t n)
{
    struct msg m = {.n = 0};
    put(&m, 'R', 1);
    put(&m, relid, 4);
    put_str(&m, schema);
    put_str(&m, name);
    put(&m, 'f', 1);
    put(&m, n, 2);
    for (uint16_t i = 0; i < n; i++) {
        put(&m, 0, 1);
        put_str(&m, cols[i].name);
        put(&m, cols[i].oid, 4);
        put(&m, (uint32_t)-1, 4);
    }
    return m;
}

/* Tuple from strings: NULL pointer = 'n', "\x01" = 'u' (unchanged toast), else text. */
static void put_tuple(struct msg *m, const char *const *vals, uint16_t n)
{
    put(m, n, 2);
    for (uint16_t i = 0; i < n; i++) {
        if (vals[i] == NULL) {
            put(m, 'n', 1);
        } else if (strcmp(vals[i], "\x01") == 0) {
            put(m, 'u', 1);
        } else {
            put(m, 't', 1);
            put(m, strlen(vals[i]), 4);
            memcpy(m->b + m->n, vals[i], strlen(vals[i]));
            m->n += strlen(vals[i]);
        }
    }
}

static struct msg change(char kind, uint32_t relid, const char *const *old, const char *const *vals,
                         uint16_t n)
{
    struct msg m = {.n = 0};
    put(&m, (uint8_t)kind, 1);
    put(&m, relid, 4);
    if (old != NULL) {
        put(&m, kind == 'D' ? 'K' : 'O', 1);
        put_tuple(&m, old, n);
    }
    if (vals != NULL) {
        put(&m, 'N', 1);
        put_tuple(&m, vals, n);
    }
    return m;
}

static struct msg begin(int64_t pg_us)
{
    struct msg m = {.n = 0};
    put(&m, 'B', 1);
    put(&m, 0x1000, 8);
    put(&m, (uint64_t)pg_us, 8);
    put(&m, 7, 4);
    return m;
}

static struct msg commit(uint64_t end)
{
    struct msg m = {.n = 0};
    put(&m, 'C', 1);
    put(&m, 0, 1);
    put(&m, end - 8, 8);
    put(&m, end, 8);
    put(&m, 0, 8);
    return m;
}

/* ---- fixture ---- */

struct fx {
    struct pgcdc_conf conf;
    struct mr_names *names;
    struct pgcdc_decoder dec;
    struct pgcdc_batch *b;
};

static int fx_setup(void **state)
{
    static struct mr_config_errors errs;
    struct fx *f = mr_calloc(1, sizeof(*f));
    assert_non_null(f);
    int rc = mr_section_load_buffer(&mr_input_postgres_cdc.conf, &f->conf, "t.yaml", base_yaml,
                                    strlen(base_yaml), NULL, &errs);
    for (size_t i = 0; i < errs.n; i++) {
        print_message("%s\n", errs.msg[i]);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(mr_names_create(&f->names, 1024, 1 << 16), 0);
    struct mr_err err = {0};
    assert_int_equal(pgcdc_decoder_init(&f->dec, &f->conf, f->names, "inputs.t", &err), 0);
    f->b = pgcdc_batch_create(64, 4096);
    assert_non_null(f->b);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    pgcdc_batch_destroy(f->b);
    pgcdc_decoder_fini(&f->dec);
    mr_names_destroy(f->names);
    mr_section_free(&mr_input_postgres_cdc.conf, &f->conf);
    mr_free(f);
    return 0;
}

static int feed(struct fx *f, const struct msg *m, struct mr_err *err)
{
    mr_err_clear(err);
    return pgcdc_decode(&f->dec, m->b, m->n, f->b, err);
}

static const char *name_of(struct fx *f, mr_name_id id)
{
    const char *s = mr_names_str(f->names, id, NULL);
    return s != NULL ? s : "?";
}

static const char *tag(struct fx *f, const struct mr_record *r, const char *key, char *out)
{
    for (uint16_t i = 0; i < r->ntags; i++) {
        if (strcmp(name_of(f, r->tags[i].key), key) == 0) {
            snprintf(out, 64, "%.*s", (int)r->tags[i].value.len, r->tags[i].value.ptr);
            return out;
        }
    }
    return "";
}

static const struct colspec wo_cols[] = {
    {"id", 23},  {"line", 25},   {"machine", 25}, {"order_no", 25},
    {"qty", 20}, {"rate", 1700}, {"status", 25},  {"done", 16},
};

/* Expected record: asset, signal, type, value as text, op. */
struct want {
    const char *asset, *signal;
    int type;
    const char *value, *op;
};

static void check(struct fx *f, const struct want *w, size_t n)
{
    assert_int_equal(f->b->n, n);
    for (size_t i = 0; i < n; i++) {
        const struct mr_record *r = &f->b->recs[i];
        char got[128], t[64];
        switch (r->type) {
        case MR_VALUE_I64:
            snprintf(got, sizeof(got), "%lld", (long long)r->v.i64);
            break;
        case MR_VALUE_F64:
            snprintf(got, sizeof(got), "%g", r->v.f64);
            break;
        case MR_VALUE_BOOL:
            snprintf(got, sizeof(got), "%s", r->v.b ? "true" : "false");
            break;
        default:
            snprintf(got, sizeof(got), "%.*s", (int)r->v.str.len, r->v.str.ptr);
        }
        print_message("%zu: %s %s %s %s\n", i, name_of(f, r->asset), name_of(f, r->signal), got,
                      tag(f, r, "op", t));
        assert_string_equal(name_of(f, r->asset), w[i].asset);
        assert_string_equal(name_of(f, r->signal), w[i].signal);
        assert_int_equal(r->type, w[i].type);
        assert_string_equal(got, w[i].value);
        assert_string_equal(tag(f, r, "op", t), w[i].op);
        assert_int_equal(r->quality, MR_QUALITY_GOOD);
    }
}

static void test_insert_update_delete(void **state)
{
    struct fx *f = *state;
    struct mr_err err;
    struct msg m = relation(100, "public", "work_orders", wo_cols, 8);
    assert_int_equal(feed(f, &m, &err), 0);
    m = begin(10 * 1000000LL); /* 2000-01-01T00:00:10Z */
    assert_int_equal(feed(f, &m, &err), 0);
    const char *ins[] = {"1", "line1", "press1", "PO-1", "42", "1.25", "running", "f"};
    m = change('I', 100, NULL, ins, 8);
    assert_int_equal(feed(f, &m, &err), 0);
    /* NULL qty: no record; unchanged (TOASTed) status: no record. */
    const char *upd[] = {"1", "line1", "press1", "PO-1", NULL, "NaN", "\x01", "t"};
    m = change('U', 100, ins, upd, 8);
    assert_int_equal(feed(f, &m, &err), 0);
    const char *key[] = {"1", "line1", "press1", "PO-1", NULL, NULL, NULL, NULL};
    m = change('D', 100, key, NULL, 8);
    assert_int_equal(feed(f, &m, &err), 0);
    m = commit(0x2000);
    assert_int_equal(feed(f, &m, &err), PGCDC_COMMIT);
    assert_int_equal(f->dec.commit_end_lsn, 0x2000);
    static const struct want w[] = {
        {"plant1/line1/press1", "qty", MR_VALUE_I64, "42", "insert"},
        {"plant1/line1/press1", "rate", MR_VALUE_F64, "1.25", "insert"},
        {"plant1/line1/press1", "status", MR_VALUE_STRING, "running", "insert"},
        {"plant1/line1/press1", "done", MR_VALUE_BOOL, "false", "insert"},
        {"plant1/line1/press1", "rate", MR_VALUE_F64, "nan", "update"},
        {"plant1/line1/press1", "done", MR_VALUE_BOOL, "true", "update"},
        {"plant1/line1/press1", "row_deleted", MR_VALUE_BOOL, "true", "delete"},
    };
    check(f, w, sizeof(w) / sizeof(w[0]));
    char t[64];
    for (size_t i = 0; i < f->b->n; i++) {
        assert_int_equal(f->b->recs[i].time_ns, (946684800LL + 10) * 1000000000LL);
        assert_string_equal(tag(f, &f->b->recs[i], "table", t), "public.work_orders");
        assert_string_equal(tag(f, &f->b->recs[i], "order_no", t), "PO-1");
    }
}

static void test_fixed_asset_all_columns_and_unmapped(void **state)
{
    struct fx *f = *state;
    struct mr_err err;
    static const struct colspec cc[] = {{"seq", 23}, {"n", 20}, {"label", 25}};
    struct msg m = relation(200, "public", "counts", cc, 3);
    assert_int_equal(feed(f, &m, &err), 0);
    static const struct colspec oc[] = {{"x", 23}};
    m = relation(300, "public", "other", oc, 1);
    assert_int_equal(feed(f, &m, &err), 0);
    m = relation(301, "mes", "counts", oc, 1); /* same name, other schema: not configured */
    assert_int_equal(feed(f, &m, &err), 0);
    const char *row[] = {"7", "-9000000000", "ab\"c"};
    m = change('I', 200, NULL, row, 3);
    assert_int_equal(feed(f, &m, &err), 0);
    const char *other[] = {"1"};
    m = change('I', 300, NULL, other, 1);
    assert_int_equal(feed(f, &m, &err), 0);
    m = change('I', 301, NULL, other, 1);
    assert_int_equal(feed(f, &m, &err), 0);
    static const struct want w[] = {
        {"plant1/counter", "seq", MR_VALUE_I64, "7", "insert"},
        {"plant1/counter", "n", MR_VALUE_I64, "-9000000000", "insert"},
        {"plant1/counter", "label", MR_VALUE_STRING, "ab\"c", "insert"},
    };
    check(f, w, 3);
}

/* Malformed messages and rows that cannot be mapped: a clear error, the batch untouched. */
static void test_bad_messages(void **state)
{
    struct fx *f = *state;
    struct mr_err err;
    struct msg m = relation(100, "public", "work_orders", wo_cols, 8);
    assert_int_equal(feed(f, &m, &err), 0);
    const char *ins[] = {"1", "line1", "press1", "PO-1", "42", "1.25", "running", "f"};
    struct msg good = change('I', 100, NULL, ins, 8);
    static const struct {
        const char *what;
        size_t cut; /* bytes of the good insert kept (0: use msg) */
        int rc;
        const char *needle;
    } cases[] = {
        {"truncated insert", 20, MR_ECORRUPT, "truncated"},
        {"only the kind", 1, MR_ECORRUPT, "truncated"},
        {"relid, no tuple", 6, MR_ECORRUPT, "truncated"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct msg c = good;
        c.n = cases[i].cut;
        assert_int_equal(feed(f, &c, &err), cases[i].rc);
        print_message("%s: %s\n", cases[i].what, err.msg);
        assert_non_null(strstr(err.msg, cases[i].needle));
    }
    m = (struct msg){.b = {'Z'}, .n = 1};
    assert_int_equal(feed(f, &m, &err), MR_ECORRUPT);
    assert_non_null(strstr(err.msg, "unknown pgoutput message 'Z'"));
    m = change('I', 999, NULL, ins, 8);
    assert_int_equal(feed(f, &m, &err), MR_ECORRUPT);
    assert_non_null(strstr(err.msg, "before its Relation"));
    const char *noline[] = {"1", NULL, "press1", "PO-1", "42", "1.25", "running", "f"};
    m = change('I', 100, NULL, noline, 8);
    assert_int_equal(feed(f, &m, &err), MR_EPARSE);
    assert_non_null(strstr(err.msg, "asset column 'line' is NULL"));
    /* A delete whose old row lacks the asset columns (default replica identity). */
    const char *key[] = {"1", NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    m = change('D', 100, key, NULL, 8);
    assert_int_equal(feed(f, &m, &err), MR_EPARSE);
    assert_non_null(strstr(err.msg, "REPLICA IDENTITY FULL"));
    m = relation(100, "public", "work_orders", wo_cols + 2, 6); /* schema change: no line */
    assert_int_equal(feed(f, &m, &err), 0);
    const char *six[] = {"press1", "PO-1", "42", "1.25", "running", "f"};
    m = change('I', 100, NULL, six, 6);
    assert_int_equal(feed(f, &m, &err), MR_EPARSE);
    assert_non_null(strstr(err.msg, "not a column of the table"));
    assert_int_equal(f->b->n, 0);
    assert_int_equal(f->dec.rows_skipped, 3);
}

/* A full batch: MR_ETOOBIG and nothing added; the same message fits an empty batch. */
static void test_batch_full(void **state)
{
    struct fx *f = *state;
    struct mr_err err;
    struct msg m = relation(100, "public", "work_orders", wo_cols, 8);
    assert_int_equal(feed(f, &m, &err), 0);
    const char *ins[] = {"1", "line1", "press1", "PO-1", "42", "1.25", "running", "f"};
    m = change('I', 100, NULL, ins, 8);
    size_t rows = 0;
    int rc;
    while ((rc = feed(f, &m, &err)) == 0) {
        rows++;
    }
    assert_int_equal(rc, MR_ETOOBIG);
    assert_int_equal(rows, 16); /* 64 records, 4 per row */
    assert_int_equal(f->b->n, 64);
    f->b->n = 0;
    f->b->used = 0;
    assert_int_equal(feed(f, &m, &err), 0);
    assert_int_equal(f->b->n, 4);
}

static void test_config_errors(void **state)
{
    (void)state;
    static struct mr_config_errors errs;
    static const struct {
        const char *yaml;
        const char *needle;
    } cases[] = {
        {"tables: [{table: t, asset: a}]\n", "address"},
        {"address: x\n", "tables"},
        {"address: x\ntables: [{table: t, asset: \"a/{line\"}]\n", "unclosed or empty"},
        {"address: x\ntables: [{table: t, asset: \"a/{}\"}]\n", "unclosed or empty"},
        {"address: x\ntables: [{table: t, asset: a, signals: [q], tags: [q]}]\n",
         "both a signal and a tag"},
        {"address: x\ntables: [{table: \"s.\", asset: a}]\n", "schema.name"},
        {"address: x\nslto: s\ntables: [{table: t, asset: a}]\n", "did you mean 'slot'"},
        {"address: x\nstatus_interval: 10ms\ntables: [{table: t, asset: a}]\n", "status_interval"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pgcdc_conf c;
        int rc = mr_section_load_buffer(&mr_input_postgres_cdc.conf, &c, "c.yaml", cases[i].yaml,
                                        strlen(cases[i].yaml), NULL, &errs);
        assert_int_not_equal(rc, 0);
        assert_true(errs.n > 0);
        print_message("%s\n", errs.msg[0]);
        assert_non_null(strstr(errs.msg[0], "c.yaml:"));
        assert_non_null(strstr(errs.msg[0], cases[i].needle));
    }
    struct mr_err err = {0};
    assert_int_equal(mr_section_validate(&mr_input_postgres_cdc.conf, "inputs.x", &err), 0);
}

/* ---- the plugin on a loop, against a port where nothing listens ---- */

struct rig {
    int stopped, ended;
    uv_timer_t timer;
    void *ctx;
    struct mr_counter *errors;
};

static int rig_emit(struct mr_input_host *h, const struct mr_record *r, size_t n)
{
    (void)h;
    (void)r;
    (void)n;
    return 0;
}

static void rig_ended(struct mr_input_host *h, int status)
{
    (void)status;
    ((struct rig *)h->arg)->ended++;
}

static void rig_stopped(struct mr_input_host *h)
{
    ((struct rig *)h->arg)->stopped++;
}

static void on_timer(uv_timer_t *t)
{
    struct rig *r = t->data;
    mr_input_postgres_cdc.input.stop(r->ctx);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_unreachable_server_retries_and_stops(void **state)
{
    (void)state;
    static struct mr_config_errors errs;
    struct pgcdc_conf conf;
    const char *yaml = "address: \"host=127.0.0.1 port=1 dbname=x connect_timeout=1\"\n"
                       "tables: [{table: t, asset: a}]\n";
    assert_int_equal(mr_section_load_buffer(&mr_input_postgres_cdc.conf, &conf, "c.yaml", yaml,
                                            strlen(yaml), NULL, &errs),
                     0);
    struct mr_names *names;
    struct mr_metrics *metrics;
    uv_loop_t loop;
    assert_int_equal(mr_names_create(&names, 1024, 1 << 16), 0);
    assert_int_equal(mr_metrics_create(&metrics), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    struct rig r = {0};
    struct mr_input_host host = {.name = "inputs.cdc",
                                 .names = names,
                                 .metrics = metrics,
                                 .loop = &loop,
                                 .emit = rig_emit,
                                 .ended = rig_ended,
                                 .stopped = rig_stopped,
                                 .arg = &r};
    struct pgcdc_ctx *c = mr_calloc(1, mr_input_postgres_cdc.ctx_size);
    r.ctx = c;
    struct mr_err err = {0};
    assert_int_equal(mr_input_postgres_cdc.input.init(c, &conf, &host, &err), 0);
    assert_int_equal(mr_input_postgres_cdc.input.start(c, &err), 0);
    uv_timer_init(&loop, &r.timer);
    r.timer.data = &r;
    uv_timer_start(&r.timer, on_timer, 1200, 0); /* the first retry waits 0.5 s */
    uint64_t t0 = uv_hrtime();
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_true(ms < 2000); /* stop answered within a poll interval */
    assert_int_equal(r.stopped, 1);
    assert_int_equal(r.ended, 0); /* a server that is away is waited for, not an end */
    assert_true(c->counters.errors != NULL);
    assert_true(mr_counter_value(c->counters.errors) >= 2);
    mr_input_postgres_cdc.input.fini(c);
    mr_free(c);
    uv_loop_close(&loop);
    mr_metrics_destroy(metrics);
    mr_names_destroy(names);
    mr_section_free(&mr_input_postgres_cdc.conf, &conf);
}

/* ---- the confirmed position follows the journal, never the hand-over ---- */

struct ackrig {
    uint64_t durable; /* what the fake journal has committed (emit calls) */
    size_t emits, records;
    int refuse; /* answer MR_EAGAIN this many times */
};

static int ack_emit(struct mr_input_host *h, const struct mr_record *r, size_t n)
{
    struct ackrig *a = h->arg;
    (void)r;
    if (a->refuse > 0) {
        a->refuse--;
        return MR_EAGAIN;
    }
    a->emits++;
    a->records += n;
    return 0;
}

static uint64_t ack_durable(struct mr_input_host *h)
{
    return ((struct ackrig *)h->arg)->durable;
}

static void post_batch(struct pgcdc_ctx *c, size_t nrec, uint64_t lsn)
{
    struct pgcdc_batch *b = pgcdc_batch_create(16, 1024);
    assert_non_null(b);
    for (size_t i = 0; i < nrec; i++) {
        b->recs[i] = (struct mr_record){.asset = 1, .signal = 1, .type = MR_VALUE_I64};
    }
    b->n = nrec;
    b->ack_lsn = lsn;
    atomic_fetch_add(&c->inflight, 1);
    pgcdc_deliver(b, c);
}

static void test_ack_follows_journal(void **state)
{
    (void)state;
    static struct mr_config_errors errs;
    struct pgcdc_conf conf;
    const char *yaml = "address: x\ntables: [{table: t, asset: a}]\n";
    assert_int_equal(mr_section_load_buffer(&mr_input_postgres_cdc.conf, &conf, "c.yaml", yaml,
                                            strlen(yaml), NULL, &errs),
                     0);
    struct mr_names *names;
    struct mr_metrics *metrics;
    assert_int_equal(mr_names_create(&names, 1024, 1 << 16), 0);
    assert_int_equal(mr_metrics_create(&metrics), 0);
    struct ackrig a = {0};
    struct mr_input_host host = {.name = "inputs.cdc",
                                 .names = names,
                                 .metrics = metrics,
                                 .emit = ack_emit,
                                 .durable = ack_durable,
                                 .arg = &a};
    struct pgcdc_ctx *c = mr_calloc(1, mr_input_postgres_cdc.ctx_size);
    struct mr_err err = {0};
    assert_int_equal(mr_input_postgres_cdc.input.init(c, &conf, &host, &err), 0);
    /* Batch 1 ends transaction 0x100; batch 2 is half of a transaction; batch 3 ends it
     * (0x300); an empty batch marks a transaction without mapped rows (0x380). */
    post_batch(c, 3, 0x100);
    post_batch(c, 2, 0);
    assert_int_equal(a.emits, 2);
    assert_int_equal(atomic_load(&c->durable_lsn), 0); /* handed over, not committed */
    assert_false(atomic_load(&c->settled));
    a.durable = 1;
    pgcdc_settle(c);
    assert_int_equal(atomic_load(&c->durable_lsn), 0x100);
    a.refuse = 2; /* back-pressure: the batch waits, and the next one behind it */
    post_batch(c, 4, 0x300);
    post_batch(c, 0, 0x380);
    assert_int_equal(a.emits, 2);
    assert_int_equal(atomic_load(&c->inflight), 2);
    a.durable = 2; /* the half transaction is committed: still nothing new to confirm */
    pgcdc_settle(c);
    assert_int_equal(atomic_load(&c->durable_lsn), 0x100);
    pgcdc_settle(c);
    post_batch(c, 0, 0); /* the next delivery (or tick) offers the waiting batches again */
    assert_int_equal(a.emits, 3);
    assert_int_equal(a.records, 9);
    assert_int_equal(atomic_load(&c->durable_lsn), 0x100);
    a.durable = 3;
    pgcdc_settle(c);
    assert_int_equal(atomic_load(&c->durable_lsn), 0x380);
    assert_int_equal(atomic_load(&c->inflight), 0);
    assert_true(atomic_load(&c->settled));
    mr_input_postgres_cdc.input.fini(c);
    mr_free(c);
    mr_metrics_destroy(metrics);
    mr_names_destroy(names);
    mr_section_free(&mr_input_postgres_cdc.conf, &conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_insert_update_delete, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fixed_asset_all_columns_and_unmapped, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_messages, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_batch_full, fx_setup, fx_teardown),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_ack_follows_journal),
        cmocka_unit_test(test_unreachable_server_retries_and_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
