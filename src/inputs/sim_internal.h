/* Inside the plant simulator's model: shared by sim_model.c (event loop, machines),
 * sim_vib.c (vibration blocks), sim_supply.c (warehouse) and sim_faults.c (sensor faults).
 * Not for other code: the model's interface is sim_model.h. */
#ifndef MILLRACE_INPUTS_SIM_INTERNAL_H
#define MILLRACE_INPUTS_SIM_INTERNAL_H

#include "inputs/sim_model.h"

#define SIM_NEVER       INT64_MAX
#define SIM_NS          1000000000LL
/* Most records one event produces (a completed cycle: five counters and values, plus the
 * state change when material runs out). */
#define SIM_EVENT_RECS  8
#define SIM_EVENT_TEXT  256
#define SIM_MAX_PENDING 16 /* shipments on the way per material */
#define SIM_PATH_LEN    256

/* ---- random numbers: xoshiro256** seeded through splitmix64 ---- */

struct sim_rng {
    uint64_t s[4];
};

void sim_rng_seed(struct sim_rng *r, uint64_t seed, uint64_t entity, uint64_t stream);
uint64_t sim_rng_next(struct sim_rng *r);
double sim_rng_uniform(struct sim_rng *r); /* [0, 1) */
double sim_rng_normal(struct sim_rng *r);  /* N(0, 1) */
double sim_rng_exp(struct sim_rng *r, double mean);

enum sim_state {
    ST_RUNNING = 0,
    ST_IDLE,
    ST_DOWN,
    ST_SETUP,
    ST_PLANNED,
    ST_COUNT,
};

enum sim_signal {
    SIG_STATE = 0,
    SIG_CYCLE_COUNT,
    SIG_GOOD_COUNT,
    SIG_REJECT_COUNT,
    SIG_CYCLE_TIME,
    SIG_DIMENSION,
    SIG_TEMPERATURE,
    SIG_POWER,
    SIG_ENERGY,
    SIG_VIBRATION,
    SIG_MACHINE_COUNT, /* signals above belong to machines (faults apply to them) */
    SIG_INVENTORY = SIG_MACHINE_COUNT,
    SIG_SHIPMENT,
    SIG_BOM,
    SIG_COUNT,
};

enum sim_tag {
    TAG_UNIT = 0,
    TAG_REASON,
    TAG_QTY,
    TAG_ETA,
    TAG_PRODUCT,
    TAG_MATERIAL,
    TAG_CONSUMER,
    TAG_COUNT,
};

extern const char *const sim_signal_names[SIG_COUNT];

/* Vibration of one machine: shaft tones, noise, and the bearing defect's impacts. */
struct sim_vib {
    double shaft_hz;
    double level_g;
    bool faulty;
    double bpfo_hz;
    double res_hz;
    double impact_g;
    int64_t fault_start_ns;
    int64_t growth_ns;
    double next_impact; /* sample index (since the start) of the next impact */
    double env;         /* current impact's envelope, decays per sample */
    double ring_re, ring_im;
};

struct sim_machine {
    const struct mr_sim_machine_conf *conf;
    uint32_t index;
    uint32_t line;
    mr_name_id asset;
    char path[SIM_PATH_LEN];
    struct sim_rng rng_state, rng_proc, rng_sens, rng_vib;
    /* PLC state */
    int state; /* enum sim_state, -1 before the first */
    const char *reason;
    int next_stop;        /* what ends the current RUNNING period */
    int64_t inrush_until; /* motor start-up after a stop */
    int64_t state_end;
    int64_t setup_due;
    int64_t break_until;
    bool starved; /* DOWN for material_shortage, waiting for a delivery */
    bool consumer;
    /* cycles */
    int64_t cycle_end; /* SIM_NEVER unless RUNNING */
    int64_t cycle_left;
    double cycle_s;
    int64_t cycles, good, rejects;
    /* thermal and electrical state, integrated piecewise up to integ_ns */
    double temp;
    double energy_kwh;
    int64_t integ_ns;
    /* periodic readings */
    int64_t temp_next;
    int64_t power_next;
    int64_t vib_next;
    uint64_t vib_block_no;
    /* quality drift */
    bool drifting;
    double drift_mm_per_ns;
    int64_t drift_start;
    struct sim_vib vib;
};

struct sim_shipment {
    int64_t arrive;
    double qty;
};

