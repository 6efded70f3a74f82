/* sched_bounce: the scheduler's delivery status notifications (part of the scheduler,
 * sched_priv.h). Composes with the pure queue/bounce (RFC 3464), writes the DSN into
 * queue/ through queue/inject (durable before anything is marked), then records which
 * recipients it covers. Invariants: a DSN is never sent for the null sender (RFC 5321
 * §4.5.5); a failed DSN (the null sender's own message) is reported once to the
 * postmaster, and a failed report to the postmaster is only logged, so nothing loops; a
 * crash between the DSN's commit and its BOUNCED record sends it twice, never not at all. */
#include "queue/sched_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/bounce.h"
#include "queue/inject.h"
#include "queue/store.h"
#include "util/fileio.h"
#include "util/log.h"

#define SCHED_HEADERS_MAX (256u << 10) /* of the original, when only its header is attached */
#define SCHED_LISTENER_BOUNCE "bounce"
#define SCHED_LISTENER_DOUBLE "double-bounce"

/* What RET asks for (RFC 3461 §4.3), within SCHED_BOUNCE_ATTACH_MAX: the whole message,
 * else its header section. */
static unsigned char *sched_original(struct sched *s, const struct sched_msg *m, size_t *len,
                                     bool *headers_only)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/queue/%s", s->spool, m->id);
    /* A BINARYMIME original (RFC 3030) cannot ride in a DSN sent as 8BITMIME: its header
     * section only, which is lines by RFC 5322. */
    *headers_only = m->env.ret == PROTO_RET_HDRS || m->body_len > SCHED_BOUNCE_ATTACH_MAX ||
                    m->env.body == PROTO_BODY_BINARYMIME;
    size_t want = (size_t)(m->body_len < SCHED_BOUNCE_ATTACH_MAX ? m->body_len
                                                                 : SCHED_BOUNCE_ATTACH_MAX);
    if (*headers_only && want > SCHED_HEADERS_MAX)
        want = SCHED_HEADERS_MAX;
    unsigned char *buf = malloc(want ? want : 1);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (buf == NULL || fd < 0 || fileio_pread_all(fd, buf, want, (off_t)m->body_offset) != 0) {
        if (fd >= 0)
            close(fd);
        free(buf);
        return NULL;
    }
    close(fd);
    *len = want;
    if (*headers_only) {
        for (size_t i = 0; i + 3 < want; i++) {
            if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
                *len = i + 2;
                break;
            }
        }
    }
    return buf;
}

/* Compose (finding a boundary absent from the original) and commit into queue/. */
static int sched_bounce_send(struct sched *s, const struct sched_msg *m,
                             const struct queue_envelope *about, const char *to,
                             const struct bounce_rcpt *brs, size_t n, bool delay,
                             const char *listener, char dsn_id[ID_LEN + 1])
{
    size_t olen = 0;
    bool hdrs = false;
    unsigned char *orig = sched_original(s, m, &olen, &hdrs);
    if (orig == NULL)
        return -1;
    const char *mta = s->cfg->hostname != NULL ? s->cfg->hostname : "localhost";
    struct bounce_input in = {
        .env = about,
        .queue_id = m->id,
        .reporting_mta = mta,
        .now = sched_now(),
        .delay = delay,
        .rcpts = brs,
        .nrcpts = n,
        .original = orig,
        .original_len = olen,
        .original_is_headers = hdrs,
    };
    char boundary[BOUNCE_BOUNDARY_MAX + 1], tag[ID_LEN + 1];
    id_next(tag);
    in.tag = tag;
    unsigned char *out = NULL;
    size_t len = 0;
    int rc = -1;
    for (unsigned attempt = 0; attempt < 8 && rc != 0; attempt++) {
        snprintf(boundary, sizeof boundary, "=_%s/%s.%u", m->id, tag, attempt);
        in.boundary = boundary;
        if (bounce_compose(&in, NULL, 0, &len) != ENOSPC)
            continue; /* the boundary occurs in the original: another one */
        out = malloc(len);
        if (out != NULL && bounce_compose(&in, out, len, &len) == 0)
            rc = 0;
        else {
            free(out);
            out = NULL;
        }
    }
    free(orig);
    if (rc != 0) {
        log_event("bounce_error", "id=%s error=compose", m->id);
        return -1;
    }
    struct queue_rcpt qr = {.addr = (char *)to, .notify = PROTO_NOTIFY_NEVER};
    struct queue_envelope env = {
        .sender = "",
        .rcpts = &qr,
        .nrcpts = 1,
        .body = m->env.body == PROTO_BODY_7BIT || m->env.body == PROTO_BODY_NONE
                    ? PROTO_BODY_NONE
                    : PROTO_BODY_8BITMIME,
        .smtputf8 = m->env.smtputf8,
        .helo = (char *)mta,
        .listener = (char *)listener,
        .arrival = sched_now(),
    };
    struct queue_msg *qm = queue_inject_begin(s->inject, &env, dsn_id);
    if (qm == NULL || queue_msg_write(qm, out, len) != 0) {
        int e = errno;
        if (qm != NULL)
            queue_msg_abort(qm);
        free(out);
        log_event("bounce_error", "id=%s error=%s", m->id, strerror(e));
        return -1;
    }
    free(out);
    if (queue_inject_commit(s->inject, qm) != 0) {
        log_event("bounce_error", "id=%s error=%s", m->id, strerror(errno));
        return -1;
    }
    s->stats.bounces++;
    sched_notice(s, dsn_id);
    return 0;
}

