/* Unit tests for deliver/smtp_reply: server replies read whole, byte by byte and split at
 * every point with the same outcome; pipelined replies left for the next call; J1 (short
 * lines), J2 (huge, non-numeric, out-of-range and mixed codes), bare LF/CR, NUL, the line
 * and line-count bounds, text truncation, errors that stick; RFC 2034 enhanced codes; the
 * EHLO keyword parser; the first-word check used for loop detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/smtp_reply.h"

struct r_case {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen(in) */
    enum smtp_reply_status st;
    unsigned code;
    const char *enhanced;
    const char *text;
    unsigned nlines;
};

static const struct r_case r_cases[] = {
    {"greeting", "220 mx.example.org ESMTP\r\n", 0, SMTP_REPLY_DONE, 220, "",
     "mx.example.org ESMTP", 1},
    {"multiline", "250-mx\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", 0, SMTP_REPLY_DONE, 250, "",
     "mx\nPIPELINING\nSIZE 1000", 3},
    {"code_only_RFC_5321_4_2", "250\r\n", 0, SMTP_REPLY_DONE, 250, "", "", 1},
    {"code_space", "250 \r\n", 0, SMTP_REPLY_DONE, 250, "", "", 1},
    {"multiline_empty_text", "250-\r\n250\r\n", 0, SMTP_REPLY_DONE, 250, "", "\n", 2},
    {"enhanced_RFC_2034", "550 5.1.1 unknown user\r\n", 0, SMTP_REPLY_DONE, 550, "5.1.1",
     "5.1.1 unknown user", 1},
    {"enhanced_alone", "250 2.1.5\r\n", 0, SMTP_REPLY_DONE, 250, "2.1.5", "2.1.5", 1},
    {"enhanced_long", "451 4.123.456 busy\r\n", 0, SMTP_REPLY_DONE, 451, "4.123.456",
     "4.123.456 busy", 1},
    {"enhanced_class_mismatch", "550 4.1.1 x\r\n", 0, SMTP_REPLY_DONE, 550, "", "4.1.1 x", 1},
    {"enhanced_four_digits", "451 4.1234.5 x\r\n", 0, SMTP_REPLY_DONE, 451, "", "4.1234.5 x", 1},
    {"enhanced_glued", "250 2.1.5x\r\n", 0, SMTP_REPLY_DONE, 250, "", "2.1.5x", 1},
    {"enhanced_partial", "250 2.1\r\n", 0, SMTP_REPLY_DONE, 250, "", "2.1", 1},
    {"eight_bit_text", "250 h\xc3\xa9llo\r\n", 0, SMTP_REPLY_DONE, 250, "", "h\xc3\xa9llo", 1},
    {"tab_text", "250 a\tb\r\n", 0, SMTP_REPLY_DONE, 250, "", "a\tb", 1},
    {"J1_short_continuation", "250-x\r\n25\r\n", 0, SMTP_REPLY_ERR_SYNTAX, 0, NULL, NULL, 0},
    {"J1_two_digits", "25\r\n", 0, SMTP_REPLY_ERR_SYNTAX, 0, NULL, NULL, 0},
    {"J1_one_digit", "2\r\n", 0, SMTP_REPLY_ERR_SYNTAX, 0, NULL, NULL, 0},
    {"J1_empty_line", "\r\n", 0, SMTP_REPLY_ERR_SYNTAX, 0, NULL, NULL, 0},
    {"J2_code_999", "999 x\r\n", 0, SMTP_REPLY_ERR_CODE, 0, NULL, NULL, 0},
    {"J2_code_1yz", "150 x\r\n", 0, SMTP_REPLY_ERR_CODE, 0, NULL, NULL, 0},
    {"J2_code_6yz", "650 x\r\n", 0, SMTP_REPLY_ERR_CODE, 0, NULL, NULL, 0},
    {"J2_code_x6z", "260 x\r\n", 0, SMTP_REPLY_ERR_CODE, 0, NULL, NULL, 0},
    {"J2_non_numeric", "abc x\r\n", 0, SMTP_REPLY_ERR_SYNTAX, 0, NULL, NULL, 0},
    {"J2_non_numeric_later", "250-a\r\n2x0 b\r\n", 0, SMTP_REPLY_ERR_SYNTAX, 0, NULL, NULL, 0},
    {"J2_mixed_codes", "250-a\r\n550 b\r\n", 0, SMTP_REPLY_ERR_CODE_CHANGED, 0, NULL, NULL, 0},
    {"J2_mixed_codes_same_class", "250-a\r\n251 b\r\n", 0, SMTP_REPLY_ERR_CODE_CHANGED, 0, NULL,
     NULL, 0},
    {"bad_separator", "250x\r\n", 0, SMTP_REPLY_ERR_SYNTAX, 0, NULL, NULL, 0},
    {"bad_separator_tab", "250\tok\r\n", 0, SMTP_REPLY_ERR_SYNTAX, 0, NULL, NULL, 0},
    {"bare_lf", "250 ok\n", 0, SMTP_REPLY_ERR_BARE_LF, 0, NULL, NULL, 0},
    {"bare_lf_continuation", "250-ok\r\n250 ok\n", 0, SMTP_REPLY_ERR_BARE_LF, 0, NULL, NULL, 0},
    {"bare_cr", "250 o\rk\r\n", 0, SMTP_REPLY_ERR_BARE_CR, 0, NULL, NULL, 0},
    {"cr_cr_lf", "250 ok\r\r\n", 0, SMTP_REPLY_ERR_BARE_CR, 0, NULL, NULL, 0},
    {"nul", "250 o\0k\r\n", 9, SMTP_REPLY_ERR_NUL, 0, NULL, NULL, 0},
    {"nul_first", "\0", 1, SMTP_REPLY_ERR_NUL, 0, NULL, NULL, 0},
    {"incomplete", "250-a\r\n250 b", 0, SMTP_REPLY_MORE, 0, NULL, NULL, 0},
    {"incomplete_cr", "250 b\r", 0, SMTP_REPLY_MORE, 0, NULL, NULL, 0},
};

