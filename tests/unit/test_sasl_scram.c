/* Unit tests for sasl/scram: the RFC 7677 §3 exchange reproduced byte for byte, channel binding
 * negotiation (RFC 5802 §6, RFC 9266, RFC 5929), proofs and nonces, the RFC 5802 §7 grammar of
 * client-first and client-final, the order of the exchange, and the credentials' text form.
 * The test has its own client (PBKDF2, HMAC and SHA-256 straight from libcrypto) to make the
 * proofs the server checks. */
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

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "sasl/scram.h"
#include "util/base64.h"

#define RFC_SALT_B64 "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST                                                                           \
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL                                                                           \
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"                                 \
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* StoredKey and ServerKey of "pencil" with the RFC's salt and count, computed independently. */
#define RFC_CREDS                                                                                  \
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"    \
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

static const uint8_t random18[18] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
static const uint8_t cb_exporter[32] = {
    0xe1, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20};
static const uint8_t cb_other[32] = {0xe2};
static const uint8_t cb_long[SCRAM_CB_DATA_MAX + 1] = {0xe1};

static void rfc_creds(struct sasl_scram_creds *c)
{
    uint8_t salt[16];
    size_t n = 0;
    assert_true(base64_decode(RFC_SALT_B64, strlen(RFC_SALT_B64), salt, sizeof(salt), &n));
    assert_int_equal(sasl_scram_creds_make("pencil", 6, salt, n, 4096, c), 0);
}

static void test_rfc7677_s3_exchange(void **state)
{
    (void)state;
    struct sasl_scram_creds creds;
    struct sasl_scram st;
    char out[SCRAM_MSG_MAX];
    size_t outn = 0;

    rfc_creds(&creds);
    assert_int_equal(sasl_scram_client_first(&st, false, false, (const uint8_t *)RFC_CLIENT_FIRST,
                                             strlen(RFC_CLIENT_FIRST)),
                     SASL_SCRAM_OK);
    assert_string_equal(st.user, "user");
    assert_string_equal(st.authzid, "");
    assert_int_equal(st.cb, SASL_SCRAM_CB_NONE);
    assert_int_equal(sasl_scram_server_first_nonce(&st, &creds, RFC_SNONCE, strlen(RFC_SNONCE), out,
                                                   sizeof(out), &outn),
                     SASL_SCRAM_OK);
    assert_string_equal(out, RFC_SERVER_FIRST);
    assert_int_equal(outn, strlen(RFC_SERVER_FIRST));
    assert_int_equal(sasl_scram_client_final(&st, &creds, NULL, 0,
                                             (const uint8_t *)RFC_CLIENT_FINAL,
                                             strlen(RFC_CLIENT_FINAL), out, sizeof(out), &outn),
                     SASL_SCRAM_OK);
    assert_string_equal(out, RFC_SERVER_FINAL);
    assert_int_equal(outn, strlen(RFC_SERVER_FINAL));
}

static void test_rfc7677_s3_creds_text(void **state)
{
    (void)state;
    struct sasl_scram_creds creds, back;
    char text[SCRAM_CREDS_TEXT_MAX];

    rfc_creds(&creds);
    assert_int_equal(sasl_scram_creds_format(&creds, text, sizeof(text)), strlen(RFC_CREDS));
    assert_string_equal(text, RFC_CREDS);
    assert_int_equal(sasl_scram_creds_parse(text, strlen(text), &back), 0);
    assert_memory_equal(&back, &creds, sizeof(creds));
}

/* ---- a client of our own ---- */

/* Replaces "{N}" by nonce and "{P}" by proof in tmpl. */
static void subst(const char *tmpl, const char *nonce, const char *proof, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = tmpl; *p != '\0';) {
        const char *ins = NULL;
        if (strncmp(p, "{N}", 3) == 0)
            ins = nonce;
        else if (strncmp(p, "{P}", 3) == 0)
            ins = proof;
        if (ins != NULL) {
            size_t n = strlen(ins);
            assert_true(o + n < cap);
            memcpy(out + o, ins, n);
            o += n;
            p += 3;
        } else {
            assert_true(o + 1 < cap);
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

/* ClientProof (RFC 5802 §3) for password over auth. */
static void client_proof(const char *password, const struct sasl_scram_creds *c, const char *auth,
                         size_t auth_len, uint8_t proof[SCRAM_KEY_LEN])
{
    uint8_t salted[32], client_key[32], stored[32], sig[32];
    unsigned int n = 0;
    assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), c->salt, (int)c->salt_len,
                                       (int)c->iterations, EVP_sha256(), 32, salted),
                     1);
    assert_non_null(
        HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Client Key", 10, client_key, &n));
    assert_non_null(SHA256(client_key, 32, stored));
    assert_non_null(HMAC(EVP_sha256(), stored, 32, (const uint8_t *)auth, auth_len, sig, &n));
    for (size_t i = 0; i < 32; i++)
        proof[i] = client_key[i] ^ sig[i];
}

/* Builds client-final: c= from gs2 (+ cb), r= nonce, then extra (",x=y" or ""), then the proof
 * over the AuthMessage. */
