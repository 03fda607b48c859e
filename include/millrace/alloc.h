/* Allocation wrappers.
 *
 * All heap memory in libmillrace goes through these so that tests can inject failures:
 * mr_alloc_fail_after(n) makes the (n+1)-th following allocation fail (returns NULL),
 * mr_alloc_fail_after(-1) turns injection off. Callers must handle NULL like any other error
 * (return MR_ENOMEM); nothing here aborts.
 */
#ifndef MILLRACE_ALLOC_H
#define MILLRACE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *mr_malloc(size_t size);
void *mr_calloc(size_t count, size_t size);
/* Like realloc, but on failure the old block is left untouched (and still owned by the caller). */
void *mr_realloc(void *ptr, size_t size);
void mr_free(void *ptr);
/* Make the array *arr (*len elements of `size` bytes) long enough to hold `index`, doubling from
 * `first` elements; new elements are filled with the byte `fill` (0, or 0xff for -1s). Returns 0,
 * or MR_ENOMEM with the array unchanged. For tables indexed by an interned name id. */
int mr_array_hold(void **arr, uint32_t *len, size_t size, uint32_t index, uint32_t first, int fill);
/* Heap copy of s (NUL-terminated), or NULL. */
char *mr_strdup(const char *s);
/* Heap copy of the first len bytes of s plus a NUL, or NULL. */
char *mr_strndup(const char *s, size_t len);

/* Fault injection for tests: fail after `n` more successful allocations; n < 0 disables. */
void mr_alloc_fail_after(long n);
/* How many allocations have failed by injection since the last mr_alloc_fail_after(). */
long mr_alloc_injected_failures(void);

#endif
