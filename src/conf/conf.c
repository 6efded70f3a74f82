/* conf: the sluice.conf parser (DESIGN §5). conf_parse turns the bytes of a configuration into
 * an immutable struct config; sluiced calls it through conf_load at start and on reload, and
 * `sluice config check` to report errors.
 *
 * Pure: no I/O, no globals; it allocates the struct config (and a parser state it frees).
 * Invariants:
 * - the input is read by length, never as a C string: a NUL or other control byte outside a
 *   comment is an error, so every token is a clean C string;
 * - input is bounded: CONF_FILE_MAX octets, CONF_TOKEN_MAX per token, CONF_DEPTH_MAX levels of
 *   blocks; every number is checked for overflow and every value against a range;
 * - every error carries the line it was found on; after an error the parser resynchronises at
 *   the end of the statement (or skips the statement's whole block) and carries on, so one run
 *   reports as many errors as it can (at most CONF_ERRORS_MAX);
 * - a struct config is returned only when there was no error at all.
 *
 * The grammar, in two layers: the lexer (conf_lex.c) yields words (bare or quoted), '{', '}',
 * end of statement (newline or ';') and end of input; statements are `name value... [{ block
 * }]`. The meaning of each name is a row in a per-block table (conf_rules_*), checked
 * generically by kind.
 */
#include "conf/conf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_priv.h"
#include "conf/conf_value.h"

#define CONF_RULES_MAX 24 /* rows in one block's table */

#define CONF_COUNT_MAX 10000000 /* any count beyond this is a typo, not a setting */


enum conf_kind {
    CONF_KIND_STRING,    /* char *, any non-empty text (paths) */
    CONF_KIND_HOST,      /* char *, a host name */
    CONF_KIND_USER,      /* char *, a user name */
    CONF_KIND_ADDRESS,   /* char *, IPV4:PORT, [IPV6]:PORT or *:PORT (a listener) */
    CONF_KIND_HOSTPORT,  /* char *, HOST:PORT or [ADDR]:PORT (somewhere to connect to) */
    CONF_KIND_WORKERS,   /* unsigned, a count or "auto" (0) */
    CONF_KIND_BOOL,      /* bool */
    CONF_KIND_BARE,      /* enum conf_bare_mode */
    CONF_KIND_TLS_MODE,  /* enum conf_tls_mode */
    CONF_KIND_AUTH_MODE, /* enum conf_auth_mode */
    CONF_KIND_SIZE64,    /* uint64_t octets */
    CONF_KIND_SIZE,      /* size_t octets */
    CONF_KIND_COUNT,     /* unsigned */
    CONF_KIND_DURATION,  /* unsigned milliseconds */
    CONF_KIND_BLOCK,     /* name { ... } handled by the sub-table */
    CONF_KIND_LISTEN,    /* listen NAME { ... }, repeatable */
    CONF_KIND_DOMAIN,    /* domain NAME [{ ... }], repeatable */
    CONF_KIND_REMOTE,    /* remote DOMAIN { ... }, repeatable */
    CONF_KIND_OUT_TLS,   /* enum conf_out_tls */
    CONF_KIND_NETWORKS,  /* trusted-networks CIDR..., repeatable, appends */
    CONF_KIND_TOKEN_KEY, /* token-key ALG FILE [KID], repeatable */
    CONF_KIND_SEPARATOR, /* char: one punctuation character or "none" */
    CONF_KIND_EXTERNAL,  /* enum conf_external */
};

struct conf_context;

struct conf_rule {
    const char *name;
    enum conf_kind kind;
    size_t offset;                  /* of the field in the block's target struct */
    uint64_t min, max;              /* inclusive, in the field's unit */
    const struct conf_context *sub; /* CONF_KIND_BLOCK only */
};

struct conf_context {
    const char *name; /* for messages: "limits" */
    const struct conf_rule *rules;
    size_t nrules;
};

struct conf_word {
    const char *word;
    int value;
};

static const struct conf_word conf_words_bool[] = {
    {"yes", 1}, {"no", 0}, {"on", 1}, {"off", 0}, {"true", 1}, {"false", 0},
};
static const struct conf_word conf_words_bare[] = {
    {"reject", CONF_BARE_REJECT},
    {"normalise", CONF_BARE_NORMALISE},
};
static const struct conf_word conf_words_tls[] = {
    {"none", CONF_TLS_NONE},
    {"starttls", CONF_TLS_STARTTLS},
    {"required", CONF_TLS_REQUIRED},
    {"implicit", CONF_TLS_IMPLICIT},
};
static const struct conf_word conf_words_out_tls[] = {
    {"may", CONF_OUT_TLS_MAY},
    {"verify", CONF_OUT_TLS_VERIFY},
    {"none", CONF_OUT_TLS_NONE},
};
static const struct conf_word conf_words_external[] = {
    {"none", CONF_EXTERNAL_NONE},
    {"fingerprint", CONF_EXTERNAL_FINGERPRINT},
    {"subject", CONF_EXTERNAL_SUBJECT},
};
static const struct conf_word conf_words_auth[] = {
    {"none", CONF_AUTH_NONE},
    {"optional", CONF_AUTH_OPTIONAL},
    {"required", CONF_AUTH_REQUIRED},
};

#define CONF_NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define CONF_AT(field) offsetof(struct config, field)

static const struct conf_rule conf_rules_tls[] = {
    {"certificate", CONF_KIND_STRING, CONF_AT(tls_certificate), 0, 0, NULL},
    {"key", CONF_KIND_STRING, CONF_AT(tls_key), 0, 0, NULL},
    {"self-signed", CONF_KIND_BOOL, CONF_AT(tls_self_signed), 0, 0, NULL},
};

