/* `millrace journal`: append to, read, list and verify a journal directory.
 *
 *   millrace journal append --dir DIR --topic T [--partitions N] [--key K] [--fsync POLICY]
 *   millrace journal read   --dir DIR --topic T [--partition P] [--from WHERE] [--follow]
 *                           [--format json|value]
 *   millrace journal topics --dir DIR
 *   millrace journal verify --dir DIR
 *
 * append prints `acked <partition> <offset>` for every record once it is durable (per the fsync
 * policy), so a test can kill -9 the process at any moment and know what was acknowledged. The
 * k-th ack is the k-th line: after a failed write (disk full) nothing more is acked and the
 * appender exits 1.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/journal.h"
#include "millrace/names.h"
#include "millrace/record.h"

#define EXIT_USAGE         2
#define APPEND_MAX_RECORDS 1000
#define STDIN_CHUNK        (256 * 1024)

static int usage_error(const char *sub, const char *fmt, const char *arg)
{
    fprintf(stderr, "millrace journal %s: ", sub);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'millrace journal %s --help'.\n", sub);
    return EXIT_USAGE;
}

/* Name the offending option for getopt's '?' and ':' results. */
static int bad_option(const char *sub, char **argv, int c)
{
    const char *arg = argv[optind - 1];
    if (c == ':') {
        return usage_error(sub, "option '%s' needs a value", arg);
    }
    return usage_error(sub, "unknown option '%s'", arg);
}

static bool parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

static struct mr_journal *open_journal(const char *dir, bool ro, enum mr_journal_fsync f)
{
    struct mr_journal_options o;
    mr_journal_options_init(&o);
    o.dir = dir;
    o.read_only = ro;
    o.fsync = f;
    struct mr_journal *j = NULL;
    struct mr_journal_recovery rep;
    struct mr_err err;
    mr_err_clear(&err);
    if (mr_journal_open(&o, &j, &rep, &err) != 0) {
        fprintf(stderr, "millrace journal: %s\n", err.msg);
        return NULL;
    }
    /* Read-only openers may see a batch a writer is still writing: only the writer reports. */
    for (uint32_t i = 0; !ro && i < rep.event_count; i++) {
        const struct mr_journal_recovery_event *e = &rep.events[i];
        fprintf(stderr,
                "millrace journal: recovery: %s/%u segment %" PRId64 " position %" PRIu64
                ": dropped %" PRIu64 " bytes at offset %" PRId64 ": %s\n",
                e->topic, e->partition, e->segment_base, e->position, e->bytes_dropped, e->offset,
                e->reason);
    }
    return j;
}

/* ---- append */

struct appender {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    long outstanding;
    int failed;
    char *out; /* ack lines, used on the writer thread only */
    size_t out_cap;
};

static void append_ack(void *arg, int status, uint32_t partition, int64_t base, uint32_t count)
{
    struct appender *a = arg;
    pthread_mutex_lock(&a->lock);
    bool after_failure = a->failed != 0;
    if (status != 0) {
        a->failed = 1;
    }
    pthread_mutex_unlock(&a->lock);
    if (status != 0) {
        fprintf(stderr, "millrace journal append: %u records not stored: %s\n", count,
                mr_strerror(status));
    } else if (after_failure) {
        /* The journal may store a batch that was already queued behind a failed one. Its lines
         * came after lines that were lost, so acking it would break "the k-th ack is the k-th
         * line": say where it went instead, and leave it unacknowledged. */
        fprintf(stderr,
                "millrace journal append: %u later records were stored at partition %u offsets "
                "%" PRId64 "..%" PRId64 " after the failure; not acknowledged\n",
                count, partition, base, base + count - 1);
    } else {
        size_t n = 0;
        for (uint32_t i = 0; i < count; i++) {
            int w =
                snprintf(a->out + n, a->out_cap - n, "acked %u %" PRId64 "\n", partition, base + i);
            n += w > 0 ? (size_t)w : 0;
        }
        fwrite(a->out, 1, n, stdout);
        fflush(stdout);
    }
    pthread_mutex_lock(&a->lock);
    a->outstanding--;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->lock);
}

