/* test_reply: the reply catalogue: every entry is well formed (RFC 5321 §4.2 codes, RFC 3463
 * enhanced codes whose class matches the reply's, RFC 2034 §4 (4) no enhanced code on the
 * greeting, HELO/EHLO and 3xx replies), and formatting never overflows or lets control bytes
 * through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/reply.h"

static void test_reply_catalogue_well_formed(void **state)
{
    (void)state;
    for (int id = 0; id < REPLY_COUNT; id++) {
        const struct reply_entry *r = reply_get((enum reply_id)id);
        if (r->text == NULL)
            fail_msg("reply %d has no entry", id);
        assert_true(r->code >= 200 && r->code <= 599);
        if (r->code / 100 == 3 || id == REPLY_GREETING || id == REPLY_HELO) {
            assert_null(r->enhanced);
            continue;
        }
        if (r->enhanced == NULL)
            fail_msg("reply %d (%u) lacks an enhanced status code", id, r->code);
        /* RFC 3463 §2: the class digit agrees with the reply code. */
        assert_int_equal(r->enhanced[0] - '0', r->code / 100);
        assert_int_equal(r->enhanced[1], '.');
    }
}

static void test_reply_format_substitutes_and_sanitises(void **state)
{
    char out[128];
    (void)state;
    size_t n = reply_format(out, sizeof out, REPLY_QUEUED, "ABC123");
    assert_string_equal(out, "250 2.0.0 Ok: queued as ABC123\r\n");
    assert_int_equal(n, strlen(out));
    reply_format(out, sizeof out, REPLY_RELAY_DENIED, "a\r\nb\x01@x");
    assert_string_equal(out, "554 5.7.1 <a??b?@x>: Relay access denied\r\n");
    reply_format(out, sizeof out, REPLY_GREETING, "mx.test");
    assert_string_equal(out, "220 mx.test ESMTP Sluice\r\n");
}

static void test_reply_format_cuts_but_keeps_crlf(void **state)
{
    char out[24];
    char big[1000];
    (void)state;
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    size_t n = reply_format(out, sizeof out, REPLY_QUEUED, big);
    assert_true(n < sizeof out);
    assert_int_equal(out[n - 2], '\r');
    assert_int_equal(out[n - 1], '\n');
    assert_int_equal(out[n], '\0');
    assert_int_equal(reply_format(out, 4, REPLY_OK, NULL), 0);
}

/* RFC 4954 §4: a 334 challenge is the whole base64 text; a SCRAM server-first message with a
 * 128-octet client nonce encodes to about 480 characters and must not be cut. Longer
 * arguments are capped at 512. */
static void test_reply_challenge_keeps_scram_sized_argument(void **state)
{
    (void)state;
    char arg[700], out[800];
    memset(arg, 'Q', sizeof arg - 1);
    arg[480] = '\0';
    size_t n = reply_format(out, sizeof out, REPLY_AUTH_CHALLENGE, arg);
    assert_int_equal(n, 4 + 480 + 2);
    assert_memory_equal(out, "334 QQ", 6);
    arg[480] = 'Q';
    arg[sizeof arg - 1] = '\0';
    n = reply_format(out, sizeof out, REPLY_AUTH_CHALLENGE, arg);
    assert_int_equal(n, 4 + 512 + 2);
    assert_memory_equal(out + n - 2, "\r\n", 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_catalogue_well_formed),
        cmocka_unit_test(test_reply_format_substitutes_and_sanitises),
        cmocka_unit_test(test_reply_format_cuts_but_keeps_crlf),
        cmocka_unit_test(test_reply_challenge_keeps_scram_sized_argument),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
