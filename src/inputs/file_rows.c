/* The file input's rows: which column plays which part (the plan, made once per file from its
 * header), and one CSV row or JSON line into records.
 *
 * A wide row (one column per signal) gives one record per non-empty value cell; a long row
 * (signal_column + value_column) gives one record. Every record of a row shares its time,
 * asset, quality and tags. Cells are taken as:
 *   empty, NaN, Inf -> no record        a number (C locale) -> f64
 *   true / false (any case) -> bool     anything else -> a string value
 * Text that outlives the row is borrowed from the read buffer; only text that must be changed
 * (doubled quotes, backslash escapes in a tags cell, JSON strings) is copied into the batch's
 * arena. Names are interned once: configured ones at init, header ones once per file, asset,
 * signal and tag-key cells through a small cache of recent names. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "inputs/file_internal.h"
#include "millrace/alloc.h"

/* Arena bytes a JSON line of len bytes may need: decoded strings and samples never take more
 * than twice the text, plus alignment (16-byte steps keep the next slice aligned). */
#define JSON_SLICE(len) ((2 * (len) + 64 + 15) & ~(size_t)15)

/* ---- names ------------------------------------------------------------------------------- */

static int cache_intern(struct file_ctx *c, struct name_cache *nc, const char *s, size_t len,
                        mr_name_id *id)
{
    size_t l;
    if (nc->n > 0) {
        const char *str = mr_names_str(c->host->names, nc->ids[nc->last], &l);
        if (l == len && memcmp(str, s, len) == 0) {
            *id = nc->ids[nc->last];
            return 0;
        }
    }
    for (unsigned i = 0; i < nc->n; i++) {
        const char *str = mr_names_str(c->host->names, nc->ids[i], &l);
        if (l == len && memcmp(str, s, len) == 0) {
            nc->last = i;
            *id = nc->ids[i];
            return 0;
        }
    }
    mr_name_id got;
    int rc = mr_names_intern(c->host->names, s, len, &got);
    if (rc != 0) {
        return rc;
    }
    unsigned slot = nc->n < FILE_NAME_CACHE ? nc->n++ : nc->next++ % FILE_NAME_CACHE;
    nc->ids[slot] = got;
    nc->last = slot;
    *id = got;
    return 0;
}

static int intern_str(struct file_ctx *c, const char *s, mr_name_id *id)
{
    return mr_names_intern(c->host->names, s, strlen(s), id);
}

/* ---- the plan ---------------------------------------------------------------------------- */

static void plan_reset(struct file_plan *p)
{
    p->ncols = 0;
    p->time = p->asset = p->quality = p->signal = p->value = p->tags = -1;
    p->ntags = 0;
    p->nsignals = 0;
}

/* Room for every record one row can give. Grows only between batches (nrecs == 0). */
static int recs_fit(struct file_ctx *c, size_t per_row)
{
    if (per_row <= c->rec_cap) {
        return 0;
    }
    struct mr_record *grown = mr_realloc(c->recs, per_row * sizeof(*grown));
    if (grown == NULL) {
        return MR_ENOMEM;
    }
    c->recs = grown;
    c->rec_cap = per_row;
    return 0;
}

static bool same(const char *a, const char *b, size_t blen)
{
    return a != NULL && strlen(a) == blen && memcmp(a, b, blen) == 0;
}

