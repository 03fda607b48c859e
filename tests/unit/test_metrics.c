/* Metrics registry: values, exact Prometheus text, registration rules, validation of names,
 * labels and bounds, escaping, buffer sizing, concurrent updates, the series cap, and
 * allocation failures (no leaks: the test binary runs under LeakSanitizer). */
/* cmocka needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "millrace/alloc.h"
#include "millrace/error.h"
#include "millrace/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int setup(void **state)
{
    struct mr_metrics *m = NULL;
    if (mr_metrics_create(&m) != 0) {
        return -1;
    }
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    mr_alloc_fail_after(-1);
    mr_metrics_destroy(*state);
    return 0;
}

/* Render into a buffer that is freed by the caller. */
static char *render(struct mr_metrics *m)
{
    size_t needed = 0;
    assert_int_equal(mr_metrics_render(m, NULL, 0, &needed), MR_ETOOBIG);
    char *buf = malloc(needed);
    assert_non_null(buf);
    const long len = mr_metrics_render(m, buf, needed, NULL);
    assert_int_equal(len, (long)needed - 1);
    assert_int_equal(strlen(buf), (size_t)len);
    return buf;
}

static void assert_render(struct mr_metrics *m, const char *expected)
{
    char *text = render(m);
    assert_string_equal(text, expected);
    free(text);
}

/* ---- a small registry rendered exactly ---- */

static const double batch_bounds[] = {0.1, 0.5, 1};

static const char small_expected[] =
    "# HELP millrace_records_in_total Records read by an input.\n"
    "# TYPE millrace_records_in_total counter\n"
    "millrace_records_in_total{plugin=\"mqtt\",instance=\"press\"} 7\n"
    "millrace_records_in_total{plugin=\"modbus\"} 2\n"
    "# HELP millrace_lag_seconds Lag behind the journal head.\\nSecond line, with \\\\ in it.\n"
    "# TYPE millrace_lag_seconds gauge\n"
    "millrace_lag_seconds 1.25\n"
    "# HELP millrace_batch_seconds Batch time.\n"
    "# TYPE millrace_batch_seconds histogram\n"
    "millrace_batch_seconds_bucket{plugin=\"x\",le=\"0.1\"} 0\n"
    "millrace_batch_seconds_bucket{plugin=\"x\",le=\"0.5\"} 3\n"
    "millrace_batch_seconds_bucket{plugin=\"x\",le=\"1\"} 3\n"
    "millrace_batch_seconds_bucket{plugin=\"x\",le=\"+Inf\"} 4\n"
    "millrace_batch_seconds_sum{plugin=\"x\"} 2.75\n"
    "millrace_batch_seconds_count{plugin=\"x\"} 4\n"
    "millrace_batch_seconds_bucket{le=\"0.1\"} 1\n"
    "millrace_batch_seconds_bucket{le=\"0.5\"} 1\n"
    "millrace_batch_seconds_bucket{le=\"1\"} 1\n"
    "millrace_batch_seconds_bucket{le=\"+Inf\"} 1\n"
    "millrace_batch_seconds_sum 0.1\n"
    "millrace_batch_seconds_count 1\n";

/* Registers the small registry; with update, also sets its values. Returns the first failure. */
static int small_fill(struct mr_metrics *m, bool update)
{
    struct mr_counter *c1;
    struct mr_counter *c2;
    struct mr_gauge *g;
    struct mr_histogram *h1;
    struct mr_histogram *h2;
    int rc;

    rc = mr_metrics_counter(m, "millrace_records_in_total", "Records read by an input.",
                            "plugin=\"mqtt\",instance=\"press\"", &c1);
    if (rc != 0) {
        return rc;
    }
    rc = mr_metrics_counter(m, "millrace_records_in_total", "Records read by an input.",
                            "plugin=\"modbus\"", &c2);
    if (rc != 0) {
        return rc;
    }
    rc = mr_metrics_gauge(m, "millrace_lag_seconds",
                          "Lag behind the journal head.\nSecond line, with \\ in it.", NULL, &g);
    if (rc != 0) {
        return rc;
    }
    rc = mr_metrics_histogram(m, "millrace_batch_seconds", "Batch time.", "plugin=\"x\"",
                              batch_bounds, 3, &h1);
    if (rc != 0) {
        return rc;
    }
    rc = mr_metrics_histogram(m, "millrace_batch_seconds", "Batch time.", "", batch_bounds, 3, &h2);
    if (rc != 0 || !update) {
        return rc;
    }
    mr_counter_add(c1, 3);
    mr_counter_add(c1, 4);
    mr_counter_add(c2, 2);
    mr_gauge_set(g, 1.5);
    mr_gauge_add(g, -0.25);
    /* Binary fractions keep the sum exact. */
    mr_histogram_observe(h1, 0.125);
    mr_histogram_observe(h1, 0.25);
    mr_histogram_observe(h1, 0.375);
    mr_histogram_observe(h1, 2);
    mr_histogram_observe(h2, 0.1); /* on a bound: counted in le="0.1" */
    return 0;
}

