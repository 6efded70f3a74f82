/* Unit tests for conf (src/conf/conf.c, conf_load.c, check.c): every directive, every default,
 * every error with the line it must name, the input bounds, the embedded default
 * configuration, and `sluice config check`. */
/* cmocka.h needs these before it, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/check.h"
#include "conf/conf.h"
#include "conf/conf_value.h"

#define K ((uint64_t)1024)
#define M (K * 1024)
#define G (M * 1024)
#define SEC ((uint64_t)1000)
#define MIN (SEC * 60)
#define HOUR (MIN * 60)
#define DAY (HOUR * 24)

#define LISTENER "listen a { address 127.0.0.1:25 }\n"
#define TLS_BLOCK "tls { certificate /c.pem; key /k.pem }\n"

enum field {
    F_WORKERS,
    F_SELF_SIGNED,
    F_BARE,
    F_MESSAGE_SIZE,
    F_RECIPIENTS,
    F_MESSAGES,
    F_COMMAND_LINE,
    F_DATA_LINE,
    F_HEADER_SIZE,
    F_RECEIVED,
    F_SESSIONS,
    F_SESSIONS_PER_IP,
    F_ERRORS,
    F_JUNK,
    F_CONNECTION_RATE,
    F_TLS_RATE,
    F_SPOOL_MIN_FREE,
    F_GREETING_DELAY,
    F_COMMAND,
    F_COMMAND_DEADLINE,
    F_DATA_BLOCK,
    F_DATA_DEADLINE,
    F_TLS_HANDSHAKE,
    F_WRITE,
    F_LISTEN_TLS,
    F_LISTEN_AUTH,
    F_NLISTENERS,
    F_NDOMAINS,
    /* strings */
    S_HOSTNAME,
    S_SPOOL,
    S_USER,
    S_CERTIFICATE,
    S_KEY,
    S_MAILBOXES,
    S_ALIASES,
    S_LISTEN_NAME,
    S_LISTEN_ADDRESS,
    S_LAST_LISTEN_NAME,
    S_LAST_LISTEN_ADDRESS,
    S_DOMAIN_FIRST,
    S_DOMAIN_LAST,
};

static uint64_t get_num(const struct config *c, enum field f)
{
    switch (f) {
    case F_WORKERS:
        return c->workers;
    case F_SELF_SIGNED:
        return c->tls_self_signed;
    case F_BARE:
        return c->bare_newlines;
    case F_MESSAGE_SIZE:
        return c->limits.message_size;
    case F_RECIPIENTS:
        return c->limits.recipients;
    case F_MESSAGES:
        return c->limits.messages;
    case F_COMMAND_LINE:
        return c->limits.command_line;
    case F_DATA_LINE:
        return c->limits.data_line;
    case F_HEADER_SIZE:
        return c->limits.header_size;
    case F_RECEIVED:
        return c->limits.received;
    case F_SESSIONS:
        return c->limits.sessions;
    case F_SESSIONS_PER_IP:
        return c->limits.sessions_per_ip;
    case F_ERRORS:
        return c->limits.errors;
    case F_JUNK:
        return c->limits.junk;
    case F_CONNECTION_RATE:
        return c->limits.connection_rate;
    case F_TLS_RATE:
        return c->limits.tls_rate;
    case F_SPOOL_MIN_FREE:
        return c->limits.spool_min_free;
    case F_GREETING_DELAY:
        return c->timeouts.greeting_delay;
    case F_COMMAND:
        return c->timeouts.command;
    case F_COMMAND_DEADLINE:
        return c->timeouts.command_deadline;
    case F_DATA_BLOCK:
        return c->timeouts.data_block;
    case F_DATA_DEADLINE:
        return c->timeouts.data_deadline;
    case F_TLS_HANDSHAKE:
        return c->timeouts.tls_handshake;
    case F_WRITE:
        return c->timeouts.write;
    case F_LISTEN_TLS:
        return c->listeners[0].tls;
    case F_LISTEN_AUTH:
        return c->listeners[0].auth;
    case F_NLISTENERS:
        return c->nlisteners;
    case F_NDOMAINS:
        return c->ndomains;
    default:
        fail_msg("field %d is not a number", f);
        return 0;
    }
}

static const char *get_str(const struct config *c, enum field f)
{
    switch (f) {
    case S_HOSTNAME:
        return c->hostname;
    case S_SPOOL:
        return c->spool;
    case S_USER:
        return c->user;
    case S_CERTIFICATE:
        return c->tls_certificate;
    case S_KEY:
        return c->tls_key;
    case S_MAILBOXES:
        return c->mailboxes_file;
    case S_ALIASES:
        return c->aliases_file;
    case S_LISTEN_NAME:
        return c->listeners[0].name;
    case S_LISTEN_ADDRESS:
        return c->listeners[0].address;
    case S_LAST_LISTEN_NAME:
        return c->listeners[c->nlisteners - 1].name;
    case S_LAST_LISTEN_ADDRESS:
        return c->listeners[c->nlisteners - 1].address;
    case S_DOMAIN_FIRST:
        return c->ndomains ? c->domains[0] : NULL;
    case S_DOMAIN_LAST:
        return c->ndomains ? c->domains[c->ndomains - 1] : NULL;
    default:
        fail_msg("field %d is not a string", f);
        return NULL;
    }
}

static struct config *parse_ok(const char *text, size_t len)
{
    struct conf_errors errs;
    struct config *c = conf_parse(text, len, &errs);

    if (c == NULL) {
        for (size_t i = 0; i < errs.n; i++)
            print_error("line %u: %s\n", errs.e[i].line, errs.e[i].msg);
        fail_msg("unexpected errors in: %s", text);
    }
    assert_int_equal(errs.n, 0);
    return c;
}

/* ---- defaults ---------------------------------------------------------------------------- */

static const struct {
    enum field f;
    uint64_t want;
} default_rows[] = {
    {F_WORKERS, 0},
    {F_SELF_SIGNED, 0},
    {F_BARE, CONF_BARE_REJECT},
    {F_MESSAGE_SIZE, 35 * M},
    {F_RECIPIENTS, 1000},
    {F_MESSAGES, 100},
    {F_COMMAND_LINE, 512},
    {F_DATA_LINE, 1000},
    {F_HEADER_SIZE, 256 * K},
    {F_RECEIVED, 50},
    {F_SESSIONS, 1000},
    {F_SESSIONS_PER_IP, 50},
    {F_ERRORS, 20},
    {F_JUNK, 100},
    {F_CONNECTION_RATE, 0},
    {F_TLS_RATE, 0},
    {F_SPOOL_MIN_FREE, 0},
    {F_GREETING_DELAY, 0},
    {F_COMMAND, 5 * MIN},
    {F_COMMAND_DEADLINE, 1 * MIN},
    {F_DATA_BLOCK, 3 * MIN},
    {F_DATA_DEADLINE, 10 * MIN},
    {F_TLS_HANDSHAKE, 30 * SEC},
    {F_WRITE, 2 * MIN},
    {F_LISTEN_TLS, CONF_TLS_NONE},
    {F_LISTEN_AUTH, CONF_AUTH_NONE},
    {F_NLISTENERS, 1},
    {F_NDOMAINS, 0},
};

