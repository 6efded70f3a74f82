/* test_pool: the thread pool (util/pool.c): work runs off the loop thread, every done runs
 * on it exactly once, and pool_free leaves no job without its done. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <event2/event.h>

#include "util/pool.h"

#define JOBS 200

struct job {
    pthread_t loop;
    bool worked_off_loop;
    atomic_int worked;
    int done;
    bool done_on_loop;
    struct event_base *base;
    int *remaining;
};

static void work(void *arg)
{
    struct job *j = arg;
    j->worked_off_loop = !pthread_equal(pthread_self(), j->loop);
    atomic_fetch_add(&j->worked, 1);
}

static void done(void *arg)
{
    struct job *j = arg;
    j->done++;
    j->done_on_loop = pthread_equal(pthread_self(), j->loop);
    if (--*j->remaining == 0)
        event_base_loopbreak(j->base);
}

static void test_every_job_done_once_on_the_loop(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct pool *p = pool_new(base, 4);
    static struct job jobs[JOBS];
    int remaining = JOBS;
    assert_non_null(p);
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (struct job){.loop = pthread_self(), .base = base, .remaining = &remaining};
        assert_int_equal(pool_submit(p, work, done, &jobs[i]), 0);
    }
    assert_int_equal(jobs[0].done, 0); /* never from inside pool_submit */
    event_base_dispatch(base);
    assert_int_equal(remaining, 0);
    assert_int_equal(pool_pending(p), 0);
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(atomic_load(&jobs[i].worked), 1);
        assert_int_equal(jobs[i].done, 1);
        assert_true(jobs[i].worked_off_loop);
        assert_true(jobs[i].done_on_loop);
    }
    pool_free(p);
    event_base_free(base);
}

static void test_free_finishes_what_was_queued(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct pool *p = pool_new(base, 1);
    static struct job jobs[JOBS];
    int remaining = JOBS + 1; /* the loop never runs: nothing breaks it */
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (struct job){.loop = pthread_self(), .base = base, .remaining = &remaining};
        assert_int_equal(pool_submit(p, work, done, &jobs[i]), 0);
    }
    pool_free(p);
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(atomic_load(&jobs[i].worked), 1);
        assert_int_equal(jobs[i].done, 1);
    }
    event_base_free(base);
}

static void test_zero_threads_refused(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_null(pool_new(base, 0));
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_job_done_once_on_the_loop),
        cmocka_unit_test(test_free_finishes_what_was_queued),
        cmocka_unit_test(test_zero_threads_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
