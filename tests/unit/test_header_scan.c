/* test_header_scan: the end of the header section and the Message-ID/Date fields found in
 * messages fed whole and byte by byte (RFC 5322 §2.1, §2.2.3 folding, §3.6.1, §3.6.4). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smtp/header_scan.h"

static const struct {
    const char *msg;
    long end;          /* offset of the empty line, -1 when none */
    bool message_id, date;
} rows[] = {
    {"Subject: x\r\n\r\nbody\r\n", 12, false, false},
    {"Message-ID: <a@b>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nb\r\n", 57, true, true},
    {"MESSAGE-id: <a@b>\r\n\r\n", 19, true, false},
    {"date:x\r\n\r\n", 8, false, true},
    {"Date : x\r\n\r\n", 10, false, false},           /* "Date " is not the name "Date" */
    {"Subject: a\r\n Date: folded\r\n\r\n", 27, false, false},
    {"X-Date: 1\r\nMessage-IDs: 2\r\n\r\n", 27, false, false},
    {"Subject: no body\r\n", -1, false, false},
    {"\r\nDate: in the body\r\n", 0, false, false},
    {"Subject: x\r\n\r\nDate: body\r\nMessage-ID: body\r\n", 12, false, false},
    {"A-very-long-field-name-beyond-the-buffer: 1\r\nDate: 2\r\n\r\n", 54, false, true},
};

static void run_row(size_t i, size_t step)
{
    struct header_scan h;
    header_scan_init(&h);
    size_t len = strlen(rows[i].msg);
    long end = -1;
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        size_t at = header_scan_feed(&h, (const uint8_t *)rows[i].msg + off, n);
        if (at < n && end < 0)
            end = (long)(off + at);
    }
    if (end != rows[i].end || h.message_id != rows[i].message_id || h.date != rows[i].date)
        fail_msg("row %zu step %zu: end %ld mid %d date %d", i, step, end, h.message_id, h.date);
    assert_int_equal(h.done, rows[i].end >= 0);
}

static void test_rows_whole_and_bytewise(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        run_row(i, 1);
        run_row(i, 3);
        run_row(i, 4096);
    }
}

static void test_after_end_consumes_all(void **state)
{
    (void)state;
    struct header_scan h;
    header_scan_init(&h);
    assert_int_equal(header_scan_feed(&h, (const uint8_t *)"A: b\r\n\r\n", 8), 6);
    assert_int_equal(header_scan_feed(&h, (const uint8_t *)"Date: x\r\n", 9), 9);
    assert_false(h.date);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_whole_and_bytewise),
        cmocka_unit_test(test_after_end_consumes_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
