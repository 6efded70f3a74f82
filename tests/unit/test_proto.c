/* Unit tests for smtp/proto: line framing (every split point), command splitting, the
 * EHLO/HELO check, MAIL/RCPT arguments and ESMTP parameters, and BDAT arguments, with the
 * HOSTILE-INPUTS rows A1-A6, A8-A11, B1, B2, B4-B8 named where they apply. Inputs are
 * copied into heap blocks of exactly their length so ASan flags any over-read. */
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

#include "smtp/proto.h"

static char *dup_exact(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, s, len);
    return p;
}

/* ---- proto_line_scan ---- */

struct line_case {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen(in) */
    size_t max;
    enum proto_line_status want;
    size_t linelen;
    size_t consumed;
};

static const struct line_case line_cases[] = {
    {"crlf", "EHLO x\r\n", 0, 512, PROTO_LINE_OK, 6, 8},
    {"empty_line", "\r\n", 0, 512, PROTO_LINE_OK, 0, 2},
    {"first_of_two", "NOOP\r\nQUIT\r\n", 0, 512, PROTO_LINE_OK, 4, 6},
    {"empty_buffer", "", 0, 512, PROTO_LINE_INCOMPLETE, 0, 0},
    {"no_terminator", "EHLO x", 0, 512, PROTO_LINE_INCOMPLETE, 0, 0},
    {"cr_at_end_waits", "EHLO x\r", 0, 512, PROTO_LINE_INCOMPLETE, 0, 0},
    {"A4_bare_lf", "EHLO x\n", 0, 512, PROTO_LINE_BARE_LF, 6, 7},
    {"A4_bare_lf_alone", "\n", 0, 512, PROTO_LINE_BARE_LF, 0, 1},
    {"A4_never_split_on_bare_cr", "MAIL FROM:<a\rb@x>\r\n", 0, 512, PROTO_LINE_OK, 17, 19},
    {"cr_cr_lf_is_crlf_after_a_cr", "EHLO x\r\r\n", 0, 512, PROTO_LINE_OK, 7, 9},
    {"lf_cr_is_bare_lf", "a\n\r\n", 0, 512, PROTO_LINE_BARE_LF, 1, 2},
    {"nul_is_data", "NO\0OP\r\n", 7, 512, PROTO_LINE_OK, 5, 7},
    /* RFC 5321 §4.5.3.1.4: the limit counts the CRLF */
    {"rfc5321_s4_5_3_1_4_exactly_max", "abcdefgh\r\n", 0, 10, PROTO_LINE_OK, 8, 10},
    {"rfc5321_s4_5_3_1_4_max_plus_one", "abcdefghi\r\n", 0, 10, PROTO_LINE_TOO_LONG, 9, 11},
    {"bare_lf_exactly_max", "abcdefghi\n", 0, 10, PROTO_LINE_BARE_LF, 9, 10},
    {"bare_lf_max_plus_one", "abcdefghij\n", 0, 10, PROTO_LINE_TOO_LONG, 10, 11},
    {"A1_too_long_with_lf_in_buf", "abcdefghijklmnop\r\nNOOP\r\n", 0, 10, PROTO_LINE_TOO_LONG, 16,
     18},
    {"no_lf_len_equals_max_waits", "abcdefghij", 0, 10, PROTO_LINE_INCOMPLETE, 0, 0},
    {"A2_no_lf_len_over_max", "abcdefghijk", 0, 10, PROTO_LINE_TOO_LONG, 11, 11},
};

static void test_line_scan_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
        const struct line_case *c = &line_cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        char *in = dup_exact(c->in, len);
        size_t linelen = 999, consumed = 999;
        enum proto_line_status st =
            proto_line_scan((const unsigned char *)in, len, c->max, &linelen, &consumed);
        free(in);
        if (st != c->want || consumed != c->consumed ||
            (st != PROTO_LINE_INCOMPLETE && linelen != c->linelen))
            fail_msg("case %s: got %d/%zu/%zu want %d/%zu/%zu", c->name, st, linelen, consumed,
                     c->want, c->linelen, c->consumed);
    }
}

/* A2: a megabyte without a line end is refused in one step, the whole buffer dropped. */
static void test_A2_megabyte_without_crlf(void **state)
{
    (void)state;
    size_t len = 1u << 20;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    memset(buf, 'A', len);
    size_t linelen, consumed;
    assert_int_equal(proto_line_scan(buf, len, 512, &linelen, &consumed), PROTO_LINE_TOO_LONG);
    assert_int_equal(consumed, len);
    free(buf);
}

/* A model of the session's reader: a bounded buffer, a scan after each arrival, and
 * discarding through the next LF after a TOO_LONG without one (A1, A2). It records
 * each result as "<status>:<line>|". */
#define READER_CAP 1024 /* more than any max used here */

struct reader {
    unsigned char buf[READER_CAP];
    size_t len;
    bool discarding;
    char log[2048];
    size_t loglen;
};

static void reader_record(struct reader *r, char tag, const unsigned char *line, size_t n)
{
    int w = snprintf(r->log + r->loglen, sizeof(r->log) - r->loglen, "%c:%.*s|", tag, (int)n,
                     n > 0 ? (const char *)line : "");
    assert_true(w > 0 && (size_t)w < sizeof(r->log) - r->loglen);
    r->loglen += (size_t)w;
}

static void reader_feed(struct reader *r, const unsigned char *p, size_t n, size_t max)
{
    while (n > 0) {
        size_t take = n < READER_CAP - r->len ? n : READER_CAP - r->len;
        memcpy(r->buf + r->len, p, take);
        r->len += take;
        p += take;
        n -= take;
        for (;;) {
            if (r->discarding) {
                unsigned char *lf = memchr(r->buf, '\n', r->len);
                size_t drop = lf ? (size_t)(lf - r->buf) + 1 : r->len;
                memmove(r->buf, r->buf + drop, r->len - drop);
                r->len -= drop;
                if (lf == NULL)
                    break;
                r->discarding = false;
            }
            size_t linelen, consumed;
            enum proto_line_status st = proto_line_scan(r->buf, r->len, max, &linelen, &consumed);
            assert_true(consumed <= r->len);
            if (st == PROTO_LINE_INCOMPLETE) {
                assert_int_equal(consumed, 0);
                assert_true(r->len <= max);
                break;
            }
            assert_true(consumed > 0);
            if (st == PROTO_LINE_OK)
                reader_record(r, 'O', r->buf, linelen);
            else if (st == PROTO_LINE_BARE_LF)
                reader_record(r, 'L', r->buf, linelen);
            else
                reader_record(r, 'T', NULL, 0);
            if (st == PROTO_LINE_TOO_LONG && r->buf[consumed - 1] != '\n')
                r->discarding = true;
            memmove(r->buf, r->buf + consumed, r->len - consumed);
            r->len -= consumed;
        }
    }
}

static const char split_stream[] = "EHLO x\r\n"
                                   "MAIL FROM:<a@b>\r\n"
                                   "bare\n"
                                   "cr\rinside\r\n"
                                   "\r\n"
                                   "exactly-twenty-chr\r\n"
                                   "twenty-one-octets!!\r\n"
                                   "this line is much longer than the twenty byte limit\r\n"
                                   "x\r\r\n"
                                   "QUIT\r\n"
                                   "tail";

