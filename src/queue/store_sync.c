/* store_sync: the queue store's sync thread (DESIGN §4, doc/QUEUE.md, "Commit"): log
 * segments, commit rounds and checkpoints. Started by queue_store_open, one per store.
 * Invariants:
 * - a message is acknowledged (error 0 posted to the loop) only once its whole file is in
 *   the store's log segment wal/<pid>-<seq> as a record and that segment has been
 *   fdatasynced; any failure on the way unlinks the file and reports the errno: a failed
 *   sync is never retried and then claimed (HOSTILE-INPUTS I8);
 * - everything queued when a round starts is appended to the log and covered by one
 *   fdatasync (group commit);
 * - a file appears in queue/ only through a checkpoint: syncfs(2), rename from
 *   incoming/<pid>/, fsync of queue/; only then are the log segments unlinked. So every
 *   file in queue/ is complete and durable, and an acknowledged message is always in
 *   queue/ or in a segment;
 * - a failed checkpoint keeps every acknowledged message in the log and is retried by
 *   rewriting the files from their records, never by syncing again;
 * - the thread holds the mutex only to swap list heads and update the counters. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/store_priv.h"
#include "queue/wal.h"

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

/* The segment just made or reused takes the next rounds from its start; its name is not
 * durable yet (cur_synced). */
static void store_seg_current(struct queue_store *qs)
{
    qs->cur_live = true;
    qs->cur_synced = false;
    qs->wal_off = 0;
    qs->rlen = 0;
}

/* Written zeros, not fallocate(2): blocks that are allocated and written let a round's
 * fdatasync overwrite them without a journal commit (the size and the extents stay as they
 * are), which is most of its cost; unwritten extents would need one per write. A zero
 * header ends the segment for recovery. Best effort: without it the log only grows. */
static off_t store_seg_prealloc(int fd)
{
    static const unsigned char zeros[64 * 1024];
    for (off_t off = 0; off < STORE_SEGMENT_PREALLOC; off += (off_t)sizeof zeros) {
        if (fileio_pwrite_all(fd, zeros, sizeof zeros, off) != 0) {
            if (ftruncate(fd, 0) != 0) {
                /* The zeros read as the end of the segment anyway. */
            }
            return 0;
        }
    }
    return STORE_SEGMENT_PREALLOC;
}

/* Reuse the file of segment i, whose records are all in queue/ now, as the new current
 * segment under the next name (rename, never replacing: a name left by a crashed worker
 * whose pid this process got again is skipped). Its blocks are written already, so the
 * rounds overwrite them without a journal commit; the records of its earlier use carry
 * the old sequence number and end the segment for recovery (wal.c). */
static int store_seg_recycle(struct queue_store *qs, size_t i)
{
    struct store_seg *sg = &qs->segs[i];
    char from[STORE_SEG_NAME], to[STORE_SEG_NAME];
    struct stat st;
    store_seg_name(qs, sg->seq, from);
    for (int tries = 0; tries < STORE_SEG_TRIES; tries++) {
        uint64_t seq = qs->next_wal_seq++;
        store_seg_name(qs, seq, to);
        if (renameat2(qs->wal_fd, from, qs->wal_fd, to, RENAME_NOREPLACE) != 0) {
            if (errno == EEXIST)
                continue;
            return errno;
        }
        /* A burst may have grown it far: keep what the next rounds are likely to use. */
        sg->size = fstat(sg->fd, &st) == 0 ? st.st_size : 0;
        if (sg->size > STORE_SEGMENT_PREALLOC && ftruncate(sg->fd, STORE_SEGMENT_PREALLOC) == 0)
            sg->size = STORE_SEGMENT_PREALLOC;
        sg->seq = seq;
        sg->nacked = 0;
        store_seg_current(qs);
        return 0;
    }
    return EEXIST;
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
        off_t size = store_seg_prealloc(fd);
        qs->segs[qs->nsegs++] = (struct store_seg){.seq = seq, .fd = fd, .size = size};
        store_seg_current(qs);
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
    } else {
        sg->size = good;
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
    struct store_seg *sg = &qs->segs[qs->nsegs - 1];
    int err = fileio_pwrite_all(sg->fd, qs->rbuf, qs->rlen, qs->wal_off);
    if (err == 0 && qs->wal_off + (off_t)qs->rlen > sg->size)
        sg->size = qs->wal_off + (off_t)qs->rlen;
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
    queue_wal_head_encode(qs->rbuf + qs->rlen, qs->segs[qs->nsegs - 1].seq, m->id, m->file_len,
                          m->file_crc);
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
    if (err == 0 && cut)
        qs->segs[qs->nsegs - 1].size = qs->wal_off;
    /* A zero header after the round's records, inside the file so that it costs no journal
     * commit: a reader of a reused segment then never parses what lies behind them, which
     * may be the middle of an old record's payload, i.e. bytes a client chose. */
    static const unsigned char end[QUEUE_WAL_HEAD];
    if (err == 0 && any && qs->wal_off + QUEUE_WAL_HEAD <= qs->segs[qs->nsegs - 1].size)
        err = fileio_pwrite_all(seg_fd, end, sizeof end, qs->wal_off);
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
    int err = fileio_pread_all(seg_fd, head, sizeof head, a->off);
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

void store_now(struct timespec *t)
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
 * (the newest renamed to be the next one, the others unlinked; one fsync of wal/ covers
 * both). On failure
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
    size_t old = qs->nsegs, keep = old;
    qs->cur_live = false;
    /* The newest retired segment becomes the next one; should that fail, a new file; and
     * should that fail too, the next round tries again. */
    if (!closing && old > 0 && store_seg_recycle(qs, old - 1) == 0)
        keep = old - 1;
    else if (!closing)
        (void)store_seg_create(qs);
    for (size_t i = 0; i < old; i++)
        if (i != keep)
            store_seg_unlink(qs, &qs->segs[i]);
    if (keep < old) {
        qs->segs[0] = qs->segs[keep];
        qs->nsegs = 1;
    } else {
        if (qs->nsegs > old)
            qs->segs[0] = qs->segs[old];
        qs->nsegs -= old;
    }
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

void *store_sync_main(void *arg)
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
