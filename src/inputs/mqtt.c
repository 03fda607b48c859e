/* Input `mqtt`: subscribes to an MQTT broker (libmosquitto) and turns messages into records.
 *
 *   inputs:
 *     plant_mqtt:
 *       type: mqtt
 *       servers: ["tcp://127.0.0.1:1883"]      # ssl://host:8883 for TLS
 *       topic_template: "plant/{site}/{line}/{machine}/{signal}"
 *       # topics: ["plant/#"]                   # default: the template with + for each {..}
 *       qos: 1
 *       client_id: millrace-edge1
 *       persistent_session: true                # the broker queues while we are away
 *       data_format: json                       # json | value | influx | sparkplug_b
 *       json_value_key: value
 *       json_time_key: time
 *       json_quality_key: quality
 *
 *     plant_sparkplug:
 *       type: mqtt
 *       servers: ["tcp://127.0.0.1:1883"]
 *       data_format: sparkplug_b                # 'sparkplug' is accepted too
 *       # topics: ["spBv1.0/#"]                 # the default with sparkplug_b
 *       asset: site1                            # optional: put in front of group/node/device
 *       sparkplug_max_devices: 4096
 *       sparkplug_max_metrics: 10000
 *
 * Topic -> names: each {name} level of topic_template is one level of the asset path, in
 * order (`asset:`, when set, is put in front); {signal} is the signal; `+` matches a level and
 * ignores it, a final `#` ignores the rest. Without a template, `asset` names the asset and the
 * topic's last level the signal (unless `signal` is set). Payloads: see mqtt_decode.c and
 * docs/EDGE.md (json by path or flattened, plain values, InfluxDB line protocol).
 *
 * Sparkplug B (data_format: sparkplug_b): every message goes to the input's Sparkplug state
 * (sparkplug.c: births, aliases, seq/bdSeq, deaths); asset = [asset/]group/node[/device], signal
 * = metric name, value, time and quality from the payload. When that state asks for a rebirth
 * (sequence gap, unknown alias, data before a birth) the input publishes the NCMD
 * "Node Control/Rebirth" to spBv1.0/<group>/NCMD/<node> (QoS 0, not retained). Its counters are
 * exported as millrace_sparkplug_*_total. topic_template does not apply (the Sparkplug topic
 * names the data).
 *
 * The connection runs on the loop thread with libmosquitto's external-loop API: a uv_poll on
 * its socket calls mosquitto_loop_read/write, a 1 s timer calls mosquitto_loop_misc
 * (keepalive). TCP_NODELAY is set. A lost or refused connection is retried after a backoff that
 * doubles from reconnect_min to reconnect_max, cycling through `servers`. Decoded records
 * collect in a batch handed to the host after each burst of reads (or when full).
 *
 * Acknowledgement: libmosquitto acknowledges QoS 1/2 messages (PUBACK/PUBCOMP) itself when it
 * has read them, and the input host has no "committed" callback, so a message counts as
 * delivered once it is handed to the journal, not once the journal has synced it. A crash of
 * millrace can lose what the journal had not yet synced (with journal fsync: always, the
 * appends of the current group commit, typically a few milliseconds of messages). A broker
 * restart or a lost connection loses nothing for QoS 1/2 with persistent_session: the broker
 * keeps and resends what it had not delivered. docs/EDGE.md has the details.
 */
#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/mqtt_internal.h"
#include "inputs/sparkplug.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"
#include "millrace/plugin.h"

#define MISC_MS        1000
#define RETRY_MS       10
#define READS_PER_CB   64
#define FILTER_MAX     1024
#define DEFAULT_SERVER "tcp://127.0.0.1:1883"
#define SPB_FILTER     "spBv1.0/#"
#define SPB_ARENA_MIN  (4u << 20)
#define SPB_ARENA_MAX  (512u << 20)

extern const struct mr_plugin mr_input_mqtt;

