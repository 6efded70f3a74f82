/* Unit tests for util/log: log_value escaping and truncation, and the shape of the lines
 * log_event writes (one write(2) per line, bounded, ISO 8601 UTC time, no control bytes). */
/* cmocka.h needs these before it, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

struct value_case {
    const char *name;
    const char *src;
    size_t srclen; /* (size_t)-1: strlen(src) */
    size_t cap;
    const char *want;
};

#define S ((size_t)-1)

static const struct value_case value_cases[] = {
    {"plain", "user@example.org", S, 64, "user@example.org"},
    {"empty_is_quoted", "", S, 64, "\"\""},
    {"space", "a b", S, 64, "\"a\\x20b\""},
    {"quote", "a\"b", S, 64, "\"a\\x22b\""},
    {"backslash", "a\\b", S, 64, "\"a\\x5cb\""},
    {"crlf_cannot_split_line", "x\r\nevent=forged", S, 64, "\"x\\x0d\\x0aevent=forged\""},
    {"nul_is_data", "a\0b", 3, 64, "\"a\\x00b\""},
    {"high_bytes", "\xc3\xa9", S, 64, "\"\\xc3\\xa9\""},
    {"del", "\x7f", S, 64, "\"\\x7f\""},
    {"fits_exactly", "abcd", S, 5, "abcd"},
    {"plain_truncated", "abcdefghij", S, 8, "abcd..."},
    {"escaped_fits_exactly", " ", S, 7, "\"\\x20\""},
    {"escaped_truncated", "ab cd", S, 10, "\"ab...\""},
    {"escape_never_cut_in_half", "a    ", S, 13, "\"a\\x20...\""},
    {"cap_1", "abcdef", S, 1, ""},
    {"cap_2", "abcdef", S, 2, "."},
    {"cap_4", "abcdef", S, 4, "..."},
    {"cap_5", "abcdef", S, 5, "a..."},
    {"cap_5_quoted", "a bcdef", S, 5, "..."},
    {"empty_cap_1", "", S, 1, ""},
};

static void test_value_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
        const struct value_case *c = &value_cases[i];
        char dst[80];
        size_t srclen = c->srclen == S ? strlen(c->src) : c->srclen;
        memset(dst, 'Z', sizeof(dst));
        const char *r = log_value(dst, c->cap, c->src, srclen);
        assert_ptr_equal(r, dst);
        if (strcmp(dst, c->want) != 0)
            fail_msg("case %s: got [%s] want [%s]", c->name, dst, c->want);
        assert_true(strlen(dst) < c->cap);
        assert_int_equal(dst[c->cap], 'Z');
    }
}

static void test_value_zero_cap(void **state)
{
    (void)state;
    char dst[4] = "ZZZ";
    const char *r = log_value(dst, 0, "abc", 3);
    assert_string_equal(r, "");
    assert_string_equal(dst, "ZZZ");
}

/* A long hostile value never outgrows its buffer and always ends with the marker. */
static void test_value_long_hostile(void **state)
{
    (void)state;
    char src[10000], dst[256];
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (char)(i % 256);
    log_value(dst, sizeof(dst), src, sizeof(src));
    size_t n = strlen(dst);
    assert_true(n < sizeof(dst));
    assert_int_equal(dst[0], '"');
    assert_memory_equal(dst + n - 4, "...\"", 4);
    for (size_t i = 0; i < n; i++)
        assert_true(dst[i] > 0x20 && dst[i] < 0x7f);
}

/* Capture what log_event writes to stderr. SOCK_SEQPACKET keeps write boundaries, so one
 * recv() returns exactly one write(2). */
static int cap_fds[2];
static int saved_stderr;

static int capture_setup(void **state)
{
    (void)state;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, cap_fds) != 0)
        return -1;
    saved_stderr = dup(STDERR_FILENO);
    dup2(cap_fds[0], STDERR_FILENO);
    return 0;
}

static int capture_teardown(void **state)
{
    (void)state;
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    close(cap_fds[0]);
    close(cap_fds[1]);
    return 0;
}

