/* util/json: a strict JSON (RFC 8259) validator and a reader of one object's top-level members,
 * for JWT headers and claim sets (sasl/jwt).
 *
 * Invariants: pure, no allocation; recursion is bounded by JSON_DEPTH_MAX; every getter
 * validates the whole text first, so the member walkers below only ever run over a text known
 * to be well-formed and may read without re-checking bounds. Names and string values are
 * compared after unescaping, so "a" and "\u0061" are the same member name.
 *
 * Where RFC 8259 leaves room, this reader takes the strict side, because a token that two
 * parsers read differently is a token an attacker can aim at one of them: member names must be
 * unique at the top level (§4 says SHOULD), escapes of unpaired surrogates are refused (§8.2),
 * a byte order mark is refused (§8.1), and text must be UTF-8 (§8.1) without overlong forms or
 * encoded surrogates (RFC 3629 §3-§4).
 *
 * Top-level duplicates are found by comparing each name with those before it: quadratic, so
 * the top level holds at most JSON_MEMBERS_MAX members.
 */
#include "util/json.h"

#include <string.h>

struct json_parser {
    const unsigned char *s;
    size_t len;
    size_t pos;
};

static void json_skip_ws(struct json_parser *p)
{
    /* RFC 8259 §2: ws is exactly these four. */
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int json_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at s[0..3] (the caller checked they are in bounds); -1 if any is not hex. */
static long json_hex4(const unsigned char *s)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = json_hexval(s[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Length of the well-formed UTF-8 sequence of two to four bytes at s[i], or 0
 * (RFC 3629 §4: no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t json_utf8_len(const unsigned char *s, size_t len, size_t i)
{
    unsigned char c = s[i];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (len - i < n)
        return 0;
    if (s[i + 1] < lo || s[i + 1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if (s[i + k] < 0x80 || s[i + k] > 0xbf)
            return 0;
    return n;
}

/* RFC 8259 §7: p->pos at the opening quote; on success just past the closing one. */
static bool json_parse_string(struct json_parser *p)
{
    p->pos++;
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c >= 0x80) {
            size_t n = json_utf8_len(p->s, p->len, p->pos);
            if (n == 0)
                return false;
            p->pos += n;
            continue;
        }
        if (c != '\\') {
            p->pos++;
            continue;
        }
        if (p->len - p->pos < 2)
            return false;
        c = p->s[p->pos + 1];
        if (c != 'u') {
            if (c == '\0' || strchr("\"\\/bfnrt", c) == NULL)
                return false;
            p->pos += 2;
            continue;
        }
        if (p->len - p->pos < 6)
            return false;
        long cp = json_hex4(p->s + p->pos + 2);
        if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff))
            return false;
        p->pos += 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            /* §7: a character outside the BMP is a high surrogate escape followed by a low
             * one; either alone names no character (§8.2). */
            if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                return false;
            long low = json_hex4(p->s + p->pos + 2);
            if (low < 0xdc00 || low > 0xdfff)
                return false;
            p->pos += 6;
        }
    }
    return false;
}

static size_t json_digits(struct json_parser *p)
{
    size_t start = p->pos;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
        p->pos++;
    return p->pos - start;
}

/* RFC 8259 §6: [ minus ] int [ frac ] [ exp ], int without leading zeros. */
static bool json_parse_number(struct json_parser *p)
{
    if (p->s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len)
        return false;
    if (p->s[p->pos] == '0')
        p->pos++;
    else if (json_digits(p) == 0)
        return false;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        if (json_digits(p) == 0)
            return false;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (json_digits(p) == 0)
            return false;
    }
    return true;
}

static bool json_parse_literal(struct json_parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return false;
    p->pos += n;
    return true;
}

/* Yields the bytes of a valid string's value, escapes decoded to UTF-8, one at a time. */
struct json_unescaper {
    const unsigned char *s;
    size_t pos; /* in s, inside the string */
    unsigned char buf[4];
    size_t bpos, blen;
};

static void json_unescaper_init(struct json_unescaper *u, const unsigned char *s, size_t quote)
{
    u->s = s;
    u->pos = quote + 1;
    u->bpos = 0;
    u->blen = 0;
}

