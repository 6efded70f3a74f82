/* maildir: the local delivery agent. The queue manager (later, from a delivery thread) calls
 * maildir_deliver once per local recipient; it copies the committed queue file's message
 * bytes into the recipient's Maildir with Return-Path (RFC 5321 §4.4) and Delivered-To
 * header lines in front (Delivered-To without brackets, as Postfix and qmail write it and
 * mail stores and loop detection read it). File names end in ",S=<octets>" (Maildir++), so
 * quota scans here, in Dovecot and in Courier need no stat per message.
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
 * - Quota (Maildir++, the "maildirsize" file in the root that Courier and Dovecot read and
 *   update too): the first line is the limit ("<octets>S"), every other line a change
 *   "<octets> <count>", negative when a mail reader removed mail; usage is their sum. A
 *   missing, unparsable or over-long (> 5120 octets) file, one with another limit, or one
 *   older than 15 minutes while it says the message does not fit, is recalculated from
 *   cur/ and new/ of the inbox and of every folder but .Trash, and replaced with
 *   write-then-rename. A message that does not fit is deferred (4.2.2) and nothing is
 *   written, one larger than the whole quota bounced (5.2.3); one delivered adds its line
 *   with one O_APPEND write (without a quota too, when the file exists: a quota removed
 *   and set again must not find a count that missed messages). Earlier messages of the
 *   same batch for the same Maildir count as used. The file is a shared cache, never
 *   trusted for safety: it is opened O_NOFOLLOW and only a regular file is read or
 *   appended to, and a damaged one is simply rebuilt. Like every Maildir++ writer's, the
 *   check is soft: two processes delivering at once can both pass it.
 * - Codes follow RFC 3463: X.2.0 mailbox status, X.2.2 mailbox full, X.2.3 too large for
 *   the quota, X.3.0 mail system, X.1.3 bad address syntax. */
#include "deliver/maildir.h"

#include <dirent.h>
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
#define MAILDIR_SIZE_FILE "maildirsize"
#define MAILDIR_SIZE_MAX 5120  /* Maildir++: a longer maildirsize is recalculated */
#define MAILDIR_SIZE_STALE 900 /* seconds: over quota, an older maildirsize is recalculated */
#define MAILDIR_SIZE_DIGITS 18 /* per number in maildirsize: the directory's quotas stop at
                                  10^18 - 1 (DIRDB_QUOTA_MAX) to fit */

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

/* The host part of the unique name, with '/', ':' and ',' escaped as \057, \072 and \054
 * (they would split the name as a path, clash with the ":2," info suffix, or start a
 * Maildir++ field such as ",S=" that quota scans read). */
