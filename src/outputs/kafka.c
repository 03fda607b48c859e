/* Output `kafka`: records produced to Apache Kafka with librdkafka, one JSON message per record,
 * counted as delivered only when the broker confirmed them.
 *
 *   outputs:
 *     to_kafka:
 *       type: kafka
 *       brokers: ["kafka1:9092", "kafka2:9092"]
 *       topic: plant.telemetry          # or topic_template: "plant.{asset}.{signal}"
 *       routing_key: asset              # message key: asset (default) | asset_signal | none
 *       compression_codec: zstd         # none | gzip | snappy | lz4 | zstd
 *       timeout: 30s                    # longest wait for the brokers' confirmation of a batch
 *       librdkafka:                     # raw librdkafka properties (TLS, SASL, tuning)
 *         security.protocol: SASL_SSL
 *         sasl.mechanisms: PLAIN
 *         sasl.username: edge-7
 *         sasl.password: ${KAFKA_PASSWORD}
 *
 * Message: key = the asset path (so all records of one asset go to one partition, in order, with
 * librdkafka's consistent_random partitioner), value = one JSON object
 *   {"time_ns":1764003000123456789,"time":"2025-11-24T16:50:00.123456789Z",
 *    "asset":"plant/line1/press","signal":"temp","value":21.5,"quality":"good","tags":{...}}
 * (mr_record_to_json plus time_ns), Kafka timestamp = the record's event time in ms.
 *
 * Delivery. The producer is idempotent (enable.idempotence=true, hence acks=all: every in-sync
 * replica has the record) and cannot be configured otherwise. write() produces every record of
 * the batch (waiting and polling while librdkafka's queue is full), then polls until librdkafka
 * has a delivery report for every one of them. Each message carries (batch generation, index)
 * as its opaque, so reports map back to the batch, and reports of an older, abandoned batch are
 * ignored. Only when every record has its report does write() answer:
 *  - all delivered, or refused for good (message too large, invalid record: host->reject with
 *    librdkafka's reason): MR_SINK_OK;
 *  - any record not confirmed within `timeout`, or failed with a transient error (brokers
 *    down, leader moving, timed out): MR_SINK_RETRY. Messages still queued are purged first;
 *    the host sends the whole batch again later. Records that did reach Kafka in the failed
 *    attempt are then written twice: delivery is at least once. The idempotent producer removes
 *    duplicates from librdkafka's own retries, never across these batch retries (or across a
 *    crash after Kafka confirmed but before the cursor was committed).
 *  - a fatal producer error (rd_kafka_fatal_error, authentication or authorization refused):
 *    MR_SINK_FATAL naming librdkafka's reason; the records stay in the journal.
 * librdkafka's own log lines and error events are queued to and served on the delivery thread
 * (log.queue), and logged rate-limited under the output's name.
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"
#include "millrace/plugin.h"

extern const struct mr_plugin mr_output_kafka;

/* The opaque of a message packs (generation << 32 | index): needs 64-bit pointers. */
_Static_assert(UINTPTR_MAX >= UINT64_MAX, "kafka output needs 64-bit pointers");

#define TOPIC_MAX       249   /* Kafka's limit on a topic name */
#define TOPIC_CACHE     4096u /* (asset, signal) -> topic handle, for topic_template */
#define BATCH_MAX       (1u << 20)
#define POLL_MS         50
#define FINI_FLUSH_MS   5000
#define JSON_PREFIX_MAX 40 /* {"time_ns":-9223372036854775808, */

enum key_kind { KEY_ASSET = 0, KEY_ASSET_SIGNAL = 1, KEY_NONE = 2 };
enum codec { CODEC_NONE = 0, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD };

static const char *const key_values[] = {"asset", "asset_signal", "none", NULL};
static const char *const codec_values[] = {"none", "gzip", "snappy", "lz4", "zstd", NULL};
static const char *const partitioner_values[] = {
    "consistent_random", "murmur2_random", "fnv1a_random", "consistent",
    "murmur2",           "fnv1a",          "random",       NULL};
