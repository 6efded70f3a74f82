/* Unit tests for util/json: the RFC 8259 grammar (valid and invalid documents, UTF-8, escapes,
 * surrogates, depth, duplicate names) and each getter's statuses. */
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

#include "util/json.h"

struct valid_case {
    const char *name;
    const char *text;
    size_t len; /* 0: strlen(text) */
    bool valid;
};

static const struct valid_case valid_cases[] = {
    {"empty_object", "{}", 0, true},
    {"ws_around", " \t\r\n{ } \n", 0, true},
    {"one_member", "{\"a\":1}", 0, true},
    {"all_types",
     "{\"s\":\"x\",\"i\":-12,\"f\":1.5e+3,\"t\":true,\"n\":null,\"b\":false,\"a\":[1,[],{}],"
     "\"o\":{\"k\":\"v\"}}",
     0, true},
    {"ws_everywhere", "{ \"a\" : [ 1 , 2 ] , \"b\" : { } }", 0, true},
    {"rfc8259_s6_numbers", "{\"a\":[0,-0,1,10,0.5,-0.0e0,1E9,1e-9,2.5E+10]}", 0, true},
    {"rfc8259_s7_escapes", "{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u0000\"}", 0, true},
    {"rfc8259_s7_surrogate_pair", "{\"a\":\"\\ud834\\udd1e\"}", 0, true},
    {"utf8_2_3_4_bytes", "{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", 0, true},
    {"utf8_max", "{\"a\":\"\xf4\x8f\xbf\xbf\"}", 0, true},
    {"utf8_in_name", "{\"\xc3\xa9\":1}", 0, true},
    {"del_raw_allowed", "{\"a\":\"\x7f\"}", 0, true},
    {"same_name_nested_ok", "{\"a\":{\"a\":1,\"a\":2},\"b\":[{\"a\":1},{\"a\":1}]}", 0, true},
    {"depth_16", "{\"a\":[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]}", 0, true},
    /* Not an object, or not exactly one. */
    {"empty", "", 0, false},
    {"ws_only", "  ", 0, false},
    {"array_top", "[1]", 0, false},
    {"string_top", "\"a\"", 0, false},
    {"number_top", "1", 0, false},
    {"null_top", "null", 0, false},
    {"two_objects", "{}{}", 0, false},
    {"trailing_garbage", "{} x", 0, false},
    {"rfc8259_s8_1_bom", "\xef\xbb\xbf{}", 0, false},
    {"unclosed", "{", 0, false},
    {"unclosed_member", "{\"a\":1", 0, false},
    {"unclosed_array", "{\"a\":[1}", 0, false},
    {"unclosed_string", "{\"a\":\"x}", 0, false},
    /* Object and array syntax. */
    {"trailing_comma_object", "{\"a\":1,}", 0, false},
    {"trailing_comma_array", "{\"a\":[1,]}", 0, false},
    {"leading_comma", "{,\"a\":1}", 0, false},
    {"missing_colon", "{\"a\" 1}", 0, false},
    {"missing_value", "{\"a\":}", 0, false},
    {"missing_comma", "{\"a\":1 \"b\":2}", 0, false},
    {"unquoted_name", "{a:1}", 0, false},
    {"single_quotes", "{'a':1}", 0, false},
    {"number_name", "{1:1}", 0, false},
    {"comment", "{/*x*/}", 0, false},
    {"mismatched_close", "{\"a\":[1}]", 0, false},
    {"double_colon", "{\"a\"::1}", 0, false},
    /* Literals. */
    {"literal_case", "{\"a\":True}", 0, false},
    {"literal_short", "{\"a\":nul}", 0, false},
    {"literal_run_on", "{\"a\":truex}", 0, false},
    {"nan", "{\"a\":NaN}", 0, false},
    {"infinity", "{\"a\":-Infinity}", 0, false},
    /* RFC 8259 §6 numbers. */
    {"rfc8259_s6_leading_zero", "{\"a\":01}", 0, false},
    {"rfc8259_s6_neg_leading_zero", "{\"a\":-01}", 0, false},
    {"rfc8259_s6_plus", "{\"a\":+1}", 0, false},
    {"rfc8259_s6_minus_alone", "{\"a\":-}", 0, false},
    {"rfc8259_s6_dot_first", "{\"a\":.5}", 0, false},
    {"rfc8259_s6_dot_last", "{\"a\":1.}", 0, false},
    {"rfc8259_s6_exp_empty", "{\"a\":1e}", 0, false},
    {"rfc8259_s6_exp_sign_only", "{\"a\":1e+}", 0, false},
    {"rfc8259_s6_hex", "{\"a\":0x1}", 0, false},
    {"number_at_end", "{\"a\":-", 0, false},
    /* RFC 8259 §7 strings. */
    {"rfc8259_s7_raw_control", "{\"a\":\"x\ty\"}", 0, false},
    {"rfc8259_s7_raw_newline", "{\"a\":\"x\ny\"}", 0, false},
    {"rfc8259_s7_raw_nul", "{\"a\":\"x\0\"}", 8, false},
    {"rfc8259_s7_bad_escape", "{\"a\":\"\\x\"}", 0, false},
    {"rfc8259_s7_escape_nul", "{\"a\":\"\\\0\"}", 9, false},
    {"rfc8259_s7_escape_at_end", "{\"a\":\"\\", 0, false},
    {"rfc8259_s7_u_short", "{\"a\":\"\\u12\"}", 0, false},
    {"rfc8259_s7_u_not_hex", "{\"a\":\"\\u12g4\"}", 0, false},
    {"rfc8259_s7_u_upper", "{\"a\":\"\\U0041\"}", 0, false},
    {"rfc8259_s8_2_lone_high", "{\"a\":\"\\ud834\"}", 0, false},
    {"rfc8259_s8_2_lone_high_then_char", "{\"a\":\"\\ud834x\"}", 0, false},
    {"rfc8259_s8_2_high_high", "{\"a\":\"\\ud834\\ud834\"}", 0, false},
    {"rfc8259_s8_2_lone_low", "{\"a\":\"\\udd1e\"}", 0, false},
    {"rfc8259_s8_2_low_high", "{\"a\":\"\\udd1e\\ud834\"}", 0, false},
    {"rfc8259_s8_2_high_then_bad_escape", "{\"a\":\"\\ud834\\n\"}", 0, false},
    /* RFC 8259 §8.1 and RFC 3629 §3-4: UTF-8 only, well-formed. */
    {"rfc3629_latin1", "{\"a\":\"\xe9\"}", 0, false},
    {"rfc3629_lone_continuation", "{\"a\":\"\x80\"}", 0, false},
    {"rfc3629_overlong_2", "{\"a\":\"\xc0\xaf\"}", 0, false},
    {"rfc3629_overlong_2_c1", "{\"a\":\"\xc1\xbf\"}", 0, false},
    {"rfc3629_overlong_3", "{\"a\":\"\xe0\x80\xaf\"}", 0, false},
    {"rfc3629_overlong_4", "{\"a\":\"\xf0\x80\x80\xaf\"}", 0, false},
    {"rfc3629_surrogate_encoded", "{\"a\":\"\xed\xa0\x80\"}", 0, false},
    {"rfc3629_above_max", "{\"a\":\"\xf4\x90\x80\x80\"}", 0, false},
    {"rfc3629_f5", "{\"a\":\"\xf5\x80\x80\x80\"}", 0, false},
    {"rfc3629_ff", "{\"a\":\"\xff\"}", 0, false},
    {"rfc3629_truncated_3", "{\"a\":\"\xe2\x82\"}", 0, false},
    {"rfc3629_truncated_at_end", "{\"a\":\"\xe2\x82", 0, false},
    {"rfc3629_bad_third_byte", "{\"a\":\"\xe2\x82\x41\"}", 0, false},
    {"rfc3629_bad_in_name", "{\"\xc3\":1}", 0, false},
    {"raw_utf8_outside_string", "{\"a\":1\xc2\xa0}", 0, false},
    /* Depth. */
    {"depth_17_arrays", "{\"a\":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}", 0, false},
    {"depth_17_objects",
     "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{"
     "\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}}}}}}}}}",
     0, false},
    /* RFC 8259 §4: names SHOULD be unique; at the top level this reader insists. */
    {"rfc8259_s4_duplicate", "{\"a\":1,\"a\":1}", 0, false},
    {"rfc8259_s4_duplicate_far", "{\"a\":1,\"b\":[1,{\"c\":2}],\"c\":3,\"a\":2}", 0, false},
    {"rfc8259_s4_duplicate_escaped", "{\"alg\":\"HS256\",\"\\u0061lg\":\"none\"}", 0, false},
    {"rfc8259_s4_duplicate_escaped_utf8", "{\"\xc3\xa9\":1,\"\\u00e9\":2}", 0, false},
    {"rfc8259_s4_duplicate_empty", "{\"\":1,\"\":2}", 0, false},
    {"rfc8259_s4_prefix_not_duplicate", "{\"ab\":1,\"a\":2,\"abc\":3}", 0, true},
};

