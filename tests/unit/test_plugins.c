/* The stdin input and the stdout output, built from a YAML config and run on a real libuv loop:
 * JSON lines go through a pipe (or a file) into the input, whose host hands every batch to the
 * output, which writes into another pipe. Checks the exact lines out, the error counter, the
 * logged line numbers, back-pressure and a clean exit of the loop at end of data. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "millrace/alloc.h"
#include "millrace/config.h"
#include "millrace/log.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "millrace/plugin.h"

/* One run: a config, an input instance, an output instance and what the host saw. */
struct rig {
    struct mr_config *cfg;
    struct mr_names *names;
    struct mr_metrics *metrics;
    uv_loop_t loop;
    struct mr_input_host in_host;
    struct mr_output_host out_host;
    const struct mr_plugin_conf *in;
    const struct mr_plugin_conf *out;
    void *in_ctx;
    void *out_ctx;
    int out_pipe[2];
    int refuse; /* answer MR_EAGAIN to this many emits first (back-pressure) */
    size_t emits;
    size_t records;
    int ended;
    int end_status;
    int stopped;
    char log[4096];
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

static int host_emit(struct mr_input_host *host, const struct mr_record *recs, size_t n)
{
    struct rig *r = host->arg;
    struct mr_err err = {0};
    if (r->refuse > 0) {
        r->refuse--;
        return MR_EAGAIN;
    }
    r->emits++;
    r->records += n;
    int rc = r->out->plugin->output.write(r->out_ctx, recs, n, &err);
    assert_int_equal(rc, MR_SINK_OK);
    return 0;
}

static void host_ended(struct mr_input_host *host, int status)
{
    struct rig *r = host->arg;
    r->ended++;
    r->end_status = status;
    r->in->plugin->input.stop(r->in_ctx);
}

static void host_stopped(struct mr_input_host *host)
{
    struct rig *r = host->arg;
    r->stopped++;
}

/* Build everything from yaml; the output writes into r->out_pipe. */
static void rig_start(struct rig *r, const char *yaml, const char *const *sets, size_t nsets)
{
    static struct mr_config_errors errs;
    struct mr_err err = {0};
    memset(r, 0, sizeof(*r));
    assert_int_equal(pipe(r->out_pipe), 0);
    char out_fd[64];
    snprintf(out_fd, sizeof(out_fd), "outputs.out.fd=%d", r->out_pipe[1]);
    const char *all[8] = {out_fd};
    for (size_t i = 0; i < nsets; i++) {
        all[i + 1] = sets[i];
    }
    struct mr_config_opts opts = {.sets = all, .nsets = nsets + 1};
    int rc = mr_config_load_buffer(&r->cfg, "rig.yaml", yaml, strlen(yaml), &opts, &errs);
    for (size_t i = 0; i < errs.n; i++) {
        print_message("config: %s\n", errs.msg[i]);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(r->cfg->inputs.n, 1);
    assert_int_equal(r->cfg->outputs.n, 1);
    r->in = &r->cfg->inputs.items[0];
    r->out = &r->cfg->outputs.items[0];
    assert_int_equal(mr_names_create(&r->names, 1024, 1 << 16), 0);
    assert_int_equal(mr_metrics_create(&r->metrics), 0);
    assert_int_equal(uv_loop_init(&r->loop), 0);
    mr_log_set_sink(log_sink, r);

    r->out_host = (struct mr_output_host){
        .name = r->out->path, .names = r->names, .metrics = r->metrics, .arg = r};
    r->out_ctx = mr_calloc(1, r->out->plugin->ctx_size);
    assert_non_null(r->out_ctx);
    rc = r->out->plugin->output.init(r->out_ctx, r->out->conf, &r->out_host, &err);
    assert_int_equal(rc, 0);

    r->in_host = (struct mr_input_host){.name = r->in->path,
                                        .names = r->names,
                                        .metrics = r->metrics,
                                        .loop = &r->loop,
                                        .emit = host_emit,
                                        .ended = host_ended,
                                        .stopped = host_stopped,
                                        .arg = r};
    r->in_ctx = mr_calloc(1, r->in->plugin->ctx_size);
    assert_non_null(r->in_ctx);
    rc = r->in->plugin->input.init(r->in_ctx, r->in->conf, &r->in_host, &err);
    if (rc != 0) {
        print_message("init: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    rc = r->in->plugin->input.start(r->in_ctx, &err);
    assert_int_equal(rc, 0);
}

/* Run the loop to its natural end (it must end: EOF stops the input), tear everything down and
 * return what the output wrote (heap, caller frees). */
static char *rig_finish(struct rig *r)
{
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r->ended, 1);
    assert_int_equal(r->stopped, 1);
    r->in->plugin->input.fini(r->in_ctx);
    r->out->plugin->output.fini(r->out_ctx);
    mr_free(r->in_ctx);
    mr_free(r->out_ctx);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    mr_log_set_sink(NULL, NULL);

    close(r->out_pipe[1]);
    size_t cap = 1 << 16;
    size_t used = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    ssize_t n;
    while ((n = read(r->out_pipe[0], out + used, cap - used - 1)) > 0) {
        used += (size_t)n;
    }
    out[used] = '\0';
    close(r->out_pipe[0]);
    return out;
}

static void rig_destroy(struct rig *r)
{
    mr_metrics_destroy(r->metrics);
    mr_names_destroy(r->names);
    mr_config_destroy(r->cfg);
}

static void assert_metric(struct rig *r, const char *line)
{
    static char text[1 << 16];
    size_t needed = 0;
    assert_true(mr_metrics_render(r->metrics, text, sizeof(text), &needed) > 0);
    if (strstr(text, line) == NULL) {
        print_message("metrics:\n%s\nmissing: %s\n", text, line);
        fail();
    }
}

static void write_all(int fd, const char *s)
{
    size_t len = strlen(s);
    assert_int_equal(write(fd, s, len), (ssize_t)len);
}

#define REC1                                                                                       \
    "{\"time\":\"2026-11-24T16:49:00.123456789Z\",\"asset\":\"plant/press/line1/press3\","         \
    "\"signal\":\"temp\",\"value\":21.5,\"quality\":\"good\",\"tags\":{\"unit\":\"degC\"}}"
#define REC2                                                                                       \
    "{\"time\":\"2026-11-24T16:49:01.000000000Z\",\"asset\":\"plant/press/line1/press3\","         \
    "\"signal\":\"state\",\"value\":\"running\",\"quality\":\"good\"}"
#define REC3                                                                                       \
    "{\"time\":\"2026-11-24T16:49:02.000000000Z\",\"asset\":\"plant/press/line1/press3\","         \
    "\"signal\":\"count\",\"value\":1042,\"quality\":\"uncertain\"}"
#define REC4                                                                                       \
    "{\"time\":\"2026-11-24T16:49:03.000000000Z\",\"asset\":\"plant/press/line1/press3\","         \
    "\"signal\":\"ok\",\"value\":true,\"quality\":\"bad\"}"

static const char json_yaml[] = "inputs:\n"
                                "  in: {type: stdin, format: json, batch: 2}\n"
                                "outputs:\n"
                                "  out: {type: stdout}\n";

/* Lines through a pipe; two malformed ones are skipped and counted; the last line has no
 * newline; the host refuses the first batch once (back-pressure). */
static void test_pipe_json(void **state)
{
    (void)state;
    struct rig r;
    int in_pipe[2];
    assert_int_equal(pipe(in_pipe), 0);
    char fd_set[64];
    snprintf(fd_set, sizeof(fd_set), "inputs.in.fd=%d", in_pipe[0]);
    const char *sets[] = {fd_set};
    rig_start(&r, json_yaml, sets, 1);
    r.refuse = 1;
    close(in_pipe[0]); /* the input reads its own duplicate */
    write_all(in_pipe[1], REC1
              "\n"
              "{\"time\": broken\n"
              "\n" REC2 "\r\n"
              "{\"time\":1,\"asset\":\"a\",\"signal\":\"s\",\"value\":1,\"qualty\":\"good\"}\n" REC3
              "\n" REC4);
    close(in_pipe[1]);
    char *out = rig_finish(&r);
    assert_string_equal(out, REC1 "\n" REC2 "\n" REC3 "\n" REC4 "\n");
    assert_int_equal(r.end_status, 0);
    assert_int_equal(r.records, 4);
    assert_true(r.emits >= 2); /* batch: 2 */
    assert_metric(&r, "millrace_errors_total{instance=\"inputs.in\",plugin=\"stdin\"} 2");
    assert_metric(&r, "millrace_records_in_total{instance=\"inputs.in\",plugin=\"stdin\"} 6");
    assert_metric(&r, "millrace_records_out_total{instance=\"inputs.in\",plugin=\"stdin\"} 4");
    assert_metric(&r, "millrace_records_out_total{instance=\"outputs.out\",plugin=\"stdout\"} 4");
    assert_metric(&r, "millrace_errors_total{instance=\"outputs.out\",plugin=\"stdout\"} 0");
    print_message("log:\n%s", r.log);
    assert_non_null(strstr(r.log, "[inputs.in] line 2: "));
    assert_non_null(strstr(r.log, "[inputs.in] line 5: "));
    assert_non_null(strstr(r.log, "qualty"));
    free(out);
    rig_destroy(&r);
}

/* A regular file goes through the uv_fs_read path; plain numbers with format: value; an
 * overlong line is skipped without losing the lines after it. */
static void test_file_values(void **state)
{
    (void)state;
    struct rig r;
    char path[] = "/tmp/millrace-test-plugins-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char line[200];
    memset(line, '9', sizeof(line) - 2);
    line[sizeof(line) - 2] = '\n';
    line[sizeof(line) - 1] = '\0';
    write_all(fd, "21.5\n  -3e2 \nabc\n");
    write_all(fd, line);
    write_all(fd, "7\n");
    close(fd);
    char path_set[128];
    snprintf(path_set, sizeof(path_set), "inputs.in.path=%s", path);
    const char *sets[] = {path_set};
    rig_start(&r,
              "inputs:\n"
              "  in:\n"
              "    type: stdin\n"
              "    format: value\n"
              "    asset: plant/press/line1/press3\n"
              "    signal: temp\n"
              "    max_line: 64B\n"
              "outputs:\n"
              "  out: {type: stdout}\n",
              sets, 1);
    char *out = rig_finish(&r);
    unlink(path);
    print_message("out:\n%s", out);
    assert_int_equal(r.records, 3);
    const char *values[] = {"\"value\":21.5,", "\"value\":-300.0,", "\"value\":7.0,"};
    const char *p = out;
    for (size_t i = 0; i < 3; i++) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char one[512];
        snprintf(one, sizeof(one), "%.*s", (int)(nl - p), p);
        assert_non_null(strstr(one, "\"asset\":\"plant/press/line1/press3\",\"signal\":\"temp\""));
        assert_non_null(strstr(one, values[i]));
        assert_non_null(strstr(one, "\"quality\":\"good\"}"));
        p = nl + 1;
    }
    assert_string_equal(p, "");
    assert_metric(&r, "millrace_errors_total{instance=\"inputs.in\",plugin=\"stdin\"} 2");
    assert_non_null(strstr(r.log, "line 3: expected a number"));
    assert_non_null(strstr(r.log, "line 4: longer than max_line"));
    free(out);
    rig_destroy(&r);
}

/* Stopping an input that is waiting for data (idle pipe, no EOF) ends the loop cleanly. */
static void stop_cb(uv_timer_t *t)
{
    struct rig *r = t->data;
    r->in->plugin->input.stop(r->in_ctx);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_stop_idle(void **state)
{
    (void)state;
    struct rig r;
    int in_pipe[2];
    assert_int_equal(pipe(in_pipe), 0);
    char fd_set[64];
    snprintf(fd_set, sizeof(fd_set), "inputs.in.fd=%d", in_pipe[0]);
    const char *sets[] = {fd_set};
    rig_start(&r, json_yaml, sets, 1);
    write_all(in_pipe[1], REC1 "\n");
    uv_timer_t t;
    uv_timer_init(&r.loop, &t);
    t.data = &r;
    uv_timer_start(&t, stop_cb, 50, 0);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.stopped, 1);
    assert_int_equal(r.ended, 0);
    r.ended = 1; /* rig_finish expects an end; this one was stopped instead */
    char *out = rig_finish(&r);
    assert_string_equal(out, REC1 "\n");
    close(in_pipe[0]);
    close(in_pipe[1]);
    free(out);
    rig_destroy(&r);
}

/* Bad descriptors and paths fail init with a message, not a crash. */
static void test_init_errors(void **state)
{
    (void)state;
    static struct mr_config_errors errs;
    struct mr_config *cfg = NULL;
    const char *yaml = "inputs:\n"
                       "  a: {type: stdin, path: /nonexistent/millrace.jsonl}\n"
                       "  b: {type: stdin, fd: 999}\n"
                       "outputs:\n"
                       "  c: {type: stdout, fd: 998}\n";
    assert_int_equal(mr_config_load_buffer(&cfg, "x.yaml", yaml, strlen(yaml), NULL, &errs), 0);
    struct mr_names *names;
    struct mr_metrics *metrics;
    assert_int_equal(mr_names_create(&names, 64, 4096), 0);
    assert_int_equal(mr_metrics_create(&metrics), 0);
    for (size_t i = 0; i < 2; i++) {
        const struct mr_plugin_conf *pc = &cfg->inputs.items[i];
        struct mr_input_host host = {.name = pc->path, .names = names, .metrics = metrics};
        void *ctx = mr_calloc(1, pc->plugin->ctx_size);
        struct mr_err err = {0};
        assert_true(pc->plugin->input.init(ctx, pc->conf, &host, &err) < 0);
        print_message("%s: %s\n", pc->path, err.msg);
        assert_non_null(strstr(err.msg, i == 0 ? "cannot open /nonexistent" : "999"));
        mr_free(ctx);
    }
    const struct mr_plugin_conf *pc = &cfg->outputs.items[0];
    struct mr_output_host host = {.name = pc->path, .names = names, .metrics = metrics};
    void *ctx = mr_calloc(1, pc->plugin->ctx_size);
    struct mr_err err = {0};
    assert_true(pc->plugin->output.init(ctx, pc->conf, &host, &err) < 0);
    assert_non_null(strstr(err.msg, "998"));
    mr_free(ctx);
    mr_metrics_destroy(metrics);
    mr_names_destroy(names);
    mr_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipe_json),
        cmocka_unit_test(test_file_values),
        cmocka_unit_test(test_stop_idle),
        cmocka_unit_test(test_init_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
