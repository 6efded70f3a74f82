/* data: the message-body reader for DATA (dot-stuffed) and BDAT (counted chunks).
 *
 * Called by the session (session_data.c) with the bytes read from the client; the body
 * bytes it returns go to the spool file. Pure: no I/O, no allocation, constant memory,
 * resumable at any byte, so feeding the same input in one piece or split anywhere gives the
 * same output, error, size and end position (the unit tests and fuzz_data check this).
 *
 * Invariants:
 * - End of data only at CR LF "." CR LF where both CRLFs are real (RFC 5321 §4.1.1.4); the
 *   CRLF ending the DATA command counts as the first one, so ".\r\n" at the start is an empty
 *   message. A line started by a bare CR or LF can never end the data (CVE-2023-51764), in
 *   any mode, even when that bare byte was normalised to CRLF.
 * - In DATA mode a line beginning with "." loses that dot (RFC 5321 §4.5.2), including lines
 *   started by a normalised bare CR/LF.
 * - At most one byte is ever held back between calls (a CR waiting for its LF); the dot of
 *   a line start is never output, so nothing else needs holding.
 * - Every state change depends only on the input, never on whether an error was seen:
 *   after the first error the same machine runs with output switched off, so the counters
 *   keep growing and the end of data is found exactly where it would have been.
 *
 * Accounting (documented in data.h): line length counts bytes as received (a stuffing dot
 * included) plus 2 for the line end, whatever the line end was; size and header length
 * count output bytes, CRLF included; the header section ends at the first empty output
 * line, which is not counted in it. */
#include "smtp/data.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum data_state {
    DATA_ST_BOL,       /* start of a line after a real CRLF (or at the start of data) */
    DATA_ST_BOL_LOOSE, /* start of a line after a bare CR or LF: a dot here ends nothing */
    DATA_ST_DOT,       /* DATA: "." at the start of a line after a real CRLF */
    DATA_ST_DOT_CR,    /* DATA: ".\r" there; LF ends the data */
    DATA_ST_LINE,      /* DATA: a stuffing dot was removed; the line's output starts here */
    DATA_ST_MID,       /* inside a line */
    DATA_ST_CR,        /* a CR was read and held back; is it followed by LF? */
    DATA_ST_DONE,      /* DATA: end of data seen; BDAT: finished */
};

#define DATA_RCV_OFF 0xff /* rcv: not matching a "Received" field name */
#define DATA_RCV_NAME 8   /* rcv: "received" matched, now *WSP ":" (RFC 5322 §4.5.7) */

static const char data_received[] = "received";

static void data_set_error(struct data_reader *r, enum data_error e)
{
    if (r->error == DATA_OK)
        r->error = e;
}

static uint64_t data_room(uint64_t used, uint64_t max)
{
    return used < max ? max - used : 0;
}

/* Emit n body bytes, counting them. Content bytes count toward the line length; line ends
 * do not. When a limit falls inside the run, the bytes before it still come out so that
 * the output is the same however the input was split. */
static void data_put(struct data_reader *r, unsigned char **o, const unsigned char *src, size_t n,
                     bool content)
{
    if (r->error == DATA_OK) {
        uint64_t ok = n;
        enum data_error why = DATA_OK;
        uint64_t room;
        if (content && r->lim.max_line != 0 && !(r->flags & DATA_F_BINARY)) {
            room = data_room(r->line_len + 2, r->lim.max_line);
            if (room < ok) {
                ok = room;
                why = DATA_ERR_LINE_TOO_LONG;
            }
        }
        if (r->in_header && r->lim.max_header != 0) {
            room = data_room(r->header_len, r->lim.max_header);
            if (room < ok) {
                ok = room;
                why = DATA_ERR_HEADER_TOO_BIG;
            }
        }
        if (r->lim.max_size != 0) {
            room = data_room(r->size, r->lim.max_size);
            if (room < ok) {
                ok = room;
                why = DATA_ERR_TOO_BIG;
            }
        }
        if (ok != 0) {
            memcpy(*o, src, (size_t)ok);
            *o += ok;
        }
        r->error = why;
    }
    if (content)
        r->line_len += n;
    r->size += n;
    if (r->in_header)
        r->header_len += n;
}

