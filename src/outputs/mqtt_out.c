/* Output `mqtt`: publishes records to an MQTT broker (libmosquitto): alerts, KPIs and commands
 * with topic templates, QoS 1/2, retained last-known values, optionally as a Sparkplug B edge
 * node, optionally waiting for a device's acknowledgement of each command.
 *
 *   outputs:
 *     alerts:
 *       type: mqtt
 *       servers: ["tcp://broker.plant:1883"]     # ssl://host:8883 for TLS
 *       topic: "millrace/{asset}/{signal}"       # {asset} keeps its slashes; {tag:NAME}
 *       qos: 1
 *       retain: true                             # last-known value for late subscribers
 *       data_format: json                        # or value (the bare value as text)
 *     scada:
 *       type: mqtt
 *       servers: ["tcp://broker.plant:1883"]
 *       sparkplug: {group_id: Plant1, edge_node_id: millrace-hall2}
 *     line_commands:
 *       type: mqtt
 *       servers: ["tcp://broker.plant:1883"]
 *       topic: "cmd/{asset}/{signal}"
 *       ack_topic: "cmd/{asset}/{signal}/ack"    # the device answers here
 *       ack_timeout: 10s
 *
 * Delivery (at least once). write publishes every record of the batch with the configured QoS
 * and waits, at most `timeout`, until the broker acknowledged each one (libmosquitto's on_publish
 * for its message id: PUBACK for QoS 1, PUBCOMP for QoS 2); only then does it answer MR_SINK_OK
 * and the engine advances this output's cursor. No connection, a lost connection or the timeout
 * answer MR_SINK_RETRY and the engine offers the same batch again. The session is persistent
 * (clean_session false, fixed client_id): messages libmosquitto already queued stay queued and
 * are resent by it after a reconnect, so write called again with the same batch only waits for
 * their acknowledgements (and publishes what it had not yet published) instead of publishing
 * everything twice (after MAX_RESUMES such waits it publishes the batch again, so missing
 * acknowledgements cannot hold the output forever). Duplicates remain possible (an acknowledgement
 * lost with the connection, a crash before the cursor commit): subscribers must tolerate them. A
 * record the broker can never take (a topic with + or #, a payload over the limit) goes to the
 * dead-letter topic.
 *
 * Network loop: libmosquitto's own thread (mosquitto_loop_start), not mosquitto_loop on the
 * delivery thread. The engine calls write only when there is data; between batches somebody
 * must still answer keepalives (or the broker drops us and, for Sparkplug, publishes our NDEATH
 * while we are merely idle), reconnect, and answer a Sparkplug host's Rebirth command at once.
 * The price is one mutex and condition variable shared by the callbacks and write.
 *
 * Sparkplug B (sparkplug_out.h): at every connect the NDEATH with bdSeq is the will, NBIRTH
 * (bdSeq, Node Control/Rebirth) and a DBIRTH per known device follow; records go out as DDATA by
 * alias; a new signal of a device gets a new DBIRTH first; an NCMD Rebirth republishes all
 * births. bdSeq starts at 0 in each process and grows by one per connection.
 *
 * Acknowledgement topic (ack_topic): records are sent one at a time; after the broker took a
 * record, write waits up to ack_timeout for any non-retained message on the record's ack topic,
 * published after ours; without one the answer is MR_SINK_RETRY and the record is sent again.
 */
#include <inttypes.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"
#include "millrace/plugin.h"
#include "millrace/numtext.h"
#include "outputs/sparkplug_out.h"

extern const struct mr_plugin mr_output_mqtt;

#define TOPIC_MAX    1024
#define TPL_MAX_SEGS 32
#define MID_SLOTS    65536
#define HOST_MAX     256
#define MAX_RESUMES  5          /* resumed waits for one batch before publishing it again */
#define NAMES_CAP    (1u << 22) /* ids cached; larger ids are looked up each time */

enum { FMT_JSON = 0, FMT_VALUE = 1 };
enum { SEG_TEXT, SEG_ASSET, SEG_SIGNAL, SEG_TAG };

struct spb_conf {
    char *group_id;
    char *edge_node_id;
    char *device_separator;
    int64_t max_devices;
    int64_t max_metrics;
};

struct mqtt_out_conf {
    struct mr_strlist servers;
    char *topic;
    int64_t qos;
    bool retain;
    char *username;
    char *password;
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    bool insecure_skip_verify;
    char *client_id;
    int64_t keep_alive_ns;
    int data_format;
    bool batch;
    int64_t timeout_ns;
    uint64_t max_message;
    struct spb_conf sparkplug;
    bool has_sparkplug;
    char *ack_topic;
    int64_t ack_timeout_ns;
};

struct seg {
    int kind;
    const char *text; /* SEG_TEXT: into the template string */
    size_t len;
    mr_name_id tag; /* SEG_TAG */
};

struct tpl {
    struct seg segs[TPL_MAX_SEGS];
    size_t n;
};

struct name_ref {
    const char *s;
    uint32_t len;
};

struct mqtt_out_ctx {
    const struct mqtt_out_conf *conf;
    struct mr_output_host *host;
    struct mr_plugin_counters counters;
    struct mr_gauge *connected_g;
    struct mr_counter *births;
    struct mr_counter *acks_missing;
    char hostname[HOST_MAX];
    int port;
    bool tls;
    char client_id[256];
    struct tpl topic;
    struct tpl ack;
    struct name_ref *names; /* id -> string, filled on first use */
    uint32_t names_len;
    char *payload; /* max_message bytes */
    struct mosquitto *mosq;
    bool loop_started;
    struct mr_log_ratelimit rl;
    struct mr_log_ratelimit rl_lib; /* libmosquitto's thread only */
    /* shared with libmosquitto's thread, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool sync_ready;
    bool connected;
    int refused;      /* CONNACK code of a refusal retrying cannot fix (bad credentials), else 0 */
    uint8_t *waiting; /* MID_SLOTS flags: 1 = our message, broker has not acknowledged it */
    uint32_t outstanding;
    char ack_wanted[TOPIC_MAX]; /* subscribed ack topic ("" none) */
    uint64_t ack_gen;           /* messages seen on ack_wanted */
    struct mr_spb_edge *spb;
    uint64_t bdseq;
    char ncmd_topic[TOPIC_MAX];
    uint8_t *spb_buf; /* births from the loop thread (max_message bytes) */
    /* the batch being delivered (delivery thread only) */
    bool has_batch;
    size_t batch_n;
    struct mr_record batch_first, batch_last;
    size_t next;      /* first record not yet published */
    unsigned resumes; /* times the same batch came back with acknowledgements still owed */
};

