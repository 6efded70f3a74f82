/* header_scan: watches the bytes of a message as it is stored (lines ending CRLF, as the body
 * reader produces them) for the end of its header section and for the Message-ID and Date
 * fields, so that submission can add the missing ones there (RFC 6409 §8.2, §8.3). Pure and
 * resumable: bytes may come in chunks of any size. */
#ifndef SLUICE_SMTP_HEADER_SCAN_H
#define SLUICE_SMTP_HEADER_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEADER_SCAN_NAME_MAX 11 /* "message-id" and one byte more */

struct header_scan {
    bool done;              /* the empty line ending the header section was seen */
    bool message_id;        /* a Message-ID field was seen */
    bool date;              /* a Date field was seen */
    bool mid_line;          /* inside a line */
    bool in_name;           /* reading a field name at the start of a line */
    size_t name_len;
    char name[HEADER_SCAN_NAME_MAX];
};

void header_scan_init(struct header_scan *h);

/* Returns the offset in data where the header section ends (the CR of the empty line), or
 * len when it does not end within data; after the end every call returns len. */
size_t header_scan_feed(struct header_scan *h, const uint8_t *data, size_t len);

#endif