static void test_defaults(void **state)
{
    (void)state;
    struct config *c = parse_ok(LISTENER, strlen(LISTENER));

    for (size_t i = 0; i < sizeof default_rows / sizeof default_rows[0]; i++) {
        if (get_num(c, default_rows[i].f) != default_rows[i].want)
            fail_msg("default row %zu: got %llu want %llu", i,
                     (unsigned long long)get_num(c, default_rows[i].f),
                     (unsigned long long)default_rows[i].want);
    }
    /* NULL hostname: conf_load asks gethostname(); the parser does no I/O. */
    assert_null(c->hostname);
    assert_string_equal(c->spool, "/var/spool/sluice");
    assert_null(c->user);
    assert_null(c->tls_certificate);
    assert_null(c->tls_key);
    assert_null(c->mailboxes_file);
    assert_null(c->aliases_file);
    assert_null(c->domains);
    conf_free(c);
}

/* ---- every directive, good values --------------------------------------------------------- */

static const struct {
    const char *text; /* appended after LISTENER */
    enum field f;
    uint64_t want;
} num_rows[] = {
    {"workers auto", F_WORKERS, 0},
    {"workers AUTO", F_WORKERS, 0},
    {"workers 0", F_WORKERS, 0},
    {"workers 4", F_WORKERS, 4},
    {"workers 1024", F_WORKERS, 1024},
    {"bare-newlines reject", F_BARE, CONF_BARE_REJECT},
    {"bare-newlines normalise", F_BARE, CONF_BARE_NORMALISE},
    {"tls { certificate /c; key /k; self-signed yes }", F_SELF_SIGNED, 1},
    {"tls { certificate /c; key /k; self-signed on }", F_SELF_SIGNED, 1},
    {"tls { certificate /c; key /k; self-signed true }", F_SELF_SIGNED, 1},
    {"tls { certificate /c; key /k; self-signed Yes }", F_SELF_SIGNED, 1},
    {"tls { certificate /c; key /k; self-signed no }", F_SELF_SIGNED, 0},
    {"tls { certificate /c; key /k; self-signed off }", F_SELF_SIGNED, 0},
    {"tls { certificate /c; key /k; self-signed false }", F_SELF_SIGNED, 0},
    /* sizes: K/M/G are 1024-based, a plain number is bytes */
    {"limits { message-size 25M }", F_MESSAGE_SIZE, 25 * M},
    {"limits { message-size 25m }", F_MESSAGE_SIZE, 25 * M},
    {"limits { message-size 1K }", F_MESSAGE_SIZE, 1 * K},
    {"limits { message-size 1024 }", F_MESSAGE_SIZE, 1024},
    {"limits { message-size 4G }", F_MESSAGE_SIZE, 4 * G},
    {"limits { message-size 2g }", F_MESSAGE_SIZE, 2 * G},
    {"limits { message-size 100k }", F_MESSAGE_SIZE, 100 * K},
    {"limits { recipients 1 }", F_RECIPIENTS, 1},
    {"limits { recipients 10000000 }", F_RECIPIENTS, 10000000},
    {"limits { messages 7 }", F_MESSAGES, 7},
    /* RFC 5321 §4.5.3.1.4: 512 is the floor for a command line */
    {"limits { command-line 512 }", F_COMMAND_LINE, 512},
    {"limits { command-line 12K }", F_COMMAND_LINE, 12 * K},
    {"limits { command-line 64K }", F_COMMAND_LINE, 64 * K},
    /* RFC 5321 §4.5.3.1.6: 1000 is the floor for a text line */
    {"limits { data-line 1000 }", F_DATA_LINE, 1000},
    {"limits { data-line 1M }", F_DATA_LINE, 1 * M},
    {"limits { header-size 1M }", F_HEADER_SIZE, 1 * M},
    {"limits { received 100 }", F_RECEIVED, 100},
    {"limits { sessions 5000 }", F_SESSIONS, 5000},
    {"limits { sessions-per-ip 3 }", F_SESSIONS_PER_IP, 3},
    {"limits { errors 5 }", F_ERRORS, 5},
    {"limits { junk 0100 }", F_JUNK, 100},
    {"limits { connection-rate 60 }", F_CONNECTION_RATE, 60},
    {"limits { connection-rate 0 }", F_CONNECTION_RATE, 0},
    {"limits { tls-rate 30 }", F_TLS_RATE, 30},
    {"limits { spool-min-free 100M }", F_SPOOL_MIN_FREE, 100 * M},
    /* durations: ms, s, m, h, d; a plain number is seconds */
    {"timeouts { greeting-delay 0 }", F_GREETING_DELAY, 0},
    {"timeouts { greeting-delay 6s }", F_GREETING_DELAY, 6 * SEC},
    {"timeouts { greeting-delay 1m }", F_GREETING_DELAY, 1 * MIN},
    {"timeouts { command 5m }", F_COMMAND, 5 * MIN},
    {"timeouts { command 300 }", F_COMMAND, 300 * SEC},
    {"timeouts { command 250ms }", F_COMMAND, 250},
    {"timeouts { command 100ms }", F_COMMAND, 100},
    {"timeouts { command 1h }", F_COMMAND, 1 * HOUR},
    {"timeouts { command 1d }", F_COMMAND, 1 * DAY},
    {"timeouts { command 24h }", F_COMMAND, 1 * DAY},
    {"timeouts { command-deadline 90s }", F_COMMAND_DEADLINE, 90 * SEC},
    {"timeouts { data-block 2m }", F_DATA_BLOCK, 2 * MIN},
    {"timeouts { data-deadline 1h }", F_DATA_DEADLINE, 1 * HOUR},
    {"timeouts { tls-handshake 10s }", F_TLS_HANDSHAKE, 10 * SEC},
    {"timeouts { write 45s }", F_WRITE, 45 * SEC},
    {"limits { recipients 5; messages 6 }\ntimeouts { write 1s\ncommand 2s }", F_MESSAGES, 6},
    {"limits { recipients 5; messages 6 }\ntimeouts { write 1s\ncommand 2s }", F_COMMAND, 2 * SEC},
    {"listen b { address 127.0.0.1:26 }", F_NLISTENERS, 2},
    {"domain example.org\ndomain example.net", F_NDOMAINS, 2},
    {"domain example.org { }", F_NDOMAINS, 1},
    {"domain example.org {\n}", F_NDOMAINS, 1},
    {"domain example.org\n{\n}\n", F_NDOMAINS, 1},
};

static void test_directive_numbers(void **state)
{
    (void)state;
    char text[512];

    for (size_t i = 0; i < sizeof num_rows / sizeof num_rows[0]; i++) {
        int n = snprintf(text, sizeof text, "%s%s\n", LISTENER, num_rows[i].text);
        assert_true(n > 0 && (size_t)n < sizeof text);
        struct config *c = parse_ok(text, (size_t)n);
        if (get_num(c, num_rows[i].f) != num_rows[i].want)
            fail_msg("'%s': got %llu want %llu", num_rows[i].text,
                     (unsigned long long)get_num(c, num_rows[i].f),
                     (unsigned long long)num_rows[i].want);
        conf_free(c);
    }
}