static const struct conf_rule conf_rules_directory[] = {
    {"mailboxes", CONF_KIND_STRING, CONF_AT(mailboxes_file), 0, 0, NULL},
    {"aliases", CONF_KIND_STRING, CONF_AT(aliases_file), 0, 0, NULL},
    {"sqlite", CONF_KIND_STRING, CONF_AT(directory_sqlite), 0, 0, NULL},
    {"subaddress-separator", CONF_KIND_SEPARATOR, CONF_AT(subaddress_separator), 0, 0, NULL},
};

static const struct conf_rule conf_rules_auth[] = {
    {"plaintext-loopback", CONF_KIND_BOOL, CONF_AT(auth.plaintext_loopback), 0, 0, NULL},
    {"failure-delay", CONF_KIND_DURATION, CONF_AT(auth.failure_delay), 0, CONF_MS_M, NULL},
    {"session-failures", CONF_KIND_COUNT, CONF_AT(auth.session_failures), 1, 1000, NULL},
    {"ip-failures", CONF_KIND_COUNT, CONF_AT(auth.ip_failures), 1, CONF_COUNT_MAX, NULL},
    {"token-issuer", CONF_KIND_STRING, CONF_AT(auth.token_issuer), 0, 0, NULL},
    {"token-audience", CONF_KIND_STRING, CONF_AT(auth.token_audience), 0, 0, NULL},
    {"token-claim", CONF_KIND_STRING, CONF_AT(auth.token_claim), 0, 0, NULL},
    {"token-leeway", CONF_KIND_DURATION, CONF_AT(auth.token_leeway), 0, CONF_MS_H, NULL},
    {"token-key", CONF_KIND_TOKEN_KEY, 0, 0, 0, NULL},
    {"external", CONF_KIND_EXTERNAL, CONF_AT(auth.external), 0, 0, NULL},
    {"client-ca", CONF_KIND_STRING, CONF_AT(auth.client_ca), 0, 0, NULL},
};

static const struct conf_rule conf_rules_limits[] = {
    {"message-size", CONF_KIND_SIZE64, CONF_AT(limits.message_size), CONF_K, 4 * CONF_G, NULL},
    /* RFC 5321 §4.5.3.1.8: at least 100 must be accepted; below that is allowed but unwise. */
    {"recipients", CONF_KIND_COUNT, CONF_AT(limits.recipients), 1, CONF_COUNT_MAX, NULL},
    {"messages", CONF_KIND_COUNT, CONF_AT(limits.messages), 1, CONF_COUNT_MAX, NULL},
    /* RFC 5321 §4.5.3.1.4 and §4.5.3.1.6 are floors: a smaller limit breaks conforming peers. */
    {"command-line", CONF_KIND_SIZE, CONF_AT(limits.command_line), 512, 64 * CONF_K, NULL},
    {"data-line", CONF_KIND_SIZE, CONF_AT(limits.data_line), 1000, CONF_M, NULL},
    {"header-size", CONF_KIND_SIZE, CONF_AT(limits.header_size), CONF_K, 64 * CONF_M, NULL},
    {"received", CONF_KIND_COUNT, CONF_AT(limits.received), 1, 1000, NULL},
    {"sessions", CONF_KIND_COUNT, CONF_AT(limits.sessions), 1, CONF_COUNT_MAX, NULL},
    {"sessions-per-ip", CONF_KIND_COUNT, CONF_AT(limits.sessions_per_ip), 1, CONF_COUNT_MAX, NULL},
    {"errors", CONF_KIND_COUNT, CONF_AT(limits.errors), 1, CONF_COUNT_MAX, NULL},
    {"junk", CONF_KIND_COUNT, CONF_AT(limits.junk), 1, CONF_COUNT_MAX, NULL},
    {"connection-rate", CONF_KIND_COUNT, CONF_AT(limits.connection_rate), 0, CONF_COUNT_MAX, NULL},
    {"tls-rate", CONF_KIND_COUNT, CONF_AT(limits.tls_rate), 0, CONF_COUNT_MAX, NULL},
    {"spool-min-free", CONF_KIND_SIZE64, CONF_AT(limits.spool_min_free), 0, 1024 * CONF_G, NULL},
};

static const struct conf_rule conf_rules_timeouts[] = {
    /* RFC 5321 §4.5.3.2.1: clients wait 5 minutes for the greeting; stay far below. */
    {"greeting-delay", CONF_KIND_DURATION, CONF_AT(timeouts.greeting_delay), 0, CONF_MS_M, NULL},
    {"command", CONF_KIND_DURATION, CONF_AT(timeouts.command), 100, CONF_MS_D, NULL},
    {"command-deadline", CONF_KIND_DURATION, CONF_AT(timeouts.command_deadline), 100, CONF_MS_D,
     NULL},
    {"data-block", CONF_KIND_DURATION, CONF_AT(timeouts.data_block), 100, CONF_MS_D, NULL},
    {"data-deadline", CONF_KIND_DURATION, CONF_AT(timeouts.data_deadline), 100, CONF_MS_D, NULL},
    {"tls-handshake", CONF_KIND_DURATION, CONF_AT(timeouts.tls_handshake), 100, CONF_MS_D, NULL},
    {"write", CONF_KIND_DURATION, CONF_AT(timeouts.write), 100, CONF_MS_D, NULL},
};

