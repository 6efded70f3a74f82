/* test_dir: the directory's front (dir/dir.c) over the file backend: mailboxes, aliases
 * and their targets (dir_expand, used by the queue manager), case-insensitive lookups, and
 * the errors a bad file gets, with their line numbers; and the quota that the SQLite
 * backend's expansion carries. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "dir/dir.h"
#include "dir/dirdb.h"

static char tmpdir[] = "/tmp/test_dir_XXXXXX";

static const char *write_file(const char *name, const char *text)
{
    static char path[2][256];
    static int k;
    char *p = path[k++ % 2];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

struct got {
    enum dir_result result;
    size_t n;
    char targets[8][64];
    uint64_t quota;
};

static void got_cb(enum dir_result result, const char *const *targets, size_t n, uint64_t quota,
                   void *arg)
{
    struct got *g = arg;
    g->quota = quota;
    g->result = result;
    g->n = n;
    for (size_t i = 0; i < n && i < 8; i++)
        snprintf(g->targets[i], sizeof g->targets[i], "%s", targets[i]);
}

static struct got expand(struct dir *d, const char *addr)
{
    struct got g = {.result = DIR_TEMPFAIL};
    dir_expand(d, addr, got_cb, &g);
    return g;
}

static void test_expand_targets(void **state)
{
    (void)state;
    char err[256] = "";
    const char *mb = write_file("mailboxes", "alice@x.test Alice\nbob@x.test\n");
    const char *al = write_file("aliases", "# team\nTeam@X.test: Alice@x.test, bob@x.test,far@remote.test\n"
                                           "solo@x.test:  alice@x.test   # one target\n");
    struct dir *d = dir_open_files(mb, al, err, sizeof err);
    assert_non_null(d);
    struct got g = expand(d, "team@x.TEST");
    assert_int_equal(g.result, DIR_ALIAS);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.targets[0], "alice@x.test");
    assert_string_equal(g.targets[1], "bob@x.test");
    assert_string_equal(g.targets[2], "far@remote.test");
    g = expand(d, "solo@x.test");
    assert_int_equal(g.result, DIR_ALIAS);
    assert_int_equal(g.n, 1);
    g = expand(d, "ALICE@x.test");
    assert_int_equal(g.result, DIR_MAILBOX);
    assert_int_equal(g.n, 0);
    g = expand(d, "nobody@x.test");
    assert_int_equal(g.result, DIR_NOT_FOUND);
    dir_close(d);
}

static void test_first_definition_wins(void **state)
{
    (void)state;
    char err[256] = "";
    const char *mb = write_file("mailboxes", "dup@x.test\n");
    const char *al = write_file("aliases", "dup@x.test: a@x.test\nl@x.test: a@x.test\nl@x.test: b@x.test, c@x.test\n");
    struct dir *d = dir_open_files(mb, al, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(expand(d, "dup@x.test").result, DIR_MAILBOX);
    struct got g = expand(d, "l@x.test");
    assert_int_equal(g.n, 1);
    assert_string_equal(g.targets[0], "a@x.test");
    dir_close(d);
}

static void test_bad_alias_files(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } rows[] = {
        {"a@x.test:\n", ":1: alias without targets"},
        {"ok@x.test: b@x.test\na@x.test: not-an-address\n", ":2: bad target address"},
        {"a@x.test: b@@x.test\n", ":1: bad target address"},
        {"a@x.test b@x.test\n", ":1: expected"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[256] = "";
        const char *al = write_file("aliases", rows[i].text);
        assert_null(dir_open_files(NULL, al, err, sizeof err));
        assert_non_null(strstr(err, rows[i].want));
    }
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char path[300];
    (void)state;
    snprintf(path, sizeof path, "%s/mailboxes", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/aliases", tmpdir);
    unlink(path);
    return rmdir(tmpdir);
}

struct answer {
    enum dir_result result;
    char address[64], name[64];
};

static void answer_cb(const struct dir_answer *a, void *arg)
{
    struct answer *g = arg;
    g->result = a->result;
    snprintf(g->address, sizeof g->address, "%s", a->address);
    snprintf(g->name, sizeof g->name, "%s", a->name);
}

/* Issue #4 on the files backend: VRFY's display name, subaddresses (the configured
 * separator), sender ownership (the login itself or an alias with it as a direct target), and
 * no logins or certificates at all. */
