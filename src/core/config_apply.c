/* Config tree -> C structs, driven by the field tables.
 *
 * Each section is applied in two passes over its map: every declared field takes its value
 * (or its default, or an error when required), then every key no field claimed is reported as
 * unknown with the nearest field name as a hint. Errors are collected, never fatal, so one run
 * reports everything wrong with a file; only running out of memory stops the walk. */
#include <stdarg.h>
#include <string.h>

#include "core/config_internal.h"
#include "millrace/alloc.h"
#include "millrace/plugin.h"

struct apply {
    struct mr_config_errors *errs;
    int rc; /* MR_ENOMEM once an allocation failed */
};

struct mr_config_check {
    struct apply *ap;
    const struct cnode *node; /* the section's map, or where it would be */
    const char *path;
};

static void apply_section(struct apply *ap, const struct mr_section *sec, const struct cnode *node,
                          const struct cnode *at, void *dst, const char *path);

/* Key paths longer than CFG_PATH_LEN are cut; they only appear in messages. */
static void path_join(char *out, size_t cap, const char *base, const char *name)
{
    if (snprintf(out, cap, "%s%s%s", base, base[0] != '\0' ? "." : "", name) < 0) {
        out[0] = '\0';
    }
}

static void path_index(char *out, size_t cap, const char *base, size_t i)
{
    if (snprintf(out, cap, "%s[%zu]", base, i) < 0) {
        out[0] = '\0';
    }
}

static const char *kind_noun(const struct cnode *n)
{
    switch (n->kind) {
    case CNODE_MAP:
        return "a section (key: value pairs)";
    case CNODE_SEQ:
        return "a list";
    case CNODE_SCALAR:
        return "a single value";
    default:
        return "nothing";
    }
}

static void *oom(struct apply *ap)
{
    ap->rc = MR_ENOMEM;
    return NULL;
}

void mr_config_check_fail(struct mr_config_check *chk, const char *field, const char *fmt, ...)
{
    char path[CFG_PATH_LEN];
    char msg[MR_CONFIG_ERROR_LEN];
    const struct cnode *at = chk->node;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (field != NULL) {
        /* field may be a dotted path below the section ("topics.orders"). */
        char part[CFG_PATH_LEN];
        const char *p = field;
        while (at != NULL && *p != '\0') {
            size_t len = strcspn(p, ".");
            snprintf(part, sizeof(part), "%.*s", (int)len, p);
            const struct cnode *kid = cfg_node_get(at, part);
            if (kid == NULL) {
                break;
            }
            at = kid;
            p += len + (p[len] == '.' ? 1 : 0);
        }
        path_join(path, sizeof(path), chk->path, field);
    } else {
        snprintf(path, sizeof(path), "%s", chk->path);
    }
    cfg_error(chk->ap->errs, at, path, "%s", msg);
}

/* Item count within the field's min/max (bounds were validated with the table). */
static bool count_ok(struct apply *ap, const struct mr_field *f, const struct cnode *n,
                     size_t count, const char *path)
{
    size_t lo = 0;
    size_t hi = 0;
    (void)cfg_count_parse(f->min, &lo);
    (void)cfg_count_parse(f->max, &hi);
    if (count < lo) {
        cfg_error(ap->errs, n, path, "needs at least %zu item%s, got %zu", lo, lo == 1 ? "" : "s",
                  count);
        return false;
    }
    if (f->max != NULL && count > hi) {
        cfg_error(ap->errs, n, path, "takes at most %zu item%s, got %zu", hi, hi == 1 ? "" : "s",
                  count);
        return false;
    }
    return true;
}

static void apply_scalar(struct apply *ap, const struct mr_field *f, const struct cnode *n,
                         void *dst, const char *path)
{
    struct mr_err err;
    if (n->kind != CNODE_SCALAR) {
        cfg_error(ap->errs, n, path, "expected a %s, got %s", cfg_field_type_name(f->type),
                  kind_noun(n));
        return;
    }
    int rc = cfg_scalar_parse(f, n->text, dst, &err);
    if (rc == MR_ENOMEM) {
        oom(ap);
    } else if (rc != 0) {
        cfg_error(ap->errs, n, path, "%s", err.msg);
    }
}

