/* Unit tests for sasl/jwt: tokens are built here (HS256 with a secret, RS256 and ES256 with keys
 * generated at setup) and checked against RFC 7515 §7.1 syntax, RFC 7518 §3.2-3.4 signatures,
 * alg confusion (RFC 8725 §2.1), kid selection, and RFC 7519 §4.1 claims. */
/* cmocka.h needs these before it, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "sasl/jwt.h"
#include "util/base64.h"

#define NOW 1700000000
#define BUF 12000

static const uint8_t secret1[] = "0123456789abcdef0123456789abcdef"; /* 32 octets + NUL */
static const uint8_t secret2[] = "fedcba9876543210fedcba9876543210";
static const uint8_t secret_short[] = "0123456789abcdef0123456789abcde"; /* 31 octets */

struct fixture {
    EVP_PKEY *rsa, *rsa_pub, *rsa2; /* rsa2: another key pair, the "wrong key" */
    EVP_PKEY *ec, *ec_pub, *ec2;
    EVP_PKEY *rsa1024_pub, *ec384_pub; /* keys too weak or on the wrong curve */
    char rsa_pem[2048];                /* rsa_pub as PEM: the alg-confusion "secret" */
    size_t rsa_pem_len;
};

static EVP_PKEY *public_only(EVP_PKEY *k, char *pem, size_t pemcap, size_t *pemlen)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    assert_true(n > 0);
    if (pem != NULL) {
        assert_true((size_t)n < pemcap);
        memcpy(pem, data, (size_t)n);
        *pemlen = (size_t)n;
    }
    EVP_PKEY *pub = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    assert_non_null(pub);
    BIO_free(b);
    return pub;
}

static int setup(void **state)
{
    static struct fixture f;
    f.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    f.rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    f.ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    f.ec2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (!f.rsa || !f.rsa2 || !f.ec || !f.ec2 || !rsa1024 || !ec384)
        return -1;
    f.rsa_pub = public_only(f.rsa, f.rsa_pem, sizeof f.rsa_pem, &f.rsa_pem_len);
    f.ec_pub = public_only(f.ec, NULL, 0, NULL);
    f.rsa1024_pub = public_only(rsa1024, NULL, 0, NULL);
    f.ec384_pub = public_only(ec384, NULL, 0, NULL);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(ec384);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    EVP_PKEY *all[] = {f->rsa,    f->rsa_pub, f->rsa2,        f->ec,
                       f->ec_pub, f->ec2,     f->rsa1024_pub, f->ec384_pub};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        EVP_PKEY_free(all[i]);
    return 0;
}

/* ---- Token building ---- */

enum signer {
    SIGN_HS,         /* HMAC-SHA256 with secret1 */
    SIGN_HS2,        /* HMAC-SHA256 with secret2 */
    SIGN_HS_RSA_PEM, /* HMAC-SHA256 keyed with the RSA public key's PEM: alg confusion */
    SIGN_RS,
    SIGN_RS_WRONG,
    SIGN_RS_1024, /* signed by nobody we trust; paired with the 1024-bit key below */
    SIGN_ES,
    SIGN_ES_WRONG,
    SIGN_ES_DER, /* ES256 left in DER, as a naive signer would send it */
    SIGN_EMPTY,  /* an empty signature segment, as "alg":"none" tokens carry */
};

static size_t sign_evp(EVP_PKEY *k, const char *in, size_t inlen, uint8_t *sig, size_t cap)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
    size_t n = cap;
    assert_int_equal(EVP_DigestSign(ctx, sig, &n, (const uint8_t *)in, inlen), 1);
    EVP_MD_CTX_free(ctx);
    return n;
}

/* RFC 7518 §3.4: DER ECDSA-Sig-Value to the fixed-width R || S of a JWS. */
static size_t der_to_raw(const uint8_t *der, size_t n, uint8_t *raw)
{
    const uint8_t *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    assert_non_null(es);
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    assert_int_equal(BN_bn2binpad(r, raw, 32), 32);
    assert_int_equal(BN_bn2binpad(s, raw + 32, 32), 32);
    ECDSA_SIG_free(es);
    return 64;
}

static size_t sign(const struct fixture *f, enum signer how, const char *in, size_t inlen,
                   uint8_t *sig)
{
    unsigned int maclen = 0;
    uint8_t der[256];
    size_t n;
    switch (how) {
    case SIGN_HS:
        HMAC(EVP_sha256(), secret1, 32, (const uint8_t *)in, inlen, sig, &maclen);
        return maclen;
    case SIGN_HS2:
        HMAC(EVP_sha256(), secret2, 32, (const uint8_t *)in, inlen, sig, &maclen);
        return maclen;
    case SIGN_HS_RSA_PEM:
        HMAC(EVP_sha256(), f->rsa_pem, (int)f->rsa_pem_len, (const uint8_t *)in, inlen, sig,
             &maclen);
        return maclen;
    case SIGN_RS:
        return sign_evp(f->rsa, in, inlen, sig, 512);
    case SIGN_RS_WRONG:
        return sign_evp(f->rsa2, in, inlen, sig, 512);
    case SIGN_RS_1024:
        return sign_evp(f->rsa2, in, inlen, sig, 512);
    case SIGN_ES:
        n = sign_evp(f->ec, in, inlen, der, sizeof der);
        return der_to_raw(der, n, sig);
    case SIGN_ES_WRONG:
        n = sign_evp(f->ec2, in, inlen, der, sizeof der);
        return der_to_raw(der, n, sig);
    case SIGN_ES_DER:
        return sign_evp(f->ec, in, inlen, sig, 256);
    case SIGN_EMPTY:
        return 0;
    }
    return 0;
}

/* header and payload are JSON texts; returns the token's length in out. */
static size_t make_token(const struct fixture *f, enum signer how, const char *header,
                         const char *payload, char *out, size_t cap)
{
    /* base64url_encode answers 0 for an empty input as for no room: allow the former. */
    size_t n = base64url_encode((const uint8_t *)header, strlen(header), out, cap);
    assert_true((n > 0 || header[0] == '\0') && n + 1 < cap);
    out[n++] = '.';
    size_t m = base64url_encode((const uint8_t *)payload, strlen(payload), out + n, cap - n);
    assert_true(m > 0);
    n += m;
    uint8_t sig[512];
    size_t siglen = sign(f, how, out, n, sig);
    out[n++] = '.';
    if (siglen > 0) {
        m = base64url_encode(sig, siglen, out + n, cap - n);
        assert_true(m > 0);
        n += m;
    }
    out[n] = '\0';
    return n;
}

/* ---- Key sets and policies ---- */

