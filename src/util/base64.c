/* base64: RFC 4648 §4 (standard alphabet, "=" padding) and §5 (URL-safe alphabet, no padding)
 * encoders and strict decoders.
 *
 * Called by smtp/auth for the SASL exchange (RFC 4954 §4), by sasl/scram for the attributes
 * that carry binary values (RFC 5802 §5.1) and by sasl/jwt for the token segments
 * (RFC 7515 §2).
 *
 * Invariants: pure; never writes past outlen. Decoding accepts exactly the texts the encoder
 * of the same alphabet writes: no whitespace (§3.3), padding only as the final one or two
 * characters of a standard text (§3.2) and never in a URL-safe one, and the unused low bits
 * of the last character zero (§3.5). A length the encoder cannot produce is refused before
 * anything is written.
 */
#include "util/base64.h"

static const char base64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char base64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t base64_encode_with(const char *alphabet, bool pad, const uint8_t *in, size_t n,
                                 char *out, size_t outlen)
{
    size_t full = n / 3, rest = n % 3;
    size_t need = full < SIZE_MAX / 4 - 1 ? full * 4 + (rest == 0 ? 0
                                                        : pad     ? 4
                                                                  : rest + 1)
                                          : SIZE_MAX;

    if (need >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return 0;
    }
    size_t o = 0;
    for (size_t i = 0; i < full * 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (rest > 0) {
        uint32_t v = (uint32_t)in[full * 3] << 16;
        if (rest == 2)
            v |= (uint32_t)in[full * 3 + 1] << 8;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        if (rest == 2)
            out[o++] = alphabet[(v >> 6) & 63];
        else if (pad)
            out[o++] = '=';
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

size_t base64_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
    return base64_encode_with(base64_std, true, in, n, out, outlen);
}

size_t base64url_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
    return base64_encode_with(base64_url, false, in, n, out, outlen);
}

/* The 6-bit value of c in the alphabet whose two last characters are c62 and c63, or -1. */
static int base64_value(unsigned char c, char c62, char c63)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (unsigned char)c62)
        return 62;
    if (c == (unsigned char)c63)
        return 63;
    return -1;
}

/* Decodes m characters that are all in the alphabet (m % 4 != 1) into out. */
static bool base64_decode_body(const char *in, size_t m, char c62, char c63, uint8_t *out,
                               size_t outlen, size_t *outn)
{
    size_t rest = m % 4;
    size_t need = m / 4 * 3 + (rest == 0 ? 0 : rest - 1);

    if (rest == 1 || need > outlen)
        return false;
    size_t o = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < m; i++) {
        int v = base64_value((unsigned char)in[i], c62, c63);
        if (v < 0)
            return false;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    /* RFC 4648 §3.5: the bits below the last whole octet must be zero. */
    if (rest == 2) {
        if (acc & 0xf)
            return false;
        out[o++] = (uint8_t)(acc >> 4);
    } else if (rest == 3) {
        if (acc & 0x3)
            return false;
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    *outn = o;
    return true;
}

bool base64_decode(const char *in, size_t n, uint8_t *out, size_t outlen, size_t *outn)
{
    if (n % 4 != 0)
        return false;
    size_t m = n;
    /* RFC 4648 §3.2: "=" only pads the final quantum, one or two of them. */
    if (m > 0 && in[m - 1] == '=') {
        m--;
        if (in[m - 1] == '=')
            m--;
    }
    return base64_decode_body(in, m, '+', '/', out, outlen, outn);
}

bool base64url_decode(const char *in, size_t n, uint8_t *out, size_t outlen, size_t *outn)
{
    return base64_decode_body(in, n, '-', '_', out, outlen, outn);
}