/* The Sparkplug state's counters, exported one metric each. */
static const struct {
    const char *name;
    const char *help;
    size_t offset;
} spb_stats[] = {
    {"millrace_sparkplug_messages_total", "Sparkplug B messages handled, of any type.",
     offsetof(struct mr_sparkplug_stats, messages)},
    {"millrace_sparkplug_records_total", "Records decoded from Sparkplug B, stale ones included.",
     offsetof(struct mr_sparkplug_stats, records)},
    {"millrace_sparkplug_malformed_total",
     "Sparkplug B messages whose topic or payload did not decode.",
     offsetof(struct mr_sparkplug_stats, malformed)},
    {"millrace_sparkplug_seq_gaps_total", "Sparkplug B sequence number gaps (lost messages).",
     offsetof(struct mr_sparkplug_stats, seq_gaps)},
    {"millrace_sparkplug_unknown_alias_total",
     "Sparkplug B data metrics with an alias or name no birth declared.",
     offsetof(struct mr_sparkplug_stats, unknown_alias)},
    {"millrace_sparkplug_no_birth_total",
     "Sparkplug B data or deaths of a node or device never born: dropped.",
     offsetof(struct mr_sparkplug_stats, no_birth)},
    {"millrace_sparkplug_rebirths_total", "Rebirth requests (NCMD) asked of edge nodes.",
     offsetof(struct mr_sparkplug_stats, rebirths)},
    {"millrace_sparkplug_unsupported_total",
     "Sparkplug B metrics of a type not turned into records (DataSet, Template, arrays).",
     offsetof(struct mr_sparkplug_stats, unsupported)},
    {"millrace_sparkplug_stale_total", "Bad-quality records emitted because a node or device died.",
     offsetof(struct mr_sparkplug_stats, stale)},
    {"millrace_sparkplug_stale_deaths_total",
     "NDEATH messages of an older session (bdSeq mismatch): ignored.",
     offsetof(struct mr_sparkplug_stats, stale_deaths)},
    {"millrace_sparkplug_dropped_total",
     "Sparkplug B metrics dropped: table limits, names table full, bad time, batch full.",
     offsetof(struct mr_sparkplug_stats, dropped)},
};
#define SPB_NSTATS (sizeof(spb_stats) / sizeof(spb_stats[0]))

struct mqtt_ctx {
    const struct mqtt_conf *conf;
    struct mr_input_host *host;
    struct mr_plugin_counters counters;
    struct mr_log_ratelimit rl;
    struct mqtt_decoder dec;
    struct mosquitto *mosq;
    char host_name[256];
    int port;
    size_t server;
    char filter[FILTER_MAX]; /* the template's subscription when no topics are given */
    uv_poll_t poll;
    uv_timer_t misc;
    uv_timer_t retry;
    int open_handles;
    bool poll_open, poll_closing, misc_open, retry_open, stopping, connected, pending;
    int64_t backoff_ms;
    struct mr_sparkplug *sp;           /* data_format sparkplug_b */
    struct mr_sparkplug_stats sp_seen; /* stats already added to sp_counters */
    struct mr_counter *sp_counters[SPB_NSTATS];
};

static const char *const format_values[] = {"json",        "value",     "influx",
                                            "sparkplug_b", "sparkplug", NULL};
static const char *const type_values[] = {"float", "integer", "boolean", "string", NULL};
static const char *const time_values[] = {"auto",    "rfc3339", "unix", "unix_ms",
                                          "unix_us", "unix_ns", NULL};

static void mqtt_conf_check(void *conf, struct mr_config_check *chk)
{
    const struct mqtt_conf *c = conf;
    struct mqtt_template t;
    struct mr_err err;
    if (c->persistent_session && (c->client_id == NULL || c->client_id[0] == '\0')) {
        mr_config_check_fail(chk, "client_id",
                             "persistent_session needs a fixed client_id (the broker keeps the "
                             "session under that name)");
    }
    if (c->topic_template != NULL && mqtt_template_parse(&t, c->topic_template, &err) != 0) {
        mr_config_check_fail(chk, "topic_template", "%s", err.msg);
    }
    if (MQTT_IS_SPARKPLUG(c)) {
        if (c->topic_template != NULL) {
            mr_config_check_fail(chk, "topic_template",
                                 "Sparkplug B topics name group, node and device themselves: "
                                 "leave topic_template out (asset, if set, goes in front)");
        }
    } else if (c->topic_template == NULL && c->topics.n == 0) {
        mr_config_check_fail(chk, "topics", "give topics to subscribe to, or a topic_template");
    } else if (c->topic_template == NULL && c->asset == NULL) {
        mr_config_check_fail(chk, "asset",
                             "without a topic_template, asset names the asset of every record");
    }
    if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
        mr_config_check_fail(chk, c->tls_cert == NULL ? "tls_cert" : "tls_key",
                             "tls_cert and tls_key go together (client certificate)");
    }
    if (c->reconnect_max_ns < c->reconnect_min_ns) {
        mr_config_check_fail(chk, "reconnect_max", "must not be less than reconnect_min");
    }
}

