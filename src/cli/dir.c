/* cli/dir: `sluice domain|user|alias|relocated ...` (issue #4), called by cli/main.c. Each
 * command loads the configuration as `sluice queue` does, opens the SQLite store at
 * dir_sqlite_path() (creating it, mode 0600), makes one change or one listing, and exits
 * with a sysexits(3) status; the daemon sees a change at its next lookup, no restart.
 *
 * Invariants: a password is never taken from argv and never printed: it is read from
 * /dev/tty with echo off (asked twice) or as one line of stdin with --stdin, one byte at a
 * time so no stdio buffer keeps a copy, and every buffer that held it (and the SCRAM keys
 * derived from it) is wiped before return. It is stored twice, as a crypt string
 * (dir/passwd.h) and as SCRAM-SHA-256 credentials with a fresh 16-octet salt (RFC 5802 §3,
 * RFC 7677). Everything printed that came from the user or the database goes through
 * dir_cli_put, which replaces control bytes, so neither can drive the terminal. Listings are
 * one entry a line, tab-separated, in the store's address order; an absent field is empty,
 * except the user listing's last one, the quota, present only for a mailbox that has one. */
#include "cli/dir.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli/queue.h"
#include "conf/conf.h"
#include "conf/conf_value.h"
#include "dir/dir.h"
#include "dir/dirdb.h"
#include "dir/passwd.h"
#include "sasl/plain.h"
#include "sasl/saslprep.h"
#include "sasl/scram.h"

#define DIR_CLI_EX_USAGE 64
#define DIR_CLI_EX_DATAERR 65
#define DIR_CLI_EX_NOUSER 67
#define DIR_CLI_EX_UNAVAILABLE 69
#define DIR_CLI_EX_CANTCREAT 73
#define DIR_CLI_EX_IOERR 74
#define DIR_CLI_EX_CONFIG 78

#define DIR_CLI_PATH_MAX 4096
#define DIR_CLI_SALT_LEN 16
#define DIR_CLI_ERR_MAX 512

static const char dir_cli_usage_domain[] =
    "usage: sluice [-c FILE] domain add DOMAIN | del DOMAIN | list\n"
    "       sluice [-c FILE] domain catchall DOMAIN ADDRESS|none\n";
static const char dir_cli_usage_user[] =
    "usage: sluice [-c FILE] user add ADDRESS [--name NAME] [--stdin]"
    " [--scheme yescrypt|argon2id] [--quota SIZE]\n"
    "       sluice [-c FILE] user passwd ADDRESS [--stdin] [--scheme yescrypt|argon2id]\n"
    "       sluice [-c FILE] user quota ADDRESS SIZE|none\n"
    "       sluice [-c FILE] user del|enable|disable ADDRESS\n"
    "       sluice [-c FILE] user list [DOMAIN]\n"
    "       sluice [-c FILE] user cert add ADDRESS FINGERPRINT | cert del FINGERPRINT\n"
    "       sluice [-c FILE] user cert list [DOMAIN]\n";
static const char dir_cli_usage_alias[] =
    "usage: sluice [-c FILE] alias add ALIAS TARGET... | del ALIAS [TARGET] | list [DOMAIN]\n";
static const char dir_cli_usage_relocated[] =
    "usage: sluice [-c FILE] relocated add ADDRESS NEW-ADDRESS --forward|--refuse\n"
    "       sluice [-c FILE] relocated del ADDRESS | list [DOMAIN]\n";

/* ---- output ------------------------------------------------------------------------------ */

/* Writes s with every control byte (C0 and DEL) shown as '?'. */
static void dir_cli_put(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        putc(c < 0x20 || c == 0x7f ? '?' : c, f);
    }
}

/* "sluice: WHAT SUBJECT: WHY" on stderr; returns code. */
static int dir_cli_error(int code, const char *what, const char *subject, const char *why)
{
    fputs("sluice: ", stderr);
    dir_cli_put(stderr, what);
    if (subject != NULL) {
        putc(' ', stderr);
        dir_cli_put(stderr, subject);
    }
    fputs(": ", stderr);
    dir_cli_put(stderr, why);
    putc('\n', stderr);
    return code;
}

