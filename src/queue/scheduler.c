/* scheduler: messages in memory and each recipient's state machine (see
 * scheduler.h, doc/QUEUE.md "Delivery"). Called by the queue manager process
 * (daemon/qmgr.c); calls the store's reader and injector, and its own outcome log
 * (sched_log.c), routing (sched_route.c) and bounce (sched_bounce.c) parts.
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

struct sched_msg *sched_find(struct sched *s, const char *id)
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
        /* A retry of the after-sync step (a DSN or an unlink that failed) is due too. */
        sched_mark_check(s, e.m);
    }
    sched_timer_arm(s);
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
            log_event("queue_read_error", "id=%s error=out_of_memory nrcpt=%zu", id,
                      m->env.nrcpts);
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
    DIR *dir = fileio_opendir(s->queue_fd);
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
    sched_dests_sweep(s);
    sched_scan(s, false);
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

void sched_remove(struct sched *s, struct sched_msg *m, const char *why)
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

void sched_msg_check(struct sched *s, struct sched_msg *m)
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
        /* The checks append records of their own (BOUNCED, REMOVED): until none is left. */
        for (int round = 0; round < 4 && (s->loglen > 0 || s->check_head != NULL); round++)
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
