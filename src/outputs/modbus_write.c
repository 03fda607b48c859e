/* Output `modbus_write`: writes setpoints and commands to a Modbus TCP device, and only what an
 * allow-list names, within bounds.
 *
 *   outputs:
 *     press3_control:
 *       type: modbus_write
 *       controller: tcp://10.0.4.21:502
 *       slave_id: 1
 *       writes:                          # the allow-list, first match wins
 *         - signal: speed_setpoint       # a setpoint record: its value is written
 *           asset: plant/press/line1/press3
 *           register: holding
 *           address: 10
 *           data_type: UINT16
 *           scale: 0.1                   # register = (value - offset) / scale = tenths of rpm
 *           min: 0
 *           max: 1200                    # refused outside [min, max] (engineering units)
 *         - signal: command              # the spc operator's command records
 *           command: halt                # ... whose text value is "halt"
 *           register: coil
 *           address: 0
 *           constant: 1                  # write this instead of the record's value
 *         - signal: command
 *           command: adjust
 *           match_tags: {characteristic: bore_diameter}
 *           value_tag: offset            # the number comes from this tag
 *           register: holding
 *           address: 20
 *           data_type: FLOAT32
 *           min: -0.05
 *           max: 0.05
 *
 * A record is written when an entry of `writes` matches it: same signal, same asset (when the
 * entry names one), same text value (`command`), and every tag of match_tags present with that
 * value. The number written is `constant`, else the tag value_tag, else the record's own value
 * (number or bool); it must lie in [min, max]; a register receives (value - offset) / scale,
 * rounded to the nearest integer for integer types, and must fit data_type. A coil gets on for
 * any non-zero value.
 *
 * Anything else is refused and never written: no matching entry, bad or uncertain quality, a
 * text value where a number is needed, out of bounds, not representable, or an exception from
 * the device (e.g. illegal data address). Each refusal is logged (rate-limited) naming asset,
 * signal and reason, and counted in millrace_errors_total; the batch goes on, so one bad
 * command never blocks the ones after it. Connection problems answer RETRY (the engine retries
 * with backoff; writes are absolute values, so a repeated write is harmless).
 *
 * One register value is written with function code 6 (write single register), longer ones with
 * 16 (write multiple registers), coils with 5. The calls block: outputs run on their own
 * delivery thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/modbus_internal.h"
#include "millrace/alloc.h"
#include "millrace/log.h"
#include "millrace/plugin.h"

extern const struct mr_plugin mr_output_modbus_write;

enum wr_register {
    WR_HOLDING = 0,
    WR_COIL = 1,
};

static const char *const register_names[] = {"holding", "coil", NULL};

struct wr_entry_conf {
    char *signal;
    char *asset;
    char *command;
    struct mr_strmap match_tags;
    char *value_tag;
    double constant;
    bool has_constant;
    int reg; /* enum wr_register */
    int64_t address;
    int data_type; /* enum mb_type */
    int byte_order;
    double scale;
    double offset;
    double min;
    double max;
    bool has_min, has_max;
};

struct wr_conf {
    char *controller;
    int64_t slave_id;
    int64_t timeout_ns;
    struct mr_conf_list writes; /* of struct wr_entry_conf */
};

/* An entry with its names interned. */
struct wr_entry {
    const struct wr_entry_conf *conf;
    mr_name_id signal;
    mr_name_id asset; /* 0: any */
    mr_name_id value_tag;
    size_t ntags;
    mr_name_id tag_keys[MR_RECORD_MAX_TAGS];
};

struct wr_ctx {
    const struct wr_conf *conf;
    struct mr_output_host *host;
    struct mr_plugin_counters counters;
    struct wr_entry *entries;
    size_t nentries;
    modbus_t *mb;
    bool connected;
    char where[300];
    struct mr_log_ratelimit rl;
};