static void test_valid_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++) {
        const struct valid_case *c = &valid_cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        if (json_object_valid(c->text, len) != c->valid)
            fail_msg("case %s: want %s", c->name, c->valid ? "valid" : "invalid");
    }
}

static void test_valid_null_text(void **state)
{
    (void)state;
    assert_false(json_object_valid(NULL, 0));
}

/* The length bounds the text: a valid prefix followed by more bytes is judged by len alone. */
static void test_valid_len_bounds_text(void **state)
{
    (void)state;
    const char *t = "{\"a\":1}garbage";
    assert_true(json_object_valid(t, 7));
    assert_false(json_object_valid(t, 6));
    assert_false(json_object_valid(t, 8));
}

/* Writes {"m0":0,...} with n members, the last named last; returns its length. */
static size_t make_members(char *buf, size_t cap, int n, const char *last)
{
    size_t len = 0;
    buf[len++] = '{';
    for (int i = 0; i < n; i++) {
        int w = i == n - 1 && last != NULL
                    ? snprintf(buf + len, cap - len, "%s\"%s\":%d", i ? "," : "", last, i)
                    : snprintf(buf + len, cap - len, "%s\"m%d\":%d", i ? "," : "", i, i);
        assert_true(w > 0 && (size_t)w < cap - len);
        len += (size_t)w;
    }
    assert_true(len + 1 < cap);
    buf[len++] = '}';
    return len;
}

