/* test_sched: the scheduler's pure rules (queue/scheduler.c): the retry backoff and the
 * Maildir path template, which must never let an address climb out of the mail tree. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "queue/scheduler.h"

static void test_backoff_doubles_to_the_cap(void **state)
{
    (void)state;
    const uint64_t min = 5 * 60 * 1000, max = 60 * 60 * 1000;
    static const struct {
        unsigned attempts;
        uint64_t want;
    } rows[] = {
        {1, 5 * 60 * 1000}, {2, 10 * 60 * 1000}, {3, 20 * 60 * 1000}, {4, 40 * 60 * 1000},
        {5, 60 * 60 * 1000}, {6, 60 * 60 * 1000}, {1000, 60 * 60 * 1000}, {0, 5 * 60 * 1000},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_int_equal(sched_backoff_ms(rows[i].attempts, min, max), rows[i].want);
    assert_int_equal(sched_backoff_ms(4000000000u, 1, UINT64_MAX / 2), UINT64_MAX / 2);
}

static void test_maildir_path(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl, *local, *domain, *want; /* want NULL: refused */
    } rows[] = {
        {"/var/mail/%d/%u", "alice", "example.org", "/var/mail/example.org/alice"},
        {"/home/%u/Maildir", "bob", "x.test", "/home/bob/Maildir"},
        {"/m/%%/%u%%", "a", "d", "/m/%/a%"},
        {"/var/mail/%d/%u", "first.last", "d.test", "/var/mail/d.test/first.last"},
        {"/var/mail/%d/%u", "\xc3\xa9l\xc3\xa8ve", "d.test", "/var/mail/d.test/\xc3\xa9l\xc3\xa8ve"},
        {"/var/mail/%d/%u", "../../etc", "d.test", NULL},
        {"/var/mail/%d/%u", "a/b", "d.test", NULL},
        {"/var/mail/%d/%u", ".hidden", "d.test", NULL},
        {"/var/mail/%d/%u", "", "d.test", NULL},
        {"/var/mail/%d/%u", "a", "..", NULL},
        {"/var/mail/%d/%u", "a\nb", "d.test", NULL},
        {"/var/mail/%d/%u", "a\x7f", "d.test", NULL},
        {"/var/mail/%x/%u", "a", "d.test", NULL},
        {"/var/mail/%", "a", "d.test", NULL},
    };
    char out[256];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int rc = sched_maildir_path(rows[i].tmpl, rows[i].local, rows[i].domain, out, sizeof out);
        if (rows[i].want == NULL) {
            assert_int_equal(rc, -1);
        } else {
            assert_int_equal(rc, 0);
            assert_string_equal(out, rows[i].want);
        }
    }
}

static void test_maildir_path_too_long(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(sched_maildir_path("/m/%d/%u", "alice", "d.test", out, sizeof out), 0);
    assert_string_equal(out, "/m/d.test/alice");
    assert_int_equal(sched_maildir_path("/m/%d/%u", "alice2", "d.test", out, sizeof out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_to_the_cap),
        cmocka_unit_test(test_maildir_path),
        cmocka_unit_test(test_maildir_path_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
