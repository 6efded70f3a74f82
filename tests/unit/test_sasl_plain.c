/* Unit tests for sasl/plain: the RFC 4616 §2 message split (HOSTILE-INPUTS G2), the LOGIN
 * answers (G10), and the identity rule and saslname decoder shared with SCRAM and the bearer
 * mechanisms. */
/* cmocka.h needs these before it, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include <string.h>

#include "sasl/plain.h"

/* A literal and its length, NULs included. */
#define M(s) s, sizeof(s) - 1

struct plain_case {
    const char *name;
    const char *msg;
    size_t len;
    enum sasl_plain_status want;
    const char *authzid, *authcid, *password;
};

static char long_id[SASL_ID_MAX + 2];       /* SASL_ID_MAX + 1 'a's */
static char long_pw[SASL_PASSWORD_MAX + 2]; /* SASL_PASSWORD_MAX + 1 'p's */
static uint8_t msg_buf[2048];

static const struct plain_case plain_cases[] = {
    {"rfc4616_s4_no_authzid", M("\0tim\0tanstaaftanstaaf"), SASL_PLAIN_OK, "", "tim",
     "tanstaaftanstaaf"},
    {"rfc4616_s4_with_authzid", M("Ursel\0Kurt\0xipj3plmq"), SASL_PLAIN_OK, "Ursel", "Kurt",
     "xipj3plmq"},
    {"utf8_identity", M("\0J\xc3\xbcrgen\0pw"), SASL_PLAIN_OK, "", "J\xc3\xbcrgen", "pw"},
    {"identity_with_space_and_at", M("\0a b@x.org\0pw"), SASL_PLAIN_OK, "", "a b@x.org", "pw"},
    {"password_any_octets", M("\0u\0\x01\xff\r\n "), SASL_PLAIN_OK, "", "u", "\x01\xff\r\n "},
    {"G2_one_field", M("userpass"), SASL_PLAIN_SPLIT, "", "", ""},
    {"G2_two_fields", M("user\0pass"), SASL_PLAIN_SPLIT, "", "", ""},
    {"G2_four_fields", M("\0u\0p\0x"), SASL_PLAIN_SPLIT, "", "", ""},
    {"G2_five_fields", M("a\0b\0c\0d\0e"), SASL_PLAIN_SPLIT, "", "", ""},
    {"G2_trailing_nul", M("\0u\0p\0"), SASL_PLAIN_SPLIT, "", "", ""},
    {"G2_empty_message", M(""), SASL_PLAIN_SPLIT, "", "", ""},
    {"G2_only_nuls", M("\0\0"), SASL_PLAIN_EMPTY, "", "", ""},
    {"G2_empty_user", M("\0\0pass"), SASL_PLAIN_EMPTY, "", "", ""},
    {"G2_empty_password", M("\0user\0"), SASL_PLAIN_EMPTY, "", "", ""},
    {"G2_authzid_only", M("admin\0\0"), SASL_PLAIN_EMPTY, "", "", ""},
    {"crlf_in_user", M("\0us\r\ner\0pw"), SASL_PLAIN_BAD_UTF8, "", "", ""},
    {"tab_in_authzid", M("a\tb\0u\0pw"), SASL_PLAIN_BAD_UTF8, "", "", ""},
    {"del_in_user", M("\0u\x7f\0pw"), SASL_PLAIN_BAD_UTF8, "", "", ""},
    {"c1_control_in_user", M("\0u\xc2\x85\0pw"), SASL_PLAIN_BAD_UTF8, "", "", ""},
    {"latin1_user", M("\0J\xfcrgen\0pw"), SASL_PLAIN_BAD_UTF8, "", "", ""},
    {"overlong_slash", M("\0\xc0\xaf\0pw"), SASL_PLAIN_BAD_UTF8, "", "", ""},
    {"overlong_three_octets", M("\0\xe0\x80\xaf\0pw"), SASL_PLAIN_BAD_UTF8, "", "", ""},
    {"surrogate", M("\0\xed\xa0\x80\0pw"), SASL_PLAIN_BAD_UTF8, "", "", ""},
    {"above_u10ffff", M("\0\xf4\x90\x80\x80\0pw"), SASL_PLAIN_BAD_UTF8, "", "", ""},
    {"truncated_sequence", M("\0ab\xe2\x82\0pw"), SASL_PLAIN_BAD_UTF8, "", "", ""},
    {"lone_continuation", M("\0\x80\0pw"), SASL_PLAIN_BAD_UTF8, "", "", ""},
};

static void check_plain(const char *name, const uint8_t *msg, size_t len,
                        enum sasl_plain_status want, const char *authzid, const char *authcid,
                        const char *password)
{
    struct sasl_plain out;
    memset(&out, 'Z', sizeof(out));
    enum sasl_plain_status st = sasl_plain_parse(msg, len, &out);
    if (st != want)
        fail_msg("case %s: got %d want %d", name, st, want);
    assert_string_equal(out.authzid, authzid);
    assert_string_equal(out.authcid, authcid);
    assert_int_equal(out.password_len, strlen(password));
    assert_memory_equal(out.password, password, strlen(password) + 1);
}

