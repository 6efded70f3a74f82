/* ctl: formatters and parsers for the lines of the queue manager's control socket
 * (queue/ctl.h). Called by the CLI (cli/queue.c, cli/sendmail.c) and by the queue manager.
 *
 * Wire words (one line each, fields separated by exactly one space, LF at the end):
 *   requests  list | show ID | flush | flush ID | hold ID | release ID | delete ID | submit
 *   listing   msg ID ARRIVAL SIZE held|queued [SENDER]
 *             rcpt ADDR pending|deferred|delivered|failed ATTEMPTS NEXT_TRY [REASON]
 *   replies   ok [TEXT] | err CODE [TEXT]
 *   submit    from [SENDER] | rcpt ADDR | data N
 * ARRIVAL and NEXT_TRY are seconds since the epoch, SIZE, ATTEMPTS and N plain decimals; the
 * two-field "rcpt ADDR" (submit) and the five- or six-field "rcpt" (listing) are told apart by
 * their field count. SENDER, ADDR, REASON and TEXT are xtext (RFC 3461 §4); an empty optional
 * field is left out together with its space, which is the only way an empty value travels.
 *
 * Invariants: pure (no I/O, no allocation, no globals); a formatter never writes past cap nor
 * produces a line longer than CTL_LINE_MAX; a parser accepts exactly the lines the formatters
 * produce (canonical form only: no doubled or trailing spaces, no leading zeros, xtext "+XX"
 * only for bytes that must be escaped), so every line that parses formats back to itself; no
 * decoded value holds CR, LF, NUL or any other control byte (HOSTILE-INPUTS B4).
 */
#include "queue/ctl.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "util/outbuf.h"

#include "util/xtext.h"

#define CTL_FIELDS_MAX 6 /* "rcpt ADDR STATE ATTEMPTS NEXT_TRY REASON" */

static const char *const ctl_verb_words[] = {
    [CTL_LIST] = "list",     [CTL_SHOW] = "show",       [CTL_FLUSH] = "flush",
    [CTL_HOLD] = "hold",     [CTL_RELEASE] = "release", [CTL_DELETE] = "delete",
    [CTL_SUBMIT] = "submit",
};

static const char *const ctl_state_words[] = {
    [CTL_RCPT_PENDING] = "pending",
    [CTL_RCPT_DEFERRED] = "deferred",
    [CTL_RCPT_DELIVERED] = "delivered",
    [CTL_RCPT_FAILED] = "failed",
};

#define CTL_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- formatting ---------------------------------------------------------------------- */

static void ctl_put_u64(struct outbuf *o, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    outbuf_put(o, tmp + sizeof tmp - n, n);
}

/* RFC 3461 §4 xchar: "!".."~" except "+" and "=". */
static bool ctl_is_xchar(unsigned char c)
{
    return c >= '!' && c <= '~' && c != '+' && c != '=';
}

static bool ctl_is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static size_t ctl_xtext_len(unsigned char c)
{
    return ctl_is_xchar(c) ? 1 : 3;
}

static void ctl_put_xbyte(struct outbuf *o, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    if (ctl_is_xchar(c)) {
        outbuf_put(o, (const char *)&c, 1);
    } else {
        char e[3] = {'+', hex[c >> 4], hex[c & 0xf]};
        outbuf_put(o, e, 3);
    }
}

/* A value that must arrive intact: a control byte in it is refused, never altered. */
static bool ctl_value_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (ctl_is_ctl(*p))
            return false;
    return true;
}

static void ctl_put_xtext(struct outbuf *o, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        ctl_put_xbyte(o, *p);
}

/* Ends the line: 0 with *len set, or -1/ENOSPC when it went past cap or CTL_LINE_MAX. */
static int ctl_finish(struct outbuf *o, size_t *len)
{
    outbuf_put(o, "\n", 1);
    if (o->pos > o->cap) {
        errno = ENOSPC;
        return -1;
    }
    *len = o->pos;
    return 0;
}

static void ctl_out_init(struct outbuf *o, char *out, size_t cap)
{
    o->buf = out;
    o->cap = cap < CTL_LINE_MAX ? cap : CTL_LINE_MAX;
    o->pos = 0;
}

static int ctl_einval(void)
{
    errno = EINVAL;
    return -1;
}

/* RFC 3463 §2: class "." subject "." detail, subject and detail 1*3digit; an error reply
 * carries a 4 (persistent transient) or 5 (permanent) class. */
static bool ctl_code_ok(const char *s, size_t len)
{
    if (len < 5 || (s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    size_t i = 2;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start || i - start > 3)
            return false;
        if (part == 0) {
            if (i >= len || s[i] != '.')
                return false;
            i++;
        }
    }
    return i == len;
}