struct append_args {
    const char *key;
    uint32_t nparts;
    uint32_t rr; /* round robin partition for keyless batches */
    uint32_t key_part;
    struct mr_batch_builder b;
    struct appender *a;
    struct mr_journal_topic *t;
};

static int flush_batch(struct append_args *x)
{
    if (mr_batch_builder_count(&x->b) == 0) {
        return 0;
    }
    const uint8_t *data;
    size_t len;
    mr_batch_builder_finish(&x->b, &data, &len);
    uint32_t part = x->key != NULL ? x->key_part : x->rr++ % x->nparts;
    pthread_mutex_lock(&x->a->lock);
    /* A failed write (disk full, I/O error) stops the appender with exit 1 instead of
     * offering more lines to a journal that cannot take them; what was acked stays acked. */
    bool failed = x->a->failed != 0;
    if (!failed) {
        x->a->outstanding++;
    }
    pthread_mutex_unlock(&x->a->lock);
    if (failed) {
        mr_batch_builder_reset(&x->b);
        return 1;
    }
    int rc = mr_journal_append(x->t, part, x->b.buf, len, 0, append_ack, x->a);
    mr_batch_builder_reset(&x->b);
    if (rc != 0) {
        pthread_mutex_lock(&x->a->lock);
        x->a->outstanding--;
        pthread_mutex_unlock(&x->a->lock);
        fprintf(stderr, "millrace journal append: %s\n", mr_strerror(rc));
        return 1;
    }
    return 0;
}

static int add_line(struct append_args *x, const char *line, size_t len)
{
    int32_t klen = x->key != NULL ? (int32_t)strlen(x->key) : -1;
    if (len > INT32_MAX) {
        fprintf(stderr, "millrace journal append: line too long\n");
        return 1;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = mr_batch_builder_add(&x->b, mr_clock_wall_ms(), x->key, klen, line, (int32_t)len,
                                      NULL, 0);
        if (rc == 0) {
            return mr_batch_builder_count(&x->b) >= APPEND_MAX_RECORDS ? flush_batch(x) : 0;
        }
        if (rc != MR_ETOOBIG || mr_batch_builder_count(&x->b) == 0) {
            fprintf(stderr, "millrace journal append: a %zu-byte line does not fit in a batch\n",
                    len);
            return 1;
        }
        if (flush_batch(x) != 0) {
            return 1;
        }
    }
    return 1;
}

