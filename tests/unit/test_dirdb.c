/* test_dirdb: the SQLite directory store (dir/dirdb.c) on a fresh file per test: add, delete
 * and list for every kind with EEXIST/ENOENT/EINVAL/ENOTEMPTY, malformed addresses and
 * domains, the lookup order (relocated, mailbox, alias, subaddress, catch-all) and FOREIGN
 * for a domain not ours, SCRAM credentials, quotas, client certificate fingerprints, sender
 * ownership through aliases (RFC 6409 §6.1, B15) with loops and depth, refusal of an unknown
 * schema version, and SQL-looking addresses kept as plain data (B3). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "dir/dirdb.h"

struct fixture {
    char dir[64];
    char path[128];
    struct dirdb *db;
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_dirdb.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/dir.db", f->dir);
    char err[256] = "";
    f->db = dirdb_open(f->path, err, sizeof err);
    if (f->db == NULL)
        fail_msg("open: %s", err);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    dirdb_close(f->db);
    static const char *const suffixes[] = {"", "-wal", "-shm", ".v99", ".junk"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Listings are collected as "a|b|c;" rows so a test compares one string. */
struct collect {
    char buf[1024];
    size_t rows;
    size_t stop_after;
};

static void collect_add(struct collect *c, const char *a, const char *b, const char *x)
{
    size_t len = strlen(c->buf);
    snprintf(c->buf + len, sizeof c->buf - len, "%s|%s%s%s;", a, b != NULL ? b : "(null)",
             x != NULL ? "|" : "", x != NULL ? x : "");
    c->rows++;
}

static bool collect_domain_cb(const char *domain, const char *catchall, void *arg)
{
    struct collect *c = arg;
    collect_add(c, domain, catchall, NULL);
    return c->stop_after == 0 || c->rows < c->stop_after;
}

static bool collect_user_row_cb(const struct dirdb_user_row *row, void *arg)
{
    struct collect *c = arg;
    char x[48];
    snprintf(x, sizeof x, "%s|%llu", row->enabled ? "on" : "off",
             (unsigned long long)row->quota);
    collect_add(c, row->address, row->name, x);
    return c->stop_after == 0 || c->rows < c->stop_after;
}

static bool collect_alias_cb(const char *alias, const char *target, void *arg)
{
    struct collect *c = arg;
    collect_add(c, alias, target, NULL);
    return c->stop_after == 0 || c->rows < c->stop_after;
}

static bool collect_relocated_cb(const char *address, const char *new_address, bool forward,
                                 void *arg)
{
    struct collect *c = arg;
    collect_add(c, address, new_address, forward ? "forward" : "refuse");
    return c->stop_after == 0 || c->rows < c->stop_after;
}

static bool collect_cert_cb(const char *fingerprint, const char *address, void *arg)
{
    struct collect *c = arg;
    collect_add(c, fingerprint, address, NULL);
    return c->stop_after == 0 || c->rows < c->stop_after;
}

#define OK(call) assert_int_equal((call), 0)
#define FAILS(call, e)                                                                             \
    do {                                                                                           \
        errno = 0;                                                                                 \
        assert_int_equal((call), -1);                                                              \
        assert_int_equal(errno, (e));                                                              \
    } while (0)

static void test_domain_add_del_list(void **state)
{
    struct fixture *f = *state;
    char err[256];
    OK(dirdb_domain_add(f->db, "Example.COM", err, sizeof err));
    OK(dirdb_domain_add(f->db, "a-b.example.org", err, sizeof err));
    FAILS(dirdb_domain_add(f->db, "example.com", err, sizeof err), EEXIST);
    FAILS(dirdb_domain_add(f->db, "EXAMPLE.com", err, sizeof err), EEXIST);
    struct collect c = {0};
    OK(dirdb_domain_list(f->db, collect_domain_cb, &c));
    assert_string_equal(c.buf, "a-b.example.org|(null);example.com|(null);");
    struct collect one = {.stop_after = 1};
    OK(dirdb_domain_list(f->db, collect_domain_cb, &one));
    assert_string_equal(one.buf, "a-b.example.org|(null);");
    FAILS(dirdb_domain_del(f->db, "nowhere.example", err, sizeof err), ENOENT);
    OK(dirdb_domain_del(f->db, "EXAMPLE.com", err, sizeof err));
    FAILS(dirdb_domain_del(f->db, "example.com", err, sizeof err), ENOENT);
}

static void test_domain_malformed_refused(void **state)
{
    struct fixture *f = *state;
    char err[256];
    static char long_domain[300];
    memset(long_domain, 'a', 256);
    static const char *const bad[] = {
        "",
        ".",
        "a..b",
        ".example.com",
        "example.com.",
        "exa mple.com",
        "a_b.c",
        "ex\x01.com",
        "\xc3\xa9t\xc3\xa9.fr",
        "[192.0.2.1]",
        "a@b.c",
        long_domain,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FAILS(dirdb_domain_add(f->db, bad[i], err, sizeof err), EINVAL);
        FAILS(dirdb_domain_del(f->db, bad[i], err, sizeof err), EINVAL);
        FAILS(dirdb_domain_catchall(f->db, bad[i], NULL, err, sizeof err), EINVAL);
    }
    FAILS(dirdb_domain_add(f->db, NULL, err, sizeof err), EINVAL);
    struct collect c = {0};
    FAILS(dirdb_user_rows(f->db, "a..b", collect_user_row_cb, &c), EINVAL);
    FAILS(dirdb_alias_list(f->db, "a b", collect_alias_cb, &c), EINVAL);
    assert_int_equal(c.rows, 0);
}

