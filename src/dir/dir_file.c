/* dir_file: the file-backed directory (mailboxes and aliases files), loaded whole into a
 * hash set when a worker starts; a reload (SIGHUP) starts new workers that read the files
 * again. Reached through dir.c. Addresses are stored lower-cased; lookups answer at once
 * through the callback, which the interface allows. It holds no passwords: AUTH against it
 * finds no login. */
#include "dir/dir_priv.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct dir_entry {
    char *address;           /* lower case, NUL-terminated */
    char *name;              /* mailboxes: the display name, NULL when none */
    enum dir_result kind;    /* DIR_MAILBOX or DIR_ALIAS */
    char **targets;          /* DIR_ALIAS: lower case addresses */
    size_t ntargets;
};

struct dir_files {
    struct dir base;
    struct dir_entry *slots; /* open addressing; address NULL = empty */
    size_t cap;              /* power of two */
    size_t n;
};

static uint64_t dir_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)tolower((unsigned char)s[i]);
        h *= 1099511628211ull;
    }
    return h;
}

static struct dir_entry *dir_find(struct dir_files *d, const char *addr, size_t len)
{
    if (d->cap == 0)
        return NULL;
    for (size_t i = dir_hash(addr, len) & (d->cap - 1);; i = (i + 1) & (d->cap - 1)) {
        struct dir_entry *e = &d->slots[i];
        if (e->address == NULL || (strlen(e->address) == len && strncasecmp(e->address, addr, len) == 0))
            return e;
    }
}

static int dir_grow(struct dir_files *d)
{
    size_t ncap = d->cap == 0 ? 64 : d->cap * 2;
    struct dir_entry *ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return -1;
    struct dir_files old = *d;
    d->slots = ns;
    d->cap = ncap;
    d->n = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slots[i].address == NULL)
            continue;
        size_t len = strlen(old.slots[i].address);
        *dir_find(d, old.slots[i].address, len) = old.slots[i];
        d->n++;
    }
    free(old.slots);
    return 0;
}

static struct dir_entry *dir_add(struct dir_files *d, const char *addr, size_t len,
                                 enum dir_result kind)
{
    static struct dir_entry dir_ignored;
    if ((d->n + 1) * 2 > d->cap && dir_grow(d) != 0)
        return NULL;
    struct dir_entry *e = dir_find(d, addr, len);
    if (e->address != NULL)
        return &dir_ignored; /* a mailbox and an alias of the same name: the first line wins */
    e->address = malloc(len + 1);
    if (e->address == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        e->address[i] = (char)tolower((unsigned char)addr[i]);
    e->address[len] = '\0';
    e->kind = kind;
    d->n++;
    return e;
}

static int dir_valid_address(const char *s, size_t len);

/* "a@x, b@y" after an alias's colon: each target checked and added, lower-cased. */
static int dir_parse_targets(struct dir_entry *e, const char *p, const char *stop, char *err,
                             size_t errlen, const char *path, unsigned lineno)
{
    while (p < stop) {
        while (p < stop && (isspace((unsigned char)*p) || *p == ','))
            p++;
        const char *t = p;
        while (p < stop && !isspace((unsigned char)*p) && *p != ',')
            p++;
        if (p == t)
            break;
        size_t tlen = (size_t)(p - t);
        if (!dir_valid_address(t, tlen)) {
            snprintf(err, errlen, "%s:%u: bad target address", path, lineno);
            return -1;
        }
        if (e->address == NULL) /* a duplicate key: the first line's targets stand */
            continue;
        if (e->ntargets == DIR_ALIAS_TARGETS_MAX) {
            snprintf(err, errlen, "%s:%u: more than %d targets", path, lineno,
                     DIR_ALIAS_TARGETS_MAX);
            return -1;
        }
        char **nt = realloc(e->targets, (e->ntargets + 1) * sizeof *nt);
        char *a = malloc(tlen + 1);
        if (nt != NULL)
            e->targets = nt;
        if (nt == NULL || a == NULL) {
            free(a);
            snprintf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        for (size_t i = 0; i < tlen; i++)
            a[i] = (char)tolower((unsigned char)t[i]);
        a[tlen] = '\0';
        e->targets[e->ntargets++] = a;
    }
    if (e->address != NULL && e->ntargets == 0) {
        snprintf(err, errlen, "%s:%u: alias without targets", path, lineno);
        return -1;
    }
    return 0;
}

static char *dir_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    char *buf = NULL;

    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > DIR_FILE_MAX) {
        snprintf(err, errlen, "%s: not a regular file or larger than %u bytes", path,
                 DIR_FILE_MAX);
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "%s: read: %s", path, r < 0 ? strerror(errno) : "short");
            goto fail;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    *len = got;
    close(fd);
    return buf;
fail:
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* An address token: printable ASCII or UTF-8, no spaces, exactly one '@' not at either end. */
static int dir_valid_address(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);
    if (len == 0 || at == NULL || at == s || at == s + len - 1 || memchr(at + 1, '@', len - (size_t)(at - s) - 1) != NULL)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f || s[i] == ',' || s[i] == ':')
            return 0;
    return 1;
}

