/* mr_double_text: exact decimal text of a double, fast for short decimals.
 *
 * Fast path: find the smallest k (0..9) with m = rint(v * 10^k) and m / 10^k == v, |m| < 2^53.
 * Then the text "m with a point k digits from the right" reads back as v exactly: m and 10^k are
 * exact doubles, so the IEEE division m / 10^k is the correctly rounded value of the rational
 * m / 10^k, and strtod of that decimal text is, by definition, the same correctly rounded value.
 * The multiplication v * 10^k may round, but the check is on the division, so a rounding there
 * only sends the value to the slow path. snprintf + strtod cost about 1 us per value; this path
 * costs a few multiplications and the digits.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "millrace/numtext.h"

#define FAST_DECIMALS 9
#define EXACT_INT     9007199254740992.0 /* 2^53: every integer below is an exact double */

static const double pow10_exact[FAST_DECIMALS + 1] = {1e0, 1e1, 1e2, 1e3, 1e4,
                                                      1e5, 1e6, 1e7, 1e8, 1e9};

/* m (< 2^53) with a decimal point k digits from the right: "-0.05", "1234", "12.5". */
static int fixed_text(double m, int k, char *out, size_t cap)
{
    char digits[24];
    uint64_t u = (uint64_t)fabs(m);
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    while (nd <= k) { /* at least one digit before the point */
        digits[nd++] = '0';
    }
    size_t len = (size_t)nd + (m < 0) + (k > 0);
    if (len + 1 > cap) {
        return -1;
    }
    char *p = out;
    if (m < 0) {
        *p++ = '-';
    }
    for (int i = nd - 1; i >= 0; i--) {
        *p++ = digits[i];
        if (i == k && k > 0) {
            *p++ = '.';
        }
    }
    *p = '\0';
    return (int)len;
}

int mr_double_text(double v, char *out, size_t cap)
{
    if (isfinite(v) && !(v == 0 && signbit(v))) { /* -0 keeps its sign through the slow path */
        for (int k = 0; k <= FAST_DECIMALS; k++) {
            double scaled = v * pow10_exact[k];
            if (fabs(scaled) >= EXACT_INT) {
                break;
            }
            double m = rint(scaled);
            if (m / pow10_exact[k] == v) {
                return fixed_text(m, k, out, cap);
            }
        }
    }
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, cap, "%.*g", prec, v);
        if (n < 0 || (size_t)n >= cap) {
            return -1;
        }
        if (!isfinite(v) || strtod(out, NULL) == v) {
            break;
        }
    }
    return n;
}
