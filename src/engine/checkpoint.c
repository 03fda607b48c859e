/* Pipeline checkpoint files: format at the top of checkpoint.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/checkpoint.h"
#include "journal/journal_internal.h"
#include "millrace/alloc.h"
#include "millrace/crc32c.h"

#define MAGIC     "MRCKPT1\n"
#define MAGIC_LEN 8
#define MAX_SIZE  ((size_t)1 << 30)

static int dir_of(const char *journal_dir, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/@checkpoints", journal_dir);
    return n < 0 || (size_t)n >= cap ? MR_ETOOBIG : 0;
}

int mr_checkpoint_write(const char *journal_dir, const char *pipeline, const void *payload,
                        size_t len, struct mr_err *err)
{
    char dir[4096], name[512];
    if (dir_of(journal_dir, dir, sizeof(dir)) != 0 ||
        snprintf(name, sizeof(name), "%s.ckpt", pipeline) >= (int)sizeof(name)) {
        return MR_ERR_SET(err, MR_ETOOBIG, "checkpoint path too long");
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        int rc = mr_err_from_errno(errno);
        return MR_ERR_SET(err, rc, "cannot create %s: %s", dir, mr_strerror(rc));
    }
    size_t total = MAGIC_LEN + 8 + len + 4;
    uint8_t *buf = mr_malloc(total);
    if (buf == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory writing checkpoint");
    }
    memcpy(buf, MAGIC, MAGIC_LEN);
    for (int i = 0; i < 8; i++) {
        buf[MAGIC_LEN + i] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    memcpy(buf + MAGIC_LEN + 8, payload, len);
    uint32_t crc = mr_crc32c(0, payload, len);
    for (int i = 0; i < 4; i++) {
        buf[MAGIC_LEN + 8 + len + (size_t)i] = (uint8_t)(crc >> (8 * i));
    }
    int rc = mr_journal_write_atomic(dir, name, buf, total);
    mr_free(buf);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot write checkpoint %s/%s: %s", dir, name, mr_strerror(rc));
    }
    return 0;
}

int mr_checkpoint_read(const char *journal_dir, const char *pipeline, uint8_t **payload,
                       size_t *len, struct mr_err *err)
{
    char dir[4096], path[4700];
    if (dir_of(journal_dir, dir, sizeof(dir)) != 0 ||
        snprintf(path, sizeof(path), "%s/%s.ckpt", dir, pipeline) >= (int)sizeof(path)) {
        return MR_ERR_SET(err, MR_ETOOBIG, "checkpoint path too long");
    }
    uint8_t *data = NULL;
    size_t n = 0;
    int rc = mr_journal_read_small(path, MAX_SIZE, &data, &n);
    if (rc == MR_ENOENT) {
        return MR_ENOENT;
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot read checkpoint %s: %s", path, mr_strerror(rc));
    }
    uint64_t plen = 0;
    if (n >= MAGIC_LEN + 12) {
        for (int i = 0; i < 8; i++) {
            plen |= (uint64_t)data[MAGIC_LEN + i] << (8 * i);
        }
    }
    if (n < MAGIC_LEN + 12 || memcmp(data, MAGIC, MAGIC_LEN) != 0 || plen != n - MAGIC_LEN - 12) {
        mr_free(data);
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint %s: not a checkpoint or truncated", path);
    }
    uint32_t want = 0;
    for (int i = 0; i < 4; i++) {
        want |= (uint32_t)data[n - 4 + (size_t)i] << (8 * i);
    }
    if (mr_crc32c(0, data + MAGIC_LEN + 8, (size_t)plen) != want) {
        mr_free(data);
        return MR_ERR_SET(err, MR_ECORRUPT, "checkpoint %s: CRC mismatch (file damaged)", path);
    }
    memmove(data, data + MAGIC_LEN + 8, (size_t)plen);
    *payload = data;
    *len = (size_t)plen;
    return 0;
}