static int dir_cli_status(int e)
{
    switch (e) {
    case EINVAL:
    case ENOTEMPTY:
    case ERANGE:
        return DIR_CLI_EX_DATAERR;
    case ENOENT:
        return DIR_CLI_EX_NOUSER;
    case EEXIST:
        return DIR_CLI_EX_CANTCREAT;
    default:
        return DIR_CLI_EX_IOERR;
    }
}

/* A failed dirdb call: its message when it left one, else errno's. */
static int dir_cli_fail(const char *what, const char *subject, const char *err)
{
    int e = errno;
    return dir_cli_error(dir_cli_status(e), what, subject,
                         err != NULL && err[0] != '\0' ? err : strerror(e));
}

/* Tab-separated fields and a newline. */
static void dir_cli_row(const char *const *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            putchar('\t');
        dir_cli_put(stdout, fields[i] != NULL ? fields[i] : "");
    }
    putchar('\n');
}

static bool dir_cli_domain_row(const char *domain, const char *catchall, void *arg)
{
    (void)arg;
    const char *f[] = {domain, catchall};
    dir_cli_row(f, 2);
    return true;
}

/* The quota column only for a mailbox that has one, in the form `user quota` takes. */
static bool dir_cli_user_row(const struct dirdb_user_row *row, void *arg)
{
    (void)arg;
    char quota[32];
    conf_number_format(quota, sizeof quota, row->quota, CONF_UNIT_SIZE);
    const char *f[] = {row->address, row->enabled ? "enabled" : "disabled", row->name, quota};
    dir_cli_row(f, row->quota != 0 ? 4 : 3);
    return true;
}

static bool dir_cli_pair_row(const char *a, const char *b, void *arg)
{
    (void)arg;
    const char *f[] = {a, b};
    dir_cli_row(f, 2);
    return true;
}

static bool dir_cli_relocated_row(const char *address, const char *new_address, bool forward,
                                  void *arg)
{
    (void)arg;
    const char *f[] = {address, new_address, forward ? "forward" : "refuse"};
    dir_cli_row(f, 3);
    return true;
}

/* ---- arguments --------------------------------------------------------------------------- */

enum {
    DIR_CLI_OPT_NAME = 1u << 0,
    DIR_CLI_OPT_STDIN = 1u << 1,
    DIR_CLI_OPT_SCHEME = 1u << 2,
    DIR_CLI_OPT_FORWARD = 1u << 3,
    DIR_CLI_OPT_REFUSE = 1u << 4,
    DIR_CLI_OPT_QUOTA = 1u << 5,
};

struct dir_cli_opts {
    unsigned seen;
    const char *name;
    const char *quota; /* as given: checked by dir_cli_quota */
    enum passwd_scheme scheme;
};

/* Options may stand anywhere among the operands; "--" ends them (an address may begin with
 * '-'). The operands are moved to the front of argv; *npos is their count. 0, or -1 for a
 * usage error (unknown, repeated or not allowed option, missing value, unknown scheme). */
static int dir_cli_parse(int argc, char **argv, unsigned allowed, struct dir_cli_opts *o, int *npos)
{
    static const struct {
        const char *name;
        unsigned bit;
        bool value;
    } table[] = {
        {"--name", DIR_CLI_OPT_NAME, true},      {"--stdin", DIR_CLI_OPT_STDIN, false},
        {"--scheme", DIR_CLI_OPT_SCHEME, true},  {"--forward", DIR_CLI_OPT_FORWARD, false},
        {"--refuse", DIR_CLI_OPT_REFUSE, false}, {"--quota", DIR_CLI_OPT_QUOTA, true},
    };
    *o = (struct dir_cli_opts){.scheme = PASSWD_YESCRYPT};
    int n = 0;
    bool options = true;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (!options || a[0] != '-') {
            argv[n++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options = false;
            continue;
        }
        size_t k = 0;
        size_t nt = sizeof table / sizeof table[0];
        while (k < nt && strcmp(a, table[k].name) != 0)
            k++;
        if (k == nt || !(allowed & table[k].bit) || (o->seen & table[k].bit))
            return -1;
        o->seen |= table[k].bit;
        if (!table[k].value)
            continue;
        if (i + 1 >= argc)
            return -1;
        const char *v = argv[++i];
        if (table[k].bit == DIR_CLI_OPT_NAME)
            o->name = v;
        else if (table[k].bit == DIR_CLI_OPT_QUOTA)
            o->quota = v;
        else if (strcmp(v, "yescrypt") == 0)
            o->scheme = PASSWD_YESCRYPT;
        else if (strcmp(v, "argon2id") == 0)
            o->scheme = PASSWD_ARGON2ID;
        else
            return -1;
    }
    *npos = n;
    return 0;
}