/* The stuffing dot is removed, but it was received, so it counts toward the line length.
 * It is counted only once the line is known not to be the end of data. */
static void data_count_dot(struct data_reader *r)
{
    r->line_len++;
    if (r->lim.max_line != 0 && !(r->flags & DATA_F_BINARY) && r->line_len + 2 > r->lim.max_line)
        data_set_error(r, DATA_ERR_LINE_TOO_LONG);
}

static void data_count_hop(struct data_reader *r)
{
    if (r->received < UINT_MAX)
        r->received++;
    if (r->lim.max_received != 0 && r->received > r->lim.max_received)
        data_set_error(r, DATA_ERR_TOO_MANY_HOPS);
}

/* A line ends: with a real CRLF (strict) or a bare CR/LF taken as one. The line end always
 * comes out as CRLF. An empty line ends the header section and is not part of it. */
static void data_end_line(struct data_reader *r, unsigned char **o, bool strict)
{
    static const unsigned char crlf[2] = {'\r', '\n'};
    if (r->in_header && !r->line_out)
        r->in_header = false;
    data_put(r, o, crlf, 2, false);
    r->line_len = 0;
    r->line_out = false;
    r->rcv = DATA_RCV_OFF;
    r->state = strict ? DATA_ST_BOL : DATA_ST_BOL_LOOSE;
}

/* A held-back CR turned out not to be followed by LF. In BINARYMIME it is an ordinary
 * byte; otherwise it is an error, or with DATA_F_NORMALISE a line end. */
static void data_bare_cr(struct data_reader *r, unsigned char **o)
{
    static const unsigned char cr = '\r';
    r->rcv = DATA_RCV_OFF;
    if (r->flags & DATA_F_BINARY) {
        r->line_out = true;
        data_put(r, o, &cr, 1, true);
        r->state = DATA_ST_MID;
        return;
    }
    if (!(r->flags & DATA_F_NORMALISE))
        data_set_error(r, DATA_ERR_BARE_CR);
    data_end_line(r, o, false);
}

/* A line's output starts here (after any stuffing dot): a header line may be a "Received"
 * field. A continuation line (RFC 5322 §2.2.3) starts with WSP, so it never matches. */
static void data_begin_line(struct data_reader *r)
{
    if (r->in_header)
        r->rcv = 0;
    r->state = DATA_ST_MID;
}

/* End of the run of ordinary bytes starting at p: the next CR, and unless BINARYMIME the
 * next LF or NUL. memchr is vectorised in libc, and lines are short, so three scans of one
 * line cost less than a byte loop. */
static const unsigned char *data_scan(const struct data_reader *r, const unsigned char *p,
                                      const unsigned char *end)
{
    const unsigned char *stop = end;
    const unsigned char *hit;
    if (!(r->flags & DATA_F_BINARY)) {
        hit = memchr(p, '\n', (size_t)(stop - p));
        if (hit != NULL)
            stop = hit;
    }
    hit = memchr(p, '\r', (size_t)(stop - p));
    if (hit != NULL)
        stop = hit;
    if (!(r->flags & (DATA_F_BINARY | DATA_F_ALLOW_NUL))) {
        hit = memchr(p, 0, (size_t)(stop - p));
        if (hit != NULL)
            stop = hit;
    }
    return stop;
}

void data_reader_init(struct data_reader *r, const struct data_limits *lim, unsigned flags)
{
    memset(r, 0, sizeof(*r));
    if (lim != NULL)
        r->lim = *lim;
    r->flags = flags;
    r->error = DATA_OK;
    r->state = DATA_ST_BOL;
    r->in_header = true;
    r->rcv = DATA_RCV_OFF;
}

