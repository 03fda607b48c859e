/* The MQTT 3.1.1 codec (src/inputs/mqtt_wire.c): every packet type round trip, remaining length
 * at each encoding boundary, malformed packets rejected with an error naming the packet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "inputs/mqtt_wire.h"

static void test_remaining_length(void **state)
{
    (void)state;
    static const struct {
        size_t value;
        size_t bytes;
    } cases[] = {{0, 1},     {127, 1},     {128, 2},     {16383, 2},
                 {16384, 3}, {2097151, 3}, {2097152, 4}, {268435455, 4}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t buf[8] = {MQTT_PKT_PUBLISH << 4};
        long n = mqtt_wire_remaining_encode(cases[i].value, buf + 1, sizeof(buf) - 1);
        assert_int_equal(n, (long)cases[i].bytes);
        uint8_t type = 0, flags = 9;
        size_t rem = 1;
        struct mr_err err;
        assert_int_equal(mqtt_wire_header(buf, (size_t)n + 1, &type, &flags, &rem, &err),
                         (int)cases[i].bytes + 1);
        assert_int_equal(type, MQTT_PKT_PUBLISH);
        assert_int_equal(flags, 0);
        assert_int_equal(rem, cases[i].value);
        /* one byte short: more is needed */
        assert_int_equal(mqtt_wire_header(buf, (size_t)n, &type, &flags, &rem, &err), 0);
    }
    uint8_t buf[8];
    assert_int_equal(mqtt_wire_remaining_encode(268435456, buf, sizeof(buf)), MR_ETOOBIG);
    assert_int_equal(mqtt_wire_remaining_encode(16384, buf, 2), MR_ETOOBIG);
    /* five length bytes */
    const uint8_t five[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x7f};
    uint8_t type, flags;
    size_t rem;
    struct mr_err err;
    assert_int_equal(mqtt_wire_header(five, sizeof(five), &type, &flags, &rem, &err), MR_EPARSE);
    assert_non_null(strstr(err.msg, "PUBLISH: remaining length longer than 4 bytes"));
    const uint8_t reserved[] = {0xf0, 0x00};
    assert_int_equal(mqtt_wire_header(reserved, 2, &type, &flags, &rem, &err), MR_EPARSE);
    assert_non_null(strstr(err.msg, "reserved packet type 15"));
}

static void test_connect_subscribe(void **state)
{
    (void)state;
    uint8_t buf[512];
    struct mqtt_packet p;
    struct mr_err err;
    struct mqtt_connect c = {.client_id = "edge1",
                             .clean_session = false,
                             .keepalive_s = 30,
                             .username = "u",
                             .password = "secret"};
    long n = mqtt_wire_connect(buf, sizeof(buf), &c);
    assert_true(n > 0);
    assert_int_equal(mqtt_wire_decode(buf, (size_t)n, &p, &err), 0);
    assert_int_equal(p.type, MQTT_PKT_CONNECT);
    assert_int_equal(p.keepalive_s, 30);
    assert_int_equal(p.connect_flags, 0xc0);
    assert_int_equal(p.client_id.len, 5);
    assert_memory_equal(p.client_id.ptr, "edge1", 5);
    assert_memory_equal(p.username.ptr, "u", 1);
    assert_memory_equal(p.password.ptr, "secret", 6);
    c = (struct mqtt_connect){.client_id = "", .clean_session = true, .keepalive_s = 5};
    n = mqtt_wire_connect(buf, sizeof(buf), &c);
    assert_int_equal(n, 14);
    assert_int_equal(mqtt_wire_decode(buf, (size_t)n, &p, &err), 0);
    assert_int_equal(p.connect_flags, 0x02);
    assert_int_equal(mqtt_wire_connect(buf, 13, &c), MR_ETOOBIG);

    const char *filters[] = {"plant/+/+/temp", "spBv1.0/#"};
    n = mqtt_wire_subscribe(buf, sizeof(buf), 7, filters, 2, 1);
    assert_true(n > 0);
    assert_int_equal(buf[0], 0x82);
    assert_int_equal(mqtt_wire_decode(buf, (size_t)n, &p, &err), 0);
    assert_int_equal(p.type, MQTT_PKT_SUBSCRIBE);
    assert_int_equal(p.id, 7);
    assert_int_equal(p.nfilters, 2);
    assert_int_equal(p.filter_qos, 1);
    assert_memory_equal(p.filter.ptr, "plant/+/+/temp", p.filter.len);
}