static const struct {
    const char *text; /* a whole configuration */
    enum field f;
    uint64_t want;
} listen_rows[] = {
    {"listen a { address 127.0.0.1:25; tls none }", F_LISTEN_TLS, CONF_TLS_NONE},
    {TLS_BLOCK "listen a { address 127.0.0.1:25; tls starttls }", F_LISTEN_TLS, CONF_TLS_STARTTLS},
    {TLS_BLOCK "listen a { address 127.0.0.1:25; tls STARTTLS }", F_LISTEN_TLS, CONF_TLS_STARTTLS},
    {TLS_BLOCK "listen a { address 127.0.0.1:25; tls required }", F_LISTEN_TLS, CONF_TLS_REQUIRED},
    {TLS_BLOCK "listen a { address 127.0.0.1:25; tls implicit }", F_LISTEN_TLS, CONF_TLS_IMPLICIT},
    /* the tls block may come after the listener that needs it */
    {"listen a { address 127.0.0.1:25; tls implicit }\n" TLS_BLOCK, F_LISTEN_TLS,
     CONF_TLS_IMPLICIT},
    {"listen a { address 127.0.0.1:25; auth none }", F_LISTEN_AUTH, CONF_AUTH_NONE},
    {"listen a { address 127.0.0.1:25; auth optional }", F_LISTEN_AUTH, CONF_AUTH_OPTIONAL},
    {"listen a { address 127.0.0.1:25; auth required }", F_LISTEN_AUTH, CONF_AUTH_REQUIRED},
    {"listen a {\n  address 127.0.0.1:25\n  auth required\n}\n", F_LISTEN_AUTH, CONF_AUTH_REQUIRED},
    {"listen a\n{\n  address 127.0.0.1:25; auth optional\n}", F_LISTEN_AUTH, CONF_AUTH_OPTIONAL},
};

static void test_listen_modes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof listen_rows / sizeof listen_rows[0]; i++) {
        struct config *c = parse_ok(listen_rows[i].text, strlen(listen_rows[i].text));
        if (get_num(c, listen_rows[i].f) != listen_rows[i].want)
            fail_msg("'%s': got %llu want %llu", listen_rows[i].text,
                     (unsigned long long)get_num(c, listen_rows[i].f),
                     (unsigned long long)listen_rows[i].want);
        conf_free(c);
    }
}

static const struct {
    const char *text; /* a whole configuration */
    enum field f;
    const char *want;
} str_rows[] = {
    {LISTENER "hostname mx.example.org", S_HOSTNAME, "mx.example.org"},
    {LISTENER "hostname MX.Example.ORG", S_HOSTNAME, "MX.Example.ORG"},
    {LISTENER "hostname localhost", S_HOSTNAME, "localhost"},
    {LISTENER "hostname \"mx.example.org\"", S_HOSTNAME, "mx.example.org"},
    {LISTENER "spool /var/spool/other", S_SPOOL, "/var/spool/other"},
    {LISTENER "spool ./var/spool", S_SPOOL, "./var/spool"},
    {LISTENER "spool \"/with space/and#hash\"", S_SPOOL, "/with space/and#hash"},
    {LISTENER "spool \"a\\\"b\\\\c\"", S_SPOOL, "a\"b\\c"},
    {LISTENER "spool /x # a comment", S_SPOOL, "/x"},
    {LISTENER "spool /x# a comment glued to the value", S_SPOOL, "/x"},
    {LISTENER "spool /utf8/\xc3\xa9t\xc3\xa9", S_SPOOL, "/utf8/\xc3\xa9t\xc3\xa9"},
    {LISTENER "user sluice", S_USER, "sluice"},
    {LISTENER "user _mail.x-1", S_USER, "_mail.x-1"},
    {LISTENER "tls { certificate /etc/c.pem; key /etc/k.pem }", S_CERTIFICATE, "/etc/c.pem"},
    {LISTENER "tls { certificate /etc/c.pem; key /etc/k.pem }", S_KEY, "/etc/k.pem"},
    {LISTENER "directory { mailboxes /etc/mb }", S_MAILBOXES, "/etc/mb"},
    {LISTENER "directory { aliases /etc/al }", S_ALIASES, "/etc/al"},
    {LISTENER "directory {\n mailboxes /m\n aliases /a\n}", S_ALIASES, "/a"},
    {"listen smtp { address 0.0.0.0:25 }", S_LISTEN_NAME, "smtp"},
    {"listen smtp { address 0.0.0.0:25 }", S_LISTEN_ADDRESS, "0.0.0.0:25"},
    {"listen smtp { address [::1]:25 }", S_LISTEN_ADDRESS, "[::1]:25"},
    {"listen smtp { address [::]:587 }", S_LISTEN_ADDRESS, "[::]:587"},
    {"listen smtp { address *:25 }", S_LISTEN_ADDRESS, "*:25"},
    {"listen smtp { address 127.0.0.1:65535 }", S_LISTEN_ADDRESS, "127.0.0.1:65535"},
    {"listen \"sub-mission_2.x\" { address 127.0.0.1:1 }", S_LISTEN_NAME, "sub-mission_2.x"},
    {"listen a { address 127.0.0.1:1 }\nlisten b { address 127.0.0.1:2 }", S_LAST_LISTEN_NAME, "b"},
    {"listen a { address 127.0.0.1:1 }\nlisten b { address 127.0.0.1:2 }", S_LAST_LISTEN_ADDRESS,
     "127.0.0.1:2"},
    /* domains are lower-cased */
    {LISTENER "domain Example.ORG", S_DOMAIN_FIRST, "example.org"},
    {LISTENER "domain a.example\ndomain b.example", S_DOMAIN_LAST, "b.example"},
    {LISTENER "domain localhost", S_DOMAIN_FIRST, "localhost"},
    /* ';' and newlines both end statements; CRLF files are fine */
    {"listen a { address 127.0.0.1:25 }; hostname x.example; spool /s", S_SPOOL, "/s"},
    {"listen a { address 127.0.0.1:25 }\r\nhostname x.example\r\nspool /s\r\n", S_SPOOL, "/s"},
    {"\n\n# only comments\n   \n" LISTENER "\t spool\t/tab\t\n", S_SPOOL, "/tab"},
    {"listen a { address 127.0.0.1:25 } spool /after-brace", S_SPOOL, "/after-brace"},
};

static void test_directive_strings(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof str_rows / sizeof str_rows[0]; i++) {
        struct config *c = parse_ok(str_rows[i].text, strlen(str_rows[i].text));
        const char *got = get_str(c, str_rows[i].f);
        if (got == NULL || strcmp(got, str_rows[i].want) != 0)
            fail_msg("'%s': got '%s' want '%s'", str_rows[i].text, got ? got : "(null)",
                     str_rows[i].want);
        conf_free(c);
    }
}

/* ---- errors, each with the line it must name ---------------------------------------------- */

