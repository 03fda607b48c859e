/* Internals of the MQTT input shared by its connection (mqtt.c) and its payload decoder
 * (mqtt_decode.c), exposed for white-box unit tests. */
#ifndef MILLRACE_INPUTS_MQTT_INTERNAL_H
#define MILLRACE_INPUTS_MQTT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inputs/lineproto.h"
#include "millrace/config.h"
#include "millrace/names.h"
#include "millrace/record.h"

/* Most records one message may yield (line protocol lines x fields, flattened JSON leaves). */
#define MQTT_MAX_PER_MESSAGE 1024
#define MQTT_MAX_SEGMENTS    32

enum mqtt_format {
    MQTT_FORMAT_JSON = 0,
    MQTT_FORMAT_VALUE = 1,
    MQTT_FORMAT_INFLUX = 2,
    MQTT_FORMAT_SPARKPLUG = 3,       /* "sparkplug_b" */
    MQTT_FORMAT_SPARKPLUG_ALIAS = 4, /* "sparkplug": the same */
};

#define MQTT_IS_SPARKPLUG(conf)                                                                    \
    ((conf)->data_format == MQTT_FORMAT_SPARKPLUG ||                                               \
     (conf)->data_format == MQTT_FORMAT_SPARKPLUG_ALIAS)

enum mqtt_data_type {
    MQTT_TYPE_FLOAT = 0,
    MQTT_TYPE_INTEGER = 1,
    MQTT_TYPE_BOOLEAN = 2,
    MQTT_TYPE_STRING = 3,
};

enum mqtt_time_format {
    MQTT_TIME_AUTO = 0,
    MQTT_TIME_RFC3339 = 1,
    MQTT_TIME_UNIX = 2,
    MQTT_TIME_UNIX_MS = 3,
    MQTT_TIME_UNIX_US = 4,
    MQTT_TIME_UNIX_NS = 5,
};

struct mqtt_conf {
    struct mr_strlist servers;
    struct mr_strlist topics;
    char *topic_template;
    char *asset;
    char *signal;
    int64_t qos;
    char *client_id;
    bool persistent_session;
    char *username;
    char *password;
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    bool insecure_skip_verify;
    int64_t keepalive_ns;
    int64_t reconnect_min_ns;
    int64_t reconnect_max_ns;
    int data_format;      /* enum mqtt_format */
    int data_type;        /* enum mqtt_data_type */
    char *json_value_key; /* dotted path */
    char *json_time_key;
    char *json_quality_key;
    int json_time_format; /* enum mqtt_time_format */
    bool json_flatten;
    int64_t batch;
    uint64_t max_payload;
    int64_t sparkplug_max_devices; /* edge nodes plus devices tracked */
    int64_t sparkplug_max_metrics; /* metrics in one birth */
    int64_t sparkplug_rebirth_retry_ns;
};

enum mqtt_seg_kind {
    SEG_LITERAL = 0,
    SEG_ASSET = 1,  /* {name}: a level of the asset path */
    SEG_SIGNAL = 2, /* {signal} */
    SEG_ANY = 3,    /* + : matched, ignored */
    SEG_REST = 4,   /* # : the rest, ignored */
};

struct mqtt_seg {
    uint8_t kind;
    const char *text; /* SEG_LITERAL: borrowed from the template string */
    size_t len;
};

struct mqtt_template {
    struct mqtt_seg segs[MQTT_MAX_SEGMENTS];
    size_t n;
    size_t nasset; /* SEG_ASSET segments */
    bool has_signal;
};

/* Parse "plant/{site}/{line}/{machine}/{signal}" (borrowed: keep the string alive). Returns 0
 * or MR_EINVAL with err explaining. */
int mqtt_template_parse(struct mqtt_template *t, const char *tpl, struct mr_err *err);
/* The MQTT subscription the template stands for ("plant/+/+/+/+"), NUL-terminated. Returns its
 * length or MR_ETOOBIG. */
long mqtt_template_filter(const struct mqtt_template *t, char *out, size_t cap);

/* Turns messages into records, appending to a batch it owns. */
struct mqtt_decoder {
    const struct mqtt_conf *conf;
    struct mr_names *names;
    struct mr_names_memo memo;
    struct mqtt_template tpl;
    bool has_tpl;
    mr_name_id fixed_asset;
    mr_name_id fixed_signal;
    struct mr_record *recs;
    size_t nrecs;
    size_t cap; /* batch + 2 * MQTT_MAX_PER_MESSAGE */
    char *arena;
    size_t arena_used;
    size_t arena_cap;
    struct mr_lp_point *lp;
};

int mqtt_decoder_init(struct mqtt_decoder *d, const struct mqtt_conf *conf, struct mr_names *names,
                      struct mr_err *err);
void mqtt_decoder_fini(struct mqtt_decoder *d);
/* Room for the records of one more message of len bytes? (false: hand the batch on first). */
bool mqtt_decoder_room(const struct mqtt_decoder *d, size_t len);
/* The batch is due: hand it on before reading more (leaves slack for a read in progress). */
bool mqtt_decoder_full(const struct mqtt_decoder *d);
/* Append a copy of r, its string value and tag values copied into the batch arena (for records
 * decoded elsewhere: Sparkplug B). Returns 0, or MR_ETOOBIG when the batch or its arena is full
 * (hand the batch on first), MR_EINVAL for a sample block. */
int mqtt_decoder_add(struct mqtt_decoder *d, const struct mr_record *r);
/* Empty the batch (after it was handed on). */
void mqtt_decoder_reset(struct mqtt_decoder *d);
/* Decode one message; records are appended to d->recs. now_ns stamps records whose payload
 * carries no time. On error nothing is appended and err names the topic and the problem.
 * Returns the number of records appended (>= 0) or a negative MR_E* code. */
long mqtt_decode(struct mqtt_decoder *d, const char *topic, const void *payload, size_t len,
                 int64_t now_ns, struct mr_err *err);

#endif