static void test_address_malformed_refused(void **state)
{
    struct fixture *f = *state;
    char err[256];
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    static char too_long[DIRDB_ADDR_MAX + 8];
    static char longest[DIRDB_ADDR_MAX + 8];
    /* 308 + 1 + 11 = 320: exactly DIRDB_ADDR_MAX is accepted, one more is not. */
    memset(longest, 'l', 308);
    memcpy(longest + 308, "@example.com", 13);
    memset(too_long, 'l', 309);
    memcpy(too_long + 309, "@example.com", 13);
    static const char *const bad[] = {
        "noat",
        "@example.com",
        "user@",
        "a@b@example.com",
        "a b@example.com",
        "a\tb@example.com",
        "a\r\n@example.com",
        "a\x7f@example.com",
        "user@exa_mple.com",
        "user@example..com",
        "user@[192.0.2.1]",
        too_long,
        NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FAILS(dirdb_user_add(f->db, bad[i], "n", "h", NULL, 0, err, sizeof err), EINVAL);
        FAILS(dirdb_user_del(f->db, bad[i], err, sizeof err), EINVAL);
        FAILS(dirdb_user_passwd(f->db, bad[i], "h", NULL, err, sizeof err), EINVAL);
        FAILS(dirdb_user_enable(f->db, bad[i], true, err, sizeof err), EINVAL);
        FAILS(dirdb_alias_add(f->db, bad[i], "t@example.org", err, sizeof err), EINVAL);
        FAILS(dirdb_alias_add(f->db, "al@example.com", bad[i], err, sizeof err), EINVAL);
        FAILS(dirdb_alias_del(f->db, bad[i], NULL, err, sizeof err), EINVAL);
        FAILS(dirdb_relocated_set(f->db, bad[i], "n@example.org", true, err, sizeof err), EINVAL);
        FAILS(dirdb_relocated_set(f->db, "r@example.com", bad[i], true, err, sizeof err), EINVAL);
        FAILS(dirdb_relocated_del(f->db, bad[i], err, sizeof err), EINVAL);
        FAILS(dirdb_domain_catchall(f->db, "example.com", bad[i] != NULL ? bad[i] : "x", err,
                                    sizeof err),
              EINVAL);
        if (bad[i] != NULL) {
            struct dirdb_entry e;
            FAILS(dirdb_lookup(f->db, bad[i], '+', &e), EINVAL);
            assert_int_equal(e.kind, DIRDB_NONE);
            char t[2][DIRDB_ADDR_MAX + 1];
            size_t n = 9;
            FAILS(dirdb_alias_targets(f->db, bad[i], t, 2, &n), EINVAL);
            assert_int_equal(n, 0);
        }
    }
    OK(dirdb_user_add(f->db, longest, "n", "h", NULL, 0, err, sizeof err));
    /* 8-bit local parts are data to the store (RFC 6531 addresses). */
    OK(dirdb_user_add(f->db, "j\xc3\xb6rg@example.com", "J", "h", NULL, 0, err, sizeof err));
}

static void test_user_add_del_passwd_enable_list(void **state)
{
    struct fixture *f = *state;
    char err[256];
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    OK(dirdb_domain_add(f->db, "example.org", err, sizeof err));
    OK(dirdb_user_add(f->db, "Bob@EXAMPLE.com", "Bob B", "$y$h1", NULL, 0, err, sizeof err));
    OK(dirdb_user_add(f->db, "alice@example.com", NULL, "$y$h2", NULL, 0, err, sizeof err));
    OK(dirdb_user_add(f->db, "carol@example.org", "Carol", "$y$h3", NULL, 0, err, sizeof err));
    /* RFC 5321 §2.4: the local part is matched case-insensitively here (ASCII only). */
    FAILS(dirdb_user_add(f->db, "bob@example.com", "x", "y", NULL, 0, err, sizeof err), EEXIST);
    FAILS(dirdb_user_add(f->db, "x@unknown.example", "x", "y", NULL, 0, err, sizeof err), EINVAL);
    static char long_name[DIRDB_NAME_MAX + 2];
    memset(long_name, 'n', DIRDB_NAME_MAX + 1);
    FAILS(dirdb_user_add(f->db, "long@example.com", long_name, "h", NULL, 0, err, sizeof err),
          EINVAL);
    static char long_hash[300];
    memset(long_hash, 'h', 256);
    FAILS(dirdb_user_add(f->db, "long@example.com", "n", long_hash, NULL, 0, err, sizeof err),
          EINVAL);
    FAILS(dirdb_user_passwd(f->db, "bob@example.com", long_hash, NULL, err, sizeof err), EINVAL);
    FAILS(dirdb_user_passwd(f->db, "bob@example.com", NULL, NULL, err, sizeof err), EINVAL);

    struct collect c = {0};
    OK(dirdb_user_rows(f->db, "EXAMPLE.COM", collect_user_row_cb, &c));
    assert_string_equal(c.buf, "alice@example.com||on|0;Bob@example.com|Bob B|on|0;");
    struct collect all = {0};
    OK(dirdb_user_rows(f->db, NULL, collect_user_row_cb, &all));
    assert_int_equal(all.rows, 3);

    OK(dirdb_user_enable(f->db, "BOB@example.com", false, err, sizeof err));
    OK(dirdb_user_passwd(f->db, "bob@example.com", "$y$new", NULL, err, sizeof err));
    struct dirdb_entry e;
    OK(dirdb_lookup(f->db, "bob@example.com", '\0', &e));
    assert_int_equal(e.kind, DIRDB_DISABLED);
    assert_string_equal(e.address, "Bob@example.com");
    assert_string_equal(e.password_hash, "$y$new");
    OK(dirdb_user_enable(f->db, "bob@example.com", true, err, sizeof err));
    OK(dirdb_lookup(f->db, "bob@example.com", '\0', &e));
    assert_int_equal(e.kind, DIRDB_MAILBOX);
    assert_string_equal(e.name, "Bob B");

    FAILS(dirdb_user_passwd(f->db, "nobody@example.com", "h", NULL, err, sizeof err), ENOENT);
    FAILS(dirdb_user_enable(f->db, "nobody@example.com", true, err, sizeof err), ENOENT);
    FAILS(dirdb_user_del(f->db, "nobody@example.com", err, sizeof err), ENOENT);
    OK(dirdb_user_del(f->db, "bob@Example.Com", err, sizeof err));
    FAILS(dirdb_user_del(f->db, "Bob@example.com", err, sizeof err), ENOENT);
    OK(dirdb_lookup(f->db, "bob@example.com", '\0', &e));
    assert_int_equal(e.kind, DIRDB_NONE);
}

