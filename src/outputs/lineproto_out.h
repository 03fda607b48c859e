/* Rendering records as InfluxDB line protocol (1.x), for outputs that speak it (`influxdb`).
 *
 *   measurement[,tag=value...] field=value[,field_quality="bad"] timestamp\n
 *
 * Naming: with `measurement` set, every record goes to that measurement and the field is the
 * whole signal name. Without it, the signal splits at its first '.': "spindle.temp" becomes
 * measurement "spindle", field "temp"; a signal without '.' becomes measurement = signal and
 * field "value". Tags: the whole asset path as tag `asset_tag` (unless empty), each asset path
 * segment i as tag asset_path_tags[i] (an empty or "-" entry skips that segment), then the
 * record's own tags (a record tag whose key is one of the asset tags is left out; tags with an
 * empty value are left out, as line protocol cannot carry them).
 *
 * Escaping (InfluxDB 1.x line protocol): measurement: ',' and ' '; tag keys, tag values and field
 * keys: ',', '=' and ' '; string field values: '"' and '\'. Backslashes elsewhere are literal, so
 * a name ending in '\' (it would escape the separator after it) and names holding a newline
 * cannot be carried: such records are refused with a reason, as are NaN/Inf and sample blocks.
 *
 * Names are interned ids: each id is resolved and escaped once (cached per id, allocated on first
 * use), so rendering a record allocates nothing once its names were seen.
 */
#ifndef MILLRACE_OUTPUTS_LINEPROTO_OUT_H
#define MILLRACE_OUTPUTS_LINEPROTO_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "millrace/error.h"
#include "millrace/names.h"
#include "millrace/record.h"

enum mr_lp_quality {
    MR_LP_QUALITY_FIELD = 0, /* FIELD_quality="uncertain"|"bad" next to the value */
    MR_LP_QUALITY_TAG = 1,   /* tag quality=uncertain|bad (a series of its own) */
    MR_LP_QUALITY_DROP = 2,  /* not written */
};

enum mr_lp_precision {
    MR_LP_PRECISION_NS = 0,
    MR_LP_PRECISION_US = 1,
    MR_LP_PRECISION_MS = 2,
    MR_LP_PRECISION_S = 3,
};

#define MR_LP_MAX_PATH_TAGS 8

struct mr_lp_conf {
    const char *measurement;      /* NULL: from the signal */
    const char *asset_tag;        /* NULL or "": no whole-path tag */
    const char *const *path_tags; /* tag key per asset path segment; NULL/""/"-": skip */
    size_t n_path_tags;           /* <= MR_LP_MAX_PATH_TAGS */
    int quality;                  /* enum mr_lp_quality */
    int precision;                /* enum mr_lp_precision */
};

struct mr_lp_entry;

struct mr_lineproto {
    struct mr_names *names; /* borrowed */
    struct mr_lp_conf conf; /* strings borrowed */
    char *fixed_meas;       /* escaped `measurement`, or NULL */
    size_t fixed_meas_len;
    mr_name_id asset_keys[MR_LP_MAX_PATH_TAGS + 1]; /* ids of the asset tag keys (0: none) */
    struct mr_lp_entry *sig;                        /* by signal id */
    struct mr_lp_entry *asset;                      /* by asset id */
    struct mr_lp_entry *tagkey;                     /* by tag key id */
    uint32_t cap;                                   /* entries in each table */
};

/* Escape s[0..len) for a line-protocol position into out (cap bytes, not NUL-terminated).
 * Returns the length written, or -1 when out is too small. */
enum mr_lp_escape { MR_LP_ESC_MEASUREMENT, MR_LP_ESC_KEY, MR_LP_ESC_STRING };
long mr_lp_escape(enum mr_lp_escape kind, const char *s, size_t len, char *out, size_t cap);

/* Intern the asset tag keys into names. Returns 0 or an MR_E* code with err filled. */
int mr_lineproto_init(struct mr_lineproto *lp, struct mr_names *names,
                      const struct mr_lp_conf *conf, struct mr_err *err);
void mr_lineproto_fini(struct mr_lineproto *lp);

/* Append rec as one line (ending in '\n') at out[*len..cap). Returns 0 (*len advanced),
 * MR_ETOOBIG (no room: *len unchanged), MR_ENOMEM, or MR_EINVAL when the record cannot be
 * written as line protocol (*why says why; static text). */
int mr_lineproto_render(struct mr_lineproto *lp, const struct mr_record *rec, char *out, size_t cap,
                        size_t *len, const char **why);

#endif
