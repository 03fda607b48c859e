/* The shift calendar of the `oee` operator: which shift, if any, a moment belongs to, and
 * whether it lies in a planned break.
 *
 * Shifts and breaks are times of day in local time (UTC + a fixed offset; no daylight saving
 * rules). A shift whose end is not later than its start crosses midnight ("22:00" to "06:00");
 * start == end is a 24-hour shift. The day is cut at init into at most MR_OEE_CAL_MAX_SEGS
 * segments with constant attributes, so a lookup is a division and a short scan, and callers
 * cache the segment they are in (most lookups are answered by a compare).
 */
#ifndef MR_ANALYTICS_OEE_CALENDAR_H
#define MR_ANALYTICS_OEE_CALENDAR_H

#include <stdbool.h>
#include <stdint.h>

#include "millrace/error.h"

#define MR_OEE_DAY_NS       (86400LL * 1000000000LL)
#define MR_OEE_MAX_SHIFTS   16
#define MR_OEE_MAX_BREAKS   32
#define MR_OEE_CAL_MAX_SEGS (2 * (MR_OEE_MAX_SHIFTS + MR_OEE_MAX_BREAKS) + 2)

struct mr_oee_cal_seg {
    int64_t from; /* time of day, local: [from, to) */
    int64_t to;
    int64_t occ_off; /* start of the shift occurrence relative to this day's midnight */
    int shift;       /* index, or -1: no shift (outside planned operation time) */
    bool brk;        /* inside a planned break */
};

struct mr_oee_cal {
    struct mr_oee_cal_seg segs[MR_OEE_CAL_MAX_SEGS];
    int nsegs;
    int64_t offset_ns; /* local = UTC + offset */
    int64_t shift_len[MR_OEE_MAX_SHIFTS];
    int nshifts;
    int64_t day_first; /* earliest shift start of a day (relative to midnight) */
    int64_t day_last;  /* latest end of a shift that starts that day (may exceed 24 h) */
};

/* Where a moment lies: its segment in absolute UTC ns. */
struct mr_oee_span {
    int64_t from;
    int64_t to;
    int64_t occ_start; /* shift occurrence [occ_start, occ_end), when shift >= 0 */
    int64_t occ_end;
    int64_t day; /* UTC ns of the local midnight starting the occurrence's day */
    int shift;
    bool brk;
};

/* Time of day "HH:MM" or "HH:MM:SS" (00:00 to 24:00) -> ns. */
int mr_oee_tod_parse(const char *s, int64_t *ns);
/* "+01:00", "-05:30", "Z" -> signed ns. */
int mr_oee_offset_parse(const char *s, int64_t *ns);

/* starts/ends: ns of day per shift; bstarts/bends per break. Returns 0 or MR_EINVAL with err
 * naming the overlapping shifts. */
int mr_oee_cal_init(struct mr_oee_cal *cal, const int64_t *starts, const int64_t *ends, int nshifts,
                    const int64_t *bstarts, const int64_t *bends, int nbreaks, int64_t offset_ns,
                    struct mr_err *err);
void mr_oee_cal_at(const struct mr_oee_cal *cal, int64_t t, struct mr_oee_span *out);

#endif
