/* cli/sendmail: sendmail(1) for cron and scripts. Called by cli/main.c for `sluice
 * sendmail`, for a binary named `sendmail`, and (with -bp) hands over to mailq. Reads the
 * message on stdin (to EOF, or to a lone "." line without -i), normalises line endings to
 * CRLF, completes the header section (cli/sendmail_msg.c), and queues it through the queue
 * manager's control socket: "submit", "from", one "rcpt" per recipient, "data N", N octets,
 * then one "ok QUEUEID" or "err CODE TEXT" back (queue/ctl.h).
 *
 * Invariants: the message held in memory never exceeds limits.message_size (input past it
 * is refused, not read on); nothing reaches the socket before the whole message is read, so
 * an interrupted input queues nothing. Exit statuses follow sysexits(3): 64 usage, 69 a
 * permanent refusal (an RFC 3463 5.x.x err, or too big), 75 a temporary one.
 */
#include "cli/sendmail.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/queue.h"
#include "cli/sendmail_msg.h"
#include "util/date.h"
#include "util/id.h"

#define SENDMAIL_ADDR_MAX 1024

static int sendmail_usage(const char *why)
{
    if (why != NULL)
        fprintf(stderr, "sendmail: %s\n", why);
    fputs("usage: sendmail [-t] [-i|-oi] [-f sender] [-F name] [-C FILE] [-bm|-bp] [--] "
          "[recipient...]\n",
          stderr);
    return QUEUE_CLI_EX_USAGE;
}

struct sendmail_raw {
    char *p;
    size_t n;
    size_t cap;
};

/* 0, 1 when the input is over limit, -1 on a read error or out of memory. */
static int sendmail_raw_put(struct sendmail_raw *r, const char *s, size_t n, uint64_t limit)
{
    if ((uint64_t)r->n + n > limit)
        return 1;
    if (n > r->cap - r->n) {
        size_t ncap = r->cap ? r->cap : 8192;
        while (n > ncap - r->n)
            ncap *= 2;
        char *np = realloc(r->p, ncap);
        if (np == NULL)
            return -1;
        r->p = np;
        r->cap = ncap;
    }
    memcpy(r->p + r->n, s, n);
    r->n += n;
    return 0;
}

/* Read the message: to EOF, or to a lone "." line unless ignore_dots. */
static int sendmail_read(FILE *in, bool ignore_dots, uint64_t limit, struct sendmail_raw *r)
{
    char line[8192];
    size_t n = 0;
    bool line_start = true;
    int ch;
    while ((ch = getc(in)) != EOF) {
        line[n++] = (char)ch;
        if (ch != '\n' && n < sizeof line)
            continue;
        if (!ignore_dots && line_start && sendmail_is_end_line(line, n))
            return 0;
        int rc = sendmail_raw_put(r, line, n, limit);
        if (rc != 0)
            return rc;
        line_start = ch == '\n';
        n = 0;
    }
    if (ferror(in))
        return -1;
    if (n > 0 && !(!ignore_dots && line_start && sendmail_is_end_line(line, n)))
        return sendmail_raw_put(r, line, n, limit);
    return 0;
}

/* Send the submit request and the message, then read the one-line answer. */
static int sendmail_submit(const struct config *cfg, const char *sender,
                           const struct sendmail_rcpts *rcpts, const char *msg, size_t len)
{
    char line[CTL_LINE_MAX];
    size_t n;
    struct ctl_request rq = {.verb = CTL_SUBMIT};
    if (ctl_submit_from_format(sender, line, sizeof line, &n) != 0)
        return sendmail_usage("bad sender address");
    for (size_t i = 0; i < rcpts->n; i++)
        if (ctl_submit_rcpt_format(rcpts->v[i], line, sizeof line, &n) != 0)
            return sendmail_usage("bad recipient address");

    int fd = queue_cli_connect(cfg);
    if (fd < 0) {
        fprintf(stderr, "sendmail: cannot reach the queue manager at %s/public/control: %s\n",
                cfg->spool, strerror(errno));
        return QUEUE_CLI_EX_TEMPFAIL;
    }
    /* A write may fail because the server answered early and closed: its answer, when
     * there is one, says more than the write error. */
    int werr = 0;
    if (ctl_request_format(&rq, line, sizeof line, &n) != 0 ||
        queue_cli_write_all(fd, line, n) != 0 ||
        ctl_submit_from_format(sender, line, sizeof line, &n) != 0 ||
        queue_cli_write_all(fd, line, n) != 0)
        werr = errno;
    for (size_t i = 0; werr == 0 && i < rcpts->n; i++)
        if (ctl_submit_rcpt_format(rcpts->v[i], line, sizeof line, &n) != 0 ||
            queue_cli_write_all(fd, line, n) != 0)
            werr = errno;
    if (werr == 0 &&
        (ctl_submit_data_format(len, line, sizeof line, &n) != 0 ||
         queue_cli_write_all(fd, line, n) != 0 || queue_cli_write_all(fd, msg, len) != 0))
        werr = errno;

    struct queue_cli_reader *r = malloc(sizeof *r);
    char *buf = malloc(CTL_LINE_MAX);
    int rc = QUEUE_CLI_EX_TEMPFAIL;
    const char *reply;
    size_t rlen;
    struct ctl_line l;
    if (r == NULL || buf == NULL) {
        fputs("sendmail: out of memory\n", stderr);
    } else if ((r->fd = fd, r->start = r->end = 0, queue_cli_read_line(r, &reply, &rlen)) != 1) {
        fprintf(stderr, "sendmail: queue manager: %s\n", werr != 0 ? strerror(werr) : "no answer");
    } else if (ctl_line_parse(reply, rlen, &l, buf, CTL_LINE_MAX) != 0 ||
               (l.kind != CTL_LINE_OK && l.kind != CTL_LINE_ERR)) {
        fputs("sendmail: queue manager: malformed answer\n", stderr);
    } else if (l.kind == CTL_LINE_ERR) {
        fprintf(stderr, "sendmail: %s %s\n", l.code, l.text);
        rc = l.code[0] == '5' ? QUEUE_CLI_EX_UNAVAILABLE : QUEUE_CLI_EX_TEMPFAIL;
    } else if (werr != 0) {
        fprintf(stderr, "sendmail: queue manager: %s\n", strerror(werr));
    } else {
        rc = 0;
    }
    free(r);
    free(buf);
    close(fd);
    return rc;
}