static const char split_want[] = "O:EHLO x|O:MAIL FROM:<a@b>|L:bare|O:cr\rinside|O:|"
                                 "O:exactly-twenty-chr|T:|T:|O:x\r|O:QUIT|";

/* The same stream gives the same lines whether it arrives whole, in two parts split at
 * any byte, or one byte at a time (RFC 5321 §2.3.8: a CR then, later, an LF is a CRLF). */
static void test_line_scan_every_split(void **state)
{
    (void)state;
    const unsigned char *s = (const unsigned char *)split_stream;
    size_t len = sizeof(split_stream) - 1;
    static struct reader r;

    for (size_t k = 0; k <= len; k++) {
        memset(&r, 0, sizeof(r));
        reader_feed(&r, s, k, 20);
        reader_feed(&r, s + k, len - k, 20);
        if (strcmp(r.log, split_want) != 0)
            fail_msg("split at %zu: got %s", k, r.log);
        assert_int_equal(r.len, 4); /* "tail" waits */
    }
    memset(&r, 0, sizeof(r));
    for (size_t k = 0; k < len; k++)
        reader_feed(&r, s + k, 1, 20);
    assert_string_equal(r.log, split_want);
}

/* A1, A2: 10 KB and 1 MB lines split at many points are refused once each, the reader's
 * memory stays within its buffer, and the next command is read normally. */
static void test_A1_A2_long_lines_every_split(void **state)
{
    (void)state;
    static struct reader r;
    static const size_t sizes[] = {10 * 1024, 1024 * 1024};
    for (size_t si = 0; si < 2; si++) {
        size_t body = sizes[si];
        size_t len = 5 + body + 2 + 6;
        unsigned char *s = malloc(len);
        assert_non_null(s);
        memcpy(s, "EHLO ", 5);
        memset(s + 5, 'a', body);
        memcpy(s + 5 + body, "\r\nQUIT\r\n", 8);
        size_t edge = body < 100000 ? 600 : 20;
        for (size_t k = 0; k <= len; k += (k < edge || k > len - edge) ? 1 : body / 16 + 1) {
            memset(&r, 0, sizeof(r));
            reader_feed(&r, s, k, 512);
            reader_feed(&r, s + k, len - k, 512);
            if (strcmp(r.log, "T:|O:QUIT|") != 0)
                fail_msg("size %zu split at %zu: got %s", body, k, r.log);
        }
        free(s);
    }
}

/* ---- proto_parse_command ---- */

struct cmd_case {
    const char *name;
    const char *line;
    size_t len; /* 0: strlen(line) */
    enum proto_cmd_status want;
    enum proto_verb verb;
    const char *arg; /* checked for OK and UNKNOWN */
};

static const struct cmd_case cmd_cases[] = {
    {"ehlo", "EHLO example.org", 0, PROTO_CMD_OK, PROTO_VERB_EHLO, "example.org"},
    {"helo", "HELO x", 0, PROTO_CMD_OK, PROTO_VERB_HELO, "x"},
    {"mail", "MAIL FROM:<a@b>", 0, PROTO_CMD_OK, PROTO_VERB_MAIL, "FROM:<a@b>"},
    {"rcpt", "RCPT TO:<a@b>", 0, PROTO_CMD_OK, PROTO_VERB_RCPT, "TO:<a@b>"},
    {"data", "DATA", 0, PROTO_CMD_OK, PROTO_VERB_DATA, ""},
    {"bdat", "BDAT 10 LAST", 0, PROTO_CMD_OK, PROTO_VERB_BDAT, "10 LAST"},
    {"rset", "RSET", 0, PROTO_CMD_OK, PROTO_VERB_RSET, ""},
    {"noop_with_arg", "NOOP hello", 0, PROTO_CMD_OK, PROTO_VERB_NOOP, "hello"},
    {"quit", "QUIT", 0, PROTO_CMD_OK, PROTO_VERB_QUIT, ""},
    {"vrfy", "VRFY root", 0, PROTO_CMD_OK, PROTO_VERB_VRFY, "root"},
    {"expn", "EXPN list", 0, PROTO_CMD_OK, PROTO_VERB_EXPN, "list"},
    {"help", "HELP", 0, PROTO_CMD_OK, PROTO_VERB_HELP, ""},
    {"starttls", "STARTTLS", 0, PROTO_CMD_OK, PROTO_VERB_STARTTLS, ""},
    {"auth", "AUTH PLAIN AGZvbwBiYXI=", 0, PROTO_CMD_OK, PROTO_VERB_AUTH, "PLAIN AGZvbwBiYXI="},
    {"A11_lower_case", "ehlo x", 0, PROTO_CMD_OK, PROTO_VERB_EHLO, "x"},
    {"A11_mixed_case", "MaIl FROM:<a@b>", 0, PROTO_CMD_OK, PROTO_VERB_MAIL, "FROM:<a@b>"},
    {"A11_extra_spaces", "MAIL   FROM:<a@b>   ", 0, PROTO_CMD_OK, PROTO_VERB_MAIL, "FROM:<a@b>"},
    {"A11_trailing_spaces_only", "QUIT   ", 0, PROTO_CMD_OK, PROTO_VERB_QUIT, ""},
    {"A11_starttls_mixed", "StartTLS", 0, PROTO_CMD_OK, PROTO_VERB_STARTTLS, ""},
    {"A6_eight_bit_left_to_arg_parser", "MAIL FROM:<j\xc3\xb6@x>", 0, PROTO_CMD_OK, PROTO_VERB_MAIL,
     "FROM:<j\xc3\xb6@x>"},
    {"A10_ehlo_no_arg", "EHLO", 0, PROTO_CMD_OK, PROTO_VERB_EHLO, ""},
    {"empty_line", "", 0, PROTO_CMD_UNKNOWN, PROTO_VERB_UNKNOWN, ""},
    {"unknown_verb", "FOO bar", 0, PROTO_CMD_UNKNOWN, PROTO_VERB_UNKNOWN, "bar"},
    {"verb_needs_space", "MAILX FROM:<a@b>", 0, PROTO_CMD_UNKNOWN, PROTO_VERB_UNKNOWN,
     "FROM:<a@b>"},
    {"verb_glued", "QUITNOW", 0, PROTO_CMD_UNKNOWN, PROTO_VERB_UNKNOWN, ""},
    {"verb_glued_colon_arg", "MAILFROM:<a@b>", 0, PROTO_CMD_UNKNOWN, PROTO_VERB_UNKNOWN, ""},
    {"leading_space", " NOOP", 0, PROTO_CMD_UNKNOWN, PROTO_VERB_UNKNOWN, "NOOP"},
    {"verb_prefix_only", "EHL x", 0, PROTO_CMD_UNKNOWN, PROTO_VERB_UNKNOWN, "x"},
    {"eight_bit_after_verb", "EHLO\xc3\xa9", 0, PROTO_CMD_UNKNOWN, PROTO_VERB_UNKNOWN, ""},
    {"A8_http_lower_case_is_just_unknown", "get / HTTP/1.1", 0, PROTO_CMD_UNKNOWN,
     PROTO_VERB_UNKNOWN, "/ HTTP/1.1"},
    {"A8_http_get", "GET / HTTP/1.1", 0, PROTO_CMD_FOREIGN, PROTO_VERB_UNKNOWN, NULL},
    {"A8_http_post", "POST /cgi HTTP/1.1", 0, PROTO_CMD_FOREIGN, PROTO_VERB_UNKNOWN, NULL},
    {"A8_http_connect", "CONNECT mx:25 HTTP/1.0", 0, PROTO_CMD_FOREIGN, PROTO_VERB_UNKNOWN, NULL},
    {"A8_http_head", "HEAD / HTTP/1.0", 0, PROTO_CMD_FOREIGN, PROTO_VERB_UNKNOWN, NULL},
    {"A8_http_put", "PUT /x HTTP/1.1", 0, PROTO_CMD_FOREIGN, PROTO_VERB_UNKNOWN, NULL},
    {"A8_http_options", "OPTIONS * HTTP/1.1", 0, PROTO_CMD_FOREIGN, PROTO_VERB_UNKNOWN, NULL},
    {"A8_tls_client_hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, PROTO_CMD_FOREIGN,
     PROTO_VERB_UNKNOWN, NULL},
    {"A8_rdp", "\x03\x00\x00\x13\x0e\xe0", 6, PROTO_CMD_FOREIGN, PROTO_VERB_UNKNOWN, NULL},
    {"A8_nul_first", "\0MAIL", 5, PROTO_CMD_FOREIGN, PROTO_VERB_UNKNOWN, NULL},
    {"A8_eight_bit_first", "\xc3\xa9HLO x", 0, PROTO_CMD_FOREIGN, PROTO_VERB_UNKNOWN, NULL},
    {"A8_del_first", "\x7fNOOP", 0, PROTO_CMD_FOREIGN, PROTO_VERB_UNKNOWN, NULL},
    {"A9_subject_header", "Subject: hi", 0, PROTO_CMD_FOREIGN, PROTO_VERB_UNKNOWN, NULL},
    {"A9_from_header", "From: a@b", 0, PROTO_CMD_FOREIGN, PROTO_VERB_UNKNOWN, NULL},
    {"A9_header_no_value", "X-Mailer:", 0, PROTO_CMD_FOREIGN, PROTO_VERB_UNKNOWN, NULL},
    {"A9_verb_then_colon_is_not_header", "MAIL: x", 0, PROTO_CMD_UNKNOWN, PROTO_VERB_UNKNOWN, "x"},
    {"A3_nul_in_mail", "MAIL FROM:<a\0b@x>", 17, PROTO_CMD_NUL, PROTO_VERB_UNKNOWN, NULL},
    {"A3_nul_at_end", "NOOP\0", 5, PROTO_CMD_NUL, PROTO_VERB_UNKNOWN, NULL},
    {"A3_nul_beats_cr", "NOOP \r\0", 7, PROTO_CMD_NUL, PROTO_VERB_UNKNOWN, NULL},
    {"A5_bare_cr_in_mail", "MAIL FROM:<a\rb@x>", 0, PROTO_CMD_CTL, PROTO_VERB_UNKNOWN, NULL},
    {"A5_cr_at_end", "EHLO x\r", 0, PROTO_CMD_CTL, PROTO_VERB_UNKNOWN, NULL},
    {"A5_tab", "EHLO\tx", 0, PROTO_CMD_CTL, PROTO_VERB_UNKNOWN, NULL},
    {"A5_del", "NOOP x\x7f", 0, PROTO_CMD_CTL, PROTO_VERB_UNKNOWN, NULL},
    {"A10_helo_escape_sequence", "HELO x\x1b[31m", 0, PROTO_CMD_CTL, PROTO_VERB_UNKNOWN, NULL},
};