static void entry_check(void *conf, struct mr_config_check *chk)
{
    const struct wr_entry_conf *e = conf;
    if (e->reg == WR_HOLDING && (e->data_type == MB_BIT || e->data_type == MB_STRING)) {
        mr_config_check_fail(chk, "data_type",
                             "BIT and STRING cannot be written; use a coil "
                             "or a number type");
    }
    if (e->has_constant && e->value_tag != NULL) {
        mr_config_check_fail(chk, "value_tag", "use either constant or value_tag");
    }
    if (!e->has_constant && (!e->has_min || !e->has_max)) {
        mr_config_check_fail(chk, e->has_min ? "max" : "min",
                             "writes of a record's value need both min and max bounds");
    }
    if (e->has_min && e->has_max && e->min > e->max) {
        mr_config_check_fail(chk, "max", "must not be less than min");
    }
    if (e->scale == 0.0) {
        mr_config_check_fail(chk, "scale", "must not be 0");
    }
    if (e->match_tags.n > MR_RECORD_MAX_TAGS) {
        mr_config_check_fail(chk, "match_tags", "at most %d tags", MR_RECORD_MAX_TAGS);
    }
    if (e->reg == WR_HOLDING && e->address + mb_type_words((enum mb_type)e->data_type, 0) > 65536) {
        mr_config_check_fail(chk, "address", "the value would end past register 65535");
    }
}

static const struct mr_field entry_fields[] = {
    {.name = "signal",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct wr_entry_conf, signal),
     .flags = MR_FIELD_REQUIRED,
     .help = "Records of this signal may be written (e.g. speed_setpoint, command)."},
    {.name = "asset",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct wr_entry_conf, asset),
     .help = "Only records of this asset path. Absent: any asset."},
    {.name = "command",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct wr_entry_conf, command),
     .help = "Only records whose value is this text (e.g. halt, adjust)."},
    {.name = "match_tags",
     .type = MR_FIELD_STRING_MAP,
     .offset = offsetof(struct wr_entry_conf, match_tags),
     .help = "Only records carrying all these tags with these values."},
    {.name = "value_tag",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct wr_entry_conf, value_tag),
     .help = "Write the number in this tag (e.g. offset of an adjust command) instead of the "
             "record's value."},
    {.name = "constant",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct wr_entry_conf, constant),
     .present = MR_FIELD_PRESENT(struct wr_entry_conf, has_constant),
     .help = "Write this fixed number (e.g. 1 to set a halt coil) instead of the record's "
             "value."},
    {.name = "register",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct wr_entry_conf, reg),
     .def = "holding",
     .values = register_names,
     .help = "'holding': a holding register (or several, per data_type). 'coil': one coil, "
             "on for any non-zero value."},
    {.name = "address",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct wr_entry_conf, address),
     .min = "0",
     .max = "65535",
     .flags = MR_FIELD_REQUIRED,
     .help = "Register or coil number, counted from 0 as on the wire."},
    {.name = "data_type",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct wr_entry_conf, data_type),
     .def = "INT16",
     .values = mb_type_names,
     .help = "How the register(s) encode the number: INT16, UINT16, INT32, UINT32, INT64, "
             "UINT64, FLOAT32 or FLOAT64."},
    {.name = "byte_order",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct wr_entry_conf, byte_order),
     .def = "ABCD",
     .values = mb_order_names,
     .help = "Byte order of multi-register values, as for the modbus input."},
    {.name = "scale",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct wr_entry_conf, scale),
     .def = "1",
     .help = "The register holds (value - offset) / scale, as the modbus input reads it."},
    {.name = "offset",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct wr_entry_conf, offset),
     .def = "0",
     .help = "See scale."},
    {.name = "min",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct wr_entry_conf, min),
     .present = MR_FIELD_PRESENT(struct wr_entry_conf, has_min),
     .help = "Smallest value allowed (engineering units, before scaling). Required unless "
             "constant is set."},
    {.name = "max",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct wr_entry_conf, max),
     .present = MR_FIELD_PRESENT(struct wr_entry_conf, has_max),
     .help = "Largest value allowed (engineering units, before scaling). Required unless "
             "constant is set."},
    {0},
};

