/* store_priv: the state shared by the parts of the queue store: store.c (open, close,
 * completions), store_msg.c (writing and reading queue files), store_sync.c (the sync
 * thread: log rounds and checkpoints) and store_recover.c (spool preparation and recovery).
 * Not for other modules; the contract is store.h. */
#ifndef SLUICE_QUEUE_STORE_PRIV_H
#define SLUICE_QUEUE_STORE_PRIV_H

#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <zlib.h>

#include "queue/store.h"
#include "util/fileio.h"

#define STORE_MAGIC "SLUICEQF"
#define STORE_VERSION 1u
#define STORE_HEAD 16    /* magic, version, flags */
#define STORE_ENV_LEN 4  /* length prefix of the envelope record */
#define STORE_BODY_LEN 8 /* length prefix of the message bytes, filled in at commit */
#define STORE_END_MAGIC "QEND"
#define STORE_END QUEUE_FILE_END /* end magic, CRC-32 of every byte before it */
#define STORE_BUF (64 * 1024)
#define STORE_CRASH_EXIT 137

/* A round's records go to the log through this buffer: one pwrite per 256 KiB. */
#define STORE_ROUND_BUF (256 * 1024)
/* Checkpoint when acknowledged messages wait and one of these is reached (doc/QUEUE.md). */
#define STORE_CKPT_INTERVAL_NS 200000000L
#define STORE_CKPT_MAX_ACKED 1000
#define STORE_SEGMENT_MAX ((off_t)64 * 1024 * 1024)
#define STORE_SEGMENT_PREALLOC ((off_t)1024 * 1024) /* written ahead in a new segment */
#define STORE_CKPT_RETRY_NS 1000000000L
/* A segment name taken by a dead worker whose pid we reuse is skipped, this many times. */
#define STORE_SEG_TRIES 1000
#define STORE_SEG_NAME 48
/* incoming/<pid>: a pid in decimal, NUL included. */
#define STORE_PID_NAME 24

enum store_fault {
    STORE_FAULT_NONE,
    STORE_FAULT_SYNC_EIO,
    STORE_FAULT_WRITE_ENOSPC,
    STORE_FAULT_CRASH_BEFORE_RENAME,
    STORE_FAULT_CRASH_AFTER_RENAME,
    STORE_FAULT_CRASH_IN_CHECKPOINT,
    STORE_FAULT_CHECKPOINT_EIO,
    STORE_FAULT_CHECKPOINT_EIO_ONCE,
};

struct queue_msg {
    struct queue_store *qs;
    struct queue_msg *next; /* in the pending or done list */
    char id[ID_LEN + 1];
    int fd;             /* read and write; open until its round is over */
    uint64_t seq;       /* creation order within the store */
    unsigned char *buf; /* STORE_BUF bytes not yet written; NULL after commit */
    size_t buflen;
    off_t body_len_off; /* where the body length goes */
    uint64_t body_len;  /* message bytes written so far */
    uLong crc_head;     /* CRC-32 of the header and envelope record */
    uLong crc_body;     /* CRC-32 of the message bytes alone */
    uint64_t file_len;  /* the whole file, set at commit */
    uint32_t file_crc;  /* CRC-32 of the whole file, set at commit */
    off_t wal_off;      /* where its record starts in the current segment */
    int error;          /* first errno; sticky */
    queue_commit_cb cb;
    uint64_t cookie;
    void *arg;
};

/* A log segment of this store that still holds records of acknowledged messages (or is
 * the current one). */
struct store_seg {
    uint64_t seq;
    int fd;
    off_t size;    /* bytes in the file (zeros, records, or a former use's records) */
    size_t nacked; /* acknowledged records in it not yet checkpointed */
};

/* An acknowledged message waiting for the checkpoint. */
struct store_ack {
    char id[ID_LEN + 1];
    size_t seg; /* index in segs */
    off_t off;  /* its record */
};

struct queue_store {
    int incoming_root_fd; /* incoming/, to remove this store's directory at close */
    int incoming_fd;      /* incoming/<pid>/: this store's files; directory fds */
    int queue_fd;
    int wal_fd;
    int wake_fd; /* eventfd: the sync thread tells the loop a round is done */
    struct event *wake_ev;
    enum store_fault fault;
    uint64_t next_seq; /* loop thread only */
    pid_t pid;
    pthread_t thread;

    /* Sync thread only (and queue_store_close after the join). */
    struct store_seg *segs; /* the current segment, when live, is the last */
    size_t nsegs, segs_cap;
    bool cur_live;   /* segs[nsegs - 1] takes appends */
    bool cur_synced; /* and its directory entry is durable */
    uint64_t next_wal_seq;
    off_t wal_off;       /* end of the records written to the current segment */
    unsigned char *rbuf; /* STORE_ROUND_BUF bytes that go at wal_off */
    size_t rlen;
    struct store_ack *acks; /* acknowledged, not yet in queue/ */
    size_t nacks, acks_cap;
    int ck_fd;       /* the oldest acknowledged message's fd: syncfs reports errors since */
    uint64_t ck_seq; /* it was opened, so none that hit a later file can be missed */
    struct timespec last_ckpt;
    struct timespec retry_at;
    bool ckpt_failed; /* the files in incoming/ are no longer trusted: rewrite from the log */
    uint64_t ckpt_attempts_failed;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    struct queue_msg *pending; /* committed, waiting for the next round */
    struct queue_msg **pending_tail;
    struct queue_msg *done; /* finished, waiting for their callback */
    struct queue_msg **done_tail;
    bool stopping;
    struct queue_store_stats stats;
};

/* store_msg.c: end a message's file (length, end record), its fd left open; 0 or errno.
 * And free a message whose file is dealt with (closes its fd). Used by commit and by the
 * queue manager's injection (inject.c). */
int store_msg_finish(struct queue_msg *m);
void store_msg_free(struct queue_msg *m);

/* store.c: hand finished messages (m->error set) to the loop thread; any thread. */
void store_post_done(struct queue_store *qs, struct queue_msg *list);


/* store_sync.c: the sync thread's body (arg is the store), and the monotonic clock. */
void *store_sync_main(void *arg);
void store_now(struct timespec *t);

/* store_recover.c: the decimal name of a pid's directory in incoming/. */
void store_pid_name(pid_t pid, char name[STORE_PID_NAME]);

#endif