static const struct {
    const char *name;
    const char *text;
    size_t len;      /* 0: strlen(text) */
    unsigned line;   /* of the first error */
    const char *msg; /* a substring of the first error */
    size_t n;        /* errors expected in all */
} err_rows[] = {
    /* unknown names */
    {"unknown directive", LISTENER "hostnme x\n", 0, 2, "unknown directive 'hostnme'", 1},
    {"unknown directive in block", LISTENER "limits {\n  recipient 5\n}\n", 0, 3,
     "unknown directive 'recipient' in 'limits' block", 1},
    {"unknown block is skipped whole", LISTENER "stage rcpt {\n max 1\n inner { x }\n}\n", 0, 2,
     "unknown directive 'stage'", 1},
    {"listen directive unknown in listen", "listen a { address 127.0.0.1:1; port 25 }\n", 0, 1,
     "unknown directive 'port' in 'listen' block", 1},
    {"domain block takes nothing yet", LISTENER "domain a.example {\n deliver x\n}\n", 0, 3,
     "unknown directive 'deliver' in 'domain' block", 1},
    {"error message hides non-ASCII bytes", LISTENER "\xc3\xa9x 1\n", 0, 2,
     "unknown directive '??x'", 1},
    /* arity */
    {"missing value", LISTENER "hostname\n", 0, 2, "'hostname' needs a value", 1},
    {"missing value before ';'", LISTENER "spool;\n", 0, 2, "'spool' needs a value", 1},
    {"missing value before '}'", LISTENER "limits { recipients }\n", 0, 2,
     "'recipients' needs a value", 1},
    {"missing value at end of input", LISTENER "workers", 0, 2, "'workers' needs a value", 1},
    {"two values", LISTENER "hostname a.example b.example\n", 0, 2, "takes one value", 1},
    {"many values", LISTENER "spool a b c d e f g h\n", 0, 2, "takes one value, not 8", 1},
    {"value takes no block", LISTENER "hostname x {\n y z\n}\n", 0, 2,
     "'hostname' does not take a block", 1},
    {"block without block", LISTENER "limits\n", 0, 2, "'limits' needs a block", 1},
    {"block with a value", LISTENER "limits x { recipients 1 }\n", 0, 2, "'limits' takes no value",
     1},
    {"block opened without a name", LISTENER "{ hostname x }\n", 0, 2,
     "'{' without a directive name", 1},
    {"stray close brace", LISTENER "}\n", 0, 2, "'}' without an open block", 1},
    {"brace on next line after a value", LISTENER "spool /x\n{\n}\n", 0, 2,
     "'spool' does not take a block", 1},
    /* sizes */
    {"bad size suffix", LISTENER "limits { message-size 10X }\n", 0, 2,
     "'message-size' must be a size", 1},
    {"bad size word", LISTENER "limits { message-size big }\n", 0, 2, "must be a size", 1},
    {"negative size", LISTENER "limits { message-size -1 }\n", 0, 2, "must be a size", 1},
    {"fractional size", LISTENER "limits { message-size 1.5M }\n", 0, 2, "must be a size", 1},
    {"size with two suffixes", LISTENER "limits { message-size 1MK }\n", 0, 2, "must be a size", 1},
    {"size with space before unit", LISTENER "limits { message-size 10 M }\n", 0, 2,
     "takes one value", 1},
    {"empty quoted size", LISTENER "limits { header-size \"\" }\n", 0, 2, "must be a size", 1},
    {"size unit is not a duration", LISTENER "limits { header-size 5ms }\n", 0, 2, "must be a size",
     1},
    /* durations */
    {"bad duration unit", LISTENER "timeouts { command 5x }\n", 0, 2,
     "'command' must be a duration", 1},
    {"duration in capitals", LISTENER "timeouts { command 5M }\n", 0, 2, "must be a duration", 1},
    {"duration word", LISTENER "timeouts { write never }\n", 0, 2, "must be a duration", 1},
    {"negative duration", LISTENER "timeouts { write -5s }\n", 0, 2, "must be a duration", 1},
    {"plus sign", LISTENER "timeouts { write +5s }\n", 0, 2, "must be a duration", 1},
    {"compound duration", LISTENER "timeouts { write 1m30s }\n", 0, 2, "must be a duration", 1},
    /* counts */
    {"count with a unit", LISTENER "limits { recipients 10K }\n", 0, 2,
     "'recipients' must be a number", 1},
    {"count word", LISTENER "limits { junk lots }\n", 0, 2, "must be a number", 1},
    {"workers word", LISTENER "workers many\n", 0, 2, "must be a number or auto", 1},
    /* overflow */
    {"size overflows 64 bits", LISTENER "limits { message-size 99999999999999999999999 }\n", 0, 2,
     "out of range", 1},
    {"size overflows when scaled", LISTENER "limits { message-size 18014398509481984G }\n", 0, 2,
     "out of range", 1},
    {"count overflows unsigned", LISTENER "limits { recipients 4294967296 }\n", 0, 2,
     "out of range", 1},
    {"duration overflows unsigned ms", LISTENER "timeouts { command 4294967296ms }\n", 0, 2,
     "out of range", 1},
    {"duration overflows 64 bits", LISTENER "timeouts { command 99999999999999999999d }\n", 0, 2,
     "out of range", 1},
    {"duration overflows when scaled", LISTENER "timeouts { command 213503982335d }\n", 0, 2,
     "out of range", 1},
    /* ranges */
    {"command-line below 512 (RFC 5321 §4.5.3.1.4)", LISTENER "limits { command-line 511 }\n", 0, 2,
     "'command-line' 511 is out of range (512 to 64K)", 1},
    {"command-line absurd", LISTENER "limits { command-line 1M }\n", 0, 2, "out of range", 1},
    {"connection-rate absurd", LISTENER "limits { connection-rate 20000000 }\n", 0, 2,
     "out of range", 1},
    {"spool-min-free negative", LISTENER "limits { spool-min-free -1 }\n", 0, 2, "", 1},
    {"data-line below 1000 (RFC 5321 §4.5.3.1.6)", LISTENER "limits { data-line 999 }\n", 0, 2,
     "'data-line' 999 is out of range (1000 to 1M)", 1},
    {"recipients zero", LISTENER "limits { recipients 0 }\n", 0, 2, "out of range (1 to", 1},
    {"recipients absurd", LISTENER "limits { recipients 10000001 }\n", 0, 2,
     "out of range (1 to 10000000)", 1},
    {"message-size below 1K", LISTENER "limits { message-size 1023 }\n", 0, 2,
     "out of range (1K to 4G)", 1},
    {"message-size absurd", LISTENER "limits { message-size 5G }\n", 0, 2, "out of range", 1},
    {"header-size absurd", LISTENER "limits { header-size 1G }\n", 0, 2, "out of range", 1},
    {"received zero", LISTENER "limits { received 0 }\n", 0, 2, "out of range", 1},
    {"received absurd", LISTENER "limits { received 1001 }\n", 0, 2, "out of range", 1},
    {"messages zero", LISTENER "limits { messages 0 }\n", 0, 2, "out of range", 1},
    {"sessions zero", LISTENER "limits { sessions 0 }\n", 0, 2, "out of range", 1},
    {"sessions-per-ip absurd", LISTENER "limits { sessions-per-ip 20000000 }\n", 0, 2,
     "out of range", 1},
    {"errors zero", LISTENER "limits { errors 0 }\n", 0, 2, "out of range", 1},
    {"junk zero", LISTENER "limits { junk 0 }\n", 0, 2, "out of range", 1},
    {"command timeout zero", LISTENER "timeouts { command 0 }\n", 0, 2,
     "out of range (100ms to 1d)", 1},
    {"command timeout over a day", LISTENER "timeouts { command 25h }\n", 0, 2, "out of range", 1},
    {"data-deadline over a day", LISTENER "timeouts { data-deadline 2d }\n", 0, 2, "out of range",
     1},
    {"write timeout too small", LISTENER "timeouts { write 99ms }\n", 0, 2, "out of range", 1},
    {"greeting-delay over a minute (RFC 5321 §4.5.3.2.1)",
     LISTENER "timeouts { greeting-delay 61s }\n", 0, 2, "out of range (0 to 1m)", 1},
    {"workers absurd", LISTENER "workers 1025\n", 0, 2, "out of range (0 to 1024)", 1},
    /* keywords */
    {"bad tls mode", TLS_BLOCK "listen a { address 127.0.0.1:25; tls maybe }\n", 0, 2,
     "'tls' must be one of none, starttls, required, implicit, not 'maybe'", 1},
    {"bad auth mode", LISTENER "listen b { address 127.0.0.1:2; auth yes }\n", 0, 2,
     "'auth' must be one of none, optional, required", 1},
    {"bad boolean", LISTENER "tls { certificate /c; key /k; self-signed perhaps }\n", 0, 2,
     "'self-signed' must be one of yes, no, on, off, true, false", 1},
    {"bad bare-newlines", LISTENER "bare-newlines accept\n", 0, 2,
     "must be one of reject, normalise", 1},
    /* duplicates */
    {"duplicate singleton", LISTENER "hostname a.example\nhostname b.example\n", 0, 3,
     "'hostname' given twice (first on line 2)", 1},
    {"duplicate block", LISTENER "limits { junk 1 }\nlimits {\n junk 2\n}\n", 0, 3,
     "'limits' given twice (first on line 2)", 1},
    {"duplicate inside a block", LISTENER "tls {\n certificate /a\n key /k\n certificate /b\n}\n",
     0, 5, "'certificate' given twice (first on line 3)", 1},
    {"duplicate inside a listener", "listen a {\n address 127.0.0.1:1\n address 127.0.0.1:2\n}\n",
     0, 3, "'address' given twice", 1},
    {"duplicate listener name", LISTENER "listen a { address 127.0.0.1:26 }\n", 0, 2,
     "listener 'a' defined twice", 1},
    {"duplicate listener address", LISTENER "listen b {\n address 127.0.0.1:25\n}\n", 0, 3,
     "address 127.0.0.1:25 is already used by 'a'", 1},
    {"duplicate domain, any case", LISTENER "domain a.example\ndomain A.Example\n", 0, 3,
     "domain 'a.example' listed twice", 1},
    /* unterminated things */
    {"unterminated block", LISTENER "limits {\n recipients 5\n", 0, 2,
     "'limits' block opened here is not closed", 1},
    {"unterminated listener", "listen a {\n address 127.0.0.1:25\n", 0, 1,
     "'listen' block opened here is not closed", 1},
    {"unterminated unknown block", LISTENER "\nfoo {\n { }\n", 0, 3, "unknown directive 'foo'", 2},
    {"unterminated string", LISTENER "spool \"/var/spool\n", 0, 2, "unterminated string", 1},
    {"unterminated string at end", LISTENER "spool \"/var", 0, 2, "unterminated string", 1},
    {"unterminated string ending in backslash", LISTENER "spool \"/var\\\n", 0, 2,
     "unterminated string", 1},
    {"bad escape", LISTENER "spool \"a\\nb\"\n", 0, 2, "bad escape", 1},
    /* bytes that are never part of a configuration */
    {"NUL byte", LISTENER "spool /a\0b\n", sizeof(LISTENER "spool /a\0b\n") - 1, 2,
     "control character 0x00", 1},
    {"NUL byte in a string", LISTENER "spool \"/a\0b\"\n", sizeof(LISTENER "spool \"/a\0b\"\n") - 1,
     2, "control character 0x00", 1},
    {"escape byte", LISTENER "hostname a\x1b[31m\n", 0, 2, "control character 0x1b", 1},
    {"DEL byte", LISTENER "spool /a\x7f\n", 0, 2, "control character 0x7f", 1},
    {"CR inside a string", LISTENER "spool \"a\rb\"\n", 0, 2, "control character 0x0d", 1},
    /* nesting */
    {"nesting deeper than 4", LISTENER "a {\n b {\n  c {\n   d {\n    e { }\n   }\n  }\n }\n}\n", 0,
     2, "unknown directive 'a'", 2},
    {"nesting of 4 is only unknown", LISTENER "a { b { c { d { } } } }\n", 0, 2,
     "unknown directive 'a'", 1},
    /* listeners */
    {"no listener at all", "hostname a.example\n", 0, 1, "no listener", 1},
    {"no listener, error on the last line", "hostname a.example\n\n# end\n", 0, 3, "no listener",
     1},
    {"empty file", "", 0, 1, "no listener", 1},
    {"listener without address", "listen smtp {\n  tls none\n}\n", 0, 1,
     "listener 'smtp' has no address", 1},
    {"listener with empty block", "listen smtp { }\n", 0, 1, "has no address", 1},
    {"listener without block", LISTENER "listen b\n", 0, 2, "'listen' needs a block", 1},
    {"listener without name", LISTENER "listen { address 127.0.0.1:2 }\n", 0, 2,
     "'listen' takes one name", 1},
    {"listener with two names", LISTENER "listen b c { address 127.0.0.1:2 }\n", 0, 2,
     "'listen' takes one name", 1},
    {"listener with a bad name", LISTENER "listen b/c { address 127.0.0.1:2 }\n", 0, 2,
     "listener name 'b/c'", 1},
    {"address without port", "listen a { address 127.0.0.1 }\n", 0, 1, "'address' must be", 2},
    {"address port zero", "listen a { address 127.0.0.1:0 }\n", 0, 1, "'address' must be", 2},
    {"address port too big", "listen a { address 127.0.0.1:65536 }\n", 0, 1, "'address' must be",
     2},
    {"address port too long", "listen a { address 127.0.0.1:000025 }\n", 0, 1, "'address' must be",
     2},
    {"address port not a number", "listen a { address 127.0.0.1:smtp }\n", 0, 1,
     "'address' must be", 2},
    {"address by host name", "listen a { address localhost:25 }\n", 0, 1, "'address' must be", 2},
    {"address short IPv4", "listen a { address 127.1:25 }\n", 0, 1, "'address' must be", 2},
    {"address bare IPv6", "listen a { address ::1:25 }\n", 0, 1, "'address' must be", 2},
    {"address IPv6 without colon", "listen a { address [::1]25 }\n", 0, 1, "'address' must be", 2},
    {"address bad IPv6", "listen a { address [zz::1]:25 }\n", 0, 1, "'address' must be", 2},
    {"address no host", "listen a { address :25 }\n", 0, 1, "'address' must be", 2},
    {"address empty brackets", "listen a { address []:25 }\n", 0, 1, "'address' must be", 2},
    {"listener TLS without tls block", "listen a {\n address 127.0.0.1:25\n tls starttls\n}\n", 0,
     3, "listener 'a' uses TLS but there is no tls", 1},
    /* tls block */
    {"tls certificate without key", LISTENER "tls {\n certificate /c\n}\n", 0, 2,
     "certificate but no key", 1},
    {"tls key without certificate", LISTENER "tls { key /k }\n", 0, 2, "key but no certificate", 1},
    {"tls self-signed without paths", LISTENER "tls { self-signed yes }\n", 0, 2,
     "self-signed needs", 1},
    {"empty path", LISTENER "spool \"\"\n", 0, 2, "'spool' must not be empty", 1},
    /* names */
    {"hostname with underscore", LISTENER "hostname a_b.example\n", 0, 2, "not a valid host name",
     1},
    {"hostname with empty label", LISTENER "hostname a..example\n", 0, 2, "not a valid host name",
     1},
    {"hostname with leading hyphen", LISTENER "hostname -a.example\n", 0, 2,
     "not a valid host name", 1},
    {"hostname with trailing dot", LISTENER "hostname a.example.\n", 0, 2, "not a valid host name",
     1},
    {"hostname label of 64",
     LISTENER "hostname aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example\n",
     0, 2, "not a valid host name", 1},
    {"domain with a slash", LISTENER "domain a/b\n", 0, 2, "not a valid domain name", 1},
    {"domain without a name", LISTENER "domain\n", 0, 2, "'domain' takes one name", 1},
    {"user with a slash", LISTENER "user a/b\n", 0, 2, "not a valid user name", 1},
    {"user with a leading dash", LISTENER "user -a\n", 0, 2, "not a valid user name", 1},
    /* recovery: each error names its own line and parsing goes on */
    {"several errors, several lines",
     "hostname\nlisten a {\n address nowhere\n}\nlimits { recipients 0 }\nbogus 1\n", 0, 1,
     "'hostname' needs a value", 5},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof err_rows / sizeof err_rows[0]; i++) {
        struct conf_errors errs;
        size_t len = err_rows[i].len ? err_rows[i].len : strlen(err_rows[i].text);
        struct config *c = conf_parse(err_rows[i].text, len, &errs);
        if (c != NULL)
            fail_msg("%s: parsed without error", err_rows[i].name);
        if (errs.n == 0)
            fail_msg("%s: NULL but no error", err_rows[i].name);
        if (errs.e[0].line != err_rows[i].line || strstr(errs.e[0].msg, err_rows[i].msg) == NULL ||
            errs.n != err_rows[i].n) {
            for (size_t j = 0; j < errs.n; j++)
                print_error("  line %u: %s\n", errs.e[j].line, errs.e[j].msg);
            fail_msg("%s: want %zu errors, first line %u '%s'", err_rows[i].name, err_rows[i].n,
                     err_rows[i].line, err_rows[i].msg);
        }
    }
}