static void build_final(const char *bare, const char *server_first, const char *gs2,
                        const uint8_t *cb, size_t cb_len, const char *nonce, const char *extra,
                        const char *password, const struct sasl_scram_creds *creds, char *out,
                        size_t cap)
{
    uint8_t cbind[512], proof[32];
    char cbind64[1024], proof64[64], auth[4096];
    size_t g = strlen(gs2);
    memcpy(cbind, gs2, g);
    if (cb_len > 0)
        memcpy(cbind + g, cb, cb_len);
    assert_true(base64_encode(cbind, g + cb_len, cbind64, sizeof(cbind64)) > 0);
    int n = snprintf(out, cap, "c=%s,r=%s%s", cbind64, nonce, extra);
    assert_true(n > 0 && (size_t)n < cap);
    int a = snprintf(auth, sizeof(auth), "%s,%s,%s", bare, server_first, out);
    assert_true(a > 0 && (size_t)a < sizeof(auth));
    client_proof(password, creds, auth, (size_t)a, proof);
    assert_true(base64_encode(proof, 32, proof64, sizeof(proof64)) > 0);
    assert_true((size_t)n + 3 + strlen(proof64) < cap);
    memcpy(out + n, ",p=", 3);
    memcpy(out + n + 3, proof64, strlen(proof64) + 1);
}

struct exchange_case {
    const char *name;
    bool plus, plus_offered;
    const char *client_first;
    enum sasl_scram_status want_first;
    enum sasl_scram_cb want_cb;
    const char *c_gs2;        /* gs2 header the client puts in c= (NULL: the one it sent) */
    const uint8_t *client_cb; /* binding data the client puts in c= */
    size_t client_cb_len;
    const uint8_t *server_cb; /* binding data TLS gives the server */
    size_t server_cb_len;
    const char *nonce_suffix; /* appended to the nonce the client echoes */
    bool nonce_client_only;   /* the client echoes only its own part */
    const char *extra;        /* extensions before the proof */
    const char *password;     /* the client's; the creds are for "pencil" */
    enum sasl_scram_status want_final;
};

static const struct exchange_case exchanges[] = {
    {"no_binding", false, false, "n,,n=user,r=abcdefgh", SASL_SCRAM_OK, SASL_SCRAM_CB_NONE, NULL,
     NULL, 0, NULL, 0, "", false, "", "pencil", SASL_SCRAM_OK},
    {"no_binding_while_plus_offered", false, true, "n,,n=user,r=abcdefgh", SASL_SCRAM_OK,
     SASL_SCRAM_CB_NONE, NULL, NULL, 0, NULL, 0, "", false, "", "pencil", SASL_SCRAM_OK},
    {"rfc5802_s6_y_without_plus_offered", false, false, "y,,n=user,r=abcdefgh", SASL_SCRAM_OK,
     SASL_SCRAM_CB_NOT_USED, NULL, NULL, 0, NULL, 0, "", false, "", "pencil", SASL_SCRAM_OK},
    {"rfc5802_s6_y_downgrade", false, true, "y,,n=user,r=abcdefgh", SASL_SCRAM_FAIL,
     SASL_SCRAM_CB_NOT_USED, NULL, NULL, 0, NULL, 0, "", false, "", "pencil", SASL_SCRAM_OK},
    {"rfc5802_s6_p_on_plain_mechanism", false, true, "p=tls-exporter,,n=user,r=abcdefgh",
     SASL_SCRAM_FAIL, SASL_SCRAM_CB_NONE, NULL, NULL, 0, NULL, 0, "", false, "", "pencil",
     SASL_SCRAM_OK},
    {"plus_mechanism_with_n", true, true, "n,,n=user,r=abcdefgh", SASL_SCRAM_FAIL,
     SASL_SCRAM_CB_NONE, NULL, NULL, 0, NULL, 0, "", false, "", "pencil", SASL_SCRAM_OK},
    {"plus_mechanism_with_y", true, true, "y,,n=user,r=abcdefgh", SASL_SCRAM_FAIL,
     SASL_SCRAM_CB_NOT_USED, NULL, NULL, 0, NULL, 0, "", false, "", "pencil", SASL_SCRAM_OK},
    {"plus_mechanism_not_offered", true, false, "p=tls-exporter,,n=user,r=abcdefgh",
     SASL_SCRAM_FAIL, SASL_SCRAM_CB_TLS_EXPORTER, NULL, NULL, 0, NULL, 0, "", false, "", "pencil",
     SASL_SCRAM_OK},
    {"rfc5802_s6_unsupported_type_tls_unique", true, true, "p=tls-unique,,n=user,r=abcdefgh",
     SASL_SCRAM_FAIL, SASL_SCRAM_CB_NONE, NULL, NULL, 0, NULL, 0, "", false, "", "pencil",
     SASL_SCRAM_OK},
    {"rfc9266_tls_exporter", true, true, "p=tls-exporter,,n=user,r=abcdefgh", SASL_SCRAM_OK,
     SASL_SCRAM_CB_TLS_EXPORTER, NULL, cb_exporter, 32, cb_exporter, 32, "", false, "", "pencil",
     SASL_SCRAM_OK},
    {"rfc9266_tls_exporter_with_authzid", true, true, "p=tls-exporter,a=boss,n=user,r=abcdefgh",
     SASL_SCRAM_OK, SASL_SCRAM_CB_TLS_EXPORTER, NULL, cb_exporter, 32, cb_exporter, 32, "", false,
     "", "pencil", SASL_SCRAM_OK},
    {"rfc5929_s4_tls_server_end_point", true, true, "p=tls-server-end-point,,n=user,r=abcdefgh",
     SASL_SCRAM_OK, SASL_SCRAM_CB_TLS_SERVER_END_POINT, NULL, cb_exporter, 32, cb_exporter, 32, "",
     false, "", "pencil", SASL_SCRAM_OK},
    {"rfc9266_tls_exporter_wrong_cb_data", true, true, "p=tls-exporter,,n=user,r=abcdefgh",
     SASL_SCRAM_OK, SASL_SCRAM_CB_TLS_EXPORTER, NULL, cb_other, 32, cb_exporter, 32, "", false, "",
     "pencil", SASL_SCRAM_FAIL},
    {"rfc9266_tls_exporter_cb_data_short", true, true, "p=tls-exporter,,n=user,r=abcdefgh",
     SASL_SCRAM_OK, SASL_SCRAM_CB_TLS_EXPORTER, NULL, cb_exporter, 31, cb_exporter, 32, "", false,
     "", "pencil", SASL_SCRAM_FAIL},
    {"rfc9266_tls_exporter_client_omits_cb_data", true, true, "p=tls-exporter,,n=user,r=abcdefgh",
     SASL_SCRAM_OK, SASL_SCRAM_CB_TLS_EXPORTER, NULL, NULL, 0, cb_exporter, 32, "", false, "",
     "pencil", SASL_SCRAM_FAIL},
    {"tls_exporter_server_has_no_cb_data", true, true, "p=tls-exporter,,n=user,r=abcdefgh",
     SASL_SCRAM_OK, SASL_SCRAM_CB_TLS_EXPORTER, NULL, cb_exporter, 32, NULL, 0, "", false, "",
     "pencil", SASL_SCRAM_FAIL},
    {"tls_exporter_cb_data_over_max", true, true, "p=tls-exporter,,n=user,r=abcdefgh",
     SASL_SCRAM_OK, SASL_SCRAM_CB_TLS_EXPORTER, NULL, cb_long, sizeof(cb_long), cb_long,
     sizeof(cb_long), "", false, "", "pencil", SASL_SCRAM_FAIL},
    {"rfc5802_s6_c_repeats_other_gs2_header", false, false, "y,,n=user,r=abcdefgh", SASL_SCRAM_OK,
     SASL_SCRAM_CB_NOT_USED, "n,,", NULL, 0, NULL, 0, "", false, "", "pencil", SASL_SCRAM_FAIL},
    {"rfc5802_s6_c_drops_authzid", false, false, "n,a=boss,n=user,r=abcdefgh", SASL_SCRAM_OK,
     SASL_SCRAM_CB_NONE, "n,,", NULL, 0, NULL, 0, "", false, "", "pencil", SASL_SCRAM_FAIL},
    {"binding_data_on_n", false, false, "n,,n=user,r=abcdefgh", SASL_SCRAM_OK, SASL_SCRAM_CB_NONE,
     NULL, cb_exporter, 32, cb_exporter, 32, "", false, "", "pencil", SASL_SCRAM_FAIL},
    {"wrong_password", false, false, "n,,n=user,r=abcdefgh", SASL_SCRAM_OK, SASL_SCRAM_CB_NONE,
     NULL, NULL, 0, NULL, 0, "", false, "", "pencil2", SASL_SCRAM_FAIL},
    {"empty_password", false, false, "n,,n=user,r=abcdefgh", SASL_SCRAM_OK, SASL_SCRAM_CB_NONE,
     NULL, NULL, 0, NULL, 0, "", false, "", "", SASL_SCRAM_FAIL},
    {"nonce_with_extra_char", false, false, "n,,n=user,r=abcdefgh", SASL_SCRAM_OK,
     SASL_SCRAM_CB_NONE, NULL, NULL, 0, NULL, 0, "x", false, "", "pencil", SASL_SCRAM_FAIL},
    {"nonce_client_part_only", false, false, "n,,n=user,r=abcdefgh", SASL_SCRAM_OK,
     SASL_SCRAM_CB_NONE, NULL, NULL, 0, NULL, 0, "", true, "", "pencil", SASL_SCRAM_FAIL},
    {"rfc5802_s7_final_extension_covered_by_proof", false, false, "n,,n=user,r=abcdefgh",
     SASL_SCRAM_OK, SASL_SCRAM_CB_NONE, NULL, NULL, 0, NULL, 0, "", false, ",x=yz=", "pencil",
     SASL_SCRAM_OK},
    {"rfc5802_s7_first_extension_covered_by_proof", false, false, "n,,n=user,r=abcdefgh,x=1",
     SASL_SCRAM_OK, SASL_SCRAM_CB_NONE, NULL, NULL, 0, NULL, 0, "", false, "", "pencil",
     SASL_SCRAM_OK},
};

