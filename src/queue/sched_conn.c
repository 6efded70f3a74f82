/* sched_conn: the scheduler's LMTP and SMTP connections (part of the scheduler,
 * sched_priv.h): where a destination is (MX lookup through dns, the smarthost, an LMTP
 * address), opening connections through the SMTP/LMTP client, sending jobs on them, keeping
 * them idle for reuse, and closing them. Invariants: RFC 5321 §5.1: an MX host that is
 * ourselves and every host not more preferred are dropped, and mail whose best MX is
 * ourselves bounces 5.4.6 rather than loop; an idle connection the peer closed is never
 * reused; every connection is on s->conns until it is freed, so shutdown finds them all. */
#include "queue/sched_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <event2/event.h>

#include "dns/dns.h"
#include "net/tls_client.h"
#include "util/log.h"

#define SCHED_TARGETS_MAX 20      /* addresses tried for one connection */
#define SCHED_IDLE_SECONDS 5      /* an unused connection is kept this long for reuse */

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

static void sched_conn_sent(struct smtp_conn *conn, const struct deliver_result *results,
                            bool reusable, void *arg);

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

void sched_conn_new(struct sched *s, struct sched_dest *d, struct sched_job *j)
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

bool sched_conn_reuse(struct sched_dest *d, struct sched_job *j)
{
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
        return true;
    }
    return false;
}

void sched_conns_close(struct sched *s)
{
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
}
