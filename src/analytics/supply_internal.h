/* Operator `supply`: state shared by supply.c (records in, the plugin), supply_emit.c
 * (projection records and alerts out) and supply_state.c (checkpoints). */
#ifndef MR_ANALYTICS_SUPPLY_INTERNAL_H
#define MR_ANALYTICS_SUPPLY_INTERNAL_H

#include "analytics/supply.h"
#include "operators/op_common.h"

#define SUPPLY_MAX_LINKS 8    /* materials one consuming machine draws from */
#define SUPPLY_MAX_CURVE 48   /* curve points per projection */
#define SUPPLY_TEXT_CAP  4096 /* tag and alert text of one projection */

/* Where the consumption rate comes from (config `rate_from`; auto takes the best one seen). */
enum { SRC_AUTO = 0, SRC_INVENTORY = 1, SRC_COUNTERS = 2, SRC_EVENTS = 3 };

struct supply_conf {
    int rate_from;
    int64_t rate_window_ns;
    int64_t safety_margin_ns;
    int64_t horizon_ns;
    int64_t uncovered_within_ns;
    int64_t curve_points;
    char *inventory_signal;
    char *shipment_signal;
    char *consumption_signal;
    char *bom_signal;
    char *parts_signal;
    char *id_tag;
    int64_t max_materials;
};

/* One material at one site: the key is its asset (SITE/warehouse/MATERIAL). */
struct supply_material {
    double level; /* units at level_t: last reading, plus arrivals, minus counted use */
    int64_t level_t;
    double rate;        /* units per second (EWMA) */
    int64_t obs_t;      /* end of the last rate observation */
    double obs_pending; /* units consumed at or before obs_t not yet in the rate */
    uint8_t have_level;
    uint8_t have_rate;
    uint8_t have_obs;
    uint8_t src;  /* source feeding the rate (SRC_*), 0 before any */
    uint8_t risk; /* 0 none, 1 warning, 2 alarm: alerts go out when it rises */
    uint8_t pad[3];
    uint32_t nship;
    struct mr_supply_shipment ship[MR_SUPPLY_MAX_SHIPMENTS]; /* sorted by eta */
};

/* A machine whose good parts consume materials (from bill-of-materials records). */
struct supply_link {
    mr_name_id material;
    uint32_t pad;
    double qty; /* units per good part */
};

struct supply_consumer {
    int64_t count; /* last counter value */
    int64_t t;
    uint32_t have;
    uint32_t nlinks;
    struct supply_link link[SUPPLY_MAX_LINKS];
};

enum {
    SIG_INVENTORY,
    SIG_SHIPMENT,
    SIG_CONSUMPTION,
    SIG_BOM,
    SIG_PARTS,
    OUT_STOCKOUT_IN,
    OUT_DAYS_OF_COVER,
    OUT_RATE,
    OUT_LEVEL,
    OUT_NEXT_ARRIVAL,
    OUT_RISK,
    OUT_CURVE,
    OUT_ALERT,
    NSIGNALS
};

enum {
    TAG_QTY,
    TAG_ETA,
    TAG_ID,
    TAG_CONSUMER,
    TAG_UNIT,
    TAG_AT,
    TAG_OVERDUE,
    TAG_SOURCE,
    TAG_BEYOND,
    TAG_FEATURE,
    TAG_VALUE,
    TAG_THRESHOLD,
    TAG_DETECTOR,
    TAG_SEVERITY,
    TAG_WSTART,
    TAG_WEND,
    NTAGS
};

struct supply_ctx {
    struct mr_op_base base;
    const struct supply_conf *conf;
    struct mr_keymap materials; /* asset -> struct supply_material */
    struct mr_keymap consumers; /* machine asset -> struct supply_consumer */
    struct mr_op_buf out;
    mr_name_id sig[NSIGNALS];
    mr_name_id tag[NTAGS];
    size_t text_used;
    char text[SUPPLY_TEXT_CAP]; /* what projection records borrow until flushed */
};

/* Emit the projection of material m (asset) as of t0, and an alert when its risk rose.
 * Flushes: the records borrow c->text. Returns 0 or the emit error. */
int supply_emit(struct supply_ctx *c, mr_name_id asset, struct supply_material *m, int64_t t0);

/* Checkpoints (supply_state.c). */
int supply_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err);
int supply_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err);

#endif
