/* maildir: the local delivery agent, writing into a Maildir (tmp/ -> fsync -> new/), with
 * Maildir++ quotas (the "maildirsize" file Courier and Dovecot share) when asked. */
#ifndef SLUICE_DELIVER_MAILDIR_H
#define SLUICE_DELIVER_MAILDIR_H

#include "deliver/agent.h"

/* Deliver rq->recipient's copy of the message in rq->queue_path into the Maildir rooted at
 * rq->mailbox_dir, with Return-Path and Delivered-To header lines in front of the message
 * bytes, under a name ending in ",S=<octets of the file>". With rq->quota > 0 the message
 * must fit in it after the usage maildirsize gives (recalculated from the Maildir and
 * rewritten when it is missing, damaged, over 5120 octets, for another limit, or older than
 * 15 minutes and over the limit). A delivered message appends "<octets> 1" to an existing
 * maildirsize, with or without a quota; with rq->quota 0 it is never read nor made.
 * Synchronous and blocking (file I/O
 * and fsyncs); safe to call from several threads at once. Statuses (HOSTILE-INPUTS K1, K7):
 *   OK 2.0.0        the file is in new/ and new/ was fsynced;
 *   PERMFAIL 5.2.0  the root, cur/, new/ or tmp/ exists but is a symlink, a FIFO or
 *                   anything else that is not a directory (never followed, nothing written);
 *   PERMFAIL 5.1.3  the recipient or sender contains CR or LF (would inject a header);
 *   TEMPFAIL 4.2.2  "mailbox full" (RFC 3463 X.2.2): the message would take the mailbox
 *                   past rq->quota (nothing written, the queue tries again later), or
 *                   ENOSPC or EDQUOT;
 *   TEMPFAIL 4.2.0  the root is missing or unreadable, or any other error of the mailbox
 *                   (EIO, EMFILE, EACCES...): an unmounted home must not bounce mail;
 *   TEMPFAIL 4.3.0  the queue file could not be read or is corrupt.
 * On any failure nothing is left in tmp/ or new/; cur/, new/ and tmp/ that were missing
 * are created (0700) only once the existing ones have been checked. */
void maildir_deliver(const struct deliver_request *rq, struct deliver_result *out);

#define MAILDIR_BATCH 64 /* requests per maildir_deliver_batch call at most */

/* Deliver n (at most MAILDIR_BATCH; more are ignored) requests with shared syncs: all files
 * written into their tmp/, one syncfs(2) per filesystem, all linked into new/, one more
 * syncfs per filesystem. outs[i] is request i's result, with the statuses above; a failed
 * sync fails (and takes back) every delivery it was to cover. A quota check counts the
 * earlier requests of the batch written to the same Maildir as used. */
void maildir_deliver_batch(const struct deliver_request *rqs, size_t n,
                           struct deliver_result *outs);

#endif
