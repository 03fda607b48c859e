/* Configuration: one YAML file, validated against field tables declared once.
 *
 * Every section of the file and every plugin declares its settings once, as a static const
 * table of struct mr_field (name, type, offset into its own config struct, default, bounds,
 * allowed values, help). That one table drives parsing, defaults, validation with
 * FILE:LINE:COLUMN errors and "did you mean" hints, `millrace config check` and docs/CONFIG.md.
 *
 *   journal:                      # struct mr_journal_conf
 *     dir: ./millrace-data
 *   inputs:                       # named plugin instances; `type` selects the plugin
 *     press_temp: {type: stdin, format: json}
 *   pipelines:                    # struct mr_pipeline_conf
 *     clean: {from: [press_temp], steps: [], to: [console]}
 *   outputs:
 *     console: {type: stdout}
 *
 * Loading: parse the YAML into a tree (with positions), substitute ${NAME} / ${NAME:-default}
 * from the environment inside scalars, apply `--set key.path=value` overrides, then walk the
 * tree with the field tables into plain C structs. All errors of a file are collected (up to
 * MR_CONFIG_MAX_ERRORS), not just the first.
 *
 * Storage per field type (the C type at `offset` in the owning struct):
 *   MR_FIELD_BOOL bool            MR_FIELD_INT int64_t          MR_FIELD_DOUBLE double
 *   MR_FIELD_STRING char * (NULL when absent without default)   MR_FIELD_DURATION int64_t ns
 *   MR_FIELD_SIZE uint64_t bytes  MR_FIELD_ENUM int (index into .values)
 *   MR_FIELD_STRING_LIST struct mr_strlist      MR_FIELD_STRING_MAP struct mr_strmap
 *   MR_FIELD_SECTION the nested struct itself (.section->size bytes, embedded)
 *   MR_FIELD_SECTION_LIST struct mr_conf_list   MR_FIELD_SECTION_MAP struct mr_conf_map
 *   MR_FIELD_PLUGIN_MAP / MR_FIELD_PLUGIN_LIST struct mr_plugin_confs
 * Everything reachable from a struct mr_config is owned by it.
 */
#ifndef MILLRACE_CONFIG_H
#define MILLRACE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "millrace/error.h"

enum mr_field_type {
    MR_FIELD_BOOL = 1,
    MR_FIELD_INT,
    MR_FIELD_DOUBLE,
    MR_FIELD_STRING,
    MR_FIELD_DURATION,
    MR_FIELD_SIZE,
    MR_FIELD_ENUM,
    MR_FIELD_STRING_LIST,
    MR_FIELD_STRING_MAP,
    MR_FIELD_SECTION,
    MR_FIELD_SECTION_LIST,
    MR_FIELD_SECTION_MAP,
    MR_FIELD_PLUGIN_MAP,  /* name -> {type: PLUGIN, ...}, e.g. `inputs` */
    MR_FIELD_PLUGIN_LIST, /* [{type: PLUGIN, ...}, ...], e.g. a pipeline's `steps` */
};

/* Kinds of plugin, for MR_FIELD_PLUGIN_* fields and the registry (millrace/plugin.h). */
enum mr_plugin_kind {
    MR_PLUGIN_INPUT = 1,
    MR_PLUGIN_OPERATOR = 2,
    MR_PLUGIN_OUTPUT = 3,
};

#define MR_FIELD_REQUIRED 0x1u

/* Where a "did the user write this key?" flag lives: MR_FIELD_PRESENT(struct t, has_x) stores
 * true in bool `has_x` when the key is in the file (used for overrides that inherit). */
#define MR_FIELD_PRESENT(type, member) (offsetof(type, member) + 1)

struct mr_section;

/* One setting. Text values (def, min, max) are parsed by the same code as the file's values. */
struct mr_field {
    const char *name;
    enum mr_field_type type;
    size_t offset;                    /* offsetof(owning struct, member) */
    const char *def;                  /* default as text; NULL: no default (zero / NULL) */
    const char *min;                  /* inclusive bounds for INT, DOUBLE, DURATION, SIZE */
    const char *max;                  /*   and minimum/maximum item count for lists; NULL: none */
    const char *const *values;        /* ENUM: NULL-terminated allowed values (index = value) */
    const struct mr_section *section; /* SECTION, SECTION_LIST, SECTION_MAP */
    enum mr_plugin_kind plugin_kind;  /* PLUGIN_MAP, PLUGIN_LIST */
    unsigned flags;                   /* MR_FIELD_REQUIRED */
    size_t present;                   /* 0 or MR_FIELD_PRESENT(...) */
    const char *help;
};

struct mr_config_check;

