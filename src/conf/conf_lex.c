/* conf_lex: the lexer and statement reader of the sluice.conf parser (see conf.c for the
 * grammar; conf_priv.h). Words (bare or quoted), '{', '}', end of statement (newline or
 * ';') and end of input; a statement is `name value... [{ block }]`. Pure: bytes in,
 * tokens out, errors through conf_error with their line. Invariants: the input is read by
 * length, never as a C string; a NUL or other control byte outside a comment is an error,
 * so every token is a clean C string of at most CONF_TOKEN_MAX octets; blocks nest at most
 * CONF_DEPTH_MAX deep. */
#include "conf/conf_priv.h"

#include <string.h>

struct conf_shown conf_show(const char *w)
{
    struct conf_shown out;
    size_t n = 0;

    for (; *w != '\0' && n < 40; w++) {
        unsigned char ch = (unsigned char)*w;
        out.s[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (*w != '\0') {
        memcpy(out.s + n, "...", 3);
        n += 3;
    }
    out.s[n] = '\0';
    return out;
}

static bool conf_is_ctl(unsigned char ch)
{
    return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

static bool conf_is_delim(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == ';' || ch == '{' ||
           ch == '}' || ch == '#' || ch == '"';
}

/* Appends one byte of a word to out, reporting the first problem of the word. */
static void conf_lex_put(struct conf_parser *ps, char *out, size_t *n, bool *bad, unsigned char ch)
{
    if (*bad)
        return;
    if (conf_is_ctl(ch)) {
        conf_error(ps, ps->tokline, "control character 0x%02x", ch);
        *bad = true;
    } else if (*n == CONF_TOKEN_MAX) {
        conf_error(ps, ps->tokline, "word longer than %d bytes", CONF_TOKEN_MAX);
        *bad = true;
    } else {
        out[(*n)++] = (char)ch;
    }
}

/* A quoted string ends on the same line; \" and \\ are its only escapes. */
static enum conf_tok conf_lex_string(struct conf_parser *ps, char *out)
{
    const unsigned char *t = ps->text;
    size_t n = 0;
    bool bad = false;

    ps->pos++;
    for (;;) {
        if (ps->pos == ps->len || t[ps->pos] == '\n') {
            out[n] = '\0';
            conf_error(ps, ps->tokline, "unterminated string");
            return CONF_TOK_BAD;
        }
        unsigned char ch = t[ps->pos++];
        if (ch == '"')
            break;
        if (ch == '\\') {
            if (ps->pos == ps->len || t[ps->pos] == '\n')
                continue;
            ch = t[ps->pos++];
            if (ch != '"' && ch != '\\') {
                if (!bad)
                    conf_error(ps, ps->tokline, "bad escape in string (only \\\" and \\\\)");
                bad = true;
                continue;
            }
        }
        conf_lex_put(ps, out, &n, &bad, ch);
    }
    out[n] = '\0';
    return bad ? CONF_TOK_BAD : CONF_TOK_WORD;
}

static enum conf_tok conf_lex_word(struct conf_parser *ps, char *out)
{
    size_t n = 0;
    bool bad = false;

    while (ps->pos < ps->len && !conf_is_delim(ps->text[ps->pos]))
        conf_lex_put(ps, out, &n, &bad, ps->text[ps->pos++]);
    out[n] = '\0';
    return bad ? CONF_TOK_BAD : CONF_TOK_WORD;
}

static void conf_skip_comment(const unsigned char *t, size_t len, size_t *pos)
{
    const unsigned char *nl = memchr(t + *pos, '\n', len - *pos);

    *pos = nl != NULL ? (size_t)(nl - t) : len;
}

static enum conf_tok conf_lex(struct conf_parser *ps, char *out)
{
    const unsigned char *t = ps->text;

    while (ps->pos < ps->len) {
        unsigned char ch = t[ps->pos];
        if (ch == ' ' || ch == '\t' || ch == '\r')
            ps->pos++;
        else if (ch == '#')
            conf_skip_comment(t, ps->len, &ps->pos);
        else
            break;
    }
    ps->tokline = ps->line;
    if (ps->pos == ps->len)
        return CONF_TOK_EOF;
    switch (t[ps->pos]) {
    case '\n':
        ps->pos++;
        ps->line++;
        ps->end_newline = true;
        return CONF_TOK_END;
    case ';':
        ps->pos++;
        ps->end_newline = false;
        return CONF_TOK_END;
    case '{':
        ps->pos++;
        return CONF_TOK_LBRACE;
    case '}':
        ps->pos++;
        return CONF_TOK_RBRACE;
    case '"':
        return conf_lex_string(ps, out);
    default:
        return conf_lex_word(ps, out);
    }
}

/* Lets a block's '{' sit on the line after its name: consumes blank lines, comments and the
 * '{' when one comes next, and nothing otherwise. */
static bool conf_take_lbrace(struct conf_parser *ps)
{
    const unsigned char *t = ps->text;
    size_t pos = ps->pos;
    unsigned line = ps->line;

    while (pos < ps->len) {
        unsigned char ch = t[pos];
        if (ch == ' ' || ch == '\t' || ch == '\r') {
            pos++;
        } else if (ch == '\n') {
            pos++;
            line++;
        } else if (ch == '#') {
            conf_skip_comment(t, ps->len, &pos);
        } else {
            break;
        }
    }
    if (pos == ps->len || t[pos] != '{')
        return false;
    ps->pos = pos + 1;
    ps->line = line;
    return true;
}

/* Skips a block whose '{' has been read. depth is the level of that block (1 = top level). */
void conf_skip_block(struct conf_parser *ps, unsigned open_line, unsigned depth)
{
    unsigned level = 1;
    bool deep = false;

    while (!ps->stop) {
        switch (conf_lex(ps, ps->tok[CONF_SCRATCH])) {
        case CONF_TOK_LBRACE:
            level++;
            if (!deep && depth + level - 1 > CONF_DEPTH_MAX) {
                conf_error(ps, ps->tokline, "blocks nested deeper than %d", CONF_DEPTH_MAX);
                deep = true;
            }
            break;
        case CONF_TOK_RBRACE:
            if (--level == 0)
                return;
            break;
        case CONF_TOK_EOF:
            conf_error(ps, open_line, "block opened here is not closed");
            return;
        default:
            break;
        }
    }
}

enum conf_read conf_read_stmt(struct conf_parser *ps, struct conf_stmt *st, unsigned depth)
{
    enum conf_tok tok;

    *st = (struct conf_stmt){0};
    if (ps->rbrace_pending) {
        ps->rbrace_pending = false;
        st->line = ps->rbrace_line;
        return CONF_READ_CLOSE;
    }
    do
        tok = conf_lex(ps, ps->tok[0]);
    while (tok == CONF_TOK_END);
    st->line = ps->tokline;
    switch (tok) {
    case CONF_TOK_EOF:
        return CONF_READ_EOF;
    case CONF_TOK_RBRACE:
        return CONF_READ_CLOSE;
    case CONF_TOK_LBRACE:
        conf_error(ps, st->line, "'{' without a directive name");
        conf_skip_block(ps, st->line, depth + 1);
        st->bad = true;
        return CONF_READ_STMT;
    case CONF_TOK_BAD:
        st->bad = true;
        break;
    default:
        break;
    }
    for (;;) {
        size_t slot = st->nargs < CONF_ARGS_MAX ? st->nargs + 1 : CONF_SCRATCH;
        switch (conf_lex(ps, ps->tok[slot])) {
        case CONF_TOK_WORD:
            st->nargs++;
            break;
        case CONF_TOK_BAD:
            st->bad = true;
            break;
        case CONF_TOK_END:
            st->block = ps->end_newline && conf_take_lbrace(ps);
            return CONF_READ_STMT;
        case CONF_TOK_LBRACE:
            st->block = true;
            return CONF_READ_STMT;
        case CONF_TOK_RBRACE:
            ps->rbrace_pending = true;
            ps->rbrace_line = ps->tokline;
            return CONF_READ_STMT;
        case CONF_TOK_EOF:
            return CONF_READ_STMT;
        }
    }
}
