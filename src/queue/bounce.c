/* bounce: composes RFC 3464 delivery status notifications for the queue manager, which
 * calls bounce_wanted per recipient and bounce_compose once per message and report kind.
 * Invariants: pure (no I/O, no allocation, no globals); never writes past cap, and keeps
 * counting past it so that ENOSPC reports the exact size needed; every value placed in a
 * header or a DSN field is refused if it carries a control byte, so no field can be
 * injected (HOSTILE-INPUTS B4). Implements RFC 3464 §2, §2.1-2.3, RFC 6522 (multipart/report,
 * text/rfc822-headers), RFC 3461 §4.1 (NOTIFY) and §4.2/§4.4 (ORCPT, ENVID), RFC 3834 §5
 * (Auto-Submitted) and RFC 5322 §3.3 (dates). */
#include "queue/bounce.h"

#include <errno.h>
#include <string.h>

#include "util/outbuf.h"

#include "smtp/proto.h"
#include "util/date.h"

/* 9999-12-31T23:59:59Z: the last second RFC 5322's four-digit year can show. */
#define BOUNCE_TIME_MAX INT64_C(253402300799)

/* RFC 5322 §3.3 date-time in UTC; t was range-checked by the caller. */
static void bounce_put_date(struct outbuf *o, int64_t t)
{
    char d[DATE_RFC5322_LEN];
    date_rfc5322(d, t);
    outbuf_puts(o, d);
}

