/* `millrace config`: check a configuration file, or print the configuration reference.
 *
 *   millrace config check FILE [--set key.path=value ...]
 *   millrace config docs            (Markdown for docs/CONFIG.md, on stdout)
 */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "millrace/alloc.h"
#include "millrace/config.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: millrace config check FILE [--set key.path=value ...]\n"
            "       millrace config docs\n"
            "\n"
            "check  Load FILE, apply the overrides, validate everything and print\n"
            "       'FILE: ok (...)', or every problem as FILE:LINE:COLUMN: key.path: message.\n"
            "       --set takes a YAML value: --set inputs.press.port=1884,\n"
            "       --set pipelines.p.to=[console,archive]. Exit 1 when there are problems.\n"
            "docs   Write the reference of every section and plugin setting as Markdown\n"
            "       (what docs/CONFIG.md holds).\n"
            "\n"
            "Values may use ${NAME} or ${NAME:-default} to read the environment.\n");
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static int check(int argc, char **argv)
{
    const char *file = NULL;
    const char **sets = mr_calloc((size_t)argc, sizeof(*sets));
    struct mr_config_errors *errs = mr_calloc(1, sizeof(*errs));
    struct mr_config_opts opts = {.sets = sets};
    struct mr_config *cfg = NULL;
    int code = 2;
    if (sets == NULL || errs == NULL) {
        fprintf(stderr, "millrace config: out of memory\n");
        code = 1;
        goto done;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            sets[opts.nsets++] = argv[++i];
        } else if (strncmp(argv[i], "--set=", 6) == 0) {
            sets[opts.nsets++] = argv[i] + 6;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            code = 0;
            goto done;
        } else if (argv[i][0] == '-' || file != NULL) {
            fprintf(stderr, "millrace config check: unexpected argument '%s'\n\n", argv[i]);
            usage(stderr);
            goto done;
        } else {
            file = argv[i];
        }
    }
    if (file == NULL) {
        fprintf(stderr, "millrace config check: which file?\n\n");
        usage(stderr);
        goto done;
    }
    int rc = mr_config_load(&cfg, file, &opts, errs);
    if (rc != 0) {
        for (size_t i = 0; i < errs->n; i++) {
            fprintf(stderr, "%s\n", errs->msg[i]);
        }
        if (errs->total > errs->n) {
            fprintf(stderr, "... and %zu more\n", errs->total - errs->n);
        }
        fprintf(stderr, "%s: %zu %s\n", file, errs->total,
                plural(errs->total, "problem", "problems"));
        code = 1;
        goto done;
    }
    printf("%s: ok (%zu %s, %zu %s, %zu %s)\n", file, cfg->inputs.n,
           plural(cfg->inputs.n, "input", "inputs"), cfg->pipelines.n,
           plural(cfg->pipelines.n, "pipeline", "pipelines"), cfg->outputs.n,
           plural(cfg->outputs.n, "output", "outputs"));
    code = 0;
done:
    mr_config_destroy(cfg);
    mr_free(errs);
    mr_free(sets);
    return code;
}

static int docs(int argc, char **argv)
{
    struct mr_err err = {0};
    if (argc > 1) {
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "millrace config docs: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    if (mr_config_docs_write(stdout, &err) != 0) {
        fprintf(stderr, "millrace config docs: %s\n", err.msg);
        return 1;
    }
    return 0;
}

int mr_cli_config(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "check") == 0) {
        return check(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "docs") == 0) {
        return docs(argc - 1, argv + 1);
    }
    fprintf(stderr, "millrace config: unknown subcommand '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
