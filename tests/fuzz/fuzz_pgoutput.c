/* libFuzzer target for the pgoutput decoder of the postgres_cdc input (src/inputs/
 * pgcdc_decode.c): the bytes a PostgreSQL server (or anything pretending to be one) streams.
 *
 * The input is a sequence of messages, each preceded by a 2-byte big-endian length, decoded in
 * order by one decoder (so Relation messages announced early shape how later Insert, Update
 * and Delete messages are mapped, as in a real session). Checks:
 *  - every answer is 0, PGCDC_COMMIT or a negative code, and every failure but MR_ETOOBIG
 *    leaves a message in err (the worker logs it and skips the change);
 *  - MR_ETOOBIG leaves the batch unchanged, and a message that did not fit an empty batch is
 *    not retried forever;
 *  - every record in the batch names an interned asset and signal, a known value type and
 *    quality, and borrows its strings from the batch's arena;
 * Any mismatch aborts. Build and run: tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/pgcdc_internal.h"
#include "millrace/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern const struct mr_plugin mr_input_postgres_cdc;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_pgoutput: check failed: %s (line %d)\n", #cond, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char conf_yaml[] = "address: \"host=127.0.0.1 port=1 dbname=mes\"\n"
                                "tables:\n"
                                "  - table: public.work_orders\n"
                                "    asset: \"plant1/{line}/{machine}\"\n"
                                "    signals: [qty, rate, status, done]\n"
                                "    tags: [order_no]\n"
                                "  - table: counts\n"
                                "    asset: plant1/counter\n";

static struct pgcdc_conf conf;
static struct mr_names *names;
static int ready;

static void setup(void)
{
    static struct mr_config_errors errs;
    CHECK(mr_section_load_buffer(&mr_input_postgres_cdc.conf, &conf, "fuzz.yaml", conf_yaml,
                                 strlen(conf_yaml), NULL, &errs) == 0);
    CHECK(mr_names_create(&names, 1u << 16, 1u << 22) == 0);
    ready = 1;
}

static void check_batch(const struct pgcdc_batch *b)
{
    CHECK(b->n <= b->cap);
    CHECK(b->used <= b->arena_cap);
    for (size_t i = 0; i < b->n; i++) {
        const struct mr_record *r = &b->recs[i];
        size_t len;
        CHECK(mr_names_str(names, r->asset, &len) != NULL && len > 0);
        CHECK(mr_names_str(names, r->signal, &len) != NULL && len > 0);
        CHECK(r->type >= MR_VALUE_F64 && r->type <= MR_VALUE_STRING);
        CHECK(r->quality <= MR_QUALITY_BAD);
        CHECK(r->ntags <= MR_RECORD_MAX_TAGS);
        if (r->type == MR_VALUE_STRING && r->v.str.len > 0) {
            CHECK(r->v.str.ptr >= b->arena && r->v.str.ptr + r->v.str.len <= b->arena + b->used);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        setup();
    }
    struct pgcdc_decoder dec;
    struct mr_err err;
    CHECK(pgcdc_decoder_init(&dec, &conf, names, "fuzz", &err) == 0);
    struct pgcdc_batch *b = pgcdc_batch_create(8, 512);
    CHECK(b != NULL);
    size_t pos = 0;
    while (pos + 2 <= size) {
        size_t len = ((size_t)data[pos] << 8) | data[pos + 1];
        pos += 2;
        if (len > size - pos) {
            len = size - pos;
        }
        const uint8_t *msg = data + pos;
        pos += len;
        for (int attempt = 0; attempt < 2; attempt++) {
            size_t n_before = b->n, used_before = b->used;
            mr_err_clear(&err);
            int rc = pgcdc_decode(&dec, msg, len, b, &err);
            CHECK(rc == 0 || rc == PGCDC_COMMIT || rc < 0);
            if (rc < 0 && rc != MR_ETOOBIG) {
                CHECK(err.msg[0] != '\0'); /* the worker logs it and skips the change */
            }
            check_batch(b);
            if (rc != MR_ETOOBIG) {
                break;
            }
            CHECK(b->n == n_before && b->used == used_before);
            /* Hand the batch over (empty it) and try once more, as the worker does; a row
             * that does not fit an empty batch is given up on. */
            if (b->n == 0) {
                break;
            }
            b->n = 0;
            b->used = 0;
        }
    }
    pgcdc_batch_destroy(b);
    pgcdc_decoder_fini(&dec);
    return 0;
}
