/* Sparkplug B host-side decoding: a library the MQTT input calls for every message it receives
 * on an `spBv1.0/#` subscription. It is not a plugin and does no I/O.
 *
 * Topics: spBv1.0/<group>/<type>/<edge node>[/<device>]
 *   NBIRTH/DBIRTH  bind metric names to aliases and datatypes, emit the birth values
 *   NDATA/DDATA    emit values, metrics found by alias (or by name)
 *   NDEATH/DDEATH  emit a bad-quality record for every known metric of the node (and all its
 *                  devices) or of the device: their values are stale from now on
 *   STATE, NCMD, DCMD are not data for a host: counted and ignored.
 *
 * Records: asset = [prefix/]group/node[/device], signal = metric name, value typed by the
 * metric's datatype, time = metric timestamp, else payload timestamp, else the receive time the
 * caller passes (NDEATH stale records: always the receive time, as the will's timestamp is from
 * when the node connected); tag historical=true on is_historical metrics. Quality is good unless
 * the metric is null (bad) or carries an OPC-style "Quality" property (192 good, 64..191 uncertain,
 * below 64 bad).
 *
 * Sequence: every message of a node after NBIRTH (NDATA, DBIRTH, DDATA, DDEATH) carries
 * seq = previous + 1 mod 256. A gap, a data message before any birth, or an unknown alias makes
 * the state call hooks.rebirth(group, node): the caller publishes an NCMD built with
 * mr_sparkplug_rebirth_topic/mr_sparkplug_rebirth_encode. One request per node until it is
 * reborn, repeated after conf.rebirth_retry_ns. An NDEATH whose bdSeq differs from the
 * NBIRTH's belongs to an older session (the broker delivering a stale will) and is ignored.
 *
 * Memory: births allocate (their metric tables, once per birth); data messages do not: the
 * protobuf is unpacked into a fixed arena (conf.arena_bytes) that is reset per message, and
 * records go out in batches from a fixed array. Record strings borrow from the arena: they are
 * valid only during the hooks.records call. Every table has a hard cap (conf).
 *
 * Not thread-safe: one state per input, used on one thread.
 */
#ifndef MILLRACE_INPUTS_SPARKPLUG_H
#define MILLRACE_INPUTS_SPARKPLUG_H

#include <stddef.h>
#include <stdint.h>

#include "millrace/error.h"
#include "millrace/names.h"
#include "millrace/record.h"

/* Sparkplug DataType codes (specification 3.0, section 6.4.16). */
enum mr_sparkplug_type {
    MR_SPB_UNKNOWN = 0,
    MR_SPB_INT8 = 1,
    MR_SPB_INT16 = 2,
    MR_SPB_INT32 = 3,
    MR_SPB_INT64 = 4,
    MR_SPB_UINT8 = 5,
    MR_SPB_UINT16 = 6,
    MR_SPB_UINT32 = 7,
    MR_SPB_UINT64 = 8,
    MR_SPB_FLOAT = 9,
    MR_SPB_DOUBLE = 10,
    MR_SPB_BOOLEAN = 11,
    MR_SPB_STRING = 12,
    MR_SPB_DATETIME = 13,
    MR_SPB_TEXT = 14,
    MR_SPB_UUID = 15,
    MR_SPB_DATASET = 16,
    MR_SPB_BYTES = 17,
    MR_SPB_FILE = 18,
    MR_SPB_TEMPLATE = 19,
    MR_SPB_PROPERTYSET = 20,
    MR_SPB_PROPERTYSETLIST = 21,
    MR_SPB_INT8ARRAY = 22,
    MR_SPB_INT16ARRAY = 23,
    MR_SPB_INT32ARRAY = 24,
    MR_SPB_INT64ARRAY = 25,
    MR_SPB_UINT8ARRAY = 26,
    MR_SPB_UINT16ARRAY = 27,
    MR_SPB_UINT32ARRAY = 28,
    MR_SPB_UINT64ARRAY = 29,
    MR_SPB_FLOATARRAY = 30,
    MR_SPB_DOUBLEARRAY = 31,
    MR_SPB_BOOLEANARRAY = 32,
    MR_SPB_STRINGARRAY = 33,
    MR_SPB_DATETIMEARRAY = 34,
};

