/* `millrace run CONFIG`: run a configuration's inputs, pipelines and outputs until stopped.
 *
 *   SIGTERM, SIGINT   orderly stop: inputs stop and what they produced is made durable,
 *                     pipelines process what is in their topics and checkpoint, outputs deliver
 *                     what is waiting (up to --drain-timeout), exit 0. A second signal exits
 *                     at once (the journal and checkpoints still make that safe).
 *   SIGHUP            reload CONFIG (with the same --set overrides): unchanged parts keep
 *                     running; a file with errors is reported and the running one kept.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli/commands.h"
#include "cli/run_loop.h"
#include "millrace/alloc.h"
#include "millrace/engine.h"
#include "millrace/log.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: millrace run CONFIG [--set key.path=value ...] [--log-level LEVEL]\n"
            "                           [--drain-timeout SECONDS] [--http HOST:PORT]\n\n"
            "Runs the inputs, pipelines and outputs of CONFIG until SIGTERM or Ctrl-C, which\n"
            "drain and checkpoint before exiting. SIGHUP reloads CONFIG without losing data.\n"
            "--http sets http.listen (/metrics, the HTTP API), default 127.0.0.1:8080.\n"
            "Exit 0 after an orderly stop, 1 when CONFIG is invalid or cannot start, 2 usage.\n");
}

int mr_cli_run(int argc, char **argv)
{
    const char **sets = mr_calloc((size_t)argc + 1, sizeof(*sets));
    if (sets == NULL) {
        fprintf(stderr, "millrace run: out of memory\n");
        return 1;
    }
    struct mr_run_options ro = {.sets = sets, .drain_timeout_ms = 10000};
    const char *path = NULL;
    char http_set[300];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            sets[ro.nsets++] = argv[++i];
        } else if (strcmp(argv[i], "--http") == 0 && i + 1 < argc) {
            /* the same as --set http.listen=ADDR; validated with the configuration */
            snprintf(http_set, sizeof(http_set), "http.listen=%s", argv[++i]);
            sets[ro.nsets++] = http_set;
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            enum mr_log_level lvl;
            if (mr_log_level_parse(argv[++i], &lvl) != 0) {
                fprintf(stderr, "millrace run: unknown log level '%s'\n", argv[i]);
                mr_free(sets);
                return 2;
            }
            mr_log_set_level(lvl);
        } else if (strcmp(argv[i], "--drain-timeout") == 0 && i + 1 < argc) {
            char *end = NULL;
            double s = strtod(argv[++i], &end);
            if (end == argv[i] || *end != '\0' || s < 0 || s > 3600) {
                fprintf(stderr, "millrace run: --drain-timeout takes seconds (0 to 3600)\n");
                mr_free(sets);
                return 2;
            }
            ro.drain_timeout_ms = (int)(s * 1000);
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            mr_free(sets);
            return 0;
        } else if (argv[i][0] != '-' && path == NULL) {
            path = argv[i];
        } else {
            usage(stderr);
            mr_free(sets);
            return 2;
        }
    }
    if (path == NULL) {
        usage(stderr);
        mr_free(sets);
        return 2;
    }
    ro.path = path;
    int rc = mr_run_config(&ro);
    mr_free(sets);
    return rc;
}