/* The part a column named name[0..len) plays; returns 1 when it took one. */
static int plan_column(struct file_ctx *c, struct file_plan *p, int idx, const char *name,
                       size_t len, struct mr_err *err)
{
    const struct file_in_conf *cf = c->conf;
    int *roles[] = {&p->time, &p->asset, &p->quality, &p->signal, &p->value, &p->tags};
    const char *names[] = {cf->time_column,
                           cf->asset_column,
                           cf->quality_column,
                           cf->signal_column,
                           cf->signal_column != NULL ? cf->value_column : NULL,
                           cf->tags_column};
    for (size_t r = 0; r < sizeof(roles) / sizeof(roles[0]); r++) {
        if (*roles[r] < 0 && same(names[r], name, len)) {
            *roles[r] = idx;
            return 1;
        }
    }
    for (size_t t = 0; t < cf->tag_columns.n; t++) {
        if (p->tag[t].idx < 0 && same(cf->tag_columns.items[t], name, len)) {
            p->tag[t].idx = idx;
            return 1;
        }
    }
    for (size_t s = 0; s < cf->columns.n; s++) {
        if (same(cf->columns.items[s].key, name, len)) {
            int rc = intern_str(c, cf->columns.items[s].value, &p->sig[p->nsignals].signal);
            if (rc != 0) {
                return MR_ERR_SET(err, rc, "cannot intern signal '%s': %s",
                                  cf->columns.items[s].value, mr_strerror(rc));
            }
            p->sig[p->nsignals++].idx = idx;
            return 1;
        }
    }
    if (cf->columns.n == 0 && cf->signal_column == NULL && len > 0) {
        /* Default: every other named column is a signal named after it. */
        int rc = mr_names_intern(c->host->names, name, len, &p->sig[p->nsignals].signal);
        if (rc != 0) {
            return MR_ERR_SET(err, rc, "cannot intern signal '%.*s': %s", (int)len, name,
                              mr_strerror(rc));
        }
        p->sig[p->nsignals++].idx = idx;
        return 1;
    }
    return 0;
}

/* Every configured column must be in the file. */
static int plan_check(struct file_ctx *c, const struct file_plan *p, struct mr_err *err)
{
    const struct file_in_conf *cf = c->conf;
    const char *missing = NULL;
    const char *key = NULL;
    if (p->time < 0) {
        missing = cf->time_column, key = "time_column";
    } else if (cf->asset_column != NULL && p->asset < 0) {
        missing = cf->asset_column, key = "asset_column";
    } else if (cf->quality_column != NULL && p->quality < 0) {
        missing = cf->quality_column, key = "quality_column";
    } else if (cf->signal_column != NULL && p->signal < 0) {
        missing = cf->signal_column, key = "signal_column";
    } else if (cf->signal_column != NULL && p->value < 0) {
        missing = cf->value_column, key = "value_column";
    } else if (cf->tags_column != NULL && p->tags < 0) {
        missing = cf->tags_column, key = "tags_column";
    }
    for (size_t t = 0; missing == NULL && t < cf->tag_columns.n; t++) {
        if (p->tag[t].idx < 0) {
            missing = cf->tag_columns.items[t], key = "tag_columns";
        }
    }
    if (missing == NULL && cf->columns.n > 0 && p->nsignals < cf->columns.n) {
        for (size_t s = 0; s < cf->columns.n && missing == NULL; s++) {
            bool found = false;
            for (size_t k = 0; k < p->nsignals && !found; k++) {
                found = strcmp(mr_names_str(c->host->names, p->sig[k].signal, NULL),
                               cf->columns.items[s].value) == 0;
            }
            if (!found) {
                missing = cf->columns.items[s].key, key = "columns";
            }
        }
    }
    if (missing != NULL) {
        return MR_ERR_SET(err, MR_ECONFIG, "has no column '%s' (%s)%s", missing, key,
                          cf->header ? "" : "; with header: false, columns are numbered from 1");
    }
    if (p->nsignals == 0 && cf->signal_column == NULL) {
        return MR_ERR_SET(err, MR_ECONFIG, "has no column to read values from");
    }
    return 0;
}

int mr_file_plan_csv(struct file_ctx *c, const struct mr_csv_row *header, struct mr_err *err)
{
    struct file_plan *p = &c->plan;
    char name[FILE_MAX_NAME];
    plan_reset(p);
    p->ncols = header->nfields;
    for (size_t t = 0; t < c->conf->tag_columns.n; t++) {
        p->tag[t].idx = -1;
        int rc = intern_str(c, c->conf->tag_columns.items[t], &p->tag[t].key);
        if (rc != 0) {
            return MR_ERR_SET(err, rc, "cannot intern tag key: %s", mr_strerror(rc));
        }
    }
    p->ntags = c->conf->tag_columns.n;
    for (size_t i = 0; i < header->nfields; i++) {
        const struct mr_csv_field *f = &header->fields[i];
        long len;
        if (!c->conf->header) {
            len = snprintf(name, sizeof(name), "%zu", i + 1);
        } else {
            len = mr_csv_unescape(f, name, sizeof(name));
            if (len < 0) {
                return MR_ERR_SET(err, MR_ETOOBIG, "column %zu has a name longer than %d bytes",
                                  i + 1, FILE_MAX_NAME);
            }
            const char *s = name;
            size_t l = (size_t)len;
            if (!f->quoted) {
                while (l > 0 && (*s == ' ' || *s == '\t')) {
                    s++, l--;
                }
                while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t')) {
                    l--;
                }
            }
            memmove(name, s, l);
            len = (long)l;
        }
        int rc = plan_column(c, p, (int)i, name, (size_t)len, err);
        if (rc < 0) {
            return rc;
        }
    }
    int rc = plan_check(c, p, err);
    if (rc == 0 && (rc = recs_fit(c, p->nsignals > 0 ? p->nsignals : 1)) != 0) {
        MR_ERR_SET(err, rc, "out of memory");
    }
    return rc;
}

