/* Numbers as text for the outputs (line protocol, COPY rows, JSON, MQTT payloads). */
#ifndef MILLRACE_NUMTEXT_H
#define MILLRACE_NUMTEXT_H

#include <stddef.h>

/* Decimal text of v that strtod reads back as exactly v (bit for bit), NUL-terminated, at most
 * cap-1 characters (cap >= 32 always suffices). Values with up to 9 decimals and fewer than 16
 * significant digits, what plant signals mostly are ("21.53", "-4", "0.001"), are written
 * without a decimal exponent by a fast exact path; any other value by the shortest "%.15g" ..
 * "%.17g" that reads back. Non-finite values give "nan", "inf" or "-inf": callers that cannot
 * carry them check isfinite first. Returns the length, or -1 when cap is too small. */
int mr_double_text(double v, char *out, size_t cap);

#endif
