/* store: the durable queue on disk, its write-ahead log and group commit (DESIGN §4,
 * doc/QUEUE.md). Called by the master (queue_store_prepare, which also recovers the log),
 * by each worker's sessions (begin, write, commit, abort) on their event loop, and by the
 * queue manager (queue_file_read).
 * Invariants:
 * - a message is acknowledged (callback with error 0) only once its whole file is in the
 *   store's log segment wal/<pid>-<seq> as a record and that segment has been fdatasynced;
 *   any failure on the way unlinks the file and reports the errno: a failed sync is never
 *   retried and then claimed (HOSTILE-INPUTS I8);
 * - one sync thread per store runs rounds: everything queued when a round starts is
 *   appended to the log and covered by one fdatasync (group commit);
 * - a file appears in queue/ only through a checkpoint: syncfs(2), rename from incoming/,
 *   fsync of queue/; only then are the log segments unlinked. So every file in queue/ is
 *   complete and durable, and an acknowledged message is always in queue/ or in a segment;
 * - a failed checkpoint keeps every acknowledged message in the log and is retried by
 *   rewriting the files from their records, never by syncing again;
 * - callbacks run on the event loop thread only, never from inside queue_msg_commit;
 * - a file is trusted by queue_file_read only when every length agrees with the file size
 *   and the end record's CRC-32 matches (I10). */
#include "queue/store.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "queue/wal.h"

#define STORE_MAGIC "SLUICEQF"
#define STORE_VERSION 1u
#define STORE_HEAD 16    /* magic, version, flags */
#define STORE_ENV_LEN 4  /* length prefix of the envelope record */
#define STORE_BODY_LEN 8 /* length prefix of the message bytes, filled in at commit */
#define STORE_END_MAGIC "QEND"
#define STORE_END 8 /* end magic, CRC-32 of every byte before it */
#define STORE_BUF (64 * 1024)
#define STORE_CRASH_EXIT 137

/* A round's records go to the log through this buffer: one pwrite per 256 KiB. */
#define STORE_ROUND_BUF (256 * 1024)
/* Checkpoint when acknowledged messages wait and one of these is reached (doc/QUEUE.md). */
#define STORE_CKPT_INTERVAL_NS 200000000L
#define STORE_CKPT_MAX_ACKED 1000
#define STORE_SEGMENT_MAX ((off_t)64 * 1024 * 1024)
#define STORE_CKPT_RETRY_NS 1000000000L
/* A segment name taken by a dead worker whose pid we reuse is skipped, this many times. */
#define STORE_SEG_TRIES 1000
#define STORE_SEG_NAME 48

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
    size_t nacked; /* acknowledged records in it not yet checkpointed */
};

/* An acknowledged message waiting for the checkpoint. */
struct store_ack {
    char id[ID_LEN + 1];
    size_t seg; /* index in segs */
    off_t off;  /* its record */
};

struct queue_store {
    int incoming_fd; /* directory fds */
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
    off_t wal_off;        /* end of the records written to the current segment */
    unsigned char *rbuf;  /* STORE_ROUND_BUF bytes that go at wal_off */
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

/* ---- small I/O helpers: every call retried on EINTR and on short counts ---- */

static int store_write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int store_pwrite_all(int fd, const unsigned char *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* A short read means the file is shorter than its own lengths say: corruption. */
static int store_pread_all(int fd, unsigned char *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            return EINVAL;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

static void store_be32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

static uint32_t store_get32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void store_be64(unsigned char *b, uint64_t v)
{
    store_be32(b, (uint32_t)(v >> 32));
    store_be32(b + 4, (uint32_t)v);
}

static uint64_t store_get64(const unsigned char *b)
{
    return (uint64_t)store_get32(b) << 32 | store_get32(b + 4);
}

/* ---- preparing the spool (master) ---- */

static int store_mkdir_p(const char *path)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof p)
        return ENAMETOOLONG;
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return errno;
        p[i] = c;
    }
    return 0;
}

/* Everything in incoming/ was never acknowledged: a crash cut it off before its commit
 * point, so it must never be delivered (HOSTILE-INPUTS I3). */
static int store_clean_incoming(int dfd)
{
    int dup_fd = dup(dfd);
    if (dup_fd < 0)
        return errno;
    DIR *d = fdopendir(dup_fd);
    if (d == NULL) {
        int e = errno;
        close(dup_fd);
        return e;
    }
    int err = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(dfd, de->d_name, 0) != 0 && errno != ENOENT && errno != EISDIR) {
            err = errno;
            break;
        }
    }
    closedir(d);
    return err;
}

