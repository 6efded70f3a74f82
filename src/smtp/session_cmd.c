/* session_cmd: the SMTP command table and its handlers (RFC 5321 §4.1.1, RFC 2920 §3.1 group
 * ends, RFC 3207 STARTTLS, RFC 3030 BDAT, RFC 1870/6152/6531/3461 parameters via smtp/proto).
 * Each row names the verb, its flags (allowed before HELO, ends a pipelining group, counts as
 * junk, takes no argument) and its handler. Called by session.c for every complete command
 * line; calls smtp/proto, policy/route, dir, and session_data.c to start a message body. */
#include "smtp/session_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "dir/dir.h"
#include "smtp/addr.h"
#include "policy/route.h"
#include "util/log.h"

enum {
    CMD_F_PRE_HELO = 0x1,   /* allowed before HELO/EHLO */
    CMD_F_GROUP_END = 0x2,  /* RFC 2920 §3.1: must be the last command of a pipelined group */
    CMD_F_JUNK = 0x4,       /* counts toward the junk limit (A12) */
    CMD_F_NO_ARG = 0x8,     /* takes no argument: 501 Syntax: VERB */
};

struct session_command {
    const char *name;
    unsigned flags;
    void (*handler)(struct session *s, const struct proto_command *cmd);
};

/* True when the client sent more before our reply to a group-ending command, or pipelined
 * at all without having been offered PIPELINING (E2, E3, E4). */
static bool session_pipelined(struct session *s)
{
    return evbuffer_get_length(bufferevent_get_input(s->bev)) > 0;
}

void session_sync_error(struct session *s)
{
    log_event("sync_error", "session=%s client=%s", s->name, s->addr);
    session_reply(s, REPLY_SYNC_ERROR, NULL);
    session_close(s);
}

static void cmd_helo(struct session *s, const struct proto_command *cmd, bool ehlo)
{
    const struct config *cfg = s->srv->cfg;

    if (!proto_check_helo(cmd->arg, cmd->arglen)) {
        session_reply(s, ehlo ? REPLY_SYNTAX_EHLO : REPLY_SYNTAX_HELO, NULL);
        return;
    }
    char *helo = strndup(cmd->arg, cmd->arglen);
    if (helo == NULL) {
        session_reply(s, REPLY_LOCAL_ERROR, NULL);
        return;
    }
    free(s->helo);
    s->helo = helo;
    s->ehlo = ehlo;
    session_tx_free(s);
    if (!ehlo) {
        session_reply(s, REPLY_HELO, cfg->hostname);
        return;
    }
    /* RFC 5321 §4.1.1.1 multi-line EHLO reply; RFC 2034 §4: no enhanced codes here. */
    struct evbuffer *out = bufferevent_get_output(s->bev);
    bool starttls = !s->tls && s->srv->tls != NULL && s->listener->tls != CONF_TLS_NONE &&
                    s->listener->tls != CONF_TLS_IMPLICIT;
    char mechs[160];
    session_auth_mechanisms(s, mechs, sizeof mechs);
    evbuffer_add_printf(out, "250-%s\r\n250-PIPELINING\r\n250-SIZE %llu\r\n250-8BITMIME\r\n"
                             "250-SMTPUTF8\r\n250-CHUNKING\r\n250-BINARYMIME\r\n"
                             "250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n%s%s%s%s"
                             "250-LIMITS RCPTMAX=%u MAILMAX=%u\r\n250 HELP\r\n",
                        cfg->hostname, (unsigned long long)cfg->limits.message_size,
                        starttls ? "250-STARTTLS\r\n" : "", mechs[0] != '\0' ? "250-AUTH " : "",
                        mechs, mechs[0] != '\0' ? "\r\n" : "", cfg->limits.recipients,
                        cfg->limits.messages);
    log_event("smtp", "session=%s queue=- cmd=EHLO arg=%s code=250 status=-",
              s->name, s->helo);
}

static void cmd_ehlo(struct session *s, const struct proto_command *cmd)
{
    cmd_helo(s, cmd, true);
}

