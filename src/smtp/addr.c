/* addr: parser for SMTP paths, RFC 5321 §4.1.2 with the RFC 6531 §3.3 UTF-8 extensions.
 *
 * Called by smtp/proto for MAIL FROM and RCPT TO, and (through addr_check_domain) for the
 * EHLO/HELO argument; later by anything that must re-validate a stored address.
 *
 * Invariants: pure (no I/O, no globals, no allocation); never reads past s[len - 1] and
 * never writes past the fixed arrays of struct addr_path; every field of *out is
 * NUL-terminated whatever the result (all empty unless ADDR_OK). Only bytes the grammar
 * names are accepted, so a NUL, CR, LF or other control byte anywhere in the path is a
 * syntax error. Bytes >= 0x80 are accepted only with ADDR_ALLOW_UTF8 (RFC 6531 §3.3), only
 * in the local part and in domain labels, and only as well-formed UTF-8 (RFC 3629).
 *
 * Implements: Path, A-d-l (the obsolete source route, RFC 5321 §4.1.2 and §C: parsed,
 * checked, then dropped), Mailbox, Dot-string, Quoted-string, Domain, address-literal
 * (RFC 5321 §4.1.3: IPv4, IPv6, General-address-literal) and the size limits of
 * RFC 5321 §4.5.3.1.1-3. A "::" in an IPv6 literal may stand for a single group, as
 * inet_pton(3) accepts, which is a little more liberal than the §4.1.3 ABNF. Domain
 * labels are limited to 63 octets (RFC 1035 §2.3.4), U-labels included.
 */
#include "smtp/addr.h"

#include <string.h>

#define ADDR_LABEL_MAX 63

static bool addr_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool addr_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool addr_is_letdig(unsigned char c)
{
    return addr_is_alpha(c) || addr_is_digit(c);
}

static bool addr_is_hex(unsigned char c)
{
    return addr_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 5322 §3.2.3 atext (ASCII part), as used by RFC 5321 Atom. */
static bool addr_is_atext(unsigned char c)
{
    return addr_is_letdig(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static char addr_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Length of the well-formed UTF-8 sequence (RFC 3629 §4) that starts at s[0] >= 0x80
 * with n bytes available, or 0 when it is malformed, overlong, a surrogate or above
 * U+10FFFF. */
static size_t addr_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t need;

    if (c < 0xc2)
        return 0;
    if (c < 0xe0) {
        need = 2;
    } else if (c < 0xf0) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c < 0xf5) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < need; k++)
        if (s[k] < 0x80 || s[k] > 0xbf)
            return 0;
    return need;
}

/* Judge the byte >= 0x80 at s[i]: on ADDR_OK, *step is the length of its sequence.
 * Undeclared 8-bit is refused first, well-formed or not (RFC 6531 §3.4: 553 5.6.7). */
static enum addr_result addr_take_utf8(const unsigned char *s, size_t len, size_t i, unsigned flags,
                                       size_t *step)
{
    if (!(flags & ADDR_ALLOW_UTF8))
        return ADDR_ERR_NEED_SMTPUTF8;
    size_t k = addr_utf8_len(s + i, len - i);
    if (k == 0)
        return ADDR_ERR_BAD_UTF8;
    *step = k;
    return ADDR_OK;
}

/* RFC 5321 §4.1.2 Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str],
 * RFC 6531 §3.3 sub-domain =/ U-label. */