/* One write's worth of output, NUL-terminated; its length. */
static size_t capture_read(char *buf, size_t cap)
{
    ssize_t n = recv(cap_fds[1], buf, cap - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    buf[n] = '\0';
    return (size_t)n;
}

static void capture_assert_empty(void)
{
    char b[8];
    assert_true(recv(cap_fds[1], b, sizeof(b), MSG_DONTWAIT) < 0);
}

/* "2024-05-01T12:34:56.789Z " */
static void assert_iso_time(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd')
            assert_true(s[i] >= '0' && s[i] <= '9');
        else
            assert_int_equal(s[i], shape[i]);
    }
}

static void test_event_line_shape(void **state)
{
    (void)state;
    char buf[4096], want[256];
    log_init("sluiced/worker");
    log_event("smtp_connect", "sid=%s ip=%s", "S1", "127.0.0.1");
    size_t n = capture_read(buf, sizeof(buf));
    capture_assert_empty();
    assert_iso_time(buf);
    snprintf(want, sizeof(want), "sluiced/worker[%ld]: event=smtp_connect sid=S1 ip=127.0.0.1\n",
             (long)getpid());
    assert_string_equal(buf + 25, want);
    assert_int_equal(n, 25 + strlen(want));
}

/* UTC whatever the local zone is: a +05:30 zone would move the hour and the minute. */
static void test_event_time_is_utc(void **state)
{
    (void)state;
    char buf[4096], want[32];
    setenv("TZ", "IST-5:30", 1);
    tzset();
    /* The log's own clock: time() reads a coarser one that can still show the previous
     * second after clock_gettime has moved to the next. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t before = ts.tv_sec;
    log_event("t", "%s", "");
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t after = ts.tv_sec;
    capture_read(buf, sizeof(buf));
    struct tm tm;
    bool matched = false;
    for (time_t t = before; t <= after; t++) {
        gmtime_r(&t, &tm);
        strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S.", &tm);
        if (memcmp(buf, want, 20) == 0)
            matched = true;
    }
    assert_true(matched);
    unsetenv("TZ");
    tzset();
}

static void test_event_empty_rest(void **state)
{
    (void)state;
    char buf[4096], want[256];
    log_init("sluice");
    log_event("start", "%s", "");
    capture_read(buf, sizeof(buf));
    snprintf(want, sizeof(want), "sluice[%ld]: event=start\n", (long)getpid());
    assert_string_equal(buf + 25, want);
}

static void test_event_default_and_long_progname(void **state)
{
    (void)state;
    char buf[4096], want[256], name[200];
    log_init(NULL);
    log_event("x", "%s", "");
    capture_read(buf, sizeof(buf));
    snprintf(want, sizeof(want), "sluice[%ld]: event=x\n", (long)getpid());
    assert_string_equal(buf + 25, want);

    memset(name, 'p', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    log_init(name);
    log_event("x", "%s", "");
    capture_read(buf, sizeof(buf));
    assert_int_equal(strspn(buf + 25, "p"), 63);
    log_init("sluice");
}

static void test_event_truncated_long_line(void **state)
{
    (void)state;
    char buf[16384], big[10001];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    log_event("big", "value=%s", big);
    size_t n = capture_read(buf, sizeof(buf));
    capture_assert_empty();
    assert_int_equal(n, 2048);
    assert_memory_equal(buf + n - 4, "...\n", 4);
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
}

static void test_event_control_bytes_replaced(void **state)
{
    (void)state;
    char buf[4096];
    log_event("ctl", "a=%s", "x\r\nevent=forged\ty\x7f");
    size_t n = capture_read(buf, sizeof(buf));
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
    assert_non_null(strstr(buf, "a=x??event=forged?y?\n"));
    assert_null(strchr(buf, '\r'));
}

static void test_event_keeps_errno(void **state)
{
    (void)state;
    char buf[4096];
    errno = ENOSPC;
    log_event("disk", "err=%d", 28);
    assert_int_equal(errno, ENOSPC);
    capture_read(buf, sizeof(buf));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_table),
        cmocka_unit_test(test_value_zero_cap),
        cmocka_unit_test(test_value_long_hostile),
        cmocka_unit_test(test_event_line_shape),
        cmocka_unit_test(test_event_time_is_utc),
        cmocka_unit_test(test_event_empty_rest),
        cmocka_unit_test(test_event_default_and_long_progname),
        cmocka_unit_test(test_event_truncated_long_line),
        cmocka_unit_test(test_event_control_bytes_replaced),
        cmocka_unit_test(test_event_keeps_errno),
    };
    return cmocka_run_group_tests(tests, capture_setup, capture_teardown);
}
