/* dir: the directory's front: picks the backend the configuration names (dir_sqlite.c, the
 * default, or dir_file.c) and forwards every request to it through its ops. Called by
 * smtp/session (RCPT, VRFY, EXPN, AUTH, MAIL ownership), the queue manager (expansion),
 * daemon/worker and master (open, dir_abort_pending, close) and
 * the administration tool (dir_sqlite_path). */
#include "dir/dir_priv.h"

#include <stdio.h>
#include <string.h>

#include "conf/conf.h"

int dir_sqlite_path(const struct config *cfg, char *out, size_t outlen)
{
    int n;
    if (cfg->directory_sqlite != NULL)
        n = snprintf(out, outlen, "%s", cfg->directory_sqlite);
    else if (cfg->mailboxes_file != NULL || cfg->aliases_file != NULL)
        return 1;
    else
        n = snprintf(out, outlen, "%s/directory.db", cfg->spool);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

struct dir *dir_open(const struct config *cfg, char *err, size_t errlen)
{
    char path[4096];
    int r = dir_sqlite_path(cfg, path, sizeof path);
    struct dir *d;
    if (r < 0) {
        snprintf(err, errlen, "directory path too long");
        return NULL;
    }
    if (r == 1)
        d = dir_open_files(cfg->mailboxes_file, cfg->aliases_file, err, errlen);
    else
        d = dir_open_sqlite(path, cfg->subaddress_separator, err, errlen);
    if (d != NULL)
        d->separator = cfg->subaddress_separator;
    return d;
}

void dir_answer_only(enum dir_result result, dir_lookup_cb cb, void *arg)
{
    struct dir_answer a = {.result = result, .address = "", .name = "", .password_hash = "",
                           .scram = ""};
    cb(&a, arg);
}

bool dir_strip_subaddress(const char *address, char separator, char *out, size_t len)
{
    const char *at = strrchr(address, '@');
    if (separator == '\0' || at == NULL)
        return false;
    const char *sep = memchr(address, separator, (size_t)(at - address));
    if (sep == NULL || sep == address)
        return false;
    int n = snprintf(out, len, "%.*s%s", (int)(sep - address), address, at);
    return n > 0 && (size_t)n < len;
}

bool dir_has_domains(const struct dir *d)
{
    return d != NULL && d->ops->has_domains;
}

void dir_lookup(struct dir *d, const char *address, dir_lookup_cb cb, void *arg)
{
    if (d == NULL)
        dir_answer_only(DIR_NOT_FOUND, cb, arg);
    else
        d->ops->lookup(d, address, cb, arg);
}

void dir_expand(struct dir *d, const char *address, dir_expand_cb cb, void *arg)
{
    if (d == NULL)
        cb(DIR_NOT_FOUND, NULL, 0, 0, arg);
    else
        d->ops->expand(d, address, cb, arg);
}

void dir_login(struct dir *d, const char *address, dir_lookup_cb cb, void *arg)
{
    if (d == NULL)
        dir_answer_only(DIR_NOT_FOUND, cb, arg);
    else
        d->ops->login(d, address, cb, arg);
}

void dir_certificate(struct dir *d, const char *fingerprint, dir_lookup_cb cb, void *arg)
{
    if (d == NULL)
        dir_answer_only(DIR_NOT_FOUND, cb, arg);
    else
        d->ops->certificate(d, fingerprint, cb, arg);
}

void dir_owns(struct dir *d, const char *login, const char *sender, dir_lookup_cb cb, void *arg)
{
    if (d == NULL)
        dir_answer_only(DIR_NOT_FOUND, cb, arg);
    else
        d->ops->owns(d, login, sender, cb, arg);
}

void dir_abort_pending(struct dir *d)
{
    if (d != NULL && d->ops->abort_pending != NULL)
        d->ops->abort_pending(d);
}

void dir_close(struct dir *d)
{
    if (d != NULL)
        d->ops->close(d);
}
