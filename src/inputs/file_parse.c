/* CSV rows, timestamps and numbers for the file input; see file_parse.h.
 *
 * These run once per line (rows, times) or once per cell (numbers) of files that may hold
 * millions of rows, so they avoid what costs there: no allocation, no locale, and a fast path
 * for plain decimals that gives the same double strtod would (Clinger's exact case) and falls
 * back to strtod for everything else. */
#include "inputs/file_parse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "millrace/record.h"

#define NS_PER_SEC 1000000000LL

/* ---- CSV --------------------------------------------------------------------------------- */

static size_t count_newlines(const char *p, size_t n)
{
    size_t k = 0;
    const char *end = p + n;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        k++;
        p++;
    }
    return k;
}

/* A bad row: skip to the end of its line (or of the data at EOF). */
static int csv_bad(const char *p, size_t n, size_t from, bool eof, struct mr_csv_row *row,
                   const char *why)
{
    const char *nl = memchr(p + from, '\n', n - from);
    if (nl == NULL && !eof) {
        return MR_CSV_MORE;
    }
    row->consumed = nl != NULL ? (size_t)(nl - p) + 1 : n;
    row->newlines = count_newlines(p, row->consumed);
    row->why = why;
    return MR_EPARSE;
}

/* A quoted field starting after its opening quote at p[*i]. Returns 0 with f filled and *i
 * after the closing quote, MR_CSV_MORE, or MR_EPARSE (unterminated at EOF). */
static int csv_quoted(const char *p, size_t n, bool eof, size_t *i, struct mr_csv_field *f,
                      size_t *newlines)
{
    size_t start = *i;
    size_t pos = start;
    bool escaped = false;
    for (;;) {
        const char *q = memchr(p + pos, '"', n - pos);
        if (q == NULL) {
            return eof ? MR_EPARSE : MR_CSV_MORE;
        }
        size_t j = (size_t)(q - p);
        if (j + 1 == n && !eof) {
            return MR_CSV_MORE; /* a doubled quote may follow */
        }
        if (j + 1 < n && p[j + 1] == '"') {
            escaped = true;
            pos = j + 2;
            continue;
        }
        *newlines += count_newlines(p + start, j - start);
        *f = (struct mr_csv_field){
            .ptr = p + start, .len = (uint32_t)(j - start), .quoted = true, .escaped = escaped};
        *i = j + 1;
        return 0;
    }
}

/* Where the row ends after a field that stopped at p[i] (not the delimiter): 0 with the row
 * completed, MR_CSV_MORE, or 1 when p[i] is not a line end. */
static int csv_row_end(const char *p, size_t n, bool eof, size_t i, struct mr_csv_row *row)
{
    if (i == n) {
        if (!eof) {
            return MR_CSV_MORE;
        }
        row->consumed = n;
        return 0;
    }
    if (p[i] == '\n') {
        row->consumed = i + 1;
        row->newlines++;
        return 0;
    }
    if (p[i] == '\r') {
        if (i + 1 == n && !eof) {
            return MR_CSV_MORE;
        }
        if (i + 1 == n || p[i + 1] == '\n') {
            row->consumed = i + 1 < n ? i + 2 : n;
            row->newlines += i + 1 < n;
            return 0;
        }
    }
    return 1;
}

int mr_csv_split(const char *p, size_t n, bool eof, char delim, struct mr_csv_row *row)
{
    size_t i = 0;
    row->nfields = 0;
    row->newlines = 0;
    row->why = NULL;
    if (n == 0) {
        return MR_CSV_MORE; /* nothing left, even at EOF */
    }
    for (;;) {
        if (row->nfields == MR_CSV_MAX_FIELDS) {
            return csv_bad(p, n, i, eof, row, "more fields than the limit of 1024");
        }
        struct mr_csv_field *f = &row->fields[row->nfields++];
        if (i < n && p[i] == '"') {
            i++;
            int rc = csv_quoted(p, n, eof, &i, f, &row->newlines);
            if (rc == MR_EPARSE) {
                row->consumed = n;
                row->newlines = count_newlines(p, n);
                row->why = "a quoted field is not closed before the end of the file";
                return MR_EPARSE;
            }
            if (rc != 0) {
                return rc;
            }
            if (i < n && p[i] == delim) {
                i++;
                continue;
            }
            rc = csv_row_end(p, n, eof, i, row);
            if (rc == 1) {
                return csv_bad(p, n, i, eof, row, "text after a closing quote");
            }
            return rc;
        }
        size_t start = i;
        while (i < n && p[i] != delim && p[i] != '\n') {
            i++;
        }
        if (i == n && !eof) {
            return MR_CSV_MORE;
        }
        size_t len = i - start;
        if (len > 0 && p[start + len - 1] == '\r' && (i == n || p[i] == '\n')) {
            len--; /* CRLF line end */
        }
        *f = (struct mr_csv_field){.ptr = p + start, .len = (uint32_t)len};
        if (i < n && p[i] == delim) {
            i++;
            continue;
        }
        row->consumed = i < n ? i + 1 : n;
        row->newlines += i < n;
        return 0;
    }
}

