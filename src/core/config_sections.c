/* The top-level sections of a millrace config file: journal, inputs, pipelines, outputs, http,
 * assets. Plugins declare their own tables next to their code (src/inputs, src/outputs, ...);
 * this file only declares what belongs to millrace itself. */
#include <stdlib.h>
#include <string.h>

#include "core/config_internal.h"

/* ---- journal ---- */

static const char *const fsync_values[] = {"always", "interval", "never", NULL};

static const char *const topic_priority_values[] = {"normal", "low", NULL};

static const struct mr_field journal_topic_fields[] = {
    {.name = "partitions",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mr_journal_topic_conf, partitions),
     .def = "1",
     .min = "1",
     .max = "1024",
     .help = "Number of partitions; records of one asset always go to the same partition."},
    {.name = "retention_age",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_journal_topic_conf, retention_age_ns),
     .present = MR_FIELD_PRESENT(struct mr_journal_topic_conf, has_retention_age),
     .help = "Delete segments older than this for this topic; 0 keeps them forever. "
             "Default: journal.retention_age."},
    {.name = "retention_bytes",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct mr_journal_topic_conf, retention_bytes),
     .present = MR_FIELD_PRESENT(struct mr_journal_topic_conf, has_retention_bytes),
     .help = "Delete the oldest segments when a partition is larger than this; 0 is unlimited. "
             "Default: journal.retention_bytes."},
    {.name = "priority",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct mr_journal_topic_conf, priority),
     .def = "normal",
     .values = topic_priority_values,
     .help = "'low' marks bulk data (raw samples, fast analog tags) that journal.overflow: "
             "downsample may give up first to keep alarms and state events."},
    {0},
};

static const struct mr_section journal_topic_section = {
    .fields = journal_topic_fields,
    .size = sizeof(struct mr_journal_topic_conf),
};

/* Kafka's rule for topic names, so mirroring to Kafka never has to rename. */
static bool topic_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
        return false;
    }
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static void journal_check(void *conf, struct mr_config_check *chk)
{
    struct mr_journal_conf *j = conf;
    for (size_t i = 0; i < j->topics.n; i++) {
        struct mr_journal_topic_conf *t = j->topics.items[i].conf;
        if (!topic_name_ok(j->topics.items[i].name)) {
            char field[CFG_PATH_LEN];
            snprintf(field, sizeof(field), "topics.%s", j->topics.items[i].name);
            mr_config_check_fail(chk, field,
                                 "a topic name is 1 to 249 letters, digits, '.', '_' "
                                 "or '-'");
        }
        if (!t->has_retention_age) {
            t->retention_age_ns = j->retention_age_ns;
        }
        if (!t->has_retention_bytes) {
            t->retention_bytes = j->retention_bytes;
        }
    }
}

static const char *const overflow_values[] = {"block", "drop_oldest", "downsample", NULL};

static const struct mr_field journal_fields[] = {
    {.name = "dir",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_journal_conf, dir),
     .def = "./millrace-data",
     .help = "Directory holding the journal's segments, indexes and consumer cursors."},
    {.name = "fsync",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct mr_journal_conf, fsync),
     .def = "always",
     .values = fsync_values,
     .help = "When appended records reach the disk before they are acknowledged: 'always' (no "
             "acknowledged record is ever lost, slowest), 'interval' (at most fsync_interval of "
             "records lost on power failure), 'never' (the OS decides; a crash of the machine "
             "can lose recent records)."},
    {.name = "fsync_interval",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_journal_conf, fsync_interval_ns),
     .def = "10ms",
     .min = "1ms",
     .max = "1m",
     .help = "With fsync: interval, how often the journal is flushed to disk."},
    {.name = "segment_bytes",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct mr_journal_conf, segment_bytes),
     .def = "64MiB",
     .min = "4KiB",
     .max = "4GiB",
     .help = "A partition's active segment is closed and a new one started at this size."},
    {.name = "segment_age",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_journal_conf, segment_age_ns),
     .def = "1h",
     .min = "1s",
     .help = "A partition's active segment is closed after this long, so retention can delete "
             "old data from quiet topics."},
    {.name = "retention_age",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_journal_conf, retention_age_ns),
     .def = "7d",
     .help = "Closed segments whose newest record is older than this are deleted; 0 keeps them "
             "forever."},
    {.name = "retention_bytes",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct mr_journal_conf, retention_bytes),
     .def = "0",
     .help = "Oldest closed segments are deleted while a partition is larger than this; 0 is "
             "unlimited."},
    {.name = "max_bytes",
     .type = MR_FIELD_SIZE,
     .offset = offsetof(struct mr_journal_conf, max_bytes),
     .def = "0",
     .help = "Disk the whole journal may use (every topic together); 0 is unlimited. Over it, "
             "segments every consumer has passed are deleted first, then `overflow` decides."},
    {.name = "overflow",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct mr_journal_conf, overflow),
     .def = "block",
     .values = overflow_values,
     .help = "At max_bytes, after deleting what every consumer has read: 'block' pauses the "
             "inputs (their sources keep the data: broker queues, PLC buffers) until space is "
             "freed; 'drop_oldest' deletes the oldest segments of any topic, read or not "
             "(counted); 'downsample' deletes the oldest segments of topics with priority: low "
             "first (bulk data), keeping alarms and state events, and blocks when only those "
             "are left."},
    {.name = "topics",
     .type = MR_FIELD_SECTION_MAP,
     .offset = offsetof(struct mr_journal_conf, topics),
     .section = &journal_topic_section,
     .help = "Per-topic settings, by topic name. Topics not listed use the defaults above."},
    {0},
};