enum keyset {
    KEYS_ALL,     /* one HS256, one RS256, one ES256 key, no kids */
    KEYS_RS_ONLY, /* the RSA public key alone: the alg-confusion target */
    KEYS_HS_ONLY,
    KEYS_KIDS,     /* h1 (secret1), h2 (secret2), r1, e1 */
    KEYS_KIDS_ANY, /* h2 (secret2) then a kid-less HS256 key (secret1) */
    KEYS_HS_SHORT, /* an HS256 secret under 32 octets */
    KEYS_HS_AS_RS, /* the RSA key configured for HS256 without a secret */
    KEYS_RS_1024,
    KEYS_ES_384,
    KEYS_ES_AS_RS, /* the P-256 key configured as RS256 */
    KEYS_NONE,
};

static size_t fill_keys(const struct fixture *f, enum keyset ks, struct jwt_key *k)
{
    memset(k, 0, 4 * sizeof *k);
    switch (ks) {
    case KEYS_ALL:
        k[0] = (struct jwt_key){.alg = JWT_HS256, .secret = secret1, .secret_len = 32};
        k[1] = (struct jwt_key){.alg = JWT_RS256, .pkey = f->rsa_pub};
        k[2] = (struct jwt_key){.alg = JWT_ES256, .pkey = f->ec_pub};
        return 3;
    case KEYS_RS_ONLY:
        k[0] = (struct jwt_key){.alg = JWT_RS256, .pkey = f->rsa_pub};
        return 1;
    case KEYS_HS_ONLY:
        k[0] = (struct jwt_key){.alg = JWT_HS256, .secret = secret1, .secret_len = 32};
        return 1;
    case KEYS_KIDS:
        k[0] = (struct jwt_key){.alg = JWT_HS256, .kid = "h1", .secret = secret1, .secret_len = 32};
        k[1] = (struct jwt_key){.alg = JWT_HS256, .kid = "h2", .secret = secret2, .secret_len = 32};
        k[2] = (struct jwt_key){.alg = JWT_RS256, .kid = "r1", .pkey = f->rsa_pub};
        k[3] = (struct jwt_key){.alg = JWT_ES256, .kid = "e1", .pkey = f->ec_pub};
        return 4;
    case KEYS_KIDS_ANY:
        k[0] = (struct jwt_key){.alg = JWT_HS256, .kid = "h2", .secret = secret2, .secret_len = 32};
        k[1] = (struct jwt_key){.alg = JWT_HS256, .secret = secret1, .secret_len = 32};
        return 2;
    case KEYS_HS_SHORT:
        k[0] = (struct jwt_key){.alg = JWT_HS256, .secret = secret_short, .secret_len = 31};
        return 1;
    case KEYS_HS_AS_RS:
        k[0] = (struct jwt_key){.alg = JWT_HS256, .pkey = f->rsa_pub};
        return 1;
    case KEYS_RS_1024:
        k[0] = (struct jwt_key){.alg = JWT_RS256, .pkey = f->rsa1024_pub};
        return 1;
    case KEYS_ES_384:
        k[0] = (struct jwt_key){.alg = JWT_ES256, .pkey = f->ec384_pub};
        return 1;
    case KEYS_ES_AS_RS:
        k[0] = (struct jwt_key){.alg = JWT_RS256, .pkey = f->ec_pub};
        return 1;
    case KEYS_NONE:
        return 0;
    }
    return 0;
}

enum policy_kind {
    POL_DEFAULT, /* iss, aud checked; claim "email"; leeway 60 */
    POL_NO_LEEWAY,
    POL_NEG_LEEWAY,
    POL_UNCHECKED, /* issuer and audience NULL */
    POL_SUB,       /* identity claim "sub" */
};

static struct jwt_policy make_policy(enum policy_kind pk)
{
    struct jwt_policy p = {.issuer = "https://idp.example",
                           .audience = "mx.example",
                           .claim = NULL,
                           .now = NOW,
                           .leeway = 60};
    switch (pk) {
    case POL_DEFAULT:
        break;
    case POL_NO_LEEWAY:
        p.leeway = 0;
        break;
    case POL_NEG_LEEWAY:
        p.leeway = -1000;
        break;
    case POL_UNCHECKED:
        p.issuer = NULL;
        p.audience = NULL;
        break;
    case POL_SUB:
        p.claim = "sub";
        break;
    }
    return p;
}

/* ---- The table ---- */

#define HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define RS "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define ES "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"
#define ISS "\"iss\":\"https://idp.example\""
#define AUD "\"aud\":\"mx.example\""
#define EXP "\"exp\":1700000600"
#define EMAIL "\"email\":\"alice@example.org\""
#define CLAIMS "{" ISS "," AUD "," EXP "," EMAIL "}"
#define CLAIMS_WITH(x) "{" ISS "," AUD "," EXP "," EMAIL "," x "}"

struct jwt_case {
    const char *name;
    enum signer how;
    const char *header;
    const char *payload;
    enum keyset keys;
    enum policy_kind policy;
    enum jwt_status want;
    const char *identity; /* on JWT_OK */
};