static const char *const formats[] = {"json", "value", NULL};

/* ---- configuration ---- */

static int server_parse(const char *url, char *host, size_t cap, int *port, bool *tls)
{
    const char *p = url;
    *tls = false;
    if (strncmp(p, "tcp://", 6) == 0 || strncmp(p, "mqtt://", 7) == 0) {
        p = strchr(p, '/') + 2;
    } else if (strncmp(p, "ssl://", 6) == 0 || strncmp(p, "tls://", 6) == 0 ||
               strncmp(p, "mqtts://", 8) == 0) {
        p = strchr(p, '/') + 2;
        *tls = true;
    } else if (strstr(p, "://") != NULL) {
        return MR_EINVAL;
    }
    const char *colon = strrchr(p, ':');
    size_t len = colon != NULL ? (size_t)(colon - p) : strlen(p);
    long v = *tls ? 8883 : 1883;
    if (colon != NULL) {
        char *end;
        v = strtol(colon + 1, &end, 10);
        if (*end != '\0' || v <= 0 || v > 65535) {
            return MR_EINVAL;
        }
    }
    if (len == 0 || len >= cap) {
        return MR_EINVAL;
    }
    memcpy(host, p, len);
    host[len] = '\0';
    *port = (int)v;
    return 0;
}

/* Split "a/{asset}/{tag:line}" into segments. Tag keys are interned when names is not NULL.
 * Returns 0 or MR_EINVAL with *bad pointing at the offending placeholder. */
static int tpl_compile(const char *s, struct tpl *t, struct mr_names *names, const char **bad)
{
    t->n = 0;
    const char *p = s;
    while (*p != '\0') {
        if (t->n == TPL_MAX_SEGS) {
            *bad = p;
            return MR_EINVAL;
        }
        struct seg *g = &t->segs[t->n++];
        if (*p != '{') {
            size_t len = strcspn(p, "{");
            *g = (struct seg){.kind = SEG_TEXT, .text = p, .len = len};
            p += len;
            continue;
        }
        const char *end = strchr(p, '}');
        *bad = p;
        if (end == NULL) {
            return MR_EINVAL;
        }
        size_t len = (size_t)(end - p) + 1;
        if (len == 7 && strncmp(p, "{asset}", 7) == 0) {
            *g = (struct seg){.kind = SEG_ASSET};
        } else if (len == 8 && strncmp(p, "{signal}", 8) == 0) {
            *g = (struct seg){.kind = SEG_SIGNAL};
        } else if (len > 6 && strncmp(p, "{tag:", 5) == 0) {
            *g = (struct seg){.kind = SEG_TAG};
            if (names != NULL && mr_names_intern(names, p + 5, len - 6, &g->tag) != 0) {
                return MR_EINVAL;
            }
        } else {
            return MR_EINVAL;
        }
        p = end + 1;
    }
    return 0;
}

static void check_template(struct mr_config_check *chk, const char *field, const char *s)
{
    struct tpl t;
    const char *bad = NULL;
    if (s != NULL && tpl_compile(s, &t, NULL, &bad) != 0) {
        mr_config_check_fail(chk, field,
                             "'%s': bad placeholder at '%.20s' (use {asset}, {signal}, "
                             "{tag:NAME}; at most %d parts)",
                             s, bad, TPL_MAX_SEGS);
    } else if (s != NULL && strpbrk(s, "+#") != NULL) {
        mr_config_check_fail(chk, field, "'%s': + and # are wildcards, not allowed in a topic", s);
    }
}

static void mqtt_out_check(void *conf, struct mr_config_check *chk)
{
    const struct mqtt_out_conf *c = conf;
    char host[HOST_MAX];
    int port;
    bool tls;
    if (c->servers.n > 1) {
        mr_config_check_fail(chk, "servers", "give one broker (more are not supported yet)");
    }
    if (c->servers.n == 1 &&
        server_parse(c->servers.items[0], host, sizeof(host), &port, &tls) != 0) {
        mr_config_check_fail(chk, "servers", "'%s': use tcp://host:port or ssl://host:port",
                             c->servers.items[0]);
    }
    check_template(chk, "topic", c->topic);
    check_template(chk, "ack_topic", c->ack_topic);
    if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
        mr_config_check_fail(chk, c->tls_cert == NULL ? "tls_cert" : "tls_key",
                             "tls_cert and tls_key go together (client certificate)");
    }
    if (c->batch) {
        mr_config_check_fail(chk, "batch",
                             "batch: true is not supported: every record is "
                             "published as its own message");
    }
    if (c->has_sparkplug && (c->sparkplug.group_id == NULL || c->sparkplug.edge_node_id == NULL)) {
        mr_config_check_fail(chk, "sparkplug", "needs group_id and edge_node_id");
    }
    if (c->has_sparkplug && c->ack_topic != NULL) {
        mr_config_check_fail(chk, "ack_topic",
                             "not available with sparkplug (Sparkplug devices "
                             "answer commands with their own DDATA)");
    }
    if (c->ack_topic != NULL && c->qos == 0) {
        mr_config_check_fail(chk, "qos", "ack_topic needs qos 1 or 2");
    }
}

