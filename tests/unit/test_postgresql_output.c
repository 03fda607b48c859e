/* The `postgresql` output (src/outputs/postgresql.c) against a real PostgreSQL 15 that this test
 * starts itself (initdb into a scratch dir, postgres on 127.0.0.1 on a free port, password
 * authentication over TCP; as root both run as the user `postgres`). Checks the exact rows
 * (values, time to the microsecond, tags as JSON, quality, escaping), that a batch written again
 * with the same journal offsets (a replay after a crash, also by a fresh instance) adds
 * nothing, that rows PostgreSQL refuses are rejected one by one with its message while the rest
 * commits with the offset (and are rejected again on replay), RETRY while the server is down
 * and recovery after it restarts, and FATAL with a clear message for a wrong password, a
 * missing database, a missing table or a missing TimescaleDB. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "millrace/alloc.h"
#include "millrace/config.h"
#include "millrace/metrics.h"
#include "millrace/names.h"
#include "millrace/plugin.h"
#include "support/mosquitto_peer.h"
#include "support/tmpdir.h"

extern const struct mr_plugin mr_output_postgresql;
extern char **environ;

#define PGBIN "/usr/lib/postgresql/15/bin"

/* ---- the server ---- */

static struct {
    char dir[256];
    char pgdir[300];
    int port;
    pid_t pid;
    PGconn *sql; /* the test's own connection, for assertions */
} srv;

static pid_t spawn(char *const argv[], const char *log)
{
    char *const *args = argv;
    char *wrapped[32];
    if (geteuid() == 0) { /* initdb and postgres refuse root */
        wrapped[0] = "/usr/bin/setpriv";
        wrapped[1] = "--reuid=postgres";
        wrapped[2] = "--regid=postgres";
        wrapped[3] = "--init-groups";
        size_t i = 0;
        for (; argv[i] != NULL && i < 26; i++) {
            wrapped[4 + i] = argv[i];
        }
        wrapped[4 + i] = NULL;
        args = wrapped;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, args[0], &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -1;
}

static void conninfo(char *out, size_t cap, const char *user, const char *pw, const char *db)
{
    snprintf(out, cap, "host=127.0.0.1 port=%d user=%s password=%s dbname=%s connect_timeout=2",
             srv.port, user, pw, db);
}

static void server_start(void)
{
    char port[16], log[400], sock[320];
    snprintf(port, sizeof(port), "%d", srv.port);
    snprintf(log, sizeof(log), "%s/pg.log", srv.pgdir);
    snprintf(sock, sizeof(sock), "%s", srv.pgdir);
    char data[320];
    snprintf(data, sizeof(data), "%s/data", srv.pgdir);
    char *argv[] = {PGBIN "/postgres",
                    "-D",
                    data,
                    "-k",
                    sock,
                    "-p",
                    port,
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    NULL};
    srv.pid = spawn(argv, log);
    assert_true(srv.pid > 0);
    char ci[256];
    conninfo(ci, sizeof(ci), "postgres", "secret", "postgres");
    for (int i = 0; i < 200 && PQping(ci) != PQPING_OK; i++) {
        usleep(50 * 1000);
    }
    assert_int_equal(PQping(ci), PQPING_OK);
}

static void server_stop(void)
{
    if (srv.pid > 0) {
        kill(srv.pid, SIGINT); /* fast shutdown: clients are cut off */
        waitpid(srv.pid, NULL, 0);
        srv.pid = -1;
    }
}

static void sql_connect(void)
{
    char ci[256];
    conninfo(ci, sizeof(ci), "postgres", "secret", "postgres");
    srv.sql = PQconnectdb(ci);
    assert_int_equal(PQstatus(srv.sql), CONNECTION_OK);
    PQclear(PQexec(srv.sql, "SET client_min_messages = warning"));
}

/* Run sql; the rows as "a|b|c" lines joined by '\n' into out. */
static const char *sql(const char *q, char *out, size_t cap)
{
    if (srv.sql == NULL || PQstatus(srv.sql) != CONNECTION_OK) {
        PQfinish(srv.sql);
        srv.sql = NULL;
        sql_connect();
    }
    PGresult *res = PQexec(srv.sql, q);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        print_message("%s: %s\n", q, PQresultErrorMessage(res));
        fail();
    }
    size_t used = 0;
    out[0] = '\0';
    for (int r = 0; r < PQntuples(res); r++) {
        for (int k = 0; k < PQnfields(res); k++) {
            used += (size_t)snprintf(out + used, cap - used, "%s%s", k > 0 ? "|" : "",
                                     PQgetisnull(res, r, k) ? "NULL" : PQgetvalue(res, r, k));
        }
        used += (size_t)snprintf(out + used, cap - used, "\n");
    }
    PQclear(res);
    return out;
}

static long sql_long(const char *q)
{
    char out[64];
    return strtol(sql(q, out, sizeof(out)), NULL, 10);
}