static const struct jwt_case cases[] = {
    /* RFC 7518 §3.2-3.4: each alg, good and with the wrong key. */
    {"rfc7518_s3_2_hs256_ok", SIGN_HS, HS, CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_OK,
     "alice@example.org"},
    {"rfc7518_s3_3_rs256_ok", SIGN_RS, RS, CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_OK,
     "alice@example.org"},
    {"rfc7518_s3_4_es256_ok", SIGN_ES, ES, CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_OK,
     "alice@example.org"},
    {"hs256_wrong_secret", SIGN_HS2, HS, CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_BAD_SIGNATURE, ""},
    {"rs256_wrong_key", SIGN_RS_WRONG, RS, CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_BAD_SIGNATURE, ""},
    {"es256_wrong_key", SIGN_ES_WRONG, ES, CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_BAD_SIGNATURE, ""},
    {"rfc7518_s3_4_es256_der_refused", SIGN_ES_DER, ES, CLAIMS, KEYS_ALL, POL_DEFAULT,
     JWT_BAD_SIGNATURE, ""},
    {"hs256_empty_signature", SIGN_EMPTY, HS, CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_BAD_SIGNATURE, ""},
    {"rs256_empty_signature", SIGN_EMPTY, RS, CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_BAD_SIGNATURE, ""},
    {"es256_empty_signature", SIGN_EMPTY, ES, CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_BAD_SIGNATURE, ""},
    /* alg: never none, never one without a key, never one key for two algs. */
    {"rfc7518_s3_6_alg_none", SIGN_EMPTY, "{\"alg\":\"none\"}", CLAIMS, KEYS_ALL, POL_DEFAULT,
     JWT_BAD_ALG, ""},
    {"alg_none_with_hs_signature", SIGN_HS, "{\"alg\":\"none\"}", CLAIMS, KEYS_ALL, POL_DEFAULT,
     JWT_BAD_ALG, ""},
    {"alg_None_case", SIGN_EMPTY, "{\"alg\":\"None\"}", CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_BAD_ALG,
     ""},
    {"rfc7515_s4_1_1_alg_case_sensitive", SIGN_HS, "{\"alg\":\"hs256\"}", CLAIMS, KEYS_ALL,
     POL_DEFAULT, JWT_BAD_ALG, ""},
    {"alg_unknown_hs512", SIGN_HS, "{\"alg\":\"HS512\"}", CLAIMS, KEYS_ALL, POL_DEFAULT,
     JWT_BAD_ALG, ""},
    {"alg_unknown_ps256", SIGN_RS, "{\"alg\":\"PS256\"}", CLAIMS, KEYS_ALL, POL_DEFAULT,
     JWT_BAD_ALG, ""},
    {"alg_missing", SIGN_HS, "{\"typ\":\"JWT\"}", CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_BAD_ALG, ""},
    {"alg_not_string", SIGN_HS, "{\"alg\":256}", CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_BAD_ALG, ""},
    {"alg_array", SIGN_HS, "{\"alg\":[\"HS256\"]}", CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_BAD_ALG, ""},
    {"alg_nul_suffix", SIGN_HS, "{\"alg\":\"HS256\\u0000\"}", CLAIMS, KEYS_ALL, POL_DEFAULT,
     JWT_BAD_ALG, ""},
    {"alg_long", SIGN_HS, "{\"alg\":\"HS256HS256\"}", CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_BAD_ALG,
     ""},
    {"rfc8259_s4_alg_duplicate_none", SIGN_HS, "{\"alg\":\"HS256\",\"alg\":\"none\"}", CLAIMS,
     KEYS_ALL, POL_DEFAULT, JWT_MALFORMED, ""},
    {"rfc8725_s2_1_hs256_with_rsa_public_key_as_secret", SIGN_HS_RSA_PEM, HS, CLAIMS, KEYS_RS_ONLY,
     POL_DEFAULT, JWT_BAD_ALG, ""},
    {"rfc8725_s2_1_hs_key_with_pkey_no_secret", SIGN_HS_RSA_PEM, HS, CLAIMS, KEYS_HS_AS_RS,
     POL_DEFAULT, JWT_BAD_ALG, ""},
    {"rs256_token_hs_only_keys", SIGN_RS, RS, CLAIMS, KEYS_HS_ONLY, POL_DEFAULT, JWT_BAD_ALG, ""},
    {"es256_token_claimed_rs256", SIGN_ES, RS, CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_BAD_SIGNATURE,
     ""},
    {"rs256_token_claimed_es256", SIGN_RS, ES, CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_BAD_SIGNATURE,
     ""},
    {"no_keys", SIGN_HS, HS, CLAIMS, KEYS_NONE, POL_DEFAULT, JWT_BAD_ALG, ""},
    {"rfc7518_s3_2_short_secret_unusable", SIGN_HS, HS, CLAIMS, KEYS_HS_SHORT, POL_DEFAULT,
     JWT_BAD_ALG, ""},
    {"rfc7518_s3_3_rsa_1024_unusable", SIGN_RS_1024, RS, CLAIMS, KEYS_RS_1024, POL_DEFAULT,
     JWT_BAD_ALG, ""},
    {"rfc7518_s3_4_p384_key_unusable", SIGN_ES, ES, CLAIMS, KEYS_ES_384, POL_DEFAULT, JWT_BAD_ALG,
     ""},
    {"ec_key_configured_as_rs256_unusable", SIGN_RS, RS, CLAIMS, KEYS_ES_AS_RS, POL_DEFAULT,
     JWT_BAD_ALG, ""},
    {"rfc7515_s4_1_11_crit_refused", SIGN_HS, "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
     CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_MALFORMED, ""},
    {"rfc7515_s4_1_11_crit_empty_refused", SIGN_HS, "{\"alg\":\"HS256\",\"crit\":[]}", CLAIMS,
     KEYS_ALL, POL_DEFAULT, JWT_MALFORMED, ""},
    {"rfc7515_s4_1_11_crit_null_refused", SIGN_HS, "{\"alg\":\"HS256\",\"crit\":null}", CLAIMS,
     KEYS_ALL, POL_DEFAULT, JWT_MALFORMED, ""},
    {"header_extra_members_ignored", SIGN_HS,
     "{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"cty\":\"x\",\"x5t\":\"abc\"}", CLAIMS, KEYS_ALL,
     POL_DEFAULT, JWT_OK, "alice@example.org"},
    /* kid selection (RFC 7515 §4.1.4). */
    {"kid_h1", SIGN_HS, "{\"alg\":\"HS256\",\"kid\":\"h1\"}", CLAIMS, KEYS_KIDS, POL_DEFAULT,
     JWT_OK, "alice@example.org"},
    {"kid_h2", SIGN_HS2, "{\"alg\":\"HS256\",\"kid\":\"h2\"}", CLAIMS, KEYS_KIDS, POL_DEFAULT,
     JWT_OK, "alice@example.org"},
    {"kid_names_other_key", SIGN_HS, "{\"alg\":\"HS256\",\"kid\":\"h2\"}", CLAIMS, KEYS_KIDS,
     POL_DEFAULT, JWT_BAD_SIGNATURE, ""},
    {"kid_r1", SIGN_RS, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", CLAIMS, KEYS_KIDS, POL_DEFAULT,
     JWT_OK, "alice@example.org"},
    {"kid_e1", SIGN_ES, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", CLAIMS, KEYS_KIDS, POL_DEFAULT,
     JWT_OK, "alice@example.org"},
    {"kid_unknown", SIGN_HS, "{\"alg\":\"HS256\",\"kid\":\"h9\"}", CLAIMS, KEYS_KIDS, POL_DEFAULT,
     JWT_BAD_ALG, ""},
    {"kid_of_other_alg", SIGN_HS, "{\"alg\":\"HS256\",\"kid\":\"r1\"}", CLAIMS, KEYS_KIDS,
     POL_DEFAULT, JWT_BAD_ALG, ""},
    {"kid_case_sensitive", SIGN_HS, "{\"alg\":\"HS256\",\"kid\":\"H1\"}", CLAIMS, KEYS_KIDS,
     POL_DEFAULT, JWT_BAD_ALG, ""},
    {"kid_prefix_no_match", SIGN_HS, "{\"alg\":\"HS256\",\"kid\":\"h\"}", CLAIMS, KEYS_KIDS,
     POL_DEFAULT, JWT_BAD_ALG, ""},
    {"kid_absent_tries_each_key", SIGN_HS2, HS, CLAIMS, KEYS_KIDS, POL_DEFAULT, JWT_OK,
     "alice@example.org"},
    {"kid_absent_no_key_signed", SIGN_HS_RSA_PEM, HS, CLAIMS, KEYS_KIDS, POL_DEFAULT,
     JWT_BAD_SIGNATURE, ""},
    {"kid_any_key_matches", SIGN_HS, "{\"alg\":\"HS256\",\"kid\":\"zz\"}", CLAIMS, KEYS_KIDS_ANY,
     POL_DEFAULT, JWT_OK, "alice@example.org"},
    {"kid_too_long_only_kidless_key", SIGN_HS,
     "{\"alg\":\"HS256\",\"kid\":"
     "\"h2xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxx\"}",
     CLAIMS, KEYS_KIDS_ANY, POL_DEFAULT, JWT_OK, "alice@example.org"},
    {"kid_too_long_no_match", SIGN_HS,
     "{\"alg\":\"HS256\",\"kid\":"
     "\"h1xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxx\"}",
     CLAIMS, KEYS_KIDS, POL_DEFAULT, JWT_BAD_ALG, ""},
    {"rfc7515_s4_1_4_kid_not_string", SIGN_HS, "{\"alg\":\"HS256\",\"kid\":1}", CLAIMS, KEYS_KIDS,
     POL_DEFAULT, JWT_MALFORMED, ""},
    {"kid_escaped_matches", SIGN_HS, "{\"alg\":\"HS256\",\"kid\":\"\\u0068\\u0031\"}", CLAIMS,
     KEYS_KIDS, POL_DEFAULT, JWT_OK, "alice@example.org"},
    /* Non-object JSON in a correctly signed token. */
    {"rfc7519_s7_2_header_array", SIGN_HS, "[\"HS256\"]", CLAIMS, KEYS_ALL, POL_DEFAULT,
     JWT_MALFORMED, ""},
    {"rfc7519_s7_2_header_not_json", SIGN_HS, "alg=HS256", CLAIMS, KEYS_ALL, POL_DEFAULT,
     JWT_MALFORMED, ""},
    {"rfc7519_s7_2_header_empty", SIGN_HS, "", CLAIMS, KEYS_ALL, POL_DEFAULT, JWT_MALFORMED, ""},
    {"rfc7519_s7_2_claims_string", SIGN_HS, HS, "\"alice\"", KEYS_ALL, POL_DEFAULT, JWT_MALFORMED,
     ""},
    {"rfc7519_s7_2_claims_array", SIGN_HS, HS, "[" CLAIMS "]", KEYS_ALL, POL_DEFAULT, JWT_MALFORMED,
     ""},
    {"rfc7519_s7_2_claims_truncated", SIGN_HS, HS, "{" ISS "," AUD, KEYS_ALL, POL_DEFAULT,
     JWT_MALFORMED, ""},
    {"rfc7519_s4_claims_duplicate_email", SIGN_HS, HS, CLAIMS_WITH("\"email\":\"root@x\""),
     KEYS_ALL, POL_DEFAULT, JWT_MALFORMED, ""},
    {"rfc7519_s7_2_claims_bad_utf8", SIGN_HS, HS, CLAIMS_WITH("\"x\":\"\xc0\xaf\""), KEYS_ALL,
     POL_DEFAULT, JWT_MALFORMED, ""},
    /* exp (RFC 7519 §4.1.4), nbf (§4.1.5), iat (§4.1.6); now = 1700000000, leeway 60. */
    {"rfc7519_s4_1_4_exp_missing", SIGN_HS, HS, "{" ISS "," AUD "," EMAIL "}", KEYS_ALL,
     POL_DEFAULT, JWT_EXPIRED, ""},
    {"rfc7519_s4_1_4_expired", SIGN_HS, HS, "{" ISS "," AUD "," EMAIL ",\"exp\":1699990000}",
     KEYS_ALL, POL_DEFAULT, JWT_EXPIRED, ""},
    {"rfc7519_s4_1_4_exp_now_no_leeway", SIGN_HS, HS,
     "{" ISS "," AUD "," EMAIL ",\"exp\":1700000000}", KEYS_ALL, POL_NO_LEEWAY, JWT_EXPIRED, ""},
    {"rfc7519_s4_1_4_exp_next_second", SIGN_HS, HS,
     "{" ISS "," AUD "," EMAIL ",\"exp\":1700000001}", KEYS_ALL, POL_NO_LEEWAY, JWT_OK,
     "alice@example.org"},
    {"exp_within_leeway", SIGN_HS, HS, "{" ISS "," AUD "," EMAIL ",\"exp\":1699999941}", KEYS_ALL,
     POL_DEFAULT, JWT_OK, "alice@example.org"},
    {"exp_at_leeway_edge", SIGN_HS, HS, "{" ISS "," AUD "," EMAIL ",\"exp\":1699999940}", KEYS_ALL,
     POL_DEFAULT, JWT_EXPIRED, ""},
    {"exp_negative_leeway_is_zero", SIGN_HS, HS, "{" ISS "," AUD "," EMAIL ",\"exp\":1700000001}",
     KEYS_ALL, POL_NEG_LEEWAY, JWT_OK, "alice@example.org"},
    {"exp_past_negative_leeway", SIGN_HS, HS, "{" ISS "," AUD "," EMAIL ",\"exp\":1699999999}",
     KEYS_ALL, POL_NEG_LEEWAY, JWT_EXPIRED, ""},
    {"nbf_future_negative_leeway", SIGN_HS, HS, CLAIMS_WITH("\"nbf\":1700000001"), KEYS_ALL,
     POL_NEG_LEEWAY, JWT_NOT_YET_VALID, ""},
    {"exp_string", SIGN_HS, HS, "{" ISS "," AUD "," EMAIL ",\"exp\":\"1700000600\"}", KEYS_ALL,
     POL_DEFAULT, JWT_EXPIRED, ""},
    /* RFC 7519 §2: a NumericDate may hold a fraction (or be written with an exponent). */
    {"rfc7519_s2_exp_fraction", SIGN_HS, HS, "{" ISS "," AUD "," EMAIL ",\"exp\":1700000600.5}",
     KEYS_ALL, POL_DEFAULT, JWT_OK, "alice@example.org"},
    {"rfc7519_s2_exp_half_second_after_now", SIGN_HS, HS,
     "{" ISS "," AUD "," EMAIL ",\"exp\":1700000000.5}", KEYS_ALL, POL_NO_LEEWAY, JWT_OK,
     "alice@example.org"},
    {"rfc7519_s2_exp_half_second_before_now", SIGN_HS, HS,
     "{" ISS "," AUD "," EMAIL ",\"exp\":1699999999.5}", KEYS_ALL, POL_NO_LEEWAY, JWT_EXPIRED,
     ""},
    {"rfc7519_s2_exp_exponent", SIGN_HS, HS, "{" ISS "," AUD "," EMAIL ",\"exp\":1.7000006e9}",
     KEYS_ALL, POL_DEFAULT, JWT_OK, "alice@example.org"},
    {"exp_exponent_out_of_range", SIGN_HS, HS, "{" ISS "," AUD "," EMAIL ",\"exp\":1e400}",
     KEYS_ALL, POL_DEFAULT, JWT_EXPIRED, ""},
    {"rfc7519_s2_nbf_half_second_after_now", SIGN_HS, HS, CLAIMS_WITH("\"nbf\":1700000000.5"),
     KEYS_ALL, POL_NO_LEEWAY, JWT_NOT_YET_VALID, ""},
    {"rfc7519_s2_iat_half_second_before_now", SIGN_HS, HS, CLAIMS_WITH("\"iat\":1699999999.5"),
     KEYS_ALL, POL_NO_LEEWAY, JWT_OK, "alice@example.org"},
    {"exp_int64_max", SIGN_HS, HS, "{" ISS "," AUD "," EMAIL ",\"exp\":9223372036854775807}",
     KEYS_ALL, POL_DEFAULT, JWT_OK, "alice@example.org"},
    {"exp_overflowing_int64", SIGN_HS, HS,
     "{" ISS "," AUD "," EMAIL ",\"exp\":9223372036854775808}", KEYS_ALL, POL_DEFAULT, JWT_EXPIRED,
     ""},
    {"exp_int64_min", SIGN_HS, HS, "{" ISS "," AUD "," EMAIL ",\"exp\":-9223372036854775808}",
     KEYS_ALL, POL_DEFAULT, JWT_EXPIRED, ""},
    {"rfc7519_s4_1_5_nbf_future", SIGN_HS, HS, CLAIMS_WITH("\"nbf\":1700000100"), KEYS_ALL,
     POL_DEFAULT, JWT_NOT_YET_VALID, ""},
    {"rfc7519_s4_1_5_nbf_now", SIGN_HS, HS, CLAIMS_WITH("\"nbf\":1700000000"), KEYS_ALL,
     POL_NO_LEEWAY, JWT_OK, "alice@example.org"},
    {"rfc7519_s4_1_5_nbf_next_second", SIGN_HS, HS, CLAIMS_WITH("\"nbf\":1700000001"), KEYS_ALL,
     POL_NO_LEEWAY, JWT_NOT_YET_VALID, ""},
    {"nbf_within_leeway", SIGN_HS, HS, CLAIMS_WITH("\"nbf\":1700000060"), KEYS_ALL, POL_DEFAULT,
     JWT_OK, "alice@example.org"},
    {"nbf_past_leeway", SIGN_HS, HS, CLAIMS_WITH("\"nbf\":1700000061"), KEYS_ALL, POL_DEFAULT,
     JWT_NOT_YET_VALID, ""},
    {"nbf_past", SIGN_HS, HS, CLAIMS_WITH("\"nbf\":1600000000"), KEYS_ALL, POL_DEFAULT, JWT_OK,
     "alice@example.org"},
    {"nbf_not_number", SIGN_HS, HS, CLAIMS_WITH("\"nbf\":null"), KEYS_ALL, POL_DEFAULT,
     JWT_NOT_YET_VALID, ""},
    {"nbf_int64_max", SIGN_HS, HS, CLAIMS_WITH("\"nbf\":9223372036854775807"), KEYS_ALL,
     POL_DEFAULT, JWT_NOT_YET_VALID, ""},
    {"rfc7519_s4_1_6_iat_future", SIGN_HS, HS, CLAIMS_WITH("\"iat\":1700003600"), KEYS_ALL,
     POL_DEFAULT, JWT_NOT_YET_VALID, ""},
    {"rfc7519_s4_1_6_iat_within_leeway", SIGN_HS, HS, CLAIMS_WITH("\"iat\":1700000030"), KEYS_ALL,
     POL_DEFAULT, JWT_OK, "alice@example.org"},
    {"rfc7519_s4_1_6_iat_past", SIGN_HS, HS, CLAIMS_WITH("\"iat\":1699999000"), KEYS_ALL,
     POL_NO_LEEWAY, JWT_OK, "alice@example.org"},
    {"iat_not_integer", SIGN_HS, HS, CLAIMS_WITH("\"iat\":\"now\""), KEYS_ALL, POL_DEFAULT,
     JWT_NOT_YET_VALID, ""},
    /* iss (RFC 7519 §4.1.1). */
    {"rfc7519_s4_1_1_iss_wrong", SIGN_HS, HS,
     "{\"iss\":\"https://evil.example\"," AUD "," EXP "," EMAIL "}", KEYS_ALL, POL_DEFAULT,
     JWT_BAD_ISSUER, ""},
    {"rfc7519_s4_1_1_iss_missing", SIGN_HS, HS, "{" AUD "," EXP "," EMAIL "}", KEYS_ALL,
     POL_DEFAULT, JWT_BAD_ISSUER, ""},
    {"rfc7519_s4_1_1_iss_prefix", SIGN_HS, HS,
     "{\"iss\":\"https://idp.example/x\"," AUD "," EXP "," EMAIL "}", KEYS_ALL, POL_DEFAULT,
     JWT_BAD_ISSUER, ""},
    {"rfc7519_s4_1_1_iss_array", SIGN_HS, HS,
     "{\"iss\":[\"https://idp.example\"]," AUD "," EXP "," EMAIL "}", KEYS_ALL, POL_DEFAULT,
     JWT_BAD_ISSUER, ""},
    {"rfc7519_s4_1_1_iss_not_string", SIGN_HS, HS, "{\"iss\":1," AUD "," EXP "," EMAIL "}",
     KEYS_ALL, POL_DEFAULT, JWT_BAD_ISSUER, ""},
    {"iss_not_checked_without_policy", SIGN_HS, HS,
     "{\"iss\":\"https://evil.example\",\"aud\":\"other\"," EXP "," EMAIL "}", KEYS_ALL,
     POL_UNCHECKED, JWT_OK, "alice@example.org"},
    /* aud (RFC 7519 §4.1.3). */
    {"rfc7519_s4_1_3_aud_array_hit", SIGN_HS, HS,
     "{" ISS ",\"aud\":[\"web\",\"mx.example\"]," EXP "," EMAIL "}", KEYS_ALL, POL_DEFAULT, JWT_OK,
     "alice@example.org"},
    {"rfc7519_s4_1_3_aud_array_miss", SIGN_HS, HS,
     "{" ISS ",\"aud\":[\"web\",\"api\"]," EXP "," EMAIL "}", KEYS_ALL, POL_DEFAULT,
     JWT_BAD_AUDIENCE, ""},
    {"rfc7519_s4_1_3_aud_string_miss", SIGN_HS, HS, "{" ISS ",\"aud\":\"web\"," EXP "," EMAIL "}",
     KEYS_ALL, POL_DEFAULT, JWT_BAD_AUDIENCE, ""},
    {"rfc7519_s4_1_3_aud_missing", SIGN_HS, HS, "{" ISS "," EXP "," EMAIL "}", KEYS_ALL,
     POL_DEFAULT, JWT_BAD_AUDIENCE, ""},
    {"rfc7519_s4_1_3_aud_empty_array", SIGN_HS, HS, "{" ISS ",\"aud\":[]," EXP "," EMAIL "}",
     KEYS_ALL, POL_DEFAULT, JWT_BAD_AUDIENCE, ""},
    {"rfc7519_s4_1_3_aud_nested_array", SIGN_HS, HS,
     "{" ISS ",\"aud\":[[\"mx.example\"]]," EXP "," EMAIL "}", KEYS_ALL, POL_DEFAULT,
     JWT_BAD_AUDIENCE, ""},
    {"rfc7519_s4_1_3_aud_object", SIGN_HS, HS,
     "{" ISS ",\"aud\":{\"mx.example\":1}," EXP "," EMAIL "}", KEYS_ALL, POL_DEFAULT,
     JWT_BAD_AUDIENCE, ""},
    /* The identity claim. */
    {"identity_missing", SIGN_HS, HS, "{" ISS "," AUD "," EXP "}", KEYS_ALL, POL_DEFAULT,
     JWT_NO_IDENTITY, ""},
    {"identity_not_string", SIGN_HS, HS, "{" ISS "," AUD "," EXP ",\"email\":42}", KEYS_ALL,
     POL_DEFAULT, JWT_NO_IDENTITY, ""},
    {"identity_array", SIGN_HS, HS, "{" ISS "," AUD "," EXP ",\"email\":[\"a@x\"]}", KEYS_ALL,
     POL_DEFAULT, JWT_NO_IDENTITY, ""},
    {"identity_empty", SIGN_HS, HS, "{" ISS "," AUD "," EXP ",\"email\":\"\"}", KEYS_ALL,
     POL_DEFAULT, JWT_NO_IDENTITY, ""},
    {"identity_fits_exactly", SIGN_HS, HS,
     "{" ISS "," AUD "," EXP ",\"email\":\"abcdefghijklmnopqrstuvwxyz@example.org\"}", KEYS_ALL,
     POL_DEFAULT, JWT_OK, "abcdefghijklmnopqrstuvwxyz@example.org"},
    {"identity_over_long", SIGN_HS, HS,
     "{" ISS "," AUD "," EXP ",\"email\":\"abcdefghijklmnopqrstuvwxyz1@example.org\"}", KEYS_ALL,
     POL_DEFAULT, JWT_NO_IDENTITY, ""},
    {"identity_nul", SIGN_HS, HS, "{" ISS "," AUD "," EXP ",\"email\":\"a@x\\u0000b\"}", KEYS_ALL,
     POL_DEFAULT, JWT_NO_IDENTITY, ""},
    {"B4_identity_crlf", SIGN_HS, HS, "{" ISS "," AUD "," EXP ",\"email\":\"a@x\\r\\nRCPT\"}",
     KEYS_ALL, POL_DEFAULT, JWT_NO_IDENTITY, ""},
    {"B4_identity_del", SIGN_HS, HS, "{" ISS "," AUD "," EXP ",\"email\":\"a@x\\u007f\"}", KEYS_ALL,
     POL_DEFAULT, JWT_NO_IDENTITY, ""},
    {"identity_unescaped_utf8", SIGN_HS, HS,
     "{" ISS "," AUD "," EXP ",\"email\":\"j\\u00f6rg@example.org\"}", KEYS_ALL, POL_DEFAULT,
     JWT_OK, "j\xc3\xb6rg@example.org"},
    {"identity_claim_sub", SIGN_HS, HS, CLAIMS_WITH("\"sub\":\"u-123\""), KEYS_ALL, POL_SUB, JWT_OK,
     "u-123"},
    {"identity_claim_sub_missing", SIGN_HS, HS, CLAIMS, KEYS_ALL, POL_SUB, JWT_NO_IDENTITY, ""},
    {"identity_nested_not_top_level", SIGN_HS, HS,
     "{" ISS "," AUD "," EXP ",\"user\":{\"email\":\"a@x\"}}", KEYS_ALL, POL_DEFAULT,
     JWT_NO_IDENTITY, ""},
};

