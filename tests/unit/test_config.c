/* Config loading: values, every field type, defaults, bounds, errors with FILE:LINE:COLUMN and
 * hints, bad YAML, overrides, environment, the error cap, allocation failures and the docs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "millrace/alloc.h"
#include "millrace/config.h"
#include "millrace/plugin.h"

#define NS_MS 1000000LL
#define NS_S  1000000000LL

static struct mr_config_errors errs;

/* True when some message contains every one of the NULL-terminated needles. */
static bool has_error(const char *const *needles)
{
    for (size_t i = 0; i < errs.n; i++) {
        bool all = true;
        for (size_t j = 0; needles[j] != NULL && all; j++) {
            all = strstr(errs.msg[i], needles[j]) != NULL;
        }
        if (all) {
            return true;
        }
    }
    return false;
}

static void print_errors(void)
{
    for (size_t i = 0; i < errs.n; i++) {
        print_message("  error: %s\n", errs.msg[i]);
    }
}

/* ---- values ---- */

struct duration_case {
    const char *text;
    int rc;
    int64_t ns;
    const char *msg;
};

static void test_durations(void **state)
{
    (void)state;
    static const struct duration_case cases[] = {
        {.text = "250ms", .ns = 250 * NS_MS},
        {.text = "5m", .ns = 300 * NS_S},
        {.text = "1h30m", .ns = 5400 * NS_S},
        {.text = "1.5s", .ns = 1500 * NS_MS},
        {.text = "10us", .ns = 10000},
        {.text = "10\xc2\xb5s", .ns = 10000},
        {.text = "100ns", .ns = 100},
        {.text = "0", .ns = 0},
        {.text = "0s", .ns = 0},
        {.text = "7d", .ns = 7 * 86400 * NS_S},
        {.text = "2h0m5s", .ns = 7205 * NS_S},
        {.text = "0.5ms", .ns = 500000},
        {.text = "0.000000001s", .ns = 1},
        {.text = "106751d", .ns = 106751LL * 86400 * NS_S},
        {.text = "30", .rc = MR_EINVAL, .msg = "needs a unit: write e.g. '30s' or '30ms'"},
        {.text = "1.5", .rc = MR_EINVAL, .msg = "needs a unit"},
        {.text = "", .rc = MR_EINVAL, .msg = "expected a duration"},
        {.text = "-5s", .rc = MR_EINVAL, .msg = "cannot be negative"},
        {.text = "5x", .rc = MR_EINVAL, .msg = "unknown unit 'x'"},
        {.text = "5 s", .rc = MR_EINVAL, .msg = "needs a unit"},
        {.text = "s", .rc = MR_EINVAL, .msg = "expected a duration"},
        {.text = "1h 30m", .rc = MR_EINVAL, .msg = "expected a duration"},
        {.text = "106752d", .rc = MR_ERANGE, .msg = "too large"},
        {.text = "9223372036854775807ns5ns", .rc = MR_ERANGE, .msg = "too large"},
        {.text = "99999999999999999999s", .rc = MR_ERANGE, .msg = "too large"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct duration_case *c = &cases[i];
        struct mr_err err = {0};
        int64_t ns = -1;
        int rc = mr_duration_parse(c->text, &ns, &err);
        print_message("duration '%s' -> %d %s\n", c->text, rc, rc != 0 ? err.msg : "");
        assert_int_equal(rc, c->rc);
        if (rc == 0) {
            assert_int_equal(ns, c->ns);
        } else {
            assert_int_equal(ns, -1); /* out-param untouched on failure */
            assert_non_null(strstr(err.msg, c->msg));
        }
    }
}

struct size_case {
    const char *text;
    int rc;
    uint64_t bytes;
    const char *msg;
};

static void test_sizes(void **state)
{
    (void)state;
    static const struct size_case cases[] = {
        {.text = "64MiB", .bytes = 64ull << 20},
        {.text = "1GB", .bytes = 1000000000},
        {.text = "512KiB", .bytes = 512 * 1024},
        {.text = "4096", .bytes = 4096},
        {.text = "0", .bytes = 0},
        {.text = "1.5KiB", .bytes = 1536},
        {.text = "2 MiB", .bytes = 2ull << 20},
        {.text = "3kb", .bytes = 3000},
        {.text = "10B", .bytes = 10},
        {.text = "16TiB", .bytes = 16ull << 40},
        {.text = "18446744073709551615", .bytes = UINT64_MAX},
        {.text = "-1", .rc = MR_EINVAL, .msg = "cannot be negative"},
        {.text = "12XB", .rc = MR_EINVAL, .msg = "unknown unit"},
        {.text = "abc", .rc = MR_EINVAL, .msg = "expected a size"},
        {.text = "", .rc = MR_EINVAL, .msg = "expected a size"},
        {.text = "20000000TiB", .rc = MR_ERANGE, .msg = "too large"},
        {.text = "18446744073709551616", .rc = MR_ERANGE, .msg = "too large"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct size_case *c = &cases[i];
        struct mr_err err = {0};
        uint64_t bytes = 7;
        int rc = mr_size_parse(c->text, &bytes, &err);
        print_message("size '%s' -> %d %s\n", c->text, rc, rc != 0 ? err.msg : "");
        assert_int_equal(rc, c->rc);
        if (rc == 0) {
            assert_true(bytes == c->bytes);
        } else {
            assert_true(bytes == 7);
            assert_non_null(strstr(err.msg, c->msg));
        }
    }
}

/* ---- a table using every field type ---- */

struct inner {
    int64_t n;
    char *label;
};

struct all {
    bool flag;
    int64_t count;
    double ratio;
    char *name;
    int64_t wait_ns;
    uint64_t cap;
    int mode;
    struct mr_strlist hosts;
    struct mr_strmap labels;
    struct inner nested;
    struct mr_conf_list items;
    struct mr_conf_map named;
    char *needed;
    bool has_wait;
};

static const char *const modes[] = {"fast", "safe", "off", NULL};

static const struct mr_field inner_fields[] = {
    {.name = "n",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct inner, n),
     .def = "3",
     .min = "0",
     .help = "a count"},
    {.name = "label",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct inner, label),
     .def = "none",
     .help = "a label"},
    {0},
};

