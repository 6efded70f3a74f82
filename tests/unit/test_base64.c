/* Unit tests for util/base64: the RFC 4648 §10 vectors in both alphabets, the strict decoding
 * rules (§3.2 padding, §3.3 no foreign characters, §3.5 zero trailing bits) and the output
 * capacity contract. */
/* cmocka.h needs these before it, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include <string.h>

#include "util/base64.h"

struct vector {
    const char *name;
    const char *bytes;
    size_t n;
    const char *std; /* §4 text */
    const char *url; /* §5 text, unpadded */
};

static const struct vector vectors[] = {
    {"rfc4648_s10_empty", "", 0, "", ""},
    {"rfc4648_s10_f", "f", 1, "Zg==", "Zg"},
    {"rfc4648_s10_fo", "fo", 2, "Zm8=", "Zm8"},
    {"rfc4648_s10_foo", "foo", 3, "Zm9v", "Zm9v"},
    {"rfc4648_s10_foob", "foob", 4, "Zm9vYg==", "Zm9vYg"},
    {"rfc4648_s10_fooba", "fooba", 5, "Zm9vYmE=", "Zm9vYmE"},
    {"rfc4648_s10_foobar", "foobar", 6, "Zm9vYmFy", "Zm9vYmFy"},
    {"rfc4648_s5_alphabet_62_63", "\xfb\xff\xbf", 3, "+/+/", "-_-_"},
    {"all_zero", "\0\0\0\0", 4, "AAAAAA==", "AAAAAA"},
    {"all_ones", "\xff\xff", 2, "//8=", "__8"},
    {"rfc7677_s3_salt", "\x5b\x6d\x99\x68\x9d\x12\x35\x8e\xec\xa0\x4b\x14\x12\x36\xfa\x81", 16,
     "W22ZaJ0SNY7soEsUEjb6gQ==", "W22ZaJ0SNY7soEsUEjb6gQ"},
};

static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const struct vector *v = &vectors[i];
        char text[64];
        uint8_t bytes[64];
        size_t n = 999;

        assert_int_equal(base64_encode((const uint8_t *)v->bytes, v->n, text, sizeof(text)),
                         strlen(v->std));
        if (strcmp(text, v->std) != 0)
            fail_msg("case %s: std encode %s", v->name, text);
        assert_int_equal(BASE64_ENCODED_LEN(v->n), strlen(v->std));
        assert_int_equal(base64url_encode((const uint8_t *)v->bytes, v->n, text, sizeof(text)),
                         strlen(v->url));
        if (strcmp(text, v->url) != 0)
            fail_msg("case %s: url encode %s", v->name, text);

        if (!base64_decode(v->std, strlen(v->std), bytes, sizeof(bytes), &n))
            fail_msg("case %s: std decode refused", v->name);
        assert_int_equal(n, v->n);
        assert_memory_equal(bytes, v->bytes, v->n);
        n = 999;
        if (!base64url_decode(v->url, strlen(v->url), bytes, sizeof(bytes), &n))
            fail_msg("case %s: url decode refused", v->name);
        assert_int_equal(n, v->n);
        assert_memory_equal(bytes, v->bytes, v->n);
    }
}

struct bad_case {
    const char *name;
    const char *in;
    size_t n; /* 0: strlen(in) */
};

static const struct bad_case std_bad[] = {
    {"rfc4648_s3_2_missing_padding", "Zg", 0},
    {"rfc4648_s3_2_missing_one_pad", "Zg=", 0},
    {"rfc4648_s3_2_three_pads", "Z===", 0},
    {"rfc4648_s3_2_four_pads", "====", 0},
    {"rfc4648_s3_2_pad_in_middle", "Zg==Zm8=", 0},
    {"rfc4648_s3_2_pad_inside_quantum", "Z=g=", 0},
    {"rfc4648_s3_2_extra_pad", "Zm9v====", 0},
    {"rfc4648_s3_3_space", "Zm9v Zm9v", 0},
    {"rfc4648_s3_3_crlf", "Zm9v\r\nZm9v", 0},
    {"rfc4648_s3_3_trailing_newline", "Zm9v\n", 0},
    {"rfc4648_s3_3_url_alphabet", "-_-_", 0},
    {"rfc4648_s3_3_nul", "Zm\0v", 4},
    {"rfc4648_s3_3_high_byte", "Zm9\xc3", 0},
    {"rfc4648_s3_3_star", "Zm9*", 0},
    {"rfc4648_s3_5_nonzero_bits_one_pad", "Zm9=", 0},
    {"rfc4648_s3_5_nonzero_bits_two_pads", "Zh==", 0},
    {"length_five", "Zm9vY", 0},
    {"length_one", "Z", 0},
};

static const struct bad_case url_bad[] = {
    {"rfc4648_s5_padding_refused", "Zg==", 0},
    {"rfc4648_s5_one_pad_refused", "Zm8=", 0},
    {"rfc4648_s5_std_alphabet", "+/+/", 0},
    {"rfc4648_s3_3_space", "Zm9 v", 0},
    {"rfc4648_s3_3_nul", "Zm\0v", 4},
    {"rfc4648_s3_3_dot", "Zm9v.Zm9v", 0},
    {"rfc4648_s3_5_nonzero_bits_two_chars", "Zh", 0},
    {"rfc4648_s3_5_nonzero_bits_three_chars", "Zm9", 0},
    {"impossible_length_one", "Z", 0},
    {"impossible_length_five", "Zm9vY", 0},
};

