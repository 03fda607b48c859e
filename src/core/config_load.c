/* Config loading: YAML text -> a tree of nodes that remember FILE:LINE:COLUMN, with ${NAME} and
 * ${NAME:-default} substituted from the environment inside scalar values, then `--set
 * key.path=value` overrides grafted on, then handed to config_apply.c.
 *
 * libyaml's event parser is used rather than its document loader so that every node keeps its
 * own position and so that aliases (which could expand a small file into a huge tree) are
 * rejected before anything is built. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "core/config_internal.h"
#include "millrace/alloc.h"

/* Most entries one map or list may hold. */
#define CFG_MAX_KIDS (1u << 20)

void cfg_node_where(const struct cnode *n, char *out, size_t cap)
{
    if (n == NULL) {
        out[0] = '\0';
    } else if (n->line == 0) {
        snprintf(out, cap, "%s", n->src);
    } else {
        snprintf(out, cap, "%s:%u:%u", n->src, n->line, n->col);
    }
}

void cfg_error(struct mr_config_errors *errs, const struct cnode *at, const char *path,
               const char *fmt, ...)
{
    char where[CFG_PATH_LEN + 16];
    char msg[MR_CONFIG_ERROR_LEN];
    va_list ap;
    errs->total++;
    if (errs->n >= MR_CONFIG_MAX_ERRORS) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cfg_node_where(at, where, sizeof(where));
    /* An override already names its key path: "--set a.b: ..." */
    bool override_path = at != NULL && at->line == 0 && path != NULL &&
                         strncmp(at->src, "--set ", 6) == 0 && strcmp(at->src + 6, path) == 0;
    bool with_path = path != NULL && path[0] != '\0' && !override_path;
    /* Long messages are cut at MR_CONFIG_ERROR_LEN: the position and path come first. */
    int w =
        snprintf(errs->msg[errs->n], MR_CONFIG_ERROR_LEN, "%s%s%s%s%s", where,
                 where[0] != '\0' ? ": " : "", with_path ? path : "", with_path ? ": " : "", msg);
    errs->n += w >= 0 ? 1 : 0;
}

struct cnode *cfg_node_get(const struct cnode *map, const char *key)
{
    if (map == NULL || map->kind != CNODE_MAP) {
        return NULL;
    }
    for (size_t i = 0; i < map->n; i++) {
        if (strcmp(map->kids[i]->key, key) == 0) {
            return map->kids[i];
        }
    }
    return NULL;
}

static void node_free(struct cnode *n)
{
    if (n == NULL) {
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        node_free(n->kids[i]);
    }
    mr_free(n->kids);
    mr_free(n->key);
    mr_free(n->text);
    mr_free(n);
}

static void tree_fini(struct ctree *t)
{
    node_free(t->root);
    for (size_t i = 0; i < t->nsrcs; i++) {
        mr_free(t->srcs[i]);
    }
    mr_free(t->srcs);
    memset(t, 0, sizeof(*t));
}

/* Keep a copy of src in the tree; nodes point at it. */
static const char *tree_src(struct ctree *t, const char *src)
{
    char **grown = mr_realloc(t->srcs, (t->nsrcs + 1) * sizeof(*grown));
    if (grown == NULL) {
        return NULL;
    }
    t->srcs = grown;
    char *copy = mr_strdup(src);
    if (copy == NULL) {
        return NULL;
    }
    t->srcs[t->nsrcs++] = copy;
    return copy;
}

