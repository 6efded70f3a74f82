/* passwd: hashing and checking passwords (see passwd.h). Called by the directory's
 * administration (`sluice user add|passwd`) and by AUTH (issue #4), from threads, never
 * from an event loop. Invariants: a password is never copied anywhere but into the
 * libraries' own calls, and scratch space that held it is wiped; only the two schemes are
 * accepted, so no weak legacy hash (DES, MD5) can be planted in the directory and match. */
#include "dir/passwd.h"

#include <crypt.h>
#include <errno.h>
#include <string.h>

#include <sodium.h>

_Static_assert(PASSWD_MAX < CRYPT_MAX_PASSPHRASE_SIZE, "crypt_rn takes the password whole");

static bool passwd_ok(const char *password, size_t len)
{
    return len <= PASSWD_MAX && memchr(password, '\0', len) == NULL;
}

int passwd_hash(enum passwd_scheme scheme, const char *password, size_t len,
                char out[PASSWD_HASH_MAX])
{
    if (!passwd_ok(password, len)) {
        errno = EINVAL;
        return -1;
    }
    if (sodium_init() < 0) {
        errno = EIO;
        return -1;
    }
    if (scheme == PASSWD_ARGON2ID) {
        _Static_assert(crypto_pwhash_STRBYTES <= PASSWD_HASH_MAX, "argon2id string size");
        if (crypto_pwhash_str_alg(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                  crypto_pwhash_MEMLIMIT_INTERACTIVE,
                                  crypto_pwhash_ALG_ARGON2ID13) != 0) {
            errno = ENOMEM;
            return -1;
        }
        return 0;
    }
    /* crypt_rn wants a C string: the password is copied into its own scratch, wiped after. */
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = sodium_malloc(sizeof *cd);
    char *pw = sodium_malloc(len + 1);
    int rc = -1;
    if (cd == NULL || pw == NULL) {
        errno = ENOMEM;
    } else if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt) == NULL) {
        errno = EIO;
    } else {
        memcpy(pw, password, len);
        pw[len] = '\0';
        memset(cd, 0, sizeof *cd);
        const char *h = crypt_rn(pw, salt, cd, sizeof *cd);
        if (h == NULL || h[0] != '$' || strlen(h) >= PASSWD_HASH_MAX) {
            errno = EIO;
        } else {
            memcpy(out, h, strlen(h) + 1);
            rc = 0;
        }
    }
    sodium_free(pw);
    sodium_free(cd);
    return rc;
}

bool passwd_verify(const char *hash, const char *password, size_t len)
{
    if (hash == NULL || !passwd_ok(password, len) || sodium_init() < 0)
        return false;
    size_t hl = strnlen(hash, PASSWD_HASH_MAX);
    if (hl == PASSWD_HASH_MAX)
        return false;
    if (strncmp(hash, "$argon2id$", 10) == 0)
        return crypto_pwhash_str_verify(hash, password, len) == 0;
    if (strncmp(hash, "$y$", 3) != 0)
        return false;
    struct crypt_data *cd = sodium_malloc(sizeof *cd);
    char *pw = sodium_malloc(len + 1);
    bool match = false;
    if (cd != NULL && pw != NULL) {
        memcpy(pw, password, len);
        pw[len] = '\0';
        memset(cd, 0, sizeof *cd);
        const char *h = crypt_rn(pw, hash, cd, sizeof *cd);
        match = h != NULL && strlen(h) == hl && sodium_memcmp(h, hash, hl) == 0;
    }
    sodium_free(pw);
    sodium_free(cd);
    return match;
}
