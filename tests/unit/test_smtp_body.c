/* Unit tests for deliver/smtp_body: the outbound encoder, table-driven, each case fed whole,
 * split at every point and byte by byte with the same output; J10 (bare LF and "\n.\n" are
 * never sent as such), RFC 5321 §4.5.2 dot-stuffing, §4.1.1.4 termination, BDAT mode
 * (no stuffing, no terminator), the output bound, and an invariant sweep over generated
 * inputs (no bare CR or LF out, unstuffing gives back the normalised input). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/smtp_body.h"

struct b_case {
    const char *name;
    unsigned flags;
    const char *in;
    size_t len; /* 0: strlen(in) */
    const char *out;
    size_t outlen; /* 0: strlen(out) */
};

#define D SMTP_BODY_DOTS

static const struct b_case b_cases[] = {
    {"empty_data", D, "", 0, ".\r\n", 0},
    {"no_final_crlf_RFC_5321_4_1_1_4", D, "a", 0, "a\r\n.\r\n", 0},
    {"final_crlf", D, "a\r\n", 0, "a\r\n.\r\n", 0},
    {"final_bare_lf", D, "a\n", 0, "a\r\n.\r\n", 0},
    {"final_bare_cr", D, "a\r", 0, "a\r\n.\r\n", 0},
    {"leading_dot_RFC_5321_4_5_2", D, ".a\r\n", 0, "..a\r\n.\r\n", 0},
    {"dot_line", D, "a\r\n.\r\nb\r\n", 0, "a\r\n..\r\nb\r\n.\r\n", 0},
    {"dot_dot_line", D, "..\r\n", 0, "...\r\n.\r\n", 0},
    {"dot_mid_line", D, "a.b\r\n", 0, "a.b\r\n.\r\n", 0},
    {"dot_last_no_crlf", D, "a\r\n.", 0, "a\r\n..\r\n.\r\n", 0},
    {"J10_lf_dot_lf", D, "a\n.\nb", 0, "a\r\n..\r\nb\r\n.\r\n", 0},
    {"J10_crlf_dot_lf", D, "a\r\n.\n", 0, "a\r\n..\r\n.\r\n", 0},
    {"J10_lf_dot_crlf_smuggle", D, "a\n.\r\nMAIL FROM:<x@y>\r\n", 0,
     "a\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n", 0},
    {"J10_cr_dot_cr", D, "a\r.\rb", 0, "a\r\n..\r\nb\r\n.\r\n", 0},
    {"bare_cr_mid", D, "a\rb\r\n", 0, "a\r\nb\r\n.\r\n", 0},
    {"cr_cr_lf", D, "\r\r\n", 0, "\r\n\r\n.\r\n", 0},
    {"lf_lf", D, "\n\n", 0, "\r\n\r\n.\r\n", 0},
    {"lf_cr", D, "\n\r", 0, "\r\n\r\n.\r\n", 0},
    {"eight_bit_nul", D, "\x00\xff\r\n", 4, "\x00\xff\r\n.\r\n", 7},
    {"bdat_empty", 0, "", 0, "", 0},
    {"bdat_no_stuffing_RFC_3030_2", 0, ".a\r\n.\r\n", 0, ".a\r\n.\r\n", 0},
    {"bdat_J10_bare_lf", 0, "a\n.\nb", 0, "a\r\n.\r\nb\r\n", 0},
    {"bdat_final_cr", 0, "a\r", 0, "a\r\n", 0},
    {"bdat_complete", 0, "a\r\n", 0, "a\r\n", 0},
};

/* Feeds in as the pieces given by cut points, checks the bound of each call. */
static size_t b_run(unsigned flags, const unsigned char *in, size_t len, const size_t *cuts,
                    size_t ncuts, unsigned char *out)
{
    struct smtp_body_enc e;
    size_t n = 0, from = 0;
    smtp_body_init(&e, flags);
    for (size_t k = 0; k <= ncuts; k++) {
        size_t to = k < ncuts ? cuts[k] : len;
        size_t w = smtp_body_encode(&e, in + from, to - from, out + n);
        assert_true(w <= SMTP_BODY_OUT_CAP(to - from));
        n += w;
        from = to;
    }
    size_t f = smtp_body_finish(&e, out + n);
    assert_true(f <= SMTP_BODY_FINISH_CAP);
    return n + f;
}

