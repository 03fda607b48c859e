/* Parsing requests for the HTTP server (http_server.c): the http-parser callbacks collect the
 * head into the connection's head buffer (offsets, so the buffer may grow), decode the path and
 * query, check the limits (431, 414, 413, 415) and decode gzip/deflate bodies as they arrive,
 * never holding more than max_body_bytes + 1 decoded bytes: a zip bomb is stopped at the limit,
 * not in memory. A callback that finds a problem records status and message (fail()) and stops
 * the parser; http_server.c then answers with them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "millrace/alloc.h"
#include "web/http_internal.h"

static int fail(struct mr_http_conn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct mr_http_conn *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail_msg, sizeof(c->fail_msg), fmt, ap);
    va_end(ap);
    c->fail_status = status;
    return 1; /* stops the parser */
}

static int head_append(struct mr_http_conn *c, const char *p, size_t n)
{
    if (c->head_len + n + 1 > MR_HTTP_HEAD_MAX) {
        return fail(c, 431, "request head larger than %u KiB", MR_HTTP_HEAD_MAX / 1024);
    }
    if (c->head_len + n + 1 > c->head_cap) {
        /* Room for the decoded path and query too (never longer than the URL): 2 x the max. */
        size_t ncap = c->head_cap < 1024 ? 1024 : c->head_cap;
        while (ncap < c->head_len + n + 1) {
            ncap *= 2;
        }
        char *h = mr_realloc(c->head, ncap);
        if (h == NULL) {
            return fail(c, 503, "out of memory");
        }
        c->head = h;
        c->head_cap = ncap;
    }
    memcpy(c->head + c->head_len, p, n);
    c->head_len += n;
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct mr_http_conn *c = p->data;
    c->req.method = NULL;
    c->req.url_len = c->req.path = c->req.query = c->req.nquery = c->req.nhdrs = 0;
    c->head_len = c->line_len = c->body_len = c->raw_len = 0;
    c->in_body = c->last_was_value = c->z_done = c->head_only = false;
    c->coding = 0;
    c->state = MR_HTTP_READ;
    mr_http_conn_timer(c, c->srv->opts.request_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct mr_http_conn *c = p->data;
    if (c->req.url_len + n > MR_HTTP_LINE_MAX) {
        return fail(c, 414, "request target longer than %u KiB", MR_HTTP_LINE_MAX / 1024);
    }
    c->req.url_len += (uint32_t)n;
    return head_append(c, at, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct mr_http_conn *c = p->data;
    if (c->in_body) {
        return 0; /* trailers of a chunked body: ignored (http-parser bounds their size) */
    }
    if (c->req.nhdrs == 0 || c->last_was_value) {
        if (c->req.nhdrs == MR_HTTP_HEADERS_MAX) {
            return fail(c, 431, "more than %u header lines", MR_HTTP_HEADERS_MAX);
        }
        if (head_append(c, "", 1) != 0) { /* ends the URL or the previous value */
            return 1;
        }
        c->req.hdrs[c->req.nhdrs++] = (struct mr_http_hdr){.name = (uint32_t)c->head_len};
        c->last_was_value = false;
        c->line_len = 0;
    }
    c->line_len += n;
    if (c->line_len > MR_HTTP_LINE_MAX) {
        return fail(c, 431, "a header line is longer than %u KiB", MR_HTTP_LINE_MAX / 1024);
    }
    c->req.hdrs[c->req.nhdrs - 1].name_len += (uint32_t)n;
    return head_append(c, at, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct mr_http_conn *c = p->data;
    if (c->in_body) {
        return 0;
    }
    struct mr_http_hdr *h = &c->req.hdrs[c->req.nhdrs - 1];
    if (!c->last_was_value) {
        if (head_append(c, "", 1) != 0) {
            return 1;
        }
        h->value = (uint32_t)c->head_len;
        c->last_was_value = true;
    }
    c->line_len += n;
    if (c->line_len > MR_HTTP_LINE_MAX) {
        return fail(c, 431, "a header line is longer than %u KiB", MR_HTTP_LINE_MAX / 1024);
    }
    h->value_len += (uint32_t)n;
    return head_append(c, at, n);
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) to the end of conn->head (plus '+' as space when plus); NUL-terminated.
 * Returns -1 for an encoded NUL byte (the result would be cut short). */
static int decode_append(struct mr_http_conn *c, const char *s, size_t n, bool plus)
{
    char *o = c->head + c->head_len;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        int hi, lo;
        if (ch == '%' && i + 2 < n && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)s[i + 2])) >= 0) {
            ch = hi * 16 + lo;
            if (ch == 0) {
                return -1;
            }
            i += 2;
        } else if (ch == '+' && plus) {
            ch = ' ';
        }
        *o++ = (char)ch;
    }
    *o++ = '\0';
    c->head_len = (size_t)(o - c->head);
    return 0;
}