/* A quota as `user add --quota` and `user quota` take it: octets with an optional K, M or G
 * (1024-based: conf_number_parse's sizes, as in sluice.conf), or "none" (*out 0). Zero is
 * refused (none says that) and so is more than DIRDB_QUOTA_MAX. 0, or the
 * exit status (65) with the error printed. */
static int dir_cli_quota(const char *what, const char *address, const char *text, uint64_t *out)
{
    *out = 0;
    if (text == NULL || strcmp(text, "none") == 0)
        return 0;
    uint64_t v = 0;
    enum conf_num r = conf_number_parse(text, CONF_UNIT_SIZE, &v);
    if (r == CONF_NUM_SYNTAX)
        return dir_cli_error(DIR_CLI_EX_DATAERR, what, address,
                             "malformed size (octets, or a number with K, M or G)");
    if (r == CONF_NUM_RANGE || v > DIRDB_QUOTA_MAX)
        return dir_cli_error(DIR_CLI_EX_DATAERR, what, address, "size too large");
    if (v == 0)
        return dir_cli_error(DIR_CLI_EX_DATAERR, what, address,
                             "a quota of 0 refused (none removes the quota)");
    *out = v;
    return 0;
}

/* ---- passwords --------------------------------------------------------------------------- */

struct dir_cli_password {
    char buf[SASL_PASSWORD_MAX + 2]; /* the password, or one CR more while reading */
    size_t len;
};

static volatile sig_atomic_t dir_cli_signal;

static void dir_cli_on_signal(int sig)
{
    dir_cli_signal = sig;
}

/* One line from fd into pw, the LF and one CR before it removed. 0, or -1 with *why. Read
 * a byte at a time: nothing after the line is consumed, and no buffer but pw sees it. */
static int dir_cli_read_line(int fd, struct dir_cli_password *pw, const char **why)
{
    size_t n = 0;
    bool any = false, too_long = false, nul = false;
    char c = 0;
    for (;;) {
        ssize_t r = read(fd, &c, 1);
        if (r < 0) {
            if (errno == EINTR && dir_cli_signal == 0)
                continue;
            *why = errno == EINTR ? "interrupted" : strerror(errno);
            return -1;
        }
        if (r == 0)
            break;
        any = true;
        if (c == '\n')
            break;
        if (c == '\0')
            nul = true;
        if (n == sizeof pw->buf - 1) {
            too_long = true; /* and stop: an endless line (/dev/zero) must not hang us */
            break;
        }
        pw->buf[n++] = c;
    }
    explicit_bzero(&c, sizeof c);
    if (n > 0 && pw->buf[n - 1] == '\r')
        n--;
    pw->buf[n] = '\0';
    pw->len = n;
    if (!any)
        *why = "no password given (end of input)";
    else if (nul)
        *why = "a password may not hold a NUL byte";
    else if (too_long || n > SASL_PASSWORD_MAX)
        *why = "password too long (511 octets at most)";
    else if (n == 0)
        *why = "empty password refused";
    else
        return 0;
    explicit_bzero(pw, sizeof *pw);
    return -1;
}

/* Prompts on the terminal with echo off. The termios are restored before return, even when
 * a signal ends the wait: the signal is then delivered again with its default action. */
static int dir_cli_read_tty(int tty, const char *prompt, struct dir_cli_password *pw,
                            const char **why)
{
    struct termios old, quiet;
    if (tcgetattr(tty, &old) != 0) {
        *why = strerror(errno);
        return -1;
    }
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
    quiet.c_lflag |= ECHONL;
    static const int sigs[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP};
    enum { NSIGS = sizeof sigs / sizeof sigs[0] };
    struct sigaction sa = {.sa_handler = dir_cli_on_signal}, saved[NSIGS];
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NSIGS; i++)
        sigaction(sigs[i], &sa, &saved[i]);
    int ret = -1;
    if (tcsetattr(tty, TCSAFLUSH, &quiet) != 0) {
        *why = strerror(errno);
    } else {
        if (write(tty, prompt, strlen(prompt)) < 0) {
            *why = strerror(errno);
        } else {
            ret = dir_cli_read_line(tty, pw, why);
        }
        tcsetattr(tty, TCSAFLUSH, &old);
    }
    for (size_t i = 0; i < NSIGS; i++)
        sigaction(sigs[i], &saved[i], NULL);
    if (dir_cli_signal != 0) {
        explicit_bzero(pw, sizeof *pw);
        signal(dir_cli_signal, SIG_DFL);
        raise(dir_cli_signal);
    }
    return ret;
}

