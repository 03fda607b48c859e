/* Configuration of the `sim` input: the field tables (one declaration drives parsing,
 * validation and docs/CONFIG.md), the cross-field checks, and the default plant used when a
 * configuration names no lines or materials. The defaults are YAML run through the same tables,
 * so a default never differs from what the table documents. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "inputs/sim_model.h"
#include "millrace/alloc.h"

/* ---- machines and lines ---- */

static const struct mr_field machine_fields[] = {
    {.name = "name",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_machine_conf, name),
     .flags = MR_FIELD_REQUIRED,
     .help = "Machine name, the last part of its asset path (site/area/line/NAME)."},
    {.name = "ideal_cycle_time",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_machine_conf, ideal_cycle_ns),
     .def = "10s",
     .min = "100ms",
     .max = "1h",
     .help = "Ideal (nameplate) time per part; real cycles are a little slower."},
    {.name = "slowdown",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_machine_conf, slowdown),
     .def = "0.06",
     .min = "0",
     .max = "2",
     .help = "Mean fraction by which a real cycle is slower than the ideal one (speed loss)."},
    {.name = "microstop_rate",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_machine_conf, microstop_rate),
     .def = "0.02",
     .min = "0",
     .max = "1",
     .help = "Probability per cycle of a short stop (5 to 60 s) the PLC does not report: it "
             "stays RUNNING and shows up as a slower cycle."},
    {.name = "rpm",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_machine_conf, rpm),
     .def = "1480",
     .min = "60",
     .max = "30000",
     .help = "Main shaft speed in revolutions per minute (sets the vibration tones)."},
    {.name = "rated_power",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_machine_conf, rated_power_kw),
     .def = "15",
     .min = "0.1",
     .max = "10000",
     .help = "Electrical power in kW while producing; idle draws about a third of it."},
    {.name = "temperature_rise",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_machine_conf, temp_rise),
     .def = "30",
     .min = "0",
     .max = "500",
     .help = "Degrees C above ambient the machine settles at while producing."},
    {.name = "thermal_time_constant",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_machine_conf, thermal_tau_ns),
     .def = "15m",
     .min = "1s",
     .max = "1d",
     .help = "How slowly the temperature follows the load (63 % of a step after this long)."},
    {.name = "mtbf",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_machine_conf, mtbf_ns),
     .def = "1h",
     .min = "1s",
     .help = "Mean running time between breakdowns (state DOWN)."},
    {.name = "mttr",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_machine_conf, mttr_ns),
     .def = "6m",
     .min = "1s",
     .help = "Mean time to repair a breakdown."},
    {.name = "idle_every",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_machine_conf, idle_every_ns),
     .def = "30m",
     .min = "1s",
     .help = "Mean running time between waits for parts or for the next station (state IDLE)."},
    {.name = "idle_duration",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_machine_conf, idle_duration_ns),
     .def = "2m",
     .min = "1s",
     .help = "Mean length of an IDLE period."},
    {.name = "setup_every",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_machine_conf, setup_every_ns),
     .def = "3h",
     .min = "1m",
     .help = "Time between changeovers and tool changes (state SETUP), give or take 20 %."},
    {.name = "setup_duration",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_machine_conf, setup_duration_ns),
     .def = "12m",
     .min = "1s",
     .help = "Mean length of a changeover (tool changes take half as long)."},
    {.name = "target",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_machine_conf, target_mm),
     .def = "25.0",
     .help = "Nominal value in mm of the dimension measured on each part."},
    {.name = "tolerance",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_machine_conf, tolerance_mm),
     .def = "0.05",
     .min = "0",
     .help = "Allowed deviation in mm either side of target; parts outside are rejected."},
    {.name = "sigma",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_machine_conf, sigma_mm),
     .def = "0.01",
     .min = "0",
     .help = "Standard deviation in mm of the measured dimension (process spread)."},
    {.name = "reject_rate",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_machine_conf, reject_rate),
     .def = "0.015",
     .min = "0",
     .max = "1",
     .help = "Share of parts rejected for defects other than the dimension (cracks, marks)."},
    {.name = "vibration_level",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_machine_conf, vibration_g),
     .def = "0.05",
     .min = "0",
     .max = "100",
     .help = "Amplitude in g of the once-per-revolution vibration of a healthy machine."},
    {0},
};

static const struct mr_section machine_section = {
    .fields = machine_fields,
    .size = sizeof(struct mr_sim_machine_conf),
};