static void run_exchange(const struct exchange_case *c)
{
    struct sasl_scram_creds creds;
    struct sasl_scram st;
    char server_first[SCRAM_MSG_MAX], final[SCRAM_MSG_MAX], out[SCRAM_MSG_MAX], nonce[300];
    size_t outn = 0;

    rfc_creds(&creds);
    enum sasl_scram_status s = sasl_scram_client_first(
        &st, c->plus, c->plus_offered, (const uint8_t *)c->client_first, strlen(c->client_first));
    if (s != c->want_first)
        fail_msg("case %s: client-first %d want %d", c->name, s, c->want_first);
    if (s != SASL_SCRAM_OK) {
        /* A refused client-first ends the exchange. */
        assert_int_equal(sasl_scram_server_first(&st, &creds, random18, sizeof(random18),
                                                 server_first, sizeof(server_first), &outn),
                         SASL_SCRAM_FAIL);
        return;
    }
    assert_int_equal(st.cb, c->want_cb);
    assert_int_equal(sasl_scram_server_first(&st, &creds, random18, sizeof(random18), server_first,
                                             sizeof(server_first), &outn),
                     SASL_SCRAM_OK);
    /* r=<client nonce><base64 of the random bytes>,s=...,i=4096 */
    assert_int_equal(strncmp(server_first, "r=abcdefghAQIDBAUGBwgJCgsMDQ4PEBES,s=", 37), 0);
    const char *comma = strchr(server_first, ',');
    size_t nl = (size_t)(comma - server_first - 2);
    memcpy(nonce, server_first + 2, nl);
    nonce[c->nonce_client_only ? 8 : nl] = '\0';
    strncat(nonce, c->nonce_suffix, sizeof(nonce) - strlen(nonce) - 1);
    const char *bare = strstr(c->client_first, "n=");
    char gs2[128];
    size_t gl = (size_t)(bare - c->client_first);
    memcpy(gs2, c->client_first, gl);
    gs2[gl] = '\0';
    build_final(bare, server_first, c->c_gs2 != NULL ? c->c_gs2 : gs2, c->client_cb,
                c->client_cb_len, nonce, c->extra, c->password, &creds, final, sizeof(final));
    memset(out, 'Z', sizeof(out));
    s = sasl_scram_client_final(&st, &creds, c->server_cb, c->server_cb_len,
                                (const uint8_t *) final, strlen(final), out, sizeof(out), &outn);
    if (s != c->want_final)
        fail_msg("case %s: client-final %d want %d (%s)", c->name, s, c->want_final, final);
    if (s == SASL_SCRAM_OK) {
        assert_int_equal(strncmp(out, "v=", 2), 0);
        assert_int_equal(outn, 46);
    } else {
        assert_string_equal(out, "");
        assert_int_equal(outn, 0);
    }
    /* One client-final per exchange, whatever the outcome. */
    assert_int_equal(sasl_scram_client_final(&st, &creds, c->server_cb, c->server_cb_len,
                                             (const uint8_t *) final, strlen(final), out,
                                             sizeof(out), &outn),
                     SASL_SCRAM_FAIL);
}

