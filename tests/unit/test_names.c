/* Interned names: ids are dense and stable, strings never move, caps hold, bad input is refused,
 * concurrent interning agrees on ids, and allocation failures leave the table usable. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/error.h"
#include "millrace/names.h"

static void test_create_rejects_bad_arguments(void **state)
{
    (void)state;
    struct mr_names *names = NULL;
    assert_int_equal(mr_names_create(NULL, 10, 100), MR_EINVAL);
    assert_int_equal(mr_names_create(&names, 0, 100), MR_EINVAL);
    assert_int_equal(mr_names_create(&names, 10, 0), MR_EINVAL);
    assert_null(names);
    mr_names_destroy(NULL); /* no-op */
    assert_int_equal(mr_names_count(NULL), 0);
    assert_null(mr_names_str(NULL, 1, NULL));
    assert_int_equal(mr_names_find(NULL, "a", 1), 0);
}

static void test_intern_find_str(void **state)
{
    (void)state;
    static const char *const table[] = {
        "site1/press/line3/m7", "temperature",  "unit", "a",
        "vibration_rms",        "ünïcödé/名前", /* bytes, not characters: any non-NUL bytes are a
                                                   name */
    };
    const size_t n = sizeof(table) / sizeof(table[0]);
    struct mr_names *names;
    mr_name_id ids[sizeof(table) / sizeof(table[0])];

    assert_int_equal(mr_names_create(&names, 100, 4096), 0);
    assert_int_equal(mr_names_count(names), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(mr_names_intern(names, table[i], strlen(table[i]), &ids[i]), 0);
        assert_int_equal(ids[i], i + 1); /* dense, from 1 */
    }
    assert_int_equal(mr_names_count(names), n);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = mr_names_str(names, ids[i], &len);
        assert_non_null(s);
        assert_string_equal(s, table[i]);
        assert_int_equal(len, strlen(table[i]));
        assert_int_equal(mr_names_find(names, table[i], strlen(table[i])), ids[i]);
    }
    assert_null(mr_names_str(names, 0, NULL));
    assert_null(mr_names_str(names, (mr_name_id)n + 1, NULL));
    assert_null(mr_names_str(names, UINT32_MAX, NULL));
    assert_int_equal(mr_names_find(names, "unknown", 7), 0);
    assert_int_equal(mr_names_find(names, "temperatur", 10), 0); /* prefix is another name */
    assert_int_equal(mr_names_find(names, "", 0), 0);
    mr_names_destroy(names);
}

static void test_dedup_and_unterminated_input(void **state)
{
    (void)state;
    struct mr_names *names;
    mr_name_id a, b, c;
    const char buf[] = "temperature_and_more";

    assert_int_equal(mr_names_create(&names, 10, 1000), 0);
    assert_int_equal(mr_names_intern(names, "temperature", 11, &a), 0);
    /* The same bytes inside a larger buffer (not NUL-terminated after 11 bytes). */
    assert_int_equal(mr_names_intern(names, buf, 11, &b), 0);
    assert_int_equal(a, b);
    assert_int_equal(mr_names_count(names), 1);
    assert_int_equal(mr_names_intern(names, buf, 15, &c), 0);
    assert_int_not_equal(c, a);
    assert_string_equal(mr_names_str(names, c, NULL), "temperature_and");
    mr_names_destroy(names);
}

static void test_invalid_names(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
    } cases[] = {
        {"", 0}, {"a\0b", 3}, {"\0", 1}, {"abc\0", 4}, {NULL, 3},
    };
    struct mr_names *names;
    mr_name_id id = 77;

    assert_int_equal(mr_names_create(&names, 10, 1000), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(mr_names_intern(names, cases[i].s, cases[i].len, &id), MR_EINVAL);
        assert_int_equal(id, 77); /* out-param untouched on failure */
    }
    assert_int_equal(mr_names_intern(NULL, "a", 1, &id), MR_EINVAL);
    assert_int_equal(mr_names_intern(names, "a", 1, NULL), MR_EINVAL);
    assert_int_equal(mr_names_count(names), 0);
    mr_names_destroy(names);
}

