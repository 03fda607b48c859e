/* Operator state streams for checkpoints (millrace/state.h). */
#include <string.h>

#include "millrace/alloc.h"
#include "millrace/state.h"

#define DEFAULT_MAX ((size_t)1 << 30)

void mr_state_writer_init(struct mr_state_writer *w, const struct mr_names *names, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->names = names;
    w->max = max != 0 ? max : DEFAULT_MAX;
}

void mr_state_writer_fini(struct mr_state_writer *w)
{
    mr_free(w->buf);
    memset(w, 0, sizeof(*w));
}

void mr_state_writer_reset(struct mr_state_writer *w)
{
    w->len = 0;
    w->err = 0;
}

static int put_raw(struct mr_state_writer *w, const void *p, size_t n)
{
    if (w->err != 0) {
        return w->err;
    }
    if (n > w->max - w->len) {
        return w->err = MR_ETOOBIG;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap != 0 ? w->cap : 4096;
        while (cap < w->len + n) {
            cap *= 2;
        }
        uint8_t *nb = mr_realloc(w->buf, cap);
        if (nb == NULL) {
            return w->err = MR_ENOMEM;
        }
        w->buf = nb;
        w->cap = cap;
    }
    if (n > 0) {
        memcpy(w->buf + w->len, p, n);
    }
    w->len += n;
    return 0;
}

int mr_state_put_u64(struct mr_state_writer *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    return put_raw(w, b, sizeof(b));
}

int mr_state_put_i64(struct mr_state_writer *w, int64_t v)
{
    return mr_state_put_u64(w, (uint64_t)v);
}

int mr_state_put_f64(struct mr_state_writer *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return mr_state_put_u64(w, u);
}

int mr_state_put_bytes(struct mr_state_writer *w, const void *p, size_t n)
{
    int rc = mr_state_put_u64(w, n);
    return rc != 0 ? rc : put_raw(w, p, n);
}

int mr_state_put_name(struct mr_state_writer *w, mr_name_id id)
{
    if (id == 0) {
        return mr_state_put_bytes(w, "", 0);
    }
    size_t len = 0;
    const char *s = w->names != NULL ? mr_names_str(w->names, id, &len) : NULL;
    if (s == NULL) {
        if (w->err == 0) {
            w->err = MR_EINVAL;
        }
        return w->err;
    }
    return mr_state_put_bytes(w, s, len);
}

void mr_state_reader_init(struct mr_state_reader *r, struct mr_names *names, const void *buf,
                          size_t len)
{
    r->buf = buf;
    r->len = len;
    r->pos = 0;
    r->err = 0;
    r->names = names;
}

int mr_state_get_u64(struct mr_state_reader *r, uint64_t *v)
{
    if (r->err != 0) {
        return r->err;
    }
    if (r->len - r->pos < 8) {
        return r->err = MR_ECORRUPT;
    }
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) {
        x |= (uint64_t)r->buf[r->pos + (size_t)i] << (8 * i);
    }
    r->pos += 8;
    *v = x;
    return 0;
}

int mr_state_get_i64(struct mr_state_reader *r, int64_t *v)
{
    uint64_t u;
    int rc = mr_state_get_u64(r, &u);
    if (rc == 0) {
        *v = (int64_t)u;
    }
    return rc;
}

int mr_state_get_f64(struct mr_state_reader *r, double *v)
{
    uint64_t u;
    int rc = mr_state_get_u64(r, &u);
    if (rc == 0) {
        memcpy(v, &u, sizeof(*v));
    }
    return rc;
}

int mr_state_get_bytes(struct mr_state_reader *r, const void **p, size_t *n)
{
    uint64_t len;
    int rc = mr_state_get_u64(r, &len);
    if (rc != 0) {
        return rc;
    }
    if (len > r->len - r->pos) {
        return r->err = MR_ECORRUPT;
    }
    *p = r->buf + r->pos;
    *n = (size_t)len;
    r->pos += (size_t)len;
    return 0;
}

int mr_state_get_name(struct mr_state_reader *r, mr_name_id *id)
{
    const void *p;
    size_t n;
    int rc = mr_state_get_bytes(r, &p, &n);
    if (rc != 0) {
        return rc;
    }
    if (n == 0) {
        *id = 0;
        return 0;
    }
    if (r->names == NULL || memchr(p, 0, n) != NULL) {
        return r->err = MR_ECORRUPT;
    }
    rc = mr_names_intern(r->names, p, n, id);
    if (rc != 0) {
        r->err = rc;
    }
    return rc;
}
