/* Keyed state map: inserts, finds, removals under churn against a simple reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/keymap.h"
#include "millrace/error.h"

static void test_insert_find_remove_against_reference(void **state)
{
    (void)state;
    enum { N = 20000 };
    static uint64_t ref[N]; /* ref[k] = value+1 when present */
    memset(ref, 0, sizeof(ref));
    struct mr_keymap m;
    assert_int_equal(mr_keymap_init(&m, 16, N), 0);
    uint64_t x = 12345;
    for (int step = 0; step < 200000; step++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t k = (x >> 33) % N;
        uint64_t key = (k << 32) | (k * 7); /* structured keys like asset<<32|signal */
        if ((x >> 20) % 3 == 0) {
            mr_keymap_remove(&m, key);
            ref[k] = 0;
        } else {
            void *v;
            int inserted;
            assert_int_equal(mr_keymap_upsert(&m, key, &v, &inserted), 0);
            assert_int_equal(inserted, ref[k] == 0);
            if (!inserted) {
                uint64_t have;
                memcpy(&have, v, 8);
                assert_int_equal(have, ref[k] - 1);
            }
            memcpy(v, &step, sizeof(int));
            memset((char *)v + sizeof(int), 0, 8 - sizeof(int));
            ref[k] = (uint64_t)step + 1;
        }
    }
    uint32_t present = 0;
    for (uint64_t k = 0; k < N; k++) {
        void *v = mr_keymap_find(&m, (k << 32) | (k * 7));
        assert_int_equal(v != NULL, ref[k] != 0);
        present += ref[k] != 0;
    }
    assert_int_equal(mr_keymap_count(&m), present);
    for (uint32_t i = 0; i < mr_keymap_count(&m); i++) {
        assert_ptr_equal(mr_keymap_find(&m, mr_keymap_key_at(&m, i)), mr_keymap_value_at(&m, i));
    }
    mr_keymap_fini(&m);
}

static void test_cap_is_enforced(void **state)
{
    (void)state;
    struct mr_keymap m;
    assert_int_equal(mr_keymap_init(&m, 8, 3), 0);
    void *v;
    int ins;
    for (uint64_t k = 0; k < 3; k++) {
        assert_int_equal(mr_keymap_upsert(&m, k, &v, &ins), 0);
    }
    assert_int_equal(mr_keymap_upsert(&m, 99, &v, &ins), MR_ETOOBIG);
    assert_int_equal(mr_keymap_upsert(&m, 1, &v, &ins), 0);
    assert_int_equal(ins, 0);
    mr_keymap_fini(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_find_remove_against_reference),
        cmocka_unit_test(test_cap_is_enforced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