/* A group of fields stored in one struct: a top-level section, a nested section or a plugin's
 * configuration. `check` (optional) validates across fields after they are all applied and
 * reports problems with mr_config_check_fail(). */
struct mr_section {
    const struct mr_field *fields; /* terminated by an entry with name == NULL */
    size_t size;                   /* sizeof the struct the offsets point into */
    void (*check)(void *conf, struct mr_config_check *chk);
};

/* Report a cross-field problem from a section's check hook: `field` names the key (NULL for the
 * section itself); the message gets the position and key path prepended. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void mr_config_check_fail(struct mr_config_check *chk, const char *field, const char *fmt, ...);

/* ---- containers used in config structs (all owned by the struct mr_config) ---- */

struct mr_strlist {
    char **items;
    size_t n;
};

struct mr_strpair {
    char *key;
    char *value;
};

struct mr_strmap {
    struct mr_strpair *items; /* in file order */
    size_t n;
};

/* MR_FIELD_SECTION_LIST: n structs of section->size bytes each, contiguous. */
struct mr_conf_list {
    void *items;
    size_t n;
};

struct mr_conf_entry {
    char *name;
    void *conf; /* section->size bytes */
};

/* MR_FIELD_SECTION_MAP, in file order. */
struct mr_conf_map {
    struct mr_conf_entry *items;
    size_t n;
};

struct mr_plugin;

/* An output's `delivery:` settings, the same for every output type (src/engine/delivery.c). */
struct mr_delivery_conf {
    int64_t retry_min_ns;     /* first wait after a RETRY */
    int64_t retry_max_ns;     /* the wait doubles up to this */
    int64_t circuit_failures; /* consecutive failures that open the circuit */
    int64_t circuit_open_ns;  /* how long an open circuit waits before one probe */
    char *dead_letter_topic;  /* NULL: "deadletter.NAME" */
    int64_t batch_size;       /* records per write call (0: the output's default) */
    int64_t batch_wait_ns;    /* how long to wait for a fuller batch; 0: send what is there */
};

extern const struct mr_section mr_delivery_section;

/* One configured plugin instance. */
struct mr_plugin_conf {
    char *name;                       /* map key ("press_temp"), or the index for a list ("0") */
    char *path;                       /* key path for logs and metrics: "inputs.press_temp" */
    char *where;                      /* where it was declared: "plant.yaml:12:3" */
    const struct mr_plugin *plugin;   /* from the registry (borrowed, static) */
    void *conf;                       /* plugin->conf.size bytes, filled by its field table */
    struct mr_delivery_conf delivery; /* outputs only: the `delivery:` key */
};

struct mr_plugin_confs {
    struct mr_plugin_conf *items; /* in file order */
    size_t n;
};

/* ---- the top-level sections ---- */

enum mr_fsync_policy {
    MR_FSYNC_ALWAYS = 0,
    MR_FSYNC_INTERVAL = 1,
    MR_FSYNC_NEVER = 2,
};

/* journal.topics.NAME: per-topic overrides; unset retention values inherit the journal's. */
struct mr_journal_topic_conf {
    int64_t partitions;
    int64_t retention_age_ns;
    uint64_t retention_bytes;
    bool has_retention_age;
    bool has_retention_bytes;
    int priority; /* enum mr_topic_priority */
};

enum mr_topic_priority {
    MR_TOPIC_PRIORITY_NORMAL = 0,
    MR_TOPIC_PRIORITY_LOW = 1,
};

/* What the journal does when it reaches max_bytes (journal.h: enum mr_journal_overflow). */
enum mr_overflow_policy {
    MR_OVERFLOW_BLOCK = 0,
    MR_OVERFLOW_DROP_OLDEST = 1,
    MR_OVERFLOW_DOWNSAMPLE = 2,
};

struct mr_journal_conf {
    char *dir;
    int fsync; /* enum mr_fsync_policy */
    int64_t fsync_interval_ns;
    uint64_t segment_bytes;
    int64_t segment_age_ns;
    int64_t retention_age_ns;  /* 0: keep forever */
    uint64_t retention_bytes;  /* 0: unlimited */
    uint64_t max_bytes;        /* all topics together; 0: unlimited */
    int overflow;              /* enum mr_overflow_policy */
    struct mr_conf_map topics; /* of struct mr_journal_topic_conf */
};

struct mr_http_conf {
    char *listen; /* "HOST:PORT" */
};

struct mr_asset_conf {
    char *description;
    struct mr_strmap tags;
};

enum mr_pipeline_start {
    MR_PIPELINE_START_EARLIEST = 0,
    MR_PIPELINE_START_LATEST = 1,
};

