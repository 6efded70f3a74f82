/* smtp_client_txn: the transaction half of the outbound SMTP/LMTP client: RSET, MAIL,
 * RCPT, DATA or BDAT, the message bytes, and one result per recipient. Called by
 * smtp_client.c (replies, writability, timeouts) and by the scheduler (smtp_conn_send).
 *
 * Invariants: replies are matched to commands through a queue in the order the commands
 * were written (RFC 2920 §3.1), so pipelined and one-at-a-time peers share one path; every
 * recipient ends with exactly one result, and a recipient is never reported delivered
 * without a 2xx to the end of its data (J8: a peer that closes after the dot is a
 * TEMPFAIL); the body is read from body_fd in SMTP_CLIENT_CHUNK pieces, never whole, and
 * goes out CRLF-normalised and dot-stuffed (J10), or raw in BDAT for BINARYMIME.
 *
 * RFC 5321 §3.3 (transaction), §4.1.1.2-§4.1.1.5, §4.5.3.2 (timeouts); RFC 2920
 * (PIPELINING); RFC 1870 (SIZE); RFC 6152 (8BITMIME); RFC 6531 §3.5 (SMTPUTF8, 5.6.7);
 * RFC 3030 (CHUNKING, BINARYMIME); RFC 3461 §4 (DSN parameters); RFC 2033 §4.2 (LMTP replies
 * per recipient). */
#include "deliver/smtp_client_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "util/log.h"
#include "util/xtext.h"

static void smtp_txn_advance(struct smtp_conn *c);

void smtp_txn_free(struct smtp_conn *c)
{
    free(c->rstate);
    free(c->expect);
    free(c->inbuf);
    free(c->outbuf);
    c->rstate = NULL;
    c->expect = NULL;
    c->inbuf = NULL;
    c->outbuf = NULL;
}

static void smtp_txn_push(struct smtp_conn *c, enum smtp_expect_kind kind, size_t idx)
{
    if (c->ehead == c->etail)
        c->ehead = c->etail = 0; /* drained: BDAT chunks reuse the room */
    if (c->etail == c->ecap)
        abort(); /* ecap covers every reply one transaction can have outstanding */
    c->expect[c->etail++] = (struct smtp_expect){kind, idx};
}

static unsigned smtp_txn_timeout(const struct smtp_conn *c, enum smtp_expect_kind kind)
{
    const struct smtp_client_timeouts *t = &c->p->timeouts;
    switch (kind) {
    case SMTP_EXP_DATA:
        return t->data_init;
    case SMTP_EXP_BDAT:
        return t->data_block;
    case SMTP_EXP_END:
    case SMTP_EXP_IGNORE:
        return t->data_done;
    case SMTP_EXP_RSET:
    case SMTP_EXP_MAIL:
    case SMTP_EXP_RCPT:
        break;
    }
    return t->command;
}

static void smtp_txn_log(struct smtp_conn *c)
{
    const struct smtp_msg *m = c->msg;
    size_t count[3] = {0, 0, 0};
    const struct deliver_result *shown = m->nrcpts > 0 ? &c->results[0] : NULL;
    char name[300], from[300], reply[300];

    for (size_t i = 0; i < m->nrcpts; i++) {
        count[c->results[i].status]++;
        if (c->results[i].status != DELIVER_OK && shown->status == DELIVER_OK)
            shown = &c->results[i];
    }
    const char *tname = c->p->targets[c->ti].name;
    log_value(name, sizeof name, tname, strlen(tname));
    log_value(from, sizeof from, m->env->sender, strlen(m->env->sender));
    log_value(reply, sizeof reply, shown != NULL ? shown->text : "",
              shown != NULL ? strlen(shown->text) : 0);
    log_event("smtp_client_txn",
              "target=%s addr=%s from=%s size=%" PRIu64 " rcpts=%zu ok=%zu tempfail=%zu "
              "permfail=%zu chunking=%d reusable=%d reply=%s",
              name, c->addr, from, m->body_len, m->nrcpts, count[DELIVER_OK],
              count[DELIVER_TEMPFAIL], count[DELIVER_PERMFAIL], c->chunking, c->reusable, reply);
}

