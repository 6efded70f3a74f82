/* conf_priv: what the configuration parser's files share (conf.c: the rules and the meaning
 * of each directive; conf_lex.c: the lexer and statement reader; conf_lists.c: the repeatable
 * multi-value directives). Not for use outside src/conf/. */
#ifndef SLUICE_CONF_CONF_PRIV_H
#define SLUICE_CONF_CONF_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"

#define CONF_ARGS_MAX 4   /* values kept per statement; no directive takes more than one */
#define CONF_SCRATCH (CONF_ARGS_MAX + 1)

enum conf_tok {
    CONF_TOK_WORD, /* bare or quoted; text in the slot given to the lexer */
    CONF_TOK_LBRACE,
    CONF_TOK_RBRACE,
    CONF_TOK_END, /* newline or ';' */
    CONF_TOK_EOF,
    CONF_TOK_BAD, /* a malformed word; the lexer has reported it */
};

struct conf_parser {
    const unsigned char *text;
    size_t len;
    size_t pos;
    unsigned line;       /* of text[pos] */
    unsigned tokline;    /* of the token the lexer returned last */
    bool end_newline;    /* the last CONF_TOK_END was a newline, not ';' */
    bool rbrace_pending; /* a '}' ended the last statement and is not consumed */
    unsigned rbrace_line;
    bool stop; /* error list full or out of memory */
    struct conf_errors *errs;
    struct config *c;
    size_t domains_cap;
    unsigned listen_tls_line[CONF_LISTENERS_MAX]; /* where each listener's tls mode was set */
    unsigned listen_address_line[CONF_LISTENERS_MAX];
    char tok[CONF_SCRATCH + 1][CONF_TOKEN_MAX + 1]; /* name, values, scratch for the rest */
};

struct conf_stmt {
    unsigned line;
    size_t nargs; /* values after the name; the first CONF_ARGS_MAX are kept */
    bool block;   /* a '{' follows; the caller parses or skips it */
    bool bad;     /* the lexer reported an error in it */
};

enum conf_read { CONF_READ_STMT, CONF_READ_CLOSE, CONF_READ_EOF };

/* Record an error at line (0: the file as a whole); stops the parse when the list is full. */
__attribute__((format(printf, 3, 4))) void conf_error(struct conf_parser *ps, unsigned line,
                                                      const char *fmt, ...);

/* A word for an error message: short, and only printable ASCII so that a hostile file cannot
 * put escape sequences on the terminal of whoever runs `sluice config check`. */
struct conf_shown {
    char s[48];
};

struct conf_shown conf_show(const char *w);
#define SHOW(w) (conf_show(w).s)

/* conf_lex.c: read the next statement of a block at depth into ps->tok[] and *st (its name in
 * tok[0], values in tok[1..]); or see the '}' that closes the block, or the end. */
enum conf_read conf_read_stmt(struct conf_parser *ps, struct conf_stmt *st, unsigned depth);

/* conf.c: out of memory stops the parse; a copy of s, NULL (and the error) when none. */
void conf_error_nomem(struct conf_parser *ps);
char *conf_strdup(struct conf_parser *ps, const char *s);

/* conf_lists.c: `trusted-networks NET...` and `token-key ALG FILE [KID]` (values in ps->tok). */
void conf_apply_networks(struct conf_parser *ps, const struct conf_stmt *st);
void conf_apply_token_key(struct conf_parser *ps, const struct conf_stmt *st);

/* Skip a block whose '{' was just read (on open_line), with everything nested in it. */
void conf_skip_block(struct conf_parser *ps, unsigned open_line, unsigned depth);

#endif