/* Flat JSON objects: each configured name gets a slot; the plan indexes slots. */
int mr_file_plan_json(struct file_ctx *c, struct mr_err *err)
{
    const struct file_in_conf *cf = c->conf;
    struct mr_csv_row names;
    size_t n = 0;
    const char *fixed[] = {cf->time_column,   cf->asset_column, cf->quality_column,
                           cf->signal_column, cf->value_column, cf->tags_column};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (fixed[i] != NULL && (i != 4 || cf->signal_column != NULL)) {
            c->slot_names[n++] = fixed[i];
        }
    }
    for (size_t t = 0; t < cf->tag_columns.n && n < MR_CSV_MAX_FIELDS; t++) {
        c->slot_names[n++] = cf->tag_columns.items[t];
    }
    for (size_t s = 0; s < cf->columns.n && n < MR_CSV_MAX_FIELDS; s++) {
        c->slot_names[n++] = cf->columns.items[s].key;
    }
    c->nslots = n;
    names.nfields = n;
    for (size_t i = 0; i < n; i++) {
        names.fields[i] = (struct mr_csv_field){
            .ptr = c->slot_names[i], .len = (uint32_t)strlen(c->slot_names[i]), .quoted = true};
    }
    return mr_file_plan_csv(c, &names, err);
}

/* ---- cells ------------------------------------------------------------------------------- */

/* A cell's text, unquoted fields trimmed of blanks. */
static void cell_text(const struct mr_csv_field *f, const char **s, size_t *len)
{
    *s = f->ptr;
    *len = f->len;
    if (!f->quoted) {
        while (*len > 0 && (**s == ' ' || **s == '\t')) {
            (*s)++, (*len)--;
        }
        while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t')) {
            (*len)--;
        }
    }
}

/* Bytes of a cell that live until the batch is handed over: borrowed, or unescaped into the
 * arena (the caller reserved room for the whole line). */
static struct mr_bytes cell_bytes(struct file_ctx *c, const struct mr_csv_field *f)
{
    const char *s;
    size_t len;
    if (!f->escaped) {
        cell_text(f, &s, &len);
        return (struct mr_bytes){.ptr = s, .len = (uint32_t)len};
    }
    char *out = c->arena + c->arena_used;
    long n = mr_csv_unescape(f, out, c->arena_cap - c->arena_used);
    n = n < 0 ? 0 : n;
    c->arena_used += (size_t)n;
    return (struct mr_bytes){.ptr = out, .len = (uint32_t)n};
}

/* A name cell (asset, signal) through the cache; 0 or a negative code (why set). */
static int cell_name(struct file_ctx *c, struct name_cache *nc, const struct mr_csv_field *f,
                     const char *what, mr_name_id *id)
{
    char tmp[FILE_MAX_NAME];
    const char *s;
    size_t len;
    if (f->escaped) {
        long n = mr_csv_unescape(f, tmp, sizeof(tmp));
        if (n < 0) {
            snprintf(c->why, sizeof(c->why), "%s longer than %d bytes", what, FILE_MAX_NAME);
            return MR_ETOOBIG;
        }
        s = tmp;
        len = (size_t)n;
    } else {
        cell_text(f, &s, &len);
    }
    if (len == 0) {
        snprintf(c->why, sizeof(c->why), "empty %s", what);
        return MR_EPARSE;
    }
    int rc = cache_intern(c, nc, s, len, id);
    if (rc != 0) {
        snprintf(c->why, sizeof(c->why), "cannot take %s '%.*s': %s", what,
                 (int)(len > 60 ? 60 : len), s, mr_strerror(rc));
    }
    return rc;
}

