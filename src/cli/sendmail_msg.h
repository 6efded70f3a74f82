/* sendmail_msg: the pure parts of sendmail(1): the command line, the end-of-input rule,
 * line-ending normalisation, address lists (for -t and for recipients given as arguments)
 * and completing the header section. No I/O; the functions that build a buffer or a
 * recipient list allocate it with malloc, as each says. */
#ifndef SLUICE_CLI_SENDMAIL_MSG_H
#define SLUICE_CLI_SENDMAIL_MSG_H

#include <stdbool.h>
#include <stddef.h>

enum sendmail_mode {
    SENDMAIL_MODE_DELIVER, /* -bm, the default: read a message and queue it */
    SENDMAIL_MODE_LIST,    /* -bp: print the queue, as mailq */
};

struct sendmail_opts {
    enum sendmail_mode mode;
    bool extract;         /* -t: recipients also from To/Cc/Bcc */
    bool ignore_dots;     /* -i, -oi: a line "." does not end the input */
    const char *sender;   /* -f/-r as given (NULL: not given); see sendmail_sender */
    const char *fullname; /* -F (NULL: not given) */
    const char *config;   /* -C FILE (NULL: not given) */
    int first_rcpt;       /* argv index of the first recipient argument */
};

/* Parse sendmail options from argv[1..argc): -t -i -oi -f ADDR -r ADDR -F NAME -C FILE -bm
 * -bp -v, -oX (other X ignored), -B/-N/-R/-V with a value (ignored), "--" ends options, as
 * does the first argument not starting with '-'. Flags may be grouped ("-ti") and a value
 * may be attached ("-ffoo@bar") or the next argument. 0, or -1 with a message in err. */
int sendmail_parse_args(int argc, char *const *argv, struct sendmail_opts *o, char *err,
                        size_t errcap);

/* The envelope sender from a -f value: "<>" and "" give the null sender (""), "<a@b>" gives
 * "a@b". Writes into out (NUL-terminated); false when it does not fit or holds a control
 * byte or a space outside angle brackets. */
bool sendmail_sender(const char *arg, char *out, size_t outcap);

/* True when a raw input line (with its line ending, if any) is the lone "." that ends the
 * input without -i. */
bool sendmail_is_end_line(const char *line, size_t len);

/* Normalise line endings to CRLF: a bare LF or a bare CR becomes CRLF, and a last line
 * without an ending gets one. Allocates *out (malloc; free it); -1 when out of memory. */
int sendmail_normalise(const char *in, size_t len, char **out, size_t *outlen);

#define SENDMAIL_RCPTS_MAX 1000 /* CTL_SUBMIT_RCPTS_MAX */

/* A list of distinct recipient addresses (malloc'd strings). */
struct sendmail_rcpts {
    char **v;
    size_t n;
    size_t cap;
};

/* Add the addr-specs of an RFC 5322 §3.4 address-list (display names, comments, quoted
 * strings, groups and folding handled; routes dropped) to r, skipping duplicates. An
 * address without '@' gets "@" + domain. -1 with a message in err on malformed input (an
 * unclosed quote, comment or angle bracket), more than SENDMAIL_RCPTS_MAX recipients, or
 * out of memory. */
int sendmail_rcpts_add_list(struct sendmail_rcpts *r, const char *s, size_t len, const char *domain,
                            char *err, size_t errcap);
void sendmail_rcpts_free(struct sendmail_rcpts *r);

/* What the caller adds to a message whose header section lacks them. */
struct sendmail_compose {
    bool extract;           /* -t: To/Cc/Bcc recipients go into rcpts */
    const char *from_addr;  /* address for an added From: */
    const char *fullname;   /* display name for it, or NULL */
    const char *date;       /* RFC 5322 §3.3 date-time for an added Date: */
    const char *message_id; /* "<...>" for an added Message-ID: */
    const char *domain;     /* for recipients without a domain */
};

/* Complete a CRLF message (RFC 5322 §3.6): drop every Bcc: field (§3.6.3: its addresses
 * must not reach the other recipients), prepend From:, Date: and Message-ID: when missing,
 * and with extract add the To/Cc/Bcc addresses to rcpts. A message whose first line is not
 * a header field gets the added fields and an empty line before it. Allocates *out (malloc;
 * free it). -1 with a message in err on a bad address list, a display name holding a
 * control byte, too many recipients, or out of memory. */
int sendmail_complete(const char *msg, size_t len, const struct sendmail_compose *c,
                      struct sendmail_rcpts *rcpts, char **out, size_t *outlen, char *err,
                      size_t errcap);

#endif
