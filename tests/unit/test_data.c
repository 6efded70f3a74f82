/* Unit tests for smtp/data: the DATA/BDAT body reader.
 *
 * Every row of the table is replayed in one piece, split in two at every byte boundary, and
 * one byte at a time; each replay must give the same output, error, size, done flag and end
 * position (HOSTILE-INPUTS C6: "." "\r" "\n" in separate segments). Each feed gets an output
 * buffer of exactly DATA_OUT_CAP(len) bytes from malloc, so ASan catches any overrun.
 * Rows are named after HOSTILE-INPUTS C3..C12 and RFC 5321 §4.1.1.4 / §4.5.2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "smtp/data.h"

#define D DATA_F_DOTTED
#define B DATA_F_BINARY
#define N DATA_F_NORMALISE
#define Z DATA_F_ALLOW_NUL

/* A string literal with its length, NULs included. */
#define S(x) (x), (sizeof(x) - 1)
#define NOSIZE (-1)

struct data_case {
    const char *name;
    unsigned flags;
    struct data_limits lim;
    const char *in;
    size_t inlen;
    const char *out;
    size_t outlen;
    enum data_error error;
    bool done;
    size_t rest;    /* bytes left unconsumed at the end of data */
    long long size; /* r.size at the end; NOSIZE: not checked */
};

/* Smuggling rows (C3-C5): a header, a body, the smuggled "terminator", then commands that
 * must stay part of the body, then the real end of data and a pipelined QUIT. */
#define SM_HEAD "Subject: s\r\n\r\nbody"
#define SM_CMDS "MAIL FROM:<e@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nevil\r\n"
#define SM_END ".\r\nQUIT\r\n"
#define SMUGGLE(nm, fl, seq, outseq, err)                                                          \
    {                                                                                              \
        .name = nm, .flags = (fl), .in = S(SM_HEAD seq SM_CMDS SM_END), .out = S(outseq),          \
        .error = (err), .done = true, .rest = 6, .size = NOSIZE,                                   \
    }
/* With the check on, output stops at the error; with it off, the whole stream is one body. */
#define SM_ALL(outseq) SM_HEAD outseq SM_CMDS

