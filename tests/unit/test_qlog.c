/* test_qlog: the outcome log's record codec (queue/qlog.c): every type round-trips, a torn
 * tail is SHORT at every cut, and any flipped byte, bad length or value is CORRUPT. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "queue/qlog.h"

static struct qlog_rec sample(enum qlog_type t)
{
    struct qlog_rec r = {.type = t, .rcpt = 7, .attempts = 3, .time = 1795416952, .remote = true};
    memcpy(r.id, "HOF75XLKZ10OGR000001", ID_LEN + 1);
    strcpy(r.enhanced, "4.4.1");
    strcpy(r.text, "451 4.4.1 try again later, \xc3\xa9t\xc3\xa9");
    strcpy(r.extra, "mx1.example.org");
    return r;
}

static void test_roundtrip_every_type(void **state)
{
    (void)state;
    for (int t = QLOG_DELIVERED; t <= QLOG_TYPE_MAX; t++) {
        struct qlog_rec r = sample((enum qlog_type)t), back;
        unsigned char buf[QLOG_RECORD_MAX];
        size_t len, used;
        assert_int_equal(qlog_encode(&r, buf, sizeof buf, &len), 0);
        assert_int_equal(qlog_decode(buf, len, &back, &used), QLOG_OK);
        assert_int_equal(used, len);
        assert_memory_equal(&r, &back, sizeof r);
    }
}

static void test_longest_values(void **state)
{
    (void)state;
    struct qlog_rec r = sample(QLOG_FAILED), back;
    memset(r.text, 'a', QLOG_TEXT_MAX);
    r.text[QLOG_TEXT_MAX] = '\0';
    memset(r.extra, 'b', QLOG_EXTRA_MAX);
    r.extra[QLOG_EXTRA_MAX] = '\0';
    unsigned char buf[QLOG_RECORD_MAX];
    size_t len, used;
    assert_int_equal(qlog_encode(&r, buf, sizeof buf, &len), 0);
    assert_true(len <= QLOG_RECORD_MAX);
    assert_int_equal(qlog_decode(buf, len, &back, &used), QLOG_OK);
    assert_string_equal(back.text, r.text);
    assert_string_equal(back.extra, r.extra);
}

static void test_encode_refuses(void **state)
{
    (void)state;
    unsigned char buf[QLOG_RECORD_MAX];
    size_t len;
    struct qlog_rec r = sample(QLOG_DEFERRED);
    strcpy(r.text, "bad\r\nX-Injected: yes");
    assert_int_equal(qlog_encode(&r, buf, sizeof buf, &len), -1);
    assert_int_equal(errno, EINVAL);
    r = sample(QLOG_DEFERRED);
    strcpy(r.id, "../../etc/passwd");
    assert_int_equal(qlog_encode(&r, buf, sizeof buf, &len), -1);
    r = sample(QLOG_DEFERRED);
    r.type = (enum qlog_type)0;
    assert_int_equal(qlog_encode(&r, buf, sizeof buf, &len), -1);
    r = sample(QLOG_DEFERRED);
    assert_int_equal(qlog_encode(&r, buf, 10, &len), -1);
    assert_int_equal(errno, ENOSPC);
    assert_true(len > 10);
}

/* A crash mid-append leaves a prefix: never OK, never read past. */
static void test_torn_tail_every_cut(void **state)
{
    (void)state;
    struct qlog_rec r = sample(QLOG_FAILED), back;
    unsigned char buf[QLOG_RECORD_MAX];
    size_t len, used;
    assert_int_equal(qlog_encode(&r, buf, sizeof buf, &len), 0);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(qlog_decode(buf, cut, &back, &used), QLOG_SHORT);
}

static void test_every_flipped_byte_is_corrupt(void **state)
{
    (void)state;
    struct qlog_rec r = sample(QLOG_DEFERRED), back;
    unsigned char buf[QLOG_RECORD_MAX];
    size_t len, used;
    assert_int_equal(qlog_encode(&r, buf, sizeof buf, &len), 0);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x20;
        enum qlog_decode_status st = qlog_decode(buf, len, &back, &used);
        /* The length field may turn into a longer one: then the record is merely short. */
        assert_true(st == QLOG_CORRUPT || (i >= 4 && i < 8 && st == QLOG_SHORT));
        buf[i] ^= 0x20;
    }
    assert_int_equal(qlog_decode(buf, len, &back, &used), QLOG_OK);
}

static void test_two_records_back_to_back(void **state)
{
    (void)state;
    struct qlog_rec a = sample(QLOG_ADDED), b = sample(QLOG_DELIVERED), back;
    unsigned char buf[2 * QLOG_RECORD_MAX];
    size_t la, lb, used;
    assert_int_equal(qlog_encode(&a, buf, sizeof buf, &la), 0);
    assert_int_equal(qlog_encode(&b, buf + la, sizeof buf - la, &lb), 0);
    assert_int_equal(qlog_decode(buf, la + lb, &back, &used), QLOG_OK);
    assert_int_equal(used, la);
    assert_int_equal(back.type, QLOG_ADDED);
    assert_int_equal(qlog_decode(buf + used, la + lb - used, &back, &used), QLOG_OK);
    assert_int_equal(back.type, QLOG_DELIVERED);
}

static void test_garbage_is_corrupt(void **state)
{
    (void)state;
    struct qlog_rec back;
    size_t used;
    static const unsigned char zeros[64];
    assert_int_equal(qlog_decode(zeros, sizeof zeros, &back, &used), QLOG_CORRUPT);
    static const unsigned char huge[] = {'S', 'L', 'Q', 'L', 0xff, 0xff, 0xff, 0xff, 1};
    assert_int_equal(qlog_decode(huge, sizeof huge, &back, &used), QLOG_CORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_type),
        cmocka_unit_test(test_longest_values),
        cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_torn_tail_every_cut),
        cmocka_unit_test(test_every_flipped_byte_is_corrupt),
        cmocka_unit_test(test_two_records_back_to_back),
        cmocka_unit_test(test_garbage_is_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
