/* proto: the SMTP command layer below the session: line framing, verb splitting, the
 * EHLO/HELO argument check, MAIL/RCPT arguments with their ESMTP parameters, and the
 * BDAT argument.
 *
 * Called by smtp/session for every line read in command state; the results map onto
 * replies from the reply catalogue (the status enums in proto.h name the codes).
 *
 * Invariants: pure (no I/O, no globals, no allocation); every input is (pointer, length)
 * and is never read past its length nor as a C string, so a NUL is data, not an end
 * (HOSTILE-INPUTS A3); only CRLF ends a line (RFC 5321 §2.3.8); every output string is
 * NUL-terminated and bounded by its array; a decoded parameter never holds a control
 * byte (B4).
 *
 * Implements: RFC 5321 §2.3.8 and §4.5.3.1.4 (lines), §4.1.1 (commands), §4.1.2
 * (Mail-parameters, esmtp-keyword, esmtp-value); RFC 1870 (SIZE); RFC 1652 and 6152
 * (BODY=8BITMIME); RFC 3030 §2-3 (BODY=BINARYMIME, BDAT); RFC 6531 §3.4 (SMTPUTF8);
 * RFC 3461 §4.1-4.4 (NOTIFY, ORCPT, RET, ENVID); RFC 4954 §5 (AUTH=).
 *
 * Documented policies: "MAIL FROM: <a@b>" (spaces after the colon) is accepted (A11);
 * parameters may be separated by more than one space; a line whose first token ends in
 * ':' ("Subject: hi") is FOREIGN (A9); HTTP request lines match case-sensitively (A8).
 */
#include "smtp/proto.h"

#include <string.h>

#include "util/xtext.h"

enum proto_line_status proto_line_scan(const unsigned char *buf, size_t len, size_t max,
                                       size_t *linelen, size_t *consumed)
{
    const unsigned char *lf = len > 0 ? memchr(buf, '\n', len) : NULL;

    *linelen = 0;
    *consumed = 0;
    if (lf == NULL) {
        if (len > max) {
            *linelen = len;
            *consumed = len;
            return PROTO_LINE_TOO_LONG;
        }
        return PROTO_LINE_INCOMPLETE;
    }
    size_t pos = (size_t)(lf - buf);
    bool crlf = pos > 0 && buf[pos - 1] == '\r';
    *linelen = crlf ? pos - 1 : pos;
    *consumed = pos + 1;
    /* RFC 5321 §4.5.3.1.4: the limit counts the terminator. */
    if (pos + 1 > max)
        return PROTO_LINE_TOO_LONG;
    return crlf ? PROTO_LINE_OK : PROTO_LINE_BARE_LF;
}

static char proto_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* s[0..n) equals the upper-case literal lit, ignoring case. */
static bool proto_ieq(const char *s, size_t n, const char *lit)
{
    size_t k = 0;
    for (; k < n; k++)
        if (lit[k] == '\0' || proto_upper(s[k]) != lit[k])
            return false;
    return lit[k] == '\0';
}

static bool proto_is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static const struct {
    const char *name;
    enum proto_verb verb;
} proto_verbs[] = {
    {"HELO", PROTO_VERB_HELO},         {"EHLO", PROTO_VERB_EHLO}, {"MAIL", PROTO_VERB_MAIL},
    {"RCPT", PROTO_VERB_RCPT},         {"DATA", PROTO_VERB_DATA}, {"BDAT", PROTO_VERB_BDAT},
    {"RSET", PROTO_VERB_RSET},         {"NOOP", PROTO_VERB_NOOP}, {"QUIT", PROTO_VERB_QUIT},
    {"VRFY", PROTO_VERB_VRFY},         {"EXPN", PROTO_VERB_EXPN}, {"HELP", PROTO_VERB_HELP},
    {"STARTTLS", PROTO_VERB_STARTTLS}, {"AUTH", PROTO_VERB_AUTH},
};

static enum proto_verb proto_lookup_verb(const char *s, size_t n)
{
    for (size_t k = 0; k < sizeof(proto_verbs) / sizeof(proto_verbs[0]); k++)
        if (proto_ieq(s, n, proto_verbs[k].name))
            return proto_verbs[k].verb;
    return PROTO_VERB_UNKNOWN;
}