static const struct mr_field spb_fields[] = {
    {.name = "group_id",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct spb_conf, group_id),
     .help = "Sparkplug group id (the first topic level after spBv1.0), e.g. the plant."},
    {.name = "edge_node_id",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct spb_conf, edge_node_id),
     .help = "This millrace's edge node id in the group; unique per group."},
    {.name = "device_separator",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct spb_conf, device_separator),
     .def = ".",
     .help = "Replaces the / of an asset path to make its Sparkplug device id "
             "(hall2/press7 -> hall2.press7)."},
    {.name = "max_devices",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct spb_conf, max_devices),
     .def = "1000",
     .min = "1",
     .max = "1000000",
     .help = "Most devices (asset paths) published; records of more go to the dead-letter "
             "topic."},
    {.name = "max_metrics",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct spb_conf, max_metrics),
     .def = "1000",
     .min = "1",
     .max = "100000",
     .help = "Most metrics (signals) per device; records of more go to the dead-letter topic."},
    {0},
};

static const struct mr_section spb_section = {.fields = spb_fields,
                                              .size = sizeof(struct spb_conf)};

static const struct mr_field mqtt_out_fields[] = {
    {.name = "servers",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct mqtt_out_conf, servers),
     .help = "The broker as tcp://host:port (ssl://host:port for TLS). Default "
             "tcp://127.0.0.1:1883."},
    {.name = "topic",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_out_conf, topic),
     .def = "millrace/{asset}/{signal}",
     .help = "Topic of each record: {asset} is the asset path (its slashes make topic levels), "
             "{signal} the signal name, {tag:NAME} the value of tag NAME (empty when missing). "
             "Not used with sparkplug."},
    {.name = "qos",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mqtt_out_conf, qos),
     .def = "1",
     .min = "0",
     .max = "2",
     .help = "MQTT quality of service: 1 (at least once) or 2 (exactly once to the broker) "
             "make millrace wait for the broker's acknowledgement before a record counts as "
             "delivered; 0 only waits until it was written to the connection."},
    {.name = "retain",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct mqtt_out_conf, retain),
     .def = "false",
     .help = "Ask the broker to keep the last message of each topic and hand it to every new "
             "subscriber (last-known values for dashboards)."},
    {.name = "username",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_out_conf, username),
     .help = "User name for the broker (use ${ENV} to keep it out of the file)."},
    {.name = "password",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_out_conf, password),
     .help = "Password for the broker (use ${ENV} to keep it out of the file)."},
    {.name = "tls_ca",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_out_conf, tls_ca),
     .help = "CA certificate file (PEM) that signed the broker's certificate; with ssl:// "
             "servers (default: the system's CAs in /etc/ssl/certs)."},
    {.name = "tls_cert",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_out_conf, tls_cert),
     .help = "Client certificate file (PEM), when the broker asks for one."},
    {.name = "tls_key",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_out_conf, tls_key),
     .help = "Private key file (PEM) of tls_cert."},
    {.name = "insecure_skip_verify",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct mqtt_out_conf, insecure_skip_verify),
     .def = "false",
     .help = "Accept a broker certificate whose host name does not match (testing only)."},
    {.name = "client_id",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_out_conf, client_id),
     .help = "Client identifier at the broker, fixed so the session survives reconnects; "
             "default millrace-HOSTNAME-OUTPUT. Must be unique per broker."},
    {.name = "keep_alive",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mqtt_out_conf, keep_alive_ns),
     .def = "30s",
     .min = "5s",
     .max = "18h",
     .help = "MQTT keepalive: a silent connection is checked with a ping this often (and the "
             "broker declares millrace gone after 1.5 times this)."},
    {.name = "data_format",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct mqtt_out_conf, data_format),
     .def = "json",
     .values = formats,
     .help = "json: one JSON object per record (asset, signal, time, value, quality, tags); "
             "value: the bare value as text (21.5, 42, true, or the string)."},
    {.name = "batch",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct mqtt_out_conf, batch),
     .def = "false",
     .help = "Must stay false: each record is its own message."},
    {.name = "timeout",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mqtt_out_conf, timeout_ns),
     .def = "5s",
     .min = "100ms",
     .max = "10m",
     .help = "Longest wait for the connection and for the broker to acknowledge a batch; after "
             "it the batch is sent again later (records wait in the journal)."},
    {.name = "max_message",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct mqtt_out_conf, max_message),
     .def = "256KiB",
     .min = "1KiB",
     .max = "256MiB",
     .help = "Largest message published; a record whose message would be larger goes to the "
             "dead-letter topic."},
    {.name = "sparkplug",
     .type = MR_FIELD_SECTION,
     .offset = offsetof(struct mqtt_out_conf, sparkplug),
     .section = &spb_section,
     .present = MR_FIELD_PRESENT(struct mqtt_out_conf, has_sparkplug),
     .help = "Publish as a Sparkplug B edge node (births, DDATA by alias, NDEATH as will) "
             "instead of topic/data_format."},
    {.name = "ack_topic",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mqtt_out_conf, ack_topic),
     .help = "For commands: topic (same placeholders as topic) on which the device confirms a "
             "command; each record then counts as delivered only after a message arrives "
             "there, else it is sent again."},
    {.name = "ack_timeout",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mqtt_out_conf, ack_timeout_ns),
     .def = "10s",
     .min = "10ms",
     .max = "1h",
     .help = "How long to wait for the device's confirmation on ack_topic."},
    {0},
};

/* ---- records to topics and payloads ---- */

/* A name's string, looked up once per id and cached (the table never moves strings). */
static struct name_ref name_of(struct mqtt_out_ctx *c, mr_name_id id)
{
    if (id < c->names_len && c->names[id].s != NULL) {
        return c->names[id];
    }
    size_t len = 0;
    const char *s = mr_names_str(c->host->names, id, &len);
    struct name_ref r = {.s = s != NULL ? s : "", .len = s != NULL ? (uint32_t)len : 0};
    if (s == NULL || id >= NAMES_CAP) {
        return r;
    }
    if (mr_array_hold((void **)&c->names, &c->names_len, sizeof(*c->names), id, 256, 0) != 0) {
        return r; /* uncached: looked up again next time */
    }
    c->names[id] = r;
    return r;
}