long mr_csv_unescape(const struct mr_csv_field *f, char *out, size_t cap)
{
    size_t o = 0;
    for (uint32_t k = 0; k < f->len; k++) {
        if (o == cap) {
            return -1;
        }
        out[o++] = f->ptr[k];
        if (f->escaped && f->ptr[k] == '"' && k + 1 < f->len && f->ptr[k + 1] == '"') {
            k++;
        }
    }
    return (long)o;
}

/* ---- numbers ----------------------------------------------------------------------------- */

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && is_blank(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && is_blank((*s)[*len - 1])) {
        (*len)--;
    }
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Plain decimals whose digits fit 2^53 and whose power of ten is exact (|e| <= 22): one
 * correctly rounded multiplication or division gives exactly strtod's answer. Returns false
 * when the text needs strtod. */
static bool number_fast(const char *s, size_t len, double *v)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
    }
    uint64_t m = 0;
    int digits = 0;
    int exp10 = 0;
    bool any = false;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        any = true;
        if (m == 0 && s[i] == '0') {
            continue;
        }
        if (++digits > 15) {
            return false;
        }
        m = m * 10 + (uint64_t)(s[i] - '0');
    }
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            any = true;
            if (m == 0 && s[i] == '0') {
                exp10--;
                continue;
            }
            if (++digits > 15) {
                return false;
            }
            m = m * 10 + (uint64_t)(s[i] - '0');
            exp10--;
        }
    }
    if (!any || i != len || exp10 < -22) {
        return false;
    }
    double d = (double)m;
    d = exp10 < 0 ? d / pow10_exact[-exp10] : d;
    *v = neg ? -d : d;
    return true;
}

int mr_number_parse(const char *s, size_t len, double *v)
{
    char text[64];
    char *end;
    trim(&s, &len);
    if (len == 0) {
        return MR_EPARSE;
    }
    if (number_fast(s, len, v)) {
        return 0;
    }
    if (len >= sizeof(text) || memchr(s, 'x', len) != NULL || memchr(s, 'X', len) != NULL) {
        return MR_EPARSE;
    }
    memcpy(text, s, len);
    text[len] = '\0';
    double d = strtod(text, &end);
    if (end != text + len) {
        return MR_EPARSE;
    }
    if (!isfinite(d)) {
        return 1;
    }
    *v = d;
    return 0;
}

