/* libFuzzer target for the SASL message parsers: sasl/plain (RFC 4616 §2, LOGIN, saslname),
 * sasl/bearer (RFC 7628 §3.1, XOAUTH2), sasl/scram (RFC 5802 §7) with fixed credentials, and
 * sasl/saslprep (RFC 4013: a prepared string is non-empty, holds no ASCII control, prepares
 * to itself again, and a stored preparation agrees with the query one).
 * Checks, beyond memory safety: outputs are NUL-terminated within their buffers, accepted
 * identities hold no control byte, refused ones leave empty outputs, and a SCRAM exchange
 * never accepts a proof it was not given (the fuzzer does not know the password). The input
 * is fed whole to every parser, and also split at its first '\n' into a SCRAM client-first
 * and client-final. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stringprep.h>

#include "sasl/bearer.h"
#include "sasl/plain.h"
#include "sasl/saslprep.h"
#include "sasl/scram.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool identity_clean(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static void fuzz_saslprep(const uint8_t *data, size_t size)
{
    char q[1024], st[1024], again[1024];
    size_t qn, sn, an;
    int qr = sasl_saslprep((const char *)data, size, SASL_PREP_QUERY, q, sizeof q, &qn);
    if (qr != 0) {
        check(qn == 0 && q[0] == '\0');
        return;
    }
    check(qn > 0 && qn == strlen(q) && identity_clean(q));
    check(sasl_saslprep(q, qn, SASL_PREP_QUERY, again, sizeof again, &an) == 0);
    check(an == qn && memcmp(again, q, qn) == 0);
    if (sasl_saslprep((const char *)data, size, SASL_PREP_STORED, st, sizeof st, &sn) == 0)
        check(sn == qn && memcmp(st, q, qn) == 0);
}

/* saslprep answers printable ASCII itself: libidn must agree, accepting and refusing alike. */
static void fuzz_saslprep_ascii(const uint8_t *data, size_t size)
{
    char mine[1024], idn[1024];
    size_t n;
    if (size >= sizeof idn)
        return;
    for (size_t i = 0; i < size; i++)
        if (data[i] == 0 || data[i] >= 0x80)
            return;
    int r = sasl_saslprep((const char *)data, size, SASL_PREP_QUERY, mine, sizeof mine, &n);
    memcpy(idn, data, size);
    idn[size] = '\0';
    int rc = stringprep(idn, sizeof idn, 0, stringprep_saslprep);
    check((r == 0) == (rc == STRINGPREP_OK && idn[0] != '\0'));
    if (r == 0)
        check(strcmp(mine, idn) == 0);
}

static void fuzz_plain(const uint8_t *data, size_t size)
{
    struct sasl_plain p;
    char out[SASL_PASSWORD_MAX + 1];
    size_t n = 7;

    if (sasl_plain_parse(data, size, &p) == SASL_PLAIN_OK) {
        check(p.authcid[0] != '\0' && p.password_len > 0);
        check(identity_clean(p.authzid) && identity_clean(p.authcid));
        check(strlen(p.password) == p.password_len);
    } else {
        check(p.authcid[0] == '\0' && p.password_len == 0 && p.password[0] == '\0');
    }
    if (sasl_login_field(data, size, out, sizeof(out), &n) == SASL_PLAIN_OK)
        check(n == size && strlen(out) == n);
    else
        check(n == 0 && out[0] == '\0');
    if (sasl_login_user(data, size, out, sizeof(out), &n) == SASL_PLAIN_OK)
        check(n == size && n <= SASL_ID_MAX && identity_clean(out));
    else
        check(n == 0 && out[0] == '\0');
    char name[SASL_ID_MAX + 1];
    if (sasl_saslname_decode((const char *)data, size, name) == SASL_PLAIN_OK)
        check(name[0] != '\0' && identity_clean(name));
    else
        check(name[0] == '\0');
}

static void fuzz_bearer(const uint8_t *data, size_t size)
{
    static struct sasl_bearer b;
    enum sasl_bearer_status st = sasl_oauthbearer_parse(data, size, &b);
    if (st == SASL_BEARER_OK)
        check(b.token_len > 0 && strlen(b.token) == b.token_len && identity_clean(b.authzid));
    else
        check(b.token_len == 0 && b.token[0] == '\0' && b.authzid[0] == '\0');
    st = sasl_xoauth2_parse(data, size, &b);
    if (st == SASL_BEARER_OK)
        check(b.token_len > 0 && strlen(b.token) == b.token_len && b.authzid[0] != '\0' &&
              identity_clean(b.authzid));
    else
        check(b.token_len == 0 && b.token[0] == '\0' && b.authzid[0] == '\0');
}

static const struct sasl_scram_creds *fixed_creds(void)
{
    static struct sasl_scram_creds creds;
    static bool made;
    if (!made) {
        check(sasl_scram_creds_make("pencil", 6, (const uint8_t *)"saltsaltsaltsalt", 16, 4096,
                                    &creds) == 0);
        made = true;
    }
    return &creds;
}

static void fuzz_scram_exchange(bool plus, bool offered, const uint8_t *first, size_t first_len,
                                const uint8_t *final, size_t final_len)
{
    static const uint8_t random[18] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t cb[32] = {1};
    static struct sasl_scram st;
    char out[SCRAM_MSG_MAX];
    size_t n = 0;

    if (sasl_scram_client_first(&st, plus, offered, first, first_len) != SASL_SCRAM_OK) {
        check(sasl_scram_server_first(&st, fixed_creds(), random, sizeof(random), out, sizeof(out),
                                      &n) == SASL_SCRAM_FAIL);
        return;
    }
    check(st.user[0] != '\0' && identity_clean(st.user) && identity_clean(st.authzid));
    check(sasl_scram_server_first(&st, fixed_creds(), random, sizeof(random), out, sizeof(out),
                                  &n) == SASL_SCRAM_OK);
    check(n == strlen(out));
    enum sasl_scram_status s = sasl_scram_client_final(&st, fixed_creds(), cb, sizeof(cb), final,
                                                       final_len, out, sizeof(out), &n);
    check(s != SASL_SCRAM_OK);
    check(n == 0 && out[0] == '\0');
}

static void fuzz_creds(const uint8_t *data, size_t size)
{
    struct sasl_scram_creds c;
    char text[SCRAM_CREDS_TEXT_MAX];
    if (sasl_scram_creds_parse((const char *)data, size, &c) == 0) {
        size_t n = sasl_scram_creds_format(&c, text, sizeof(text));
        check(n == size && memcmp(text, data, size) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char good_first[] = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
    if (size > 16384)
        return 0;
    fuzz_plain(data, size);
    fuzz_saslprep(data, size);
    fuzz_saslprep_ascii(data, size);
    fuzz_bearer(data, size);
    fuzz_creds(data, size);
    /* The whole input as either message, the other fixed and valid. */
    for (int flags = 0; flags < 4; flags++)
        fuzz_scram_exchange(flags & 1, flags & 2, data, size, data, size);
    fuzz_scram_exchange(false, false, (const uint8_t *)good_first, sizeof(good_first) - 1, data,
                        size);
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl != NULL) {
        size_t a = (size_t)(nl - data);
        for (int flags = 0; flags < 4; flags++)
            fuzz_scram_exchange(flags & 1, flags & 2, data, a, nl + 1, size - a - 1);
    }
    return 0;
}