static const struct mr_field mqtt_fields[] = {
    {.name = "servers",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct mqtt_conf, servers),
     .help = "Brokers as tcp://host:port (or ssl://host:port for TLS); tried in turn when a "
             "connection fails. Default tcp://127.0.0.1:1883."},
    {.name = "topics",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct mqtt_conf, topics),
     .help = "Topic filters to subscribe to (MQTT wildcards + and # allowed). Default: the "
             "topic_template with + for each {name}; with data_format sparkplug_b, spBv1.0/#."},
    {.name = "topic_template",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_conf, topic_template),
     .help = "How topic levels name the data, e.g. plant/{site}/{line}/{machine}/{signal}: each "
             "{name} level becomes a level of the asset path, {signal} the signal name; + "
             "ignores a level, a final # the rest."},
    {.name = "asset",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_conf, asset),
     .help = "Asset path of every record when the template has no {name} levels; with them, "
             "or with Sparkplug B (group/node/device), put in front of the path (e.g. the site)."},
    {.name = "signal",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_conf, signal),
     .help = "Signal name when the template has no {signal} (without a template the default "
             "is the topic's last level)."},
    {.name = "qos",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mqtt_conf, qos),
     .def = "1",
     .min = "0",
     .max = "2",
     .help = "MQTT quality of service of the subscriptions: 0 at most once, 1 at least once, "
             "2 exactly once between broker and millrace."},
    {.name = "client_id",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_conf, client_id),
     .help = "Client identifier at the broker; needed for persistent_session. Must be unique "
             "per broker."},
    {.name = "persistent_session",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct mqtt_conf, persistent_session),
     .def = "false",
     .help = "Keep the session at the broker (clean_session false) so QoS 1/2 messages "
             "published while millrace is away are queued and delivered on reconnect."},
    {.name = "username",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_conf, username),
     .help = "User name for the broker (use ${ENV} to keep it out of the file)."},
    {.name = "password",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_conf, password),
     .help = "Password for the broker (use ${ENV} to keep it out of the file)."},
    {.name = "tls_ca",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_conf, tls_ca),
     .help = "CA certificate file (PEM) that signed the broker's certificate; turns TLS on."},
    {.name = "tls_cert",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_conf, tls_cert),
     .help = "Client certificate file (PEM), when the broker asks for one."},
    {.name = "tls_key",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_conf, tls_key),
     .help = "Private key file (PEM) of tls_cert."},
    {.name = "insecure_skip_verify",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct mqtt_conf, insecure_skip_verify),
     .def = "false",
     .help = "Accept a broker certificate whose host name does not match (testing only)."},
    {.name = "keepalive",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mqtt_conf, keepalive_ns),
     .def = "30s",
     .min = "5s",
     .max = "18h",
     .help = "MQTT keepalive: a silent connection is checked with a ping this often."},
    {.name = "reconnect_min",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mqtt_conf, reconnect_min_ns),
     .def = "100ms",
     .min = "10ms",
     .max = "1h",
     .help = "First wait before reconnecting after a lost or refused connection."},
    {.name = "reconnect_max",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mqtt_conf, reconnect_max_ns),
     .def = "30s",
     .min = "10ms",
     .max = "1h",
     .help = "Longest wait between reconnection attempts (the wait doubles up to this)."},
    {.name = "data_format",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct mqtt_conf, data_format),
     .def = "json",
     .values = format_values,
     .help = "Payload format: 'json' (value, time and quality by path, or json_flatten), "
             "'value' (one plain value), 'influx' (InfluxDB line protocol, signal = "
             "measurement.field, tags kept), 'sparkplug_b' (Sparkplug B: births, aliases, "
             "rebirth requests, deaths mark values bad; 'sparkplug' means the same)."},
    {.name = "data_type",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct mqtt_conf, data_type),
     .def = "float",
     .values = type_values,
     .help = "With data_format: value, how to read the payload: float, integer, boolean "
             "(true/false/1/0) or string."},
    {.name = "json_value_key",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_conf, json_value_key),
     .def = "value",
     .help = "Dotted path of the value in a JSON payload (e.g. data.temp, values.0)."},
    {.name = "json_time_key",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_conf, json_time_key),
     .def = "time",
     .help = "Dotted path of the timestamp; when absent the record gets the time of receipt."},
    {.name = "json_time_format",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct mqtt_conf, json_time_format),
     .def = "auto",
     .values = time_values,
     .help = "rfc3339 text, or a Unix time number in unix (seconds), unix_ms, unix_us, unix_ns. "
             "'auto': text is RFC 3339, a number is read by its size (s, ms, us or ns)."},
    {.name = "json_quality_key",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_conf, json_quality_key),
     .def = "quality",
     .help = "Dotted path of the quality: good/uncertain/bad, a boolean (false = bad) or an OPC "
             "UA status code. Default good when absent."},
    {.name = "json_flatten",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct mqtt_conf, json_flatten),
     .def = "false",
     .help = "Turn every number and boolean of the JSON object into its own signal, named by "
             "its path (after the topic's signal, if any), instead of reading json_value_key."},
    {.name = "batch",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mqtt_conf, batch),
     .def = "1024",
     .min = "1",
     .max = "65536",
     .help = "Most records handed on at once."},
    {.name = "max_payload",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct mqtt_conf, max_payload),
     .def = "256KiB",
     .min = "64B",
     .max = "64MiB",
     .help = "Largest message accepted; larger ones are counted as errors and skipped."},
    {.name = "sparkplug_max_devices",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mqtt_conf, sparkplug_max_devices),
     .def = "4096",
     .min = "1",
     .max = "1000000",
     .help = "Sparkplug B: most edge nodes plus devices remembered (their metric names and "
             "aliases); messages of further ones are dropped and counted."},
    {.name = "sparkplug_max_metrics",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mqtt_conf, sparkplug_max_metrics),
     .def = "10000",
     .min = "1",
     .max = "1000000",
     .help = "Sparkplug B: most metrics one node or device may declare in its birth; a larger "
             "birth is refused (logged) and that node's data waits for a birth that fits."},
    {.name = "sparkplug_rebirth_retry",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mqtt_conf, sparkplug_rebirth_retry_ns),
     .def = "10s",
     .min = "100ms",
     .max = "1h",
     .help = "Sparkplug B: repeat a rebirth request (NCMD Node Control/Rebirth) the edge node "
             "has not answered after this long."},
    {0},
};