static const struct data_case cases[] = {
    /* RFC 5321 §4.1.1.4: the terminator and what follows it. */
    {.name = "RFC 5321 §4.1.1.4: end of data at CRLF.CRLF, the CRLF before the dot is body",
     .flags = D,
     .in = S("Subject: hi\r\n\r\nbody\r\n.\r\n"),
     .out = S("Subject: hi\r\n\r\nbody\r\n"),
     .done = true,
     .size = 21},
    {.name = "RFC 5321 §4.1.1.4: .CRLF first is an empty message",
     .flags = D,
     .in = S(".\r\n"),
     .out = S(""),
     .done = true,
     .size = 0},
    {.name = "E: pipelined QUIT after the end of data is not consumed",
     .flags = D,
     .in = S("a\r\n.\r\nQUIT\r\n"),
     .out = S("a\r\n"),
     .done = true,
     .rest = 6,
     .size = 3},
    {.name = "E: pipelined QUIT after an empty message is not consumed",
     .flags = D,
     .in = S(".\r\nQUIT\r\n"),
     .out = S(""),
     .done = true,
     .rest = 6,
     .size = 0},
    {.name = "RFC 5321 §4.1.1.4: no terminator yet, everything consumed",
     .flags = D,
     .in = S("abc\r\n.."),
     .out = S("abc\r\n."),
     .size = 6},
    {.name = "C6: .CR at the end of input is held back",
     .flags = D,
     .in = S("a\r\n.\r"),
     .out = S("a\r\n"),
     .size = 3},
    {.name = "RFC 5321 §4.1.1.4: dot CRLF in mid-line is not the end",
     .flags = D,
     .in = S("a.\r\nb\r\n.\r\n"),
     .out = S("a.\r\nb\r\n"),
     .done = true,
     .size = 7},
    {.name = "RFC 5321 §4.1.1.4: space dot CRLF is not the end",
     .flags = D,
     .in = S("x\r\n .\r\n.\r\n"),
     .out = S("x\r\n .\r\n"),
     .done = true,
     .size = 7},
    /* RFC 5321 §4.5.2 transparency. */
    {.name = "RFC 5321 §4.5.2 C6: ..foo becomes .foo",
     .flags = D,
     .in = S("..foo\r\n.\r\n"),
     .out = S(".foo\r\n"),
     .done = true,
     .size = 6},
    {.name = "RFC 5321 §4.5.2 C6: a dot-space line loses the dot",
     .flags = D,
     .in = S(". \r\n.\r\n"),
     .out = S(" \r\n"),
     .done = true,
     .size = 3},
    {.name = "RFC 5321 §4.5.2: a stuffed lone dot",
     .flags = D,
     .in = S("a\r\n..\r\n.\r\n"),
     .out = S("a\r\n.\r\n"),
     .done = true,
     .size = 6},
    {.name = "RFC 5321 §4.5.2: three dots become two",
     .flags = D,
     .in = S("...\r\n.\r\n"),
     .out = S("..\r\n"),
     .done = true,
     .size = 4},
    {.name = "RFC 5321 §4.5.2: dots inside a line are kept",
     .flags = D,
     .in = S("a.b.\r\n.\r\n"),
     .out = S("a.b.\r\n"),
     .done = true,
     .size = 6},
    {.name = "RFC 3030: BDAT has no dot handling and never ends",
     .flags = 0,
     .in = S(".\r\n..foo\r\n.\r\n"),
     .out = S(".\r\n..foo\r\n.\r\n"),
     .size = 13},
    {.name = "RFC 3030: BDAT unterminated last line is kept",
     .flags = 0,
     .in = S("abc"),
     .out = S("abc"),
     .size = 3},

    /* C3/C4: bare LF/CR around a dot (CVE-2023-51764). */
    SMUGGLE("C3: LF.LF is not the end (bare LF rejected)", D, "\n.\n", SM_HEAD, DATA_ERR_BARE_LF),
    SMUGGLE("C3: LF.LF is not the end (normalised)", D | N, "\n.\n", SM_ALL("\r\n\r\n"), DATA_OK),
    SMUGGLE("C3: LF.LF is not the end (BINARYMIME)", D | B, "\n.\n", SM_ALL("\n.\n"), DATA_OK),
    SMUGGLE("C4: LF.CRLF is not the end (bare LF rejected)", D, "\n.\r\n", SM_HEAD,
            DATA_ERR_BARE_LF),
    SMUGGLE("C4: LF.CRLF is not the end (normalised)", D | N, "\n.\r\n", SM_ALL("\r\n\r\n"),
            DATA_OK),
    SMUGGLE("C4: LF.CRLF is not the end (BINARYMIME)", D | B, "\n.\r\n", SM_ALL("\n.\r\n"),
            DATA_OK),
    SMUGGLE("C4: CRLF.LF is not the end (bare LF rejected)", D, "\r\n.\n", SM_HEAD "\r\n",
            DATA_ERR_BARE_LF),
    SMUGGLE("C4: CRLF.LF is not the end (normalised)", D | N, "\r\n.\n", SM_ALL("\r\n\r\n"),
            DATA_OK),
    SMUGGLE("C4: CRLF.LF is not the end (BINARYMIME)", D | B, "\r\n.\n", SM_ALL("\r\n\n"), DATA_OK),
    SMUGGLE("C4: CR.CR is not the end (bare CR rejected)", D, "\r.\r", SM_HEAD, DATA_ERR_BARE_CR),
    SMUGGLE("C4: CR.CR is not the end (normalised)", D | N, "\r.\r", SM_ALL("\r\n\r\n"), DATA_OK),
    SMUGGLE("C4: CR.CR is not the end (BINARYMIME)", D | B, "\r.\r", SM_ALL("\r.\r"), DATA_OK),
    SMUGGLE("C4: CR.LF is not the end (bare CR rejected)", D, "\r.\n", SM_HEAD, DATA_ERR_BARE_CR),
    SMUGGLE("C4: CR.LF is not the end (normalised)", D | N, "\r.\n", SM_ALL("\r\n\r\n"), DATA_OK),
    SMUGGLE("C4: LF.CR is not the end (bare LF rejected)", D, "\n.\r", SM_HEAD, DATA_ERR_BARE_LF),
    SMUGGLE("C4: LF.CR is not the end (normalised)", D | N, "\n.\r", SM_ALL("\r\n\r\n"), DATA_OK),
    SMUGGLE("C4: CR.CRLF is not the end (bare CR rejected)", D, "\r.\r\n", SM_HEAD,
            DATA_ERR_BARE_CR),
    SMUGGLE("C4: CR.CRLF is not the end (normalised)", D | N, "\r.\r\n", SM_ALL("\r\n\r\n"),
            DATA_OK),
    SMUGGLE("C4: CR.CRLF is not the end (BINARYMIME)", D | B, "\r.\r\n", SM_ALL("\r.\r\n"),
            DATA_OK),
    SMUGGLE("C4: CRLF.CR is not the end (bare CR rejected)", D, "\r\n.\r", SM_HEAD "\r\n",
            DATA_ERR_BARE_CR),
    SMUGGLE("C4: CRLF.CR is not the end (normalised)", D | N, "\r\n.\r", SM_ALL("\r\n\r\n"),
            DATA_OK),
    SMUGGLE("C4: CRLF.CR is not the end (BINARYMIME)", D | B, "\r\n.\r", SM_ALL("\r\n\r"), DATA_OK),
    /* C5: a NUL next to the dot. */
    SMUGGLE("C5: CRLF NUL .CRLF is not the end (NUL rejected)", D, "\r\n\0.\r\n", SM_HEAD "\r\n",
            DATA_ERR_NUL),
    SMUGGLE("C5: CRLF NUL .CRLF is not the end (NUL kept)", D | Z, "\r\n\0.\r\n",
            SM_ALL("\r\n\0.\r\n"), DATA_OK),
    SMUGGLE("C5: CRLF. NUL CRLF is not the end (NUL rejected)", D, "\r\n.\0\r\n", SM_HEAD "\r\n",
            DATA_ERR_NUL),
    SMUGGLE("C5: CRLF. NUL CRLF is not the end (NUL kept)", D | Z, "\r\n.\0\r\n",
            SM_ALL("\r\n\0\r\n"), DATA_OK),
    {.name = "C3: bare LF at the very start, then LF.CRLF, is not the end",
     .flags = D | N,
     .in = S("\n.\r\n.\r\n"),
     .out = S("\r\n\r\n"),
     .done = true,
     .size = 4},
    {.name = "C4: a real CRLF after a bare CR does start a line",
     .flags = D,
     .in = S("a\r\r\n.\r\nQUIT\r\n"),
     .out = S("a"),
     .error = DATA_ERR_BARE_CR,
     .done = true,
     .rest = 6,
     .size = 5},
    {.name = "C4: a real CRLF after a normalised bare CR",
     .flags = D | N,
     .in = S("a\r\r\n.\r\nQUIT\r\n"),
     .out = S("a\r\n\r\n"),
     .done = true,
     .rest = 6,
     .size = 5},

    /* Bare CR / LF outside the terminator. */
    {.name = "bare LF rejected",
     .flags = D,
     .in = S("a\nb\r\n.\r\n"),
     .out = S("a"),
     .error = DATA_ERR_BARE_LF,
     .done = true,
     .size = 6},
    {.name = "bare LF and CR normalised to CRLF",
     .flags = D | N,
     .in = S("a\nb\rc\r\n.\r\n"),
     .out = S("a\r\nb\r\nc\r\n"),
     .done = true,
     .size = 9},
    {.name = "normalising bare CRs and LFs doubles them",
     .flags = N,
     .in = S("\r\r\r\n\n\n"),
     .out = S("\r\n\r\n\r\n\r\n\r\n"),
     .size = 10},
    {.name = "BINARYMIME keeps bare CR/LF even with NORMALISE",
     .flags = D | B | N,
     .in = S("a\nb\rc\r\n.\r\n"),
     .out = S("a\nb\rc\r\n"),
     .done = true,
     .size = 7},
    {.name = "BINARYMIME in DATA still unstuffs and ends at CRLF.CRLF",
     .flags = D | B,
     .in = S("\0\r\n..x\r\n.\r\n"),
     .out = S("\0\r\n.x\r\n"),
     .done = true,
     .size = 7},
    {.name = "RFC 3030: BDAT bare LF rejected",
     .flags = 0,
     .in = S("a\nb"),
     .out = S("a"),
     .error = DATA_ERR_BARE_LF,
     .size = 4},
    {.name = "RFC 3030: BDAT trailing CR is bare at LAST",
     .flags = 0,
     .in = S("a\r"),
     .out = S("a"),
     .error = DATA_ERR_BARE_CR,
     .size = 3},
    {.name = "RFC 3030: BDAT trailing CR normalised at LAST",
     .flags = N,
     .in = S("a\r"),
     .out = S("a\r\n"),
     .size = 3},
    {.name = "RFC 3030: BDAT trailing CR kept in BINARYMIME",
     .flags = B,
     .in = S("a\r"),
     .out = S("a\r"),
     .size = 2},
    {.name = "RFC 3030: BINARYMIME BDAT passes everything",
     .flags = B,
     .in = S("\0\n\r.\r\n\xff"),
     .out = S("\0\n\r.\r\n\xff"),
     .size = 7},
    {.name = "the first error is kept",
     .flags = D,
     .in = S("a\0b\nc\r\n.\r\n"),
     .out = S("a"),
     .error = DATA_ERR_NUL,
     .done = true,
     .size = 8},

    /* C7: line length, counted as received plus 2 for the line end. */
    {.name = "C7: a line of exactly max_line with CRLF is fine",
     .flags = D,
     .lim = {.max_line = 10},
     .in = S("12345678\r\n.\r\n"),
     .out = S("12345678\r\n"),
     .done = true,
     .size = 10},
    {.name = "C7: one byte more is too long",
     .flags = D,
     .lim = {.max_line = 10},
     .in = S("123456789\r\n.\r\n"),
     .out = S("12345678"),
     .error = DATA_ERR_LINE_TOO_LONG,
     .done = true,
     .size = 11},
    {.name = "C7: the stuffing dot counts toward the line length",
     .flags = D,
     .lim = {.max_line = 10},
     .in = S(".23456789\r\n.\r\n"),
     .out = S("2345678"),
     .error = DATA_ERR_LINE_TOO_LONG,
     .done = true,
     .size = 10},
    {.name = "C7: a stuffed line of exactly max_line is fine",
     .flags = D,
     .lim = {.max_line = 10},
     .in = S("..234567\r\n.\r\n"),
     .out = S(".234567\r\n"),
     .done = true,
     .size = 9},
    {.name = "C7: the terminator line itself is never too long",
     .flags = D,
     .lim = {.max_line = 2},
     .in = S("\r\n.\r\n"),
     .out = S("\r\n"),
     .done = true,
     .size = 2},
    {.name = "C7: an unstuffed dot line can be too long",
     .flags = D,
     .lim = {.max_line = 2},
     .in = S("..\r\n.\r\n"),
     .out = S(""),
     .error = DATA_ERR_LINE_TOO_LONG,
     .done = true,
     .size = 3},
    {.name = "C7: a dot line ended by a bare CR counts the dot",
     .flags = D | N,
     .lim = {.max_line = 2},
     .in = S(".\r\r\n.\r\n"),
     .out = S(""),
     .error = DATA_ERR_LINE_TOO_LONG,
     .done = true,
     .size = 4},
    {.name = "C7: keep consuming after a long line, to the real end",
     .flags = D,
     .lim = {.max_line = 10},
     .in = S("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nok\r\n.\r\nQUIT\r\n"),
     .out = S("aaaaaaaa"),
     .error = DATA_ERR_LINE_TOO_LONG,
     .done = true,
     .rest = 6,
     .size = 36},
    {.name = "C7: a bare-LF line end counts as 2",
     .flags = D | N,
     .lim = {.max_line = 10},
     .in = S("123456789\nabc\r\n.\r\n"),
     .out = S("12345678"),
     .error = DATA_ERR_LINE_TOO_LONG,
     .done = true,
     .size = 16},
    {.name = "C7: lines are counted separately",
     .flags = D | N,
     .lim = {.max_line = 10},
     .in = S("12345678\nabcdefgh\r\n.\r\n"),
     .out = S("12345678\r\nabcdefgh\r\n"),
     .done = true,
     .size = 20},
    {.name = "C7: BINARYMIME has no line limit",
     .flags = D | B,
     .lim = {.max_line = 10},
     .in = S("123456789012345\r\n.\r\n"),
     .out = S("123456789012345\r\n"),
     .done = true,
     .size = 17},
    {.name = "C7: BDAT line limit",
     .flags = 0,
     .lim = {.max_line = 5},
     .in = S("abc\r\nabcd\r\n"),
     .out = S("abc\r\nabc"),
     .error = DATA_ERR_LINE_TOO_LONG,
     .size = 11},

    /* C8/C9: size, counted after unstuffing, still counted while discarding. */
    {.name = "C8: a message of exactly max_size is fine",
     .flags = D,
     .lim = {.max_size = 12},
     .in = S("0123456789\r\n.\r\n"),
     .out = S("0123456789\r\n"),
     .done = true,
     .size = 12},
    {.name = "C8: one byte over max_size",
     .flags = D,
     .lim = {.max_size = 11},
     .in = S("0123456789\r\n.\r\n"),
     .out = S("0123456789\r"),
     .error = DATA_ERR_TOO_BIG,
     .done = true,
     .size = 12},
    {.name = "C8: size keeps counting while discarding",
     .flags = D,
     .lim = {.max_size = 10},
     .in = S("0123456789\r\nmore\r\n.\r\nQUIT\r\n"),
     .out = S("0123456789"),
     .error = DATA_ERR_TOO_BIG,
     .done = true,
     .rest = 6,
     .size = 18},
    {.name = "C8: size is counted after unstuffing",
     .flags = D,
     .lim = {.max_size = 4},
     .in = S("..a\r\n.\r\n"),
     .out = S(".a\r\n"),
     .done = true,
     .size = 4},
    {.name = "C9: too big, then a smuggled .LF and HELP stay in the message",
     .flags = D,
     .lim = {.max_size = 10},
     .in = S("0123456789abcdef\r\n.\nHELP\r\n.\r\nQUIT\r\n"),
     .out = S("0123456789"),
     .error = DATA_ERR_TOO_BIG,
     .done = true,
     .rest = 6,
     .size = 26},
    {.name = "C9: too big, then a smuggled .LF when normalising",
     .flags = D | N,
     .lim = {.max_size = 10},
     .in = S("0123456789abcdef\r\n.\nHELP\r\n.\r\nQUIT\r\n"),
     .out = S("0123456789"),
     .error = DATA_ERR_TOO_BIG,
     .done = true,
     .rest = 6,
     .size = 26},
    {.name = "C8: BDAT size limit across the message",
     .flags = 0,
     .lim = {.max_size = 3},
     .in = S("abcdef"),
     .out = S("abc"),
     .error = DATA_ERR_TOO_BIG,
     .size = 6},

    /* C10: header section size, folded lines included, up to the first empty line. */
    {.name = "C10: folded continuation lines count toward the header",
     .flags = D,
     .lim = {.max_header = 30},
     .in = S("Subject: a\r\n b\r\n c\r\n d\r\n e\r\n f\r\n\r\nbody\r\n.\r\n"),
     .out = S("Subject: a\r\n b\r\n c\r\n d\r\n e\r\n f"),
     .error = DATA_ERR_HEADER_TOO_BIG,
     .done = true,
     .size = 40},
    {.name = "C10: a header of exactly max_header is fine",
     .flags = D,
     .lim = {.max_header = 32},
     .in = S("Subject: a\r\n b\r\n c\r\n d\r\n e\r\n f\r\n\r\nbody\r\n.\r\n"),
     .out = S("Subject: a\r\n b\r\n c\r\n d\r\n e\r\n f\r\n\r\nbody\r\n"),
     .done = true,
     .size = 40},
    {.name = "C10: the body does not count toward the header",
     .flags = D,
     .lim = {.max_header = 12},
     .in = S("Subject: a\r\n\r\na long body line here\r\n.\r\n"),
     .out = S("Subject: a\r\n\r\na long body line here\r\n"),
     .done = true,
     .size = 37},
    {.name = "C10: BDAT header too big",
     .flags = 0,
     .lim = {.max_header = 12},
     .in = S("Subject: a\r\nX: y\r\n\r\n"),
     .out = S("Subject: a\r\n"),
     .error = DATA_ERR_HEADER_TOO_BIG,
     .size = 20},
    {.name = "C10: without an empty line everything is header",
     .flags = 0,
     .lim = {.max_header = 12},
     .in = S("no header line at all\r\n"),
     .out = S("no header li"),
     .error = DATA_ERR_HEADER_TOO_BIG,
     .size = 23},
    {.name = "C10: a normalised bare LF ends the header",
     .flags = N,
     .lim = {.max_header = 12},
     .in = S("Subject: x\n\nbody body body\n"),
     .out = S("Subject: x\r\n\r\nbody body body\r\n"),
     .size = 30},
    {.name = "C10: the header is counted after unstuffing",
     .flags = D,
     .lim = {.max_header = 12},
     .in = S("..ubject: x\r\n\r\nbody\r\n.\r\n"),
     .out = S(".ubject: x\r\n\r\nbody\r\n"),
     .done = true,
     .size = 20},

    /* C11: NUL and 8-bit bytes. */
    {.name = "C11: NUL rejected",
     .flags = D,
     .in = S("a\0b\r\n.\r\n"),
     .out = S("a"),
     .error = DATA_ERR_NUL,
     .done = true,
     .size = 5},
    {.name = "C11: NUL kept byte-exact with ALLOW_NUL",
     .flags = D | Z,
     .in = S("a\0b\r\n\0\r\n.\r\n"),
     .out = S("a\0b\r\n\0\r\n"),
     .done = true,
     .size = 8},
    {.name = "C11: 8-bit bytes stored byte-exact",
     .flags = D,
     .in = S("\xc3\xa9t\xe9\xff\x80\r\n.\r\n"),
     .out = S("\xc3\xa9t\xe9\xff\x80\r\n"),
     .done = true,
     .size = 8},

    /* C12: Received fields in the header section. */
    {.name = "C12: one Received too many, any case, WSP before the colon",
     .flags = D,
     .lim = {.max_received = 2},
     .in = S("Received: a\r\nreceived: b\r\nRECEIVED : c\r\n\r\nb\r\n.\r\n"),
     .out = S("Received: a\r\nreceived: b\r\nRECEIVED "),
     .error = DATA_ERR_TOO_MANY_HOPS,
     .done = true,
     .size = 45},
    {.name = "C12: exactly max_received is fine",
     .flags = D,
     .lim = {.max_received = 2},
     .in = S("Received: a\r\nReceived: b\r\n\r\nb\r\n.\r\n"),
     .out = S("Received: a\r\nReceived: b\r\n\r\nb\r\n"),
     .done = true,
     .size = 31},
    {.name = "C12: tab before the colon counts",
     .flags = D,
     .lim = {.max_received = 1},
     .in = S("Received\t: a\r\nReceived\t\t:b\r\n.\r\n"),
     .out = S("Received\t: a\r\nReceived\t\t"),
     .error = DATA_ERR_TOO_MANY_HOPS,
     .done = true,
     .size = 28},
    {.name = "C12: look-alikes, folded lines and body lines do not count",
     .flags = D,
     .lim = {.max_received = 2},
     .in = S("Received-SPF: x\r\nX-Received: y\r\n Received: folded\r\nReceived\r\n"
             "Receivedx: z\r\nReceived: 1\r\n\tReceived: f\r\nReceived: 2\r\n\r\n"
             "Received: body\r\nReceived: body\r\n.\r\n"),
     .out = S("Received-SPF: x\r\nX-Received: y\r\n Received: folded\r\nReceived\r\n"
              "Receivedx: z\r\nReceived: 1\r\n\tReceived: f\r\nReceived: 2\r\n\r\n"
              "Received: body\r\nReceived: body\r\n"),
     .done = true,
     .size = NOSIZE},
    {.name = "C12: 0 means no limit",
     .flags = D,
     .in = S("Received: a\r\nReceived: b\r\nReceived: c\r\n\r\n.\r\n"),
     .out = S("Received: a\r\nReceived: b\r\nReceived: c\r\n\r\n"),
     .done = true,
     .size = 41},
    {.name = "C12: BDAT counts Received too",
     .flags = 0,
     .lim = {.max_received = 1},
     .in = S("Received: a\r\nReceived: b\r\n"),
     .out = S("Received: a\r\nReceived"),
     .error = DATA_ERR_TOO_MANY_HOPS,
     .size = 26},
    {.name = "C12: Received after a normalised bare LF line start counts",
     .flags = N,
     .lim = {.max_received = 1},
     .in = S("Received: a\nReceived: b\n"),
     .out = S("Received: a\r\nReceived"),
     .error = DATA_ERR_TOO_MANY_HOPS,
     .size = 26},
};

