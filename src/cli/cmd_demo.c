/* `millrace demo`: the example plant end to end, on the configuration compiled into the binary
 * (examples/demo.yaml): the `sim` input produces a site with two lines and six machines, the
 * journal keeps every record, pipelines compute windowed features (and whatever analytics the
 * file wires in), and the `summary` output prints a live table every few seconds until Ctrl-C
 * or --duration. It is `millrace run` on that file with a few convenient overrides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/run_loop.h"
#include "millrace/config.h"

extern const char mr_demo_config[];
extern const size_t mr_demo_config_len;

#define MAX_SETS 64

static void usage(FILE *out)
{
    fprintf(out,
            "usage: millrace demo [--duration TIME] [--speed X] [--data-dir DIR]\n"
            "                     [--config FILE] [--set key.path=value ...] [--print-config]\n"
            "                     [--http HOST:PORT]\n\n"
            "Runs a simulated plant (a site, two lines, six machines) through the journal, the\n"
            "stream engine and its analytics, printing a live summary every few seconds until\n"
            "Ctrl-C (or --duration, e.g. 60s). The configuration is examples/demo.yaml, built\n"
            "into the binary; --print-config shows it, --config runs another file instead.\n\n"
            "  --duration TIME  stop after TIME of wall-clock time (e.g. 30s, 5m)\n"
            "  --speed X        simulated time runs X times faster than real time (default 1)\n"
            "  --data-dir DIR   where the journal and checkpoints go (default ./millrace-demo);\n"
            "                   a second run continues where the first stopped\n"
            "  --http HOST:PORT where /metrics and the HTTP API listen (default 127.0.0.1:8080)\n");
}

int mr_cli_demo(int argc, char **argv)
{
    static char sets_buf[MAX_SETS][512];
    const char *sets[MAX_SETS];
    size_t nsets = 0;
    struct mr_run_options ro = {.buffer = mr_demo_config,
                                .buffer_len = mr_demo_config_len,
                                .buffer_name = "demo.yaml (built in)",
                                .drain_timeout_ms = 5000};
    const char *data_dir = "./millrace-demo";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--print-config") == 0) {
            fwrite(mr_demo_config, 1, mr_demo_config_len, stdout);
            return 0;
        }
        if (v == NULL || nsets + 2 >= MAX_SETS) {
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--duration") == 0) {
            struct mr_err err;
            if (mr_duration_parse(v, &ro.duration_ns, &err) != 0 || ro.duration_ns <= 0) {
                fprintf(stderr, "millrace demo: --duration: %s\n",
                        ro.duration_ns <= 0 ? "must be more than 0" : err.msg);
                return 2;
            }
        } else if (strcmp(a, "--speed") == 0) {
            char *end = NULL;
            double x = strtod(v, &end);
            if (end == v || *end != '\0' || x < 0 || x > 1000) {
                fprintf(stderr, "millrace demo: --speed takes a number from 0 to 1000 "
                                "(0: as fast as possible)\n");
                return 2;
            }
            snprintf(sets_buf[nsets], sizeof(sets_buf[0]), "inputs.plant.speed=%s", v);
            sets[nsets] = sets_buf[nsets];
            nsets++;
        } else if (strcmp(a, "--data-dir") == 0) {
            data_dir = v;
        } else if (strcmp(a, "--config") == 0) {
            ro.path = v;
        } else if (strcmp(a, "--set") == 0) {
            sets[nsets++] = v;
        } else if (strcmp(a, "--http") == 0) {
            snprintf(sets_buf[nsets], sizeof(sets_buf[0]), "http.listen=%s", v);
            sets[nsets] = sets_buf[nsets];
            nsets++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    /* Applied first, so an explicit --set journal.dir=... still wins. */
    char dir_set[4200];
    snprintf(dir_set, sizeof(dir_set), "journal.dir=%s", data_dir);
    const char *all[MAX_SETS + 1];
    all[0] = dir_set;
    for (size_t i = 0; i < nsets; i++) {
        all[i + 1] = sets[i];
    }
    ro.sets = all;
    ro.nsets = nsets + 1;
    printf("millrace demo: a simulated plant through the journal (%s), the stream engine and "
           "its analytics.\nA summary follows every few seconds; Ctrl-C stops cleanly.\n",
           data_dir);
    fflush(stdout);
    int rc = mr_run_config(&ro);
    if (rc == 0) {
        printf("\nThe journal is in %s. Look at it with, e.g.:\n"
               "  millrace journal topics --dir %s\n"
               "  millrace journal read --dir %s --topic features --format json | tail\n"
               "Run the demo again to continue from where it stopped.\n",
               data_dir, data_dir, data_dir);
    }
    return rc;
}
