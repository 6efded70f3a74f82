/* store_recover: preparing the spool and recovering it (doc/QUEUE.md, "Spool layout" and
 * "Recovery"). Called by the master: queue_store_prepare(_recover) once at start, before
 * any worker, and queue_store_recover_worker after reaping a worker.
 * Invariants:
 * - only the holder of the spool lock recovers and cleans at start (I11);
 * - the log is replayed into queue/ and queue/ is fsynced before any segment is unlinked,
 *   and segments are unlinked before the incoming/ files they cover are deleted;
 * - cleaning incoming/ is bounded: its own entries, and regular files one level down in
 *   directories named by a pid; nothing else is removed, nothing is followed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/store_priv.h"
#include "util/fileio.h"
#include "queue/wal.h"

/* ---- preparing the spool (master) ---- */

static int store_mkdir_p(const char *path)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof p)
        return ENAMETOOLONG;
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return errno;
        p[i] = c;
    }
    return 0;
}

void store_pid_name(pid_t pid, char name[STORE_PID_NAME])
{
    snprintf(name, STORE_PID_NAME, "%ld", (long)pid);
}

/* A name store_pid_name gives for some pid: decimal digits, no leading zero, at most 10
 * (pid_t is 32 bits). Other directories in incoming/ are no store's and are left alone. */
static bool store_is_pid_name(const char *name)
{
    size_t n = 0;
    for (; name[n] != '\0'; n++)
        if (name[n] < '0' || name[n] > '9' || n >= 10)
            return false;
    return n > 0 && name[0] != '0';
}

/* Remove the regular files in incoming/<name>/, then the directory when that left it empty.
 * One level only: a symlink, a FIFO, a subdirectory are left where they are and never
 * followed, and so is the directory that holds them. A missing directory is no error. */
static int store_clean_pid_dir(int incoming_fd, const char *name)
{
    int fd = openat(incoming_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? 0 : errno;
    DIR *d = fileio_opendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        return e;
    }
    int err = 0;
    struct dirent *de;
    while (err == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            err = errno == ENOENT ? 0 : errno;
        else if (S_ISREG(st.st_mode) && unlinkat(fd, de->d_name, 0) != 0 && errno != ENOENT)
            err = errno;
    }
    closedir(d);
    close(fd);
    if (err == 0 && unlinkat(incoming_fd, name, AT_REMOVEDIR) != 0 && errno != ENOENT &&
        errno != ENOTEMPTY && errno != EEXIST)
        err = errno;
    return err;
}

/* Everything in incoming/ was never acknowledged, or is covered by a record the log has
 * just replayed: a crash cut it off before its commit point, so it must never be delivered
 * (HOSTILE-INPUTS I3). The entries of incoming/ itself go whatever they are (unlink never
 * follows); the workers' incoming/<pid>/ are emptied of their regular files and removed. */
static int store_clean_incoming(int dfd)
{
    DIR *d = fileio_opendir(dfd);
    if (d == NULL)
        return errno;
    int err = 0;
    struct dirent *de;
    while (err == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            err = errno == ENOENT ? 0 : errno;
        else if (!S_ISDIR(st.st_mode))
            err = unlinkat(dfd, de->d_name, 0) != 0 && errno != ENOENT ? errno : 0;
        else if (store_is_pid_name(de->d_name))
            err = store_clean_pid_dir(dfd, de->d_name);
    }
    closedir(d);
    return err;
}

static int store_open_subdir(int spool_fd, const char *name, int *fd)
{
    if (mkdirat(spool_fd, name, 0700) != 0 && errno != EEXIST)
        return errno;
    *fd = openat(spool_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return *fd < 0 ? errno : 0;
}

/* The log is replayed before incoming/ is cleaned: the temp files of the replay live there,
 * and the files it leaves (messages acknowledged but not checkpointed) are covered by their
 * records, so deleting them afterwards loses nothing. */
static int store_prepare_dirs(int spool_fd, struct queue_store_recovery *rec)
{
    enum { INCOMING, QUEUE, CORRUPT, WAL, NDIRS };
    static const char *const names[NDIRS] = {"incoming", "queue", "corrupt", "wal"};
    int fds[NDIRS] = {-1, -1, -1, -1};
    int err = 0;
    for (size_t i = 0; err == 0 && i < NDIRS; i++)
        err = store_open_subdir(spool_fd, names[i], &fds[i]);
    if (err == 0)
        err = queue_wal_recover(fds[WAL], fds[INCOMING], fds[QUEUE], rec);
    if (err == 0)
        err = store_clean_incoming(fds[INCOMING]);
    for (size_t i = 0; err == 0 && i < NDIRS; i++)
        if (fsync(fds[i]) != 0)
            err = errno;
    for (size_t i = 0; i < NDIRS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return err;
}

int queue_store_prepare_recover(const char *spool, int *lock_fd, struct queue_store_recovery *out)
{
    struct queue_store_recovery rec = {0};
    int err = store_mkdir_p(spool);
    int spool_fd = err == 0 ? open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (err == 0 && spool_fd < 0)
        err = errno;
    int lfd = -1;
    if (err == 0) {
        lfd = openat(spool_fd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (lfd < 0)
            err = errno;
        else if (flock(lfd, LOCK_EX | LOCK_NB) != 0)
            err = errno == EWOULDBLOCK ? EBUSY : errno;
    }
    /* Only the lock holder may recover and clean: another instance may be writing. */
    if (err == 0)
        err = store_prepare_dirs(spool_fd, &rec);
    if (err == 0 && fsync(spool_fd) != 0)
        err = errno;
    if (spool_fd >= 0)
        close(spool_fd);
    if (out != NULL)
        *out = rec;
    if (err != 0) {
        if (lfd >= 0)
            close(lfd);
        errno = err;
        return -1;
    }
    *lock_fd = lfd;
    return 0;
}

int queue_store_prepare(const char *spool, int *lock_fd)
{
    return queue_store_prepare_recover(spool, lock_fd, NULL);
}

int queue_store_recover_worker(const char *spool, pid_t pid, struct queue_store_recovery *out)
{
    enum { INCOMING, QUEUE, WAL, NDIRS };
    static const char *const names[NDIRS] = {"incoming", "queue", "wal"};
    int fds[NDIRS] = {-1, -1, -1};
    struct queue_store_recovery rec = {0};
    int err = pid > 0 ? 0 : EINVAL;
    int spool_fd = err == 0 ? open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (err == 0 && spool_fd < 0)
        err = errno;
    for (size_t i = 0; err == 0 && i < NDIRS; i++) {
        fds[i] = openat(spool_fd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fds[i] < 0)
            err = errno;
    }
    /* The replay's temp files go in incoming/ itself, as at start: the dead worker's
     * directory may be gone, and a crash here leaves them for the next start to delete. */
    if (err == 0)
        err = queue_wal_recover_pid(fds[WAL], pid, fds[INCOMING], fds[QUEUE], &rec);
    /* Last, as at start: the acknowledged files here are now in queue/ from their records,
     * the others were never acknowledged. After an error the directory stays as it was, for
     * the next start. The removal needs no fsync: nothing in incoming/ is ever delivered,
     * and the next start deletes whatever a power loss brings back. */
    if (err == 0) {
        char name[STORE_PID_NAME];
        store_pid_name(pid, name);
        err = store_clean_pid_dir(fds[INCOMING], name);
    }
    for (size_t i = 0; i < NDIRS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (spool_fd >= 0)
        close(spool_fd);
    if (out != NULL)
        *out = rec;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}
