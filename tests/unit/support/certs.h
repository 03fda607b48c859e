/* Certificates for unit tests that speak TLS to a real peer. */
#ifndef MILLRACE_TEST_CERTS_H
#define MILLRACE_TEST_CERTS_H

/* In dir (openssl req/x509, EC P-256, 2 days): a certificate authority ca.crt/ca.key, a server
 * certificate srv.crt/srv.key for IP 127.0.0.1 signed by it, and a second authority
 * other.crt/other.key that signed nothing; readable by every user (peers that drop root).
 * Returns 0, or -1 when openssl failed. */
int mr_test_make_certs(const char *dir);

#endif
