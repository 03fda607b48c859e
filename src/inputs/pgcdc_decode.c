/* pgoutput (logical replication protocol version 1) messages into millrace records.
 *
 * The server sends, inside XLogData, one message per event of a transaction:
 *
 *   'B' Begin     final_lsn:u64 commit_time:i64 xid:u32
 *   'R' Relation  relid:u32 schema:cstr name:cstr replident:u8 ncols:u16
 *                 ncols x (flags:u8 name:cstr type_oid:u32 typmod:i32)
 *   'I' Insert    relid:u32 'N' tuple
 *   'U' Update    relid:u32 ['K'|'O' tuple] 'N' tuple
 *   'D' Delete    relid:u32 ('K'|'O') tuple
 *   'C' Commit    flags:u8 commit_lsn:u64 end_lsn:u64 commit_time:i64
 *   tuple:        ncols:u16 ncols x ('n' | 'u' | ('t'|'b') len:u32 bytes)
 * All integers big-endian; times are microseconds since 2000-01-01 UTC. 'O' (origin), 'Y'
 * (type) and 'T' (truncate) carry nothing we map.
 *
 * Records: one per mapped column of the new row (insert, update), or one `row_deleted` (true)
 * per deleted row; time = the transaction's commit time, so a replay after a crash produces
 * the same records; tags op (insert|update|delete), table (schema.name) and the tag columns.
 * NULL and unchanged TOASTed columns produce no record. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs/pgcdc_internal.h"
#include "millrace/alloc.h"

#define PG_EPOCH_US 946684800000000LL /* 2000-01-01 in microseconds since 1970 */

enum {
    OID_BOOL = 16,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_NUMERIC = 1700,
};

struct reader {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
};

static uint64_t rd_u(struct reader *r, int bytes)
{
    if (r->bad || r->len - r->pos < (size_t)bytes) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v = (v << 8) | r->p[r->pos++];
    }
    return v;
}

/* A NUL-terminated string inside the message: its start and length. */
static const char *rd_str(struct reader *r, size_t *len)
{
    if (r->bad) {
        return "";
    }
    const uint8_t *end = memchr(r->p + r->pos, 0, r->len - r->pos);
    if (end == NULL) {
        r->bad = true;
        return "";
    }
    const char *s = (const char *)r->p + r->pos;
    *len = (size_t)(end - (r->p + r->pos));
    r->pos += *len + 1;
    return s;
}

struct tcol {
    char kind; /* 'n' null, 'u' unchanged toast, 't' text, 'b' binary */
    const char *v;
    uint32_t len;
};

static int rd_tuple(struct reader *r, struct tcol *cols, uint16_t *ncols)
{
    uint16_t n = (uint16_t)rd_u(r, 2);
    if (n > PGCDC_MAX_COLS) {
        return MR_ENOTSUP;
    }
    for (uint16_t i = 0; i < n && !r->bad; i++) {
        cols[i] = (struct tcol){.kind = (char)rd_u(r, 1)};
        if (cols[i].kind == 't' || cols[i].kind == 'b') {
            cols[i].len = (uint32_t)rd_u(r, 4);
            if (r->bad || r->len - r->pos < cols[i].len) {
                r->bad = true;
                break;
            }
            cols[i].v = (const char *)r->p + r->pos;
            r->pos += cols[i].len;
        } else if (cols[i].kind != 'n' && cols[i].kind != 'u') {
            r->bad = true;
        }
    }
    *ncols = n;
    return r->bad ? MR_ECORRUPT : 0;
}

static bool in_list(const struct mr_strlist *l, const char *s, size_t len)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strlen(l->items[i]) == len && memcmp(l->items[i], s, len) == 0) {
            return true;
        }
    }
    return false;
}