/* Room for "abcdefghijklmnopqrstuvwxyz@example.org" (38) and its NUL, no more. */
#define IDENTITY_LEN 39

static void test_table(void **state)
{
    const struct fixture *f = *state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct jwt_case *c = &cases[i];
        char token[BUF];
        size_t n = make_token(f, c->how, c->header, c->payload, token, sizeof token);
        struct jwt_key keys[4];
        size_t nkeys = fill_keys(f, c->keys, keys);
        struct jwt_policy pol = make_policy(c->policy);
        char id[IDENTITY_LEN + 8];
        memset(id, 'Z', sizeof id);
        enum jwt_status st = jwt_verify(token, n, keys, nkeys, &pol, id, IDENTITY_LEN);
        if (st != c->want)
            fail_msg("case %s: status %s, want %s", c->name, jwt_status_text(st),
                     jwt_status_text(c->want));
        if (strcmp(id, c->identity) != 0)
            fail_msg("case %s: identity \"%s\", want \"%s\"", c->name, id, c->identity);
        for (size_t k = IDENTITY_LEN; k < sizeof id; k++)
            if (id[k] != 'Z')
                fail_msg("case %s: identity written past its length", c->name);
    }
}

/* ---- Syntax of the compact serialization (RFC 7515 §7.1), on a good HS256 token ---- */

