/* sched_route: where each recipient goes and the jobs that take it there (part of the
 * scheduler, sched_priv.h). Local mailboxes go to the Maildir agent on a thread pool (its
 * fsyncs never block the loop); LMTP domains and remote domains go to the SMTP/LMTP client
 * on the loop, through destinations that cap concurrency and keep idle connections for
 * reuse. Remote domains are found by MX lookup (dns), or all go to the smarthost.
 * Invariants: a recipient is BUSY from the moment a job holds it until its result is
 * recorded; a message is never freed while one of its jobs runs (busy > 0); RFC 5321 §5.1:
 * an MX host that is ourselves and every less preferred one are dropped, and mail whose
 * best MX is ourselves bounces 5.4.6 rather than loop. */
#include "queue/sched_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "deliver/maildir.h"
#include "deliver/smtp_client.h"
#include "dir/dir.h"
#include "dns/dns.h"
#include "util/log.h"
#include "util/pool.h"

#define SCHED_TXN_RCPTS 100       /* RFC 5321 §4.5.3.1.8: every server takes 100 */
#define SCHED_DNS_TIMEOUT_MS 30000

/* ---- destinations ---- */

static struct sched_dest *sched_dest_get(struct sched *s, const char *key,
                                         enum sched_dest_kind kind, const char *domain)
{
    for (size_t i = 0; i < s->ndests; i++)
        if (strcmp(s->dests[i]->key, key) == 0)
            return s->dests[i];
    if (s->ndests == s->dests_cap) {
        size_t ncap = s->dests_cap ? s->dests_cap * 2 : 16;
        struct sched_dest **nd = realloc(s->dests, ncap * sizeof *nd);
        if (nd == NULL)
            return NULL;
        s->dests = nd;
        s->dests_cap = ncap;
    }
    struct sched_dest *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->key = strdup(key);
    d->domain = domain != NULL ? strdup(domain) : NULL;
    if (d->key == NULL || (domain != NULL && d->domain == NULL)) {
        free(d->key);
        free(d->domain);
        free(d);
        return NULL;
    }
    d->kind = kind;
    d->wait_tail = &d->wait_head;
    d->limit = kind == SCHED_DEST_LOCAL ? s->cfg->delivery.local_concurrency * MAILDIR_BATCH
                                         : s->cfg->delivery.destination_concurrency;
    const struct conf_delivery *dc = &s->cfg->delivery;
    enum conf_out_tls t = dc->tls;
    for (size_t i = 0; domain != NULL && i < s->cfg->nremotes; i++)
        if (s->cfg->remotes[i].tls_set && strcmp(s->cfg->remotes[i].domain, domain) == 0)
            t = s->cfg->remotes[i].tls;
    d->tls = t == CONF_OUT_TLS_VERIFY ? SMTP_CLIENT_TLS_VERIFY
             : t == CONF_OUT_TLS_NONE ? SMTP_CLIENT_TLS_NONE
                                      : SMTP_CLIENT_TLS_MAY;
    if (kind == SCHED_DEST_LMTP)
        d->tls = SMTP_CLIENT_TLS_NONE;
    s->dests[s->ndests++] = d;
    return d;
}

void sched_job_free(struct sched_job *j)
{
    if (j->body_fd >= 0)
        close(j->body_fd);
    free(j->idx);
    free(j->rcpts);
    free(j);
}

static void sched_job_start(struct sched_job *j);

/* The job is over: give each recipient its result, free the job, start what waits. */
void sched_job_done(struct sched_job *j, const struct deliver_result *results,
                    const char *remote_mta)
{
    struct sched *s = j->s;
    j->m->busy--;
    for (size_t k = 0; k < j->n; k++)
        sched_result(s, j->m, j->idx[k], &results[k], remote_mta);
    sched_job_free(j);
}

