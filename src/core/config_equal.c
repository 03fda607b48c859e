/* Comparing two configurations field by field, with the same tables that parsed them: a reload
 * (SIGHUP) keeps every plugin instance whose settings did not change. */
#include <string.h>

#include "core/config_internal.h"
#include "millrace/plugin.h"

static bool str_eq(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

static bool plugin_confs_equal(const struct mr_plugin_confs *a, const struct mr_plugin_confs *b);

bool mr_section_equal(const struct mr_section *sec, const void *a, const void *b)
{
    const char *pa = a, *pb = b;
    for (const struct mr_field *f = sec->fields; f->name != NULL; f++) {
        const char *x = pa + f->offset, *y = pb + f->offset;
        if (f->present != 0 && *(const bool *)(const void *)(pa + f->present - 1) !=
                                   *(const bool *)(const void *)(pb + f->present - 1)) {
            return false;
        }
        bool eq = true;
        switch (f->type) {
        case MR_FIELD_BOOL:
            eq = memcmp(x, y, sizeof(bool)) == 0;
            break;
        case MR_FIELD_INT:
        case MR_FIELD_DURATION:
            eq = memcmp(x, y, sizeof(int64_t)) == 0;
            break;
        case MR_FIELD_DOUBLE:
            eq = *(const double *)(const void *)x == *(const double *)(const void *)y;
            break;
        case MR_FIELD_SIZE:
            eq = memcmp(x, y, sizeof(uint64_t)) == 0;
            break;
        case MR_FIELD_ENUM:
            eq = memcmp(x, y, sizeof(int)) == 0;
            break;
        case MR_FIELD_STRING:
            eq = str_eq(*(char *const *)(const void *)x, *(char *const *)(const void *)y);
            break;
        case MR_FIELD_STRING_LIST: {
            const struct mr_strlist *l = (const void *)x, *m = (const void *)y;
            eq = l->n == m->n;
            for (size_t i = 0; eq && i < l->n; i++) {
                eq = str_eq(l->items[i], m->items[i]);
            }
            break;
        }
        case MR_FIELD_STRING_MAP: {
            const struct mr_strmap *l = (const void *)x, *m = (const void *)y;
            eq = l->n == m->n;
            for (size_t i = 0; eq && i < l->n; i++) {
                eq = str_eq(l->items[i].key, m->items[i].key) &&
                     str_eq(l->items[i].value, m->items[i].value);
            }
            break;
        }
        case MR_FIELD_SECTION:
            eq = mr_section_equal(f->section, x, y);
            break;
        case MR_FIELD_SECTION_LIST: {
            const struct mr_conf_list *l = (const void *)x, *m = (const void *)y;
            eq = l->n == m->n;
            for (size_t i = 0; eq && i < l->n; i++) {
                eq = mr_section_equal(f->section, (const char *)l->items + i * f->section->size,
                                      (const char *)m->items + i * f->section->size);
            }
            break;
        }
        case MR_FIELD_SECTION_MAP: {
            const struct mr_conf_map *l = (const void *)x, *m = (const void *)y;
            eq = l->n == m->n;
            for (size_t i = 0; eq && i < l->n; i++) {
                eq = str_eq(l->items[i].name, m->items[i].name) &&
                     mr_section_equal(f->section, l->items[i].conf, m->items[i].conf);
            }
            break;
        }
        case MR_FIELD_PLUGIN_MAP:
        case MR_FIELD_PLUGIN_LIST:
            eq = plugin_confs_equal((const void *)x, (const void *)y);
            break;
        }
        if (!eq) {
            return false;
        }
    }
    return true;
}

bool mr_plugin_conf_equal(const struct mr_plugin_conf *a, const struct mr_plugin_conf *b)
{
    return str_eq(a->name, b->name) && a->plugin == b->plugin &&
           mr_section_equal(&a->plugin->conf, a->conf, b->conf) &&
           mr_section_equal(&mr_delivery_section, &a->delivery, &b->delivery);
}

static bool plugin_confs_equal(const struct mr_plugin_confs *a, const struct mr_plugin_confs *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (!mr_plugin_conf_equal(&a->items[i], &b->items[i])) {
            return false;
        }
    }
    return true;
}
