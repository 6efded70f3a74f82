/* qlog: the records of the queue manager's outcome log (doc/QUEUE.md, "Recipient outcomes"):
 * what happened to each recipient of each queued message, appended and fdatasynced in
 * groups, replayed at start. Pure codec: bytes in, records out; the file handling is the
 * scheduler's. A record is self-delimiting and checksummed, so a reader stops cleanly at a
 * torn tail. */
#ifndef SLUICE_QUEUE_QLOG_H
#define SLUICE_QUEUE_QLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/id.h"

enum qlog_type {
    QLOG_DELIVERED = 1, /* rcpt delivered at time */
    QLOG_DEFERRED,      /* rcpt failed for now: attempts so far, time = next try, reason */
    QLOG_FAILED,        /* rcpt failed for good at time, reason, remote (extra = remote MTA) */
    QLOG_BOUNCED,       /* the failure DSN covering rcpt is in queue/ (extra = its id) */
    QLOG_EXPANDED,      /* rcpt was an alias, replaced by the ADDED recipients: final */
    QLOG_ADDED,         /* a new recipient rcpt (extra = address), from recipient attempts */
    QLOG_WARNED,        /* the delay DSN of the message is queued (rcpt unused) */
    QLOG_HOLD,          /* the operator held the message */
    QLOG_RELEASE,       /* ... and released it */
    QLOG_REMOVED,       /* the message file is gone: forget the id */
};
#define QLOG_TYPE_MAX QLOG_REMOVED

#define QLOG_TEXT_MAX 255   /* reason */
#define QLOG_EXTRA_MAX 511  /* an address or a host name */
#define QLOG_HEADER 8       /* magic and length, before the rest */
#define QLOG_RECORD_MAX 1024

struct qlog_rec {
    enum qlog_type type;
    char id[ID_LEN + 1];
    uint32_t rcpt;
    uint32_t attempts;
    int64_t time;
    bool remote;                      /* text is the peer's reply */
    char enhanced[8];                 /* "5.1.1"; "" when none */
    char text[QLOG_TEXT_MAX + 1];
    char extra[QLOG_EXTRA_MAX + 1];
};

/* Encode into out[0..cap); *len set. 0, or -1: EINVAL for a bad type or id, a string too
 * long or with a control byte (CR, LF, NUL), ENOSPC when cap is too small. */
int qlog_encode(const struct qlog_rec *r, unsigned char *out, size_t cap, size_t *len);

enum qlog_decode_status {
    QLOG_OK,      /* *r filled, *used octets consumed */
    QLOG_SHORT,   /* in holds the start of a record but not all of it: torn tail or read more */
    QLOG_CORRUPT, /* not a record: wrong magic, length, checksum, type or value */
};

/* Decode the record at the start of in[0..len). Fails closed. */
enum qlog_decode_status qlog_decode(const unsigned char *in, size_t len, struct qlog_rec *r,
                                    size_t *used);

#endif
