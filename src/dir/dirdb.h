/* dirdb: the embedded directory store of issue #4, in SQLite (DESIGN §6): domains,
 * mailboxes (address, display name, password hash, enabled, optional quota), aliases (one
 * address to many targets), a catch-all per domain, and relocated addresses. Created on
 * first open under the state directory. Blocking: the administration tool calls it
 * directly; the daemon will call it from a thread (the directory interface may answer
 * later). Addresses are stored and compared with the domain in lower case and the local
 * part as given (RFC 5321 §2.4), matched case-insensitively for ASCII. */
#ifndef SLUICE_DIR_DIRDB_H
#define SLUICE_DIR_DIRDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dirdb;

#define DIRDB_ADDR_MAX 320
#define DIRDB_NAME_MAX 256
#define DIRDB_ALIAS_TARGETS_MAX 1000 /* targets of one alias; dirdb_alias_add refuses more */
#define DIRDB_STR_(x) #x
#define DIRDB_STR(x) DIRDB_STR_(x) /* a limit above as text, for SQL and messages */

/* Open (creating the file, mode 0600, and its schema when missing). NULL with a message in
 * err. A file with a schema version this code does not know is refused. */
struct dirdb *dirdb_open(const char *path, char *err, size_t errlen);
void dirdb_close(struct dirdb *db);

/* How long a statement waits for another connection's lock before failing (EIO): 5 s after
 * dirdb_open, which suits the administration tool; the daemon's loops wait less (dir). */
void dirdb_set_busy_timeout(struct dirdb *db, int ms);

/* SQLite's message for the last failure on this connection, for the log ("no such table"). */
const char *dirdb_errmsg(struct dirdb *db);

/* Every mutator returns 0, or -1 with errno: EEXIST (already there), ENOENT (not there),
 * EINVAL (a malformed address or domain, a mailbox or alias outside a known domain, an
 * alias that would be its own target), EIO (the database failed; message in err). */
int dirdb_domain_add(struct dirdb *db, const char *domain, char *err, size_t errlen);
/* Refuses (ENOTEMPTY) while mailboxes, aliases or relocated entries of the domain remain. */
int dirdb_domain_del(struct dirdb *db, const char *domain, char *err, size_t errlen);
/* catchall: a mailbox or an alias of the directory (else EINVAL), or NULL to remove the
 * domain's catch-all. */
int dirdb_domain_catchall(struct dirdb *db, const char *domain, const char *catchall, char *err,
                          size_t errlen);

/* A mailbox with its password hash, SCRAM-SHA-256 credentials (sasl/scram.h text form, or
 * NULL) and quota (octets, 0 none) in one transaction: a running daemon never sees it
 * without the rest. */
int dirdb_user_add(struct dirdb *db, const char *address, const char *name,
                   const char *password_hash, const char *scram, uint64_t quota, char *err,
                   size_t errlen);
int dirdb_user_del(struct dirdb *db, const char *address, char *err, size_t errlen);
/* The password hash and the SCRAM credentials together (NULL: none), as one change. */
int dirdb_user_passwd(struct dirdb *db, const char *address, const char *password_hash,
                      const char *scram, char *err, size_t errlen);
int dirdb_user_enable(struct dirdb *db, const char *address, bool enabled, char *err,
                      size_t errlen);
/* The largest quota: Maildir++ maildirsize lines hold it in 18 digits (deliver/maildir.c
 * reads no more), well within SQLite's INTEGER. */
#define DIRDB_QUOTA_MAX 999999999999999999ULL

/* The mailbox's quota in octets (Maildir++, enforced at delivery); 0 removes it. A quota
 * above DIRDB_QUOTA_MAX is EINVAL. */
int dirdb_user_quota(struct dirdb *db, const char *address, uint64_t quota, char *err,
                     size_t errlen);

/* TLS client certificates for AUTH EXTERNAL (issue #4): the SHA-256 fingerprint (64 hex
 * digits, case-insensitive, colons allowed and dropped) of a certificate that logs in as the
 * mailbox. Deleting the mailbox deletes its certificates. */
int dirdb_cert_add(struct dirdb *db, const char *fingerprint, const char *address, char *err,
                   size_t errlen);
int dirdb_cert_del(struct dirdb *db, const char *fingerprint, char *err, size_t errlen);
/* 1 found (address copied, canonical), 0 not found, -1 errno EINVAL/EIO. */
int dirdb_cert_lookup(struct dirdb *db, const char *fingerprint, char address[DIRDB_ADDR_MAX + 1]);

