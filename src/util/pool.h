/* pool: a fixed set of threads that run blocking work (file delivery with fsync, later
 * password hashing) off an event loop, and hand each result back on that loop. The loop
 * never waits on a thread; a thread never touches the loop's state. */
#ifndef SLUICE_UTIL_POOL_H
#define SLUICE_UTIL_POOL_H

#include <stddef.h>

struct event_base;
struct pool;

/* work runs on a pool thread; done then runs on the loop thread with the same arg. */
typedef void (*pool_work_fn)(void *arg);
typedef void (*pool_done_fn)(void *arg);

/* nthreads >= 1. NULL + errno. */
struct pool *pool_new(struct event_base *base, unsigned nthreads);

/* Queue one job; 0, or -1 with errno ENOMEM. done never runs from inside this call. */
int pool_submit(struct pool *p, pool_work_fn work, pool_done_fn done, void *arg);

/* Jobs queued or running. */
size_t pool_pending(const struct pool *p);

/* Let the running jobs finish, run every done callback of finished jobs, drop the jobs that
 * never started (their done runs too, after their work: nothing is silently lost), join the
 * threads and free. */
void pool_free(struct pool *p);

#endif