/* The new password, from stdin or asked twice on /dev/tty. 0, or -1 with *why. */
static int dir_cli_password_get(bool from_stdin, const char *address, struct dir_cli_password *pw,
                                const char **why)
{
    if (from_stdin)
        return dir_cli_read_line(STDIN_FILENO, pw, why);
    int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (tty < 0) {
        *why = "no terminal to ask for the password on (use --stdin)";
        return -1;
    }
    char prompt[DIRDB_ADDR_MAX + 32];
    snprintf(prompt, sizeof prompt, "Password for %s: ", address);
    for (char *p = prompt; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    struct dir_cli_password again;
    int ret = dir_cli_read_tty(tty, prompt, pw, why);
    if (ret == 0) {
        ret = dir_cli_read_tty(tty, "Again: ", &again, why);
        if (ret == 0 && (again.len != pw->len || memcmp(again.buf, pw->buf, pw->len) != 0)) {
            *why = "the passwords do not match";
            ret = -1;
        }
        explicit_bzero(&again, sizeof again);
        if (ret != 0)
            explicit_bzero(pw, sizeof *pw);
    }
    close(tty);
    return ret;
}

struct dir_cli_secrets {
    char hash[PASSWD_HASH_MAX];
    char scram[SCRAM_CREDS_TEXT_MAX];
};

/* The crypt string and the SCRAM credentials of a prepared password. 0, or -1 with *why. */
static int dir_cli_secrets_derive(const char *password, size_t len, enum passwd_scheme scheme,
                                  struct dir_cli_secrets *out, const char **why)
{
    if (passwd_hash(scheme, password, len, out->hash) != 0) {
        *why = strerror(errno);
        return -1;
    }
    uint8_t salt[DIR_CLI_SALT_LEN];
    size_t got = 0;
    while (got < sizeof salt) {
        ssize_t r = getrandom(salt + got, sizeof salt - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *why = strerror(errno);
            return -1;
        }
        got += (size_t)r;
    }
    struct sasl_scram_creds creds;
    int ret = 0;
    if (sasl_scram_creds_make(password, len, salt, sizeof salt, SCRAM_ITERATIONS_DEFAULT,
                              &creds) != 0 ||
        sasl_scram_creds_format(&creds, out->scram, sizeof out->scram) == 0) {
        *why = "cannot derive the SCRAM credentials";
        ret = -1;
    }
    explicit_bzero(&creds, sizeof creds);
    return ret;
}

/* The crypt string and the SCRAM credentials of pw after SASLprep (RFC 4013, as a stored
 * string: AUTH prepares what clients send the same way). 0, or an exit code with *why:
 * DATAERR for a password SASLprep refuses, IOERR when deriving failed. */
static int dir_cli_secrets_make(const struct dir_cli_password *pw, enum passwd_scheme scheme,
                                struct dir_cli_secrets *out, const char **why)
{
    char prepared[PASSWD_MAX + 1];
    size_t len;
    if (sasl_saslprep(pw->buf, pw->len, SASL_PREP_STORED, prepared, sizeof prepared, &len) != 0) {
        *why = errno == ERANGE ? "password too long"
                               : "password not allowed by SASLprep (RFC 4013: not UTF-8, a "
                                 "control or other prohibited character, or empty)";
        return DIR_CLI_EX_DATAERR;
    }
    int ret = dir_cli_secrets_derive(prepared, len, scheme, out, why);
    explicit_bzero(prepared, sizeof prepared);
    return ret == 0 ? 0 : DIR_CLI_EX_IOERR;
}

/* ---- the store --------------------------------------------------------------------------- */

/* Chowns a database file this run created (and its -wal and -shm, which exist while it is
 * open) to the daemon's user: sluiced drops to that user and must open them. */
static int dir_cli_chown_new(const char *path, const char *user, const char **why)
{
    errno = 0;
    struct passwd *pwd = getpwnam(user);
    if (pwd == NULL) {
        *why = errno != 0 ? strerror(errno) : "the configured user does not exist";
        return -1;
    }
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[DIR_CLI_PATH_MAX + 8];
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        if (chown(p, pwd->pw_uid, pwd->pw_gid) != 0 && (i == 0 || errno != ENOENT)) {
            *why = strerror(errno);
            return -1;
        }
    }
    return 0;
}

