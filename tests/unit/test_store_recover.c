/* Unit tests for queue/store's write-ahead log and recovery: crash points (I6), replay of
 * acknowledged messages after kill -9 (I4), torn last records, records already in queue/,
 * crafted segments, the checkpoint and its failures (I8), per-worker incoming/ directories
 * and the recovery of one dead worker. Crashes are real child processes that _exit or are
 * SIGKILLed mid-way; the fixture is store_fixture.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <event2/event.h>

#include "store_fixture.h"

/* The store's round buffer (256 KiB): a record that fills it exactly. */
#define STORE_TEST_ROUND_BUF (256 * 1024 - 40)

/* Run a child process that opens the store with fault, commits n messages (message k has
 * sizes[k] bytes of t_fill(seed k)), one at a time when one_by_one, else all at once, waits
 * for their callbacks unless the fault kills it first, begins `unfinished` more messages
 * that it never commits, and then dies as a kill -9 would (_exit(137), no close), or by a
 * real SIGKILL when sigkill. The ids reach the parent through a pipe before the commits.
 * Returns the child's pid, once it is reaped. */
static pid_t t_child_commit(struct t_ctx *t, const char *fault, size_t n, const size_t *sizes,
                            bool one_by_one, char ids[][ID_LEN + 1], size_t unfinished,
                            bool sigkill)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        struct event_base *base = event_base_new();
        if (fault != NULL)
            setenv("SLUICE_FAULT", fault, 1);
        struct t_ctx *c = calloc(1, sizeof *c);
        c->base = base;
        c->qs = base ? queue_store_open(t->spool, base) : NULL;
        if (c->qs == NULL)
            _exit(2);
        struct queue_msg *ms[T_MAX_MSGS];
        for (size_t k = 0; k < n; k++) {
            char id[ID_LEN + 1];
            unsigned char *body = malloc(sizes[k] + 1);
            ms[k] = body ? queue_msg_begin(c->qs, &t_env, id) : NULL;
            if (ms[k] == NULL)
                _exit(2);
            t_fill(body, sizes[k], (unsigned)k);
            if (queue_msg_write(ms[k], body, sizes[k]) != 0 || write(fds[1], id, ID_LEN) != ID_LEN)
                _exit(2);
            free(body);
        }
        for (size_t k = 0; k < n; k++) {
            queue_msg_commit(ms[k], t_commit_cb, k, c);
            while (one_by_one && c->ncb < k + 1)
                event_base_loop(base, EVLOOP_ONCE);
        }
        while (c->ncb < n)
            event_base_loop(base, EVLOOP_ONCE);
        for (size_t k = 0; k < n; k++)
            if (c->errors[k] != 0)
                _exit(3);
        for (size_t k = 0; k < unfinished; k++) {
            char id[ID_LEN + 1];
            struct queue_msg *m = queue_msg_begin(c->qs, &t_env, id);
            if (m == NULL || queue_msg_write(m, "receiving\r\n", 11) != 0)
                _exit(2);
        }
        /* This one dies in the sync thread at the first checkpoint, 200 ms on. */
        while (fault != NULL && strcmp(fault, "crash-in-checkpoint") == 0)
            pause();
        /* Killed right after the replies, before any checkpoint could finish (the faults
         * that stop earlier never get here). */
        if (sigkill)
            kill(getpid(), SIGKILL);
        _exit(137);
    }
    close(fds[1]);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(read(fds[0], ids[k], ID_LEN), ID_LEN);
        ids[k][ID_LEN] = '\0';
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (sigkill) {
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
    } else {
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 137);
    }
    return pid;
}

static void t_recover(struct t_ctx *t, struct queue_store_recovery *rec)
{
    close(t->lock_fd);
    t->lock_fd = -1;
    assert_int_equal(queue_store_prepare_recover(t->spool, &t->lock_fd, rec), 0);
}

/* HOSTILE-INPUTS I6: crash points. The child commits one message with a crash injected.
 * Before the fdatasync the record is complete but only in the page cache, which a process
 * crash keeps: it is replayed (the client saw no 250: a retry gives a duplicate, (c)).
 * After the fdatasync and in the checkpoint (after the syncfs, before the renames) the
 * message is durable in the log. In every case the file is still in incoming/ and not in
 * queue/ when the child dies, and recovery puts a whole file in queue/ and cleans up. */
static void test_store_i6_crash_points(void **state)
{
    struct t_ctx *t = *state;
    static const char *const faults[] = {"crash-before-rename", "crash-after-rename",
                                         "crash-in-checkpoint"};
    size_t size = 5000;
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        char ids[1][ID_LEN + 1];
        pid_t pid = t_child_commit(t, faults[i], 1, &size, false, ids, 0, false);
        assert_false(t_exists(t, "queue", ids[0]));
        assert_true(t_in_exists(t, pid, ids[0]));
        assert_int_equal(t_count(t, "wal"), 1);
        struct queue_store_recovery rec;
        t_recover(t, &rec);
        assert_int_equal(rec.segments, 1);
        assert_int_equal(rec.records, 1);
        assert_int_equal(rec.replayed, 1);
        assert_int_equal(rec.torn, 0);
        unsigned char body[5000];
        t_fill(body, sizeof body, 0);
        t_check_file(t, ids[0], body, sizeof body);
        assert_int_equal(t_count(t, "incoming"), 0);
        assert_int_equal(t_count(t, "wal"), 0);
    }
}

