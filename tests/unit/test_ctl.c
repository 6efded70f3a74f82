/* Unit tests for queue/ctl: every line kind formats to the expected wire text, parses back
 * to the same values and formats to the same line again; every malformed line is refused
 * (unknown words, bad ids, bad or non-canonical xtext, CR/LF/NUL smuggled through xtext
 * (HOSTILE-INPUTS B4, A3), over-long lines (A1), numbers out of range, trailing garbage);
 * formatters refuse bad values, report ENOSPC exactly, and cut only the reason (J2). */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/ctl.h"

#define T_ID "0ABCDEFGHIJ0123456XY"
#define T_ID2 "ZZZZZZZZZZ0000000000"

/* ---- requests ------------------------------------------------------------------------ */

struct req_case {
    enum ctl_verb verb;
    const char *id;
    const char *wire;
};

static const struct req_case req_cases[] = {
    {CTL_LIST, "", "list\n"},
    {CTL_SHOW, T_ID, "show " T_ID "\n"},
    {CTL_FLUSH, "", "flush\n"},
    {CTL_FLUSH, T_ID, "flush " T_ID "\n"},
    {CTL_HOLD, T_ID, "hold " T_ID "\n"},
    {CTL_RELEASE, T_ID2, "release " T_ID2 "\n"},
    {CTL_DELETE, T_ID, "delete " T_ID "\n"},
    {CTL_SUBMIT, "", "submit\n"},
};

static void test_request_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof req_cases / sizeof req_cases[0]; i++) {
        const struct req_case *c = &req_cases[i];
        struct ctl_request rq = {.verb = c->verb};
        snprintf(rq.id, sizeof rq.id, "%s", c->id);
        char out[CTL_LINE_MAX];
        size_t len = 0;
        if (ctl_request_format(&rq, out, sizeof out, &len) != 0)
            fail_msg("case %zu: format failed", i);
        assert_int_equal(len, strlen(c->wire));
        assert_memory_equal(out, c->wire, len);

        struct ctl_request back;
        memset(&back, 0x55, sizeof back);
        assert_int_equal(ctl_request_parse(out, len - 1, &back), 0);
        assert_int_equal(back.verb, c->verb);
        assert_string_equal(back.id, c->id);

        /* Exactly enough room works; one octet less is ENOSPC. */
        char exact[64];
        assert_int_equal(ctl_request_format(&rq, exact, len, &len), 0);
        errno = 0;
        assert_int_equal(ctl_request_format(&rq, exact, len - 1, &len), -1);
        assert_int_equal(errno, ENOSPC);
    }
}

struct bad_req_case {
    const char *name;
    const char *line;
    size_t len; /* 0: strlen */
};

static const struct bad_req_case bad_req_cases[] = {
    {"empty", "", 0},
    {"unknown_verb", "purge", 0},
    {"unknown_verb_with_id", "purge " T_ID, 0},
    {"upper_case_verb", "LIST", 0},
    {"verb_prefix", "lis", 0},
    {"verb_longer", "listx", 0},
    {"list_with_id", "list " T_ID, 0},
    {"submit_with_id", "submit " T_ID, 0},
    {"show_without_id", "show", 0},
    {"hold_without_id", "hold", 0},
    {"release_without_id", "release", 0},
    {"delete_without_id", "delete", 0},
    {"id_short", "show 0ABCDEFGHIJ0123456X", 0},
    {"id_long", "show 0ABCDEFGHIJ0123456XYZ", 0},
    {"id_lower_case", "show 0abcdefghij0123456xy", 0},
    {"id_path_traversal", "delete ../../../etc/passwd", 0},
    {"id_slash", "delete 0ABCDEFGHIJ01234/XY", 0},
    {"trailing_space", "list ", 0},
    {"leading_space", " list", 0},
    {"double_space", "show  " T_ID, 0},
    {"trailing_garbage", "show " T_ID " x", 0},
    {"A4_cr_in_line", "list\r", 0},
    {"A3_nul_in_id",
     "show 0ABCDEFGHIJ\0"
     "123456XY",
     26},
    {"A3_nul_after_verb", "list\0", 5},
    {"tab_separator", "show\t" T_ID, 0},
};