static void schedule_reconnect(struct mqtt_ctx *c);
static void update_poll(struct mqtt_ctx *c);
static void retry_cb(uv_timer_t *t);

/* Hand the batch on. False when the host pushed back (the batch is kept, reading pauses). */
static bool offer(struct mqtt_ctx *c)
{
    if (c->dec.nrecs == 0) {
        return true;
    }
    int rc = c->host->emit(c->host, c->dec.recs, c->dec.nrecs);
    if (rc == MR_EAGAIN) {
        c->pending = true;
        if (c->retry_open && !c->stopping) {
            uv_timer_start(&c->retry, retry_cb, RETRY_MS, 0);
        }
        return false;
    }
    c->pending = false;
    if (rc != 0) {
        MR_LOG_RL(&c->rl, MR_LOG_ERROR, c->host->name, "the host refused %zu records: %s",
                  c->dec.nrecs, mr_strerror(rc));
        mr_counter_add(c->counters.errors, c->dec.nrecs);
    } else {
        mr_counter_add(c->counters.records_out, c->dec.nrecs);
    }
    mqtt_decoder_reset(&c->dec);
    return true;
}

/* ---- Sparkplug B ---- */

static uint64_t stat_at(const struct mr_sparkplug_stats *s, size_t i)
{
    uint64_t v;
    memcpy(&v, (const char *)s + spb_stats[i].offset, sizeof(v));
    return v;
}

static void spb_stats_sync(struct mqtt_ctx *c)
{
    struct mr_sparkplug_stats now;
    mr_sparkplug_stats_get(c->sp, &now);
    for (size_t i = 0; i < SPB_NSTATS; i++) {
        uint64_t d = stat_at(&now, i) - stat_at(&c->sp_seen, i);
        if (d > 0) {
            mr_counter_add(c->sp_counters[i], d);
        }
    }
    c->sp_seen = now;
}

/* The Sparkplug state's records are borrowed for this call only: copy them into the batch,
 * handing the batch on whenever it is due (a birth may declare thousands of metrics). */
static int spb_records(void *ctx, const struct mr_record *recs, size_t n)
{
    struct mqtt_ctx *c = ctx;
    for (size_t i = 0; i < n; i++) {
        if (mqtt_decoder_full(&c->dec)) {
            offer(c);
        }
        if (mqtt_decoder_add(&c->dec, &recs[i]) != 0) {
            mr_counter_add(c->counters.errors, n - i);
            mr_counter_add(c->sp_counters[SPB_NSTATS - 1], n - i);
            MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name,
                      "Sparkplug B: %zu records dropped, the host is busy", n - i);
            return 0;
        }
    }
    return 0;
}

