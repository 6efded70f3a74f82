/* passwd: password hashes for the directory (issue #4): standard crypt strings that
 * Dovecot and other tools read too, yescrypt ("$y$...", libxcrypt) or argon2id
 * ("$argon2id$...", libsodium). Both are slow on purpose: call them off the event loop. */
#ifndef SLUICE_DIR_PASSWD_H
#define SLUICE_DIR_PASSWD_H

#include <stdbool.h>
#include <stddef.h>

enum passwd_scheme { PASSWD_YESCRYPT, PASSWD_ARGON2ID };

#define PASSWD_HASH_MAX 256 /* octets of a hash string, NUL included */
#define PASSWD_MAX 511      /* octets of a password: libxcrypt's limit (CRYPT_MAX_PASSPHRASE_SIZE,
                               NUL included), for both schemes alike */

/* Hash the len octets of password into out (a NUL-terminated crypt string). 0, or -1 with
 * errno: EINVAL for a password with a NUL byte or longer than PASSWD_MAX, ENOMEM, or the
 * library's own failure (EIO). */
int passwd_hash(enum passwd_scheme scheme, const char *password, size_t len,
                char out[PASSWD_HASH_MAX]);

/* Does password match hash? False for every hash it cannot read (empty, "*", "!", a scheme
 * it does not know, a truncated string): a locked or broken account never matches. The
 * comparison takes the same time wherever the strings differ. */
bool passwd_verify(const char *hash, const char *password, size_t len);

#endif
