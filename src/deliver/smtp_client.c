/* smtp_client: the connection half of the outbound SMTP/LMTP client (the queue manager's
 * remote and LMTP agents). Tries the targets in order; on each: connect, greeting,
 * EHLO (HELO after a 5xx; LHLO for LMTP), STARTTLS on the live connection, EHLO again,
 * AUTH PLAIN; then hands the connection to smtp_client_txn.c for transactions.
 *
 * Invariants: the caller's callbacks run only from the notify event, never from inside one
 * of our functions or a libevent callback of ours, so the caller may close or reuse the
 * connection from them; exactly one timer is armed for whatever we wait for; bytes after a
 * STARTTLS 220 are discarded before the handshake (HOSTILE-INPUTS J3); with TLS_VERIFY no
 * transaction starts on a connection that is not TLS with a checked certificate (J4);
 * credentials are never sent without TLS; a greeting or EHLO reply naming one of our own
 * names ends the open with 5.4.6 (J5).
 *
 * RFC 5321 §3.1, §4.1.1.1, §4.2, §4.5.3.2 (timeouts), §5.1 (targets in order); RFC 2033
 * §4.1 (LHLO); RFC 3207 (STARTTLS); RFC 4954 and RFC 4616 (AUTH PLAIN). */
#include "deliver/smtp_client_priv.h"

#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "net/tls.h"
#include "net/tls_client.h"
#include "util/log.h"

static void smtp_client_read_cb(struct bufferevent *bev, void *arg);
static void smtp_client_write_cb(struct bufferevent *bev, void *arg);
static void smtp_client_event_cb(struct bufferevent *bev, short what, void *arg);
static void smtp_client_try(struct smtp_conn *c);

static void smtp_client_destroy(struct smtp_conn *c)
{
    smtp_txn_free(c);
    smtp_client_drop(c);
    free(c->results);
    if (c->notify != NULL)
        event_free(c->notify);
    event_free(c->timer);
    free(c);
}