static enum addr_result addr_check_dotted(const unsigned char *s, size_t len, unsigned flags,
                                          bool *utf8)
{
    size_t label = 0;
    bool prev_hyphen = false;

    if (len == 0)
        return ADDR_ERR_SYNTAX;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c == '.') {
            if (label == 0 || prev_hyphen)
                return ADDR_ERR_SYNTAX;
            label = 0;
            i++;
            continue;
        }
        size_t step = 1;
        if (c >= 0x80) {
            enum addr_result r = addr_take_utf8(s, len, i, flags, &step);
            if (r != ADDR_OK)
                return r;
            *utf8 = true;
        } else if (c == '-') {
            if (label == 0)
                return ADDR_ERR_SYNTAX;
        } else if (!addr_is_letdig(c)) {
            return ADDR_ERR_SYNTAX;
        }
        prev_hyphen = c == '-';
        label += step;
        if (label > ADDR_LABEL_MAX)
            return ADDR_ERR_SYNTAX;
        i += step;
    }
    if (label == 0 || prev_hyphen)
        return ADDR_ERR_SYNTAX;
    return ADDR_OK;
}

/* RFC 5321 §4.1.3 IPv4-address-literal = Snum 3("." Snum), Snum = 1*3DIGIT, 0..255. */
static bool addr_check_ipv4(const unsigned char *s, size_t len)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= len || s[i] != '.')
                return false;
            i++;
        }
        unsigned v = 0;
        size_t digits = 0;
        while (i < len && addr_is_digit(s[i]) && digits < 4) {
            v = v * 10 + (unsigned)(s[i] - '0');
            digits++;
            i++;
        }
        if (digits == 0 || digits > 3 || v > 255)
            return false;
    }
    return i == len;
}

/* RFC 5321 §4.1.3 IPv6-addr (full, compressed, and with a trailing IPv4 part). */
static bool addr_check_ipv6(const unsigned char *s, size_t len)
{
    size_t i = 0, groups = 0;
    bool compressed = false;

    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        compressed = true;
        i = 2;
    } else if (len == 0 || s[0] == ':') {
        return false;
    }
    while (i < len) {
        size_t h = 0;
        while (i + h < len && addr_is_hex(s[i + h]) && h < 5)
            h++;
        if (i + h < len && s[i + h] == '.') {
            if (!addr_check_ipv4(s + i, len - i))
                return false;
            groups += 2;
            i = len;
            break;
        }
        if (h == 0 || h > 4)
            return false;
        groups++;
        i += h;
        if (i == len)
            break;
        if (s[i] != ':')
            return false;
        i++;
        if (i < len && s[i] == ':') {
            if (compressed)
                return false;
            compressed = true;
            i++;
        } else if (i == len) {
            return false;
        }
    }
    return compressed ? groups <= 7 : groups == 8;
}

/* RFC 5321 §4.1.3 dcontent: printable US-ASCII except "[", "\" and "]". */
static bool addr_is_dcontent(unsigned char c)
{
    return c >= 33 && c <= 126 && c != '[' && c != '\\' && c != ']';
}

/* The text between the brackets of an address-literal (RFC 5321 §4.1.3). */
static bool addr_check_literal_body(const unsigned char *s, size_t len)
{
    if (len > 0 && addr_is_digit(s[0]) && addr_check_ipv4(s, len))
        return true;
    size_t colon = 0;
    while (colon < len && s[colon] != ':')
        colon++;
    if (colon == 0 || colon >= len - 1)
        return false;
    /* ABNF strings are case-insensitive (RFC 5234 §2.3): "ipv6:" is "IPv6:". */
    if (colon == 4 && (s[0] | 0x20) == 'i' && (s[1] | 0x20) == 'p' && (s[2] | 0x20) == 'v' &&
        s[3] == '6')
        return addr_check_ipv6(s + 5, len - 5);
    /* General-address-literal: Standardized-tag (an Ldh-str) ":" 1*dcontent. */
    for (size_t k = 0; k < colon; k++)
        if (!addr_is_letdig(s[k]) && s[k] != '-')
            return false;
    if (!addr_is_letdig(s[colon - 1]))
        return false;
    for (size_t k = colon + 1; k < len; k++)
        if (!addr_is_dcontent(s[k]))
            return false;
    return true;
}

