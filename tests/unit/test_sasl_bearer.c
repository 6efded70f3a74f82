/* Unit tests for sasl/bearer: the OAUTHBEARER client response (RFC 7628 §3.1) with its GS2
 * header and key/value pairs, the dummy response (§3.2.3), XOAUTH2's message, the Bearer
 * scheme and RFC 6750 §2.1 token syntax, the length limits, and the error JSON (§3.2.2). */
/* cmocka.h needs these before it, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include <stdlib.h>
#include <string.h>

#include "sasl/bearer.h"

/* A literal and its length, NULs included. */
#define M(s) s, sizeof(s) - 1

struct parse_case {
    const char *name;
    const char *msg;
    size_t len;
    enum sasl_bearer_status want;
    const char *authzid, *token;
};

static const struct parse_case oauthbearer_cases[] = {
    {"rfc7628_s4_1_example",
     M("n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
       "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"),
     SASL_BEARER_OK, "user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="},
    {"no_authzid",
     M("n,,\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_OK, "", "abc"},
    {"flag_y",
     M("y,,\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_OK, "", "abc"},
    {"rfc7235_s2_1_scheme_lower_case",
     M("n,,\x01"
       "auth=bearer abc\x01\x01"),
     SASL_BEARER_OK, "", "abc"},
    {"rfc7235_s2_1_scheme_upper_case",
     M("n,,\x01"
       "auth=BEARER abc\x01\x01"),
     SASL_BEARER_OK, "", "abc"},
    {"several_spaces",
     M("n,,\x01"
       "auth=Bearer   abc\x01\x01"),
     SASL_BEARER_OK, "", "abc"},
    {"rfc6750_s2_1_all_token_chars",
     M("n,,\x01"
       "auth=Bearer azAZ09-._~+/==\x01\x01"),
     SASL_BEARER_OK, "", "azAZ09-._~+/=="},
    {"jwt_token",
     M("n,,\x01"
       "auth=Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\x01\x01"),
     SASL_BEARER_OK, "", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"},
    {"rfc7628_s3_1_unknown_keys_ignored",
     M("n,,\x01"
       "qs=\x01"
       "auth=Bearer abc\x01"
       "xyz=a b\tc\r\n\x01\x01"),
     SASL_BEARER_OK, "", "abc"},
    {"rfc5801_s4_authzid_escapes",
     M("n,a=a=2Cb=3Dc,\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_OK, "a,b=c", "abc"},
    {"rfc7628_s3_2_3_dummy", M("\x01"), SASL_BEARER_DUMMY, "", ""},
    {"rfc7628_s3_1_no_kvpairs", M("n,,\x01\x01"), SASL_BEARER_NO_TOKEN, "", ""},
    {"rfc7628_s3_1_no_auth_key", M("n,,\x01host=x\x01\x01"), SASL_BEARER_NO_TOKEN, "", ""},
    {"scheme_basic",
     M("n,,\x01"
       "auth=Basic dXNlcjpwYXNz\x01\x01"),
     SASL_BEARER_NO_TOKEN, "", ""},
    {"scheme_oauth",
     M("n,,\x01"
       "auth=OAuth realm=\"x\"\x01\x01"),
     SASL_BEARER_NO_TOKEN, "", ""},
    {"scheme_bearer_prefix",
     M("n,,\x01"
       "auth=Bearerx abc\x01\x01"),
     SASL_BEARER_NO_TOKEN, "", ""},
    {"auth_key_upper_case_is_unknown",
     M("n,,\x01"
       "AUTH=Bearer abc\x01\x01"),
     SASL_BEARER_NO_TOKEN, "", ""},
    {"empty", M(""), SASL_BEARER_SYNTAX, "", ""},
    {"dummy_twice", M("\x01\x01"), SASL_BEARER_SYNTAX, "", ""},
    {"rfc5801_s4_cb_flag_p",
     M("p=tls-exporter,,\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc5801_s4_nonstd_flag",
     M("F,n,,\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"gs2_flag_unknown",
     M("x,,\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"gs2_header_unterminated",
     M("n,a=u\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc5801_s4_authzid_empty",
     M("n,a=,\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc5801_s4_authzid_wrong_attr",
     M("n,u=x,\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc5801_s4_authzid_bad_escape",
     M("n,a=x=2D,\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"authzid_control_char",
     M("n,a=x\ty,\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"authzid_invalid_utf8",
     M("n,a=J\xfcrgen,\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc7628_s3_1_no_kvsep_after_header", M("n,,auth=Bearer abc\x01\x01"), SASL_BEARER_SYNTAX, "",
     ""},
    {"rfc7628_s3_1_no_final_kvsep",
     M("n,,\x01"
       "auth=Bearer abc\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc7628_s3_1_header_only", M("n,,"), SASL_BEARER_SYNTAX, "", ""},
    {"rfc7628_s3_1_header_kvsep_only", M("n,,\x01"), SASL_BEARER_SYNTAX, "", ""},
    {"rfc7628_s3_1_trailing_bytes",
     M("n,,\x01"
       "auth=Bearer abc\x01\x01x"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc7628_s3_1_three_kvseps",
     M("n,,\x01"
       "auth=Bearer abc\x01\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc7628_s3_1_key_without_equals",
     M("n,,\x01host\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc7628_s3_1_key_empty",
     M("n,,\x01=x\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc7628_s3_1_key_digit",
     M("n,,\x01h0st=x\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc7628_s3_1_value_nul",
     M("n,,\x01host=a\0b\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc7628_s3_1_value_high_byte",
     M("n,,\x01host=\xc3\xa9\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc7628_s3_1_value_del",
     M("n,,\x01host=\x7f\x01"
       "auth=Bearer abc\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"auth_twice",
     M("n,,\x01"
       "auth=Bearer abc\x01"
       "auth=Bearer def\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc6750_s2_1_no_space",
     M("n,,\x01"
       "auth=Bearerabc\x01\x01"),
     SASL_BEARER_NO_TOKEN, "", ""},
    {"rfc6750_s2_1_empty_token",
     M("n,,\x01"
       "auth=Bearer \x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc6750_s2_1_scheme_only",
     M("n,,\x01"
       "auth=Bearer\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc6750_s2_1_token_with_space",
     M("n,,\x01"
       "auth=Bearer abc def\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc6750_s2_1_trailing_space",
     M("n,,\x01"
       "auth=Bearer abc \x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc6750_s2_1_token_crlf",
     M("n,,\x01"
       "auth=Bearer abc\r\n\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc6750_s2_1_equals_inside",
     M("n,,\x01"
       "auth=Bearer ab=c\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc6750_s2_1_only_equals",
     M("n,,\x01"
       "auth=Bearer ==\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"rfc6750_s2_1_tab_separator",
     M("n,,\x01"
       "auth=Bearer\tabc\x01\x01"),
     SASL_BEARER_NO_TOKEN, "", ""},
};

static const struct parse_case xoauth2_cases[] = {
    {"google_example",
     M("user=someuser@example.com\x01"
       "auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBh"
       "bHRhdmlzdGEuY29tCg\x01\x01"),
     SASL_BEARER_OK, "someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg"},
    {"scheme_lower_case",
     M("user=u\x01"
       "auth=bearer t\x01\x01"),
     SASL_BEARER_OK, "u", "t"},
    {"user_with_equals_and_comma",
     M("user=a=b,c\x01"
       "auth=Bearer t\x01\x01"),
     SASL_BEARER_OK, "a=b,c", "t"},
    {"scheme_basic",
     M("user=u\x01"
       "auth=Basic dDp0\x01\x01"),
     SASL_BEARER_NO_TOKEN, "", ""},
    {"empty", M(""), SASL_BEARER_SYNTAX, "", ""},
    {"oauthbearer_dummy", M("\x01"), SASL_BEARER_SYNTAX, "", ""},
    {"oauthbearer_message",
     M("n,,\x01"
       "auth=Bearer t\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"user_empty",
     M("user=\x01"
       "auth=Bearer t\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"user_control_char",
     M("user=u\r\nv\x01"
       "auth=Bearer t\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"user_invalid_utf8",
     M("user=\xff\x01"
       "auth=Bearer t\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"user_nul",
     M("user=u\0v\x01"
       "auth=Bearer t\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"user_upper_case_key",
     M("USER=u\x01"
       "auth=Bearer t\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"auth_first", M("auth=Bearer t\x01user=u\x01\x01"), SASL_BEARER_SYNTAX, "", ""},
    {"no_auth", M("user=u\x01\x01"), SASL_BEARER_SYNTAX, "", ""},
    {"one_final_kvsep",
     M("user=u\x01"
       "auth=Bearer t\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"no_final_kvsep",
     M("user=u\x01"
       "auth=Bearer t"),
     SASL_BEARER_SYNTAX, "", ""},
    {"three_final_kvseps",
     M("user=u\x01"
       "auth=Bearer t\x01\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"extra_pair",
     M("user=u\x01"
       "auth=Bearer t\x01host=x\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"trailing_bytes",
     M("user=u\x01"
       "auth=Bearer t\x01\x01x"),
     SASL_BEARER_SYNTAX, "", ""},
    {"token_with_space",
     M("user=u\x01"
       "auth=Bearer t u\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"token_empty",
     M("user=u\x01"
       "auth=Bearer \x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
    {"value_nul",
     M("user=u\x01"
       "auth=Bearer t\0\x01\x01"),
     SASL_BEARER_SYNTAX, "", ""},
};

static void check(const char *kind, const struct parse_case *c, bool xoauth2)
{
    struct sasl_bearer *out = malloc(sizeof(*out));
    assert_non_null(out);
    memset(out, 'Z', sizeof(*out));
    enum sasl_bearer_status st = xoauth2
                                     ? sasl_xoauth2_parse((const uint8_t *)c->msg, c->len, out)
                                     : sasl_oauthbearer_parse((const uint8_t *)c->msg, c->len, out);
    if (st != c->want)
        fail_msg("%s case %s: got %d want %d", kind, c->name, st, c->want);
    assert_string_equal(out->authzid, c->authzid);
    assert_string_equal(out->token, c->token);
    assert_int_equal(out->token_len, strlen(c->token));
    free(out);
}

static void test_oauthbearer_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(oauthbearer_cases) / sizeof(oauthbearer_cases[0]); i++)
        check("oauthbearer", &oauthbearer_cases[i], false);
}

static void test_xoauth2_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(xoauth2_cases) / sizeof(xoauth2_cases[0]); i++)
        check("xoauth2", &xoauth2_cases[i], true);
}

/* Builds a message around a token of tl 't's and an identity of il 'u's. */
static size_t build(char *buf, size_t cap, bool xoauth2, size_t il, size_t tl)
{
    size_t o = 0;
    const char *pre = xoauth2 ? "user=" : "n,a=";
    const char *mid = xoauth2 ? "\x01"
                                "auth=Bearer "
                              : ",\x01"
                                "auth=Bearer ";
    assert_true(il + tl + 32 < cap);
    memcpy(buf, pre, strlen(pre));
    o += strlen(pre);
    memset(buf + o, 'u', il);
    o += il;
    memcpy(buf + o, mid, strlen(mid));
    o += strlen(mid);
    memset(buf + o, 't', tl);
    o += tl;
    memcpy(buf + o, "\x01\x01", 2);
    return o + 2;
}

struct limit_case {
    const char *name;
    bool xoauth2;
    size_t il, tl;
    enum sasl_bearer_status want;
};

static const struct limit_case limit_cases[] = {
    {"oauthbearer_at_max", false, SASL_ID_MAX, SASL_TOKEN_MAX, SASL_BEARER_OK},
    {"oauthbearer_token_over_max", false, 1, SASL_TOKEN_MAX + 1, SASL_BEARER_TOO_LONG},
    {"oauthbearer_authzid_over_max", false, SASL_ID_MAX + 1, 1, SASL_BEARER_TOO_LONG},
    {"xoauth2_at_max", true, SASL_ID_MAX, SASL_TOKEN_MAX, SASL_BEARER_OK},
    {"xoauth2_token_over_max", true, 1, SASL_TOKEN_MAX + 1, SASL_BEARER_TOO_LONG},
    {"xoauth2_user_over_max", true, SASL_ID_MAX + 1, 1, SASL_BEARER_TOO_LONG},
};

static void test_limits(void **state)
{
    (void)state;
    static char buf[SASL_TOKEN_MAX + SASL_ID_MAX + 64];
    for (size_t i = 0; i < sizeof(limit_cases) / sizeof(limit_cases[0]); i++) {
        const struct limit_case *c = &limit_cases[i];
        struct sasl_bearer *out = malloc(sizeof(*out));
        assert_non_null(out);
        size_t len = build(buf, sizeof(buf), c->xoauth2, c->il, c->tl);
        enum sasl_bearer_status st = c->xoauth2
                                         ? sasl_xoauth2_parse((const uint8_t *)buf, len, out)
                                         : sasl_oauthbearer_parse((const uint8_t *)buf, len, out);
        if (st != c->want)
            fail_msg("case %s: got %d want %d", c->name, st, c->want);
        if (st == SASL_BEARER_OK) {
            assert_int_equal(strlen(out->authzid), c->il);
            assert_int_equal(out->token_len, c->tl);
            assert_int_equal(strlen(out->token), c->tl);
        } else {
            assert_string_equal(out->authzid, "");
            assert_int_equal(out->token_len, 0);
        }
        free(out);
    }
}

struct error_case {
    const char *name;
    const char *scope;
    size_t outlen;    /* 0: 256 */
    const char *want; /* "" when too small */
};

static const struct error_case error_cases[] = {
    {"rfc7628_s3_2_2_status_only", NULL, 0, "{\"status\":\"invalid_token\"}"},
    {"rfc7628_s3_2_2_with_scope", "mail", 0, "{\"status\":\"invalid_token\",\"scope\":\"mail\"}"},
    {"scope_with_space", "a b", 0, "{\"status\":\"invalid_token\",\"scope\":\"a b\"}"},
    {"rfc8259_s7_scope_quote_escaped", "a\"b", 0,
     "{\"status\":\"invalid_token\",\"scope\":\"a\\\"b\"}"},
    {"rfc8259_s7_scope_backslash_escaped", "a\\b", 0,
     "{\"status\":\"invalid_token\",\"scope\":\"a\\\\b\"}"},
    {"rfc8259_s7_scope_control_escaped", "a\nb", 0,
     "{\"status\":\"invalid_token\",\"scope\":\"a\\u000ab\"}"},
    {"empty_scope", "", 0, "{\"status\":\"invalid_token\",\"scope\":\"\"}"},
    {"status_fits_exactly", NULL, 27, "{\"status\":\"invalid_token\"}"},
    {"status_one_short", NULL, 26, ""},
    {"scope_fits_exactly", "mail", 42, "{\"status\":\"invalid_token\",\"scope\":\"mail\"}"},
    {"scope_one_short", "mail", 41, ""},
    {"scope_escape_cut", "a\"", 38, ""},
    {"scope_tiny_buffer", "mail", 1, ""},
};

static void test_error_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        const struct error_case *c = &error_cases[i];
        char out[300];
        size_t outlen = c->outlen ? c->outlen : 256;
        memset(out, 'Z', sizeof(out));
        size_t n = sasl_oauthbearer_error(c->scope, out, outlen);
        if (n != strlen(c->want) || strcmp(out, c->want) != 0)
            fail_msg("case %s: got %zu \"%s\"", c->name, n, out);
        assert_int_equal(out[outlen], 'Z');
    }
    char one = 'Z';
    assert_int_equal(sasl_oauthbearer_error(NULL, &one, 0), 0);
    assert_int_equal(one, 'Z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oauthbearer_table),
        cmocka_unit_test(test_xoauth2_table),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_error_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