void smtp_client_arm(struct smtp_conn *c, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

void smtp_client_write(struct smtp_conn *c, const void *data, size_t len)
{
    if (c->bev != NULL)
        bufferevent_write(c->bev, data, len);
}

bool smtp_client_printf(struct smtp_conn *c, const char *fmt, ...)
{
    char line[SMTP_CLIENT_CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line - 2)
        return false;
    line[n++] = '\r';
    line[n++] = '\n';
    smtp_client_write(c, line, (size_t)n);
    return true;
}

void smtp_client_drop(struct smtp_conn *c)
{
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    c->bev = NULL;
    evtimer_del(c->timer);
    c->state = SMTP_ST_DEAD;
}

void smtp_client_schedule(struct smtp_conn *c, enum smtp_notify what)
{
    c->pending = what;
    event_active(c->notify, 0, 0);
}

void smtp_client_result(struct deliver_result *res, enum deliver_status st, const char *enhanced,
                        const char *fmt, ...)
{
    va_list ap;
    res->status = st;
    snprintf(res->enhanced, sizeof res->enhanced, "%s", enhanced);
    va_start(ap, fmt);
    vsnprintf(res->text, sizeof res->text, fmt, ap);
    va_end(ap);
    res->remote_reply = false;
}

/* The peer's reply for a DSN: "550 5.1.1 text", lines joined by spaces, printable ASCII
 * only (RFC 3464 §2.3.6 puts it in a header field). */
void smtp_client_result_reply(struct deliver_result *res, const struct smtp_reply *r)
{
    unsigned cls = r->code / 100;
    res->status = cls == 2 ? DELIVER_OK : cls == 5 ? DELIVER_PERMFAIL : DELIVER_TEMPFAIL;
    if (cls == 3)
        snprintf(res->enhanced, sizeof res->enhanced, "4.5.0");
    else if (r->enhanced[0] != '\0' && strlen(r->enhanced) < sizeof res->enhanced)
        memcpy(res->enhanced, r->enhanced, strlen(r->enhanced) + 1);
    else {
        res->enhanced[0] = (char)('0' + cls);
        memcpy(res->enhanced + 1, ".0.0", 5);
    }
    int n = snprintf(res->text, sizeof res->text, "%03u", r->code);
    size_t len = (size_t)n;
    if (r->textlen > 0)
        res->text[len++] = ' ';
    for (size_t i = 0; i < r->textlen && len < sizeof res->text - 1; i++) {
        unsigned char ch = (unsigned char)r->text[i];
        res->text[len++] = ch == '\n' ? ' ' : ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
    }
    res->text[len] = '\0';
    res->remote_reply = true;
}

static void smtp_client_addr_text(struct smtp_conn *c)
{
    const struct smtp_client_target *t = &c->p->targets[c->ti];
    char host[96], port[16]; /* numeric only: an IPv6 address with a scope fits */

    if (t->addr.ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&t->addr;
        log_value(c->addr, sizeof c->addr, un->sun_path,
                  strnlen(un->sun_path, sizeof un->sun_path));
    } else if (getnameinfo((const struct sockaddr *)&t->addr, t->addrlen, host, sizeof host, port,
                           sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
        snprintf(c->addr, sizeof c->addr, "[%s]:%s", host, port);
    } else {
        snprintf(c->addr, sizeof c->addr, "unknown");
    }
}

static void smtp_client_log_open(struct smtp_conn *c, const char *status,
                                 const struct deliver_result *res)
{
    char name[300], why[300], tls[200];
    const char *tname = c->p->targets[c->ti < c->p->ntargets ? c->ti : c->p->ntargets - 1].name;

    log_value(name, sizeof name, tname, strlen(tname));
    if (res == NULL) {
        smtp_conn_tls(c, tls, sizeof tls);
        log_value(why, sizeof why, tls, strlen(tls));
        log_event("smtp_client_connect", "target=%s addr=%s lmtp=%d status=%s tls=%s ext=0x%x",
                  name, c->addr, c->p->lmtp, status, why, c->ehlo.ext);
        return;
    }
    log_value(why, sizeof why, res->text, strlen(res->text));
    log_event("smtp_client_connect", "target=%s addr=%s lmtp=%d status=%s dsn=%s reason=%s", name,
              c->addr, c->p->lmtp, status, res->enhanced, why);
}

/* This target is done with (res says why); the next one is tried. A result only counts
 * over an earlier one when this target was reached or none was (header contract). */
static void smtp_client_next(struct smtp_conn *c, const struct deliver_result *res, bool reachable)
{
    smtp_client_log_open(c, "skipped", res);
    if (reachable || !c->reached) {
        c->err = *res;
        c->err_ti = reachable ? c->ti : SIZE_MAX;
    }
    c->reached = c->reached || reachable;
    smtp_client_drop(c);
    c->ti++;
    smtp_client_try(c);
}

static void smtp_client_fail(struct smtp_conn *c, enum deliver_status st, const char *enhanced,
                             const char *why)
{
    struct deliver_result res;
    smtp_client_result(&res, st, enhanced, "%s", why);
    smtp_client_next(c, &res, c->state != SMTP_ST_CONNECTING);
}

static void smtp_client_fail_reply(struct smtp_conn *c, const struct smtp_reply *r, bool temp)
{
    struct deliver_result res;
    smtp_client_result_reply(&res, r);
    if (res.status != DELIVER_PERMFAIL || temp) {
        res.status = DELIVER_TEMPFAIL;
        res.enhanced[0] = '4';
    }
    smtp_client_next(c, &res, true);
}

static void smtp_client_ready(struct smtp_conn *c)
{
    evtimer_del(c->timer);
    c->state = SMTP_ST_IDLE;
    smtp_client_log_open(c, "ready", NULL);
    smtp_client_schedule(c, SMTP_NOTIFY_READY);
}

static void smtp_client_try(struct smtp_conn *c)
{
    if (c->ti >= c->p->ntargets) {
        c->ti = c->p->ntargets - 1;
        smtp_client_log_open(c, "failed", &c->err);
        smtp_client_schedule(c, SMTP_NOTIFY_FAILED);
        return;
    }
    const struct smtp_client_target *t = &c->p->targets[c->ti];
    smtp_reply_parser_init(&c->parser);
    memset(&c->ehlo, 0, sizeof c->ehlo);
    c->tls = false;
    c->starttls_refused = false;
    c->state = SMTP_ST_CONNECTING;
    smtp_client_addr_text(c);
    c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (c->bev == NULL) {
        smtp_client_fail(c, DELIVER_TEMPFAIL, "4.3.0", "out of memory");
        return;
    }
    bufferevent_setcb(c->bev, smtp_client_read_cb, smtp_client_write_cb, smtp_client_event_cb, c);
    smtp_client_arm(c, c->p->timeouts.connect);
    if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&t->addr, (int)t->addrlen) !=
        0) {
        char why[200];
        snprintf(why, sizeof why, "cannot connect to %s: %s", c->addr, strerror(errno));
        smtp_client_fail(c, DELIVER_TEMPFAIL, "4.4.1", why);
    }
}

