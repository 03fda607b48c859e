/* The `http_listener` input's body decoder: a request body (line protocol or JSON) -> records,
 * all of them or none.
 *
 * All or nothing: the whole body is checked before any record is handed on, so a client whose
 * body has one bad line can fix it and send the same body again without duplicating the good
 * lines (InfluxDB itself writes the good lines of a batch and reports a "partial write"; we do
 * not, see docs/EDGE_HTTP.md). After the first bad line the rest of the body is still checked,
 * without storing records or interning names, so the answer can name the first
 * HL_MAX_REPORTED bad lines and count them all.
 *
 * Line protocol maps like the MQTT input's data_format influx: one record per field, signal =
 * measurement.field, tags kept as record tags. The asset, which a topic gives over MQTT, comes
 * from `asset` and the values of `asset_tags` (in order, joined with '/'); those tags are not
 * repeated as record tags. Records borrow names and strings from the body (or, for escaped text,
 * from the decoder's arena), so the body must outlive the records: the plugin hands them on
 * before it answers the request.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/http_listener.h"
#include "millrace/alloc.h"

#define NAME_MAX_LEN  512
#define RECS_MIN      256
/* A time number below this (March 1973 in ns) is almost surely seconds or milliseconds. */
#define MIN_TIME_NS   100000000000000000LL
#define TOKEN_MAX_LEN 40

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
problem(struct hl_report *rep, const char *fmt, ...)
{
    if (rep->nshown < HL_MAX_REPORTED) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rep->msg[rep->nshown++], HL_MSG_LEN, fmt, ap);
        va_end(ap);
    }
    rep->nbad++;
}

static void report_clear(struct hl_report *rep)
{
    rep->nbad = 0;
    rep->nshown = 0;
}

/* Room for n more records (grows the batch up to max_records). */
static int recs_reserve(struct hl_decoder *d, size_t n)
{
    if (d->nrecs + n <= d->cap) {
        return 0;
    }
    size_t want = d->cap < RECS_MIN ? RECS_MIN : d->cap;
    while (want < d->nrecs + n) {
        want *= 2;
    }
    if (want > (size_t)d->conf->max_records) {
        want = (size_t)d->conf->max_records;
    }
    struct mr_record *p = mr_realloc(d->recs, want * sizeof(*p));
    if (p == NULL) {
        return MR_ENOMEM;
    }
    d->recs = p;
    d->cap = want;
    return 0;
}

static int arena_reserve(struct hl_decoder *d, size_t len)
{
    if (d->arena_cap >= len) {
        return 0;
    }
    char *p = mr_malloc(len);
    if (p == NULL) {
        return MR_ENOMEM;
    }
    mr_free(d->arena);
    d->arena = p;
    d->arena_cap = len;
    return 0;
}

static int append(char *buf, size_t *k, const char *s, size_t len)
{
    if (*k + len >= NAME_MAX_LEN) {
        return MR_ETOOBIG;
    }
    memcpy(buf + *k, s, len);
    *k += len;
    return 0;
}

static int intern(struct hl_decoder *d, const char *s, size_t len, mr_name_id *id,
                  struct hl_report *rep)
{
    int rc = mr_names_intern_memo(d->names, &d->memo, s, len, id);
    if (rc != 0) {
        /* Ours, not the client's (the names table is full): reported as such. */
        report_clear(rep);
        problem(rep, "cannot keep the name '%.*s': %s", (int)(len > 64 ? 64 : len), s,
                mr_strerror(rc));
    }
    return rc;
}

/* ---- line protocol ---- */

static bool in_list(const struct mr_strlist *l, const struct mr_bytes *key)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strlen(l->items[i]) == key->len && memcmp(l->items[i], key->ptr, key->len) == 0) {
            return true;
        }
    }
    return false;
}

