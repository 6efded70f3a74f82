/* conf_load: reads sluice.conf (or the embedded default) and hands it to the pure conf_parse.
 * Called by sluiced at start and on SIGHUP, and by `sluice config check` (check.c).
 * Invariants: never reads more than CONF_FILE_MAX + 1 bytes, so a huge or endless file (a
 * FIFO, /dev/zero) is refused without being buffered; I/O errors come back as one error with
 * line 0. The only thing it adds to the parsed struct is the host name when none is set, so
 * that conf_parse stays free of system calls. */
#include "conf/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void conf_load_error(struct conf_errors *errs, const char *what, int err)
{
    errs->n = 1;
    errs->e[0].line = 0;
    if (err != 0)
        snprintf(errs->e[0].msg, sizeof errs->e[0].msg, "%s: %s", what, strerror(err));
    else
        snprintf(errs->e[0].msg, sizeof errs->e[0].msg, "%s", what);
}

/* Reads at most CONF_FILE_MAX + 1 bytes; returns the buffer and sets *len, or NULL with errs
 * filled. */
static char *conf_load_read(const char *path, size_t *len, struct conf_errors *errs)
{
    struct stat st;
    size_t n = 0;
    char *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        conf_load_error(errs, "cannot open", errno);
        return NULL;
    }
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        conf_load_error(errs, "cannot read", S_ISDIR(st.st_mode) ? EISDIR : errno);
        close(fd);
        return NULL;
    }
    buf = malloc((size_t)CONF_FILE_MAX + 1);
    if (buf == NULL) {
        conf_load_error(errs, "out of memory", 0);
        close(fd);
        return NULL;
    }
    while (n < (size_t)CONF_FILE_MAX + 1) {
        ssize_t r = read(fd, buf + n, (size_t)CONF_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            conf_load_error(errs, "cannot read", errno);
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > CONF_FILE_MAX) {
        conf_load_error(errs, "file larger than 1 MiB", 0);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int conf_load_hostname(struct config *c, struct conf_errors *errs)
{
    char name[256];

    if (gethostname(name, sizeof name - 1) != 0) {
        conf_load_error(errs, "no hostname set and gethostname failed", errno);
        return -1;
    }
    name[sizeof name - 1] = '\0';
    size_t n = strlen(name);
    if (n == 0) {
        conf_load_error(errs, "no hostname set and the system has none", 0);
        return -1;
    }
    c->hostname = malloc(n + 1);
    if (c->hostname == NULL) {
        conf_load_error(errs, "out of memory", 0);
        return -1;
    }
    memcpy(c->hostname, name, n + 1);
    return 0;
}

struct config *conf_load(const char *path, struct conf_errors *errs)
{
    struct conf_errors local;
    struct config *c;

    if (errs == NULL)
        errs = &local;
    errs->n = 0;
    if (path == NULL) {
        c = conf_parse(conf_default_text, conf_default_len, errs);
    } else {
        size_t len = 0;
        char *text = conf_load_read(path, &len, errs);
        if (text == NULL)
            return NULL;
        c = conf_parse(text, len, errs);
        free(text);
    }
    if (c != NULL && c->hostname == NULL && conf_load_hostname(c, errs) != 0) {
        conf_free(c);
        return NULL;
    }
    return c;
}
