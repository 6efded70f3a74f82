/* sasl/plain: splits the PLAIN message (RFC 4616 §2) and checks the answers of LOGIN.
 *
 * Called by smtp/auth after it has decoded the base64 of the client's response; the identity
 * check and the saslname decoder (RFC 5802 §5.1, RFC 5801 §4) are also used by sasl/scram
 * and sasl/bearer for the names they carry.
 *
 * Invariants: pure; every output is NUL-terminated within its buffer; on any refusal the
 * outputs hold empty strings (never half a message, never the password). Identities are
 * strict UTF-8 (RFC 3629 §4: no overlong forms, no surrogates, nothing above U+10FFFF)
 * without control characters, since they end up in logs and Received: headers
 * (HOSTILE-INPUTS B4). Passwords are any octets but NUL (RFC 4616 §2 SAFE), checked only for
 * length; their content is the password checker's business.
 */
#include "sasl/plain.h"

#include <string.h>

bool sasl_identity_valid(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t extra;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            cp = c & 0x07u;
        } else {
            return false;
        }
        if (len - i <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        /* Overlong 3- and 4-octet forms, surrogates, beyond U+10FFFF, and the C1 controls. */
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
            return false;
        i += extra + 1;
    }
    return true;
}

enum sasl_plain_status sasl_saslname_decode(const char *s, size_t n, char out[SASL_ID_MAX + 1])
{
    enum sasl_plain_status st = n == 0 ? SASL_PLAIN_EMPTY : SASL_PLAIN_OK;
    size_t o = 0;
    for (size_t i = 0; i < n && st == SASL_PLAIN_OK; i++) {
        char c = s[i];
        if (c == '=') {
            if (n - i >= 3 && s[i + 1] == '2' && s[i + 2] == 'C')
                c = ',';
            else if (n - i >= 3 && s[i + 1] == '3' && s[i + 2] == 'D')
                c = '=';
            else
                st = SASL_PLAIN_BAD_UTF8;
            i += 2;
        } else if (c == ',') {
            st = SASL_PLAIN_BAD_UTF8;
        }
        if (o == SASL_ID_MAX)
            st = SASL_PLAIN_TOO_LONG;
        else
            out[o++] = c;
    }
    if (st == SASL_PLAIN_OK && !sasl_identity_valid((const uint8_t *)out, o))
        st = SASL_PLAIN_BAD_UTF8;
    out[st == SASL_PLAIN_OK ? o : 0] = '\0';
    return st;
}

static void plain_clear(struct sasl_plain *out)
{
    memset(out, 0, sizeof(*out));
}

enum sasl_plain_status sasl_plain_parse(const uint8_t *message, size_t len, struct sasl_plain *out)
{
    plain_clear(out);
    const uint8_t *nul1 = memchr(message, '\0', len);
    if (nul1 == NULL)
        return SASL_PLAIN_SPLIT;
    size_t zid_len = (size_t)(nul1 - message);
    const uint8_t *cid = nul1 + 1;
    const uint8_t *nul2 = memchr(cid, '\0', len - zid_len - 1);
    if (nul2 == NULL)
        return SASL_PLAIN_SPLIT;
    size_t cid_len = (size_t)(nul2 - cid);
    const uint8_t *pw = nul2 + 1;
    size_t pw_len = len - zid_len - cid_len - 2;
    /* RFC 4616 §2: passwd is 1*SAFE, so a third NUL makes a fourth field, not a password. */
    if (memchr(pw, '\0', pw_len) != NULL)
        return SASL_PLAIN_SPLIT;
    if (cid_len == 0 || pw_len == 0)
        return SASL_PLAIN_EMPTY;
    if (zid_len > SASL_ID_MAX || cid_len > SASL_ID_MAX || pw_len > SASL_PASSWORD_MAX)
        return SASL_PLAIN_TOO_LONG;
    if (!sasl_identity_valid(message, zid_len) || !sasl_identity_valid(cid, cid_len))
        return SASL_PLAIN_BAD_UTF8;
    memcpy(out->authzid, message, zid_len);
    memcpy(out->authcid, cid, cid_len);
    memcpy(out->password, pw, pw_len);
    out->password_len = pw_len;
    return SASL_PLAIN_OK;
}

enum sasl_plain_status sasl_login_field(const uint8_t *in, size_t len, char *out, size_t outlen,
                                        size_t *outn)
{
    enum sasl_plain_status st = SASL_PLAIN_OK;

    if (outlen > 0)
        out[0] = '\0';
    *outn = 0;
    if (len == 0)
        st = SASL_PLAIN_EMPTY;
    else if (memchr(in, '\0', len) != NULL)
        st = SASL_PLAIN_SPLIT;
    else if (len > SASL_PASSWORD_MAX || len >= outlen)
        st = SASL_PLAIN_TOO_LONG;
    if (st != SASL_PLAIN_OK)
        return st;
    memcpy(out, in, len);
    out[len] = '\0';
    *outn = len;
    return SASL_PLAIN_OK;
}

enum sasl_plain_status sasl_login_user(const uint8_t *in, size_t len, char *out, size_t outlen,
                                       size_t *outn)
{
    size_t cap = outlen < SASL_ID_MAX + 1 ? outlen : SASL_ID_MAX + 1;
    enum sasl_plain_status st = sasl_login_field(in, len, out, cap, outn);
    if (st == SASL_PLAIN_OK && !sasl_identity_valid(in, len)) {
        out[0] = '\0';
        *outn = 0;
        return SASL_PLAIN_BAD_UTF8;
    }
    return st;
}
