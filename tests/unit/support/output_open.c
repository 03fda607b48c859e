/* Configure and start an output plugin: see output_open.h. */
#include "support/output_open.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/config.h"

int mr_test_output_open(const struct mr_plugin *plugin, void *conf, const char *yaml,
                        struct mr_output_host *host, void **ctx, struct mr_err *err)
{
    *ctx = NULL;
    struct mr_config_errors *errs = calloc(1, sizeof(*errs));
    if (errs == NULL) {
        snprintf(err->msg, sizeof(err->msg), "config: out of memory");
        return MR_ENOMEM;
    }
    int rc = mr_section_load_buffer(&plugin->conf, conf, "t.yaml", yaml, strlen(yaml), NULL, errs);
    if (rc != 0) {
        snprintf(err->msg, sizeof(err->msg), "config: %.240s", errs->msg[0]);
        free(errs);
        return rc;
    }
    free(errs);
    void *c = calloc(1, plugin->ctx_size != 0 ? plugin->ctx_size : 1);
    struct mr_err e = {0};
    rc = c == NULL ? MR_ENOMEM : plugin->output.init(c, conf, host, &e);
    if (rc != 0) {
        snprintf(err->msg, sizeof(err->msg), "init: %.240s",
                 e.msg[0] != '\0' ? e.msg : mr_strerror(rc));
        err->code = rc;
        free(c);
        mr_section_free(&plugin->conf, conf);
        return rc;
    }
    *ctx = c;
    return 0;
}
