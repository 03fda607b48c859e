/* Input `modbus`: polls a Modbus TCP device (libmodbus) and emits one record per mapped value.
 *
 *   inputs:
 *     press3_plc:
 *       type: modbus
 *       controller: tcp://10.0.4.21:502
 *       slave_id: 1
 *       asset: plant/press/line1/press3
 *       interval: 1s              # the lists below; groups may have their own
 *       timeout: 1s
 *       retries: 1
 *       byte_order: ABCD
 *       holding_registers:
 *         - {name: oil_temperature, address: 0, data_type: INT16, scale: 0.1}
 *         - {name: energy_kwh, address: 10, data_type: FLOAT32, byte_order: CDAB}
 *         - {name: recipe, address: 20, data_type: STRING, length: 8}
 *       coils:
 *         - {name: motor_running, address: 0}
 *       groups:
 *         - name: fast
 *           interval: 100ms
 *           input_registers:
 *             - {name: force_kn, address: 0, data_type: FLOAT32}
 *
 * Semantics. Each polling group is read every `interval`; values of one table that are
 * adjacent (or within optimization_max_register_fill) are read in one request of at most 125
 * registers (2000 bits). Every value of a poll carries the same timestamp (wall clock when the
 * poll began), the device's `asset`, its `name` as signal. Integers are i64 (UINT64 above
 * 2^63-1 is reported bad), FLOAT32/64 and anything with scale/offset are f64, BIT and coils
 * are bool, STRING is text.
 *
 * A failed request (timeout, lost connection, Modbus exception) is retried `retries` times
 * (exceptions like "illegal data address" are not: they would fail again); then each of its
 * values is emitted with quality bad and a zero value of its type (never the last good value).
 * While the device is unreachable, every poll reports its values bad; connection attempts back
 * off from reconnect_min, doubling to reconnect_max. Bad values are also counted in
 * millrace_errors_total (one per failed request).
 *
 * libmodbus is blocking, so a worker thread (src/core/worker.c) owns the connection and polls;
 * each poll is one batch allocated on the worker and handed to the loop, which emits it. Under
 * back-pressure batches wait in a queue of at most PENDING_MAX; beyond that the oldest is
 * dropped and counted. stop() joins the worker, which can take up to timeout * (retries + 1)
 * when the device is silent mid-request.
 */
#include <errno.h>
#include <inttypes.h>
#include <modbus.h>
#include <string.h>

#include "inputs/modbus_conf.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/log.h"
#include "millrace/plugin.h"
#include "millrace/worker.h"

#define RING_CAPACITY 16
#define PENDING_MAX   64
#define RETRY_MS      10
#define SLICE_NS      (20 * 1000000LL) /* the worker checks for stop this often while idle */

extern const struct mr_plugin mr_input_modbus;

/* One poll's records, then the bytes of its STRING values. */
struct mb_batch {
    struct mb_batch *next;
    size_t n;
    struct mr_record recs[];
};

struct mb_ctx {
    const struct mb_conf *conf;
    struct mr_input_host *host;
    struct mr_plugin_counters counters;
    mr_name_id asset;
    char where[300]; /* "tcp://host:port slave 1" for messages */
    struct mb_group *groups;
    size_t ngroups;
    struct mb_field *fields;
    struct mb_span *spans;
    /* worker thread only */
    modbus_t *mb;
    bool connected;
    bool was_down; /* a loss was already logged */
    int64_t next_connect_ns;
    int64_t backoff_ns;
    struct mr_log_ratelimit rl;
    uint16_t words[MB_MAX_WORDS_PER_READ];
    uint8_t bits[MB_MAX_BITS_PER_READ];
    /* loop thread only */
    struct mr_worker *worker;
    uv_timer_t retry;
    bool started, stopping, ended;
    struct mb_batch *head, *tail;
    size_t npending;
    struct mr_log_ratelimit loop_rl;
};

/* ---- worker thread ---- */

static void mb_disconnect(struct mb_ctx *c)
{
    if (c->connected) {
        modbus_close(c->mb);
        c->connected = false;
    }
}

/* Connect when not connected and the backoff allows; 0 when connected. */
static int connect_if_due(struct mb_ctx *c)
{
    if (c->connected) {
        return 0;
    }
    int64_t now = mr_clock_mono_ns();
    if (now < c->next_connect_ns) {
        return -1;
    }
    if (modbus_connect(c->mb) != 0) {
        int e = errno;
        if (!c->was_down) {
            MR_LOG_WARN(c->host->name,
                        "cannot connect to %s: %s; retrying every %" PRId64
                        " ms, doubling to %" PRId64 " ms",
                        c->where, modbus_strerror(e), c->backoff_ns / 1000000,
                        c->conf->reconnect_max_ns / 1000000);
            c->was_down = true;
        }
        c->next_connect_ns = now + c->backoff_ns;
        c->backoff_ns *= 2;
        if (c->backoff_ns > c->conf->reconnect_max_ns) {
            c->backoff_ns = c->conf->reconnect_max_ns;
        }
        return -1;
    }
    MR_LOG_INFO(c->host->name, "connected to %s", c->where);
    c->connected = true;
    c->was_down = false;
    c->backoff_ns = c->conf->reconnect_min_ns;
    return 0;
}