static int store_prepare_dirs(int spool_fd)
{
    static const char *const subdirs[] = {"incoming", "queue", "corrupt"};
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
        if (mkdirat(spool_fd, subdirs[i], 0700) != 0 && errno != EEXIST)
            return errno;
        int fd = openat(spool_fd, subdirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return errno;
        int err = i == 0 ? store_clean_incoming(fd) : 0;
        if (err == 0 && fsync(fd) != 0)
            err = errno;
        close(fd);
        if (err != 0)
            return err;
    }
    return 0;
}

int queue_store_prepare(const char *spool, int *lock_fd)
{
    int err = store_mkdir_p(spool);
    if (err != 0) {
        errno = err;
        return -1;
    }
    int spool_fd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (spool_fd < 0)
        return -1;
    int lfd = openat(spool_fd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0) {
        err = errno;
    } else if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        err = errno == EWOULDBLOCK ? EBUSY : errno;
    } else {
        /* Only the lock holder may clean incoming/: another instance may be writing there. */
        err = store_prepare_dirs(spool_fd);
        if (err == 0 && fsync(spool_fd) != 0)
            err = errno;
    }
    close(spool_fd);
    if (err != 0) {
        if (lfd >= 0)
            close(lfd);
        errno = err;
        return -1;
    }
    *lock_fd = lfd;
    return 0;
}

/* ---- completions (loop thread) ---- */