static void maildir_host(char out[MAILDIR_HOST_MAX])
{
    char h[65];
    if (gethostname(h, sizeof h) != 0 || h[0] == '\0')
        snprintf(h, sizeof h, "localhost");
    h[sizeof h - 1] = '\0';
    size_t o = 0;
    for (const char *p = h; *p != '\0'; p++) {
        const char *esc = *p == '/' ? "\\057" : *p == ':' ? "\\072" : *p == ',' ? "\\054" : NULL;
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
    uint64_t size;           /* octets of the file: header lines and message */
    dev_t dev;               /* with quota: the root's identity, to find earlier */
    ino_t ino;               /*   deliveries of the batch to the same Maildir */
    bool written;            /* complete in tmp/, not yet durable */
    bool linked;             /* in new/, not yet durable */
};

/* Stage 1: write the message into tmp/ under a fresh unique name ending in ",S=<d->size>",
 * without syncing. buf holds the header lines (hlen bytes) and is the copy buffer. */
static void maildir_write_tmp(struct maildir_one *d, int qfd, unsigned char *buf, size_t hlen,
                              uint64_t off, uint64_t len)
{
    char host[MAILDIR_HOST_MAX];
    int tmpd = d->fds[MAILDIR_TMP];
    maildir_host(host);
    for (int attempt = 0; attempt < MAILDIR_NAME_TRIES; attempt++) {
        maildir_name(d->name, host);
        size_t nl = strlen(d->name);
        snprintf(d->name + nl, sizeof d->name - nl, ",S=%llu", (unsigned long long)d->size);
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

/* ---- quota (Maildir++) ---- */

static uint64_t maildir_add_sat(uint64_t a, uint64_t b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

/* A decimal of 1..MAILDIR_SIZE_DIGITS digits at *p, '-' first when negative allows it. */
static bool maildir_size_number(const char **p, const char *end, bool negative, int64_t *out)
{
    const char *q = *p;
    bool neg = negative && q < end && *q == '-';
    if (neg)
        q++;
    int64_t v = 0;
    int n = 0;
    for (; q < end && *q >= '0' && *q <= '9'; q++, n++) {
        if (n == MAILDIR_SIZE_DIGITS)
            return false;
        v = v * 10 + (*q - '0');
    }
    if (n == 0)
        return false;
    *out = neg ? -v : v;
    *p = q;
    return true;
}

static void maildir_size_blanks(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
}

/* The usage a maildirsize holds. Its first line must give quota as the size limit
 * ("<n>S", with ",<n>C" for a count limit allowed and not enforced here); every later line
 * is "<octets> <count>" (blank lines skipped). False for anything else, or a negative sum:
 * the caller recalculates, which also writes a changed limit into the file. */
static bool maildir_size_parse(const char *buf, size_t len, uint64_t quota, uint64_t *usage)
{
    const char *p = buf, *end = buf + len;
    bool has_size = false;
    for (;;) {
        int64_t v;
        if (!maildir_size_number(&p, end, false, &v) || p == end)
            return false;
        if (*p == 'S') {
            if (has_size || (uint64_t)v != quota)
                return false;
            has_size = true;
        } else if (*p != 'C') {
            return false;
        }
        if (++p == end || *p != ',')
            break;
        p++;
    }
    if (!has_size || p == end || *p++ != '\n')
        return false;
    int64_t sum = 0;
    while (p < end) {
        maildir_size_blanks(&p, end);
        if (p < end && *p == '\n') {
            p++;
            continue;
        }
        int64_t octets, count;
        if (!maildir_size_number(&p, end, true, &octets))
            return false;
        const char *gap = p;
        maildir_size_blanks(&p, end);
        if (p == gap || !maildir_size_number(&p, end, true, &count))
            return false;
        maildir_size_blanks(&p, end);
        if (p == end || *p++ != '\n')
            return false;
        /* |octets| < 10^18 < INT64_MAX / 2: kept within half the range, the sum cannot
         * overflow; beyond it the file is nonsense anyway. */
        sum += octets;
        if (sum > INT64_MAX / 2 || sum < -(INT64_MAX / 2))
            return false;
    }
    if (sum < 0)
        return false;
    *usage = (uint64_t)sum;
    return true;
}

/* True with the usage and the file's mtime when maildirsize is a regular file of at most
 * MAILDIR_SIZE_MAX octets that parses for quota; false when it must be recalculated. */
static bool maildir_size_read(int root, uint64_t quota, uint64_t *usage, time_t *mtime)
{
    int fd = openat(root, MAILDIR_SIZE_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[MAILDIR_SIZE_MAX + 1];
    size_t n = 0;
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    while (ok && n < sizeof buf) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ok = r == 0;
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    if (!ok || n > MAILDIR_SIZE_MAX || !maildir_size_parse(buf, n, quota, usage))
        return false;
    *mtime = st.st_mtime;
    return true;
}

/* The ",S=<octets>" of a Maildir++ name (before its ":2," info or another ",X=" field). */
static bool maildir_name_size(const char *name, uint64_t *size)
{
    const char *s = strstr(name, ",S=");
    if (s == NULL)
        return false;
    int64_t v;
    s += 3;
    if (!maildir_size_number(&s, s + strlen(s), false, &v) ||
        (*s != '\0' && *s != ',' && *s != ':'))
        return false;
    *size = (uint64_t)v;
    return true;
}

/* The next entry of dir; NULL at the end (*ret 0) or on an error (*ret -1, errno set). */
static struct dirent *maildir_next(DIR *dir, int *ret)
{
    errno = 0;
    struct dirent *de = readdir(dir);
    if (de == NULL)
        *ret = errno != 0 ? -1 : 0;
    return de;
}

/* Adds the messages of one cur/ or new/ (dfd, kept open) to *octets and *count: the size in
 * the name, else the file's. Names starting with '.' are not messages, and one that a mail
 * reader moved away meanwhile is not counted. 0, or -1 with errno. */
static int maildir_scan_sub(int dfd, uint64_t *octets, uint64_t *count)
{
    DIR *dir = fileio_opendir(dfd);
    if (dir == NULL)
        return -1;
    int ret = 0;
    struct dirent *de;
    while ((de = maildir_next(dir, &ret)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        uint64_t size;
        if (!maildir_name_size(de->d_name, &size)) {
            struct stat st;
            if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                if (errno == ENOENT)
                    continue;
                ret = -1;
                break;
            }
            if (!S_ISREG(st.st_mode))
                continue;
            size = (uint64_t)st.st_size;
        }
        *octets = maildir_add_sat(*octets, size);
        (*count)++;
    }
    int err = errno;
    closedir(dir);
    errno = err;
    return ret;
}

/* A folder's cur/ and new/ (a missing one, or a link or file in its place, holds nothing). */
static int maildir_scan_folder(int folder, uint64_t *octets, uint64_t *count)
{
    for (int i = MAILDIR_NEW; i >= MAILDIR_CUR; i--) { /* new/ first, as maildir_scan */
        int fd = openat(folder, maildir_subdirs[i], MAILDIR_DIR_FLAGS);
        if (fd < 0) {
            if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR)
                continue;
            return -1;
        }
        int r = maildir_scan_sub(fd, octets, count);
        int err = errno;
        close(fd);
        errno = err;
        if (r != 0)
            return -1;
    }
    return 0;
}

/* The usage of the whole Maildir++: the inbox's cur/ and new/ and every folder (a ".name"
 * directory of the root) but .Trash, which Maildir++ leaves out of the quota. 0, or -1
 * with errno. */
static int maildir_scan(const struct maildir_one *d, uint64_t *octets, uint64_t *count)
{
    *octets = *count = 0;
    /* new/ first: a reader moves mail from new/ to cur/, and a message moved during the scan
     * is then counted twice (the safe side), never missed. */
    if (maildir_scan_sub(d->fds[MAILDIR_NEW], octets, count) != 0 ||
        maildir_scan_sub(d->fds[MAILDIR_CUR], octets, count) != 0)
        return -1;
    DIR *dir = fileio_opendir(d->root);
    if (dir == NULL)
        return -1;
    int ret = 0;
    struct dirent *de;
    while ((de = maildir_next(dir, &ret)) != NULL) {
        const char *n = de->d_name;
        if (n[0] != '.' || strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, ".Trash") == 0)
            continue;
        int folder = openat(d->root, n, MAILDIR_DIR_FLAGS);
        if (folder < 0) {
            if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR)
                continue;
            ret = -1;
            break;
        }
        ret = maildir_scan_folder(folder, octets, count);
        int err = errno;
        close(folder);
        errno = err;
        if (ret != 0)
            break;
    }
    int err = errno;
    closedir(dir);
    errno = err;
    return ret;
}

/* Replaces maildirsize with the limit and a recalculated usage: written in tmp/ under a
 * unique name and renamed over the old one (a link or a FIFO there is replaced, never
 * followed). It is a cache: failing only costs the next delivery another recalculation. */
static void maildir_size_write(const struct maildir_one *d, uint64_t quota, uint64_t octets,
                               uint64_t count)
{
    char host[MAILDIR_HOST_MAX], name[MAILDIR_NAME_MAX], text[80];
    maildir_host(host);
    maildir_name(name, host);
    int n = snprintf(text, sizeof text, "%lluS\n%llu %llu\n", (unsigned long long)quota,
                     (unsigned long long)octets, (unsigned long long)count);
    int tmpd = d->fds[MAILDIR_TMP];
    int fd = openat(tmpd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    bool ok = n > 0 && (size_t)n < sizeof text &&
              fileio_write_all(fd, (const unsigned char *)text, (size_t)n) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || renameat(tmpd, name, d->root, MAILDIR_SIZE_FILE) != 0)
        unlinkat(tmpd, name, 0);
}

static bool maildir_fits(uint64_t used, uint64_t more, uint64_t quota)
{
    return used <= quota && more <= quota - used;
}

/* Stage 0's quota check for d (index i of the batch ds): true when the message fits after
 * the usage and the batch's earlier messages to the same Maildir (written, not yet in
 * maildirsize); else d->out says why (RFC 3463 X.2.3 when it is larger than the whole
 * quota, X.2.2 when it does not fit now). */
static bool maildir_quota_ok(struct maildir_one *ds, size_t i)
{
    struct maildir_one *d = &ds[i];
    uint64_t quota = d->rq->quota;
    if (quota == 0)
        return true;
    if (d->size > quota) {
        /* No deletion makes room for it: waiting out the queue lifetime would only delay
         * the bounce by days. */
        maildir_result(d->out, DELIVER_PERMFAIL, "5.2.3", "message larger than the mailbox quota",
                       0);
        return false;
    }
    struct stat st;
    if (fstat(d->root, &st) != 0) {
        maildir_fail_errno(d->out, "mailbox unusable", errno);
        return false;
    }
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    uint64_t more = d->size;
    for (size_t k = 0; k < i; k++)
        if (ds[k].written && ds[k].rq->quota > 0 && ds[k].dev == d->dev && ds[k].ino == d->ino)
            more = maildir_add_sat(more, ds[k].size);
    uint64_t used = 0;
    time_t mtime = 0;
    bool known = maildir_size_read(d->root, quota, &used, &mtime);
    if (known && maildir_fits(used, more, quota))
        return true;
    if (!known || time(NULL) - mtime > MAILDIR_SIZE_STALE) {
        uint64_t count;
        if (maildir_scan(d, &used, &count) != 0) {
            maildir_fail_errno(d->out, "cannot read mailbox", errno);
            return false;
        }
        maildir_size_write(d, quota, used, count);
        if (maildir_fits(used, more, quota))
            return true;
    }
    maildir_result(d->out, DELIVER_TEMPFAIL, "4.2.2", "mailbox full", 0);
    return false;
}

/* After a delivery, its line, in one O_APPEND write so that concurrent writers' lines do
 * not interleave; also without a quota, so that an existing file stays right for a quota
 * set again later (or kept by the mail reader). No file (removed meanwhile, or never made)
 * or not a regular one: nothing is written, and the next check recalculates; a short
 * write leaves a line it cannot parse, to the same effect. */
static void maildir_size_append(int root, uint64_t size)
{
    int fd =
        openat(root, MAILDIR_SIZE_FILE, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    char line[32];
    int n = snprintf(line, sizeof line, "%llu 1\n", (unsigned long long)size);
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && n > 0 && (size_t)n < sizeof line) {
        ssize_t w = write(fd, line, (size_t)n);
        (void)w;
    }
    close(fd);
}

/* Stage 0 for request i of ds: checks, the source, the mailbox's directories, the quota,
 * then stage 1. */
static void maildir_prepare(struct maildir_one *ds, size_t i, unsigned char *buf)
{
    struct maildir_one *d = &ds[i];
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
    d->size = maildir_add_sat((uint64_t)hn, len);
    d->root = open(rq->mailbox_dir, MAILDIR_DIR_FLAGS);
    if (d->root < 0)
        maildir_fail_open(d->out, "mailbox unusable", errno);
    else if (maildir_open_subdirs(d->root, d->fds, d->out) && maildir_quota_ok(ds, i))
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
            maildir_prepare(ds, i, buf);
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
        if (ds[i].linked) {
            maildir_result(&outs[i], DELIVER_OK, "2.0.0", "delivered", 0);
            maildir_size_append(ds[i].root, ds[i].size);
        }
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