/* Each error in a multi-error file names its own line, in the order found. */
static void test_errors_all_lines(void **state)
{
    (void)state;
    static const char text[] = "hostname\n"
                               "listen a {\n"
                               " address nowhere\n"
                               "}\n"
                               "limits { recipients 0 }\n"
                               "bogus 1\n";
    static const unsigned want[] = {1, 3, 2, 5, 6}; /* 2: the listener has no address */
    struct conf_errors errs;

    assert_null(conf_parse(text, sizeof text - 1, &errs));
    assert_int_equal(errs.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < errs.n; i++)
        assert_int_equal(errs.e[i].line, want[i]);
}

static void test_errors_capped(void **state)
{
    (void)state;
    char text[2048];
    size_t n = 0;
    struct conf_errors errs;

    for (int i = 0; i < 40; i++) {
        int w = snprintf(text + n, sizeof text - n, "bogus%d 1\n", i);
        assert_true(w > 0 && (size_t)w < sizeof text - n);
        n += (size_t)w;
    }
    assert_null(conf_parse(text, n, &errs));
    assert_int_equal(errs.n, CONF_ERRORS_MAX);
    assert_int_equal(errs.e[0].line, 1);
    assert_int_equal(errs.e[CONF_ERRORS_MAX - 2].line, CONF_ERRORS_MAX - 1);
    assert_string_equal(errs.e[CONF_ERRORS_MAX - 1].msg, "too many errors, stopping here");
    assert_int_equal(errs.e[CONF_ERRORS_MAX - 1].line, CONF_ERRORS_MAX);
}