/* Opens the store the configuration names; NULL with *status set (the error printed). */
static struct dirdb *dir_cli_open(const char *conf_path, int *status)
{
    struct config *cfg = queue_cli_load_conf(conf_path, "sluice");
    if (cfg == NULL) {
        *status = DIR_CLI_EX_CONFIG;
        return NULL;
    }
    char path[DIR_CLI_PATH_MAX];
    int r = dir_sqlite_path(cfg, path, sizeof path);
    struct dirdb *db = NULL;
    if (r == 1) {
        *status = dir_cli_error(DIR_CLI_EX_UNAVAILABLE, "directory", NULL,
                                "the configuration uses the read-only files backend (directory"
                                " { mailboxes ...; aliases ... }): edit those files instead");
    } else if (r != 0) {
        *status = dir_cli_error(DIR_CLI_EX_CONFIG, "directory", NULL, "database path too long");
    } else {
        struct stat st;
        bool fresh = stat(path, &st) != 0 && errno == ENOENT;
        char err[DIR_CLI_ERR_MAX] = "";
        db = dirdb_open(path, err, sizeof err);
        const char *why = NULL;
        if (db == NULL) {
            *status = dir_cli_error(DIR_CLI_EX_IOERR, "directory", path, err);
        } else if (fresh && geteuid() == 0 && cfg->user != NULL &&
                   dir_cli_chown_new(path, cfg->user, &why) != 0) {
            *status = dir_cli_error(DIR_CLI_EX_IOERR, "chown", path, why);
            dirdb_close(db);
            db = NULL;
        }
    }
    conf_free(cfg);
    return db;
}

/* Does the domain of address exist, and is address well-formed? 0, or the exit status
 * (the error printed): 65 malformed, 67 domain unknown, 74. Probing with a lookup tells a
 * malformed address from an unknown domain, which the mutators both report as EINVAL. */
static int dir_cli_check_domain_of(struct dirdb *db, const char *what, const char *address,
                                   struct dirdb_entry *e)
{
    if (dirdb_lookup(db, address, '\0', e) != 0)
        return dir_cli_error(dir_cli_status(errno), what, address,
                             errno == EINVAL ? "malformed address" : strerror(errno));
    if (e->kind == DIRDB_FOREIGN)
        return dir_cli_error(DIR_CLI_EX_NOUSER, what, address, "no such domain");
    return 0;
}

/* A listing's optional domain: 0 when absent or known, else the exit status. */
static int dir_cli_check_domain(struct dirdb *db, const char *what, const char *domain)
{
    if (domain == NULL || dirdb_domain_exists(db, domain) == 1)
        return 0;
    char probe[DIRDB_ADDR_MAX + 2];
    if (snprintf(probe, sizeof probe, "postmaster@%s", domain) >= (int)sizeof probe)
        return dir_cli_error(DIR_CLI_EX_DATAERR, what, domain, "malformed domain");
    struct dirdb_entry e;
    if (dirdb_lookup(db, probe, '\0', &e) != 0)
        return dir_cli_error(dir_cli_status(errno), what, domain,
                             errno == EINVAL ? "malformed domain" : strerror(errno));
    return dir_cli_error(DIR_CLI_EX_NOUSER, what, domain, "no such domain");
}

static int dir_cli_list_failed(const char *what, const char *domain)
{
    return dir_cli_error(dir_cli_status(errno), what, domain,
                         errno == EINVAL ? "malformed domain" : strerror(errno));
}

/* ---- commands ---------------------------------------------------------------------------- */

struct dir_cli_cmd {
    struct dirdb *db;
    char err[DIR_CLI_ERR_MAX];
    const char *what; /* "user add", for messages */
};

/* A change's outcome: 0, or the failure reported about subject. */
static int dir_cli_done(struct dir_cli_cmd *c, const char *subject, int rc)
{
    return rc != 0 ? dir_cli_fail(c->what, subject, c->err) : 0;
}

