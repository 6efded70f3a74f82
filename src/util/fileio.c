/* fileio: whole reads and writes (see fileio.h). Called by queue/store and deliver/maildir,
 * so that every on-disk writer has one loop for EINTR and partial transfers. */
#include "util/fileio.h"

#include <errno.h>
#include <unistd.h>

int fileio_write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int fileio_pwrite_all(int fd, const unsigned char *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

int fileio_pread_all(int fd, unsigned char *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            return EINVAL;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

DIR *fileio_opendir(int dfd)
{
    int dup_fd = dup(dfd);
    if (dup_fd < 0)
        return NULL;
    DIR *d = fdopendir(dup_fd);
    if (d == NULL) {
        int e = errno;
        close(dup_fd);
        errno = e;
        return NULL;
    }
    rewinddir(d);
    return d;
}