static void test_publish_and_acks(void **state)
{
    (void)state;
    static uint8_t buf[70000];
    static char payload[20000];
    memset(payload, 'x', sizeof(payload));
    struct mqtt_packet p;
    struct mr_err err;
    /* QoS 0/1/2, payload sizes around the remaining-length boundaries */
    static const size_t sizes[] = {0, 100, 116, 117, 16000, 16370, 19999};
    for (uint8_t qos = 0; qos <= 2; qos++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            long n =
                mqtt_wire_publish(buf, sizeof(buf), "a/b/c", payload, sizes[i], qos, 513, qos == 1);
            assert_true(n > 0);
            assert_int_equal(mqtt_wire_decode(buf, (size_t)n, &p, &err), 0);
            assert_int_equal(p.type, MQTT_PKT_PUBLISH);
            assert_int_equal(p.qos, qos);
            assert_int_equal(p.retain, qos == 1);
            assert_int_equal(p.id, qos > 0 ? 513 : 0);
            assert_int_equal(p.topic.len, 5);
            assert_memory_equal(p.topic.ptr, "a/b/c", 5);
            assert_int_equal(p.payload_len, sizes[i]);
            /* a truncated packet is never "exactly one" */
            assert_int_equal(mqtt_wire_decode(buf, (size_t)n - 1, &p, &err), MR_EPARSE);
        }
    }
    static const uint8_t acks[] = {MQTT_PKT_PUBACK, MQTT_PKT_PUBREC, MQTT_PKT_PUBREL,
                                   MQTT_PKT_PUBCOMP, MQTT_PKT_UNSUBACK};
    for (size_t i = 0; i < sizeof(acks); i++) {
        long n = mqtt_wire_ack(buf, sizeof(buf), acks[i], 65535);
        assert_int_equal(n, 4);
        assert_int_equal(mqtt_wire_decode(buf, 4, &p, &err), 0);
        assert_int_equal(p.type, acks[i]);
        assert_int_equal(p.id, 65535);
    }
    static const uint8_t bare[] = {MQTT_PKT_PINGREQ, MQTT_PKT_PINGRESP, MQTT_PKT_DISCONNECT};
    for (size_t i = 0; i < sizeof(bare); i++) {
        assert_int_equal(mqtt_wire_bare(buf, sizeof(buf), bare[i]), 2);
        assert_int_equal(mqtt_wire_decode(buf, 2, &p, &err), 0);
        assert_int_equal(p.type, bare[i]);
    }
    const uint8_t connack[] = {0x20, 2, 1, 0};
    assert_int_equal(mqtt_wire_decode(connack, 4, &p, &err), 0);
    assert_true(p.session_present);
    assert_int_equal(p.return_code, 0);
    const uint8_t suback[] = {0x90, 5, 0, 1, 0, 2, 0x80};
    assert_int_equal(mqtt_wire_decode(suback, sizeof(suback), &p, &err), 0);
    assert_int_equal(p.id, 1);
    assert_int_equal(p.ngranted, 3);
    assert_int_equal(p.granted[2], 0x80);
    assert_string_equal(mqtt_wire_connack_reason(5), "not authorized");
    assert_string_equal(mqtt_wire_connack_reason(4), "bad user name or password");
}

