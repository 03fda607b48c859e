#include "millrace/alloc.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/error.h"

/* Process-wide test knob; atomics so that tests with threads see a consistent countdown. */
static atomic_long fail_countdown = -1;
static atomic_long injected_failures = 0;

static bool should_fail(void)
{
    long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (n < 0) {
        return false;
    }
    n = atomic_fetch_sub(&fail_countdown, 1);
    if (n <= 0) {
        atomic_store(&fail_countdown, 0);
        atomic_fetch_add(&injected_failures, 1);
        return true;
    }
    return false;
}

void mr_alloc_fail_after(long n)
{
    atomic_store(&injected_failures, 0);
    atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

long mr_alloc_injected_failures(void)
{
    return atomic_load(&injected_failures);
}

void *mr_malloc(size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return malloc(size == 0 ? 1 : size);
}

void *mr_calloc(size_t count, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
}

void *mr_realloc(void *ptr, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return realloc(ptr, size == 0 ? 1 : size);
}

void mr_free(void *ptr)
{
    free(ptr);
}

char *mr_strndup(const char *s, size_t len)
{
    char *p = mr_malloc(len + 1);
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

char *mr_strdup(const char *s)
{
    return mr_strndup(s, strlen(s));
}

int mr_array_hold(void **arr, uint32_t *len, size_t size, uint32_t index, uint32_t first, int fill)
{
    if (index < *len) {
        return 0;
    }
    uint64_t n = *len > 0 ? *len : (first > 0 ? first : 1);
    while (n <= index) {
        n *= 2;
    }
    n = n > UINT32_MAX ? UINT32_MAX : n;
    char *p = mr_realloc(*arr, (size_t)n * size);
    if (p == NULL) {
        return MR_ENOMEM;
    }
    memset(p + (size_t)*len * size, fill, (size_t)(n - *len) * size);
    *arr = p;
    *len = (uint32_t)n;
    return 0;
}
