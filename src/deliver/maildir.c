/* maildir: the local delivery agent. The queue manager (later, from a delivery thread) calls
 * maildir_deliver once per local recipient; it copies the committed queue file's message
 * bytes into the recipient's Maildir with Return-Path (RFC 5321 §4.4) and Delivered-To
 * header lines in front (Delivered-To without brackets, as Postfix and qmail write it and
 * mail stores and loop detection read it).
 *
 * Invariants:
 * - The Maildir convention: the message is written to tmp/<unique>, fsynced, linked into
 *   new/<unique> (link, not rename, so that a name clash fails instead of replacing a
 *   message), and new/ is fsynced; the delivery counts only then. Any failure unlinks what
 *   was made, so new/ never holds a partial file and tmp/ keeps no leftover
 *   (HOSTILE-INPUTS K7: write, then fsync, then rename).
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

/* Write the message into tmp/, fsync, link into new/, fsync new/. buf holds the header
 * lines (hlen bytes) and is the copy buffer. */
static void maildir_store(int qfd, int tmpd, int newd, unsigned char *buf, size_t hlen,
                          uint64_t off, uint64_t len, struct deliver_result *out)
{
    char host[MAILDIR_HOST_MAX];
    maildir_host(host);
    for (int attempt = 0; attempt < MAILDIR_NAME_TRIES; attempt++) {
        char name[MAILDIR_NAME_MAX];
        maildir_name(name, host);
        int fd = openat(tmpd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST)
                continue;
            maildir_fail_errno(out, "cannot create file in mailbox", errno);
            return;
        }
        bool source = false;
        int err = maildir_copy(fd, qfd, buf, hlen, off, len, &source);
        if (err == 0 && fsync(fd) != 0)
            err = errno;
        if (close(fd) != 0 && err == 0)
            err = errno;
        if (err != 0) {
            unlinkat(tmpd, name, 0);
            if (source)
                maildir_result(out, DELIVER_TEMPFAIL, "4.3.0", "cannot read queue file", err);
            else
                maildir_fail_errno(out, "cannot write mailbox", err);
            return;
        }
        if (linkat(tmpd, name, newd, name, 0) != 0) {
            err = errno;
            unlinkat(tmpd, name, 0);
            if (err == EEXIST)
                continue;
            maildir_fail_errno(out, "cannot move message into mailbox", err);
            return;
        }
        /* The message is complete in new/ either way; a leftover in tmp/ only wastes space
         * until a mail reader cleans it, so a failed unlink does not fail the delivery. */
        unlinkat(tmpd, name, 0);
        if (fsync(newd) != 0) {
            err = errno;
            /* Not durable, so not delivered: take it back, or the retry makes a duplicate. */
            unlinkat(newd, name, 0);
            maildir_fail_errno(out, "cannot sync mailbox", err);
            return;
        }
        maildir_result(out, DELIVER_OK, "2.0.0", "delivered", 0);
        return;
    }
    maildir_result(out, DELIVER_TEMPFAIL, "4.2.0", "no unique name in mailbox", EEXIST);
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

void maildir_deliver(const struct deliver_request *rq, struct deliver_result *out)
{
    const char *sender = rq->env->sender;
    if (strpbrk(rq->recipient, "\r\n") != NULL || strpbrk(sender, "\r\n") != NULL) {
        maildir_result(out, DELIVER_PERMFAIL, "5.1.3", "CR or LF in an envelope address", 0);
        return;
    }
    unsigned char *buf = malloc(MAILDIR_CHUNK);
    if (buf == NULL) {
        maildir_result(out, DELIVER_TEMPFAIL, "4.3.0", "out of memory", ENOMEM);
        return;
    }
    int hn = snprintf((char *)buf, MAILDIR_CHUNK, "Return-Path: <%s>\r\nDelivered-To: %s\r\n",
                      sender, rq->recipient);
    if (hn < 0 || hn >= MAILDIR_CHUNK) {
        free(buf);
        maildir_result(out, DELIVER_PERMFAIL, "5.1.3", "envelope address too long", 0);
        return;
    }
    uint64_t off = 0, len = 0;
    int qfd = maildir_open_source(rq, &off, &len);
    if (qfd < 0) {
        maildir_result(out, DELIVER_TEMPFAIL, "4.3.0", "cannot read queue file", errno);
        free(buf);
        return;
    }
    int fds[MAILDIR_NSUB] = {-1, -1, -1};
    int root = open(rq->mailbox_dir, MAILDIR_DIR_FLAGS);
    if (root < 0)
        maildir_fail_open(out, "mailbox unusable", errno);
    else if (maildir_open_subdirs(root, fds, out))
        maildir_store(qfd, fds[MAILDIR_TMP], fds[MAILDIR_NEW], buf, (size_t)hn, off, len, out);
    for (int i = 0; i < MAILDIR_NSUB; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (root >= 0)
        close(root);
    close(qfd);
    free(buf);
}
