/* bytes: big-endian integers in byte buffers, for the on-disk formats (doc/QUEUE.md).
 * Pure, header-only. */
#ifndef SLUICE_UTIL_BYTES_H
#define SLUICE_UTIL_BYTES_H

#include <stdint.h>

static inline void bytes_put32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

static inline uint32_t bytes_get32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static inline void bytes_put64(unsigned char *b, uint64_t v)
{
    bytes_put32(b, (uint32_t)(v >> 32));
    bytes_put32(b + 4, (uint32_t)v);
}

static inline uint64_t bytes_get64(const unsigned char *b)
{
    return (uint64_t)bytes_get32(b) << 32 | bytes_get32(b + 4);
}

#endif
