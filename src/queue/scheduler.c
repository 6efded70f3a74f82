/* scheduler: messages in memory, the outcome log, and each recipient's state machine (see
 * scheduler.h, doc/QUEUE.md "Delivery"). Called by the queue manager process
 * (daemon/qmgr.c); calls the store's reader and injector, qlog, and its own routing
 * (sched_route.c) and bounce (sched_bounce.c) parts.
 * Invariants:
 * - a recipient's final outcome (delivered, failed, expanded) is in the outcome log and
 *   fdatasynced before anything depends on it: a message file is unlinked, and a DSN is
 *   composed, only from the after-sync list (sched_log_flush). A crash therefore repeats at
 *   most the deliveries whose outcome was not yet synced (HOSTILE-INPUTS I13);
 * - the log is replayed in order onto the files found in queue/, so it never resurrects a
 *   message: records of ids without a file are dropped at the next compaction;
 * - a file the reader refuses goes to corrupt/ and the rest of the queue goes on (I10);
 * - every decision is logged with the queue id. */
#include "queue/sched_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "queue/bounce.h"
#include "queue/inject.h"
#include "queue/store.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/pool.h"

#define SCHED_LOG_NAME 32

int64_t sched_now(void)
{
    return (int64_t)time(NULL);
}

uint64_t sched_backoff_ms(unsigned attempts, uint64_t min_ms, uint64_t max_ms)
{
    uint64_t d = min_ms;
    for (unsigned i = 1; i < attempts && d < max_ms; i++)
        d *= 2;
    return d < max_ms ? d : max_ms;
}

static bool sched_path_part_ok(const char *s)
{
    if (*s == '\0' || *s == '.')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p == '/' || *p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

int sched_maildir_path(const char *tmpl, const char *local, const char *domain, char *out,
                       size_t cap)
{
    size_t n = 0;
    if (!sched_path_part_ok(local) || !sched_path_part_ok(domain) || cap == 0)
        return -1;
    for (const char *p = tmpl; *p != '\0'; p++) {
        const char *add = p;
        size_t len = 1;
        if (*p == '%') {
            p++;
            if (*p == 'd')
                add = domain, len = strlen(domain);
            else if (*p == 'u')
                add = local, len = strlen(local);
            else if (*p == '%')
                add = "%", len = 1;
            else
                return -1;
        }
        if (len >= cap - n)
            return -1;
        memcpy(out + n, add, len);
        n += len;
    }
    out[n] = '\0';
    return 0;
}

/* ---- the message table ---- */

static uint64_t sched_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < ID_LEN; i++)
        h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
    return h;
}

static struct sched_msg **sched_slot(struct sched *s, const char *id)
{
    for (size_t i = sched_hash(id) & (s->cap - 1);; i = (i + 1) & (s->cap - 1))
        if (s->slots[i] == NULL || memcmp(s->slots[i]->id, id, ID_LEN) == 0)
            return &s->slots[i];
}

static struct sched_msg *sched_find(struct sched *s, const char *id)
{
    if (id == NULL || !id_valid(id, strlen(id)))
        return NULL;
    return *sched_slot(s, id);
}

static int sched_table_add(struct sched *s, struct sched_msg *m)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap * 2;
        struct sched_msg **ns = calloc(ncap, sizeof *ns), **old = s->slots;
        size_t ocap = s->cap;
        if (ns == NULL)
            return -1;
        s->slots = ns;
        s->cap = ncap;
        for (size_t i = 0; i < ocap; i++)
            if (old[i] != NULL)
                *sched_slot(s, old[i]->id) = old[i];
        free(old);
    }
    *sched_slot(s, m->id) = m;
    s->n++;
    return 0;
}

/* Backward-shift deletion keeps every probe chain intact without tombstones. */
static void sched_table_del(struct sched *s, struct sched_msg *m)
{
    size_t i = (size_t)(sched_slot(s, m->id) - s->slots);
    s->slots[i] = NULL;
    s->n--;
    for (size_t j = (i + 1) & (s->cap - 1); s->slots[j] != NULL; j = (j + 1) & (s->cap - 1)) {
        struct sched_msg *e = s->slots[j];
        s->slots[j] = NULL;
        *sched_slot(s, e->id) = e;
    }
}

static void sched_msg_free(struct sched_msg *m)
{
    for (size_t i = 0; i < m->nr; i++) {
        free(m->r[i].addr);
        free(m->r[i].remote_mta);
    }
    free(m->r);
    queue_envelope_free(&m->env);
    free(m);
}