static const struct mr_section entry_section = {
    .fields = entry_fields,
    .size = sizeof(struct wr_entry_conf),
    .check = entry_check,
};

static void wr_check(void *conf, struct mr_config_check *chk)
{
    const struct wr_conf *c = conf;
    if (c->slave_id > 247) {
        mr_config_check_fail(chk, "slave_id",
                             "248..255 are reserved by the Modbus "
                             "specification");
    }
}

static const struct mr_field wr_fields[] = {
    {.name = "controller",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct wr_conf, controller),
     .flags = MR_FIELD_REQUIRED,
     .help = "The device: tcp://HOST:PORT (Modbus TCP; port 502 when absent)."},
    {.name = "slave_id",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct wr_conf, slave_id),
     .def = "1",
     .min = "0",
     .max = "255",
     .help = "Unit id of the device behind the controller."},
    {.name = "timeout",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct wr_conf, timeout_ns),
     .def = "1s",
     .min = "10ms",
     .max = "60s",
     .help = "How long to wait for the device to connect or confirm a write."},
    {.name = "writes",
     .type = MR_FIELD_SECTION_LIST,
     .offset = offsetof(struct wr_conf, writes),
     .section = &entry_section,
     .min = "1",
     .max = "1024",
     .flags = MR_FIELD_REQUIRED,
     .help = "The allow-list: which records may be written to which register, within which "
             "bounds. Records no entry matches are refused and counted as errors."},
    {0},
};

/* ---- matching ---- */

static bool tag_equals(const struct mr_record *r, mr_name_id key, const char *value)
{
    for (uint16_t i = 0; i < r->ntags; i++) {
        if (r->tags[i].key == key) {
            size_t len = strlen(value);
            return r->tags[i].value.len == len && memcmp(r->tags[i].value.ptr, value, len) == 0;
        }
    }
    return false;
}

static bool entry_matches(const struct wr_entry *e, const struct mr_record *r)
{
    if (r->signal != e->signal || (e->asset != 0 && r->asset != e->asset)) {
        return false;
    }
    const char *cmd = e->conf->command;
    if (cmd != NULL) {
        size_t len = strlen(cmd);
        if (r->type != MR_VALUE_STRING || r->v.str.len != len ||
            memcmp(r->v.str.ptr, cmd, len) != 0) {
            return false;
        }
    }
    for (size_t i = 0; i < e->ntags; i++) {
        if (!tag_equals(r, e->tag_keys[i], e->conf->match_tags.items[i].value)) {
            return false;
        }
    }
    return true;
}

/* The number to write, or a reason it cannot be had. */
static const char *value_of(const struct wr_entry *e, const struct mr_record *r, double *v)
{
    if (e->conf->has_constant) {
        *v = e->conf->constant;
        return NULL;
    }
    if (e->value_tag != 0) {
        for (uint16_t i = 0; i < r->ntags; i++) {
            if (r->tags[i].key != e->value_tag) {
                continue;
            }
            char text[64];
            char *end;
            uint32_t len = r->tags[i].value.len;
            if (len == 0 || len >= sizeof(text)) {
                return "the value tag is not a number";
            }
            memcpy(text, r->tags[i].value.ptr, len);
            text[len] = '\0';
            *v = strtod(text, &end);
            return *end == '\0' && isfinite(*v) ? NULL : "the value tag is not a number";
        }
        return "the value tag is missing";
    }
    switch (r->type) {
    case MR_VALUE_F64:
        *v = r->v.f64;
        return isfinite(*v) ? NULL : "the value is not finite";
    case MR_VALUE_I64:
        *v = (double)r->v.i64;
        return NULL;
    case MR_VALUE_BOOL:
        *v = r->v.b ? 1.0 : 0.0;
        return NULL;
    default:
        return "the value is not a number";
    }
}

