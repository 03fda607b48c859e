#include "support/tmpdir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int mr_test_tmpdir_create(char *dir, size_t cap, const char *prefix)
{
    int n = snprintf(dir, cap, "/tmp/%s_XXXXXX", prefix);
    if (n < 0 || (size_t)n >= cap) {
        return -1;
    }
    return mkdtemp(dir) == NULL ? -1 : 0;
}

int mr_test_tmpdir_remove(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
