/* Input `mqtt`: subscribes to an MQTT broker (our own MQTT 3.1.1 client) and turns messages into
 * records.
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
 * The connection (mqtt_client.c, packet codec mqtt_wire.c) runs on the loop thread: one
 * uv_tcp stream (TCP_NODELAY; TLS through OpenSSL memory BIOs on the same stream), 64 KiB reads,
 * every complete packet of a read parsed in place and all its messages decoded into one batch
 * handed to the host with one emit. A lost or refused connection is retried after a backoff
 * that doubles from reconnect_min to reconnect_max, cycling through `servers`; a connection
 * silent for 1.5 x keepalive is declared dead.
 *
 * Acknowledgement: a QoS 1 message is acknowledged (PUBACK), and a QoS 2 message received
 * (PUBREC), only once the journal has committed the emit that carried it (host->durable; a
 * host without `durable` gets acknowledgements after the emit). So neither a crash of millrace
 * (kill -9) nor a broker restart loses what the broker was told is safe, with QoS 1/2 and
 * persistent_session. Delivery is at least once: within one run of millrace a redelivery after
 * a lost connection is recognised by its packet id and not kept twice, but after a restart of
 * millrace the broker's redelivery of messages that were kept and not yet acknowledged (at
 * most the last few milliseconds) is kept again. docs/EDGE_MQTT.md has the details.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/mqtt_client.h"
#include "inputs/mqtt_internal.h"
#include "inputs/sparkplug.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"
#include "millrace/plugin.h"

#define FILTER_MAX    1024
#define SPB_FILTER    "spBv1.0/#"
#define SPB_ARENA_MIN (4u << 20)
#define SPB_ARENA_MAX (512u << 20)

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
    struct mqtt_client *client;
    char filter[FILTER_MAX]; /* the template's subscription when no topics are given */
    const char *filters[1];  /* {filter} when no topics are given */
    uint64_t emits;          /* emit calls that returned 0 */
    bool stopping;
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

/* Hand the batch on (one emit). Returns 0, MR_EAGAIN (the host pushed back: the batch is kept
 * and offered again by the client) or the host's error (the batch is dropped and counted). */
static int offer(struct mqtt_ctx *c)
{
    if (c->dec.nrecs == 0) {
        return 0;
    }
    int rc = c->host->emit(c->host, c->dec.recs, c->dec.nrecs);
    if (rc == MR_EAGAIN) {
        return rc;
    }
    if (rc != 0) {
        MR_LOG_RL(&c->rl, MR_LOG_ERROR, c->host->name, "the host refused %zu records: %s",
                  c->dec.nrecs, mr_strerror(rc));
        mr_counter_add(c->counters.errors, c->dec.nrecs);
    } else {
        c->emits++;
        mr_counter_add(c->counters.records_out, c->dec.nrecs);
    }
    mqtt_decoder_reset(&c->dec);
    return rc;
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
            (void)offer(c); /* pushed back: add below fails and counts what is dropped */
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
    int rc = tlen < 0 || plen < 0 ? MR_ETOOBIG
                                  : mqtt_client_publish(c->client, topic, payload, (size_t)plen);
    if (rc != 0) {
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name,
                  "Sparkplug B: cannot ask %s/%s for a rebirth (%s): %s; asking again later", group,
                  node, reason, rc == MR_ECLOSED ? "not connected" : mr_strerror(rc));
        return;
    }
    MR_LOG_RL(&c->rl, MR_LOG_INFO, c->host->name, "Sparkplug B: asked %s/%s for a rebirth: %s",
              group, node, reason);
}

static void spb_message(struct mqtt_ctx *c, const char *topic, const uint8_t *payload, size_t len)
{
    struct mr_err err;
    int rc =
        mr_sparkplug_handle(c->sp, topic, strlen(topic), payload, len, mr_clock_wall_ns(), &err);
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

/* ---- the client's hooks ---- */

static int hook_message(void *ctx, const char *topic, const uint8_t *payload, size_t len)
{
    struct mqtt_ctx *c = ctx;
    struct mr_err err;
    if (c->sp != NULL) {
        mr_counter_add(c->counters.records_in, 1);
        spb_message(c, topic, payload, len);
        return 0;
    }
    if (!mqtt_decoder_room(&c->dec, len)) {
        return MR_EAGAIN; /* the client flushes and offers this message again */
    }
    mr_counter_add(c->counters.records_in, 1);
    long n = mqtt_decode(&c->dec, topic, payload, len, mr_clock_wall_ns(), &err);
    if (n < 0) {
        mr_counter_add(c->counters.errors, 1);
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name, "%s; skipped", err.msg);
    }
    return 0;
}

static void hook_oversize(void *ctx, const char *topic, size_t len)
{
    struct mqtt_ctx *c = ctx;
    mr_counter_add(c->counters.records_in, 1);
    mr_counter_add(c->counters.errors, 1);
    MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name,
              "topic %s: message of %zu bytes exceeds max_payload; skipped", topic, len);
}

static int hook_flush(void *ctx)
{
    return offer(ctx);
}

static uint64_t hook_emitted(void *ctx)
{
    return ((struct mqtt_ctx *)ctx)->emits;
}

static uint64_t hook_durable(void *ctx)
{
    struct mqtt_ctx *c = ctx;
    return c->host->durable != NULL ? c->host->durable(c->host) : c->emits;
}

static void hook_stopped(void *ctx)
{
    struct mqtt_ctx *c = ctx;
    c->host->stopped(c->host);
}

/* ---- the plugin ---- */

static void mqtt_fini(void *ctx)
{
    struct mqtt_ctx *c = ctx;
    mqtt_client_destroy(c->client);
    c->client = NULL;
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
    rc = mr_plugin_counters_register(host->metrics, &mr_input_mqtt, host->name, &c->counters);
    if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
        goto fail;
    }
    c->filters[0] = c->filter;
    const struct mqtt_client_hooks hooks = {.ctx = c,
                                            .message = hook_message,
                                            .oversize = hook_oversize,
                                            .flush = hook_flush,
                                            .emitted = hook_emitted,
                                            .durable = hook_durable,
                                            .stopped = hook_stopped};
    bool listed = cf->topics.n > 0;
    rc = mqtt_client_create(&c->client, host->loop, host->name, cf,
                            listed ? (const char *const *)cf->topics.items : c->filters,
                            listed ? cf->topics.n : 1, &hooks, err);
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
    return mqtt_client_start(c->client, err);
}

static void mqtt_stop(void *ctx)
{
    struct mqtt_ctx *c = ctx;
    if (c->stopping) {
        return;
    }
    c->stopping = true;
    (void)offer(c); /* what was read is handed on before we go */
    mqtt_client_stop(c->client);
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
