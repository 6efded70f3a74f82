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

static int store_open_subdir(int spool_fd, const char *name, int *fd)
{
    if (mkdirat(spool_fd, name, 0700) != 0 && errno != EEXIST)
        return errno;
    *fd = openat(spool_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return *fd < 0 ? errno : 0;
}

/* The log is replayed before incoming/ is cleaned: the temp files of the replay live there,
 * and the files it leaves (messages acknowledged but not checkpointed) are covered by their
 * records, so deleting them afterwards loses nothing. */
static int store_prepare_dirs(int spool_fd, struct queue_store_recovery *rec)
{
    enum { INCOMING, QUEUE, CORRUPT, WAL, NDIRS };
    static const char *const names[NDIRS] = {"incoming", "queue", "corrupt", "wal"};
    int fds[NDIRS] = {-1, -1, -1, -1};
    int err = 0;
    for (size_t i = 0; err == 0 && i < NDIRS; i++)
        err = store_open_subdir(spool_fd, names[i], &fds[i]);
    if (err == 0)
        err = queue_wal_recover(fds[WAL], fds[INCOMING], fds[QUEUE], rec);
    if (err == 0)
        err = store_clean_incoming(fds[INCOMING]);
    for (size_t i = 0; err == 0 && i < NDIRS; i++)
        if (fsync(fds[i]) != 0)
            err = errno;
    for (size_t i = 0; i < NDIRS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return err;
}

int queue_store_prepare_recover(const char *spool, int *lock_fd, struct queue_store_recovery *out)
{
    struct queue_store_recovery rec = {0};
    int err = store_mkdir_p(spool);
    int spool_fd = err == 0 ? open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (err == 0 && spool_fd < 0)
        err = errno;
    int lfd = -1;
    if (err == 0) {
        lfd = openat(spool_fd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (lfd < 0)
            err = errno;
        else if (flock(lfd, LOCK_EX | LOCK_NB) != 0)
            err = errno == EWOULDBLOCK ? EBUSY : errno;
    }
    /* Only the lock holder may recover and clean: another instance may be writing. */
    if (err == 0)
        err = store_prepare_dirs(spool_fd, &rec);
    if (err == 0 && fsync(spool_fd) != 0)
        err = errno;
    if (spool_fd >= 0)
        close(spool_fd);
    if (out != NULL)
        *out = rec;
    if (err != 0) {
        if (lfd >= 0)
            close(lfd);
        errno = err;
        return -1;
    }
    *lock_fd = lfd;
    return 0;
}

int queue_store_prepare(const char *spool, int *lock_fd)
{
    return queue_store_prepare_recover(spool, lock_fd, NULL);
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

/* ---- log segments (sync thread) ---- */

static void store_seg_name(const struct queue_store *qs, uint64_t seq, char name[STORE_SEG_NAME])
{
    snprintf(name, STORE_SEG_NAME, "%ld-%llu", (long)qs->pid, (unsigned long long)seq);
}

static void store_seg_unlink(struct queue_store *qs, const struct store_seg *sg)
{
    char name[STORE_SEG_NAME];
    store_seg_name(qs, sg->seq, name);
    close(sg->fd);
    unlinkat(qs->wal_fd, name, 0);
}

/* A new current segment. O_EXCL: a name left by a crashed worker whose pid this process
 * got again holds acknowledged records for the next recovery, so it is skipped, never
 * reused. Its directory entry is not durable yet (cur_synced). */
static int store_seg_create(struct queue_store *qs)
{
    if (qs->nsegs == qs->segs_cap) {
        size_t cap = qs->segs_cap ? qs->segs_cap * 2 : 4;
        struct store_seg *p = realloc(qs->segs, cap * sizeof *p);
        if (p == NULL)
            return ENOMEM;
        qs->segs = p;
        qs->segs_cap = cap;
    }
    for (int tries = 0; tries < STORE_SEG_TRIES; tries++) {
        uint64_t seq = qs->next_wal_seq++;
        char name[STORE_SEG_NAME];
        store_seg_name(qs, seq, name);
        int fd = openat(qs->wal_fd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return errno;
        qs->segs[qs->nsegs++] = (struct store_seg){.seq = seq, .fd = fd};
        qs->cur_live = true;
        qs->cur_synced = false;
        qs->wal_off = 0;
        qs->rlen = 0;
        return 0;
    }
    return EEXIST;
}

/* After a failed round: no more appends to the current segment. Without acknowledged
 * records it goes at once; otherwise it is cut back to its last good record when
 * possible and stays until the next checkpoint. Neither is synced: a failed round's
 * records that survive a crash are replayed (doc/QUEUE.md, state F). */
static void store_seg_abandon(struct queue_store *qs, off_t good)
{
    struct store_seg *sg = &qs->segs[qs->nsegs - 1];
    qs->cur_live = false;
    qs->rlen = 0;
    if (sg->nacked == 0) {
        store_seg_unlink(qs, sg);
        qs->nsegs--;
    } else if (ftruncate(sg->fd, good) != 0) {
        /* Left uncut: its acknowledged records come first, and nothing is appended after
         * the failed round's bytes, so recovery still finds every one of them. */
    }
}

static int store_wal_ready(struct queue_store *qs)
{
    int err = qs->cur_live ? 0 : store_seg_create(qs);
    if (err == 0 && !qs->cur_synced) {
        if (fsync(qs->wal_fd) != 0) {
            err = errno;
            store_seg_abandon(qs, 0);
        } else {
            qs->cur_synced = true;
        }
    }
    return err;
}

static int store_wal_flush(struct queue_store *qs)
{
    const struct store_seg *sg = &qs->segs[qs->nsegs - 1];
    int err = store_pwrite_all(sg->fd, qs->rbuf, qs->rlen, qs->wal_off);
    if (err == 0) {
        qs->wal_off += (off_t)qs->rlen;
        qs->rlen = 0;
    }
    return err;
}

/* Append m's record. The file is read back through the round buffer and its CRC-32
 * compared with the one computed while it was written: the log never holds bytes other
 * than the client's, even if a page of incoming/<id> was lost. A problem with m alone goes
 * to m->error and its bytes are taken back (a bad record would end the segment for
 * recovery, hiding the good ones after it; *cut tells the caller the file must be cut
 * back). The return value is an error of the log itself, which fails the round. */
static int store_wal_append(struct queue_store *qs, struct queue_msg *m, bool *cut)
{
    m->wal_off = qs->wal_off + (off_t)qs->rlen;
    int err = 0;
    if (STORE_ROUND_BUF - qs->rlen < QUEUE_WAL_HEAD)
        err = store_wal_flush(qs);
    if (err != 0)
        return err;
    queue_wal_head_encode(qs->rbuf + qs->rlen, m->id, m->file_len, m->file_crc);
    qs->rlen += QUEUE_WAL_HEAD;
    uLong crc = crc32_z(0, NULL, 0);
    for (uint64_t off = 0; off < m->file_len;) {
        if (qs->rlen == STORE_ROUND_BUF && (err = store_wal_flush(qs)) != 0)
            return err;
        size_t room = STORE_ROUND_BUF - qs->rlen;
        size_t n = m->file_len - off < room ? (size_t)(m->file_len - off) : room;
        ssize_t r = pread(m->fd, qs->rbuf + qs->rlen, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            m->error = r < 0 ? errno : EIO;
            break;
        }
        crc = crc32_z(crc, qs->rbuf + qs->rlen, (size_t)r);
        qs->rlen += (size_t)r;
        off += (uint64_t)r;
    }
    if (m->error == 0 && (uint32_t)crc != m->file_crc)
        m->error = EIO;
    if (m->error != 0) {
        if (m->wal_off >= qs->wal_off) {
            qs->rlen = (size_t)(m->wal_off - qs->wal_off);
        } else {
            qs->wal_off = m->wal_off;
            qs->rlen = 0;
            *cut = true;
        }
    }
    return 0;
}

static int store_acks_reserve(struct queue_store *qs, size_t n)
{
    if (qs->acks_cap - qs->nacks >= n)
        return 0;
    size_t cap = qs->acks_cap ? qs->acks_cap : 64;
    while (cap - qs->nacks < n)
        cap *= 2;
    struct store_ack *p = realloc(qs->acks, cap * sizeof *p);
    if (p == NULL)
        return ENOMEM;
    qs->acks = p;
    qs->acks_cap = cap;
    return 0;
}

/* Keep only the oldest file open: the checkpoint's syncfs goes through it. */
static void store_ack_add(struct queue_store *qs, struct queue_msg *m)
{
    struct store_ack *a = &qs->acks[qs->nacks++];
    memcpy(a->id, m->id, ID_LEN + 1);
    a->seg = qs->nsegs - 1;
    a->off = m->wal_off;
    qs->segs[a->seg].nacked++;
    if (qs->ck_fd < 0 || m->seq < qs->ck_seq) {
        if (qs->ck_fd >= 0)
            close(qs->ck_fd);
        qs->ck_fd = m->fd;
        qs->ck_seq = m->seq;
    } else {
        close(m->fd);
    }
    m->fd = -1;
}

/* ---- the sync thread ---- */

/* One round: append every message's record to the current segment, then one fdatasync.
 * The callbacks learn the result; the files stay in incoming/ for the checkpoint. */
static void store_sync_round(struct queue_store *qs, struct queue_msg *list)
{
    size_t n = 0;
    for (struct queue_msg *m = list; m != NULL; m = m->next)
        n++;
    int err = store_wal_ready(qs);
    if (err == 0)
        err = store_acks_reserve(qs, n);
    off_t start = qs->wal_off;
    bool cut = false, any = false;
    for (struct queue_msg *m = list; err == 0 && m != NULL; m = m->next) {
        err = store_wal_append(qs, m, &cut);
        any |= m->error == 0;
    }
    int seg_fd = qs->cur_live ? qs->segs[qs->nsegs - 1].fd : -1;
    if (err == 0 && qs->rlen > 0)
        err = store_wal_flush(qs);
    if (err == 0 && cut && ftruncate(seg_fd, qs->wal_off) != 0)
        err = errno;
    if (err == 0 && any) {
        if (qs->fault == STORE_FAULT_CRASH_BEFORE_RENAME)
            _exit(STORE_CRASH_EXIT);
        if (fdatasync(seg_fd) != 0)
            err = errno;
        if (qs->fault == STORE_FAULT_SYNC_EIO)
            err = EIO;
    }
    if (err == 0 && any && qs->fault == STORE_FAULT_CRASH_AFTER_RENAME)
        _exit(STORE_CRASH_EXIT);
    if (err != 0 && qs->cur_live)
        store_seg_abandon(qs, start);
    for (struct queue_msg *m = list; m != NULL; m = m->next) {
        if (err != 0 && m->error == 0)
            m->error = err;
        if (m->error == 0) {
            store_ack_add(qs, m);
            continue;
        }
        unlinkat(qs->incoming_fd, m->id, 0);
        close(m->fd);
        m->fd = -1;
    }
}

/* Rewrite one acknowledged message from its record, after a failed checkpoint. */
static int store_ack_rewrite(struct queue_store *qs, const struct store_ack *a)
{
    int seg_fd = qs->segs[a->seg].fd;
    unsigned char head[QUEUE_WAL_HEAD];
    int err = store_pread_all(seg_fd, head, sizeof head, a->off);
    struct queue_wal_head h;
    if (err == 0 && (!queue_wal_head_decode(head, &h) || strcmp(h.id, a->id) != 0))
        err = EIO;
    if (err == 0)
        err = queue_wal_materialize(seg_fd, a->off, &h, qs->incoming_fd, qs->queue_fd);
    /* The record was fdatasynced and checked when it was written: a record that no
     * longer reads back is an I/O error, not the end of a segment. */
    if (err == EINVAL)
        err = EIO;
    if (err == 0)
        unlinkat(qs->incoming_fd, a->id, 0);
    return err;
}

static int store_ckpt_apply(struct queue_store *qs)
{
    if (qs->fault == STORE_FAULT_CHECKPOINT_EIO ||
        (qs->fault == STORE_FAULT_CHECKPOINT_EIO_ONCE && qs->ckpt_attempts_failed == 0))
        return EIO;
    int err = 0;
    if (!qs->ckpt_failed) {
        if (syncfs(qs->ck_fd) != 0)
            err = errno;
        if (err == 0 && qs->fault == STORE_FAULT_CRASH_IN_CHECKPOINT)
            _exit(STORE_CRASH_EXIT);
        for (size_t i = 0; err == 0 && i < qs->nacks; i++)
            if (renameat(qs->incoming_fd, qs->acks[i].id, qs->queue_fd, qs->acks[i].id) != 0)
                err = errno;
    } else {
        /* After a failed syncfs the kernel may have dropped the pages it could not write,
         * and a second syncfs would report success anyway (I8): the files in incoming/ are
         * written again from the log, each one fsynced on its own. */
        for (size_t i = 0; err == 0 && i < qs->nacks; i++)
            err = store_ack_rewrite(qs, &qs->acks[i]);
    }
    if (err == 0 && fsync(qs->queue_fd) != 0)
        err = errno;
    return err;
}

static void store_now(struct timespec *t)
{
    clock_gettime(CLOCK_MONOTONIC, t);
}

static void store_time_add(struct timespec *t, long ns)
{
    t->tv_nsec += ns;
    while (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static bool store_time_reached(const struct timespec *due)
{
    struct timespec now;
    store_now(&now);
    return now.tv_sec > due->tv_sec || (now.tv_sec == due->tv_sec && now.tv_nsec >= due->tv_nsec);
}

/* Move every acknowledged message into queue/, then retire the segments that held them
 * (unlink, one fsync of wal/, which also covers the next segment's creation). On failure
 * nothing is retired and the next attempt comes after STORE_CKPT_RETRY_NS. */
static void store_checkpoint(struct queue_store *qs, bool closing)
{
    if (qs->nacks > 0) {
        int err = store_ckpt_apply(qs);
        pthread_mutex_lock(&qs->mu);
        if (err != 0)
            qs->stats.checkpoint_failures++;
        else
            qs->stats.checkpoints++;
        pthread_mutex_unlock(&qs->mu);
        if (err != 0) {
            qs->ckpt_failed = true;
            qs->ckpt_attempts_failed++;
            store_now(&qs->retry_at);
            store_time_add(&qs->retry_at, STORE_CKPT_RETRY_NS);
            return;
        }
    }
    qs->nacks = 0;
    qs->ckpt_failed = false;
    if (qs->ck_fd >= 0)
        close(qs->ck_fd);
    qs->ck_fd = -1;
    store_now(&qs->last_ckpt);
    size_t old = qs->nsegs;
    qs->cur_live = false;
    /* Should the new segment fail, the next round tries again. */
    if (!closing)
        (void)store_seg_create(qs);
    for (size_t i = 0; i < old; i++)
        store_seg_unlink(qs, &qs->segs[i]);
    if (qs->nsegs > old)
        qs->segs[0] = qs->segs[old];
    qs->nsegs -= old;
    /* Should this fsync fail, the old segments may come back after a power loss: their
     * records are then found in queue/ and skipped. The new segment gets the fsync again
     * before its first record (cur_synced). */
    if (fsync(qs->wal_fd) == 0 && qs->cur_live)
        qs->cur_synced = true;
}

/* When the next checkpoint is due; false when no message waits for one. */
static bool store_ckpt_deadline(const struct queue_store *qs, struct timespec *due)
{
    if (qs->nacks == 0)
        return false;
    if (qs->ckpt_failed) {
        *due = qs->retry_at;
    } else if (qs->nacks > STORE_CKPT_MAX_ACKED ||
               (qs->cur_live && qs->wal_off > STORE_SEGMENT_MAX)) {
        *due = (struct timespec){0, 0};
    } else {
        *due = qs->last_ckpt;
        store_time_add(due, STORE_CKPT_INTERVAL_NS);
    }
    return true;
}

/* At close: one attempt, and when it fails for the first time a second one that rewrites
 * from the log; if that fails too, the log stays for the recovery at the next start. */
static void store_close_checkpoint(struct queue_store *qs)
{
    bool failed_before = qs->ckpt_failed;
    store_checkpoint(qs, true);
    if (qs->nacks > 0 && !failed_before)
        store_checkpoint(qs, true);
}

static void *store_sync_main(void *arg)
{
    struct queue_store *qs = arg;
    pthread_mutex_lock(&qs->mu);
    for (;;) {
        struct queue_msg *list = qs->pending;
        bool closing = qs->stopping && list == NULL;
        qs->pending = NULL;
        qs->pending_tail = &qs->pending;
        uint64_t n = 0;
        for (struct queue_msg *m = list; m != NULL; m = m->next)
            n++;
        if (n > 0) {
            qs->stats.rounds++;
            if (n > qs->stats.largest_round)
                qs->stats.largest_round = n;
        }
        pthread_mutex_unlock(&qs->mu);
        if (list != NULL) {
            store_sync_round(qs, list);
            store_post_done(qs, list);
        }
        if (closing) {
            store_close_checkpoint(qs);
            return NULL;
        }
        struct timespec due;
        bool waiting = store_ckpt_deadline(qs, &due);
        if (waiting && store_time_reached(&due)) {
            store_checkpoint(qs, false);
            waiting = store_ckpt_deadline(qs, &due);
        }
        pthread_mutex_lock(&qs->mu);
        if (qs->pending == NULL && !qs->stopping) {
            if (waiting)
                pthread_cond_timedwait(&qs->cv, &qs->mu, &due);
            else
                pthread_cond_wait(&qs->cv, &qs->mu);
        }
    }
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
        {"crash-in-checkpoint", STORE_FAULT_CRASH_IN_CHECKPOINT},
        {"checkpoint-eio", STORE_FAULT_CHECKPOINT_EIO},
        {"checkpoint-eio-once", STORE_FAULT_CHECKPOINT_EIO_ONCE},
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
    if (err == 0) {
        qs->wal_fd = openat(spool_fd, "wal", flags);
        err = qs->wal_fd < 0 ? errno : 0;
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
    if (qs->wal_fd >= 0)
        close(qs->wal_fd);
    /* Segments still here hold records of messages a failed checkpoint could not move:
     * they stay on disk for the recovery at the next start. */
    for (size_t i = 0; i < qs->nsegs; i++)
        close(qs->segs[i].fd);
    if (qs->ck_fd >= 0)
        close(qs->ck_fd);
    free(qs->segs);
    free(qs->acks);
    free(qs->rbuf);
    pthread_cond_destroy(&qs->cv);
    pthread_mutex_destroy(&qs->mu);
    free(qs);
}

struct queue_store *queue_store_open(const char *spool, struct event_base *base)
{
    struct queue_store *qs = calloc(1, sizeof *qs);
    if (qs == NULL)
        return NULL;
    qs->incoming_fd = qs->queue_fd = qs->wal_fd = qs->wake_fd = qs->ck_fd = -1;
    qs->pending_tail = &qs->pending;
    qs->done_tail = &qs->done;
    qs->pid = getpid();
    store_now(&qs->last_ckpt);
    pthread_mutex_init(&qs->mu, NULL);
    /* The checkpoint deadline is on the monotonic clock: a clock step (I12) must neither
     * stall checkpoints nor fire them all at once. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&qs->cv, &ca);
    pthread_condattr_destroy(&ca);
    qs->rbuf = malloc(STORE_ROUND_BUF);
    int err = qs->rbuf == NULL ? ENOMEM : store_parse_fault(&qs->fault);
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
        openat(qs->incoming_fd, m->id, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
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
    /* The log record needs the whole file's CRC: the end record joined in, no reading. */
    m->file_crc = (uint32_t)crc32_z(crc, end, sizeof end);
    m->file_len = (uint64_t)m->body_len_off + STORE_BODY_LEN + m->body_len + STORE_END;
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