static const struct mr_section inner_section = {.fields = inner_fields,
                                                .size = sizeof(struct inner)};

static const struct mr_field all_fields[] = {
    {.name = "flag",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct all, flag),
     .def = "true",
     .help = "a bool"},
    {.name = "count",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct all, count),
     .def = "5",
     .min = "1",
     .max = "10",
     .help = "an int"},
    {.name = "ratio",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct all, ratio),
     .def = "0.25",
     .min = "0",
     .max = "1",
     .help = "a double"},
    {.name = "name",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct all, name),
     .def = "anon",
     .help = "a string"},
    {.name = "wait",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct all, wait_ns),
     .def = "1s",
     .min = "1ms",
     .max = "1h",
     .present = MR_FIELD_PRESENT(struct all, has_wait),
     .help = "a duration"},
    {.name = "cap",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct all, cap),
     .def = "1MiB",
     .min = "1KiB",
     .max = "1GiB",
     .help = "a size"},
    {.name = "mode",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct all, mode),
     .def = "safe",
     .values = modes,
     .help = "an enum"},
    {.name = "hosts",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct all, hosts),
     .max = "3",
     .help = "a list"},
    {.name = "labels",
     .type = MR_FIELD_STRING_MAP,
     .offset = offsetof(struct all, labels),
     .help = "a map"},
    {.name = "nested",
     .type = MR_FIELD_SECTION,
     .offset = offsetof(struct all, nested),
     .section = &inner_section,
     .help = "a section"},
    {.name = "items",
     .type = MR_FIELD_SECTION_LIST,
     .offset = offsetof(struct all, items),
     .section = &inner_section,
     .help = "a list of sections"},
    {.name = "named",
     .type = MR_FIELD_SECTION_MAP,
     .offset = offsetof(struct all, named),
     .section = &inner_section,
     .help = "a map of sections"},
    {.name = "needed",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct all, needed),
     .flags = MR_FIELD_REQUIRED,
     .help = "a required string"},
    {0},
};

static const struct mr_section all_section = {.fields = all_fields, .size = sizeof(struct all)};

static int load_all(struct all *a, const char *yaml)
{
    int rc = mr_section_load_buffer(&all_section, a, "t.yaml", yaml, strlen(yaml), NULL, &errs);
    if (rc != 0) {
        print_errors();
    }
    return rc;
}