static void test_request_parse_refuses(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_req_cases / sizeof bad_req_cases[0]; i++) {
        const struct bad_req_case *c = &bad_req_cases[i];
        size_t len = c->len ? c->len : strlen(c->line);
        struct ctl_request rq;
        errno = 0;
        if (ctl_request_parse(c->line, len, &rq) != -1 || errno != EINVAL)
            fail_msg("case %s: accepted", c->name);
    }
}

static void test_request_parse_A1_over_long(void **state)
{
    (void)state;
    char *line = malloc(CTL_LINE_MAX + 10);
    assert_non_null(line);
    memset(line, 'A', CTL_LINE_MAX + 10);
    memcpy(line, "show ", 5);
    struct ctl_request rq;
    errno = 0;
    assert_int_equal(ctl_request_parse(line, CTL_LINE_MAX + 10, &rq), -1);
    assert_int_equal(errno, EINVAL);
    free(line);
}

struct bad_req_fmt_case {
    const char *name;
    int verb;
    const char *id;
};

static const struct bad_req_fmt_case bad_req_fmt_cases[] = {
    {"verb_out_of_range", 99, ""},
    {"verb_negative", -1, ""},
    {"show_no_id", CTL_SHOW, ""},
    {"delete_no_id", CTL_DELETE, ""},
    {"list_with_id", CTL_LIST, T_ID},
    {"submit_with_id", CTL_SUBMIT, T_ID},
    {"bad_id_chars", CTL_HOLD, "0ABCDEFGHIJ0123456x-"},
    {"short_id", CTL_HOLD, "0ABC"},
    {"B4_crlf_id", CTL_FLUSH, "0ABCDEFGHIJ01234\r\nXY"},
};

static void test_request_format_refuses(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_req_fmt_cases / sizeof bad_req_fmt_cases[0]; i++) {
        const struct bad_req_fmt_case *c = &bad_req_fmt_cases[i];
        struct ctl_request rq;
        memset(&rq, 0, sizeof rq);
        rq.verb = (enum ctl_verb)c->verb;
        snprintf(rq.id, sizeof rq.id, "%s", c->id);
        char out[64];
        size_t len;
        errno = 0;
        if (ctl_request_format(&rq, out, sizeof out, &len) != -1 || errno != EINVAL)
            fail_msg("case %s: formatted", c->name);
    }
    /* An id field without its NUL is refused, not read past. */
    struct ctl_request rq = {.verb = CTL_SHOW};
    memset(rq.id, 'A', sizeof rq.id);
    char out[64];
    size_t len;
    errno = 0;
    assert_int_equal(ctl_request_format(&rq, out, sizeof out, &len), -1);
    assert_int_equal(errno, EINVAL);
}

/* ---- reply and submit lines ---------------------------------------------------------- */

/* One line of any kind: the values, how to format them, and the wire text. */
struct line_case {
    const char *name;
    enum ctl_line_kind kind;
    struct ctl_msg_info msg;
    struct ctl_rcpt_info rcpt;
    const char *code;
    const char *text;
    uint64_t size;
    const char *wire;
};

