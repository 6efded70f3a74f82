/* Unit tests for util/xtext: RFC 3461 §4 decoding and encoding, and the B4 rule that a
 * decoded control byte is refused. */
/* cmocka.h needs these before it, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include <string.h>

#include "util/xtext.h"

struct decode_case {
    const char *name;
    const char *in;
    size_t inlen; /* 0: strlen(in) */
    size_t outcap;
    bool ok;
    const char *want;
};

static const struct decode_case decode_cases[] = {
    {"empty", "", 0, 8, true, ""},
    {"plain", "abc", 0, 8, true, "abc"},
    {"rfc3461_s4_all_xchars", "!\"#$%&'()*,-./09:;<>?@AZ[\\]^_`az{|}~", 0, 64, true,
     "!\"#$%&'()*,-./09:;<>?@AZ[\\]^_`az{|}~"},
    {"hex_plus", "a+2Bb", 0, 8, true, "a+b"},
    {"hex_equals", "+3D", 0, 8, true, "="},
    {"hex_space", "a+20b", 0, 8, true, "a b"},
    {"hex_high_byte", "+C3+A9", 0, 8, true, "\xc3\xa9"},
    {"hex_ordinary_char", "+41", 0, 8, true, "A"},
    {"auth_null", "<>", 0, 8, true, "<>"},
    {"rfc3461_s4_lowercase_hex", "+2b", 0, 8, false, ""},
    {"plus_one_digit", "+2", 0, 8, false, ""},
    {"plus_alone", "+", 0, 8, false, ""},
    {"plus_not_hex", "+GG", 0, 8, false, ""},
    {"raw_equals", "a=b", 0, 8, false, ""},
    {"raw_space", "a b", 0, 8, false, ""},
    {"raw_del", "a\x7f", 0, 8, false, ""},
    {"raw_high_byte", "a\xc3\xa9", 0, 8, false, ""},
    {"raw_nul", "a\0b", 3, 8, false, ""},
    {"B4_crlf", "x+0D+0Ay", 0, 16, false, ""},
    {"B4_cr", "+0D", 0, 8, false, ""},
    {"B4_lf", "+0A", 0, 8, false, ""},
    {"B4_nul", "a+00b", 0, 8, false, ""},
    {"B4_tab", "+09", 0, 8, false, ""},
    {"B4_del", "+7F", 0, 8, false, ""},
    {"B4_esc", "+1B", 0, 8, false, ""},
    {"fits_exactly", "abc", 0, 4, true, "abc"},
    {"overflow_by_one", "abcd", 0, 4, false, ""},
    {"overflow_hex", "ab+41", 0, 3, false, ""},
    {"zero_cap", "", 0, 0, false, ""},
};

static void test_decode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
        const struct decode_case *c = &decode_cases[i];
        char out[128];
        size_t outlen = 999;
        size_t inlen = c->inlen ? c->inlen : strlen(c->in);
        memset(out, 'Z', sizeof(out));
        bool ok = xtext_decode(c->in, inlen, out, c->outcap, &outlen);
        if (ok != c->ok)
            fail_msg("case %s: got %d want %d", c->name, ok, c->ok);
        if (c->outcap > 0) {
            assert_string_equal(out, c->want);
            assert_int_equal(outlen, strlen(c->want));
        } else {
            assert_int_equal(out[0], 'Z'); /* nothing written with no room */
        }
        assert_int_equal(out[c->outcap], 'Z'); /* nothing written past outcap */
    }
}

static void test_decode_null_outlen(void **state)
{
    (void)state;
    char out[8];
    assert_true(xtext_decode("ab", 2, out, sizeof(out), NULL));
    assert_string_equal(out, "ab");
    assert_false(xtext_decode("+0A", 3, out, sizeof(out), NULL));
    assert_string_equal(out, "");
}

/* Found by fuzz_xtext: with no room at all, *outlen was left as it was. */
static void test_zero_cap_clears_outlen(void **state)
{
    (void)state;
    char out[1] = {'Z'};
    size_t outlen = 999;
    assert_false(xtext_decode("", 0, out, 0, &outlen));
    assert_int_equal(outlen, 0);
    outlen = 999;
    assert_false(xtext_encode("", 0, out, 0, &outlen));
    assert_int_equal(outlen, 0);
    assert_int_equal(out[0], 'Z');
}

struct encode_case {
    const char *name;
    const char *in;
    size_t inlen;
    size_t outcap;
    bool ok;
    const char *want;
};

static const struct encode_case encode_cases[] = {
    {"empty", "", 0, 1, true, ""},
    {"plain", "user@example.org", 16, 32, true, "user@example.org"},
    {"rfc3461_s4_plus", "a+b", 3, 16, true, "a+2Bb"},
    {"rfc3461_s4_equals", "a=b", 3, 16, true, "a+3Db"},
    {"space", "a b", 3, 16, true, "a+20b"},
    {"controls", "\r\n\0", 3, 16, true, "+0D+0A+00"},
    {"high_bytes", "\xc3\xa9\xff", 3, 16, true, "+C3+A9+FF"},
    {"del", "\x7f", 1, 16, true, "+7F"},
    {"fits_exactly", "ab", 2, 3, true, "ab"},
    {"no_room_for_nul", "ab", 2, 2, false, ""},
    {"hex_fits_exactly", "=", 1, 4, true, "+3D"},
    {"hex_no_room", "=", 1, 3, false, ""},
    {"zero_cap", "", 0, 0, false, NULL},
};

static void test_encode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(encode_cases) / sizeof(encode_cases[0]); i++) {
        const struct encode_case *c = &encode_cases[i];
        char out[64];
        size_t outlen = 999;
        memset(out, 'Z', sizeof(out));
        bool ok = xtext_encode(c->in, c->inlen, out, c->outcap, &outlen);
        if (ok != c->ok)
            fail_msg("case %s: got %d want %d", c->name, ok, c->ok);
        if (c->want != NULL) {
            assert_string_equal(out, c->want);
            assert_int_equal(outlen, strlen(c->want));
        } else {
            assert_int_equal(out[0], 'Z');
        }
    }
}

/* Every byte that is not a control byte survives encode then decode. */
static void test_round_trip_all_bytes(void **state)
{
    (void)state;
    char in[256], enc[1024], dec[256];
    size_t n = 0, enclen, declen;
    for (int b = 0x20; b < 0x100; b++)
        if (b != 0x7f)
            in[n++] = (char)b;
    assert_true(xtext_encode(in, n, enc, sizeof(enc), &enclen));
    for (size_t i = 0; i < enclen; i++) {
        unsigned char c = (unsigned char)enc[i];
        assert_true(c >= '!' && c <= '~' && c != '=');
    }
    assert_true(xtext_decode(enc, enclen, dec, sizeof(dec), &declen));
    assert_int_equal(declen, n);
    assert_memory_equal(dec, in, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_table),           cmocka_unit_test(test_decode_null_outlen),
        cmocka_unit_test(test_zero_cap_clears_outlen), cmocka_unit_test(test_encode_table),
        cmocka_unit_test(test_round_trip_all_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
