/* agent: the one interface every delivery agent (maildir, later lmtp and the smtp client)
 * implements, so that the scheduler knows agents only through it (DESIGN §3). An agent
 * delivers one recipient of one committed queue file and says how it went, with an
 * RFC 3463 enhanced status code and a short reason for the later DSN (RFC 3464). */
#ifndef SLUICE_DELIVER_AGENT_H
#define SLUICE_DELIVER_AGENT_H

#include <stdbool.h>

#include "queue/envelope.h"

/* How a delivery ended: delivered, try again later, or never (bounce). */
enum deliver_status { DELIVER_OK, DELIVER_TEMPFAIL, DELIVER_PERMFAIL };

/* An agent's answer: status, RFC 3463 code ("2.0.0", "4.2.2", "5.2.0") and a reason that
 * names no local path (it goes to the sender in a DSN). Both strings NUL-terminated. */
struct deliver_result {
    enum deliver_status status;
    char enhanced[8];
    char text[256];
    bool remote_reply; /* text is the peer's own reply ("550 5.1.1 ..."), printable ASCII only:
                          the DSN shows it as Diagnostic-Code "smtp; <text>" (RFC 3464 §2.3.6) */
};

/* One recipient of one message to deliver; every pointer is the caller's and must stay
 * valid for the duration of the call. */
struct deliver_request {
    const char *queue_path;         /* committed queue file (queue/<id>) */
    const struct queue_envelope *env; /* its envelope (sender for Return-Path) */
    const char *recipient;          /* the envelope recipient being delivered */
    const char *mailbox_dir;        /* the Maildir root for it, already expanded */
    bool verified;                  /* the caller has read the whole file through
                                       queue_file_read (checksum included) and gives where
                                       the message is: the agent then only checks the size */
    uint64_t body_offset, body_len; /* with verified */
    uint64_t quota;                 /* maildir: the mailbox's limit in octets (Maildir++
                                       maildirsize), 0 for none */
};

/* The signature of an agent's synchronous delivery function: fills in *out, always. */
typedef void (*deliver_fn)(const struct deliver_request *rq, struct deliver_result *out);

#endif
