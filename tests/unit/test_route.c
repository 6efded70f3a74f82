/* test_route: RCPT routing decisions, including every relay trick of HOSTILE-INPUTS B10
 * and the postmaster rule of RFC 5321 §4.5.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/route.h"

static char *domains[] = {"mx.test", "localhost"};
static struct config cfg = {.domains = domains, .ndomains = 2};

struct route_case {
    const char *name;
    const char *path;
    bool may_relay;
    enum route_verdict want;
};

static const struct route_case cases[] = {
    {"local mailbox", "<alice@mx.test>", false, ROUTE_LOCAL},
    {"local domain is case-insensitive", "<alice@MX.Test>", false, ROUTE_LOCAL},
    {"RFC 5321 §4.5.1 postmaster@local", "<postmaster@mx.test>", false, ROUTE_POSTMASTER},
    {"RFC 5321 §4.5.1 PostMaster any case", "<PostMaster@localhost>", false, ROUTE_POSTMASTER},
    {"RFC 5321 §4.1.1.3 bare <Postmaster>", "<Postmaster>", false, ROUTE_POSTMASTER},
    {"B10 remote domain", "<x@remote.example>", false, ROUTE_RELAY_DENIED},
    {"B10 percent hack", "<victim%remote.example@mx.test>", false, ROUTE_RELAY_DENIED},
    {"B10 bang path", "<remote.example!victim@mx.test>", false, ROUTE_RELAY_DENIED},
    {"B10 quoted at sign", "<\"victim@remote.example\"@mx.test>", false, ROUTE_RELAY_DENIED},
    {"B10 source route to remote", "<@mx.test:victim@remote.example>", false, ROUTE_RELAY_DENIED},
    {"B10 address literal", "<u@[127.0.0.1]>", false, ROUTE_RELAY_DENIED},
    {"B10 postmaster of a remote domain", "<postmaster@remote.example>", false,
     ROUTE_RELAY_DENIED},
    {"source route to local is local", "<@remote.example:alice@mx.test>", false, ROUTE_LOCAL},
    {"relay allowed for a trusted client", "<x@remote.example>", true, ROUTE_RELAY},
    {"no %-hack: a relaying client's percent form is a local part", "<victim%remote.example@mx.test>",
     true, ROUTE_LOCAL},
    {"no %-hack: a relaying client's bang path is a local part", "<remote.example!victim@mx.test>",
     true, ROUTE_LOCAL},
    {"subdomain of a local domain is not local", "<x@sub.mx.test>", false, ROUTE_RELAY_DENIED},
};

static void test_route_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct addr_path p;
        size_t used;
        enum addr_result r = addr_parse_path(cases[i].path, strlen(cases[i].path),
                                             ADDR_ALLOW_POSTMASTER, &p, &used);
        if (r != ADDR_OK)
            fail_msg("%s: path did not parse (%d)", cases[i].name, (int)r);
        enum route_verdict got = route_rcpt(&cfg, &p, cases[i].may_relay);
        if (got != cases[i].want)
            fail_msg("%s: got %d, want %d", cases[i].name, (int)got, (int)cases[i].want);
    }
}

static void test_route_is_local_domain(void **state)
{
    (void)state;
    assert_true(route_is_local_domain(&cfg, "mx.test"));
    assert_true(route_is_local_domain(&cfg, "localhost"));
    assert_false(route_is_local_domain(&cfg, "mx.tes"));
    assert_false(route_is_local_domain(&cfg, ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_table),
        cmocka_unit_test(test_route_is_local_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