bool addr_check_domain(const char *s, size_t len, unsigned flags)
{
    const unsigned char *u = (const unsigned char *)s;
    bool utf8 = false;

    if (len == 0 || len > ADDR_DOMAIN_MAX)
        return false;
    if (u[0] == '[')
        return len >= 2 && u[len - 1] == ']' && addr_check_literal_body(u + 1, len - 2);
    return addr_check_dotted(u, len, flags, &utf8) == ADDR_OK;
}

/* Bytes that may belong to a Domain (checked in detail by addr_check_dotted). */
static bool addr_is_domain_byte(unsigned char c)
{
    return addr_is_letdig(c) || c == '-' || c == '.' || c >= 0x80;
}

/* A-d-l = At-domain *( "," At-domain ) ":", starting at s[*i] == '@'. */
static enum addr_result addr_skip_route(const unsigned char *s, size_t len, size_t *i,
                                        unsigned flags)
{
    size_t p = *i;
    for (;;) {
        if (p >= len || s[p] != '@')
            return ADDR_ERR_SYNTAX;
        p++;
        size_t start = p;
        while (p < len && addr_is_domain_byte(s[p]))
            p++;
        bool utf8 = false;
        if (p - start > ADDR_DOMAIN_MAX)
            return ADDR_ERR_DOMAIN_TOO_LONG;
        enum addr_result r = addr_check_dotted(s + start, p - start, flags, &utf8);
        if (r != ADDR_OK)
            return r;
        if (p >= len)
            return ADDR_ERR_SYNTAX;
        if (s[p] == ':') {
            *i = p + 1;
            return ADDR_OK;
        }
        if (s[p] != ',')
            return ADDR_ERR_SYNTAX;
        p++;
    }
}

/* Local-part = Dot-string / Quoted-string (RFC 5321 §4.1.2, RFC 6531 §3.3). Scans from
 * s[*i], stores the unquoted form in out->local as far as it fits (the caller rejects a
 * local part over ADDR_LOCAL_MAX, so a cut value is never returned as ADDR_OK). */
static enum addr_result addr_scan_local(const unsigned char *s, size_t len, size_t *i,
                                        unsigned flags, struct addr_path *out)
{
    size_t p = *i, n = 0;

    if (p < len && s[p] == '"') {
        out->quoted = true;
        p++;
        for (;;) {
            if (p >= len)
                return ADDR_ERR_SYNTAX;
            unsigned char c = s[p];
            size_t step = 1;
            if (c == '"') {
                p++;
                break;
            }
            if (c == '\\') {
                /* quoted-pairSMTP = %d92 %d32-126 */
                if (p + 1 >= len || s[p + 1] < 32 || s[p + 1] > 126)
                    return ADDR_ERR_SYNTAX;
                p++;
                c = s[p];
            } else if (c >= 0x80) {
                enum addr_result r = addr_take_utf8(s, len, p, flags, &step);
                if (r != ADDR_OK)
                    return r;
                out->utf8 = true;
            } else if (c < 32 || c > 126) {
                return ADDR_ERR_SYNTAX;
            }
            for (size_t k = 0; k < step; k++)
                if (n < ADDR_LOCAL_MAX)
                    out->local[n++] = (char)s[p + k];
            p += step;
        }
    } else {
        bool atom_empty = true;
        while (p < len) {
            unsigned char c = s[p];
            size_t step = 1;
            if (c == '.') {
                if (atom_empty)
                    return ADDR_ERR_SYNTAX;
                atom_empty = true;
            } else if (c >= 0x80) {
                enum addr_result r = addr_take_utf8(s, len, p, flags, &step);
                if (r != ADDR_OK)
                    return r;
                out->utf8 = true;
                atom_empty = false;
            } else if (addr_is_atext(c)) {
                atom_empty = false;
            } else {
                break;
            }
            for (size_t k = 0; k < step; k++)
                if (n < ADDR_LOCAL_MAX)
                    out->local[n++] = (char)s[p + k];
            p += step;
        }
        if (atom_empty)
            return ADDR_ERR_SYNTAX;
    }
    out->local[n] = '\0';
    *i = p;
    return ADDR_OK;
}

