/* sasl/bearer: parses the client response of OAUTHBEARER (RFC 7628 §3.1) and of XOAUTH2
 * (Google's "user=<u>^Aauth=Bearer <t>^A^A"), recognises OAUTHBEARER's dummy response after an
 * error (§3.2.3), and writes the error challenge (§3.2.2).
 *
 * Called by smtp/auth after it has decoded the base64 of the client's response; the token goes
 * on to sasl/jwt.
 *
 * Invariants: pure; every output is NUL-terminated within its buffer and *out is all zero
 * unless the result is SASL_BEARER_OK. The whole message is checked against the grammar before
 * a verdict, so SASL_BEARER_NO_TOKEN means a well-formed message. The auth-scheme is
 * case-insensitive (RFC 7235 §2.1); the token must be an RFC 6750 §2.1 b64token, so it carries
 * no space, control character or ^A. OAUTHBEARER has no channel binding: a "p=" flag is a
 * syntax error, as is the GS2 non-standard flag "F" (RFC 5801 §4).
 */
#include "sasl/bearer.h"

#include <stdio.h>
#include <string.h>

#define BEARER_KVSEP 0x01

/* RFC 6750 §2.1 b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool bearer_b64token_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

/* RFC 7235 §2.1: auth-scheme is case-insensitive; "Bearer" 1*SP b64token (RFC 6750 §2.1). */
static enum sasl_bearer_status bearer_auth_value(const uint8_t *v, size_t n,
                                                 struct sasl_bearer *out)
{
    static const char scheme[] = "bearer";
    const size_t sl = sizeof(scheme) - 1;

    if (n < sl || (n > sl && v[sl] != ' '))
        return SASL_BEARER_NO_TOKEN;
    for (size_t i = 0; i < sl; i++) {
        uint8_t c = v[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        if (c != (uint8_t)scheme[i])
            return SASL_BEARER_NO_TOKEN;
    }
    size_t i = sl;
    while (i < n && v[i] == ' ')
        i++;
    const uint8_t *tok = v + i;
    size_t tl = n - i, k = 0;
    while (k < tl && bearer_b64token_char(tok[k]))
        k++;
    if (k == 0)
        return SASL_BEARER_SYNTAX;
    while (k < tl && tok[k] == '=')
        k++;
    if (k != tl)
        return SASL_BEARER_SYNTAX;
    if (tl > SASL_TOKEN_MAX)
        return SASL_BEARER_TOO_LONG;
    memcpy(out->token, tok, tl);
    out->token[tl] = '\0';
    out->token_len = tl;
    return SASL_BEARER_OK;
}

/* RFC 7628 §3.1 value = *(VCHAR / SP / HTAB / CR / LF) */
static bool bearer_value_ok(const uint8_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = v[i];
        if (!(c >= 0x20 && c <= 0x7e) && c != '\t' && c != '\r' && c != '\n')
            return false;
    }
    return true;
}

static enum sasl_bearer_status bearer_fail(struct sasl_bearer *out, enum sasl_bearer_status st)
{
    memset(out, 0, sizeof(*out));
    return st;
}

static enum sasl_bearer_status bearer_authzid(const char *s, size_t n, struct sasl_bearer *out)
{
    switch (sasl_saslname_decode(s, n, out->authzid)) {
    case SASL_PLAIN_OK:
        return SASL_BEARER_OK;
    case SASL_PLAIN_TOO_LONG:
        return SASL_BEARER_TOO_LONG;
    default:
        return SASL_BEARER_SYNTAX;
    }
}

enum sasl_bearer_status sasl_oauthbearer_parse(const uint8_t *msg, size_t len,
                                               struct sasl_bearer *out)
{
    enum sasl_bearer_status st;

    memset(out, 0, sizeof(*out));
    /* §3.2.3: the lone kvsep that ends an error sequence */
    if (len == 1 && msg[0] == BEARER_KVSEP)
        return SASL_BEARER_DUMMY;

    /* gs2-header = gs2-cbind-flag "," [ "a=" saslname ] "," (RFC 5801 §4) */
    if (len < 2 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',')
        return SASL_BEARER_SYNTAX;
    const uint8_t *zid = msg + 2;
    const uint8_t *comma = memchr(zid, ',', len - 2);
    if (comma == NULL)
        return SASL_BEARER_SYNTAX;
    size_t zl = (size_t)(comma - zid);
    if (zl > 0) {
        if (zl < 3 || zid[0] != 'a' || zid[1] != '=')
            return bearer_fail(out, SASL_BEARER_SYNTAX);
        st = bearer_authzid((const char *)zid + 2, zl - 2, out);
        if (st != SASL_BEARER_OK)
            return bearer_fail(out, st);
    }