static void test_valid_members_max(void **state)
{
    (void)state;
    char buf[8192];
    size_t n = make_members(buf, sizeof buf, JSON_MEMBERS_MAX, NULL);
    assert_true(json_object_valid(buf, n));
    int64_t v = 0;
    assert_int_equal(json_get_int(buf, n, "m255", &v), JSON_FOUND);
    assert_int_equal(v, 255);
    n = make_members(buf, sizeof buf, JSON_MEMBERS_MAX + 1, NULL);
    assert_false(json_object_valid(buf, n));
    /* Nested objects are not bounded by it: only the top level is checked for duplicates. */
    n = make_members(buf, sizeof buf, JSON_MEMBERS_MAX + 1, NULL);
    char outer[8300];
    int w = snprintf(outer, sizeof outer, "{\"o\":%.*s}", (int)n, buf);
    assert_true(w > 0 && (size_t)w < sizeof outer);
    assert_true(json_object_valid(outer, (size_t)w));
}

/* RFC 8259 §4: the last of JSON_MEMBERS_MAX names repeats the first. */
static void test_valid_duplicate_at_max(void **state)
{
    (void)state;
    char buf[8192];
    size_t n = make_members(buf, sizeof buf, JSON_MEMBERS_MAX, "m0");
    assert_false(json_object_valid(buf, n));
    n = make_members(buf, sizeof buf, JSON_MEMBERS_MAX, "m\\u0030");
    assert_false(json_object_valid(buf, n));
    n = make_members(buf, sizeof buf, JSON_MEMBERS_MAX, "m00");
    assert_true(json_object_valid(buf, n));
}

