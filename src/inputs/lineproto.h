/* InfluxDB line protocol: the parser shared by the MQTT input (data_format: influx) and the HTTP
 * /write ingest.
 *
 *   measurement[,tag=value...] field=value[,field=value...] [timestamp]
 *   weather,site=north temp=21.5,ok=true,count=3i,note="a \"b\"" 1700000000000000000
 *
 * Field values: float (21.5, 1e3), integer (3i), unsigned (3u), string ("..." with \" and \\),
 * boolean (t, T, true, True, TRUE, f, F, false, False, FALSE). Escapes: `\,` and `\ ` in the
 * measurement; `\,`, `\=` and `\ ` in tag keys, tag values and field keys; any other backslash
 * is taken literally, as InfluxDB does. The timestamp is an integer in the given precision.
 *
 * Nothing here allocates. A parsed point borrows its names and string values either from the
 * line itself (when they hold no escapes) or from the caller's scratch buffer, which needs as
 * many bytes as the line (unescaping never grows text).
 */
#ifndef MILLRACE_INPUTS_LINEPROTO_H
#define MILLRACE_INPUTS_LINEPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "millrace/error.h"
#include "millrace/record.h"

#define MR_LP_MAX_TAGS   32
#define MR_LP_MAX_FIELDS 64
#define MR_LP_EMPTY      1 /* mr_lineproto_parse_line: blank or comment line, nothing parsed */

enum mr_lp_type {
    MR_LP_FLOAT = 1,
    MR_LP_INT = 2,
    MR_LP_UINT = 3,
    MR_LP_STRING = 4,
    MR_LP_BOOL = 5,
};

enum mr_lp_precision {
    MR_LP_NS = 0,
    MR_LP_US = 1,
    MR_LP_MS = 2,
    MR_LP_S = 3,
};

struct mr_lp_tag {
    struct mr_bytes key;
    struct mr_bytes value;
};

struct mr_lp_field {
    struct mr_bytes key;
    uint8_t type; /* enum mr_lp_type */
    union {
        double f;
        int64_t i;
        uint64_t u;
        bool b;
        struct mr_bytes s;
    } v;
};

struct mr_lp_point {
    /* The measurement and tags as sent (escapes kept), always borrowed from the line: what
     * depends only on the series (asset path, tag names) can be cached under these bytes. */
    struct mr_bytes series;
    struct mr_bytes measurement;
    struct mr_lp_tag tags[MR_LP_MAX_TAGS];
    size_t ntags;
    struct mr_lp_field fields[MR_LP_MAX_FIELDS];
    size_t nfields;
    int64_t time_ns;
    bool has_time; /* false: the line carried no timestamp (the caller stamps it) */
};

/* Parse one line (without its line end) into pt. scratch must hold at least len bytes.
 * Returns 0, MR_LP_EMPTY for a blank or `#` comment line, or MR_EPARSE / MR_ERANGE with err
 * saying what is wrong and at which column (1-based). */
int mr_lineproto_parse_line(const char *line, size_t len, enum mr_lp_precision prec,
                            struct mr_lp_point *pt, char *scratch, size_t scratch_cap,
                            struct mr_err *err);

/* Next line of buf[0..len) from *pos: writes its start and length (LF or CRLF excluded) and
 * moves *pos past it. Returns false at the end of buf. */
bool mr_lineproto_next(const char *buf, size_t len, size_t *pos, const char **line,
                       size_t *line_len);

/* Set r's type and value from a field (the MQTT and HTTP inputs map fields the same way):
 * float, integer, bool and string as they are; unsigned as a float (exact up to 2^53). A
 * string value borrows the field's bytes. */
void mr_lineproto_field_value(const struct mr_lp_field *f, struct mr_record *r);

/* A field's float text p[0..len) -> *out: digits, '.', 'e', 'E', '+', '-' only (so "nan", "inf"
 * and hex floats are refused, as InfluxDB does), all of it a number. The value is strtod's bit
 * for bit (a fast exact path for the common short decimals, strtod for the rest). Returns 0,
 * MR_EPARSE, or MR_ERANGE (not finite). */
int mr_lineproto_parse_float(const char *p, size_t len, double *out);

/* "ns", "us", "ms", "s" (also "n", "u" as InfluxDB's /write accepts) -> precision; MR_EINVAL
 * otherwise. */
int mr_lineproto_precision_parse(const char *s, enum mr_lp_precision *out);

#endif
