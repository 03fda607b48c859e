/* The `file` output: JSON and CSV written and read back with the file input (values, times,
 * assets, tags), rotation by size (nothing lost; `keep` files kept) and by age, appending to an
 * existing CSV, records too large or without a CSV form, a full disk (/dev/full: RETRY with
 * the reason), a directory that does not exist (init names it), and flat JSON objects
 * (fields, typed tags, time_format) with their configuration errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/log.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "millrace/plugin.h"
#include "support/tmpdir.h"

extern const struct mr_plugin mr_output_file;
extern const struct mr_plugin mr_input_file;

#define T0 1795538940000000000LL /* 2026-11-24T16:49:00Z */

static char tmp[256];
static struct mr_names *names;

static int setup(void **state)
{
    (void)state;
    if (mr_names_create(&names, 4096, 1 << 20) != 0) {
        return -1;
    }
    mr_log_set_level(MR_LOG_WARN); /* not a line per rotation */
    return mr_test_tmpdir_create(tmp, sizeof(tmp), "mr_file_output");
}

static int teardown(void **state)
{
    (void)state;
    mr_names_destroy(names);
    return mr_test_tmpdir_remove(tmp);
}

static mr_name_id name(const char *s)
{
    mr_name_id id;
    assert_int_equal(mr_names_intern(names, s, strlen(s), &id), 0);
    return id;
}

/* ---- a text form of records, for comparing what went in with what came back ------------ */

struct text {
    char *p;
    size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = (t->cap + (size_t)n) * 2;
        t->p = realloc(t->p, t->cap);
        assert_non_null(t->p);
    }
}

/* csv: integers print like doubles (CSV keeps numbers, not their C type). */
static void render(struct text *t, const struct mr_record *rec, bool csv)
{
    text_add(t, "%" PRId64 " %s %s ", rec->time_ns, mr_names_str(names, rec->asset, NULL),
             mr_names_str(names, rec->signal, NULL));
    switch (rec->type) {
    case MR_VALUE_F64:
        text_add(t, "f%.17g", rec->v.f64);
        break;
    case MR_VALUE_I64:
        if (csv) {
            text_add(t, "f%.17g", (double)rec->v.i64);
        } else {
            text_add(t, "i%" PRId64, rec->v.i64);
        }
        break;
    case MR_VALUE_BOOL:
        text_add(t, "b%d", rec->v.b);
        break;
    case MR_VALUE_STRING:
        text_add(t, "s'%.*s'", (int)rec->v.str.len, rec->v.str.ptr);
        break;
    case MR_VALUE_SAMPLES:
        text_add(t, "@%g[", rec->v.samples.rate_hz);
        for (uint32_t i = 0; i < rec->v.samples.n; i++) {
            float f;
            memcpy(&f, (const char *)rec->v.samples.data + i * sizeof(f), sizeof(f));
            text_add(t, "%s%.9g", i > 0 ? "," : "", (double)f);
        }
        text_add(t, "]");
        break;
    }
    text_add(t, " %s", mr_quality_name((enum mr_quality)rec->quality));
    for (uint16_t i = 0; i < rec->ntags; i++) {
        text_add(t, " <%s>=<%.*s>", mr_names_str(names, rec->tags[i].key, NULL),
                 (int)rec->tags[i].value.len, rec->tags[i].value.ptr);
    }
    text_add(t, "\n");
}

/* ---- the output ------------------------------------------------------------------------- */

struct out {
    void *conf;
    void *ctx;
    struct mr_metrics *metrics;
    struct mr_output_host host;
};

