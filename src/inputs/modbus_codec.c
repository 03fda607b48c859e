/* Modbus register codec and request planner (see modbus_internal.h for the byte orders). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/modbus_internal.h"

const char *const mb_type_names[] = {"INT16",   "UINT16",  "INT32", "UINT32", "INT64", "UINT64",
                                     "FLOAT32", "FLOAT64", "BIT",   "STRING", NULL};
const char *const mb_order_names[] = {"ABCD", "DCBA", "BADC", "CDAB", NULL};
const char *const mb_table_names[] = {"coil", "discrete_input", "holding_register",
                                      "input_register", NULL};

uint16_t mb_type_words(enum mb_type type, uint16_t length)
{
    switch (type) {
    case MB_INT16:
    case MB_UINT16:
    case MB_BIT:
        return 1;
    case MB_INT32:
    case MB_UINT32:
    case MB_FLOAT32:
        return 2;
    case MB_INT64:
    case MB_UINT64:
    case MB_FLOAT64:
        return 4;
    case MB_STRING:
        return length;
    }
    return 1;
}

bool mb_type_is_bool(enum mb_type type)
{
    return type == MB_BIT;
}

static int field_cmp(const void *a, const void *b)
{
    const struct mb_field *x = a;
    const struct mb_field *y = b;
    if (x->table != y->table) {
        return x->table < y->table ? -1 : 1;
    }
    if (x->address != y->address) {
        return x->address < y->address ? -1 : 1;
    }
    return 0;
}

long mb_plan(struct mb_field *fields, size_t n, uint16_t max_fill, struct mb_span *spans,
             size_t cap)
{
    /* A stable order keeps signals of one address in config order (qsort is not stable, but
     * equal keys decode identical registers, so their relative order does not change values). */
    qsort(fields, n, sizeof(*fields), field_cmp);
    size_t ns = 0;
    uint32_t end = 0; /* one past the last register of the open span */
    for (size_t i = 0; i < n; i++) {
        const struct mb_field *f = &fields[i];
        uint32_t limit =
            f->table <= MB_DISCRETE_INPUTS ? MB_MAX_BITS_PER_READ : MB_MAX_WORDS_PER_READ;
        uint32_t f_end = (uint32_t)f->address + f->words;
        struct mb_span *s = ns > 0 ? &spans[ns - 1] : NULL;
        if (s != NULL && s->table == f->table && f->address <= end + max_fill &&
            (f_end > end ? f_end : end) - s->start <= limit) {
            if (f_end > end) {
                end = f_end;
            }
            s->count = (uint16_t)(end - s->start);
            s->nfields++;
            continue;
        }
        if (ns == cap) {
            return -1;
        }
        spans[ns++] = (struct mb_span){.table = f->table,
                                       .start = f->address,
                                       .count = f->words,
                                       .first = (uint32_t)i,
                                       .nfields = 1};
        end = f_end;
    }
    return (long)ns;
}

/* words -> bytes in big-endian order, undoing the device's byte order. */
static void words_to_bytes(const uint16_t *words, uint16_t n, enum mb_order order, uint8_t *b)
{
    for (uint16_t i = 0; i < n; i++) {
        uint16_t w = words[order == MB_CDAB ? n - 1 - i : i];
        b[2 * i] = (uint8_t)(w >> 8);
        b[2 * i + 1] = (uint8_t)(w & 0xff);
    }
    size_t len = 2u * n;
    if (order == MB_DCBA) {
        for (size_t i = 0; i < len / 2; i++) {
            uint8_t t = b[i];
            b[i] = b[len - 1 - i];
            b[len - 1 - i] = t;
        }
    } else if (order == MB_BADC) {
        for (size_t i = 0; i + 1 < len; i += 2) {
            uint8_t t = b[i];
            b[i] = b[i + 1];
            b[i + 1] = t;
        }
    }
}