static void b_expect(const struct b_case *c, const unsigned char *out, size_t n)
{
    size_t want = c->outlen ? c->outlen : strlen(c->out);
    if (n != want || memcmp(out, c->out, n) != 0)
        fail_msg("%s: wrong output (%zu bytes, wanted %zu)", c->name, n, want);
}

static void test_body_table_every_split(void **state)
{
    (void)state;
    unsigned char out[256];
    for (size_t k = 0; k < sizeof b_cases / sizeof b_cases[0]; k++) {
        const struct b_case *c = &b_cases[k];
        const unsigned char *in = (const unsigned char *)c->in;
        size_t len = c->len ? c->len : strlen(c->in);

        b_expect(c, out, b_run(c->flags, in, len, NULL, 0, out));
        for (size_t cut = 0; cut <= len; cut++)
            b_expect(c, out, b_run(c->flags, in, len, &cut, 1, out));
        for (size_t a = 0; a <= len; a++)
            for (size_t b = a; b <= len; b++) {
                size_t cuts[2] = {a, b};
                b_expect(c, out, b_run(c->flags, in, len, cuts, 2, out));
            }
        size_t each[64];
        for (size_t i = 0; i < len; i++)
            each[i] = i;
        b_expect(c, out, b_run(c->flags, in, len, each, len, out));
    }
}

/* The worst case of SMTP_BODY_OUT_CAP: a CR held from the last call, then ".", then LFs. */
static void test_body_out_cap_worst_case(void **state)
{
    (void)state;
    struct smtp_body_enc e;
    unsigned char out[64];
    smtp_body_init(&e, SMTP_BODY_DOTS);
    assert_int_equal(smtp_body_encode(&e, (const unsigned char *)"\r", 1, out), 0);
    assert_int_equal(smtp_body_encode(&e, (const unsigned char *)".", 1, out), 4);
    assert_true(4 <= SMTP_BODY_OUT_CAP(1));
    assert_memory_equal(out, "\r\n..", 4);
    assert_int_equal(smtp_body_encode(&e, (const unsigned char *)"\n\n\n", 3, out), 6);
}

/* Generated inputs from an alphabet of the interesting bytes, cut at pseudo-random points:
 * the output never holds CR or LF outside CRLF, no line starts with a lone dot before the
 * terminator, and unstuffing it gives back the input with every line end made CRLF. */
static void test_body_J10_invariants(void **state)
{
    (void)state;
    static const unsigned char alpha[] = {'\r', '\n', '.', 'a', 0, 0xff};
    unsigned char in[24], out[128], norm[64], unstuffed[128];
    uint32_t seed = 12345;

    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(round % 24);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = alpha[(seed >> 16) % sizeof alpha];
        }
        seed = seed * 1103515245u + 12345u;
        size_t cut = len ? (seed >> 16) % (len + 1) : 0;
        size_t n = b_run(SMTP_BODY_DOTS, in, len, &cut, 1, out);

        /* normalised input: bare CR and LF as CRLF, the last line completed */
        size_t m = 0;
        for (size_t i = 0; i < len; i++) {
            if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
                continue;
            if (in[i] == '\r' || in[i] == '\n') {
                norm[m++] = '\r';
                norm[m++] = '\n';
            } else {
                norm[m++] = in[i];
            }
        }
        if (m > 0 && norm[m - 1] != '\n') {
            norm[m++] = '\r';
            norm[m++] = '\n';
        }
        assert_true(n >= 3 && memcmp(out + n - 3, ".\r\n", 3) == 0);
        size_t u = 0;
        bool bol = true;
        for (size_t i = 0; i < n - 3; i++) {
            if (out[i] == '\r')
                assert_true(i + 1 < n && out[i + 1] == '\n');
            if (out[i] == '\n')
                assert_true(i > 0 && out[i - 1] == '\r');
            if (bol && out[i] == '.') {
                assert_true(i + 1 < n - 3 && out[i + 1] == '.');
                i++;
            }
            unstuffed[u++] = out[i];
            bol = out[i] == '\n';
        }
        assert_true(bol);
        assert_int_equal(u, m);
        assert_memory_equal(unstuffed, norm, m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_table_every_split),
        cmocka_unit_test(test_body_out_cap_worst_case),
        cmocka_unit_test(test_body_J10_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
