/* Scratch directories for unit tests that touch the disk. */
#ifndef MILLRACE_TEST_TMPDIR_H
#define MILLRACE_TEST_TMPDIR_H

#include <stddef.h>

/* Create /tmp/<prefix>_XXXXXX into dir (cap bytes). Returns 0 or -1. */
int mr_test_tmpdir_create(char *dir, size_t cap, const char *prefix);
/* Remove the tree below and including dir. Returns 0 or -1. */
int mr_test_tmpdir_remove(const char *dir);

#endif