/* The domain part lower-cased, the local part kept (RFC 5321 §2.4). */
static char *sched_addr_dup(const char *a)
{
    char *d = strdup(a);
    if (d == NULL)
        return NULL;
    char *at = strrchr(d, '@');
    for (char *p = at; p != NULL && *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return d;
}

long sched_rcpt_add(struct sched *s, struct sched_msg *m, const char *addr, uint32_t parent)
{
    (void)s;
    if (m->nr >= SCHED_RCPTS_MAX)
        return -1;
    if (m->nr == m->rcap) {
        size_t ncap = m->rcap ? m->rcap * 2 : 4;
        struct sched_rcpt *nr = realloc(m->r, ncap * sizeof *nr);
        if (nr == NULL)
            return -1;
        m->r = nr;
        m->rcap = ncap;
    }
    struct sched_rcpt *r = &m->r[m->nr];
    *r = (struct sched_rcpt){.addr = sched_addr_dup(addr)};
    if (r->addr == NULL)
        return -1;
    if (parent < m->nr) {
        r->parent = parent;
        r->root = m->r[parent].root;
        r->depth = (uint8_t)(m->r[parent].depth + 1);
        r->notify = m->r[parent].notify;
    } else {
        r->root = r->parent = (uint32_t)m->nr;
    }
    return (long)m->nr++;
}

/* ---- due times ---- */

static void sched_timer_arm(struct sched *s)
{
    if (s->heap_n == 0 || s->closing)
        return;
    int64_t wait = s->heap[0].due - sched_now();
    struct timeval tv = {wait > 0 ? (time_t)wait : 0, 0};
    evtimer_add(s->timer, &tv);
}

void sched_due(struct sched *s, struct sched_msg *m, int64_t when)
{
    if (m->due != 0 && m->due <= when)
        return;
    if (s->heap_n == s->heap_cap) {
        size_t ncap = s->heap_cap ? s->heap_cap * 2 : 64;
        struct sched_heap_ent *nh = realloc(s->heap, ncap * sizeof *nh);
        if (nh == NULL) {
            log_event("sched_error", "id=%s error=out_of_memory what=heap", m->id);
            return;
        }
        s->heap = nh;
        s->heap_cap = ncap;
    }
    m->due = when;
    size_t i = s->heap_n++;
    while (i > 0 && s->heap[(i - 1) / 2].due > when) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = (struct sched_heap_ent){when, m};
    if (i == 0)
        sched_timer_arm(s);
}

/* Put e at position i or below, moving smaller children up. */
static void sched_heap_down(struct sched *s, size_t i, struct sched_heap_ent e)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->heap_n)
            break;
        if (c + 1 < s->heap_n && s->heap[c + 1].due < s->heap[c].due)
            c++;
        if (s->heap[c].due >= e.due)
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    s->heap[i] = e;
}

static struct sched_heap_ent sched_heap_pop(struct sched *s)
{
    struct sched_heap_ent top = s->heap[0], last = s->heap[--s->heap_n];
    if (s->heap_n > 0)
        sched_heap_down(s, 0, last);
    return top;
}

/* A removed message may still sit in the heap: it is freed only when no entry points at
 * it, which sched_heap_forget ensures by dropping its entries. */
static void sched_heap_forget(struct sched *s, struct sched_msg *m)
{
    size_t w = 0;
    for (size_t i = 0; i < s->heap_n; i++)
        if (s->heap[i].m != m)
            s->heap[w++] = s->heap[i];
    s->heap_n = w;
    /* Entries were only removed: a bottom-up rebuild restores the order. */
    for (size_t k = s->heap_n / 2; k-- > 0;)
        sched_heap_down(s, k, s->heap[k]);
}

static void sched_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sched *s = arg;
    int64_t now = sched_now();
    (void)fd;
    (void)what;
    while (s->heap_n > 0 && s->heap[0].due <= now && !s->closing) {
        struct sched_heap_ent e = sched_heap_pop(s);
        if (e.m->due != e.due)
            continue; /* stale: a later sched_due moved it */
        e.m->due = 0;
        if (!e.m->held && !e.m->removed && !s->cfg->delivery.hold)
            sched_dispatch(s, e.m, now);
    }
    sched_timer_arm(s);
}

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

