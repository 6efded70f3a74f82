/* sendmail_msg: the pure parts of `sluice sendmail` (cli/sendmail.c calls them): option
 * parsing in the manner of sendmail(1) and Postfix's sendmail, the lone-dot end of input,
 * CRLF normalisation, RFC 5322 §3.4 address lists (for -t and command-line recipients) and
 * the completion of the header section (RFC 5322 §3.6: From and Date are required, a
 * Message-ID should be there; §3.6.3: Bcc addresses must not be shown to the others).
 *
 * Invariants: no I/O and no globals; allocation only where the header says so, every
 * allocation checked and freed on every error path; no value with a control byte is put
 * into an added header field or a recipient (HOSTILE-INPUTS B4).
 */
#include "cli/sendmail_msg.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int sendmail_fail(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int sendmail_fail(char *err, size_t errcap, const char *fmt, ...)
{
    if (errcap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool sendmail_is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* ---- command line -------------------------------------------------------------------- */

static int sendmail_apply(struct sendmail_opts *o, char opt, const char *val, char *err,
                          size_t errcap)
{
    switch (opt) {
    case 'f':
    case 'r':
        o->sender = val;
        break;
    case 'F':
        o->fullname = val;
        break;
    case 'C':
        o->config = val;
        break;
    case 'o':
        /* -oi is the one -o option with a meaning here; sendmail's others do not apply. */
        if (strcmp(val, "i") == 0)
            o->ignore_dots = true;
        break;
    case 'b':
        if (strcmp(val, "m") == 0)
            o->mode = SENDMAIL_MODE_DELIVER;
        else if (strcmp(val, "p") == 0)
            o->mode = SENDMAIL_MODE_LIST;
        else
            return sendmail_fail(err, errcap, "unsupported mode -b%s", val);
        break;
    default: /* -B, -N, -R, -V: body type and DSN requests, accepted for compatibility */
        break;
    }
    return 0;
}

int sendmail_parse_args(int argc, char *const *argv, struct sendmail_opts *o, char *err,
                        size_t errcap)
{
    memset(o, 0, sizeof *o);
    o->mode = SENDMAIL_MODE_DELIVER;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        for (size_t k = 1; a[k] != '\0'; k++) {
            char c = a[k];
            if (c == 't') {
                o->extract = true;
            } else if (c == 'i') {
                o->ignore_dots = true;
            } else if (c == 'v') {
                continue;
            } else if (strchr("frFCobBNRV", c) != NULL) {
                const char *val = a + k + 1;
                if (*val == '\0') {
                    if (i + 1 >= argc)
                        return sendmail_fail(err, errcap, "option -%c needs a value", c);
                    val = argv[++i];
                }
                if (sendmail_apply(o, c, val, err, errcap) != 0)
                    return -1;
                break;
            } else {
                return sendmail_fail(err, errcap, "unknown option -%c", c);
            }
        }
    }
    o->first_rcpt = i;
    return 0;
}

bool sendmail_sender(const char *arg, char *out, size_t outcap)
{
    size_t n = strlen(arg);
    if (n >= 2 && arg[0] == '<' && arg[n - 1] == '>') {
        arg++;
        n -= 2;
    }
    if (n >= outcap)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)arg[i];
        if (sendmail_is_ctl(c) || c == ' ' || c == '<' || c == '>')
            return false;
    }
    memcpy(out, arg, n);
    out[n] = '\0';
    return true;
}

/* ---- input --------------------------------------------------------------------------- */

bool sendmail_is_end_line(const char *line, size_t len)
{
    return (len == 1 && line[0] == '.') || (len == 2 && memcmp(line, ".\n", 2) == 0) ||
           (len == 3 && memcmp(line, ".\r\n", 3) == 0);
}