static const char *const format_values[] = {"json", NULL};

struct kafka_conf {
    struct mr_strlist brokers;
    char *topic;
    char *topic_template;
    int routing_key;
    int partitioner;
    int compression_codec;
    uint64_t max_message_bytes;
    int data_format;
    int64_t timeout_ns;
    char *client_id;
    struct mr_strmap librdkafka;
};

/* Where a record of the batch stands. */
enum slot_state { SLOT_PENDING = 0, SLOT_DONE, SLOT_FAILED };

struct slot {
    uint8_t state;
    rd_kafka_resp_err_t err; /* SLOT_FAILED: librdkafka's answer */
};

struct topic_entry {
    uint64_t key; /* asset << 32 | signal (signal 0 when the template has no {signal}); 0: free */
    rd_kafka_topic_t *rkt;
};

struct kafka_ctx {
    const struct kafka_conf *conf;
    struct mr_output_host *host;
    struct mr_plugin_counters counters;
    rd_kafka_t *rk;
    rd_kafka_topic_t *fixed; /* the topic when there is no template */
    struct topic_entry *topics;
    size_t ntopics;
    bool template_signal;
    char *json;
    size_t json_cap;
    struct slot *slots;
    size_t slots_cap;
    uint32_t gen;     /* batch generation: a report of another generation is stale */
    size_t pending;   /* records of this generation without a report */
    size_t late;      /* reports of older generations (after a RETRY) */
    bool fatal_event; /* an error event that retrying cannot fix (authentication) */
    char fatal_msg[200];
    bool down;
    struct mr_log_ratelimit rl_log;
    struct mr_log_ratelimit rl_err;
    struct mr_log_ratelimit rl_reject;
};

static void kafka_check(void *conf, struct mr_config_check *chk)
{
    const struct kafka_conf *c = conf;
    for (size_t i = 0; i < c->brokers.n; i++) {
        if (c->brokers.items[i][0] == '\0') {
            mr_config_check_fail(chk, "brokers", "item %zu is empty: give host:port", i);
        }
    }
    if (c->topic_template != NULL && c->topic_template[0] == '\0') {
        mr_config_check_fail(chk, "topic_template", "is empty: remove it or give a template");
    }
    if (c->topic != NULL && (c->topic[0] == '\0' || strlen(c->topic) > TOPIC_MAX)) {
        mr_config_check_fail(chk, "topic", "must be 1..%d characters", TOPIC_MAX);
    }
}