/* Render template t for rec into out (NUL-terminated). Returns the length or MR_ETOOBIG. */
static long tpl_render(struct mqtt_out_ctx *c, const struct tpl *t, const struct mr_record *rec,
                       char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct seg *g = &t->segs[i];
        const char *s = g->text;
        size_t len = g->len;
        if (g->kind == SEG_ASSET || g->kind == SEG_SIGNAL) {
            struct name_ref r = name_of(c, g->kind == SEG_ASSET ? rec->asset : rec->signal);
            s = r.s;
            len = r.len;
        } else if (g->kind == SEG_TAG) {
            len = 0;
            for (uint16_t j = 0; j < rec->ntags && j < MR_RECORD_MAX_TAGS; j++) {
                if (rec->tags[j].key == g->tag) {
                    s = rec->tags[j].value.ptr;
                    len = rec->tags[j].value.len;
                    break;
                }
            }
        }
        if (k + len >= cap) {
            return MR_ETOOBIG;
        }
        memcpy(out + k, s, len);
        k += len;
    }
    out[k] = '\0';
    return (long)k;
}

/* The message body of rec. Returns its length, or a negative code with *reason set. */
static long payload_make(struct mqtt_out_ctx *c, const struct mr_record *rec, const char **reason)
{
    char *out = c->payload;
    size_t cap = (size_t)c->conf->max_message;
    long n;
    if (c->conf->data_format == FMT_JSON) {
        n = mr_record_to_json(rec, c->host->names, out, cap);
        *reason = n == MR_ETOOBIG ? "message larger than max_message" : "invalid record";
        return n;
    }
    *reason = "message larger than max_message";
    switch (rec->type) {
    case MR_VALUE_F64:
        n = mr_double_text(rec->v.f64, out, cap); /* -1: larger than max_message */
        break;
    case MR_VALUE_I64:
        n = snprintf(out, cap, "%" PRId64, rec->v.i64);
        break;
    case MR_VALUE_BOOL:
        n = snprintf(out, cap, "%s", rec->v.b ? "true" : "false");
        break;
    case MR_VALUE_STRING:
        if (rec->v.str.len > cap) {
            return MR_ETOOBIG;
        }
        memcpy(out, rec->v.str.ptr, rec->v.str.len);
        return rec->v.str.len;
    default:
        *reason = "a sample block has no plain value: use data_format json";
        return MR_ENOTSUP;
    }
    return n < 0 || (size_t)n >= cap ? MR_ETOOBIG : n;
}

/* ---- publishing (all under mu) ---- */

static bool publish_refused(int rc)
{
    return rc == MOSQ_ERR_INVAL || rc == MOSQ_ERR_MALFORMED_UTF8 || rc == MOSQ_ERR_PAYLOAD_SIZE ||
           rc == MOSQ_ERR_OVERSIZE_PACKET || rc == MOSQ_ERR_QOS_NOT_SUPPORTED;
}

/* Publish one message. wait: its acknowledgement counts for the batch (*mid gets its id).
 * Returns 0, MR_EINVAL (the broker can never take it: *reason says why) or MR_EAGAIN. */
static int publish_locked(struct mqtt_out_ctx *c, const char *topic, const void *payload, long len,
                          bool retain, bool wait, int *mid_out, const char **reason)
{
    int mid = 0;
    int rc = mosquitto_publish(c->mosq, &mid, topic, (int)len, payload, (int)c->conf->qos, retain);
    if (rc == MOSQ_ERR_SUCCESS) {
        if (wait && mid > 0 && mid < MID_SLOTS && c->waiting[mid] == 0) {
            c->waiting[mid] = 1;
            c->outstanding++;
        }
        if (mid_out != NULL) {
            *mid_out = mid;
        }
        return 0;
    }
    *reason = mosquitto_strerror(rc);
    return publish_refused(rc) ? MR_EINVAL : MR_EAGAIN;
}

/* NBIRTH and a DBIRTH for every known device (at connect and on a Rebirth command). */
static void births_locked(struct mqtt_out_ctx *c)
{
    char topic[TOPIC_MAX];
    const char *reason = NULL;
    size_t cap = (size_t)c->conf->max_message;
    int64_t now_ms = mr_clock_wall_ns() / 1000000;
    long n = mr_spb_edge_nbirth(c->spb, c->bdseq, now_ms, (uint8_t *)c->payload, cap);
    if (n < 0 || mr_spb_edge_topic(c->spb, MR_SPB_NBIRTH, 0, topic, sizeof(topic)) < 0 ||
        publish_locked(c, topic, c->payload, n, false, false, NULL, &reason) != 0) {
        MR_LOG_WARN(c->host->name, "cannot publish NBIRTH: %s", reason ? reason : "too large");
        return;
    }
    mr_counter_add(c->births, 1);
    for (uint32_t d = 0; d < mr_spb_edge_device_count(c->spb); d++) {
        n = mr_spb_edge_dbirth(c->spb, d, now_ms, (uint8_t *)c->payload, cap);
        if (n < 0 || mr_spb_edge_topic(c->spb, MR_SPB_DBIRTH, d, topic, sizeof(topic)) < 0) {
            continue; /* its next record reports the problem */
        }
        if (publish_locked(c, topic, c->payload, n, false, false, NULL, &reason) != 0) {
            mr_spb_edge_seq_undo(c->spb);
            return;
        }
        mr_counter_add(c->births, 1);
    }
}

static int will_set_locked(struct mqtt_out_ctx *c)
{
    char topic[TOPIC_MAX];
    uint8_t buf[64];
    long n = mr_spb_edge_ndeath(c->bdseq, mr_clock_wall_ns() / 1000000, buf, sizeof(buf));
    if (n < 0 || mr_spb_edge_topic(c->spb, MR_SPB_NDEATH, 0, topic, sizeof(topic)) < 0) {
        return MR_ETOOBIG;
    }
    return mosquitto_will_set(c->mosq, topic, (int)n, buf, 1, false) == MOSQ_ERR_SUCCESS
               ? 0
               : MR_EINVAL;
}

/* ---- libmosquitto's thread ---- */