/* Parses one file; in an aliases file the name before ':' is the key and the targets
 * follow, separated by commas or spaces. */
static int dir_load(struct dir_files *d, const char *path, int aliases, char *err, size_t errlen)
{
    size_t len;
    char *text = dir_read_file(path, &len, err, errlen);
    if (text == NULL)
        return -1;
    unsigned lineno = 0;
    int rc = 0;
    for (char *line = text; line < text + len && rc == 0;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        char *end = nl != NULL ? nl : text + len;
        char *hash = memchr(line, '#', (size_t)(end - line));
        char *stop = hash != NULL ? hash : end;
        lineno++;
        while (line < stop && isspace((unsigned char)*line))
            line++;
        char *key_end = line;
        while (key_end < stop && !isspace((unsigned char)*key_end) && *key_end != ':')
            key_end++;
        if (key_end > line) {
            size_t klen = (size_t)(key_end - line);
            if (aliases) {
                char *colon = key_end;
                while (colon < stop && isspace((unsigned char)*colon))
                    colon++;
                if (colon == stop || *colon != ':') {
                    snprintf(err, errlen, "%s:%u: expected \"alias: target, ...\"", path, lineno);
                    rc = -1;
                    break;
                }
            }
            struct dir_entry *e = NULL;
            if (!dir_valid_address(line, klen)) {
                snprintf(err, errlen, "%s:%u: bad address", path, lineno);
                rc = -1;
            } else if ((e = dir_add(d, line, klen, aliases ? DIR_ALIAS : DIR_MAILBOX)) == NULL) {
                snprintf(err, errlen, "%s: out of memory", path);
                rc = -1;
            } else if (!aliases) {
                char *n = key_end, *nend = stop;
                while (n < nend && isspace((unsigned char)*n))
                    n++;
                while (nend > n && isspace((unsigned char)nend[-1]))
                    nend--;
                /* The display name is for VRFY's "250 Name <addr>": printable only. */
                for (char *q = n; q < nend; q++)
                    if ((unsigned char)*q < ' ' || *q == 0x7f)
                        *q = ' ';
                if (nend > n && e->address != NULL && e->name == NULL &&
                    (e->name = strndup(n, (size_t)(nend - n))) == NULL) {
                    snprintf(err, errlen, "%s: out of memory", path);
                    rc = -1;
                }
            } else {
                char *colon = memchr(key_end, ':', (size_t)(stop - key_end));
                struct dir_entry fresh = {0};
                /* Only a new entry (never the shared placeholder) takes targets. */
                struct dir_entry *into = e->address != NULL && e->ntargets == 0 &&
                                                 e->kind == DIR_ALIAS
                                             ? e
                                             : &fresh;
                rc = dir_parse_targets(into, colon + 1, stop, err, errlen, path, lineno);
            }
        }
        line = nl != NULL ? nl + 1 : text + len;
    }
    free(text);
    return rc;
}

