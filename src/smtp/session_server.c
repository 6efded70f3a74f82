/* session_server: what the sessions of one worker share: the id registry that late
 * asynchronous answers use to find a session (never a raw pointer), the connection limits
 * (in total and per client address, H1), the bearer token keys, the password pool, and the
 * drain on shutdown. Called by daemon/worker; calls session.c to start and close sessions,
 * sasl/jwt_keys and util/pool. Limits are per worker process. */
#include "smtp/session_priv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "sasl/jwt_keys.h"
#include "util/id.h"
#include "util/log.h"
#include "util/pool.h"

#define IP_BUCKETS 4096

/* One client address: its open sessions, and its new sessions and TLS handshakes in the
 * current minute. An entry lives while it has sessions or counts for the current minute. */
struct ip_count {
    struct ip_count *next;
    char addr[48];
    unsigned n;             /* open sessions */
    int64_t minute;         /* the minute the two rate counters below belong to */
    unsigned connects;      /* sessions started in that minute */
    unsigned handshakes;    /* TLS handshakes started in that minute */
    int64_t auth_hour;      /* the hour auth_failures belongs to */
    unsigned auth_failures; /* failed AUTH exchanges in that hour (G8) */
};

/* An entry outlives its sessions while any of its counters still matters. */
static bool session_ip_idle(const struct ip_count *ip, int64_t minute)
{
    return ip->n == 0 && ip->minute != minute &&
           (ip->auth_failures == 0 || ip->auth_hour != minute / 60);
}

/* ---- bearer token keys and the password pool ---- */

const struct jwt_key *session_server_token_keys(const struct session_server *srv, size_t *n)
{
    *n = srv->ntoken_keys;
    return srv->token_keys;
}

struct pool *session_server_pool(struct session_server *srv)
{
    if (srv->pool == NULL)
        srv->pool = pool_new(srv->base, 2);
    return srv->pool;
}

/* ---- server: registry and connection counts ---- */

struct session_server *session_server_new(struct event_base *base, const struct config *cfg,
                                          struct queue_store *store, struct dir *dir, SSL_CTX *tls)
{
    struct session_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return NULL;
    srv->base = base;
    srv->cfg = cfg;
    srv->store = store;
    srv->dir = dir;
    srv->tls = tls;
    srv->next_seq = 1;
    srv->ip_buckets = calloc(IP_BUCKETS, sizeof *srv->ip_buckets);
    srv->scratch = malloc(DATA_OUT_CAP(SESSION_INPUT_HIGH));
    if (srv->ip_buckets == NULL || srv->scratch == NULL) {
        session_server_free(srv);
        return NULL;
    }
    /* The master loaded the same files before starting this worker (master_check_auth);
     * one that broke since leaves token logins off rather than the worker down. */
    char err[512];
    if (jwt_keys_load(&cfg->auth, &srv->token_keys, &srv->ntoken_keys, err, sizeof err) != 0)
        log_event("auth_error", "error=\"%s\"", err);
    return srv;
}

void session_server_free(struct session_server *srv)
{
    if (srv == NULL)
        return;
    /* Password checks still running finish first; their answers find no session. */
    if (srv->pool != NULL)
        pool_free(srv->pool);
    srv->pool = NULL;
    for (size_t i = 0; i < srv->nslots; i++)
        if (srv->slots[i] != NULL)
            session_free(srv->slots[i]);
    jwt_keys_free(srv->token_keys, srv->ntoken_keys);
    for (size_t i = 0; srv->ip_buckets != NULL && i < IP_BUCKETS; i++) {
        while (srv->ip_buckets[i] != NULL) {
            struct ip_count *next = srv->ip_buckets[i]->next;
            free(srv->ip_buckets[i]);
            srv->ip_buckets[i] = next;
        }
    }
    free(srv->ip_buckets);
    free(srv->slots);
    free(srv->free_slots);
    free(srv->scratch);
    free(srv);
}

size_t session_server_count(const struct session_server *srv)
{
    return srv->count;
}

static int session_register(struct session_server *srv, struct session *s)
{
    uint32_t slot;
    if (srv->nfree > 0) {
        slot = srv->free_slots[--srv->nfree];
    } else {
        if (srv->nslots >= (1u << SESSION_SLOT_BITS))
            return -1;
        size_t ncap = srv->nslots == 0 ? 256 : srv->nslots * 2;
        struct session **ns = realloc(srv->slots, ncap * sizeof *ns);
        if (ns == NULL)
            return -1;
        srv->slots = ns;
        uint32_t *nf = realloc(srv->free_slots, ncap * sizeof *nf);
        if (nf == NULL)
            return -1;
        srv->free_slots = nf;
        for (size_t i = ncap; i > srv->nslots + 1; i--)
            srv->free_slots[srv->nfree++] = (uint32_t)(i - 1);
        slot = (uint32_t)srv->nslots;
        for (size_t i = srv->nslots; i < ncap; i++)
            srv->slots[i] = NULL;
        srv->nslots = ncap;
    }
    s->id = (srv->next_seq++ << SESSION_SLOT_BITS) | slot;
    srv->slots[slot] = s;
    srv->count++;
    return 0;
}

