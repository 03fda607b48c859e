/* millrace command line: a thin dispatcher over libmillrace. Each command lives in its own
 * cmd_*.c file and owns its options, usage text and exit codes:
 *   0 success, 1 the command ran and found a problem (corruption, invalid config), 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

#ifndef MR_VERSION
#define MR_VERSION "unknown"
#endif

struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
    {.name = "version", .summary = "print the version", .run = cmd_version},
    {.name = "run",
     .summary = "run a configuration's inputs, pipelines and outputs until stopped",
     .run = mr_cli_run},
    {.name = "demo", .summary = "run the simulated plant end to end", .run = mr_cli_demo},
    {.name = "journal",
     .summary = "append to, read, list and verify the durable journal",
     .run = mr_cli_journal},
    {.name = "outputs",
     .summary = "show what every output is doing: state, lag, backlog age, last error",
     .run = mr_cli_outputs},
    {.name = "config",
     .summary = "check a configuration file, generate its reference",
     .run = mr_cli_config},
    {.name = "help", .summary = "show this help", .run = cmd_help},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: millrace COMMAND [OPTIONS]\n\n"
                 "millrace takes plant data as it is born, keeps it durably, processes it as it\n"
                 "arrives and delivers what matters.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out, "\n'millrace COMMAND --help' shows a command's options.\n");
}

static int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: millrace version\n\nPrints the version of this millrace build.\n");
        return 0;
    }
    (void)argv;
    printf("millrace %s\n", MR_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    usage(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0) {
        name = "version";
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(name, commands[i].name) == 0) {
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "millrace: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
}
