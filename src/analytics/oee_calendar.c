/* The shift calendar of the `oee` operator (analytics/oee_calendar.h). */
#include <stdlib.h>
#include <string.h>

#include "analytics/oee_calendar.h"

#define MIN_NS (60LL * 1000000000LL)

static int two_digits(const char *s, int *v)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9') {
        return MR_EINVAL;
    }
    *v = (s[0] - '0') * 10 + (s[1] - '0');
    return 0;
}

int mr_oee_tod_parse(const char *s, int64_t *ns)
{
    int h = 0, m = 0, sec = 0;
    size_t len = s != NULL ? strlen(s) : 0;
    if ((len != 5 && len != 8) || two_digits(s, &h) != 0 || s[2] != ':' ||
        two_digits(s + 3, &m) != 0) {
        return MR_EINVAL;
    }
    if (len == 8 && (s[5] != ':' || two_digits(s + 6, &sec) != 0)) {
        return MR_EINVAL;
    }
    if (m > 59 || sec > 59 || h > 24 || (h == 24 && (m != 0 || sec != 0))) {
        return MR_EINVAL;
    }
    *ns = ((int64_t)h * 3600 + m * 60 + sec) * 1000000000LL;
    return 0;
}

int mr_oee_offset_parse(const char *s, int64_t *ns)
{
    if (s != NULL && strcmp(s, "Z") == 0) {
        *ns = 0;
        return 0;
    }
    int h = 0, m = 0;
    if (s == NULL || strlen(s) != 6 || (s[0] != '+' && s[0] != '-') || two_digits(s + 1, &h) != 0 ||
        s[3] != ':' || two_digits(s + 4, &m) != 0 || h > 14 || m > 59) {
        return MR_EINVAL;
    }
    int64_t v = ((int64_t)h * 60 + m) * MIN_NS;
    *ns = s[0] == '-' ? -v : v;
    return 0;
}

/* Does [start, end) of day, crossing midnight when end <= start, contain tod? *off: the
 * occurrence's start relative to the day of tod. */
static bool covers(int64_t start, int64_t end, int64_t tod, int64_t *off)
{
    if (start < end) {
        *off = start;
        return tod >= start && tod < end;
    }
    if (tod >= start) {
        *off = start;
        return true;
    }
    *off = start - MR_OEE_DAY_NS;
    return tod < end;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The attributes of the elementary interval around mid. */
static int seg_fill(struct mr_oee_cal_seg *s, int64_t mid, const int64_t *starts,
                    const int64_t *ends, int nshifts, const int64_t *bstarts, const int64_t *bends,
                    int nbreaks, struct mr_err *err)
{
    s->shift = -1;
    for (int i = 0; i < nshifts; i++) {
        int64_t off = 0;
        if (covers(starts[i], ends[i], mid, &off)) {
            if (s->shift >= 0) {
                return MR_ERR_SET(err, MR_EINVAL, "shifts %d and %d overlap", s->shift + 1, i + 1);
            }
            s->shift = i;
            s->occ_off = off;
        }
    }
    for (int i = 0; i < nbreaks; i++) {
        int64_t off = 0;
        s->brk = s->brk || covers(bstarts[i], bends[i], mid, &off);
    }
    return 0;
}

int mr_oee_cal_init(struct mr_oee_cal *cal, const int64_t *starts, const int64_t *ends, int nshifts,
                    const int64_t *bstarts, const int64_t *bends, int nbreaks, int64_t offset_ns,
                    struct mr_err *err)
{
    if (nshifts > MR_OEE_MAX_SHIFTS || nbreaks > MR_OEE_MAX_BREAKS) {
        return MR_ERR_SET(err, MR_EINVAL, "at most %d shifts and %d breaks", MR_OEE_MAX_SHIFTS,
                          MR_OEE_MAX_BREAKS);
    }
    memset(cal, 0, sizeof(*cal));
    int64_t b[MR_OEE_CAL_MAX_SEGS + 1];
    int nb = 0;
    b[nb++] = 0;
    b[nb++] = MR_OEE_DAY_NS;
    cal->day_first = MR_OEE_DAY_NS;
    for (int i = 0; i < nshifts; i++) {
        b[nb++] = starts[i] % MR_OEE_DAY_NS;
        b[nb++] = ends[i] % MR_OEE_DAY_NS;
        cal->shift_len[i] =
            ends[i] > starts[i] ? ends[i] - starts[i] : ends[i] + MR_OEE_DAY_NS - starts[i];
        int64_t s = starts[i] % MR_OEE_DAY_NS;
        cal->day_first = s < cal->day_first ? s : cal->day_first;
        cal->day_last =
            s + cal->shift_len[i] > cal->day_last ? s + cal->shift_len[i] : cal->day_last;
    }
    for (int i = 0; i < nbreaks; i++) {
        b[nb++] = bstarts[i] % MR_OEE_DAY_NS;
        b[nb++] = bends[i] % MR_OEE_DAY_NS;
    }
    qsort(b, (size_t)nb, sizeof(b[0]), cmp_i64);
    for (int i = 0; i + 1 < nb; i++) {
        if (b[i] == b[i + 1]) {
            continue;
        }
        struct mr_oee_cal_seg *s = &cal->segs[cal->nsegs];
        memset(s, 0, sizeof(*s));
        s->from = b[i];
        s->to = b[i + 1];
        int64_t mid = b[i] + (b[i + 1] - b[i]) / 2;
        int rc = seg_fill(s, mid, starts, ends, nshifts, bstarts, bends, nbreaks, err);
        if (rc != 0) {
            return rc;
        }
        struct mr_oee_cal_seg *prev = cal->nsegs > 0 ? &cal->segs[cal->nsegs - 1] : NULL;
        if (prev != NULL && prev->shift == s->shift && prev->brk == s->brk &&
            prev->occ_off == s->occ_off) {
            prev->to = s->to; /* same attributes: one segment */
            continue;
        }
        cal->nsegs++;
    }
    cal->nshifts = nshifts;
    cal->offset_ns = offset_ns;
    return 0;
}

void mr_oee_cal_at(const struct mr_oee_cal *cal, int64_t t, struct mr_oee_span *out)
{
    int64_t local = t + cal->offset_ns;
    int64_t day = local / MR_OEE_DAY_NS;
    if (local % MR_OEE_DAY_NS < 0) {
        day--;
    }
    int64_t midnight = day * MR_OEE_DAY_NS;
    int64_t tod = local - midnight;
    int i = 0;
    while (i + 1 < cal->nsegs && tod >= cal->segs[i].to) {
        i++;
    }
    const struct mr_oee_cal_seg *s = &cal->segs[i];
    int64_t base = midnight - cal->offset_ns; /* this local midnight in UTC */
    out->from = base + s->from;
    out->to = base + s->to;
    out->shift = s->shift;
    out->brk = s->brk;
    out->occ_start = out->occ_end = out->day = 0;
    if (s->shift >= 0) {
        out->occ_start = base + s->occ_off;
        out->occ_end = out->occ_start + cal->shift_len[s->shift];
        out->day = s->occ_off < 0 ? base - MR_OEE_DAY_NS : base;
    }
}