static enum addr_result addr_parse(const char *s, size_t len, unsigned flags, struct addr_path *out,
                                   size_t *consumed)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 1;
    enum addr_result r;

    if (len < 2 || u[0] != '<')
        return ADDR_ERR_SYNTAX;
    if (u[1] == '>') {
        /* RFC 5321 §4.5.5: the null reverse-path, for MAIL only. */
        if (!(flags & ADDR_ALLOW_NULL))
            return ADDR_ERR_SYNTAX;
        out->is_null = true;
        *consumed = 2;
        return ADDR_OK;
    }
    if (u[1] == '@') {
        r = addr_skip_route(u, len, &i, flags);
        if (r != ADDR_OK)
            return r;
        out->had_route = true;
    }

    size_t mbox = i;
    r = addr_scan_local(u, len, &i, flags, out);
    if (r != ADDR_OK)
        return r;
    size_t local_len = i - mbox;
    if (i >= len)
        return ADDR_ERR_SYNTAX;

    size_t dom = 0, dom_len = 0;
    if (u[i] == '>') {
        /* RFC 5321 §4.1.1.3: "<Postmaster>" alone, no route, no quotes. */
        if (!(flags & ADDR_ALLOW_POSTMASTER) || out->had_route || out->quoted ||
            !addr_is_postmaster(out))
            return ADDR_ERR_SYNTAX;
    } else {
        if (u[i] != '@')
            return ADDR_ERR_SYNTAX;
        i++;
        dom = i;
        if (i < len && u[i] == '[') {
            i++;
            while (i < len && addr_is_dcontent(u[i]))
                i++;
            if (i >= len || u[i] != ']')
                return ADDR_ERR_SYNTAX;
            i++;
            dom_len = i - dom;
            if (dom_len > ADDR_DOMAIN_MAX)
                return ADDR_ERR_DOMAIN_TOO_LONG;
            if (!addr_check_literal_body(u + dom + 1, dom_len - 2))
                return ADDR_ERR_SYNTAX;
            out->literal = true;
        } else {
            while (i < len && addr_is_domain_byte(u[i]))
                i++;
            dom_len = i - dom;
            if (dom_len > ADDR_DOMAIN_MAX)
                return ADDR_ERR_DOMAIN_TOO_LONG;
            r = addr_check_dotted(u + dom, dom_len, flags, &out->utf8);
            if (r != ADDR_OK)
                return r;
        }
        if (i >= len || u[i] != '>')
            return ADDR_ERR_SYNTAX;
    }

    /* RFC 5321 §4.5.3.1.1-3, in octets (RFC 6531 §3.4 keeps octets for UTF-8). */
    if (local_len > ADDR_LOCAL_MAX)
        return ADDR_ERR_LOCAL_TOO_LONG;
    if (i + 1 > ADDR_PATH_MAX)
        return ADDR_ERR_PATH_TOO_LONG;

    memcpy(out->addr, s + mbox, i - mbox);
    out->addr[i - mbox] = '\0';
    for (size_t k = 0; k < dom_len; k++)
        out->domain[k] = out->literal ? s[dom + k] : addr_lower(s[dom + k]);
    out->domain[dom_len] = '\0';
    *consumed = i + 1;
    return ADDR_OK;
}

enum addr_result addr_parse_path(const char *s, size_t len, unsigned flags, struct addr_path *out,
                                 size_t *consumed)
{
    memset(out, 0, sizeof(*out));
    *consumed = 0;
    enum addr_result r = addr_parse(s, len, flags, out, consumed);
    if (r != ADDR_OK)
        memset(out, 0, sizeof(*out)); /* no half-parsed address for a careless caller */
    return r;
}

bool addr_is_postmaster(const struct addr_path *p)
{
    static const char pm[] = "postmaster";
    for (size_t k = 0; k < sizeof(pm); k++)
        if (addr_lower(p->local[k]) != pm[k])
            return false;
    return true;
}
