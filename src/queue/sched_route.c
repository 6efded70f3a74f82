/* sched_route: where each recipient goes and the jobs that take it there (part of the
 * scheduler, sched_priv.h). Local mailboxes go to the Maildir agent on a thread pool (its
 * fsyncs never block the loop); LMTP domains and remote domains go to the SMTP/LMTP client
 * on the loop, through destinations that cap concurrency and keep idle connections for
 * reuse. Remote domains are found by MX lookup (dns), or all go to the smarthost.
 * Invariants: a recipient is BUSY from the moment a job holds it until its result is
 * recorded; a message is never freed while one of its jobs runs (busy > 0); RFC 5321 §5.1:
 * an MX host that is ourselves and every less preferred one are dropped, and mail whose
 * best MX is ourselves bounces 5.4.6 rather than loop. */
#include "queue/sched_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "deliver/maildir.h"
#include "deliver/smtp_client.h"
#include "dir/dir.h"
#include "dns/dns.h"
#include "net/tls_client.h"
#include "util/log.h"
#include "util/pool.h"

#define SCHED_TXN_RCPTS 100       /* RFC 5321 §4.5.3.1.8: every server takes 100 */
#define SCHED_TARGETS_MAX 20      /* addresses tried for one connection */
#define SCHED_IDLE_SECONDS 5      /* an unused connection is kept this long for reuse */
#define SCHED_DNS_TIMEOUT_MS 30000

enum sched_dest_kind { SCHED_DEST_LOCAL, SCHED_DEST_LMTP, SCHED_DEST_SMTP };

struct sched_conn;

struct sched_job {
    struct sched_job *next;
    struct sched *s;
    struct sched_dest *d;
    struct sched_msg *m;
    uint32_t *idx;                 /* recipients of m */
    size_t n;
    /* Local: computed on the loop, used on a pool thread. */
    char rcpt[1024];               /* copied: the loop may grow m->r meanwhile */
    char mailbox[PATH_MAX];
    size_t fixed_len;              /* the template's part before any %: must exist */
    char queue_path[PATH_MAX];
    struct deliver_result res;
    /* LMTP and SMTP. */
    struct queue_rcpt *rcpts;
    struct smtp_msg msg;
    int body_fd;
};

struct sched_dest {
    char *key;                     /* "local", "lmtp:ADDR", "smtp:DOMAIN", "smarthost" */
    enum sched_dest_kind kind;
    char *domain;                  /* SMTP: the domain to look up; NULL for the smarthost */
    enum smtp_client_tls tls;
    unsigned busy;                 /* jobs holding a connection or a thread */
    unsigned limit;
    struct sched_job *wait_head, **wait_tail;
    struct sched_conn *idle;       /* connections with nothing to do, newest first */
};

struct sched_conn {
    struct sched_conn *next;       /* in d->idle */
    struct sched_conn *all_next, *all_prev; /* in s->conns, every connection */
    struct sched *s;
    struct sched_dest *d;
    struct smtp_conn *c;
    struct smtp_conn_params p;
    struct smtp_client_target targets[SCHED_TARGETS_MAX];
    const char *self[1];
    char failed_target[SMTP_CLIENT_NAME_MAX + 1]; /* whose answer a failed open carries */
    struct sched_job *job;         /* being sent, or waiting for the connection */
    struct dns_query *q;
    struct event *idle_ev;
};

/* ---- destinations ---- */

static struct sched_dest *sched_dest_get(struct sched *s, const char *key,
                                         enum sched_dest_kind kind, const char *domain)
{
    for (size_t i = 0; i < s->ndests; i++)
        if (strcmp(s->dests[i]->key, key) == 0)
            return s->dests[i];
    if (s->ndests == s->dests_cap) {
        size_t ncap = s->dests_cap ? s->dests_cap * 2 : 16;
        struct sched_dest **nd = realloc(s->dests, ncap * sizeof *nd);
        if (nd == NULL)
            return NULL;
        s->dests = nd;
        s->dests_cap = ncap;
    }
    struct sched_dest *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->key = strdup(key);
    d->domain = domain != NULL ? strdup(domain) : NULL;
    if (d->key == NULL || (domain != NULL && d->domain == NULL)) {
        free(d->key);
        free(d->domain);
        free(d);
        return NULL;
    }
    d->kind = kind;
    d->wait_tail = &d->wait_head;
    d->limit = kind == SCHED_DEST_LOCAL ? s->cfg->delivery.local_concurrency * MAILDIR_BATCH
                                         : s->cfg->delivery.destination_concurrency;
    const struct conf_delivery *dc = &s->cfg->delivery;
    enum conf_out_tls t = dc->tls;
    for (size_t i = 0; domain != NULL && i < s->cfg->nremotes; i++)
        if (s->cfg->remotes[i].tls_set && strcmp(s->cfg->remotes[i].domain, domain) == 0)
            t = s->cfg->remotes[i].tls;
    d->tls = t == CONF_OUT_TLS_VERIFY ? SMTP_CLIENT_TLS_VERIFY
             : t == CONF_OUT_TLS_NONE ? SMTP_CLIENT_TLS_NONE
                                      : SMTP_CLIENT_TLS_MAY;
    if (kind == SCHED_DEST_LMTP)
        d->tls = SMTP_CLIENT_TLS_NONE;
    s->dests[s->ndests++] = d;
    return d;
}

