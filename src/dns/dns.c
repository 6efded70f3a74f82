/* dns: MX and host lookups through libunbound on the caller's libevent loop. The SMTP
 * client calls dns_mx_resolve (or dns_host_resolve for a smarthost) and gets one answer
 * per query through its callback.
 *
 * libunbound resolves in a thread of its own (ub_ctx_async) and signals results on a pipe;
 * a persistent read event on ub_fd() runs ub_process(), which calls lookup_cb. A query is
 * one MX lookup, then an AAAA and an A lookup per host. Invariants: a query's callback runs
 * at most once, always from its own timer event and never from inside ub_process() or
 * from the call that started it, so the caller may close the resolver or start new
 * queries from the callback; every lookup still in flight is ub_cancel()ed before its
 * query is freed, so libunbound never calls back into freed memory.
 *
 * RFCs: RFC 5321 §5.1 (MX order, implicit MX, hosts without address skipped), RFC 7505
 * (null MX), RFC 6761 §6.2 (.test names passed to the configured server). */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

#include "dns/dns.h"

#define DNS_TYPE_A 1 /* RFC 1035 §3.2.2 */
#define DNS_TYPE_MX 15
#define DNS_TYPE_AAAA 28 /* RFC 3596 §2.1 */
#define DNS_CLASS_IN 1
#define DNS_RCODE_SERVFAIL 2

struct dns {
    struct event_base *base;
    struct ub_ctx *ctx;
    struct event *ev_fd;       /* EV_READ|EV_PERSIST on ub_fd() */
    struct timeval timeout;    /* bound on each query as a whole */
    struct dns_query *queries; /* in flight, doubly linked */
};

/* One libunbound lookup; its address is the mydata libunbound hands back. */
struct dns_lookup {
    struct dns_query *q;
    int id;      /* ub async_id */
    int pending; /* submitted, no result yet */
    size_t host; /* index into q->hosts for address lookups */
};

/* Addresses as they arrive, per family, merged once every lookup is back. */
struct dns_addrs {
    unsigned char v6[DNS_ADDRS_MAX][16];
    size_t n6;
    unsigned char v4[DNS_ADDRS_MAX][4];
    size_t n4;
    int tempfail; /* a lookup for this host failed temporarily */
};

struct dns_query {
    struct dns *d;
    struct dns_query *prev, *next;
    dns_cb cb;
    void *arg;
    uint16_t port;
    int mx; /* 1: dns_mx_resolve, 0: dns_host_resolve */
    char name[DNS_NAME_MAX + 1];
    struct event *timer; /* the timeout, then the delivery of the answer */
    int finished;        /* answer is set; timer fires at once to deliver it */
    int delivering;      /* cb is running; dns_cancel is a no-op */
    size_t npending;
    struct dns_lookup mx_lookup;
    struct dns_lookup addr_lookups[DNS_HOSTS_MAX][2];
    struct dns_host hosts[DNS_HOSTS_MAX];
    struct dns_addrs addrs[DNS_HOSTS_MAX];
    size_t nhosts;
    struct dns_answer answer;
};

static void query_cancel_lookups(struct dns_query *q)
{
    if (q->mx_lookup.pending)
        ub_cancel(q->d->ctx, q->mx_lookup.id);
    q->mx_lookup.pending = 0;
    for (size_t i = 0; i < q->nhosts; i++)
        for (size_t f = 0; f < 2; f++) {
            if (q->addr_lookups[i][f].pending)
                ub_cancel(q->d->ctx, q->addr_lookups[i][f].id);
            q->addr_lookups[i][f].pending = 0;
        }
    q->npending = 0;
}

static void query_unlink(struct dns_query *q)
{
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        q->d->queries = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

static void query_free(struct dns_query *q)
{
    event_free(q->timer);
    free(q);
}

/* Sets the answer and hands its delivery to the event loop. */
static void query_finish(struct dns_query *q, enum dns_status status, const char *why)
{
    query_cancel_lookups(q);
    q->finished = 1;
    q->answer.status = status;
    snprintf(q->answer.why, sizeof(q->answer.why), "%s", why);
    evtimer_del(q->timer);
    event_active(q->timer, EV_TIMEOUT, 1);
}

static void query_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns_query *q = arg;
    (void)fd;
    (void)what;
    if (!q->finished) {
        char why[sizeof(q->answer.why)];
        snprintf(why, sizeof(why), "DNS timeout for %.120s%s", q->name, q->mx ? " MX" : "");
        query_cancel_lookups(q);
        q->answer.status = DNS_TEMPFAIL;
        memcpy(q->answer.why, why, sizeof(why));
    }
    query_unlink(q);
    if (q->answer.status != DNS_OK)
        q->answer.nhosts = 0;
    q->answer.hosts = q->answer.nhosts > 0 ? q->hosts : NULL;
    q->delivering = 1;
    q->cb(&q->answer, q->arg);
    query_free(q);
}