/* A list of strings; a single value is accepted as a list of one (`from: press_temp`). */
static void apply_string_list(struct apply *ap, const struct mr_field *f, const struct cnode *n,
                              struct mr_strlist *dst, const char *path)
{
    size_t count = n->kind == CNODE_SEQ ? n->n : 1;
    if (n->kind == CNODE_MAP) {
        cfg_error(ap->errs, n, path, "expected a list of strings, got %s", kind_noun(n));
        return;
    }
    if (!count_ok(ap, f, n, count, path)) {
        return;
    }
    dst->items = mr_calloc(count, sizeof(char *));
    if (dst->items == NULL) {
        oom(ap);
        return;
    }
    dst->n = count;
    for (size_t i = 0; i < count; i++) {
        const struct cnode *item = n->kind == CNODE_SEQ ? n->kids[i] : n;
        char ipath[CFG_PATH_LEN];
        path_index(ipath, sizeof(ipath), path, i);
        if (item->kind != CNODE_SCALAR) {
            cfg_error(ap->errs, item, ipath, "expected a string, got %s", kind_noun(item));
            continue;
        }
        if ((dst->items[i] = mr_strdup(item->text)) == NULL) {
            oom(ap);
            return;
        }
    }
}

static void apply_string_map(struct apply *ap, const struct mr_field *f, const struct cnode *n,
                             struct mr_strmap *dst, const char *path)
{
    if (n->kind != CNODE_MAP) {
        cfg_error(ap->errs, n, path, "expected a map of key: value, got %s", kind_noun(n));
        return;
    }
    if (!count_ok(ap, f, n, n->n, path) || n->n == 0) {
        return;
    }
    dst->items = mr_calloc(n->n, sizeof(*dst->items));
    if (dst->items == NULL) {
        oom(ap);
        return;
    }
    dst->n = n->n;
    for (size_t i = 0; i < n->n; i++) {
        const struct cnode *kid = n->kids[i];
        char kpath[CFG_PATH_LEN];
        path_join(kpath, sizeof(kpath), path, kid->key);
        if (kid->kind != CNODE_SCALAR) {
            cfg_error(ap->errs, kid, kpath, "expected a string, got %s", kind_noun(kid));
            continue;
        }
        dst->items[i].key = mr_strdup(kid->key);
        dst->items[i].value = mr_strdup(kid->text);
        if (dst->items[i].key == NULL || dst->items[i].value == NULL) {
            oom(ap);
            return;
        }
    }
}

static void apply_section_list(struct apply *ap, const struct mr_field *f, const struct cnode *n,
                               struct mr_conf_list *dst, const char *path)
{
    if (n->kind != CNODE_SEQ) {
        cfg_error(ap->errs, n, path, "expected a list, got %s", kind_noun(n));
        return;
    }
    if (!count_ok(ap, f, n, n->n, path) || n->n == 0) {
        return;
    }
    dst->items = mr_calloc(n->n, f->section->size);
    if (dst->items == NULL) {
        oom(ap);
        return;
    }
    dst->n = n->n;
    for (size_t i = 0; i < n->n && ap->rc == 0; i++) {
        char ipath[CFG_PATH_LEN];
        path_index(ipath, sizeof(ipath), path, i);
        apply_section(ap, f->section, n->kids[i], n->kids[i],
                      (char *)dst->items + i * f->section->size, ipath);
    }
}

static void apply_section_map(struct apply *ap, const struct mr_field *f, const struct cnode *n,
                              struct mr_conf_map *dst, const char *path)
{
    if (n->kind != CNODE_MAP) {
        cfg_error(ap->errs, n, path, "expected a map of name: section, got %s", kind_noun(n));
        return;
    }
    if (!count_ok(ap, f, n, n->n, path) || n->n == 0) {
        return;
    }
    dst->items = mr_calloc(n->n, sizeof(*dst->items));
    if (dst->items == NULL) {
        oom(ap);
        return;
    }
    dst->n = n->n;
    for (size_t i = 0; i < n->n && ap->rc == 0; i++) {
        const struct cnode *kid = n->kids[i];
        char kpath[CFG_PATH_LEN];
        path_join(kpath, sizeof(kpath), path, kid->key);
        dst->items[i].name = mr_strdup(kid->key);
        dst->items[i].conf = mr_calloc(1, f->section->size);
        if (dst->items[i].name == NULL || dst->items[i].conf == NULL) {
            oom(ap);
            return;
        }
        apply_section(ap, f->section, kid, kid, dst->items[i].conf, kpath);
    }
}

/* Names end up in log lines, metric labels and --set paths: keep them simple. */
static bool instance_name_ok(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        char c = *s;
        if (!(c == '_' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z'))) {
            return false;
        }
    }
    return true;
}