/* ---- writing ---- */

static void wr_disconnect(struct wr_ctx *c)
{
    if (c->connected) {
        modbus_close(c->mb);
        c->connected = false;
    }
}

static void refuse(struct wr_ctx *c, const struct mr_record *r, const char *why)
{
    const char *asset = mr_names_str(c->host->names, r->asset, NULL);
    const char *signal = mr_names_str(c->host->names, r->signal, NULL);
    mr_counter_add(c->counters.errors, 1);
    MR_LOG_RL(&c->rl, MR_LOG_ERROR, c->host->name, "%s: refused %s/%s: %s; not written", c->where,
              asset != NULL ? asset : "?", signal != NULL ? signal : "?", why);
}

/* Write one matched record. MR_SINK_OK (written or refused) or MR_SINK_RETRY. */
static int write_one(struct wr_ctx *c, const struct wr_entry *e, const struct mr_record *r,
                     struct mr_err *err)
{
    const struct wr_entry_conf *ec = e->conf;
    double v;
    const char *why = r->quality != MR_QUALITY_GOOD ? "its quality is not good" : NULL;
    why = why != NULL ? why : value_of(e, r, &v);
    if (why == NULL && ((ec->has_min && v < ec->min) || (ec->has_max && v > ec->max))) {
        why = "the value is outside [min, max]";
    }
    uint16_t words[4];
    uint16_t n = 0;
    if (why == NULL && ec->reg == WR_HOLDING) {
        double raw = (v - ec->offset) / ec->scale;
        if (ec->data_type != MB_FLOAT32 && ec->data_type != MB_FLOAT64) {
            raw = round(raw);
        }
        n = mb_type_words((enum mb_type)ec->data_type, 0);
        if (mb_encode((enum mb_type)ec->data_type, (enum mb_order)ec->byte_order, raw, words) !=
            0) {
            why = "the value does not fit the register's data_type";
        }
    }
    if (why != NULL) {
        refuse(c, r, why);
        return MR_SINK_OK;
    }
    if (!c->connected) {
        if (modbus_connect(c->mb) != 0) {
            MR_ERR_SET(err, MR_ECLOSED, "cannot connect to %s: %s", c->where,
                       modbus_strerror(errno));
            return MR_SINK_RETRY;
        }
        c->connected = true;
    }
    int addr = (int)ec->address;
    int rc = ec->reg == WR_COIL ? modbus_write_bit(c->mb, addr, v != 0.0)
             : n == 1           ? modbus_write_register(c->mb, addr, words[0])
                                : modbus_write_registers(c->mb, addr, n, words);
    if (rc >= 0) {
        mr_counter_add(c->counters.records_out, 1);
        return MR_SINK_OK;
    }
    int e2 = errno;
    if (e2 == EMBXILFUN || e2 == EMBXILADD || e2 == EMBXILVAL || e2 == EMBXSFAIL) {
        char msg[160];
        snprintf(msg, sizeof(msg), "the device rejected the write to %s %d: %s",
                 register_names[ec->reg], addr, modbus_strerror(e2));
        refuse(c, r, msg);
        return MR_SINK_OK;
    }
    wr_disconnect(c);
    MR_ERR_SET(err, MR_EIO, "%s: writing %s %d failed: %s", c->where, register_names[ec->reg], addr,
               modbus_strerror(e2));
    return MR_SINK_RETRY;
}

static int wr_write(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err)
{
    struct wr_ctx *c = ctx;
    for (size_t i = 0; i < n; i++) {
        const struct mr_record *r = &recs[i];
        const struct wr_entry *e = NULL;
        for (size_t k = 0; k < c->nentries && e == NULL; k++) {
            if (entry_matches(&c->entries[k], r)) {
                e = &c->entries[k];
            }
        }
        mr_counter_add(c->counters.records_in, 1);
        if (e == NULL) {
            refuse(c, r, "not in the allow-list (writes)");
            continue;
        }
        int rc = write_one(c, e, r, err);
        if (rc != MR_SINK_OK) {
            return rc;
        }
    }
    return MR_SINK_OK;
}

