/* Unit tests for smtp/addr: RFC 5321 §4.1.2 paths, §4.1.3 address literals, §4.5.3.1
 * limits, RFC 6531 UTF-8, and the HOSTILE-INPUTS rows that reach the path parser. Every
 * input is copied into a heap block of exactly its length, so ASan flags any over-read. */
/* cmocka.h needs these before it, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/addr.h"

#define F_NULL 0x01
#define F_ROUTE 0x02
#define F_QUOTED 0x04
#define F_LITERAL 0x08
#define F_UTF8 0x10

#define N ADDR_ALLOW_NULL
#define P ADDR_ALLOW_POSTMASTER
#define U ADDR_ALLOW_UTF8

struct path_case {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen(in) */
    unsigned flags;
    enum addr_result want;
    const char *addr; /* checked when want == ADDR_OK */
    const char *local;
    const char *domain;
    unsigned bits;
    size_t consumed; /* 0: the whole input */
};

#define OK(name, in, flags, addr, local, domain, bits)                                             \
    {                                                                                              \
        name, in, 0, flags, ADDR_OK, addr, local, domain, bits, 0                                  \
    }
#define ERR(name, in, flags, want)                                                                 \
    {                                                                                              \
        name, in, 0, flags, want, NULL, NULL, NULL, 0, 0                                           \
    }

