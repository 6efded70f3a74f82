/* inject: the queue manager's own way into queue/, for the messages it writes itself
 * (delivery status notifications) and those handed to it on the control socket
 * (`sluice sendmail`). Same file format and the same promise as the workers' store
 * (doc/QUEUE.md): when queue_inject_commit returns 0 the file is complete and durable in
 * queue/; before that nothing of it is in queue/. Synchronous: it fsyncs on the caller's
 * thread. */
#ifndef SLUICE_QUEUE_INJECT_H
#define SLUICE_QUEUE_INJECT_H

#include <stddef.h>

#include "queue/envelope.h"
#include "util/id.h"

struct queue_inject;

/* Open the spool's incoming/ and queue/ once (the spool must be prepared). NULL + errno. */
struct queue_inject *queue_inject_open(const char *spool);
void queue_inject_close(struct queue_inject *qi);

struct queue_msg;

/* Start a message (temp file incoming/<id>, id written to id). NULL + errno. */
struct queue_msg *queue_inject_begin(struct queue_inject *qi, const struct queue_envelope *env,
                                     char id[ID_LEN + 1]);

/* Write bytes with queue_msg_write (store.h); drop with queue_msg_abort. */

/* Finish the file, fsync it, rename it into queue/, fsync queue/. 0, or -1 with errno (the
 * message is then gone: nothing is left in incoming/ or queue/). m is consumed. */
int queue_inject_commit(struct queue_inject *qi, struct queue_msg *m);

#endif