static int cell_quality(struct file_ctx *c, const struct mr_csv_field *f, uint8_t *q)
{
    static const char *const names[] = {"good", "uncertain", "bad"};
    const char *s;
    size_t len;
    cell_text(f, &s, &len);
    if (len == 0) {
        *q = MR_QUALITY_GOOD;
        return 0;
    }
    for (uint8_t i = 0; i < 3; i++) {
        if (len == strlen(names[i]) && strncasecmp(s, names[i], len) == 0) {
            *q = i;
            return 0;
        }
    }
    snprintf(c->why, sizeof(c->why), "quality '%.*s' is not good, uncertain or bad",
             (int)(len > 40 ? 40 : len), s);
    return MR_EPARSE;
}

/* One k=v pair of a tags cell, backslash escapes (\; \= \\) removed into the arena. */
static struct mr_bytes tag_part(struct file_ctx *c, const char *s, size_t len, bool escaped)
{
    if (!escaped) {
        return (struct mr_bytes){.ptr = s, .len = (uint32_t)len};
    }
    char *out = c->arena + c->arena_used;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len) {
            i++;
        }
        out[o++] = s[i];
    }
    c->arena_used += o;
    return (struct mr_bytes){.ptr = out, .len = (uint32_t)o};
}

/* Split at the first unescaped ch at or after from; returns its index or len. */
static size_t split_at(const char *s, size_t len, size_t from, char ch, bool *escaped)
{
    size_t i = from;
    for (; i < len && s[i] != ch; i++) {
        if (s[i] == '\\') {
            *escaped = true;
            i++;
        }
    }
    return i < len ? i : len;
}

/* A tags cell "k=v;k=v" (as the file output writes it) into tags after the first *ntags. */
static int cell_tags(struct file_ctx *c, const struct mr_csv_field *f, struct mr_tag *tags,
                     uint16_t *ntags)
{
    struct mr_bytes all = cell_bytes(c, f);
    size_t pos = 0;
    while (pos < all.len) {
        bool esc_k = false, esc_v = false;
        size_t end = split_at(all.ptr, all.len, pos, ';', &esc_v);
        size_t eq = split_at(all.ptr, end, pos, '=', &esc_k);
        if (end == pos) {
            pos++;
            continue;
        }
        if (eq == end || eq == pos) {
            snprintf(c->why, sizeof(c->why), "tags '%.*s' are not key=value pairs",
                     (int)(all.len > 60 ? 60 : all.len), all.ptr);
            return MR_EPARSE;
        }
        if (*ntags == MR_RECORD_MAX_TAGS) {
            snprintf(c->why, sizeof(c->why), "more than %d tags", MR_RECORD_MAX_TAGS);
            return MR_ETOOBIG;
        }
        struct mr_bytes key = tag_part(c, all.ptr + pos, eq - pos, esc_k);
        struct mr_tag *t = &tags[*ntags];
        int rc = cache_intern(c, &c->key_cache, key.ptr, key.len, &t->key);
        if (rc != 0) {
            snprintf(c->why, sizeof(c->why), "cannot take tag key: %s", mr_strerror(rc));
            return rc;
        }
        t->value = tag_part(c, all.ptr + eq + 1, end - eq - 1, esc_k || esc_v);
        (*ntags)++;
        pos = end + 1;
    }
    return 0;
}

static bool word_is(const char *s, size_t len, const char *w)
{
    return len == strlen(w) && strncasecmp(s, w, len) == 0;
}

/* A value cell into rec's value; false when the cell gives no record. */
static bool cell_value(struct file_ctx *c, const struct mr_csv_field *f, struct mr_record *rec)
{
    const char *s;
    size_t len;
    cell_text(f, &s, &len);
    if (len == 0) {
        return false;
    }
    if (!f->escaped) {
        int rc = mr_number_parse(s, len, &rec->v.f64);
        if (rc == 0) {
            rec->type = MR_VALUE_F64;
            return true;
        }
        if (rc == 1) {
            return false; /* NaN / Inf: missing */
        }
        if (word_is(s, len, "true") || word_is(s, len, "false")) {
            rec->type = MR_VALUE_BOOL;
            rec->v.b = len == 4;
            return true;
        }
    }
    rec->type = MR_VALUE_STRING;
    rec->v.str = cell_bytes(c, f);
    return true;
}