static int parse_template(struct pgcdc_table *t, const char *tpl, struct mr_err *err)
{
    const char *p = tpl;
    while (*p != '\0') {
        if (t->nparts == PGCDC_MAX_PARTS) {
            return MR_ERR_SET(err, MR_ECONFIG, "table %s: asset template has more than %d pieces",
                              t->conf->table, PGCDC_MAX_PARTS);
        }
        struct pgcdc_part *part = &t->parts[t->nparts++];
        if (*p == '{') {
            const char *end = strchr(p, '}');
            if (end == NULL || end == p + 1) {
                return MR_ERR_SET(err, MR_ECONFIG,
                                  "table %s: asset '%s' has an unclosed or empty {column}",
                                  t->conf->table, tpl);
            }
            *part =
                (struct pgcdc_part){.text = p + 1, .len = (size_t)(end - p - 1), .column = true};
            t->asset_has_columns = true;
            p = end + 1;
        } else {
            const char *end = strchr(p, '{');
            size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
            *part = (struct pgcdc_part){.text = p, .len = len};
            p += len;
        }
    }
    return 0;
}

static int table_init(struct pgcdc_table *t, const struct pgcdc_table_conf *tc,
                      struct mr_names *names, struct mr_err *err)
{
    t->conf = tc;
    const char *dot = strchr(tc->table, '.');
    const char *schema = dot != NULL ? tc->table : "public";
    size_t slen = dot != NULL ? (size_t)(dot - tc->table) : 6;
    const char *name = dot != NULL ? dot + 1 : tc->table;
    if (slen == 0 || slen >= sizeof(t->schema) || name[0] == '\0' ||
        strlen(name) >= sizeof(t->name)) {
        return MR_ERR_SET(err, MR_ECONFIG, "table '%s': write schema.name or name (each < 64)",
                          tc->table);
    }
    memcpy(t->schema, schema, slen);
    t->schema[slen] = '\0';
    snprintf(t->name, sizeof(t->name), "%s", name);
    int n = snprintf(t->qname, sizeof(t->qname), "%s.%s", t->schema, t->name);
    t->qname_len = (uint32_t)n;
    if (tc->tags.n > PGCDC_MAX_TAGCOLS) {
        return MR_ERR_SET(err, MR_ECONFIG, "table %s: at most %d tag columns", tc->table,
                          PGCDC_MAX_TAGCOLS);
    }
    int rc = parse_template(t, tc->asset, err);
    if (rc == 0 && !t->asset_has_columns) {
        rc = mr_names_intern(names, tc->asset, strlen(tc->asset), &t->fixed_asset);
        if (rc != 0) {
            MR_ERR_SET(err, rc, "table %s: asset '%s': %s", tc->table, tc->asset, mr_strerror(rc));
        }
    }
    return rc;
}

int pgcdc_decoder_init(struct pgcdc_decoder *d, const struct pgcdc_conf *conf,
                       struct mr_names *names, const char *log_name, struct mr_err *err)
{
    memset(d, 0, sizeof(*d));
    d->names = names;
    d->log_name = log_name;
    if (conf->tables.n > PGCDC_MAX_TABLES) {
        return MR_ERR_SET(err, MR_ECONFIG, "at most %d tables", PGCDC_MAX_TABLES);
    }
    int rc = 0;
    const struct pgcdc_table_conf *tcs = conf->tables.items;
    for (size_t i = 0; i < conf->tables.n && rc == 0; i++) {
        rc = table_init(&d->tables[i], &tcs[i], names, err);
        d->ntables = i + 1;
    }
    if (rc == 0 && ((rc = mr_names_intern(names, "op", 2, &d->k_op)) != 0 ||
                    (rc = mr_names_intern(names, "table", 5, &d->k_table)) != 0 ||
                    (rc = mr_names_intern(names, "row_deleted", 11, &d->v_deleted)) != 0)) {
        MR_ERR_SET(err, rc, "cannot intern names: %s", mr_strerror(rc));
    }
    if (rc == 0) {
        d->rels = mr_calloc(PGCDC_MAX_RELS, sizeof(*d->rels));
        if (d->rels == NULL) {
            rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
        }
    }
    return rc;
}

