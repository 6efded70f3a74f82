/* Unit tests for queue/store: commit and abort, spool preparation and its lock (I11), group
 * commit under many concurrent commits, close draining, fault injection at open, sync and
 * write (I7, I8) and fail-closed reading of corrupt queue files (I10). The WAL, recovery and
 * checkpoint tests are in test_store_recover.c; the fixture is store_fixture.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "store_fixture.h"

static const struct {
    size_t body;
    size_t chunk;
} commit_cases[] = {
    {0, 1},        {1, 1},           {1000, 7},       {65535, 65535}, {65536, 65536},
    {65537, 4096}, {300000, 100000}, {300000, 70000}, {200000, 1},
};

static void test_store_commit_roundtrip_table(void **state)
{
    struct t_ctx *t = *state;
    t_open(t, NULL);
    for (size_t i = 0; i < sizeof commit_cases / sizeof commit_cases[0]; i++) {
        size_t len = commit_cases[i].body;
        unsigned char *body = malloc(len + 1);
        assert_non_null(body);
        t_fill(body, len, (unsigned)i);
        char id[ID_LEN + 1];
        struct queue_msg *m = queue_msg_begin(t->qs, &t_env, id);
        assert_non_null(m);
        assert_true(id_valid(id, strlen(id)));
        assert_true(t_in_exists(t, getpid(), id));
        assert_false(t_exists(t, "incoming", id));
        for (size_t off = 0; off < len; off += commit_cases[i].chunk) {
            size_t n = len - off < commit_cases[i].chunk ? len - off : commit_cases[i].chunk;
            assert_int_equal(queue_msg_write(m, body + off, n), 0);
        }
        size_t before = t->ncb;
        queue_msg_commit(m, t_commit_cb, i, t);
        assert_int_equal(t->ncb, before); /* never from inside queue_msg_commit */
        t_run_until(t, before + 1);
        assert_int_equal(t->errors[i], 0);
        assert_string_equal(t->ids[i], id);
        /* Acknowledged: in the log, its file in incoming/ until a checkpoint moves it. */
        assert_true(t_in_exists(t, getpid(), id) != t_exists(t, "queue", id));
        free(body);
    }
    struct queue_store_stats st;
    queue_store_get_stats(t->qs, &st);
    assert_int_equal(st.committed, sizeof commit_cases / sizeof commit_cases[0]);
    assert_int_equal(st.failed, 0);
    /* After close every acknowledged message is in queue/, whole; the log is gone. */
    queue_store_close(t->qs);
    t->qs = NULL;
    for (size_t i = 0; i < sizeof commit_cases / sizeof commit_cases[0]; i++) {
        size_t len = commit_cases[i].body;
        unsigned char *body = malloc(len + 1);
        assert_non_null(body);
        t_fill(body, len, (unsigned)i);
        t_check_file(t, t->ids[i], body, len);
        free(body);
    }
    assert_int_equal(t_count(t, "incoming"), 0);
    assert_int_equal(t_count(t, "wal"), 0);
}

static void test_store_abort_leaves_nothing(void **state)
{
    struct t_ctx *t = *state;
    t_open(t, NULL);
    for (size_t len = 0; len <= 200000; len += 100000) {
        char id[ID_LEN + 1];
        struct queue_msg *m = queue_msg_begin(t->qs, &t_env, id);
        assert_non_null(m);
        unsigned char *body = calloc(1, len + 1);
        assert_non_null(body);
        assert_int_equal(queue_msg_write(m, body, len), 0);
        free(body);
        queue_msg_abort(m);
        assert_int_equal(t_incoming(t), 0);
        assert_int_equal(t_count(t, "queue"), 0);
    }
}

/* B4 reaches the store too: an envelope the encoder refuses creates no file. */
static void test_store_begin_refuses_bad_envelope(void **state)
{
    struct t_ctx *t = *state;
    t_open(t, NULL);
    struct queue_envelope env = t_env;
    env.envid = "x\r\nRCPT TO:<evil@example.com>";
    char id[ID_LEN + 1];
    errno = 0;
    assert_null(queue_msg_begin(t->qs, &env, id));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(t_incoming(t), 0);
}

