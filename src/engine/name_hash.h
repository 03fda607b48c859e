/* Stable 64-bit hashes of interned names, computed once per name id and cached in a dense array
 * (ids are dense), so per-record work hashes integers only. The hash depends on the string alone,
 * never on the id, so it is the same in every process: used for partition choice and for the
 * identity of records written by pipelines (dedupe after a crash). One cache, one thread. */
#ifndef MR_ENGINE_NAME_HASH_H
#define MR_ENGINE_NAME_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "millrace/names.h"

struct mr_name_hashes {
    uint64_t *h; /* h[id]; 0 = not computed yet */
    size_t cap;
};

/* FNV-1a 64 of bytes; never returns 0. */
uint64_t mr_hash_bytes(const void *p, size_t n);
/* Hash of the string of id (0 for id 0 or an unknown id, or when memory runs out: still
 * correct, just recomputed). */
uint64_t mr_name_hash(struct mr_name_hashes *c, const struct mr_names *names, mr_name_id id);
void mr_name_hashes_fini(struct mr_name_hashes *c);

#endif