static int read_once(struct mb_ctx *c, const struct mb_span *s)
{
    switch ((enum mb_table)s->table) {
    case MB_COILS:
        return modbus_read_bits(c->mb, s->start, s->count, c->bits);
    case MB_DISCRETE_INPUTS:
        return modbus_read_input_bits(c->mb, s->start, s->count, c->bits);
    case MB_HOLDING_REGISTERS:
        return modbus_read_registers(c->mb, s->start, s->count, c->words);
    case MB_INPUT_REGISTERS:
        return modbus_read_input_registers(c->mb, s->start, s->count, c->words);
    }
    return -1;
}

/* Read one span with retries; 0 when the registers are in c->words / c->bits. */
static int read_span(struct mb_ctx *c, const struct mb_span *s, const char *group)
{
    for (int64_t attempt = 0; attempt <= c->conf->retries; attempt++) {
        if (connect_if_due(c) != 0) {
            return -1;
        }
        if (read_once(c, s) == s->count) {
            return 0;
        }
        int e = errno;
        MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name, "%s: reading %s %u..%u (group %s) failed: %s",
                  c->where, mb_table_names[s->table], (unsigned)s->start,
                  (unsigned)(s->start + s->count - 1), group, modbus_strerror(e));
        if (e == EMBXILFUN || e == EMBXILADD || e == EMBXILVAL || e == EMBXSFAIL) {
            return -1; /* the device answered: asking again gives the same answer */
        }
        if (e != EMBXSBUSY && e != EMBXACK) {
            /* A timeout or a broken link leaves the stream in an unknown state: start over,
             * at once for the retry (the backoff applies to failing connects). */
            mb_disconnect(c);
            c->next_connect_ns = 0;
        }
    }
    return -1;
}

static void bad_value(const struct mb_field *f, struct mr_record *rec)
{
    rec->quality = MR_QUALITY_BAD;
    if (f->table == MB_COILS || f->table == MB_DISCRETE_INPUTS || f->type == MB_BIT) {
        rec->type = MR_VALUE_BOOL;
        rec->v.b = false;
    } else if (f->type == MB_STRING) {
        rec->type = MR_VALUE_STRING;
        rec->v.str = (struct mr_bytes){.ptr = "", .len = 0};
    } else if (f->scaled || f->type == MB_FLOAT32 || f->type == MB_FLOAT64) {
        rec->type = MR_VALUE_F64;
        rec->v.f64 = 0.0;
    } else {
        rec->type = MR_VALUE_I64;
        rec->v.i64 = 0;
    }
}

static void decode_span(struct mb_ctx *c, const struct mb_group *g, const struct mb_span *s,
                        bool ok, struct mb_batch *b, char *strings)
{
    for (uint32_t i = s->first; i < s->first + s->nfields; i++) {
        const struct mb_field *f = &g->fields[i];
        struct mr_record *rec = &b->recs[i];
        uint16_t at = (uint16_t)(f->address - s->start);
        if (!ok) {
            bad_value(f, rec);
        } else if (f->table == MB_COILS || f->table == MB_DISCRETE_INPUTS) {
            rec->type = MR_VALUE_BOOL;
            rec->v.b = c->bits[at] != 0;
        } else if (mb_decode(f, c->words + at, rec, strings + f->str_off) != 0) {
            bad_value(f, rec);
            MR_LOG_RL(&c->rl, MR_LOG_WARN, c->host->name,
                      "%s: %s %u does not hold a valid %s (reported bad)", c->where,
                      mb_table_names[f->table], (unsigned)f->address, mb_type_names[f->type]);
        }
    }
}

