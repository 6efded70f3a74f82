/* dirdb_priv: what dirdb.c and dirdb_list.c share inside the SQLite store; nobody else
 * includes it. */
#ifndef SLUICE_DIR_DIRDB_PRIV_H
#define SLUICE_DIR_DIRDB_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "dir/dirdb.h"

#define DIRDB_DOMAIN_MAX 255 /* RFC 1035 §2.3.4 */

struct dirdb {
    sqlite3 *h;
    char error[160]; /* the last failure's message: a ROLLBACK would clear SQLite's own */
};

/* A failed read: errno EIO, SQLite's message kept for dirdb_errmsg. */
void dirdb_io(struct dirdb *db);

/* Letters, digits, '-' and '.', no empty label; lower-cased into out. */
bool dirdb_canon_domain(const char *in, size_t len, char out[DIRDB_DOMAIN_MAX + 1]);

/* Prepares sql and binds args[i] (NULL binds SQL NULL) to ?1..?n; an SQLite code. */
int dirdb_prep(struct dirdb *db, const char *sql, const char *const *args, size_t n,
               sqlite3_stmt **st);

/* Finalizes st after its last step (rc): 0 when it ended well, else -1 (dirdb_io). */
int dirdb_step_done(struct dirdb *db, sqlite3_stmt *st, int rc);

/* A text column (NULL for SQL NULL). */
const char *dirdb_col(sqlite3_stmt *st, int i);

/* A quota column: 0 for none, at most DIRDB_QUOTA_MAX. */
uint64_t dirdb_col_quota(sqlite3_stmt *st, int i);

#endif