static void test_small_registry(void **state)
{
    struct mr_metrics *m = *state;
    assert_int_equal(small_fill(m, true), 0);
    assert_render(m, small_expected);
}

static void test_empty_registry(void **state)
{
    struct mr_metrics *m = *state;
    char buf[4] = "xyz";
    size_t needed = 0;
    assert_int_equal(mr_metrics_render(m, buf, sizeof(buf), &needed), 0);
    assert_string_equal(buf, "");
    assert_int_equal(needed, 1);
}

static void test_values(void **state)
{
    struct mr_metrics *m = *state;
    struct mr_counter *c;
    struct mr_gauge *g;

    assert_int_equal(mr_metrics_counter(m, "c_total", "h", NULL, &c), 0);
    assert_int_equal(mr_counter_value(c), 0);
    mr_counter_add(c, 0);
    mr_counter_add(c, UINT64_C(1) << 40);
    mr_counter_add(c, 1);
    assert_int_equal(mr_counter_value(c), (UINT64_C(1) << 40) + 1);

    assert_int_equal(mr_metrics_gauge(m, "g", "h", NULL, &g), 0);
    assert_true(mr_gauge_value(g) == 0.0);
    mr_gauge_add(g, 2.5);
    mr_gauge_add(g, -4);
    assert_true(mr_gauge_value(g) == -1.5);
    mr_gauge_set(g, 1e300);
    assert_true(mr_gauge_value(g) == 1e300);
    mr_gauge_set(g, NAN);
    assert_true(isnan(mr_gauge_value(g)));
}