static const struct path_case path_cases[] = {
    /* RFC 5321 §4.1.2 Mailbox with a Dot-string local part */
    OK("simple", "<user@example.org>", 0, "user@example.org", "user", "example.org", 0),
    OK("domain_lower_cased", "<User@Example.ORG>", 0, "User@Example.ORG", "User", "example.org", 0),
    OK("dot_string", "<first.last@x.y>", 0, "first.last@x.y", "first.last", "x.y", 0),
    OK("atext_specials", "<!#$%&'*+-/=?^_`{|}~@x>", 0, "!#$%&'*+-/=?^_`{|}~@x",
       "!#$%&'*+-/=?^_`{|}~", "x", 0),
    OK("single_label_domain", "<u@localhost>", 0, "u@localhost", "u", "localhost", 0),
    OK("numeric_labels", "<u@123.45>", 0, "u@123.45", "u", "123.45", 0),
    OK("hyphen_inside_label", "<u@a-b.c--d>", 0, "u@a-b.c--d", "u", "a-b.c--d", 0),
    {"trailing_params_not_consumed", "<a@b> SIZE=10", 0, 0, ADDR_OK, "a@b", "a", "b", 0, 5},
    ERR("rfc5321_s4_1_2_leading_dot", "<.a@b>", 0, ADDR_ERR_SYNTAX),
    ERR("rfc5321_s4_1_2_trailing_dot", "<a.@b>", 0, ADDR_ERR_SYNTAX),
    ERR("rfc5321_s4_1_2_double_dot", "<a..b@c>", 0, ADDR_ERR_SYNTAX),
    ERR("space_in_local", "<a b@c>", 0, ADDR_ERR_SYNTAX),
    ERR("empty_local", "<@c>", 0, ADDR_ERR_SYNTAX),
    ERR("no_domain", "<a@>", 0, ADDR_ERR_SYNTAX),
    ERR("no_close", "<a@b", 0, ADDR_ERR_SYNTAX),
    ERR("no_open", "a@b>", 0, ADDR_ERR_SYNTAX),
    ERR("empty_input", "", 0, ADDR_ERR_SYNTAX),
    ERR("open_only", "<", 0, ADDR_ERR_SYNTAX),
    ERR("junk_after_domain", "<a@b c>", 0, ADDR_ERR_SYNTAX),
    ERR("two_ats", "<a@b@c>", 0, ADDR_ERR_SYNTAX),
    ERR("comment", "<a(x)@b>", 0, ADDR_ERR_SYNTAX),
    ERR("angle_inside", "<a<b@c>", 0, ADDR_ERR_SYNTAX),
    {"cut_short_by_len", "<a@b>", 4, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0},

    /* Domain labels: Let-dig [Ldh-str], at most 63 octets (RFC 1035 §2.3.4) */
    ERR("label_leading_hyphen", "<u@-a.c>", 0, ADDR_ERR_SYNTAX),
    ERR("label_trailing_hyphen", "<u@a-.c>", 0, ADDR_ERR_SYNTAX),
    ERR("label_hyphen_only", "<u@->", 0, ADDR_ERR_SYNTAX),
    ERR("domain_empty_label", "<u@a..c>", 0, ADDR_ERR_SYNTAX),
    ERR("domain_leading_dot", "<u@.a>", 0, ADDR_ERR_SYNTAX),
    ERR("domain_trailing_dot", "<u@a.>", 0, ADDR_ERR_SYNTAX),
    ERR("domain_underscore", "<u@a_b.c>", 0, ADDR_ERR_SYNTAX),
    OK("label_63", "<u@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b>", 0,
       "u@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b", "u",
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b", 0),
    ERR("label_64", "<u@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b>", 0,
        ADDR_ERR_SYNTAX),

    /* Quoted-string local parts (RFC 5321 §4.1.2 QcontentSMTP) */
    OK("quoted", "<\"john doe\"@x>", 0, "\"john doe\"@x", "john doe", "x", F_QUOTED),
    OK("quoted_pairs", "<\"a\\\"b\\\\c\"@x>", 0, "\"a\\\"b\\\\c\"@x", "a\"b\\c", "x", F_QUOTED),
    OK("quoted_empty", "<\"\"@x>", 0, "\"\"@x", "", "x", F_QUOTED),
    OK("quoted_at", "<\"a@b\"@c>", 0, "\"a@b\"@c", "a@b", "c", F_QUOTED),
    ERR("quoted_unterminated", "<\"abc@x>", 0, ADDR_ERR_SYNTAX),
    ERR("quoted_then_more", "<\"a\"b@x>", 0, ADDR_ERR_SYNTAX),
    ERR("quoted_pair_tab", "<\"a\\\tb\"@x>", 0, ADDR_ERR_SYNTAX),
    ERR("quoted_tab", "<\"a\tb\"@x>", 0, ADDR_ERR_SYNTAX),
    ERR("quoted_pair_at_end", "<\"a\\", 0, ADDR_ERR_SYNTAX),

    /* RFC 5321 §4.5.5 null path; §4.1.1.3 Postmaster */
    {"null_allowed", "<>", 0, N, ADDR_OK, "", "", "", F_NULL, 0},
    {"null_then_params", "<> BODY=8BITMIME", 0, N, ADDR_OK, "", "", "", F_NULL, 2},
    ERR("null_not_allowed", "<>", 0, ADDR_ERR_SYNTAX),
    OK("postmaster_bare", "<Postmaster>", P, "Postmaster", "Postmaster", "", 0),
    OK("postmaster_any_case", "<pOSTMASTER>", P, "pOSTMASTER", "pOSTMASTER", "", 0),
    ERR("postmaster_not_allowed", "<Postmaster>", 0, ADDR_ERR_SYNTAX),
    ERR("postmaster_quoted", "<\"Postmaster\">", P, ADDR_ERR_SYNTAX),
    ERR("postmaster_with_route", "<@a:Postmaster>", P, ADDR_ERR_SYNTAX),
    ERR("postmaster_prefix", "<Postmaster2>", P, ADDR_ERR_SYNTAX),
    ERR("bare_local_not_postmaster", "<bob>", P, ADDR_ERR_SYNTAX),
    OK("postmaster_at_domain", "<Postmaster@Example.org>", 0, "Postmaster@Example.org",
       "Postmaster", "example.org", 0),

    /* Obsolete source routes (RFC 5321 §4.1.2 A-d-l, Appendix C): parsed, then dropped */
    OK("route_one", "<@relay.example:u@d>", 0, "u@d", "u", "d", F_ROUTE),
    OK("route_two", "<@a,@b:user@d>", 0, "user@d", "user", "d", F_ROUTE),
    ERR("route_no_colon", "<@a,@b>", 0, ADDR_ERR_SYNTAX),
    ERR("route_empty_domain", "<@:u@d>", 0, ADDR_ERR_SYNTAX),
    ERR("route_missing_at", "<@a,b:u@d>", 0, ADDR_ERR_SYNTAX),
    ERR("route_literal", "<@[1.2.3.4]:u@d>", 0, ADDR_ERR_SYNTAX),
    ERR("route_then_nothing", "<@a:>", 0, ADDR_ERR_SYNTAX),
    ERR("route_bad_label", "<@-a:u@d>", 0, ADDR_ERR_SYNTAX),

    /* RFC 5321 §4.1.3 address literals */
    OK("ipv4", "<u@[192.0.2.1]>", 0, "u@[192.0.2.1]", "u", "[192.0.2.1]", F_LITERAL),
    OK("ipv4_edges", "<u@[0.0.0.255]>", 0, "u@[0.0.0.255]", "u", "[0.0.0.255]", F_LITERAL),
    ERR("ipv4_256", "<u@[256.1.1.1]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv4_three_parts", "<u@[1.2.3]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv4_five_parts", "<u@[1.2.3.4.5]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv4_four_digits", "<u@[0001.2.3.4]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv4_empty_part", "<u@[1..3.4]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv4_trailing_dot", "<u@[1.2.3.4.]>", 0, ADDR_ERR_SYNTAX),
    OK("ipv6_comp", "<u@[IPv6:2001:DB8::1]>", 0, "u@[IPv6:2001:DB8::1]", "u", "[IPv6:2001:DB8::1]",
       F_LITERAL),
    OK("ipv6_tag_any_case", "<u@[ipv6:::1]>", 0, "u@[ipv6:::1]", "u", "[ipv6:::1]", F_LITERAL),
    OK("ipv6_unspecified", "<u@[IPv6:::]>", 0, "u@[IPv6:::]", "u", "[IPv6:::]", F_LITERAL),
    OK("ipv6_full", "<u@[IPv6:1:2:3:4:5:6:7:8]>", 0, "u@[IPv6:1:2:3:4:5:6:7:8]", "u",
       "[IPv6:1:2:3:4:5:6:7:8]", F_LITERAL),
    OK("ipv6_trailing_comp", "<u@[IPv6:fe80::]>", 0, "u@[IPv6:fe80::]", "u", "[IPv6:fe80::]",
       F_LITERAL),
    OK("ipv6_comp_one_group", "<u@[IPv6:1:2:3:4:5:6:7::]>", 0, "u@[IPv6:1:2:3:4:5:6:7::]", "u",
       "[IPv6:1:2:3:4:5:6:7::]", F_LITERAL),
    OK("ipv6v4_comp", "<u@[IPv6:::ffff:192.0.2.1]>", 0, "u@[IPv6:::ffff:192.0.2.1]", "u",
       "[IPv6:::ffff:192.0.2.1]", F_LITERAL),
    OK("ipv6v4_full", "<u@[IPv6:1:2:3:4:5:6:1.2.3.4]>", 0, "u@[IPv6:1:2:3:4:5:6:1.2.3.4]", "u",
       "[IPv6:1:2:3:4:5:6:1.2.3.4]", F_LITERAL),
    ERR("ipv6_seven_groups", "<u@[IPv6:1:2:3:4:5:6:7]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv6_nine_groups", "<u@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv6_comp_eight_groups", "<u@[IPv6:1:2:3:4::5:6:7:8]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv6_two_comps", "<u@[IPv6:1::2::3]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv6_five_hex", "<u@[IPv6:12345::]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv6_not_hex", "<u@[IPv6:g::]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv6_single_leading_colon", "<u@[IPv6::1:2:3:4:5:6:7]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv6_single_trailing_colon", "<u@[IPv6:1:2:3:4:5:6:7:]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv6_triple_colon", "<u@[IPv6:1:::2]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv6_only_v4", "<u@[IPv6:1.2.3.4]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv6_v4_too_many_groups", "<u@[IPv6:1:2:3:4:5:6:7:1.2.3.4]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv6_v4_not_last", "<u@[IPv6:::1.2.3.4:1]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv6_bad_v4", "<u@[IPv6:::1.2.3.256]>", 0, ADDR_ERR_SYNTAX),
    ERR("ipv6_empty", "<u@[IPv6:]>", 0, ADDR_ERR_SYNTAX),
    OK("general_literal", "<u@[x-tag:some!thing]>", 0, "u@[x-tag:some!thing]", "u",
       "[x-tag:some!thing]", F_LITERAL),
    ERR("general_tag_trailing_hyphen", "<u@[tag-:x]>", 0, ADDR_ERR_SYNTAX),
    ERR("general_no_content", "<u@[tag:]>", 0, ADDR_ERR_SYNTAX),
    ERR("general_no_tag", "<u@[:x]>", 0, ADDR_ERR_SYNTAX),
    ERR("general_backslash", "<u@[tag:a\\b]>", 0, ADDR_ERR_SYNTAX),
    ERR("general_space", "<u@[tag:a b]>", 0, ADDR_ERR_SYNTAX),
    ERR("literal_empty", "<u@[]>", 0, ADDR_ERR_SYNTAX),
    ERR("literal_no_colon", "<u@[example]>", 0, ADDR_ERR_SYNTAX),
    ERR("literal_unclosed", "<u@[1.2.3.4>", 0, ADDR_ERR_SYNTAX),
    ERR("literal_nested", "<u@[[1.2.3.4]]>", 0, ADDR_ERR_SYNTAX),
    ERR("literal_then_junk", "<u@[1.2.3.4]x>", 0, ADDR_ERR_SYNTAX),

    /* A3, A5: control bytes never pass, and a NUL does not end the string */
    {"A3_nul_in_local", "<a\0b@x>", 8, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0},
    {"A3_nul_in_domain", "<a@x\0y>", 8, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0},
    {"A3_nul_in_quoted", "<\"a\0b\"@x>", 10, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0},
    {"A3_nul_in_literal", "<a@[1.2\0.3.4]>", 14, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0},
    ERR("A5_bare_cr_in_local", "<a\rb@x>", 0, ADDR_ERR_SYNTAX),
    ERR("A5_bare_cr_in_domain", "<a@x\ry>", 0, ADDR_ERR_SYNTAX),
    ERR("A5_lf_in_local", "<a\nb@x>", 0, ADDR_ERR_SYNTAX),
    ERR("A5_cr_in_quoted", "<\"a\rb\"@x>", 0, ADDR_ERR_SYNTAX),
    ERR("A5_quoted_pair_cr", "<\"a\\\rb\"@x>", 0, ADDR_ERR_SYNTAX),
    ERR("A5_del_in_local",
        "<a\x7f"
        "b@x>",
        0, ADDR_ERR_SYNTAX),
    ERR("A5_esc_in_route", "<@a\x1b:b@x>", 0, ADDR_ERR_SYNTAX),

    /* A6, RFC 6531 §3.3: UTF-8 only when declared, and only well-formed */
    ERR("A6_utf8_local_undeclared",
        "<j\xc3\xb6"
        "e@x>",
        0, ADDR_ERR_NEED_SMTPUTF8),
    ERR("A6_utf8_domain_undeclared",
        "<u@b\xc3\xbc"
        "cher.de>",
        0, ADDR_ERR_NEED_SMTPUTF8),
    ERR("A6_utf8_quoted_undeclared", "<\"\xc3\xb6\"@x>", 0, ADDR_ERR_NEED_SMTPUTF8),
    ERR("A6_utf8_route_undeclared", "<@b\xc3\xbc:u@x>", 0, ADDR_ERR_NEED_SMTPUTF8),
    ERR("A6_latin1_undeclared",
        "<j\xf6"
        "e@x>",
        0, ADDR_ERR_NEED_SMTPUTF8),
    OK("rfc6531_utf8_local",
       "<j\xc3\xb6"
       "e@x>",
       U,
       "j\xc3\xb6"
       "e@x",
       "j\xc3\xb6"
       "e",
       "x", F_UTF8),
    OK("rfc6531_utf8_domain_lower_ascii_only",
       "<u@B\xc3\x9c"
       "CHER.de>",
       U,
       "u@B\xc3\x9c"
       "CHER.de",
       "u",
       "b\xc3\x9c"
       "cher.de",
       F_UTF8),
    OK("rfc6531_utf8_quoted", "<\"\xc3\xb6 x\"@x>", U, "\"\xc3\xb6 x\"@x", "\xc3\xb6 x", "x",
       F_QUOTED | F_UTF8),
    OK("rfc6531_four_byte", "<\xf0\x9f\x98\x80@x>", U, "\xf0\x9f\x98\x80@x", "\xf0\x9f\x98\x80",
       "x", F_UTF8),
    OK("rfc6531_utf8_route", "<@b\xc3\xbc:u@x>", U, "u@x", "u", "x", F_ROUTE),
    OK("rfc6531_utf8_label_start", "<u@\xc3\xbc.de>", U, "u@\xc3\xbc.de", "u", "\xc3\xbc.de",
       F_UTF8),
    ERR("rfc6531_utf8_in_literal", "<u@[tag:\xc3\xbc]>", U, ADDR_ERR_SYNTAX),
    ERR("rfc6531_quoted_pair_utf8", "<\"\\\xc3\xbc\"@x>", U, ADDR_ERR_SYNTAX),
    ERR("bad_utf8_lone_continuation", "<a\x80@x>", U, ADDR_ERR_BAD_UTF8),
    ERR("bad_utf8_overlong_2", "<a\xc0\xaf@x>", U, ADDR_ERR_BAD_UTF8),
    ERR("bad_utf8_overlong_3", "<a\xe0\x80\xaf@x>", U, ADDR_ERR_BAD_UTF8),
    ERR("bad_utf8_overlong_4", "<a\xf0\x80\x80\xaf@x>", U, ADDR_ERR_BAD_UTF8),
    ERR("bad_utf8_surrogate", "<a\xed\xa0\x80@x>", U, ADDR_ERR_BAD_UTF8),
    ERR("bad_utf8_above_10ffff", "<a\xf4\x90\x80\x80@x>", U, ADDR_ERR_BAD_UTF8),
    ERR("bad_utf8_f5", "<a\xf5\x80\x80\x80@x>", U, ADDR_ERR_BAD_UTF8),
    ERR("bad_utf8_truncated", "<a\xc3", U, ADDR_ERR_BAD_UTF8),
    ERR("bad_utf8_truncated_before_at", "<a\xe2\x82@x>", U, ADDR_ERR_BAD_UTF8),
    ERR("bad_utf8_in_domain", "<u@x\xff>", U, ADDR_ERR_BAD_UTF8),
    ERR("A6_bad_utf8_undeclared_needs_smtputf8_first", "<a\xed\xa0\x80@x>", 0,
        ADDR_ERR_NEED_SMTPUTF8),
    ERR("A6_ff_fe_undeclared", "<a\xff\xfe@x>", 0, ADDR_ERR_NEED_SMTPUTF8),

    /* B1: shell metacharacters are literal bytes; the unquoted ones are not atext */
    ERR("B1_semicolons", "<;sleep 66;>", 0, ADDR_ERR_SYNTAX),
    ERR("B1_semicolons_with_domain", "<;sleep 66;@x>", 0, ADDR_ERR_SYNTAX),
    OK("B1_quoted_command_substitution", "<\"$(id)\"@x>", 0, "\"$(id)\"@x", "$(id)", "x", F_QUOTED),
    ERR("B1_unquoted_command_substitution", "<$(id)@x>", 0, ADDR_ERR_SYNTAX),
    OK("B1_backticks_are_atext", "<`id`@x>", 0, "`id`@x", "`id`", "x", 0),
    ERR("B1_pipe_space", "<|sh -c@x>", 0, ADDR_ERR_SYNTAX),
    /* B2: expansion syntax stays literal */
    OK("B2_exim_expansion", "<${run{/bin/sh}}@localhost>", 0, "${run{/bin/sh}}@localhost",
       "${run{/bin/sh}}", "localhost", 0),
    OK("B2_format_string", "<%s%n@x>", 0, "%s%n@x", "%s%n", "x", 0),
    /* B8: broken paths */
    ERR("B8_no_brackets", "bla$die%bla@die&bla", 0, ADDR_ERR_SYNTAX),
    ERR("B8_stray_quote", "<u\"ser>", 0, ADDR_ERR_SYNTAX),
    ERR("B8_junk", "</@)$@)BLAARGH!@#$$>", 0, ADDR_ERR_SYNTAX),
    ERR("B8_domain_junk", "<bla@die&bla>", 0, ADDR_ERR_SYNTAX),
    /* B10 shapes at the parser level: the relay check sees the parsed parts */
    OK("B10_percent_hack", "<victim%remote@us>", 0, "victim%remote@us", "victim%remote", "us", 0),
    OK("B10_bang_path", "<remote!victim@us>", 0, "remote!victim@us", "remote!victim", "us", 0),
    ERR("B10_double_at", "<victim@remote@us>", 0, ADDR_ERR_SYNTAX),
    OK("B10_quoted_at", "<\"victim@remote\"@us>", 0, "\"victim@remote\"@us", "victim@remote", "us",
       F_QUOTED),
    OK("B10_route_stripped", "<@us:victim@remote>", 0, "victim@remote", "victim", "remote",
       F_ROUTE),
};

static char *dup_exact(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, s, len);
    return p;
}