static void test_command_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
        const struct cmd_case *c = &cmd_cases[i];
        size_t len = c->len ? c->len : strlen(c->line);
        char *line = dup_exact(c->line, len);
        struct proto_command cmd;
        enum proto_cmd_status st = proto_parse_command(line, len, &cmd);
        if (st != c->want || cmd.verb != c->verb)
            fail_msg("case %s: got %d/%d want %d/%d", c->name, st, cmd.verb, c->want, c->verb);
        assert_true(cmd.arg >= line && cmd.arg + cmd.arglen <= line + len);
        if (c->arg != NULL) {
            if (cmd.arglen != strlen(c->arg) || memcmp(cmd.arg, c->arg, cmd.arglen) != 0)
                fail_msg("case %s: arg [%.*s] want [%s]", c->name, (int)cmd.arglen, cmd.arg,
                         c->arg);
        }
        free(line);
    }
}

/* ---- proto_check_helo ---- */

struct helo_case {
    const char *name;
    const char *arg;
    size_t len;
    bool ok;
};

static const struct helo_case helo_cases[] = {
    {"rfc5321_s4_1_1_1_domain", "mx.example.org", 0, true},
    {"single_label", "localhost", 0, true},
    {"ipv4_literal", "[192.0.2.1]", 0, true},
    {"ipv6_literal", "[IPv6:2001:db8::1]", 0, true},
    {"A10_empty", "", 0, false},
    {"A10_space_inside", "mx example", 0, false},
    {"A10_cr", "mx\r", 0, false},
    {"A10_escape", "mx\x1b[31m", 0, false},
    {"A10_nul", "mx\0.org", 7, false},
    {"A10_del", "mx\x7f", 0, false},
    {"A6_eight_bit",
     "b\xc3\xbc"
     "cher.de",
     0, false},
    {"underscore", "my_pc", 0, false},
    {"bad_literal", "[1.2.3.999]", 0, false},
    {"leading_hyphen", "-mx.org", 0, false},
    {"B1_shell", ";sleep 66;", 0, false},
};

static void test_helo_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(helo_cases) / sizeof(helo_cases[0]); i++) {
        const struct helo_case *c = &helo_cases[i];
        size_t len = c->len ? c->len : strlen(c->arg);
        char *arg = dup_exact(c->arg, len);
        bool ok = proto_check_helo(arg, len);
        free(arg);
        if (ok != c->ok)
            fail_msg("case %s", c->name);
    }
}

/* ---- proto_parse_mail ---- */

struct mail_case {
    const char *name;
    const char *arg;
    size_t len; /* 0: strlen(arg) */
    uint64_t max_size;
    enum proto_arg_status want;
    const char *addr; /* checked on OK */
    uint64_t size;    /* checked on OK; size_given is size != 0 or "SIZE=0" in arg */
    enum proto_body body;
    bool smtputf8;
    enum proto_ret ret;
    const char *envid;
    const char *auth;
};

#define MOK(name, arg, addr, size, body, utf8, ret, envid, auth)                                   \
    {                                                                                              \
        name, arg, 0, 0, PROTO_ARG_OK, addr, size, body, utf8, ret, envid, auth                    \
    }