int ctl_request_format(const struct ctl_request *rq, char *out, size_t cap, size_t *len)
{
    if ((unsigned)rq->verb >= CTL_NELEM(ctl_verb_words))
        return ctl_einval();
    size_t idlen = strnlen(rq->id, sizeof rq->id);
    bool id_allowed = rq->verb != CTL_LIST && rq->verb != CTL_SUBMIT;
    bool id_needed = id_allowed && rq->verb != CTL_FLUSH;
    if (idlen == sizeof rq->id || (idlen == 0 && id_needed) || (idlen > 0 && !id_allowed) ||
        (idlen > 0 && !id_valid(rq->id, idlen)))
        return ctl_einval();
    struct outbuf o;
    ctl_out_init(&o, out, cap);
    outbuf_puts(&o, ctl_verb_words[rq->verb]);
    if (idlen > 0) {
        outbuf_put(&o, " ", 1);
        outbuf_put(&o, rq->id, idlen);
    }
    return ctl_finish(&o, len);
}

int ctl_msg_format(const struct ctl_msg_info *m, char *out, size_t cap, size_t *len)
{
    const char *sender = m->sender != NULL ? m->sender : "";
    if (m->id == NULL || !id_valid(m->id, strlen(m->id)) || m->arrival < 0 ||
        !ctl_value_ok(sender))
        return ctl_einval();
    struct outbuf o;
    ctl_out_init(&o, out, cap);
    outbuf_puts(&o, "msg ");
    outbuf_puts(&o, m->id);
    outbuf_put(&o, " ", 1);
    ctl_put_u64(&o, (uint64_t)m->arrival);
    outbuf_put(&o, " ", 1);
    ctl_put_u64(&o, m->size);
    outbuf_puts(&o, m->held ? " held" : " queued");
    if (sender[0] != '\0') {
        outbuf_put(&o, " ", 1);
        ctl_put_xtext(&o, sender);
    }
    return ctl_finish(&o, len);
}

/* The reason is free text from a remote peer: control bytes become spaces, and it is cut
 * to what is left of CTL_LINE_MAX, never inside a UTF-8 sequence. */
static void ctl_put_reason(struct outbuf *o, const char *reason)
{
    const unsigned char *r = (const unsigned char *)reason;
    size_t n = strlen(reason);
    if (n == 0)
        return;
    size_t budget = CTL_LINE_MAX - 1; /* the LF */
    if (o->pos + 1 >= budget)
        return;
    budget -= o->pos + 1; /* the space */
    size_t k = 0, used = 0;
    while (k < n) {
        size_t w = ctl_is_ctl(r[k]) ? 3 : ctl_xtext_len(r[k]);
        if (used + w > budget)
            break;
        used += w;
        k++;
    }
    if (k < n)
        while (k > 0 && (r[k] & 0xc0) == 0x80)
            k--;
    if (k == 0)
        return;
    outbuf_put(o, " ", 1);
    for (size_t i = 0; i < k; i++)
        ctl_put_xbyte(o, ctl_is_ctl(r[i]) ? ' ' : r[i]);
}

int ctl_rcpt_format(const struct ctl_rcpt_info *r, char *out, size_t cap, size_t *len)
{
    if (r->addr == NULL || r->addr[0] == '\0' || !ctl_value_ok(r->addr) ||
        (unsigned)r->state >= CTL_NELEM(ctl_state_words) || r->next_try < 0)
        return ctl_einval();
    struct outbuf o;
    ctl_out_init(&o, out, cap);
    outbuf_puts(&o, "rcpt ");
    ctl_put_xtext(&o, r->addr);
    outbuf_put(&o, " ", 1);
    outbuf_puts(&o, ctl_state_words[r->state]);
    outbuf_put(&o, " ", 1);
    ctl_put_u64(&o, r->attempts);
    outbuf_put(&o, " ", 1);
    ctl_put_u64(&o, (uint64_t)r->next_try);
    ctl_put_reason(&o, r->reason != NULL ? r->reason : "");
    return ctl_finish(&o, len);
}

int ctl_reply_format(bool ok, const char *code, const char *text, char *out, size_t cap,
                     size_t *len)
{
    if (text == NULL)
        text = "";
    if (!ctl_value_ok(text) || (!ok && (code == NULL || !ctl_code_ok(code, strlen(code)))))
        return ctl_einval();
    struct outbuf o;
    ctl_out_init(&o, out, cap);
    if (ok) {
        outbuf_puts(&o, "ok");
    } else {
        outbuf_puts(&o, "err ");
        outbuf_puts(&o, code);
    }
    if (text[0] != '\0') {
        outbuf_put(&o, " ", 1);
        ctl_put_xtext(&o, text);
    }
    return ctl_finish(&o, len);
}

