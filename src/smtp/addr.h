/* addr: RFC 5321 §4.1.2 paths (and RFC 6531 UTF-8 mailboxes). Pure. */
#ifndef SLUICE_SMTP_ADDR_H
#define SLUICE_SMTP_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_LOCAL_MAX 64   /* RFC 5321 §4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255 /* RFC 5321 §4.5.3.1.2 */
#define ADDR_PATH_MAX 256   /* RFC 5321 §4.5.3.1.3, including the angle brackets */

#define ADDR_ALLOW_NULL 0x1       /* "<>" is acceptable (MAIL FROM) */
#define ADDR_ALLOW_POSTMASTER 0x2 /* "<Postmaster>" without a domain (RCPT TO, §4.1.1.3) */
#define ADDR_ALLOW_UTF8 0x4       /* SMTPUTF8 was declared: UTF-8 local part and domain */

enum addr_result {
    ADDR_OK,
    ADDR_ERR_SYNTAX,           /* not a path: missing brackets, bad characters, ... */
    ADDR_ERR_LOCAL_TOO_LONG,   /* local part over ADDR_LOCAL_MAX octets */
    ADDR_ERR_DOMAIN_TOO_LONG,  /* domain over ADDR_DOMAIN_MAX octets */
    ADDR_ERR_PATH_TOO_LONG,    /* whole path over ADDR_PATH_MAX octets */
    ADDR_ERR_NEED_SMTPUTF8,    /* a byte >= 0x80 without ADDR_ALLOW_UTF8 (RFC 6531 §3.4),
                                  well-formed or not */
    ADDR_ERR_BAD_UTF8,         /* with ADDR_ALLOW_UTF8: bytes >= 0x80 that are not
                                  well-formed UTF-8 */
};

struct addr_path {
    char addr[ADDR_PATH_MAX + 1];       /* mailbox as sent, source route removed; "" for <>;
                                           "Postmaster" (in the case sent) for a bare postmaster */
    char local[ADDR_LOCAL_MAX + 1];     /* local part with quotes and quoted-pairs undone */
    char domain[ADDR_DOMAIN_MAX + 1];   /* domain lower-cased (ASCII letters only), or the
                                           address literal with its brackets; "" when none */
    bool is_null;                       /* the null path <> */
    bool had_route;                     /* an obsolete source route "@a,@b:" was stripped */
    bool quoted;                        /* the local part was a quoted-string */
    bool literal;                       /* the domain is an address literal [..] */
    bool utf8;                          /* the mailbox holds bytes >= 0x80 */
};

/* Parse a path that starts at s[0] == '<'. On ADDR_OK, *consumed is the number of
 * bytes up to and including the closing '>'. Never reads past s[len - 1]; a NUL or any
 * control byte anywhere is ADDR_ERR_SYNTAX. */
enum addr_result addr_parse_path(const char *s, size_t len, unsigned flags, struct addr_path *out,
                                 size_t *consumed);

/* True when the local part is "postmaster" in any case (RFC 5321 §4.5.1). */
bool addr_is_postmaster(const struct addr_path *p);

/* True when s is a Domain (RFC 5321 §4.1.2; with ADDR_ALLOW_UTF8 also U-labels, RFC 6531)
 * or an address literal with its brackets (§4.1.3), at most ADDR_DOMAIN_MAX octets.
 * Used for the EHLO/HELO argument. */
bool addr_check_domain(const char *s, size_t len, unsigned flags);

#endif