struct data_result {
    unsigned char *out;
    size_t outlen;
    size_t consumed;
    bool done;
    enum data_error error;
    uint64_t size;
};

/* Feed tc->in cut at the given offsets (ascending), then finish a BDAT message. */
static void data_replay(const struct data_case *tc, const size_t *cuts, size_t ncuts,
                        struct data_result *res)
{
    struct data_reader r;
    size_t from = 0;
    bool done = false;

    res->out = malloc(DATA_OUT_CAP(tc->inlen) + 1);
    assert_non_null(res->out);
    res->outlen = 0;
    res->consumed = 0;
    data_reader_init(&r, &tc->lim, tc->flags);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : tc->inlen;
        size_t len = to - from;
        unsigned char *in = malloc(len + 1);
        unsigned char *out = malloc(DATA_OUT_CAP(len));
        size_t outlen = 99;
        size_t n;
        assert_non_null(in);
        assert_non_null(out);
        memcpy(in, tc->in + from, len);
        n = data_reader_feed(&r, in, len, out, &outlen, &done);
        assert_true(outlen <= DATA_OUT_CAP(len));
        if (res->consumed < from) {
            /* Already done: nothing more is taken. */
            assert_int_equal(n, 0);
            assert_int_equal(outlen, 0);
            assert_true(done);
        } else {
            if (!done)
                assert_int_equal(n, len);
            res->consumed += n;
            memcpy(res->out + res->outlen, out, outlen);
            res->outlen += outlen;
        }
        res->done = res->done || done;
        free(in);
        free(out);
        from = to;
    }
    if (!(tc->flags & DATA_F_DOTTED)) {
        unsigned char *out = malloc(DATA_OUT_CAP(0));
        size_t outlen = 99;
        assert_non_null(out);
        data_reader_finish(&r, out, &outlen);
        assert_true(outlen <= DATA_OUT_CAP(0));
        memcpy(res->out + res->outlen, out, outlen);
        res->outlen += outlen;
        free(out);
    }
    res->error = r.error;
    res->size = r.size;
}

