/* reply: the catalogue of every SMTP reply Sluice sends, with its code, its enhanced
 * status code (RFC 2034, RFC 3463, RFC 5248) and its text. One place for all of them, so
 * codes stay consistent and reviewable. Pure. */
#ifndef SLUICE_SMTP_REPLY_H
#define SLUICE_SMTP_REPLY_H

#include <stddef.h>

enum reply_id {
    /* 2xx and 3xx */
    REPLY_GREETING,          /* 220 {hostname} ESMTP Sluice */
    REPLY_HELO,              /* 250 {hostname} */
    REPLY_OK,                /* 250 2.0.0 Ok */
    REPLY_MAIL_OK,           /* 250 2.1.0 Ok */
    REPLY_RCPT_OK,           /* 250 2.1.5 Ok */
    REPLY_DATA_GO,           /* 354 End data with <CR><LF>.<CR><LF> */
    REPLY_QUEUED,            /* 250 2.0.0 Ok: queued as {id} */
    REPLY_BDAT_OK,           /* 250 2.0.0 Ok: {n} octets received */
    REPLY_QUIT,              /* 221 2.0.0 Bye */
    REPLY_VRFY_CANNOT,       /* 252 2.0.0 ... */
    REPLY_HELP,              /* 214 2.0.0 ... */
    REPLY_STARTTLS_GO,       /* 220 2.0.0 Ready to start TLS */
    /* syntax */
    REPLY_UNKNOWN_COMMAND,
    REPLY_LINE_TOO_LONG,
    REPLY_BARE_LF_COMMAND,
    REPLY_NUL_COMMAND,
    REPLY_CTL_COMMAND,
    REPLY_SYNTAX_EHLO,
    REPLY_SYNTAX_HELO,
    REPLY_SYNTAX_MAIL,
    REPLY_SYNTAX_RCPT,
    REPLY_SYNTAX_DATA,
    REPLY_SYNTAX_NOARG,      /* 501 5.5.4 Syntax: {verb} */
    REPLY_SYNTAX_BDAT,       /* 521: closes the connection */
    REPLY_SYNTAX_VRFY,
    REPLY_BAD_SENDER,
    REPLY_BAD_RCPT,
    REPLY_SENDER_TOO_LONG,
    REPLY_RCPT_TOO_LONG,
    REPLY_NEED_SMTPUTF8,
    REPLY_BAD_UTF8,
    REPLY_PARAM_SYNTAX,
    REPLY_PARAM_UNKNOWN,
    REPLY_SIZE_SYNTAX,
    REPLY_SIZE_EXCEEDED,
    REPLY_BODY_SYNTAX,
    REPLY_XTEXT_SYNTAX,
    REPLY_NOTIFY_SYNTAX,
    REPLY_RET_SYNTAX,
    /* sequence */
    REPLY_NEED_HELO,
    REPLY_NESTED_MAIL,
    REPLY_NEED_MAIL,
    REPLY_NEED_RCPT,
    REPLY_NO_VALID_RCPT,
    REPLY_DATA_AFTER_BDAT,
    REPLY_DATA_BINARYMIME,
    REPLY_RCPT_AFTER_BDAT,
    REPLY_BDAT_NOT_NEGOTIATED, /* closes */
    REPLY_BDAT_NULL,
    REPLY_BDAT_TOO_BIG,
    REPLY_BDAT_DISCARDED,    /* 551 5.0.0 Discarded {n} octets after earlier error */
    REPLY_EXPN_DISABLED,
    REPLY_AUTH_UNAVAILABLE,
    REPLY_AUTH_CHALLENGE,    /* 334 {base64} (RFC 4954 §4: no enhanced code) */
    REPLY_AUTH_OK,           /* 235 2.7.0 */
    REPLY_AUTH_FAILED,       /* 535 5.7.8 (G8) */
    REPLY_AUTH_TEMPFAIL,     /* 454 4.7.0 (G12) */
    REPLY_AUTH_ABORTED,      /* 501 5.7.0 (G3) */
    REPLY_AUTH_BASE64,       /* 501 5.5.2 (G1) */
    REPLY_AUTH_SPLIT,        /* 501 5.5.2 (G2) */
    REPLY_AUTH_TOO_LONG,     /* 500 5.5.6 (G4) */
    REPLY_AUTH_MECH_UNKNOWN, /* 504 5.5.4 (G5) */
    REPLY_AUTH_SYNTAX,       /* 501 5.5.4 (G5) */
    REPLY_AUTH_IN_TX,        /* 503 5.5.1 (G6) */
    REPLY_AUTH_ALREADY,      /* 503 5.5.1 (G6) */
    REPLY_AUTH_TOO_MANY,     /* 421 4.7.0, closes (G8) */
    REPLY_AUTH_REQUIRED,     /* 530 5.7.0 (RFC 4954 §6, RFC 6409 §4.3) */
    REPLY_SENDER_NOT_OWNED,  /* 553 5.7.1 (B15) */
    REPLY_RCPT_FORWARD,      /* 251 2.1.5 (RFC 5321 §3.4) */
    REPLY_RCPT_RELOCATED,    /* 551 5.1.6 */
    REPLY_MAILBOX_DISABLED,  /* 550 5.2.1 */
    REPLY_VRFY_OK,           /* 250 2.1.5 {Name <addr>} */
    REPLY_SYNTAX_EXPN,       /* 501 5.5.4 */
    REPLY_TLS_UNAVAILABLE,
    REPLY_TLS_ACTIVE,
    REPLY_TLS_RATE,
    REPLY_TLS_REQUIRED,
    REPLY_SYNC_ERROR,        /* closes */
    REPLY_FOREIGN_PROTOCOL,  /* closes */
    /* policy */
    REPLY_RELAY_DENIED,      /* 554 5.7.1 <{addr}>: Relay access denied */
    REPLY_USER_UNKNOWN,      /* 550 5.1.1 <{addr}>: Recipient address rejected: User unknown */
    REPLY_TOO_MANY_RCPTS,
    /* message content (after the end of data) */
    REPLY_MSG_TOO_BIG,
    REPLY_MSG_HEADER_TOO_BIG,
    REPLY_MSG_LINE_TOO_LONG,
    REPLY_MSG_BARE_NEWLINE,
    REPLY_MSG_NUL,
    REPLY_MSG_TOO_MANY_HOPS,
    /* resources and the environment */
    REPLY_STORAGE_FULL,
    REPLY_STORAGE_ERROR,
    REPLY_LOCAL_ERROR,
    REPLY_TIMEOUT,           /* closes */
    REPLY_TOO_MANY_ERRORS,   /* closes */
    REPLY_TOO_MANY_JUNK,     /* closes */
    REPLY_TOO_MANY_MESSAGES, /* closes */
    REPLY_TOO_MANY_SESSIONS, /* closes */
    REPLY_TOO_MANY_FROM_IP,  /* closes */
    REPLY_SHUTDOWN,          /* closes */
    REPLY_COUNT
};

struct reply_entry {
    unsigned short code;     /* 220, 250, 501, ... */
    const char *enhanced;    /* "5.5.2", or NULL where RFC 2034 §4 (4) says none: the
                                greeting, the HELO/EHLO response and 3xx replies */
    const char *text;        /* may hold one "{}", replaced by the argument */
};

const struct reply_entry *reply_get(enum reply_id id);

/* Format one reply line "CODE ENH TEXT\r\n" into out; "{}" in the text becomes arg, with
 * every byte outside printable ASCII replaced by '?' and cut at 256 bytes. Returns the
 * length written (always < cap; the line is cut short when cap is too small). */
size_t reply_format(char *out, size_t cap, enum reply_id id, const char *arg);

#endif