static struct mb_batch *poll_group(struct mb_ctx *c, const struct mb_group *g)
{
    size_t head = sizeof(struct mb_batch) + g->nfields * sizeof(struct mr_record);
    struct mb_batch *b = mr_malloc(head + g->str_bytes + 1);
    if (b == NULL) {
        MR_LOG_RL(&c->rl, MR_LOG_ERROR, c->host->name, "out of memory: poll of %s skipped",
                  g->name);
        mr_counter_add(c->counters.errors, 1);
        return NULL;
    }
    char *strings = (char *)b + head;
    int64_t t = mr_clock_wall_ns();
    b->next = NULL;
    b->n = g->nfields;
    for (size_t i = 0; i < g->nfields; i++) {
        b->recs[i] = (struct mr_record){.time_ns = t,
                                        .asset = c->asset,
                                        .signal = g->fields[i].signal,
                                        .quality = MR_QUALITY_GOOD};
    }
    for (size_t i = 0; i < g->nspans; i++) {
        bool ok = read_span(c, &g->spans[i], g->name) == 0;
        if (!ok) {
            mr_counter_add(c->counters.errors, 1);
        }
        decode_span(c, g, &g->spans[i], ok, b, strings);
    }
    mr_counter_add(c->counters.records_in, b->n);
    return b;
}

static void post(struct mr_worker *w, struct mb_batch *b)
{
    while (mr_worker_post(w, b) == MR_EAGAIN) {
        if (mr_worker_stopping(w)) {
            mr_free(b);
            return;
        }
        mr_worker_wait_room(w, 100);
    }
}

static void worker_main(struct mr_worker *w, void *arg)
{
    struct mb_ctx *c = arg;
    int64_t now = mr_clock_mono_ns();
    for (size_t i = 0; i < c->ngroups; i++) {
        c->groups[i].next_ns = now;
    }
    while (!mr_worker_stopping(w)) {
        struct mb_group *g = &c->groups[0];
        for (size_t i = 1; i < c->ngroups; i++) {
            if (c->groups[i].next_ns < g->next_ns) {
                g = &c->groups[i];
            }
        }
        now = mr_clock_mono_ns();
        if (now < g->next_ns) {
            int64_t wait = g->next_ns - now;
            mr_clock_sleep_ns(wait < SLICE_NS ? wait : SLICE_NS);
            continue;
        }
        struct mb_batch *b = poll_group(c, g);
        if (b != NULL) {
            post(w, b);
        }
        /* Keep the phase; after an overrun (slow device) skip the missed polls. */
        g->next_ns += g->interval_ns;
        now = mr_clock_mono_ns();
        if (g->next_ns <= now) {
            g->next_ns = now + g->interval_ns - (now - g->next_ns) % g->interval_ns;
        }
    }
    mb_disconnect(c);
}

/* ---- loop thread ---- */

static void retry_cb(uv_timer_t *t);

static void drop_all(struct mb_ctx *c)
{
    while (c->head != NULL) {
        struct mb_batch *b = c->head;
        c->head = b->next;
        mr_free(b);
    }
    c->tail = NULL;
    c->npending = 0;
}

/* Emit queued batches in order until the host pushes back. */
static void flush_pending(struct mb_ctx *c)
{
    while (c->head != NULL && !c->ended) {
        struct mb_batch *b = c->head;
        size_t n = b->n; /* a stop inside emit frees b */
        int rc = c->host->emit(c->host, b->recs, n);
        if (rc == 0) {
            mr_counter_add(c->counters.records_out, n);
        }
        if (c->stopping) {
            return; /* the host stopped us from inside emit: the queue is gone */
        }
        if (rc == MR_EAGAIN) {
            uv_timer_start(&c->retry, retry_cb, RETRY_MS, 0);
            return;
        }
        if (rc != 0) {
            MR_LOG_ERROR(c->host->name, "the host refused %zu records: %s; stopping", b->n,
                         mr_strerror(rc));
            mr_counter_add(c->counters.errors, b->n);
            drop_all(c);
            c->ended = true;
            c->host->ended(c->host, rc);
            return;
        }
        c->head = b->next;
        if (c->head == NULL) {
            c->tail = NULL;
        }
        c->npending--;
        mr_free(b);
    }
}

static void retry_cb(uv_timer_t *t)
{
    flush_pending(t->data);
}

static void deliver(void *item, void *arg)
{
    struct mb_ctx *c = arg;
    struct mb_batch *b = item;
    if (c->stopping || c->ended) {
        mr_free(b);
        return;
    }
    if (c->npending == PENDING_MAX) {
        struct mb_batch *old = c->head;
        c->head = old->next;
        c->npending--;
        mr_counter_add(c->counters.errors, old->n);
        MR_LOG_RL(&c->loop_rl, MR_LOG_WARN, c->host->name,
                  "the pipeline is not keeping up: dropped a poll of %zu values", old->n);
        mr_free(old);
        if (c->head == NULL) {
            c->tail = NULL;
        }
    }
    if (c->tail != NULL) {
        c->tail->next = b;
    } else {
        c->head = b;
    }
    c->tail = b;
    c->npending++;
    if (!uv_is_active((uv_handle_t *)&c->retry)) {
        flush_pending(c);
    }
}