static int out_open(struct out *o, const char *yaml, struct mr_err *err)
{
    static struct mr_config_errors errs;
    memset(o, 0, sizeof(*o));
    o->conf = calloc(1, mr_output_file.conf.size);
    assert_non_null(o->conf);
    int rc = mr_section_load_buffer(&mr_output_file.conf, o->conf, "out.yaml", yaml, strlen(yaml),
                                    NULL, &errs);
    for (size_t i = 0; i < errs.n; i++) {
        print_message("config: %s\n", errs.msg[i]);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(mr_metrics_create(&o->metrics), 0);
    o->host = (struct mr_output_host){.name = "outputs.out", .names = names, .metrics = o->metrics};
    o->ctx = mr_calloc(1, mr_output_file.ctx_size);
    assert_non_null(o->ctx);
    rc = mr_output_file.output.init(o->ctx, o->conf, &o->host, err);
    if (rc != 0) {
        mr_free(o->ctx);
        o->ctx = NULL;
    }
    return rc;
}

static void out_close(struct out *o)
{
    if (o->ctx != NULL) {
        mr_output_file.output.fini(o->ctx);
        mr_free(o->ctx);
    }
    mr_metrics_destroy(o->metrics);
    mr_section_free(&mr_output_file.conf, o->conf);
    free(o->conf);
}

static uint64_t out_metric(struct out *o, const char *metric)
{
    static char text[1 << 16];
    size_t needed;
    char key[256];
    assert_true(mr_metrics_render(o->metrics, text, sizeof(text), &needed) > 0);
    snprintf(key, sizeof(key), "%s{instance=\"outputs.out\",plugin=\"file\"} ", metric);
    const char *p = strstr(text, key);
    assert_non_null(p);
    return strtoull(p + strlen(key), NULL, 10);
}

static void out_write_ok(struct out *o, const struct mr_record *recs, size_t n)
{
    struct mr_err err = {0};
    int rc = mr_output_file.output.write(o->ctx, recs, n, &err);
    if (rc != MR_SINK_OK) {
        print_message("write: %s\n", err.msg);
    }
    assert_int_equal(rc, MR_SINK_OK);
    assert_int_equal(mr_output_file.output.flush(o->ctx, &err), MR_SINK_OK);
}

/* ---- reading back with the file input --------------------------------------------------- */

struct reader {
    struct text got;
    bool csv;
    int ended, stopped;
    void *ctx;
};

static int read_emit(struct mr_input_host *host, const struct mr_record *recs, size_t n)
{
    struct reader *rd = host->arg;
    for (size_t i = 0; i < n; i++) {
        render(&rd->got, &recs[i], rd->csv);
    }
    return 0;
}

static void read_ended(struct mr_input_host *host, int status)
{
    struct reader *rd = host->arg;
    assert_int_equal(status, 0);
    rd->ended++;
    mr_input_file.input.stop(rd->ctx);
}

static void read_stopped(struct mr_input_host *host)
{
    struct reader *rd = host->arg;
    rd->stopped++;
}

/* Everything the file input reads from the file(s) yaml names, as text (caller frees). */
static char *read_back(const char *yaml, bool csv)
{
    static struct mr_config_errors errs;
    struct reader rd = {.csv = csv};
    struct mr_metrics *metrics;
    uv_loop_t loop;
    struct mr_err err = {0};
    void *conf = calloc(1, mr_input_file.conf.size);
    assert_non_null(conf);
    assert_int_equal(mr_section_load_buffer(&mr_input_file.conf, conf, "in.yaml", yaml,
                                            strlen(yaml), NULL, &errs),
                     0);
    assert_int_equal(mr_metrics_create(&metrics), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    struct mr_input_host host = {.name = "inputs.back",
                                 .names = names,
                                 .metrics = metrics,
                                 .loop = &loop,
                                 .emit = read_emit,
                                 .ended = read_ended,
                                 .stopped = read_stopped,
                                 .arg = &rd};
    rd.ctx = mr_calloc(1, mr_input_file.ctx_size);
    assert_int_equal(mr_input_file.input.init(rd.ctx, conf, &host, &err), 0);
    int rc = mr_input_file.input.start(rd.ctx, &err);
    if (rc != 0) {
        print_message("start: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(rd.ended, 1);
    assert_int_equal(rd.stopped, 1);
    mr_input_file.input.fini(rd.ctx);
    mr_free(rd.ctx);
    assert_int_equal(uv_loop_close(&loop), 0);
    mr_metrics_destroy(metrics);
    mr_section_free(&mr_input_file.conf, conf);
    free(conf);
    text_add(&rd.got, "%s", "");
    return rd.got.p;
}

/* ---- records ---------------------------------------------------------------------------- */

static const float samples[4] = {0.5f, -1.25f, 3.0e-7f, 12345.678f};

/* A mixed set: every value type, qualities, awkward names and tags. */
static size_t make_records(struct mr_record *r)
{
    static const char note[] = "running, \"fast\"";
    memset(r, 0, 8 * sizeof(*r));
    mr_name_id press = name("plant/press/line1/press3");
    mr_name_id odd = name("plant/a,b \"c\"");
    r[0] = (struct mr_record){.time_ns = T0 + 123456789,
                              .asset = press,
                              .signal = name("temp"),
                              .type = MR_VALUE_F64,
                              .v.f64 = 21.5,
                              .ntags = 1};
    r[0].tags[0] = (struct mr_tag){.key = name("unit"), .value = {"degC", 4}};
    r[1] = (struct mr_record){.time_ns = T0 + 1,
                              .asset = press,
                              .signal = name("count"),
                              .type = MR_VALUE_I64,
                              .v.i64 = -1042,
                              .quality = MR_QUALITY_UNCERTAIN};
    r[2] = (struct mr_record){.time_ns = T0 + 2000000000,
                              .asset = odd,
                              .signal = name("ok"),
                              .type = MR_VALUE_BOOL,
                              .v.b = true,
                              .quality = MR_QUALITY_BAD};
    r[3] = (struct mr_record){.time_ns = T0 + 3,
                              .asset = odd,
                              .signal = name("state"),
                              .type = MR_VALUE_STRING,
                              .v.str = {note, sizeof(note) - 1}};
    r[4] = (struct mr_record){.time_ns = T0 + 4,
                              .asset = press,
                              .signal = name("vib"),
                              .type = MR_VALUE_SAMPLES,
                              .v.samples = {.data = samples, .n = 4, .rate_hz = 10000}};
    r[5] = (struct mr_record){.time_ns = T0 - 5,
                              .asset = press,
                              .signal = name("p"),
                              .type = MR_VALUE_F64,
                              .v.f64 = 0.1 + 0.2,
                              .ntags = 4};
    r[5].tags[0] = (struct mr_tag){.key = name("k;e=y"), .value = {"v\\x;=", 5}};
    r[5].tags[1] = (struct mr_tag){.key = name("pad"), .value = {" lead", 5}};
    r[5].tags[2] = (struct mr_tag){.key = name("comma"), .value = {"a,\"b\"", 5}};
    r[5].tags[3] = (struct mr_tag){.key = name("empty"), .value = {"", 0}};
    r[6] = (struct mr_record){.time_ns = T0 + 6,
                              .asset = press,
                              .signal = name("big"),
                              .type = MR_VALUE_F64,
                              .v.f64 = -1.7976931348623157e308};
    r[7] = (struct mr_record){.time_ns = T0 + 7,
                              .asset = press,
                              .signal = name("line"),
                              .type = MR_VALUE_STRING,
                              .v.str = {"two\nlines", 9}};
    return 8;
}

static char *render_all(const struct mr_record *recs, size_t n, bool csv)
{
    struct text t = {0};
    for (size_t i = 0; i < n; i++) {
        if (!csv || recs[i].type != MR_VALUE_SAMPLES) {
            render(&t, &recs[i], csv);
        }
    }
    return t.p;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_json_round_trip(void **state)
{
    (void)state;
    struct out o;
    struct mr_err err = {0};
    struct mr_record recs[8];
    char path[512];
    char yaml[1024];
    size_t n = make_records(recs);
    snprintf(path, sizeof(path), "%s/rt.jsonl", tmp);
    snprintf(yaml, sizeof(yaml), "path: %s\nformat: json\n", path);
    assert_int_equal(mr_section_validate(&mr_output_file.conf, "outputs.x", &err), 0);
    assert_int_equal(out_open(&o, yaml, &err), 0);
    out_write_ok(&o, recs, 3);
    out_write_ok(&o, recs + 3, n - 3);
    assert_int_equal(out_metric(&o, "millrace_records_out_total"), n);
    assert_int_equal(out_metric(&o, "millrace_errors_total"), 0);
    out_close(&o);

    snprintf(yaml, sizeof(yaml), "path: %s\nformat: json\n", path);
    char *got = read_back(yaml, false);
    char *want = render_all(recs, n, false);
    assert_string_equal(got, want);
    free(got);
    free(want);
}

static void test_csv_round_trip(void **state)
{
    (void)state;
    struct out o;
    struct mr_err err = {0};
    struct mr_record recs[8];
    char path[512];
    char yaml[1024];
    size_t n = make_records(recs);
    snprintf(path, sizeof(path), "%s/rt.csv", tmp);
    snprintf(yaml, sizeof(yaml), "path: %s\nformat: csv\n", path);
    assert_int_equal(out_open(&o, yaml, &err), 0);
    out_write_ok(&o, recs, n);
    /* The sample block has no CSV form: counted, the others written. */
    assert_int_equal(out_metric(&o, "millrace_records_out_total"), n - 1);
    assert_int_equal(out_metric(&o, "millrace_errors_total"), 1);
    out_close(&o);

    FILE *f = fopen(path, "r");
    char first[128];
    assert_non_null(fgets(first, sizeof(first), f));
    fclose(f);
    assert_string_equal(first, "time,asset,signal,value,quality,tags\n");

    snprintf(yaml, sizeof(yaml),
             "path: %s\nasset_column: asset\nsignal_column: signal\nquality_column: quality\n"
             "tags_column: tags\n",
             path);
    char *got = read_back(yaml, true);
    char *want = render_all(recs, n, true);
    assert_string_equal(got, want);
    free(got);
    free(want);
}

/* Appending to a CSV that exists writes no second header. */
static void test_csv_append(void **state)
{
    (void)state;
    struct mr_record recs[8];
    char path[512];
    char yaml[1024];
    make_records(recs);
    snprintf(path, sizeof(path), "%s/append.csv", tmp);
    snprintf(yaml, sizeof(yaml), "path: %s\nformat: csv\n", path);
    for (int round = 0; round < 2; round++) {
        struct out o;
        struct mr_err err = {0};
        assert_int_equal(out_open(&o, yaml, &err), 0);
        out_write_ok(&o, recs, 1);
        out_close(&o);
    }
    FILE *f = fopen(path, "r");
    char line[256];
    int lines = 0, headers = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lines++;
        headers += strncmp(line, "time,", 5) == 0;
    }
    fclose(f);
    assert_int_equal(lines, 3);
    assert_int_equal(headers, 1);
}

/* Write `total` numbered records in small batches. */
static void write_numbered(struct out *o, int total)
{
    struct mr_record batch[7];
    mr_name_id asset = name("plant/press/line1/press3");
    mr_name_id signal = name("seq");
    for (int i = 0; i < total;) {
        size_t n = 0;
        for (; n < 7 && i < total; n++, i++) {
            batch[n] = (struct mr_record){.time_ns = T0 + i * 1000000LL,
                                          .asset = asset,
                                          .signal = signal,
                                          .type = MR_VALUE_F64,
                                          .v.f64 = i};
        }
        out_write_ok(o, batch, n);
    }
}

/* Values of the "seq" lines of path in order, appended to seq[*n]; checks the file size. */
static void collect_seq(const char *path, bool csv, uint64_t max_size, int *seq, int *n)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true((uint64_t)st.st_size <= max_size);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    bool first = true;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (csv && first) {
            assert_string_equal(line, "time,asset,signal,value,quality,tags\n");
            first = false;
            continue;
        }
        const char *v = csv ? strstr(line, ",seq,") : strstr(line, "\"value\":");
        assert_non_null(v);
        seq[(*n)++] = (int)strtol(v + (csv ? 5 : 8), NULL, 10);
    }
    fclose(f);
}

/* Rotation by size: no file above rotate_bytes; with keep large enough every record is in
 * path.N .. path.1, path in order; with a small keep, exactly `keep` rotated files remain and
 * they hold the newest records. */
static void test_rotate_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *format;
        int keep;
    } cases[] = {{"json", 200}, {"csv", 200}, {"json", 3}, {"csv", 2}};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        bool csv = strcmp(cases[k].format, "csv") == 0;
        int keep = cases[k].keep;
        struct out o;
        struct mr_err err = {0};
        char base[512];
        char path[600];
        char yaml[1024];
        static int seq[2000];
        int nseq = 0;
        snprintf(base, sizeof(base), "%s/rot%zu.%s", tmp, k, cases[k].format);
        snprintf(yaml, sizeof(yaml), "path: %s\nformat: %s\nrotate_bytes: 4KiB\nkeep: %d\n", base,
                 cases[k].format, keep);
        assert_int_equal(out_open(&o, yaml, &err), 0);
        write_numbered(&o, 1000);
        out_close(&o);
        int files = 0;
        for (int i = keep + 1; i >= 1; i--) {
            snprintf(path, sizeof(path), "%s.%d", base, i);
            if (access(path, F_OK) != 0) {
                continue;
            }
            assert_true(i <= keep); /* path.{keep+1} never exists */
            files++;
            collect_seq(path, csv, 4096, seq, &nseq);
        }
        collect_seq(base, csv, 4096, seq, &nseq);
        print_message("%s keep %d: %d rotated files, %d records\n", cases[k].format, keep, files,
                      nseq);
        assert_true(files >= 2);
        int first = 1000 - nseq;
        if (keep >= 200) {
            assert_int_equal(nseq, 1000); /* nothing lost */
        } else {
            assert_int_equal(files, keep);
            assert_true(first > 0);
        }
        for (int i = 0; i < nseq; i++) {
            assert_int_equal(seq[i], first + i);
        }
    }
}