static void sched_job_free(struct sched_job *j)
{
    if (j->body_fd >= 0)
        close(j->body_fd);
    free(j->idx);
    free(j->rcpts);
    free(j);
}

static void sched_job_start(struct sched_job *j);

/* The job is over: give each recipient its result, free the job, start what waits. */
static void sched_job_done(struct sched_job *j, const struct deliver_result *results,
                           const char *remote_mta)
{
    struct sched *s = j->s;
    j->m->busy--;
    for (size_t k = 0; k < j->n; k++)
        sched_result(s, j->m, j->idx[k], &results[k], remote_mta);
    sched_job_free(j);
}

static void sched_job_fail_all(struct sched_job *j, const struct deliver_result *res,
                               const char *remote_mta)
{
    struct deliver_result *rs = calloc(j->n, sizeof *rs);
    if (rs == NULL) {
        log_event("sched_error", "id=%s error=out_of_memory", j->m->id);
        exit(75);
    }
    for (size_t k = 0; k < j->n; k++)
        rs[k] = *res;
    sched_job_done(j, rs, remote_mta);
    free(rs);
}

__attribute__((format(printf, 4, 5))) static void
sched_res(struct deliver_result *r, enum deliver_status st, const char *enh, const char *fmt, ...)
{
    va_list ap;
    *r = (struct deliver_result){.status = st};
    snprintf(r->enhanced, sizeof r->enhanced, "%s", enh);
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    va_end(ap);
}

static void sched_dest_put(struct sched *s, struct sched_dest *d)
{
    d->busy--;
    s->in_flight--;
    if (d->kind != SCHED_DEST_LOCAL)
        s->in_flight_remote--;
}

static void sched_dest_release(struct sched *s, struct sched_dest *d)
{
    sched_dest_put(s, d);
    sched_dispatch_waiting(s);
}

static bool sched_may_start(const struct sched *s, const struct sched_dest *d)
{
    return d->busy < d->limit &&
           (d->kind == SCHED_DEST_LOCAL || s->in_flight_remote < s->cfg->delivery.concurrency);
}

/* ---- local delivery (pool thread) ---- */

/* mkdir -p for the part of the path below the template's fixed prefix. The prefix itself
 * must exist: a missing /var/mail (an unmounted disk) defers rather than recreates. */
static int sched_mkdirs(char *path, size_t fixed_len)
{
    struct stat st;
    char *slash = path + fixed_len;
    if (fixed_len > 0) {
        char keep = path[fixed_len];
        path[fixed_len] = '\0';
        int ok = stat(path, &st) == 0;
        path[fixed_len] = keep;
        if (!ok)
            return -1;
    }
    while ((slash = strchr(slash + 1, '/')) != NULL) {
        *slash = '\0';
        int r = mkdir(path, 0700);
        *slash = '/';
        if (r != 0 && errno != EEXIST)
            return -1;
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* A Maildir batch: up to MAILDIR_BATCH local jobs that share their syncs on one thread. */
struct sched_batch {
    size_t n;
    struct sched_job *jobs[MAILDIR_BATCH];
};

static void sched_local_work(void *arg)
{
    struct sched_batch *b = arg;
    struct deliver_request rqs[MAILDIR_BATCH] = {0};
    struct deliver_result outs[MAILDIR_BATCH];
    size_t map[MAILDIR_BATCH], n = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct sched_job *j = b->jobs[i];
        struct stat st;
        /* Only a root that does not exist at all is made; one that exists as anything else
         * is the agent's to refuse (K1), never replaced. */
        if (lstat(j->mailbox, &st) != 0 && errno == ENOENT &&
            sched_mkdirs(j->mailbox, j->fixed_len) != 0) {
            sched_res(&j->res, DELIVER_TEMPFAIL, "4.2.0", "%s",
                      "mailbox directory cannot be created");
            continue;
        }
        rqs[n] = (struct deliver_request){
            .queue_path = j->queue_path,
            .env = &j->m->env,
            .recipient = j->rcpt,
            .mailbox_dir = j->mailbox,
            .verified = true,
            .body_offset = j->m->body_offset,
            .body_len = j->m->body_len,
        };
        map[n++] = i;
    }
    maildir_deliver_batch(rqs, n, outs);
    for (size_t k = 0; k < n; k++)
        b->jobs[map[k]]->res = outs[k];
}

static void sched_local_done(void *arg)
{
    struct sched_batch *b = arg;
    for (size_t i = 0; i < b->n; i++) {
        struct sched_job *j = b->jobs[i];
        struct sched *s = j->s;
        struct sched_dest *d = j->d;
        struct deliver_result res = j->res;
        sched_job_done(j, &res, NULL);
        sched_dest_release(s, d);
    }
    free(b);
}

/* Hand the gathered local jobs to a thread as one batch. */
static void sched_local_submit(struct sched *s)
{
    while (s->nlocal > 0) {
        struct sched_batch *b = malloc(sizeof *b);
        size_t take = s->nlocal < MAILDIR_BATCH ? s->nlocal : MAILDIR_BATCH;
        if (b == NULL) {
            log_event("sched_error", "error=out_of_memory what=batch");
            exit(75);
        }
        b->n = take;
        memcpy(b->jobs, s->local + s->nlocal - take, take * sizeof *b->jobs);
        s->nlocal -= take;
        if (pool_submit(s->pool, sched_local_work, sched_local_done, b) != 0) {
            for (size_t i = 0; i < take; i++)
                sched_res(&b->jobs[i]->res, DELIVER_TEMPFAIL, "4.3.0", "%s", "out of memory");
            sched_local_done(b);
        }
    }
}

static void sched_local_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sched_local_submit(arg);
}

