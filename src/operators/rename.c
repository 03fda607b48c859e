/* Operator `rename`: renames signals and asset paths, adds and removes tags.
 *
 *   steps:
 *     - type: rename
 *       signals: {Temp_PV: temperature, "DB10.DBD4": spindle_speed}
 *       assets: {plc1: plant1/line2/press3, "old-site": plant1}
 *       add_tags: {unit: degC, source: plc1}
 *       drop_tags: [raw_address]
 *
 * `signals` maps whole signal names. `assets` maps path prefixes by whole segments: the entry
 * `plant1/line2: site/l2` turns plant1/line2 into site/l2 and plant1/line2/press3 into
 * site/l2/press3, but leaves plant1/line20 alone; the longest matching prefix wins; an empty
 * target removes the prefix. `add_tags` sets tags (replacing a tag of the same name),
 * `drop_tags` removes tags; drops happen before adds.
 *
 * All names are interned once at start. A renamed asset path is built and interned the first
 * time an asset is seen, then found in a cache by the asset's id (at most 65536 entries; when
 * full it starts over), so the path text is not touched per record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/alloc.h"
#include "operators/op_common.h"

#define ASSET_CACHE_MAX 65536u
#define MAX_PATH        1024

extern const struct mr_plugin mr_operator_rename;

struct rename_conf {
    struct mr_strmap signals;
    struct mr_strmap assets;
    struct mr_strmap add_tags;
    struct mr_strlist drop_tags;
};

struct sig_pair {
    mr_name_id from;
    mr_name_id to;
};

struct prefix {
    const char *from; /* without a trailing '/' */
    size_t from_len;
    const char *to;
    size_t to_len;
};

struct rename_ctx {
    struct mr_op_base base;
    struct sig_pair *sigs; /* sorted by from */
    size_t nsigs;
    struct prefix *prefixes;
    size_t nprefixes;
    struct mr_keymap asset_cache; /* asset id -> renamed id (itself when unchanged) */
    struct mr_tag *adds;
    size_t nadds;
    mr_name_id *drops;
    size_t ndrops;
    struct mr_op_buf out;
};

static void rename_check(void *conf, struct mr_config_check *chk)
{
    const struct rename_conf *c = conf;
    if (c->signals.n + c->assets.n + c->add_tags.n + c->drop_tags.n == 0) {
        mr_config_check_fail(chk, NULL,
                             "nothing to do: set signals, assets, add_tags or drop_tags");
    }
    for (size_t i = 0; i < c->signals.n; i++) {
        if (c->signals.items[i].value[0] == '\0') {
            char field[128];
            snprintf(field, sizeof(field), "signals.%s", c->signals.items[i].key);
            mr_config_check_fail(chk, field, "the new name of '%.60s' is empty",
                                 c->signals.items[i].key);
        }
    }
}

static const struct mr_field rename_fields[] = {
    {.name = "signals",
     .type = MR_FIELD_STRING_MAP,
     .offset = offsetof(struct rename_conf, signals),
     .help = "Signal renames, old name: new name (whole names)."},
    {.name = "assets",
     .type = MR_FIELD_STRING_MAP,
     .offset = offsetof(struct rename_conf, assets),
     .help = "Asset path prefix renames, old prefix: new prefix. Prefixes match whole path "
             "segments ('plant1/line2' does not match 'plant1/line20'); the longest match wins; "
             "an empty new prefix removes the old one."},
    {.name = "add_tags",
     .type = MR_FIELD_STRING_MAP,
     .offset = offsetof(struct rename_conf, add_tags),
     .help = "Tags to set on every record, name: value (replaces a tag of the same name)."},
    {.name = "drop_tags",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct rename_conf, drop_tags),
     .help = "Tag names to remove from every record."},
    {0},
};

static int cmp_pair(const void *a, const void *b)
{
    mr_name_id x = ((const struct sig_pair *)a)->from;
    mr_name_id y = ((const struct sig_pair *)b)->from;
    return x < y ? -1 : x > y;
}