static void data_check(const struct data_case *tc, const struct data_result *res, const char *how)
{
    if (res->outlen != tc->outlen || memcmp(res->out, tc->out, tc->outlen) != 0)
        print_error("%s: output differs (%zu bytes, expected %zu)\n", how, res->outlen, tc->outlen);
    assert_int_equal(res->outlen, tc->outlen);
    assert_memory_equal(res->out, tc->out, tc->outlen);
    assert_int_equal(res->error, tc->error);
    assert_int_equal(res->done, tc->done);
    assert_int_equal(res->consumed, tc->inlen - tc->rest);
    if (tc->size != NOSIZE)
        assert_int_equal(res->size, (uint64_t)tc->size);
}

static void test_data_case(void **state)
{
    const struct data_case *tc = *state;
    struct data_result res = {0};
    size_t *cuts = malloc((tc->inlen + 1) * sizeof(*cuts));

    assert_non_null(cuts);
    data_replay(tc, NULL, 0, &res);
    data_check(tc, &res, "one piece");
    free(res.out);

    /* Two pieces, cut at every boundary including the empty ends. */
    for (size_t k = 0; k <= tc->inlen; k++) {
        memset(&res, 0, sizeof(res));
        cuts[0] = k;
        data_replay(tc, cuts, 1, &res);
        data_check(tc, &res, "two pieces");
        free(res.out);
    }

    /* One byte at a time (C6). */
    for (size_t k = 1; k < tc->inlen; k++)
        cuts[k - 1] = k;
    memset(&res, 0, sizeof(res));
    data_replay(tc, cuts, tc->inlen > 0 ? tc->inlen - 1 : 0, &res);
    data_check(tc, &res, "byte by byte");
    free(res.out);
    free(cuts);
}

