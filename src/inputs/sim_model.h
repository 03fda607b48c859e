/* The plant simulator's model (input `sim`): machines with PLC state machines, part counters,
 * quality, thermal, electrical and vibration signals, a warehouse, and injected sensor faults.
 *
 * The model is a discrete-event simulation with no clock of its own: mr_sim_model_next()
 * generates the records of the simulated time before a bound, in a fixed order (event time,
 * ties by entity and event kind). Every random draw comes from per-machine xoshiro256**
 * streams seeded from (seed, machine, stream), so the record sequence is a pure function of
 * (configuration, seed, start): how the caller slices time (20 ms ticks at speed 10, whole
 * hours at speed 0) never changes a single byte. Separate streams per concern (states,
 * process, sensors, vibration) also mean that switching vibration off leaves every other
 * signal unchanged.
 *
 * Assets (ISA-95): SITE/AREA/LINE/MACHINE for machines, SITE/warehouse/MATERIAL for materials.
 *
 * Signals of a machine (tag `unit` on every numeric one):
 *   state          string  RUNNING | IDLE | DOWN | SETUP | PLANNED_STOP, on each change (and
 *                          once at start); tag reason: DOWN jam | electrical | mechanical |
 *                          material_shortage, IDLE starved | blocked, SETUP changeover |
 *                          tool_change, PLANNED_STOP break
 *   cycle_count    i64     cumulative cycles, on each completed cycle          unit parts
 *   good_count     i64     cumulative good parts, same time                    unit parts
 *   reject_count   i64     cumulative rejects, same time (good + reject = cycle) unit parts
 *   cycle_time     f64     actual duration of that cycle, running time only    unit s
 *   dimension      f64     measured dimension of that part                    unit mm
 *   temperature    f64     every temperature_interval                          unit degC
 *   power          f64     every power_interval                                unit kW
 *   energy         f64     cumulative, with each power reading                unit kWh
 *   vibration      samples blocks of vibration_block samples at vibration_rate, stamped
 *                          with the time of the first sample                  unit g
 * Signals of a material (asset SITE/warehouse/MATERIAL):
 *   inventory      f64     every supply.interval and on each arrival           unit (material's)
 *   shipment       string  "inbound" when announced (tags qty, unit, eta RFC 3339) and
 *                          "arrived" on delivery (tags qty, unit)
 *   bom            f64     once at start, one per (line, material): value and tag qty = units
 *                          per good part; tags product, material, consumer (the machine whose
 *                          good parts consume it: the line's last machine)
 *
 * Faults (`faults:`) act on a machine's records as they leave the model: dropout removes them,
 * stuck repeats the first value seen in the window (tags are left as they are), skew shifts
 * their timestamps, late holds them back and delivers them `delay` later (after newer
 * records: out of order). Quality stays `good`: spotting them is the pipeline's job.
 */
#ifndef MILLRACE_INPUTS_SIM_MODEL_H
#define MILLRACE_INPUTS_SIM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "millrace/config.h"
#include "millrace/error.h"
#include "millrace/names.h"
#include "millrace/record.h"

/* ---- configuration (filled from the field tables in sim_conf.c) ---- */

struct mr_sim_machine_conf {
    char *name;
    int64_t ideal_cycle_ns;
    double slowdown;       /* mean fraction a real cycle is slower than ideal */
    double microstop_rate; /* probability per cycle of a short unrecorded stop */
    double rpm;
    double rated_power_kw;
    double temp_rise; /* degC above ambient at full load */
    int64_t thermal_tau_ns;
    int64_t mtbf_ns; /* mean running time between breakdowns */
    int64_t mttr_ns;
    int64_t idle_every_ns; /* mean running time between starved/blocked periods */
    int64_t idle_duration_ns;
    int64_t setup_every_ns;
    int64_t setup_duration_ns;
    double target_mm;
    double tolerance_mm;
    double sigma_mm;
    double reject_rate;
    double vibration_g; /* amplitude of the 1x shaft tone */
};

struct mr_sim_line_conf {
    char *name;
    char *area;
    char *product;
    struct mr_conf_list machines; /* of struct mr_sim_machine_conf */
};

struct mr_sim_bearing_conf {
    char *machine; /* NULL: no bearing fault */
    int64_t start_ns;
    int64_t growth_ns;
    int64_t balls;
    double ball_diameter_mm;
    double pitch_diameter_mm;
    double contact_angle_deg;
    double resonance_hz;
    double impact_g;
};

struct mr_sim_drift_conf {
    char *machine;        /* NULL: no drift */
    double rate_per_hour; /* mm per hour */
    int64_t start_ns;
};

struct mr_sim_material_conf {
    char *name;
    char *unit;
    double initial;
    double shipment_qty;
    int64_t shipment_every_ns;
    int64_t lead_time_ns;
    int64_t delay_max_ns;
};

