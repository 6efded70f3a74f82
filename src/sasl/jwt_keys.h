/* jwt_keys: loading the bearer token keys of the auth block (src/sasl/jwt_keys.c). */
#ifndef SLUICE_SASL_JWT_KEYS_H
#define SLUICE_SASL_JWT_KEYS_H

#include <stddef.h>

struct conf_auth;
struct jwt_key;

/* Load the keys a names, all or nothing: 0 with *keys (*n of them; NULL and 0 when none are
 * configured), or -1 with "token-key FILE: why" in err. */
int jwt_keys_load(const struct conf_auth *a, struct jwt_key **keys, size_t *n, char *err,
                  size_t errlen);

/* Free keys, wiping the HS256 secrets. */
void jwt_keys_free(struct jwt_key *keys, size_t n);

#endif