static void on_connect(struct mosquitto *m, void *arg, int rc)
{
    struct mqtt_out_ctx *c = arg;
    (void)m;
    pthread_mutex_lock(&c->mu);
    if (rc == 0) {
        c->connected = true;
        c->refused = 0;
        mr_gauge_set(c->connected_g, 1);
        if (c->spb != NULL) {
            mosquitto_subscribe(c->mosq, NULL, c->ncmd_topic, 1);
            births_locked(c);
        }
        if (c->ack_wanted[0] != '\0') {
            mosquitto_subscribe(c->mosq, NULL, c->ack_wanted, 1); /* the broker may be new */
        }
        MR_LOG_INFO(c->host->name, "connected to %s:%d as %s", c->hostname, c->port, c->client_id);
    } else {
        /* 2 identifier rejected, 4 bad user name or password, 5 not authorised: only the
         * configuration can fix these. 1 and 3 (protocol, server unavailable) are transient. */
        c->refused = rc == 2 || rc == 4 || rc == 5 ? rc : 0;
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name, "%s:%d refused the connection: %s",
                  c->hostname, c->port, mosquitto_connack_string(rc));
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

static void on_disconnect(struct mosquitto *m, void *arg, int rc)
{
    struct mqtt_out_ctx *c = arg;
    (void)m;
    pthread_mutex_lock(&c->mu);
    bool was = c->connected;
    c->connected = false;
    mr_gauge_set(c->connected_g, 0);
    if (c->spb != NULL) {
        /* The next connection is a new Sparkplug session: its NBIRTH and its will (NDEATH)
         * carry the next bdSeq. */
        c->bdseq = (c->bdseq + 1) % 256;
        (void)will_set_locked(c);
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    if (was && rc != 0) {
        MR_LOG_WARN(c->host->name, "lost the connection to %s:%d; reconnecting", c->hostname,
                    c->port);
    }
}

static void on_publish(struct mosquitto *m, void *arg, int mid)
{
    struct mqtt_out_ctx *c = arg;
    (void)m;
    pthread_mutex_lock(&c->mu);
    if (mid > 0 && mid < MID_SLOTS && c->waiting[mid] != 0) {
        c->waiting[mid] = 0;
        c->outstanding--;
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->mu);
}

static void on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
    struct mqtt_out_ctx *c = arg;
    (void)m;
    pthread_mutex_lock(&c->mu);
    if (c->spb != NULL && strcmp(msg->topic, c->ncmd_topic) == 0 &&
        mr_spb_edge_is_rebirth(msg->payload, (size_t)msg->payloadlen)) {
        MR_LOG_INFO(c->host->name, "Rebirth requested: publishing NBIRTH and all DBIRTHs");
        births_locked(c);
    } else if (c->ack_wanted[0] != '\0' && !msg->retain && strcmp(msg->topic, c->ack_wanted) == 0) {
        c->ack_gen++;
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->mu);
}

/* libmosquitto's own errors (a TLS handshake the broker's certificate fails, for one) are the
 * only word on why a connection never comes up. */
static void on_log(struct mosquitto *m, void *arg, int level, const char *text)
{
    struct mqtt_out_ctx *c = arg;
    (void)m;
    if (level == MOSQ_LOG_ERR) {
        MR_LOG_RL(&c->rl_lib, MR_LOG_WARN, c->host->name, "%s:%d: %s", c->hostname, c->port, text);
    }
}

/* ---- the delivery thread ---- */

/* Wait on cond until deadline (monotonic ns). Returns false on timeout. */
static bool wait_locked(struct mqtt_out_ctx *c, int64_t deadline_ns)
{
    int64_t now = mr_clock_mono_ns();
    if (now >= deadline_ns) {
        return false;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t at = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (deadline_ns - now);
    ts.tv_sec = at / 1000000000;
    ts.tv_nsec = at % 1000000000;
    pthread_cond_timedwait(&c->cond, &c->mu, &ts);
    return true;
}

static bool same_batch(const struct mqtt_out_ctx *c, const struct mr_record *recs, size_t n)
{
    const struct mr_record *a = &recs[0], *b = &recs[n - 1];
    return c->has_batch && c->batch_n == n && c->batch_first.time_ns == a->time_ns &&
           c->batch_first.asset == a->asset && c->batch_first.signal == a->signal &&
           c->batch_last.time_ns == b->time_ns && c->batch_last.asset == b->asset &&
           c->batch_last.signal == b->signal;
}

/* Publish recs[i] (Sparkplug: its DBIRTH first when needed, then DDATA). Returns 0, MR_EINVAL
 * (refused for good: *reason) or MR_EAGAIN. */
static int spb_publish_locked(struct mqtt_out_ctx *c, const struct mr_record *rec, int *mid,
                              const char **reason)
{
    char topic[TOPIC_MAX];
    uint32_t dev;
    bool birth;
    size_t cap = (size_t)c->conf->max_message;
    int64_t now_ms = mr_clock_wall_ns() / 1000000;
    int rc = mr_spb_edge_observe(c->spb, rec, &dev, &birth, reason);
    if (rc != 0) {
        return rc == MR_ENOMEM ? MR_EAGAIN : MR_EINVAL;
    }
    if (birth) {
        long n = mr_spb_edge_dbirth(c->spb, dev, now_ms, (uint8_t *)c->payload, cap);
        if (n < 0) {
            *reason = "the device's DBIRTH is larger than max_message";
            return MR_EINVAL;
        }
        mr_spb_edge_topic(c->spb, MR_SPB_DBIRTH, dev, topic, sizeof(topic));
        /* Not waited for: the broker acknowledges a connection's messages in order, so the
         * acknowledgement of the DDATA after it covers it. */
        if ((rc = publish_locked(c, topic, c->payload, n, false, false, NULL, reason)) != 0) {
            mr_spb_edge_seq_undo(c->spb);
            return MR_EAGAIN;
        }
        mr_counter_add(c->births, 1);
    }
    long n = mr_spb_edge_ddata(c->spb, dev, rec, now_ms, (uint8_t *)c->payload, cap);
    if (n < 0) {
        *reason = "message larger than max_message";
        return MR_EINVAL;
    }
    mr_spb_edge_topic(c->spb, MR_SPB_DDATA, dev, topic, sizeof(topic));
    if ((rc = publish_locked(c, topic, c->payload, n, false, true, mid, reason)) != 0) {
        mr_spb_edge_seq_undo(c->spb);
    }
    return rc;
}

static int record_publish_locked(struct mqtt_out_ctx *c, const struct mr_record *rec, int *mid,
                                 const char **reason)
{
    if (c->spb != NULL) {
        return spb_publish_locked(c, rec, mid, reason);
    }
    char topic[TOPIC_MAX];
    if (tpl_render(c, &c->topic, rec, topic, sizeof(topic)) < 0) {
        *reason = "topic longer than 1023 bytes";
        return MR_EINVAL;
    }
    long n = payload_make(c, rec, reason);
    if (n < 0) {
        return n == MR_ENOMEM ? MR_EAGAIN : MR_EINVAL;
    }
    return publish_locked(c, topic, c->payload, n, c->conf->retain, true, mid, reason);
}

/* Wait for a connection; 0, or the answer to give. */
static int connection_wait_locked(struct mqtt_out_ctx *c, int64_t deadline, struct mr_err *err)
{
    while (!c->connected && c->refused == 0 && wait_locked(c, deadline)) {
    }
    if (c->connected) {
        return 0;
    }
    if (c->refused != 0) {
        MR_ERR_SET(err, MR_EACCES,
                   "%s:%d refuses millrace: %s (check username, password, "
                   "client_id and the broker's ACL)",
                   c->hostname, c->port, mosquitto_connack_string(c->refused));
        return MR_SINK_FATAL;
    }
    MR_ERR_SET(err, MR_ETIMEDOUT, "no connection to %s:%d", c->hostname, c->port);
    return MR_SINK_RETRY;
}

/* Every record of the batch from c->next on, then wait for all acknowledgements. */
static int deliver_locked(struct mqtt_out_ctx *c, const struct mr_record *recs, size_t n,
                          int64_t deadline, size_t *rejected, struct mr_err *err)
{
    for (; c->next < n; c->next++) {
        const char *reason = "";
        int rc = record_publish_locked(c, &recs[c->next], NULL, &reason);
        if (rc == MR_EINVAL) {
            c->host->reject(c->host, c->next, reason);
            (*rejected)++;
        } else if (rc != 0) {
            MR_ERR_SET(err, MR_EAGAIN, "publishing to %s:%d: %s", c->hostname, c->port, reason);
            return MR_SINK_RETRY;
        }
    }
    while (c->outstanding > 0 && wait_locked(c, deadline)) {
    }
    if (c->outstanding > 0) {
        MR_ERR_SET(err, MR_ETIMEDOUT, "%s:%d acknowledged %zu of %zu messages within timeout",
                   c->hostname, c->port, n - (size_t)c->outstanding, n);
        return MR_SINK_RETRY;
    }
    return MR_SINK_OK;
}

/* Commands with a confirmation: one record at a time, each waits for the broker's
 * acknowledgement and a message on its ack topic. */
static int deliver_acked_locked(struct mqtt_out_ctx *c, const struct mr_record *recs, size_t n,
                                size_t *rejected, struct mr_err *err)
{
    for (; c->next < n; c->next++) {
        const struct mr_record *rec = &recs[c->next];
        char ack[TOPIC_MAX];
        const char *reason = "";
        if (tpl_render(c, &c->ack, rec, ack, sizeof(ack)) < 0) {
            c->host->reject(c->host, c->next, "ack topic longer than 1023 bytes");
            (*rejected)++;
            continue;
        }
        if (strcmp(ack, c->ack_wanted) != 0) {
            if (c->ack_wanted[0] != '\0') {
                mosquitto_unsubscribe(c->mosq, NULL, c->ack_wanted);
            }
            snprintf(c->ack_wanted, sizeof(c->ack_wanted), "%s", ack);
            if (mosquitto_subscribe(c->mosq, NULL, ack, 1) != MOSQ_ERR_SUCCESS) {
                c->ack_wanted[0] = '\0';
                c->host->reject(c->host, c->next, "ack topic is not a valid MQTT topic");
                (*rejected)++;
                continue;
            }
        }
        uint64_t gen = c->ack_gen;
        int mid = 0;
        int rc = record_publish_locked(c, rec, &mid, &reason);
        if (rc == MR_EINVAL) {
            c->host->reject(c->host, c->next, reason);
            (*rejected)++;
            continue;
        }
        if (rc != 0) {
            MR_ERR_SET(err, MR_EAGAIN, "publishing to %s:%d: %s", c->hostname, c->port, reason);
            return MR_SINK_RETRY;
        }
        int64_t deadline = mr_clock_mono_ns() + c->conf->ack_timeout_ns;
        while ((c->outstanding > 0 || c->ack_gen == gen) && wait_locked(c, deadline)) {
        }
        if (c->outstanding > 0 || c->ack_gen == gen) {
            if (mid > 0 && mid < MID_SLOTS && c->waiting[mid] != 0) {
                c->waiting[mid] = 0; /* sent again on the next try */
                c->outstanding--;
            }
            mr_counter_add(c->acks_missing, 1);
            MR_ERR_SET(err, MR_ETIMEDOUT, "no confirmation on %s within ack_timeout", ack);
            return MR_SINK_RETRY;
        }
    }
    return MR_SINK_OK;
}

static int mqtt_out_write(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct mqtt_out_ctx *c = ctx;
    if (n == 0) {
        return MR_SINK_OK;
    }
    int64_t deadline = mr_clock_mono_ns() + c->conf->timeout_ns;
    size_t rejected = 0;
    pthread_mutex_lock(&c->mu);
    bool same = same_batch(c, recs, n);
    if (same && c->outstanding > 0 && ++c->resumes > MAX_RESUMES) {
        /* Safety net: acknowledgements that never come (libmosquitto normally resends its
         * queue after a reconnect) must not hold the output forever: publish it all again. */
        same = false;
    }
    if (!same) {
        /* A new batch: acknowledgements still owed for an older one no longer matter. */
        if (c->outstanding > 0) {
            memset(c->waiting, 0, MID_SLOTS);
            c->outstanding = 0;
        }
        if (!c->has_batch || !same_batch(c, recs, n)) {
            mr_counter_add(c->counters.records_in, n);
        }
        c->has_batch = true;
        c->batch_n = n;
        c->batch_first = recs[0];
        c->batch_last = recs[n - 1];
        c->next = 0;
        c->resumes = 0;
    }
    int answer = connection_wait_locked(c, deadline, err);
    if (answer == 0) {
        answer = c->ack.n > 0 ? deliver_acked_locked(c, recs, n, &rejected, err)
                              : deliver_locked(c, recs, n, deadline, &rejected, err);
    }
    if (answer == MR_SINK_OK) {
        c->has_batch = false;
        mr_counter_add(c->counters.records_out, n - rejected);
    } else {
        mr_counter_add(c->counters.errors, 1);
    }
    pthread_mutex_unlock(&c->mu);
    if (answer == MR_SINK_RETRY) {
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name,
                  "cannot deliver yet: %s; records wait in the journal", err->msg);
    }
    return answer;
}

static int mqtt_out_flush(void *ctx, struct mr_err *err)
{
    (void)ctx;
    (void)err;
    return MR_SINK_OK; /* write answers only after the broker acknowledged */
}

/* ---- life cycle ---- */

static void lib_init(void)
{
    mosquitto_lib_init(); /* process-wide, never undone */
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

/* A clean goodbye for Sparkplug: the will is not sent on a normal disconnect, so publish the
 * NDEATH ourselves and give the broker up to a second to take it. */
static void ndeath_publish(struct mqtt_out_ctx *c)
{
    char topic[TOPIC_MAX];
    uint8_t buf[64];
    pthread_mutex_lock(&c->mu);
    long n = mr_spb_edge_ndeath(c->bdseq, mr_clock_wall_ns() / 1000000, buf, sizeof(buf));
    int mid = 0;
    if (c->connected && n > 0 &&
        mr_spb_edge_topic(c->spb, MR_SPB_NDEATH, 0, topic, sizeof(topic)) > 0 &&
        mosquitto_publish(c->mosq, &mid, topic, (int)n, buf, 1, false) == MOSQ_ERR_SUCCESS &&
        mid > 0 && mid < MID_SLOTS) {
        c->waiting[mid] = 1;
        c->outstanding++;
        int64_t deadline = mr_clock_mono_ns() + 1000000000;
        while (c->waiting[mid] != 0 && c->connected && wait_locked(c, deadline)) {
        }
    }
    pthread_mutex_unlock(&c->mu);
}

static void mqtt_out_fini(void *ctx)
{
    struct mqtt_out_ctx *c = ctx;
    if (c->mosq != NULL) {
        if (c->loop_started) {
            if (c->spb != NULL) {
                ndeath_publish(c);
            }
            mosquitto_disconnect(c->mosq);
            mosquitto_loop_stop(c->mosq, false);
        }
        mosquitto_destroy(c->mosq);
        c->mosq = NULL;
    }
    if (c->sync_ready) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->mu);
        c->sync_ready = false;
    }
    mr_spb_edge_destroy(c->spb);
    c->spb = NULL;
    mr_free(c->waiting);
    mr_free(c->payload);
    mr_free(c->names);
    c->waiting = NULL;
    c->payload = NULL;
    c->names = NULL;
}

