/* sasl/jwt: offline validation of a JSON Web Token (RFC 7519) in JWS compact serialization
 * (RFC 7515 §7.1), for OAUTHBEARER and XOAUTH2 (sasl/bearer hands over the token).
 *
 * Invariants: pure (libcrypto computes signatures; no I/O, no globals); the token is at most
 * JWT_TOKEN_MAX octets, so its three decoded segments share one stack buffer; nothing about the
 * claims is believed before the signature checks out, and a key signs for exactly one alg, so
 * an RSA public key can never be used as an HMAC secret (RFC 8725 §2.1, §3.1); identity is ""
 * on every status but JWT_OK.
 *
 * Implements: RFC 7515 §5.2 (validation), §4.1.1 (alg), §4.1.4 (kid), §4.1.11 (crit);
 * RFC 7518 §3.2 (HS256), §3.3 (RS256), §3.4 (ES256); RFC 7519 §4.1.1-§4.1.6 (iss, sub/email,
 * aud, exp, nbf, iat) and §7.2 (validation).
 */
#include "sasl/jwt.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "util/base64.h"
#include "util/json.h"

/* Three segments decode to at most three quarters of the token. */
#define JWT_DECODED_MAX (JWT_TOKEN_MAX / 4 * 3)
#define JWT_HS256_LEN 32
#define JWT_ES256_LEN 64
/* RFC 7518 §3.2: an HS256 key at least as long as the hash; §3.3: RSA keys of 2048 bits. */
#define JWT_HS256_KEY_MIN 32
#define JWT_RSA_BITS_MIN 2048
/* DER of an ECDSA P-256 signature: SEQUENCE of two INTEGERs of up to 33 octets. */
#define JWT_ES256_DER_MAX 72

static bool jwt_alg_parse(const char *name, enum jwt_alg *alg)
{
    /* RFC 7515 §4.1.1: case-sensitive. "none" (RFC 7518 §3.6) is never one of them. */
    if (strcmp(name, "HS256") == 0)
        *alg = JWT_HS256;
    else if (strcmp(name, "RS256") == 0)
        *alg = JWT_RS256;
    else if (strcmp(name, "ES256") == 0)
        *alg = JWT_ES256;
    else
        return false;
    return true;
}

/* A configured key that cannot honestly sign for its alg is skipped, as if absent. */
static bool jwt_key_usable(const struct jwt_key *key)
{
    switch (key->alg) {
    case JWT_HS256:
        return key->secret != NULL && key->secret_len >= JWT_HS256_KEY_MIN &&
               key->secret_len <= INT_MAX;
    case JWT_RS256:
        return key->pkey != NULL && EVP_PKEY_is_a(key->pkey, "RSA") &&
               EVP_PKEY_get_bits(key->pkey) >= JWT_RSA_BITS_MIN;
    case JWT_ES256: {
        char group[32];
        size_t n = 0;
        return key->pkey != NULL && EVP_PKEY_is_a(key->pkey, "EC") &&
               EVP_PKEY_get_group_name(key->pkey, group, sizeof group, &n) == 1 &&
               strcmp(group, "prime256v1") == 0;
    }
    }
    return false;
}

/* kid is NULL when the token names none; kid_len > JWT_KID_MAX when it names one no key can
 * carry. */
static bool jwt_key_matches(const struct jwt_key *key, enum jwt_alg alg, const char *kid,
                            size_t kid_len)
{
    if (key->alg != alg)
        return false;
    size_t key_kid_len = strnlen(key->kid, sizeof key->kid);
    if (key_kid_len > JWT_KID_MAX)
        return false;
    if (kid != NULL && key_kid_len > 0 &&
        (kid_len != key_kid_len || memcmp(kid, key->kid, kid_len) != 0))
        return false;
    return jwt_key_usable(key);
}

static bool jwt_digest_verify(EVP_PKEY *pkey, bool rsa, const uint8_t *input, size_t inlen,
                              const uint8_t *sig, size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    /* RFC 7518 §3.3: RSASSA-PKCS1-v1_5, never PSS or raw, whatever the key's defaults. */
    bool ok = ctx != NULL && EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, pkey) == 1 &&
              (!rsa || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0) &&
              EVP_DigestVerify(ctx, sig, siglen, input, inlen) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* RFC 7518 §3.4: the JWS signature is R || S, 32 octets each; libcrypto verifies DER. */
