/* crc: CRC-32 as zlib computes it (reflected polynomial 0xEDB88320), bitwise, for the small
 * checksummed records of the pure codecs (envelope, queue log) so they need no library.
 * Large data (message bodies) goes through zlib's table-driven crc32 instead. */
#ifndef SLUICE_UTIL_CRC_H
#define SLUICE_UTIL_CRC_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc_32(const unsigned char *p, size_t n);

#endif