/* ---- rows -------------------------------------------------------------------------------- */

/* Room in the batch for one more row: hand the batch over first when it is full. */
static bool room_for(struct file_ctx *c, size_t arena_need)
{
    size_t per_row = c->plan.nsignals > 0 ? c->plan.nsignals : 1;
    if (c->nrecs == 0) {
        return true;
    }
    if (c->nrecs + per_row <= c->rec_cap && c->nrecs < (size_t)c->conf->batch &&
        c->arena_used + arena_need <= c->arena_cap) {
        return true;
    }
    return mr_file_offer(c);
}

/* Time, asset, quality and tags shared by the records of a row into proto. */
static int row_common(struct file_ctx *c, const struct mr_csv_field *f, struct mr_record *proto)
{
    const struct file_plan *p = &c->plan;
    int rc;
    proto->asset = c->asset;
    if (p->asset >= 0 &&
        (rc = cell_name(c, &c->asset_cache, &f[p->asset], "asset", &proto->asset)) != 0) {
        return rc;
    }
    proto->quality = MR_QUALITY_GOOD;
    if (p->quality >= 0 && (rc = cell_quality(c, &f[p->quality], &proto->quality)) != 0) {
        return rc;
    }
    proto->ntags = 0;
    for (size_t t = 0; t < p->ntags; t++) {
        const struct mr_csv_field *tf = &f[p->tag[t].idx];
        struct mr_bytes v = cell_bytes(c, tf);
        if (v.len > 0) {
            proto->tags[proto->ntags++] = (struct mr_tag){.key = p->tag[t].key, .value = v};
        }
    }
    if (p->tags >= 0 && (rc = cell_tags(c, &f[p->tags], proto->tags, &proto->ntags)) != 0) {
        return rc;
    }
    return 0;
}

static void rec_add(struct file_ctx *c, const struct mr_record *proto, mr_name_id signal,
                    const struct mr_csv_field *f)
{
    struct mr_record *rec = &c->recs[c->nrecs];
    if (!cell_value(c, f, rec)) {
        return;
    }
    rec->time_ns = proto->time_ns;
    rec->asset = proto->asset;
    rec->signal = signal;
    rec->quality = proto->quality;
    rec->ntags = proto->ntags;
    memcpy(rec->tags, proto->tags, proto->ntags * sizeof(proto->tags[0]));
    c->nrecs++;
}

int mr_file_row_take(struct file_ctx *c, const struct mr_csv_field *f, size_t nf, size_t arena_need)
{
    const struct file_plan *p = &c->plan;
    struct mr_record proto;
    if (nf != p->ncols) {
        snprintf(c->why, sizeof(c->why), "%zu fields where the %s has %zu", nf,
                 c->conf->header ? "header" : "first row", p->ncols);
        return ROW_BAD;
    }
    const char *ts;
    size_t tlen;
    cell_text(&f[p->time], &ts, &tlen);
    int rc = mr_time_format_parse(&c->tf, ts, tlen, &proto.time_ns);
    if (rc != 0) {
        snprintf(c->why, sizeof(c->why), "%s time '%.*s' (time_format: %s)",
                 rc == MR_ERANGE ? "out of range" : "cannot read", (int)(tlen > 40 ? 40 : tlen), ts,
                 c->conf->time_format);
        return ROW_BAD;
    }
    if (mr_file_not_due(c, proto.time_ns) || !room_for(c, arena_need)) {
        return ROW_WAIT;
    }
    size_t arena0 = c->arena_used;
    if (row_common(c, f, &proto) != 0) {
        c->arena_used = arena0;
        return ROW_BAD;
    }
    if (p->signal >= 0) {
        mr_name_id signal;
        if (cell_name(c, &c->signal_cache, &f[p->signal], "signal", &signal) != 0) {
            c->arena_used = arena0;
            return ROW_BAD;
        }
        rec_add(c, &proto, signal, &f[p->value]);
    }
    for (size_t s = 0; s < p->nsignals; s++) {
        rec_add(c, &proto, p->sig[s].signal, &f[p->sig[s].idx]);
    }
    return ROW_DONE;
}

