/* dir: the directory of local mailboxes and aliases, behind an interface that may answer
 * later (a database backend answers from its own thread or socket). Callers must accept
 * the callback both during dir_lookup() and after it returns. */
#ifndef SLUICE_DIR_DIR_H
#define SLUICE_DIR_DIR_H

#include <stddef.h>

enum dir_result {
    DIR_MAILBOX,   /* a local mailbox */
    DIR_ALIAS,     /* an alias that expands to other addresses */
    DIR_NOT_FOUND,
    DIR_TEMPFAIL,  /* the backend could not answer now: 451 4.3.0 */
};

struct dir;

typedef void (*dir_lookup_cb)(enum dir_result result, void *arg);

/* Open the file backend: mailboxes (one address per line, an optional display name after
 * whitespace, '#' comments) and aliases ("alias@domain: target, target"). Either path may be
 * NULL. Files are capped at DIR_FILE_MAX bytes. NULL with a message "file:line: ..." in err. */
struct dir *dir_open_files(const char *mailboxes, const char *aliases, char *err, size_t errlen);

#define DIR_FILE_MAX (64u << 20)

/* Look up a full address ("local@domain"), compared case-insensitively. */
void dir_lookup(struct dir *d, const char *address, dir_lookup_cb cb, void *arg);

/* Look up an address and, for an alias, its targets (full addresses, lower case; valid
 * during the callback only). For a mailbox, NOT_FOUND or TEMPFAIL, n is 0. One level:
 * the caller expands targets that are aliases again (with its own depth limit and loop
 * check). */
typedef void (*dir_expand_cb)(enum dir_result result, const char *const *targets, size_t n,
                              void *arg);
void dir_expand(struct dir *d, const char *address, dir_expand_cb cb, void *arg);

#define DIR_ALIAS_TARGETS_MAX 1000 /* per alias line */

void dir_close(struct dir *d);

#endif
