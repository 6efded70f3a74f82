/* test_dir_late: the wrapper that hands a backend's answers over from the event loop later
 * (dir/dir_late.c), over a fake backend that answers during the call, or keeps a request
 * for later, and spoils its strings as soon as its callback returns: answers come after the
 * call, in order, as copies; a callback may ask again; dir_abort_pending answers what is
 * pending (and what the backend still holds) with TEMPFAIL, and everything after it at once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir/dir_priv.h"

/* ---- the fake backend ---- */

struct fake {
    struct dir base;
    bool hold;              /* keep the next lookup instead of answering it */
    dir_lookup_cb held_cb;
    void *held_arg;
    bool closed;
    int aborts;
};

static struct fake *fake_of(struct dir *d)
{
    return (struct fake *)d;
}

/* Answers with strings that are overwritten and freed once the callback returns: a caller
 * that kept a pointer reads junk (or ASan stops it). */
static void fake_answer(const char *address, dir_lookup_cb cb, void *arg)
{
    char *addr = strdup(address), *name = strdup("Name of ");
    assert_non_null(addr);
    assert_non_null(name);
    struct dir_answer a = {.result = DIR_MAILBOX, .address = addr, .name = name,
                           .password_hash = "$y$hash", .scram = "creds", .quota = 4096};
    cb(&a, arg);
    memset(addr, 'Z', strlen(addr));
    memset(name, 'Z', strlen(name));
    free(addr);
    free(name);
}

static void fake_lookup(struct dir *d, const char *address, dir_lookup_cb cb, void *arg)
{
    struct fake *f = fake_of(d);
    if (f->hold) {
        f->hold = false;
        f->held_cb = cb;
        f->held_arg = arg;
        return;
    }
    fake_answer(address, cb, arg);
}

static void fake_expand(struct dir *d, const char *address, dir_expand_cb cb, void *arg)
{
    (void)d;
    char *t[2] = {strdup(address), strdup("second@x.test")};
    assert_non_null(t[0]);
    assert_non_null(t[1]);
    cb(DIR_ALIAS, (const char *const *)t, 2, 0, arg);
    for (size_t i = 0; i < 2; i++) {
        memset(t[i], 'Z', strlen(t[i]));
        free(t[i]);
    }
}

static void fake_owns(struct dir *d, const char *login, const char *sender, dir_lookup_cb cb,
                      void *arg)
{
    (void)login;
    fake_lookup(d, sender, cb, arg);
}

static void fake_abort(struct dir *d)
{
    struct fake *f = fake_of(d);
    f->aborts++;
    if (f->held_cb != NULL) {
        dir_lookup_cb cb = f->held_cb;
        f->held_cb = NULL;
        dir_answer_only(DIR_TEMPFAIL, cb, f->held_arg);
    }
}

static void fake_close(struct dir *d)
{
    fake_of(d)->closed = true;
}

static const struct dir_ops fake_ops = {
    .lookup = fake_lookup,
    .expand = fake_expand,
    .login = fake_lookup,
    .certificate = fake_lookup,
    .owns = fake_owns,
    .close = fake_close,
    .abort_pending = fake_abort,
    .has_domains = true,
};

/* ---- what the callers saw ---- */

#define GOT_MAX 16

struct got {
    size_t n;
    struct {
        enum dir_result result;
        char address[64];
        char name[64];
        uint64_t quota;
        size_t ntargets;
        char targets[2][64];
        bool during_call; /* came while the test was still inside the dir_* call */
    } a[GOT_MAX];
};

static struct got got;
static bool in_call;
static struct dir *late;
static int ask_again; /* lookups the callback still makes */

static void lookup_cb(const struct dir_answer *a, void *arg)
{
    (void)arg;
    assert_true(got.n < GOT_MAX);
    size_t k = got.n++;
    got.a[k].result = a->result;
    snprintf(got.a[k].address, sizeof got.a[k].address, "%s", a->address);
    snprintf(got.a[k].name, sizeof got.a[k].name, "%s", a->name);
    got.a[k].quota = a->quota;
    got.a[k].during_call = in_call;
    if (ask_again > 0) {
        ask_again--;
        in_call = true;
        dir_lookup(late, "again@x.test", lookup_cb, NULL);
        in_call = false;
    }
}

static void expand_cb(enum dir_result result, const char *const *targets, size_t n,
                      uint64_t quota, void *arg)
{
    (void)arg;
    assert_true(got.n < GOT_MAX);
    size_t k = got.n++;
    got.a[k].result = result;
    got.a[k].quota = quota;
    got.a[k].ntargets = n;
    for (size_t i = 0; i < n && i < 2; i++)
        snprintf(got.a[k].targets[i], sizeof got.a[k].targets[i], "%s", targets[i]);
    got.a[k].during_call = in_call;
}

