/* wal: record format of the queue store's write-ahead log, and turning records back into
 * queue files (doc/QUEUE.md, "Write-ahead log" and "Recovery"). Called by the store: its
 * sync thread (store_sync.c) encodes record headers, and rewrites acknowledged messages
 * from their records when a checkpoint has failed; store_recover.c recovers with it at
 * start, and replays one dead worker's segments while the others run.
 * Invariants:
 * - a record is trusted only when its header is well formed (the id is checked before it
 *   becomes a file name) and its CRC-32 over header and payload matches; a segment is read
 *   up to its first record that is not, since only a crash mid-append leaves one and
 *   nothing after it was ever acknowledged, or that belongs to another sequence number:
 *   the store reuses a checkpointed segment's file under the next name, and what it
 *   held before is never read again;
 * - a file reaches queue/ only by rename of a temp file that was written and fsynced
 *   whole, so the rule "every file in queue/ is complete" holds during recovery too;
 * - segments are unlinked only after queue/ is fsynced;
 * - recovering one pid reads and unlinks only the names "<pid>-<digits>". */
#include "queue/wal.h"

#include "queue/store_priv.h"
#include "util/bytes.h"
#include "util/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define WAL_CHUNK (64 * 1024)
#define WAL_TMP_SUFFIX ".wal"

void queue_wal_head_encode(unsigned char head[QUEUE_WAL_HEAD], uint64_t seq,
                           const char id[ID_LEN + 1], uint64_t len, uint32_t payload_crc)
{
    memcpy(head, QUEUE_WAL_MAGIC, 4);
    bytes_put32(head + 4, QUEUE_WAL_VERSION);
    bytes_put64(head + 8, seq);
    memcpy(head + 16, id, ID_LEN);
    bytes_put64(head + 36, len);
    uLong crc = crc32_combine(crc32_z(0, head, QUEUE_WAL_CRC_OFF), payload_crc, (z_off_t)len);
    bytes_put32(head + QUEUE_WAL_CRC_OFF, (uint32_t)crc);
}

bool queue_wal_head_decode(const unsigned char head[QUEUE_WAL_HEAD], struct queue_wal_head *h)
{
    if (memcmp(head, QUEUE_WAL_MAGIC, 4) != 0 || bytes_get32(head + 4) != QUEUE_WAL_VERSION ||
        !id_valid((const char *)head + 16, ID_LEN))
        return false;
    h->seq = bytes_get64(head + 8);
    memcpy(h->id, head + 16, ID_LEN);
    h->id[ID_LEN] = '\0';
    h->len = bytes_get64(head + 36);
    h->crc = bytes_get32(head + QUEUE_WAL_CRC_OFF);
    return true;
}

/* Stream the payload through the CRC and, when out_fd >= 0, into out_fd. EINVAL when the
 * record is cut or its CRC does not match. */
static int wal_copy_payload(int seg_fd, off_t off, const struct queue_wal_head *h, int out_fd)
{
    unsigned char head[QUEUE_WAL_HEAD];
    int err = fileio_pread_all(seg_fd, head, sizeof head, off);
    if (err != 0)
        return err;
    unsigned char *buf = malloc(WAL_CHUNK);
    if (buf == NULL)
        return ENOMEM;
    uLong crc = crc32_z(0, head, QUEUE_WAL_CRC_OFF);
    off_t pos = off + QUEUE_WAL_HEAD;
    for (uint64_t left = h->len; err == 0 && left > 0;) {
        size_t n = left < WAL_CHUNK ? (size_t)left : WAL_CHUNK;
        err = fileio_pread_all(seg_fd, buf, n, pos);
        if (err == 0) {
            crc = crc32_z(crc, buf, n);
            if (out_fd >= 0)
                err = fileio_write_all(out_fd, buf, n);
        }
        pos += (off_t)n;
        left -= n;
    }
    free(buf);
    if (err == 0 && (uint32_t)crc != h->crc)
        err = EINVAL;
    return err;
}