static void cmd_helo_only(struct session *s, const struct proto_command *cmd)
{
    cmd_helo(s, cmd, false);
}

static enum reply_id session_arg_reply(enum proto_arg_status st, bool mail)
{
    switch (st) {
    case PROTO_ARG_OK:
        return REPLY_OK;
    case PROTO_ARG_SYNTAX:
        return mail ? REPLY_SYNTAX_MAIL : REPLY_SYNTAX_RCPT;
    case PROTO_ARG_BAD_PATH:
        return mail ? REPLY_BAD_SENDER : REPLY_BAD_RCPT;
    case PROTO_ARG_PATH_TOO_LONG:
        return mail ? REPLY_SENDER_TOO_LONG : REPLY_RCPT_TOO_LONG;
    case PROTO_ARG_NEED_SMTPUTF8:
        return REPLY_NEED_SMTPUTF8;
    case PROTO_ARG_BAD_UTF8:
        return REPLY_BAD_UTF8;
    case PROTO_ARG_PARAM_SYNTAX:
        return REPLY_PARAM_SYNTAX;
    case PROTO_ARG_PARAM_UNKNOWN:
        return REPLY_PARAM_UNKNOWN;
    case PROTO_ARG_SIZE_SYNTAX:
        return REPLY_SIZE_SYNTAX;
    case PROTO_ARG_SIZE_EXCEEDED:
        return REPLY_SIZE_EXCEEDED;
    case PROTO_ARG_BODY_SYNTAX:
        return REPLY_BODY_SYNTAX;
    case PROTO_ARG_XTEXT:
        return REPLY_XTEXT_SYNTAX;
    case PROTO_ARG_NOTIFY_SYNTAX:
        return REPLY_NOTIFY_SYNTAX;
    case PROTO_ARG_RET_SYNTAX:
        return REPLY_RET_SYNTAX;
    }
    return REPLY_PARAM_SYNTAX;
}

/* HELO clients negotiated no extension: any ESMTP parameter is unsupported. */
static bool session_has_params(const char *arg, size_t len)
{
    const char *gt = memchr(arg, '>', len);
    if (gt == NULL)
        return false;
    for (const char *p = gt + 1; p < arg + len; p++)
        if (*p != ' ')
            return true;
    return false;
}

/* RFC 4954 §5: AUTH=<mailbox> is believed only from a logged-in client and only for an
 * address it owns (its login); anything else is kept as AUTH=<>. A logged-in client that
 * gave none gets its login, so a relay further on learns who submitted the message. */
static void session_mail_auth_param(struct session *s, struct proto_mail *m)
{
    if (s->login == NULL) {
        if (m->auth[0] != '\0')
            snprintf(m->auth, sizeof m->auth, "<>");
    } else if (m->auth[0] == '\0' || strcasecmp(m->auth, s->login) == 0) {
        if (snprintf(m->auth, sizeof m->auth, "%s", s->login) >= (int)sizeof m->auth)
            snprintf(m->auth, sizeof m->auth, "<>");
    } else {
        snprintf(m->auth, sizeof m->auth, "<>");
    }
}

struct mail_owner {
    uint64_t session_id;
    struct session_server *srv;
    struct transaction *tx;
};

static void session_owner_cb(const struct dir_answer *ans, void *arg)
{
    struct mail_owner *o = arg;
    struct session *s = session_find(o->srv, o->session_id);
    if (s == NULL || s->closing || s->tx != NULL) {
        free(o->tx);
        free(o);
        return;
    }
    s->verb = "MAIL";
    s->log_arg = o->tx->mail.path.addr;
    s->log_arglen = strlen(o->tx->mail.path.addr);
    if (ans->result == DIR_MAILBOX) {
        s->tx = o->tx;
        session_reply(s, REPLY_MAIL_OK, NULL);
    } else {
        log_event("refused", "session=%s client=%s reason=sender-not-owned login=<%s>", s->name,
                  s->addr, s->login);
        session_reply(s, ans->result == DIR_TEMPFAIL ? REPLY_LOCAL_ERROR : REPLY_SENDER_NOT_OWNED,
                      o->tx->mail.path.addr);
        free(o->tx);
    }
    free(o);
    if (s->state == SESSION_WAIT) {
        s->state = SESSION_COMMAND;
        session_process(s);
    }
}