static void smtp_client_hello(struct smtp_conn *c)
{
    smtp_client_printf(c, "%s %s", c->p->lmtp ? "LHLO" : "EHLO", c->p->helo_name);
    c->state = SMTP_ST_EHLO;
    smtp_client_arm(c, c->p->timeouts.command);
}

/* RFC 4616 §2: base64("" NUL user NUL password), sent as the initial response (RFC 4954 §4;
 * the line may be longer than 512 octets, up to 12288). */
static void smtp_client_auth(struct smtp_conn *c)
{
    unsigned char raw[1024];
    unsigned char b64[((sizeof raw + 2) / 3) * 4 + 1];
    size_t ul = strlen(c->p->auth_user), pl = strlen(c->p->auth_password);

    if (ul + pl + 2 > sizeof raw) {
        smtp_client_fail(c, DELIVER_TEMPFAIL, "4.7.0", "credentials too long");
        return;
    }
    raw[0] = '\0';
    memcpy(raw + 1, c->p->auth_user, ul);
    raw[1 + ul] = '\0';
    memcpy(raw + 2 + ul, c->p->auth_password, pl);
    int n = EVP_EncodeBlock(b64, raw, (int)(ul + pl + 2));
    OPENSSL_cleanse(raw, sizeof raw);
    smtp_client_write(c, "AUTH PLAIN ", 11);
    smtp_client_write(c, b64, (size_t)n);
    smtp_client_write(c, "\r\n", 2);
    OPENSSL_cleanse(b64, sizeof b64);
    c->state = SMTP_ST_AUTH;
    smtp_client_arm(c, c->p->timeouts.command);
}

/* After EHLO/HELO: STARTTLS when wanted and possible, then AUTH, then ready. */
static void smtp_client_after_hello(struct smtp_conn *c)
{
    const struct smtp_conn_params *p = c->p;
    bool offered = (c->ehlo.ext & SMTP_EXT_STARTTLS) != 0;

    if (!c->tls && p->tls != SMTP_CLIENT_TLS_NONE && p->tls_ctx != NULL && offered &&
        !c->starttls_refused) {
        smtp_client_printf(c, "STARTTLS");
        c->state = SMTP_ST_STARTTLS;
        smtp_client_arm(c, p->timeouts.command);
        return;
    }
    if (!c->tls && p->tls == SMTP_CLIENT_TLS_VERIFY) {
        smtp_client_fail(c, DELIVER_TEMPFAIL, "4.7.5",
                         offered ? "STARTTLS failed" : "STARTTLS not offered");
        return;
    }
    if (p->auth_user == NULL) {
        smtp_client_ready(c);
        return;
    }
    if (!c->tls)
        smtp_client_fail(c, DELIVER_TEMPFAIL, "4.7.0", "no TLS: credentials not sent");
    else if (!(c->ehlo.auth & SMTP_AUTH_PLAIN))
        smtp_client_fail(c, DELIVER_TEMPFAIL, "4.7.0", "AUTH PLAIN not offered");
    else
        smtp_client_auth(c);
}