static int metrics_register(struct mqtt_out_ctx *c, struct mr_err *err)
{
    struct mr_metrics *m = c->host->metrics;
    char inst[256], labels[320];
    int rc = mr_plugin_counters_register(m, &mr_output_mqtt, c->host->name, &c->counters);
    if (rc == 0 && mr_metrics_label_escape(c->host->name, inst, sizeof(inst)) < 0) {
        rc = MR_ETOOBIG;
    }
    if (rc == 0) {
        snprintf(labels, sizeof(labels), "instance=\"%s\"", inst);
        rc = mr_metrics_gauge(m, "millrace_mqtt_out_connected",
                              "1 while the mqtt output is connected to its broker, else 0.", labels,
                              &c->connected_g);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_mqtt_out_births_total",
                                "Sparkplug NBIRTH and DBIRTH messages published.", labels,
                                &c->births);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(m, "millrace_mqtt_out_ack_timeouts_total",
                                "Commands not confirmed on ack_topic within ack_timeout (they "
                                "are sent again).",
                                labels, &c->acks_missing);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
    }
    return 0;
}

/* Default client id: millrace-HOST-OUTPUT, fixed across restarts (the session lives on it). */
static void client_id_make(struct mqtt_out_ctx *c)
{
    if (c->conf->client_id != NULL) {
        snprintf(c->client_id, sizeof(c->client_id), "%s", c->conf->client_id);
        return;
    }
    char host[64] = "host";
    if (gethostname(host, sizeof(host) - 1) != 0) {
        snprintf(host, sizeof(host), "host");
    }
    host[sizeof(host) - 1] = '\0';
    const char *name = c->host->name;
    const char *dot = strrchr(name, '.');
    snprintf(c->client_id, sizeof(c->client_id), "millrace-%s-%s", host,
             dot != NULL ? dot + 1 : name);
    for (char *p = c->client_id; *p != '\0'; p++) {
        if (*p == '/' || *p == '+' || *p == '#' || (unsigned char)*p < 0x21) {
            *p = '_';
        }
    }
}