static const struct mr_field kafka_fields[] = {
    {.name = "brokers",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct kafka_conf, brokers),
     .min = "1",
     .flags = MR_FIELD_REQUIRED,
     .help = "Kafka brokers to start from, as host:port (e.g. [\"kafka1:9092\"]); the rest of "
             "the cluster is discovered from them."},
    {.name = "topic",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct kafka_conf, topic),
     .def = "millrace",
     .help = "Kafka topic every record is written to (unless topic_template is set). The topic "
             "must exist, or the brokers must create topics automatically."},
    {.name = "topic_template",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct kafka_conf, topic_template),
     .help = "Topic per record, e.g. \"plant.{asset}\" or \"telemetry.{signal}\": {asset} is "
             "the asset path with '/' written as '.', {signal} the signal name; characters "
             "Kafka does not allow in topic names become '_'. Overrides topic."},
    {.name = "routing_key",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct kafka_conf, routing_key),
     .def = "asset",
     .values = key_values,
     .help = "Message key, which picks the partition: asset (the asset path: all records of "
             "a machine stay in one partition, in order), asset_signal (\"ASSET/SIGNAL\": "
             "spreads one busy machine, order kept per signal) or none (spread at random, no "
             "order)."},
    {.name = "partitioner",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct kafka_conf, partitioner),
     .def = "consistent_random",
     .values = partitioner_values,
     .help = "How a key becomes a partition (librdkafka's partitioner). consistent_random "
             "hashes the key (CRC32); murmur2_random matches the Java client, so Java "
             "producers of the same keys write to the same partitions."},
    {.name = "compression_codec",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct kafka_conf, compression_codec),
     .def = "none",
     .values = codec_values,
     .help = "Compression of message batches on the wire and on the brokers' disks: none, "
             "gzip, snappy, lz4 or zstd (best ratio; needs Kafka 2.1 or newer)."},
    {.name = "max_message_bytes",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct kafka_conf, max_message_bytes),
     .def = "1000000",
     .min = "4KiB",
     .max = "100MB",
     .help = "Largest message (one record as JSON) and request; keep it at or below the "
             "brokers' message.max.bytes. A larger record is refused and goes to the "
             "dead-letter topic (a block of 100,000 samples is about 1.2 MB)."},
    {.name = "data_format",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct kafka_conf, data_format),
     .def = "json",
     .values = format_values,
     .help = "Message value: json, one object per record with asset, signal, time (RFC 3339, "
             "ns), time_ns, value, quality and tags."},
    {.name = "timeout",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct kafka_conf, timeout_ns),
     .def = "30s",
     .min = "1s",
     .max = "10m",
     .help = "Longest wait for the brokers to confirm a batch; after it the batch is sent "
             "again later (brokers down or unreachable). Records wait in the journal meanwhile."},
    {.name = "client_id",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct kafka_conf, client_id),
     .def = "millrace",
     .help = "Name this producer gives the brokers (their logs, quotas and ACLs)."},
    {.name = "librdkafka",
     .type = MR_FIELD_STRING_MAP,
     .offset = offsetof(struct kafka_conf, librdkafka),
     .help = "More librdkafka producer properties, passed through as they are (e.g. "
             "security.protocol, ssl.ca.location, sasl.mechanisms, sasl.username, "
             "sasl.password, linger.ms). enable.idempotence and acks are fixed and cannot be "
             "set here."},
    {0},
};

/* ---- librdkafka callbacks (all served by rd_kafka_poll on the delivery thread) ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct kafka_ctx *c = opaque;
    uint64_t tag = (uint64_t)(uintptr_t)m->_private;
    uint32_t gen = (uint32_t)(tag >> 32);
    size_t i = (size_t)(tag & 0xffffffffu);
    if (gen != c->gen || i >= c->slots_cap || c->slots[i].state != SLOT_PENDING) {
        c->late++; /* a message of an abandoned batch: that batch is being sent again */
        return;
    }
    c->slots[i].state = m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? SLOT_DONE : SLOT_FAILED;
    c->slots[i].err = m->err;
    c->pending--;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_ctx *c = opaque;
    char buf[200];
    if (err == RD_KAFKA_RESP_ERR__FATAL && rd_kafka_fatal_error(rk, buf, sizeof(buf)) != 0) {
        reason = buf;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
        err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
        err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
        c->fatal_event = true;
        snprintf(c->fatal_msg, sizeof(c->fatal_msg), "%s", reason);
    }
    if (err != RD_KAFKA_RESP_ERR__TRANSPORT) { /* librdkafka's own log line says it already */
        MR_LOG_RL(&c->rl_err, MR_LOG_WARN, c->host->name, "kafka: %s", reason);
    }
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct kafka_ctx *c = rd_kafka_opaque(rk);
    /* syslog levels; a broker that cannot be reached (3, "FAIL") is a warning for us: the
     * records wait in the journal. */
    enum mr_log_level l = level <= 2   ? MR_LOG_ERROR
                          : level <= 4 ? MR_LOG_WARN
                          : level == 5 ? MR_LOG_INFO
                                       : MR_LOG_DEBUG;
    MR_LOG_RL(&c->rl_log, l, c->host->name, "librdkafka %s: %s", fac, buf);
}

/* ---- producer setup ---- */

