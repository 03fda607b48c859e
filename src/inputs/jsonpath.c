/* Allocation-free JSON walker (see jsonpath.h). Recursive descent bounded by MR_JSON_MAX_DEPTH;
 * the grammar is RFC 8259's, strictly (no comments, no trailing commas, no NaN), because a
 * payload we half-understand is worse than one we reject with its byte offset. */
#include "inputs/jsonpath.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct walker {
    const char *s;
    size_t n;
    size_t i;
    char path[MR_JSON_MAX_PATH + 1];
    size_t plen;
    mr_json_leaf_cb cb;
    void *arg;
    struct mr_err *err;
};

static int value(struct walker *w, int depth);

static int bad(struct walker *w, const char *what)
{
    return MR_ERR_SET(w->err, MR_EPARSE, "JSON byte %zu: %s", w->i + 1, what);
}

static void skip_ws(struct walker *w)
{
    while (w->i < w->n) {
        char ch = w->s[w->i];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            return;
        }
        w->i++;
    }
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char ch = p[k];
        v <<= 4;
        if (ch >= '0' && ch <= '9') {
            v |= (unsigned)(ch - '0');
        } else if (ch >= 'a' && ch <= 'f') {
            v |= (unsigned)(ch - 'a' + 10);
        } else if (ch >= 'A' && ch <= 'F') {
            v |= (unsigned)(ch - 'A' + 10);
        } else {
            return MR_EPARSE;
        }
    }
    *out = v;
    return 0;
}

/* A string at the opening quote: checks its escapes, leaves w->i after the closing quote. */
static int scan_string(struct walker *w, const char **raw, size_t *len, bool *escaped)
{
    size_t start = ++w->i;
    *escaped = false;
    while (w->i < w->n) {
        unsigned char ch = (unsigned char)w->s[w->i];
        if (ch == '"') {
            *raw = w->s + start;
            *len = w->i - start;
            w->i++;
            return 0;
        }
        if (ch < 0x20) {
            return bad(w, "control character in a string");
        }
        if (ch == '\\') {
            unsigned u;
            *escaped = true;
            if (w->i + 1 >= w->n) {
                break;
            }
            char e = w->s[w->i + 1];
            if (e == 'u') {
                if (w->i + 6 > w->n || hex4(w->s + w->i + 2, &u) != 0) {
                    return bad(w, "bad \\u escape");
                }
                w->i += 6;
                continue;
            }
            if (strchr("\"\\/bfnrt", e) == NULL || e == '\0') {
                return bad(w, "bad escape in a string");
            }
            w->i += 2;
            continue;
        }
        w->i++;
    }
    return bad(w, "string without its closing quote");
}

static int scan_digits(struct walker *w)
{
    size_t start = w->i;
    while (w->i < w->n && w->s[w->i] >= '0' && w->s[w->i] <= '9') {
        w->i++;
    }
    return w->i > start ? 0 : MR_EPARSE;
}

static int scan_number(struct walker *w, struct mr_json_leaf *leaf)
{
    size_t start = w->i;
    bool integral = true;
    if (w->s[w->i] == '-') {
        w->i++;
    }
    if (w->i < w->n && w->s[w->i] == '0') {
        w->i++;
    } else if (scan_digits(w) != 0) {
        return bad(w, "bad number");
    }
    if (w->i < w->n && w->s[w->i] == '.') {
        w->i++;
        integral = false;
        if (scan_digits(w) != 0) {
            return bad(w, "bad number: digits expected after '.'");
        }
    }
    if (w->i < w->n && (w->s[w->i] == 'e' || w->s[w->i] == 'E')) {
        w->i++;
        integral = false;
        if (w->i < w->n && (w->s[w->i] == '+' || w->s[w->i] == '-')) {
            w->i++;
        }
        if (scan_digits(w) != 0) {
            return bad(w, "bad number: digits expected in the exponent");
        }
    }
    char text[128];
    size_t len = w->i - start;
    if (len >= sizeof(text)) {
        return bad(w, "number longer than 127 characters");
    }
    memcpy(text, w->s + start, len);
    text[len] = '\0';
    leaf->kind = MR_JSON_NUMBER;
    leaf->raw = w->s + start;
    leaf->raw_len = len;
    leaf->num = strtod(text, NULL);
    leaf->is_int = false;
    if (integral) {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (errno == 0 && *end == '\0') {
            leaf->is_int = true;
            leaf->i = (int64_t)v;
        }
    }
    return 0;
}

static int literal(struct walker *w, const char *word, struct mr_json_leaf *leaf)
{
    size_t len = strlen(word);
    if (w->n - w->i < len || memcmp(w->s + w->i, word, len) != 0) {
        return bad(w, "unexpected character");
    }
    leaf->raw = w->s + w->i;
    leaf->raw_len = len;
    w->i += len;
    return 0;
}

static int scalar(struct walker *w)
{
    struct mr_json_leaf leaf = {.path = w->path, .path_len = w->plen};
    int rc;
    char ch = w->s[w->i];
    if (ch == '"') {
        leaf.kind = MR_JSON_STRING;
        rc = scan_string(w, &leaf.raw, &leaf.raw_len, &leaf.escaped);
    } else if (ch == 't' || ch == 'f') {
        leaf.kind = MR_JSON_BOOL;
        leaf.b = ch == 't';
        rc = literal(w, ch == 't' ? "true" : "false", &leaf);
    } else if (ch == 'n') {
        leaf.kind = MR_JSON_NULL;
        rc = literal(w, "null", &leaf);
    } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
        rc = scan_number(w, &leaf);
    } else {
        return bad(w, "unexpected character");
    }
    if (rc != 0) {
        return rc;
    }
    w->path[w->plen] = '\0';
    return w->cb(w->arg, &leaf);
}

