/* libFuzzer target for util/base64 (RFC 4648 §4, §5). Checks, beyond memory safety: a text
 * that decodes is the one text the encoder writes for its bytes (strictness: §3.2 padding,
 * §3.5 zero bits), in both alphabets; any bytes encode, with BASE64_ENCODED_LEN characters
 * in the standard alphabet, and decode back; a buffer one octet too small is refused, never
 * filled short. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_one(bool url, const char *in, size_t n, size_t outlen)
{
    uint8_t *out = malloc(outlen ? outlen : 1);
    char *text = malloc(n + 1);
    size_t got = 12345;
    check(out != NULL && text != NULL);
    bool ok =
        url ? base64url_decode(in, n, out, outlen, &got) : base64_decode(in, n, out, outlen, &got);
    if (ok) {
        check(got <= outlen && got <= n * 3 / 4);
        size_t m =
            url ? base64url_encode(out, got, text, n + 1) : base64_encode(out, got, text, n + 1);
        check(m == n && memcmp(text, in, n) == 0);
    } else {
        check(got == 12345);
    }
    free(out);
    free(text);
}

static void round_trip(bool url, const uint8_t *in, size_t n)
{
    size_t cap = BASE64_ENCODED_LEN(n) + 1;
    char *text = malloc(cap);
    uint8_t *back = malloc(n + 1);
    check(text != NULL && back != NULL);
    size_t m = url ? base64url_encode(in, n, text, cap) : base64_encode(in, n, text, cap);
    check(m < cap && text[m] == '\0' && strlen(text) == m);
    if (!url)
        check(m == BASE64_ENCODED_LEN(n));
    size_t got = 0;
    check(url ? base64url_decode(text, m, back, n, &got) : base64_decode(text, m, back, n, &got));
    check(got == n && memcmp(back, in, n) == 0);
    if (n > 0) {
        check(!(url ? base64url_decode(text, m, back, n - 1, &got)
                    : base64_decode(text, m, back, n - 1, &got)));
        check((url ? base64url_encode(in, n, text, m) : base64_encode(in, n, text, m)) == 0);
        check(text[0] == '\0');
    }
    free(text);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 8192)
        return 0;
    /* The first byte picks a capacity, so the no-fit paths are reached as well. */
    size_t outlen = data[0];
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    decode_one(false, in, n, outlen);
    decode_one(true, in, n, outlen);
    decode_one(false, in, n, n);
    decode_one(true, in, n, n);
    round_trip(false, data + 1, n);
    round_trip(true, data + 1, n);
    return 0;
}