static int dir_cli_domain(struct dir_cli_cmd *c, const char *verb, char **pos, int n)
{
    if (strcmp(verb, "add") == 0 && n == 1)
        return dir_cli_done(c, pos[0], dirdb_domain_add(c->db, pos[0], c->err, sizeof c->err));
    if (strcmp(verb, "del") == 0 && n == 1)
        return dir_cli_done(c, pos[0], dirdb_domain_del(c->db, pos[0], c->err, sizeof c->err));
    if (strcmp(verb, "catchall") == 0 && n == 2) {
        const char *to = strcmp(pos[1], "none") == 0 ? NULL : pos[1];
        return dir_cli_done(c, pos[0],
                            dirdb_domain_catchall(c->db, pos[0], to, c->err, sizeof c->err));
    }
    if (dirdb_domain_list(c->db, dir_cli_domain_row, NULL) != 0)
        return dir_cli_list_failed(c->what, NULL);
    return 0;
}

/* user add and user passwd: the password is asked only once the address is known to be
 * right. user add writes the mailbox, its SCRAM credentials and its quota in one
 * transaction; user passwd the hash and the credentials in one statement, so SCRAM never
 * accepts the password that was replaced. */
static int dir_cli_user_secret(struct dir_cli_cmd *c, bool add, const char *address,
                               const struct dir_cli_opts *o)
{
    struct dirdb_entry e;
    int status = dir_cli_check_domain_of(c->db, c->what, address, &e);
    if (status != 0)
        return status;
    /* The tool runs in the C locale: strcasecmp folds ASCII only, as the store does. */
    bool same = e.address[0] != '\0' && strcasecmp(e.address, address) == 0;
    if (add && same && e.kind != DIRDB_RELOCATED)
        return dir_cli_error(DIR_CLI_EX_CANTCREAT, c->what, address,
                             e.kind == DIRDB_ALIAS ? "an alias has that address"
                                                   : "already exists");
    if (!add && e.kind != DIRDB_RELOCATED &&
        !(same && (e.kind == DIRDB_MAILBOX || e.kind == DIRDB_DISABLED)))
        return dir_cli_error(DIR_CLI_EX_NOUSER, c->what, address, "no such mailbox");
    if (add && o->name != NULL && !sasl_identity_valid((const uint8_t *)o->name, strlen(o->name)))
        return dir_cli_error(DIR_CLI_EX_DATAERR, c->what, address,
                             "the name must be UTF-8 without control characters");
    uint64_t quota = 0;
    status = dir_cli_quota(c->what, address, o->quota, &quota);
    if (status != 0)
        return status;

    struct dir_cli_password pw;
    struct dir_cli_secrets s;
    const char *why = NULL;
    if (dir_cli_password_get((o->seen & DIR_CLI_OPT_STDIN) != 0, address, &pw, &why) != 0)
        return dir_cli_error(DIR_CLI_EX_DATAERR, c->what, address, why);
    int r = dir_cli_secrets_make(&pw, o->scheme, &s, &why);
    explicit_bzero(&pw, sizeof pw);
    if (r != 0) {
        explicit_bzero(&s, sizeof s);
        return dir_cli_error(r, c->what, address, why);
    }
    status = 0;
    if (add ? dirdb_user_add(c->db, address, o->name, s.hash, s.scram, quota, c->err,
                             sizeof c->err)
            : dirdb_user_passwd(c->db, address, s.hash, s.scram, c->err, sizeof c->err))
        status = dir_cli_fail(c->what, address, c->err);
    explicit_bzero(&s, sizeof s);
    return status;
}

enum dir_cli_listing {
    DIR_CLI_LIST_USERS,
    DIR_CLI_LIST_ALIASES,
    DIR_CLI_LIST_RELOCATED,
    DIR_CLI_LIST_CERTS,
};

/* `... list [DOMAIN]`: one domain (which must exist) or all. */
static int dir_cli_list(struct dir_cli_cmd *c, enum dir_cli_listing which, char **pos, int n)
{
    const char *domain = n == 1 ? pos[0] : NULL;
    int status = dir_cli_check_domain(c->db, c->what, domain);
    if (status != 0)
        return status;
    int rc = -1;
    switch (which) {
    case DIR_CLI_LIST_USERS:
        rc = dirdb_user_rows(c->db, domain, dir_cli_user_row, NULL);
        break;
    case DIR_CLI_LIST_ALIASES:
        rc = dirdb_alias_list(c->db, domain, dir_cli_pair_row, NULL);
        break;
    case DIR_CLI_LIST_RELOCATED:
        rc = dirdb_relocated_list(c->db, domain, dir_cli_relocated_row, NULL);
        break;
    case DIR_CLI_LIST_CERTS:
        rc = dirdb_cert_list(c->db, domain, dir_cli_pair_row, NULL);
        break;
    }
    return rc != 0 ? dir_cli_list_failed(c->what, domain) : 0;
}

