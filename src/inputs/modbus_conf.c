/* Configuration of the `modbus` input: field tables (Telegraf's key names) and the step from
 * the parsed config to the flat list of fields the poller decodes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/modbus_conf.h"
#include "millrace/alloc.h"

/* Registers mapped by one value (STRING: `length`). */
static uint16_t reg_words(const struct mb_reg_conf *r)
{
    return mb_type_words((enum mb_type)r->data_type, (uint16_t)r->length);
}

static void reg_check(void *conf, struct mr_config_check *chk)
{
    const struct mb_reg_conf *r = conf;
    if (r->data_type == MB_STRING && r->length == 0) {
        mr_config_check_fail(chk, "length",
                             "data_type STRING needs length (registers, 2 "
                             "characters each)");
    }
    if (r->data_type != MB_STRING && r->length != 0) {
        mr_config_check_fail(chk, "length", "only used with data_type STRING");
    }
    if (r->data_type != MB_BIT && r->bit != 0) {
        mr_config_check_fail(chk, "bit", "only used with data_type BIT");
    }
    if (r->address + reg_words(r) > 65536) {
        mr_config_check_fail(chk, "address", "the value would end past register 65535");
    }
    if (r->scale == 0.0) {
        mr_config_check_fail(chk, "scale", "must not be 0");
    }
    if ((r->data_type == MB_BIT || r->data_type == MB_STRING) &&
        (r->scale != 1.0 || r->offset != 0.0)) {
        mr_config_check_fail(chk, "scale", "scale and offset apply to numbers only");
    }
}

static const struct mr_field reg_fields[] = {
    {.name = "name",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mb_reg_conf, name),
     .flags = MR_FIELD_REQUIRED,
     .help = "Signal name of the value (e.g. oil_temperature)."},
    {.name = "address",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mb_reg_conf, address),
     .min = "0",
     .max = "65535",
     .flags = MR_FIELD_REQUIRED,
     .help = "First register of the value, counted from 0 as on the wire (register 40001 in "
             "a manual is usually holding register address 0)."},
    {.name = "data_type",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct mb_reg_conf, data_type),
     .def = "INT16",
     .values = mb_type_names,
     .help = "How the registers encode the value: INT16/UINT16 (1 register), INT32/UINT32/"
             "FLOAT32 (2), INT64/UINT64/FLOAT64 (4), BIT (one bit of a register, see bit) or "
             "STRING (length registers of 2 characters)."},
    {.name = "byte_order",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct mb_reg_conf, byte_order),
     .values = mb_order_names,
     .present = MR_FIELD_PRESENT(struct mb_reg_conf, has_byte_order),
     .help = "Overrides the device's byte_order for this value."},
    {.name = "scale",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mb_reg_conf, scale),
     .def = "1",
     .help = "Multiply the raw number by this (e.g. 0.1 when the device sends tenths of a "
             "degree). With scale or offset the value is a float."},
    {.name = "offset",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mb_reg_conf, offset),
     .def = "0",
     .help = "Add this after scaling (value = raw * scale + offset)."},
    {.name = "bit",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mb_reg_conf, bit),
     .def = "0",
     .min = "0",
     .max = "15",
     .help = "With data_type BIT: which bit of the register, 0 = least significant."},
    {.name = "length",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mb_reg_conf, length),
     .def = "0",
     .min = "0",
     .max = "64",
     .help = "With data_type STRING: number of registers (2 characters each); the text ends "
             "at the first NUL, trailing spaces are dropped."},
    {0},
};

static const struct mr_section reg_section = {
    .fields = reg_fields,
    .size = sizeof(struct mb_reg_conf),
    .check = reg_check,
};

static const struct mr_field bit_fields[] = {
    {.name = "name",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mb_bit_conf, name),
     .flags = MR_FIELD_REQUIRED,
     .help = "Signal name of the bit (e.g. motor_running)."},
    {.name = "address",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mb_bit_conf, address),
     .min = "0",
     .max = "65535",
     .flags = MR_FIELD_REQUIRED,
     .help = "Coil or discrete input number, counted from 0 as on the wire."},
    {0},
};

static const struct mr_section bit_section = {
    .fields = bit_fields,
    .size = sizeof(struct mb_bit_conf),
};

/* The four register lists, in a group or at the top level of the device (S: the struct, M: its
 * struct mb_regs_conf member). */
#define MB_LIST_FIELD(S, M, key, table, sec, text)                                                 \
    {                                                                                              \
        .name = key, .type = MR_FIELD_SECTION_LIST, .offset = offsetof(S, M.lists[table]),         \
        .section = sec, .max = "1024", .help = text                                                \
    }
#define MB_LIST_FIELDS(S, M)                                                                       \
    MB_LIST_FIELD(S, M, "holding_registers", MB_HOLDING_REGISTERS, &reg_section,                   \
                  "Values in holding registers (function code 3)."),                               \
        MB_LIST_FIELD(S, M, "input_registers", MB_INPUT_REGISTERS, &reg_section,                   \
                      "Values in input registers (function code 4)."),                             \
        MB_LIST_FIELD(S, M, "coils", MB_COILS, &bit_section,                                       \
                      "On/off values in coils (function code 1)."),                                \
        MB_LIST_FIELD(S, M, "discrete_inputs", MB_DISCRETE_INPUTS, &bit_section,                   \
                      "On/off values in discrete inputs (function code 2).")

