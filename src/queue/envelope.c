/* envelope: encode and decode the envelope record of a queue file (DESIGN §4, doc/QUEUE.md).
 * Called by queue/store (write at queue_msg_begin, read in queue_file_read) and by the
 * fuzzer. Pure: bytes in, bytes out; only the decoder allocates (the members of the
 * envelope it returns).
 * Invariants: the encoding is canonical (decode then encode gives the same bytes); no value
 * in it contains CR, LF or NUL, because they arrive from the network (ENVID, ORCPT, AUTH:
 * RFC 3461 §4.2 and §4.4, RFC 4954 §5, HOSTILE-INPUTS B4) and a queue file must never carry
 * a line break or terminator a later reader could trip on; every length is checked against
 * the bytes left before it is used; a CRC-32 over the whole record catches any single-byte
 * change that the structure checks miss. */
#include "queue/envelope.h"

#include <stdlib.h>
#include <string.h>

#include "util/crc.h"

#define ENV_MAGIC "SENV"
#define ENV_VERSION 1u
#define ENV_HEAD 12 /* magic, version, total length */
#define ENV_CRC 4
#define ENV_RCPT_MIN 7 /* smallest recipient: "" address (1 + 4), notify, no ORCPT */
#define ENV_NOTIFY_ALL                                                                             \
    (PROTO_NOTIFY_NEVER | PROTO_NOTIFY_SUCCESS | PROTO_NOTIFY_FAILURE | PROTO_NOTIFY_DELAY)


/* ---- encoding ---- */

/* The writer keeps counting past cap so that one pass yields the size needed. */
struct env_writer {
    unsigned char *out;
    size_t cap;
    size_t pos;
};

static void env_put(struct env_writer *w, const void *p, size_t n)
{
    if (n > 0 && w->pos <= w->cap && n <= w->cap - w->pos)
        memcpy(w->out + w->pos, p, n);
    w->pos += n;
}

static void env_put_u8(struct env_writer *w, unsigned v)
{
    unsigned char b = (unsigned char)v;
    env_put(w, &b, 1);
}

static void env_put_u32(struct env_writer *w, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    env_put(w, b, sizeof b);
}

static void env_put_u64(struct env_writer *w, uint64_t v)
{
    env_put_u32(w, (uint32_t)(v >> 32));
    env_put_u32(w, (uint32_t)v);
}

static bool env_value_ok(const char *s, size_t n)
{
    return memchr(s, '\r', n) == NULL && memchr(s, '\n', n) == NULL;
}

/* A NULL string is encoded as absent; required says whether that is allowed. */
static enum queue_envelope_status env_put_str(struct env_writer *w, const char *s, bool required)
{
    if (s == NULL) {
        if (required)
            return QUEUE_ENVELOPE_BAD_VALUE;
        env_put_u8(w, 0);
        return QUEUE_ENVELOPE_OK;
    }
    /* strnlen: a value as long as the whole encoding is already too big, and NUL cannot be
     * inside a C string, so only CR and LF remain to check. */
    size_t n = strnlen(s, QUEUE_ENVELOPE_MAX + 1);
    if (n > QUEUE_ENVELOPE_MAX)
        return QUEUE_ENVELOPE_TOO_BIG;
    if (!env_value_ok(s, n))
        return QUEUE_ENVELOPE_BAD_VALUE;
    env_put_u8(w, 1);
    env_put_u32(w, (uint32_t)n);
    env_put(w, s, n);
    return QUEUE_ENVELOPE_OK;
}

