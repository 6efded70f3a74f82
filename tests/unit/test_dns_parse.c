/* Unit tests for dns/dns_parse: MX RDATA decoding (RFC 1035 §3.3.9, wire names per RFC 1035
 * §3.1 with no compression), name checks, the MX set rules of RFC 5321 §5.1 and RFC 7505,
 * and the preference sort with a scripted random source. Hostile rows: J6, J7. */
/* cmocka.h needs these before it, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define R(lit) lit, sizeof(lit) - 1

struct rdata_case {
    const char *name;
    const char *rdata;
    size_t len;
    int ok;
    uint16_t pref;
    const char *want;
};

/* Length octets are written in octal ("\004mail") so that no hex escape swallows the
 * label's first letter. */
// clang-format off
static const struct rdata_case rdata_cases[] = {
    {"mx_simple",                R("\000\012\004mail\007example\003org\000"), 1, 10, "mail.example.org"},
    {"upper_case_lowered",       R("\000\001\004MAIL\003Org\000"), 1, 1, "mail.org"},
    {"rfc7505_root_target",      R("\000\000\000"), 1, 0, ""},
    {"preference_65535",         R("\377\377\001a\000"), 1, 65535, "a"},
    {"hyphen_underscore_digits", R("\001\000\006m-x_01\000"), 1, 256, "m-x_01"},
    {"empty",                    R(""), 0, 0, ""},
    {"preference_only",          R("\000\012"), 0, 0, ""},
    {"truncated_label",          R("\000\001\005ab"), 0, 0, ""},
    {"label_without_root",       R("\000\001\001a"), 0, 0, ""},
    {"trailing_bytes",           R("\000\001\001a\000\000"), 0, 0, ""},
    {"trailing_after_root",      R("\000\001\000\001"), 0, 0, ""},
    {"compressed_pointer",       R("\000\001\300\014"), 0, 0, ""},
    {"pointer_after_label",      R("\000\001\001a\300\002"), 0, 0, ""},
    {"extended_label_0x40",      R("\000\001\101a\000"), 0, 0, ""},
    {"extended_label_0x80",      R("\000\001\201a\000"), 0, 0, ""},
    {"J7_nul_in_label",          R("\000\001\003a\000b\000"), 0, 0, ""},
    {"J7_crlf_in_label",         R("\000\001\004a\r\nb\000"), 0, 0, ""},
    {"J7_space_in_label",        R("\000\001\003a b\000"), 0, 0, ""},
    {"J7_dot_in_label",          R("\000\001\003a.b\000"), 0, 0, ""},
    {"J7_8bit_in_label",         R("\000\001\002\303\251\000"), 0, 0, ""},
    {"J7_del_in_label",          R("\000\001\001\177\000"), 0, 0, ""},
};
// clang-format on

static void test_rdata_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(rdata_cases); i++) {
        const struct rdata_case *c = &rdata_cases[i];
        uint16_t pref = 4242;
        char name[DNS_NAME_MAX + 1];
        memset(name, 'Z', sizeof(name));
        int r = dns_mx_rdata_parse((const unsigned char *)c->rdata, c->len, &pref, name);
        if ((r == 0) != c->ok)
            fail_msg("case %s: got %d", c->name, r);
        assert_string_equal(name, c->want);
        if (c->ok)
            assert_int_equal(pref, c->pref);
    }
}

/* Builds pref 1 and labels of the given lengths, of letters; returns the RDATA length. */
static size_t rdata_build(unsigned char *buf, const size_t *labels, size_t n)
{
    size_t pos = 0;
    buf[pos++] = 0;
    buf[pos++] = 1;
    for (size_t i = 0; i < n; i++) {
        buf[pos++] = (unsigned char)labels[i];
        memset(buf + pos, 'a' + (int)(i % 26), labels[i]);
        pos += labels[i];
    }
    buf[pos++] = 0;
    return pos;
}

