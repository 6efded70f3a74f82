/* sched_priv: what the scheduler's files share (scheduler.c: messages and the recipient
 * state machine; sched_route.c: routing and dispatch to agents; sched_bounce.c: DSNs).
 * sched_log.c: the outcome log; sched_ctl.c: operator actions and listing.
 * Not for use outside src/queue/sched*.c. */
#ifndef SLUICE_QUEUE_SCHED_PRIV_H
#define SLUICE_QUEUE_SCHED_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <limits.h>

#include <event2/util.h>

#include "deliver/agent.h"
#include "deliver/smtp_client.h"
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
#define SCHED_RCPTS_MAX (QUEUE_RCPTS_MAX + 10000) /* recipients after alias expansion */
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

/* scheduler.c: messages and recipient states */
int64_t sched_now(void);
struct sched_msg *sched_find(struct sched *s, const char *id);
void sched_due(struct sched *s, struct sched_msg *m, int64_t when);
/* After the log is synced: bounce what failed, warn about what waits, remove what is done. */
void sched_msg_check(struct sched *s, struct sched_msg *m);
/* Unlink a finished message, log REMOVED, free it (not while a list or a job holds it). */
void sched_remove(struct sched *s, struct sched_msg *m, const char *why);
/* An agent's answer for recipient i of m (m->busy already decremented by the caller when
 * the job is over): records it and moves the recipient on. */
void sched_result(struct sched *s, struct sched_msg *m, uint32_t i,
                  const struct deliver_result *res, const char *remote_mta);
/* Append a recipient (alias expansion); its index, or -1 when the message has too many. */
long sched_rcpt_add(struct sched *s, struct sched_msg *m, const char *addr, uint32_t parent);

/* sched_log.c: the outcome log */
void sched_log_add(struct sched *s, const struct qlog_rec *r);
void sched_log_rcpt(struct sched *s, struct sched_msg *m, enum qlog_type type, uint32_t i);
/* Re-examine m (sched_msg_check) once its records are synced. */
void sched_mark_check(struct sched *s, struct sched_msg *m);
void sched_log_write_now(struct sched *s);   /* blocking: start, compaction, shutdown */
int sched_log_compact(struct sched *s);
int sched_replay(struct sched *s);           /* every segment, in order, onto queue/ */
void sched_flush_cb(evutil_socket_t fd, short what, void *arg);

/* sched_route.c: jobs and destinations */
enum sched_dest_kind { SCHED_DEST_LOCAL, SCHED_DEST_LMTP, SCHED_DEST_SMTP };

struct sched_job {
    struct sched_job *next;
    struct sched *s;
    struct sched_dest *d;
    struct sched_msg *m;
    uint32_t *idx;                 /* recipients of m */
    size_t n;
    /* Local: computed on the loop, used on a pool thread. */
    char rcpt[1024];               /* copied: the loop may grow m->r meanwhile */
    char mailbox[PATH_MAX];
    size_t fixed_len;              /* the template's part before any %: must exist */
    char queue_path[PATH_MAX];
    uint64_t quota;                /* the mailbox's Maildir++ limit in octets, 0 none */
    struct deliver_result res;
    /* LMTP and SMTP. */
    struct queue_rcpt *rcpts;
    struct smtp_msg msg;
    int body_fd;
};

struct sched_dest {
    char *key;                     /* "local", "lmtp:ADDR", "smtp:DOMAIN", "smarthost" */
    enum sched_dest_kind kind;
    char *domain;                  /* SMTP: the domain to look up; NULL for the smarthost */
    enum smtp_client_tls tls;
    unsigned busy;                 /* jobs holding a connection or a thread */
    unsigned limit;
    struct sched_job *wait_head, **wait_tail;
    struct sched_conn *idle;       /* connections with nothing to do, newest first */
};

void sched_job_free(struct sched_job *j);
/* The job is over: each recipient gets its result, the job is freed. */
void sched_job_done(struct sched_job *j, const struct deliver_result *results,
                    const char *remote_mta);
void sched_job_fail_all(struct sched_job *j, const struct deliver_result *res,
                        const char *remote_mta);
__attribute__((format(printf, 4, 5))) void sched_res(struct deliver_result *r,
                                                     enum deliver_status st, const char *enh,
                                                     const char *fmt, ...);
void sched_dest_put(struct sched *s, struct sched_dest *d);     /* a job of d is over */
void sched_dest_release(struct sched *s, struct sched_dest *d); /* and start what waits */

/* sched_conn.c: LMTP and SMTP connections */
void sched_conn_new(struct sched *s, struct sched_dest *d, struct sched_job *j);
/* Send j on an idle connection of d; false when there is none alive. */
bool sched_conn_reuse(struct sched_dest *d, struct sched_job *j);
void sched_conns_close(struct sched *s);

/* sched_route.c: routing */
int sched_route_open(struct sched *s, char *err, size_t errlen);
void sched_route_close(struct sched *s);
/* Route m's due recipients and start or queue their jobs; returns when limits are hit. */
void sched_dispatch(struct sched *s, struct sched_msg *m, int64_t now);
/* Start queued jobs while the limits allow. */
void sched_dispatch_waiting(struct sched *s);
/* Forget the destinations with nothing running, waiting or idle (one per remote domain
 * ever seen would otherwise pile up). Only from a callback of its own: a dispatch in
 * progress holds destination pointers in its jobs. */
void sched_dests_sweep(struct sched *s);

/* sched_bounce.c: queue the failure DSN for m's failed, unbounced recipients (or the delay
 * warning when delay is true). 0 when done (or nothing to send), -1 when it must be
 * retried later (I/O error: logged). */
int sched_bounce(struct sched *s, struct sched_msg *m, bool delay);

#endif