static void sched_msg_check(struct sched *s, struct sched_msg *m);
static int sched_log_compact(struct sched *s);

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
static void sched_log_write_now(struct sched *s)
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

static void sched_log_flush(struct sched *s);

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

static void sched_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sched_log_flush(arg);
}

/* The state of every live message as records, in a new segment; then the old segments go.
 * The new one is synced, and its name is durable, before any old one is unlinked. */
static int sched_log_compact(struct sched *s)
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
    }
    sched_log_write_now(s);
    if (fsync(s->state_fd) != 0) {
        log_event("qlog_error", "what=compact error=%s", strerror(errno));
        return -1;
    }
    dir = fdopendir(dup(s->state_fd));
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

/* ---- loading messages ---- */

static struct sched_msg *sched_load(struct sched *s, const char *id)
{
    char path[4096];
    struct sched_msg *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    memcpy(m->id, id, ID_LEN + 1);
    snprintf(path, sizeof path, "%s/queue/%s", s->spool, id);
    if (queue_file_read(path, &m->env, &m->body_offset, &m->body_len) != 0) {
        int e = errno;
        free(m);
        if (e == EINVAL) {
            if (renameat(s->queue_fd, id, s->corrupt_fd, id) == 0)
                fsync(s->corrupt_fd);
            log_event("queue_corrupt", "id=%s action=moved_to_corrupt", id);
        } else if (e != ENOENT) {
            log_event("queue_read_error", "id=%s error=%s", id, strerror(e));
        }
        return NULL;
    }
    for (size_t i = 0; i < m->env.nrcpts; i++) {
        if (sched_rcpt_add(s, m, m->env.rcpts[i].addr, UINT32_MAX) < 0) {
            sched_msg_free(m);
            return NULL;
        }
        m->r[i].notify = m->env.rcpts[i].notify;
    }
    if (sched_table_add(s, m) != 0) {
        sched_msg_free(m);
        return NULL;
    }
    s->stats.messages = s->n;
    return m;
}

void sched_notice(struct sched *s, const char *id)
{
    if (!id_valid(id, strlen(id)) || sched_find(s, id) != NULL || s->closing)
        return;
    struct sched_msg *m = sched_load(s, id);
    if (m == NULL)
        return;
    log_event("queue_active", "id=%s from=<%s> size=%llu nrcpt=%zu", m->id,
              m->env.sender, (unsigned long long)m->body_len, m->env.nrcpts);
    sched_due(s, m, sched_now());
}

static void sched_scan(struct sched *s, bool at_start)
{
    DIR *dir = fdopendir(dup(s->queue_fd));
    struct dirent *de;
    if (dir == NULL) {
        log_event("queue_scan_error", "error=%s", strerror(errno));
        return;
    }
    while ((de = readdir(dir)) != NULL) {
        if (!id_valid(de->d_name, strlen(de->d_name))) {
            if (de->d_name[0] != '.')
                log_event("queue_stray", "name=%s", "not_an_id");
            continue;
        }
        if (at_start) {
            if (sched_find(s, de->d_name) == NULL)
                sched_load(s, de->d_name);
        } else {
            sched_notice(s, de->d_name);
        }
    }
    closedir(dir);
}