static int conf_set(rd_kafka_conf_t *rc, const char *key, const char *value, const char *from,
                    struct mr_err *err)
{
    char why[256];
    if (rd_kafka_conf_set(rc, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        return MR_ERR_SET(err, MR_ECONFIG, "%s%s: %s", from, key, why);
    }
    return 0;
}

static int brokers_join(const struct kafka_conf *cf, char *out, size_t cap, struct mr_err *err)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < cf->brokers.n; i++) {
        int w = snprintf(out + used, cap - used, "%s%s", i > 0 ? "," : "", cf->brokers.items[i]);
        if (w < 0 || (size_t)w >= cap - used) {
            return MR_ERR_SET(err, MR_ECONFIG, "brokers: list too long");
        }
        used += (size_t)w;
    }
    if (used == 0) {
        return MR_ERR_SET(err, MR_ECONFIG, "brokers: give at least one host:port");
    }
    return 0;
}

/* Properties of ours, set after the user's map. Those marked `fixed` may not be in the map. */
static int conf_ours(struct kafka_ctx *c, rd_kafka_conf_t *rc, struct mr_err *err)
{
    const struct kafka_conf *cf = c->conf;
    char brokers[4096], maxb[32], tmo[32];
    int rv = brokers_join(cf, brokers, sizeof(brokers), err);
    if (rv != 0) {
        return rv;
    }
    snprintf(maxb, sizeof(maxb), "%" PRIu64, cf->max_message_bytes);
    snprintf(tmo, sizeof(tmo), "%" PRId64, cf->timeout_ns / 1000000);
    const struct {
        const char *key, *value;
    } props[] = {
        {"bootstrap.servers", brokers},
        {"client.id", cf->client_id},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"compression.codec", codec_values[cf->compression_codec]},
        {"partitioner", partitioner_values[cf->partitioner]},
        {"message.max.bytes", maxb},
        /* librdkafka gives up on a message when we do, so an abandoned batch leaves little
         * behind that could still arrive later as a duplicate. */
        {"message.timeout.ms", tmo},
        {"log.queue", "true"},
    };
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        rv = conf_set(rc, props[i].key, props[i].value, "", err);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int conf_build(struct kafka_ctx *c, rd_kafka_conf_t *rc, struct mr_err *err)
{
    const struct kafka_conf *cf = c->conf;
    static const char *const fixed[] = {
        "enable.idempotence",  "acks",      "request.required.acks", "message.timeout.ms",
        "delivery.timeout.ms", "log.queue", "bootstrap.servers",     "metadata.broker.list"};
    for (size_t i = 0; i < cf->librdkafka.n; i++) {
        const struct mr_strpair *p = &cf->librdkafka.items[i];
        for (size_t f = 0; f < sizeof(fixed) / sizeof(fixed[0]); f++) {
            if (strcmp(p->key, fixed[f]) == 0) {
                return MR_ERR_SET(err, MR_ECONFIG,
                                  "librdkafka.%s: set by millrace (idempotent producer, "
                                  "acks=all, timeout, brokers) and cannot be changed here",
                                  p->key);
            }
        }
        int rv = conf_set(rc, p->key, p->value, "librdkafka.", err);
        if (rv != 0) {
            return rv;
        }
    }
    int rv = conf_ours(c, rc, err);
    if (rv != 0) {
        return rv;
    }
    rd_kafka_conf_set_opaque(rc, c);
    rd_kafka_conf_set_dr_msg_cb(rc, on_delivery);
    rd_kafka_conf_set_error_cb(rc, on_error);
    rd_kafka_conf_set_log_cb(rc, on_log);
    return 0;
}

/* ---- topics ---- */

static size_t put_name(char *out, size_t used, size_t cap, const char *s)
{
    for (; *s != '\0' && used + 1 < cap; s++) {
        char ch = *s;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        out[used++] = ch == '/' ? '.' : ok ? ch : '_';
    }
    return used;
}