static void check_terminated(const struct addr_path *p)
{
    assert_non_null(memchr(p->addr, '\0', sizeof(p->addr)));
    assert_non_null(memchr(p->local, '\0', sizeof(p->local)));
    assert_non_null(memchr(p->domain, '\0', sizeof(p->domain)));
}

static void test_path_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
        const struct path_case *c = &path_cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        char *in = dup_exact(c->in, len);
        struct addr_path p;
        size_t consumed = 12345;
        memset(&p, 0x5a, sizeof(p));
        enum addr_result r = addr_parse_path(in, len, c->flags, &p, &consumed);
        free(in);
        if (r != c->want)
            fail_msg("case %s: got %d want %d", c->name, r, c->want);
        check_terminated(&p);
        if (r != ADDR_OK) {
            assert_int_equal(consumed, 0);
            continue;
        }
        assert_int_equal(consumed, c->consumed ? c->consumed : len);
        if (strcmp(p.addr, c->addr) != 0 || strcmp(p.local, c->local) != 0 ||
            strcmp(p.domain, c->domain) != 0)
            fail_msg("case %s: got [%s] [%s] [%s]", c->name, p.addr, p.local, p.domain);
        unsigned bits = (p.is_null ? F_NULL : 0) | (p.had_route ? F_ROUTE : 0) |
                        (p.quoted ? F_QUOTED : 0) | (p.literal ? F_LITERAL : 0) |
                        (p.utf8 ? F_UTF8 : 0);
        if (bits != c->bits)
            fail_msg("case %s: flags %#x want %#x", c->name, bits, c->bits);
    }
}

