/* smtp_reply: the SMTP client's reader of server replies (RFC 5321 §4.2, §4.5.3.1.5) with
 * RFC 2034 enhanced codes, and the EHLO keyword parser (RFC 5321 §4.1.1.1). Pure and
 * resumable: bytes in, split anywhere; one complete reply out. Bounded memory whatever the
 * peer sends (HOSTILE-INPUTS J1, J2): anything malformed is an error the caller turns into a
 * temporary failure, never a guess. */
#ifndef SLUICE_DELIVER_SMTP_REPLY_H
#define SLUICE_DELIVER_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_LINE_MAX 512   /* octets of one reply line, CRLF included (§4.5.3.1.5) */
#define SMTP_REPLY_LINES_MAX 100  /* lines of one reply; more is an endless reply (J2) */
#define SMTP_REPLY_TEXT_MAX 8192  /* bytes of text kept; the rest is dropped (truncated) */
#define SMTP_REPLY_ENHANCED_MAX 9 /* "5.123.123" (RFC 3463 §2) */

enum smtp_reply_status {
    SMTP_REPLY_MORE,             /* everything consumed, the reply is not complete yet */
    SMTP_REPLY_DONE,             /* a complete reply is in parser->reply */
    SMTP_REPLY_ERR_TOO_LONG,     /* a line over SMTP_REPLY_LINE_MAX octets */
    SMTP_REPLY_ERR_TOO_MANY,     /* over SMTP_REPLY_LINES_MAX lines */
    SMTP_REPLY_ERR_SYNTAX,       /* shorter than 3 digits, a non-digit code, or neither '-'
                                    nor ' ' after it (J1) */
    SMTP_REPLY_ERR_CODE,         /* a code outside 2yz..5yz with y in 0..5 ("999", J2) */
    SMTP_REPLY_ERR_CODE_CHANGED, /* a later line of a multi-line reply has another code (J2) */
    SMTP_REPLY_ERR_BARE_LF,      /* LF without CR before it */
    SMTP_REPLY_ERR_BARE_CR,      /* CR not followed by LF */
    SMTP_REPLY_ERR_NUL,          /* a NUL byte */
};

struct smtp_reply {
    unsigned code;                              /* 200..559 */
    char enhanced[SMTP_REPLY_ENHANCED_MAX + 1]; /* "2.1.5" from the first line when its
                                                   class matches the code; "" otherwise */
    char text[SMTP_REPLY_TEXT_MAX + 1];         /* each line's text after "250-"/"250 ",
                                                   enhanced code included, joined by '\n';
                                                   NUL-terminated; any byte but NUL, CR, LF */
    size_t textlen;
    unsigned nlines;
    bool truncated; /* text was cut at SMTP_REPLY_TEXT_MAX */
};

struct smtp_reply_parser {
    enum smtp_reply_status status; /* MORE while reading, DONE, or the first error (sticky) */
    struct smtp_reply reply;       /* the reply being read; complete after DONE */
    /* private to smtp_reply.c */
    unsigned char line[SMTP_REPLY_LINE_MAX];
    size_t linelen; /* octets of the current line, CR included */
    bool cr;        /* the last octet was CR */
};

/* Start reading replies. */
void smtp_reply_parser_init(struct smtp_reply_parser *p);

/* Consume bytes up to the end of one reply. Returns DONE (and *consumed stops right after
 * the reply's last LF: the rest belongs to the next reply), MORE (all consumed) or an error
 * (the parser is dead: later calls consume nothing and return the same error). After DONE
 * the next call starts a new reply. */
enum smtp_reply_status smtp_reply_parse(struct smtp_reply_parser *p, const unsigned char *in,
                                        size_t len, size_t *consumed);

/* A short name for a status, for logs ("too_long"). */
const char *smtp_reply_status_name(enum smtp_reply_status st);

/* The first word of the reply's first line (the host name in a greeting or an EHLO reply),
 * case-insensitively equal to name. */
bool smtp_reply_names(const struct smtp_reply *r, const char *name);

/* ---- EHLO keywords (RFC 5321 §4.1.1.1 and the extension RFCs) ---- */

#define SMTP_EXT_PIPELINING 0x001          /* RFC 2920 */
#define SMTP_EXT_SIZE 0x002                /* RFC 1870 */
#define SMTP_EXT_8BITMIME 0x004            /* RFC 6152 */
#define SMTP_EXT_SMTPUTF8 0x008            /* RFC 6531 */
#define SMTP_EXT_CHUNKING 0x010            /* RFC 3030 */
#define SMTP_EXT_BINARYMIME 0x020          /* RFC 3030 */
#define SMTP_EXT_STARTTLS 0x040            /* RFC 3207 */
#define SMTP_EXT_DSN 0x080                 /* RFC 3461 */
#define SMTP_EXT_AUTH 0x100                /* RFC 4954 */
#define SMTP_EXT_ENHANCEDSTATUSCODES 0x200 /* RFC 2034 */

#define SMTP_AUTH_PLAIN 0x1 /* RFC 4616 */
#define SMTP_AUTH_LOGIN 0x2
#define SMTP_AUTH_CRAM_MD5 0x4
#define SMTP_AUTH_SCRAM_SHA_256 0x8
#define SMTP_AUTH_XOAUTH2 0x10
#define SMTP_AUTH_OAUTHBEARER 0x20

struct smtp_ehlo {
    unsigned ext;  /* SMTP_EXT_* offered */
    uint64_t size; /* SIZE limit in octets; 0 when none was given, or it was 0, or unreadable */
    unsigned auth; /* SMTP_AUTH_* mechanisms offered (AUTH and the old "AUTH=" form) */
};

/* Read the keywords of a 250 EHLO (or LHLO) reply: every line after the first. Keywords
 * match case-insensitively; unknown ones are ignored. */
void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *out);

#endif
