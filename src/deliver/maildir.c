/* maildir: the local delivery agent. The queue manager (later, from a delivery thread) calls
 * maildir_deliver once per local recipient; it copies the committed queue file's message
 * bytes into the recipient's Maildir with Return-Path (RFC 5321 §4.4) and Delivered-To
 * header lines in front (Delivered-To without brackets, as Postfix and qmail write it and
 * mail stores and loop detection read it).
 *
 * Invariants:
 * - The Maildir convention: the message is written to tmp/<unique>, made durable, linked
 *   into new/<unique> (link, not rename, so that a name clash fails instead of replacing a
 *   message), and new/ is made durable; the delivery counts only then. Any failure unlinks
 *   what was made, so new/ never holds a partial file and tmp/ keeps no leftover
 *   (HOSTILE-INPUTS K7: write, then fsync, then rename).
 * - A batch shares its syncs: every file of the batch is written, then one syncfs(2) per
 *   filesystem makes them durable, then all are linked and one more syncfs per filesystem
 *   makes the links durable. Two journal commits for the batch instead of two per message;
 *   a lone delivery fsyncs its file and new/ as before.
 * - Nothing under the root is reached by a path string: the root and cur/, new/, tmp/ are
 *   opened with O_DIRECTORY|O_NOFOLLOW and everything below goes through openat, linkat and
 *   unlinkat on those descriptors, so a symlink, FIFO or file in their place is refused and
 *   never followed (HOSTILE-INPUTS K1). Missing subdirectories are created only after the
 *   existing ones passed, so a refused mailbox is left exactly as it was.
 * - The message is streamed with pread through one 64 KiB buffer, never whole in memory.
 * - Codes follow RFC 3463: X.2.0 mailbox status, X.2.2 mailbox full, X.3.0 mail system,
 *   X.1.3 bad address syntax. */
#include "deliver/maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/store.h"
#include "util/fileio.h"

#define MAILDIR_DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
#define MAILDIR_CHUNK (64 * 1024)
#define MAILDIR_HOST_MAX (4 * 64 + 1)  /* a 64-byte hostname with every byte escaped */
#define MAILDIR_NAME_MAX 384
#define MAILDIR_NAME_TRIES 8
#define MAILDIR_BATCH_MAX MAILDIR_BATCH

/* Deliveries by this process, for unique names within one microsecond (the Q part). */
static atomic_ulong maildir_counter;

enum maildir_sub { MAILDIR_CUR, MAILDIR_NEW, MAILDIR_TMP, MAILDIR_NSUB };
static const char *const maildir_subdirs[MAILDIR_NSUB] = {"cur", "new", "tmp"};

static void maildir_result(struct deliver_result *out, enum deliver_status status,
                           const char *code, const char *what, int err)
{
    out->status = status;
    snprintf(out->enhanced, sizeof out->enhanced, "%s", code);
    if (err == 0) {
        snprintf(out->text, sizeof out->text, "%s", what);
        return;
    }
    char eb[128];
    const char *s = strerror_r(err, eb, sizeof eb);
    snprintf(out->text, sizeof out->text, "%s: %s", what, s);
}

/* An error of the mailbox itself: a full disk or quota is X.2.2, anything else X.2.0, and
 * all of them are worth another try (K7: quota and I/O errors defer). */
static void maildir_fail_errno(struct deliver_result *out, const char *what, int err)
{
    if (err == ENOSPC || err == EDQUOT)
        maildir_result(out, DELIVER_TEMPFAIL, "4.2.2", "mailbox full", err);
    else
        maildir_result(out, DELIVER_TEMPFAIL, "4.2.0", what, err);
}

/* An open with O_DIRECTORY|O_NOFOLLOW failed: a symlink (ELOOP) or something that is not
 * a directory (ENOTDIR: a file, a FIFO, a device) is there for good (K1). */
static void maildir_fail_open(struct deliver_result *out, const char *what, int err)
{
    if (err == ELOOP || err == ENOTDIR)
        maildir_result(out, DELIVER_PERMFAIL, "5.2.0", what, err);
    else
        maildir_fail_errno(out, what, err);
}

/* The host part of the unique name, with '/' and ':' escaped as \057 and \072 (they would
 * split the name as a path or clash with the ":2," info suffix). */