void pgcdc_decoder_fini(struct pgcdc_decoder *d)
{
    mr_free(d->rels);
    d->rels = NULL;
}

void pgcdc_decoder_reset(struct pgcdc_decoder *d)
{
    d->nrels = 0;
    d->in_txn = false;
}

static struct pgcdc_rel *rel_find(struct pgcdc_decoder *d, uint32_t relid)
{
    for (size_t i = 0; i < d->nrels; i++) {
        if (d->rels[i].relid == relid) {
            return &d->rels[i];
        }
    }
    return NULL;
}

/* Map one announced column to its role in the configured table. */
static int map_column(struct pgcdc_decoder *d, const struct pgcdc_table *t, struct pgcdc_col *col,
                      const char *name, size_t len, bool asset_col)
{
    const struct pgcdc_table_conf *tc = t->conf;
    col->role = ROLE_NONE;
    if (in_list(&tc->tags, name, len)) {
        col->role = ROLE_TAG;
    } else if (tc->signals.n > 0 ? in_list(&tc->signals, name, len) : !asset_col) {
        col->role = ROLE_SIGNAL;
    }
    return col->role == ROLE_NONE ? 0 : mr_names_intern(d->names, name, len, &col->name);
}

static int decode_relation(struct pgcdc_decoder *d, struct reader *r, struct mr_err *err)
{
    uint32_t relid = (uint32_t)rd_u(r, 4);
    size_t slen = 0, nlen = 0;
    const char *schema = rd_str(r, &slen);
    const char *name = rd_str(r, &nlen);
    (void)rd_u(r, 1); /* replica identity */
    uint16_t ncols = (uint16_t)rd_u(r, 2);
    if (r->bad) {
        return MR_ERR_SET(err, MR_ECORRUPT, "truncated Relation message");
    }
    struct pgcdc_rel *rel = rel_find(d, relid);
    if (rel == NULL) {
        if (d->nrels == PGCDC_MAX_RELS) {
            return MR_ERR_SET(err, MR_ENOTSUP, "more than %d tables in the publication",
                              PGCDC_MAX_RELS);
        }
        rel = &d->rels[d->nrels++];
    }
    memset(rel, 0, sizeof(*rel));
    rel->relid = relid;
    rel->table = -1;
    for (size_t i = 0; i < d->ntables; i++) {
        const struct pgcdc_table *t = &d->tables[i];
        if (strlen(t->schema) == slen && memcmp(t->schema, schema, slen) == 0 &&
            strlen(t->name) == nlen && memcmp(t->name, name, nlen) == 0) {
            rel->table = (int)i;
        }
    }
    if (ncols > PGCDC_MAX_COLS) {
        rel->table = -1;
        return MR_ERR_SET(err, MR_ENOTSUP, "table %.*s.%.*s has %u columns (at most %d)", (int)slen,
                          schema, (int)nlen, name, ncols, PGCDC_MAX_COLS);
    }
    const struct pgcdc_table *t = rel->table >= 0 ? &d->tables[rel->table] : NULL;
    for (size_t p = 0; p < PGCDC_MAX_PARTS; p++) {
        rel->part_col[p] = -1;
    }
    rel->ncols = ncols;
    int rc = 0;
    for (uint16_t i = 0; i < ncols && !r->bad; i++) {
        (void)rd_u(r, 1); /* flags: part of the key */
        size_t clen = 0;
        const char *cname = rd_str(r, &clen);
        rel->cols[i].type_oid = (uint32_t)rd_u(r, 4);
        (void)rd_u(r, 4); /* typmod */
        if (t == NULL || r->bad) {
            continue;
        }
        bool asset_col = false;
        for (size_t p = 0; p < t->nparts; p++) {
            if (t->parts[p].column && t->parts[p].len == clen &&
                memcmp(t->parts[p].text, cname, clen) == 0) {
                rel->part_col[p] = (int16_t)i;
                asset_col = true;
            }
        }
        if (rc == 0) {
            rc = map_column(d, t, &rel->cols[i], cname, clen, asset_col);
        }
    }
    if (r->bad) {
        rel->table = -1;
        return MR_ERR_SET(err, MR_ECORRUPT, "truncated Relation message");
    }
    if (rc != 0) {
        rel->table = -1;
        return MR_ERR_SET(err, rc, "table %s: cannot intern column names: %s", t->qname,
                          mr_strerror(rc));
    }
    return 0;
}