static void test_publish_head(void **state)
{
    (void)state;
    static uint8_t buf[300];
    long n = mqtt_wire_publish(buf, sizeof(buf), "big/one", "0123456789", 10, 1, 42, false);
    assert_int_equal(n, 2 + 2 + 7 + 2 + 10);
    struct mqtt_packet p;
    struct mr_err err;
    /* body starts after the 2-byte fixed header; pretend the payload is 1 MB */
    assert_int_equal(mqtt_wire_publish_head(buf[0] & 15, buf + 2, 5, 1000000, &p, &err), 1);
    assert_int_equal(mqtt_wire_publish_head(buf[0] & 15, buf + 2, 11, 1000000, &p, &err), 0);
    assert_int_equal(p.id, 42);
    assert_int_equal(p.qos, 1);
    assert_int_equal(p.payload_len, 1000000 - 11);
    assert_memory_equal(p.topic.ptr, "big/one", 7);
    assert_int_equal(mqtt_wire_publish_head(buf[0] & 15, buf + 2, 11, 5, &p, &err), MR_EPARSE);
}

/* Malformed packets: each rejected, the message naming the packet type and the problem. */
static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        uint8_t bytes[16];
        size_t len;
        const char *msg;
    } cases[] = {
        {{0x36, 5, 0, 1, 'a', 0, 1}, 7, "PUBLISH: QoS 3 is not allowed"},
        {{0x38, 3, 0, 1, 'a'}, 5, "PUBLISH: DUP set on a QoS 0 message"},
        {{0x32, 3, 0, 1, 'a'}, 5, "PUBLISH: body shorter than its topic and packet id"},
        {{0x30, 3, 0, 5, 'a'}, 5, "PUBLISH: body shorter than its topic"},
        {{0x30, 4, 0, 2, 'a', '#'}, 6, "PUBLISH: topic empty or with a wildcard or NUL"},
        {{0x30, 4, 0, 2, 'a', 0}, 6, "PUBLISH: topic empty or with a wildcard or NUL"},
        {{0x30, 2, 0, 0}, 4, "PUBLISH: topic empty"},
        {{0x32, 5, 0, 1, 'a', 0, 0}, 7, "PUBLISH: packet id 0"},
        {{0x40, 3, 0, 1, 0}, 5, "PUBACK: body must be 2 bytes"},
        {{0x40, 2, 0, 0}, 4, "PUBACK: packet id 0"},
        {{0x60, 2, 0, 1}, 4, "PUBREL: reserved flags"},
        {{0x21, 2, 0, 0}, 4, "CONNACK: reserved flags"},
        {{0x20, 2, 2, 0}, 4, "CONNACK: body must be 2 bytes, flags 0 or 1"},
        {{0x20, 1, 0}, 3, "CONNACK: body must be 2 bytes"},
        {{0x90, 3, 0, 1, 3}, 5, "SUBACK: granted QoS not 0, 1, 2 or 0x80"},
        {{0x90, 2, 0, 1}, 4, "SUBACK: body must hold a packet id and granted QoS"},
        {{0xd0, 1, 0}, 3, "PINGRESP: must have no body"},
        {{0x82, 2, 0, 1}, 4, "SUBSCRIBE: no topic filter"},
        {{0x82, 6, 0, 1, 0, 1, 'a', 3}, 8, "SUBSCRIBE: bad topic filter or requested QoS"},
        {{0x10, 7, 0, 4, 'M', 'Q', 'T', 'T', 3}, 9, "CONNECT: body too short"},
        {{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 3, 2, 0, 5, 0, 0}, 14, "CONNECT: not MQTT 3.1.1"},
        {{0x20, 3, 0, 0}, 4, "do not hold exactly one"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mqtt_packet p;
        struct mr_err err;
        int rc = mqtt_wire_decode(cases[i].bytes, cases[i].len, &p, &err);
        if (rc != MR_EPARSE || strstr(err.msg, cases[i].msg) == NULL) {
            fail_msg("case %zu: rc %d, '%s' (wanted '%s')", i, rc, err.msg, cases[i].msg);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remaining_length), cmocka_unit_test(test_connect_subscribe),
        cmocka_unit_test(test_publish_and_acks), cmocka_unit_test(test_publish_head),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