static size_t json_utf8_encode(unsigned long cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* False at the closing quote. The string was validated, so every read is in bounds. */
static bool json_unescape_next(struct json_unescaper *u, unsigned char *out)
{
    if (u->bpos < u->blen) {
        *out = u->buf[u->bpos++];
        return true;
    }
    unsigned char c = u->s[u->pos];
    if (c == '"')
        return false;
    if (c != '\\') {
        u->pos++;
        *out = c;
        return true;
    }
    c = u->s[u->pos + 1];
    u->pos += 2;
    unsigned long cp;
    switch (c) {
    case 'b':
        cp = '\b';
        break;
    case 'f':
        cp = '\f';
        break;
    case 'n':
        cp = '\n';
        break;
    case 'r':
        cp = '\r';
        break;
    case 't':
        cp = '\t';
        break;
    case 'u':
        cp = (unsigned long)json_hex4(u->s + u->pos);
        u->pos += 4;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            unsigned long low = (unsigned long)json_hex4(u->s + u->pos + 2);
            u->pos += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        }
        break;
    default: /* '"', '\\' and '/' stand for themselves */
        cp = c;
        break;
    }
    u->blen = json_utf8_encode(cp, u->buf);
    u->bpos = 1;
    *out = u->buf[0];
    return true;
}

/* The valid strings with opening quotes at a and b have equal values. */
static bool json_strings_equal(const unsigned char *s, size_t a, size_t b)
{
    struct json_unescaper ua, ub;
    json_unescaper_init(&ua, s, a);
    json_unescaper_init(&ub, s, b);
    for (;;) {
        unsigned char ca = 0, cb = 0;
        bool more_a = json_unescape_next(&ua, &ca);
        bool more_b = json_unescape_next(&ub, &cb);
        if (more_a != more_b)
            return false;
        if (!more_a)
            return true;
        if (ca != cb)
            return false;
    }
}

/* The valid string with its opening quote at quote has the value bytes (a C string). */
static bool json_string_is(const unsigned char *s, size_t quote, const char *bytes)
{
    struct json_unescaper u;
    json_unescaper_init(&u, s, quote);
    size_t i = 0;
    unsigned char c;
    while (json_unescape_next(&u, &c)) {
        if (bytes[i] == '\0' || (unsigned char)bytes[i] != c)
            return false;
        i++;
    }
    return bytes[i] == '\0';
}

static bool json_parse_value(struct json_parser *p, int depth);

/* The top-level member names read so far, by the position of their opening quotes. */
struct json_names {
    size_t quote[JSON_MEMBERS_MAX];
    size_t n;
};

/* Records the top-level name at quote; false when it was seen before (RFC 8259 §4) or when
 * there are too many to check. */
static bool json_names_add(struct json_names *names, const unsigned char *s, size_t quote)
{
    if (names->n == JSON_MEMBERS_MAX)
        return false;
    for (size_t i = 0; i < names->n; i++)
        if (json_strings_equal(s, names->quote[i], quote))
            return false;
    names->quote[names->n++] = quote;
    return true;
}

/* After a member or an element: the container's close (1), or a comma and the space after
 * it (0: another follows); anything else is an error (-1). */
static int json_next_item(struct json_parser *p, unsigned char close)
{
    json_skip_ws(p);
    if (p->pos >= p->len)
        return -1;
    if (p->s[p->pos] == close) {
        p->pos++;
        return 1;
    }
    if (p->s[p->pos] != ',')
        return -1;
    p->pos++;
    json_skip_ws(p);
    return 0;
}

/* RFC 8259 §4. depth counts this object; names is non-NULL for the top-level object only. */
static bool json_parse_object(struct json_parser *p, int depth, struct json_names *names)
{
    if (depth > JSON_DEPTH_MAX)
        return false;
    p->pos++;
    json_skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return true;
    }
    for (;;) {
        if (p->pos >= p->len || p->s[p->pos] != '"')
            return false;
        size_t name = p->pos;
        if (!json_parse_string(p))
            return false;
        if (names != NULL && !json_names_add(names, p->s, name))
            return false;
        json_skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':')
            return false;
        p->pos++;
        json_skip_ws(p);
        if (!json_parse_value(p, depth))
            return false;
        int next = json_next_item(p, '}');
        if (next != 0)
            return next > 0;
    }
}