static void dir_file_answer(struct dir_entry *e, dir_lookup_cb cb, void *arg)
{
    if (e == NULL || e->address == NULL) {
        dir_answer_only(DIR_NOT_FOUND, cb, arg);
        return;
    }
    struct dir_answer a = {.result = e->kind, .address = e->address,
                           .name = e->name != NULL ? e->name : "", .password_hash = "",
                           .scram = ""};
    cb(&a, arg);
}

static struct dir_entry *dir_file_get(struct dir_files *d, const char *address)
{
    struct dir_entry *e = dir_find(d, address, strlen(address));
    char base[1024];
    if ((e == NULL || e->address == NULL) &&
        dir_strip_subaddress(address, d->base.separator, base, sizeof base))
        e = dir_find(d, base, strlen(base)); /* a mailbox or an alias, as in the SQLite store */
    return e;
}

static void dir_file_lookup(struct dir *dd, const char *address, dir_lookup_cb cb, void *arg)
{
    struct dir_files *d = (struct dir_files *)dd;
    dir_file_answer(dir_file_get(d, address), cb, arg);
}

static void dir_file_expand(struct dir *dd, const char *address, dir_expand_cb cb, void *arg)
{
    struct dir_files *d = (struct dir_files *)dd;
    struct dir_entry *e = dir_file_get(d, address);
    if (e == NULL || e->address == NULL)
        cb(DIR_NOT_FOUND, NULL, 0, 0, arg);
    else if (e->kind == DIR_MAILBOX && strcasecmp(e->address, address) != 0)
        cb(DIR_ALIAS, (const char *const *)&e->address, 1, 0, arg);
    else
        cb(e->kind, (const char *const *)e->targets, e->kind == DIR_ALIAS ? e->ntargets : 0, 0,
           arg);
}

static void dir_file_none(struct dir *d, const char *key, dir_lookup_cb cb, void *arg)
{
    (void)d;
    (void)key;
    dir_answer_only(DIR_NOT_FOUND, cb, arg);
}

/* The address itself, or an alias with the login among its direct targets. */
static void dir_file_owns(struct dir *dd, const char *login, const char *sender, dir_lookup_cb cb,
                          void *arg)
{
    struct dir_files *d = (struct dir_files *)dd;
    bool owns = strcasecmp(login, sender) == 0;
    struct dir_entry *e = owns ? NULL : dir_find(d, sender, strlen(sender));
    for (size_t i = 0; e != NULL && e->address != NULL && i < e->ntargets && !owns; i++)
        owns = strcasecmp(e->targets[i], login) == 0;
    dir_answer_only(owns ? DIR_MAILBOX : DIR_NOT_FOUND, cb, arg);
}

static void dir_file_close(struct dir *dd);

static const struct dir_ops dir_file_ops = {
    .lookup = dir_file_lookup,
    .expand = dir_file_expand,
    .login = dir_file_none,
    .certificate = dir_file_none,
    .owns = dir_file_owns,
    .close = dir_file_close,
    .has_domains = false,
};

struct dir *dir_open_files(const char *mailboxes, const char *aliases, char *err, size_t errlen)
{
    struct dir_files *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->base.ops = &dir_file_ops;
    if ((mailboxes != NULL && dir_load(d, mailboxes, 0, err, errlen) != 0) ||
        (aliases != NULL && dir_load(d, aliases, 1, err, errlen) != 0)) {
        dir_file_close(&d->base);
        return NULL;
    }
    return &d->base;
}

static void dir_file_close(struct dir *dd)
{
    struct dir_files *d = (struct dir_files *)dd;
    for (size_t i = 0; i < d->cap; i++) {
        for (size_t j = 0; j < d->slots[i].ntargets; j++)
            free(d->slots[i].targets[j]);
        free(d->slots[i].targets);
        free(d->slots[i].address);
        free(d->slots[i].name);
    }
    free(d->slots);
    free(d);
}