struct sim_material {
    const struct mr_sim_material_conf *conf;
    mr_name_id asset;
    char path[SIM_PATH_LEN];
    struct sim_rng rng;
    double level;
    int64_t report_next;
    int64_t announce_next;
    struct sim_shipment pending[SIM_MAX_PENDING]; /* by arrival time */
    size_t npending;
};

struct sim_bom {
    uint32_t line;
    uint32_t material;
    double qty;
    const char *product;
    char qty_text[32];
};

/* A record held back by a late fault; its pointers are offsets into the fault's buffers. */
struct sim_held {
    int64_t release;
    struct mr_record rec;
    size_t sample_off;
    size_t str_off;
    size_t tag_off[MR_RECORD_MAX_TAGS];
};

struct sim_frozen {
    bool set;
    double f64;
    int64_t i64;
    float sample;
    char str[32];
    uint32_t len;
};

struct sim_fault {
    int kind;
    uint32_t machine;
    int signal; /* enum sim_signal, -1: all */
    int64_t from, to;
    int64_t delay;
    int64_t skew;
    struct sim_frozen frozen[SIG_MACHINE_COUNT];
    /* late: a FIFO (one delay per fault, so release order is arrival order) */
    struct sim_held *held;
    size_t head, nheld, cap_held;
    float *samples;
    size_t nsamples, cap_samples;
    char *text;
    size_t ntext, cap_text;
};

/* The batch being filled; handed to the caller by mr_sim_model_next. */
struct sim_batch {
    struct mr_record *recs;
    size_t n, cap;
    float *samples;
    size_t nsamples, cap_samples;
    char *text;
    size_t ntext, cap_text;
};

struct mr_sim_model {
    const struct mr_sim_conf *conf;
    struct mr_sim_plant plant;
    mr_name_id sig[SIG_COUNT];
    mr_name_id tag[TAG_COUNT];
    int64_t start_ns, end_ns;
    uint32_t vib_rate;
    uint32_t vib_block;
    struct sim_machine *machines;
    size_t nmachines;
    struct sim_material *materials;
    size_t nmaterials;
    struct sim_bom *bom;
    size_t nbom;
    size_t bom_sent;
    struct sim_fault *faults;
    size_t nfaults;
    int64_t break_next;
    struct sim_batch batch;
    bool finished;
    uint64_t overflows;
};

/* ---- sim_model.c ---- */

/* A new record at the end of the batch (the caller checked there is room). */
struct mr_record *sim_batch_add(struct mr_sim_model *m, int64_t t, mr_name_id asset, int signal);
void sim_rec_tag(struct mr_sim_model *m, struct mr_record *r, int tag, const char *value,
                 size_t len);
/* Copy len bytes into the batch's text area; returns the copy. */
const char *sim_batch_text(struct mr_sim_model *m, const char *s, size_t len);
/* A delivery arrived: a consumer waiting for material re-checks at time t. */
void sim_machines_wake(struct mr_sim_model *m, int64_t t);

/* ---- sim_vib.c ---- */

void sim_vib_init(struct mr_sim_model *m, struct sim_machine *mc);
/* Fill out[0..vib_block) with the block starting at t (sample index first). */
void sim_vib_block(struct mr_sim_model *m, struct sim_machine *mc, uint64_t first, int64_t t,
                   float *out);
/* Damage of the bearing at t: 0 (healthy) to 1 (severe). */
double sim_vib_severity(const struct sim_vib *v, int64_t t);

/* ---- sim_supply.c ---- */

int sim_supply_init(struct mr_sim_model *m, struct mr_names *names, struct mr_err *err);
int64_t sim_supply_next(const struct mr_sim_model *m, size_t *which);
void sim_supply_step(struct mr_sim_model *m, size_t which, int64_t t);
bool sim_supply_available(const struct mr_sim_model *m, uint32_t line);
void sim_supply_consume(struct mr_sim_model *m, uint32_t line);

/* ---- sim_faults.c ---- */

int sim_faults_init(struct mr_sim_model *m, struct mr_err *err);
void sim_faults_fini(struct mr_sim_model *m);
/* Apply the faults to the machine's records batch[first..n) just generated at time t. */
void sim_faults_apply(struct mr_sim_model *m, uint32_t machine, size_t first);
/* Release time of the next held record, SIM_NEVER when none; *which gets its fault. */
int64_t sim_faults_next(const struct mr_sim_model *m, size_t *which);
/* Move the next held record of fault `which` into the batch. */
void sim_faults_release(struct mr_sim_model *m, size_t which);

#endif
