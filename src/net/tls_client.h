/* tls_client: OpenSSL client contexts and per-connection objects for the SMTP client's
 * STARTTLS (RFC 3207): SNI, and the certificate check against the name we meant to reach
 * (RFC 6125 through SSL_set1_host, or the address of an "[addr]" literal). */
#ifndef SLUICE_NET_TLS_CLIENT_H
#define SLUICE_NET_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* Client context trusting ca_file (PEM), or the system's default paths when ca_file is
 * NULL; NULL with a message in err. */
SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errlen);

/* One client SSL for a connection to host (a DNS name, or "[192.0.2.1]" / "[IPv6:...]").
 * SNI is sent for a DNS name. With verify the handshake fails unless the chain verifies
 * and the certificate names host; without it nothing is checked (RFC 7435). NULL with a
 * message in err. */
SSL *tls_client_new(SSL_CTX *ctx, const char *host, bool verify, char *err, size_t errlen);

#endif