static int node_add(struct cnode *parent, struct cnode *kid)
{
    if (parent->n == parent->cap) {
        if (parent->cap >= CFG_MAX_KIDS) {
            return MR_ETOOBIG;
        }
        size_t cap = parent->cap == 0 ? 4 : parent->cap * 2;
        struct cnode **grown = mr_realloc(parent->kids, cap * sizeof(*grown));
        if (grown == NULL) {
            return MR_ENOMEM;
        }
        parent->kids = grown;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return 0;
}

/* ---- YAML -> tree ---- */

struct frame {
    struct cnode *node;
    char *key; /* pending key of a map frame, owned until attached */
    uint32_t kline;
    uint32_t kcol;
};

struct builder {
    struct ctree *tree;
    const char *src;
    bool file; /* positions and ${ENV}; false for --set values */
    struct mr_config_errors *errs;
    struct frame stack[CFG_MAX_DEPTH];
    size_t depth;
    struct cnode *root;
    unsigned docs;
    unsigned skip; /* > 0 inside a refused map or list: its events are ignored */
    int rc;        /* first problem: MR_ENOMEM, MR_ECONFIG */
};

/* Key path of the value being built ("inputs.press_temp.port"), for messages. Frame i's child
 * on the path is frame i+1 (the last node attached to it); the top frame's is the pending key or
 * the next list index. */
static void builder_path(const struct builder *b, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < b->depth; i++) {
        const struct cnode *n = b->stack[i].node;
        bool last = i + 1 == b->depth;
        const char *comp;
        char idx[24];
        if (n->kind == CNODE_MAP) {
            comp = last ? b->stack[i].key : b->stack[i + 1].node->key;
        } else {
            snprintf(idx, sizeof(idx), "[%zu]", last ? n->n : n->n - 1);
            comp = idx;
        }
        if (comp == NULL) {
            continue;
        }
        int w =
            snprintf(out + used, cap - used, "%s%s", used > 0 && comp[0] != '[' ? "." : "", comp);
        if (w < 0 || (size_t)w >= cap - used) {
            break;
        }
        used += (size_t)w;
    }
}

static void builder_error(struct builder *b, const yaml_mark_t *mark, const char *fmt, ...)
{
    char msg[MR_CONFIG_ERROR_LEN];
    char path[CFG_PATH_LEN];
    struct cnode at = {
        .src = b->src, .line = (uint32_t)mark->line + 1, .col = (uint32_t)mark->column + 1};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    builder_path(b, path, sizeof(path));
    if (!b->file) {
        at.line = 0; /* "--set a.b" names the place */
        path[0] = '\0';
    }
    cfg_error(b->errs, &at, path, "%s", msg);
    if (b->rc == 0) {
        b->rc = MR_ECONFIG;
    }
}

