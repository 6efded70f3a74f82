/* conf_value: checks and conversions of single configuration values (numbers with units, host
 * names, listen addresses). Private to src/conf, except that cli/dir reads and shows mailbox
 * quotas with the same sizes (conf_number_parse, conf_number_format); pure. */
#ifndef SLUICE_CONF_CONF_VALUE_H
#define SLUICE_CONF_CONF_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_K ((uint64_t)1024)
#define CONF_M (CONF_K * 1024)
#define CONF_G (CONF_M * 1024)

#define CONF_MS_S ((uint64_t)1000)
#define CONF_MS_M (CONF_MS_S * 60)
#define CONF_MS_H (CONF_MS_M * 60)
#define CONF_MS_D (CONF_MS_H * 24)

enum conf_unit {
    CONF_UNIT_COUNT,    /* plain number */
    CONF_UNIT_SIZE,     /* octets; suffix K, M or G (1024-based) */
    CONF_UNIT_DURATION, /* milliseconds; suffix ms, s, m, h or d; none = seconds */
};

enum conf_num { CONF_NUM_OK, CONF_NUM_SYNTAX, CONF_NUM_RANGE };

/* Whole decimal number with the unit's optional suffix, scaled; CONF_NUM_RANGE on overflow. */
enum conf_num conf_number_parse(const char *s, enum conf_unit unit, uint64_t *out);

/* v in the largest suffix that divides it exactly ("64K", "1d", "100ms"), for messages. */
void conf_number_format(char *buf, size_t size, uint64_t v, enum conf_unit unit);

/* RFC 1123 §2.1 host name. */
bool conf_host_valid(const char *s);

/* 1..max of letters, digits, '-', '_', '.', not starting with '-'. */
bool conf_name_valid(const char *s, size_t max);

struct conf_network;

/* ADDRESS or ADDRESS/PREFIX (IPv4 dotted quad or IPv6 text); host bits must be zero, so a
 * typo like 10.0.0.1/8 is refused instead of silently meaning 10.0.0.0/8. */
bool conf_network_parse(const char *s, struct conf_network *out);

/* IPV4:PORT, [IPV6]:PORT or *:PORT. */
bool conf_address_valid(const char *s);

/* HOST:PORT (a host name or IPv4 address), or [IPV4]:PORT / [IPV6]:PORT: a place to
 * connect to (the smarthost, an LMTP server). */
bool conf_hostport_valid(const char *s);

#endif
