/* Configuration of the `modbus` input (src/inputs/modbus.c has the YAML example). */
#ifndef MR_INPUTS_MODBUS_CONF_H
#define MR_INPUTS_MODBUS_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "inputs/modbus_internal.h"
#include "millrace/config.h"
#include "millrace/names.h"

#define MB_NTABLES 4

/* holding_registers / input_registers entry */
struct mb_reg_conf {
    char *name;
    int64_t address;
    int data_type;  /* enum mb_type */
    int byte_order; /* enum mb_order, when has_byte_order */
    bool has_byte_order;
    double scale;
    double offset;
    int64_t bit;
    int64_t length;
};

/* coils / discrete_inputs entry */
struct mb_bit_conf {
    char *name;
    int64_t address;
};

/* The four lists, indexed by enum mb_table (of mb_bit_conf for coils and discrete inputs,
 * of mb_reg_conf for registers). */
struct mb_regs_conf {
    struct mr_conf_list lists[MB_NTABLES];
};

struct mb_group_conf {
    char *name;
    int64_t interval_ns; /* 0: the device's */
    struct mb_regs_conf regs;
};

struct mb_conf {
    char *controller;
    int64_t slave_id;
    char *asset;
    int64_t regs_interval_ns;
    int64_t timeout_ns;
    int64_t retries;
    int64_t reconnect_min_ns;
    int64_t reconnect_max_ns;
    int byte_order;
    int64_t max_fill;
    struct mb_regs_conf regs;
    struct mr_conf_list groups; /* of struct mb_group_conf */
};

/* A polling group at run time: slices of the instance's field and span arrays. */
struct mb_group {
    const char *name;
    int64_t interval_ns;
    int64_t next_ns; /* monotonic time of the next poll */
    struct mb_field *fields;
    size_t nfields;
    struct mb_span *spans;
    size_t nspans;
    size_t str_bytes; /* bytes of STRING values per poll */
};

extern const struct mr_field mb_conf_fields[];
void mb_conf_check(void *conf, struct mr_config_check *chk);

/* Number of fields in c, and an upper bound of groups (*ngroups). */
size_t mb_conf_count(const struct mb_conf *c, size_t *ngroups);
/* Fill groups (room for the bound above), fields and spans (room for mb_conf_count each):
 * interns signal names, plans the requests. Returns 0 or an error with err filled. */
int mb_conf_groups(const struct mb_conf *c, struct mr_names *names, struct mb_group *groups,
                   size_t *ngroups, struct mb_field *fields, struct mb_span *spans,
                   struct mr_err *err);

#endif