static const struct conf_rule conf_rules_listen[] = {
    {"address", CONF_KIND_ADDRESS, offsetof(struct conf_listener, address), 0, 0, NULL},
    {"tls", CONF_KIND_TLS_MODE, offsetof(struct conf_listener, tls), 0, 0, NULL},
    {"auth", CONF_KIND_AUTH_MODE, offsetof(struct conf_listener, auth), 0, 0, NULL},
    {"vrfy", CONF_KIND_BOOL, offsetof(struct conf_listener, vrfy), 0, 0, NULL},
    {"expn", CONF_KIND_BOOL, offsetof(struct conf_listener, expn), 0, 0, NULL},
    {"hide-client", CONF_KIND_BOOL, offsetof(struct conf_listener, hide_client), 0, 0, NULL},
};

static const struct conf_context conf_ctx_tls = {"tls", conf_rules_tls, CONF_NELEM(conf_rules_tls)};
static const struct conf_context conf_ctx_directory = {"directory", conf_rules_directory,
                                                       CONF_NELEM(conf_rules_directory)};
static const struct conf_context conf_ctx_auth = {"auth", conf_rules_auth,
                                                  CONF_NELEM(conf_rules_auth)};
static const struct conf_context conf_ctx_limits = {"limits", conf_rules_limits,
                                                    CONF_NELEM(conf_rules_limits)};
static const struct conf_context conf_ctx_timeouts = {"timeouts", conf_rules_timeouts,
                                                      CONF_NELEM(conf_rules_timeouts)};
static const struct conf_context conf_ctx_listen = {"listen", conf_rules_listen,
                                                    CONF_NELEM(conf_rules_listen)};
static const struct conf_rule conf_rules_delivery[] = {
    {"hold", CONF_KIND_BOOL, CONF_AT(delivery.hold), 0, 0, NULL},
    {"maildir", CONF_KIND_STRING, CONF_AT(delivery.maildir), 0, 0, NULL},
    {"retry-min", CONF_KIND_DURATION, CONF_AT(delivery.retry_min), CONF_MS_S, CONF_MS_D, NULL},
    {"retry-max", CONF_KIND_DURATION, CONF_AT(delivery.retry_max), CONF_MS_S, CONF_MS_D, NULL},
    {"lifetime", CONF_KIND_DURATION, CONF_AT(delivery.lifetime), CONF_MS_S, 30 * CONF_MS_D, NULL},
    {"delay-warning", CONF_KIND_DURATION, CONF_AT(delivery.delay_warning), 0, 30 * CONF_MS_D,
     NULL},
    {"rescan", CONF_KIND_DURATION, CONF_AT(delivery.rescan), CONF_MS_S, CONF_MS_D, NULL},
    {"concurrency", CONF_KIND_COUNT, CONF_AT(delivery.concurrency), 1, 10000, NULL},
    {"destination-concurrency", CONF_KIND_COUNT, CONF_AT(delivery.destination_concurrency), 1,
     10000, NULL},
    {"local-concurrency", CONF_KIND_COUNT, CONF_AT(delivery.local_concurrency), 1, 256, NULL},
    {"dns", CONF_KIND_STRING, CONF_AT(delivery.dns), 0, 0, NULL},
    {"remote-port", CONF_KIND_COUNT, CONF_AT(delivery.remote_port), 1, 65535, NULL},
    {"smarthost", CONF_KIND_HOSTPORT, CONF_AT(delivery.smarthost), 0, 0, NULL},
    {"smarthost-user", CONF_KIND_STRING, CONF_AT(delivery.smarthost_user), 0, 0, NULL},
    {"smarthost-password", CONF_KIND_STRING, CONF_AT(delivery.smarthost_password), 0, 0, NULL},
    {"tls", CONF_KIND_OUT_TLS, CONF_AT(delivery.tls), 0, 0, NULL},
    {"tls-ca", CONF_KIND_STRING, CONF_AT(delivery.tls_ca), 0, 0, NULL},
};

/* The timeouts of the SMTP client have their own block, like the server's. */
static const struct conf_rule conf_rules_delivery_timeouts[] = {
    {"connect", CONF_KIND_DURATION, CONF_AT(delivery.connect_timeout), 100, CONF_MS_H, NULL},
    {"command", CONF_KIND_DURATION, CONF_AT(delivery.command_timeout), 100, CONF_MS_H, NULL},
    {"data", CONF_KIND_DURATION, CONF_AT(delivery.data_timeout), 100, CONF_MS_H, NULL},
};

static const struct conf_rule conf_rules_domain[] = {
    {"maildir", CONF_KIND_STRING, offsetof(struct conf_domain_delivery, maildir), 0, 0, NULL},
    {"lmtp", CONF_KIND_STRING, offsetof(struct conf_domain_delivery, lmtp), 0, 0, NULL},
};

static const struct conf_rule conf_rules_remote[] = {
    {"tls", CONF_KIND_OUT_TLS, offsetof(struct conf_remote, tls), 0, 0, NULL},
};

static const struct conf_context conf_ctx_delivery = {"delivery", conf_rules_delivery,
                                                      CONF_NELEM(conf_rules_delivery)};
static const struct conf_context conf_ctx_delivery_timeouts = {
    "delivery-timeouts", conf_rules_delivery_timeouts, CONF_NELEM(conf_rules_delivery_timeouts)};
static const struct conf_context conf_ctx_domain = {"domain", conf_rules_domain,
                                                    CONF_NELEM(conf_rules_domain)};
static const struct conf_context conf_ctx_remote = {"remote", conf_rules_remote,
                                                    CONF_NELEM(conf_rules_remote)};