static bool jwt_verify_es256(EVP_PKEY *pkey, const uint8_t *input, size_t inlen, const uint8_t *sig,
                             size_t siglen)
{
    if (siglen != JWT_ES256_LEN)
        return false;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, JWT_ES256_LEN / 2, NULL);
    BIGNUM *s = BN_bin2bn(sig + JWT_ES256_LEN / 2, JWT_ES256_LEN / 2, NULL);
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return false;
    }
    uint8_t der[JWT_ES256_DER_MAX];
    uint8_t *p = der;
    bool ok = i2d_ECDSA_SIG(es, NULL) <= (int)sizeof der;
    int derlen = ok ? i2d_ECDSA_SIG(es, &p) : 0;
    ECDSA_SIG_free(es);
    return derlen > 0 && jwt_digest_verify(pkey, false, input, inlen, der, (size_t)derlen);
}

static bool jwt_signature_ok(const struct jwt_key *key, const uint8_t *input, size_t inlen,
                             const uint8_t *sig, size_t siglen)
{
    switch (key->alg) {
    case JWT_HS256: {
        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        if (siglen != JWT_HS256_LEN)
            return false;
        if (HMAC(EVP_sha256(), key->secret, (int)key->secret_len, input, inlen, mac, &maclen) ==
                NULL ||
            maclen != JWT_HS256_LEN)
            return false;
        return CRYPTO_memcmp(mac, sig, JWT_HS256_LEN) == 0;
    }
    case JWT_RS256:
        /* RFC 8017 §8.2.2: the signature is exactly as long as the modulus. */
        if (siglen != (size_t)EVP_PKEY_get_size(key->pkey))
            return false;
        return jwt_digest_verify(key->pkey, true, input, inlen, sig, siglen);
    case JWT_ES256:
        return jwt_verify_es256(key->pkey, input, inlen, sig, siglen);
    }
    return false;
}

/* RFC 7519 §4.1.4: now must be before exp, here by up to leeway seconds late. */
static bool jwt_before_exp(int64_t now, int64_t exp, int64_t leeway)
{
    if (exp > INT64_MAX - leeway)
        return true;
    return now < exp + leeway;
}

/* RFC 7519 §4.1.5 (nbf; §4.1.6 iat alike): t must not be after now, here by up to leeway
 * seconds early. */
static bool jwt_not_after_now(int64_t now, int64_t t, int64_t leeway)
{
    if (now > INT64_MAX - leeway)
        return true;
    return t <= now + leeway;
}

/* An optional time claim that, when present, must not lie in the future. */
static bool jwt_time_claim_ok(const char *claims, size_t len, const char *name, int64_t now,
                              int64_t leeway)
{
    int64_t t = 0;
    enum json_get r = json_get_ceil(claims, len, name, &t);
    if (r == JSON_MISSING)
        return true;
    return r == JSON_FOUND && jwt_not_after_now(now, t, leeway);
}

/* A member that is a string (never an array) equal to value. */
static bool jwt_string_claim_is(const char *claims, size_t len, const char *name, const char *value)
{
    if (json_has_string(claims, len, name, value) != JSON_FOUND)
        return false;
    /* json_has_string also accepts an array holding value; a one-octet buffer tells a string
     * (FOUND when empty, TOO_LONG otherwise) from an array (WRONG_TYPE) without a copy. */
    char probe[1];
    enum json_get r = json_get_string(claims, len, name, probe, sizeof probe);
    return r == JSON_FOUND || r == JSON_TOO_LONG;
}