static void smtp_txn_finish(struct smtp_conn *c)
{
    smtp_txn_free(c);
    smtp_txn_log(c);
    if (c->reusable && c->bev != NULL) {
        evtimer_del(c->timer);
        c->state = SMTP_ST_IDLE;
    } else {
        c->reusable = false;
        smtp_client_drop(c);
    }
    smtp_client_schedule(c, SMTP_NOTIFY_SENT);
}

/* Every recipient without a final result gets res. */
static void smtp_txn_settle(struct smtp_conn *c, const struct deliver_result *res)
{
    for (size_t i = 0; i < c->msg->nrcpts; i++) {
        if (c->rstate == NULL || c->rstate[i] != SMTP_RCPT_DONE)
            c->results[i] = *res;
        if (c->rstate != NULL)
            c->rstate[i] = SMTP_RCPT_DONE;
    }
}

static void smtp_txn_settle_reply(struct smtp_conn *c, const struct smtp_reply *r)
{
    struct deliver_result res;
    smtp_client_result_reply(&res, r);
    smtp_txn_settle(c, &res);
}

void smtp_txn_abort(struct smtp_conn *c, const char *enhanced, const char *why)
{
    struct deliver_result res;
    smtp_client_result(&res, DELIVER_TEMPFAIL, enhanced, "%s", why);
    smtp_txn_settle(c, &res);
    c->reusable = false;
    smtp_txn_finish(c);
}

/* The whole message refused before any command: the connection stays as it was. */
static void smtp_txn_refuse(struct smtp_conn *c, const char *enhanced, const char *why)
{
    struct deliver_result res;
    smtp_client_result(&res, DELIVER_PERMFAIL, enhanced, "%s", why);
    smtp_txn_settle(c, &res);
    smtp_txn_finish(c);
}

/* Appends printf output to buf[*len..cap); false once it no longer fits. */
static bool smtp_txn_cat(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool smtp_txn_cat(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    if (*len >= cap)
        return false;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len) {
        *len = cap;
        return false;
    }
    *len += (size_t)n;
    return true;
}

static bool smtp_txn_xtext(char *buf, size_t cap, size_t *len, const char *s, size_t slen)
{
    size_t n;
    if (*len >= cap || !xtext_encode(s, slen, buf + *len, cap - *len, &n)) {
        *len = cap;
        return false;
    }
    *len += n;
    return true;
}

static bool smtp_txn_mail(struct smtp_conn *c)
{
    const struct queue_envelope *env = c->msg->env;
    unsigned ext = c->ehlo.ext;
    char cmd[SMTP_CLIENT_CMD_MAX - 2];
    size_t len = 0;
    bool ok = smtp_txn_cat(cmd, sizeof cmd, &len, "MAIL FROM:<%s>", env->sender);

    if (ext & SMTP_EXT_SIZE)
        ok = ok && smtp_txn_cat(cmd, sizeof cmd, &len, " SIZE=%" PRIu64, c->msg->body_len);
    if (env->body == PROTO_BODY_8BITMIME && (ext & SMTP_EXT_8BITMIME))
        ok = ok && smtp_txn_cat(cmd, sizeof cmd, &len, " BODY=8BITMIME");
    if (env->body == PROTO_BODY_BINARYMIME)
        ok = ok && smtp_txn_cat(cmd, sizeof cmd, &len, " BODY=BINARYMIME");
    if (env->smtputf8)
        ok = ok && smtp_txn_cat(cmd, sizeof cmd, &len, " SMTPUTF8");
    if ((ext & SMTP_EXT_DSN) && env->ret != PROTO_RET_NONE)
        ok = ok && smtp_txn_cat(cmd, sizeof cmd, &len, " RET=%s",
                                env->ret == PROTO_RET_FULL ? "FULL" : "HDRS");
    if ((ext & SMTP_EXT_DSN) && env->envid != NULL) {
        ok = ok && smtp_txn_cat(cmd, sizeof cmd, &len, " ENVID=");
        ok = ok && smtp_txn_xtext(cmd, sizeof cmd, &len, env->envid, strlen(env->envid));
    }
    /* RFC 4954 §5: to a server we logged in to, the submitter we accepted (the session kept
     * only its own login there) or "<>" when none is known. Not to other servers: a login
     * name is nothing an MX on the way needs to learn. */
    if (c->authenticated) {
        const char *who = env->auth != NULL && env->auth[0] != '\0' ? env->auth : "<>";
        ok = ok && smtp_txn_cat(cmd, sizeof cmd, &len, " AUTH=");
        ok = ok && smtp_txn_xtext(cmd, sizeof cmd, &len, who, strlen(who));
    }
    return ok && smtp_client_printf(c, "%.*s", (int)len, cmd);
}