/* A checkpointed segment's file is reused as the next segment (its blocks already written,
 * so the rounds' fdatasync needs no journal commit). The records of its earlier use stay
 * behind the new ones; they must never come back, even when the queue manager has since
 * delivered and removed those messages: same-size messages, so that the new record covers
 * the first old one exactly and the next old ones sit where a reader would look. */
static void test_store_recycled_segment_never_resurrects(void **state)
{
    struct t_ctx *t = *state;
    char old_ids[3][ID_LEN + 1], new_id[ID_LEN + 1];
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        struct event_base *base = event_base_new();
        struct t_ctx *c = calloc(1, sizeof *c);
        c->base = base;
        c->qs = base ? queue_store_open(t->spool, base) : NULL;
        if (c->qs == NULL)
            _exit(2);
        unsigned char body[2000];
        t_fill(body, sizeof body, 7);
        char ids[4][ID_LEN + 1];
        for (size_t k = 0; k < 4; k++) {
            if (k == 3) {
                /* The three are in queue/ once the checkpoint ran; "deliver" them. */
                struct queue_store_stats st;
                do {
                    event_base_loop(base, EVLOOP_NONBLOCK);
                    usleep(10000);
                    queue_store_get_stats(c->qs, &st);
                } while (st.checkpoints == 0);
                for (size_t j = 0; j < 3; j++)
                    if (unlink(t_path(t, "queue", ids[j])) != 0)
                        _exit(4);
            }
            struct queue_msg *m = queue_msg_begin(c->qs, &t_env, ids[k]);
            if (m == NULL || queue_msg_write(m, body, sizeof body) != 0 ||
                write(fds[1], ids[k], ID_LEN) != ID_LEN)
                _exit(2);
            queue_msg_commit(m, t_commit_cb, k, c);
            while (c->ncb < k + 1)
                event_base_loop(base, EVLOOP_ONCE);
            if (c->errors[k] != 0)
                _exit(3);
        }
        _exit(0); /* a crash: no close, no checkpoint of the fourth */
    }
    close(fds[1]);
    for (size_t k = 0; k < 4; k++) {
        char *dst = k < 3 ? old_ids[k] : new_id;
        assert_int_equal(read(fds[0], dst, ID_LEN), ID_LEN);
        dst[ID_LEN] = '\0';
    }
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(t_count(t, "wal"), 1);
    struct queue_store_recovery rec;
    t_recover(t, &rec);
    assert_int_equal(rec.replayed, 1);
    assert_int_equal(rec.torn, 0);
    assert_true(t_exists(t, "queue", new_id));
    for (size_t k = 0; k < 3; k++)
        assert_false(t_exists(t, "queue", old_ids[k]));
    unsigned char body[2000];
    t_fill(body, sizeof body, 7);
    t_check_file(t, new_id, body, sizeof body);
}

/* HOSTILE-INPUTS I4: kill -9 right after the 250s. Checkpoints fail in the child, so every
 * message is only in the log (and in incoming/, which prepare deletes): recovery must put
 * each one in queue/, byte for byte. */
static void test_store_i4_recovery_replays_acknowledged(void **state)
{
    struct t_ctx *t = *state;
    enum { N = 40 };
    size_t sizes[N];
    for (size_t k = 0; k < N; k++)
        sizes[k] = k == 0 ? 0 : k == 1 ? 300000 : k == 2 ? STORE_TEST_ROUND_BUF : 100 * k;
    char ids[N][ID_LEN + 1];
    t_child_commit(t, "checkpoint-eio", N, sizes, false, ids, 0, false);
    assert_int_equal(t_count(t, "queue"), 0);
    struct queue_store_recovery rec;
    t_recover(t, &rec);
    assert_int_equal(rec.records, N);
    assert_int_equal(rec.replayed, N);
    assert_int_equal(rec.present, 0);
    assert_int_equal(rec.torn, 0);
    assert_int_equal(t_count(t, "queue"), N);
    assert_int_equal(t_count(t, "incoming"), 0);
    assert_int_equal(t_count(t, "wal"), 0);
    for (size_t k = 0; k < N; k++) {
        unsigned char *body = malloc(sizes[k] + 1);
        assert_non_null(body);
        t_fill(body, sizes[k], (unsigned)k);
        t_check_file(t, ids[k], body, sizes[k]);
        free(body);
    }
    /* A second start finds nothing more to do. */
    t_recover(t, &rec);
    assert_int_equal(rec.segments, 0);
    assert_int_equal(t_count(t, "queue"), N);
}

/* The only segment file in wal/, read whole. */
static unsigned char *t_segment(struct t_ctx *t, char *path, size_t pathlen, size_t *len)
{
    DIR *d = opendir(t_path(t, "wal", ""));
    assert_non_null(d);
    struct dirent *de;
    path[0] = '\0';
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        int n = snprintf(path, pathlen, "%s/wal/%s", t->spool, de->d_name);
        assert_true(n > 0 && (size_t)n < pathlen);
    }
    closedir(d);
    assert_true(path[0] != '\0');
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    *len = (size_t)st.st_size;
    unsigned char *buf = malloc(*len + 64);
    assert_non_null(buf);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, *len), (ssize_t)*len);
    close(fd);
    return buf;
}

