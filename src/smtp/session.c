/* session: the life of one SMTP connection: its bufferevent, command line framing
 * (RFC 5321 §2.3.8, §4.5.3.1.4), replies, timeouts (§4.5.3.2), flow control, TLS
 * (RFC 3207, RFC 8314) and closing. Started by session_server.c; hands complete command
 * lines to session_cmd.c and body bytes to session_data.c; calls smtp/proto, smtp/reply,
 * net/tls, util/log.
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
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "net/tls.h"
#include "util/log.h"

#define SESSION_OUTPUT_HIGH (64 * 1024) /* stop reading while this much is unsent (E5) */
#define SESSION_DRAIN_MS 50 /* poll of a closing TLS session's socket buffer */
static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_drain_timer_cb(evutil_socket_t fd, short what, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);

uint64_t session_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct timeval session_tv(unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* ---- output ---- */

void session_reply(struct session *s, enum reply_id id, const char *arg)
{
    char line[600];
    const struct reply_entry *r = reply_get(id);
    size_t n = reply_format(line, sizeof line, id, arg);

    char argbuf[300] = "-";

    bufferevent_write(s->bev, line, n);
    /* One line per decision: the command, what it asked for and the verdict. */
    if (s->log_arg != NULL)
        log_value(argbuf, sizeof argbuf, s->log_arg, s->log_arglen);
    log_event("smtp", "session=%s queue=%s cmd=%s arg=%s code=%u status=%s",
              s->name, s->tx != NULL && s->tx->id[0] != '\0' ? s->tx->id : "-",
              s->verb != NULL ? s->verb : "-", argbuf, r->code,
              r->enhanced != NULL ? r->enhanced : "-");
    s->log_arg = NULL;
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
    s->closing_ms = session_now_ms();
    bufferevent_disable(s->bev, EV_READ);
    bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
    session_idle_timeouts(s, 0);
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
        /* The filter's buffer is empty but the socket's may not be: poll it, within the
         * write timeout (H5). */
        if (under != NULL && evbuffer_get_length(bufferevent_get_output(under)) > 0 &&
            session_now_ms() - s->closing_ms < s->srv->cfg->timeouts.write) {
            struct timeval tv = session_tv(SESSION_DRAIN_MS);
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

void session_free(struct session *s)
{
    log_event("disconnect", "session=%s client=%s messages=%u errors=%u",
              s->name, s->addr, s->messages, s->errors);
    session_tx_free(s);
    session_auth_free(s);
    free(s->login);
    session_server_release(s);
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
    log_event("timeout", "session=%s client=%s state=%d", s->name,
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

/* Under TLS the socket's own bufferevent holds the bytes in flight, so it gets the same
 * timeouts as the filter (its timeouts reach session_event_cb through the filter). */
void session_idle_timeouts(struct session *s, unsigned read_ms)
{
    struct timeval rtv = session_tv(read_ms);
    struct timeval wtv = session_tv(s->srv->cfg->timeouts.write);
    struct bufferevent *under = bufferevent_get_underlying(s->bev);

    bufferevent_set_timeouts(s->bev, read_ms > 0 ? &rtv : NULL, &wtv);
    if (under != NULL)
        bufferevent_set_timeouts(under, read_ms > 0 ? &rtv : NULL, &wtv);
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
        s->line_pending = false;
        if (s->timer != NULL)
            evtimer_del(s->timer);
        return true;
    }
    /* An AUTH line and the responses of its exchange may be longer than commands (G4). */
    size_t peek = avail < 5 ? avail : 5;
    const unsigned char *buf = evbuffer_pullup(in, (ev_ssize_t)peek);
    bool auth_line = s->state == SESSION_AUTH ||
                     (peek == 5 && strncasecmp((const char *)buf, "AUTH ", 5) == 0);
    if (auth_line && max < SESSION_AUTH_LINE_MAX + 2)
        max = SESSION_AUTH_LINE_MAX + 2;
    size_t n = avail < max + 1 ? avail : max + 1;
    buf = evbuffer_pullup(in, (ev_ssize_t)n);
    /* A TLS ClientHello or RDP bytes rarely hold a LF: judge a line by its first byte at once
     * rather than wait out the command timeout (A8). */
    if (!s->line_pending && ((buf[0] < 0x20 && buf[0] != '\r' && buf[0] != '\n') ||
                                    buf[0] >= 0x7f)) {
        session_foreign(s);
        return true;
    }
    size_t linelen = 0, consumed = 0;
    enum proto_line_status st = proto_line_scan(buf, n, max, &linelen, &consumed);

    switch (st) {
    case PROTO_LINE_INCOMPLETE:
        if (!s->line_pending) {
            s->line_pending = true;
            session_arm_timer(s, s->srv->cfg->timeouts.command_deadline);
        }
        return false;
    case PROTO_LINE_TOO_LONG: {
        /* RFC 5321 §4.5.3.1.4; keep going in sync by skipping to the next LF (A1, A2). The
         * line's deadline keeps running while its rest is skipped (H2). */
        bool complete = consumed > 0 && buf[consumed - 1] == '\n';
        evbuffer_drain(in, consumed);
        if (auth_line)
            session_auth_too_long(s);
        else
            session_reply(s, REPLY_LINE_TOO_LONG, NULL);
        if (!complete) {
            s->discard_line = true;
            if (!s->line_pending) {
                s->line_pending = true;
                session_arm_timer(s, s->srv->cfg->timeouts.command_deadline);
            }
            return true;
        }
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
        s->line_pending = false;
        session_command(s, line, linelen);
        return true;
    }
    }
    if (s->timer != NULL)
        evtimer_del(s->timer);
    s->line_pending = false;
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
        case SESSION_AUTH:
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

void session_tls_start(struct session *s)
{
    SSL *ssl = SSL_new(s->srv->tls);
    struct bufferevent *tls = NULL;

    /* Deferred callbacks: the filter may otherwise call us back from inside our own
     * bufferevent calls (enable, drain) and free the session under the caller. */
    if (ssl != NULL)
        tls = bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (tls == NULL) {
        /* A failed filter may already have released the SSL; leaking it on this
         * out-of-memory path is safer than freeing it twice. */
        log_event("tls_error", "session=%s error=setup", s->name);
        session_close(s);
        return;
    }
    /* The filter moves its output to the socket's buffer until that holds this much; past it
     * the filter's own buffer grows, which is what pauses reading (E5) and arms the write
     * timeout (H5). */
    bufferevent_setwatermark(s->bev, EV_WRITE, 0, SESSION_OUTPUT_HIGH / 4);
    bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
    s->bev = tls;
    s->state = SESSION_HANDSHAKE;
    s->tls = false;
    free(s->helo);
    s->helo = NULL;
    s->ehlo = false;
    free(s->login); /* RFC 3207 §4.2: nothing learnt before TLS is kept */
    s->login = NULL;
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
        log_event("tls", "session=%s client=%s %s", s->name, s->addr, desc);
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
            log_event("timeout", "session=%s client=%s state=write", s->name,
                      s->addr);
            session_free(s);
            return;
        }
        if (s->state == SESSION_HANDSHAKE) {
            log_event("tls_error", "session=%s error=handshake-timeout",
                      s->name);
            session_free(s);
            return;
        }
        log_event("timeout", "session=%s client=%s state=%d", s->name,
                  s->addr, (int)s->state);
        session_reply(s, REPLY_TIMEOUT, NULL);
        session_close(s);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (s->state == SESSION_HANDSHAKE)
            log_event("tls_error", "session=%s error=handshake", s->name);
        /* A commit in flight goes on without us: the client may not read the 250 (I2). */
        session_free(s);
    }
}

/* ---- start ---- */

void session_start(struct session *s, int fd)
{
    const struct config *cfg = s->srv->cfg;

    s->bev = bufferevent_socket_new(s->srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    log_event("connect", "session=%s client=%s listener=%s", s->name,
              s->addr, s->listener->name);
    if (s->bev == NULL) {
        close(fd);
        session_free(s);
        return;
    }
    bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
    bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_INPUT_HIGH);
    if (s->listener->tls == CONF_TLS_IMPLICIT) {
        if (s->srv->tls == NULL) {
            log_event("tls_error", "session=%s error=no-certificate",
                      s->name);
            session_free(s);
            return;
        }
        if (!session_server_tls_allowed(s)) {
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
