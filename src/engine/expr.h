/* Record expressions: the small condition language of `filter` and `route`.
 *
 *   value > 80 and quality == 'good'
 *   asset == 'plant1/line2/press3' or startswith(asset, 'plant1/line4')
 *   abs(value - 20) >= 5 && tags.shift != 'night'
 *   match(asset, 'plant1/line?/press*') and match(signal, 'temp_?')
 *
 * Grammar, loosest binding first:
 *   or        a or b, a || b
 *   and       a and b, a && b
 *   not       not a, !a
 *   compare   == != < <= > >=  (one per level: `a < b < c` is an error)
 *   sum       + -
 *   product   * / %
 *   unary     -a
 *   primary   number (1, 2.5, 1e-3), 'string' or "string" (\' \" \\ escapes), true, false,
 *             identifier, function call, ( expression )
 * Identifiers: value (the number: f64, i64 as double, bool as 0/1, NaN for strings and sample
 * blocks), time (ns since the epoch, as a double: exact to about 0.3 us), text (the value of a
 * string record, '' for others), signal, asset, quality ('good', 'uncertain' or 'bad'),
 * tags.NAME (tag value, '' when missing; tag('odd-name') for names that are not identifiers).
 * Functions: abs(x), sqrt(x), min(a, b, ...), max(a, b, ...), startswith(s, prefix),
 * endswith(s, suffix), contains(s, part), match(s, 'glob') where the glob (a literal) has `*`
 * (any run of characters within one path segment), `**` (anything, across '/') and `?` (one
 * character other than '/').
 *
 * Types are checked when compiling: numbers and strings do not mix, and a whole expression must
 * be a number (a condition: true when not 0 and not NaN). Strings compare bytewise.
 * NaN: x / 0 and x % 0 are NaN, so is `value` of a non-number; every comparison involving NaN
 * is false, `!=` included, so `value != 0` does not select text records.
 *
 * Cost: compiled once into a bytecode over a fixed-size stack; evaluating allocates nothing.
 * `asset == 'x'`, `signal != 'x'` and `quality == 'bad'` compile to one integer compare (the
 * literal is interned when compiling); string functions whose subject is `asset` or `signal`
 * remember their answer per name id in a small cache, so a path test runs once per asset.
 * A compiled expression is not thread-safe (the cache): one per operator instance.
 */
#ifndef MR_ENGINE_EXPR_H
#define MR_ENGINE_EXPR_H

#include <stdbool.h>

#include "millrace/error.h"
#include "millrace/names.h"
#include "millrace/record.h"

#define MR_EXPR_MAX_LEN   2048 /* bytes of source */
#define MR_EXPR_MAX_CODE  512  /* instructions */
#define MR_EXPR_MAX_STACK 32   /* evaluation stack slots */

struct mr_expr;

/* Compile src. names: where literals compared with asset/signal and tag names are interned;
 * NULL compiles for checking only (config validation): the result must not be evaluated.
 * Returns 0 and writes *out, or MR_EPARSE with err saying
 * "expression 'value >> 3': unexpected '>' at column 8" (columns count bytes from 1), or
 * MR_ENOMEM / MR_ETOOBIG (names table full). */
int mr_expr_compile(struct mr_expr **out, const char *src, struct mr_names *names,
                    struct mr_err *err);
void mr_expr_destroy(struct mr_expr *e);

/* The expression's number for rec (1/0 for conditions; may be NaN). */
double mr_expr_eval(struct mr_expr *e, const struct mr_record *rec);
/* True when the expression's value for rec is neither 0 nor NaN. */
bool mr_expr_test(struct mr_expr *e, const struct mr_record *rec);
/* The source text (borrowed, as compiled). */
const char *mr_expr_source(const struct mr_expr *e);

#endif
