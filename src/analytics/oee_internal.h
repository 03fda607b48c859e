/* Internals shared by the files of the `oee` operator (oee.c: config, records, time booking,
 * checkpoints; oee_emit.c: KPI records, line windows, alerts). */
#ifndef MR_ANALYTICS_OEE_INTERNAL_H
#define MR_ANALYTICS_OEE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "analytics/oee_calendar.h"
#include "operators/op_common.h"

/* ISO 22400-2 time elements a machine state is booked to. */
enum {
    CAT_RUN = 0, /* APT, actual production time */
    CAT_DOWN,    /* ADET, unplanned interruption (breakdown) */
    CAT_IDLE,    /* ADOT, available but not producing (waiting) */
    CAT_SETUP,   /* AUST, setup and changeover */
    CAT_PLANNED, /* PDOT, planned downtime (excluded from OEE) */
    NCAT
};

enum { KPI_OEE, KPI_A, KPI_P, KPI_Q, NKPI };

/* Sums of one window (a shift, a day, an interval slice) for one machine or one line. */
struct oee_acc {
    int64_t start; /* window [start, end), UTC ns */
    int64_t end;
    int64_t t[NCAT]; /* ns booked per element; t[CAT_RUN] excludes small stops */
    int64_t micro;   /* ns of stops shorter than microstop_threshold: inside APT */
    int64_t pending; /* ns of the open stop not yet known to be short or long */
    int64_t pq;      /* produced, good, rejected in the start-up period */
    int64_t gq;
    int64_t startup;
    double ideal_pq; /* s: ideal cycle time x produced (summed per machine for lines) */
    double ideal_gq;
    double ideal_startup;
    int32_t shift;
    uint32_t nmicro;
    uint32_t used;
};

struct oee_conf {
    char *state_signal;
    char *produced_signal;
    char *good_signal;
    char *reject_signal;
    struct mr_strlist states[NCAT];
    int64_t ideal_ns;
    struct mr_strmap ideal_by_machine;
    int64_t microstop_ns;
    int64_t startup_ns;
    int planned_stop; /* 0: state, 1: calendar */
    struct mr_conf_list shifts;
    struct mr_conf_list breaks;
    char *utc_offset;
    int64_t interval_ns;
    int64_t line_level;
    bool day;
    bool details;
    bool pass_through;
    double targets[NKPI];
    int64_t alert_after_ns;
    int64_t max_machines;
};

struct oee_shift_conf {
    char *name;
    char *start;
    char *end;
};

struct oee_break_conf {
    char *name;
    char *start;
    char *end;
};

struct oee_machine {
    struct mr_op_link link;
    mr_name_id asset;
    mr_name_id line; /* 0: no line aggregation */
    double pri_s;    /* ideal cycle time, s */
    int64_t cursor;  /* time booked up to (INT64_MIN: nothing yet) */
    int64_t ep_start;
    int64_t run_since; /* start of the start-up period (INT64_MIN: none) */
    int64_t last[3];   /* last counter values: produced, good, reject */
    int64_t next_tick;
    int64_t below_since[NKPI]; /* INT64_MIN: not below target */
    struct mr_oee_span seg;    /* cached calendar segment of cursor */
    struct oee_acc acc[2];     /* open shifts, oldest first */
    struct oee_acc slice;      /* since the last interval tick */
    struct oee_acc day;        /* finished shifts of the current day */
    int8_t cat;                /* current category, -1: no state seen */
    int8_t ep_cat;             /* open stop episode's category, -1: none */
    uint8_t has_last;          /* bit i: last[i] valid */
    uint8_t alerted;           /* bit k: alert raised for KPI k */
};

/* A window of line results (kind: shift, day or partial) and its line sums live in ctx->lines
 * under key line << 32 | window index. */
enum { WIN_SHIFT, WIN_DAY, WIN_PARTIAL };

struct oee_window {
    int64_t start;
    int64_t end;
    int64_t emit_at; /* record time */
    int64_t due;     /* pipeline watermark at which it is emitted */
    int32_t shift;
    uint8_t kind;
    uint8_t used;
};

#define OEE_MAX_WINDOWS 64
#define OEE_TEXT_SLOTS  16

struct oee_text {
    char ws[24];
    char we[24];
};

struct oee_ctx {
    struct mr_op_base base;
    const struct oee_conf *conf;
    struct mr_oee_cal cal;
    char **shift_names;
    struct mr_op_keyed keyed; /* (asset, 0) -> struct oee_machine */
    struct mr_keymap lines;   /* line << 32 | window -> struct oee_acc */
    struct oee_window windows[OEE_MAX_WINDOWS];
    struct mr_op_buf out;
    int64_t sweep_due; /* earliest due time among machines (lower bound) */
    int64_t lines_due;
    mr_name_id sig_state;
    mr_name_id sig_count[3];
    mr_name_id *out_ids; /* result signals */
    mr_name_id alert_id;
    mr_name_id tag_ids[16];
    struct oee_text text[OEE_TEXT_SLOTS];
    int ntext;
    char alert_text[256];
    char alert_tags[4][32];
};

/* oee.c */
int oee_machine_init(struct oee_ctx *c, struct oee_machine *m, mr_name_id asset);
void oee_set_due(struct oee_ctx *c, struct oee_machine *m);
int oee_process(void *ctx, const struct mr_record *recs, size_t n, struct mr_err *err);
int oee_advance(void *ctx, mr_name_id asset, int64_t wm, struct mr_err *err);

/* oee_emit.c */
int oee_emit_view(struct oee_ctx *c, mr_name_id asset, const struct oee_acc *a, int kind,
                  int64_t at, bool final);
int oee_emit_names(struct oee_ctx *c);
int oee_line_add(struct oee_ctx *c, mr_name_id line, const struct oee_acc *a, int kind,
                 int64_t emit_at, int64_t due);
int oee_lines_advance(struct oee_ctx *c, int64_t wm);
int oee_alert_check(struct oee_ctx *c, struct oee_machine *m, const struct oee_acc *slice,
                    int64_t at);
void oee_acc_add(struct oee_acc *dst, const struct oee_acc *src);
/* Ratios of a window; NaN where undefined (no planned busy time, nothing produced). */
void oee_acc_kpis(const struct oee_acc *a, double k[NKPI]);

#endif
