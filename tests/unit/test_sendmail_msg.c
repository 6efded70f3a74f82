/* Unit tests for cli/sendmail_msg: sendmail(1) option parsing (grouped flags, attached and
 * separate values, -oi, -bp, "--", errors), the -f sender forms, the lone-dot end of input,
 * CRLF normalisation (HOSTILE-INPUTS C3/C4 shapes), RFC 5322 §3.4 address lists for -t, and
 * header completion (From/Date/Message-ID added only when missing, Bcc removed per RFC 5322
 * §3.6.3, B4: no control byte reaches an added field or a recipient). */
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

#include "cli/sendmail_msg.h"

/* ---- options ------------------------------------------------------------------------- */

struct args_case {
    const char *name;
    const char *argv[8]; /* NULL-terminated; argv[0] is the program */
    int ok;
    enum sendmail_mode mode;
    bool extract, ignore_dots;
    const char *sender, *fullname, *config;
    int first_rcpt;
};

static const struct args_case args_cases[] = {
    {"none", {"sendmail", NULL}, 1, SENDMAIL_MODE_DELIVER, false, false, NULL, NULL, NULL, 1},
    {"rcpts_only",
     {"sendmail", "a@b", "c@d", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     false,
     false,
     NULL,
     NULL,
     NULL,
     1},
    {"t_i",
     {"sendmail", "-t", "-i", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     true,
     true,
     NULL,
     NULL,
     NULL,
     3},
    {"grouped_ti",
     {"sendmail", "-ti", "x@y", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     true,
     true,
     NULL,
     NULL,
     NULL,
     2},
    {"oi",
     {"sendmail", "-oi", "x@y", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     false,
     true,
     NULL,
     NULL,
     NULL,
     2},
    {"o_separate_i",
     {"sendmail", "-o", "i", "x@y", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     false,
     true,
     NULL,
     NULL,
     NULL,
     3},
    {"o_other_ignored",
     {"sendmail", "-oem", "-odb", "x@y", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     false,
     false,
     NULL,
     NULL,
     NULL,
     3},
    {"f_separate",
     {"sendmail", "-f", "me@x", "y@z", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     false,
     false,
     "me@x",
     NULL,
     NULL,
     3},
    {"f_attached",
     {"sendmail", "-fme@x", "y@z", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     false,
     false,
     "me@x",
     NULL,
     NULL,
     2},
    {"r_is_f",
     {"sendmail", "-r", "me@x", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     false,
     false,
     "me@x",
     NULL,
     NULL,
     3},
    {"F_name",
     {"sendmail", "-F", "Cron Daemon", "-t", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     true,
     false,
     NULL,
     "Cron Daemon",
     NULL,
     4},
    {"grouped_then_value",
     {"sendmail", "-tf", "me@x", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     true,
     false,
     "me@x",
     NULL,
     NULL,
     3},
    {"C_config",
     {"sendmail", "-C", "/etc/x.conf", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     false,
     false,
     NULL,
     NULL,
     "/etc/x.conf",
     3},
    {"bp_mailq",
     {"sendmail", "-bp", NULL},
     1,
     SENDMAIL_MODE_LIST,
     false,
     false,
     NULL,
     NULL,
     NULL,
     2},
    {"bm_default",
     {"sendmail", "-bm", "a@b", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     false,
     false,
     NULL,
     NULL,
     NULL,
     2},
    {"v_ignored",
     {"sendmail", "-v", "a@b", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     false,
     false,
     NULL,
     NULL,
     NULL,
     2},
    {"dsn_options_ignored",
     {"sendmail", "-N", "never", "-R", "hdrs", "-Bbinarymime", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     false,
     false,
     NULL,
     NULL,
     NULL,
     6},
    {"double_dash",
     {"sendmail", "-t", "--", "-weird@x", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     true,
     false,
     NULL,
     NULL,
     NULL,
     3},
    {"options_end_at_rcpt",
     {"sendmail", "a@b", "-t", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     false,
     false,
     NULL,
     NULL,
     NULL,
     1},
    {"lone_dash_is_rcpt",
     {"sendmail", "-", NULL},
     1,
     SENDMAIL_MODE_DELIVER,
     false,
     false,
     NULL,
     NULL,
     NULL,
     1},
    {"unknown_option", {"sendmail", "-q", NULL}, 0, 0, false, false, NULL, NULL, NULL, 0},
    {"unknown_in_group", {"sendmail", "-tz", NULL}, 0, 0, false, false, NULL, NULL, NULL, 0},
    {"f_missing_value", {"sendmail", "-f", NULL}, 0, 0, false, false, NULL, NULL, NULL, 0},
    {"bs_unsupported", {"sendmail", "-bs", NULL}, 0, 0, false, false, NULL, NULL, NULL, 0},
    {"bd_unsupported", {"sendmail", "-bd", NULL}, 0, 0, false, false, NULL, NULL, NULL, 0},
};

static void test_parse_args(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof args_cases / sizeof args_cases[0]; i++) {
        const struct args_case *c = &args_cases[i];
        int argc = 0;
        while (c->argv[argc] != NULL)
            argc++;
        struct sendmail_opts o;
        char err[128] = "";
        int rc = sendmail_parse_args(argc, (char *const *)c->argv, &o, err, sizeof err);
        if ((rc == 0) != c->ok)
            fail_msg("case %s: rc %d (%s)", c->name, rc, err);
        if (!c->ok) {
            assert_true(err[0] != '\0');
            continue;
        }
        assert_int_equal(o.mode, c->mode);
        assert_int_equal(o.extract, c->extract);
        assert_int_equal(o.ignore_dots, c->ignore_dots);
        if (c->sender == NULL)
            assert_null(o.sender);
        else
            assert_string_equal(o.sender, c->sender);
        if (c->fullname == NULL)
            assert_null(o.fullname);
        else
            assert_string_equal(o.fullname, c->fullname);
        if (c->config == NULL)
            assert_null(o.config);
        else
            assert_string_equal(o.config, c->config);
        if (o.first_rcpt != c->first_rcpt)
            fail_msg("case %s: first_rcpt %d", c->name, o.first_rcpt);
    }
}

struct sender_case {
    const char *in;
    bool ok;
    const char *want;
};

static const struct sender_case sender_cases[] = {
    {"a@b", true, "a@b"}, {"<a@b>", true, "a@b"}, {"<>", true, ""},
    {"", true, ""},       {"a b@c", false, ""},   {"a\r\n@b", false, ""},
    {"<a@b", false, ""},  {"a<b>", false, ""},    {"B4\x01x", false, ""},
};

static void test_sender(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof sender_cases / sizeof sender_cases[0]; i++) {
        char out[32];
        bool ok = sendmail_sender(sender_cases[i].in, out, sizeof out);
        if (ok != sender_cases[i].ok)
            fail_msg("case %zu (%s): %d", i, sender_cases[i].in, ok);
        if (ok)
            assert_string_equal(out, sender_cases[i].want);
    }
    char small[4];
    assert_false(sendmail_sender("abcd", small, sizeof small));
    assert_true(sendmail_sender("abc", small, sizeof small));
}

/* ---- input --------------------------------------------------------------------------- */

static void test_end_line(void **state)
{
    (void)state;
    assert_true(sendmail_is_end_line(".\n", 2));
    assert_true(sendmail_is_end_line(".\r\n", 3));
    assert_true(sendmail_is_end_line(".", 1));
    assert_false(sendmail_is_end_line("..\n", 3));
    assert_false(sendmail_is_end_line(". \n", 3));
    assert_false(sendmail_is_end_line(".x\n", 3));
    assert_false(sendmail_is_end_line("\n", 1));
    assert_false(sendmail_is_end_line(".\r", 2));
}

struct norm_case {
    const char *name;
    const char *in;
    size_t inlen; /* 0: strlen */
    const char *want;
};

static const struct norm_case norm_cases[] = {
    {"empty", "", 0, ""},
    {"crlf_kept", "a\r\nb\r\n", 0, "a\r\nb\r\n"},
    {"A4_bare_lf", "a\nb\n", 0, "a\r\nb\r\n"},
    {"A5_bare_cr", "a\rb\r", 0, "a\r\nb\r\n"},
    {"no_final_newline", "a\nb", 0, "a\r\nb\r\n"},
    {"C3_lf_dot_lf", "x\n.\nmore\n", 0, "x\r\n.\r\nmore\r\n"},
    {"C4_cr_dot_cr", "x\r.\rmore", 0, "x\r\n.\r\nmore\r\n"},
    {"C4_lf_cr", "a\n\rb", 0, "a\r\n\r\nb\r\n"},
    {"empty_lines", "\n\n", 0, "\r\n\r\n"},
    {"nul_kept", "a\0b\n", 4, "a\0b\r\n"},
    {"dots_not_unstuffed", "..x\n", 0, "..x\r\n"},
};

static void test_normalise(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof norm_cases / sizeof norm_cases[0]; i++) {
        const struct norm_case *c = &norm_cases[i];
        size_t inlen = c->inlen ? c->inlen : strlen(c->in);
        size_t wantlen = c->inlen ? inlen + 1 : strlen(c->want);
        char *out = NULL;
        size_t outlen = 0;
        assert_int_equal(sendmail_normalise(c->in, inlen, &out, &outlen), 0);
        if (outlen != wantlen || memcmp(out, c->want, wantlen) != 0)
            fail_msg("case %s: got %zu octets", c->name, outlen);
        free(out);
    }
}

/* ---- address lists ------------------------------------------------------------------- */

struct list_case {
    const char *name;
    const char *in;
    bool ok;
    const char *want[5]; /* NULL-terminated */
};

static const struct list_case list_cases[] = {
    {"one", "a@b", true, {"a@b"}},
    {"two", "a@b, c@d", true, {"a@b", "c@d"}},
    {"display_names", "Alice <a@b>, \"Bob, Jr.\" <c@d>", true, {"a@b", "c@d"}},
    {"comments", "a@b (Alice, the first), (x) c@d", true, {"a@b", "c@d"}},
    {"comment_in_angle", "<a(x)@b>", true, {"a@b"}},
    {"nested_comment", "a@b ((x) y)", true, {"a@b"}},
    {"quoted_local", "\"a b\"@c", true, {"\"a b\"@c"}},
    {"quoted_pair", "\"a\\\"b\"@c", true, {"\"a\\\"b\"@c"}},
    {"rfc5322_s3_4_group", "team: a@b, c@d;, e@f", true, {"a@b", "c@d", "e@f"}},
    {"empty_group", "undisclosed-recipients:;", true, {NULL}},
    {"folded", "a@b,\r\n c@d", true, {"a@b", "c@d"}},
    {"route_dropped", "<@x.org,@y.org:a@b>", true, {"a@b"}},
    {"duplicate_once", "a@b, A <a@b>, a@b", true, {"a@b"}},
    {"no_domain", "root", true, {"root@mx.test"}},
    {"empty_items", ", ,a@b,,", true, {"a@b"}},
    {"empty", "", true, {NULL}},
    {"null_path", "<>", true, {NULL}},
    {"unclosed_quote", "\"a@b", false, {NULL}},
    {"unclosed_angle", "A <a@b", false, {NULL}},
    {"unclosed_comment", "a@b (x", false, {NULL}},
    {"stray_close_paren", "a@b)", false, {NULL}},
    {"stray_gt", "a@b>", false, {NULL}},
    {"two_angles", "<a@b> <c@d>", false, {NULL}},
    {"text_after_angle", "<a@b> x", false, {NULL}},
    {"B4_nul", "a\x01@b", false, {NULL}},
    {"bad_route", "<@x.org>", false, {NULL}},
};

static void test_address_lists(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof list_cases / sizeof list_cases[0]; i++) {
        const struct list_case *c = &list_cases[i];
        struct sendmail_rcpts r = {0};
        char err[128] = "";
        int rc = sendmail_rcpts_add_list(&r, c->in, strlen(c->in), "mx.test", err, sizeof err);
        if ((rc == 0) != c->ok)
            fail_msg("case %s: rc %d (%s)", c->name, rc, err);
        if (c->ok) {
            size_t n = 0;
            while (c->want[n] != NULL)
                n++;
            if (r.n != n)
                fail_msg("case %s: %zu recipients", c->name, r.n);
            for (size_t k = 0; k < n; k++)
                assert_string_equal(r.v[k], c->want[k]);
        } else {
            assert_true(err[0] != '\0');
        }
        sendmail_rcpts_free(&r);
    }
}

static void test_rcpts_limit(void **state)
{
    (void)state;
    struct sendmail_rcpts r = {0};
    char err[128];
    char a[32];
    for (int i = 0; i < SENDMAIL_RCPTS_MAX; i++) {
        int n = snprintf(a, sizeof a, "u%d@x", i);
        assert_int_equal(sendmail_rcpts_add_list(&r, a, (size_t)n, "x", err, sizeof err), 0);
    }
    /* A duplicate at the limit is fine; one more distinct address is not. */
    assert_int_equal(sendmail_rcpts_add_list(&r, "u0@x", 4, "x", err, sizeof err), 0);
    assert_int_equal(sendmail_rcpts_add_list(&r, "new@x", 5, "x", err, sizeof err), -1);
    assert_int_equal(r.n, SENDMAIL_RCPTS_MAX);
    sendmail_rcpts_free(&r);
}

/* ---- completion ---------------------------------------------------------------------- */

#define T_DATE "Tue, 14 Nov 2023 22:13:20 +0000"
#define T_MSGID "<0ABC@mx.test>"
#define T_ADDED "From: me@mx.test\r\nDate: " T_DATE "\r\nMessage-ID: " T_MSGID "\r\n"

struct complete_case {
    const char *name;
    const char *in;
    bool extract;
    const char *fullname;
    const char *want;
    const char *rcpts[6]; /* NULL-terminated */
};

static const struct complete_case complete_cases[] = {
    {"all_added",
     "Subject: x\r\n\r\nbody\r\n",
     false,
     NULL,
     T_ADDED "Subject: x\r\n\r\nbody\r\n",
     {NULL}},
    {"none_added",
     "from: a@b\r\nDATE: " T_DATE "\r\nmessage-id: <1@b>\r\n\r\nbody\r\n",
     false,
     NULL,
     "from: a@b\r\nDATE: " T_DATE "\r\nmessage-id: <1@b>\r\n\r\nbody\r\n",
     {NULL}},
    {"no_header_section", "just a body\r\n", false, NULL, T_ADDED "\r\njust a body\r\n", {NULL}},
    {"empty_message", "", false, NULL, T_ADDED "\r\n", {NULL}},
    {"starts_with_blank_line", "\r\nbody\r\n", false, NULL, T_ADDED "\r\nbody\r\n", {NULL}},
    {"mbox_from_line_is_body",
     "From a@b Mon\r\n",
     false,
     NULL,
     T_ADDED "\r\nFrom a@b Mon\r\n",
     {NULL}},
    {"fullname_quoted",
     "Subject: x\r\n\r\n",
     false,
     "Cron \"D\" \\x",
     "From: \"Cron \\\"D\\\" \\\\x\" <me@mx.test>\r\nDate: " T_DATE "\r\nMessage-ID: " T_MSGID
     "\r\nSubject: x\r\n\r\n",
     {NULL}},
    {"rfc5322_s3_6_3_bcc_removed_without_t",
     "From: a@b\r\nBcc: secret@x\r\nDate: d\r\nMessage-ID: <m>\r\n\r\nBcc: in body\r\n",
     false,
     NULL,
     "From: a@b\r\nDate: d\r\nMessage-ID: <m>\r\n\r\nBcc: in body\r\n",
     {NULL}},
    {"bcc_folded_removed",
     "From: a@b\r\nBCC: s1@x,\r\n\ts2@x\r\nDate: d\r\nMessage-ID: <m>\r\n\r\n",
     true,
     NULL,
     "From: a@b\r\nDate: d\r\nMessage-ID: <m>\r\n\r\n",
     {"s1@x", "s2@x"}},
    {"t_to_cc_bcc",
     "From: a@b\r\nTo: Bob <bob@x>, carol@y\r\nCc: dave@z\r\nBcc: eve@w\r\nDate: d\r\n"
     "Message-ID: <m>\r\n\r\nTo: notme@body\r\n",
     true,
     NULL,
     "From: a@b\r\nTo: Bob <bob@x>, carol@y\r\nCc: dave@z\r\nDate: d\r\nMessage-ID: "
     "<m>\r\n\r\nTo: notme@body\r\n",
     {"bob@x", "carol@y", "dave@z", "eve@w"}},
    {"t_folded_to",
     "To: a@x,\r\n b@y\r\nFrom: f@g\r\nDate: d\r\nMessage-ID: <m>\r\n\r\n",
     true,
     NULL,
     "To: a@x,\r\n b@y\r\nFrom: f@g\r\nDate: d\r\nMessage-ID: <m>\r\n\r\n",
     {"a@x", "b@y"}},
    {"t_resent_and_reply_to_ignored",
     "Reply-To: r@x\r\nResent-To: q@x\r\nTo-Do: z@x\r\nTo: t@x\r\nFrom: f@g\r\nDate: d\r\n"
     "Message-ID: <m>\r\n\r\n",
     true,
     NULL,
     "Reply-To: r@x\r\nResent-To: q@x\r\nTo-Do: z@x\r\nTo: t@x\r\nFrom: f@g\r\nDate: d\r\n"
     "Message-ID: <m>\r\n\r\n",
     {"t@x"}},
    {"t_off_to_ignored", "To: t@x\r\n\r\n", false, NULL, T_ADDED "To: t@x\r\n\r\n", {NULL}},
    {"headers_only_no_blank", "Subject: x\r\n", false, NULL, T_ADDED "Subject: x\r\n", {NULL}},
    {"body_starts_at_non_field",
     "Subject: x\r\nnot a field\r\nTo: y@z\r\n",
     true,
     NULL,
     T_ADDED "Subject: x\r\nnot a field\r\nTo: y@z\r\n",
     {NULL}},
};

static void test_complete(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof complete_cases / sizeof complete_cases[0]; i++) {
        const struct complete_case *c = &complete_cases[i];
        struct sendmail_compose comp = {c->extract, "me@mx.test", c->fullname,
                                        T_DATE,     T_MSGID,      "mx.test"};
        struct sendmail_rcpts r = {0};
        char *out = NULL;
        size_t outlen = 0;
        char err[128] = "";
        if (sendmail_complete(c->in, strlen(c->in), &comp, &r, &out, &outlen, err, sizeof err) != 0)
            fail_msg("case %s: %s", c->name, err);
        if (outlen != strlen(c->want) || memcmp(out, c->want, outlen) != 0)
            fail_msg("case %s: got\n%.*s", c->name, (int)outlen, out);
        size_t n = 0;
        while (c->rcpts[n] != NULL)
            n++;
        if (r.n != n)
            fail_msg("case %s: %zu recipients", c->name, r.n);
        for (size_t k = 0; k < n; k++)
            assert_string_equal(r.v[k], c->rcpts[k]);
        free(out);
        sendmail_rcpts_free(&r);
    }
}

struct complete_bad_case {
    const char *name;
    const char *in;
    const char *fullname;
};

static const struct complete_bad_case complete_bad_cases[] = {
    {"B4_fullname_crlf", "Subject: x\r\n\r\n", "Evil\r\nBcc: victim@x"},
    {"B4_fullname_nul_like", "Subject: x\r\n\r\n", "a\x01"},
    {"bad_to_list", "To: \"unclosed@x\r\nFrom: a@b\r\n\r\n", NULL},
};

static void test_complete_refuses(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof complete_bad_cases / sizeof complete_bad_cases[0]; i++) {
        const struct complete_bad_case *c = &complete_bad_cases[i];
        struct sendmail_compose comp = {true,   "me@mx.test", c->fullname,
                                        T_DATE, T_MSGID,      "mx.test"};
        struct sendmail_rcpts r = {0};
        char *out = NULL;
        size_t outlen = 0;
        char err[128] = "";
        if (sendmail_complete(c->in, strlen(c->in), &comp, &r, &out, &outlen, err, sizeof err) !=
            -1)
            fail_msg("case %s: accepted", c->name);
        assert_null(out);
        assert_true(err[0] != '\0');
        sendmail_rcpts_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_args),    cmocka_unit_test(test_sender),
        cmocka_unit_test(test_end_line),      cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_address_lists), cmocka_unit_test(test_rcpts_limit),
        cmocka_unit_test(test_complete),      cmocka_unit_test(test_complete_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
