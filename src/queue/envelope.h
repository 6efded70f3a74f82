/* envelope: what the queue keeps about a message besides its bytes, and its on-disk
 * encoding. The encoding is versioned, length-prefixed and checksummed (DESIGN §4); the
 * decoder is pure and fails closed on anything it does not fully understand. */
#ifndef SLUICE_QUEUE_ENVELOPE_H
#define SLUICE_QUEUE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/proto.h"

struct queue_rcpt {
    char *addr;               /* "local@domain" as accepted, or "postmaster" */
    unsigned notify;          /* PROTO_NOTIFY_* bits, 0 when not given */
    char *orcpt;              /* decoded ORCPT, NULL when not given */
};

struct queue_envelope {
    char *sender;             /* "" for the null sender */
    struct queue_rcpt *rcpts;
    size_t nrcpts;
    enum proto_body body;
    bool smtputf8;
    enum proto_ret ret;
    char *envid;              /* NULL when not given */
    char *auth;               /* AUTH= value, NULL when not given */
    char *helo;               /* the client's EHLO/HELO argument */
    char *client_addr;        /* "192.0.2.1" / "2001:db8::1" */
    char *listener;           /* name of the listener that accepted it */
    int64_t arrival;          /* seconds since the epoch */
};

void queue_envelope_free(struct queue_envelope *env); /* frees the members, not env itself,
                                                         and leaves *env empty */

/* Bounds the decoder enforces before it allocates anything (and the encoder too, so that
 * nothing is written that could not be read back). */
#define QUEUE_ENVELOPE_MAX (1024 * 1024) /* bytes of one encoded envelope, checksum included */
#define QUEUE_RCPTS_MAX 100000           /* recipients of one envelope */

enum queue_envelope_status {
    QUEUE_ENVELOPE_OK,
    QUEUE_ENVELOPE_BAD_VALUE, /* encode: CR, LF or NUL in a value (B4), a NULL sender or
                                 recipient address, an enum or NOTIFY bit out of range */
    QUEUE_ENVELOPE_TOO_BIG,   /* over QUEUE_ENVELOPE_MAX bytes or QUEUE_RCPTS_MAX recipients */
    QUEUE_ENVELOPE_SPACE,     /* encode: cap is too small; *len is the size needed */
    QUEUE_ENVELOPE_CORRUPT,   /* decode: wrong magic or version, bad structure, a value the
                                 encoder would refuse, trailing bytes, or a checksum mismatch */
    QUEUE_ENVELOPE_NOMEM,     /* decode: an allocation failed */
};

/* Pure: encode env into out[0..cap) (out may be NULL when cap is 0). *len is set to the size
 * of the encoding on OK and on SPACE, so a first call with cap 0 sizes the buffer. The
 * encoding: "SENV", version, total length, the fields in a fixed order (strings as a
 * presence byte, a 32-bit length and the bytes), then a CRC-32 of everything before it;
 * integers are big-endian. doc/QUEUE.md has the byte layout. */
enum queue_envelope_status queue_envelope_encode(const struct queue_envelope *env,
                                                 unsigned char *out, size_t cap, size_t *len);

/* Pure but allocating: decode exactly len bytes into *env, whose members are malloc'd (free
 * them with queue_envelope_free). Fails closed: anything but an exact, checksummed encoding
 * that queue_envelope_encode could have produced is CORRUPT, and *env is left empty. */
enum queue_envelope_status queue_envelope_decode(const unsigned char *in, size_t len,
                                                 struct queue_envelope *env);

#endif