const struct mr_section mr_journal_section = {
    .fields = journal_fields,
    .size = sizeof(struct mr_journal_conf),
    .check = journal_check,
};

/* ---- pipelines ---- */

static const char *const pipeline_start_values[] = {"earliest", "latest", NULL};

static const struct mr_field pipeline_fields[] = {
    {.name = "from",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct mr_pipeline_conf, from),
     .min = "1",
     .flags = MR_FIELD_REQUIRED,
     .help = "Where records come from: input names or journal topics."},
    {.name = "steps",
     .type = MR_FIELD_PLUGIN_LIST,
     .offset = offsetof(struct mr_pipeline_conf, steps),
     .plugin_kind = MR_PLUGIN_OPERATOR,
     .help = "Operators applied in order, each `{type: OPERATOR, ...settings}`."},
    {.name = "to",
     .type = MR_FIELD_STRING_LIST,
     .offset = offsetof(struct mr_pipeline_conf, to),
     .min = "1",
     .flags = MR_FIELD_REQUIRED,
     .help = "Where results go: output names or journal topics."},
    {.name = "out_of_orderness",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_pipeline_conf, out_of_orderness_ns),
     .def = "2s",
     .max = "1d",
     .help = "How far out of order records of one source (asset) may arrive: a source's "
             "watermark is its newest event time minus this, and windows close when the "
             "watermark passes their end."},
    {.name = "idle_timeout",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_pipeline_conf, idle_timeout_ns),
     .def = "30s",
     .min = "10ms",
     .max = "1d",
     .help = "A source silent for this long (wall-clock time) stops holding back the "
             "pipeline-wide watermark, and its own watermark moves on to its newest event time "
             "plus this, so its last windows close. A backlog replayed later is computed "
             "normally except for records within this of its last event (late: use "
             "allowed_lateness >= idle_timeout with late: update to correct those too)."},
    {.name = "checkpoint_interval",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_pipeline_conf, checkpoint_interval_ns),
     .def = "1s",
     .min = "10ms",
     .max = "1h",
     .help = "How often operator state, input offsets and output positions are saved "
             "together; after a crash the pipeline resumes from the last checkpoint and "
             "replays at most this much, without duplicating results."},
    {.name = "start",
     .type = MR_FIELD_ENUM,
     .offset = offsetof(struct mr_pipeline_conf, start),
     .def = "earliest",
     .values = pipeline_start_values,
     .help = "Where a pipeline with no checkpoint starts reading its topics: 'earliest' "
             "(everything kept) or 'latest' (only new records)."},
    {0},
};

const struct mr_section mr_pipeline_section = {
    .fields = pipeline_fields,
    .size = sizeof(struct mr_pipeline_conf),
};

/* ---- http ---- */

static void http_check(void *conf, struct mr_config_check *chk)
{
    const struct mr_http_conf *h = conf;
    const char *colon = strrchr(h->listen, ':');
    char *end = NULL;
    long port = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || colon == h->listen || end == colon + 1 || *end != '\0' || port < 0 ||
        port > 65535) {
        mr_config_check_fail(chk, "listen",
                             "expected HOST:PORT with a port from 0 to 65535, "
                             "got '%.60s'",
                             h->listen);
    }
}

static void delivery_check(void *conf, struct mr_config_check *chk)
{
    const struct mr_delivery_conf *d = conf;
    if (d->retry_max_ns < d->retry_min_ns) {
        mr_config_check_fail(chk, "retry_max", "retry_max must not be shorter than retry_min");
    }
}