static int dir_cli_cert(struct dir_cli_cmd *c, const char *verb, char **pos, int n)
{
    if (strcmp(verb, "add") == 0 && n == 2)
        return dir_cli_done(c, pos[0],
                            dirdb_cert_add(c->db, pos[1], pos[0], c->err, sizeof c->err));
    if (strcmp(verb, "del") == 0 && n == 1)
        return dir_cli_done(c, pos[0], dirdb_cert_del(c->db, pos[0], c->err, sizeof c->err));
    return dir_cli_list(c, DIR_CLI_LIST_CERTS, pos, n);
}

static int dir_cli_user(struct dir_cli_cmd *c, const char *verb, char **pos, int n,
                        const struct dir_cli_opts *o)
{
    if (strcmp(verb, "cert") == 0)
        return dir_cli_cert(c, pos[0], pos + 1, n - 1);
    if (strcmp(verb, "add") == 0 || strcmp(verb, "passwd") == 0)
        return dir_cli_user_secret(c, strcmp(verb, "add") == 0, pos[0], o);
    if (strcmp(verb, "del") == 0)
        return dir_cli_done(c, pos[0], dirdb_user_del(c->db, pos[0], c->err, sizeof c->err));
    if (strcmp(verb, "quota") == 0) {
        uint64_t quota;
        int status = dir_cli_quota(c->what, pos[0], pos[1], &quota);
        return status != 0 ? status
                           : dir_cli_done(c, pos[0], dirdb_user_quota(c->db, pos[0], quota, c->err,
                                                                      sizeof c->err));
    }
    if (strcmp(verb, "enable") == 0 || strcmp(verb, "disable") == 0)
        return dir_cli_done(
            c, pos[0],
            dirdb_user_enable(c->db, pos[0], strcmp(verb, "enable") == 0, c->err, sizeof c->err));
    return dir_cli_list(c, DIR_CLI_LIST_USERS, pos, n);
}

static int dir_cli_alias(struct dir_cli_cmd *c, const char *verb, char **pos, int n)
{
    if (strcmp(verb, "add") == 0) {
        struct dirdb_entry e;
        int status = dir_cli_check_domain_of(c->db, c->what, pos[0], &e);
        for (int i = 1; i < n && status == 0; i++)
            if (dirdb_alias_add(c->db, pos[0], pos[i], c->err, sizeof c->err) != 0) {
                char subject[2 * DIRDB_ADDR_MAX + 8];
                snprintf(subject, sizeof subject, "%s %s", pos[0], pos[i]);
                status = dir_cli_fail(c->what, subject, c->err);
            }
        return status;
    }
    if (strcmp(verb, "del") == 0)
        return dir_cli_done(
            c, pos[0],
            dirdb_alias_del(c->db, pos[0], n == 2 ? pos[1] : NULL, c->err, sizeof c->err));
    return dir_cli_list(c, DIR_CLI_LIST_ALIASES, pos, n);
}

