/* The Modbus input and write output without a device: the register codec (every data type in
 * every byte order, from hand-computed words), the request planner (coalescing, the 125-register
 * limit, gap fill), controller addresses and config errors, the input against a port where
 * nothing listens (every value reported bad, never invented, also under back-pressure), and the
 * write output's allow-list (refusals counted, nothing sent). tests/integration/modbus_*.sh runs
 * both against a real pymodbus server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "inputs/modbus_conf.h"
#include "inputs/modbus_internal.h"
#include "millrace/alloc.h"
#include "millrace/log.h"
#include "millrace/metrics.h"
#include "millrace/plugin.h"

extern const struct mr_plugin mr_input_modbus;
extern const struct mr_plugin mr_output_modbus_write;

/* ---- codec ---- */

struct decode_case {
    enum mb_type type;
    enum mb_order order;
    uint16_t words[4];
    uint8_t want_type;
    int64_t want_i;
    double want_f;
};

static const struct decode_case decode_cases[] = {
    {MB_INT16, MB_ABCD, {0xFB2E}, MR_VALUE_I64, -1234, 0},
    {MB_INT16, MB_DCBA, {0x2EFB}, MR_VALUE_I64, -1234, 0},
    {MB_INT16, MB_BADC, {0x2EFB}, MR_VALUE_I64, -1234, 0},
    {MB_INT16, MB_CDAB, {0xFB2E}, MR_VALUE_I64, -1234, 0},
    {MB_UINT16, MB_ABCD, {0xD431}, MR_VALUE_I64, 54321, 0},
    {MB_INT32, MB_ABCD, {0xF8A4, 0x32EB}, MR_VALUE_I64, -123456789, 0},
    {MB_INT32, MB_DCBA, {0xEB32, 0xA4F8}, MR_VALUE_I64, -123456789, 0},
    {MB_INT32, MB_BADC, {0xA4F8, 0xEB32}, MR_VALUE_I64, -123456789, 0},
    {MB_INT32, MB_CDAB, {0x32EB, 0xF8A4}, MR_VALUE_I64, -123456789, 0},
    {MB_UINT32, MB_ABCD, {0xB2D0, 0x5E00}, MR_VALUE_I64, 3000000000, 0},
    {MB_UINT64, MB_ABCD, {0x0102, 0x0304, 0x0506, 0x0708}, MR_VALUE_I64, 0x0102030405060708, 0},
    {MB_UINT64, MB_DCBA, {0x0807, 0x0605, 0x0403, 0x0201}, MR_VALUE_I64, 0x0102030405060708, 0},
    {MB_UINT64, MB_BADC, {0x0201, 0x0403, 0x0605, 0x0807}, MR_VALUE_I64, 0x0102030405060708, 0},
    {MB_UINT64, MB_CDAB, {0x0708, 0x0506, 0x0304, 0x0102}, MR_VALUE_I64, 0x0102030405060708, 0},
    {MB_INT64, MB_ABCD, {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE}, MR_VALUE_I64, -2, 0},
    {MB_FLOAT32, MB_ABCD, {0x42F6, 0x8000}, MR_VALUE_F64, 0, 123.25},
    {MB_FLOAT32, MB_DCBA, {0x0080, 0xF642}, MR_VALUE_F64, 0, 123.25},
    {MB_FLOAT32, MB_BADC, {0xF642, 0x0080}, MR_VALUE_F64, 0, 123.25},
    {MB_FLOAT32, MB_CDAB, {0x8000, 0x42F6}, MR_VALUE_F64, 0, 123.25},
    {MB_FLOAT64, MB_ABCD, {0xC004, 0, 0, 0}, MR_VALUE_F64, 0, -2.5},
    {MB_FLOAT64, MB_CDAB, {0, 0, 0, 0xC004}, MR_VALUE_F64, 0, -2.5},
    {MB_FLOAT64, MB_DCBA, {0, 0, 0, 0x04C0}, MR_VALUE_F64, 0, -2.5},
    {MB_FLOAT64, MB_BADC, {0x04C0, 0, 0, 0}, MR_VALUE_F64, 0, -2.5},
};