static const struct conf_rule conf_rules_top[] = {
    {"hostname", CONF_KIND_HOST, CONF_AT(hostname), 0, 0, NULL},
    {"spool", CONF_KIND_STRING, CONF_AT(spool), 0, 0, NULL},
    {"user", CONF_KIND_USER, CONF_AT(user), 0, 0, NULL},
    {"workers", CONF_KIND_WORKERS, CONF_AT(workers), 0, 1024, NULL},
    {"bare-newlines", CONF_KIND_BARE, CONF_AT(bare_newlines), 0, 0, NULL},
    {"tls", CONF_KIND_BLOCK, 0, 0, 0, &conf_ctx_tls},
    {"directory", CONF_KIND_BLOCK, 0, 0, 0, &conf_ctx_directory},
    {"limits", CONF_KIND_BLOCK, 0, 0, 0, &conf_ctx_limits},
    {"timeouts", CONF_KIND_BLOCK, 0, 0, 0, &conf_ctx_timeouts},
    {"listen", CONF_KIND_LISTEN, 0, 0, 0, NULL},
    {"domain", CONF_KIND_DOMAIN, 0, 0, 0, NULL},
    {"delivery", CONF_KIND_BLOCK, 0, 0, 0, &conf_ctx_delivery},
    {"delivery-timeouts", CONF_KIND_BLOCK, 0, 0, 0, &conf_ctx_delivery_timeouts},
    {"remote", CONF_KIND_REMOTE, 0, 0, 0, NULL},
    {"trusted-networks", CONF_KIND_NETWORKS, 0, 0, 0, NULL},
    {"auth", CONF_KIND_BLOCK, 0, 0, 0, &conf_ctx_auth},
};

static const struct conf_context conf_ctx_top = {NULL, conf_rules_top, CONF_NELEM(conf_rules_top)};

_Static_assert(CONF_NELEM(conf_rules_top) <= CONF_RULES_MAX, "seen[] too small");
_Static_assert(CONF_NELEM(conf_rules_limits) <= CONF_RULES_MAX, "seen[] too small");
_Static_assert(CONF_NELEM(conf_rules_timeouts) <= CONF_RULES_MAX, "seen[] too small");
_Static_assert(CONF_NELEM(conf_rules_delivery) <= CONF_RULES_MAX, "seen[] too small");


void conf_error(struct conf_parser *ps, unsigned line, const char *fmt, ...)
{
    struct conf_errors *e = ps->errs;
    va_list ap;

    if (ps->stop)
        return;
    e->e[e->n].line = line;
    if (e->n == CONF_ERRORS_MAX - 1) {
        snprintf(e->e[e->n].msg, sizeof e->e[e->n].msg, "too many errors, stopping here");
        ps->stop = true;
    } else {
        va_start(ap, fmt);
        vsnprintf(e->e[e->n].msg, sizeof e->e[e->n].msg, fmt, ap);
        va_end(ap);
    }
    e->n++;
}

void conf_error_nomem(struct conf_parser *ps)
{
    conf_error(ps, 0, "out of memory");
    ps->stop = true;
}


char *conf_strdup(struct conf_parser *ps, const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);

    if (d == NULL) {
        conf_error_nomem(ps);
        return NULL;
    }
    memcpy(d, s, n + 1);
    return d;
}

static void conf_set_string(struct conf_parser *ps, void *field, const char *v)
{
    char *old;
    char *d = conf_strdup(ps, v);

    if (d == NULL)
        return;
    memcpy(&old, field, sizeof old);
    free(old);
    memcpy(field, &d, sizeof d);
}