/* ---- JSON lines -------------------------------------------------------------------------- */

/* Copy a JSON scalar's text into the arena as a quoted (literal) field; null stays empty. */
static void json_field(struct file_ctx *c, const json_t *v, struct mr_csv_field *f)
{
    char *out = c->arena + c->arena_used;
    size_t room = c->arena_cap - c->arena_used;
    int n = 0;
    switch (json_typeof(v)) {
    case JSON_STRING:
        n = (int)json_string_length(v);
        if ((size_t)n > room) {
            n = 0;
        }
        memcpy(out, json_string_value(v), (size_t)n);
        break;
    case JSON_INTEGER:
        n = snprintf(out, room, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        n = snprintf(out, room, "%.17g", json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        n = snprintf(out, room, "%s", json_is_true(v) ? "true" : "false");
        break;
    default:
        return;
    }
    n = n < 0 || (size_t)n >= room ? 0 : n;
    *f = (struct mr_csv_field){.ptr = out, .len = (uint32_t)n, .quoted = true};
    c->arena_used += (size_t)n;
}

/* A flat object: sort its fields into slots, then take it like a CSV row. */
static int json_flat(struct file_ctx *c, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        snprintf(c->why, sizeof(c->why), "%s", root == NULL ? jerr.text : "not a JSON object");
        json_decref(root);
        return ROW_BAD;
    }
    struct mr_csv_field *f = c->row.fields;
    size_t arena0 = c->arena_used;
    for (size_t i = 0; i < c->nslots; i++) {
        f[i] = (struct mr_csv_field){.ptr = "", .len = 0};
    }
    const char *key;
    json_t *v;
    bool scalar_ok = true;
    json_object_foreach(root, key, v)
    {
        for (size_t i = 0; i < c->nslots; i++) {
            if (strcmp(key, c->slot_names[i]) == 0) {
                scalar_ok = scalar_ok && !json_is_object(v) && !json_is_array(v);
                json_field(c, v, &f[i]);
                break;
            }
        }
    }
    json_decref(root);
    int rc;
    if (!scalar_ok) {
        snprintf(c->why, sizeof(c->why), "a mapped field holds an object or array");
        rc = ROW_BAD;
    } else if (f[c->plan.time].len == 0) {
        snprintf(c->why, sizeof(c->why), "no \"%s\" field", c->conf->time_column);
        rc = ROW_BAD;
    } else {
        rc = mr_file_row_take(c, f, c->nslots, 0);
    }
    if (rc != ROW_DONE) {
        c->arena_used = arena0;
    }
    return rc;
}

/* A line in millrace's record JSON (what the stdout and file outputs write). */
static int json_record(struct file_ctx *c, const char *line, size_t len)
{
    struct mr_err err;
    struct mr_record *rec = &c->recs[c->nrecs];
    size_t slice = JSON_SLICE(len);
    int rc =
        mr_record_from_json(rec, c->host->names, line, len, c->arena + c->arena_used, slice, &err);
    if (rc != 0) {
        snprintf(c->why, sizeof(c->why), "%s", err.msg);
        return ROW_BAD;
    }
    if (mr_file_not_due(c, rec->time_ns)) {
        return ROW_WAIT;
    }
    c->arena_used += slice;
    c->nrecs++;
    return ROW_DONE;
}

int mr_file_json_take(struct file_ctx *c, const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t')) {
        len--;
    }
    while (len > 0 && (*line == ' ' || *line == '\t')) {
        line++, len--;
    }
    if (len == 0) {
        return ROW_DONE;
    }
    /* Room for what one line can need in the arena (decoded strings never exceed the text; a
     * number written short may print longer) before anything is parsed. */
    size_t need = JSON_SLICE(len) + 32 * c->nslots;
    if (c->nrecs > 0 &&
        (c->nrecs + (c->plan.nsignals > 0 ? c->plan.nsignals : 1) > c->rec_cap ||
         c->nrecs >= (size_t)c->conf->batch || c->arena_used + need > c->arena_cap) &&
        !mr_file_offer(c)) {
        return ROW_WAIT;
    }
    if (c->flat_json) {
        return json_flat(c, line, len);
    }
    return json_record(c, line, len);
}