static const struct line_case line_cases[] = {
    {"msg_queued",
     CTL_LINE_MSG,
     {T_ID, 1700000000, 1234, false, "alice@example.org"},
     {0},
     NULL,
     NULL,
     0,
     "msg " T_ID " 1700000000 1234 queued alice@example.org\n"},
    {"msg_held",
     CTL_LINE_MSG,
     {T_ID, 0, 0, true, "a@b"},
     {0},
     NULL,
     NULL,
     0,
     "msg " T_ID " 0 0 held a@b\n"},
    {"msg_null_sender",
     CTL_LINE_MSG,
     {T_ID, 5, 6, false, ""},
     {0},
     NULL,
     NULL,
     0,
     "msg " T_ID " 5 6 queued\n"},
    {"msg_max_numbers",
     CTL_LINE_MSG,
     {T_ID, INT64_MAX, UINT64_MAX, false, "x"},
     {0},
     NULL,
     NULL,
     0,
     "msg " T_ID " 9223372036854775807 18446744073709551615 queued x\n"},
    {"msg_sender_escaped",
     CTL_LINE_MSG,
     {T_ID, 1, 2, false, "\"a b\"+x=y@\xc3\xa9.org"},
     {0},
     NULL,
     NULL,
     0,
     "msg " T_ID " 1 2 queued \"a+20b\"+2Bx+3Dy@+C3+A9.org\n"},
    {"rcpt_pending",
     CTL_LINE_RCPT,
     {0},
     {"bob@example.net", CTL_RCPT_PENDING, 0, 0, ""},
     NULL,
     NULL,
     0,
     "rcpt bob@example.net pending 0 0\n"},
    {"rcpt_deferred",
     CTL_LINE_RCPT,
     {0},
     {"bob@example.net", CTL_RCPT_DEFERRED, 3, 1700000300, "4.4.1 connect to mx: refused"},
     NULL,
     NULL,
     0,
     "rcpt bob@example.net deferred 3 1700000300 4.4.1+20connect+20to+20mx:+20refused\n"},
    {"rcpt_delivered",
     CTL_LINE_RCPT,
     {0},
     {"c@d", CTL_RCPT_DELIVERED, 1, 0, ""},
     NULL,
     NULL,
     0,
     "rcpt c@d delivered 1 0\n"},
    {"rcpt_failed",
     CTL_LINE_RCPT,
     {0},
     {"c@d", CTL_RCPT_FAILED, 4294967295u, INT64_MAX, "5.1.1 no"},
     NULL,
     NULL,
     0,
     "rcpt c@d failed 4294967295 9223372036854775807 5.1.1+20no\n"},
    {"ok_plain", CTL_LINE_OK, {0}, {0}, NULL, "", 0, "ok\n"},
    {"ok_queue_id", CTL_LINE_OK, {0}, {0}, NULL, T_ID, 0, "ok " T_ID "\n"},
    {"ok_text", CTL_LINE_OK, {0}, {0}, NULL, "3 messages", 0, "ok 3+20messages\n"},
    {"err_text",
     CTL_LINE_ERR,
     {0},
     {0},
     "5.1.0",
     "no such message",
     0,
     "err 5.1.0 no+20such+20message\n"},
    {"err_no_text", CTL_LINE_ERR, {0}, {0}, "4.3.0", "", 0, "err 4.3.0\n"},
    {"err_rfc3463_three_digits", CTL_LINE_ERR, {0}, {0}, "4.999.123", "x", 0, "err 4.999.123 x\n"},
    {"from_sender", CTL_LINE_FROM, {0}, {0}, NULL, "root@mx.test", 0, "from root@mx.test\n"},
    {"from_null_sender", CTL_LINE_FROM, {0}, {0}, NULL, "", 0, "from\n"},
    {"to_rcpt", CTL_LINE_TO, {0}, {0}, NULL, "bob@mx.test", 0, "rcpt bob@mx.test\n"},
    {"to_rcpt_plus", CTL_LINE_TO, {0}, {0}, NULL, "bob+tag@mx.test", 0, "rcpt bob+2Btag@mx.test\n"},
    {"data_zero", CTL_LINE_DATA, {0}, {0}, NULL, NULL, 0, "data 0\n"},
    {"data_max", CTL_LINE_DATA, {0}, {0}, NULL, NULL, UINT64_MAX, "data 18446744073709551615\n"},
};