/* ---- LMTP and SMTP ---- */

static void sched_conn_free(struct sched_conn *c)
{
    if (c->all_prev != NULL)
        c->all_prev->all_next = c->all_next;
    else
        c->s->conns = c->all_next;
    if (c->all_next != NULL)
        c->all_next->all_prev = c->all_prev;
    if (c->q != NULL)
        dns_cancel(c->q);
    if (c->c != NULL)
        smtp_conn_close(c->c);
    if (c->idle_ev != NULL)
        event_free(c->idle_ev);
    free(c);
}

static void sched_conn_sent(struct smtp_conn *conn, const struct deliver_result *results,
                            bool reusable, void *arg);

static void sched_conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sched_conn *c = arg;
    (void)fd;
    (void)what;
    for (struct sched_conn **p = &c->d->idle; *p != NULL; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    sched_conn_free(c);
}

static void sched_conn_send(struct sched_conn *c)
{
    struct sched_job *j = c->job;
    smtp_conn_send(c->c, &j->msg, sched_conn_sent, c);
}

static void sched_conn_sent(struct smtp_conn *conn, const struct deliver_result *results,
                            bool reusable, void *arg)
{
    struct sched_conn *c = arg;
    struct sched *s = c->s;
    struct sched_dest *d = c->d;
    struct sched_job *j = c->job;
    const struct smtp_client_target *t = smtp_conn_target(conn);
    char remote[SMTP_CLIENT_NAME_MAX + 1];

    snprintf(remote, sizeof remote, "%s", t != NULL ? t->name : "");
    reusable = reusable && smtp_conn_alive(conn);
    c->job = NULL;
    sched_job_done(j, results, remote[0] != '\0' ? remote : NULL);
    /* Connection reuse: the next job of the same destination rides on this connection. */
    if (reusable && !s->closing && d->wait_head != NULL) {
        c->job = d->wait_head;
        d->wait_head = c->job->next;
        if (d->wait_head == NULL)
            d->wait_tail = &d->wait_head;
        sched_conn_send(c);
        return;
    }
    sched_dest_put(s, d);
    if (reusable && !s->closing) {
        struct timeval tv = {SCHED_IDLE_SECONDS, 0};
        c->next = d->idle;
        d->idle = c;
        evtimer_add(c->idle_ev, &tv);
    } else {
        sched_conn_free(c);
    }
    sched_dispatch_waiting(s);
}

static void sched_conn_ready(struct smtp_conn *conn, const struct deliver_result *err, void *arg)
{
    struct sched_conn *c = arg;
    struct sched *s = c->s;
    struct sched_dest *d = c->d;
    if (conn == NULL) {
        struct sched_job *j = c->job;
        c->job = NULL;
        c->c = NULL;
        /* RFC 3464 §2.3.5: a refusal at the greeting or EHLO names the host that gave it. */
        sched_job_fail_all(j, err, c->failed_target[0] != '\0' ? c->failed_target : NULL);
        sched_conn_free(c);
        sched_dest_release(s, d);
        return;
    }
    sched_conn_send(c);
}

