/* qlog: the outcome log's record codec (see qlog.h; layout in doc/QUEUE.md). Pure. Called
 * by the scheduler to append and to replay. Invariants: nothing is accepted that encode
 * would not produce (fixed field order, strings without control bytes, enum in range, a
 * well-formed id), and no length is trusted before it is checked against the input. */
#include "queue/qlog.h"

#include <errno.h>
#include <string.h>

#include "util/bytes.h"
#include "util/crc.h"

/* magic(4) len(4) type(1) id(20) rcpt(4) attempts(4) time(8) remote(1) enhanced(8)
 * textlen(2) text extralen(2) extra crc(4) */
#define QLOG_FIXED (4 + 4 + 1 + ID_LEN + 4 + 4 + 8 + 1 + 8 + 2 + 2 + 4)
static const unsigned char qlog_magic[4] = {'S', 'L', 'Q', 'L'};

_Static_assert(QLOG_FIXED + QLOG_TEXT_MAX + QLOG_EXTRA_MAX <= QLOG_RECORD_MAX, "record max");

static bool qlog_clean(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return false;
    return true;
}

int qlog_encode(const struct qlog_rec *r, unsigned char *out, size_t cap, size_t *len)
{
    size_t tl = strnlen(r->text, sizeof r->text), xl = strnlen(r->extra, sizeof r->extra);
    size_t el = strnlen(r->enhanced, sizeof r->enhanced);

    if (r->type < QLOG_DELIVERED || r->type > QLOG_TYPE_MAX || !id_valid(r->id, strlen(r->id)) ||
        tl > QLOG_TEXT_MAX || xl > QLOG_EXTRA_MAX || el >= sizeof r->enhanced ||
        !qlog_clean(r->text, tl) || !qlog_clean(r->extra, xl) || !qlog_clean(r->enhanced, el)) {
        errno = EINVAL;
        return -1;
    }
    size_t total = QLOG_FIXED + tl + xl;
    *len = total;
    if (cap < total) {
        errno = ENOSPC;
        return -1;
    }
    unsigned char *p = out;
    memcpy(p, qlog_magic, 4);
    bytes_put32(p + 4, (uint32_t)total);
    p[8] = (unsigned char)r->type;
    memcpy(p + 9, r->id, ID_LEN);
    p += 9 + ID_LEN;
    bytes_put32(p, r->rcpt);
    bytes_put32(p + 4, r->attempts);
    bytes_put64(p + 8, (uint64_t)r->time);
    p[16] = r->remote ? 1 : 0;
    memset(p + 17, 0, 8);
    memcpy(p + 17, r->enhanced, el);
    p += 25;
    p[0] = (unsigned char)(tl >> 8);
    p[1] = (unsigned char)tl;
    memcpy(p + 2, r->text, tl);
    p += 2 + tl;
    p[0] = (unsigned char)(xl >> 8);
    p[1] = (unsigned char)xl;
    memcpy(p + 2, r->extra, xl);
    p += 2 + xl;
    bytes_put32(p, crc_32(out, total - 4));
    return 0;
}

enum qlog_decode_status qlog_decode(const unsigned char *in, size_t len, struct qlog_rec *r,
                                    size_t *used)
{
    if (len < QLOG_HEADER)
        return memcmp(in, qlog_magic, len < 4 ? len : 4) == 0 ? QLOG_SHORT : QLOG_CORRUPT;
    if (memcmp(in, qlog_magic, 4) != 0)
        return QLOG_CORRUPT;
    size_t total = bytes_get32(in + 4);
    if (total < QLOG_FIXED || total > QLOG_FIXED + QLOG_TEXT_MAX + QLOG_EXTRA_MAX)
        return QLOG_CORRUPT;
    if (len < total)
        return QLOG_SHORT;
    if (bytes_get32(in + total - 4) != crc_32(in, total - 4))
        return QLOG_CORRUPT;
    memset(r, 0, sizeof *r);
    const unsigned char *p = in + 8;
    if (p[0] < QLOG_DELIVERED || p[0] > QLOG_TYPE_MAX || !id_valid((const char *)p + 1, ID_LEN))
        return QLOG_CORRUPT;
    r->type = (enum qlog_type)p[0];
    memcpy(r->id, p + 1, ID_LEN);
    p += 1 + ID_LEN;
    r->rcpt = bytes_get32(p);
    r->attempts = bytes_get32(p + 4);
    r->time = (int64_t)bytes_get64(p + 8);
    if (p[16] > 1)
        return QLOG_CORRUPT;
    r->remote = p[16] == 1;
    memcpy(r->enhanced, p + 17, 8);
    size_t el = strnlen(r->enhanced, 8);
    if (el == 8 || !qlog_clean(r->enhanced, el))
        return QLOG_CORRUPT;
    for (size_t i = el; i < 8; i++)
        if (p[17 + i] != 0)
            return QLOG_CORRUPT;
    p += 25;
    size_t tl = (size_t)p[0] << 8 | p[1];
    if (tl > QLOG_TEXT_MAX || QLOG_FIXED + tl > total)
        return QLOG_CORRUPT;
    memcpy(r->text, p + 2, tl);
    p += 2 + tl;
    size_t xl = (size_t)p[0] << 8 | p[1];
    if (xl > QLOG_EXTRA_MAX || QLOG_FIXED + tl + xl != total)
        return QLOG_CORRUPT;
    memcpy(r->extra, p + 2, xl);
    if (!qlog_clean(r->text, tl) || !qlog_clean(r->extra, xl))
        return QLOG_CORRUPT;
    *used = total;
    return QLOG_OK;
}
