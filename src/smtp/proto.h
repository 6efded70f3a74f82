/* proto: SMTP command lines and ESMTP parameters (RFC 5321 §4.1, RFC 1870, 1652, 3030,
 * 3461, 6531, 4954 §5). Pure: bytes in, results out, no I/O, no allocation. */
#ifndef SLUICE_SMTP_PROTO_H
#define SLUICE_SMTP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/addr.h"

/* ---- line framing (RFC 5321 §2.3.8: only CRLF ends a line) ---- */

enum proto_line_status {
    PROTO_LINE_INCOMPLETE, /* no LF within len and len <= max: wait for more bytes */
    PROTO_LINE_OK,         /* a CRLF-terminated line of *linelen bytes (CRLF excluded) */
    PROTO_LINE_BARE_LF,    /* a line ended by LF without CR (A4); *linelen excludes the LF */
    PROTO_LINE_TOO_LONG,   /* the line is longer than max; *consumed covers it through its LF
                              when one is in buf, else all of buf (the caller keeps
                              discarding until the next LF: A1, A2) */
};

/* Find the first line in buf. max is the longest line allowed, CRLF included
 * (RFC 5321 §4.5.3.1.4: 512). *consumed is the number of bytes to drop from the
 * input, terminator included (0 for INCOMPLETE). */
enum proto_line_status proto_line_scan(const unsigned char *buf, size_t len, size_t max,
                                       size_t *linelen, size_t *consumed);

/* ---- commands ---- */

enum proto_verb {
    PROTO_VERB_UNKNOWN,
    PROTO_VERB_HELO,
    PROTO_VERB_EHLO,
    PROTO_VERB_MAIL,
    PROTO_VERB_RCPT,
    PROTO_VERB_DATA,
    PROTO_VERB_BDAT,
    PROTO_VERB_RSET,
    PROTO_VERB_NOOP,
    PROTO_VERB_QUIT,
    PROTO_VERB_VRFY,
    PROTO_VERB_EXPN,
    PROTO_VERB_HELP,
    PROTO_VERB_STARTTLS,
    PROTO_VERB_AUTH,
    PROTO_VERB_COUNT
};

enum proto_cmd_status {
    PROTO_CMD_OK,
    PROTO_CMD_UNKNOWN,   /* not a verb we know (500 5.5.2) */
    PROTO_CMD_NUL,       /* a NUL byte anywhere in the line (A3) */
    PROTO_CMD_CTL,       /* a bare CR or another control byte (A5) */
    PROTO_CMD_FOREIGN,   /* another protocol or message content in command state: "GET ",
                            "POST ", "CONNECT ", "HEAD ", "PUT ", "OPTIONS ", a header-looking
                            "Name:" token, or a first byte that is not printable ASCII (A8, A9) */
};

struct proto_command {
    enum proto_verb verb;
    const char *arg;  /* points into the line: text after the verb and its spaces ("" if none) */
    size_t arglen;    /* trailing spaces removed */
};

/* Split a line (terminator already removed) into verb and argument. Verbs match case
 * insensitively (A11); a verb must be followed by a space or the end of the line. Bytes
 * >= 0x80 are left for the argument parsers to judge. */
enum proto_cmd_status proto_parse_command(const char *line, size_t len, struct proto_command *cmd);

/* RFC 5321 §4.1.1.1: the EHLO/HELO argument is a domain or an address literal. Returns false
 * for an empty argument, spaces inside, control bytes (A10) or bytes >= 0x80, and for
 * anything that is neither (checked by addr_check_domain: "my_pc" or "mx.example." fail). */
bool proto_check_helo(const char *arg, size_t len);

/* ---- MAIL and RCPT ---- */

enum proto_body { PROTO_BODY_NONE, PROTO_BODY_7BIT, PROTO_BODY_8BITMIME, PROTO_BODY_BINARYMIME };
enum proto_ret { PROTO_RET_NONE, PROTO_RET_FULL, PROTO_RET_HDRS };

#define PROTO_NOTIFY_NEVER 0x1
#define PROTO_NOTIFY_SUCCESS 0x2
#define PROTO_NOTIFY_FAILURE 0x4
#define PROTO_NOTIFY_DELAY 0x8

