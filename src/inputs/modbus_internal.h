/* Modbus register codec and request planner, shared by the `modbus` input and the
 * `modbus_write` output. Pure functions: no I/O, no allocation.
 *
 * Words are 16-bit registers as libmodbus returns them (the first byte on the wire is the high
 * byte). A value of k words is decoded by laying the words out as 2k bytes in wire order and
 * reordering them into big-endian (ABCD...) order:
 *   ABCD  big endian (Motorola)                    as received
 *   DCBA  little endian (Intel)                    reverse all bytes
 *   BADC  big endian with bytes swapped in words   swap the two bytes of every word
 *   CDAB  little endian with bytes swapped         reverse the order of the words
 * For 64-bit values these are Telegraf's ABCDEFGH, HGFEDCBA, BADCFEHG and GHEFCDAB. Each of
 * the three transforms is its own inverse, so encoding for a write applies the same one.
 */
#ifndef MR_INPUTS_MODBUS_INTERNAL_H
#define MR_INPUTS_MODBUS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "millrace/record.h"

#define MB_MAX_WORDS_PER_READ 125u  /* Modbus limit for function codes 3 and 4 */
#define MB_MAX_BITS_PER_READ  2000u /* Modbus limit for function codes 1 and 2 */
#define MB_MAX_STRING_WORDS   64u

enum mb_type {
    MB_INT16 = 0,
    MB_UINT16,
    MB_INT32,
    MB_UINT32,
    MB_INT64,
    MB_UINT64,
    MB_FLOAT32,
    MB_FLOAT64,
    MB_BIT,
    MB_STRING,
};

enum mb_order {
    MB_ABCD = 0,
    MB_DCBA,
    MB_BADC,
    MB_CDAB,
};

/* The four Modbus tables, in the order of their function codes' read calls. */
enum mb_table {
    MB_COILS = 0,
    MB_DISCRETE_INPUTS,
    MB_HOLDING_REGISTERS,
    MB_INPUT_REGISTERS,
};

/* NULL-terminated spellings, index = enum value (config enums). */
extern const char *const mb_type_names[];
extern const char *const mb_order_names[];
extern const char *const mb_table_names[];

/* One mapped value, ready to decode. */
struct mb_field {
    mr_name_id signal;
    uint8_t table; /* enum mb_table */
    uint8_t type;  /* enum mb_type (ignored for coils and discrete inputs) */
    uint8_t order; /* enum mb_order */
    uint8_t bit;   /* MB_BIT: bit 0..15 of the register */
    uint16_t address;
    uint16_t words;   /* registers (or bits) it occupies */
    uint32_t str_off; /* STRING: where its bytes go in a batch's string area */
    double scale;
    double offset;
    bool scaled; /* scale != 1 or offset != 0: the value is emitted as a float */
};

/* One read request: count registers (or bits) of one table from start, covering fields
 * [first, first + nfields) of the planned (sorted) array. */
struct mb_span {
    uint8_t table;
    uint16_t start;
    uint16_t count;
    uint32_t first;
    uint32_t nfields;
};

/* Registers a value of this type occupies (STRING: length; others fixed). */
uint16_t mb_type_words(enum mb_type type, uint16_t length);
bool mb_type_is_bool(enum mb_type type);

/* Sort fields by (table, address) in place and group them into read requests. Two fields share
 * a request when the request stays within the Modbus limit and the registers between them not
 * mapped by any field number at most max_fill. Writes at most cap spans; returns the number of
 * spans, or -1 when cap is too small. */
long mb_plan(struct mb_field *fields, size_t n, uint16_t max_fill, struct mb_span *spans,
             size_t cap);

/* Decode f from its registers (words[0..f->words), already offset to the field) into rec's
 * value and type. STRING bytes go to str (at least 2 * f->words bytes) and rec borrows them.
 * Returns 0, or MR_ERANGE for a UINT64 above INT64_MAX or a non-finite float (the caller marks
 * the record bad). */
int mb_decode(const struct mb_field *f, const uint16_t *words, struct mr_record *rec, char *str);

/* Encode a number for a register write: raw is already in device units (scale and offset
 * undone). Integers must be whole and within the type's range. Writes mb_type_words(type)
 * words. Returns 0 or MR_ERANGE (not representable) / MR_EINVAL (BIT or STRING). */
int mb_encode(enum mb_type type, enum mb_order order, double raw, uint16_t *words);

/* Split a Telegraf-style controller address "tcp://HOST:PORT" (port defaults to 502) into
 * host (NUL-terminated, host_cap bytes) and port. Returns 0, or MR_ENOTSUP for serial
 * controllers (file://, COM1) and MR_EINVAL for anything else, with err saying what is wrong. */
int mb_controller_parse(const char *controller, char *host, size_t host_cap, int *port,
                        struct mr_err *err);

#endif
