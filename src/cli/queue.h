/* cli/queue: `sluice queue ...` and mailq, clients of the queue manager's control socket
 * (queue/ctl.h), and the socket plumbing that `sluice sendmail` shares. */
#ifndef SLUICE_CLI_QUEUE_H
#define SLUICE_CLI_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "queue/ctl.h"

/* sysexits(3) values the tools return. */
#define QUEUE_CLI_EX_USAGE 64
#define QUEUE_CLI_EX_UNAVAILABLE 69
#define QUEUE_CLI_EX_TEMPFAIL 75

#define QUEUE_CLI_TIMEOUT_S 30 /* every read and write on the control socket */
#define QUEUE_CLI_DEFAULT_CONF "/etc/sluice/sluice.conf"

/* `sluice queue list|show|flush|hold|release|delete ...`: argv[0] is "queue". conf_path is
 * the -c FILE (NULL: the default). Returns the exit status: 0, 1 (the server said err),
 * 2 (usage), 75 (the socket could not be reached, or the server broke the protocol). */
int queue_cli_main(int argc, char **argv, const char *conf_path);

/* mailq: the Postfix-style listing. Same exit statuses. */
int queue_cli_mailq(const char *conf_path);

/* The configuration: conf_path, else QUEUE_CLI_DEFAULT_CONF when it exists, else the
 * embedded default. Prints the errors to stderr and returns NULL on failure. */
struct config *queue_cli_load_conf(const char *conf_path, const char *prog);

/* Connect to <spool>/public/control with QUEUE_CLI_TIMEOUT_S timeouts; the fd, or -1 with
 * errno set. */
int queue_cli_connect(const struct config *cfg);

/* Write all of p[0..n), retrying short writes; 0 or -1 with errno (ETIMEDOUT after the
 * timeout). Never raises SIGPIPE. */
int queue_cli_write_all(int fd, const void *p, size_t n);

/* Buffered line reader for the control socket. */
struct queue_cli_reader {
    int fd;
    char buf[CTL_LINE_MAX];
    size_t start; /* first unread octet */
    size_t end;   /* octets held */
};

/* The next line without its LF into *line and *len (valid until the next call): 1, 0 at the end
 * of the stream, -1 on a read error, a timeout or a line longer than CTL_LINE_MAX. */
int queue_cli_read_line(struct queue_cli_reader *r, const char **line, size_t *len);

#endif