static int dir_cli_relocated(struct dir_cli_cmd *c, const char *verb, char **pos, int n,
                             const struct dir_cli_opts *o)
{
    if (strcmp(verb, "add") == 0) {
        struct dirdb_entry e;
        int status = dir_cli_check_domain_of(c->db, c->what, pos[0], &e);
        if (status == 0 &&
            dirdb_relocated_set(c->db, pos[0], pos[1], (o->seen & DIR_CLI_OPT_FORWARD) != 0, c->err,
                                sizeof c->err) != 0)
            status = dir_cli_fail(c->what, pos[0], c->err);
        return status;
    }
    if (strcmp(verb, "del") == 0)
        return dir_cli_done(c, pos[0], dirdb_relocated_del(c->db, pos[0], c->err, sizeof c->err));
    return dir_cli_list(c, DIR_CLI_LIST_RELOCATED, pos, n);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

/* The grammar: for each command, the operand counts and options it takes. */
struct dir_cli_form {
    const char *group, *verb;
    int min, max; /* operands after the verb; max -1: any number */
    unsigned opts;
};

static const struct dir_cli_form dir_cli_forms[] = {
    {"domain", "add", 1, 1, 0},
    {"domain", "del", 1, 1, 0},
    {"domain", "list", 0, 0, 0},
    {"domain", "catchall", 2, 2, 0},
    {"user", "add", 1, 1,
     DIR_CLI_OPT_NAME | DIR_CLI_OPT_STDIN | DIR_CLI_OPT_SCHEME | DIR_CLI_OPT_QUOTA},
    {"user", "passwd", 1, 1, DIR_CLI_OPT_STDIN | DIR_CLI_OPT_SCHEME},
    {"user", "del", 1, 1, 0},
    {"user", "quota", 2, 2, 0},
    {"user", "enable", 1, 1, 0},
    {"user", "disable", 1, 1, 0},
    {"user", "list", 0, 1, 0},
    {"user", "cert", 1, 3, 0}, /* checked again below by its own verb */
    {"alias", "add", 2, -1, 0},
    {"alias", "del", 1, 2, 0},
    {"alias", "list", 0, 1, 0},
    {"relocated", "add", 2, 2, DIR_CLI_OPT_FORWARD | DIR_CLI_OPT_REFUSE},
    {"relocated", "del", 1, 1, 0},
    {"relocated", "list", 0, 1, 0},
};

static bool dir_cli_cert_form(char **pos, int n)
{
    if (strcmp(pos[0], "add") == 0)
        return n == 3;
    if (strcmp(pos[0], "del") == 0)
        return n == 2;
    return strcmp(pos[0], "list") == 0 && n <= 2;
}

int dir_cli_main(int argc, char **argv, const char *conf_path)
{
    const char *group = argv[0];
    const char *usage = strcmp(group, "domain") == 0  ? dir_cli_usage_domain
                        : strcmp(group, "user") == 0  ? dir_cli_usage_user
                        : strcmp(group, "alias") == 0 ? dir_cli_usage_alias
                                                      : dir_cli_usage_relocated;
    const struct dir_cli_form *form = NULL;
    for (size_t i = 0; argc >= 2 && i < sizeof dir_cli_forms / sizeof dir_cli_forms[0]; i++)
        if (strcmp(dir_cli_forms[i].group, group) == 0 &&
            strcmp(dir_cli_forms[i].verb, argv[1]) == 0)
            form = &dir_cli_forms[i];
    struct dir_cli_opts o;
    int n = 0;
    char **pos = argv + 2;
    if (form == NULL || dir_cli_parse(argc - 2, pos, form->opts, &o, &n) != 0 || n < form->min ||
        (form->max >= 0 && n > form->max) ||
        ((form->opts & DIR_CLI_OPT_FORWARD) &&
         !(o.seen & DIR_CLI_OPT_FORWARD) == !(o.seen & DIR_CLI_OPT_REFUSE)) ||
        (strcmp(group, "user") == 0 && strcmp(argv[1], "cert") == 0 &&
         !dir_cli_cert_form(pos, n))) {
        fputs(usage, stderr);
        return DIR_CLI_EX_USAGE;
    }

    char what[32];
    if (strcmp(argv[1], "cert") == 0)
        snprintf(what, sizeof what, "%s cert %s", group, pos[0]);
    else
        snprintf(what, sizeof what, "%s %s", group, argv[1]);
    struct dir_cli_cmd c = {.what = what};
    int status = 0;
    c.db = dir_cli_open(conf_path, &status);
    if (c.db == NULL)
        return status;
    if (strcmp(group, "domain") == 0)
        status = dir_cli_domain(&c, argv[1], pos, n);
    else if (strcmp(group, "user") == 0)
        status = dir_cli_user(&c, argv[1], pos, n, &o);
    else if (strcmp(group, "alias") == 0)
        status = dir_cli_alias(&c, argv[1], pos, n);
    else
        status = dir_cli_relocated(&c, argv[1], pos, n, &o);
    dirdb_close(c.db);
    if (fflush(stdout) != 0 || ferror(stdout))
        return dir_cli_error(DIR_CLI_EX_IOERR, "output", NULL, strerror(errno));
    return status;
}