struct string_case {
    const char *name;
    const char *text;
    const char *member;
    size_t outlen;
    enum json_get want;
    const char *out; /* expected out; "" on every status but FOUND */
};

static const struct string_case string_cases[] = {
    {"found", "{\"alg\":\"HS256\"}", "alg", 16, JSON_FOUND, "HS256"},
    {"found_among", "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"kid\":\"k1\"}", "alg", 16, JSON_FOUND,
     "RS256"},
    {"empty_value", "{\"a\":\"\"}", "a", 1, JSON_FOUND, ""},
    {"fits_exactly", "{\"a\":\"abc\"}", "a", 4, JSON_FOUND, "abc"},
    {"too_long_by_one", "{\"a\":\"abcd\"}", "a", 4, JSON_TOO_LONG, ""},
    {"too_long_zero_room", "{\"a\":\"\"}", "a", 0, JSON_TOO_LONG, ""},
    {"escapes", "{\"a\":\"q\\\"b\\\\s\\/n\\nt\\tr\\rb\\bf\\f\"}", "a", 32, JSON_FOUND,
     "q\"b\\s/n\nt\tr\rb\bf\f"},
    {"rfc8259_s7_u_ascii", "{\"a\":\"\\u0041\\u007a\"}", "a", 8, JSON_FOUND, "Az"},
    {"rfc8259_s7_u_2byte", "{\"a\":\"\\u00E9\"}", "a", 8, JSON_FOUND, "\xc3\xa9"},
    {"rfc8259_s7_u_3byte", "{\"a\":\"\\u20ac\"}", "a", 8, JSON_FOUND, "\xe2\x82\xac"},
    {"rfc8259_s7_surrogate_pair", "{\"a\":\"\\uD834\\uDD1E\"}", "a", 8, JSON_FOUND,
     "\xf0\x9d\x84\x9e"},
    {"rfc8259_s7_max_pair", "{\"a\":\"\\udbff\\udfff\"}", "a", 8, JSON_FOUND, "\xf4\x8f\xbf\xbf"},
    {"escaped_utf8_counts_bytes", "{\"a\":\"\\u20ac\"}", "a", 3, JSON_TOO_LONG, ""},
    {"raw_utf8", "{\"a\":\"\xc3\xa9t\xc3\xa9\"}", "a", 8, JSON_FOUND, "\xc3\xa9t\xc3\xa9"},
    {"u0000_refused", "{\"a\":\"x\\u0000y\"}", "a", 8, JSON_WRONG_TYPE, ""},
    {"u0000_refused_even_if_too_long", "{\"a\":\"xxxxxxxx\\u0000\"}", "a", 2, JSON_WRONG_TYPE, ""},
    {"number", "{\"a\":1}", "a", 8, JSON_WRONG_TYPE, ""},
    {"array", "{\"a\":[\"x\"]}", "a", 8, JSON_WRONG_TYPE, ""},
    {"object", "{\"a\":{}}", "a", 8, JSON_WRONG_TYPE, ""},
    {"null", "{\"a\":null}", "a", 8, JSON_WRONG_TYPE, ""},
    {"true", "{\"a\":true}", "a", 8, JSON_WRONG_TYPE, ""},
    {"missing", "{\"b\":\"x\"}", "a", 8, JSON_MISSING, ""},
    {"missing_empty_object", "{}", "a", 8, JSON_MISSING, ""},
    {"name_prefix_is_not_name", "{\"al\":\"x\",\"algo\":\"y\"}", "alg", 8, JSON_MISSING, ""},
    {"name_case_sensitive", "{\"Alg\":\"x\"}", "alg", 8, JSON_MISSING, ""},
    {"nested_not_top_level", "{\"h\":{\"alg\":\"x\"},\"l\":[{\"alg\":\"y\"}]}", "alg", 8,
     JSON_MISSING, ""},
    {"name_in_value_not_name", "{\"x\":\"alg\",\"y\":[\"alg\",1]}", "alg", 8, JSON_MISSING, ""},
    {"escaped_name_matches", "{\"\\u0061lg\":\"HS256\"}", "alg", 8, JSON_FOUND, "HS256"},
    {"utf8_name", "{\"\\u00e9\":\"v\"}", "\xc3\xa9", 8, JSON_FOUND, "v"},
    {"empty_name", "{\"\":\"v\"}", "", 8, JSON_FOUND, "v"},
    {"u0000_name_never_matches", "{\"a\\u0000\":\"v\"}", "a", 8, JSON_MISSING, ""},
    {"after_nested_values", "{\"x\":{\"a\":[1,{\"b\":\"}\"}]},\"a\":\"v\"}", "a", 8, JSON_FOUND,
     "v"},
    {"invalid_doc", "{\"a\":\"x\",}", "a", 8, JSON_INVALID, ""},
    {"invalid_duplicate", "{\"a\":\"x\",\"a\":\"y\"}", "a", 8, JSON_INVALID, ""},
    {"invalid_not_object", "[\"a\"]", "a", 8, JSON_INVALID, ""},
};