static void cmd_mail(struct session *s, const struct proto_command *cmd)
{
    const struct config *cfg = s->srv->cfg;

    if (s->tx != NULL) {
        session_reply(s, REPLY_NESTED_MAIL, NULL);
        return;
    }
    if (s->draining) {
        session_reply(s, REPLY_SHUTDOWN, NULL);
        session_close(s);
        return;
    }
    if (s->listener->tls == CONF_TLS_REQUIRED && !s->tls) {
        session_reply(s, REPLY_TLS_REQUIRED, NULL);
        return;
    }
    /* RFC 6409 §4.3 and RFC 4954 §6: a submission listener takes mail from logged-in users
     * only. */
    if (s->listener->auth == CONF_AUTH_REQUIRED && s->login == NULL) {
        session_reply(s, REPLY_AUTH_REQUIRED, NULL);
        return;
    }
    if (!session_server_spool_ok(s->srv)) {
        session_reply(s, REPLY_STORAGE_FULL, NULL);
        return;
    }
    if (s->messages >= cfg->limits.messages) {
        session_reply(s, REPLY_TOO_MANY_MESSAGES, NULL);
        session_close(s);
        return;
    }
    if (!s->ehlo && session_has_params(cmd->arg, cmd->arglen)) {
        session_reply(s, REPLY_PARAM_UNKNOWN, NULL);
        return;
    }
    struct transaction *tx = calloc(1, sizeof *tx);
    if (tx == NULL) {
        session_reply(s, REPLY_LOCAL_ERROR, NULL);
        return;
    }
    enum proto_arg_status st = proto_parse_mail(cmd->arg, cmd->arglen, cfg->limits.message_size,
                                                &tx->mail);
    if (st != PROTO_ARG_OK) {
        free(tx);
        session_reply(s, session_arg_reply(st, true), NULL);
        return;
    }
    session_mail_auth_param(s, &tx->mail);
    /* RFC 6409 §6.1: a logged-in user sends as an address of their own (B15). The null
     * sender stays allowed: a user's own notifications may use it. */
    if (s->login != NULL && tx->mail.path.addr[0] != '\0') {
        struct mail_owner *o = malloc(sizeof *o);
        if (o == NULL) {
            free(tx);
            session_reply(s, REPLY_LOCAL_ERROR, NULL);
            return;
        }
        o->session_id = s->id;
        o->srv = s->srv;
        o->tx = tx;
        s->state = SESSION_WAIT;
        dir_owns(s->srv->dir, s->login, tx->mail.path.addr, session_owner_cb, o);
        return;
    }
    s->tx = tx;
    session_reply(s, REPLY_MAIL_OK, NULL);
}

struct rcpt_lookup {
    uint64_t session_id;
    struct session_server *srv;
    struct proto_rcpt *rcpt;
    enum route_verdict verdict;      /* what the configuration alone said */
};

static void session_relay_denied(struct session *s, const char *addr)
{
    log_event("refused", "session=%s client=%s reason=relay to=<%s>", s->name, s->addr, addr);
    session_reply(s, REPLY_RELAY_DENIED, addr);
}

/* Relaying is for logged-in users and trusted networks only (RFC 5321 §3.6.1, B10). */
static bool session_may_relay(const struct session *s)
{
    return s->login != NULL || s->trusted;
}

