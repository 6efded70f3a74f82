/* session: the SMTP server state machine for commands (RFC 5321 §4.1, RFC 2920 pipelining,
 * RFC 3207 STARTTLS, RFC 3030 BDAT framing, RFC 2034 enhanced codes via smtp/reply).
 * Called by daemon/worker through session_accept; calls smtp/proto, smtp/addr, smtp/reply,
 * policy/route, dir, net/tls, util/log, and session_data.c for message bodies.
 *
 * Invariants: only CRLF ends a command; a command is answered before the next one is read,
 * so replies stay in order however the client pipelines; input is paused while an answer is
 * pending (a commit) or while the client does not read our replies; every refusal carries an
 * enhanced status code from the catalogue; nothing of the network reaches a log unescaped.
 * The transaction lives in s->tx, which is NULL outside MAIL..end of data. */
#include "smtp/session_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "dir/dir.h"
#include "net/tls.h"
#include "policy/route.h"
#include "util/log.h"

#define SESSION_OUTPUT_HIGH (64 * 1024) /* stop reading while this much is unsent (E5) */
#define SESSION_INPUT_HIGH (64 * 1024)  /* the kernel keeps the rest (flow control) */
#define SESSION_DRAIN_MS 100
#define IP_BUCKETS 4096

struct ip_count {
    struct ip_count *next;
    char addr[48];
    unsigned n;
};

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_drain_timer_cb(evutil_socket_t fd, short what, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void session_free(struct session *s);

uint64_t session_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval session_tv(unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* ---- server: registry and connection counts ---- */

struct session_server *session_server_new(struct event_base *base, const struct config *cfg,
                                          struct queue_store *store, struct dir *dir, SSL_CTX *tls)
{
    struct session_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return NULL;
    srv->base = base;
    srv->cfg = cfg;
    srv->store = store;
    srv->dir = dir;
    srv->tls = tls;
    srv->next_seq = 1;
    srv->ip_buckets = calloc(IP_BUCKETS, sizeof *srv->ip_buckets);
    srv->scratch = malloc(DATA_OUT_CAP(SESSION_INPUT_HIGH));
    if (srv->ip_buckets == NULL || srv->scratch == NULL) {
        session_server_free(srv);
        return NULL;
    }
    return srv;
}

void session_server_free(struct session_server *srv)
{
    if (srv == NULL)
        return;
    for (size_t i = 0; i < srv->nslots; i++)
        if (srv->slots[i] != NULL)
            session_free(srv->slots[i]);
    for (size_t i = 0; srv->ip_buckets != NULL && i < IP_BUCKETS; i++) {
        while (srv->ip_buckets[i] != NULL) {
            struct ip_count *next = srv->ip_buckets[i]->next;
            free(srv->ip_buckets[i]);
            srv->ip_buckets[i] = next;
        }
    }
    free(srv->ip_buckets);
    free(srv->slots);
    free(srv->free_slots);
    free(srv->scratch);
    free(srv);
}

size_t session_server_count(const struct session_server *srv)
{
    return srv->count;
}

static int session_register(struct session_server *srv, struct session *s)
{
    uint32_t slot;
    if (srv->nfree > 0) {
        slot = srv->free_slots[--srv->nfree];
    } else {
        if (srv->nslots >= (1u << SESSION_SLOT_BITS))
            return -1;
        size_t ncap = srv->nslots == 0 ? 256 : srv->nslots * 2;
        struct session **ns = realloc(srv->slots, ncap * sizeof *ns);
        if (ns == NULL)
            return -1;
        srv->slots = ns;
        uint32_t *nf = realloc(srv->free_slots, ncap * sizeof *nf);
        if (nf == NULL)
            return -1;
        srv->free_slots = nf;
        for (size_t i = ncap; i > srv->nslots + 1; i--)
            srv->free_slots[srv->nfree++] = (uint32_t)(i - 1);
        slot = (uint32_t)srv->nslots;
        for (size_t i = srv->nslots; i < ncap; i++)
            srv->slots[i] = NULL;
        srv->nslots = ncap;
    }
    s->id = (srv->next_seq++ << SESSION_SLOT_BITS) | slot;
    srv->slots[slot] = s;
    srv->count++;
    return 0;
}

struct session *session_find(struct session_server *srv, uint64_t id)
{
    size_t slot = id & ((1u << SESSION_SLOT_BITS) - 1);
    if (slot >= srv->nslots || srv->slots[slot] == NULL || srv->slots[slot]->id != id)
        return NULL;
    return srv->slots[slot];
}

static struct ip_count **session_ip_bucket(struct session_server *srv, const char *addr)
{
    uint32_t h = 2166136261u;
    for (const char *p = addr; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    struct ip_count **pp = &srv->ip_buckets[h % IP_BUCKETS];
    while (*pp != NULL && strcmp((*pp)->addr, addr) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* ---- output ---- */

void session_reply(struct session *s, enum reply_id id, const char *arg)
{
    char line[600];
    const struct reply_entry *r = reply_get(id);
    size_t n = reply_format(line, sizeof line, id, arg);

    bufferevent_write(s->bev, line, n);
    log_event("reply", "session=%016llx code=%u status=%s", (unsigned long long)s->id, r->code,
              r->enhanced != NULL ? r->enhanced : "-");
    if (r->code >= 400 && id != REPLY_TOO_MANY_RCPTS && !s->closing) {
        s->errors++;
        if (s->errors >= s->srv->cfg->limits.errors && r->code != 421) {
            session_reply(s, REPLY_TOO_MANY_ERRORS, NULL);
            session_close(s);
        }
    }
}

static void session_drain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    session_write_cb(NULL, arg);
}

/* Checks from the loop, never from the caller's stack, whether a closing session can go:
 * callers may still touch s after session_close returns. */
static void session_close_check_later(struct session *s)
{
    if (s->timer != NULL)
        event_free(s->timer);
    s->timer = evtimer_new(s->srv->base, session_drain_timer_cb, s);
    struct timeval tv = session_tv(0);
    evtimer_add(s->timer, &tv);
}

/* Stop reading and free the session once everything we wrote has left, the TLS layer's
 * buffer included; the write timeout bounds the wait (H5). */
void session_close(struct session *s)
{
    if (s->closing)
        return;
    s->closing = true;
    bufferevent_disable(s->bev, EV_READ);
    bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
    struct timeval tv = session_tv(s->srv->cfg->timeouts.write);
    bufferevent_set_timeouts(s->bev, NULL, &tv);
    session_close_check_later(s);
}

static void session_write_cb(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    (void)bev;

    if (s->closing) {
        struct bufferevent *under = bufferevent_get_underlying(s->bev);
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
            return;
        if (under != NULL && evbuffer_get_length(bufferevent_get_output(under)) > 0) {
            struct timeval tv = session_tv(SESSION_DRAIN_MS / 10);
            evtimer_add(s->timer, &tv);
            return;
        }
        session_free(s);
        return;
    }
    /* The client read our replies: resume reading what it pipelined (E5). */
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) < SESSION_OUTPUT_HIGH / 2 &&
        s->state != SESSION_WAIT && s->state != SESSION_HANDSHAKE) {
        bufferevent_enable(s->bev, EV_READ);
        session_process(s);
    }
}

static void session_free(struct session *s)
{
    struct session_server *srv = s->srv;
    struct ip_count **pp = session_ip_bucket(srv, s->addr);

    if (*pp != NULL && --(*pp)->n == 0) {
        struct ip_count *dead = *pp;
        *pp = dead->next;
        free(dead);
    }
    log_event("disconnect", "session=%016llx client=%s messages=%u errors=%u",
              (unsigned long long)s->id, s->addr, s->messages, s->errors);
    session_tx_free(s);
    srv->slots[s->id & ((1u << SESSION_SLOT_BITS) - 1)] = NULL;
    srv->free_slots[srv->nfree++] = (uint32_t)(s->id & ((1u << SESSION_SLOT_BITS) - 1));
    srv->count--;
    if (s->timer != NULL)
        event_free(s->timer);
    if (s->bev != NULL)
        bufferevent_free(s->bev);
    free(s->helo);
    free(s);
}

/* ---- timers ---- */

static void session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    (void)fd;
    (void)what;

    if (s->closing)
        return;
    if (s->state == SESSION_GREETING) {
        s->state = SESSION_COMMAND;
        session_reply(s, REPLY_GREETING, s->srv->cfg->hostname);
        return;
    }
    log_event("timeout", "session=%016llx client=%s state=%d", (unsigned long long)s->id,
              s->addr, (int)s->state);
    session_reply(s, REPLY_TIMEOUT, NULL);
    session_close(s);
}

void session_arm_timer(struct session *s, unsigned ms)
{
    struct timeval tv = session_tv(ms);
    if (s->timer == NULL)
        s->timer = evtimer_new(s->srv->base, session_timer_cb, s);
    evtimer_add(s->timer, &tv);
}

static void session_idle_timeouts(struct session *s, unsigned read_ms)
{
    struct timeval rtv = session_tv(read_ms);
    struct timeval wtv = session_tv(s->srv->cfg->timeouts.write);
    bufferevent_set_timeouts(s->bev, &rtv, &wtv);
}

/* ---- transaction ---- */

void session_tx_free(struct session *s)
{
    struct transaction *tx = s->tx;
    if (tx == NULL)
        return;
    if (tx->msg != NULL)
        queue_msg_abort(tx->msg);
    for (size_t i = 0; i < tx->nrcpts; i++) {
        free(tx->rcpts[i].addr);
        free(tx->rcpts[i].orcpt);
    }
    free(tx->rcpts);
    free(tx);
    s->tx = NULL;
}

/* End of a transaction, whatever its outcome: back to command state, and a draining session
 * leaves now. */
void session_tx_end(struct session *s)
{
    session_tx_free(s);
    s->state = SESSION_COMMAND;
    if (s->closing)
        return;
    session_idle_timeouts(s, s->srv->cfg->timeouts.command);
    if (s->timer != NULL)
        evtimer_del(s->timer);
    if (s->draining) {
        session_reply(s, REPLY_SHUTDOWN, NULL);
        session_close(s);
    }
}

/* ---- commands ---- */

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

static void session_sync_error(struct session *s)
{
    log_event("sync_error", "session=%016llx client=%s", (unsigned long long)s->id, s->addr);
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
    evbuffer_add_printf(out, "250-%s\r\n250-PIPELINING\r\n250-SIZE %llu\r\n250-8BITMIME\r\n"
                             "250-SMTPUTF8\r\n250-CHUNKING\r\n250-BINARYMIME\r\n"
                             "250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n%s"
                             "250-LIMITS RCPTMAX=%u MAILMAX=%u\r\n250 HELP\r\n",
                        cfg->hostname, (unsigned long long)cfg->limits.message_size,
                        starttls ? "250-STARTTLS\r\n" : "", cfg->limits.recipients,
                        cfg->limits.messages);
    log_event("reply", "session=%016llx code=250 status=- ehlo=yes", (unsigned long long)s->id);
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

static void cmd_mail(struct session *s, const struct proto_command *cmd)
{
    const struct config *cfg = s->srv->cfg;
    char logbuf[300];

    if (s->tx != NULL) {
        session_reply(s, REPLY_NESTED_MAIL, NULL);
        return;
    }
    if (s->listener->tls == CONF_TLS_REQUIRED && !s->tls) {
        session_reply(s, REPLY_TLS_REQUIRED, NULL);
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
    log_event("mail", "session=%016llx from=%s status=%d", (unsigned long long)s->id,
              log_value(logbuf, sizeof logbuf, cmd->arg, cmd->arglen), (int)st);
    if (st != PROTO_ARG_OK) {
        free(tx);
        session_reply(s, session_arg_reply(st, true), NULL);
        return;
    }
    s->tx = tx;
    session_reply(s, REPLY_MAIL_OK, NULL);
}

struct rcpt_lookup {
    uint64_t session_id;
    struct session_server *srv;
    struct proto_rcpt *rcpt;
};

static void session_rcpt_accept(struct session *s, struct proto_rcpt *r)
{
    struct transaction *tx = s->tx;

    /* RFC 5321 §3.3: a duplicate recipient is accepted and delivered once (B13). */
    for (size_t i = 0; i < tx->nrcpts; i++) {
        if (strcasecmp(tx->rcpts[i].addr, r->path.addr) == 0) {
            session_reply(s, REPLY_RCPT_OK, NULL);
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
    session_reply(s, REPLY_RCPT_OK, NULL);
}

static void session_dir_cb(enum dir_result result, void *arg)
{
    struct rcpt_lookup *lk = arg;
    struct session *s = session_find(lk->srv, lk->session_id);

    if (s != NULL && !s->closing && s->tx != NULL) {
        log_event("rcpt", "session=%016llx directory=%d", (unsigned long long)s->id, (int)result);
        if (result == DIR_MAILBOX || result == DIR_ALIAS)
            session_rcpt_accept(s, lk->rcpt);
        else if (result == DIR_TEMPFAIL)
            session_reply(s, REPLY_LOCAL_ERROR, NULL);
        else
            session_reply(s, REPLY_USER_UNKNOWN, lk->rcpt->path.addr);
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
    char logbuf[300];

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
    log_event("rcpt", "session=%016llx to=%s status=%d", (unsigned long long)s->id,
              log_value(logbuf, sizeof logbuf, cmd->arg, cmd->arglen), (int)st);
    if (st != PROTO_ARG_OK) {
        free(r);
        session_reply(s, session_arg_reply(st, false), NULL);
        return;
    }
    /* RFC 5321 §4.5.3.1.8: the limit is ours; each extra gets 452 and the transaction goes on. */
    if (tx->nrcpts >= s->srv->cfg->limits.recipients) {
        free(r);
        session_reply(s, REPLY_TOO_MANY_RCPTS, NULL);
        return;
    }
    switch (route_rcpt(s->srv->cfg, &r->path, false)) {
    case ROUTE_POSTMASTER:
    case ROUTE_RELAY:
        session_rcpt_accept(s, r);
        free(r);
        return;
    case ROUTE_RELAY_DENIED:
        session_reply(s, REPLY_RELAY_DENIED, r->path.addr);
        free(r);
        return;
    case ROUTE_LOCAL:
        break;
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
    /* E4: the body must not be sent before the 354 ("transaction stuffing"). */
    if (session_pipelined(s)) {
        session_sync_error(s);
        return;
    }
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

static void cmd_vrfy(struct session *s, const struct proto_command *cmd)
{
    session_reply(s, cmd->arglen == 0 ? REPLY_SYNTAX_VRFY : REPLY_VRFY_CANNOT, NULL);
}

static void cmd_expn(struct session *s, const struct proto_command *cmd)
{
    (void)cmd;
    session_reply(s, REPLY_EXPN_DISABLED, NULL);
}

static void cmd_help(struct session *s, const struct proto_command *cmd)
{
    (void)cmd;
    session_reply(s, REPLY_HELP, NULL);
}

static void cmd_auth(struct session *s, const struct proto_command *cmd)
{
    (void)cmd;
    session_reply(s, REPLY_AUTH_UNAVAILABLE, NULL);
}

static void session_tls_start(struct session *s);

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
    [PROTO_VERB_RCPT] = {"RCPT", 0, cmd_rcpt},
    [PROTO_VERB_DATA] = {"DATA", 0, cmd_data},
    [PROTO_VERB_BDAT] = {"BDAT", 0, cmd_bdat},
    [PROTO_VERB_RSET] = {"RSET", CMD_F_PRE_HELO | CMD_F_JUNK | CMD_F_NO_ARG, cmd_rset},
    [PROTO_VERB_NOOP] = {"NOOP", CMD_F_PRE_HELO | CMD_F_JUNK, cmd_noop},
    [PROTO_VERB_QUIT] = {"QUIT", CMD_F_PRE_HELO | CMD_F_NO_ARG, cmd_quit},
    [PROTO_VERB_VRFY] = {"VRFY", CMD_F_PRE_HELO | CMD_F_JUNK, cmd_vrfy},
    [PROTO_VERB_EXPN] = {"EXPN", CMD_F_PRE_HELO | CMD_F_JUNK, cmd_expn},
    [PROTO_VERB_HELP] = {"HELP", CMD_F_PRE_HELO | CMD_F_JUNK, cmd_help},
    [PROTO_VERB_STARTTLS] = {"STARTTLS", CMD_F_NO_ARG, cmd_starttls},
    [PROTO_VERB_AUTH] = {"AUTH", 0, cmd_auth},
};

static void session_command(struct session *s, const char *line, size_t len)
{
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
        log_event("foreign_protocol", "session=%016llx client=%s", (unsigned long long)s->id,
                  s->addr);
        session_reply(s, REPLY_FOREIGN_PROTOCOL, NULL);
        session_close(s);
        return;
    }

    const struct session_command *c = &session_commands[cmd.verb];
    log_event("command", "session=%016llx verb=%s", (unsigned long long)s->id, c->name);
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
}

/* ---- input ---- */

/* Reads one command line; false when more input is needed. */
static bool session_command_input(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t avail = evbuffer_get_length(in);
    size_t max = s->srv->cfg->limits.command_line < SESSION_INPUT_HIGH
                     ? s->srv->cfg->limits.command_line
                     : SESSION_INPUT_HIGH;

    if (s->discard_line) {
        struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);
        if (lf.pos < 0) {
            evbuffer_drain(in, avail);
            return false;
        }
        evbuffer_drain(in, (size_t)lf.pos + 1);
        s->discard_line = false;
        s->line_started_ms = 0;
        return true;
    }
    size_t n = avail < max + 1 ? avail : max + 1;
    const unsigned char *buf = evbuffer_pullup(in, (ev_ssize_t)n);
    size_t linelen = 0, consumed = 0;
    enum proto_line_status st = proto_line_scan(buf, n, max, &linelen, &consumed);

    switch (st) {
    case PROTO_LINE_INCOMPLETE:
        if (s->line_started_ms == 0) {
            s->line_started_ms = session_now_ms();
            session_arm_timer(s, s->srv->cfg->timeouts.command_deadline);
        }
        return false;
    case PROTO_LINE_TOO_LONG: {
        /* RFC 5321 §4.5.3.1.4; keep going in sync by skipping to the next LF (A1, A2). */
        bool complete = consumed > 0 && buf[consumed - 1] == '\n';
        evbuffer_drain(in, consumed);
        s->discard_line = !complete;
        session_reply(s, REPLY_LINE_TOO_LONG, NULL);
        break;
    }
    case PROTO_LINE_BARE_LF:
        evbuffer_drain(in, consumed);
        session_reply(s, REPLY_BARE_LF_COMMAND, NULL);
        break;
    case PROTO_LINE_OK: {
        /* The line is copied out so that the input buffer holds only what was pipelined
         * after it; the body scratch buffer is free while a command runs. */
        char *line = (char *)s->srv->scratch;
        memcpy(line, buf, linelen);
        line[linelen] = '\0';
        evbuffer_drain(in, consumed);
        if (s->timer != NULL)
            evtimer_del(s->timer);
        s->line_started_ms = 0;
        session_command(s, line, linelen);
        return true;
    }
    }
    if (s->timer != NULL)
        evtimer_del(s->timer);
    s->line_started_ms = 0;
    return true;
}

void session_process(struct session *s)
{
    if (s->in_process)
        return;
    s->in_process = true;
    uint64_t id = s->id;
    struct session_server *srv = s->srv;

    while (!s->closing) {
        struct evbuffer *in = bufferevent_get_input(s->bev);
        if (evbuffer_get_length(in) == 0 && !(s->state == SESSION_BDAT && s->chunk_remaining == 0))
            break;
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) > SESSION_OUTPUT_HIGH) {
            bufferevent_disable(s->bev, EV_READ);
            break;
        }
        bool progress = false;
        switch (s->state) {
        case SESSION_GREETING:
            session_sync_error(s);
            break;
        case SESSION_COMMAND:
            progress = session_command_input(s);
            break;
        case SESSION_DATA:
        case SESSION_BDAT:
            progress = session_body_input(s);
            break;
        case SESSION_HANDSHAKE:
        case SESSION_WAIT:
            break;
        }
        if (session_find(srv, id) != s)
            return; /* freed inside */
        if (!progress)
            break;
    }
    s->in_process = false;
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    session_process(arg);
}

/* ---- TLS ---- */

static void session_greet(struct session *s)
{
    unsigned delay = s->srv->cfg->timeouts.greeting_delay;
    s->greeted = true;
    if (delay > 0) {
        s->state = SESSION_GREETING;
        session_arm_timer(s, delay);
        return;
    }
    s->state = SESSION_COMMAND;
    session_reply(s, REPLY_GREETING, s->srv->cfg->hostname);
}

static void session_tls_start(struct session *s)
{
    SSL *ssl = SSL_new(s->srv->tls);
    struct bufferevent *tls = NULL;

    if (ssl != NULL)
        tls = bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    if (tls == NULL) {
        if (ssl != NULL)
            SSL_free(ssl);
        log_event("tls_error", "session=%016llx error=setup", (unsigned long long)s->id);
        session_close(s);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
    s->bev = tls;
    s->state = SESSION_HANDSHAKE;
    s->tls = false;
    free(s->helo);
    s->helo = NULL;
    s->ehlo = false;
    session_tx_free(s);
    bufferevent_setcb(tls, session_read_cb, session_write_cb, session_event_cb, s);
    bufferevent_setwatermark(tls, EV_READ, 0, SESSION_INPUT_HIGH);
    session_idle_timeouts(s, s->srv->cfg->timeouts.tls_handshake);
    bufferevent_enable(tls, EV_READ | EV_WRITE);
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;
    (void)bev;

    if (what & BEV_EVENT_CONNECTED) {
        char desc[200];
        SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
        tls_describe(ssl, desc, sizeof desc);
        log_event("tls", "session=%016llx client=%s %s", (unsigned long long)s->id, s->addr, desc);
        s->tls = true;
        session_idle_timeouts(s, s->srv->cfg->timeouts.command);
        if (!s->greeted)
            session_greet(s);
        else
            s->state = SESSION_COMMAND;
        session_process(s);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (s->closing || (what & BEV_EVENT_WRITING)) {
            session_free(s);
            return;
        }
        if (s->state == SESSION_HANDSHAKE) {
            log_event("tls_error", "session=%016llx error=handshake-timeout",
                      (unsigned long long)s->id);
            session_free(s);
            return;
        }
        log_event("timeout", "session=%016llx client=%s state=%d", (unsigned long long)s->id,
                  s->addr, (int)s->state);
        session_reply(s, REPLY_TIMEOUT, NULL);
        session_close(s);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (s->state == SESSION_HANDSHAKE)
            log_event("tls_error", "session=%016llx error=handshake", (unsigned long long)s->id);
        /* A commit in flight goes on without us: the client may not read the 250 (I2). */
        session_free(s);
    }
}

/* ---- accept and shutdown ---- */

static void session_refuse(int fd, enum reply_id id, const char *arg)
{
    char line[300];
    size_t n = reply_format(line, sizeof line, id, arg);
    ssize_t w = send(fd, line, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    close(fd);
}

void session_accept(struct session_server *srv, const struct conf_listener *l, int fd,
                    const struct sockaddr *sa, socklen_t salen)
{
    const struct config *cfg = srv->cfg;
    char addr[48] = "unknown";

    (void)salen;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, sizeof addr);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr, sizeof addr);

    if (srv->shutting_down) {
        session_refuse(fd, REPLY_SHUTDOWN, NULL);
        return;
    }
    if (srv->count >= cfg->limits.sessions) {
        log_event("refused", "client=%s reason=sessions limit=%u", addr, cfg->limits.sessions);
        session_refuse(fd, REPLY_TOO_MANY_SESSIONS, NULL);
        return;
    }
    struct ip_count **pp = session_ip_bucket(srv, addr);
    if (*pp != NULL && (*pp)->n >= cfg->limits.sessions_per_ip) {
        log_event("refused", "client=%s reason=sessions-per-ip limit=%u", addr,
                  cfg->limits.sessions_per_ip);
        session_refuse(fd, REPLY_TOO_MANY_FROM_IP, addr);
        return;
    }

    struct session *s = calloc(1, sizeof *s);
    if (s == NULL || session_register(srv, s) != 0) {
        free(s);
        session_refuse(fd, REPLY_TOO_MANY_SESSIONS, NULL);
        return;
    }
    if (*pp == NULL) {
        *pp = calloc(1, sizeof **pp);
        if (*pp != NULL)
            memcpy((*pp)->addr, addr, sizeof addr);
    }
    if (*pp != NULL)
        (*pp)->n++;
    s->srv = srv;
    s->listener = l;
    memcpy(s->addr, addr, sizeof addr);
    s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    log_event("connect", "session=%016llx client=%s listener=%s", (unsigned long long)s->id, addr,
              l->name);
    if (s->bev == NULL) {
        close(fd);
        session_free(s);
        return;
    }
    bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
    bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_INPUT_HIGH);
    if (l->tls == CONF_TLS_IMPLICIT) {
        if (srv->tls == NULL) {
            log_event("tls_error", "session=%016llx error=no-certificate",
                      (unsigned long long)s->id);
            session_free(s);
            return;
        }
        session_tls_start(s);
        return;
    }
    session_idle_timeouts(s, cfg->timeouts.command);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    session_greet(s);
}

void session_server_shutdown(struct session_server *srv)
{
    srv->shutting_down = true;
    for (size_t i = 0; i < srv->nslots; i++) {
        struct session *s = srv->slots[i];
        if (s == NULL || s->closing)
            continue;
        s->draining = true;
        if (s->tx == NULL && s->state == SESSION_COMMAND) {
            session_reply(s, REPLY_SHUTDOWN, NULL);
            session_close(s);
        } else if (s->state == SESSION_HANDSHAKE || s->state == SESSION_GREETING) {
            session_free(s);
        }
    }
}
