/* Unit tests for sasl/saslprep: the RFC 4013 §3 examples, the stored/query difference for
 * unassigned code points (RFC 3454 §7), and every refusal (not UTF-8, NUL, empty result,
 * too long for the buffer). */
/* cmocka.h needs these before it, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include <errno.h>
#include <string.h>

#include "sasl/saslprep.h"

#define M(s) s, sizeof(s) - 1

struct prep_case {
    const char *name;
    const char *in;
    size_t len;
    enum sasl_prep_use use;
    const char *want; /* NULL: refused with want_errno */
    int want_errno;
};

static const struct prep_case prep_cases[] = {
    {"rfc4013_s3_1_soft_hyphen_mapped_to_nothing", M("I\xc2\xadX"), SASL_PREP_STORED, "IX", 0},
    {"rfc4013_s3_2_no_transformation", M("user"), SASL_PREP_STORED, "user", 0},
    {"rfc4013_s3_3_case_preserved", M("USER"), SASL_PREP_STORED, "USER", 0},
    {"rfc4013_s3_4_nfkc_ordinal_a", M("\xc2\xaa"), SASL_PREP_QUERY, "a", 0},
    {"rfc4013_s3_5_nfkc_roman_nine", M("\xe2\x85\xa8"), SASL_PREP_STORED, "IX", 0},
    {"rfc4013_s3_6_control_prohibited", M("\x07"), SASL_PREP_QUERY, NULL, EINVAL},
    {"rfc4013_s3_7_bidi_violation", M("\xd8\xa7" "1"), SASL_PREP_QUERY, NULL, EINVAL},
    {"rfc4013_s2_1_no_break_space_is_space", M("a\xc2\xa0" "b"), SASL_PREP_QUERY, "a b", 0},
    {"composed_and_decomposed_accent_agree", M("e\xcc\x81t\xc3\xa9"), SASL_PREP_STORED,
     "\xc3\xa9t\xc3\xa9", 0},
    {"ascii_passphrase_unchanged", M("correct horse battery staple"), SASL_PREP_STORED,
     "correct horse battery staple", 0},
    {"rfc3454_s7_unassigned_allowed_in_query", M("\xc8\xa1"), SASL_PREP_QUERY, "\xc8\xa1", 0},
    {"rfc3454_s7_unassigned_refused_when_stored", M("\xc8\xa1"), SASL_PREP_STORED, NULL, EINVAL},
    {"delete_character_prohibited", M("pass\x7f"), SASL_PREP_STORED, NULL, EINVAL},
    {"newline_prohibited", M("pass\n"), SASL_PREP_QUERY, NULL, EINVAL},
    {"private_use_prohibited", M("\xee\x80\x80"), SASL_PREP_QUERY, NULL, EINVAL},
    {"not_utf8", M("\xff\xfe"), SASL_PREP_QUERY, NULL, EINVAL},
    {"truncated_utf8", M("ab\xc3"), SASL_PREP_QUERY, NULL, EINVAL},
    {"nul_inside", M("ab\0cd"), SASL_PREP_QUERY, NULL, EINVAL},
    {"empty", M(""), SASL_PREP_QUERY, NULL, EINVAL},
    {"only_mapped_to_nothing", M("\xc2\xad"), SASL_PREP_STORED, NULL, EINVAL},
};

static void test_prep_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof prep_cases / sizeof prep_cases[0]; i++) {
        const struct prep_case *c = &prep_cases[i];
        char out[64];
        size_t outlen = 99;
        errno = 0;
        int r = sasl_saslprep(c->in, c->len, c->use, out, sizeof out, &outlen);
        if (c->want == NULL) {
            if (r != -1 || errno != c->want_errno)
                fail_msg("%s: got %d errno %d, want refusal with %d", c->name, r, errno,
                         c->want_errno);
            if (outlen != 0 || out[0] != '\0')
                fail_msg("%s: output left behind after a refusal", c->name);
            continue;
        }
        if (r != 0)
            fail_msg("%s: refused (errno %d)", c->name, errno);
        if (outlen != strlen(c->want) || strcmp(out, c->want) != 0)
            fail_msg("%s: got \"%s\" (%zu), want \"%s\"", c->name, out, outlen, c->want);
    }
}

/* The input must fit the buffer, and so must its NFKC expansion: U+FDFA (one character,
 * three octets) becomes 18 Arabic letters, 33 octets. */
static void test_prep_erange(void **state)
{
    (void)state;
    char out[8];
    size_t outlen;
    assert_int_equal(sasl_saslprep(M("12345678"), SASL_PREP_QUERY, out, sizeof out, &outlen), -1);
    assert_int_equal(errno, ERANGE);
    assert_int_equal(sasl_saslprep(M("1234567"), SASL_PREP_QUERY, out, sizeof out, &outlen), 0);
    assert_string_equal(out, "1234567");
    assert_int_equal(sasl_saslprep(M("\xef\xb7\xba"), SASL_PREP_QUERY, out, sizeof out, &outlen),
                     -1);
    assert_int_equal(errno, ERANGE);
    assert_int_equal(out[0], '\0');
    char big[64];
    assert_int_equal(sasl_saslprep(M("\xef\xb7\xba"), SASL_PREP_QUERY, big, sizeof big, &outlen),
                     0);
    assert_int_equal(outlen, 33);
    assert_int_equal(sasl_saslprep(M("x"), SASL_PREP_QUERY, out, 0, &outlen), -1);
    assert_int_equal(errno, ERANGE);
}

/* Printable ASCII (answered without libidn) comes out as it went in, and every ASCII control
 * is refused (RFC 3454 C.2.1). */
static void test_prep_ascii(void **state)
{
    (void)state;
    char in[96], out[128];
    size_t n = 0, outlen;
    for (int c = 0x20; c < 0x7f; c++)
        in[n++] = (char)c;
    assert_int_equal(sasl_saslprep(in, n, SASL_PREP_STORED, out, sizeof out, &outlen), 0);
    assert_int_equal(outlen, n);
    assert_memory_equal(out, in, n);
    for (int c = 0x01; c < 0x80; c = c == 0x1f ? 0x7f : c + 1) {
        char bad[3] = {'a', (char)c, 'b'};
        errno = 0;
        if (sasl_saslprep(bad, sizeof bad, SASL_PREP_QUERY, out, sizeof out, &outlen) != -1 ||
            errno != EINVAL || out[0] != '\0')
            fail_msg("control 0x%02x was not refused", c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prep_table),
        cmocka_unit_test(test_prep_erange),
        cmocka_unit_test(test_prep_ascii),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
