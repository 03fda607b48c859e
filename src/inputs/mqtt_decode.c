/* The MQTT input's payload decoder: topic template -> asset and signal, payload -> records.
 *
 * Each message's payload is copied once into the batch arena, and records borrow their string
 * values and tag values from that copy (the payload lives in the client's read buffer, which the
 * next read reuses). Names go through a per-input intern memo, so a stream from a few thousand
 * topics costs a fingerprint check per record, not a hash. A message that fails to decode leaves
 * the batch as it was: records of one message arrive all or not at all.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/jsonpath.h"
#include "inputs/mqtt_internal.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"

#define NAME_MAX_LEN 512

int mqtt_template_parse(struct mqtt_template *t, const char *tpl, struct mr_err *err)
{
    memset(t, 0, sizeof(*t));
    const char *p = tpl;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (t->n == MQTT_MAX_SEGMENTS) {
            return MR_ERR_SET(err, MR_EINVAL, "topic_template has more than %d levels",
                              MQTT_MAX_SEGMENTS);
        }
        struct mqtt_seg *s = &t->segs[t->n++];
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            bool sig = len == 8 && memcmp(p, "{signal}", 8) == 0;
            if (sig && t->has_signal) {
                return MR_ERR_SET(err, MR_EINVAL, "topic_template names {signal} twice");
            }
            s->kind = sig ? SEG_SIGNAL : SEG_ASSET;
            t->has_signal |= sig;
            t->nasset += sig ? 0 : 1;
        } else if (len == 1 && p[0] == '+') {
            s->kind = SEG_ANY;
        } else if (len == 1 && p[0] == '#') {
            if (slash != NULL) {
                return MR_ERR_SET(err, MR_EINVAL, "topic_template: '#' must be the last level");
            }
            s->kind = SEG_REST;
        } else if (memchr(p, '{', len) != NULL || memchr(p, '}', len) != NULL ||
                   memchr(p, '+', len) != NULL || memchr(p, '#', len) != NULL) {
            return MR_ERR_SET(err, MR_EINVAL,
                              "topic_template level '%.*s': a level is text, {name}, + or #",
                              (int)len, p);
        } else {
            s->kind = SEG_LITERAL;
        }
        s->text = p;
        s->len = len;
        if (slash == NULL) {
            return 0;
        }
        p = slash + 1;
    }
}

long mqtt_template_filter(const struct mqtt_template *t, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct mqtt_seg *s = &t->segs[i];
        const char *text = s->kind == SEG_LITERAL ? s->text : s->kind == SEG_REST ? "#" : "+";
        size_t len = s->kind == SEG_LITERAL ? s->len : 1;
        if (k + len + 2 > cap) {
            return MR_ETOOBIG;
        }
        if (i > 0) {
            out[k++] = '/';
        }
        memcpy(out + k, text, len);
        k += len;
    }
    out[k] = '\0';
    return (long)k;
}

/* The asset path and signal a topic stands for. */
struct names_of {
    mr_name_id asset;
    const char *signal; /* from the topic, or NULL */
    size_t signal_len;
};

static int append(char *buf, size_t *k, const char *s, size_t len)
{
    if (*k + len + 1 >= NAME_MAX_LEN) {
        return MR_ETOOBIG;
    }
    memcpy(buf + *k, s, len);
    *k += len;
    return 0;
}