static void test_bad_std(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(std_bad) / sizeof(std_bad[0]); i++) {
        uint8_t out[64];
        size_t n = 777;
        size_t len = std_bad[i].n ? std_bad[i].n : strlen(std_bad[i].in);
        if (base64_decode(std_bad[i].in, len, out, sizeof(out), &n))
            fail_msg("case %s accepted", std_bad[i].name);
        assert_int_equal(n, 777);
    }
}

static void test_bad_url(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(url_bad) / sizeof(url_bad[0]); i++) {
        uint8_t out[64];
        size_t n = 777;
        size_t len = url_bad[i].n ? url_bad[i].n : strlen(url_bad[i].in);
        if (base64url_decode(url_bad[i].in, len, out, sizeof(out), &n))
            fail_msg("case %s accepted", url_bad[i].name);
        assert_int_equal(n, 777);
    }
}

struct cap_case {
    const char *name;
    size_t n;      /* input bytes "foobar"[0..n) */
    size_t outlen; /* encode: including the NUL */
    size_t want;   /* 0: too small */
};

static const struct cap_case std_caps[] = {
    {"fits_exactly", 4, 9, 8},     {"one_short", 4, 8, 0},   {"no_room_for_nul", 3, 4, 0},
    {"empty_needs_nul", 0, 1, 0},  {"zero_outlen", 3, 0, 0}, {"padded_fits", 1, 5, 4},
    {"padded_one_short", 1, 4, 0},
};

static const struct cap_case url_caps[] = {
    {"unpadded_fits", 1, 3, 2},       {"unpadded_one_short", 1, 2, 0}, {"two_bytes_fits", 2, 4, 3},
    {"two_bytes_one_short", 2, 3, 0}, {"zero_outlen", 2, 0, 0},
};

static void test_encode_capacity(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(std_caps) / sizeof(std_caps[0]); i++) {
        const struct cap_case *c = &std_caps[i];
        char out[16];
        memset(out, 'Z', sizeof(out));
        size_t got = base64_encode((const uint8_t *)"foobar", c->n, out, c->outlen);
        if (got != c->want)
            fail_msg("std case %s: got %zu want %zu", c->name, got, c->want);
        if (c->outlen > 0 && c->want == 0)
            assert_int_equal(out[0], '\0');
        if (c->outlen == 0)
            assert_int_equal(out[0], 'Z');
        assert_int_equal(out[c->outlen], 'Z');
    }
    for (size_t i = 0; i < sizeof(url_caps) / sizeof(url_caps[0]); i++) {
        const struct cap_case *c = &url_caps[i];
        char out[16];
        memset(out, 'Z', sizeof(out));
        size_t got = base64url_encode((const uint8_t *)"foobar", c->n, out, c->outlen);
        if (got != c->want)
            fail_msg("url case %s: got %zu want %zu", c->name, got, c->want);
        if (c->outlen > 0 && c->want == 0)
            assert_int_equal(out[0], '\0');
        assert_int_equal(out[c->outlen], 'Z');
    }
}

struct dec_cap_case {
    const char *name;
    bool url;
    const char *in;
    size_t outlen;
    bool ok;
};

static const struct dec_cap_case dec_caps[] = {
    {"std_fits_exactly", false, "Zm9vYg==", 4, true},
    {"std_one_short", false, "Zm9vYg==", 3, false},
    {"std_empty_zero_room", false, "", 0, true},
    {"url_fits_exactly", true, "Zm9vYmE", 5, true},
    {"url_one_short", true, "Zm9vYmE", 4, false},
    {"url_empty_zero_room", true, "", 0, true},
};

static void test_decode_capacity(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(dec_caps) / sizeof(dec_caps[0]); i++) {
        const struct dec_cap_case *c = &dec_caps[i];
        uint8_t out[16];
        size_t n = 777;
        memset(out, 0xAA, sizeof(out));
        bool ok = c->url ? base64url_decode(c->in, strlen(c->in), out, c->outlen, &n)
                         : base64_decode(c->in, strlen(c->in), out, c->outlen, &n);
        if (ok != c->ok)
            fail_msg("case %s: got %d", c->name, ok);
        /* A result that does not fit is refused before anything is written. */
        assert_int_equal(out[c->outlen], 0xAA);
        if (!ok)
            assert_int_equal(out[0], 0xAA);
    }
}

static void test_round_trip_all_lengths(void **state)
{
    (void)state;
    uint8_t bytes[64], back[64];
    char text[128];
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(bytes); n++) {
        size_t len = base64_encode(bytes, n, text, sizeof(text)), m = 999;
        assert_int_equal(len, BASE64_ENCODED_LEN(n));
        assert_true(base64_decode(text, len, back, sizeof(back), &m));
        assert_int_equal(m, n);
        assert_memory_equal(back, bytes, n);
        len = base64url_encode(bytes, n, text, sizeof(text));
        assert_true(base64url_decode(text, len, back, sizeof(back), &m));
        assert_int_equal(m, n);
        assert_memory_equal(back, bytes, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),         cmocka_unit_test(test_bad_std),
        cmocka_unit_test(test_bad_url),         cmocka_unit_test(test_encode_capacity),
        cmocka_unit_test(test_decode_capacity), cmocka_unit_test(test_round_trip_all_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