static int t_format(const struct line_case *c, char *out, size_t cap, size_t *len)
{
    switch (c->kind) {
    case CTL_LINE_MSG:
        return ctl_msg_format(&c->msg, out, cap, len);
    case CTL_LINE_RCPT:
        return ctl_rcpt_format(&c->rcpt, out, cap, len);
    case CTL_LINE_OK:
        return ctl_reply_format(true, NULL, c->text, out, cap, len);
    case CTL_LINE_ERR:
        return ctl_reply_format(false, c->code, c->text, out, cap, len);
    case CTL_LINE_FROM:
        return ctl_submit_from_format(c->text, out, cap, len);
    case CTL_LINE_TO:
        return ctl_submit_rcpt_format(c->text, out, cap, len);
    case CTL_LINE_DATA:
        return ctl_submit_data_format(c->size, out, cap, len);
    }
    return -1;
}

static void t_check_parsed(const struct line_case *c, const struct ctl_line *l)
{
    assert_int_equal(l->kind, c->kind);
    switch (c->kind) {
    case CTL_LINE_MSG:
        assert_string_equal(l->msg.id, c->msg.id);
        assert_int_equal(l->msg.arrival, c->msg.arrival);
        assert_true(l->msg.size == c->msg.size);
        assert_int_equal(l->msg.held, c->msg.held);
        assert_string_equal(l->msg.sender, c->msg.sender);
        break;
    case CTL_LINE_RCPT:
        assert_string_equal(l->rcpt.addr, c->rcpt.addr);
        assert_int_equal(l->rcpt.state, c->rcpt.state);
        assert_int_equal(l->rcpt.attempts, c->rcpt.attempts);
        assert_int_equal(l->rcpt.next_try, c->rcpt.next_try);
        assert_string_equal(l->rcpt.reason, c->rcpt.reason);
        break;
    case CTL_LINE_ERR:
        assert_string_equal(l->code, c->code);
        assert_string_equal(l->text, c->text);
        break;
    case CTL_LINE_OK:
    case CTL_LINE_FROM:
    case CTL_LINE_TO:
        assert_string_equal(l->text, c->text);
        break;
    case CTL_LINE_DATA:
        assert_true(l->size == c->size);
        break;
    }
}

static void test_line_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof line_cases / sizeof line_cases[0]; i++) {
        const struct line_case *c = &line_cases[i];
        char out[CTL_LINE_MAX];
        size_t len = 0;
        if (t_format(c, out, sizeof out, &len) != 0)
            fail_msg("case %s: format failed", c->name);
        if (len != strlen(c->wire) || memcmp(out, c->wire, len) != 0)
            fail_msg("case %s: got %.*s", c->name, (int)len, out);

        struct ctl_line l;
        char buf[CTL_LINE_MAX];
        if (ctl_line_parse(out, len - 1, &l, buf, len) != 0)
            fail_msg("case %s: parse failed", c->name);
        t_check_parsed(c, &l);

        /* Formatting the parsed values gives the same line back. */
        struct line_case again = *c;
        again.msg = l.msg;
        again.rcpt = l.rcpt;
        again.code = l.code;
        again.text = l.text;
        again.size = l.size;
        char out2[CTL_LINE_MAX];
        size_t len2 = 0;
        assert_int_equal(t_format(&again, out2, sizeof out2, &len2), 0);
        assert_int_equal(len2, len);
        assert_memory_equal(out2, out, len);

        /* Exact room under ASan: a heap block of len octets, then one fewer. */
        char *exact = malloc(len);
        assert_non_null(exact);
        assert_int_equal(t_format(c, exact, len, &len2), 0);
        errno = 0;
        if (t_format(c, exact, len - 1, &len2) != -1 || errno != ENOSPC)
            fail_msg("case %s: no ENOSPC one octet short", c->name);
        free(exact);
    }
}

