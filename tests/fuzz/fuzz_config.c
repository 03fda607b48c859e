/* libFuzzer target: arbitrary bytes as a config file.
 *
 * The bytes up to the first NUL are the file; what follows a NUL is one `--set` override, so
 * the override grafting is fuzzed too. The first line is also fed to the duration and size
 * parsers. Nothing may crash, leak or trip a sanitizer, whatever the input. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mr_config_errors errs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t file_len = nul != NULL ? (size_t)(nul - text) : size;
    char *set = NULL;
    struct mr_config_opts opts = {0};
    if (nul != NULL) {
        set = mr_strndup(nul + 1, size - file_len - 1);
        if (set == NULL) {
            return 0;
        }
        opts.sets = (const char *const *)&set;
        opts.nsets = 1;
    }

    struct mr_config *cfg = NULL;
    if (mr_config_load_buffer(&cfg, "fuzz.yaml", text, file_len, &opts, &errs) == 0) {
        mr_config_destroy(cfg);
    }
    for (size_t i = 0; i < errs.n; i++) {
        if (memchr(errs.msg[i], '\0', sizeof(errs.msg[i])) == NULL) {
            __builtin_trap(); /* every message is terminated */
        }
    }

    char line[80];
    const char *eol = memchr(text, '\n', file_len);
    size_t len = eol != NULL ? (size_t)(eol - text) : file_len;
    len = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
    memcpy(line, text, len);
    line[len] = '\0';
    int64_t ns;
    uint64_t bytes;
    struct mr_err err;
    (void)mr_duration_parse(line, &ns, &err);
    (void)mr_size_parse(line, &bytes, &err);
    mr_free(set);
    return 0;
}
