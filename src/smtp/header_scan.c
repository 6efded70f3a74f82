/* header_scan: see header_scan.h. Called by smtp/session_data for messages of logged-in
 * users. Invariants: a field name is matched only at the start of a line that is not a
 * continuation (RFC 5322 §2.2.3 folding starts with SP or HTAB), up to its colon, without
 * case (RFC 5322 §1.2.2); the header section ends at the first empty line (§2.1). A CR at
 * the start of a line is taken as that empty line: the reader's output has no bare CR. */
#include "smtp/header_scan.h"

#include <string.h>
#include <strings.h>

void header_scan_init(struct header_scan *h)
{
    memset(h, 0, sizeof *h);
}

static void header_scan_name_end(struct header_scan *h)
{
    if (h->name_len == 10 && strncasecmp(h->name, "message-id", 10) == 0)
        h->message_id = true;
    else if (h->name_len == 4 && strncasecmp(h->name, "date", 4) == 0)
        h->date = true;
    h->in_name = false;
}

size_t header_scan_feed(struct header_scan *h, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len && !h->done; i++) {
        uint8_t c = data[i];
        if (!h->mid_line) {
            if (c == '\r' || c == '\n') {
                h->done = true;
                return i;
            }
            h->mid_line = true;
            h->in_name = c != ' ' && c != '\t';
            h->name_len = 0;
        }
        if (c == '\n') {
            h->mid_line = false;
            h->in_name = false;
            continue;
        }
        if (!h->in_name)
            continue;
        if (c == ':') {
            header_scan_name_end(h);
        } else if (h->name_len < sizeof h->name) {
            h->name[h->name_len++] = (char)c;
        } else {
            h->in_name = false; /* longer than any name we look for */
        }
    }
    return len;
}
