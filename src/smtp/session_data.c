/* session_data: the message side of a session: DATA (RFC 5321 §4.1.1.4) and BDAT chunks
 * (RFC 3030 §2), streaming through the pure body reader (smtp/data) into a spool file
 * (queue/store), the Received header (RFC 5321 §4.4, RFC 3848), and the commit whose answer
 * comes back later and finds the session by id.
 *
 * Invariants: the 250 for a message is written only from the commit callback, after the
 * store reports it durable; any content error, write error or a vanished client drops the
 * spool file; a chunk's n octets are always consumed, whatever the verdict (RFC 3030 §2). */
#include "smtp/session_priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "net/tls.h"
#include "util/date.h"
#include "util/log.h"

static void session_store_write(struct session *s, const void *data, size_t len)
{
    struct transaction *tx = s->tx;
    if (len == 0 || tx->msg == NULL || tx->store_errno != 0)
        return;
    if (queue_msg_write(tx->msg, data, len) != 0) {
        tx->store_errno = errno != 0 ? errno : EIO;
        log_event("store_error", "session=%s queue=%s error=%s", s->name,
                  tx->id, strerror(tx->store_errno));
    }
}

static enum reply_id session_store_reply(int err)
{
    return err == ENOSPC || err == EDQUOT ? REPLY_STORAGE_FULL : REPLY_STORAGE_ERROR;
}

/* RFC 6409 §8.2 and §8.3: what a submitted message lacks, added where its header section
 * ends (or at its end, when it is all header). */
static void session_add_missing(struct session *s)
{
    struct transaction *tx = s->tx;
    char fields[DATE_RFC5322_LEN + 600];
    size_t n = 0;
    if (!tx->headers.date) {
        char date[DATE_RFC5322_LEN];
        date_rfc5322(date, (int64_t)time(NULL));
        n += (size_t)snprintf(fields + n, sizeof fields - n, "Date: %s\r\n", date);
    }
    if (!tx->headers.message_id)
        n += (size_t)snprintf(fields + n, sizeof fields - n, "Message-ID: <%s@%s>\r\n", tx->id,
                              s->srv->cfg->hostname);
    if (n > 0 && n < sizeof fields) {
        log_event("headers_added", "session=%s queue=%s date=%s message_id=%s", s->name, tx->id,
                  tx->headers.date ? "no" : "yes", tx->headers.message_id ? "no" : "yes");
        session_store_write(s, fields, n);
    }
}

/* Message bytes as the reader produced them; a submission's are watched for its header
 * section's end. */
static void session_body_write(struct session *s, const uint8_t *data, size_t len)
{
    struct transaction *tx = s->tx;
    if (!tx->submission || tx->headers.done) {
        session_store_write(s, data, len);
        return;
    }
    size_t at = header_scan_feed(&tx->headers, data, len);
    session_store_write(s, data, at);
    if (tx->headers.done) {
        session_add_missing(s);
        session_store_write(s, data + at, len - at);
    }
}

/* The last bytes of a message: a submission that never ended its header section gets the
 * missing fields at its end. */
static void session_body_finish(struct session *s, const uint8_t *data, size_t len)
{
    struct transaction *tx = s->tx;
    session_body_write(s, data, len);
    if (tx->submission && !tx->headers.done) {
        tx->headers.done = true;
        session_add_missing(s);
    }
}

/* RFC 3848 §2 and RFC 6531 §3.7.3 "with" protocol names ("A": the client logged in). */
static const char *session_protocol(const struct session *s)
{
    bool a = s->login != NULL;
    if (s->tx->mail.smtputf8)
        return s->tls ? (a ? "UTF8SMTPSA" : "UTF8SMTPS") : (a ? "UTF8SMTPA" : "UTF8SMTP");
    if (!s->ehlo)
        return "SMTP";
    return s->tls ? (a ? "ESMTPSA" : "ESMTPS") : (a ? "ESMTPA" : "ESMTP");
}