static int topic_names(struct mqtt_decoder *d, const char *topic, struct names_of *out,
                       struct mr_err *err)
{
    out->asset = d->fixed_asset;
    out->signal = NULL;
    out->signal_len = 0;
    if (!d->has_tpl) {
        const char *last = strrchr(topic, '/');
        out->signal = last != NULL ? last + 1 : topic;
        out->signal_len = strlen(out->signal);
        return 0;
    }
    char asset[NAME_MAX_LEN];
    size_t k = 0;
    if (d->conf->asset != NULL && append(asset, &k, d->conf->asset, strlen(d->conf->asset)) != 0) {
        return MR_ERR_SET(err, MR_ETOOBIG, "topic %s: asset path too long", topic);
    }
    const char *p = topic;
    for (size_t i = 0; i < d->tpl.n; i++) {
        const struct mqtt_seg *s = &d->tpl.segs[i];
        if (s->kind == SEG_REST) {
            p = NULL;
            break;
        }
        if (p == NULL) {
            return MR_ERR_SET(err, MR_EPARSE, "topic %s has fewer levels than topic_template",
                              topic);
        }
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (s->kind == SEG_LITERAL && (len != s->len || memcmp(p, s->text, len) != 0)) {
            return MR_ERR_SET(err, MR_EPARSE, "topic %s does not match topic_template at '%.*s'",
                              topic, (int)len, p);
        }
        if (s->kind == SEG_SIGNAL) {
            out->signal = p;
            out->signal_len = len;
        } else if (s->kind == SEG_ASSET) {
            if (len == 0 || (k > 0 && append(asset, &k, "/", 1) != 0) ||
                append(asset, &k, p, len) != 0) {
                return MR_ERR_SET(err, MR_EPARSE, "topic %s: empty or too long asset level", topic);
            }
        }
        p = slash != NULL ? slash + 1 : NULL;
    }
    if (p != NULL) {
        return MR_ERR_SET(err, MR_EPARSE, "topic %s has more levels than topic_template", topic);
    }
    if (d->tpl.nasset > 0) {
        int rc = mr_names_intern_memo(d->names, &d->memo, asset, k, &out->asset);
        if (rc != 0) {
            return MR_ERR_SET(err, rc, "topic %s: cannot intern the asset: %s", topic,
                              mr_strerror(rc));
        }
    }
    return 0;
}

/* Intern "a.b" (either part may be empty) as a signal name. */
static int signal_id(struct mqtt_decoder *d, const char *a, size_t alen, const char *b, size_t blen,
                     mr_name_id *id)
{
    char name[NAME_MAX_LEN];
    size_t k = 0;
    if (alen > 0 && append(name, &k, a, alen) != 0) {
        return MR_ETOOBIG;
    }
    if (alen > 0 && blen > 0 && append(name, &k, ".", 1) != 0) {
        return MR_ETOOBIG;
    }
    if (blen > 0 && append(name, &k, b, blen) != 0) {
        return MR_ETOOBIG;
    }
    if (k == 0) {
        return MR_EINVAL;
    }
    return mr_names_intern_memo(d->names, &d->memo, name, k, id);
}

/* ---- one message being decoded ---- */

struct msg {
    struct mqtt_decoder *d;
    const char *topic;
    struct names_of names;
    size_t first; /* d->nrecs when the message began */
    int64_t now_ns;
    struct mr_err *err;
    /* json */
    struct mr_json_leaf value, time, quality;
    bool has_value, has_time, has_quality;
};

static struct mr_record *new_record(struct msg *m)
{
    struct mqtt_decoder *d = m->d;
    if (d->nrecs - m->first >= MQTT_MAX_PER_MESSAGE || d->nrecs >= d->cap) {
        return NULL;
    }
    struct mr_record *r = &d->recs[d->nrecs++];
    memset(r, 0, offsetof(struct mr_record, tags));
    r->asset = m->names.asset;
    r->time_ns = m->now_ns;
    r->quality = MR_QUALITY_GOOD;
    return r;
}

static int too_many(struct msg *m)
{
    return MR_ERR_SET(m->err, MR_ETOOBIG, "topic %s: more than %d values in one message", m->topic,
                      MQTT_MAX_PER_MESSAGE);
}

static char *arena_take(struct mqtt_decoder *d, size_t len)
{
    if (d->arena_cap - d->arena_used < len) {
        return NULL;
    }
    char *p = d->arena + d->arena_used;
    d->arena_used += len;
    return p;
}

/* The message's base signal: the topic's {signal}, else the configured one (may be empty). */
static void base_signal(struct msg *m, const char **s, size_t *len)
{
    if (m->names.signal != NULL) {
        *s = m->names.signal;
        *len = m->names.signal_len;
    } else if (m->d->conf->signal != NULL) {
        *s = m->d->conf->signal;
        *len = strlen(*s);
    } else {
        *s = "";
        *len = 0;
    }
}

static int need_signal(struct msg *m, mr_name_id *id)
{
    const char *s;
    size_t len;
    base_signal(m, &s, &len);
    int rc = signal_id(m->d, s, len, "", 0, id);
    if (rc != 0) {
        return MR_ERR_SET(m->err, rc == MR_EINVAL ? MR_EPARSE : rc,
                          "topic %s: no signal name (set signal or {signal} in topic_template)",
                          m->topic);
    }
    return 0;
}

/* ---- format: value ---- */