/* RFC 8259 §5. depth counts this array. */
static bool json_parse_array(struct json_parser *p, int depth)
{
    if (depth > JSON_DEPTH_MAX)
        return false;
    p->pos++;
    json_skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return true;
    }
    for (;;) {
        if (!json_parse_value(p, depth))
            return false;
        int next = json_next_item(p, ']');
        if (next != 0)
            return next > 0;
    }
}

/* RFC 8259 §3. depth is that of the container holding the value. */
static bool json_parse_value(struct json_parser *p, int depth)
{
    if (p->pos >= p->len)
        return false;
    switch (p->s[p->pos]) {
    case '{':
        return json_parse_object(p, depth + 1, NULL);
    case '[':
        return json_parse_array(p, depth + 1);
    case '"':
        return json_parse_string(p);
    case 't':
        return json_parse_literal(p, "true");
    case 'f':
        return json_parse_literal(p, "false");
    case 'n':
        return json_parse_literal(p, "null");
    default:
        if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
            return json_parse_number(p);
        return false;
    }
}

bool json_object_valid(const char *text, size_t len)
{
    if (text == NULL)
        return false;
    struct json_parser p = {(const unsigned char *)text, len, 0};
    json_skip_ws(&p);
    if (p.pos >= p.len || p.s[p.pos] != '{')
        return false;
    struct json_names names;
    names.n = 0;
    if (!json_parse_object(&p, 1, &names))
        return false;
    json_skip_ws(&p);
    return p.pos == p.len;
}

/* Validates text, then finds the top-level member called name; *value is its value's first
 * byte. */
static enum json_get json_find(const char *text, size_t len, const char *name, size_t *value)
{
    if (!json_object_valid(text, len))
        return JSON_INVALID;
    struct json_parser p = {(const unsigned char *)text, len, 0};
    json_skip_ws(&p);
    p.pos++; /* '{' */
    json_skip_ws(&p);
    while (p.s[p.pos] == '"') {
        size_t quote = p.pos;
        json_parse_string(&p);
        json_skip_ws(&p);
        p.pos++; /* ':' */
        json_skip_ws(&p);
        if (json_string_is(p.s, quote, name)) {
            *value = p.pos;
            return JSON_FOUND;
        }
        json_parse_value(&p, 1);
        json_skip_ws(&p);
        if (p.s[p.pos] == '}')
            break;
        p.pos++; /* ',' */
        json_skip_ws(&p);
    }
    return JSON_MISSING;
}

enum json_get json_get_string(const char *text, size_t len, const char *name, char *out,
                              size_t outlen)
{
    if (out != NULL && outlen > 0)
        out[0] = '\0';
    size_t value = 0;
    enum json_get r = json_find(text, len, name, &value);
    if (r != JSON_FOUND)
        return r;
    const unsigned char *s = (const unsigned char *)text;
    if (s[value] != '"')
        return JSON_WRONG_TYPE;
    /* One pass to measure and to refuse NUL (which no C string can carry), one to copy, so
     * out is never left holding a prefix. */
    struct json_unescaper u;
    json_unescaper_init(&u, s, value);
    size_t n = 0;
    unsigned char c;
    while (json_unescape_next(&u, &c)) {
        if (c == '\0')
            return JSON_WRONG_TYPE;
        n++;
    }
    if (out == NULL || n >= outlen)
        return JSON_TOO_LONG;
    json_unescaper_init(&u, s, value);
    n = 0;
    while (json_unescape_next(&u, &c))
        out[n++] = (char)c;
    out[n] = '\0';
    return JSON_FOUND;
}