static bool sched_is_self(const struct sched *s, const char *name,
                          const struct sockaddr_storage *sa)
{
    char host[INET6_ADDRSTRLEN], serv[8];
    if (s->cfg->hostname != NULL && strcasecmp(name, s->cfg->hostname) == 0)
        return true;
    if (getnameinfo((const struct sockaddr *)sa, sizeof *sa, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return false;
    for (size_t i = 0; i < s->cfg->nlisteners; i++) {
        const char *a = s->cfg->listeners[i].address;
        const char *colon = strrchr(a, ':');
        if (colon == NULL || strcmp(colon + 1, serv) != 0)
            continue;
        size_t hl = (size_t)(colon - a);
        if (hl >= 2 && a[0] == '[')
            a++, hl -= 2;
        if (hl == strlen(host) && strncasecmp(a, host, hl) == 0)
            return true;
        bool wildcard = (hl == 1 && a[0] == '*') || (hl == 7 && strncmp(a, "0.0.0.0", 7) == 0) ||
                        (hl == 2 && strncmp(a, "::", 2) == 0);
        if (wildcard && (strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0))
            return true;
    }
    return false;
}

static void sched_conn_connect(struct sched_conn *c, size_t ntargets)
{
    const struct conf_delivery *dc = &c->s->cfg->delivery;
    c->self[0] = c->s->cfg->hostname != NULL ? c->s->cfg->hostname : "localhost";
    c->p = (struct smtp_conn_params){
        .lmtp = c->d->kind == SCHED_DEST_LMTP,
        .helo_name = c->self[0],
        .targets = c->targets,
        .ntargets = ntargets,
        .tls = c->d->tls,
        .tls_ctx = c->s->tls_ctx,
        .auth_user = c->d->domain == NULL && c->d->kind == SCHED_DEST_SMTP ? dc->smarthost_user
                                                                           : NULL,
        .auth_password = c->d->domain == NULL && c->d->kind == SCHED_DEST_SMTP
                             ? dc->smarthost_password
                             : NULL,
        .self_names = c->self,
        .nself = 1,
        .failed_target = c->failed_target,
        .timeouts = {
            .connect = dc->connect_timeout,
            .greeting = dc->command_timeout,
            .command = dc->command_timeout,
            .data_init = dc->command_timeout < 120000 ? dc->command_timeout : 120000,
            .data_block = dc->command_timeout < 180000 ? dc->command_timeout : 180000,
            .data_done = dc->data_timeout,
        },
    };
    c->c = smtp_conn_open(c->s->base, &c->p, sched_conn_ready, c);
    if (c->c == NULL) {
        struct deliver_result r;
        sched_res(&r, DELIVER_TEMPFAIL, "4.3.0", "cannot start a connection: %s", strerror(errno));
        sched_conn_ready(NULL, &r, c);
    }
}

static void sched_conn_dns(const struct dns_answer *a, void *arg)
{
    struct sched_conn *c = arg;
    struct deliver_result r;
    const char *dom = c->d->domain != NULL ? c->d->domain : "the smarthost";
    c->q = NULL;
    switch (a->status) {
    case DNS_NULL_MX:
        sched_res(&r, DELIVER_PERMFAIL, "5.1.10", "%s accepts no mail (null MX, RFC 7505)", dom);
        sched_conn_ready(NULL, &r, c);
        return;
    case DNS_NOT_FOUND:
        sched_res(&r, DELIVER_PERMFAIL, "5.1.2", "no mail host for %s", dom);
        sched_conn_ready(NULL, &r, c);
        return;
    case DNS_TEMPFAIL:
        sched_res(&r, DELIVER_TEMPFAIL, "4.4.3", "DNS lookup failed for %s", dom);
        sched_conn_ready(NULL, &r, c);
        return;
    case DNS_OK:
        break;
    }
    size_t nt = 0, usable = a->nhosts;
    bool self = false;
    for (size_t h = 0; h < a->nhosts && !self; h++)
        for (size_t k = 0; k < a->hosts[h].naddrs && !self; k++)
            if (sched_is_self(c->s, a->hosts[h].name, &a->hosts[h].addrs[k])) {
                self = true;
                usable = h;
            }
    /* RFC 5321 §5.1: drop ourselves and every host not strictly more preferred. */
    while (self && usable > 0 && a->hosts[usable - 1].preference >= a->hosts[usable].preference)
        usable--;
    for (size_t h = 0; h < usable; h++) {
        const struct dns_host *host = &a->hosts[h];
        for (size_t k = 0; k < host->naddrs && nt < SCHED_TARGETS_MAX; k++) {
            struct smtp_client_target *t = &c->targets[nt++];
            snprintf(t->name, sizeof t->name, "%s", host->name);
            t->addr = host->addrs[k];
            t->addrlen = host->addrlens[k];
        }
    }
    if (nt == 0) {
        if (self)
            sched_res(&r, DELIVER_PERMFAIL, "5.4.6", "mail for %s loops back to myself", dom);
        else
            sched_res(&r, DELIVER_TEMPFAIL, "4.4.3", "no usable address for %s", dom);
        sched_conn_ready(NULL, &r, c);
        return;
    }
    sched_conn_connect(c, nt);
}

/* "HOST:PORT", "[ADDR]:PORT" or "unix:/path" into a target, when it needs no DNS. */
static int sched_literal_target(const char *spec, struct smtp_client_target *t, char *host,
                                size_t hostcap, uint16_t *port)
{
    memset(t, 0, sizeof *t);
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&t->addr;
        if (strlen(spec + 5) >= sizeof un->sun_path)
            return -1;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, spec + 5, strlen(spec + 5) + 1);
        t->addrlen = sizeof *un;
        snprintf(t->name, sizeof t->name, "%s", spec);
        return 1;
    }
    const char *colon = strrchr(spec, ':');
    if (colon == NULL)
        return -1;
    size_t hl = (size_t)(colon - spec);
    const char *h = spec;
    if (hl >= 2 && spec[0] == '[')
        h++, hl -= 2;
    if (hl >= hostcap)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)strtoul(colon + 1, NULL, 10);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&t->addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&t->addr;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(*port);
        t->addrlen = sizeof *in4;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(*port);
        t->addrlen = sizeof *in6;
    } else {
        return 0; /* a name: resolve it */
    }
    /* An address literal: inet_pton took it, so it is short. */
    size_t al = strnlen(host, INET6_ADDRSTRLEN);
    t->name[0] = '[';
    memcpy(t->name + 1, host, al);
    t->name[al + 1] = ']';
    t->name[al + 2] = '\0';
    return 1;
}

