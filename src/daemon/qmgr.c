/* qmgr: the queue manager process (DESIGN §1), forked by the master, one per server.
 * Wiring only: the event loop, the directory, the scheduler, inotify on queue/ (the
 * notification: every file reaches queue/ by a rename, from a worker's checkpoint, the
 * master's recovery or our own injection), the periodic rescan (the safety net), and the
 * control socket <spool>/public/control (queue/ctl.h) for `sluice queue`, `mailq` and
 * `sluice sendmail`. Calls conf, dir, queue/scheduler, queue/inject, queue/ctl.
 * Invariants: administrative requests are served only to root or our own user (peer
 * credentials); anyone may submit; every request and input is bounded (line length, number
 * of connections, message size, an idle timeout). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "daemon/daemon.h"
#include "dir/dir.h"
#include "queue/ctl.h"
#include "queue/inject.h"
#include "queue/scheduler.h"
#include "queue/store.h"
#include "smtp/addr.h"
#include "util/date.h"
#include "util/log.h"

#define QMGR_CTL_CONNS_MAX 32
#define QMGR_CTL_IDLE_SECONDS 30
#define QMGR_STOP_WAIT_MS 10000

struct qmgr {
    struct event_base *base;
    const struct config *cfg;
    struct sched *sched;
    struct queue_inject *inject;
    int inotify_fd;
    struct event *inotify_ev, *rescan_ev, *term_ev, *int_ev;
    struct evconnlistener *ctl;
    char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    unsigned nconns;
    struct qmgr_ctl *conns;
};

enum qmgr_ctl_state { QMGR_CTL_REQUEST, QMGR_CTL_ENVELOPE, QMGR_CTL_DATA, QMGR_CTL_CLOSING };

struct qmgr_ctl {
    struct qmgr *q;
    struct qmgr_ctl *next, *prev; /* in q->conns */
    struct bufferevent *bev;
    uid_t uid;
    pid_t pid;
    enum qmgr_ctl_state state;
    char *sender;
    char **rcpts;
    size_t nrcpts;
    uint64_t left;          /* message octets still to come */
    bool utf8;              /* an address needs SMTPUTF8 (RFC 6531) */
    struct queue_msg *msg;  /* submit in progress */
    char id[ID_LEN + 1];
};

static void qmgr_ctl_free(struct qmgr_ctl *c)
{
    if (c->msg != NULL)
        queue_msg_abort(c->msg);
    for (size_t i = 0; i < c->nrcpts; i++)
        free(c->rcpts[i]);
    free(c->rcpts);
    free(c->sender);
    bufferevent_free(c->bev);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->q->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->q->nconns--;
    free(c);
}