static void test_field_types(void **state)
{
    (void)state;
    struct all a;
    const char *yaml = "flag: off\n"
                       "count: 0x0a\n"
                       "ratio: 0.5\n"
                       "name: \"press 3\"\n"
                       "wait: 1m30s\n"
                       "cap: 64KiB\n"
                       "mode: fast\n"
                       "hosts: [a, b]\n"
                       "labels: {unit: degC, line: 1}\n"
                       "nested: {n: 7}\n"
                       "items:\n"
                       "  - {n: 1, label: x}\n"
                       "  - {}\n"
                       "named:\n"
                       "  left: {label: l}\n"
                       "  right:\n"
                       "needed: yes\n";
    assert_int_equal(load_all(&a, yaml), 0);
    assert_false(a.flag);
    assert_int_equal(a.count, 10);
    assert_true(a.ratio == 0.5);
    assert_string_equal(a.name, "press 3");
    assert_int_equal(a.wait_ns, 90 * NS_S);
    assert_true(a.has_wait);
    assert_true(a.cap == 64 * 1024);
    assert_int_equal(a.mode, 0);
    assert_int_equal(a.hosts.n, 2);
    assert_string_equal(a.hosts.items[1], "b");
    assert_int_equal(a.labels.n, 2);
    assert_string_equal(a.labels.items[0].key, "unit");
    assert_string_equal(a.labels.items[1].value, "1");
    assert_int_equal(a.nested.n, 7);
    assert_string_equal(a.nested.label, "none");
    assert_int_equal(a.items.n, 2);
    const struct inner *items = a.items.items;
    assert_int_equal(items[0].n, 1);
    assert_string_equal(items[0].label, "x");
    assert_int_equal(items[1].n, 3);
    assert_int_equal(a.named.n, 2);
    assert_string_equal(a.named.items[1].name, "right");
    assert_int_equal(((struct inner *)a.named.items[1].conf)->n, 3);
    assert_string_equal(a.needed, "yes");
    mr_section_free(&all_section, &a);

    /* Defaults: everything absent but the required field. */
    assert_int_equal(load_all(&a, "needed: x\nhosts: one\n"), 0);
    assert_true(a.flag);
    assert_int_equal(a.count, 5);
    assert_true(a.ratio == 0.25);
    assert_string_equal(a.name, "anon");
    assert_int_equal(a.wait_ns, NS_S);
    assert_false(a.has_wait);
    assert_true(a.cap == 1024 * 1024);
    assert_int_equal(a.mode, 1);
    assert_int_equal(a.hosts.n, 1); /* a single value is a list of one */
    assert_string_equal(a.hosts.items[0], "one");
    assert_int_equal(a.nested.n, 3);
    assert_string_equal(a.nested.label, "none");
    assert_int_equal(a.items.n, 0);
    mr_section_free(&all_section, &a);
}

struct bad_case {
    const char *yaml;
    const char *needles[4];
};

static void test_field_errors(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"needed: x\nflag: maybe\n", {"t.yaml:2:7: flag: expected true or false, got 'maybe'"}},
        {"needed: x\ncount: 11\n",
         {"t.yaml:2:8: count: 11 is out of range: must be between 1 "
          "and 10"}},
        {"needed: x\ncount: 1.5\n", {"count: expected an integer, got '1.5'"}},
        {"needed: x\ncount: 99999999999999999999\n", {"count: integer", "is too large"}},
        {"needed: x\nratio: 2\n", {"ratio: 2 is out of range"}},
        {"needed: x\nratio: nan\n", {"ratio: expected a number"}},
        {"needed: x\nwait: 0\n", {"wait: 0 is out of range: must be between 1ms and 1h"}},
        {"needed: x\nwait: 10\n", {"wait: duration '10' needs a unit"}},
        {"needed: x\ncap: 2GiB\n", {"cap: 2GiB is out of range"}},
        {"needed: x\nmode: fats\n",
         {"mode: expected one of: fast, safe, off; got 'fats' (did "
          "you mean 'fast'?)"}},
        {"needed: x\nhosts: [a, b, c, d]\n", {"hosts: takes at most 3 items, got 4"}},
        {"needed: x\nhosts: [a, [b]]\n", {"t.yaml:2:12: hosts[1]: expected a string, got a list"}},
        {"needed: x\nhosts: {a: b}\n", {"hosts: expected a list of strings"}},
        {"needed: x\nlabels: [a]\n", {"labels: expected a map of key: value, got a list"}},
        {"needed: x\nlabels: {a: {b: c}}\n", {"labels.a: expected a string, got a section"}},
        {"needed: x\nnested: 5\n",
         {"nested: expected a section (key: value pairs), got a "
          "single value"}},
        {"needed: x\nnested: {n: -1}\n", {"nested.n: -1 is too small: must be at least 0"}},
        {"needed: x\nitems: {n: 1}\n", {"items: expected a list, got a section"}},
        {"needed: x\nitems: [{n: x}]\n", {"items[0].n: expected an integer, got 'x'"}},
        {"needed: x\nnamed: {a: {m: 1}}\n",
         {"t.yaml:2:13: named.a.m: unknown key 'm' (did you "
          "mean 'n'?)"}},
        {"needed: x\nname: [a]\n", {"name: expected a string, got a list"}},
        {"flag: true\n", {"t.yaml:1:1: missing required field 'needed'"}},
        {"needed:\n", {"missing required field 'needed'"}},
        {"needed: x\ncont: 3\n",
         {"t.yaml:2:1: cont: unknown key 'cont' (did you mean "
          "'count'?)"}},
        {"needed: x\nnestedsection: {}\n",
         {"unknown key 'nestedsection' (did you mean "
          "'nested'?)"}},
        {"needed: x\nzzzzzz: 1\n", {"unknown key 'zzzzzz'"}},
        {"- a\n- b\n", {"t.yaml:1:1: expected a map of settings"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct all a;
        print_message("case %zu: %s", i, cases[i].yaml);
        assert_int_equal(mr_section_load_buffer(&all_section, &a, "t.yaml", cases[i].yaml,
                                                strlen(cases[i].yaml), NULL, &errs),
                         MR_ECONFIG);
        print_errors();
        assert_true(has_error(cases[i].needles));
        assert_int_equal(errs.total, 1);
    }
}