static int session_write_received(struct session *s)
{
    struct transaction *tx = s->tx;
    char hdr[1200], date[DATE_RFC5322_LEN], tlsdesc[200] = "";
    bool v6 = strchr(s->addr, ':') != NULL;

    date_rfc5322(date, (int64_t)time(NULL));
    if (s->tls) {
        char desc[160];
        tls_describe(bufferevent_openssl_get_ssl(s->bev), desc, sizeof desc);
        snprintf(tlsdesc, sizeof tlsdesc, "\t(%s)\r\n", desc);
    }
    /* A submission listener may keep the user's address and machine name private: the
     * field then starts at "by" (RFC 5321 §4.4 makes "from" optional). */
    bool hide = s->login != NULL && s->listener->hide_client;
    char from[400] = "";
    if (!hide)
        snprintf(from, sizeof from, "from %s ([%s%s])\r\n\t", s->helo, v6 ? "IPv6:" : "",
                 s->addr);
    int n = snprintf(hdr, sizeof hdr,
                     "Received: %sby %s (Sluice) with %s id %s\r\n%s"
                     "\t%s%s%s; %s\r\n",
                     from, s->srv->cfg->hostname,
                     session_protocol(s), tx->id, tlsdesc, tx->nrcpts == 1 ? "for <" : "",
                     tx->nrcpts == 1 ? tx->rcpts[0].addr : "", tx->nrcpts == 1 ? ">" : "", date);
    if (n < 0 || (size_t)n >= sizeof hdr) {
        errno = ENAMETOOLONG;
        return -1;
    }
    session_store_write(s, hdr, (size_t)n);
    return 0;
}

/* Opens the spool file and writes the Received header. Returns REPLY_COUNT, or the refusal
 * to send when the spool file cannot be created. */
static enum reply_id session_msg_begin(struct session *s)
{
    struct transaction *tx = s->tx;
    struct queue_envelope env = {
        .sender = tx->mail.path.addr,
        .rcpts = tx->rcpts,
        .nrcpts = tx->nrcpts,
        .body = tx->mail.body,
        .smtputf8 = tx->mail.smtputf8,
        .ret = tx->mail.ret,
        .envid = tx->mail.envid[0] != '\0' ? tx->mail.envid : NULL,
        .auth = tx->mail.auth[0] != '\0' ? tx->mail.auth : NULL,
        .helo = s->helo,
        .client_addr = s->addr,
        .listener = s->listener->name,
        .arrival = (int64_t)time(NULL),
    };

    tx->msg = queue_msg_begin(s->srv->store, &env, tx->id);
    if (tx->msg == NULL) {
        int err = errno;
        log_event("store_error", "session=%s error=%s", s->name,
                  strerror(err));
        return session_store_reply(err);
    }
    if (session_write_received(s) != 0 && tx->store_errno == 0)
        tx->store_errno = EIO;
    return REPLY_COUNT;
}

static void session_reader_init(struct session *s, bool dotted)
{
    const struct config *cfg = s->srv->cfg;
    struct data_limits lim = {
        .max_size = cfg->limits.message_size,
        .max_line = cfg->limits.data_line,
        .max_header = cfg->limits.header_size,
        .max_received = cfg->limits.received,
    };
    unsigned flags = dotted ? DATA_F_DOTTED : 0;

    if (s->tx->mail.body == PROTO_BODY_BINARYMIME)
        flags |= DATA_F_BINARY | DATA_F_ALLOW_NUL;
    if (cfg->bare_newlines == CONF_BARE_NORMALISE)
        flags |= DATA_F_NORMALISE;
    data_reader_init(&s->tx->reader, &lim, flags);
    header_scan_init(&s->tx->headers);
    s->tx->submission = s->login != NULL;
}

void session_data_start(struct session *s)
{
    if (s->tx->mail.body == PROTO_BODY_BINARYMIME) {
        session_reply(s, REPLY_DATA_BINARYMIME, NULL); /* RFC 3030 §3 */
        return;
    }
    enum reply_id refusal = session_msg_begin(s);
    if (refusal != REPLY_COUNT) {
        session_reply(s, refusal, NULL);
        session_tx_end(s);
        return;
    }
    session_reader_init(s, true);
    session_reply(s, REPLY_DATA_GO, NULL);
    s->state = SESSION_DATA;
    session_idle_timeouts(s, s->srv->cfg->timeouts.data_block);
    session_arm_timer(s, s->srv->cfg->timeouts.data_deadline);
}