static void modbus_fini(void *ctx)
{
    struct mb_ctx *c = ctx;
    drop_all(c);
    if (c->mb != NULL) {
        modbus_free(c->mb);
        c->mb = NULL;
    }
    mr_free(c->groups);
    mr_free(c->fields);
    mr_free(c->spans);
}

static int open_device(struct mb_ctx *c, struct mr_err *err)
{
    const struct mb_conf *cf = c->conf;
    char host[256];
    int port;
    int rc = mb_controller_parse(cf->controller, host, sizeof(host), &port, err);
    if (rc != 0) {
        return rc;
    }
    snprintf(c->where, sizeof(c->where), "%s slave %" PRId64, cf->controller, cf->slave_id);
    c->mb = modbus_new_tcp(host, port);
    if (c->mb == NULL) {
        return MR_ERR_SET(err, MR_EINVAL, "controller %s: %s", cf->controller,
                          modbus_strerror(errno));
    }
    uint32_t sec = (uint32_t)(cf->timeout_ns / 1000000000);
    uint32_t usec = (uint32_t)(cf->timeout_ns % 1000000000 / 1000);
    if (modbus_set_slave(c->mb, (int)cf->slave_id) != 0 ||
        modbus_set_response_timeout(c->mb, sec, usec) != 0) {
        return MR_ERR_SET(err, MR_EINVAL, "%s: %s", c->where, modbus_strerror(errno));
    }
    c->backoff_ns = cf->reconnect_min_ns;
    return 0;
}

static int modbus_init(void *ctx, const void *conf, struct mr_input_host *host, struct mr_err *err)
{
    struct mb_ctx *c = ctx;
    const struct mb_conf *cf = conf;
    size_t ngroups;
    int rc;
    memset(c, 0, sizeof(*c));
    c->conf = cf;
    c->host = host;
    size_t nfields = mb_conf_count(cf, &ngroups);
    c->groups = mr_calloc(ngroups, sizeof(*c->groups));
    c->fields = mr_calloc(nfields, sizeof(*c->fields));
    c->spans = mr_calloc(nfields, sizeof(*c->spans));
    if (c->groups == NULL || c->fields == NULL || c->spans == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        goto fail;
    }
    rc = mr_names_intern(host->names, cf->asset, strlen(cf->asset), &c->asset);
    if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot intern asset %s: %s", cf->asset, mr_strerror(rc));
        goto fail;
    }
    rc = mb_conf_groups(cf, host->names, c->groups, &c->ngroups, c->fields, c->spans, err);
    if (rc != 0) {
        goto fail;
    }
    rc = open_device(c, err);
    if (rc != 0) {
        goto fail;
    }
    rc = mr_plugin_counters_register(host->metrics, &mr_input_modbus, host->name, &c->counters);
    if (rc != 0) {
        MR_ERR_SET(err, rc, "cannot register metrics: %s", mr_strerror(rc));
        goto fail;
    }
    return 0;
fail:
    modbus_fini(c);
    return rc;
}

static int modbus_start(void *ctx, struct mr_err *err)
{
    struct mb_ctx *c = ctx;
    int rc = uv_timer_init(c->host->loop, &c->retry);
    if (rc != 0) {
        return MR_ERR_SET(err, mr_err_from_errno(-rc), "timer: %s", uv_strerror(rc));
    }
    c->retry.data = c;
    c->started = true;
    rc = mr_worker_start(&c->worker, c->host->loop, worker_main, deliver, c, RING_CAPACITY);
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "cannot start the polling thread: %s", mr_strerror(rc));
    }
    return 0;
}

static void close_cb(uv_handle_t *h)
{
    struct mb_ctx *c = h->data;
    c->host->stopped(c->host);
}

static void modbus_stop(void *ctx)
{
    struct mb_ctx *c = ctx;
    if (c->stopping) {
        return;
    }
    c->stopping = true;
    mr_worker_stop(c->worker); /* joins the poller; what it still delivers is freed */
    c->worker = NULL;
    drop_all(c);
    if (c->started) {
        uv_close((uv_handle_t *)&c->retry, close_cb);
    } else {
        c->host->stopped(c->host);
    }
}

const struct mr_plugin mr_input_modbus = {
    .kind = MR_PLUGIN_INPUT,
    .name = "modbus",
    .help = "Polls a Modbus TCP device (PLC, meter, drive): holding and input registers, coils "
            "and discrete inputs mapped to signals with Telegraf's keys (controller, slave_id, "
            "data_type, byte_order, scale). Failed reads report their values with bad quality.",
    .conf = {.fields = mb_conf_fields, .size = sizeof(struct mb_conf), .check = mb_conf_check},
    .ctx_size = sizeof(struct mb_ctx),
    .input = {.init = modbus_init, .start = modbus_start, .stop = modbus_stop, .fini = modbus_fini},
};
