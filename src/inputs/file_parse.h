/* Text parsing for the file input (src/inputs/file.c): CSV rows, timestamps and numbers.
 *
 * Everything here works on byte ranges of the input's read buffer (not NUL-terminated), never
 * allocates and never writes into the input: the file input may parse a line, decide it is not
 * due yet (pace: realtime) and parse it again later. Exposed for white-box unit tests.
 */
#ifndef MILLRACE_INPUTS_FILE_PARSE_H
#define MILLRACE_INPUTS_FILE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "millrace/error.h"

/* Hard cap on the fields of one CSV row (and so on the columns of a file). */
#define MR_CSV_MAX_FIELDS 1024

struct mr_csv_field {
    const char *ptr; /* the field's bytes, without surrounding quotes */
    uint32_t len;
    bool quoted;  /* it was written in quotes: taken literally (no trimming) */
    bool escaped; /* it holds doubled quotes ("") that stand for one: see mr_csv_unescape */
};

struct mr_csv_row {
    struct mr_csv_field fields[MR_CSV_MAX_FIELDS];
    size_t nfields;
    size_t consumed; /* bytes of the buffer the row (or the bad line) took, line end included */
    size_t newlines; /* line ends it took: 1, more when a quoted field spans lines, 0 at EOF */
    const char *why; /* with MR_EPARSE: what is wrong, for the log */
};

#define MR_CSV_MORE 1 /* no complete row in the bytes given: read more */

/* Split the CSV row at the start of p[0..n) (RFC 4180: fields separated by delim, optionally
 * in double quotes; a quoted field may hold delim, line ends and doubled quotes). A row ends at
 * LF or CRLF, or at the end of the data when eof is true. A quote inside an unquoted field is
 * taken literally, as most spreadsheet exports expect. Returns 0 with row filled,
 * MR_CSV_MORE when p holds no complete row and eof is false, or MR_EPARSE for a malformed row
 * (text after a closing quote, an unterminated quote at EOF, more than MR_CSV_MAX_FIELDS
 * fields) with row->why set and row->consumed covering the bad line so the caller can skip it.
 * A blank line is one empty unquoted field. */
int mr_csv_split(const char *p, size_t n, bool eof, char delim, struct mr_csv_row *row);

/* Copy a field's text into out (cap bytes), turning doubled quotes into one. Returns the
 * length, or -1 when it does not fit. */
long mr_csv_unescape(const struct mr_csv_field *f, char *out, size_t cap);

/* Timestamp formats of a time column. */
enum mr_time_kind {
    MR_TIME_RFC3339 = 0, /* 2026-11-24T16:49:00.5Z; without an offset, the timezone applies */
    MR_TIME_UNIX_S,      /* seconds since 1970-01-01 UTC, fraction allowed: 1795539740.25 */
    MR_TIME_UNIX_MS,
    MR_TIME_UNIX_US,
    MR_TIME_UNIX_NS,
    MR_TIME_PATTERN, /* strptime-like: "%Y-%m-%d %H:%M:%S" */
};

struct mr_time_format {
    enum mr_time_kind kind;
    const char *pattern; /* MR_TIME_PATTERN: borrowed, must outlive the format */
    int64_t tz_offset_s; /* seconds east of UTC for times written without an offset */
};

/* Set up a format from the configuration's words: format is "rfc3339", "unix_s", "unix_ms",
 * "unix_us", "unix_ns" or a pattern holding at least one %-directive; timezone is "UTC", "Z"
 * or an offset "+01:00" / "-0530" / "+01" (NULL: UTC). Returns 0, or MR_EINVAL with err
 * saying what is wrong (unknown directive, bad offset).
 *
 * Pattern directives: %Y year (4 digits), %m month, %d day, %H hour (0-23), %I hour (1-12)
 * with %p AM/PM, %M minute, %S second (an optional fraction ".123" or ",123" follows unless the
 * pattern itself continues with '.' or ','), %f fraction digits (1 to 9), %y two-digit year
 * (69-99: 19xx, else 20xx), %b/%B English month name or abbreviation, %j day of the year,
 * %z offset (Z, +hh:mm, +hhmm, +hh), %T = %H:%M:%S, %F = %Y-%m-%d, %% a percent sign. A space
 * matches any run of blanks (also none); other characters match themselves. Numbers take at
 * most their width in digits, so "%Y%m%d" reads 20261124. */
int mr_time_format_init(struct mr_time_format *tf, const char *format, const char *timezone,
                        struct mr_err *err);

/* Parse s[0..len) (blanks around it ignored) into ns since the epoch. Returns 0, MR_EPARSE
 * (does not match the format) or MR_ERANGE (outside int64 ns: years 1678..2261). */
int mr_time_format_parse(const struct mr_time_format *tf, const char *s, size_t len, int64_t *ns);

/* Parse a decimal number s[0..len) (C locale, optional sign and exponent; blanks around it
 * ignored). Returns 0 with *v set, 1 for NaN/Inf (treated as a missing value by callers), or
 * MR_EPARSE when the text is not (entirely) a number. Hexadecimal is not a number here. */
int mr_number_parse(const char *s, size_t len, double *v);

#endif
