/* Unit tests for deliver/smtp_client: the real client on a libevent loop against scripted
 * fake servers, each a thread with blocking sockets on 127.0.0.1 port 0 (or an AF_UNIX
 * socket for LMTP, tests/unit/smtp_fake_server.c) that reads the client's lines, checks them
 * and answers from its script.
 * Covered: per-recipient results, PIPELINING grouping (a server that answers only once the
 * whole group is in), one command at a time without it, HELO fallback, 421 in the middle
 * of a transaction, a peer vanishing during and right after DATA (J8), over-long and short
 * reply lines (J1), mixed codes (J2), STARTTLS in MAY and VERIFY modes (untrusted, trusted,
 * wrong name, not offered: J4) with plaintext injected after the 220 (J3), AUTH PLAIN,
 * LMTP replies per recipient, connection reuse with RSET, timeouts, falling back to the
 * next target, 5xx greetings, loops (J5), SMTPUTF8 (5.6.7), SIZE (5.3.4), BINARYMIME
 * (5.6.3), CHUNKING, DSN parameters, and closing while an open is in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "deliver/smtp_client.h"
#include "net/tls.h"
#include "net/tls_client.h"
#include "smtp_fake_server.h"
#include "util/log.h"

/* ---- the client side ---- */

#define T_MSGS 3
#define T_RCPTS 4

struct t_run {
    struct event_base *base;
    struct smtp_client_target targets[3];
    struct smtp_conn_params params;
    const char *self[1];
    struct queue_envelope env[T_MSGS];
    struct smtp_msg msgs[T_MSGS];
    size_t nmsgs, sent;
    int fd[T_MSGS];
    bool failed, ready;
    struct deliver_result err;
    struct deliver_result res[T_MSGS][T_RCPTS];
    bool reusable[T_MSGS];
    char tlsdesc[256];
    char target[SMTP_CLIENT_NAME_MAX + 1];
    int ready_calls, sent_calls;
};

static struct queue_rcpt t_rcpts[T_RCPTS] = {
    {"b@example.net", 0, NULL},
    {"c@example.net", 0, NULL},
    {"d@example.net", 0, NULL},
    {"e@example.net", 0, NULL},
};

static void t_sent_cb(struct smtp_conn *conn, const struct deliver_result *results, bool reusable,
                      void *arg)
{
    struct t_run *t = arg;
    size_t k = t->sent++;
    t->sent_calls++;
    memcpy(t->res[k], results, t->msgs[k].nrcpts * sizeof *results);
    t->reusable[k] = reusable;
    if (t->sent < t->nmsgs && reusable)
        smtp_conn_send(conn, &t->msgs[t->sent], t_sent_cb, t);
    else
        smtp_conn_close(conn);
}

static void t_ready_cb(struct smtp_conn *conn, const struct deliver_result *err, void *arg)
{
    struct t_run *t = arg;
    t->ready_calls++;
    if (conn == NULL) {
        t->failed = true;
        t->err = *err;
        return;
    }
    assert_null(err);
    t->ready = true;
    smtp_conn_tls(conn, t->tlsdesc, sizeof t->tlsdesc);
    snprintf(t->target, sizeof t->target, "%s", smtp_conn_target(conn)->name);
    if (t->nmsgs == 0)
        smtp_conn_close(conn);
    else
        smtp_conn_send(conn, &t->msgs[0], t_sent_cb, t);
}

static void t_init(struct t_run *t, unsigned timeout_ms)
{
    memset(t, 0, sizeof *t);
    t->base = event_base_new();
    assert_non_null(t->base);
    t->params.helo_name = "client.example.org";
    t->params.targets = t->targets;
    t->params.tls = SMTP_CLIENT_TLS_NONE;
    t->self[0] = "self.example.org";
    t->params.self_names = t->self;
    t->params.nself = 1;
    struct smtp_client_timeouts to = {timeout_ms, timeout_ms, timeout_ms,
                                      timeout_ms, timeout_ms, timeout_ms};
    t->params.timeouts = to;
    for (int i = 0; i < T_MSGS; i++)
        t->fd[i] = -1;
}

static void t_target(struct t_run *t, const struct fs *s, const char *name)
{
    struct smtp_client_target *tg = &t->targets[t->params.ntargets++];
    snprintf(tg->name, sizeof tg->name, "%s", name);
    memcpy(&tg->addr, &s->addr, s->addrlen);
    tg->addrlen = s->addrlen;
}

/* A message with nrcpts recipients and the given bytes. */
static struct queue_envelope *t_msg(struct t_run *t, size_t nrcpts, const void *body, size_t len)
{
    size_t k = t->nmsgs++;
    FILE *f = tmpfile();
    assert_non_null(f);
    t->fd[k] = dup(fileno(f));
    fclose(f);
    /* Some bytes before the message, so that body_offset is exercised. */
    assert_int_equal(pwrite(t->fd[k], "XXXX", 4, 0), 4);
    assert_int_equal(pwrite(t->fd[k], body, len, 4), (ssize_t)len);
    struct queue_envelope *env = &t->env[k];
    env->sender = "a@example.org";
    env->rcpts = t_rcpts;
    env->nrcpts = nrcpts;
    env->body = PROTO_BODY_7BIT;
    t->msgs[k] = (struct smtp_msg){env, t_rcpts, nrcpts, t->fd[k], 4, len};
    return env;
}

static void t_run(struct t_run *t)
{
    struct smtp_conn *c = smtp_conn_open(t->base, &t->params, t_ready_cb, t);
    assert_non_null(c);
    assert_int_equal(t->ready_calls, 0); /* never from inside the call */
    event_base_dispatch(t->base);
    assert_int_equal(t->ready_calls, 1);
}

static void t_done(struct t_run *t)
{
    for (int i = 0; i < T_MSGS; i++)
        if (t->fd[i] >= 0)
            close(t->fd[i]);
    event_base_free(t->base);
}