static int append_stdin(struct append_args *x)
{
    char *buf = mr_malloc(STDIN_CHUNK);
    size_t cap = STDIN_CHUNK, have = 0;
    int rc = buf == NULL ? 1 : 0;
    bool eof = false;
    while (rc == 0 && !eof) {
        if (have == cap) { /* one line longer than the buffer: grow up to the batch cap */
            char *nb = cap < MR_BATCH_DEFAULT_CAP * 2 ? mr_realloc(buf, cap * 2) : NULL;
            if (nb == NULL) {
                fprintf(stderr, "millrace journal append: line too long\n");
                rc = 1;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(STDIN_FILENO, buf + have, cap - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            fprintf(stderr, "millrace journal append: reading stdin: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        eof = n == 0;
        have += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < have && rc == 0; i++) {
            if (buf[i] == '\n') {
                rc = add_line(x, buf + start, i - start);
                start = i + 1;
            }
        }
        if (eof && start < have && rc == 0) {
            rc = add_line(x, buf + start, have - start); /* last line without a newline */
            start = have;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
        if (rc == 0) {
            rc = flush_batch(x); /* what is available now goes out without waiting */
        }
    }
    mr_free(buf);
    return rc;
}

static void append_help(FILE *out)
{
    fprintf(out, "usage: millrace journal append --dir DIR --topic T [--partitions N] [--key K]\n"
                 "                               [--fsync always|interval|never]\n"
                 "Append one record per stdin line (value = the line, timestamp = now) and\n"
                 "print 'acked <partition> <offset>' for each record once it is durable.\n"
                 "Keyed records go to the partition murmur2(key) picks (as Kafka does);\n"
                 "keyless batches go round robin. Creates the topic (default 1 partition).\n");
}

static int cmd_append(int argc, char **argv)
{
    static const struct option longopts[] = {{"dir", required_argument, NULL, 'd'},
                                             {"topic", required_argument, NULL, 't'},
                                             {"partitions", required_argument, NULL, 'p'},
                                             {"key", required_argument, NULL, 'k'},
                                             {"fsync", required_argument, NULL, 'f'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *dir = NULL, *topic = NULL, *key = NULL;
    uint32_t nparts = 0;
    enum mr_journal_fsync fs = MR_JOURNAL_FSYNC_ALWAYS;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'p':
            if (!parse_u32(optarg, 10000, &nparts) || nparts == 0) {
                return usage_error("append", "--partitions must be 1..10000, not '%s'", optarg);
            }
            break;
        case 'f':
            if (mr_journal_fsync_parse(optarg, &fs) != 0) {
                return usage_error("append", "--fsync must be always, interval or never, not '%s'",
                                   optarg);
            }
            break;
        case 'h':
            append_help(stdout);
            return 0;
        default:
            return bad_option("append", argv, c);
        }
    }
    if (optind < argc) {
        return usage_error("append", "unexpected argument '%s'", argv[optind]);
    }
    if (dir == NULL || topic == NULL) {
        return usage_error("append", "%s is required", dir == NULL ? "--dir" : "--topic");
    }
    struct mr_journal *j = open_journal(dir, false, fs);
    if (j == NULL) {
        return 1;
    }
    struct mr_journal_topic *t = mr_journal_topic_find(j, topic);
    struct mr_err err;
    int rc = 0;
    if (t == NULL || nparts != 0) {
        rc = mr_journal_topic_create(j, topic, nparts ? nparts : 1, NULL, &t, &err);
        if (rc != 0) {
            fprintf(stderr, "millrace journal append: %s\n", err.msg);
            mr_journal_close(j);
            return 1;
        }
    }
    struct appender a = {.outstanding = 0};
    pthread_mutex_init(&a.lock, NULL);
    pthread_cond_init(&a.cv, NULL);
    a.out_cap = APPEND_MAX_RECORDS * 40;
    a.out = mr_malloc(a.out_cap);
    uint8_t *batch = mr_malloc(MR_BATCH_DEFAULT_CAP);
    struct append_args x = {.key = key, .nparts = mr_journal_topic_partitions(t), .a = &a, .t = t};
    if (a.out == NULL || batch == NULL) {
        fprintf(stderr, "millrace journal append: out of memory\n");
        rc = 1;
    } else {
        mr_batch_builder_init(&x.b, batch, MR_BATCH_DEFAULT_CAP);
        if (key != NULL) {
            x.key_part = mr_journal_partition_for_key(key, strlen(key), x.nparts);
        }
        rc = append_stdin(&x);
    }
    pthread_mutex_lock(&a.lock);
    while (a.outstanding > 0) {
        pthread_cond_wait(&a.cv, &a.lock);
    }
    pthread_mutex_unlock(&a.lock);
    if (mr_journal_close(j) != 0) {
        rc = 1;
    }
    mr_free(batch);
    mr_free(a.out);
    pthread_mutex_destroy(&a.lock);
    pthread_cond_destroy(&a.cv);
    return rc != 0 || a.failed ? 1 : 0;
}

/* ---- read */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void json_string(FILE *out, const uint8_t *s, int32_t len)
{
    if (len < 0) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (int32_t i = 0; i < len;) {
        uint8_t ch = s[i];
        int n = ch < 0x80 ? 1 : (ch >> 5) == 6 ? 2 : (ch >> 4) == 14 ? 3 : (ch >> 3) == 30 ? 4 : 0;
        bool ok = n > 0 && i + n <= len;
        for (int k = 1; ok && k < n; k++) {
            ok = (s[i + k] & 0xc0) == 0x80;
        }
        if (ok && n == 2 && ch < 0xc2) {
            ok = false; /* overlong */
        }
        if (ok && n == 3) {
            uint32_t cp = (uint32_t)(ch & 0x0f) << 12 | (uint32_t)(s[i + 1] & 0x3f) << 6;
            ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
        }
        if (ok && n == 4) {
            uint32_t cp = (uint32_t)(ch & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3f) << 12;
            ok = cp >= 0x10000 && cp <= 0x10ffff;
        }
        if (!ok) {
            fprintf(out, "\\u%04x", ch); /* a byte that is not UTF-8: \\u00XX */
            i++;
        } else if (n > 1) {
            fwrite(s + i, 1, (size_t)n, out);
            i += n;
        } else {
            switch (ch) {
            case '"':
                fputs("\\\"", out);
                break;
            case '\\':
                fputs("\\\\", out);
                break;
            case '\n':
                fputs("\\n", out);
                break;
            case '\r':
                fputs("\\r", out);
                break;
            case '\t':
                fputs("\\t", out);
                break;
            default:
                if (ch < 0x20 || ch == 0x7f) {
                    fprintf(out, "\\u%04x", ch);
                } else {
                    fputc(ch, out);
                }
            }
            i++;
        }
    }
    fputc('"', out);
}

/* json: millrace records (see mr_batch_record_is_millrace) are decoded and shown as "record";
 * anything else shows its raw bytes as "value". A record that fails to decode falls back to the raw
 * value. */
static void print_record(uint32_t part, const struct mr_batch_record *r, bool json,
                         struct mr_names *names)
{
    if (!json) {
        if (r->value_len > 0) {
            fwrite(r->value, 1, (size_t)r->value_len, stdout);
        }
        fputc('\n', stdout);
        return;
    }
    printf("{\"partition\":%u,\"offset\":%" PRId64 ",\"timestamp\":%" PRId64 ",\"key\":", part,
           r->offset, r->timestamp);
    json_string(stdout, r->key, r->key_len);
    struct mr_record rec;
    static char text[1 << 20]; /* the CLI is single-threaded; a sample block can be large */
    long n = -1;
    if (r->value_len > 0 && mr_batch_record_is_millrace(r) &&
        mr_record_decode(&rec, names, r->value, (size_t)r->value_len, NULL) == 0) {
        n = mr_record_to_json(&rec, names, text, sizeof(text));
    }
    if (n >= 0) {
        fputs(",\"record\":", stdout);
        fwrite(text, 1, (size_t)n, stdout);
    } else {
        fputs(",\"value\":", stdout);
        json_string(stdout, r->value, r->value_len);
    }
    /* Headers other than the record marker: the reason of a dead letter (mr.reject), the origin
     * of a relayed record (mr.src, binary), a Kafka client's own. */
    size_t pos = 0;
    struct mr_batch_header h;
    bool any = false;
    while (mr_batch_header_next(r, &pos, &h) == 0) {
        if (h.key_len == (int32_t)strlen(MR_RECORD_HEADER_KEY) &&
            memcmp(h.key, MR_RECORD_HEADER_KEY, (size_t)h.key_len) == 0) {
            continue;
        }
        fputs(any ? "," : ",\"headers\":{", stdout);
        any = true;
        json_string(stdout, (const uint8_t *)h.key, h.key_len);
        fputc(':', stdout);
        json_string(stdout, h.value, h.value_len);
    }
    fputs(any ? "}}\n" : "}\n", stdout);
}

/* --from: earliest | latest | OFFSET | @TIMESTAMP (ms or RFC 3339). */
static int parse_from(const char *s, int64_t *offset, int64_t *ts, bool *by_time)
{
    *by_time = false;
    if (strcmp(s, "earliest") == 0) {
        *offset = MR_JOURNAL_EARLIEST;
    } else if (strcmp(s, "latest") == 0) {
        *offset = MR_JOURNAL_LATEST;
    } else if (s[0] == '@') {
        int64_t ns;
        *by_time = true;
        if (parse_i64(s + 1, ts)) {
            return 0;
        }
        if (mr_time_parse_rfc3339(s + 1, strlen(s + 1), &ns) != 0) {
            return MR_EINVAL;
        }
        *ts = ns / 1000000;
    } else if (!parse_i64(s, offset) || *offset < 0) {
        return MR_EINVAL;
    }
    return 0;
}

struct read_opts {
    const char *dir, *topic;
    int64_t partition; /* -1: all */
    int64_t from, ts;
    bool by_time, follow, json;
};

static int open_readers(struct mr_journal_topic *t, const struct read_opts *o,
                        struct mr_journal_reader **rd, uint32_t first, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = first + i;
        int64_t start = o->from;
        int rc = 0;
        if (o->by_time) {
            rc = mr_journal_offset_for_time(t, p, o->ts, &start);
        }
        if (rc == 0) {
            rc = mr_journal_reader_create(t, p, start, &rd[i]);
        }
        if (rc != 0) {
            struct mr_journal_partition_stats st = {0};
            mr_journal_partition_stats(t, p, &st);
            fprintf(stderr,
                    "millrace journal read: %s/%u: cannot start at %" PRId64 " (stored %" PRId64
                    "..%" PRId64 "): %s\n",
                    o->topic, p, start, st.earliest, st.end, mr_strerror(rc));
            return 1;
        }
    }
    return 0;
}

static int read_loop(struct mr_journal_reader **rd, uint32_t first, uint32_t n, bool follow,
                     bool json, struct mr_names *names)
{
    while (!stop_requested) {
        bool any = false;
        for (uint32_t i = 0; i < n && !stop_requested; i++) {
            struct mr_batch_record rec;
            int rc;
            if (follow) {
                mr_journal_reader_wait(rd[i], 0); /* read-only: picks up other processes' data */
            }
            for (int k = 0; k < 10000 && (rc = mr_journal_reader_next(rd[i], &rec)) == 0; k++) {
                print_record(first + i, &rec, json, names);
                any = true;
            }
            if (rc != 0 && rc != MR_EEOF) {
                fflush(stdout);
                fprintf(stderr, "millrace journal read: partition %u at offset %" PRId64 ": %s\n",
                        first + i, mr_journal_reader_position(rd[i]), mr_strerror(rc));
                return 1;
            }
        }
        fflush(stdout);
        if (!any) {
            if (!follow) {
                return 0;
            }
            mr_journal_reader_wait(rd[0], 100);
        }
    }
    return 0;
}

static void read_help(FILE *out)
{
    fprintf(out, "usage: millrace journal read --dir DIR --topic T [--partition P]\n"
                 "         [--from earliest|latest|OFFSET|@TIMESTAMP] [--follow]\n"
                 "         [--format json|value]\n"
                 "Print one record per line (default --from earliest, --format value).\n"
                 "@TIMESTAMP is milliseconds since the epoch or RFC 3339 (2026-01-02T03:04:05Z).\n"
                 "--follow waits for new records until SIGINT or SIGTERM.\n");
}

static int parse_read(int argc, char **argv, struct read_opts *o)
{
    static const struct option longopts[] = {{"dir", required_argument, NULL, 'd'},
                                             {"topic", required_argument, NULL, 't'},
                                             {"partition", required_argument, NULL, 'p'},
                                             {"from", required_argument, NULL, 'f'},
                                             {"follow", no_argument, NULL, 'F'},
                                             {"format", required_argument, NULL, 'o'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    uint32_t p;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->dir = optarg;
            break;
        case 't':
            o->topic = optarg;
            break;
        case 'F':
            o->follow = true;
            break;
        case 'p':
            if (!parse_u32(optarg, 9999, &p)) {
                return usage_error("read", "--partition must be a partition number, not '%s'",
                                   optarg);
            }
            o->partition = p;
            break;
        case 'f':
            if (parse_from(optarg, &o->from, &o->ts, &o->by_time) != 0) {
                return usage_error("read",
                                   "--from must be earliest, latest, an offset or "
                                   "@timestamp, not '%s'",
                                   optarg);
            }
            break;
        case 'o':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "value") != 0) {
                return usage_error("read", "--format must be json or value, not '%s'", optarg);
            }
            o->json = strcmp(optarg, "json") == 0;
            break;
        case 'h':
            read_help(stdout);
            return -1;
        default:
            return bad_option("read", argv, c);
        }
    }
    if (optind < argc) {
        return usage_error("read", "unexpected argument '%s'", argv[optind]);
    }
    if (o->dir == NULL || o->topic == NULL) {
        return usage_error("read", "%s is required", o->dir == NULL ? "--dir" : "--topic");
    }
    return 0;
}

static int cmd_read(int argc, char **argv)
{
    struct read_opts o = {.partition = -1, .from = MR_JOURNAL_EARLIEST};
    int rc = parse_read(argc, argv, &o);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    struct mr_journal *j = open_journal(o.dir, true, MR_JOURNAL_FSYNC_ALWAYS);
    if (j == NULL) {
        return 1;
    }
    struct mr_journal_topic *t = mr_journal_topic_find(j, o.topic);
    uint32_t nparts = t != NULL ? mr_journal_topic_partitions(t) : 0;
    struct mr_journal_reader **rd = NULL;
    uint32_t first = o.partition >= 0 ? (uint32_t)o.partition : 0;
    uint32_t n = o.partition >= 0 ? 1 : nparts;
    if (t == NULL) {
        fprintf(stderr, "millrace journal read: no topic '%s' in %s\n", o.topic, o.dir);
        rc = 1;
    } else if (first >= nparts) {
        fprintf(stderr, "millrace journal read: topic '%s' has no partition %u (it has %u)\n",
                o.topic, first, nparts);
        rc = 1;
    } else if ((rd = mr_calloc(n, sizeof(*rd))) == NULL) {
        rc = 1;
    } else if ((rc = open_readers(t, &o, rd, first, n)) == 0) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        struct mr_names *names = NULL;
        if (mr_names_create(&names, 1u << 20, 64u << 20) != 0) {
            rc = 1;
        } else {
            rc = read_loop(rd, first, n, o.follow, o.json, names);
        }
        mr_names_destroy(names);
    }
    for (uint32_t i = 0; rd != NULL && i < n; i++) {
        mr_journal_reader_destroy(rd[i]);
    }
    mr_free(rd);
    mr_journal_close(j);
    return rc;
}

