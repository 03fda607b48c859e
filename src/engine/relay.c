/* Relay de-duplication: see relay.h. */
#include <string.h>

#include "engine/relay.h"
#include "engine/name_hash.h"
#include "millrace/error.h"

static uint64_t kept_key(uint64_t stream, uint32_t partition)
{
    return stream ^ ((uint64_t)(partition + 1) * 0x9e3779b97f4a7c15ull);
}

int mr_relay_init(struct mr_relay *r)
{
    memset(r, 0, sizeof(*r));
    return mr_keymap_init(&r->kept, sizeof(int64_t), MR_RELAY_MAX_STREAMS);
}

void mr_relay_fini(struct mr_relay *r)
{
    mr_keymap_fini(&r->kept);
}

/* The hash of "node\0topic\0" + partition (little-endian): names hold no NUL, so the parts
 * cannot run into each other. Stored in the journal, so it must never change. */
uint64_t mr_relay_stream(const struct mr_record_origin *o)
{
    uint8_t buf[2 * 256 + 4];
    size_t ln = strnlen(o->node, 255), lt = strnlen(o->topic, 255);
    memcpy(buf, o->node, ln);
    size_t k = ln;
    buf[k++] = 0;
    memcpy(buf + k, o->topic, lt);
    k += lt;
    buf[k++] = 0;
    for (int b = 0; b < 4; b++) {
        buf[k++] = (uint8_t)(o->partition >> (8 * b));
    }
    return mr_hash_bytes(buf, k);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

void mr_relay_header(struct mr_batch_header *h, uint8_t buf[16], uint64_t stream, int64_t offset)
{
    put_le64(buf, stream);
    put_le64(buf + 8, (uint64_t)offset);
    *h = (struct mr_batch_header){.key = MR_RELAY_HEADER_KEY,
                                  .key_len = (int32_t)(sizeof(MR_RELAY_HEADER_KEY) - 1),
                                  .value = buf,
                                  .value_len = 16};
}

bool mr_relay_seen(const struct mr_relay *r, uint64_t stream, uint32_t partition, int64_t offset)
{
    const int64_t *kept = mr_keymap_find(&r->kept, kept_key(stream, partition));
    if (kept == NULL) {
        return false;
    }
    int64_t k;
    memcpy(&k, kept, sizeof(k));
    return offset <= k;
}

int mr_relay_note(struct mr_relay *r, uint64_t stream, uint32_t partition, int64_t offset)
{
    void *v;
    int inserted;
    int rc = mr_keymap_upsert(&r->kept, kept_key(stream, partition), &v, &inserted);
    if (rc != 0) {
        return rc;
    }
    int64_t k;
    memcpy(&k, v, sizeof(k));
    if (inserted || offset > k) {
        memcpy(v, &offset, sizeof(offset));
    }
    return 0;
}

void mr_relay_invalidate(struct mr_relay *r)
{
    mr_keymap_clear(&r->kept);
    r->recovered = false;
}

/* The origin mark of one stored record, if it has one. */
static bool origin_of(const struct mr_batch_record *rec, uint64_t *stream, int64_t *offset)
{
    size_t pos = 0;
    struct mr_batch_header h;
    const size_t klen = sizeof(MR_RELAY_HEADER_KEY) - 1;
    while (mr_batch_header_next(rec, &pos, &h) == 0) {
        if (h.key_len == (int32_t)klen && memcmp(h.key, MR_RELAY_HEADER_KEY, klen) == 0 &&
            h.value_len == 16) {
            *stream = get_le64(h.value);
            *offset = (int64_t)get_le64((const uint8_t *)h.value + 8);
            return true;
        }
    }
    return false;
}

int mr_relay_recover(struct mr_relay *r, struct mr_journal_topic *topic, struct mr_err *err)
{
    mr_keymap_clear(&r->kept);
    uint32_t np = mr_journal_topic_partitions(topic);
    for (uint32_t p = 0; p < np; p++) {
        struct mr_journal_reader *rd = NULL;
        int rc = mr_journal_reader_create(topic, p, MR_JOURNAL_EARLIEST, &rd);
        struct mr_batch_record rec;
        while (rc == 0 && (rc = mr_journal_reader_next(rd, &rec)) == 0) {
            uint64_t stream;
            int64_t offset;
            if (origin_of(&rec, &stream, &offset)) {
                rc = mr_relay_note(r, stream, p, offset);
            }
        }
        mr_journal_reader_destroy(rd);
        if (rc != MR_EEOF) {
            return MR_ERR_SET(err, rc, "cannot read back what %s[%u] kept: %s",
                              mr_journal_topic_name(topic), p, mr_strerror(rc));
        }
    }
    r->recovered = true;
    return 0;
}
