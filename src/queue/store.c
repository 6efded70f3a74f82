/* store: the durable queue on disk, its write-ahead log and group commit (DESIGN §4,
 * doc/QUEUE.md): opening and closing a worker's store, and the completions that carry each
 * commit's answer from the sync thread back to the event loop. The parts: store_msg.c
 * (queue_msg_*, queue_file_read), store_sync.c (the sync thread), store_recover.c (the
 * master's spool preparation and recovery); their shared state is in store_priv.h.
 * Called by each worker (open, close, stats) on its event loop.
 * Invariants:
 * - callbacks run on the event loop thread only, never from inside queue_msg_commit;
 * - each store writes only in its own incoming/<pid>/ and wal/<pid>-*, so a dead worker's
 *   files are known by its pid (queue_store_recover_worker);
 * - on return from queue_store_close every message it acknowledged is in queue/, unless
 *   the checkpoint failed: then its segments stay for recovery. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/store_priv.h"

/* ---- completions (loop thread) ---- */

void store_post_done(struct queue_store *qs, struct queue_msg *list)
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

/* incoming/<pid>/: this store's own directory, so that the workers do not contend on the
 * lock of one directory and a dead worker's files are known by its pid. It may exist
 * already, left by a dead worker whose pid this process got and whose recovery failed: its
 * files are then never acknowledged or covered by segments the recovery will find. */
static int store_open_incoming(struct queue_store *qs)
{
    char name[STORE_PID_NAME];
    store_pid_name(qs->pid, name);
    if (mkdirat(qs->incoming_root_fd, name, 0700) != 0 && errno != EEXIST)
        return errno;
    qs->incoming_fd =
        openat(qs->incoming_root_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return qs->incoming_fd < 0 ? errno : 0;
}

static int store_open_fds(struct queue_store *qs, const char *spool, struct event_base *base)
{
    int spool_fd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (spool_fd < 0)
        return errno;
    int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    qs->incoming_root_fd = openat(spool_fd, "incoming", flags);
    int err = qs->incoming_root_fd < 0 ? errno : 0;
    if (err == 0)
        err = store_open_incoming(qs);
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
    if (qs->incoming_fd >= 0) {
        close(qs->incoming_fd);
        /* Empty when every message went to queue/ or was dropped; otherwise a failed
         * checkpoint left files that the log covers, and the directory stays with them. */
        char name[STORE_PID_NAME];
        store_pid_name(qs->pid, name);
        unlinkat(qs->incoming_root_fd, name, AT_REMOVEDIR);
    }
    if (qs->incoming_root_fd >= 0)
        close(qs->incoming_root_fd);
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
    qs->incoming_root_fd = qs->incoming_fd = qs->queue_fd = qs->wal_fd = qs->wake_fd = -1;
    qs->ck_fd = -1;
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