static void t_expect(const struct deliver_result *r, enum deliver_status st, const char *enhanced,
                     const char *text)
{
    if (r->status != st || strcmp(r->enhanced, enhanced) != 0 ||
        (text != NULL && strstr(r->text, text) == NULL))
        fail_msg("result %d %s \"%s\", wanted %d %s \"%s\"", r->status, r->enhanced, r->text, st,
                 enhanced, text != NULL ? text : "");
}

#define EHLO_PLAIN "S:250-fake.example.net", "S:250 8BITMIME"
#define EHLO_PIPE "S:250-fake.example.net", "S:250-PIPELINING", "S:250 8BITMIME"

/* ---- tests ---- */

static const char body_j10[] = "Subject: t\n\n.leading dot\nbare lf\n.\nend";
static const char body_j10_wire[] =
    "Subject: t\r\n\r\n..leading dot\r\nbare lf\r\n..\r\nend\r\n.\r\n";

/* Per-recipient results without PIPELINING: one command per reply; the body goes out
 * CRLF-normalised and dot-stuffed (J10). */
static void test_client_per_recipient_results(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 fake.example.net ESMTP",
                                         "=EHLO client.example.org",
                                         "S:250-fake.example.net",
                                         "S:250 SIZE 1000000",
                                         "C:MAIL FROM:<a@example.org> SIZE=",
                                         "S:250 2.1.0 ok",
                                         "=RCPT TO:<b@example.net>",
                                         "S:250 2.1.5 ok",
                                         "=RCPT TO:<c@example.net>",
                                         "S:550 5.1.1 no such user",
                                         "=DATA",
                                         "S:354 go",
                                         "DATA",
                                         "S:250 2.0.0 queued as X1",
                                         "QUIT",
                                         NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 3000);
    t_target(&t, &s, "fake.example.net");
    t_msg(&t, 2, body_j10, strlen(body_j10));
    t_run(&t);
    fs_end(&s);
    assert_true(t.ready);
    assert_int_equal(t.sent_calls, 1);
    t_expect(&t.res[0][0], DELIVER_OK, "2.0.0", "250 2.0.0 queued as X1");
    assert_true(t.res[0][0].remote_reply);
    t_expect(&t.res[0][1], DELIVER_PERMFAIL, "5.1.1", "550 5.1.1 no such user");
    assert_true(t.res[0][1].remote_reply);
    assert_true(t.reusable[0]);
    assert_false(s.pipelined);
    assert_int_equal(s.bodylen, strlen(body_j10_wire));
    assert_memory_equal(s.body, body_j10_wire, s.bodylen);
    assert_string_equal(t.tlsdesc, "none");
    t_done(&t);
    fs_free(&s);
}

/* RFC 2920: MAIL, every RCPT and DATA go out as one group; this server answers only once
 * it has all of them, so a client waiting after MAIL would time out. */
