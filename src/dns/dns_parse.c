/* dns_parse: the pure half of the resolver. dns.c calls it on what libunbound returns;
 * the unit tests and the fuzzer call it on hostile bytes.
 *
 * Invariants: every name written out is lower case, has no trailing dot, at most
 * DNS_NAME_MAX bytes and only letters, digits, '-' and '_' between its dots, so no NUL,
 * CR, LF, space or 8-bit byte from a DNS answer ever reaches a log line, a DSN or a
 * greeting (HOSTILE-INPUTS J7). An MX list never holds more than DNS_HOSTS_MAX hosts.
 *
 * RFCs: RFC 1035 §3.1 (wire names, 255-octet limit) and §3.3.9 (MX RDATA), RFC 5321 §5.1
 * (preference order, random among equals), RFC 7505 §3 (null MX), RFC 1123 §2.1 (a host
 * name never has the dotted-decimal form). */
#include <string.h>

#include "dns/dns.h"

#define DNS_LABEL_MAX 63 /* RFC 1035 §2.3.4 */
#define DNS_WIRE_MAX 255 /* RFC 1035 §3.1: label octets plus length octets */

static int name_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static char lower(unsigned char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

/* RFC 1123 §2.1: four all-digit labels read as an IPv4 address, and a top-level label is
 * never all digits anyway; such a name is a literal, not a host to look up. */
static int name_is_dotted_quad(const char *name)
{
    size_t labels = 0, digits = 0;
    for (const char *p = name;; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++digits > 3)
                return 0;
        } else if (*p == '.' || *p == '\0') {
            if (digits == 0)
                return 0;
            labels++;
            digits = 0;
            if (*p == '\0')
                break;
        } else {
            return 0;
        }
    }
    return labels == 4;
}

int dns_name_normalize(const char *in, char out[DNS_NAME_MAX + 1])
{
    if (in == NULL)
        return -1;
    size_t len = strlen(in);
    if (len > 0 && in[len - 1] == '.')
        len--;
    /* 253 text bytes make 255 wire octets with the first length byte and the root. */
    if (len == 0 || len > DNS_WIRE_MAX - 2)
        return -1;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if (!name_char_ok(c) || ++label > DNS_LABEL_MAX) {
            return -1;
        }
        out[i] = lower(c);
    }
    if (label == 0)
        return -1;
    out[len] = '\0';
    if (name_is_dotted_quad(out)) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int dns_mx_rdata_parse(const unsigned char *rdata, size_t len, uint16_t *preference,
                       char name[DNS_NAME_MAX + 1])
{
    name[0] = '\0';
    if (rdata == NULL || len < 3)
        return -1;
    size_t pos = 2, out = 0;
    for (;;) {
        size_t n = rdata[pos++];
        if (n == 0)
            break;
        /* 0x40 and 0x80 mark pointers and extended labels; libunbound hands us names
         * already decompressed, so either is a malformed record. */
        if (n > DNS_LABEL_MAX || n > len - pos || pos + n > DNS_WIRE_MAX + 1)
            goto bad;
        if (out > 0)
            name[out++] = '.';
        for (size_t i = 0; i < n; i++) {
            unsigned char c = rdata[pos + i];
            if (!name_char_ok(c))
                goto bad;
            name[out++] = lower(c);
        }
        pos += n;
        if (pos >= len)
            goto bad;
    }
    if (pos != len)
        goto bad;
    name[out] = '\0';
    *preference = (uint16_t)(rdata[0] << 8 | rdata[1]);
    return 0;
bad:
    name[0] = '\0';
    return -1;
}

static void host_set(struct dns_host *h, const char *name, uint16_t preference)
{
    memset(h, 0, sizeof(*h));
    memcpy(h->name, name, strlen(name) + 1);
    h->preference = preference;
}

enum dns_status dns_mx_collect(const char *const *rdata, const int *lens, size_t n,
                               struct dns_host hosts[DNS_HOSTS_MAX], size_t *nhosts)
{
    size_t kept = 0, parsed = 0, malformed = 0;
    int null_mx = 0;
    *nhosts = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t pref;
        char name[DNS_NAME_MAX + 1];
        if (rdata[i] == NULL || lens[i] < 0 ||
            dns_mx_rdata_parse((const unsigned char *)rdata[i], (size_t)lens[i], &pref, name) !=
                0) {
            malformed++;
            continue;
        }
        parsed++;
        if (name[0] == '\0') {
            null_mx = pref == 0;
            continue; /* RFC 7505 §3: "." beside real exchanges is ignored */
        }
        if (name_is_dotted_quad(name))
            continue; /* RFC 1123 §2.1: a literal is no exchange to look up */
        size_t j;
        for (j = 0; j < kept && strcmp(hosts[j].name, name) != 0; j++)
            ;
        if (j < kept) {
            if (pref < hosts[j].preference)
                hosts[j].preference = pref;
            continue;
        }
        if (kept < DNS_HOSTS_MAX) {
            host_set(&hosts[kept++], name, pref);
            continue;
        }
        /* Full: the least preferred host makes room (dns.h: "lowest last" are dropped). */
        size_t worst = 0;
        for (j = 1; j < kept; j++)
            if (hosts[j].preference >= hosts[worst].preference)
                worst = j;
        if (pref < hosts[worst].preference)
            host_set(&hosts[worst], name, pref);
    }
    *nhosts = kept;
    if (kept > 0)
        return DNS_OK;
    /* RFC 7505 §3: the null MX is the only record of its set, preference 0. */
    if (null_mx && parsed == 1 && malformed == 0)
        return DNS_NULL_MX;
    return malformed > 0 ? DNS_TEMPFAIL : DNS_NOT_FOUND;
}

static void host_swap(struct dns_host *a, struct dns_host *b)
{
    struct dns_host t;
    memcpy(&t, a, sizeof(t));
    memcpy(a, b, sizeof(t));
    memcpy(b, &t, sizeof(t));
}

void dns_mx_sort(struct dns_host *hosts, size_t n, uint32_t (*rnd)(uint32_t n, void *arg),
                 void *rnd_arg)
{
    /* Insertion sort: stable, and n is at most DNS_HOSTS_MAX in practice. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && hosts[j - 1].preference > hosts[j].preference; j--)
            host_swap(&hosts[j - 1], &hosts[j]);
    /* RFC 5321 §5.1: hosts of equal preference are tried in random order, which spreads
     * the load; a Fisher-Yates shuffle of each run. */
    for (size_t start = 0; start < n;) {
        size_t end = start + 1;
        while (end < n && hosts[end].preference == hosts[start].preference)
            end++;
        for (size_t k = end - start; k > 1; k--) {
            uint32_t pick = rnd((uint32_t)k, rnd_arg) % (uint32_t)k;
            if (pick != k - 1)
                host_swap(&hosts[start + pick], &hosts[start + k - 1]);
        }
        start = end;
    }
}