/* Rotation by age: the first write after rotate_age starts a new file. */
static void test_rotate_age(void **state)
{
    (void)state;
    struct out o;
    struct mr_err err = {0};
    char path[512];
    char rotated[600];
    char yaml[1024];
    snprintf(path, sizeof(path), "%s/age.jsonl", tmp);
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    snprintf(yaml, sizeof(yaml), "path: %s\nrotate_age: 20ms\nrotate_bytes: 0\n", path);
    assert_int_equal(out_open(&o, yaml, &err), 0);
    write_numbered(&o, 3);
    assert_int_equal(access(rotated, F_OK), -1);
    mr_clock_sleep_ns(30000000);
    write_numbered(&o, 2);
    out_close(&o);
    int seq[8], n = 0;
    collect_seq(rotated, false, 1 << 20, seq, &n);
    assert_int_equal(n, 3);
    n = 0;
    collect_seq(path, false, 1 << 20, seq, &n);
    assert_int_equal(n, 2);
}

/* A full disk answers RETRY and says why; the host may try again later. */
static void test_disk_full(void **state)
{
    (void)state;
    struct out o;
    struct mr_err err = {0};
    struct mr_record recs[8];
    make_records(recs);
    assert_int_equal(out_open(&o, "path: /dev/full\nrotate_bytes: 1KiB\n", &err), 0);
    for (int attempt = 0; attempt < 2; attempt++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(mr_output_file.output.write(o.ctx, recs, 3, &err), MR_SINK_RETRY);
        print_message("%s\n", err.msg);
        assert_int_equal(err.code, MR_ENOSPC);
        assert_non_null(strstr(err.msg, "cannot write /dev/full: No space left on device"));
    }
    assert_int_equal(out_metric(&o, "millrace_records_out_total"), 0);
    out_close(&o);
}

