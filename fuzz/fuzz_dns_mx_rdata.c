/* libFuzzer target for dns/dns_parse (RFC 1035 §3.3.9 MX RDATA, RFC 5321 §5.1, RFC 7505).
 * Checks, beyond memory safety: a decoded name is lower case, at most 253 bytes, made of
 * labels of 1 to 63 letters, digits, '-' or '_', and encodes back to exactly the input
 * bytes (lower-cased); a refused RDATA leaves an empty name. The input is also cut into
 * an MX set for dns_mx_collect (never more than DNS_HOSTS_MAX hosts, each name valid,
 * DNS_OK exactly when hosts are left), sorted by dns_mx_sort (preferences non-decreasing,
 * the same hosts), and read as a name by dns_name_normalize. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* A name as dns_parse promises it: "" or dot-separated labels of 1..63 valid bytes. */
static void check_name(const char *name)
{
    size_t len = strlen(name), label = 0;
    check(len <= 253);
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '.') {
            check(label > 0);
            label = 0;
        } else {
            check(name_char((unsigned char)name[i]));
            check(++label <= 63);
        }
    }
    check(len == 0 || label > 0);
}

static void check_rdata(const uint8_t *data, size_t size)
{
    uint16_t pref = 1;
    char name[DNS_NAME_MAX + 1];
    if (dns_mx_rdata_parse(data, size, &pref, name) != 0) {
        check(name[0] == '\0');
        return;
    }
    check_name(name);
    check(pref == (uint16_t)(data[0] << 8 | data[1]));
    /* Encode back and compare with the input, lower-cased. */
    unsigned char wire[2 + 256];
    size_t pos = 2, start = 0, len = strlen(name);
    wire[0] = data[0];
    wire[1] = data[1];
    for (size_t i = 0; i <= len && len > 0; i++) {
        if (name[i] == '.' || name[i] == '\0') {
            wire[pos++] = (unsigned char)(i - start);
            memcpy(wire + pos, name + start, i - start);
            pos += i - start;
            start = i + 1;
        }
    }
    wire[pos++] = 0;
    check(pos == size);
    for (size_t i = 0; i < size; i++) {
        unsigned char c = data[i];
        if (i >= 2 && c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        check(wire[i] == c);
    }
}

static uint32_t fuzz_rnd(uint32_t n, void *arg)
{
    uint32_t *state = arg;
    (void)n; /* answers out of range on purpose: the sort must reduce them */
    *state = *state * 1103515245u + 12345u;
    return *state >> 8;
}

static void check_collect(const uint8_t *data, size_t size)
{
    /* The input as records: a length byte, then that many bytes, repeated. */
    enum { MAX_RRS = 64 };
    const char *rdata[MAX_RRS];
    int lens[MAX_RRS];
    size_t n = 0, pos = 0;
    while (pos < size && n < MAX_RRS) {
        size_t l = data[pos++];
        if (l > size - pos)
            l = size - pos;
        rdata[n] = (const char *)data + pos;
        lens[n++] = (int)l;
        pos += l;
    }
    static struct dns_host hosts[DNS_HOSTS_MAX];
    size_t nhosts = 999;
    enum dns_status st = dns_mx_collect(rdata, lens, n, hosts, &nhosts);
    check(nhosts <= DNS_HOSTS_MAX);
    check((st == DNS_OK) == (nhosts > 0));
    check(st == DNS_OK || st == DNS_NULL_MX || st == DNS_NOT_FOUND || st == DNS_TEMPFAIL);
    unsigned long sum = 0;
    for (size_t i = 0; i < nhosts; i++) {
        check(hosts[i].name[0] != '\0');
        check_name(hosts[i].name);
        check(hosts[i].naddrs == 0);
        for (size_t j = 0; j < i; j++)
            check(strcmp(hosts[i].name, hosts[j].name) != 0);
        sum += hosts[i].preference;
    }
    uint32_t seed = (uint32_t)size;
    dns_mx_sort(hosts, nhosts, fuzz_rnd, &seed);
    unsigned long sum2 = 0;
    for (size_t i = 0; i < nhosts; i++) {
        check_name(hosts[i].name);
        if (i > 0)
            check(hosts[i - 1].preference <= hosts[i].preference);
        sum2 += hosts[i].preference;
    }
    check(sum == sum2);
}

static void check_normalize(const uint8_t *data, size_t size)
{
    char in[300], out[DNS_NAME_MAX + 1];
    if (size >= sizeof(in))
        return;
    memcpy(in, data, size);
    in[size] = '\0';
    if (dns_name_normalize(in, out) == 0) {
        check(out[0] != '\0');
        check_name(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    check_rdata(data, size);
    check_collect(data, size);
    check_normalize(data, size);
    return 0;
}