static void test_client_pipelining_group(void **state)
{
    (void)state;
    static const char *const script[] = {
        "S:220 fake.example.net ESMTP",
        "C:EHLO",
        EHLO_PIPE,
        "C:MAIL FROM:<a@example.org>",
        "C:RCPT TO:<b@example.net>",
        "C:RCPT TO:<c@example.net>",
        "C:RCPT TO:<d@example.net>",
        "=DATA",
        "R:250 ok\r\n250 ok\r\n452 4.2.2 full\r\n250 ok\r\n354 go\r\n",
        "DATA",
        "S:250 2.0.0 queued",
        "QUIT",
        NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    t_msg(&t, 3, "hi\r\n", 4);
    t_run(&t);
    fs_end(&s);
    t_expect(&t.res[0][0], DELIVER_OK, "2.0.0", NULL);
    t_expect(&t.res[0][1], DELIVER_TEMPFAIL, "4.2.2", "452 4.2.2 full");
    assert_true(s.pipelined);
    t_expect(&t.res[0][2], DELIVER_OK, "2.0.0", NULL);
    assert_memory_equal(s.body, "hi\r\n.\r\n", 7);
    t_done(&t);
    fs_free(&s);
}

/* RFC 2920 §3.1: every RCPT refused but 354 to the pipelined DATA: the client ends the DATA
 * at once with a lone dot and sends no message bytes. */
static void test_client_pipelining_all_refused(void **state)
{
    (void)state;
    static const char *const script[] = {
        "S:220 fake.example.net ESMTP",
        "C:EHLO",
        EHLO_PIPE,
        "C:MAIL",
        "C:RCPT",
        "C:RCPT",
        "=DATA",
        "R:250 ok\r\n550 5.1.1 no\r\n551 5.1.6 moved\r\n354 go\r\n",
        "DATA",
        "S:554 5.5.1 no valid recipients",
        "QUIT",
        NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    t_msg(&t, 2, "secret\r\n", 8);
    t_run(&t);
    fs_end(&s);
    t_expect(&t.res[0][0], DELIVER_PERMFAIL, "5.1.1", "550 5.1.1 no");
    t_expect(&t.res[0][1], DELIVER_PERMFAIL, "5.1.6", "551 5.1.6 moved");
    assert_int_equal(s.bodylen, 3);
    assert_memory_equal(s.body, ".\r\n", 3);
    assert_true(t.reusable[0]);
    t_done(&t);
    fs_free(&s);
}

/* MAIL refused: every recipient gets that reply; nothing more is sent. */
static void test_client_mail_refused(void **state)
{
    (void)state;
    static const char *const script[] = {
        "S:220 fake.example.net ESMTP", "C:EHLO", EHLO_PLAIN, "C:MAIL",
        "S:553 5.7.1 sender rejected",  "QUIT",   NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    t_msg(&t, 2, "x\r\n", 3);
    t_run(&t);
    fs_end(&s);
    t_expect(&t.res[0][0], DELIVER_PERMFAIL, "5.7.1", "553 5.7.1 sender rejected");
    t_expect(&t.res[0][1], DELIVER_PERMFAIL, "5.7.1", "553 5.7.1 sender rejected");
    t_done(&t);
    fs_free(&s);
}

/* RFC 5321 §4.1.1.1 / §3.2: EHLO refused with 5xx, HELO works; no ESMTP parameters then. */
static void test_client_helo_fallback(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 old.example.net SMTP",
                                         "=EHLO client.example.org",
                                         "S:502 5.5.1 what?",
                                         "=HELO client.example.org",
                                         "S:250 old.example.net",
                                         "=MAIL FROM:<a@example.org>",
                                         "S:250 ok",
                                         "=RCPT TO:<b@example.net>",
                                         "S:250 ok",
                                         "=DATA",
                                         "S:354 go",
                                         "DATA",
                                         "S:250 ok",
                                         "QUIT",
                                         NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "old.example.net");
    struct queue_envelope *env = t_msg(&t, 1, "x\r\n", 3);
    env->body = PROTO_BODY_8BITMIME; /* sent as it is: no BODY= to a peer without 8BITMIME */
    t_run(&t);
    fs_end(&s);
    t_expect(&t.res[0][0], DELIVER_OK, "2.0.0", "250 ok");
    t_done(&t);
    fs_free(&s);
}

/* RFC 5321 §3.8: 421 in the middle: everything open is deferred, the connection is gone. */
static void test_client_421_mid_transaction(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 fake.example.net ESMTP",
                                         "C:EHLO",
                                         EHLO_PLAIN,
                                         "C:MAIL",
                                         "S:250 ok",
                                         "C:RCPT",
                                         "S:250 ok",
                                         "C:RCPT",
                                         "S:421 4.3.2 shutting down",
                                         "CLOSE",
                                         NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    t_msg(&t, 2, "x\r\n", 3);
    t_msg(&t, 1, "y\r\n", 3);
    t_run(&t);
    fs_end(&s);
    assert_int_equal(t.sent_calls, 1);
    t_expect(&t.res[0][0], DELIVER_TEMPFAIL, "4.3.2", "421 4.3.2 shutting down");
    t_expect(&t.res[0][1], DELIVER_TEMPFAIL, "4.3.2", "421 4.3.2 shutting down");
    assert_false(t.reusable[0]);
    t_done(&t);
    fs_free(&s);
}

/* The peer hangs up in the middle of a large body: deferred, not reusable. */
static void test_client_J8_vanish_mid_data(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 fake.example.net ESMTP",
                                         "C:EHLO",
                                         EHLO_PLAIN,
                                         "C:MAIL",
                                         "S:250 ok",
                                         "C:RCPT",
                                         "S:250 ok",
                                         "C:DATA",
                                         "S:354 go",
                                         "C:line",
                                         "CLOSE",
                                         NULL};
    size_t len = 3 * 1024 * 1024;
    char *big = malloc(len);
    assert_non_null(big);
    for (size_t i = 0; i < len; i++)
        big[i] = i % 64 == 63 ? '\n' : 'a';
    memcpy(big, "line\n", 5);
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    t_msg(&t, 1, big, len);
    t_run(&t);
    fs_end(&s);
    t_expect(&t.res[0][0], DELIVER_TEMPFAIL, "4.4.2", "lost");
    assert_false(t.res[0][0].remote_reply);
    assert_false(t.reusable[0]);
    t_done(&t);
    fs_free(&s);
    free(big);
}

/* J8: the whole body and the dot, then the peer closes without a reply: not delivered. */
static void test_client_J8_close_after_dot(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 fake.example.net ESMTP",
                                         "C:EHLO",
                                         EHLO_PLAIN,
                                         "C:MAIL",
                                         "S:250 ok",
                                         "C:RCPT",
                                         "S:250 ok",
                                         "C:DATA",
                                         "S:354 go",
                                         "DATA",
                                         "CLOSE",
                                         NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    t_msg(&t, 1, "x\r\n", 3);
    t_run(&t);
    fs_end(&s);
    t_expect(&t.res[0][0], DELIVER_TEMPFAIL, "4.4.2", NULL);
    assert_false(t.reusable[0]);
    t_done(&t);
    fs_free(&s);
}

struct j_case {
    const char *name;
    const char *reply; /* the raw reply to MAIL */
};

static const struct j_case j_cases[] = {
    {"J1_short_line", "250-ok\r\n25\r\n"},
    {"J2_code_999", "999 ok\r\n"},
    {"J2_mixed_codes", "250-ok\r\n550 no\r\n"},
    {"J2_non_numeric", "2x0 ok\r\n"},
    {"bare_lf", "250 ok\n"},
    {"bare_cr", "250 o\rk\r\n"},
};

/* J1, J2 and framing errors in a reply mid-transaction: 4.5.0, connection dropped. */
static void test_client_J1_J2_bad_replies(void **state)
{
    (void)state;
    char longline[700];
    memset(longline, 'a', sizeof longline);
    memcpy(longline, "R:250 ", 6);
    memcpy(longline + 600, "\r\n", 3);
    for (size_t k = 0; k <= sizeof j_cases / sizeof j_cases[0]; k++) {
        char raw[64];
        const char *reply;
        if (k == sizeof j_cases / sizeof j_cases[0]) {
            reply = longline;
        } else {
            snprintf(raw, sizeof raw, "R:%s", j_cases[k].reply);
            reply = raw;
        }
        const char *const script[] = {
            "S:220 fake.example.net ESMTP", "C:EHLO", EHLO_PLAIN, "C:MAIL", reply, "NOTHING", NULL};
        struct fs s;
        struct t_run t;
        fs_start(&s, script, NULL);
        t_init(&t, 1500);
        t_target(&t, &s, "fake.example.net");
        t_msg(&t, 1, "x\r\n", 3);
        t_run(&t);
        fs_end(&s);
        t_expect(&t.res[0][0], DELIVER_TEMPFAIL, "4.5.0", "protocol error");
        assert_false(t.reusable[0]);
        t_done(&t);
        fs_free(&s);
    }
}

/* J1 in the greeting: the target is skipped with a temporary failure. */
static void test_client_J1_greeting(void **state)
{
    (void)state;
    static const char *const script[] = {"R:220-fake\r\n22\r\n", "NOTHING", NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    t_run(&t);
    fs_end(&s);
    assert_true(t.failed);
    t_expect(&t.err, DELIVER_TEMPFAIL, "4.5.0", "protocol error");
    t_done(&t);
    fs_free(&s);
}

/* The spool file is shorter than the message should be: deferred 4.3.0, and the
 * connection, now in the middle of DATA, is dropped. */
static void test_client_short_body_file(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 fake.example.net ESMTP",
                                         "C:EHLO",
                                         EHLO_PLAIN,
                                         "C:MAIL",
                                         "S:250 ok",
                                         "C:RCPT",
                                         "S:250 ok",
                                         "C:DATA",
                                         "S:354 go",
                                         "NOTHING",
                                         NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    t_msg(&t, 1, "x\r\n", 3);
    t.msgs[0].body_len = 100;
    t_run(&t);
    fs_end(&s);
    t_expect(&t.res[0][0], DELIVER_TEMPFAIL, "4.3.0", "cannot read");
    assert_false(t.reusable[0]);
    t_done(&t);
    fs_free(&s);
}

/* Two transactions on one connection, RSET between (RFC 5321 §4.1.1.5). */
static void test_client_reuse_with_rset(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 fake.example.net ESMTP",
                                         "C:EHLO",
                                         EHLO_PLAIN,
                                         "C:MAIL",
                                         "S:250 ok",
                                         "C:RCPT",
                                         "S:250 ok",
                                         "C:DATA",
                                         "S:354 go",
                                         "DATA",
                                         "S:250 one",
                                         "=RSET",
                                         "S:250 ok",
                                         "C:MAIL",
                                         "S:250 ok",
                                         "C:RCPT",
                                         "S:250 ok",
                                         "C:DATA",
                                         "S:354 go",
                                         "DATA",
                                         "S:250 two",
                                         "QUIT",
                                         NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    t_msg(&t, 1, "1\r\n", 3);
    t_msg(&t, 1, "2\r\n", 3);
    t_run(&t);
    fs_end(&s);
    assert_int_equal(t.sent_calls, 2);
    t_expect(&t.res[0][0], DELIVER_OK, "2.0.0", "250 one");
    t_expect(&t.res[1][0], DELIVER_OK, "2.0.0", "250 two");
    assert_memory_equal(s.body, "1\r\n.\r\n2\r\n.\r\n", 12);
    t_done(&t);
    fs_free(&s);
}

/* RFC 5321 §4.5.3.2 timeouts (200 ms here): a silent MAIL reply, a silent greeting. */
static void test_client_J9_timeouts(void **state)
{
    (void)state;
    static const char *const script[] = {
        "S:220 fake.example.net ESMTP", "C:EHLO", EHLO_PLAIN, "C:MAIL", "SLEEP:600", NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 200);
    t_target(&t, &s, "fake.example.net");
    t_msg(&t, 1, "x\r\n", 3);
    t_run(&t);
    fs_end(&s);
    t_expect(&t.res[0][0], DELIVER_TEMPFAIL, "4.4.2", "timeout");
    assert_false(t.reusable[0]);
    t_done(&t);
    fs_free(&s);

    static const char *const silent[] = {"SLEEP:600", NULL};
    fs_start(&s, silent, NULL);
    t_init(&t, 200);
    t_target(&t, &s, "fake.example.net");
    t_run(&t);
    fs_end(&s);
    assert_true(t.failed);
    t_expect(&t.err, DELIVER_TEMPFAIL, "4.4.2", "timeout");
    t_done(&t);
    fs_free(&s);
}

/* A port nothing listens on. */
static void t_dead_target(struct t_run *t, const char *name)
{
    struct fs dead;
    memset(&dead, 0, sizeof dead);
    struct sockaddr_in *in = (struct sockaddr_in *)&dead.addr;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dead.addrlen = sizeof *in;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&dead.addr, dead.addrlen), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&dead.addr, &dead.addrlen), 0);
    close(fd);
    t_target(t, &dead, name);
}

