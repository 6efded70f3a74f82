/* sched_log: the scheduler's outcome log (part of the scheduler, sched_priv.h; records
 * from queue/qlog.c, rules in doc/QUEUE.md "Recipient outcomes"). Records are gathered on
 * the loop and written with one write and one fdatasync by a thread of their own (group
 * commit); the messages whose records a sync covered are re-examined only after it
 * (sched_msg_check). Also the start-up replay and the compaction. Invariants: at most one
 * sync in flight; a message marked while its sync is in flight waits for the next one;
 * compaction writes and syncs the new segment, and makes its name durable, before any old
 * segment is unlinked. */
#include "queue/sched_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "util/fileio.h"
#include "util/log.h"
#include "util/pool.h"

#define SCHED_LOG_NAME 32

static void sched_log_flush(struct sched *s);

/* ---- the outcome log ---- */

static void sched_log_name(uint64_t seq, char name[SCHED_LOG_NAME])
{
    snprintf(name, SCHED_LOG_NAME, "log-%llu", (unsigned long long)seq);
}

void sched_log_add(struct sched *s, const struct qlog_rec *r)
{
    if (s->logcap - s->loglen < QLOG_RECORD_MAX) {
        size_t ncap = s->logcap ? s->logcap * 2 : 64 * 1024;
        unsigned char *nb = realloc(s->logbuf, ncap);
        if (nb == NULL) {
            log_event("qlog_error", "error=out_of_memory");
            exit(75);
        }
        s->logbuf = nb;
        s->logcap = ncap;
    }
    size_t len;
    if (qlog_encode(r, s->logbuf + s->loglen, s->logcap - s->loglen, &len) != 0) {
        /* Only a value with a control byte gets here; the reason is then dropped. */
        struct qlog_rec plain = *r;
        plain.text[0] = '\0';
        plain.extra[0] = '\0';
        if (qlog_encode(&plain, s->logbuf + s->loglen, s->logcap - s->loglen, &len) != 0)
            return;
    }
    s->loglen += len;
    event_active(s->flush_ev, EV_WRITE, 0);
}

void sched_log_rcpt(struct sched *s, struct sched_msg *m, enum qlog_type type, uint32_t i)
{
    struct qlog_rec r = {.type = type, .rcpt = i};
    memcpy(r.id, m->id, ID_LEN + 1);
    if (i < m->nr) {
        const struct sched_rcpt *rc = &m->r[i];
        r.attempts = rc->attempts;
        r.time = type == QLOG_DEFERRED ? rc->next_try : sched_now();
        if (type == QLOG_DEFERRED || type == QLOG_FAILED) {
            r.remote = rc->last.remote_reply;
            snprintf(r.enhanced, sizeof r.enhanced, "%s", rc->last.enhanced);
            snprintf(r.text, sizeof r.text, "%s", rc->last.text);
            if (rc->remote_mta != NULL)
                snprintf(r.extra, sizeof r.extra, "%s", rc->remote_mta);
        }
        if (type == QLOG_ADDED) {
            snprintf(r.extra, sizeof r.extra, "%s", rc->addr);
            r.attempts = rc->parent; /* replay derives root and depth from the parent */
        }
    } else {
        r.time = sched_now();
    }
    sched_log_add(s, &r);
}

void sched_mark_check(struct sched *s, struct sched_msg *m)
{
    if (m->check)
        return;
    m->check = true;
    m->check_next = s->check_head;
    s->check_head = m;
    event_active(s->flush_ev, EV_WRITE, 0);
}

