/* Internals of the `http_listener` input shared by the plugin (http_listener.c) and its body
 * decoder (http_listener_decode.c), exposed for white-box unit tests: the decoder turns a
 * request body into records without any socket. */
#ifndef MILLRACE_INPUTS_HTTP_LISTENER_H
#define MILLRACE_INPUTS_HTTP_LISTENER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inputs/lineproto.h"
#include "millrace/config.h"
#include "millrace/names.h"
#include "millrace/record.h"

/* Bad lines (or JSON items) named in one 400 answer; the rest are only counted. */
#define HL_MAX_REPORTED 5
#define HL_MSG_LEN      240

struct hl_conf {
    char *service_address;
    struct mr_strlist paths; /* JSON ingest paths */
    uint64_t max_body_size;
    int64_t max_records;
    int64_t read_timeout_ns;
    int64_t max_connections;
    char *basic_username;
    char *basic_password;
    char *token;
    char *asset;
    struct mr_strlist asset_tags;
    char *database_tag;
};

/* What was wrong with a body: the first HL_MAX_REPORTED problems, each naming its line (line
 * protocol) or item (JSON), and how many lines or items were bad in all. */
struct hl_report {
    size_t nbad;
    size_t nshown;
    char msg[HL_MAX_REPORTED][HL_MSG_LEN];
};

/* What a line protocol series (measurement and tags, as sent) resolves to, cached so a repeated
 * series costs one hash and one compare instead of building its asset path and interning its
 * names again. Direct-mapped, fixed size (memory bounded); a series key longer than
 * HL_SERIES_KEY_MAX is resolved every time. */
#define HL_SERIES_SLOTS   1024
#define HL_SERIES_KEY_MAX 192
#define HL_SIGNAL_SLOTS   1024
struct hl_series {
    uint64_t hash;
    uint32_t key_len; /* 0: empty slot */
    mr_name_id asset;
    uint8_t ntags;                         /* the point's tags kept as record tags, in order */
    uint8_t tag_index[MR_RECORD_MAX_TAGS]; /* ... their index in the point's tags */
    mr_name_id tag_key[MR_RECORD_MAX_TAGS];
    char key[HL_SERIES_KEY_MAX];
};
struct hl_signal {
    uint64_t hash; /* of measurement and field key */
    mr_name_id id; /* "measurement.field", 0: empty slot */
};

/* Turns one request body at a time into records (all of them, or none). Owns the batch. */
struct hl_decoder {
    const struct hl_conf *conf;
    struct mr_names *names;
    struct mr_names_memo memo;
    mr_name_id database_tag; /* conf->database_tag, 0 when unset */
    struct mr_record *recs;
    size_t nrecs;
    size_t cap;  /* grows by doubling up to max_records */
    char *arena; /* unescaped line protocol text; grows to the body size */
    size_t arena_used;
    size_t arena_cap;
    struct mr_lp_point *lp;
    struct hl_series *series;  /* HL_SERIES_SLOTS: series bytes -> asset id and tag keys */
    struct hl_signal *signals; /* HL_SIGNAL_SLOTS: (measurement, field) -> signal id */
    json_t *doc;               /* JSON body: records borrow its strings until reset */
};

int hl_decoder_init(struct hl_decoder *d, const struct hl_conf *conf, struct mr_names *names,
                    struct mr_err *err);
void hl_decoder_fini(struct hl_decoder *d);
/* Forget the last body's records (and what they borrowed). */
void hl_decoder_reset(struct hl_decoder *d);

/* Decode a line protocol body (InfluxDB /write) into d->recs[0..d->nrecs): one record per field,
 * signal = measurement.field, asset = [asset/]values of asset_tags, the other tags kept,
 * timestamps in `prec`, lines without one stamped now_ns. `database` (may be NULL) is the
 * query's db or bucket, kept as tag database_tag when that is set.
 * Returns 0; MR_EPARSE when a line is bad (rep names up to HL_MAX_REPORTED of them and counts
 * all; no records); MR_ETOOBIG when the body holds more than max_records records (rep says);
 * or another MR_E* code for a problem of ours (names table full: rep says), never the client's.
 * The body must stay valid while the records are used (they borrow from it). */
int hl_decode_lineproto(struct hl_decoder *d, const char *body, size_t len,
                        enum mr_lp_precision prec, const char *database, int64_t now_ns,
                        struct hl_report *rep);

/* Decode a JSON body: one object or an array of objects {"asset", "signal", "value", "time",
 * "quality", "tags"} into d->recs. Same returns as hl_decode_lineproto (problems name the item
 * by its 1-based position). */
int hl_decode_json(struct hl_decoder *d, const char *body, size_t len, int64_t now_ns,
                   struct hl_report *rep);

/* The port an http_listener instance (its plugin context) listens on, -1 when it does not:
 * tests listen on port 0 and ask. */
int mr_http_listener_port(const void *ctx);

#endif