static void test_files_names_subaddress_owns(void **state)
{
    (void)state;
    char err[256] = "";
    struct config cfg = {.subaddress_separator = '+', .spool = tmpdir};
    char mb[256], al[256];
    snprintf(mb, sizeof mb, "%s", write_file("mailboxes", "alice@x.test  Alice \x01Liddell \n"
                                                           "bob@x.test\n"));
    snprintf(al, sizeof al, "%s", write_file("aliases", "sales@x.test: alice@x.test\n"));
    cfg.mailboxes_file = mb;
    cfg.aliases_file = al;
    struct dir *d = dir_open(&cfg, err, sizeof err);
    assert_non_null(d);
    assert_false(dir_has_domains(d));
    struct answer a;
    struct got g0;
    dir_lookup(d, "Alice@X.test", answer_cb, &a);
    assert_int_equal(a.result, DIR_MAILBOX);
    assert_string_equal(a.name, "Alice  Liddell");
    dir_lookup(d, "alice+news@x.test", answer_cb, &a);
    assert_int_equal(a.result, DIR_MAILBOX);
    assert_string_equal(a.address, "alice@x.test");
    dir_lookup(d, "sales+x@x.test", answer_cb, &a); /* aliases too, as in the SQLite store */
    assert_int_equal(a.result, DIR_ALIAS);
    g0 = expand(d, "sales+x@x.test");
    assert_int_equal(g0.result, DIR_ALIAS);
    assert_int_equal(g0.n, 1);
    assert_string_equal(g0.targets[0], "alice@x.test");
    dir_lookup(d, "nobody+x@x.test", answer_cb, &a);
    assert_int_equal(a.result, DIR_NOT_FOUND);
    struct got g = expand(d, "alice+news@x.test");
    assert_int_equal(g.result, DIR_ALIAS);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.targets[0], "alice@x.test");
    dir_owns(d, "alice@x.test", "ALICE@x.test", answer_cb, &a);
    assert_int_equal(a.result, DIR_MAILBOX);
    dir_owns(d, "alice@x.test", "sales@x.test", answer_cb, &a);
    assert_int_equal(a.result, DIR_MAILBOX);
    dir_owns(d, "bob@x.test", "sales@x.test", answer_cb, &a);
    assert_int_equal(a.result, DIR_NOT_FOUND);
    dir_login(d, "alice@x.test", answer_cb, &a);
    assert_int_equal(a.result, DIR_NOT_FOUND);
    dir_certificate(d, "00", answer_cb, &a);
    assert_int_equal(a.result, DIR_NOT_FOUND);
    dir_close(d);
}

/* The SQLite store's expansion carries a mailbox's quota (the queue manager's one lookup per
 * recipient): a subaddress, an alias and a forwarding relocated address answer ALIAS with
 * the address mail goes to and no quota; that address then answers MAILBOX with its own. */
static void test_sqlite_expand_carries_the_quota(void **state)
{
    (void)state;
    char path[256], err[256] = "";
    snprintf(path, sizeof path, "%s/quota.db", tmpdir);
    struct dirdb *db = dirdb_open(path, err, sizeof err);
    assert_non_null(db);
    assert_int_equal(dirdb_domain_add(db, "x.test", err, sizeof err), 0);
    assert_int_equal(dirdb_user_add(db, "bob@x.test", "Bob", "$y$h", NULL, 5000, err, sizeof err),
                     0);
    assert_int_equal(dirdb_user_add(db, "amy@x.test", "Amy", "$y$h", NULL, 0, err, sizeof err), 0);
    assert_int_equal(dirdb_alias_add(db, "team@x.test", "bob@x.test", err, sizeof err), 0);
    assert_int_equal(dirdb_relocated_set(db, "old@x.test", "bob@x.test", true, err, sizeof err),
                     0);
    dirdb_close(db);
    struct config cfg = {.subaddress_separator = '+', .spool = tmpdir, .directory_sqlite = path};
    struct dir *d = dir_open(&cfg, err, sizeof err);
    assert_non_null(d);
    struct got g = expand(d, "BOB@x.test");
    assert_int_equal(g.result, DIR_MAILBOX);
    assert_int_equal(g.quota, 5000);
    g = expand(d, "amy@x.test");
    assert_int_equal(g.result, DIR_MAILBOX);
    assert_int_equal(g.quota, 0);
    static const char *const via[] = {"bob+tag@x.test", "team@x.test", "old@x.test"};
    for (size_t i = 0; i < sizeof via / sizeof via[0]; i++) {
        g = expand(d, via[i]);
        assert_int_equal(g.result, DIR_ALIAS);
        assert_int_equal(g.n, 1);
        assert_string_equal(g.targets[0], "bob@x.test");
        assert_int_equal(g.quota, 0);
    }
    dir_close(d);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand_targets),
        cmocka_unit_test(test_first_definition_wins),
        cmocka_unit_test(test_bad_alias_files),
        cmocka_unit_test(test_files_names_subaddress_owns),
        cmocka_unit_test(test_sqlite_expand_carries_the_quota),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