static void addr_fill(struct dns_host *h, const struct dns_addrs *a, uint16_t port)
{
    /* AAAA first as dns.h promises, but an IPv4-only sender must not find all sixteen
     * slots taken by IPv6: A keeps up to half of them. */
    size_t n4 = a->n4 < DNS_ADDRS_MAX / 2 ? a->n4 : DNS_ADDRS_MAX / 2;
    size_t n6 = a->n6 < DNS_ADDRS_MAX - n4 ? a->n6 : DNS_ADDRS_MAX - n4;
    n4 = a->n4 < DNS_ADDRS_MAX - n6 ? a->n4 : DNS_ADDRS_MAX - n6;
    h->naddrs = 0;
    for (size_t i = 0; i < n6; i++) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->addrs[h->naddrs];
        memset(&h->addrs[h->naddrs], 0, sizeof(h->addrs[0]));
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(port);
        memcpy(&s->sin6_addr, a->v6[i], 16);
        h->addrlens[h->naddrs++] = sizeof(*s);
    }
    for (size_t i = 0; i < n4; i++) {
        struct sockaddr_in *s = (struct sockaddr_in *)&h->addrs[h->naddrs];
        memset(&h->addrs[h->naddrs], 0, sizeof(h->addrs[0]));
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        memcpy(&s->sin_addr, a->v4[i], 4);
        h->addrlens[h->naddrs++] = sizeof(*s);
    }
}

/* Every address lookup is back: keep the hosts that have an address, in order. */
static void query_complete(struct dns_query *q)
{
    size_t kept = 0;
    int tempfail = 0;
    for (size_t i = 0; i < q->nhosts; i++) {
        tempfail |= q->addrs[i].tempfail;
        addr_fill(&q->hosts[i], &q->addrs[i], q->port);
        if (q->hosts[i].naddrs == 0)
            continue; /* RFC 5321 §5.1: an exchange without address is skipped */
        if (kept != i)
            memcpy(&q->hosts[kept], &q->hosts[i], sizeof(q->hosts[0]));
        kept++;
    }
    q->answer.nhosts = kept;
    char why[sizeof(q->answer.why)];
    if (kept > 0) {
        snprintf(why, sizeof(why), "%zu host%s for %.120s", kept, kept == 1 ? "" : "s", q->name);
        query_finish(q, DNS_OK, why);
    } else if (tempfail) {
        snprintf(why, sizeof(why), "address lookup failed for %.120s%s", q->name,
                 q->mx ? " MX hosts" : "");
        query_finish(q, DNS_TEMPFAIL, why);
    } else {
        snprintf(why, sizeof(why), "no address for %.120s%s", q->name,
                 q->mx && !q->answer.implicit_mx ? " MX hosts" : "");
        query_finish(q, DNS_NOT_FOUND, why);
    }
}

static void lookup_cb(void *arg, int err, struct ub_result *result);

static int lookup_submit(struct dns_query *q, struct dns_lookup *lk, const char *name, int type)
{
    lk->q = q;
    if (ub_resolve_async(q->d->ctx, name, type, DNS_CLASS_IN, lk, lookup_cb, &lk->id) != 0)
        return -1;
    lk->pending = 1;
    q->npending++;
    return 0;
}

static void query_submit_addrs(struct dns_query *q)
{
    static const int types[2] = {DNS_TYPE_AAAA, DNS_TYPE_A};
    for (size_t i = 0; i < q->nhosts; i++) {
        memset(&q->addrs[i], 0, sizeof(q->addrs[i]));
        for (size_t f = 0; f < 2; f++) {
            q->addr_lookups[i][f].host = i;
            if (lookup_submit(q, &q->addr_lookups[i][f], q->hosts[i].name, types[f]) != 0)
                q->addrs[i].tempfail = 1;
        }
    }
    if (q->npending == 0)
        query_complete(q);
}

static uint32_t mx_rnd(uint32_t n, void *arg)
{
    (void)arg;
    return arc4random_uniform(n);
}