static void test_rfc1035_s3_1_name_length_limit(void **state)
{
    (void)state;
    unsigned char buf[600];
    uint16_t pref;
    char name[DNS_NAME_MAX + 1];
    /* 63+63+63+61 label bytes and 5 length octets: exactly 255 octets. */
    static const size_t fits[] = {63, 63, 63, 61};
    size_t len = rdata_build(buf, fits, N_ELEMS(fits));
    assert_int_equal(len, 2 + 255);
    assert_int_equal(dns_mx_rdata_parse(buf, len, &pref, name), 0);
    assert_int_equal(strlen(name), 253);
    /* One more octet is refused. */
    static const size_t over[] = {63, 63, 63, 62};
    len = rdata_build(buf, over, N_ELEMS(over));
    assert_int_equal(dns_mx_rdata_parse(buf, len, &pref, name), -1);
    assert_string_equal(name, "");
    /* Many short labels reach the limit too. */
    static const size_t many[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    len = rdata_build(buf, many, N_ELEMS(many));
    assert_int_equal(dns_mx_rdata_parse(buf, len, &pref, name), -1);
    len = rdata_build(buf, many, N_ELEMS(many) - 1);
    assert_int_equal(dns_mx_rdata_parse(buf, len, &pref, name), 0);
    assert_int_equal(strlen(name), 253);
    /* Labels of 63 bytes pass, 64 (0x40, an extended-label type) do not. */
    static const size_t l63[] = {63};
    len = rdata_build(buf, l63, 1);
    assert_int_equal(dns_mx_rdata_parse(buf, len, &pref, name), 0);
    static const size_t l64[] = {64};
    len = rdata_build(buf, l64, 1);
    assert_int_equal(dns_mx_rdata_parse(buf, len, &pref, name), -1);
}

/* Every prefix of a valid RDATA is refused, and reads stay inside it (ASan checks). */
static void test_rdata_every_truncation(void **state)
{
    (void)state;
    static const char full[] = "\000\012\004mail\007example\003org\000";
    for (size_t len = 0; len < sizeof(full) - 1; len++) {
        unsigned char *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, full, len);
        uint16_t pref;
        char name[DNS_NAME_MAX + 1];
        assert_int_equal(dns_mx_rdata_parse(copy, len, &pref, name), -1);
        free(copy);
    }
}

struct name_case {
    const char *name;
    const char *in;
    int ok;
    const char *want;
};

static const struct name_case name_cases[] = {
    {"lowered", "Example.ORG", 1, "example.org"},
    {"trailing_dot_dropped", "example.org.", 1, "example.org"},
    {"single_label", "localhost", 1, "localhost"},
    {"a_label", "xn--bcher-kva.example", 1, "xn--bcher-kva.example"},
    {"digits_not_a_quad", "192.0.2.1.example", 1, "192.0.2.1.example"},
    {"three_numeric_labels", "1.2.3", 1, "1.2.3"},
    {"empty", "", 0, ""},
    {"root_only", ".", 0, ""},
    {"two_trailing_dots", "a..", 0, ""},
    {"empty_label", "a..b", 0, ""},
    {"leading_dot", ".a", 0, ""},
    {"space", "exa mple.org", 0, ""},
    {"J7_crlf", "a\r\nb.org", 0, ""},
    {"utf8_u_label", "b\303\274cher.example", 0, ""},
    {"address_literal", "[192.0.2.1]", 0, ""},
    {"rfc1123_s2_1_dotted_quad", "192.0.2.1", 0, ""},
    {"rfc1123_s2_1_dotted_quad_dot", "192.0.2.1.", 0, ""},
    {"at_sign", "user@example.org", 0, ""},
};

static void test_name_normalize_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(name_cases); i++) {
        const struct name_case *c = &name_cases[i];
        char out[DNS_NAME_MAX + 1] = "";
        int r = dns_name_normalize(c->in, out);
        if ((r == 0) != c->ok)
            fail_msg("case %s: got %d", c->name, r);
        if (c->ok)
            assert_string_equal(out, c->want);
    }
    char out[DNS_NAME_MAX + 1];
    assert_int_equal(dns_name_normalize(NULL, out), -1);
}

static void test_name_normalize_lengths(void **state)
{
    (void)state;
    char in[300], out[DNS_NAME_MAX + 1];
    /* RFC 1035 §2.3.4: labels of 63 bytes at most. */
    memset(in, 'a', 63);
    in[63] = '\0';
    assert_int_equal(dns_name_normalize(in, out), 0);
    memset(in, 'a', 64);
    in[64] = '\0';
    assert_int_equal(dns_name_normalize(in, out), -1);
    /* 253 text bytes (255 wire octets), with or without a trailing dot; 254 is refused. */
    memset(in, 'a', 253);
    for (size_t i = 63; i < 253; i += 64)
        in[i] = '.';
    in[253] = '\0';
    assert_int_equal(dns_name_normalize(in, out), 0);
    assert_int_equal(strlen(out), 253);
    in[253] = '.';
    in[254] = '\0';
    assert_int_equal(dns_name_normalize(in, out), 0);
    in[253] = 'a';
    assert_int_equal(dns_name_normalize(in, out), -1);
}

/* MX sets, as arrays of RDATA: the rules of RFC 5321 §5.1 and RFC 7505 §3. */
/* An MX RDATA from its preference's low octet and its wire name. */
// clang-format off
#define MX(pref, wire) RR("\000" pref wire)
#define RR(lit) {lit, sizeof(lit) - 1}
// clang-format on
struct rr {
    const char *rdata;
    int len;
};