static void sched_conn_new(struct sched *s, struct sched_dest *d, struct sched_job *j)
{
    struct sched_conn *c = calloc(1, sizeof *c);
    struct deliver_result r;
    if (c != NULL)
        c->idle_ev = evtimer_new(s->base, sched_conn_idle_cb, c);
    if (c == NULL || c->idle_ev == NULL) {
        free(c);
        sched_res(&r, DELIVER_TEMPFAIL, "4.3.0", "%s", "out of memory");
        sched_job_fail_all(j, &r, NULL);
        sched_dest_release(s, d);
        return;
    }
    c->s = s;
    c->d = d;
    c->job = j;
    c->all_next = s->conns;
    if (s->conns != NULL)
        s->conns->all_prev = c;
    s->conns = c;
    if (d->kind != SCHED_DEST_LOCAL && d->tls != SMTP_CLIENT_TLS_NONE && s->tls_ctx == NULL) {
        char err[256];
        s->tls_ctx = tls_client_ctx(s->cfg->delivery.tls_ca, err, sizeof err);
        if (s->tls_ctx == NULL) {
            log_event("tls_client_error", "error=\"%s\"", err);
            sched_res(&r, DELIVER_TEMPFAIL, "4.7.5", "%s", "TLS client not available");
            sched_conn_ready(NULL, &r, c);
            return;
        }
    }
    char host[256];
    uint16_t port = (uint16_t)s->cfg->delivery.remote_port;
    const char *spec = d->kind == SCHED_DEST_LMTP ? d->key + 5
                       : d->domain == NULL        ? s->cfg->delivery.smarthost
                                                  : NULL;
    if (spec != NULL) {
        int lit = sched_literal_target(spec, &c->targets[0], host, sizeof host, &port);
        if (lit == 1) {
            sched_conn_connect(c, 1);
            return;
        }
        if (lit < 0) {
            sched_res(&r, DELIVER_TEMPFAIL, "4.3.5", "bad destination %s", spec);
            sched_conn_ready(NULL, &r, c);
            return;
        }
        c->q = dns_host_resolve(s->dns, host, port, sched_conn_dns, c);
    } else {
        c->q = dns_mx_resolve(s->dns, d->domain, port, sched_conn_dns, c);
    }
    if (c->q == NULL) {
        sched_res(&r, DELIVER_PERMFAIL, "5.1.2", "bad destination domain %s",
                  d->domain != NULL ? d->domain : host);
        sched_conn_ready(NULL, &r, c);
    }
}

/* ---- jobs ---- */

static void sched_job_start(struct sched_job *j)
{
    struct sched *s = j->s;
    struct sched_dest *d = j->d;
    d->busy++;
    s->in_flight++;
    if (d->kind == SCHED_DEST_LOCAL) {
        /* Gathered until the current callbacks are done (or a batch is full), so that the
         * deliveries found together share their syncs (maildir_deliver_batch). */
        s->local[s->nlocal++] = j;
        if (s->nlocal == MAILDIR_BATCH)
            sched_local_submit(s);
        else
            event_active(s->local_ev, EV_TIMEOUT, 0);
        return;
    }
    s->in_flight_remote++;
    while (d->idle != NULL) {
        struct sched_conn *c = d->idle;
        d->idle = c->next;
        evtimer_del(c->idle_ev);
        /* The peer may have closed it while it waited (its idle timeout, a 421): that
         * costs a new connection, not a deferral. */
        if (!smtp_conn_alive(c->c)) {
            sched_conn_free(c);
            continue;
        }
        c->job = j;
        sched_conn_send(c);
        return;
    }
    sched_conn_new(s, d, j);
}

static void sched_job_queue(struct sched *s, struct sched_job *j)
{
    struct sched_dest *d = j->d;
    if (d->wait_head == NULL && sched_may_start(s, d)) {
        sched_job_start(j);
        return;
    }
    j->next = NULL;
    *d->wait_tail = j;
    d->wait_tail = &j->next;
}

void sched_dispatch_waiting(struct sched *s)
{
    bool progress = true;
    while (progress && !s->closing) {
        progress = false;
        for (size_t i = 0; i < s->ndests; i++) {
            struct sched_dest *d = s->dests[i];
            if (d->wait_head == NULL || !sched_may_start(s, d))
                continue;
            struct sched_job *j = d->wait_head;
            d->wait_head = j->next;
            if (d->wait_head == NULL)
                d->wait_tail = &d->wait_head;
            sched_job_start(j);
            progress = true;
        }
    }
}

static struct sched_job *sched_job_new(struct sched *s, struct sched_dest *d, struct sched_msg *m)
{
    struct sched_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->s = s;
    j->d = d;
    j->m = m;
    j->body_fd = -1;
    j->idx = malloc(SCHED_TXN_RCPTS * sizeof *j->idx);
    if (j->idx == NULL) {
        free(j);
        return NULL;
    }
    snprintf(j->queue_path, sizeof j->queue_path, "%s/queue/%s", s->spool, m->id);
    return j;
}