struct mr_sim_bom_conf {
    char *product; /* NULL: every line's product */
    char *material;
    double qty;
};

struct mr_sim_supply_conf {
    bool enabled;
    int64_t interval_ns;
    struct mr_conf_list materials; /* of struct mr_sim_material_conf */
    struct mr_conf_list bom;       /* of struct mr_sim_bom_conf */
};

enum mr_sim_fault_kind {
    MR_SIM_FAULT_DROPOUT = 0,
    MR_SIM_FAULT_STUCK = 1,
    MR_SIM_FAULT_LATE = 2,
    MR_SIM_FAULT_SKEW = 3,
};

struct mr_sim_fault_conf {
    char *machine;
    char *signal; /* NULL: every signal of the machine */
    int kind;     /* enum mr_sim_fault_kind */
    int64_t at_ns;
    int64_t duration_ns;
    int64_t delay_ns;
    char *skew; /* signed duration text ("-2s") */
};

struct mr_sim_conf {
    int64_t seed;
    double speed;
    char *start; /* "now" or RFC 3339 */
    int64_t duration_ns;
    char *site;
    struct mr_conf_list lines; /* of struct mr_sim_line_conf; empty: the default plant */
    double ambient;
    int64_t break_every_ns;
    int64_t break_duration_ns;
    int64_t temperature_interval_ns;
    int64_t power_interval_ns;
    bool vibration;
    int64_t vibration_rate;
    int64_t vibration_block;
    struct mr_sim_bearing_conf bearing_fault;
    struct mr_sim_drift_conf quality_drift;
    struct mr_sim_supply_conf supply;
    struct mr_conf_list faults; /* of struct mr_sim_fault_conf */
};

/* The configuration table of the `sim` input and its cross-field check (sim_conf.c); the
 * plugin (sim.c) makes them its `conf` section. */
extern const struct mr_field mr_sim_conf_fields[];
void mr_sim_conf_check(void *conf, struct mr_config_check *chk);

/* The plant a configuration describes: its own lines and materials, or the defaults (one line
 * of three machines; two materials) where it has none. Owns what it had to load. */
struct mr_sim_plant {
    const struct mr_sim_line_conf *lines;
    size_t nlines;
    const struct mr_sim_material_conf *materials;
    size_t nmaterials;
    const struct mr_sim_bom_conf *bom;
    size_t nbom;
    void *defaults; /* loaded default sections, or NULL */
};

int mr_sim_plant_resolve(struct mr_sim_plant *p, const struct mr_sim_conf *conf,
                         struct mr_err *err);
void mr_sim_plant_fini(struct mr_sim_plant *p);
/* Machine index (in line order) named by `name` ("press1" when unique, or "line1/press1"):
 * >= 0, -1 when none, -2 when ambiguous. */
int mr_sim_plant_find_machine(const struct mr_sim_plant *p, const char *name);
size_t mr_sim_plant_machine_count(const struct mr_sim_plant *p);
/* Parse a signed duration ("-2s", "500ms", "0"). */
int mr_sim_signed_duration_parse(const char *s, int64_t *ns, struct mr_err *err);

/* Ball-pass frequency of the outer race (Hz): (n f_r / 2)(1 - (d/D) cos phi). */
double mr_sim_bpfo_hz(double shaft_hz, int64_t balls, double ball_d, double pitch_d,
                      double contact_deg);

/* ---- the model ---- */

struct mr_sim_model;

/* Build the model for conf starting at start_ns (simulated time 0). Names are interned in
 * names. Returns 0 or an MR_E* code with err naming the setting at fault. */
int mr_sim_model_create(struct mr_sim_model **out, const struct mr_sim_conf *conf, int64_t start_ns,
                        struct mr_names *names, struct mr_err *err);
void mr_sim_model_destroy(struct mr_sim_model *m);

/* Generate the records of the simulated time before until_ns (clamped to the end of the run),
 * at most one batch. *recs is owned by the model and stays valid until the next call (tags,
 * strings and samples included). *caught_up is set when nothing before until_ns remains.
 * Returns the number of records (0 is possible with *caught_up). */
size_t mr_sim_model_next(struct mr_sim_model *m, int64_t until_ns, const struct mr_record **recs,
                         bool *caught_up);
/* True once a run with a duration has delivered everything (late records included). */
bool mr_sim_model_finished(const struct mr_sim_model *m);
/* First simulated time, and the end (INT64_MAX without duration). */
int64_t mr_sim_model_start_ns(const struct mr_sim_model *m);
int64_t mr_sim_model_end_ns(const struct mr_sim_model *m);
/* One line describing the plant (for the start-up log line). */
void mr_sim_model_describe(const struct mr_sim_model *m, char *out, size_t cap);
/* Records a late fault could not hold (store full) and delivered on time instead. */
uint64_t mr_sim_model_overflows(const struct mr_sim_model *m);

#endif
