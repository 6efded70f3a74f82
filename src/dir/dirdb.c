/* dirdb: the SQLite directory store (see dirdb.h); its listings are in dirdb_list.c. Called by
 * the administration tool and by dir/dir_sqlite in the daemon's processes, on their event
 * loops: in WAL mode a read never waits for a writer (the 5 s busy timeout is for the tool's
 * writes; the daemon sets 100 ms for the rare WAL recovery). Invariants: every statement is
 * prepared with bound parameters, so an address is data and never SQL (HOSTILE-INPUTS B3);
 * every address reaching the database has passed dirdb_canon_addr, so domains are stored in
 * lower case (RFC 5321 §2.4: the local part is kept as given) and address columns compare with
 * COLLATE NOCASE, i.e. case-insensitively for ASCII only; alias targets are addresses, never
 * `|command` or `/file` (HOSTILE-INPUTS K3); certificate fingerprints are stored as 64
 * lower-case hex digits and belong to a mailbox (deleted with it). Alias expansion for sender
 * ownership (RFC 6409 §6.1) is bounded in depth as delivery's is. The schema version lives in
 * PRAGMA user_version; a file with any other version is refused, never migrated blindly. */
#include "dir/dirdb.h"
#include "dir/dirdb_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DIRDB_SCHEMA_VERSION 1
#define DIRDB_HASH_MAX (sizeof(((struct dirdb_entry *)0)->password_hash) - 1)
#define DIRDB_SCRAM_MAX (sizeof(((struct dirdb_entry *)0)->scram) - 1)
#define DIRDB_FINGERPRINT_LEN 64 /* hex digits of a SHA-256 */
/* An address this many alias expansions deep is never looked up, as in delivery
 * (queue/sched SCHED_ALIAS_DEPTH). */
#define DIRDB_OWNS_DEPTH "10"
#define DIRDB_BUSY_MS 5000

static const char *const dirdb_schema[] = {
    "CREATE TABLE IF NOT EXISTS domains (name TEXT PRIMARY KEY NOT NULL, catchall TEXT)",
    "CREATE TABLE IF NOT EXISTS mailboxes (address TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,"
    " domain TEXT NOT NULL REFERENCES domains(name), name TEXT NOT NULL,"
    " password_hash TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1, quota INTEGER,"
    " scram TEXT)",
    "CREATE INDEX IF NOT EXISTS mailboxes_domain ON mailboxes(domain)",
    "CREATE TABLE IF NOT EXISTS aliases (alias TEXT NOT NULL COLLATE NOCASE,"
    " domain TEXT NOT NULL REFERENCES domains(name), target TEXT NOT NULL COLLATE NOCASE,"
    " PRIMARY KEY (alias, target))",
    "CREATE INDEX IF NOT EXISTS aliases_domain ON aliases(domain)",
    "CREATE TABLE IF NOT EXISTS relocated (address TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,"
    " domain TEXT NOT NULL REFERENCES domains(name), new_address TEXT NOT NULL,"
    " forward INTEGER NOT NULL)",
    ("CREATE TABLE IF NOT EXISTS certificates (fingerprint TEXT PRIMARY KEY NOT NULL,"
     " address TEXT NOT NULL COLLATE NOCASE REFERENCES mailboxes(address) ON DELETE CASCADE)"),
    "CREATE INDEX IF NOT EXISTS certificates_address ON certificates(address)",
    "PRAGMA user_version = 1",
};

static void dirdb_msg(char *err, size_t errlen, const char *what, const char *detail)
{
    if (err == NULL || errlen == 0)
        return;
    snprintf(err, errlen, "%s%s%s", what, detail != NULL ? ": " : "", detail != NULL ? detail : "");
}

static int dirdb_refuse(int e, char *err, size_t errlen, const char *what)
{
    dirdb_msg(err, errlen, what, NULL);
    errno = e;
    return -1;
}

/* A failed read: errno EIO, SQLite's message kept for dirdb_errmsg. */
void dirdb_io(struct dirdb *db)
{
    snprintf(db->error, sizeof db->error, "%s", sqlite3_errmsg(db->h));
    errno = EIO;
}

static int dirdb_fail(struct dirdb *db, char *err, size_t errlen, const char *what)
{
    dirdb_msg(err, errlen, what, sqlite3_errmsg(db->h));
    errno = EIO;
    return -1;
}

static bool dirdb_is_ctl_or_space(unsigned char c)
{
    return c <= 0x20 || c == 0x7f;
}

/* Letters, digits, '-' and '.', no empty label; lower-cased into out. */
bool dirdb_canon_domain(const char *in, size_t len, char out[DIRDB_DOMAIN_MAX + 1])
{
    if (len == 0 || len > DIRDB_DOMAIN_MAX)
        return false;
    char prev = '.';
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
        if (c == '.' && prev == '.')
            return false;
        out[i] = c;
        prev = c;
    }
    if (prev == '.')
        return false;
    out[len] = '\0';
    return true;
}