static int sched_log_open_new(struct sched *s)
{
    char name[SCHED_LOG_NAME];
    sched_log_name(++s->log_seq, name);
    int fd = openat(s->state_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (s->log_fd >= 0)
        close(s->log_fd);
    s->log_fd = fd;
    s->log_size = 0;
    return 0;
}

/* The after-sync step: each message whose records the finished sync covered goes on. A
 * message with newer records (check) waits for their sync. */
static void sched_run_checks(struct sched *s, struct sched_msg *list)
{
    while (list != NULL) {
        struct sched_msg *m = list;
        list = m->checking_next;
        m->checking = false;
        if (!m->check)
            sched_msg_check(s, m);
    }
}

static struct sched_msg *sched_take_checks(struct sched *s)
{
    struct sched_msg *list = NULL;
    while (s->check_head != NULL) {
        struct sched_msg *m = s->check_head;
        s->check_head = m->check_next;
        m->check = false;
        if (!m->checking) {
            m->checking = true;
            m->checking_next = list;
            list = m;
        }
    }
    return list;
}

static void sched_log_failed(int err)
{
    /* Outcomes can no longer be kept: exit, and the restart redelivers what was not
     * recorded (duplicates, never losses). */
    log_event("qlog_error", "error=%s", strerror(err));
    exit(75);
}

/* Blocking: write and sync everything logged, then run the checks. For start, compaction
 * and shutdown, when no sync is in flight. */
void sched_log_write_now(struct sched *s)
{
    if (s->loglen > 0) {
        int err = fileio_write_all(s->log_fd, s->logbuf, s->loglen);
        if (err == 0 && fdatasync(s->log_fd) != 0)
            err = errno;
        if (err != 0)
            sched_log_failed(err);
        s->log_size += s->loglen;
        s->loglen = 0;
    }
    sched_run_checks(s, sched_take_checks(s));
}

static void sched_log_sync_work(void *arg)
{
    struct sched *s = arg;
    s->sync_err = fileio_write_all(s->log_fd, s->syncbuf, s->synclen);
    if (s->sync_err == 0 && fdatasync(s->log_fd) != 0)
        s->sync_err = errno;
}

static void sched_log_sync_done(void *arg)
{
    struct sched *s = arg;
    if (s->sync_err != 0)
        sched_log_failed(s->sync_err);
    s->log_size += s->synclen;
    s->synclen = 0;
    s->log_busy = false;
    struct sched_msg *list = s->checking_head;
    s->checking_head = NULL;
    sched_run_checks(s, list);
    if (s->loglen > 0 || s->check_head != NULL)
        sched_log_flush(s);
    else if (s->log_size > SCHED_LOG_ROTATE && !s->closing)
        sched_log_compact(s);
}

/* Group commit: everything logged since the last sync goes to the sync thread as one
 * write and one fdatasync, while the loop keeps delivering; whatever is logged meanwhile
 * goes in the next one. */
static void sched_log_flush(struct sched *s)
{
    if (s->log_busy)
        return; /* sched_log_sync_done starts the next one */
    if (s->loglen == 0 || s->log_pool == NULL || s->closing) {
        sched_log_write_now(s);
        return;
    }
    unsigned char *b = s->syncbuf;
    size_t cap = s->synccap;
    s->syncbuf = s->logbuf;
    s->synccap = s->logcap;
    s->synclen = s->loglen;
    s->logbuf = b;
    s->logcap = cap;
    s->loglen = 0;
    s->checking_head = sched_take_checks(s);
    s->log_busy = true;
    if (pool_submit(s->log_pool, sched_log_sync_work, sched_log_sync_done, s) != 0) {
        sched_log_sync_work(s);
        sched_log_sync_done(s);
    }
}

void sched_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sched_log_flush(arg);
}

/* The state of every live message as records, in a new segment; then the old segments go.
 * The new one is synced, and its name is durable, before any old one is unlinked. */
int sched_log_compact(struct sched *s)
{
    uint64_t first_old = 0, old_seq = s->log_seq;
    DIR *dir;
    struct dirent *de;

    sched_log_write_now(s);
    if (sched_log_open_new(s) != 0) {
        log_event("qlog_error", "what=compact error=%s", strerror(errno));
        return -1;
    }
    for (size_t k = 0; k < s->cap; k++) {
        struct sched_msg *m = s->slots[k];
        if (m == NULL)
            continue;
        for (uint32_t i = (uint32_t)m->env.nrcpts; i < m->nr; i++) {
            struct qlog_rec r = {.type = QLOG_ADDED, .rcpt = i};
            memcpy(r.id, m->id, ID_LEN + 1);
            snprintf(r.extra, sizeof r.extra, "%s", m->r[i].addr);
            r.attempts = m->r[i].parent;
            sched_log_add(s, &r);
        }
        for (uint32_t i = 0; i < m->nr; i++) {
            const struct sched_rcpt *rc = &m->r[i];
            if (rc->state == SCHED_R_DELIVERED)
                sched_log_rcpt(s, m, QLOG_DELIVERED, i);
            else if (rc->state == SCHED_R_EXPANDED)
                sched_log_rcpt(s, m, QLOG_EXPANDED, i);
            else if (rc->state == SCHED_R_FAILED)
                sched_log_rcpt(s, m, QLOG_FAILED, i);
            else if (rc->attempts > 0)
                sched_log_rcpt(s, m, QLOG_DEFERRED, i);
            if (rc->bounced)
                sched_log_rcpt(s, m, QLOG_BOUNCED, i);
        }
        if (m->warned)
            sched_log_rcpt(s, m, QLOG_WARNED, UINT32_MAX);
        if (m->held)
            sched_log_rcpt(s, m, QLOG_HOLD, UINT32_MAX);
        if (m->removed)
            sched_log_rcpt(s, m, QLOG_REMOVED, UINT32_MAX);
    }
    sched_log_write_now(s);
    /* The old segments hold the outcomes of the messages removed since the last compaction:
     * they go only once those unlinks are durable, or a power loss could bring a file back
     * without its records and deliver it again. */
    if (fsync(s->queue_fd) != 0) {
        log_event("qlog_error", "what=compact error=%s", strerror(errno));
        return -1;
    }
    if (fsync(s->state_fd) != 0) {
        log_event("qlog_error", "what=compact error=%s", strerror(errno));
        return -1;
    }
    dir = fileio_opendir(s->state_fd);
    if (dir == NULL)
        return -1;
    while ((de = readdir(dir)) != NULL) {
        unsigned long long seq;
        char tail;
        if (sscanf(de->d_name, "log-%llu%c", &seq, &tail) == 1 && seq <= old_seq) {
            unlinkat(s->state_fd, de->d_name, 0);
            first_old++;
        }
    }
    closedir(dir);
    fsync(s->state_fd);
    log_event("qlog_compacted", "messages=%zu segments_removed=%llu", s->n,
              (unsigned long long)first_old);
    return 0;
}

