/* sasl/plain: the PLAIN mechanism's message (RFC 4616 §2) and the two answers of LOGIN (the
 * widely deployed "Username:"/"Password:" exchange, draft-murchison-sasl-login). Pure: the
 * caller decodes base64 and checks the password. */
#ifndef SLUICE_SASL_PLAIN_H
#define SLUICE_SASL_PLAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SASL_ID_MAX 320        /* octets of an authorization or authentication identity */
#define SASL_PASSWORD_MAX 511  /* octets of a password (passwd.h PASSWD_MAX) */

struct sasl_plain {
    char authzid[SASL_ID_MAX + 1];   /* "" when absent */
    char authcid[SASL_ID_MAX + 1];
    char password[SASL_PASSWORD_MAX + 1];
    size_t password_len;
};

enum sasl_plain_status {
    SASL_PLAIN_OK,
    SASL_PLAIN_SPLIT,     /* not exactly three NUL-separated fields: 501 5.5.2 (G2) */
    SASL_PLAIN_EMPTY,     /* empty authcid or password: 535 5.7.8 (G2) */
    SASL_PLAIN_TOO_LONG,  /* a field over its maximum: 535 5.7.8 */
    SASL_PLAIN_BAD_UTF8,  /* an identity that is not UTF-8 or holds a control character */
};

/* message: the decoded response, authzid NUL authcid NUL passwd. */
enum sasl_plain_status sasl_plain_parse(const uint8_t *message, size_t len, struct sasl_plain *out);

/* One LOGIN answer (user name or password): copied NUL-terminated into out[outlen]. Refuses
 * (SASL_PLAIN_EMPTY, _TOO_LONG, or _SPLIT for a NUL inside) what PLAIN would refuse;
 * _TOO_LONG is over SASL_PASSWORD_MAX octets or not fitting out. On refusal out is "". */
enum sasl_plain_status sasl_login_field(const uint8_t *in, size_t len, char *out, size_t outlen,
                                        size_t *outn);

/* The LOGIN user name: sasl_login_field capped at SASL_ID_MAX, then held to the identity rule
 * of PLAIN (SASL_PLAIN_BAD_UTF8), so LOGIN admits no name PLAIN would refuse. */
enum sasl_plain_status sasl_login_user(const uint8_t *in, size_t len, char *out, size_t outlen,
                                       size_t *outn);

/* An identity as PLAIN, SCRAM and the bearer mechanisms accept it: strict UTF-8 (RFC 3629)
 * without C0, DEL or C1 control characters. The empty string is valid. */
bool sasl_identity_valid(const uint8_t *s, size_t len);

/* A saslname of SCRAM (RFC 5802 §5.1) or a GS2 authzid (RFC 5801 §4), where "=2C" stands for
 * ',' and "=3D" for '=', decoded into out (SASL_ID_MAX + 1 octets). SASL_PLAIN_EMPTY for "",
 * _TOO_LONG over SASL_ID_MAX decoded octets, _BAD_UTF8 for any other '=' or a raw ',' or a
 * result that is not a valid identity. out is "" unless OK. */
enum sasl_plain_status sasl_saslname_decode(const char *s, size_t n, char out[SASL_ID_MAX + 1]);

#endif
