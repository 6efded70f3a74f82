/* pool: worker threads for blocking work, results posted back to an event loop through an
 * eventfd (see pool.h). Used by the queue manager for Maildir deliveries. Invariants: the
 * mutex is held only to move jobs between lists; done callbacks run only on the loop
 * thread, in the order the jobs finished; pool_free leaves no job without its done. */
#include "util/pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

struct pool_job {
    pool_work_fn work;
    pool_done_fn done;
    void *arg;
    struct pool_job *next;
};

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pool_job *todo, **todo_tail;
    struct pool_job *finished, **finished_tail;
    size_t pending;
    bool stop;
    int wake_fd;
    struct event *wake_ev;
    pthread_t *threads;
    unsigned nthreads;
};

static void *pool_thread(void *arg)
{
    struct pool *p = arg;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->todo == NULL && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->todo == NULL)
            break;
        struct pool_job *j = p->todo;
        p->todo = j->next;
        if (p->todo == NULL)
            p->todo_tail = &p->todo;
        pthread_mutex_unlock(&p->mu);
        j->work(j->arg);
        pthread_mutex_lock(&p->mu);
        j->next = NULL;
        *p->finished_tail = j;
        p->finished_tail = &j->next;
        uint64_t one = 1;
        if (write(p->wake_fd, &one, sizeof one) < 0) {
            /* The counter is saturated or the fd is gone: the loop reads it anyway. */
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_run_finished(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    struct pool_job *j = p->finished;
    p->finished = NULL;
    p->finished_tail = &p->finished;
    pthread_mutex_unlock(&p->mu);
    while (j != NULL) {
        struct pool_job *next = j->next;
        pthread_mutex_lock(&p->mu);
        p->pending--;
        pthread_mutex_unlock(&p->mu);
        j->done(j->arg);
        free(j);
        j = next;
    }
}

static void pool_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    uint64_t n;
    (void)what;
    if (read(fd, &n, sizeof n) < 0) {
        /* EAGAIN: a previous read took the count; the lists are what matter. */
    }
    pool_run_finished(arg);
}

struct pool *pool_new(struct event_base *base, unsigned nthreads)
{
    if (nthreads == 0) {
        errno = EINVAL;
        return NULL;
    }
    struct pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->todo_tail = &p->todo;
    p->finished_tail = &p->finished;
    p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p->threads = calloc(nthreads, sizeof *p->threads);
    if (p->wake_fd < 0 || p->threads == NULL)
        goto fail;
    p->wake_ev = event_new(base, p->wake_fd, EV_READ | EV_PERSIST, pool_wake_cb, p);
    if (p->wake_ev == NULL || event_add(p->wake_ev, NULL) != 0)
        goto fail;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (; p->nthreads < nthreads; p->nthreads++) {
        if (pthread_create(&p->threads[p->nthreads], NULL, pool_thread, p) != 0) {
            pool_free(p);
            errno = EAGAIN;
            return NULL;
        }
    }
    return p;
fail:
    if (p->wake_ev != NULL)
        event_free(p->wake_ev);
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    free(p->threads);
    free(p);
    errno = ENOMEM;
    return NULL;
}

int pool_submit(struct pool *p, pool_work_fn work, pool_done_fn done, void *arg)
{
    struct pool_job *j = malloc(sizeof *j);
    if (j == NULL) {
        errno = ENOMEM;
        return -1;
    }
    *j = (struct pool_job){.work = work, .done = done, .arg = arg};
    pthread_mutex_lock(&p->mu);
    *p->todo_tail = j;
    p->todo_tail = &j->next;
    p->pending++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

size_t pool_pending(const struct pool *p)
{
    return p->pending;
}

void pool_free(struct pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    /* The threads drained todo before stopping, so every job is in finished now. */
    pool_run_finished(p);
    event_free(p->wake_ev);
    close(p->wake_fd);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}
