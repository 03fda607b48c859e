/* SPSC ring: ordering, full/empty edges, and a two-thread transfer that must deliver every item
 * exactly once and in order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "millrace/alloc.h"
#include "millrace/error.h"
#include "millrace/ring.h"

static void test_capacity_rounds_up(void **state)
{
    (void)state;
    static const struct {
        size_t asked;
        int rc;
        size_t cap;
    } cases[] = {{2, 0, 2}, {3, 0, 4}, {1000, 0, 1024}, {1, MR_EINVAL, 0}, {0, MR_EINVAL, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_ring *ring = NULL;
        assert_int_equal(mr_ring_create(&ring, cases[i].asked), cases[i].rc);
        if (cases[i].rc == 0) {
            assert_int_equal(mr_ring_capacity(ring), cases[i].cap);
        }
        mr_ring_destroy(ring);
    }
}

static void test_fifo_full_empty(void **state)
{
    (void)state;
    struct mr_ring *ring;
    assert_int_equal(mr_ring_create(&ring, 4), 0);
    assert_null(mr_ring_pop(ring));
    uintptr_t v[5] = {1, 2, 3, 4, 5};
    for (int round = 0; round < 3; round++) { /* wraps the indices several times */
        for (int i = 0; i < 4; i++) {
            assert_true(mr_ring_push(ring, (void *)v[i]));
        }
        assert_false(mr_ring_push(ring, (void *)v[4]));
        assert_int_equal(mr_ring_count(ring), 4);
        for (int i = 0; i < 4; i++) {
            assert_ptr_equal(mr_ring_pop(ring), (void *)v[i]);
        }
        assert_null(mr_ring_pop(ring));
    }
    mr_ring_destroy(ring);
    mr_ring_destroy(NULL);
}

static void test_create_out_of_memory(void **state)
{
    (void)state;
    for (long n = 0; n < 2; n++) {
        struct mr_ring *ring = NULL;
        mr_alloc_fail_after(n);
        assert_int_equal(mr_ring_create(&ring, 8), MR_ENOMEM);
        assert_null(ring);
    }
    mr_alloc_fail_after(-1);
}

#define TRANSFER_N 1000000u

static void *producer(void *arg)
{
    struct mr_ring *ring = arg;
    for (uintptr_t i = 1; i <= TRANSFER_N; i++) {
        while (!mr_ring_push(ring, (void *)i)) {
            sched_yield();
        }
    }
    return NULL;
}

static void test_two_threads_in_order(void **state)
{
    (void)state;
    struct mr_ring *ring;
    assert_int_equal(mr_ring_create(&ring, 256), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, producer, ring), 0);
    uintptr_t expect = 1;
    while (expect <= TRANSFER_N) {
        void *item = mr_ring_pop(ring);
        if (item == NULL) {
            sched_yield();
            continue;
        }
        assert_int_equal((uintptr_t)item, expect);
        expect++;
    }
    pthread_join(t, NULL);
    assert_null(mr_ring_pop(ring));
    mr_ring_destroy(ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity_rounds_up),
        cmocka_unit_test(test_fifo_full_empty),
        cmocka_unit_test(test_create_out_of_memory),
        cmocka_unit_test(test_two_threads_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