/* RFC 5321 §5.1: targets in order; an unreachable one is skipped. */
static void test_client_next_target(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 mx2.example.net ESMTP",
                                         "C:EHLO",
                                         EHLO_PLAIN,
                                         "C:MAIL",
                                         "S:250 ok",
                                         "C:RCPT",
                                         "S:250 ok",
                                         "C:DATA",
                                         "S:354 go",
                                         "DATA",
                                         "S:250 ok",
                                         "QUIT",
                                         NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_dead_target(&t, "mx1.example.net");
    t_target(&t, &s, "mx2.example.net");
    t_msg(&t, 1, "x\r\n", 3);
    t_run(&t);
    fs_end(&s);
    assert_string_equal(t.target, "mx2.example.net");
    t_expect(&t.res[0][0], DELIVER_OK, "2.0.0", NULL);
    t_done(&t);
    fs_free(&s);

    t_init(&t, 1500);
    t_dead_target(&t, "mx1.example.net");
    t_run(&t);
    assert_true(t.failed);
    t_expect(&t.err, DELIVER_TEMPFAIL, "4.4.1", "cannot connect");
    t_done(&t);
}

/* A 5xx greeting is permanent when it came from the last reachable target; a later
 * unreachable target does not change that, a later 4xx one does. */
static void test_client_greeting_5xx(void **state)
{
    (void)state;
    static const char *const s554[] = {"S:554 5.7.1 go away", "NOTHING", NULL};
    static const char *const s421[] = {"S:421 4.3.2 busy", "NOTHING", NULL};
    struct fs a, b;
    struct t_run t;

    fs_start(&a, s554, NULL);
    t_init(&t, 1500);
    t_target(&t, &a, "mx1.example.net");
    t_dead_target(&t, "mx2.example.net");
    t_run(&t);
    fs_end(&a);
    assert_true(t.failed);
    t_expect(&t.err, DELIVER_PERMFAIL, "5.7.1", "554 5.7.1 go away");
    assert_true(t.err.remote_reply);
    t_done(&t);
    fs_free(&a);

    fs_start(&a, s554, NULL);
    fs_start(&b, s421, NULL);
    t_init(&t, 1500);
    t_target(&t, &a, "mx1.example.net");
    t_target(&t, &b, "mx2.example.net");
    t_run(&t);
    fs_end(&a);
    fs_end(&b);
    t_expect(&t.err, DELIVER_TEMPFAIL, "4.3.2", "421 4.3.2 busy");
    t_done(&t);
    fs_free(&a);
    fs_free(&b);
}

