/* cli/queue: `sluice queue list [--json]`, `show ID [--json]`, `flush [ID]`, `hold ID`,
 * `release ID`, `delete ID`, and mailq's Postfix-style listing. Called by cli/main.c;
 * cli/sendmail.c shares the socket helpers. Each command is one connection to the queue
 * manager's control socket <spool>/public/control carrying one request (queue/ctl.h);
 * every line is parsed by queue/ctl before anything of it is printed, so what reaches the
 * terminal or a JSON consumer holds no control byte and no line the server did not send.
 *
 * Exit statuses: 0 ok, 1 the server answered err (its code and text go to stderr), 2 usage,
 * 75 (EX_TEMPFAIL) when the socket cannot be reached, times out (30 s per read or write) or
 * the server breaks the protocol.
 */
#include "cli/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/id.h"

/* ---- configuration and socket -------------------------------------------------------- */

struct config *queue_cli_load_conf(const char *conf_path, const char *prog)
{
    const char *path = conf_path;
    if (path == NULL && access(QUEUE_CLI_DEFAULT_CONF, F_OK) == 0)
        path = QUEUE_CLI_DEFAULT_CONF;
    struct conf_errors errs = {0};
    struct config *cfg = conf_load(path, &errs);
    if (cfg == NULL)
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s: %s:%u: %s\n", prog,
                    path != NULL ? path : "(embedded etc/sluice.conf)", errs.e[i].line,
                    errs.e[i].msg);
    return cfg;
}

static int queue_cli_set_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = QUEUE_CLI_TIMEOUT_S, .tv_usec = 0};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
        return -1;
    return 0;
}

int queue_cli_connect(const struct config *cfg)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int dirfd = -1;
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/public/control", cfg->spool);
    if (n < 0) {
        errno = EINVAL;
        return -1;
    }
    if ((size_t)n >= sizeof sa.sun_path) {
        /* A spool path too long for sun_path is reached through its directory's fd. */
        char dir[4096];
        if (snprintf(dir, sizeof dir, "%s/public", cfg->spool) >= (int)sizeof dir) {
            errno = ENAMETOOLONG;
            return -1;
        }
        dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
            return -1;
        snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/control", dirfd);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int saved = 0;
    if (fd < 0 || queue_cli_set_timeouts(fd) != 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        saved = errno;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    if (dirfd >= 0)
        close(dirfd);
    if (fd < 0)
        errno = saved;
    return fd;
}

int queue_cli_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                errno = ETIMEDOUT;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int queue_cli_read_line(struct queue_cli_reader *r, const char **line, size_t *len)
{
    for (;;) {
        char *lf = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (lf != NULL) {
            *line = r->buf + r->start;
            *len = (size_t)(lf - *line);
            r->start += *len + 1;
            return 1;
        }
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (r->end == sizeof r->buf) {
            errno = EMSGSIZE;
            return -1;
        }
        ssize_t got = read(r->fd, r->buf + r->end, sizeof r->buf - r->end);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                errno = ETIMEDOUT;
            return -1;
        }
        if (got == 0) {
            if (r->end > 0) {
                errno = EPROTO; /* a last line without its LF */
                return -1;
            }
            return 0;
        }
        r->end += (size_t)got;
    }
}

/* ---- JSON ---------------------------------------------------------------------------- */

/* Octets of the well-formed UTF-8 sequence at s (RFC 3629 §4), 0 when it is not one. */
static size_t queue_cli_utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* A JSON string (RFC 8259 §7): quote, backslash and control characters escaped; octets
 * that are not UTF-8 become U+FFFD so the output is always valid JSON. s is NUL-terminated,
 * which also stops the UTF-8 look-ahead. */
static void queue_cli_json_string(FILE *out, const char *s)
{
    putc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0';) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            putc('\\', out);
            putc(c, out);
            p++;
        } else if (c < 0x20) {
            fprintf(out, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            putc(c, out);
            p++;
        } else {
            size_t n = queue_cli_utf8_len(p);
            if (n == 0) {
                fputs("\\ufffd", out);
                p++;
            } else {
                fwrite(p, 1, n, out);
                p += n;
            }
        }
    }
    putc('"', out);
}

/* ---- views --------------------------------------------------------------------------- */

