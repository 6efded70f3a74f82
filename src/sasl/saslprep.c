/* sasl/saslprep: RFC 4013 SASLprep through libidn (see saslprep.h). Called by the CLI when
 * it stores a password and by smtp/session_auth before a password check; calls libidn only.
 * libidn prepares in place within a buffer it is told the size of, so the input is copied
 * into out first and out's capacity bounds what NFKC expansion may produce. */
#include "sasl/saslprep.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <stringprep.h>

int sasl_saslprep(const char *in, size_t len, enum sasl_prep_use use, char *out, size_t outcap,
                  size_t *outlen)
{
    *outlen = 0;
    if (outcap == 0) {
        errno = ERANGE;
        return -1;
    }
    out[0] = '\0';
    if (memchr(in, '\0', len) != NULL) {
        errno = EINVAL;
        return -1;
    }
    if (len >= outcap) {
        errno = ERANGE;
        return -1;
    }
    /* Printable ASCII is its own preparation (no mapping, NFKC or bidi rule touches it) and
     * ASCII controls are prohibited (RFC 3454 C.2.1), so most passwords never reach libidn,
     * which frees its working copies without wiping them. */
    bool ascii = true;
    for (size_t i = 0; i < len && ascii; i++)
        ascii = (unsigned char)in[i] < 0x80;
    if (ascii) {
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) {
                errno = EINVAL;
                return -1;
            }
        if (len == 0) {
            errno = EINVAL;
            return -1;
        }
        memcpy(out, in, len);
        out[len] = '\0';
        *outlen = len;
        return 0;
    }
    memcpy(out, in, len);
    out[len] = '\0';
    Stringprep_profile_flags flags = use == SASL_PREP_STORED ? STRINGPREP_NO_UNASSIGNED : 0;
    int rc = stringprep(out, outcap, flags, stringprep_saslprep);
    if (rc != STRINGPREP_OK || out[0] == '\0') {
        memset(out, 0, outcap);
        errno = rc == STRINGPREP_TOO_SMALL_BUFFER ? ERANGE : EINVAL;
        return -1;
    }
    *outlen = strlen(out);
    return 0;
}