/* ---- timestamps -------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (as in src/core/record_json.c). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Offsets: "Z", "UTC", "+hh:mm", "+hhmm", "+hh" (and '-'). Returns bytes used (0: none). */
static size_t offset_scan(const char *s, size_t len, int64_t *off)
{
    if (len >= 3 && memcmp(s, "UTC", 3) == 0) {
        *off = 0;
        return 3;
    }
    if (len >= 1 && (s[0] == 'Z' || s[0] == 'z')) {
        *off = 0;
        return 1;
    }
    if (len < 3 || (s[0] != '+' && s[0] != '-') || s[1] < '0' || s[1] > '9' || s[2] < '0' ||
        s[2] > '9') {
        return 0;
    }
    int64_t hh = (s[1] - '0') * 10 + (s[2] - '0');
    int64_t mm = 0;
    size_t used = 3;
    size_t at = len > 3 && s[3] == ':' ? 4 : 3;
    if (len >= at + 2 && s[at] >= '0' && s[at] <= '9' && s[at + 1] >= '0' && s[at + 1] <= '9') {
        mm = (s[at] - '0') * 10 + (s[at + 1] - '0');
        used = at + 2;
    }
    if (hh > 23 || mm > 59) {
        return 0;
    }
    *off = (s[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    return used;
}

static const char *const month_names[12] = {"january",   "february", "march",    "april",
                                            "may",       "june",     "july",     "august",
                                            "september", "october",  "november", "december"};

static int lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

/* An English month name or its three-letter abbreviation; returns bytes used (0: none). */
static size_t month_scan(const char *s, size_t len, int64_t *month)
{
    for (int m = 0; m < 12; m++) {
        const char *name = month_names[m];
        size_t k = 0;
        while (k < len && name[k] != '\0' && lower(s[k]) == name[k]) {
            k++;
        }
        if (name[k] == '\0' || k == 3) {
            *month = m + 1;
            return k;
        }
    }
    return 0;
}

/* Fields a pattern fills. */
struct tm_parts {
    int64_t year, month, day, yday, hour, minute, second, frac, offset;
    int pm; /* -1: no %p, 0: AM, 1: PM */
    bool hour12, has_offset, has_yday;
};

/* At most width digits (at least one) into *v; returns bytes used (0: no digit). */
static size_t digits_scan(const char *s, size_t len, size_t width, int64_t *v)
{
    size_t k = 0;
    int64_t acc = 0;
    while (k < width && k < len && s[k] >= '0' && s[k] <= '9') {
        acc = acc * 10 + (s[k] - '0');
        k++;
    }
    *v = acc;
    return k;
}

/* 1 to 9 fraction digits into ns; returns bytes used (0: none). */
static size_t frac_scan(const char *s, size_t len, int64_t *frac)
{
    int64_t v = 0;
    size_t k = digits_scan(s, len, 9, &v);
    for (size_t i = k; i < 9; i++) {
        v *= 10;
    }
    *frac = v;
    return k;
}

static int pattern_scan(const char *pat, const char *s, size_t len, size_t *pos,
                        struct tm_parts *t);

/* One directive (the character after '%') at s[*pos]; MR_EPARSE when it does not match. */
static int directive_scan(char d, char next_pat, const char *s, size_t len, size_t *pos,
                          struct tm_parts *t)
{
    const char *at = s + *pos;
    size_t rest = len - *pos;
    size_t used = 0;
    switch (d) {
    case 'Y':
        used = digits_scan(at, rest, 4, &t->year);
        break;
    case 'y':
        used = digits_scan(at, rest, 2, &t->year);
        t->year += t->year >= 69 ? 1900 : 2000;
        break;
    case 'm':
        used = digits_scan(at, rest, 2, &t->month);
        break;
    case 'd':
    case 'e':
        used = digits_scan(at, rest, 2, &t->day);
        break;
    case 'j':
        used = digits_scan(at, rest, 3, &t->yday);
        t->has_yday = true;
        break;
    case 'H':
        used = digits_scan(at, rest, 2, &t->hour);
        break;
    case 'I':
        used = digits_scan(at, rest, 2, &t->hour);
        t->hour12 = true;
        break;
    case 'M':
        used = digits_scan(at, rest, 2, &t->minute);
        break;
    case 'S':
        used = digits_scan(at, rest, 2, &t->second);
        if (used > 0 && next_pat != '.' && next_pat != ',' && used + 1 < rest &&
            (at[used] == '.' || at[used] == ',')) {
            size_t f = frac_scan(at + used + 1, rest - used - 1, &t->frac);
            used += f > 0 ? f + 1 : 0;
        }
        break;
    case 'f':
        used = frac_scan(at, rest, &t->frac);
        break;
    case 'p':
        if (rest >= 2 && (lower(at[0]) == 'a' || lower(at[0]) == 'p') && lower(at[1]) == 'm') {
            t->pm = lower(at[0]) == 'p';
            used = 2;
        }
        break;
    case 'b':
    case 'B':
    case 'h':
        used = month_scan(at, rest, &t->month);
        break;
    case 'z':
        used = offset_scan(at, rest, &t->offset);
        t->has_offset = used > 0;
        break;
    case 'T':
    case 'F':
        return pattern_scan(d == 'T' ? "%H:%M:%S" : "%Y-%m-%d", s, len, pos, t);
    case '%':
        used = rest > 0 && at[0] == '%';
        break;
    default:
        return MR_EPARSE;
    }
    if (used == 0) {
        return MR_EPARSE;
    }
    *pos += used;
    return 0;
}

static int pattern_scan(const char *pat, const char *s, size_t len, size_t *pos, struct tm_parts *t)
{
    for (const char *p = pat; *p != '\0'; p++) {
        if (*p == '%') {
            if (p[1] == '\0') {
                return MR_EPARSE;
            }
            int rc = directive_scan(p[1], p[2] == '\0' ? '\0' : p[2], s, len, pos, t);
            if (rc != 0) {
                return rc;
            }
            p++;
        } else if (is_blank(*p)) {
            while (*pos < len && is_blank(s[*pos])) {
                (*pos)++;
            }
        } else if (*pos < len && s[*pos] == *p) {
            (*pos)++;
        } else {
            return MR_EPARSE;
        }
    }
    return 0;
}

/* Whole seconds plus fraction into ns, with overflow checks. */
static int ns_from_secs(int64_t secs, int64_t frac, int64_t *ns)
{
    int64_t v;
    if (__builtin_mul_overflow(secs, NS_PER_SEC, &v) || __builtin_add_overflow(v, frac, &v)) {
        return MR_ERANGE;
    }
    *ns = v;
    return 0;
}

static int parts_to_ns(struct tm_parts *t, int64_t default_offset, int64_t *ns)
{
    if (t->hour12) {
        if (t->hour < 1 || t->hour > 12) {
            return MR_EPARSE;
        }
        t->hour = t->hour % 12 + (t->pm == 1 ? 12 : 0);
    } else if (t->pm >= 0 && t->hour >= 1 && t->hour <= 12) {
        t->hour = t->hour % 12 + (t->pm == 1 ? 12 : 0); /* %H with %p: read as 12-hour */
    }
    if (t->has_yday) {
        if (t->yday < 1 || t->yday > (is_leap(t->year) ? 366 : 365)) {
            return MR_EPARSE;
        }
        t->month = 1;
        t->day = t->yday;
    } else if (t->month < 1 || t->month > 12 || t->day < 1 ||
               t->day > days_in_month(t->year, (unsigned)t->month)) {
        return MR_EPARSE;
    }
    if (t->hour > 23 || t->minute > 59 || t->second > 59) {
        return MR_EPARSE;
    }
    int64_t off = t->has_offset ? t->offset : default_offset;
    int64_t days = days_from_civil(t->year, (unsigned)t->month, 1) + t->day - 1;
    int64_t secs = days * 86400 + t->hour * 3600 + t->minute * 60 + t->second - off;
    return ns_from_secs(secs, t->frac, ns);
}

/* Decimal "[-]digits[.digits]" (or with an exponent, via strtod) scaled by 10^(9 - scale_digits)
 * ns per unit: unix_s has 9 fraction digits of ns, unix_ms 6, unix_us 3, unix_ns 0. */
static int unix_parse(const char *s, size_t len, int frac_digits, int64_t *ns)
{
    static const int64_t unit_ns[] = {1,      10,      100,      1000,      10000,
                                      100000, 1000000, 10000000, 100000000, 1000000000};
    size_t i = 0;
    bool neg = len > 0 && s[0] == '-';
    i += len > 0 && (s[0] == '-' || s[0] == '+');
    int64_t whole = 0;
    size_t start = i;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        if (__builtin_mul_overflow(whole, 10, &whole) ||
            __builtin_add_overflow(whole, s[i] - '0', &whole)) {
            return MR_ERANGE;
        }
    }
    bool any = i > start;
    int64_t frac = 0;
    if (i < len && s[i] == '.') {
        int k = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, k++) {
            any = true;
            if (k < frac_digits) {
                frac = frac * 10 + (s[i] - '0');
            }
        }
        for (; k < frac_digits; k++) {
            frac *= 10;
        }
    }
    if (!any) {
        return MR_EPARSE;
    }
    if (i != len) {
        double d;
        /* 1.79553974e9 as a spreadsheet may write it: exact to what a double holds. */
        if (mr_number_parse(s, len, &d) != 0) {
            return MR_EPARSE;
        }
        d *= (double)unit_ns[frac_digits];
        if (!(d > -9.2e18 && d < 9.2e18)) {
            return MR_ERANGE;
        }
        *ns = (int64_t)llround(d);
        return 0;
    }
    int64_t v;
    if (__builtin_mul_overflow(whole, unit_ns[frac_digits], &v) ||
        __builtin_add_overflow(v, frac, &v)) {
        return MR_ERANGE;
    }
    *ns = neg ? -v : v;
    return 0;
}