enum queue_cli_view_kind {
    QUEUE_CLI_VIEW_NONE,      /* flush, hold, release, delete: no listing */
    QUEUE_CLI_VIEW_MAILQ,     /* list and mailq */
    QUEUE_CLI_VIEW_SHOW,      /* show */
    QUEUE_CLI_VIEW_JSON_LIST, /* list --json: an array of messages */
    QUEUE_CLI_VIEW_JSON_SHOW, /* show --json: one message */
};

struct queue_cli_view {
    enum queue_cli_view_kind kind;
    FILE *out;
    size_t nmsgs;
    uint64_t total; /* octets of all messages */
    size_t nrcpts;  /* of the current message */
};

/* Postfix's columns, widened for 20-character queue ids. */
#define QUEUE_CLI_INDENT 52

static const char *const queue_cli_state_names[] = {
    [CTL_RCPT_PENDING] = "pending",
    [CTL_RCPT_DEFERRED] = "deferred",
    [CTL_RCPT_DELIVERED] = "delivered",
    [CTL_RCPT_FAILED] = "failed",
};

static void queue_cli_date(char *out, size_t cap, int64_t t, bool year)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (localtime_r(&tt, &tm) == NULL ||
        strftime(out, cap, year ? "%a %b %e %H:%M:%S %Y" : "%a %b %e %H:%M:%S", &tm) == 0)
        snprintf(out, cap, "%" PRId64, t);
}

static void queue_cli_json_close_msg(struct queue_cli_view *v)
{
    if (v->nmsgs > 0)
        fputs("]}", v->out);
}

static void queue_cli_on_msg(struct queue_cli_view *v, const struct ctl_msg_info *m)
{
    char date[64];
    FILE *o = v->out;
    switch (v->kind) {
    case QUEUE_CLI_VIEW_MAILQ:
        if (v->nmsgs == 0)
            fprintf(o, "%-21s %8s %-20s %s\n", "-Queue ID-", "--Size--", "----Arrival Time----",
                    "-Sender/Recipient-------");
        else
            putc('\n', o);
        queue_cli_date(date, sizeof date, m->arrival, false);
        fprintf(o, "%-20s%c %8" PRIu64 " %-20s %s\n", m->id, m->held ? '!' : ' ', m->size, date,
                m->sender[0] != '\0' ? m->sender : "MAILER-DAEMON");
        break;
    case QUEUE_CLI_VIEW_SHOW:
        queue_cli_date(date, sizeof date, m->arrival, true);
        fprintf(o,
                "Queue ID:  %s\nStatus:    %s\nArrival:   %s (%" PRId64 ")\n"
                "Size:      %" PRIu64 "\nSender:    %s\n",
                m->id, m->held ? "held" : "queued", date, m->arrival, m->size,
                m->sender[0] != '\0' ? m->sender : "<>");
        break;
    case QUEUE_CLI_VIEW_JSON_LIST:
    case QUEUE_CLI_VIEW_JSON_SHOW:
        queue_cli_json_close_msg(v);
        if (v->kind == QUEUE_CLI_VIEW_JSON_LIST)
            fputs(v->nmsgs == 0 ? "[" : ",", o);
        fputs("{\"id\":", o);
        queue_cli_json_string(o, m->id);
        fprintf(o,
                ",\"arrival\":%" PRId64 ",\"size\":%" PRIu64 ",\"held\":%s,\"sender\":", m->arrival,
                m->size, m->held ? "true" : "false");
        queue_cli_json_string(o, m->sender);
        fputs(",\"recipients\":[", o);
        break;
    case QUEUE_CLI_VIEW_NONE:
        break;
    }
    v->nmsgs++;
    v->total += m->size;
    v->nrcpts = 0;
}

