/* GET /api/v1/outputs: what every output is doing (docs/API.md), the JSON behind
 * `millrace outputs`. Rendered on the loop thread from mr_engine_outputs. */
#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "millrace/alloc.h"
#include "millrace/api.h"
#include "millrace/engine.h"

/* RFC 3339 UTC with milliseconds, or JSON null for "never" (ms < 0). */
static json_t *time_json(int64_t ms)
{
    if (ms < 0) {
        return json_null();
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40];
    if (gmtime_r(&secs, &tm) == NULL) {
        return json_null();
    }
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)(ms % 1000));
    return json_string(buf);
}

static json_t *output_json(const struct mr_output_status *st)
{
    json_t *err = st->last_error[0] == '\0' ? json_null()
                                            : json_pack("{s:s, s:o}", "message", st->last_error,
                                                        "at", time_json(st->last_error_ms));
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:o, s:o, s:s?}",
                     "name", st->name, "type", st->type, "state", st->state, "delivered",
                     (json_int_t)st->delivered, "retries", (json_int_t)st->retries, "rejected",
                     (json_int_t)st->rejected, "skipped", (json_int_t)st->skipped, "deleted_unread",
                     (json_int_t)st->deleted_unread, "lag_records", (json_int_t)st->lag_records,
                     "backlog_age_seconds", st->backlog_age_s, "pending_bytes", st->pending_bytes,
                     "last_delivery", time_json(st->last_delivery_ms), "last_error", err,
                     "dead_letter_topic", st->dead_letter);
}

char *mr_api_outputs_json(void *engine)
{
    struct mr_engine *e = engine;
    size_t n = mr_engine_outputs(e, NULL, 0);
    struct mr_output_status *st = mr_calloc(n + 1, sizeof(*st));
    json_t *list = json_array();
    if (st == NULL || list == NULL) {
        mr_free(st);
        json_decref(list);
        return NULL;
    }
    n = mr_engine_outputs(e, st, n);
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(list, output_json(&st[i])) != 0) {
            break;
        }
    }
    mr_free(st);
    json_t *doc = json_pack("{s:o}", "outputs", list);
    char *out = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return out;
}