static void test_exchanges(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(exchanges) / sizeof(exchanges[0]); i++)
        run_exchange(&exchanges[i]);
}

static void test_authzid_and_user_decoded(void **state)
{
    (void)state;
    struct sasl_scram st;
    const char *msg = "n,a=a=2Cb=3Dc,n=x=3Dy=2Cz,r=abc";
    assert_int_equal(sasl_scram_client_first(&st, false, false, (const uint8_t *)msg, strlen(msg)),
                     SASL_SCRAM_OK);
    assert_string_equal(st.authzid, "a,b=c");
    assert_string_equal(st.user, "x=y,z");
    msg = "n,,n=J\xc3\xbcrgen,r=abc";
    assert_int_equal(sasl_scram_client_first(&st, false, false, (const uint8_t *)msg, strlen(msg)),
                     SASL_SCRAM_OK);
    assert_string_equal(st.user, "J\xc3\xbcrgen");
}

/* ---- malformed client-first ---- */

struct first_case {
    const char *name;
    const char *msg;
    size_t len; /* 0: strlen(msg) */
    enum sasl_scram_status want;
};

static char long_user[SASL_ID_MAX + 20];      /* "n,,n=" + SASL_ID_MAX + 1 'u's + ",r=abc" */
static char max_user[SASL_ID_MAX + 20];       /* the same with SASL_ID_MAX 'u's */
static char long_nonce[SCRAM_NONCE_MAX + 20]; /* r= with SCRAM_NONCE_MAX + 1 chars */
static char max_nonce[SCRAM_NONCE_MAX + 20];
static char long_gs2[1000]; /* an authzid of 127 "=2C": 127 octets decoded, header too long */
static char long_msg[SCRAM_MSG_MAX + 1]; /* SCRAM_MSG_MAX octets via an extension */
static char max_msg[SCRAM_MSG_MAX];      /* one less */

static const struct first_case first_cases[] = {
    {"ok_minimal", "n,,n=u,r=a", 0, SASL_SCRAM_OK},
    {"ok_extension", "n,,n=u,r=a,x=y", 0, SASL_SCRAM_OK},
    {"ok_extension_value_with_equals", "n,,n=u,r=a,x==", 0, SASL_SCRAM_OK},
    {"empty", "", 0, SASL_SCRAM_SYNTAX},
    {"flag_only", "n", 0, SASL_SCRAM_SYNTAX},
    {"flag_comma", "n,", 0, SASL_SCRAM_SYNTAX},
    {"gs2_header_only", "n,,", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_flag_unknown", "x,,n=u,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_flag_upper_case", "N,,n=u,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_flag_with_space", "n ,,n=u,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_gs2_nonstd_flag", "F,n,,n=u,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_p_empty_cb_name", "p=,,n=u,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5056_s7_cb_name_underscore", "p=tls_exporter,,n=u,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_authzid_empty", "n,a=,n=u,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_authzid_wrong_attr", "n,b=x,n=u,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_authzid_bad_escape", "n,a=x=2D,n=u,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_no_username", "n,,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_nonce_before_username", "n,,r=a,n=u", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_no_nonce", "n,,n=u", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_username_empty", "n,,n=,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_nonce_empty", "n,,n=u,r=", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_nonce_space", "n,,n=u,r=a b", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_nonce_del", "n,,n=u,r=a\x7f", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_nonce_high_byte", "n,,n=u,r=a\xc3\xa9", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_trailing_comma", "n,,n=u,r=a,", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_extension_without_value", "n,,n=u,r=a,x=", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_extension_without_equals", "n,,n=u,r=a,x", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_extension_name_digit", "n,,n=u,r=a,1=x", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_extension_long_name", "n,,n=u,r=a,xy=z", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s5_1_saslname_bad_escape", "n,,n=u=2x,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s5_1_saslname_lower_case_escape", "n,,n=u=2c,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s5_1_saslname_other_escape", "n,,n=u=41,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s5_1_saslname_short_escape", "n,,n=u=3,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s5_1_saslname_bare_equals", "n,,n=u=,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s5_1_saslname_invalid_utf8", "n,,n=J\xfcrgen,r=a", 0, SASL_SCRAM_SYNTAX},
    {"saslname_control_char", "n,,n=u\tv,r=a", 0, SASL_SCRAM_SYNTAX},
    {"nul_in_message", "n,,n=u\0v,r=a", 12, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_mext_empty", "n,,m=,n=u,r=a", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_mext_alone", "n,,m=x", 0, SASL_SCRAM_SYNTAX},
    {"rfc5802_s5_1_mext_fails", "n,,m=x,n=u,r=a", 0, SASL_SCRAM_FAIL},
    {"rfc5802_s5_1_mext_fails_with_binding", "p=tls-exporter,,m=x,n=u,r=a", 0, SASL_SCRAM_FAIL},
    {"username_over_max", long_user, 0, SASL_SCRAM_SYNTAX},
    {"username_at_max", max_user, 0, SASL_SCRAM_OK},
    {"nonce_over_max", long_nonce, 0, SASL_SCRAM_SYNTAX},
    {"nonce_at_max", max_nonce, 0, SASL_SCRAM_OK},
    {"gs2_header_over_buffer", long_gs2, 0, SASL_SCRAM_SYNTAX},
    {"message_over_max", long_msg, 0, SASL_SCRAM_SYNTAX},
    {"message_at_max", max_msg, 0, SASL_SCRAM_OK},
};

