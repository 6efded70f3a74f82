/* smtp_client_priv: what smtp_client.c (connection: targets, greeting, EHLO, STARTTLS,
 * AUTH, I/O callbacks, timers) and smtp_client_txn.c (transactions and the body) share.
 * Private to deliver/smtp_client*. */
#ifndef SLUICE_DELIVER_SMTP_CLIENT_PRIV_H
#define SLUICE_DELIVER_SMTP_CLIENT_PRIV_H

#include <stdarg.h>

#include "deliver/smtp_body.h"
#include "deliver/smtp_client.h"
#include "deliver/smtp_reply.h"

struct bufferevent;
struct event;

#define SMTP_CLIENT_CHUNK (64 * 1024) /* message bytes read (and sent per BDAT) at a time */
#define SMTP_CLIENT_LOW (16 * 1024)   /* refill the body when the output is down to this */
#define SMTP_CLIENT_CMD_MAX 2048      /* one command line we send, CRLF included */

enum smtp_conn_state {
    SMTP_ST_CONNECTING, /* TCP or unix connect */
    SMTP_ST_GREETING,   /* waiting for 220 */
    SMTP_ST_EHLO,       /* EHLO or LHLO sent */
    SMTP_ST_HELO,       /* HELO sent after EHLO got 5xx */
    SMTP_ST_STARTTLS,   /* STARTTLS sent */
    SMTP_ST_HANDSHAKE,  /* TLS handshake running */
    SMTP_ST_AUTH,       /* AUTH PLAIN sent */
    SMTP_ST_IDLE,       /* ready for a transaction */
    SMTP_ST_TXN,        /* a transaction is running */
    SMTP_ST_QUIT,       /* closed by the caller, waiting briefly for the QUIT reply */
    SMTP_ST_DEAD,       /* the connection is gone; the struct lives on for the caller */
};

/* The reply the transaction waits for next (RFC 2920: in the order the commands went). */
enum smtp_expect_kind {
    SMTP_EXP_RSET,
    SMTP_EXP_MAIL,
    SMTP_EXP_RCPT,   /* idx: the recipient */
    SMTP_EXP_DATA,   /* 354 */
    SMTP_EXP_BDAT,   /* a chunk that is not the last */
    SMTP_EXP_END,    /* after the final dot or BDAT LAST; LMTP: one per accepted recipient */
    SMTP_EXP_IGNORE, /* the "." that ends a DATA no recipient was accepted for */
};

struct smtp_expect {
    enum smtp_expect_kind kind;
    size_t idx;
};

enum smtp_rcpt_state { SMTP_RCPT_OPEN, SMTP_RCPT_ACCEPTED, SMTP_RCPT_DONE };

/* Where the sending side of a transaction is: the next command to write. */
enum smtp_send_step {
    SMTP_SEND_RSET,
    SMTP_SEND_MAIL,
    SMTP_SEND_RCPT,
    SMTP_SEND_DATA, /* DATA, or the first BDAT chunk */
    SMTP_SEND_BODY, /* body bytes are being written */
    SMTP_SEND_DONE, /* everything written; only replies are awaited */
};

enum smtp_notify { SMTP_NOTIFY_NONE, SMTP_NOTIFY_READY, SMTP_NOTIFY_FAILED, SMTP_NOTIFY_SENT };

struct smtp_conn {
    struct event_base *base;
    const struct smtp_conn_params *p;
    size_t ti;               /* the target tried or reached */
    bool reached;            /* some target accepted the connection */
    size_t err_ti;           /* the target whose answer err is; SIZE_MAX: none's */
    struct bufferevent *bev; /* NULL when there is no connection */
    struct event *timer;     /* the one timeout of the current wait */
    struct event *notify;    /* runs the caller's callbacks, never from inside a call */
    enum smtp_notify pending;
    enum smtp_conn_state state;
    struct smtp_reply_parser parser;
    struct smtp_ehlo ehlo;
    bool tls;                  /* STARTTLS completed */
    bool authenticated;        /* our AUTH was accepted: MAIL carries AUTH= (RFC 4954 §5) */
    bool starttls_refused;     /* MAY: the peer refused STARTTLS, go on in plaintext */
    struct deliver_result err; /* why the open failed, for every recipient */
    smtp_conn_ready_cb ready_cb;
    void *ready_arg;

    /* The transaction, when state is SMTP_ST_TXN (and results until the SENT notice). */
    smtp_conn_sent_cb sent_cb;
    void *sent_arg;
    const struct smtp_msg *msg;
    struct deliver_result *results;
    unsigned char *rstate;      /* enum smtp_rcpt_state per recipient */
    struct smtp_expect *expect; /* queue of awaited replies: [ehead, etail) */
    size_t ehead, etail, ecap;
    enum smtp_send_step step;
    size_t next_rcpt; /* SMTP_SEND_RCPT: the next recipient to send */
    size_t naccepted; /* recipients with a 2xx to RCPT */
    bool used;        /* a transaction ran before: RSET first */
    bool mail_failed;
    bool reusable;
    bool chunking;     /* BDAT instead of DATA */
    bool body_queued;  /* all body bytes (and the end) are in the output */
    uint64_t body_pos; /* bytes of the message read so far */
    struct smtp_body_enc enc;
    unsigned char *inbuf, *outbuf; /* SMTP_CLIENT_CHUNK and its SMTP_BODY_OUT_CAP */
    char addr[128];                /* the target's address for the log */
};

/* smtp_client.c */
void smtp_client_arm(struct smtp_conn *c, unsigned ms);
void smtp_client_write(struct smtp_conn *c, const void *data, size_t len);
bool smtp_client_printf(struct smtp_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void smtp_client_drop(struct smtp_conn *c); /* frees the connection, state DEAD */
void smtp_client_schedule(struct smtp_conn *c, enum smtp_notify what);
void smtp_client_result(struct deliver_result *res, enum deliver_status st, const char *enhanced,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void smtp_client_result_reply(struct deliver_result *res, const struct smtp_reply *r);

/* smtp_client_txn.c */
void smtp_txn_reply(struct smtp_conn *c, const struct smtp_reply *r);
void smtp_txn_abort(struct smtp_conn *c, const char *enhanced, const char *why);
void smtp_txn_writable(struct smtp_conn *c);
void smtp_txn_free(struct smtp_conn *c);

#endif