/* ---- input bounds ------------------------------------------------------------------------- */

static char *make_text(const char *head, char fill, size_t nfill, const char *tail, size_t *len)
{
    size_t hl = strlen(head), tl = strlen(tail);
    char *t = malloc(hl + nfill + tl + 1);

    assert_non_null(t);
    memcpy(t, head, hl);
    memset(t + hl, fill, nfill);
    memcpy(t + hl + nfill, tail, tl + 1);
    *len = hl + nfill + tl;
    return t;
}

static void test_token_limit(void **state)
{
    (void)state;
    struct conf_errors errs;
    size_t len;
    struct config *c;
    char *t;

    /* a word of exactly CONF_TOKEN_MAX bytes is fine */
    t = make_text(LISTENER "spool /", 'a', CONF_TOKEN_MAX - 1, "\n", &len);
    c = conf_parse(t, len, &errs);
    assert_non_null(c);
    assert_int_equal(strlen(c->spool), CONF_TOKEN_MAX);
    conf_free(c);
    free(t);

    /* one more is refused, bare or quoted, and the error names the line */
    t = make_text(LISTENER "spool /", 'a', CONF_TOKEN_MAX, "\nhostname x\n", &len);
    assert_null(conf_parse(t, len, &errs));
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.e[0].line, 2);
    assert_non_null(strstr(errs.e[0].msg, "longer than 4096"));
    free(t);

    t = make_text(LISTENER "spool \"/", 'a', 3 * CONF_TOKEN_MAX, "\"\n", &len);
    assert_null(conf_parse(t, len, &errs));
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.e[0].line, 2);
    free(t);
}

static void test_file_limit(void **state)
{
    (void)state;
    struct conf_errors errs;
    size_t len;
    struct config *c;
    char *t;

    /* exactly CONF_FILE_MAX: comments padding a valid file */
    t = make_text(LISTENER "#", 'x', CONF_FILE_MAX - strlen(LISTENER "#") - 1, "\n", &len);
    assert_int_equal(len, CONF_FILE_MAX);
    c = conf_parse(t, len, &errs);
    assert_non_null(c);
    conf_free(c);
    free(t);

    t = make_text(LISTENER "#", 'x', CONF_FILE_MAX - strlen(LISTENER "#"), "\n", &len);
    assert_int_equal(len, CONF_FILE_MAX + 1);
    assert_null(conf_parse(t, len, &errs));
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.e[0].line, 0);
    assert_non_null(strstr(errs.e[0].msg, "larger than"));
    free(t);
}

static void test_many_domains_and_listeners(void **state)
{
    (void)state;
    size_t cap = 32768, n = 0;
    char *t = malloc(cap);
    struct conf_errors errs;
    struct config *c;

    assert_non_null(t);
    for (int i = 0; i < CONF_LISTENERS_MAX; i++)
        n += (size_t)snprintf(t + n, cap - n, "listen l%d { address 127.0.0.1:%d }\n", i, i + 1);
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(t + n, cap - n, "domain d%d.example\n", i);
    c = conf_parse(t, n, &errs);
    assert_non_null(c);
    assert_int_equal(c->nlisteners, CONF_LISTENERS_MAX);
    assert_int_equal(c->ndomains, 100);
    assert_string_equal(c->domains[99], "d99.example");
    conf_free(c);

    n += (size_t)snprintf(t + n, cap - n, "listen extra { address 127.0.0.1:9999 }\n");
    assert_null(conf_parse(t, n, &errs));
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.e[0].line, CONF_LISTENERS_MAX + 101);
    assert_non_null(strstr(errs.e[0].msg, "more than 64 listeners"));
    free(t);
}

