/* Pipeline checkpoint files.
 *
 *   <journal dir>/@checkpoints/<pipeline>.ckpt     ('@' cannot start a topic name: no clash)
 *
 *   +----------+-------------+-----------------------------+------------------+
 *   | "MRCKPT1\n" | u64 LE length | payload (millrace/state.h) | u32 LE CRC-32C   |
 *   +----------+-------------+-----------------------------+------------------+
 *   payload: pipeline name, wall time, sources (topic, partition, next offset),
 *            sinks (topic, partition, end offset), watermarks, steps (plugin name, state)
 *
 * Written whole to a temporary file, fsynced, renamed over the old one, directory fsynced: a
 * crash leaves either the old or the new checkpoint, never a mix. The CRC catches a file
 * damaged afterwards; a damaged checkpoint is an error (the pipeline does not start from
 * scratch silently).
 */
#ifndef MR_ENGINE_CHECKPOINT_H
#define MR_ENGINE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "millrace/error.h"

int mr_checkpoint_write(const char *journal_dir, const char *pipeline, const void *payload,
                        size_t len, struct mr_err *err);
/* *payload (mr_free) and *len on success; MR_ENOENT when there is no checkpoint; MR_ECORRUPT
 * with err saying why. */
int mr_checkpoint_read(const char *journal_dir, const char *pipeline, uint8_t **payload,
                       size_t *len, struct mr_err *err);

#endif