enum mutation {
    MUT_NONE,
    MUT_TWO_PARTS,  /* drop ".signature" */
    MUT_FOUR_PARTS, /* append ".x" */
    MUT_TRAILING_DOT,
    MUT_LEADING_DOT,
    MUT_BAD_CHAR,     /* '!' in the payload */
    MUT_STD_ALPHABET, /* '+' in the header: RFC 4648 §4, not §5 */
    MUT_PADDING,      /* "=" after the signature (43 characters, so "=" would complete it) */
    MUT_PADDING_HEADER,
    MUT_SPACE,             /* a space before the token */
    MUT_NEWLINE,           /* a line break inside the payload */
    MUT_TAMPER_PAYLOAD,    /* the payload re-encoded with another identity, signature kept */
    MUT_TAMPER_HEADER,     /* the header re-encoded with a kid, signature kept */
    MUT_FLIP_SIGNATURE,    /* the signature's last character changed */
    MUT_SIG_TRAILING_BITS, /* the signature's last character with non-zero spare bits */
    MUT_TRUNCATED_SIG,     /* the signature's last 4 characters dropped */
    MUT_EMPTY,
    MUT_DOTS_ONLY,
    MUT_OVER_MAX, /* longer than JWT_TOKEN_MAX */
};

struct syntax_case {
    const char *name;
    enum mutation mut;
    enum jwt_status want;
};