static void test_float_format(void **state)
{
    struct mr_metrics *m = *state;
    static const struct {
        double value;
        const char *text;
    } cases[] = {
        {0.0, "0"},
        {-0.0, "-0"},
        {1.0, "1"},
        {100.0, "100"},
        {0.1, "0.1"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3.0, "0.3333333333333333"},
        {-2.5e-7, "-2.5e-07"},
        {1e15, "1e+15"},
        {123456789012345678.0, "1.2345678901234568e+17"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {5e-324, "4.94065645841247e-324"},
        {NAN, "NaN"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
    };
    struct mr_gauge *g;
    assert_int_equal(mr_metrics_gauge(m, "v", "h", NULL, &g), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char expected[128];
        snprintf(expected, sizeof(expected), "# HELP v h\n# TYPE v gauge\nv %s\n", cases[i].text);
        mr_gauge_set(g, cases[i].value);
        assert_render(m, expected);
    }
}

static void test_histogram_edges(void **state)
{
    struct mr_metrics *m = *state;
    struct mr_histogram *h;
    static const double bounds[] = {-1, 0, 1};

    assert_int_equal(mr_metrics_histogram(m, "h", "x", NULL, bounds, 3, &h), 0);
    mr_histogram_observe(h, -5);
    mr_histogram_observe(h, -1);
    mr_histogram_observe(h, 0.5);
    mr_histogram_observe(h, 1);
    mr_histogram_observe(h, NAN); /* +Inf bucket, sum becomes NaN, as Prometheus clients do */
    assert_render(m, "# HELP h x\n# TYPE h histogram\n"
                     "h_bucket{le=\"-1\"} 2\n"
                     "h_bucket{le=\"0\"} 2\n"
                     "h_bucket{le=\"1\"} 4\n"
                     "h_bucket{le=\"+Inf\"} 5\n"
                     "h_sum NaN\n"
                     "h_count 5\n");

    /* No finite bounds: only the +Inf bucket. */
    struct mr_histogram *only;
    assert_int_equal(mr_metrics_histogram(m, "only", "o", NULL, NULL, 0, &only), 0);
    mr_histogram_observe(only, 3);
    mr_histogram_observe(only, 1e9);
    char *text = render(m);
    assert_non_null(strstr(text, "# TYPE only histogram\nonly_bucket{le=\"+Inf\"} 2\n"
                                 "only_sum 1000000003\nonly_count 2\n"));
    free(text);
}

static void test_duplicate_registration(void **state)
{
    struct mr_metrics *m = *state;
    struct mr_counter *a;
    struct mr_counter *b;
    struct mr_counter *other;
    struct mr_gauge *g;
    struct mr_histogram *h1;
    struct mr_histogram *h2;
    struct mr_histogram *h3;
    static const double b1[] = {1, 2};
    static const double b2[] = {1, 3};

    assert_int_equal(mr_metrics_counter(m, "x_total", "help", "k=\"v\"", &a), 0);
    assert_int_equal(mr_metrics_counter(m, "x_total", "help", "k=\"v\"", &b), 0);
    assert_ptr_equal(a, b);
    assert_int_equal(mr_metrics_counter(m, "x_total", "help", "k=\"w\"", &other), 0);
    assert_ptr_not_equal(a, other);
    /* No labels given as NULL or "" is the same series. */
    assert_int_equal(mr_metrics_counter(m, "y_total", "help", NULL, &a), 0);
    assert_int_equal(mr_metrics_counter(m, "y_total", "help", "", &b), 0);
    assert_ptr_equal(a, b);

    /* Same name, different kind or help: MR_EEXIST, out untouched. */
    g = (struct mr_gauge *)0x1;
    assert_int_equal(mr_metrics_gauge(m, "x_total", "help", "k=\"v\"", &g), MR_EEXIST);
    assert_ptr_equal(g, (struct mr_gauge *)0x1);
    assert_int_equal(mr_metrics_histogram(m, "x_total", "help", NULL, b1, 2, &h1), MR_EEXIST);
    assert_int_equal(mr_metrics_counter(m, "x_total", "other help", "k=\"v\"", &b), MR_EEXIST);
    assert_int_equal(mr_metrics_counter(m, "x_total", "other help", "k=\"new\"", &b), MR_EEXIST);

    /* Histograms of one name share their bounds. */
    assert_int_equal(mr_metrics_histogram(m, "h", "help", "a=\"1\"", b1, 2, &h1), 0);
    assert_int_equal(mr_metrics_histogram(m, "h", "help", "a=\"1\"", b1, 2, &h2), 0);
    assert_ptr_equal(h1, h2);
    assert_int_equal(mr_metrics_histogram(m, "h", "help", "a=\"2\"", b2, 2, &h3), MR_EEXIST);
    assert_int_equal(mr_metrics_histogram(m, "h", "help", "a=\"2\"", b1, 1, &h3), MR_EEXIST);
    assert_int_equal(mr_metrics_histogram(m, "h", "help", "a=\"2\"", b1, 2, &h3), 0);
    assert_ptr_not_equal(h1, h3);
    assert_int_equal(mr_metrics_counter(m, "h", "help", "a=\"1\"", &a), MR_EEXIST);
}

static void test_names(void **state)
{
    struct mr_metrics *m = *state;
    char long_name[258];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    char max_name[257];
    memset(max_name, 'b', sizeof(max_name) - 1);
    max_name[sizeof(max_name) - 1] = '\0';

    static const struct {
        const char *name;
        int rc;
    } cases[] = {
        {"a", 0},
        {"_a", 0},
        {":a", 0},
        {"a:b_c9", 0},
        {"Millrace_X", 0},
        {"", MR_EINVAL},
        {"1abc", MR_EINVAL},
        {"a-b", MR_EINVAL},
        {"a b", MR_EINVAL},
        {"a.b", MR_EINVAL},
        {"\xc3\xa9", MR_EINVAL},
        {"a{", MR_EINVAL},
        {"a\n", MR_EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_counter *c = NULL;
        assert_int_equal(mr_metrics_counter(m, cases[i].name, "h", NULL, &c), cases[i].rc);
        if (cases[i].rc == 0) {
            assert_non_null(c);
        } else {
            assert_null(c);
        }
    }
    struct mr_gauge *g;
    assert_int_equal(mr_metrics_gauge(m, long_name, "h", NULL, &g), MR_EINVAL);
    assert_int_equal(mr_metrics_gauge(m, max_name, "h", NULL, &g), 0);
}

static void test_labels(void **state)
{
    struct mr_metrics *m = *state;
    static const struct {
        const char *labels;
        int counter_rc;
        int histogram_rc;
    } cases[] = {
        {"a=\"x\"", 0, 0},
        {"a=\"\",b=\"\\\\\\\"\\n\"", 0, 0}, /* a="",b="\\\"\n" */
        {"a=\"caf\xc3\xa9\"", 0, 0},
        {"_a=\"1\",A9=\"2\"", 0, 0},
        {"le=\"1\"", 0, MR_EINVAL}, /* reserved for histogram buckets */
        {"a", MR_EINVAL, MR_EINVAL},
        {"a=", MR_EINVAL, MR_EINVAL},
        {"a=\"x", MR_EINVAL, MR_EINVAL},
        {"a=\"x\",", MR_EINVAL, MR_EINVAL},
        {",a=\"x\"", MR_EINVAL, MR_EINVAL},
        {"a=\"x\" ", MR_EINVAL, MR_EINVAL},
        {"a = \"x\"", MR_EINVAL, MR_EINVAL},
        {"a='x'", MR_EINVAL, MR_EINVAL},
        {"a=\"x\"b=\"y\"", MR_EINVAL, MR_EINVAL},
        {"a=\"x\",,b=\"y\"", MR_EINVAL, MR_EINVAL},
        {"1a=\"x\"", MR_EINVAL, MR_EINVAL},
        {"a:b=\"x\"", MR_EINVAL, MR_EINVAL},
        {"__name__=\"x\"", MR_EINVAL, MR_EINVAL},
        {"a=\"x\",a=\"y\"", MR_EINVAL, MR_EINVAL},
        {"a=\"\\q\"", MR_EINVAL, MR_EINVAL},
        {"a=\"x\\\"", MR_EINVAL, MR_EINVAL},
        {"a=\"raw\nnewline\"", MR_EINVAL, MR_EINVAL},
        {"a=\"\xff\"", MR_EINVAL, MR_EINVAL},
        {"a=\"\xc0\xaf\"", MR_EINVAL, MR_EINVAL},     /* overlong */
        {"a=\"\xed\xa0\x80\"", MR_EINVAL, MR_EINVAL}, /* surrogate */
        {"a=\"\xe2\x82\"", MR_EINVAL, MR_EINVAL},     /* cut short */
        {"{a=\"x\"}", MR_EINVAL, MR_EINVAL},
    };
    static const double bounds[] = {1};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_counter *c = NULL;
        struct mr_histogram *h = NULL;
        assert_int_equal(mr_metrics_counter(m, "c", "h", cases[i].labels, &c), cases[i].counter_rc);
        assert_int_equal(mr_metrics_histogram(m, "h", "h", cases[i].labels, bounds, 1, &h),
                         cases[i].histogram_rc);
    }
}

static void test_label_count_and_length_caps(void **state)
{
    struct mr_metrics *m = *state;
    char labels[8192];
    size_t len = 0;
    struct mr_counter *c;

    for (int i = 0; i < 64; i++) {
        len += (size_t)snprintf(labels + len, sizeof(labels) - len, "%sl%d=\"v\"", i ? "," : "", i);
    }
    assert_int_equal(mr_metrics_counter(m, "many", "h", labels, &c), 0);
    snprintf(labels + len, sizeof(labels) - len, ",l64=\"v\"");
    assert_int_equal(mr_metrics_counter(m, "many", "h", labels, &c), MR_EINVAL);

    /* A label string over 4096 bytes. */
    memcpy(labels, "a=\"", 3);
    memset(labels + 3, 'x', 4100);
    memcpy(labels + 4103, "\"", 2);
    assert_int_equal(mr_metrics_counter(m, "long", "h", labels, &c), MR_EINVAL);
}

static void test_bad_arguments(void **state)
{
    struct mr_metrics *m = *state;
    struct mr_counter *c;
    struct mr_gauge *g;
    struct mr_histogram *h;
    static const double bounds[] = {1, 2};
    char big_help[4098];
    memset(big_help, 'h', sizeof(big_help) - 1);
    big_help[sizeof(big_help) - 1] = '\0';

    assert_int_equal(mr_metrics_create(NULL), MR_EINVAL);
    assert_int_equal(mr_metrics_counter(NULL, "a", "h", NULL, &c), MR_EINVAL);
    assert_int_equal(mr_metrics_counter(m, NULL, "h", NULL, &c), MR_EINVAL);
    assert_int_equal(mr_metrics_counter(m, "a", NULL, NULL, &c), MR_EINVAL);
    assert_int_equal(mr_metrics_counter(m, "a", "h", NULL, NULL), MR_EINVAL);
    assert_int_equal(mr_metrics_gauge(m, "a", "h", NULL, NULL), MR_EINVAL);
    assert_int_equal(mr_metrics_histogram(m, "a", "h", NULL, bounds, 2, NULL), MR_EINVAL);
    assert_int_equal(mr_metrics_gauge(m, "a", big_help, NULL, &g), MR_EINVAL);
    assert_int_equal(mr_metrics_gauge(m, "a", "bad \xff utf-8", NULL, &g), MR_EINVAL);
    assert_int_equal(mr_metrics_render(NULL, NULL, 0, NULL), MR_EINVAL);
    assert_int_equal(mr_metrics_render(m, NULL, 10, NULL), MR_EINVAL);
    assert_int_equal(mr_metrics_histogram(m, "a", "h", NULL, bounds, 2, &h), 0);
    mr_metrics_destroy(NULL);
}

static void test_bounds(void **state)
{
    struct mr_metrics *m = *state;
    static const double dup[] = {1, 1};
    static const double desc[] = {2, 1};
    static const double inf[] = {1, INFINITY};
    static const double neg_inf[] = {-INFINITY, 1};
    static const double nan[] = {0, NAN};
    static const double ok[] = {0.001, 0.01, 0.1, 1, 10};
    static double many[1025];
    for (size_t i = 0; i < 1025; i++) {
        many[i] = (double)i;
    }
    static const struct {
        const double *bounds;
        size_t n;
        int rc;
    } cases[] = {
        {ok, 5, 0},
        {ok, 1, 0},
        {NULL, 0, 0},
        {many, 1024, 0},
        {dup, 2, MR_EINVAL},
        {desc, 2, MR_EINVAL},
        {inf, 2, MR_EINVAL},
        {neg_inf, 2, MR_EINVAL},
        {nan, 2, MR_EINVAL},
        {NULL, 3, MR_EINVAL},
        {many, 1025, MR_EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[32];
        struct mr_histogram *h = NULL;
        snprintf(name, sizeof(name), "h%zu", i);
        assert_int_equal(mr_metrics_histogram(m, name, "h", NULL, cases[i].bounds, cases[i].n, &h),
                         cases[i].rc);
    }
    /* The registry copied the bounds: changing the caller's array changes nothing. */
    double mine[] = {1, 2};
    struct mr_histogram *h;
    assert_int_equal(mr_metrics_histogram(m, "copied", "c", NULL, mine, 2, &h), 0);
    mine[0] = 100;
    mr_histogram_observe(h, 1.5);
    char *text = render(m);
    assert_non_null(strstr(text, "copied_bucket{le=\"1\"} 0\ncopied_bucket{le=\"2\"} 1\n"));
    free(text);
}

static void test_label_escape(void **state)
{
    struct mr_metrics *m = *state;
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"", ""},
        {"plain", "plain"},
        {"a\"b", "a\\\"b"},
        {"back\\slash", "back\\\\slash"},
        {"two\nlines", "two\\nlines"},
        {"\\\"\n", "\\\\\\\"\\n"},
        {"caf\xc3\xa9", "caf\xc3\xa9"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const size_t want = strlen(cases[i].out);
        char buf[64];
        assert_int_equal(mr_metrics_label_escape(cases[i].in, buf, sizeof(buf)), (long)want);
        assert_string_equal(buf, cases[i].out);
        /* Exactly enough room (with the NUL) works; one byte less does not and writes nothing. */
        char exact[64];
        assert_int_equal(mr_metrics_label_escape(cases[i].in, exact, want + 1), (long)want);
        assert_string_equal(exact, cases[i].out);
        memset(exact, '#', sizeof(exact));
        assert_int_equal(mr_metrics_label_escape(cases[i].in, exact, want), MR_ETOOBIG);
        assert_int_equal(exact[0], '#');

        /* Whatever comes out is a valid label value and renders as given. */
        char labels[96];
        snprintf(labels, sizeof(labels), "v=\"%s\"", buf);
        struct mr_gauge *g;
        assert_int_equal(mr_metrics_gauge(m, "esc", "e", labels, &g), 0);
    }
    assert_int_equal(mr_metrics_label_escape(NULL, NULL, 0), MR_EINVAL);
    assert_int_equal(mr_metrics_label_escape("x", NULL, 5), MR_EINVAL);
    assert_int_equal(mr_metrics_label_escape("x", NULL, 0), MR_ETOOBIG);

    char *text = render(m);
    assert_non_null(strstr(text, "esc{v=\"\\\\\\\"\\n\"} 0\n"));
    free(text);
}

static void test_render_too_small(void **state)
{
    struct mr_metrics *m = *state;
    const size_t full = sizeof(small_expected); /* includes the NUL */
    char buf[sizeof(small_expected)];
    size_t needed = 0;

    assert_int_equal(small_fill(m, true), 0);
    static const size_t caps[] = {0, 1, 10, sizeof(small_expected) - 1};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        needed = 0;
        assert_int_equal(mr_metrics_render(m, caps[i] ? buf : NULL, caps[i], &needed), MR_ETOOBIG);
        assert_int_equal(needed, full);
    }
    assert_int_equal(mr_metrics_render(m, buf, full, &needed), (long)full - 1);
    assert_string_equal(buf, small_expected);
}

#define ROUNDS 200000

struct worker_arg {
    struct mr_counter *c;
    struct mr_gauge *g;
    struct mr_histogram *h;
};

static void *worker(void *p)
{
    struct worker_arg *a = p;
    for (int i = 0; i < ROUNDS; i++) {
        mr_counter_add(a->c, 1);
        mr_gauge_add(a->g, 0.5);
        mr_histogram_observe(a->h, (i & 1) ? 0.25 : 4.0);
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    struct mr_metrics *m = *state;
    struct worker_arg arg;
    static const double bounds[] = {1};
    pthread_t t[2];

    assert_int_equal(mr_metrics_counter(m, "n_total", "n", NULL, &arg.c), 0);
    assert_int_equal(mr_metrics_gauge(m, "g", "g", NULL, &arg.g), 0);
    assert_int_equal(mr_metrics_histogram(m, "h", "h", NULL, bounds, 1, &arg.h), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, worker, &arg), 0);
    }
    /* Scrape while the workers run: every scrape is whole and self-consistent (the +Inf bucket
     * equals _count even mid-update). The size can change between scrapes, so use room. */
    static char scrape[4096];
    for (int i = 0; i < 50; i++) {
        assert_true(mr_metrics_render(m, scrape, sizeof(scrape), NULL) > 0);
        unsigned long inf = 0;
        unsigned long count = 0;
        const char *p = strstr(scrape, "h_bucket{le=\"+Inf\"} ");
        assert_non_null(p);
        assert_int_equal(sscanf(p, "h_bucket{le=\"+Inf\"} %lu", &inf), 1);
        p = strstr(scrape, "h_count ");
        assert_non_null(p);
        assert_int_equal(sscanf(p, "h_count %lu", &count), 1);
        assert_int_equal(inf, count);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    assert_int_equal(mr_counter_value(arg.c), 2 * ROUNDS);
    assert_true(mr_gauge_value(arg.g) == ROUNDS * 1.0);
    char expected[512];
    snprintf(expected, sizeof(expected),
             "# HELP n_total n\n# TYPE n_total counter\nn_total %d\n"
             "# HELP g g\n# TYPE g gauge\ng %d\n"
             "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} %d\nh_bucket{le=\"+Inf\"} %d\n"
             "h_sum %d\nh_count %d\n",
             2 * ROUNDS, ROUNDS, ROUNDS, 2 * ROUNDS, (int)(ROUNDS * 4.25), 2 * ROUNDS);
    assert_render(m, expected);
}

static void test_series_cap(void **state)
{
    struct mr_metrics *m = *state;
    struct mr_counter *c;
    struct mr_counter *first = NULL;
    char labels[32];

    for (int i = 0; i < 65536; i++) {
        snprintf(labels, sizeof(labels), "i=\"%d\"", i);
        /* Spread over families too, so both indexes grow. */
        assert_int_equal(
            mr_metrics_counter(m, (i & 1) ? "odd_total" : "even_total", "h", labels, &c), 0);
        if (i == 0) {
            first = c;
        }
    }
    assert_int_equal(mr_metrics_counter(m, "odd_total", "h", "i=\"new\"", &c), MR_ETOOBIG);
    assert_int_equal(mr_metrics_gauge(m, "another", "h", NULL, NULL), MR_EINVAL);
    struct mr_gauge *g;
    assert_int_equal(mr_metrics_gauge(m, "another", "h", NULL, &g), MR_ETOOBIG);
    /* Existing series are still found at the cap. */
    assert_int_equal(mr_metrics_counter(m, "even_total", "h", "i=\"0\"", &c), 0);
    assert_ptr_equal(c, first);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    bool completed = false;
    for (long k = 0; k < 1000 && !completed; k++) {
        struct mr_metrics *m = NULL;
        mr_alloc_fail_after(k);
        int rc = mr_metrics_create(&m);
        if (rc == 0) {
            rc = small_fill(m, false);
        }
        const long injected = mr_alloc_injected_failures();
        mr_alloc_fail_after(-1);
        if (rc != 0) {
            assert_int_equal(rc, MR_ENOMEM);
            assert_true(injected > 0);
        } else {
            completed = injected == 0;
        }
        if (m != NULL) {
            /* After any failure the registry is intact: finishing the job gives the exact text. */
            assert_int_equal(small_fill(m, true), 0);
            assert_render(m, small_expected);
        }
        mr_metrics_destroy(m);
    }
    assert_true(completed);
}

/* The real consumer's linter accepts what we render: Debian's promtool (installed by
 * scripts/install-deps.sh test) must find no parse or lint problem in a registry that uses every
 * kind, labels with escapes, UTF-8, and special float values. */
static void test_promtool_accepts_render(void **state)
{
    struct mr_metrics *m = *state;
    struct mr_counter *c;
    struct mr_gauge *g, *nan_gauge;
    struct mr_histogram *h;
    static const double bounds[] = {0.001, 0.01, 0.1, 1};
    assert_int_equal(mr_metrics_counter(m, "millrace_records_in_total", "Records read, by input.",
                                        "instance=\"inputs.press \\\"7\\\"\",plugin=\"stdin\"", &c),
                     0);
    mr_counter_add(c, 42);
    assert_int_equal(mr_metrics_gauge(m, "millrace_lag_seconds",
                                      "Lag behind the newest record.\n"
                                      "Second line of help with a \\ backslash.",
                                      "instance=\"outputs.influx\",site=\"Zürich\"", &g),
                     0);
    mr_gauge_set(g, -1.5);
    assert_int_equal(
        mr_metrics_gauge(m, "millrace_unknown_value", "A value not known yet.", NULL, &nan_gauge),
        0);
    mr_gauge_set(nan_gauge, NAN);
    assert_int_equal(mr_metrics_histogram(m, "millrace_commit_seconds", "Journal commit latency.",
                                          "topic=\"plant.raw\"", bounds, 4, &h),
                     0);
    mr_histogram_observe(h, 0.0002);
    mr_histogram_observe(h, 0.05);
    mr_histogram_observe(h, INFINITY);
    char *text = render(m);
    char path[] = "/tmp/mr_promtool_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(text);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    unlink(path);
    if (status != 0 || n != 0) {
        fprintf(stderr, "promtool check metrics (status %d):\n%s\n", status, out);
    }
    assert_int_not_equal(status, -1);
    /* 127 = promtool missing: a failure, never a skip (run scripts/install-deps.sh test). */
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_small_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_float_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_registration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_count_and_length_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_too_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_updates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_cap, setup, teardown),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test_setup_teardown(test_promtool_accepts_render, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