static void spb_rebirth(void *ctx, const char *group, const char *node, const char *reason)
{
    struct mqtt_ctx *c = ctx;
    char topic[512];
    uint8_t payload[64];
    long tlen = mr_sparkplug_rebirth_topic(group, node, topic, sizeof(topic));
    long plen = mr_sparkplug_rebirth_encode((uint64_t)(mr_clock_wall_ns() / 1000000), payload,
                                            sizeof(payload));
    int rc = MOSQ_ERR_NO_CONN;
    if (tlen < 0 || plen < 0) {
        rc = MOSQ_ERR_PAYLOAD_SIZE;
    } else if (c->connected) {
        rc = mosquitto_publish(c->mosq, NULL, topic, (int)plen, payload, 0, false);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name,
                  "Sparkplug B: cannot ask %s/%s for a rebirth (%s): %s; asking again later", group,
                  node, reason, mosquitto_strerror(rc));
        return;
    }
    MR_LOG_RL(&c->rl, MR_LOG_INFO, c->host->name, "Sparkplug B: asked %s/%s for a rebirth: %s",
              group, node, reason);
}

static void spb_message(struct mqtt_ctx *c, const struct mosquitto_message *msg)
{
    struct mr_err err;
    int rc = mr_sparkplug_handle(c->sp, msg->topic, strlen(msg->topic), msg->payload,
                                 (size_t)msg->payloadlen, mr_clock_wall_ns(), &err);
    if (rc != 0) {
        mr_counter_add(c->counters.errors, 1);
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name, "%s; skipped", err.msg);
    }
    spb_stats_sync(c);
}

static int spb_open(struct mqtt_ctx *c, struct mr_err *err)
{
    const struct mqtt_conf *cf = c->conf;
    size_t arena = 8 * (size_t)cf->max_payload;
    arena = arena < SPB_ARENA_MIN ? SPB_ARENA_MIN : arena > SPB_ARENA_MAX ? SPB_ARENA_MAX : arena;
    struct mr_sparkplug_conf sc = {.asset_prefix = cf->asset,
                                   .max_entities = (uint32_t)cf->sparkplug_max_devices,
                                   .max_metrics = (uint32_t)cf->sparkplug_max_metrics,
                                   .arena_bytes = arena,
                                   .rebirth_retry_ns = cf->sparkplug_rebirth_retry_ns};
    struct mr_sparkplug_hooks hooks = {.ctx = c, .records = spb_records, .rebirth = spb_rebirth};
    int rc = mr_sparkplug_create(&c->sp, c->host->names, &sc, &hooks, err);
    if (rc != 0) {
        return rc;
    }
    char labels[320], inst[256];
    if (mr_metrics_label_escape(c->host->name, inst, sizeof(inst)) < 0) {
        return MR_ERR_SET(err, MR_ETOOBIG, "instance name too long for metrics");
    }
    snprintf(labels, sizeof(labels), "instance=\"%s\",plugin=\"%s\"", inst, mr_input_mqtt.name);
    for (size_t i = 0; i < SPB_NSTATS; i++) {
        rc = mr_metrics_counter(c->host->metrics, spb_stats[i].name, spb_stats[i].help, labels,
                                &c->sp_counters[i]);
        if (rc != 0) {
            return MR_ERR_SET(err, rc, "cannot register %s: %s", spb_stats[i].name,
                              mr_strerror(rc));
        }
    }
    return 0;
}