/* The asset path of a point: [asset/]tag values of asset_tags. 0, or MR_EPARSE with why. */
static int point_asset(const struct hl_decoder *d, const struct mr_lp_point *pt, char *out,
                       size_t *len, const char **why)
{
    const struct hl_conf *c = d->conf;
    size_t k = 0;
    if (c->asset != NULL && append(out, &k, c->asset, strlen(c->asset)) != 0) {
        *why = "asset path too long";
        return MR_EPARSE;
    }
    for (size_t i = 0; i < c->asset_tags.n; i++) {
        const char *want = c->asset_tags.items[i];
        const struct mr_lp_tag *t = NULL;
        for (size_t j = 0; j < pt->ntags && t == NULL; j++) {
            if (pt->tags[j].key.len == strlen(want) &&
                memcmp(pt->tags[j].key.ptr, want, pt->tags[j].key.len) == 0) {
                t = &pt->tags[j];
            }
        }
        if (t == NULL) {
            *why = want;
            return MR_ENOENT;
        }
        if ((k > 0 && append(out, &k, "/", 1) != 0) ||
            append(out, &k, t->value.ptr, t->value.len) != 0) {
            *why = "asset path too long";
            return MR_EPARSE;
        }
    }
    if (k == 0) {
        *why = "no asset: configure asset or asset_tags (tags naming the asset path)";
        return MR_EPARSE;
    }
    *len = k;
    return 0;
}

/* Word-at-a-time hash for the caches below (keys of tens of bytes, hashed per line); h chains a
 * second part. Not mr_hash_bytes: that one is FNV-1a, a byte at a time, and its values are part
 * of record identities (dedupe), so it cannot be swapped for a faster one; these caches live in
 * memory only. */