static const struct syntax_case syntax_cases[] = {
    {"unmutated_ok", MUT_NONE, JWT_OK},
    {"rfc7515_s7_1_two_parts", MUT_TWO_PARTS, JWT_MALFORMED},
    {"rfc7515_s7_1_four_parts", MUT_FOUR_PARTS, JWT_MALFORMED},
    {"rfc7515_s7_1_trailing_dot", MUT_TRAILING_DOT, JWT_MALFORMED},
    {"rfc7515_s7_1_leading_dot", MUT_LEADING_DOT, JWT_MALFORMED},
    {"rfc7515_s2_bad_base64url_char", MUT_BAD_CHAR, JWT_MALFORMED},
    {"rfc7515_s2_standard_alphabet", MUT_STD_ALPHABET, JWT_MALFORMED},
    {"rfc7515_s2_padding_signature", MUT_PADDING, JWT_MALFORMED},
    {"rfc7515_s2_padding_header", MUT_PADDING_HEADER, JWT_MALFORMED},
    {"rfc7515_s2_leading_space", MUT_SPACE, JWT_MALFORMED},
    {"rfc7515_s2_line_break", MUT_NEWLINE, JWT_MALFORMED},
    {"tampered_payload", MUT_TAMPER_PAYLOAD, JWT_BAD_SIGNATURE},
    {"tampered_header", MUT_TAMPER_HEADER, JWT_BAD_SIGNATURE},
    {"flipped_signature", MUT_FLIP_SIGNATURE, JWT_BAD_SIGNATURE},
    {"rfc4648_s3_5_signature_spare_bits", MUT_SIG_TRAILING_BITS, JWT_MALFORMED},
    {"truncated_signature", MUT_TRUNCATED_SIG, JWT_BAD_SIGNATURE},
    {"empty", MUT_EMPTY, JWT_MALFORMED},
    {"dots_only", MUT_DOTS_ONLY, JWT_MALFORMED},
    {"over_jwt_token_max", MUT_OVER_MAX, JWT_MALFORMED},
};