static bool conf_lookup_word(struct conf_parser *ps, const struct conf_rule *r, const char *v,
                             unsigned line, const struct conf_word *words, size_t nwords, int *out)
{
    char list[128];
    size_t n = 0;

    for (size_t i = 0; i < nwords; i++) {
        if (strcasecmp(v, words[i].word) == 0) {
            *out = words[i].value;
            return true;
        }
    }
    list[0] = '\0';
    for (size_t i = 0; i < nwords && n < sizeof list; i++) {
        int w = snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", words[i].word);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    conf_error(ps, line, "'%s' must be one of %s, not '%s'", r->name, list, SHOW(v));
    return false;
}

static void conf_apply_number(struct conf_parser *ps, const struct conf_rule *r, void *field,
                              const char *v, unsigned line)
{
    enum conf_unit unit = CONF_UNIT_COUNT;
    const char *what = "a number";
    uint64_t n = 0;
    enum conf_num res;

    if (r->kind == CONF_KIND_SIZE64 || r->kind == CONF_KIND_SIZE) {
        unit = CONF_UNIT_SIZE;
        what = "a size (a number, optionally with K, M or G)";
    } else if (r->kind == CONF_KIND_DURATION) {
        unit = CONF_UNIT_DURATION;
        what = "a duration (a number, optionally with ms, s, m, h or d)";
    }
    if (r->kind == CONF_KIND_WORKERS && strcasecmp(v, "auto") == 0)
        res = CONF_NUM_OK;
    else
        res = conf_number_parse(v, unit, &n);
    if (res == CONF_NUM_SYNTAX) {
        conf_error(ps, line, "'%s' must be %s%s, not '%s'", r->name, what,
                   r->kind == CONF_KIND_WORKERS ? " or auto" : "", SHOW(v));
        return;
    }
    if (res == CONF_NUM_RANGE || n < r->min || n > r->max) {
        char lo[32], hi[32];
        conf_number_format(lo, sizeof lo, r->min, unit);
        conf_number_format(hi, sizeof hi, r->max, unit);
        conf_error(ps, line, "'%s' %s is out of range (%s to %s)", r->name, SHOW(v), lo, hi);
        return;
    }
    switch (r->kind) {
    case CONF_KIND_SIZE64:
        memcpy(field, &n, sizeof n);
        break;
    case CONF_KIND_SIZE: {
        size_t z = (size_t)n;
        memcpy(field, &z, sizeof z);
        break;
    }
    default: {
        unsigned u = (unsigned)n;
        memcpy(field, &u, sizeof u);
        break;
    }
    }
}

static void conf_apply_value(struct conf_parser *ps, const struct conf_rule *r, void *base,
                             const char *v, unsigned line)
{
    void *field = (char *)base + r->offset;
    int w = 0;

    switch (r->kind) {
    case CONF_KIND_STRING:
        if (*v == '\0')
            conf_error(ps, line, "'%s' must not be empty", r->name);
        else
            conf_set_string(ps, field, v);
        return;
    case CONF_KIND_HOST:
        if (!conf_host_valid(v))
            conf_error(ps, line, "'%s' is not a valid host name: '%s'", r->name, SHOW(v));
        else
            conf_set_string(ps, field, v);
        return;
    case CONF_KIND_USER:
        if (!conf_name_valid(v, 32))
            conf_error(ps, line, "'%s' is not a valid user name: '%s'", r->name, SHOW(v));
        else
            conf_set_string(ps, field, v);
        return;
    case CONF_KIND_ADDRESS:
        if (!conf_address_valid(v))
            conf_error(ps, line, "'%s' must be IPV4:PORT, [IPV6]:PORT or *:PORT, not '%s'", r->name,
                       SHOW(v));
        else
            conf_set_string(ps, field, v);
        return;
    case CONF_KIND_HOSTPORT:
        if (!conf_hostport_valid(v))
            conf_error(ps, line, "'%s' must be HOST:PORT or [ADDRESS]:PORT, not '%s'", r->name,
                       SHOW(v));
        else
            conf_set_string(ps, field, v);
        return;
    case CONF_KIND_BOOL:
        if (conf_lookup_word(ps, r, v, line, conf_words_bool, CONF_NELEM(conf_words_bool), &w)) {
            bool b = w != 0;
            memcpy(field, &b, sizeof b);
        }
        return;
    case CONF_KIND_BARE:
        if (conf_lookup_word(ps, r, v, line, conf_words_bare, CONF_NELEM(conf_words_bare), &w)) {
            enum conf_bare_mode m = (enum conf_bare_mode)w;
            memcpy(field, &m, sizeof m);
        }
        return;
    case CONF_KIND_TLS_MODE:
        if (conf_lookup_word(ps, r, v, line, conf_words_tls, CONF_NELEM(conf_words_tls), &w)) {
            enum conf_tls_mode m = (enum conf_tls_mode)w;
            memcpy(field, &m, sizeof m);
        }
        return;
    case CONF_KIND_OUT_TLS:
        if (conf_lookup_word(ps, r, v, line, conf_words_out_tls, CONF_NELEM(conf_words_out_tls),
                             &w)) {
            enum conf_out_tls m = (enum conf_out_tls)w;
            memcpy(field, &m, sizeof m);
        }
        return;
    case CONF_KIND_EXTERNAL:
        if (conf_lookup_word(ps, r, v, line, conf_words_external, CONF_NELEM(conf_words_external),
                             &w)) {
            enum conf_external m = (enum conf_external)w;
            memcpy(field, &m, sizeof m);
        }
        return;
    case CONF_KIND_SEPARATOR:
        if (strcmp(v, "none") == 0)
            *(char *)field = '\0';
        else if (strlen(v) == 1 && strchr("+-_=#~", v[0]) != NULL)
            *(char *)field = v[0];
        else
            conf_error(ps, line, "'%s' must be one of + - _ = # ~ or none, not '%s'", r->name,
                       SHOW(v));
        return;
    case CONF_KIND_AUTH_MODE:
        if (conf_lookup_word(ps, r, v, line, conf_words_auth, CONF_NELEM(conf_words_auth), &w)) {
            enum conf_auth_mode m = (enum conf_auth_mode)w;
            memcpy(field, &m, sizeof m);
        }
        return;
    default:
        conf_apply_number(ps, r, field, v, line);
        return;
    }
}

static void conf_parse_block(struct conf_parser *ps, const struct conf_context *ctx, void *base,
                             unsigned depth, unsigned open_line, unsigned *seen);

static size_t conf_rule_index(const struct conf_context *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->nrules; i++)
        if (strcmp(ctx->rules[i].name, name) == 0)
            return i;
    return ctx->nrules;
}

static void conf_check_tls_block(struct conf_parser *ps, unsigned line)
{
    const struct config *c = ps->c;

    if (c->tls_certificate != NULL && c->tls_key == NULL)
        conf_error(ps, line, "'tls' has a certificate but no key");
    else if (c->tls_certificate == NULL && c->tls_key != NULL)
        conf_error(ps, line, "'tls' has a key but no certificate");
    else if (c->tls_certificate == NULL && c->tls_self_signed)
        conf_error(ps, line, "'tls' self-signed needs the certificate and key paths");
}