/* C6 spelled out: ".", "\r", "\n" arrive as separate segments. */
static void test_data_c6_terminator_in_three_segments(void **state)
{
    struct data_reader r;
    unsigned char out[DATA_OUT_CAP(8)];
    size_t outlen;
    bool done;
    (void)state;

    data_reader_init(&r, NULL, DATA_F_DOTTED);
    assert_int_equal(data_reader_feed(&r, (const unsigned char *)"hi\r\n", 4, out, &outlen, &done),
                     4);
    assert_int_equal(outlen, 4);
    assert_false(done);
    assert_int_equal(data_reader_feed(&r, (const unsigned char *)".", 1, out, &outlen, &done), 1);
    assert_int_equal(outlen, 0);
    assert_false(done);
    assert_int_equal(data_reader_feed(&r, (const unsigned char *)"\r", 1, out, &outlen, &done), 1);
    assert_int_equal(outlen, 0);
    assert_false(done);
    assert_int_equal(data_reader_feed(&r, (const unsigned char *)"\nQUIT", 5, out, &outlen, &done),
                     1);
    assert_int_equal(outlen, 0);
    assert_true(done);
    assert_int_equal(r.error, DATA_OK);
    /* After the end, nothing more is consumed. */
    assert_int_equal(data_reader_feed(&r, (const unsigned char *)"QUIT", 4, out, &outlen, &done),
                     0);
    assert_int_equal(outlen, 0);
    assert_true(done);
}