static int spb_setup(struct mqtt_out_ctx *c, struct mr_err *err)
{
    const struct spb_conf *s = &c->conf->sparkplug;
    struct mr_spb_edge_conf ec = {.group_id = s->group_id,
                                  .edge_node_id = s->edge_node_id,
                                  .device_separator = s->device_separator,
                                  .max_devices = (uint32_t)s->max_devices,
                                  .max_metrics = (uint32_t)s->max_metrics};
    int rc = mr_spb_edge_create(&c->spb, c->host->names, &ec, err);
    if (rc == 0 &&
        mr_spb_edge_topic(c->spb, MR_SPB_NCMD, 0, c->ncmd_topic, sizeof(c->ncmd_topic)) < 0) {
        rc = MR_ERR_SET(err, MR_ECONFIG, "sparkplug ids too long");
    }
    if (rc == 0 && will_set_locked(c) != 0) {
        rc = MR_ERR_SET(err, MR_ECONFIG, "libmosquitto refused the NDEATH will");
    }
    return rc;
}

static int mosq_setup(struct mqtt_out_ctx *c, struct mr_err *err)
{
    const struct mqtt_out_conf *cf = c->conf;
    c->mosq = mosquitto_new(c->client_id, false, c); /* clean_session false: see the top */
    if (c->mosq == NULL) {
        return MR_ERR_SET(err, MR_ENOMEM, "cannot create the MQTT client");
    }
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(c->mosq, 100);
    /* 1 s, 2 s, ... 10 s between attempts: a restarted broker is found again within seconds. */
    mosquitto_reconnect_delay_set(c->mosq, 1, 10, false);
    mosquitto_connect_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_callback_set(c->mosq, on_disconnect);
    mosquitto_publish_callback_set(c->mosq, on_publish);
    mosquitto_message_callback_set(c->mosq, on_message);
    mosquitto_log_callback_set(c->mosq, on_log);
    int rc = MOSQ_ERR_SUCCESS;
    if (cf->username != NULL) {
        rc = mosquitto_username_pw_set(c->mosq, cf->username, cf->password);
    }
    if (rc == MOSQ_ERR_SUCCESS && c->tls) {
        rc = mosquitto_tls_set(c->mosq, cf->tls_ca, cf->tls_ca == NULL ? "/etc/ssl/certs" : NULL,
                               cf->tls_cert, cf->tls_key, NULL);
        if (rc == MOSQ_ERR_SUCCESS && cf->insecure_skip_verify) {
            rc = mosquitto_tls_insecure_set(c->mosq, true);
        }
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        return MR_ERR_SET(err, MR_ECONFIG,
                          "TLS or credentials refused by libmosquitto: %s "
                          "(check that tls_ca, tls_cert and tls_key are readable PEM files)",
                          mosquitto_strerror(rc));
    }
    return 0;
}