/* Request lines of other protocols (A8). HTTP methods are case-sensitive (RFC 9110 §9.1). */
static const char *const proto_foreign_prefixes[] = {
    "GET ", "POST ", "CONNECT ", "HEAD ", "PUT ", "OPTIONS ",
};

enum proto_cmd_status proto_parse_command(const char *line, size_t len, struct proto_command *cmd)
{
    const unsigned char *u = (const unsigned char *)line;

    cmd->verb = PROTO_VERB_UNKNOWN;
    cmd->arg = line + len;
    cmd->arglen = 0;
    if (len == 0)
        return PROTO_CMD_UNKNOWN;
    /* A TLS ClientHello (0x16), RDP (0x03) or binary junk: not a person typing SMTP. */
    if (u[0] < 0x20 || u[0] >= 0x7f)
        return PROTO_CMD_FOREIGN;
    if (memchr(line, '\0', len) != NULL)
        return PROTO_CMD_NUL;
    for (size_t i = 0; i < len; i++)
        if (u[i] < 0x20 || u[i] == 0x7f)
            return PROTO_CMD_CTL;
    for (size_t k = 0; k < sizeof(proto_foreign_prefixes) / sizeof(proto_foreign_prefixes[0]);
         k++) {
        size_t n = strlen(proto_foreign_prefixes[k]);
        if (len >= n && memcmp(line, proto_foreign_prefixes[k], n) == 0)
            return PROTO_CMD_FOREIGN;
    }

    size_t tok = 0;
    while (tok < len && u[tok] != ' ')
        tok++;
    /* A9: a first token "Name:" is a header line, message content leaking into command
     * state ("MAIL FROM:<a>" is not: its first token is the verb). */
    if (tok > 1 && u[tok - 1] == ':' && proto_lookup_verb(line, tok - 1) == PROTO_VERB_UNKNOWN)
        return PROTO_CMD_FOREIGN;

    size_t i = tok;
    while (i < len && u[i] == ' ')
        i++;
    size_t end = len;
    while (end > i && u[end - 1] == ' ')
        end--;
    cmd->arg = line + i;
    cmd->arglen = end - i;
    cmd->verb = proto_lookup_verb(line, tok);
    return cmd->verb == PROTO_VERB_UNKNOWN ? PROTO_CMD_UNKNOWN : PROTO_CMD_OK;
}

bool proto_check_helo(const char *arg, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)arg[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return addr_check_domain(arg, len, 0);
}

/* ---- ESMTP parameters (RFC 5321 §4.1.2) ---- */

struct proto_param {
    const char *key;
    size_t keylen;
    const char *val; /* NULL when the parameter has no "=value" */
    size_t vallen;
};

/* esmtp-value = 1*(%d33-60 / %d62-126): no "=", SP or control. */
static bool proto_is_value_byte(unsigned char c)
{
    return c >= 33 && c <= 126 && c != '=';
}

/* Split "k[=v] k[=v] ..." and check the grammar of each; duplicates and too many are
 * syntax errors too (B5), so a caller sees every parameter at most once. An empty value
 * ("SIZE=") is let through so that it gets the error of its keyword ("Bad message size
 * syntax"); each keyword's parser refuses it. */