static enum queue_envelope_status env_put_fields(struct env_writer *w,
                                                 const struct queue_envelope *env)
{
    enum queue_envelope_status st;
    if (env->body > PROTO_BODY_BINARYMIME || env->ret > PROTO_RET_HDRS)
        return QUEUE_ENVELOPE_BAD_VALUE;
    if (env->nrcpts > QUEUE_RCPTS_MAX)
        return QUEUE_ENVELOPE_TOO_BIG;
    if (env->nrcpts > 0 && env->rcpts == NULL)
        return QUEUE_ENVELOPE_BAD_VALUE;
    if ((st = env_put_str(w, env->sender, true)) != QUEUE_ENVELOPE_OK)
        return st;
    env_put_u8(w, (unsigned)env->body);
    env_put_u8(w, env->smtputf8 ? 1 : 0);
    env_put_u8(w, (unsigned)env->ret);
    const char *opt[] = {env->envid, env->auth, env->helo, env->client_addr, env->listener};
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++)
        if ((st = env_put_str(w, opt[i], false)) != QUEUE_ENVELOPE_OK)
            return st;
    env_put_u64(w, (uint64_t)env->arrival);
    env_put_u32(w, (uint32_t)env->nrcpts);
    for (size_t i = 0; i < env->nrcpts; i++) {
        const struct queue_rcpt *r = &env->rcpts[i];
        if ((r->notify & ~(unsigned)ENV_NOTIFY_ALL) != 0)
            return QUEUE_ENVELOPE_BAD_VALUE;
        if ((st = env_put_str(w, r->addr, true)) != QUEUE_ENVELOPE_OK)
            return st;
        env_put_u8(w, r->notify);
        if ((st = env_put_str(w, r->orcpt, false)) != QUEUE_ENVELOPE_OK)
            return st;
        if (w->pos > QUEUE_ENVELOPE_MAX)
            return QUEUE_ENVELOPE_TOO_BIG;
    }
    return QUEUE_ENVELOPE_OK;
}

enum queue_envelope_status queue_envelope_encode(const struct queue_envelope *env,
                                                 unsigned char *out, size_t cap, size_t *len)
{
    struct env_writer w = {.out = out, .cap = out == NULL ? 0 : cap, .pos = 0};
    env_put(&w, ENV_MAGIC, 4);
    env_put_u32(&w, ENV_VERSION);
    env_put_u32(&w, 0); /* total length, patched below once known */
    enum queue_envelope_status st = env_put_fields(&w, env);
    if (st != QUEUE_ENVELOPE_OK)
        return st;
    size_t total = w.pos + ENV_CRC;
    if (total > QUEUE_ENVELOPE_MAX)
        return QUEUE_ENVELOPE_TOO_BIG;
    *len = total;
    if (total > w.cap)
        return QUEUE_ENVELOPE_SPACE;
    w.pos = 8;
    env_put_u32(&w, (uint32_t)total);
    w.pos = total - ENV_CRC;
    env_put_u32(&w, crc_32(out, total - ENV_CRC));
    return QUEUE_ENVELOPE_OK;
}

/* ---- decoding ---- */

struct env_reader {
    const unsigned char *in;
    size_t len;
    size_t pos;
};

static bool env_get(struct env_reader *r, void *p, size_t n)
{
    if (n > r->len - r->pos)
        return false;
    memcpy(p, r->in + r->pos, n);
    r->pos += n;
    return true;
}

static bool env_get_u8(struct env_reader *r, unsigned *v)
{
    unsigned char b;
    if (!env_get(r, &b, 1))
        return false;
    *v = b;
    return true;
}

static bool env_get_u32(struct env_reader *r, uint32_t *v)
{
    unsigned char b[4];
    if (!env_get(r, b, sizeof b))
        return false;
    *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return true;
}

static bool env_get_u64(struct env_reader *r, uint64_t *v)
{
    uint32_t hi, lo;
    if (!env_get_u32(r, &hi) || !env_get_u32(r, &lo))
        return false;
    *v = (uint64_t)hi << 32 | lo;
    return true;
}

static enum queue_envelope_status env_get_str(struct env_reader *r, char **s, bool required)
{
    unsigned present;
    uint32_t n;
    if (!env_get_u8(r, &present) || present > 1 || (required && present == 0))
        return QUEUE_ENVELOPE_CORRUPT;
    if (present == 0)
        return QUEUE_ENVELOPE_OK;
    if (!env_get_u32(r, &n) || n > r->len - r->pos)
        return QUEUE_ENVELOPE_CORRUPT;
    const char *p = (const char *)r->in + r->pos;
    if (memchr(p, '\0', n) != NULL || !env_value_ok(p, n))
        return QUEUE_ENVELOPE_CORRUPT;
    *s = malloc((size_t)n + 1);
    if (*s == NULL)
        return QUEUE_ENVELOPE_NOMEM;
    memcpy(*s, p, n);
    (*s)[n] = '\0';
    r->pos += n;
    return QUEUE_ENVELOPE_OK;
}