struct session *session_find(struct session_server *srv, uint64_t id)
{
    size_t slot = id & ((1u << SESSION_SLOT_BITS) - 1);
    if (slot >= srv->nslots || srv->slots[slot] == NULL || srv->slots[slot]->id != id)
        return NULL;
    return srv->slots[slot];
}

static struct ip_count **session_ip_bucket(struct session_server *srv, const char *addr)
{
    uint32_t h = 2166136261u;
    for (const char *p = addr; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    struct ip_count **pp = &srv->ip_buckets[h % IP_BUCKETS];
    while (*pp != NULL && strcmp((*pp)->addr, addr) != 0)
        pp = &(*pp)->next;
    return pp;
}

static int64_t session_minute(void)
{
    return (int64_t)time(NULL) / 60;
}

/* Rolls an entry's rate counters over to the current minute. */
static void session_ip_roll(struct ip_count *ip, int64_t minute)
{
    if (ip->minute != minute) {
        ip->minute = minute;
        ip->connects = 0;
        ip->handshakes = 0;
    }
}

/* Drops entries that hold no session and no count for the current minute, once a minute, so
 * a scan from many addresses (H1) cannot grow the table without bound. */
static void session_ip_sweep(struct session_server *srv, int64_t minute)
{
    if (srv->ip_swept_minute == minute)
        return;
    srv->ip_swept_minute = minute;
    for (size_t i = 0; i < IP_BUCKETS; i++) {
        struct ip_count **pp = &srv->ip_buckets[i];
        while (*pp != NULL) {
            if (session_ip_idle(*pp, minute)) {
                struct ip_count *dead = *pp;
                *pp = dead->next;
                free(dead);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

bool session_server_tls_allowed(struct session *s)
{
    unsigned limit = s->srv->cfg->limits.tls_rate;
    struct ip_count *ip = *session_ip_bucket(s->srv, s->addr);

    if (limit == 0 || ip == NULL)
        return true;
    session_ip_roll(ip, session_minute());
    if (ip->handshakes >= limit) {
        log_event("refused", "session=%s client=%s reason=tls-rate limit=%u", s->name, s->addr,
                  limit);
        return false;
    }
    ip->handshakes++;
    return true;
}

bool session_server_auth_blocked(struct session *s, bool failed)
{
    struct ip_count *ip = *session_ip_bucket(s->srv, s->addr);
    int64_t hour = session_minute() / 60;
    if (ip == NULL)
        return false;
    if (ip->auth_hour != hour) {
        ip->auth_hour = hour;
        ip->auth_failures = 0;
    }
    if (failed)
        ip->auth_failures++;
    return ip->auth_failures >= s->srv->cfg->auth.ip_failures;
}

static bool session_network_match(const struct conf_network *n, const struct sockaddr *sa)
{
    const unsigned char *a;
    if (sa->sa_family == AF_INET && n->family == AF_INET)
        a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6 && n->family == AF_INET6)
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    else if (sa->sa_family == AF_INET6 && n->family == AF_INET &&
             IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr))
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr + 12;
    else
        return false;
    unsigned full = n->prefix / 8, rest = n->prefix % 8;
    if (memcmp(a, n->addr, full) != 0)
        return false;
    return rest == 0 || ((a[full] ^ n->addr[full]) & (0xffu << (8 - rest))) == 0;
}

static void session_peer_class(struct session *s, const struct sockaddr *sa)
{
    static const struct conf_network loop4 = {.family = AF_INET, .addr = {127}, .prefix = 8};
    static const struct conf_network loop6 = {
        .family = AF_INET6, .addr = {[15] = 1}, .prefix = 128};
    const struct config *cfg = s->srv->cfg;
    s->loopback = session_network_match(&loop4, sa) || session_network_match(&loop6, sa);
    for (size_t i = 0; i < cfg->ntrusted && !s->trusted; i++)
        s->trusted = session_network_match(&cfg->trusted[i], sa);
}

bool session_server_spool_ok(struct session_server *srv)
{
    uint64_t min_free = srv->cfg->limits.spool_min_free;
    int64_t now = (int64_t)time(NULL);
    struct statvfs sv;

    if (min_free == 0)
        return true;
    if (srv->spool_checked != now) {
        srv->spool_checked = now;
        srv->spool_low =
            statvfs(srv->cfg->spool, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < min_free;
        if (srv->spool_low)
            log_event("spool_low", "spool=%s free=%llu min=%llu", srv->cfg->spool,
                      (unsigned long long)sv.f_bavail * sv.f_frsize, (unsigned long long)min_free);
    }
    return !srv->spool_low;
}

/* ---- accept and shutdown ---- */

static void session_refuse(int fd, enum reply_id id, const char *arg)
{
    char line[300];
    size_t n = reply_format(line, sizeof line, id, arg);
    ssize_t w = send(fd, line, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    close(fd);
}

void session_accept(struct session_server *srv, const struct conf_listener *l, int fd,
                    const struct sockaddr *sa, socklen_t salen)
{
    const struct config *cfg = srv->cfg;
    char addr[48] = "unknown";

    (void)salen;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, sizeof addr);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr, sizeof addr);

    if (srv->shutting_down) {
        session_refuse(fd, REPLY_SHUTDOWN, NULL);
        return;
    }
    if (srv->count >= cfg->limits.sessions) {
        log_event("refused", "client=%s reason=sessions limit=%u", addr, cfg->limits.sessions);
        session_refuse(fd, REPLY_TOO_MANY_SESSIONS, NULL);
        return;
    }
    int64_t minute = session_minute();
    session_ip_sweep(srv, minute);
    struct ip_count **pp = session_ip_bucket(srv, addr);
    if (*pp == NULL) {
        *pp = calloc(1, sizeof **pp);
        if (*pp == NULL) {
            session_refuse(fd, REPLY_TOO_MANY_SESSIONS, NULL);
            return;
        }
        memcpy((*pp)->addr, addr, sizeof addr);
    }
    struct ip_count *ip = *pp;
    session_ip_roll(ip, minute);
    if (ip->n >= cfg->limits.sessions_per_ip) {
        log_event("refused", "client=%s reason=sessions-per-ip limit=%u", addr,
                  cfg->limits.sessions_per_ip);
        session_refuse(fd, REPLY_TOO_MANY_FROM_IP, addr);
        return;
    }
    if (cfg->limits.connection_rate > 0 && ip->connects >= cfg->limits.connection_rate) {
        log_event("refused", "client=%s reason=connection-rate limit=%u", addr,
                  cfg->limits.connection_rate);
        session_refuse(fd, REPLY_TOO_MANY_FROM_IP, addr);
        return;
    }

    struct session *s = calloc(1, sizeof *s);
    if (s == NULL || session_register(srv, s) != 0) {
        free(s);
        session_refuse(fd, REPLY_TOO_MANY_SESSIONS, NULL);
        return;
    }
    ip->n++;
    ip->connects++;
    id_next(s->name);
    s->srv = srv;
    s->listener = l;
    memcpy(s->addr, addr, sizeof addr);
    session_peer_class(s, sa);
    session_start(s, fd);
}

void session_server_release(struct session *s)
{
    struct session_server *srv = s->srv;
    struct ip_count **pp = session_ip_bucket(srv, s->addr);
    size_t slot = s->id & ((1u << SESSION_SLOT_BITS) - 1);

    /* The entry stays while its rate counters matter; the sweep frees it later. */
    if (*pp != NULL && --(*pp)->n == 0 && session_ip_idle(*pp, session_minute())) {
        struct ip_count *dead = *pp;
        *pp = dead->next;
        free(dead);
    }
    srv->slots[slot] = NULL;
    srv->free_slots[srv->nfree++] = (uint32_t)slot;
    srv->count--;
}

void session_server_shutdown(struct session_server *srv)
{
    srv->shutting_down = true;
    for (size_t i = 0; i < srv->nslots; i++) {
        struct session *s = srv->slots[i];
        if (s == NULL || s->closing)
            continue;
        s->draining = true;
        if (s->tx == NULL && s->state == SESSION_COMMAND) {
            session_reply(s, REPLY_SHUTDOWN, NULL);
            session_close(s);
        } else if (s->state == SESSION_HANDSHAKE || s->state == SESSION_GREETING) {
            session_free(s);
        }
    }
}

void session_server_abort_messages(struct session_server *srv)
{
    for (size_t i = 0; i < srv->nslots; i++) {
        struct session *s = srv->slots[i];
        if (s != NULL && s->tx != NULL && s->tx->msg != NULL) {
            queue_msg_abort(s->tx->msg);
            s->tx->msg = NULL;
        }
    }
}
