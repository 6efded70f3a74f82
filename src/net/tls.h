/* tls: OpenSSL server contexts for STARTTLS (RFC 3207) and implicit TLS (RFC 8314), and the
 * self-signed certificate that lets a fresh install offer TLS out of the box. */
#ifndef SLUICE_NET_TLS_H
#define SLUICE_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* Create a self-signed certificate and key for hostname at the given paths when either file
 * is missing (master, at start). 0 on success or when both exist; -1 with a message in err. */
int tls_ensure_self_signed(const char *cert_path, const char *key_path, const char *hostname,
                           char *err, size_t errlen);

/* Server context from a PEM chain and key; NULL with a message in err (F5: the caller then
 * offers no STARTTLS and answers 454). */
SSL_CTX *tls_server_ctx(const char *cert_path, const char *key_path, char *err, size_t errlen);

/* Ask clients for a certificate (for AUTH EXTERNAL) without requiring one; with ca_file,
 * verify it against those CAs (the result is read with SSL_get_verify_result). -1 on error. */
int tls_server_ask_client_cert(SSL_CTX *ctx, const char *ca_file, char *err, size_t errlen);

/* "version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384" for the Received header and the log. */
void tls_describe(SSL *ssl, char *out, size_t cap);

#endif