static void test_client_first_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(first_cases) / sizeof(first_cases[0]); i++) {
        const struct first_case *c = &first_cases[i];
        struct sasl_scram st;
        size_t len = c->len ? c->len : strlen(c->msg);
        enum sasl_scram_status s =
            sasl_scram_client_first(&st, false, false, (const uint8_t *)c->msg, len);
        if (s != c->want)
            fail_msg("case %s: got %d want %d", c->name, s, c->want);
    }
}

/* ---- malformed client-final ---- */

#define P32 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" /* 32 zero octets */

struct final_case {
    const char *name;
    const char *tmpl; /* {N}: the full nonce; {P}: a proof of the right length */
    enum sasl_scram_status want;
};

static char long_final[SCRAM_MSG_MAX + 64];

static const struct final_case final_cases[] = {
    {"well_formed_wrong_proof", "c=biws,r={N},p={P}", SASL_SCRAM_FAIL},
    {"empty", "", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_no_proof", "c=biws,r={N}", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_proof_empty", "c=biws,r={N},p=", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_proof_not_last", "c=biws,p={P},r={N}", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_proof_bad_base64", "c=biws,r={N},p=!!!!", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_proof_unpadded", "c=biws,r={N},p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
     SASL_SCRAM_SYNTAX},
    {"proof_31_octets",
     "c=biws,r={N},p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", SASL_SCRAM_SYNTAX},
    {"proof_33_octets", "c=biws,r={N},p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
     SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_cbind_bad_base64", "c=bi!s,r={N},p={P}", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_cbind_bad_length", "c=biw,r={N},p={P}", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_cbind_url_alphabet", "c=bi-_,r={N},p={P}", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_cbind_empty", "c=,r={N},p={P}", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_no_cbind", "r={N},p={P}", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_nonce_first", "r={N},c=biws,p={P}", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_no_nonce", "c=biws,p={P}", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_nonce_empty", "c=biws,r=,p={P}", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_nonce_space", "c=biws,r={N} x,p={P}", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_empty_extension", "c=biws,r={N},,p={P}", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_extension_name_digit", "c=biws,r={N},1=x,p={P}", SASL_SCRAM_SYNTAX},
    {"rfc5802_s7_trailing_comma", "c=biws,r={N},p={P},", SASL_SCRAM_SYNTAX},
    {"nonce_mismatch", "c=biws,r={N}x,p={P}", SASL_SCRAM_FAIL},
    {"cbind_mismatch", "c=eSws,r={N},p={P}", SASL_SCRAM_FAIL},
    {"message_over_max", long_final, SASL_SCRAM_SYNTAX},
};

static void start(struct sasl_scram *st, struct sasl_scram_creds *creds, char *nonce, size_t cap)
{
    char out[SCRAM_MSG_MAX];
    size_t outn = 0;
    rfc_creds(creds);
    assert_int_equal(
        sasl_scram_client_first(st, false, false, (const uint8_t *)"n,,n=user,r=abc", 15),
        SASL_SCRAM_OK);
    assert_int_equal(
        sasl_scram_server_first(st, creds, random18, sizeof(random18), out, sizeof(out), &outn),
        SASL_SCRAM_OK);
    size_t nl = (size_t)(strchr(out, ',') - out - 2);
    assert_true(nl < cap);
    memcpy(nonce, out + 2, nl);
    nonce[nl] = '\0';
}

static void test_client_final_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(final_cases) / sizeof(final_cases[0]); i++) {
        const struct final_case *c = &final_cases[i];
        struct sasl_scram st;
        struct sasl_scram_creds creds;
        char nonce[300], msg[2 * SCRAM_MSG_MAX], out[SCRAM_MSG_MAX];
        size_t outn = 9;
        start(&st, &creds, nonce, sizeof(nonce));
        subst(c->tmpl, nonce, P32, msg, sizeof(msg));
        enum sasl_scram_status s = sasl_scram_client_final(
            &st, &creds, NULL, 0, (const uint8_t *)msg, strlen(msg), out, sizeof(out), &outn);
        if (s != c->want)
            fail_msg("case %s: got %d want %d", c->name, s, c->want);
        assert_string_equal(out, "");
        assert_int_equal(outn, 0);
    }
}

static void test_client_final_nul(void **state)
{
    (void)state;
    struct sasl_scram st;
    struct sasl_scram_creds creds;
    char nonce[300], msg[SCRAM_MSG_MAX], out[SCRAM_MSG_MAX];
    size_t outn;
    start(&st, &creds, nonce, sizeof(nonce));
    int n = snprintf(msg, sizeof(msg), "c=biws,r=%s,x=a_b,p=%s", nonce, P32);
    assert_true(n > 0);
    char *us = strchr(msg, '_');
    *us = '\0';
    assert_int_equal(sasl_scram_client_final(&st, &creds, NULL, 0, (const uint8_t *)msg, (size_t)n,
                                             out, sizeof(out), &outn),
                     SASL_SCRAM_SYNTAX);
}