/* The topic name of a record under topic_template, into out (TOPIC_MAX + 1 bytes). */
static void topic_render(const struct kafka_ctx *c, const struct mr_record *rec, char *out)
{
    const char *t = c->conf->topic_template;
    size_t used = 0;
    const size_t cap = TOPIC_MAX + 1;
    while (*t != '\0' && used + 1 < cap) {
        if (strncmp(t, "{asset}", 7) == 0) {
            const char *a = mr_names_str(c->host->names, rec->asset, NULL);
            used = put_name(out, used, cap, a != NULL ? a : "unknown");
            t += 7;
        } else if (strncmp(t, "{signal}", 8) == 0) {
            const char *s = mr_names_str(c->host->names, rec->signal, NULL);
            used = put_name(out, used, cap, s != NULL ? s : "unknown");
            t += 8;
        } else {
            char one[2] = {*t++, '\0'};
            used = put_name(out, used, cap, one);
        }
    }
    out[used] = '\0';
}

/* The topic handle of a record: the fixed one, or the cached one of its (asset, signal). A new
 * handle beyond the cache's capacity is returned with *owned set (destroy after producing). */
static rd_kafka_topic_t *topic_of(struct kafka_ctx *c, const struct mr_record *rec, bool *owned)
{
    *owned = false;
    if (c->fixed != NULL) {
        return c->fixed;
    }
    uint64_t key = (uint64_t)rec->asset << 32 | (c->template_signal ? rec->signal : 0);
    key = key != 0 ? key : 1; /* 0 marks a free entry; (0, 0) is not a valid record anyway */
    size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 52) & (TOPIC_CACHE - 1);
    for (size_t probe = 0; probe < TOPIC_CACHE; probe++) {
        struct topic_entry *e = &c->topics[(h + probe) & (TOPIC_CACHE - 1)];
        if (e->key == key) {
            return e->rkt;
        }
        if (e->key == 0) {
            if (c->ntopics >= TOPIC_CACHE * 3 / 4) {
                break; /* keep probes short: further topics are not cached */
            }
            char name[TOPIC_MAX + 1];
            topic_render(c, rec, name);
            e->rkt = rd_kafka_topic_new(c->rk, name, NULL);
            if (e->rkt != NULL) {
                e->key = key;
                c->ntopics++;
            }
            return e->rkt;
        }
    }
    char name[TOPIC_MAX + 1];
    topic_render(c, rec, name);
    *owned = true;
    return rd_kafka_topic_new(c->rk, name, NULL);
}

/* ---- one record ---- */

/* The message value into c->json. Returns its length, or MR_ETOOBIG / MR_EINVAL. */
static long render_json(struct kafka_ctx *c, const struct mr_record *rec)
{
    int p = snprintf(c->json, JSON_PREFIX_MAX, "{\"time_ns\":%" PRId64 ",", rec->time_ns);
    /* mr_record_to_json writes "{...}" over our trailing ',': put it back afterwards. */
    long n = mr_record_to_json(rec, c->host->names, c->json + p - 1, c->json_cap - (size_t)p + 1);
    if (n < 0) {
        return n;
    }
    c->json[p - 1] = ',';
    return n + p - 1;
}

static size_t key_render(const struct kafka_ctx *c, const struct mr_record *rec, char *out,
                         size_t cap, const char **key)
{
    size_t alen = 0;
    const char *a = mr_names_str(c->host->names, rec->asset, &alen);
    *key = a;
    if (a == NULL || c->conf->routing_key == KEY_NONE) {
        *key = NULL;
        return 0;
    }
    if (c->conf->routing_key == KEY_ASSET) {
        return alen;
    }
    const char *s = mr_names_str(c->host->names, rec->signal, NULL);
    int w = snprintf(out, cap, "%s/%s", a, s != NULL ? s : "");
    *key = out;
    return w < 0 ? 0 : (size_t)w < cap ? (size_t)w : cap - 1;
}

