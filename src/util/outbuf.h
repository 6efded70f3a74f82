/* outbuf: a bounded writer for the pure composers (DSNs, control lines): it never writes
 * past cap but keeps counting, so one pass both fills a buffer and, when the buffer is too
 * small, tells the size needed. Pure, header-only. */
#ifndef SLUICE_UTIL_OUTBUF_H
#define SLUICE_UTIL_OUTBUF_H

#include <stddef.h>
#include <string.h>

struct outbuf {
    void *buf;  /* may be NULL when cap is 0 */
    size_t cap;
    size_t pos; /* may run past cap: the bytes that would have been written */
};

static inline void outbuf_put(struct outbuf *o, const void *p, size_t n)
{
    if (n > 0 && o->pos < o->cap) {
        size_t room = o->cap - o->pos;
        memcpy((char *)o->buf + o->pos, p, n < room ? n : room);
    }
    o->pos += n;
}

static inline void outbuf_puts(struct outbuf *o, const char *s)
{
    outbuf_put(o, s, strlen(s));
}

#endif