static void test_alias_add_del_list_targets(void **state)
{
    struct fixture *f = *state;
    char err[256];
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    OK(dirdb_user_add(f->db, "user@example.com", "U", "h", NULL, 0, err, sizeof err));
    OK(dirdb_alias_add(f->db, "team@example.com", "user@example.com", err, sizeof err));
    OK(dirdb_alias_add(f->db, "Team@Example.com", "b@REMOTE.example", err, sizeof err));
    OK(dirdb_alias_add(f->db, "team@example.com", "a@remote.example", err, sizeof err));
    FAILS(dirdb_alias_add(f->db, "TEAM@example.com", "USER@example.com", err, sizeof err), EEXIST);
    FAILS(dirdb_alias_add(f->db, "self@example.com", "SELF@EXAMPLE.com", err, sizeof err), EINVAL);
    FAILS(dirdb_alias_add(f->db, "a@unknown.example", "user@example.com", err, sizeof err), EINVAL);
    /* One address is either a mailbox or an alias, never both. */
    FAILS(dirdb_alias_add(f->db, "USER@example.com", "x@remote.example", err, sizeof err), EEXIST);
    FAILS(dirdb_user_add(f->db, "team@example.com", "T", "h", NULL, 0, err, sizeof err), EEXIST);

    struct collect c = {0};
    OK(dirdb_alias_list(f->db, "example.com", collect_alias_cb, &c));
    assert_string_equal(c.buf, "team@example.com|a@remote.example;"
                               "team@example.com|b@remote.example;"
                               "team@example.com|user@example.com;");
    char t[3][DIRDB_ADDR_MAX + 1];
    size_t n = 0;
    OK(dirdb_alias_targets(f->db, "TEAM@example.com", t, 3, &n));
    assert_int_equal(n, 3);
    assert_string_equal(t[0], "a@remote.example");
    assert_string_equal(t[1], "b@remote.example");
    /* A list longer than the caller's array is an error, never a silent truncation. */
    FAILS(dirdb_alias_targets(f->db, "team@example.com", t, 2, &n), ERANGE);
    OK(dirdb_alias_targets(f->db, "none@example.com", t, 3, &n));
    assert_int_equal(n, 0);

    OK(dirdb_alias_del(f->db, "team@example.com", "B@remote.example", err, sizeof err));
    FAILS(dirdb_alias_del(f->db, "team@example.com", "b@remote.example", err, sizeof err), ENOENT);
    FAILS(dirdb_alias_del(f->db, "team@example.com", "bad target", err, sizeof err), EINVAL);
    OK(dirdb_alias_del(f->db, "team@example.com", NULL, err, sizeof err));
    FAILS(dirdb_alias_del(f->db, "team@example.com", NULL, err, sizeof err), ENOENT);
    struct collect empty = {0};
    OK(dirdb_alias_list(f->db, NULL, collect_alias_cb, &empty));
    assert_int_equal(empty.rows, 0);
}

/* An alias holds at most DIRDB_ALIAS_TARGETS_MAX targets: the queue manager expands no
 * more (dir.h), so the store refuses the next one (ERANGE) instead of keeping an alias
 * that could never be delivered. */
static void test_alias_target_cap(void **state)
{
    struct fixture *f = *state;
    char err[256];
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    sqlite3 *h;
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < %d) "
             "INSERT INTO aliases (alias, domain, target) "
             "SELECT 'big@example.com', 'example.com', 't' || i || '@remote.example' FROM k",
             DIRDB_ALIAS_TARGETS_MAX - 1);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    OK(dirdb_alias_add(f->db, "big@example.com", "last@remote.example", err, sizeof err));
    FAILS(dirdb_alias_add(f->db, "big@example.com", "more@remote.example", err, sizeof err),
          ERANGE);
    FAILS(dirdb_alias_add(f->db, "big@example.com", "t7@remote.example", err, sizeof err),
          EEXIST); /* one it has: the usual answer, full or not */
    OK(dirdb_alias_add(f->db, "small@example.com", "more@remote.example", err, sizeof err));
}

static void test_relocated_set_del(void **state)
{
    struct fixture *f = *state;
    char err[256];
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    OK(dirdb_relocated_set(f->db, "old@example.com", "new@elsewhere.example", false, err,
                           sizeof err));
    struct dirdb_entry e;
    OK(dirdb_lookup(f->db, "OLD@example.com", '\0', &e));
    assert_int_equal(e.kind, DIRDB_RELOCATED);
    assert_string_equal(e.address, "new@elsewhere.example");
    assert_false(e.forward);
    /* Setting again replaces (RFC 5321 §3.4: 251 when forwarding, 551 when not), keeping
     * the first spelling of the address. */
    OK(dirdb_relocated_set(f->db, "OLD@example.com", "newer@elsewhere.example", true, err,
                           sizeof err));
    OK(dirdb_lookup(f->db, "old@example.com", '\0', &e));
    assert_string_equal(e.address, "newer@elsewhere.example");
    assert_true(e.forward);
    struct collect c = {0};
    OK(dirdb_relocated_list(f->db, NULL, collect_relocated_cb, &c));
    assert_string_equal(c.buf, "old@example.com|newer@elsewhere.example|forward;");
    OK(dirdb_relocated_set(f->db, "old@example.com", "newer@elsewhere.example", false, err,
                           sizeof err));
    OK(dirdb_lookup(f->db, "old@example.com", '\0', &e));
    assert_false(e.forward);
    FAILS(dirdb_relocated_set(f->db, "me@example.com", "ME@example.com", true, err, sizeof err),
          EINVAL);
    FAILS(dirdb_relocated_set(f->db, "x@unknown.example", "y@example.com", true, err, sizeof err),
          EINVAL);
    OK(dirdb_relocated_del(f->db, "old@EXAMPLE.com", err, sizeof err));
    FAILS(dirdb_relocated_del(f->db, "old@example.com", err, sizeof err), ENOENT);
    OK(dirdb_lookup(f->db, "old@example.com", '\0', &e));
    assert_int_equal(e.kind, DIRDB_NONE);
}

static void test_domain_catchall(void **state)
{
    struct fixture *f = *state;
    char err[256];
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    FAILS(dirdb_domain_catchall(f->db, "unknown.example", "a@example.com", err, sizeof err),
          ENOENT);
    /* It must name a mailbox or an alias of the directory. */
    FAILS(dirdb_domain_catchall(f->db, "EXAMPLE.com", "Postmaster@EXAMPLE.COM", err, sizeof err),
          EINVAL);
    FAILS(dirdb_domain_catchall(f->db, "example.com", "a@elsewhere.example", err, sizeof err),
          EINVAL);
    OK(dirdb_alias_add(f->db, "Postmaster@example.com", "a@elsewhere.example", err, sizeof err));
    OK(dirdb_domain_catchall(f->db, "EXAMPLE.com", "Postmaster@EXAMPLE.COM", err, sizeof err));
    struct collect c = {0};
    OK(dirdb_domain_list(f->db, collect_domain_cb, &c));
    assert_string_equal(c.buf, "example.com|Postmaster@example.com;");
    OK(dirdb_domain_catchall(f->db, "example.com", NULL, err, sizeof err));
    struct collect c2 = {0};
    OK(dirdb_domain_list(f->db, collect_domain_cb, &c2));
    assert_string_equal(c2.buf, "example.com|(null);");
}

