/* libFuzzer target for smtp/data, the DATA/BDAT body reader.
 *
 * Input: byte 0 picks the flags, bytes 1-2 the limits, byte 3 seeds the split pattern; the
 * rest is the client's byte stream. The stream is fed in one piece and again in random
 * pieces (empty ones included); both runs must agree on output, error, counters, done and
 * end position (the reader is resumable at any byte). Every feed gets an output buffer of
 * exactly DATA_OUT_CAP(len) bytes from malloc, so ASan catches an overrun. Then the result
 * is checked against what the contract promises: the end is a real CRLF.CRLF, output
 * without an error has no bare CR/LF or NUL and no over-long line, and re-stuffing the
 * output gives back the input (RFC 5321 §4.5.2). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/data.h"

struct fuzz_run {
    unsigned char *out;
    size_t outlen;
    size_t consumed;
    bool done;
    struct data_reader r;
};

static void fuzz_check(bool ok)
{
    if (!ok)
        abort();
}

/* Feed in pieces; seed 0 means one piece. */
static void fuzz_feed(const struct data_limits *lim, unsigned flags, const uint8_t *in,
                      size_t inlen, uint32_t seed, struct fuzz_run *run)
{
    size_t from = 0;

    run->out = malloc(DATA_OUT_CAP(inlen));
    fuzz_check(run->out != NULL);
    run->outlen = 0;
    run->consumed = 0;
    run->done = false;
    data_reader_init(&run->r, lim, flags);
    while (from < inlen || from == 0) {
        size_t len = inlen - from;
        unsigned char *piece, *out;
        size_t outlen, n;
        bool done;
        if (seed != 0) {
            seed = seed * 1103515245u + 12345u;
            len = (seed >> 16) % 9 == 0 ? (seed >> 8) % 300 : (seed >> 16) % 5;
            if (len > inlen - from)
                len = inlen - from;
        }
        piece = malloc(len + 1);
        out = malloc(DATA_OUT_CAP(len));
        fuzz_check(piece != NULL && out != NULL);
        memcpy(piece, in + from, len);
        n = data_reader_feed(&run->r, piece, len, out, &outlen, &done);
        fuzz_check(n <= len && outlen <= DATA_OUT_CAP(len));
        memcpy(run->out + run->outlen, out, outlen);
        run->outlen += outlen;
        run->consumed += n;
        free(piece);
        free(out);
        from += len;
        if (done) {
            run->done = true;
            break;
        }
        fuzz_check(n == len);
        if (inlen == 0)
            break;
    }
    if (!(flags & DATA_F_DOTTED)) {
        unsigned char *out = malloc(DATA_OUT_CAP(0));
        size_t outlen;
        fuzz_check(out != NULL);
        data_reader_finish(&run->r, out, &outlen);
        fuzz_check(outlen <= DATA_OUT_CAP(0));
        memcpy(run->out + run->outlen, out, outlen);
        run->outlen += outlen;
        free(out);
    }
}

/* Output of a clean run: CR only in CRLF, LF only after CR, no NUL unless allowed, no line
 * longer than max_line (output lines are never longer than received ones). */
static void fuzz_check_lines(const struct fuzz_run *run, const struct data_limits *lim,
                             unsigned flags)
{
    size_t line = 0;
    for (size_t i = 0; i < run->outlen; i++) {
        unsigned char c = run->out[i];
        if (c == '\r')
            fuzz_check(i + 1 < run->outlen && run->out[i + 1] == '\n');
        if (c == '\n') {
            fuzz_check(i > 0 && run->out[i - 1] == '\r');
            fuzz_check(lim->max_line == 0 || line + 1 <= lim->max_line);
            line = 0;
            continue;
        }
        if (c == 0)
            fuzz_check(flags & DATA_F_ALLOW_NUL);
        line++;
    }
    fuzz_check(lim->max_line == 0 || line + 2 <= lim->max_line || line == 0);
}

/* RFC 5321 §4.5.2 in reverse: the input is the output with a dot back at the start of some
 * lines (every line that starts with one) and the terminator added. */
static void fuzz_check_restuff(const struct fuzz_run *run, const uint8_t *in)
{
    size_t j = 0;
    bool bol = true;
    for (size_t i = 0; i < run->outlen; i++) {
        fuzz_check(j < run->consumed);
        if (bol && in[j] == '.')
            j++;
        else
            fuzz_check(!bol || run->out[i] != '.');
        fuzz_check(j < run->consumed && in[j] == run->out[i]);
        j++;
        bol = run->out[i] == '\n' && i > 0 && run->out[i - 1] == '\r';
    }
    fuzz_check(run->consumed - j == 3 && memcmp(in + j, ".\r\n", 3) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t lines[] = {0, 2, 3, 10, 78, 1000};
    static const uint64_t sizes[] = {0, 1, 20, 300};
    static const size_t headers[] = {0, 5, 40, 500};
    struct data_limits lim;
    struct fuzz_run one, split;
    unsigned flags;
    const uint8_t *in;
    size_t inlen;

    if (size < 4)
        return 0;
    flags = data[0] & 0xf;
    lim.max_line = lines[(data[1] & 0xf) % 6];
    lim.max_size = sizes[data[1] >> 4 & 3];
    lim.max_header = headers[data[1] >> 6];
    lim.max_received = data[2] & 3;
    in = data + 4;
    inlen = size - 4;

    fuzz_feed(&lim, flags, in, inlen, 0, &one);
    fuzz_feed(&lim, flags, in, inlen, 0x9e3779b9u ^ data[3] ^ (uint32_t)size << 8, &split);

    fuzz_check(one.outlen == split.outlen && memcmp(one.out, split.out, one.outlen) == 0);
    fuzz_check(one.consumed == split.consumed && one.done == split.done);
    fuzz_check(one.r.error == split.r.error && one.r.size == split.r.size);
    fuzz_check(one.r.header_len == split.r.header_len);

    fuzz_check(one.outlen <= one.r.size);
    if (one.done) {
        fuzz_check(flags & DATA_F_DOTTED);
        fuzz_check(one.consumed >= 3 && memcmp(in + one.consumed - 3, ".\r\n", 3) == 0);
        fuzz_check(one.consumed == 3 || (one.consumed >= 5 && in[one.consumed - 5] == '\r' &&
                                         in[one.consumed - 4] == '\n'));
    } else {
        fuzz_check(one.consumed == inlen);
    }
    if (one.r.error == DATA_OK) {
        fuzz_check(one.outlen == one.r.size);
        fuzz_check(lim.max_size == 0 || one.outlen <= lim.max_size);
        if (!(flags & DATA_F_BINARY))
            fuzz_check_lines(&one, &lim, flags);
        if (!(flags & DATA_F_NORMALISE) || (flags & DATA_F_BINARY)) {
            if (one.done)
                fuzz_check_restuff(&one, in);
            else if (!(flags & DATA_F_DOTTED))
                fuzz_check(one.outlen == inlen && memcmp(one.out, in, inlen) == 0);
        }
    } else {
        fuzz_check(lim.max_size == 0 || one.outlen <= lim.max_size);
    }
    free(one.out);
    free(split.out);
    return 0;
}