static const struct mr_field group_fields[] = {
    {.name = "name",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mb_group_conf, name),
     .help = "Name of the group in logs (e.g. fast)."},
    {.name = "interval",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mb_group_conf, interval_ns),
     .help = "How often the group is read. Absent: the device's interval."},
    MB_LIST_FIELDS(struct mb_group_conf, regs),
    {0},
};

static void group_check(void *conf, struct mr_config_check *chk)
{
    const struct mb_group_conf *g = conf;
    if (g->interval_ns != 0 && g->interval_ns < 10000000) {
        mr_config_check_fail(chk, "interval", "at least 10ms");
    }
}

static const struct mr_section group_section = {
    .fields = group_fields,
    .size = sizeof(struct mb_group_conf),
    .check = group_check,
};

static size_t regs_count(const struct mb_regs_conf *r)
{
    size_t n = 0;
    for (int t = 0; t < MB_NTABLES; t++) {
        n += r->lists[t].n;
    }
    return n;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t collect_names(const struct mb_regs_conf *r, char **out, size_t n)
{
    for (int t = 0; t < MB_NTABLES; t++) {
        for (size_t i = 0; i < r->lists[t].n; i++) {
            out[n++] = t == MB_COILS || t == MB_DISCRETE_INPUTS
                           ? ((const struct mb_bit_conf *)r->lists[t].items)[i].name
                           : ((const struct mb_reg_conf *)r->lists[t].items)[i].name;
        }
    }
    return n;
}

/* Two values of one device with one name would interleave in one signal. */
static void check_unique_names(const struct mb_conf *c, size_t total, struct mr_config_check *chk)
{
    char **names = mr_calloc(total, sizeof(*names));
    if (names == NULL) {
        return;
    }
    const struct mb_group_conf *groups = c->groups.items;
    size_t n = collect_names(&c->regs, names, 0);
    for (size_t i = 0; i < c->groups.n; i++) {
        n = collect_names(&groups[i].regs, names, n);
    }
    qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 1; i < n; i++) {
        if (names[i] != NULL && names[i - 1] != NULL && strcmp(names[i], names[i - 1]) == 0) {
            mr_config_check_fail(
                chk, NULL, "two values are named '%s': each needs its own signal name", names[i]);
            break;
        }
    }
    mr_free(names);
}

void mb_conf_check(void *conf, struct mr_config_check *chk)
{
    const struct mb_conf *c = conf;
    size_t n = regs_count(&c->regs);
    const struct mb_group_conf *groups = c->groups.items;
    for (size_t i = 0; i < c->groups.n; i++) {
        n += regs_count(&groups[i].regs);
    }
    if (n == 0) {
        mr_config_check_fail(chk, NULL,
                             "nothing to read: list holding_registers, input_registers, coils "
                             "or discrete_inputs (here or in groups)");
    } else {
        check_unique_names(c, n, chk);
    }
    if (c->slave_id > 247) {
        mr_config_check_fail(chk, "slave_id",
                             "248..255 are reserved by the Modbus "
                             "specification");
    }
    if (c->reconnect_max_ns < c->reconnect_min_ns) {
        mr_config_check_fail(chk, "reconnect_max", "must not be less than reconnect_min");
    }
}

const struct mr_field mb_conf_fields[] = {
    {.name = "controller",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mb_conf, controller),
     .flags = MR_FIELD_REQUIRED,
     .help = "The device: tcp://HOST:PORT (Modbus TCP; port 502 when absent)."},
    {.name = "slave_id",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mb_conf, slave_id),
     .def = "1",
     .min = "0",
     .max = "255",
     .help = "Unit id of the device behind the controller (1..247; gateways use it to pick "
             "the serial device)."},
    {.name = "asset",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mb_conf, asset),
     .flags = MR_FIELD_REQUIRED,
     .help = "Asset path of every value read (site/area/line/machine)."},
    {.name = "interval",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mb_conf, regs_interval_ns),
     .def = "1s",
     .min = "10ms",
     .max = "1d",
     .help = "How often the registers listed here (and groups without their own interval) are "
             "read."},
    {.name = "timeout",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mb_conf, timeout_ns),
     .def = "1s",
     .min = "10ms",
     .max = "60s",
     .help = "How long to wait for the device to connect or answer one request."},
    {.name = "retries",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mb_conf, retries),
     .def = "1",
     .min = "0",
     .max = "10",
     .help = "Extra attempts of a request that timed out or lost the connection before its "
             "values are reported with bad quality."},
    {.name = "reconnect_min",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mb_conf, reconnect_min_ns),
     .def = "500ms",
     .min = "10ms",
     .max = "1h",
     .help = "Wait after the first failed connection attempt; doubles after each failure."},
    {.name = "reconnect_max",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mb_conf, reconnect_max_ns),
     .def = "30s",
     .min = "10ms",
     .max = "1h",
     .help = "Longest wait between connection attempts."},
    {.name = "byte_order",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct mb_conf, byte_order),
     .def = "ABCD",
     .values = mb_order_names,
     .help = "Order of bytes in multi-register values: ABCD big endian, DCBA little endian, "
             "BADC big endian with swapped bytes, CDAB little endian with swapped bytes (for "
             "64 bits: ABCDEFGH, HGFEDCBA, BADCFEHG, GHEFCDAB)."},
    {.name = "optimization_max_register_fill",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mb_conf, max_fill),
     .def = "0",
     .min = "0",
     .max = "124",
     .help = "Unmapped registers that may be read to join two requests into one (up to 125 "
             "registers or 2000 bits per request). 0 joins only adjacent values; larger saves "
             "round trips, but some devices refuse to read unmapped registers."},
    MB_LIST_FIELDS(struct mb_conf, regs),
    {.name = "groups",
     .type = MR_FIELD_SECTION_LIST,
     .offset = offsetof(struct mb_conf, groups),
     .section = &group_section,
     .max = "64",
     .help = "Polling groups: registers read together at their own interval (e.g. fast "
             "process values every 100ms, counters every 10s)."},
    {0},
};