/* A directory that does not exist is named at init; so is an unwritable path. */
static void test_init_errors(void **state)
{
    (void)state;
    char yaml[1024];
    char want[600];
    struct out o;
    struct mr_err err = {0};
    snprintf(yaml, sizeof(yaml), "path: %s/nope/out.jsonl\n", tmp);
    assert_true(out_open(&o, yaml, &err) < 0);
    snprintf(want, sizeof(want), "directory %s/nope (of %s/nope/out.jsonl) does not exist", tmp,
             tmp);
    print_message("%s\n", err.msg);
    assert_non_null(strstr(err.msg, want));
    out_close(&o);

    snprintf(yaml, sizeof(yaml), "path: %s\n", tmp); /* a directory itself */
    memset(&err, 0, sizeof(err));
    assert_true(out_open(&o, yaml, &err) < 0);
    print_message("%s\n", err.msg);
    assert_non_null(strstr(err.msg, "cannot open"));
    assert_non_null(strstr(err.msg, tmp));
    out_close(&o);
}

/* A record larger than max_record is skipped and counted; fsync flushes. */
static void test_too_large_and_fsync(void **state)
{
    (void)state;
    struct out o;
    struct mr_err err = {0};
    char path[512];
    char yaml[1024];
    size_t big_len = 100000;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, 'x', big_len);
    struct mr_record recs[3] = {
        {.time_ns = T0, .asset = name("a"), .signal = name("s"), .type = MR_VALUE_F64, .v.f64 = 1},
        {.time_ns = T0,
         .asset = name("a"),
         .signal = name("s"),
         .type = MR_VALUE_STRING,
         .v.str = {big, (uint32_t)big_len}},
        {.time_ns = T0, .asset = name("a"), .signal = name("s"), .type = MR_VALUE_F64, .v.f64 = 2},
    };
    snprintf(path, sizeof(path), "%s/big.jsonl", tmp);
    snprintf(yaml, sizeof(yaml), "path: %s\nmax_record: 64KiB\nfsync: true\n", path);
    assert_int_equal(out_open(&o, yaml, &err), 0);
    out_write_ok(&o, recs, 3);
    assert_int_equal(out_metric(&o, "millrace_records_out_total"), 2);
    assert_int_equal(out_metric(&o, "millrace_errors_total"), 1);
    out_close(&o);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 0 && st.st_size < 1000);
    free(big);
}