/* J5: the peer greets with our own name: 5.4.6, no other target tried. */
static void test_client_J5_loop(void **state)
{
    (void)state;
    static const char *const greet[] = {"S:220 SELF.example.org ESMTP", "NOTHING", NULL};
    static const char *const ehlo[] = {"S:220 other ESMTP", "C:EHLO",  "S:250-self.example.org",
                                       "S:250 8BITMIME",    "NOTHING", NULL};
    const char *const *scripts[] = {greet, ehlo};
    for (int k = 0; k < 2; k++) {
        struct fs s;
        struct t_run t;
        fs_start(&s, scripts[k], NULL);
        t_init(&t, 1500);
        t_target(&t, &s, "mx.example.net");
        t_run(&t);
        fs_end(&s);
        assert_true(t.failed);
        t_expect(&t.err, DELIVER_PERMFAIL, "5.4.6", "loops back");
        t_done(&t);
        fs_free(&s);
    }
}

/* Refusals before any command: SMTPUTF8 (RFC 6531 §3.5), SIZE (RFC 1870), BINARYMIME
 * (RFC 3030 §3); the connection stays usable and the next message goes through. */
static void test_client_refused_before_mail(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 fake.example.net ESMTP",
                                         "C:EHLO",
                                         "S:250-fake.example.net",
                                         "S:250-SIZE 100",
                                         "S:250 8BITMIME",
                                         "=MAIL FROM:<a@example.org> SIZE=3 BODY=8BITMIME",
                                         "S:250 ok",
                                         "C:RCPT",
                                         "S:250 ok",
                                         "C:DATA",
                                         "S:354 go",
                                         "DATA",
                                         "S:250 ok",
                                         "QUIT",
                                         NULL};
    char big[200];
    memset(big, 'a', sizeof big);
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    t_msg(&t, 2, "x\r\n", 3)->smtputf8 = true;
    t_msg(&t, 1, big, sizeof big);
    t_msg(&t, 1, "x\r\n", 3)->body = PROTO_BODY_8BITMIME;
    t_run(&t);
    fs_end(&s);
    assert_int_equal(t.sent_calls, 3);
    t_expect(&t.res[0][0], DELIVER_PERMFAIL, "5.6.7", "SMTPUTF8");
    t_expect(&t.res[0][1], DELIVER_PERMFAIL, "5.6.7", "SMTPUTF8");
    assert_false(t.res[0][0].remote_reply);
    assert_true(t.reusable[0]);
    t_expect(&t.res[1][0], DELIVER_PERMFAIL, "5.3.4", NULL);
    t_expect(&t.res[2][0], DELIVER_OK, "2.0.0", NULL);
    t_done(&t);
    fs_free(&s);

    static const char *const nobin[] = {"S:220 fake.example.net ESMTP",
                                        "C:EHLO",
                                        "S:250-fake.example.net",
                                        "S:250 CHUNKING",
                                        "QUIT",
                                        NULL};
    fs_start(&s, nobin, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    t_msg(&t, 1, "x\r\n", 3)->body = PROTO_BODY_BINARYMIME;
    t_run(&t);
    fs_end(&s);
    t_expect(&t.res[0][0], DELIVER_PERMFAIL, "5.6.3", NULL);
    t_done(&t);
    fs_free(&s);
}

/* RFC 3030: BDAT chunks (eleven for 700 KB), not stuffed, CRLF-normalised; BINARYMIME bytes
 * go exactly as they are. */
static void test_client_chunking(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 fake.example.net ESMTP",
                                         "C:EHLO",
                                         "S:250-fake.example.net",
                                         "S:250-PIPELINING",
                                         "S:250-BINARYMIME",
                                         "S:250 CHUNKING",
                                         "C:MAIL",
                                         "C:RCPT",
                                         "R:250 ok\r\n250 ok\r\n",
                                         "BDAT",
                                         "=RSET",
                                         "S:250 ok",
                                         "C:MAIL FROM:<a@example.org> BODY=BINARYMIME",
                                         "C:RCPT",
                                         "R:250 ok\r\n250 ok\r\n",
                                         "BDAT",
                                         "QUIT",
                                         NULL};
    size_t len = 700 * 1024;
    char *text = malloc(len);
    char *wire = malloc(2 * len);
    assert_non_null(text);
    assert_non_null(wire);
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        text[i] = i % 50 == 49 ? '\n' : i % 50 == 0 ? '.' : 'b';
        if (text[i] == '\n')
            wire[w++] = '\r';
        wire[w++] = text[i];
    }
    const char bin[] = "\x00\r.\n\r\n.\r\n\xff";
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    t_msg(&t, 1, text, len);
    t_msg(&t, 1, bin, sizeof bin - 1)->body = PROTO_BODY_BINARYMIME;
    t_run(&t);
    fs_end(&s);
    t_expect(&t.res[0][0], DELIVER_OK, "2.0.0", "queued");
    t_expect(&t.res[1][0], DELIVER_OK, "2.0.0", "queued");
    assert_int_equal(s.bodylen, w + sizeof bin - 1);
    assert_memory_equal(s.body, wire, w);
    assert_memory_equal(s.body + w, bin, sizeof bin - 1);
    int chunks = 0;
    for (const char *p = s.rx; (p = strstr(p, "BDAT ")) != NULL; p++)
        chunks++;
    assert_int_equal(chunks, 12);
    t_done(&t);
    fs_free(&s);
    free(text);
    free(wire);
}