/* RFC 3339; a time without an offset ("2026-11-24 16:49:00.5") is in the configured zone. */
static int rfc3339_parse(const struct mr_time_format *tf, const char *s, size_t len, int64_t *ns)
{
    char text[40];
    if (mr_time_parse_rfc3339(s, len, ns) == 0) {
        return 0;
    }
    if (len < 19 || len + 2 > sizeof(text) || s[len - 1] < '0' || s[len - 1] > '9') {
        return MR_EPARSE;
    }
    memcpy(text, s, len);
    text[len] = 'Z';
    int64_t v;
    int rc = mr_time_parse_rfc3339(text, len + 1, &v);
    if (rc != 0) {
        return rc;
    }
    if (__builtin_sub_overflow(v, tf->tz_offset_s * NS_PER_SEC, &v)) {
        return MR_ERANGE;
    }
    *ns = v;
    return 0;
}

int mr_time_format_parse(const struct mr_time_format *tf, const char *s, size_t len, int64_t *ns)
{
    trim(&s, &len);
    if (len == 0) {
        return MR_EPARSE;
    }
    switch (tf->kind) {
    case MR_TIME_RFC3339:
        return rfc3339_parse(tf, s, len, ns);
    case MR_TIME_UNIX_S:
        return unix_parse(s, len, 9, ns);
    case MR_TIME_UNIX_MS:
        return unix_parse(s, len, 6, ns);
    case MR_TIME_UNIX_US:
        return unix_parse(s, len, 3, ns);
    case MR_TIME_UNIX_NS:
        return unix_parse(s, len, 0, ns);
    case MR_TIME_PATTERN:
        break;
    }
    struct tm_parts t = {.year = 1970, .month = 1, .day = 1, .pm = -1};
    size_t pos = 0;
    int rc = pattern_scan(tf->pattern, s, len, &pos, &t);
    if (rc != 0 || pos != len) {
        return MR_EPARSE;
    }
    return parts_to_ns(&t, tf->tz_offset_s, ns);
}