#define MERR(name, arg, want)                                                                      \
    {                                                                                              \
        name, arg, 0, 0, want, NULL, 0, PROTO_BODY_NONE, false, PROTO_RET_NONE, NULL, NULL         \
    }
#define MMAX(name, arg, max, want)                                                                 \
    {                                                                                              \
        name, arg, 0, max, want, NULL, 0, PROTO_BODY_NONE, false, PROTO_RET_NONE, NULL, NULL       \
    }

static const struct mail_case mail_cases[] = {
    MOK("plain", "FROM:<a@b>", "a@b", 0, PROTO_BODY_NONE, false, PROTO_RET_NONE, "", ""),
    MOK("A11_from_lower_case", "from:<a@b>", "a@b", 0, PROTO_BODY_NONE, false, PROTO_RET_NONE, "",
        ""),
    MOK("A11_space_after_colon", "FROM: <a@b>", "a@b", 0, PROTO_BODY_NONE, false, PROTO_RET_NONE,
        "", ""),
    MOK("A11_spaces_between_params", "FROM:<a@b>  SIZE=5   BODY=7BIT  ", "a@b", 5, PROTO_BODY_7BIT,
        false, PROTO_RET_NONE, "", ""),
    MOK("rfc5321_s4_5_5_null_sender", "FROM:<>", "", 0, PROTO_BODY_NONE, false, PROTO_RET_NONE, "",
        ""),
    MOK("null_sender_with_params", "FROM:<> SIZE=1000 BODY=8BITMIME", "", 1000, PROTO_BODY_8BITMIME,
        false, PROTO_RET_NONE, "", ""),
    MOK("route_stripped", "FROM:<@a,@b:u@d>", "u@d", 0, PROTO_BODY_NONE, false, PROTO_RET_NONE, "",
        ""),
    /* RFC 1870 SIZE */
    MOK("rfc1870_size_zero", "FROM:<a@b> SIZE=0", "a@b", 0, PROTO_BODY_NONE, false, PROTO_RET_NONE,
        "", ""),
    MOK("rfc1870_size_keyword_any_case", "FROM:<a@b> size=12", "a@b", 12, PROTO_BODY_NONE, false,
        PROTO_RET_NONE, "", ""),
    MOK("rfc1870_size_uint64_max", "FROM:<a@b> SIZE=18446744073709551615", "a@b", UINT64_MAX,
        PROTO_BODY_NONE, false, PROTO_RET_NONE, "", ""),
    MOK("rfc1870_size_leading_zeros", "FROM:<a@b> SIZE=000000000000000000000000042", "a@b", 42,
        PROTO_BODY_NONE, false, PROTO_RET_NONE, "", ""),
    MMAX("B6_size_at_limit", "FROM:<a@b> SIZE=1000", 1000, PROTO_ARG_OK),
    MMAX("B6_size_over_limit", "FROM:<a@b> SIZE=1001", 1000, PROTO_ARG_SIZE_EXCEEDED),
    MMAX("B6_size_huge_over_limit", "FROM:<a@b> SIZE=18446744073709551615", 1000,
         PROTO_ARG_SIZE_EXCEEDED),
    MMAX("B6_size_syntax_beats_limit", "FROM:<a@b> SIZE=1001 BODY=9BIT", 1000,
         PROTO_ARG_BODY_SYNTAX),
    MERR("B6_size_negative", "FROM:<a@b> SIZE=-1", PROTO_ARG_SIZE_SYNTAX),
    MERR("B6_size_letters", "FROM:<a@b> SIZE=abc", PROTO_ARG_SIZE_SYNTAX),
    MERR("B6_size_plus", "FROM:<a@b> SIZE=+5", PROTO_ARG_SIZE_SYNTAX),
    MERR("B6_size_exponent", "FROM:<a@b> SIZE=1e3", PROTO_ARG_SIZE_SYNTAX),
    MERR("B6_size_20_nines_overflow", "FROM:<a@b> SIZE=99999999999999999999",
         PROTO_ARG_SIZE_SYNTAX),
    MERR("B6_size_uint64_max_plus_one", "FROM:<a@b> SIZE=18446744073709551616",
         PROTO_ARG_SIZE_SYNTAX),
    MERR("B6_size_30_digits", "FROM:<a@b> SIZE=123456789012345678901234567890",
         PROTO_ARG_SIZE_SYNTAX),
    MERR("B6_size_empty", "FROM:<a@b> SIZE=", PROTO_ARG_SIZE_SYNTAX),
    MERR("B6_size_no_value", "FROM:<a@b> SIZE", PROTO_ARG_PARAM_SYNTAX),
    /* RFC 1652, 6152, 3030 BODY */
    MOK("rfc6152_body_8bitmime", "FROM:<a@b> BODY=8BITMIME", "a@b", 0, PROTO_BODY_8BITMIME, false,
        PROTO_RET_NONE, "", ""),
    MOK("rfc1652_body_7bit_lower", "FROM:<a@b> body=7bit", "a@b", 0, PROTO_BODY_7BIT, false,
        PROTO_RET_NONE, "", ""),
    MOK("rfc3030_body_binarymime", "FROM:<a@b> BODY=BinaryMIME", "a@b", 0, PROTO_BODY_BINARYMIME,
        false, PROTO_RET_NONE, "", ""),
    MERR("body_unknown", "FROM:<a@b> BODY=9BIT", PROTO_ARG_BODY_SYNTAX),
    MERR("body_prefix", "FROM:<a@b> BODY=8BIT", PROTO_ARG_BODY_SYNTAX),
    MERR("body_no_value", "FROM:<a@b> BODY", PROTO_ARG_PARAM_SYNTAX),
    MERR("B5_body_empty_value", "FROM:<a@b> BODY=", PROTO_ARG_BODY_SYNTAX),
    /* RFC 6531 SMTPUTF8 */
    MOK("rfc6531_smtputf8", "FROM:<a@b> SMTPUTF8", "a@b", 0, PROTO_BODY_NONE, true, PROTO_RET_NONE,
        "", ""),
    MOK("rfc6531_utf8_path_declared", "FROM:<j\xc3\xb6@x> SMTPUTF8", "j\xc3\xb6@x", 0,
        PROTO_BODY_NONE, true, PROTO_RET_NONE, "", ""),
    MOK("rfc6531_utf8_path_declared_lower", "FROM:<j\xc3\xb6@x> BODY=8BITMIME smtputf8",
        "j\xc3\xb6@x", 0, PROTO_BODY_8BITMIME, true, PROTO_RET_NONE, "", ""),
    MERR("A6_utf8_path_undeclared", "FROM:<j\xc3\xb6@x>", PROTO_ARG_NEED_SMTPUTF8),
    MERR("A6_utf8_domain_undeclared",
         "FROM:<a@b\xc3\xbc"
         "cher.de> BODY=8BITMIME",
         PROTO_ARG_NEED_SMTPUTF8),
    MERR("A6_latin1_path", "FROM:<j\xf6@x> SMTPUTF8", PROTO_ARG_BAD_UTF8),
    MERR("A6_latin1_path_undeclared", "FROM:<j\xf6@x>", PROTO_ARG_NEED_SMTPUTF8),
    MERR("A6_ff_fe_path_undeclared", "FROM:<a\xff\xfe@example.org>", PROTO_ARG_NEED_SMTPUTF8),
    MERR("A6_latin1_path_declared_lower", "FROM:<j\xf6@x> BODY=8BITMIME smtputf8",
         PROTO_ARG_BAD_UTF8),
    MERR("A6_latin1_path_smtputf8_only_as_value", "FROM:<j\xf6@x> X=SMTPUTF8",
         PROTO_ARG_NEED_SMTPUTF8),
    MERR("A6_eight_bit_in_param", "FROM:<a@b> ENVID=\xc3\xa9", PROTO_ARG_PARAM_SYNTAX),
    MERR("smtputf8_with_value", "FROM:<a@b> SMTPUTF8=yes", PROTO_ARG_PARAM_SYNTAX),
    /* RFC 3461 §4.3 RET, §4.4 ENVID */
    MOK("rfc3461_s4_3_ret_full", "FROM:<a@b> RET=FULL", "a@b", 0, PROTO_BODY_NONE, false,
        PROTO_RET_FULL, "", ""),
    MOK("rfc3461_s4_3_ret_hdrs_any_case", "FROM:<a@b> ret=Hdrs", "a@b", 0, PROTO_BODY_NONE, false,
        PROTO_RET_HDRS, "", ""),
    MERR("ret_unknown", "FROM:<a@b> RET=NONE", PROTO_ARG_RET_SYNTAX),
    MERR("ret_no_value", "FROM:<a@b> RET", PROTO_ARG_PARAM_SYNTAX),
    MERR("ret_empty_value", "FROM:<a@b> RET=", PROTO_ARG_RET_SYNTAX),
    MOK("rfc3461_s4_4_envid", "FROM:<a@b> ENVID=QQ314159", "a@b", 0, PROTO_BODY_NONE, false,
        PROTO_RET_NONE, "QQ314159", ""),
    MOK("rfc3461_s4_4_envid_xtext", "FROM:<a@b> ENVID=a+2Bb+20c", "a@b", 0, PROTO_BODY_NONE, false,
        PROTO_RET_NONE, "a+b c", ""),
    MERR("B4_envid_crlf", "FROM:<a@b> ENVID=x+0D+0ARCPT", PROTO_ARG_XTEXT),
    MERR("B4_envid_nul", "FROM:<a@b> ENVID=x+00y", PROTO_ARG_XTEXT),
    MERR("B4_envid_lf", "FROM:<a@b> ENVID=+0A", PROTO_ARG_XTEXT),
    MERR("rfc3461_s4_4_envid_not_ascii", "FROM:<a@b> ENVID=+C3+A9", PROTO_ARG_XTEXT),
    MERR("envid_lower_hex", "FROM:<a@b> ENVID=a+2b", PROTO_ARG_XTEXT),
    MERR("envid_lone_plus", "FROM:<a@b> ENVID=a+", PROTO_ARG_XTEXT),
    MERR("envid_no_value", "FROM:<a@b> ENVID", PROTO_ARG_PARAM_SYNTAX),
    MERR("envid_empty_value", "FROM:<a@b> ENVID=", PROTO_ARG_XTEXT),
    /* RFC 4954 §5 AUTH= */
    MOK("rfc4954_s5_auth_null", "FROM:<a@b> AUTH=<>", "a@b", 0, PROTO_BODY_NONE, false,
        PROTO_RET_NONE, "", "<>"),
    MOK("rfc4954_s5_auth_xtext", "FROM:<a@b> AUTH=e+3Dmc2@example.com", "a@b", 0, PROTO_BODY_NONE,
        false, PROTO_RET_NONE, "", "e=mc2@example.com"),
    MERR("B4_auth_crlf", "FROM:<a@b> AUTH=u+0D+0A@x", PROTO_ARG_XTEXT),
    MERR("B4_auth_nul", "FROM:<a@b> AUTH=+00", PROTO_ARG_XTEXT),
    MERR("auth_no_value", "FROM:<a@b> AUTH", PROTO_ARG_PARAM_SYNTAX),
    MERR("auth_empty_value", "FROM:<a@b> AUTH=", PROTO_ARG_XTEXT),
    MERR("smtputf8_empty_value", "FROM:<a@b> SMTPUTF8=", PROTO_ARG_PARAM_SYNTAX),
    MERR("unknown_empty_value", "FROM:<a@b> FOO=", PROTO_ARG_PARAM_UNKNOWN),
    MOK("all_parameters", "FROM:<a@b> SIZE=9 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id1 AUTH=<>",
        "a@b", 9, PROTO_BODY_8BITMIME, true, PROTO_RET_HDRS, "id1", "<>"),
    /* B5: odd parameter syntax */
    MERR("B5_quote_equals", "FROM:<a@b> \"=x", PROTO_ARG_PARAM_SYNTAX),
    MERR("B5_equals_alone", "FROM:<a@b> =", PROTO_ARG_PARAM_SYNTAX),
    MERR("B5_equals_value", "FROM:<a@b> =x", PROTO_ARG_PARAM_SYNTAX),
    MERR("B5_double_equals", "FROM:<a@b> A==", PROTO_ARG_PARAM_SYNTAX),
    MERR("B5_equals_in_value", "FROM:<a@b> SIZE=1=2", PROTO_ARG_PARAM_SYNTAX),
    MERR("B5_quoted_keyword", "FROM:<a@b> \"SIZE\"=1", PROTO_ARG_PARAM_SYNTAX),
    MERR("B5_keyword_leading_hyphen", "FROM:<a@b> -X=1", PROTO_ARG_PARAM_SYNTAX),
    MERR("B5_keyword_underscore", "FROM:<a@b> X_Y=1", PROTO_ARG_PARAM_SYNTAX),
    MERR("B5_duplicate", "FROM:<a@b> SIZE=1 SIZE=2", PROTO_ARG_PARAM_SYNTAX),
    MERR("B5_duplicate_any_case", "FROM:<a@b> BODY=7BIT body=7BIT", PROTO_ARG_PARAM_SYNTAX),
    MERR("B5_duplicate_smtputf8", "FROM:<a@b> SMTPUTF8 SMTPUTF8", PROTO_ARG_PARAM_SYNTAX),
    MERR("B5_duplicate_ret", "FROM:<a@b> RET=FULL RET=HDRS", PROTO_ARG_PARAM_SYNTAX),
    MERR("B5_unknown_parameter", "FROM:<a@b> FOO=bar", PROTO_ARG_PARAM_UNKNOWN),
    MERR("B5_unknown_flag", "FROM:<a@b> XVERP", PROTO_ARG_PARAM_UNKNOWN),
    MERR("B5_rcpt_parameter_on_mail", "FROM:<a@b> NOTIFY=NEVER", PROTO_ARG_PARAM_UNKNOWN),
    MERR("B5_syntax_after_unknown", "FROM:<a@b> FOO=1 A==", PROTO_ARG_PARAM_SYNTAX),
    {"B5_nul_in_value", "FROM:<a@b> SIZE=1\0", 18, 0, PROTO_ARG_PARAM_SYNTAX, NULL, 0,
     PROTO_BODY_NONE, false, PROTO_RET_NONE, NULL, NULL},
    MERR("B5_tab_separator", "FROM:<a@b> SIZE=1\tBODY=7BIT", PROTO_ARG_PARAM_SYNTAX),
    /* B8: broken paths and shapes */
    MERR("B8_no_brackets", "FROM:bla$die%bla@die&bla", PROTO_ARG_SYNTAX),
    MERR("B8_stray_quote", "FROM:<u\"ser>", PROTO_ARG_BAD_PATH),
    MERR("B8_junk_path", "FROM:</@)$@)BLAARGH!@#$$>", PROTO_ARG_BAD_PATH),
    MERR("B8_empty", "FROM:", PROTO_ARG_SYNTAX),
    MERR("B8_params_only", "FROM: BODY=7BIT", PROTO_ARG_SYNTAX),
    MERR("B8_nothing", "", PROTO_ARG_SYNTAX),
    MERR("no_colon", "FROM<a@b>", PROTO_ARG_SYNTAX),
    MERR("space_before_colon", "FROM :<a@b>", PROTO_ARG_SYNTAX),
    MERR("wrong_keyword", "TO:<a@b>", PROTO_ARG_SYNTAX),
    MERR("junk_after_path", "FROM:<a@b>x", PROTO_ARG_SYNTAX),
    MERR("unclosed_path", "FROM:<a@b SIZE=1", PROTO_ARG_BAD_PATH),
    MERR("postmaster_alone_not_a_sender", "FROM:<Postmaster>", PROTO_ARG_BAD_PATH),
    {"A3_nul_in_path", "FROM:<a\0b@x>", 12, 0, PROTO_ARG_BAD_PATH, NULL, 0, PROTO_BODY_NONE, false,
     PROTO_RET_NONE, NULL, NULL},
    MERR("A5_cr_in_path", "FROM:<a\rb@x>", PROTO_ARG_BAD_PATH),
    /* B1, B2: metacharacters are bytes; only the grammar decides */
    MERR("B1_shell_sender", "FROM:<;sleep 66;>", PROTO_ARG_BAD_PATH),
    MOK("B1_quoted_command_substitution", "FROM:<\"$(id)\"@x>", "\"$(id)\"@x", 0, PROTO_BODY_NONE,
        false, PROTO_RET_NONE, "", ""),
    MOK("B2_expansion_sender", "FROM:<${run{/bin/sh}}@localhost>", "${run{/bin/sh}}@localhost", 0,
        PROTO_BODY_NONE, false, PROTO_RET_NONE, "", ""),
};

