/* daemon: entry points of the sluiced processes (wiring only). */
#ifndef SLUICE_DAEMON_DAEMON_H
#define SLUICE_DAEMON_DAEMON_H

#include "conf/conf.h"

#define DAEMON_DRAIN_SECONDS 30

/* Master: bind, fork and supervise workers until SIGTERM. conf_path NULL = embedded default. */
int master_run(struct config *cfg, const char *conf_path);

/* Worker: serve SMTP on the inherited listening sockets (fds[i] for cfg->listeners[i]). */
int worker_main(const struct config *cfg, const int *fds, unsigned index);

#endif
