/* inject: messages the queue manager writes into queue/ itself (see inject.h). Part of the
 * queue store: it writes through the store's own message writer (store_msg.c) with a store
 * that has no sync thread, so the file format has one writer. Invariant: a name appears in
 * queue/ only after the file's fsync, and the call returns 0 only after queue/'s fsync. */
#include "queue/inject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "queue/store.h"
#include "queue/store_priv.h"

struct queue_inject {
    struct queue_store qs; /* only the directory fds, the sequence and no fault are used */
};

struct queue_inject *queue_inject_open(const char *spool)
{
    struct queue_inject *qi = calloc(1, sizeof *qi);
    char path[4096];
    if (qi == NULL)
        return NULL;
    qi->qs.incoming_fd = qi->qs.queue_fd = -1;
    qi->qs.incoming_root_fd = qi->qs.wal_fd = qi->qs.wake_fd = -1;
    qi->qs.fault = STORE_FAULT_NONE;
    if (snprintf(path, sizeof path, "%s/incoming", spool) >= (int)sizeof path)
        goto toolong;
    qi->qs.incoming_fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (snprintf(path, sizeof path, "%s/queue", spool) >= (int)sizeof path)
        goto toolong;
    qi->qs.queue_fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (qi->qs.incoming_fd < 0 || qi->qs.queue_fd < 0) {
        int e = errno;
        queue_inject_close(qi);
        errno = e;
        return NULL;
    }
    return qi;
toolong:
    queue_inject_close(qi);
    errno = ENAMETOOLONG;
    return NULL;
}

void queue_inject_close(struct queue_inject *qi)
{
    if (qi == NULL)
        return;
    if (qi->qs.incoming_fd >= 0)
        close(qi->qs.incoming_fd);
    if (qi->qs.queue_fd >= 0)
        close(qi->qs.queue_fd);
    free(qi);
}

struct queue_msg *queue_inject_begin(struct queue_inject *qi, const struct queue_envelope *env,
                                     char id[ID_LEN + 1])
{
    return queue_msg_begin(&qi->qs, env, id);
}

int queue_inject_commit(struct queue_inject *qi, struct queue_msg *m)
{
    int err = store_msg_finish(m);
    if (err == 0 && fsync(m->fd) != 0)
        err = errno;
    if (err == 0 && renameat(qi->qs.incoming_fd, m->id, qi->qs.queue_fd, m->id) != 0)
        err = errno;
    if (err != 0) {
        unlinkat(qi->qs.incoming_fd, m->id, 0);
        store_msg_free(m);
        errno = err;
        return -1;
    }
    store_msg_free(m);
    if (fsync(qi->qs.queue_fd) != 0) {
        /* The name may or may not survive a crash: the caller must not count on it, and a
         * queue manager that goes on will deliver it (a duplicate at worst, never a loss of
         * something acknowledged, since nothing was acknowledged yet). */
        return -1;
    }
    return 0;
}