static const struct mr_field line_fields[] = {
    {.name = "name",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_line_conf, name),
     .flags = MR_FIELD_REQUIRED,
     .help = "Line name (site/area/NAME/machine)."},
    {.name = "area",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_line_conf, area),
     .def = "assembly",
     .help = "Area the line belongs to (site/AREA/line/machine)."},
    {.name = "product",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_line_conf, product),
     .def = "widget",
     .help = "What the line makes; supply.bom entries name it. The line's last machine "
             "completes the product, so its good parts consume the materials."},
    {.name = "machines",
     .type = MR_FIELD_SECTION_LIST,
     .offset = offsetof(struct mr_sim_line_conf, machines),
     .section = &machine_section,
     .min = "1",
     .max = "64",
     .flags = MR_FIELD_REQUIRED,
     .help = "The machines of the line, in the order parts flow."},
    {0},
};

static const struct mr_section line_section = {
    .fields = line_fields,
    .size = sizeof(struct mr_sim_line_conf),
};

/* ---- faults that develop in the plant ---- */

static const struct mr_field bearing_fields[] = {
    {.name = "machine",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_bearing_conf, machine),
     .help = "Machine whose bearing develops an outer-race defect (name, or line/name when "
             "the name is used on several lines). Absent: no bearing fault."},
    {.name = "start",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_bearing_conf, start_ns),
     .def = "10m",
     .help = "Simulated time after the start at which the defect appears."},
    {.name = "growth",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_bearing_conf, growth_ns),
     .def = "1h",
     .min = "1s",
     .help = "Time from the defect's appearance to severe damage: impacts first raise "
             "kurtosis, later the tone at BPFO and the broadband level raise RMS."},
    {.name = "balls",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mr_sim_bearing_conf, balls),
     .def = "9",
     .min = "3",
     .max = "100",
     .help = "Number of rolling elements (default: SKF 6205 deep-groove ball bearing)."},
    {.name = "ball_diameter",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_bearing_conf, ball_diameter_mm),
     .def = "7.94",
     .min = "0.1",
     .help = "Rolling element diameter d in mm."},
    {.name = "pitch_diameter",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_bearing_conf, pitch_diameter_mm),
     .def = "39.04",
     .min = "0.1",
     .help = "Pitch diameter D in mm; BPFO = (n f_r / 2)(1 - (d/D) cos(contact_angle))."},
    {.name = "contact_angle",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_bearing_conf, contact_angle_deg),
     .def = "0",
     .min = "0",
     .max = "60",
     .help = "Contact angle in degrees."},
    {.name = "resonance",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_bearing_conf, resonance_hz),
     .def = "3000",
     .min = "10",
     .help = "Structural resonance in Hz that each impact rings (keep below half the "
             "vibration_rate)."},
    {.name = "impact",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_bearing_conf, impact_g),
     .def = "0.6",
     .min = "0",
     .help = "Peak acceleration in g of one impact when the damage is severe."},
    {0},
};

static const struct mr_section bearing_section = {
    .fields = bearing_fields,
    .size = sizeof(struct mr_sim_bearing_conf),
};

static const struct mr_field drift_fields[] = {
    {.name = "machine",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_drift_conf, machine),
     .help = "Machine whose measured dimension drifts (tool wear). Absent: no drift."},
    {.name = "rate_per_hour",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_drift_conf, rate_per_hour),
     .def = "0.01",
     .help = "Drift of the dimension's mean in mm per hour (negative: shrinking)."},
    {.name = "start",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_drift_conf, start_ns),
     .def = "0",
     .help = "Simulated time after the start at which the drift begins."},
    {0},
};

static const struct mr_section drift_section = {
    .fields = drift_fields,
    .size = sizeof(struct mr_sim_drift_conf),
};

/* ---- supply ---- */