static void assert_mail_terminated(const struct proto_mail *m)
{
    assert_non_null(memchr(m->envid, '\0', sizeof(m->envid)));
    assert_non_null(memchr(m->auth, '\0', sizeof(m->auth)));
    assert_non_null(memchr(m->path.addr, '\0', sizeof(m->path.addr)));
}

static void test_mail_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
        const struct mail_case *c = &mail_cases[i];
        size_t len = c->len ? c->len : strlen(c->arg);
        char *arg = dup_exact(c->arg, len);
        struct proto_mail m;
        memset(&m, 0x5a, sizeof(m));
        enum proto_arg_status st = proto_parse_mail(arg, len, c->max_size, &m);
        free(arg);
        if (st != c->want)
            fail_msg("case %s: got %d want %d", c->name, st, c->want);
        assert_mail_terminated(&m);
        if (st != PROTO_ARG_OK || c->addr == NULL)
            continue;
        if (strcmp(m.path.addr, c->addr) != 0 || m.size != c->size || m.body != c->body ||
            m.smtputf8 != c->smtputf8 || m.ret != c->ret || strcmp(m.envid, c->envid) != 0 ||
            strcmp(m.auth, c->auth) != 0)
            fail_msg("case %s: got addr [%s] size %llu body %d utf8 %d ret %d envid [%s] auth [%s]",
                     c->name, m.path.addr, (unsigned long long)m.size, m.body, m.smtputf8, m.ret,
                     m.envid, m.auth);
        assert_int_equal(m.size_given, strstr(c->arg, "SIZE=") || strstr(c->arg, "size="));
        assert_int_equal(m.path.is_null, c->addr[0] == '\0');
    }
}

