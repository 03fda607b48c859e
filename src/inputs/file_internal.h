/* State of a `file` input instance, shared by src/inputs/file.c (configuration, reading,
 * pacing, the plugin) and src/inputs/file_rows.c (turning rows and JSON lines into records). */
#ifndef MILLRACE_INPUTS_FILE_INTERNAL_H
#define MILLRACE_INPUTS_FILE_INTERNAL_H

#include <glob.h>
#include <stdbool.h>
#include <stdint.h>

#include "inputs/file_parse.h"
#include "millrace/log.h"
#include "millrace/plugin.h"

#define FILE_CHUNK      (64u * 1024u) /* bytes per read(): then the loop gets a turn */
#define FILE_NAME_CACHE 16            /* distinct assets / signals / tag keys remembered */
#define FILE_MAX_NAME   1024          /* longest asset path, signal or tag key taken */
#define FILE_WHY_LEN    300

enum file_format {
    FILE_FORMAT_CSV = 0,
    FILE_FORMAT_JSON = 1,
};

enum file_pace {
    FILE_PACE_FAST = 0,
    FILE_PACE_REALTIME = 1,
};

struct file_in_conf {
    char *path;
    int format; /* enum file_format */
    bool header;
    char *delimiter;
    char *time_column;
    char *time_format;
    char *timezone;
    char *asset;
    char *asset_column;
    struct mr_strmap columns;
    char *signal_column;
    char *value_column;
    char *quality_column;
    struct mr_strlist tag_columns;
    char *tags_column;
    int pace; /* enum file_pace */
    double speed;
    bool follow;
    int64_t batch;
    uint64_t max_line;
};

/* Recently seen names of one kind: most files have few distinct assets, so a byte compare
 * against the last hit spares hashing the name on every row. */
struct name_cache {
    mr_name_id ids[FILE_NAME_CACHE];
    unsigned n;
    unsigned last;
    unsigned next;
};

/* Which field of a row plays which part. CSV: field indexes from the header. Flat JSON: slots
 * the line's object is sorted into (slot_names). -1: absent. */
struct file_plan {
    size_t ncols;
    int time, asset, quality, signal, value, tags;
    size_t ntags;
    struct {
        int idx;
        mr_name_id key;
    } tag[MR_RECORD_MAX_TAGS];
    size_t nsignals;
    struct {
        int idx;
        mr_name_id signal;
    } sig[MR_CSV_MAX_FIELDS];
};

struct file_ctx {
    const struct file_in_conf *conf;
    struct mr_input_host *host;
    struct mr_plugin_counters counters;
    struct mr_log_ratelimit rl;
    struct mr_time_format tf;
    char delim;
    bool flat_json;   /* format: json with columns or signal_column */
    mr_name_id asset; /* the constant asset, if configured */

    /* files */
    glob_t glob;
    bool globbed;
    const char *single[1];
    const char *const *paths;
    size_t npaths;
    size_t cur;
    int fd;
    uint64_t offset;  /* bytes read from the current file */
    uint64_t line_no; /* lines consumed in the current file */
    bool eof, skipping, has_plan;

    /* the loop */
    uv_idle_t idle;
    uv_timer_t timer;
    int open_handles;
    bool started, running, stopping, ended, pending;

    /* pace: realtime */
    bool have_t0;
    int64_t t0_event_ns;
    int64_t t0_mono_ns;
    int64_t now_mono_ns;
    int64_t wait_ns;

    /* buffers: [start, end) of buf not yet consumed; records of the batch borrow from buf and
     * arena, so buf never moves while records are held */
    char *buf;
    size_t cap, start, end;
    struct mr_record *recs;
    size_t nrecs, rec_cap;
    char *arena;
    size_t arena_used, arena_cap;

    struct file_plan plan;
    struct mr_csv_row row;
    /* flat JSON: configured names, one per slot */
    const char *slot_names[MR_CSV_MAX_FIELDS];
    size_t nslots;
    struct name_cache asset_cache, signal_cache, key_cache;
    char why[FILE_WHY_LEN];
};

/* What taking one row or line did. */
enum {
    ROW_DONE = 0, /* consumed: records added, or nothing (blank line) */
    ROW_BAD = 1,  /* consumed but skipped: c->why says why */
    ROW_WAIT = 2, /* not consumed: not due yet (pace) or the batch could not be handed over */
};

/* file.c: hand the batch to the host; false when the input must pause (or ended). */
bool mr_file_offer(struct file_ctx *c);
/* file.c: true when a record of event time t must wait for pace: realtime (c->wait_ns set). */
bool mr_file_not_due(struct file_ctx *c, int64_t t);

/* file_rows.c */
int mr_file_plan_csv(struct file_ctx *c, const struct mr_csv_row *header, struct mr_err *err);
int mr_file_plan_json(struct file_ctx *c, struct mr_err *err);
int mr_file_row_take(struct file_ctx *c, const struct mr_csv_field *f, size_t nf,
                     size_t arena_need);
int mr_file_json_take(struct file_ctx *c, const char *line, size_t len);

#endif