/* Split the URL (at offset 0 of conn->head) into the decoded path and query pairs, appended to
 * conn->head. head_append reserved room: the decoded forms are never longer than the URL. */
static int url_decode(struct mr_http_conn *c)
{
    size_t ulen = c->req.url_len;
    if (c->head_len + 2 * ulen + 4 > c->head_cap) {
        char *h = mr_realloc(c->head, c->head_len + 2 * ulen + 4);
        if (h == NULL) {
            return fail(c, 503, "out of memory");
        }
        c->head = h;
        c->head_cap = c->head_len + 2 * ulen + 4;
    }
    const char *url = c->head;
    size_t start = 0;
    if (ulen > 0 && url[0] != '/' && url[0] != '*') {
        /* absolute form ("http://host/path?q"): skip scheme and authority */
        const char *sl = memchr(url, '/', ulen);
        if (sl != NULL && (size_t)(sl - url) + 1 < ulen && sl[1] == '/') {
            sl = memchr(sl + 2, '/', ulen - (size_t)(sl + 2 - url));
        }
        start = sl != NULL ? (size_t)(sl - url) : ulen;
    }
    const char *q = memchr(url + start, '?', ulen - start);
    size_t pend = q != NULL ? (size_t)(q - url) : ulen;
    const char *hash = memchr(url + start, '#', ulen - start);
    size_t qend = hash != NULL ? (size_t)(hash - url) : ulen;
    if (pend > qend) {
        pend = qend;
    }
    c->req.path = (uint32_t)c->head_len;
    if (pend == start) {
        decode_append(c, "/", 1, false);
    } else if (decode_append(c, url + start, pend - start, false) != 0) {
        return fail(c, 400, "the path contains an encoded NUL byte (%%00)");
    }
    c->req.query = (uint32_t)c->head_len;
    for (size_t i = pend + 1; q != NULL && i < qend;) {
        const char *pair = url + i;
        const char *amp = memchr(pair, '&', qend - i);
        size_t plen = amp != NULL ? (size_t)(amp - pair) : qend - i;
        i += plen + 1;
        if (plen == 0) {
            continue;
        }
        const char *eq = memchr(pair, '=', plen);
        size_t klen = eq != NULL ? (size_t)(eq - pair) : plen;
        if (decode_append(c, pair, klen, true) != 0 ||
            decode_append(c, eq != NULL ? eq + 1 : "", eq != NULL ? plen - klen - 1 : 0, true) !=
                0) {
            return fail(c, 400, "a query parameter contains an encoded NUL byte (%%00)");
        }
        c->req.nquery++;
    }
    return 0;
}

int mr_http_body_reserve(struct mr_http_conn *c, size_t need)
{
    if (need <= c->body_cap) {
        return 0;
    }
    size_t max = c->srv->opts.max_body_bytes + 2; /* the limit, one byte to detect more, NUL */
    if (need > max) {
        return MR_ETOOBIG;
    }
    size_t ncap = c->body_cap < 4096 ? 4096 : c->body_cap;
    while (ncap < need) {
        ncap *= 2;
    }
    if (ncap > max) {
        ncap = max;
    }
    uint8_t *b = mr_realloc(c->body, ncap);
    if (b == NULL) {
        return MR_ENOMEM;
    }
    c->body = b;
    c->body_cap = ncap;
    return 0;
}