/* Build "<" [route] local "@" domain ">" with the given sizes. The domain is made of
 * labels of at most 63 octets so only the length rule can fail. */
static size_t build_path(char *buf, size_t cap, size_t route_len, size_t local_len,
                         size_t domain_len, bool quoted)
{
    size_t n = 0;
    buf[n++] = '<';
    if (route_len > 0) {
        buf[n++] = '@';
        for (size_t k = 0; k < route_len; k++)
            buf[n++] = (k % 60 == 59) ? '.' : 'r';
        buf[n++] = ':';
    }
    for (size_t k = 0; k < local_len; k++)
        buf[n++] = quoted && (k == 0 || k + 1 == local_len) ? '"' : 'l';
    buf[n++] = '@';
    for (size_t k = 0; k < domain_len; k++)
        buf[n++] = (k % 60 == 59 && k + 1 < domain_len) ? '.' : 'd';
    buf[n++] = '>';
    assert_true(n <= cap);
    return n;
}

struct length_case {
    const char *name;
    size_t route_len, local_len, domain_len;
    bool quoted;
    enum addr_result want;
};

static const struct length_case length_cases[] = {
    {"B7_local_64", 0, 64, 10, false, ADDR_OK},
    {"B7_local_65", 0, 65, 10, false, ADDR_ERR_LOCAL_TOO_LONG},
    {"B7_quoted_local_64_with_quotes", 0, 64, 10, true, ADDR_OK},
    {"B7_quoted_local_65_with_quotes", 0, 65, 10, true, ADDR_ERR_LOCAL_TOO_LONG},
    {"B7_local_10k", 0, 10000, 10, false, ADDR_ERR_LOCAL_TOO_LONG},
    {"B7_domain_255_path_over", 0, 1, 255, false, ADDR_ERR_PATH_TOO_LONG},
    {"B7_domain_256", 0, 1, 256, false, ADDR_ERR_DOMAIN_TOO_LONG},
    {"B7_domain_10k", 0, 1, 10000, false, ADDR_ERR_DOMAIN_TOO_LONG},
    {"B7_path_256", 0, 64, 189, false, ADDR_OK},
    {"B7_path_257", 0, 64, 190, false, ADDR_ERR_PATH_TOO_LONG},
    {"B7_path_256_with_route", 100, 10, 141, false, ADDR_OK},
    {"B7_route_makes_path_257", 100, 10, 142, false, ADDR_ERR_PATH_TOO_LONG},
    {"B7_route_domain_256", 256, 1, 1, false, ADDR_ERR_DOMAIN_TOO_LONG},
};

