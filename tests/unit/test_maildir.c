/* Unit tests for deliver/maildir: byte-exact delivery of committed queue files (8-bit, NUL
 * bytes, bodies across the 64 KiB copy buffer, 300 KB), unique names (the hostname in them
 * escaped), creation of missing cur/ new/ tmp/, refusal of symlinks, FIFOs and files in
 * place of the Maildir's directories with nothing written anywhere (HOSTILE-INPUTS K1),
 * header injection through an envelope address, unreadable or corrupt queue files, and
 * failures in the middle of the write leaving nothing in tmp/ or new/ (K7: a full tmpfs, a
 * file size limit), Maildir++ quotas (maildirsize read, recalculated, appended to; 4.2.2
 * with nothing written; batches counting their own messages). The queue files are made by
 * the real store (queue_store_open, queue_msg_*, then a close to checkpoint them into
 * queue/). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deliver/maildir.h"
#include "queue/store.h"

static struct queue_rcpt m_rcpts[] = {{"alice@example.org", 0, NULL}};

struct m_ctx {
    char dir[64];        /* everything of the test lives under it */
    char spool[128];
    char mbox[128];      /* the Maildir root most tests deliver to */
    char qpath[256];     /* the last committed queue file */
    char path[512];      /* scratch for m_path */
    char mounted[256];   /* a tmpfs to unmount at teardown, even when the test failed */
    struct event_base *base;
    int lock_fd;
    int ncb;
    int error;
    struct queue_envelope env;
};

static int m_rm(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int m_setup(void **state)
{
    struct m_ctx *t = calloc(1, sizeof *t);
    assert_non_null(t);
    snprintf(t->dir, sizeof t->dir, "/tmp/sluice-test-maildir-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->spool, sizeof t->spool, "%s/spool", t->dir);
    snprintf(t->mbox, sizeof t->mbox, "%s/mbox", t->dir);
    assert_int_equal(mkdir(t->mbox, 0700), 0);
    t->base = event_base_new();
    assert_non_null(t->base);
    unsetenv("SLUICE_FAULT");
    assert_int_equal(queue_store_prepare(t->spool, &t->lock_fd), 0);
    t->env = (struct queue_envelope){
        .sender = "bob@example.net",
        .rcpts = m_rcpts,
        .nrcpts = 1,
        .body = PROTO_BODY_8BITMIME,
        .helo = "client.example.net",
        .client_addr = "192.0.2.7",
        .listener = "smtp",
        .arrival = 1700000000,
    };
    *state = t;
    return 0;
}

static int m_teardown(void **state)
{
    struct m_ctx *t = *state;
    if (t->mounted[0] != '\0')
        umount(t->mounted);
    close(t->lock_fd);
    event_base_free(t->base);
    nftw(t->dir, m_rm, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
    return 0;
}

static void m_commit_cb(int error, const char *id, uint64_t cookie, void *arg)
{
    (void)id;
    (void)cookie;
    struct m_ctx *t = arg;
    t->error = error;
    t->ncb++;
}

/* Commit body as a message of t->env through the store and close it, so that the file is
 * checkpointed into queue/; its path goes to t->qpath. */
static void m_commit(struct m_ctx *t, const unsigned char *body, size_t len)
{
    struct queue_store *qs = queue_store_open(t->spool, t->base);
    assert_non_null(qs);
    char id[ID_LEN + 1];
    struct queue_msg *m = queue_msg_begin(qs, &t->env, id);
    assert_non_null(m);
    for (size_t off = 0; off < len; off += 10000)
        assert_int_equal(queue_msg_write(m, body + off, len - off < 10000 ? len - off : 10000), 0);
    t->ncb = 0;
    queue_msg_commit(m, m_commit_cb, 0, t);
    while (t->ncb == 0)
        assert_true(event_base_loop(t->base, EVLOOP_ONCE) >= 0);
    assert_int_equal(t->error, 0);
    queue_store_close(qs);
    snprintf(t->qpath, sizeof t->qpath, "%s/queue/%s", t->spool, id);
    struct stat st;
    assert_int_equal(stat(t->qpath, &st), 0);
}

static void m_deliver_to(struct m_ctx *t, const char *mbox, const char *rcpt,
                         struct deliver_result *res)
{
    memset(res, 0x5a, sizeof *res);
    struct deliver_request rq = {
        .queue_path = t->qpath, .env = &t->env, .recipient = rcpt, .mailbox_dir = mbox};
    maildir_deliver(&rq, res);
    assert_non_null(memchr(res->enhanced, '\0', sizeof res->enhanced));
    assert_non_null(memchr(res->text, '\0', sizeof res->text));
}

static const char *m_path(struct m_ctx *t, const char *base, const char *name)
{
    snprintf(t->path, sizeof t->path, "%s/%s", base, name);
    return t->path;
}

/* Entries of dir (0 when it does not exist); the last one's name to last when not NULL. */
static size_t m_count(const char *dir, char *last, size_t cap)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        n++;
        if (last != NULL)
            snprintf(last, cap, "%s", de->d_name);
    }
    closedir(d);
    return n;
}

static void m_fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 131u + seed) ^ (i >> 8));
}

/* The single file in <mbox>/new/ must be the two header lines followed by body. */
static void m_check_delivered(struct m_ctx *t, const char *mbox, const char *sender,
                              const char *rcpt, const unsigned char *body, size_t len)
{
    char name[300];
    char newdir[300];
    snprintf(newdir, sizeof newdir, "%s/new", mbox);
    assert_int_equal(m_count(newdir, name, sizeof name), 1);
    assert_int_equal(m_count(m_path(t, mbox, "tmp"), NULL, 0), 0);
    char hdr[512];
    int hn = snprintf(hdr, sizeof hdr, "Return-Path: <%s>\r\nDelivered-To: %s\r\n", sender, rcpt);
    assert_true(hn > 0 && (size_t)hn < sizeof hdr);
    char file[640];
    snprintf(file, sizeof file, "%s/%s", newdir, name);
    int fd = open(file, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, (off_t)((size_t)hn + len));
    assert_int_equal(st.st_mode & 0777, 0600);
    unsigned char *got = malloc((size_t)hn + len + 1);
    assert_non_null(got);
    assert_int_equal(read(fd, got, (size_t)hn + len + 1), (ssize_t)((size_t)hn + len));
    close(fd);
    assert_memory_equal(got, hdr, (size_t)hn);
    if (len > 0)
        assert_memory_equal(got + hn, body, len);
    free(got);
    assert_int_equal(unlink(file), 0);
}