static void test_line_parse_small_buffer(void **state)
{
    (void)state;
    const char line[] = "ok abc";
    struct ctl_line l;
    char buf[8];
    errno = 0;
    assert_int_equal(ctl_line_parse(line, 6, &l, buf, 6), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(ctl_line_parse(line, 6, &l, buf, 7), 0);
    assert_string_equal(l.text, "abc");
}

struct bad_line_case {
    const char *name;
    const char *line;
    size_t len; /* 0: strlen */
};

static const struct bad_line_case bad_line_cases[] = {
    {"empty", "", 0},
    {"unknown_word", "hello", 0},
    {"upper_case_word", "OK", 0},
    {"ok_trailing_space", "ok ", 0},
    {"ok_two_words", "ok a b", 0},
    {"ok_raw_space_text", "ok  a", 0},
    {"leading_space", " ok", 0},
    {"B4_crlf_xtext_ok", "ok a+0D+0Ab", 0},
    {"B4_cr_xtext_from", "from a+0D@b", 0},
    {"B4_lf_xtext_rcpt", "rcpt a+0A@b", 0},
    {"A3_nul_xtext_to", "rcpt a+00@b", 0},
    {"B4_tab_xtext", "ok a+09b", 0},
    {"B4_del_xtext", "ok a+7Fb", 0},
    {"A3_raw_nul", "ok a\0b", 6},
    {"A4_raw_cr", "ok a\rb", 0},
    {"raw_lf", "ok a\nb", 0},
    {"raw_high_byte", "ok \xc3\xa9", 0},
    {"raw_equals", "ok a=b", 0},
    {"xtext_lower_hex", "ok a+2bb", 0},
    {"xtext_plus_short", "ok a+2", 0},
    {"xtext_plus_end", "ok a+", 0},
    {"xtext_plus_not_hex", "ok +GG", 0},
    {"xtext_needless_escape", "ok +41", 0},
    {"xtext_needless_escape_at", "rcpt a+40b", 0},
    {"err_no_code", "err", 0},
    {"err_bad_code_class_2", "err 2.0.0 x", 0},
    {"err_bad_code_class_3", "err 3.0.0", 0},
    {"err_bad_code_four_digits", "err 4.1234.0 x", 0},
    {"err_bad_code_missing_detail", "err 4.1. x", 0},
    {"err_bad_code_missing_subject", "err 4..1 x", 0},
    {"err_bad_code_no_dots", "err 450 x", 0},
    {"err_bad_code_trailing", "err 4.1.1x y", 0},
    {"err_bad_code_letters", "err 4.a.1 y", 0},
    {"err_trailing_garbage", "err 4.1.1 a b", 0},
    {"msg_few_fields", "msg " T_ID " 1 2", 0},
    {"msg_bad_id", "msg 0ABCDEFGHIJ0123456Xy 1 2 queued", 0},
    {"msg_bad_state", "msg " T_ID " 1 2 frozen", 0},
    {"msg_negative_arrival", "msg " T_ID " -1 2 queued", 0},
    {"msg_plus_number", "msg " T_ID " +1 2 queued", 0},
    {"msg_leading_zero", "msg " T_ID " 01 2 queued", 0},
    {"msg_arrival_over_int64", "msg " T_ID " 9223372036854775808 2 queued", 0},
    {"msg_size_over_uint64", "msg " T_ID " 1 18446744073709551616 queued", 0},
    {"msg_size_huge", "msg " T_ID " 1 999999999999999999999999 queued", 0},
    {"msg_hex_number", "msg " T_ID " 0x10 2 queued", 0},
    {"msg_trailing_garbage", "msg " T_ID " 1 2 queued a b", 0},
    {"msg_bad_sender_xtext", "msg " T_ID " 1 2 queued a+0Ab", 0},
    {"rcpt_three_fields", "rcpt a@b pending", 0},
    {"rcpt_four_fields", "rcpt a@b pending 0", 0},
    {"rcpt_bad_state", "rcpt a@b waiting 0 0", 0},
    {"rcpt_attempts_over_uint", "rcpt a@b deferred 4294967296 0", 0},
    {"rcpt_next_try_negative", "rcpt a@b deferred 1 -5", 0},
    {"rcpt_trailing_garbage", "rcpt a@b failed 1 0 why more", 0},
    {"rcpt_B4_reason", "rcpt a@b failed 1 0 a+0D+0AQUIT", 0},
    {"rcpt_empty_addr_xtext", "rcpt  pending 0 0", 0},
    {"from_two_values", "from a b", 0},
    {"data_missing", "data", 0},
    {"data_negative", "data -1", 0},
    {"data_leading_zero", "data 007", 0},
    {"data_over_uint64", "data 18446744073709551616", 0},
    {"data_trailing_garbage", "data 12 x", 0},
    {"data_letters", "data 12k", 0},
    {"request_word_as_reply", "list", 0},
};

static void test_line_parse_refuses(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_line_cases / sizeof bad_line_cases[0]; i++) {
        const struct bad_line_case *c = &bad_line_cases[i];
        size_t len = c->len ? c->len : strlen(c->line);
        struct ctl_line l;
        char buf[CTL_LINE_MAX];
        errno = 0;
        if (ctl_line_parse(c->line, len, &l, buf, sizeof buf) != -1 || errno != EINVAL)
            fail_msg("case %s: accepted", c->name);
    }
}