/* RFC 3461 §4: RET, ENVID, NOTIFY and ORCPT passed on (xtext) when the peer offers DSN,
 * and SMTPUTF8 when the envelope needs it and the peer offers it. */
static void test_client_dsn_parameters(void **state)
{
    (void)state;
    static const char *const script[] = {
        "S:220 fake.example.net ESMTP",
        "C:EHLO",
        "S:250-fake.example.net",
        "S:250-DSN",
        "S:250 SMTPUTF8",
        "=MAIL FROM:<a@example.org> SMTPUTF8 RET=HDRS ENVID=id+2B1",
        "S:250 ok",
        "=RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx@example.net",
        "S:250 ok",
        "=RCPT TO:<c@example.net> NOTIFY=NEVER",
        "S:250 ok",
        "C:DATA",
        "S:354 go",
        "DATA",
        "S:250 ok",
        "QUIT",
        NULL};
    struct queue_rcpt rcpts[2] = {
        {"b@example.net", PROTO_NOTIFY_SUCCESS | PROTO_NOTIFY_FAILURE, "rfc822;b+x@example.net"},
        {"c@example.net", PROTO_NOTIFY_NEVER, NULL},
    };
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    struct queue_envelope *env = t_msg(&t, 2, "x\r\n", 3);
    env->ret = PROTO_RET_HDRS;
    env->envid = "id+1";
    env->smtputf8 = true;
    t.msgs[0].rcpts = rcpts;
    t_run(&t);
    fs_end(&s);
    t_expect(&t.res[0][0], DELIVER_OK, "2.0.0", NULL);
    t_expect(&t.res[0][1], DELIVER_OK, "2.0.0", NULL);
    t_done(&t);
    fs_free(&s);
}

/* RFC 2033 §4.2: one reply per accepted recipient after the data, over a unix socket. */
static void test_client_lmtp_per_recipient(void **state)
{
    (void)state;
    static const char *const script[] = {
        "S:220 lmtp.example.net LMTP",
        "=LHLO client.example.org",
        "S:250-lmtp.example.net",
        "S:250-PIPELINING",
        "S:250 ENHANCEDSTATUSCODES",
        "C:MAIL",
        "C:RCPT TO:<b@",
        "C:RCPT TO:<c@",
        "C:RCPT TO:<d@",
        "=DATA",
        "R:250 ok\r\n250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n354 go\r\n",
        "DATA",
        "R:250 2.0.0 <b> saved\r\n452 4.2.2 <c> over quota\r\n",
        "QUIT",
        NULL};
    char path[64];
    snprintf(path, sizeof path, "/tmp/sluice-lmtp-%d.sock", (int)getpid());
    struct fs s;
    struct t_run t;
    fs_start_unix(&s, script, path);
    t_init(&t, 1500);
    t.params.lmtp = true;
    t_target(&t, &s, "lmtp");
    t_msg(&t, 3, "x\r\n", 3);
    t_run(&t);
    fs_end(&s);
    t_expect(&t.res[0][0], DELIVER_OK, "2.0.0", "<b> saved");
    t_expect(&t.res[0][1], DELIVER_TEMPFAIL, "4.2.2", "<c> over quota");
    t_expect(&t.res[0][2], DELIVER_PERMFAIL, "5.1.1", "unknown");
    assert_true(t.reusable[0]);
    unlink(path);
    t_done(&t);
    fs_free(&s);
}

/* LMTP: an LHLO refusal is final, no HELO fallback. */
static void test_client_lmtp_no_helo(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 lmtp LMTP", "C:LHLO", "S:500 5.5.1 no", "NOTHING",
                                         NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t.params.lmtp = true;
    t_target(&t, &s, "lmtp");
    t_run(&t);
    fs_end(&s);
    t_expect(&t.err, DELIVER_PERMFAIL, "5.5.1", "500 5.5.1 no");
    t_done(&t);
    fs_free(&s);
}

/* ---- TLS ---- */

struct tls_fixture {
    char dir[64];
    char cert[128];
    char key[128];
    SSL_CTX *server;
};