static const struct mr_field delivery_fields[] = {
    {.name = "retry_min",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_delivery_conf, retry_min_ns),
     .def = "100ms",
     .min = "10ms",
     .max = "1m",
     .help = "Wait after the destination first answers 'try again' (down, timeout, overloaded). "
             "Each further failure doubles the wait, with random jitter of up to a quarter so "
             "that many outputs do not retry in step."},
    {.name = "retry_max",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_delivery_conf, retry_max_ns),
     .def = "10s",
     .min = "10ms",
     .max = "1h",
     .help = "Longest wait between two retries."},
    {.name = "circuit_failures",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mr_delivery_conf, circuit_failures),
     .def = "10",
     .min = "1",
     .max = "1000000",
     .help = "Consecutive failed attempts after which the circuit opens: the output stops "
             "trying for `circuit_open`, then sends one probe; the state is "
             "millrace_output_state (0 ok, 1 retrying, 2 circuit open, 3 stopped)."},
    {.name = "circuit_open",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_delivery_conf, circuit_open_ns),
     .def = "30s",
     .min = "100ms",
     .max = "1h",
     .help = "How long an open circuit rests before the next probe. The journal keeps "
             "everything meanwhile (within its retention and journal.max_bytes)."},
    {.name = "dead_letter_topic",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_delivery_conf, dead_letter_topic),
     .help = "Journal topic for records the destination refuses for good (a malformed point, a "
             "constraint violation), each with the reason in its `mr.reject` header; default "
             "`deadletter.NAME`. Read it with `millrace journal read`, fix, replay."},
    {.name = "batch_size",
     .type = MR_FIELD_INT,
     .offset = offsetof(struct mr_delivery_conf, batch_size),
     .min = "1",
     .max = "100000",
     .help = "Most records handed to the destination in one write (one HTTP request, one "
             "transaction). Records of several journal batches are gathered up to this many; "
             "bigger batches mean fewer round trips and commits when catching up, and more "
             "memory (about 1.5 KB a record: the write in flight and the next one). Default: "
             "5000; 20000 for postgresql, whose every write is a commit that waits for its WAL "
             "flush."},
    {.name = "batch_wait",
     .type = MR_FIELD_DURATION,
     .offset = offsetof(struct mr_delivery_conf, batch_wait_ns),
     .def = "0s",
     .min = "0s",
     .max = "10s",
     .help = "How long to wait for more records when the journal holds fewer than batch_size: "
             "0 sends what is there at once (lowest latency); e.g. 1s makes fewer, fuller "
             "writes to a destination that prefers them, each record up to that much later."},
    {0},
};

const struct mr_section mr_delivery_section = {
    .fields = delivery_fields,
    .size = sizeof(struct mr_delivery_conf),
    .check = delivery_check,
};

static const struct mr_field http_fields[] = {
    {.name = "listen",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_http_conf, listen),
     .def = "127.0.0.1:8080",
     .help = "Address of the dashboard, HTTP API and /metrics, as HOST:PORT. Use 0.0.0.0:8080 to "
             "accept connections from other machines."},
    {0},
};

static const struct mr_section http_section = {
    .fields = http_fields,
    .size = sizeof(struct mr_http_conf),
    .check = http_check,
};

/* ---- assets ---- */

static const struct mr_field asset_fields[] = {
    {.name = "description",
     .type = MR_FIELD_STRING,
     .offset = offsetof(struct mr_asset_conf, description),
     .help = "What the asset is, for people reading dashboards and alerts."},
    {.name = "tags",
     .type = MR_FIELD_STRING_MAP,
     .offset = offsetof(struct mr_asset_conf, tags),
     .help = "Free key: value pairs attached to the asset (e.g. vendor, model, cost_center)."},
    {0},
};

static const struct mr_section asset_section = {
    .fields = asset_fields,
    .size = sizeof(struct mr_asset_conf),
};

/* ---- the file ---- */

static const struct mr_plugin_conf *plugin_conf_named(const struct mr_plugin_confs *c,
                                                      const char *name)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->items[i].name, name) == 0) {
            return &c->items[i];
        }
    }
    return NULL;
}

/* A pipeline reads inputs or topics and writes topics or outputs; catch the mix-ups here, with
 * the position of the list, rather than at run time. */