struct collect_case {
    const char *name;
    struct rr rrs[4];
    size_t n;
    enum dns_status status;
    size_t nhosts;
    const char *host0;
    uint16_t pref0;
};

// clang-format off
static const struct collect_case collect_cases[] = {
    {"two_hosts", {MX("\024", "\003mx2\001t\000"), MX("\012", "\002mx\001t\000")}, 2,
     DNS_OK, 2, "mx2.t", 20},
    {"J6_rfc7505_null_mx", {MX("\000", "\000")}, 1, DNS_NULL_MX, 0, NULL, 0},
    {"rfc7505_root_nonzero_preference_is_no_null_mx", {MX("\012", "\000")}, 1,
     DNS_NOT_FOUND, 0, NULL, 0},
    {"rfc7505_root_beside_host_ignored", {MX("\000", "\000"), MX("\005", "\002mx\001t\000")},
     2, DNS_OK, 1, "mx.t", 5},
    {"rfc1123_s2_1_ip_literal_target_skipped", {MX("\012", "\003192\0010\0012\0011\000")}, 1,
     DNS_NOT_FOUND, 0, NULL, 0},
    {"ip_literal_beside_host",
     {MX("\001", "\003192\0010\0012\0011\000"), MX("\012", "\002mx\001t\000")}, 2,
     DNS_OK, 1, "mx.t", 10},
    {"J7_only_malformed_is_tempfail", {MX("\012", "\003a\r\n\000")}, 1, DNS_TEMPFAIL, 0,
     NULL, 0},
    {"J7_malformed_beside_host_skipped",
     {MX("\001", "\003a\000b\000"), MX("\012", "\002mx\001t\000")}, 2, DNS_OK, 1, "mx.t", 10},
    {"J7_malformed_beside_null_mx", {MX("\000", "\000"), MX("\001", "\300\014")}, 2,
     DNS_TEMPFAIL, 0, NULL, 0},
    {"negative_length", {{"\000\012\002mx\001t\000", -1}}, 1, DNS_TEMPFAIL, 0, NULL, 0},
    {"null_pointer", {{NULL, 8}}, 1, DNS_TEMPFAIL, 0, NULL, 0},
    {"duplicate_keeps_lower_preference",
     {MX("\024", "\002mx\001t\000"), MX("\012", "\002MX\001T\000")}, 2, DNS_OK, 1, "mx.t", 10},
    {"no_records", {{NULL, 0}}, 0, DNS_NOT_FOUND, 0, NULL, 0},
};
// clang-format on

static void test_collect_table(void **state)
{
    (void)state;
    struct dns_host *hosts = calloc(DNS_HOSTS_MAX, sizeof(*hosts));
    assert_non_null(hosts);
    for (size_t i = 0; i < N_ELEMS(collect_cases); i++) {
        const struct collect_case *c = &collect_cases[i];
        const char *rdata[4];
        int lens[4];
        for (size_t k = 0; k < c->n; k++) {
            rdata[k] = c->rrs[k].rdata;
            lens[k] = c->rrs[k].len;
        }
        size_t n = 99;
        enum dns_status st = dns_mx_collect(rdata, lens, c->n, hosts, &n);
        if (st != c->status || n != c->nhosts)
            fail_msg("case %s: status %d hosts %zu", c->name, st, n);
        if (c->host0 != NULL) {
            assert_string_equal(hosts[0].name, c->host0);
            assert_int_equal(hosts[0].preference, c->pref0);
            assert_int_equal(hosts[0].naddrs, 0);
        }
    }
    free(hosts);
}

/* J7: a thousand MX records keep the DNS_HOSTS_MAX most preferred, whatever their order. */
static void test_J7_1000_mx_capped(void **state)
{
    (void)state;
    enum { N = 1000 };
    char **rdata = calloc(N, sizeof(*rdata));
    int *lens = calloc(N, sizeof(*lens));
    struct dns_host *hosts = calloc(DNS_HOSTS_MAX, sizeof(*hosts));
    assert_true(rdata != NULL && lens != NULL && hosts != NULL);
    for (size_t i = 0; i < N; i++) {
        /* Preferences N..1 descending, so the best arrive last. */
        uint16_t pref = (uint16_t)(N - i);
        rdata[i] = malloc(16);
        assert_non_null(rdata[i]);
        rdata[i][0] = (char)(pref >> 8);
        rdata[i][1] = (char)(pref & 0xff);
        rdata[i][2] = 4;
        snprintf(rdata[i] + 3, 6, "m%03zu", i % 1000);
        rdata[i][7] = 0;
        lens[i] = 8;
    }
    size_t n = 0;
    assert_int_equal(dns_mx_collect((const char *const *)rdata, lens, N, hosts, &n), DNS_OK);
    assert_int_equal(n, DNS_HOSTS_MAX);
    int seen[DNS_HOSTS_MAX + 1] = {0};
    for (size_t i = 0; i < n; i++) {
        assert_in_range(hosts[i].preference, 1, DNS_HOSTS_MAX);
        seen[hosts[i].preference]++;
    }
    for (size_t p = 1; p <= DNS_HOSTS_MAX; p++)
        assert_int_equal(seen[p], 1);
    for (size_t i = 0; i < N; i++)
        free(rdata[i]);
    free(rdata);
    free(lens);
    free(hosts);
}

