/* conf_lists: the directives of issue #4 that take several values and may be repeated,
 * trusted-networks and auth's token-key, each appending to a list of struct config. Called by
 * conf.c when it meets them; pure like the rest of the parser, and bounded by
 * CONF_TRUSTED_MAX and CONF_TOKEN_KEYS_MAX. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_priv.h"
#include "conf/conf_value.h"

/* trusted-networks 127.0.0.0/8 ::1 10.0.0.0/8: up to CONF_ARGS_MAX per line, repeatable. */
void conf_apply_networks(struct conf_parser *ps, const struct conf_stmt *st)
{
    struct config *c = ps->c;
    if (st->nargs == 0 || st->nargs > CONF_ARGS_MAX) {
        conf_error(ps, st->line, "'trusted-networks' takes 1 to %d networks per line (repeat it "
                   "for more)", CONF_ARGS_MAX);
        return;
    }
    for (size_t i = 1; i <= st->nargs; i++) {
        struct conf_network n;
        if (!conf_network_parse(ps->tok[i], &n)) {
            conf_error(ps, st->line, "'trusted-networks': '%s' is not ADDRESS[/PREFIX]",
                       SHOW(ps->tok[i]));
            continue;
        }
        if (c->ntrusted == CONF_TRUSTED_MAX) {
            conf_error(ps, st->line, "more than %d trusted networks", CONF_TRUSTED_MAX);
            return;
        }
        if (c->trusted == NULL) {
            c->trusted = calloc(CONF_TRUSTED_MAX, sizeof *c->trusted);
            if (c->trusted == NULL) {
                conf_error_nomem(ps);
                return;
            }
        }
        c->trusted[c->ntrusted++] = n;
    }
}

static const char *const conf_token_algs[] = {
    [CONF_TOKEN_HS256] = "hs256",
    [CONF_TOKEN_RS256] = "rs256",
    [CONF_TOKEN_ES256] = "es256",
};

/* token-key ALG FILE [KID] */
void conf_apply_token_key(struct conf_parser *ps, const struct conf_stmt *st)
{
    struct conf_auth *a = &ps->c->auth;
    int w = -1;
    if (st->nargs < 2 || st->nargs > 3) {
        conf_error(ps, st->line, "'token-key' takes ALG FILE [KID]: token-key rs256 /etc/key.pem");
        return;
    }
    for (int i = 0; i < (int)(sizeof conf_token_algs / sizeof conf_token_algs[0]); i++)
        if (strcasecmp(ps->tok[1], conf_token_algs[i]) == 0)
            w = i;
    if (w < 0) {
        conf_error(ps, st->line, "'token-key' algorithm must be hs256, rs256 or es256, not '%s'",
                   SHOW(ps->tok[1]));
        return;
    }
    if (ps->tok[2][0] == '\0' || (st->nargs == 3 && (ps->tok[3][0] == '\0' ||
                                                    strlen(ps->tok[3]) > 64))) {
        conf_error(ps, st->line, "'token-key' needs a file, and a key id of 1 to 64 octets");
        return;
    }
    if (a->ntoken_keys == CONF_TOKEN_KEYS_MAX) {
        conf_error(ps, st->line, "more than %d token keys", CONF_TOKEN_KEYS_MAX);
        return;
    }
    if (a->token_keys == NULL) {
        a->token_keys = calloc(CONF_TOKEN_KEYS_MAX, sizeof *a->token_keys);
        if (a->token_keys == NULL) {
            conf_error_nomem(ps);
            return;
        }
    }
    struct conf_token_key *k = &a->token_keys[a->ntoken_keys];
    k->alg = (enum conf_token_alg)w;
    k->file = conf_strdup(ps, ps->tok[2]);
    k->kid = st->nargs == 3 ? conf_strdup(ps, ps->tok[3]) : NULL;
    if (k->file != NULL)
        a->ntoken_keys++;
    else
        free(k->kid);
}