/* A1: a line of CTL_LINE_MAX octets without its LF is one too many. */
static void test_line_parse_A1_over_long(void **state)
{
    (void)state;
    size_t n = CTL_LINE_MAX;
    char *line = malloc(n);
    char *buf = malloc(n + 1);
    assert_non_null(line);
    assert_non_null(buf);
    memset(line, 'a', n);
    memcpy(line, "ok ", 3);
    struct ctl_line l;
    errno = 0;
    assert_int_equal(ctl_line_parse(line, n, &l, buf, n + 1), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(ctl_line_parse(line, n - 1, &l, buf, n + 1), 0);
    assert_int_equal(strlen(l.text), n - 4);
    free(line);
    free(buf);
}

struct bad_fmt_case {
    const char *name;
    struct line_case c;
};

static const struct bad_fmt_case bad_fmt_cases[] = {
    {"msg_null_id", {.kind = CTL_LINE_MSG, .msg = {NULL, 1, 1, false, "a"}}},
    {"msg_bad_id", {.kind = CTL_LINE_MSG, .msg = {"x", 1, 1, false, "a"}}},
    {"msg_negative_arrival", {.kind = CTL_LINE_MSG, .msg = {T_ID, -1, 1, false, "a"}}},
    {"msg_B4_sender_crlf", {.kind = CTL_LINE_MSG, .msg = {T_ID, 1, 1, false, "a\r\nb"}}},
    {"rcpt_null_addr", {.kind = CTL_LINE_RCPT, .rcpt = {NULL, CTL_RCPT_PENDING, 0, 0, ""}}},
    {"rcpt_empty_addr", {.kind = CTL_LINE_RCPT, .rcpt = {"", CTL_RCPT_PENDING, 0, 0, ""}}},
    {"rcpt_B4_addr_lf", {.kind = CTL_LINE_RCPT, .rcpt = {"a\n@b", CTL_RCPT_PENDING, 0, 0, ""}}},
    {"rcpt_bad_state", {.kind = CTL_LINE_RCPT, .rcpt = {"a@b", (enum ctl_rcpt_state)9, 0, 0, ""}}},
    {"rcpt_negative_next_try",
     {.kind = CTL_LINE_RCPT, .rcpt = {"a@b", CTL_RCPT_DEFERRED, 0, -1, ""}}},
    {"ok_B4_text", {.kind = CTL_LINE_OK, .text = "a\r\nerr 5.0.0 forged"}},
    {"err_null_code", {.kind = CTL_LINE_ERR, .code = NULL, .text = "x"}},
    {"err_code_class_2", {.kind = CTL_LINE_ERR, .code = "2.0.0", .text = "x"}},
    {"err_code_with_space", {.kind = CTL_LINE_ERR, .code = "4.0.0 x", .text = "x"}},
    {"err_B4_text", {.kind = CTL_LINE_ERR, .code = "4.0.0", .text = "x\ny"}},
    {"from_null", {.kind = CTL_LINE_FROM, .text = NULL}},
    {"from_B4_tab", {.kind = CTL_LINE_FROM, .text = "a\tb"}},
    {"to_null", {.kind = CTL_LINE_TO, .text = NULL}},
    {"to_empty", {.kind = CTL_LINE_TO, .text = ""}},
    {"to_B4_cr", {.kind = CTL_LINE_TO, .text = "a\r@b"}},
};

static void test_format_refuses(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_fmt_cases / sizeof bad_fmt_cases[0]; i++) {
        char out[CTL_LINE_MAX];
        size_t len;
        errno = 0;
        if (t_format(&bad_fmt_cases[i].c, out, sizeof out, &len) != -1 || errno != EINVAL)
            fail_msg("case %s: formatted", bad_fmt_cases[i].name);
    }
}