static const struct mr_field material_fields[] = {
    {.name = "name",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_material_conf, name),
     .flags = MR_FIELD_REQUIRED,
     .help = "Material name; its asset is site/warehouse/NAME."},
    {.name = "unit",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_material_conf, unit),
     .def = "units",
     .help = "Unit of the inventory (tag `unit`), e.g. units, kg, m."},
    {.name = "initial",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_material_conf, initial),
     .def = "1000",
     .min = "0",
     .help = "Inventory at the start."},
    {.name = "shipment_qty",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_material_conf, shipment_qty),
     .def = "500",
     .min = "0",
     .help = "Quantity of each inbound shipment."},
    {.name = "shipment_every",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_material_conf, shipment_every_ns),
     .def = "1h",
     .min = "1s",
     .help = "A new shipment is announced this often (the first one at the start)."},
    {.name = "lead_time",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_material_conf, lead_time_ns),
     .def = "30m",
     .min = "0",
     .help = "Time from announcement to the promised arrival (the `eta` tag)."},
    {.name = "delay_max",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_material_conf, delay_max_ns),
     .def = "10m",
     .min = "0",
     .help = "Shipments arrive up to this long after their eta (uniformly at random)."},
    {0},
};

static const struct mr_section material_section = {
    .fields = material_fields,
    .size = sizeof(struct mr_sim_material_conf),
};

static const struct mr_field bom_fields[] = {
    {.name = "product",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_bom_conf, product),
     .help = "Product (a line's `product`) this entry belongs to; absent: every product."},
    {.name = "material",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_bom_conf, material),
     .flags = MR_FIELD_REQUIRED,
     .help = "Material consumed (a name from supply.materials)."},
    {.name = "qty",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_bom_conf, qty),
     .def = "1",
     .min = "0",
     .help = "Quantity of the material per good part."},
    {0},
};

static const struct mr_section bom_section = {
    .fields = bom_fields,
    .size = sizeof(struct mr_sim_bom_conf),
};

static const struct mr_field supply_fields[] = {
    {.name = "enabled",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct mr_sim_supply_conf, enabled),
     .def = "true",
     .help = "Simulate the warehouse: inventory, inbound shipments and the bill of materials."},
    {.name = "interval",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_supply_conf, interval_ns),
     .def = "10s",
     .min = "100ms",
     .help = "How often each material's inventory is reported (and on every arrival)."},
    {.name = "materials",
     .type = MR_FIELD_SECTION_LIST,
     .offset = offsetof(struct mr_sim_supply_conf, materials),
     .section = &material_section,
     .max = "64",
     .help = "Materials in the warehouse. Absent: steel_blank and screws."},
    {.name = "bom",
     .type = MR_FIELD_SECTION_LIST,
     .offset = offsetof(struct mr_sim_supply_conf, bom),
     .section = &bom_section,
     .max = "256",
     .help = "Bill of materials: what one good part of a product consumes. Absent with the "
             "default materials: 1 steel_blank and 4 screws per part."},
    {0},
};

static const struct mr_section supply_section = {
    .fields = supply_fields,
    .size = sizeof(struct mr_sim_supply_conf),
};

/* ---- sensor faults on demand ---- */

static const char *const fault_kinds[] = {"dropout", "stuck", "late", "skew", NULL};

static const struct mr_field fault_fields[] = {
    {.name = "machine",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_fault_conf, machine),
     .flags = MR_FIELD_REQUIRED,
     .help = "Machine whose records are affected (name, or line/name)."},
    {.name = "signal",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_fault_conf, signal),
     .help = "Signal affected (e.g. temperature); absent: all signals of the machine."},
    {.name = "kind",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct mr_sim_fault_conf, kind),
     .values = fault_kinds,
     .flags = MR_FIELD_REQUIRED,
     .help = "'dropout': no records; 'stuck': the value freezes; 'late': records are held "
             "back and delivered `delay` later, after newer ones; 'skew': timestamps are "
             "shifted by `skew` (a wrong clock)."},
    {.name = "at",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_fault_conf, at_ns),
     .flags = MR_FIELD_REQUIRED,
     .help = "Simulated time after the start at which the fault begins."},
    {.name = "duration",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_fault_conf, duration_ns),
     .def = "1m",
     .min = "1ms",
     .help = "How long the fault lasts."},
    {.name = "delay",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_fault_conf, delay_ns),
     .def = "30s",
     .min = "1ms",
     .max = "1d",
     .help = "With kind: late, how much later than their time the records are delivered."},
    {.name = "skew",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_fault_conf, skew),
     .def = "5s",
     .help = "With kind: skew, the offset added to timestamps; may be negative (\"-2s\")."},
    {0},
};

static const struct mr_section fault_section = {
    .fields = fault_fields,
    .size = sizeof(struct mr_sim_fault_conf),
};

/* ---- the input ---- */

