/* fileio: whole reads and writes on file descriptors, retried on EINTR and short counts. */
#ifndef SLUICE_UTIL_FILEIO_H
#define SLUICE_UTIL_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Write all n bytes; 0 or an errno. */
int fileio_write_all(int fd, const unsigned char *p, size_t n);

/* Write all n bytes at off; 0 or an errno. */
int fileio_pwrite_all(int fd, const unsigned char *p, size_t n, off_t off);

/* Read exactly n bytes at off; 0, an errno, or EINVAL when the file ends first (for the
 * queue's formats a short file is a corrupt one). */
int fileio_pread_all(int fd, unsigned char *p, size_t n, off_t off);

#endif
