/* Sparkplug B edge node state and payloads for the mqtt output (src/outputs/mqtt_out.c). No I/O:
 * the output publishes what these functions encode, in the order it encodes them.
 *
 * One edge node (group_id, edge_node_id); every asset path becomes a device of it, named by the
 * path with '/' replaced by a separator ("plant/hall2/press7" -> "plant.hall2.press7"). A device's
 * metrics are the signals seen for it so far, in order of first sight; each gets an alias
 * (unique in the edge node, 1, 2, ...) and the Sparkplug datatype of its value kind (f64 Double,
 * i64 Int64, bool Boolean, string String; sample blocks are refused). A new signal, or a signal
 * whose value kind changed, needs a new DBIRTH of its device before the next DDATA.
 *
 * Sequence: NBIRTH carries seq 0; every DBIRTH and DDATA after it the next seq mod 256.
 * Quality other than good travels as an OPC-style metric property "Quality" (Int32: 64
 * uncertain, 0 bad), the form millrace's own Sparkplug input reads.
 *
 * Memory: devices and metrics are created on first sight (bounded by max_devices and
 * max_metrics); births allocate their message tables; DDATA allocates nothing.
 * Not thread-safe: the caller serialises every call.
 */
#ifndef MILLRACE_OUTPUTS_SPARKPLUG_OUT_H
#define MILLRACE_OUTPUTS_SPARKPLUG_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "millrace/error.h"
#include "millrace/names.h"
#include "millrace/record.h"

struct mr_spb_edge_conf {
    const char *group_id;
    const char *edge_node_id;
    const char *device_separator; /* replaces '/' of the asset path; NULL: "." */
    uint32_t max_devices;         /* 0: 1000 */
    uint32_t max_metrics;         /* per device; 0: 1000 */
};

enum mr_spb_msg {
    MR_SPB_NBIRTH,
    MR_SPB_NDEATH,
    MR_SPB_NCMD,
    MR_SPB_DBIRTH,
    MR_SPB_DDATA,
};

struct mr_spb_edge;

/* names: where the records' names live (borrowed, must outlive the state). Strings of conf are
 * copied. Returns 0, MR_ECONFIG with err naming the bad id, or MR_ENOMEM. */
int mr_spb_edge_create(struct mr_spb_edge **out, struct mr_names *names,
                       const struct mr_spb_edge_conf *conf, struct mr_err *err);
void mr_spb_edge_destroy(struct mr_spb_edge *e);

/* Take a record into the state: find or create its device and metric, remember its value (for
 * the next birth). *dev receives the device index; *birth is set when the device must be (re)born
 * before this record's DDATA (never born since the last NBIRTH, a new metric, a changed kind).
 * Returns 0, or MR_ENOTSUP (sample block), MR_ETOOBIG (max_devices, max_metrics, device name
 * longer than 255 bytes) or MR_ENOMEM, with *reason set to words for the dead-letter topic. */
int mr_spb_edge_observe(struct mr_spb_edge *e, const struct mr_record *rec, uint32_t *dev,
                        bool *birth, const char **reason);

uint32_t mr_spb_edge_device_count(const struct mr_spb_edge *e);

/* Topic of a message: spBv1.0/<group>/<TYPE>/<node>[/<device>] (dev ignored for node messages).
 * Returns the length or MR_ETOOBIG. */
long mr_spb_edge_topic(const struct mr_spb_edge *e, enum mr_spb_msg type, uint32_t dev, char *out,
                       size_t cap);

/* Encoders: write the payload into out (cap bytes) and return its length, MR_ETOOBIG or
 * MR_ENOMEM. NBIRTH resets seq to 0 and marks every device unborn; DBIRTH and DDATA take the
 * next seq (undo it with mr_spb_edge_seq_undo when the message could not be published). */
long mr_spb_edge_nbirth(struct mr_spb_edge *e, uint64_t bdseq, int64_t now_ms, uint8_t *out,
                        size_t cap);
long mr_spb_edge_ndeath(uint64_t bdseq, int64_t now_ms, uint8_t *out, size_t cap);
long mr_spb_edge_dbirth(struct mr_spb_edge *e, uint32_t dev, int64_t now_ms, uint8_t *out,
                        size_t cap);
long mr_spb_edge_ddata(struct mr_spb_edge *e, uint32_t dev, const struct mr_record *rec,
                       int64_t now_ms, uint8_t *out, size_t cap);
void mr_spb_edge_seq_undo(struct mr_spb_edge *e);
/* The seq the last encoded message carried. */
uint8_t mr_spb_edge_seq(const struct mr_spb_edge *e);

/* Does this NCMD payload ask for a rebirth (metric "Node Control/Rebirth" = true)? */
bool mr_spb_edge_is_rebirth(const uint8_t *payload, size_t len);

#endif
