/* store: the durable queue on disk (DESIGN §4, doc/QUEUE.md). A worker streams a message
 * into the store while it arrives and asks for a commit at the end of data; the commit is
 * done by a sync thread that appends every message finishing in the same moment to the
 * worker's write-ahead log and covers them with one fdatasync (group commit), and the
 * answer comes back on the event loop. Nothing is reported committed before the message's
 * bytes are on stable storage in the log; a checkpoint later moves the messages into
 * queue/, where every file is complete and durable. */
#ifndef SLUICE_QUEUE_STORE_H
#define SLUICE_QUEUE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue/envelope.h"
#include "util/id.h"

/* Bytes after the message in a queue file: the end record ("QEND" and a CRC-32 of every byte
 * before it), so a file is body_offset + body_len + QUEUE_FILE_END bytes long. */
#define QUEUE_FILE_END 8

struct event_base;
struct queue_store;
struct queue_msg;

/* Master, before any worker starts: create the spool layout if missing, lock the spool
 * against a second instance (I11), recover the messages acknowledged in the write-ahead
 * log but not yet in queue/, and remove the leftovers of a crash (messages that were never
 * committed). Returns 0 or -1 with errno; *lock_fd keeps the lock while it is open. */
int queue_store_prepare(const char *spool, int *lock_fd);

/* What recovery found in the write-ahead log, for the master to log. */
struct queue_store_recovery {
    uint64_t segments; /* log segment files read */
    uint64_t records;  /* valid records in them */
    uint64_t replayed; /* records written into queue/ because their id was missing there */
    uint64_t present;  /* records whose id was already in queue/: left alone */
    uint64_t torn;     /* segments that ended in a cut or invalid record (crash mid-append) */
};

/* queue_store_prepare, and the recovery counts in *out (filled in as far as recovery got,
 * also on error). */
int queue_store_prepare_recover(const char *spool, int *lock_fd, struct queue_store_recovery *out);

/* Master, after reaping worker pid, before forking again (so that no live store has that
 * pid): replay the dead worker's log segments wal/<pid>-* into queue/ as start-up recovery
 * does (records whose id is already in queue/ are skipped), fsync queue/, unlink those
 * segments, fsync wal/, then remove its incoming/<pid>/. Touches nothing of another pid, so
 * it is safe while other workers run. Cheap when the worker closed its store cleanly: it
 * then finds nothing. 0, or -1 with errno (EINVAL for pid <= 0; on an I/O error no segment
 * is unlinked, and the recovery at the next start does the work); the counts go to *out
 * (may be NULL), as far as it got. */
int queue_store_recover_worker(const char *spool, pid_t pid, struct queue_store_recovery *out);

/* Worker: open the store on its event loop and start the sync thread. The store writes its
 * messages in incoming/<pid>/ (created here, removed by queue_store_close when empty) and
 * its log in wal/<pid>-<seq>, pid being the caller's. One store per process. NULL + errno
 * (EINVAL for an unknown SLUICE_FAULT value: see doc/QUEUE.md, fault injection). */
struct queue_store *queue_store_open(const char *spool, struct event_base *base);

/* Finish every commit in flight (their callbacks run, from inside this call, and must not
 * begin or commit messages), checkpoint, stop the thread, free. On return every message
 * acknowledged by this store is in queue/, unless the checkpoint failed: then it stays in
 * the write-ahead log, for the recovery at the next start. Every message begun must have
 * been committed or aborted before. */
void queue_store_close(struct queue_store *qs);

/* Start a message: allocate its id (written to id) and write the envelope. NULL + errno
 * (ENOSPC, EDQUOT, EIO...). */
struct queue_msg *queue_msg_begin(struct queue_store *qs, const struct queue_envelope *env,
                                  char id[ID_LEN + 1]);

/* Append message bytes (Received header first, then the body as received). Buffered; 0 or
 * -1 with errno. After an error the message can only be aborted. */
int queue_msg_write(struct queue_msg *m, const void *data, size_t len);

/* Drop an unfinished message and everything it wrote (client gone, size exceeded...). */
void queue_msg_abort(struct queue_msg *m);

/* Called on the event loop thread once the commit is durable (error 0) or has failed
 * (error = errno; the message is never delivered, except for the rare duplicate that
 * doc/QUEUE.md describes under "round failed"). cookie is the caller's: a
 * session id, never a pointer, because the session may be gone by then. */
typedef void (*queue_commit_cb)(int error, const char *id, uint64_t cookie, void *arg);

/* Hand the message to the sync thread; m is consumed. cb runs later, never from inside
 * this call. */
void queue_msg_commit(struct queue_msg *m, queue_commit_cb cb, uint64_t cookie, void *arg);

/* Counters of one store, for tests and benchmarks (how well commits are grouped). */
struct queue_store_stats {
    uint64_t rounds;        /* commit rounds run: one append and one fdatasync of the log each */
    uint64_t committed;     /* commits reported durable */
    uint64_t failed;        /* commits reported with an error */
    uint64_t largest_round; /* most messages covered by a single round */
    uint64_t checkpoints;   /* checkpoints that moved messages into queue/ */
    uint64_t checkpoint_failures; /* failed checkpoint attempts (retried; nothing dropped) */
};

/* Loop thread: copy the counters into *out. */
void queue_store_get_stats(struct queue_store *qs, struct queue_store_stats *out);

/* Read back a committed message's envelope (tests, recovery, the queue manager). Fails
 * closed: 0, or -1 with errno EINVAL for any corruption (a symlink or anything but a regular
 * file included; ENOENT, EACCES, EIO and ENOMEM pass through). The whole file is checked
 * against its end record's CRC-32 before anything is returned. *body_offset and *body_len
 * locate the message bytes in the file; free *env with queue_envelope_free. */
int queue_file_read(const char *path, struct queue_envelope *env, uint64_t *body_offset,
                    uint64_t *body_len);

#endif
