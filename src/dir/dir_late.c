/* dir_late: a directory in front of another that hands each of its answers over from the
 * event loop, some milliseconds after the call returned, as a networked backend
 * (PostgreSQL) would. The tests run the session through it (SLUICE_DIR_DELAY_MS, set for
 * the workers only) to show that the session needs no change for such a backend: answers
 * find their session by id, pipelined commands keep their order, and an answer for a
 * session that has gone is dropped. Calls the wrapped backend through dir.c, and libevent. */
#include "dir/dir_priv.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

struct dir_late;

/* One answer on its way: a deep copy, since the backend's strings live only during its
 * callback. */
struct late_answer {
    struct dir_late *owner;
    struct late_answer *prev, *next;
    struct event *ev;
    dir_lookup_cb lookup_cb; /* one of the two is set */
    dir_expand_cb expand_cb;
    void *arg;
    struct dir_answer answer; /* lookup: its strings are the copies below */
    char *strings[4];
    char **targets; /* expand */
    size_t n;
    bool tempfail; /* hand over DIR_TEMPFAIL instead: no copy could be made, or aborted */
};

struct dir_late {
    struct dir base;
    struct dir *inner;
    struct event_base *evbase;
    struct timeval delay;
    struct late_answer *pending;
    bool aborted; /* dir_abort_pending was called: everything is answered at once */
};

static void late_unlink(struct late_answer *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        p->owner->pending = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
}

static void late_free(struct late_answer *p)
{
    if (p->ev != NULL)
        event_free(p->ev);
    for (size_t i = 0; i < sizeof p->strings / sizeof p->strings[0]; i++)
        free(p->strings[i]);
    for (size_t i = 0; i < p->n; i++)
        free(p->targets[i]);
    free(p->targets);
    free(p);
}

/* Hands the answer to its caller and forgets it. */
static void late_deliver(struct late_answer *p)
{
    late_unlink(p);
    if (p->lookup_cb != NULL) {
        if (p->tempfail)
            dir_answer_only(DIR_TEMPFAIL, p->lookup_cb, p->arg);
        else
            p->lookup_cb(&p->answer, p->arg);
    } else if (p->tempfail) {
        p->expand_cb(DIR_TEMPFAIL, NULL, 0, 0, p->arg);
    } else {
        p->expand_cb(p->answer.result, (const char *const *)p->targets, p->n, p->answer.quota,
                     p->arg);
    }
    late_free(p);
}

static void late_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    late_deliver(arg);
}

static struct late_answer *late_new(struct dir_late *d, dir_lookup_cb lcb, dir_expand_cb xcb,
                                    void *arg)
{
    struct late_answer *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->owner = d;
    p->lookup_cb = lcb;
    p->expand_cb = xcb;
    p->arg = arg;
    p->ev = evtimer_new(d->evbase, late_fire, p);
    if (p->ev == NULL) {
        free(p);
        return NULL;
    }
    p->next = d->pending;
    if (d->pending != NULL)
        d->pending->prev = p;
    d->pending = p;
    return p;
}

/* The backend's answer arrived (during the call, or later for a backend that answers
 * later itself): keep a copy and schedule its hand-over. A copy that cannot be made is
 * handed over as TEMPFAIL. */
static void late_schedule(struct late_answer *p, bool copied)
{
    p->tempfail = !copied || p->owner->aborted;
    if (p->owner->aborted || evtimer_add(p->ev, &p->owner->delay) != 0)
        late_deliver(p);
}

static void late_lookup_copy(const struct dir_answer *a, void *arg)
{
    struct late_answer *p = arg;
    const char *src[] = {a->address, a->name, a->password_hash, a->scram};
    bool ok = true;
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++)
        ok = ok && (p->strings[i] = strdup(src[i] != NULL ? src[i] : "")) != NULL;
    p->answer = *a;
    p->answer.address = p->strings[0];
    p->answer.name = p->strings[1];
    p->answer.password_hash = p->strings[2];
    p->answer.scram = p->strings[3];
    late_schedule(p, ok);
}

