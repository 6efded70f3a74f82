/* xtext: the RFC 3461 §4 encoding of ENVID, ORCPT and AUTH= values. Pure. */
#ifndef SLUICE_UTIL_XTEXT_H
#define SLUICE_UTIL_XTEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Decode xtext into out (capacity outcap, NUL-terminated on success).
 * Fails (returns false) on bad syntax ("+" not followed by two upper-case hex
 * digits, a raw character outside "!".."~" or a raw '=' or '+'), on output
 * overflow, and when the decoded value holds a control character (CR, LF,
 * NUL, any byte < 0x20 or 0x7f): such values must never reach the queue
 * (HOSTILE-INPUTS B4). */
bool xtext_decode(const char *in, size_t inlen, char *out, size_t outcap, size_t *outlen);

/* Encode bytes as xtext; false when out is too small. NUL-terminates. */
bool xtext_encode(const char *in, size_t inlen, char *out, size_t outcap, size_t *outlen);

#endif