static uint64_t hash_more(uint64_t h, const char *s, size_t len)
{
    const uint64_t k1 = 0x9e3779b97f4a7c15ull, k2 = 0xc2b2ae3d27d4eb4full;
    h ^= (uint64_t)len * k1;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = ((h ^ (w * k2)) << 31 | (h ^ (w * k2)) >> 33) * k1;
    }
    if (i < len) {
        uint64_t w = 0;
        memcpy(&w, s + i, len - i);
        h = ((h ^ (w * k2)) << 31 | (h ^ (w * k2)) >> 33) * k1;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

/* The cached resolution of pt's series, or NULL. */
static const struct hl_series *series_find(const struct hl_decoder *d, const struct mr_lp_point *pt,
                                           uint64_t hash)
{
    const struct hl_series *s = &d->series[hash & (HL_SERIES_SLOTS - 1)];
    if (s->key_len == pt->series.len && s->hash == hash &&
        memcmp(s->key, pt->series.ptr, pt->series.len) == 0) {
        return s;
    }
    return NULL;
}

/* Resolve pt's series into *s: intern the asset path and the keys of the tags kept as record
 * tags (those not in asset_tags, up to MR_RECORD_MAX_TAGS). */
static int series_resolve(struct hl_decoder *d, const struct mr_lp_point *pt, const char *asset,
                          size_t alen, struct hl_series *s, struct hl_report *rep)
{
    int rc = intern(d, asset, alen, &s->asset, rep);
    s->ntags = 0;
    for (size_t i = 0; rc == 0 && i < pt->ntags && s->ntags < MR_RECORD_MAX_TAGS; i++) {
        if (in_list(&d->conf->asset_tags, &pt->tags[i].key)) {
            continue;
        }
        rc = intern(d, pt->tags[i].key.ptr, pt->tags[i].key.len, &s->tag_key[s->ntags], rep);
        s->tag_index[s->ntags++] = (uint8_t)i;
    }
    return rc;
}

/* The signal id of measurement.field (interned on a miss into buf, NAME_MAX_LEN bytes). */
static int signal_id(struct hl_decoder *d, const struct mr_lp_point *pt, uint64_t mhash,
                     const struct mr_lp_field *f, char *buf, mr_name_id *id, struct hl_report *rep)
{
    const struct mr_bytes *m = &pt->measurement;
    uint64_t h = hash_more(mhash, f->key.ptr, f->key.len);
    struct hl_signal *slot = &d->signals[h & (HL_SIGNAL_SLOTS - 1)];
    if (slot->id != 0 && slot->hash == h) {
        size_t len = 0;
        const char *str = mr_names_str(d->names, slot->id, &len);
        if (str != NULL && len == (size_t)m->len + 1 + f->key.len &&
            memcmp(str, m->ptr, m->len) == 0 && str[m->len] == '.' &&
            memcmp(str + m->len + 1, f->key.ptr, f->key.len) == 0) {
            *id = slot->id;
            return 0;
        }
    }
    size_t k = 0;
    append(buf, &k, m->ptr, m->len);
    append(buf, &k, ".", 1);
    append(buf, &k, f->key.ptr, f->key.len);
    int rc = intern(d, buf, k, id, rep);
    if (rc == 0) {
        *slot = (struct hl_signal){.hash = h, .id = *id};
    }
    return rc;
}

/* Check one parsed line and, when store, append its records. Returns 0, MR_EPARSE (a problem
 * of the line, reported), or another code (ours, reported). What depends only on the series
 * (asset path, tag keys) comes from d->series when the same series was seen before. */
static int lp_point(struct hl_decoder *d, const struct mr_lp_point *pt, size_t line_no,
                    const char *database, int64_t now_ns, bool store, struct hl_report *rep)
{
    char asset[NAME_MAX_LEN], signal[NAME_MAX_LEN];
    size_t alen = 0;
    const char *why = NULL;
    int rc;
    uint64_t shash = hash_more(0x243f6a8885a308d3ull, pt->series.ptr, pt->series.len);
    const struct hl_series *s = series_find(d, pt, shash);
    if (s == NULL) {
        rc = point_asset(d, pt, asset, &alen, &why);
        if (rc == MR_ENOENT) {
            problem(rep, "line %zu: tag '%s' (one of asset_tags) is missing", line_no, why);
            return MR_EPARSE;
        }
        if (rc != 0) {
            problem(rep, "line %zu: %s", line_no, why);
            return MR_EPARSE;
        }
    }
    for (size_t i = 0; i < pt->nfields; i++) {
        if ((size_t)pt->measurement.len + 1 + pt->fields[i].key.len >= NAME_MAX_LEN) {
            problem(rep, "line %zu: signal name (measurement.field) longer than %d bytes", line_no,
                    NAME_MAX_LEN - 1);
            return MR_EPARSE;
        }
    }
    if (!store) {
        return 0;
    }
    struct hl_series fresh;
    if (s == NULL) {
        struct hl_series *slot = &d->series[shash & (HL_SERIES_SLOTS - 1)];
        bool cacheable = pt->series.len <= HL_SERIES_KEY_MAX;
        struct hl_series *into = cacheable ? slot : &fresh;
        if (cacheable) {
            slot->key_len = 0; /* not valid until resolved */
        }
        if ((rc = series_resolve(d, pt, asset, alen, into, rep)) != 0) {
            return rc;
        }
        if (cacheable) {
            slot->hash = shash;
            memcpy(slot->key, pt->series.ptr, pt->series.len);
            slot->key_len = pt->series.len;
        }
        s = into;
    }
    struct mr_tag tags[MR_RECORD_MAX_TAGS];
    uint16_t ntags = 0;
    if (d->database_tag != 0 && database != NULL && database[0] != '\0') {
        tags[ntags++] = (struct mr_tag){
            .key = d->database_tag, .value = {.ptr = database, .len = (uint32_t)strlen(database)}};
    }
    for (size_t i = 0; i < s->ntags && ntags < MR_RECORD_MAX_TAGS; i++) {
        tags[ntags++] =
            (struct mr_tag){.key = s->tag_key[i], .value = pt->tags[s->tag_index[i]].value};
    }
    uint64_t mhash = hash_more(0x452821e638d01377ull, pt->measurement.ptr, pt->measurement.len);
    for (size_t i = 0; i < pt->nfields; i++) {
        const struct mr_lp_field *f = &pt->fields[i];
        struct mr_record *r = &d->recs[d->nrecs];
        memset(r, 0, offsetof(struct mr_record, tags));
        if ((rc = signal_id(d, pt, mhash, f, signal, &r->signal, rep)) != 0) {
            return rc;
        }
        r->asset = s->asset;
        r->time_ns = pt->has_time ? pt->time_ns : now_ns;
        r->quality = MR_QUALITY_GOOD;
        mr_lineproto_field_value(f, r);
        r->ntags = ntags;
        memcpy(r->tags, tags, ntags * sizeof(tags[0]));
        d->nrecs++;
    }
    return 0;
}

/* A line the parser refused: its message ("column 12: ...") and the text found there. */
static void lp_bad_line(struct hl_report *rep, size_t line_no, const char *line, size_t len,
                        const struct mr_err *e)
{
    unsigned long col = 0;
    if (strncmp(e->msg, "column ", 7) == 0) {
        col = strtoul(e->msg + 7, NULL, 10);
    }
    if (col == 0 || col > len) {
        problem(rep, "line %zu: %s", line_no, e->msg);
        return;
    }
    size_t at = col - 1, end = at;
    while (end < len && end - at < TOKEN_MAX_LEN && line[end] != ' ' && line[end] != ',') {
        end++;
    }
    if (end == at) {
        problem(rep, "line %zu: %s", line_no, e->msg);
        return;
    }
    problem(rep, "line %zu: %s (at '%.*s')", line_no, e->msg, (int)(end - at), line + at);
}

int hl_decode_lineproto(struct hl_decoder *d, const char *body, size_t len,
                        enum mr_lp_precision prec, const char *database, int64_t now_ns,
                        struct hl_report *rep)
{
    hl_decoder_reset(d);
    report_clear(rep);
    if (arena_reserve(d, len + 1) != 0) {
        problem(rep, "out of memory for a body of %zu bytes", len);
        return MR_ENOMEM;
    }
    size_t pos = 0, line_no = 0, total = 0, max = (size_t)d->conf->max_records;
    const char *line;
    size_t line_len;
    int rc = 0;
    while (mr_lineproto_next(body, len, &pos, &line, &line_len)) {
        line_no++;
        struct mr_err e;
        bool store = rep->nbad == 0;
        /* When not storing, every line reuses the start of the arena. */
        char *scratch = d->arena + (store ? d->arena_used : 0);
        int prc = mr_lineproto_parse_line(line, line_len, prec, d->lp, scratch, line_len, &e);
        if (prc == MR_LP_EMPTY) {
            continue;
        }
        if (prc != 0) {
            lp_bad_line(rep, line_no, line, line_len, &e);
            continue;
        }
        total += d->lp->nfields;
        if (total > max) {
            report_clear(rep);
            problem(rep,
                    "line %zu: more than %zu records (fields) in one request (max_records): "
                    "send smaller batches",
                    line_no, max);
            hl_decoder_reset(d);
            return MR_ETOOBIG;
        }
        if (store && recs_reserve(d, d->lp->nfields) != 0) {
            report_clear(rep);
            problem(rep, "out of memory for %zu records", total);
            hl_decoder_reset(d);
            return MR_ENOMEM;
        }
        rc = lp_point(d, d->lp, line_no, database, now_ns, store, rep);
        if (rc != 0 && rc != MR_EPARSE) {
            hl_decoder_reset(d);
            return rc;
        }
        if (store) {
            d->arena_used += line_len;
        }
    }
    if (rep->nbad > 0) {
        hl_decoder_reset(d);
        return MR_EPARSE;
    }
    return 0;
}

/* ---- JSON ---- */

static const char *const json_keys[] = {"asset", "signal", "value", "time", "quality", "tags"};
#define NKEYS (sizeof(json_keys) / sizeof(json_keys[0]))

struct item {
    size_t no; /* 1-based */
    json_t *f[NKEYS];
};

static int item_fields(json_t *obj, struct item *it, struct hl_report *rep)
{
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach(obj, key, klen, v)
    {
        size_t k = 0;
        while (k < NKEYS &&
               !(strlen(json_keys[k]) == klen && memcmp(json_keys[k], key, klen) == 0)) {
            k++;
        }
        if (k == NKEYS) {
            problem(rep,
                    "item %zu: unknown field \"%.*s\" (fields: asset, signal, value, time, "
                    "quality, tags)",
                    it->no, (int)(klen > TOKEN_MAX_LEN ? TOKEN_MAX_LEN : klen), key);
            return MR_EPARSE;
        }
        it->f[k] = v;
    }
    return 0;
}

static int item_name(struct item *it, json_t *v, const char *field, const char *dflt,
                     struct mr_bytes *out, struct hl_report *rep)
{
    if (v == NULL && dflt != NULL) {
        *out = (struct mr_bytes){.ptr = dflt, .len = (uint32_t)strlen(dflt)};
        return 0;
    }
    if (v == NULL) {
        problem(rep, "item %zu: missing \"%s\"", it->no, field);
        return MR_EPARSE;
    }
    size_t len = json_is_string(v) ? json_string_length(v) : 0;
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    if (len == 0 || len >= NAME_MAX_LEN || memchr(s, '\0', len) != NULL) {
        problem(rep, "item %zu: \"%s\" must be a non-empty text of less than %d bytes", it->no,
                field, NAME_MAX_LEN);
        return MR_EPARSE;
    }
    *out = (struct mr_bytes){.ptr = s, .len = (uint32_t)len};
    return 0;
}

static int item_value(struct item *it, json_t *v, struct mr_record *r, struct hl_report *rep)
{
    switch (v == NULL ? JSON_NULL : json_typeof(v)) {
    case JSON_INTEGER:
        r->type = MR_VALUE_I64;
        r->v.i64 = (int64_t)json_integer_value(v);
        return 0;
    case JSON_REAL:
        r->type = MR_VALUE_F64;
        r->v.f64 = json_real_value(v);
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        r->type = MR_VALUE_BOOL;
        r->v.b = json_is_true(v);
        return 0;
    case JSON_STRING:
        r->type = MR_VALUE_STRING;
        r->v.str =
            (struct mr_bytes){.ptr = json_string_value(v), .len = (uint32_t)json_string_length(v)};
        return 0;
    default:
        problem(rep, "item %zu: %s", it->no,
                v == NULL ? "missing \"value\""
                          : "\"value\" must be a number, true/false or a text");
        return MR_EPARSE;
    }
}

static int item_time(struct item *it, json_t *v, int64_t now_ns, int64_t *ns, struct hl_report *rep)
{
    if (v == NULL) {
        *ns = now_ns;
        return 0;
    }
    if (json_is_string(v)) {
        if (mr_time_parse_rfc3339(json_string_value(v), json_string_length(v), ns) == 0) {
            return 0;
        }
        problem(
            rep, "item %zu: \"time\" \"%.*s\" is not an RFC 3339 time (2026-11-24T16:49:00Z)",
            it->no,
            (int)(json_string_length(v) > TOKEN_MAX_LEN ? TOKEN_MAX_LEN : json_string_length(v)),
            json_string_value(v));
        return MR_EPARSE;
    }
    double t = json_is_integer(v) ? (double)json_integer_value(v) : json_number_value(v);
    if (!json_is_number(v) || !(t > -9.2e18 && t < 9.2e18)) {
        problem(rep,
                "item %zu: \"time\" must be RFC 3339 text or a number of nanoseconds since "
                "1970",
                it->no);
        return MR_EPARSE;
    }
    *ns = json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)llround(t);
    if (*ns < MIN_TIME_NS) {
        problem(rep,
                "item %zu: \"time\" %lld is before 1973: a time number is nanoseconds since 1970 "
                "(seconds or milliseconds? multiply, or send RFC 3339 text)",
                it->no, (long long)*ns);
        return MR_EPARSE;
    }
    return 0;
}