static bool name_char(char c, bool first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

/* Appends len bytes to a growing buffer; MR_ENOMEM or MR_ETOOBIG. */
static int buf_put(char **buf, size_t *used, size_t *cap, const char *s, size_t len)
{
    if (*used + len + 1 > *cap) {
        size_t want = (*used + len + 1) * 2;
        if (want > CFG_MAX_SCALAR_BYTES + 1) {
            want = CFG_MAX_SCALAR_BYTES + 1;
        }
        if (*used + len + 1 > want) {
            return MR_ETOOBIG;
        }
        char *grown = mr_realloc(*buf, want);
        if (grown == NULL) {
            return MR_ENOMEM;
        }
        *buf = grown;
        *cap = want;
    }
    memcpy(*buf + *used, s, len);
    *used += len;
    (*buf)[*used] = '\0';
    return 0;
}

/* One ${...} reference starting at in[i] ("${"); appends its value and returns the index just
 * past it, or a negative code (the error is recorded). */
static long env_ref(struct builder *b, const yaml_mark_t *mark, const char *in, size_t len,
                    size_t i, char **buf, size_t *used, size_t *cap)
{
    size_t start = i + 2;
    size_t j = start;
    while (j < len && name_char(in[j], j == start)) {
        j++;
    }
    size_t name_len = j - start;
    const char *def = NULL;
    size_t def_len = 0;
    if (j + 1 < len && in[j] == ':' && in[j + 1] == '-') {
        def = in + j + 2;
        const char *close = memchr(def, '}', len - (j + 2));
        if (close != NULL) {
            def_len = (size_t)(close - def);
            j = (size_t)(close - in);
        } else {
            j = len;
        }
    }
    if (name_len == 0 || name_len > 128 || j >= len || in[j] != '}') {
        builder_error(b, mark,
                      "bad environment reference '%.*s': write ${NAME} or "
                      "${NAME:-default}",
                      (int)(len - i > 40 ? 40 : len - i), in + i);
        return MR_ECONFIG;
    }
    char name[129];
    memcpy(name, in + start, name_len);
    name[name_len] = '\0';
    const char *value = getenv(name);
    if (value == NULL && def == NULL) {
        builder_error(b, mark,
                      "environment variable %s is not set (write ${%s:-default} to give "
                      "a default)",
                      name, name);
        return MR_ECONFIG;
    }
    int rc = value != NULL ? buf_put(buf, used, cap, value, strlen(value))
                           : buf_put(buf, used, cap, def, def_len);
    if (rc != 0) {
        return rc;
    }
    return (long)j + 1;
}

/* Substitute ${NAME} and ${NAME:-default}; "$${" stands for a literal "${". */
static int env_expand(struct builder *b, const yaml_mark_t *mark, const char *in, size_t len,
                      char **out)
{
    char *buf = NULL;
    size_t used = 0;
    size_t cap = 0;
    size_t i = 0;
    int rc = buf_put(&buf, &used, &cap, "", 0);
    while (rc == 0 && i < len) {
        const char *dollar = memchr(in + i, '$', len - i);
        size_t stop = dollar != NULL ? (size_t)(dollar - in) : len;
        rc = buf_put(&buf, &used, &cap, in + i, stop - i);
        i = stop;
        if (rc != 0 || i >= len) {
            break;
        }
        if (i + 2 < len && in[i + 1] == '$' && in[i + 2] == '{') {
            rc = buf_put(&buf, &used, &cap, "${", 2);
            i += 3;
        } else if (b->file && i + 1 < len && in[i + 1] == '{') {
            long next = env_ref(b, mark, in, len, i, &buf, &used, &cap);
            if (next < 0) {
                rc = (int)next;
            } else {
                i = (size_t)next;
            }
        } else {
            rc = buf_put(&buf, &used, &cap, "$", 1);
            i++;
        }
    }
    if (rc == MR_ETOOBIG) {
        builder_error(b, mark, "value is longer than %u bytes", CFG_MAX_SCALAR_BYTES);
        rc = MR_ECONFIG;
    }
    if (rc != 0) {
        mr_free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

static struct cnode *builder_node(struct builder *b, enum cnode_kind kind, const yaml_mark_t *mark)
{
    struct cnode *n = mr_calloc(1, sizeof(*n));
    if (n == NULL) {
        b->rc = MR_ENOMEM;
        return NULL;
    }
    n->kind = kind;
    n->src = b->src;
    if (b->file) {
        n->line = (uint32_t)mark->line + 1;
        n->col = (uint32_t)mark->column + 1;
    }
    return n;
}

/* Attach a new value node to the current container (or make it the root). Takes ownership. */
static int builder_attach(struct builder *b, struct cnode *n, const yaml_mark_t *mark)
{
    if (b->depth == 0) {
        if (b->root != NULL) {
            node_free(n);
            return 0; /* a second document: reported at DOCUMENT_START */
        }
        b->root = n;
        return 0;
    }
    struct frame *top = &b->stack[b->depth - 1];
    if (top->node->kind == CNODE_MAP) {
        struct cnode *dup = cfg_node_get(top->node, top->key);
        if (dup != NULL) {
            yaml_mark_t at = {.line = top->kline - 1, .column = top->kcol - 1};
            builder_error(b, &at, "duplicate key '%s' (first at line %u)", top->key,
                          dup->kline > 0 ? dup->kline : dup->line);
        }
        n->key = top->key;
        top->key = NULL;
        if (b->file) {
            n->kline = top->kline;
            n->kcol = top->kcol;
            if (n->kind != CNODE_SCALAR) {
                n->line = top->kline;
                n->col = top->kcol;
            }
        }
    }
    int rc = node_add(top->node, n);
    if (rc != 0) {
        node_free(n);
        if (rc == MR_ETOOBIG) {
            builder_error(b, mark, "more than %u entries", CFG_MAX_KIDS);
            return MR_ECONFIG;
        }
        b->rc = rc;
    }
    return rc;
}

static bool is_null_scalar(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (ev->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
            strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0);
}

static void builder_scalar(struct builder *b, const yaml_event_t *ev)
{
    struct frame *top = b->depth > 0 ? &b->stack[b->depth - 1] : NULL;
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (top != NULL && top->node->kind == CNODE_MAP && top->key == NULL) {
        if (memchr(v, '\0', len) != NULL) {
            builder_error(b, &ev->start_mark, "key contains a NUL byte");
        }
        top->key = mr_strndup(v, len);
        if (top->key == NULL) {
            b->rc = MR_ENOMEM;
            return;
        }
        top->kline = (uint32_t)ev->start_mark.line + 1;
        top->kcol = (uint32_t)ev->start_mark.column + 1;
        return;
    }
    bool null = is_null_scalar(ev);
    struct cnode *n = builder_node(b, null ? CNODE_NULL : CNODE_SCALAR, &ev->start_mark);
    if (n == NULL) {
        return;
    }
    if (!null) {
        if (memchr(v, '\0', len) != NULL) {
            builder_error(b, &ev->start_mark, "value contains a NUL byte");
            node_free(n);
            return;
        }
        int rc = env_expand(b, &ev->start_mark, v, len, &n->text);
        if (rc != 0) {
            if (rc == MR_ENOMEM) {
                b->rc = rc;
            }
            node_free(n);
            return;
        }
    }
    builder_attach(b, n, &ev->start_mark);
}

static void builder_open(struct builder *b, enum cnode_kind kind, const yaml_event_t *ev)
{
    struct frame *top = b->depth > 0 ? &b->stack[b->depth - 1] : NULL;
    if (top != NULL && top->node->kind == CNODE_MAP && top->key == NULL) {
        builder_error(b, &ev->start_mark, "keys must be plain strings, not %s",
                      kind == CNODE_MAP ? "maps" : "lists");
        b->skip = 1;
        return;
    }
    if (b->depth == CFG_MAX_DEPTH) {
        builder_error(b, &ev->start_mark, "nested more than %d levels deep", CFG_MAX_DEPTH);
        b->skip = 1;
        return;
    }
    struct cnode *n = builder_node(b, kind, &ev->start_mark);
    if (n == NULL) {
        return;
    }
    if (builder_attach(b, n, &ev->start_mark) != 0) {
        b->skip = 1;
        return;
    }
    b->stack[b->depth++] = (struct frame){.node = n};
}

static void builder_close(struct builder *b)
{
    if (b->depth > 0) {
        b->depth--;
        mr_free(b->stack[b->depth].key);
        b->stack[b->depth].key = NULL;
    }
}

/* Returns false when the parse must end (the rest of the events would not make sense). */
static bool builder_event(struct builder *b, const yaml_event_t *ev)
{
    if (b->skip > 0) {
        if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
            b->skip++;
        } else if (ev->type == YAML_MAPPING_END_EVENT || ev->type == YAML_SEQUENCE_END_EVENT) {
            b->skip--;
        }
        return true;
    }
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->docs > 1) {
            builder_error(b, &ev->start_mark, "only one YAML document per file");
            return false;
        }
        return true;
    case YAML_ALIAS_EVENT:
        builder_error(b, &ev->start_mark, "aliases (*%s) are not supported: repeat the value",
                      (const char *)ev->data.alias.anchor);
        return false;
    case YAML_SCALAR_EVENT:
        builder_scalar(b, ev);
        break;
    case YAML_MAPPING_START_EVENT:
        builder_open(b, CNODE_MAP, ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
        builder_open(b, CNODE_SEQ, ev);
        break;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        builder_close(b);
        break;
    default:
        break;
    }
    return b->rc != MR_ENOMEM;
}

/* Parse data into *root. Returns 0, MR_ECONFIG (errors recorded) or MR_ENOMEM. */
static int yaml_build(struct builder *b, const char *data, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    bool done = false;
    if (!yaml_parser_initialize(&parser)) {
        return MR_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            if (parser.error == YAML_MEMORY_ERROR) {
                b->rc = MR_ENOMEM;
                break;
            }
            yaml_mark_t mark = parser.problem_mark;
            char ctx[96] = "";
            if (parser.context != NULL) {
                snprintf(ctx, sizeof(ctx), " %s (line %zu column %zu)", parser.context,
                         parser.context_mark.line + 1, parser.context_mark.column + 1);
            }
            builder_error(b, &mark, "invalid YAML: %s%s",
                          parser.problem != NULL ? parser.problem : "syntax error", ctx);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        bool go_on = builder_event(b, &ev);
        yaml_event_delete(&ev);
        if (!go_on) {
            break;
        }
    }
    while (b->depth > 0) {
        builder_close(b);
    }
    yaml_parser_delete(&parser);
    return b->rc;
}

/* ---- --set key.path=value ---- */

static int override_apply(struct ctree *tree, const char *set, struct mr_config_errors *errs)
{
    const char *eq = strchr(set, '=');
    char src[CFG_PATH_LEN + 8];
    if (eq == NULL || eq == set) {
        struct cnode at = {.src = "--set"};
        cfg_error(errs, &at, NULL, "expected key.path=value, got '%.60s'", set);
        return MR_ECONFIG;
    }
    snprintf(src, sizeof(src), "--set %.*s", (int)(eq - set), set);
    const char *owned = tree_src(tree, src);
    if (owned == NULL) {
        return MR_ENOMEM;
    }
    struct cnode at = {.src = owned};
    struct builder b = {.tree = tree, .src = owned, .file = false, .errs = errs};
    int rc = yaml_build(&b, eq + 1, strlen(eq + 1));
    struct cnode *value = b.root;
    if (rc != 0) {
        node_free(value);
        return rc;
    }
    if (value == NULL) {
        value = builder_node(&b, CNODE_NULL, &(yaml_mark_t){0});
        if (value == NULL) {
            return MR_ENOMEM;
        }
    }
    if (tree->root == NULL) {
        tree->root = builder_node(&b, CNODE_MAP, &(yaml_mark_t){0});
        if (tree->root == NULL) {
            node_free(value);
            return MR_ENOMEM;
        }
    }
    struct cnode *node = tree->root;
    const char *p = set;
    while (rc == 0) {
        const char *dot = memchr(p, '.', (size_t)(eq - p));
        const char *end = dot != NULL ? dot : eq;
        char key[CFG_PATH_LEN];
        if (end == p || (size_t)(end - p) >= sizeof(key)) {
            cfg_error(errs, &at, NULL, "empty or overlong key in the path");
            rc = MR_ECONFIG;
            break;
        }
        memcpy(key, p, (size_t)(end - p));
        key[end - p] = '\0';
        if (node->kind == CNODE_NULL) {
            node->kind = CNODE_MAP;
        }
        if (node->kind != CNODE_MAP) {
            cfg_error(errs, &at, NULL, "'%.*s' is a %s, not a section", (int)(p - set - 1), set,
                      node->kind == CNODE_SEQ ? "list" : "value");
            rc = MR_ECONFIG;
            break;
        }
        struct cnode *kid = cfg_node_get(node, key);
        if (dot == NULL) {
            value->key = mr_strdup(key);
            if (value->key == NULL) {
                rc = MR_ENOMEM;
            } else if (kid != NULL) {
                for (size_t i = 0; i < node->n; i++) {
                    if (node->kids[i] == kid) {
                        node->kids[i] = value;
                    }
                }
                node_free(kid);
                value = NULL;
            } else {
                rc = node_add(node, value);
                value = rc == 0 ? NULL : value;
            }
            break;
        }
        if (kid == NULL) {
            kid = builder_node(&b, CNODE_MAP, &(yaml_mark_t){0});
            if (kid == NULL || (kid->key = mr_strdup(key)) == NULL) {
                node_free(kid);
                rc = MR_ENOMEM;
                break;
            }
            rc = node_add(node, kid);
            if (rc != 0) {
                node_free(kid);
                break;
            }
        }
        node = kid;
        p = dot + 1;
    }
    node_free(value);
    return rc == MR_ETOOBIG ? MR_ECONFIG : rc;
}

/* ---- entry points ---- */

/* Parse, substitute, override and apply into dst (zeroed, sec->size bytes). On failure dst may
 * hold partial values: the caller frees them with cfg_section_free. */
static int load_into(const struct mr_section *sec, void *dst, const char *name, const char *data,
                     size_t len, const struct mr_config_opts *opts, struct mr_config_errors *errs)
{
    struct ctree tree = {0};
    int rc;
    errs->n = 0;
    errs->total = 0;
    const char *src = tree_src(&tree, name);
    if (src == NULL) {
        rc = MR_ENOMEM;
        goto done;
    }
    if (len > CFG_MAX_FILE_BYTES) {
        cfg_error(errs, &(struct cnode){.src = src}, NULL, "file is larger than %u bytes",
                  CFG_MAX_FILE_BYTES);
        rc = MR_ECONFIG;
        goto done;
    }
    struct builder b = {.tree = &tree, .src = src, .file = true, .errs = errs};
    rc = yaml_build(&b, data, len);
    tree.root = b.root;
    if (rc == 0 && tree.root != NULL && tree.root->kind != CNODE_MAP &&
        tree.root->kind != CNODE_NULL) {
        cfg_error(errs, tree.root, NULL, "expected a map of settings (key: value pairs)");
        rc = MR_ECONFIG;
    }
    for (size_t i = 0; rc == 0 && opts != NULL && i < opts->nsets; i++) {
        rc = override_apply(&tree, opts->sets[i], errs);
    }
    if (rc == 0) {
        rc = cfg_apply(sec, dst, &tree, src, errs);
    }
done:
    if (rc == MR_ENOMEM) {
        cfg_error(errs, NULL, NULL, "%s: out of memory", name);
    }
    if (rc == 0 && errs->total > 0) {
        rc = MR_ECONFIG;
    }
    tree_fini(&tree);
    return rc;
}

int mr_config_load_buffer(struct mr_config **out, const char *name, const char *data, size_t len,
                          const struct mr_config_opts *opts, struct mr_config_errors *errs)
{
    struct mr_config *cfg = mr_calloc(1, sizeof(*cfg));
    int rc;
    if (cfg == NULL || (cfg->source = mr_strdup(name)) == NULL) {
        errs->n = 0;
        errs->total = 0;
        cfg_error(errs, NULL, NULL, "%s: out of memory", name);
        mr_free(cfg);
        return MR_ENOMEM;
    }
    rc = load_into(&mr_config_root, cfg, name, data, len, opts, errs);
    if (rc != 0) {
        mr_config_destroy(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int mr_section_load_buffer(const struct mr_section *sec, void *dst, const char *name,
                           const char *data, size_t len, const struct mr_config_opts *opts,
                           struct mr_config_errors *errs)
{
    memset(dst, 0, sec->size);
    int rc = load_into(sec, dst, name, data, len, opts, errs);
    if (rc != 0) {
        cfg_section_free(sec, dst);
        memset(dst, 0, sec->size);
    }
    return rc;
}

void mr_section_free(const struct mr_section *sec, void *conf)
{
    if (conf != NULL) {
        cfg_section_free(sec, conf);
    }
}

/* Whole file into a heap buffer, at most CFG_MAX_FILE_BYTES + 1 bytes. */
static int file_read(const char *path, char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t used = 0;
    int rc = 0;
    if (fd < 0) {
        return mr_err_from_errno(errno);
    }
    buf = mr_malloc(64 * 1024);
    size_t cap = 64 * 1024;
    while (buf != NULL && used <= CFG_MAX_FILE_BYTES) {
        if (used == cap) {
            char *grown = mr_realloc(buf, cap * 2);
            if (grown == NULL) {
                break;
            }
            buf = grown;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = mr_err_from_errno(errno);
            goto done;
        }
        if (n == 0) {
            *data = buf;
            *len = used;
            buf = NULL;
            goto done;
        }
        used += (size_t)n;
    }
    rc = used > CFG_MAX_FILE_BYTES ? MR_ETOOBIG : MR_ENOMEM;
done:
    mr_free(buf);
    close(fd);
    return rc;
}

int mr_config_load(struct mr_config **out, const char *path, const struct mr_config_opts *opts,
                   struct mr_config_errors *errs)
{
    char *data = NULL;
    size_t len = 0;
    errs->n = 0;
    errs->total = 0;
    int rc = file_read(path, &data, &len);
    if (rc == MR_ETOOBIG) {
        cfg_error(errs, &(struct cnode){.src = path}, NULL, "file is larger than %u bytes",
                  CFG_MAX_FILE_BYTES);
        return MR_ECONFIG;
    }
    if (rc != 0) {
        cfg_error(errs, &(struct cnode){.src = path}, NULL, "cannot read: %s", mr_strerror(rc));
        return rc;
    }
    rc = mr_config_load_buffer(out, path, data, len, opts, errs);
    mr_free(data);
    return rc;
}