static int t_rm(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void tls_fixture_make(struct tls_fixture *f)
{
    char err[256];
    snprintf(f->dir, sizeof f->dir, "/tmp/sluice-smtpc-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->cert, sizeof f->cert, "%s/cert.pem", f->dir);
    snprintf(f->key, sizeof f->key, "%s/key.pem", f->dir);
    assert_int_equal(tls_ensure_self_signed(f->cert, f->key, "mx.test", err, sizeof err), 0);
    f->server = tls_server_ctx(f->cert, f->key, err, sizeof err);
    assert_non_null(f->server);
}

static void tls_fixture_free(struct tls_fixture *f)
{
    SSL_CTX_free(f->server);
    nftw(f->dir, t_rm, 8, FTW_DEPTH | FTW_PHYS);
}

#define TLS_DELIVER_AFTER_MAIL                                                                     \
    "S:250 ok", "C:RCPT", "S:250 ok", "C:DATA", "S:354 go", "DATA", "S:250 ok", "QUIT"
#define TLS_DELIVER "C:MAIL", TLS_DELIVER_AFTER_MAIL
/* STARTTLS, EHLO again with AUTH PLAIN offered, and our AUTH PLAIN sent. */
#define TLS_AUTH_PLAIN_SENT                                                                        \
    "S:220 mx.test ESMTP", "C:EHLO", "S:250-mx.test", "S:250 STARTTLS", "=STARTTLS", "S:220 go",   \
        "TLS", "C:EHLO", "S:250-mx.test", "S:250 AUTH PLAIN", "C:AUTH PLAIN "

/* RFC 3207, RFC 7435: MAY takes STARTTLS without checking the certificate, says EHLO again,
 * and drops plaintext the server sent after its 220 (J3). */
static void test_client_starttls_may_J3(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 mx.test ESMTP",
                                         "C:EHLO",
                                         "S:250-mx.test",
                                         "S:250 STARTTLS",
                                         "=STARTTLS",
                                         "R:220 go ahead\r\n250 injected\r\n",
                                         "TLS",
                                         "C:EHLO",
                                         "S:250-mx.test",
                                         "S:250 8BITMIME",
                                         TLS_DELIVER,
                                         NULL};
    struct tls_fixture f;
    char err[256];
    tls_fixture_make(&f);
    SSL_CTX *ctx = tls_client_ctx(NULL, err, sizeof err);
    assert_non_null(ctx);
    struct fs s;
    struct t_run t;
    fs_start(&s, script, f.server);
    t_init(&t, 3000);
    t.params.tls = SMTP_CLIENT_TLS_MAY;
    t.params.tls_ctx = ctx;
    t_target(&t, &s, "untrusted.example.net");
    t_msg(&t, 1, "x\r\n", 3);
    t_run(&t);
    fs_end(&s);
    assert_true(t.ready);
    assert_non_null(strstr(t.tlsdesc, "TLSv1"));
    t_expect(&t.res[0][0], DELIVER_OK, "2.0.0", NULL);
    t_done(&t);
    fs_free(&s);
    SSL_CTX_free(ctx);
    tls_fixture_free(&f);
}

/* MAY: a refused STARTTLS goes on in plaintext. */
static void test_client_starttls_may_refused(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 mx.test ESMTP", "C:EHLO",    "S:250-mx.test",
                                         "S:250 STARTTLS",      "=STARTTLS", "S:454 4.7.0 not now",
                                         TLS_DELIVER,           NULL};
    char err[256];
    SSL_CTX *ctx = tls_client_ctx(NULL, err, sizeof err);
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 3000);
    t.params.tls = SMTP_CLIENT_TLS_MAY;
    t.params.tls_ctx = ctx;
    t_target(&t, &s, "mx.test");
    t_msg(&t, 1, "x\r\n", 3);
    t_run(&t);
    fs_end(&s);
    assert_string_equal(t.tlsdesc, "none");
    t_expect(&t.res[0][0], DELIVER_OK, "2.0.0", NULL);
    t_done(&t);
    fs_free(&s);
    SSL_CTX_free(ctx);
}

/* VERIFY: an untrusted certificate or a wrong name fails with 4.7.5 and nothing is sent;
 * a trusted one with the right name works (and AUTH PLAIN goes over it, RFC 4616; MAIL then
 * carries AUTH=, RFC 4954 §5). */
static void test_client_starttls_verify(void **state)
{
    (void)state;
    static const char *const bad[] = {"S:220 mx.test ESMTP",
                                      "C:EHLO",
                                      "S:250-mx.test",
                                      "S:250 STARTTLS",
                                      "=STARTTLS",
                                      "S:220 go",
                                      "TLS",
                                      "NOTHING",
                                      NULL};
    static const char *const good[] = {"S:220 mx.test ESMTP",
                                       "C:EHLO",
                                       "S:250-mx.test",
                                       "S:250 STARTTLS",
                                       "=STARTTLS",
                                       "S:220 go",
                                       "TLS",
                                       "C:EHLO",
                                       "S:250-mx.test",
                                       "S:250 AUTH LOGIN PLAIN",
                                       "=AUTH PLAIN AHVzZXIAc2VjcmV0",
                                       "S:235 2.7.0 ok",
                                       "=MAIL FROM:<a@example.org> AUTH=al+3Dce@mx.test",
                                       TLS_DELIVER_AFTER_MAIL,
                                       NULL};
    /* No submitter known (mail that came in without a login): AUTH=<>. */
    static const char *const unknown[] = {TLS_AUTH_PLAIN_SENT, "S:235 2.7.0 ok",
                                          "=MAIL FROM:<a@example.org> AUTH=<>",
                                          TLS_DELIVER_AFTER_MAIL,
                                          NULL};
    struct tls_fixture f;
    char err[256];
    tls_fixture_make(&f);
    SSL_CTX *system = tls_client_ctx(NULL, err, sizeof err);
    SSL_CTX *trusting = tls_client_ctx(f.cert, err, sizeof err);
    assert_non_null(system);
    assert_non_null(trusting);
    struct {
        SSL_CTX *ctx;
        const char *name;
        const char *const *script;
        bool ok;
        char *submitter;
    } cases[] = {
        {system, "mx.test", bad, false, NULL},
        {trusting, "other.test", bad, false, NULL},
        {trusting, "mx.test", good, true, "al=ce@mx.test"},
        {trusting, "mx.test", unknown, true, NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct fs s;
        struct t_run t;
        fs_start(&s, cases[k].script, f.server);
        t_init(&t, 3000);
        t.params.tls = SMTP_CLIENT_TLS_VERIFY;
        t.params.tls_ctx = cases[k].ctx;
        t.params.auth_user = "user";
        t.params.auth_password = "secret";
        t_target(&t, &s, cases[k].name);
        /* RFC 4954 §5: the submitter goes on, in xtext, to a server we logged in to. */
        t_msg(&t, 1, "x\r\n", 3)->auth = cases[k].submitter;
        t_run(&t);
        fs_end(&s);
        if (cases[k].ok) {
            assert_true(t.ready);
            t_expect(&t.res[0][0], DELIVER_OK, "2.0.0", NULL);
        } else {
            assert_true(t.failed);
            t_expect(&t.err, DELIVER_TEMPFAIL, "4.7.5", "TLS");
        }
        t_done(&t);
        fs_free(&s);
    }
    SSL_CTX_free(system);
    SSL_CTX_free(trusting);
    tls_fixture_free(&f);
}

/* J4: VERIFY and no STARTTLS offered (stripped): 4.7.5, no MAIL in plaintext. AUTH is never
 * sent without TLS either. */
static void test_client_J4_no_starttls(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 mx.test ESMTP", "C:EHLO",  "S:250-mx.test",
                                         "S:250 AUTH PLAIN",    "NOTHING", NULL};
    char err[256];
    SSL_CTX *ctx = tls_client_ctx(NULL, err, sizeof err);
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t.params.tls = SMTP_CLIENT_TLS_VERIFY;
    t.params.tls_ctx = ctx;
    t_target(&t, &s, "mx.test");
    t_msg(&t, 1, "x\r\n", 3);
    t_run(&t);
    fs_end(&s);
    t_expect(&t.err, DELIVER_TEMPFAIL, "4.7.5", "STARTTLS not offered");
    t_done(&t);
    fs_free(&s);

    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t.params.auth_user = "user";
    t.params.auth_password = "secret";
    t_target(&t, &s, "mx.test");
    t_run(&t);
    fs_end(&s);
    t_expect(&t.err, DELIVER_TEMPFAIL, "4.7.0", "credentials not sent");
    t_done(&t);
    fs_free(&s);
    SSL_CTX_free(ctx);
}