static int setup_coding(struct mr_http_conn *c, const char *enc)
{
    if (enc == NULL || enc[0] == '\0' || strcasecmp(enc, "identity") == 0) {
        c->coding = 0;
        return 0;
    }
    if (strcasecmp(enc, "gzip") == 0 || strcasecmp(enc, "x-gzip") == 0) {
        c->coding = 1;
    } else if (strcasecmp(enc, "deflate") == 0) {
        c->coding = 2;
    } else {
        return fail(c, 415, "Content-Encoding '%.60s' is not supported (gzip, deflate)", enc);
    }
    if (!c->z_ready) {
        c->z = (z_stream){0};
        if (inflateInit2(&c->z, 15 + 32) != Z_OK) {
            return fail(c, 503, "out of memory");
        }
        c->z_ready = true;
    } else if (inflateReset2(&c->z, 15 + 32) != Z_OK) {
        return fail(c, 503, "cannot reset the decompressor");
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct mr_http_conn *c = p->data;
    if (head_append(c, "", 1) != 0) {
        return 1;
    }
    c->in_body = true;
    c->req.method = http_method_str((enum http_method)p->method);
    for (uint32_t i = 0; i < c->req.nhdrs; i++) { /* trim trailing blanks */
        struct mr_http_hdr *h = &c->req.hdrs[i];
        while (h->value_len > 0 && (c->head[h->value + h->value_len - 1] == ' ' ||
                                    c->head[h->value + h->value_len - 1] == '\t')) {
            c->head[h->value + --h->value_len] = '\0';
        }
        if (h->value == 0) { /* a header without a value */
            h->value = h->name + h->name_len;
        }
    }
    if (url_decode(c) != 0) {
        return 1;
    }
    size_t max = c->srv->opts.max_body_bytes;
    if (setup_coding(c, mr_http_request_header(&c->req, "Content-Encoding")) != 0) {
        return 1;
    }
    /* An encoded body may be a little larger than what it decodes to (stored blocks). */
    c->raw_limit = c->coding == 0 ? max : max + max / 16 + 4096;
    bool has_len = (p->flags & F_CONTENTLENGTH) != 0 && (p->flags & F_CHUNKED) == 0;
    if (has_len && p->content_length > c->raw_limit) {
        return fail(c, 413, "body of %llu bytes is larger than the limit of %zu bytes",
                    (unsigned long long)p->content_length, max);
    }
    /* Room for the declared length, but at most 1 MiB before the bytes arrive: a client that
     * announces a large body and sends nothing holds little. */
    size_t pre = has_len && p->content_length < MR_HTTP_KEEP_BODY ? (size_t)p->content_length + 1
                                                                  : MR_HTTP_KEEP_BODY;
    if (has_len && c->coding == 0 && mr_http_body_reserve(c, pre) != 0) {
        return fail(c, 503, "out of memory");
    }
    const char *expect = mr_http_request_header(&c->req, "Expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0 && p->http_minor >= 1 &&
        (!has_len || p->content_length > 0) && c->writes == 0) {
        mr_http_conn_continue(c);
    }
    return 0;
}

static int body_inflate(struct mr_http_conn *c, const char *at, size_t n)
{
    size_t max = c->srv->opts.max_body_bytes;
    if (c->coding == 2 && c->z.total_in == 0 && n > 0 && (at[0] & 0x0f) != 8) {
        inflateReset2(&c->z, -15); /* "deflate" sent raw, without the zlib header */
    }
    c->z.next_in = (Bytef *)at;
    c->z.avail_in = (uInt)n;
    while (c->z.avail_in > 0) {
        if (c->z_done) { /* another gzip member follows */
            if (inflateReset(&c->z) != Z_OK) {
                return fail(c, 400, "bad data after the compressed body");
            }
            c->z_done = false;
        }
        /* Never more than max + 1 decoded bytes: a bomb stops here, not in memory. */
        size_t want = c->body_len + 64 * 1024 + 1;
        if (want > max + 2) {
            want = max + 2; /* max + 1 decoded bytes and the NUL: never more */
        }
        if (mr_http_body_reserve(c, want) != 0 && c->body_cap <= c->body_len + 1) {
            return fail(c, 503, "out of memory");
        }
        size_t room = c->body_cap - 1 - c->body_len;
        if (c->body_len + room > max + 1) {
            room = max + 1 - c->body_len;
        }
        c->z.next_out = c->body + c->body_len;
        c->z.avail_out = (uInt)room;
        int zr = inflate(&c->z, Z_NO_FLUSH);
        c->body_len += room - c->z.avail_out;
        if (c->body_len > max) {
            return fail(c, 413, "decoded body is larger than the limit of %zu bytes", max);
        }
        if (zr == Z_STREAM_END) {
            c->z_done = true;
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            return fail(c, 400, "cannot decode the %s body: %s",
                        c->coding == 1 ? "gzip" : "deflate",
                        c->z.msg != NULL ? c->z.msg : "corrupt data");
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct mr_http_conn *c = p->data;
    size_t max = c->srv->opts.max_body_bytes;
    c->raw_len += n;
    if (c->raw_len > c->raw_limit) {
        return fail(c, 413, "body is larger than the limit of %zu bytes", max);
    }
    if (c->coding != 0) {
        return body_inflate(c, at, n);
    }
    if (mr_http_body_reserve(c, c->body_len + n + 1) != 0) {
        return fail(c, 503, "out of memory");
    }
    if (at != (const char *)c->body + c->body_len) { /* else read there directly */
        memcpy(c->body + c->body_len, at, n);
    }
    c->body_len += n;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct mr_http_conn *c = p->data;
    if (c->coding != 0 && c->raw_len > 0 && !c->z_done) {
        return fail(c, 400, "the %s body ends before the end of its compressed data",
                    c->coding == 1 ? "gzip" : "deflate");
    }
    if (c->body != NULL) {
        c->body[c->body_len] = '\0';
    }
    uv_timer_stop(&c->timer);
    http_parser_pause(p, 1);
    return 0;
}

const http_parser_settings mr_http_parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};
