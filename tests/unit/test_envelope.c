/* Unit tests for queue/envelope: round trips, the size query, refusal of CR/LF (B4) and of
 * out-of-range values by the encoder, and fail-closed decoding: every truncation, every
 * single-byte change, and structurally wrong records that carry a valid checksum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/envelope.h"

/* The same CRC-32 as zlib's, so that a test can forge a valid checksum over bad content
 * and show that the structure checks, not only the checksum, reject it. */
static uint32_t t_crc32(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

static void t_fix_crc(unsigned char *p, size_t n)
{
    uint32_t c = t_crc32(p, n - 4);
    p[n - 4] = (unsigned char)(c >> 24);
    p[n - 3] = (unsigned char)(c >> 16);
    p[n - 2] = (unsigned char)(c >> 8);
    p[n - 1] = (unsigned char)c;
}

static bool t_str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static void t_assert_env_eq(const struct queue_envelope *a, const struct queue_envelope *b)
{
    assert_true(t_str_eq(a->sender, b->sender));
    assert_int_equal(a->body, b->body);
    assert_int_equal(a->smtputf8, b->smtputf8);
    assert_int_equal(a->ret, b->ret);
    assert_true(t_str_eq(a->envid, b->envid));
    assert_true(t_str_eq(a->auth, b->auth));
    assert_true(t_str_eq(a->helo, b->helo));
    assert_true(t_str_eq(a->client_addr, b->client_addr));
    assert_true(t_str_eq(a->listener, b->listener));
    assert_true(a->arrival == b->arrival);
    assert_int_equal(a->nrcpts, b->nrcpts);
    for (size_t i = 0; i < a->nrcpts; i++) {
        assert_true(t_str_eq(a->rcpts[i].addr, b->rcpts[i].addr));
        assert_int_equal(a->rcpts[i].notify, b->rcpts[i].notify);
        assert_true(t_str_eq(a->rcpts[i].orcpt, b->rcpts[i].orcpt));
    }
}

/* Encode into a fresh malloc'd buffer of exactly the size needed. */
static unsigned char *t_encode(const struct queue_envelope *env, size_t *len)
{
    assert_int_equal(queue_envelope_encode(env, NULL, 0, len), QUEUE_ENVELOPE_SPACE);
    unsigned char *buf = malloc(*len);
    assert_non_null(buf);
    size_t len2 = 0;
    assert_int_equal(queue_envelope_encode(env, buf, *len, &len2), QUEUE_ENVELOPE_OK);
    assert_int_equal(len2, *len);
    return buf;
}

static struct queue_rcpt t_rcpts_full[] = {
    {"alice@example.org", PROTO_NOTIFY_SUCCESS | PROTO_NOTIFY_FAILURE, "rfc822;alice@example.org"},
    {"postmaster", 0, NULL},
    {"b\xc3\xbc@\xc3\xa9xample.test", PROTO_NOTIFY_NEVER, "utf-8;b\xc3\xbc@x"},
    {"", PROTO_NOTIFY_DELAY, ""},
};

static struct queue_rcpt t_rcpt_one[] = {{"r", 0, NULL}};

static const struct {
    const char *name;
    struct queue_envelope env;
} roundtrips[] = {
    {"null sender, no recipients, every optional field absent",
     {.sender = "", .body = PROTO_BODY_NONE, .ret = PROTO_RET_NONE}},
    {"every field set",
     {.sender = "bob@example.net",
      .rcpts = t_rcpts_full,
      .nrcpts = 4,
      .body = PROTO_BODY_BINARYMIME,
      .smtputf8 = true,
      .ret = PROTO_RET_HDRS,
      .envid = "QQ314159",
      .auth = "<>",
      .helo = "mail.example.net",
      .client_addr = "2001:db8::1",
      .listener = "submission",
      .arrival = 1700000000}},
    {"empty strings are kept apart from absent ones",
     {.sender = "",
      .rcpts = t_rcpt_one,
      .nrcpts = 1,
      .envid = "",
      .auth = "",
      .helo = "",
      .client_addr = "",
      .listener = ""}},
    {"negative and extreme arrival times",
     {.sender = "x@y", .arrival = INT64_MIN, .body = PROTO_BODY_8BITMIME, .ret = PROTO_RET_FULL}},
    {"largest arrival, 7BIT, utf8 helo bytes are not control bytes",
     {.sender = "x@y",
      .arrival = INT64_MAX,
      .body = PROTO_BODY_7BIT,
      .helo = "h\xc3\xa9llo \t tab",
      .listener = "smtp"}},
};

static void test_envelope_roundtrip_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof roundtrips / sizeof roundtrips[0]; i++) {
        size_t len;
        unsigned char *buf = t_encode(&roundtrips[i].env, &len);
        struct queue_envelope out;
        assert_int_equal(queue_envelope_decode(buf, len, &out), QUEUE_ENVELOPE_OK);
        t_assert_env_eq(&roundtrips[i].env, &out);
        /* Canonical: decoding then encoding again gives the same bytes. */
        size_t len2;
        unsigned char *buf2 = t_encode(&out, &len2);
        assert_int_equal(len, len2);
        assert_memory_equal(buf, buf2, len);
        queue_envelope_free(&out);
        free(buf);
        free(buf2);
    }
}

