/* dns: asynchronous lookups on the caller's event loop through libunbound (DESIGN §6): where
 * to deliver a domain's mail (RFC 5321 §5.1: its MX hosts in preference order, random among
 * equals, each with its addresses; the domain's own A/AAAA when it has no MX; RFC 7505 null
 * MX), and the addresses of one host (a smarthost). The resolver can be pointed at one DNS
 * server ("127.0.0.1@5353"), which is how the tests serve their own records on loopback. */
#ifndef SLUICE_DNS_DNS_H
#define SLUICE_DNS_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct dns;
struct dns_query;

#define DNS_NAME_MAX 255       /* RFC 1035 §2.3.4 */
#define DNS_HOSTS_MAX 32       /* MX hosts kept per domain (more are ignored, lowest last) */
#define DNS_ADDRS_MAX 16       /* addresses kept per host */

enum dns_status {
    DNS_OK,       /* hosts[] holds at least one host with at least one address */
    DNS_NULL_MX,  /* RFC 7505: the domain accepts no mail (bounce 5.1.10) */
    DNS_NOT_FOUND,/* NXDOMAIN, or no MX and no A/AAAA, or no MX host has an address
                     (bounce 5.1.2; RFC 5321 §5.1) */
    DNS_TEMPFAIL, /* SERVFAIL, timeout, a lame or broken answer: try again later (4.4.3) */
};

struct dns_host {
    char name[DNS_NAME_MAX + 1];   /* lower case, no trailing dot */
    uint16_t preference;           /* the MX preference; 0 for the implicit MX and for hosts */
    struct sockaddr_storage addrs[DNS_ADDRS_MAX]; /* port already set, IPv6 first is not
                                                     implied: the order DNS gave, AAAA then A;
                                                     A keeps up to half when both overflow */
    socklen_t addrlens[DNS_ADDRS_MAX];
    size_t naddrs;
};

struct dns_answer {
    enum dns_status status;
    int implicit_mx;               /* 1 when there was no MX and hosts[0] is the domain itself */
    struct dns_host *hosts;        /* try in this order; valid only during the callback */
    size_t nhosts;
    char why[160];                 /* for logs and DSNs: "SERVFAIL for example.org MX" */
};

typedef void (*dns_cb)(const struct dns_answer *answer, void *arg);

/* forwarder: "ADDR@PORT" or "ADDR" of the one server to ask (recursion desired, no DNSSEC
 * validation), or NULL to use /etc/resolv.conf. timeout_ms bounds each query as a whole.
 * NULL with a message in err. */
struct dns *dns_open(struct event_base *base, const char *forwarder, unsigned timeout_ms,
                     char *err, size_t errlen);

/* Cancels every query in flight (their callbacks never run) and frees. */
void dns_close(struct dns *d);

/* Where mail for domain goes (an ASCII or A-label domain), each address with the given
 * port. MX hosts come sorted by preference, random among equal preference; hosts whose
 * address lookups failed are left out (a TEMPFAIL among them turns an otherwise empty
 * answer into DNS_TEMPFAIL, not DNS_NOT_FOUND). cb runs later, never from inside this call.
 * NULL + errno (EINVAL for a malformed domain, ENOMEM). */
struct dns_query *dns_mx_resolve(struct dns *d, const char *domain, uint16_t port, dns_cb cb,
                                 void *arg);

/* The addresses of one host name (AAAA and A), as a one-host answer. Same rules; an IP
 * literal is EINVAL (the caller connects to it as it is). */
struct dns_query *dns_host_resolve(struct dns *d, const char *host, uint16_t port, dns_cb cb,
                                   void *arg);

/* Forget a query in flight: its callback never runs. A no-op from inside the query's own
 * callback; the query is freed once its callback returns, so never cancel it after. */
void dns_cancel(struct dns_query *q);

/* Pure, for the resolver and its tests: sort hosts by preference, shuffling those of equal
 * preference with rnd (a value in [0, n) for n; others are reduced modulo n), in place. */
void dns_mx_sort(struct dns_host *hosts, size_t n, uint32_t (*rnd)(uint32_t n, void *arg),
                 void *rnd_arg);

/* Pure: decode an MX RDATA as libunbound returns it (preference, then an uncompressed domain
 * name in wire format) into *preference and name (lower case, no trailing dot; "" for the
 * root, which is how RFC 7505's null MX reads). 0, or -1 when malformed. */
int dns_mx_rdata_parse(const unsigned char *rdata, size_t len, uint16_t *preference,
                       char name[DNS_NAME_MAX + 1]);

/* Pure: check a domain or host name given to the resolver (letters, digits, '-' and '_' in
 * labels of 1 to 63 bytes, at most 253 bytes, one trailing dot allowed, not a dotted-quad
 * literal) and copy it to out in lower case without the trailing dot. 0, or -1. */
int dns_name_normalize(const char *in, char out[DNS_NAME_MAX + 1]);

/* Pure: turn the n RDATAs of an MX answer (as struct ub_result gives them) into hosts with
 * names and preferences but no addresses, unsorted: malformed records and IP-literal
 * targets are skipped, a name listed twice keeps its lower preference, and past
 * DNS_HOSTS_MAX the least preferred are dropped. DNS_OK when hosts are left; DNS_NULL_MX
 * for RFC 7505's lone "MX 0 ."; else DNS_TEMPFAIL when a record was malformed, or
 * DNS_NOT_FOUND. */
enum dns_status dns_mx_collect(const char *const *rdata, const int *lens, size_t n,
                               struct dns_host hosts[DNS_HOSTS_MAX], size_t *nhosts);

#endif
