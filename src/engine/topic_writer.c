/* Records into a journal topic, batched per partition: see topic_writer.h. */
#include <string.h>

#include "engine/topic_writer.h"
#include "millrace/alloc.h"
#include "millrace/clock.h"
#include "millrace/metrics.h"

/* Append times kept per partition for commit timing: a batch more than this many behind the
 * newest append of its partition is not timed (its slot was reused). */
#define COMMIT_RING 256u

/* The encoded record must fit a batch with its key and headers: the largest sample block. */
#define SCRATCH_CAP ((size_t)MR_RECORD_MAX_SAMPLES * sizeof(float) + 64 * 1024)

static const struct mr_batch_header mr_header = {
    .key = MR_RECORD_HEADER_KEY,
    .key_len = (int32_t)(sizeof(MR_RECORD_HEADER_KEY) - 1),
    .value = MR_RECORD_HEADER_VALUE,
    .value_len = (int32_t)(sizeof(MR_RECORD_HEADER_VALUE) - 1),
};

int mr_topic_writer_init(struct mr_topic_writer *w, struct mr_journal_topic *topic,
                         const struct mr_names *names, size_t batch_cap)
{
    memset(w, 0, sizeof(*w));
    w->topic = topic;
    w->topic_name = mr_journal_topic_name(topic);
    w->nparts = mr_journal_topic_partitions(topic);
    w->names = names;
    w->batch_cap = batch_cap < SCRATCH_CAP + 4096 ? SCRATCH_CAP + 4096 : batch_cap;
    w->scratch_cap = SCRATCH_CAP;
    w->builders = mr_calloc(w->nparts, sizeof(*w->builders));
    w->bufs = mr_malloc((size_t)w->nparts * w->batch_cap);
    w->scratch = mr_malloc(w->scratch_cap);
    w->appended_in = mr_calloc(w->nparts, sizeof(uint64_t));
    w->acked_in = mr_calloc(w->nparts, sizeof(uint64_t));
    if (w->builders == NULL || w->bufs == NULL || w->scratch == NULL || w->appended_in == NULL ||
        w->acked_in == NULL) {
        mr_free(w->builders);
        mr_free(w->bufs);
        mr_free(w->scratch);
        mr_free(w->appended_in);
        mr_free(w->acked_in);
        memset(w, 0, sizeof(*w));
        return MR_ENOMEM;
    }
    for (uint32_t p = 0; p < w->nparts; p++) {
        mr_batch_builder_init(&w->builders[p], w->bufs + (size_t)p * w->batch_cap, w->batch_cap);
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    atomic_init(&w->records_acked, 0);
    return 0;
}

void mr_topic_writer_fini(struct mr_topic_writer *w)
{
    if (w->builders == NULL) {
        return;
    }
    /* Appends hold a pointer to w until acknowledged. */
    pthread_mutex_lock(&w->mu);
    while (w->acked < w->appended) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    mr_free(w->builders);
    mr_free(w->bufs);
    mr_free(w->scratch);
    mr_free(w->appended_in);
    mr_free(w->acked_in);
    mr_free(w->part_of);
    mr_free(w->append_ns);
    mr_name_hashes_fini(&w->hashes);
    memset(w, 0, sizeof(*w));
}

int mr_topic_writer_time_commits(struct mr_topic_writer *w, struct mr_histogram *h)
{
    int64_t *ring = mr_calloc((size_t)w->nparts * COMMIT_RING, sizeof(int64_t));
    if (ring == NULL) {
        return MR_ENOMEM;
    }
    pthread_mutex_lock(&w->mu);
    mr_free(w->append_ns);
    w->append_ns = ring;
    w->commit_seconds = h;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static void on_ack(void *arg, int status, uint32_t partition, int64_t base_offset, uint32_t count)
{
    (void)base_offset;
    struct mr_topic_writer *w = arg;
    if (status == 0) {
        atomic_fetch_add_explicit(&w->records_acked, count, memory_order_relaxed);
    }
    pthread_mutex_lock(&w->mu);
    if (status != 0 && w->first_error == 0) {
        w->first_error = status;
    }
    if (status == 0 && w->commit_seconds != NULL &&
        w->appended_in[partition] - w->acked_in[partition] <= COMMIT_RING) {
        int64_t t0 =
            w->append_ns[(size_t)partition * COMMIT_RING + w->acked_in[partition] % COMMIT_RING];
        mr_histogram_observe(w->commit_seconds, (double)(mr_clock_mono_ns() - t0) / 1e9);
    }
    w->acked++;
    w->acked_in[partition]++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int append_partition(struct mr_topic_writer *w, uint32_t p)
{
    struct mr_batch_builder *b = &w->builders[p];
    if (mr_batch_builder_count(b) == 0) {
        return 0;
    }
    const uint8_t *data;
    size_t len;
    int rc = mr_batch_builder_finish(b, &data, &len);
    if (rc == 0) {
        pthread_mutex_lock(&w->mu);
        if (w->append_ns != NULL) {
            w->append_ns[(size_t)p * COMMIT_RING + w->appended_in[p] % COMMIT_RING] =
                mr_clock_mono_ns();
        }
        w->appended++;
        w->appended_in[p]++;
        pthread_mutex_unlock(&w->mu);
        /* Copied by the journal: the builder is reusable at once. Blocks while the journal's
         * queue is full, which is the back-pressure that keeps memory bounded. */
        rc =
            mr_journal_append(w->topic, p, (void *)data, len, MR_JOURNAL_APPEND_TRUSTED, on_ack, w);
        if (rc == 0) {
            w->bytes_appended += len;
        } else {
            pthread_mutex_lock(&w->mu);
            w->appended--;
            w->appended_in[p]--;
            if (w->first_error == 0) {
                w->first_error = rc;
            }
            pthread_mutex_unlock(&w->mu);
        }
    }
    mr_batch_builder_reset(b);
    return rc;
}

static uint32_t partition_of(struct mr_topic_writer *w, mr_name_id asset, const char *key,
                             size_t key_len)
{
    if (w->nparts == 1) {
        return 0;
    }
    if (asset < w->part_of_cap && w->part_of[asset] != 0) {
        return w->part_of[asset] - 1;
    }
    uint32_t p = mr_journal_partition_for_key(key, key_len, w->nparts);
    if (asset >= w->part_of_cap) {
        size_t cap = w->part_of_cap != 0 ? w->part_of_cap : 256;
        while (cap <= asset) {
            cap *= 2;
        }
        uint32_t *np = mr_realloc(w->part_of, cap * sizeof(uint32_t));
        if (np == NULL) {
            return p;
        }
        memset(np + w->part_of_cap, 0, (cap - w->part_of_cap) * sizeof(uint32_t));
        w->part_of = np;
        w->part_of_cap = cap;
    }
    w->part_of[asset] = p + 1;
    return p;
}

uint32_t mr_topic_writer_partition(struct mr_topic_writer *w, const struct mr_record *rec)
{
    size_t key_len = 0;
    const char *key = mr_names_str(w->names, rec->asset, &key_len);
    return key == NULL ? 0 : partition_of(w, rec->asset, key, key_len);
}

int mr_topic_writer_add_with(struct mr_topic_writer *w, const struct mr_record *rec,
                             const struct mr_batch_header *extra)
{
    long n = mr_record_encode(rec, w->names, w->scratch, w->scratch_cap);
    if (n < 0) {
        return (int)n;
    }
    size_t key_len = 0;
    const char *key = mr_names_str(w->names, rec->asset, &key_len);
    if (key == NULL) {
        return MR_EINVAL;
    }
    struct mr_batch_header headers[2] = {mr_header};
    size_t nh = 1;
    if (extra != NULL) {
        headers[nh++] = *extra;
    }
    uint32_t p = partition_of(w, rec->asset, key, key_len);
    int64_t ms = rec->time_ns / 1000000;
    struct mr_batch_builder *b = &w->builders[p];
    int rc =
        mr_batch_builder_add(b, ms, key, (int32_t)key_len, w->scratch, (int32_t)n, headers, nh);
    if (rc == MR_ETOOBIG && mr_batch_builder_count(b) > 0) {
        rc = append_partition(w, p);
        if (rc == 0) {
            rc = mr_batch_builder_add(b, ms, key, (int32_t)key_len, w->scratch, (int32_t)n, headers,
                                      nh);
        }
    }
    return rc;
}

int mr_topic_writer_add(struct mr_topic_writer *w, const struct mr_record *rec)
{
    return mr_topic_writer_add_with(w, rec, NULL);
}

int mr_topic_writer_flush(struct mr_topic_writer *w)
{
    int first = 0;
    for (uint32_t p = 0; p < w->nparts; p++) {
        int rc = append_partition(w, p);
        if (rc != 0 && first == 0) {
            first = rc;
        }
    }
    return first;
}

int mr_topic_writer_sync(struct mr_topic_writer *w)
{
    int rc = mr_topic_writer_flush(w);
    pthread_mutex_lock(&w->mu);
    while (w->acked < w->appended) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    if (w->first_error != 0) {
        rc = w->first_error;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

bool mr_topic_writer_settled(struct mr_topic_writer *w)
{
    pthread_mutex_lock(&w->mu);
    bool settled = w->acked == w->appended && w->first_error == 0;
    pthread_mutex_unlock(&w->mu);
    return settled;
}

void mr_topic_writer_mark(struct mr_topic_writer *w, uint64_t *mark)
{
    pthread_mutex_lock(&w->mu);
    memcpy(mark, w->appended_in, w->nparts * sizeof(uint64_t));
    pthread_mutex_unlock(&w->mu);
}

bool mr_topic_writer_durable_at(struct mr_topic_writer *w, const uint64_t *mark)
{
    pthread_mutex_lock(&w->mu);
    bool ok = w->first_error == 0;
    for (uint32_t p = 0; ok && p < w->nparts; p++) {
        ok = w->acked_in[p] >= mark[p];
    }
    pthread_mutex_unlock(&w->mu);
    return ok;
}
