/* session: the SMTP server side of one connection, on the worker's event loop.
 * A session_server holds what all sessions of a worker share (configuration, queue store,
 * directory, TLS context, connection counts); sessions find each other and late
 * asynchronous answers find them by id only. */
#ifndef SLUICE_SMTP_SESSION_H
#define SLUICE_SMTP_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "conf/conf.h"

struct event_base;
struct queue_store;
struct dir;
struct session_server;

struct session_server *session_server_new(struct event_base *base, const struct config *cfg,
                                          struct queue_store *store, struct dir *dir,
                                          SSL_CTX *tls);

/* Start a session on an accepted, non-blocking socket; takes the fd. Over the connection
 * limits the client gets a 421 and the fd is closed. */
void session_accept(struct session_server *srv, const struct conf_listener *l, int fd,
                    const struct sockaddr *sa, socklen_t salen);

/* Drain: idle sessions get 421 4.3.2 now, sessions inside a transaction after it ends. */
void session_server_shutdown(struct session_server *srv);

size_t session_server_count(const struct session_server *srv);

/* Drop every message still being received (its spool file goes); the queue store can then
 * be closed. Sessions waiting for a commit keep waiting for its answer. */
void session_server_abort_messages(struct session_server *srv);

/* Free the server and any session left. */
void session_server_free(struct session_server *srv);

#endif
