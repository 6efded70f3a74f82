/* id_format: the pure half of util/id (see id.h): rendering an id from its parts and
 * checking one, so that pure codecs (the control protocol, the outcome log) can validate
 * ids without the clock and process state of id.c. */
#include "util/id.h"

#define ID_TIME_DIGITS 10
#define ID_PID_DIGITS 4
#define ID_COUNTER_DIGITS 6

static const char id_digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* Write the low `width` base-36 digits of v, most significant first. */
static void id_put_base36(char *out, size_t width, uint64_t v)
{
    for (size_t i = width; i > 0; i--) {
        out[i - 1] = id_digits[v % 36];
        v /= 36;
    }
}

void id_format(char out[ID_LEN + 1], uint64_t usec, uint32_t pid, uint32_t counter)
{
    id_put_base36(out, ID_TIME_DIGITS, usec);
    id_put_base36(out + ID_TIME_DIGITS, ID_PID_DIGITS, pid);
    id_put_base36(out + ID_TIME_DIGITS + ID_PID_DIGITS, ID_COUNTER_DIGITS, counter);
    out[ID_LEN] = '\0';
}

bool id_valid(const char *s, size_t len)
{
    if (s == NULL || len != ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')))
            return false;
    }
    return true;
}