static void smtp_client_starttls(struct smtp_conn *c)
{
    char err[256];
    bool verify = c->p->tls == SMTP_CLIENT_TLS_VERIFY;
    SSL *ssl = tls_client_new(c->p->tls_ctx, c->p->targets[c->ti].name, verify, err, sizeof err);
    struct bufferevent *tls = NULL;

    /* J3: whatever came after the 220 was sent in plaintext before the handshake. */
    evbuffer_drain(bufferevent_get_input(c->bev),
                   evbuffer_get_length(bufferevent_get_input(c->bev)));
    if (ssl != NULL)
        tls = bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (tls == NULL) {
        smtp_client_fail(c, DELIVER_TEMPFAIL, verify ? "4.7.5" : "4.7.0",
                         ssl == NULL ? err : "TLS setup failed");
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
    c->bev = tls;
    bufferevent_setcb(tls, smtp_client_read_cb, smtp_client_write_cb, smtp_client_event_cb, c);
    bufferevent_enable(tls, EV_READ | EV_WRITE);
    smtp_reply_parser_init(&c->parser);
    c->state = SMTP_ST_HANDSHAKE;
    smtp_client_arm(c, c->p->timeouts.connect);
}

static bool smtp_client_is_self(const struct smtp_conn *c, const struct smtp_reply *r)
{
    for (size_t i = 0; i < c->p->nself; i++)
        if (smtp_reply_names(r, c->p->self_names[i]))
            return true;
    return false;
}

/* J5: the mail would loop back to us; no other target will do better. */
static void smtp_client_loop(struct smtp_conn *c)
{
    smtp_client_result(&c->err, DELIVER_PERMFAIL, "5.4.6", "mail for %s loops back to myself",
                       c->p->targets[c->ti].name);
    c->err_ti = c->ti;
    smtp_client_log_open(c, "failed", &c->err);
    smtp_client_drop(c);
    smtp_client_schedule(c, SMTP_NOTIFY_FAILED);
}

static void smtp_client_reply(struct smtp_conn *c, const struct smtp_reply *r)
{
    unsigned cls = r->code / 100;

    switch (c->state) {
    case SMTP_ST_GREETING:
        if (cls == 2 && smtp_client_is_self(c, r))
            smtp_client_loop(c);
        else if (cls == 2)
            smtp_client_hello(c);
        else
            smtp_client_fail_reply(c, r, cls != 5);
        return;
    case SMTP_ST_EHLO:
        if (cls == 2 && smtp_client_is_self(c, r)) {
            smtp_client_loop(c);
        } else if (cls == 2) {
            smtp_ehlo_parse(r, &c->ehlo);
            smtp_client_after_hello(c);
        } else if (cls == 5 && !c->p->lmtp && !c->tls) {
            smtp_client_printf(c, "HELO %s", c->p->helo_name);
            c->state = SMTP_ST_HELO;
            smtp_client_arm(c, c->p->timeouts.command);
        } else {
            smtp_client_fail_reply(c, r, cls != 5);
        }
        return;
    case SMTP_ST_HELO:
        if (cls == 2) {
            memset(&c->ehlo, 0, sizeof c->ehlo);
            smtp_client_after_hello(c);
        } else {
            smtp_client_fail_reply(c, r, cls != 5);
        }
        return;
    case SMTP_ST_STARTTLS:
        if (r->code == 220) {
            smtp_client_starttls(c);
        } else if (c->p->tls == SMTP_CLIENT_TLS_VERIFY) {
            smtp_client_fail(c, DELIVER_TEMPFAIL, "4.7.5", "STARTTLS refused");
        } else {
            c->starttls_refused = true;
            smtp_client_after_hello(c);
        }
        return;
    case SMTP_ST_AUTH:
        if (r->code == 235) {
            c->authenticated = true;
            smtp_client_ready(c);
        } else {
            smtp_client_fail_reply(c, r, true);
        }
        return;
    case SMTP_ST_TXN:
        smtp_txn_reply(c, r);
        return;
    case SMTP_ST_QUIT:
    case SMTP_ST_IDLE:
    case SMTP_ST_HANDSHAKE:
    case SMTP_ST_CONNECTING:
    case SMTP_ST_DEAD:
        break;
    }
    /* Unasked-for words (a 421 while idle, say): this connection cannot be trusted on. */
    smtp_client_drop(c);
}

/* A broken reply, a timeout or a lost connection, in whatever state we were. */
static void smtp_client_broken(struct smtp_conn *c, const char *enhanced, const char *why)
{
    switch (c->state) {
    case SMTP_ST_CONNECTING:
    case SMTP_ST_GREETING:
    case SMTP_ST_EHLO:
    case SMTP_ST_HELO:
    case SMTP_ST_STARTTLS:
    case SMTP_ST_AUTH:
        smtp_client_fail(c, DELIVER_TEMPFAIL, enhanced, why);
        return;
    case SMTP_ST_HANDSHAKE:
        smtp_client_fail(c, DELIVER_TEMPFAIL,
                         c->p->tls == SMTP_CLIENT_TLS_VERIFY ? "4.7.5" : "4.7.0", why);
        return;
    case SMTP_ST_TXN:
        smtp_txn_abort(c, enhanced, why);
        return;
    case SMTP_ST_QUIT:
        smtp_client_destroy(c);
        return;
    case SMTP_ST_IDLE:
    case SMTP_ST_DEAD:
        smtp_client_drop(c);
        return;
    }
}

static void smtp_client_read_cb(struct bufferevent *bev, void *arg)
{
    struct smtp_conn *c = arg;
    (void)bev;

    while (c->bev != NULL && c->state != SMTP_ST_HANDSHAKE) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        struct evbuffer_iovec v;
        if (c->state == SMTP_ST_QUIT) {
            smtp_client_broken(c, "4.4.2", "closed");
            return;
        }
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            return;
        size_t used;
        enum smtp_reply_status st = smtp_reply_parse(&c->parser, v.iov_base, v.iov_len, &used);
        evbuffer_drain(in, used);
        if (st == SMTP_REPLY_DONE) {
            smtp_client_reply(c, &c->parser.reply);
        } else if (st != SMTP_REPLY_MORE) {
            char why[100];
            snprintf(why, sizeof why, "protocol error from the peer: %s",
                     smtp_reply_status_name(st));
            smtp_client_broken(c, "4.5.0", why);
        }
    }
}

