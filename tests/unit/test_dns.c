/* Live tests for dns/dns: the resolver on a libevent loop against dnsmasq started on a free
 * loopback port (records under .test, which the resolver must forward rather than answer
 * itself, RFC 6761 §6.2), and against a small UDP responder thread for what dnsmasq will not
 * serve: SERVFAIL, hostile MX names (J7), garbage and silence. Checks RFC 5321 §5.1 (order,
 * implicit MX, exchanges without address skipped), RFC 7505 (null MX, J6), NXDOMAIN and
 * timeouts, and that callbacks never run from inside a call or after a cancel. */
/* cmocka.h needs these before it, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dns/dns.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define DNSMASQ "/usr/sbin/dnsmasq"
#define TIMEOUT_MS 3000

struct fixture {
    struct event_base *base;
    pid_t dnsmasq;
    char dir[64];
    char fwd[64];      /* dnsmasq, "127.0.0.1@PORT" */
    char evil_fwd[64]; /* the responder thread */
    int evil_fd;
    int evil_stop[2];
    pthread_t evil_thread;
    char big_args[40][64];
};

/* A copy of one answer, taken inside the callback. */
struct result {
    int calls;
    int in_call; /* set around each dns_*_resolve call: a callback then is a bug */
    enum dns_status status;
    int implicit_mx;
    size_t nhosts;
    struct dns_host hosts[DNS_HOSTS_MAX];
    char why[160];
    struct dns *close_on_answer;
};

static struct fixture *fx;

static uint16_t free_port(void)
{
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(u >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(u, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(u, (struct sockaddr *)&sin, &sl), 0);
    close(u);
    return ntohs(sin.sin_port);
}

/* A DNS query for name/type in wire format; returns its length. */
static size_t query_build(unsigned char *buf, const char *name, uint16_t type)
{
    static const unsigned char head[12] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(buf, head, sizeof(head));
    size_t pos = sizeof(head);
    const char *p = name;
    while (*p != '\0') {
        const char *dot = strchr(p, '.');
        size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);
        buf[pos++] = (unsigned char)n;
        memcpy(buf + pos, p, n);
        pos += n;
        p += n + (dot != NULL);
    }
    buf[pos++] = 0;
    buf[pos++] = (unsigned char)(type >> 8);
    buf[pos++] = (unsigned char)type;
    buf[pos++] = 0;
    buf[pos++] = 1;
    return pos;
}