static void test_domain_del_refused_while_not_empty(void **state)
{
    struct fixture *f = *state;
    char err[256];
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    for (int kind = 0; kind < 3; kind++) {
        if (kind == 0)
            OK(dirdb_user_add(f->db, "u@example.com", "U", "h", NULL, 0, err, sizeof err));
        else if (kind == 1)
            OK(dirdb_alias_add(f->db, "a@example.com", "t@remote.example", err, sizeof err));
        else
            OK(dirdb_relocated_set(f->db, "r@example.com", "n@remote.example", true, err,
                                   sizeof err));
        FAILS(dirdb_domain_del(f->db, "example.com", err, sizeof err), ENOTEMPTY);
        if (kind == 0)
            OK(dirdb_user_del(f->db, "u@example.com", err, sizeof err));
        else if (kind == 1)
            OK(dirdb_alias_del(f->db, "a@example.com", NULL, err, sizeof err));
        else
            OK(dirdb_relocated_del(f->db, "r@example.com", err, sizeof err));
    }
    OK(dirdb_domain_del(f->db, "example.com", err, sizeof err));
}

static void test_lookup_order(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct dirdb *db = f->db;
    OK(dirdb_domain_add(db, "example.com", err, sizeof err));
    OK(dirdb_domain_add(db, "nocatch.example", err, sizeof err));
    OK(dirdb_domain_add(db, "deadcatch.example", err, sizeof err));
    OK(dirdb_user_add(db, "user@example.com", "User", "$y$u", NULL, 0, err, sizeof err));
    OK(dirdb_user_add(db, "exact+tag@example.com", "Exact", "$y$e", NULL, 0, err, sizeof err));
    OK(dirdb_user_add(db, "off@example.com", "Off", "$y$o", NULL, 0, err, sizeof err));
    OK(dirdb_user_enable(db, "off@example.com", false, err, sizeof err));
    OK(dirdb_user_add(db, "both@example.com", "Both", "$y$b", NULL, 0, err, sizeof err));
    OK(dirdb_relocated_set(db, "both@example.com", "both@new.example", true, err, sizeof err));
    OK(dirdb_relocated_set(db, "moved@example.com", "moved@new.example", false, err, sizeof err));
    OK(dirdb_alias_add(db, "list@example.com", "user@example.com", err, sizeof err));
    OK(dirdb_domain_catchall(db, "example.com", "user@example.com", err, sizeof err));
    /* A catch-all whose mailbox was deleted after it was set. */
    OK(dirdb_user_add(db, "gone@deadcatch.example", "G", "$y$g", NULL, 0, err, sizeof err));
    OK(dirdb_domain_catchall(db, "deadcatch.example", "gone@deadcatch.example", err, sizeof err));
    OK(dirdb_user_del(db, "gone@deadcatch.example", err, sizeof err));
    OK(dirdb_user_add(db, "u@nocatch.example", "U", "$y$n", NULL, 0, err, sizeof err));

    static const struct {
        const char *address;
        char separator;
        enum dirdb_kind kind;
        const char *found;
        bool forward;
    } rows[] = {
        {"user@example.com", '+', DIRDB_MAILBOX, "user@example.com", false},
        {"USER@Example.COM", '+', DIRDB_MAILBOX, "user@example.com", false},
        {"off@example.com", '+', DIRDB_DISABLED, "off@example.com", false},
        {"moved@example.com", '+', DIRDB_RELOCATED, "moved@new.example", false},
        {"both@example.com", '+', DIRDB_RELOCATED, "both@new.example", true},
        {"list@example.com", '+', DIRDB_ALIAS, "list@example.com", false},
        {"exact+tag@example.com", '+', DIRDB_MAILBOX, "exact+tag@example.com", false},
        {"u+tag@nocatch.example", '+', DIRDB_MAILBOX, "u@nocatch.example", false},
        {"u-tag@nocatch.example", '-', DIRDB_MAILBOX, "u@nocatch.example", false},
        {"u+tag@nocatch.example", '\0', DIRDB_NONE, "", false},
        {"u+a+b@nocatch.example", '+', DIRDB_MAILBOX, "u@nocatch.example", false},
        {"list+x@example.com", '+', DIRDB_ALIAS, "list@example.com", false},
        {"moved+x@example.com", '+', DIRDB_RELOCATED, "moved@new.example", false},
        {"+tag@nocatch.example", '+', DIRDB_NONE, "", false},
        {"nobody@example.com", '+', DIRDB_MAILBOX, "user@example.com", false},
        {"off+x@example.com", '+', DIRDB_DISABLED, "off@example.com", false},
        {"nobody@nocatch.example", '+', DIRDB_NONE, "", false},
        {"nobody@deadcatch.example", '+', DIRDB_NONE, "", false},
        {"user@other.example", '+', DIRDB_FOREIGN, "", false},
        {"user@EXAMPLE.COM.example", '+', DIRDB_FOREIGN, "", false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct dirdb_entry e;
        memset(&e, 0x5a, sizeof e);
        OK(dirdb_lookup(db, rows[i].address, rows[i].separator, &e));
        if (e.kind != rows[i].kind)
            fail_msg("row %zu (%s): kind %d, want %d", i, rows[i].address, (int)e.kind,
                     (int)rows[i].kind);
        assert_string_equal(e.address, rows[i].found);
        assert_int_equal(e.forward, rows[i].forward);
    }
}

/* HOSTILE-INPUTS B3: SQL metacharacters in an address are stored and found as data. */
static void test_B3_sql_looking_address_is_data(void **state)
{
    struct fixture *f = *state;
    char err[256];
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    OK(dirdb_user_add(f->db, "victim@example.com", "V", "$y$v", NULL, 0, err, sizeof err));
    static const char *const hostile[] = {
        "\"x'--\"@example.com",
        "x');DROP/**/TABLE/**/mailboxes;--@example.com",
        "'OR'1'='1@example.com",
        "%@example.com",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        OK(dirdb_user_add(f->db, hostile[i], "x'); DELETE FROM domains;--", "h", NULL, 0, err,
                          sizeof err));
        struct dirdb_entry e;
        OK(dirdb_lookup(f->db, hostile[i], '\0', &e));
        assert_int_equal(e.kind, DIRDB_MAILBOX);
        assert_string_equal(e.address, hostile[i]);
        assert_string_equal(e.name, "x'); DELETE FROM domains;--");
        OK(dirdb_alias_add(f->db, "al@example.com", hostile[i], err, sizeof err));
    }
    /* A LIKE-looking pattern matches itself only. */
    struct dirdb_entry e;
    OK(dirdb_lookup(f->db, "victim@example.com", '\0', &e));
    assert_int_equal(e.kind, DIRDB_MAILBOX);
    struct collect c = {0};
    OK(dirdb_user_rows(f->db, "example.com", collect_user_row_cb, &c));
    assert_int_equal(c.rows, 5);
    char t[8][DIRDB_ADDR_MAX + 1];
    size_t n;
    OK(dirdb_alias_targets(f->db, "al@example.com", t, 8, &n));
    assert_int_equal(n, 4);
    OK(dirdb_user_del(f->db, "%@example.com", err, sizeof err));
    OK(dirdb_lookup(f->db, "victim@example.com", '\0', &e));
    assert_int_equal(e.kind, DIRDB_MAILBOX);
}

/* SCRAM credentials go in with the password hash (dirdb_user_passwd, one change) and come
 * back from the lookup; malformed ones are refused and change nothing. */
static void test_scram_round_trip(void **state)
{
    struct fixture *f = *state;
    char err[256];
    static const char creds[] = "SCRAM-SHA-256$10000:c2FsdA==$c3RvcmVk:c2VydmVy";
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    OK(dirdb_user_add(f->db, "Bob@example.com", "Bob", "$y$h", NULL, 0, err, sizeof err));
    struct dirdb_entry e;
    OK(dirdb_lookup(f->db, "bob@example.com", '\0', &e));
    assert_string_equal(e.scram, "");
    OK(dirdb_user_passwd(f->db, "BOB@Example.com", "$y$h", creds, err, sizeof err));
    OK(dirdb_lookup(f->db, "bob@example.com", '\0', &e));
    assert_int_equal(e.kind, DIRDB_MAILBOX);
    assert_string_equal(e.scram, creds);
    assert_string_equal(e.password_hash, "$y$h");
    /* A disabled mailbox still shows its credentials; refusing the login is the caller's. */
    OK(dirdb_user_enable(f->db, "bob@example.com", false, err, sizeof err));
    OK(dirdb_lookup(f->db, "bob@example.com", '\0', &e));
    assert_int_equal(e.kind, DIRDB_DISABLED);
    assert_string_equal(e.scram, creds);
    OK(dirdb_user_passwd(f->db, "bob@example.com", "$y$h", NULL, err, sizeof err));
    OK(dirdb_lookup(f->db, "bob@example.com", '\0', &e));
    assert_string_equal(e.scram, "");

    static char longest[sizeof e.scram];
    static char too_long[sizeof e.scram + 1];
    memset(longest, 'S', sizeof longest - 1);
    memset(too_long, 'S', sizeof too_long - 1);
    OK(dirdb_user_passwd(f->db, "bob@example.com", "$y$h", longest, err, sizeof err));
    OK(dirdb_lookup(f->db, "bob@example.com", '\0', &e));
    assert_string_equal(e.scram, longest);
    static const char *const bad[] = {too_long, "SCRAM-SHA-256$1:a\n$b:c", "a b", "a\tb", "x\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        FAILS(dirdb_user_passwd(f->db, "bob@example.com", "$y$h", bad[i], err, sizeof err), EINVAL);
    OK(dirdb_lookup(f->db, "bob@example.com", '\0', &e));
    assert_string_equal(e.scram, longest);
    FAILS(dirdb_user_passwd(f->db, "nobody@example.com", "$y$h", creds, err, sizeof err), ENOENT);
    FAILS(dirdb_user_passwd(f->db, "not an address", "$y$h", creds, err, sizeof err), EINVAL);
    FAILS(dirdb_user_passwd(f->db, NULL, "$y$h", creds, err, sizeof err), EINVAL);
}

#define FP_LOWER "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FP_COLONS                                                                                  \
    "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:"   \
    "CD:EF"
#define FP_OTHER "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff00"
#define FP_THIRD "aa23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_cert_add_del_lookup_list(void **state)
{
    struct fixture *f = *state;
    char err[256];
    char addr[DIRDB_ADDR_MAX + 1];
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    OK(dirdb_domain_add(f->db, "example.org", err, sizeof err));
    OK(dirdb_user_add(f->db, "Bob@example.com", "Bob", "h", NULL, 0, err, sizeof err));
    OK(dirdb_user_add(f->db, "carol@example.org", "Carol", "h", NULL, 0, err, sizeof err));
    OK(dirdb_alias_add(f->db, "team@example.com", "bob@example.com", err, sizeof err));

    /* Upper case with colons and lower case without are one certificate. */
    OK(dirdb_cert_add(f->db, FP_COLONS, "bob@EXAMPLE.COM", err, sizeof err));
    FAILS(dirdb_cert_add(f->db, FP_LOWER, "carol@example.org", err, sizeof err), EEXIST);
    assert_int_equal(dirdb_cert_lookup(f->db, FP_LOWER, addr), 1);
    assert_string_equal(addr, "Bob@example.com");
    assert_int_equal(dirdb_cert_lookup(f->db, FP_COLONS, addr), 1);
    assert_int_equal(dirdb_cert_lookup(f->db, FP_OTHER, addr), 0);
    assert_string_equal(addr, "");
    OK(dirdb_cert_add(f->db, FP_OTHER, "carol@example.org", err, sizeof err));

    /* Only a mailbox logs in by certificate: not an alias, not an unknown address. */
    FAILS(dirdb_cert_add(f->db, FP_THIRD, "team@example.com", err, sizeof err), ENOENT);
    FAILS(dirdb_cert_add(f->db, FP_THIRD, "nobody@example.com", err, sizeof err), ENOENT);
    FAILS(dirdb_cert_add(f->db, FP_THIRD, "x@unknown.example", err, sizeof err), ENOENT);
    FAILS(dirdb_cert_add(f->db, FP_THIRD, "bad address", err, sizeof err), EINVAL);

    struct collect all = {0};
    OK(dirdb_cert_list(f->db, NULL, collect_cert_cb, &all));
    assert_string_equal(all.buf, FP_LOWER "|Bob@example.com;" FP_OTHER "|carol@example.org;");
    struct collect org = {0};
    OK(dirdb_cert_list(f->db, "EXAMPLE.org", collect_cert_cb, &org));
    assert_string_equal(org.buf, FP_OTHER "|carol@example.org;");
    struct collect one = {.stop_after = 1};
    OK(dirdb_cert_list(f->db, NULL, collect_cert_cb, &one));
    assert_int_equal(one.rows, 1);
    FAILS(dirdb_cert_list(f->db, "a..b", collect_cert_cb, &one), EINVAL);

    OK(dirdb_cert_del(f->db, FP_OTHER, err, sizeof err));
    FAILS(dirdb_cert_del(f->db, FP_OTHER, err, sizeof err), ENOENT);
    assert_int_equal(dirdb_cert_lookup(f->db, FP_OTHER, addr), 0);

    /* Deleting the mailbox deletes its certificates (ON DELETE CASCADE). */
    OK(dirdb_alias_del(f->db, "team@example.com", NULL, err, sizeof err));
    OK(dirdb_user_del(f->db, "bob@example.com", err, sizeof err));
    assert_int_equal(dirdb_cert_lookup(f->db, FP_LOWER, addr), 0);
    OK(dirdb_user_add(f->db, "bob@example.com", "Bob again", "h", NULL, 0, err, sizeof err));
    assert_int_equal(dirdb_cert_lookup(f->db, FP_LOWER, addr), 0);
}

static void test_cert_fingerprint_malformed_refused(void **state)
{
    struct fixture *f = *state;
    char err[256];
    char addr[DIRDB_ADDR_MAX + 1];
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    OK(dirdb_user_add(f->db, "bob@example.com", "Bob", "h", NULL, 0, err, sizeof err));
    static const char *const bad[] = {
        "",
        ":::",
        FP_LOWER + 1,      /* 63 digits */
        FP_LOWER "0",      /* 65 digits */
        FP_LOWER FP_LOWER, /* 128: a SHA-512 is not what the table holds */
        "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", /* not hex */
        " " FP_LOWER, /* spaces are not separators */
        "0123456789abcdef 0123456789abcdef0123456789abcdef0123456789abcdef",
        "01-23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", /* dashes */
        "0x23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd'--",
        NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FAILS(dirdb_cert_add(f->db, bad[i], "bob@example.com", err, sizeof err), EINVAL);
        FAILS(dirdb_cert_del(f->db, bad[i], err, sizeof err), EINVAL);
        snprintf(addr, sizeof addr, "junk");
        FAILS(dirdb_cert_lookup(f->db, bad[i], addr), EINVAL);
        assert_string_equal(addr, "");
    }
    struct collect c = {0};
    OK(dirdb_cert_list(f->db, NULL, collect_cert_cb, &c));
    assert_int_equal(c.rows, 0);
}

static void test_relocated_list(void **state)
{
    struct fixture *f = *state;
    char err[256];
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    OK(dirdb_domain_add(f->db, "example.org", err, sizeof err));
    OK(dirdb_relocated_set(f->db, "zed@example.com", "z@new.example", false, err, sizeof err));
    OK(dirdb_relocated_set(f->db, "amy@example.com", "a@new.example", true, err, sizeof err));
    OK(dirdb_relocated_set(f->db, "org@example.org", "o@new.example", true, err, sizeof err));
    struct collect c = {0};
    OK(dirdb_relocated_list(f->db, "Example.COM", collect_relocated_cb, &c));
    assert_string_equal(c.buf, "amy@example.com|a@new.example|forward;"
                               "zed@example.com|z@new.example|refuse;");
    struct collect all = {0};
    OK(dirdb_relocated_list(f->db, NULL, collect_relocated_cb, &all));
    assert_int_equal(all.rows, 3);
    struct collect one = {.stop_after = 1};
    OK(dirdb_relocated_list(f->db, NULL, collect_relocated_cb, &one));
    assert_string_equal(one.buf, "amy@example.com|a@new.example|forward;");
    struct collect none = {0};
    OK(dirdb_relocated_list(f->db, "unknown.example", collect_relocated_cb, &none));
    assert_int_equal(none.rows, 0);
    FAILS(dirdb_relocated_list(f->db, "a b", collect_relocated_cb, &none), EINVAL);
}

static void test_domain_exists(void **state)
{
    struct fixture *f = *state;
    char err[256];
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    assert_int_equal(dirdb_domain_exists(f->db, "example.com"), 1);
    assert_int_equal(dirdb_domain_exists(f->db, "EXAMPLE.Com"), 1);
    assert_int_equal(dirdb_domain_exists(f->db, "example.org"), 0);
    assert_int_equal(dirdb_domain_exists(f->db, "sub.example.com"), 0);
    assert_int_equal(dirdb_domain_exists(f->db, "example.com."), 0);
    assert_int_equal(dirdb_domain_exists(f->db, "example.com' OR '1'='1"), 0);
    assert_int_equal(dirdb_domain_exists(f->db, ""), 0);
    assert_int_equal(dirdb_domain_exists(f->db, NULL), 0);
    OK(dirdb_domain_del(f->db, "example.com", err, sizeof err));
    assert_int_equal(dirdb_domain_exists(f->db, "example.com"), 0);
}

/* RFC 6409 §6.1 and HOSTILE-INPUTS B15: who may use which MAIL FROM. */
static void test_B15_owns_through_aliases(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct dirdb *db = f->db;
    OK(dirdb_domain_add(db, "example.com", err, sizeof err));
    OK(dirdb_domain_add(db, "example.org", err, sizeof err));
    OK(dirdb_user_add(db, "Bob@example.com", "Bob", "h", NULL, 0, err, sizeof err));
    OK(dirdb_user_add(db, "eve@example.com", "Eve", "h", NULL, 0, err, sizeof err));
    OK(dirdb_alias_add(db, "sales@example.com", "bob@example.com", err, sizeof err));
    OK(dirdb_alias_add(db, "sales@example.com", "eve@example.com", err, sizeof err));
    OK(dirdb_alias_add(db, "all@example.com", "sales@example.com", err, sizeof err));
    OK(dirdb_alias_add(db, "bob@example.org", "BOB@example.com", err, sizeof err));
    OK(dirdb_alias_add(db, "evelist@example.com", "eve@example.com", err, sizeof err));
    OK(dirdb_alias_add(db, "ext@example.com", "bob@remote.example", err, sizeof err));
    /* A loop that does not reach bob, and one that does. */
    OK(dirdb_alias_add(db, "ping@example.com", "pong@example.com", err, sizeof err));
    OK(dirdb_alias_add(db, "pong@example.com", "ping@example.com", err, sizeof err));
    OK(dirdb_alias_add(db, "yin@example.com", "yang@example.com", err, sizeof err));
    OK(dirdb_alias_add(db, "yang@example.com", "yin@example.com", err, sizeof err));
    OK(dirdb_alias_add(db, "yang@example.com", "bob@example.com", err, sizeof err));
    /* A chain c0 -> c1 -> ... -> c11 -> bob: bob is 9 expansions from c3, which delivery
     * still follows, and 10 from c2, which it refuses (5.4.6). */
    for (int i = 0; i <= 11; i++) {
        char a[64], t[64];
        snprintf(a, sizeof a, "c%d@example.com", i);
        if (i < 11)
            snprintf(t, sizeof t, "c%d@example.com", i + 1);
        else
            snprintf(t, sizeof t, "bob@example.com");
        OK(dirdb_alias_add(db, a, t, err, sizeof err));
    }
    /* Eight aliases each pointing at all the others: without de-duplication the ten levels
     * would walk 7^10 paths. */
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) {
            if (i == j)
                continue;
            char a[64], t[64];
            snprintf(a, sizeof a, "m%d@example.com", i);
            snprintf(t, sizeof t, "m%d@example.com", j);
            OK(dirdb_alias_add(db, a, t, err, sizeof err));
        }

    static const struct {
        const char *login, *sender;
        int want;
    } rows[] = {
        {"bob@example.com", "bob@example.com", 1}, /* self */
        {"bob@example.com", "BOB@EXAMPLE.COM", 1}, /* self, RFC 5321 §2.4 case */
        {"Bob@example.com", "bob@Example.Com", 1},
        {"bob@example.com", "sales@example.com", 1}, /* alias */
        {"eve@example.com", "sales@example.com", 1}, /* alias with two members */
        {"bob@example.com", "all@example.com", 1},   /* alias of alias */
        {"bob@example.com", "ALL@example.com", 1},
        {"bob@example.com", "bob@example.org", 1},  /* alias in another of our domains */
        {"bob@example.com", "yin@example.com", 1},  /* loop that reaches bob */
        {"bob@example.com", "ping@example.com", 0}, /* loop that does not */
        {"bob@example.com", "m0@example.com", 0},   /* dense loop */
        {"bob@example.com", "c3@example.com", 1},   /* 9 expansions */
        {"bob@example.com", "c2@example.com", 0},   /* 10: beyond the bound */
        {"bob@example.com", "c0@example.com", 0},
        {"bob@example.com", "eve@example.com", 0},     /* unrelated mailbox */
        {"bob@example.com", "evelist@example.com", 0}, /* unrelated alias */
        {"bob@example.com", "nobody@example.com", 0},  /* unknown */
        {"bob@example.com", "bob@other.example", 0},   /* other domain, same local part */
        {"bob@example.com", "bob@example.co", 0},
        {"bob@remote.example", "ext@example.com", 1}, /* as data: the caller logs in mailboxes */
        {"bob@example.com", "ext@example.com", 0},
        {"bob@example.com", "bob+tag@example.com", 0}, /* the caller strips subaddresses */
        {"bob@example.com", "%@example.com", 0},       /* B3: patterns are data */
        {"bob@example.com", "'OR'1'='1@example.com", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int got = dirdb_owns(db, rows[i].login, rows[i].sender);
        if (got != rows[i].want)
            fail_msg("row %zu (%s owns %s): %d, want %d", i, rows[i].login, rows[i].sender, got,
                     rows[i].want);
    }
    FAILS(dirdb_owns(db, "bob@example.com", "not an address"), EINVAL);
    FAILS(dirdb_owns(db, "not an address", "bob@example.com"), EINVAL);
    FAILS(dirdb_owns(db, NULL, "bob@example.com"), EINVAL);
    FAILS(dirdb_owns(db, "bob@example.com", NULL), EINVAL);
}

/* The schema of a fresh file, as another reader (sqlite3, a backup script) sees it. */
static void test_schema_has_scram_and_certificates(void **state)
{
    struct fixture *f = *state;
    sqlite3 *h;
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT scram FROM mailboxes", -1, &q, NULL), SQLITE_OK);
    sqlite3_finalize(q);
    assert_int_equal(
        sqlite3_prepare_v2(h, "SELECT fingerprint, address FROM certificates", -1, &q, NULL),
        SQLITE_OK);
    sqlite3_finalize(q);
    sqlite3_close(h);
}

static void make_versioned_file(const char *path, const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
}

static void test_open_refuses_unknown_schema_and_junk(void **state)
{
    struct fixture *f = *state;
    char p[160], err[256] = "";
    snprintf(p, sizeof p, "%s.v99", f->path);
    make_versioned_file(p, "CREATE TABLE t (x); PRAGMA user_version = 99;");
    assert_null(dirdb_open(p, err, sizeof err));
    assert_non_null(strstr(err, "schema version"));

    snprintf(p, sizeof p, "%s.junk", f->path);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("this is not a database, it is long enough to have a header of sorts..........\n"
          "and a second line...............................................................\n",
          fp);
    fclose(fp);
    err[0] = '\0';
    assert_null(dirdb_open(p, err, sizeof err));
    assert_true(err[0] != '\0');

    assert_null(dirdb_open("/nonexistent-dir/x/dir.db", err, sizeof err));
    assert_null(dirdb_open("/nonexistent-dir/x/dir.db", NULL, 0));
}

static void test_open_creates_private_file_and_persists(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    OK(dirdb_user_add(f->db, "u@example.com", "U", "$y$p", NULL, 0, err, sizeof err));
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    dirdb_close(f->db);
    f->db = dirdb_open(f->path, err, sizeof err);
    assert_non_null(f->db);
    struct dirdb_entry e;
    OK(dirdb_lookup(f->db, "u@example.com", '\0', &e));
    assert_int_equal(e.kind, DIRDB_MAILBOX);
    assert_string_equal(e.password_hash, "$y$p");

    sqlite3 *h;
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 1);
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    sqlite3_close(h);
}

static void *release_later(void *arg)
{
    sqlite3 *h = arg;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    return NULL;
}

/* Another process holding the write lock briefly (the admin tool while the daemon runs) is
 * waited for, within the 5 s busy timeout, not reported as a failure. */
static void test_busy_writer_is_waited_for(void **state)
{
    struct fixture *f = *state;
    char err[256];
    sqlite3 *h;
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, release_later, h), 0);
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    pthread_join(t, NULL);
    sqlite3_close(h);
}