enum json_get json_get_int(const char *text, size_t len, const char *name, int64_t *out)
{
    size_t value = 0;
    enum json_get r = json_find(text, len, name, &value);
    if (r != JSON_FOUND)
        return r;
    const unsigned char *s = (const unsigned char *)text;
    size_t i = value;
    bool negative = s[i] == '-';
    if (negative)
        i++;
    if (s[i] < '0' || s[i] > '9')
        return JSON_WRONG_TYPE;
    /* The magnitude of INT64_MIN is one more than INT64_MAX. */
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (limit - d) / 10)
            return JSON_WRONG_TYPE;
        v = v * 10 + d;
    }
    if (i < len && (s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
        return JSON_WRONG_TYPE;
    if (negative)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return JSON_FOUND;
}

/* The longest non-integer number read: longer ones are refused rather than cut. */
#define JSON_NUMBER_MAX 64
#define JSON_CEIL_MAX 1000000000000000000ULL /* 1e18: far past any date, far within int64 */
#define JSON_EXP_CAP 100000                    /* beyond this an exponent says all or nothing */

/* A number in RFC 8259 §6 syntax (s, n octets, known valid), rounded up from its decimal
 * digits themselves: going through a double would round 1700000000.0000001 down first. */
static enum json_get json_ceil_decimal(const unsigned char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool negative = s[0] == '-';
    if (negative)
        i++;
    unsigned char digits[JSON_NUMBER_MAX];
    size_t nd = 0, nint = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, nint++)
        digits[nd++] = s[i];
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits[nd++] = s[i];
    long exp = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        bool eneg = s[++i] == '-';
        if (s[i] == '-' || s[i] == '+')
            i++;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            if (exp < JSON_EXP_CAP)
                exp = exp * 10 + (s[i] - '0');
        if (eneg)
            exp = -exp;
    }
    long point = (long)nint + exp; /* how many of the digits are before the decimal point */
    uint64_t v = 0;
    bool fraction = false;
    for (size_t k = 0; k < nd; k++) {
        unsigned d = digits[k] - '0';
        if ((long)k >= point)
            fraction = fraction || d != 0;
        else if (v > (JSON_CEIL_MAX - d) / 10)
            return JSON_WRONG_TYPE;
        else
            v = v * 10 + d;
    }
    for (long k = (long)nd; k < point && v != 0; k++) {
        if (v > JSON_CEIL_MAX / 10)
            return JSON_WRONG_TYPE;
        v *= 10;
    }
    /* Up for a positive number with a fraction; a negative one's fraction goes toward 0. */
    *out = negative ? -(int64_t)v : (int64_t)v + (fraction ? 1 : 0);
    return JSON_FOUND;
}

enum json_get json_get_ceil(const char *text, size_t len, const char *name, int64_t *out)
{
    enum json_get r = json_get_int(text, len, name, out);
    if (r != JSON_WRONG_TYPE)
        return r;
    size_t value = 0;
    json_find(text, len, name, &value); /* found: json_get_int said so */
    const unsigned char *s = (const unsigned char *)text;
    size_t n = 0;
    while (value + n < len && (s[value + n] == '-' || s[value + n] == '+' || s[value + n] == '.' ||
                               s[value + n] == 'e' || s[value + n] == 'E' ||
                               (s[value + n] >= '0' && s[value + n] <= '9')))
        n++;
    if (n == 0 || n >= JSON_NUMBER_MAX ||
        !(s[value] == '-' || (s[value] >= '0' && s[value] <= '9')))
        return JSON_WRONG_TYPE;
    return json_ceil_decimal(s + value, n, out);
}

enum json_get json_has_string(const char *text, size_t len, const char *name, const char *value)
{
    size_t v = 0;
    enum json_get r = json_find(text, len, name, &v);
    if (r != JSON_FOUND)
        return r;
    const unsigned char *s = (const unsigned char *)text;
    if (s[v] == '"')
        return json_string_is(s, v, value) ? JSON_FOUND : JSON_MISSING;
    if (s[v] != '[')
        return JSON_WRONG_TYPE;
    struct json_parser p = {s, len, v + 1};
    json_skip_ws(&p);
    while (p.s[p.pos] != ']') {
        if (p.s[p.pos] == '"' && json_string_is(s, p.pos, value))
            return JSON_FOUND;
        json_parse_value(&p, 1);
        json_skip_ws(&p);
        if (p.s[p.pos] == ',') {
            p.pos++;
            json_skip_ws(&p);
        }
    }
    return JSON_MISSING;
}