static void pipeline_ends_check(const struct mr_config *cfg, const char *name,
                                const struct mr_pipeline_conf *pc, struct mr_config_check *chk)
{
    char field[CFG_PATH_LEN];
    for (size_t k = 0; k < pc->from.n; k++) {
        const char *f = pc->from.items[k];
        snprintf(field, sizeof(field), "pipelines.%s.from", name);
        if (plugin_conf_named(&cfg->outputs, f) != NULL) {
            mr_config_check_fail(chk, field, "'%s' is an output; a pipeline reads inputs or topics",
                                 f);
        } else if (plugin_conf_named(&cfg->inputs, f) == NULL && !topic_name_ok(f)) {
            mr_config_check_fail(chk, field,
                                 "'%s' is neither an input nor a valid topic name (letters, "
                                 "digits, '.', '_', '-')",
                                 f);
        }
        for (size_t t = 0; t < pc->to.n; t++) {
            if (strcmp(pc->to.items[t], f) == 0) {
                mr_config_check_fail(chk, field, "'%s' is both read and written: a loop", f);
            }
        }
    }
    for (size_t k = 0; k < pc->to.n; k++) {
        const char *t = pc->to.items[k];
        snprintf(field, sizeof(field), "pipelines.%s.to", name);
        if (plugin_conf_named(&cfg->inputs, t) != NULL) {
            mr_config_check_fail(chk, field,
                                 "'%s' is an input; a pipeline writes to topics or outputs", t);
        } else if (plugin_conf_named(&cfg->outputs, t) == NULL && !topic_name_ok(t)) {
            mr_config_check_fail(chk, field,
                                 "'%s' is neither an output nor a valid topic name (letters, "
                                 "digits, '.', '_', '-')",
                                 t);
        }
    }
}

static void root_check(void *conf, struct mr_config_check *chk)
{
    const struct mr_config *cfg = conf;
    for (size_t i = 0; i < cfg->inputs.n; i++) {
        if (!topic_name_ok(cfg->inputs.items[i].name)) {
            char field[CFG_PATH_LEN];
            snprintf(field, sizeof(field), "inputs.%s", cfg->inputs.items[i].name);
            mr_config_check_fail(chk, field,
                                 "an input's records are kept in the journal topic of the same "
                                 "name, so it may only use letters, digits, '.', '_' and '-'");
        }
    }
    for (size_t i = 0; i < cfg->pipelines.n; i++) {
        pipeline_ends_check(cfg, cfg->pipelines.items[i].name, cfg->pipelines.items[i].conf, chk);
    }
    for (size_t i = 0; i < cfg->pipelines.n; i++) {
        const char *name = cfg->pipelines.items[i].name;
        if (name[0] == '\0' ||
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                strlen(name)) {
            char field[CFG_PATH_LEN];
            snprintf(field, sizeof(field), "pipelines.%s", name);
            mr_config_check_fail(chk, field, "a name may only use letters, digits, '_' and '-'");
        }
    }
}

static const struct mr_field root_fields[] = {
    {.name = "journal",
     .type = MR_FIELD_SECTION,
     .offset = offsetof(struct mr_config, journal),
     .section = &mr_journal_section,
     .help = "The durable journal: where records are kept, how safely, and for how long."},
    {.name = "inputs",
     .type = MR_FIELD_PLUGIN_MAP,
     .offset = offsetof(struct mr_config, inputs),
     .plugin_kind = MR_PLUGIN_INPUT,
     .help = "Where data comes from, by name: `NAME: {type: PLUGIN, ...settings}`."},
    {.name = "pipelines",
     .type = MR_FIELD_SECTION_MAP,
     .offset = offsetof(struct mr_config, pipelines),
     .section = &mr_pipeline_section,
     .help = "Processing, by name: records flow from inputs or topics through steps to outputs "
             "or topics."},
    {.name = "outputs",
     .type = MR_FIELD_PLUGIN_MAP,
     .offset = offsetof(struct mr_config, outputs),
     .plugin_kind = MR_PLUGIN_OUTPUT,
     .help = "Where results go, by name: `NAME: {type: PLUGIN, ...settings}`."},
    {.name = "http",
     .type = MR_FIELD_SECTION,
     .offset = offsetof(struct mr_config, http),
     .section = &http_section,
     .help = "The built-in web server."},
    {.name = "assets",
     .type = MR_FIELD_SECTION_MAP,
     .offset = offsetof(struct mr_config, assets),
     .section = &asset_section,
     .help = "Equipment by ISA-95 path (site/area/line/machine), with a description and tags."},
    {0},
};

const struct mr_section mr_config_root = {
    .fields = root_fields,
    .size = sizeof(struct mr_config),
    .check = root_check,
};