/* RFC 3461 §4.1, §4.2: NOTIFY as given; ORCPT as "addr-type;" and the address in xtext. */
static bool smtp_txn_rcpt(struct smtp_conn *c, size_t i)
{
    const struct queue_rcpt *r = &c->msg->rcpts[i];
    char cmd[SMTP_CLIENT_CMD_MAX - 2];
    size_t len = 0;
    bool ok = smtp_txn_cat(cmd, sizeof cmd, &len, "RCPT TO:<%s>", r->addr);

    if ((c->ehlo.ext & SMTP_EXT_DSN) && r->notify != 0) {
        if (r->notify & PROTO_NOTIFY_NEVER) {
            ok = ok && smtp_txn_cat(cmd, sizeof cmd, &len, " NOTIFY=NEVER");
        } else {
            static const struct {
                unsigned bit;
                const char *name;
            } kw[] = {{PROTO_NOTIFY_SUCCESS, "SUCCESS"},
                      {PROTO_NOTIFY_FAILURE, "FAILURE"},
                      {PROTO_NOTIFY_DELAY, "DELAY"}};
            const char *sep = " NOTIFY=";
            for (size_t k = 0; k < sizeof kw / sizeof kw[0]; k++) {
                if (r->notify & kw[k].bit) {
                    ok = ok && smtp_txn_cat(cmd, sizeof cmd, &len, "%s%s", sep, kw[k].name);
                    sep = ",";
                }
            }
        }
    }
    const char *semi = r->orcpt != NULL ? strchr(r->orcpt, ';') : NULL;
    if ((c->ehlo.ext & SMTP_EXT_DSN) && semi != NULL && semi > r->orcpt) {
        ok = ok &&
             smtp_txn_cat(cmd, sizeof cmd, &len, " ORCPT=%.*s;", (int)(semi - r->orcpt), r->orcpt);
        ok = ok && smtp_txn_xtext(cmd, sizeof cmd, &len, semi + 1, strlen(semi + 1));
    }
    return ok && smtp_client_printf(c, "%.*s", (int)len, cmd);
}