/* B5, B7 and the bounds of ENVID and AUTH, built at run time. */
static void test_mail_generated(void **state)
{
    (void)state;
    static char buf[20000];
    struct proto_mail m;
    size_t n;

    /* PROTO_PARAMS_MAX unknown parameters are unknown; one more is a syntax error (B5). */
    n = (size_t)snprintf(buf, sizeof(buf), "FROM:<a@b>");
    for (int k = 0; k < PROTO_PARAMS_MAX; k++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " X%d=1", k);
    assert_int_equal(proto_parse_mail(buf, n, 0, &m), PROTO_ARG_PARAM_UNKNOWN);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, " X99=1");
    assert_int_equal(proto_parse_mail(buf, n, 0, &m), PROTO_ARG_PARAM_SYNTAX);

    /* B5_hundred_params */
    n = (size_t)snprintf(buf, sizeof(buf), "FROM:<a@b>");
    for (int k = 0; k < 100; k++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " SIZE=%d", k);
    assert_int_equal(proto_parse_mail(buf, n, 0, &m), PROTO_ARG_PARAM_SYNTAX);

    /* B5_10k_value: an unknown parameter, then ENVID and AUTH of 10 KB */
    static const char *const keys[] = {"X-BIG", "ENVID", "AUTH"};
    static const enum proto_arg_status want[] = {PROTO_ARG_PARAM_UNKNOWN, PROTO_ARG_XTEXT,
                                                 PROTO_ARG_XTEXT};
    for (size_t k = 0; k < 3; k++) {
        n = (size_t)snprintf(buf, sizeof(buf), "FROM:<a@b> %s=", keys[k]);
        memset(buf + n, 'v', 10240);
        n += 10240;
        char *arg = dup_exact(buf, n);
        assert_int_equal(proto_parse_mail(arg, n, 0, &m), want[k]);
        assert_mail_terminated(&m);
        free(arg);
    }

    /* RFC 3461 §4.4: ENVID up to 100 characters, decoded */
    for (size_t len = PROTO_ENVID_MAX; len <= PROTO_ENVID_MAX + 1; len++) {
        n = (size_t)snprintf(buf, sizeof(buf), "FROM:<a@b> ENVID=");
        for (size_t k = 0; k < len; k++)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, k % 2 ? "+2B" : "e");
        char *arg = dup_exact(buf, n);
        enum proto_arg_status st = proto_parse_mail(arg, n, 0, &m);
        free(arg);
        assert_int_equal(st, len <= PROTO_ENVID_MAX ? PROTO_ARG_OK : PROTO_ARG_XTEXT);
        if (st == PROTO_ARG_OK)
            assert_int_equal(strlen(m.envid), PROTO_ENVID_MAX);
    }
    for (size_t len = PROTO_AUTH_MAX; len <= PROTO_AUTH_MAX + 1; len++) {
        n = (size_t)snprintf(buf, sizeof(buf), "FROM:<a@b> AUTH=");
        memset(buf + n, 'a', len);
        n += len;
        assert_int_equal(proto_parse_mail(buf, n, 0, &m),
                         len <= PROTO_AUTH_MAX ? PROTO_ARG_OK : PROTO_ARG_XTEXT);
    }

    /* B7: local part over 64, domain over 255, path over 256 */
    n = (size_t)snprintf(buf, sizeof(buf), "FROM:<%065d@x>", 0);
    assert_int_equal(proto_parse_mail(buf, n, 0, &m), PROTO_ARG_PATH_TOO_LONG);
    n = (size_t)snprintf(buf, sizeof(buf), "FROM:<%064d@x>", 0);
    assert_int_equal(proto_parse_mail(buf, n, 0, &m), PROTO_ARG_OK);
    n = (size_t)snprintf(buf, sizeof(buf), "FROM:<a@");
    for (int k = 0; k < 5; k++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%050d", k ? "." : "", 0);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "xx>"); /* a 256-octet domain */
    assert_int_equal(proto_parse_mail(buf, n, 0, &m), PROTO_ARG_PATH_TOO_LONG);
    n = (size_t)snprintf(buf, sizeof(buf), "FROM:<%060d@", 0);
    for (int k = 0; k < 4; k++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%050d", k ? "." : "", 0);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, ">"); /* path 1+60+1+203+1 = 266 */
    assert_int_equal(proto_parse_mail(buf, n, 0, &m), PROTO_ARG_PATH_TOO_LONG);
}

/* ---- proto_parse_rcpt ---- */

struct rcpt_case {
    const char *name;
    const char *arg;
    bool allow_utf8;
    enum proto_arg_status want;
    const char *addr; /* checked on OK */
    unsigned notify;
    const char *orcpt;
};

#define ROK(name, arg, utf8, addr, notify, orcpt)                                                  \
    {                                                                                              \
        name, arg, utf8, PROTO_ARG_OK, addr, notify, orcpt                                         \
    }
#define RERR(name, arg, want)                                                                      \
    {                                                                                              \
        name, arg, false, want, NULL, 0, NULL                                                      \
    }

static const struct rcpt_case rcpt_cases[] = {
    ROK("plain", "TO:<a@b>", false, "a@b", 0, ""),
    ROK("A11_to_lower_case", "to:<a@b>", false, "a@b", 0, ""),
    ROK("A11_space_after_colon", "TO:   <a@b>", false, "a@b", 0, ""),
    ROK("rfc5321_s4_1_1_3_postmaster", "TO:<Postmaster>", false, "Postmaster", 0, ""),
    ROK("rfc5321_s4_1_1_3_postmaster_any_case", "TO:<postMASTER>", false, "postMASTER", 0, ""),
    ROK("route_stripped", "TO:<@relay:u@d>", false, "u@d", 0, ""),
    RERR("null_path_not_a_recipient", "TO:<>", PROTO_ARG_BAD_PATH),
    RERR("A6_utf8_undeclared", "TO:<j\xc3\xb6@x>", PROTO_ARG_NEED_SMTPUTF8),
    ROK("rfc6531_utf8_declared", "TO:<j\xc3\xb6@x>", true, "j\xc3\xb6@x", 0, ""),
    RERR("A6_bad_utf8_undeclared", "TO:<j\xc3@x>", PROTO_ARG_NEED_SMTPUTF8),
    {"A6_bad_utf8_declared", "TO:<j\xc3@x>", true, PROTO_ARG_BAD_UTF8, NULL, 0, NULL},
    /* RFC 3461 §4.1 NOTIFY */
    ROK("rfc3461_s4_1_never", "TO:<a@b> NOTIFY=NEVER", false, "a@b", PROTO_NOTIFY_NEVER, ""),
    ROK("rfc3461_s4_1_list", "TO:<a@b> NOTIFY=SUCCESS,FAILURE,DELAY", false, "a@b",
        PROTO_NOTIFY_SUCCESS | PROTO_NOTIFY_FAILURE | PROTO_NOTIFY_DELAY, ""),
    ROK("rfc3461_s4_1_any_case", "TO:<a@b> notify=failure,Delay", false, "a@b",
        PROTO_NOTIFY_FAILURE | PROTO_NOTIFY_DELAY, ""),
    RERR("notify_never_not_alone", "TO:<a@b> NOTIFY=NEVER,SUCCESS", PROTO_ARG_NOTIFY_SYNTAX),
    RERR("notify_never_last", "TO:<a@b> NOTIFY=DELAY,NEVER", PROTO_ARG_NOTIFY_SYNTAX),
    RERR("notify_repeated", "TO:<a@b> NOTIFY=SUCCESS,SUCCESS", PROTO_ARG_NOTIFY_SYNTAX),
    RERR("notify_trailing_comma", "TO:<a@b> NOTIFY=SUCCESS,", PROTO_ARG_NOTIFY_SYNTAX),
    RERR("notify_leading_comma", "TO:<a@b> NOTIFY=,SUCCESS", PROTO_ARG_NOTIFY_SYNTAX),
    RERR("notify_unknown", "TO:<a@b> NOTIFY=SOMETIMES", PROTO_ARG_NOTIFY_SYNTAX),
    RERR("notify_no_value", "TO:<a@b> NOTIFY", PROTO_ARG_PARAM_SYNTAX),
    RERR("notify_empty_value", "TO:<a@b> NOTIFY=", PROTO_ARG_NOTIFY_SYNTAX),
    /* RFC 3461 §4.2 ORCPT */
    ROK("rfc3461_s4_2_orcpt", "TO:<a@b> ORCPT=rfc822;user+40example.org", false, "a@b", 0,
        "rfc822;user@example.org"),
    ROK("rfc3461_s4_2_orcpt_raw_at", "TO:<a@b> ORCPT=rfc822;a@b", false, "a@b", 0, "rfc822;a@b"),
    RERR("orcpt_empty_address", "TO:<a@b> ORCPT=rfc822;", PROTO_ARG_XTEXT),
    RERR("orcpt_empty_value", "TO:<a@b> ORCPT=", PROTO_ARG_XTEXT),
    ROK("orcpt_and_notify", "TO:<a@b> NOTIFY=NEVER ORCPT=rfc822;a@b", false, "a@b",
        PROTO_NOTIFY_NEVER, "rfc822;a@b"),
    RERR("B4_orcpt_crlf", "TO:<a@b> ORCPT=rfc822;a+0D+0Ab", PROTO_ARG_XTEXT),
    RERR("B4_orcpt_nul", "TO:<a@b> ORCPT=rfc822;a+00b", PROTO_ARG_XTEXT),
    RERR("rfc3461_s4_2_orcpt_not_ascii", "TO:<a@b> ORCPT=rfc822;+C3+A9", PROTO_ARG_XTEXT),
    RERR("orcpt_no_type", "TO:<a@b> ORCPT=;a@b", PROTO_ARG_XTEXT),
    RERR("orcpt_no_semicolon", "TO:<a@b> ORCPT=rfc822", PROTO_ARG_XTEXT),
    RERR("orcpt_type_not_atom", "TO:<a@b> ORCPT=rf(c;a@b", PROTO_ARG_XTEXT),
    RERR("orcpt_bad_xtext", "TO:<a@b> ORCPT=rfc822;a+4", PROTO_ARG_XTEXT),
    RERR("orcpt_no_value", "TO:<a@b> ORCPT", PROTO_ARG_PARAM_SYNTAX),
    /* parameters that belong to MAIL, and B5 */
    RERR("B5_mail_parameter_on_rcpt", "TO:<a@b> SIZE=10", PROTO_ARG_PARAM_UNKNOWN),
    RERR("B5_smtputf8_on_rcpt", "TO:<a@b> SMTPUTF8", PROTO_ARG_PARAM_UNKNOWN),
    RERR("B5_duplicate_notify", "TO:<a@b> NOTIFY=NEVER notify=NEVER", PROTO_ARG_PARAM_SYNTAX),
    RERR("B5_double_equals", "TO:<a@b> NOTIFY==NEVER", PROTO_ARG_PARAM_SYNTAX),
    RERR("B5_quote", "TO:<a@b> \"=x", PROTO_ARG_PARAM_SYNTAX),
    /* shapes, B1, B2, B8 */
    RERR("B8_empty", "TO:", PROTO_ARG_SYNTAX),
    RERR("B8_no_brackets", "TO:a@b", PROTO_ARG_SYNTAX),
    RERR("B8_stray_quote", "TO:<u\"ser>", PROTO_ARG_BAD_PATH),
    RERR("wrong_keyword", "FROM:<a@b>", PROTO_ARG_SYNTAX),
    RERR("B1_shell_recipient", "TO:<;sleep 66;>", PROTO_ARG_BAD_PATH),
    ROK("B2_expansion_recipient", "TO:<${run{/bin/sh}}@localhost>", false,
        "${run{/bin/sh}}@localhost", 0, ""),
    ROK("B2_format_recipient", "TO:<%s%n@x>", false, "%s%n@x", 0, ""),
    RERR("B2_command_substitution_unquoted", "TO:<$(id)@x>", PROTO_ARG_BAD_PATH),
};

static void test_rcpt_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
        const struct rcpt_case *c = &rcpt_cases[i];
        size_t len = strlen(c->arg);
        char *arg = dup_exact(c->arg, len);
        struct proto_rcpt r;
        memset(&r, 0x5a, sizeof(r));
        enum proto_arg_status st = proto_parse_rcpt(arg, len, c->allow_utf8, &r);
        free(arg);
        if (st != c->want)
            fail_msg("case %s: got %d want %d", c->name, st, c->want);
        assert_non_null(memchr(r.orcpt, '\0', sizeof(r.orcpt)));
        if (st != PROTO_ARG_OK)
            continue;
        if (strcmp(r.path.addr, c->addr) != 0 || r.notify != c->notify ||
            strcmp(r.orcpt, c->orcpt) != 0)
            fail_msg("case %s: got [%s] %#x [%s]", c->name, r.path.addr, r.notify, r.orcpt);
    }
}