static enum smtp_reply_status r_feed(struct smtp_reply_parser *p, const unsigned char *in,
                                     size_t len, size_t split, size_t *used)
{
    size_t a = 0, b = 0;
    enum smtp_reply_status st = smtp_reply_parse(p, in, split, &a);
    if (st != SMTP_REPLY_MORE) {
        *used = a;
        return st;
    }
    assert_int_equal(a, split);
    st = smtp_reply_parse(p, in + split, len - split, &b);
    *used = a + b;
    return st;
}

static void r_check(const struct r_case *c, const struct smtp_reply_parser *p,
                    enum smtp_reply_status st)
{
    if (st != c->st)
        fail_msg("%s: status %s, wanted %s", c->name, smtp_reply_status_name(st),
                 smtp_reply_status_name(c->st));
    if (st != SMTP_REPLY_DONE)
        return;
    assert_int_equal(p->reply.code, c->code);
    assert_string_equal(p->reply.enhanced, c->enhanced);
    assert_string_equal(p->reply.text, c->text);
    assert_int_equal(p->reply.textlen, strlen(c->text));
    assert_int_equal(p->reply.nlines, c->nlines);
    assert_false(p->reply.truncated);
}

static void test_reply_table_every_split(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof r_cases / sizeof r_cases[0]; k++) {
        const struct r_case *c = &r_cases[k];
        size_t len = c->len ? c->len : strlen(c->in);
        for (size_t split = 0; split <= len; split++) {
            struct smtp_reply_parser p;
            size_t used;
            smtp_reply_parser_init(&p);
            enum smtp_reply_status st = r_feed(&p, (const unsigned char *)c->in, len, split, &used);
            r_check(c, &p, st);
            if (st == SMTP_REPLY_DONE || st == SMTP_REPLY_MORE)
                assert_int_equal(used, len);
        }
        /* byte by byte */
        struct smtp_reply_parser p;
        enum smtp_reply_status st = SMTP_REPLY_MORE;
        smtp_reply_parser_init(&p);
        for (size_t i = 0; i < len && st == SMTP_REPLY_MORE; i++) {
            size_t used;
            st = smtp_reply_parse(&p, (const unsigned char *)c->in + i, 1, &used);
        }
        r_check(c, &p, st);
    }
}