/* C7: a 1 MB line without CRLF; memory stays the reader struct, input keeps being taken. */
static void test_data_c7_megabyte_line(void **state)
{
    static const struct data_limits lim = {.max_line = 1000};
    static unsigned char chunk[4096];
    static unsigned char out[DATA_OUT_CAP(sizeof(chunk))];
    struct data_reader r;
    size_t outlen, total = 0;
    bool done;
    (void)state;

    memset(chunk, 'x', sizeof(chunk));
    data_reader_init(&r, &lim, DATA_F_DOTTED);
    for (int i = 0; i < 256; i++) {
        assert_int_equal(data_reader_feed(&r, chunk, sizeof(chunk), out, &outlen, &done),
                         sizeof(chunk));
        assert_false(done);
        total += outlen;
    }
    assert_int_equal(total, 998);
    assert_int_equal(r.error, DATA_ERR_LINE_TOO_LONG);
    assert_int_equal(r.size, 256 * sizeof(chunk));
    assert_int_equal(
        data_reader_feed(&r, (const unsigned char *)"\r\n.\r\nQUIT\r\n", 11, out, &outlen, &done),
        5);
    assert_true(done);
    assert_int_equal(outlen, 0);
    assert_int_equal(r.size, 256 * sizeof(chunk) + 2);
}

