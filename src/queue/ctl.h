/* ctl: the protocol of the queue manager's control socket, spoken by `sluice queue`,
 * `mailq` and `sluice sendmail` (clients) and the queue manager (server). Pure: it formats
 * and parses lines; the socket I/O is the callers'. Every line ends with LF and is at most
 * CTL_LINE_MAX octets including the LF; every value that could hold a space or a control
 * byte travels as xtext (RFC 3461 §4), so no value can split or forge a line.
 *
 * A connection carries one request:
 *   client: a request line ("list", "show ID", "flush", "flush ID", "hold ID", "release ID",
 *           "delete ID", "submit");
 *   server, for list and show: a "msg" line per message, each followed by its "rcpt" lines,
 *           then "ok"; for the others: "ok [text]" or "err CODE text" (CODE an RFC 3463
 *           enhanced status code), then it closes.
 *   submit: the client then sends "from X", one "rcpt X" per recipient (at least one, at
 *           most CTL_SUBMIT_RCPTS_MAX), then "data N" and exactly N octets of message; the
 *           server answers "ok QUEUEID" once the message is durable in queue/, or "err ...". */
#ifndef SLUICE_QUEUE_CTL_H
#define SLUICE_QUEUE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/id.h"

#define CTL_LINE_MAX 4096
#define CTL_SUBMIT_RCPTS_MAX 1000

enum ctl_verb { CTL_LIST, CTL_SHOW, CTL_FLUSH, CTL_HOLD, CTL_RELEASE, CTL_DELETE, CTL_SUBMIT };

struct ctl_request {
    enum ctl_verb verb;
    char id[ID_LEN + 1]; /* the queue id; "" for list, submit and flush of everything */
};

/* What a recipient of a queued message is waiting for or ended with. */
enum ctl_rcpt_state {
    CTL_RCPT_PENDING,   /* not tried yet, or being delivered now */
    CTL_RCPT_DEFERRED,  /* tried, failed temporarily; next_try says when again */
    CTL_RCPT_DELIVERED,
    CTL_RCPT_FAILED,    /* failed permanently (a DSN is or was sent) */
};

struct ctl_msg_info {
    const char *id;
    int64_t arrival;  /* seconds since the epoch */
    uint64_t size;    /* octets of the message */
    bool held;
    const char *sender; /* "" for the null sender */
};

struct ctl_rcpt_info {
    const char *addr;
    enum ctl_rcpt_state state;
    unsigned attempts;
    int64_t next_try;   /* seconds since the epoch; 0 when not deferred */
    const char *reason; /* the last failure ("4.4.1 connect to mx.example: refused"); "" none */
};

/* Formatters: write one line (LF included) into out[0..cap), set *len; 0, or -1 with errno
 * ENOSPC (too small, or the line would exceed CTL_LINE_MAX: long values are cut to fit for
 * reason only, which is the one free-text field) or EINVAL (a bad id or verb). */
int ctl_request_format(const struct ctl_request *rq, char *out, size_t cap, size_t *len);
int ctl_msg_format(const struct ctl_msg_info *m, char *out, size_t cap, size_t *len);
int ctl_rcpt_format(const struct ctl_rcpt_info *r, char *out, size_t cap, size_t *len);
/* "ok", "ok TEXT" (text may be NULL or ""), or "err CODE TEXT" when ok is false. */
int ctl_reply_format(bool ok, const char *code, const char *text, char *out, size_t cap,
                     size_t *len);
/* submit lines: "from X", "rcpt X", "data N". */
int ctl_submit_from_format(const char *sender, char *out, size_t cap, size_t *len);
int ctl_submit_rcpt_format(const char *rcpt, char *out, size_t cap, size_t *len);
int ctl_submit_data_format(uint64_t size, char *out, size_t cap, size_t *len);

/* Parsers take one line without its LF (len octets, not NUL-terminated) and fail closed:
 * 0, or -1 with errno EINVAL for anything malformed (unknown word, bad id, bad xtext, a
 * decoded value with CR, LF or NUL, a number out of range, trailing garbage). */
int ctl_request_parse(const char *line, size_t len, struct ctl_request *out);

enum ctl_line_kind {
    CTL_LINE_MSG,   /* fields in msg */
    CTL_LINE_RCPT,  /* fields in rcpt */
    CTL_LINE_OK,    /* text (may be "") */
    CTL_LINE_ERR,   /* code and text */
    CTL_LINE_FROM,  /* submit: text is the sender ("" for the null sender) */
    CTL_LINE_TO,    /* submit: text is a recipient */
    CTL_LINE_DATA,  /* submit: size */
};

/* One parsed line. The strings point into buf (decoded, NUL-terminated), which the caller
 * provides with at least len + 1 octets. */
struct ctl_line {
    enum ctl_line_kind kind;
    struct ctl_msg_info msg;
    struct ctl_rcpt_info rcpt;
    const char *code;
    const char *text;
    uint64_t size;
};

/* A reply or submit line (any kind above). */
int ctl_line_parse(const char *line, size_t len, struct ctl_line *out, char *buf, size_t bufcap);

#endif