static void session_rcpt_accept(struct session *s, struct proto_rcpt *r, enum reply_id ok,
                                const char *arg)
{
    struct transaction *tx = s->tx;

    /* RFC 5321 §3.3: a duplicate recipient is accepted and delivered once (B13). */
    for (size_t i = 0; i < tx->nrcpts; i++) {
        if (strcasecmp(tx->rcpts[i].addr, r->path.addr) == 0) {
            tx->rcpt_accepted++;
            session_reply(s, ok, arg);
            return;
        }
    }
    if (tx->nrcpts == tx->rcpts_cap) {
        size_t ncap = tx->rcpts_cap == 0 ? 4 : tx->rcpts_cap * 2;
        struct queue_rcpt *n = realloc(tx->rcpts, ncap * sizeof *n);
        if (n == NULL) {
            session_reply(s, REPLY_LOCAL_ERROR, NULL);
            return;
        }
        tx->rcpts = n;
        tx->rcpts_cap = ncap;
    }
    struct queue_rcpt *q = &tx->rcpts[tx->nrcpts];
    q->addr = strdup(r->path.addr);
    q->notify = r->notify;
    q->orcpt = r->orcpt[0] != '\0' ? strdup(r->orcpt) : NULL;
    if (q->addr == NULL || (r->orcpt[0] != '\0' && q->orcpt == NULL)) {
        free(q->addr);
        free(q->orcpt);
        session_reply(s, REPLY_LOCAL_ERROR, NULL);
        return;
    }
    tx->nrcpts++;
    tx->rcpt_accepted++;
    session_reply(s, ok, arg);
}

static void session_dir_cb(const struct dir_answer *ans, void *arg)
{
    struct rcpt_lookup *lk = arg;
    struct session *s = session_find(lk->srv, lk->session_id);

    if (s != NULL && !s->closing && s->tx != NULL) {
        const char *addr = lk->rcpt->path.addr;
        s->verb = "RCPT";
        s->log_arg = addr;
        s->log_arglen = strlen(addr);
        switch (ans->result) {
        case DIR_MAILBOX:
        case DIR_ALIAS:
            session_rcpt_accept(s, lk->rcpt, REPLY_RCPT_OK, NULL);
            break;
        case DIR_RELOCATED:
            /* RFC 5321 §3.4: 251 and forward, or 551 naming the new address. */
            if (ans->forward)
                session_rcpt_accept(s, lk->rcpt, REPLY_RCPT_FORWARD, ans->address);
            else
                session_reply(s, REPLY_RCPT_RELOCATED, ans->address);
            break;
        case DIR_DISABLED:
            session_reply(s, REPLY_MAILBOX_DISABLED, addr);
            break;
        case DIR_TEMPFAIL:
            session_reply(s, REPLY_LOCAL_ERROR, NULL);
            break;
        case DIR_FOREIGN:
            /* Not one of the directory's domains: a configured domain has no such user, any
             * other is relayed for those allowed to (B10). */
            if (lk->verdict == ROUTE_LOCAL)
                session_reply(s, REPLY_USER_UNKNOWN, addr);
            else if (lk->verdict == ROUTE_RELAY)
                session_rcpt_accept(s, lk->rcpt, REPLY_RCPT_OK, NULL);
            else
                session_relay_denied(s, addr);
            break;
        case DIR_NOT_FOUND:
            session_reply(s, REPLY_USER_UNKNOWN, addr);
            break;
        }
        if (s->state == SESSION_WAIT) {
            s->state = SESSION_COMMAND;
            session_process(s);
        }
    }
    free(lk->rcpt);
    free(lk);
}

