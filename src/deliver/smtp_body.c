/* smtp_body: the outbound body encoder of the SMTP/LMTP client (deliver/smtp_client), for
 * DATA and BDAT. Pure: no I/O, no allocation.
 *
 * Invariants: the output holds no CR or LF outside a CRLF pair, whatever the input and
 * however it is split; with dots, no output line starts with a single "." except the final
 * ".\r\n", so the peer's end of data is exactly where ours is (HOSTILE-INPUTS J10); the only
 * state carried between chunks is "at a line start" and "a CR is pending".
 *
 * RFC 5321 §2.3.8 (CRLF only), §4.5.2 (transparency), §4.1.1.4 (end of data);
 * RFC 3030 §2 (BDAT carries the bytes without stuffing). */
#include "deliver/smtp_body.h"

void smtp_body_init(struct smtp_body_enc *e, unsigned flags)
{
    e->flags = flags;
    e->line_start = true;
    e->cr = false;
}

static size_t smtp_body_crlf(struct smtp_body_enc *e, unsigned char *out)
{
    out[0] = '\r';
    out[1] = '\n';
    e->line_start = true;
    e->cr = false;
    return 2;
}

size_t smtp_body_encode(struct smtp_body_enc *e, const unsigned char *in, size_t inlen,
                        unsigned char *out)
{
    size_t n = 0;

    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = in[i];

        if (e->cr) {
            /* CR LF passes; a CR followed by anything else was a bare CR. */
            n += smtp_body_crlf(e, out + n);
            if (c == '\n')
                continue;
        }
        if (c == '\r') {
            e->cr = true;
        } else if (c == '\n') {
            n += smtp_body_crlf(e, out + n);
        } else {
            if (c == '.' && e->line_start && (e->flags & SMTP_BODY_DOTS))
                out[n++] = '.';
            out[n++] = c;
            e->line_start = false;
        }
    }
    return n;
}

size_t smtp_body_finish(struct smtp_body_enc *e, unsigned char *out)
{
    size_t n = 0;

    if (e->cr || !e->line_start)
        n += smtp_body_crlf(e, out + n);
    if (e->flags & SMTP_BODY_DOTS) {
        out[n++] = '.';
        out[n++] = '\r';
        out[n++] = '\n';
    }
    return n;
}