int mr_time_format_init(struct mr_time_format *tf, const char *format, const char *timezone,
                        struct mr_err *err)
{
    static const char *const kinds[] = {"rfc3339", "unix_s", "unix_ms", "unix_us", "unix_ns"};
    struct mr_time_format out = {.kind = MR_TIME_PATTERN, .pattern = format};
    if (format == NULL) {
        out.kind = MR_TIME_RFC3339;
    }
    for (size_t i = 0; format != NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(format, kinds[i]) == 0) {
            out.kind = (enum mr_time_kind)i;
        }
    }
    if (out.kind == MR_TIME_PATTERN) {
        if (strchr(format, '%') == NULL) {
            return MR_ERR_SET(err, MR_EINVAL,
                              "'%s' is neither rfc3339, unix_s, unix_ms, unix_us, unix_ns nor a "
                              "pattern such as \"%%Y-%%m-%%d %%H:%%M:%%S\"",
                              format);
        }
        for (const char *p = strchr(format, '%'); p != NULL; p = strchr(p + 2, '%')) {
            if (p[1] == '\0' || strchr("YymdejHIMSfpbBhzTF%", p[1]) == NULL) {
                return MR_ERR_SET(err, MR_EINVAL,
                                  "unknown directive %%%.1s in \"%s\" (known: %%Y %%y %%m %%d "
                                  "%%j %%H %%I %%p %%M %%S %%f %%b %%z %%T %%F %%%%)",
                                  p + 1, format);
            }
        }
    }
    if (timezone != NULL) {
        size_t len = strlen(timezone);
        if (len == 0 || offset_scan(timezone, len, &out.tz_offset_s) != len) {
            return MR_ERR_SET(err, MR_EINVAL,
                              "timezone '%s' is not an offset such as +01:00, -05:30 or UTC "
                              "(named zones with daylight saving are not supported)",
                              timezone);
        }
    }
    *tf = out;
    return 0;
}