/* A scripted random source: returns picks[] in turn and records each n asked about. */
struct script {
    uint32_t picks[16];
    size_t next;
    uint32_t asked[16];
};

static uint32_t script_rnd(uint32_t n, void *arg)
{
    struct script *s = arg;
    assert_true(s->next < 16);
    s->asked[s->next] = n;
    return s->picks[s->next++];
}

static void hosts_set(struct dns_host *h, const char *const *names, const uint16_t *prefs, size_t n)
{
    memset(h, 0, n * sizeof(*h));
    for (size_t i = 0; i < n; i++) {
        snprintf(h[i].name, sizeof(h[i].name), "%s", names[i]);
        h[i].preference = prefs[i];
    }
}

static void test_rfc5321_s5_1_sort_distinct_preferences(void **state)
{
    (void)state;
    static const char *const names[] = {"c", "a", "d", "b"};
    static const uint16_t prefs[] = {30, 10, 40, 20};
    struct dns_host h[4];
    hosts_set(h, names, prefs, 4);
    struct script s = {{0}, 0, {0}};
    dns_mx_sort(h, 4, script_rnd, &s);
    assert_int_equal(s.next, 0); /* no run of equals, no randomness used */
    static const char *const want[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(h[i].name, want[i]);
        assert_int_equal(h[i].preference, (i + 1) * 10);
    }
}

/* RFC 5321 §5.1: equal preferences are shuffled; over every script of picks each of the
 * 3! orders appears exactly once, and the lower and higher preferences stay in place. */
static void test_rfc5321_s5_1_sort_equal_preferences_shuffled(void **state)
{
    (void)state;
    static const char *const names[] = {"x", "a", "b", "c", "z"};
    static const uint16_t prefs[] = {20, 10, 10, 10, 5};
    char orders[6][4];
    size_t norders = 0;
    for (uint32_t p3 = 0; p3 < 3; p3++)
        for (uint32_t p2 = 0; p2 < 2; p2++) {
            struct dns_host h[5];
            hosts_set(h, names, prefs, 5);
            struct script s = {{p3, p2}, 0, {0}};
            dns_mx_sort(h, 5, script_rnd, &s);
            assert_int_equal(s.next, 2);
            assert_int_equal(s.asked[0], 3);
            assert_int_equal(s.asked[1], 2);
            assert_string_equal(h[0].name, "z");
            assert_string_equal(h[4].name, "x");
            char order[4] = {h[1].name[0], h[2].name[0], h[3].name[0], '\0'};
            for (size_t i = 1; i < 4; i++)
                assert_int_equal(h[i].preference, 10);
            for (size_t k = 0; k < norders; k++)
                assert_string_not_equal(orders[k], order);
            memcpy(orders[norders++], order, sizeof(order));
        }
    assert_int_equal(norders, 6);
}

static void test_sort_out_of_range_random(void **state)
{
    (void)state;
    static const char *const names[] = {"a", "b", "c"};
    static const uint16_t prefs[] = {1, 1, 1};
    struct dns_host h[3];
    hosts_set(h, names, prefs, 3);
    struct script s = {{1000000, 7}, 0, {0}};
    dns_mx_sort(h, 3, script_rnd, &s);
    int seen[3] = {0};
    for (size_t i = 0; i < 3; i++)
        seen[h[i].name[0] - 'a']++;
    assert_int_equal(seen[0] + seen[1] + seen[2], 3);
    assert_true(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
    dns_mx_sort(h, 0, script_rnd, &s);
    dns_mx_sort(h, 1, script_rnd, &s);
    assert_int_equal(s.next, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rdata_table),
        cmocka_unit_test(test_rfc1035_s3_1_name_length_limit),
        cmocka_unit_test(test_rdata_every_truncation),
        cmocka_unit_test(test_name_normalize_table),
        cmocka_unit_test(test_name_normalize_lengths),
        cmocka_unit_test(test_collect_table),
        cmocka_unit_test(test_J7_1000_mx_capped),
        cmocka_unit_test(test_rfc5321_s5_1_sort_distinct_preferences),
        cmocka_unit_test(test_rfc5321_s5_1_sort_equal_preferences_shuffled),
        cmocka_unit_test(test_sort_out_of_range_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