static int mqtt_out_init(void *ctx, const void *conf, struct mr_output_host *host,
                         struct mr_err *err)
{
    struct mqtt_out_ctx *c = ctx;
    memset(c, 0, sizeof(*c));
    c->conf = conf;
    c->host = host;
    const struct mqtt_out_conf *cf = c->conf;
    const char *url = cf->servers.n > 0 ? cf->servers.items[0] : "tcp://127.0.0.1:1883";
    const char *bad = "";
    int rc = 0;
    if (server_parse(url, c->hostname, sizeof(c->hostname), &c->port, &c->tls) != 0) {
        rc = MR_ERR_SET(err, MR_ECONFIG, "servers: '%s': use tcp://host:port or ssl://host:port",
                        url);
    } else if (cf->topic != NULL && tpl_compile(cf->topic, &c->topic, host->names, &bad) != 0) {
        rc = MR_ERR_SET(err, MR_ECONFIG, "topic: bad placeholder at '%.20s'", bad);
    } else if (cf->ack_topic != NULL && tpl_compile(cf->ack_topic, &c->ack, host->names, &bad)) {
        rc = MR_ERR_SET(err, MR_ECONFIG, "ack_topic: bad placeholder at '%.20s'", bad);
    } else if (cf->has_sparkplug && cf->ack_topic != NULL) {
        rc = MR_ERR_SET(err, MR_ECONFIG, "ack_topic is not available with sparkplug");
    } else if (cf->ack_topic != NULL && cf->qos == 0) {
        rc = MR_ERR_SET(err, MR_ECONFIG, "ack_topic needs qos 1 or 2");
    }
    if (rc != 0) {
        return rc;
    }
    client_id_make(c);
    pthread_once(&lib_once, lib_init);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    c->sync_ready = true;
    c->waiting = mr_calloc(MID_SLOTS, 1);
    c->payload = mr_malloc((size_t)cf->max_message);
    if (c->waiting == NULL || c->payload == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = metrics_register(c, err)) != 0 || (rc = mosq_setup(c, err)) != 0) {
        goto fail;
    }
    if (cf->has_sparkplug && (rc = spb_setup(c, err)) != 0) {
        goto fail;
    }
    /* A broker that is not there yet is no error: libmosquitto's thread keeps trying, and
     * write answers RETRY meanwhile. */
    int mrc = mosquitto_connect_async(c->mosq, c->hostname, c->port,
                                      (int)(cf->keep_alive_ns / 1000000000));
    if (mrc != MOSQ_ERR_SUCCESS) {
        MR_LOG_WARN(host->name, "cannot connect to %s:%d yet: %s; retrying", c->hostname, c->port,
                    mosquitto_strerror(mrc));
    }
    if ((mrc = mosquitto_loop_start(c->mosq)) != MOSQ_ERR_SUCCESS) {
        rc = MR_ERR_SET(err, MR_ESYS, "cannot start the MQTT network thread: %s",
                        mosquitto_strerror(mrc));
        goto fail;
    }
    c->loop_started = true;
    return 0;
fail:
    mqtt_out_fini(c);
    return rc;
}

const struct mr_plugin mr_output_mqtt = {
    .kind = MR_PLUGIN_OUTPUT,
    .name = "mqtt",
    .help = "Publishes records to an MQTT broker: alerts, KPIs and commands with topic "
            "templates, QoS 1/2 (a record counts as delivered when the broker acknowledged "
            "it), retained last-known values, or as a Sparkplug B edge node; commands can wait "
            "for a device's confirmation. At least once: duplicates are possible after an "
            "outage.",
    .conf = {.fields = mqtt_out_fields,
             .size = sizeof(struct mqtt_out_conf),
             .check = mqtt_out_check},
    .ctx_size = sizeof(struct mqtt_out_ctx),
    .output = {.init = mqtt_out_init,
               .write = mqtt_out_write,
               .flush = mqtt_out_flush,
               .fini = mqtt_out_fini},
};