static void cmd_rcpt(struct session *s, const struct proto_command *cmd)
{
    struct transaction *tx = s->tx;

    if (tx == NULL) {
        session_reply(s, REPLY_NEED_MAIL, NULL);
        return;
    }
    if (tx->bdat) {
        session_reply(s, REPLY_RCPT_AFTER_BDAT, NULL);
        return;
    }
    if (!s->ehlo && session_has_params(cmd->arg, cmd->arglen)) {
        session_reply(s, REPLY_PARAM_UNKNOWN, NULL);
        return;
    }
    tx->rcpt_attempts++;
    struct proto_rcpt *r = malloc(sizeof *r);
    if (r == NULL) {
        session_reply(s, REPLY_LOCAL_ERROR, NULL);
        return;
    }
    enum proto_arg_status st = proto_parse_rcpt(cmd->arg, cmd->arglen, tx->mail.smtputf8, r);
    if (st != PROTO_ARG_OK) {
        free(r);
        session_reply(s, session_arg_reply(st, false), NULL);
        return;
    }
    /* RFC 5321 §4.5.3.1.8: the limit is ours; each extra gets 452 and the transaction goes on. */
    if (tx->rcpt_accepted >= s->srv->cfg->limits.recipients) {
        free(r);
        session_reply(s, REPLY_TOO_MANY_RCPTS, NULL);
        return;
    }
    enum route_verdict verdict = route_rcpt(s->srv->cfg, &r->path, session_may_relay(s));
    /* A domain the configuration does not list may still be one the directory keeps. The
     * tricky forms (%, !, @ in the local part) reach it only from clients that may relay
     * (route_rcpt's rule for configured domains); address literals never do. */
    bool ask_dir = verdict == ROUTE_LOCAL ||
                   (verdict != ROUTE_POSTMASTER && dir_has_domains(s->srv->dir) &&
                    !r->path.literal && r->path.domain[0] != '\0' &&
                    (verdict == ROUTE_RELAY || strpbrk(r->path.local, "%!@") == NULL));
    if (!ask_dir) {
        if (verdict == ROUTE_RELAY_DENIED)
            session_relay_denied(s, r->path.addr);
        else
            session_rcpt_accept(s, r, REPLY_RCPT_OK, NULL);
        free(r);
        return;
    }
    struct rcpt_lookup *lk = malloc(sizeof *lk);
    if (lk == NULL) {
        free(r);
        session_reply(s, REPLY_LOCAL_ERROR, NULL);
        return;
    }
    lk->session_id = s->id;
    lk->srv = s->srv;
    lk->rcpt = r;
    lk->verdict = verdict;
    /* Input pauses until the directory answers, which keeps pipelined replies in order. */
    s->state = SESSION_WAIT;
    dir_lookup(s->srv->dir, r->path.addr, session_dir_cb, lk);
}

static bool session_tx_ready(struct session *s)
{
    if (s->tx == NULL) {
        session_reply(s, REPLY_NEED_MAIL, NULL);
        return false;
    }
    if (s->tx->nrcpts == 0) {
        session_reply(s, s->tx->rcpt_attempts == 0 ? REPLY_NEED_RCPT : REPLY_NO_VALID_RCPT, NULL);
        return false;
    }
    return true;
}

static void cmd_data(struct session *s, const struct proto_command *cmd)
{
    /* E4, C1: bytes sent before our answer to DATA are a body or an attempt to smuggle
     * commands; whatever DATA's verdict, none of them may run as a command. */
    if (session_pipelined(s)) {
        session_sync_error(s);
        return;
    }
    if (cmd->arglen > 0) {
        session_reply(s, REPLY_SYNTAX_DATA, NULL);
        return;
    }
    if (s->tx != NULL && s->tx->bdat) {
        session_reply(s, REPLY_DATA_AFTER_BDAT, NULL);
        return;
    }
    if (!session_tx_ready(s))
        return;
    session_data_start(s);
}

static void cmd_bdat(struct session *s, const struct proto_command *cmd)
{
    uint64_t size;
    bool last;

    if (!s->ehlo) {
        session_reply(s, REPLY_BDAT_NOT_NEGOTIATED, NULL);
        session_close(s);
        return;
    }
    if (!proto_parse_bdat(cmd->arg, cmd->arglen, &size, &last)) {
        session_reply(s, REPLY_SYNTAX_BDAT, NULL);
        session_close(s);
        return;
    }
    session_bdat_start(s, size, last);
}

static void cmd_rset(struct session *s, const struct proto_command *cmd)
{
    (void)cmd;
    session_tx_free(s);
    session_reply(s, REPLY_OK, NULL);
}

static void cmd_noop(struct session *s, const struct proto_command *cmd)
{
    (void)cmd;
    session_reply(s, REPLY_OK, NULL);
}

static void cmd_quit(struct session *s, const struct proto_command *cmd)
{
    (void)cmd;
    session_reply(s, REPLY_QUIT, NULL);
    session_close(s);
}

/* VRFY and EXPN answer only where the listener enables them and only to logged-in users or
 * trusted networks; anyone else learns nothing about who exists (B16). */
static bool session_may_verify(const struct session *s, bool enabled)
{
    return enabled && (s->login != NULL || s->trusted);
}

