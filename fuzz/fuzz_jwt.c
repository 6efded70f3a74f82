/* libFuzzer target for sasl/jwt, with one fixed HS256 key. The first byte picks a mode:
 * even, the rest is a token as a client would send it; odd, the rest is a JWS header and a
 * claim set separated by the first NUL, which this target encodes and signs with the key, so
 * the claim checks behind the signature are reached too. Checks, beyond memory safety: the
 * identity is "" on every failure and, on JWT_OK, a non-empty NUL-terminated string without
 * control characters within its buffer; a token this target signed never fails as
 * JWT_BAD_SIGNATURE (the only key matches every kid and HMAC is deterministic); and an
 * accepted token stays accepted when given again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sasl/jwt.h"
#include "util/base64.h"

static const uint8_t secret[] = "fuzz-secret-fuzz-secret-fuzz-sec"; /* 32 octets */

static void check(int cond)
{
    if (!cond)
        abort();
}

/* header "." payload "." HMAC, or 0 when it does not fit in out. */
static size_t sign_token(const uint8_t *header, size_t hlen, const uint8_t *payload, size_t plen,
                         char *out, size_t cap)
{
    size_t n = base64url_encode(header, hlen, out, cap);
    if ((n == 0 && hlen > 0) || n + 1 >= cap)
        return 0;
    out[n++] = '.';
    size_t m = base64url_encode(payload, plen, out + n, cap - n);
    if ((m == 0 && plen > 0) || n + m + 1 >= cap)
        return 0;
    n += m;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    check(HMAC(EVP_sha256(), secret, 32, (const uint8_t *)out, n, mac, &maclen) != NULL);
    out[n++] = '.';
    m = base64url_encode(mac, maclen, out + n, cap - n);
    if (m == 0)
        return 0;
    return n + m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > JWT_TOKEN_MAX + 1)
        return 0;
    bool signed_here = data[0] & 1;
    struct jwt_key key = {.alg = JWT_HS256, .kid = "", .secret = secret, .secret_len = 32};
    struct jwt_policy policy = {.issuer = "https://idp.example",
                                .audience = "mx.example",
                                .claim = (data[0] & 2) ? "sub" : NULL,
                                .now = 1700000000,
                                .leeway = (data[0] & 4) ? 60 : 0};
    size_t idcap = (size_t)(data[0] >> 3);

    char *token = malloc(JWT_TOKEN_MAX + 64);
    check(token != NULL);
    size_t len;
    if (signed_here) {
        const uint8_t *body = data + 1;
        size_t blen = size - 1;
        const uint8_t *nul = memchr(body, '\0', blen);
        size_t hlen = nul ? (size_t)(nul - body) : blen;
        const uint8_t *payload = nul ? nul + 1 : body + blen;
        size_t plen = blen - hlen - (nul ? 1 : 0);
        len = sign_token(body, hlen, payload, plen, token, JWT_TOKEN_MAX + 64);
        if (len == 0) {
            free(token);
            return 0;
        }
    } else {
        len = size - 1;
        memcpy(token, data + 1, len);
    }

    char *id = malloc(idcap ? idcap : 1);
    check(id != NULL);
    memset(id, 'Z', idcap);
    enum jwt_status st = jwt_verify(token, len, &key, 1, &policy, id, idcap);
    check(jwt_status_text(st) != NULL);
    if (st == JWT_OK) {
        size_t n = strnlen(id, idcap);
        check(n > 0 && n < idcap);
        for (size_t i = 0; i < n; i++)
            check((unsigned char)id[i] >= 0x20 && (unsigned char)id[i] != 0x7f);
        check(jwt_verify(token, len, &key, 1, &policy, id, idcap) == JWT_OK);
    } else if (idcap > 0) {
        check(id[0] == '\0');
    }
    if (signed_here && len <= JWT_TOKEN_MAX)
        check(st != JWT_BAD_SIGNATURE);
    free(id);
    free(token);
    return 0;
}