/* Does login (a mailbox) own sender, i.e. may it use sender in MAIL FROM (RFC 6409 §6.1)?
 * True when sender is login itself or an alias whose expansion (recursively, depth 10)
 * reaches login. The caller strips a subaddress first. 1 yes, 0 no, -1 errno EIO/EINVAL. */
int dirdb_owns(struct dirdb *db, const char *login, const char *sender);

/* ERANGE when the alias has DIRDB_ALIAS_TARGETS_MAX targets already. */
int dirdb_alias_add(struct dirdb *db, const char *alias, const char *target, char *err,
                    size_t errlen);
/* target NULL: every target of the alias. */
int dirdb_alias_del(struct dirdb *db, const char *alias, const char *target, char *err,
                    size_t errlen);

/* forward true: mail is forwarded to new_address (251 at RCPT); false: refused with 551 and
 * the new address (RFC 5321 §3.4). address must be in a known domain (EINVAL). */
int dirdb_relocated_set(struct dirdb *db, const char *address, const char *new_address,
                        bool forward, char *err, size_t errlen);
int dirdb_relocated_del(struct dirdb *db, const char *address, char *err, size_t errlen);

/* Listings, in address order, of one domain or of all (domain NULL); fn returns false to
 * stop. Strings are valid during the call. */
typedef bool (*dirdb_domain_fn)(const char *domain, const char *catchall, void *arg);
typedef bool (*dirdb_relocated_fn)(const char *address, const char *new_address, bool forward,
                                   void *arg);
typedef bool (*dirdb_cert_fn)(const char *fingerprint, const char *address, void *arg);
typedef bool (*dirdb_alias_fn)(const char *alias, const char *target, void *arg);
int dirdb_domain_list(struct dirdb *db, dirdb_domain_fn fn, void *arg);
/* The user listing, with every column `sluice user list` shows. */
struct dirdb_user_row {
    const char *address;
    const char *name;
    bool enabled;
    uint64_t quota; /* octets, 0 when none */
};
typedef bool (*dirdb_user_row_fn)(const struct dirdb_user_row *row, void *arg);
int dirdb_user_rows(struct dirdb *db, const char *domain, dirdb_user_row_fn fn, void *arg);
int dirdb_alias_list(struct dirdb *db, const char *domain, dirdb_alias_fn fn, void *arg);
int dirdb_relocated_list(struct dirdb *db, const char *domain, dirdb_relocated_fn fn, void *arg);
int dirdb_cert_list(struct dirdb *db, const char *domain, dirdb_cert_fn fn, void *arg);

/* Is domain one of the directory's domains? 1 yes, 0 no, -1 errno EIO. */
int dirdb_domain_exists(struct dirdb *db, const char *domain);

/* One lookup, what RCPT and delivery need. Order: relocated, mailbox, alias (exact), then
 * with the subaddress removed (local part up to the first separator character, when
 * separator is not '\0': "user+tag" -> "user"), then the domain's catch-all. */
enum dirdb_kind {
    DIRDB_NONE,      /* unknown address in one of our domains */
    DIRDB_FOREIGN,   /* the domain is not one of the directory's */
    DIRDB_MAILBOX,   /* found: canonical address in out->address, hash in out->password_hash */
    DIRDB_DISABLED,  /* a mailbox that exists but is disabled */
    DIRDB_ALIAS,     /* targets through dirdb_alias_targets(out->address) */
    DIRDB_RELOCATED, /* out->address is the new address, out->forward says how */
};

struct dirdb_entry {
    enum dirdb_kind kind;
    char address[DIRDB_ADDR_MAX + 1];    /* the canonical address found (or the new one) */
    char name[DIRDB_NAME_MAX + 1];
    char password_hash[256];
    char scram[256];                     /* MAILBOX/DISABLED: SCRAM credentials, "" none */
    uint64_t quota;                      /* MAILBOX/DISABLED: octets, 0 when none */
    bool forward;
};

/* 0, or -1 with errno EINVAL (a malformed address) or EIO. A catch-all that names an
 * address the directory does not know gives DIRDB_NONE for now. */
int dirdb_lookup(struct dirdb *db, const char *address, char separator, struct dirdb_entry *out);

/* The targets of an alias (exactly as stored); *n set. 0, or -1 with errno (ERANGE when it
 * has more than max). */
int dirdb_alias_targets(struct dirdb *db, const char *alias, char (*targets)[DIRDB_ADDR_MAX + 1],
                        size_t max, size_t *n);

#endif