/* ---- the order of the exchange and bad arguments ---- */

static void test_out_of_turn(void **state)
{
    (void)state;
    struct sasl_scram st;
    struct sasl_scram_creds creds;
    char out[SCRAM_MSG_MAX], nonce[300];
    size_t outn = 5;

    rfc_creds(&creds);
    memset(&st, 0, sizeof(st));
    assert_int_equal(
        sasl_scram_server_first(&st, &creds, random18, sizeof(random18), out, sizeof(out), &outn),
        SASL_SCRAM_FAIL);
    assert_int_equal(outn, 0);
    assert_int_equal(sasl_scram_client_final(&st, &creds, NULL, 0,
                                             (const uint8_t *)RFC_CLIENT_FINAL,
                                             strlen(RFC_CLIENT_FINAL), out, sizeof(out), &outn),
                     SASL_SCRAM_FAIL);

    /* client-final before server-first */
    assert_int_equal(sasl_scram_client_first(&st, false, false, (const uint8_t *)RFC_CLIENT_FIRST,
                                             strlen(RFC_CLIENT_FIRST)),
                     SASL_SCRAM_OK);
    assert_int_equal(sasl_scram_client_final(&st, &creds, NULL, 0,
                                             (const uint8_t *)RFC_CLIENT_FINAL,
                                             strlen(RFC_CLIENT_FINAL), out, sizeof(out), &outn),
                     SASL_SCRAM_FAIL);

    /* server-first twice */
    start(&st, &creds, nonce, sizeof(nonce));
    assert_int_equal(
        sasl_scram_server_first(&st, &creds, random18, sizeof(random18), out, sizeof(out), &outn),
        SASL_SCRAM_FAIL);

    /* after client-final, no new server-first on the old client-first */
    start(&st, &creds, nonce, sizeof(nonce));
    assert_int_equal(sasl_scram_client_final(&st, &creds, NULL, 0, (const uint8_t *)"x", 1, out,
                                             sizeof(out), &outn),
                     SASL_SCRAM_SYNTAX);
    assert_int_equal(
        sasl_scram_server_first(&st, &creds, random18, sizeof(random18), out, sizeof(out), &outn),
        SASL_SCRAM_FAIL);
}

struct server_first_case {
    const char *name;
    size_t random_len;
    const char *snonce; /* non-NULL: sasl_scram_server_first_nonce */
    uint32_t iterations;
    size_t salt_len;
    size_t outlen;
    enum sasl_scram_status want;
};

static const uint8_t random_big[SCRAM_RANDOM_MAX + 1] = {7};

static const struct server_first_case server_first_cases[] = {
    {"random_min", SCRAM_RANDOM_MIN, NULL, 4096, 16, SCRAM_MSG_MAX, SASL_SCRAM_OK},
    {"random_max", SCRAM_RANDOM_MAX, NULL, 4096, 16, SCRAM_MSG_MAX, SASL_SCRAM_OK},
    {"random_too_short", SCRAM_RANDOM_MIN - 1, NULL, 4096, 16, SCRAM_MSG_MAX, SASL_SCRAM_FAIL},
    {"random_too_long", SCRAM_RANDOM_MAX + 1, NULL, 4096, 16, SCRAM_MSG_MAX, SASL_SCRAM_FAIL},
    {"creds_iterations_low", SCRAM_RANDOM_MIN, NULL, 4095, 16, SCRAM_MSG_MAX, SASL_SCRAM_FAIL},
    {"creds_salt_empty", SCRAM_RANDOM_MIN, NULL, 4096, 0, SCRAM_MSG_MAX, SASL_SCRAM_FAIL},
    {"out_fits_exactly", SCRAM_RANDOM_MIN, NULL, 4096, 16, 63, SASL_SCRAM_OK},
    {"out_one_short", SCRAM_RANDOM_MIN, NULL, 4096, 16, 62, SASL_SCRAM_FAIL},
    {"snonce_comma", 0, "ab,c", 4096, 16, SCRAM_MSG_MAX, SASL_SCRAM_FAIL},
    {"snonce_space", 0, "ab c", 4096, 16, SCRAM_MSG_MAX, SASL_SCRAM_FAIL},
    {"snonce_empty", 0, "", 4096, 16, SCRAM_MSG_MAX, SASL_SCRAM_FAIL},
};

static void test_server_first_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(server_first_cases) / sizeof(server_first_cases[0]); i++) {
        const struct server_first_case *c = &server_first_cases[i];
        struct sasl_scram st;
        struct sasl_scram_creds creds;
        char out[SCRAM_MSG_MAX + 1];
        size_t outn = 7;
        rfc_creds(&creds);
        creds.iterations = c->iterations;
        creds.salt_len = c->salt_len;
        assert_int_equal(
            sasl_scram_client_first(&st, false, false, (const uint8_t *)"n,,n=u,r=ab", 11),
            SASL_SCRAM_OK);
        memset(out, 'Z', sizeof(out));
        enum sasl_scram_status s =
            c->snonce != NULL
                ? sasl_scram_server_first_nonce(&st, &creds, c->snonce, strlen(c->snonce), out,
                                                c->outlen, &outn)
                : sasl_scram_server_first(&st, &creds, random_big, c->random_len, out, c->outlen,
                                          &outn);
        if (s != c->want)
            fail_msg("case %s: got %d want %d", c->name, s, c->want);
        if (s == SASL_SCRAM_OK) {
            assert_int_equal(outn, strlen(out));
            assert_true(strstr(out, ",s=" RFC_SALT_B64 ",i=4096") != NULL);
        } else {
            assert_string_equal(out, "");
            assert_int_equal(outn, 0);
        }
        assert_int_equal(out[c->outlen], 'Z');
    }
}

