/* dir_sqlite: the directory backed by the SQLite store (dir/dirdb), reached through dir.c.
 * Each process opens its own connection. Every answer is read in the calling thread: in WAL
 * mode a reader never waits for a writer (`sluice user add` while mail flows), and an indexed
 * read of a local file takes microseconds, so the event loop does not stall; the interface
 * still lets a networked backend (PostgreSQL) answer later. Every read sees the last
 * committed change, which is how changes take effect without a restart. */
#include "dir/dir_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dir/dirdb.h"
#include "util/log.h"

#define DIR_SQLITE_BUSY_MS 100

struct dir_sqlite {
    struct dir base;
    struct dirdb *db;
    char separator;
};

_Static_assert(DIR_ALIAS_TARGETS_MAX == DIRDB_ALIAS_TARGETS_MAX,
               "the store refuses the targets expansion could not hold");

/* errno says what kind of failure; for a database error (EIO) SQLite's message says which. */
static void dir_sqlite_fail(struct dir_sqlite *d, const char *what, const char *address)
{
    int err = errno;
    const char *why = err == ERANGE ? "more than " DIRDB_STR(DIRDB_ALIAS_TARGETS_MAX) " targets"
                                    : strerror(err);
    const char *msg = err == EIO ? dirdb_errmsg(d->db) : "-";
    char addr[600], error[128], sqlite[200];
    log_event("directory_error", "op=%s address=<%s> error=%s sqlite=%s", what,
              log_value(addr, sizeof addr, address, strlen(address)),
              log_value(error, sizeof error, why, strlen(why)),
              log_value(sqlite, sizeof sqlite, msg, strlen(msg)));
}

static enum dir_result dir_sqlite_kind(enum dirdb_kind k)
{
    switch (k) {
    case DIRDB_MAILBOX:
        return DIR_MAILBOX;
    case DIRDB_DISABLED:
        return DIR_DISABLED;
    case DIRDB_ALIAS:
        return DIR_ALIAS;
    case DIRDB_RELOCATED:
        return DIR_RELOCATED;
    case DIRDB_FOREIGN:
        return DIR_FOREIGN;
    case DIRDB_NONE:
        break;
    }
    return DIR_NOT_FOUND;
}

/* 0 with e filled, -1 on a database error (logged). An address the store cannot hold
 * ("a@b"@domain) is no mailbox of a domain the store keeps, and FOREIGN for any other
 * domain: a relay for clients allowed one, never a local user. victim%remote@domain and
 * remote!victim@domain are ordinary local parts to the store: looked up as they are (no
 * %-hack), so the domain's catch-all takes them when it has one. */
static int dir_sqlite_get(struct dir_sqlite *d, const char *address, char separator,
                          struct dirdb_entry *e)
{
    if (dirdb_lookup(d->db, address, separator, e) == 0)
        return 0;
    if (errno == EINVAL) {
        memset(e, 0, sizeof *e);
        const char *at = strrchr(address, '@');
        int ours = at != NULL ? dirdb_domain_exists(d->db, at + 1) : 0;
        if (ours >= 0) {
            e->kind = ours == 1 ? DIRDB_NONE : DIRDB_FOREIGN;
            return 0;
        }
    }
    dir_sqlite_fail(d, "lookup", address);
    return -1;
}

static void dir_sqlite_answer(const struct dirdb_entry *e, dir_lookup_cb cb, void *arg)
{
    struct dir_answer a = {.result = dir_sqlite_kind(e->kind), .address = e->address,
                           .name = e->name, .forward = e->forward,
                           .password_hash = e->password_hash, .scram = e->scram,
                           .quota = e->kind == DIRDB_MAILBOX ? e->quota : 0};
    cb(&a, arg);
}

static void dir_sqlite_lookup(struct dir *dd, const char *address, dir_lookup_cb cb, void *arg)
{
    struct dir_sqlite *d = (struct dir_sqlite *)dd;
    struct dirdb_entry *e = malloc(sizeof *e);
    if (e == NULL || dir_sqlite_get(d, address, d->separator, e) != 0)
        dir_answer_only(DIR_TEMPFAIL, cb, arg);
    else
        dir_sqlite_answer(e, cb, arg);
    free(e);
}