static void test_decode_types_and_orders(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
        const struct decode_case *t = &decode_cases[i];
        struct mb_field f = {.type = (uint8_t)t->type,
                             .order = (uint8_t)t->order,
                             .table = MB_HOLDING_REGISTERS,
                             .words = mb_type_words(t->type, 0),
                             .scale = 1.0};
        struct mr_record rec = {0};
        print_message("case %zu: %s %s\n", i, mb_type_names[t->type], mb_order_names[t->order]);
        assert_int_equal(mb_decode(&f, t->words, &rec, NULL), 0);
        assert_int_equal(rec.type, t->want_type);
        if (t->want_type == MR_VALUE_I64) {
            assert_int_equal(rec.v.i64, t->want_i);
        } else {
            assert_true(rec.v.f64 == t->want_f);
        }
        /* Encoding gives back the same words. */
        uint16_t back[4] = {0};
        double raw = t->want_type == MR_VALUE_I64 ? (double)t->want_i : t->want_f;
        if (t->type != MB_UINT64 && t->type != MB_INT64) { /* not exact in a double */
            assert_int_equal(mb_encode(t->type, t->order, raw, back), 0);
            assert_memory_equal(back, t->words, 2u * f.words);
        }
    }
}

static void test_decode_special(void **state)
{
    (void)state;
    struct mr_record rec = {0};
    char str[16];
    /* BIT: bit 3 of 0x0008 is on, bit 4 off. */
    uint16_t w = 0x0008;
    struct mb_field bit = {.type = MB_BIT, .words = 1, .bit = 3, .scale = 1.0};
    assert_int_equal(mb_decode(&bit, &w, &rec, NULL), 0);
    assert_int_equal(rec.type, MR_VALUE_BOOL);
    assert_true(rec.v.b);
    bit.bit = 4;
    assert_int_equal(mb_decode(&bit, &w, &rec, NULL), 0);
    assert_false(rec.v.b);
    /* STRING: NUL ends it, trailing spaces dropped; BADC swaps the characters of a register. */
    uint16_t s[4] = {0x5052, 0x4553, 0x5320, 0x0000}; /* "PRESS " */
    struct mb_field text = {.type = MB_STRING, .words = 4, .scale = 1.0};
    assert_int_equal(mb_decode(&text, s, &rec, str), 0);
    assert_int_equal(rec.type, MR_VALUE_STRING);
    assert_int_equal(rec.v.str.len, 5);
    assert_memory_equal(rec.v.str.ptr, "PRESS", 5);
    uint16_t sw[2] = {0x5250, 0x5345}; /* "PRES" byte-swapped */
    text.words = 2;
    text.order = MB_BADC;
    assert_int_equal(mb_decode(&text, sw, &rec, str), 0);
    assert_memory_equal(rec.v.str.ptr, "PRES", 4);
    /* scale and offset make a float: 215 * 0.1 + 1.5. */
    uint16_t raw = 215;
    struct mb_field sc = {.type = MB_INT16, .words = 1, .scale = 0.1, .offset = 1.5, .scaled = 1};
    assert_int_equal(mb_decode(&sc, &raw, &rec, NULL), 0);
    assert_int_equal(rec.type, MR_VALUE_F64);
    assert_true(fabs(rec.v.f64 - 23.0) < 1e-9);
    /* Values that cannot be represented are refused, not invented. */
    uint16_t big[4] = {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF};
    struct mb_field u64 = {.type = MB_UINT64, .words = 4, .scale = 1.0};
    assert_int_equal(mb_decode(&u64, big, &rec, NULL), MR_ERANGE);
    uint16_t nan[2] = {0x7FC0, 0x0000};
    struct mb_field f32 = {.type = MB_FLOAT32, .words = 2, .scale = 1.0};
    assert_int_equal(mb_decode(&f32, nan, &rec, NULL), MR_ERANGE);
    /* Encoding: out of range or fractional integers are refused. */
    uint16_t out[4];
    assert_int_equal(mb_encode(MB_INT16, MB_ABCD, 40000, out), MR_ERANGE);
    assert_int_equal(mb_encode(MB_UINT16, MB_ABCD, -1, out), MR_ERANGE);
    assert_int_equal(mb_encode(MB_INT32, MB_ABCD, 1.5, out), MR_ERANGE);
    assert_int_equal(mb_encode(MB_FLOAT32, MB_ABCD, 1e300, out), MR_ERANGE);
    assert_int_equal(mb_encode(MB_STRING, MB_ABCD, 1, out), MR_EINVAL);
}

/* ---- planner ---- */

