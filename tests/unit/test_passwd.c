/* test_passwd: password hashes (dir/passwd.c): both schemes round-trip, a wrong password,
 * a password with a NUL or over the limit, and every hash the module cannot read (locked
 * accounts, legacy schemes, truncated strings) never match. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "dir/passwd.h"

static void test_roundtrip_both_schemes(void **state)
{
    (void)state;
    static const struct {
        enum passwd_scheme scheme;
        const char *prefix;
    } rows[] = {{PASSWD_YESCRYPT, "$y$"}, {PASSWD_ARGON2ID, "$argon2id$"}};
    static const char pw[] = "correct horse \xc3\xa9 battery";
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char h[PASSWD_HASH_MAX], h2[PASSWD_HASH_MAX];
        assert_int_equal(passwd_hash(rows[i].scheme, pw, strlen(pw), h), 0);
        assert_int_equal(strncmp(h, rows[i].prefix, strlen(rows[i].prefix)), 0);
        assert_true(passwd_verify(h, pw, strlen(pw)));
        assert_false(passwd_verify(h, pw, strlen(pw) - 1));
        assert_false(passwd_verify(h, "Correct horse \xc3\xa9 battery", strlen(pw)));
        assert_false(passwd_verify(h, "", 0));
        /* Salted: the same password twice gives two different strings. */
        assert_int_equal(passwd_hash(rows[i].scheme, pw, strlen(pw), h2), 0);
        assert_string_not_equal(h, h2);
        /* A truncated hash matches nothing. */
        h[strlen(h) - 3] = '\0';
        assert_false(passwd_verify(h, pw, strlen(pw)));
    }
}

static void test_bad_passwords_refused(void **state)
{
    (void)state;
    char h[PASSWD_HASH_MAX];
    assert_int_equal(passwd_hash(PASSWD_YESCRYPT, "a\0b", 3, h), -1);
    assert_int_equal(errno, EINVAL);
    static char longpw[PASSWD_MAX + 2];
    memset(longpw, 'x', sizeof longpw - 1);
    assert_int_equal(passwd_hash(PASSWD_ARGON2ID, longpw, PASSWD_MAX + 1, h), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(passwd_hash(PASSWD_YESCRYPT, longpw, PASSWD_MAX, h), 0);
    assert_true(passwd_verify(h, longpw, PASSWD_MAX));
    /* A NUL cannot be used to cut a password short at verification either. */
    assert_int_equal(passwd_hash(PASSWD_YESCRYPT, "a", 1, h), 0);
    assert_false(passwd_verify(h, "a\0b", 3));
}

static void test_unreadable_hashes_never_match(void **state)
{
    (void)state;
    static const char *const hashes[] = {
        "", "*", "!", "!$y$j9T$abc$def", "x",
        "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",          /* MD5-crypt of "password" */
        "aaqPiZY5xR5l.",                              /* DES crypt */
        "$6$salt$IxDD3jeSOb5eB1CX5LBsqZFVkJdido3OUILO5Ifz5iwMuTS4XMS130MTSuDDl3aCI6WouIL9AjRbLCelDCy.g.",
        "$y$", "$argon2id$", "$argon2id$v=19$m=65536,t=2,p=1$",
    };
    for (size_t i = 0; i < sizeof hashes / sizeof hashes[0]; i++) {
        assert_false(passwd_verify(hashes[i], "password", 8));
        assert_false(passwd_verify(hashes[i], "", 0));
    }
    assert_false(passwd_verify(NULL, "password", 8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_both_schemes),
        cmocka_unit_test(test_bad_passwords_refused),
        cmocka_unit_test(test_unreadable_hashes_never_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