/* Values other than the reason are never cut: a line over CTL_LINE_MAX is ENOSPC even with
 * a larger buffer. */
static void test_format_long_value_enospc(void **state)
{
    (void)state;
    char *big = malloc(CTL_LINE_MAX);
    char *out = malloc(2 * CTL_LINE_MAX);
    assert_non_null(big);
    assert_non_null(out);
    memset(big, 'x', CTL_LINE_MAX - 1);
    big[CTL_LINE_MAX - 1] = '\0';
    size_t len;
    errno = 0;
    assert_int_equal(ctl_submit_rcpt_format(big, out, 2 * CTL_LINE_MAX, &len), -1);
    assert_int_equal(errno, ENOSPC);
    /* "rcpt " + value + LF is exactly CTL_LINE_MAX at the largest value. */
    big[CTL_LINE_MAX - 6] = '\0';
    assert_int_equal(ctl_submit_rcpt_format(big, out, 2 * CTL_LINE_MAX, &len), 0);
    assert_int_equal(len, CTL_LINE_MAX);
    /* "ok " + value + LF: CTL_LINE_MAX - 4 octets of value fit, one more does not. */
    memset(big, 'x', CTL_LINE_MAX - 4);
    big[CTL_LINE_MAX - 4] = '\0';
    assert_int_equal(ctl_reply_format(true, NULL, big, out, 2 * CTL_LINE_MAX, &len), 0);
    assert_int_equal(len, CTL_LINE_MAX);
    big[CTL_LINE_MAX - 4] = 'x';
    big[CTL_LINE_MAX - 3] = '\0';
    errno = 0;
    assert_int_equal(ctl_reply_format(true, NULL, big, out, 2 * CTL_LINE_MAX, &len), -1);
    assert_int_equal(errno, ENOSPC);
    free(big);
    free(out);
}

struct reason_case {
    const char *name;
    size_t fill;           /* octets of the repeated unit */
    const char *unit;      /* repeated to fill */
    const char *want_tail; /* the decoded reason must end with this */
};

static const struct reason_case reason_cases[] = {
    {"J2_ascii_1mb", 1 << 20, "a", "a"},
    {"J2_escaped", 20000, " ", " "},
    {"J2_utf8_not_split", 20000, "\xc3\xa9", "\xc3\xa9"},
    {"J2_utf8_three_octets", 20000, "\xe2\x82\xac", "\xe2\x82\xac"},
};