static void mx_result(struct dns_query *q, int err, struct ub_result *r)
{
    char why[sizeof(q->answer.why)];
    if (err != 0) {
        snprintf(why, sizeof(why), "resolver error for %.120s MX: %s", q->name, ub_strerror(err));
        query_finish(q, DNS_TEMPFAIL, why);
        return;
    }
    if (r->nxdomain) {
        snprintf(why, sizeof(why), "NXDOMAIN for %.120s", q->name);
        query_finish(q, DNS_NOT_FOUND, why);
        return;
    }
    if (r->rcode != 0) {
        snprintf(why, sizeof(why), "%s for %.120s MX",
                 r->rcode == DNS_RCODE_SERVFAIL ? "SERVFAIL" : "DNS error", q->name);
        query_finish(q, DNS_TEMPFAIL, why);
        return;
    }
    if (!r->havedata) {
        /* RFC 5321 §5.1: no MX records, so the domain is its own exchange. */
        memset(&q->hosts[0], 0, sizeof(q->hosts[0]));
        memcpy(q->hosts[0].name, q->name, sizeof(q->name));
        q->nhosts = 1;
        q->answer.implicit_mx = 1;
        query_submit_addrs(q);
        return;
    }
    size_t n = 0;
    while (r->data[n] != NULL)
        n++;
    enum dns_status st =
        dns_mx_collect((const char *const *)r->data, r->len, n, q->hosts, &q->nhosts);
    switch (st) {
    case DNS_OK:
        dns_mx_sort(q->hosts, q->nhosts, mx_rnd, NULL);
        query_submit_addrs(q);
        return;
    case DNS_NULL_MX:
        snprintf(why, sizeof(why), "null MX for %.120s (RFC 7505)", q->name);
        break;
    case DNS_TEMPFAIL:
        snprintf(why, sizeof(why), "malformed MX for %.120s", q->name);
        break;
    case DNS_NOT_FOUND:
        snprintf(why, sizeof(why), "no usable MX host for %.120s", q->name);
        break;
    }
    q->nhosts = 0;
    query_finish(q, st, why);
}

static void addr_result(struct dns_query *q, struct dns_lookup *lk, int err, struct ub_result *r)
{
    struct dns_addrs *a = &q->addrs[lk->host];
    if (err != 0 || (r->rcode != 0 && !r->nxdomain)) {
        a->tempfail = 1;
        return;
    }
    if (!r->havedata)
        return;
    int v6 = r->qtype == DNS_TYPE_AAAA;
    for (size_t i = 0; r->data[i] != NULL; i++) {
        if (r->len[i] != (v6 ? 16 : 4))
            continue;
        if (v6 && a->n6 < DNS_ADDRS_MAX)
            memcpy(a->v6[a->n6++], r->data[i], 16);
        else if (!v6 && a->n4 < DNS_ADDRS_MAX)
            memcpy(a->v4[a->n4++], r->data[i], 4);
    }
}

static void lookup_cb(void *arg, int err, struct ub_result *result)
{
    struct dns_lookup *lk = arg;
    struct dns_query *q = lk->q;
    lk->pending = 0;
    q->npending--;
    if (err == 0 && result == NULL)
        err = UB_NOMEM;
    if (lk == &q->mx_lookup)
        mx_result(q, err, result);
    else {
        addr_result(q, lk, err, result);
        if (q->npending == 0)
            query_complete(q);
    }
    if (result != NULL)
        ub_resolve_free(result);
}

static void dns_fd_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *d = arg;
    (void)fd;
    (void)what;
    /* An error here leaves the queries to their timeouts, which answer DNS_TEMPFAIL. */
    ub_process(d->ctx);
}

/* "ADDR" or "ADDR@PORT" with ADDR an IPv4 or IPv6 literal: what ub_ctx_set_fwd takes. */
static int forwarder_check(const char *fwd)
{
    char addr[INET6_ADDRSTRLEN];
    const char *at = strchr(fwd, '@');
    size_t alen = at != NULL ? (size_t)(at - fwd) : strlen(fwd);
    if (alen == 0 || alen >= sizeof(addr))
        return -1;
    memcpy(addr, fwd, alen);
    addr[alen] = '\0';
    unsigned char buf[16];
    if (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1)
        return -1;
    if (at == NULL)
        return 0;
    unsigned long port = 0;
    const char *p = at + 1;
    if (*p == '\0' || strlen(p) > 5)
        return -1;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    return port >= 1 && port <= 65535 ? 0 : -1;
}