static void test_null_arguments(void **state)
{
    (void)state;
    struct conf_errors errs;

    assert_null(conf_parse(NULL, 0, &errs));
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.e[0].msg, "no listener"));
    assert_null(conf_parse("x", 1, NULL));
    struct config *c = conf_parse(LISTENER, strlen(LISTENER), NULL);
    assert_non_null(c);
    conf_free(c);
    conf_free(NULL);
}

/* ---- issue #4: directory, trusted networks, auth, listener options ----------------------- */

static void test_auth_directives(void **state)
{
    (void)state;
    struct conf_errors errs;
    static const char text[] =
        "listen submission { address 127.0.0.1:2587; auth required; vrfy yes; expn yes;"
        " hide-client yes }\n"
        "directory { sqlite /var/lib/sluice/dir.db; subaddress-separator - }\n"
        "trusted-networks 10.0.0.0/8 ::1 192.168.1.0/24\n"
        "trusted-networks 2001:db8::/32\n"
        "auth { plaintext-loopback yes; failure-delay 250ms; session-failures 2; ip-failures 5\n"
        "  token-issuer https://id.test; token-audience smtp; token-claim sub\n"
        "  token-key hs256 /etc/k1; token-key RS256 /etc/k2.pem main\n"
        "  external subject; client-ca /etc/ca.pem }\n";
    struct config *c = conf_parse(text, strlen(text), &errs);
    assert_non_null(c);
    assert_true(c->listeners[0].vrfy && c->listeners[0].expn && c->listeners[0].hide_client);
    assert_string_equal(c->directory_sqlite, "/var/lib/sluice/dir.db");
    assert_int_equal(c->subaddress_separator, '-');
    assert_int_equal(c->ntrusted, 4);
    assert_int_equal(c->trusted[0].family, AF_INET);
    assert_int_equal(c->trusted[0].prefix, 8);
    assert_int_equal(c->trusted[0].addr[0], 10);
    assert_int_equal(c->trusted[1].family, AF_INET6);
    assert_int_equal(c->trusted[1].prefix, 128);
    assert_int_equal(c->trusted[3].prefix, 32);
    assert_true(c->auth.plaintext_loopback);
    assert_int_equal(c->auth.failure_delay, 250);
    assert_int_equal(c->auth.session_failures, 2);
    assert_int_equal(c->auth.ip_failures, 5);
    assert_string_equal(c->auth.token_claim, "sub");
    assert_int_equal(c->auth.ntoken_keys, 2);
    assert_int_equal(c->auth.token_keys[0].alg, CONF_TOKEN_HS256);
    assert_null(c->auth.token_keys[0].kid);
    assert_int_equal(c->auth.token_keys[1].alg, CONF_TOKEN_RS256);
    assert_string_equal(c->auth.token_keys[1].kid, "main");
    assert_int_equal(c->auth.external, CONF_EXTERNAL_SUBJECT);
    conf_free(c);
}

static void test_auth_directive_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *msg;
    } rows[] = {
        {"trusted-networks 10.0.0.1/8\n", "not ADDRESS[/PREFIX]"},
        {"trusted-networks 10.0.0.0/33\n", "not ADDRESS[/PREFIX]"},
        {"trusted-networks example.org\n", "not ADDRESS[/PREFIX]"},
        {"trusted-networks\n", "takes 1 to 4"},
        {"trusted-networks 1.0.0.0/8 2.0.0.0/8 3.0.0.0/8 4.0.0.0/8 5.0.0.0/8\n", "takes 1 to 4"},
        {"auth { token-key none /k }\n", "hs256, rs256 or es256"},
        {"auth { token-key hs256 }\n", "ALG FILE [KID]"},
        {"auth { external maybe }\n", "external"},
        {"auth { external subject }\n", "needs client-ca"},
        {"auth { token-key hs256 /k; token-issuer i }\n", "needs token-issuer and token-aud"},
        {"auth { token-key hs256 /k; token-audience a }\n", "needs token-issuer and token-aud"},
        {"directory { subaddress-separator ab }\n", "subaddress-separator"},
        {"directory { sqlite /a; mailboxes /b }\n", "either sqlite or"},
        {"auth { session-failures 0 }\n", "out of range"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char text[512];
        struct conf_errors errs;
        int n = snprintf(text, sizeof text, "%s%s", LISTENER, rows[i].text);
        assert_null(conf_parse(text, (size_t)n, &errs));
        assert_true(errs.n >= 1);
        if (strstr(errs.e[0].msg, rows[i].msg) == NULL)
            fail_msg("row %zu: %s", i, errs.e[0].msg);
    }
}

/* ---- the embedded default (etc/sluice.conf) ----------------------------------------------- */

static void check_default(const struct config *c)
{
    static const struct {
        const char *name, *address;
        enum conf_tls_mode tls;
        enum conf_auth_mode auth;
    } want[] = {
        {"smtp", "127.0.0.1:2525", CONF_TLS_STARTTLS, CONF_AUTH_NONE},
        {"submission", "127.0.0.1:2587", CONF_TLS_STARTTLS, CONF_AUTH_REQUIRED},
        {"submissions", "127.0.0.1:2465", CONF_TLS_IMPLICIT, CONF_AUTH_REQUIRED},
    };

    assert_string_equal(c->hostname, "localhost");
    assert_string_equal(c->spool, "./var/spool");
    assert_null(c->user);
    assert_int_equal(c->workers, 0);
    assert_string_equal(c->tls_certificate, "./var/tls/cert.pem");
    assert_string_equal(c->tls_key, "./var/tls/key.pem");
    assert_true(c->tls_self_signed);
    assert_null(c->mailboxes_file);
    assert_string_equal(c->directory_sqlite, "./var/spool/directory.db");
    assert_int_equal(c->subaddress_separator, '+');
    assert_int_equal(c->ntrusted, 0);
    assert_int_equal(c->auth.failure_delay, 1000);
    assert_int_equal(c->auth.session_failures, 3);
    assert_int_equal(c->auth.ip_failures, 20);
    assert_int_equal(c->auth.external, CONF_EXTERNAL_NONE);
    assert_int_equal(c->ndomains, 1);
    assert_string_equal(c->domains[0], "localhost");
    assert_int_equal(c->bare_newlines, CONF_BARE_REJECT);
    assert_int_equal(c->nlisteners, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(c->listeners[i].name, want[i].name);
        assert_string_equal(c->listeners[i].address, want[i].address);
        assert_int_equal(c->listeners[i].tls, want[i].tls);
        assert_int_equal(c->listeners[i].auth, want[i].auth);
        assert_false(c->listeners[i].vrfy);
    }
    for (size_t i = 0; i < sizeof default_rows / sizeof default_rows[0]; i++) {
        if (default_rows[i].f >= F_LISTEN_TLS)
            continue;
        if (default_rows[i].f == F_SELF_SIGNED)
            continue;
        assert_int_equal(get_num(c, default_rows[i].f), default_rows[i].want);
    }
}

static void test_default_text(void **state)
{
    (void)state;
    struct conf_errors errs;

    assert_int_equal(conf_default_text[conf_default_len], '\0');
    struct config *c = conf_parse(conf_default_text, conf_default_len, &errs);
    assert_non_null(c);
    check_default(c);
    conf_free(c);
}

/* ---- conf_load and `sluice config check` -------------------------------------------------- */