static void qmgr_ctl_write_cb(struct bufferevent *bev, void *arg)
{
    struct qmgr_ctl *c = arg;
    if (c->state == QMGR_CTL_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        qmgr_ctl_free(c);
}

static void qmgr_ctl_reply(struct qmgr_ctl *c, bool ok, const char *code, const char *text)
{
    char line[CTL_LINE_MAX];
    size_t len;
    if (ctl_reply_format(ok, code, text, line, sizeof line, &len) == 0)
        bufferevent_write(c->bev, line, len);
    c->state = QMGR_CTL_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    qmgr_ctl_write_cb(c->bev, c);
}

static void qmgr_ctl_list_fn(const struct ctl_msg_info *m, const struct ctl_rcpt_info *rcpts,
                             size_t nrcpts, void *arg)
{
    struct qmgr_ctl *c = arg;
    char line[CTL_LINE_MAX];
    size_t len;
    if (ctl_msg_format(m, line, sizeof line, &len) == 0)
        bufferevent_write(c->bev, line, len);
    for (size_t i = 0; i < nrcpts; i++)
        if (ctl_rcpt_format(&rcpts[i], line, sizeof line, &len) == 0)
            bufferevent_write(c->bev, line, len);
}

static const char *const qmgr_verbs[] = {
    [CTL_LIST] = "list",       [CTL_SHOW] = "show",       [CTL_FLUSH] = "flush",
    [CTL_HOLD] = "hold",       [CTL_RELEASE] = "release", [CTL_DELETE] = "delete",
    [CTL_SUBMIT] = "submit",
};

static bool qmgr_ctl_admin(const struct qmgr_ctl *c)
{
    return c->uid == 0 || c->uid == geteuid();
}

static void qmgr_ctl_request(struct qmgr_ctl *c, const char *line, size_t len)
{
    struct ctl_request rq;
    struct sched *s = c->q->sched;
    const char *id;
    int rc = 0;

    if (ctl_request_parse(line, len, &rq) != 0) {
        qmgr_ctl_reply(c, false, "5.5.2", "bad request");
        return;
    }
    if (rq.verb == CTL_SUBMIT) {
        c->state = QMGR_CTL_ENVELOPE;
        return;
    }
    if (!qmgr_ctl_admin(c)) {
        log_event("ctl_refused", "uid=%u verb=%s", (unsigned)c->uid, qmgr_verbs[rq.verb]);
        qmgr_ctl_reply(c, false, "5.7.1", "permission denied");
        return;
    }
    id = rq.id[0] != '\0' ? rq.id : NULL;
    switch (rq.verb) {
    case CTL_LIST:
    case CTL_SHOW:
        rc = sched_list(s, id, qmgr_ctl_list_fn, c);
        break;
    case CTL_FLUSH:
        rc = sched_flush(s, id);
        break;
    case CTL_HOLD:
        rc = sched_hold(s, id);
        break;
    case CTL_RELEASE:
        rc = sched_release(s, id);
        break;
    case CTL_DELETE:
        rc = sched_delete(s, id);
        break;
    case CTL_SUBMIT:
        break;
    }
    log_event("ctl", "uid=%u verb=%s id=%s result=%s", (unsigned)c->uid, qmgr_verbs[rq.verb],
              id != NULL ? id : "-", rc == 0 ? "ok" : strerror(errno));
    if (rc != 0)
        qmgr_ctl_reply(c, false, errno == ENOENT ? "5.1.0" : "4.3.0",
                       errno == ENOENT ? "no such message" : strerror(errno));
    else
        qmgr_ctl_reply(c, true, NULL, NULL);
}

/* The message starts with our trace field, like every message in the queue (RFC 5321
 * §4.4): local submission by uid, with the queue id. */
static int qmgr_ctl_begin(struct qmgr_ctl *c)
{
    const struct config *cfg = c->q->cfg;
    struct queue_rcpt *qr = calloc(c->nrcpts, sizeof *qr);
    if (qr == NULL)
        return -1;
    for (size_t i = 0; i < c->nrcpts; i++)
        qr[i] = (struct queue_rcpt){.addr = c->rcpts[i]};
    struct queue_envelope env = {
        .sender = c->sender,
        .rcpts = qr,
        .nrcpts = c->nrcpts,
        .body = PROTO_BODY_8BITMIME,
        .smtputf8 = c->utf8,
        .helo = cfg->hostname,
        .listener = "sendmail",
        .arrival = (int64_t)time(NULL),
    };
    c->msg = queue_inject_begin(c->q->inject, &env, c->id);
    free(qr);
    if (c->msg == NULL)
        return -1;
    char date[DATE_RFC5322_LEN], rec[512];
    date_rfc5322(date, (int64_t)time(NULL));
    int n = snprintf(rec, sizeof rec,
                     "Received: by %s (Sluice, from userid %u)\r\n\tid %s; %s\r\n",
                     cfg->hostname != NULL ? cfg->hostname : "localhost", (unsigned)c->uid, c->id,
                     date);
    if (n < 0 || (size_t)n >= sizeof rec || queue_msg_write(c->msg, rec, (size_t)n) != 0)
        return -1;
    return 0;
}

static void qmgr_ctl_commit(struct qmgr_ctl *c)
{
    struct queue_msg *m = c->msg;
    c->msg = NULL;
    if (queue_inject_commit(c->q->inject, m) != 0) {
        log_event("submit_error", "uid=%u error=%s", (unsigned)c->uid, strerror(errno));
        qmgr_ctl_reply(c, false, "4.3.0", "cannot queue the message");
        return;
    }
    char from[300];
    log_event("submitted", "id=%s uid=%u from=<%s> nrcpt=%zu", c->id, (unsigned)c->uid,
              log_value(from, sizeof from, c->sender, strlen(c->sender)), c->nrcpts);
    sched_notice(c->q->sched, c->id);
    qmgr_ctl_reply(c, true, NULL, c->id);
}

/* The same path rules as an SMTP session's (RFC 5321 §4.1.2, RFC 6531): local
 * submission gets no address the SMTP listeners would refuse. */
static bool qmgr_ctl_addr_ok(struct qmgr_ctl *c, const char *a, unsigned flags)
{
    char path[ADDR_PATH_MAX + 3];
    struct addr_path p;
    size_t used;
    int n = snprintf(path, sizeof path, "<%s>", a);
    if (n < 0 || (size_t)n >= sizeof path ||
        addr_parse_path(path, (size_t)n, flags | ADDR_ALLOW_UTF8, &p, &used) != ADDR_OK ||
        used != (size_t)n || p.had_route)
        return false;
    c->utf8 = c->utf8 || p.utf8;
    return true;
}

static void qmgr_ctl_envelope(struct qmgr_ctl *c, const char *line, size_t len)
{
    struct ctl_line cl;
    char *buf = malloc(len + 1);
    if (buf == NULL || ctl_line_parse(line, len, &cl, buf, len + 1) != 0) {
        free(buf);
        qmgr_ctl_reply(c, false, "5.5.2", "bad submit line");
        return;
    }
    if ((cl.kind == CTL_LINE_FROM && !qmgr_ctl_addr_ok(c, cl.text, ADDR_ALLOW_NULL)) ||
        (cl.kind == CTL_LINE_TO && !qmgr_ctl_addr_ok(c, cl.text, ADDR_ALLOW_POSTMASTER))) {
        free(buf);
        qmgr_ctl_reply(c, false, "5.1.3", "bad address syntax");
        return;
    }
    if (cl.kind == CTL_LINE_FROM && c->sender == NULL) {
        c->sender = strdup(cl.text);
    } else if (cl.kind == CTL_LINE_TO && c->sender != NULL && c->nrcpts < CTL_SUBMIT_RCPTS_MAX) {
        char **n = realloc(c->rcpts, (c->nrcpts + 1) * sizeof *n);
        if (n != NULL) {
            c->rcpts = n;
            c->rcpts[c->nrcpts] = strdup(cl.text);
            if (c->rcpts[c->nrcpts] != NULL)
                c->nrcpts++;
        }
    } else if (cl.kind == CTL_LINE_DATA && c->nrcpts > 0) {
        free(buf);
        if (cl.size > c->q->cfg->limits.message_size) {
            qmgr_ctl_reply(c, false, "5.3.4", "message too big");
            return;
        }
        if (qmgr_ctl_begin(c) != 0) {
            qmgr_ctl_reply(c, false, "4.3.0", "cannot queue the message");
            return;
        }
        c->left = cl.size;
        c->state = QMGR_CTL_DATA;
        if (c->left == 0)
            qmgr_ctl_commit(c);
        return;
    } else {
        free(buf);
        qmgr_ctl_reply(c, false, "5.5.1", "submit lines out of order or too many");
        return;
    }
    free(buf);
}

static void qmgr_ctl_read_cb(struct bufferevent *bev, void *arg)
{
    struct qmgr_ctl *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (c->state != QMGR_CTL_CLOSING) {
        if (c->state == QMGR_CTL_DATA) {
            size_t have = evbuffer_get_length(in);
            if (have == 0)
                return;
            size_t take = have < c->left ? have : (size_t)c->left;
            unsigned char *p = evbuffer_pullup(in, (ssize_t)take);
            if (queue_msg_write(c->msg, p, take) != 0) {
                qmgr_ctl_reply(c, false, errno == ENOSPC ? "4.3.1" : "4.3.0",
                               "cannot queue the message");
                return;
            }
            evbuffer_drain(in, take);
            c->left -= take;
            if (c->left == 0)
                qmgr_ctl_commit(c);
            continue;
        }
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
        if (line == NULL) {
            if (evbuffer_get_length(in) >= CTL_LINE_MAX)
                qmgr_ctl_reply(c, false, "5.5.2", "line too long");
            return;
        }
        if (len >= CTL_LINE_MAX)
            qmgr_ctl_reply(c, false, "5.5.2", "line too long");
        else if (c->state == QMGR_CTL_REQUEST)
            qmgr_ctl_request(c, line, len);
        else
            qmgr_ctl_envelope(c, line, len);
        free(line);
    }
}

static void qmgr_ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct qmgr_ctl *c = arg;
    /* A client that half-closes after its request still gets the answer. */
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && c->state == QMGR_CTL_CLOSING &&
        evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        bufferevent_disable(bev, EV_READ);
        return;
    }
    /* EOF, error or idle timeout: a submit not finished is dropped (never queued). */
    qmgr_ctl_free(c);
}