/* Reads n bytes of the message at the current position into inbuf. */
static bool smtp_txn_pread(struct smtp_conn *c, size_t n)
{
    const struct smtp_msg *m = c->msg;
    size_t got = 0;
    while (got < n) {
        ssize_t r =
            pread(m->body_fd, c->inbuf + got, n - got, (off_t)(m->body_offset + c->body_pos + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    c->body_pos += n;
    return true;
}

static size_t smtp_txn_next_len(const struct smtp_conn *c)
{
    uint64_t left = c->msg->body_len - c->body_pos;
    return left < SMTP_CLIENT_CHUNK ? (size_t)left : SMTP_CLIENT_CHUNK;
}

/* The replies to the end of the data: one, or with LMTP one per accepted recipient. */
static void smtp_txn_expect_end(struct smtp_conn *c)
{
    if (!c->p->lmtp) {
        smtp_txn_push(c, SMTP_EXP_END, 0);
        return;
    }
    for (size_t i = 0; i < c->msg->nrcpts; i++)
        if (c->rstate[i] == SMTP_RCPT_ACCEPTED)
            smtp_txn_push(c, SMTP_EXP_END, i);
}

static void smtp_txn_body_done(struct smtp_conn *c)
{
    c->body_queued = true;
    c->step = SMTP_SEND_DONE;
    smtp_txn_expect_end(c);
    smtp_client_arm(c, c->p->timeouts.data_done);
}

/* DATA: keeps the output topped up to SMTP_CLIENT_LOW plus one chunk. */
static void smtp_txn_fill(struct smtp_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    while (!c->body_queued && evbuffer_get_length(out) <= SMTP_CLIENT_LOW) {
        size_t n = smtp_txn_next_len(c);
        if (!smtp_txn_pread(c, n)) {
            smtp_txn_abort(c, "4.3.0", "cannot read the message");
            return;
        }
        size_t olen = smtp_body_encode(&c->enc, c->inbuf, n, c->outbuf);
        if (c->body_pos == c->msg->body_len)
            olen += smtp_body_finish(&c->enc, c->outbuf + olen);
        evbuffer_add(out, c->outbuf, olen);
        if (c->body_pos == c->msg->body_len)
            smtp_txn_body_done(c);
        else
            smtp_client_arm(c, c->p->timeouts.data_block);
    }
}

/* RFC 3030 §2: one chunk, its size known before it is sent; BINARYMIME goes as it is. */
static void smtp_txn_bdat(struct smtp_conn *c)
{
    size_t n = smtp_txn_next_len(c);
    bool binary = c->msg->env->body == PROTO_BODY_BINARYMIME;

    if (!smtp_txn_pread(c, n)) {
        smtp_txn_abort(c, "4.3.0", "cannot read the message");
        return;
    }
    bool last = c->body_pos == c->msg->body_len;
    const unsigned char *data = c->inbuf;
    size_t olen = n;
    if (!binary) {
        olen = smtp_body_encode(&c->enc, c->inbuf, n, c->outbuf);
        if (last)
            olen += smtp_body_finish(&c->enc, c->outbuf + olen);
        data = c->outbuf;
    }
    smtp_client_printf(c, "BDAT %zu%s", olen, last ? " LAST" : "");
    smtp_client_write(c, data, olen);
    if (last) {
        smtp_txn_body_done(c);
    } else {
        smtp_txn_push(c, SMTP_EXP_BDAT, 0);
        smtp_client_arm(c, c->p->timeouts.data_block);
    }
}

void smtp_txn_writable(struct smtp_conn *c)
{
    if (c->step == SMTP_SEND_BODY && !c->chunking)
        smtp_txn_fill(c);
}

/* Writes what may be written now: everything up to DATA with PIPELINING, else one command
 * per reply. BDAT waits for every RCPT reply: no chunk goes out without a recipient. */
static void smtp_txn_advance(struct smtp_conn *c)
{
    bool pipe = (c->ehlo.ext & SMTP_EXT_PIPELINING) != 0;

    for (;;) {
        bool waiting = c->ehead != c->etail;
        if (!pipe && waiting && c->step != SMTP_SEND_DONE)
            break;
        if (c->step == SMTP_SEND_RSET) {
            smtp_client_printf(c, "RSET");
            smtp_txn_push(c, SMTP_EXP_RSET, 0);
            c->step = SMTP_SEND_MAIL;
        } else if (c->step == SMTP_SEND_MAIL) {
            if (!smtp_txn_mail(c)) {
                smtp_txn_abort(c, "4.3.0", "MAIL command too long");
                return;
            }
            c->used = true;
            smtp_txn_push(c, SMTP_EXP_MAIL, 0);
            c->step = SMTP_SEND_RCPT;
            c->next_rcpt = 0;
        } else if (c->step == SMTP_SEND_RCPT) {
            if (c->mail_failed) {
                c->step = SMTP_SEND_DONE;
            } else if (c->next_rcpt == c->msg->nrcpts) {
                c->step = SMTP_SEND_DATA;
            } else {
                size_t i = c->next_rcpt++;
                if (smtp_txn_rcpt(c, i)) {
                    smtp_txn_push(c, SMTP_EXP_RCPT, i);
                } else {
                    smtp_client_result(&c->results[i], DELIVER_PERMFAIL, "5.1.3",
                                       "recipient too long to send");
                    c->rstate[i] = SMTP_RCPT_DONE;
                }
            }
        } else if (c->step == SMTP_SEND_DATA) {
            if (c->mail_failed) {
                c->step = SMTP_SEND_DONE;
                continue;
            }
            if (c->chunking || !pipe) {
                if (waiting)
                    break;
                if (c->naccepted == 0) {
                    c->step = SMTP_SEND_DONE;
                    continue;
                }
            }
            if (c->chunking) {
                c->step = SMTP_SEND_BODY;
                smtp_txn_bdat(c);
                return;
            }
            /* The body waits for the 354 (SMTP_SEND_BODY is set then). */
            smtp_client_printf(c, "DATA");
            smtp_txn_push(c, SMTP_EXP_DATA, 0);
            c->step = SMTP_SEND_DONE;
        } else if (c->step == SMTP_SEND_BODY) {
            break;
        } else {
            if (!waiting) {
                smtp_txn_finish(c);
                return;
            }
            break;
        }
    }
    if (c->ehead != c->etail && !c->body_queued)
        smtp_client_arm(c, smtp_txn_timeout(c, c->expect[c->ehead].kind));
}

void smtp_txn_reply(struct smtp_conn *c, const struct smtp_reply *r)
{
    unsigned cls = r->code / 100;

    if (c->ehead == c->etail) {
        char why[300];
        struct deliver_result res;
        smtp_client_result_reply(&res, r);
        snprintf(why, sizeof why, "unexpected reply: %s", res.text);
        smtp_txn_abort(c, "4.5.0", why);
        return;
    }
    struct smtp_expect e = c->expect[c->ehead++];
    /* RFC 5321 §3.8: 421 may answer anything; the peer is closing. */
    if (r->code == 421 || (e.kind == SMTP_EXP_RSET && cls != 2)) {
        struct deliver_result res;
        smtp_client_result_reply(&res, r);
        res.status = DELIVER_TEMPFAIL;
        res.enhanced[0] = '4';
        smtp_txn_settle(c, &res);
        c->reusable = false;
        smtp_txn_finish(c);
        return;
    }
    switch (e.kind) {
    case SMTP_EXP_RSET:
    case SMTP_EXP_IGNORE:
        break;
    case SMTP_EXP_MAIL:
        if (cls != 2) {
            c->mail_failed = true;
            smtp_txn_settle_reply(c, r);
        }
        break;
    case SMTP_EXP_RCPT:
        if (c->mail_failed)
            break;
        if (cls == 2) {
            c->rstate[e.idx] = SMTP_RCPT_ACCEPTED;
            c->naccepted++;
        } else {
            smtp_client_result_reply(&c->results[e.idx], r);
            c->rstate[e.idx] = SMTP_RCPT_DONE;
        }
        break;
    case SMTP_EXP_DATA:
        if (r->code == 354 && (c->mail_failed || c->naccepted == 0)) {
            /* RFC 2920 §3.1: nothing to send, but the DATA must still be ended. */
            smtp_client_write(c, ".\r\n", 3);
            smtp_txn_push(c, SMTP_EXP_IGNORE, 0);
            c->step = SMTP_SEND_DONE;
        } else if (r->code == 354) {
            c->step = SMTP_SEND_BODY;
            smtp_body_init(&c->enc, SMTP_BODY_DOTS);
            smtp_txn_fill(c);
            return;
        } else {
            if (!c->mail_failed)
                smtp_txn_settle_reply(c, r);
            c->step = SMTP_SEND_DONE;
        }
        break;
    case SMTP_EXP_BDAT:
        if (cls == 2) {
            smtp_txn_bdat(c);
            return;
        }
        smtp_txn_settle_reply(c, r);
        c->step = SMTP_SEND_DONE;
        break;
    case SMTP_EXP_END:
        if (c->p->lmtp) {
            smtp_client_result_reply(&c->results[e.idx], r);
            c->rstate[e.idx] = SMTP_RCPT_DONE;
        } else {
            smtp_txn_settle_reply(c, r);
        }
        break;
    }
    smtp_txn_advance(c);
}

void smtp_conn_send(struct smtp_conn *conn, const struct smtp_msg *msg, smtp_conn_sent_cb cb,
                    void *arg)
{
    struct smtp_conn *c = conn;
    size_t n = msg->nrcpts;

    if (c->state == SMTP_ST_TXN || c->state == SMTP_ST_QUIT || c->pending != SMTP_NOTIFY_NONE)
        abort(); /* one transaction at a time, and only on an open connection */
    c->msg = msg;
    c->sent_cb = cb;
    c->sent_arg = arg;
    c->results = calloc(n > 0 ? n : 1, sizeof *c->results);
    c->rstate = calloc(n > 0 ? n : 1, 1);
    c->ecap = 2 * n + 8;
    c->expect = calloc(c->ecap, sizeof *c->expect);
    c->inbuf = malloc(SMTP_CLIENT_CHUNK);
    c->outbuf = malloc(SMTP_BODY_OUT_CAP(SMTP_CLIENT_CHUNK) + SMTP_BODY_FINISH_CAP);
    if (c->results == NULL)
        abort(); /* nowhere to say that it failed */
    c->ehead = c->etail = 0;
    c->naccepted = 0;
    c->mail_failed = false;
    c->reusable = true;
    c->body_pos = 0;
    c->body_queued = false;
    c->chunking = false;
    for (size_t i = 0; i < n; i++)
        smtp_client_result(&c->results[i], DELIVER_TEMPFAIL, "4.4.2", "not attempted");

    const struct queue_envelope *env = msg->env;
    unsigned ext = c->ehlo.ext;
    if (c->rstate == NULL || c->expect == NULL || c->inbuf == NULL || c->outbuf == NULL) {
        smtp_txn_abort(c, "4.3.0", "out of memory");
    } else if (c->state != SMTP_ST_IDLE || c->bev == NULL) {
        smtp_txn_abort(c, "4.4.2", "the connection was lost");
    } else if (env->smtputf8 && !(ext & SMTP_EXT_SMTPUTF8)) {
        smtp_txn_refuse(c, "5.6.7", "the peer does not support SMTPUTF8");
    } else if (env->body == PROTO_BODY_BINARYMIME &&
               (ext & (SMTP_EXT_CHUNKING | SMTP_EXT_BINARYMIME)) !=
                   (SMTP_EXT_CHUNKING | SMTP_EXT_BINARYMIME)) {
        smtp_txn_refuse(c, "5.6.3", "the peer does not support BINARYMIME");
    } else if (c->ehlo.size > 0 && msg->body_len > c->ehlo.size) {
        smtp_txn_refuse(c, "5.3.4", "message too big for the peer");
    } else {
        c->state = SMTP_ST_TXN;
        c->chunking = (ext & SMTP_EXT_CHUNKING) != 0;
        smtp_body_init(&c->enc, 0);
        c->step = c->used ? SMTP_SEND_RSET : SMTP_SEND_MAIL;
        bufferevent_setwatermark(c->bev, EV_WRITE, SMTP_CLIENT_LOW, 0);
        smtp_txn_advance(c);
    }
}
