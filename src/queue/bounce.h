/* bounce: the pure composer of RFC 3464 delivery status notifications (multipart/report,
 * RFC 6522) for failed and delayed recipients, and the RFC 3461 §4.1 rule for whether the
 * sender asked for one. The queue manager decides when to bounce and sends the result with
 * the null reverse-path (RFC 3464 §2); nothing here does I/O. */
#ifndef SLUICE_QUEUE_BOUNCE_H
#define SLUICE_QUEUE_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver/agent.h"
#include "queue/envelope.h"

#define BOUNCE_BOUNDARY_MAX 70 /* RFC 2046 §5.1.1: 1 to 70 bchars */

/* One recipient to report on; every pointer is the caller's. */
struct bounce_rcpt {
    const struct queue_rcpt *rcpt;
    const struct deliver_result *result; /* enhanced code for Status:, text for the human part */
    const char *remote_mta;              /* host name, written as "dns; X"; NULL when none */
    const char *diagnostic;              /* "smtp; 550 5.1.1 ..." or NULL */
};

struct bounce_input {
    const struct queue_envelope *env;
    const char *queue_id;
    const char *reporting_mta;   /* our host name */
    int64_t now;                 /* seconds since the epoch: Date and Last-Attempt-Date */
    const char *boundary;        /* caller-chosen, 1-70 RFC 2046 bchars, absent from original */
    bool delay;                  /* a delay warning (Action: delayed) rather than a failure */
    const char *tag;             /* NULL, or [0-9A-Z]+ that tells apart several DSNs about
                                    one message: the Message-ID is <queue_id.bounce.tag@mta> */
    const struct bounce_rcpt *rcpts;
    size_t nrcpts;
    const unsigned char *original; /* what RET asks for: the message or its header section */
    size_t original_len;
    bool original_is_headers;    /* attach as text/rfc822-headers rather than message/rfc822 */
};

/* RFC 3461 §4.1: does r's NOTIFY ask for a failure DSN (delay false) or a delay warning
 * (delay true)? Never for the null sender (RFC 5321 §4.5.5) nor NOTIFY=NEVER. Without
 * NOTIFY we take the FAILURE reading the RFC allows, so no unrequested delay warnings. */
bool bounce_wanted(const struct queue_envelope *env, const struct queue_rcpt *r, bool delay);

/* Writes the whole DSN (header section and body, CRLF line ends) into out[0..cap); out may
 * be NULL when cap is 0. Returns 0 and sets *len; ENOSPC when cap is too small, with *len
 * the size needed (nothing past cap is written); EINVAL on bad input: no recipients, the
 * null sender, a NULL or empty required value, a control byte (CR, LF...) in any value, a
 * bad boundary or one that occurs in the original, a time before 1970 or after 9999. */
int bounce_compose(const struct bounce_input *in, unsigned char *out, size_t cap, size_t *len);

#endif