/* A value fit for a header or DSN field: no C0 control byte but HTAB, and no DEL. */
static bool bounce_value_ok(const char *s, bool may_be_empty)
{
    if (s == NULL)
        return false;
    if (*s == '\0')
        return may_be_empty;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

/* RFC 2046 §5.1.1: 1-70 bchars, not ending in a space. */
static bool bounce_boundary_ok(const char *b)
{
    size_t n = 0;
    if (b == NULL)
        return false;
    for (; b[n] != '\0'; n++) {
        unsigned char c = (unsigned char)b[n];
        bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  strchr("'()+_,-./:=? ", c) != NULL;
        if (!ok || n >= BOUNCE_BOUNDARY_MAX)
            return false;
    }
    return n > 0 && b[n - 1] != ' ';
}

static bool bounce_contains(const unsigned char *hay, size_t hn, const char *needle)
{
    size_t nn = strlen(needle);
    if (nn > hn)
        return false;
    for (size_t i = 0; i + nn <= hn; i++)
        if (hay[i] == (unsigned char)needle[0] && memcmp(hay + i, needle, nn) == 0)
            return true;
    return false;
}

static bool bounce_rcpt_ok(const struct bounce_rcpt *br)
{
    const struct deliver_result *res = br->result;
    if (br->rcpt == NULL || res == NULL || !bounce_value_ok(br->rcpt->addr, false))
        return false;
    if (br->rcpt->orcpt != NULL && !bounce_value_ok(br->rcpt->orcpt, false))
        return false;
    if (memchr(res->enhanced, '\0', sizeof res->enhanced) == NULL ||
        memchr(res->text, '\0', sizeof res->text) == NULL)
        return false;
    if (!bounce_value_ok(res->enhanced, false) || !bounce_value_ok(res->text, true))
        return false;
    if (br->remote_mta != NULL && !bounce_value_ok(br->remote_mta, false))
        return false;
    return br->diagnostic == NULL || bounce_value_ok(br->diagnostic, false);
}

static bool bounce_input_ok(const struct bounce_input *in)
{
    const struct queue_envelope *env = in->env;
    if (env == NULL || in->rcpts == NULL || in->nrcpts == 0)
        return false;
    /* RFC 5321 §4.5.5: a message from the null sender is never bounced. */
    if (!bounce_value_ok(env->sender, false))
        return false;
    if (env->envid != NULL && !bounce_value_ok(env->envid, false))
        return false;
    if (!bounce_value_ok(in->queue_id, false) || !bounce_value_ok(in->reporting_mta, false))
        return false;
    for (const char *t = in->tag; t != NULL && *t != '\0'; t++)
        if (!((*t >= '0' && *t <= '9') || (*t >= 'A' && *t <= 'Z')))
            return false;
    if (in->now < 0 || in->now > BOUNCE_TIME_MAX || env->arrival < 0 ||
        env->arrival > BOUNCE_TIME_MAX)
        return false;
    if (!bounce_boundary_ok(in->boundary))
        return false;
    if (in->original == NULL && in->original_len != 0)
        return false;
    if (bounce_contains(in->original, in->original_len, in->boundary))
        return false;
    for (size_t i = 0; i < in->nrcpts; i++)
        if (!bounce_rcpt_ok(&in->rcpts[i]))
            return false;
    return true;
}

static void bounce_put_field(struct outbuf *o, const char *name, const char *value)
{
    outbuf_puts(o, name);
    outbuf_puts(o, ": ");
    outbuf_puts(o, value);
    outbuf_puts(o, "\r\n");
}

static void bounce_put_delimiter(struct outbuf *o, const char *boundary, bool last)
{
    outbuf_puts(o, "--");
    outbuf_puts(o, boundary);
    outbuf_puts(o, last ? "--\r\n" : "\r\n");
}

static void bounce_put_headers(struct outbuf *o, const struct bounce_input *in)
{
    outbuf_puts(o, "From: Mail Delivery System <MAILER-DAEMON@");
    outbuf_puts(o, in->reporting_mta);
    outbuf_puts(o, ">\r\nTo: <");
    outbuf_puts(o, in->env->sender);
    outbuf_puts(o, ">\r\n");
    bounce_put_field(o, "Subject", in->delay ? "Delayed Mail (still being retried)"
                                             : "Undelivered Mail Returned to Sender");
    outbuf_puts(o, "Date: ");
    bounce_put_date(o, in->now);
    outbuf_puts(o, "\r\nMessage-ID: <");
    outbuf_puts(o, in->queue_id);
    /* A delay warning and the later failure report on the same message need distinct ids. */
    outbuf_puts(o, in->delay ? ".delay" : ".bounce");
    if (in->tag != NULL) {
        outbuf_puts(o, ".");
        outbuf_puts(o, in->tag);
    }
    outbuf_puts(o, "@");
    outbuf_puts(o, in->reporting_mta);
    outbuf_puts(o, ">\r\n");
    /* RFC 3834 §5: marks the DSN as automatic so that responders do not answer it. */
    bounce_put_field(o, "Auto-Submitted", "auto-replied");
    bounce_put_field(o, "MIME-Version", "1.0");
    outbuf_puts(o, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                   "\tboundary=\"");
    outbuf_puts(o, in->boundary);
    outbuf_puts(o, "\"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n");
}

/* RFC 3464 §2 (b): the human-readable part. */
static void bounce_put_human(struct outbuf *o, const struct bounce_input *in)
{
    bounce_put_delimiter(o, in->boundary, false);
    outbuf_puts(o, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
    outbuf_puts(o, "This is the mail system at host ");
    outbuf_puts(o, in->reporting_mta);
    outbuf_puts(o, ".\r\n\r\n");
    if (in->delay)
        outbuf_puts(o, "Your message has not yet been delivered to the recipients below.\r\n"
                       "Delivery will be retried; you do not need to resend it.\r\n\r\n");
    else
        outbuf_puts(o, "Your message could not be delivered to the recipients below.\r\n"
                       "This is a permanent error; it will not be retried.\r\n\r\n");
    for (size_t i = 0; i < in->nrcpts; i++) {
        const struct bounce_rcpt *br = &in->rcpts[i];
        outbuf_puts(o, "  <");
        outbuf_puts(o, br->rcpt->addr);
        outbuf_puts(o, ">: ");
        outbuf_puts(o, br->result->text[0] != '\0' ? br->result->text : br->result->enhanced);
        outbuf_puts(o, "\r\n");
    }
    outbuf_puts(o, "\r\n");
}

/* RFC 3464 §2.1-2.3: the machine-readable part. */
static void bounce_put_status(struct outbuf *o, const struct bounce_input *in)
{
    bounce_put_delimiter(o, in->boundary, false);
    outbuf_puts(o, "Content-Type: message/delivery-status\r\n\r\n");
    outbuf_puts(o, "Reporting-MTA: dns; ");
    outbuf_puts(o, in->reporting_mta);
    outbuf_puts(o, "\r\n");
    /* RFC 3464 §2.2.1: only when the envelope carried ENVID, case preserved. */
    if (in->env->envid != NULL)
        bounce_put_field(o, "Original-Envelope-Id", in->env->envid);
    outbuf_puts(o, "Arrival-Date: ");
    bounce_put_date(o, in->env->arrival);
    outbuf_puts(o, "\r\n");
    for (size_t i = 0; i < in->nrcpts; i++) {
        const struct bounce_rcpt *br = &in->rcpts[i];
        outbuf_puts(o, "\r\n");
        /* RFC 3461 §4.2: ORCPT is kept decoded as "addr-type;address", what §2.3.1 wants. */
        if (br->rcpt->orcpt != NULL)
            bounce_put_field(o, "Original-Recipient", br->rcpt->orcpt);
        outbuf_puts(o, "Final-Recipient: rfc822; ");
        outbuf_puts(o, br->rcpt->addr);
        outbuf_puts(o, "\r\n");
        bounce_put_field(o, "Action", in->delay ? "delayed" : "failed");
        bounce_put_field(o, "Status", br->result->enhanced);
        if (br->remote_mta != NULL) {
            outbuf_puts(o, "Remote-MTA: dns; ");
            outbuf_puts(o, br->remote_mta);
            outbuf_puts(o, "\r\n");
        }
        if (br->diagnostic != NULL)
            bounce_put_field(o, "Diagnostic-Code", br->diagnostic);
        outbuf_puts(o, "Last-Attempt-Date: ");
        bounce_put_date(o, in->now);
        outbuf_puts(o, "\r\n");
    }
    outbuf_puts(o, "\r\n");
}

/* RFC 3464 §2 (d) and RFC 6522 §4: the returned message or its header section. */
static void bounce_put_original(struct outbuf *o, const struct bounce_input *in)
{
    bool eight = false;
    for (size_t i = 0; i < in->original_len && !eight; i++)
        eight = in->original[i] >= 0x80;
    bounce_put_delimiter(o, in->boundary, false);
    outbuf_puts(o, in->original_is_headers ? "Content-Type: text/rfc822-headers\r\n"
                                           : "Content-Type: message/rfc822\r\n");
    if (eight)
        outbuf_puts(o, "Content-Transfer-Encoding: 8bit\r\n");
    outbuf_puts(o, "\r\n");
    outbuf_put(o, in->original, in->original_len);
    /* RFC 2046 §5.1.1: the CRLF before a delimiter belongs to it, so a part ending in CRLF
     * still needs one more. */
    outbuf_puts(o, "\r\n");
}

bool bounce_wanted(const struct queue_envelope *env, const struct queue_rcpt *r, bool delay)
{
    if (env == NULL || r == NULL || env->sender == NULL || env->sender[0] == '\0')
        return false;
    if (r->notify & PROTO_NOTIFY_NEVER)
        return false;
    /* RFC 3461 §4.1: no NOTIFY may be read as FAILURE or FAILURE,DELAY; we read FAILURE. */
    if (r->notify == 0)
        return !delay;
    return (r->notify & (delay ? PROTO_NOTIFY_DELAY : PROTO_NOTIFY_FAILURE)) != 0;
}

int bounce_compose(const struct bounce_input *in, unsigned char *out, size_t cap, size_t *len)
{
    struct outbuf o = { .buf = out, .cap = out != NULL ? cap : 0, .pos = 0 };

    if (in == NULL || len == NULL || !bounce_input_ok(in))
        return EINVAL;
    bounce_put_headers(&o, in);
    bounce_put_human(&o, in);
    bounce_put_status(&o, in);
    bounce_put_original(&o, in);
    bounce_put_delimiter(&o, in->boundary, true);
    *len = o.pos;
    return o.pos > o.cap ? ENOSPC : 0;
}