static void test_envelope_many_recipients_roundtrip(void **state)
{
    (void)state;
    size_t n = 5000;
    struct queue_rcpt *r = calloc(n, sizeof *r);
    char(*addrs)[32] = calloc(n, sizeof *addrs);
    assert_non_null(r);
    assert_non_null(addrs);
    for (size_t i = 0; i < n; i++) {
        snprintf(addrs[i], sizeof addrs[i], "user%zu@example.org", i);
        r[i].addr = addrs[i];
        r[i].notify = (unsigned)(i % 16);
    }
    struct queue_envelope env = {.sender = "s@example.org", .rcpts = r, .nrcpts = n};
    size_t len;
    unsigned char *buf = t_encode(&env, &len);
    struct queue_envelope out;
    assert_int_equal(queue_envelope_decode(buf, len, &out), QUEUE_ENVELOPE_OK);
    t_assert_env_eq(&env, &out);
    queue_envelope_free(&out);
    free(buf);
    free(addrs);
    free(r);
}

static void test_envelope_encode_size_query(void **state)
{
    (void)state;
    const struct queue_envelope *env = &roundtrips[1].env;
    size_t need = 0, len = 0;
    assert_int_equal(queue_envelope_encode(env, NULL, 0, &need), QUEUE_ENVELOPE_SPACE);
    assert_true(need > 12);
    unsigned char *buf = malloc(need);
    assert_non_null(buf);
    assert_int_equal(queue_envelope_encode(env, buf, need - 1, &len), QUEUE_ENVELOPE_SPACE);
    assert_int_equal(len, need);
    assert_int_equal(queue_envelope_encode(env, buf, need, &len), QUEUE_ENVELOPE_OK);
    assert_int_equal(len, need);
    free(buf);
}

/* HOSTILE-INPUTS B4: CR or LF in any value (ENVID, ORCPT, AUTH decode from xtext and may
 * carry them) is refused by the encoder, never stored. */
static void test_envelope_b4_crlf_refused_in_every_field(void **state)
{
    (void)state;
    static const char *const bad[] = {"a\rb", "a\nb", "\r\n", "x\r\nRCPT TO:<evil@x>", "\n"};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        for (int field = 0; field < 8; field++) {
            struct queue_rcpt r = {"ok@example.org", 0, "rfc822;ok@example.org"};
            struct queue_envelope env = {.sender = "s@x",
                                         .rcpts = &r,
                                         .nrcpts = 1,
                                         .envid = "e",
                                         .auth = "a",
                                         .helo = "h",
                                         .client_addr = "192.0.2.1",
                                         .listener = "smtp"};
            char *v = (char *)bad[b];
            char **slots[] = {&env.sender,      &env.envid,    &env.auth, &env.helo,
                              &env.client_addr, &env.listener, &r.addr,   &r.orcpt};
            *slots[field] = v;
            size_t len = 0;
            unsigned char buf[512];
            assert_int_equal(queue_envelope_encode(&env, buf, sizeof buf, &len),
                             QUEUE_ENVELOPE_BAD_VALUE);
            assert_int_equal(queue_envelope_encode(&env, NULL, 0, &len), QUEUE_ENVELOPE_BAD_VALUE);
        }
    }
}