static int decode_value(struct msg *m, const char *p, size_t len)
{
    while (len > 0 && isspace((unsigned char)p[len - 1])) {
        len--;
    }
    while (len > 0 && isspace((unsigned char)*p)) {
        p++;
        len--;
    }
    mr_name_id sig;
    int rc = need_signal(m, &sig);
    if (rc != 0) {
        return rc;
    }
    char text[72];
    struct mr_record *r = new_record(m);
    if (r == NULL) {
        return too_many(m);
    }
    r->signal = sig;
    int type = m->d->conf->data_type;
    if (type == MQTT_TYPE_STRING) {
        r->type = MR_VALUE_STRING;
        r->v.str = (struct mr_bytes){.ptr = p, .len = (uint32_t)len};
        return 0;
    }
    if (len == 0 || len >= sizeof(text)) {
        return MR_ERR_SET(m->err, MR_EPARSE, "topic %s: expected a %s", m->topic,
                          type == MQTT_TYPE_BOOLEAN ? "boolean" : "number");
    }
    memcpy(text, p, len);
    text[len] = '\0';
    char *end;
    if (type == MQTT_TYPE_BOOLEAN) {
        bool t = strcmp(text, "true") == 0 || strcmp(text, "1") == 0;
        if (!t && strcmp(text, "false") != 0 && strcmp(text, "0") != 0) {
            return MR_ERR_SET(m->err, MR_EPARSE, "topic %s: expected true/false, got '%s'",
                              m->topic, text);
        }
        r->type = MR_VALUE_BOOL;
        r->v.b = t;
    } else if (type == MQTT_TYPE_INTEGER) {
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (end == text || *end != '\0' || errno != 0) {
            return MR_ERR_SET(m->err, MR_EPARSE, "topic %s: expected an integer, got '%s'",
                              m->topic, text);
        }
        r->type = MR_VALUE_I64;
        r->v.i64 = v;
    } else {
        double v = strtod(text, &end);
        if (end == text || *end != '\0' || !isfinite(v)) {
            return MR_ERR_SET(m->err, MR_EPARSE, "topic %s: expected a number, got '%s'", m->topic,
                              text);
        }
        r->type = MR_VALUE_F64;
        r->v.f64 = v;
    }
    return 0;
}

/* ---- format: influx (line protocol) ---- */

static int lp_record(struct msg *m, const struct mr_lp_point *pt, const struct mr_lp_field *f)
{
    struct mr_record *r = new_record(m);
    if (r == NULL) {
        return too_many(m);
    }
    int rc = signal_id(m->d, pt->measurement.ptr, pt->measurement.len, f->key.ptr, f->key.len,
                       &r->signal);
    if (rc != 0) {
        return MR_ERR_SET(m->err, rc, "topic %s: bad signal name", m->topic);
    }
    if (pt->has_time) {
        r->time_ns = pt->time_ns;
    }
    mr_lineproto_field_value(f, r);
    for (size_t i = 0; i < pt->ntags && r->ntags < MR_RECORD_MAX_TAGS; i++) {
        mr_name_id key;
        rc = mr_names_intern_memo(m->d->names, &m->d->memo, pt->tags[i].key.ptr,
                                  pt->tags[i].key.len, &key);
        if (rc != 0) {
            return MR_ERR_SET(m->err, rc, "topic %s: bad tag name", m->topic);
        }
        r->tags[r->ntags++] = (struct mr_tag){.key = key, .value = pt->tags[i].value};
    }
    return 0;
}