static void test_caps(void **state)
{
    (void)state;
    struct mr_names *names;
    mr_name_id id;

    /* max_names */
    assert_int_equal(mr_names_create(&names, 3, 1000), 0);
    assert_int_equal(mr_names_intern(names, "a", 1, &id), 0);
    assert_int_equal(mr_names_intern(names, "b", 1, &id), 0);
    assert_int_equal(mr_names_intern(names, "c", 1, &id), 0);
    assert_int_equal(mr_names_intern(names, "d", 1, &id), MR_ETOOBIG);
    assert_int_equal(mr_names_intern(names, "b", 1, &id), 0); /* known names still resolve */
    assert_int_equal(id, 2);
    assert_int_equal(mr_names_count(names), 3);
    mr_names_destroy(names);

    /* max_bytes counts each name plus its NUL: "abcd" + "efgh" = 10 bytes. */
    assert_int_equal(mr_names_create(&names, 100, 10), 0);
    assert_int_equal(mr_names_intern(names, "abcd", 4, &id), 0);
    assert_int_equal(mr_names_intern(names, "efghi", 5, &id), MR_ETOOBIG);
    assert_int_equal(mr_names_intern(names, "efgh", 4, &id), 0);
    assert_int_equal(mr_names_intern(names, "x", 1, &id), MR_ETOOBIG);
    assert_int_equal(mr_names_find(names, "efgh", 4), 2);
    assert_int_equal(mr_names_find(names, "x", 1), 0);
    mr_names_destroy(names);
}

/* Enough names to grow the slot table many times and fill several entry chunks and arena
 * blocks; strings handed out early must keep their address. */
static void test_growth_keeps_pointers(void **state)
{
    (void)state;
    enum { N = 50000 };
    struct mr_names *names;
    char buf[64];
    mr_name_id id;

    assert_int_equal(mr_names_create(&names, N, (size_t)N * 32), 0);
    assert_int_equal(mr_names_intern(names, "first", 5, &id), 0);
    const char *first = mr_names_str(names, id, NULL);
    for (int i = 1; i < N; i++) {
        int len = snprintf(buf, sizeof(buf), "site/area/line/m%d", i);
        assert_int_equal(mr_names_intern(names, buf, (size_t)len, &id), 0);
        assert_int_equal(id, (mr_name_id)i + 1);
    }
    assert_ptr_equal(mr_names_str(names, 1, NULL), first);
    assert_string_equal(first, "first");
    for (int i = 1; i < N; i++) {
        int len = snprintf(buf, sizeof(buf), "site/area/line/m%d", i);
        assert_int_equal(mr_names_find(names, buf, (size_t)len), (mr_name_id)i + 1);
        assert_string_equal(mr_names_str(names, (mr_name_id)i + 1, NULL), buf);
    }
    assert_int_equal(mr_names_intern(names, "one too many", 12, &id), MR_ETOOBIG);
    mr_names_destroy(names);
}

static void test_name_larger_than_arena_block(void **state)
{
    (void)state;
    enum { LEN = 200000 };
    struct mr_names *names;
    static char big[LEN];
    mr_name_id a, b;
    size_t len;

    memset(big, 'x', sizeof(big));
    assert_int_equal(mr_names_create(&names, 10, 1u << 20), 0);
    assert_int_equal(mr_names_intern(names, "small", 5, &a), 0);
    assert_int_equal(mr_names_intern(names, big, LEN, &b), 0);
    const char *s = mr_names_str(names, b, &len);
    assert_int_equal(len, LEN);
    assert_memory_equal(s, big, LEN);
    assert_int_equal(s[LEN], '\0');
    assert_string_equal(mr_names_str(names, a, NULL), "small");
    mr_names_destroy(names);
}

enum { THREAD_NAMES = 4000 };

struct intern_job {
    struct mr_names *names;
    int reverse;
    mr_name_id ids[THREAD_NAMES];
    int failures;
};