const struct mr_field mr_sim_conf_fields[] = {
    {.name = "seed",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mr_sim_conf, seed),
     .def = "1",
     .help = "Random seed: the same configuration, seed and start give identical records."},
    {.name = "speed",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_conf, speed),
     .def = "1",
     .min = "0",
     .max = "100000",
     .help = "Simulated seconds per real second: 1 is real time, 10 ten times faster, 0 as "
             "fast as the pipeline accepts."},
    {.name = "start",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_conf, start),
     .def = "now",
     .help = "Simulated time of the first record: 'now' or an RFC 3339 time such as "
             "2026-01-05T06:00:00Z (with speed: 0, a fixed start makes runs repeatable)."},
    {.name = "duration",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_conf, duration_ns),
     .def = "0",
     .help = "Simulated time after which the input ends; 0 runs forever."},
    {.name = "site",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_sim_conf, site),
     .def = "plant1",
     .help = "Site name, the first part of every asset path."},
    {.name = "lines",
     .type = MR_FIELD_SECTION_LIST,
     .offset = offsetof(struct mr_sim_conf, lines),
     .section = &line_section,
     .max = "64",
     .help = "Production lines and their machines. Absent: line1 in area assembly with "
             "press1, weld1 and paint1."},
    {.name = "ambient",
     .type = MR_FIELD_DOUBLE,
     .offset = offsetof(struct mr_sim_conf, ambient),
     .def = "22",
     .min = "-50",
     .max = "100",
     .help = "Hall temperature in degrees C; stopped machines cool down towards it."},
    {.name = "break_every",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_conf, break_every_ns),
     .def = "4h",
     .min = "0",
     .help = "Planned stops (breaks) for the whole site, this long apart, the first one this "
             "long after the start; 0: none."},
    {.name = "break_duration",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_conf, break_duration_ns),
     .def = "20m",
     .min = "1s",
     .help = "Length of each planned stop (state PLANNED_STOP, reason break)."},
    {.name = "temperature_interval",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_conf, temperature_interval_ns),
     .def = "1s",
     .min = "1ms",
     .max = "1h",
     .help = "Time between temperature readings of each machine."},
    {.name = "power_interval",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_sim_conf, power_interval_ns),
     .def = "1s",
     .min = "1ms",
     .max = "1h",
     .help = "Time between power (kW) and energy (kWh) readings of each machine."},
    {.name = "vibration",
     .type = MR_FIELD_BOOL,
     .offset = offsetof(struct mr_sim_conf, vibration),
     .def = "true",
     .help = "Generate vibration sample blocks; switch off for light runs (other signals "
             "stay identical)."},
    {.name = "vibration_rate",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mr_sim_conf, vibration_rate),
     .def = "10000",
     .min = "100",
     .max = "100000",
     .help = "Vibration sample rate in Hz."},
    {.name = "vibration_block",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mr_sim_conf, vibration_block),
     .def = "1000",
     .min = "16",
     .max = "100000",
     .help = "Vibration samples per record (1000 at 10 kHz is 0.1 s)."},
    {.name = "bearing_fault",
     .type = MR_FIELD_SECTION,
     .offset = offsetof(struct mr_sim_conf, bearing_fault),
     .section = &bearing_section,
     .help = "A bearing that degrades on one machine, and the bearing's geometry."},
    {.name = "quality_drift",
     .type = MR_FIELD_SECTION,
     .offset = offsetof(struct mr_sim_conf, quality_drift),
     .section = &drift_section,
     .help = "A machine whose part dimension drifts away from target."},
    {.name = "supply",
     .type = MR_FIELD_SECTION,
     .offset = offsetof(struct mr_sim_conf, supply),
     .section = &supply_section,
     .help = "The warehouse: materials, inbound shipments, bill of materials."},
    {.name = "faults",
     .type = MR_FIELD_SECTION_LIST,
     .offset = offsetof(struct mr_sim_conf, faults),
     .section = &fault_section,
     .max = "64",
     .help = "Sensor and network faults injected on demand: dropout, stuck, late, skew."},
    {0},
};

/* ---- defaults ---- */

struct sim_defaults {
    struct mr_conf_list lines;
    struct mr_conf_list materials;
    struct mr_conf_list bom;
};

