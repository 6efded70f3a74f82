/* Shared fixture of the queue/store unit tests (test_store.c, test_store_recover.c): a
 * fresh spool under /tmp with its own event_base per test, the envelope every test commits,
 * a commit callback that records results by cookie, and helpers that look at the spool's
 * directories and read committed files back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_fixture.h"

struct queue_rcpt t_rcpts[] = {
    {"alice@example.org", PROTO_NOTIFY_FAILURE, "rfc822;alice@example.org"},
    {"postmaster", 0, NULL},
};

struct queue_envelope t_env = {
    .sender = "bob@example.net",
    .rcpts = t_rcpts,
    .nrcpts = 2,
    .body = PROTO_BODY_8BITMIME,
    .ret = PROTO_RET_HDRS,
    .envid = "ENV1",
    .helo = "client.example.net",
    .client_addr = "192.0.2.7",
    .listener = "smtp",
    .arrival = 1700000000,
};

static int t_rm(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

const char *t_path(struct t_ctx *t, const char *dir, const char *name)
{
    int n = snprintf(t->path, sizeof t->path, "%s/%s%s%s", t->spool, dir, name[0] ? "/" : "", name);
    assert_true(n > 0 && (size_t)n < sizeof t->path);
    return t->path;
}

size_t t_count(struct t_ctx *t, const char *dir)
{
    DIR *d = opendir(t_path(t, dir, ""));
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

bool t_exists(struct t_ctx *t, const char *dir, const char *name)
{
    struct stat st;
    return lstat(t_path(t, dir, name), &st) == 0;
}

/* incoming/<pid>/<name>: where the store of process pid keeps its files. */
const char *t_in_path(struct t_ctx *t, pid_t pid, const char *name)
{
    snprintf(t->path, sizeof t->path, "%s/incoming/%ld%s%s", t->spool, (long)pid,
             name[0] ? "/" : "", name);
    return t->path;
}

bool t_in_exists(struct t_ctx *t, pid_t pid, const char *name)
{
    struct stat st;
    return lstat(t_in_path(t, pid, name), &st) == 0;
}

/* Files in incoming/, wherever: its own entries other than directories, and the entries of
 * its directories (each store's incoming/<pid>/). */
size_t t_incoming(struct t_ctx *t)
{
    DIR *d = opendir(t_path(t, "incoming", ""));
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        assert_int_equal(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
        if (!S_ISDIR(st.st_mode)) {
            n++;
            continue;
        }
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY);
        assert_true(fd >= 0);
        DIR *sub = fdopendir(fd);
        assert_non_null(sub);
        struct dirent *e;
        while ((e = readdir(sub)) != NULL)
            n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
        closedir(sub);
    }
    closedir(d);
    return n;
}

int t_setup(void **state)
{
    struct t_ctx *t = calloc(1, sizeof *t);
    assert_non_null(t);
    snprintf(t->spool, sizeof t->spool, "/tmp/sluice-test-store-XXXXXX");
    assert_non_null(mkdtemp(t->spool));
    t->base = event_base_new();
    assert_non_null(t->base);
    assert_int_equal(queue_store_prepare(t->spool, &t->lock_fd), 0);
    unsetenv("SLUICE_FAULT");
    *state = t;
    return 0;
}

int t_teardown(void **state)
{
    struct t_ctx *t = *state;
    queue_store_close(t->qs);
    if (t->lock_fd >= 0)
        close(t->lock_fd);
    event_base_free(t->base);
    nftw(t->spool, t_rm, 16, FTW_DEPTH | FTW_PHYS);
    unsetenv("SLUICE_FAULT");
    free(t);
    return 0;
}

void t_open(struct t_ctx *t, const char *fault)
{
    if (fault != NULL)
        setenv("SLUICE_FAULT", fault, 1);
    else
        unsetenv("SLUICE_FAULT");
    t->qs = queue_store_open(t->spool, t->base);
    assert_non_null(t->qs);
    unsetenv("SLUICE_FAULT");
}

void t_commit_cb(int error, const char *id, uint64_t cookie, void *arg)
{
    struct t_ctx *t = arg;
    assert_true(cookie < T_MAX_MSGS);
    t->errors[cookie] = error;
    t->seen[cookie]++;
    memcpy(t->ids[cookie], id, ID_LEN + 1);
    t->ncb++;
}

void t_run_until(struct t_ctx *t, size_t n)
{
    while (t->ncb < n)
        assert_true(event_base_loop(t->base, EVLOOP_ONCE) >= 0);
}

void t_fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 131u + seed) ^ (i >> 8));
}

/* Read a committed file back and compare envelope and body with what was written. */
void t_check_file(struct t_ctx *t, const char *id, const unsigned char *body, size_t len)
{
    struct queue_envelope env;
    uint64_t off = 0, blen = 0;
    assert_int_equal(queue_file_read(t_path(t, "queue", id), &env, &off, &blen), 0);
    assert_string_equal(env.sender, t_env.sender);
    assert_int_equal(env.nrcpts, 2);
    assert_string_equal(env.rcpts[0].addr, "alice@example.org");
    assert_string_equal(env.rcpts[0].orcpt, "rfc822;alice@example.org");
    assert_null(env.rcpts[1].orcpt);
    assert_string_equal(env.helo, "client.example.net");
    assert_null(env.auth);
    assert_true(env.arrival == 1700000000);
    queue_envelope_free(&env);
    assert_int_equal(blen, len);
    int fd = open(t_path(t, "queue", id), O_RDONLY);
    assert_true(fd >= 0);
    unsigned char *got = malloc(len + 1);
    assert_non_null(got);
    assert_int_equal(pread(fd, got, len, (off_t)off), (ssize_t)len);
    assert_memory_equal(got, body, len);
    free(got);
    close(fd);
}

/* Commit one small message and return its file's bytes. */
unsigned char *t_good_file(struct t_ctx *t, size_t *len, char id[ID_LEN + 1])
{
    t_open(t, NULL);
    struct queue_msg *m = queue_msg_begin(t->qs, &t_env, id);
    assert_non_null(m);
    assert_int_equal(queue_msg_write(m, "Subject: x\r\n\r\nbody\r\n", 20), 0);
    queue_msg_commit(m, t_commit_cb, 0, t);
    t_run_until(t, 1);
    assert_int_equal(t->errors[0], 0);
    queue_store_close(t->qs); /* checkpoint: the file moves to queue/ */
    t->qs = NULL;
    int fd = open(t_path(t, "queue", id), O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    *len = (size_t)st.st_size;
    unsigned char *buf = malloc(*len);
    assert_non_null(buf);
    assert_int_equal(read(fd, buf, *len), (ssize_t)*len);
    close(fd);
    return buf;
}
