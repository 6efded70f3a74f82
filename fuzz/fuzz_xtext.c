/* libFuzzer target for util/xtext (RFC 3461 §4). Checks, beyond memory safety: a
 * successful decode is NUL-terminated, within outcap, free of control bytes and never
 * longer than its input; a failed decode leaves an empty string; encoding any bytes
 * succeeds with enough room, yields only xchars and "+XX", and decodes back to the same
 * bytes unless they held a control byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/xtext.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 4096)
        return 0;
    /* The first byte picks a capacity, so overflow paths are reached as well. */
    size_t outcap = data[0];
    const char *in = (const char *)data + 1;
    size_t inlen = size - 1;

    char *out = malloc(outcap ? outcap : 1);
    check(out != NULL);
    size_t outlen = 12345;
    if (xtext_decode(in, inlen, out, outcap, &outlen)) {
        check(outcap > 0 && outlen < outcap && out[outlen] == '\0');
        check(outlen <= inlen);
        for (size_t i = 0; i < outlen; i++) {
            unsigned char c = (unsigned char)out[i];
            check(c >= 0x20 && c != 0x7f);
        }
    } else {
        check(outlen == 0);
        check(outcap == 0 || out[0] == '\0');
    }
    free(out);

    size_t enccap = inlen * 3 + 1;
    char *enc = malloc(enccap);
    char *dec = malloc(inlen + 1);
    check(enc != NULL && dec != NULL);
    size_t enclen, declen;
    check(xtext_encode(in, inlen, enc, enccap, &enclen));
    check(enclen < enccap && enc[enclen] == '\0');
    for (size_t i = 0; i < enclen; i++) {
        unsigned char c = (unsigned char)enc[i];
        check(c >= '!' && c <= '~' && c != '=');
    }
    bool has_ctl = false;
    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == 0x7f)
            has_ctl = true;
    }
    bool ok = xtext_decode(enc, enclen, dec, inlen + 1, &declen);
    check(ok == !has_ctl);
    if (ok)
        check(declen == inlen && memcmp(dec, in, inlen) == 0);
    /* One byte too few is always refused, never cut short. */
    if (inlen > 0)
        check(!xtext_encode(in, inlen, enc, enclen, &enclen));
    free(enc);
    free(dec);
    return 0;
}