static void queue_cli_on_rcpt(struct queue_cli_view *v, const struct ctl_rcpt_info *r)
{
    char date[64];
    FILE *o = v->out;
    switch (v->kind) {
    case QUEUE_CLI_VIEW_MAILQ:
        /* Like Postfix: only the recipients still waiting, each after its last failure. */
        if (r->state != CTL_RCPT_PENDING && r->state != CTL_RCPT_DEFERRED)
            break;
        if (r->reason[0] != '\0')
            fprintf(o, "%*s(%s)\n", QUEUE_CLI_INDENT, "", r->reason);
        fprintf(o, "%*s%s\n", QUEUE_CLI_INDENT, "", r->addr);
        break;
    case QUEUE_CLI_VIEW_SHOW:
        fprintf(o, "Recipient: %s\n  State:   %s, %u attempt%s\n", r->addr,
                queue_cli_state_names[r->state], r->attempts, r->attempts == 1 ? "" : "s");
        if (r->next_try != 0) {
            queue_cli_date(date, sizeof date, r->next_try, true);
            fprintf(o, "  Next:    %s (%" PRId64 ")\n", date, r->next_try);
        }
        if (r->reason[0] != '\0')
            fprintf(o, "  Reason:  %s\n", r->reason);
        break;
    case QUEUE_CLI_VIEW_JSON_LIST:
    case QUEUE_CLI_VIEW_JSON_SHOW:
        fputs(v->nrcpts == 0 ? "{\"address\":" : ",{\"address\":", o);
        queue_cli_json_string(o, r->addr);
        fprintf(o, ",\"state\":\"%s\",\"attempts\":%u,\"next_try\":%" PRId64 ",\"reason\":",
                queue_cli_state_names[r->state], r->attempts, r->next_try);
        queue_cli_json_string(o, r->reason);
        putc('}', o);
        break;
    case QUEUE_CLI_VIEW_NONE:
        break;
    }
    v->nrcpts++;
}

/* The server said ok: close the listing. */
static void queue_cli_on_ok(struct queue_cli_view *v, const char *text)
{
    FILE *o = v->out;
    switch (v->kind) {
    case QUEUE_CLI_VIEW_MAILQ:
        if (v->nmsgs == 0) {
            fputs("Mail queue is empty\n", o);
            break;
        }
        fprintf(o, "\n-- %" PRIu64 " Kbytes in %zu Request%s.\n",
                v->total / 1024 + (v->total % 1024 != 0), v->nmsgs, v->nmsgs == 1 ? "" : "s");
        break;
    case QUEUE_CLI_VIEW_JSON_LIST:
        queue_cli_json_close_msg(v);
        fputs(v->nmsgs == 0 ? "[]\n" : "]\n", o);
        break;
    case QUEUE_CLI_VIEW_JSON_SHOW:
        queue_cli_json_close_msg(v);
        putc('\n', o);
        break;
    case QUEUE_CLI_VIEW_SHOW:
        break;
    case QUEUE_CLI_VIEW_NONE:
        if (text[0] != '\0')
            fprintf(o, "%s\n", text);
        break;
    }
}

/* ---- one exchange -------------------------------------------------------------------- */

static int queue_cli_broken(const char *what)
{
    fprintf(stderr, "sluice: queue manager: %s\n", what);
    return QUEUE_CLI_EX_TEMPFAIL;
}

/* Read the answer to a request; the exit status. */
static int queue_cli_answer(int fd, struct queue_cli_view *v)
{
    struct queue_cli_reader *r = malloc(sizeof *r);
    char *buf = malloc(CTL_LINE_MAX);
    int rc = -1;
    if (r == NULL || buf == NULL) {
        rc = queue_cli_broken("out of memory");
        goto done;
    }
    r->fd = fd;
    r->start = r->end = 0;
    bool show = v->kind == QUEUE_CLI_VIEW_SHOW || v->kind == QUEUE_CLI_VIEW_JSON_SHOW;
    while (rc < 0) {
        const char *line;
        size_t len;
        int got = queue_cli_read_line(r, &line, &len);
        if (got <= 0) {
            rc = queue_cli_broken(got == 0 ? "connection closed before the answer"
                                           : strerror(errno));
            break;
        }
        struct ctl_line l;
        if (ctl_line_parse(line, len, &l, buf, CTL_LINE_MAX) != 0) {
            rc = queue_cli_broken("malformed line");
            break;
        }
        switch (l.kind) {
        case CTL_LINE_MSG:
            if (v->kind == QUEUE_CLI_VIEW_NONE || (show && v->nmsgs > 0))
                rc = queue_cli_broken("unexpected msg line");
            else
                queue_cli_on_msg(v, &l.msg);
            break;
        case CTL_LINE_RCPT:
            if (v->kind == QUEUE_CLI_VIEW_NONE || v->nmsgs == 0)
                rc = queue_cli_broken("unexpected rcpt line");
            else
                queue_cli_on_rcpt(v, &l.rcpt);
            break;
        case CTL_LINE_OK:
            if (show && v->nmsgs == 0) {
                rc = queue_cli_broken("no message in the answer");
                break;
            }
            queue_cli_on_ok(v, l.text);
            rc = 0;
            break;
        case CTL_LINE_ERR:
            fprintf(stderr, "sluice: %s %s\n", l.code, l.text);
            rc = 1;
            break;
        default:
            rc = queue_cli_broken("unexpected line");
            break;
        }
    }
done:
    free(r);
    free(buf);
    return rc;
}

