/* libFuzzer target for smtp/addr (RFC 5321 §4.1.2, RFC 6531). Checks, beyond memory
 * safety: consumed stays within the input and ends on '>'; every field is NUL-terminated
 * within its array and within the RFC 5321 §4.5.3.1 limits; no control byte reaches a
 * field; the domain is lower-case ASCII unless it is a literal; bytes >= 0x80 appear only
 * with ADDR_ALLOW_UTF8; a null path only with ADDR_ALLOW_NULL; and a result does not
 * depend on bytes after the path. addr_check_domain runs on the same bytes too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/addr.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static size_t bounded_len(const char *s, size_t cap)
{
    const char *z = memchr(s, '\0', cap);
    check(z != NULL);
    return (size_t)(z - s);
}

static void check_no_ctl(const char *s, size_t n, bool allow_high)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        check(c >= 0x20 && c != 0x7f);
        check(allow_high || c < 0x80);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned flags = data[0] & (ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER | ADDR_ALLOW_UTF8);
    size_t len = size - 1;
    /* An exact-size copy, so ASan sees any read past the end. */
    char *s = malloc(len ? len : 1);
    check(s != NULL);
    memcpy(s, data + 1, len);

    struct addr_path p;
    size_t consumed = 999;
    enum addr_result r = addr_parse_path(s, len, flags, &p, &consumed);
    size_t alen = bounded_len(p.addr, sizeof(p.addr));
    size_t llen = bounded_len(p.local, sizeof(p.local));
    size_t dlen = bounded_len(p.domain, sizeof(p.domain));
    if (r == ADDR_OK) {
        check(consumed >= 2 && consumed <= len && consumed <= ADDR_PATH_MAX);
        check(s[0] == '<' && s[consumed - 1] == '>');
        check(llen <= ADDR_LOCAL_MAX && dlen <= ADDR_DOMAIN_MAX && alen <= ADDR_PATH_MAX - 2);
        bool utf8 = flags & ADDR_ALLOW_UTF8;
        check_no_ctl(p.addr, alen, utf8);
        check_no_ctl(p.local, llen, utf8);
        check_no_ctl(p.domain, dlen, utf8);
        check(!p.utf8 || utf8);
        if (p.is_null) {
            check(flags & ADDR_ALLOW_NULL);
            check(consumed == 2 && alen == 0 && llen == 0 && dlen == 0);
        } else {
            check(alen > 0);
            check(dlen > 0 || addr_is_postmaster(&p));
            /* addr is the text just before the closing '>'. */
            check(memcmp(p.addr, s + consumed - 1 - alen, alen) == 0);
            /* local never grows by unquoting. */
            check(llen <= alen);
        }
        if (!p.literal)
            for (size_t i = 0; i < dlen; i++)
                check(!(p.domain[i] >= 'A' && p.domain[i] <= 'Z'));
        else
            check(p.domain[0] == '[' && p.domain[dlen - 1] == ']');
        if (dlen > 0)
            check(addr_check_domain(p.domain, dlen, flags));

        /* The same path with the rest cut off parses the same way. */
        struct addr_path q;
        size_t c2;
        check(addr_parse_path(s, consumed, flags, &q, &c2) == ADDR_OK);
        check(c2 == consumed && memcmp(&p, &q, sizeof(p)) == 0);
    } else {
        check(consumed == 0);
        check(alen == 0 && llen == 0 && dlen == 0);
    }

    if (addr_check_domain(s, len, flags)) {
        check(len > 0 && len <= ADDR_DOMAIN_MAX);
        check_no_ctl(s, len, flags & ADDR_ALLOW_UTF8);
    }
    free(s);
    return 0;
}