/* "stdin, stdout" into out. */
static size_t plugin_names(enum mr_plugin_kind kind, const char **names, size_t max, char *out,
                           size_t cap)
{
    size_t n = 0;
    size_t used = 0;
    out[0] = '\0';
    for (const struct mr_plugin *p; n < max && (p = mr_plugin_at(kind, n)) != NULL; n++) {
        names[n] = p->name;
        int w =
            snprintf(out + used, used < cap ? cap - used : 0, "%s%s", n > 0 ? ", " : "", p->name);
        used += w > 0 ? (size_t)w : 0;
    }
    return n;
}

static void apply_plugin(struct apply *ap, enum mr_plugin_kind kind, const struct cnode *n,
                         struct mr_plugin_conf *pc, const char *name, const char *path)
{
    const char *kname = mr_plugin_kind_name(kind);
    char where[CFG_PATH_LEN + 16];
    if (n->kind != CNODE_MAP) {
        cfg_error(ap->errs, n, path,
                  "expected a section with 'type:' and the %s's settings, "
                  "got %s",
                  kname, kind_noun(n));
        return;
    }
    cfg_node_where(n, where, sizeof(where));
    pc->name = mr_strdup(name);
    pc->path = mr_strdup(path);
    pc->where = mr_strdup(where);
    if (pc->name == NULL || pc->path == NULL || pc->where == NULL) {
        oom(ap);
        return;
    }
    struct cnode *type = cfg_node_get(n, "type");
    const char *names[64];
    char list[256];
    size_t count = plugin_names(kind, names, 64, list, sizeof(list));
    if (type == NULL || type->kind != CNODE_SCALAR) {
        cfg_error(ap->errs, type != NULL ? type : n, path,
                  "missing required field 'type' (the %s plugin: %s)", kname,
                  count > 0 ? list : "none available");
        return;
    }
    type->used = true;
    pc->plugin = mr_plugin_find(kind, type->text);
    if (pc->plugin == NULL) {
        const char *hint = cfg_suggest(type->text, names, count);
        char path_type[CFG_PATH_LEN];
        path_join(path_type, sizeof(path_type), path, "type");
        cfg_error(ap->errs, type, path_type, "unknown %s type '%.60s'%s%s%s (available: %s)", kname,
                  type->text, hint != NULL ? " (did you mean '" : "", hint != NULL ? hint : "",
                  hint != NULL ? "'?)" : "", count > 0 ? list : "none yet");
        return;
    }
    pc->conf = mr_calloc(1, pc->plugin->conf.size);
    if (pc->conf == NULL) {
        oom(ap);
        return;
    }
    if (kind == MR_PLUGIN_OUTPUT) { /* claimed before the plugin's table sees the key */
        struct cnode *dn = cfg_node_get(n, "delivery");
        char dpath[CFG_PATH_LEN];
        path_join(dpath, sizeof(dpath), path, "delivery");
        if (dn != NULL) {
            dn->used = true;
        }
        apply_section(ap, &mr_delivery_section, dn, n, &pc->delivery, dpath);
    }
    apply_section(ap, &pc->plugin->conf, n, n, pc->conf, path);
}

static void apply_plugins(struct apply *ap, const struct mr_field *f, const struct cnode *n,
                          struct mr_plugin_confs *dst, const char *path)
{
    bool map = f->type == MR_FIELD_PLUGIN_MAP;
    if (n->kind != (map ? CNODE_MAP : CNODE_SEQ)) {
        cfg_error(ap->errs, n, path, "expected %s, got %s",
                  map ? "a map of name: {type: ..., ...}" : "a list of {type: ..., ...}",
                  kind_noun(n));
        return;
    }
    if (!count_ok(ap, f, n, n->n, path) || n->n == 0) {
        return;
    }
    dst->items = mr_calloc(n->n, sizeof(*dst->items));
    if (dst->items == NULL) {
        oom(ap);
        return;
    }
    dst->n = n->n;
    for (size_t i = 0; i < n->n && ap->rc == 0; i++) {
        const struct cnode *kid = n->kids[i];
        char ipath[CFG_PATH_LEN];
        char index[24];
        snprintf(index, sizeof(index), "%zu", i);
        if (map) {
            path_join(ipath, sizeof(ipath), path, kid->key);
            if (!instance_name_ok(kid->key)) {
                cfg_error(ap->errs, kid, ipath,
                          "a name may only use letters, digits, '_' and "
                          "'-'");
                continue;
            }
        } else {
            path_index(ipath, sizeof(ipath), path, i);
        }
        apply_plugin(ap, f->plugin_kind, kid, &dst->items[i], map ? kid->key : index, ipath);
    }
}

/* A built-in list default is written as a YAML flow list of plain words, "[count, mean]": our
 * own tables, so no quoting or commas inside items. */
