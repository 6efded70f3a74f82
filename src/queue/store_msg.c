/* store_msg: writing a message into incoming/<pid>/ as it arrives and finishing it for the
 * sync thread (queue_msg_*), and reading a committed queue file back (queue_file_read).
 * Called by each worker's sessions on their event loop, and by the queue manager and the
 * tests for reading. Part of the queue store (store_priv.h; doc/QUEUE.md, "File format").
 * Invariants:
 * - a file is created O_EXCL|O_NOFOLLOW, mode 0600, in the store's own incoming/<pid>/;
 * - the whole file's CRC-32 is computed while it is written, never by reading it back;
 * - nothing of an aborted or failed message is left behind: its file is unlinked;
 * - a file is trusted by queue_file_read only when every length agrees with the file size
 *   and the end record's CRC-32 matches (HOSTILE-INPUTS I10). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/store_priv.h"
#include "util/bytes.h"
#include "util/fileio.h"

/* ---- writing a message (loop thread) ---- */

static int msg_flush(struct queue_msg *m)
{
    if (m->error == 0 && m->buflen > 0)
        m->error = fileio_write_all(m->fd, m->buf, m->buflen);
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
        m->error = fileio_write_all(m->fd, data, len);
        return m->error;
    }
    memcpy(m->buf + m->buflen, data, len);
    m->buflen += len;
    return 0;
}

void store_msg_free(struct queue_msg *m)
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
    bytes_put32(head + 8, STORE_VERSION);
    bytes_put32(head + 12, 0);
    bytes_put32(head + STORE_HEAD, (uint32_t)elen);
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
        store_msg_free(m);
        errno = ENOMEM;
        return NULL;
    }
    id_next(m->id);
    m->seq = qs->next_seq++;
    m->fd =
        openat(qs->incoming_fd, m->id, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (m->fd < 0) {
        int e = errno;
        store_msg_free(m);
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
    store_msg_free(m);
}

/* Finish the file on the caller's thread: the length, then the end record whose CRC-32
 * covers every byte before it (the length field included, hence crc32_combine). */
int store_msg_finish(struct queue_msg *m)
{
    if (msg_flush(m) != 0)
        return m->error;
    unsigned char len[STORE_BODY_LEN];
    bytes_put64(len, m->body_len);
    m->error = fileio_pwrite_all(m->fd, len, sizeof len, m->body_len_off);
    if (m->error != 0)
        return m->error;
    uLong crc =
        crc32_combine(crc32_z(m->crc_head, len, sizeof len), m->crc_body, (z_off_t)m->body_len);
    unsigned char end[STORE_END] = STORE_END_MAGIC;
    bytes_put32(end + 4, (uint32_t)crc);
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
    store_msg_finish(m);
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
    int err = fileio_pread_all(fd, head, sizeof head, 0);
    if (err != 0)
        return err;
    uint32_t elen = bytes_get32(head + STORE_HEAD);
    if (memcmp(head, STORE_MAGIC, 8) != 0 || bytes_get32(head + 8) != STORE_VERSION ||
        bytes_get32(head + 12) != 0 || elen > QUEUE_ENVELOPE_MAX || elen > size - fixed)
        return EINVAL;
    uint64_t boff = sizeof head + (uint64_t)elen + STORE_BODY_LEN;
    /* The envelope record and the body length are read together: one allocation. */
    unsigned char *rec = malloc((size_t)elen + STORE_BODY_LEN);
    if (rec == NULL)
        return ENOMEM;
    unsigned char end[STORE_END];
    err = fileio_pread_all(fd, rec, (size_t)elen + STORE_BODY_LEN, sizeof head);
    if (err == 0)
        err = fileio_pread_all(fd, end, sizeof end, (off_t)(size - STORE_END));
    uint64_t blen = err == 0 ? bytes_get64(rec + elen) : 0;
    if (err == 0 && (blen != size - fixed - elen || memcmp(end, STORE_END_MAGIC, 4) != 0))
        err = EINVAL;
    uLong crc = 0;
    if (err == 0)
        crc = crc32_z(crc32_z(0, head, sizeof head), rec, (size_t)elen + STORE_BODY_LEN);
    for (uint64_t off = boff; err == 0 && off < boff + blen;) {
        unsigned char chunk[8192];
        size_t n = boff + blen - off < sizeof chunk ? (size_t)(boff + blen - off) : sizeof chunk;
        err = fileio_pread_all(fd, chunk, n, (off_t)off);
        crc = crc32_z(crc, chunk, n);
        off += n;
    }
    if (err == 0 && (uint32_t)crc != bytes_get32(end + 4))
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