static int decode_influx(struct msg *m, const char *p, size_t len)
{
    struct mqtt_decoder *d = m->d;
    size_t pos = 0, line_no = 0;
    const char *line;
    size_t line_len;
    while (mr_lineproto_next(p, len, &pos, &line, &line_len)) {
        line_no++;
        char *scratch = arena_take(d, line_len);
        struct mr_err e;
        int rc = scratch == NULL ? MR_ETOOBIG
                                 : mr_lineproto_parse_line(line, line_len, MR_LP_NS, d->lp, scratch,
                                                           line_len, &e);
        if (rc == MR_LP_EMPTY) {
            continue;
        }
        if (rc != 0) {
            return MR_ERR_SET(m->err, rc == MR_ETOOBIG ? MR_ETOOBIG : MR_EPARSE,
                              "topic %s: line %zu: %s", m->topic, line_no,
                              scratch == NULL ? "no room" : e.msg);
        }
        for (size_t i = 0; i < d->lp->nfields; i++) {
            rc = lp_record(m, d->lp, &d->lp->fields[i]);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* ---- format: json ---- */

static bool path_is(const struct mr_json_leaf *leaf, const char *path)
{
    return path != NULL && leaf->path_len == strlen(path) &&
           memcmp(leaf->path, path, leaf->path_len) == 0;
}

static int set_value(struct msg *m, struct mr_record *r, const struct mr_json_leaf *leaf)
{
    switch (leaf->kind) {
    case MR_JSON_NUMBER:
        r->type = MR_VALUE_F64;
        r->v.f64 = leaf->num;
        return isfinite(leaf->num) ? 0 : MR_ERANGE;
    case MR_JSON_BOOL:
        r->type = MR_VALUE_BOOL;
        r->v.b = leaf->b;
        return 0;
    case MR_JSON_STRING: {
        char *out = arena_take(m->d, leaf->raw_len);
        long n =
            leaf->escaped
                ? (out == NULL ? MR_ETOOBIG
                               : mr_json_unescape(leaf->raw, leaf->raw_len, out, leaf->raw_len))
                : (long)leaf->raw_len;
        if (n < 0) {
            return (int)n;
        }
        r->type = MR_VALUE_STRING;
        r->v.str = (struct mr_bytes){.ptr = leaf->escaped ? out : leaf->raw, .len = (uint32_t)n};
        return 0;
    }
    default:
        return MR_EPARSE; /* null */
    }
}

static int json_leaf(void *arg, const struct mr_json_leaf *leaf)
{
    struct msg *m = arg;
    const struct mqtt_conf *c = m->d->conf;
    if (path_is(leaf, c->json_time_key)) {
        m->time = *leaf;
        m->has_time = true;
        return 0;
    }
    if (path_is(leaf, c->json_quality_key)) {
        m->quality = *leaf;
        m->has_quality = true;
        return 0;
    }
    if (!c->json_flatten) {
        if (path_is(leaf, c->json_value_key)) {
            m->value = *leaf;
            m->has_value = true;
        }
        return 0;
    }
    if (leaf->kind != MR_JSON_NUMBER && leaf->kind != MR_JSON_BOOL) {
        return 0; /* flattening keeps measurements: numbers and booleans */
    }
    struct mr_record *r = new_record(m);
    if (r == NULL) {
        return too_many(m);
    }
    const char *base;
    size_t blen;
    base_signal(m, &base, &blen);
    int rc = signal_id(m->d, base, blen, leaf->path, leaf->path_len, &r->signal);
    if (rc == 0) {
        rc = set_value(m, r, leaf);
    }
    if (rc != 0) {
        return MR_ERR_SET(m->err, rc, "topic %s: JSON %s: cannot be kept", m->topic,
                          leaf->path_len > 0 ? leaf->path : "value");
    }
    return 0;
}

static int json_time(struct msg *m, int64_t *ns)
{
    const struct mr_json_leaf *t = &m->time;
    int fmt = m->d->conf->json_time_format;
    if (t->kind == MR_JSON_STRING && (fmt == MQTT_TIME_AUTO || fmt == MQTT_TIME_RFC3339)) {
        return mr_time_parse_rfc3339(t->raw, t->raw_len, ns);
    }
    if (t->kind != MR_JSON_NUMBER || fmt == MQTT_TIME_RFC3339) {
        return MR_EPARSE;
    }
    double v = t->num, a = fabs(v);
    if (fmt == MQTT_TIME_AUTO) {
        /* By magnitude: seconds until 5138 AD, else ms, us, ns (documented). */
        fmt = a < 1e11   ? MQTT_TIME_UNIX
              : a < 1e14 ? MQTT_TIME_UNIX_MS
              : a < 1e17 ? MQTT_TIME_UNIX_US
                         : MQTT_TIME_UNIX_NS;
    }
    static const double scale[] = {[MQTT_TIME_UNIX] = 1e9,
                                   [MQTT_TIME_UNIX_MS] = 1e6,
                                   [MQTT_TIME_UNIX_US] = 1e3,
                                   [MQTT_TIME_UNIX_NS] = 1};
    if (t->is_int && fmt == MQTT_TIME_UNIX_NS) {
        *ns = t->i;
        return 0;
    }
    if (t->is_int && fmt == MQTT_TIME_UNIX_MS && t->i < INT64_MAX / 1000000 &&
        t->i > INT64_MIN / 1000000) {
        *ns = t->i * 1000000; /* exact, the common case */
        return 0;
    }
    double ns_d = v * scale[fmt];
    if (!(ns_d > -9.2e18 && ns_d < 9.2e18)) {
        return MR_ERANGE;
    }
    *ns = (int64_t)llround(ns_d);
    return 0;
}

static int json_quality(const struct mr_json_leaf *q, uint8_t *out)
{
    if (q->kind == MR_JSON_BOOL) {
        *out = q->b ? MR_QUALITY_GOOD : MR_QUALITY_BAD;
        return 0;
    }
    if (q->kind == MR_JSON_NUMBER && q->is_int && q->i >= 0 && q->i <= UINT32_MAX) {
        /* An OPC UA status code: its two top bits are the class. */
        uint32_t cls = (uint32_t)q->i >> 30;
        *out = cls == 0 ? MR_QUALITY_GOOD : cls == 1 ? MR_QUALITY_UNCERTAIN : MR_QUALITY_BAD;
        return 0;
    }
    if (q->kind == MR_JSON_STRING) {
        static const char *const names[] = {"good", "uncertain", "bad"};
        for (uint8_t i = 0; i < 3; i++) {
            if (q->raw_len == strlen(names[i]) && strncasecmp(q->raw, names[i], q->raw_len) == 0) {
                *out = i;
                return 0;
            }
        }
    }
    return MR_EPARSE;
}

static int decode_json(struct msg *m, const char *p, size_t len)
{
    const struct mqtt_conf *c = m->d->conf;
    int rc = mr_json_walk(p, len, json_leaf, m, m->err);
    if (rc != 0) {
        if (m->err->msg[0] == '\0' || strncmp(m->err->msg, "JSON", 4) == 0) {
            char why[sizeof(m->err->msg)];
            snprintf(why, sizeof(why), "%s", m->err->msg);
            MR_ERR_SET(m->err, rc, "topic %s: %s", m->topic, why);
        }
        return rc;
    }
    int64_t t = m->now_ns;
    uint8_t q = MR_QUALITY_GOOD;
    if (m->has_time && json_time(m, &t) != 0) {
        return MR_ERR_SET(m->err, MR_EPARSE, "topic %s: %s is not a time (%s)", m->topic,
                          c->json_time_key, "RFC 3339 text or a Unix time number");
    }
    if (m->has_quality && json_quality(&m->quality, &q) != 0) {
        return MR_ERR_SET(m->err, MR_EPARSE,
                          "topic %s: %s must be good/uncertain/bad, a boolean or an OPC UA "
                          "status code",
                          m->topic, c->json_quality_key);
    }
    if (!c->json_flatten) {
        if (!m->has_value) {
            return MR_ERR_SET(m->err, MR_EPARSE, "topic %s: no value at JSON path '%s'", m->topic,
                              c->json_value_key);
        }
        mr_name_id sig;
        if ((rc = need_signal(m, &sig)) != 0) {
            return rc;
        }
        struct mr_record *r = new_record(m);
        if (r == NULL) {
            return too_many(m);
        }
        r->signal = sig;
        if (set_value(m, r, &m->value) != 0) {
            return MR_ERR_SET(m->err, MR_EPARSE, "topic %s: value at '%s' is null or unusable",
                              m->topic, c->json_value_key);
        }
    }
    for (size_t i = m->first; i < m->d->nrecs; i++) {
        m->d->recs[i].time_ns = t;
        m->d->recs[i].quality = q;
    }
    return 0;
}

long mqtt_decode(struct mqtt_decoder *d, const char *topic, const void *payload, size_t len,
                 int64_t now_ns, struct mr_err *err)
{
    struct msg m = {.d = d, .topic = topic, .first = d->nrecs, .now_ns = now_ns, .err = err};
    size_t arena_mark = d->arena_used;
    int rc;
    mr_err_clear(err);
    if (len > d->conf->max_payload) {
        return MR_ERR_SET(err, MR_ETOOBIG, "topic %s: message of %zu bytes exceeds max_payload",
                          topic, len);
    }
    rc = topic_names(d, topic, &m.names, err);
    if (rc != 0) {
        return rc;
    }
    if (m.names.asset == 0) {
        return MR_ERR_SET(err, MR_EPARSE, "topic %s: no asset (set asset or topic_template)",
                          topic);
    }
    char *copy = arena_take(d, len);
    if (copy == NULL) {
        return MR_ERR_SET(err, MR_ETOOBIG, "topic %s: batch arena full", topic);
    }
    memcpy(copy, payload, len);
    switch (d->conf->data_format) {
    case MQTT_FORMAT_VALUE:
        rc = decode_value(&m, copy, len);
        break;
    case MQTT_FORMAT_INFLUX:
        rc = decode_influx(&m, copy, len);
        break;
    case MQTT_FORMAT_JSON:
        rc = decode_json(&m, copy, len);
        break;
    default:
        /* Sparkplug B keeps per-node state (aliases, sequence numbers): the input hands those
         * messages to its mr_sparkplug state, which appends through mqtt_decoder_add. */
        rc = MR_ERR_SET(err, MR_ENOTSUP, "topic %s: Sparkplug B is decoded by the input", topic);
        break;
    }
    if (rc != 0) {
        d->nrecs = m.first;
        d->arena_used = arena_mark;
        return rc;
    }
    return (long)(d->nrecs - m.first);
}

bool mqtt_decoder_room(const struct mqtt_decoder *d, size_t len)
{
    /* The copy, plus at most as much again for unescaped strings. */
    return d->nrecs + MQTT_MAX_PER_MESSAGE <= d->cap &&
           d->arena_cap - d->arena_used >= 2 * len + 16;
}

bool mqtt_decoder_full(const struct mqtt_decoder *d)
{
    return d->nrecs >= (size_t)d->conf->batch || d->arena_used > d->arena_cap / 2;
}

int mqtt_decoder_add(struct mqtt_decoder *d, const struct mr_record *r)
{
    if (d->nrecs >= d->cap || r->type == MR_VALUE_SAMPLES || r->ntags > MR_RECORD_MAX_TAGS) {
        return d->nrecs >= d->cap ? MR_ETOOBIG : MR_EINVAL;
    }
    size_t need = r->type == MR_VALUE_STRING ? r->v.str.len : 0;
    for (uint16_t i = 0; i < r->ntags; i++) {
        need += r->tags[i].value.len;
    }
    if (d->arena_cap - d->arena_used < need) {
        return MR_ETOOBIG;
    }
    struct mr_record *out = &d->recs[d->nrecs];
    memcpy(out, r, offsetof(struct mr_record, tags) + r->ntags * sizeof(r->tags[0]));
    if (r->type == MR_VALUE_STRING && r->v.str.len > 0) {
        char *s = arena_take(d, r->v.str.len);
        memcpy(s, r->v.str.ptr, r->v.str.len);
        out->v.str.ptr = s;
    }
    for (uint16_t i = 0; i < r->ntags; i++) {
        if (r->tags[i].value.len > 0) {
            char *s = arena_take(d, r->tags[i].value.len);
            memcpy(s, r->tags[i].value.ptr, r->tags[i].value.len);
            out->tags[i].value.ptr = s;
        }
    }
    d->nrecs++;
    return 0;
}

void mqtt_decoder_reset(struct mqtt_decoder *d)
{
    d->nrecs = 0;
    d->arena_used = 0;
}

int mqtt_decoder_init(struct mqtt_decoder *d, const struct mqtt_conf *conf, struct mr_names *names,
                      struct mr_err *err)
{
    int rc;
    memset(d, 0, sizeof(*d));
    d->conf = conf;
    d->names = names;
    if (conf->topic_template != NULL) {
        rc = mqtt_template_parse(&d->tpl, conf->topic_template, err);
        if (rc != 0) {
            return rc;
        }
        d->has_tpl = true;
    }
    if (conf->asset != NULL && (!d->has_tpl || d->tpl.nasset == 0)) {
        rc = mr_names_intern(names, conf->asset, strlen(conf->asset), &d->fixed_asset);
        if (rc != 0) {
            return MR_ERR_SET(err, rc, "cannot intern asset %s", conf->asset);
        }
    }
    /* Slack beyond `batch` for the messages one read may still deliver after the batch filled
     * (Sparkplug births copied in while the batch fills). */
    d->cap = (size_t)conf->batch + 2 * MQTT_MAX_PER_MESSAGE;
    d->arena_cap = 8 * (size_t)conf->max_payload + 64 * 1024;
    d->recs = mr_calloc(d->cap, sizeof(*d->recs));
    d->arena = mr_malloc(d->arena_cap);
    d->lp = mr_malloc(sizeof(*d->lp));
    if (d->recs == NULL || d->arena == NULL || d->lp == NULL) {
        mqtt_decoder_fini(d);
        return MR_ERR_SET(err, MR_ENOMEM, "out of memory");
    }
    return 0;
}

void mqtt_decoder_fini(struct mqtt_decoder *d)
{
    mr_free(d->recs);
    mr_free(d->arena);
    mr_free(d->lp);
    d->recs = NULL;
    d->arena = NULL;
    d->lp = NULL;
}