static const struct mr_field defaults_fields[] = {
    {.name = "lines",
     .type = MR_FIELD_SECTION_LIST,
     .offset = offsetof(struct sim_defaults, lines),
     .section = &line_section,
     .help = "default lines"},
    {.name = "materials",
     .type = MR_FIELD_SECTION_LIST,
     .offset = offsetof(struct sim_defaults, materials),
     .section = &material_section,
     .help = "default materials"},
    {.name = "bom",
     .type = MR_FIELD_SECTION_LIST,
     .offset = offsetof(struct sim_defaults, bom),
     .section = &bom_section,
     .help = "default bill of materials"},
    {0},
};

static const struct mr_section defaults_section = {
    .fields = defaults_fields,
    .size = sizeof(struct sim_defaults),
};

/* The default plant: one line whose last machine finishes about 10 parts a minute, and a
 * warehouse whose deliveries roughly keep up with it, so stock moves both ways. */
static const char default_plant[] =
    "lines:\n"
    "  - name: line1\n"
    "    machines:\n"
    "      - {name: press1, ideal_cycle_time: 5s, rated_power: 22}\n"
    "      - {name: weld1, ideal_cycle_time: 5.5s, rpm: 2900, rated_power: 12}\n"
    "      - {name: paint1, ideal_cycle_time: 6s, rpm: 980, rated_power: 8}\n";
static const char default_supply[] =
    "materials:\n"
    "  - {name: steel_blank, initial: 600, shipment_qty: 500, shipment_every: 1h}\n"
    "  - {name: screws, initial: 2000, shipment_qty: 4000, shipment_every: 2h}\n"
    "bom:\n"
    "  - {material: steel_blank, qty: 1}\n"
    "  - {material: screws, qty: 4}\n";

int mr_sim_plant_resolve(struct mr_sim_plant *p, const struct mr_sim_conf *conf, struct mr_err *err)
{
    memset(p, 0, sizeof(*p));
    bool need_lines = conf->lines.n == 0;
    bool need_supply = conf->supply.enabled && conf->supply.materials.n == 0;
    if (need_lines || need_supply) {
        char text[sizeof(default_plant) + sizeof(default_supply)];
        size_t len = 0;
        if (need_lines) {
            memcpy(text, default_plant, sizeof(default_plant) - 1);
            len += sizeof(default_plant) - 1;
        }
        if (need_supply) {
            memcpy(text + len, default_supply, sizeof(default_supply) - 1);
            len += sizeof(default_supply) - 1;
        }
        struct sim_defaults *d = mr_calloc(1, sizeof(*d));
        struct mr_config_errors *errs = mr_calloc(1, sizeof(*errs));
        int rc = MR_ENOMEM;
        if (d != NULL && errs != NULL) {
            rc =
                mr_section_load_buffer(&defaults_section, d, "sim defaults", text, len, NULL, errs);
        }
        if (rc != 0) {
            MR_ERR_SET(err, rc, "built-in default plant: %s",
                       errs != NULL && errs->n > 0 ? errs->msg[0] : mr_strerror(rc));
            mr_free(errs);
            mr_free(d);
            return rc;
        }
        mr_free(errs);
        p->defaults = d;
    }
    const struct sim_defaults *d = p->defaults;
    const struct mr_conf_list *lines = need_lines ? &d->lines : &conf->lines;
    p->lines = lines->items;
    p->nlines = lines->n;
    if (conf->supply.enabled) {
        const struct mr_conf_list *mats = need_supply ? &d->materials : &conf->supply.materials;
        const struct mr_conf_list *bom =
            need_supply && conf->supply.bom.n == 0 ? &d->bom : &conf->supply.bom;
        p->materials = mats->items;
        p->nmaterials = mats->n;
        p->bom = bom->items;
        p->nbom = bom->n;
    }
    return 0;
}

void mr_sim_plant_fini(struct mr_sim_plant *p)
{
    if (p->defaults != NULL) {
        mr_section_free(&defaults_section, p->defaults);
        mr_free(p->defaults);
    }
    memset(p, 0, sizeof(*p));
}

size_t mr_sim_plant_machine_count(const struct mr_sim_plant *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nlines; i++) {
        n += p->lines[i].machines.n;
    }
    return n;
}