static int queue_cli_request(const char *conf_path, const struct ctl_request *rq,
                             struct queue_cli_view *v)
{
    struct config *cfg = queue_cli_load_conf(conf_path, "sluice");
    if (cfg == NULL)
        return QUEUE_CLI_EX_TEMPFAIL;
    int fd = queue_cli_connect(cfg);
    if (fd < 0) {
        fprintf(stderr, "sluice: cannot reach the queue manager at %s/public/control: %s\n",
                cfg->spool, strerror(errno));
        conf_free(cfg);
        return QUEUE_CLI_EX_TEMPFAIL;
    }
    conf_free(cfg);
    char line[CTL_LINE_MAX];
    size_t len;
    int rc;
    if (ctl_request_format(rq, line, sizeof line, &len) != 0)
        rc = queue_cli_broken("cannot format the request");
    else if (queue_cli_write_all(fd, line, len) != 0)
        rc = queue_cli_broken(strerror(errno));
    else
        rc = queue_cli_answer(fd, v);
    close(fd);
    if (fflush(v->out) != 0 && rc == 0)
        rc = 1;
    return rc;
}

/* ---- command line -------------------------------------------------------------------- */

static int queue_cli_usage(const char *why)
{
    if (why != NULL)
        fprintf(stderr, "sluice: %s\n", why);
    fputs("usage: sluice [-c FILE] queue list [--json]\n"
          "       sluice [-c FILE] queue show ID [--json]\n"
          "       sluice [-c FILE] queue flush [ID]\n"
          "       sluice [-c FILE] queue hold|release|delete ID\n",
          stderr);
    return 2;
}

int queue_cli_mailq(const char *conf_path)
{
    struct ctl_request rq = {.verb = CTL_LIST};
    struct queue_cli_view v = {.kind = QUEUE_CLI_VIEW_MAILQ, .out = stdout};
    return queue_cli_request(conf_path, &rq, &v);
}

int queue_cli_main(int argc, char **argv, const char *conf_path)
{
    static const struct {
        const char *word;
        enum ctl_verb verb;
        int id; /* 0 none, 1 optional, 2 required */
        bool json;
    } cmds[] = {
        {"list", CTL_LIST, 0, true},        {"show", CTL_SHOW, 2, true},
        {"flush", CTL_FLUSH, 1, false},     {"hold", CTL_HOLD, 2, false},
        {"release", CTL_RELEASE, 2, false}, {"delete", CTL_DELETE, 2, false},
    };
    if (argc < 2)
        return queue_cli_usage(NULL);
    size_t c = 0;
    while (c < sizeof cmds / sizeof cmds[0] && strcmp(argv[1], cmds[c].word) != 0)
        c++;
    if (c == sizeof cmds / sizeof cmds[0])
        return queue_cli_usage("unknown queue command");
    struct ctl_request rq = {.verb = cmds[c].verb};
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && cmds[c].json && !json) {
            json = true;
        } else if (cmds[c].id > 0 && rq.id[0] == '\0' && argv[i][0] != '-') {
            if (!id_valid(argv[i], strlen(argv[i])))
                return queue_cli_usage("not a queue id");
            memcpy(rq.id, argv[i], ID_LEN + 1);
        } else {
            return queue_cli_usage("unexpected argument");
        }
    }
    if (cmds[c].id == 2 && rq.id[0] == '\0')
        return queue_cli_usage("a queue id is needed");
    struct queue_cli_view v = {.kind = QUEUE_CLI_VIEW_NONE, .out = stdout};
    if (rq.verb == CTL_LIST)
        v.kind = json ? QUEUE_CLI_VIEW_JSON_LIST : QUEUE_CLI_VIEW_MAILQ;
    else if (rq.verb == CTL_SHOW)
        v.kind = json ? QUEUE_CLI_VIEW_JSON_SHOW : QUEUE_CLI_VIEW_SHOW;
    return queue_cli_request(conf_path, &rq, &v);
}
