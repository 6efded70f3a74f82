/* smtp_reply: reads server replies for the SMTP/LMTP client (deliver/smtp_client) and
 * parses EHLO keywords. Pure: no I/O, no allocation, no globals.
 *
 * Invariants: a reply is complete only on a line with a space (or nothing) after its code;
 * every line ends in CRLF and holds no NUL; a line is never longer than 512 octets (RFC 5321
 * §4.5.3.1.5), a reply never more than SMTP_REPLY_LINES_MAX lines, and all lines of a reply
 * carry the same code (§4.2.1). Anything else is an error that sticks: the peer is not
 * speaking SMTP and nothing after it can be trusted (HOSTILE-INPUTS J1, J2). Memory is the
 * fixed size of struct smtp_reply_parser whatever the input.
 *
 * RFC 5321 §4.2 (reply lines, codes 2yz..5yz), RFC 2034 §4 (enhanced codes in replies),
 * RFC 3463 §2 (their syntax), RFC 5321 §4.1.1.1 (EHLO keywords). */
#include "deliver/smtp_reply.h"

#include <string.h>
#include <strings.h>

static bool smtp_reply_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static void smtp_reply_reset(struct smtp_reply_parser *p)
{
    p->status = SMTP_REPLY_MORE;
    p->reply.code = 0;
    p->reply.enhanced[0] = '\0';
    p->reply.text[0] = '\0';
    p->reply.textlen = 0;
    p->reply.nlines = 0;
    p->reply.truncated = false;
    p->linelen = 0;
    p->cr = false;
}

void smtp_reply_parser_init(struct smtp_reply_parser *p)
{
    smtp_reply_reset(p);
}

/* Counts up to 3 digits at s[0..len); 0 when there are none or more than 3. */
static size_t smtp_reply_digits(const unsigned char *s, size_t len)
{
    size_t n = 0;
    while (n < len && smtp_reply_digit(s[n]))
        n++;
    return n >= 1 && n <= 3 ? n : 0;
}

/* RFC 2034 §4: "class.subject.detail" then a space or the end, with the class of the code. */
static void smtp_reply_enhanced(struct smtp_reply *r, const unsigned char *t, size_t len)
{
    if (len < 5 || t[0] != (unsigned char)('0' + r->code / 100) || t[1] != '.')
        return;
    size_t i = 2;
    size_t n = smtp_reply_digits(t + i, len - i);
    if (n == 0)
        return;
    i += n;
    if (i >= len || t[i] != '.')
        return;
    i++;
    n = smtp_reply_digits(t + i, len - i);
    if (n == 0)
        return;
    i += n;
    if (i < len && t[i] != ' ')
        return;
    memcpy(r->enhanced, t, i);
    r->enhanced[i] = '\0';
}

static void smtp_reply_append(struct smtp_reply *r, const unsigned char *t, size_t len)
{
    size_t room = SMTP_REPLY_TEXT_MAX - r->textlen;
    if (len > room) {
        len = room;
        r->truncated = true;
    }
    memcpy(r->text + r->textlen, t, len);
    r->textlen += len;
    r->text[r->textlen] = '\0';
}

/* One complete line without its CRLF. */
static enum smtp_reply_status smtp_reply_line(struct smtp_reply_parser *p, const unsigned char *s,
                                              size_t len)
{
    struct smtp_reply *r = &p->reply;

    if (len < 3 || !smtp_reply_digit(s[0]) || !smtp_reply_digit(s[1]) || !smtp_reply_digit(s[2]))
        return SMTP_REPLY_ERR_SYNTAX;
    if (len > 3 && s[3] != '-' && s[3] != ' ')
        return SMTP_REPLY_ERR_SYNTAX;
    if (s[0] < '2' || s[0] > '5' || s[1] > '5')
        return SMTP_REPLY_ERR_CODE;
    unsigned code =
        (unsigned)(s[0] - '0') * 100 + (unsigned)(s[1] - '0') * 10 + (unsigned)(s[2] - '0');
    if (r->nlines > 0 && code != r->code)
        return SMTP_REPLY_ERR_CODE_CHANGED;
    if (r->nlines == SMTP_REPLY_LINES_MAX)
        return SMTP_REPLY_ERR_TOO_MANY;
    const unsigned char *t = len > 3 ? s + 4 : s + 3;
    size_t tlen = len > 3 ? len - 4 : 0;
    if (r->nlines == 0) {
        r->code = code;
        smtp_reply_enhanced(r, t, tlen);
    } else {
        smtp_reply_append(r, (const unsigned char *)"\n", 1);
    }
    r->nlines++;
    smtp_reply_append(r, t, tlen);
    return len > 3 && s[3] == '-' ? SMTP_REPLY_MORE : SMTP_REPLY_DONE;
}

