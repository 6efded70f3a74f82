/* sasl/jwt: offline validation of bearer tokens that are JSON Web Tokens (RFC 7519) in the JWS
 * compact form (RFC 7515 §7.1), signed HS256, RS256 or ES256 (RFC 7518 §3.2-3.4). Pure: keys
 * are loaded by the caller; libcrypto is used only to compute and check signatures.
 * Checks, in order: three segments, header JSON with "alg" one of the three (never "none")
 * and matching a configured key (by "kid" when the token and key both name one), signature,
 * then the claims: "exp" required and in the future, "nbf"/"iat" not in the future (each with
 * leeway), "iss" equal to the policy's issuer, "aud" (string or array) containing the
 * policy's audience, and the identity claim (policy.claim, e.g. "email" or "sub") a non-empty
 * string without control characters. A header with "crit" is refused (no extension is
 * understood). Keys too weak for their alg are ignored as if absent (RFC 7518 §3.2-3.4): HS256
 * secrets under 32 octets, RSA keys under 2048 bits, EC keys not on P-256. */
#ifndef SLUICE_SASL_JWT_H
#define SLUICE_SASL_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define JWT_TOKEN_MAX 8192
#define JWT_KID_MAX 64

enum jwt_alg { JWT_HS256, JWT_RS256, JWT_ES256 };

struct jwt_key {
    enum jwt_alg alg;
    char kid[JWT_KID_MAX + 1];   /* "" = matches any token's kid */
    EVP_PKEY *pkey;              /* RS256 (RSA public key), ES256 (P-256 public key) */
    const uint8_t *secret;       /* HS256 shared secret */
    size_t secret_len;
};

struct jwt_policy {
    const char *issuer;          /* required "iss"; NULL = not checked */
    const char *audience;        /* required in "aud"; NULL = not checked */
    const char *claim;           /* the identity claim; "email" when NULL */
    int64_t now;                 /* seconds since the epoch */
    int64_t leeway;              /* seconds of clock skew allowed */
};

enum jwt_status {
    JWT_OK,
    JWT_MALFORMED,        /* not three base64url segments of JSON objects */
    JWT_BAD_ALG,          /* "none", an unknown alg, or no key for it */
    JWT_BAD_SIGNATURE,
    JWT_EXPIRED,          /* "exp" missing or past */
    JWT_NOT_YET_VALID,    /* "nbf" or "iat" in the future */
    JWT_BAD_ISSUER,
    JWT_BAD_AUDIENCE,
    JWT_NO_IDENTITY,      /* the identity claim missing, not a string, or too long */
};

/* identity: the identity claim's value, NUL-terminated, on JWT_OK. */
enum jwt_status jwt_verify(const char *token, size_t len, const struct jwt_key *keys, size_t nkeys,
                           const struct jwt_policy *policy, char *identity, size_t identity_len);

/* A short text for logs ("expired", "bad signature"...). */
const char *jwt_status_text(enum jwt_status st);

#endif
