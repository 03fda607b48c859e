/* A worker thread hands batches to the loop: every item arrives once, in order, on the loop
 * thread, including items still queued when the worker is stopped, and a full ring pushes back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "millrace/error.h"
#include "millrace/worker.h"

#define N_ITEMS 20000u

struct fixture {
    pthread_t loop_thread;
    uintptr_t next_expected;
    uintptr_t delivered;
    unsigned eagain;
    struct mr_worker *worker;
    uv_timer_t check;
};

static void produce(struct mr_worker *w, void *arg)
{
    struct fixture *f = arg;
    for (uintptr_t i = 1; i <= N_ITEMS; i++) {
        while (mr_worker_post(w, (void *)i) == MR_EAGAIN) {
            f->eagain++;
            mr_worker_wait_room(w, 100);
        }
    }
}

static void deliver(void *item, void *arg)
{
    struct fixture *f = arg;
    assert_true(pthread_equal(pthread_self(), f->loop_thread));
    assert_int_equal((uintptr_t)item, f->next_expected);
    f->next_expected++;
    f->delivered++;
}

static void on_check(uv_timer_t *t)
{
    struct fixture *f = t->data;
    if (f->delivered == N_ITEMS) {
        mr_worker_stop(f->worker);
        uv_close((uv_handle_t *)t, NULL);
    }
}

static void test_items_arrive_in_order_on_loop(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct fixture f = {.loop_thread = pthread_self(), .next_expected = 1};
    /* a tiny ring forces back-pressure */
    assert_int_equal(mr_worker_start(&f.worker, &loop, produce, deliver, &f, 8), 0);
    uv_timer_init(&loop, &f.check);
    f.check.data = &f;
    uv_timer_start(&f.check, on_check, 1, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(f.delivered, N_ITEMS);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void produce_then_wait_stop(struct mr_worker *w, void *arg)
{
    (void)arg;
    for (uintptr_t i = 1; i <= 5; i++) {
        assert_int_equal(mr_worker_post(w, (void *)i), 0);
    }
    while (!mr_worker_stopping(w)) {
        mr_worker_wait_room(w, 10);
    }
}

static void test_stop_delivers_what_is_queued(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct fixture f = {.loop_thread = pthread_self(), .next_expected = 1};
    assert_int_equal(mr_worker_start(&f.worker, &loop, produce_then_wait_stop, deliver, &f, 16), 0);
    /* stop without ever running the loop: the queued items are delivered by stop itself */
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    mr_worker_stop(f.worker);
    assert_int_equal(f.delivered, 5);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items_arrive_in_order_on_loop),
        cmocka_unit_test(test_stop_delivers_what_is_queued),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