enum smtp_reply_status smtp_reply_parse(struct smtp_reply_parser *p, const unsigned char *in,
                                        size_t len, size_t *consumed)
{
    *consumed = 0;
    if (p->status == SMTP_REPLY_DONE)
        smtp_reply_reset(p);
    if (p->status != SMTP_REPLY_MORE)
        return p->status;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = in[i];
        enum smtp_reply_status st = SMTP_REPLY_MORE;

        if (p->cr) {
            if (c != '\n') {
                st = SMTP_REPLY_ERR_BARE_CR;
            } else {
                st = smtp_reply_line(p, p->line, p->linelen - 1);
                p->linelen = 0;
                p->cr = false;
            }
        } else if (c == '\0') {
            st = SMTP_REPLY_ERR_NUL;
        } else if (c == '\n') {
            st = SMTP_REPLY_ERR_BARE_LF;
        } else {
            /* The shortest the line can still end up, CRLF included. */
            size_t least = p->linelen + 1 + (c == '\r' ? 1 : 2);
            if (least > SMTP_REPLY_LINE_MAX) {
                st = SMTP_REPLY_ERR_TOO_LONG;
            } else {
                p->line[p->linelen++] = c;
                p->cr = c == '\r';
            }
        }
        if (st != SMTP_REPLY_MORE) {
            p->status = st;
            if (st == SMTP_REPLY_DONE)
                *consumed = i + 1;
            return st;
        }
    }
    *consumed = len;
    return SMTP_REPLY_MORE;
}

const char *smtp_reply_status_name(enum smtp_reply_status st)
{
    switch (st) {
    case SMTP_REPLY_MORE:
        return "incomplete";
    case SMTP_REPLY_DONE:
        return "ok";
    case SMTP_REPLY_ERR_TOO_LONG:
        return "line_too_long";
    case SMTP_REPLY_ERR_TOO_MANY:
        return "too_many_lines";
    case SMTP_REPLY_ERR_SYNTAX:
        return "syntax";
    case SMTP_REPLY_ERR_CODE:
        return "bad_code";
    case SMTP_REPLY_ERR_CODE_CHANGED:
        return "code_changed";
    case SMTP_REPLY_ERR_BARE_LF:
        return "bare_lf";
    case SMTP_REPLY_ERR_BARE_CR:
        return "bare_cr";
    case SMTP_REPLY_ERR_NUL:
        return "nul";
    }
    return "unknown";
}

bool smtp_reply_names(const struct smtp_reply *r, const char *name)
{
    size_t n = 0;
    while (n < r->textlen && r->text[n] != ' ' && r->text[n] != '\n')
        n++;
    return n > 0 && strlen(name) == n && strncasecmp(r->text, name, n) == 0;
}

struct smtp_reply_word {
    const char *name;
    unsigned bit;
};

static const struct smtp_reply_word smtp_reply_exts[] = {
    {"PIPELINING", SMTP_EXT_PIPELINING},
    {"SIZE", SMTP_EXT_SIZE},
    {"8BITMIME", SMTP_EXT_8BITMIME},
    {"SMTPUTF8", SMTP_EXT_SMTPUTF8},
    {"CHUNKING", SMTP_EXT_CHUNKING},
    {"BINARYMIME", SMTP_EXT_BINARYMIME},
    {"STARTTLS", SMTP_EXT_STARTTLS},
    {"DSN", SMTP_EXT_DSN},
    {"AUTH", SMTP_EXT_AUTH},
    {"ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES},
};

static const struct smtp_reply_word smtp_reply_mechs[] = {
    {"PLAIN", SMTP_AUTH_PLAIN},       {"LOGIN", SMTP_AUTH_LOGIN},
    {"CRAM-MD5", SMTP_AUTH_CRAM_MD5}, {"SCRAM-SHA-256", SMTP_AUTH_SCRAM_SHA_256},
    {"XOAUTH2", SMTP_AUTH_XOAUTH2},   {"OAUTHBEARER", SMTP_AUTH_OAUTHBEARER},
};

static unsigned smtp_reply_lookup(const struct smtp_reply_word *w, size_t n, const char *s,
                                  size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(w[i].name) == len && strncasecmp(w[i].name, s, len) == 0)
            return w[i].bit;
    return 0;
}

/* RFC 1870 §4: "SIZE" [SP number]; a number that does not fit reads as no limit. */
static uint64_t smtp_reply_size(const char *s, size_t len)
{
    uint64_t v = 0;
    if (len == 0 || len > 19)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (!smtp_reply_digit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v;
}

/* One keyword line: the keyword, then its parameters separated by spaces. */
static void smtp_ehlo_line(const char *s, size_t len, struct smtp_ehlo *out)
{
    size_t k = 0;
    while (k < len && s[k] != ' ' && s[k] != '=')
        k++;
    unsigned bit = smtp_reply_lookup(smtp_reply_exts,
                                     sizeof smtp_reply_exts / sizeof smtp_reply_exts[0], s, k);
    if (bit == 0 || (k < len && s[k] == '=' && bit != SMTP_EXT_AUTH))
        return;
    out->ext |= bit;
    size_t i = k < len ? k + 1 : k;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != ' ')
            j++;
        if (bit == SMTP_EXT_SIZE && j > i)
            out->size = smtp_reply_size(s + i, j - i);
        if (bit == SMTP_EXT_AUTH)
            out->auth |= smtp_reply_lookup(smtp_reply_mechs,
                                           sizeof smtp_reply_mechs / sizeof smtp_reply_mechs[0],
                                           s + i, j - i);
        i = j + 1;
    }
}

void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *out)
{
    memset(out, 0, sizeof *out);
    const char *p = memchr(r->text, '\n', r->textlen);
    const char *end = r->text + r->textlen;
    while (p != NULL && p < end) {
        const char *s = p + 1;
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl != NULL ? nl : end;
        smtp_ehlo_line(s, (size_t)(e - s), out);
        p = nl;
    }
}
