/* libFuzzer target for deliver/smtp_reply (and the body encoder beside it). The first byte
 * picks the size of the pieces the input is fed in, so split points are fuzzed too.
 * Checks, beyond memory safety: a complete reply has a code in 2yz..5yz, 1 to
 * SMTP_REPLY_LINES_MAX lines, NUL-terminated text of textlen bytes without NUL, CR or LF
 * (other than the '\n' that joins lines) and an enhanced code of the code's class; consumed
 * never exceeds the input; an error sticks and consumes nothing; the EHLO parser and the
 * name check accept whatever reply came out. The encoder, fed the same bytes, never writes
 * more than its bound and never a CR or LF outside CRLF. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/smtp_body.h"
#include "deliver/smtp_reply.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static void check_reply(const struct smtp_reply *r)
{
    check(r->code >= 200 && r->code <= 559 && (r->code / 10) % 10 <= 5);
    check(r->nlines >= 1 && r->nlines <= SMTP_REPLY_LINES_MAX);
    check(r->textlen <= SMTP_REPLY_TEXT_MAX && r->text[r->textlen] == '\0');
    check(strlen(r->text) == r->textlen);
    for (size_t i = 0; i < r->textlen; i++)
        check(r->text[i] != '\r');
    size_t el = strlen(r->enhanced);
    check(el <= SMTP_REPLY_ENHANCED_MAX);
    if (el > 0)
        check(r->enhanced[0] == (char)('0' + r->code / 100) && el >= 5);
    struct smtp_ehlo e;
    smtp_ehlo_parse(r, &e);
    check((e.auth == 0) || (e.ext & SMTP_EXT_AUTH));
    (void)smtp_reply_names(r, "mx.example.org");
}

static void fuzz_body(const uint8_t *data, size_t size, size_t piece)
{
    struct smtp_body_enc enc;
    unsigned char *out = malloc(SMTP_BODY_OUT_CAP(size) + SMTP_BODY_FINISH_CAP);
    size_t n = 0;
    check(out != NULL);
    smtp_body_init(&enc, size % 2 ? SMTP_BODY_DOTS : 0);
    for (size_t off = 0; off < size; off += piece) {
        size_t len = size - off < piece ? size - off : piece;
        size_t w = smtp_body_encode(&enc, data + off, len, out + n);
        check(w <= SMTP_BODY_OUT_CAP(len));
        n += w;
    }
    n += smtp_body_finish(&enc, out + n);
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '\r')
            check(i + 1 < n && out[i + 1] == '\n');
        if (out[i] == '\n')
            check(i > 0 && out[i - 1] == '\r');
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 256 * 1024)
        return 0;
    size_t piece = (size_t)data[0] + 1;
    data++;
    size--;

    struct smtp_reply_parser *p = malloc(sizeof *p);
    check(p != NULL);
    smtp_reply_parser_init(p);
    size_t off = 0;
    while (off < size) {
        size_t len = size - off < piece ? size - off : piece;
        size_t used = 0;
        enum smtp_reply_status st = smtp_reply_parse(p, data + off, len, &used);
        check(used <= len);
        if (st == SMTP_REPLY_MORE) {
            check(used == len);
        } else if (st == SMTP_REPLY_DONE) {
            check(used > 0);
            check_reply(&p->reply);
        } else {
            size_t again = 1;
            check(smtp_reply_parse(p, data, size, &again) == st && again == 0);
            break;
        }
        off += used;
    }
    free(p);
    fuzz_body(data, size, piece);
    return 0;
}