static void replace_tail(char *t, size_t *n, size_t keep, const char *with)
{
    size_t w = strlen(with);
    assert_true(keep + w < BUF);
    memcpy(t + keep, with, w + 1);
    *n = keep + w;
}

static size_t mutate(const struct fixture *f, enum mutation mut, char *t)
{
    size_t n = make_token(f, SIGN_HS, HS, CLAIMS, t, BUF);
    char *dot1 = strchr(t, '.');
    char *dot2 = strchr(dot1 + 1, '.');
    size_t d1 = (size_t)(dot1 - t), d2 = (size_t)(dot2 - t);
    char copy[BUF];
    switch (mut) {
    case MUT_NONE:
        break;
    case MUT_TWO_PARTS:
        t[d2] = '\0';
        n = d2;
        break;
    case MUT_FOUR_PARTS:
        replace_tail(t, &n, n, ".x");
        break;
    case MUT_TRAILING_DOT:
        replace_tail(t, &n, n, ".");
        break;
    case MUT_LEADING_DOT:
        memcpy(copy, t, n + 1);
        t[0] = '.';
        replace_tail(t, &n, 1, copy);
        break;
    case MUT_BAD_CHAR:
        t[d1 + 3] = '!';
        break;
    case MUT_STD_ALPHABET:
        t[1] = '+';
        break;
    case MUT_PADDING:
        assert_int_equal((n - d2 - 1) % 4, 3);
        replace_tail(t, &n, n, "=");
        break;
    case MUT_PADDING_HEADER:
        /* A 16-octet header encodes to 22 characters, where RFC 4648 §4 would add "==". */
        n = make_token(f, SIGN_HS, "{\"alg\":\"HS256\" }", CLAIMS, t, BUF);
        d1 = (size_t)(strchr(t, '.') - t);
        assert_int_equal(d1, 22);
        memcpy(copy, t + d1, n - d1 + 1);
        replace_tail(t, &n, d1, "==");
        replace_tail(t, &n, n, copy);
        break;
    case MUT_SPACE:
        memcpy(copy, t, n + 1);
        t[0] = ' ';
        replace_tail(t, &n, 1, copy);
        break;
    case MUT_NEWLINE:
        memcpy(copy, t + d1 + 5, n - d1 - 5 + 1);
        replace_tail(t, &n, d1 + 5, "\r\n");
        replace_tail(t, &n, n, copy);
        break;
    case MUT_TAMPER_PAYLOAD: {
        char other[BUF];
        make_token(f, SIGN_HS, HS, "{" ISS "," AUD "," EXP ",\"email\":\"root@example.org\"}",
                   other, sizeof other);
        char *o2 = strchr(strchr(other, '.') + 1, '.');
        memcpy(copy, t + d2, n - d2 + 1);
        *o2 = '\0';
        memcpy(t, other, strlen(other) + 1);
        n = strlen(t);
        replace_tail(t, &n, n, copy);
        break;
    }
    case MUT_TAMPER_HEADER: {
        char other[BUF];
        make_token(f, SIGN_HS, "{\"alg\":\"HS256\",\"kid\":\"x\"}", CLAIMS, other, sizeof other);
        char *o1 = strchr(other, '.');
        memcpy(copy, t + d1, n - d1 + 1);
        *o1 = '\0';
        memcpy(t, other, strlen(other) + 1);
        n = strlen(t);
        replace_tail(t, &n, n, copy);
        break;
    }
    case MUT_FLIP_SIGNATURE:
        /* The last of 43 characters carries 4 bits and 2 spare: 'A' <-> 'E' keeps them 0. */
        t[n - 1] = t[n - 1] == 'A' ? 'E' : 'A';
        break;
    case MUT_SIG_TRAILING_BITS:
        t[n - 1] = t[n - 1] == 'B' ? 'C' : 'B';
        break;
    case MUT_TRUNCATED_SIG:
        t[n - 4] = '\0';
        n -= 4;
        break;
    case MUT_EMPTY:
        t[0] = '\0';
        n = 0;
        break;
    case MUT_DOTS_ONLY:
        replace_tail(t, &n, 0, "..");
        break;
    case MUT_OVER_MAX: {
        /* Pad the claims with a long member, keeping the token otherwise valid. */
        char payload[JWT_TOKEN_MAX];
        int w = snprintf(payload, sizeof payload, "{" ISS "," AUD "," EXP "," EMAIL ",\"p\":\"");
        assert_true(w > 0);
        size_t pn = (size_t)w;
        while (pn < 6200)
            payload[pn++] = 'p';
        memcpy(payload + pn, "\"}", 3);
        n = make_token(f, SIGN_HS, HS, payload, t, BUF);
        assert_true(n > JWT_TOKEN_MAX);
        break;
    }
    }
    return n;
}

