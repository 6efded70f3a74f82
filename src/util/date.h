/* date: RFC 5322 §3.3 date-time strings in UTC, for Received fields and DSNs. Pure. */
#ifndef SLUICE_UTIL_DATE_H
#define SLUICE_UTIL_DATE_H

#include <stdbool.h>
#include <stdint.h>

#define DATE_RFC5322_LEN 32 /* "Thu, 01 Jan 1970 00:00:00 +0000" and its NUL */

/* Render t (seconds since the epoch) as "Thu, 01 Jan 1970 00:00:00 +0000", independent of
 * the locale. False (out set to "") when t is before 1970 or after 9999-12-31. */
bool date_rfc5322(char out[DATE_RFC5322_LEN], int64_t t);

#endif
