/* worker: one SMTP worker process: an event loop that accepts on the inherited listening
 * sockets and runs sessions (smtp/session) over the queue store, the directory and the TLS
 * context. SIGTERM (or SIGINT) drains: stop accepting, let transactions finish, exit when the
 * last session is gone or after DAEMON_DRAIN_SECONDS. SIGUSR1 (sent when a reload replaces
 * this worker) only stops accepting: live sessions go on to their natural end. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "daemon/daemon.h"
#include "dir/dir.h"
#include "net/listener.h"
#include "net/tls.h"
#include "queue/store.h"
#include "smtp/session.h"
#include "util/log.h"

struct worker {
    struct event_base *base;
    const struct config *cfg;
    struct session_server *srv;
    struct listener **listeners;
    struct accept_ctx *ctx;
    struct event *drain_check;
    int drain_ticks;
    bool draining;                  /* SIGTERM: sessions are being told to leave */
    bool retiring;                  /* SIGUSR1: no new sessions, old ones end on their own */
};

struct accept_ctx {
    struct worker *w;
    const struct conf_listener *l;
};

void daemon_worker_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGUSR1);
}

static void worker_accept_cb(int fd, const struct sockaddr *sa, socklen_t salen, void *arg)
{
    struct accept_ctx *a = arg;
    session_accept(a->w->srv, a->l, fd, sa, salen);
}

static void worker_drain_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    w->drain_ticks++;
    if (session_server_count(w->srv) == 0 ||
        (w->draining && w->drain_ticks > DAEMON_DRAIN_SECONDS * 10))
        event_base_loopexit(w->base, NULL);
}

static void worker_stop_accepting(struct worker *w)
{
    for (size_t i = 0; i < w->cfg->nlisteners; i++) {
        listener_free(w->listeners[i]);
        w->listeners[i] = NULL;
    }
    if (w->drain_check == NULL) {
        struct timeval tv = {0, 100000};
        w->drain_check = event_new(w->base, -1, EV_PERSIST, worker_drain_tick_cb, w);
        event_add(w->drain_check, &tv);
    }
}

static void worker_retire_cb(evutil_socket_t sig, short what, void *arg)
{
    struct worker *w = arg;
    (void)sig;
    (void)what;
    if (w->retiring || w->draining)
        return;
    w->retiring = true;
    log_event("worker_retire", "sessions=%zu", session_server_count(w->srv));
    worker_stop_accepting(w);
}

static void worker_stop_cb(evutil_socket_t sig, short what, void *arg)
{
    struct worker *w = arg;
    (void)what;
    if (w->draining)
        return;
    w->draining = true;
    log_event("worker_drain", "signal=%d sessions=%zu", (int)sig, session_server_count(w->srv));
    w->drain_ticks = 0;
    worker_stop_accepting(w);
    session_server_shutdown(w->srv);
}

int worker_main(const struct config *cfg, const int *fds, unsigned index)
{
    struct worker w = {.cfg = cfg};
    char err[512];
    SSL_CTX *tls = NULL;
    struct dir *dir = NULL;
    struct queue_store *store = NULL;
    int rc = 1;

    /* A master killed outright takes its workers with it, as a crash would (I3). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    log_init("sluiced/worker");

    w.base = event_base_new();
    if (w.base == NULL)
        return 1;
    store = queue_store_open(cfg->spool, w.base);
    if (store == NULL) {
        log_event("worker_error", "what=queue spool=%s error=%m", cfg->spool);
        goto out;
    }
    dir = dir_open(cfg, err, sizeof err);
    if (dir == NULL) {
        log_event("worker_error", "what=directory error=\"%s\"", err);
        goto out;
    }
    /* Tests only (dir/dir_late.c): every directory answer comes this much later. */
    const char *late = getenv("SLUICE_DIR_DELAY_MS");
    if (late != NULL && late[0] != '\0') {
        char *end;
        unsigned long ms = strtoul(late, &end, 10);
        if (*end != '\0' || late[0] < '0' || late[0] > '9' || ms > 60000) {
            log_event("worker_error", "what=SLUICE_DIR_DELAY_MS error=\"not 0 to 60000\"");
            goto out;
        }
        dir = dir_answer_later(dir, w.base, (unsigned)ms);
        if (dir == NULL) {
            log_event("worker_error", "what=directory error=\"out of memory\"");
            goto out;
        }
        log_event("directory_late", "delay_ms=%lu", ms);
    }
    if (cfg->tls_certificate != NULL && cfg->tls_key != NULL) {
        tls = tls_server_ctx(cfg->tls_certificate, cfg->tls_key, err, sizeof err);
        if (tls == NULL)
            log_event("tls_unavailable", "error=\"%s\"", err); /* F5: STARTTLS not offered */
        else if (cfg->auth.external != CONF_EXTERNAL_NONE &&
                 tls_server_ask_client_cert(tls, cfg->auth.client_ca, err, sizeof err) != 0)
            log_event("auth_error", "what=client-ca error=\"%s\"", err);
    }
    w.srv = session_server_new(w.base, cfg, store, dir, tls);
    w.listeners = calloc(cfg->nlisteners, sizeof *w.listeners);
    w.ctx = calloc(cfg->nlisteners, sizeof *w.ctx);
    if (w.srv == NULL || w.listeners == NULL || w.ctx == NULL)
        goto out;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        w.ctx[i].w = &w;
        w.ctx[i].l = &cfg->listeners[i];
        w.listeners[i] = listener_start(w.base, fds[i], worker_accept_cb, &w.ctx[i]);
        if (w.listeners[i] == NULL)
            goto out;
    }
    struct event *term = evsignal_new(w.base, SIGTERM, worker_stop_cb, &w);
    struct event *intr = evsignal_new(w.base, SIGINT, worker_stop_cb, &w);
    struct event *usr1 = evsignal_new(w.base, SIGUSR1, worker_retire_cb, &w);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_add(usr1, NULL);
    sigset_t held;
    daemon_worker_signals(&held);
    sigprocmask(SIG_UNBLOCK, &held, NULL); /* blocked by the master around fork() */
    log_event("worker_start", "index=%u pid=%d", index, (int)getpid());
    event_base_dispatch(w.base);
    event_free(term);
    event_free(intr);
    event_free(usr1);
    rc = 0;
out:
    for (size_t i = 0; w.listeners != NULL && i < cfg->nlisteners; i++)
        listener_free(w.listeners[i]);
    dir_abort_pending(dir); /* the callbacks look for sessions, which go below */
    /* Commits in flight finish (and answer their sessions) before the sessions go; messages
     * still arriving are dropped first, as the store requires. */
    if (w.srv != NULL)
        session_server_abort_messages(w.srv);
    if (store != NULL)
        queue_store_close(store);
    session_server_free(w.srv);
    if (w.drain_check != NULL)
        event_free(w.drain_check);
    free(w.listeners);
    free(w.ctx);
    dir_close(dir);
    SSL_CTX_free(tls);
    event_base_free(w.base);
    log_event("worker_exit", "index=%u rc=%d", index, rc);
    return rc;
}