/* RFC 2920 §3.1: replies to pipelined commands arrive together; each call returns one. */
static void test_reply_pipelined_stop_at_end(void **state)
{
    (void)state;
    const char *in = "250 2.1.0 ok\r\n550-5.1.1 no\r\n550 5.1.1 such user\r\n354 go\r\n";
    const unsigned char *u = (const unsigned char *)in;
    size_t len = strlen(in), off = 0, used;
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p);

    assert_int_equal(smtp_reply_parse(&p, u, len, &used), SMTP_REPLY_DONE);
    assert_int_equal(used, 14);
    assert_int_equal(p.reply.code, 250);
    off += used;
    assert_int_equal(smtp_reply_parse(&p, u + off, len - off, &used), SMTP_REPLY_DONE);
    assert_int_equal(p.reply.code, 550);
    assert_string_equal(p.reply.enhanced, "5.1.1");
    assert_string_equal(p.reply.text, "5.1.1 no\n5.1.1 such user");
    off += used;
    assert_int_equal(smtp_reply_parse(&p, u + off, len - off, &used), SMTP_REPLY_DONE);
    assert_int_equal(p.reply.code, 354);
    assert_int_equal(off + used, len);
    assert_int_equal(smtp_reply_parse(&p, u, 0, &used), SMTP_REPLY_MORE);
    assert_int_equal(used, 0);
}

static char *r_line(char *dst, const char *prefix, size_t textlen, const char *end)
{
    size_t n = strlen(prefix);
    memcpy(dst, prefix, n);
    memset(dst + n, 'a', textlen);
    memcpy(dst + n + textlen, end, strlen(end) + 1);
    return dst + n + textlen + strlen(end);
}

/* RFC 5321 §4.5.3.1.5: 512 octets with CRLF is the longest line; one more is refused as
 * soon as it is known, before any LF. */
static void test_reply_line_limit(void **state)
{
    (void)state;
    char buf[1024];
    struct smtp_reply_parser p;
    size_t used;

    r_line(buf, "250 ", 506, "\r\n");
    assert_int_equal(strlen(buf), 512);
    smtp_reply_parser_init(&p);
    assert_int_equal(smtp_reply_parse(&p, (unsigned char *)buf, 512, &used), SMTP_REPLY_DONE);
    assert_int_equal(p.reply.textlen, 506);

    r_line(buf, "250 ", 507, "\r\n");
    smtp_reply_parser_init(&p);
    assert_int_equal(smtp_reply_parse(&p, (unsigned char *)buf, 513, &used),
                     SMTP_REPLY_ERR_TOO_LONG);
    /* Without any line end at all: refused at the 511th octet. */
    r_line(buf, "250 ", 600, "");
    smtp_reply_parser_init(&p);
    assert_int_equal(smtp_reply_parse(&p, (unsigned char *)buf, 511, &used),
                     SMTP_REPLY_ERR_TOO_LONG);
    smtp_reply_parser_init(&p);
    assert_int_equal(smtp_reply_parse(&p, (unsigned char *)buf, 510, &used), SMTP_REPLY_MORE);
}

/* J2: a 1 MB reply is refused once its line count passes the bound, without reading on. */
static void test_reply_J2_one_megabyte(void **state)
{
    (void)state;
    size_t cap = 1100 * 1024;
    char *buf = malloc(cap);
    char *e = buf;
    assert_non_null(buf);
    while ((size_t)(e - buf) < 1024 * 1024)
        e = r_line(e, "250-", 400, "\r\n");
    e = r_line(e, "250 ", 1, "\r\n");
    struct smtp_reply_parser p;
    size_t used;
    smtp_reply_parser_init(&p);
    assert_int_equal(smtp_reply_parse(&p, (unsigned char *)buf, (size_t)(e - buf), &used),
                     SMTP_REPLY_ERR_TOO_MANY);
    assert_true(used < (size_t)(e - buf));
    /* The error sticks. */
    assert_int_equal(smtp_reply_parse(&p, (unsigned char *)"250 ok\r\n", 8, &used),
                     SMTP_REPLY_ERR_TOO_MANY);
    assert_int_equal(used, 0);
    free(buf);
}