static void conf_apply_listen(struct conf_parser *ps, const struct conf_stmt *st, unsigned depth)
{
    struct config *c = ps->c;
    const char *name = ps->tok[1];
    bool ok = false;
    unsigned seen[CONF_RULES_MAX];

    if (st->nargs != 1) {
        conf_error(ps, st->line, "'listen' takes one name: listen NAME { address HOST:PORT }");
    } else if (!conf_name_valid(name, 64)) {
        conf_error(ps, st->line, "listener name '%s' must be letters, digits, '-', '_' or '.'",
                   SHOW(name));
    } else if (c->nlisteners == CONF_LISTENERS_MAX) {
        conf_error(ps, st->line, "more than %d listeners", CONF_LISTENERS_MAX);
    } else {
        ok = true;
        for (size_t i = 0; i < c->nlisteners; i++) {
            if (strcmp(c->listeners[i].name, name) == 0) {
                conf_error(ps, st->line, "listener '%s' defined twice", SHOW(name));
                ok = false;
            }
        }
    }
    if (!st->block) {
        conf_error(ps, st->line, "'listen' needs a block: listen NAME { address HOST:PORT }");
        return;
    }
    if (ok && c->listeners == NULL) {
        c->listeners = calloc(CONF_LISTENERS_MAX, sizeof *c->listeners);
        if (c->listeners == NULL) {
            conf_error_nomem(ps);
            ok = false;
        }
    }
    if (!ok) {
        conf_skip_block(ps, st->line, depth + 1);
        return;
    }
    size_t i = c->nlisteners;
    struct conf_listener *l = &c->listeners[i];
    *l = (struct conf_listener){.tls = CONF_TLS_NONE, .auth = CONF_AUTH_NONE};
    l->name = conf_strdup(ps, name);
    if (l->name == NULL)
        return;
    c->nlisteners++;
    conf_parse_block(ps, &conf_ctx_listen, l, depth + 1, st->line, seen);
    ps->listen_tls_line[i] = seen[conf_rule_index(&conf_ctx_listen, "tls")];
    ps->listen_address_line[i] = seen[conf_rule_index(&conf_ctx_listen, "address")];
    if (l->address == NULL) {
        conf_error(ps, st->line, "listener '%s' has no address", SHOW(l->name));
        return;
    }
    for (size_t j = 0; j < i; j++) {
        if (c->listeners[j].address != NULL && strcmp(c->listeners[j].address, l->address) == 0)
            conf_error(ps, ps->listen_address_line[i], "address %s is already used by '%s'",
                       SHOW(l->address), SHOW(c->listeners[j].name));
    }
}

static bool conf_lmtp_valid(const char *v);