static void t_write_file(const char *path, const unsigned char *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static uint64_t t_get64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v = v << 8 | b[k];
    return v;
}

/* A crash mid-append leaves a cut or garbled last record: recovery replays the records
 * before it and ignores it (it was never acknowledged: the fdatasync had not returned).
 * Three messages, the log edited after the crash. */
static void test_store_i6_torn_last_record_ignored(void **state)
{
    struct t_ctx *t = *state;
    enum { T_CUT, T_FLIP, T_APPEND };
    static const struct {
        const char *name;
        int kind;
        long where; /* T_CUT: bytes of record 3 kept; T_FLIP: offset in record 3;
                       T_APPEND: zeros after it, the rest of the file cut */
        size_t replayed;
        size_t torn;
    } cases[] = {
        {"last byte cut", T_CUT, -1, 2, 1},
        {"only the header", T_CUT, 48, 2, 1},
        {"half the header", T_CUT, 24, 2, 1},
        {"one byte of it", T_CUT, 1, 2, 1},
        {"payload byte flipped", T_FLIP, 100, 2, 1},
        {"last byte flipped", T_FLIP, -1, 2, 1},
        {"length flipped", T_FLIP, 43, 2, 1},
        {"sequence flipped", T_FLIP, 15, 2, 1},
        {"id made lowercase", T_FLIP, 16, 2, 1},
        {"CRC flipped", T_FLIP, 45, 2, 1},
        /* Zeros are the space a new segment is made with: the end, not damage. */
        {"the segment's own zeros after it", T_APPEND, -1, 3, 0},
        {"a few zeros after it", T_APPEND, 7, 3, 0},
        {"a whole header's worth of zeros", T_APPEND, 48, 3, 0},
        {"nothing after it", T_APPEND, 0, 3, 0},
    };
    size_t sizes[3] = {1000, 70000, 3000};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char ids[3][ID_LEN + 1];
        t_child_commit(t, "checkpoint-eio", 3, sizes, true, ids, 0, false);
        char path[256];
        size_t len;
        unsigned char *seg = t_segment(t, path, sizeof path, &len);
        size_t r3 = 48 + (size_t)t_get64(seg + 36);
        r3 += 48 + (size_t)t_get64(seg + r3 + 36);
        size_t r3len = 48 + (size_t)t_get64(seg + r3 + 36);
        assert_true(r3 + r3len <= len);
        if (cases[i].kind == T_CUT) {
            len = r3 + (cases[i].where < 0 ? r3len - 1 : (size_t)cases[i].where);
        } else if (cases[i].kind == T_FLIP) {
            size_t at = r3 + (cases[i].where < 0 ? r3len - 1 : (size_t)cases[i].where);
            seg[at] = cases[i].where == 16 ? (unsigned char)(seg[at] | 0x20) : seg[at] ^ 0x5a;
            if (cases[i].where == 16 && seg[at] >= '0' && seg[at] <= '9')
                seg[at] = 'a';
        } else if (cases[i].where >= 0) {
            memset(seg + r3 + r3len, 0, (size_t)cases[i].where);
            len = r3 + r3len + (size_t)cases[i].where;
        }
        t_write_file(path, seg, len);
        free(seg);
        struct queue_store_recovery rec;
        t_recover(t, &rec);
        if (rec.replayed != cases[i].replayed || rec.torn != cases[i].torn)
            fail_msg("%s: %llu replayed, %llu torn", cases[i].name,
                     (unsigned long long)rec.replayed, (unsigned long long)rec.torn);
        for (size_t k = 0; k < 3; k++) {
            if (k < cases[i].replayed) {
                unsigned char *body = malloc(sizes[k]);
                assert_non_null(body);
                t_fill(body, sizes[k], (unsigned)k);
                t_check_file(t, ids[k], body, sizes[k]);
                free(body);
                assert_int_equal(unlink(t_path(t, "queue", ids[k])), 0);
            } else if (t_exists(t, "queue", ids[k])) {
                fail_msg("%s: message %zu replayed", cases[i].name, k);
            }
        }
        assert_int_equal(t_count(t, "queue"), 0);
        assert_int_equal(t_count(t, "incoming"), 0);
        assert_int_equal(t_count(t, "wal"), 0);
    }
}

/* A crash in the middle of a checkpoint's renames: a record whose id is already in queue/
 * is left alone (the same file, not a second copy), the others are replayed. */
static void test_store_recovery_skips_ids_in_queue(void **state)
{
    struct t_ctx *t = *state;
    size_t sizes[3] = {10, 20, 30};
    char ids[3][ID_LEN + 1];
    pid_t pid = t_child_commit(t, "checkpoint-eio", 3, sizes, false, ids, 0, false);
    char from[256];
    snprintf(from, sizeof from, "%s", t_in_path(t, pid, ids[1]));
    assert_int_equal(rename(from, t_path(t, "queue", ids[1])), 0);
    struct stat before;
    assert_int_equal(stat(t_path(t, "queue", ids[1]), &before), 0);
    struct queue_store_recovery rec;
    t_recover(t, &rec);
    assert_int_equal(rec.records, 3);
    assert_int_equal(rec.present, 1);
    assert_int_equal(rec.replayed, 2);
    struct stat after;
    assert_int_equal(stat(t_path(t, "queue", ids[1]), &after), 0);
    assert_true(after.st_ino == before.st_ino);
    assert_int_equal(t_count(t, "queue"), 3);
    for (size_t k = 0; k < 3; k++) {
        unsigned char body[30];
        t_fill(body, sizes[k], (unsigned)k);
        t_check_file(t, ids[k], body, sizes[k]);
    }
}

