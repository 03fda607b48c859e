/* JSON path extraction without allocation: a strict, single-pass JSON scanner that reports every
 * scalar leaf of a document with its dotted path ("a.b", "values.0", "" for a top-level
 * scalar). The MQTT input (data_format: json) picks the value, time and quality by path, or
 * flattens a whole object into one signal per numeric leaf.
 *
 * Strings are reported raw (the bytes between the quotes, escapes untouched) with a flag saying
 * whether they hold escapes; mr_json_unescape turns them into UTF-8. Paths are built in a
 * fixed buffer; object keys are unescaped into it. Limits (MR_JSON_MAX_DEPTH nesting,
 * MR_JSON_MAX_PATH path bytes) give a clear MR_ETOOBIG error, never a crash.
 */
#ifndef MILLRACE_INPUTS_JSONPATH_H
#define MILLRACE_INPUTS_JSONPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "millrace/error.h"

#define MR_JSON_MAX_DEPTH 32
#define MR_JSON_MAX_PATH  256

enum mr_json_kind {
    MR_JSON_NULL = 1,
    MR_JSON_BOOL = 2,
    MR_JSON_NUMBER = 3,
    MR_JSON_STRING = 4,
};

struct mr_json_leaf {
    const char *path; /* NUL-terminated, valid for the callback only */
    size_t path_len;
    enum mr_json_kind kind;
    const char *raw; /* the token in the document (a string without its quotes) */
    size_t raw_len;
    bool escaped; /* string holds backslash escapes */
    bool b;       /* MR_JSON_BOOL */
    double num;   /* MR_JSON_NUMBER */
    bool is_int;  /* number written without fraction or exponent and fits int64 */
    int64_t i;    /* MR_JSON_NUMBER with is_int */
};

/* Called for each leaf in document order. A non-zero return stops the walk and is returned. */
typedef int (*mr_json_leaf_cb)(void *arg, const struct mr_json_leaf *leaf);

/* Walk text[0..len) (one JSON value, whitespace around it allowed). Returns 0, the callback's
 * non-zero answer, MR_EPARSE (malformed: err names the byte offset) or MR_ETOOBIG (too deep or
 * a path too long). */
int mr_json_walk(const char *text, size_t len, mr_json_leaf_cb cb, void *arg, struct mr_err *err);

/* Unescape a raw JSON string (as a leaf reports it) into out (cap bytes; len bytes always
 * suffice). Returns the length written, or MR_EPARSE for a bad escape, MR_ETOOBIG when out is
 * too small. */
long mr_json_unescape(const char *raw, size_t len, char *out, size_t cap);

#endif