static int group_setup(void **state)
{
    (void)state;
    assert_int_equal(mr_test_tmpdir_create(srv.dir, sizeof(srv.dir), "mr_pgout"), 0);
    chmod(srv.dir, 0755);
    snprintf(srv.pgdir, sizeof(srv.pgdir), "%s/pg", srv.dir);
    assert_int_equal(mkdir(srv.pgdir, 0700), 0);
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        assert_non_null(pw);
        assert_int_equal(chown(srv.pgdir, pw->pw_uid, pw->pw_gid), 0);
    }
    char pwfile[320], data[320], log[320];
    snprintf(pwfile, sizeof(pwfile), "%s/pwfile", srv.pgdir);
    snprintf(data, sizeof(data), "%s/data", srv.pgdir);
    snprintf(log, sizeof(log), "%s/initdb.log", srv.dir);
    FILE *f = fopen(pwfile, "w");
    assert_non_null(f);
    fputs("secret\n", f);
    fclose(f);
    chmod(pwfile, 0644);
    char *argv[] = {PGBIN "/initdb",    "-D",   data,    "-U",
                    "postgres",         "-A",   "trust", "--auth-host=scram-sha-256",
                    "--pwfile",         pwfile, "-E",    "UTF8",
                    "--locale=C.UTF-8", "-N",   NULL};
    pid_t pid = spawn(argv, log);
    assert_true(pid > 0);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    srv.port = mr_test_free_port();
    server_start();
    sql_connect();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    PQfinish(srv.sql);
    server_stop();
    mr_test_tmpdir_remove(srv.dir);
    return 0;
}

/* Each test starts from an empty database (a failed test leaves its tables behind). */
static void reset(void)
{
    char got[64];
    sql("DROP TABLE IF EXISTS measurements, strict, wide, own, nokey, millrace_output_offsets, "
        "millrace_output_rejects",
        got, sizeof(got));
}

/* ---- an output instance with a host that records rejections ---- */

#define MAX_REJECTS 64

struct out {
    union {
        max_align_t align;
        char bytes[512];
    } conf;
    void *ctx;
    struct mr_output_host host;
    struct mr_names *names;
    struct mr_metrics *metrics;
    size_t nrej;
    size_t rej_index[MAX_REJECTS];
    char rej_reason[MAX_REJECTS][256];
};

static void on_reject(struct mr_output_host *h, size_t index, const char *reason)
{
    struct out *o = h->arg;
    assert_true(o->nrej < MAX_REJECTS);
    o->rej_index[o->nrej] = index;
    snprintf(o->rej_reason[o->nrej], sizeof(o->rej_reason[0]), "%s", reason);
    print_message("rejected [%zu]: %s\n", index, reason);
    o->nrej++;
}