static void rename_fini(void *ctx)
{
    struct rename_ctx *c = ctx;
    mr_free(c->sigs);
    mr_free(c->prefixes);
    mr_free(c->adds);
    mr_free(c->drops);
    mr_keymap_fini(&c->asset_cache);
    mr_op_buf_fini(&c->out);
    memset(c, 0, sizeof(*c));
}

static int intern(struct rename_ctx *c, const char *field, const char *s, mr_name_id *id,
                  struct mr_err *err)
{
    int rc = mr_names_intern(c->base.host->names, s, strlen(s), id);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "%s: cannot use the name '%.60s': %s", field, s,
                          mr_strerror(rc));
    }
    return 0;
}

static size_t trim_slash(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/') {
        n--;
    }
    return n;
}

static int setup_names(struct rename_ctx *c, const struct rename_conf *cf, struct mr_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < cf->signals.n && rc == 0; i++) {
        struct sig_pair *p = &c->sigs[c->nsigs++];
        rc = intern(c, "signals", cf->signals.items[i].key, &p->from, err);
        if (rc == 0) {
            rc = intern(c, "signals", cf->signals.items[i].value, &p->to, err);
        }
    }
    qsort(c->sigs, c->nsigs, sizeof(*c->sigs), cmp_pair);
    for (size_t i = 0; i < cf->assets.n; i++) {
        const struct mr_strpair *a = &cf->assets.items[i];
        c->prefixes[c->nprefixes++] = (struct prefix){.from = a->key,
                                                      .from_len = trim_slash(a->key),
                                                      .to = a->value,
                                                      .to_len = trim_slash(a->value)};
    }
    for (size_t i = 0; i < cf->add_tags.n && rc == 0; i++) {
        struct mr_tag *t = &c->adds[c->nadds++];
        rc = intern(c, "add_tags", cf->add_tags.items[i].key, &t->key, err);
        t->value = (struct mr_bytes){.ptr = cf->add_tags.items[i].value,
                                     .len = (uint32_t)strlen(cf->add_tags.items[i].value)};
    }
    for (size_t i = 0; i < cf->drop_tags.n && rc == 0; i++) {
        rc = intern(c, "drop_tags", cf->drop_tags.items[i], &c->drops[c->ndrops++], err);
    }
    return rc;
}

static int rename_init(void *ctx, const void *conf, struct mr_operator_host *host,
                       struct mr_err *err)
{
    struct rename_ctx *c = ctx;
    const struct rename_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    int rc = mr_op_base_init(&c->base, &mr_operator_rename, host, err);
    if (rc != 0) {
        return rc;
    }
    c->sigs = mr_calloc(cf->signals.n + 1, sizeof(*c->sigs));
    c->prefixes = mr_calloc(cf->assets.n + 1, sizeof(*c->prefixes));
    c->adds = mr_calloc(cf->add_tags.n + 1, sizeof(*c->adds));
    c->drops = mr_calloc(cf->drop_tags.n + 1, sizeof(*c->drops));
    if (c->sigs == NULL || c->prefixes == NULL || c->adds == NULL || c->drops == NULL ||
        mr_keymap_init(&c->asset_cache, sizeof(mr_name_id), ASSET_CACHE_MAX) != 0 ||
        mr_op_buf_init(&c->out, &c->base, 0) != 0) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        rc = setup_names(c, cf, err);
    }
    if (rc != 0) {
        rename_fini(c);
    }
    return rc;
}

/* The longest prefix rule matching path by whole segments, or NULL. */
static const struct prefix *prefix_match(const struct rename_ctx *c, const char *path, size_t len)
{
    const struct prefix *best = NULL;
    for (size_t i = 0; i < c->nprefixes; i++) {
        const struct prefix *p = &c->prefixes[i];
        bool segment_end = len == p->from_len || (len > p->from_len && path[p->from_len] == '/');
        if (p->from_len <= len && segment_end && memcmp(path, p->from, p->from_len) == 0 &&
            (best == NULL || p->from_len > best->from_len)) {
            best = p;
        }
    }
    return best;
}