static void default_string_list(struct apply *ap, const char *def, struct mr_strlist *dst)
{
    const char *p = def + strspn(def, " [");
    size_t cap = 1;
    for (const char *q = p; *q != '\0'; q++) {
        cap += *q == ',';
    }
    dst->items = mr_calloc(cap, sizeof(char *));
    if (dst->items == NULL) {
        oom(ap);
        return;
    }
    while (*p != '\0' && *p != ']') {
        size_t len = strcspn(p, ",]");
        size_t end = len;
        while (end > 0 && p[end - 1] == ' ') {
            end--;
        }
        if (end > 0 && dst->n < cap) {
            if ((dst->items[dst->n] = mr_strndup(p, end)) == NULL) {
                oom(ap);
                return;
            }
            dst->n++;
        }
        p += len;
        p += strspn(p, ", ");
    }
}

static void apply_default(struct apply *ap, const struct mr_field *f, void *dst, const char *path)
{
    struct mr_err err;
    if (f->type == MR_FIELD_STRING_LIST && f->def != NULL) {
        default_string_list(ap, f->def, dst);
    } else if (f->type == MR_FIELD_SECTION) {
        apply_section(ap, f->section, NULL, NULL, dst, path);
    } else if (f->def != NULL && cfg_field_is_scalar(f->type)) {
        int rc = cfg_scalar_parse(f, f->def, dst, &err);
        if (rc == MR_ENOMEM) {
            oom(ap);
        } else if (rc != 0) {
            /* The table self-check (mr_section_validate) keeps this from happening. */
            cfg_error(ap->errs, NULL, path, "bad built-in default: %s", err.msg);
        }
    }
}

static void apply_field(struct apply *ap, const struct mr_field *f, const struct cnode *n,
                        void *dst, const char *path)
{
    switch (f->type) {
    case MR_FIELD_STRING_LIST:
        apply_string_list(ap, f, n, dst, path);
        break;
    case MR_FIELD_STRING_MAP:
        apply_string_map(ap, f, n, dst, path);
        break;
    case MR_FIELD_SECTION:
        apply_section(ap, f->section, n, n, dst, path);
        break;
    case MR_FIELD_SECTION_LIST:
        apply_section_list(ap, f, n, dst, path);
        break;
    case MR_FIELD_SECTION_MAP:
        apply_section_map(ap, f, n, dst, path);
        break;
    case MR_FIELD_PLUGIN_MAP:
    case MR_FIELD_PLUGIN_LIST:
        apply_plugins(ap, f, n, dst, path);
        break;
    default:
        apply_scalar(ap, f, n, dst, path);
        break;
    }
}

static const struct mr_field *field_find(const struct mr_section *sec, const char *name)
{
    for (const struct mr_field *f = sec->fields; f->name != NULL; f++) {
        if (strcmp(f->name, name) == 0) {
            return f;
        }
    }
    return NULL;
}

static void report_unknown(struct apply *ap, const struct mr_section *sec, const struct cnode *kid,
                           const char *path)
{
    const char *names[128];
    size_t count = 0;
    char kpath[CFG_PATH_LEN];
    struct cnode at = *kid;
    for (const struct mr_field *f = sec->fields; f->name != NULL && count < 128; f++) {
        names[count++] = f->name;
    }
    if (kid->kline > 0) {
        at.line = kid->kline; /* point at the key, not its value */
        at.col = kid->kcol;
    }
    path_join(kpath, sizeof(kpath), path, kid->key);
    const char *hint = cfg_suggest(kid->key, names, count);
    if (hint != NULL) {
        cfg_error(ap->errs, &at, kpath, "unknown key '%.60s' (did you mean '%s'?)", kid->key, hint);
    } else {
        cfg_error(ap->errs, &at, kpath, "unknown key '%.60s'", kid->key);
    }
}

/* node: the section's map (NULL or a null node when absent); at: where to point when absent.
 * Keys are visited in file order so that messages come out in the order of the file. */