/* The invoking user's address, user@hostname of the configuration. */
static void sendmail_user_addr(const struct config *cfg, char *out, size_t cap)
{
    const struct passwd *pw = getpwuid(getuid());
    const char *user = pw != NULL && pw->pw_name[0] != '\0' ? pw->pw_name : "nobody";
    snprintf(out, cap, "%s@%s", user, cfg->hostname);
}

static int sendmail_run(const struct sendmail_opts *o, int argc, char **argv,
                        const struct config *cfg, struct sendmail_rcpts *rcpts)
{
    char err[256];
    char user_addr[SENDMAIL_ADDR_MAX], sender[SENDMAIL_ADDR_MAX];
    sendmail_user_addr(cfg, user_addr, sizeof user_addr);
    if (o->sender == NULL)
        memcpy(sender, user_addr, sizeof sender);
    else if (!sendmail_sender(o->sender, sender, sizeof sender))
        return sendmail_usage("bad sender address");
    for (int i = o->first_rcpt; i < argc; i++)
        if (sendmail_rcpts_add_list(rcpts, argv[i], strlen(argv[i]), cfg->hostname, err,
                                    sizeof err) != 0)
            return sendmail_usage(err);
    if (!o->extract && rcpts->n == 0)
        return sendmail_usage("no recipients given");

    struct sendmail_raw raw = {0};
    int rc = sendmail_read(stdin, o->ignore_dots, cfg->limits.message_size, &raw);
    char *norm = NULL, *msg = NULL;
    size_t nlen = 0, mlen = 0;
    char date[DATE_RFC5322_LEN], id[ID_LEN + 1], msgid[ID_LEN + SENDMAIL_ADDR_MAX];
    if (rc == 0 && sendmail_normalise(raw.p != NULL ? raw.p : "", raw.n, &norm, &nlen) != 0)
        rc = -1;
    free(raw.p);
    if (rc != 0) {
        fprintf(stderr, "sendmail: %s\n",
                rc > 0 ? "5.3.4 message too big" : "cannot read the message");
        free(norm);
        return rc > 0 ? QUEUE_CLI_EX_UNAVAILABLE : QUEUE_CLI_EX_TEMPFAIL;
    }
    if (!date_rfc5322(date, (int64_t)time(NULL)))
        snprintf(date, sizeof date, "Thu, 01 Jan 1970 00:00:00 +0000");
    id_next(id);
    snprintf(msgid, sizeof msgid, "<%s@%s>", id, cfg->hostname);
    struct sendmail_compose c = {
        .extract = o->extract,
        .from_addr = o->sender != NULL && sender[0] != '\0' ? sender : user_addr,
        .fullname = o->fullname,
        .date = date,
        .message_id = msgid,
        .domain = cfg->hostname,
    };
    rc = sendmail_complete(norm, nlen, &c, rcpts, &msg, &mlen, err, sizeof err);
    free(norm);
    if (rc != 0)
        return sendmail_usage(err);
    if (rcpts->n == 0)
        rc = sendmail_usage("no recipients found");
    else if (mlen > cfg->limits.message_size)
        rc = (fputs("sendmail: 5.3.4 message too big\n", stderr), QUEUE_CLI_EX_UNAVAILABLE);
    else
        rc = sendmail_submit(cfg, sender, rcpts, msg, mlen);
    free(msg);
    return rc;
}

int sendmail_main(int argc, char **argv, const char *conf_path)
{
    struct sendmail_opts o;
    char err[256];
    if (sendmail_parse_args(argc, argv, &o, err, sizeof err) != 0)
        return sendmail_usage(err);
    const char *path = o.config != NULL ? o.config : conf_path;
    if (o.mode == SENDMAIL_MODE_LIST) {
        if (o.first_rcpt < argc)
            return sendmail_usage("-bp takes no recipients");
        return queue_cli_mailq(path);
    }
    struct config *cfg = queue_cli_load_conf(path, "sendmail");
    if (cfg == NULL)
        return QUEUE_CLI_EX_TEMPFAIL;
    struct sendmail_rcpts rcpts = {0};
    int rc = sendmail_run(&o, argc, argv, cfg, &rcpts);
    sendmail_rcpts_free(&rcpts);
    conf_free(cfg);
    return rc;
}
