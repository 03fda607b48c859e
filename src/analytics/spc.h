/* Internals of the `spc` operator shared by its files: spc_conf.c (configuration table and
 * checks) and spc.c (the operator). Not a public header.
 */
#ifndef MR_ANALYTICS_SPC_H
#define MR_ANALYTICS_SPC_H

#include <stdbool.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <inttypes.h>
#include <string.h>

#include "analytics/spc_chart.h"
#include "millrace/config.h"
#include "operators/op_common.h"

#define MR_SPC_MAX_CHARS 16 /* characteristics per step */
#define MR_SPC_RECENT    16 /* plotted points kept for the adjust offset and pattern times */

enum { SPC_CHART_INDIVIDUALS = 0, SPC_CHART_XBAR_R = 1 };
enum { SPC_DO_FLAG = 0, SPC_DO_ADJUST = 1, SPC_DO_HALT = 2, SPC_NDO };

struct mr_spc_action_conf {
    struct mr_strlist when; /* rule names */
    int what;               /* SPC_DO_* */
};

struct mr_spc_char_conf {
    char *signal;
    struct mr_strlist assets; /* globs; empty: every asset */
    double lsl;
    double usl;
    double target;
    int chart;
    int64_t subgroup_size;
    int64_t baseline;
    double center;
    double sigma;
    struct mr_strlist rules;
    struct mr_conf_list actions; /* of struct mr_spc_action_conf */
    int64_t capability_window;
    int64_t capability_every;
    int64_t adjust_points;
    double adjust_gain;
    double adjust_max;
    bool has_lsl;
    bool has_usl;
    bool has_target;
    bool has_center;
    bool has_sigma;
};

struct mr_spc_conf {
    struct mr_conf_list characteristics; /* of struct mr_spc_char_conf */
    char *commands_topic;
    char *quality_topic;
    int64_t cooldown_ns;
    int64_t max_commands;
    int64_t per_ns;
    int64_t line_level;
    int64_t max_keys;
};

/* spc_conf.c: the field table and its cross-field check. */
extern const struct mr_field mr_spc_fields[];
void mr_spc_check(void *conf, struct mr_config_check *chk);

/* Masks of a characteristic's rules and actions (rule names checked by the config). */
uint32_t mr_spc_rule_mask(const struct mr_strlist *names);

/* ---- operator state (spc.c, spc_act.c, spc_state.c) ---- */

#define SPC_NO_CHAR 0xff

extern const struct mr_plugin mr_operator_spc;

enum { SPC_LEARN = 0, SPC_RUN = 1 };
enum { O_XBAR, O_RANGE, O_CL, O_UCL, O_LCL, O_CP, O_CPK, O_PP, O_PPK, NOUT };

enum {
    T_FEATURE,
    T_VALUE,
    T_BASELINE,
    T_THRESHOLD,
    T_SIGMA,
    T_DETECTOR,
    T_RULE,
    T_SEVERITY,
    T_WSTART,
    T_WEND,
    T_CHAR,
    T_MACHINE,
    T_TARGET,
    T_MEAN,
    T_REASON,
    T_OFFSET,
    T_LSL,
    T_USL,
    T_CHART,
    T_RBAR,
    T_RUCL,
    T_RLCL,
    T_N,
    T_SWITHIN,
    T_SOVERALL,
    NTAG
};

struct spc_char {
    const struct mr_spc_char_conf *conf;
    mr_name_id signal;
    mr_name_id out[NOUT];
    uint32_t rules;        /* chart rules selected, plus tolerance when a spec limit is set */
    uint32_t act[SPC_NDO]; /* rules triggering each action */
    int sub;               /* 1: individuals; n: xbar_r */
    const struct mr_spc_const *k;
};

struct spc_pt {
    double x;
    int64_t t;
};

struct spc_entry {
    struct mr_op_link link;
    uint8_t charx; /* index into chars, SPC_NO_CHAR: not charted */
    uint8_t phase;
    uint8_t has_prev;
    uint8_t pad;
    mr_name_id line; /* where halt goes */
    uint32_t firing; /* rules violated at the latest evaluation */
    uint32_t nbase;  /* baseline points seen */
    uint32_t nr;     /* ranges summed in rsum */
    uint32_t sub_n;  /* values in the open subgroup */
    uint32_t ring_n;
    uint32_t ring_head;
    uint64_t nvalues; /* values charted in all */
    uint64_t nrecent; /* points plotted after the baseline */
    double bmean;     /* baseline: running mean of the points */
    double rsum;      /* baseline: sum of the ranges */
    double prev;      /* previous value (moving range) */
    double cl;
    double sigma; /* of single values */
    double splot; /* of the plotted statistic */
    double rbar;
    double sub_sum;
    double sub_min;
    double sub_max;
    int64_t sub_t0;
    struct mr_spc_hist hist;
    double recent[MR_SPC_RECENT];
    int64_t recent_t[MR_SPC_RECENT];
    struct spc_pt *ring; /* capability_window values, owned */
};