/* ---- topics and verify */

static int dir_only(const char *sub, int argc, char **argv, const char **dir, const char *help)
{
    static const struct option longopts[] = {{"dir", required_argument, NULL, 'd'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            *dir = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return -1;
        default:
            return bad_option(sub, argv, c);
        }
    }
    if (optind < argc) {
        return usage_error(sub, "unexpected argument '%s'", argv[optind]);
    }
    if (*dir == NULL) {
        return usage_error(sub, "%s is required", "--dir");
    }
    return 0;
}

static int cmd_topics(int argc, char **argv)
{
    const char *dir = NULL;
    int rc = dir_only("topics", argc, argv, &dir,
                      "usage: millrace journal topics --dir DIR\n"
                      "List topics: partitions, first and last offset (over all partitions),\n"
                      "bytes stored.\n");
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    struct mr_journal *j = open_journal(dir, true, MR_JOURNAL_FSYNC_ALWAYS);
    if (j == NULL) {
        return 1;
    }
    printf("%-32s %10s %14s %14s %14s\n", "TOPIC", "PARTITIONS", "FIRST", "LAST", "BYTES");
    for (size_t i = 0; i < mr_journal_topic_count(j); i++) {
        struct mr_journal_topic *t = mr_journal_topic_at(j, i);
        int64_t first = INT64_MAX, last = -1;
        uint64_t bytes = 0;
        for (uint32_t p = 0; p < mr_journal_topic_partitions(t); p++) {
            struct mr_journal_partition_stats st;
            if (mr_journal_partition_stats(t, p, &st) != 0) {
                continue;
            }
            if (st.end > st.earliest && st.earliest < first) {
                first = st.earliest;
            }
            if (st.end - 1 > last) {
                last = st.end - 1;
            }
            bytes += st.bytes;
        }
        char f[24] = "-", l[24] = "-";
        if (last >= 0 && first != INT64_MAX) {
            snprintf(f, sizeof(f), "%" PRId64, first);
            snprintf(l, sizeof(l), "%" PRId64, last);
        }
        printf("%-32s %10u %14s %14s %14" PRIu64 "\n", mr_journal_topic_name(t),
               mr_journal_topic_partitions(t), f, l, bytes);
    }
    mr_journal_close(j);
    return 0;
}

