/* master: the sluiced supervisor. Prepares the spool (lock, crash leftovers, recovery of
 * the log), creates the first-start TLS certificate, binds the listeners, drops privileges,
 * forks one worker per core and restarts any that dies, after putting the messages the dead
 * worker acknowledged in queue/. SIGHUP re-reads the configuration and replaces the workers
 * by new ones while the old ones serve their live sessions to the end; SIGTERM or SIGINT
 * drains every worker and exits 0. It also runs the one queue manager (daemon/qmgr), restarted
 * after a crash and replaced on reload. Calls conf, queue/store, net, dir (the check of a
 * configuration), sasl/jwt_keys (the same), daemon/worker, qmgr. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/daemon.h"
#include "dir/dir.h"
#include "net/listener.h"
#include "net/tls.h"
#include "queue/store.h"
#include "sasl/jwt_keys.h"
#include "util/log.h"

#define MASTER_MAX_WORKERS 256
#define MASTER_RESTART_DELAY_MS 1000

struct master_socket {
    char *address;
    int fd;
};

struct master_worker {
    pid_t pid;                 /* 0 = slot free */
    unsigned index;
    unsigned generation;
    time_t started;
};

struct master {
    struct event_base *base;
    struct config *cfg;
    const char *conf_path;
    unsigned generation;
    struct master_socket *socks;
    size_t nsocks;
    struct master_worker workers[MASTER_MAX_WORKERS];
    struct event *restart;
    bool stopping;
    pid_t qmgr;                /* the queue manager; 0 = none running */
    struct event *qmgr_restart;
};

static unsigned master_worker_count(const struct config *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers < MASTER_MAX_WORKERS / 2 ? cfg->workers : MASTER_MAX_WORKERS / 2;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > MASTER_MAX_WORKERS / 2 ? MASTER_MAX_WORKERS / 2 : (unsigned)n);
}

static int master_socket_for(struct master *m, const char *address)
{
    for (size_t i = 0; i < m->nsocks; i++)
        if (strcmp(m->socks[i].address, address) == 0)
            return m->socks[i].fd;
    return -1;
}

/* Binds what cfg needs that is not bound yet and closes what it no longer lists. */
static int master_bind(struct master *m, const struct config *cfg)
{
    char err[300];
    struct master_socket *ns = calloc(cfg->nlisteners, sizeof *ns);
    if (ns == NULL)
        return -1;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        int fd = master_socket_for(m, cfg->listeners[i].address);
        if (fd < 0)
            fd = listener_bind(cfg->listeners[i].address, err, sizeof err);
        if (fd < 0) {
            log_event("bind_error", "listener=%s error=\"%s\"", cfg->listeners[i].name, err);
            for (size_t j = 0; j < i; j++)
                if (master_socket_for(m, ns[j].address) != ns[j].fd)
                    close(ns[j].fd);
            for (size_t j = 0; j < i; j++)
                free(ns[j].address);
            free(ns);
            return -1;
        }
        ns[i].fd = fd;
        ns[i].address = strdup(cfg->listeners[i].address);
        log_event("listen", "listener=%s address=%s tls=%d", cfg->listeners[i].name,
                  cfg->listeners[i].address, (int)cfg->listeners[i].tls);
    }
    for (size_t i = 0; i < m->nsocks; i++) {
        bool kept = false;
        for (size_t j = 0; j < cfg->nlisteners; j++)
            kept = kept || ns[j].fd == m->socks[i].fd;
        if (!kept)
            close(m->socks[i].fd);
        free(m->socks[i].address);
    }
    free(m->socks);
    m->socks = ns;
    m->nsocks = cfg->nlisteners;
    return 0;
}

static int master_tls(const struct config *cfg)
{
    char err[300];
    if (cfg->tls_certificate == NULL || cfg->tls_key == NULL || !cfg->tls_self_signed)
        return 0;
    if (tls_ensure_self_signed(cfg->tls_certificate, cfg->tls_key, cfg->hostname, err,
                               sizeof err) != 0) {
        log_event("tls_error", "error=\"%s\"", err);
        return -1;
    }
    return 0;
}

/* Workers open the directory themselves; the master checks it first so that a broken file
 * stops a start or a reload with its line number instead of a crash loop of workers. It also
 * creates the SQLite store on first start; started as root with a `user`, it hands the files
 * to that user, who must be able to write the store's -wal and -shm beside it. */