static int wr_flush(void *ctx, struct mr_err *err)
{
    (void)ctx;
    (void)err;
    return MR_SINK_OK;
}

static void wr_fini(void *ctx)
{
    struct wr_ctx *c = ctx;
    if (c->mb != NULL) {
        wr_disconnect(c);
        modbus_free(c->mb);
        c->mb = NULL;
    }
    mr_free(c->entries);
    c->entries = NULL;
}

static int intern(struct mr_names *names, const char *s, mr_name_id *id, struct mr_err *err)
{
    int rc = mr_names_intern(names, s, strlen(s), id);
    return rc == 0 ? 0 : MR_ERR_SET(err, rc, "cannot intern %s: %s", s, mr_strerror(rc));
}

static int intern_entry(struct mr_names *names, const struct wr_entry_conf *ec, struct wr_entry *e,
                        struct mr_err *err)
{
    int rc = intern(names, ec->signal, &e->signal, err);
    if (rc == 0 && ec->asset != NULL) {
        rc = intern(names, ec->asset, &e->asset, err);
    }
    if (rc == 0 && ec->value_tag != NULL) {
        rc = intern(names, ec->value_tag, &e->value_tag, err);
    }
    for (size_t t = 0; rc == 0 && t < ec->match_tags.n; t++) {
        rc = intern(names, ec->match_tags.items[t].key, &e->tag_keys[t], err);
    }
    e->conf = ec;
    e->ntags = ec->match_tags.n;
    return rc;
}

static int wr_init(void *ctx, const void *conf, struct mr_output_host *host, struct mr_err *err)
{
    struct wr_ctx *c = ctx;
    const struct wr_conf *cf = conf;
    char hostname[256];
    int port;
    int rc;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->host = host;
    c->entries = mr_calloc(cf->writes.n, sizeof(*c->entries));
    if (c->entries == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        goto fail;
    }
    const struct wr_entry_conf *ecs = cf->writes.items;
    for (size_t i = 0; i < cf->writes.n; i++) {
        rc = intern_entry(host->names, &ecs[i], &c->entries[i], err);
        if (rc != 0) {
            goto fail;
        }
    }
    c->nentries = cf->writes.n;
    rc = mb_controller_parse(cf->controller, hostname, sizeof(hostname), &port, err);
    if (rc != 0) {
        goto fail;
    }
    snprintf(c->where, sizeof(c->where), "%s slave %" PRId64, cf->controller, cf->slave_id);
    c->mb = modbus_new_tcp(hostname, port);
    if (c->mb == NULL || modbus_set_slave(c->mb, (int)cf->slave_id) != 0 ||
        modbus_set_response_timeout(c->mb, (uint32_t)(cf->timeout_ns / 1000000000),
                                    (uint32_t)(cf->timeout_ns % 1000000000 / 1000)) != 0) {
        rc = MR_ERR_SET(err, MR_EINVAL, "%s: %s", c->where, modbus_strerror(errno));
        goto fail;
    }
    rc = mr_plugin_counters_register(host->metrics, &mr_output_modbus_write, host->name,
                                     &c->counters);
    if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
        goto fail;
    }
    return 0;
fail:
    wr_fini(c);
    return rc;
}

const struct mr_plugin mr_output_modbus_write = {
    .kind = MR_PLUGIN_OUTPUT,
    .name = "modbus_write",
    .help = "Writes setpoints and commands (halt, adjust) to a Modbus TCP device: only records "
            "an allow-list names, to the register it names, within its bounds; everything else "
            "is refused, logged and counted, never written.",
    .conf = {.fields = wr_fields, .size = sizeof(struct wr_conf), .check = wr_check},
    .ctx_size = sizeof(struct wr_ctx),
    .output = {.init = wr_init, .write = wr_write, .flush = wr_flush, .fini = wr_fini},
};
