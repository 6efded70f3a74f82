/* sched_priv: what the scheduler's files share (scheduler.c: messages, the outcome log and
 * the state machine; sched_route.c: routing and dispatch to agents; sched_bounce.c: DSNs).
 * Not for use outside src/queue/sched*.c. */
#ifndef SLUICE_QUEUE_SCHED_PRIV_H
#define SLUICE_QUEUE_SCHED_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver/agent.h"
#include "queue/qlog.h"
#include "queue/scheduler.h"

struct event;
struct event_base;
struct pool;
struct queue_inject;
struct dns;
struct sched_dest;
struct sched_conn;
struct sched_job;

#define SCHED_ALIAS_DEPTH 10     /* alias expansion levels before 5.4.6 */
#define SCHED_RCPTS_MAX 10000    /* recipients of one message after expansion */
#define SCHED_LOG_ROTATE (64u << 20) /* compact the outcome log past this size */
#define SCHED_BOUNCE_ATTACH_MAX (1u << 20) /* attach the whole message up to this size */

enum sched_rstate {
    SCHED_R_PENDING,   /* to be tried (now, or at next_try when attempts > 0) */
    SCHED_R_BUSY,      /* an agent has it */
    SCHED_R_DELIVERED, /* final */
    SCHED_R_FAILED,    /* final; bounced says whether its DSN is queued */
    SCHED_R_EXPANDED,  /* final: an alias replaced by other recipients */
};

struct sched_rcpt {
    char *addr;           /* lower-cased domain; the local part as given */
    unsigned notify;      /* NOTIFY of the envelope recipient it came from */
    uint32_t root;        /* index of the envelope recipient it came from (itself if one) */
    uint32_t parent;      /* the alias it was expanded from (itself if an envelope one) */
    uint8_t depth;        /* alias levels below root */
    enum sched_rstate state;
    unsigned attempts;
    int64_t next_try;     /* seconds; 0 = at once */
    bool bounced;         /* FAILED: the DSN is queued, or none is wanted */
    struct deliver_result last; /* the last failure, for DSNs and `queue list` */
    char *remote_mta;     /* who gave last, when remote */
};

struct sched_msg {
    char id[ID_LEN + 1];
    struct queue_envelope env;
    uint64_t body_offset, body_len;
    struct sched_rcpt *r;
    size_t nr, rcap;
    bool held;
    bool warned;          /* delay DSN queued */
    bool check;           /* on the after-sync list (records waiting for the next sync) */
    bool checking;        /* on the list of the sync in flight */
    bool removed;
    unsigned busy;        /* jobs in flight */
    int64_t due;          /* when the heap entry for it is due; 0 = none */
    struct sched_msg *check_next;
    struct sched_msg *checking_next;
};

struct sched {
    struct event_base *base;
    const struct config *cfg;
    struct dir *dir;
    char *spool;
    int queue_fd, corrupt_fd, state_fd;
    struct queue_inject *inject;
    struct pool *pool;
    struct dns *dns;
    void *tls_ctx;        /* SSL_CTX for the SMTP client, NULL until first needed */

    /* Messages by id (open addressing, power-of-two capacity). */
    struct sched_msg **slots;
    size_t cap, n;

    /* Due times (a binary min-heap of message pointers; entries are checked against
     * msg->due when popped, so a message can have stale entries). */
    struct sched_heap_ent { int64_t due; struct sched_msg *m; } *heap;
    size_t heap_n, heap_cap;
    struct event *timer;      /* fires at the earliest due time */
    struct event *kick;       /* runs the dispatcher after the current callbacks */

    /* Outcome log. */
    int log_fd;
    uint64_t log_seq, log_size;
    unsigned char *logbuf;
    size_t loglen, logcap;
    struct event *flush_ev;   /* hands logbuf to the sync thread after the current callbacks */
    struct sched_msg *check_head; /* to re-examine once the log is synced */
    struct pool *log_pool;    /* one thread: write and fdatasync off the event loop */
    bool log_busy;            /* a sync is in flight (at most one) */
    unsigned char *syncbuf;   /* what it writes */
    size_t synclen, synccap;
    int sync_err;
    struct sched_msg *checking_head; /* waiting for the sync in flight */

    /* Destinations (sched_route.c). */
    struct sched_dest **dests;
    size_t ndests, dests_cap;
    unsigned in_flight;           /* jobs started, local ones included */
    unsigned in_flight_remote;    /* LMTP/SMTP jobs: what delivery.concurrency caps */
    struct sched_job **local;     /* local jobs gathered into the next Maildir batch */
    size_t nlocal;
    struct event *local_ev;       /* hands the batch to a thread after the current callbacks */
    struct sched_conn *conns;     /* every LMTP/SMTP connection, for shutdown */

    bool closing;
    struct sched_stats stats;
};

/* scheduler.c */
int64_t sched_now(void);
void sched_log_add(struct sched *s, const struct qlog_rec *r);
void sched_log_rcpt(struct sched *s, struct sched_msg *m, enum qlog_type type, uint32_t i);
void sched_due(struct sched *s, struct sched_msg *m, int64_t when);
void sched_mark_check(struct sched *s, struct sched_msg *m);
/* An agent's answer for recipient i of m (m->busy already decremented by the caller when
 * the job is over): records it and moves the recipient on. */
void sched_result(struct sched *s, struct sched_msg *m, uint32_t i,
                  const struct deliver_result *res, const char *remote_mta);
/* Append a recipient (alias expansion); its index, or -1 when the message has too many. */
long sched_rcpt_add(struct sched *s, struct sched_msg *m, const char *addr, uint32_t parent);

/* sched_route.c */
int sched_route_open(struct sched *s, char *err, size_t errlen);
void sched_route_close(struct sched *s);
/* Route m's due recipients and start or queue their jobs; returns when limits are hit. */
void sched_dispatch(struct sched *s, struct sched_msg *m, int64_t now);
/* Start queued jobs while the limits allow. */
void sched_dispatch_waiting(struct sched *s);

/* sched_bounce.c: queue the failure DSN for m's failed, unbounced recipients (or the delay
 * warning when delay is true). 0 when done (or nothing to send), -1 when it must be
 * retried later (I/O error: logged). */
int sched_bounce(struct sched *s, struct sched_msg *m, bool delay);

#endif
