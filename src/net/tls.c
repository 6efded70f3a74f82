/* tls: OpenSSL 3 server contexts and the first-start self-signed certificate.
 * Called by daemon/master (certificate creation, before workers fork) and daemon/worker
 * (contexts). Modern defaults: TLS 1.2 minimum, no compression, no renegotiation, buffers
 * released while idle so an idle TLS session stays small. */
#include "net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static void tls_error(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, errlen, "%s: %s", what, e != 0 ? buf : strerror(errno));
    ERR_clear_error();
}

/* Writes a PEM file through a private temporary name and renames it into place, so a crash
 * never leaves a half-written key that a later start would trust. */
static int tls_write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return -1;
    }
    int ok = key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
                         : PEM_write_X509(f, cert);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        ok = 0;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int tls_mkdirs_for(const char *path)
{
    char dir[4096];
    size_t len = strlen(path);

    if (len >= sizeof dir)
        return -1;
    memcpy(dir, path, len + 1);
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

int tls_ensure_self_signed(const char *cert_path, const char *key_path, const char *hostname,
                           char *err, size_t errlen)
{
    if (access(cert_path, F_OK) == 0 && access(key_path, F_OK) == 0)
        return 0;

    int rc = -1;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    X509_EXTENSION *san = NULL;
    char san_text[300];

    if (key == NULL || cert == NULL) {
        tls_error(err, errlen, "generating key");
        goto out;
    }
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)time(NULL));
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    snprintf(san_text, sizeof san_text, "DNS:%s", hostname);
    san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san_text);
    if (san == NULL || !X509_add_ext(cert, san, -1) || !X509_sign(cert, key, EVP_sha256())) {
        tls_error(err, errlen, "signing certificate");
        goto out;
    }
    if (tls_mkdirs_for(key_path) != 0 || tls_mkdirs_for(cert_path) != 0 ||
        tls_write_pem(key_path, 0600, key, NULL) != 0 ||
        tls_write_pem(cert_path, 0644, NULL, cert) != 0) {
        snprintf(err, errlen, "writing %s: %s", cert_path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    X509_EXTENSION_free(san);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

SSL_CTX *tls_server_ctx(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        tls_error(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
        tls_error(err, errlen, cert_path);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        tls_error(err, errlen, key_path);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Any certificate is let through the handshake: whether it logs anyone in is decided later,
 * at AUTH EXTERNAL, by its fingerprint or by the verify result kept in the session. */
static int tls_accept_any_client(int preverify_ok, X509_STORE_CTX *ctx)
{
    (void)preverify_ok;
    (void)ctx;
    return 1;
}

int tls_server_ask_client_cert(SSL_CTX *ctx, const char *ca_file, char *err, size_t errlen)
{
    if (ca_file != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            tls_error(err, errlen, ca_file);
            return -1;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_accept_any_client);
    /* A session resumed without the certificate would leave EXTERNAL nothing to check. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    return 0;
}

void tls_describe(SSL *ssl, char *out, size_t cap)
{
    snprintf(out, cap, "version=%s cipher=%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}
