/* sched_ctl: the operator's actions on the queue and its listing (part of the scheduler,
 * sched_priv.h), for the queue manager's control socket: flush, hold, release, delete,
 * list. Hold and release are logged as outcome records so that they survive a restart. */
#include "queue/sched_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* ---- operator actions ---- */

int sched_flush(struct sched *s, const char *id)
{
    int64_t now = sched_now();
    if (id != NULL) {
        struct sched_msg *m = sched_find(s, id);
        if (m == NULL) {
            errno = ENOENT;
            return -1;
        }
        for (size_t i = 0; i < m->nr; i++)
            m->r[i].next_try = 0;
        sched_due(s, m, now);
        return 0;
    }
    for (size_t k = 0; k < s->cap; k++) {
        struct sched_msg *m = s->slots[k];
        if (m == NULL)
            continue;
        for (size_t i = 0; i < m->nr; i++)
            m->r[i].next_try = 0;
        sched_due(s, m, now);
    }
    return 0;
}

static int sched_set_held(struct sched *s, const char *id, bool held)
{
    struct sched_msg *m = sched_find(s, id);
    if (m == NULL) {
        errno = ENOENT;
        return -1;
    }
    if (m->held != held) {
        m->held = held;
        sched_log_rcpt(s, m, held ? QLOG_HOLD : QLOG_RELEASE, UINT32_MAX);
        log_event(held ? "held" : "released", "id=%s", m->id);
    }
    if (!held)
        sched_due(s, m, sched_now());
    return 0;
}

int sched_hold(struct sched *s, const char *id)
{
    return sched_set_held(s, id, true);
}

int sched_release(struct sched *s, const char *id)
{
    return sched_set_held(s, id, false);
}

int sched_delete(struct sched *s, const char *id)
{
    struct sched_msg *m = sched_find(s, id);
    if (m == NULL) {
        errno = ENOENT;
        return -1;
    }
    log_event("deleted", "id=%s by=operator", m->id);
    m->removed = true;
    m->held = true;
    if (m->busy == 0)
        sched_remove(s, m, "deleted");
    return 0;
}

static enum ctl_rcpt_state sched_ctl_state(const struct sched_rcpt *rc)
{
    switch (rc->state) {
    case SCHED_R_DELIVERED:
    case SCHED_R_EXPANDED:
        return CTL_RCPT_DELIVERED;
    case SCHED_R_FAILED:
        return CTL_RCPT_FAILED;
    default:
        return rc->attempts > 0 ? CTL_RCPT_DEFERRED : CTL_RCPT_PENDING;
    }
}

static void sched_list_one(struct sched_msg *m, sched_list_fn fn, void *arg)
{
    struct ctl_rcpt_info *ri = calloc(m->nr ? m->nr : 1, sizeof *ri);
    char(*reasons)[sizeof m->r[0].last.text + 16] = calloc(m->nr ? m->nr : 1, sizeof *reasons);
    if (ri == NULL || reasons == NULL) {
        free(ri);
        free(reasons);
        return;
    }
    for (size_t i = 0; i < m->nr; i++) {
        const struct sched_rcpt *rc = &m->r[i];
        if (rc->attempts > 0 && rc->state != SCHED_R_DELIVERED)
            snprintf(reasons[i], sizeof reasons[i], "%s %s", rc->last.enhanced, rc->last.text);
        ri[i] = (struct ctl_rcpt_info){
            .addr = rc->addr,
            .state = sched_ctl_state(rc),
            .attempts = rc->attempts,
            .next_try = rc->state == SCHED_R_PENDING && rc->attempts > 0 ? rc->next_try : 0,
            .reason = reasons[i],
        };
    }
    struct ctl_msg_info mi = {
        .id = m->id,
        .arrival = m->env.arrival,
        .size = m->body_len,
        .held = m->held,
        .sender = m->env.sender,
    };
    fn(&mi, ri, m->nr, arg);
    free(ri);
    free(reasons);
}

static int sched_cmp_id(const void *a, const void *b)
{
    return memcmp((*(struct sched_msg *const *)a)->id, (*(struct sched_msg *const *)b)->id,
                  ID_LEN);
}

int sched_list(struct sched *s, const char *id, sched_list_fn fn, void *arg)
{
    if (id != NULL) {
        struct sched_msg *m = sched_find(s, id);
        if (m == NULL) {
            errno = ENOENT;
            return -1;
        }
        sched_list_one(m, fn, arg);
        return 0;
    }
    struct sched_msg **all = malloc((s->n ? s->n : 1) * sizeof *all);
    size_t n = 0;
    if (all == NULL)
        return -1;
    for (size_t k = 0; k < s->cap; k++)
        if (s->slots[k] != NULL)
            all[n++] = s->slots[k];
    qsort(all, n, sizeof *all, sched_cmp_id);
    for (size_t i = 0; i < n; i++)
        sched_list_one(all[i], fn, arg);
    free(all);
    return 0;
}