int sendmail_normalise(const char *in, size_t len, char **out, size_t *outlen)
{
    /* Each input octet yields at most two, plus a final CRLF. */
    if (len > (SIZE_MAX - 3) / 2)
        return -1;
    char *o = malloc(2 * len + 3);
    if (o == NULL)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < len && in[i + 1] == '\n')
                i++;
            o[n++] = '\r';
            o[n++] = '\n';
        } else {
            o[n++] = c;
        }
    }
    if (len > 0 && in[len - 1] != '\n' && in[len - 1] != '\r') {
        o[n++] = '\r';
        o[n++] = '\n';
    }
    *out = o;
    *outlen = n;
    return 0;
}

/* ---- recipients ---------------------------------------------------------------------- */

void sendmail_rcpts_free(struct sendmail_rcpts *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i]);
    free(r->v);
    r->v = NULL;
    r->n = r->cap = 0;
}

static int sendmail_rcpts_push(struct sendmail_rcpts *r, const char *addr, size_t len,
                               const char *domain, char *err, size_t errcap)
{
    size_t dlen = 0;
    if (memchr(addr, '@', len) == NULL && domain != NULL && domain[0] != '\0')
        dlen = strlen(domain) + 1;
    char *s = malloc(len + dlen + 1);
    if (s == NULL)
        return sendmail_fail(err, errcap, "out of memory");
    memcpy(s, addr, len);
    if (dlen > 0) {
        s[len] = '@';
        memcpy(s + len + 1, domain, dlen - 1);
    }
    s[len + dlen] = '\0';
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->v[i], s) == 0) {
            free(s);
            return 0;
        }
    }
    if (r->n >= SENDMAIL_RCPTS_MAX) {
        free(s);
        return sendmail_fail(err, errcap, "more than %d recipients", SENDMAIL_RCPTS_MAX);
    }
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 8;
        char **nv = realloc(r->v, ncap * sizeof *nv);
        if (nv == NULL) {
            free(s);
            return sendmail_fail(err, errcap, "out of memory");
        }
        r->v = nv;
        r->cap = ncap;
    }
    r->v[r->n++] = s;
    return 0;
}

/* One address of the list being read: the text outside angle brackets (an addr-spec, or a
 * display name to be dropped) and the text inside them. */
struct sendmail_item {
    char *bare;
    size_t nbare;
    char *angle;
    size_t nangle;
    bool has_angle;
};

static int sendmail_item_flush(struct sendmail_item *it, struct sendmail_rcpts *r,
                               const char *domain, char *err, size_t errcap)
{
    const char *a = it->has_angle ? it->angle : it->bare;
    size_t n = it->has_angle ? it->nangle : it->nbare;
    /* RFC 5322 §4.4 obs-route ("@a,@b:user@c"): only the part after the colon counts. */
    if (it->has_angle && n > 0 && a[0] == '@') {
        const char *colon = memchr(a, ':', n);
        if (colon == NULL)
            return sendmail_fail(err, errcap, "bad route in address");
        n -= (size_t)(colon + 1 - a);
        a = colon + 1;
    }
    int rc = n > 0 ? sendmail_rcpts_push(r, a, n, domain, err, errcap) : 0;
    it->nbare = it->nangle = 0;
    it->has_angle = false;
    return rc;
}