void sched_job_fail_all(struct sched_job *j, const struct deliver_result *res,
                               const char *remote_mta)
{
    struct deliver_result *rs = calloc(j->n, sizeof *rs);
    if (rs == NULL) {
        log_event("sched_error", "id=%s error=out_of_memory", j->m->id);
        exit(75);
    }
    for (size_t k = 0; k < j->n; k++)
        rs[k] = *res;
    sched_job_done(j, rs, remote_mta);
    free(rs);
}

void sched_res(struct deliver_result *r, enum deliver_status st, const char *enh, const char *fmt, ...)
{
    va_list ap;
    *r = (struct deliver_result){.status = st};
    snprintf(r->enhanced, sizeof r->enhanced, "%s", enh);
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    va_end(ap);
}

void sched_dest_put(struct sched *s, struct sched_dest *d)
{
    d->busy--;
    s->in_flight--;
    if (d->kind != SCHED_DEST_LOCAL)
        s->in_flight_remote--;
}

void sched_dest_release(struct sched *s, struct sched_dest *d)
{
    sched_dest_put(s, d);
    sched_dispatch_waiting(s);
}

static bool sched_may_start(const struct sched *s, const struct sched_dest *d)
{
    return d->busy < d->limit &&
           (d->kind == SCHED_DEST_LOCAL || s->in_flight_remote < s->cfg->delivery.concurrency);
}

/* ---- local delivery (pool thread) ---- */

/* mkdir -p for the part of the path below the template's fixed prefix. The prefix itself
 * must exist: a missing /var/mail (an unmounted disk) defers rather than recreates. */
static int sched_mkdirs(char *path, size_t fixed_len)
{
    struct stat st;
    char *slash = path + fixed_len;
    if (fixed_len > 0) {
        char keep = path[fixed_len];
        path[fixed_len] = '\0';
        int ok = stat(path, &st) == 0;
        path[fixed_len] = keep;
        if (!ok)
            return -1;
    }
    while ((slash = strchr(slash + 1, '/')) != NULL) {
        *slash = '\0';
        int r = mkdir(path, 0700);
        *slash = '/';
        if (r != 0 && errno != EEXIST)
            return -1;
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* A Maildir batch: up to MAILDIR_BATCH local jobs that share their syncs on one thread. */
struct sched_batch {
    size_t n;
    struct sched_job *jobs[MAILDIR_BATCH];
};

static void sched_local_work(void *arg)
{
    struct sched_batch *b = arg;
    struct deliver_request rqs[MAILDIR_BATCH] = {0};
    struct deliver_result outs[MAILDIR_BATCH];
    size_t map[MAILDIR_BATCH], n = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct sched_job *j = b->jobs[i];
        struct stat st;
        /* Only a root that does not exist at all is made; one that exists as anything else
         * is the agent's to refuse (K1), never replaced. */
        if (lstat(j->mailbox, &st) != 0 && errno == ENOENT &&
            sched_mkdirs(j->mailbox, j->fixed_len) != 0) {
            sched_res(&j->res, DELIVER_TEMPFAIL, "4.2.0", "%s",
                      "mailbox directory cannot be created");
            continue;
        }
        rqs[n] = (struct deliver_request){
            .queue_path = j->queue_path,
            .env = &j->m->env,
            .recipient = j->rcpt,
            .mailbox_dir = j->mailbox,
            .verified = true,
            .body_offset = j->m->body_offset,
            .body_len = j->m->body_len,
            .quota = j->quota,
        };
        map[n++] = i;
    }
    maildir_deliver_batch(rqs, n, outs);
    for (size_t k = 0; k < n; k++)
        b->jobs[map[k]]->res = outs[k];
}

static void sched_local_done(void *arg)
{
    struct sched_batch *b = arg;
    for (size_t i = 0; i < b->n; i++) {
        struct sched_job *j = b->jobs[i];
        struct sched *s = j->s;
        struct sched_dest *d = j->d;
        struct deliver_result res = j->res;
        sched_job_done(j, &res, NULL);
        sched_dest_release(s, d);
    }
    free(b);
}

/* Hand the gathered local jobs to a thread as one batch. */
static void sched_local_submit(struct sched *s)
{
    while (s->nlocal > 0) {
        struct sched_batch *b = malloc(sizeof *b);
        size_t take = s->nlocal < MAILDIR_BATCH ? s->nlocal : MAILDIR_BATCH;
        if (b == NULL) {
            log_event("sched_error", "error=out_of_memory what=batch");
            exit(75);
        }
        b->n = take;
        memcpy(b->jobs, s->local + s->nlocal - take, take * sizeof *b->jobs);
        s->nlocal -= take;
        if (pool_submit(s->pool, sched_local_work, sched_local_done, b) != 0) {
            for (size_t i = 0; i < take; i++)
                sched_res(&b->jobs[i]->res, DELIVER_TEMPFAIL, "4.3.0", "%s", "out of memory");
            sched_local_done(b);
        }
    }
}

static void sched_local_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sched_local_submit(arg);
}