static void maildir_host(char out[MAILDIR_HOST_MAX])
{
    char h[65];
    if (gethostname(h, sizeof h) != 0 || h[0] == '\0')
        snprintf(h, sizeof h, "localhost");
    h[sizeof h - 1] = '\0';
    size_t o = 0;
    for (const char *p = h; *p != '\0'; p++) {
        const char *esc = *p == '/' ? "\\057" : *p == ':' ? "\\072" : NULL;
        if (esc != NULL) {
            memcpy(out + o, esc, 4);
            o += 4;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* <sec>.P<pid>Q<n>M<usec>.<host>: unique per host, process, delivery and microsecond. */
static void maildir_name(char name[MAILDIR_NAME_MAX], const char *host)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long n = atomic_fetch_add(&maildir_counter, 1);
    snprintf(name, MAILDIR_NAME_MAX, "%lld.P%ldQ%luM%06ld.%s", (long long)ts.tv_sec,
             (long)getpid(), n, ts.tv_nsec / 1000, host);
}

/* Copy the header lines (buf[0..hlen)) and the message bytes into fd. Returns 0 or an
 * errno; *source is set when the error came from reading the queue file. */
static int maildir_copy(int fd, int qfd, unsigned char *buf, size_t hlen, uint64_t off,
                        uint64_t len, bool *source)
{
    *source = false;
    size_t used = hlen;
    uint64_t done = 0;
    for (;;) {
        while (used < MAILDIR_CHUNK && done < len) {
            size_t want = MAILDIR_CHUNK - used;
            if (want > len - done)
                want = (size_t)(len - done);
            ssize_t n = pread(qfd, buf + used, want, (off_t)(off + done));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                *source = true;
                return n < 0 ? errno : EIO; /* the file shrank under us */
            }
            used += (size_t)n;
            done += (uint64_t)n;
        }
        int err = fileio_write_all(fd, buf, used);
        if (err != 0 || done == len)
            return err;
        used = 0;
    }
}

/* Open cur/, new/ and tmp/ under root into fds (cur/ only to check it). Existing ones are
 * all checked first, missing ones created after, so a refused mailbox gets no new entry. */
static bool maildir_open_subdirs(int root, int fds[MAILDIR_NSUB], struct deliver_result *out)
{
    bool missing[MAILDIR_NSUB] = {false};
    for (int i = 0; i < MAILDIR_NSUB; i++) {
        fds[i] = openat(root, maildir_subdirs[i], MAILDIR_DIR_FLAGS);
        if (fds[i] >= 0)
            continue;
        if (errno != ENOENT) {
            maildir_fail_open(out, "mailbox subdirectory unusable", errno);
            return false;
        }
        missing[i] = true;
    }
    bool created = false;
    for (int i = 0; i < MAILDIR_NSUB; i++) {
        if (!missing[i])
            continue;
        if (mkdirat(root, maildir_subdirs[i], 0700) != 0 && errno != EEXIST) {
            maildir_fail_errno(out, "cannot create mailbox subdirectory", errno);
            return false;
        }
        created = true;
        fds[i] = openat(root, maildir_subdirs[i], MAILDIR_DIR_FLAGS);
        if (fds[i] < 0) {
            maildir_fail_open(out, "mailbox subdirectory unusable", errno);
            return false;
        }
    }
    /* The new directories' names must be durable before a message in them counts. */
    if (created && fsync(root) != 0) {
        maildir_fail_errno(out, "cannot sync mailbox", errno);
        return false;
    }
    return true;
}

/* One delivery of a batch, through its stages. */
struct maildir_one {
    const struct deliver_request *rq;
    struct deliver_result *out;
    int root, fds[MAILDIR_NSUB];
    int fd;                  /* the file in tmp/, open until it is synced */
    char name[MAILDIR_NAME_MAX];
    bool written;            /* complete in tmp/, not yet durable */
    bool linked;             /* in new/, not yet durable */
};

/* Stage 1: write the message into tmp/ under a fresh unique name, without syncing. buf
 * holds the header lines (hlen bytes) and is the copy buffer. */
static void maildir_write_tmp(struct maildir_one *d, int qfd, unsigned char *buf, size_t hlen,
                              uint64_t off, uint64_t len)
{
    char host[MAILDIR_HOST_MAX];
    int tmpd = d->fds[MAILDIR_TMP];
    maildir_host(host);
    for (int attempt = 0; attempt < MAILDIR_NAME_TRIES; attempt++) {
        maildir_name(d->name, host);
        d->fd = openat(tmpd, d->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (d->fd < 0) {
            if (errno == EEXIST)
                continue;
            maildir_fail_errno(d->out, "cannot create file in mailbox", errno);
            return;
        }
        bool source = false;
        int err = maildir_copy(d->fd, qfd, buf, hlen, off, len, &source);
        if (err != 0) {
            close(d->fd);
            d->fd = -1;
            unlinkat(tmpd, d->name, 0);
            if (source)
                maildir_result(d->out, DELIVER_TEMPFAIL, "4.3.0", "cannot read queue file", err);
            else
                maildir_fail_errno(d->out, "cannot write mailbox", err);
            return;
        }
        d->written = true;
        return;
    }
    maildir_result(d->out, DELIVER_TEMPFAIL, "4.2.0", "no unique name in mailbox", EEXIST);
}

/* A failed sync: whatever this stage was to make durable is not, so it is taken back
 * (a retry would otherwise duplicate it). */
static void maildir_undo(struct maildir_one *d, const char *what, int err)
{
    if (d->linked)
        unlinkat(d->fds[MAILDIR_NEW], d->name, 0);
    unlinkat(d->fds[MAILDIR_TMP], d->name, 0);
    d->written = d->linked = false;
    maildir_fail_errno(d->out, what, err);
}

/* Make stage `which` durable for the ones that reached it: a lone delivery syncs its own
 * file (or new/); several share one syncfs(2) of the filesystem, which reports a writeback
 * error of any file since the descriptor it is given was opened (Linux 5.8), and every
 * descriptor here was opened by this batch. Different filesystems get one syncfs each. */
static void maildir_sync_stage(struct maildir_one *ds, size_t n, bool links)
{
    size_t count = 0, last = 0;
    for (size_t i = 0; i < n; i++)
        if (links ? ds[i].linked : ds[i].written)
            count++, last = i;
    if (count == 0)
        return;
    if (count == 1) {
        struct maildir_one *d = &ds[last];
        int fd = links ? d->fds[MAILDIR_NEW] : d->fd;
        if (fsync(fd) != 0)
            maildir_undo(d, links ? "cannot sync mailbox" : "cannot write mailbox", errno);
        return;
    }
    bool synced[MAILDIR_BATCH_MAX] = {false};
    for (size_t i = 0; i < n; i++) {
        if (!(links ? ds[i].linked : ds[i].written) || synced[i])
            continue;
        struct stat st;
        int err = fstat(ds[i].fds[MAILDIR_NEW], &st) != 0 ? errno : 0;
        if (err == 0 && syncfs(ds[i].fds[MAILDIR_NEW]) != 0)
            err = errno;
        for (size_t k = i; k < n; k++) {
            struct stat sk;
            if (!(links ? ds[k].linked : ds[k].written) || synced[k] ||
                (k != i && (fstat(ds[k].fds[MAILDIR_NEW], &sk) != 0 || sk.st_dev != st.st_dev)))
                continue;
            synced[k] = true;
            if (err != 0)
                maildir_undo(&ds[k], links ? "cannot sync mailbox" : "cannot write mailbox", err);
        }
    }
}

/* Stage 2: link each synced file into new/ (link, not rename: a clash fails rather than
 * replaces), then drop its tmp/ name. */
static void maildir_link_new(struct maildir_one *d)
{
    if (linkat(d->fds[MAILDIR_TMP], d->name, d->fds[MAILDIR_NEW], d->name, 0) != 0) {
        int err = errno;
        unlinkat(d->fds[MAILDIR_TMP], d->name, 0);
        d->written = false;
        if (err == EEXIST)
            maildir_result(d->out, DELIVER_TEMPFAIL, "4.2.0", "no unique name in mailbox", err);
        else
            maildir_fail_errno(d->out, "cannot move message into mailbox", err);
        return;
    }
    d->linked = true;
    /* The message is complete in new/ either way; a leftover in tmp/ only wastes space
     * until a mail reader cleans it, so a failed unlink does not fail the delivery. */
    unlinkat(d->fds[MAILDIR_TMP], d->name, 0);
}

/* Open the queue file and find the message bytes; qfd is the descriptor they are read
 * through, checked to be the file queue_file_read verified (same size). */
static int maildir_open_source(const struct deliver_request *rq, uint64_t *off, uint64_t *len)
{
    const char *path = rq->queue_path;
    int qfd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (qfd < 0)
        return -1;
    struct queue_envelope env = {0};
    if (rq->verified) {
        /* The scheduler checked the whole file when it loaded it; the body is immutable
         * (DESIGN §4), so the size is what is left to compare. */
        *off = rq->body_offset;
        *len = rq->body_len;
    } else if (queue_file_read(path, &env, off, len) != 0) {
        int err = errno;
        close(qfd);
        errno = err;
        return -1;
    }
    queue_envelope_free(&env);
    struct stat st;
    if (fstat(qfd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size != *off + *len + QUEUE_FILE_END) {
        close(qfd);
        errno = EINVAL;
        return -1;
    }
    return qfd;
}

/* Stage 0 for one request: checks, the source, the mailbox's directories, then stage 1. */
static void maildir_prepare(struct maildir_one *d, unsigned char *buf)
{
    const struct deliver_request *rq = d->rq;
    const char *sender = rq->env->sender;
    if (strpbrk(rq->recipient, "\r\n") != NULL || strpbrk(sender, "\r\n") != NULL) {
        maildir_result(d->out, DELIVER_PERMFAIL, "5.1.3", "CR or LF in an envelope address", 0);
        return;
    }
    int hn = snprintf((char *)buf, MAILDIR_CHUNK, "Return-Path: <%s>\r\nDelivered-To: %s\r\n",
                      sender, rq->recipient);
    if (hn < 0 || hn >= MAILDIR_CHUNK) {
        maildir_result(d->out, DELIVER_PERMFAIL, "5.1.3", "envelope address too long", 0);
        return;
    }
    uint64_t off = 0, len = 0;
    int qfd = maildir_open_source(rq, &off, &len);
    if (qfd < 0) {
        maildir_result(d->out, DELIVER_TEMPFAIL, "4.3.0", "cannot read queue file", errno);
        return;
    }
    d->root = open(rq->mailbox_dir, MAILDIR_DIR_FLAGS);
    if (d->root < 0)
        maildir_fail_open(d->out, "mailbox unusable", errno);
    else if (maildir_open_subdirs(d->root, d->fds, d->out))
        maildir_write_tmp(d, qfd, buf, (size_t)hn, off, len);
    close(qfd);
}

void maildir_deliver_batch(const struct deliver_request *rqs, size_t n,
                           struct deliver_result *outs)
{
    struct maildir_one ds[MAILDIR_BATCH_MAX];
    unsigned char *buf = malloc(MAILDIR_CHUNK);
    if (n > MAILDIR_BATCH_MAX)
        n = MAILDIR_BATCH_MAX;
    for (size_t i = 0; i < n; i++) {
        ds[i] = (struct maildir_one){.rq = &rqs[i], .out = &outs[i], .root = -1, .fd = -1,
                                     .fds = {-1, -1, -1}};
        if (buf == NULL)
            maildir_result(&outs[i], DELIVER_TEMPFAIL, "4.3.0", "out of memory", ENOMEM);
        else
            maildir_prepare(&ds[i], buf);
    }
    free(buf);
    maildir_sync_stage(ds, n, false);
    for (size_t i = 0; i < n; i++) {
        if (ds[i].fd >= 0 && close(ds[i].fd) != 0 && ds[i].written)
            maildir_undo(&ds[i], "cannot write mailbox", errno);
        ds[i].fd = -1;
        if (ds[i].written)
            maildir_link_new(&ds[i]);
    }
    maildir_sync_stage(ds, n, true);
    for (size_t i = 0; i < n; i++) {
        if (ds[i].linked)
            maildir_result(&outs[i], DELIVER_OK, "2.0.0", "delivered", 0);
        for (int k = 0; k < MAILDIR_NSUB; k++)
            if (ds[i].fds[k] >= 0)
                close(ds[i].fds[k]);
        if (ds[i].root >= 0)
            close(ds[i].root);
    }
}

void maildir_deliver(const struct deliver_request *rq, struct deliver_result *out)
{
    maildir_deliver_batch(rq, 1, out);
}
