/* Records as InfluxDB line protocol: see lineproto_out.h for the naming and escaping rules.
 *
 * Each name id is escaped once and cached in a table indexed by id (grown to the names table's
 * size when a new id shows up; the names table has a hard cap, so these do too). A cache entry
 * is either the escaped text(s) or the reason the name cannot be written.
 */
#include "outputs/lineproto_out.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/numtext.h"

enum { ENTRY_EMPTY = 0, ENTRY_OK = 1, ENTRY_BAD = 2 };

struct mr_lp_entry {
    uint8_t state;
    const char *why; /* ENTRY_BAD */
    char *a;         /* signal: measurement; asset: ",k=v..." tag text; tag key: escaped key */
    char *b;         /* signal: field key */
    uint32_t alen;
    uint32_t blen;
};

long mr_lp_escape(enum mr_lp_escape kind, const char *s, size_t len, char *out, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool esc;
        switch (kind) {
        case MR_LP_ESC_MEASUREMENT:
            esc = ch == ',' || ch == ' ';
            break;
        case MR_LP_ESC_KEY:
            esc = ch == ',' || ch == ' ' || ch == '=';
            break;
        default:
            esc = ch == '"' || ch == '\\';
        }
        if (w + 1 + (esc ? 1u : 0u) > cap) {
            return -1;
        }
        if (esc) {
            out[w++] = '\\';
        }
        out[w++] = ch;
    }
    return (long)w;
}

/* Why a name cannot be a measurement, key or tag value, or NULL. */
static const char *name_problem(const char *s, size_t len)
{
    if (len == 0) {
        return "empty name";
    }
    if (memchr(s, '\n', len) != NULL || memchr(s, '\r', len) != NULL) {
        return "a name holds a line break, which line protocol cannot carry";
    }
    if (s[len - 1] == '\\') {
        return "a name ends in a backslash, which line protocol reads as escaping the separator";
    }
    return NULL;
}

/* Escaped copy of s (heap), or NULL. */
static char *escape_dup(enum mr_lp_escape kind, const char *s, size_t len, uint32_t *out_len)
{
    char *buf = mr_malloc(2 * len + 1);
    if (buf == NULL) {
        return NULL;
    }
    long w = mr_lp_escape(kind, s, len, buf, 2 * len + 1);
    buf[w] = '\0';
    *out_len = (uint32_t)w;
    return buf;
}

int mr_lineproto_init(struct mr_lineproto *lp, struct mr_names *names,
                      const struct mr_lp_conf *conf, struct mr_err *err)
{
    memset(lp, 0, sizeof(*lp));
    lp->names = names;
    lp->conf = *conf;
    if (conf->n_path_tags > MR_LP_MAX_PATH_TAGS) {
        return MR_ERR_SET(err, MR_ECONFIG, "at most %d asset path tags", MR_LP_MAX_PATH_TAGS);
    }
    const char *keys[MR_LP_MAX_PATH_TAGS + 2];
    size_t nkeys = 0;
    keys[nkeys++] = conf->asset_tag;
    for (size_t i = 0; i < conf->n_path_tags; i++) {
        keys[nkeys++] = conf->path_tags[i];
    }
    if (conf->quality == MR_LP_QUALITY_TAG) {
        keys[nkeys++] = "quality";
    }
    for (size_t i = 0; i < nkeys && i < MR_LP_MAX_PATH_TAGS + 1; i++) {
        const char *k = keys[i];
        if (k == NULL || k[0] == '\0' || strcmp(k, "-") == 0) {
            continue;
        }
        const char *bad = name_problem(k, strlen(k));
        if (bad != NULL) {
            return MR_ERR_SET(err, MR_ECONFIG, "tag key '%s': %s", k, bad);
        }
        int rc = mr_names_intern(names, k, strlen(k), &lp->asset_keys[i]);
        if (rc != 0) {
            return MR_ERR_SET(err, rc, "cannot intern tag key '%s': %s", k, mr_strerror(rc));
        }
    }
    if (conf->measurement != NULL) {
        const char *bad = name_problem(conf->measurement, strlen(conf->measurement));
        if (bad != NULL) {
            return MR_ERR_SET(err, MR_ECONFIG, "measurement '%s': %s", conf->measurement, bad);
        }
        uint32_t ml;
        lp->fixed_meas =
            escape_dup(MR_LP_ESC_MEASUREMENT, conf->measurement, strlen(conf->measurement), &ml);
        if (lp->fixed_meas == NULL) {
            return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        }
        lp->fixed_meas_len = ml;
    }
    return 0;
}