/* ---- jobs ---- */

static void sched_job_start(struct sched_job *j)
{
    struct sched *s = j->s;
    struct sched_dest *d = j->d;
    d->busy++;
    s->in_flight++;
    if (d->kind == SCHED_DEST_LOCAL) {
        /* Gathered until the current callbacks are done (or a batch is full), so that the
         * deliveries found together share their syncs (maildir_deliver_batch). */
        s->local[s->nlocal++] = j;
        if (s->nlocal == MAILDIR_BATCH)
            sched_local_submit(s);
        else
            event_active(s->local_ev, EV_TIMEOUT, 0);
        return;
    }
    s->in_flight_remote++;
    j->body_fd = open(j->queue_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (j->body_fd < 0) {
        struct deliver_result r;
        sched_res(&r, DELIVER_TEMPFAIL, "4.3.0", "queue file unreadable: %s", strerror(errno));
        sched_job_fail_all(j, &r, NULL);
        sched_dest_put(s, d); /* no dispatch from here: the caller is dispatching */
        return;
    }
    j->msg.body_fd = j->body_fd;
    if (!sched_conn_reuse(d, j))
        sched_conn_new(s, d, j);
}

static void sched_job_queue(struct sched *s, struct sched_job *j)
{
    struct sched_dest *d = j->d;
    if (d->wait_head == NULL && sched_may_start(s, d)) {
        sched_job_start(j);
        return;
    }
    j->next = NULL;
    *d->wait_tail = j;
    d->wait_tail = &j->next;
}

void sched_dispatch_waiting(struct sched *s)
{
    bool progress = true;
    while (progress && !s->closing) {
        progress = false;
        for (size_t i = 0; i < s->ndests; i++) {
            struct sched_dest *d = s->dests[i];
            if (d->wait_head == NULL || !sched_may_start(s, d))
                continue;
            struct sched_job *j = d->wait_head;
            d->wait_head = j->next;
            if (d->wait_head == NULL)
                d->wait_tail = &d->wait_head;
            sched_job_start(j);
            progress = true;
        }
    }
}

static struct sched_job *sched_job_new(struct sched *s, struct sched_dest *d, struct sched_msg *m)
{
    struct sched_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->s = s;
    j->d = d;
    j->m = m;
    j->body_fd = -1;
    j->idx = malloc(SCHED_TXN_RCPTS * sizeof *j->idx);
    if (j->idx == NULL) {
        free(j);
        return NULL;
    }
    snprintf(j->queue_path, sizeof j->queue_path, "%s/queue/%s", s->spool, m->id);
    return j;
}

/* LMTP and SMTP jobs carry the recipients as an envelope would, and the body's fd. */
static int sched_job_wire(struct sched_job *j)
{
    struct sched_msg *m = j->m;
    j->rcpts = calloc(j->n, sizeof *j->rcpts);
    if (j->rcpts == NULL)
        return -1;
    for (size_t k = 0; k < j->n; k++) {
        const struct sched_rcpt *rc = &m->r[j->idx[k]];
        const struct queue_rcpt *root = &m->env.rcpts[rc->root];
        j->rcpts[k] = (struct queue_rcpt){
            .addr = rc->addr,
            .notify = rc->notify,
            /* RFC 3461 §4.2: an expanded recipient keeps the ORCPT of the original, and
             * an original without one gets its own address. */
            .orcpt = rc->root == j->idx[k] || root->orcpt != NULL ? root->orcpt : NULL,
        };
    }
    j->msg = (struct smtp_msg){
        .env = &m->env,
        .rcpts = j->rcpts,
        .nrcpts = j->n,
        .body_fd = -1,
        .body_offset = m->body_offset,
        .body_len = m->body_len,
    };
    return 0;
}

/* Hand a filled LMTP or SMTP job over (its queue file is opened when it starts, so that
 * jobs waiting for a destination hold no descriptor). */
static void sched_job_submit(struct sched *s, struct sched_msg *m, struct sched_job *j)
{
    m->busy++;
    if (sched_job_wire(j) != 0) {
        struct deliver_result r;
        sched_res(&r, DELIVER_TEMPFAIL, "4.3.0", "%s", "out of memory");
        sched_job_fail_all(j, &r, NULL);
        return;
    }
    sched_job_queue(s, j);
}

/* ---- routing ---- */

struct sched_expand {
    bool answered;
    bool loop;          /* a target is the alias itself or one it came from */
    enum dir_result result;
    struct sched *s;
    struct sched_msg *m;
    uint32_t parent;
    size_t added;
    bool too_many;
    uint64_t quota; /* MAILBOX: its Maildir++ limit, 0 when none */
};

static bool sched_has_rcpt(const struct sched_msg *m, const char *addr)
{
    for (size_t i = 0; i < m->nr; i++)
        if (strcasecmp(m->r[i].addr, addr) == 0)
            return true;
    return false;
}

static void sched_expand_cb(enum dir_result result, const char *const *targets, size_t n,
                            uint64_t quota, void *arg)
{
    struct sched_expand *x = arg;
    x->answered = true;
    x->result = result;
    x->quota = quota;
    for (size_t k = 0; k < n && result == DIR_ALIAS; k++) {
        /* Loop-safe: an address already in the message is never added again, so an alias
         * cycle ends when it comes round. */
        if (sched_has_rcpt(x->m, targets[k])) {
            for (uint32_t a = x->parent;; a = x->m->r[a].parent) {
                if (strcasecmp(x->m->r[a].addr, targets[k]) == 0)
                    x->loop = true;
                if (x->m->r[a].parent == a)
                    break;
            }
            continue;
        }
        long i = sched_rcpt_add(x->s, x->m, targets[k], x->parent);
        if (i < 0) {
            x->too_many = true;
            return;
        }
        sched_log_rcpt(x->s, x->m, QLOG_ADDED, (uint32_t)i);
        x->added++;
    }
}

/* Does the expansion of i's envelope recipient hold anything but aliases (something that
 * is or will be delivered, or failed on its own)? */
static bool sched_tree_has_leaf(const struct sched_msg *m, uint32_t i)
{
    for (size_t k = 0; k < m->nr; k++)
        if (k != i && m->r[k].root == m->r[i].root && m->r[k].state != SCHED_R_EXPANDED)
            return true;
    return false;
}

static void sched_fail_now(struct sched *s, struct sched_msg *m, uint32_t i,
                           enum deliver_status st, const char *enh, const char *text)
{
    struct deliver_result r;
    sched_res(&r, st, enh, "%s", text);
    m->r[i].state = SCHED_R_BUSY;
    sched_result(s, m, i, &r, NULL);
}

static long sched_local_domain(const struct config *cfg, const char *domain)
{
    for (size_t i = 0; i < cfg->ndomains; i++)
        if (strcmp(cfg->domains[i], domain) == 0)
            return (long)i;
    return -1;
}

/* A local recipient: an alias is replaced by its targets, a mailbox gets a job. False when
 * the directory says the domain is not one of its own and the configuration does not list
 * it either: the caller routes it as remote. */
static bool sched_route_local(struct sched *s, struct sched_msg *m, uint32_t i, long dom,
                              struct sched_job **lmtp_job)
{
    const struct config *cfg = s->cfg;
    char addr[1024];
    snprintf(addr, sizeof addr, "%s", m->r[i].addr);
    char *at = strrchr(addr, '@');
    const char *domain = at != NULL ? at + 1 : "";
    struct sched_expand x = {.s = s, .m = m, .parent = i};

    if (at == NULL) /* "postmaster" without a domain: RFC 5321 §4.5.1 */
        snprintf(addr, sizeof addr, "postmaster@%s", cfg->ndomains > 0 ? cfg->domains[0]
                                                  : cfg->hostname != NULL ? cfg->hostname
                                                                          : "localhost");
    char full[sizeof addr];
    memcpy(full, addr, sizeof addr);
    at = strrchr(addr, '@');
    *at = '\0';
    const char *local = addr;
    domain = at + 1;
    if (dom < 0)
        dom = sched_local_domain(cfg, domain); /* the bare postmaster's domain settings */
    if (m->r[i].depth >= SCHED_ALIAS_DEPTH) {
        sched_fail_now(s, m, i, DELIVER_PERMFAIL, "5.4.6", "alias nesting too deep");
        return true;
    }
    /* The SQLite and files backends answer from inside dir_expand (dir.h); a networked one
     * must keep that promise for the queue manager or be given a callback path here. */
    dir_expand(s->dir, full, sched_expand_cb, &x);
    if (!x.answered || x.result == DIR_TEMPFAIL) {
        sched_fail_now(s, m, i, DELIVER_TEMPFAIL, "4.3.0", "directory lookup failed");
        return true;
    }
    if (x.result == DIR_FOREIGN) {
        if (dom < 0 && strchr(m->r[i].addr, '@') != NULL)
            return false;
        x.result = DIR_NOT_FOUND; /* a configured domain the store does not list */
    }
    if (x.result == DIR_DISABLED) {
        sched_fail_now(s, m, i, DELIVER_PERMFAIL, "5.2.1", "mailbox disabled");
        return true;
    }
    if (x.too_many) {
        sched_fail_now(s, m, i, DELIVER_PERMFAIL, "5.3.3", "alias expands to too many recipients");
        return true;
    }
    if (x.result == DIR_ALIAS && x.added == 0 && x.loop && !sched_tree_has_leaf(m, i)) {
        /* HOSTILE-INPUTS K4: an alias loop that reaches no mailbox bounces, never vanishes. */
        sched_fail_now(s, m, i, DELIVER_PERMFAIL, "5.4.6", "alias loop");
        return true;
    }
    if (x.result == DIR_ALIAS) {
        m->r[i].state = SCHED_R_EXPANDED;
        m->r[i].attempts++;
        sched_log_rcpt(s, m, QLOG_EXPANDED, i);
        log_event("expanded", "id=%s to=<%s> targets=%zu", m->id, m->r[i].addr, x.added);
        sched_mark_check(s, m);
        return true;
    }
    bool postmaster = strcasecmp(local, "postmaster") == 0;
    if (x.result == DIR_NOT_FOUND && !postmaster && dom >= 0 &&
        cfg->domain_delivery[dom].lmtp == NULL) {
        sched_fail_now(s, m, i, DELIVER_PERMFAIL, "5.1.1", "no such mailbox");
        return true;
    }
    if (dom >= 0 && cfg->domain_delivery[dom].lmtp != NULL) {
        char key[600];
        snprintf(key, sizeof key, "lmtp:%s", cfg->domain_delivery[dom].lmtp);
        struct sched_dest *d = sched_dest_get(s, key, SCHED_DEST_LMTP, NULL);
        struct sched_job *j = *lmtp_job;
        if (d != NULL && (j == NULL || j->d != d || j->n == SCHED_TXN_RCPTS)) {
            if (j != NULL)
                sched_job_submit(s, m, j);
            j = *lmtp_job = sched_job_new(s, d, m);
        }
        if (d == NULL || j == NULL) {
            sched_fail_now(s, m, i, DELIVER_TEMPFAIL, "4.3.0", "out of memory");
            return true;
        }
        m->r[i].state = SCHED_R_BUSY;
        j->idx[j->n++] = i;
        return true;
    }
    const char *tmpl = dom >= 0 && cfg->domain_delivery[dom].maildir != NULL
                           ? cfg->domain_delivery[dom].maildir
                       : cfg->delivery.maildir != NULL ? cfg->delivery.maildir
                                                       : "/var/mail/%d/%u";
    char lower[512];
    size_t ll = strlen(local);
    if (ll >= sizeof lower) {
        sched_fail_now(s, m, i, DELIVER_PERMFAIL, "5.1.3", "local part too long");
        return true;
    }
    for (size_t k = 0; k <= ll; k++)
        lower[k] = (char)(local[k] >= 'A' && local[k] <= 'Z' ? local[k] - 'A' + 'a' : local[k]);
    struct sched_dest *d = sched_dest_get(s, "local", SCHED_DEST_LOCAL, NULL);
    struct sched_job *j = d != NULL ? sched_job_new(s, d, m) : NULL;
    if (j == NULL) {
        sched_fail_now(s, m, i, DELIVER_TEMPFAIL, "4.3.0", "out of memory");
        return true;
    }
    if (sched_maildir_path(tmpl, lower, domain, j->mailbox, sizeof j->mailbox) != 0) {
        sched_job_free(j);
        sched_fail_now(s, m, i, DELIVER_PERMFAIL, "5.1.3", "address unusable as a mailbox path");
        return true;
    }
    const char *pct = strchr(tmpl, '%');
    j->fixed_len = pct != NULL ? (size_t)(pct - tmpl) : strlen(j->mailbox);
    while (j->fixed_len > 0 && j->mailbox[j->fixed_len - 1] != '/')
        j->fixed_len--;
    if (j->fixed_len > 1)
        j->fixed_len--; /* the directory holding the first templated part */
    snprintf(j->rcpt, sizeof j->rcpt, "%s", m->r[i].addr);
    j->quota = x.result == DIR_MAILBOX ? x.quota : 0; /* the bare postmaster has none */
    j->idx[j->n++] = i;
    m->r[i].state = SCHED_R_BUSY;
    m->busy++;
    sched_job_queue(s, j);
    return true;
}

void sched_dispatch(struct sched *s, struct sched_msg *m, int64_t now)
{
    struct sched_job *lmtp_job = NULL;
    struct sched_job **remote = NULL; /* one open job per destination of this message */
    size_t nremote = 0;

    for (uint32_t i = 0; i < m->nr && !s->closing; i++) {
        struct sched_rcpt *rc = &m->r[i];
        if (rc->state != SCHED_R_PENDING)
            continue;
        if (rc->next_try > now) {
            sched_due(s, m, rc->next_try);
            continue;
        }
        const char *at = strrchr(rc->addr, '@');
        long dom = at != NULL ? sched_local_domain(s->cfg, at + 1) : -1;
        if ((at == NULL || dom >= 0 || dir_has_domains(s->dir)) &&
            sched_route_local(s, m, i, dom, &lmtp_job))
            continue;
        const char *domain = at + 1;
        char key[600];
        bool smart = s->cfg->delivery.smarthost != NULL;
        snprintf(key, sizeof key, smart ? "smarthost" : "smtp:%s", domain);
        struct sched_dest *d = sched_dest_get(s, key, SCHED_DEST_SMTP, smart ? NULL : domain);
        struct sched_job *j = NULL;
        size_t k;
        for (k = 0; k < nremote; k++)
            if (remote[k]->d == d && remote[k]->n < SCHED_TXN_RCPTS)
                break;
        if (d != NULL && k < nremote) {
            j = remote[k];
        } else if (d != NULL) {
            struct sched_job **nr = realloc(remote, (nremote + 1) * sizeof *nr);
            j = nr != NULL ? sched_job_new(s, d, m) : NULL;
            if (nr != NULL)
                remote = nr;
            if (j != NULL)
                remote[nremote++] = j;
        }
        if (j == NULL) {
            sched_fail_now(s, m, i, DELIVER_TEMPFAIL, "4.3.0", "out of memory");
            continue;
        }
        rc->state = SCHED_R_BUSY;
        j->idx[j->n++] = i;
    }
    if (lmtp_job != NULL) {
        remote = realloc(remote, (nremote + 1) * sizeof *remote);
        if (remote == NULL) {
            log_event("sched_error", "id=%s error=out_of_memory", m->id);
            exit(75);
        }
        remote[nremote++] = lmtp_job;
    }
    for (size_t k = 0; k < nremote; k++)
        sched_job_submit(s, m, remote[k]);
    free(remote);
}

int sched_route_open(struct sched *s, char *err, size_t errlen)
{
    /* Every local job started and not yet in a batch fits: the destination's limit. */
    s->local = calloc((size_t)s->cfg->delivery.local_concurrency * MAILDIR_BATCH, sizeof *s->local);
    s->local_ev = event_new(s->base, -1, 0, sched_local_cb, s);
    if (s->local == NULL || s->local_ev == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->pool = pool_new(s->base, s->cfg->delivery.local_concurrency);
    if (s->pool == NULL) {
        snprintf(err, errlen, "thread pool: %s", strerror(errno));
        return -1;
    }
    s->dns = dns_open(s->base, s->cfg->delivery.dns, SCHED_DNS_TIMEOUT_MS, err, errlen);
    if (s->dns == NULL)
        return -1;
    return 0;
}

void sched_dests_sweep(struct sched *s)
{
    size_t w = 0;
    for (size_t i = 0; i < s->ndests; i++) {
        struct sched_dest *d = s->dests[i];
        if (d->kind != SCHED_DEST_LOCAL && d->busy == 0 && d->wait_head == NULL &&
            d->idle == NULL) {
            log_event("destination_closed", "key=%s", d->key);
            free(d->key);
            free(d->domain);
            free(d);
            continue;
        }
        s->dests[w++] = d;
    }
    s->ndests = w;
}

void sched_route_close(struct sched *s)
{
    /* Local jobs never handed to a thread stay unrecorded: the next start delivers them. */
    while (s->nlocal > 0) {
        struct sched_job *j = s->local[--s->nlocal];
        j->m->busy--;
        sched_job_free(j);
    }
    pool_free(s->pool);
    s->pool = NULL;
    sched_conns_close(s);
    for (size_t i = 0; i < s->ndests; i++) {
        struct sched_dest *d = s->dests[i];
        while (d->wait_head != NULL) {
            struct sched_job *j = d->wait_head;
            d->wait_head = j->next;
            j->m->busy--;
            sched_job_free(j);
        }
        free(d->key);
        free(d->domain);
        free(d);
    }
    free(s->dests);
    s->dests = NULL;
    s->ndests = 0;
    dns_close(s->dns);
    s->dns = NULL;
    if (s->local_ev != NULL)
        event_free(s->local_ev);
    s->local_ev = NULL;
    free(s->local);
    s->local = NULL;
    if (s->tls_ctx != NULL)
        SSL_CTX_free(s->tls_ctx);
}
