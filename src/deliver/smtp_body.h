/* smtp_body: message bytes as the SMTP client puts them on the wire. Pure and resumable:
 * the caller feeds the spooled message in chunks split anywhere and sends what comes out.
 *
 * Every bare LF and bare CR becomes CRLF, so the peer never sees a line end other than
 * CRLF (HOSTILE-INPUTS J10: we never act as the smuggling relay); with SMTP_BODY_DOTS a line
 * that starts with "." gets a second one (RFC 5321 §4.5.2) and the finish adds the
 * terminating ".\r\n" after making sure the data ends in CRLF (§4.1.1.4). Without it (BDAT,
 * RFC 3030) nothing is stuffed and the finish only completes the last line. */
#ifndef SLUICE_DELIVER_SMTP_BODY_H
#define SLUICE_DELIVER_SMTP_BODY_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_BODY_DOTS 0x1 /* DATA: dot-stuff and terminate with ".\r\n" */

struct smtp_body_enc {
    unsigned flags;
    /* private to smtp_body.c */
    bool line_start; /* the next byte starts a line */
    bool cr;         /* a CR was consumed and not yet written: its LF may be in the next chunk */
};

/* Output space smtp_body_encode may need for inlen input bytes (a held CR of the previous
 * call comes out, and each byte can double), and smtp_body_finish always fits in. */
#define SMTP_BODY_OUT_CAP(inlen) (2 * (inlen) + 2)
#define SMTP_BODY_FINISH_CAP 8

/* Start a message. */
void smtp_body_init(struct smtp_body_enc *e, unsigned flags);

/* Encode all of in[0..inlen) into out (capacity >= SMTP_BODY_OUT_CAP(inlen)); returns the
 * number of bytes written. */
size_t smtp_body_encode(struct smtp_body_enc *e, const unsigned char *in, size_t inlen,
                        unsigned char *out);

/* The end of the message: a held CR as CRLF, a CRLF when the last line is unfinished, and
 * ".\r\n" with SMTP_BODY_DOTS, into out (capacity >= SMTP_BODY_FINISH_CAP). Returns the
 * number of bytes written. An empty message stays empty (with DOTS: just ".\r\n"). */
size_t smtp_body_finish(struct smtp_body_enc *e, unsigned char *out);

#endif