static void apply_section(struct apply *ap, const struct mr_section *sec, const struct cnode *node,
                          const struct cnode *at, void *dst, const char *path)
{
    size_t errors_before = ap->errs->total;
    size_t unknown = 0;
    if (node != NULL && node->kind != CNODE_MAP && node->kind != CNODE_NULL) {
        cfg_error(ap->errs, node, path, "expected a section (key: value pairs), got %s",
                  kind_noun(node));
        return;
    }
    for (size_t i = 0; node != NULL && i < node->n && ap->rc == 0; i++) {
        struct cnode *kid = node->kids[i];
        const struct mr_field *f = field_find(sec, kid->key);
        if (f == NULL) {
            if (!kid->used) { /* `type` of a plugin instance is claimed by apply_plugin */
                report_unknown(ap, sec, kid, path);
                unknown++;
            }
            continue;
        }
        kid->used = true;
        if (kid->kind == CNODE_NULL) {
            continue; /* same as absent: the pass below gives the default */
        }
        char fpath[CFG_PATH_LEN];
        path_join(fpath, sizeof(fpath), path, f->name);
        apply_field(ap, f, kid, (char *)dst + f->offset, fpath);
        if (f->present != 0) {
            *(bool *)((char *)dst + f->present - 1) = true;
        }
    }
    for (const struct mr_field *f = sec->fields; f->name != NULL && ap->rc == 0; f++) {
        const struct cnode *kid = cfg_node_get(node, f->name);
        if (kid != NULL && kid->kind != CNODE_NULL) {
            continue;
        }
        if ((f->flags & MR_FIELD_REQUIRED) != 0) {
            cfg_error(ap->errs, kid != NULL ? kid : at, path, "missing required field '%s'",
                      f->name);
            continue;
        }
        char fpath[CFG_PATH_LEN];
        path_join(fpath, sizeof(fpath), path, f->name);
        apply_default(ap, f, (char *)dst + f->offset, fpath);
    }
    /* Cross-field checks only make sense on values that parsed (unknown keys do not matter). */
    if (ap->rc == 0 && sec->check != NULL && ap->errs->total == errors_before + unknown) {
        struct mr_config_check chk = {.ap = ap, .node = node != NULL ? node : at, .path = path};
        sec->check(dst, &chk);
    }
}

int cfg_apply(const struct mr_section *sec, void *dst, struct ctree *tree, const char *source,
              struct mr_config_errors *errs)
{
    struct apply ap = {.errs = errs};
    struct cnode at = {.src = source};
    apply_section(&ap, sec, tree->root, tree->root != NULL ? tree->root : &at, dst, "");
    if (ap.rc != 0) {
        return ap.rc;
    }
    return errs->total > 0 ? MR_ECONFIG : 0;
}

/* ---- freeing ---- */

static void plugins_free(struct mr_plugin_confs *pcs)
{
    for (size_t i = 0; i < pcs->n; i++) {
        struct mr_plugin_conf *pc = &pcs->items[i];
        if (pc->plugin != NULL && pc->conf != NULL) {
            cfg_section_free(&pc->plugin->conf, pc->conf);
        }
        mr_free(pc->conf);
        cfg_section_free(&mr_delivery_section, &pc->delivery);
        mr_free(pc->name);
        mr_free(pc->path);
        mr_free(pc->where);
    }
    mr_free(pcs->items);
}

static void field_free(const struct mr_field *f, void *p)
{
    switch (f->type) {
    case MR_FIELD_STRING:
        mr_free(*(char **)p);
        break;
    case MR_FIELD_STRING_LIST: {
        struct mr_strlist *l = p;
        for (size_t i = 0; i < l->n; i++) {
            mr_free(l->items[i]);
        }
        mr_free(l->items);
        break;
    }
    case MR_FIELD_STRING_MAP: {
        struct mr_strmap *m = p;
        for (size_t i = 0; i < m->n; i++) {
            mr_free(m->items[i].key);
            mr_free(m->items[i].value);
        }
        mr_free(m->items);
        break;
    }
    case MR_FIELD_SECTION:
        cfg_section_free(f->section, p);
        break;
    case MR_FIELD_SECTION_LIST: {
        struct mr_conf_list *l = p;
        for (size_t i = 0; i < l->n; i++) {
            cfg_section_free(f->section, (char *)l->items + i * f->section->size);
        }
        mr_free(l->items);
        break;
    }
    case MR_FIELD_SECTION_MAP: {
        struct mr_conf_map *m = p;
        for (size_t i = 0; i < m->n; i++) {
            if (m->items[i].conf != NULL) {
                cfg_section_free(f->section, m->items[i].conf);
            }
            mr_free(m->items[i].conf);
            mr_free(m->items[i].name);
        }
        mr_free(m->items);
        break;
    }
    case MR_FIELD_PLUGIN_MAP:
    case MR_FIELD_PLUGIN_LIST:
        plugins_free(p);
        break;
    default:
        break;
    }
}

void cfg_section_free(const struct mr_section *sec, void *conf)
{
    for (const struct mr_field *f = sec->fields; f->name != NULL; f++) {
        field_free(f, (char *)conf + f->offset);
    }
}

void mr_config_destroy(struct mr_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    cfg_section_free(&mr_config_root, cfg);
    mr_free(cfg->source);
    mr_free(cfg);
}
