/* CRC-32C (Castagnoli), as used by Kafka RecordBatch v2 and every millrace on-disk checksum.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, a slicing-by-8 table otherwise. */
#ifndef MILLRACE_CRC32C_H
#define MILLRACE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: start with crc = 0; crc32c(crc32c(0, a), b) == crc32c of a followed by b. */
uint32_t mr_crc32c(uint32_t crc, const void *data, size_t len);
/* The table-driven path alone, so tests can check it on machines with SSE4.2. */
uint32_t mr_crc32c_portable(uint32_t crc, const void *data, size_t len);

#endif