struct mr_pipeline_conf {
    struct mr_strlist from;       /* topics or input names */
    struct mr_plugin_confs steps; /* operators, in order */
    struct mr_strlist to;         /* topics or output names */
    int64_t out_of_orderness_ns;  /* watermark = newest event time of a source minus this */
    int64_t idle_timeout_ns;      /* a source silent this long no longer holds time back */
    int64_t checkpoint_interval_ns;
    int start; /* enum mr_pipeline_start: where a pipeline without a checkpoint begins */
};

struct mr_config {
    char *source; /* file name as given (or the buffer's name) */
    struct mr_journal_conf journal;
    struct mr_plugin_confs inputs;
    struct mr_conf_map pipelines; /* of struct mr_pipeline_conf */
    struct mr_plugin_confs outputs;
    struct mr_http_conf http;
    struct mr_conf_map assets; /* of struct mr_asset_conf */
};

/* The field table of struct mr_config itself (journal, inputs, pipelines, ...), and of two of
 * its sections (struct mr_journal_conf, struct mr_pipeline_conf). */
extern const struct mr_section mr_config_root;
extern const struct mr_section mr_journal_section;
extern const struct mr_section mr_pipeline_section;

/* ---- loading ---- */

#define MR_CONFIG_MAX_ERRORS 50
#define MR_CONFIG_ERROR_LEN  320

/* Caller-owned list of problems found while loading; large (about 16 KiB): allocate it once. */
struct mr_config_errors {
    size_t n;     /* messages in msg[] */
    size_t total; /* problems found; more than n when the cap was reached */
    char msg[MR_CONFIG_MAX_ERRORS][MR_CONFIG_ERROR_LEN];
};

struct mr_config_opts {
    /* "key.path=value" overrides (value is YAML: `5`, `abc`, `[a, b]`), applied in order. */
    const char *const *sets;
    size_t nsets;
};

/* Load and validate a file. opts may be NULL; errs must not be NULL. Returns 0 and writes
 * *out (caller destroys), or MR_ECONFIG (every problem in errs), MR_ENOENT/MR_EACCES/MR_EIO
 * (unreadable file, also described in errs) or MR_ENOMEM. */
int mr_config_load(struct mr_config **out, const char *path, const struct mr_config_opts *opts,
                   struct mr_config_errors *errs);
/* Same, from len bytes of memory (need not be NUL-terminated); `name` stands for the file name
 * in messages. */
int mr_config_load_buffer(struct mr_config **out, const char *name, const char *data, size_t len,
                          const struct mr_config_opts *opts, struct mr_config_errors *errs);
void mr_config_destroy(struct mr_config *cfg);

/* Load a YAML map straight into one section's struct (dst, sec->size bytes, zeroed first):
 * for testing a plugin's table on its own. On failure dst is left zeroed. Free what it holds
 * with mr_section_free. */
int mr_section_load_buffer(const struct mr_section *sec, void *dst, const char *name,
                           const char *data, size_t len, const struct mr_config_opts *opts,
                           struct mr_config_errors *errs);
void mr_section_free(const struct mr_section *sec, void *conf);

/* ---- values, shared by the loader, the docs and plugins ---- */

/* "250ms", "1h30m", "1.5s", "10us", "7d", "0" -> ns. Units: ns us ms s m h d. A bare number
 * other than 0 is rejected (err hints at a unit); negative and overflowing values too. */
int mr_duration_parse(const char *s, int64_t *ns, struct mr_err *err);
/* "64MiB", "1GB", "512KiB", "4096" -> bytes. KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB
 * of 1000, B or no unit is bytes. */
int mr_size_parse(const char *s, uint64_t *bytes, struct mr_err *err);

/* Self-check of a section's table and everything below it (defaults and bounds parse, enum
 * defaults are allowed values, offsets fit). For tests and `config docs`. Returns 0 or
 * MR_EINVAL with err naming the field. */
int mr_section_validate(const struct mr_section *sec, const char *path, struct mr_err *err);

/* Same settings? Compares two structs of one section field by field (recursively, plugins by
 * type and settings), ignoring where they were declared. For reloads. */
bool mr_section_equal(const struct mr_section *sec, const void *a, const void *b);
bool mr_plugin_conf_equal(const struct mr_plugin_conf *a, const struct mr_plugin_conf *b);

/* Write the configuration reference (docs/CONFIG.md) as Markdown: every section and every
 * registered plugin. Deterministic. Checks every table first (mr_section_validate). Returns 0,
 * MR_EINVAL (a table is broken; err names the field) or MR_EIO. */
int mr_config_docs_write(FILE *out, struct mr_err *err);

#endif
