/* jwt_keys: the bearer token keys the configuration names, read from their files: HS256
 * secrets and RS256/ES256 PEM public keys, for sasl/jwt to verify tokens with. The master
 * loads them to check a configuration before it starts workers (a key that cannot be used
 * stops the start or the reload), each worker for its sessions. Reads files; calls OpenSSL. */
#include "sasl/jwt_keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "conf/conf.h"
#include "sasl/jwt.h"

#define JWT_KEY_FILE_MAX (64 * 1024)

/* One key file: an HS256 secret (the file's bytes, a final newline dropped) or a PEM public
 * key. NULL, or why the key cannot be used. */
static const char *jwt_key_load(const struct conf_token_key *ck, struct jwt_key *k)
{
    FILE *f = fopen(ck->file, "rb");
    int open_errno = errno;
    uint8_t *buf = malloc(JWT_KEY_FILE_MAX);
    size_t n = f != NULL && buf != NULL ? fread(buf, 1, JWT_KEY_FILE_MAX, f) : 0;
    if (f != NULL)
        fclose(f);
    *k = (struct jwt_key){.alg = ck->alg == CONF_TOKEN_HS256   ? JWT_HS256
                                 : ck->alg == CONF_TOKEN_RS256 ? JWT_RS256
                                                               : JWT_ES256};
    snprintf(k->kid, sizeof k->kid, "%s", ck->kid != NULL ? ck->kid : "");
    const char *why = NULL;
    if (f == NULL)
        why = strerror(open_errno);
    else if (buf == NULL)
        why = "out of memory";
    else if (n == 0 || n >= JWT_KEY_FILE_MAX)
        why = "empty, unreadable or over 64 KiB";
    else if (k->alg == JWT_HS256) {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        if (n >= 32) { /* RFC 7518 §3.2: a key at least as long as the hash */
            k->secret = buf;
            k->secret_len = n;
            return NULL;
        }
        why = "an HS256 secret must be at least 32 octets (RFC 7518 §3.2)";
    } else {
        BIO *bio = BIO_new_mem_buf(buf, (int)n);
        k->pkey = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        int type = k->pkey != NULL ? EVP_PKEY_get_base_id(k->pkey) : 0;
        if (!((k->alg == JWT_RS256 && type == EVP_PKEY_RSA) ||
              (k->alg == JWT_ES256 && type == EVP_PKEY_EC))) {
            EVP_PKEY_free(k->pkey);
            k->pkey = NULL;
            why = k->alg == JWT_RS256 ? "not a PEM RSA public key" : "not a PEM EC public key";
        }
    }
    if (buf != NULL)
        OPENSSL_cleanse(buf, n); /* a refused HS256 secret is still a secret */
    free(buf);
    return why;
}

void jwt_keys_free(struct jwt_key *keys, size_t n)
{
    for (size_t i = 0; keys != NULL && i < n; i++) {
        EVP_PKEY_free(keys[i].pkey);
        if (keys[i].secret != NULL)
            OPENSSL_cleanse((void *)keys[i].secret, keys[i].secret_len);
        free((void *)keys[i].secret);
    }
    free(keys);
}

int jwt_keys_load(const struct conf_auth *a, struct jwt_key **keys, size_t *n, char *err,
                  size_t errlen)
{
    *keys = NULL;
    *n = 0;
    if (a->ntoken_keys == 0)
        return 0;
    struct jwt_key *k = calloc(a->ntoken_keys, sizeof *k);
    if (k == NULL) {
        snprintf(err, errlen, "token keys: out of memory");
        return -1;
    }
    for (size_t i = 0; i < a->ntoken_keys; i++) {
        const char *why = jwt_key_load(&a->token_keys[i], &k[i]);
        if (why != NULL) {
            snprintf(err, errlen, "token-key %s: %s", a->token_keys[i].file, why);
            jwt_keys_free(k, i);
            return -1;
        }
    }
    *keys = k;
    *n = a->ntoken_keys;
    return 0;
}
