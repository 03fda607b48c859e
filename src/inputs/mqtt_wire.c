/* MQTT 3.1.1 packet codec: see mqtt_wire.h. Every length read from the wire is checked against
 * what is left of the packet before it is used; a bad packet is an MR_EPARSE naming its type. */
#include "inputs/mqtt_wire.h"

#include <string.h>

static const char *const pkt_names[16] = {"reserved",  "CONNECT",  "CONNACK",     "PUBLISH",
                                          "PUBACK",    "PUBREC",   "PUBREL",      "PUBCOMP",
                                          "SUBSCRIBE", "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
                                          "PINGREQ",   "PINGRESP", "DISCONNECT",  "reserved"};

const char *mqtt_wire_name(uint8_t type)
{
    return pkt_names[type & 15];
}

const char *mqtt_wire_connack_reason(uint8_t code)
{
    static const char *const reasons[] = {
        "accepted",
        "unacceptable protocol version (the broker does not speak MQTT 3.1.1)",
        "client identifier rejected (check client_id)",
        "server unavailable",
        "bad user name or password",
        "not authorized",
    };
    return code < sizeof(reasons) / sizeof(reasons[0]) ? reasons[code] : "unknown return code";
}

int mqtt_wire_header(const uint8_t *buf, size_t len, uint8_t *type, uint8_t *flags,
                     size_t *remaining, struct mr_err *err)
{
    if (len < 2) {
        return 0;
    }
    uint8_t t = buf[0] >> 4;
    if (t == 0 || t == 15) {
        return MR_ERR_SET(err, MR_EPARSE, "MQTT: reserved packet type %u", t);
    }
    size_t value = 0;
    for (size_t i = 1; i < MQTT_WIRE_MAX_HEADER; i++) {
        if (i >= len) {
            return 0;
        }
        value |= (size_t)(buf[i] & 0x7f) << (7 * (i - 1));
        if ((buf[i] & 0x80) == 0) {
            *type = t;
            *flags = buf[0] & 15;
            *remaining = value;
            return (int)i + 1;
        }
    }
    return MR_ERR_SET(err, MR_EPARSE, "MQTT %s: remaining length longer than 4 bytes",
                      mqtt_wire_name(t));
}

