/* From the `journal:` section of the configuration to journal options.
 *
 * The configuration speaks the user's language (durations in ns, 0 = "keep forever" /
 * "unlimited", per-topic overrides by name); the journal speaks its own (ms, -1 = unlimited,
 * MR_JOURNAL_DEFAULT = inherit). This is the one place that translates, so `millrace run` and
 * anything else that opens a configured journal agree.
 */
#include <string.h>

#include "millrace/config.h"
#include "millrace/journal.h"

#define NS_PER_MS 1000000LL

static int64_t ms_or_unlimited(int64_t ns)
{
    return ns <= 0 ? MR_JOURNAL_UNLIMITED : ns / NS_PER_MS;
}

static int64_t bytes_or_unlimited(uint64_t bytes)
{
    return bytes == 0 || bytes > (uint64_t)INT64_MAX ? MR_JOURNAL_UNLIMITED : (int64_t)bytes;
}

void mr_journal_options_from_conf(struct mr_journal_options *o, const struct mr_journal_conf *c)
{
    mr_journal_options_init(o);
    o->dir = c->dir;
    switch (c->fsync) {
    case MR_FSYNC_INTERVAL:
        o->fsync = MR_JOURNAL_FSYNC_INTERVAL;
        break;
    case MR_FSYNC_NEVER:
        o->fsync = MR_JOURNAL_FSYNC_NEVER;
        break;
    default:
        o->fsync = MR_JOURNAL_FSYNC_ALWAYS;
        break;
    }
    int64_t interval_ms = c->fsync_interval_ns / NS_PER_MS;
    o->fsync_interval_ms = (uint32_t)(interval_ms < 1 ? 1 : interval_ms);
    o->segment_bytes = c->segment_bytes;
    o->segment_age_ms = ms_or_unlimited(c->segment_age_ns);
    o->retention_age_ms = ms_or_unlimited(c->retention_age_ns);
    o->retention_bytes = bytes_or_unlimited(c->retention_bytes);
    o->max_bytes = bytes_or_unlimited(c->max_bytes);
    o->overflow = c->overflow == MR_OVERFLOW_DROP_OLDEST  ? MR_JOURNAL_OVERFLOW_DROP_OLDEST
                  : c->overflow == MR_OVERFLOW_DOWNSAMPLE ? MR_JOURNAL_OVERFLOW_DOWNSAMPLE
                                                          : MR_JOURNAL_OVERFLOW_BLOCK;
}

bool mr_journal_topic_low_priority_from_conf(const struct mr_journal_conf *c, const char *topic)
{
    for (size_t i = 0; i < c->topics.n; i++) {
        if (strcmp(c->topics.items[i].name, topic) == 0) {
            const struct mr_journal_topic_conf *t = c->topics.items[i].conf;
            return t->priority == MR_TOPIC_PRIORITY_LOW;
        }
    }
    return false;
}

uint32_t mr_journal_topic_from_conf(const struct mr_journal_conf *c, const char *topic,
                                    struct mr_journal_topic_options *o)
{
    mr_journal_topic_options_init(o);
    for (size_t i = 0; i < c->topics.n; i++) {
        if (strcmp(c->topics.items[i].name, topic) != 0) {
            continue;
        }
        const struct mr_journal_topic_conf *t = c->topics.items[i].conf;
        if (t->has_retention_age) {
            o->retention_age_ms = ms_or_unlimited(t->retention_age_ns);
        }
        if (t->has_retention_bytes) {
            o->retention_bytes = bytes_or_unlimited(t->retention_bytes);
        }
        return t->partitions > 0 ? (uint32_t)t->partitions : 0;
    }
    return 0;
}
