/* daemon: entry points of the sluiced processes (wiring only). */
#ifndef SLUICE_DAEMON_DAEMON_H
#define SLUICE_DAEMON_DAEMON_H

#include <signal.h>

#include "conf/conf.h"

#define DAEMON_DRAIN_SECONDS 30

/* Master: bind, fork and supervise workers until SIGTERM. conf_path NULL = embedded default. */
int master_run(struct config *cfg, const char *conf_path);

/* The signals a worker acts on (stop, retire), held by the master around fork() until the
 * worker has installed its own handlers. */
void daemon_worker_signals(sigset_t *set);

/* Worker: serve SMTP on the inherited listening sockets (fds[i] for cfg->listeners[i]). */
int worker_main(const struct config *cfg, const int *fds, unsigned index);

/* Queue manager: deliver what is in the spool's queue/ until SIGTERM. */
int qmgr_main(const struct config *cfg);

#endif
