/* libFuzzer target for the journal's crash recovery and reader, through real files.
 *
 * The input becomes the newest segment file of a partition of a journal that was not closed
 * cleanly (the state after a crash or a damaged disk). Opening it must never crash; afterwards
 * the journal must be consistent: `mr_journal_verify` finds no problem (recovery cut whatever
 * was torn or corrupt), every record the reader returns has the next offset, and a new append
 * lands right after the recovered end and reads back. Any violation aborts.
 *
 * The journal lives under /dev/shm when it exists (tmpfs: fast, no disk wear), else /tmp.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "millrace/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_journal_recovery: check failed: %s (line %d)\n", #cond,          \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char root[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_root(void)
{
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct mr_journal *open_journal(void)
{
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = root;
    o.fsync = MR_JOURNAL_FSYNC_NEVER; /* tmpfs: syncing proves nothing here */
    struct mr_journal *j = NULL;
    struct mr_err err = {0};
    int rc = mr_journal_open(&o, &j, NULL, &err);
    if (rc != 0) {
        fprintf(stderr, "fuzz_journal_recovery: open: %s\n", err.msg);
    }
    CHECK(rc == 0);
    return j;
}

static void no_problem(void *arg, const struct mr_journal_problem *p)
{
    (void)arg;
    fprintf(stderr, "fuzz_journal_recovery: verify after recovery: %s %u %s@%llu: %s\n", p->topic,
            p->partition, p->segment, (unsigned long long)p->position, p->message);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (root[0] == '\0') {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(root, sizeof(root), "%s/mr_fuzz_rec_XXXXXX", base);
        CHECK(mkdtemp(root) != NULL);
        atexit(remove_root);
    }
    remove_root();
    CHECK(mkdir(root, 0755) == 0);

    /* A topic made by the journal itself, then its segment replaced by the input. */
    struct mr_journal *j = open_journal();
    struct mr_journal_topic *t;
    CHECK(mr_journal_topic_create(j, "t", 1, NULL, &t, NULL) == 0);
    CHECK(mr_journal_close(j) == 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/t/0/00000000000000000000.log", root);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, data, size) == (ssize_t)size);
    close(fd);
    snprintf(path, sizeof(path), "%s/clean_shutdown", root);
    unlink(path); /* as after a crash: recovery must scan the tail */

    j = open_journal();
    t = mr_journal_topic_find(j, "t");
    CHECK(t != NULL);
    struct mr_journal_partition_stats st;
    CHECK(mr_journal_partition_stats(t, 0, &st) == 0);
    struct mr_journal_reader *r;
    CHECK(mr_journal_reader_create(t, 0, MR_JOURNAL_EARLIEST, &r) == 0);
    struct mr_batch_record rec;
    int64_t expect = st.earliest;
    int rc;
    while ((rc = mr_journal_reader_next(r, &rec)) == 0) {
        CHECK(rec.offset == expect);
        expect++;
    }
    CHECK(rc == MR_EEOF || rc == MR_ENOTSUP); /* compressed batches are stored, not iterated */
    mr_journal_reader_destroy(r);

    /* New data goes right after what survived and reads back. */
    uint8_t buf[256];
    struct mr_batch_builder b;
    CHECK(mr_batch_builder_init(&b, buf, sizeof(buf)) == 0);
    CHECK(mr_batch_builder_add(&b, 1700000000000LL, "k", 1, "after", 5, NULL, 0) == 0);
    const uint8_t *batch;
    size_t len;
    CHECK(mr_batch_builder_finish(&b, &batch, &len) == 0);
    int64_t base = -1;
    CHECK(mr_journal_append_wait(t, 0, (void *)batch, len, &base) == 0);
    CHECK(base == st.end);
    CHECK(mr_journal_reader_create(t, 0, base, &r) == 0);
    CHECK(mr_journal_reader_next(r, &rec) == 0);
    CHECK(rec.offset == base && rec.value_len == 5 && memcmp(rec.value, "after", 5) == 0);
    mr_journal_reader_destroy(r);
    CHECK(mr_journal_close(j) == 0);

    struct mr_journal_verify_stats vs;
    CHECK(mr_journal_verify(root, no_problem, NULL, &vs, NULL) == 0);
    return 0;
}
