/* MQTT 3.1.1 packet codec (OASIS MQTT Version 3.1.1, section 2 and 3): framing of the fixed
 * header, decoding of every packet type, encoding of what a subscribing client sends.
 *
 * Pure functions over caller-owned buffers: no allocation, no I/O. A decoded packet borrows
 * from the buffer it was decoded from (topic, payload, granted QoS list).
 *
 *   fixed header:  byte 0 = type << 4 | flags, then the remaining length in 1..4 bytes
 *                  (7 bits each, least significant first, bit 7 = more bytes follow)
 *   PUBLISH body:  u16 topic length, topic, [u16 packet id if QoS > 0], payload
 */
#ifndef MILLRACE_INPUTS_MQTT_WIRE_H
#define MILLRACE_INPUTS_MQTT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "millrace/error.h"

#define MQTT_WIRE_MAX_REMAINING 268435455u /* 0xFF 0xFF 0xFF 0x7F */
#define MQTT_WIRE_MAX_HEADER    5u

enum mqtt_pkt {
    MQTT_PKT_CONNECT = 1,
    MQTT_PKT_CONNACK = 2,
    MQTT_PKT_PUBLISH = 3,
    MQTT_PKT_PUBACK = 4,
    MQTT_PKT_PUBREC = 5,
    MQTT_PKT_PUBREL = 6,
    MQTT_PKT_PUBCOMP = 7,
    MQTT_PKT_SUBSCRIBE = 8,
    MQTT_PKT_SUBACK = 9,
    MQTT_PKT_UNSUBSCRIBE = 10,
    MQTT_PKT_UNSUBACK = 11,
    MQTT_PKT_PINGREQ = 12,
    MQTT_PKT_PINGRESP = 13,
    MQTT_PKT_DISCONNECT = 14,
};

/* A length-prefixed string inside a packet (borrowed, not NUL-terminated). */
struct mqtt_str {
    const char *ptr;
    size_t len;
};

struct mqtt_packet {
    uint8_t type;  /* enum mqtt_pkt */
    uint8_t flags; /* low nibble of byte 0 */
    uint16_t id;   /* packet identifier (PUBLISH QoS > 0, acks, SUBSCRIBE/SUBACK, UNSUB*) */
    /* PUBLISH */
    uint8_t qos;
    bool dup, retain;
    struct mqtt_str topic;
    const uint8_t *payload;
    size_t payload_len;
    /* CONNACK */
    bool session_present;
    uint8_t return_code;
    /* SUBACK: one granted QoS (0, 1, 2) or 0x80 (failure) per filter; SUBSCRIBE: the first
     * filter and its requested QoS, nfilters counts them all */
    const uint8_t *granted;
    size_t ngranted;
    struct mqtt_str filter;
    uint8_t filter_qos;
    size_t nfilters;
    /* CONNECT */
    uint8_t connect_flags;
    uint16_t keepalive_s;
    struct mqtt_str client_id, username, password;
};

/* The fixed header at buf[0..len). Returns its length (2..5) with *type, *flags and *remaining
 * set; 0 when more bytes are needed; MR_EPARSE (err says why) for a remaining length longer
 * than 4 bytes or a reserved packet type (0, 15). */
int mqtt_wire_header(const uint8_t *buf, size_t len, uint8_t *type, uint8_t *flags,
                     size_t *remaining, struct mr_err *err);

/* Decode one complete packet: buf[0..len) holds exactly its fixed header and body. Returns 0 or
 * MR_EPARSE with err naming the packet type and the problem (bad flags, short body, bad QoS,
 * topic with a wildcard or NUL, packet id 0, bad CONNECT protocol). */
int mqtt_wire_decode(const uint8_t *buf, size_t len, struct mqtt_packet *p, struct mr_err *err);

/* The start of a PUBLISH (fixed header flags, and avail >= 2 body bytes): topic and packet id,
 * for a message too large to keep that must still be acknowledged. Returns 0, 1 when more
 * body bytes are needed, or MR_EPARSE. */
int mqtt_wire_publish_head(uint8_t flags, const uint8_t *body, size_t avail, size_t remaining,
                           struct mqtt_packet *p, struct mr_err *err);

/* Encoders: write the packet into out[0..cap) and return its length, or MR_ETOOBIG when it
 * does not fit (or a string is longer than 65535 bytes). */
long mqtt_wire_remaining_encode(size_t remaining, uint8_t *out, size_t cap);

struct mqtt_connect {
    const char *client_id; /* "" lets the broker choose (needs clean_session) */
    bool clean_session;
    uint16_t keepalive_s;
    const char *username; /* NULL: none */
    const char *password; /* NULL: none; only with a username */
};
long mqtt_wire_connect(uint8_t *out, size_t cap, const struct mqtt_connect *c);
long mqtt_wire_subscribe(uint8_t *out, size_t cap, uint16_t id, const char *const *filters,
                         size_t n, uint8_t qos);
long mqtt_wire_publish(uint8_t *out, size_t cap, const char *topic, const void *payload, size_t len,
                       uint8_t qos, uint16_t id, bool retain);
/* PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: type and packet id. */
long mqtt_wire_ack(uint8_t *out, size_t cap, uint8_t type, uint16_t id);
/* PINGREQ, PINGRESP, DISCONNECT: a bare fixed header. */
long mqtt_wire_bare(uint8_t *out, size_t cap, uint8_t type);

/* "PUBLISH", "CONNACK", ... or "reserved". */
const char *mqtt_wire_name(uint8_t type);
/* CONNACK return code 1..5 as the broker's reason in words. */
const char *mqtt_wire_connack_reason(uint8_t code);

#endif
