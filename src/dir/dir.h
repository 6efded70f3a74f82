/* dir: the directory of local domains, mailboxes, aliases and logins, behind an interface
 * that may answer later (a database on another host answers from its own thread or
 * socket). Callers must accept the callback both during the call and after it returns, and
 * find their session again by id (DESIGN §1). Two backends: the SQLite store (dir/dirdb,
 * the default, changed by `sluice user|alias|domain ...` while the daemon runs) and the
 * read-only files of issue #2 (mailboxes and aliases, read again on reload). */
#ifndef SLUICE_DIR_DIR_H
#define SLUICE_DIR_DIR_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

struct config;
struct event_base;

enum dir_result {
    DIR_MAILBOX,   /* a local mailbox */
    DIR_ALIAS,     /* an alias that expands to other addresses */
    DIR_NOT_FOUND,
    DIR_TEMPFAIL,  /* the backend could not answer now: 451 4.3.0 / 454 4.7.0 */
    DIR_DISABLED,  /* a mailbox that exists but is disabled: 550 5.2.1 */
    DIR_RELOCATED, /* RFC 5321 §3.4: answer.address is the new address; answer.forward says
                      251 (accept and forward) or 551 (refuse, naming it) */
    DIR_FOREIGN,   /* the domain is none of the directory's (only backends that keep domains
                      answer this; for the others the configuration's domains decide) */
};

struct dir_answer {
    enum dir_result result;
    const char *address;        /* MAILBOX: the canonical address (the subaddress removed, the
                                   catch-all's mailbox); RELOCATED: the new address */
    const char *name;           /* MAILBOX: display name, "" when none */
    bool forward;               /* RELOCATED */
    const char *password_hash;  /* dir_login only: crypt string, "" when none */
    const char *scram;          /* dir_login only: SCRAM-SHA-256 credentials text, "" none */
    uint64_t quota;             /* MAILBOX: the Maildir's limit in octets, 0 when none */
};

struct dir;

/* Open the backend the configuration names (directory { sqlite PATH } or { mailboxes F;
 * aliases F }, or the SQLite store at its default path). The SQLite file and its schema are
 * created when missing. NULL with a message ("file:line: ..." for the files) in err. */
struct dir *dir_open(const struct config *cfg, char *err, size_t errlen);

/* The SQLite store's path for cfg: 0 and the path in out; 1 when cfg uses the files
 * backend; -1 when the path does not fit. */
int dir_sqlite_path(const struct config *cfg, char *out, size_t outlen);

/* Open the file backend: mailboxes (one address per line, an optional display name after
 * whitespace, '#' comments) and aliases ("alias@domain: target, target"). Either path may be
 * NULL. Files are capped at DIR_FILE_MAX bytes. NULL with a message "file:line: ..." in err. */
struct dir *dir_open_files(const char *mailboxes, const char *aliases, char *err, size_t errlen);

#define DIR_FILE_MAX (64u << 20)

/* True when the backend keeps its own list of local domains (lookups may answer FOREIGN). */
bool dir_has_domains(const struct dir *d);

/* Look up a full address ("local@domain") for RCPT or VRFY; compared case-insensitively. */
typedef void (*dir_lookup_cb)(const struct dir_answer *answer, void *arg);
void dir_lookup(struct dir *d, const char *address, dir_lookup_cb cb, void *arg);

/* Look up an address and, for an alias, its targets (full addresses, valid during the
 * callback only). One level: the caller expands targets that are aliases again (with its
 * own depth limit and loop check). A relocated address with forwarding, a subaddress and a
 * catch-all answer DIR_ALIAS with the one address mail goes to. For a mailbox, NOT_FOUND or
 * TEMPFAIL, n is 0; a mailbox's quota (octets, 0 when none) comes with the same answer, so
 * delivery needs one lookup. Used by EXPN, which takes the answer at any time, and by the
 * queue manager, which needs it during the call: the SQLite and files backends give it so;
 * dir_answer_later's wrapper does not, and is never used there. */
typedef void (*dir_expand_cb)(enum dir_result result, const char *const *targets, size_t n,
                              uint64_t quota, void *arg);
void dir_expand(struct dir *d, const char *address, dir_expand_cb cb, void *arg);

#define DIR_ALIAS_TARGETS_MAX 1000 /* per alias */

/* A login for AUTH: the mailbox (exact address, no subaddress or catch-all) with its
 * password hash and SCRAM credentials. MAILBOX, DISABLED, NOT_FOUND or TEMPFAIL. The caller
 * checks the password off the event loop. */
void dir_login(struct dir *d, const char *address, dir_lookup_cb cb, void *arg);

/* A TLS client certificate's SHA-256 fingerprint (64 lower-case hex digits) to its mailbox,
 * for AUTH EXTERNAL: MAILBOX (address set), NOT_FOUND or TEMPFAIL. */
void dir_certificate(struct dir *d, const char *fingerprint, dir_lookup_cb cb, void *arg);

/* May the mailbox login send as sender (RFC 6409 §6.1)? MAILBOX when it owns it (its own
 * address, or an alias that reaches it), NOT_FOUND when not, TEMPFAIL. */
void dir_owns(struct dir *d, const char *login, const char *sender, dir_lookup_cb cb, void *arg);

/* Answer every request still waiting for its backend with DIR_TEMPFAIL, now, and every
 * later one at once the same way. A process calls it before the state its callbacks look
 * for goes (a worker before its sessions are freed), since an answer that never comes
 * leaks what the caller handed in as arg. Nothing to do for a backend that answers during
 * the call. */
void dir_abort_pending(struct dir *d);

/* A directory that hands every answer of d over from the event loop of base, delay_ms
 * later (0: the next turn). It is how the tests show that the session takes an answer that
 * comes after the call returned, as a networked backend's would: found again by id, with
 * pipelined commands kept in order, and dropped for a session that has gone. Answers to
 * different requests may come in any order. The worker wraps its directory so when
 * SLUICE_DIR_DELAY_MS is set; the queue manager never does (dir_expand above). The new
 * directory owns d (dir_close closes both); NULL when out of memory (d is then closed). */
struct dir *dir_answer_later(struct dir *d, struct event_base *base, unsigned delay_ms);

void dir_close(struct dir *d);

#endif
