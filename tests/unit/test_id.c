/* Unit tests for util/id: the id layout, validation, uniqueness and time order, including
 * a clock that steps back (HOSTILE-INPUTS I12). */
/* cmocka.h needs these before it, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/id.h"

struct format_case {
    const char *name;
    uint64_t usec;
    uint32_t pid;
    uint32_t counter;
    const char *want;
};

static const struct format_case format_cases[] = {
    {"zero", 0, 0, 0, "00000000000000000000"},
    {"ones", 1, 1, 1, "00000000010001000001"},
    {"base36_digits", 35, 36, 37, "000000000Z0010000011"},
    {"field_maxima", 3656158440062975ull, 1679615, 2176782335u, "ZZZZZZZZZZZZZZZZZZZZ"},
    {"fields_wrap", 3656158440062976ull, 1679616, 2176782336u, "00000000000000000000"},
    {"pid_and_counter_high", 1700000000000000ull, 4194304, 4294967295u, "GQLL7VATQ8HWCGZ141Z3"},
};

static void test_format_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]); i++) {
        const struct format_case *c = &format_cases[i];
        char out[ID_LEN + 2];
        memset(out, 'x', sizeof(out));
        id_format(out, c->usec, c->pid, c->counter);
        if (strcmp(out, c->want) != 0)
            fail_msg("case %s: got %s want %s", c->name, out, c->want);
        assert_int_equal(out[ID_LEN + 1], 'x');
    }
}

/* The time field orders ids as plain strings. */
static void test_format_orders_by_time(void **state)
{
    (void)state;
    char a[ID_LEN + 1], b[ID_LEN + 1];
    id_format(a, 1700000000000000ull, 99999, 999999);
    id_format(b, 1700000000000001ull, 1, 0);
    assert_true(strcmp(a, b) < 0);
}

struct valid_case {
    const char *name;
    const char *s;
    size_t len;
    bool ok;
};

static const struct valid_case valid_cases[] = {
    {"good", "0123456789ABCDEFGHIJ", 20, true},
    {"all_z", "ZZZZZZZZZZZZZZZZZZZZ", 20, true},
    {"too_short", "0123456789ABCDEFGHI", 19, false},
    {"too_long", "0123456789ABCDEFGHIJK", 21, false},
    {"empty", "", 0, false},
    {"lower_case", "0123456789abcdefghij", 20, false},
    {"path_traversal", "../../../etc/passwd0", 20, false},
    {"slash", "0123456789ABCDEFGHI/", 20, false},
    {"nul_inside", "0123456789\0BCDEFGHIJ", 20, false},
    {"newline", "0123456789ABCDEFGHI\n", 20, false},
    {"high_byte", "0123456789ABCDEFGHI\xc9", 20, false},
};

static void test_valid_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct valid_case *c = &valid_cases[i];
        if (id_valid(c->s, c->len) != c->ok)
            fail_msg("case %s", c->name);
    }
    assert_false(id_valid(NULL, 20));
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

#define MANY 5000

static void test_next_unique_valid_ordered(void **state)
{
    (void)state;
    static char ids[MANY][ID_LEN + 1];
    for (size_t i = 0; i < MANY; i++) {
        id_next(ids[i]);
        assert_true(id_valid(ids[i], strlen(ids[i])));
        /* The time part never goes back within a process. */
        if (i > 0)
            assert_true(memcmp(ids[i - 1], ids[i], 10) <= 0);
    }
    qsort(ids, MANY, sizeof(ids[0]), cmp_ids);
    for (size_t i = 1; i < MANY; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
}

static void test_next_carries_pid(void **state)
{
    (void)state;
    char id[ID_LEN + 1], want[ID_LEN + 1];
    id_next(id);
    id_format(want, 0, (uint32_t)getpid(), 0);
    assert_memory_equal(id + 10, want + 10, 4);
}

/* I12: the clock steps back a day; ids keep their order and never repeat. */
static void test_I12_clock_steps_back(void **state)
{
    (void)state;
    const uint64_t t = 3000000000000000ull; /* later than anything id_next has used */
    const uint64_t day = 86400ull * 1000000ull;
    char a[ID_LEN + 1], b[ID_LEN + 1], c[ID_LEN + 1], d[ID_LEN + 1];
    id_next_at(a, t);
    id_next_at(b, t - day);
    id_next_at(c, t - day);
    id_next(d);
    assert_true(strcmp(a, b) < 0);
    assert_true(strcmp(b, c) < 0);
    assert_true(strcmp(c, d) < 0);
    assert_memory_equal(a, b, 10);
    assert_memory_equal(a, d, 10);
    /* Once the clock passes the high-water mark, real time shows again. */
    id_next_at(d, t + 1);
    char want[ID_LEN + 1];
    id_format(want, t + 1, 0, 0);
    assert_memory_equal(d, want, 10);
}

#define THREADS 4
#define PER_THREAD 2000

static char thread_ids[THREADS * PER_THREAD][ID_LEN + 1];

static void *thread_main(void *arg)
{
    size_t base = (size_t)(uintptr_t)arg * PER_THREAD;
    for (size_t i = 0; i < PER_THREAD; i++)
        id_next(thread_ids[base + i]);
    return NULL;
}

static void test_next_threads_unique(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (uintptr_t k = 0; k < THREADS; k++)
        assert_int_equal(pthread_create(&th[k], NULL, thread_main, (void *)k), 0);
    for (size_t k = 0; k < THREADS; k++)
        pthread_join(th[k], NULL);
    qsort(thread_ids, THREADS * PER_THREAD, sizeof(thread_ids[0]), cmp_ids);
    for (size_t i = 1; i < THREADS * PER_THREAD; i++)
        assert_string_not_equal(thread_ids[i - 1], thread_ids[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_format_orders_by_time),
        cmocka_unit_test(test_valid_table),
        cmocka_unit_test(test_next_unique_valid_ordered),
        cmocka_unit_test(test_next_carries_pid),
        cmocka_unit_test(test_next_threads_unique),
        cmocka_unit_test(test_I12_clock_steps_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