static void test_rcpt_orcpt_bound(void **state)
{
    (void)state;
    static char buf[2048];
    struct proto_rcpt r;
    /* RFC 3461 §4.2: the whole ORCPT value may be up to 500 characters. */
    for (size_t total = PROTO_ORCPT_MAX; total <= PROTO_ORCPT_MAX + 1; total++) {
        size_t n = (size_t)snprintf(buf, sizeof(buf), "TO:<a@b> ORCPT=rfc822;");
        memset(buf + n, 'x', total - 7);
        n += total - 7;
        assert_int_equal(proto_parse_rcpt(buf, n, false, &r),
                         total <= PROTO_ORCPT_MAX ? PROTO_ARG_OK : PROTO_ARG_XTEXT);
        if (total <= PROTO_ORCPT_MAX)
            assert_int_equal(strlen(r.orcpt), PROTO_ORCPT_MAX);
    }
    /* An addr-type longer than the whole bound. */
    size_t n = (size_t)snprintf(buf, sizeof(buf), "TO:<a@b> ORCPT=");
    memset(buf + n, 't', 600);
    n += 600;
    buf[n++] = ';';
    assert_int_equal(proto_parse_rcpt(buf, n, false, &r), PROTO_ARG_XTEXT);
}

/* ---- proto_parse_bdat ---- */