static void test_envelope_encode_refuses_bad_values(void **state)
{
    (void)state;
    struct queue_rcpt r_null = {NULL, 0, NULL};
    struct queue_rcpt r_notify = {"a@b", 0x10, NULL};
    static const struct {
        const char *name;
        struct queue_envelope env;
        enum queue_envelope_status want;
    } cases[] = {
        {"NULL sender", {.sender = NULL}, QUEUE_ENVELOPE_BAD_VALUE},
        {"body out of range", {.sender = "", .body = (enum proto_body)4}, QUEUE_ENVELOPE_BAD_VALUE},
        {"ret out of range", {.sender = "", .ret = (enum proto_ret)3}, QUEUE_ENVELOPE_BAD_VALUE},
        {"recipients without an array", {.sender = "", .nrcpts = 1}, QUEUE_ENVELOPE_BAD_VALUE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        assert_int_equal(queue_envelope_encode(&cases[i].env, NULL, 0, &len), cases[i].want);
    }
    size_t len;
    struct queue_envelope env = {.sender = "", .rcpts = &r_null, .nrcpts = 1};
    assert_int_equal(queue_envelope_encode(&env, NULL, 0, &len), QUEUE_ENVELOPE_BAD_VALUE);
    env.rcpts = &r_notify;
    assert_int_equal(queue_envelope_encode(&env, NULL, 0, &len), QUEUE_ENVELOPE_BAD_VALUE);
}

static void test_envelope_encode_too_big(void **state)
{
    (void)state;
    size_t len;
    struct queue_envelope env = {.sender = ""};
    /* Too many recipients: refused before any of them is looked at. */
    struct queue_rcpt *r = calloc(QUEUE_RCPTS_MAX + 1, sizeof *r);
    assert_non_null(r);
    env.rcpts = r;
    env.nrcpts = QUEUE_RCPTS_MAX + 1;
    assert_int_equal(queue_envelope_encode(&env, NULL, 0, &len), QUEUE_ENVELOPE_TOO_BIG);
    free(r);
    /* One value as large as the whole limit, then two that only together exceed it. */
    char *big = malloc(QUEUE_ENVELOPE_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', QUEUE_ENVELOPE_MAX + 1);
    big[QUEUE_ENVELOPE_MAX + 1] = '\0';
    env = (struct queue_envelope){.sender = big};
    assert_int_equal(queue_envelope_encode(&env, NULL, 0, &len), QUEUE_ENVELOPE_TOO_BIG);
    big[QUEUE_ENVELOPE_MAX / 2] = '\0';
    env = (struct queue_envelope){.sender = big, .helo = big};
    assert_int_equal(queue_envelope_encode(&env, NULL, 0, &len), QUEUE_ENVELOPE_TOO_BIG);
    free(big);
}

static void test_envelope_decode_every_truncation(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof roundtrips / sizeof roundtrips[0]; i++) {
        size_t len;
        unsigned char *buf = t_encode(&roundtrips[i].env, &len);
        for (size_t cut = 0; cut < len; cut++) {
            /* A copy of exactly cut bytes, so ASan sees any read past the end. */
            unsigned char *part = malloc(cut + 1);
            assert_non_null(part);
            memcpy(part, buf, cut);
            struct queue_envelope out;
            assert_int_equal(queue_envelope_decode(part, cut, &out), QUEUE_ENVELOPE_CORRUPT);
            assert_null(out.sender);
            assert_null(out.rcpts);
            free(part);
        }
        unsigned char *longer = malloc(len + 1);
        assert_non_null(longer);
        memcpy(longer, buf, len);
        longer[len] = 0;
        struct queue_envelope out;
        assert_int_equal(queue_envelope_decode(longer, len + 1, &out), QUEUE_ENVELOPE_CORRUPT);
        free(longer);
        free(buf);
    }
}

static void test_envelope_decode_every_byte_flip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof roundtrips / sizeof roundtrips[0]; i++) {
        size_t len;
        unsigned char *buf = t_encode(&roundtrips[i].env, &len);
        for (size_t pos = 0; pos < len; pos++) {
            for (unsigned x = 1; x < 256; x++) {
                buf[pos] ^= (unsigned char)x;
                struct queue_envelope out;
                enum queue_envelope_status st = queue_envelope_decode(buf, len, &out);
                buf[pos] ^= (unsigned char)x;
                if (st != QUEUE_ENVELOPE_CORRUPT)
                    fail_msg("case %zu: flip 0x%02x at %zu decoded as %d", i, x, pos, (int)st);
            }
        }
        free(buf);
    }
}

