/* docs/CONFIG.md, generated from the same field tables that parse and validate a file, so the
 * reference cannot drift from the code. Output depends only on the tables and the registry
 * order: `make docs-check` diffs it against the committed file. */
#include <string.h>

#include "core/config_internal.h"
#include "millrace/plugin.h"

static const enum mr_plugin_kind kinds[] = {MR_PLUGIN_INPUT, MR_PLUGIN_OPERATOR, MR_PLUGIN_OUTPUT};

/* Table cells: '|' would end the cell, a newline the row. */
static void cell(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|') {
            fputs("\\|", out);
        } else if (*s == '\n') {
            fputc(' ', out);
        } else {
            fputc(*s, out);
        }
    }
}

static const char *plugin_chapter(enum mr_plugin_kind kind)
{
    switch (kind) {
    case MR_PLUGIN_INPUT:
        return "Inputs";
    case MR_PLUGIN_OPERATOR:
        return "Operators";
    case MR_PLUGIN_OUTPUT:
        return "Outputs";
    }
    return "Plugins";
}

static void type_cell(FILE *out, const struct mr_field *f)
{
    switch (f->type) {
    case MR_FIELD_PLUGIN_MAP:
        fprintf(out, "map of %s instances", mr_plugin_kind_name(f->plugin_kind));
        break;
    case MR_FIELD_PLUGIN_LIST:
        fprintf(out, "list of %ss", mr_plugin_kind_name(f->plugin_kind));
        break;
    default:
        fputs(cfg_field_type_name(f->type), out);
        break;
    }
}

static void bounds_cell(FILE *out, const struct mr_field *f)
{
    if (f->type == MR_FIELD_ENUM) {
        for (size_t i = 0; f->values[i] != NULL; i++) {
            fprintf(out, "%s`%s`", i > 0 ? ", " : "", f->values[i]);
        }
        return;
    }
    bool list = f->type == MR_FIELD_STRING_LIST || f->type == MR_FIELD_SECTION_LIST ||
                f->type == MR_FIELD_PLUGIN_LIST;
    const char *unit = list ? " items" : "";
    if (f->min != NULL && f->max != NULL) {
        fprintf(out, "%s .. %s%s", f->min, f->max, unit);
    } else if (f->min != NULL) {
        fprintf(out, ">= %s%s", f->min, unit);
    } else if (f->max != NULL) {
        fprintf(out, "<= %s%s", f->max, unit);
    }
}

static void table(FILE *out, const struct mr_section *sec)
{
    fputs("| key | type | default | bounds / values | description |\n", out);
    fputs("|---|---|---|---|---|\n", out);
    for (const struct mr_field *f = sec->fields; f->name != NULL; f++) {
        fprintf(out, "| `%s` | ", f->name);
        type_cell(out, f);
        fputs(" | ", out);
        if ((f->flags & MR_FIELD_REQUIRED) != 0) {
            fputs("**required**", out);
        } else if (f->def != NULL) {
            fputc('`', out);
            cell(out, f->def);
            fputc('`', out);
        }
        fputs(" | ", out);
        bounds_cell(out, f);
        fputs(" | ", out);
        cell(out, f->help);
        if (f->type == MR_FIELD_PLUGIN_MAP || f->type == MR_FIELD_PLUGIN_LIST) {
            fprintf(out, " See [%s](#%ss).", plugin_chapter(f->plugin_kind),
                    mr_plugin_kind_name(f->plugin_kind));
        }
        fputs(" |\n", out);
    }
    fputc('\n', out);
}

/* A section's table, then one heading per nested section below it. */
static void section(FILE *out, const char *path, const struct mr_section *sec, int level)
{
    table(out, sec);
    for (const struct mr_field *f = sec->fields; f->name != NULL; f++) {
        const char *suffix;
        switch (f->type) {
        case MR_FIELD_SECTION:
            suffix = "";
            break;
        case MR_FIELD_SECTION_MAP:
            suffix = ".NAME";
            break;
        case MR_FIELD_SECTION_LIST:
            suffix = "[N]";
            break;
        default:
            continue;
        }
        char sub[CFG_PATH_LEN];
        if (snprintf(sub, sizeof(sub), "%s%s%s%s", path, path[0] != '\0' ? "." : "", f->name,
                     suffix) < 0) {
            continue;
        }
        fprintf(out, "%.*s `%s`\n\n", level, "######", sub);
        cell(out, f->help);
        fputs("\n\n", out);
        section(out, sub, f->section, level + 1 > 6 ? 6 : level + 1);
    }
}