/* Load yaml (with %d for the port) into o and init; returns init's code, err filled. */
static int out_open(struct out *o, const char *yaml_fmt, const char *pw, const char *db,
                    struct mr_err *err)
{
    static struct mr_config_errors errs;
    char yaml[1024], ci[256];
    conninfo(ci, sizeof(ci), "postgres", pw, db);
    snprintf(yaml, sizeof(yaml), yaml_fmt, ci);
    memset(o, 0, sizeof(*o));
    assert_true(mr_output_postgresql.conf.size <= sizeof(o->conf.bytes));
    int rc = mr_section_load_buffer(&mr_output_postgresql.conf, o->conf.bytes, "t.yaml", yaml,
                                    strlen(yaml), NULL, &errs);
    for (size_t i = 0; i < errs.n; i++) {
        print_message("%s\n", errs.msg[i]);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(mr_names_create(&o->names, 1024, 1 << 16), 0);
    assert_int_equal(mr_metrics_create(&o->metrics), 0);
    o->host = (struct mr_output_host){.name = "outputs.pg",
                                      .names = o->names,
                                      .metrics = o->metrics,
                                      .reject = on_reject,
                                      .arg = o};
    o->ctx = mr_calloc(1, mr_output_postgresql.ctx_size);
    assert_non_null(o->ctx);
    mr_err_clear(err);
    rc = mr_output_postgresql.output.init(o->ctx, o->conf.bytes, &o->host, err);
    if (rc != 0) {
        print_message("init: %s\n", err->msg);
    }
    return rc;
}

static void out_close(struct out *o, bool inited)
{
    if (inited) {
        mr_output_postgresql.output.fini(o->ctx);
    }
    mr_free(o->ctx);
    mr_metrics_destroy(o->metrics);
    mr_names_destroy(o->names);
    mr_section_free(&mr_output_postgresql.conf, o->conf.bytes);
}

static int out_write(struct out *o, const char *topic, const int64_t *offsets,
                     const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct mr_output_position pos = {.topic = topic, .partition = 0, .offsets = offsets};
    mr_err_clear(err);
    o->nrej = 0;
    int answer = mr_output_postgresql.output.write_at(o->ctx, &pos, recs, n, err);
    if (answer != MR_SINK_OK) {
        print_message("write_at -> %d: %s\n", answer, err->msg);
    }
    return answer;
}

static mr_name_id id(struct out *o, const char *s)
{
    mr_name_id v;
    assert_int_equal(mr_names_intern(o->names, s, strlen(s), &v), 0);
    return v;
}

static struct mr_record num(struct out *o, int64_t t, const char *asset, const char *signal,
                            double v)
{
    return (struct mr_record){.time_ns = t,
                              .asset = id(o, asset),
                              .signal = id(o, signal),
                              .type = MR_VALUE_F64,
                              .v.f64 = v};
}

static const char base_yaml[] = "connection: \"%s\"\ntable: measurements\n";

/* ---- tests ---- */

static void test_rows_exact(void **state)
{
    (void)state;
    reset();
    struct out o;
    struct mr_err err;
    assert_int_equal(out_open(&o, base_yaml, "secret", "postgres", &err), 0);
    const int64_t t0 = 1700000000123456789LL; /* 2023-11-14 22:13:20.123456789 UTC */
    static const char weird[] = "run\t\"ok\"\\ \n\xc3\xa9";
    struct mr_record r[6];
    r[0] = num(&o, t0, "plant1/line1/press1", "temp", 21.5);
    r[0].ntags = 2;
    r[0].tags[0] = (struct mr_tag){.key = id(&o, "unit"), .value = {"degC", 4}};
    r[0].tags[1] = (struct mr_tag){.key = id(&o, "note\"x"), .value = {weird, sizeof(weird) - 1}};
    r[1] = num(&o, t0 + 1000, "plant1/line1/press1", "count", 0); /* + 1 us */
    r[1].type = MR_VALUE_I64;
    r[1].v.i64 = -9000000000LL;
    r[2] = num(&o, t0 + 2000, "plant1/line1/press1", "running", 0);
    r[2].type = MR_VALUE_BOOL;
    r[2].v.b = true;
    r[3] = num(&o, t0 + 3000, "plant1/line1/press1", "state", 0);
    r[3].type = MR_VALUE_STRING;
    r[3].v.str = (struct mr_bytes){weird, sizeof(weird) - 1};
    r[3].quality = MR_QUALITY_UNCERTAIN;
    r[4] = num(&o, -1, "plant1/line2/weld\\1", "nan", 0.0 / 0.0); /* 1 ns before the epoch */
    r[4].quality = MR_QUALITY_BAD;
    r[5] = num(&o, t0, "plant1/line1/press1", "third", 0.1 + 0.2);
    const int64_t offs[] = {10, 11, 12, 13, 14, 15};
    assert_int_equal(out_write(&o, "plant.clean", offs, r, 6, &err), MR_SINK_OK);
    assert_int_equal(o.nrej, 0);
    char got[4096];
    sql("SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), asset, signal, "
        "value, value_text, quality, tags::text FROM measurements ORDER BY time, signal",
        got, sizeof(got));
    print_message("%s", got);
    assert_string_equal(got, "1969-12-31 23:59:59.999999|plant1/line2/weld\\1|nan|NaN|NULL|2|{}\n"
                             "2023-11-14 22:13:20.123456|plant1/line1/press1|temp|21.5|NULL|0|"
                             "{\"unit\": \"degC\", \"note\\\"x\": \"run\\t\\\"ok\\\"\\\\ "
                             "\\n\xc3\xa9\"}\n"
                             "2023-11-14 22:13:20.123456|plant1/line1/press1|third|"
                             "0.30000000000000004|NULL|0|{}\n"
                             "2023-11-14 22:13:20.123457|plant1/line1/press1|count|-9000000000|"
                             "NULL|0|{}\n"
                             "2023-11-14 22:13:20.123458|plant1/line1/press1|running|1|NULL|0|"
                             "{}\n"
                             "2023-11-14 22:13:20.123459|plant1/line1/press1|state|NULL|"
                             "run\t\"ok\"\\ \n\xc3\xa9|1|{}\n");
    /* the string comes back byte for byte, the double bit for bit */
    assert_int_equal(sql_long("SELECT count(*) FROM measurements WHERE value_text = "
                              "E'run\\t\"ok\"\\\\ \\n\xc3\xa9' AND tags = '{}'"),
                     1);
    assert_int_equal(sql_long("SELECT count(*) FROM measurements WHERE value = 0.1::float8 + "
                              "0.2::float8 AND signal = 'third'"),
                     1);
    assert_int_equal(sql_long("SELECT next_offset FROM millrace_output_offsets WHERE output = "
                              "'outputs.pg' AND topic = 'plant.clean' AND partition = 0"),
                     16);
    assert_int_equal(sql_long("SELECT count(*) FROM pg_indexes WHERE tablename = 'measurements'"),
                     1);
    out_close(&o, true);
    sql("DROP TABLE measurements", got, sizeof(got));
    sql("DELETE FROM millrace_output_offsets", got, sizeof(got));
}

static void test_replay_writes_nothing_twice(void **state)
{
    (void)state;
    reset();
    struct out o;
    struct mr_err err;
    assert_int_equal(out_open(&o, base_yaml, "secret", "postgres", &err), 0);
    struct mr_record r[20];
    int64_t offs[20];
    for (int i = 0; i < 20; i++) {
        r[i] = num(&o, 1700000000000000000LL + i * 1000000LL, "a/b", "x", i);
        offs[i] = 100 + i;
    }
    assert_int_equal(out_write(&o, "t", offs, r, 10, &err), MR_SINK_OK);
    assert_int_equal(sql_long("SELECT count(*) FROM measurements"), 10);
    /* the same batch again (the cursor lagged): nothing new */
    assert_int_equal(out_write(&o, "t", offs, r, 10, &err), MR_SINK_OK);
    assert_int_equal(sql_long("SELECT count(*) FROM measurements"), 10);
    /* overlapping: only 110..114 are new */
    assert_int_equal(out_write(&o, "t", offs + 5, r + 5, 10, &err), MR_SINK_OK);
    assert_int_equal(sql_long("SELECT count(*) FROM measurements"), 15);
    /* another topic has its own offsets */
    assert_int_equal(out_write(&o, "u", offs, r, 3, &err), MR_SINK_OK);
    assert_int_equal(sql_long("SELECT count(*) FROM measurements"), 18);
    out_close(&o, true);
    /* a fresh instance (a restart) reads the stored offsets */
    assert_int_equal(out_open(&o, base_yaml, "secret", "postgres", &err), 0);
    for (int i = 0; i < 20; i++) {
        r[i] = num(&o, 1700000000000000000LL + i * 1000000LL, "a/b", "x", i);
    }
    assert_int_equal(out_write(&o, "t", offs, r, 20, &err), MR_SINK_OK);
    assert_int_equal(sql_long("SELECT count(*) FROM measurements"), 23);
    assert_int_equal(sql_long("SELECT count(DISTINCT value) FROM measurements WHERE value >= 15"),
                     5);
    out_close(&o, true);
    char got[64];
    assert_int_equal(sql_long("SELECT sum(value) FROM measurements WHERE time >= "
                              "'2023-11-14 22:13:20+00' AND asset = 'a/b'"),
                     190 + 3);
    sql("DROP TABLE measurements", got, sizeof(got));
    sql("DELETE FROM millrace_output_offsets", got, sizeof(got));
}

static void test_refused_rows_rejected_rest_committed(void **state)
{
    (void)state;
    reset();
    char got[2048];
    sql("CREATE TABLE strict (time timestamptz NOT NULL, asset text NOT NULL, "
        "signal text NOT NULL, value real CHECK (value >= 0), value_text text)",
        got, sizeof(got));
    static const char yaml[] = "connection: \"%s\"\ntable: strict\ncreate_tables: false\n";
    struct out o;
    struct mr_err err;
    assert_int_equal(out_open(&o, yaml, "secret", "postgres", &err), 0);
    struct mr_record r[9];
    int64_t offs[9];
    for (int i = 0; i < 9; i++) {
        r[i] = num(&o, 1700000000000000000LL + i * 1000LL, "a", "v", i);
        offs[i] = 50 + i;
    }
    r[2].v.f64 = 1e300; /* out of range for real */
    r[4].v.f64 = -1;    /* CHECK (value >= 0) */
    r[5].type = MR_VALUE_STRING;
    r[5].v.str = (struct mr_bytes){"a\0b", 3}; /* NUL byte */
    float samples[4] = {1, 2, 3, 4};
    r[6].type = MR_VALUE_SAMPLES;
    r[6].v.samples = (struct mr_samples){.data = samples, .n = 4, .rate_hz = 10};
    r[7].type = MR_VALUE_STRING;
    r[7].v.str = (struct mr_bytes){"\xff\xfe", 2}; /* not UTF-8 */
    assert_int_equal(out_write(&o, "t", offs, r, 9, &err), MR_SINK_OK);
    static const struct {
        size_t index;
        const char *needle;
    } want[] = {
        {6, "sample blocks are not stored"},
        {2, "\"1e+300\" is out of range for type real"},
        {4, "violates check constraint \"strict_value_check\""},
        {5, "0x00"},
        {7, "invalid byte sequence for encoding \"UTF8\": 0xff"},
    };
    assert_int_equal(o.nrej, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(o.rej_index[i], want[i].index);
        assert_non_null(strstr(o.rej_reason[i], want[i].needle));
    }
    assert_non_null(strstr(o.rej_reason[1], "PostgreSQL refused the row"));
    assert_string_equal(
        sql("SELECT string_agg(value::text, ',' ORDER BY time) FROM strict", got, sizeof(got)),
        "0,1,3,8\n");
    assert_int_equal(sql_long("SELECT next_offset FROM millrace_output_offsets WHERE topic = 't'"),
                     59);
    out_close(&o, true);
    /* a restart reads the batch again: nothing written, the refused rows rejected again */
    assert_int_equal(out_open(&o, yaml, "secret", "postgres", &err), 0);
    for (int i = 0; i < 9; i++) {
        r[i].asset = id(&o, "a");
        r[i].signal = id(&o, "v");
    }
    assert_int_equal(out_write(&o, "t", offs, r, 9, &err), MR_SINK_OK);
    assert_int_equal(o.nrej, 5);
    static const size_t again[] = {2, 4, 5, 6, 7};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(o.rej_index[i], again[i]);
    }
    assert_non_null(strstr(o.rej_reason[1], "check constraint"));
    assert_int_equal(sql_long("SELECT count(*) FROM strict"), 4);
    out_close(&o, true);
    sql("DROP TABLE strict", got, sizeof(got));
    sql("DELETE FROM millrace_output_offsets", got, sizeof(got));
    sql("DELETE FROM millrace_output_rejects", got, sizeof(got));
}