/* Command rate state of one machine. */
struct spc_machine {
    double tokens;
    int64_t refill_t;
    int64_t last[2]; /* time of the latest adjust, halt */
    uint64_t seen;   /* bit 0: an adjust was sent, bit 1: a halt */
};

struct spc_ctx {
    struct mr_op_base base;
    const struct mr_spc_conf *conf;
    struct spc_char chars[MR_SPC_MAX_CHARS];
    size_t nchars;
    struct mr_op_keyed keyed;
    struct mr_keymap machines;
    struct mr_op_buf out;
    struct mr_op_buf quality;
    struct mr_op_buf commands;
    struct mr_counter *suppressed;
    mr_name_id alert_id;
    mr_name_id flag_id;
    mr_name_id command_id;
    mr_name_id tag_ids[NTAG];
    double *scratch; /* capability window in time order */
    char text[320];
    char tagbuf[NTAG][48];
};

/* What one evaluation found: the value, the plotted point and the rules violated. */
struct spc_finding {
    const struct mr_record *rec;
    double x;  /* the measured value */
    double p;  /* the plotted point (x, or the subgroup mean) */
    int64_t t; /* time of the point: the value's */
    uint32_t rules;
};

/* ---- helpers ---- */

static inline const char *spc_tag_set(struct spc_ctx *c, int tag, const char *fmt, double v)
{
    snprintf(c->tagbuf[tag], sizeof(c->tagbuf[tag]), fmt, v);
    return c->tagbuf[tag];
}

static inline void spc_tag_time(struct spc_ctx *c, int tag, int64_t t)
{
    snprintf(c->tagbuf[tag], sizeof(c->tagbuf[tag]), "%" PRId64, t);
}

/* Append tag `tag` with text s (NULL: c->tagbuf[tag]). */
static inline void spc_tag_add(struct spc_ctx *c, struct mr_record *r, int tag, const char *s)
{
    const char *v = s != NULL ? s : c->tagbuf[tag];
    if (r->ntags < MR_RECORD_MAX_TAGS) {
        r->tags[r->ntags++] = (struct mr_tag){.key = c->tag_ids[tag],
                                              .value = {.ptr = v, .len = (uint32_t)strlen(v)}};
    }
}

/* Append tag `tag` with borrowed bytes. */
static inline void spc_tag_bytes(struct spc_ctx *c, struct mr_record *r, int tag, const char *p,
                                 size_t len)
{
    if (r->ntags < MR_RECORD_MAX_TAGS) {
        r->tags[r->ntags++] =
            (struct mr_tag){.key = c->tag_ids[tag], .value = {.ptr = p, .len = (uint32_t)len}};
    }
}

static inline struct mr_record spc_derived(const struct mr_record *rec, int64_t t,
                                           mr_name_id signal)
{
    return (struct mr_record){.time_ns = t,
                              .asset = rec->asset,
                              .signal = signal,
                              .type = MR_VALUE_F64,
                              .quality = MR_QUALITY_GOOD};
}

/* Push a record that borrows c->text / c->tagbuf and send it before they are reused. */
static inline int spc_push_now(struct mr_op_buf *b, const struct mr_record *r)
{
    int rc = mr_op_buf_push(b, r);
    return rc == 0 ? mr_op_buf_flush(b) : rc;
}

static inline const char *spc_name_of(struct spc_ctx *c, mr_name_id id, size_t *len)
{
    const char *s = mr_names_str(c->base.host->names, id, len);
    return s != NULL ? s : "";
}

/* spc.c: characteristic, line and window of a new key. */
int mr_spc_entry_setup(struct spc_ctx *c, struct spc_entry *e, mr_name_id asset, mr_name_id sig);
/* spc_act.c: alerts for rules that start to be violated, then the actions. */
int mr_spc_act(struct spc_ctx *c, const struct spc_char *ch, struct spc_entry *e,
               const struct spc_finding *f, uint32_t evaluated);
/* spc_state.c: checkpoints. */
int mr_spc_snapshot(void *ctx, struct mr_state_writer *w, struct mr_err *err);
int mr_spc_restore(void *ctx, struct mr_state_reader *r, struct mr_err *err);

#endif
