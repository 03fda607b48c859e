/* The MQTT input's own MQTT 3.1.1 client on the libuv loop: connection (TCP or TLS), session
 * (CONNECT, SUBSCRIBE, keepalive, reconnect over the configured servers) and acknowledgement
 * of received messages only once the journal has committed them.
 *
 * Messages are handed to hooks->message one by one while a read's packets are parsed; after
 * every read hooks->flush hands the batch on (one emit per read). A QoS 1/2 message is
 * acknowledged (PUBACK, or PUBREC for QoS 2) once hooks->durable() reaches the emit count
 * hooks->emitted() had after the flush that carried it.
 */
#ifndef MILLRACE_INPUTS_MQTT_CLIENT_H
#define MILLRACE_INPUTS_MQTT_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "inputs/mqtt_internal.h"
#include "millrace/error.h"

struct mqtt_client;

struct mqtt_client_hooks {
    void *ctx;
    /* One received message: topic is NUL-terminated, both borrowed for the call. Returns 0 (kept
     * or counted as bad by the plugin) or MR_EAGAIN: no room, flush first (the client then calls
     * flush and, if that pushes back too, pauses reading and offers the message later). */
    int (*message)(void *ctx, const char *topic, const uint8_t *payload, size_t len);
    /* A message larger than max_payload, skipped (it is still acknowledged). */
    void (*oversize)(void *ctx, const char *topic, size_t len);
    /* Hand the batch on: 0, MR_EAGAIN (host pushed back: called again later), or another
     * negative code (the batch is lost: the client drops the connection without acknowledging,
     * so the broker delivers those messages again). */
    int (*flush)(void *ctx);
    /* Emit calls that returned 0 so far, and how many of those the journal has committed. */
    uint64_t (*emitted)(void *ctx);
    uint64_t (*durable)(void *ctx);
    /* Every handle is closed after mqtt_client_stop. */
    void (*stopped)(void *ctx);
};

/* Checks the servers and the TLS files (err names the problem), sets nothing in motion.
 * filters are borrowed: keep them alive. */
int mqtt_client_create(struct mqtt_client **out, uv_loop_t *loop, const char *name,
                       const struct mqtt_conf *conf, const char *const *filters, size_t nfilters,
                       const struct mqtt_client_hooks *hooks, struct mr_err *err);
/* Connect (and keep reconnecting). */
int mqtt_client_start(struct mqtt_client *c, struct mr_err *err);
/* Close everything; hooks->stopped follows (possibly at once). */
void mqtt_client_stop(struct mqtt_client *c);
/* After stopped (or without start). NULL is a no-op. */
void mqtt_client_destroy(struct mqtt_client *c);
/* PUBLISH QoS 0, not retained (Sparkplug rebirth requests). MR_ECLOSED when not connected,
 * MR_ETOOBIG when it does not fit the output buffer. */
int mqtt_client_publish(struct mqtt_client *c, const char *topic, const void *payload, size_t len);

#endif
