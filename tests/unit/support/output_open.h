/* Configure and start an output plugin the way the engine does, for the outputs' unit tests. */
#ifndef MILLRACE_TEST_OUTPUT_OPEN_H
#define MILLRACE_TEST_OUTPUT_OPEN_H

#include "millrace/plugin.h"

/* Load yaml into conf (plugin->conf.size bytes of the caller's, zeroed) and init a fresh
 * context of plugin with host. Returns 0 with *ctx set (release with plugin->output.fini, then
 * free), or the error code with err->msg saying why ("config: ..." with the first
 * configuration error, or "init: ..."); nothing to release then. */
int mr_test_output_open(const struct mr_plugin *plugin, void *conf, const char *yaml,
                        struct mr_output_host *host, void **ctx, struct mr_err *err);

#endif