static enum reply_id session_content_reply(enum data_error e, bool chunk)
{
    switch (e) {
    case DATA_OK:
        break;
    case DATA_ERR_BARE_CR:
    case DATA_ERR_BARE_LF:
        return REPLY_MSG_BARE_NEWLINE;
    case DATA_ERR_NUL:
        return REPLY_MSG_NUL;
    case DATA_ERR_LINE_TOO_LONG:
        return REPLY_MSG_LINE_TOO_LONG;
    case DATA_ERR_TOO_BIG:
        return chunk ? REPLY_BDAT_TOO_BIG : REPLY_MSG_TOO_BIG;
    case DATA_ERR_HEADER_TOO_BIG:
        return REPLY_MSG_HEADER_TOO_BIG;
    case DATA_ERR_TOO_MANY_HOPS:
        return REPLY_MSG_TOO_MANY_HOPS;
    }
    return REPLY_LOCAL_ERROR;
}

static void session_commit_cb(int error, const char *id, uint64_t cookie, void *arg)
{
    struct session_server *srv = arg;
    struct session *s = session_find(srv, cookie);
    const char *name = s != NULL ? s->name : "gone";

    if (error == 0)
        log_event("queued", "session=%s queue=%s", name, id);
    else
        log_event("commit_failed", "session=%s queue=%s error=%s", name, id, strerror(error));
    if (s == NULL || s->closing)
        return; /* the client left; a committed message is delivered all the same (I2) */
    s->verb = s->tx->bdat ? "BDAT" : "DATA";
    if (error == 0) {
        session_reply(s, REPLY_QUEUED, id);
        s->messages++;
        s->junk = 0;
    } else {
        session_reply(s, session_store_reply(error), NULL);
    }
    session_tx_end(s);
    if (!s->closing) {
        bufferevent_enable(s->bev, EV_READ);
        session_process(s);
    }
}

/* The end of a message: a verdict on its content, then the commit or the refusal. */
static void session_message_end(struct session *s, bool chunk)
{
    struct transaction *tx = s->tx;
    enum data_error e = tx->reader.error;

    if (e != DATA_OK) {
        log_event("rejected", "session=%s queue=%s reason=content error=%d size=%llu",
                  s->name, tx->id, (int)e,
                  (unsigned long long)tx->reader.size);
        session_reply(s, session_content_reply(e, chunk), NULL);
        session_tx_end(s);
        return;
    }
    if (tx->store_errno != 0) {
        session_reply(s, session_store_reply(tx->store_errno), NULL);
        session_tx_end(s);
        return;
    }
    struct queue_msg *m = tx->msg;
    tx->msg = NULL;
    /* The data deadline no longer applies: a slow sync must not turn a committed message
     * into a 421 the client would retry (a duplicate). */
    if (s->timer != NULL)
        evtimer_del(s->timer);
    s->state = SESSION_WAIT;
    bufferevent_disable(s->bev, EV_READ);
    queue_msg_commit(m, session_commit_cb, s->id, s->srv);
}

/* ---- BDAT ---- */

void session_bdat_start(struct session *s, uint64_t size, bool last)
{
    struct transaction *tx = s->tx;

    s->chunk_size = size;
    s->chunk_remaining = size;
    s->chunk_last = last;
    s->chunk_reply = REPLY_COUNT;
    if (tx == NULL)
        s->chunk_reply = REPLY_NEED_MAIL; /* D2: the octets are read all the same */
    else if (tx->nrcpts == 0)
        s->chunk_reply = tx->rcpt_attempts == 0 ? REPLY_NEED_RCPT : REPLY_NO_VALID_RCPT;
    else if (tx->bdat_failed)
        s->chunk_reply = REPLY_BDAT_DISCARDED;
    else if (size == 0 && !last)
        s->chunk_reply = REPLY_BDAT_NULL;
    else if (!tx->bdat) {
        tx->bdat = true;
        session_reader_init(s, false);
        s->chunk_reply = session_msg_begin(s);
        tx->bdat_failed = s->chunk_reply != REPLY_COUNT;
    }
    s->state = SESSION_BDAT;
    session_idle_timeouts(s, s->srv->cfg->timeouts.data_block);
    session_arm_timer(s, s->srv->cfg->timeouts.data_deadline);
}