static int master_check_directory(const struct config *cfg)
{
    char err[512];
    struct dir *d = dir_open(cfg, err, sizeof err);
    if (d == NULL) {
        log_event("directory_error", "error=\"%s\"", err);
        return -1;
    }
    dir_close(d);
    char path[4096];
    struct passwd *pw = cfg->user != NULL && getuid() == 0 ? getpwnam(cfg->user) : NULL;
    if (pw == NULL || dir_sqlite_path(cfg, path, sizeof path - 8) != 0)
        return 0;
    size_t n = strlen(path);
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path + n, sizeof path - n, "%s", suffix[i]);
        if (chown(path, pw->pw_uid, pw->pw_gid) != 0 && errno != ENOENT) {
            log_event("directory_error", "path=%s error=%s", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

enum master_child { MASTER_CHILD_WORKER, MASTER_CHILD_QMGR };

/* Fork a worker or the queue manager; the child never returns. A stop or retire signal
 * that lands between fork() and the child's own handlers would hit the master's handlers
 * in the child and be lost: they stay held until the child has its handlers (worker_main
 * and qmgr_main unblock them). */
static pid_t master_fork(struct master *m, enum master_child kind, unsigned index)
{
    sigset_t hold, old;
    daemon_worker_signals(&hold);
    sigprocmask(SIG_BLOCK, &hold, &old);
    pid_t pid = fork();
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        log_event("fork_error", "what=%s error=%s", kind == MASTER_CHILD_QMGR ? "qmgr" : "worker",
                  strerror(errno));
        return -1;
    }
    if (pid > 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        return pid;
    }
    int *wfds = calloc(m->nsocks ? m->nsocks : 1, sizeof *wfds);
    if (wfds == NULL)
        _exit(1);
    for (size_t i = 0; i < m->nsocks; i++) {
        wfds[i] = m->socks[i].fd;
        if (kind == MASTER_CHILD_QMGR)
            close(wfds[i]); /* the queue manager serves no SMTP */
    }
    /* The master's loop and signal handlers belong to the master: reinit gives the child
     * its own kernel objects so that freeing them cannot touch the master's. */
    event_reinit(m->base);
    event_base_free(m->base);
    if (kind == MASTER_CHILD_QMGR) {
        free(wfds);
        _exit(qmgr_main(m->cfg));
    }
    _exit(worker_main(m->cfg, wfds, index));
}

static void master_spawn(struct master *m, unsigned index)
{
    size_t slot = 0;
    while (slot < MASTER_MAX_WORKERS && m->workers[slot].pid != 0)
        slot++;
    if (slot == MASTER_MAX_WORKERS)
        return;
    pid_t pid = master_fork(m, MASTER_CHILD_WORKER, index);
    if (pid < 0)
        return;
    m->workers[slot] = (struct master_worker){pid, index, m->generation, time(NULL)};
    log_event("worker_spawn", "index=%u pid=%d generation=%u", index, (int)pid, m->generation);
}

/* One queue manager at a time, ever: two would deliver the same messages. A new one
 * (after a crash, or a reload) starts only once the old one is reaped. */
static void master_spawn_qmgr(struct master *m)
{
    if (m->qmgr != 0 || m->stopping)
        return;
    pid_t pid = master_fork(m, MASTER_CHILD_QMGR, 0);
    if (pid < 0)
        return;
    m->qmgr = pid;
    log_event("qmgr_spawn", "pid=%d generation=%u", (int)pid, m->generation);
}

static void master_qmgr_restart_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    master_spawn_qmgr(arg);
}

static void master_spawn_all(struct master *m)
{
    unsigned n = master_worker_count(m->cfg);
    for (unsigned i = 0; i < n; i++)
        master_spawn(m, i);
}

static size_t master_live(const struct master *m)
{
    size_t n = 0;
    for (size_t i = 0; i < MASTER_MAX_WORKERS; i++)
        n += m->workers[i].pid != 0;
    return n;
}

/* Current-generation worker indexes that have no process: they crashed. */
static void master_restart_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;
    unsigned n = master_worker_count(m->cfg);
    (void)fd;
    (void)what;
    if (m->stopping)
        return;
    for (unsigned idx = 0; idx < n; idx++) {
        bool alive = false;
        for (size_t i = 0; i < MASTER_MAX_WORKERS; i++)
            alive = alive || (m->workers[i].pid != 0 && m->workers[i].index == idx &&
                              m->workers[i].generation == m->generation);
        if (!alive)
            master_spawn(m, idx);
    }
}

