/* scheduler: the queue manager's brain (DESIGN §2 steps 6-8, doc/QUEUE.md "Delivery").
 * It learns of committed messages in queue/, routes each recipient (local mailbox, alias,
 * LMTP domain, remote domain), hands them to delivery agents within concurrency limits,
 * records each recipient's outcome durably in the outcome log (qlog), retries with
 * backoff, sends delivery status notifications, and removes a message when nothing is
 * left to do. One per queue manager process, on its event loop. */
#ifndef SLUICE_QUEUE_SCHEDULER_H
#define SLUICE_QUEUE_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "queue/ctl.h"
#include "queue/envelope.h"
#include "util/id.h"

struct event_base;
struct dir;
struct sched;

/* Open the outcome log under <spool>/state/, read every file in queue/ (a file the reader
 * refuses is moved to corrupt/ and logged: I10), replay the log onto them, compact it, and
 * start delivering. cfg and d must outlive the scheduler. NULL with a message in err. */
struct sched *sched_open(struct event_base *base, const struct config *cfg, struct dir *d,
                         char *err, size_t errlen);

/* Stop taking new work, let deliveries in flight finish (at most wait_ms), record their
 * outcomes, and free. What was not recorded is delivered again by the next start. */
void sched_close(struct sched *s, unsigned wait_ms);

/* A file appeared in queue/ (inotify, or a rescan found it): load it if it is new. */
void sched_notice(struct sched *s, const char *id);

/* List queue/ and notice every id (the periodic safety net); also forget destinations that
 * have had nothing to do since the last rescan. Not from inside another scheduler call. */
void sched_rescan(struct sched *s);

/* Operator actions. 0, or -1 with errno ENOENT (no such message). flush with id NULL makes
 * every deferred recipient of every message due now. */
int sched_flush(struct sched *s, const char *id);
int sched_hold(struct sched *s, const char *id);
int sched_release(struct sched *s, const char *id);
int sched_delete(struct sched *s, const char *id); /* removed without a DSN, logged */

/* Calls fn for each message (or only id's when id is not NULL), in queue id order, with its
 * recipients. 0, or -1 with errno ENOENT when id is given and unknown. */
typedef void (*sched_list_fn)(const struct ctl_msg_info *m, const struct ctl_rcpt_info *rcpts,
                              size_t nrcpts, void *arg);
int sched_list(struct sched *s, const char *id, sched_list_fn fn, void *arg);

/* Counters for tests and benchmarks. */
struct sched_stats {
    uint64_t messages;   /* in memory now */
    uint64_t delivered;  /* recipients delivered since start */
    uint64_t deferred;
    uint64_t failed;
    uint64_t bounces;    /* DSNs queued */
    uint64_t in_flight;  /* deliveries running */
};
void sched_get_stats(const struct sched *s, struct sched_stats *out);

/* Pure: the delay before try number attempts + 1, after attempts failures (attempts >= 1):
 * min_ms doubled per failure, capped at max_ms. */
uint64_t sched_backoff_ms(unsigned attempts, uint64_t min_ms, uint64_t max_ms);

/* Pure: expand a Maildir path template for local@domain: %d the domain, %u the local part,
 * %% a '%'. Both must already be lower case. Refuses (-1) a local part or domain that is
 * empty, starts with '.', or holds '/', a control byte or anything that is not printable
 * ASCII or UTF-8, an unknown % sequence, or a result longer than cap - 1. 0 on success. */
int sched_maildir_path(const char *tmpl, const char *local, const char *domain, char *out,
                       size_t cap);

#endif