/* C7 without a limit: the long line comes through whole. */
static void test_data_c7_megabyte_line_unlimited(void **state)
{
    static unsigned char chunk[4096];
    static unsigned char out[DATA_OUT_CAP(sizeof(chunk))];
    struct data_reader r;
    size_t outlen, total = 0;
    bool done;
    (void)state;

    memset(chunk, 'y', sizeof(chunk));
    data_reader_init(&r, NULL, DATA_F_DOTTED);
    for (int i = 0; i < 256; i++) {
        data_reader_feed(&r, chunk, sizeof(chunk), out, &outlen, &done);
        assert_int_equal(outlen, sizeof(chunk));
        assert_memory_equal(out, chunk, sizeof(chunk));
        total += outlen;
    }
    assert_int_equal(total, 256 * sizeof(chunk));
    assert_int_equal(r.error, DATA_OK);
}

/* C10: 100k header lines, folded, against a 64 KiB limit. */
static void test_data_c10_many_folded_header_lines(void **state)
{
    static const struct data_limits lim = {.max_header = 65536};
    static const unsigned char line[] = " folded continuation\r\n";
    unsigned char out[DATA_OUT_CAP(sizeof(line))];
    struct data_reader r;
    size_t outlen, total = 0;
    bool done;
    (void)state;

    data_reader_init(&r, &lim, DATA_F_DOTTED);
    data_reader_feed(&r, (const unsigned char *)"X-A: b\r\n", 8, out, &outlen, &done);
    total += outlen;
    for (int i = 0; i < 100000; i++) {
        data_reader_feed(&r, line, sizeof(line) - 1, out, &outlen, &done);
        total += outlen;
    }
    assert_int_equal(r.error, DATA_ERR_HEADER_TOO_BIG);
    assert_int_equal(total, 65536);
    assert_int_equal(r.header_len, 8 + 100000 * (sizeof(line) - 1));
    assert_int_equal(
        data_reader_feed(&r, (const unsigned char *)"\r\n.\r\n", 5, out, &outlen, &done), 5);
    assert_true(done);
}