static int item_quality(struct item *it, json_t *v, uint8_t *q, struct hl_report *rep)
{
    static const char *const names[] = {"good", "uncertain", "bad"};
    *q = MR_QUALITY_GOOD;
    if (v == NULL) {
        return 0;
    }
    for (uint8_t i = 0; i < 3 && json_is_string(v); i++) {
        if (strcmp(json_string_value(v), names[i]) == 0) {
            *q = i;
            return 0;
        }
    }
    problem(rep, "item %zu: \"quality\" must be \"good\", \"uncertain\" or \"bad\"", it->no);
    return MR_EPARSE;
}

static int item_tags(struct hl_decoder *d, struct item *it, json_t *v, bool store,
                     struct mr_record *r, struct hl_report *rep)
{
    r->ntags = 0;
    if (v == NULL) {
        return 0;
    }
    if (!json_is_object(v) || json_object_size(v) > MR_RECORD_MAX_TAGS) {
        problem(rep, "item %zu: \"tags\" must be an object of at most %d texts", it->no,
                MR_RECORD_MAX_TAGS);
        return MR_EPARSE;
    }
    const char *key;
    size_t klen;
    json_t *tv;
    json_object_keylen_foreach(v, key, klen, tv)
    {
        if (!json_is_string(tv) || klen == 0 || klen >= NAME_MAX_LEN ||
            memchr(key, '\0', klen) != NULL) {
            problem(rep, "item %zu: tag \"%.*s\" must have a name and a text value", it->no,
                    (int)(klen > TOKEN_MAX_LEN ? TOKEN_MAX_LEN : klen), key);
            return MR_EPARSE;
        }
        struct mr_tag *t = &r->tags[r->ntags++];
        t->value = (struct mr_bytes){.ptr = json_string_value(tv),
                                     .len = (uint32_t)json_string_length(tv)};
        int rc = store ? intern(d, key, klen, &t->key, rep) : 0;
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Check one item and, when store, append its record. Returns 0, MR_EPARSE (reported) or
 * another code (ours, reported). */
static int json_item(struct hl_decoder *d, json_t *obj, size_t no, int64_t now_ns, bool store,
                     struct hl_report *rep)
{
    struct item it = {.no = no};
    struct mr_record tmp;
    struct mr_record *r = store ? &d->recs[d->nrecs] : &tmp;
    struct mr_bytes asset, signal;
    int rc;
    if (!json_is_object(obj)) {
        problem(rep, "item %zu: expected an object {\"asset\", \"signal\", \"value\", ...}", no);
        return MR_EPARSE;
    }
    memset(r, 0, offsetof(struct mr_record, tags));
    if ((rc = item_fields(obj, &it, rep)) != 0 ||
        (rc = item_name(&it, it.f[0], "asset", d->conf->asset, &asset, rep)) != 0 ||
        (rc = item_name(&it, it.f[1], "signal", NULL, &signal, rep)) != 0 ||
        (rc = item_value(&it, it.f[2], r, rep)) != 0 ||
        (rc = item_time(&it, it.f[3], now_ns, &r->time_ns, rep)) != 0 ||
        (rc = item_quality(&it, it.f[4], &r->quality, rep)) != 0 ||
        (rc = item_tags(d, &it, it.f[5], store, r, rep)) != 0) {
        return rc;
    }
    if (!store) {
        return 0;
    }
    if ((rc = intern(d, asset.ptr, asset.len, &r->asset, rep)) != 0 ||
        (rc = intern(d, signal.ptr, signal.len, &r->signal, rep)) != 0) {
        return rc;
    }
    d->nrecs++;
    return 0;
}

int hl_decode_json(struct hl_decoder *d, const char *body, size_t len, int64_t now_ns,
                   struct hl_report *rep)
{
    json_error_t jerr;
    hl_decoder_reset(d);
    report_clear(rep);
    d->doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (d->doc == NULL) {
        problem(rep, "JSON: %s at line %d column %d", jerr.text, jerr.line, jerr.column);
        return MR_EPARSE;
    }
    bool is_array = json_is_array(d->doc);
    size_t n = is_array ? json_array_size(d->doc) : 1;
    if (n > (size_t)d->conf->max_records) {
        problem(rep, "%zu items exceed max_records (%lld) for one request: send smaller batches", n,
                (long long)d->conf->max_records);
        hl_decoder_reset(d);
        return MR_ETOOBIG;
    }
    if (recs_reserve(d, n) != 0) {
        problem(rep, "out of memory for %zu records", n);
        hl_decoder_reset(d);
        return MR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *obj = is_array ? json_array_get(d->doc, i) : d->doc;
        int rc = json_item(d, obj, i + 1, now_ns, rep->nbad == 0, rep);
        if (rc != 0 && rc != MR_EPARSE) {
            hl_decoder_reset(d);
            return rc;
        }
    }
    if (rep->nbad > 0) {
        hl_decoder_reset(d);
        return MR_EPARSE;
    }
    return 0;
}

/* ---- life ---- */

int hl_decoder_init(struct hl_decoder *d, const struct hl_conf *conf, struct mr_names *names,
                    struct mr_err *err)
{
    int rc = 0;
    memset(d, 0, sizeof(*d));
    d->conf = conf;
    d->names = names;
    if (conf->database_tag != NULL && conf->database_tag[0] != '\0') {
        rc = mr_names_intern(names, conf->database_tag, strlen(conf->database_tag),
                             &d->database_tag);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot keep the name of database_tag: %s", mr_strerror(rc));
    }
    d->lp = mr_malloc(sizeof(*d->lp));
    d->series = mr_calloc(HL_SERIES_SLOTS, sizeof(*d->series));
    d->signals = mr_calloc(HL_SIGNAL_SLOTS, sizeof(*d->signals));
    if (d->lp == NULL || d->series == NULL || d->signals == NULL) {
        hl_decoder_fini(d);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    return 0;
}

void hl_decoder_reset(struct hl_decoder *d)
{
    d->nrecs = 0;
    d->arena_used = 0;
    if (d->doc != NULL) {
        json_decref(d->doc);
        d->doc = NULL;
    }
}

void hl_decoder_fini(struct hl_decoder *d)
{
    hl_decoder_reset(d);
    mr_free(d->recs);
    mr_free(d->arena);
    mr_free(d->lp);
    mr_free(d->series);
    mr_free(d->signals);
    d->series = NULL;
    d->signals = NULL;
    d->recs = NULL;
    d->arena = NULL;
    d->lp = NULL;
}