static void test_server_down_retry_then_recovery(void **state)
{
    (void)state;
    reset();
    struct out o;
    struct mr_err err;
    assert_int_equal(out_open(&o, base_yaml, "secret", "postgres", &err), 0);
    struct mr_record r[4];
    const int64_t offs[] = {0, 1, 2, 3};
    for (int i = 0; i < 4; i++) {
        r[i] = num(&o, 1700000000000000000LL + i, "a", "v", i);
    }
    assert_int_equal(out_write(&o, "t", offs, r, 1, &err), MR_SINK_OK);
    PQfinish(srv.sql);
    srv.sql = NULL;
    server_stop();
    /* connection lost, then refused: RETRY each time, promptly */
    assert_int_equal(out_write(&o, "t", offs + 1, r + 1, 2, &err), MR_SINK_RETRY);
    assert_non_null(strstr(err.msg, "connection"));
    assert_int_equal(out_write(&o, "t", offs + 1, r + 1, 2, &err), MR_SINK_RETRY);
    assert_non_null(strstr(err.msg, "cannot connect to PostgreSQL"));
    /* an instance started while the server is away, with a wrong password: init works */
    struct out bad;
    assert_int_equal(out_open(&bad, base_yaml, "wrong", "postgres", &err), 0);
    server_start();
    assert_int_equal(out_write(&o, "t", offs + 1, r + 1, 3, &err), MR_SINK_OK);
    assert_int_equal(sql_long("SELECT count(*) FROM measurements"), 4);
    assert_int_equal(sql_long("SELECT sum(value) FROM measurements"), 6);
    /* ...and its first write says why it cannot work */
    assert_int_equal(out_write(&bad, "t", offs, r, 1, &err), MR_SINK_FATAL);
    assert_non_null(strstr(err.msg, "password authentication failed"));
    out_close(&bad, true);
    out_close(&o, true);
    char got[64];
    sql("DROP TABLE measurements", got, sizeof(got));
    sql("DELETE FROM millrace_output_offsets", got, sizeof(got));
}