static int sendmail_parse_list(struct sendmail_item *it, struct sendmail_rcpts *r, const char *s,
                               size_t len, const char *domain, char *err, size_t errcap)
{
    bool inq = false, inangle = false;
    unsigned depth = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char *dst = inangle ? it->angle : it->bare;
        size_t *dn = inangle ? &it->nangle : &it->nbare;
        if (c == '\r' || c == '\n' || c == '\t' || c == ' ') {
            /* Folding (CRLF before WSP) is removed; a quoted string keeps its WSP. */
            if (inq && (c == ' ' || c == '\t'))
                dst[(*dn)++] = (char)c;
            continue;
        }
        if (sendmail_is_ctl(c))
            return sendmail_fail(err, errcap, "control character in address");
        if (c == '\\' && (inq || depth > 0)) {
            if (i + 1 >= len)
                return sendmail_fail(err, errcap, "unterminated quoted pair");
            if (inq) {
                dst[(*dn)++] = '\\';
                dst[(*dn)++] = s[i + 1];
            }
            i++;
            continue;
        }
        if (depth > 0) {
            if (c == '(')
                depth++;
            else if (c == ')')
                depth--;
            continue;
        }
        if (c == '"') {
            inq = !inq;
            dst[(*dn)++] = '"';
            continue;
        }
        if (inq) {
            dst[(*dn)++] = (char)c;
            continue;
        }
        if (c == '(') {
            depth = 1;
        } else if (c == ')') {
            return sendmail_fail(err, errcap, "unbalanced ')' in address");
        } else if (inangle) {
            if (c == '>')
                inangle = false;
            else if (c == '<')
                return sendmail_fail(err, errcap, "nested '<' in address");
            else
                dst[(*dn)++] = (char)c;
        } else if (c == '<') {
            if (it->has_angle)
                return sendmail_fail(err, errcap, "two '<' in one address");
            inangle = it->has_angle = true;
        } else if (c == '>') {
            return sendmail_fail(err, errcap, "unbalanced '>' in address");
        } else if (c == ',' || c == ';') {
            if (sendmail_item_flush(it, r, domain, err, errcap) != 0)
                return -1;
        } else if (c == ':' && !it->has_angle) {
            it->nbare = 0; /* RFC 5322 §3.4 group: what came before is its display name */
        } else if (it->has_angle) {
            return sendmail_fail(err, errcap, "text after '>' in address");
        } else {
            dst[(*dn)++] = (char)c;
        }
    }
    if (inq || inangle || depth > 0)
        return sendmail_fail(err, errcap, "unterminated %s in address",
                             inq       ? "quoted string"
                             : inangle ? "'<'"
                                       : "comment");
    return sendmail_item_flush(it, r, domain, err, errcap);
}

int sendmail_rcpts_add_list(struct sendmail_rcpts *r, const char *s, size_t len, const char *domain,
                            char *err, size_t errcap)
{
    /* Each part holds at most every input octet (a quoted pair keeps its two). */
    struct sendmail_item it = {malloc(len + 1), 0, malloc(len + 1), 0, false};
    int rc;
    if (it.bare == NULL || it.angle == NULL)
        rc = sendmail_fail(err, errcap, "out of memory");
    else
        rc = sendmail_parse_list(&it, r, s, len, domain, err, errcap);
    free(it.bare);
    free(it.angle);
    return rc;
}

/* ---- header completion --------------------------------------------------------------- */

struct sendmail_buf {
    char *p;
    size_t n;
    size_t cap;
    bool oom;
};

