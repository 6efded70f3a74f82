/* sasl/saslprep: RFC 4013 SASLprep, the string preparation every password goes through
 * before it is hashed (sluice user add|passwd) and before it is compared (AUTH PLAIN and
 * LOGIN), so that the same password typed on two keyboards (a composed or decomposed
 * accent, a no-break space) is the same password; SCRAM clients apply it themselves
 * (RFC 5802 §2.2 Hi(Normalize(password))), and the stored SCRAM credentials are derived
 * from the prepared string. Implemented with GNU libidn's stringprep (Unicode 3.2 tables,
 * as RFC 3454 fixes them) for strings with non-ASCII characters; printable ASCII is answered
 * here. Pure apart from libidn's own scratch allocations, which it frees without wiping: a
 * non-ASCII password leaves copies in freed memory of the process. */
#ifndef SLUICE_SASL_SASLPREP_H
#define SLUICE_SASL_SASLPREP_H

#include <stddef.h>

/* RFC 3454 §7: unassigned code points are allowed in queries and refused in stored strings,
 * which must stay stable when the Unicode tables grow. */
enum sasl_prep_use { SASL_PREP_QUERY, SASL_PREP_STORED };

/* Prepare the len octets of in (UTF-8, no NUL) into out (NUL-terminated, *outlen octets
 * before the NUL). 0, or -1 with errno: EINVAL for input that is not UTF-8, holds a NUL, a
 * prohibited character (RFC 4013 §2.3: controls, private use, non-characters...), breaks the
 * bidirectional rules (§2.4), holds an unassigned code point when stored, or prepares to the
 * empty string; ERANGE when in or its prepared form does not fit outcap. */
int sasl_saslprep(const char *in, size_t len, enum sasl_prep_use use, char *out, size_t outcap,
                  size_t *outlen);

#endif