/* Errors a retry of the same record cannot fix: the record goes to the dead-letter topic. */
static bool err_permanent(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
        return true;
    default:
        return false;
    }
}

/* Errors of the whole output (retrying cannot help until someone fixes the setup). */
static bool err_fatal(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return true;
    default:
        return false;
    }
}

static int answer_fatal(struct kafka_ctx *c, rd_kafka_resp_err_t e, struct mr_err *err)
{
    char buf[200];
    const char *why = rd_kafka_err2str(e);
    if (rd_kafka_fatal_error(c->rk, buf, sizeof(buf)) != 0) {
        why = buf;
    } else if (c->fatal_event) {
        why = c->fatal_msg;
    }
    mr_counter_add(c->counters.errors, 1);
    MR_ERR_SET(err, MR_EINVAL, "kafka producer cannot go on: %s (fix and restart)", why);
    return MR_SINK_FATAL;
}

/* Produce recs[i]. Returns 0 (queued or settled: rejected now), or an MR_SINK_* answer. */
static int produce_one(struct kafka_ctx *c, const struct mr_record *rec, size_t i, int64_t deadline,
                       struct mr_err *err)
{
    long len = render_json(c, rec);
    if (len < 0) {
        char why[160];
        snprintf(why, sizeof(why), "%s",
                 len == MR_ETOOBIG ? "record larger than max_message_bytes as JSON"
                                   : "invalid record (unknown name or value type)");
        c->host->reject(c->host, i, why);
        c->slots[i].state = SLOT_DONE;
        return 0;
    }
    char kbuf[1024];
    const char *key;
    size_t klen = key_render(c, rec, kbuf, sizeof(kbuf), &key);
    bool owned;
    rd_kafka_topic_t *rkt = topic_of(c, rec, &owned);
    if (rkt == NULL) {
        MR_ERR_SET(err, MR_ENOMEM, "cannot create a topic handle: %s",
                   rd_kafka_err2str(rd_kafka_last_error()));
        return MR_SINK_RETRY;
    }
    uint64_t tag = (uint64_t)c->gen << 32 | (uint64_t)i;
    rd_kafka_resp_err_t e;
    for (;;) {
        e = rd_kafka_producev(c->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_VALUE(c->json, (size_t)len), RD_KAFKA_V_KEY(key, klen),
                              RD_KAFKA_V_TIMESTAMP(rec->time_ns / 1000000),
                              RD_KAFKA_V_OPAQUE((void *)(uintptr_t)tag), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || mr_clock_mono_ns() > deadline) {
            break;
        }
        rd_kafka_poll(c->rk, POLL_MS); /* reports free room in the queue */
    }
    if (owned) {
        rd_kafka_topic_destroy(rkt);
    }
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        c->pending++;
        return 0;
    }
    if (err_permanent(e)) {
        c->host->reject(c->host, i, rd_kafka_err2str(e));
        c->slots[i].state = SLOT_DONE;
        return 0;
    }
    if (err_fatal(e)) {
        return answer_fatal(c, e, err);
    }
    MR_ERR_SET(err, MR_EAGAIN, "cannot queue record %zu: %s", i, rd_kafka_err2str(e));
    return MR_SINK_RETRY;
}

/* ---- the batch ---- */

static int slots_reserve(struct kafka_ctx *c, size_t n)
{
    if (n <= c->slots_cap) {
        return 0;
    }
    if (n > BATCH_MAX) {
        return MR_ETOOBIG;
    }
    struct slot *s = mr_realloc(c->slots, n * sizeof(*s));
    if (s == NULL) {
        return MR_ENOMEM;
    }
    c->slots = s;
    c->slots_cap = n;
    return 0;
}

/* Give up on the batch in flight: drop what librdkafka has not sent yet (what is on the wire
 * may still arrive: the duplicates of at-least-once), and take a new generation so its late
 * reports are ignored. */