static void test_plain_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(plain_cases) / sizeof(plain_cases[0]); i++) {
        const struct plain_case *c = &plain_cases[i];
        size_t len = c->len;
        check_plain(c->name, (const uint8_t *)c->msg, len, c->want, c->authzid, c->authcid,
                    c->password);
    }
}

/* Builds authzid NUL authcid NUL password into msg_buf. */
static size_t build(const char *zid, const char *cid, const char *pw)
{
    size_t a = strlen(zid), b = strlen(cid), c = strlen(pw);
    assert_true(a + b + c + 2 <= sizeof(msg_buf));
    memcpy(msg_buf, zid, a);
    msg_buf[a] = 0;
    memcpy(msg_buf + a + 1, cid, b);
    msg_buf[a + 1 + b] = 0;
    memcpy(msg_buf + a + b + 2, pw, c);
    return a + b + c + 2;
}

static void test_plain_limits(void **state)
{
    (void)state;
    char id_max[SASL_ID_MAX + 1], pw_max[SASL_PASSWORD_MAX + 1];
    memcpy(id_max, long_id, SASL_ID_MAX);
    id_max[SASL_ID_MAX] = '\0';
    memcpy(pw_max, long_pw, SASL_PASSWORD_MAX);
    pw_max[SASL_PASSWORD_MAX] = '\0';

    check_plain("id_at_max", msg_buf, build(id_max, id_max, "pw"), SASL_PLAIN_OK, id_max, id_max,
                "pw");
    check_plain("password_at_max", msg_buf, build("", "u", pw_max), SASL_PLAIN_OK, "", "u", pw_max);
    check_plain("authzid_over_max", msg_buf, build(long_id, "u", "pw"), SASL_PLAIN_TOO_LONG, "", "",
                "");
    check_plain("authcid_over_max", msg_buf, build("", long_id, "pw"), SASL_PLAIN_TOO_LONG, "", "",
                "");
    check_plain("password_over_max", msg_buf, build("", "u", long_pw), SASL_PLAIN_TOO_LONG, "", "",
                "");
}

struct login_case {
    const char *name;
    const char *in;
    size_t len;
    size_t outlen;
    bool user; /* sasl_login_user instead of sasl_login_field */
    enum sasl_plain_status want;
    const char *out;
};

static const struct login_case login_cases[] = {
    {"user", M("tim"), 64, true, SASL_PLAIN_OK, "tim"},
    {"password", M("tanstaaf"), 64, false, SASL_PLAIN_OK, "tanstaaf"},
    {"password_control_octets", M("p\tw\r\n"), 64, false, SASL_PLAIN_OK, "p\tw\r\n"},
    {"fits_exactly", M("abc"), 4, false, SASL_PLAIN_OK, "abc"},
    {"one_short", M("abcd"), 4, false, SASL_PLAIN_TOO_LONG, ""},
    {"zero_outlen", M("abcd"), 0, false, SASL_PLAIN_TOO_LONG, NULL},
    {"G2_empty_user", M(""), 64, true, SASL_PLAIN_EMPTY, ""},
    {"G2_empty_password", M(""), 64, false, SASL_PLAIN_EMPTY, ""},
    {"G10_user_and_password_nul_separated", M("tim\0tanstaaf"), 64, true, SASL_PLAIN_SPLIT, ""},
    {"G10_plain_message_as_user", M("\0tim\0tanstaaf"), 64, true, SASL_PLAIN_SPLIT, ""},
    {"G10_plain_message_as_password", M("\0tim\0tanstaaf"), 64, false, SASL_PLAIN_SPLIT, ""},
    {"G10_trailing_nul", M("tim\0"), 64, true, SASL_PLAIN_SPLIT, ""},
    {"G10_user_and_password_crlf", M("tim\r\ntanstaaf"), 64, true, SASL_PLAIN_BAD_UTF8, ""},
    {"G10_user_and_password_tab", M("tim\ttanstaaf"), 64, true, SASL_PLAIN_BAD_UTF8, ""},
    {"user_latin1", M("J\xfcrgen"), 64, true, SASL_PLAIN_BAD_UTF8, ""},
    {"user_utf8", M("J\xc3\xbcrgen"), 64, true, SASL_PLAIN_OK, "J\xc3\xbcrgen"},
    {"user_space_allowed", M("tim smith"), 64, true, SASL_PLAIN_OK, "tim smith"},
};

