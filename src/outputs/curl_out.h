/* One HTTP client for outputs that POST batches (`influxdb`, `http`): a libcurl easy handle
 * with a kept-alive connection, optional gzip of the body into a buffer sized once at init, a
 * whole-request timeout, and the first bytes of the answer kept for error messages. Used from
 * one delivery thread; not shared between threads.
 */
#ifndef MILLRACE_OUTPUTS_CURL_OUT_H
#define MILLRACE_OUTPUTS_CURL_OUT_H

#include <curl/curl.h>
#include <libdeflate.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "millrace/config.h"
#include "millrace/error.h"

#define MR_CURL_OUT_RESP_MAX 2048u

struct mr_curl_out {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    char resp[MR_CURL_OUT_RESP_MAX]; /* first bytes of the last answer, NUL-terminated */
    size_t resp_len;
    struct libdeflate_compressor *z; /* NULL without gzip */
    uint8_t *zbuf;
    size_t zcap;
    size_t max_body;
};

/* TLS settings of an https:// destination, with Telegraf's key names. A plugin embeds this in
 * its configuration struct and lists MR_CURL_TLS_FIELDS(its_conf_type, member) in its field
 * table, and calls mr_curl_tls_check from its check function. */
struct mr_curl_tls {
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    bool insecure_skip_verify;
};

/* clang-format off */
#define MR_CURL_TLS_FIELDS(T, m)                                                                   \
    {.name = "tls_ca",                                                                             \
     .type = MR_FIELD_STRING,                                                                      \
     .offset = offsetof(T, m.tls_ca),                                                              \
     .help = "PEM file of the certificate authority that signed the destination's certificate "    \
             "(https:// only; default: the system's authorities)."},                               \
    {.name = "tls_cert",                                                                           \
     .type = MR_FIELD_STRING,                                                                      \
     .offset = offsetof(T, m.tls_cert),                                                            \
     .help = "PEM client certificate, when the destination checks clients (with tls_key)."},       \
    {.name = "tls_key",                                                                            \
     .type = MR_FIELD_STRING,                                                                      \
     .offset = offsetof(T, m.tls_key),                                                             \
     .help = "PEM private key of tls_cert."},                                                      \
    {.name = "insecure_skip_verify",                                                               \
     .type = MR_FIELD_BOOL,                                                                        \
     .offset = offsetof(T, m.insecure_skip_verify),                                                \
     .def = "false",                                                                               \
     .help = "Accept any certificate from the destination. Only for testing: anyone on the "       \
             "path could then read and alter the data."}
/* clang-format on */

/* tls_cert without tls_key (or the reverse) is a configuration error. */
void mr_curl_tls_check(const struct mr_curl_tls *t, struct mr_config_check *chk);
/* Apply t to a libcurl handle. Returns CURLE_OK or libcurl's refusal. */
CURLcode mr_curl_tls_apply(CURL *c, const struct mr_curl_tls *t);

/* max_body: largest body send will be given; gzip: allocate the compression buffer; tls may
 * be NULL (the system's authorities).
 * Returns 0 or an MR_E* code with err filled (nothing to release then). */
int mr_curl_out_init(struct mr_curl_out *h, size_t max_body, bool gzip, int64_t timeout_ns,
                     const char *user_agent, const struct mr_curl_tls *tls, struct mr_err *err);
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