static void sendmail_put(struct sendmail_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n > b->cap - b->n) {
        size_t ncap = b->cap;
        while (n > ncap - b->n) {
            if (ncap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            ncap = ncap ? ncap * 2 : 256;
        }
        char *np = realloc(b->p, ncap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void sendmail_puts(struct sendmail_buf *b, const char *s)
{
    sendmail_put(b, s, strlen(s));
}

/* Octets of the line starting at p (with its LF), or of what is left when there is none. */
static size_t sendmail_line_len(const char *p, size_t left)
{
    const char *lf = memchr(p, '\n', left);
    return lf != NULL ? (size_t)(lf - p) + 1 : left;
}

/* RFC 5322 §3.6.8: field-name is 1*ftext (%d33-57 / %d59-126) followed by ':'. Returns the
 * name's length, 0 when the line is not a header field. */
static size_t sendmail_field_name(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] >= 33 && p[i] <= 126 && p[i] != ':')
        i++;
    return i > 0 && i < n && p[i] == ':' ? i : 0;
}

static bool sendmail_name_is(const char *p, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(p, name, n) == 0;
}

/* From: with an optional display name as an RFC 5322 §3.2.4 quoted-string. */
static int sendmail_put_from(struct sendmail_buf *b, const struct sendmail_compose *c, char *err,
                             size_t errcap)
{
    const char *name = c->fullname != NULL ? c->fullname : "";
    for (const char *p = name; *p != '\0'; p++)
        if (sendmail_is_ctl((unsigned char)*p))
            return sendmail_fail(err, errcap, "control character in the full name");
    sendmail_puts(b, "From: ");
    if (name[0] != '\0') {
        sendmail_puts(b, "\"");
        for (const char *p = name; *p != '\0'; p++) {
            if (*p == '"' || *p == '\\')
                sendmail_puts(b, "\\");
            sendmail_put(b, p, 1);
        }
        sendmail_puts(b, "\" <");
        sendmail_puts(b, c->from_addr);
        sendmail_puts(b, ">\r\n");
    } else {
        sendmail_puts(b, c->from_addr);
        sendmail_puts(b, "\r\n");
    }
    return 0;
}

/* The header field starting at msg[pos]: the length of its name and where it ends, its
 * continuation lines included. False at the end of the header section. */
static bool sendmail_next_field(const char *msg, size_t len, size_t pos, size_t *name,
                                size_t *end)
{
    if (pos >= len)
        return false;
    size_t n = sendmail_line_len(msg + pos, len - pos);
    *name = sendmail_field_name(msg + pos, n);
    if (*name == 0)
        return false;
    *end = pos + n;
    while (*end < len && (msg[*end] == ' ' || msg[*end] == '\t'))
        *end += sendmail_line_len(msg + *end, len - *end);
    return true;
}

int sendmail_complete(const char *msg, size_t len, const struct sendmail_compose *c,
                      struct sendmail_rcpts *rcpts, char **out, size_t *outlen, char *err,
                      size_t errcap)
{
    bool has_from = false, has_date = false, has_msgid = false;
    /* First pass: which fields are there, and the recipients of -t. */
    size_t pos = 0, name, end;
    while (sendmail_next_field(msg, len, pos, &name, &end)) {
        const char *f = msg + pos;
        if (sendmail_name_is(f, name, "From"))
            has_from = true;
        else if (sendmail_name_is(f, name, "Date"))
            has_date = true;
        else if (sendmail_name_is(f, name, "Message-ID"))
            has_msgid = true;
        else if (c->extract &&
                 (sendmail_name_is(f, name, "To") || sendmail_name_is(f, name, "Cc") ||
                  sendmail_name_is(f, name, "Bcc")) &&
                 sendmail_rcpts_add_list(rcpts, f + name + 1, end - pos - name - 1, c->domain, err,
                                         errcap) != 0)
            return -1;
        pos = end;
    }
    bool has_header = pos > 0;

    struct sendmail_buf b = {0};
    if (!has_from && sendmail_put_from(&b, c, err, errcap) != 0)
        return -1;
    if (!has_date) {
        sendmail_puts(&b, "Date: ");
        sendmail_puts(&b, c->date);
        sendmail_puts(&b, "\r\n");
    }
    if (!has_msgid) {
        sendmail_puts(&b, "Message-ID: ");
        sendmail_puts(&b, c->message_id);
        sendmail_puts(&b, "\r\n");
    }
    /* Without a header section the added fields need the empty line that ends one,
     * unless the message already starts with it. */
    if (!has_header && !(len >= 2 && msg[0] == '\r' && msg[1] == '\n'))
        sendmail_puts(&b, "\r\n");

    /* Second pass: copy, leaving out every Bcc field with its continuation lines. */
    pos = 0;
    while (sendmail_next_field(msg, len, pos, &name, &end)) {
        if (!sendmail_name_is(msg + pos, name, "Bcc"))
            sendmail_put(&b, msg + pos, end - pos);
        pos = end;
    }
    sendmail_put(&b, msg + pos, len - pos);
    if (b.oom) {
        free(b.p);
        return sendmail_fail(err, errcap, "out of memory");
    }
    *out = b.p;
    *outlen = b.n;
    return 0;
}