size_t data_reader_feed(struct data_reader *r, const unsigned char *in, size_t inlen,
                        unsigned char *out, size_t *outlen, bool *done)
{
    const unsigned char *p = in;
    const unsigned char *const end = in + inlen;
    const bool dotted = (r->flags & DATA_F_DOTTED) != 0;
    unsigned char *o = out;
    unsigned char c;

    *done = false;
    if (r->state == DATA_ST_DONE) {
        *outlen = 0;
        *done = dotted;
        return 0;
    }
    while (p < end) {
        c = *p;
        switch (r->state) {
        case DATA_ST_BOL:
        case DATA_ST_BOL_LOOSE:
            if (dotted && c == '.') {
                p++;
                if (r->state == DATA_ST_BOL) {
                    r->state = DATA_ST_DOT;
                } else {
                    data_count_dot(r);
                    r->state = DATA_ST_LINE;
                }
                break;
            }
            data_begin_line(r);
            break;
        case DATA_ST_LINE:
            data_begin_line(r);
            break;
        case DATA_ST_DOT:
            if (c == '\r') {
                p++;
                r->state = DATA_ST_DOT_CR;
                break;
            }
            data_count_dot(r);
            data_begin_line(r);
            break;
        case DATA_ST_DOT_CR:
            if (c == '\n') {
                p++;
                r->state = DATA_ST_DONE;
                *done = true;
                *outlen = (size_t)(o - out);
                return (size_t)(p - in);
            }
            data_count_dot(r);
            data_bare_cr(r, &o);
            break;
        case DATA_ST_CR:
            if (c == '\n') {
                p++;
                data_end_line(r, &o, true);
            } else {
                data_bare_cr(r, &o);
            }
            break;
        case DATA_ST_MID:
            if (r->rcv != DATA_RCV_OFF) {
                /* At most nine bytes per header line go through here. */
                if (r->rcv < DATA_RCV_NAME && (c | 0x20) == (unsigned char)data_received[r->rcv]) {
                    r->rcv++;
                } else if (r->rcv == DATA_RCV_NAME && (c == ' ' || c == '\t')) {
                    ;
                } else if (r->rcv == DATA_RCV_NAME && c == ':') {
                    r->rcv = DATA_RCV_OFF;
                    data_count_hop(r);
                } else {
                    r->rcv = DATA_RCV_OFF;
                    break;
                }
                p++;
                r->line_out = true;
                data_put(r, &o, &c, 1, true);
                break;
            }
            {
                const unsigned char *stop = data_scan(r, p, end);
                if (stop != p) {
                    r->line_out = true;
                    data_put(r, &o, p, (size_t)(stop - p), true);
                    p = stop;
                    if (p == end)
                        break;
                }
            }
            c = *p++;
            if (c == '\r') {
                if (p < end && *p == '\n') {
                    p++;
                    data_end_line(r, &o, true);
                } else {
                    r->state = DATA_ST_CR;
                }
            } else if (c == '\n') {
                if (!(r->flags & DATA_F_NORMALISE))
                    data_set_error(r, DATA_ERR_BARE_LF);
                data_end_line(r, &o, false);
            } else {
                data_set_error(r, DATA_ERR_NUL);
                r->line_out = true;
                data_put(r, &o, &c, 1, true);
            }
            break;
        default:
            abort(); /* DATA_ST_DONE is only set on the way out */
        }
    }
    *outlen = (size_t)(o - out);
    return (size_t)(p - in);
}

void data_reader_finish(struct data_reader *r, unsigned char *out, size_t *outlen)
{
    unsigned char *o = out;
    if (!(r->flags & DATA_F_DOTTED)) {
        if (r->state == DATA_ST_CR)
            data_bare_cr(r, &o);
        r->state = DATA_ST_DONE;
    }
    *outlen = (size_t)(o - out);
}
