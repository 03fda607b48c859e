/* Shared between the config_*.c files; not part of the public API.
 *
 * config_load.c    YAML -> tree of cnode (with FILE:LINE:COLUMN), ${ENV}, --set overrides
 * config_field.c   text -> value for each field type, bounds, "did you mean", table self-check
 * config_apply.c   tree -> structs through the field tables; freeing them
 * config_sections.c the top-level sections (journal, pipelines, http, assets) and mr_config_root
 * config_docs.c    the Markdown reference
 */
#ifndef MILLRACE_CONFIG_INTERNAL_H
#define MILLRACE_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "millrace/config.h"

/* Hard caps: data from outside never makes us allocate without bound. */
#define CFG_MAX_FILE_BYTES   (16u * 1024u * 1024u)
#define CFG_MAX_DEPTH        64
#define CFG_MAX_SCALAR_BYTES (1u * 1024u * 1024u)
#define CFG_PATH_LEN         256

enum cnode_kind {
    CNODE_NULL = 0, /* `key:`, `~`, `null`: same as absent */
    CNODE_SCALAR,
    CNODE_MAP,
    CNODE_SEQ,
};

struct cnode {
    enum cnode_kind kind;
    char *key;       /* the key when this node is a map value */
    char *text;      /* CNODE_SCALAR: value after ${ENV} substitution */
    const char *src; /* file name or "--set a.b" (owned by the tree) */
    uint32_t line;   /* 1-based; 0 for overrides. A scalar's own position; a map's or */
    uint32_t col;    /*   list's is its key's, which is where a reader looks for it */
    uint32_t kline;  /* position of the key, for "unknown key" */
    uint32_t kcol;
    bool used; /* claimed by a field: unclaimed keys are reported as unknown */
    struct cnode **kids;
    size_t n;
    size_t cap;
};

struct ctree {
    struct cnode *root; /* a map (or NULL for an empty document) */
    char **srcs;        /* strings nodes' `src` point into */
    size_t nsrcs;
};

/* ---- config_load.c ---- */

/* Append a problem to errs: "POS: PATH: message". at may be NULL (no position); path may be
 * NULL or empty (no path). */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
void cfg_error(struct mr_config_errors *errs, const struct cnode *at, const char *path,
               const char *fmt, ...);
/* "file:12:3" or "--set a.b" into out. */
void cfg_node_where(const struct cnode *n, char *out, size_t cap);

/* Child of a map by key, or NULL. */
struct cnode *cfg_node_get(const struct cnode *map, const char *key);

/* ---- config_field.c ---- */

/* Parse text for a scalar field type into *dst (the field's storage). Strings are copied
 * (mr_strdup) into *(char **)dst, replacing nothing (dst must hold NULL). Returns 0,
 * MR_ENOMEM, or MR_EINVAL with err saying what was expected. Bounds are checked too. */
int cfg_scalar_parse(const struct mr_field *f, const char *text, void *dst, struct mr_err *err);
/* True for the scalar types (bool .. enum). */
bool cfg_field_is_scalar(enum mr_field_type t);
const char *cfg_field_type_name(enum mr_field_type t);
/* The closest candidate (edit distance <= 2, or a prefix of/by key), or NULL. */
const char *cfg_suggest(const char *key, const char *const *cands, size_t n);
/* Parse a list-count bound ("1"); 0 when absent. */
int cfg_count_parse(const char *text, size_t *out);

/* ---- config_apply.c ---- */

/* Apply a tree to dst (zeroed, sec->size bytes); source names the file when the tree is
 * empty. Problems go to errs; returns 0, MR_ECONFIG or MR_ENOMEM. */
int cfg_apply(const struct mr_section *sec, void *dst, struct ctree *tree, const char *source,
              struct mr_config_errors *errs);
/* Free everything a section's struct owns (not the struct itself). */
void cfg_section_free(const struct mr_section *sec, void *conf);

#endif
