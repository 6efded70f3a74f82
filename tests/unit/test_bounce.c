/* Unit tests for queue/bounce: the RFC 3461 §4.1 NOTIFY truth table, DSNs composed and then
 * parsed back (split on the boundary, each part's Content-Type and fields, CRLF only), the
 * optional ENVID/ORCPT fields, RET=HDRS, exact ENOSPC sizing with exact-size buffers under
 * ASan, and refusal of bad input (B4: no CR/LF may reach a header). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/bounce.h"

#define T_BOUNDARY "=_sluice-1700000000-q1AbC"

static const char t_original[] = "From: <alice@example.org>\r\n"
                                 "To: <bob@example.net>\r\n"
                                 "Subject: hello\r\n"
                                 "Message-ID: <m1@example.org>\r\n"
                                 "\r\n"
                                 "Hi Bob.\r\n";
static const char t_headers[] = "From: <alice@example.org>\r\n"
                                "To: <bob@example.net>\r\n"
                                "Subject: hello\r\n"
                                "\r\n";

/* A fixture holding one valid input with up to three recipients; tests mutate a copy. */
struct t_fix {
    struct queue_rcpt rcpts[3];
    struct deliver_result results[3];
    struct bounce_rcpt brcpts[3];
    struct queue_envelope env;
    struct bounce_input in;
};

static void t_fix_init(struct t_fix *f)
{
    static char sender[] = "alice@example.org";
    static char a0[] = "bob@example.net", a1[] = "carol@example.net", a2[] = "dave@example.com";
    memset(f, 0, sizeof *f);
    f->rcpts[0].addr = a0;
    f->rcpts[1].addr = a1;
    f->rcpts[2].addr = a2;
    for (size_t i = 0; i < 3; i++) {
        f->results[i].status = DELIVER_PERMFAIL;
        snprintf(f->results[i].enhanced, sizeof f->results[i].enhanced, "5.1.%zu", i + 1);
        snprintf(f->results[i].text, sizeof f->results[i].text, "reason number %zu", i);
        f->brcpts[i].rcpt = &f->rcpts[i];
        f->brcpts[i].result = &f->results[i];
    }
    f->env.sender = sender;
    f->env.rcpts = f->rcpts;
    f->env.nrcpts = 3;
    f->env.ret = PROTO_RET_FULL;
    f->env.arrival = 951782400;
    f->in.env = &f->env;
    f->in.queue_id = "Q1ABCDEF";
    f->in.reporting_mta = "mx.sluice.test";
    f->in.now = 1700000000;
    f->in.boundary = T_BOUNDARY;
    f->in.rcpts = f->brcpts;
    f->in.nrcpts = 1;
    f->in.original = (const unsigned char *)t_original;
    f->in.original_len = sizeof t_original - 1;
}

/* Composes into an exactly sized heap buffer (so ASan sees any overrun) and returns it
 * NUL-terminated in a second allocation for strstr; *len is the DSN's size. */
static char *t_compose(const struct bounce_input *in, size_t *len)
{
    size_t need = 0;
    assert_int_equal(bounce_compose(in, NULL, 0, &need), ENOSPC);
    unsigned char *buf = malloc(need);
    assert_non_null(buf);
    assert_int_equal(bounce_compose(in, buf, need, len), 0);
    assert_int_equal(*len, need);
    char *s = malloc(need + 1);
    assert_non_null(s);
    memcpy(s, buf, need);
    s[need] = '\0';
    free(buf);
    return s;
}

/* Every LF is preceded by CR and every CR followed by LF. */
static void t_assert_crlf(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            assert_true(i > 0 && s[i - 1] == '\r');
        if (s[i] == '\r')
            assert_true(i + 1 < n && s[i + 1] == '\n');
    }
}

/* A parsed DSN: its header section and its body parts, each a NUL-terminated copy. */
struct t_dsn {
    char *head;
    char *parts[8];
    size_t nparts;
    bool closed;
};