/* One '@', a non-empty local part without control bytes or spaces, a valid domain. The
 * result keeps the local part as given and lower-cases the domain (RFC 5321 §2.4);
 * *domain points at the domain inside out. */
static bool dirdb_canon_addr(const char *in, char out[DIRDB_ADDR_MAX + 1], const char **domain)
{
    if (in == NULL)
        return false;
    size_t len = strnlen(in, DIRDB_ADDR_MAX + 1);
    if (len > DIRDB_ADDR_MAX)
        return false;
    const char *at = memchr(in, '@', len);
    if (at == NULL || at == in || memchr(at + 1, '@', len - (size_t)(at + 1 - in)) != NULL)
        return false;
    size_t local = (size_t)(at - in);
    for (size_t i = 0; i < local; i++)
        if (dirdb_is_ctl_or_space((unsigned char)in[i]))
            return false;
    memcpy(out, in, local + 1);
    if (!dirdb_canon_domain(at + 1, len - local - 1, out + local + 1))
        return false;
    if (domain != NULL)
        *domain = out + local + 1;
    return true;
}

static bool dirdb_ascii_caseeq(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
        if (x == '\0')
            return true;
    }
}

/* Prepares sql and binds args[i] (NULL binds SQL NULL) to ?1..?n. */
int dirdb_prep(struct dirdb *db, const char *sql, const char *const *args, size_t n,
                      sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(db->h, sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        rc = args[i] != NULL ? sqlite3_bind_text(*st, (int)i + 1, args[i], -1, SQLITE_STATIC)
                             : sqlite3_bind_null(*st, (int)i + 1);
        if (rc != SQLITE_OK) {
            sqlite3_finalize(*st);
            *st = NULL;
            return rc;
        }
    }
    return SQLITE_OK;
}

/* Runs a statement to completion; SQLITE_DONE on success, *changes the rows touched. */
static int dirdb_exec(struct dirdb *db, const char *sql, const char *const *args, size_t n,
                      int *changes)
{
    sqlite3_stmt *st;
    int rc = dirdb_prep(db, sql, args, n, &st);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE && changes != NULL)
        *changes = sqlite3_changes(db->h);
    return rc;
}

