/* test_date: RFC 5322 §3.3 dates in UTC, whatever the locale, and the range limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <locale.h>

#include <cmocka.h>

#include "util/date.h"

static const struct {
    int64_t t;
    const char *want;
} date_cases[] = {
    {0, "Thu, 01 Jan 1970 00:00:00 +0000"},
    {951782400, "Tue, 29 Feb 2000 00:00:00 +0000"},
    {951868799, "Tue, 29 Feb 2000 23:59:59 +0000"},
    {1709164800, "Thu, 29 Feb 2024 00:00:00 +0000"},
    {4107542400, "Mon, 01 Mar 2100 00:00:00 +0000"},
    {1795402739, "Mon, 23 Nov 2026 02:58:59 +0000"},
    {253402300799LL, "Fri, 31 Dec 9999 23:59:59 +0000"},
};

static void test_date_table(void **state)
{
    char out[DATE_RFC5322_LEN];
    (void)state;
    /* A locale with other day names, where installed, must not show (strftime %a would). */
    setlocale(LC_TIME, "fr_FR.UTF-8");
    for (size_t i = 0; i < sizeof date_cases / sizeof date_cases[0]; i++) {
        assert_true(date_rfc5322(out, date_cases[i].t));
        assert_string_equal(out, date_cases[i].want);
    }
    setlocale(LC_TIME, "C");
}

static void test_date_out_of_range(void **state)
{
    char out[DATE_RFC5322_LEN] = "x";
    (void)state;
    assert_false(date_rfc5322(out, -1));
    assert_string_equal(out, "");
    assert_false(date_rfc5322(out, 253402300800LL));
    assert_false(date_rfc5322(out, INT64_MAX));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_table),
        cmocka_unit_test(test_date_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