int ctl_submit_from_format(const char *sender, char *out, size_t cap, size_t *len)
{
    if (sender == NULL || !ctl_value_ok(sender))
        return ctl_einval();
    struct outbuf o;
    ctl_out_init(&o, out, cap);
    outbuf_puts(&o, "from");
    if (sender[0] != '\0') {
        outbuf_put(&o, " ", 1);
        ctl_put_xtext(&o, sender);
    }
    return ctl_finish(&o, len);
}

int ctl_submit_rcpt_format(const char *rcpt, char *out, size_t cap, size_t *len)
{
    if (rcpt == NULL || rcpt[0] == '\0' || !ctl_value_ok(rcpt))
        return ctl_einval();
    struct outbuf o;
    ctl_out_init(&o, out, cap);
    outbuf_puts(&o, "rcpt ");
    ctl_put_xtext(&o, rcpt);
    return ctl_finish(&o, len);
}

int ctl_submit_data_format(uint64_t size, char *out, size_t cap, size_t *len)
{
    struct outbuf o;
    ctl_out_init(&o, out, cap);
    outbuf_puts(&o, "data ");
    ctl_put_u64(&o, size);
    return ctl_finish(&o, len);
}

/* ---- parsing ------------------------------------------------------------------------- */

struct ctl_field {
    const char *p;
    size_t n;
};

/* Split on single spaces; an empty field (leading, trailing or doubled space) or more than
 * CTL_FIELDS_MAX fields is malformed. Returns the field count, 0 when malformed. */
static size_t ctl_split(const char *line, size_t len, struct ctl_field f[CTL_FIELDS_MAX])
{
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && line[i] != ' ')
            continue;
        if (i == start || nf == CTL_FIELDS_MAX)
            return 0;
        f[nf].p = line + start;
        f[nf].n = i - start;
        nf++;
        start = i + 1;
    }
    return nf;
}

static bool ctl_word_is(const struct ctl_field *f, const char *w)
{
    return f->n == strlen(w) && memcmp(f->p, w, f->n) == 0;
}

/* Canonical decimal: "0" or no leading zero, at most max. */
static bool ctl_parse_num(const struct ctl_field *f, uint64_t max, uint64_t *v)
{
    if (f->n == 0 || f->n > 20 || (f->p[0] == '0' && f->n > 1))
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < f->n; i++) {
        unsigned d = (unsigned)(f->p[i] - '0');
        if (d > 9 || x > (max - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

/* The decoding side: room for the values and their NULs in the caller's buffer. */
struct ctl_in {
    char *buf;
    size_t cap;
    size_t pos;
};

/* Copy a field verbatim (an id or a status code, already checked). */
static const char *ctl_take(struct ctl_in *in, const struct ctl_field *f)
{
    if (in->cap - in->pos < f->n + 1)
        return NULL;
    char *s = in->buf + in->pos;
    memcpy(s, f->p, f->n);
    s[f->n] = '\0';
    in->pos += f->n + 1;
    return s;
}

/* Decode an xtext field, refusing a "+XX" for a byte that needs no escape, so that only
 * the formatters' own spelling is accepted. xtext_decode refuses control bytes (B4). */
static const char *ctl_take_xtext(struct ctl_in *in, const struct ctl_field *f)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->p[i] != '+')
            continue;
        if (f->n - i < 3)
            return NULL;
        char one[2];
        size_t olen;
        if (!xtext_decode(f->p + i, 3, one, sizeof one, &olen) ||
            ctl_is_xchar((unsigned char)one[0]))
            return NULL;
        i += 2;
    }
    char *s = in->buf + in->pos;
    size_t n;
    if (!xtext_decode(f->p, f->n, s, in->cap - in->pos, &n))
        return NULL;
    in->pos += n + 1;
    return s;
}

int ctl_request_parse(const char *line, size_t len, struct ctl_request *out)
{
    struct ctl_field f[CTL_FIELDS_MAX];
    if (len >= CTL_LINE_MAX)
        return ctl_einval();
    size_t nf = ctl_split(line, len, f);
    if (nf == 0 || nf > 2)
        return ctl_einval();
    for (size_t v = 0; v < CTL_NELEM(ctl_verb_words); v++) {
        if (!ctl_word_is(&f[0], ctl_verb_words[v]))
            continue;
        bool id_allowed = v != CTL_LIST && v != CTL_SUBMIT;
        bool id_needed = id_allowed && v != CTL_FLUSH;
        if ((nf == 2 && !id_allowed) || (nf == 1 && id_needed))
            return ctl_einval();
        if (nf == 2 && !id_valid(f[1].p, f[1].n))
            return ctl_einval();
        memset(out, 0, sizeof *out);
        out->verb = (enum ctl_verb)v;
        if (nf == 2)
            memcpy(out->id, f[1].p, ID_LEN);
        return 0;
    }
    return ctl_einval();
}