static char *write_temp(const char *text, size_t len)
{
    char *path = strdup("/tmp/test_conf_XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_load_default(void **state)
{
    (void)state;
    struct conf_errors errs;
    struct config *c = conf_load(NULL, &errs);

    assert_non_null(c);
    check_default(c);
    conf_free(c);
}

static void test_load_file(void **state)
{
    (void)state;
    struct conf_errors errs;
    char host[256] = {0};
    char *path = write_temp(LISTENER "spool /q\n", strlen(LISTENER "spool /q\n"));
    struct config *c = conf_load(path, &errs);

    assert_non_null(c);
    assert_string_equal(c->spool, "/q");
    /* no hostname directive: conf_load fills in the system's name */
    assert_int_equal(gethostname(host, sizeof host - 1), 0);
    assert_string_equal(c->hostname, host);
    conf_free(c);
    unlink(path);
    free(path);
}

static void test_load_errors(void **state)
{
    (void)state;
    struct conf_errors errs;
    size_t len;

    assert_null(conf_load("/nonexistent/sluice.conf", &errs));
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.e[0].line, 0);
    assert_non_null(strstr(errs.e[0].msg, "cannot open"));

    assert_null(conf_load("/tmp", &errs));
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.e[0].line, 0);

    char *t = make_text("#", 'x', CONF_FILE_MAX, "\n", &len);
    char *path = write_temp(t, len);
    assert_null(conf_load(path, &errs));
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.e[0].line, 0);
    assert_non_null(strstr(errs.e[0].msg, "larger than 1 MiB"));
    unlink(path);
    free(path);
    free(t);

    path = write_temp("hostname x\nlisten a {\n", strlen("hostname x\nlisten a {\n"));
    assert_null(conf_load(path, &errs));
    assert_int_equal(errs.e[0].line, 2);
    unlink(path);
    free(path);
}

/* Runs conf_check_main with stdout and stderr captured into buf. */
static int run_check(int argc, char **argv, char *buf, size_t size)
{
    char path[] = "/tmp/test_conf_out_XXXXXX";
    int fd = mkstemp(path);
    int saved_out = dup(1), saved_err = dup(2);

    assert_true(fd >= 0 && saved_out >= 0 && saved_err >= 0);
    fflush(stdout);
    fflush(stderr);
    dup2(fd, 1);
    dup2(fd, 2);
    int rc = conf_check_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    ssize_t n = pread(fd, buf, size - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
    unlink(path);
    return rc;
}

static void test_check_main(void **state)
{
    (void)state;
    char out[2048], want[512];
    static const char bad[] = "hostname\nlisten a { address 127.0.0.1:25 }\nlimits { junk 0 }\n";
    char *good_path = write_temp(LISTENER, strlen(LISTENER));
    char *bad_path = write_temp(bad, sizeof bad - 1);
    char *argv_good[] = {"check", good_path, NULL};
    char *argv_bad[] = {"check", bad_path, NULL};
    char *argv_missing[] = {"check", "/nonexistent/x.conf", NULL};
    char *argv_usage[] = {"check", NULL};

    assert_int_equal(run_check(2, argv_good, out, sizeof out), 0);
    snprintf(want, sizeof want, "%s: ok\n", good_path);
    assert_string_equal(out, want);

    assert_int_equal(run_check(2, argv_bad, out, sizeof out), 1);
    snprintf(want, sizeof want,
             "%s:1: 'hostname' needs a value\n"
             "%s:3: 'junk' 0 is out of range (1 to 10000000)\n",
             bad_path, bad_path);
    assert_string_equal(out, want);

    assert_int_equal(run_check(2, argv_missing, out, sizeof out), 1);
    assert_string_equal(out, "/nonexistent/x.conf: cannot open: No such file or directory\n");

    assert_int_equal(run_check(1, argv_usage, out, sizeof out), 2);
    assert_non_null(strstr(out, "usage: sluice config check FILE"));

    unlink(good_path);
    unlink(bad_path);
    free(good_path);
    free(bad_path);
}

/* Sizes as `sluice user quota` reads and `user list` shows them (cli/dir), straight through
 * conf_number_parse and conf_number_format: the bounds, and what is not a size. */
static void test_size_parse_format_table(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum conf_num want;
        uint64_t value;
        const char *shown; /* conf_number_format of value, NULL: not checked */
    } rows[] = {
        {"0", CONF_NUM_OK, 0, "0"},
        {"1", CONF_NUM_OK, 1, "1"},
        {"1000", CONF_NUM_OK, 1000, "1000"},
        {"2048", CONF_NUM_OK, 2 * K, "2K"},
        {"2K", CONF_NUM_OK, 2 * K, "2K"},
        {"500M", CONF_NUM_OK, 500 * M, "500M"},
        {"500m", CONF_NUM_OK, 500 * M, "500M"},
        {"1536K", CONF_NUM_OK, 1536 * K, "1536K"},
        {"3G", CONF_NUM_OK, 3 * G, "3G"},
        {"0010", CONF_NUM_OK, 10, "10"},
        {"18446744073709551615", CONF_NUM_OK, UINT64_MAX, "18446744073709551615"},
        {"17179869183G", CONF_NUM_OK, 17179869183 * G, "17179869183G"},
        {"18446744073709551616", CONF_NUM_RANGE, 0, NULL},
        {"17179869184G", CONF_NUM_RANGE, 0, NULL},
        {"99999999999999999999999K", CONF_NUM_RANGE, 0, NULL},
        {"", CONF_NUM_SYNTAX, 0, NULL},
        {"K", CONF_NUM_SYNTAX, 0, NULL},
        {"-1", CONF_NUM_SYNTAX, 0, NULL},
        {"+1", CONF_NUM_SYNTAX, 0, NULL},
        {" 1", CONF_NUM_SYNTAX, 0, NULL},
        {"1 ", CONF_NUM_SYNTAX, 0, NULL},
        {"1KB", CONF_NUM_SYNTAX, 0, NULL},
        {"1T", CONF_NUM_SYNTAX, 0, NULL},
        {"1.5M", CONF_NUM_SYNTAX, 0, NULL},
        {"0x10", CONF_NUM_SYNTAX, 0, NULL},
        {"1e3", CONF_NUM_SYNTAX, 0, NULL},
        {"none", CONF_NUM_SYNTAX, 0, NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint64_t v = 12345;
        enum conf_num r = conf_number_parse(rows[i].text, CONF_UNIT_SIZE, &v);
        if (r != rows[i].want)
            fail_msg("row %zu (%s): %d, want %d", i, rows[i].text, (int)r, (int)rows[i].want);
        if (r != CONF_NUM_OK) {
            assert_true(v == 12345);
            continue;
        }
        assert_true(v == rows[i].value);
        char shown[32];
        conf_number_format(shown, sizeof shown, v, CONF_UNIT_SIZE);
        assert_string_equal(shown, rows[i].shown);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_parse_format_table),
        cmocka_unit_test(test_defaults),       cmocka_unit_test(test_directive_numbers),
        cmocka_unit_test(test_listen_modes),   cmocka_unit_test(test_directive_strings),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_errors_all_lines),
        cmocka_unit_test(test_errors_capped),  cmocka_unit_test(test_token_limit),
        cmocka_unit_test(test_file_limit),     cmocka_unit_test(test_many_domains_and_listeners),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_auth_directives),
        cmocka_unit_test(test_auth_directive_errors), cmocka_unit_test(test_default_text),
        cmocka_unit_test(test_load_default),   cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_errors),    cmocka_unit_test(test_check_main),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
