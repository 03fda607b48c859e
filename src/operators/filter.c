/* Operator `filter`: keeps the records for which a condition holds, drops the rest.
 *
 *   pipelines:
 *     hot_presses:
 *       from: [plc]
 *       steps:
 *         - type: filter
 *           where: "startswith(asset, 'plant1/line2') and signal == 'temp' and value > 80"
 *       to: [alarms]
 *
 * `where` is an expression (src/engine/expr.h has the whole language): comparisons, arithmetic,
 * and/or/not, value, time, signal, asset, quality, tags.NAME, abs/min/max/sqrt and the string
 * tests startswith/endswith/contains/match. A record is kept when the expression is true; false
 * and NaN (for example `value` of a text record, or a division by zero) drop it. The expression
 * is compiled once, when the configuration is checked and again at start; a mistake is reported
 * with its column. Kept records go on in runs straight from the input batch, uncopied.
 */
#include <string.h>

#include "engine/expr.h"
#include "millrace/alloc.h"
#include "operators/op_common.h"

extern const struct mr_plugin mr_operator_filter;

struct filter_conf {
    char *where;
};

struct filter_ctx {
    struct mr_op_base base;
    struct mr_expr *expr;
};

static void filter_check(void *conf, struct mr_config_check *chk)
{
    const struct filter_conf *c = conf;
    struct mr_expr *e = NULL;
    struct mr_err err = {0};
    if (mr_expr_compile(&e, c->where, NULL, &err) != 0) {
        mr_config_check_fail(chk, "where", "%s", err.msg);
    }
    mr_expr_destroy(e);
}

static const struct mr_field filter_fields[] = {
    {.name = "where",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct filter_conf, where),
     .flags = MR_FIELD_REQUIRED,
     .help = "Condition a record must meet to be kept, e.g. \"value > 80 and quality == 'good'\" "
             "or \"startswith(asset, 'plant1/line2')\". Names: value, time, signal, asset, "
             "quality, text, tags.NAME; functions: abs, min, max, sqrt, startswith, endswith, "
             "contains, match (glob). Records for which it is false or not a number are dropped."},
    {0},
};

static void filter_fini(void *ctx)
{
    struct filter_ctx *c = ctx;
    mr_expr_destroy(c->expr);
    c->expr = NULL;
}

static int filter_init(void *ctx, const void *conf, struct mr_operator_host *host,
                       struct mr_err *err)
{
    struct filter_ctx *c = ctx;
    const struct filter_conf *cf = conf;
    memset(c, 0, sizeof(*c));
    int rc = mr_op_base_init(&c->base, &mr_operator_filter, host, err);
    if (rc == 0) {
        rc = mr_expr_compile(&c->expr, cf->where, host->names, err);
    }
    return rc;
}

static int filter_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct filter_ctx *c = ctx;
    struct mr_operator_host *h = c->base.host;
    mr_counter_add(c->base.counters.records_in, n);
    size_t run = 0; /* start of the current run of kept records */
    size_t kept = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (mr_expr_test(c->expr, &recs[i])) {
            continue;
        }
        if (i > run) {
            rc = h->emit(h, recs + run, i - run);
            kept += i - run;
        }
        run = i + 1;
    }
    if (rc == 0 && n > run) {
        rc = h->emit(h, recs + run, n - run);
        kept += n - run;
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "passing records on failed: %s", mr_strerror(rc));
    }
    mr_counter_add(c->base.counters.records_out, kept);
    return 0;
}

const struct mr_plugin mr_operator_filter = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "filter",
    .help = "Keeps only the records that meet a condition (`where`), e.g. one line's "
            "temperatures above a limit; drops the others.",
    .conf = {.fields = filter_fields, .size = sizeof(struct filter_conf), .check = filter_check},
    .ctx_size = sizeof(struct filter_ctx),
    .op = {.init = filter_init, .process = filter_process, .fini = filter_fini},
};
