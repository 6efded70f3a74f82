/* base64: RFC 4648 §4 (standard alphabet, padded; SASL exchanges, RFC 4954 §4) and §5
 * (URL-safe alphabet, unpadded; JWT segments, RFC 7515 §2). Pure. Decoding is strict: no
 * whitespace, no characters outside the alphabet, padding exactly where §3.2 puts it, and
 * non-zero trailing bits refused (§3.5), so one text decodes from one byte string only. */
#ifndef SLUICE_UTIL_BASE64_H
#define SLUICE_UTIL_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Characters base64_encode writes for n bytes, without the terminating NUL. */
#define BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)

/* Encodes and NUL-terminates. Returns the length written (without the NUL), or 0 when out
 * (outlen including the NUL) is too small, and then out holds "" if outlen > 0. */
size_t base64_encode(const uint8_t *in, size_t n, char *out, size_t outlen);
size_t base64url_encode(const uint8_t *in, size_t n, char *out, size_t outlen);

/* False on any syntax error or when the result does not fit in outlen; *outn set on true.
 * An empty input decodes to zero bytes. */
bool base64_decode(const char *in, size_t n, uint8_t *out, size_t outlen, size_t *outn);
bool base64url_decode(const char *in, size_t n, uint8_t *out, size_t outlen, size_t *outn);

#endif
