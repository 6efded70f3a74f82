/* libFuzzer target for queue/qlog, the outcome log's record codec. Any bytes (as given, and
 * with the length and checksum made to match so the fuzzer reaches the field checks)
 * either fail, or decode to a record that encodes back to exactly the bytes consumed: the
 * replay at start reads only what the queue manager could have written. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/qlog.h"
#include "util/bytes.h"
#include "util/crc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_one(const uint8_t *data, size_t size)
{
    struct qlog_rec r;
    size_t used, len;
    unsigned char out[QLOG_RECORD_MAX];
    if (qlog_decode(data, size, &r, &used) != QLOG_OK)
        return;
    if (used > size || qlog_encode(&r, out, sizeof out, &len) != 0 || len != used ||
        memcmp(out, data, used) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_one(data, size);
    if (size < 12 || size > QLOG_RECORD_MAX)
        return 0;
    unsigned char *fixed = malloc(size);
    if (fixed == NULL)
        abort();
    memcpy(fixed, data, size);
    memcpy(fixed, "SLQL", 4);
    bytes_put32(fixed + 4, (uint32_t)size);
    bytes_put32(fixed + size - 4, crc_32(fixed, size - 4));
    fuzz_one(fixed, size);
    free(fixed);
    return 0;
}
