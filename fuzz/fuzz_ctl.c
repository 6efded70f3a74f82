/* libFuzzer target for queue/ctl (the control socket protocol). Each input is one line
 * without its LF, tried as a request and as a reply/submit line. Checks, beyond memory
 * safety: whatever parses formats back to exactly the same line (the parsers accept only
 * the formatters' canonical spelling), and no decoded value holds a control byte
 * (HOSTILE-INPUTS B4). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/ctl.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static void check_value(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        check(*p >= 0x20 && *p != 0x7f);
}

static void check_same(const char *line, size_t len, int rc, const char *out, size_t outlen)
{
    check(rc == 0);
    check(outlen == len + 1 && out[len] == '\n' && memcmp(out, line, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    char out[CTL_LINE_MAX];
    size_t outlen = 0;

    struct ctl_request rq;
    if (ctl_request_parse(line, size, &rq) == 0)
        check_same(line, size, ctl_request_format(&rq, out, sizeof out, &outlen), out, outlen);

    char *buf = malloc(size + 1);
    check(buf != NULL);
    struct ctl_line l;
    if (ctl_line_parse(line, size, &l, buf, size + 1) == 0) {
        int rc = -1;
        switch (l.kind) {
        case CTL_LINE_MSG:
            check_value(l.msg.sender);
            rc = ctl_msg_format(&l.msg, out, sizeof out, &outlen);
            break;
        case CTL_LINE_RCPT:
            check_value(l.rcpt.addr);
            check_value(l.rcpt.reason);
            rc = ctl_rcpt_format(&l.rcpt, out, sizeof out, &outlen);
            break;
        case CTL_LINE_OK:
            check_value(l.text);
            rc = ctl_reply_format(true, NULL, l.text, out, sizeof out, &outlen);
            break;
        case CTL_LINE_ERR:
            check_value(l.text);
            rc = ctl_reply_format(false, l.code, l.text, out, sizeof out, &outlen);
            break;
        case CTL_LINE_FROM:
            check_value(l.text);
            rc = ctl_submit_from_format(l.text, out, sizeof out, &outlen);
            break;
        case CTL_LINE_TO:
            check_value(l.text);
            rc = ctl_submit_rcpt_format(l.text, out, sizeof out, &outlen);
            break;
        case CTL_LINE_DATA:
            rc = ctl_submit_data_format(l.size, out, sizeof out, &outlen);
            break;
        }
        check_same(line, size, rc, out, outlen);
    }
    free(buf);
    return 0;
}
