/* Shared between the energy operator's files (energy.c: records in, results out;
 * energy_state.c: checkpoints). Not a public header. */
#ifndef MR_ANALYTICS_ENERGY_INTERNAL_H
#define MR_ANALYTICS_ENERGY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "analytics/energy_tariff.h"
#include "operators/op_common.h"

#define EN_SLOTS    4  /* demand intervals open at once per machine or parent */
#define EN_MAX_BINS 60 /* forecast steps per demand interval (parents) */
#define EN_NONE     INT64_MIN

enum { EN_FROM_COUNTER = 0, EN_FROM_POWER = 1 };

struct en_conf {
    int energy_from;
    char *power_signal;
    char *energy_signal;
    char *good_signal;
    char *state_signal;
    double rollover;
    int64_t max_gap_ns;
    int64_t interval_ns;
    int64_t grace_ns;
    int64_t forecast_every_ns;
    struct mr_conf_list tariff; /* of struct mr_tariff_period */
    double price;
    char *currency;
    int64_t utc_offset_min;
    int64_t line_level;
    int64_t site_level;
    struct mr_strlist idle_states;
    double idle_kw;
    int64_t idle_min_ns;
    struct mr_strlist spike_states;
    int64_t spike_window;
    double spike_sigma;
    double spike_min_kw;
    int64_t spike_settle_ns;
    struct mr_strlist deferrable;
    double min_saving;
    bool pass_through;
    int64_t max_machines;
};

/* Energy booked to one demand interval (or one day). */
struct en_acc {
    double kwh;
    double cost;
    double idle_kwh;
    double good; /* good parts */
};

struct en_slot {
    int64_t s; /* interval start; EN_NONE: free */
    struct en_acc acc;
};

/* Intervals and the day of one machine or parent. */
struct en_series {
    int64_t closed_until; /* intervals ending at or before this are emitted */
    int64_t day_s;        /* start of the day being summed; EN_NONE: none yet */
    struct en_acc day;
    double peak_kw; /* highest interval demand of the day */
    int64_t peak_s;
    struct en_slot slot[EN_SLOTS];
};

enum { EN_ST_IDLE = 1, EN_ST_SPIKE = 2 }; /* state flags: in idle_states, in spike_states */

struct en_machine {
    struct en_series ser;
    uint32_t line; /* parent index + 1; 0: none */
    uint32_t site;
    int64_t last_t; /* last energy (counter mode) or power (power mode) sample; EN_NONE */
    double last_v;
    int64_t good_t; /* EN_NONE until the first good count */
    int64_t good_last;
    int64_t state_since; /* time of the last state change; EN_NONE: no state seen */
    uint8_t flags;
    uint8_t prev_flags; /* before state_since */
    uint8_t deferrable;
    uint8_t idle_alerted;
    uint8_t spiking;
    double idle_kwh; /* in the current idle episode */
    double sp_mean;  /* power baseline */
    double sp_var;
    uint64_t sp_n;
};

struct en_parent {
    struct en_series ser;
    mr_name_id asset;
    int64_t fc_next; /* next forecast time; EN_NONE: nothing booked yet */
    double bins[EN_SLOTS][EN_MAX_BINS];
};

enum {
    EN_SIG_KWH,
    EN_SIG_COST,
    EN_SIG_DEMAND,
    EN_SIG_IDLE_KWH,
    EN_SIG_PER_PART,
    EN_SIG_FORECAST,
    EN_SIG_DAY_KWH,
    EN_SIG_DAY_COST,
    EN_SIG_PEAK,
    EN_SIG_DAY_PER_PART,
    EN_SIG_SUGGESTION,
    EN_SIG_ALERT,
    EN_NSIG
};

enum {
    TAG_WSTART,
    TAG_WEND,
    TAG_CURRENCY,
    TAG_FEATURE,
    TAG_VALUE,
    TAG_BASELINE,
    TAG_THRESHOLD,
    TAG_DETECTOR,
    TAG_SEVERITY,
    TAG_PEAK_START,
    TAG_COST_SAVED,
    TAG_PRICE_TO,
    EN_NTAG
};

struct en_ctx {
    struct mr_op_base base;
    const struct en_conf *conf;
    struct mr_tariff *tariff;
    struct mr_keymap machines; /* asset -> struct en_machine */
    struct mr_keymap parents;  /* asset -> struct en_parent */
    struct mr_op_buf out;
    mr_name_id power_id, energy_id, good_id, state_id;
    mr_name_id sig[EN_NSIG];
    mr_name_id tag[EN_NTAG];
    char text[320];
    char tagbuf[EN_NTAG][40];
};

/* Parent (line or site) of asset at `level` path segments: created on first use. Returns
 * index + 1, or 0 when the asset has no such parent or the cap is reached (logged). */
uint32_t mr_energy_parent(struct en_ctx *c, mr_name_id asset, int64_t level);
/* Machine entry, created (parents, deferrable flag) on first use; NULL when it cannot be. */
struct en_machine *mr_energy_machine(struct en_ctx *c, mr_name_id asset);

extern const char *const mr_energy_sig_names[EN_NSIG];
extern const char *const mr_energy_tag_names[EN_NTAG];

void mr_energy_series_init(struct en_series *ser);
int mr_energy_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err);
int mr_energy_advance(void *ctx, mr_name_id asset, int64_t watermark_ns, struct mr_err *err);
int mr_energy_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err);
int mr_energy_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err);

#endif
