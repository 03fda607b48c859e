/* The `file` input on a real libuv loop: CSV edge cases (quotes, CRLF, missing cells, bad
 * times, wrong field counts, every time format and timezone), JSON lines in both layouts,
 * globs in name order, realtime pace, back-pressure without loss, follow, start and config
 * errors, and the speed of a large CSV (rows from MR_FILE_BENCH_ROWS, default 20000). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "inputs/file_parse.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/log.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "millrace/plugin.h"
#include "support/tmpdir.h"

extern const struct mr_plugin mr_input_file;

static char tmp[256];

static int setup(void **state)
{
    (void)state;
    return mr_test_tmpdir_create(tmp, sizeof(tmp), "mr_file_input");
}

static int teardown(void **state)
{
    (void)state;
    return mr_test_tmpdir_remove(tmp);
}

/* One run of the input and what its host saw. */
struct rig {
    void *conf;
    struct mr_names *names;
    struct mr_metrics *metrics;
    uv_loop_t loop;
    struct mr_input_host host;
    void *ctx;
    int refuse_every; /* answer MR_EAGAIN to every Nth emit (back-pressure), 0: never */
    size_t emit_calls;
    size_t records;
    bool render;      /* keep a text rendering of every record in out */
    double check_sum; /* of f64 values, when not rendering */
    int64_t last_ns;
    int ended, end_status, stopped;
    char *out;
    size_t out_used, out_cap;
    char log[8192];
    size_t log_used;
};

static void log_sink(enum mr_log_level level, const char *line, void *arg)
{
    struct rig *r = arg;
    (void)level;
    int w = snprintf(r->log + r->log_used, sizeof(r->log) - r->log_used, "%s\n", line);
    if (w > 0 && (size_t)w < sizeof(r->log) - r->log_used) {
        r->log_used += (size_t)w;
    }
}

static void out_append(struct rig *r, const char *s, size_t n)
{
    if (r->out_used + n + 1 > r->out_cap) {
        r->out_cap = (r->out_used + n + 1) * 2;
        r->out = realloc(r->out, r->out_cap);
        assert_non_null(r->out);
    }
    memcpy(r->out + r->out_used, s, n);
    r->out_used += n;
    r->out[r->out_used] = '\0';
}

/* RFC 3339 with the fraction's trailing zeros dropped: 2026-11-24T16:49:00.5Z */
static void time_short(int64_t ns, char *out, size_t cap)
{
    size_t n = mr_time_format_rfc3339(ns, out, cap);
    assert_true(n > 0);
    size_t dot = 19;
    size_t end = n - 1; /* the Z */
    while (end > dot + 1 && out[end - 1] == '0') {
        end--;
    }
    if (end == dot + 1) {
        end = dot;
    }
    out[end] = 'Z';
    out[end + 1] = '\0';
}

/* "TIME ASSET SIGNAL=VALUE QUALITY[ k=v;k=v]\n" */
static void render_record(struct rig *r, const struct mr_record *rec)
{
    char line[1024];
    char ts[40];
    char val[256];
    time_short(rec->time_ns, ts, sizeof(ts));
    switch (rec->type) {
    case MR_VALUE_F64:
        snprintf(val, sizeof(val), "%.17g", rec->v.f64);
        break;
    case MR_VALUE_I64:
        snprintf(val, sizeof(val), "%" PRId64 "i", rec->v.i64);
        break;
    case MR_VALUE_BOOL:
        snprintf(val, sizeof(val), "%s", rec->v.b ? "true" : "false");
        break;
    case MR_VALUE_STRING:
        snprintf(val, sizeof(val), "'%.*s'", (int)rec->v.str.len, rec->v.str.ptr);
        break;
    default:
        snprintf(val, sizeof(val), "samples[%u]", rec->v.samples.n);
    }
    int n =
        snprintf(line, sizeof(line), "%s %s %s=%s %s", ts, mr_names_str(r->names, rec->asset, NULL),
                 mr_names_str(r->names, rec->signal, NULL), val,
                 mr_quality_name((enum mr_quality)rec->quality));
    for (uint16_t i = 0; i < rec->ntags; i++) {
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%s=%.*s", i == 0 ? " " : ";",
                      mr_names_str(r->names, rec->tags[i].key, NULL), (int)rec->tags[i].value.len,
                      rec->tags[i].value.ptr);
    }
    n += snprintf(line + n, sizeof(line) - (size_t)n, "\n");
    out_append(r, line, (size_t)n);
}

static int host_emit(struct mr_input_host *host, const struct mr_record *recs, size_t n)
{
    struct rig *r = host->arg;
    r->emit_calls++;
    if (r->refuse_every > 0 && r->emit_calls % (size_t)r->refuse_every == 0) {
        return MR_EAGAIN;
    }
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        if (r->render) {
            render_record(r, &recs[i]);
        } else {
            assert_int_equal(recs[i].type, MR_VALUE_F64);
            r->check_sum += recs[i].v.f64;
            assert_true(recs[i].time_ns >= r->last_ns);
            r->last_ns = recs[i].time_ns;
        }
    }
    r->records += n;
    return 0;
}

static void host_ended(struct mr_input_host *host, int status)
{
    struct rig *r = host->arg;
    r->ended++;
    r->end_status = status;
    mr_input_file.input.stop(r->ctx);
}

