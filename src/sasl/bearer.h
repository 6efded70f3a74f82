/* sasl/bearer: the client messages of OAUTHBEARER (RFC 7628 §3.1) and XOAUTH2 (Google's
 * "user=...^Aauth=Bearer ...^A^A"), and OAUTHBEARER's error challenge (§3.2.2). Pure: the
 * token itself is checked by sasl/jwt. */
#ifndef SLUICE_SASL_BEARER_H
#define SLUICE_SASL_BEARER_H

#include <stddef.h>
#include <stdint.h>

#include "sasl/plain.h"

#define SASL_TOKEN_MAX 8192 /* octets of a bearer token (AUTH lines are capped at 12288, G4) */

struct sasl_bearer {
    char authzid[SASL_ID_MAX + 1];   /* OAUTHBEARER gs2 "a=" / XOAUTH2 "user="; "" when absent */
    char token[SASL_TOKEN_MAX + 1];
    size_t token_len;
};

enum sasl_bearer_status {
    SASL_BEARER_OK,
    SASL_BEARER_SYNTAX,   /* malformed message: 501 5.5.2 */
    SASL_BEARER_NO_TOKEN, /* well-formed but no "auth=Bearer <token>" (or scheme not Bearer) */
    SASL_BEARER_TOO_LONG, /* a field over its maximum */
    SASL_BEARER_DUMMY,    /* OAUTHBEARER: the single ^A the client sends after an error
                             challenge (§3.2.3); answer 535 */
};

enum sasl_bearer_status sasl_oauthbearer_parse(const uint8_t *msg, size_t len,
                                               struct sasl_bearer *out);
enum sasl_bearer_status sasl_xoauth2_parse(const uint8_t *msg, size_t len, struct sasl_bearer *out);

/* The JSON error of §3.2.2, {"status":"invalid_token"}; with scope non-NULL also "scope".
 * Length written (NUL-terminated), 0 when out is too small. */
size_t sasl_oauthbearer_error(const char *scope, char *out, size_t outlen);

#endif