/* A 535 to AUTH (RFC 4954 §6) is not a reason to bounce: the target is skipped, 4.x.x. */
static void test_client_auth_refused(void **state)
{
    (void)state;
    static const char *const script[] = {TLS_AUTH_PLAIN_SENT, "S:535 5.7.8 bad credentials",
                                         "NOTHING",
                                         NULL};
    struct tls_fixture f;
    char err[256];
    tls_fixture_make(&f);
    SSL_CTX *ctx = tls_client_ctx(NULL, err, sizeof err);
    struct fs s;
    struct t_run t;
    fs_start(&s, script, f.server);
    t_init(&t, 3000);
    t.params.tls = SMTP_CLIENT_TLS_MAY;
    t.params.tls_ctx = ctx;
    t.params.auth_user = "user";
    t.params.auth_password = "wrong";
    t_target(&t, &s, "mx.test");
    t_run(&t);
    fs_end(&s);
    t_expect(&t.err, DELIVER_TEMPFAIL, "4.7.8", "535 5.7.8 bad credentials");
    t_done(&t);
    fs_free(&s);
    SSL_CTX_free(ctx);
    tls_fixture_free(&f);
}

/* Closing while the open is in flight: no callback, nothing leaks (ASan). */
static void test_client_close_during_open(void **state)
{
    (void)state;
    static const char *const script[] = {"S:220 fake.example.net ESMTP", "NOTHING", NULL};
    struct fs s;
    struct t_run t;
    fs_start(&s, script, NULL);
    t_init(&t, 1500);
    t_target(&t, &s, "fake.example.net");
    struct smtp_conn *c = smtp_conn_open(t.base, &t.params, t_ready_cb, &t);
    assert_non_null(c);
    event_base_loop(t.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    smtp_conn_close(c);
    event_base_dispatch(t.base);
    fs_end(&s);
    assert_int_equal(t.ready_calls, 0);

    struct smtp_conn_params bad = t.params;
    bad.ntargets = 0;
    errno = 0;
    assert_null(smtp_conn_open(t.base, &bad, t_ready_cb, &t));
    assert_int_equal(errno, EINVAL);
    t_done(&t);
    fs_free(&s);
}

int main(void)
{
    log_init("test_smtp_client");
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_per_recipient_results),
        cmocka_unit_test(test_client_pipelining_group),
        cmocka_unit_test(test_client_pipelining_all_refused),
        cmocka_unit_test(test_client_mail_refused),
        cmocka_unit_test(test_client_helo_fallback),
        cmocka_unit_test(test_client_421_mid_transaction),
        cmocka_unit_test(test_client_J8_vanish_mid_data),
        cmocka_unit_test(test_client_J8_close_after_dot),
        cmocka_unit_test(test_client_J1_J2_bad_replies),
        cmocka_unit_test(test_client_J1_greeting),
        cmocka_unit_test(test_client_short_body_file),
        cmocka_unit_test(test_client_reuse_with_rset),
        cmocka_unit_test(test_client_J9_timeouts),
        cmocka_unit_test(test_client_next_target),
        cmocka_unit_test(test_client_greeting_5xx),
        cmocka_unit_test(test_client_J5_loop),
        cmocka_unit_test(test_client_refused_before_mail),
        cmocka_unit_test(test_client_chunking),
        cmocka_unit_test(test_client_dsn_parameters),
        cmocka_unit_test(test_client_lmtp_per_recipient),
        cmocka_unit_test(test_client_lmtp_no_helo),
        cmocka_unit_test(test_client_starttls_may_J3),
        cmocka_unit_test(test_client_starttls_may_refused),
        cmocka_unit_test(test_client_starttls_verify),
        cmocka_unit_test(test_client_J4_no_starttls),
        cmocka_unit_test(test_client_auth_refused),
        cmocka_unit_test(test_client_close_during_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
