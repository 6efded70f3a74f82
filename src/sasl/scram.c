/* sasl/scram: the server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802 §3, §5, §7;
 * RFC 7677 §3), channel bindings tls-exporter (RFC 9266 §3) and tls-server-end-point
 * (RFC 5929 §4), and the stored credentials' text form.
 *
 * Called by smtp/auth, which does the base64 of the SMTP exchange, looks up credentials (made
 * up for an unknown user, so that such an exchange fails only at the proof: HOSTILE-INPUTS
 * G11), draws the random bytes and obtains the channel binding data from TLS.
 *
 * Invariants: pure apart from libcrypto (HMAC, SHA-256, PBKDF2); fixed buffers only. Every
 * message is parsed in full against the RFC 5802 §7 grammar before any verdict, so a
 * malformed message is SASL_SCRAM_SYNTAX and a well-formed one we refuse is SASL_SCRAM_FAIL.
 * The exchange only moves forward: server-first needs a parsed client-first, client-final a
 * sent server-first, and client-final ends the exchange whatever its outcome. Key material on
 * the stack is cleansed before return.
 */
#include "sasl/scram.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "util/base64.h"

#define SCRAM_PREFIX "SCRAM-SHA-256$"

/* ---- key derivation (RFC 5802 §3) ---- */

static bool scram_hmac(const uint8_t key[SCRAM_KEY_LEN], const void *data, size_t len,
                       uint8_t mac[SCRAM_KEY_LEN])
{
    unsigned int maclen = 0;
    return HMAC(EVP_sha256(), key, SCRAM_KEY_LEN, data, len, mac, &maclen) != NULL &&
           maclen == SCRAM_KEY_LEN;
}

static bool scram_creds_args_ok(size_t salt_len, uint32_t iterations)
{
    return salt_len >= 1 && salt_len <= SCRAM_SALT_MAX && iterations >= SCRAM_ITERATIONS_MIN &&
           iterations <= SCRAM_ITERATIONS_MAX;
}

int sasl_scram_creds_make(const char *password, size_t len, const uint8_t *salt, size_t salt_len,
                          uint32_t iterations, struct sasl_scram_creds *out)
{
    memset(out, 0, sizeof(*out));
    if (!scram_creds_args_ok(salt_len, iterations) || len > SASL_PASSWORD_MAX)
        return -1;
    uint8_t salted[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN];
    int rc = -1;
    if (PKCS5_PBKDF2_HMAC(len > 0 ? password : "", (int)len, salt, (int)salt_len, (int)iterations,
                          EVP_sha256(), SCRAM_KEY_LEN, salted) == 1 &&
        scram_hmac(salted, "Client Key", 10, client_key) &&
        scram_hmac(salted, "Server Key", 10, out->server_key) &&
        SHA256(client_key, SCRAM_KEY_LEN, out->stored_key) != NULL) {
        memcpy(out->salt, salt, salt_len);
        out->salt_len = salt_len;
        out->iterations = iterations;
        rc = 0;
    }
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return rc;
}

/* ---- the directory's text form ---- */