/* A cursor over a packet body. */
struct rd {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static uint16_t rd_u16(struct rd *r)
{
    if (r->left < 2) {
        r->bad = true;
        return 0;
    }
    uint16_t v = (uint16_t)(r->p[0] << 8 | r->p[1]);
    r->p += 2;
    r->left -= 2;
    return v;
}

static uint8_t rd_u8(struct rd *r)
{
    if (r->left < 1) {
        r->bad = true;
        return 0;
    }
    r->left--;
    return *r->p++;
}

static struct mqtt_str rd_str(struct rd *r)
{
    struct mqtt_str s = {.ptr = "", .len = 0};
    size_t n = rd_u16(r);
    if (r->bad || r->left < n) {
        r->bad = true;
        return s;
    }
    s.ptr = (const char *)r->p;
    s.len = n;
    r->p += n;
    r->left -= n;
    return s;
}

/* Flags the fixed header must carry for each type (PUBLISH's are checked on their own). */
static bool flags_ok(uint8_t type, uint8_t flags)
{
    if (type == MQTT_PKT_PUBLISH) {
        return true;
    }
    bool two =
        type == MQTT_PKT_PUBREL || type == MQTT_PKT_SUBSCRIBE || type == MQTT_PKT_UNSUBSCRIBE;
    return flags == (two ? 2 : 0);
}

static int bad(struct mr_err *err, uint8_t type, const char *what)
{
    return MR_ERR_SET(err, MR_EPARSE, "MQTT %s: %s", mqtt_wire_name(type), what);
}

static int decode_publish_head(struct rd *r, uint8_t flags, struct mqtt_packet *p,
                               struct mr_err *err)
{
    p->qos = (flags >> 1) & 3;
    p->dup = (flags & 8) != 0;
    p->retain = (flags & 1) != 0;
    if (p->qos == 3) {
        return bad(err, MQTT_PKT_PUBLISH, "QoS 3 is not allowed");
    }
    if (p->qos == 0 && p->dup) {
        return bad(err, MQTT_PKT_PUBLISH, "DUP set on a QoS 0 message");
    }
    p->topic = rd_str(r);
    if (!r->bad && p->qos > 0) {
        p->id = rd_u16(r);
    }
    if (r->bad) {
        return bad(err, MQTT_PKT_PUBLISH, "body shorter than its topic and packet id");
    }
    if (p->topic.len == 0 || memchr(p->topic.ptr, '\0', p->topic.len) != NULL ||
        memchr(p->topic.ptr, '+', p->topic.len) != NULL ||
        memchr(p->topic.ptr, '#', p->topic.len) != NULL) {
        return bad(err, MQTT_PKT_PUBLISH, "topic empty or with a wildcard or NUL");
    }
    if (p->qos > 0 && p->id == 0) {
        return bad(err, MQTT_PKT_PUBLISH, "packet id 0");
    }
    return 0;
}

int mqtt_wire_publish_head(uint8_t flags, const uint8_t *body, size_t avail, size_t remaining,
                           struct mqtt_packet *p, struct mr_err *err)
{
    memset(p, 0, sizeof(*p));
    p->type = MQTT_PKT_PUBLISH;
    p->flags = flags;
    if (avail < 2) {
        return 1;
    }
    size_t need = 2 + (size_t)(body[0] << 8 | body[1]) + (((flags >> 1) & 3) > 0 ? 2 : 0);
    if (need > remaining) {
        return bad(err, MQTT_PKT_PUBLISH, "body shorter than its topic and packet id");
    }
    if (avail < need) {
        return 1;
    }
    struct rd r = {.p = body, .left = need};
    int rc = decode_publish_head(&r, flags, p, err);
    p->payload_len = remaining - need;
    return rc;
}

static int decode_connect(struct rd *r, struct mqtt_packet *p, struct mr_err *err)
{
    struct mqtt_str proto = rd_str(r);
    uint8_t level = rd_u8(r);
    p->connect_flags = rd_u8(r);
    p->keepalive_s = rd_u16(r);
    p->client_id = rd_str(r);
    uint8_t f = p->connect_flags;
    if (!r->bad && (f & 0x04)) { /* will topic and message: skipped */
        rd_str(r);
        rd_str(r);
    }
    if (!r->bad && (f & 0x80)) {
        p->username = rd_str(r);
    }
    if (!r->bad && (f & 0x40)) {
        p->password = rd_str(r);
    }
    if (r->bad) {
        return bad(err, MQTT_PKT_CONNECT, "body too short");
    }
    if (proto.len != 4 || memcmp(proto.ptr, "MQTT", 4) != 0 || level != 4) {
        return bad(err, MQTT_PKT_CONNECT, "not MQTT 3.1.1 (protocol MQTT, level 4)");
    }
    if ((f & 0x01) || ((f & 0x40) && !(f & 0x80))) {
        return bad(err, MQTT_PKT_CONNECT, "bad connect flags");
    }
    return 0;
}

static int decode_filters(struct rd *r, struct mqtt_packet *p, bool with_qos, struct mr_err *err)
{
    while (r->left > 0 && !r->bad) {
        struct mqtt_str f = rd_str(r);
        uint8_t q = with_qos ? rd_u8(r) : 0;
        if (r->bad || f.len == 0 || q > 2) {
            return bad(err, p->type, "bad topic filter or requested QoS");
        }
        if (p->nfilters++ == 0) {
            p->filter = f;
            p->filter_qos = q;
        }
    }
    if (p->nfilters == 0) {
        return bad(err, p->type, "no topic filter");
    }
    return 0;
}

static int decode_body(struct rd *r, struct mqtt_packet *p, struct mr_err *err)
{
    switch (p->type) {
    case MQTT_PKT_CONNECT:
        return decode_connect(r, p, err);
    case MQTT_PKT_CONNACK:
        if (r->left != 2 || (r->p[0] & 0xfe) != 0) {
            return bad(err, p->type, "body must be 2 bytes, flags 0 or 1");
        }
        p->session_present = r->p[0] & 1;
        p->return_code = r->p[1];
        return 0;
    case MQTT_PKT_PUBLISH: {
        int rc = decode_publish_head(r, p->flags, p, err);
        p->payload = r->p;
        p->payload_len = r->left;
        return rc;
    }
    case MQTT_PKT_PUBACK:
    case MQTT_PKT_PUBREC:
    case MQTT_PKT_PUBREL:
    case MQTT_PKT_PUBCOMP:
    case MQTT_PKT_UNSUBACK:
        if (r->left != 2) {
            return bad(err, p->type, "body must be 2 bytes (packet id)");
        }
        p->id = rd_u16(r);
        return p->id == 0 ? bad(err, p->type, "packet id 0") : 0;
    case MQTT_PKT_SUBACK:
        p->id = rd_u16(r);
        if (r->bad || r->left == 0) {
            return bad(err, p->type, "body must hold a packet id and granted QoS");
        }
        for (size_t i = 0; i < r->left; i++) {
            if (r->p[i] > 2 && r->p[i] != 0x80) {
                return bad(err, p->type, "granted QoS not 0, 1, 2 or 0x80");
            }
        }
        p->granted = r->p;
        p->ngranted = r->left;
        return 0;
    case MQTT_PKT_SUBSCRIBE:
    case MQTT_PKT_UNSUBSCRIBE:
        p->id = rd_u16(r);
        if (r->bad || p->id == 0) {
            return bad(err, p->type, "missing or zero packet id");
        }
        return decode_filters(r, p, p->type == MQTT_PKT_SUBSCRIBE, err);
    default: /* PINGREQ, PINGRESP, DISCONNECT */
        return r->left == 0 ? 0 : bad(err, p->type, "must have no body");
    }
}

int mqtt_wire_decode(const uint8_t *buf, size_t len, struct mqtt_packet *p, struct mr_err *err)
{
    uint8_t type = 0, flags = 0;
    size_t remaining = 0;
    memset(p, 0, sizeof(*p));
    int h = mqtt_wire_header(buf, len, &type, &flags, &remaining, err);
    if (h < 0) {
        return h;
    }
    if (h == 0 || len - (size_t)h != remaining) {
        return MR_ERR_SET(err, MR_EPARSE, "MQTT packet: %zu bytes do not hold exactly one", len);
    }
    p->type = type;
    p->flags = flags;
    if (!flags_ok(type, flags)) {
        return bad(err, type, "reserved flags in the fixed header");
    }
    struct rd r = {.p = buf + h, .left = remaining};
    return decode_body(&r, p, err);
}

/* ---- encoding ---- */

long mqtt_wire_remaining_encode(size_t remaining, uint8_t *out, size_t cap)
{
    if (remaining > MQTT_WIRE_MAX_REMAINING) {
        return MR_ETOOBIG;
    }
    size_t n = 0;
    do {
        if (n == cap) {
            return MR_ETOOBIG;
        }
        uint8_t b = remaining & 0x7f;
        remaining >>= 7;
        out[n++] = b | (remaining > 0 ? 0x80 : 0);
    } while (remaining > 0);
    return (long)n;
}

/* A cursor writing a packet; overflow is remembered and reported once at the end. */
struct wr {
    uint8_t *p;
    size_t cap, n;
    bool over;
};

static void wr_bytes(struct wr *w, const void *b, size_t len)
{
    if (w->over || w->cap - w->n < len) {
        w->over = true;
        return;
    }
    if (len > 0) {
        memcpy(w->p + w->n, b, len);
    }
    w->n += len;
}

static void wr_u16(struct wr *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    wr_bytes(w, b, 2);
}

static void wr_str(struct wr *w, const char *s, size_t len)
{
    if (len > 65535) {
        w->over = true;
        return;
    }
    wr_u16(w, (uint16_t)len);
    wr_bytes(w, s, len);
}

static void wr_header(struct wr *w, uint8_t byte0, size_t remaining)
{
    uint8_t b[MQTT_WIRE_MAX_HEADER];
    b[0] = byte0;
    long n = mqtt_wire_remaining_encode(remaining, b + 1, sizeof(b) - 1);
    if (n < 0) {
        w->over = true;
        return;
    }
    wr_bytes(w, b, (size_t)n + 1);
}

static long wr_done(const struct wr *w)
{
    return w->over ? MR_ETOOBIG : (long)w->n;
}

static size_t opt_len(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

long mqtt_wire_connect(uint8_t *out, size_t cap, const struct mqtt_connect *c)
{
    const char *id = c->client_id != NULL ? c->client_id : "";
    bool user = c->username != NULL, pass = user && c->password != NULL;
    size_t rem = 10 + 2 + strlen(id) + (user ? 2 + opt_len(c->username) : 0) +
                 (pass ? 2 + opt_len(c->password) : 0);
    uint8_t flags =
        (uint8_t)((c->clean_session ? 0x02 : 0) | (user ? 0x80 : 0) | (pass ? 0x40 : 0));
    struct wr w = {.p = out, .cap = cap};
    wr_header(&w, MQTT_PKT_CONNECT << 4, rem);
    wr_str(&w, "MQTT", 4);
    uint8_t lv[2] = {4, flags};
    wr_bytes(&w, lv, 2);
    wr_u16(&w, c->keepalive_s);
    wr_str(&w, id, strlen(id));
    if (user) {
        wr_str(&w, c->username, strlen(c->username));
    }
    if (pass) {
        wr_str(&w, c->password, strlen(c->password));
    }
    return wr_done(&w);
}

long mqtt_wire_subscribe(uint8_t *out, size_t cap, uint16_t id, const char *const *filters,
                         size_t n, uint8_t qos)
{
    size_t rem = 2;
    for (size_t i = 0; i < n; i++) {
        rem += 2 + strlen(filters[i]) + 1;
    }
    struct wr w = {.p = out, .cap = cap};
    wr_header(&w, MQTT_PKT_SUBSCRIBE << 4 | 2, rem);
    wr_u16(&w, id);
    for (size_t i = 0; i < n; i++) {
        wr_str(&w, filters[i], strlen(filters[i]));
        wr_bytes(&w, &qos, 1);
    }
    return wr_done(&w);
}

long mqtt_wire_publish(uint8_t *out, size_t cap, const char *topic, const void *payload, size_t len,
                       uint8_t qos, uint16_t id, bool retain)
{
    size_t tlen = strlen(topic);
    size_t rem = 2 + tlen + (qos > 0 ? 2 : 0) + len;
    struct wr w = {.p = out, .cap = cap};
    wr_header(&w, (uint8_t)(MQTT_PKT_PUBLISH << 4 | (qos & 3) << 1 | (retain ? 1 : 0)), rem);
    wr_str(&w, topic, tlen);
    if (qos > 0) {
        wr_u16(&w, id);
    }
    wr_bytes(&w, payload, len);
    return wr_done(&w);
}

long mqtt_wire_ack(uint8_t *out, size_t cap, uint8_t type, uint16_t id)
{
    struct wr w = {.p = out, .cap = cap};
    wr_header(&w, (uint8_t)(type << 4 | (type == MQTT_PKT_PUBREL ? 2 : 0)), 2);
    wr_u16(&w, id);
    return wr_done(&w);
}

long mqtt_wire_bare(uint8_t *out, size_t cap, uint8_t type)
{
    struct wr w = {.p = out, .cap = cap};
    wr_header(&w, (uint8_t)(type << 4), 0);
    return wr_done(&w);
}
