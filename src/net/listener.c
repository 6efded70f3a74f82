/* listener: bind in the master, accept in the workers (see listener.h).
 * Accepting is level-triggered on a non-blocking socket shared by all workers: a worker that
 * loses the race gets EAGAIN and goes back to its loop. On EMFILE/ENFILE the listener stops
 * for 100 ms rather than wake up at once for the same pending connection (HOSTILE-INPUTS H6). */
#include "net/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "util/log.h"

#define LISTENER_BACKLOG 1024
#define LISTENER_ACCEPTS_PER_WAKE 64

struct listener {
    int fd;
    struct event *ev;
    struct event *pause;
    listener_accept_cb cb;
    void *arg;
};

int listener_bind(const char *address, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    const char *h = address;
    size_t hlen;

    if (colon == NULL || colon[1] == '\0') {
        snprintf(err, errlen, "%s: expected host:port", address);
        return -1;
    }
    hlen = (size_t)(colon - address);
    if (hlen >= 2 && address[0] == '[' && address[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof host) {
        snprintf(err, errlen, "%s: host too long", address);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';

    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(strcmp(host, "*") == 0 || hlen == 0 ? NULL : host, colon + 1, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", address, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, LISTENER_BACKLOG) != 0) {
        snprintf(err, errlen, "%s: %s", address, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;
    (void)fd;
    (void)what;
    event_add(l->ev, NULL);
}

static void listener_accept_ready_cb(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;
    (void)what;

    for (int i = 0; i < LISTENER_ACCEPTS_PER_WAKE; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int c = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                struct timeval tv = {0, 100000};
                log_event("accept_paused", "error=%s", strerror(errno));
                event_del(l->ev);
                evtimer_add(l->pause, &tv);
            }
            return;
        }
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        l->cb(c, (struct sockaddr *)&ss, sl, l->arg);
    }
}

struct listener *listener_start(struct event_base *base, int fd, listener_accept_cb cb, void *arg)
{
    struct listener *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->fd = fd;
    l->cb = cb;
    l->arg = arg;
    l->ev = event_new(base, fd, EV_READ | EV_PERSIST, listener_accept_ready_cb, l);
    l->pause = evtimer_new(base, listener_resume_cb, l);
    if (l->ev == NULL || l->pause == NULL || event_add(l->ev, NULL) != 0) {
        listener_free(l);
        return NULL;
    }
    return l;
}

void listener_free(struct listener *l)
{
    if (l == NULL)
        return;
    if (l->ev != NULL)
        event_free(l->ev);
    if (l->pause != NULL)
        event_free(l->pause);
    free(l);
}
