/* data: the message-body reader for DATA and BDAT. Pure and resumable: the caller feeds
 * bytes as they arrive, split anywhere, and gets body bytes back.
 *
 * Invariants: in DATA mode the end of data is only CR LF "." CR LF (RFC 5321 §4.1.1.4);
 * the CRLF that precedes the dot belongs to the body, the rest of the terminator does not;
 * a line starting with "." has that dot removed (§4.5.2). Bare CR or LF never ends
 * anything (CVE-2023-51764/5/6): it is an error, or with DATA_F_NORMALISE it becomes CRLF.
 * After the first error no more body bytes are produced, but input is still consumed up to
 * the end of data, so the session stays in sync. Memory use is constant. With DATA_F_BINARY
 * bare CR and LF are kept as they are (never normalised) but still never start a line. */
#ifndef SLUICE_SMTP_DATA_H
#define SLUICE_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DATA_F_DOTTED 0x1     /* DATA: dot-stuffed, ends at CRLF.CRLF. Otherwise BDAT chunks */
#define DATA_F_BINARY 0x2     /* BODY=BINARYMIME: no line checks (bare CR/LF, NUL, length) */
#define DATA_F_NORMALISE 0x4  /* bare CR or LF becomes CRLF instead of an error */
#define DATA_F_ALLOW_NUL 0x8  /* keep NUL bytes instead of an error */

enum data_error {
    DATA_OK,
    DATA_ERR_BARE_CR,         /* CR not followed by LF */
    DATA_ERR_BARE_LF,         /* LF not preceded by CR */
    DATA_ERR_NUL,             /* a NUL byte (C11) */
    DATA_ERR_LINE_TOO_LONG,   /* a line longer than max_line, CRLF included (C7) */
    DATA_ERR_TOO_BIG,         /* more body bytes than max_size (C8) */
    DATA_ERR_HEADER_TOO_BIG,  /* the header section is longer than max_header (C10) */
    DATA_ERR_TOO_MANY_HOPS,   /* more than max_received "Received:" header fields (C12) */
};

/* Sizes are byte counts. max_line counts a line's bytes as received (a stuffing dot
 * included) plus 2 for its line end, whatever that was, so it is checked before the line
 * ends. max_size and max_header count bytes produced (after unstuffing and normalising, line
 * ends as CRLF); the header section runs from the start to the first empty line, which is
 * not part of it (a message without one is all header). */
struct data_limits {
    uint64_t max_size;      /* body bytes after unstuffing; 0 = no limit */
    size_t max_line;        /* RFC 5321 §4.5.3.1.6: 1000 with CRLF; 0 = no limit */
    size_t max_header;      /* bytes of the header section; 0 = no limit */
    unsigned max_received;  /* Received: fields allowed in the header section; 0 = no limit */
};

struct data_reader {
    struct data_limits lim;
    unsigned flags;
    enum data_error error;  /* first error seen */
    uint64_t size;          /* body bytes produced (and counted while discarding) */
    /* scanner state, private to data.c */
    int state;             /* enum data_state */
    uint64_t line_len;     /* current line, bytes as received (stuffing dot in, line end out) */
    uint64_t header_len;   /* header-section bytes produced (and counted while discarding) */
    unsigned received;     /* Received: fields seen in the header section (saturates) */
    bool in_header;        /* no empty line yet */
    bool line_out;         /* the current line has produced a byte: it is not empty */
    unsigned char rcv;     /* chars of "Received" matched at a header line start; 0xff: none */
};

/* Output space the caller must offer for inlen input bytes: held-back bytes of a previous
 * call may come out, and normalisation can double a byte. */
#define DATA_OUT_CAP(inlen) (2 * (inlen) + 8)

/* Start a message. lim may be NULL (no limits). */
void data_reader_init(struct data_reader *r, const struct data_limits *lim, unsigned flags);

/* Consume up to inlen bytes, writing body bytes to out (capacity >= DATA_OUT_CAP(inlen)) and
 * their count to *outlen. Returns the bytes consumed: all of them, except in DATA mode when
 * the end of data is reached, where it stops right after the final LF and sets *done (the
 * rest is the client's next command). Once done, it consumes nothing and sets *done again. */
size_t data_reader_feed(struct data_reader *r, const unsigned char *in, size_t inlen,
                        unsigned char *out, size_t *outlen, bool *done);

/* BDAT LAST: flush bytes held back at the end of the last chunk (a trailing CR, say) into
 * out (capacity >= DATA_OUT_CAP(0)) and apply the end-of-message checks. Later feeds consume
 * nothing. In DATA mode it does nothing: the end of data flushes everything. */
void data_reader_finish(struct data_reader *r, unsigned char *out, size_t *outlen);

#endif
