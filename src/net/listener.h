/* listener: listening sockets. The master binds them (before dropping privileges) and the
 * workers inherit them and accept on their own event loops. */
#ifndef SLUICE_NET_LISTENER_H
#define SLUICE_NET_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct listener;

/* Bind and listen on "host:port", "[v6]:port" or "*:port". Returns the fd or -1 with a
 * message in err. */
int listener_bind(const char *address, char *err, size_t errlen);

typedef void (*listener_accept_cb)(int fd, const struct sockaddr *sa, socklen_t salen, void *arg);

/* Accept on fd from base. Running out of descriptors (EMFILE/ENFILE, H6) pauses accepting
 * for a moment instead of spinning. The fd stays open when the listener is freed. */
struct listener *listener_start(struct event_base *base, int fd, listener_accept_cb cb, void *arg);

void listener_free(struct listener *l);

#endif