static void test_get_string_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof string_cases / sizeof string_cases[0]; i++) {
        const struct string_case *c = &string_cases[i];
        char out[64];
        memset(out, 'Z', sizeof out);
        enum json_get r = json_get_string(c->text, strlen(c->text), c->member, out, c->outlen);
        if (r != c->want)
            fail_msg("case %s: status %d, want %d", c->name, (int)r, (int)c->want);
        if (c->outlen > 0 && strcmp(out, c->out) != 0)
            fail_msg("case %s: out \"%s\", want \"%s\"", c->name, out, c->out);
        /* Nothing is ever written past outlen. */
        for (size_t k = c->outlen; k < sizeof out; k++)
            if (out[k] != 'Z')
                fail_msg("case %s: byte %zu written past outlen", c->name, k);
    }
}

struct int_case {
    const char *name;
    const char *text;
    enum json_get want;
    int64_t value;
};

static const struct int_case int_cases[] = {
    {"zero", "{\"n\":0}", JSON_FOUND, 0},
    {"minus_zero", "{\"n\":-0}", JSON_FOUND, 0},
    {"positive", "{\"n\":1700000000}", JSON_FOUND, 1700000000},
    {"negative", "{\"n\":-42}", JSON_FOUND, -42},
    {"int64_max", "{\"n\":9223372036854775807}", JSON_FOUND, INT64_MAX},
    {"int64_min", "{\"n\":-9223372036854775808}", JSON_FOUND, INT64_MIN},
    {"int64_max_plus_one", "{\"n\":9223372036854775808}", JSON_WRONG_TYPE, 0},
    {"int64_min_minus_one", "{\"n\":-9223372036854775809}", JSON_WRONG_TYPE, 0},
    {"huge", "{\"n\":123456789012345678901234567890}", JSON_WRONG_TYPE, 0},
    {"uint64_wrap", "{\"n\":18446744073709551617}", JSON_WRONG_TYPE, 0},
    {"fraction", "{\"n\":1.0}", JSON_WRONG_TYPE, 0},
    {"fraction_nonzero", "{\"n\":1700000000.5}", JSON_WRONG_TYPE, 0},
    {"exponent", "{\"n\":1e3}", JSON_WRONG_TYPE, 0},
    {"exponent_upper", "{\"n\":1E3}", JSON_WRONG_TYPE, 0},
    {"followed_by_member", "{\"n\":7,\"m\":8}", JSON_FOUND, 7},
    {"followed_by_ws", "{\"n\":7 }", JSON_FOUND, 7},
    {"string", "{\"n\":\"7\"}", JSON_WRONG_TYPE, 0},
    {"bool", "{\"n\":true}", JSON_WRONG_TYPE, 0},
    {"null", "{\"n\":null}", JSON_WRONG_TYPE, 0},
    {"array", "{\"n\":[7]}", JSON_WRONG_TYPE, 0},
    {"missing", "{\"m\":7}", JSON_MISSING, 0},
    {"invalid_leading_zero", "{\"n\":07}", JSON_INVALID, 0},
    {"invalid_plus", "{\"n\":+7}", JSON_INVALID, 0},
};