static void test_syntax_table(void **state)
{
    const struct fixture *f = *state;
    for (size_t i = 0; i < sizeof syntax_cases / sizeof syntax_cases[0]; i++) {
        const struct syntax_case *c = &syntax_cases[i];
        char token[BUF];
        size_t n = mutate(f, c->mut, token);
        struct jwt_key keys[4];
        size_t nkeys = fill_keys(f, KEYS_ALL, keys);
        struct jwt_policy pol = make_policy(POL_DEFAULT);
        char id[64];
        enum jwt_status st = jwt_verify(token, n, keys, nkeys, &pol, id, sizeof id);
        if (st != c->want)
            fail_msg("case %s: status %s, want %s (token %s)", c->name, jwt_status_text(st),
                     jwt_status_text(c->want), token);
        if (st != JWT_OK && id[0] != '\0')
            fail_msg("case %s: identity left on failure", c->name);
    }
}

/* The token is bounded by len, not by a NUL: bytes after len are never read as part of it. */
static void test_len_bounds_token(void **state)
{
    const struct fixture *f = *state;
    char token[BUF];
    size_t n = make_token(f, SIGN_HS, HS, CLAIMS, token, sizeof token);
    struct jwt_key keys[4];
    size_t nkeys = fill_keys(f, KEYS_ALL, keys);
    struct jwt_policy pol = make_policy(POL_DEFAULT);
    char id[64];
    /* HS256: 43 characters of signature after the second dot. */
    assert_int_equal(jwt_verify(token, n - 44, keys, nkeys, &pol, id, sizeof id), JWT_MALFORMED);
    token[n] = '.';
    token[n + 1] = '\0';
    assert_int_equal(jwt_verify(token, n, keys, nkeys, &pol, id, sizeof id), JWT_OK);
    assert_string_equal(id, "alice@example.org");
    assert_int_equal(jwt_verify(NULL, 0, keys, nkeys, &pol, id, sizeof id), JWT_MALFORMED);
}

/* A token of exactly JWT_TOKEN_MAX octets is still read. */
static void test_token_at_max(void **state)
{
    const struct fixture *f = *state;
    char token[BUF];
    char payload[JWT_TOKEN_MAX];
    size_t n = 0;
    for (size_t pad = 6000; pad < 6200 && n != JWT_TOKEN_MAX; pad++) {
        int w = snprintf(payload, sizeof payload, "{" ISS "," AUD "," EXP "," EMAIL ",\"p\":\"");
        size_t pn = (size_t)w;
        while (pn < pad)
            payload[pn++] = 'p';
        memcpy(payload + pn, "\"}", 3);
        n = make_token(f, SIGN_HS, HS, payload, token, sizeof token);
    }
    assert_int_equal(n, JWT_TOKEN_MAX);
    struct jwt_key keys[4];
    size_t nkeys = fill_keys(f, KEYS_ALL, keys);
    struct jwt_policy pol = make_policy(POL_DEFAULT);
    char id[64];
    assert_int_equal(jwt_verify(token, n, keys, nkeys, &pol, id, sizeof id), JWT_OK);
}

/* RFC 7518 §3.4: an ES256 signature of any length but 64 is refused, even when its R || S
 * halves would verify. */
static void test_es256_lengths(void **state)
{
    const struct fixture *f = *state;
    char token[BUF];
    size_t n = make_token(f, SIGN_ES, ES, CLAIMS, token, sizeof token);
    char *dot2 = strrchr(token, '.');
    uint8_t sig[80];
    size_t siglen = 0;
    assert_true(
        base64url_decode(dot2 + 1, n - (size_t)(dot2 + 1 - token), sig, sizeof sig, &siglen));
    assert_int_equal(siglen, 64);
    struct jwt_key keys[4];
    size_t nkeys = fill_keys(f, KEYS_ALL, keys);
    struct jwt_policy pol = make_policy(POL_DEFAULT);
    char id[64];
    static const size_t lens[] = {0, 32, 63, 65, 66, 96};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t padded[96] = {0};
        /* Left-pad R and S so a lax length check could still read the right numbers. */
        size_t half = lens[i] / 2;
        if (half >= 32) {
            memcpy(padded + half - 32, sig, 32);
            memcpy(padded + lens[i] - 32, sig + 32, 32);
        }
        size_t keep = (size_t)(dot2 + 1 - token);
        size_t m = base64url_encode(padded, lens[i], token + keep, sizeof token - keep);
        if (lens[i] > 0)
            assert_true(m > 0);
        if (jwt_verify(token, keep + m, keys, nkeys, &pol, id, sizeof id) != JWT_BAD_SIGNATURE)
            fail_msg("ES256 signature of %zu octets accepted", lens[i]);
    }
}

static void test_status_text(void **state)
{
    (void)state;
    for (int st = JWT_OK; st <= JWT_NO_IDENTITY; st++) {
        const char *t = jwt_status_text((enum jwt_status)st);
        assert_non_null(t);
        assert_string_not_equal(t, "unknown");
    }
    assert_string_equal(jwt_status_text(JWT_EXPIRED), "expired");
    assert_string_equal(jwt_status_text(JWT_BAD_SIGNATURE), "bad signature");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_syntax_table),
        cmocka_unit_test(test_len_bounds_token),
        cmocka_unit_test(test_token_at_max),
        cmocka_unit_test(test_es256_lengths),
        cmocka_unit_test(test_status_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