int queue_wal_materialize(int seg_fd, off_t off, const struct queue_wal_head *h, int incoming_fd,
                          int queue_fd)
{
    char tmp[ID_LEN + sizeof WAL_TMP_SUFFIX];
    memcpy(tmp, h->id, ID_LEN);
    memcpy(tmp + ID_LEN, WAL_TMP_SUFFIX, sizeof WAL_TMP_SUFFIX);
    /* O_TRUNC without O_EXCL: a temp file left by an earlier attempt is simply redone. */
    int fd = openat(incoming_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    int err = wal_copy_payload(seg_fd, off, h, fd);
    if (err == 0 && fsync(fd) != 0)
        err = errno;
    close(fd);
    if (err == 0 && renameat(incoming_fd, tmp, queue_fd, h->id) != 0)
        err = errno;
    if (err != 0)
        unlinkat(incoming_fd, tmp, 0);
    return err;
}

/* Replay one segment (sequence seq) up to its first invalid record. Only I/O errors are
 * returned; an invalid or cut record ends the segment and is counted in torn. A valid
 * header of another sequence ends it too, as the end of what was written since the file
 * was reused (not torn). */
static int wal_replay_segment(int seg_fd, uint64_t seq, int incoming_fd, int queue_fd,
                              struct queue_store_recovery *c)
{
    struct stat st;
    if (fstat(seg_fd, &st) != 0)
        return errno;
    uint64_t size = (uint64_t)st.st_size;
    off_t off = 0;
    for (;;) {
        uint64_t left = size - (uint64_t)off;
        if (left == 0)
            return 0;
        unsigned char head[QUEUE_WAL_HEAD];
        struct queue_wal_head h;
        size_t want = left < QUEUE_WAL_HEAD ? (size_t)left : QUEUE_WAL_HEAD;
        int err = fileio_pread_all(seg_fd, head, want, off);
        /* Zeros are the space a new segment is created with: its end, not a torn record. */
        static const unsigned char zero[QUEUE_WAL_HEAD];
        if (err == 0 && memcmp(head, zero, want) == 0)
            return 0;
        if (err == 0 && want < QUEUE_WAL_HEAD)
            err = EINVAL;
        if (err == 0 && (!queue_wal_head_decode(head, &h) || h.len > left - QUEUE_WAL_HEAD))
            err = EINVAL;
        if (err == 0 && h.seq != seq) {
            /* Intact, it is left from the file's earlier use: the end. Damaged, torn. */
            err = wal_copy_payload(seg_fd, off, &h, -1);
            if (err == 0)
                return 0;
        }
        bool present = false;
        if (err == 0) {
            struct stat qst;
            present = fstatat(queue_fd, h.id, &qst, AT_SYMLINK_NOFOLLOW) == 0;
            if (!present && errno != ENOENT)
                return errno;
            /* A record already checkpointed is still checked, to know where the next one
             * starts. */
            err = present ? wal_copy_payload(seg_fd, off, &h, -1)
                          : queue_wal_materialize(seg_fd, off, &h, incoming_fd, queue_fd);
        }
        if (err == EINVAL) {
            c->torn++;
            return 0;
        }
        if (err != 0)
            return err;
        c->records++;
        if (present)
            c->present++;
        else
            c->replayed++;
        off += (off_t)(QUEUE_WAL_HEAD + h.len);
    }
}

static const char *wal_next_name(DIR *d)
{
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            return de->d_name;
    return NULL;
}

/* Decimal digits, no sign, no leading zero (but "0"), into *v without overflow. */
static bool wal_number(const char *s, size_t len, uint64_t *v)
{
    *v = 0;
    if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (uint64_t)(s[i] - '0');
    }
    return true;
}

/* A segment name "<pid>-<seq>", both decimal, as the store makes them: *seq set. */
static bool wal_segment_name(const char *name, pid_t *pid, uint64_t *seq)
{
    const char *dash = strchr(name, '-');
    uint64_t p;
    if (dash == NULL || !wal_number(name, (size_t)(dash - name), &p) || p == 0 ||
        p > INT32_MAX || !wal_number(dash + 1, strlen(dash + 1), seq))
        return false;
    *pid = (pid_t)p;
    return true;
}

/* Is name one to handle when recovering pid (0: every name; the others are only unlinked)?
 * Recovering one pid takes exactly the segments "<pid>-<digits>". */
static bool wal_name_of(const char *name, pid_t pid)
{
    pid_t p;
    uint64_t seq;
    if (pid == 0)
        return true;
    return wal_segment_name(name, &p, &seq) && p == pid;
}

static int wal_recover(int wal_fd, pid_t pid, int incoming_fd, int queue_fd,
                       struct queue_store_recovery *out)
{
    struct queue_store_recovery c = {0};
    bool unlinked = false;
    DIR *d = fileio_opendir(wal_fd);
    if (d == NULL)
        return errno;
    int err = 0;
    const char *name;
    while (err == 0 && (name = wal_next_name(d)) != NULL) {
        if (!wal_name_of(name, pid))
            continue;
        /* O_NONBLOCK and O_NOFOLLOW: whatever was planted here is read as data or not at
         * all; anything but a regular file is no segment of ours and only gets unlinked. */
        int fd = openat(wal_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            if (errno != ELOOP && errno != ENXIO)
                err = errno;
            continue;
        }
        struct stat st;
        if (fstat(fd, &st) != 0)
            err = errno;
        else if (S_ISREG(st.st_mode)) {
            pid_t p;
            uint64_t seq;
            c.segments++;
            /* A name the store did not make holds no record it wrote: unlinked unread. */
            if (wal_segment_name(name, &p, &seq))
                err = wal_replay_segment(fd, seq, incoming_fd, queue_fd, &c);
        }
        close(fd);
    }
    closedir(d);
    if (err == 0 && c.replayed > 0 && fsync(queue_fd) != 0)
        err = errno;
    if (err == 0) {
        /* Nothing is appended to these segments while we read them (the master holds the
         * lock and no worker runs; or their worker is dead and reaped, and the master forks
         * no new one until this returns): a second listing sees the same ones. */
        d = fileio_opendir(wal_fd);
        if (d == NULL)
            err = errno;
        while (err == 0 && (name = wal_next_name(d)) != NULL) {
            if (!wal_name_of(name, pid))
                continue;
            if (unlinkat(wal_fd, name, 0) == 0)
                unlinked = true;
            else if (errno != ENOENT && errno != EISDIR)
                err = errno;
        }
        if (d != NULL)
            closedir(d);
    }
    /* A worker that closed its store cleanly left no segment: nothing to make durable. */
    if (err == 0 && (pid == 0 || unlinked) && fsync(wal_fd) != 0)
        err = errno;
    if (out != NULL)
        *out = c;
    return err;
}

int queue_wal_recover(int wal_fd, int incoming_fd, int queue_fd, struct queue_store_recovery *out)
{
    return wal_recover(wal_fd, 0, incoming_fd, queue_fd, out);
}

int queue_wal_recover_pid(int wal_fd, pid_t pid, int incoming_fd, int queue_fd,
                          struct queue_store_recovery *out)
{
    return pid > 0 ? wal_recover(wal_fd, pid, incoming_fd, queue_fd, out) : EINVAL;
}
