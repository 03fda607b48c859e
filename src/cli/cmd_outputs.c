/* `millrace outputs [CONFIG]`: what every output is doing (state, delivered, lag, backlog age,
 * rejected, last error), for the person at the console.
 *
 * It asks the running process (GET /api/v1/outputs at --http, else CONFIG's http.listen, else
 * the default 127.0.0.1:8080), so it shows exactly what the delivery threads know. When nothing
 * answers and CONFIG is given it reads the journal instead (read-only, safe next to a running
 * writer): each output's committed cursor against the end of its topics gives what waits for it;
 * state and errors are then unknown ("not running").
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/run_loop.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/config.h"
#include "millrace/engine.h"
#include "millrace/journal.h"
#include "millrace/plugin.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define MAX_TOPICS     32
#define MAX_BODY       (8u * 1024u * 1024u)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: millrace outputs [CONFIG] [--http HOST:PORT] [--set key.path=value ...]\n"
            "                        [--json]\n\n"
            "Shows what every output is doing: state (ok, retrying, circuit_open, stopped),\n"
            "records delivered, lag (records waiting in the journal), backlog age (how old the\n"
            "oldest waiting record is), records rejected into the dead-letter topic, last error.\n"
            "Asks the running millrace at --http, else CONFIG's http.listen, else " DEFAULT_LISTEN
            ".\nWhen nothing answers there and CONFIG is given, reads CONFIG's journal instead\n"
            "(what waits for each output; state \"not running\").\n"
            "--json prints the JSON document of GET /api/v1/outputs (docs/API.md).\n"
            "Exit 0 shown, 1 status cannot be read (or CONFIG is invalid), 2 usage.\n");
}

/* ---- formatting ---- */

/* "0s", "42s", "3m05s", "2h03m", "4d07h". */
static void fmt_age(char *buf, size_t cap, double s)
{
    int64_t t = (int64_t)(s + 0.5);
    if (t < 60) {
        snprintf(buf, cap, "%" PRId64 "s", t);
    } else if (t < 3600) {
        snprintf(buf, cap, "%" PRId64 "m%02" PRId64 "s", t / 60, t % 60);
    } else if (t < 86400) {
        snprintf(buf, cap, "%" PRId64 "h%02" PRId64 "m", t / 3600, t % 3600 / 60);
    } else {
        snprintf(buf, cap, "%" PRId64 "d%02" PRId64 "h", t / 86400, t % 86400 / 3600);
    }
}

static void print_header(void)
{
    printf("%-20s %-18s %-13s %12s %10s %9s %9s\n", "OUTPUT", "TYPE", "STATE", "DELIVERED", "LAG",
           "BACKLOG", "REJECTED");
}

static const char *jstr(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : dflt;
}

static int print_status(const char *body, bool as_json)
{
    json_error_t jerr;
    json_t *doc = json_loads(body, 0, &jerr);
    json_t *list = json_object_get(doc, "outputs");
    if (!json_is_array(list)) {
        fprintf(stderr, "millrace outputs: the answer is not an outputs document: %s\n",
                doc == NULL ? jerr.text : "no \"outputs\" list");
        json_decref(doc);
        return 1;
    }
    if (as_json) {
        printf("%s\n", body);
        json_decref(doc);
        return 0;
    }
    if (json_array_size(list) == 0) {
        printf("no outputs in the running configuration\n");
    } else {
        print_header();
    }
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        char age[24];
        fmt_age(age, sizeof(age), json_number_value(json_object_get(o, "backlog_age_seconds")));
        printf("%-20s %-18s %-13s %12" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT
               " %9s %9" JSON_INTEGER_FORMAT "\n",
               jstr(o, "name", "?"), jstr(o, "type", "?"), jstr(o, "state", "?"),
               json_integer_value(json_object_get(o, "delivered")),
               json_integer_value(json_object_get(o, "lag_records")), age,
               json_integer_value(json_object_get(o, "rejected")));
    }
    /* Errors below the table: they are long, and the table stays readable. */
    json_array_foreach(list, i, o)
    {
        json_t *e = json_object_get(o, "last_error");
        if (json_is_object(e)) {
            printf("%s: last error (%s): %s\n", jstr(o, "name", "?"), jstr(e, "at", "?"),
                   jstr(e, "message", "?"));
        }
    }
    json_decref(doc);
    return 0;
}

/* ---- asking the running process ---- */

struct body {
    char *data;
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t add = size * n;
    if (b->len + add + 1 > MAX_BODY) {
        return 0; /* aborts the transfer */
    }
    char *nd = mr_realloc(b->data, b->len + add + 1);
    if (nd == NULL) {
        return 0;
    }
    memcpy(nd + b->len, p, add);
    b->len += add;
    nd[b->len] = '\0';
    b->data = nd;
    return add;
}

/* The URL of the API at listen ("HOST:PORT"); a wildcard bind is asked on loopback. */
static void api_url(char *url, size_t cap, const char *listen)
{
    const char *colon = strrchr(listen, ':');
    int hlen = colon != NULL ? (int)(colon - listen) : (int)strlen(listen);
    const char *port = colon != NULL ? colon + 1 : "8080";
    if ((hlen == 7 && strncmp(listen, "0.0.0.0", 7) == 0) || hlen == 0) {
        snprintf(url, cap, "http://127.0.0.1:%s/api/v1/outputs", port);
    } else if (hlen == 4 && strncmp(listen, "[::]", 4) == 0) {
        snprintf(url, cap, "http://[::1]:%s/api/v1/outputs", port);
    } else {
        snprintf(url, cap, "http://%.*s:%s/api/v1/outputs", hlen, listen, port);
    }
}