/* ---- the connection ---- */

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    struct mqtt_ctx *c = obj;
    struct mr_err err;
    (void)m;
    mr_counter_add(c->counters.records_in, 1);
    if (c->sp != NULL) {
        spb_message(c, msg);
        return;
    }
    if (!mqtt_decoder_room(&c->dec, (size_t)msg->payloadlen) && !offer(c)) {
        /* The host pushed back while one read delivered more than the batch's slack (many
         * large QoS 2 messages at once): nowhere to keep this one. The engine's ingest blocks
         * instead of answering MR_EAGAIN, so only other hosts can get here. */
        mr_counter_add(c->counters.errors, 1);
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name, "topic %s: dropped, the host is busy",
                  msg->topic);
        return;
    }
    long n = mqtt_decode(&c->dec, msg->topic, msg->payload, (size_t)msg->payloadlen,
                         mr_clock_wall_ns(), &err);
    if (n < 0) {
        mr_counter_add(c->counters.errors, 1);
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name, "%s; skipped", err.msg);
    }
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    struct mqtt_ctx *c = obj;
    if (rc != 0) {
        MR_LOG_RL(&c->rl, MR_LOG_ERROR, c->host->name, "%s:%d refused the connection: %s",
                  c->host_name, c->port, mosquitto_connack_string(rc));
        mosquitto_disconnect(m);
        return;
    }
    c->connected = true;
    c->backoff_ms = 0;
    MR_LOG_INFO(c->host->name, "connected to %s:%d", c->host_name, c->port);
    const struct mr_strlist *t = &c->conf->topics;
    size_t n = t->n > 0 ? t->n : 1;
    for (size_t i = 0; i < n; i++) {
        const char *topic = t->n > 0 ? t->items[i] : c->filter;
        int s = mosquitto_subscribe(m, NULL, topic, (int)c->conf->qos);
        if (s != MOSQ_ERR_SUCCESS) {
            MR_LOG_ERROR(c->host->name, "cannot subscribe to %s: %s", topic, mosquitto_strerror(s));
        }
    }
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    struct mqtt_ctx *c = obj;
    (void)m;
    if (c->connected && !c->stopping) {
        MR_LOG_WARN(c->host->name, "lost the connection to %s:%d (%s); reconnecting", c->host_name,
                    c->port, rc == 0 ? "closed" : mosquitto_strerror(rc));
    }
    c->connected = false;
}

/* Close callback of every handle (the poll and both timers). */
static void close_cb(uv_handle_t *h)
{
    struct mqtt_ctx *c = h->data;
    if (h == (uv_handle_t *)&c->poll) {
        c->poll_closing = false;
    }
    c->open_handles--;
    if (c->stopping && c->open_handles == 0) {
        c->host->stopped(c->host);
    }
}

static void close_poll(struct mqtt_ctx *c)
{
    if (c->poll_open) {
        c->poll_open = false;
        c->poll_closing = true;
        uv_close((uv_handle_t *)&c->poll, close_cb);
    }
}

/* The connection is gone (or never came): drop the socket's watch, try again later. */
static void conn_lost(struct mqtt_ctx *c)
{
    close_poll(c);
    c->connected = false;
    if (!c->stopping) {
        schedule_reconnect(c);
    }
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    struct mqtt_ctx *c = p->data;
    int rc = MOSQ_ERR_SUCCESS;
    if (status < 0) {
        mosquitto_disconnect(c->mosq);
        conn_lost(c);
        return;
    }
    if (events & UV_READABLE) {
        for (int i = 0; i < READS_PER_CB && rc == MOSQ_ERR_SUCCESS; i++) {
            if (mqtt_decoder_full(&c->dec) && !offer(c)) {
                break; /* back-pressure: stop reading, the broker and the socket buffer */
            }
            errno = 0;
            rc = mosquitto_loop_read(c->mosq, 1);
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
        }
    }
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(c->mosq) >= 0 &&
        ((events & UV_WRITABLE) || mosquitto_want_write(c->mosq))) {
        rc = mosquitto_loop_write(c->mosq, 1);
    }
    offer(c);
    if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(c->mosq) < 0) {
        conn_lost(c);
        return;
    }
    update_poll(c);
}

static void update_poll(struct mqtt_ctx *c)
{
    if (!c->poll_open) {
        return;
    }
    int ev = (c->pending ? 0 : UV_READABLE) | (mosquitto_want_write(c->mosq) ? UV_WRITABLE : 0);
    if (ev == 0) {
        uv_poll_stop(&c->poll);
    } else {
        uv_poll_start(&c->poll, ev, poll_cb);
    }
}

