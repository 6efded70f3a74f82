/* conf_value: single configuration values for conf.c, which calls these while it applies a
 * directive. Pure. Invariants: numbers are whole, decimal and unsigned; every multiplication
 * is checked, so an overflow is reported as out of range and never wraps. Host names follow
 * RFC 1123 §2.1; listen addresses are IP literals only, so that binding never waits on DNS. */
#include "conf/conf_value.h"

#include "conf/conf.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>

/* RFC 1123 §2.1 host names: LDH labels of 1..63, at most 253 in all, no empty label. */
bool conf_host_valid(const char *s)
{
    size_t n = strlen(s);
    size_t label = 0;

    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '-') {
            if ((label == 0 && ch == '-') || ++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && s[n - 1] != '-';
}

/* User and listener names: the portable filename characters, and no leading '-' so that the
 * name never reads as an option to the tools it is passed to. */
bool conf_name_valid(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return false;
    }
    return true;
}

/* HOST:PORT where HOST is an IPv4 literal, [IPv6] or '*' (all addresses). Names are refused:
 * binding must not depend on DNS. */
static bool conf_port_valid(const char *p)
{
    unsigned long port = 0;
    if (*p == '\0' || strlen(p) > 5)
        return false;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    return port >= 1 && port <= 65535;
}

/* s[0..len) is an IPv4 address or a host name. */
static bool conf_host_part(const char *s, size_t len)
{
    char buf[256];
    unsigned char addr[4];
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET, buf, addr) == 1 || conf_host_valid(buf);
}

bool conf_address_valid(const char *s)
{
    const char *colon;
    const char *host = s;
    size_t hostlen;
    char buf[64];
    unsigned char addr[16];

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return false;
        host = s + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return false;
        hostlen = (size_t)(colon - s);
    }
    if (hostlen == 0 || hostlen >= sizeof buf)
        return false;
    memcpy(buf, host, hostlen);
    buf[hostlen] = '\0';
    if (s[0] == '[') {
        if (inet_pton(AF_INET6, buf, addr) != 1)
            return false;
    } else if (strcmp(buf, "*") != 0 && inet_pton(AF_INET, buf, addr) != 1) {
        return false;
    }
    return conf_port_valid(colon + 1);
}

bool conf_hostport_valid(const char *s)
{
    const char *colon = strrchr(s, ':');
    char buf[256];
    unsigned char addr[16];
    if (colon == NULL || !conf_port_valid(colon + 1))
        return false;
    size_t hostlen = (size_t)(colon - s);
    if (hostlen < 3 || hostlen >= sizeof buf)
        return s[0] != '[' && hostlen > 0 && hostlen < sizeof buf && conf_host_part(s, hostlen);
    if (s[0] == '[') {
        if (s[hostlen - 1] != ']')
            return false;
        memcpy(buf, s + 1, hostlen - 2);
        buf[hostlen - 2] = '\0';
        return inet_pton(AF_INET6, buf, addr) == 1 || inet_pton(AF_INET, buf, addr) == 1;
    }
    return conf_host_part(s, hostlen);
}

/* Decimal digits at *s; advances *s past them. Returns false on no digits or on overflow (the
 * digits are still consumed). */
static bool conf_parse_digits(const char **s, uint64_t *out, bool *overflow)
{
    const char *p = *s;
    uint64_t v = 0;

    *overflow = false;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            *overflow = true;
        else
            v = v * 10 + d;
    }
    if (p == *s)
        return false;
    *s = p;
    *out = v;
    return true;
}

struct conf_suffix {
    const char *suffix;
    uint64_t scale;
};

static const struct conf_suffix conf_suffixes_count[] = {{"", 1}};
static const struct conf_suffix conf_suffixes_size[] = {
    {"", 1},       {"K", CONF_K}, {"k", CONF_K}, {"M", CONF_M},
    {"m", CONF_M}, {"G", CONF_G}, {"g", CONF_G},
};
static const struct conf_suffix conf_suffixes_duration[] = {
    {"", CONF_MS_S},  {"ms", 1},        {"s", CONF_MS_S},
    {"m", CONF_MS_M}, {"h", CONF_MS_H}, {"d", CONF_MS_D},
};

static const struct conf_suffix *conf_suffixes(enum conf_unit unit, size_t *n)
{
    switch (unit) {
    case CONF_UNIT_SIZE:
        *n = sizeof conf_suffixes_size / sizeof conf_suffixes_size[0];
        return conf_suffixes_size;
    case CONF_UNIT_DURATION:
        *n = sizeof conf_suffixes_duration / sizeof conf_suffixes_duration[0];
        return conf_suffixes_duration;
    case CONF_UNIT_COUNT:
        break;
    }
    *n = 1;
    return conf_suffixes_count;
}

enum conf_num conf_number_parse(const char *s, enum conf_unit unit, uint64_t *out)
{
    size_t n;
    const struct conf_suffix *sfx = conf_suffixes(unit, &n);
    uint64_t v;
    bool overflow;

    if (!conf_parse_digits(&s, &v, &overflow))
        return CONF_NUM_SYNTAX;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, sfx[i].suffix) != 0)
            continue;
        if (overflow || v > UINT64_MAX / sfx[i].scale)
            return CONF_NUM_RANGE;
        *out = v * sfx[i].scale;
        return CONF_NUM_OK;
    }
    return CONF_NUM_SYNTAX;
}

/* Only suffixed forms are candidates, so durations read "100ms" and "5s", never a bare "5". */
void conf_number_format(char *buf, size_t size, uint64_t v, enum conf_unit unit)
{
    size_t n;
    const struct conf_suffix *sfx = conf_suffixes(unit, &n);
    const char *suffix = "";
    uint64_t scale = 1;

    for (size_t i = 0; i < n && v != 0; i++) {
        if ((sfx[i].scale > scale || (scale == 1 && sfx[i].scale == 1)) && v % sfx[i].scale == 0 &&
            sfx[i].suffix[0] != '\0') {
            scale = sfx[i].scale;
            suffix = sfx[i].suffix;
        }
    }
    snprintf(buf, size, "%llu%s", (unsigned long long)(v / scale), suffix);
}

bool conf_network_parse(const char *s, struct conf_network *out)
{
    char text[INET6_ADDRSTRLEN + 8];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof text)
        return false;
    memcpy(text, s, n + 1);
    char *slash = strchr(text, '/');
    if (slash != NULL)
        *slash = '\0';
    *out = (struct conf_network){0};
    if (inet_pton(AF_INET, text, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, text, out->addr) == 1)
        out->family = AF_INET6;
    else
        return false;
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->prefix = max;
    if (slash != NULL) {
        uint64_t p;
        if (slash[1] == '\0' || strlen(slash + 1) > 3 ||
            conf_number_parse(slash + 1, CONF_UNIT_COUNT, &p) != CONF_NUM_OK || p > max)
            return false;
        out->prefix = (unsigned)p;
    }
    for (unsigned bit = out->prefix; bit < max; bit++)
        if (out->addr[bit / 8] & (0x80u >> (bit % 8)))
            return false;
    return true;
}
