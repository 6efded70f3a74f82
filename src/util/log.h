/* log: one key=value line per decision, to stderr (the master collects it).
 * Values that come from the network go through log_value() so a line can never
 * be split or forged by a client. */
#ifndef SLUICE_UTIL_LOG_H
#define SLUICE_UTIL_LOG_H

#include <stddef.h>

/* Set the program name shown in each line ("sluiced/worker", "sluice"). */
void log_init(const char *progname);

/* Write "<ISO time> <progname>[<pid>]: event=<event> <formatted rest>\n" in one write(2). */
void log_event(const char *event, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Render untrusted bytes as a log value: printable ASCII as is, everything else
 * (and '"', '\\', ' ') as \xHH, the whole thing quoted when it had to be escaped
 * or is empty; truncated with "..." past dstcap. Always NUL-terminates dst. */
const char *log_value(char *dst, size_t dstcap, const void *src, size_t srclen);

#endif