static void smtp_client_write_cb(struct bufferevent *bev, void *arg)
{
    struct smtp_conn *c = arg;
    (void)bev;
    if (c->state == SMTP_ST_TXN)
        smtp_txn_writable(c);
}

static void smtp_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct smtp_conn *c = arg;
    char why[512];

    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == SMTP_ST_CONNECTING) {
            c->state = SMTP_ST_GREETING;
            bufferevent_enable(bev, EV_READ | EV_WRITE);
            smtp_client_arm(c, c->p->timeouts.greeting);
        } else if (c->state == SMTP_ST_HANDSHAKE) {
            c->tls = true;
            smtp_client_hello(c);
        }
        return;
    }
    if (c->state == SMTP_ST_CONNECTING) {
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(why, sizeof why, "cannot connect to %s: %s", c->addr,
                 e != 0 ? strerror(e) : "connection closed");
        smtp_client_fail(c, DELIVER_TEMPFAIL, "4.4.1", why);
        return;
    }
    if (c->state == SMTP_ST_HANDSHAKE) {
        unsigned long e = bufferevent_get_openssl_error(bev);
        char ssl[200] = "connection closed";
        if (e != 0)
            ERR_error_string_n(e, ssl, sizeof ssl);
        snprintf(why, sizeof why, "TLS handshake with %s failed: %s", c->addr, ssl);
        smtp_client_broken(c, "4.7.0", why);
        return;
    }
    while (bufferevent_get_openssl_error(bev) != 0)
        continue;
    snprintf(why, sizeof why, "connection to %s lost", c->addr);
    smtp_client_broken(c, "4.4.2", why);
}