/* A dead worker's acknowledged messages wait in its log segments: put them in queue/ now,
 * not at the next start. A worker that exited 0 checkpointed at close and left nothing,
 * unless that checkpoint failed; the call then finds its segments, and otherwise costs one
 * listing of wal/. It runs on the loop before any new fork, so no live worker has the pid. */
static void master_recover_worker(const struct master *m, pid_t pid, bool crashed)
{
    struct queue_store_recovery rec;
    if (queue_store_recover_worker(m->cfg->spool, pid, &rec) != 0)
        log_event("worker_recover_error",
                  "pid=%d error=%s replayed=%llu (left for the recovery at the next start)",
                  (int)pid, strerror(errno), (unsigned long long)rec.replayed);
    else if (crashed || rec.segments > 0)
        log_event("worker_recovered", "pid=%d replayed=%llu skipped=%llu segments=%llu torn=%llu",
                  (int)pid, (unsigned long long)rec.replayed, (unsigned long long)rec.present,
                  (unsigned long long)rec.segments, (unsigned long long)rec.torn);
}

static void master_child_cb(evutil_socket_t sig, short what, void *arg)
{
    struct master *m = arg;
    bool restart = false;
    int status;
    pid_t pid;
    (void)sig;
    (void)what;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == m->qmgr) {
            bool crashed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            log_event(crashed ? "qmgr_crash" : "qmgr_done", "pid=%d %s=%d", (int)pid,
                      WIFSIGNALED(status) ? "signal" : "status",
                      WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            m->qmgr = 0;
            if (!m->stopping) {
                struct timeval tv = {crashed ? MASTER_RESTART_DELAY_MS / 1000 : 0, 0};
                evtimer_add(m->qmgr_restart, &tv);
            }
            continue;
        }
        for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
            struct master_worker *w = &m->workers[i];
            if (w->pid != pid)
                continue;
            bool crashed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            if (crashed)
                log_event("worker_crash", "index=%u pid=%d %s=%d", w->index, (int)pid,
                          WIFSIGNALED(status) ? "signal" : "status",
                          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            else
                log_event("worker_done", "index=%u pid=%d", w->index, (int)pid);
            master_recover_worker(m, pid, crashed);
            if (!m->stopping && w->generation == m->generation)
                restart = true;
            w->pid = 0;
        }
    }
    if (restart) {
        /* A worker that dies at once would otherwise be forked in a tight loop. */
        struct timeval tv = {MASTER_RESTART_DELAY_MS / 1000,
                             (MASTER_RESTART_DELAY_MS % 1000) * 1000};
        evtimer_add(m->restart, &tv);
    }
    if (m->stopping && master_live(m) == 0 && m->qmgr == 0)
        event_base_loopexit(m->base, NULL);
}

static void master_signal_workers(struct master *m, int sig, bool old_only)
{
    for (size_t i = 0; i < MASTER_MAX_WORKERS; i++)
        if (m->workers[i].pid != 0 && (!old_only || m->workers[i].generation != m->generation))
            kill(m->workers[i].pid, sig);
}

static void master_stop_cb(evutil_socket_t sig, short what, void *arg)
{
    struct master *m = arg;
    (void)what;
    if (m->stopping)
        return;
    m->stopping = true;
    log_event("stopping", "signal=%d workers=%zu", (int)sig, master_live(m));
    master_signal_workers(m, SIGTERM, false);
    if (m->qmgr != 0)
        kill(m->qmgr, SIGTERM);
    if (master_live(m) == 0 && m->qmgr == 0)
        event_base_loopexit(m->base, NULL);
}

/* The workers read the token keys as the unprivileged user: so does this check. */
static int master_check_auth(const struct config *cfg)
{
    struct jwt_key *keys;
    size_t n;
    char err[512];
    if (jwt_keys_load(&cfg->auth, &keys, &n, err, sizeof err) != 0) {
        log_event("auth_error", "error=\"%s\"", err);
        return -1;
    }
    jwt_keys_free(keys, n);
    return 0;
}