static void table_free(struct mr_lp_entry *t, uint32_t cap)
{
    for (uint32_t i = 0; t != NULL && i < cap; i++) {
        mr_free(t[i].a);
        mr_free(t[i].b);
    }
    mr_free(t);
}

void mr_lineproto_fini(struct mr_lineproto *lp)
{
    table_free(lp->sig, lp->cap);
    table_free(lp->asset, lp->cap);
    table_free(lp->tagkey, lp->cap);
    mr_free(lp->fixed_meas);
    memset(lp, 0, sizeof(*lp));
}

/* Make every table hold id. Returns 0 or MR_ENOMEM. */
static int tables_grow(struct mr_lineproto *lp, mr_name_id id)
{
    if (id < lp->cap) {
        return 0;
    }
    uint32_t cap = mr_names_count(lp->names) + 1;
    if (cap <= id) {
        cap = id + 1;
    }
    cap += cap / 2 + 16;
    struct mr_lp_entry **tabs[3] = {&lp->sig, &lp->asset, &lp->tagkey};
    for (int t = 0; t < 3; t++) {
        struct mr_lp_entry *n = mr_realloc(*tabs[t], (size_t)cap * sizeof(**tabs[t]));
        if (n == NULL) {
            return MR_ENOMEM; /* tables already grown keep their old cap's worth zeroed */
        }
        memset(n + lp->cap, 0, (size_t)(cap - lp->cap) * sizeof(*n));
        *tabs[t] = n;
    }
    lp->cap = cap;
    return 0;
}

static const struct mr_lp_entry *signal_entry(struct mr_lineproto *lp, mr_name_id id)
{
    struct mr_lp_entry *e = &lp->sig[id];
    if (e->state != ENTRY_EMPTY) {
        return e;
    }
    size_t len = 0;
    const char *s = mr_names_str(lp->names, id, &len);
    const char *meas = s, *field = "value";
    size_t mlen = len, flen = 5;
    if (lp->fixed_meas != NULL) {
        field = s;
        flen = len;
    } else {
        const char *dot = s != NULL ? memchr(s, '.', len) : NULL;
        if (dot != NULL) {
            mlen = (size_t)(dot - s);
            field = dot + 1;
            flen = len - mlen - 1;
        }
    }
    const char *bad = s == NULL ? "unknown signal name" : NULL;
    bad = bad != NULL ? bad : lp->fixed_meas == NULL ? name_problem(meas, mlen) : NULL;
    bad = bad != NULL ? bad : name_problem(field, flen);
    if (bad != NULL) {
        e->state = ENTRY_BAD;
        e->why = bad;
        return e;
    }
    if (lp->fixed_meas == NULL) {
        e->a = escape_dup(MR_LP_ESC_MEASUREMENT, meas, mlen, &e->alen);
    }
    e->b = escape_dup(MR_LP_ESC_KEY, field, flen, &e->blen);
    if ((lp->fixed_meas == NULL && e->a == NULL) || e->b == NULL) {
        mr_free(e->a);
        mr_free(e->b);
        e->a = e->b = NULL;
        return NULL; /* out of memory: try again next time */
    }
    e->state = ENTRY_OK;
    return e;
}

/* Append ",key=value" (key raw, value raw; both escaped) to buf. Returns false when full. */
static bool tag_append(char *buf, size_t cap, size_t *w, const char *k, size_t klen, const char *v,
                       size_t vlen)
{
    if (*w + 1 > cap) {
        return false;
    }
    buf[(*w)++] = ',';
    long n = mr_lp_escape(MR_LP_ESC_KEY, k, klen, buf + *w, cap - *w);
    if (n < 0 || *w + (size_t)n + 1 > cap) {
        return false;
    }
    *w += (size_t)n;
    buf[(*w)++] = '=';
    n = mr_lp_escape(MR_LP_ESC_KEY, v, vlen, buf + *w, cap - *w);
    if (n < 0) {
        return false;
    }
    *w += (size_t)n;
    return true;
}

