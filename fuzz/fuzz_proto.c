/* libFuzzer target for smtp/proto. The input is read as a command stream the way the
 * session reads it (line framing, then command splitting, then the argument parser of
 * the verb), and each argument parser also gets the whole input. Checks, beyond memory
 * safety: framing never consumes more than it holds and its lengths agree with the
 * terminator it reports; an argument stays inside its line; accepted values are bounded,
 * NUL-terminated and free of control bytes (HOSTILE-INPUTS B4); an 8-bit MAIL path was
 * declared with SMTPUTF8; SIZE respects the limit; BDAT sizes fit 63 bits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/proto.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static size_t bounded_len(const char *s, size_t cap)
{
    const char *z = memchr(s, '\0', cap);
    check(z != NULL);
    return (size_t)(z - s);
}

static void check_clean(const char *s, size_t cap, size_t max, bool ascii)
{
    size_t n = bounded_len(s, cap);
    check(n <= max);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        check(c >= 0x20 && c != 0x7f);
        check(!ascii || c < 0x80);
    }
}

static void fuzz_mail(const char *arg, size_t len, uint64_t max_size)
{
    struct proto_mail m;
    enum proto_arg_status st = proto_parse_mail(arg, len, max_size, &m);
    check_clean(m.envid, sizeof(m.envid), PROTO_ENVID_MAX, true);
    check_clean(m.auth, sizeof(m.auth), PROTO_AUTH_MAX, false);
    bounded_len(m.path.addr, sizeof(m.path.addr));
    if (st != PROTO_ARG_OK)
        return;
    check(!m.path.utf8 || m.smtputf8);
    check(max_size == 0 || !m.size_given || m.size <= max_size);
    check(m.size_given || m.size == 0);
    check(m.body <= PROTO_BODY_BINARYMIME && m.ret <= PROTO_RET_HDRS);
}

static void fuzz_rcpt(const char *arg, size_t len, bool utf8)
{
    struct proto_rcpt r;
    enum proto_arg_status st = proto_parse_rcpt(arg, len, utf8, &r);
    check_clean(r.orcpt, sizeof(r.orcpt), PROTO_ORCPT_MAX, true);
    bounded_len(r.path.addr, sizeof(r.path.addr));
    if (st != PROTO_ARG_OK)
        return;
    check(!r.path.is_null);
    check(!r.path.utf8 || utf8);
    check(r.notify == 0 || r.notify == PROTO_NOTIFY_NEVER ||
          (r.notify &
           ~(unsigned)(PROTO_NOTIFY_SUCCESS | PROTO_NOTIFY_FAILURE | PROTO_NOTIFY_DELAY)) == 0);
    check(r.orcpt[0] == '\0' || strchr(r.orcpt, ';') != NULL);
}

static void fuzz_bdat(const char *arg, size_t len)
{
    uint64_t size = 7;
    bool last = true;
    if (proto_parse_bdat(arg, len, &size, &last))
        check(size <= INT64_MAX);
    else
        check(size == 0 && !last);
}

static void fuzz_helo(const char *arg, size_t len)
{
    if (!proto_check_helo(arg, len))
        return;
    check(len > 0 && len <= ADDR_DOMAIN_MAX);
    for (size_t i = 0; i < len; i++)
        check((unsigned char)arg[i] > 0x20 && (unsigned char)arg[i] < 0x7f);
}

static void fuzz_line(const char *line, size_t len, uint64_t max_size, bool utf8)
{
    struct proto_command cmd;
    enum proto_cmd_status st = proto_parse_command(line, len, &cmd);
    check(cmd.arg >= line && cmd.arg <= line + len && cmd.arglen <= (size_t)(line + len - cmd.arg));
    if (cmd.arglen > 0)
        check(cmd.arg[0] != ' ' && cmd.arg[cmd.arglen - 1] != ' ');
    if (st != PROTO_CMD_OK) {
        check(cmd.verb == PROTO_VERB_UNKNOWN);
        return;
    }
    check(cmd.verb != PROTO_VERB_UNKNOWN && cmd.verb < PROTO_VERB_COUNT);
    check(memchr(line, '\0', len) == NULL && memchr(line, '\r', len) == NULL);
    switch (cmd.verb) {
    case PROTO_VERB_HELO:
    case PROTO_VERB_EHLO:
        fuzz_helo(cmd.arg, cmd.arglen);
        break;
    case PROTO_VERB_MAIL:
        fuzz_mail(cmd.arg, cmd.arglen, max_size);
        break;
    case PROTO_VERB_RCPT:
        fuzz_rcpt(cmd.arg, cmd.arglen, utf8);
        break;
    case PROTO_VERB_BDAT:
        fuzz_bdat(cmd.arg, cmd.arglen);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* Byte 0: line limit (small ones reach TOO_LONG often); byte 1: size limit and UTF-8. */
    size_t max = data[0] < 8 ? 512 : data[0];
    uint64_t max_size = (uint64_t)(data[1] & 0x7f) * 1000;
    bool utf8 = data[1] & 0x80;
    size_t len = size - 2;
    unsigned char *buf = malloc(len ? len : 1);
    check(buf != NULL);
    memcpy(buf, data + 2, len);

    size_t off = 0;
    while (off < len) {
        size_t linelen = 999, consumed = 999;
        enum proto_line_status st = proto_line_scan(buf + off, len - off, max, &linelen, &consumed);
        check(consumed <= len - off);
        if (st == PROTO_LINE_INCOMPLETE) {
            check(consumed == 0 && len - off <= max);
            check(memchr(buf + off, '\n', len - off) == NULL);
            /* What is left is handed over as a line of its own, in an exact-size copy. */
            char *rest = malloc(len - off);
            check(rest != NULL);
            memcpy(rest, buf + off, len - off);
            fuzz_line(rest, len - off, max_size, utf8);
            free(rest);
            break;
        }
        check(consumed > 0);
        if (st == PROTO_LINE_OK) {
            check(linelen + 2 == consumed && consumed <= max);
            check(buf[off + linelen] == '\r' && buf[off + linelen + 1] == '\n');
            check(memchr(buf + off, '\n', linelen) == NULL);
            fuzz_line((const char *)buf + off, linelen, max_size, utf8);
        } else if (st == PROTO_LINE_BARE_LF) {
            check(linelen + 1 == consumed && consumed <= max);
            check(linelen == 0 || buf[off + linelen - 1] != '\r');
            check(memchr(buf + off, '\n', linelen) == NULL);
        } else {
            check(consumed > max || consumed == len - off);
            check(buf[off + consumed - 1] == '\n' || consumed == len - off);
        }
        off += consumed;
    }

    /* Each parser also sees the raw bytes as an argument. */
    fuzz_mail((const char *)buf, len, max_size);
    fuzz_rcpt((const char *)buf, len, utf8);
    fuzz_bdat((const char *)buf, len);
    fuzz_helo((const char *)buf, len);
    free(buf);
    return 0;
}