static void print_problem(void *arg, const struct mr_journal_problem *p)
{
    (void)arg;
    printf("CORRUPT topic %s partition %u file %s position %" PRIu64 ": %s\n", p->topic,
           p->partition, p->segment, p->position, p->message);
}

static int cmd_verify(int argc, char **argv)
{
    const char *dir = NULL;
    int rc = dir_only("verify", argc, argv, &dir,
                      "usage: millrace journal verify --dir DIR\n"
                      "Check the length, CRC and records of every batch of every topic.\n"
                      "Exit status 1 when anything is damaged (each problem is printed).\n");
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    struct mr_journal_verify_stats st = {0};
    struct mr_err err;
    mr_err_clear(&err);
    rc = mr_journal_verify(dir, print_problem, NULL, &st, &err);
    if (rc != 0 && rc != MR_ECORRUPT) {
        fprintf(stderr, "millrace journal verify: %s\n", err.msg);
        return 1;
    }
    printf("%s: %u topics, %u partitions, %u segments, %" PRIu64 " batches, %" PRIu64
           " records, %" PRIu64 " bytes, %u problems\n",
           rc == 0 ? "OK" : "CORRUPT", st.topics, st.partitions, st.segments, st.batches,
           st.records, st.bytes, st.problems);
    return rc == 0 ? 0 : 1;
}

static void journal_help(FILE *out)
{
    fprintf(out, "usage: millrace journal <append|read|topics|verify> [options]\n"
                 "  append   append stdin lines as records, print acks\n"
                 "  read     print records (optionally following new ones)\n"
                 "  topics   list topics with offsets and sizes\n"
                 "  verify   check every batch's CRC\n"
                 "Run 'millrace journal <command> --help' for its options.\n");
}

int mr_cli_journal(int argc, char **argv)
{
    if (argc < 2) {
        journal_help(stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    optind = 0; /* GNU getopt: start over (the CLI may have parsed options before) */
    opterr = 0;
    if (strcmp(sub, "append") == 0) {
        return cmd_append(argc - 1, argv + 1);
    }
    if (strcmp(sub, "read") == 0) {
        return cmd_read(argc - 1, argv + 1);
    }
    if (strcmp(sub, "topics") == 0) {
        return cmd_topics(argc - 1, argv + 1);
    }
    if (strcmp(sub, "verify") == 0) {
        return cmd_verify(argc - 1, argv + 1);
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        journal_help(stdout);
        return 0;
    }
    fprintf(stderr, "millrace journal: unknown command '%s'\n", sub);
    journal_help(stderr);
    return EXIT_USAGE;
}