static const struct {
    const char *sender;
    const char *rcpt;
    size_t len;          /* body length; 0 with text set: use text */
    const char *text;
    size_t text_len;
} deliver_cases[] = {
    {"bob@example.net", "alice@example.org", 0, "Subject: hi\r\n\r\nhello\r\n", 22},
    {"", "alice@example.org", 0, "Subject: bounce\r\n\r\nnull sender\r\n", 32},
    {"bob@example.net", "alice@example.org", 0, "", 0},
    /* 8-bit and NUL bytes pass untouched (8BITMIME, BDAT binary bodies) */
    {"b\xc3\xb6@example.net", "\xc3\xa4lice@example.org", 0,
     "X: \xff\xfe\0\0\x80\r\n\r\n\0body\0", 18},
    {"bob@example.net", "alice@example.org", 65536 - 60, NULL, 0}, /* fills the first chunk */
    {"bob@example.net", "alice@example.org", 65536, NULL, 0},
    {"bob@example.net", "alice@example.org", 131073, NULL, 0},
    {"bob@example.net", "alice@example.org", 300 * 1024, NULL, 0},
};

static void test_maildir_delivers_exact_bytes_table(void **state)
{
    struct m_ctx *t = *state;
    for (size_t i = 0; i < sizeof deliver_cases / sizeof deliver_cases[0]; i++) {
        size_t len = deliver_cases[i].text != NULL ? deliver_cases[i].text_len
                                                   : deliver_cases[i].len;
        unsigned char *body = malloc(len + 1);
        assert_non_null(body);
        if (deliver_cases[i].text != NULL)
            memcpy(body, deliver_cases[i].text, len);
        else
            m_fill(body, len, (unsigned)i);
        t->env.sender = (char *)deliver_cases[i].sender;
        m_commit(t, body, len);
        struct deliver_result res;
        m_deliver_to(t, t->mbox, deliver_cases[i].rcpt, &res);
        assert_int_equal(res.status, DELIVER_OK);
        assert_string_equal(res.enhanced, "2.0.0");
        m_check_delivered(t, t->mbox, deliver_cases[i].sender, deliver_cases[i].rcpt, body, len);
        /* The queue file is only read. */
        struct stat st;
        assert_int_equal(stat(t->qpath, &st), 0);
        free(body);
    }
}

static void test_maildir_unique_names_100(void **state)
{
    struct m_ctx *t = *state;
    m_commit(t, (const unsigned char *)"Subject: x\r\n\r\n", 14);
    char host[65];
    assert_int_equal(gethostname(host, sizeof host), 0);
    char part[64];
    snprintf(part, sizeof part, ".P%ldQ", (long)getpid());
    for (int i = 0; i < 100; i++) {
        struct deliver_result res;
        m_deliver_to(t, t->mbox, "alice@example.org", &res);
        assert_int_equal(res.status, DELIVER_OK);
    }
    char newdir[300];
    snprintf(newdir, sizeof newdir, "%s/new", t->mbox);
    assert_int_equal(m_count(newdir, NULL, 0), 100);
    assert_int_equal(m_count(m_path(t, t->mbox, "tmp"), NULL, 0), 0);
    DIR *d = opendir(newdir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        /* <sec>.P<pid>Q<n>M<usec>.<host>,S=<octets of the file> (Maildir++), no '/', ':'
         * or ',' from the host left unescaped */
        assert_non_null(strstr(de->d_name, part));
        assert_non_null(strchr(de->d_name, 'M'));
        assert_null(strchr(de->d_name, ':'));
        struct stat st;
        char file[600], size[40];
        snprintf(file, sizeof file, "%s/%s", newdir, de->d_name);
        assert_int_equal(stat(file, &st), 0);
        int sl = snprintf(size, sizeof size, ",S=%lld", (long long)st.st_size);
        size_t nl = strlen(de->d_name);
        assert_true(nl > (size_t)sl);
        assert_string_equal(de->d_name + nl - (size_t)sl, size);
        assert_ptr_equal(strchr(de->d_name, ','), de->d_name + nl - (size_t)sl);
        if (strchr(host, '/') == NULL && strchr(host, ':') == NULL && strchr(host, ',') == NULL) {
            size_t hl = strlen(host);
            nl -= (size_t)sl;
            assert_true(nl > hl + 1);
            assert_memory_equal(de->d_name + nl - hl, host, hl);
            assert_int_equal(de->d_name[nl - hl - 1], '.');
        }
    }
    closedir(d);
}

/* The host part of the name escapes '/', ':' and ',' as \057, \072 and \054, so a hostname
 * can neither make the name a path, nor clash with the ":2," info suffix, nor add a
 * Maildir++ field before ",S=". The hostname is set in a child's own UTS namespace (needs
 * root; skipped otherwise). */