static struct fake *setup(struct event_base **base)
{
    memset(&got, 0, sizeof got);
    ask_again = 0;
    *base = event_base_new();
    assert_non_null(*base);
    struct fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->base.ops = &fake_ops;
    f->base.separator = '-';
    late = dir_answer_later(&f->base, *base, 5);
    assert_non_null(late);
    return f;
}

/* The answers come from the loop, after the calls returned, as copies (the backend spoiled
 * its own strings at once), with the quota and expand's targets. Their order is not
 * promised (a networked backend's would not be): a session has one request out at a time. */
static void test_answers_come_later_in_order_as_copies(void **state)
{
    (void)state;
    struct event_base *base;
    struct fake *f = setup(&base);
    assert_true(dir_has_domains(late));
    in_call = true;
    dir_lookup(late, "one@x.test", lookup_cb, NULL);
    dir_expand(late, "list@x.test", expand_cb, NULL);
    dir_owns(late, "one@x.test", "three@x.test", lookup_cb, NULL);
    in_call = false;
    assert_int_equal(got.n, 0);
    event_base_dispatch(base);
    assert_int_equal(got.n, 3);
    bool one = false, list = false, three = false;
    for (size_t k = 0; k < 3; k++) {
        assert_false(got.a[k].during_call);
        if (got.a[k].result == DIR_ALIAS) {
            assert_int_equal(got.a[k].ntargets, 2);
            assert_string_equal(got.a[k].targets[0], "list@x.test");
            assert_string_equal(got.a[k].targets[1], "second@x.test");
            list = true;
            continue;
        }
        assert_int_equal(got.a[k].result, DIR_MAILBOX);
        assert_string_equal(got.a[k].name, "Name of ");
        assert_int_equal(got.a[k].quota, 4096);
        one = one || strcmp(got.a[k].address, "one@x.test") == 0;
        three = three || strcmp(got.a[k].address, "three@x.test") == 0;
    }
    assert_true(one && list && three);
    dir_close(late);
    assert_true(f->closed);
    free(f);
    event_base_free(base);
}

/* A callback that asks again gets that answer later too, never from inside itself. */
static void test_a_callback_may_ask_again(void **state)
{
    (void)state;
    struct event_base *base;
    struct fake *f = setup(&base);
    ask_again = 2;
    dir_lookup(late, "first@x.test", lookup_cb, NULL);
    event_base_dispatch(base);
    assert_int_equal(got.n, 3);
    assert_string_equal(got.a[0].address, "first@x.test");
    for (size_t k = 1; k < 3; k++) {
        assert_false(got.a[k].during_call);
        assert_string_equal(got.a[k].address, "again@x.test");
    }
    dir_close(late);
    free(f);
    event_base_free(base);
}

/* dir_abort_pending: what is pending (a copy waiting for the loop, and a request the
 * backend still holds) is answered TEMPFAIL at once; a request after it is answered
 * TEMPFAIL during its call, and a callback asking again during the abort too. */
static void test_abort_pending(void **state)
{
    (void)state;
    struct event_base *base;
    struct fake *f = setup(&base);
    dir_lookup(late, "waiting@x.test", lookup_cb, NULL);
    f->hold = true;
    dir_lookup(late, "held@x.test", lookup_cb, NULL);
    assert_non_null(f->held_cb);
    ask_again = 1;
    dir_abort_pending(late);
    assert_int_equal(f->aborts, 1);
    assert_null(f->held_cb);
    assert_int_equal(got.n, 3); /* the two pending, and the callback's new request */
    size_t during = 0;
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(got.a[k].result, DIR_TEMPFAIL);
        during += got.a[k].during_call;
    }
    assert_int_equal(during, 1);
    in_call = true;
    dir_lookup(late, "after@x.test", lookup_cb, NULL);
    dir_expand(late, "after@x.test", expand_cb, NULL);
    in_call = false;
    assert_int_equal(got.n, 5);
    assert_int_equal(got.a[3].result, DIR_TEMPFAIL);
    assert_int_equal(got.a[4].result, DIR_TEMPFAIL);
    assert_true(got.a[3].during_call && got.a[4].during_call);
    assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1); /* nothing scheduled */
    dir_close(late);
    free(f);
    event_base_free(base);
}

/* dir_close with answers still pending answers them (TEMPFAIL) rather than leak them. */
static void test_close_answers_what_is_pending(void **state)
{
    (void)state;
    struct event_base *base;
    struct fake *f = setup(&base);
    dir_lookup(late, "a@x.test", lookup_cb, NULL);
    dir_expand(late, "b@x.test", expand_cb, NULL);
    dir_close(late);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.a[0].result, DIR_TEMPFAIL);
    assert_int_equal(got.a[1].result, DIR_TEMPFAIL);
    assert_true(f->closed);
    free(f);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_come_later_in_order_as_copies),
        cmocka_unit_test(test_a_callback_may_ask_again),
        cmocka_unit_test(test_abort_pending),
        cmocka_unit_test(test_close_answers_what_is_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