static int parse_server(struct mqtt_ctx *c, const char *url, struct mr_err *err)
{
    static const struct {
        const char *scheme;
        bool tls;
    } schemes[] = {{"tcp://", false},
                   {"mqtt://", false},
                   {"ssl://", true},
                   {"tls://", true},
                   {"mqtts://", true}};
    const char *p = url;
    bool tls = false;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strncmp(p, schemes[i].scheme, strlen(schemes[i].scheme)) == 0) {
            p += strlen(schemes[i].scheme);
            tls = schemes[i].tls;
            break;
        }
    }
    if (strstr(p, "://") != NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "server %s: use tcp:// or ssl://", url);
    }
    c->port = tls ? 8883 : 1883;
    const char *colon = strrchr(p, ':');
    size_t len = colon != NULL ? (size_t)(colon - p) : strlen(p);
    if (colon != NULL) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end != '\0' || port <= 0 || port > 65535) {
            return MR_ERR_SET(err, MR_EINVAL, "server %s: bad port", url);
        }
        c->port = (int)port;
    }
    if (len == 0 || len >= sizeof(c->host_name)) {
        return MR_ERR_SET(err, MR_EINVAL, "server %s: bad host", url);
    }
    memcpy(c->host_name, p, len);
    c->host_name[len] = '\0';
    if (tls && c->conf->tls_ca == NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "server %s: TLS needs tls_ca", url);
    }
    return 0;
}

static const char *server_url(const struct mqtt_ctx *c, size_t i)
{
    const struct mr_strlist *s = &c->conf->servers;
    return s->n > 0 ? s->items[i % s->n] : DEFAULT_SERVER;
}

static void connect_now(struct mqtt_ctx *c)
{
    struct mr_err err;
    int rc = parse_server(c, server_url(c, c->server), &err);
    if (rc != 0) {
        MR_LOG_RL(&c->rl, MR_LOG_ERROR, c->host->name, "%s", err.msg);
        schedule_reconnect(c);
        return;
    }
    int keepalive = (int)(c->conf->keepalive_ns / 1000000000);
    rc = mosquitto_connect_async(c->mosq, c->host_name, c->port, keepalive);
    int fd = mosquitto_socket(c->mosq);
    if (rc != MOSQ_ERR_SUCCESS || fd < 0) {
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name, "cannot connect to %s:%d: %s", c->host_name,
                  c->port, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        schedule_reconnect(c);
        return;
    }
    rc = uv_poll_init_socket(c->host->loop, &c->poll, fd);
    if (rc != 0) {
        MR_LOG_ERROR(c->host->name, "cannot watch the socket: %s", uv_strerror(rc));
        mosquitto_disconnect(c->mosq);
        schedule_reconnect(c);
        return;
    }
    c->poll.data = c;
    c->poll_open = true;
    c->open_handles++;
    uv_poll_start(&c->poll, UV_READABLE | UV_WRITABLE, poll_cb);
}

/* One timer for both waits: offering a batch the host pushed back, and reconnecting. */
static void retry_cb(uv_timer_t *t)
{
    struct mqtt_ctx *c = t->data;
    if (c->stopping) {
        return;
    }
    if (c->pending && !offer(c)) {
        uv_timer_start(&c->retry, retry_cb, RETRY_MS, 0);
        return;
    }
    if (c->poll_open) {
        update_poll(c); /* reading resumes */
        return;
    }
    if (c->poll_closing) {
        uv_timer_start(&c->retry, retry_cb, RETRY_MS, 0); /* the old socket's watch is closing */
        return;
    }
    connect_now(c);
}

static void schedule_reconnect(struct mqtt_ctx *c)
{
    int64_t min_ms = c->conf->reconnect_min_ns / 1000000;
    int64_t max_ms = c->conf->reconnect_max_ns / 1000000;
    c->backoff_ms = c->backoff_ms == 0 ? min_ms : c->backoff_ms * 2;
    if (c->backoff_ms > max_ms) {
        c->backoff_ms = max_ms;
    }
    c->server++;
    uv_timer_start(&c->retry, retry_cb, (uint64_t)c->backoff_ms, 0);
}

static void misc_cb(uv_timer_t *t)
{
    struct mqtt_ctx *c = t->data;
    if (!c->poll_open) {
        return;
    }
    int rc = mosquitto_loop_misc(c->mosq);
    if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(c->mosq) < 0) {
        conn_lost(c);
        return;
    }
    update_poll(c);
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
    mosquitto_lib_init();
}