/* Build a record the way the store does: header, then the CRC of header and payload. */
/* A log record (doc/QUEUE.md, "Write-ahead log"), written out byte by byte here rather
 * than through wal.c, so that the test pins the format down. */
static size_t t_record(unsigned char *out, const char *magic, uint32_t version, uint64_t seq,
                       const char *id, const unsigned char *payload, size_t n, uint64_t len_field)
{
    memcpy(out, magic, 4);
    for (int k = 0; k < 4; k++)
        out[4 + k] = (unsigned char)(version >> (24 - 8 * k));
    for (int k = 0; k < 8; k++)
        out[8 + k] = (unsigned char)(seq >> (56 - 8 * k));
    memcpy(out + 16, id, 20);
    for (int k = 0; k < 8; k++)
        out[36 + k] = (unsigned char)(len_field >> (56 - 8 * k));
    memcpy(out + 48, payload, n);
    uLong c = crc32(crc32(0, out, 44), payload, (uInt)n);
    for (int k = 0; k < 4; k++)
        out[44 + k] = (unsigned char)(c >> (24 - 8 * k));
    return 48 + n;
}

/* Segments nobody honest wrote: CRC-valid records with a bad magic, version, id or length
 * must replay nothing and never build a path from the id; anything in wal/ that is not a
 * regular file is not followed. All of it is removed. */
static void test_store_recovery_refuses_crafted_segments(void **state)
{
    struct t_ctx *t = *state;
    char id[ID_LEN + 1];
    size_t flen;
    unsigned char *good = t_good_file(t, &flen, id);
    assert_int_equal(unlink(t_path(t, "queue", id)), 0);
    static const struct {
        const char *name;
        const char *magic;
        uint32_t version;
        const char *id;
        int64_t len_delta;
        size_t replayed;
        int seq_delta; /* the record's sequence against the name's */
        size_t torn;
    } cases[] = {
        {"valid", "SLWR", 2, NULL, 0, 1, 0, 0},
        {"bad magic", "SLWX", 2, NULL, 0, 0, 0, 1},
        {"version 1", "SLWR", 1, NULL, 0, 0, 0, 1},
        {"version 3", "SLWR", 3, NULL, 0, 0, 0, 1},
        {"id with a path", "SLWR", 2, "../../../../tmp/evil", 0, 0, 0, 1},
        {"id with a slash", "SLWR", 2, "0000000000/000000000", 0, 0, 0, 1},
        {"id lowercase", "SLWR", 2, "0000000000000000000a", 0, 0, 0, 1},
        {"id with NUL", "SLWR", 2,
         "000000000\0"
         "0000000000",
         0, 0, 0, 1},
        {"length past the end", "SLWR", 2, NULL, 1, 0, 0, 1},
        {"length huge", "SLWR", 2, NULL, INT64_MAX / 2, 0, 0, 1},
        {"length one short", "SLWR", 2, NULL, -1, 0, 0, 1},
        /* Left from the file's earlier use under another name: the end, not damage. */
        {"an earlier sequence", "SLWR", 2, NULL, 0, 0, -1, 0},
        {"a later sequence", "SLWR", 2, NULL, 0, 0, 1, 0},
    };
    unsigned char *rec = malloc(flen + 64);
    assert_non_null(rec);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *rid = cases[i].id ? cases[i].id : id;
        size_t n = t_record(rec, cases[i].magic, cases[i].version,
                            (uint64_t)((int64_t)i + 1 + cases[i].seq_delta), rid, good, flen,
                            (uint64_t)((int64_t)flen + cases[i].len_delta));
        char path[256];
        snprintf(path, sizeof path, "%s/wal/999-%zu", t->spool, i + 1);
        t_write_file(path, rec, n);
        struct queue_store_recovery r;
        t_recover(t, &r);
        if (r.replayed != cases[i].replayed)
            fail_msg("%s: %llu replayed", cases[i].name, (unsigned long long)r.replayed);
        assert_int_equal(r.torn, cases[i].torn);
        assert_int_equal(t_count(t, "wal"), 0);
        assert_int_equal(t_count(t, "incoming"), 0);
        assert_int_equal(t_count(t, "queue"), cases[i].replayed);
        if (cases[i].replayed) {
            assert_int_equal(unlink(t_path(t, "queue", id)), 0);
        }
    }
    struct stat st;
    assert_int_equal(lstat("/tmp/evil", &st), -1);
    assert_int_equal(lstat("/tmp/evil.wal", &st), -1);
    /* A name the store does not make is unlinked unread, whatever it holds. */
    size_t n = t_record(rec, "SLWR", 2, 0, id, good, flen, flen);
    t_write_file(t_path(t, "wal", "not-a-segment"), rec, n);
    struct queue_store_recovery r0;
    t_recover(t, &r0);
    assert_int_equal(r0.replayed, 0);
    assert_int_equal(t_count(t, "wal"), 0);
    /* Not regular files: a symlink to a valid segment, a FIFO, a directory. */
    n = t_record(rec, "SLWR", 2, 1, id, good, flen, flen);
    char target[256];
    snprintf(target, sizeof target, "%s/corrupt/seg", t->spool);
    t_write_file(target, rec, n);
    assert_int_equal(symlink(target, t_path(t, "wal", "1-1")), 0);
    assert_int_equal(mkfifo(t_path(t, "wal", "1-2"), 0600), 0);
    struct queue_store_recovery r;
    t_recover(t, &r);
    assert_int_equal(r.segments, 0);
    assert_int_equal(r.replayed, 0);
    assert_int_equal(t_count(t, "wal"), 0);
    assert_int_equal(t_count(t, "queue"), 0);
    assert_true(t_exists(t, "corrupt", "seg"));
    free(rec);
    free(good);
}