/* Render the asset path of a row into the rel's memo and return its id. */
static int row_asset(struct pgcdc_decoder *d, const struct pgcdc_table *t, struct pgcdc_rel *rel,
                     const struct tcol *cols, uint16_t ncols, const char *op, mr_name_id *out,
                     struct mr_err *err)
{
    if (!t->asset_has_columns) {
        *out = t->fixed_asset;
        return 0;
    }
    char buf[PGCDC_ASSET_MAX];
    size_t len = 0;
    for (size_t p = 0; p < t->nparts; p++) {
        const struct pgcdc_part *part = &t->parts[p];
        const char *s = part->text;
        size_t n = part->len;
        if (part->column) {
            int c = rel->part_col[p];
            if (c < 0 || c >= ncols || cols[c].kind != 't' || cols[c].len == 0) {
                return MR_ERR_SET(err, MR_EPARSE,
                                  "%s on %s: asset column '%.*s' is %s (for deletes: make it part "
                                  "of the primary key or set REPLICA IDENTITY FULL)",
                                  op, t->qname, (int)n, s,
                                  c < 0 ? "not a column of the table" : "NULL or absent");
            }
            s = cols[c].v;
            n = cols[c].len;
        }
        if (len + n >= sizeof(buf)) {
            return MR_ERR_SET(err, MR_EPARSE, "%s on %s: asset path longer than %d bytes", op,
                              t->qname, PGCDC_ASSET_MAX - 1);
        }
        memcpy(buf + len, s, n);
        len += n;
    }
    if (len == rel->last_asset_len && rel->last_asset_id != 0 &&
        memcmp(buf, rel->last_asset, len) == 0) {
        *out = rel->last_asset_id;
        return 0;
    }
    mr_name_id id = 0;
    int rc = mr_names_intern(d->names, buf, len, &id);
    if (rc != 0) {
        return MR_ERR_SET(err, MR_EPARSE, "%s on %s: asset '%.*s': %s", op, t->qname, (int)len, buf,
                          mr_strerror(rc));
    }
    memcpy(rel->last_asset, buf, len);
    rel->last_asset_len = len;
    rel->last_asset_id = id;
    *out = id;
    return 0;
}

/* Text of a column into the record's value, by the column's type. */
static void set_value(struct mr_record *rec, uint32_t oid, const char *v, uint32_t len,
                      struct pgcdc_batch *b)
{
    char num[64];
    bool numeric = oid == OID_INT2 || oid == OID_INT4 || oid == OID_INT8 || oid == OID_FLOAT4 ||
                   oid == OID_FLOAT8 || oid == OID_NUMERIC;
    if (oid == OID_BOOL && len == 1 && (v[0] == 't' || v[0] == 'f')) {
        rec->type = MR_VALUE_BOOL;
        rec->v.b = v[0] == 't';
        return;
    }
    if (numeric && len > 0 && len < sizeof(num)) {
        memcpy(num, v, len);
        num[len] = '\0';
        char *end = NULL;
        if (oid == OID_INT2 || oid == OID_INT4 || oid == OID_INT8) {
            long long i = strtoll(num, &end, 10);
            if (*end == '\0') {
                rec->type = MR_VALUE_I64;
                rec->v.i64 = i;
                return;
            }
        } else {
            double f = strtod(num, &end);
            if (*end == '\0') {
                rec->type = MR_VALUE_F64;
                rec->v.f64 = f;
                return;
            }
        }
    }
    rec->type = MR_VALUE_STRING;
    memcpy(b->arena + b->used, v, len);
    rec->v.str = (struct mr_bytes){.ptr = b->arena + b->used, .len = len};
    b->used += len;
}

