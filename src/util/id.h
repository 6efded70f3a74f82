/* id: queue ids, unique across workers and restarts and ordered by time.
 * An id is 20 characters [0-9A-Z]: 10 for microseconds since the epoch
 * (base 36), 4 for the process id, 6 for a per-process counter. */
#ifndef SLUICE_UTIL_ID_H
#define SLUICE_UTIL_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ID_LEN 20

/* Pure: render an id from its parts into out (ID_LEN + 1 bytes). */
void id_format(char out[ID_LEN + 1], uint64_t usec, uint32_t pid, uint32_t counter);

/* True when s is exactly a well-formed id (used before any path is built from one). */
bool id_valid(const char *s, size_t len);

/* Next id of this process (reads the clock; never repeats within a process,
 * even when the clock steps back: HOSTILE-INPUTS I12). */
void id_next(char out[ID_LEN + 1]);

/* id_next with the clock reading (microseconds since the epoch) given by the caller:
 * the same process-wide state, so tests can step the clock back. */
void id_next_at(char out[ID_LEN + 1], uint64_t now_usec);

#endif
