/* smtp_client: the outbound side of SMTP (RFC 5321) and LMTP (RFC 2033), on the caller's
 * event loop. A connection is opened to the first of a list of targets that answers (the
 * MX hosts in order, or a smarthost, or an LMTP server on TCP or a unix socket), then
 * carries one transaction after another (connection reuse), each with several recipients
 * and a result per recipient. The scheduler decides what to send where; this module only
 * speaks the protocol, and knows nothing of the queue beyond the envelope and the bytes.
 *
 * Replies are parsed defensively (HOSTILE-INPUTS J1, J2: over-long, malformed, endless
 * multi-line, wrong codes mid-reply); message bytes are sent CRLF-normalised and
 * dot-stuffed (J10), or in BDAT chunks when the peer offers CHUNKING. */
#ifndef SLUICE_DELIVER_SMTP_CLIENT_H
#define SLUICE_DELIVER_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "deliver/agent.h"
#include "queue/envelope.h"

struct event_base;
struct smtp_conn;

#define SMTP_CLIENT_NAME_MAX 255 /* a host name, RFC 1035 */

/* One place to connect to. For LMTP over a unix socket, addr is AF_UNIX. */
struct smtp_client_target {
    char name[SMTP_CLIENT_NAME_MAX + 1]; /* the MX host name (or "[addr]"): SNI, certificate
                                            check, Remote-MTA in DSNs, logs */
    struct sockaddr_storage addr;        /* with the port set */
    socklen_t addrlen;
};

enum smtp_client_tls {
    SMTP_CLIENT_TLS_NONE,   /* never STARTTLS */
    SMTP_CLIENT_TLS_MAY,    /* STARTTLS when offered, certificate not checked (RFC 7435
                               opportunistic); a failed handshake moves on to the next target */
    SMTP_CLIENT_TLS_VERIFY, /* STARTTLS required and the certificate must verify for the
                               target's name, else the target is skipped with 4.7.5 */
};

/* Milliseconds; RFC 5321 §4.5.3.2 gives the defaults in brackets. */
struct smtp_client_timeouts {
    unsigned connect;   /* TCP connect and TLS handshake [30 s, ours] */
    unsigned greeting;  /* 220 [5 min] */
    unsigned command;   /* EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET [5 min] */
    unsigned data_init; /* 354 after DATA [2 min] */
    unsigned data_block;/* each send of body bytes [3 min] */
    unsigned data_done; /* the reply after the final dot or BDAT LAST [10 min] */
};

struct smtp_conn_params {
    bool lmtp;                     /* LHLO and one reply per recipient after the data */
    const char *helo_name;         /* our name for EHLO/HELO/LHLO */
    const struct smtp_client_target *targets; /* tried in order (RFC 5321 §5.1) */
    size_t ntargets;
    enum smtp_client_tls tls;
    SSL_CTX *tls_ctx;              /* a client context (tls_client_ctx); unused for TLS_NONE */
    const char *auth_user;         /* AUTH PLAIN (RFC 4616) after STARTTLS; NULL: no AUTH */
    const char *auth_password;
    const char *const *self_names; /* our own host names: a greeting or EHLO reply that names
                                      one means the mail loops back to us (5.4.6) */
    size_t nself;
    struct smtp_client_timeouts timeouts;
    char *failed_target;           /* NULL, or a buffer of SMTP_CLIENT_NAME_MAX + 1 octets: on
                                      failure, the name of the target whose answer err is
                                      ("" when it is not a target's: none was reached) */
};

/* Called once per smtp_conn_open. Ready: conn is set, err NULL. Failed: conn NULL and err
 * says why for every recipient of the mail that waited on it: TEMPFAIL when no target could
 * be reached or each answered 4xx (or TLS_VERIFY failed: 4.7.5), PERMFAIL when the last
 * reachable target answered the greeting or EHLO/HELO with 5xx, or the peer is ourselves
 * (5.4.6). err->remote_reply is set when err->text is the peer's reply. */
typedef void (*smtp_conn_ready_cb)(struct smtp_conn *conn, const struct deliver_result *err,
                                   void *arg);

/* Start connecting: targets in order; for each, connect, greeting, EHLO (HELO when EHLO gets
 * 5xx; LHLO for LMTP, no fallback), STARTTLS per params->tls and EHLO again, AUTH when asked.
 * params and everything it points to must stay valid until the connection is closed. NULL +
 * errno only when nothing could be started (ENOMEM, EINVAL); otherwise cb runs later, never
 * from inside this call. */
struct smtp_conn *smtp_conn_open(struct event_base *base, const struct smtp_conn_params *params,
                                 smtp_conn_ready_cb cb, void *arg);

/* One message for one transaction. */
struct smtp_msg {
    const struct queue_envelope *env;  /* sender, BODY, SMTPUTF8, RET, ENVID */
    const struct queue_rcpt *rcpts;    /* the recipients of this transaction (addr, NOTIFY,
                                          ORCPT: passed on when the peer offers DSN) */
    size_t nrcpts;
    int body_fd;                       /* the message bytes are read with pread from here */
    uint64_t body_offset, body_len;
};

/* Called once per smtp_conn_send with one result per recipient, in the order of
 * msg->rcpts. A refusal of the whole transaction (MAIL, DATA, the end of data; a message
 * over the peer's SIZE: 5.3.4; SMTPUTF8 needed and not offered: 5.6.7 (RFC 6531 §3.5);
 * BINARYMIME without CHUNKING: 5.6.3; a timeout or lost connection: 4.4.2) is copied to
 * every recipient still open. reusable: the connection may carry another transaction
 * (false after 421, a timeout, a lost connection or a protocol error); either way the
 * caller ends with smtp_conn_send again or smtp_conn_close. */
typedef void (*smtp_conn_sent_cb)(struct smtp_conn *conn, const struct deliver_result *results,
                                  bool reusable, void *arg);

/* Run one transaction (RSET first when the connection carried one before). PIPELINING
 * (RFC 2920) groups MAIL and the RCPTs when offered; SIZE= is sent when offered; BODY=8BITMIME
 * as the envelope says (sent as is to a peer without 8BITMIME, as most MTAs do);
 * SMTPUTF8 when the envelope needs it. msg and what it points to must stay valid until cb
 * runs; cb never runs from inside this call. One transaction at a time per connection. */
void smtp_conn_send(struct smtp_conn *conn, const struct smtp_msg *msg, smtp_conn_sent_cb cb,
                    void *arg);

/* The target the connection reached (Remote-MTA, logs), and a description of its TLS
 * ("TLSv1.3 cipher=..." or "none") into out. */
const struct smtp_client_target *smtp_conn_target(const struct smtp_conn *conn);
void smtp_conn_tls(const struct smtp_conn *conn, char *out, size_t cap);

/* Whether an idle connection can still carry a transaction: false once the peer closed
 * it, broke it or said 421 while it waited for reuse. */
bool smtp_conn_alive(const struct smtp_conn *conn);

/* QUIT (politely, without waiting long for the answer) and free. No callback runs after
 * this, also when called while an open or a send is in flight (shutdown). */
void smtp_conn_close(struct smtp_conn *conn);

#endif
