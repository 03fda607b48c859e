/* libFuzzer target for the Sparkplug B decoder (src/inputs/sparkplug.c).
 *
 * The input is a sequence of MQTT messages for one decoder state, so the fuzzer can reach data
 * after births, deaths after devices, gaps and rebirths:
 *
 *   +--------+-----------------+------------------+
 *   | u8 sel | u16 len (LE)    | len payload bytes| ... repeated until the input ends
 *   +--------+-----------------+------------------+
 *
 * sel picks the topic (message type x node x device) from a fixed table; a short last message
 * takes what is left. Checks:
 *  - mr_sparkplug_handle returns 0 or MR_EPARSE (with a message), never anything else;
 *  - every record has an interned asset and signal, a valid type and quality, a time, and a
 *    string value whose bytes can be read (ASan checks the read);
 *  - the counters add up (stale records are records) and rebirth hooks name a node;
 *  - the rebirth NCMD payload always encodes and decodes back.
 * Any mismatch aborts: that is the fuzzer's signal. Build and run: tests/fuzz/run.sh.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/sparkplug.h"
#include "millrace/names.h"
#include "sparkplug_b.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_sparkplug: check failed: %s (line %d)\n", #cond, __LINE__);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *const topics[] = {
    "spBv1.0/g/NBIRTH/n1",    "spBv1.0/g/NDATA/n1",    "spBv1.0/g/NDEATH/n1",
    "spBv1.0/g/DBIRTH/n1/d1", "spBv1.0/g/DDATA/n1/d1", "spBv1.0/g/DDEATH/n1/d1",
    "spBv1.0/g/DBIRTH/n1/d2", "spBv1.0/g/DDATA/n1/d2", "spBv1.0/g/NBIRTH/n2",
    "spBv1.0/g/NDATA/n2",     "spBv1.0/g/DDATA/n2/d1", "spBv1.0/STATE/host",
    "spBv1.0/g/NCMD/n1",      "spBv1.0/g/NDATA",       "other/topic",
    "spBv1.0/h/NBIRTH/n1",
};

struct seen {
    struct mr_names *names;
    uint64_t records;
    uint64_t rebirths;
};

static int on_records(void *ctx, const struct mr_record *recs, size_t n)
{
    struct seen *s = ctx;
    CHECK(n > 0 && n <= 64);
    for (size_t i = 0; i < n; i++) {
        const struct mr_record *r = &recs[i];
        CHECK(mr_names_str(s->names, r->asset, NULL) != NULL);
        CHECK(mr_names_str(s->names, r->signal, NULL) != NULL);
        CHECK(r->type >= MR_VALUE_F64 && r->type <= MR_VALUE_STRING);
        CHECK(r->quality <= MR_QUALITY_BAD);
        CHECK(r->ntags <= 1);
        if (r->type == MR_VALUE_STRING && r->v.str.len > 0) {
            volatile char c = r->v.str.ptr[r->v.str.len - 1];
            (void)c;
        }
    }
    s->records += n;
    return 0;
}

static void on_rebirth(void *ctx, const char *group, const char *node, const char *reason)
{
    struct seen *s = ctx;
    CHECK(group[0] != '\0' && node[0] != '\0' && reason[0] != '\0');
    s->rebirths++;
}

static void check_rebirth_command(uint64_t ms)
{
    uint8_t buf[64];
    long len = mr_sparkplug_rebirth_encode(ms, buf, sizeof buf);
    CHECK(len > 0);
    Spb__Payload *p = spb__payload__unpack(NULL, (size_t)len, buf);
    CHECK(p != NULL && p->n_metrics == 1 && p->timestamp == ms);
    CHECK(p->metrics[0]->boolean_value);
    spb__payload__free_unpacked(p, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seen seen = {0};
    struct mr_sparkplug *sp = NULL;
    struct mr_err err;
    struct mr_sparkplug_conf conf = {
        .max_entities = 8, .max_metrics = 64, .arena_bytes = 1u << 16, .rebirth_retry_ns = 1000};
    struct mr_sparkplug_hooks hooks = {.ctx = &seen, .records = on_records, .rebirth = on_rebirth};

    if (mr_names_create(&seen.names, 4096, 1u << 20) != 0) {
        return 0;
    }
    CHECK(mr_sparkplug_create(&sp, seen.names, &conf, &hooks, &err) == 0);
    int64_t now = 1700000000000000000;
    size_t at = 0;
    while (at < size) {
        uint8_t sel = data[at++];
        size_t len = 0;
        if (size - at >= 2) {
            len = (size_t)data[at] | (size_t)data[at + 1] << 8;
            at += 2;
        }
        if (len > size - at) {
            len = size - at;
        }
        const char *topic = topics[sel % (sizeof topics / sizeof topics[0])];
        memset(&err, 0, sizeof err);
        int rc = mr_sparkplug_handle(sp, topic, strlen(topic), data + at, len, now, &err);
        CHECK(rc == 0 || rc == MR_EPARSE);
        if (rc != 0) {
            CHECK(err.code == rc && err.msg[0] != '\0');
        }
        at += len;
        now += (sel & 0x80) ? 2000 : 1;
    }
    struct mr_sparkplug_stats st;
    mr_sparkplug_stats_get(sp, &st);
    CHECK(st.records == seen.records);
    CHECK(st.rebirths == seen.rebirths);
    CHECK(st.stale <= st.records);
    if (size >= 8) {
        uint64_t ms;
        memcpy(&ms, data, 8);
        check_rebirth_command(ms);
    }
    mr_sparkplug_destroy(sp);
    mr_names_destroy(seen.names);
    return 0;
}