static void sched_diag(const struct sched_rcpt *rc, char *buf, size_t cap)
{
    if (rc->last.remote_reply)
        snprintf(buf, cap, "smtp; %s", rc->last.text);
    else
        buf[0] = '\0';
}

int sched_bounce(struct sched *s, struct sched_msg *m, bool delay)
{
    struct bounce_rcpt *brs = calloc(m->nr, sizeof *brs);
    struct queue_rcpt *qrs = calloc(m->nr, sizeof *qrs);
    char(*diags)[300] = calloc(m->nr, sizeof *diags);
    uint32_t *covered = calloc(m->nr, sizeof *covered);
    size_t n = 0, ncov = 0;
    int rc = 0;
    bool null_sender = m->env.sender[0] == '\0';
    bool double_bounce = m->env.listener != NULL &&
                         strcmp(m->env.listener, SCHED_LISTENER_DOUBLE) == 0;

    if (brs == NULL || qrs == NULL || diags == NULL || covered == NULL) {
        rc = -1;
        goto out;
    }
    for (uint32_t i = 0; i < m->nr; i++) {
        struct sched_rcpt *r = &m->r[i];
        bool candidate = delay ? ((r->state == SCHED_R_PENDING || r->state == SCHED_R_BUSY) &&
                                  r->attempts > 0 && r->last.status == DELIVER_TEMPFAIL)
                               : (r->state == SCHED_R_FAILED && !r->bounced);
        if (!candidate)
            continue;
        covered[ncov++] = i;
        qrs[i] = (struct queue_rcpt){
            .addr = r->addr,
            .notify = r->notify,
            .orcpt = m->env.rcpts[r->root].orcpt,
        };
        /* A failed DSN goes to the postmaster as a failure report of its own; nothing asks
         * NOTIFY for it (its envelope says NEVER), so bounce_wanted is not the rule there. */
        bool wanted = null_sender ? !delay && !double_bounce : bounce_wanted(&m->env, &qrs[i], delay);
        if (!wanted)
            continue;
        sched_diag(r, diags[i], sizeof diags[i]);
        brs[n++] = (struct bounce_rcpt){
            .rcpt = &qrs[i],
            .result = &r->last,
            .remote_mta = r->remote_mta,
            .diagnostic = diags[i][0] != '\0' ? diags[i] : NULL,
        };
    }
    if (n > 0) {
        char dsn_id[ID_LEN + 1];
        char postmaster[300];
        struct queue_envelope about = m->env;
        const char *to = m->env.sender;
        const char *listener = SCHED_LISTENER_BOUNCE;
        if (null_sender) {
            snprintf(postmaster, sizeof postmaster, "postmaster@%s",
                     s->cfg->ndomains > 0 ? s->cfg->domains[0]
                     : s->cfg->hostname != NULL ? s->cfg->hostname
                                                : "localhost");
            about.sender = postmaster;
            to = postmaster;
            listener = SCHED_LISTENER_DOUBLE;
        }
        if (sched_bounce_send(s, m, &about, to, brs, n, delay, listener, dsn_id) != 0) {
            rc = -1;
            goto out;
        }
        log_event(delay ? "delay_notice" : "bounce", "id=%s dsn=%s to=<%s> nrcpt=%zu", m->id,
                  dsn_id, to, n);
    } else if (double_bounce && !delay && ncov > 0) {
        log_event("bounce_dropped", "id=%s reason=failed_report_to_postmaster nrcpt=%zu", m->id,
                  ncov);
    }
    if (delay && ncov > 0) {
        m->warned = true;
        sched_log_rcpt(s, m, QLOG_WARNED, UINT32_MAX);
    }
    for (size_t k = 0; k < ncov && !delay; k++) {
        m->r[covered[k]].bounced = true;
        sched_log_rcpt(s, m, QLOG_BOUNCED, covered[k]);
    }
out:
    free(brs);
    free(qrs);
    free(diags);
    free(covered);
    return rc;
}