/* A write cut short (here by the file size limit, EFBIG) leaves no torn line: the file is cut
 * back to where the write began, and the answer says why. */
static void test_failed_write_leaves_no_torn_line(void **state)
{
    (void)state;
    struct out o;
    struct mr_err err = {0};
    char path[512];
    char yaml[1024];
    struct rlimit old;
    snprintf(path, sizeof(path), "%s/limit.jsonl", tmp);
    snprintf(yaml, sizeof(yaml), "path: %s\n", path);
    assert_int_equal(out_open(&o, yaml, &err), 0);
    write_numbered(&o, 5);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    off_t good = st.st_size;

    struct mr_record recs[40];
    for (int i = 0; i < 40; i++) {
        recs[i] = (struct mr_record){.time_ns = T0,
                                     .asset = name("a"),
                                     .signal = name("s"),
                                     .type = MR_VALUE_F64,
                                     .v.f64 = i};
    }
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    struct rlimit lim = {.rlim_cur = (rlim_t)good + 1000, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = mr_output_file.output.write(o.ctx, recs, 40, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    print_message("%s\n", err.msg);
    assert_int_equal(rc, MR_SINK_FATAL);
    assert_non_null(strstr(err.msg, "cannot write"));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, good);

    write_numbered(&o, 2); /* the file goes on cleanly */
    out_close(&o);
    int seq[16], n = 0;
    collect_seq(path, false, 1 << 20, seq, &n);
    assert_int_equal(n, 7);
}

/* Records per second written (MR_FILE_BENCH_ROWS records, default 20000, in batches of 1000;
 * a release build measures what the report quotes). */
static void test_speed(void **state)
{
    (void)state;
    const char *env = getenv("MR_FILE_BENCH_ROWS");
    long total = env != NULL ? strtol(env, NULL, 10) : 20000;
    static struct mr_record batch[1000];
    mr_name_id asset = name("plant/press/line1/press3");
    mr_name_id signal = name("temperature");
    static const char *const formats[] = {"json", "csv"};
    for (size_t k = 0; k < 2; k++) {
        struct out o;
        struct mr_err err = {0};
        char path[512];
        char yaml[1024];
        snprintf(path, sizeof(path), "%s/speed.%s", tmp, formats[k]);
        snprintf(yaml, sizeof(yaml), "path: %s\nformat: %s\nrotate_bytes: 0\n", path, formats[k]);
        assert_int_equal(out_open(&o, yaml, &err), 0);
        int64_t t0 = mr_clock_mono_ns();
        for (long i = 0; i < total;) {
            size_t n = 0;
            for (; n < 1000 && i < total; n++, i++) {
                batch[n] = (struct mr_record){.time_ns = T0 + i * 1000000LL,
                                              .asset = asset,
                                              .signal = signal,
                                              .type = MR_VALUE_F64,
                                              .v.f64 = 60.0 + (double)(i % 1000) / 64.0};
            }
            assert_int_equal(mr_output_file.output.write(o.ctx, batch, n, &err), MR_SINK_OK);
        }
        double s = (double)(mr_clock_mono_ns() - t0) / 1e9;
        print_message("%s: %ld records in %.3f s: %.0f records/s\n", formats[k], total, s,
                      (double)total / s);
        assert_int_equal(out_metric(&o, "millrace_records_out_total"), (uint64_t)total);
        out_close(&o);
        unlink(path);
    }
}

/* ---- flat JSON: chosen fields, typed tags, time_format --------------------------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_flat_fields(void **state)
{
    (void)state;
    static const struct {
        const char *time_format;
        const char *t0; /* T0 + 0.5 s as written */
    } cases[] = {
        {"\"%Y-%m-%d %H:%M:%S\"", "\"2026-11-24 16:49:00\""},
        {"rfc3339", "\"2026-11-24T16:49:00.500000000Z\""},
        {"unix_ms", "1795538940500"},
        {"unix_s", "1795538940.500000000"},
    };
    mr_name_id a = name("nab/series");
    mr_name_id v = name("value");
    struct mr_tag tags[3] = {
        {name("anomaly_score"), {"0.25", 4}},
        {name("alert"), {"true", 4}},
        {name("unit"), {"deg \"C\"", 7}},
    };
    struct mr_record recs[4] = {
        {.time_ns = T0 + 500000000,
         .asset = a,
         .signal = v,
         .type = MR_VALUE_F64,
         .v.f64 = 74.93588199999998,
         .ntags = 3},
        {.time_ns = T0,
         .asset = a,
         .signal = v,
         .type = MR_VALUE_I64,
         .v.i64 = -7,
         .quality = MR_QUALITY_BAD},
        {.time_ns = T0, .asset = a, .signal = v, .type = MR_VALUE_STRING, .v.str = {"a\"b\n", 4}},
        {.time_ns = T0, .asset = a, .signal = v, .type = MR_VALUE_F64, .v.f64 = NAN},
    };
    memcpy(recs[0].tags, tags, sizeof(tags));
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char path[512];
        char yaml[1024];
        char want[2048];
        snprintf(path, sizeof(path), "%s/flat%zu.jsonl", tmp, k);
        snprintf(yaml, sizeof(yaml),
                 "path: %s\nfields: [time, value, anomaly_score, alert, tags.unit, quality, "
                 "asset, missing]\ntime_format: %s\n",
                 path, cases[k].time_format);
        struct out o;
        struct mr_err err = {0};
        assert_int_equal(out_open(&o, yaml, &err), 0);
        out_write_ok(&o, recs, 1);
        out_close(&o);
        snprintf(want, sizeof(want),
                 "{\"time\":%s,\"value\":74.93588199999998,\"anomaly_score\":0.25,\"alert\":true,"
                 "\"unit\":\"deg \\\"C\\\"\",\"quality\":\"good\",\"asset\":\"nab/series\","
                 "\"missing\":null}\n",
                 cases[k].t0);
        assert_string_equal(slurp(path), want);
    }
    /* value types: integer, text (escaped), NaN (null); missing tags are null */
    char path[512];
    char yaml[1024];
    snprintf(path, sizeof(path), "%s/flat_types.jsonl", tmp);
    snprintf(yaml, sizeof(yaml), "path: %s\nfields: [value, quality, alert]\n", path);
    struct out o;
    struct mr_err err = {0};
    assert_int_equal(out_open(&o, yaml, &err), 0);
    out_write_ok(&o, recs + 1, 3);
    out_close(&o);
    assert_string_equal(slurp(path), "{\"value\":-7,\"quality\":\"bad\",\"alert\":null}\n"
                                     "{\"value\":\"a\\\"b\\u000a\",\"quality\":\"good\","
                                     "\"alert\":null}\n"
                                     "{\"value\":null,\"quality\":\"good\",\"alert\":null}\n");
}