struct plan_case {
    const char *what;
    uint16_t max_fill;
    size_t n;
    struct {
        uint8_t table;
        uint16_t address, words;
    } f[6];
    size_t nspans;
    struct {
        uint8_t table;
        uint16_t start, count;
        uint32_t nfields;
    } s[4];
};

static const struct plan_case plan_cases[] = {
    {"adjacent registers share one read",
     0,
     3,
     {{MB_HOLDING_REGISTERS, 3, 1}, {MB_HOLDING_REGISTERS, 0, 1}, {MB_HOLDING_REGISTERS, 1, 2}},
     1,
     {{MB_HOLDING_REGISTERS, 0, 4, 3}}},
    {"a gap splits without fill",
     0,
     2,
     {{MB_HOLDING_REGISTERS, 0, 2}, {MB_HOLDING_REGISTERS, 10, 1}},
     2,
     {{MB_HOLDING_REGISTERS, 0, 2, 1}, {MB_HOLDING_REGISTERS, 10, 1, 1}}},
    {"fill joins across a gap",
     8,
     2,
     {{MB_HOLDING_REGISTERS, 0, 2}, {MB_HOLDING_REGISTERS, 10, 1}},
     1,
     {{MB_HOLDING_REGISTERS, 0, 11, 2}}},
    {"never more than 125 registers",
     124,
     2,
     {{MB_HOLDING_REGISTERS, 0, 1}, {MB_HOLDING_REGISTERS, 124, 2}},
     2,
     {{MB_HOLDING_REGISTERS, 0, 1, 1}, {MB_HOLDING_REGISTERS, 124, 2, 1}}},
    {"overlapping values (BIT of one register) share it",
     0,
     2,
     {{MB_HOLDING_REGISTERS, 5, 1}, {MB_HOLDING_REGISTERS, 5, 1}},
     1,
     {{MB_HOLDING_REGISTERS, 5, 1, 2}}},
    {"tables never mix; bits up to 2000",
     0,
     4,
     {{MB_COILS, 0, 1}, {MB_COILS, 1, 1}, {MB_INPUT_REGISTERS, 2, 1}, {MB_HOLDING_REGISTERS, 2, 1}},
     3,
     {{MB_COILS, 0, 2, 2}, {MB_HOLDING_REGISTERS, 2, 1, 1}, {MB_INPUT_REGISTERS, 2, 1, 1}}},
};

static void test_plan(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(plan_cases) / sizeof(plan_cases[0]); i++) {
        const struct plan_case *t = &plan_cases[i];
        struct mb_field f[6] = {0};
        struct mb_span s[6];
        print_message("case: %s\n", t->what);
        for (size_t k = 0; k < t->n; k++) {
            f[k] = (struct mb_field){
                .table = t->f[k].table, .address = t->f[k].address, .words = t->f[k].words};
        }
        long ns = mb_plan(f, t->n, t->max_fill, s, 6);
        assert_int_equal(ns, (long)t->nspans);
        uint32_t covered = 0;
        for (size_t k = 0; k < t->nspans; k++) {
            assert_int_equal(s[k].table, t->s[k].table);
            assert_int_equal(s[k].start, t->s[k].start);
            assert_int_equal(s[k].count, t->s[k].count);
            assert_int_equal(s[k].nfields, t->s[k].nfields);
            assert_int_equal(s[k].first, covered);
            covered += s[k].nfields;
        }
        assert_int_equal(covered, t->n);
    }
    /* Too little room for the spans is reported. */
    struct mb_field f2[2] = {{.table = MB_COILS, .address = 0, .words = 1},
                             {.table = MB_COILS, .address = 100, .words = 1}};
    struct mb_span s2[1];
    assert_int_equal(mb_plan(f2, 2, 0, s2, 1), -1);
}

/* ---- controller and config ---- */

static void test_controller(void **state)
{
    (void)state;
    char host[64];
    int port = 0;
    struct mr_err err;
    assert_int_equal(mb_controller_parse("tcp://127.0.0.1:5020", host, sizeof(host), &port, &err),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 5020);
    assert_int_equal(mb_controller_parse("tcp://plc4", host, sizeof(host), &port, &err), 0);
    assert_int_equal(port, 502);
    assert_int_equal(mb_controller_parse("file:///dev/ttyUSB0", host, sizeof(host), &port, &err),
                     MR_ENOTSUP);
    assert_non_null(strstr(err.msg, "serial"));
    assert_int_equal(mb_controller_parse("tcp://plc:99999", host, sizeof(host), &port, &err),
                     MR_EINVAL);
    assert_non_null(strstr(err.msg, "port"));
    assert_int_equal(mb_controller_parse("plc:502", host, sizeof(host), &port, &err), MR_EINVAL);
}