static int ctx_configure(struct ub_ctx *ctx, const char *forwarder, char *err, size_t errlen)
{
    int r;
    const char *what;
    if ((r = ub_ctx_async(ctx, 1)) != 0) {
        what = "ub_ctx_async";
        goto fail;
    }
    /* RFC 6761 §6.2 lets a resolver answer .test itself, and unbound does by default;
     * we forward it instead, so test domains can be served by the configured server.
     * A configured zone replaces the default one; "transparent" with no local data
     * passes every query on. ("nodefault" would read better, but libunbound 1.17's
     * ub_ctx_set_option stores it as "test. nodefault", which then matches no zone.) */
    if ((r = ub_ctx_set_option(ctx, "local-zone:", "test. transparent")) != 0) {
        what = "local-zone test. transparent";
        goto fail;
    }
    /* The server asked is often on loopback: the tests' own, a local cache, or the
     * 127.0.0.53 that systemd-resolved writes into resolv.conf; unbound would skip it. */
    if ((r = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no")) != 0) {
        what = "do-not-query-localhost";
        goto fail;
    }
    if (forwarder != NULL) {
        if ((r = ub_ctx_set_fwd(ctx, forwarder)) != 0) {
            what = "forwarder";
            goto fail;
        }
    } else if ((r = ub_ctx_resolvconf(ctx, NULL)) != 0) {
        what = "/etc/resolv.conf";
        goto fail;
    }
    return 0;
fail:
    snprintf(err, errlen, "dns: %s: %s", what, r == UB_READFILE ? strerror(errno) : ub_strerror(r));
    return -1;
}

struct dns *dns_open(struct event_base *base, const char *forwarder, unsigned timeout_ms, char *err,
                     size_t errlen)
{
    if (base == NULL || timeout_ms == 0) {
        snprintf(err, errlen, "dns: %s", base == NULL ? "no event base" : "zero timeout");
        return NULL;
    }
    if (forwarder != NULL && forwarder_check(forwarder) != 0) {
        snprintf(err, errlen, "dns: bad server \"%.60s\" (want ADDR or ADDR@PORT)", forwarder);
        return NULL;
    }
    struct dns *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        snprintf(err, errlen, "dns: out of memory");
        return NULL;
    }
    d->base = base;
    d->timeout.tv_sec = timeout_ms / 1000;
    d->timeout.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
    d->ctx = ub_ctx_create();
    if (d->ctx == NULL) {
        snprintf(err, errlen, "dns: ub_ctx_create failed");
        free(d);
        return NULL;
    }
    if (ctx_configure(d->ctx, forwarder, err, errlen) != 0)
        goto fail;
    d->ev_fd = event_new(base, ub_fd(d->ctx), EV_READ | EV_PERSIST, dns_fd_cb, d);
    if (d->ev_fd == NULL || event_add(d->ev_fd, NULL) != 0) {
        snprintf(err, errlen, "dns: cannot watch the resolver's descriptor");
        goto fail;
    }
    return d;
fail:
    if (d->ev_fd != NULL)
        event_free(d->ev_fd);
    ub_ctx_delete(d->ctx);
    free(d);
    return NULL;
}

void dns_close(struct dns *d)
{
    if (d == NULL)
        return;
    while (d->queries != NULL) {
        struct dns_query *q = d->queries;
        query_cancel_lookups(q);
        query_unlink(q);
        query_free(q);
    }
    event_free(d->ev_fd);
    ub_ctx_delete(d->ctx);
    free(d);
}

static struct dns_query *query_start(struct dns *d, const char *name, int mx, uint16_t port,
                                     dns_cb cb, void *arg)
{
    if (d == NULL || cb == NULL) {
        errno = EINVAL;
        return NULL;
    }
    struct dns_query *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (dns_name_normalize(name, q->name) != 0) {
        free(q);
        errno = EINVAL;
        return NULL;
    }
    q->d = d;
    q->cb = cb;
    q->arg = arg;
    q->port = port;
    q->mx = mx;
    q->timer = evtimer_new(d->base, query_timer_cb, q);
    if (q->timer == NULL || evtimer_add(q->timer, &d->timeout) != 0) {
        if (q->timer != NULL)
            event_free(q->timer);
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    q->next = d->queries;
    if (d->queries != NULL)
        d->queries->prev = q;
    d->queries = q;
    return q;
}

struct dns_query *dns_mx_resolve(struct dns *d, const char *domain, uint16_t port, dns_cb cb,
                                 void *arg)
{
    struct dns_query *q = query_start(d, domain, 1, port, cb, arg);
    if (q == NULL)
        return NULL;
    if (lookup_submit(q, &q->mx_lookup, q->name, DNS_TYPE_MX) != 0) {
        char why[sizeof(q->answer.why)];
        snprintf(why, sizeof(why), "resolver error for %.120s MX", q->name);
        query_finish(q, DNS_TEMPFAIL, why);
    }
    return q;
}

struct dns_query *dns_host_resolve(struct dns *d, const char *host, uint16_t port, dns_cb cb,
                                   void *arg)
{
    struct dns_query *q = query_start(d, host, 0, port, cb, arg);
    if (q == NULL)
        return NULL;
    memcpy(q->hosts[0].name, q->name, sizeof(q->name));
    q->nhosts = 1;
    query_submit_addrs(q);
    return q;
}

void dns_cancel(struct dns_query *q)
{
    if (q == NULL || q->delivering)
        return;
    query_cancel_lookups(q);
    query_unlink(q);
    query_free(q);
}