/* 1 when the query returns a row, 0 when not, -1 on error. */
static int dirdb_exists(struct dirdb *db, const char *sql, const char *const *args, size_t n)
{
    sqlite3_stmt *st;
    if (dirdb_prep(db, sql, args, n, &st) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int dirdb_begin(struct dirdb *db)
{
    return dirdb_exec(db, "BEGIN IMMEDIATE", NULL, 0, NULL) == SQLITE_DONE ? 0 : -1;
}

/* Ends a transaction: commits when ret is 0, rolls back otherwise; keeps errno. */
static int dirdb_end(struct dirdb *db, int ret, char *err, size_t errlen)
{
    if (ret == 0) {
        if (dirdb_exec(db, "COMMIT", NULL, 0, NULL) == SQLITE_DONE)
            return 0;
        ret = dirdb_fail(db, err, errlen, "commit");
    }
    int saved = errno;
    dirdb_exec(db, "ROLLBACK", NULL, 0, NULL);
    errno = saved;
    return ret;
}

static int dirdb_pragma(struct dirdb *db, const char *sql)
{
    return dirdb_exec(db, sql, NULL, 0, NULL) == SQLITE_DONE ? 0 : -1;
}

static int dirdb_user_version(struct dirdb *db, int *version)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* Creates the schema of a fresh file; the version is re-read inside the write lock so two
 * processes opening a new file at once do not both create it. */
static int dirdb_setup(struct dirdb *db, char *err, size_t errlen)
{
    int version = 0;
    if (dirdb_user_version(db, &version) != 0)
        return dirdb_fail(db, err, errlen, "read schema version");
    if (version == DIRDB_SCHEMA_VERSION)
        return 0;
    if (version != 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "unknown schema version %d", version);
        return dirdb_refuse(EINVAL, err, errlen, msg);
    }
    if (dirdb_begin(db) != 0)
        return dirdb_fail(db, err, errlen, "begin");
    if (dirdb_user_version(db, &version) != 0)
        return dirdb_end(db, dirdb_fail(db, err, errlen, "read schema version"), err, errlen);
    if (version == 0) {
        for (size_t i = 0; i < sizeof dirdb_schema / sizeof dirdb_schema[0]; i++)
            if (dirdb_exec(db, dirdb_schema[i], NULL, 0, NULL) != SQLITE_DONE)
                return dirdb_end(db, dirdb_fail(db, err, errlen, "create schema"), err, errlen);
    } else if (version != DIRDB_SCHEMA_VERSION) {
        return dirdb_end(db, dirdb_refuse(EINVAL, err, errlen, "unknown schema version"), err,
                         errlen);
    }
    return dirdb_end(db, 0, err, errlen);
}

struct dirdb *dirdb_open(const char *path, char *err, size_t errlen)
{
    struct dirdb *db = calloc(1, sizeof *db);
    if (db == NULL) {
        dirdb_msg(err, errlen, "out of memory", NULL);
        return NULL;
    }
    /* SQLite gives the -wal and -shm files the mode of the database file. */
    mode_t old = umask(077);
    int rc = sqlite3_open_v2(
        path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    umask(old);
    if (rc != SQLITE_OK) {
        dirdb_msg(err, errlen, path, db->h != NULL ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, DIRDB_BUSY_MS);
    if (dirdb_pragma(db, "PRAGMA foreign_keys = ON") != 0 ||
        dirdb_pragma(db, "PRAGMA journal_mode = WAL") != 0) {
        dirdb_fail(db, err, errlen, path);
        goto fail;
    }
    if (dirdb_setup(db, err, errlen) != 0)
        goto fail;
    return db;
fail:
    sqlite3_close(db->h);
    free(db);
    return NULL;
}

void dirdb_set_busy_timeout(struct dirdb *db, int ms)
{
    sqlite3_busy_timeout(db->h, ms);
}

const char *dirdb_errmsg(struct dirdb *db)
{
    return db->error;
}

void dirdb_close(struct dirdb *db)
{
    if (db == NULL)
        return;
    sqlite3_close(db->h);
    free(db);
}

/* A statement changing rows: 0, or -1 with EINVAL when a row names a domain we do not
 * have (the foreign keys are what enforce it), EEXIST on another constraint, ENOENT when
 * nothing changed and that matters, EIO otherwise. */
static int dirdb_change(struct dirdb *db, const char *sql, const char *const *args, size_t n,
                        bool need_change, char *err, size_t errlen)
{
    int changes = 0;
    int rc = dirdb_exec(db, sql, args, n, &changes);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return dirdb_refuse(EINVAL, err, errlen, "unknown domain");
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return dirdb_refuse(EEXIST, err, errlen, "already exists");
    if (rc != SQLITE_DONE)
        return dirdb_fail(db, err, errlen, "update");
    if (need_change && changes == 0)
        return dirdb_refuse(ENOENT, err, errlen, "not found");
    return 0;
}

int dirdb_domain_add(struct dirdb *db, const char *domain, char *err, size_t errlen)
{
    char d[DIRDB_DOMAIN_MAX + 1];
    if (domain == NULL || !dirdb_canon_domain(domain, strlen(domain), d))
        return dirdb_refuse(EINVAL, err, errlen, "malformed domain");
    const char *args[] = {d};
    return dirdb_change(db, "INSERT INTO domains (name) VALUES (?1)", args, 1, false, err, errlen);
}

int dirdb_domain_del(struct dirdb *db, const char *domain, char *err, size_t errlen)
{
    char d[DIRDB_DOMAIN_MAX + 1];
    if (domain == NULL || !dirdb_canon_domain(domain, strlen(domain), d))
        return dirdb_refuse(EINVAL, err, errlen, "malformed domain");
    if (dirdb_begin(db) != 0)
        return dirdb_fail(db, err, errlen, "begin");
    const char *args[] = {d};
    int ret = 0;
    int r = dirdb_exists(db,
                         "SELECT 1 FROM mailboxes WHERE domain = ?1 UNION ALL "
                         "SELECT 1 FROM aliases WHERE domain = ?1 UNION ALL "
                         "SELECT 1 FROM relocated WHERE domain = ?1",
                         args, 1);
    if (r < 0)
        ret = dirdb_fail(db, err, errlen, "domain contents");
    else if (r == 1)
        ret = dirdb_refuse(ENOTEMPTY, err, errlen, "domain still has entries");
    if (ret == 0)
        ret = dirdb_change(db, "DELETE FROM domains WHERE name = ?1", args, 1, true, err, errlen);
    return dirdb_end(db, ret, err, errlen);
}

int dirdb_domain_catchall(struct dirdb *db, const char *domain, const char *catchall, char *err,
                          size_t errlen)
{
    char d[DIRDB_DOMAIN_MAX + 1], a[DIRDB_ADDR_MAX + 1];
    if (domain == NULL || !dirdb_canon_domain(domain, strlen(domain), d))
        return dirdb_refuse(EINVAL, err, errlen, "malformed domain");
    if (catchall != NULL && !dirdb_canon_addr(catchall, a, NULL))
        return dirdb_refuse(EINVAL, err, errlen, "malformed catch-all address");
    const char *args[] = {d, catchall != NULL ? a : NULL};
    if (catchall == NULL)
        return dirdb_change(db, "UPDATE domains SET catchall = NULL WHERE name = ?1", args, 1,
                            true, err, errlen);
    /* A catch-all that names nothing here would accept nothing: refused now, not found out
     * when mail for the domain bounces (a later `user del` can still leave one so). */
    if (dirdb_begin(db) != 0)
        return dirdb_fail(db, err, errlen, "begin");
    int ret, target_found = 0;
    int domain_found = dirdb_exists(db, "SELECT 1 FROM domains WHERE name = ?1", args, 1);
    if (domain_found == 1)
        target_found = dirdb_exists(db,
                                    "SELECT 1 FROM mailboxes WHERE address = ?2"
                                    " UNION ALL SELECT 1 FROM aliases WHERE alias = ?2",
                                    args, 2);
    if (domain_found < 0 || target_found < 0)
        ret = dirdb_fail(db, err, errlen, "catch-all lookup");
    else if (domain_found == 0)
        ret = dirdb_refuse(ENOENT, err, errlen, "not found");
    else if (target_found == 0)
        ret = dirdb_refuse(EINVAL, err, errlen, "the catch-all must be a mailbox or an alias here");
    else
        ret = dirdb_change(db, "UPDATE domains SET catchall = ?2 WHERE name = ?1", args, 2, true,
                           err, errlen);
    return dirdb_end(db, ret, err, errlen);
}

/* SCRAM credentials are text (sasl/scram.h form): no control bytes, so a damaged value can
 * never smuggle a line break into what the daemon logs or parses. NULL is none. */
static bool dirdb_scram_ok(const char *scram)
{
    if (scram == NULL)
        return true;
    size_t len = strnlen(scram, DIRDB_SCRAM_MAX + 1);
    if (len > DIRDB_SCRAM_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (dirdb_is_ctl_or_space((unsigned char)scram[i]))
            return false;
    return true;
}

/* A quota as SQL text for CAST(? AS INTEGER): NULL for none. */
static const char *dirdb_quota_text(uint64_t quota, char q[24])
{
    snprintf(q, 24, "%llu", (unsigned long long)quota);
    return quota != 0 ? q : NULL;
}

int dirdb_user_add(struct dirdb *db, const char *address, const char *name,
                   const char *password_hash, const char *scram, uint64_t quota, char *err,
                   size_t errlen)
{
    char a[DIRDB_ADDR_MAX + 1], q[24];
    const char *d;
    if (!dirdb_canon_addr(address, a, &d))
        return dirdb_refuse(EINVAL, err, errlen, "malformed address");
    if (name == NULL)
        name = "";
    if (password_hash == NULL)
        password_hash = "";
    if (strnlen(name, DIRDB_NAME_MAX + 1) > DIRDB_NAME_MAX ||
        strnlen(password_hash, DIRDB_HASH_MAX + 1) > DIRDB_HASH_MAX)
        return dirdb_refuse(EINVAL, err, errlen, "name or password hash too long");
    if (!dirdb_scram_ok(scram))
        return dirdb_refuse(EINVAL, err, errlen, "malformed SCRAM credentials");
    if (quota > DIRDB_QUOTA_MAX)
        return dirdb_refuse(EINVAL, err, errlen, "quota too large");
    if (dirdb_begin(db) != 0)
        return dirdb_fail(db, err, errlen, "begin");
    const char *args[] = {a, d, name, password_hash, scram, dirdb_quota_text(quota, q)};
    int r = dirdb_exists(db, "SELECT 1 FROM aliases WHERE alias = ?1", args, 1);
    int ret = 0;
    if (r < 0)
        ret = dirdb_fail(db, err, errlen, "alias lookup");
    else if (r == 1)
        ret = dirdb_refuse(EEXIST, err, errlen, "an alias has that address");
    else
        ret = dirdb_change(db,
                           "INSERT INTO mailboxes (address, domain, name, password_hash, scram,"
                           " quota) VALUES (?1, ?2, ?3, ?4, ?5, CAST(?6 AS INTEGER))",
                           args, 6, false, err, errlen);
    return dirdb_end(db, ret, err, errlen);
}

int dirdb_user_del(struct dirdb *db, const char *address, char *err, size_t errlen)
{
    char a[DIRDB_ADDR_MAX + 1];
    if (!dirdb_canon_addr(address, a, NULL))
        return dirdb_refuse(EINVAL, err, errlen, "malformed address");
    const char *args[] = {a};
    return dirdb_change(db, "DELETE FROM mailboxes WHERE address = ?1", args, 1, true, err, errlen);
}

int dirdb_user_passwd(struct dirdb *db, const char *address, const char *password_hash,
                      const char *scram, char *err, size_t errlen)
{
    char a[DIRDB_ADDR_MAX + 1];
    if (!dirdb_canon_addr(address, a, NULL))
        return dirdb_refuse(EINVAL, err, errlen, "malformed address");
    if (password_hash == NULL || strnlen(password_hash, DIRDB_HASH_MAX + 1) > DIRDB_HASH_MAX)
        return dirdb_refuse(EINVAL, err, errlen, "malformed password hash");
    if (!dirdb_scram_ok(scram))
        return dirdb_refuse(EINVAL, err, errlen, "malformed SCRAM credentials");
    const char *args[] = {a, password_hash, scram};
    return dirdb_change(db,
                        "UPDATE mailboxes SET password_hash = ?2, scram = ?3 WHERE address = ?1",
                        args, 3, true, err, errlen);
}

int dirdb_user_enable(struct dirdb *db, const char *address, bool enabled, char *err, size_t errlen)
{
    char a[DIRDB_ADDR_MAX + 1];
    if (!dirdb_canon_addr(address, a, NULL))
        return dirdb_refuse(EINVAL, err, errlen, "malformed address");
    const char *args[] = {a};
    return dirdb_change(db,
                        enabled ? "UPDATE mailboxes SET enabled = 1 WHERE address = ?1"
                                : "UPDATE mailboxes SET enabled = 0 WHERE address = ?1",
                        args, 1, true, err, errlen);
}

/* NULL is no quota. */
int dirdb_user_quota(struct dirdb *db, const char *address, uint64_t quota, char *err,
                     size_t errlen)
{
    char a[DIRDB_ADDR_MAX + 1];
    if (!dirdb_canon_addr(address, a, NULL))
        return dirdb_refuse(EINVAL, err, errlen, "malformed address");
    if (quota > DIRDB_QUOTA_MAX)
        return dirdb_refuse(EINVAL, err, errlen, "quota too large");
    char q[24];
    const char *args[] = {a, dirdb_quota_text(quota, q)};
    return dirdb_change(db, "UPDATE mailboxes SET quota = CAST(?2 AS INTEGER) WHERE address = ?1",
                        args, 2, true, err, errlen);
}

const char *dirdb_col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* A quota column: NULL, or anything not a positive number (a hand-edited row), is none;
 * one past DIRDB_QUOTA_MAX is as good as unlimited and reads as the maximum. */
uint64_t dirdb_col_quota(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) != SQLITE_INTEGER)
        return 0;
    sqlite3_int64 v = sqlite3_column_int64(st, i);
    if (v <= 0)
        return 0;
    return (uint64_t)v > DIRDB_QUOTA_MAX ? DIRDB_QUOTA_MAX : (uint64_t)v;
}

/* Copies a column into a fixed field; a value that does not fit is a damaged database. */
static bool dirdb_copy(char *dst, size_t size, const char *src)
{
    if (src == NULL)
        src = "";
    size_t len = strlen(src);
    if (len >= size)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

/* An alias already stored keeps its first spelling, so its rows list as one alias. */
static int dirdb_alias_spelling(struct dirdb *db, char a[DIRDB_ADDR_MAX + 1], char *err,
                                size_t errlen)
{
    const char *args[] = {a};
    sqlite3_stmt *st;
    if (dirdb_prep(db, "SELECT alias FROM aliases WHERE alias = ?1 LIMIT 1", args, 1, &st) !=
        SQLITE_OK)
        return dirdb_fail(db, err, errlen, "alias lookup");
    int rc = sqlite3_step(st);
    char stored[DIRDB_ADDR_MAX + 1];
    bool ok = rc == SQLITE_DONE ||
              (rc == SQLITE_ROW && dirdb_copy(stored, sizeof stored, dirdb_col(st, 0)));
    sqlite3_finalize(st);
    if (!ok)
        return dirdb_fail(db, err, errlen, "alias lookup");
    if (rc == SQLITE_ROW)
        memcpy(a, stored, strlen(stored) + 1);
    return 0;
}

int dirdb_alias_add(struct dirdb *db, const char *alias, const char *target, char *err,
                    size_t errlen)
{
    char a[DIRDB_ADDR_MAX + 1], t[DIRDB_ADDR_MAX + 1];
    const char *d;
    if (!dirdb_canon_addr(alias, a, &d) || !dirdb_canon_addr(target, t, NULL))
        return dirdb_refuse(EINVAL, err, errlen, "malformed address");
    if (dirdb_ascii_caseeq(a, t))
        return dirdb_refuse(EINVAL, err, errlen, "alias would be its own target");
    if (dirdb_begin(db) != 0)
        return dirdb_fail(db, err, errlen, "begin");
    const char *args[] = {a, d, t};
    int r = dirdb_exists(db, "SELECT 1 FROM mailboxes WHERE address = ?1", args, 1);
    int ret = 0;
    if (r < 0)
        ret = dirdb_fail(db, err, errlen, "mailbox lookup");
    else if (r == 1)
        ret = dirdb_refuse(EEXIST, err, errlen, "a mailbox has that address");
    if (ret == 0)
        ret = dirdb_alias_spelling(db, a, err, errlen);
    if (ret == 0) {
        /* A target it has already is EEXIST below, full or not. */
        r = dirdb_exists(db,
                         "SELECT 1 FROM (SELECT count(*) AS n FROM aliases WHERE alias = ?1)"
                         " WHERE n >= " DIRDB_STR(DIRDB_ALIAS_TARGETS_MAX)
                         " AND NOT EXISTS (SELECT 1 FROM aliases WHERE alias = ?1 AND target = ?3)",
                         args, 3);
        if (r < 0)
            ret = dirdb_fail(db, err, errlen, "alias count");
        else if (r == 1)
            ret = dirdb_refuse(ERANGE, err, errlen,
                               "the alias has " DIRDB_STR(DIRDB_ALIAS_TARGETS_MAX)
                               " targets already");
    }
    if (ret == 0)
        ret = dirdb_change(db, "INSERT INTO aliases (alias, domain, target) VALUES (?1, ?2, ?3)",
                           args, 3, false, err, errlen);
    return dirdb_end(db, ret, err, errlen);
}

int dirdb_alias_del(struct dirdb *db, const char *alias, const char *target, char *err,
                    size_t errlen)
{
    char a[DIRDB_ADDR_MAX + 1], t[DIRDB_ADDR_MAX + 1];
    if (!dirdb_canon_addr(alias, a, NULL))
        return dirdb_refuse(EINVAL, err, errlen, "malformed address");
    if (target == NULL) {
        const char *args[] = {a};
        return dirdb_change(db, "DELETE FROM aliases WHERE alias = ?1", args, 1, true, err, errlen);
    }
    if (!dirdb_canon_addr(target, t, NULL))
        return dirdb_refuse(EINVAL, err, errlen, "malformed target");
    const char *args[] = {a, t};
    return dirdb_change(db, "DELETE FROM aliases WHERE alias = ?1 AND target = ?2", args, 2, true,
                        err, errlen);
}

int dirdb_relocated_set(struct dirdb *db, const char *address, const char *new_address,
                        bool forward, char *err, size_t errlen)
{
    char a[DIRDB_ADDR_MAX + 1], n[DIRDB_ADDR_MAX + 1];
    const char *d;
    if (!dirdb_canon_addr(address, a, &d) || !dirdb_canon_addr(new_address, n, NULL))
        return dirdb_refuse(EINVAL, err, errlen, "malformed address");
    if (dirdb_ascii_caseeq(a, n))
        return dirdb_refuse(EINVAL, err, errlen, "relocated to itself");
    /* Setting it again changes the target and the mode but keeps the first spelling of the
     * address, as aliases do. */
    const char *args[] = {a, d, n, forward ? "1" : "0"};
    return dirdb_change(db,
                        "INSERT INTO relocated (address, domain, new_address, forward)"
                        " VALUES (?1, ?2, ?3, CAST(?4 AS INTEGER)) ON CONFLICT (address) DO UPDATE"
                        " SET new_address = excluded.new_address, forward = excluded.forward",
                        args, 4, false, err, errlen);
}

int dirdb_relocated_del(struct dirdb *db, const char *address, char *err, size_t errlen)
{
    char a[DIRDB_ADDR_MAX + 1];
    if (!dirdb_canon_addr(address, a, NULL))
        return dirdb_refuse(EINVAL, err, errlen, "malformed address");
    const char *args[] = {a};
    return dirdb_change(db, "DELETE FROM relocated WHERE address = ?1", args, 1, true, err, errlen);
}

/* A SHA-256 fingerprint as people paste it ("AB:CD:..." or "abcd..."): the colons are
 * dropped wherever they are, anything else but exactly 64 hex digits is refused, and the
 * result is lower case so one certificate has one spelling in the table. */
static bool dirdb_canon_fingerprint(const char *in, char out[DIRDB_FINGERPRINT_LEN + 1])
{
    if (in == NULL)
        return false;
    size_t n = 0;
    for (; *in != '\0'; in++) {
        char c = *in;
        if (c == ':')
            continue;
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) || n == DIRDB_FINGERPRINT_LEN)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return n == DIRDB_FINGERPRINT_LEN;
}

/* The row takes the mailbox's stored spelling of the address, so the listing and the
 * lookup answer the canonical address; no mailbox, no row (ENOENT). */
int dirdb_cert_add(struct dirdb *db, const char *fingerprint, const char *address, char *err,
                   size_t errlen)
{
    char fp[DIRDB_FINGERPRINT_LEN + 1], a[DIRDB_ADDR_MAX + 1];
    if (!dirdb_canon_fingerprint(fingerprint, fp))
        return dirdb_refuse(EINVAL, err, errlen, "malformed fingerprint");
    if (!dirdb_canon_addr(address, a, NULL))
        return dirdb_refuse(EINVAL, err, errlen, "malformed address");
    const char *args[] = {fp, a};
    int changes = 0;
    int rc = dirdb_exec(db,
                        "INSERT INTO certificates (fingerprint, address)"
                        " SELECT ?1, address FROM mailboxes WHERE address = ?2",
                        args, 2, &changes);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return dirdb_refuse(EEXIST, err, errlen, "fingerprint already registered");
    if (rc != SQLITE_DONE)
        return dirdb_fail(db, err, errlen, "update");
    if (changes == 0)
        return dirdb_refuse(ENOENT, err, errlen, "no such mailbox");
    return 0;
}

int dirdb_cert_del(struct dirdb *db, const char *fingerprint, char *err, size_t errlen)
{
    char fp[DIRDB_FINGERPRINT_LEN + 1];
    if (!dirdb_canon_fingerprint(fingerprint, fp))
        return dirdb_refuse(EINVAL, err, errlen, "malformed fingerprint");
    const char *args[] = {fp};
    return dirdb_change(db, "DELETE FROM certificates WHERE fingerprint = ?1", args, 1, true, err,
                        errlen);
}

int dirdb_cert_lookup(struct dirdb *db, const char *fingerprint, char address[DIRDB_ADDR_MAX + 1])
{
    char fp[DIRDB_FINGERPRINT_LEN + 1];
    address[0] = '\0';
    if (!dirdb_canon_fingerprint(fingerprint, fp)) {
        errno = EINVAL;
        return -1;
    }
    const char *args[] = {fp};
    sqlite3_stmt *st;
    if (dirdb_prep(db, "SELECT address FROM certificates WHERE fingerprint = ?1", args, 1, &st) !=
        SQLITE_OK) {
        dirdb_io(db);
        return -1;
    }
    int rc = sqlite3_step(st);
    bool ok = rc == SQLITE_DONE ||
              (rc == SQLITE_ROW && dirdb_copy(address, DIRDB_ADDR_MAX + 1, dirdb_col(st, 0)));
    sqlite3_finalize(st);
    if (!ok) {
        address[0] = '\0';
        dirdb_io(db);
        return -1;
    }
    return rc == SQLITE_ROW ? 1 : 0;
}

/* RFC 6409 §6.1: the addresses reachable from sender through aliases, i.e. where mail to
 * sender is delivered; so the bound is delivery's: an address DIRDB_OWNS_DEPTH expansions
 * deep is not reached. UNION (not UNION ALL) keeps each (address, depth) pair once, so
 * aliases pointing at each other do not multiply rows level after level, and the depth
 * bound ends a loop (a -> b -> a). */
int dirdb_owns(struct dirdb *db, const char *login, const char *sender)
{
    char l[DIRDB_ADDR_MAX + 1], s[DIRDB_ADDR_MAX + 1];
    if (!dirdb_canon_addr(login, l, NULL) || !dirdb_canon_addr(sender, s, NULL)) {
        errno = EINVAL;
        return -1;
    }
    const char *args[] = {s, l};
    int r = dirdb_exists(db,
                         "WITH RECURSIVE reach(addr, depth) AS ("
                         " SELECT ?1, 0"
                         " UNION"
                         " SELECT aliases.target, reach.depth + 1 FROM aliases"
                         " JOIN reach ON aliases.alias = reach.addr"
                         " WHERE reach.depth + 1 < " DIRDB_OWNS_DEPTH ")"
                         " SELECT 1 FROM reach WHERE addr = ?2 COLLATE NOCASE LIMIT 1",
                         args, 2);
    if (r < 0)
        dirdb_io(db);
    return r;
}

/* A malformed name is simply not one of ours. */
int dirdb_domain_exists(struct dirdb *db, const char *domain)
{
    char d[DIRDB_DOMAIN_MAX + 1];
    if (domain == NULL || !dirdb_canon_domain(domain, strlen(domain), d))
        return 0;
    const char *args[] = {d};
    int r = dirdb_exists(db, "SELECT 1 FROM domains WHERE name = ?1", args, 1);
    if (r < 0)
        dirdb_io(db);
    return r;
}

int dirdb_step_done(struct dirdb *db, sqlite3_stmt *st, int rc)
{
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    dirdb_io(db);
    return -1;
}

/* Looks up one canonical address as relocated, mailbox, then alias: 1 found (out filled),
 * 0 not found, -1 on error. */
static int dirdb_lookup_one(struct dirdb *db, const char *a, struct dirdb_entry *out)
{
    const char *args[] = {a};
    sqlite3_stmt *st;
    if (dirdb_prep(db, "SELECT new_address, forward FROM relocated WHERE address = ?1", args, 1,
                   &st) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->kind = DIRDB_RELOCATED;
        out->forward = sqlite3_column_int(st, 1) != 0;
        bool ok = dirdb_copy(out->address, sizeof out->address, dirdb_col(st, 0));
        sqlite3_finalize(st);
        return ok ? 1 : -1;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return -1;

    if (dirdb_prep(db,
                   "SELECT address, name, password_hash, enabled, scram, quota FROM mailboxes"
                   " WHERE address = ?1",
                   args, 1, &st) != SQLITE_OK)
        return -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->kind = sqlite3_column_int(st, 3) != 0 ? DIRDB_MAILBOX : DIRDB_DISABLED;
        out->quota = dirdb_col_quota(st, 5);
        bool ok = dirdb_copy(out->address, sizeof out->address, dirdb_col(st, 0)) &&
                  dirdb_copy(out->name, sizeof out->name, dirdb_col(st, 1)) &&
                  dirdb_copy(out->password_hash, sizeof out->password_hash, dirdb_col(st, 2)) &&
                  dirdb_copy(out->scram, sizeof out->scram, dirdb_col(st, 4));
        sqlite3_finalize(st);
        return ok ? 1 : -1;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return -1;

    if (dirdb_prep(db, "SELECT alias FROM aliases WHERE alias = ?1 LIMIT 1", args, 1, &st) !=
        SQLITE_OK)
        return -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->kind = DIRDB_ALIAS;
        bool ok = dirdb_copy(out->address, sizeof out->address, dirdb_col(st, 0));
        sqlite3_finalize(st);
        return ok ? 1 : -1;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* The catch-all is itself looked up once (no subaddress, no further catch-all), so it
 * resolves to a mailbox, alias or relocated entry; a catch-all naming nothing we know
 * gives DIRDB_NONE rather than an open relay to an arbitrary address. */
int dirdb_lookup(struct dirdb *db, const char *address, char separator, struct dirdb_entry *out)
{
    char a[DIRDB_ADDR_MAX + 1];
    const char *d;
    memset(out, 0, sizeof *out);
    out->kind = DIRDB_NONE;
    if (!dirdb_canon_addr(address, a, &d)) {
        errno = EINVAL;
        return -1;
    }
    int ret = -1;
    if (dirdb_exec(db, "BEGIN", NULL, 0, NULL) != SQLITE_DONE)
        goto io;
    sqlite3_stmt *st;
    const char *args[] = {d};
    if (dirdb_prep(db, "SELECT catchall FROM domains WHERE name = ?1", args, 1, &st) != SQLITE_OK)
        goto io_end;
    int rc = sqlite3_step(st);
    char catchall[DIRDB_ADDR_MAX + 1] = "";
    bool ok = rc != SQLITE_ROW || dirdb_copy(catchall, sizeof catchall, dirdb_col(st, 0));
    sqlite3_finalize(st);
    if ((rc != SQLITE_ROW && rc != SQLITE_DONE) || !ok)
        goto io_end;
    if (rc == SQLITE_DONE) {
        out->kind = DIRDB_FOREIGN;
        ret = 0;
        goto end;
    }

    int r = dirdb_lookup_one(db, a, out);
    if (r == 0 && separator != '\0') {
        const char *sep = memchr(a, separator, (size_t)(d - 1 - a));
        if (sep != NULL && sep != a) {
            char base[DIRDB_ADDR_MAX + 1];
            size_t local = (size_t)(sep - a);
            memcpy(base, a, local);
            snprintf(base + local, sizeof base - local, "%s", d - 1);
            r = dirdb_lookup_one(db, base, out);
        }
    }
    if (r == 0 && catchall[0] != '\0')
        r = dirdb_lookup_one(db, catchall, out);
    if (r < 0)
        goto io_end;
    ret = 0;
end:
    /* A read transaction left open would pin an old snapshot and every checkpoint. */
    if (dirdb_exec(db, "COMMIT", NULL, 0, NULL) == SQLITE_DONE)
        return ret;
io_end:
    dirdb_io(db);
    dirdb_exec(db, "ROLLBACK", NULL, 0, NULL);
    goto fail;
io:
    dirdb_io(db);
fail:
    memset(out, 0, sizeof *out);
    out->kind = DIRDB_NONE;
    return -1;
}

/* More targets than max is an error (ERANGE, the first max stored): delivering to a
 * silently truncated list would lose mail. */
int dirdb_alias_targets(struct dirdb *db, const char *alias, char (*targets)[DIRDB_ADDR_MAX + 1],
                        size_t max, size_t *n)
{
    char a[DIRDB_ADDR_MAX + 1];
    *n = 0;
    if (!dirdb_canon_addr(alias, a, NULL)) {
        errno = EINVAL;
        return -1;
    }
    const char *args[] = {a};
    sqlite3_stmt *st;
    if (dirdb_prep(db, "SELECT target FROM aliases WHERE alias = ?1 ORDER BY target", args, 1,
                   &st) != SQLITE_OK) {
        dirdb_io(db);
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == max) {
            sqlite3_finalize(st);
            errno = ERANGE;
            return -1;
        }
        if (!dirdb_copy(targets[*n], DIRDB_ADDR_MAX + 1, dirdb_col(st, 0))) {
            sqlite3_finalize(st);
            dirdb_io(db);
            return -1;
        }
        (*n)++;
    }
    return dirdb_step_done(db, st, rc);
}
