/* Operator `route`: sends records that meet a condition to a journal topic of their own.
 *
 *   steps:
 *     - type: route
 *       routes:
 *         - {where: "quality == 'bad'", to: quarantine}
 *         - {where: "startswith(asset, 'plant1/line2')", to: line2_raw, copy: true}
 *
 * Each record is tested against the routes in order; the FIRST route whose `where` is true
 * takes it: the record goes to that route's topic (a side output) and leaves the chain, unless
 * the route says `copy: true`, in which case it also continues to the next step. Records that
 * match no route continue unchanged. Conditions use the expression language of `filter`
 * (src/engine/expr.h). Routes naming the same topic share one side output.
 *
 * Records are copied into one buffer per destination and emitted in batches, so each topic
 * sees its records in input order.
 */
#include <string.h>

#include "engine/expr.h"
#include "millrace/alloc.h"
#include "operators/op_common.h"

#define MAX_ROUTES 32

extern const struct mr_plugin mr_operator_route;

struct route_rule_conf {
    char *where;
    char *to;
    bool copy;
};

struct route_conf {
    struct mr_conf_list routes; /* of struct route_rule_conf */
};

struct route_rule {
    struct mr_expr *expr;
    struct mr_op_buf *out; /* shared by the routes of one topic */
    bool copy;
};

struct route_ctx {
    struct mr_op_base base;
    struct route_rule rules[MAX_ROUTES];
    struct mr_op_buf sides[MAX_ROUTES];
    size_t nrules;
    size_t nsides;
    struct mr_op_buf main;
};

static void rule_check(void *conf, struct mr_config_check *chk)
{
    const struct route_rule_conf *c = conf;
    struct mr_expr *e = NULL;
    struct mr_err err = {0};
    if (mr_expr_compile(&e, c->where, NULL, &err) != 0) {
        mr_config_check_fail(chk, "where", "%s", err.msg);
    }
    mr_expr_destroy(e);
    if (c->to[0] == '\0') {
        mr_config_check_fail(chk, "to", "name the topic the matching records go to");
    }
}

static const struct mr_field rule_fields[] = {
    {.name = "where",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct route_rule_conf, where),
     .flags = MR_FIELD_REQUIRED,
     .help = "Condition (same language as filter's `where`) a record must meet to take this "
             "route."},
    {.name = "to",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct route_rule_conf, to),
     .flags = MR_FIELD_REQUIRED,
     .help = "Journal topic the matching records are written to."},
    {.name = "copy",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct route_rule_conf, copy),
     .def = "false",
     .help = "Also pass the matching records on to the next step (a copy goes to the topic)."},
    {0},
};

static const struct mr_section rule_section = {
    .fields = rule_fields,
    .size = sizeof(struct route_rule_conf),
    .check = rule_check,
};

static const struct mr_field route_fields[] = {
    {.name = "routes",
     .type = MR_FIELD_SECTION_LIST,
     .offset = offsetof(struct route_conf, routes),
     .section = &rule_section,
     .min = "1",
     .max = "32",
     .flags = MR_FIELD_REQUIRED,
     .help = "Routes tried in order; the first whose condition holds takes the record. Records "
             "matching none continue down the pipeline."},
    {0},
};

static void route_fini(void *ctx)
{
    struct route_ctx *c = ctx;
    for (size_t i = 0; i < c->nrules; i++) {
        mr_expr_destroy(c->rules[i].expr);
    }
    for (size_t i = 0; i < c->nsides; i++) {
        mr_op_buf_fini(&c->sides[i]);
    }
    mr_op_buf_fini(&c->main);
    memset(c, 0, sizeof(*c));
}

/* The side buffer of `topic`, opening the side output on first use. */
static int side_for(struct route_ctx *c, const struct route_conf *cf, size_t rule,
                    struct mr_op_buf **out, struct mr_err *err)
{
    const struct route_rule_conf *rules = cf->routes.items;
    for (size_t j = 0; j < rule; j++) {
        if (strcmp(rules[j].to, rules[rule].to) == 0) {
            *out = c->rules[j].out;
            return 0;
        }
    }
    struct mr_operator_host *h = c->base.host;
    int port = h->side_open(h, rules[rule].to, err);
    if (port < 0) {
        return port;
    }
    struct mr_op_buf *b = &c->sides[c->nsides];
    int rc = mr_op_buf_init(b, &c->base, port);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "out of memory");
    }
    c->nsides++;
    *out = b;
    return 0;
}

static int route_init(void *ctx, const void *conf, struct mr_operator_host *host,
                      struct mr_err *err)
{
    struct route_ctx *c = ctx;
    const struct route_conf *cf = conf;
    const struct route_rule_conf *rules = cf->routes.items;
    memset(c, 0, sizeof(*c));
    int rc = mr_op_base_init(&c->base, &mr_operator_route, host, err);
    if (rc == 0 && cf->routes.n > MAX_ROUTES) {
        rc = MR_ERR_SET(err, MR_ECONFIG, "at most %d routes", MAX_ROUTES);
    }
    if (rc == 0 && mr_op_buf_init(&c->main, &c->base, 0) != 0) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == 0 && i < cf->routes.n; i++) {
        struct route_rule *r = &c->rules[i];
        r->copy = rules[i].copy;
        rc = mr_expr_compile(&r->expr, rules[i].where, host->names, err);
        if (rc == 0) {
            c->nrules++;
            rc = side_for(c, cf, i, &r->out, err);
        }
    }
    if (rc != 0) {
        route_fini(c);
    }
    return rc;
}

static int route_one(struct route_ctx *c, const struct mr_record *rec)
{
    for (size_t i = 0; i < c->nrules; i++) {
        struct route_rule *r = &c->rules[i];
        if (!mr_expr_test(r->expr, rec)) {
            continue;
        }
        int rc = mr_op_buf_push(r->out, rec);
        if (rc == 0 && r->copy) {
            rc = mr_op_buf_push(&c->main, rec);
        }
        return rc;
    }
    return mr_op_buf_push(&c->main, rec);
}

static int route_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct route_ctx *c = ctx;
    mr_counter_add(c->base.counters.records_in, n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = route_one(c, &recs[i]);
    }
    /* Everything buffered borrows from this batch: emit it now, or drop it after a failure
     * (the error goes to the host). */
    for (size_t i = 0; i < c->nsides; i++) {
        rc = rc == 0 ? mr_op_buf_flush(&c->sides[i]) : rc;
        c->sides[i].n = 0;
    }
    rc = rc == 0 ? mr_op_buf_flush(&c->main) : rc;
    c->main.n = 0;
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "passing records on failed: %s", mr_strerror(rc));
    }
    return 0;
}

const struct mr_plugin mr_operator_route = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "route",
    .help = "Sends records that meet a condition to a topic of their own (for example bad-quality "
            "readings to a quarantine topic); the rest continue down the pipeline.",
    .conf = {.fields = route_fields, .size = sizeof(struct route_conf)},
    .ctx_size = sizeof(struct route_ctx),
    .op = {.init = route_init, .process = route_process, .fini = route_fini},
};