static void test_length_table(void **state)
{
    (void)state;
    static char buf[32768];
    for (size_t i = 0; i < sizeof(length_cases) / sizeof(length_cases[0]); i++) {
        const struct length_case *c = &length_cases[i];
        size_t len =
            build_path(buf, sizeof(buf), c->route_len, c->local_len, c->domain_len, c->quoted);
        char *in = dup_exact(buf, len);
        struct addr_path p;
        size_t consumed;
        enum addr_result r = addr_parse_path(in, len, 0, &p, &consumed);
        free(in);
        if (r != c->want)
            fail_msg("case %s (len %zu): got %d want %d", c->name, len, r, c->want);
        check_terminated(&p);
        if (r == ADDR_OK) {
            assert_int_equal(consumed, len);
            assert_int_equal(strlen(p.domain), c->domain_len);
        }
    }
}

struct domain_case {
    const char *name;
    const char *s;
    unsigned flags;
    bool ok;
};

static const struct domain_case domain_cases[] = {
    {"name", "mx.example.org", 0, true},
    {"single_label", "localhost", 0, true},
    {"ipv4_literal", "[192.0.2.1]", 0, true},
    {"ipv6_literal", "[IPv6:::1]", 0, true},
    {"general_literal", "[tag:x]", 0, true},
    {"empty", "", 0, false},
    {"underscore", "my_pc", 0, false},
    {"trailing_dot", "mx.example.org.", 0, false},
    {"unbracketed_ipv4", "192.0.2.1", 0, true},
    {"bad_literal", "[999.1.1.1]", 0, false},
    {"unclosed_literal", "[1.2.3.4", 0, false},
    {"lone_bracket", "[", 0, false},
    {"utf8_undeclared",
     "b\xc3\xbc"
     "cher.de",
     0, false},
    {"utf8_declared",
     "b\xc3\xbc"
     "cher.de",
     U, true},
    {"space", "a b", 0, false},
};