static void dir_sqlite_expand(struct dir *dd, const char *address, dir_expand_cb cb, void *arg)
{
    struct dir_sqlite *d = (struct dir_sqlite *)dd;
    struct dirdb_entry *e = malloc(sizeof *e);
    if (e == NULL || dir_sqlite_get(d, address, d->separator, e) != 0) {
        free(e);
        cb(DIR_TEMPFAIL, NULL, 0, 0, arg);
        return;
    }
    const char *one[1] = {e->address};
    switch (e->kind) {
    case DIRDB_MAILBOX:
        /* A subaddress or a catch-all: mail goes to the canonical mailbox. */
        if (strcasecmp(e->address, address) != 0)
            cb(DIR_ALIAS, one, 1, 0, arg);
        else
            cb(DIR_MAILBOX, NULL, 0, e->quota, arg);
        break;
    case DIRDB_RELOCATED:
        if (e->forward)
            cb(DIR_ALIAS, one, 1, 0, arg);
        else
            cb(DIR_NOT_FOUND, NULL, 0, 0, arg);
        break;
    case DIRDB_ALIAS: {
        size_t n = 0;
        char(*t)[DIRDB_ADDR_MAX + 1] = calloc(DIR_ALIAS_TARGETS_MAX, sizeof *t);
        const char **v = calloc(DIR_ALIAS_TARGETS_MAX, sizeof *v);
        if (t == NULL || v == NULL ||
            dirdb_alias_targets(d->db, e->address, t, DIR_ALIAS_TARGETS_MAX, &n) != 0) {
            /* ERANGE too: the store refuses the 1001st target, so only a hand-edited
             * table gets here; mail waits for the operator rather than bouncing. */
            if (t != NULL && v != NULL)
                dir_sqlite_fail(d, "alias", address);
            cb(DIR_TEMPFAIL, NULL, 0, 0, arg);
        } else {
            for (size_t i = 0; i < n; i++)
                v[i] = t[i];
            cb(DIR_ALIAS, v, n, 0, arg);
        }
        free(t);
        free(v);
        break;
    }
    default:
        cb(dir_sqlite_kind(e->kind), NULL, 0, 0, arg);
        break;
    }
    free(e);
}

/* A login is a mailbox by its exact address: no subaddress, alias or catch-all. */
static void dir_sqlite_login(struct dir *dd, const char *address, dir_lookup_cb cb, void *arg)
{
    struct dir_sqlite *d = (struct dir_sqlite *)dd;
    struct dirdb_entry *e = malloc(sizeof *e);
    if (e == NULL || dir_sqlite_get(d, address, '\0', e) != 0)
        dir_answer_only(DIR_TEMPFAIL, cb, arg);
    else if ((e->kind != DIRDB_MAILBOX && e->kind != DIRDB_DISABLED) ||
             strcasecmp(e->address, address) != 0)
        dir_answer_only(DIR_NOT_FOUND, cb, arg);
    else
        dir_sqlite_answer(e, cb, arg);
    free(e);
}

static void dir_sqlite_certificate(struct dir *dd, const char *fingerprint, dir_lookup_cb cb,
                                   void *arg)
{
    struct dir_sqlite *d = (struct dir_sqlite *)dd;
    char address[DIRDB_ADDR_MAX + 1];
    int r = dirdb_cert_lookup(d->db, fingerprint, address);
    if (r < 0 && errno != EINVAL) {
        dir_sqlite_fail(d, "certificate", fingerprint);
        dir_answer_only(DIR_TEMPFAIL, cb, arg);
    } else if (r <= 0) {
        dir_answer_only(DIR_NOT_FOUND, cb, arg);
    } else {
        dir_sqlite_login(dd, address, cb, arg);
    }
}

static void dir_sqlite_owns(struct dir *dd, const char *login, const char *sender,
                            dir_lookup_cb cb, void *arg)
{
    struct dir_sqlite *d = (struct dir_sqlite *)dd;
    char base[DIRDB_ADDR_MAX + 1];
    if (dir_strip_subaddress(sender, d->separator, base, sizeof base) &&
        strcasecmp(base, login) == 0) {
        dir_answer_only(DIR_MAILBOX, cb, arg);
        return;
    }
    int r = dirdb_owns(d->db, login, sender);
    if (r < 0 && errno != EINVAL) {
        dir_sqlite_fail(d, "owns", sender);
        dir_answer_only(DIR_TEMPFAIL, cb, arg);
    } else {
        dir_answer_only(r > 0 ? DIR_MAILBOX : DIR_NOT_FOUND, cb, arg);
    }
}

static void dir_sqlite_close(struct dir *dd)
{
    struct dir_sqlite *d = (struct dir_sqlite *)dd;
    dirdb_close(d->db);
    free(d);
}

static const struct dir_ops dir_sqlite_ops = {
    .lookup = dir_sqlite_lookup,
    .expand = dir_sqlite_expand,
    .login = dir_sqlite_login,
    .certificate = dir_sqlite_certificate,
    .owns = dir_sqlite_owns,
    .close = dir_sqlite_close,
    .has_domains = true,
};

struct dir *dir_open_sqlite(const char *path, char separator, char *err, size_t errlen)
{
    struct dir_sqlite *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->db = dirdb_open(path, err, errlen);
    if (d->db == NULL) {
        free(d);
        return NULL;
    }
    /* Reads run on an event loop (above). A WAL reader waits for a lock only in rare cases
     * (the recovery after a writer crashed); such a wait stalls every session of the
     * process, so past this the lookup is a TEMPFAIL (451 4.3.0, 454 4.7.0), as in G12. */
    dirdb_set_busy_timeout(d->db, DIR_SQLITE_BUSY_MS);
    d->base.ops = &dir_sqlite_ops;
    d->separator = separator;
    return &d->base;
}