static void test_server_final_out_too_small(void **state)
{
    (void)state;
    struct sasl_scram_creds creds;
    struct sasl_scram st;
    char out[SCRAM_MSG_MAX];
    size_t outn = 0;
    rfc_creds(&creds);
    assert_int_equal(sasl_scram_client_first(&st, false, false, (const uint8_t *)RFC_CLIENT_FIRST,
                                             strlen(RFC_CLIENT_FIRST)),
                     SASL_SCRAM_OK);
    assert_int_equal(sasl_scram_server_first_nonce(&st, &creds, RFC_SNONCE, strlen(RFC_SNONCE), out,
                                                   sizeof(out), &outn),
                     SASL_SCRAM_OK);
    memset(out, 'Z', sizeof(out));
    assert_int_equal(sasl_scram_client_final(&st, &creds, NULL, 0,
                                             (const uint8_t *)RFC_CLIENT_FINAL,
                                             strlen(RFC_CLIENT_FINAL), out, 46, &outn),
                     SASL_SCRAM_FAIL);
    assert_int_equal(out[0], '\0');
    assert_int_equal(out[46], 'Z');
}

/* ---- credentials ---- */

struct make_case {
    const char *name;
    size_t pw_len;
    size_t salt_len;
    uint32_t iterations;
    int want;
};

static const struct make_case make_cases[] = {
    {"ok", 6, 16, 4096, 0},
    {"rfc7677_s4_iterations_below_4096", 6, 16, 4095, -1},
    {"iterations_at_min_salt_one_octet", 6, 1, SCRAM_ITERATIONS_MIN, 0},
    {"iterations_over_max", 6, 16, SCRAM_ITERATIONS_MAX + 1, -1},
    {"salt_empty", 6, 0, 4096, -1},
    {"salt_at_max", 6, SCRAM_SALT_MAX, 4096, 0},
    {"salt_over_max", 6, SCRAM_SALT_MAX + 1, 4096, -1},
    {"password_empty", 0, 16, 4096, 0},
    {"password_at_max", SASL_PASSWORD_MAX, 16, 4096, 0},
    {"password_over_max", SASL_PASSWORD_MAX + 1, 16, 4096, -1},
};

static void test_creds_make_table(void **state)
{
    (void)state;
    static char pw[SASL_PASSWORD_MAX + 2];
    static uint8_t salt[SCRAM_SALT_MAX + 1];
    memset(pw, 'p', sizeof(pw));
    memset(salt, 's', sizeof(salt));
    for (size_t i = 0; i < sizeof(make_cases) / sizeof(make_cases[0]); i++) {
        const struct make_case *c = &make_cases[i];
        struct sasl_scram_creds creds, back;
        char text[SCRAM_CREDS_TEXT_MAX];
        int rc = sasl_scram_creds_make(pw, c->pw_len, salt, c->salt_len, c->iterations, &creds);
        if (rc != c->want)
            fail_msg("case %s: got %d", c->name, rc);
        if (rc != 0)
            continue;
        size_t n = sasl_scram_creds_format(&creds, text, sizeof(text));
        assert_true(n > 0);
        assert_int_equal(sasl_scram_creds_parse(text, n, &back), 0);
        assert_memory_equal(&back, &creds, sizeof(creds));
    }
}

static void test_creds_format_capacity(void **state)
{
    (void)state;
    struct sasl_scram_creds creds;
    char text[SCRAM_CREDS_TEXT_MAX];
    rfc_creds(&creds);
    size_t len = strlen(RFC_CREDS);
    memset(text, 'Z', sizeof(text));
    assert_int_equal(sasl_scram_creds_format(&creds, text, len + 1), len);
    assert_int_equal(text[len + 1], 'Z');
    assert_int_equal(sasl_scram_creds_format(&creds, text, len), 0);
    assert_string_equal(text, "");
    assert_int_equal(sasl_scram_creds_format(&creds, text, 0), 0);
    /* The largest salt and count still fit SCRAM_CREDS_TEXT_MAX. */
    uint8_t salt[SCRAM_SALT_MAX];
    memset(salt, 0xff, sizeof(salt));
    assert_int_equal(
        sasl_scram_creds_make("p", 1, salt, sizeof(salt), SCRAM_ITERATIONS_MIN, &creds), 0);
    creds.iterations = SCRAM_ITERATIONS_MAX;
    assert_true(sasl_scram_creds_format(&creds, text, sizeof(text)) > 0);
    creds.salt_len = 0;
    assert_int_equal(sasl_scram_creds_format(&creds, text, sizeof(text)), 0);
}

#define KEY_A "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
#define KEY_B "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

struct parse_case {
    const char *name;
    const char *text;
    int want;
};

static char long_creds[SCRAM_CREDS_TEXT_MAX + 8];