static enum proto_arg_status proto_split_params(const char *s, size_t len, struct proto_param *p,
                                                size_t *count)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, n = 0;

    *count = 0;
    for (;;) {
        while (i < len && u[i] == ' ')
            i++;
        if (i >= len)
            break;
        if (n == PROTO_PARAMS_MAX)
            return PROTO_ARG_PARAM_SYNTAX;
        /* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
        size_t k = i;
        if (!proto_is_alnum(u[i]))
            return PROTO_ARG_PARAM_SYNTAX;
        while (i < len && (proto_is_alnum(u[i]) || u[i] == '-'))
            i++;
        p[n].key = s + k;
        p[n].keylen = i - k;
        p[n].val = NULL;
        p[n].vallen = 0;
        if (i < len && u[i] == '=') {
            i++;
            size_t v = i;
            while (i < len && proto_is_value_byte(u[i]))
                i++;
            p[n].val = s + v;
            p[n].vallen = i - v;
        }
        if (i < len && u[i] != ' ')
            return PROTO_ARG_PARAM_SYNTAX;
        for (size_t j = 0; j < n; j++) {
            if (p[j].keylen != p[n].keylen)
                continue;
            size_t m = 0;
            while (m < p[n].keylen && proto_upper(p[j].key[m]) == proto_upper(p[n].key[m]))
                m++;
            if (m == p[n].keylen)
                return PROTO_ARG_PARAM_SYNTAX;
        }
        n++;
    }
    *count = n;
    return PROTO_ARG_OK;
}

/* Decimal digits into a uint64_t; false when empty, not all digits, or above limit. */
static bool proto_parse_u64(const char *s, size_t len, uint64_t limit, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* xtext into out; RFC 3461 §4.2 and §4.4 also want the decoded value to be US-ASCII. */
static bool proto_decode_xtext(const struct proto_param *p, char *out, size_t outcap,
                               bool ascii_only)
{
    size_t n;
    if (p->vallen == 0 || !xtext_decode(p->val, p->vallen, out, outcap, &n))
        return false;
    for (size_t i = 0; ascii_only && i < n; i++) {
        if ((unsigned char)out[i] >= 0x80) {
            out[0] = '\0';
            return false;
        }
    }
    return true;
}

/* RFC 5322 §3.2.3 atext, for the addr-type atom of ORCPT (RFC 3461 §4.2). */
static bool proto_is_atext(unsigned char c)
{
    return proto_is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* ORCPT=addr-type;xtext, stored decoded as "addr-type;address". */
static bool proto_decode_orcpt(const struct proto_param *p, char out[PROTO_ORCPT_MAX + 1])
{
    size_t semi = 0;
    while (semi < p->vallen && p->val[semi] != ';')
        semi++;
    if (semi == 0 || semi == p->vallen || semi + 1 > PROTO_ORCPT_MAX)
        return false;
    for (size_t i = 0; i < semi; i++)
        if (!proto_is_atext((unsigned char)p->val[i]))
            return false;
    memcpy(out, p->val, semi);
    out[semi] = ';';
    struct proto_param rest = {.val = p->val + semi + 1, .vallen = p->vallen - semi - 1};
    if (!proto_decode_xtext(&rest, out + semi + 1, PROTO_ORCPT_MAX + 1 - (semi + 1), true)) {
        out[0] = '\0';
        return false;
    }
    return true;
}

/* RFC 3461 §4.1: NEVER alone, or a comma list of SUCCESS, FAILURE, DELAY. */
static bool proto_parse_notify(const char *s, size_t len, unsigned *out)
{
    unsigned bits = 0;
    size_t i = 0;
    for (;;) {
        size_t k = i;
        while (i < len && s[i] != ',')
            i++;
        unsigned bit;
        if (proto_ieq(s + k, i - k, "NEVER"))
            bit = PROTO_NOTIFY_NEVER;
        else if (proto_ieq(s + k, i - k, "SUCCESS"))
            bit = PROTO_NOTIFY_SUCCESS;
        else if (proto_ieq(s + k, i - k, "FAILURE"))
            bit = PROTO_NOTIFY_FAILURE;
        else if (proto_ieq(s + k, i - k, "DELAY"))
            bit = PROTO_NOTIFY_DELAY;
        else
            return false;
        if (bits & bit)
            return false;
        bits |= bit;
        if (i == len)
            break;
        i++;
    }
    if ((bits & PROTO_NOTIFY_NEVER) && bits != PROTO_NOTIFY_NEVER)
        return false;
    *out = bits;
    return true;
}

static enum proto_arg_status proto_map_addr(enum addr_result r)
{
    switch (r) {
    case ADDR_OK:
        return PROTO_ARG_OK;
    case ADDR_ERR_LOCAL_TOO_LONG:
    case ADDR_ERR_DOMAIN_TOO_LONG:
    case ADDR_ERR_PATH_TOO_LONG:
        return PROTO_ARG_PATH_TOO_LONG;
    case ADDR_ERR_NEED_SMTPUTF8:
        return PROTO_ARG_NEED_SMTPUTF8;
    case ADDR_ERR_BAD_UTF8:
        return PROTO_ARG_BAD_UTF8;
    case ADDR_ERR_SYNTAX:
        break;
    }
    return PROTO_ARG_BAD_PATH;
}

/* "FROM:" / "TO:", optional spaces (A11), the path, then either the end or a space and
 * the parameters; *params and *paramlen locate the parameter text. */
static enum proto_arg_status proto_parse_path_arg(const char *arg, size_t len, const char *prefix,
                                                  unsigned flags, struct addr_path *path,
                                                  const char **params, size_t *paramlen)
{
    size_t plen = strlen(prefix);
    size_t consumed;

    if (len < plen || !proto_ieq(arg, plen, prefix))
        return PROTO_ARG_SYNTAX;
    size_t i = plen;
    while (i < len && arg[i] == ' ')
        i++;
    if (i >= len || arg[i] != '<')
        return PROTO_ARG_SYNTAX;
    enum proto_arg_status st =
        proto_map_addr(addr_parse_path(arg + i, len - i, flags, path, &consumed));
    if (st != PROTO_ARG_OK)
        return st;
    i += consumed;
    if (i < len && arg[i] != ' ')
        return PROTO_ARG_SYNTAX;
    *params = arg + i;
    *paramlen = len - i;
    return PROTO_ARG_OK;
}

/* True when a space-separated word of arg is "SMTPUTF8". Used only to choose the error
 * for a MAIL path that is not even well-formed UTF-8, whose end cannot be found. */
static bool proto_mentions_smtputf8(const char *arg, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && arg[i] == ' ')
            i++;
        size_t k = i;
        while (i < len && arg[i] != ' ')
            i++;
        if (proto_ieq(arg + k, i - k, "SMTPUTF8"))
            return true;
    }
    return false;
}

enum proto_arg_status proto_parse_mail(const char *arg, size_t len, uint64_t max_size,
                                       struct proto_mail *out)
{
    struct proto_param p[PROTO_PARAMS_MAX];
    const char *params;
    size_t paramlen, n;

    memset(out, 0, sizeof(*out));
    /* UTF-8 is judged after the parameters, because SMTPUTF8 follows the path (RFC 6531 §3.4). */
    enum proto_arg_status st = proto_parse_path_arg(
        arg, len, "FROM:", ADDR_ALLOW_NULL | ADDR_ALLOW_UTF8, &out->path, &params, &paramlen);
    if (st == PROTO_ARG_BAD_UTF8 && !proto_mentions_smtputf8(arg, len))
        return PROTO_ARG_NEED_SMTPUTF8; /* as for RCPT: undeclared 8-bit is refused first */
    if (st != PROTO_ARG_OK)
        return st;
    st = proto_split_params(params, paramlen, p, &n);
    if (st != PROTO_ARG_OK)
        return st;

    for (size_t k = 0; k < n; k++) {
        const struct proto_param *q = &p[k];
        if (proto_ieq(q->key, q->keylen, "SMTPUTF8")) {
            if (q->val != NULL)
                return PROTO_ARG_PARAM_SYNTAX;
            out->smtputf8 = true;
            continue;
        }
        if (proto_ieq(q->key, q->keylen, "SIZE") || proto_ieq(q->key, q->keylen, "BODY") ||
            proto_ieq(q->key, q->keylen, "RET") || proto_ieq(q->key, q->keylen, "ENVID") ||
            proto_ieq(q->key, q->keylen, "AUTH")) {
            if (q->val == NULL)
                return PROTO_ARG_PARAM_SYNTAX;
        } else {
            return PROTO_ARG_PARAM_UNKNOWN;
        }
        if (proto_ieq(q->key, q->keylen, "SIZE")) {
            /* RFC 1870 §3: size-value = 1*20DIGIT; anything that does not fit is malformed. */
            if (!proto_parse_u64(q->val, q->vallen, UINT64_MAX, &out->size))
                return PROTO_ARG_SIZE_SYNTAX;
            out->size_given = true;
        } else if (proto_ieq(q->key, q->keylen, "BODY")) {
            if (proto_ieq(q->val, q->vallen, "7BIT"))
                out->body = PROTO_BODY_7BIT;
            else if (proto_ieq(q->val, q->vallen, "8BITMIME"))
                out->body = PROTO_BODY_8BITMIME;
            else if (proto_ieq(q->val, q->vallen, "BINARYMIME"))
                out->body = PROTO_BODY_BINARYMIME;
            else
                return PROTO_ARG_BODY_SYNTAX;
        } else if (proto_ieq(q->key, q->keylen, "RET")) {
            if (proto_ieq(q->val, q->vallen, "FULL"))
                out->ret = PROTO_RET_FULL;
            else if (proto_ieq(q->val, q->vallen, "HDRS"))
                out->ret = PROTO_RET_HDRS;
            else
                return PROTO_ARG_RET_SYNTAX;
        } else if (proto_ieq(q->key, q->keylen, "ENVID")) {
            if (!proto_decode_xtext(q, out->envid, sizeof(out->envid), true))
                return PROTO_ARG_XTEXT;
        } else {
            /* RFC 4954 §5: AUTH=<> is a plain xtext value too, since '<' and '>' are xchars. */
            if (!proto_decode_xtext(q, out->auth, sizeof(out->auth), false))
                return PROTO_ARG_XTEXT;
        }
    }
    if (out->path.utf8 && !out->smtputf8)
        return PROTO_ARG_NEED_SMTPUTF8;
    if (max_size != 0 && out->size_given && out->size > max_size)
        return PROTO_ARG_SIZE_EXCEEDED;
    return PROTO_ARG_OK;
}

enum proto_arg_status proto_parse_rcpt(const char *arg, size_t len, bool allow_utf8,
                                       struct proto_rcpt *out)
{
    struct proto_param p[PROTO_PARAMS_MAX];
    const char *params;
    size_t paramlen, n;
    unsigned flags = ADDR_ALLOW_POSTMASTER | (allow_utf8 ? ADDR_ALLOW_UTF8 : 0);

    memset(out, 0, sizeof(*out));
    enum proto_arg_status st =
        proto_parse_path_arg(arg, len, "TO:", flags, &out->path, &params, &paramlen);
    if (st != PROTO_ARG_OK)
        return st;
    st = proto_split_params(params, paramlen, p, &n);
    if (st != PROTO_ARG_OK)
        return st;

    for (size_t k = 0; k < n; k++) {
        const struct proto_param *q = &p[k];
        bool notify = proto_ieq(q->key, q->keylen, "NOTIFY");
        if (!notify && !proto_ieq(q->key, q->keylen, "ORCPT"))
            return PROTO_ARG_PARAM_UNKNOWN;
        if (q->val == NULL)
            return PROTO_ARG_PARAM_SYNTAX;
        if (notify) {
            if (!proto_parse_notify(q->val, q->vallen, &out->notify))
                return PROTO_ARG_NOTIFY_SYNTAX;
        } else if (!proto_decode_orcpt(q, out->orcpt)) {
            return PROTO_ARG_XTEXT;
        }
    }
    return PROTO_ARG_OK;
}

bool proto_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last)
{
    size_t i = 0;

    *size = 0;
    *last = false;
    while (i < len && arg[i] >= '0' && arg[i] <= '9')
        i++;
    /* RFC 3030 §2: chunk-size = 1*DIGIT; kept to 63 bits so it fits an off_t. */
    uint64_t v;
    if (!proto_parse_u64(arg, i, INT64_MAX, &v))
        return false;
    size_t sp = i;
    while (i < len && arg[i] == ' ')
        i++;
    bool is_last = false;
    if (i < len) {
        size_t k = i;
        while (i < len && arg[i] != ' ')
            i++;
        /* end-marker = "LAST", after at least one space */
        if (k == sp || !proto_ieq(arg + k, i - k, "LAST"))
            return false;
        while (i < len && arg[i] == ' ')
            i++;
        if (i != len)
            return false;
        is_last = true;
    }
    *size = v;
    *last = is_last;
    return true;
}