static void *intern_thread(void *arg)
{
    struct intern_job *job = arg;
    char buf[32];
    for (int k = 0; k < THREAD_NAMES; k++) {
        int i = job->reverse ? THREAD_NAMES - 1 - k : k;
        int len = snprintf(buf, sizeof(buf), "signal-%d", i);
        if (mr_names_intern(job->names, buf, (size_t)len, &job->ids[i]) != 0) {
            job->failures++;
            continue;
        }
        /* Lock-free read of an id just published (possibly by the other thread). */
        const char *s = mr_names_str(job->names, job->ids[i], NULL);
        if (s == NULL || strcmp(s, buf) != 0) {
            job->failures++;
        }
    }
    return NULL;
}

static void test_concurrent_interning_agrees(void **state)
{
    (void)state;
    struct mr_names *names;
    static struct intern_job jobs[2];
    pthread_t th[2];

    assert_int_equal(mr_names_create(&names, THREAD_NAMES, 1u << 20), 0);
    for (int t = 0; t < 2; t++) {
        memset(&jobs[t], 0, sizeof(jobs[t]));
        jobs[t].names = names;
        jobs[t].reverse = t;
        assert_int_equal(pthread_create(&th[t], NULL, intern_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < 2; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(jobs[t].failures, 0);
    }
    assert_int_equal(mr_names_count(names), THREAD_NAMES);
    for (int i = 0; i < THREAD_NAMES; i++) {
        assert_int_equal(jobs[0].ids[i], jobs[1].ids[i]);
        assert_true(jobs[0].ids[i] >= 1 && jobs[0].ids[i] <= THREAD_NAMES);
    }
    mr_names_destroy(names);
}

/* Fail the k-th allocation for every k until a whole run succeeds: each failure is MR_ENOMEM,
 * leaks nothing (ASan), and leaves every name interned before it intact and findable. */
static void test_allocation_failures(void **state)
{
    (void)state;
    enum { N = 600 };
    char buf[32];
    bool completed = false;

    for (long k = 0; !completed && k < 1000; k++) {
        struct mr_names *names = NULL;
        mr_alloc_fail_after(k);
        int rc = mr_names_create(&names, N, 1u << 20);
        if (rc != 0) {
            assert_int_equal(rc, MR_ENOMEM);
            assert_null(names);
            continue;
        }
        int done = 0;
        for (; done < N; done++) {
            int len = snprintf(buf, sizeof(buf), "n%d", done);
            mr_name_id id;
            rc = mr_names_intern(names, buf, (size_t)len, &id);
            if (rc != 0) {
                assert_int_equal(rc, MR_ENOMEM);
                break;
            }
        }
        mr_alloc_fail_after(-1);
        assert_int_equal(mr_names_count(names), done);
        for (int i = 0; i < done; i++) {
            int len = snprintf(buf, sizeof(buf), "n%d", i);
            assert_int_equal(mr_names_find(names, buf, (size_t)len), (mr_name_id)i + 1);
        }
        /* With allocation back, interning resumes where it stopped. */
        for (int i = done; i < N; i++) {
            int len = snprintf(buf, sizeof(buf), "n%d", i);
            mr_name_id id;
            assert_int_equal(mr_names_intern(names, buf, (size_t)len, &id), 0);
            assert_int_equal(id, (mr_name_id)i + 1);
        }
        completed = done == N;
        mr_names_destroy(names);
    }
    mr_alloc_fail_after(-1);
    assert_true(completed);
}

/* Interning a known name never allocates (the hot path relies on it). */
static void test_known_name_does_not_allocate(void **state)
{
    (void)state;
    struct mr_names *names;
    mr_name_id id;

    assert_int_equal(mr_names_create(&names, 10, 100), 0);
    assert_int_equal(mr_names_intern(names, "temp", 4, &id), 0);
    mr_alloc_fail_after(0);
    assert_int_equal(mr_names_intern(names, "temp", 4, &id), 0);
    assert_int_equal(mr_names_find(names, "temp", 4), id);
    assert_int_equal(mr_alloc_injected_failures(), 0);
    mr_alloc_fail_after(-1);
    mr_names_destroy(names);
}

/* Lock-free lookups while another thread inserts and the table grows many times: every name the
 * writer has published must be found with its id by the reader, never another name's id. */
#define LOOKUP_NAMES 20000u

struct lookup_race {
    struct mr_names *names;
    _Atomic uint32_t published; /* names 0..published-1 are interned */
    mr_name_id ids[LOOKUP_NAMES];
};

static void race_name(uint32_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "site/area/line%u/machine%u", i % 97, i);
}

static void *race_writer(void *arg)
{
    struct lookup_race *r = arg;
    char buf[64];
    for (uint32_t i = 0; i < LOOKUP_NAMES; i++) {
        race_name(i, buf, sizeof(buf));
        if (mr_names_intern(r->names, buf, strlen(buf), &r->ids[i]) != 0) {
            break;
        }
        atomic_store_explicit(&r->published, i + 1, memory_order_release);
    }
    return NULL;
}

static void test_lookups_race_inserts(void **state)
{
    (void)state;
    struct lookup_race *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    assert_int_equal(mr_names_create(&r->names, LOOKUP_NAMES, 4u << 20), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, race_writer, r), 0);
    char buf[64];
    uint32_t checks = 0, seen;
    uint32_t x = 1;
    do {
        seen = atomic_load_explicit(&r->published, memory_order_acquire);
        if (seen == 0) {
            continue;
        }
        x = x * 1664525u + 1013904223u;
        uint32_t i = x % seen;
        race_name(i, buf, sizeof(buf));
        mr_name_id id = mr_names_find(r->names, buf, strlen(buf));
        assert_int_equal(id, r->ids[i]);
        mr_name_id again;
        assert_int_equal(mr_names_intern(r->names, buf, strlen(buf), &again), 0);
        assert_int_equal(again, r->ids[i]);
        assert_string_equal(mr_names_str(r->names, id, NULL), buf);
        checks++;
    } while (seen < LOOKUP_NAMES || checks < 1000);
    pthread_join(t, NULL);
    assert_int_equal(mr_names_count(r->names), LOOKUP_NAMES);
    mr_names_destroy(r->names);
    free(r);
}

