/* Per-asset watermarks: out-of-orderness, idle sources, the global watermark, a backlog replay
 * that must not be held to another asset's time, and a checkpoint round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/watermark.h"
#include "millrace/names.h"

#define S 1000000000LL

struct seen {
    mr_name_id asset[64];
    int64_t wm[64];
    int n;
};

static int record_cb(void *arg, mr_name_id asset, int64_t wm)
{
    struct seen *s = arg;
    s->asset[s->n] = asset;
    s->wm[s->n] = wm;
    s->n++;
    return 0;
}

static int64_t last_for(const struct seen *s, mr_name_id asset)
{
    int64_t v = MR_WM_NONE;
    for (int i = 0; i < s->n; i++) {
        if (s->asset[i] == asset) {
            v = s->wm[i];
        }
    }
    return v;
}

static void test_out_of_orderness_and_global_minimum(void **state)
{
    (void)state;
    struct mr_watermarks w;
    mr_wm_init(&w, 2 * S, 30 * S);
    struct seen s = {0};
    assert_int_equal(mr_wm_observe(&w, 1, 10 * S, 0), 0);
    assert_int_equal(mr_wm_observe(&w, 2, 5 * S, 0), 0);
    assert_int_equal(mr_wm_observe(&w, 1, 9 * S, 0), 0); /* out of order: no regression */
    assert_int_equal(mr_wm_collect(&w, 0, true, record_cb, &s), 0);
    assert_int_equal(last_for(&s, 1), 8 * S);
    assert_int_equal(last_for(&s, 2), 3 * S);
    assert_int_equal(last_for(&s, 0), 3 * S);
    /* Nothing new: nothing sent. */
    s.n = 0;
    assert_int_equal(mr_wm_collect(&w, 1 * S, true, record_cb, &s), 0);
    assert_int_equal(s.n, 0);
    mr_wm_fini(&w);
}

static void test_idle_source_stops_holding_back(void **state)
{
    (void)state;
    struct mr_watermarks w;
    mr_wm_init(&w, 2 * S, 30 * S);
    struct seen s = {0};
    mr_wm_observe(&w, 1, 100 * S, 0);
    mr_wm_observe(&w, 2, 50 * S, 0);
    mr_wm_collect(&w, 0, true, record_cb, &s);
    assert_int_equal(last_for(&s, 0), 48 * S);
    /* 31 s later only asset 1 kept sending. */
    mr_wm_observe(&w, 1, 131 * S, 31 * S);
    s.n = 0;
    mr_wm_collect(&w, 31 * S, true, record_cb, &s);
    assert_int_equal(last_for(&s, 2), 80 * S); /* newest + idle_timeout: its windows close */
    assert_int_equal(last_for(&s, 1), 129 * S);
    assert_int_equal(last_for(&s, 0), 129 * S); /* min over the active source only */
    /* Everyone idle: the global watermark is the highest. */
    s.n = 0;
    mr_wm_collect(&w, 100 * S, true, record_cb, &s);
    assert_int_equal(last_for(&s, 1), 161 * S);
    assert_int_equal(last_for(&s, 0), 161 * S);
    mr_wm_fini(&w);
}

static void test_backlog_of_one_asset_keeps_its_own_time(void **state)
{
    (void)state;
    struct mr_watermarks w;
    mr_wm_init(&w, 1 * S, 30 * S);
    struct seen s = {0};
    mr_wm_observe(&w, 1, 1000 * S, 0); /* live site */
    mr_wm_collect(&w, 0, false, record_cb, &s);
    for (int64_t t = 100; t <= 200; t += 10) { /* the other site replays an outage */
        mr_wm_observe(&w, 2, t * S, 1);
        mr_wm_collect(&w, 1, false, record_cb, &s);
    }
    assert_int_equal(last_for(&s, 2), 199 * S);
    assert_int_equal(last_for(&s, 1), 999 * S);
    mr_wm_fini(&w);
}

static void test_snapshot_restore(void **state)
{
    (void)state;
    struct mr_names *names;
    assert_int_equal(mr_names_create(&names, 64, 4096), 0);
    mr_name_id a, b;
    mr_names_intern(names, "s/a/l/m1", 8, &a);
    mr_names_intern(names, "s/a/l/m2", 8, &b);
    struct mr_watermarks w;
    mr_wm_init(&w, 2 * S, 30 * S);
    struct seen s = {0};
    mr_wm_observe(&w, a, 10 * S, 0);
    mr_wm_observe(&w, b, 20 * S, 0);
    mr_wm_collect(&w, 0, true, record_cb, &s);
    struct mr_state_writer out;
    mr_state_writer_init(&out, names, 0);
    assert_int_equal(mr_wm_snapshot(&w, &out), 0);
    struct mr_watermarks r;
    mr_wm_init(&r, 2 * S, 30 * S);
    struct mr_state_reader in;
    mr_state_reader_init(&in, names, out.buf, out.len);
    assert_int_equal(mr_wm_restore(&r, &in, 0), 0);
    assert_int_equal(mr_state_remaining(&in), 0);
    assert_int_equal(r.src[a].sent, 8 * S);
    assert_int_equal(r.src[b].sent, 18 * S);
    assert_int_equal(r.global_sent, 8 * S);
    /* Restored watermarks do not go backwards: an older record sends nothing. */
    s.n = 0;
    mr_wm_observe(&r, a, 9 * S, 0);
    mr_wm_collect(&r, 0, false, record_cb, &s);
    assert_int_equal(s.n, 0);
    /* A truncated state is an error, not a silent reset. */
    struct mr_watermarks t;
    mr_wm_init(&t, 0, S);
    mr_state_reader_init(&in, names, out.buf, out.len / 2);
    assert_int_not_equal(mr_wm_restore(&t, &in, 0), 0);
    mr_wm_fini(&t);
    mr_wm_fini(&r);
    mr_wm_fini(&w);
    mr_state_writer_fini(&out);
    mr_names_destroy(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_of_orderness_and_global_minimum),
        cmocka_unit_test(test_idle_source_stops_holding_back),
        cmocka_unit_test(test_backlog_of_one_asset_keeps_its_own_time),
        cmocka_unit_test(test_snapshot_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
