/* Metrics registry: counters, gauges and histograms, rendered in Prometheus text format.
 *
 * A metric is registered once (name, help, label set) and returns a handle; updating a handle is
 * lock-free (relaxed atomics) and allocation-free, so it is safe on the hot path from any thread.
 * Registration takes a lock and may allocate; do it at plugin init, never per record.
 *
 * Names follow Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*); millrace's own metrics start with
 * "millrace_". Labels are given as one string of pairs, e.g. "plugin=\"mqtt\",instance=\"press\"",
 * already escaped by mr_metrics_label_escape().
 */
#ifndef MILLRACE_METRICS_H
#define MILLRACE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mr_metrics;
struct mr_counter;
struct mr_gauge;
struct mr_histogram;

int mr_metrics_create(struct mr_metrics **out);
void mr_metrics_destroy(struct mr_metrics *m);

/* Registering the same name+labels twice returns the same handle. A name registered with a
 * different kind or help fails with MR_EEXIST; an invalid name or label string with MR_EINVAL. */
int mr_metrics_counter(struct mr_metrics *m, const char *name, const char *help, const char *labels,
                       struct mr_counter **out);
int mr_metrics_gauge(struct mr_metrics *m, const char *name, const char *help, const char *labels,
                     struct mr_gauge **out);
/* bounds: n strictly increasing upper bounds (the +Inf bucket is implicit); copied. */
int mr_metrics_histogram(struct mr_metrics *m, const char *name, const char *help,
                         const char *labels, const double *bounds, size_t n,
                         struct mr_histogram **out);

void mr_counter_add(struct mr_counter *c, uint64_t n);
uint64_t mr_counter_value(const struct mr_counter *c);
void mr_gauge_set(struct mr_gauge *g, double v);
void mr_gauge_add(struct mr_gauge *g, double delta);
double mr_gauge_value(const struct mr_gauge *g);
void mr_histogram_observe(struct mr_histogram *h, double v);

/* Collectors: fn(arg) runs at the start of every render, to set gauges from state that is read
 * rather than pushed (e.g. the journal's disk use). It must not call back into the registry
 * except mr_gauge_set/mr_counter_add. At most MR_METRICS_MAX_COLLECTORS; add returns 0 or
 * MR_ETOOBIG. Remove before arg goes away. */
#define MR_METRICS_MAX_COLLECTORS 128 /* one per output, a few more */
int mr_metrics_collector_add(struct mr_metrics *m, void (*fn)(void *arg), void *arg);
void mr_metrics_collector_remove(struct mr_metrics *m, void (*fn)(void *arg), void *arg);

/* Render every metric in Prometheus text exposition format 0.0.4 (HELP, TYPE, samples; one
 * family per name, histograms with _bucket{le=...}, _sum, _count) into out (cap bytes,
 * NUL-terminated). Returns the length, or MR_ETOOBIG with the needed size in *needed. */
long mr_metrics_render(struct mr_metrics *m, char *out, size_t cap, size_t *needed);

/* True when name is a Prometheus metric name registration accepts ([a-zA-Z_:][a-zA-Z0-9_:]*,
 * not too long): for checking a configured name at init. */
bool mr_metrics_name_valid(const char *name);

/* Escape a label value (backslash, double quote, newline) into out; returns length or
 * MR_ETOOBIG. */
long mr_metrics_label_escape(const char *value, char *out, size_t cap);

#endif