static int emit_row(struct pgcdc_decoder *d, struct pgcdc_rel *rel, const struct tcol *cols,
                    uint16_t ncols, const char *op, struct pgcdc_batch *b, struct mr_err *err)
{
    const struct pgcdc_table *t = &d->tables[rel->table];
    bool del = op[0] == 'd';
    size_t nrec = del ? 1 : 0, bytes = 0;
    for (uint16_t i = 0; i < ncols && i < rel->ncols; i++) {
        if (cols[i].kind == 't' || cols[i].kind == 'b') {
            bytes += cols[i].len;
            nrec += !del && rel->cols[i].role == ROLE_SIGNAL;
        }
    }
    if (nrec == 0) {
        return 0;
    }
    if (b->n + nrec > b->cap || b->used + bytes > b->arena_cap) {
        if (b->n == 0) {
            return MR_ERR_SET(err, MR_EPARSE,
                              "%s on %s: row needs %zu records and %zu bytes, "
                              "more than a batch holds (batch, batch_bytes)",
                              op, t->qname, nrec, bytes);
        }
        return MR_ETOOBIG;
    }
    mr_name_id asset = 0;
    int rc = row_asset(d, t, rel, cols, ncols, op, &asset, err);
    if (rc != 0) {
        return rc;
    }
    struct mr_record proto = {.time_ns = d->commit_time_ns, .asset = asset};
    proto.tags[proto.ntags++] =
        (struct mr_tag){.key = d->k_op, .value = {.ptr = op, .len = (uint32_t)strlen(op)}};
    proto.tags[proto.ntags++] =
        (struct mr_tag){.key = d->k_table, .value = {.ptr = t->qname, .len = t->qname_len}};
    for (uint16_t i = 0; i < ncols && i < rel->ncols; i++) {
        if (rel->cols[i].role == ROLE_TAG && cols[i].kind == 't' &&
            proto.ntags < MR_RECORD_MAX_TAGS) {
            memcpy(b->arena + b->used, cols[i].v, cols[i].len);
            proto.tags[proto.ntags++] = (struct mr_tag){
                .key = rel->cols[i].name, .value = {.ptr = b->arena + b->used, .len = cols[i].len}};
            b->used += cols[i].len;
        }
    }
    if (del) {
        struct mr_record *rec = &b->recs[b->n++];
        *rec = proto;
        rec->signal = d->v_deleted;
        rec->type = MR_VALUE_BOOL;
        rec->v.b = true;
        return 0;
    }
    for (uint16_t i = 0; i < ncols && i < rel->ncols; i++) {
        if (rel->cols[i].role == ROLE_SIGNAL && (cols[i].kind == 't' || cols[i].kind == 'b')) {
            struct mr_record *rec = &b->recs[b->n++];
            *rec = proto;
            rec->signal = rel->cols[i].name;
            set_value(rec, rel->cols[i].type_oid, cols[i].v, cols[i].len, b);
        }
    }
    return 0;
}