/* Back to reading commands between chunks: command timeouts, no data deadline. */
static void session_bdat_between_chunks(struct session *s)
{
    if (s->closing)
        return;
    if (s->timer != NULL)
        evtimer_del(s->timer);
    session_idle_timeouts(s, s->srv->cfg->timeouts.command);
}

static void session_bdat_end(struct session *s)
{
    struct transaction *tx = s->tx;
    char num[24];

    s->state = SESSION_COMMAND;
    if (s->chunk_reply != REPLY_COUNT) {
        if (s->chunk_reply == REPLY_BDAT_DISCARDED) {
            snprintf(num, sizeof num, "%llu", (unsigned long long)s->chunk_size);
            session_reply(s, REPLY_BDAT_DISCARDED, num);
        } else {
            session_reply(s, s->chunk_reply, NULL);
        }
        if (tx != NULL && s->chunk_last)
            session_tx_end(s);
        else
            session_bdat_between_chunks(s);
        return;
    }
    if (s->chunk_last) {
        size_t outlen = 0;
        data_reader_finish(&tx->reader, s->srv->scratch, &outlen);
        if (tx->reader.error == DATA_OK)
            session_body_finish(s, s->srv->scratch, outlen);
        session_message_end(s, true);
        return;
    }
    if (tx->reader.error != DATA_OK || tx->store_errno != 0) {
        enum reply_id r = tx->reader.error != DATA_OK
                              ? session_content_reply(tx->reader.error, true)
                              : session_store_reply(tx->store_errno);
        tx->bdat_failed = true;
        if (tx->msg != NULL) {
            queue_msg_abort(tx->msg);
            tx->msg = NULL;
        }
        session_reply(s, r, NULL);
        session_bdat_between_chunks(s);
        return;
    }
    snprintf(num, sizeof num, "%llu", (unsigned long long)s->chunk_size);
    session_reply(s, REPLY_BDAT_OK, num);
    session_bdat_between_chunks(s);
}

/* ---- body bytes ---- */

bool session_body_input(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    struct transaction *tx = s->tx;
    struct evbuffer_iovec vec;

    if (s->state == SESSION_BDAT && s->chunk_remaining == 0) {
        session_bdat_end(s);
        return true;
    }
    if (evbuffer_peek(in, -1, NULL, &vec, 1) < 1 || vec.iov_len == 0)
        return false;
    size_t n = vec.iov_len;
    if (n > 64 * 1024)
        n = 64 * 1024;
    if (s->state == SESSION_BDAT && n > s->chunk_remaining)
        n = (size_t)s->chunk_remaining;

    if (s->state == SESSION_DATA) {
        size_t outlen = 0;
        bool done = false;
        size_t used = data_reader_feed(&tx->reader, vec.iov_base, n, s->srv->scratch, &outlen,
                                       &done);
        if (tx->reader.error == DATA_OK && done)
            session_body_finish(s, s->srv->scratch, outlen);
        else if (tx->reader.error == DATA_OK)
            session_body_write(s, s->srv->scratch, outlen);
        evbuffer_drain(in, used);
        if (done)
            session_message_end(s, false);
        return true;
    }
    if (s->chunk_reply == REPLY_COUNT && tx != NULL && !tx->bdat_failed) {
        size_t outlen = 0;
        bool done = false;
        data_reader_feed(&tx->reader, vec.iov_base, n, s->srv->scratch, &outlen, &done);
        if (tx->reader.error == DATA_OK)
            session_body_write(s, s->srv->scratch, outlen);
    }
    evbuffer_drain(in, n);
    s->chunk_remaining -= n;
    if (s->chunk_remaining == 0)
        session_bdat_end(s);
    return true;
}