/* A short busy timeout (the daemon's, dir_sqlite.c) fails a statement that meets another
 * connection's lock past it (EIO: a TEMPFAIL for the session) instead of stalling the event
 * loop until the lock goes; the same connection works once it has gone. A write shows it:
 * in WAL mode a read is never kept waiting by a writer. */
static void test_short_busy_timeout_fails_instead_of_waiting(void **state)
{
    struct fixture *f = *state;
    char err[256];
    dirdb_set_busy_timeout(f->db, 20);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, release_later, h), 0);
    FAILS(dirdb_domain_add(f->db, "example.com", err, sizeof err), EIO);
    pthread_join(t, NULL);
    sqlite3_close(h);
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
}


/* The quota (issue #4): set, changed and removed by address; found through the lookup for
 * the mailbox itself, a subaddress and a catch-all, kept for a disabled one; listed; refused
 * for what is not a mailbox (ENOENT), a malformed address or a value SQLite cannot hold. */
static void test_user_quota_set_lookup_list(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct dirdb *db = f->db;
    OK(dirdb_domain_add(db, "example.com", err, sizeof err));
    OK(dirdb_user_add(db, "Bob@example.com", "Bob", "h", NULL, 0, err, sizeof err));
    OK(dirdb_user_add(db, "carol@example.com", "", "h", NULL, 0, err, sizeof err));
    OK(dirdb_user_add(db, "off@example.com", "Off", "h", NULL, 0, err, sizeof err));
    OK(dirdb_user_enable(db, "off@example.com", false, err, sizeof err));
    OK(dirdb_alias_add(db, "team@example.com", "bob@example.com", err, sizeof err));
    OK(dirdb_domain_catchall(db, "example.com", "BOB@example.com", err, sizeof err));

    OK(dirdb_user_quota(db, "BOB@EXAMPLE.COM", 500u << 20, err, sizeof err));
    OK(dirdb_user_quota(db, "off@example.com", 2048, err, sizeof err));
    static const struct {
        const char *address;
        enum dirdb_kind kind;
        uint64_t quota;
    } rows[] = {
        {"bob@example.com", DIRDB_MAILBOX, 500u << 20},
        {"bob+tag@example.com", DIRDB_MAILBOX, 500u << 20},
        {"nobody@example.com", DIRDB_MAILBOX, 500u << 20}, /* the catch-all's mailbox */
        {"carol@example.com", DIRDB_MAILBOX, 0},
        {"off@example.com", DIRDB_DISABLED, 2048},
        {"team@example.com", DIRDB_ALIAS, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct dirdb_entry e;
        memset(&e, 0x5a, sizeof e);
        OK(dirdb_lookup(db, rows[i].address, '+', &e));
        assert_int_equal(e.kind, rows[i].kind);
        if (e.quota != rows[i].quota)
            fail_msg("row %zu (%s): quota %llu", i, rows[i].address,
                     (unsigned long long)e.quota);
    }

    struct collect c = {0};
    OK(dirdb_user_rows(db, NULL, collect_user_row_cb, &c));
    assert_string_equal(c.buf, "Bob@example.com|Bob|on|524288000;carol@example.com||on|0;"
                               "off@example.com|Off|off|2048;");
    struct collect one = {.stop_after = 1};
    OK(dirdb_user_rows(db, "EXAMPLE.com", collect_user_row_cb, &one));
    assert_int_equal(one.rows, 1);
    FAILS(dirdb_user_rows(db, "a..b", collect_user_row_cb, &c), EINVAL);

    /* 0 removes it; DIRDB_QUOTA_MAX is the largest maildirsize holds. */
    OK(dirdb_user_quota(db, "bob@example.com", 0, err, sizeof err));
    OK(dirdb_user_quota(db, "carol@example.com", DIRDB_QUOTA_MAX, err, sizeof err));
    struct dirdb_entry e;
    OK(dirdb_lookup(db, "bob@example.com", '+', &e));
    assert_int_equal(e.quota, 0);
    OK(dirdb_lookup(db, "carol@example.com", '+', &e));
    assert_true(e.quota == DIRDB_QUOTA_MAX);

    FAILS(dirdb_user_quota(db, "carol@example.com", DIRDB_QUOTA_MAX + 1, err, sizeof err), EINVAL);
    FAILS(dirdb_user_quota(db, "carol@example.com", (uint64_t)INT64_MAX, err, sizeof err), EINVAL);
    FAILS(dirdb_user_quota(db, "carol@example.com", UINT64_MAX, err, sizeof err), EINVAL);
    FAILS(dirdb_user_quota(db, "nobody@example.com", 1, err, sizeof err), ENOENT);
    FAILS(dirdb_user_quota(db, "team@example.com", 1, err, sizeof err), ENOENT);
    FAILS(dirdb_user_quota(db, "x@unknown.example", 1, err, sizeof err), ENOENT);
    FAILS(dirdb_user_quota(db, "not an address", 1, err, sizeof err), EINVAL);
    FAILS(dirdb_user_quota(db, NULL, 1, err, sizeof err), EINVAL);
    OK(dirdb_lookup(db, "carol@example.com", '+', &e));
    assert_true(e.quota == DIRDB_QUOTA_MAX);
}

/* A quota column edited by hand to something that is not a positive number means none. */
static void test_user_quota_damaged_column_is_none(void **state)
{
    struct fixture *f = *state;
    char err[256];
    OK(dirdb_domain_add(f->db, "example.com", err, sizeof err));
    OK(dirdb_user_add(f->db, "u@example.com", "U", "h", NULL, 0, err, sizeof err));
    static const char *const values[] = {"-5", "0", "'lots'", "1.5", "NULL"};
    sqlite3 *h;
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE mailboxes SET quota = %s", values[i]);
        assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
        struct dirdb_entry e;
        OK(dirdb_lookup(f->db, "u@example.com", '+', &e));
        assert_int_equal(e.kind, DIRDB_MAILBOX);
        assert_int_equal(e.quota, 0);
        struct collect c = {0};
        OK(dirdb_user_rows(f->db, NULL, collect_user_row_cb, &c));
        assert_string_equal(c.buf, "u@example.com|U|on|0;");
    }
    /* Past DIRDB_QUOTA_MAX (more than maildirsize can say) reads as the maximum. */
    assert_int_equal(sqlite3_exec(h, "UPDATE mailboxes SET quota = 9223372036854775807", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    struct dirdb_entry e;
    OK(dirdb_lookup(f->db, "u@example.com", '+', &e));
    assert_true(e.quota == DIRDB_QUOTA_MAX);
    sqlite3_close(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_domain_add_del_list, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_domain_malformed_refused, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_address_malformed_refused, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_user_add_del_passwd_enable_list, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_alias_target_cap, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_short_busy_timeout_fails_instead_of_waiting,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_alias_add_del_list_targets, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_relocated_set_del, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_domain_catchall, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_domain_del_refused_while_not_empty, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_lookup_order, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_B3_sql_looking_address_is_data, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_unknown_schema_and_junk, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_open_creates_private_file_and_persists, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_busy_writer_is_waited_for, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_scram_round_trip, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_cert_add_del_lookup_list, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_cert_fingerprint_malformed_refused, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_relocated_list, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_domain_exists, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_B15_owns_through_aliases, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_schema_has_scram_and_certificates, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_user_quota_set_lookup_list, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_user_quota_damaged_column_is_none, fixture_setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
