/* Interned names: asset paths, signal names, tag keys.
 *
 * A name is interned once (one hash of its bytes) and afterwards travels as a 32-bit id, so the
 * hot path compares and hashes integers, never strings. Ids are dense, start at 1 (0 = "no
 * name"), and stay valid until the table is destroyed. Interning is thread-safe; finding a
 * known name (mr_names_find, or mr_names_intern of a name already there) and looking up the
 * string of an id are lock-free (storage never moves); only adding a new name takes a lock.
 */
#ifndef MILLRACE_NAMES_H
#define MILLRACE_NAMES_H

#include <stddef.h>
#include <stdint.h>

typedef uint32_t mr_name_id;

struct mr_names;

/* max_names and max_bytes are hard caps (max_bytes counts each name's bytes plus its NUL);
 * interning beyond them fails with MR_ETOOBIG. Both must be > 0 (else MR_EINVAL). */
int mr_names_create(struct mr_names **out, uint32_t max_names, size_t max_bytes);
void mr_names_destroy(struct mr_names *names);

/* Intern len bytes of s (need not be NUL-terminated; must not contain NUL). Writes the id
 * to *id. Returns 0, MR_EINVAL (empty or contains NUL), MR_ETOOBIG (cap reached) or MR_ENOMEM. */
int mr_names_intern(struct mr_names *names, const char *s, size_t len, mr_name_id *id);
/* Id of an already interned name, or 0 when it was never interned. Never allocates. */
mr_name_id mr_names_find(const struct mr_names *names, const char *s, size_t len);
/* NUL-terminated string for id (borrowed, lives as long as the table), or NULL for an unknown
 * id. *len gets its length when len is not NULL. */
const char *mr_names_str(const struct mr_names *names, mr_name_id id, size_t *len);
uint32_t mr_names_count(const struct mr_names *names);

/* A small cache in front of mr_names_intern for one thread that decodes the same few names over
 * and over (a pipeline reading records of a few hundred assets): a hit costs a length check and a
 * memcmp against the interned string instead of hashing. Direct-mapped on a fingerprint of
 * length and three bytes; a miss interns as usual and takes the slot. Zero-initialise. */
#define MR_NAMES_MEMO_SLOTS 256
struct mr_names_memo {
    mr_name_id id[MR_NAMES_MEMO_SLOTS];
};
/* mr_names_intern through memo (memo may be NULL). */
int mr_names_intern_memo(struct mr_names *names, struct mr_names_memo *memo, const char *s,
                         size_t len, mr_name_id *id);

#endif