static int ctl_parse_msg(const struct ctl_field *f, size_t nf, struct ctl_in *in,
                         struct ctl_line *out)
{
    uint64_t arrival;
    if ((nf != 5 && nf != 6) || !id_valid(f[1].p, f[1].n) ||
        !ctl_parse_num(&f[2], INT64_MAX, &arrival) ||
        !ctl_parse_num(&f[3], UINT64_MAX, &out->msg.size))
        return ctl_einval();
    if (ctl_word_is(&f[4], "held"))
        out->msg.held = true;
    else if (!ctl_word_is(&f[4], "queued"))
        return ctl_einval();
    out->msg.arrival = (int64_t)arrival;
    if ((out->msg.id = ctl_take(in, &f[1])) == NULL)
        return ctl_einval();
    if (nf == 6 && (out->msg.sender = ctl_take_xtext(in, &f[5])) == NULL)
        return ctl_einval();
    out->kind = CTL_LINE_MSG;
    return 0;
}

static int ctl_parse_rcpt(const struct ctl_field *f, size_t nf, struct ctl_in *in,
                          struct ctl_line *out)
{
    if (nf == 2) {
        const char *a = ctl_take_xtext(in, &f[1]);
        if (a == NULL || a[0] == '\0')
            return ctl_einval();
        out->text = a;
        out->kind = CTL_LINE_TO;
        return 0;
    }
    if (nf != 5 && nf != 6)
        return ctl_einval();
    size_t st = 0;
    while (st < CTL_NELEM(ctl_state_words) && !ctl_word_is(&f[2], ctl_state_words[st]))
        st++;
    uint64_t attempts, next_try;
    if (st == CTL_NELEM(ctl_state_words) || !ctl_parse_num(&f[3], UINT_MAX, &attempts) ||
        !ctl_parse_num(&f[4], INT64_MAX, &next_try))
        return ctl_einval();
    out->rcpt.state = (enum ctl_rcpt_state)st;
    out->rcpt.attempts = (unsigned)attempts;
    out->rcpt.next_try = (int64_t)next_try;
    out->rcpt.addr = ctl_take_xtext(in, &f[1]);
    if (out->rcpt.addr == NULL || out->rcpt.addr[0] == '\0')
        return ctl_einval();
    if (nf == 6 && (out->rcpt.reason = ctl_take_xtext(in, &f[5])) == NULL)
        return ctl_einval();
    out->kind = CTL_LINE_RCPT;
    return 0;
}

int ctl_line_parse(const char *line, size_t len, struct ctl_line *out, char *buf, size_t bufcap)
{
    struct ctl_field f[CTL_FIELDS_MAX];
    if (bufcap < len + 1) {
        errno = ENOSPC;
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->msg.id = out->msg.sender = out->rcpt.addr = out->rcpt.reason = "";
    out->code = out->text = "";
    if (len >= CTL_LINE_MAX)
        return ctl_einval();
    size_t nf = ctl_split(line, len, f);
    if (nf == 0)
        return ctl_einval();
    struct ctl_in in = {buf, bufcap, 0};
    if (ctl_word_is(&f[0], "msg"))
        return ctl_parse_msg(f, nf, &in, out);
    if (ctl_word_is(&f[0], "rcpt"))
        return ctl_parse_rcpt(f, nf, &in, out);
    if (ctl_word_is(&f[0], "ok") || ctl_word_is(&f[0], "from")) {
        if (nf > 2 || (nf == 2 && (out->text = ctl_take_xtext(&in, &f[1])) == NULL))
            return ctl_einval();
        out->kind = f[0].p[0] == 'o' ? CTL_LINE_OK : CTL_LINE_FROM;
        return 0;
    }
    if (ctl_word_is(&f[0], "err")) {
        if (nf < 2 || nf > 3 || !ctl_code_ok(f[1].p, f[1].n))
            return ctl_einval();
        if ((out->code = ctl_take(&in, &f[1])) == NULL)
            return ctl_einval();
        if (nf == 3 && (out->text = ctl_take_xtext(&in, &f[2])) == NULL)
            return ctl_einval();
        out->kind = CTL_LINE_ERR;
        return 0;
    }
    if (ctl_word_is(&f[0], "data")) {
        if (nf != 2 || !ctl_parse_num(&f[1], UINT64_MAX, &out->size))
            return ctl_einval();
        out->kind = CTL_LINE_DATA;
        return 0;
    }
    return ctl_einval();
}