size_t sasl_scram_creds_format(const struct sasl_scram_creds *c, char *out, size_t outlen)
{
    char salt[BASE64_ENCODED_LEN(SCRAM_SALT_MAX) + 1];
    char stored[BASE64_ENCODED_LEN(SCRAM_KEY_LEN) + 1];
    char server[BASE64_ENCODED_LEN(SCRAM_KEY_LEN) + 1];

    if (outlen > 0)
        out[0] = '\0';
    if (!scram_creds_args_ok(c->salt_len, c->iterations))
        return 0;
    base64_encode(c->salt, c->salt_len, salt, sizeof(salt));
    base64_encode(c->stored_key, SCRAM_KEY_LEN, stored, sizeof(stored));
    base64_encode(c->server_key, SCRAM_KEY_LEN, server, sizeof(server));
    int n = snprintf(out, outlen, SCRAM_PREFIX "%" PRIu32 ":%s$%s:%s", c->iterations, salt, stored,
                     server);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

/* A posit-number (RFC 5802 §7: no sign, no leading zero) within lo..hi. */
static bool scram_parse_number(const char *s, size_t n, uint32_t lo, uint32_t hi, uint32_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 10 || s[0] == '0')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Decodes a standard base64 field that must yield exactly want octets (any count up to max
 * when want is 0). */
static bool scram_parse_b64(const char *s, size_t n, uint8_t *out, size_t max, size_t want,
                            size_t *outn)
{
    size_t got = 0;
    if (!base64_decode(s, n, out, max, &got) || got == 0 || (want != 0 && got != want))
        return false;
    *outn = got;
    return true;
}

int sasl_scram_creds_parse(const char *text, size_t len, struct sasl_scram_creds *out)
{
    const size_t plen = sizeof(SCRAM_PREFIX) - 1;
    struct sasl_scram_creds c;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (len >= SCRAM_CREDS_TEXT_MAX || len < plen || memcmp(text, SCRAM_PREFIX, plen) != 0)
        return -1;
    const char *p = text + plen, *end = text + len;
    const char *colon1 = memchr(p, ':', (size_t)(end - p));
    if (colon1 == NULL)
        return -1;
    const char *dollar = memchr(colon1, '$', (size_t)(end - colon1));
    if (dollar == NULL)
        return -1;
    const char *colon2 = memchr(dollar, ':', (size_t)(end - dollar));
    if (colon2 == NULL)
        return -1;
    memset(&c, 0, sizeof(c));
    if (!scram_parse_number(p, (size_t)(colon1 - p), SCRAM_ITERATIONS_MIN, SCRAM_ITERATIONS_MAX,
                            &c.iterations) ||
        !scram_parse_b64(colon1 + 1, (size_t)(dollar - colon1 - 1), c.salt, SCRAM_SALT_MAX, 0,
                         &c.salt_len) ||
        !scram_parse_b64(dollar + 1, (size_t)(colon2 - dollar - 1), c.stored_key, SCRAM_KEY_LEN,
                         SCRAM_KEY_LEN, &n) ||
        !scram_parse_b64(colon2 + 1, (size_t)(end - colon2 - 1), c.server_key, SCRAM_KEY_LEN,
                         SCRAM_KEY_LEN, &n))
        return -1;
    *out = c;
    return 0;
}

/* ---- message syntax (RFC 5802 §7) ---- */

/* The next comma-separated field of msg[0..len) from *pos; false past the last one. */
static bool scram_field(const char *msg, size_t len, size_t *pos, const char **f, size_t *flen)
{
    if (*pos > len)
        return false;
    const char *start = msg + *pos;
    const char *comma = memchr(start, ',', len - *pos);
    *f = start;
    *flen = comma != NULL ? (size_t)(comma - start) : len - *pos;
    *pos += *flen + 1;
    return true;
}

/* A field "<name>=<value>" with a non-empty value (RFC 5802 §7 attr-val; the caller has
 * refused NUL, and a field never holds ','). */
static bool scram_attr(const char *f, size_t flen, char name)
{
    return flen >= 3 && f[0] == name && f[1] == '=';
}

static bool scram_is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* RFC 5802 §7 extensions: each remaining field is ALPHA "=" 1*value-char. */
static bool scram_extensions_ok(const char *msg, size_t len, size_t pos)
{
    const char *f;
    size_t flen;
    while (scram_field(msg, len, &pos, &f, &flen)) {
        if (flen < 3 || !scram_is_alpha(f[0]) || f[1] != '=')
            return false;
    }
    return true;
}

/* RFC 5802 §7 printable: %x21-2B / %x2D-7E, at least one. */
static bool scram_printable(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == ',')
            return false;
    }
    return true;
}

/* RFC 5056 §7 cb-name: 1*(ALPHA / DIGIT / "." / "-"). */
static bool scram_cb_name_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!scram_is_alpha(c) && !(c >= '0' && c <= '9') && c != '.' && c != '-')
            return false;
    }
    return true;
}

static bool scram_field_is(const char *f, size_t flen, const char *lit)
{
    return flen == strlen(lit) && memcmp(f, lit, flen) == 0;
}

/* ---- the exchange ---- */