struct conf_case {
    const struct mr_plugin *plugin;
    const char *yaml;
    const char *needle; /* in the error; NULL: loads */
};

#define DEV "controller: tcp://127.0.0.1:5020\nasset: plant/press/line1/press3\n"
#define OUT "controller: tcp://127.0.0.1:5020\n"

static const struct conf_case conf_cases[] = {
    {&mr_input_modbus, DEV "holding_registers:\n  - {name: t, address: 0}\n", NULL},
    {&mr_input_modbus, DEV, "nothing to read"},
    {&mr_input_modbus, DEV "holding_registers:\n  - {name: s, address: 0, data_type: STRING}\n",
     "t.yaml:4"},
    {&mr_input_modbus, DEV "holding_registers:\n  - {name: s, address: 0, data_type: STRING}\n",
     "needs length"},
    {&mr_input_modbus, DEV "holding_registers:\n  - {name: x, address: 65535, data_type: INT32}\n",
     "past register 65535"},
    {&mr_input_modbus, DEV "holding_registers:\n  - {name: x, address: 0, data_type: INT33}\n",
     "INT32"},
    {&mr_input_modbus, DEV "holding_registers:\n  - {name: x, address: 0, byte_order: ABDC}\n",
     "byte_order"},
    {&mr_input_modbus, DEV "coils:\n  - {name: c, address: 0}\nslave_id: 250\n", "reserved"},
    {&mr_input_modbus,
     DEV "coils:\n  - {name: c, address: 0}\ngroups:\n  - {discrete_inputs: [{name: c, address: "
         "3}]}\n",
     "two values are named 'c'"},
    {&mr_input_modbus,
     DEV "groups:\n  - {name: fast, interval: 1ms, coils: [{name: c, address: 0}]}\n",
     "at least 10ms"},
    {&mr_output_modbus_write,
     OUT "writes:\n  - {signal: sp, address: 1, min: 0, max: 10}\n  - {signal: command, "
         "command: halt, register: coil, address: 0, constant: 1}\n",
     NULL},
    {&mr_output_modbus_write, OUT "writes:\n  - {signal: sp, address: 1}\n", "min and max"},
    {&mr_output_modbus_write, OUT "writes:\n  - {signal: sp, address: 1, min: 5, max: 1}\n",
     "less than min"},
    {&mr_output_modbus_write,
     OUT "writes:\n  - {signal: sp, address: 1, data_type: STRING, constant: 1}\n",
     "cannot be written"},
    {&mr_output_modbus_write, OUT "writes: []\n", "writes"},
};

static void test_config(void **state)
{
    (void)state;
    static struct mr_config_errors errs;
    for (size_t i = 0; i < sizeof(conf_cases) / sizeof(conf_cases[0]); i++) {
        const struct conf_case *t = &conf_cases[i];
        const struct mr_section *sec = &t->plugin->conf;
        void *conf = calloc(1, sec->size);
        assert_non_null(conf);
        int rc = mr_section_load_buffer(sec, conf, "t.yaml", t->yaml, strlen(t->yaml), NULL, &errs);
        for (size_t k = 0; k < errs.n; k++) {
            print_message("case %zu: %s\n", i, errs.msg[k]);
        }
        if (t->needle == NULL) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, MR_ECONFIG);
            assert_non_null(strstr(errs.msg[0], t->needle));
        }
        mr_section_free(sec, conf);
        free(conf);
    }
    struct mr_err err;
    assert_int_equal(mr_section_validate(&mr_input_modbus.conf, "inputs.x", &err), 0);
    assert_int_equal(mr_section_validate(&mr_output_modbus_write.conf, "outputs.x", &err), 0);
}

/* ---- the input against a port where nothing listens ---- */

/* A port that was free a moment ago: connecting is refused at once. */
static int dead_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

struct in_rig {
    struct mr_input_host host;
    const struct mr_plugin *plugin;
    void *ctx;
    int refuse;
    size_t batches;
    size_t records;
    size_t bad;
    size_t by_type[6];
    int stopped;
};