/* The inverse: big-endian bytes -> words as the device expects them. */
static void bytes_to_words(const uint8_t *be, uint16_t n, enum mb_order order, uint16_t *words)
{
    uint8_t b[8];
    size_t len = 2u * n;
    memcpy(b, be, len);
    if (order == MB_DCBA) {
        for (size_t i = 0; i < len / 2; i++) {
            uint8_t t = b[i];
            b[i] = b[len - 1 - i];
            b[len - 1 - i] = t;
        }
    } else if (order == MB_BADC) {
        for (size_t i = 0; i + 1 < len; i += 2) {
            uint8_t t = b[i];
            b[i] = b[i + 1];
            b[i + 1] = t;
        }
    }
    for (uint16_t i = 0; i < n; i++) {
        words[order == MB_CDAB ? n - 1 - i : i] = (uint16_t)((b[2 * i] << 8) | b[2 * i + 1]);
    }
}

static uint64_t be_uint(const uint8_t *b, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        v = (v << 8) | b[i];
    }
    return v;
}

static void put_number(const struct mb_field *f, struct mr_record *rec, double v)
{
    rec->type = MR_VALUE_F64;
    rec->v.f64 = f->scaled ? v * f->scale + f->offset : v;
}

static void put_int(const struct mb_field *f, struct mr_record *rec, int64_t v)
{
    if (f->scaled) {
        put_number(f, rec, (double)v);
        return;
    }
    rec->type = MR_VALUE_I64;
    rec->v.i64 = v;
}

static int decode_string(const struct mb_field *f, const uint16_t *words, struct mr_record *rec,
                         char *str)
{
    /* Strings keep their word order; DCBA and BADC devices put the second character first. */
    bool swap = f->order == MB_DCBA || f->order == MB_BADC;
    size_t len = 0;
    for (uint16_t i = 0; i < f->words; i++) {
        uint8_t hi = (uint8_t)(words[i] >> 8);
        uint8_t lo = (uint8_t)(words[i] & 0xff);
        str[len++] = (char)(swap ? lo : hi);
        str[len++] = (char)(swap ? hi : lo);
    }
    /* Padding: the string ends at the first NUL; trailing spaces are padding too. */
    size_t n = 0;
    while (n < len && str[n] != '\0') {
        n++;
    }
    while (n > 0 && str[n - 1] == ' ') {
        n--;
    }
    rec->type = MR_VALUE_STRING;
    rec->v.str = (struct mr_bytes){.ptr = str, .len = (uint32_t)n};
    return 0;
}

int mb_decode(const struct mb_field *f, const uint16_t *words, struct mr_record *rec, char *str)
{
    uint8_t b[8];
    if (f->type == MB_STRING) {
        return decode_string(f, words, rec, str);
    }
    words_to_bytes(words, f->words > 4 ? 4 : f->words, (enum mb_order)f->order, b);
    uint64_t u = be_uint(b, 2u * f->words);
    switch (f->type) {
    case MB_INT16:
        put_int(f, rec, (int16_t)(uint16_t)u);
        return 0;
    case MB_UINT16:
    case MB_UINT32:
        put_int(f, rec, (int64_t)u);
        return 0;
    case MB_INT32:
        put_int(f, rec, (int32_t)(uint32_t)u);
        return 0;
    case MB_INT64:
        put_int(f, rec, (int64_t)u);
        return 0;
    case MB_UINT64:
        if (f->scaled) {
            put_number(f, rec, (double)u);
            return 0;
        }
        if (u > (uint64_t)INT64_MAX) {
            return MR_ERANGE;
        }
        put_int(f, rec, (int64_t)u);
        return 0;
    case MB_FLOAT32: {
        uint32_t u32 = (uint32_t)u;
        float fl;
        memcpy(&fl, &u32, sizeof(fl));
        if (!isfinite(fl)) {
            return MR_ERANGE;
        }
        put_number(f, rec, fl);
        return 0;
    }
    case MB_FLOAT64: {
        double d;
        memcpy(&d, &u, sizeof(d));
        if (!isfinite(d)) {
            return MR_ERANGE;
        }
        put_number(f, rec, d);
        return 0;
    }
    case MB_BIT:
        rec->type = MR_VALUE_BOOL;
        rec->v.b = ((u >> f->bit) & 1u) != 0;
        return 0;
    }
    return MR_EINVAL;
}

