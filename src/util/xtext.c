/* xtext: decoder and encoder for the RFC 3461 §4 "xtext" encoding used by the
 * ENVID and ORCPT (RFC 3461 §4.2, §4.4) and AUTH= (RFC 4954 §5) parameters.
 *
 * Called by smtp/proto when it parses MAIL and RCPT parameters, and by whatever
 * writes those values back out (DSNs, relayed MAIL commands).
 *
 * Invariants: pure (no I/O, no globals, no allocation); never writes past outcap;
 * on success the output is NUL-terminated and *outlen excludes the NUL; on failure
 * out is left as an empty string (when outcap > 0) so a caller that ignores the
 * result still holds nothing half-decoded. A decoded control byte is a failure:
 * such a value could otherwise smuggle CR/LF into the queue file (HOSTILE-INPUTS B4).
 */
#include "util/xtext.h"

static const char xtext_hex[] = "0123456789ABCDEF";

/* RFC 3461 §4: hexchar digits are upper-case only. */
static int xtext_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 3461 §4 xchar: "!".."~" except "+" and "=". */
static bool xtext_is_xchar(unsigned char c)
{
    return c >= '!' && c <= '~' && c != '+' && c != '=';
}

static void xtext_clear(char *out, size_t outcap, size_t *outlen)
{
    if (outcap > 0)
        out[0] = '\0';
    if (outlen)
        *outlen = 0;
}

bool xtext_decode(const char *in, size_t inlen, char *out, size_t outcap, size_t *outlen)
{
    size_t n = 0;

    for (size_t i = 0; i < inlen;) {
        unsigned char c = (unsigned char)in[i];
        unsigned char v;
        if (c == '+') {
            if (inlen - i < 3) {
                xtext_clear(out, outcap, outlen);
                return false;
            }
            int hi = xtext_hexval((unsigned char)in[i + 1]);
            int lo = xtext_hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0) {
                xtext_clear(out, outcap, outlen);
                return false;
            }
            v = (unsigned char)(hi * 16 + lo);
            i += 3;
        } else if (xtext_is_xchar(c)) {
            v = c;
            i++;
        } else {
            xtext_clear(out, outcap, outlen);
            return false;
        }
        /* n + 1 < outcap keeps one byte for the terminating NUL. */
        if (v < 0x20 || v == 0x7f || n + 1 >= outcap) {
            xtext_clear(out, outcap, outlen);
            return false;
        }
        out[n++] = (char)v;
    }
    if (outcap == 0) {
        xtext_clear(out, outcap, outlen);
        return false;
    }
    out[n] = '\0';
    if (outlen)
        *outlen = n;
    return true;
}

bool xtext_encode(const char *in, size_t inlen, char *out, size_t outcap, size_t *outlen)
{
    size_t n = 0; /* n < outcap whenever outcap > 0: room for the NUL is always kept */

    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        if (xtext_is_xchar(c)) {
            if (outcap - n < 2) {
                xtext_clear(out, outcap, outlen);
                return false;
            }
            out[n++] = (char)c;
        } else {
            if (outcap - n < 4) {
                xtext_clear(out, outcap, outlen);
                return false;
            }
            out[n++] = '+';
            out[n++] = xtext_hex[c >> 4];
            out[n++] = xtext_hex[c & 0xf];
        }
    }
    if (outcap == 0) {
        xtext_clear(out, outcap, outlen);
        return false;
    }
    out[n] = '\0';
    if (outlen)
        *outlen = n;
    return true;
}