static int decode_change(struct pgcdc_decoder *d, struct reader *r, char kind,
                         struct pgcdc_batch *b, struct mr_err *err)
{
    static const char *const ops[] = {"insert", "update", "delete"};
    const char *op = kind == 'I' ? ops[0] : kind == 'U' ? ops[1] : ops[2];
    uint32_t relid = (uint32_t)rd_u(r, 4);
    char sub = (char)rd_u(r, 1);
    struct tcol cols[PGCDC_MAX_COLS];
    uint16_t ncols = 0;
    int rc = 0;
    if (kind == 'U' && (sub == 'K' || sub == 'O')) {
        rc = rd_tuple(r, cols, &ncols); /* the old row: not mapped */
        sub = (char)rd_u(r, 1);
    }
    bool ok = kind == 'D' ? (sub == 'K' || sub == 'O') : sub == 'N';
    if (rc == 0 && (!ok || r->bad)) {
        rc = MR_ECORRUPT;
    }
    if (rc == 0) {
        rc = rd_tuple(r, cols, &ncols);
    }
    if (rc != 0) {
        return MR_ERR_SET(err, rc, "malformed %s message (%s)", op,
                          rc == MR_ENOTSUP ? "too many columns" : "truncated");
    }
    struct pgcdc_rel *rel = rel_find(d, relid);
    if (rel == NULL) {
        return MR_ERR_SET(err, MR_ECORRUPT,
                          "%s on relation %" PRIu32 " before its Relation "
                          "message",
                          op, relid);
    }
    if (rel->table < 0) {
        return 0;
    }
    rc = emit_row(d, rel, cols, ncols, op, b, err);
    if (rc == 0) {
        d->rows++;
    } else if (rc != MR_ETOOBIG) {
        d->rows_skipped++;
    }
    return rc;
}

int pgcdc_decode(struct pgcdc_decoder *d, const uint8_t *msg, size_t len, struct pgcdc_batch *b,
                 struct mr_err *err)
{
    struct reader r = {.p = msg, .len = len};
    char kind = (char)rd_u(&r, 1);
    switch (kind) {
    case 'B': {
        (void)rd_u(&r, 8);
        int64_t us = (int64_t)rd_u(&r, 8);
        if (r.bad) {
            return MR_ERR_SET(err, MR_ECORRUPT, "truncated Begin message");
        }
        /* Nanoseconds since 1970 must fit an int64 (years 1678..2262); found by fuzz_pgoutput. */
        const int64_t lim = INT64_MAX / 1000 - PG_EPOCH_US;
        if (us > lim || us < -lim) {
            return MR_ERR_SET(err, MR_ECORRUPT,
                              "Begin message: commit time %" PRId64 " us is out of range", us);
        }
        d->commit_time_ns = (us + PG_EPOCH_US) * 1000;
        d->in_txn = true;
        return 0;
    }
    case 'C': {
        (void)rd_u(&r, 1);
        (void)rd_u(&r, 8);
        uint64_t end = rd_u(&r, 8);
        if (r.bad) {
            return MR_ERR_SET(err, MR_ECORRUPT, "truncated Commit message");
        }
        d->commit_end_lsn = end;
        d->in_txn = false;
        return PGCDC_COMMIT;
    }
    case 'R':
        return decode_relation(d, &r, err);
    case 'I':
    case 'U':
    case 'D':
        return decode_change(d, &r, kind, b, err);
    case 'O':
    case 'Y':
    case 'T':
    case 'M':
        return 0;
    default:
        return MR_ERR_SET(err, MR_ECORRUPT, "unknown pgoutput message '%c' (0x%02x)",
                          kind >= 32 && kind < 127 ? kind : '?', (unsigned)(uint8_t)kind);
    }
}

struct pgcdc_batch *pgcdc_batch_create(size_t cap, size_t arena_cap)
{
    size_t head = (sizeof(struct pgcdc_batch) + 15) & ~(size_t)15;
    struct pgcdc_batch *b = mr_malloc(head + cap * sizeof(struct mr_record) + arena_cap);
    if (b == NULL) {
        return NULL;
    }
    *b = (struct pgcdc_batch){.cap = cap, .arena_cap = arena_cap};
    b->recs = (struct mr_record *)((char *)b + head);
    b->arena = (char *)(b->recs + cap);
    return b;
}

void pgcdc_batch_destroy(struct pgcdc_batch *b)
{
    mr_free(b);
}

void pgcdc_lsn_format(uint64_t lsn, char *out, size_t cap)
{
    snprintf(out, cap, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
}