static void test_reply_J2_line_count_bound(void **state)
{
    (void)state;
    char buf[200 * 8];
    char *e = buf;
    struct smtp_reply_parser p;
    size_t used;

    for (int i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
        e = r_line(e, "250-", 1, "\r\n");
    char *last = e;
    e = r_line(e, "250 ", 1, "\r\n");
    smtp_reply_parser_init(&p);
    assert_int_equal(smtp_reply_parse(&p, (unsigned char *)buf, (size_t)(e - buf), &used),
                     SMTP_REPLY_DONE);
    assert_int_equal(p.reply.nlines, SMTP_REPLY_LINES_MAX);
    e = r_line(last, "250-", 1, "\r\n");
    e = r_line(e, "250 ", 1, "\r\n");
    smtp_reply_parser_init(&p);
    assert_int_equal(smtp_reply_parse(&p, (unsigned char *)buf, (size_t)(e - buf), &used),
                     SMTP_REPLY_ERR_TOO_MANY);
}

/* Text past SMTP_REPLY_TEXT_MAX is dropped, the reply still completes. */
static void test_reply_text_truncated(void **state)
{
    (void)state;
    char *buf = malloc(100 * 512);
    char *e = buf;
    assert_non_null(buf);
    for (int i = 0; i < 99; i++)
        e = r_line(e, "250-", 500, "\r\n");
    e = r_line(e, "250 ", 500, "\r\n");
    struct smtp_reply_parser p;
    size_t used;
    smtp_reply_parser_init(&p);
    assert_int_equal(smtp_reply_parse(&p, (unsigned char *)buf, (size_t)(e - buf), &used),
                     SMTP_REPLY_DONE);
    assert_true(p.reply.truncated);
    assert_int_equal(p.reply.textlen, SMTP_REPLY_TEXT_MAX);
    assert_int_equal(strlen(p.reply.text), SMTP_REPLY_TEXT_MAX);
    /* The next reply starts clean. */
    assert_int_equal(smtp_reply_parse(&p, (unsigned char *)"221 bye\r\n", 9, &used),
                     SMTP_REPLY_DONE);
    assert_false(p.reply.truncated);
    assert_string_equal(p.reply.text, "bye");
    free(buf);
}

static void test_reply_error_sticks(void **state)
{
    (void)state;
    struct smtp_reply_parser p;
    size_t used;
    smtp_reply_parser_init(&p);
    assert_int_equal(smtp_reply_parse(&p, (unsigned char *)"25\r\n250 ok\r\n", 12, &used),
                     SMTP_REPLY_ERR_SYNTAX);
    assert_int_equal(smtp_reply_parse(&p, (unsigned char *)"250 ok\r\n", 8, &used),
                     SMTP_REPLY_ERR_SYNTAX);
    assert_int_equal(used, 0);
    assert_string_equal(smtp_reply_status_name(SMTP_REPLY_ERR_SYNTAX), "syntax");
}

struct e_case {
    const char *name;
    const char *in;
    unsigned ext;
    uint64_t size;
    unsigned auth;
};

static const struct e_case e_cases[] = {
    {"none", "250 mx.example.org\r\n", 0, 0, 0},
    {"all",
     "250-mx\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
     "250-CHUNKING\r\n250-BINARYMIME\r\n250-STARTTLS\r\n250-DSN\r\n"
     "250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 XOAUTH2 OAUTHBEARER\r\n"
     "250 ENHANCEDSTATUSCODES\r\n",
     SMTP_EXT_PIPELINING | SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 |
         SMTP_EXT_CHUNKING | SMTP_EXT_BINARYMIME | SMTP_EXT_STARTTLS | SMTP_EXT_DSN |
         SMTP_EXT_AUTH | SMTP_EXT_ENHANCEDSTATUSCODES,
     10240000, 0x3f},
    {"case_insensitive", "250-mx\r\n250-pipelining\r\n250 Size 5\r\n",
     SMTP_EXT_PIPELINING | SMTP_EXT_SIZE, 5, 0},
    {"first_line_is_the_name", "250-PIPELINING\r\n250 DSN\r\n", SMTP_EXT_DSN, 0, 0},
    {"size_without_value_RFC_1870", "250-mx\r\n250 SIZE\r\n", SMTP_EXT_SIZE, 0, 0},
    {"size_zero", "250-mx\r\n250 SIZE 0\r\n", SMTP_EXT_SIZE, 0, 0},
    {"size_overflow", "250-mx\r\n250 SIZE 99999999999999999999999\r\n", SMTP_EXT_SIZE, 0, 0},
    {"size_garbage", "250-mx\r\n250 SIZE 12x\r\n", SMTP_EXT_SIZE, 0, 0},
    {"auth_old_form", "250-mx\r\n250 AUTH=LOGIN PLAIN\r\n", SMTP_EXT_AUTH, 0,
     SMTP_AUTH_LOGIN | SMTP_AUTH_PLAIN},
    {"auth_unknown_mech", "250-mx\r\n250 AUTH GSSAPI\r\n", SMTP_EXT_AUTH, 0, 0},
    {"unknown_and_prefix", "250-mx\r\n250-XPIPELINING\r\n250-PIPELININGX\r\n250 SIZE=5\r\n", 0, 0,
     0},
    {"keyword_with_params_ignored", "250-mx\r\n250 STARTTLS now\r\n", SMTP_EXT_STARTTLS, 0, 0},
    {"empty_lines", "250-mx\r\n250-\r\n250 \r\n", 0, 0, 0},
};

static void test_ehlo_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof e_cases / sizeof e_cases[0]; k++) {
        const struct e_case *c = &e_cases[k];
        struct smtp_reply_parser p;
        struct smtp_ehlo e;
        size_t used;
        smtp_reply_parser_init(&p);
        assert_int_equal(smtp_reply_parse(&p, (const unsigned char *)c->in, strlen(c->in), &used),
                         SMTP_REPLY_DONE);
        smtp_ehlo_parse(&p.reply, &e);
        if (e.ext != c->ext || e.size != c->size || e.auth != c->auth)
            fail_msg("%s: ext 0x%x size %llu auth 0x%x", c->name, e.ext, (unsigned long long)e.size,
                     e.auth);
    }
}

