/* fileio: whole reads and writes on file descriptors, retried on EINTR and short counts;
 * directory listings on a descriptor. */
#ifndef SLUICE_UTIL_FILEIO_H
#define SLUICE_UTIL_FILEIO_H

#include <dirent.h>
#include <stddef.h>
#include <sys/types.h>

/* Write all n bytes; 0 or an errno. */
int fileio_write_all(int fd, const unsigned char *p, size_t n);

/* Write all n bytes at off; 0 or an errno. */
int fileio_pwrite_all(int fd, const unsigned char *p, size_t n, off_t off);

/* Read exactly n bytes at off; 0, an errno, or EINVAL when the file ends first (for the
 * queue's formats a short file is a corrupt one). */
int fileio_pread_all(int fd, unsigned char *p, size_t n, off_t off);

/* A DIR stream on a duplicate of the directory descriptor dfd, rewound: a duplicate shares
 * the file offset that an earlier listing through dfd moved to the end. NULL with errno. */
DIR *fileio_opendir(int dfd);

#endif