void sched_rescan(struct sched *s)
{
    sched_scan(s, false);
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
static int sched_replay(struct sched *s)
{
    DIR *dir = fdopendir(dup(s->state_fd));
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

/* ---- outcomes ---- */

static void sched_log_outcome(const char *event, const struct sched_msg *m, uint32_t i,
                              const struct deliver_result *res, const char *relay)
{
    char text[300], rcpt[300];
    log_event(event, "id=%s to=<%s> relay=%s status=%s attempts=%u reason=%s", m->id,
              log_value(rcpt, sizeof rcpt, m->r[i].addr, strlen(m->r[i].addr)),
              relay != NULL ? relay : "local", res->enhanced, m->r[i].attempts,
              log_value(text, sizeof text, res->text, strlen(res->text)));
}

void sched_result(struct sched *s, struct sched_msg *m, uint32_t i,
                  const struct deliver_result *res, const char *remote_mta)
{
    struct sched_rcpt *rc = &m->r[i];
    int64_t now = sched_now();

    rc->attempts++;
    free(rc->remote_mta);
    rc->remote_mta = remote_mta != NULL ? strdup(remote_mta) : NULL;
    if (res->status == DELIVER_OK) {
        rc->state = SCHED_R_DELIVERED;
        s->stats.delivered++;
        sched_log_outcome("delivered", m, i, res, remote_mta);
        sched_log_rcpt(s, m, QLOG_DELIVERED, i);
    } else if (res->status == DELIVER_PERMFAIL ||
               now - m->env.arrival >= (int64_t)(s->cfg->delivery.lifetime / 1000)) {
        rc->last = *res;
        if (res->status != DELIVER_PERMFAIL) {
            /* RFC 3463 4.4.7: delivery time expired; the last error stays in the text. */
            static const char pre[] = "delivery time expired; last error: ";
            size_t tl = strnlen(res->text, sizeof res->text - 1);
            size_t room = sizeof rc->last.text - sizeof pre;
            memcpy(rc->last.text, pre, sizeof pre - 1);
            memcpy(rc->last.text + sizeof pre - 1, res->text, tl < room ? tl : room);
            rc->last.text[sizeof pre - 1 + (tl < room ? tl : room)] = '\0';
            snprintf(rc->last.enhanced, sizeof rc->last.enhanced, "4.4.7");
            rc->last.remote_reply = false;
        }
        rc->state = SCHED_R_FAILED;
        s->stats.failed++;
        sched_log_outcome("failed", m, i, &rc->last, remote_mta);
        sched_log_rcpt(s, m, QLOG_FAILED, i);
    } else {
        rc->last = *res;
        rc->state = SCHED_R_PENDING;
        rc->next_try = now + (int64_t)(sched_backoff_ms(rc->attempts, s->cfg->delivery.retry_min,
                                                        s->cfg->delivery.retry_max) /
                                       1000);
        s->stats.deferred++;
        sched_log_outcome("deferred", m, i, res, remote_mta);
        sched_log_rcpt(s, m, QLOG_DEFERRED, i);
        sched_due(s, m, rc->next_try);
    }
    sched_mark_check(s, m);
}

static void sched_remove(struct sched *s, struct sched_msg *m, const char *why)
{
    if (m->check || m->checking)
        return; /* newer records wait for a sync: its check comes back here */
    if (unlinkat(s->queue_fd, m->id, 0) != 0 && errno != ENOENT) {
        log_event("queue_remove_error", "id=%s error=%s", m->id, strerror(errno));
        sched_due(s, m, sched_now() + 60);
        return;
    }
    sched_log_rcpt(s, m, QLOG_REMOVED, UINT32_MAX);
    log_event("removed", "id=%s reason=%s", m->id, why);
    sched_heap_forget(s, m);
    sched_table_del(s, m);
    s->stats.messages = s->n;
    sched_msg_free(m);
}

/* After the log is synced: bounce what failed, warn about what waits, remove what is done. */
static void sched_msg_check(struct sched *s, struct sched_msg *m)
{
    bool open = false, unbounced = false, waiting_long = false;
    int64_t now = sched_now();
    unsigned warn_s = s->cfg->delivery.delay_warning / 1000;

    if (m->removed) {
        if (m->busy == 0)
            sched_remove(s, m, "logged_removed");
        return;
    }
    for (size_t i = 0; i < m->nr; i++) {
        const struct sched_rcpt *rc = &m->r[i];
        if (rc->state == SCHED_R_PENDING || rc->state == SCHED_R_BUSY) {
            open = true;
            if (rc->attempts > 0 && warn_s > 0 && now - m->env.arrival >= (int64_t)warn_s)
                waiting_long = true;
        }
        if (rc->state == SCHED_R_FAILED && !rc->bounced)
            unbounced = true;
    }
    if (unbounced) {
        if (sched_bounce(s, m, false) != 0) {
            sched_due(s, m, now + 60);
            return;
        }
        unbounced = false;
    }
    if (waiting_long && !m->warned && sched_bounce(s, m, true) != 0)
        sched_due(s, m, now + 60);
    if (!open && m->busy == 0 && !unbounced)
        sched_remove(s, m, "done");
}

/* ---- operator actions ---- */

int sched_flush(struct sched *s, const char *id)
{
    int64_t now = sched_now();
    if (id != NULL) {
        struct sched_msg *m = sched_find(s, id);
        if (m == NULL) {
            errno = ENOENT;
            return -1;
        }
        for (size_t i = 0; i < m->nr; i++)
            m->r[i].next_try = 0;
        sched_due(s, m, now);
        return 0;
    }
    for (size_t k = 0; k < s->cap; k++) {
        struct sched_msg *m = s->slots[k];
        if (m == NULL)
            continue;
        for (size_t i = 0; i < m->nr; i++)
            m->r[i].next_try = 0;
        sched_due(s, m, now);
    }
    return 0;
}

static int sched_set_held(struct sched *s, const char *id, bool held)
{
    struct sched_msg *m = sched_find(s, id);
    if (m == NULL) {
        errno = ENOENT;
        return -1;
    }
    if (m->held != held) {
        m->held = held;
        sched_log_rcpt(s, m, held ? QLOG_HOLD : QLOG_RELEASE, UINT32_MAX);
        log_event(held ? "held" : "released", "id=%s", m->id);
    }
    if (!held)
        sched_due(s, m, sched_now());
    return 0;
}

int sched_hold(struct sched *s, const char *id)
{
    return sched_set_held(s, id, true);
}

int sched_release(struct sched *s, const char *id)
{
    return sched_set_held(s, id, false);
}

int sched_delete(struct sched *s, const char *id)
{
    struct sched_msg *m = sched_find(s, id);
    if (m == NULL) {
        errno = ENOENT;
        return -1;
    }
    log_event("deleted", "id=%s by=operator", m->id);
    m->removed = true;
    m->held = true;
    if (m->busy == 0)
        sched_remove(s, m, "deleted");
    return 0;
}

static enum ctl_rcpt_state sched_ctl_state(const struct sched_rcpt *rc)
{
    switch (rc->state) {
    case SCHED_R_DELIVERED:
    case SCHED_R_EXPANDED:
        return CTL_RCPT_DELIVERED;
    case SCHED_R_FAILED:
        return CTL_RCPT_FAILED;
    default:
        return rc->attempts > 0 ? CTL_RCPT_DEFERRED : CTL_RCPT_PENDING;
    }
}

static void sched_list_one(struct sched_msg *m, sched_list_fn fn, void *arg)
{
    struct ctl_rcpt_info *ri = calloc(m->nr ? m->nr : 1, sizeof *ri);
    char(*reasons)[sizeof m->r[0].last.text + 16] = calloc(m->nr ? m->nr : 1, sizeof *reasons);
    if (ri == NULL || reasons == NULL) {
        free(ri);
        free(reasons);
        return;
    }
    for (size_t i = 0; i < m->nr; i++) {
        const struct sched_rcpt *rc = &m->r[i];
        if (rc->attempts > 0 && rc->state != SCHED_R_DELIVERED)
            snprintf(reasons[i], sizeof reasons[i], "%s %s", rc->last.enhanced, rc->last.text);
        ri[i] = (struct ctl_rcpt_info){
            .addr = rc->addr,
            .state = sched_ctl_state(rc),
            .attempts = rc->attempts,
            .next_try = rc->state == SCHED_R_PENDING && rc->attempts > 0 ? rc->next_try : 0,
            .reason = reasons[i],
        };
    }
    struct ctl_msg_info mi = {
        .id = m->id,
        .arrival = m->env.arrival,
        .size = m->body_len,
        .held = m->held,
        .sender = m->env.sender,
    };
    fn(&mi, ri, m->nr, arg);
    free(ri);
    free(reasons);
}

static int sched_cmp_id(const void *a, const void *b)
{
    return memcmp((*(struct sched_msg *const *)a)->id, (*(struct sched_msg *const *)b)->id,
                  ID_LEN);
}

int sched_list(struct sched *s, const char *id, sched_list_fn fn, void *arg)
{
    if (id != NULL) {
        struct sched_msg *m = sched_find(s, id);
        if (m == NULL) {
            errno = ENOENT;
            return -1;
        }
        sched_list_one(m, fn, arg);
        return 0;
    }
    struct sched_msg **all = malloc((s->n ? s->n : 1) * sizeof *all);
    size_t n = 0;
    if (all == NULL)
        return -1;
    for (size_t k = 0; k < s->cap; k++)
        if (s->slots[k] != NULL)
            all[n++] = s->slots[k];
    qsort(all, n, sizeof *all, sched_cmp_id);
    for (size_t i = 0; i < n; i++)
        sched_list_one(all[i], fn, arg);
    free(all);
    return 0;
}

void sched_get_stats(const struct sched *s, struct sched_stats *out)
{
    *out = s->stats;
    out->in_flight = s->in_flight;
}

/* ---- open and close ---- */

static int sched_open_dir(const char *spool, const char *sub, bool create)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", spool, sub) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (create && mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

struct sched *sched_open(struct event_base *base, const struct config *cfg, struct dir *d,
                         char *err, size_t errlen)
{
    struct sched *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base = base;
    s->cfg = cfg;
    s->dir = d;
    s->log_fd = s->queue_fd = s->corrupt_fd = s->state_fd = -1;
    s->cap = 1024;
    s->slots = calloc(s->cap, sizeof *s->slots);
    s->spool = strdup(cfg->spool);
    s->timer = evtimer_new(base, sched_timer_cb, s);
    s->flush_ev = event_new(base, -1, 0, sched_flush_cb, s);
    if (s->slots == NULL || s->spool == NULL || s->timer == NULL || s->flush_ev == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->queue_fd = sched_open_dir(cfg->spool, "queue", false);
    s->corrupt_fd = sched_open_dir(cfg->spool, "corrupt", true);
    s->state_fd = sched_open_dir(cfg->spool, "state", true);
    if (s->queue_fd < 0 || s->corrupt_fd < 0 || s->state_fd < 0) {
        snprintf(err, errlen, "%s: queue/, corrupt/ or state/: %s", cfg->spool, strerror(errno));
        goto fail;
    }
    s->inject = queue_inject_open(cfg->spool);
    if (s->inject == NULL) {
        snprintf(err, errlen, "%s: incoming/: %s", cfg->spool, strerror(errno));
        goto fail;
    }
    if (sched_route_open(s, err, errlen) != 0)
        goto fail;
    sched_scan(s, true);
    if (sched_replay(s) != 0) {
        snprintf(err, errlen, "%s/state: replay: %s", cfg->spool, strerror(errno));
        goto fail;
    }
    if (sched_log_compact(s) != 0) {
        snprintf(err, errlen, "%s/state: %s", cfg->spool, strerror(errno));
        goto fail;
    }
    s->log_pool = pool_new(base, 1);
    if (s->log_pool == NULL) {
        snprintf(err, errlen, "log thread: %s", strerror(errno));
        goto fail;
    }
    log_event("queue_loaded", "messages=%zu", s->n);
    int64_t now = sched_now();
    for (size_t k = 0; k < s->cap; k++) {
        struct sched_msg *m = s->slots[k];
        if (m == NULL)
            continue;
        /* Recipients mid-delivery at the crash are tried again; a message whose
         * outcomes are all final goes through the after-sync check (bounce, remove). */
        int64_t when = INT64_MAX;
        for (size_t i = 0; i < m->nr; i++)
            if (m->r[i].state == SCHED_R_PENDING)
                when = m->r[i].next_try < when ? m->r[i].next_try : when;
        if (when != INT64_MAX && !m->held)
            sched_due(s, m, when > now ? when : now);
        sched_mark_check(s, m);
    }
    return s;
fail:
    sched_close(s, 0);
    return NULL;
}

void sched_close(struct sched *s, unsigned wait_ms)
{
    if (s == NULL)
        return;
    s->closing = true;
    if (s->timer != NULL)
        evtimer_del(s->timer);
    /* Deliveries in flight finish into the log: loop until none is left or time is up. */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (s->in_flight > 0 && s->base != NULL) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t el = (uint64_t)(now.tv_sec - start.tv_sec) * 1000 +
                      (uint64_t)(now.tv_nsec - start.tv_nsec) / 1000000;
        if (el >= wait_ms)
            break;
        event_base_loop(s->base, EVLOOP_ONCE);
    }
    pool_free(s->log_pool); /* the sync in flight finishes and its checks run */
    s->log_pool = NULL;
    if (s->log_fd >= 0)
        sched_log_write_now(s);
    sched_route_close(s);
    if (s->log_fd >= 0) {
        sched_log_write_now(s);
        close(s->log_fd);
    }
    for (size_t k = 0; s->slots != NULL && k < s->cap; k++)
        if (s->slots[k] != NULL)
            sched_msg_free(s->slots[k]);
    free(s->slots);
    free(s->heap);
    free(s->logbuf);
    free(s->syncbuf);
    queue_inject_close(s->inject);
    if (s->timer != NULL)
        event_free(s->timer);
    if (s->flush_ev != NULL)
        event_free(s->flush_ev);
    int fds[] = {s->queue_fd, s->corrupt_fd, s->state_fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(s->spool);
    free(s);
}