static void late_expand_copy(enum dir_result result, const char *const *targets, size_t n,
                             uint64_t quota, void *arg)
{
    struct late_answer *p = arg;
    bool ok = n == 0 || (p->targets = calloc(n, sizeof *p->targets)) != NULL;
    for (size_t i = 0; ok && i < n; i++, p->n++)
        ok = (p->targets[i] = strdup(targets[i])) != NULL;
    p->answer.result = result;
    p->answer.quota = quota;
    late_schedule(p, ok);
}

static struct late_answer *late_start(struct dir *dd, dir_lookup_cb lcb, dir_expand_cb xcb,
                                      void *arg)
{
    struct dir_late *d = (struct dir_late *)dd;
    struct late_answer *p = d->aborted ? NULL : late_new(d, lcb, xcb, arg);
    if (p == NULL) {
        if (lcb != NULL)
            dir_answer_only(DIR_TEMPFAIL, lcb, arg);
        else
            xcb(DIR_TEMPFAIL, NULL, 0, 0, arg);
    }
    return p;
}

static void late_lookup(struct dir *dd, const char *address, dir_lookup_cb cb, void *arg)
{
    struct late_answer *p = late_start(dd, cb, NULL, arg);
    if (p != NULL)
        dir_lookup(((struct dir_late *)dd)->inner, address, late_lookup_copy, p);
}

static void late_expand(struct dir *dd, const char *address, dir_expand_cb cb, void *arg)
{
    struct late_answer *p = late_start(dd, NULL, cb, arg);
    if (p != NULL)
        dir_expand(((struct dir_late *)dd)->inner, address, late_expand_copy, p);
}

static void late_login(struct dir *dd, const char *address, dir_lookup_cb cb, void *arg)
{
    struct late_answer *p = late_start(dd, cb, NULL, arg);
    if (p != NULL)
        dir_login(((struct dir_late *)dd)->inner, address, late_lookup_copy, p);
}

static void late_certificate(struct dir *dd, const char *fingerprint, dir_lookup_cb cb, void *arg)
{
    struct late_answer *p = late_start(dd, cb, NULL, arg);
    if (p != NULL)
        dir_certificate(((struct dir_late *)dd)->inner, fingerprint, late_lookup_copy, p);
}

static void late_owns(struct dir *dd, const char *login, const char *sender, dir_lookup_cb cb,
                      void *arg)
{
    struct late_answer *p = late_start(dd, cb, NULL, arg);
    if (p != NULL)
        dir_owns(((struct dir_late *)dd)->inner, login, sender, late_lookup_copy, p);
}

/* Answers handed over here may start new requests; those are answered at once (aborted). */
static void late_abort_pending(struct dir *dd)
{
    struct dir_late *d = (struct dir_late *)dd;
    d->aborted = true;
    dir_abort_pending(d->inner);
    while (d->pending != NULL) {
        d->pending->tempfail = true;
        late_deliver(d->pending);
    }
}

static void late_close(struct dir *dd)
{
    struct dir_late *d = (struct dir_late *)dd;
    late_abort_pending(dd);
    dir_close(d->inner);
    free(d);
}

#define DIR_LATE_OPS(domains)                                                                      \
    {                                                                                              \
        .lookup = late_lookup, .expand = late_expand, .login = late_login,                         \
        .certificate = late_certificate, .owns = late_owns, .close = late_close,                   \
        .abort_pending = late_abort_pending, .has_domains = (domains),                             \
    }

/* has_domains is the wrapped backend's. */
static const struct dir_ops dir_late_ops[2] = {DIR_LATE_OPS(false), DIR_LATE_OPS(true)};

struct dir *dir_answer_later(struct dir *inner, struct event_base *base, unsigned delay_ms)
{
    struct dir_late *d = calloc(1, sizeof *d);
    if (d == NULL) {
        dir_close(inner);
        return NULL;
    }
    d->base.ops = &dir_late_ops[dir_has_domains(inner)];
    d->base.separator = inner->separator;
    d->inner = inner;
    d->evbase = base;
    d->delay.tv_sec = delay_ms / 1000;
    d->delay.tv_usec = (suseconds_t)(delay_ms % 1000) * 1000;
    return &d->base;
}
