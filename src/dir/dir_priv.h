/* dir_priv: what the directory's front (dir.c), its backends (dir_file.c, dir_sqlite.c)
 * and the late-answer wrapper (dir_late.c) share: each one's struct starts with struct dir,
 * whose ops it fills. Not for use outside src/dir/ (and the unit tests' fake backend). */
#ifndef SLUICE_DIR_DIR_PRIV_H
#define SLUICE_DIR_DIR_PRIV_H

#include "dir/dir.h"

struct dir_ops {
    void (*lookup)(struct dir *d, const char *address, dir_lookup_cb cb, void *arg);
    void (*expand)(struct dir *d, const char *address, dir_expand_cb cb, void *arg);
    void (*login)(struct dir *d, const char *address, dir_lookup_cb cb, void *arg);
    void (*certificate)(struct dir *d, const char *fingerprint, dir_lookup_cb cb, void *arg);
    void (*owns)(struct dir *d, const char *login, const char *sender, dir_lookup_cb cb,
                 void *arg);
    void (*close)(struct dir *d);
    void (*abort_pending)(struct dir *d); /* NULL: every answer comes during the call */
    bool has_domains;
};

struct dir {
    const struct dir_ops *ops;
    char separator; /* subaddress separator, '\0' none */
};

/* Answer with just a result (NOT_FOUND, TEMPFAIL...). */
void dir_answer_only(enum dir_result result, dir_lookup_cb cb, void *arg);

/* "user+tag@d" -> "user@d" into out (len bytes); false when address has no subaddress. */
bool dir_strip_subaddress(const char *address, char separator, char *out, size_t len);

struct dir *dir_open_sqlite(const char *path, char separator, char *err, size_t errlen);

#endif