static void smtp_client_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_conn *c = arg;
    char why[200];
    (void)fd;
    (void)what;
    snprintf(why, sizeof why, "timeout talking to %s", c->addr);
    smtp_client_broken(c, c->state == SMTP_ST_CONNECTING ? "4.4.1" : "4.4.2", why);
}

static void smtp_client_notify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_conn *c = arg;
    (void)fd;
    (void)what;

    enum smtp_notify n = c->pending;
    c->pending = SMTP_NOTIFY_NONE;
    if (n == SMTP_NOTIFY_READY) {
        c->ready_cb(c, NULL, c->ready_arg);
    } else if (n == SMTP_NOTIFY_FAILED) {
        struct deliver_result err = c->err;
        if (c->p->failed_target != NULL)
            snprintf(c->p->failed_target, SMTP_CLIENT_NAME_MAX + 1, "%s",
                     c->err_ti < c->p->ntargets ? c->p->targets[c->err_ti].name : "");
        smtp_conn_ready_cb cb = c->ready_cb;
        void *cbarg = c->ready_arg;
        smtp_conn_close(c);
        cb(NULL, &err, cbarg);
    } else if (n == SMTP_NOTIFY_SENT) {
        struct deliver_result *res = c->results;
        c->results = NULL;
        c->sent_cb(c, res, c->reusable, c->sent_arg);
        free(res);
    }
}

struct smtp_conn *smtp_conn_open(struct event_base *base, const struct smtp_conn_params *params,
                                 smtp_conn_ready_cb cb, void *arg)
{
    if (base == NULL || params == NULL || cb == NULL || params->ntargets == 0 ||
        params->targets == NULL || params->helo_name == NULL ||
        (params->auth_user != NULL && params->auth_password == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    struct smtp_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->base = base;
    c->p = params;
    c->err_ti = SIZE_MAX;
    c->ready_cb = cb;
    c->ready_arg = arg;
    c->timer = evtimer_new(base, smtp_client_timeout_cb, c);
    c->notify = event_new(base, -1, 0, smtp_client_notify_cb, c);
    if (c->timer == NULL || c->notify == NULL) {
        if (c->timer != NULL)
            event_free(c->timer);
        if (c->notify != NULL)
            event_free(c->notify);
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    smtp_client_result(&c->err, DELIVER_TEMPFAIL, "4.4.1", "no target could be reached");
    smtp_client_try(c);
    return c;
}

const struct smtp_client_target *smtp_conn_target(const struct smtp_conn *conn)
{
    return &conn->p->targets[conn->ti];
}

void smtp_conn_tls(const struct smtp_conn *conn, char *out, size_t cap)
{
    if (conn->tls && conn->bev != NULL)
        tls_describe(bufferevent_openssl_get_ssl(conn->bev), out, cap);
    else
        snprintf(out, cap, "none");
}

bool smtp_conn_alive(const struct smtp_conn *conn)
{
    return conn->state == SMTP_ST_IDLE && conn->bev != NULL && conn->pending == SMTP_NOTIFY_NONE;
}

void smtp_conn_close(struct smtp_conn *conn)
{
    if (conn == NULL || conn->state == SMTP_ST_QUIT)
        return;
    event_free(conn->notify);
    conn->notify = NULL;
    if (conn->state == SMTP_ST_IDLE && conn->bev != NULL) {
        /* RFC 5321 §4.1.1.10; the reply only tells us the peer read it. */
        smtp_client_printf(conn, "QUIT");
        conn->state = SMTP_ST_QUIT;
        unsigned ms = conn->p->timeouts.command < 2000 ? conn->p->timeouts.command : 2000;
        smtp_client_arm(conn, ms);
        return;
    }
    smtp_client_destroy(conn);
}