/* 0 and the body; 1 nothing listens there (the caller may read the journal); -1 an answer
 * that is not the status (said on stderr). */
static int fetch(const char *url, struct body *b)
{
    CURL *c = curl_easy_init();
    if (c == NULL) {
        fprintf(stderr, "millrace outputs: cannot start libcurl\n");
        return -1;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* the API is local: never via a proxy */
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
        return 1;
    }
    if (rc != CURLE_OK) {
        fprintf(stderr, "millrace outputs: %s: %s\n", url,
                errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
        return -1;
    }
    if (status != 200) {
        fprintf(stderr,
                "millrace outputs: %s answered HTTP %ld (%s); is this a millrace with the "
                "outputs API?\n",
                url, status, b->data != NULL ? b->data : "");
        return -1;
    }
    return 0;
}

/* ---- reading the journal (nothing answers) ---- */

/* What waits for output `name` in topic t: records after its cursor and the record time of the
 * first of them (-1: none). */
static void topic_lag(struct mr_journal_topic *t, const char *consumer, int64_t *records,
                      int64_t *oldest_ms)
{
    for (uint32_t p = 0; p < mr_journal_topic_partitions(t); p++) {
        struct mr_journal_partition_stats st;
        int64_t pos = MR_JOURNAL_EARLIEST;
        if (mr_journal_partition_stats(t, p, &st) != 0) {
            continue;
        }
        if (mr_journal_cursor_get(t, consumer, p, &pos, NULL) != 0 || pos < st.earliest) {
            pos = st.earliest; /* never delivered, or deleted by retention before it was */
        }
        if (pos >= st.end) {
            continue;
        }
        *records += st.end - pos;
        struct mr_journal_reader *rd = NULL;
        struct mr_batch_info info;
        if (mr_journal_reader_create(t, p, pos, &rd) == 0 &&
            mr_journal_reader_next_batch(rd, &info) == 0 &&
            (*oldest_ms < 0 || info.base_timestamp < *oldest_ms)) {
            *oldest_ms = info.base_timestamp;
        }
        mr_journal_reader_destroy(rd);
    }
}

static int journal_status(const struct mr_config *cfg)
{
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    mr_journal_options_from_conf(&o, &cfg->journal);
    o.read_only = true;
    struct mr_journal *j = NULL;
    struct mr_journal_recovery rep;
    struct mr_err err;
    mr_err_clear(&err);
    if (mr_journal_open(&o, &j, &rep, &err) != 0) {
        fprintf(stderr, "millrace outputs: cannot read the journal: %s\n", err.msg);
        return 1;
    }
    print_header();
    int64_t now_ms = mr_clock_wall_ms();
    for (size_t i = 0; i < cfg->outputs.n; i++) {
        const struct mr_plugin_conf *pc = &cfg->outputs.items[i];
        const char *topics[MAX_TOPICS];
        size_t nt = mr_engine_output_topics(cfg, pc->name, topics, MAX_TOPICS);
        char consumer[300];
        snprintf(consumer, sizeof(consumer), "output.%s", pc->name);
        int64_t lag = 0, oldest_ms = -1;
        for (size_t k = 0; k < nt; k++) {
            struct mr_journal_topic *t = mr_journal_topic_find(j, topics[k]);
            if (t != NULL) {
                topic_lag(t, consumer, &lag, &oldest_ms);
            }
        }
        char age[24];
        fmt_age(age, sizeof(age),
                lag > 0 && oldest_ms >= 0 && now_ms > oldest_ms ? (double)(now_ms - oldest_ms) / 1e3
                                                                : 0);
        printf("%-20s %-18s %-13s %12s %10" PRId64 " %9s %9s\n", pc->name, pc->plugin->name,
               "not running", "-", lag, age, "-");
    }
    mr_journal_close(j);
    return 0;
}

/* ---- the command ---- */

int mr_cli_outputs(int argc, char **argv)
{
    const char **sets = mr_calloc((size_t)argc + 1, sizeof(*sets));
    if (sets == NULL) {
        fprintf(stderr, "millrace outputs: out of memory\n");
        return 1;
    }
    size_t nsets = 0;
    const char *path = NULL, *listen = NULL;
    bool as_json = false;
    int code = 2;
    struct mr_config *cfg = NULL;
    struct body b = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            sets[nsets++] = argv[++i];
        } else if (strcmp(argv[i], "--http") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            as_json = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            code = 0;
            goto done;
        } else if (argv[i][0] != '-' && path == NULL) {
            path = argv[i];
        } else {
            usage(stderr);
            goto done;
        }
    }
    code = 1;
    struct mr_run_options ro = {.path = path, .sets = sets, .nsets = nsets};
    if (path != NULL && mr_run_load_config(&ro, &cfg) != 0) {
        goto done;
    }
    if (listen == NULL) {
        listen = cfg != NULL && cfg->http.listen != NULL ? cfg->http.listen : DEFAULT_LISTEN;
    }
    char url[400];
    api_url(url, sizeof(url), listen);
    int rc = fetch(url, &b);
    if (rc == 0) {
        code = print_status(b.data != NULL ? b.data : "", as_json);
    } else if (rc > 0 && cfg != NULL && !as_json) {
        printf("no millrace answers at %s; from the journal in %s:\n", url, cfg->journal.dir);
        code = journal_status(cfg);
    } else if (rc > 0) {
        fprintf(stderr,
                "millrace outputs: no millrace answers at %s (not running, or another "
                "http.listen: give --http, or CONFIG to read its journal)\n",
                url);
    }
done:
    mr_free(b.data);
    mr_config_destroy(cfg);
    mr_free(sets);
    return code;
}