static int setup_client(struct mqtt_ctx *c, struct mr_err *err)
{
    const struct mqtt_conf *cf = c->conf;
    pthread_once(&lib_once, lib_init);
    c->mosq = mosquitto_new(cf->client_id, !cf->persistent_session, c);
    if (c->mosq == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "cannot create the MQTT client: %s", strerror(errno));
    }
    mosquitto_connect_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_callback_set(c->mosq, on_disconnect);
    mosquitto_message_callback_set(c->mosq, on_message);
    mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    int rc = MOSQ_ERR_SUCCESS;
    if (cf->username != NULL) {
        rc = mosquitto_username_pw_set(c->mosq, cf->username, cf->password);
    }
    if (rc == MOSQ_ERR_SUCCESS && cf->tls_ca != NULL) {
        rc = mosquitto_tls_set(c->mosq, cf->tls_ca, NULL, cf->tls_cert, cf->tls_key, NULL);
        if (rc == MOSQ_ERR_SUCCESS && cf->insecure_skip_verify) {
            rc = mosquitto_tls_insecure_set(c->mosq, true);
        }
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        return MR_ERR_SET(err, MR_EINVAL, "MQTT credentials or TLS files: %s",
                          rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    }
    return 0;
}

static void mqtt_fini(void *ctx)
{
    struct mqtt_ctx *c = ctx;
    if (c->mosq != NULL) {
        mosquitto_destroy(c->mosq);
        c->mosq = NULL;
    }
    mr_sparkplug_destroy(c->sp);
    c->sp = NULL;
    mqtt_decoder_fini(&c->dec);
}

static int mqtt_init(void *ctx, const void *conf, struct mr_input_host *host, struct mr_err *err)
{
    struct mqtt_ctx *c = ctx;
    const struct mqtt_conf *cf = conf;
    int rc;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->host = host;
    rc = mqtt_decoder_init(&c->dec, cf, host->names, err);
    if (rc != 0) {
        return rc;
    }
    if (MQTT_IS_SPARKPLUG(cf)) {
        snprintf(c->filter, sizeof(c->filter), "%s", SPB_FILTER);
        if ((rc = spb_open(c, err)) != 0) {
            goto fail;
        }
    } else if (cf->topic_template != NULL &&
               mqtt_template_filter(&c->dec.tpl, c->filter, sizeof(c->filter)) < 0) {
        rc = MR_ERR_SET(err, MR_EINVAL, "topic_template too long");
        goto fail;
    }
    for (size_t i = 0; i < (cf->servers.n > 0 ? cf->servers.n : 1); i++) {
        if ((rc = parse_server(c, server_url(c, i), err)) != 0) {
            goto fail;
        }
    }
    rc = mr_plugin_counters_register(host->metrics, &mr_input_mqtt, host->name, &c->counters);
    if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
        goto fail;
    }
    rc = setup_client(c, err);
    if (rc != 0) {
        goto fail;
    }
    return 0;
fail:
    mqtt_fini(c);
    return rc;
}

static int mqtt_start(void *ctx, struct mr_err *err)
{
    struct mqtt_ctx *c = ctx;
    int rc = uv_timer_init(c->host->loop, &c->misc);
    if (rc == 0) {
        c->misc_open = true;
        c->open_handles++;
        c->misc.data = c;
        rc = uv_timer_init(c->host->loop, &c->retry);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, mr_err_from_errno(-rc), "timer: %s", uv_strerror(rc));
    }
    c->retry_open = true;
    c->open_handles++;
    c->retry.data = c;
    uv_timer_start(&c->misc, misc_cb, MISC_MS, MISC_MS);
    connect_now(c);
    return 0;
}

static void mqtt_stop(void *ctx)
{
    struct mqtt_ctx *c = ctx;
    if (c->stopping) {
        return;
    }
    c->stopping = true;
    offer(c); /* what was read is handed on before we go */
    if (c->mosq != NULL && c->poll_open) {
        mosquitto_disconnect(c->mosq);
    }
    close_poll(c);
    if (c->misc_open) {
        c->misc_open = false;
        uv_close((uv_handle_t *)&c->misc, close_cb);
    }
    if (c->retry_open) {
        c->retry_open = false;
        uv_close((uv_handle_t *)&c->retry, close_cb);
    }
    if (c->open_handles == 0) {
        c->host->stopped(c->host);
    }
}

const struct mr_plugin mr_input_mqtt = {
    .kind = MR_PLUGIN_INPUT,
    .name = "mqtt",
    .help = "Subscribes to an MQTT broker (QoS 0/1/2, persistent sessions, TLS) and maps topics "
            "to assets and signals by a template; payloads in JSON, plain values, InfluxDB "
            "line protocol or Sparkplug B.",
    .conf = {.fields = mqtt_fields, .size = sizeof(struct mqtt_conf), .check = mqtt_conf_check},
    .ctx_size = sizeof(struct mqtt_ctx),
    .input = {.init = mqtt_init, .start = mqtt_start, .stop = mqtt_stop, .fini = mqtt_fini},
};