/* RFC 5321 §3.5.3: the argument is a mailbox, with or without angle brackets. */
static bool session_verify_arg(const struct proto_command *cmd, struct addr_path *p)
{
    char buf[ADDR_PATH_MAX + 3];
    size_t consumed = 0;
    if (cmd->arglen == 0 || cmd->arglen > ADDR_PATH_MAX)
        return false;
    int n = cmd->arg[0] == '<' ? snprintf(buf, sizeof buf, "%.*s", (int)cmd->arglen, cmd->arg)
                               : snprintf(buf, sizeof buf, "<%.*s>", (int)cmd->arglen, cmd->arg);
    return n > 0 && (size_t)n < sizeof buf &&
           addr_parse_path(buf, (size_t)n, ADDR_ALLOW_UTF8, p, &consumed) == ADDR_OK &&
           consumed == (size_t)n && !p->is_null && p->domain[0] != '\0' && !p->literal;
}

struct verify_lookup {
    uint64_t session_id;
    struct session_server *srv;
    char addr[ADDR_PATH_MAX + 1];
};

static void session_verify_done(struct session *s)
{
    if (s->state == SESSION_WAIT) {
        s->state = SESSION_COMMAND;
        session_process(s);
    }
}

static void session_vrfy_cb(const struct dir_answer *ans, void *arg)
{
    struct verify_lookup *v = arg;
    struct session *s = session_find(v->srv, v->session_id);
    if (s != NULL && !s->closing) {
        char text[ADDR_PATH_MAX + 300];
        s->verb = "VRFY";
        switch (ans->result) {
        case DIR_MAILBOX:
            if (ans->name[0] != '\0')
                snprintf(text, sizeof text, "%s <%s>", ans->name, ans->address);
            else
                snprintf(text, sizeof text, "<%s>", ans->address);
            session_reply(s, REPLY_VRFY_OK, text);
            break;
        case DIR_ALIAS:
            snprintf(text, sizeof text, "<%s>", v->addr);
            session_reply(s, REPLY_VRFY_OK, text);
            break;
        case DIR_RELOCATED:
            session_reply(s, ans->forward ? REPLY_RCPT_FORWARD : REPLY_RCPT_RELOCATED,
                          ans->address);
            break;
        case DIR_DISABLED:
            session_reply(s, REPLY_MAILBOX_DISABLED, v->addr);
            break;
        case DIR_TEMPFAIL:
            session_reply(s, REPLY_LOCAL_ERROR, NULL);
            break;
        case DIR_FOREIGN:
            session_reply(s, REPLY_VRFY_CANNOT, NULL);
            break;
        case DIR_NOT_FOUND:
            session_reply(s, REPLY_USER_UNKNOWN, v->addr);
            break;
        }
        session_verify_done(s);
    }
    free(v);
}

static struct verify_lookup *session_verify_start(struct session *s, const struct addr_path *p)
{
    struct verify_lookup *v = malloc(sizeof *v);
    if (v == NULL) {
        session_reply(s, REPLY_LOCAL_ERROR, NULL);
        return NULL;
    }
    v->session_id = s->id;
    v->srv = s->srv;
    snprintf(v->addr, sizeof v->addr, "%s", p->addr);
    s->state = SESSION_WAIT;
    return v;
}

static void cmd_vrfy(struct session *s, const struct proto_command *cmd)
{
    struct addr_path p;
    if (cmd->arglen == 0) {
        session_reply(s, REPLY_SYNTAX_VRFY, NULL);
        return;
    }
    if (!session_may_verify(s, s->listener->vrfy)) {
        session_reply(s, REPLY_VRFY_CANNOT, NULL);
        return;
    }
    if (!session_verify_arg(cmd, &p)) {
        session_reply(s, REPLY_VRFY_CANNOT, NULL);
        return;
    }
    struct verify_lookup *v = session_verify_start(s, &p);
    if (v != NULL)
        dir_lookup(s->srv->dir, p.addr, session_vrfy_cb, v);
}