static int add_fields(const struct mb_conf *c, const struct mb_regs_conf *regs,
                      struct mr_names *names, struct mb_field *out, size_t *n, struct mr_err *err)
{
    for (int t = 0; t < MB_NTABLES; t++) {
        const struct mr_conf_list *l = &regs->lists[t];
        for (size_t i = 0; i < l->n; i++) {
            struct mb_field *f = &out[*n];
            const char *name;
            *f = (struct mb_field){.table = (uint8_t)t, .scale = 1.0, .type = MB_BIT};
            if (t == MB_COILS || t == MB_DISCRETE_INPUTS) {
                const struct mb_bit_conf *b = &((const struct mb_bit_conf *)l->items)[i];
                name = b->name;
                f->address = (uint16_t)b->address;
                f->words = 1;
            } else {
                const struct mb_reg_conf *r = &((const struct mb_reg_conf *)l->items)[i];
                name = r->name;
                f->address = (uint16_t)r->address;
                f->type = (uint8_t)r->data_type;
                f->order = (uint8_t)(r->has_byte_order ? r->byte_order : c->byte_order);
                f->bit = (uint8_t)r->bit;
                f->words = reg_words(r);
                f->scale = r->scale;
                f->offset = r->offset;
                f->scaled = r->scale != 1.0 || r->offset != 0.0;
            }
            int rc = mr_names_intern(names, name, strlen(name), &f->signal);
            if (rc != 0) {
                return MR_ERR_SET(err, rc, "cannot intern signal name %s: %s", name,
                                  mr_strerror(rc));
            }
            (*n)++;
        }
    }
    return 0;
}

int mb_conf_groups(const struct mb_conf *c, struct mr_names *names, struct mb_group *groups,
                   size_t *ngroups, struct mb_field *fields, struct mb_span *spans,
                   struct mr_err *err)
{
    size_t nf = 0;
    size_t nsp = 0;
    size_t ng = 0;
    const struct mb_group_conf *gc = c->groups.items;
    for (size_t gi = 0; gi <= c->groups.n; gi++) {
        /* gi == 0 is the device's own lists; then the groups. */
        const struct mb_regs_conf *regs = gi == 0 ? &c->regs : &gc[gi - 1].regs;
        size_t first = nf;
        int rc = add_fields(c, regs, names, fields, &nf, err);
        if (rc != 0) {
            return rc;
        }
        if (nf == first) {
            continue;
        }
        struct mb_group *g = &groups[ng++];
        *g = (struct mb_group){
            .name = gi == 0 || gc[gi - 1].name == NULL ? (gi == 0 ? "device" : "group")
                                                       : gc[gi - 1].name,
            .interval_ns =
                gi > 0 && gc[gi - 1].interval_ns > 0 ? gc[gi - 1].interval_ns : c->regs_interval_ns,
            .fields = fields + first,
            .nfields = nf - first,
            .spans = spans + nsp,
        };
        long ns = mb_plan(g->fields, g->nfields, (uint16_t)c->max_fill, g->spans, g->nfields);
        if (ns < 0) {
            return MR_ERR_SET(err, MR_EINVAL, "request plan of group %s does not fit", g->name);
        }
        g->nspans = (size_t)ns;
        nsp += (size_t)ns;
        for (size_t i = 0; i < g->nfields; i++) {
            if (g->fields[i].type == MB_STRING) {
                g->fields[i].str_off = (uint32_t)g->str_bytes;
                g->str_bytes += 2u * g->fields[i].words;
            }
        }
    }
    *ngroups = ng;
    return 0;
}

size_t mb_conf_count(const struct mb_conf *c, size_t *ngroups)
{
    size_t n = regs_count(&c->regs);
    const struct mb_group_conf *groups = c->groups.items;
    for (size_t i = 0; i < c->groups.n; i++) {
        n += regs_count(&groups[i].regs);
    }
    *ngroups = c->groups.n + 1;
    return n;
}
