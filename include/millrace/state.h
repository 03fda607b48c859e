/* Operator state for checkpoints: a flat little-endian byte stream an operator writes in
 * snapshot and reads back, in the same order, in restore (millrace/plugin.h).
 *
 * Errors are sticky: after the first failure (out of memory, over the cap, truncated or
 * malformed input) every later put/get does nothing and returns the same error, so an operator
 * can write a run of puts and check once. Names are written as strings, because name ids are
 * only meaningful inside one process. Integers use 8 fixed bytes: state is small next to the
 * records it summarises, and fixed widths make a corrupt file easy to diagnose.
 */
#ifndef MILLRACE_STATE_H
#define MILLRACE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "millrace/error.h"
#include "millrace/names.h"

struct mr_state_writer {
    uint8_t *buf; /* owned */
    size_t len;
    size_t cap;
    size_t max; /* hard cap: puts beyond it fail with MR_ETOOBIG */
    int err;    /* sticky */
    const struct mr_names *names;
};

struct mr_state_reader {
    const uint8_t *buf; /* borrowed */
    size_t len;
    size_t pos;
    int err; /* sticky: MR_ECORRUPT when reading past the end or a malformed value */
    struct mr_names *names;
};

/* max: largest state in bytes (0: 1 GiB). names: where put_name looks ids up. */
void mr_state_writer_init(struct mr_state_writer *w, const struct mr_names *names, size_t max);
void mr_state_writer_fini(struct mr_state_writer *w);
/* Forget what was written, keep the buffer. */
void mr_state_writer_reset(struct mr_state_writer *w);
int mr_state_put_u64(struct mr_state_writer *w, uint64_t v);
int mr_state_put_i64(struct mr_state_writer *w, int64_t v);
int mr_state_put_f64(struct mr_state_writer *w, double v);
/* Length-prefixed bytes. */
int mr_state_put_bytes(struct mr_state_writer *w, const void *p, size_t n);
/* The string of a name id (0 is written as the empty string, and read back as 0). */
int mr_state_put_name(struct mr_state_writer *w, mr_name_id id);

/* names: where get_name interns. */
void mr_state_reader_init(struct mr_state_reader *r, struct mr_names *names, const void *buf,
                          size_t len);
int mr_state_get_u64(struct mr_state_reader *r, uint64_t *v);
int mr_state_get_i64(struct mr_state_reader *r, int64_t *v);
int mr_state_get_f64(struct mr_state_reader *r, double *v);
/* Borrow the next length-prefixed bytes (valid as long as the reader's buffer). */
int mr_state_get_bytes(struct mr_state_reader *r, const void **p, size_t *n);
int mr_state_get_name(struct mr_state_reader *r, mr_name_id *id);
/* Bytes left to read. */
static inline size_t mr_state_remaining(const struct mr_state_reader *r)
{
    return r->err != 0 ? 0 : r->len - r->pos;
}

#endif