static void batch_abandon(struct kafka_ctx *c)
{
    rd_kafka_purge(c->rk, RD_KAFKA_PURGE_F_QUEUE);
    c->gen++;
    c->pending = 0;
    rd_kafka_poll(c->rk, 0);
}

static int batch_retry(struct kafka_ctx *c, struct mr_err *err, const char *fmt, size_t k, size_t n,
                       const char *why)
{
    mr_counter_add(c->counters.errors, 1);
    MR_ERR_SET(err, MR_EAGAIN, fmt, k, n, why);
    if (!c->down) {
        c->down = true;
        MR_LOG_WARN(c->host->name, "%s; records wait in the journal", err->msg);
    }
    batch_abandon(c);
    return MR_SINK_RETRY;
}

/* Every record has its report: settle the batch. */
static int batch_settle(struct kafka_ctx *c, size_t n, struct mr_err *err)
{
    size_t failed = 0, first = 0, rejected = 0;
    for (size_t i = 0; i < n; i++) {
        if (c->slots[i].state != SLOT_FAILED) {
            continue;
        }
        rd_kafka_resp_err_t e = c->slots[i].err;
        if (err_fatal(e)) {
            return answer_fatal(c, e, err);
        }
        if (!err_permanent(e) && failed++ == 0) {
            first = i;
        }
    }
    if (failed > 0) {
        return batch_retry(c, err, "%zu of %zu records not delivered: %s", failed, n,
                           rd_kafka_err2str(c->slots[first].err));
    }
    /* Rejections only now, with the answer OK: a batch sent again is rejected again. */
    for (size_t i = 0; i < n; i++) {
        if (c->slots[i].state == SLOT_FAILED) {
            rejected++;
            c->host->reject(c->host, i, rd_kafka_err2str(c->slots[i].err));
        }
    }
    if (rejected > 0) {
        MR_LOG_RL(&c->rl_reject, MR_LOG_WARN, c->host->name,
                  "kafka refused %zu of %zu records for good (to the dead-letter topic)", rejected,
                  n);
    }
    if (c->down) {
        c->down = false;
        MR_LOG_INFO(c->host->name, "kafka confirms deliveries again");
    }
    mr_counter_add(c->counters.records_out, n - rejected);
    return MR_SINK_OK;
}

static int kafka_write(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct kafka_ctx *c = ctx;
    mr_counter_add(c->counters.records_in, n);
    if (slots_reserve(c, n) != 0) {
        MR_ERR_SET(err, MR_ENOMEM, "no memory to track a batch of %zu records", n);
        return MR_SINK_RETRY;
    }
    c->gen++;
    c->pending = 0;
    memset(c->slots, 0, n * sizeof(*c->slots));
    int64_t deadline = mr_clock_mono_ns() + c->conf->timeout_ns;
    for (size_t i = 0; i < n; i++) {
        int answer = produce_one(c, &recs[i], i, deadline, err);
        if (answer == MR_SINK_RETRY) {
            char why[sizeof(err->msg)];
            snprintf(why, sizeof(why), "%s", err->msg);
            return batch_retry(c, err, "%zu of %zu records not queued: %s", n - i, n, why);
        }
        if (answer != 0) {
            batch_abandon(c);
            return answer;
        }
    }
    while (c->pending > 0 && mr_clock_mono_ns() < deadline) {
        rd_kafka_poll(c->rk, POLL_MS);
        if (c->fatal_event || rd_kafka_fatal_error(c->rk, NULL, 0) != 0) {
            batch_abandon(c);
            return answer_fatal(c, RD_KAFKA_RESP_ERR__FATAL, err);
        }
    }
    if (c->pending > 0) {
        return batch_retry(c, err,
                           "%zu of %zu records not confirmed by kafka within the "
                           "timeout%s",
                           c->pending, n, " (brokers down or unreachable?)");
    }
    return batch_settle(c, n, err);
}

static int kafka_flush(void *ctx, struct mr_err *err)
{
    (void)ctx;
    (void)err;
    return MR_SINK_OK; /* write answers only after kafka confirmed its records */
}