/* json_get_ceil: integers as json_get_int, other numbers rounded up (RFC 7519 §2). */
static const struct int_case ceil_cases[] = {
    {"integer", "{\"n\":1700000000}", JSON_FOUND, 1700000000},
    {"int64_max_stays_exact", "{\"n\":9223372036854775807}", JSON_FOUND, INT64_MAX},
    {"fraction_rounds_up", "{\"n\":1700000000.25}", JSON_FOUND, 1700000001},
    {"whole_fraction", "{\"n\":1700000000.0}", JSON_FOUND, 1700000000},
    {"negative_fraction_toward_zero", "{\"n\":-1.5}", JSON_FOUND, -1},
    {"exponent", "{\"n\":1.7e9}", JSON_FOUND, 1700000000},
    {"negative_exponent", "{\"n\":25e-1}", JSON_FOUND, 3},
    {"exponent_plus", "{\"n\":1E+3}", JSON_FOUND, 1000},
    {"tiny_fraction_not_lost_to_a_double", "{\"n\":1700000000.0000001}", JSON_FOUND,
     1700000001},
    {"tiny_fraction_through_an_exponent", "{\"n\":1.7000000000000001e9}", JSON_FOUND,
     1700000001},
    {"negative_half_is_zero", "{\"n\":-0.5}", JSON_FOUND, 0},
    {"zero_fraction", "{\"n\":0.0}", JSON_FOUND, 0},
    {"minute_positive", "{\"n\":1e-400}", JSON_FOUND, 1},
    {"zero_huge_exponent", "{\"n\":0e400}", JSON_FOUND, 0},
    {"exactly_1e18", "{\"n\":1e18}", JSON_FOUND, 1000000000000000000},
    {"just_over_1e18", "{\"n\":1.0000000000000000001e18}", JSON_FOUND, 1000000000000000001},
    {"leading_zeros_in_fraction_form", "{\"n\":0.00017e4}", JSON_FOUND, 2},
    {"too_big", "{\"n\":1e19}", JSON_WRONG_TYPE, 0},
    {"too_big_mantissa", "{\"n\":1.5e18}", JSON_WRONG_TYPE, 0},
    {"too_small", "{\"n\":-1e19}", JSON_WRONG_TYPE, 0},
    {"huge_exponent", "{\"n\":1e400}", JSON_WRONG_TYPE, 0},
    {"integer_overflowing_int64", "{\"n\":9223372036854775808}", JSON_WRONG_TYPE, 0},
    {"overlong_number", "{\"n\":1.00000000000000000000000000000000000000000000000000000000000001}",
     JSON_WRONG_TYPE, 0},
    {"followed_by_member", "{\"n\":2.5,\"m\":8}", JSON_FOUND, 3},
    {"string", "{\"n\":\"1.5\"}", JSON_WRONG_TYPE, 0},
    {"null", "{\"n\":null}", JSON_WRONG_TYPE, 0},
    {"missing", "{\"m\":1.5}", JSON_MISSING, 0},
    {"invalid", "{\"n\":1.}", JSON_INVALID, 0},
};

static void test_get_ceil_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ceil_cases / sizeof ceil_cases[0]; i++) {
        const struct int_case *c = &ceil_cases[i];
        int64_t v = 99;
        enum json_get r = json_get_ceil(c->text, strlen(c->text), "n", &v);
        if (r != c->want)
            fail_msg("case %s: status %d, want %d", c->name, (int)r, (int)c->want);
        if (r == JSON_FOUND && v != c->value)
            fail_msg("case %s: value %lld, want %lld", c->name, (long long)v, (long long)c->value);
        if (r != JSON_FOUND && v != 99)
            fail_msg("case %s: out written on failure", c->name);
    }
}

static void test_get_int_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof int_cases / sizeof int_cases[0]; i++) {
        const struct int_case *c = &int_cases[i];
        int64_t v = 99;
        enum json_get r = json_get_int(c->text, strlen(c->text), "n", &v);
        if (r != c->want)
            fail_msg("case %s: status %d, want %d", c->name, (int)r, (int)c->want);
        if (r == JSON_FOUND && v != c->value)
            fail_msg("case %s: value %lld, want %lld", c->name, (long long)v, (long long)c->value);
        if (r != JSON_FOUND && v != 99)
            fail_msg("case %s: out written on failure", c->name);
    }
}