/* ---- the real config file ---- */

static struct mr_config *load(const char *yaml, const char *const *sets, size_t nsets, int want)
{
    struct mr_config *cfg = NULL;
    struct mr_config_opts opts = {.sets = sets, .nsets = nsets};
    int rc = mr_config_load_buffer(&cfg, "plant.yaml", yaml, strlen(yaml), &opts, &errs);
    print_errors();
    assert_int_equal(rc, want);
    if (rc != 0) {
        assert_null(cfg);
    }
    return cfg;
}

static void test_defaults(void **state)
{
    (void)state;
    struct mr_config *cfg = load("", NULL, 0, 0);
    assert_string_equal(cfg->source, "plant.yaml");
    assert_string_equal(cfg->journal.dir, "./millrace-data");
    assert_int_equal(cfg->journal.fsync, MR_FSYNC_ALWAYS);
    assert_int_equal(cfg->journal.fsync_interval_ns, 10 * NS_MS);
    assert_true(cfg->journal.segment_bytes == 64ull << 20);
    assert_int_equal(cfg->journal.segment_age_ns, 3600 * NS_S);
    assert_int_equal(cfg->journal.retention_age_ns, 7 * 86400 * NS_S);
    assert_true(cfg->journal.retention_bytes == 0);
    assert_int_equal(cfg->journal.topics.n, 0);
    assert_string_equal(cfg->http.listen, "127.0.0.1:8080");
    assert_int_equal(cfg->inputs.n, 0);
    assert_int_equal(cfg->pipelines.n, 0);
    assert_int_equal(cfg->outputs.n, 0);
    assert_int_equal(cfg->assets.n, 0);
    mr_config_destroy(cfg);
    mr_config_destroy(NULL);
}

/* A list default ("[a, b]" in the table) is applied when the key is absent, and replaced, not
 * extended, when it is given. */
struct list_default_conf {
    struct mr_strlist words;
};
static const struct mr_field list_default_fields[] = {
    {.name = "words",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct list_default_conf, words),
     .def = "[count,  mean , max]",
     .help = "x"},
    {0},
};
static const struct mr_section list_default_section = {.fields = list_default_fields,
                                                       .size = sizeof(struct list_default_conf)};

static void test_list_defaults(void **state)
{
    (void)state;
    struct list_default_conf c;
    static struct mr_config_errors e;
    assert_int_equal(mr_section_load_buffer(&list_default_section, &c, "t.yaml", "{}", 2, NULL, &e),
                     0);
    assert_int_equal(c.words.n, 3);
    assert_string_equal(c.words.items[0], "count");
    assert_string_equal(c.words.items[1], "mean");
    assert_string_equal(c.words.items[2], "max");
    mr_section_free(&list_default_section, &c);
    const char *y = "words: [p95]";
    assert_int_equal(
        mr_section_load_buffer(&list_default_section, &c, "t.yaml", y, strlen(y), NULL, &e), 0);
    assert_int_equal(c.words.n, 1);
    assert_string_equal(c.words.items[0], "p95");
    mr_section_free(&list_default_section, &c);
}

static const char plant_yaml[] = "# a plant\n"
                                 "journal:\n"
                                 "  dir: /var/lib/millrace\n"
                                 "  fsync: interval\n"
                                 "  fsync_interval: 10ms\n"
                                 "  retention_age: 2d\n"
                                 "  retention_bytes: 10GiB\n"
                                 "  topics:\n"
                                 "    raw: {partitions: 4}\n"
                                 "    alerts: {retention_age: 0, retention_bytes: 1GiB}\n"
                                 "inputs:\n"
                                 "  press_temp:\n"
                                 "    type: stdin\n"
                                 "    format: value\n"
                                 "    asset: plant/press/line1/press3\n"
                                 "    signal: temp\n"
                                 "pipelines:\n"
                                 "  clean:\n"
                                 "    from: [press_temp]\n"
                                 "    steps: []\n"
                                 "    to: [console, raw]\n"
                                 "outputs:\n"
                                 "  console: {type: stdout}\n"
                                 "http:\n"
                                 "  listen: 0.0.0.0:9090\n"
                                 "assets:\n"
                                 "  plant/press/line1/press3:\n"
                                 "    description: 400 t hydraulic press\n"
                                 "    tags: {vendor: Schuler}\n";