static int encode_int(double raw, double lo, double hi, uint64_t *out)
{
    if (!isfinite(raw) || raw != floor(raw) || raw < lo || raw > hi) {
        return MR_ERANGE;
    }
    *out = raw < 0 ? (uint64_t)(int64_t)raw : (uint64_t)raw;
    return 0;
}

int mb_encode(enum mb_type type, enum mb_order order, double raw, uint16_t *words)
{
    uint64_t u = 0;
    int rc = 0;
    uint16_t n = mb_type_words(type, 0);
    switch (type) {
    case MB_INT16:
        rc = encode_int(raw, -32768.0, 32767.0, &u);
        break;
    case MB_UINT16:
        rc = encode_int(raw, 0.0, 65535.0, &u);
        break;
    case MB_INT32:
        rc = encode_int(raw, -2147483648.0, 2147483647.0, &u);
        break;
    case MB_UINT32:
        rc = encode_int(raw, 0.0, 4294967295.0, &u);
        break;
    case MB_INT64:
        /* 2^63 is not an int64; doubles just below it are. */
        rc = encode_int(raw, -9223372036854775808.0, 9223372036854774784.0, &u);
        break;
    case MB_UINT64:
        rc = encode_int(raw, 0.0, 18446744073709549568.0, &u);
        break;
    case MB_FLOAT32: {
        float fl = (float)raw;
        if (!isfinite(raw) || !isfinite(fl)) {
            return MR_ERANGE;
        }
        uint32_t u32;
        memcpy(&u32, &fl, sizeof(u32));
        u = u32;
        break;
    }
    case MB_FLOAT64:
        if (!isfinite(raw)) {
            return MR_ERANGE;
        }
        memcpy(&u, &raw, sizeof(u));
        break;
    case MB_BIT:
    case MB_STRING:
        return MR_EINVAL;
    }
    if (rc != 0) {
        return rc;
    }
    uint8_t be[8];
    for (uint16_t i = 0; i < 2 * n; i++) {
        be[i] = (uint8_t)(u >> (8 * (2 * n - 1 - i)));
    }
    bytes_to_words(be, n, order, words);
    return 0;
}

int mb_controller_parse(const char *controller, char *host, size_t host_cap, int *port,
                        struct mr_err *err)
{
    static const char scheme[] = "tcp://";
    if (controller == NULL || controller[0] == '\0') {
        return MR_ERR_SET(err, MR_EINVAL, "controller is empty (expected tcp://HOST:PORT)");
    }
    if (strncmp(controller, scheme, sizeof(scheme) - 1) != 0) {
        if (strncmp(controller, "file://", 7) == 0 || strncmp(controller, "COM", 3) == 0) {
            return MR_ERR_SET(err, MR_ENOTSUP,
                              "controller %s: serial Modbus (RTU/ASCII) is not supported yet; "
                              "use tcp://HOST:PORT",
                              controller);
        }
        return MR_ERR_SET(err, MR_EINVAL, "controller %s: expected tcp://HOST:PORT", controller);
    }
    const char *h = controller + sizeof(scheme) - 1;
    const char *colon = strrchr(h, ':');
    size_t hlen = colon != NULL ? (size_t)(colon - h) : strlen(h);
    long p = 502;
    if (colon != NULL) {
        char *end;
        p = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end != '\0' || p < 1 || p > 65535) {
            return MR_ERR_SET(err, MR_EINVAL, "controller %s: port must be 1..65535", controller);
        }
    }
    if (hlen == 0 || hlen >= host_cap) {
        return MR_ERR_SET(err, MR_EINVAL, "controller %s: missing or overlong host", controller);
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}