enum sasl_scram_status sasl_scram_client_first(struct sasl_scram *st, bool plus, bool plus_offered,
                                               const uint8_t *msg, size_t len)
{
    const char *m = (const char *)msg, *f;
    size_t pos = 0, flen;
    bool mext = false;

    memset(st, 0, sizeof(*st));
    st->plus = plus;
    st->plus_offered = plus_offered;
    if (len >= SCRAM_MSG_MAX || memchr(m, '\0', len) != NULL)
        return SASL_SCRAM_SYNTAX;

    /* gs2-header = gs2-cbind-flag "," [ authzid ] "," */
    if (!scram_field(m, len, &pos, &f, &flen))
        return SASL_SCRAM_SYNTAX;
    const char *cb_name = NULL;
    size_t cb_name_len = 0;
    if (scram_field_is(f, flen, "n")) {
        st->cb = SASL_SCRAM_CB_NONE;
    } else if (scram_field_is(f, flen, "y")) {
        st->cb = SASL_SCRAM_CB_NOT_USED;
    } else if (flen > 2 && f[0] == 'p' && f[1] == '=' && scram_cb_name_ok(f + 2, flen - 2)) {
        cb_name = f + 2;
        cb_name_len = flen - 2;
    } else {
        return SASL_SCRAM_SYNTAX;
    }
    if (!scram_field(m, len, &pos, &f, &flen) || pos > len)
        return SASL_SCRAM_SYNTAX;
    if (flen > 0 && (!scram_attr(f, flen, 'a') ||
                     sasl_saslname_decode(f + 2, flen - 2, st->authzid) != SASL_PLAIN_OK))
        return SASL_SCRAM_SYNTAX;
    if (pos >= sizeof(st->gs2_header))
        return SASL_SCRAM_SYNTAX;
    memcpy(st->gs2_header, m, pos);
    st->gs2_header_len = pos;

    /* client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions] */
    size_t bare = pos;
    if (!scram_field(m, len, &pos, &f, &flen))
        return SASL_SCRAM_SYNTAX;
    if (flen >= 2 && f[0] == 'm' && f[1] == '=') {
        if (flen < 3 || !scram_field(m, len, &pos, &f, &flen))
            return SASL_SCRAM_SYNTAX;
        mext = true;
    }
    if (!scram_attr(f, flen, 'n') ||
        sasl_saslname_decode(f + 2, flen - 2, st->user) != SASL_PLAIN_OK)
        return SASL_SCRAM_SYNTAX;
    if (!scram_field(m, len, &pos, &f, &flen) || !scram_attr(f, flen, 'r') ||
        flen - 2 > SCRAM_NONCE_MAX || !scram_printable(f + 2, flen - 2))
        return SASL_SCRAM_SYNTAX;
    const char *cnonce = f + 2;
    size_t cnonce_len = flen - 2;
    if (!scram_extensions_ok(m, len, pos))
        return SASL_SCRAM_SYNTAX;
    memcpy(st->client_first_bare, m + bare, len - bare);
    st->client_first_bare_len = len - bare;

    /* Now the verdicts on a well-formed message. */
    enum sasl_scram_status verdict = SASL_SCRAM_OK;
    if (mext) {
        verdict = SASL_SCRAM_FAIL; /* RFC 5802 §5.1 m: no extension is supported */
    } else if (cb_name != NULL) {
        if (scram_field_is(cb_name, cb_name_len, "tls-exporter"))
            st->cb = SASL_SCRAM_CB_TLS_EXPORTER;
        else if (scram_field_is(cb_name, cb_name_len, "tls-server-end-point"))
            st->cb = SASL_SCRAM_CB_TLS_SERVER_END_POINT;
        else
            verdict = SASL_SCRAM_FAIL; /* RFC 5802 §6: a type we do not support */
        /* A binding only makes sense on the -PLUS mechanism we offered. */
        if (!plus || !plus_offered)
            verdict = SASL_SCRAM_FAIL;
    } else if (plus) {
        verdict = SASL_SCRAM_FAIL; /* -PLUS without binding is not -PLUS */
    } else if (st->cb == SASL_SCRAM_CB_NOT_USED && plus_offered) {
        verdict = SASL_SCRAM_FAIL; /* RFC 5802 §6: "y" while we offer -PLUS is a downgrade */
    }
    if (verdict == SASL_SCRAM_OK) {
        memcpy(st->nonce, cnonce, cnonce_len);
        st->client_nonce_len = cnonce_len;
    }
    return verdict;
}

