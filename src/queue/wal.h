/* wal: the write-ahead log records of the queue store (doc/QUEUE.md, "Write-ahead log").
 * Internal to src/queue: store_sync.c appends records in its commit rounds and, like
 * store_recover.c, turns records back into queue files through this module. */
#ifndef SLUICE_QUEUE_WAL_H
#define SLUICE_QUEUE_WAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue/store.h"
#include "util/id.h"

#define QUEUE_WAL_MAGIC "SLWR"
#define QUEUE_WAL_VERSION 2u
/* magic 4, version 4, segment sequence 8, id 20, payload length 8, CRC-32 4 */
#define QUEUE_WAL_HEAD 48
#define QUEUE_WAL_CRC_OFF 44

struct queue_wal_head {
    uint64_t seq; /* the sequence number of the segment it was written to: a segment file
                     is reused under a new name, and records of its earlier use end it */
    char id[ID_LEN + 1];
    uint64_t len; /* payload bytes: the queue file, exactly as in incoming/<id> */
    uint32_t crc; /* CRC-32 of the header's first 36 bytes, then the payload */
};

/* Pure: fill head for a record of id in segment seq whose payload of len bytes has CRC-32
 * payload_crc. The record's CRC is derived with crc32_combine, so the payload is never read
 * twice. */
void queue_wal_head_encode(unsigned char head[QUEUE_WAL_HEAD], uint64_t seq,
                           const char id[ID_LEN + 1], uint64_t len, uint32_t payload_crc);

/* Pure: check the fixed fields (magic, version, a well-formed id: it becomes a file name).
 * False when the bytes are not a record header; the CRC is checked with the payload. */
bool queue_wal_head_decode(const unsigned char head[QUEUE_WAL_HEAD], struct queue_wal_head *h);

/* Write the record at off in seg_fd (header h, already decoded) to queue/<id>: a temp file
 * in incoming/, its CRC checked while copying, fsync, rename over queue/<id>. The caller
 * fsyncs queue/. 0; EINVAL when the payload is cut short or fails its CRC (nothing is left
 * behind); another errno on an I/O error. */
int queue_wal_materialize(int seg_fd, off_t off, const struct queue_wal_head *h, int incoming_fd,
                          int queue_fd);

/* Recovery (master, lock held, no worker running): replay every segment in wal/ into
 * queue/ (records whose id has no file there), fsync queue/, then unlink the segments and
 * fsync wal/. A segment ("<pid>-<seq>") is read up to its first invalid or cut record, or
 * its first record of another sequence (left from the file's earlier use); any other name
 * is only unlinked. 0 or an errno; on error no segment is unlinked. out may be NULL. */
int queue_wal_recover(int wal_fd, int incoming_fd, int queue_fd, struct queue_store_recovery *out);

/* The same for the segments of one dead worker (wal/<pid>-<seq>), while other workers run:
 * every other name in wal/ is left alone. The caller guarantees that pid's worker is gone
 * and no new store has its pid yet. EINVAL for pid <= 0. */
int queue_wal_recover_pid(int wal_fd, pid_t pid, int incoming_fd, int queue_fd,
                          struct queue_store_recovery *out);

#endif
