/* sasl/scram: server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677), with
 * channel bindings tls-exporter (RFC 9266) and tls-server-end-point (RFC 5929 §4). Pure (uses
 * libcrypto only for HMAC, SHA-256 and PBKDF2): the caller supplies random bytes, the stored
 * credentials and the channel binding data, and does the base64 of the SMTP exchange itself.
 *
 * Exchange: client-first -> sasl_scram_client_first; caller looks up st->user's credentials
 * (for an unknown user: made-up ones, so the exchange fails only at the proof, G11) ->
 * sasl_scram_server_first (334 with the out text) -> client-final -> sasl_scram_client_final
 * (334 with the server-final "v=..." text, the client answers empty, then 235). Passwords are
 * used as given (no SASLprep; ASCII passwords are unaffected). */
#ifndef SLUICE_SASL_SCRAM_H
#define SLUICE_SASL_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sasl/plain.h"

#define SCRAM_KEY_LEN 32              /* SHA-256 */
#define SCRAM_SALT_MAX 64
#define SCRAM_ITERATIONS_DEFAULT 10000 /* RFC 7677 §4: at least 4096 */
#define SCRAM_ITERATIONS_MIN 4096
#define SCRAM_ITERATIONS_MAX 1000000
#define SCRAM_RANDOM_MIN 18            /* random octets for our nonce part */
#define SCRAM_RANDOM_MAX 96            /* their base64 fills SCRAM_NONCE_MAX */
#define SCRAM_NONCE_MAX 128            /* octets of the client's or our nonce part */
#define SCRAM_MSG_MAX 1024             /* octets of any one SCRAM message */
#define SCRAM_CREDS_TEXT_MAX 256       /* sasl_scram_creds_format output incl. NUL */
#define SCRAM_CB_DATA_MAX 64           /* channel binding data octets */

struct sasl_scram_creds {
    uint8_t salt[SCRAM_SALT_MAX];
    size_t salt_len;
    uint32_t iterations;
    uint8_t stored_key[SCRAM_KEY_LEN];
    uint8_t server_key[SCRAM_KEY_LEN];
};

/* Derive stored credentials from a password (RFC 5802 §3). 0, or -1 for a bad argument
 * (empty or over-long salt, iterations outside SCRAM_ITERATIONS_MIN..MAX, password over
 * SASL_PASSWORD_MAX). */
int sasl_scram_creds_make(const char *password, size_t len, const uint8_t *salt, size_t salt_len,
                          uint32_t iterations, struct sasl_scram_creds *out);

/* Text form kept in the directory: "SCRAM-SHA-256$<iterations>:<b64 salt>$<b64 StoredKey>:
 * <b64 ServerKey>" (the form Dovecot uses). format: length written, 0 when out is too
 * small. parse: 0, or -1 on any deviation. */
size_t sasl_scram_creds_format(const struct sasl_scram_creds *c, char *out, size_t outlen);
int sasl_scram_creds_parse(const char *text, size_t len, struct sasl_scram_creds *out);

enum sasl_scram_cb {
    SASL_SCRAM_CB_NONE,              /* gs2 flag "n": client does not support binding */
    SASL_SCRAM_CB_NOT_USED,          /* "y": client supports it, thinks the server does not */
    SASL_SCRAM_CB_TLS_EXPORTER,      /* "p=tls-exporter" */
    SASL_SCRAM_CB_TLS_SERVER_END_POINT, /* "p=tls-server-end-point" */
};

enum sasl_scram_status {
    SASL_SCRAM_OK,
    SASL_SCRAM_SYNTAX,   /* malformed message: 501 5.5.2 */
    SASL_SCRAM_FAIL,     /* wrong proof, nonce or binding; downgrade ("y" while we offered
                            -PLUS, RFC 5802 §6); "p=" on the non-PLUS mechanism; an unknown
                            binding type; unsupported extension "m=": 535 5.7.8 */
};

struct sasl_scram {
    bool plus;                        /* the mechanism is SCRAM-SHA-256-PLUS */
    bool plus_offered;                /* we advertised -PLUS (TLS is on) */
    enum sasl_scram_cb cb;
    char authzid[SASL_ID_MAX + 1];    /* "" when absent */
    char user[SASL_ID_MAX + 1];       /* the saslname decoded (=2C ',', =3D '=') */
    /* private: the messages the proof covers */
    char gs2_header[SASL_ID_MAX + 64];
    size_t gs2_header_len;
    char client_first_bare[SCRAM_MSG_MAX];
    size_t client_first_bare_len;
    char server_first[SCRAM_MSG_MAX];
    size_t server_first_len;
    char nonce[2 * SCRAM_NONCE_MAX + 1]; /* client nonce then ours */
    size_t client_nonce_len, nonce_len;
};

/* Start an exchange: st is reset. On SYNTAX or FAIL the exchange is over (server-first
 * refuses to follow). The -PLUS mechanism needs a "p" flag and plus_offered; "p" on the
 * plain mechanism, "y" while -PLUS was offered, a binding type other than tls-exporter or
 * tls-server-end-point, and "m=" are SASL_SCRAM_FAIL (RFC 5802 §5.1, §6). */
enum sasl_scram_status sasl_scram_client_first(struct sasl_scram *st, bool plus, bool plus_offered,
                                               const uint8_t *msg, size_t len);

/* random: raw bytes (SCRAM_RANDOM_MIN..SCRAM_RANDOM_MAX) for our nonce part, base64-encoded
 * here (printable without ','). Writes the server-first message NUL-terminated to out; *outn
 * its length. SASL_SCRAM_FAIL, with out "", when called out of turn (client-first not accepted,
 * or server-first already sent), for bad creds or random_len, or when out is too small
 * (SCRAM_MSG_MAX always suffices). */
enum sasl_scram_status sasl_scram_server_first(struct sasl_scram *st,
                                               const struct sasl_scram_creds *creds,
                                               const uint8_t *random, size_t random_len,
                                               char *out, size_t outlen, size_t *outn);

/* sasl_scram_server_first with our nonce part given as text (RFC 5802 §7 printable, 1 to
 * SCRAM_NONCE_MAX octets) instead of random bytes: for reproducing fixed exchanges such as
 * RFC 7677 §3 in tests. The daemon uses sasl_scram_server_first. */
enum sasl_scram_status sasl_scram_server_first_nonce(struct sasl_scram *st,
                                                     const struct sasl_scram_creds *creds,
                                                     const char *snonce, size_t snonce_len,
                                                     char *out, size_t outlen, size_t *outn);

/* cb_data: the binding data for st->cb (NULL/0 for NONE or NOT_USED). On OK, out holds the
 * server-final message "v=<ServerSignature>". The proof is compared in constant time. The
 * exchange ends here whatever the outcome: a second call is SASL_SCRAM_FAIL. FAIL also when
 * cb_data is missing or over SCRAM_CB_DATA_MAX for a "p" binding, or out is too small
 * (SCRAM_MSG_MAX always suffices). */
enum sasl_scram_status sasl_scram_client_final(struct sasl_scram *st,
                                               const struct sasl_scram_creds *creds,
                                               const uint8_t *cb_data, size_t cb_len,
                                               const uint8_t *msg, size_t len, char *out,
                                               size_t outlen, size_t *outn);

#endif