/* LMTP and SMTP jobs carry the recipients as an envelope would, and the body's fd. */
static int sched_job_wire(struct sched_job *j)
{
    struct sched_msg *m = j->m;
    j->rcpts = calloc(j->n, sizeof *j->rcpts);
    if (j->rcpts == NULL)
        return -1;
    for (size_t k = 0; k < j->n; k++) {
        const struct sched_rcpt *rc = &m->r[j->idx[k]];
        const struct queue_rcpt *root = &m->env.rcpts[rc->root];
        j->rcpts[k] = (struct queue_rcpt){
            .addr = rc->addr,
            .notify = rc->notify,
            /* RFC 3461 §4.2: an expanded recipient keeps the ORCPT of the original, and
             * an original without one gets its own address. */
            .orcpt = rc->root == j->idx[k] || root->orcpt != NULL ? root->orcpt : NULL,
        };
    }
    j->body_fd = open(j->queue_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (j->body_fd < 0)
        return -1;
    j->msg = (struct smtp_msg){
        .env = &m->env,
        .rcpts = j->rcpts,
        .nrcpts = j->n,
        .body_fd = j->body_fd,
        .body_offset = m->body_offset,
        .body_len = m->body_len,
    };
    return 0;
}

/* Hand a filled LMTP or SMTP job over; without its queue file it fails for now. */
static void sched_job_submit(struct sched *s, struct sched_msg *m, struct sched_job *j)
{
    m->busy++;
    if (sched_job_wire(j) != 0) {
        struct deliver_result r;
        sched_res(&r, DELIVER_TEMPFAIL, "4.3.0", "queue file unreadable: %s", strerror(errno));
        sched_job_fail_all(j, &r, NULL);
        return;
    }
    sched_job_queue(s, j);
}

/* ---- routing ---- */

struct sched_expand {
    bool answered;
    bool loop;          /* a target is the alias itself or one it came from */
    enum dir_result result;
    struct sched *s;
    struct sched_msg *m;
    uint32_t parent;
    size_t added;
    bool too_many;
};

static bool sched_has_rcpt(const struct sched_msg *m, const char *addr)
{
    for (size_t i = 0; i < m->nr; i++)
        if (strcasecmp(m->r[i].addr, addr) == 0)
            return true;
    return false;
}

static void sched_expand_cb(enum dir_result result, const char *const *targets, size_t n,
                            void *arg)
{
    struct sched_expand *x = arg;
    x->answered = true;
    x->result = result;
    for (size_t k = 0; k < n && result == DIR_ALIAS; k++) {
        /* Loop-safe: an address already in the message is never added again, so an alias
         * cycle ends when it comes round. */
        if (sched_has_rcpt(x->m, targets[k])) {
            for (uint32_t a = x->parent;; a = x->m->r[a].parent) {
                if (strcasecmp(x->m->r[a].addr, targets[k]) == 0)
                    x->loop = true;
                if (x->m->r[a].parent == a)
                    break;
            }
            continue;
        }
        long i = sched_rcpt_add(x->s, x->m, targets[k], x->parent);
        if (i < 0) {
            x->too_many = true;
            return;
        }
        sched_log_rcpt(x->s, x->m, QLOG_ADDED, (uint32_t)i);
        x->added++;
    }
}

/* Does the expansion of i's envelope recipient hold anything but aliases (something that
 * is or will be delivered, or failed on its own)? */
static bool sched_tree_has_leaf(const struct sched_msg *m, uint32_t i)
{
    for (size_t k = 0; k < m->nr; k++)
        if (k != i && m->r[k].root == m->r[i].root && m->r[k].state != SCHED_R_EXPANDED)
            return true;
    return false;
}

static void sched_fail_now(struct sched *s, struct sched_msg *m, uint32_t i,
                           enum deliver_status st, const char *enh, const char *text)
{
    struct deliver_result r;
    sched_res(&r, st, enh, "%s", text);
    m->r[i].state = SCHED_R_BUSY;
    sched_result(s, m, i, &r, NULL);
}

static long sched_local_domain(const struct config *cfg, const char *domain)
{
    for (size_t i = 0; i < cfg->ndomains; i++)
        if (strcmp(cfg->domains[i], domain) == 0)
            return (long)i;
    return -1;
}

/* A local recipient: an alias is replaced by its targets, a mailbox gets a job. */
static void sched_route_local(struct sched *s, struct sched_msg *m, uint32_t i, long dom,
                              struct sched_job **lmtp_job)
{
    const struct config *cfg = s->cfg;
    char addr[1024];
    snprintf(addr, sizeof addr, "%s", m->r[i].addr);
    char *at = strrchr(addr, '@');
    const char *domain = at != NULL ? at + 1 : "";
    struct sched_expand x = {.s = s, .m = m, .parent = i};

    if (at == NULL) /* "postmaster" without a domain: RFC 5321 §4.5.1 */
        snprintf(addr, sizeof addr, "postmaster@%s", cfg->ndomains > 0 ? cfg->domains[0]
                                                  : cfg->hostname != NULL ? cfg->hostname
                                                                          : "localhost");
    char full[sizeof addr];
    memcpy(full, addr, sizeof addr);
    at = strrchr(addr, '@');
    *at = '\0';
    const char *local = addr;
    domain = at + 1;
    if (dom < 0)
        dom = sched_local_domain(cfg, domain); /* the bare postmaster's domain settings */
    if (m->r[i].depth >= SCHED_ALIAS_DEPTH) {
        sched_fail_now(s, m, i, DELIVER_PERMFAIL, "5.4.6", "alias nesting too deep");
        return;
    }
    /* The file backend answers from inside dir_expand; an asynchronous backend (issue #4)
     * must keep that promise for the queue manager or be given a callback path here. */
    dir_expand(s->dir, full, sched_expand_cb, &x);
    if (!x.answered || x.result == DIR_TEMPFAIL) {
        sched_fail_now(s, m, i, DELIVER_TEMPFAIL, "4.3.0", "directory lookup failed");
        return;
    }
    if (x.too_many) {
        sched_fail_now(s, m, i, DELIVER_PERMFAIL, "5.3.3", "alias expands to too many recipients");
        return;
    }
    if (x.result == DIR_ALIAS && x.added == 0 && x.loop && !sched_tree_has_leaf(m, i)) {
        /* HOSTILE-INPUTS K4: an alias loop that reaches no mailbox bounces, never vanishes. */
        sched_fail_now(s, m, i, DELIVER_PERMFAIL, "5.4.6", "alias loop");
        return;
    }
    if (x.result == DIR_ALIAS) {
        m->r[i].state = SCHED_R_EXPANDED;
        m->r[i].attempts++;
        sched_log_rcpt(s, m, QLOG_EXPANDED, i);
        log_event("expanded", "id=%s to=<%s> targets=%zu", m->id, m->r[i].addr, x.added);
        sched_mark_check(s, m);
        return;
    }
    bool postmaster = strcasecmp(local, "postmaster") == 0;
    if (x.result == DIR_NOT_FOUND && !postmaster && dom >= 0 &&
        cfg->domain_delivery[dom].lmtp == NULL) {
        sched_fail_now(s, m, i, DELIVER_PERMFAIL, "5.1.1", "no such mailbox");
        return;
    }
    if (dom >= 0 && cfg->domain_delivery[dom].lmtp != NULL) {
        char key[600];
        snprintf(key, sizeof key, "lmtp:%s", cfg->domain_delivery[dom].lmtp);
        struct sched_dest *d = sched_dest_get(s, key, SCHED_DEST_LMTP, NULL);
        struct sched_job *j = *lmtp_job;
        if (d != NULL && (j == NULL || j->d != d || j->n == SCHED_TXN_RCPTS)) {
            if (j != NULL)
                sched_job_submit(s, m, j);
            j = *lmtp_job = sched_job_new(s, d, m);
        }
        if (d == NULL || j == NULL) {
            sched_fail_now(s, m, i, DELIVER_TEMPFAIL, "4.3.0", "out of memory");
            return;
        }
        m->r[i].state = SCHED_R_BUSY;
        j->idx[j->n++] = i;
        return;
    }
    const char *tmpl = dom >= 0 && cfg->domain_delivery[dom].maildir != NULL
                           ? cfg->domain_delivery[dom].maildir
                       : cfg->delivery.maildir != NULL ? cfg->delivery.maildir
                                                       : "/var/mail/%d/%u";
    char lower[512];
    size_t ll = strlen(local);
    if (ll >= sizeof lower) {
        sched_fail_now(s, m, i, DELIVER_PERMFAIL, "5.1.3", "local part too long");
        return;
    }
    for (size_t k = 0; k <= ll; k++)
        lower[k] = (char)(local[k] >= 'A' && local[k] <= 'Z' ? local[k] - 'A' + 'a' : local[k]);
    struct sched_dest *d = sched_dest_get(s, "local", SCHED_DEST_LOCAL, NULL);
    struct sched_job *j = d != NULL ? sched_job_new(s, d, m) : NULL;
    if (j == NULL) {
        sched_fail_now(s, m, i, DELIVER_TEMPFAIL, "4.3.0", "out of memory");
        return;
    }
    if (sched_maildir_path(tmpl, lower, domain, j->mailbox, sizeof j->mailbox) != 0) {
        sched_job_free(j);
        sched_fail_now(s, m, i, DELIVER_PERMFAIL, "5.1.3", "address unusable as a mailbox path");
        return;
    }
    const char *pct = strchr(tmpl, '%');
    j->fixed_len = pct != NULL ? (size_t)(pct - tmpl) : strlen(j->mailbox);
    while (j->fixed_len > 0 && j->mailbox[j->fixed_len - 1] != '/')
        j->fixed_len--;
    if (j->fixed_len > 1)
        j->fixed_len--; /* the directory holding the first templated part */
    snprintf(j->rcpt, sizeof j->rcpt, "%s", m->r[i].addr);
    j->idx[j->n++] = i;
    m->r[i].state = SCHED_R_BUSY;
    m->busy++;
    sched_job_queue(s, j);
}

void sched_dispatch(struct sched *s, struct sched_msg *m, int64_t now)
{
    struct sched_job *lmtp_job = NULL;
    struct sched_job **remote = NULL; /* one open job per destination of this message */
    size_t nremote = 0;

    for (uint32_t i = 0; i < m->nr && !s->closing; i++) {
        struct sched_rcpt *rc = &m->r[i];
        if (rc->state != SCHED_R_PENDING)
            continue;
        if (rc->next_try > now) {
            sched_due(s, m, rc->next_try);
            continue;
        }
        const char *at = strrchr(rc->addr, '@');
        long dom = at != NULL ? sched_local_domain(s->cfg, at + 1) : -1;
        if (at == NULL || dom >= 0) {
            sched_route_local(s, m, i, dom, &lmtp_job);
            continue;
        }
        const char *domain = at + 1;
        char key[600];
        bool smart = s->cfg->delivery.smarthost != NULL;
        snprintf(key, sizeof key, smart ? "smarthost" : "smtp:%s", domain);
        struct sched_dest *d = sched_dest_get(s, key, SCHED_DEST_SMTP, smart ? NULL : domain);
        struct sched_job *j = NULL;
        size_t k;
        for (k = 0; k < nremote; k++)
            if (remote[k]->d == d && remote[k]->n < SCHED_TXN_RCPTS)
                break;
        if (d != NULL && k < nremote) {
            j = remote[k];
        } else if (d != NULL) {
            struct sched_job **nr = realloc(remote, (nremote + 1) * sizeof *nr);
            j = nr != NULL ? sched_job_new(s, d, m) : NULL;
            if (nr != NULL)
                remote = nr;
            if (j != NULL)
                remote[nremote++] = j;
        }
        if (j == NULL) {
            sched_fail_now(s, m, i, DELIVER_TEMPFAIL, "4.3.0", "out of memory");
            continue;
        }
        rc->state = SCHED_R_BUSY;
        j->idx[j->n++] = i;
    }
    if (lmtp_job != NULL) {
        remote = realloc(remote, (nremote + 1) * sizeof *remote);
        if (remote == NULL) {
            log_event("sched_error", "id=%s error=out_of_memory", m->id);
            exit(75);
        }
        remote[nremote++] = lmtp_job;
    }
    for (size_t k = 0; k < nremote; k++)
        sched_job_submit(s, m, remote[k]);
    free(remote);
}

int sched_route_open(struct sched *s, char *err, size_t errlen)
{
    /* Every local job started and not yet in a batch fits: the destination's limit. */
    s->local = calloc((size_t)s->cfg->delivery.local_concurrency * MAILDIR_BATCH, sizeof *s->local);
    s->local_ev = event_new(s->base, -1, 0, sched_local_cb, s);
    if (s->local == NULL || s->local_ev == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->pool = pool_new(s->base, s->cfg->delivery.local_concurrency);
    if (s->pool == NULL) {
        snprintf(err, errlen, "thread pool: %s", strerror(errno));
        return -1;
    }
    s->dns = dns_open(s->base, s->cfg->delivery.dns, SCHED_DNS_TIMEOUT_MS, err, errlen);
    if (s->dns == NULL)
        return -1;
    return 0;
}

void sched_route_close(struct sched *s)
{
    /* Finished local jobs record their results; jobs never started go back to pending
     * (not recorded: the next start tries them). */
    /* Local jobs never handed to a thread stay unrecorded: the next start delivers them. */
    while (s->nlocal > 0) {
        struct sched_job *j = s->local[--s->nlocal];
        j->m->busy--;
        sched_job_free(j);
    }
    pool_free(s->pool);
    s->pool = NULL;
    /* Connections still busy at the deadline: their recipients stay unrecorded. */
    while (s->conns != NULL) {
        struct sched_conn *c = s->conns;
        if (c->job != NULL) {
            c->job->m->busy--;
            sched_job_free(c->job);
            c->job = NULL;
        }
        for (struct sched_conn **p = &c->d->idle; *p != NULL; p = &(*p)->next)
            if (*p == c) {
                *p = c->next;
                break;
            }
        sched_conn_free(c);
    }
    for (size_t i = 0; i < s->ndests; i++) {
        struct sched_dest *d = s->dests[i];
        while (d->idle != NULL) {
            struct sched_conn *c = d->idle;
            d->idle = c->next;
            sched_conn_free(c);
        }
        while (d->wait_head != NULL) {
            struct sched_job *j = d->wait_head;
            d->wait_head = j->next;
            j->m->busy--;
            sched_job_free(j);
        }
        free(d->key);
        free(d->domain);
        free(d);
    }
    free(s->dests);
    s->dests = NULL;
    s->ndests = 0;
    dns_close(s->dns);
    s->dns = NULL;
    if (s->local_ev != NULL)
        event_free(s->local_ev);
    s->local_ev = NULL;
    free(s->local);
    s->local = NULL;
    if (s->tls_ctx != NULL)
        SSL_CTX_free(s->tls_ctx);
}
