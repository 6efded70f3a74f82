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

void queue_envelope_free(struct queue_envelope *env); /* frees the members, not env itself */

#endif
