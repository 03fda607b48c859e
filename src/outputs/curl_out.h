/* One HTTP client for outputs that POST batches (`influxdb`, `http`): a libcurl easy handle
 * with a kept-alive connection, optional gzip of the body into a buffer sized once at init, a
 * whole-request timeout, and the first bytes of the answer kept for error messages. Used from
 * one delivery thread; not shared between threads.
 */
#ifndef MILLRACE_OUTPUTS_CURL_OUT_H
#define MILLRACE_OUTPUTS_CURL_OUT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "millrace/error.h"

#define MR_CURL_OUT_RESP_MAX 2048u

struct mr_curl_out {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    char resp[MR_CURL_OUT_RESP_MAX]; /* first bytes of the last answer, NUL-terminated */
    size_t resp_len;
    bool z_ready;
    z_stream z;
    uint8_t *zbuf;
    size_t zcap;
    size_t max_body;
};

/* max_body: largest body send will be given; gzip: allocate the compression buffer.
 * Returns 0 or an MR_E* code with err filled (nothing to release then). */
int mr_curl_out_init(struct mr_curl_out *h, size_t max_body, bool gzip, int64_t timeout_ns,
                     const char *user_agent, struct mr_err *err);
void mr_curl_out_fini(struct mr_curl_out *h);

/* Send body (len <= max_body) to url with method ("POST", "PUT") and headers (borrowed; add
 * "Content-Encoding: gzip" yourself when gzip). Returns 0 with *status set to the HTTP status,
 * or MR_ETIMEDOUT / MR_EIO (no answer: peer down, refused, timed out) with *why describing it
 * (valid until the next call). *wire_len (may be NULL) receives the bytes sent. */
int mr_curl_out_send(struct mr_curl_out *h, const char *method, const char *url,
                     struct curl_slist *headers, const char *body, size_t len, bool gzip,
                     long *status, size_t *wire_len, const char **why);

/* The answer's {"error": "..."} text when it is JSON with one, else the answer itself (trimmed,
 * at most cap-1 bytes, control characters replaced by spaces). */
void mr_curl_out_answer_text(const struct mr_curl_out *h, char *out, size_t cap);

/* Append a header line to *list. Returns 0 or MR_ENOMEM. */
int mr_curl_out_header(struct curl_slist **list, const char *line);

#endif