static void test_store_prepare_makes_layout(void **state)
{
    struct t_ctx *t = *state;
    static const char *const dirs[] = {"incoming", "queue", "corrupt", "wal"};
    for (size_t i = 0; i < 4; i++) {
        struct stat st;
        assert_int_equal(stat(t_path(t, dirs[i], ""), &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0077, 0);
    }
    assert_true(t_exists(t, "lock", ""));
    /* mkdir -p: a spool whose parents do not exist yet. */
    char deep[128];
    snprintf(deep, sizeof deep, "%s/a/b/spool", t->spool);
    int fd = -1;
    assert_int_equal(queue_store_prepare(deep, &fd), 0);
    close(fd);
    snprintf(deep, sizeof deep, "%s/a/b/spool/queue", t->spool);
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
}

static void test_store_prepare_removes_leftovers(void **state)
{
    struct t_ctx *t = *state;
    static const char *const junk[] = {"00000000000000000001", "partial", ".hidden"};
    for (size_t i = 0; i < 3; i++) {
        int fd = open(t_path(t, "incoming", junk[i]), O_WRONLY | O_CREAT, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "junk", 4), 4);
        close(fd);
    }
    int fd = open(t_path(t, "queue", "00000000000000000002"), O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    close(t->lock_fd);
    assert_int_equal(queue_store_prepare(t->spool, &t->lock_fd), 0);
    assert_int_equal(t_count(t, "incoming"), 0);
    /* queue/ is the queue manager's to validate, not prepare's. */
    assert_true(t_exists(t, "queue", "00000000000000000002"));
}

/* HOSTILE-INPUTS I11: a second instance on the same spool is refused while the first
 * holds the lock, and may start once it is released. */
static void test_store_i11_second_prepare_is_locked_out(void **state)
{
    struct t_ctx *t = *state;
    int fd = open(t_path(t, "incoming", "in-flight"), O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    int lock2 = -1;
    errno = 0;
    assert_int_equal(queue_store_prepare(t->spool, &lock2), -1);
    assert_int_equal(errno, EBUSY);
    assert_int_equal(lock2, -1);
    /* The loser must not have cleaned the holder's incoming/. */
    assert_true(t_exists(t, "incoming", "in-flight"));
    close(t->lock_fd);
    t->lock_fd = -1;
    assert_int_equal(queue_store_prepare(t->spool, &lock2), 0);
    t->lock_fd = lock2;
}

/* Group commit: 500 messages committed at once all complete, each exactly once, each
 * covered by one round or another. */
static void test_store_many_concurrent_commits(void **state)
{
    struct t_ctx *t = *state;
    t_open(t, NULL);
    enum { N = 500 };
    char ids[N][ID_LEN + 1];
    unsigned char body[1024];
    t_fill(body, sizeof body, 9);
    struct queue_msg *ms[N];
    for (size_t i = 0; i < N; i++) {
        ms[i] = queue_msg_begin(t->qs, &t_env, ids[i]);
        assert_non_null(ms[i]);
        assert_int_equal(queue_msg_write(ms[i], body, sizeof body), 0);
    }
    for (size_t i = 0; i < N; i++)
        queue_msg_commit(ms[i], t_commit_cb, i, t);
    t_run_until(t, N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(t->seen[i], 1);
        assert_int_equal(t->errors[i], 0);
        assert_string_equal(t->ids[i], ids[i]);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
    struct queue_store_stats st;
    queue_store_get_stats(t->qs, &st);
    assert_int_equal(st.committed, N);
    /* No timing is asserted: how the 500 split into rounds depends on the scheduler. */
    assert_true(st.rounds >= 1 && st.rounds <= N);
    assert_true(st.largest_round >= 1 && st.largest_round <= N);
    print_message("500 commits in %llu rounds, largest %llu\n", (unsigned long long)st.rounds,
                  (unsigned long long)st.largest_round);
    queue_store_close(t->qs);
    t->qs = NULL;
    assert_int_equal(t_count(t, "queue"), N);
    assert_int_equal(t_count(t, "incoming"), 0);
    assert_int_equal(t_count(t, "wal"), 0);
    for (size_t i = 0; i < N; i++)
        t_check_file(t, ids[i], body, sizeof body);
}

/* queue_store_close finishes what is in flight and runs the callbacks itself. */
static void test_store_close_drains(void **state)
{
    struct t_ctx *t = *state;
    t_open(t, NULL);
    for (size_t i = 0; i < 20; i++) {
        char id[ID_LEN + 1];
        struct queue_msg *m = queue_msg_begin(t->qs, &t_env, id);
        assert_non_null(m);
        assert_int_equal(queue_msg_write(m, "x", 1), 0);
        queue_msg_commit(m, t_commit_cb, i, t);
    }
    queue_store_close(t->qs);
    t->qs = NULL;
    assert_int_equal(t->ncb, 20);
    for (size_t i = 0; i < 20; i++)
        assert_int_equal(t->errors[i], 0);
    assert_int_equal(t_count(t, "queue"), 20);
    assert_int_equal(t_count(t, "incoming"), 0);
    assert_int_equal(t_count(t, "wal"), 0);
}

static void test_store_unknown_fault_refuses_to_open(void **state)
{
    struct t_ctx *t = *state;
    setenv("SLUICE_FAULT", "sync-eoi", 1);
    errno = 0;
    assert_null(queue_store_open(t->spool, t->base));
    assert_int_equal(errno, EINVAL);
}

static void test_store_open_without_layout_fails(void **state)
{
    struct t_ctx *t = *state;
    char missing[128];
    snprintf(missing, sizeof missing, "%s/nope", t->spool);
    errno = 0;
    assert_null(queue_store_open(missing, t->base));
    assert_int_equal(errno, ENOENT);
}

/* HOSTILE-INPUTS I8: the sync fails with EIO → every message of the round gets EIO and
 * nothing of them is left, in incoming/ or queue/; the store keeps working afterwards. */
static void test_store_i8_sync_eio_fails_every_message(void **state)
{
    struct t_ctx *t = *state;
    t_open(t, "sync-eio");
    for (size_t i = 0; i < 10; i++) {
        char id[ID_LEN + 1];
        struct queue_msg *m = queue_msg_begin(t->qs, &t_env, id);
        assert_non_null(m);
        assert_int_equal(queue_msg_write(m, "hello\r\n", 7), 0);
        queue_msg_commit(m, t_commit_cb, i, t);
    }
    t_run_until(t, 10);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(t->errors[i], EIO);
    assert_int_equal(t_incoming(t), 0);
    assert_int_equal(t_count(t, "queue"), 0);
    /* An abandoned segment without acknowledged records goes at once. */
    assert_int_equal(t_count(t, "wal"), 0);
    struct queue_store_stats st;
    queue_store_get_stats(t->qs, &st);
    assert_int_equal(st.failed, 10);
    assert_int_equal(st.committed, 0);
    queue_store_close(t->qs);
    t->qs = NULL;
    assert_int_equal(t_count(t, "queue"), 0);
    assert_int_equal(t_count(t, "wal"), 0);
}

/* HOSTILE-INPUTS I7: ENOSPC during the write reaches the caller, sticks, and leaves
 * nothing whether the message is then aborted or (wrongly) committed. */
static void test_store_i7_write_enospc(void **state)
{
    struct t_ctx *t = *state;
    t_open(t, "write-enospc");
    for (size_t i = 0; i < 2; i++) {
        char id[ID_LEN + 1];
        struct queue_msg *m = queue_msg_begin(t->qs, &t_env, id);
        assert_non_null(m);
        errno = 0;
        assert_int_equal(queue_msg_write(m, "hello\r\n", 7), -1);
        assert_int_equal(errno, ENOSPC);
        assert_int_equal(queue_msg_write(m, "", 0), -1);
        if (i == 0) {
            queue_msg_abort(m);
        } else {
            queue_msg_commit(m, t_commit_cb, 0, t);
            assert_int_equal(t->ncb, 0);
            t_run_until(t, 1);
            assert_int_equal(t->errors[0], ENOSPC);
        }
        assert_int_equal(t_incoming(t), 0);
        assert_int_equal(t_count(t, "queue"), 0);
    }
}

/* ---- I10: corrupt queue files ---- */

static int t_read_bytes(struct t_ctx *t, const unsigned char *p, size_t n)
{
    const char *path = t_path(t, "corrupt", "f");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
    struct queue_envelope env;
    uint64_t off, blen;
    errno = 0;
    int r = queue_file_read(path, &env, &off, &blen);
    if (r == 0)
        queue_envelope_free(&env);
    else
        assert_null(env.sender);
    return r == 0 ? 0 : errno;
}

/* Patch bytes then recompute the end record's CRC, so only the structure checks stand
 * between the reader and the bad content. */
static void t_fix_end_crc(unsigned char *p, size_t n)
{
    uLong c = crc32(0, p, (uInt)(n - 8)); /* everything before the end record */
    p[n - 4] = (unsigned char)(c >> 24);
    p[n - 3] = (unsigned char)(c >> 16);
    p[n - 2] = (unsigned char)(c >> 8);
    p[n - 1] = (unsigned char)c;
}

static void test_store_i10_corrupt_files_fail_closed(void **state)
{
    struct t_ctx *t = *state;
    char id[ID_LEN + 1];
    size_t len;
    unsigned char *good = t_good_file(t, &len, id);
    unsigned char *buf = malloc(len + 16);
    assert_non_null(buf);
    assert_int_equal(t_read_bytes(t, good, len), 0);

    /* Zero length and every truncation. */
    for (size_t cut = 0; cut < len; cut++)
        if (t_read_bytes(t, good, cut) != EINVAL)
            fail_msg("truncated to %zu accepted", cut);
    /* A byte appended. */
    memcpy(buf, good, len);
    buf[len] = '\n';
    assert_int_equal(t_read_bytes(t, buf, len + 1), EINVAL);
    /* Every single-byte change. */
    for (size_t pos = 0; pos < len; pos++) {
        for (unsigned x = 1; x < 256; x += 17) {
            memcpy(buf, good, len);
            buf[pos] ^= (unsigned char)x;
            if (t_read_bytes(t, buf, len) != EINVAL)
                fail_msg("flip 0x%02x at %zu accepted", x, pos);
        }
    }
    /* Random bytes of the same length, and random bytes behind a valid header. */
    srand(42);
    for (int k = 0; k < 50; k++) {
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)rand();
        if (k % 2)
            memcpy(buf, good, 20);
        assert_int_equal(t_read_bytes(t, buf, len), EINVAL);
    }

    /* Structure errors under a valid CRC. Offsets: 0 magic, 8 version, 12 flags,
     * 16 envelope length, 20 envelope, then body length, body, "QEND", CRC. */
    uint32_t elen =
        (uint32_t)good[16] << 24 | (uint32_t)good[17] << 16 | (uint32_t)good[18] << 8 | good[19];
    uint64_t blen = len - 20 - elen - 16;
    enum { T_SET, T_ENV_LEN, T_BODY_LEN };
    static const struct {
        const char *name;
        int kind;
        int where; /* T_SET: 0 from the start, 1 from the body-length field, 2 from the end */
        size_t off;
        unsigned char byte;
        int64_t delta; /* T_ENV_LEN, T_BODY_LEN: added to the true length */
    } cases[] = {
        {"bad magic", T_SET, 0, 0, 'X', 0},
        {"bad version 2", T_SET, 0, 11, 2, 0},
        {"bad version 0", T_SET, 0, 11, 0, 0},
        {"unknown flags", T_SET, 0, 15, 1, 0},
        {"envelope record version", T_SET, 0, 27, 9, 0},
        {"body length huge", T_SET, 1, 0, 0x80, 0},
        {"missing end record", T_SET, 2, 8, 'X', 0},
        {"envelope length past the end", T_ENV_LEN, 0, 0, 0, 1000},
        {"envelope length above the cap", T_ENV_LEN, 0, 0, 0, QUEUE_ENVELOPE_MAX},
        {"envelope length one more", T_ENV_LEN, 0, 0, 0, 1},
        {"envelope length one less", T_ENV_LEN, 0, 0, 0, -1},
        {"body length one more", T_BODY_LEN, 0, 0, 0, 1},
        {"body length one less", T_BODY_LEN, 0, 0, 0, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(buf, good, len);
        if (cases[i].kind == T_SET) {
            size_t base = cases[i].where == 0 ? 0 : cases[i].where == 1 ? 20 + elen : len;
            buf[cases[i].where == 2 ? base - cases[i].off : base + cases[i].off] = cases[i].byte;
        } else if (cases[i].kind == T_ENV_LEN) {
            uint32_t v = (uint32_t)((int64_t)elen + cases[i].delta);
            for (int k = 0; k < 4; k++)
                buf[16 + k] = (unsigned char)(v >> (24 - 8 * k));
        } else {
            uint64_t v = (uint64_t)((int64_t)blen + cases[i].delta);
            for (int k = 0; k < 8; k++)
                buf[20 + elen + (size_t)k] = (unsigned char)(v >> (56 - 8 * k));
        }
        t_fix_end_crc(buf, len);
        if (t_read_bytes(t, buf, len) != EINVAL)
            fail_msg("%s: accepted", cases[i].name);
    }
    /* The same fix-up on the untouched file keeps it valid: the cases above fail for
     * their own reason, not the CRC. */
    memcpy(buf, good, len);
    t_fix_end_crc(buf, len);
    assert_int_equal(t_read_bytes(t, buf, len), 0);
    free(buf);
    free(good);
}

static void test_store_i10_not_a_regular_file(void **state)
{
    struct t_ctx *t = *state;
    char id[ID_LEN + 1];
    size_t len;
    free(t_good_file(t, &len, id));
    struct queue_envelope env;
    uint64_t off, blen;
    char target[256];
    snprintf(target, sizeof target, "%s", t_path(t, "queue", id));
    /* A symlink to a perfectly good file is still refused: never followed. */
    assert_int_equal(symlink(target, t_path(t, "corrupt", "link")), 0);
    errno = 0;
    assert_int_equal(queue_file_read(t_path(t, "corrupt", "link"), &env, &off, &blen), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(mkfifo(t_path(t, "corrupt", "fifo"), 0600), 0);
    errno = 0;
    assert_int_equal(queue_file_read(t_path(t, "corrupt", "fifo"), &env, &off, &blen), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(queue_file_read(t_path(t, "incoming", ""), &env, &off, &blen), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(queue_file_read(t_path(t, "queue", "missing"), &env, &off, &blen), -1);
    assert_int_equal(errno, ENOENT);
}

int main(void)
{
    alarm(120); /* a lost wake-up must fail the run, not hang it */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_commit_roundtrip_table, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_abort_leaves_nothing, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_begin_refuses_bad_envelope, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_prepare_makes_layout, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_prepare_removes_leftovers, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_i11_second_prepare_is_locked_out, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_store_many_concurrent_commits, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_close_drains, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_unknown_fault_refuses_to_open, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_store_open_without_layout_fails, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_i8_sync_eio_fails_every_message, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_store_i7_write_enospc, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_i10_corrupt_files_fail_closed, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_store_i10_not_a_regular_file, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