static void master_reload_cb(evutil_socket_t sig, short what, void *arg)
{
    struct master *m = arg;
    struct conf_errors errs = {0};
    (void)sig;
    (void)what;

    if (m->stopping)
        return;
    struct config *ncfg = conf_load(m->conf_path, &errs);
    if (ncfg == NULL) {
        for (size_t i = 0; i < errs.n; i++)
            log_event("reload_error", "line=%u error=\"%s\"", errs.e[i].line, errs.e[i].msg);
        return;
    }
    if (strcmp(ncfg->spool, m->cfg->spool) != 0 || master_check_directory(ncfg) != 0 ||
        master_tls(ncfg) != 0 || master_check_auth(ncfg) != 0 || master_bind(m, ncfg) != 0) {
        log_event("reload_error", "error=\"spool change, directory, TLS, token key or bind "
                                  "failure; keeping the old configuration\"");
        conf_free(ncfg);
        return;
    }
    conf_free(m->cfg);
    m->cfg = ncfg;
    m->generation++;
    log_event("reload", "generation=%u", m->generation);
    master_spawn_all(m);
    /* Old workers stop accepting and leave when their last session ends (SIGUSR1). The
     * queue manager stops and its successor, with the new configuration, starts when it
     * is reaped. */
    master_signal_workers(m, SIGUSR1, true);
    if (m->qmgr != 0)
        kill(m->qmgr, SIGTERM);
}

static int master_drop_privileges(const char *user)
{
    if (user == NULL || getuid() != 0)
        return 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL || setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        log_event("privileges_error", "user=%s error=%s", user,
                  pw == NULL ? "no such user" : strerror(errno));
        return -1;
    }
    return 0;
}

static void master_close_sockets(struct master *m)
{
    for (size_t i = 0; i < m->nsocks; i++) {
        close(m->socks[i].fd);
        free(m->socks[i].address);
    }
    free(m->socks);
    m->socks = NULL;
    m->nsocks = 0;
}

int master_run(struct config *cfg, const char *conf_path)
{
    struct master m = {.cfg = cfg, .conf_path = conf_path};
    int lock_fd = -1;

    signal(SIGPIPE, SIG_IGN);
    struct queue_store_recovery rec;
    if (queue_store_prepare_recover(cfg->spool, &lock_fd, &rec) != 0) {
        log_event("spool_error", "spool=%s error=%s", cfg->spool, strerror(errno));
        conf_free(cfg);
        return 1;
    }
    if (rec.records > 0 || rec.torn > 0)
        log_event("spool_recovered", "replayed=%llu skipped=%llu segments=%llu torn=%llu",
                  (unsigned long long)rec.replayed, (unsigned long long)rec.present,
                  (unsigned long long)rec.segments, (unsigned long long)rec.torn);
    if (master_check_directory(cfg) != 0 || master_tls(cfg) != 0 || master_bind(&m, cfg) != 0 ||
        master_drop_privileges(cfg->user) != 0 || master_check_auth(cfg) != 0) {
        master_close_sockets(&m);
        conf_free(cfg);
        return 1;
    }
    m.base = event_base_new();
    m.restart = evtimer_new(m.base, master_restart_cb, &m);
    m.qmgr_restart = evtimer_new(m.base, master_qmgr_restart_cb, &m);
    struct event *chld = evsignal_new(m.base, SIGCHLD, master_child_cb, &m);
    struct event *term = evsignal_new(m.base, SIGTERM, master_stop_cb, &m);
    struct event *intr = evsignal_new(m.base, SIGINT, master_stop_cb, &m);
    struct event *hup = evsignal_new(m.base, SIGHUP, master_reload_cb, &m);
    event_add(chld, NULL);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_add(hup, NULL);
    log_event("start", "hostname=%s spool=%s config=%s", cfg->hostname, cfg->spool,
              conf_path != NULL ? conf_path : "embedded");
    master_spawn_qmgr(&m);
    master_spawn_all(&m);
    event_base_dispatch(m.base);
    log_event("stop", "generation=%u", m.generation);
    event_free(chld);
    event_free(term);
    event_free(intr);
    event_free(hup);
    event_free(m.restart);
    event_free(m.qmgr_restart);
    event_base_free(m.base);
    master_close_sockets(&m);
    conf_free(m.cfg);
    close(lock_fd);
    return 0;
}
