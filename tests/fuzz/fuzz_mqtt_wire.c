/* libFuzzer target for the MQTT 3.1.1 codec (src/inputs/mqtt_wire.c), which parses everything
 * a broker sends the mqtt input.
 *
 * The input is framed as the client frames a read: fixed header, then the whole packet when it
 * is all there, until the bytes run out or a header is malformed. Checks:
 *  - a header's length is 2..5 and a packet never extends past the input;
 *  - a decoded packet's topic, payload, granted list and strings lie inside the packet;
 *  - a decoded PUBLISH or acknowledgement encodes again and decodes to the same fields;
 *  - mqtt_wire_publish_head on the packet's body agrees with the full decode.
 * Any mismatch aborts: that is the fuzzer's signal. Build and run: tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/mqtt_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_mqtt_wire: check failed: %s (line %d)\n", #cond, __LINE__);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static uint8_t again[1 << 17];
static char topic[65536 + 1];

static void check_inside(const void *p, size_t len, const uint8_t *pkt, size_t plen)
{
    const uint8_t *b = p;
    CHECK(len == 0 || (b >= pkt && b + len <= pkt + plen));
}

static void check_publish(const uint8_t *pkt, size_t len, size_t hlen, const struct mqtt_packet *p)
{
    struct mqtt_packet q;
    struct mr_err err;
    check_inside(p->topic.ptr, p->topic.len, pkt, len);
    check_inside(p->payload, p->payload_len, pkt, len);
    CHECK(p->qos <= 2 && (p->qos == 0 || p->id != 0));
    CHECK(mqtt_wire_publish_head(p->flags, pkt + hlen, len - hlen, len - hlen, &q, &err) == 0);
    CHECK(q.id == p->id && q.topic.len == p->topic.len && q.payload_len == p->payload_len);
    memcpy(topic, p->topic.ptr, p->topic.len);
    topic[p->topic.len] = '\0';
    long n = mqtt_wire_publish(again, sizeof(again), topic, p->payload, p->payload_len, p->qos,
                               p->id, p->retain);
    if (n < 0) {
        return; /* larger than the scratch buffer */
    }
    CHECK(mqtt_wire_decode(again, (size_t)n, &q, &err) == 0);
    CHECK(q.qos == p->qos && q.id == p->id && q.retain == p->retain);
    CHECK(q.topic.len == p->topic.len && memcmp(q.topic.ptr, p->topic.ptr, q.topic.len) == 0);
    CHECK(q.payload_len == p->payload_len);
    CHECK(q.payload_len == 0 || memcmp(q.payload, p->payload, q.payload_len) == 0);
}

static void check_packet(const uint8_t *pkt, size_t len, size_t hlen, const struct mqtt_packet *p)
{
    struct mqtt_packet q;
    struct mr_err err;
    switch (p->type) {
    case MQTT_PKT_PUBLISH:
        check_publish(pkt, len, hlen, p);
        break;
    case MQTT_PKT_PUBACK:
    case MQTT_PKT_PUBREC:
    case MQTT_PKT_PUBREL:
    case MQTT_PKT_PUBCOMP:
    case MQTT_PKT_UNSUBACK: {
        long n = mqtt_wire_ack(again, sizeof(again), p->type, p->id);
        CHECK(n == 4 && mqtt_wire_decode(again, 4, &q, &err) == 0);
        CHECK(q.type == p->type && q.id == p->id);
        break;
    }
    case MQTT_PKT_SUBACK:
        CHECK(p->ngranted > 0);
        check_inside(p->granted, p->ngranted, pkt, len);
        break;
    case MQTT_PKT_SUBSCRIBE:
    case MQTT_PKT_UNSUBSCRIBE:
        CHECK(p->nfilters > 0);
        check_inside(p->filter.ptr, p->filter.len, pkt, len);
        break;
    case MQTT_PKT_CONNECT:
        check_inside(p->client_id.ptr, p->client_id.len, pkt, len);
        check_inside(p->username.ptr, p->username.len, pkt, len);
        check_inside(p->password.ptr, p->password.len, pkt, len);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        uint8_t type = 0, flags = 0;
        size_t rem = 0;
        struct mr_err err;
        int h = mqtt_wire_header(data + pos, size - pos, &type, &flags, &rem, &err);
        if (h <= 0) {
            CHECK(h == 0 || err.msg[0] != '\0');
            break;
        }
        CHECK(h >= 2 && h <= 5 && rem <= MQTT_WIRE_MAX_REMAINING);
        if (size - pos - (size_t)h < rem) {
            break; /* the client would read more */
        }
        size_t len = (size_t)h + rem;
        struct mqtt_packet p;
        int rc = mqtt_wire_decode(data + pos, len, &p, &err);
        if (rc == 0) {
            CHECK(p.type == type);
            check_packet(data + pos, len, (size_t)h, &p);
        } else {
            CHECK(rc == MR_EPARSE && strncmp(err.msg, "MQTT", 4) == 0);
        }
        pos += len;
    }
    return 0;
}