/* RFC 5321 §3.5.2: one member per line of a multi-line 250. */
static void session_expn_cb(enum dir_result result, const char *const *targets, size_t n,
                            uint64_t quota, void *arg)
{
    (void)quota;
    struct verify_lookup *v = arg;
    struct session *s = session_find(v->srv, v->session_id);
    if (s != NULL && !s->closing) {
        s->verb = "EXPN";
        if (result == DIR_ALIAS && n > 0) {
            struct evbuffer *out = bufferevent_get_output(s->bev);
            for (size_t i = 0; i + 1 < n; i++) {
                char safe[ADDR_PATH_MAX + 1];
                log_value(safe, sizeof safe, targets[i], strlen(targets[i]));
                evbuffer_add_printf(out, "250-2.1.5 <%s>\r\n", safe);
            }
            char last[ADDR_PATH_MAX + 3];
            snprintf(last, sizeof last, "<%s>", targets[n - 1]);
            session_reply(s, REPLY_VRFY_OK, last);
        } else if (result == DIR_MAILBOX) {
            char self[ADDR_PATH_MAX + 3];
            snprintf(self, sizeof self, "<%s>", v->addr);
            session_reply(s, REPLY_VRFY_OK, self);
        } else if (result == DIR_TEMPFAIL) {
            session_reply(s, REPLY_LOCAL_ERROR, NULL);
        } else if (result == DIR_DISABLED) {
            session_reply(s, REPLY_MAILBOX_DISABLED, v->addr); /* as VRFY and RCPT say */
        } else {
            session_reply(s, REPLY_USER_UNKNOWN, v->addr);
        }
        session_verify_done(s);
    }
    free(v);
}

static void cmd_expn(struct session *s, const struct proto_command *cmd)
{
    struct addr_path p;
    if (!session_may_verify(s, s->listener->expn)) {
        session_reply(s, REPLY_EXPN_DISABLED, NULL);
        return;
    }
    if (cmd->arglen == 0) {
        session_reply(s, REPLY_SYNTAX_EXPN, NULL); /* RFC 5321 §4.1.1.7 */
        return;
    }
    if (!session_verify_arg(cmd, &p)) {
        session_reply(s, REPLY_USER_UNKNOWN, "");
        return;
    }
    struct verify_lookup *v = session_verify_start(s, &p);
    if (v != NULL)
        dir_expand(s->srv->dir, p.addr, session_expn_cb, v);
}

static void cmd_help(struct session *s, const struct proto_command *cmd)
{
    (void)cmd;
    session_reply(s, REPLY_HELP, NULL);
}

static void cmd_auth(struct session *s, const struct proto_command *cmd)
{
    session_auth_start(s, cmd->arg, cmd->arglen);
}


