/* The small deterministic plant behind `millrace demo` (until the `sim` input of the stream
 * engine replaces it): 2 lines x 3 machines, each with a PLC state machine, part counter,
 * temperature, power and energy meter and a vibration level. Seeded, so runs repeat exactly. */
#ifndef MILLRACE_CLI_DEMO_PLANT_H
#define MILLRACE_CLI_DEMO_PLANT_H

#include <stdbool.h>
#include <stdint.h>

#include "millrace/journal.h"
#include "millrace/names.h"
#include "millrace/record.h"

#define DEMO_MACHINES     6u
#define DEMO_SIGNALS      6u
#define DEMO_READINGS_MAX (DEMO_MACHINES * DEMO_SIGNALS)
#define DEMO_TICK_NS      100000000LL /* simulated time per tick: 100 ms */

#define MR_DEMO_RECORD_HEADER                                                                      \
    {                                                                                              \
        .key = MR_RECORD_HEADER_KEY, .key_len = (int32_t)sizeof(MR_RECORD_HEADER_KEY) - 1,         \
        .value = MR_RECORD_HEADER_VALUE, .value_len = (int32_t)sizeof(MR_RECORD_HEADER_VALUE) - 1  \
    }

struct demo_machine {
    char asset[64];
    int32_t asset_len;
    mr_name_id asset_id;
    /* simulation state */
    int state;           /* index into the state names */
    int64_t state_ticks; /* ticks left in this state */
    double temp, kw, kwh, vib;
    int64_t parts;
    double cycle_left_s;
    /* what was sent and what came back */
    uint64_t sent, read;
    uint32_t sent_digest, read_digest;
    /* latest values seen when reading back */
    char last_state[16];
    int64_t last_parts;
    double last_temp, last_kw, last_kwh;
};

struct demo_plant {
    struct demo_machine machines[DEMO_MACHINES];
    uint64_t rng;
    uint64_t ticks;
    int64_t time_ns;
    mr_name_id sig[DEMO_SIGNALS];
    mr_name_id tag_unit;
};

int demo_plant_init(struct demo_plant *plant, struct mr_names *names, uint64_t seed);
/* Advance the plant one tick; fill recs with this tick's readings and machine_of with the
 * machine index of each. Returns the number of readings (<= cap). */
size_t demo_plant_tick(struct demo_plant *plant, struct mr_record *recs, uint32_t *machine_of,
                       size_t cap);
/* Remember the latest values of a decoded reading (for the summary). */
void demo_plant_observe(struct demo_plant *plant, uint32_t machine, const struct mr_record *rec);
/* Remove a directory tree the demo created. */
void demo_remove_tree(const char *dir);

#endif