int mr_sim_plant_find_machine(const struct mr_sim_plant *p, const char *name)
{
    const char *slash = strchr(name, '/');
    int found = -1;
    int index = 0;
    for (size_t i = 0; i < p->nlines; i++) {
        const struct mr_sim_line_conf *l = &p->lines[i];
        size_t llen = strlen(l->name);
        bool line_ok =
            slash == NULL || ((size_t)(slash - name) == llen && strncmp(name, l->name, llen) == 0);
        const char *mname = slash != NULL ? slash + 1 : name;
        for (size_t j = 0; j < l->machines.n; j++, index++) {
            const struct mr_sim_machine_conf *mc =
                (const struct mr_sim_machine_conf *)l->machines.items + j;
            if (line_ok && strcmp(mc->name, mname) == 0) {
                if (found >= 0) {
                    return -2;
                }
                found = index;
            }
        }
    }
    return found;
}

int mr_sim_signed_duration_parse(const char *s, int64_t *ns, struct mr_err *err)
{
    bool neg = s[0] == '-';
    int64_t v;
    int rc = mr_duration_parse(neg || s[0] == '+' ? s + 1 : s, &v, err);
    if (rc != 0) {
        return rc;
    }
    *ns = neg ? -v : v;
    return 0;
}

double mr_sim_bpfo_hz(double shaft_hz, int64_t balls, double ball_d, double pitch_d,
                      double contact_deg)
{
    const double pi = 3.14159265358979323846;
    return (double)balls * shaft_hz / 2.0 *
           (1.0 - ball_d / pitch_d * cos(contact_deg * pi / 180.0));
}

/* ---- cross-field checks ---- */

/* Names become parts of asset paths: no '/', not empty. */
static bool path_part_ok(const char *s)
{
    return s != NULL && s[0] != '\0' && strchr(s, '/') == NULL;
}

static const char *const known_signals[] = {
    "state",       "cycle_count", "good_count", "reject_count", "cycle_time", "dimension",
    "temperature", "power",       "energy",     "vibration",    NULL,
};

static void machine_list(const struct mr_sim_plant *p, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < p->nlines; i++) {
        const struct mr_sim_line_conf *l = &p->lines[i];
        for (size_t j = 0; j < l->machines.n && used < cap; j++) {
            const struct mr_sim_machine_conf *mc =
                (const struct mr_sim_machine_conf *)l->machines.items + j;
            int w = snprintf(out + used, cap - used, "%s%s/%s", used > 0 ? ", " : "", l->name,
                             mc->name);
            used += w > 0 ? (size_t)w : 0;
        }
    }
}

static void check_machine_ref(struct mr_config_check *chk, const struct mr_sim_plant *p,
                              const char *field, const char *name)
{
    int idx = mr_sim_plant_find_machine(p, name);
    if (idx >= 0) {
        return;
    }
    char list[200];
    machine_list(p, list, sizeof(list));
    if (idx == -2) {
        mr_config_check_fail(chk, field,
                             "machine '%s' is on several lines: write LINE/%s (machines: %s)", name,
                             name, list);
    } else {
        mr_config_check_fail(chk, field, "no machine named '%s' (machines: %s)", name, list);
    }
}

static void check_names(const struct mr_sim_conf *c, const struct mr_sim_plant *p,
                        struct mr_config_check *chk)
{
    char field[96];
    if (!path_part_ok(c->site)) {
        mr_config_check_fail(chk, "site", "must be a non-empty name without '/'");
    }
    for (size_t i = 0; i < c->lines.n; i++) {
        const struct mr_sim_line_conf *l = (const struct mr_sim_line_conf *)c->lines.items + i;
        if (!path_part_ok(l->name) || !path_part_ok(l->area)) {
            snprintf(field, sizeof(field), "lines[%zu]", i);
            mr_config_check_fail(chk, field, "line and area names must be non-empty, without '/'");
        }
        for (size_t j = 0; j < l->machines.n; j++) {
            const struct mr_sim_machine_conf *mc =
                (const struct mr_sim_machine_conf *)l->machines.items + j;
            snprintf(field, sizeof(field), "lines[%zu].machines[%zu].name", i, j);
            if (!path_part_ok(mc->name)) {
                mr_config_check_fail(chk, field, "must be a non-empty name without '/'");
                continue;
            }
            for (size_t k = 0; k < j; k++) {
                if (strcmp(mc->name,
                           ((const struct mr_sim_machine_conf *)l->machines.items + k)->name) ==
                    0) {
                    mr_config_check_fail(chk, field, "machine '%s' twice on line '%s'", mc->name,
                                         l->name);
                }
            }
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(l->name, ((const struct mr_sim_line_conf *)c->lines.items + k)->name) == 0) {
                snprintf(field, sizeof(field), "lines[%zu].name", i);
                mr_config_check_fail(chk, field, "line '%s' declared twice", l->name);
            }
        }
    }
    for (size_t i = 0; i < p->nmaterials; i++) {
        if (!path_part_ok(p->materials[i].name)) {
            snprintf(field, sizeof(field), "supply.materials[%zu].name", i);
            mr_config_check_fail(chk, field, "must be a non-empty name without '/'");
        }
    }
}