static void test_flat_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *want;
    } cases[] = {
        {"path: /tmp/x\nformat: csv\nfields: [time, value]\n", "need format: json"},
        {"path: /tmp/x\nfields: [time]\ntime_format: hourly\n", "strftime"},
        {"path: /tmp/x\ntime_format: unix_ms\n", "set fields too"},
        {"path: /tmp/x\nfields: [time, \"\"]\n", "empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        static struct mr_config_errors errs;
        void *conf = calloc(1, mr_output_file.conf.size);
        assert_non_null(conf);
        int rc = mr_section_load_buffer(&mr_output_file.conf, conf, "out.yaml", cases[i].yaml,
                                        strlen(cases[i].yaml), NULL, &errs);
        bool found = false;
        for (size_t k = 0; k < errs.n; k++) {
            found |= strstr(errs.msg[k], cases[i].want) != NULL;
        }
        if (rc == 0 || !found) {
            fail_msg("case %zu: rc %d, %zu errors (first: %s), want '%s'", i, rc, errs.n,
                     errs.n > 0 ? errs.msg[0] : "-", cases[i].want);
        }
        mr_section_free(&mr_output_file.conf, conf);
        free(conf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_csv_round_trip),
        cmocka_unit_test(test_csv_append),
        cmocka_unit_test(test_rotate_bytes),
        cmocka_unit_test(test_rotate_age),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_too_large_and_fsync),
        cmocka_unit_test(test_failed_write_leaves_no_torn_line),
        cmocka_unit_test(test_speed),
        cmocka_unit_test(test_flat_fields),
        cmocka_unit_test(test_flat_config_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