enum sasl_scram_status sasl_scram_server_first_nonce(struct sasl_scram *st,
                                                     const struct sasl_scram_creds *creds,
                                                     const char *snonce, size_t snonce_len,
                                                     char *out, size_t outlen, size_t *outn)
{
    char salt[BASE64_ENCODED_LEN(SCRAM_SALT_MAX) + 1];

    if (outlen > 0)
        out[0] = '\0';
    *outn = 0;
    if (st->client_nonce_len == 0 || st->server_first_len != 0 ||
        !scram_creds_args_ok(creds->salt_len, creds->iterations) || snonce_len > SCRAM_NONCE_MAX ||
        !scram_printable(snonce, snonce_len))
        return SASL_SCRAM_FAIL;
    memcpy(st->nonce + st->client_nonce_len, snonce, snonce_len);
    st->nonce_len = st->client_nonce_len + snonce_len;
    st->nonce[st->nonce_len] = '\0';
    base64_encode(creds->salt, creds->salt_len, salt, sizeof(salt));
    /* server-first-message = nonce "," salt "," iteration-count */
    int n = snprintf(st->server_first, sizeof(st->server_first), "r=%s,s=%s,i=%" PRIu32, st->nonce,
                     salt, creds->iterations);
    if (n < 0 || (size_t)n >= sizeof(st->server_first) || (size_t)n >= outlen) {
        st->nonce_len = 0;
        st->server_first[0] = '\0';
        return SASL_SCRAM_FAIL;
    }
    st->server_first_len = (size_t)n;
    memcpy(out, st->server_first, (size_t)n + 1);
    *outn = (size_t)n;
    return SASL_SCRAM_OK;
}

enum sasl_scram_status sasl_scram_server_first(struct sasl_scram *st,
                                               const struct sasl_scram_creds *creds,
                                               const uint8_t *random, size_t random_len, char *out,
                                               size_t outlen, size_t *outn)
{
    /* base64 is printable without ',' (RFC 5802 §7 s-nonce) and keeps 6 bits per character. */
    char snonce[BASE64_ENCODED_LEN(SCRAM_RANDOM_MAX) + 1];

    if (random_len < SCRAM_RANDOM_MIN || random_len > SCRAM_RANDOM_MAX) {
        if (outlen > 0)
            out[0] = '\0';
        *outn = 0;
        return SASL_SCRAM_FAIL;
    }
    size_t n = base64_encode(random, random_len, snonce, sizeof(snonce));
    return sasl_scram_server_first_nonce(st, creds, snonce, n, out, outlen, outn);
}

/* The last ',' in s[0..n), or NULL. */
static const char *scram_last_comma(const char *s, size_t n)
{
    while (n > 0) {
        if (s[--n] == ',')
            return s + n;
    }
    return NULL;
}

/* Parses client-final-message (RFC 5802 §7) into its parts; false on a syntax error. */
static bool scram_parse_client_final(const char *m, size_t len, const char **nonce,
                                     size_t *nonce_len, uint8_t *cbind, size_t *cbind_len,
                                     uint8_t proof[SCRAM_KEY_LEN], size_t *without_proof_len)
{
    const char *f;
    size_t flen, pos = 0, n;

    /* The proof is the last attribute, and no value holds ','. */
    const char *last = scram_last_comma(m, len);
    if (last == NULL)
        return false;
    size_t wp = (size_t)(last - m);
    if (!scram_attr(last + 1, len - wp - 1, 'p') ||
        !scram_parse_b64(last + 3, len - wp - 3, proof, SCRAM_KEY_LEN, SCRAM_KEY_LEN, &n))
        return false;
    /* client-final-message-without-proof = channel-binding "," nonce ["," extensions] */
    if (!scram_field(m, wp, &pos, &f, &flen) || !scram_attr(f, flen, 'c') ||
        !scram_parse_b64(f + 2, flen - 2, cbind, SCRAM_MSG_MAX, 0, cbind_len))
        return false;
    if (!scram_field(m, wp, &pos, &f, &flen) || !scram_attr(f, flen, 'r') ||
        !scram_printable(f + 2, flen - 2))
        return false;
    *nonce = f + 2;
    *nonce_len = flen - 2;
    *without_proof_len = wp;
    return scram_extensions_ok(m, wp, pos);
}