static void test_full_file(void **state)
{
    (void)state;
    struct mr_config *cfg = load(plant_yaml, NULL, 0, 0);
    assert_string_equal(cfg->journal.dir, "/var/lib/millrace");
    assert_int_equal(cfg->journal.fsync, MR_FSYNC_INTERVAL);
    assert_int_equal(cfg->journal.topics.n, 2);
    const struct mr_journal_topic_conf *raw = cfg->journal.topics.items[0].conf;
    const struct mr_journal_topic_conf *alerts = cfg->journal.topics.items[1].conf;
    assert_string_equal(cfg->journal.topics.items[0].name, "raw");
    assert_int_equal(raw->partitions, 4);
    assert_int_equal(raw->retention_age_ns, 2 * 86400 * NS_S); /* inherited */
    assert_true(raw->retention_bytes == 10ull << 30);
    assert_int_equal(alerts->partitions, 1);
    assert_int_equal(alerts->retention_age_ns, 0); /* overridden to "forever" */
    assert_true(alerts->retention_bytes == 1ull << 30);

    assert_int_equal(cfg->inputs.n, 1);
    const struct mr_plugin_conf *in = &cfg->inputs.items[0];
    assert_string_equal(in->name, "press_temp");
    assert_string_equal(in->path, "inputs.press_temp");
    assert_string_equal(in->where, "plant.yaml:12:3");
    assert_ptr_equal(in->plugin, mr_plugin_find(MR_PLUGIN_INPUT, "stdin"));
    assert_non_null(in->conf);

    assert_int_equal(cfg->pipelines.n, 1);
    const struct mr_pipeline_conf *p = cfg->pipelines.items[0].conf;
    assert_int_equal(p->from.n, 1);
    assert_string_equal(p->from.items[0], "press_temp");
    assert_int_equal(p->steps.n, 0);
    assert_int_equal(p->to.n, 2);
    assert_string_equal(p->to.items[1], "raw");
    assert_int_equal(cfg->outputs.n, 1);
    assert_string_equal(cfg->outputs.items[0].plugin->name, "stdout");
    assert_string_equal(cfg->http.listen, "0.0.0.0:9090");
    assert_int_equal(cfg->assets.n, 1);
    const struct mr_asset_conf *asset = cfg->assets.items[0].conf;
    assert_string_equal(asset->description, "400 t hydraulic press");
    assert_string_equal(asset->tags.items[0].value, "Schuler");
    mr_config_destroy(cfg);
}

