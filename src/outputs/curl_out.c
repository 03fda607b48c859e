/* HTTP client shared by the batch-POSTing outputs: see curl_out.h. */
#include "outputs/curl_out.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "millrace/alloc.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_lib_init(void)
{
    /* Process-wide and never undone: libcurl's global state lives as long as the process. */
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct mr_curl_out *h = arg;
    size_t n = size * nmemb;
    size_t room = sizeof(h->resp) - 1 - h->resp_len;
    size_t take = n < room ? n : room; /* the rest of a long answer is not needed */
    memcpy(h->resp + h->resp_len, data, take);
    h->resp_len += take;
    h->resp[h->resp_len] = '\0';
    return n;
}

int mr_curl_out_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (l == NULL) {
        return MR_ENOMEM;
    }
    *list = l;
    return 0;
}

void mr_curl_tls_check(const struct mr_curl_tls *t, struct mr_config_check *chk)
{
    if ((t->tls_cert == NULL) != (t->tls_key == NULL)) {
        mr_config_check_fail(chk, t->tls_cert == NULL ? "tls_key" : "tls_cert",
                             "tls_cert and tls_key go together (a client certificate and its "
                             "private key)");
    }
}

CURLcode mr_curl_tls_apply(CURL *c, const struct mr_curl_tls *t)
{
    CURLcode e = CURLE_OK;
    if (t->tls_ca != NULL) {
        e = curl_easy_setopt(c, CURLOPT_CAINFO, t->tls_ca);
    }
    if (e == CURLE_OK && t->tls_cert != NULL) {
        e = curl_easy_setopt(c, CURLOPT_SSLCERT, t->tls_cert);
        e = e ? e : curl_easy_setopt(c, CURLOPT_SSLKEY, t->tls_key);
    }
    if (e == CURLE_OK && t->insecure_skip_verify) {
        e = curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        e = e ? e : curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return e;
}

int mr_curl_out_init(struct mr_curl_out *h, size_t max_body, bool gzip, int64_t timeout_ns,
                     const char *user_agent, const struct mr_curl_tls *tls, struct mr_err *err)
{
    memset(h, 0, sizeof(*h));
    h->max_body = max_body;
    int rc = 0;
    pthread_once(&curl_once, curl_lib_init);
    if (curl_init_rc != CURLE_OK || (h->curl = curl_easy_init()) == NULL) {
        rc = MR_ERR_SET(err, MR_ENOMEM, "cannot start libcurl");
        goto fail;
    }
    if (gzip) {
        /* libdeflate compresses a whole buffer (all we need: a body is complete before it is
         * sent) about twice as fast as zlib at level 1, and smaller: line protocol shrinks
         * about 10x. Level 1 because the output's thread compresses while the destination
         * waits for it. */
        h->z = libdeflate_alloc_compressor(1);
        if (h->z == NULL) {
            rc = MR_ERR_SET(err, MR_ENOMEM, "cannot start gzip");
            goto fail;
        }
        h->zcap = libdeflate_gzip_compress_bound(h->z, max_body);
        h->zbuf = mr_malloc(h->zcap);
        if (h->zbuf == NULL) {
            rc = MR_ERR_SET(err, MR_ENOMEM, "out of memory");
            goto fail;
        }
    }
    long timeout_ms = (long)(timeout_ns / 1000000);
    CURL *c = h->curl;
    CURLcode e = curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    e = e ? e : curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    e = e ? e : curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* we run on a delivery thread */
    e = e ? e : curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    e = e ? e : curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    e = e ? e : curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    e = e ? e : curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    e = e ? e : curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    e = e ? e : curl_easy_setopt(c, CURLOPT_USERAGENT, user_agent);
    if (e == CURLE_OK && tls != NULL) {
        e = mr_curl_tls_apply(c, tls);
    }
    if (e != CURLE_OK) {
        rc = MR_ERR_SET(err, MR_EINVAL, "libcurl refused a setting: %s", curl_easy_strerror(e));
        goto fail;
    }
    return 0;
fail:
    mr_curl_out_fini(h);
    return rc;
}

void mr_curl_out_fini(struct mr_curl_out *h)
{
    if (h->curl != NULL) {
        curl_easy_cleanup(h->curl);
        h->curl = NULL;
    }
    if (h->z != NULL) {
        libdeflate_free_compressor(h->z);
        h->z = NULL;
    }
    mr_free(h->zbuf);
    h->zbuf = NULL;
}

static int compress_body(struct mr_curl_out *h, const char *body, size_t len, size_t *out_len)
{
    if (h->z == NULL || len > h->max_body) {
        return MR_EIO;
    }
    *out_len = libdeflate_gzip_compress(h->z, body, len, h->zbuf, h->zcap);
    return *out_len > 0 ? 0 : MR_EIO; /* 0 cannot happen: zcap is the bound of the largest body */
}

int mr_curl_out_send(struct mr_curl_out *h, const char *method, const char *url,
                     struct curl_slist *headers, const char *body, size_t len, bool gzip,
                     long *status, size_t *wire_len, const char **why)
{
    const char *payload = body;
    size_t plen = len;
    if (gzip) {
        if (compress_body(h, body, len, &plen) != 0) {
            *why = "gzip failed";
            return MR_EIO;
        }
        payload = (const char *)h->zbuf;
    }
    h->resp_len = 0;
    h->resp[0] = '\0';
    h->errbuf[0] = '\0';
    CURL *c = h->curl;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)plen);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") == 0 ? NULL : method);
    CURLcode e = curl_easy_perform(c);
    if (wire_len != NULL) {
        *wire_len = plen;
    }
    if (e != CURLE_OK) {
        *why = h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(e);
        return e == CURLE_OPERATION_TIMEDOUT ? MR_ETIMEDOUT : MR_EIO;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

void mr_curl_out_answer_text(const struct mr_curl_out *h, char *out, size_t cap)
{
    if (cap == 0) {
        return;
    }
    const char *src = h->resp;
    size_t len = h->resp_len;
    json_t *root = json_loadb(h->resp, h->resp_len, 0, NULL);
    json_t *e = root != NULL ? json_object_get(root, "error") : NULL;
    if (json_is_string(e)) {
        src = json_string_value(e);
        len = json_string_length(e);
    }
    while (len > 0 && (src[len - 1] == '\n' || src[len - 1] == ' ' || src[len - 1] == '\r')) {
        len--;
    }
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        out[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    out[n] = '\0';
    json_decref(root);
}