static void kafka_fini(void *ctx)
{
    struct kafka_ctx *c = ctx;
    if (c->rk != NULL) {
        /* Every batch answered OK is confirmed; what is left belongs to an abandoned batch the
         * journal still holds: drop what is queued, give what is on the wire a bounded wait. */
        rd_kafka_purge(c->rk, RD_KAFKA_PURGE_F_QUEUE);
        rd_kafka_flush(c->rk, FINI_FLUSH_MS);
    }
    for (size_t i = 0; c->topics != NULL && i < TOPIC_CACHE; i++) {
        if (c->topics[i].rkt != NULL) {
            rd_kafka_topic_destroy(c->topics[i].rkt);
        }
    }
    if (c->fixed != NULL) {
        rd_kafka_topic_destroy(c->fixed);
    }
    if (c->rk != NULL) {
        rd_kafka_destroy(c->rk);
    }
    mr_free(c->topics);
    mr_free(c->json);
    mr_free(c->slots);
    memset(c, 0, sizeof(*c));
}

static int kafka_init(void *ctx, const void *conf, struct mr_output_host *host, struct mr_err *err)
{
    struct kafka_ctx *c = ctx;
    memset(c, 0, sizeof(*c));
    c->conf = conf;
    c->host = host;
    const struct kafka_conf *cf = c->conf;
    rd_kafka_conf_t *rc = rd_kafka_conf_new();
    int rv = rc != NULL ? conf_build(c, rc, err) : MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    if (rv != 0) {
        goto fail;
    }
    char why[512];
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rc, why, sizeof(why));
    if (c->rk == NULL) {
        rv = MR_ERR_SET(err, MR_ECONFIG, "cannot start the kafka producer: %s", why);
        goto fail;
    }
    rc = NULL;                           /* owned by rk now */
    rd_kafka_set_log_queue(c->rk, NULL); /* log lines to the main queue: served by our polls */
    c->json_cap = (size_t)cf->max_message_bytes + JSON_PREFIX_MAX;
    c->json = mr_malloc(c->json_cap);
    rv = c->json != NULL ? slots_reserve(c, 1024) : MR_ENOMEM;
    if (rv == 0 && cf->topic_template != NULL) {
        c->template_signal = strstr(cf->topic_template, "{signal}") != NULL;
        c->topics = mr_calloc(TOPIC_CACHE, sizeof(*c->topics));
        rv = c->topics != NULL ? 0 : MR_ENOMEM;
    } else if (rv == 0 && (c->fixed = rd_kafka_topic_new(c->rk, cf->topic, NULL)) == NULL) {
        rv = MR_ERR_SET(err, MR_ECONFIG, "topic '%s': %s", cf->topic,
                        rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    if (rv == 0) {
        rv = mr_plugin_counters_register(host->metrics, &mr_output_kafka, host->name, &c->counters);
    }
    if (rv != 0) {
        MR_ERR_SET(err, rv, "kafka output: %s", mr_strerror(rv));
        goto fail;
    }
    return 0;
fail:
    if (rc != NULL) {
        rd_kafka_conf_destroy(rc);
    }
    kafka_fini(c);
    return rv;
}

const struct mr_plugin mr_output_kafka = {
    .kind = MR_PLUGIN_OUTPUT,
    .name = "kafka",
    .help = "Apache Kafka producer (librdkafka): one JSON message per record, keyed by asset so "
            "each machine stays in order in one partition; idempotent, acks=all, compression. A "
            "record counts as delivered only when the brokers confirmed it, so outages and "
            "restarts lose nothing (at least once).",
    .conf = {.fields = kafka_fields, .size = sizeof(struct kafka_conf), .check = kafka_check},
    .ctx_size = sizeof(struct kafka_ctx),
    .output = {.init = kafka_init, .write = kafka_write, .flush = kafka_flush, .fini = kafka_fini},
};