static void test_file_errors(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        /* bad YAML: libyaml's message with line:column */
        {"journal:\n  dir: \"unclosed\n", {"plant.yaml:3:1: ", "invalid YAML", "quoted scalar"}},
        {"inputs:\n  a:\n    type: stdin\n   fd: 3\n", {"plant.yaml:4:4: ", "invalid YAML"}},
        {"journal: {dir: x\n", {"plant.yaml:", "invalid YAML"}},
        {"a: &x 1\nb: *x\n", {"plant.yaml:2:4: ", "aliases (*x) are not supported"}},
        {"journal: {}\n---\njournal: {}\n", {"only one YAML document"}},
        {"journal: {dir: a, dir: b}\n",
         {"plant.yaml:1:19: ", "duplicate key 'dir' (first at "
                               "line 1)"}},
        {"? [a]\n: b\n", {"keys must be plain strings"}},
        {"42\n", {"plant.yaml:1:1: expected a map of settings"}},
        /* plugins */
        {"inputs:\n  a: {type: stdn}\n",
         {"plant.yaml:2:13: inputs.a.type: unknown input type "
          "'stdn' (did you mean 'stdin'?) (available: file, http_listener, modbus, mqtt, "
          "postgres_cdc, receive, sim, stdin)"}},
        {"inputs:\n  a: {fd: 1}\n", {"plant.yaml:2:3: inputs.a: missing required field 'type'"}},
        {"outputs:\n  a: stdout\n", {"outputs.a: expected a section with 'type:'"}},
        {"outputs:\n  a b: {type: stdout}\n", {"outputs.a b: a name may only use letters"}},
        {"inputs:\n  a: {type: stdin, format: value, signal: s}\n",
         {"inputs.a.asset: format: value needs the asset"}},
        {"inputs:\n  a: {type: stdin, asset: x}\n",
         {"inputs.a.asset: only used with format: "
          "value"}},
        {"inputs:\n  a: {type: stdin, max_line: 1GiB}\n",
         {"inputs.a.max_line: 1GiB is out of "
          "range: must be between 64B and "
          "16MiB"}},
        {"inputs: [a]\n", {"inputs: expected a map of name: {type: ..., ...}, got a list"}},
        /* pipelines */
        {"pipelines:\n  p: {from: [a]}\n",
         {"plant.yaml:2:3: pipelines.p: missing required "
          "field 'to'"}},
        {"pipelines:\n  p: {from: [], to: [b]}\n", {"pipelines.p.from: needs at least 1 item"}},
        {"pipelines:\n  p: {from: a, to: b, steps: [{type: windw}]}\n",
         {"plant.yaml:2:38: pipelines.p.steps[0].type: unknown operator type 'windw' (did you "
          "mean 'window'?)"}},
        /* a step's own settings: the error names the line and the operator's place */
        {"pipelines:\n  p: {from: a, to: b, steps: [{type: filter, where: 'x'}, {type: window}]}\n",
         {"plant.yaml:2:53: pipelines.p.steps[0].where: expression 'x': unknown name 'x'"}},
        {"pipelines:\n  p: {from: a, to: b, steps: [{type: filter, where: 'x'}, {type: window}]}\n",
         {"plant.yaml:2:59: pipelines.p.steps[1].size: kind: tumbling needs the window length"}},
        /* what a pipeline reads and writes */
        {"inputs: {i: {type: stdin}}\noutputs: {o: {type: stdout}}\n"
         "pipelines:\n  p: {from: [o], to: [i]}\n",
         {"pipelines.p.from: 'o' is an output"}},
        {"inputs: {i: {type: stdin}}\noutputs: {o: {type: stdout}}\n"
         "pipelines:\n  p: {from: [o], to: [i]}\n",
         {"pipelines.p.to: 'i' is an input"}},
        {"pipelines:\n  p: {from: [t], to: [t]}\n", {"'t' is both read and written"}},
        {"pipelines:\n  p.q: {from: a, to: b}\n", {"pipelines.p.q: a name may only use"}},
        /* sections */
        {"journal: {fsync: alway}\n",
         {"plant.yaml:1:18: journal.fsync: expected one of: "
          "always, interval, never; got 'alway' (did you mean "
          "'always'?)"}},
        {"journal:\n  segment_bytes: 1KiB\n",
         {"plant.yaml:2:18: journal.segment_bytes: 1KiB is "
          "out of range: must be between 4KiB and 4GiB"}},
        {"journal:\n  ret: 1d\n",
         {"plant.yaml:2:3: journal.ret: unknown key 'ret' (did you "
          "mean 'retention_age'?)"}},
        {"journal: {topics: {\"a/b\": {}}}\n", {"journal.topics.a/b: a topic name is"}},
        {"journal: {topics: {a: {partitions: 0}}}\n",
         {"journal.topics.a.partitions: 0 is out "
          "of range"}},
        {"http: {listen: localhost}\n", {"http.listen: expected HOST:PORT"}},
        {"http: {listen: \"h:99999\"}\n", {"http.listen: expected HOST:PORT"}},
        {"jurnal: {}\n",
         {"plant.yaml:1:1: jurnal: unknown key 'jurnal' (did you mean "
          "'journal'?)"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case %zu: %s", i, cases[i].yaml);
        mr_config_destroy(load(cases[i].yaml, NULL, 0, MR_ECONFIG));
        assert_true(has_error(cases[i].needles));
    }
}

static void test_multiple_errors(void **state)
{
    (void)state;
    const char *yaml = "journal:\n"
                       "  fsync: sometimes\n"
                       "  segment_bytes: 1\n"
                       "  segmnt_age: 1h\n"
                       "inputs:\n"
                       "  a: {type: nope}\n"
                       "outputs:\n"
                       "  b: {type: stdout, fd: -1}\n";
    mr_config_destroy(load(yaml, NULL, 0, MR_ECONFIG));
    assert_int_equal(errs.total, 5);
    assert_int_equal(errs.n, 5);
    /* In file order, each with its own line. */
    assert_non_null(strstr(errs.msg[0], "plant.yaml:2:"));
    assert_non_null(strstr(errs.msg[1], "plant.yaml:3:"));
    assert_non_null(strstr(errs.msg[2], "plant.yaml:4:3: journal.segmnt_age: unknown key "
                                        "'segmnt_age' (did you mean 'segment_age'?)"));
    assert_non_null(strstr(errs.msg[3], "plant.yaml:6:"));
    assert_non_null(strstr(errs.msg[4], "plant.yaml:8:"));

    /* More than the cap: the count stays right, the messages stop at the cap. */
    char big[8192];
    size_t used = (size_t)snprintf(big, sizeof(big), "journal:\n");
    for (int i = 0; i < 60; i++) {
        used += (size_t)snprintf(big + used, sizeof(big) - used, "  bogus%d: 1\n", i);
    }
    mr_config_destroy(load(big, NULL, 0, MR_ECONFIG));
    assert_int_equal(errs.total, 60);
    assert_int_equal(errs.n, MR_CONFIG_MAX_ERRORS);
}

static void test_overrides(void **state)
{
    (void)state;
    /* Replace a value, create keys absent from the file, set a list. */
    const char *sets[] = {
        "journal.segment_bytes=1MiB",
        "inputs.press_temp.type=stdin",
        "inputs.press_temp.fd=3",
        "outputs.console={type: stdout}",
        "pipelines.p.from=[press_temp, other]",
        "pipelines.p.to=console",
    };
    struct mr_config *cfg = load("journal: {segment_bytes: 2MiB}\n", sets, 6, 0);
    assert_true(cfg->journal.segment_bytes == 1ull << 20);
    assert_int_equal(cfg->inputs.n, 1);
    assert_string_equal(cfg->inputs.items[0].path, "inputs.press_temp");
    assert_int_equal(*(const int64_t *)cfg->inputs.items[0].conf, 3); /* fd comes first */
    assert_int_equal(cfg->outputs.n, 1);
    const struct mr_pipeline_conf *p = cfg->pipelines.items[0].conf;
    assert_int_equal(p->from.n, 2);
    assert_string_equal(p->from.items[1], "other");
    mr_config_destroy(cfg);

    static const struct {
        const char *set;
        const char *needle;
    } bad[] = {
        {"journal.segment_bytes=abc", "--set journal.segment_bytes: expected a size"},
        {"inputs.press_temp.port=1884", "--set inputs.press_temp.port: inputs.press_temp: "
                                        "missing required field 'type'"},
        {"nokey", "--set: expected key.path=value, got 'nokey'"},
        {"=5", "--set: expected key.path=value"},
        {"journal.dir.x=1", "--set journal.dir.x: 'journal.dir' is a value, not a section"},
        {"journal..dir=1", "--set journal..dir: empty or overlong key"},
        {"journal.dir=[", "--set journal.dir: invalid YAML"},
        {"journal.fsync=sometimes", "--set journal.fsync: expected one of"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("--set %s\n", bad[i].set);
        mr_config_destroy(load("journal: {dir: d}\n", &bad[i].set, 1, MR_ECONFIG));
        const char *needles[] = {bad[i].needle, NULL};
        assert_true(has_error(needles));
    }
}

static void test_environment(void **state)
{
    (void)state;
    setenv("MR_TEST_DIR", "/data/plant", 1);
    unsetenv("MR_TEST_UNSET");
    const char *yaml = "journal:\n"
                       "  dir: ${MR_TEST_DIR}/journal$${x}$$y\n"
                       "  retention_age: ${MR_TEST_UNSET:-3d}\n"
                       "http:\n"
                       "  listen: \"${MR_TEST_UNSET:-}h:${MR_TEST_UNSET:-80}\"\n";
    struct mr_config *cfg = load(yaml, NULL, 0, 0);
    assert_string_equal(cfg->journal.dir, "/data/plant/journal${x}$$y");
    assert_int_equal(cfg->journal.retention_age_ns, 3 * 86400 * NS_S);
    assert_string_equal(cfg->http.listen, "h:80");
    mr_config_destroy(cfg);

    static const struct bad_case bad[] = {
        {"journal:\n  dir: ${MR_TEST_UNSET}\n",
         {"plant.yaml:2:8: journal.dir: environment "
          "variable MR_TEST_UNSET is not set"}},
        {"journal:\n  dir: x${MR_TEST_DIR\n",
         {"plant.yaml:2:8: journal.dir: bad environment "
          "reference"}},
        {"journal:\n  dir: ${1X}\n", {"bad environment reference '${1X}'"}},
        {"inputs:\n  - ${MR_TEST_UNSET}\n", {"inputs[0]: environment variable"}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("case %zu: %s", i, bad[i].yaml);
        mr_config_destroy(load(bad[i].yaml, NULL, 0, MR_ECONFIG));
        assert_true(has_error(bad[i].needles));
    }
    unsetenv("MR_TEST_DIR");
}

static void test_files(void **state)
{
    (void)state;
    char path[] = "/tmp/millrace-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, plant_yaml, strlen(plant_yaml)), (ssize_t)strlen(plant_yaml));
    close(fd);
    struct mr_config *cfg = NULL;
    assert_int_equal(mr_config_load(&cfg, path, NULL, &errs), 0);
    assert_string_equal(cfg->source, path);
    assert_int_equal(cfg->inputs.n, 1);
    mr_config_destroy(cfg);
    unlink(path);

    cfg = NULL;
    assert_int_equal(mr_config_load(&cfg, path, NULL, &errs), MR_ENOENT);
    assert_null(cfg);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msg[0], "cannot read: no such file"));
    assert_non_null(strstr(errs.msg[0], path));
}

/* Fail each allocation in turn: every failure is a clean MR_ENOMEM, never a crash, a leak
 * (ASan) or a spurious configuration error; eventually the load succeeds. */
static void test_alloc_failures(void **state)
{
    (void)state;
    const char *sets[] = {"inputs.extra.type=stdin", "journal.dir=/x"};
    setenv("MR_TEST_DIR", "/data", 1);
    long n;
    for (n = 0; n < 100000; n++) {
        struct mr_config *cfg = NULL;
        struct mr_config_opts opts = {.sets = sets, .nsets = 2};
        mr_alloc_fail_after(n);
        int rc =
            mr_config_load_buffer(&cfg, "plant.yaml", plant_yaml, strlen(plant_yaml), &opts, &errs);
        long injected = mr_alloc_injected_failures();
        mr_alloc_fail_after(-1);
        if (rc == 0) {
            assert_int_equal(injected, 0);
            assert_int_equal(cfg->inputs.n, 2);
            mr_config_destroy(cfg);
            break;
        }
        assert_int_equal(rc, MR_ENOMEM);
        assert_true(injected > 0);
        assert_null(cfg);
    }
    print_message("load succeeded after %ld allocations\n", n);
    assert_true(n > 10 && n < 100000);
    unsetenv("MR_TEST_DIR");
}

static void test_tables_and_docs(void **state)
{
    (void)state;
    struct mr_err err = {0};
    assert_int_equal(mr_section_validate(&mr_config_root, "", &err), 0);
    assert_int_equal(mr_section_validate(&all_section, "all", &err), 0);
    static const enum mr_plugin_kind kinds[] = {MR_PLUGIN_INPUT, MR_PLUGIN_OPERATOR,
                                                MR_PLUGIN_OUTPUT};
    for (size_t k = 0; k < 3; k++) {
        const struct mr_plugin *p;
        for (size_t i = 0; (p = mr_plugin_at(kinds[k], i)) != NULL; i++) {
            assert_int_equal(p->kind, kinds[k]);
            assert_int_equal(mr_section_validate(&p->conf, p->name, &err), 0);
            assert_ptr_equal(mr_plugin_find(kinds[k], p->name), p);
        }
    }
    assert_null(mr_plugin_find(MR_PLUGIN_INPUT, "stdout"));

    /* Broken tables are caught. */
    static const struct mr_field bad_default[] = {
        {.name = "t", .type = MR_FIELD_DURATION, .offset = 0, .def = "5", .help = "h"},
        {0},
    };
    static const struct mr_field bad_enum[] = {
        {.name = "m",
         .type = MR_FIELD_ENUM,
         .offset = 0,
         .def = "slow",
         .values = modes,
         .help = "h"},
        {0},
    };
    static const struct mr_field out_of_bounds[] = {
        {.name = "n", .type = MR_FIELD_INT, .offset = 0, .def = "0", .min = "1", .help = "h"},
        {0},
    };
    static const struct mr_field outside[] = {
        {.name = "n", .type = MR_FIELD_INT, .offset = 8, .help = "h"},
        {0},
    };
    const struct mr_section broken[] = {
        {.fields = bad_default, .size = 8},
        {.fields = bad_enum, .size = 8},
        {.fields = out_of_bounds, .size = 8},
        {.fields = outside, .size = 8},
    };
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(mr_section_validate(&broken[i], "x", &err), MR_EINVAL);
        print_message("broken table %zu: %s\n", i, err.msg);
    }

    /* The docs are deterministic and cover sections and plugins. */
    char *a = NULL;
    char *b = NULL;
    size_t alen = 0;
    size_t blen = 0;
    FILE *fa = open_memstream(&a, &alen);
    FILE *fb = open_memstream(&b, &blen);
    assert_int_equal(mr_config_docs_write(fa, &err), 0);
    assert_int_equal(mr_config_docs_write(fb, &err), 0);
    fclose(fa);
    fclose(fb);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    assert_non_null(strstr(a, "| `segment_bytes` | size | `64MiB` | 4KiB .. 4GiB |"));
    assert_non_null(strstr(a, "| `fsync` | enum | `always` | `always`, `interval`, `never` |"));
    assert_non_null(strstr(a, "### `journal.topics.NAME`"));
    assert_non_null(strstr(a, "### input `stdin`"));
    assert_non_null(strstr(a, "### output `stdout`"));
    assert_non_null(strstr(a, "| `from` | list of strings | **required** |"));
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),       cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_field_types),     cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_defaults),        cmocka_unit_test(test_list_defaults),
        cmocka_unit_test(test_full_file),       cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_multiple_errors), cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_environment),     cmocka_unit_test(test_files),
        cmocka_unit_test(test_alloc_failures),  cmocka_unit_test(test_tables_and_docs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