static const struct mr_lp_entry *asset_entry(struct mr_lineproto *lp, mr_name_id id)
{
    struct mr_lp_entry *e = &lp->asset[id];
    if (e->state != ENTRY_EMPTY) {
        return e;
    }
    size_t len = 0;
    const char *s = mr_names_str(lp->names, id, &len);
    const char *bad = s == NULL ? "unknown asset name" : name_problem(s, len);
    if (bad != NULL) {
        e->state = ENTRY_BAD;
        e->why = bad;
        return e;
    }
    size_t cap = 3 * len + 64 + (MR_LP_MAX_PATH_TAGS + 1) * 256;
    char *buf = mr_malloc(cap);
    if (buf == NULL) {
        return NULL;
    }
    size_t w = 0;
    bool ok = true;
    const char *at = lp->conf.asset_tag;
    if (at != NULL && at[0] != '\0') {
        ok = tag_append(buf, cap, &w, at, strlen(at), s, len);
    }
    const char *seg = s;
    for (size_t i = 0; ok && i < lp->conf.n_path_tags && seg != NULL; i++) {
        const char *end = memchr(seg, '/', len - (size_t)(seg - s));
        size_t slen = end != NULL ? (size_t)(end - seg) : len - (size_t)(seg - s);
        const char *k = lp->conf.path_tags[i];
        bool skip = k == NULL || k[0] == '\0' || strcmp(k, "-") == 0 || slen == 0;
        if (!skip && name_problem(seg, slen) == NULL) {
            ok = tag_append(buf, cap, &w, k, strlen(k), seg, slen);
        }
        seg = end != NULL ? end + 1 : NULL;
    }
    if (!ok || w >= cap) {
        mr_free(buf);
        e->state = ENTRY_BAD;
        e->why = "asset tags too long";
        return e;
    }
    buf[w] = '\0';
    e->a = buf;
    e->alen = (uint32_t)w;
    e->state = ENTRY_OK;
    return e;
}

static const struct mr_lp_entry *tagkey_entry(struct mr_lineproto *lp, mr_name_id id)
{
    struct mr_lp_entry *e = &lp->tagkey[id];
    if (e->state != ENTRY_EMPTY) {
        return e;
    }
    size_t len = 0;
    const char *s = mr_names_str(lp->names, id, &len);
    const char *bad = s == NULL ? "unknown tag key" : name_problem(s, len);
    if (bad != NULL) {
        e->state = ENTRY_BAD;
        e->why = bad;
        return e;
    }
    e->a = escape_dup(MR_LP_ESC_KEY, s, len, &e->alen);
    if (e->a == NULL) {
        return NULL;
    }
    e->state = ENTRY_OK;
    return e;
}

/* Floor division of event time by the precision's unit (times before 1970 round down). */
static int64_t time_scaled(int64_t ns, int precision)
{
    static const int64_t unit[] = {1, 1000, 1000000, 1000000000};
    int64_t u = unit[precision >= 0 && precision <= 3 ? precision : 0];
    int64_t q = ns / u;
    return (ns % u != 0 && ns < 0) ? q - 1 : q;
}

/* The record's own tags, escaped, appended at out[*w..cap). */
static int record_tags(struct mr_lineproto *lp, const struct mr_record *rec, char *out, size_t cap,
                       size_t *w, const char **why)
{
    for (uint16_t t = 0; t < rec->ntags && t < MR_RECORD_MAX_TAGS; t++) {
        const struct mr_tag *tag = &rec->tags[t];
        bool reserved = false;
        for (size_t k = 0; k < MR_LP_MAX_PATH_TAGS + 1; k++) {
            reserved = reserved || (lp->asset_keys[k] != 0 && lp->asset_keys[k] == tag->key);
        }
        if (reserved || tag->value.len == 0) {
            continue;
        }
        if (tables_grow(lp, tag->key) != 0) {
            return MR_ENOMEM;
        }
        const struct mr_lp_entry *ke = tagkey_entry(lp, tag->key);
        if (ke == NULL) {
            return MR_ENOMEM;
        }
        const char *bad =
            ke->state == ENTRY_BAD ? ke->why : name_problem(tag->value.ptr, tag->value.len);
        if (bad != NULL) {
            *why = bad;
            return MR_EINVAL;
        }
        if (*w + ke->alen + 2 > cap) {
            return MR_ETOOBIG;
        }
        out[(*w)++] = ',';
        memcpy(out + *w, ke->a, ke->alen);
        *w += ke->alen;
        out[(*w)++] = '=';
        long n = mr_lp_escape(MR_LP_ESC_KEY, tag->value.ptr, tag->value.len, out + *w, cap - *w);
        if (n < 0) {
            return MR_ETOOBIG;
        }
        *w += (size_t)n;
    }
    return 0;
}