/* RFC 3030: after LAST, the reader takes nothing more and never reports done. */
static void test_data_bdat_after_finish(void **state)
{
    struct data_reader r;
    unsigned char out[DATA_OUT_CAP(4)];
    size_t outlen;
    bool done = true;
    (void)state;

    data_reader_init(&r, NULL, 0);
    assert_int_equal(data_reader_feed(&r, (const unsigned char *)"a\r\n", 3, out, &outlen, &done),
                     3);
    assert_false(done);
    data_reader_finish(&r, out, &outlen);
    assert_int_equal(outlen, 0);
    assert_int_equal(data_reader_feed(&r, (const unsigned char *)"b", 1, out, &outlen, &done), 0);
    assert_int_equal(outlen, 0);
    assert_false(done);
}

/* DATA mode: finish adds nothing (the held ".\r" is not flushed as body). */
static void test_data_finish_in_data_mode(void **state)
{
    struct data_reader r;
    unsigned char out[DATA_OUT_CAP(4)];
    size_t outlen;
    bool done;
    (void)state;

    data_reader_init(&r, NULL, DATA_F_DOTTED);
    data_reader_feed(&r, (const unsigned char *)"a\r\n.\r", 5, out, &outlen, &done);
    data_reader_finish(&r, out, &outlen);
    assert_int_equal(outlen, 0);
    assert_int_equal(r.error, DATA_OK);
}

int main(void)
{
    enum { NCASES = sizeof(cases) / sizeof(cases[0]) };
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_data_c6_terminator_in_three_segments),
        cmocka_unit_test(test_data_c7_megabyte_line),
        cmocka_unit_test(test_data_c7_megabyte_line_unlimited),
        cmocka_unit_test(test_data_c10_many_folded_header_lines),
        cmocka_unit_test(test_data_bdat_after_finish),
        cmocka_unit_test(test_data_finish_in_data_mode),
    };
    enum { NFIXED = sizeof(fixed) / sizeof(fixed[0]) };
    static struct CMUnitTest tests[NCASES + NFIXED];

    for (size_t i = 0; i < NCASES; i++) {
        tests[i] = (struct CMUnitTest){
            .name = cases[i].name, .test_func = test_data_case, .initial_state = (void *)&cases[i]};
    }
    for (size_t i = 0; i < NFIXED; i++)
        tests[NCASES + i] = fixed[i];
    return _cmocka_run_group_tests("data", tests, NCASES + NFIXED, NULL, NULL);
}