/* Checks the proof and computes ServerSignature (RFC 5802 §3). */
static bool scram_verify(const struct sasl_scram_creds *creds, const char *auth, size_t auth_len,
                         const uint8_t proof[SCRAM_KEY_LEN], uint8_t server_sig[SCRAM_KEY_LEN])
{
    uint8_t sig[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
    bool ok = false;
    if (scram_hmac(creds->stored_key, auth, auth_len, sig) &&
        scram_hmac(creds->server_key, auth, auth_len, server_sig)) {
        for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
            client_key[i] = proof[i] ^ sig[i];
        ok = SHA256(client_key, SCRAM_KEY_LEN, stored) != NULL &&
             CRYPTO_memcmp(stored, creds->stored_key, SCRAM_KEY_LEN) == 0;
    }
    OPENSSL_cleanse(sig, sizeof(sig));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    OPENSSL_cleanse(stored, sizeof(stored));
    return ok;
}

enum sasl_scram_status sasl_scram_client_final(struct sasl_scram *st,
                                               const struct sasl_scram_creds *creds,
                                               const uint8_t *cb_data, size_t cb_len,
                                               const uint8_t *msg, size_t len, char *out,
                                               size_t outlen, size_t *outn)
{
    const char *m = (const char *)msg, *nonce = NULL;
    uint8_t cbind[SCRAM_MSG_MAX], proof[SCRAM_KEY_LEN], server_sig[SCRAM_KEY_LEN];
    char auth[3 * SCRAM_MSG_MAX];
    size_t nonce_len = 0, cbind_len = 0, wp = 0;
    enum sasl_scram_status verdict = SASL_SCRAM_FAIL;

    if (outlen > 0)
        out[0] = '\0';
    *outn = 0;
    if (st->server_first_len == 0)
        return SASL_SCRAM_FAIL;
    if (len >= SCRAM_MSG_MAX || memchr(m, '\0', len) != NULL ||
        !scram_parse_client_final(m, len, &nonce, &nonce_len, cbind, &cbind_len, proof, &wp)) {
        verdict = SASL_SCRAM_SYNTAX;
        goto done;
    }

    /* RFC 5802 §6: c= must repeat our gs2-header, followed by the binding data when "p". */
    bool binds =
        st->cb == SASL_SCRAM_CB_TLS_EXPORTER || st->cb == SASL_SCRAM_CB_TLS_SERVER_END_POINT;
    size_t cb_used = binds ? cb_len : 0;
    if (binds && (cb_data == NULL || cb_len == 0 || cb_len > SCRAM_CB_DATA_MAX))
        goto done;
    if (cbind_len != st->gs2_header_len + cb_used ||
        memcmp(cbind, st->gs2_header, st->gs2_header_len) != 0 ||
        (cb_used > 0 && memcmp(cbind + st->gs2_header_len, cb_data, cb_used) != 0))
        goto done;
    if (nonce_len != st->nonce_len || memcmp(nonce, st->nonce, nonce_len) != 0)
        goto done;

    /* AuthMessage = client-first-message-bare "," server-first-message ","
     *               client-final-message-without-proof */
    size_t a = 0;
    memcpy(auth + a, st->client_first_bare, st->client_first_bare_len);
    a += st->client_first_bare_len;
    auth[a++] = ',';
    memcpy(auth + a, st->server_first, st->server_first_len);
    a += st->server_first_len;
    auth[a++] = ',';
    memcpy(auth + a, m, wp);
    a += wp;
    if (!scram_verify(creds, auth, a, proof, server_sig))
        goto done;

    char sig64[BASE64_ENCODED_LEN(SCRAM_KEY_LEN) + 1];
    base64_encode(server_sig, SCRAM_KEY_LEN, sig64, sizeof(sig64));
    int n = snprintf(out, outlen, "v=%s", sig64);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        goto done;
    }
    *outn = (size_t)n;
    verdict = SASL_SCRAM_OK;
done:
    OPENSSL_cleanse(proof, sizeof(proof));
    OPENSSL_cleanse(server_sig, sizeof(server_sig));
    /* One client-final per exchange: a second attempt would be a free proof guess. */
    st->client_nonce_len = 0;
    st->server_first_len = 0;
    st->nonce_len = 0;
    return verdict;
}