static void test_fatal_config(void **state)
{
    (void)state;
    reset();
    struct out o;
    struct mr_err err;
    static const struct {
        const char *yaml, *pw, *db, *needle;
    } cases[] = {
        {base_yaml, "wrong", "postgres", "password authentication failed for user \"postgres\""},
        {base_yaml, "secret", "nosuchdb", "database \"nosuchdb\" does not exist"},
        {"connection: \"%s\"\ntable: absent\ncreate_tables: false\n", "secret", "postgres",
         "\"public\".\"absent\" does not exist and create_tables is false"},
        {"connection: \"%s\"\ntimescaledb: on\n", "secret", "postgres",
         "timescaledb extension is not installed"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(out_open(&o, cases[i].yaml, cases[i].pw, cases[i].db, &err), MR_ECONFIG);
        assert_non_null(strstr(err.msg, cases[i].needle));
        out_close(&o, false);
    }
    static struct mr_config_errors errs;
    static const struct {
        const char *yaml, *needle;
    } bad[] = {
        {"table: x\n", "connection"},
        {"connection: x\nsignals: [a]\n", "only for layout: wide"},
        {"connection: x\nlayout: wide\nsignals: [a, time]\n", "\"time\": time and asset are"},
        {"connection: x\nlayout: wide\nsignals: "
         "[a234567890123456789012345678901234567890123456789012345678901234]\n",
         "must be 1..63 bytes"},
        {"connection: x\nlayout: wide\nquality_columns: true\nsignals: "
         "[a2345678901234567890123456789012345678901234567890123456]\n",
         "at most 55 bytes with quality_columns"},
        {"connection: x\ntimescaledb: maybe\n", "timescaledb"},
        {"connection: x\ntabel: y\n", "did you mean 'table'"},
        {"connection: \"host=db port\"\n", "missing \"=\" after \"port\""},
        {"connection: \"postgres://db/x?colour=red\"\n", "invalid URI query parameter"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        union {
            max_align_t align;
            char bytes[512];
        } conf;
        int rc = mr_section_load_buffer(&mr_output_postgresql.conf, conf.bytes, "c.yaml",
                                        bad[i].yaml, strlen(bad[i].yaml), NULL, &errs);
        assert_int_not_equal(rc, 0);
        print_message("%s\n", errs.msg[0]);
        assert_non_null(strstr(errs.msg[0], "c.yaml:"));
        assert_non_null(strstr(errs.msg[0], bad[i].needle));
    }
    assert_int_equal(mr_section_validate(&mr_output_postgresql.conf, "outputs.x", &err), 0);
}

/* ---- layout: wide ---- */

static const char wide_yaml[] = "connection: \"%s\"\ntable: wide\nlayout: wide\n";
static const int64_t T0 = 1700000000000000000LL; /* 2023-11-14 22:13:20 UTC */

static struct mr_record str(struct out *o, int64_t t, const char *asset, const char *signal,
                            const char *v)
{
    struct mr_record r = num(o, t, asset, signal, 0);
    r.type = MR_VALUE_STRING;
    r.v.str = (struct mr_bytes){v, (uint32_t)strlen(v)};
    return r;
}

/* The whole wide table as text, for comparing before and after a replay. */
static const char *wide_dump(char *out, size_t cap)
{
    return sql("SELECT to_char(time AT TIME ZONE 'UTC', 'HH24:MI:SS.US'), asset, temp, "
               "pressure, state, speed FROM wide ORDER BY asset, time",
               out, cap);
}

static void wide_batch1(struct out *o, struct mr_record *r)
{
    r[0] = num(o, T0, "A", "temp", 1);
    r[1] = num(o, T0 + 999, "A", "pressure", 2); /* same microsecond: same row */
    r[2] = num(o, T0 + 1000000, "A", "temp", 3); /* + 1 ms */
    r[3] = num(o, T0, "B", "temp", 4);
    r[4] = num(o, T0, "A", "temp", 5); /* later record of the same signal and row: wins */
    r[5] = str(o, T0, "A", "state", "run\t\"1\"");
}

static void test_wide_merge_new_columns_and_replay(void **state)
{
    (void)state;
    reset();
    struct out o;
    struct mr_err err;
    char got[2048], before[2048];
    assert_int_equal(out_open(&o, wide_yaml, "secret", "postgres", &err), 0);
    struct mr_record r[8];
    static const int64_t offs[] = {0, 1, 2, 3, 4, 5, 6, 7};
    wide_batch1(&o, r);
    assert_int_equal(out_write(&o, "t", offs, r, 6, &err), MR_SINK_OK);
    assert_int_equal(o.nrej, 0);
    assert_string_equal(sql("SELECT to_char(time AT TIME ZONE 'UTC', 'HH24:MI:SS.US'), asset, "
                            "temp, pressure, state FROM wide ORDER BY asset, time",
                            got, sizeof(got)),
                        "22:13:20.000000|A|5|2|run\t\"1\"\n"
                        "22:13:20.001000|A|3|NULL|NULL\n"
                        "22:13:20.000000|B|4|NULL|NULL\n");
    assert_string_equal(sql("SELECT string_agg(attname || ' ' || format_type(atttypid, "
                            "atttypmod), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid "
                            "= 'wide'::regclass AND attnum > 0",
                            got, sizeof(got)),
                        "time timestamp with time zone, asset text, temp double precision, "
                        "pressure double precision, state text\n");
    /* a later batch merges into the existing row and adds a column for a new signal */
    r[6] = num(&o, T0, "A", "pressure", 7);
    r[7] = num(&o, T0 + 1000000, "A", "speed", 9.5);
    r[7].type = MR_VALUE_BOOL;
    r[7].v.b = true;
    assert_int_equal(out_write(&o, "t", offs + 6, r + 6, 2, &err), MR_SINK_OK);
    snprintf(before, sizeof(before), "%s", wide_dump(got, sizeof(got)));
    assert_string_equal(before, "22:13:20.000000|A|5|7|run\t\"1\"|NULL\n"
                                "22:13:20.001000|A|3|NULL|NULL|1\n"
                                "22:13:20.000000|B|4|NULL|NULL|NULL\n");
    out_close(&o, true);
    /* a restart reads everything again: the stored offset skips it */
    assert_int_equal(out_open(&o, wide_yaml, "secret", "postgres", &err), 0);
    wide_batch1(&o, r);
    r[6] = num(&o, T0, "A", "pressure", 7);
    r[7] = num(&o, T0 + 1000000, "A", "speed", 1);
    assert_int_equal(out_write(&o, "t", offs, r, 8, &err), MR_SINK_OK);
    assert_string_equal(wide_dump(got, sizeof(got)), before);
    out_close(&o, true);
    /* the commit of both batches lost (offsets gone, rows kept: the worst case for a merge):
     * writing them again rewrites the same values, the table is identical */
    sql("DELETE FROM millrace_output_offsets", got, sizeof(got));
    assert_int_equal(out_open(&o, wide_yaml, "secret", "postgres", &err), 0);
    wide_batch1(&o, r);
    r[6] = num(&o, T0, "A", "pressure", 7);
    r[7] = num(&o, T0 + 1000000, "A", "speed", 1);
    assert_int_equal(out_write(&o, "t", offs, r, 6, &err), MR_SINK_OK);
    assert_int_equal(out_write(&o, "t", offs + 6, r + 6, 2, &err), MR_SINK_OK);
    assert_string_equal(wide_dump(got, sizeof(got)), before);
    assert_int_equal(sql_long("SELECT next_offset FROM millrace_output_offsets"), 8);
    out_close(&o, true);
    reset();
}

static void test_wide_rejects_with_reasons(void **state)
{
    (void)state;
    reset();
    struct out o;
    struct mr_err err;
    char got[2048];
    static const char ok_yaml[] = "connection: \"%s\"\ntable: wide\nlayout: wide\n"
                                  "quality_columns: true\nsignals: [temp, pressure, state, "
                                  "temp_quality]\n";
    assert_int_equal(out_open(&o, ok_yaml, "secret", "postgres", &err), 0);
    struct mr_record r[8];
    static const int64_t offs[] = {20, 21, 22, 23, 24, 25, 26, 27};
    r[0] = num(&o, T0, "A", "temp", 1.5);
    r[0].quality = MR_QUALITY_BAD;
    r[1] = num(&o, T0 + 1000, "A", "temp", 2);
    r[2] = str(&o, T0 + 2000, "A", "temp", "hot"); /* string for a double precision column */
    r[3] = num(&o, T0, "A", "other", 1);           /* not in signals */
    r[4] = num(&o, T0, "A", "temp_quality", 1);    /* would be temp's quality column */
    float samples[2] = {1, 2};
    r[5] = num(&o, T0, "A", "pressure", 0);
    r[5].type = MR_VALUE_SAMPLES;
    r[5].v.samples = (struct mr_samples){.data = samples, .n = 2, .rate_hz = 10};
    r[6] = num(&o, T0, "A", "pressure", 3);
    r[6].quality = MR_QUALITY_UNCERTAIN;
    r[7] = str(&o, T0 + 3000, "B", "state", "idle");
    assert_int_equal(out_write(&o, "t", offs, r, 8, &err), MR_SINK_OK);
    static const struct {
        size_t index;
        const char *needle;
    } want[] = {
        {2, "signal \"temp\": a string value, but its column is double precision"},
        {3, "signal \"other\": not in the output's `signals` list"},
        {4, "signal \"temp_quality\": its column is another signal's <signal>_quality column"},
        {5, "sample blocks are not stored"},
    };
    assert_int_equal(o.nrej, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(o.rej_index[i], want[i].index);
        assert_non_null(strstr(o.rej_reason[i], want[i].needle));
    }
    assert_string_equal(sql("SELECT to_char(time AT TIME ZONE 'UTC', 'SS.US'), asset, temp, "
                            "temp_quality, pressure, pressure_quality, state, state_quality "
                            "FROM wide ORDER BY asset, time",
                            got, sizeof(got)),
                        "20.000000|A|1.5|2|3|1|NULL|NULL\n"
                        "20.000001|A|2|0|NULL|NULL|NULL|NULL\n"
                        "20.000003|B|NULL|NULL|NULL|NULL|idle|0\n");
    assert_int_equal(sql_long("SELECT next_offset FROM millrace_output_offsets"), 28);
    out_close(&o, true);
    /* a replay after a restart rejects the same records again, writes nothing */
    assert_int_equal(out_open(&o, ok_yaml, "secret", "postgres", &err), 0);
    assert_int_equal(out_write(&o, "t", offs, r, 8, &err), MR_SINK_OK);
    assert_int_equal(o.nrej, 4);
    assert_int_equal(sql_long("SELECT count(*) FROM wide"), 3);
    out_close(&o, true);
    /* every signal (no list): a name over 63 bytes and "asset" are refused */
    assert_int_equal(out_open(&o, wide_yaml, "secret", "postgres", &err), 0);
    static const char long_name[] =
        "s234567890123456789012345678901234567890123456789012345678901234"; /* 64 bytes */
    r[0] = num(&o, T0 + 5000, "A", long_name, 1);
    r[1] = num(&o, T0 + 5000, "A", "asset", 1);
    r[2] = num(&o, T0 + 5000, "A", "new.signal-1 \"x\"", 4); /* any characters */
    static const int64_t offs2[] = {30, 31, 32};
    assert_int_equal(out_write(&o, "t", offs2, r, 3, &err), MR_SINK_OK);
    assert_int_equal(o.nrej, 2);
    assert_non_null(strstr(o.rej_reason[0], "longer than PostgreSQL's 63-byte limit"));
    assert_non_null(strstr(o.rej_reason[1], "time and asset are the key columns"));
    assert_int_equal(sql_long("SELECT \"new.signal-1 \"\"x\"\"\" FROM wide WHERE time = "
                              "'2023-11-14 22:13:20.000005+00'"),
                     4);
    out_close(&o, true);
    reset();
}

static void test_wide_own_table(void **state)
{
    (void)state;
    reset();
    struct out o;
    struct mr_err err;
    char got[1024];
    sql("CREATE TABLE own (time timestamptz NOT NULL, asset text NOT NULL, temp real, "
        "note varchar(10), UNIQUE (asset, time))",
        got, sizeof(got));
    static const char yaml[] = "connection: \"%s\"\ntable: own\nlayout: wide\n"
                               "create_tables: false\n";
    assert_int_equal(out_open(&o, yaml, "secret", "postgres", &err), 0);
    struct mr_record r[5];
    static const int64_t offs[] = {0, 1, 2, 3, 4};
    r[0] = num(&o, T0, "A", "temp", 20.5);
    r[1] = num(&o, T0, "A", "pressure", 2);                 /* no column, may not add one */
    r[2] = num(&o, T0 + 1000, "A", "temp", 1e300);          /* out of range for real */
    r[3] = str(&o, T0 + 2000, "A", "note", "0123456789ab"); /* too long for varchar(10) */
    r[4] = str(&o, T0 + 3000, "A", "note", "ok");
    assert_int_equal(out_write(&o, "t", offs, r, 5, &err), MR_SINK_OK);
    assert_int_equal(o.nrej, 3);
    assert_int_equal(o.rej_index[0], 1);
    assert_non_null(strstr(o.rej_reason[0], "signal \"pressure\": the table has no column for "
                                            "it and create_tables is false"));
    assert_int_equal(o.rej_index[1], 2);
    assert_non_null(strstr(o.rej_reason[1], "PostgreSQL refused the row: \"1e+300\" is out of "
                                            "range for type real"));
    assert_int_equal(o.rej_index[2], 3);
    assert_non_null(strstr(o.rej_reason[2], "value too long for type character varying(10)"));
    assert_string_equal(sql("SELECT temp, note FROM own ORDER BY time", got, sizeof(got)),
                        "20.5|NULL\nNULL|ok\n");
    out_close(&o, true);
    /* a table without a unique key on (asset, time) cannot be merged into */
    sql("CREATE TABLE nokey (time timestamptz NOT NULL, asset text NOT NULL, temp real)", got,
        sizeof(got));
    static const char nokey[] = "connection: \"%s\"\ntable: nokey\nlayout: wide\n";
    assert_int_equal(out_open(&o, nokey, "secret", "postgres", &err), MR_ECONFIG);
    assert_non_null(strstr(err.msg, "no PRIMARY KEY or UNIQUE constraint on (asset, time)"));
    out_close(&o, false);
    static const char absent[] = "connection: \"%s\"\ntable: absent\nlayout: wide\n"
                                 "create_tables: false\n";
    assert_int_equal(out_open(&o, absent, "secret", "postgres", &err), MR_ECONFIG);
    assert_non_null(strstr(err.msg, "does not exist and create_tables is false"));
    out_close(&o, false);
    reset();
}

static void test_wide_server_down_retry_then_recovery(void **state)
{
    (void)state;
    reset();
    struct out o;
    struct mr_err err;
    assert_int_equal(out_open(&o, wide_yaml, "secret", "postgres", &err), 0);
    struct mr_record r[3];
    static const int64_t offs[] = {0, 1, 2};
    r[0] = num(&o, T0, "A", "temp", 1);
    r[1] = num(&o, T0, "A", "pressure", 2); /* a new column, while the server is down */
    r[2] = num(&o, T0 + 1000, "A", "temp", 3);
    assert_int_equal(out_write(&o, "t", offs, r, 1, &err), MR_SINK_OK);
    PQfinish(srv.sql);
    srv.sql = NULL;
    server_stop();
    assert_int_equal(out_write(&o, "t", offs + 1, r + 1, 2, &err), MR_SINK_RETRY);
    assert_int_equal(out_write(&o, "t", offs + 1, r + 1, 2, &err), MR_SINK_RETRY);
    assert_non_null(strstr(err.msg, "cannot connect to PostgreSQL"));
    server_start();
    assert_int_equal(out_write(&o, "t", offs + 1, r + 1, 2, &err), MR_SINK_OK);
    assert_int_equal(o.nrej, 0);
    char got[256];
    assert_string_equal(sql("SELECT temp, pressure FROM wide ORDER BY time", got, sizeof(got)),
                        "1|2\n3|NULL\n");
    out_close(&o, true);
    reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_exact),
        cmocka_unit_test(test_replay_writes_nothing_twice),
        cmocka_unit_test(test_refused_rows_rejected_rest_committed),
        cmocka_unit_test(test_server_down_retry_then_recovery),
        cmocka_unit_test(test_fatal_config),
        cmocka_unit_test(test_wide_merge_new_columns_and_replay),
        cmocka_unit_test(test_wide_rejects_with_reasons),
        cmocka_unit_test(test_wide_own_table),
        cmocka_unit_test(test_wide_server_down_retry_then_recovery),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