static void cmd_starttls(struct session *s, const struct proto_command *cmd)
{
    if (s->tls) {
        session_reply(s, REPLY_TLS_ACTIVE, NULL);
        return;
    }
    if (s->srv->tls == NULL || s->listener->tls == CONF_TLS_NONE) {
        session_reply(s, REPLY_TLS_UNAVAILABLE, NULL);
        return;
    }
    (void)cmd;
    if (!session_server_tls_allowed(s)) {
        session_reply(s, REPLY_TLS_RATE, s->addr);
        return;
    }
    /* RFC 3207 §4.2: anything the client pipelined after STARTTLS is plaintext that must not
     * be acted on inside TLS (CVE-2011-0411, F1). */
    struct evbuffer *in = bufferevent_get_input(s->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    session_reply(s, REPLY_STARTTLS_GO, NULL);
    session_tls_start(s);
}

static const struct session_command session_commands[PROTO_VERB_COUNT] = {
    [PROTO_VERB_HELO] = {"HELO", CMD_F_PRE_HELO | CMD_F_GROUP_END | CMD_F_JUNK, cmd_helo_only},
    [PROTO_VERB_EHLO] = {"EHLO", CMD_F_PRE_HELO | CMD_F_GROUP_END | CMD_F_JUNK, cmd_ehlo},
    [PROTO_VERB_MAIL] = {"MAIL", 0, cmd_mail},
    /* Without a transaction these answer "need MAIL", which is the more useful error. */
    [PROTO_VERB_RCPT] = {"RCPT", CMD_F_PRE_HELO, cmd_rcpt},
    [PROTO_VERB_DATA] = {"DATA", CMD_F_PRE_HELO, cmd_data},
    /* Before EHLO, BDAT is answered by cmd_bdat (not negotiated: close), never by skipping
     * its octets as commands (D7). */
    [PROTO_VERB_BDAT] = {"BDAT", CMD_F_PRE_HELO, cmd_bdat},
    [PROTO_VERB_RSET] = {"RSET", CMD_F_PRE_HELO | CMD_F_JUNK | CMD_F_NO_ARG, cmd_rset},
    [PROTO_VERB_NOOP] = {"NOOP", CMD_F_PRE_HELO | CMD_F_JUNK, cmd_noop},
    [PROTO_VERB_QUIT] = {"QUIT", CMD_F_PRE_HELO | CMD_F_NO_ARG, cmd_quit},
    [PROTO_VERB_VRFY] = {"VRFY", CMD_F_PRE_HELO | CMD_F_JUNK, cmd_vrfy},
    [PROTO_VERB_EXPN] = {"EXPN", CMD_F_PRE_HELO | CMD_F_JUNK, cmd_expn},
    [PROTO_VERB_HELP] = {"HELP", CMD_F_PRE_HELO | CMD_F_JUNK, cmd_help},
    [PROTO_VERB_STARTTLS] = {"STARTTLS", CMD_F_NO_ARG, cmd_starttls},
    [PROTO_VERB_AUTH] = {"AUTH", 0, cmd_auth},
};

void session_foreign(struct session *s)
{
    log_event("foreign_protocol", "session=%s client=%s", s->name, s->addr);
    session_reply(s, REPLY_FOREIGN_PROTOCOL, NULL);
    session_close(s);
}

void session_command(struct session *s, const char *line, size_t len)
{
    if (s->state == SESSION_AUTH) {
        session_auth_response(s, line, len);
        return;
    }
    struct proto_command cmd;
    enum proto_cmd_status st = proto_parse_command(line, len, &cmd);

    switch (st) {
    case PROTO_CMD_OK:
        break;
    case PROTO_CMD_UNKNOWN:
        session_reply(s, REPLY_UNKNOWN_COMMAND, NULL);
        return;
    case PROTO_CMD_NUL:
        session_reply(s, REPLY_NUL_COMMAND, NULL);
        return;
    case PROTO_CMD_CTL:
        session_reply(s, REPLY_CTL_COMMAND, NULL);
        return;
    case PROTO_CMD_FOREIGN:
        session_foreign(s);
        return;
    }

    const struct session_command *c = &session_commands[cmd.verb];
    s->verb = c->name;
    if (cmd.verb == PROTO_VERB_MAIL || cmd.verb == PROTO_VERB_RCPT || cmd.verb == PROTO_VERB_VRFY) {
        s->log_arg = cmd.arg;
        s->log_arglen = cmd.arglen;
    }
    if (c->flags & CMD_F_JUNK) {
        if (++s->junk > s->srv->cfg->limits.junk) {
            session_reply(s, REPLY_TOO_MANY_JUNK, NULL);
            session_close(s);
            return;
        }
    }
    /* RFC 2920 §3.1 groups; without PIPELINING negotiated there are no groups at all. */
    bool pipelined = session_pipelined(s);
    if (pipelined && cmd.verb != PROTO_VERB_QUIT && cmd.verb != PROTO_VERB_STARTTLS &&
        (!s->ehlo || (c->flags & CMD_F_GROUP_END))) {
        session_sync_error(s);
        return;
    }
    if (s->helo == NULL && !(c->flags & CMD_F_PRE_HELO)) {
        session_reply(s, REPLY_NEED_HELO, NULL);
        return;
    }
    if ((c->flags & CMD_F_NO_ARG) && cmd.arglen > 0) {
        session_reply(s, REPLY_SYNTAX_NOARG, c->name);
        return;
    }
    c->handler(s, &cmd);
    s->verb = NULL;
    s->log_arg = NULL;
}