static void store_post_done(struct queue_store *qs, struct queue_msg *list)
{
    size_t n = 0;
    for (struct queue_msg *m = list; m != NULL; m = m->next)
        n++;
    if (n == 0)
        return;
    pthread_mutex_lock(&qs->mu);
    for (struct queue_msg *m = list; m != NULL; m = m->next) {
        if (m->error == 0)
            qs->stats.committed++;
        else
            qs->stats.failed++;
    }
    *qs->done_tail = list;
    while (*qs->done_tail != NULL)
        qs->done_tail = &(*qs->done_tail)->next;
    pthread_mutex_unlock(&qs->mu);
    uint64_t one = 1;
    /* The counter cannot overflow in practice; a failed write would only delay callbacks
     * until the next round's wake-up or queue_store_close. */
    while (write(qs->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static void store_run_done(struct queue_store *qs)
{
    pthread_mutex_lock(&qs->mu);
    struct queue_msg *list = qs->done;
    qs->done = NULL;
    qs->done_tail = &qs->done;
    pthread_mutex_unlock(&qs->mu);
    while (list != NULL) {
        struct queue_msg *m = list;
        list = m->next;
        if (m->cb != NULL)
            m->cb(m->error, m->id, m->cookie, m->arg);
        free(m);
    }
}

static void store_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t v;
    while (read(fd, &v, sizeof v) < 0 && errno == EINTR)
        ;
    store_run_done(arg);
}

/* ---- the sync thread ---- */

/* One round. syncfs(2) goes through the fd of the oldest message of the round: since
 * Linux 5.8 syncfs reports a writeback error of the filesystem that happened after that
 * fd was opened (errseq), so an error that hit any file of the round, even when background
 * writeback met it before this call, fails the round instead of being lost. */
static void store_sync_round(struct queue_store *qs, struct queue_msg *list)
{
    struct queue_msg *oldest = list;
    for (struct queue_msg *m = list; m != NULL; m = m->next)
        if (m->seq < oldest->seq)
            oldest = m;
    int err = syncfs(oldest->fd) == 0 ? 0 : errno;
    if (qs->fault == STORE_FAULT_SYNC_EIO)
        err = EIO;
    if (err == 0 && qs->fault == STORE_FAULT_CRASH_BEFORE_RENAME)
        _exit(STORE_CRASH_EXIT);
    for (struct queue_msg *m = list; err == 0 && m != NULL; m = m->next) {
        if (renameat(qs->incoming_fd, m->id, qs->queue_fd, m->id) != 0)
            err = errno;
        else
            m->in_queue = true;
    }
    if (err == 0 && fsync(qs->queue_fd) != 0)
        err = errno;
    if (err == 0 && qs->fault == STORE_FAULT_CRASH_AFTER_RENAME)
        _exit(STORE_CRASH_EXIT);
    bool unlinked_queued = false;
    for (struct queue_msg *m = list; m != NULL; m = m->next) {
        close(m->fd);
        m->fd = -1;
        if (err == 0)
            continue;
        m->error = err;
        unlinkat(m->in_queue ? qs->queue_fd : qs->incoming_fd, m->id, 0);
        unlinked_queued |= m->in_queue;
    }
    /* Best effort: should this fsync fail too, a crash may bring back a file the client
     * was told 4xx for; it is then delivered and a retry gives one duplicate, never a loss
     * (HOSTILE-INPUTS invariant (c)). */
    if (unlinked_queued)
        (void)fsync(qs->queue_fd);
}

static void *store_sync_main(void *arg)
{
    struct queue_store *qs = arg;
    pthread_mutex_lock(&qs->mu);
    for (;;) {
        while (qs->pending == NULL && !qs->stopping)
            pthread_cond_wait(&qs->cv, &qs->mu);
        if (qs->pending == NULL)
            break;
        struct queue_msg *list = qs->pending;
        qs->pending = NULL;
        qs->pending_tail = &qs->pending;
        uint64_t n = 0;
        for (struct queue_msg *m = list; m != NULL; m = m->next)
            n++;
        qs->stats.rounds++;
        if (n > qs->stats.largest_round)
            qs->stats.largest_round = n;
        pthread_mutex_unlock(&qs->mu);
        store_sync_round(qs, list);
        store_post_done(qs, list);
        pthread_mutex_lock(&qs->mu);
    }
    pthread_mutex_unlock(&qs->mu);
    return NULL;
}

/* ---- the store ---- */

static int store_parse_fault(enum store_fault *fault)
{
    static const struct {
        const char *name;
        enum store_fault fault;
    } faults[] = {
        {"sync-eio", STORE_FAULT_SYNC_EIO},
        {"write-enospc", STORE_FAULT_WRITE_ENOSPC},
        {"crash-before-rename", STORE_FAULT_CRASH_BEFORE_RENAME},
        {"crash-after-rename", STORE_FAULT_CRASH_AFTER_RENAME},
    };
    const char *v = getenv("SLUICE_FAULT");
    *fault = STORE_FAULT_NONE;
    if (v == NULL || v[0] == '\0')
        return 0;
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        if (strcmp(v, faults[i].name) == 0) {
            *fault = faults[i].fault;
            return 0;
        }
    }
    return EINVAL;
}

static int store_open_fds(struct queue_store *qs, const char *spool, struct event_base *base)
{
    int spool_fd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (spool_fd < 0)
        return errno;
    int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    qs->incoming_fd = openat(spool_fd, "incoming", flags);
    int err = qs->incoming_fd < 0 ? errno : 0;
    if (err == 0) {
        qs->queue_fd = openat(spool_fd, "queue", flags);
        err = qs->queue_fd < 0 ? errno : 0;
    }
    close(spool_fd);
    if (err != 0)
        return err;
    qs->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (qs->wake_fd < 0)
        return errno;
    qs->wake_ev = event_new(base, qs->wake_fd, EV_READ | EV_PERSIST, store_wake_cb, qs);
    if (qs->wake_ev == NULL || event_add(qs->wake_ev, NULL) != 0)
        return ENOMEM;
    return 0;
}

static void store_free(struct queue_store *qs)
{
    if (qs->wake_ev != NULL)
        event_free(qs->wake_ev);
    if (qs->wake_fd >= 0)
        close(qs->wake_fd);
    if (qs->queue_fd >= 0)
        close(qs->queue_fd);
    if (qs->incoming_fd >= 0)
        close(qs->incoming_fd);
    pthread_cond_destroy(&qs->cv);
    pthread_mutex_destroy(&qs->mu);
    free(qs);
}

struct queue_store *queue_store_open(const char *spool, struct event_base *base)
{
    struct queue_store *qs = calloc(1, sizeof *qs);
    if (qs == NULL)
        return NULL;
    qs->incoming_fd = qs->queue_fd = qs->wake_fd = -1;
    qs->pending_tail = &qs->pending;
    qs->done_tail = &qs->done;
    pthread_mutex_init(&qs->mu, NULL);
    pthread_cond_init(&qs->cv, NULL);
    int err = store_parse_fault(&qs->fault);
    if (err == 0)
        err = store_open_fds(qs, spool, base);
    if (err == 0) {
        /* Signals belong to the event loop: the sync thread blocks them all. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        err = pthread_create(&qs->thread, NULL, store_sync_main, qs);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (err != 0) {
        store_free(qs);
        errno = err;
        return NULL;
    }
    return qs;
}

void queue_store_close(struct queue_store *qs)
{
    if (qs == NULL)
        return;
    pthread_mutex_lock(&qs->mu);
    qs->stopping = true;
    pthread_cond_signal(&qs->cv);
    pthread_mutex_unlock(&qs->mu);
    pthread_join(qs->thread, NULL);
    store_run_done(qs);
    store_free(qs);
}

void queue_store_get_stats(struct queue_store *qs, struct queue_store_stats *out)
{
    pthread_mutex_lock(&qs->mu);
    *out = qs->stats;
    pthread_mutex_unlock(&qs->mu);
}

/* ---- writing a message (loop thread) ---- */

static int msg_flush(struct queue_msg *m)
{
    if (m->error == 0 && m->buflen > 0)
        m->error = store_write_all(m->fd, m->buf, m->buflen);
    m->buflen = 0;
    return m->error;
}

static int msg_put(struct queue_msg *m, const void *data, size_t len)
{
    if (m->error != 0)
        return m->error;
    if (len > STORE_BUF - m->buflen && msg_flush(m) != 0)
        return m->error;
    if (len >= STORE_BUF) {
        m->error = store_write_all(m->fd, data, len);
        return m->error;
    }
    memcpy(m->buf + m->buflen, data, len);
    m->buflen += len;
    return 0;
}

static void msg_free(struct queue_msg *m)
{
    if (m->fd >= 0)
        close(m->fd);
    free(m->buf);
    free(m);
}

static int msg_write_head(struct queue_msg *m, const struct queue_envelope *env)
{
    size_t elen = 0;
    enum queue_envelope_status st = queue_envelope_encode(env, NULL, 0, &elen);
    if (st != QUEUE_ENVELOPE_SPACE)
        return EINVAL;
    unsigned char *enc = malloc(elen);
    if (enc == NULL)
        return ENOMEM;
    if (queue_envelope_encode(env, enc, elen, &elen) != QUEUE_ENVELOPE_OK) {
        free(enc);
        return EINVAL;
    }
    unsigned char head[STORE_HEAD + STORE_ENV_LEN] = STORE_MAGIC;
    store_be32(head + 8, STORE_VERSION);
    store_be32(head + 12, 0);
    store_be32(head + STORE_HEAD, (uint32_t)elen);
    m->crc_head = crc32_z(crc32_z(0, head, sizeof head), enc, elen);
    unsigned char zero[STORE_BODY_LEN] = {0};
    msg_put(m, head, sizeof head);
    msg_put(m, enc, elen);
    msg_put(m, zero, sizeof zero);
    free(enc);
    m->body_len_off = (off_t)(sizeof head + elen);
    m->crc_body = crc32_z(0, NULL, 0);
    return m->error;
}

struct queue_msg *queue_msg_begin(struct queue_store *qs, const struct queue_envelope *env,
                                  char id[ID_LEN + 1])
{
    struct queue_msg *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->qs = qs;
    m->fd = -1;
    m->buf = malloc(STORE_BUF);
    if (m->buf == NULL) {
        msg_free(m);
        errno = ENOMEM;
        return NULL;
    }
    id_next(m->id);
    m->seq = qs->next_seq++;
    m->fd =
        openat(qs->incoming_fd, m->id, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (m->fd < 0) {
        int e = errno;
        msg_free(m);
        errno = e;
        return NULL;
    }
    int err = msg_write_head(m, env);
    if (err != 0) {
        queue_msg_abort(m);
        errno = err;
        return NULL;
    }
    memcpy(id, m->id, ID_LEN + 1);
    return m;
}

int queue_msg_write(struct queue_msg *m, const void *data, size_t len)
{
    if (m->error == 0 && m->qs->fault == STORE_FAULT_WRITE_ENOSPC)
        m->error = ENOSPC;
    if (m->error == 0 && len > 0 && msg_put(m, data, len) == 0) {
        m->crc_body = crc32_z(m->crc_body, data, len);
        m->body_len += len;
    }
    if (m->error != 0) {
        errno = m->error;
        return -1;
    }
    return 0;
}

void queue_msg_abort(struct queue_msg *m)
{
    if (m == NULL)
        return;
    unlinkat(m->qs->incoming_fd, m->id, 0);
    msg_free(m);
}

/* Finish the file on the caller's thread: the length, then the end record whose CRC-32
 * covers every byte before it (the length field included, hence crc32_combine). */
static int msg_finish(struct queue_msg *m)
{
    if (msg_flush(m) != 0)
        return m->error;
    unsigned char len[STORE_BODY_LEN];
    store_be64(len, m->body_len);
    m->error = store_pwrite_all(m->fd, len, sizeof len, m->body_len_off);
    if (m->error != 0)
        return m->error;
    uLong crc =
        crc32_combine(crc32_z(m->crc_head, len, sizeof len), m->crc_body, (z_off_t)m->body_len);
    unsigned char end[STORE_END] = STORE_END_MAGIC;
    store_be32(end + 4, (uint32_t)crc);
    msg_put(m, end, sizeof end);
    return msg_flush(m);
}

void queue_msg_commit(struct queue_msg *m, queue_commit_cb cb, uint64_t cookie, void *arg)
{
    struct queue_store *qs = m->qs;
    m->cb = cb;
    m->cookie = cookie;
    m->arg = arg;
    m->next = NULL;
    msg_finish(m);
    free(m->buf);
    m->buf = NULL;
    if (m->error != 0) {
        unlinkat(qs->incoming_fd, m->id, 0);
        close(m->fd);
        m->fd = -1;
        store_post_done(qs, m);
        return;
    }
    pthread_mutex_lock(&qs->mu);
    *qs->pending_tail = m;
    qs->pending_tail = &m->next;
    pthread_cond_signal(&qs->cv);
    pthread_mutex_unlock(&qs->mu);
}

/* ---- reading a committed file ---- */

static int file_check(int fd, struct queue_envelope *env, uint64_t *body_offset, uint64_t *body_len)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return errno;
    if (!S_ISREG(st.st_mode))
        return EINVAL;
    uint64_t size = (uint64_t)st.st_size;
    const uint64_t fixed = STORE_HEAD + STORE_ENV_LEN + STORE_BODY_LEN + STORE_END;
    unsigned char head[STORE_HEAD + STORE_ENV_LEN];
    if (size < fixed)
        return EINVAL;
    int err = store_pread_all(fd, head, sizeof head, 0);
    if (err != 0)
        return err;
    uint32_t elen = store_get32(head + STORE_HEAD);
    if (memcmp(head, STORE_MAGIC, 8) != 0 || store_get32(head + 8) != STORE_VERSION ||
        store_get32(head + 12) != 0 || elen > QUEUE_ENVELOPE_MAX || elen > size - fixed)
        return EINVAL;
    uint64_t boff = sizeof head + (uint64_t)elen + STORE_BODY_LEN;
    /* The envelope record and the body length are read together: one allocation. */
    unsigned char *rec = malloc((size_t)elen + STORE_BODY_LEN);
    if (rec == NULL)
        return ENOMEM;
    unsigned char end[STORE_END];
    err = store_pread_all(fd, rec, (size_t)elen + STORE_BODY_LEN, sizeof head);
    if (err == 0)
        err = store_pread_all(fd, end, sizeof end, (off_t)(size - STORE_END));
    uint64_t blen = err == 0 ? store_get64(rec + elen) : 0;
    if (err == 0 && (blen != size - fixed - elen || memcmp(end, STORE_END_MAGIC, 4) != 0))
        err = EINVAL;
    uLong crc = 0;
    if (err == 0)
        crc = crc32_z(crc32_z(0, head, sizeof head), rec, (size_t)elen + STORE_BODY_LEN);
    for (uint64_t off = boff; err == 0 && off < boff + blen;) {
        unsigned char chunk[8192];
        size_t n = boff + blen - off < sizeof chunk ? (size_t)(boff + blen - off) : sizeof chunk;
        err = store_pread_all(fd, chunk, n, (off_t)off);
        crc = crc32_z(crc, chunk, n);
        off += n;
    }
    if (err == 0 && (uint32_t)crc != store_get32(end + 4))
        err = EINVAL;
    if (err == 0) {
        enum queue_envelope_status s = queue_envelope_decode(rec, elen, env);
        err = s == QUEUE_ENVELOPE_OK ? 0 : s == QUEUE_ENVELOPE_NOMEM ? ENOMEM : EINVAL;
    }
    free(rec);
    if (err == 0) {
        *body_offset = boff;
        *body_len = blen;
    }
    return err;
}

int queue_file_read(const char *path, struct queue_envelope *env, uint64_t *body_offset,
                    uint64_t *body_len)
{
    memset(env, 0, sizeof *env);
    /* O_NONBLOCK: a FIFO planted in the queue must not hang the reader; fstat rejects it. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            errno = EINVAL;
        return -1;
    }
    int err = file_check(fd, env, body_offset, body_len);
    close(fd);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}
