/* libFuzzer target for util/json (RFC 8259). Checks, beyond memory safety: every getter answers
 * JSON_INVALID exactly when json_object_valid refuses the text; a string found is
 * NUL-terminated within its buffer, holds no NUL, is well-formed UTF-8, and json_has_string
 * agrees it is there; a failed json_get_string leaves "" behind. The first byte picks the
 * output capacity and the member name, so TOO_LONG and the other names are reached too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

/* RFC 3629 §4, written separately from json.c's own check so one bug cannot hide another. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        unsigned long cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

static const char *const names[] = {"a", "alg", "kid", "aud", "exp", "", "\xc3\xa9", "sub"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 8192)
        return 0;
    size_t outcap = data[0] >> 3;
    const char *name = names[data[0] & 7];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    bool valid = json_object_valid(text, len);

    char *out = malloc(outcap ? outcap : 1);
    check(out != NULL);
    memset(out, 'Z', outcap);
    enum json_get r = json_get_string(text, len, name, out, outcap);
    check((r == JSON_INVALID) == !valid);
    if (r == JSON_FOUND) {
        size_t n = strnlen(out, outcap);
        check(n < outcap);
        check(utf8_ok((const unsigned char *)out, n));
        check(json_has_string(text, len, name, out) == JSON_FOUND);
    } else if (outcap > 0) {
        check(out[0] == '\0');
    }
    free(out);

    int64_t v = 7;
    r = json_get_int(text, len, name, &v);
    check((r == JSON_INVALID) == !valid);
    if (r != JSON_FOUND)
        check(v == 7);
    /* json_get_ceil finds every integer json_get_int finds, with the same value. */
    int64_t c = 7;
    enum json_get rc = json_get_ceil(text, len, name, &c);
    check((rc == JSON_INVALID) == !valid);
    if (r == JSON_FOUND)
        check(rc == JSON_FOUND && c == v);
    if (rc != JSON_FOUND)
        check(c == 7);

    r = json_has_string(text, len, name, "x");
    check((r == JSON_INVALID) == !valid);
    return 0;
}
