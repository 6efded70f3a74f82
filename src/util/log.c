/* log: key=value event lines on stderr, collected by the master (DESIGN §7).
 *
 * Called from every process; log_value() is how callers render bytes that came
 * from the network before they are put into a line.
 *
 * Invariants: each line is built in a bounded stack buffer (LOG_LINE_MAX bytes,
 * newline included) and sent with one write(2), so lines from several processes
 * sharing the stderr pipe never interleave (a pipe write of at most PIPE_BUF bytes
 * is atomic); a longer line is cut and ends in "..."; a line never holds a control
 * byte other than its final newline, whatever the caller formatted; errno is the
 * same after a call as before it.
 */
#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048 /* bytes per line, newline included; <= PIPE_BUF (4096) */
#define LOG_PROGNAME_MAX 64

static const char log_trunc[] = "...";

static char log_progname[LOG_PROGNAME_MAX] = "sluice";

void log_init(const char *progname)
{
    if (progname == NULL || progname[0] == '\0')
        progname = "sluice";
    size_t n = strnlen(progname, sizeof(log_progname) - 1);
    memcpy(log_progname, progname, n);
    log_progname[n] = '\0';
}

/* "2024-05-01T12:34:56.789Z": ISO 8601, UTC, milliseconds. */
static void log_format_time(char *dst, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL) {
        snprintf(dst, cap, "1970-01-01T00:00:00.000Z");
        return;
    }
    size_t k = strftime(dst, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(dst + k, cap - k, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000L) % 1000u);
}

void log_event(const char *event, const char *fmt, ...)
{
    int saved_errno = errno;
    char line[LOG_LINE_MAX];
    char when[32];
    size_t cap = sizeof(line) - 1; /* the newline always fits */
    size_t n;
    bool cut = false;

    log_format_time(when, sizeof(when));
    int r = snprintf(line, cap + 1, "%s %s[%ld]: event=%s", when, log_progname, (long)getpid(),
                     event ? event : "-");
    n = r < 0 ? 0 : (size_t)r;
    if (n > cap) {
        n = cap;
        cut = true;
    }
    if (!cut && fmt != NULL && fmt[0] != '\0' && n + 1 < cap) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        r = vsnprintf(line + n, cap + 1 - n, fmt, ap);
        va_end(ap);
        if (r <= 0) {
            n--; /* nothing followed the space */
        } else if ((size_t)r > cap - n) {
            n = cap;
            cut = true;
        } else {
            n += (size_t)r;
        }
    }
    if (cut) {
        memcpy(line + cap - (sizeof(log_trunc) - 1), log_trunc, sizeof(log_trunc) - 1);
        n = cap;
    }
    /* A caller that forgot log_value() must still not be able to split or forge a line. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            line[i] = '?';
    }
    line[n++] = '\n';

    ssize_t w;
    do {
        w = write(STDERR_FILENO, line, n);
    } while (w < 0 && errno == EINTR);
    errno = saved_errno;
}

static bool log_is_plain(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '"' && c != '\\';
}

const char *log_value(char *dst, size_t dstcap, const void *src, size_t srclen)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = src;
    bool quoted = srclen == 0;
    size_t full = 0;

    if (dstcap == 0)
        return "";
    for (size_t i = 0; i < srclen; i++) {
        if (log_is_plain(s[i])) {
            full += 1;
        } else {
            full += 4;
            quoted = true;
        }
    }
    size_t q = quoted ? 2 : 0;
    bool cut = full + q + 1 > dstcap;
    size_t reserve = q + 1 + (cut ? sizeof(log_trunc) - 1 : 0);
    size_t n = 0;

    if (reserve > dstcap) {
        /* Too small even for the quotes and the marker: keep as much of the marker as fits. */
        size_t k = dstcap - 1 < sizeof(log_trunc) - 1 ? dstcap - 1 : sizeof(log_trunc) - 1;
        memcpy(dst, log_trunc, k);
        dst[k] = '\0';
        return dst;
    }
    size_t budget = dstcap - reserve;
    if (quoted)
        dst[n++] = '"';
    for (size_t i = 0; i < srclen; i++) {
        if (log_is_plain(s[i])) {
            if (n + 1 > budget + (quoted ? 1 : 0))
                break;
            dst[n++] = (char)s[i];
        } else {
            if (n + 4 > budget + (quoted ? 1 : 0))
                break;
            dst[n++] = '\\';
            dst[n++] = 'x';
            dst[n++] = hex[s[i] >> 4];
            dst[n++] = hex[s[i] & 0xf];
        }
    }
    if (cut) {
        memcpy(dst + n, log_trunc, sizeof(log_trunc) - 1);
        n += sizeof(log_trunc) - 1;
    }
    if (quoted)
        dst[n++] = '"';
    dst[n] = '\0';
    return dst;
}
