/* dirdb_list: the store's listings for `sluice ... list` (see dirdb.h), every one optionally
 * filtered by domain, in a stable order. Called by the administration tool only; uses the
 * statement helpers of dirdb.c (dirdb_priv.h). */
#include <errno.h>
#include <string.h>

#include "dir/dirdb.h"
#include "dir/dirdb_priv.h"

/* The listings take an optional domain filter; NULL lists every domain. */
static int dirdb_filter(const char *domain, char d[DIRDB_DOMAIN_MAX + 1], const char **arg)
{
    *arg = NULL;
    if (domain == NULL)
        return 0;
    if (!dirdb_canon_domain(domain, strlen(domain), d)) {
        errno = EINVAL;
        return -1;
    }
    *arg = d;
    return 0;
}

int dirdb_domain_list(struct dirdb *db, dirdb_domain_fn fn, void *arg)
{
    sqlite3_stmt *st;
    if (dirdb_prep(db, "SELECT name, catchall FROM domains ORDER BY name", NULL, 0, &st) !=
        SQLITE_OK) {
        dirdb_io(db);
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (!fn(dirdb_col(st, 0), dirdb_col(st, 1), arg))
            break;
    return dirdb_step_done(db, st, rc);
}

/* A listing's statement: sql takes the domain (or NULL for all) as ?1, bound from d, which
 * must live as long as the statement. 0, or -1 with errno. */
static int dirdb_list_prepare(struct dirdb *db, const char *sql, const char *domain,
                              char d[DIRDB_DOMAIN_MAX + 1], sqlite3_stmt **st)
{
    const char *args[1];
    if (dirdb_filter(domain, d, &args[0]) != 0)
        return -1;
    if (dirdb_prep(db, sql, args, 1, st) != SQLITE_OK) {
        dirdb_io(db);
        return -1;
    }
    return 0;
}

/* A listing whose rows are two strings (and a flag in column 2 for fn3): one loop for all
 * of them. */
typedef bool (*dirdb_row2_fn)(const char *a, const char *b, void *arg);
typedef bool (*dirdb_row3_fn)(const char *a, const char *b, bool flag, void *arg);

static int dirdb_list_rows(struct dirdb *db, const char *sql, const char *domain, dirdb_row2_fn fn2,
                           dirdb_row3_fn fn3, void *arg)
{
    char d[DIRDB_DOMAIN_MAX + 1];
    sqlite3_stmt *st;
    if (dirdb_list_prepare(db, sql, domain, d, &st) != 0)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bool more = fn3 != NULL ? fn3(dirdb_col(st, 0), dirdb_col(st, 1),
                                      sqlite3_column_int(st, 2) != 0, arg)
                                : fn2(dirdb_col(st, 0), dirdb_col(st, 1), arg);
        if (!more)
            break;
    }
    return dirdb_step_done(db, st, rc);
}

int dirdb_user_rows(struct dirdb *db, const char *domain, dirdb_user_row_fn fn, void *arg)
{
    char d[DIRDB_DOMAIN_MAX + 1];
    sqlite3_stmt *st;
    if (dirdb_list_prepare(db,
                           "SELECT address, name, enabled, quota FROM mailboxes"
                           " WHERE ?1 IS NULL OR domain = ?1 ORDER BY address",
                           domain, d, &st) != 0)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = dirdb_col(st, 1);
        struct dirdb_user_row row = {.address = dirdb_col(st, 0),
                                     .name = name != NULL ? name : "",
                                     .enabled = sqlite3_column_int(st, 2) != 0,
                                     .quota = dirdb_col_quota(st, 3)};
        if (row.address == NULL) { /* NOT NULL in the schema: SQLite ran out of memory */
            rc = SQLITE_NOMEM;
            break;
        }
        if (!fn(&row, arg))
            break;
    }
    return dirdb_step_done(db, st, rc);
}

int dirdb_alias_list(struct dirdb *db, const char *domain, dirdb_alias_fn fn, void *arg)
{
    return dirdb_list_rows(db,
                           "SELECT alias, target FROM aliases"
                           " WHERE ?1 IS NULL OR domain = ?1 ORDER BY alias, target",
                           domain, fn, NULL, arg);
}

int dirdb_relocated_list(struct dirdb *db, const char *domain, dirdb_relocated_fn fn, void *arg)
{
    return dirdb_list_rows(db,
                           "SELECT address, new_address, forward FROM relocated"
                           " WHERE ?1 IS NULL OR domain = ?1 ORDER BY address",
                           domain, NULL, fn, arg);
}

/* A certificate's domain is its mailbox's. */
int dirdb_cert_list(struct dirdb *db, const char *domain, dirdb_cert_fn fn, void *arg)
{
    return dirdb_list_rows(db,
                           "SELECT c.fingerprint, c.address FROM certificates c"
                           " JOIN mailboxes m ON m.address = c.address"
                           " WHERE ?1 IS NULL OR m.domain = ?1 ORDER BY c.address, c.fingerprint",
                           domain, fn, NULL, arg);
}