static void conf_apply_domain(struct conf_parser *ps, const struct conf_stmt *st, unsigned depth)
{
    struct config *c = ps->c;
    char *name = ps->tok[1];
    unsigned seen[CONF_RULES_MAX];
    bool ok = false;

    if (st->nargs != 1) {
        conf_error(ps, st->line, "'domain' takes one name");
    } else if (!conf_host_valid(name)) {
        conf_error(ps, st->line, "'domain' is not a valid domain name: '%s'", SHOW(name));
    } else if (c->ndomains == CONF_DOMAINS_MAX) {
        conf_error(ps, st->line, "more than %d domains", CONF_DOMAINS_MAX);
    } else {
        ok = true;
        for (char *p = name; *p != '\0'; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        for (size_t i = 0; i < c->ndomains && ok; i++) {
            if (strcmp(c->domains[i], name) == 0) {
                conf_error(ps, st->line, "domain '%s' listed twice", SHOW(name));
                ok = false;
            }
        }
    }
    if (ok && c->ndomains == ps->domains_cap) {
        size_t cap = ps->domains_cap ? ps->domains_cap * 2 : 8;
        char **d = realloc(c->domains, cap * sizeof *d);
        if (d != NULL)
            c->domains = d;
        struct conf_domain_delivery *dd =
            d != NULL ? realloc(c->domain_delivery, cap * sizeof *dd) : NULL;
        if (dd == NULL) {
            conf_error_nomem(ps);
            ok = false;
        } else {
            c->domain_delivery = dd;
            ps->domains_cap = cap;
        }
    }
    if (ok) {
        char *d = conf_strdup(ps, name);
        ok = d != NULL;
        if (ok) {
            c->domain_delivery[c->ndomains] = (struct conf_domain_delivery){0};
            c->domains[c->ndomains++] = d;
        }
    }
    if (st->block) {
        if (ok) {
            struct conf_domain_delivery *dd = &c->domain_delivery[c->ndomains - 1];
            conf_parse_block(ps, &conf_ctx_domain, dd, depth + 1, st->line, seen);
            if (dd->maildir != NULL && dd->lmtp != NULL)
                conf_error(ps, st->line, "domain '%s' has both maildir and lmtp", SHOW(name));
            if (dd->lmtp != NULL && !conf_lmtp_valid(dd->lmtp))
                conf_error(ps, seen[conf_rule_index(&conf_ctx_domain, "lmtp")],
                           "'lmtp' must be HOST:PORT or unix:/absolute/path, not '%s'",
                           SHOW(dd->lmtp));
        } else {
            conf_skip_block(ps, st->line, depth + 1);
        }
    }
}

static bool conf_lmtp_valid(const char *v)
{
    if (strncmp(v, "unix:/", 6) == 0)
        return strlen(v) - 5 < 108; /* sun_path */
    return conf_hostport_valid(v);
}

static void conf_apply_remote(struct conf_parser *ps, const struct conf_stmt *st, unsigned depth)
{
    struct config *c = ps->c;
    char *name = ps->tok[1];
    unsigned seen[CONF_RULES_MAX];
    bool ok = false;

    if (st->nargs != 1 || !st->block) {
        conf_error(ps, st->line, "'remote' takes a domain and a block: remote DOMAIN { tls verify }");
    } else if (!conf_host_valid(name)) {
        conf_error(ps, st->line, "'remote' is not a valid domain name: '%s'", SHOW(name));
    } else if (c->nremotes == CONF_REMOTES_MAX) {
        conf_error(ps, st->line, "more than %d remote blocks", CONF_REMOTES_MAX);
    } else {
        ok = true;
        for (char *p = name; *p != '\0'; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        for (size_t i = 0; i < c->nremotes && ok; i++) {
            if (strcmp(c->remotes[i].domain, name) == 0) {
                conf_error(ps, st->line, "remote '%s' defined twice", SHOW(name));
                ok = false;
            }
        }
    }
    if (ok && c->remotes == NULL) {
        c->remotes = calloc(CONF_REMOTES_MAX, sizeof *c->remotes);
        if (c->remotes == NULL) {
            conf_error_nomem(ps);
            ok = false;
        }
    }
    struct conf_remote *r = ok ? &c->remotes[c->nremotes] : NULL;
    if (r != NULL) {
        *r = (struct conf_remote){.domain = conf_strdup(ps, name)};
        if (r->domain == NULL)
            r = NULL;
        else
            c->nremotes++;
    }
    if (!st->block)
        return;
    if (r == NULL) {
        conf_skip_block(ps, st->line, depth + 1);
        return;
    }
    conf_parse_block(ps, &conf_ctx_remote, r, depth + 1, st->line, seen);
    r->tls_set = seen[conf_rule_index(&conf_ctx_remote, "tls")] != 0;
}

static void conf_apply(struct conf_parser *ps, const struct conf_context *ctx, void *base,
                       unsigned depth, const struct conf_stmt *st, unsigned *seen)
{
    const char *name = ps->tok[0];
    size_t idx = conf_rule_index(ctx, name);
    unsigned sub_seen[CONF_RULES_MAX];

    if (idx == ctx->nrules) {
        if (ctx->name == NULL)
            conf_error(ps, st->line, "unknown directive '%s'", SHOW(name));
        else
            conf_error(ps, st->line, "unknown directive '%s' in '%s' block", SHOW(name), ctx->name);
        if (st->block)
            conf_skip_block(ps, st->line, depth + 1);
        return;
    }
    const struct conf_rule *r = &ctx->rules[idx];
    if (r->kind == CONF_KIND_LISTEN) {
        conf_apply_listen(ps, st, depth);
        return;
    }
    if (r->kind == CONF_KIND_DOMAIN) {
        conf_apply_domain(ps, st, depth);
        return;
    }
    if (r->kind == CONF_KIND_REMOTE) {
        conf_apply_remote(ps, st, depth);
        return;
    }
    if (r->kind == CONF_KIND_NETWORKS || r->kind == CONF_KIND_TOKEN_KEY) {
        if (st->block) {
            conf_error(ps, st->line, "'%s' does not take a block", r->name);
            conf_skip_block(ps, st->line, depth + 1);
        } else if (r->kind == CONF_KIND_NETWORKS) {
            conf_apply_networks(ps, st);
        } else {
            conf_apply_token_key(ps, st);
        }
        return;
    }
    if (seen[idx] != 0) {
        conf_error(ps, st->line, "'%s' given twice (first on line %u)", r->name, seen[idx]);
        if (st->block)
            conf_skip_block(ps, st->line, depth + 1);
        return;
    }
    seen[idx] = st->line;
    if (r->kind == CONF_KIND_BLOCK) {
        if (st->nargs != 0)
            conf_error(ps, st->line, "'%s' takes no value before its block", r->name);
        if (!st->block) {
            conf_error(ps, st->line, "'%s' needs a block: %s { ... }", r->name, r->name);
            return;
        }
        if (st->nargs != 0) {
            conf_skip_block(ps, st->line, depth + 1);
            return;
        }
        conf_parse_block(ps, r->sub, base, depth + 1, st->line, sub_seen);
        if (r->sub == &conf_ctx_tls)
            conf_check_tls_block(ps, st->line);
        return;
    }
    if (st->block) {
        conf_error(ps, st->line, "'%s' does not take a block", r->name);
        conf_skip_block(ps, st->line, depth + 1);
    } else if (st->nargs == 0) {
        conf_error(ps, st->line, "'%s' needs a value", r->name);
    } else if (st->nargs > 1) {
        conf_error(ps, st->line, "'%s' takes one value, not %zu", r->name, st->nargs);
    } else {
        conf_apply_value(ps, r, base, ps->tok[1], st->line);
    }
}

/* Parses statements up to the '}' closing a block at depth (or the end of input at depth 0).
 * seen[i] gets the line where rule i was set, 0 when it was not. */
static void conf_parse_block(struct conf_parser *ps, const struct conf_context *ctx, void *base,
                             unsigned depth, unsigned open_line, unsigned *seen)
{
    struct conf_stmt st;

    memset(seen, 0, CONF_RULES_MAX * sizeof *seen);
    while (!ps->stop) {
        switch (conf_read_stmt(ps, &st, depth)) {
        case CONF_READ_EOF:
            if (depth > 0)
                conf_error(ps, open_line, "'%s' block opened here is not closed", ctx->name);
            return;
        case CONF_READ_CLOSE:
            if (depth > 0)
                return;
            conf_error(ps, st.line, "'}' without an open block");
            break;
        case CONF_READ_STMT:
            if (!st.bad)
                conf_apply(ps, ctx, base, depth, &st, seen);
            else if (st.block)
                conf_skip_block(ps, st.line, depth + 1);
            break;
        }
    }
}

static void conf_check_whole(struct conf_parser *ps)
{
    const struct config *c = ps->c;
    unsigned last = ps->line;

    if (last > 1 && ps->len > 0 && ps->text[ps->len - 1] == '\n')
        last--;
    if (c->nlisteners == 0)
        conf_error(ps, last, "no listener: add listen NAME { address HOST:PORT }");
    if (c->directory_sqlite != NULL && (c->mailboxes_file != NULL || c->aliases_file != NULL))
        conf_error(ps, last, "'directory' takes either sqlite or mailboxes/aliases files, not both");
    if (c->auth.external == CONF_EXTERNAL_SUBJECT && c->auth.client_ca == NULL)
        conf_error(ps, last, "'auth' external subject needs client-ca to verify certificates");
    /* RFC 9068 §4: a resource server checks the issuer and that it is the audience; without
     * both, a token the same key signed for another service would log in here. */
    if (c->auth.ntoken_keys > 0 &&
        (c->auth.token_issuer == NULL || c->auth.token_audience == NULL))
        conf_error(ps, last,
                   "'auth' token-key needs token-issuer and token-audience (RFC 9068 §4)");
    for (size_t i = 0; i < c->nlisteners; i++) {
        if (c->listeners[i].tls != CONF_TLS_NONE && c->tls_certificate == NULL)
            conf_error(ps, ps->listen_tls_line[i],
                       "listener '%s' uses TLS but there is no tls { certificate; key } block",
                       SHOW(c->listeners[i].name));
    }
}

static struct config *conf_new(void)
{
    static const char spool[] = "/var/spool/sluice";
    struct config *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->spool = malloc(sizeof spool);
    if (c->spool == NULL) {
        free(c);
        return NULL;
    }
    memcpy(c->spool, spool, sizeof spool);
    c->workers = 0;
    c->bare_newlines = CONF_BARE_REJECT;
    c->subaddress_separator = '+';
    c->auth = (struct conf_auth){
        .failure_delay = CONF_MS_S,
        .session_failures = 3,
        .ip_failures = 20,
        .token_leeway = CONF_MS_M,
    };
    c->limits = (struct conf_limits){
        .message_size = 35 * CONF_M,
        .recipients = 1000,
        .messages = 100,
        .command_line = 512,
        .data_line = 1000,
        .header_size = 256 * CONF_K,
        .received = 50,
        .sessions = 1000,
        .sessions_per_ip = 50,
        .errors = 20,
        .junk = 100,
    };
    c->timeouts = (struct conf_timeouts){
        .greeting_delay = 0,
        .command = 5 * CONF_MS_M,
        .command_deadline = CONF_MS_M,
        .data_block = 3 * CONF_MS_M,
        .data_deadline = 10 * CONF_MS_M,
        .tls_handshake = 30 * CONF_MS_S,
        .write = 2 * CONF_MS_M,
    };
    c->delivery = (struct conf_delivery){
        .retry_min = 5 * CONF_MS_M,
        .retry_max = CONF_MS_H,
        .lifetime = 5 * CONF_MS_D,
        .delay_warning = 4 * CONF_MS_H,
        .rescan = CONF_MS_M,
        .concurrency = 100,
        .destination_concurrency = 20,
        .local_concurrency = 32,
        .remote_port = 25,
        .tls = CONF_OUT_TLS_MAY,
        .connect_timeout = 30 * CONF_MS_S,
        .command_timeout = 5 * CONF_MS_M,
        .data_timeout = 10 * CONF_MS_M,
    };
    return c;
}

struct config *conf_parse(const char *text, size_t len, struct conf_errors *errs)
{
    struct conf_errors local;
    struct conf_parser *ps;
    struct config *c;
    unsigned seen[CONF_RULES_MAX];

    if (errs == NULL)
        errs = &local;
    errs->n = 0;
    if (len > CONF_FILE_MAX) {
        errs->e[0].line = 0;
        snprintf(errs->e[0].msg, sizeof errs->e[0].msg, "larger than %d bytes", CONF_FILE_MAX);
        errs->n = 1;
        return NULL;
    }
    ps = calloc(1, sizeof *ps);
    c = conf_new();
    if (ps == NULL || c == NULL) {
        free(ps);
        conf_free(c);
        errs->e[0].line = 0;
        snprintf(errs->e[0].msg, sizeof errs->e[0].msg, "out of memory");
        errs->n = 1;
        return NULL;
    }
    ps->text = (const unsigned char *)text;
    ps->len = text != NULL ? len : 0;
    ps->line = 1;
    ps->errs = errs;
    ps->c = c;
    conf_parse_block(ps, &conf_ctx_top, c, 0, 0, seen);
    if (!ps->stop)
        conf_check_whole(ps);
    free(ps);
    if (errs->n > 0) {
        conf_free(c);
        return NULL;
    }
    return c;
}

void conf_free(struct config *c)
{
    if (c == NULL)
        return;
    free(c->hostname);
    free(c->spool);
    free(c->user);
    free(c->tls_certificate);
    free(c->tls_key);
    free(c->mailboxes_file);
    free(c->aliases_file);
    free(c->directory_sqlite);
    free(c->trusted);
    free(c->auth.token_issuer);
    free(c->auth.token_audience);
    free(c->auth.token_claim);
    for (size_t i = 0; i < c->auth.ntoken_keys; i++) {
        free(c->auth.token_keys[i].file);
        free(c->auth.token_keys[i].kid);
    }
    free(c->auth.token_keys);
    free(c->auth.client_ca);
    for (size_t i = 0; i < c->nlisteners; i++) {
        free(c->listeners[i].name);
        free(c->listeners[i].address);
    }
    free(c->listeners);
    for (size_t i = 0; i < c->ndomains; i++) {
        free(c->domains[i]);
        free(c->domain_delivery[i].maildir);
        free(c->domain_delivery[i].lmtp);
    }
    free(c->domains);
    free(c->domain_delivery);
    for (size_t i = 0; i < c->nremotes; i++)
        free(c->remotes[i].domain);
    free(c->remotes);
    free(c->delivery.maildir);
    free(c->delivery.dns);
    free(c->delivery.smarthost);
    free(c->delivery.smarthost_user);
    free(c->delivery.smarthost_password);
    free(c->delivery.tls_ca);
    free(c);
}