#define PROTO_ENVID_MAX 100 /* RFC 3461 §4.4: at most 100 characters (decoded) */
#define PROTO_ORCPT_MAX 500 /* RFC 3461 §4.2: "addr-type;xtext", decoded, bounded */
#define PROTO_AUTH_MAX 500  /* RFC 4954 §5 AUTH=<mailbox>, decoded */
#define PROTO_PARAMS_MAX 16 /* more ESMTP parameters than this is a syntax error (B5) */

struct proto_mail {
    struct addr_path path;
    uint64_t size;          /* SIZE= value; 0 when not given */
    bool size_given;
    enum proto_body body;   /* BODY= */
    bool smtputf8;          /* SMTPUTF8 */
    enum proto_ret ret;     /* RET= */
    char envid[PROTO_ENVID_MAX + 1]; /* ENVID= decoded; "" when not given */
    char auth[PROTO_AUTH_MAX + 1];   /* AUTH= decoded ("<>" allowed); "" when not given */
};

struct proto_rcpt {
    struct addr_path path;
    unsigned notify;        /* PROTO_NOTIFY_* bits; 0 when not given */
    char orcpt[PROTO_ORCPT_MAX + 1]; /* ORCPT= decoded, "addr-type;address"; "" when not given */
};

enum proto_arg_status {
    PROTO_ARG_OK,
    PROTO_ARG_SYNTAX,          /* "MAIL FROM:<path>" shape is wrong: 501 5.5.4 */
    PROTO_ARG_BAD_PATH,        /* the path itself is malformed: 501 5.1.7 (MAIL) / 501 5.1.3 (RCPT) */
    PROTO_ARG_PATH_TOO_LONG,   /* a length limit of §4.5.3.1 was exceeded: 501 5.1.3/5.1.7 */
    PROTO_ARG_NEED_SMTPUTF8,   /* 8-bit address without SMTPUTF8: 553 5.6.7 */
    PROTO_ARG_BAD_UTF8,        /* malformed UTF-8 after SMTPUTF8 was declared: 501 5.6.7 */
    PROTO_ARG_PARAM_SYNTAX,    /* "KEY=VALUE" malformed, duplicate, too many: 501 5.5.4 */
    PROTO_ARG_PARAM_UNKNOWN,   /* a parameter we do not support: 555 5.5.4 */
    PROTO_ARG_SIZE_SYNTAX,     /* SIZE= not a decimal number or overflows: 501 5.5.4 */
    PROTO_ARG_SIZE_EXCEEDED,   /* SIZE= above max_size: 552 5.3.4 */
    PROTO_ARG_BODY_SYNTAX,     /* BODY= not 7BIT/8BITMIME/BINARYMIME: 501 5.5.4 */
    PROTO_ARG_XTEXT,           /* ENVID/ORCPT/AUTH xtext bad or decodes to a control byte (B4) */
    PROTO_ARG_NOTIFY_SYNTAX,   /* NOTIFY= not NEVER or a list of SUCCESS/FAILURE/DELAY */
    PROTO_ARG_RET_SYNTAX,      /* RET= not FULL or HDRS */
};

/* Parse the argument of MAIL ("FROM:<path> params"). "FROM:" matches case-insensitively and
 * may be followed by spaces before the '<' (A11: accepted, documented). max_size is the
 * configured message size limit (0 = none) used for SIZE=. */
enum proto_arg_status proto_parse_mail(const char *arg, size_t len, uint64_t max_size,
                                       struct proto_mail *out);

/* Parse the argument of RCPT ("TO:<path> params"); "<Postmaster>" is accepted. allow_utf8
 * is true when the transaction declared SMTPUTF8. */
enum proto_arg_status proto_parse_rcpt(const char *arg, size_t len, bool allow_utf8,
                                       struct proto_rcpt *out);

/* ---- BDAT (RFC 3030 §2) ---- */

/* Parse "size [LAST]". false (length unknowable: 521 and close, D3) on anything else,
 * including a size that is not all digits or does not fit 63 bits. */
bool proto_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last);

#endif
