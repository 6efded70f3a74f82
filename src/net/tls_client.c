/* tls_client: the outbound TLS contexts, used by deliver/smtp_client (the queue manager).
 * Same floor as the server side (net/tls.c): TLS 1.2 minimum, no compression, no
 * renegotiation. With verification the name check is done by OpenSSL during the handshake
 * (SSL_set1_host / SSL_set1_ip_asc), so a failed check fails the handshake itself and no
 * byte of the transaction is ever sent over an unchecked channel.
 *
 * RFC 3207 (STARTTLS), RFC 6125 §6 (name checks), RFC 6066 §3 (SNI: DNS names only),
 * RFC 7435 (opportunistic TLS without checks). */
#include "net/tls_client.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

static void tls_client_error(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        snprintf(err, errlen, "%s: %s", what, buf);
    } else {
        snprintf(err, errlen, "%s", what);
    }
    ERR_clear_error();
}

SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        tls_client_error(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    int ok = ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                             : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        tls_client_error(err, errlen, ca_file != NULL ? ca_file : "default verify paths");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* "[192.0.2.1]" -> "192.0.2.1", "[IPv6:2001:db8::1]" -> "2001:db8::1" (RFC 5321 §4.1.3);
 * false when host is not an address literal or does not fit. */
static bool tls_client_literal(const char *host, char *out, size_t cap)
{
    size_t len = strlen(host);
    if (len < 3 || host[0] != '[' || host[len - 1] != ']')
        return false;
    const char *s = host + 1;
    size_t n = len - 2;
    if (n > 5 && strncasecmp(s, "IPv6:", 5) == 0) {
        s += 5;
        n -= 5;
    }
    if (n >= cap)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

SSL *tls_client_new(SSL_CTX *ctx, const char *host, bool verify, char *err, size_t errlen)
{
    SSL *ssl = SSL_new(ctx);
    char ip[64];
    bool literal = tls_client_literal(host, ip, sizeof ip);

    if (ssl == NULL) {
        tls_client_error(err, errlen, "SSL_new");
        return NULL;
    }
    if (!literal && host[0] != '\0' && SSL_set_tlsext_host_name(ssl, host) != 1) {
        tls_client_error(err, errlen, "SNI");
        SSL_free(ssl);
        return NULL;
    }
    if (verify) {
        int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip)
                         : SSL_set1_host(ssl, host);
        if (ok != 1) {
            tls_client_error(err, errlen, "certificate name");
            SSL_free(ssl);
            return NULL;
        }
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    }
    return ssl;
}