static char *t_dup(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* RFC 2046 §5.1.1: parts sit between "CRLF--boundary" delimiters; the last one is followed
 * by "--". The preamble (before the first delimiter) is dropped. */
static void t_parse(const char *s, struct t_dsn *d)
{
    memset(d, 0, sizeof *d);
    const char *eoh = strstr(s, "\r\n\r\n");
    assert_non_null(eoh);
    d->head = t_dup(s, (size_t)(eoh + 2 - s));
    const char *delim = "\r\n--" T_BOUNDARY;
    size_t dl = strlen(delim);
    const char *p = strstr(eoh, delim);
    assert_non_null(p);
    for (;;) {
        p += dl;
        if (strncmp(p, "--\r\n", 4) == 0) {
            d->closed = true;
            assert_string_equal(p + 4, "");
            return;
        }
        assert_true(strncmp(p, "\r\n", 2) == 0);
        p += 2;
        const char *q = strstr(p, delim);
        assert_non_null(q);
        assert_true(d->nparts < 8);
        d->parts[d->nparts++] = t_dup(p, (size_t)(q - p));
        p = q;
    }
}

static void t_dsn_free(struct t_dsn *d)
{
    free(d->head);
    for (size_t i = 0; i < d->nparts; i++)
        free(d->parts[i]);
}

static void t_assert_has(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("missing \"%s\" in:\n%s", needle, hay);
}

static void t_assert_lacks(const char *hay, const char *needle)
{
    if (strstr(hay, needle) != NULL)
        fail_msg("unexpected \"%s\" in:\n%s", needle, hay);
}

static size_t t_count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- bounce_wanted: RFC 3461 §4.1 ---- */

static void test_wanted_rfc3461_4_1_truth_table(void **state)
{
    (void)state;
    static const struct {
        const char *sender;
        unsigned notify;
        bool delay;
        bool want;
    } rows[] = {
        /* RFC 5321 §4.5.5: never a bounce of a bounce. */
        { "", 0, false, false },
        { "", PROTO_NOTIFY_FAILURE, false, false },
        { "", PROTO_NOTIFY_DELAY, true, false },
        { "a@b.example", PROTO_NOTIFY_NEVER, false, false },
        { "a@b.example", PROTO_NOTIFY_NEVER, true, false },
        { "a@b.example", PROTO_NOTIFY_SUCCESS, false, false },
        { "a@b.example", PROTO_NOTIFY_SUCCESS, true, false },
        { "a@b.example", PROTO_NOTIFY_FAILURE, false, true },
        { "a@b.example", PROTO_NOTIFY_FAILURE, true, false },
        { "a@b.example", PROTO_NOTIFY_DELAY, true, true },
        { "a@b.example", PROTO_NOTIFY_DELAY, false, false },
        { "a@b.example", PROTO_NOTIFY_FAILURE | PROTO_NOTIFY_DELAY, false, true },
        { "a@b.example", PROTO_NOTIFY_FAILURE | PROTO_NOTIFY_DELAY, true, true },
        { "a@b.example", PROTO_NOTIFY_SUCCESS | PROTO_NOTIFY_FAILURE, false, true },
        /* Not given: read as FAILURE only, so no delay warnings. */
        { "a@b.example", 0, false, true },
        { "a@b.example", 0, true, false },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char sender[32];
        snprintf(sender, sizeof sender, "%s", rows[i].sender);
        struct queue_envelope env = { .sender = sender };
        char addr[] = "x@y.example";
        struct queue_rcpt r = { .addr = addr, .notify = rows[i].notify };
        if (bounce_wanted(&env, &r, rows[i].delay) != rows[i].want)
            fail_msg("row %zu", i);
    }
    char addr[] = "x@y.example";
    struct queue_rcpt r = { .addr = addr };
    struct queue_envelope nosender = { .sender = NULL };
    assert_false(bounce_wanted(&nosender, &r, false));
    assert_false(bounce_wanted(NULL, &r, false));
    struct queue_envelope env = { .sender = addr };
    assert_false(bounce_wanted(&env, NULL, false));
}

/* ---- bounce_compose ---- */

static void test_compose_rfc3464_2_failure_structure(void **state)
{
    (void)state;
    struct t_fix f;
    t_fix_init(&f);
    f.brcpts[0].remote_mta = "mx1.example.net";
    f.brcpts[0].diagnostic = "smtp; 550 5.1.1 <bob@example.net>: no such user";
    size_t len = 0;
    char *s = t_compose(&f.in, &len);
    assert_int_equal(strlen(s), len);
    t_assert_crlf(s, len);

    struct t_dsn d;
    t_parse(s, &d);
    assert_true(d.closed);
    assert_int_equal(d.nparts, 3);

    assert_true(strncmp(d.head, "From: Mail Delivery System <MAILER-DAEMON@mx.sluice.test>\r\n",
                        59) == 0);
    t_assert_has(d.head, "\r\nTo: <alice@example.org>\r\n");
    t_assert_has(d.head, "\r\nSubject: Undelivered Mail Returned to Sender\r\n");
    t_assert_has(d.head, "\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n");
    t_assert_has(d.head, "\r\nMessage-ID: <Q1ABCDEF.bounce@mx.sluice.test>\r\n");
    t_assert_has(d.head, "\r\nAuto-Submitted: auto-replied\r\n"); /* RFC 3834 §5 */
    t_assert_has(d.head, "\r\nMIME-Version: 1.0\r\n");
    t_assert_has(d.head, "\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n"
                         "\tboundary=\"" T_BOUNDARY "\"\r\n");

    /* RFC 3464 §2 (b): human-readable first. */
    t_assert_has(d.parts[0], "Content-Type: text/plain; charset=utf-8\r\n\r\n");
    t_assert_has(d.parts[0], "  <bob@example.net>: reason number 0\r\n");

    /* RFC 3464 §2 (c), §2.2, §2.3. */
    const char *ds = d.parts[1];
    assert_true(strncmp(ds, "Content-Type: message/delivery-status\r\n\r\n", 41) == 0);
    t_assert_has(ds, "\r\n\r\nReporting-MTA: dns; mx.sluice.test\r\n"
                     "Arrival-Date: Tue, 29 Feb 2000 00:00:00 +0000\r\n"
                     "\r\n"
                     "Final-Recipient: rfc822; bob@example.net\r\n"
                     "Action: failed\r\n"
                     "Status: 5.1.1\r\n"
                     "Remote-MTA: dns; mx1.example.net\r\n"
                     "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: no such user\r\n"
                     "Last-Attempt-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n");

    /* RFC 3464 §2 (d): the original, unchanged. */
    assert_string_equal(d.parts[2], "Content-Type: message/rfc822\r\n\r\n" "From: <alice@example.org>\r\n"
                                    "To: <bob@example.net>\r\n"
                                    "Subject: hello\r\n"
                                    "Message-ID: <m1@example.org>\r\n"
                                    "\r\n"
                                    "Hi Bob.\r\n");
    t_dsn_free(&d);
    free(s);
}

/* RFC 3464 §2.2.1 and §2.3.1: Original-Envelope-Id and Original-Recipient appear exactly
 * when ENVID and ORCPT were given, with case preserved; Remote-MTA and Diagnostic-Code only
 * when the caller has them. */
static void test_compose_rfc3464_optional_fields(void **state)
{
    (void)state;
    static const struct {
        const char *envid;
        const char *orcpt;
        const char *remote;
        const char *diag;
    } rows[] = {
        { NULL, NULL, NULL, NULL },
        { "EnvID-42.Case", NULL, NULL, NULL },
        { NULL, "rfc822;Bob@Example.NET", NULL, NULL },
        { "EnvID-42.Case", "rfc822;Bob@Example.NET", "mx1.example.net", "smtp; 550 nope" },
        { NULL, NULL, "mx1.example.net", NULL },
        { NULL, NULL, NULL, "x-local; mailbox full" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct t_fix f;
        t_fix_init(&f);
        char envid[64], orcpt[64];
        if (rows[i].envid != NULL) {
            snprintf(envid, sizeof envid, "%s", rows[i].envid);
            f.env.envid = envid;
        }
        if (rows[i].orcpt != NULL) {
            snprintf(orcpt, sizeof orcpt, "%s", rows[i].orcpt);
            f.rcpts[0].orcpt = orcpt;
        }
        f.brcpts[0].remote_mta = rows[i].remote;
        f.brcpts[0].diagnostic = rows[i].diag;
        size_t len;
        char *s = t_compose(&f.in, &len);
        struct t_dsn d;
        t_parse(s, &d);
        assert_int_equal(d.nparts, 3);
        const char *ds = d.parts[1];
        if (rows[i].envid != NULL)
            t_assert_has(ds, "\r\nOriginal-Envelope-Id: EnvID-42.Case\r\nArrival-Date: ");
        else
            t_assert_lacks(ds, "Original-Envelope-Id");
        if (rows[i].orcpt != NULL)
            t_assert_has(ds, "\r\n\r\nOriginal-Recipient: rfc822;Bob@Example.NET\r\n"
                             "Final-Recipient: rfc822; bob@example.net\r\n");
        else
            t_assert_lacks(ds, "Original-Recipient");
        if (rows[i].remote != NULL)
            t_assert_has(ds, "\r\nRemote-MTA: dns; mx1.example.net\r\n");
        else
            t_assert_lacks(ds, "Remote-MTA");
        if (rows[i].diag != NULL) {
            char want[96];
            snprintf(want, sizeof want, "\r\nDiagnostic-Code: %s\r\n", rows[i].diag);
            t_assert_has(ds, want);
        } else {
            t_assert_lacks(ds, "Diagnostic-Code");
        }
        t_dsn_free(&d);
        free(s);
    }
}

/* RFC 6522 §4 and RFC 3461 §4.3: RET=HDRS returns the header section as text/rfc822-headers. */
static void test_compose_rfc6522_4_ret_hdrs(void **state)
{
    (void)state;
    struct t_fix f;
    t_fix_init(&f);
    f.env.ret = PROTO_RET_HDRS;
    f.in.original = (const unsigned char *)t_headers;
    f.in.original_len = sizeof t_headers - 1;
    f.in.original_is_headers = true;
    size_t len;
    char *s = t_compose(&f.in, &len);
    t_assert_crlf(s, len);
    struct t_dsn d;
    t_parse(s, &d);
    assert_int_equal(d.nparts, 3);
    assert_string_equal(d.parts[2], "Content-Type: text/rfc822-headers\r\n\r\n"
                                    "From: <alice@example.org>\r\n"
                                    "To: <bob@example.net>\r\n"
                                    "Subject: hello\r\n"
                                    "\r\n");
    t_assert_lacks(s, "message/rfc822");
    t_assert_lacks(s, "Hi Bob.");
    t_dsn_free(&d);
    free(s);
}

/* An 8-bit original is labelled 8bit (RFC 2046 §5.2.1 allows 8bit for message/rfc822);
 * an empty original still yields a well-formed third part. */
static void test_compose_original_variants(void **state)
{
    (void)state;
    static const char eight[] = "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n";
    struct t_fix f;
    t_fix_init(&f);
    f.in.original = (const unsigned char *)eight;
    f.in.original_len = sizeof eight - 1;
    size_t len;
    char *s = t_compose(&f.in, &len);
    struct t_dsn d;
    t_parse(s, &d);
    assert_int_equal(d.nparts, 3);
    assert_true(strncmp(d.parts[2], "Content-Type: message/rfc822\r\n"
                                    "Content-Transfer-Encoding: 8bit\r\n\r\nSubject: caf",
                        77) == 0);
    t_dsn_free(&d);
    free(s);

    t_fix_init(&f);
    f.in.original = NULL;
    f.in.original_len = 0;
    s = t_compose(&f.in, &len);
    t_parse(s, &d);
    assert_int_equal(d.nparts, 3);
    assert_string_equal(d.parts[2], "Content-Type: message/rfc822\r\n\r\n");
    t_assert_lacks(s, "Content-Transfer-Encoding");
    t_dsn_free(&d);
    free(s);
}

/* RFC 3464 §2: one DSN may report on several recipients, each in its own block, in order;
 * a delay warning says Action: delayed (§2.3.3) and gets its own Message-ID. */
static void test_compose_rfc3464_2_multiple_recipients(void **state)
{
    (void)state;
    static const bool delays[] = { false, true };
    for (size_t k = 0; k < 2; k++) {
        struct t_fix f;
        t_fix_init(&f);
        f.in.nrcpts = 3;
        f.in.delay = delays[k];
        for (size_t i = 0; i < 3; i++)
            f.results[i].enhanced[0] = delays[k] ? '4' : '5';
        size_t len;
        char *s = t_compose(&f.in, &len);
        t_assert_crlf(s, len);
        struct t_dsn d;
        t_parse(s, &d);
        assert_int_equal(d.nparts, 3);
        if (delays[k]) {
            t_assert_has(d.head, "\r\nSubject: Delayed Mail (still being retried)\r\n");
            t_assert_has(d.head, "\r\nMessage-ID: <Q1ABCDEF.delay@mx.sluice.test>\r\n");
        }
        const char *action = delays[k] ? "Action: delayed\r\n" : "Action: failed\r\n";
        assert_int_equal(t_count(d.parts[1], "Final-Recipient: "), 3);
        assert_int_equal(t_count(d.parts[1], action), 3);
        assert_int_equal(t_count(d.parts[1], "Last-Attempt-Date: "), 3);
        /* Per-recipient groups are separated by blank lines (RFC 3464 §2.1). */
        assert_int_equal(t_count(d.parts[1], "\r\n\r\nFinal-Recipient: "), 3);
        const char *b = strstr(d.parts[1], "bob@example.net");
        const char *c = strstr(d.parts[1], "carol@example.net");
        const char *e = strstr(d.parts[1], "dave@example.com");
        assert_true(b != NULL && c != NULL && e != NULL && b < c && c < e);
        char want[64];
        snprintf(want, sizeof want, "Status: %c.1.3\r\n", delays[k] ? '4' : '5');
        t_assert_has(strstr(d.parts[1], "dave@example.com"), want);
        t_assert_has(d.parts[0], "  <carol@example.net>: reason number 1\r\n");
        t_assert_has(d.parts[0], "  <dave@example.com>: reason number 2\r\n");
        t_dsn_free(&d);
        free(s);
    }
}

/* RFC 5322 §3.3 dates in UTC across leap days, a non-leap century and the last year. */
static void test_compose_rfc5322_3_3_dates(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *want;
    } rows[] = {
        { 0, "Thu, 01 Jan 1970 00:00:00 +0000" },
        { 951782400, "Tue, 29 Feb 2000 00:00:00 +0000" },
        { 951868800, "Wed, 01 Mar 2000 00:00:00 +0000" },
        { 1709164800, "Thu, 29 Feb 2024 00:00:00 +0000" },
        { 4107542400, "Mon, 01 Mar 2100 00:00:00 +0000" },
        { 253402300799, "Fri, 31 Dec 9999 23:59:59 +0000" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct t_fix f;
        t_fix_init(&f);
        f.in.now = rows[i].t;
        f.env.arrival = rows[i].t;
        size_t len;
        char *s = t_compose(&f.in, &len);
        char want[80];
        snprintf(want, sizeof want, "\r\nDate: %s\r\n", rows[i].want);
        t_assert_has(s, want);
        snprintf(want, sizeof want, "\r\nArrival-Date: %s\r\n", rows[i].want);
        t_assert_has(s, want);
        snprintf(want, sizeof want, "\r\nLast-Attempt-Date: %s\r\n", rows[i].want);
        t_assert_has(s, want);
        free(s);
    }
}

/* ENOSPC reports the exact size; cap = len-1 fails and cap = len works, with exact heap
 * buffers so that ASan catches a write past cap; a short write leaves bytes past cap alone. */
static void test_compose_enospc_exact_size(void **state)
{
    (void)state;
    struct t_fix f;
    t_fix_init(&f);
    f.in.nrcpts = 3;
    size_t need = 0;
    assert_int_equal(bounce_compose(&f.in, NULL, 0, &need), ENOSPC);
    assert_true(need > 0);
    size_t caps[] = { 0, 1, 17, need / 2, need - 1 };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        unsigned char *buf = malloc(caps[i] + 1);
        assert_non_null(buf);
        memset(buf, 0xA5, caps[i] + 1);
        size_t len = 0;
        unsigned char *exact = caps[i] > 0 ? malloc(caps[i]) : NULL;
        assert_int_equal(bounce_compose(&f.in, exact, caps[i], &len), ENOSPC);
        assert_int_equal(len, need);
        free(exact);
        /* With one guard byte after cap: it must stay untouched. */
        assert_int_equal(bounce_compose(&f.in, buf, caps[i], &len), ENOSPC);
        assert_int_equal(buf[caps[i]], 0xA5);
        free(buf);
    }
    unsigned char *full = malloc(need);
    assert_non_null(full);
    size_t len = 0;
    assert_int_equal(bounce_compose(&f.in, full, need, &len), 0);
    assert_int_equal(len, need);
    /* A short write is a prefix of the full one. */
    unsigned char *part = malloc(need - 1);
    assert_non_null(part);
    assert_int_equal(bounce_compose(&f.in, part, need - 1, &len), ENOSPC);
    assert_memory_equal(part, full, need - 1);
    free(part);
    free(full);
}

enum t_bad {
    T_BAD_NO_RCPTS,
    T_BAD_RCPTS_NULL,
    T_BAD_ENV_NULL,
    T_BAD_NULL_SENDER,
    T_BAD_SENDER_NULL,
    T_BAD_SENDER_CRLF,
    T_BAD_SENDER_LF,
    T_BAD_ENVID_CR,
    T_BAD_ORCPT_LF,
    T_BAD_ORCPT_EMPTY,
    T_BAD_ADDR_CRLF,
    T_BAD_ADDR_NULL,
    T_BAD_RCPT_NULL,
    T_BAD_RESULT_NULL,
    T_BAD_ENHANCED_EMPTY,
    T_BAD_ENHANCED_UNTERMINATED,
    T_BAD_TEXT_LF,
    T_BAD_REMOTE_CRLF,
    T_BAD_DIAG_CRLF,
    T_BAD_DIAG_NUL_CTRL,
    T_BAD_QUEUE_ID_NULL,
    T_BAD_QUEUE_ID_LF,
    T_BAD_MTA_EMPTY,
    T_BAD_MTA_CR,
    T_BAD_BOUNDARY_NULL,
    T_BAD_BOUNDARY_EMPTY,
    T_BAD_BOUNDARY_71,
    T_BAD_BOUNDARY_CHAR,
    T_BAD_BOUNDARY_QUOTE,
    T_BAD_BOUNDARY_TRAILING_SPACE,
    T_BAD_BOUNDARY_CRLF,
    T_BAD_BOUNDARY_IN_ORIGINAL,
    T_BAD_BOUNDARY_IN_HEADERS,
    T_BAD_ORIGINAL_NULL_WITH_LEN,
    T_BAD_NOW_NEGATIVE,
    T_BAD_NOW_YEAR_10000,
    T_BAD_ARRIVAL_NEGATIVE,
    T_BAD_COUNT,
};

/* B4: no value may carry CR or LF into the DSN; nor may anything else make it ill-formed. */
static void test_compose_einval_b4_and_bad_input(void **state)
{
    (void)state;
    char crlf[] = "evil@example.org\r\nBcc: victim@example.com";
    char lf[] = "evil@example.org\nX: y";
    char cr[] = "id\rX: y";
    char empty[] = "";
    char b71[72];
    memset(b71, 'a', 71);
    b71[71] = '\0';
    static const char with_boundary[] = "Subject: x\r\n\r\n--" T_BOUNDARY "\r\nsmuggled\r\n";
    static const char hdr_boundary[] = "X-B: " T_BOUNDARY "\r\n\r\n";
    for (int k = 0; k < T_BAD_COUNT; k++) {
        struct t_fix f;
        t_fix_init(&f);
        switch ((enum t_bad)k) {
        case T_BAD_NO_RCPTS: f.in.nrcpts = 0; break;
        case T_BAD_RCPTS_NULL: f.in.rcpts = NULL; break;
        case T_BAD_ENV_NULL: f.in.env = NULL; break;
        case T_BAD_NULL_SENDER: f.env.sender = empty; break;
        case T_BAD_SENDER_NULL: f.env.sender = NULL; break;
        case T_BAD_SENDER_CRLF: f.env.sender = crlf; break;
        case T_BAD_SENDER_LF: f.env.sender = lf; break;
        case T_BAD_ENVID_CR: f.env.envid = cr; break;
        case T_BAD_ORCPT_LF: f.rcpts[0].orcpt = lf; break;
        case T_BAD_ORCPT_EMPTY: f.rcpts[0].orcpt = empty; break;
        case T_BAD_ADDR_CRLF: f.rcpts[0].addr = crlf; break;
        case T_BAD_ADDR_NULL: f.rcpts[0].addr = NULL; break;
        case T_BAD_RCPT_NULL: f.brcpts[0].rcpt = NULL; break;
        case T_BAD_RESULT_NULL: f.brcpts[0].result = NULL; break;
        case T_BAD_ENHANCED_EMPTY: f.results[0].enhanced[0] = '\0'; break;
        case T_BAD_ENHANCED_UNTERMINATED:
            memset(f.results[0].enhanced, '5', sizeof f.results[0].enhanced);
            break;
        case T_BAD_TEXT_LF: snprintf(f.results[0].text, sizeof f.results[0].text, "a\nb"); break;
        case T_BAD_REMOTE_CRLF: f.brcpts[0].remote_mta = crlf; break;
        case T_BAD_DIAG_CRLF: f.brcpts[0].diagnostic = crlf; break;
        case T_BAD_DIAG_NUL_CTRL: f.brcpts[0].diagnostic = "smtp; 550 \x1b[31m"; break;
        case T_BAD_QUEUE_ID_NULL: f.in.queue_id = NULL; break;
        case T_BAD_QUEUE_ID_LF: f.in.queue_id = lf; break;
        case T_BAD_MTA_EMPTY: f.in.reporting_mta = empty; break;
        case T_BAD_MTA_CR: f.in.reporting_mta = cr; break;
        case T_BAD_BOUNDARY_NULL: f.in.boundary = NULL; break;
        case T_BAD_BOUNDARY_EMPTY: f.in.boundary = empty; break;
        case T_BAD_BOUNDARY_71: f.in.boundary = b71; break;
        case T_BAD_BOUNDARY_CHAR: f.in.boundary = "abc;def"; break;
        case T_BAD_BOUNDARY_QUOTE: f.in.boundary = "abc\"def"; break;
        case T_BAD_BOUNDARY_TRAILING_SPACE: f.in.boundary = "abc "; break;
        case T_BAD_BOUNDARY_CRLF: f.in.boundary = "abc\r\ndef"; break;
        case T_BAD_BOUNDARY_IN_ORIGINAL:
            f.in.original = (const unsigned char *)with_boundary;
            f.in.original_len = sizeof with_boundary - 1;
            break;
        case T_BAD_BOUNDARY_IN_HEADERS:
            f.in.original = (const unsigned char *)hdr_boundary;
            f.in.original_len = sizeof hdr_boundary - 1;
            f.in.original_is_headers = true;
            break;
        case T_BAD_ORIGINAL_NULL_WITH_LEN: f.in.original = NULL; break;
        case T_BAD_NOW_NEGATIVE: f.in.now = -1; break;
        case T_BAD_NOW_YEAR_10000: f.in.now = INT64_C(253402300800); break;
        case T_BAD_ARRIVAL_NEGATIVE: f.env.arrival = -86400; break;
        case T_BAD_COUNT: break;
        }
        unsigned char buf[4096];
        size_t len = 12345;
        if (bounce_compose(&f.in, buf, sizeof buf, &len) != EINVAL)
            fail_msg("bad input %d accepted", k);
        assert_int_equal(len, 12345);
        if (bounce_compose(&f.in, NULL, 0, &len) != EINVAL)
            fail_msg("bad input %d sized", k);
    }
    struct t_fix f;
    t_fix_init(&f);
    unsigned char buf[8];
    assert_int_equal(bounce_compose(NULL, buf, sizeof buf, &(size_t){ 0 }), EINVAL);
    assert_int_equal(bounce_compose(&f.in, buf, sizeof buf, NULL), EINVAL);
}

/* The edges of RFC 2046 §5.1.1's boundary syntax that must be accepted (none of these
 * occurs in t_original). */
static void test_compose_rfc2046_boundary_accepted(void **state)
{
    (void)state;
    char b70[71];
    memset(b70, 'z', 70);
    b70[70] = '\0';
    const char *rows[] = { "Q", b70, "'()+_,-./:=?", "has inner space", "0" };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct t_fix f;
        t_fix_init(&f);
        f.in.boundary = rows[i];
        size_t len;
        if (bounce_compose(&f.in, NULL, 0, &len) != ENOSPC)
            fail_msg("boundary %zu refused", i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wanted_rfc3461_4_1_truth_table),
        cmocka_unit_test(test_compose_rfc3464_2_failure_structure),
        cmocka_unit_test(test_compose_rfc3464_optional_fields),
        cmocka_unit_test(test_compose_rfc6522_4_ret_hdrs),
        cmocka_unit_test(test_compose_original_variants),
        cmocka_unit_test(test_compose_rfc3464_2_multiple_recipients),
        cmocka_unit_test(test_compose_rfc5322_3_3_dates),
        cmocka_unit_test(test_compose_enospc_exact_size),
        cmocka_unit_test(test_compose_einval_b4_and_bad_input),
        cmocka_unit_test(test_compose_rfc2046_boundary_accepted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
