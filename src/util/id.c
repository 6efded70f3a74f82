/* id: queue ids (DESIGN §4: unique across workers and restarts, time-ordered, in every
 * log line and in the "250 ... queued as" reply).
 *
 * Called by the queue store when a transaction starts and by anything that builds a
 * path from an id (through id_valid first).
 *
 * An id is 20 characters of [0-9A-Z]: 10 for microseconds since the epoch, 4 for the
 * process id, 6 for a per-process counter, each in base 36, most significant digit
 * first, so ids sort by time as plain strings. Each field is taken modulo its range
 * (36^10 microseconds last until the year 2085).
 *
 * Invariants: within one process id_next never repeats (the counter is incremented
 * atomically) and never goes back in time, even when the clock does (HOSTILE-INPUTS
 * I12): the time part is the largest time any earlier call used. Across processes the
 * pid field separates ids made in the same microsecond.
 */
#include "util/id.h"

#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

static _Atomic uint64_t id_last_usec;
static _Atomic uint32_t id_counter;

void id_next_at(char out[ID_LEN + 1], uint64_t now_usec)
{
    uint64_t last = atomic_load(&id_last_usec);
    while (now_usec > last && !atomic_compare_exchange_weak(&id_last_usec, &last, now_usec))
        ;
    uint64_t usec = now_usec > last ? now_usec : last;
    uint32_t counter = atomic_fetch_add(&id_counter, 1);
    id_format(out, usec, (uint32_t)getpid(), counter);
}

void id_next(char out[ID_LEN + 1])
{
    struct timespec ts;
    uint64_t usec = 0;
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && ts.tv_sec >= 0)
        usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    id_next_at(out, usec);
}