struct has_case {
    const char *name;
    const char *text;
    const char *value;
    enum json_get want;
};

static const struct has_case has_cases[] = {
    {"string_equal", "{\"aud\":\"mx\"}", "mx", JSON_FOUND},
    {"string_other", "{\"aud\":\"mx2\"}", "mx", JSON_MISSING},
    {"string_prefix", "{\"aud\":\"m\"}", "mx", JSON_MISSING},
    {"string_empty", "{\"aud\":\"\"}", "mx", JSON_MISSING},
    {"string_escaped", "{\"aud\":\"\\u006dx\"}", "mx", JSON_FOUND},
    {"string_case", "{\"aud\":\"MX\"}", "mx", JSON_MISSING},
    {"array_first", "{\"aud\":[\"mx\",\"web\"]}", "mx", JSON_FOUND},
    {"array_last", "{\"aud\":[\"web\", \"api\" , \"mx\"]}", "mx", JSON_FOUND},
    {"array_miss", "{\"aud\":[\"web\",\"api\"]}", "mx", JSON_MISSING},
    {"array_empty", "{\"aud\":[]}", "mx", JSON_MISSING},
    {"array_empty_ws", "{\"aud\":[ ]}", "mx", JSON_MISSING},
    {"array_mixed_types", "{\"aud\":[1,null,{\"mx\":\"mx\"},[\"mx\"],\"mx\"]}", "mx", JSON_FOUND},
    {"array_nested_only", "{\"aud\":[[\"mx\"],{\"a\":\"mx\"}]}", "mx", JSON_MISSING},
    {"array_u0000_not_equal", "{\"aud\":[\"mx\\u0000\"]}", "mx", JSON_MISSING},
    {"number", "{\"aud\":1}", "mx", JSON_WRONG_TYPE},
    {"object", "{\"aud\":{\"mx\":1}}", "mx", JSON_WRONG_TYPE},
    {"null", "{\"aud\":null}", "mx", JSON_WRONG_TYPE},
    {"absent", "{\"iss\":\"mx\"}", "mx", JSON_MISSING},
    {"invalid", "{\"aud\":[\"mx\",]}", "mx", JSON_INVALID},
    {"invalid_duplicate", "{\"aud\":\"web\",\"aud\":\"mx\"}", "mx", JSON_INVALID},
};

static void test_has_string_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof has_cases / sizeof has_cases[0]; i++) {
        const struct has_case *c = &has_cases[i];
        enum json_get r = json_has_string(c->text, strlen(c->text), "aud", c->value);
        if (r != c->want)
            fail_msg("case %s: status %d, want %d", c->name, (int)r, (int)c->want);
    }
}

/* Getters take a length, not a C string: a NUL inside the bounds is data, and bytes beyond
 * len are never read. */
static void test_getters_respect_len(void **state)
{
    (void)state;
    const char t[] = "{\"a\":\"x\"}{\"a\":1}";
    char out[8];
    assert_int_equal(json_get_string(t, 9, "a", out, sizeof out), JSON_FOUND);
    assert_string_equal(out, "x");
    assert_int_equal(json_get_string(t, sizeof t - 1, "a", out, sizeof out), JSON_INVALID);
    int64_t v;
    assert_int_equal(json_get_int(t, 8, "a", &v), JSON_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_table),
        cmocka_unit_test(test_valid_null_text),
        cmocka_unit_test(test_valid_len_bounds_text),
        cmocka_unit_test(test_valid_members_max),
        cmocka_unit_test(test_valid_duplicate_at_max),
        cmocka_unit_test(test_get_string_table),
        cmocka_unit_test(test_get_int_table),
        cmocka_unit_test(test_get_ceil_table),
        cmocka_unit_test(test_has_string_table),
        cmocka_unit_test(test_getters_respect_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
