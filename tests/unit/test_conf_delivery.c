/* test_conf_delivery: the delivery settings of sluice.conf (conf/conf.c): the delivery and
 * delivery-timeouts blocks with their defaults and ranges, per-domain maildir/lmtp, and
 * remote DOMAIN { tls } blocks; every refusal with its line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "conf/conf.h"

#define BASE "listen smtp { address 127.0.0.1:25 }\n"

static struct config *parse(const char *body, struct conf_errors *errs)
{
    static char text[4096];
    size_t n = strlen(BASE);
    memcpy(text, BASE, n);
    memcpy(text + n, body, strlen(body) + 1);
    return conf_parse(text, strlen(text), errs);
}

static void test_delivery_defaults(void **state)
{
    (void)state;
    struct conf_errors errs;
    struct config *c = parse("", &errs);
    assert_non_null(c);
    const struct conf_delivery *d = &c->delivery;
    assert_false(d->hold);
    assert_null(d->maildir);
    assert_int_equal(d->retry_min, 5 * 60 * 1000);
    assert_int_equal(d->retry_max, 60 * 60 * 1000);
    assert_int_equal(d->lifetime, 5u * 24 * 60 * 60 * 1000);
    assert_int_equal(d->delay_warning, 4 * 60 * 60 * 1000);
    assert_int_equal(d->rescan, 60 * 1000);
    assert_int_equal(d->concurrency, 100);
    assert_int_equal(d->destination_concurrency, 20);
    assert_int_equal(d->local_concurrency, 32);
    assert_int_equal(d->remote_port, 25);
    assert_int_equal(d->tls, CONF_OUT_TLS_MAY);
    assert_int_equal(d->connect_timeout, 30 * 1000);
    assert_int_equal(d->command_timeout, 5 * 60 * 1000);
    assert_int_equal(d->data_timeout, 10 * 60 * 1000);
    assert_null(d->smarthost);
    assert_null(d->dns);
    conf_free(c);
}

static void test_delivery_values(void **state)
{
    (void)state;
    struct conf_errors errs;
    struct config *c = parse("delivery {\n hold yes\n maildir /m/%d/%u\n retry-min 30s\n"
                             " retry-max 2h\n lifetime 3d\n delay-warning 0\n rescan 10s\n"
                             " concurrency 500\n destination-concurrency 5\n"
                             " local-concurrency 16\n dns 127.0.0.1@5353\n remote-port 2525\n"
                             " smarthost [192.0.2.1]:587\n smarthost-user u\n"
                             " smarthost-password \"p w\"\n tls verify\n tls-ca /etc/ca.pem\n}\n"
                             "delivery-timeouts { connect 5s; command 1m; data 2m }\n"
                             "domain a.test { maildir /home/%u/Maildir }\n"
                             "domain b.test { lmtp unix:/run/dovecot/lmtp }\n"
                             "domain c.test { lmtp 127.0.0.1:24 }\n"
                             "domain e.test { lmtp store.e.test:24 }\n"
                             "domain d.test\n"
                             "remote bank.TEST { tls verify }\nremote plain.test { tls none }\n",
                             &errs);
    assert_non_null(c);
    const struct conf_delivery *d = &c->delivery;
    assert_true(d->hold);
    assert_string_equal(d->maildir, "/m/%d/%u");
    assert_int_equal(d->retry_min, 30000);
    assert_int_equal(d->retry_max, 7200000);
    assert_int_equal(d->lifetime, 3u * 86400000);
    assert_int_equal(d->delay_warning, 0);
    assert_int_equal(d->concurrency, 500);
    assert_int_equal(d->destination_concurrency, 5);
    assert_int_equal(d->local_concurrency, 16);
    assert_string_equal(d->dns, "127.0.0.1@5353");
    assert_int_equal(d->remote_port, 2525);
    assert_string_equal(d->smarthost, "[192.0.2.1]:587");
    assert_string_equal(d->smarthost_password, "p w");
    assert_int_equal(d->tls, CONF_OUT_TLS_VERIFY);
    assert_int_equal(d->connect_timeout, 5000);
    assert_int_equal(d->command_timeout, 60000);
    assert_int_equal(d->data_timeout, 120000);
    assert_int_equal(c->ndomains, 5);
    assert_string_equal(c->domain_delivery[3].lmtp, "store.e.test:24");
    assert_string_equal(c->domain_delivery[0].maildir, "/home/%u/Maildir");
    assert_string_equal(c->domain_delivery[1].lmtp, "unix:/run/dovecot/lmtp");
    assert_string_equal(c->domain_delivery[2].lmtp, "127.0.0.1:24");
    assert_null(c->domain_delivery[4].maildir);
    assert_null(c->domain_delivery[4].lmtp);
    assert_int_equal(c->nremotes, 2);
    assert_string_equal(c->remotes[0].domain, "bank.test");
    assert_true(c->remotes[0].tls_set);
    assert_int_equal(c->remotes[0].tls, CONF_OUT_TLS_VERIFY);
    assert_int_equal(c->remotes[1].tls, CONF_OUT_TLS_NONE);
    conf_free(c);
}

static void test_delivery_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        unsigned line; /* of the first error, counting BASE as line 1 */
        const char *want;
    } rows[] = {
        {"delivery { retry-min 0 }\n", 2, "out of range"},
        {"delivery { lifetime 31d }\n", 2, "out of range"},
        {"delivery { concurrency 0 }\n", 2, "out of range"},
        {"delivery { remote-port 65536 }\n", 2, "out of range"},
        {"delivery { tls sometimes }\n", 2, "tls"},
        {"delivery { smarthost nohostport }\n", 2, "smarthost"},
        {"delivery { smarthost [relay.test]:25 }\n", 2, "smarthost"},
        {"delivery { smarthost relay.test:0 }\n", 2, "smarthost"},
        {"delivery { smarthost -bad-.test:25 }\n", 2, "smarthost"},
        {"delivery { bogus 1 }\n", 2, "unknown directive 'bogus' in 'delivery'"},
        {"delivery { hold yes }\ndelivery { hold no }\n", 3, "given twice"},
        {"domain a.test { maildir /x; lmtp 127.0.0.1:24 }\n", 2, "both maildir and lmtp"},
        {"domain a.test {\n lmtp /relative/no/scheme\n}\n", 3, "'lmtp' must be"},
        {"domain a.test { lmtp unix:relative }\n", 2, "'lmtp' must be"},
        {"remote a.test { tls maybe }\n", 2, "tls"},
        {"remote a.test { tls may }\nremote A.test { tls none }\n", 3, "defined twice"},
        {"remote a.test\n", 2, "takes a domain and a block"},
        {"remote -bad- { tls may }\n", 2, "not a valid domain"},
        {"delivery-timeouts { data 2h }\n", 2, "out of range"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct conf_errors errs;
        struct config *c = parse(rows[i].text, &errs);
        if (c != NULL)
            fail_msg("accepted: %s", rows[i].text);
        assert_true(errs.n >= 1);
        if (strstr(errs.e[0].msg, rows[i].want) == NULL || errs.e[0].line != rows[i].line)
            fail_msg("row %zu: line %u: %s", i, errs.e[0].line, errs.e[0].msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivery_defaults),
        cmocka_unit_test(test_delivery_values),
        cmocka_unit_test(test_delivery_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
