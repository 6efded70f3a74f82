/* json: just enough JSON (RFC 8259) to read the members of one object: JWT headers and claim
 * sets. Pure, no allocation. The whole text is validated first (strict grammar, UTF-8, depth
 * at most JSON_DEPTH_MAX, no duplicate member names at the top level), so a member is found
 * only in a well-formed object. */
#ifndef SLUICE_UTIL_JSON_H
#define SLUICE_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_DEPTH_MAX 16
/* Members of the top-level object at most: bounds the duplicate-name check (a JWT header or
 * claim set holds a few dozen). */
#define JSON_MEMBERS_MAX 256

/* True when text is exactly one JSON object (whitespace around it allowed) of at most
 * JSON_MEMBERS_MAX members. */
bool json_object_valid(const char *text, size_t len);

enum json_get {
    JSON_FOUND,
    JSON_MISSING,     /* no such top-level member */
    JSON_WRONG_TYPE,  /* present, but not of the asked type */
    JSON_TOO_LONG,    /* a string that does not fit out */
    JSON_INVALID,     /* text is not a valid object */
};

/* A top-level string member, unescaped (\u escapes incl. surrogate pairs to UTF-8; "\u0000"
 * refused as WRONG_TYPE), NUL-terminated into out. */
enum json_get json_get_string(const char *text, size_t len, const char *name, char *out,
                              size_t outlen);

/* A top-level number member that is an integer (no fraction or exponent) within int64; any
 * other number is WRONG_TYPE. *out is written on JSON_FOUND only. */
enum json_get json_get_int(const char *text, size_t len, const char *name, int64_t *out);

/* A top-level number member rounded up to an integer: an integer as json_get_int reads it
 * (all of int64), or a number with a fraction or exponent, written in fewer than 64
 * characters, within ±1e18 (RFC 7519 §2: a NumericDate may be non-integer), rounded exactly
 * from its decimal digits; a longer one is WRONG_TYPE, never cut. Rounding up keeps
 * integer comparisons exact: for an integer now, now < t ⇔ now < ceil(t), and
 * t <= now ⇔ ceil(t) <= now. Any other value is WRONG_TYPE; *out is written on JSON_FOUND
 * only. */
enum json_get json_get_ceil(const char *text, size_t len, const char *name, int64_t *out);

/* A top-level member that is a string equal to value, or an array holding such a string:
 * JSON_FOUND; an array or string without it: JSON_MISSING. */
enum json_get json_has_string(const char *text, size_t len, const char *name, const char *value);

#endif