/* Structure checks with a forged valid checksum. The fixture {sender "s", one recipient
 * "r"} encodes as: 0 "SENV", 4 version, 8 total, 12 sender tag, 13 length, 17 's',
 * 18 body, 19 smtputf8, 20 ret, 21..25 tags of envid auth helo client listener,
 * 26 arrival, 34 nrcpts, 38 addr tag, 39 length, 43 'r', 44 notify, 45 orcpt tag, 46 CRC. */
static void test_envelope_decode_structure_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t off;
        unsigned char bytes[4];
        size_t n;
    } cases[] = {
        {"bad magic", 0, {'X'}, 1},
        {"bad version", 7, {2}, 1},
        {"version 0", 7, {0}, 1},
        {"total length disagrees", 11, {49}, 1},
        {"sender tag 2", 12, {2}, 1},
        {"sender absent", 12, {0}, 1},
        {"sender length past the end", 13, {0, 0, 1, 0}, 4},
        {"sender length huge", 13, {0xFF, 0xFF, 0xFF, 0xFF}, 4},
        {"NUL inside a value", 17, {0}, 1},
        {"CR inside a value", 17, {'\r'}, 1},
        {"LF inside a value", 43, {'\n'}, 1},
        {"body 4", 18, {4}, 1},
        {"smtputf8 2", 19, {2}, 1},
        {"ret 3", 20, {3}, 1},
        {"envid tag 2", 21, {2}, 1},
        {"listener tag present without a length", 25, {1}, 1},
        {"nrcpts huge: refused before allocating", 34, {0x7F, 0xFF, 0xFF, 0xFF}, 4},
        {"nrcpts above the cap", 34, {0, 1, 0x86, 0xA1}, 4},
        {"nrcpts 2 with one recipient", 37, {2}, 1},
        {"nrcpts 0 leaves trailing bytes", 37, {0}, 1},
        {"recipient address absent", 38, {0}, 1},
        {"notify bit out of range", 44, {0x10}, 1},
        {"orcpt tag 3", 45, {3}, 1},
    };
    struct queue_envelope env = {.sender = "s", .rcpts = t_rcpt_one, .nrcpts = 1};
    size_t len;
    unsigned char *good = t_encode(&env, &len);
    assert_int_equal(len, 50);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char buf[50];
        memcpy(buf, good, len);
        memcpy(buf + cases[i].off, cases[i].bytes, cases[i].n);
        t_fix_crc(buf, len);
        struct queue_envelope out;
        if (queue_envelope_decode(buf, len, &out) != QUEUE_ENVELOPE_CORRUPT)
            fail_msg("%s: accepted", cases[i].name);
        assert_null(out.sender);
    }
    /* The untouched fixture with its own checksum recomputed still decodes. */
    t_fix_crc(good, len);
    struct queue_envelope out;
    assert_int_equal(queue_envelope_decode(good, len, &out), QUEUE_ENVELOPE_OK);
    queue_envelope_free(&out);
    free(good);
}

static void test_envelope_decode_over_max_is_too_big(void **state)
{
    (void)state;
    unsigned char *buf = calloc(1, QUEUE_ENVELOPE_MAX + 1);
    assert_non_null(buf);
    struct queue_envelope out;
    assert_int_equal(queue_envelope_decode(buf, QUEUE_ENVELOPE_MAX + 1, &out),
                     QUEUE_ENVELOPE_TOO_BIG);
    free(buf);
}

static void test_envelope_free_twice_is_safe(void **state)
{
    (void)state;
    size_t len;
    unsigned char *buf = t_encode(&roundtrips[1].env, &len);
    struct queue_envelope out;
    assert_int_equal(queue_envelope_decode(buf, len, &out), QUEUE_ENVELOPE_OK);
    queue_envelope_free(&out);
    assert_null(out.sender);
    assert_int_equal(out.nrcpts, 0);
    queue_envelope_free(&out);
    queue_envelope_free(NULL);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_roundtrip_table),
        cmocka_unit_test(test_envelope_many_recipients_roundtrip),
        cmocka_unit_test(test_envelope_encode_size_query),
        cmocka_unit_test(test_envelope_b4_crlf_refused_in_every_field),
        cmocka_unit_test(test_envelope_encode_refuses_bad_values),
        cmocka_unit_test(test_envelope_encode_too_big),
        cmocka_unit_test(test_envelope_decode_every_truncation),
        cmocka_unit_test(test_envelope_decode_every_byte_flip),
        cmocka_unit_test(test_envelope_decode_structure_table),
        cmocka_unit_test(test_envelope_decode_over_max_is_too_big),
        cmocka_unit_test(test_envelope_free_twice_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