    /* kvsep *kvpair kvsep, and nothing after it */
    size_t pos = (size_t)(comma - msg) + 1;
    if (pos >= len || msg[pos] != BEARER_KVSEP)
        return bearer_fail(out, SASL_BEARER_SYNTAX);
    pos++;
    const uint8_t *auth = NULL;
    size_t auth_len = 0;
    for (;;) {
        if (pos >= len)
            return bearer_fail(out, SASL_BEARER_SYNTAX);
        if (msg[pos] == BEARER_KVSEP) {
            if (pos + 1 != len)
                return bearer_fail(out, SASL_BEARER_SYNTAX);
            break;
        }
        const uint8_t *kv = msg + pos;
        const uint8_t *sep = memchr(kv, BEARER_KVSEP, len - pos);
        if (sep == NULL)
            return bearer_fail(out, SASL_BEARER_SYNTAX);
        size_t kvl = (size_t)(sep - kv), kl = 0;
        while (kl < kvl && ((kv[kl] >= 'A' && kv[kl] <= 'Z') || (kv[kl] >= 'a' && kv[kl] <= 'z')))
            kl++;
        if (kl == 0 || kl == kvl || kv[kl] != '=' || !bearer_value_ok(kv + kl + 1, kvl - kl - 1))
            return bearer_fail(out, SASL_BEARER_SYNTAX);
        if (kl == 4 && memcmp(kv, "auth", 4) == 0) {
            if (auth != NULL)
                return bearer_fail(out, SASL_BEARER_SYNTAX); /* two answers to one question */
            auth = kv + 5;
            auth_len = kvl - 5;
        }
        pos += kvl + 1;
    }
    if (auth == NULL)
        return bearer_fail(out, SASL_BEARER_NO_TOKEN);
    st = bearer_auth_value(auth, auth_len, out);
    return st == SASL_BEARER_OK ? st : bearer_fail(out, st);
}

enum sasl_bearer_status sasl_xoauth2_parse(const uint8_t *msg, size_t len, struct sasl_bearer *out)
{
    static const char user_key[] = "user=", auth_key[] = "auth=";
    const size_t ul = sizeof(user_key) - 1, al = sizeof(auth_key) - 1;

    memset(out, 0, sizeof(*out));
    if (len < ul || memcmp(msg, user_key, ul) != 0)
        return SASL_BEARER_SYNTAX;
    const uint8_t *user = msg + ul;
    const uint8_t *sep = memchr(user, BEARER_KVSEP, len - ul);
    if (sep == NULL)
        return SASL_BEARER_SYNTAX;
    size_t user_len = (size_t)(sep - user);
    size_t pos = ul + user_len + 1;
    /* "auth=" value ^A ^A, and nothing after it */
    if (len - pos < al + 2 || memcmp(msg + pos, auth_key, al) != 0 ||
        msg[len - 1] != BEARER_KVSEP || msg[len - 2] != BEARER_KVSEP)
        return SASL_BEARER_SYNTAX;
    const uint8_t *auth = msg + pos + al;
    size_t auth_len = len - 2 - pos - al;
    if (memchr(auth, BEARER_KVSEP, auth_len) != NULL || !bearer_value_ok(auth, auth_len))
        return SASL_BEARER_SYNTAX;
    if (user_len == 0 || !sasl_identity_valid(user, user_len))
        return SASL_BEARER_SYNTAX;
    if (user_len > SASL_ID_MAX)
        return SASL_BEARER_TOO_LONG;
    enum sasl_bearer_status st = bearer_auth_value(auth, auth_len, out);
    if (st != SASL_BEARER_OK)
        return bearer_fail(out, st);
    memcpy(out->authzid, user, user_len);
    out->authzid[user_len] = '\0';
    return SASL_BEARER_OK;
}

size_t sasl_oauthbearer_error(const char *scope, char *out, size_t outlen)
{
    static const char head[] = "{\"status\":\"invalid_token\"";
    size_t o = sizeof(head) - 1;

    if (outlen > 0)
        out[0] = '\0';
    if (outlen <= o)
        return 0;
    memcpy(out, head, o);
    if (scope != NULL) {
        static const char key[] = ",\"scope\":\"";
        if (outlen - o <= sizeof(key) - 1)
            goto small;
        memcpy(out + o, key, sizeof(key) - 1);
        o += sizeof(key) - 1;
        /* RFC 8259 §7: '"', '\' and control characters must be escaped in a string. */
        for (const unsigned char *p = (const unsigned char *)scope; *p != '\0'; p++) {
            char esc[7];
            size_t el;
            if (*p == '"' || *p == '\\') {
                esc[0] = '\\';
                esc[1] = (char)*p;
                el = 2;
            } else if (*p < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", *p);
                el = 6;
            } else {
                esc[0] = (char)*p;
                el = 1;
            }
            if (outlen - o <= el)
                goto small;
            memcpy(out + o, esc, el);
            o += el;
        }
        if (outlen - o <= 1)
            goto small;
        out[o++] = '"';
    }
    if (outlen - o <= 1)
        goto small;
    out[o++] = '}';
    out[o] = '\0';
    return o;
small:
    out[0] = '\0';
    return 0;
}