struct mr_sparkplug_conf {
    const char *asset_prefix; /* prepended to group/node/device with a '/'; NULL or "": none */
    uint32_t max_entities;    /* nodes plus devices tracked; 0: 4096 */
    uint32_t max_metrics;     /* metrics in one birth; 0: 10000 */
    size_t arena_bytes;       /* decode memory for one message; 0: 4 MiB */
    int64_t rebirth_retry_ns; /* repeat an unanswered rebirth request after; 0: 10 s */
};

struct mr_sparkplug_hooks {
    void *ctx;
    /* A batch of decoded records (borrowed, valid only during the call). A negative return
     * stops the message and is returned by mr_sparkplug_handle. */
    int (*records)(void *ctx, const struct mr_record *recs, size_t n);
    /* Ask the edge node for a rebirth (publish NCMD "Node Control/Rebirth"). reason is a short
     * phrase for the log ("sequence gap: expected 7, got 9"). May be NULL. */
    void (*rebirth)(void *ctx, const char *group, const char *node, const char *reason);
};

/* Counters for the metrics registry (all monotonic). */
struct mr_sparkplug_stats {
    uint64_t messages;  /* handled, of any type */
    uint64_t records;   /* emitted, stale ones included */
    uint64_t malformed; /* bad topic or payload bytes */
    uint64_t seq_gaps;
    uint64_t unknown_alias; /* data metrics with an alias (or name) no birth declared */
    uint64_t no_birth;      /* data or death for a node/device never born: dropped */
    uint64_t rebirths;      /* rebirth requests made */
    uint64_t unsupported;   /* metrics of a type not turned into records (DataSet, ...) */
    uint64_t stale;         /* records emitted as bad quality by a death */
    uint64_t stale_deaths;  /* NDEATH of an older session (bdSeq mismatch): ignored */
    uint64_t dropped;       /* metrics dropped: table caps, names table full, bad time */
};

struct mr_sparkplug;

/* names: where asset, signal and tag names are interned (borrowed, must outlive the state).
 * conf and hooks are copied; asset_prefix is copied. Returns 0, MR_EINVAL/MR_ECONFIG with err
 * naming the problem, or MR_ENOMEM. */
int mr_sparkplug_create(struct mr_sparkplug **out, struct mr_names *names,
                        const struct mr_sparkplug_conf *conf,
                        const struct mr_sparkplug_hooks *hooks, struct mr_err *err);
void mr_sparkplug_destroy(struct mr_sparkplug *sp);

/* Handle one MQTT message: topic (topic_len bytes, need not be NUL-terminated) and payload.
 * now_ns: the receive time (records without any timestamp get it; rebirth retries use it).
 * Returns 0 when the message was handled (protocol problems such as a sequence gap or an unknown
 * alias are counted and answered with a rebirth request, not errors); MR_EPARSE with err naming
 * the topic and the problem for a topic that is not Sparkplug B or bytes that do not decode;
 * MR_ENOMEM; or the negative return of hooks.records. */
int mr_sparkplug_handle(struct mr_sparkplug *sp, const char *topic, size_t topic_len,
                        const uint8_t *payload, size_t len, int64_t now_ns, struct mr_err *err);

void mr_sparkplug_stats_get(const struct mr_sparkplug *sp, struct mr_sparkplug_stats *out);

/* "spBv1.0/<group>/NCMD/<node>" into out (cap bytes, NUL-terminated). Returns the length, or
 * MR_ETOOBIG. */
long mr_sparkplug_rebirth_topic(const char *group, const char *node, char *out, size_t cap);
/* The NCMD payload: timestamp time_ms and one metric "Node Control/Rebirth" (Boolean) = true.
 * Returns the number of bytes written, or MR_ETOOBIG (64 bytes are always enough). */
long mr_sparkplug_rebirth_encode(uint64_t time_ms, uint8_t *out, size_t cap);

#endif