static void check_login(const struct login_case *c)
{
    char out[1025];
    size_t outn = 999;
    size_t len = c->len;
    memset(out, 'Z', sizeof(out));
    enum sasl_plain_status st =
        c->user ? sasl_login_user((const uint8_t *)c->in, len, out, c->outlen, &outn)
                : sasl_login_field((const uint8_t *)c->in, len, out, c->outlen, &outn);
    if (st != c->want)
        fail_msg("case %s: got %d want %d", c->name, st, c->want);
    if (c->out != NULL) {
        assert_string_equal(out, c->out);
        assert_int_equal(outn, strlen(c->out));
    } else {
        assert_int_equal(out[0], 'Z');
        assert_int_equal(outn, 0);
    }
    assert_int_equal(out[c->outlen], 'Z');
}

static void test_login_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(login_cases) / sizeof(login_cases[0]); i++)
        check_login(&login_cases[i]);
}

static void test_login_limits(void **state)
{
    (void)state;
    char id_max[SASL_ID_MAX + 1], pw_max[SASL_PASSWORD_MAX + 1];
    memcpy(id_max, long_id, SASL_ID_MAX);
    id_max[SASL_ID_MAX] = '\0';
    memcpy(pw_max, long_pw, SASL_PASSWORD_MAX);
    pw_max[SASL_PASSWORD_MAX] = '\0';
    const struct login_case cases[] = {
        {"user_at_max", id_max, SASL_ID_MAX, 1024, true, SASL_PLAIN_OK, id_max},
        {"user_over_max_big_buffer", long_id, SASL_ID_MAX + 1, 1024, true, SASL_PLAIN_TOO_LONG, ""},
        {"password_at_max", pw_max, SASL_PASSWORD_MAX, 1024, false, SASL_PLAIN_OK, pw_max},
        {"password_over_max_big_buffer", long_pw, SASL_PASSWORD_MAX + 1, 1024, false,
         SASL_PLAIN_TOO_LONG, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_login(&cases[i]);
}

struct saslname_case {
    const char *name;
    const char *in;
    enum sasl_plain_status want;
    const char *out;
};

static char long_name[SASL_ID_MAX + 2];       /* SASL_ID_MAX + 1 'n's */
static char max_escaped[3 * SASL_ID_MAX + 1]; /* SASL_ID_MAX "=2C" */

static const struct saslname_case saslname_cases[] = {
    {"plain", "user", SASL_PLAIN_OK, "user"},
    {"rfc5802_s5_1_comma", "a=2Cb", SASL_PLAIN_OK, "a,b"},
    {"rfc5802_s5_1_equals", "a=3Db", SASL_PLAIN_OK, "a=b"},
    {"rfc5802_s5_1_both_at_ends", "=3Dx=2C", SASL_PLAIN_OK, "=x,"},
    {"utf8", "J\xc3\xbcrgen", SASL_PLAIN_OK, "J\xc3\xbcrgen"},
    {"empty", "", SASL_PLAIN_EMPTY, ""},
    {"rfc5802_s5_1_raw_comma", "a,b", SASL_PLAIN_BAD_UTF8, ""},
    {"rfc5802_s5_1_lower_case_escape", "a=2c", SASL_PLAIN_BAD_UTF8, ""},
    {"rfc5802_s5_1_other_escape", "a=41", SASL_PLAIN_BAD_UTF8, ""},
    {"rfc5802_s5_1_truncated_escape", "a=2", SASL_PLAIN_BAD_UTF8, ""},
    {"rfc5802_s5_1_bare_equals", "a=", SASL_PLAIN_BAD_UTF8, ""},
    {"escape_decodes_to_nothing_bad", "=2C=3D", SASL_PLAIN_OK, ",="},
    {"control_char", "a\rb", SASL_PLAIN_BAD_UTF8, ""},
    {"latin1", "J\xfcrgen", SASL_PLAIN_BAD_UTF8, ""},
    {"over_max", long_name, SASL_PLAIN_TOO_LONG, ""},
    {"escaped_at_max", max_escaped, SASL_PLAIN_OK, NULL},
};

static void test_saslname_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(saslname_cases) / sizeof(saslname_cases[0]); i++) {
        const struct saslname_case *c = &saslname_cases[i];
        char out[SASL_ID_MAX + 1];
        memset(out, 'Z', sizeof(out));
        enum sasl_plain_status st = sasl_saslname_decode(c->in, strlen(c->in), out);
        if (st != c->want)
            fail_msg("case %s: got %d want %d", c->name, st, c->want);
        if (c->out != NULL)
            assert_string_equal(out, c->out);
        else
            assert_int_equal(strlen(out), SASL_ID_MAX);
    }
}

int main(void)
{
    memset(long_id, 'a', SASL_ID_MAX + 1);
    memset(long_pw, 'p', SASL_PASSWORD_MAX + 1);
    memset(long_name, 'n', SASL_ID_MAX + 1);
    for (size_t i = 0; i < SASL_ID_MAX; i++)
        memcpy(max_escaped + 3 * i, "=2C", 3);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_table),    cmocka_unit_test(test_plain_limits),
        cmocka_unit_test(test_login_table),    cmocka_unit_test(test_login_limits),
        cmocka_unit_test(test_saslname_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
