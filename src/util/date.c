/* date: RFC 5322 §3.3 dates in UTC (see date.h). Called by smtp/session_data (Received,
 * RFC 5321 §4.4) and queue/bounce (RFC 3464 Arrival-Date, Last-Attempt-Date, Date). Pure:
 * gmtime_r only computes; the day and month names are ours, so the locale never shows. */
#include "util/date.h"

#include <stdio.h>
#include <time.h>

#define DATE_MAX 253402300799LL /* 9999-12-31T23:59:59Z: a four-digit year */

bool date_rfc5322(char out[DATE_RFC5322_LEN], int64_t t)
{
    static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;

    out[0] = '\0';
    if (t < 0 || t > DATE_MAX || gmtime_r(&tt, &tm) == NULL)
        return false;
    snprintf(out, DATE_RFC5322_LEN, "%s, %02d %s %04d %02d:%02d:%02d +0000",
             wday[tm.tm_wday % 7], tm.tm_mday % 100, mon[tm.tm_mon % 12],
             (tm.tm_year + 1900) % 10000, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100);
    return true;
}
