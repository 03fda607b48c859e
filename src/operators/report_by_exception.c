/* Operator `report_by_exception`: forwards a value only when it differs from the last value
 * forwarded for its (asset, signal) — numbers, booleans and text alike.
 *
 *   steps:
 *     - {type: report_by_exception, heartbeat: 10m}     # machine states, counters, setpoints
 *
 * The first value of a signal, and any change of value, value type or quality, is forwarded;
 * repeats are dropped. Integers compare exactly; NaN repeating is not a change. `heartbeat`
 * forwards an unchanged value once the last forwarded one is that old (record time), and
 * `stale_after` marks a signal that went silent with one record of its last value, quality bad
 * and tag stale=true. Sample blocks pass through. It is the deadband operator with a band of
 * zero (src/operators/deadband.c has the shared code and its limits).
 */
#include "operators/op_common.h"

extern const struct mr_plugin mr_operator_report_by_exception;

static int rbe_init(void *ctx, const void *conf, struct mr_operator_host *host, struct mr_err *err)
{
    return mr_change_init(ctx, conf, &mr_operator_report_by_exception, host, err);
}

const struct mr_plugin mr_operator_report_by_exception = {
    .kind = MR_PLUGIN_OPERATOR,
    .name = "report_by_exception",
    .help = "Forwards a signal's value only when it changed (numbers, states, text), with an "
            "optional heartbeat for unchanged values and stale marking for silent signals.",
    /* heartbeat, stale_after, signals and max_keys of deadband's table */
    .conf = {.fields = mr_change_fields + MR_CHANGE_SHARED_FIELDS,
             .size = sizeof(struct mr_change_conf)},
    .ctx_size = sizeof(struct mr_change_ctx),
    .op = {.init = rbe_init,
           .process = mr_change_process,
           .advance = mr_change_advance,
           .snapshot = mr_change_snapshot,
           .restore = mr_change_restore,
           .fini = mr_change_fini},
};