/* The memo must give the same ids as the table, also when names collide in its slots. */
static void test_intern_memo_matches_table(void **state)
{
    (void)state;
    struct mr_names *names;
    assert_int_equal(mr_names_create(&names, 100000, 1 << 22), 0);
    struct mr_names_memo memo;
    memset(&memo, 0, sizeof(memo));
    char buf[64];
    uint64_t x = 7;
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int len =
            snprintf(buf, sizeof(buf), "plant/line%d/m%d", (int)(x >> 60), (int)((x >> 33) % 700));
        mr_name_id a = 0, b = 0;
        assert_int_equal(mr_names_intern_memo(names, &memo, buf, (size_t)len, &a), 0);
        assert_int_equal(mr_names_intern(names, buf, (size_t)len, &b), 0);
        assert_int_equal(a, b);
    }
    mr_name_id id = 0;
    assert_int_equal(mr_names_intern_memo(names, NULL, "x", 1, &id), 0);
    assert_int_equal(id, mr_names_find(names, "x", 1));
    assert_int_equal(mr_names_intern_memo(names, &memo, "", 0, &id), MR_EINVAL);
    mr_names_destroy(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intern_memo_matches_table),
        cmocka_unit_test(test_create_rejects_bad_arguments),
        cmocka_unit_test(test_intern_find_str),
        cmocka_unit_test(test_dedup_and_unterminated_input),
        cmocka_unit_test(test_invalid_names),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_growth_keeps_pointers),
        cmocka_unit_test(test_name_larger_than_arena_block),
        cmocka_unit_test(test_concurrent_interning_agrees),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_known_name_does_not_allocate),
        cmocka_unit_test(test_lookups_race_inserts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