static int rig_emit(struct mr_input_host *host, const struct mr_record *recs, size_t n)
{
    struct in_rig *r = host->arg;
    if (r->refuse > 0) {
        r->refuse--;
        return MR_EAGAIN;
    }
    r->batches++;
    for (size_t i = 0; i < n; i++) {
        r->records++;
        r->bad += recs[i].quality == MR_QUALITY_BAD;
        r->by_type[recs[i].type]++;
        assert_true(recs[i].time_ns > 0);
    }
    if (r->batches == 4) {
        r->plugin->input.stop(r->ctx);
    }
    return 0;
}

static void rig_ended(struct mr_input_host *host, int status)
{
    (void)host;
    (void)status;
    fail_msg("a modbus input never ends on its own");
}

static void rig_stopped(struct mr_input_host *host)
{
    struct in_rig *r = host->arg;
    r->stopped++;
}

static void quiet(enum mr_log_level level, const char *line, void *arg)
{
    (void)level;
    (void)line;
    (void)arg;
}

static void test_input_unreachable_reports_bad(void **state)
{
    (void)state;
    static struct mr_config_errors errs;
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "controller: tcp://127.0.0.1:%d\nasset: plant/press/line1/press3\n"
             "interval: 20ms\ntimeout: 100ms\nreconnect_min: 10ms\nreconnect_max: 40ms\n"
             "holding_registers:\n"
             "  - {name: temp, address: 0, data_type: INT16}\n"
             "  - {name: energy, address: 1, data_type: FLOAT32}\n"
             "  - {name: recipe, address: 3, data_type: STRING, length: 2}\n"
             "coils:\n  - {name: running, address: 0}\n",
             dead_port());
    struct mb_conf conf;
    assert_int_equal(mr_section_load_buffer(&mr_input_modbus.conf, &conf, "t.yaml", yaml,
                                            strlen(yaml), NULL, &errs),
                     0);
    struct mr_names *names;
    struct mr_metrics *metrics;
    uv_loop_t loop;
    assert_int_equal(mr_names_create(&names, 1024, 1 << 16), 0);
    assert_int_equal(mr_metrics_create(&metrics), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    mr_log_set_sink(quiet, NULL);
    struct in_rig r = {.plugin = &mr_input_modbus, .refuse = 3};
    r.host = (struct mr_input_host){.name = "inputs.plc",
                                    .names = names,
                                    .metrics = metrics,
                                    .loop = &loop,
                                    .emit = rig_emit,
                                    .ended = rig_ended,
                                    .stopped = rig_stopped,
                                    .arg = &r};
    r.ctx = mr_calloc(1, mr_input_modbus.ctx_size);
    struct mr_err err;
    assert_int_equal(mr_input_modbus.input.init(r.ctx, &conf, &r.host, &err), 0);
    assert_int_equal(mr_input_modbus.input.start(r.ctx, &err), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.stopped, 1);
    mr_input_modbus.input.fini(r.ctx);
    mr_free(r.ctx);
    /* Every poll reported every value, all bad, each with its own type (no invented numbers).
     * Back-pressure (3 refusals) delayed batches but lost none. */
    assert_int_equal(r.batches, 4);
    assert_int_equal(r.records, 4 * 4);
    assert_int_equal(r.bad, r.records);
    assert_int_equal(r.by_type[MR_VALUE_I64], 4);
    assert_int_equal(r.by_type[MR_VALUE_F64], 4);
    assert_int_equal(r.by_type[MR_VALUE_STRING], 4);
    assert_int_equal(r.by_type[MR_VALUE_BOOL], 4);
    static char text[1 << 14];
    size_t needed;
    assert_true(mr_metrics_render(metrics, text, sizeof(text), &needed) > 0);
    assert_non_null(strstr(text, "millrace_records_out_total{instance=\"inputs.plc\","
                                 "plugin=\"modbus\"} 16"));
    mr_log_set_sink(NULL, NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
    mr_metrics_destroy(metrics);
    mr_names_destroy(names);
    mr_section_free(&mr_input_modbus.conf, &conf);
}

/* ---- the write output's allow-list ---- */

static struct mr_record rec_of(struct mr_names *names, const char *signal, double v)
{
    struct mr_record r = {.time_ns = 1, .type = MR_VALUE_F64, .v.f64 = v};
    assert_int_equal(mr_names_intern(names, "plant/press/line1/press3", 24, &r.asset), 0);
    assert_int_equal(mr_names_intern(names, signal, strlen(signal), &r.signal), 0);
    return r;
}

static void test_write_allow_list(void **state)
{
    (void)state;
    static struct mr_config_errors errs;
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "controller: tcp://127.0.0.1:%d\ntimeout: 100ms\nwrites:\n"
             "  - {signal: speed_setpoint, address: 10, data_type: UINT16, scale: 0.1, min: 0, "
             "max: 1200}\n"
             "  - {signal: command, command: halt, register: coil, address: 0, constant: 1}\n"
             "  - {signal: command, command: adjust, match_tags: {characteristic: bore}, "
             "value_tag: offset, address: 20, data_type: FLOAT32, min: -0.05, max: 0.05}\n",
             dead_port());
    const struct mr_section *sec = &mr_output_modbus_write.conf;
    void *conf = calloc(1, sec->size);
    assert_int_equal(mr_section_load_buffer(sec, conf, "t.yaml", yaml, strlen(yaml), NULL, &errs),
                     0);
    struct mr_names *names;
    struct mr_metrics *metrics;
    assert_int_equal(mr_names_create(&names, 1024, 1 << 16), 0);
    assert_int_equal(mr_metrics_create(&metrics), 0);
    struct mr_output_host host = {.name = "outputs.plc", .names = names, .metrics = metrics};
    void *ctx = mr_calloc(1, mr_output_modbus_write.ctx_size);
    struct mr_err err;
    mr_log_set_sink(quiet, NULL);
    assert_int_equal(mr_output_modbus_write.output.init(ctx, conf, &host, &err), 0);

    mr_name_id tag_char, tag_offset;
    assert_int_equal(mr_names_intern(names, "characteristic", 14, &tag_char), 0);
    assert_int_equal(mr_names_intern(names, "offset", 6, &tag_offset), 0);
    struct mr_record refused[6];
    refused[0] = rec_of(names, "valve_open", 1);        /* not listed */
    refused[1] = rec_of(names, "speed_setpoint", 5000); /* above max */
    refused[2] = rec_of(names, "speed_setpoint", 100);  /* bad quality */
    refused[2].quality = MR_QUALITY_BAD;
    refused[3] = rec_of(names, "command", 0); /* text "restart": no entry */
    refused[3].type = MR_VALUE_STRING;
    refused[3].v.str = (struct mr_bytes){.ptr = "restart", .len = 7};
    refused[4] = refused[3]; /* adjust, offset out of bounds */
    refused[4].v.str = (struct mr_bytes){.ptr = "adjust", .len = 6};
    refused[4].ntags = 2;
    refused[4].tags[0] = (struct mr_tag){tag_char, {"bore", 4}};
    refused[4].tags[1] = (struct mr_tag){tag_offset, {"0.5", 3}};
    refused[5] = refused[4]; /* adjust of another characteristic */
    refused[5].tags[0].value = (struct mr_bytes){"face", 4};
    /* Nothing of this is sent: no connection is even tried (the port is dead: RETRY if so). */
    assert_int_equal(mr_output_modbus_write.output.write(ctx, refused, 6, &err), MR_SINK_OK);

    /* An allowed one needs the device: the dead port answers RETRY, naming the controller. */
    struct mr_record ok = rec_of(names, "speed_setpoint", 1150);
    mr_err_clear(&err);
    assert_int_equal(mr_output_modbus_write.output.write(ctx, &ok, 1, &err), MR_SINK_RETRY);
    assert_non_null(strstr(err.msg, "tcp://127.0.0.1:"));

    static char text[1 << 14];
    size_t needed;
    assert_true(mr_metrics_render(metrics, text, sizeof(text), &needed) > 0);
    assert_non_null(strstr(text, "millrace_errors_total{instance=\"outputs.plc\","
                                 "plugin=\"modbus_write\"} 6"));
    assert_non_null(strstr(text, "millrace_records_out_total{instance=\"outputs.plc\","
                                 "plugin=\"modbus_write\"} 0"));
    mr_output_modbus_write.output.fini(ctx);
    mr_free(ctx);
    mr_log_set_sink(NULL, NULL);
    mr_section_free(sec, conf);
    free(conf);
    mr_metrics_destroy(metrics);
    mr_names_destroy(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_types_and_orders),
        cmocka_unit_test(test_decode_special),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_controller),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_input_unreachable_reports_bad),
        cmocka_unit_test(test_write_allow_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