static void qmgr_ctl_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                            int salen, void *arg)
{
    struct qmgr *q = arg;
    struct ucred cred;
    socklen_t clen = sizeof cred;
    (void)l;
    (void)sa;
    (void)salen;
    if (q->nconns >= QMGR_CTL_CONNS_MAX ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
        close(fd);
        return;
    }
    struct qmgr_ctl *c = calloc(1, sizeof *c);
    struct bufferevent *bev =
        c != NULL ? bufferevent_socket_new(q->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (bev == NULL) {
        free(c);
        close(fd);
        return;
    }
    *c = (struct qmgr_ctl){.q = q, .bev = bev, .uid = cred.uid, .pid = cred.pid, .next = q->conns};
    if (q->conns != NULL)
        q->conns->prev = c;
    q->conns = c;
    q->nconns++;
    struct timeval idle = {QMGR_CTL_IDLE_SECONDS, 0};
    bufferevent_set_timeouts(bev, &idle, &idle);
    bufferevent_setcb(bev, qmgr_ctl_read_cb, qmgr_ctl_write_cb, qmgr_ctl_event_cb, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* <spool>/public/ lets anyone reach the socket (submission) without listing the spool;
 * the spool itself becomes 0711 for that, every other directory in it stays 0700. */
static int qmgr_ctl_open(struct qmgr *q)
{
    char dir[4096];
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(dir, sizeof dir, "%s/public", q->cfg->spool);
    if ((mkdir(dir, 0711) != 0 && errno != EEXIST) || chmod(dir, 0711) != 0 ||
        chmod(q->cfg->spool, 0711) != 0)
        return -1;
    if (snprintf(q->ctl_path, sizeof q->ctl_path, "%s/control", dir) >= (int)sizeof q->ctl_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(un.sun_path, q->ctl_path, strlen(q->ctl_path) + 1);
    unlink(q->ctl_path);
    mode_t old = umask(0);
    q->ctl = evconnlistener_new_bind(q->base, qmgr_ctl_accept, q,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64,
                                     (struct sockaddr *)&un, sizeof un);
    umask(old);
    return q->ctl != NULL ? 0 : -1;
}

static void qmgr_inotify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct qmgr *q = arg;
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    (void)what;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (ev->mask & IN_Q_OVERFLOW)
                sched_rescan(q->sched);
            else if (ev->len > 0)
                sched_notice(q->sched, ev->name);
            p += sizeof *ev + ev->len;
        }
    }
}

static void qmgr_rescan_cb(evutil_socket_t fd, short what, void *arg)
{
    struct qmgr *q = arg;
    (void)fd;
    (void)what;
    sched_rescan(q->sched);
}

static void qmgr_stop_cb(evutil_socket_t sig, short what, void *arg)
{
    struct qmgr *q = arg;
    (void)what;
    log_event("qmgr_stopping", "signal=%d", (int)sig);
    event_base_loopbreak(q->base);
}

/* Paths named in the configuration exist from the start; what the templates add below
 * them is made per mailbox (sched_route), and a configured prefix that vanishes later
 * (an unmounted disk) defers mail instead of recreating it. */
static void qmgr_maildir_prefix(const char *tmpl)
{
    char path[4096];
    const char *pct = tmpl != NULL ? strchr(tmpl, '%') : NULL;
    if (pct == NULL)
        return;
    size_t n = (size_t)(pct - tmpl);
    while (n > 0 && tmpl[n - 1] != '/')
        n--;
    if (n <= 1 || n >= sizeof path)
        return;
    memcpy(path, tmpl, n - 1);
    path[n - 1] = '\0';
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    if (mkdir(path, 0755) == 0)
        log_event("maildir_created", "path=%s", path);
}

int qmgr_main(const struct config *cfg)
{
    struct qmgr q = {.cfg = cfg, .inotify_fd = -1};
    char err[512], path[4096];
    sigset_t set;
    int rc = 1;

    /* A master killed outright takes the queue manager with it: a new master must not
     * start a second one beside it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    log_init("sluiced/qmgr");
    daemon_worker_signals(&set);
    q.base = event_base_new();
    struct dir *d = dir_open(cfg, err, sizeof err);
    if (q.base == NULL || d == NULL) {
        log_event("qmgr_error", "error=\"%s\"", d == NULL ? err : "event base");
        goto out;
    }
    qmgr_maildir_prefix(cfg->delivery.maildir != NULL ? cfg->delivery.maildir : "/var/mail/%d/%u");
    for (size_t i = 0; i < cfg->ndomains; i++)
        qmgr_maildir_prefix(cfg->domain_delivery[i].maildir);
    q.sched = sched_open(q.base, cfg, d, err, sizeof err);
    q.inject = queue_inject_open(cfg->spool);
    if (q.sched == NULL || q.inject == NULL) {
        log_event("qmgr_error", "error=\"%s\"", q.sched == NULL ? err : strerror(errno));
        goto out;
    }
    snprintf(path, sizeof path, "%s/queue", cfg->spool);
    q.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (q.inotify_fd < 0 || inotify_add_watch(q.inotify_fd, path, IN_MOVED_TO) < 0) {
        log_event("qmgr_error", "error=\"inotify: %s\"", strerror(errno));
        goto out;
    }
    if (qmgr_ctl_open(&q) != 0) {
        log_event("qmgr_error", "error=\"control socket %s: %s\"", q.ctl_path, strerror(errno));
        goto out;
    }
    q.inotify_ev = event_new(q.base, q.inotify_fd, EV_READ | EV_PERSIST, qmgr_inotify_cb, &q);
    q.rescan_ev = event_new(q.base, -1, EV_PERSIST, qmgr_rescan_cb, &q);
    q.term_ev = evsignal_new(q.base, SIGTERM, qmgr_stop_cb, &q);
    q.int_ev = evsignal_new(q.base, SIGINT, qmgr_stop_cb, &q);
    struct timeval rescan = {cfg->delivery.rescan / 1000, (cfg->delivery.rescan % 1000) * 1000};
    event_add(q.inotify_ev, NULL);
    event_add(q.rescan_ev, &rescan);
    event_add(q.term_ev, NULL);
    event_add(q.int_ev, NULL);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    /* Files that arrived between the scan in sched_open and the watch. */
    sched_rescan(q.sched);
    log_event("qmgr_start", "spool=%s hold=%s", cfg->spool, cfg->delivery.hold ? "yes" : "no");
    event_base_dispatch(q.base);
    rc = 0;
out:
    if (q.ctl != NULL) {
        evconnlistener_free(q.ctl);
        unlink(q.ctl_path);
    }
    while (q.conns != NULL)
        qmgr_ctl_free(q.conns);
    sched_close(q.sched, QMGR_STOP_WAIT_MS);
    queue_inject_close(q.inject);
    if (q.inotify_ev != NULL)
        event_free(q.inotify_ev);
    if (q.rescan_ev != NULL)
        event_free(q.rescan_ev);
    if (q.term_ev != NULL)
        event_free(q.term_ev);
    if (q.int_ev != NULL)
        event_free(q.int_ev);
    if (q.inotify_fd >= 0)
        close(q.inotify_fd);
    dir_close(d);
    if (q.base != NULL)
        event_base_free(q.base);
    log_event("qmgr_stop", "status=%d", rc);
    return rc;
}