/* Append ".seg" (or "seg" at the root) to the path. */
static int push(struct walker *w, const char *seg, size_t len, bool escaped)
{
    size_t dot = w->plen > 0 ? 1 : 0;
    if (w->plen + dot + len > MR_JSON_MAX_PATH) {
        return MR_ERR_SET(w->err, MR_ETOOBIG, "JSON byte %zu: path longer than %d bytes", w->i,
                          MR_JSON_MAX_PATH);
    }
    if (dot) {
        w->path[w->plen++] = '.';
    }
    if (escaped) {
        long k = mr_json_unescape(seg, len, w->path + w->plen, MR_JSON_MAX_PATH - w->plen);
        if (k < 0) {
            return bad(w, "bad escape in a key");
        }
        w->plen += (size_t)k;
    } else {
        memcpy(w->path + w->plen, seg, len);
        w->plen += len;
    }
    w->path[w->plen] = '\0';
    return 0;
}

static int object(struct walker *w, int depth)
{
    w->i++; /* { */
    skip_ws(w);
    if (w->i < w->n && w->s[w->i] == '}') {
        w->i++;
        return 0;
    }
    size_t base = w->plen;
    for (;;) {
        const char *key;
        size_t klen;
        bool esc;
        int rc;
        if (w->i >= w->n || w->s[w->i] != '"') {
            return bad(w, "expected a key in quotes");
        }
        if ((rc = scan_string(w, &key, &klen, &esc)) != 0 || (rc = push(w, key, klen, esc)) != 0) {
            return rc;
        }
        skip_ws(w);
        if (w->i >= w->n || w->s[w->i] != ':') {
            return bad(w, "expected ':' after a key");
        }
        w->i++;
        if ((rc = value(w, depth + 1)) != 0) {
            return rc;
        }
        w->plen = base;
        w->path[base] = '\0';
        skip_ws(w);
        if (w->i < w->n && w->s[w->i] == ',') {
            w->i++;
            skip_ws(w);
            continue;
        }
        if (w->i < w->n && w->s[w->i] == '}') {
            w->i++;
            return 0;
        }
        return bad(w, "expected ',' or '}'");
    }
}

static int array(struct walker *w, int depth)
{
    w->i++; /* [ */
    skip_ws(w);
    if (w->i < w->n && w->s[w->i] == ']') {
        w->i++;
        return 0;
    }
    size_t base = w->plen;
    for (size_t idx = 0;; idx++) {
        char num[24];
        int k = snprintf(num, sizeof(num), "%zu", idx);
        int rc = push(w, num, (size_t)k, false);
        if (rc != 0 || (rc = value(w, depth + 1)) != 0) {
            return rc;
        }
        w->plen = base;
        w->path[base] = '\0';
        skip_ws(w);
        if (w->i < w->n && w->s[w->i] == ',') {
            w->i++;
            continue;
        }
        if (w->i < w->n && w->s[w->i] == ']') {
            w->i++;
            return 0;
        }
        return bad(w, "expected ',' or ']'");
    }
}

static int value(struct walker *w, int depth)
{
    if (depth > MR_JSON_MAX_DEPTH) {
        return MR_ERR_SET(w->err, MR_ETOOBIG, "JSON byte %zu: nested deeper than %d", w->i + 1,
                          MR_JSON_MAX_DEPTH);
    }
    skip_ws(w);
    if (w->i >= w->n) {
        return bad(w, "value expected");
    }
    if (w->s[w->i] == '{') {
        return object(w, depth);
    }
    if (w->s[w->i] == '[') {
        return array(w, depth);
    }
    return scalar(w);
}

int mr_json_walk(const char *text, size_t len, mr_json_leaf_cb cb, void *arg, struct mr_err *err)
{
    struct walker w = {.s = text, .n = len, .cb = cb, .arg = arg, .err = err};
    int rc = value(&w, 0);
    if (rc != 0) {
        return rc;
    }
    skip_ws(&w);
    return w.i == w.n ? 0 : bad(&w, "unexpected text after the JSON value");
}

static size_t utf8_put(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

long mr_json_unescape(const char *raw, size_t len, char *out, size_t cap)
{
    static const char from[] = "\"\\/bfnrt";
    static const char to[] = "\"\\/\b\f\n\r\t";
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        char tmp[4];
        size_t n = 1;
        tmp[0] = raw[i];
        if (raw[i] == '\\') {
            if (i + 1 >= len) {
                return MR_EPARSE;
            }
            char e = raw[++i];
            const char *p = e != '\0' ? strchr(from, e) : NULL;
            unsigned cp, lo;
            if (p != NULL) {
                tmp[0] = to[p - from];
            } else if (e == 'u' && i + 4 < len && hex4(raw + i + 1, &cp) == 0) {
                i += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < len && raw[i + 1] == '\\' &&
                    raw[i + 2] == 'u' && hex4(raw + i + 3, &lo) == 0 && lo >= 0xDC00 &&
                    lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                } else if (cp >= 0xD800 && cp < 0xE000) {
                    cp = 0xFFFD; /* a lone surrogate: the replacement character */
                }
                n = utf8_put(tmp, cp);
            } else {
                return MR_EPARSE;
            }
        }
        if (cap - k < n) {
            return MR_ETOOBIG;
        }
        memcpy(out + k, tmp, n);
        k += n;
    }
    return (long)k;
}