static int validate_all(struct mr_err *err)
{
    int rc = mr_section_validate(&mr_config_root, "", err);
    for (size_t k = 0; rc == 0 && k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        const struct mr_plugin *p;
        for (size_t i = 0; rc == 0 && (p = mr_plugin_at(kinds[k], i)) != NULL; i++) {
            char path[CFG_PATH_LEN];
            snprintf(path, sizeof(path), "%s %s", mr_plugin_kind_name(kinds[k]), p->name);
            rc = p->kind != kinds[k] ? MR_ERR_SET(err, MR_EINVAL, "%s: wrong kind", path)
                                     : mr_section_validate(&p->conf, path, err);
            /* `type` selects the plugin; a setting of that name could never be set. */
            for (const struct mr_field *f = p->conf.fields; rc == 0 && f->name != NULL; f++) {
                if (strcmp(f->name, "type") == 0) {
                    rc = MR_ERR_SET(err, MR_EINVAL, "%s: a setting may not be named 'type'", path);
                }
            }
        }
    }
    return rc;
}

static const char intro[] =
    "# millrace configuration reference\n"
    "\n"
    "<!-- Generated by `millrace config docs` from the field tables in the source; do not edit."
    " Run `make docs` after changing a table. -->\n"
    "\n"
    "A configuration file is YAML: a map of the sections below. `millrace config check FILE`\n"
    "validates one and reports every problem with its `FILE:LINE:COLUMN` and key path.\n"
    "\n"
    "- **Durations** are a number and a unit, combinable: `250ms`, `1.5s`, `5m`, `1h30m`, `7d`\n"
    "  (units `ns`, `us`, `ms`, `s`, `m`, `h`, `d`). A bare number is an error, except `0`.\n"
    "- **Sizes** are bytes, with an optional unit: `4096`, `512KiB`, `64MiB`, `1GB`\n"
    "  (`KiB`, `MiB`, `GiB`, `TiB` are powers of 1024; `KB`, `MB`, `GB`, `TB` of 1000).\n"
    "- **Booleans** are `true`/`false` (also `yes`/`no`, `on`/`off`).\n"
    "- `${NAME}` in a value is replaced by the environment variable NAME (an error if it is not\n"
    "  set); `${NAME:-default}` falls back to `default`; `$${` writes a literal `${`.\n"
    "- `--set key.path=value` (e.g. `--set inputs.press_temp.port=1884`) overrides or adds a\n"
    "  value before validation; the value is YAML, so `--set pipelines.p.to=[a,b]` sets a list.\n"
    "- A key left empty (`key:`) or `null` means the default.\n"
    "- Instances of inputs, pipelines and outputs are named by their key; names use letters,\n"
    "  digits, `_` and `-`, and appear in logs and metrics as `inputs.NAME`.\n"
    "\n";

int mr_config_docs_write(FILE *out, struct mr_err *err)
{
    int rc = validate_all(err);
    if (rc != 0) {
        return rc;
    }
    fputs(intro, out);
    fputs("## Top level\n\n", out);
    section(out, "", &mr_config_root, 2);
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        const struct mr_plugin *p = mr_plugin_at(kinds[k], 0);
        fprintf(out, "## %s\n\n", plugin_chapter(kinds[k]));
        if (p == NULL) {
            fputs("None yet.\n\n", out);
            continue;
        }
        if (kinds[k] == MR_PLUGIN_OPERATOR) {
            fputs("A pipeline step is `{type: TYPE, ...}` with the settings of its type.\n\n", out);
        } else {
            fprintf(out, "An %s is `NAME: {type: TYPE, ...}` with the settings of its type.\n\n",
                    mr_plugin_kind_name(kinds[k]));
        }
        if (kinds[k] == MR_PLUGIN_OUTPUT) {
            fputs("Every output also takes `delivery:`, how the engine retries it and where "
                  "records the destination refuses go (docs/OUTPUTS.md):\n\n",
                  out);
            table(out, &mr_delivery_section);
        }
        for (size_t i = 0; (p = mr_plugin_at(kinds[k], i)) != NULL; i++) {
            fprintf(out, "### %s `%s`\n\n", mr_plugin_kind_name(kinds[k]), p->name);
            cell(out, p->help);
            fputs("\n\n", out);
            section(out, p->name, &p->conf, 4);
        }
    }
    if (fflush(out) != 0 || ferror(out)) {
        return MR_ERR_SET(err, MR_EIO, "cannot write the reference");
    }
    return 0;
}