/* The identity goes into logs and the Received: header: no control characters (B4). */
static bool jwt_identity_ok(const char *id)
{
    if (id[0] == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static enum jwt_status jwt_check_claims(const char *claims, size_t len,
                                        const struct jwt_policy *policy, char *identity,
                                        size_t identity_len)
{
    int64_t leeway = policy->leeway > 0 ? policy->leeway : 0;
    int64_t exp = 0;
    /* RFC 7519 §4.1.4 makes exp optional; a bearer token that never expires is refused. */
    if (json_get_ceil(claims, len, "exp", &exp) != JSON_FOUND ||
        !jwt_before_exp(policy->now, exp, leeway))
        return JWT_EXPIRED;
    if (!jwt_time_claim_ok(claims, len, "nbf", policy->now, leeway) ||
        !jwt_time_claim_ok(claims, len, "iat", policy->now, leeway))
        return JWT_NOT_YET_VALID;
    if (policy->issuer != NULL && !jwt_string_claim_is(claims, len, "iss", policy->issuer))
        return JWT_BAD_ISSUER;
    /* RFC 7519 §4.1.3: aud is one string or an array of them. */
    if (policy->audience != NULL &&
        json_has_string(claims, len, "aud", policy->audience) != JSON_FOUND)
        return JWT_BAD_AUDIENCE;
    const char *claim = policy->claim != NULL ? policy->claim : "email";
    if (identity == NULL ||
        json_get_string(claims, len, claim, identity, identity_len) != JSON_FOUND)
        return JWT_NO_IDENTITY;
    if (!jwt_identity_ok(identity)) {
        identity[0] = '\0';
        return JWT_NO_IDENTITY;
    }
    return JWT_OK;
}

enum jwt_status jwt_verify(const char *token, size_t len, const struct jwt_key *keys, size_t nkeys,
                           const struct jwt_policy *policy, char *identity, size_t identity_len)
{
    if (identity != NULL && identity_len > 0)
        identity[0] = '\0';
    if (token == NULL || len > JWT_TOKEN_MAX)
        return JWT_MALFORMED;

    /* RFC 7515 §7.1: BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature). */
    const char *dot1 = memchr(token, '.', len);
    if (dot1 == NULL)
        return JWT_MALFORMED;
    const char *payload_b64 = dot1 + 1;
    const char *dot2 = memchr(payload_b64, '.', len - (size_t)(payload_b64 - token));
    if (dot2 == NULL)
        return JWT_MALFORMED;
    /* A fourth segment needs no search: '.' is outside the base64url alphabet, so the
     * signature segment then fails to decode. */
    const char *sig_b64 = dot2 + 1;
    size_t sig_b64_len = len - (size_t)(sig_b64 - token);

    uint8_t buf[JWT_DECODED_MAX];
    size_t hlen, plen, siglen;
    if (!base64url_decode(token, (size_t)(dot1 - token), buf, sizeof buf, &hlen) ||
        !base64url_decode(payload_b64, (size_t)(dot2 - payload_b64), buf + hlen, sizeof buf - hlen,
                          &plen) ||
        !base64url_decode(sig_b64, sig_b64_len, buf + hlen + plen, sizeof buf - hlen - plen,
                          &siglen))
        return JWT_MALFORMED;
    const char *header = (const char *)buf;
    const char *claims = (const char *)buf + hlen;
    const uint8_t *sig = buf + hlen + plen;

    if (!json_object_valid(header, hlen))
        return JWT_MALFORMED;
    char alg_name[8];
    enum jwt_alg alg;
    if (json_get_string(header, hlen, "alg", alg_name, sizeof alg_name) != JSON_FOUND ||
        !jwt_alg_parse(alg_name, &alg))
        return JWT_BAD_ALG;
    /* RFC 7515 §4.1.11: crit names extensions the verifier must understand; this one
     * understands none. Any type of value counts as present: only an absent member is
     * MISSING to json_get_int. */
    int64_t unused;
    if (json_get_int(header, hlen, "crit", &unused) != JSON_MISSING)
        return JWT_MALFORMED;
    char kid_buf[JWT_KID_MAX + 1];
    const char *kid = kid_buf;
    size_t kid_len;
    switch (json_get_string(header, hlen, "kid", kid_buf, sizeof kid_buf)) {
    case JSON_FOUND:
        kid_len = strlen(kid_buf);
        break;
    case JSON_TOO_LONG:
        kid_len = JWT_KID_MAX + 1;
        break;
    case JSON_MISSING:
        kid = NULL;
        kid_len = 0;
        break;
    default: /* RFC 7515 §4.1.4: kid is a string */
        return JWT_MALFORMED;
    }

    /* Several keys may match (rotation without kids): any one of them may have signed. */
    const uint8_t *input = (const uint8_t *)token;
    size_t inlen = (size_t)(dot2 - token);
    bool candidate = false, verified = false;
    for (size_t i = 0; i < nkeys && !verified; i++) {
        if (!jwt_key_matches(&keys[i], alg, kid, kid_len))
            continue;
        candidate = true;
        verified = jwt_signature_ok(&keys[i], input, inlen, sig, siglen);
    }
    if (!candidate)
        return JWT_BAD_ALG;
    if (!verified)
        return JWT_BAD_SIGNATURE;

    if (!json_object_valid(claims, plen))
        return JWT_MALFORMED;
    return jwt_check_claims(claims, plen, policy, identity, identity_len);
}

const char *jwt_status_text(enum jwt_status st)
{
    switch (st) {
    case JWT_OK:
        return "ok";
    case JWT_MALFORMED:
        return "malformed token";
    case JWT_BAD_ALG:
        return "no key for the token's alg";
    case JWT_BAD_SIGNATURE:
        return "bad signature";
    case JWT_EXPIRED:
        return "expired";
    case JWT_NOT_YET_VALID:
        return "not yet valid";
    case JWT_BAD_ISSUER:
        return "wrong issuer";
    case JWT_BAD_AUDIENCE:
        return "wrong audience";
    case JWT_NO_IDENTITY:
        return "no identity claim";
    }
    return "unknown";
}