/* " field=value" for the record's value at out[*w..cap). */
static int field_value(const struct mr_lp_entry *se, const struct mr_record *rec, char *out,
                       size_t cap, size_t *w, const char **why)
{
    if (*w + se->blen + 2 > cap) {
        return MR_ETOOBIG;
    }
    out[(*w)++] = ' ';
    memcpy(out + *w, se->b, se->blen);
    *w += se->blen;
    out[(*w)++] = '=';
    char num[40];
    int n = 0;
    switch (rec->type) {
    case MR_VALUE_F64:
        if (!isfinite(rec->v.f64)) {
            *why = "NaN and infinite values cannot be stored in InfluxDB";
            return MR_EINVAL;
        }
        n = mr_double_text(rec->v.f64, num, sizeof(num));
        break;
    case MR_VALUE_I64:
        n = snprintf(num, sizeof(num), "%" PRId64 "i", rec->v.i64);
        break;
    case MR_VALUE_BOOL:
        n = snprintf(num, sizeof(num), "%s", rec->v.b ? "true" : "false");
        break;
    case MR_VALUE_STRING: {
        if (*w + 1 > cap) {
            return MR_ETOOBIG;
        }
        out[(*w)++] = '"';
        long e = mr_lp_escape(MR_LP_ESC_STRING, rec->v.str.ptr, rec->v.str.len, out + *w, cap - *w);
        if (e < 0 || *w + (size_t)e + 1 > cap) {
            return MR_ETOOBIG;
        }
        *w += (size_t)e;
        out[(*w)++] = '"';
        return 0;
    }
    default:
        *why = "sample blocks cannot be written to InfluxDB (reduce them to features first)";
        return MR_EINVAL;
    }
    if (n <= 0 || *w + (size_t)n > cap) {
        return MR_ETOOBIG;
    }
    memcpy(out + *w, num, (size_t)n);
    *w += (size_t)n;
    return 0;
}

int mr_lineproto_render(struct mr_lineproto *lp, const struct mr_record *rec, char *out, size_t cap,
                        size_t *len, const char **why)
{
    static const char *const qname[] = {"good", "uncertain", "bad"};
    mr_name_id top = rec->signal > rec->asset ? rec->signal : rec->asset;
    if (tables_grow(lp, top) != 0) {
        return MR_ENOMEM;
    }
    const struct mr_lp_entry *se = signal_entry(lp, rec->signal);
    const struct mr_lp_entry *ae = asset_entry(lp, rec->asset);
    if (se == NULL || ae == NULL) {
        return MR_ENOMEM;
    }
    if (se->state == ENTRY_BAD || ae->state == ENTRY_BAD) {
        *why = se->state == ENTRY_BAD ? se->why : ae->why;
        return MR_EINVAL;
    }
    size_t w = *len;
    const char *meas = lp->fixed_meas != NULL ? lp->fixed_meas : se->a;
    size_t mlen = lp->fixed_meas != NULL ? lp->fixed_meas_len : se->alen;
    if (w + mlen + ae->alen > cap) {
        return MR_ETOOBIG;
    }
    memcpy(out + w, meas, mlen);
    w += mlen;
    memcpy(out + w, ae->a, ae->alen);
    w += ae->alen;
    int rc = record_tags(lp, rec, out, cap, &w, why);
    const char *q = qname[rec->quality <= MR_QUALITY_BAD ? rec->quality : MR_QUALITY_BAD];
    bool flag = rec->quality != MR_QUALITY_GOOD;
    if (rc == 0 && flag && lp->conf.quality == MR_LP_QUALITY_TAG) {
        rc = tag_append(out, cap, &w, "quality", 7, q, strlen(q)) ? 0 : MR_ETOOBIG;
    }
    rc = rc != 0 ? rc : field_value(se, rec, out, cap, &w, why);
    if (rc == 0 && flag && lp->conf.quality == MR_LP_QUALITY_FIELD) {
        int n = snprintf(out + w, w < cap ? cap - w : 0, ",%.*s_quality=\"%s\"", (int)se->blen,
                         se->b, q);
        rc = n < 0 || w + (size_t)n >= cap ? MR_ETOOBIG : 0;
        w += rc == 0 ? (size_t)n : 0;
    }
    if (rc == 0) {
        int n = snprintf(out + w, w < cap ? cap - w : 0, " %" PRId64 "\n",
                         time_scaled(rec->time_ns, lp->conf.precision));
        rc = n < 0 || w + (size_t)n >= cap ? MR_ETOOBIG : 0;
        w += rc == 0 ? (size_t)n : 0;
    }
    if (rc == 0) {
        *len = w;
    }
    return rc;
}
