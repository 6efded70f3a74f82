/* session_priv: the state shared by the parts of the session: its I/O (session.c), commands
 * (session_cmd.c), message bodies (session_data.c) and the per-worker server
 * (session_server.c). Not for other modules. */
#ifndef SLUICE_SMTP_SESSION_PRIV_H
#define SLUICE_SMTP_SESSION_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "queue/store.h"
#include "smtp/data.h"
#include "smtp/header_scan.h"
#include "smtp/proto.h"
#include "smtp/reply.h"
#include "smtp/session.h"

struct jwt_key;
struct pool;
struct session_auth;

enum session_state {
    SESSION_GREETING,   /* greeting delay running: any input is a pregreet (E1) */
    SESSION_HANDSHAKE,  /* TLS handshake in progress */
    SESSION_COMMAND,
    SESSION_DATA,       /* after 354, until CRLF.CRLF */
    SESSION_BDAT,       /* inside a chunk */
    SESSION_AUTH,       /* inside an AUTH exchange: a line is a SASL response (RFC 4954 §4) */
    SESSION_WAIT,       /* waiting for an asynchronous answer (directory, commit): buffered
                           input is not processed until it comes */
};

/* One MAIL..end-of-data transaction; NULL outside it. */
struct transaction {
    struct proto_mail mail;
    struct queue_rcpt *rcpts;
    size_t nrcpts, rcpts_cap;
    unsigned rcpt_attempts;         /* RCPT commands seen, accepted or not */
    unsigned rcpt_accepted;         /* RCPT commands answered 250, duplicates included: the
                                       recipients limit counts these, so repeating one
                                       address cannot go on forever (B12, B13) */
    struct queue_msg *msg;          /* open spool file, once the body started */
    char id[ID_LEN + 1];
    struct data_reader reader;
    int store_errno;                /* first write error (the message is then dropped) */
    bool bdat;                      /* BDAT was used: DATA and RCPT are refused (RFC 3030) */
    bool bdat_failed;               /* a chunk failed: discard until LAST or RSET */
    bool submission;                /* a logged-in user's message: missing Message-ID and
                                       Date are added (RFC 6409 §8.2, §8.3) */
    struct header_scan headers;
};

struct session {
    uint64_t id;                    /* registry key: slot and generation, unique per worker */
    char name[ID_LEN + 1];          /* unique across workers and restarts: the log's session= */
    struct session_server *srv;
    const struct conf_listener *listener;
    struct bufferevent *bev;        /* the top bufferevent (the TLS filter once TLS is on) */
    struct event *timer;            /* greeting delay, line deadline or data deadline */
    char *helo;                     /* EHLO/HELO argument, NULL before */
    const char *verb;               /* command being answered, for the log ("-" between) */
    const char *log_arg;            /* its argument as the client sent it, logged escaped */
    size_t log_arglen;
    char addr[48];                  /* client address text */
    uint64_t closing_ms;            /* when session_close began (bounds the final flush) */
    enum session_state state;
    unsigned errors, junk, messages;
    bool ehlo;                      /* EHLO (not HELO): extensions may be used */
    bool tls;
    bool closing;                   /* final reply written; free once flushed */
    bool draining;                  /* shutdown: 421 once the transaction ends */
    bool discard_line;              /* skipping the rest of an over-long command line */
    bool line_pending;              /* a command line has begun: its deadline is running */
    bool in_process;                /* reentrancy guard of session_process */
    bool greeted;                   /* the 220 greeting was sent */
    bool loopback;                  /* the client is on 127.0.0.0/8 or ::1 */
    bool trusted;                   /* the client is in trusted-networks: may relay, VRFY, EXPN */
    char *login;                    /* the mailbox AUTH logged in as; NULL before */
    unsigned auth_failures;         /* failed AUTH exchanges in this session */
    struct session_auth *auth;      /* the AUTH exchange in progress, NULL outside one */
    uint64_t chunk_remaining;       /* BDAT: bytes of the current chunk still to read */
    uint64_t chunk_size;            /* BDAT: size of the current chunk */
    bool chunk_last;                /* BDAT: the current chunk is LAST */
    enum reply_id chunk_reply;      /* BDAT: answer decided before reading, or REPLY_COUNT */
    struct transaction *tx;
};