static enum queue_envelope_status env_get_fields(struct env_reader *r, struct queue_envelope *env)
{
    enum queue_envelope_status st;
    unsigned body, utf8, ret;
    uint64_t arrival;
    uint32_t n;
    if ((st = env_get_str(r, &env->sender, true)) != QUEUE_ENVELOPE_OK)
        return st;
    if (!env_get_u8(r, &body) || !env_get_u8(r, &utf8) || !env_get_u8(r, &ret))
        return QUEUE_ENVELOPE_CORRUPT;
    if (body > PROTO_BODY_BINARYMIME || utf8 > 1 || ret > PROTO_RET_HDRS)
        return QUEUE_ENVELOPE_CORRUPT;
    env->body = (enum proto_body)body;
    env->smtputf8 = utf8 == 1;
    env->ret = (enum proto_ret)ret;
    char **opt[] = {&env->envid, &env->auth, &env->helo, &env->client_addr, &env->listener};
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++)
        if ((st = env_get_str(r, opt[i], false)) != QUEUE_ENVELOPE_OK)
            return st;
    if (!env_get_u64(r, &arrival) || !env_get_u32(r, &n))
        return QUEUE_ENVELOPE_CORRUPT;
    env->arrival = (int64_t)arrival;
    /* Bound the allocation by what the bytes left could possibly describe. */
    if (n > QUEUE_RCPTS_MAX || (size_t)n > (r->len - r->pos) / ENV_RCPT_MIN)
        return QUEUE_ENVELOPE_CORRUPT;
    if (n > 0) {
        env->rcpts = calloc(n, sizeof *env->rcpts);
        if (env->rcpts == NULL)
            return QUEUE_ENVELOPE_NOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct queue_rcpt *rc = &env->rcpts[i];
        unsigned notify;
        env->nrcpts = (size_t)i + 1; /* so that queue_envelope_free sees what was filled */
        if ((st = env_get_str(r, &rc->addr, true)) != QUEUE_ENVELOPE_OK)
            return st;
        if (!env_get_u8(r, &notify) || (notify & ~(unsigned)ENV_NOTIFY_ALL) != 0)
            return QUEUE_ENVELOPE_CORRUPT;
        rc->notify = notify;
        if ((st = env_get_str(r, &rc->orcpt, false)) != QUEUE_ENVELOPE_OK)
            return st;
    }
    return r->pos == r->len ? QUEUE_ENVELOPE_OK : QUEUE_ENVELOPE_CORRUPT;
}

enum queue_envelope_status queue_envelope_decode(const unsigned char *in, size_t len,
                                                 struct queue_envelope *env)
{
    memset(env, 0, sizeof *env);
    if (len < ENV_HEAD + ENV_CRC || len > QUEUE_ENVELOPE_MAX)
        return len > QUEUE_ENVELOPE_MAX ? QUEUE_ENVELOPE_TOO_BIG : QUEUE_ENVELOPE_CORRUPT;
    struct env_reader crc = {.in = in + len - ENV_CRC, .len = ENV_CRC, .pos = 0};
    struct env_reader r = {.in = in, .len = len - ENV_CRC, .pos = 4};
    uint32_t version, total, sum;
    if (memcmp(in, ENV_MAGIC, 4) != 0 || !env_get_u32(&r, &version) || version != ENV_VERSION ||
        !env_get_u32(&r, &total) || total != len || !env_get_u32(&crc, &sum) ||
        sum != crc_32(in, len - ENV_CRC))
        return QUEUE_ENVELOPE_CORRUPT;
    enum queue_envelope_status st = env_get_fields(&r, env);
    if (st != QUEUE_ENVELOPE_OK)
        queue_envelope_free(env);
    return st;
}

void queue_envelope_free(struct queue_envelope *env)
{
    if (env == NULL)
        return;
    for (size_t i = 0; env->rcpts != NULL && i < env->nrcpts; i++) {
        free(env->rcpts[i].addr);
        free(env->rcpts[i].orcpt);
    }
    free(env->rcpts);
    free(env->sender);
    free(env->envid);
    free(env->auth);
    free(env->helo);
    free(env->client_addr);
    free(env->listener);
    memset(env, 0, sizeof *env);
}