static int dnsmasq_answers(uint16_t port)
{
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(u >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned char q[64];
    size_t qlen = query_build(q, "two.test", 15);
    int ok = 0;
    for (int i = 0; i < 50 && !ok; i++) {
        sendto(u, q, qlen, 0, (struct sockaddr *)&sin, sizeof(sin));
        struct pollfd pfd = {.fd = u, .events = POLLIN};
        if (poll(&pfd, 1, 100) == 1) {
            unsigned char r[512];
            ok = recv(u, r, sizeof(r), 0) > 12;
        }
    }
    close(u);
    return ok;
}

static pid_t dnsmasq_start(uint16_t port)
{
    char portarg[32], pidarg[128], logpath[128];
    snprintf(portarg, sizeof(portarg), "--port=%u", port);
    snprintf(pidarg, sizeof(pidarg), "--pid-file=%s/dnsmasq.pid", fx->dir);
    snprintf(logpath, sizeof(logpath), "%s/dnsmasq.log", fx->dir);
    const char *fixed[] = {
        DNSMASQ,
        "--no-resolv",
        "--no-hosts",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        portarg,
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        pidarg,
        /* Answer .test from these records only: unknown names are NXDOMAIN, known names
         * without the asked type are NODATA. */
        "--local=/test/",
        "--mx-host=two.test,mx1.two.test,10",
        "--mx-host=two.test,mx2.two.test,20",
        "--host-record=mx1.two.test,127.0.0.2,::2",
        "--host-record=mx2.two.test,127.0.0.3",
        "--mx-host=eq.test,a.eq.test,10",
        "--mx-host=eq.test,b.eq.test,10",
        "--host-record=a.eq.test,127.0.1.1",
        "--host-record=b.eq.test,127.0.1.2",
        "--host-record=nomx.test,127.0.0.4,::4",
        "--mx-host=null.test,.,0",
        "--mx-host=noaddr.test,ghost.noaddr.test,10",
        "--mx-host=noaddr.test,mx.noaddr.test,20",
        "--host-record=mx.noaddr.test,127.0.0.5",
        "--mx-host=dead.test,ghost.dead.test,10",
        "--mx-host=cname.test,alias.cname.test,10",
        "--cname=alias.cname.test,mx1.two.test",
        "--mx-host=lit.test,192.0.2.1,10",
        "--address=/h.big.test/127.0.0.9",
    };
    const char *argv[N_ELEMS(fixed) + 40 + 1];
    size_t argc = 0;
    for (size_t i = 0; i < N_ELEMS(fixed); i++)
        argv[argc++] = fixed[i];
    /* J7: more MX than DNS_HOSTS_MAX, preferences 40 down to 1. */
    for (size_t i = 0; i < 40; i++) {
        snprintf(fx->big_args[i], sizeof(fx->big_args[i]), "--mx-host=big.test,m%zu.h.big.test,%zu",
                 i, 40 - i);
        argv[argc++] = fx->big_args[i];
    }
    argv[argc] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(DNSMASQ, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* MX sets the responder serves: hostile names (CR LF, NUL, space; J7) beside a good host
 * or alone, and exchanges whose own lookups SERVFAIL. */
// clang-format off
#define RD(lit) {lit, sizeof(lit) - 1}
#define RD_GOOD RD("\000\011\004good\004test\000")
#define RD_CRLF RD("\000\001\004a\r\nb\004test\000")
#define RD_NUL RD("\000\002\003a\000b\004test\000")
#define RD_SPACE RD("\000\003\003a b\004test\000")
#define RD_SERVFAIL RD("\000\005\010servfail\004test\000")
// clang-format on
struct evil_rr {
    const char *rdata;
    size_t len;
};
static const struct evil_mx {
    const char *owner;
    struct evil_rr rrs[4];
} evil_mxs[] = {
    {"evil.test", {RD_CRLF, RD_NUL, RD_SPACE, RD_GOOD}},
    {"allevil.test", {RD_CRLF, RD_NUL, RD_SPACE}},
    {"mxfail.test", {RD_SERVFAIL}},
    {"mxhalf.test", {RD_SERVFAIL, RD_GOOD}},
};

/* The responder: SERVFAIL, MX sets, garbage or silence, chosen by the name. */
static size_t evil_answer(const unsigned char *q, size_t qlen, unsigned char *r)
{
    if (qlen < 17)
        return 0;
    size_t pos = 12;
    char name[256];
    size_t out = 0;
    while (pos < qlen && q[pos] != 0 && out < 200) {
        size_t n = q[pos++];
        if (n > 63 || pos + n > qlen)
            return 0;
        if (out > 0)
            name[out++] = '.';
        for (size_t i = 0; i < n; i++)
            name[out++] = (char)(q[pos + i] | 0x20);
        pos += n;
    }
    name[out] = '\0';
    if (pos + 5 > qlen)
        return 0;
    uint16_t type = (uint16_t)(q[pos + 1] << 8 | q[pos + 2]);
    size_t qend = pos + 5;
    if (strcmp(name, "silent.test") == 0)
        return 0;
    if (strcmp(name, "garbage.test") == 0) {
        memcpy(r, "\x12garbage", 8);
        return 8;
    }
    memcpy(r, q, qend);
    r[2] = 0x81; /* QR, RD */
    r[3] = 0x80; /* RA, NOERROR */
    r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
    if (strcmp(name, "servfail.test") == 0) {
        r[3] |= 2;
        return qend;
    }
    size_t rpos = qend, count = 0;
    static const unsigned char rrhead[] = {0xc0, 0x0c, 0, 0, 0, 1, 0, 0, 0, 60};
    const struct evil_mx *mx = NULL;
    for (size_t i = 0; i < N_ELEMS(evil_mxs); i++)
        if (strcmp(name, evil_mxs[i].owner) == 0)
            mx = &evil_mxs[i];
    if (type == 15 && mx != NULL) {
        for (; count < 4 && mx->rrs[count].rdata != NULL; count++) {
            memcpy(r + rpos, rrhead, sizeof(rrhead));
            r[rpos + 3] = 15;
            rpos += sizeof(rrhead);
            r[rpos++] = 0;
            r[rpos++] = (unsigned char)mx->rrs[count].len;
            memcpy(r + rpos, mx->rrs[count].rdata, mx->rrs[count].len);
            rpos += mx->rrs[count].len;
        }
    } else if (type == 1 || (type == 28 && strcmp(name, "many.test") == 0)) {
        /* many.test: twelve of each family; any other name: one A, 127.0.0.7. */
        size_t n = strcmp(name, "many.test") == 0 ? 12 : 1, alen = type == 1 ? 4 : 16;
        for (; count < n; count++) {
            memcpy(r + rpos, rrhead, sizeof(rrhead));
            r[rpos + 3] = (unsigned char)type;
            rpos += sizeof(rrhead);
            r[rpos++] = 0;
            r[rpos++] = (unsigned char)alen;
            memset(r + rpos, 0, alen);
            r[rpos] = type == 1 ? 127 : 0x20;
            r[rpos + alen - 1] = (unsigned char)(n == 1 ? 7 : count + 1);
            rpos += alen;
        }
    }
    r[7] = (unsigned char)count;
    return rpos;
}

static void *evil_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd pfd[2] = {{.fd = fx->evil_fd, .events = POLLIN},
                                {.fd = fx->evil_stop[0], .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0 || pfd[1].revents != 0)
            return NULL;
        unsigned char q[512], r[1024];
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(fx->evil_fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
        if (n <= 0)
            continue;
        size_t rlen = evil_answer(q, (size_t)n, r);
        if (rlen > 0)
            sendto(fx->evil_fd, r, rlen, 0, (struct sockaddr *)&from, fl);
    }
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sluice-dns-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    fx->base = event_base_new();
    assert_non_null(fx->base);
    for (int attempt = 0; attempt < 5 && fx->fwd[0] == '\0'; attempt++) {
        uint16_t port = free_port();
        fx->dnsmasq = dnsmasq_start(port);
        if (dnsmasq_answers(port)) {
            snprintf(fx->fwd, sizeof(fx->fwd), "127.0.0.1@%u", port);
        } else {
            kill(fx->dnsmasq, SIGTERM);
            waitpid(fx->dnsmasq, NULL, 0);
            fx->dnsmasq = 0;
        }
    }
    if (fx->fwd[0] == '\0')
        fail_msg("dnsmasq did not start; see %s/dnsmasq.log", fx->dir);

    fx->evil_fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fx->evil_fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fx->evil_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(fx->evil_fd, (struct sockaddr *)&sin, &sl), 0);
    snprintf(fx->evil_fwd, sizeof(fx->evil_fwd), "127.0.0.1@%u", ntohs(sin.sin_port));
    assert_int_equal(pipe(fx->evil_stop), 0);
    assert_int_equal(pthread_create(&fx->evil_thread, NULL, evil_main, NULL), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_true(write(fx->evil_stop[1], "x", 1) == 1);
    pthread_join(fx->evil_thread, NULL);
    close(fx->evil_stop[0]);
    close(fx->evil_stop[1]);
    close(fx->evil_fd);
    if (fx->dnsmasq > 0) {
        kill(fx->dnsmasq, SIGTERM);
        waitpid(fx->dnsmasq, NULL, 0);
    }
    char path[128];
    snprintf(path, sizeof(path), "%s/dnsmasq.pid", fx->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/dnsmasq.log", fx->dir);
    unlink(path);
    rmdir(fx->dir);
    event_base_free(fx->base);
    free(fx);
    return 0;
}

static void answer_cb(const struct dns_answer *a, void *arg)
{
    struct result *r = arg;
    assert_int_equal(r->in_call, 0); /* never from inside the starting call */
    r->calls++;
    r->status = a->status;
    r->implicit_mx = a->implicit_mx;
    r->nhosts = a->nhosts;
    assert_true(a->nhosts <= DNS_HOSTS_MAX);
    if (a->nhosts > 0)
        memcpy(r->hosts, a->hosts, a->nhosts * sizeof(a->hosts[0]));
    snprintf(r->why, sizeof(r->why), "%s", a->why);
    if (r->close_on_answer != NULL) {
        dns_close(r->close_on_answer);
        r->close_on_answer = NULL;
    }
}

static void loop_until(struct result *const *rs, size_t n, unsigned ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += rs[i]->calls > 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (done == n || el >= (long)ms)
            return;
        event_base_loop(fx->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

static struct dns *open_dns(const char *fwd, unsigned timeout_ms)
{
    char err[256] = "";
    struct dns *d = dns_open(fx->base, fwd, timeout_ms, err, sizeof(err));
    if (d == NULL)
        fail_msg("dns_open: %s", err);
    return d;
}

static void resolve(struct dns *d, int mx, const char *name, struct result *r)
{
    memset(r, 0, sizeof(*r));
    r->in_call = 1;
    struct dns_query *q = mx ? dns_mx_resolve(d, name, 25, answer_cb, r)
                             : dns_host_resolve(d, name, 587, answer_cb, r);
    r->in_call = 0;
    assert_non_null(q);
    struct result *rs[1] = {r};
    loop_until(rs, 1, TIMEOUT_MS + 2000);
    if (r->calls != 1)
        fail_msg("%s: %d callbacks", name, r->calls);
}

static void addr_text(const struct dns_host *h, size_t i, char *buf, size_t len, unsigned *port)
{
    const struct sockaddr_storage *ss = &h->addrs[i];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
        assert_int_equal(h->addrlens[i], sizeof(*s));
        inet_ntop(AF_INET6, &s->sin6_addr, buf, (socklen_t)len);
        *port = ntohs(s->sin6_port);
    } else {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        assert_int_equal(ss->ss_family, AF_INET);
        assert_int_equal(h->addrlens[i], sizeof(*s));
        inet_ntop(AF_INET, &s->sin_addr, buf, (socklen_t)len);
        *port = ntohs(s->sin_port);
    }
}

/* Expected hosts as "name pref addr,addr" lines; NULL ends. */
static void expect_hosts(const struct result *r, const char *const *want, unsigned port)
{
    size_t n = 0;
    while (want[n] != NULL)
        n++;
    if (r->nhosts != n)
        fail_msg("%zu hosts, want %zu (%s)", r->nhosts, n, r->why);
    for (size_t i = 0; i < n; i++) {
        char line[512];
        int off = snprintf(line, sizeof(line), "%s %u ", r->hosts[i].name, r->hosts[i].preference);
        for (size_t k = 0; k < r->hosts[i].naddrs; k++) {
            char a[INET6_ADDRSTRLEN];
            unsigned p;
            addr_text(&r->hosts[i], k, a, sizeof(a), &p);
            assert_int_equal(p, port);
            off += snprintf(line + off, sizeof(line) - (size_t)off, "%s%s", k ? "," : "", a);
        }
        assert_string_equal(line, want[i]);
    }
}

struct mx_case {
    const char *name;
    const char *domain;
    enum dns_status status;
    int implicit_mx;
    const char *hosts[4];
    const char *why; /* a substring of answer->why */
};

// clang-format off
static const struct mx_case mx_cases[] = {
    {"rfc5321_s5_1_preference_order", "two.test", DNS_OK, 0,
     {"mx1.two.test 10 ::2,127.0.0.2", "mx2.two.test 20 127.0.0.3"}, "2 hosts"},
    {"case_and_trailing_dot", "TWO.Test.", DNS_OK, 0,
     {"mx1.two.test 10 ::2,127.0.0.2", "mx2.two.test 20 127.0.0.3"}, "two.test"},
    {"rfc5321_s5_1_implicit_mx", "nomx.test", DNS_OK, 1, {"nomx.test 0 ::4,127.0.0.4"}, "1 host"},
    {"J6_rfc7505_null_mx", "null.test", DNS_NULL_MX, 0, {NULL}, "null MX for null.test"},
    {"nxdomain", "nothere.test", DNS_NOT_FOUND, 0, {NULL}, "NXDOMAIN for nothere.test"},
    {"rfc5321_s5_1_exchange_without_address_skipped", "noaddr.test", DNS_OK, 0,
     {"mx.noaddr.test 20 127.0.0.5"}, "1 host"},
    {"rfc5321_s5_1_no_exchange_has_address", "dead.test", DNS_NOT_FOUND, 0, {NULL},
     "no address for dead.test MX hosts"},
    {"mx_target_cname_followed", "cname.test", DNS_OK, 0,
     {"alias.cname.test 10 ::2,127.0.0.2"}, "1 host"},
    {"rfc1123_s2_1_ip_literal_target_skipped", "lit.test", DNS_NOT_FOUND, 0, {NULL},
     "no usable MX host for lit.test"},
};
// clang-format on

static void test_mx_table(void **state)
{
    (void)state;
    struct dns *d = open_dns(fx->fwd, TIMEOUT_MS);
    for (size_t i = 0; i < N_ELEMS(mx_cases); i++) {
        const struct mx_case *c = &mx_cases[i];
        struct result r;
        resolve(d, 1, c->domain, &r);
        if (r.status != c->status || r.implicit_mx != c->implicit_mx)
            fail_msg("case %s: status %d implicit %d (%s)", c->name, r.status, r.implicit_mx,
                     r.why);
        expect_hosts(&r, c->hosts, 25);
        if (strstr(r.why, c->why) == NULL)
            fail_msg("case %s: why \"%s\"", c->name, r.why);
    }
    dns_close(d);
}

/* RFC 5321 §5.1: both hosts of equal preference come back, and over many tries each
 * comes first sometimes. */
static void test_rfc5321_s5_1_equal_preferences(void **state)
{
    (void)state;
    struct dns *d = open_dns(fx->fwd, TIMEOUT_MS);
    int first_a = 0, first_b = 0;
    for (int i = 0; i < 40 && !(first_a && first_b); i++) {
        struct result r;
        resolve(d, 1, "eq.test", &r);
        assert_int_equal(r.status, DNS_OK);
        assert_int_equal(r.nhosts, 2);
        assert_string_not_equal(r.hosts[0].name, r.hosts[1].name);
        assert_int_equal(r.hosts[0].preference, 10);
        assert_int_equal(r.hosts[1].preference, 10);
        first_a |= strcmp(r.hosts[0].name, "a.eq.test") == 0;
        first_b |= strcmp(r.hosts[0].name, "b.eq.test") == 0;
    }
    assert_true(first_a && first_b);
    dns_close(d);
}

/* J7: forty MX keep the DNS_HOSTS_MAX most preferred, sorted. */
static void test_J7_many_mx_capped(void **state)
{
    (void)state;
    struct dns *d = open_dns(fx->fwd, TIMEOUT_MS);
    struct result r;
    resolve(d, 1, "big.test", &r);
    if (r.status != DNS_OK)
        fail_msg("status %d (%s)", r.status, r.why);
    assert_int_equal(r.nhosts, DNS_HOSTS_MAX);
    for (size_t i = 0; i < r.nhosts; i++) {
        char want[64];
        snprintf(want, sizeof(want), "m%zu.h.big.test", 40 - (i + 1));
        assert_string_equal(r.hosts[i].name, want);
        assert_int_equal(r.hosts[i].preference, i + 1);
        assert_int_equal(r.hosts[i].naddrs, 1);
    }
    dns_close(d);
}

static void test_host_resolve(void **state)
{
    (void)state;
    struct dns *d = open_dns(fx->fwd, TIMEOUT_MS);
    struct result r;
    resolve(d, 0, "mx1.two.test", &r);
    assert_int_equal(r.status, DNS_OK);
    assert_int_equal(r.implicit_mx, 0);
    static const char *const want[] = {"mx1.two.test 0 ::2,127.0.0.2", NULL};
    expect_hosts(&r, want, 587);
    resolve(d, 0, "nothere.test", &r);
    assert_int_equal(r.status, DNS_NOT_FOUND);
    assert_int_equal(r.nhosts, 0);
    /* A name with only MX records has no address of its own. */
    resolve(d, 0, "null.test", &r);
    assert_int_equal(r.status, DNS_NOT_FOUND);
    dns_close(d);
}

struct evil_case {
    const char *name;
    int mx;
    const char *domain;
    enum dns_status status;
    const char *host0;
    const char *why;
};

static const struct evil_case evil_cases[] = {
    {"servfail_mx", 1, "servfail.test", DNS_TEMPFAIL, NULL, "SERVFAIL for servfail.test MX"},
    {"servfail_host", 0, "servfail.test", DNS_TEMPFAIL, NULL, "address lookup failed"},
    {"J7_hostile_names_skipped", 1, "evil.test", DNS_OK, "good.test", "1 host"},
    {"J7_only_hostile_names_tempfail", 1, "allevil.test", DNS_TEMPFAIL, NULL,
     "malformed MX for allevil.test"},
    {"tempfail_exchange_makes_tempfail", 1, "mxfail.test", DNS_TEMPFAIL, NULL,
     "address lookup failed for mxfail.test MX hosts"},
    {"tempfail_exchange_skipped_beside_good", 1, "mxhalf.test", DNS_OK, "good.test", "1 host"},
    {"garbage_reply_times_out", 1, "garbage.test", DNS_TEMPFAIL, NULL,
     "DNS timeout for garbage.test MX"},
};

/* Each case on a fresh resolver, so one failure's memory of the server cannot leak into
 * the next. */
static void test_evil_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(evil_cases); i++) {
        const struct evil_case *c = &evil_cases[i];
        struct dns *d = open_dns(fx->evil_fwd, 1500);
        struct result r;
        resolve(d, c->mx, c->domain, &r);
        if (r.status != c->status || strstr(r.why, c->why) == NULL)
            fail_msg("case %s: status %d (%s)", c->name, r.status, r.why);
        if (c->host0 != NULL) {
            assert_int_equal(r.nhosts, 1);
            assert_string_equal(r.hosts[0].name, c->host0);
        } else {
            assert_int_equal(r.nhosts, 0);
        }
        dns_close(d);
    }
}

/* AAAA first, but an IPv4-only sender still finds A addresses: A keeps half the slots. */
static void test_address_cap_keeps_both_families(void **state)
{
    (void)state;
    struct dns *d = open_dns(fx->evil_fwd, 1500);
    struct result r;
    resolve(d, 0, "many.test", &r);
    assert_int_equal(r.status, DNS_OK);
    assert_int_equal(r.nhosts, 1);
    assert_int_equal(r.hosts[0].naddrs, DNS_ADDRS_MAX);
    /* unbound rotates the records of a set, so only families and distinctness are fixed. */
    char seen[DNS_ADDRS_MAX][INET6_ADDRSTRLEN];
    for (size_t i = 0; i < DNS_ADDRS_MAX; i++) {
        unsigned port;
        addr_text(&r.hosts[0], i, seen[i], sizeof(seen[i]), &port);
        if (i < DNS_ADDRS_MAX / 2)
            assert_int_equal(strncmp(seen[i], "2000::", 6), 0);
        else
            assert_int_equal(strncmp(seen[i], "127.0.0.", 8), 0);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(seen[k], seen[i]);
    }
    dns_close(d);
}

/* A server that never answers: the query's own timer answers DNS_TEMPFAIL on time. */
static void test_timeout(void **state)
{
    (void)state;
    struct dns *d = open_dns(fx->evil_fwd, 300);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct result r;
    resolve(d, 1, "silent.test", &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_int_equal(r.status, DNS_TEMPFAIL);
    assert_non_null(strstr(r.why, "DNS timeout for silent.test MX"));
    assert_in_range(ms, 250, 2000);
    resolve(d, 0, "silent.test", &r);
    assert_int_equal(r.status, DNS_TEMPFAIL);
    assert_string_equal(r.why, "DNS timeout for silent.test");
    dns_close(d);
}

static void test_cancel_and_close(void **state)
{
    (void)state;
    struct dns *d = open_dns(fx->evil_fwd, 200);
    struct result a, b, c;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    struct dns_query *qa = dns_mx_resolve(d, "silent.test", 25, answer_cb, &a);
    assert_non_null(qa);
    assert_non_null(dns_mx_resolve(d, "evil.test", 25, answer_cb, &b));
    dns_cancel(qa);
    struct result *rs[1] = {&b};
    loop_until(rs, 1, 3000);
    struct result *ra[1] = {&a};
    loop_until(ra, 1, 400); /* past qa's timeout */
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    /* dns_close with queries in flight: no callback, nothing leaked (ASan). */
    assert_non_null(dns_mx_resolve(d, "silent.test", 25, answer_cb, &c));
    assert_non_null(dns_host_resolve(d, "good.test", 25, answer_cb, &c));
    dns_close(d);
    struct result *rc[1] = {&c};
    loop_until(rc, 1, 400);
    assert_int_equal(c.calls, 0);
}

/* The callback may close the resolver while other queries are in flight. */
static void test_close_from_callback(void **state)
{
    (void)state;
    struct dns *d = open_dns(fx->evil_fwd, 1000);
    struct result a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.close_on_answer = d;
    assert_non_null(dns_mx_resolve(d, "evil.test", 25, answer_cb, &a));
    assert_non_null(dns_mx_resolve(d, "silent.test", 25, answer_cb, &b));
    struct result *rs[2] = {&a, &b};
    loop_until(rs, 2, 1500);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(b.calls, 0);
}

struct bad_input {
    const char *name;
    const char *domain;
};

static const struct bad_input bad_inputs[] = {
    {"empty", ""},
    {"space", "bad domain.test"},
    {"J7_crlf", "a.test\r\nRCPT"},
    {"address_literal", "[127.0.0.1]"},
    {"rfc1123_s2_1_dotted_quad", "127.0.0.1"},
    {"empty_label", "a..test"},
};

static void test_bad_inputs(void **state)
{
    (void)state;
    struct dns *d = open_dns(fx->fwd, TIMEOUT_MS);
    struct result r;
    memset(&r, 0, sizeof(r));
    for (size_t i = 0; i < N_ELEMS(bad_inputs); i++) {
        errno = 0;
        if (dns_mx_resolve(d, bad_inputs[i].domain, 25, answer_cb, &r) != NULL || errno != EINVAL)
            fail_msg("case %s: mx accepted", bad_inputs[i].name);
        errno = 0;
        if (dns_host_resolve(d, bad_inputs[i].domain, 25, answer_cb, &r) != NULL || errno != EINVAL)
            fail_msg("case %s: host accepted", bad_inputs[i].name);
    }
    errno = 0;
    assert_null(dns_mx_resolve(d, NULL, 25, answer_cb, &r));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(dns_mx_resolve(d, "two.test", 25, NULL, &r));
    assert_int_equal(errno, EINVAL);
    struct result *rs[1] = {&r};
    loop_until(rs, 1, 100);
    assert_int_equal(r.calls, 0);
    dns_close(d);
}

static void test_open_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {"",
                                      "bogus",
                                      "127.0.0.1@",
                                      "127.0.0.1@0",
                                      "127.0.0.1@65536",
                                      "127.0.0.1@12a",
                                      "@53",
                                      "127.0.0.1@123456",
                                      "example.org@53"};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        char err[128] = "";
        struct dns *d = dns_open(fx->base, bad[i], 1000, err, sizeof(err));
        if (d != NULL)
            fail_msg("forwarder \"%s\" accepted", bad[i]);
        assert_non_null(strstr(err, "bad server"));
    }
    char err[128] = "";
    assert_null(dns_open(fx->base, fx->fwd, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "timeout"));
    assert_null(dns_open(NULL, fx->fwd, 1000, err, sizeof(err)));
    /* An IPv6 forwarder and one without port are accepted. */
    struct dns *d = open_dns("::1@53", 1000);
    dns_close(d);
    d = open_dns("127.0.0.1", 1000);
    dns_close(d);
    /* No forwarder: the servers of /etc/resolv.conf (opened only, nothing asked). */
    d = open_dns(NULL, 1000);
    dns_close(d);
    dns_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mx_table),
        cmocka_unit_test(test_rfc5321_s5_1_equal_preferences),
        cmocka_unit_test(test_J7_many_mx_capped),
        cmocka_unit_test(test_host_resolve),
        cmocka_unit_test(test_evil_table),
        cmocka_unit_test(test_address_cap_keeps_both_families),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_cancel_and_close),
        cmocka_unit_test(test_close_from_callback),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