struct session_server {
    struct event_base *base;
    const struct config *cfg;
    struct queue_store *store;
    struct dir *dir;
    SSL_CTX *tls;
    struct session **slots;         /* id & SESSION_SLOT_MASK -> session */
    uint32_t *free_slots;
    size_t nslots, nfree, count;
    uint64_t next_seq;
    struct ip_count **ip_buckets;
    int64_t ip_swept_minute;        /* last minute the rate entries were swept */
    int64_t spool_checked;          /* second of the last free-space check of the spool */
    bool spool_low;                 /* its answer: below limits.spool_min_free */
    bool shutting_down;
    unsigned char *scratch;         /* body reader output, shared: one loop, one user at a time */
    struct pool *pool;              /* password checks (session_auth.c) */
    struct jwt_key *token_keys;     /* cfg->auth.token_keys loaded */
    size_t ntoken_keys;
};

#define SESSION_SLOT_BITS 24
#define SESSION_INPUT_HIGH (64 * 1024) /* input buffered before reading pauses */

struct session *session_find(struct session_server *srv, uint64_t id);
void session_reply(struct session *s, enum reply_id id, const char *arg);
void session_close(struct session *s);
void session_process(struct session *s);
void session_arm_timer(struct session *s, unsigned ms);
struct timeval session_tv(unsigned ms);
uint64_t session_now_ms(void);
void session_tx_free(struct session *s);
void session_tx_end(struct session *s);

void session_free(struct session *s);
void session_idle_timeouts(struct session *s, unsigned read_ms);
void session_tls_start(struct session *s);

/* session.c: set up a registered session on an accepted socket that passed the limits. */
void session_start(struct session *s, int fd);

/* session_server.c: give back the session's id and its share of the limits. */
void session_server_release(struct session *s);
/* Counts a new TLS handshake of the client; false past limits.tls_rate (F7). */
bool session_server_tls_allowed(struct session *s);
/* False while the spool has less than limits.spool_min_free free (I7); checked once a second. */
bool session_server_spool_ok(struct session_server *srv);

/* session_cmd.c */
void session_command(struct session *s, const char *line, size_t len);
void session_sync_error(struct session *s);   /* 554 5.5.0 and close (E1-E4) */
void session_foreign(struct session *s);      /* 421 4.7.0 and close (A8, A9) */

/* session_auth.c */
void session_auth_start(struct session *s, const char *arg, size_t len);  /* AUTH command */
void session_auth_response(struct session *s, const char *line, size_t len);
void session_auth_too_long(struct session *s);   /* G4: an AUTH line or response too long */
void session_auth_free(struct session *s);       /* drop an exchange (session ends) */
/* The EHLO AUTH keyword's mechanisms ("PLAIN LOGIN ..."), "" when AUTH is not offered now. */
void session_auth_mechanisms(const struct session *s, char *out, size_t outlen);
#define SESSION_AUTH_LINE_MAX 12288 /* octets of an AUTH line or SASL response (G4) */

/* session_server.c: count a failed AUTH (failed true) and say whether the client's address
 * has reached auth.ip_failures this hour (G8). */
bool session_server_auth_blocked(struct session *s, bool failed);
/* The bearer token keys loaded at start (sasl/jwt), or NULL with n 0. */
const struct jwt_key *session_server_token_keys(const struct session_server *srv, size_t *n);
/* The thread pool that checks passwords off the loop (created on first use); NULL on error. */
struct pool *session_server_pool(struct session_server *srv);

/* session_data.c */
void session_data_start(struct session *s);                    /* after DATA's checks */
void session_bdat_start(struct session *s, uint64_t size, bool last);
bool session_body_input(struct session *s);                     /* false: wait for more */

#endif
