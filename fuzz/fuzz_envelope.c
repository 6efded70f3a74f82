/* libFuzzer target for queue/envelope. Two properties:
 * - decode: any bytes (as given, and with length and checksum made to match) either fail, or decode
 * to an envelope that encodes back to exactly the same bytes (the encoding is canonical, so nothing
 * the decoder accepts is lost);
 * - encode: an envelope built from the input's bytes either encodes and decodes back to
 *   the same values, or is refused, and it is refused exactly when a value holds CR or LF
 *   (HOSTILE-INPUTS B4). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/envelope.h"
#include "util/crc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_decode(const uint8_t *data, size_t size)
{
    struct queue_envelope env;
    if (queue_envelope_decode(data, size, &env) != QUEUE_ENVELOPE_OK)
        return;
    size_t len = 0;
    unsigned char *out = malloc(size);
    if (out == NULL)
        abort();
    if (queue_envelope_encode(&env, out, size, &len) != QUEUE_ENVELOPE_OK || len != size ||
        memcmp(out, data, size) != 0)
        abort();
    free(out);
    queue_envelope_free(&env);
}

/* Mutations almost never keep the checksum right, so the decoder's structure checks are
 * also fed the input with its total length and CRC rewritten to match. */
static void fuzz_decode_fixed(const uint8_t *data, size_t size)
{
    if (size < 16)
        return;
    uint8_t *buf = malloc(size);
    if (buf == NULL)
        abort();
    memcpy(buf, data, size);
    uint32_t v = (uint32_t)size;
    for (int k = 0; k < 4; k++)
        buf[8 + k] = (uint8_t)(v >> (24 - 8 * k));
    v = crc_32(buf, size - 4);
    for (int k = 0; k < 4; k++)
        buf[size - 4 + (size_t)k] = (uint8_t)(v >> (24 - 8 * k));
    fuzz_decode(buf, size);
    free(buf);
}

static bool fuzz_str_eq(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* Cut the input at 0xFF bytes into NUL-terminated pieces; piece i feeds field i. */
static void fuzz_encode(const uint8_t *data, size_t size)
{
    enum { NFIELDS = 9 };
    char *copy = malloc(size + 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    copy[size] = '\0';
    char *f[NFIELDS] = {0};
    size_t n = 0;
    char *p = copy;
    while (n < NFIELDS) {
        f[n++] = p;
        char *cut = memchr(p, 0xFF, strlen(p));
        if (cut == NULL)
            break;
        *cut = '\0';
        p = cut + 1;
    }
    bool crlf = false;
    for (size_t i = 0; i < n; i++)
        crlf |= strpbrk(f[i], "\r\n") != NULL;
    unsigned flags = size > 0 ? data[0] : 0;
    struct queue_rcpt r = {.addr = f[6] ? f[6] : "", .notify = flags & 0xF, .orcpt = f[7]};
    struct queue_envelope env = {
        .sender = f[0],
        .envid = f[1],
        .auth = f[2],
        .helo = f[3],
        .client_addr = f[4],
        .listener = f[5],
        .rcpts = &r,
        .nrcpts = f[8] ? 2 : 1,
        .body = (enum proto_body)((flags >> 4) & 3),
        .ret = (enum proto_ret)((flags >> 6) % 3),
        .smtputf8 = (flags & 0x80) != 0,
        .arrival = (int64_t)size * -7,
    };
    struct queue_rcpt two[2] = {r, {.addr = f[8], .notify = 0, .orcpt = NULL}};
    if (f[8] != NULL) {
        env.rcpts = two;
        crlf |= strpbrk(f[8], "\r\n") != NULL;
    }
    size_t len = 0;
    enum queue_envelope_status st = queue_envelope_encode(&env, NULL, 0, &len);
    if (crlf != (st == QUEUE_ENVELOPE_BAD_VALUE) || (!crlf && st != QUEUE_ENVELOPE_SPACE))
        abort();
    if (!crlf) {
        unsigned char *out = malloc(len);
        struct queue_envelope back;
        if (out == NULL || queue_envelope_encode(&env, out, len, &len) != QUEUE_ENVELOPE_OK ||
            queue_envelope_decode(out, len, &back) != QUEUE_ENVELOPE_OK)
            abort();
        if (!fuzz_str_eq(back.sender, env.sender) || !fuzz_str_eq(back.envid, env.envid) ||
            !fuzz_str_eq(back.auth, env.auth) || !fuzz_str_eq(back.helo, env.helo) ||
            !fuzz_str_eq(back.client_addr, env.client_addr) ||
            !fuzz_str_eq(back.listener, env.listener) || back.nrcpts != env.nrcpts ||
            !fuzz_str_eq(back.rcpts[0].addr, env.rcpts[0].addr) ||
            !fuzz_str_eq(back.rcpts[0].orcpt, env.rcpts[0].orcpt) ||
            back.rcpts[0].notify != env.rcpts[0].notify || back.body != env.body ||
            back.ret != env.ret || back.smtputf8 != env.smtputf8 || back.arrival != env.arrival)
            abort();
        queue_envelope_free(&back);
        free(out);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode(data, size);
    fuzz_decode_fixed(data, size);
    fuzz_encode(data, size);
    return 0;
}