/* J2: a remote reply of any length is cut to fit the line, whole characters only. */
static void test_rcpt_reason_cut(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof reason_cases / sizeof reason_cases[0]; i++) {
        const struct reason_case *c = &reason_cases[i];
        size_t ul = strlen(c->unit);
        char *reason = malloc(c->fill + 1);
        assert_non_null(reason);
        for (size_t k = 0; k + ul <= c->fill; k += ul)
            memcpy(reason + k, c->unit, ul);
        reason[c->fill - c->fill % ul] = '\0';
        struct ctl_rcpt_info r = {"bob@example.net", CTL_RCPT_DEFERRED, 2, 1700000000, reason};
        char out[CTL_LINE_MAX];
        size_t len = 0;
        if (ctl_rcpt_format(&r, out, sizeof out, &len) != 0)
            fail_msg("case %s: format failed", c->name);
        assert_true(len <= CTL_LINE_MAX);
        assert_true(len > CTL_LINE_MAX - 12);
        assert_int_equal(out[len - 1], '\n');
        struct ctl_line l;
        char buf[CTL_LINE_MAX];
        if (ctl_line_parse(out, len - 1, &l, buf, sizeof buf) != 0)
            fail_msg("case %s: cut line does not parse", c->name);
        size_t rl = strlen(l.rcpt.reason);
        assert_true(rl > 0 && rl % ul == 0);
        assert_memory_equal(l.rcpt.reason, reason, rl);
        assert_memory_equal(l.rcpt.reason + rl - ul, c->want_tail, ul);
        free(reason);
    }
}

/* The reason's control bytes (a multi-line remote reply) become spaces rather than failing
 * the whole line; the address, being an identity, is refused instead (above). */
static void test_rcpt_reason_B4_controls_become_spaces(void **state)
{
    (void)state;
    struct ctl_rcpt_info r = {"a@b", CTL_RCPT_FAILED, 1, 0, "550-5.1.1 no\r\n550 5.1.1 such\tuser"};
    char out[CTL_LINE_MAX];
    size_t len;
    assert_int_equal(ctl_rcpt_format(&r, out, sizeof out, &len), 0);
    struct ctl_line l;
    char buf[CTL_LINE_MAX];
    assert_int_equal(ctl_line_parse(out, len - 1, &l, buf, sizeof buf), 0);
    assert_string_equal(l.rcpt.reason, "550-5.1.1 no  550 5.1.1 such user");
    assert_null(memchr(out, '\r', len));
    assert_ptr_equal(memchr(out, '\n', len), out + len - 1);
}

/* A listing line is told apart from a submit "rcpt" by its field count. */
static void test_rcpt_kinds_distinct(void **state)
{
    (void)state;
    struct ctl_line l;
    char buf[64];
    const char to[] = "rcpt a@b";
    const char info[] = "rcpt a@b pending 0 0";
    assert_int_equal(ctl_line_parse(to, strlen(to), &l, buf, sizeof buf), 0);
    assert_int_equal(l.kind, CTL_LINE_TO);
    assert_int_equal(ctl_line_parse(info, strlen(info), &l, buf, sizeof buf), 0);
    assert_int_equal(l.kind, CTL_LINE_RCPT);
    assert_string_equal(l.rcpt.reason, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_request_parse_refuses),
        cmocka_unit_test(test_request_parse_A1_over_long),
        cmocka_unit_test(test_request_format_refuses),
        cmocka_unit_test(test_line_round_trip),
        cmocka_unit_test(test_line_parse_small_buffer),
        cmocka_unit_test(test_line_parse_refuses),
        cmocka_unit_test(test_line_parse_A1_over_long),
        cmocka_unit_test(test_format_refuses),
        cmocka_unit_test(test_format_long_value_enospc),
        cmocka_unit_test(test_rcpt_reason_cut),
        cmocka_unit_test(test_rcpt_reason_B4_controls_become_spaces),
        cmocka_unit_test(test_rcpt_kinds_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