struct n_case {
    const char *in;
    const char *name;
    bool match;
};

static const struct n_case n_cases[] = {
    {"220 mx.example.org ESMTP\r\n", "MX.Example.org", true},
    {"250-mx.example.org\r\n250 PIPELINING\r\n", "mx.example.org", true},
    {"220 mx.example.org.evil ESMTP\r\n", "mx.example.org", false},
    {"220 mx.example\r\n", "mx.example.org", false},
    {"220\r\n", "mx.example.org", false},
    {"220 \r\n", "", false},
};

static void test_reply_names_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof n_cases / sizeof n_cases[0]; k++) {
        struct smtp_reply_parser p;
        size_t used;
        smtp_reply_parser_init(&p);
        assert_int_equal(smtp_reply_parse(&p, (const unsigned char *)n_cases[k].in,
                                          strlen(n_cases[k].in), &used),
                         SMTP_REPLY_DONE);
        assert_int_equal(smtp_reply_names(&p.reply, n_cases[k].name), n_cases[k].match);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_table_every_split),
        cmocka_unit_test(test_reply_pipelined_stop_at_end),
        cmocka_unit_test(test_reply_line_limit),
        cmocka_unit_test(test_reply_J2_one_megabyte),
        cmocka_unit_test(test_reply_J2_line_count_bound),
        cmocka_unit_test(test_reply_text_truncated),
        cmocka_unit_test(test_reply_error_sticks),
        cmocka_unit_test(test_ehlo_table),
        cmocka_unit_test(test_reply_names_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