static void host_stopped(struct mr_input_host *host)
{
    struct rig *r = host->arg;
    r->stopped++;
}

static void write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
    assert_int_equal(fclose(f), 0);
}

static int rig_load(struct rig *r, const char *yaml, struct mr_config_errors *errs)
{
    r->conf = calloc(1, mr_input_file.conf.size);
    assert_non_null(r->conf);
    return mr_section_load_buffer(&mr_input_file.conf, r->conf, "test.yaml", yaml, strlen(yaml),
                                  NULL, errs);
}

/* Configure and init (not start) an input. */
static void rig_init(struct rig *r, const char *yaml)
{
    static struct mr_config_errors errs;
    struct mr_err err = {0};
    memset(r, 0, sizeof(*r));
    r->render = true;
    int rc = rig_load(r, yaml, &errs);
    for (size_t i = 0; i < errs.n; i++) {
        print_message("config: %s\n", errs.msg[i]);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(mr_names_create(&r->names, 1 << 16, 1 << 22), 0);
    assert_int_equal(mr_metrics_create(&r->metrics), 0);
    assert_int_equal(uv_loop_init(&r->loop), 0);
    mr_log_set_sink(log_sink, r);
    r->host = (struct mr_input_host){.name = "inputs.in",
                                     .names = r->names,
                                     .metrics = r->metrics,
                                     .loop = &r->loop,
                                     .emit = host_emit,
                                     .ended = host_ended,
                                     .stopped = host_stopped,
                                     .arg = r};
    r->ctx = mr_calloc(1, mr_input_file.ctx_size);
    assert_non_null(r->ctx);
    rc = mr_input_file.input.init(r->ctx, r->conf, &r->host, &err);
    if (rc != 0) {
        print_message("init: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
}

/* Start; returns start's code (err filled). A failed start is stopped as the host would. */
static int rig_start(struct rig *r, struct mr_err *err)
{
    int rc = mr_input_file.input.start(r->ctx, err);
    if (rc != 0) {
        mr_input_file.input.stop(r->ctx);
    }
    return rc;
}

static void rig_destroy(struct rig *r)
{
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r->stopped, 1);
    mr_input_file.input.fini(r->ctx);
    mr_free(r->ctx);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    mr_log_set_sink(NULL, NULL);
    mr_metrics_destroy(r->metrics);
    mr_names_destroy(r->names);
    mr_section_free(&mr_input_file.conf, r->conf);
    free(r->conf);
    free(r->out);
}

/* Run to the natural end (end of data). */
static void rig_run(struct rig *r)
{
    struct mr_err err = {0};
    int rc = rig_start(r, &err);
    if (rc != 0) {
        print_message("start: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r->ended, 1);
    assert_int_equal(r->end_status, 0);
    assert_int_equal(r->stopped, 1);
}

static uint64_t metric(struct rig *r, const char *name)
{
    static char text[1 << 16];
    size_t needed = 0;
    char key[256];
    assert_true(mr_metrics_render(r->metrics, text, sizeof(text), &needed) > 0);
    snprintf(key, sizeof(key), "%s{instance=\"inputs.in\",plugin=\"file\"} ", name);
    const char *p = strstr(text, key);
    assert_non_null(p);
    return strtoull(p + strlen(key), NULL, 10);
}

/* ---- CSV, table-driven ------------------------------------------------------------------ */

#define T0  "2026-11-24T16:49:00Z"
#define T1  "2026-11-24T16:49:01Z"
#define T2  "2026-11-24T16:49:02Z"
#define T1L "2026-11-24T16:49:01"

struct csv_case {
    const char *name;
    const char *yaml; /* settings after path and format */
    const char *data;
    const char *want; /* rendered records */
    unsigned errors;
    const char *log; /* a substring of the log, or NULL */
};

static const struct csv_case csv_cases[] = {
    {"wide, every column a signal", "asset: p/l/m\n",
     "time,temp,pressure\n" T0 ",21.5,3.25\n" T1 ",22,-1e3\n",
     T0 " p/l/m temp=21.5 good\n" T0 " p/l/m pressure=3.25 good\n" T1 " p/l/m temp=22 good\n" T1
        " p/l/m pressure=-1000 good\n",
     0, NULL},
    {"CRLF line ends, blank lines, no line end at the end", "asset: a\n",
     "time,temp\r\n" T0 ",1.5\r\n\r\n  \r\n" T1 ",2.5",
     T0 " a temp=1.5 good\n" T1 " a temp=2.5 good\n", 0, NULL},
    {"quotes: delimiter, doubled quotes, line end inside, quoted number",
     "asset: a\ncolumns: {temp: temperature}\ntag_columns: [note]\n",
     "time,temp,note\n" T0 ",\"21.5\",\"a, \"\"quoted\"\" note\"\n" T1
     ",\" 7 \",\"two\nlines\"\nbad,1,x\n",
     T0 " a temperature=21.5 good note=a, \"quoted\" note\n" T1
        " a temperature=7 good note=two\nlines\n",
     1, "data.csv:5: cannot read time 'bad'"},
    {"text after a closing quote", "asset: a\n", "time,v\n" T0 ",\"1\"x\n" T1 ",2\n",
     T1 " a v=2 good\n", 1, "data.csv:2: text after a closing quote"},
    {"missing cells give no record; NaN neither", "asset: a\n",
     "time,a,b\n" T0 ",,2\n" T1 ",1,\n" T2 ",NaN, \n", T0 " a b=2 good\n" T1 " a a=1 good\n", 0,
     NULL},
    {"wrong field counts", "asset: a\n", "time,a,b\n" T0 ",1\n" T1 ",1,2,3\n" T2 ",5,6\n",
     T2 " a a=5 good\n" T2 " a b=6 good\n", 2, "data.csv:2: 2 fields where the header has 3"},
    {"bad and out-of-range times", "asset: a\n",
     "time,a\nyesterday,1\n2026-02-30T00:00:00Z,2\n" T0 ",3\n", T0 " a a=3 good\n", 2,
     "data.csv:3: cannot read time '2026-02-30T00:00:00Z' (time_format: rfc3339)"},
    {"strings and booleans", "asset: a\n", "time,state,ok,flag\n" T0 ",running,TRUE,false\n",
     T0 " a state='running' good\n" T0 " a ok=true good\n" T0 " a flag=false good\n", 0, NULL},
    {"asset and quality columns", "asset_column: machine\nquality_column: q\n",
     "machine,time,v,q\nm1," T0 ",1,good\nm2," T0 ",2,Uncertain\nm1," T1 ",3,\nm2," T1 ",4,meh\n",
     T0 " m1 v=1 good\n" T0 " m2 v=2 uncertain\n" T1 " m1 v=3 good\n", 1,
     "data.csv:5: quality 'meh' is not good, uncertain or bad"},
    {"empty asset cell", "asset_column: m\n", "time,m,v\n" T0 ",,1\n" T1 ",x,2\n",
     T1 " x v=2 good\n", 1, "data.csv:2: empty asset"},
    {"long layout with a tags cell",
     "asset_column: asset\nsignal_column: signal\nquality_column: quality\ntags_column: tags\n",
     "time,asset,signal,value,quality,tags\n" T0 ",a/b,temp,21.5,good,unit=degC;line=1\n" T1
     ",a/b,state,idle,bad,\"k\\;1=v\\=2;e=\"\n" T2 ",a/b,temp,1,good,nopair\n",
     T0 " a/b temp=21.5 good unit=degC;line=1\n" T1 " a/b state='idle' bad k;1=v=2;e=\n", 1,
     "data.csv:4: tags 'nopair' are not key=value pairs"},
    {"no header: columns by position",
     "header: false\ntime_column: 2\nasset: a\ncolumns: {'3': "
     "temp}\n",
     "x," T0 ",21.5\ny," T1 ",22.5\n", T0 " a temp=21.5 good\n" T1 " a temp=22.5 good\n", 0, NULL},
    {"semicolon delimiter", "asset: a\ndelimiter: ';'\n", "time;v;w\n" T0 ";1;\"2;3\"\n",
     T0 " a v=1 good\n" T0 " a w='2;3' good\n", 0, NULL},
    {"tab delimiter, blanks around cells", "asset: a\ndelimiter: tab\n",
     "time\tv\n" T0 "\t 1.25 \n", T0 " a v=1.25 good\n", 0, NULL},
    {"byte order mark, unnamed index column", "asset: a\n", "\xEF\xBB\xBF,time,v\n0," T0 ",1\n",
     T0 " a v=1 good\n", 0, NULL},
    {"unterminated quote at the end", "asset: a\n", "time,v\n" T0 ",1\n" T1 ",\"2\n",
     T0 " a v=1 good\n", 1, "data.csv:3: a quoted field is not closed"},
    {"timezone for times without an offset", "asset: a\ntimezone: '+01:00'\n",
     "time,v\n" T1L ",1\n" T1L "-05:00,2\n",
     "2026-11-24T15:49:01Z a v=1 good\n2026-11-24T21:49:01Z a v=2 good\n", 0, NULL},
};

static void run_csv_case(const struct csv_case *tc)
{
    struct rig r;
    char path[512];
    char yaml[2048];
    snprintf(path, sizeof(path), "%s/data.csv", tmp);
    write_file(path, tc->data);
    snprintf(yaml, sizeof(yaml), "path: %s\nformat: csv\n%s", path, tc->yaml);
    rig_init(&r, yaml);
    rig_run(&r);
    const char *got = r.out != NULL ? r.out : "";
    if (strcmp(got, tc->want) != 0 || metric(&r, "millrace_errors_total") != tc->errors ||
        (tc->log != NULL && strstr(r.log, tc->log) == NULL)) {
        print_message("case: %s\nwant:\n%sgot:\n%slog:\n%s", tc->name, tc->want, got, r.log);
        fail();
    }
    rig_destroy(&r);
}

static void test_csv_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(csv_cases) / sizeof(csv_cases[0]); i++) {
        run_csv_case(&csv_cases[i]);
    }
}

/* Every time format through a one-row CSV. */
struct time_case {
    const char *format;
    const char *timezone;
    const char *cell;
    const char *want; /* UTC, short form; NULL: the row is rejected */
};

static const struct time_case time_cases[] = {
    {"rfc3339", NULL, "2026-11-24T16:49:00.123Z", "2026-11-24T16:49:00.123Z"},
    {"rfc3339", NULL, "2026-11-24 16:49:00+01:00", "2026-11-24T15:49:00Z"},
    {"rfc3339", "-05:30", "2026-11-24T16:49:00.5", "2026-11-24T22:19:00.5Z"},
    {"rfc3339", NULL, "2026-11-24", NULL},
    {"unix_s", NULL, "1795538940", "2026-11-24T16:49:00Z"},
    {"unix_s", NULL, "1795538940.25", "2026-11-24T16:49:00.25Z"},
    {"unix_s", NULL, "1.79553894e9", "2026-11-24T16:49:00Z"},
    {"unix_s", "+01:00", "1795538940", "2026-11-24T16:49:00Z"}, /* epochs are UTC */
    {"unix_ms", NULL, "1795538940250", "2026-11-24T16:49:00.25Z"},
    {"unix_ms", NULL, "1795538940250.5", "2026-11-24T16:49:00.2505Z"},
    {"unix_us", NULL, "1795538940250001", "2026-11-24T16:49:00.250001Z"},
    {"unix_ns", NULL, "1795538940250000001", "2026-11-24T16:49:00.250000001Z"},
    {"unix_ns", NULL, "17955389402500000010", NULL},
    {"unix_s", NULL, "12abc", NULL},
    {"%Y-%m-%d %H:%M:%S", NULL, "2026-11-24 16:49:00", "2026-11-24T16:49:00Z"},
    {"%Y-%m-%d %H:%M:%S", NULL, "2026-11-24 16:49:00.123456", "2026-11-24T16:49:00.123456Z"},
    {"%Y-%m-%d %H:%M:%S", "+01:00", "2026-11-24 16:49:00,5", "2026-11-24T15:49:00.5Z"},
    {"%Y-%m-%d %H:%M:%S", "-0530", "2026-11-24 16:49:00", "2026-11-24T22:19:00Z"},
    {"%Y-%m-%d %H:%M:%S.%f", NULL, "2026-11-24 16:49:00.07", "2026-11-24T16:49:00.07Z"},
    {"%d/%m/%Y %I:%M:%S %p", NULL, "24/11/2026 04:49:00 PM", "2026-11-24T16:49:00Z"},
    {"%d/%m/%Y %I:%M:%S %p", NULL, "24/11/2026 12:05:00 am", "2026-11-24T00:05:00Z"},
    {"%m/%d/%y %H:%M", NULL, "1/2/27 3:04", "2027-01-02T03:04:00Z"},
    {"%Y%m%dT%H%M%S%z", "+05:00", "20261124T164900+0100", "2026-11-24T15:49:00Z"},
    {"%Y%m%dT%H%M%S%z", NULL, "20261124T164900Z", "2026-11-24T16:49:00Z"},
    {"%d-%b-%Y %T", NULL, "24-Nov-2026 16:49:00", "2026-11-24T16:49:00Z"},
    {"%d %B %Y %T", NULL, "24 november 2026 16:49:00", "2026-11-24T16:49:00Z"},
    {"%Y-%j %H:%M", NULL, "2026-328 16:49", "2026-11-24T16:49:00Z"},
    {"%F %T", NULL, "2024-02-29 23:59:59", "2024-02-29T23:59:59Z"},
    {"%F %T", NULL, "2026-02-29 00:00:00", NULL},
    {"%F %T", NULL, "2026-11-24 24:00:00", NULL},
    {"%F %T", NULL, "2026-11-24 16:49:00 extra", NULL},
};

static void test_time_formats(void **state)
{
    (void)state;
    char path[512];
    char yaml[1024];
    char data[256];
    snprintf(path, sizeof(path), "%s/times.csv", tmp);
    for (size_t i = 0; i < sizeof(time_cases) / sizeof(time_cases[0]); i++) {
        const struct time_case *tc = &time_cases[i];
        struct rig r;
        char want[128];
        snprintf(data, sizeof(data), "time,v\n\"%s\",1\n", tc->cell);
        write_file(path, data);
        snprintf(yaml, sizeof(yaml), "path: %s\nasset: a\ntime_format: \"%s\"\n%s%s%s", path,
                 tc->format, tc->timezone != NULL ? "timezone: \"" : "",
                 tc->timezone != NULL ? tc->timezone : "", tc->timezone != NULL ? "\"\n" : "");
        rig_init(&r, yaml);
        rig_run(&r);
        snprintf(want, sizeof(want), "%s a v=1 good\n", tc->want != NULL ? tc->want : "");
        const char *got = r.out != NULL ? r.out : "";
        bool ok = tc->want != NULL ? strcmp(got, want) == 0
                                   : got[0] == '\0' && metric(&r, "millrace_errors_total") == 1;
        if (!ok) {
            print_message("format %s, tz %s, cell '%s': want %sgot %s\nlog:\n%s", tc->format,
                          tc->timezone != NULL ? tc->timezone : "-", tc->cell, want, got, r.log);
            fail();
        }
        rig_destroy(&r);
    }
}

/* The parser pieces on their own: numbers exactly as strtod reads them, RFC 4180 splitting. */
static void test_parse_units(void **state)
{
    (void)state;
    const char *numbers[] = {"0",
                             "-0",
                             "21.5",
                             "0.1",
                             "3.14159265358979",
                             "1e-7",
                             "+2.50",
                             "123456789012345678",
                             "0.000000000000000000001",
                             "1E300",
                             "-4.9e-324",
                             "98765.4321"};
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        double v = -1;
        assert_int_equal(mr_number_parse(numbers[i], strlen(numbers[i]), &v), 0);
        assert_true(v == strtod(numbers[i], NULL));
    }
    const char *not_numbers[] = {"", " ", "abc", "1.2.3", "0x10", "1e", "--1", "12abc"};
    for (size_t i = 0; i < sizeof(not_numbers) / sizeof(not_numbers[0]); i++) {
        double v;
        assert_int_equal(mr_number_parse(not_numbers[i], strlen(not_numbers[i]), &v), MR_EPARSE);
    }
    double v;
    assert_int_equal(mr_number_parse("nan", 3, &v), 1);
    assert_int_equal(mr_number_parse("-inf", 4, &v), 1);

    static struct mr_csv_row row;
    const char *text = "a,\"b,\"\"c\"\"\",,\"\"\r\nnext";
    assert_int_equal(mr_csv_split(text, strlen(text), false, ',', &row), 0);
    assert_int_equal(row.nfields, 4);
    assert_int_equal(row.consumed, strlen("a,\"b,\"\"c\"\"\",,\"\"\r\n"));
    char out[32];
    long n = mr_csv_unescape(&row.fields[1], out, sizeof(out));
    assert_int_equal(n, 5);
    assert_memory_equal(out, "b,\"c\"", 5);
    assert_true(row.fields[3].quoted && row.fields[3].len == 0);
    /* Incomplete rows wait for more data, except at the end of the file. */
    assert_int_equal(mr_csv_split("a,b", 3, false, ',', &row), MR_CSV_MORE);
    assert_int_equal(mr_csv_split("a,\"b\n", 5, false, ',', &row), MR_CSV_MORE);
    assert_int_equal(mr_csv_split("a,\"b\"", 5, false, ',', &row), MR_CSV_MORE);
    assert_int_equal(mr_csv_split("a,b\r", 4, false, ',', &row), MR_CSV_MORE);
    assert_int_equal(mr_csv_split("a,b", 3, true, ',', &row), 0);
    assert_int_equal(row.nfields, 2);
}

/* ---- JSON lines ------------------------------------------------------------------------- */

static void test_json_records(void **state)
{
    (void)state;
    struct rig r;
    char path[512];
    char yaml[1024];
    snprintf(path, sizeof(path), "%s/recs.jsonl", tmp);
    write_file(path, "{\"time\":\"" T0 "\",\"asset\":\"a/b\",\"signal\":\"temp\",\"value\":21.5,"
                     "\"tags\":{\"unit\":\"degC\"}}\n"
                     "\n"
                     "{\"time\":\"" T1 "\",\"asset\":\"a/b\",\"signal\":\"count\",\"value\":7,"
                     "\"quality\":\"bad\"}\r\n"
                     "{\"time\": broken\n"
                     "{\"time\":\"" T2 "\",\"asset\":\"a/b\",\"signal\":\"s\",\"value\":\"x\"}");
    snprintf(yaml, sizeof(yaml), "path: %s\nformat: json\n", path);
    rig_init(&r, yaml);
    rig_run(&r);
    assert_string_equal(r.out, T0 " a/b temp=21.5 good unit=degC\n" T1 " a/b count=7i bad\n" T2
                                  " a/b s='x' good\n");
    assert_int_equal(metric(&r, "millrace_errors_total"), 1);
    assert_int_equal(metric(&r, "millrace_records_in_total"), 4);
    assert_int_equal(metric(&r, "millrace_records_out_total"), 3);
    assert_non_null(strstr(r.log, "recs.jsonl:4: "));
    rig_destroy(&r);
}

static void test_json_flat(void **state)
{
    (void)state;
    struct rig r;
    char path[512];
    char yaml[1024];
    snprintf(path, sizeof(path), "%s/flat.jsonl", tmp);
    write_file(path, "{\"ts\":1795538940,\"machine\":\"m1\",\"T\":21.5,\"P\":3,\"batch\":\"B7\","
                     "\"other\":[1]}\n"
                     "{\"ts\":1795538941.5,\"machine\":\"m2\",\"T\":null,\"P\":true}\n"
                     "{\"machine\":\"m1\",\"T\":1}\n"
                     "{\"ts\":1795538942,\"machine\":\"m1\",\"T\":{\"x\":1}}\n"
                     "[1,2]\n"
                     "{\"ts\":1795538943,\"machine\":\"m1\",\"T\":\"hot\",\"batch\":12}\n");
    snprintf(yaml, sizeof(yaml),
             "path: %s\nformat: json\ntime_column: ts\ntime_format: unix_s\n"
             "asset_column: machine\ncolumns: {T: temperature, P: pressure}\n"
             "tag_columns: [batch]\n",
             path);
    rig_init(&r, yaml);
    rig_run(&r);
    assert_string_equal(r.out, T0 " m1 temperature=21.5 good batch=B7\n" T0
                                  " m1 pressure=3 good batch=B7\n"
                                  "2026-11-24T16:49:01.5Z m2 pressure=true good\n"
                                  "2026-11-24T16:49:03Z m1 temperature='hot' good batch=12\n");
    assert_int_equal(metric(&r, "millrace_errors_total"), 3);
    assert_non_null(strstr(r.log, "flat.jsonl:3: no \"ts\" field"));
    assert_non_null(strstr(r.log, "flat.jsonl:4: a mapped field holds an object"));
    assert_non_null(strstr(r.log, "flat.jsonl:5: not a JSON object"));
    rig_destroy(&r);

    /* Long layout: the signal named in a field, its value in another, tags as k=v pairs. */
    write_file(path, "{\"time\":\"" T0 "\",\"sig\":\"temp\",\"val\":21.5,\"tags\":\"u=C\"}\n"
                     "{\"time\":\"" T1 "\",\"sig\":\"state\",\"val\":\"run\",\"q\":\"bad\"}\n"
                     "{\"time\":\"" T2 "\",\"val\":1}\n");
    snprintf(yaml, sizeof(yaml),
             "path: %s\nformat: json\nasset: a\nsignal_column: sig\nvalue_column: val\n"
             "quality_column: q\ntags_column: tags\n",
             path);
    rig_init(&r, yaml);
    rig_run(&r);
    assert_string_equal(r.out, T0 " a temp=21.5 good u=C\n" T1 " a state='run' bad\n");
    assert_int_equal(metric(&r, "millrace_errors_total"), 1);
    assert_non_null(strstr(r.log, "flat.jsonl:3: empty signal"));
    rig_destroy(&r);
}

/* ---- files ------------------------------------------------------------------------------ */

/* A glob reads its files in name order; a later file with a bad header is skipped. */
static void test_glob_order(void **state)
{
    (void)state;
    struct rig r;
    char path[512];
    char yaml[1024];
    snprintf(path, sizeof(path), "%s/b.csv", tmp);
    write_file(path, "time,v\n" T1 ",2\n");
    snprintf(path, sizeof(path), "%s/a.csv", tmp);
    write_file(path, "time,v\n" T0 ",1");
    snprintf(path, sizeof(path), "%s/c.csv", tmp);
    write_file(path, "when,v\n" T2 ",3\n");
    snprintf(path, sizeof(path), "%s/d.csv", tmp);
    write_file(path, "");
    snprintf(yaml, sizeof(yaml), "path: %s/?.csv\nasset: a\n", tmp);
    rig_init(&r, yaml);
    rig_run(&r);
    assert_string_equal(r.out, T0 " a v=1 good\n" T1 " a v=2 good\n");
    assert_int_equal(metric(&r, "millrace_errors_total"), 1);
    assert_non_null(strstr(r.log, "c.csv: has no column 'time' (time_column); file skipped"));
    rig_destroy(&r);
    for (const char *n = "abcd"; *n != '\0'; n++) {
        snprintf(path, sizeof(path), "%s/%c.csv", tmp, *n);
        unlink(path);
    }
}

/* Problems visible at start fail start() with the path in the message. */
static void test_start_errors(void **state)
{
    (void)state;
    char path[512];
    char yaml[1024];
    char dir[300];
    snprintf(path, sizeof(path), "%s/hdr.csv", tmp);
    write_file(path, "time,temp\n" T0 ",1\n");
    snprintf(dir, sizeof(dir), "%s/adir", tmp);
    assert_int_equal(mkdir(dir, 0755), 0);
    struct {
        const char *yaml_fmt;
        const char *arg;
        const char *want;
    } cases[] = {
        {"path: %s/missing.csv\nasset: a\n", tmp, "missing.csv: cannot open: No such file"},
        {"path: %s/nothing-*.csv\nasset: a\n", tmp, "no file matches"},
        {"path: %s\nasset: a\ncolumns: {pressure: p}\n", path,
         "hdr.csv: has no column 'pressure' (columns)"},
        {"path: %s\nasset_column: machine\n", path, "has no column 'machine' (asset_column)"},
        {"path: %s\nasset: a\ntag_columns: [batch]\n", path, "no column 'batch' (tag_columns)"},
        {"path: %s\nasset: a\nheader: false\ntime_column: 1\ncolumns: {'3': x}\n", path,
         "has no column '3' (columns); with header: false, columns are numbered from 1"},
        {"path: %s\nasset: a\n", dir, "adir: not a regular file"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rig r;
        struct mr_err err = {0};
        snprintf(yaml, sizeof(yaml), cases[i].yaml_fmt, cases[i].arg);
        rig_init(&r, yaml);
        assert_true(rig_start(&r, &err) < 0);
        if (strstr(err.msg, cases[i].want) == NULL) {
            print_message("want '%s' in '%s'\n", cases[i].want, err.msg);
            fail();
        }
        rig_destroy(&r);
        assert_int_equal(r.ended, 0);
    }
    rmdir(dir);
}

/* Configuration mistakes are caught when the file is loaded, naming the key. */
static void test_config_errors(void **state)
{
    (void)state;
    struct {
        const char *yaml;
        const char *want;
    } cases[] = {
        {"path: x.csv\n", "set exactly one of asset"},
        {"path: x.csv\nasset: a\nasset_column: m\n", "set exactly one of asset"},
        {"path: x.csv\nasset: a\ntime_format: \"%Y-%Q\"\n", "unknown directive %Q"},
        {"path: x.csv\nasset: a\ntime_format: epoch\n", "'epoch' is neither rfc3339"},
        {"path: x.csv\nasset: a\ntimezone: CET\n", "timezone 'CET' is not an offset"},
        {"path: x.csv\nasset: a\ndelimiter: ';;'\n", "delimiter"},
        {"path: x.csv\nasset: a\nheader: false\n", "with header: false, name columns by position"},
        {"path: x.jsonl\nformat: json\nasset: a\n", "name their own asset"},
        {"path: x.csv\nasset: a\nsignal_column: s\ncolumns: {a: b}\n", "not both"},
        {"path: x.csv\nasset: a\npace: slow\n", "pace"},
        {"path: x.csv\nasset: a\nspeed: 0\n", "speed"},
        {"asset: a\n", "path"},
    };
    struct mr_err err = {0};
    assert_int_equal(mr_section_validate(&mr_input_file.conf, "inputs.x", &err), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        static struct mr_config_errors errs;
        struct rig r;
        memset(&r, 0, sizeof(r));
        assert_int_equal(rig_load(&r, cases[i].yaml, &errs), MR_ECONFIG);
        bool found = false;
        for (size_t k = 0; k < errs.n; k++) {
            found = found || strstr(errs.msg[k], cases[i].want) != NULL;
        }
        if (!found) {
            print_message("want '%s' for:\n%s", cases[i].want, cases[i].yaml);
            for (size_t k = 0; k < errs.n; k++) {
                print_message("  got: %s\n", errs.msg[k]);
            }
            fail();
        }
        free(r.conf);
    }
}

/* A line longer than max_line is skipped; the lines after it are read. */
static void test_overlong_line(void **state)
{
    (void)state;
    struct rig r;
    char path[512];
    char yaml[1024];
    static char data[4096];
    char big[600];
    memset(big, '9', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(data, sizeof(data), "time,v\n" T0 ",1\n" T1 ",%s\n" T2 ",3\n", big);
    snprintf(path, sizeof(path), "%s/long.csv", tmp);
    write_file(path, data);
    snprintf(yaml, sizeof(yaml), "path: %s\nasset: a\nmax_line: 256B\n", path);
    rig_init(&r, yaml);
    rig_run(&r);
    assert_string_equal(r.out, T0 " a v=1 good\n" T2 " a v=3 good\n");
    assert_int_equal(metric(&r, "millrace_errors_total"), 1);
    assert_non_null(strstr(r.log, "long.csv:3: longer than max_line"));
    rig_destroy(&r);
}

/* ---- pace, back-pressure, follow -------------------------------------------------------- */

/* 2 s of data at speed 20 takes about 100 ms: never less, and not seconds. */
static void test_realtime_pace(void **state)
{
    (void)state;
    struct rig r;
    char path[512];
    char yaml[1024];
    static char data[8192];
    size_t used = (size_t)snprintf(data, sizeof(data), "time,v\n");
    for (int i = 0; i <= 20; i++) {
        used += (size_t)snprintf(data + used, sizeof(data) - used, "2026-11-24T16:49:%02d.%dZ,%d\n",
                                 i / 10, (i % 10), i);
    }
    snprintf(path, sizeof(path), "%s/paced.csv", tmp);
    write_file(path, data);
    snprintf(yaml, sizeof(yaml), "path: %s\nasset: a\npace: realtime\nspeed: 20\n", path);
    rig_init(&r, yaml);
    int64_t t0 = mr_clock_mono_ns();
    rig_run(&r);
    int64_t ms = (mr_clock_mono_ns() - t0) / 1000000;
    print_message("2 s of data at speed 20 took %" PRId64 " ms\n", ms);
    assert_int_equal(r.records, 21);
    assert_true(ms >= 95);
    assert_true(ms < 1500);
    assert_true(r.emit_calls >= 10); /* records go out as they fall due, not all at the end */
    rig_destroy(&r);
}

/* The host refuses every other batch: every record still arrives once, in order. */
static void test_backpressure(void **state)
{
    (void)state;
    struct rig r;
    char path[512];
    char yaml[1024];
    snprintf(path, sizeof(path), "%s/bp.csv", tmp);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "time,v\n");
    for (int i = 0; i < 5000; i++) {
        fprintf(f, "%d,%d\n", 1795538940 + i, i);
    }
    fclose(f);
    snprintf(yaml, sizeof(yaml), "path: %s\nasset: a\ntime_format: unix_s\nbatch: 100\n", path);
    rig_init(&r, yaml);
    r.render = false;
    r.refuse_every = 2;
    rig_run(&r);
    assert_int_equal(r.records, 5000);
    assert_true(r.check_sum == 4999.0 * 5000.0 / 2.0);
    assert_true(r.emit_calls >= 100);
    assert_int_equal(metric(&r, "millrace_records_out_total"), 5000);
    rig_destroy(&r);
}

struct follow_state {
    struct rig *r;
    char path[512];
    int ticks;
    bool appended;
};

static void follow_tick(uv_timer_t *t)
{
    struct follow_state *fs = t->data;
    fs->ticks++;
    if (!fs->appended && fs->r->records == 2) {
        FILE *f = fopen(fs->path, "a");
        assert_non_null(f);
        fputs(",2\n", f); /* completes the partial last line */
        fclose(f);
        fs->appended = true;
    }
    if (fs->r->records == 4 || fs->ticks > 150) {
        mr_input_file.input.stop(fs->r->ctx);
        uv_close((uv_handle_t *)t, NULL);
    }
}

/* follow: lines appended later are read; a partial last line waits for its end. */
static void test_follow(void **state)
{
    (void)state;
    struct rig r;
    struct follow_state fs = {.r = &r};
    char yaml[1024];
    struct mr_err err = {0};
    snprintf(fs.path, sizeof(fs.path), "%s/follow.csv", tmp);
    write_file(fs.path, "time,v,w\n" T0 ",1,1\n" T1 ",2");
    snprintf(yaml, sizeof(yaml), "path: %s\nasset: a\nfollow: true\n", fs.path);
    rig_init(&r, yaml);
    assert_int_equal(rig_start(&r, &err), 0);
    uv_timer_t t;
    uv_timer_init(&r.loop, &t);
    t.data = &fs;
    uv_timer_start(&t, follow_tick, 20, 20);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.ended, 0);
    assert_string_equal(r.out, T0 " a v=1 good\n" T0 " a w=1 good\n" T1 " a v=2 good\n" T1
                                  " a w=2 good\n");
    rig_destroy(&r);
}

/* The sample data shipped in examples/data (used by examples/file_replay.yaml). */
static void test_example_data(void **state)
{
    (void)state;
    struct rig r;
    char yaml[1024];
    const char *root = getenv("MR_ROOT");
    snprintf(yaml, sizeof(yaml),
             "path: %s/examples/data/press3.csv\nasset: plant/press/line1/press3\n"
             "tag_columns: [batch_id]\n",
             root != NULL ? root : ".");
    rig_init(&r, yaml);
    rig_run(&r);
    assert_int_equal(r.records, 720);
    assert_int_equal(metric(&r, "millrace_errors_total"), 0);
    assert_int_equal(
        strncmp(r.out,
                "2026-11-24T06:00:00Z plant/press/line1/press3 temperature=61.049999999999997 "
                "good batch_id=B-1041\n",
                90),
        0);
    assert_non_null(strstr(r.out, "2026-11-24T06:05:59Z plant/press/line1/press3 pressure="));
    assert_non_null(strstr(r.out, "batch_id=B-1042\n"));
    assert_non_null(strstr(r.out, "batch_id=B-1043\n"));
    rig_destroy(&r);
}

/* ---- speed ------------------------------------------------------------------------------ */

/* Lines and values per second for a wide CSV (MR_FILE_BENCH_ROWS rows; a release build
 * measures what the report quotes). */
static void test_speed(void **state)
{
    (void)state;
    const char *env = getenv("MR_FILE_BENCH_ROWS");
    long rows = env != NULL ? strtol(env, NULL, 10) : 20000;
    char path[512];
    char yaml[1024];
    snprintf(path, sizeof(path), "%s/big.csv", tmp);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "time,temperature,pressure,speed\n");
    for (long i = 0; i < rows; i++) {
        fprintf(f, "2026-11-24T%02ld:%02ld:%02ld.%03ldZ,%ld.%02ld,%ld.%03ld,%ld\n",
                (i / 3600000) % 24, (i / 60000) % 60, (i / 1000) % 60, i % 1000, 60 + i % 7,
                i % 100, 3 + i % 2, i % 1000, 1200 + i % 50);
    }
    fclose(f);
    snprintf(yaml, sizeof(yaml), "path: %s\nasset: plant/press/line1/press3\n", path);
    struct rig r;
    rig_init(&r, yaml);
    r.render = false;
    int64_t t0 = mr_clock_mono_ns();
    rig_run(&r);
    double s = (double)(mr_clock_mono_ns() - t0) / 1e9;
    print_message("%ld rows, %zu values in %.3f s: %.0f lines/s, %.0f values/s\n", rows, r.records,
                  s, (double)rows / s, (double)r.records / s);
    assert_int_equal(r.records, (size_t)rows * 3);
    assert_int_equal(metric(&r, "millrace_errors_total"), 0);
    rig_destroy(&r);

    /* The same values as millrace record JSON lines (jansson per line: slower by design). */
    long lines = rows * 3 / 10;
    f = fopen(path, "w");
    assert_non_null(f);
    for (long i = 0; i < lines; i++) {
        fprintf(f,
                "{\"time\":\"2026-11-24T16:49:00.%09ldZ\",\"asset\":\"plant/press/line1/press3\","
                "\"signal\":\"temperature\",\"value\":%ld.5,\"quality\":\"good\"}\n",
                i % 1000000000, i % 100);
    }
    fclose(f);
    snprintf(yaml, sizeof(yaml), "path: %s\nformat: json\n", path);
    rig_init(&r, yaml);
    r.render = false;
    t0 = mr_clock_mono_ns();
    rig_run(&r);
    s = (double)(mr_clock_mono_ns() - t0) / 1e9;
    print_message("%ld record JSON lines in %.3f s: %.0f lines/s\n", lines, s, (double)lines / s);
    assert_int_equal(r.records, (size_t)lines);
    rig_destroy(&r);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_cases),     cmocka_unit_test(test_time_formats),
        cmocka_unit_test(test_parse_units),   cmocka_unit_test(test_json_records),
        cmocka_unit_test(test_json_flat),     cmocka_unit_test(test_glob_order),
        cmocka_unit_test(test_start_errors),  cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_overlong_line), cmocka_unit_test(test_realtime_pace),
        cmocka_unit_test(test_backpressure),  cmocka_unit_test(test_follow),
        cmocka_unit_test(test_example_data),  cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