static void test_check_domain_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(domain_cases) / sizeof(domain_cases[0]); i++) {
        const struct domain_case *c = &domain_cases[i];
        size_t len = strlen(c->s);
        char *in = dup_exact(c->s, len);
        bool ok = addr_check_domain(in, len, c->flags);
        free(in);
        if (ok != c->ok)
            fail_msg("case %s", c->name);
    }
}

static void test_check_domain_length(void **state)
{
    (void)state;
    char buf[300];
    for (size_t k = 0; k < sizeof(buf); k++)
        buf[k] = (k % 50 == 49) ? '.' : 'a';
    assert_true(addr_check_domain(buf, 255, 0));
    assert_false(addr_check_domain(buf, 256, 0));
}

static void test_is_postmaster(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool want;
    } cases[] = {
        {"<postmaster@x>", true}, {"<PostMaster@x>", true},   {"<\"postmaster\"@x>", true},
        {"<postmaste@x>", false}, {"<postmasterx@x>", false}, {"<x@x>", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct addr_path p;
        size_t consumed;
        assert_int_equal(addr_parse_path(cases[i].in, strlen(cases[i].in), 0, &p, &consumed),
                         ADDR_OK);
        assert_int_equal(addr_is_postmaster(&p), cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_table),         cmocka_unit_test(test_length_table),
        cmocka_unit_test(test_check_domain_table), cmocka_unit_test(test_check_domain_length),
        cmocka_unit_test(test_is_postmaster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