static void t_wait_stats(struct t_ctx *t, bool (*done)(const struct queue_store_stats *))
{
    struct queue_store_stats st;
    for (int k = 0; k < 1000; k++) {
        queue_store_get_stats(t->qs, &st);
        if (done(&st))
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("timed out");
}

static bool t_one_checkpoint(const struct queue_store_stats *st)
{
    return st->checkpoints >= 1;
}

static bool t_one_checkpoint_failure(const struct queue_store_stats *st)
{
    return st->checkpoint_failures >= 1;
}

static void t_commit_n(struct t_ctx *t, size_t n, char ids[][ID_LEN + 1])
{
    for (size_t k = 0; k < n; k++) {
        unsigned char body[2000];
        t_fill(body, sizeof body, (unsigned)k);
        struct queue_msg *m = queue_msg_begin(t->qs, &t_env, ids[k]);
        assert_non_null(m);
        assert_int_equal(queue_msg_write(m, body, sizeof body), 0);
        queue_msg_commit(m, t_commit_cb, k, t);
    }
    t_run_until(t, n);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(t->errors[k], 0);
}

static void t_check_n(struct t_ctx *t, size_t n, char ids[][ID_LEN + 1])
{
    for (size_t k = 0; k < n; k++) {
        unsigned char body[2000];
        t_fill(body, sizeof body, (unsigned)k);
        t_check_file(t, ids[k], body, sizeof body);
    }
}

/* The checkpoint runs on its own (200 ms after the last one) while the store is open. */
static void test_store_checkpoint_moves_to_queue(void **state)
{
    struct t_ctx *t = *state;
    t_open(t, NULL);
    char ids[5][ID_LEN + 1];
    t_commit_n(t, 5, ids);
    t_wait_stats(t, t_one_checkpoint);
    assert_int_equal(t_count(t, "queue"), 5);
    assert_int_equal(t_incoming(t), 0);
    t_check_n(t, 5, ids);
    /* The segment that held them is gone; a fresh one waits for the next round. */
    assert_int_equal(t_count(t, "wal"), 1);
}

/* HOSTILE-INPUTS I8 at the checkpoint: its syncfs fails once. The messages stay
 * acknowledged in the log, and the retry rewrites their files from the log instead of
 * syncing again; they end up whole in queue/. */
static void test_store_i8_checkpoint_failure_retried_from_log(void **state)
{
    struct t_ctx *t = *state;
    t_open(t, "checkpoint-eio-once");
    char ids[5][ID_LEN + 1];
    t_commit_n(t, 5, ids);
    t_wait_stats(t, t_one_checkpoint_failure);
    assert_int_equal(t_count(t, "queue"), 0);
    assert_int_equal(t_incoming(t), 5);
    /* Spoil one file in incoming/: the retry must not trust it. */
    t_write_file(t_in_path(t, getpid(), ids[2]), (const unsigned char *)"junk", 4);
    t_wait_stats(t, t_one_checkpoint);
    assert_int_equal(t_count(t, "queue"), 5);
    assert_int_equal(t_incoming(t), 0);
    t_check_n(t, 5, ids);
    struct queue_store_stats st;
    queue_store_get_stats(t->qs, &st);
    assert_int_equal(st.checkpoint_failures, 1);
    assert_int_equal(st.committed, 5);
    queue_store_close(t->qs);
    t->qs = NULL;
    assert_int_equal(t_count(t, "wal"), 0);
}

/* HOSTILE-INPUTS I8: the checkpoint keeps failing, close included. Nothing is dropped: the
 * log stays for the recovery, which puts every message in queue/. */
static void test_store_i8_checkpoint_failing_at_close_leaves_log(void **state)
{
    struct t_ctx *t = *state;
    t_open(t, "checkpoint-eio");
    char ids[5][ID_LEN + 1];
    t_commit_n(t, 5, ids);
    queue_store_close(t->qs);
    t->qs = NULL;
    assert_int_equal(t_count(t, "queue"), 0);
    assert_int_equal(t_count(t, "wal"), 1);
    struct queue_store_recovery rec;
    t_recover(t, &rec);
    assert_int_equal(rec.replayed, 5);
    assert_int_equal(t_count(t, "queue"), 5);
    assert_int_equal(t_count(t, "incoming"), 0);
    assert_int_equal(t_count(t, "wal"), 0);
    t_check_n(t, 5, ids);
}

/* ---- per-worker incoming/ and the recovery of one dead worker ---- */

/* Each store writes in incoming/<its pid>/ (0700), never in incoming/ itself; close removes
 * the directory when the checkpoint emptied it, and leaves it with its files when the
 * checkpoint failed (the log covers them). */
static void test_store_incoming_is_per_worker(void **state)
{
    struct t_ctx *t = *state;
    static const struct {
        const char *fault;
        size_t left; /* files in incoming/<pid>/ after close; 0: the directory is gone */
    } cases[] = {{NULL, 0}, {"checkpoint-eio", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        t_open(t, cases[i].fault);
        struct stat st;
        assert_int_equal(lstat(t_in_path(t, getpid(), ""), &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0700);
        char id[ID_LEN + 1];
        struct queue_msg *m = queue_msg_begin(t->qs, &t_env, id);
        assert_non_null(m);
        assert_true(t_in_exists(t, getpid(), id));
        assert_false(t_exists(t, "incoming", id));
        t->ncb = 0;
        queue_msg_commit(m, t_commit_cb, 0, t);
        t_run_until(t, 1);
        assert_int_equal(t->errors[0], 0);
        queue_store_close(t->qs);
        t->qs = NULL;
        assert_int_equal(t_in_exists(t, getpid(), ""), cases[i].left > 0);
        assert_int_equal(t_incoming(t), cases[i].left);
        assert_int_equal(t_in_exists(t, getpid(), id), cases[i].left > 0);
    }
}

/* The ids of the live store's files in incoming/<pid>/ and its segment sizes, to show
 * that recovering another pid left them alone. */
static size_t t_wal_bytes_of(struct t_ctx *t, pid_t pid)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%ld-", (long)pid);
    DIR *d = opendir(t_path(t, "wal", ""));
    assert_non_null(d);
    size_t bytes = 0, n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
            continue;
        struct stat st;
        assert_int_equal(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
        bytes += (size_t)st.st_size;
        n++;
    }
    closedir(d);
    return n == 0 ? 0 : bytes + 1;
}

/* HOSTILE-INPUTS I4 while the master keeps running: a worker acknowledges messages and is
 * killed with SIGKILL before any checkpoint (they fail in the child, so none can run).
 * queue_store_recover_worker(its pid) replays them into queue/ (one whose id is already
 * there is skipped, not copied again), removes its segment and its incoming/<pid>/ with
 * the message it was still receiving, and leaves a live store's files alone: that store
 * goes on working. */
static void test_store_i4_recover_worker_after_sigkill(void **state)
{
    struct t_ctx *t = *state;
    /* The live store keeps its acknowledged messages in incoming/ and the log, too. */
    t_open(t, "checkpoint-eio");
    char mine[4][ID_LEN + 1];
    t_commit_n(t, 3, mine);
    struct queue_msg *receiving = queue_msg_begin(t->qs, &t_env, mine[3]);
    assert_non_null(receiving);
    assert_int_equal(queue_msg_write(receiving, "half", 4), 0);
    size_t my_wal = t_wal_bytes_of(t, getpid());
    assert_true(my_wal > 0);

    enum { N = 5 };
    size_t sizes[N] = {0, 100, 70000, 300000, 5};
    char ids[N][ID_LEN + 1];
    pid_t pid = t_child_commit(t, "checkpoint-eio", N, sizes, false, ids, 1, true);
    assert_int_equal(t_count(t, "queue"), 0);
    for (size_t k = 0; k < N; k++)
        assert_true(t_in_exists(t, pid, ids[k]));
    assert_true(t_wal_bytes_of(t, pid) > 0);
    /* A checkpoint cut off mid-way had moved one of them already. */
    char from[256];
    snprintf(from, sizeof from, "%s", t_in_path(t, pid, ids[1]));
    assert_int_equal(rename(from, t_path(t, "queue", ids[1])), 0);
    struct stat before;
    assert_int_equal(stat(t_path(t, "queue", ids[1]), &before), 0);

    struct queue_store_recovery rec;
    assert_int_equal(queue_store_recover_worker(t->spool, pid, &rec), 0);
    assert_int_equal(rec.segments, 1);
    assert_int_equal(rec.records, N);
    assert_int_equal(rec.replayed, N - 1);
    assert_int_equal(rec.present, 1);
    assert_int_equal(rec.torn, 0);
    assert_int_equal(t_count(t, "queue"), N);
    for (size_t k = 0; k < N; k++) {
        unsigned char *body = malloc(sizes[k] + 1);
        assert_non_null(body);
        t_fill(body, sizes[k], (unsigned)k);
        t_check_file(t, ids[k], body, sizes[k]);
        free(body);
    }
    struct stat after;
    assert_int_equal(stat(t_path(t, "queue", ids[1]), &after), 0);
    assert_true(after.st_ino == before.st_ino);
    assert_false(t_in_exists(t, pid, ""));
    assert_int_equal(t_wal_bytes_of(t, pid), 0);

    /* The live store's files are untouched. */
    for (size_t k = 0; k < 4; k++)
        assert_true(t_in_exists(t, getpid(), mine[k]));
    assert_int_equal(t_incoming(t), 4);
    assert_int_equal(t_wal_bytes_of(t, getpid()), my_wal);
    /* Done twice, it finds nothing. */
    assert_int_equal(queue_store_recover_worker(t->spool, pid, &rec), 0);
    assert_int_equal(rec.segments, 0);
    assert_int_equal(t_count(t, "queue"), N);

    /* The live store goes on: its unfinished message commits. Its checkpoints fail, so
     * its four messages reach queue/ by the recovery at the next start. */
    assert_int_equal(queue_msg_write(receiving, "-done", 5), 0);
    queue_msg_commit(receiving, t_commit_cb, 3, t);
    t_run_until(t, 4);
    assert_int_equal(t->errors[3], 0);
    queue_store_close(t->qs);
    t->qs = NULL;
    t_recover(t, &rec);
    assert_int_equal(rec.replayed, 4);
    assert_int_equal(t_count(t, "queue"), N + 4);
    t_check_n(t, 3, mine);
    assert_int_equal(t_count(t, "incoming"), 0);
    assert_int_equal(t_count(t, "wal"), 0);
}

/* Recovering pid 4242 reads and unlinks only the segments named "4242-<digits>" and removes
 * only the regular files of incoming/4242/: names of other pids or not of the form are left,
 * a symlink or FIFO is not followed, a subdirectory is not entered. */
static void test_store_recover_worker_touches_only_its_pid(void **state)
{
    struct t_ctx *t = *state;
    char gid[ID_LEN + 1];
    size_t flen;
    unsigned char *good = t_good_file(t, &flen, gid);
    assert_int_equal(unlink(t_path(t, "queue", gid)), 0);
    unsigned char *rec = malloc(flen + 64);
    assert_non_null(rec);
    static const struct {
        const char *name;
        bool ours;
    } segs[] = {
        {"4242-0", true},   {"4242-17", true},  {"42420-0", false}, {"14242-0", false},
        {"4242-", false},   {"4242-1x", false}, {"4242", false},    {"4242-0.tmp", false},
        {"-4242-0", false}, {"04242-0", false},
    };
    size_t nsegs = sizeof segs / sizeof segs[0];
    for (size_t i = 0; i < nsegs; i++) {
        char id[ID_LEN + 1];
        snprintf(id, sizeof id, "0000000000000000SG%02zu", i);
        const char *dash = strchr(segs[i].name + 1, '-');
        uint64_t seq = dash != NULL ? strtoull(dash + 1, NULL, 10) : 0;
        size_t n = t_record(rec, "SLWR", 2, seq, id, good, flen, flen);
        t_write_file(t_path(t, "wal", segs[i].name), rec, n);
    }
    /* A symlink with one of our names, to a valid segment: unlinked, never read. */
    char target[256];
    snprintf(target, sizeof target, "%s/corrupt/seg", t->spool);
    size_t n = t_record(rec, "SLWR", 2, 5, "0000000000000000LINK", good, flen, flen);
    t_write_file(target, rec, n);
    assert_int_equal(symlink(target, t_path(t, "wal", "4242-5")), 0);

    enum { T_FILE, T_LINK, T_FIFO, T_DIR };
    static const struct {
        const char *name;
        int kind;
        bool removed;
    } ents[] = {
        {"00000000000000000001", T_FILE, true},
        {"00000000000000000001.wal", T_FILE, true},
        {"link", T_LINK, false},
        {"fifo", T_FIFO, false},
        {"sub", T_DIR, false},
    };
    size_t nents = sizeof ents / sizeof ents[0];
    char outside[256];
    snprintf(outside, sizeof outside, "%s/corrupt/outside", t->spool);
    t_write_file(outside, (const unsigned char *)"keep", 4);
    assert_int_equal(mkdir(t_in_path(t, 4242, ""), 0700), 0);
    assert_int_equal(mkdir(t_in_path(t, 42420, ""), 0700), 0);
    t_write_file(t_in_path(t, 42420, "00000000000000000002"), (const unsigned char *)"x", 1);
    for (size_t i = 0; i < nents; i++) {
        const char *p = t_in_path(t, 4242, ents[i].name);
        if (ents[i].kind == T_FILE)
            t_write_file(p, (const unsigned char *)"x", 1);
        else if (ents[i].kind == T_LINK)
            assert_int_equal(symlink(outside, p), 0);
        else if (ents[i].kind == T_FIFO)
            assert_int_equal(mkfifo(p, 0600), 0);
        else
            assert_int_equal(mkdir(p, 0700), 0);
    }
    t_write_file(t_in_path(t, 4242, "sub/00000000000000000003"), (const unsigned char *)"x", 1);

    struct queue_store_recovery r;
    assert_int_equal(queue_store_recover_worker(t->spool, 4242, &r), 0);
    assert_int_equal(r.segments, 2);
    assert_int_equal(r.replayed, 2);
    assert_int_equal(r.torn, 0);
    assert_int_equal(t_count(t, "queue"), 2);
    for (size_t i = 0; i < nsegs; i++) {
        char id[ID_LEN + 1];
        snprintf(id, sizeof id, "0000000000000000SG%02zu", i);
        if (t_exists(t, "queue", id) != segs[i].ours ||
            t_exists(t, "wal", segs[i].name) == segs[i].ours)
            fail_msg("segment %s handled wrongly", segs[i].name);
    }
    assert_false(t_exists(t, "wal", "4242-5"));
    assert_true(t_exists(t, "corrupt", "seg"));
    assert_false(t_exists(t, "queue", "0000000000000000LINK"));
    for (size_t i = 0; i < nents; i++)
        if (t_in_exists(t, 4242, ents[i].name) == ents[i].removed)
            fail_msg("incoming/4242/%s handled wrongly", ents[i].name);
    assert_true(t_in_exists(t, 4242, "sub/00000000000000000003"));
    assert_true(t_in_exists(t, 42420, "00000000000000000002"));
    assert_true(t_exists(t, "corrupt", "outside"));
    /* incoming/<pid> itself a symlink to a directory: not followed, left. */
    char cdir[256];
    snprintf(cdir, sizeof cdir, "%s/corrupt", t->spool);
    assert_int_equal(symlink(cdir, t_in_path(t, 4243, "")), 0);
    assert_int_equal(queue_store_recover_worker(t->spool, 4243, &r), 0);
    assert_true(t_exists(t, "corrupt", "outside"));
    assert_true(t_in_exists(t, 4243, ""));
    /* No pid, no recovery. */
    static const pid_t bad[] = {0, -1, -4242};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_int_equal(queue_store_recover_worker(t->spool, bad[i], &r), -1);
        assert_int_equal(errno, EINVAL);
    }
    assert_true(t_exists(t, "wal", "42420-0"));
    free(rec);
    free(good);
}

/* Start-up cleaning of incoming/ is bounded: every entry of incoming/ itself goes (a
 * symlink as a link, never followed); in a directory named like a pid only the regular
 * files go, and the directory too when that empties it; any other directory, and anything
 * deeper, stays. */
static void test_store_prepare_cleans_incoming_bounded(void **state)
{
    struct t_ctx *t = *state;
    char outside[256], outdir[256];
    snprintf(outside, sizeof outside, "%s/corrupt/outside", t->spool);
    snprintf(outdir, sizeof outdir, "%s/corrupt/dir", t->spool);
    t_write_file(outside, (const unsigned char *)"keep", 4);
    assert_int_equal(mkdir(outdir, 0700), 0);
    t_write_file(t_path(t, "corrupt", "dir/x"), (const unsigned char *)"keep", 4);
    enum { T_FILE, T_LINK, T_DIRLINK, T_FIFO, T_DIR };
    static const struct {
        const char *path; /* under incoming/ */
        int kind;
        bool removed;
    } ents[] = {
        {"00000000000000000001", T_FILE, true},
        {"00000000000000000001.wal", T_FILE, true},
        {"toplink", T_LINK, true},
        {"125", T_DIRLINK, true},
        {"topfifo", T_FIFO, true},
        {"123", T_DIR, true},
        {"123/00000000000000000002", T_FILE, true},
        {"123/00000000000000000002.wal", T_FILE, true},
        {"124", T_DIR, false},
        {"124/00000000000000000003", T_FILE, true},
        {"124/link", T_LINK, false},
        {"124/fifo", T_FIFO, false},
        {"124/sub", T_DIR, false},
        {"124/sub/00000000000000000004", T_FILE, false},
        {"abc", T_DIR, false},
        {"abc/00000000000000000005", T_FILE, false},
        {"0123", T_DIR, false},
        {"0123/00000000000000000006", T_FILE, false},
        {"12345678901", T_DIR, false},
        {"12345678901/00000000000000000007", T_FILE, false},
    };
    size_t nents = sizeof ents / sizeof ents[0];
    for (size_t i = 0; i < nents; i++) {
        const char *p = t_path(t, "incoming", ents[i].path);
        if (ents[i].kind == T_FILE)
            t_write_file(p, (const unsigned char *)"x", 1);
        else if (ents[i].kind == T_LINK)
            assert_int_equal(symlink(outside, p), 0);
        else if (ents[i].kind == T_DIRLINK)
            assert_int_equal(symlink(outdir, p), 0);
        else if (ents[i].kind == T_FIFO)
            assert_int_equal(mkfifo(p, 0600), 0);
        else
            assert_int_equal(mkdir(p, 0700), 0);
    }
    struct queue_store_recovery rec;
    t_recover(t, &rec);
    for (size_t i = 0; i < nents; i++)
        if (t_exists(t, "incoming", ents[i].path) == ents[i].removed)
            fail_msg("incoming/%s handled wrongly", ents[i].path);
    assert_true(t_exists(t, "corrupt", "outside"));
    assert_true(t_exists(t, "corrupt", "dir/x"));
    /* What stays is skipped again at the next start, without error. */
    t_recover(t, &rec);
    assert_true(t_exists(t, "incoming", "124/sub/00000000000000000004"));
}

int main(void)
{
    alarm(120); /* a lost wake-up must fail the run, not hang it */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_i6_crash_points, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_recycled_segment_never_resurrects, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_store_i4_recovery_replays_acknowledged, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_store_i6_torn_last_record_ignored, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_store_recovery_skips_ids_in_queue, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_store_recovery_refuses_crafted_segments, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_store_checkpoint_moves_to_queue, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_i8_checkpoint_failure_retried_from_log, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_store_i8_checkpoint_failing_at_close_leaves_log,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_incoming_is_per_worker, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_store_i4_recover_worker_after_sigkill, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_store_recover_worker_touches_only_its_pid, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_store_prepare_cleans_incoming_bounded, t_setup,
                                        t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