static const struct parse_case parse_cases[] = {
    {"rfc7677_vector", RFC_CREDS, 0},
    {"iterations_max", "SCRAM-SHA-256$1000000:c2FsdA==$" KEY_A ":" KEY_B, 0},
    {"empty", "", -1},
    {"prefix_only", "SCRAM-SHA-256$", -1},
    {"prefix_lower_case", "scram-sha-256$4096:c2FsdA==$" KEY_A ":" KEY_B, -1},
    {"prefix_sha1", "SCRAM-SHA-1$4096:c2FsdA==$" KEY_A ":" KEY_B, -1},
    {"braced_prefix", "{SCRAM-SHA-256}4096:c2FsdA==$" KEY_A ":" KEY_B, -1},
    {"iterations_leading_zero", "SCRAM-SHA-256$04096:c2FsdA==$" KEY_A ":" KEY_B, -1},
    {"iterations_below_min", "SCRAM-SHA-256$4095:c2FsdA==$" KEY_A ":" KEY_B, -1},
    {"iterations_over_max", "SCRAM-SHA-256$1000001:c2FsdA==$" KEY_A ":" KEY_B, -1},
    {"iterations_huge", "SCRAM-SHA-256$99999999999:c2FsdA==$" KEY_A ":" KEY_B, -1},
    {"iterations_sign", "SCRAM-SHA-256$+4096:c2FsdA==$" KEY_A ":" KEY_B, -1},
    {"iterations_empty", "SCRAM-SHA-256$:c2FsdA==$" KEY_A ":" KEY_B, -1},
    {"iterations_not_digits", "SCRAM-SHA-256$40x6:c2FsdA==$" KEY_A ":" KEY_B, -1},
    {"salt_empty", "SCRAM-SHA-256$4096:$" KEY_A ":" KEY_B, -1},
    {"salt_bad_base64", "SCRAM-SHA-256$4096:c2Fsd!==$" KEY_A ":" KEY_B, -1},
    {"salt_unpadded", "SCRAM-SHA-256$4096:c2FsdA$" KEY_A ":" KEY_B, -1},
    {"salt_over_max",
     "SCRAM-SHA-256$4096:"
     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
     "AAAA$" KEY_A ":" KEY_B,
     -1},
    {"stored_key_short",
     "SCRAM-SHA-256$4096:c2FsdA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==:" KEY_B, -1},
    {"server_key_long", "SCRAM-SHA-256$4096:c2FsdA==$" KEY_A ":" KEY_B "AAAA", -1},
    {"server_key_missing", "SCRAM-SHA-256$4096:c2FsdA==$" KEY_A, -1},
    {"server_key_empty", "SCRAM-SHA-256$4096:c2FsdA==$" KEY_A ":", -1},
    {"trailing_newline", RFC_CREDS "\n", -1},
    {"trailing_field", RFC_CREDS ":" KEY_B, -1},
    {"extra_dollar", "SCRAM-SHA-256$4096:c2FsdA==$$" KEY_A ":" KEY_B, -1},
    {"separators_swapped", "SCRAM-SHA-256$4096$c2FsdA==:" KEY_A ":" KEY_B, -1},
    {"over_text_max", long_creds, -1},
};

static void test_creds_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        struct sasl_scram_creds creds;
        memset(&creds, 0x5a, sizeof(creds));
        int rc = sasl_scram_creds_parse(c->text, strlen(c->text), &creds);
        if (rc != c->want)
            fail_msg("case %s: got %d want %d", c->name, rc, c->want);
        if (rc != 0)
            assert_int_equal(creds.salt_len, 0);
    }
}

static void fill_long_inputs(void)
{
    char u[SASL_ID_MAX + 2], nn[SCRAM_NONCE_MAX + 2];
    memset(u, 'u', sizeof(u));
    memset(nn, 'r', sizeof(nn));
    snprintf(long_user, sizeof(long_user), "n,,n=%.*s,r=abc", SASL_ID_MAX + 1, u);
    snprintf(max_user, sizeof(max_user), "n,,n=%.*s,r=abc", SASL_ID_MAX, u);
    snprintf(long_nonce, sizeof(long_nonce), "n,,n=u,r=%.*s", SCRAM_NONCE_MAX + 1, nn);
    snprintf(max_nonce, sizeof(max_nonce), "n,,n=u,r=%.*s", SCRAM_NONCE_MAX, nn);
    size_t o = (size_t)snprintf(long_gs2, sizeof(long_gs2), "n,a=");
    for (int i = 0; i < 127; i++) {
        memcpy(long_gs2 + o, "=2C", 3);
        o += 3;
    }
    snprintf(long_gs2 + o, sizeof(long_gs2) - o, ",n=u,r=a");
    o = (size_t)snprintf(long_msg, sizeof(long_msg), "n,,n=u,r=a,x=");
    memset(long_msg + o, 'v', SCRAM_MSG_MAX - o);
    long_msg[SCRAM_MSG_MAX] = '\0';
    memcpy(max_msg, long_msg, SCRAM_MSG_MAX - 1);
    max_msg[SCRAM_MSG_MAX - 1] = '\0';
    o = (size_t)snprintf(long_final, sizeof(long_final), "c=biws,r={N},x=");
    memset(long_final + o, 'v', SCRAM_MSG_MAX - o);
    memcpy(long_final + SCRAM_MSG_MAX, ",p={P}", 7);
    o = (size_t)snprintf(long_creds, sizeof(long_creds), "%s", RFC_CREDS);
    memset(long_creds + o, 'A', sizeof(long_creds) - 1 - o);
    long_creds[sizeof(long_creds) - 1] = '\0';
}

int main(void)
{
    fill_long_inputs();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7677_s3_exchange),
        cmocka_unit_test(test_rfc7677_s3_creds_text),
        cmocka_unit_test(test_exchanges),
        cmocka_unit_test(test_authzid_and_user_decoded),
        cmocka_unit_test(test_client_first_table),
        cmocka_unit_test(test_client_final_table),
        cmocka_unit_test(test_client_final_nul),
        cmocka_unit_test(test_out_of_turn),
        cmocka_unit_test(test_server_first_table),
        cmocka_unit_test(test_server_final_out_too_small),
        cmocka_unit_test(test_creds_make_table),
        cmocka_unit_test(test_creds_format_capacity),
        cmocka_unit_test(test_creds_parse_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