struct bdat_case {
    const char *name;
    const char *arg;
    size_t len;
    bool ok;
    uint64_t size;
    bool last;
};

static const struct bdat_case bdat_cases[] = {
    {"rfc3030_size", "10", 0, true, 10, false},
    {"rfc3030_last", "10 LAST", 0, true, 10, true},
    {"rfc3030_last_any_case", "10 last", 0, true, 10, true},
    {"D4_zero", "0", 0, true, 0, false},
    {"D4_zero_last", "0 LAST", 0, true, 0, true},
    {"extra_spaces", "10  LAST  ", 0, true, 10, true},
    {"trailing_space", "7 ", 0, true, 7, false},
    {"int63_max", "9223372036854775807", 0, true, INT64_MAX, false},
    {"leading_zeros", "000012", 0, true, 12, false},
    {"D3_letters", "abc", 0, false, 0, false},
    {"D3_negative", "-1", 0, false, 0, false},
    {"D3_twenty_nines", "99999999999999999999", 0, false, 0, false},
    {"D3_int63_max_plus_one", "9223372036854775808", 0, false, 0, false},
    {"D3_notlast", "5 NOTLAST", 0, false, 0, false},
    {"D3_lastx", "5 LASTX", 0, false, 0, false},
    {"D3_last_then_junk", "5 LAST x", 0, false, 0, false},
    {"glued_last", "5LAST", 0, false, 0, false},
    {"empty", "", 0, false, 0, false},
    {"last_only", "LAST", 0, false, 0, false},
    {"plus", "+5", 0, false, 0, false},
    {"hex", "0x10", 0, false, 0, false},
    {"leading_space", " 5", 0, false, 0, false},
    {"A3_nul", "5\0", 2, false, 0, false},
    {"tab", "5\tLAST", 0, false, 0, false},
};

static void test_bdat_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++) {
        const struct bdat_case *c = &bdat_cases[i];
        size_t len = c->len ? c->len : strlen(c->arg);
        char *arg = dup_exact(c->arg, len);
        uint64_t size = 77;
        bool last = true;
        bool ok = proto_parse_bdat(arg, len, &size, &last);
        free(arg);
        if (ok != c->ok || size != c->size || last != c->last)
            fail_msg("case %s: got %d %llu %d", c->name, ok, (unsigned long long)size, last);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_scan_table),
        cmocka_unit_test(test_A2_megabyte_without_crlf),
        cmocka_unit_test(test_line_scan_every_split),
        cmocka_unit_test(test_A1_A2_long_lines_every_split),
        cmocka_unit_test(test_command_table),
        cmocka_unit_test(test_helo_table),
        cmocka_unit_test(test_mail_table),
        cmocka_unit_test(test_mail_generated),
        cmocka_unit_test(test_rcpt_table),
        cmocka_unit_test(test_rcpt_orcpt_bound),
        cmocka_unit_test(test_bdat_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