/* Renamed id of an asset not in the cache yet (the asset itself when no rule applies). */
static mr_name_id asset_rename(struct rename_ctx *c, mr_name_id asset)
{
    size_t len = 0;
    const char *path = mr_names_str(c->base.host->names, asset, &len);
    const struct prefix *p = path != NULL ? prefix_match(c, path, len) : NULL;
    if (p == NULL) {
        return asset;
    }
    const char *rest = path + p->from_len;
    size_t rest_len = len - p->from_len;
    if (p->to_len == 0 && rest_len > 0) {
        rest++; /* the '/' after a removed prefix */
        rest_len--;
    }
    char buf[MAX_PATH];
    mr_name_id id = 0;
    if (p->to_len + rest_len >= sizeof(buf)) {
        mr_op_warn(&c->base, "asset '%.60s...' left unchanged: renamed path too long", path);
        return asset;
    }
    memcpy(buf, p->to, p->to_len);
    memcpy(buf + p->to_len, rest, rest_len);
    int rc = mr_names_intern(c->base.host->names, buf, p->to_len + rest_len, &id);
    if (rc != 0) {
        mr_op_warn(&c->base, "asset '%.60s' left unchanged: cannot use its new name: %s", path,
                   mr_strerror(rc));
        return asset;
    }
    return id;
}

static mr_name_id asset_lookup(struct rename_ctx *c, mr_name_id asset)
{
    mr_name_id *hit = mr_keymap_find(&c->asset_cache, asset);
    if (hit != NULL) {
        return *hit;
    }
    mr_name_id id = asset_rename(c, asset);
    if (mr_keymap_count(&c->asset_cache) >= ASSET_CACHE_MAX) {
        mr_keymap_clear(&c->asset_cache); /* bounded: start over */
    }
    void *v;
    int inserted;
    if (mr_keymap_upsert(&c->asset_cache, asset, &v, &inserted) == 0) {
        memcpy(v, &id, sizeof(id));
    }
    return id;
}

static void tags_edit(struct rename_ctx *c, struct mr_record *r)
{
    uint16_t kept = 0;
    for (uint16_t i = 0; i < r->ntags && i < MR_RECORD_MAX_TAGS; i++) {
        bool drop = false;
        for (size_t d = 0; d < c->ndrops; d++) {
            drop |= r->tags[i].key == c->drops[d];
        }
        if (!drop) {
            r->tags[kept++] = r->tags[i];
        }
    }
    r->ntags = kept;
    for (size_t a = 0; a < c->nadds; a++) {
        uint16_t i = 0;
        while (i < r->ntags && r->tags[i].key != c->adds[a].key) {
            i++;
        }
        if (i == MR_RECORD_MAX_TAGS) {
            mr_op_warn(&c->base, "tag not added: the record has %d tags already",
                       MR_RECORD_MAX_TAGS);
            continue;
        }
        r->tags[i] = c->adds[a];
        if (i == r->ntags) {
            r->ntags++;
        }
    }
}

static int rename_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct rename_ctx *c = ctx;
    mr_counter_add(c->base.counters.records_in, n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = mr_op_buf_push(&c->out, &recs[i]);
        if (rc != 0) {
            break;
        }
        struct mr_record *r = &c->out.recs[c->out.n - 1];
        if (c->nprefixes > 0) {
            r->asset = asset_lookup(c, r->asset);
        }
        if (c->nsigs > 0) {
            struct sig_pair key = {.from = r->signal};
            const struct sig_pair *p = bsearch(&key, c->sigs, c->nsigs, sizeof(key), cmp_pair);
            r->signal = p != NULL ? p->to : r->signal;
        }
        if (c->nadds + c->ndrops > 0) {
            tags_edit(c, r);
        }
    }
    rc = rc == 0 ? mr_op_buf_flush(&c->out) : rc;
    c->out.n = 0;
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "passing records on failed: %s", mr_strerror(rc));
    }
    return 0;
}

const struct mr_plugin mr_operator_rename = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "rename",
    .help = "Renames signals and asset paths (by whole path segments) and adds or removes tags, "
            "e.g. to map PLC tag names onto the plant's asset model.",
    .conf = {.fields = rename_fields, .size = sizeof(struct rename_conf), .check = rename_check},
    .ctx_size = sizeof(struct rename_ctx),
    .op = {.init = rename_init, .process = rename_process, .fini = rename_fini},
};