static void sched_replay_rec(struct sched *s, const struct qlog_rec *r)
{
    struct sched_msg *m = sched_find(s, r->id);
    if (m == NULL)
        return;
    if (r->type == QLOG_ADDED) {
        if (r->rcpt == m->nr)
            sched_rcpt_add(s, m, r->extra, r->attempts);
        return;
    }
    if (r->type == QLOG_WARNED || r->type == QLOG_HOLD || r->type == QLOG_RELEASE ||
        r->type == QLOG_REMOVED) {
        if (r->type == QLOG_WARNED)
            m->warned = true;
        else if (r->type == QLOG_REMOVED)
            m->removed = true;
        else
            m->held = r->type == QLOG_HOLD;
        return;
    }
    if (r->rcpt >= m->nr)
        return;
    struct sched_rcpt *rc = &m->r[r->rcpt];
    switch (r->type) {
    case QLOG_DELIVERED:
        rc->state = SCHED_R_DELIVERED;
        break;
    case QLOG_EXPANDED:
        rc->state = SCHED_R_EXPANDED;
        break;
    case QLOG_BOUNCED:
        rc->bounced = true;
        break;
    case QLOG_DEFERRED:
    case QLOG_FAILED:
        rc->state = r->type == QLOG_FAILED ? SCHED_R_FAILED : SCHED_R_PENDING;
        rc->attempts = r->attempts;
        rc->next_try = r->type == QLOG_DEFERRED ? r->time : 0;
        rc->last.status = r->type == QLOG_FAILED ? DELIVER_PERMFAIL : DELIVER_TEMPFAIL;
        rc->last.remote_reply = r->remote;
        snprintf(rc->last.enhanced, sizeof rc->last.enhanced, "%s", r->enhanced);
        snprintf(rc->last.text, sizeof rc->last.text, "%s", r->text);
        free(rc->remote_mta);
        rc->remote_mta = r->extra[0] != '\0' ? strdup(r->extra) : NULL;
        break;
    default:
        break;
    }
}

/* Every segment in sequence order; a torn or corrupt tail ends its segment (only a crash
 * mid-append leaves one, and nothing after it was synced). */
int sched_replay(struct sched *s)
{
    DIR *dir = fileio_opendir(s->state_fd);
    struct dirent *de;
    uint64_t *seqs = NULL;
    size_t nseq = 0, cap = 0;
    if (dir == NULL)
        return -1;
    while ((de = readdir(dir)) != NULL) {
        unsigned long long seq;
        char tail;
        if (sscanf(de->d_name, "log-%llu%c", &seq, &tail) != 1)
            continue;
        if (nseq == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *n = realloc(seqs, cap * sizeof *n);
            if (n == NULL) {
                closedir(dir);
                free(seqs);
                return -1;
            }
            seqs = n;
        }
        seqs[nseq++] = seq;
    }
    closedir(dir);
    for (size_t i = 1; i < nseq; i++)
        for (size_t j = i; j > 0 && seqs[j - 1] > seqs[j]; j--) {
            uint64_t t = seqs[j];
            seqs[j] = seqs[j - 1];
            seqs[j - 1] = t;
        }
    unsigned char *buf = malloc(1 << 20);
    int rc = buf == NULL ? -1 : 0;
    for (size_t k = 0; k < nseq && rc == 0; k++) {
        char name[SCHED_LOG_NAME];
        sched_log_name(seqs[k], name);
        if (seqs[k] > s->log_seq)
            s->log_seq = seqs[k];
        int fd = openat(s->state_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        size_t have = 0;
        bool stop = false;
        while (!stop) {
            ssize_t got = read(fd, buf + have, (1 << 20) - have);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            have += (size_t)got;
            size_t pos = 0;
            for (;;) {
                struct qlog_rec r;
                size_t used;
                enum qlog_decode_status st = qlog_decode(buf + pos, have - pos, &r, &used);
                if (st == QLOG_SHORT)
                    break;
                if (st == QLOG_CORRUPT) {
                    log_event("qlog_torn", "segment=%s offset=%zu", name, pos);
                    stop = true;
                    break;
                }
                sched_replay_rec(s, &r);
                pos += used;
            }
            memmove(buf, buf + pos, have - pos);
            have -= pos;
        }
        close(fd);
    }
    free(buf);
    free(seqs);
    return rc;
}