static void test_maildir_name_escapes_hostname(void **state)
{
    struct m_ctx *t = *state;
    m_commit(t, (const unsigned char *)"a\r\n", 3);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static const char host[] = "a/b:c,S=1";
        if (unshare(CLONE_NEWUTS) != 0 || sethostname(host, sizeof host - 1) != 0)
            _exit(77);
        struct deliver_result res;
        struct deliver_request rq = {.queue_path = t->qpath, .env = &t->env,
                                     .recipient = "alice@example.org", .mailbox_dir = t->mbox};
        maildir_deliver(&rq, &res);
        _exit(res.status == DELIVER_OK ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        print_message("cannot set a hostname in a new UTS namespace: skipped\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(status), 0);
    char name[300];
    assert_int_equal(m_count(m_path(t, t->mbox, "new"), name, sizeof name), 1);
    /* 3 octets of message after the 65 of Return-Path and Delivered-To */
    static const char want[] = ".a\\057b\\072c\\054S=1,S=68";
    size_t nl = strlen(name);
    assert_true(nl > sizeof want - 1);
    assert_string_equal(name + nl - (sizeof want - 1), want);
}

static void test_maildir_creates_missing_subdirs(void **state)
{
    struct m_ctx *t = *state;
    m_commit(t, (const unsigned char *)"a\r\n", 3);
    static const char *const subs[] = {"cur", "new", "tmp"};
    /* all three missing, then only new/ present */
    for (int round = 0; round < 2; round++) {
        char mbox[256];
        snprintf(mbox, sizeof mbox, "%s/m%d", t->dir, round);
        assert_int_equal(mkdir(mbox, 0700), 0);
        if (round == 1)
            assert_int_equal(mkdir(m_path(t, mbox, "new"), 0700), 0);
        struct deliver_result res;
        m_deliver_to(t, mbox, "alice@example.org", &res);
        assert_int_equal(res.status, DELIVER_OK);
        for (int i = 0; i < 3; i++) {
            struct stat st;
            assert_int_equal(lstat(m_path(t, mbox, subs[i]), &st), 0);
            assert_true(S_ISDIR(st.st_mode));
            assert_int_equal(st.st_mode & 0777, 0700);
        }
        m_check_delivered(t, mbox, "bob@example.net", "alice@example.org",
                          (const unsigned char *)"a\r\n", 3);
    }
}

enum k1_setup {
    K1_ROOT_SYMLINK, K1_NEW_SYMLINK, K1_TMP_FILE, K1_CUR_FIFO, K1_ROOT_FIFO, K1_ROOT_FILE,
    K1_ROOT_MISSING, K1_ROOT_SYMLINK_DANGLING,
};

static const struct {
    const char *name;
    enum k1_setup setup;
    enum deliver_status status;
    const char *code;
} k1_cases[] = {
    {"root symlink to a directory", K1_ROOT_SYMLINK, DELIVER_PERMFAIL, "5.2.0"},
    {"new/ symlink to a directory", K1_NEW_SYMLINK, DELIVER_PERMFAIL, "5.2.0"},
    {"tmp/ a regular file", K1_TMP_FILE, DELIVER_PERMFAIL, "5.2.0"},
    {"cur/ a FIFO", K1_CUR_FIFO, DELIVER_PERMFAIL, "5.2.0"},
    {"root a FIFO", K1_ROOT_FIFO, DELIVER_PERMFAIL, "5.2.0"},
    {"root a regular file", K1_ROOT_FILE, DELIVER_PERMFAIL, "5.2.0"},
    {"root missing", K1_ROOT_MISSING, DELIVER_TEMPFAIL, "4.2.0"},
    {"root a dangling symlink", K1_ROOT_SYMLINK_DANGLING, DELIVER_PERMFAIL, "5.2.0"},
};

/* HOSTILE-INPUTS K1: never follow, never write; the directory a link points at and the
 * mailbox root keep exactly the entries they had. */
static void test_maildir_k1_refuses_links_fifos_files_table(void **state)
{
    struct m_ctx *t = *state;
    m_commit(t, (const unsigned char *)"a\r\n", 3);
    for (size_t i = 0; i < sizeof k1_cases / sizeof k1_cases[0]; i++) {
        char mbox[256], target[256];
        snprintf(mbox, sizeof mbox, "%s/k%zu", t->dir, i);
        snprintf(target, sizeof target, "%s/target%zu", t->dir, i);
        assert_int_equal(mkdir(target, 0700), 0);
        size_t root_entries = 0;
        switch (k1_cases[i].setup) {
        case K1_ROOT_SYMLINK:
            assert_int_equal(symlink(target, mbox), 0);
            break;
        case K1_ROOT_SYMLINK_DANGLING:
            assert_int_equal(symlink(m_path(t, target, "nowhere"), mbox), 0);
            break;
        case K1_NEW_SYMLINK:
            assert_int_equal(mkdir(mbox, 0700), 0);
            assert_int_equal(mkdir(m_path(t, mbox, "cur"), 0700), 0);
            assert_int_equal(mkdir(m_path(t, mbox, "tmp"), 0700), 0);
            assert_int_equal(symlink(target, m_path(t, mbox, "new")), 0);
            root_entries = 3;
            break;
        case K1_TMP_FILE: {
            assert_int_equal(mkdir(mbox, 0700), 0);
            int fd = open(m_path(t, mbox, "tmp"), O_WRONLY | O_CREAT | O_EXCL, 0600);
            assert_true(fd >= 0);
            close(fd);
            root_entries = 1; /* cur/ and new/ must not be created */
            break;
        }
        case K1_CUR_FIFO:
            assert_int_equal(mkdir(mbox, 0700), 0);
            assert_int_equal(mkfifo(m_path(t, mbox, "cur"), 0600), 0);
            root_entries = 1;
            break;
        case K1_ROOT_FIFO:
            assert_int_equal(mkfifo(mbox, 0600), 0);
            break;
        case K1_ROOT_FILE: {
            int fd = open(mbox, O_WRONLY | O_CREAT | O_EXCL, 0600);
            assert_true(fd >= 0);
            close(fd);
            break;
        }
        case K1_ROOT_MISSING:
            break;
        }
        struct deliver_result res;
        m_deliver_to(t, mbox, "alice@example.org", &res);
        print_message("%s: %s %s\n", k1_cases[i].name, res.enhanced, res.text);
        assert_int_equal(res.status, k1_cases[i].status);
        assert_string_equal(res.enhanced, k1_cases[i].code);
        assert_int_equal(m_count(target, NULL, 0), 0);
        struct stat st;
        if (lstat(mbox, &st) == 0 && S_ISDIR(st.st_mode))
            assert_int_equal(m_count(mbox, NULL, 0), root_entries);
        if (k1_cases[i].setup == K1_NEW_SYMLINK)
            assert_int_equal(m_count(m_path(t, mbox, "tmp"), NULL, 0), 0);
        if (k1_cases[i].setup == K1_ROOT_MISSING)
            assert_int_equal(lstat(mbox, &st), -1);
    }
}

/* Envelope addresses become header lines: a CR or LF would inject headers. */
static void test_maildir_refuses_crlf_in_addresses(void **state)
{
    struct m_ctx *t = *state;
    m_commit(t, (const unsigned char *)"a\r\n", 3);
    static const char *const rcpts[] = {"a@b\r\nX-Evil: 1", "a@b\n", "\ra@b"};
    for (size_t i = 0; i < 3; i++) {
        struct deliver_result res;
        m_deliver_to(t, t->mbox, rcpts[i], &res);
        assert_int_equal(res.status, DELIVER_PERMFAIL);
        assert_string_equal(res.enhanced, "5.1.3");
    }
    t->env.sender = "bob@example.net\r\nX-Evil: 1";
    struct deliver_result res;
    m_deliver_to(t, t->mbox, "alice@example.org", &res);
    assert_int_equal(res.status, DELIVER_PERMFAIL);
    assert_int_equal(m_count(t->mbox, NULL, 0), 0);
}

enum bad_queue { BQ_MISSING, BQ_CORRUPT, BQ_SYMLINK, BQ_TRUNCATED };

/* A queue file that cannot be read or fails its checks defers with X.3.0 (the queue
 * manager's scan quarantines corrupt files, I10) and writes nothing. */
static void test_maildir_bad_queue_file_table(void **state)
{
    struct m_ctx *t = *state;
    unsigned char body[1000];
    m_fill(body, sizeof body, 7);
    m_commit(t, body, sizeof body);
    char good[256];
    snprintf(good, sizeof good, "%s", t->qpath);
    static const enum bad_queue cases[] = {BQ_MISSING, BQ_CORRUPT, BQ_SYMLINK, BQ_TRUNCATED};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(t->qpath, sizeof t->qpath, "%s/bad%zu", t->dir, i);
        int in = open(good, O_RDONLY);
        assert_true(in >= 0);
        struct stat st;
        assert_int_equal(fstat(in, &st), 0);
        unsigned char *copy = malloc((size_t)st.st_size);
        assert_non_null(copy);
        assert_int_equal(read(in, copy, (size_t)st.st_size), st.st_size);
        close(in);
        size_t n = (size_t)st.st_size;
        if (cases[i] == BQ_CORRUPT)
            copy[n / 2] ^= 0x01;
        if (cases[i] == BQ_TRUNCATED)
            n -= 100;
        if (cases[i] == BQ_SYMLINK)
            assert_int_equal(symlink(good, t->qpath), 0);
        else if (cases[i] != BQ_MISSING) {
            int fd = open(t->qpath, O_WRONLY | O_CREAT | O_EXCL, 0600);
            assert_true(fd >= 0);
            assert_int_equal(write(fd, copy, n), (ssize_t)n);
            close(fd);
        }
        free(copy);
        struct deliver_result res;
        m_deliver_to(t, t->mbox, "alice@example.org", &res);
        assert_int_equal(res.status, DELIVER_TEMPFAIL);
        assert_string_equal(res.enhanced, "4.3.0");
        assert_int_equal(m_count(m_path(t, t->mbox, "new"), NULL, 0), 0);
        assert_int_equal(m_count(m_path(t, t->mbox, "tmp"), NULL, 0), 0);
    }
}

/* HOSTILE-INPUTS K7, RFC 3463 X.2.2: a mailbox on a filesystem that fills up in the middle
 * of the message defers as "mailbox full" and leaves no partial file in tmp/ or new/; the
 * space is given back, so the next small message fits. Needs a tmpfs mount (root). */
static void test_maildir_k7_full_filesystem_leaves_nothing(void **state)
{
    struct m_ctx *t = *state;
    char fsdir[256];
    snprintf(fsdir, sizeof fsdir, "%s/fs", t->dir);
    assert_int_equal(mkdir(fsdir, 0700), 0);
    if (mount("tmpfs", fsdir, "tmpfs", 0, "size=128k,mode=0700") != 0) {
        print_message("cannot mount a tmpfs (%s): skipped\n", strerror(errno));
        skip();
    }
    snprintf(t->mounted, sizeof t->mounted, "%s", fsdir);
    char mbox[300];
    snprintf(mbox, sizeof mbox, "%s/mbox", fsdir);
    assert_int_equal(mkdir(mbox, 0700), 0);
    size_t len = 300 * 1024;
    unsigned char *body = malloc(len);
    assert_non_null(body);
    m_fill(body, len, 3);
    m_commit(t, body, len);
    struct deliver_result res;
    m_deliver_to(t, mbox, "alice@example.org", &res);
    assert_int_equal(res.status, DELIVER_TEMPFAIL);
    assert_string_equal(res.enhanced, "4.2.2");
    assert_int_equal(m_count(m_path(t, mbox, "tmp"), NULL, 0), 0);
    assert_int_equal(m_count(m_path(t, mbox, "new"), NULL, 0), 0);
    m_commit(t, body, 1000);
    m_deliver_to(t, mbox, "alice@example.org", &res);
    assert_int_equal(res.status, DELIVER_OK);
    m_check_delivered(t, mbox, "bob@example.net", "alice@example.org", body, 1000);
    free(body);
}

/* The same without privileges: a file size limit makes write fail with EFBIG in the middle
 * of the copy; that defers (4.2.0) and leaves nothing behind. */
/* The scheduler's fast path: it verified the file at load, so the agent trusts its offsets
 * but still refuses a file whose size does not match them (4.3.0, nothing written). */
static void test_maildir_verified_request(void **state)
{
    struct m_ctx *t = *state;
    static const unsigned char body[] = "Subject: v\r\n\r\nverified\r\n";
    struct queue_envelope env;
    uint64_t off, len;
    t->env.sender = "s@example.org";
    m_commit(t, body, sizeof body - 1);
    assert_int_equal(queue_file_read(t->qpath, &env, &off, &len), 0);
    queue_envelope_free(&env);
    struct deliver_result res;
    struct deliver_request rq = {.queue_path = t->qpath, .env = &t->env, .recipient = "a@x.test",
                                 .mailbox_dir = t->mbox, .verified = true, .body_offset = off,
                                 .body_len = len};
    maildir_deliver(&rq, &res);
    assert_int_equal(res.status, DELIVER_OK);
    m_check_delivered(t, t->mbox, "s@example.org", "a@x.test", body, sizeof body - 1);
    char newdir[600];
    snprintf(newdir, sizeof newdir, "%s/new", t->mbox);
    size_t before = m_count(newdir, NULL, 0);
    rq.body_len = len + 1;
    maildir_deliver(&rq, &res);
    assert_int_equal(res.status, DELIVER_TEMPFAIL);
    assert_string_equal(res.enhanced, "4.3.0");
    assert_int_equal(m_count(newdir, NULL, 0), before);
}

/* A batch shares its syncs but keeps each result apart: a refused mailbox (K1) or a bad
 * address fails alone, the others are delivered byte for byte. */
static void test_maildir_batch_results_apart(void **state)
{
    struct m_ctx *t = *state;
    static const unsigned char body[] = "Subject: batch\r\n\r\nshared syncs\r\n";
    char other[256], third[256], link[256], target[256];
    t->env.sender = "s@example.org";
    m_commit(t, body, sizeof body - 1);
    snprintf(other, sizeof other, "%s/other", t->dir);
    assert_int_equal(mkdir(other, 0700), 0);
    snprintf(third, sizeof third, "%s/third", t->dir);
    assert_int_equal(mkdir(third, 0700), 0);
    snprintf(target, sizeof target, "%s/target", t->dir);
    assert_int_equal(mkdir(target, 0700), 0);
    snprintf(link, sizeof link, "%s/link", t->dir);
    assert_int_equal(symlink(target, link), 0);
    struct deliver_request rqs[6];
    struct deliver_result outs[6];
    const char *boxes[6] = {t->mbox, other, link, t->mbox, t->mbox, third};
    const char *rcpts[6] = {"a@x.test", "b@x.test", "c@x.test", "d\r\n@x.test", "e@x.test",
                            "f@x.test"};
    for (size_t i = 0; i < 6; i++)
        rqs[i] = (struct deliver_request){.queue_path = t->qpath, .env = &t->env,
                                          .recipient = rcpts[i], .mailbox_dir = boxes[i]};
    maildir_deliver_batch(rqs, 6, outs);
    static const enum deliver_status want[6] = {DELIVER_OK, DELIVER_OK, DELIVER_PERMFAIL,
                                                DELIVER_PERMFAIL, DELIVER_OK, DELIVER_OK};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(outs[i].status, want[i]);
    assert_string_equal(outs[2].enhanced, "5.2.0");
    assert_string_equal(outs[3].enhanced, "5.1.3");
    char d[300];
    snprintf(d, sizeof d, "%s/new", t->mbox);
    assert_int_equal(m_count(d, NULL, 0), 2);
    snprintf(d, sizeof d, "%s/tmp", t->mbox);
    assert_int_equal(m_count(d, NULL, 0), 0);
    assert_int_equal(m_count(target, NULL, 0), 0);
    m_check_delivered(t, other, "s@example.org", "b@x.test", body, sizeof body - 1);
    m_check_delivered(t, third, "s@example.org", "f@x.test", body, sizeof body - 1);
}

static void test_maildir_k7_write_error_midway_leaves_nothing(void **state)
{
    struct m_ctx *t = *state;
    size_t len = 300 * 1024;
    unsigned char *body = malloc(len);
    assert_non_null(body);
    m_fill(body, len, 5);
    m_commit(t, body, len);
    free(body);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 100 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    struct deliver_result res;
    m_deliver_to(t, t->mbox, "alice@example.org", &res);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(res.status, DELIVER_TEMPFAIL);
    assert_string_equal(res.enhanced, "4.2.0");
    assert_int_equal(m_count(m_path(t, t->mbox, "tmp"), NULL, 0), 0);
    assert_int_equal(m_count(m_path(t, t->mbox, "new"), NULL, 0), 0);
}

/* ---- quota (Maildir++ maildirsize) ---- */

/* The message every quota test delivers: "a\r\n" after the 65 octets of Return-Path and
 * Delivered-To, so its file has 68 octets. */
#define Q_MSG 68

static void q_write(const char *path, const char *content, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
}

/* The file's contents (NUL-terminated, malloc'd), NULL when it cannot be read. */
static char *q_read(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    char *buf = malloc(16384);
    assert_non_null(buf);
    ssize_t n = read(fd, buf, 16383);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    return buf;
}

/* A Maildir holding 500 octets in 2 messages as a recalculation counts them: cur/ has one
 * whose name says ",S=300" (its real size, 10, must not be what counts), new/ one without a
 * size in its name (stat: 200); a dot file in cur/ is not a message. */
static void q_mkbox(struct m_ctx *t, char *mbox, size_t cap, size_t i)
{
    snprintf(mbox, cap, "%s/q%zu", t->dir, i);
    assert_int_equal(mkdir(mbox, 0700), 0);
    static const char *const subs[] = {"cur", "new", "tmp"};
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(mkdir(m_path(t, mbox, subs[k]), 0700), 0);
    char body[200];
    memset(body, 'x', sizeof body);
    q_write(m_path(t, mbox, "cur/1.x,S=300:2,S"), body, 10);
    q_write(m_path(t, mbox, "new/2.y"), body, 200);
    q_write(m_path(t, mbox, "cur/.hidden"), body, 100);
}

static void q_deliver(struct m_ctx *t, const char *mbox, uint64_t quota,
                      struct deliver_result *res)
{
    memset(res, 0x5a, sizeof *res);
    struct deliver_request rq = {.queue_path = t->qpath, .env = &t->env,
                                 .recipient = "alice@example.org", .mailbox_dir = mbox,
                                 .quota = quota};
    maildir_deliver(&rq, res);
}

enum q_setup { Q_FILE, Q_MISSING, Q_SYMLINK, Q_FIFO, Q_DIR, Q_BIG, Q_EXACT };
enum q_after {
    Q_APPENDED,        /* the content as it was, and the delivery's line */
    Q_RECALC_APPENDED, /* "<quota>S\n500 2\n" and the delivery's line */
    Q_RECALC_ONLY,     /* "<quota>S\n500 2\n": recalculated, the message did not fit */
    Q_UNCHANGED,
    Q_STILL_DIR,       /* a directory in its place stays one; the scan decided */
};

static const struct {
    const char *name;
    enum q_setup setup;
    const char *content;
    uint64_t quota;
    bool stale; /* mtime 16 minutes ago */
    enum deliver_status status;
    enum q_after after;
} q_cases[] = {
    {"trusted, fits", Q_FILE, "1000S\n100 1\n", 1000, false, DELIVER_OK, Q_APPENDED},
    {"trusted with a count limit", Q_FILE, "1000S,50C\n100 1\n", 1000, false, DELIVER_OK,
     Q_APPENDED},
    {"count limit first", Q_FILE, "50C,1000S\n100 1\n", 1000, false, DELIVER_OK, Q_APPENDED},
    {"negative lines (mail removed)", Q_FILE, "1000S\n900 2\n-800 -1\n", 1000, false,
     DELIVER_OK, Q_APPENDED},
    {"padding and blank lines", Q_FILE, "1000S\n   100      1\n\n\t-20\t-1 \n", 1000, false,
     DELIVER_OK, Q_APPENDED},
    {"fits exactly", Q_FILE, "1000S\n932 1\n", 1000, false, DELIVER_OK, Q_APPENDED},
    {"one octet over, fresh", Q_FILE, "1000S\n933 1\n", 1000, false, DELIVER_TEMPFAIL,
     Q_UNCHANGED},
    {"over, fresh: not recalculated", Q_FILE, "1000S\n990 1\n", 1000, false, DELIVER_TEMPFAIL,
     Q_UNCHANGED},
    {"over, stale: recalculated, fits", Q_FILE, "1000S\n990 1\n", 1000, true, DELIVER_OK,
     Q_RECALC_APPENDED},
    {"over, stale, still over", Q_FILE, "550S\n540 1\n", 550, true, DELIVER_TEMPFAIL,
     Q_RECALC_ONLY},
    {"under, stale: trusted", Q_FILE, "1000S\n100 1\n", 1000, true, DELIVER_OK, Q_APPENDED},
    {"missing", Q_MISSING, NULL, 1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    {"missing, recalculated over", Q_MISSING, NULL, 550, false, DELIVER_TEMPFAIL,
     Q_RECALC_ONLY},
    {"empty", Q_FILE, "", 1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    {"garbage", Q_FILE, "hello\n", 1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    {"another limit", Q_FILE, "2000S\n100 1\n", 1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    {"no size limit", Q_FILE, "50C\n100 1\n", 1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    {"two size limits", Q_FILE, "1000S,1000S\n100 1\n", 1000, false, DELIVER_OK,
     Q_RECALC_APPENDED},
    {"negative limit", Q_FILE, "-1000S\n100 1\n", 1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    {"no newline after the limit", Q_FILE, "1000S", 1000, false, DELIVER_OK,
     Q_RECALC_APPENDED},
    {"partial last line", Q_FILE, "1000S\n100 1\n50", 1000, false, DELIVER_OK,
     Q_RECALC_APPENDED},
    {"one number", Q_FILE, "1000S\n100\n", 1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    {"letters in a count", Q_FILE, "1000S\n100 x\n", 1000, false, DELIVER_OK,
     Q_RECALC_APPENDED},
    {"three numbers", Q_FILE, "1000S\n100 1 1\n", 1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    {"a lone minus", Q_FILE, "1000S\n- 1\n", 1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    {"19 digits", Q_FILE, "1000S\n1000000000000000000 1\n", 1000, false, DELIVER_OK,
     Q_RECALC_APPENDED},
    {"negative sum", Q_FILE, "1000S\n100 1\n-300 -1\n", 1000, false, DELIVER_OK,
     Q_RECALC_APPENDED},
    {"sum past the range", Q_FILE,
     "1000S\n999999999999999999 1\n999999999999999999 1\n999999999999999999 1\n"
     "999999999999999999 1\n999999999999999999 1\n",
     1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    {"NUL byte", Q_FILE, "1000S\n100\0 1\n", 1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    {"5120 octets: trusted", Q_EXACT, NULL, 1000, false, DELIVER_OK, Q_APPENDED},
    {"5161 octets: recalculated", Q_BIG, NULL, 1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    /* HOSTILE-INPUTS K1: never followed; replaced by the rename, the target untouched. */
    {"a symlink", Q_SYMLINK, NULL, 1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    {"a FIFO", Q_FIFO, NULL, 1000, false, DELIVER_OK, Q_RECALC_APPENDED},
    {"a directory", Q_DIR, NULL, 1000, false, DELIVER_OK, Q_STILL_DIR},
    {"a directory, over", Q_DIR, NULL, 550, false, DELIVER_TEMPFAIL, Q_STILL_DIR},
    /* RFC 3463 X.2.3: bigger than the whole quota, it could never fit: bounced at once. */
    {"larger than the quota", Q_FILE, "67S\n0 0\n", 67, false, DELIVER_PERMFAIL, Q_UNCHANGED},
    {"exactly the quota", Q_FILE, "68S\n0 0\n", 68, false, DELIVER_OK, Q_APPENDED},
};

/* RFC 3463 X.2.2: a message that would take the Maildir++ usage past the quota defers
 * ("mailbox full"; the queue retries) with nothing in tmp/ or new/; one that fits is
 * delivered and appends "<octets> 1". A maildirsize that is missing, damaged, too long, for
 * another limit, or stale while over, is recalculated from the Maildir and rewritten. */
static void test_maildir_quota_maildirsize_table(void **state)
{
    struct m_ctx *t = *state;
    m_commit(t, (const unsigned char *)"a\r\n", 3);
    for (size_t i = 0; i < sizeof q_cases / sizeof q_cases[0]; i++) {
        char mbox[256], size_path[300], target[300];
        q_mkbox(t, mbox, sizeof mbox, i);
        snprintf(size_path, sizeof size_path, "%s/maildirsize", mbox);
        snprintf(target, sizeof target, "%s/target%zu", t->dir, i);
        char *initial = NULL;
        size_t ilen = 0;
        switch (q_cases[i].setup) {
        case Q_FILE:
            /* sizeof - 1 keeps a NUL inside the literal */
            ilen = strlen(q_cases[i].content);
            if (strcmp(q_cases[i].name, "NUL byte") == 0)
                ilen = sizeof "1000S\n100\0 1\n" - 1;
            initial = malloc(ilen + 1);
            assert_non_null(initial);
            memcpy(initial, q_cases[i].content, ilen);
            initial[ilen] = '\0';
            q_write(size_path, initial, ilen);
            break;
        case Q_BIG:
        case Q_EXACT: {
            /* The long one's first 5121 octets end a line, so only its length condemns it. */
            const char *head = q_cases[i].setup == Q_EXACT ? "1000S\n100 1\n" : "1000S\n100  1\n";
            size_t hl = strlen(head), lines = q_cases[i].setup == Q_EXACT ? 1277 : 1287;
            initial = malloc(hl + 4 * lines + 1);
            assert_non_null(initial);
            memcpy(initial, head, hl);
            for (size_t k = 0; k < lines; k++)
                memcpy(initial + hl + 4 * k, "0 0\n", 4);
            ilen = hl + 4 * lines;
            initial[ilen] = '\0';
            assert_int_equal(ilen, q_cases[i].setup == Q_EXACT ? 5120 : 5161);
            q_write(size_path, initial, ilen);
            break;
        }
        case Q_SYMLINK:
            q_write(target, "1000S\n0 0\n", 10);
            assert_int_equal(symlink(target, size_path), 0);
            break;
        case Q_FIFO:
            assert_int_equal(mkfifo(size_path, 0600), 0);
            break;
        case Q_DIR:
            assert_int_equal(mkdir(size_path, 0700), 0);
            break;
        case Q_MISSING:
            break;
        }
        if (q_cases[i].stale) {
            struct timespec ts[2] = {{.tv_sec = time(NULL) - 16 * 60}, {0}};
            ts[1] = ts[0];
            assert_int_equal(utimensat(AT_FDCWD, size_path, ts, 0), 0);
        }
        struct deliver_result res;
        q_deliver(t, mbox, q_cases[i].quota, &res);
        print_message("%s: %s %s\n", q_cases[i].name, res.enhanced, res.text);
        assert_int_equal(res.status, q_cases[i].status);
        if (res.status == DELIVER_TEMPFAIL) {
            assert_string_equal(res.enhanced, "4.2.2");
            assert_string_equal(res.text, "mailbox full");
        } else if (res.status == DELIVER_PERMFAIL) {
            assert_string_equal(res.enhanced, "5.2.3");
            assert_string_equal(res.text, "message larger than the mailbox quota");
        }
        assert_int_equal(m_count(m_path(t, mbox, "new"), NULL, 0),
                         res.status == DELIVER_OK ? 2 : 1);
        assert_int_equal(m_count(m_path(t, mbox, "tmp"), NULL, 0), 0);

        char want[16384];
        switch (q_cases[i].after) {
        case Q_APPENDED:
            snprintf(want, sizeof want, "%s%d 1\n", initial, Q_MSG);
            break;
        case Q_RECALC_APPENDED:
            snprintf(want, sizeof want, "%lluS\n500 2\n%d 1\n",
                     (unsigned long long)q_cases[i].quota, Q_MSG);
            break;
        case Q_RECALC_ONLY:
            snprintf(want, sizeof want, "%lluS\n500 2\n", (unsigned long long)q_cases[i].quota);
            break;
        case Q_UNCHANGED:
            snprintf(want, sizeof want, "%s", initial);
            break;
        case Q_STILL_DIR:
            want[0] = '\0';
            break;
        }
        struct stat st;
        assert_int_equal(lstat(size_path, &st), 0);
        if (q_cases[i].after == Q_STILL_DIR) {
            assert_true(S_ISDIR(st.st_mode));
            assert_int_equal(m_count(size_path, NULL, 0), 0);
        } else {
            assert_true(S_ISREG(st.st_mode));
            char *got = q_read(size_path);
            assert_non_null(got);
            if (q_cases[i].after == Q_UNCHANGED)
                assert_memory_equal(got, initial, ilen + 1);
            else
                assert_string_equal(got, want);
            free(got);
        }
        if (q_cases[i].setup == Q_SYMLINK) {
            char *got = q_read(target);
            assert_non_null(got);
            assert_string_equal(got, "1000S\n0 0\n");
            free(got);
        }
        free(initial);
    }
}

/* What a recalculation counts: the size in a name (",S=" before ":2," or another field),
 * else the file's own; cur/ and new/ of the inbox and of every Maildir++ folder (".name")
 * but .Trash; not dot files, tmp/, links or directories among the messages, nor a folder
 * that is a symlink. */
static void test_maildir_quota_recalc_counts_folders_not_trash(void **state)
{
    struct m_ctx *t = *state;
    m_commit(t, (const unsigned char *)"a\r\n", 3);
    char mbox[256], other[300];
    q_mkbox(t, mbox, sizeof mbox, 0);
    static const char *const dirs[] = {".Sent", ".Sent/cur", ".Sent/new", ".Lists.a",
                                       ".Lists.a/cur", ".Trash", ".Trash/cur", "new/sub"};
    for (size_t k = 0; k < sizeof dirs / sizeof dirs[0]; k++)
        assert_int_equal(mkdir(m_path(t, mbox, dirs[k]), 0700), 0);
    char x[64];
    memset(x, 'x', sizeof x);
    q_write(m_path(t, mbox, ".Sent/cur/3.z,S=1000,W=1020:2,S"), x, 1);  /* 1000 */
    q_write(m_path(t, mbox, ".Sent/new/4.z"), x, 64);                    /* 64 */
    q_write(m_path(t, mbox, ".Lists.a/cur/5.z,S=7"), x, 1);              /* 7 */
    q_write(m_path(t, mbox, ".Trash/cur/6.z,S=100000"), x, 1);           /* not counted */
    q_write(m_path(t, mbox, "tmp/7.z,S=100000"), x, 1);                  /* not counted */
    q_write(m_path(t, mbox, "cur/8.z,S=12x"), x, 3);                     /* bad: stat, 3 */
    snprintf(other, sizeof other, "%s/elsewhere", t->dir);
    assert_int_equal(mkdir(other, 0700), 0);
    assert_int_equal(mkdir(m_path(t, other, "cur"), 0700), 0);
    q_write(m_path(t, other, "cur/9.z,S=100000"), x, 1);
    assert_int_equal(symlink(other, m_path(t, mbox, ".Linked")), 0);     /* not followed */
    assert_int_equal(symlink("/etc/passwd", m_path(t, mbox, "cur/10.z")), 0); /* not a file */
    struct deliver_result res;
    q_deliver(t, mbox, 1u << 20, &res);
    assert_int_equal(res.status, DELIVER_OK);
    char *got = q_read(m_path(t, mbox, "maildirsize"));
    assert_non_null(got);
    char want[64];
    snprintf(want, sizeof want, "%uS\n%d 6\n%d 1\n", 1u << 20, 500 + 1000 + 64 + 7 + 3, Q_MSG);
    assert_string_equal(got, want);
    free(got);
}

/* quota 0 is no quota: maildirsize is neither made nor read (a full one refuses nothing),
 * but one that exists is kept accurate (Maildir++: every writer appends its delivery), so a
 * quota set again later does not start from a count that missed these messages. */
static void test_maildir_quota_zero_touches_no_file(void **state)
{
    struct m_ctx *t = *state;
    m_commit(t, (const unsigned char *)"a\r\n", 3);
    char mbox[256];
    q_mkbox(t, mbox, sizeof mbox, 0);
    struct deliver_result res;
    q_deliver(t, mbox, 0, &res);
    assert_int_equal(res.status, DELIVER_OK);
    struct stat st;
    assert_int_equal(lstat(m_path(t, mbox, "maildirsize"), &st), -1);
    /* A full one, stale, is not read (it would refuse the message), not recalculated, only
     * appended to. */
    q_write(m_path(t, mbox, "maildirsize"), "10S\n999 1\n", 10);
    struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    assert_int_equal(utimensat(AT_FDCWD, t->path, ts, 0), 0);
    q_deliver(t, mbox, 0, &res);
    assert_int_equal(res.status, DELIVER_OK);
    assert_int_equal(lstat(m_path(t, mbox, "maildirsize"), &st), 0);
    char *got = q_read(t->path);
    assert_non_null(got);
    char want[64];
    snprintf(want, sizeof want, "10S\n999 1\n%d 1\n", Q_MSG);
    assert_string_equal(got, want);
    free(got);
    assert_int_equal(m_count(m_path(t, mbox, "new"), NULL, 0), 3);
}

/* A batch counts its earlier messages to the same Maildir, not yet in maildirsize: of three
 * that each fit alone, the third does not fit after the first two. Another mailbox in the
 * batch is not charged for them, and a missing file recalculated by the first request is
 * what the second reads. */
static void test_maildir_quota_batch_counts_earlier_messages(void **state)
{
    struct m_ctx *t = *state;
    m_commit(t, (const unsigned char *)"a\r\n", 3);
    char a[256], b[256], c[256];
    q_mkbox(t, a, sizeof a, 0);
    q_mkbox(t, b, sizeof b, 1);
    q_mkbox(t, c, sizeof c, 2);
    q_write(m_path(t, a, "maildirsize"), "1000S\n800 1\n", 12);
    q_write(m_path(t, b, "maildirsize"), "1000S\n800 1\n", 12);
    /* c has none: 500 used, quota 600 takes one message of 68 and not two */
    struct deliver_request rqs[7];
    struct deliver_result outs[7];
    const char *boxes[7] = {a, b, a, c, a, c, b};
    const uint64_t quotas[7] = {1000, 1000, 1000, 600, 1000, 600, 1000};
    for (size_t i = 0; i < 7; i++)
        rqs[i] = (struct deliver_request){.queue_path = t->qpath, .env = &t->env,
                                          .recipient = "alice@example.org",
                                          .mailbox_dir = boxes[i], .quota = quotas[i]};
    maildir_deliver_batch(rqs, 7, outs);
    static const enum deliver_status want[7] = {DELIVER_OK, DELIVER_OK, DELIVER_OK, DELIVER_OK,
                                                DELIVER_TEMPFAIL, DELIVER_TEMPFAIL,
                                                DELIVER_OK};
    for (size_t i = 0; i < 7; i++) {
        print_message("%zu: %s %s\n", i, outs[i].enhanced, outs[i].text);
        assert_int_equal(outs[i].status, want[i]);
    }
    assert_string_equal(outs[4].enhanced, "4.2.2");
    assert_string_equal(outs[5].enhanced, "4.2.2");
    assert_int_equal(m_count(m_path(t, a, "new"), NULL, 0), 3);
    assert_int_equal(m_count(m_path(t, b, "new"), NULL, 0), 3);
    assert_int_equal(m_count(m_path(t, c, "new"), NULL, 0), 2);
    static const struct {
        size_t box;
        const char *want;
    } files[] = {
        {0, "1000S\n800 1\n68 1\n68 1\n"},
        {1, "1000S\n800 1\n68 1\n68 1\n"},
        {2, "600S\n500 2\n68 1\n"},
    };
    const char *mboxes[3] = {a, b, c};
    for (size_t i = 0; i < 3; i++) {
        char *got = q_read(m_path(t, mboxes[files[i].box], "maildirsize"));
        assert_non_null(got);
        assert_string_equal(got, files[i].want);
        free(got);
        assert_int_equal(m_count(m_path(t, mboxes[i], "tmp"), NULL, 0), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_maildir_delivers_exact_bytes_table, m_setup,
                                        m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_unique_names_100, m_setup, m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_name_escapes_hostname, m_setup, m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_creates_missing_subdirs, m_setup, m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_k1_refuses_links_fifos_files_table, m_setup,
                                        m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_refuses_crlf_in_addresses, m_setup,
                                        m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_bad_queue_file_table, m_setup, m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_k7_full_filesystem_leaves_nothing, m_setup,
                                        m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_verified_request, m_setup, m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_batch_results_apart, m_setup, m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_k7_write_error_midway_leaves_nothing, m_setup,
                                        m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_quota_maildirsize_table, m_setup,
                                        m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_quota_recalc_counts_folders_not_trash,
                                        m_setup, m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_quota_zero_touches_no_file, m_setup,
                                        m_teardown),
        cmocka_unit_test_setup_teardown(test_maildir_quota_batch_counts_earlier_messages,
                                        m_setup, m_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