static void check_supply(const struct mr_sim_plant *p, struct mr_config_check *chk)
{
    char field[96];
    for (size_t i = 0; i < p->nbom; i++) {
        const struct mr_sim_bom_conf *b = &p->bom[i];
        bool known = false;
        for (size_t j = 0; j < p->nmaterials && !known; j++) {
            known = strcmp(p->materials[j].name, b->material) == 0;
        }
        if (!known) {
            snprintf(field, sizeof(field), "supply.bom[%zu].material", i);
            mr_config_check_fail(chk, field, "no material named '%s' in supply.materials",
                                 b->material);
        }
        known = b->product == NULL;
        for (size_t j = 0; j < p->nlines && !known; j++) {
            known = strcmp(p->lines[j].product, b->product) == 0;
        }
        if (!known) {
            snprintf(field, sizeof(field), "supply.bom[%zu].product", i);
            mr_config_check_fail(chk, field, "no line makes '%s' (see each line's product)",
                                 b->product);
        }
    }
}

static void check_faults(const struct mr_sim_conf *c, const struct mr_sim_plant *p,
                         struct mr_config_check *chk)
{
    char field[96];
    for (size_t i = 0; i < c->faults.n; i++) {
        const struct mr_sim_fault_conf *f = (const struct mr_sim_fault_conf *)c->faults.items + i;
        snprintf(field, sizeof(field), "faults[%zu].machine", i);
        check_machine_ref(chk, p, field, f->machine);
        if (f->signal != NULL) {
            bool known = false;
            for (size_t k = 0; known_signals[k] != NULL && !known; k++) {
                known = strcmp(known_signals[k], f->signal) == 0;
            }
            if (!known) {
                snprintf(field, sizeof(field), "faults[%zu].signal", i);
                mr_config_check_fail(chk, field,
                                     "no machine signal '%s' (state, cycle_count, good_count, "
                                     "reject_count, cycle_time, dimension, temperature, power, "
                                     "energy, vibration)",
                                     f->signal);
            }
        }
        struct mr_err err;
        int64_t skew;
        if (mr_sim_signed_duration_parse(f->skew, &skew, &err) != 0) {
            snprintf(field, sizeof(field), "faults[%zu].skew", i);
            mr_config_check_fail(chk, field, "%s", err.msg);
        }
    }
}

void mr_sim_conf_check(void *conf, struct mr_config_check *chk)
{
    const struct mr_sim_conf *c = conf;
    int64_t ns;
    if (strcmp(c->start, "now") != 0 && mr_time_parse_rfc3339(c->start, strlen(c->start), &ns)) {
        mr_config_check_fail(chk, "start",
                             "expected 'now' or an RFC 3339 time like 2026-01-05T06:00:00Z, "
                             "got '%.60s'",
                             c->start);
    }
    if (c->break_every_ns > 0 && c->break_duration_ns >= c->break_every_ns) {
        mr_config_check_fail(chk, "break_duration", "must be shorter than break_every");
    }
    if (c->vibration && c->bearing_fault.machine != NULL &&
        c->bearing_fault.resonance_hz >= (double)c->vibration_rate / 2.0) {
        mr_config_check_fail(chk, "bearing_fault.resonance",
                             "must be below half the vibration_rate (%lld Hz)",
                             (long long)c->vibration_rate);
    }
    struct mr_sim_plant p;
    struct mr_err err;
    if (mr_sim_plant_resolve(&p, c, &err) != 0) {
        mr_config_check_fail(chk, NULL, "%s", err.msg);
        return;
    }
    check_names(c, &p, chk);
    if (c->bearing_fault.machine != NULL) {
        check_machine_ref(chk, &p, "bearing_fault.machine", c->bearing_fault.machine);
    }
    if (c->quality_drift.machine != NULL) {
        check_machine_ref(chk, &p, "quality_drift.machine", c->quality_drift.machine);
    }
    check_supply(&p, chk);
    check_faults(c, &p, chk);
    mr_sim_plant_fini(&p);
}
