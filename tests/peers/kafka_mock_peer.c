/* A Kafka cluster for integration tests that outlives the millrace processes under test:
 * librdkafka's mock cluster (a real Kafka-protocol peer on 127.0.0.1 with fault injection),
 * driven by commands on stdin.
 *
 *   kafka_mock_peer TOPIC PARTITIONS
 *   stdout: "bootstrap 127.0.0.1:PORT" once the cluster listens, then one answer per command
 *   stdin commands:
 *     down         every broker disconnects and refuses connections   -> "ok down"
 *     up           brokers accept connections again                    -> "ok up"
 *     dump FILE    consume TOPIC from the beginning; one JSON line per message into FILE:
 *                  {"partition":P,"offset":O,"key":"...","value":<the message value>}
 *                                                                      -> "dumped N"
 *     quit (or end of input)
 * Built by the test script that uses it: cc kafka_mock_peer.c $(pkg-config --cflags --libs
 * rdkafka). */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_json_string(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            fprintf(f, "\\%c", ch);
        } else if (ch < 0x20) {
            fprintf(f, "\\u%04x", ch);
        } else {
            fputc(ch, f);
        }
    }
    fputc('"', f);
}

/* Every message of topic into path; stops after 1.5 s without a message (max 60 s). */
static long dump(const char *bootstrap, const char *topic, int np, const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, why, sizeof(why)) != 0 ||
        rd_kafka_conf_set(conf, "group.id", "dump", why, sizeof(why)) != 0 ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", why, sizeof(why)) != 0) {
        fprintf(stderr, "consumer config: %s\n", why);
        fclose(f);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (rk == NULL) {
        fprintf(stderr, "consumer: %s\n", why);
        fclose(f);
        return -1;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++) {
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    long n = 0;
    long long start = now_ms(), last = now_ms();
    while (now_ms() - last < 1500 && now_ms() - start < 60000) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL) {
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(f, "{\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"key\":", m->partition,
                    m->offset);
            put_json_string(f, m->key != NULL ? m->key : "", m->key_len);
            fprintf(f, ",\"value\":%.*s}\n", (int)m->len, (const char *)m->payload);
            n++;
            last = now_ms();
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s TOPIC PARTITIONS\n", argv[0]);
        return 2;
    }
    const char *topic = argv[1];
    int np = 0;
    if (sscanf(argv[2], "%d", &np) != 1 || np < 1 || np > 64) {
        fprintf(stderr, "PARTITIONS: 1..64\n");
        return 2;
    }
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", why, sizeof(why));
    rd_kafka_t *owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (owner == NULL) {
        fprintf(stderr, "rd_kafka_new: %s\n", why);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(owner, 1);
    if (mc == NULL || rd_kafka_mock_topic_create(mc, topic, np, 1) != 0) {
        fprintf(stderr, "cannot start the mock cluster\n");
        return 1;
    }
    char bootstrap[256];
    snprintf(bootstrap, sizeof(bootstrap), "%s", rd_kafka_mock_cluster_bootstraps(mc));
    printf("bootstrap %s\n", bootstrap);
    fflush(stdout);
    char line[1024];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, "down") == 0) {
            rd_kafka_mock_broker_set_down(mc, -1);
            printf("ok down\n");
        } else if (strcmp(line, "up") == 0) {
            rd_kafka_mock_broker_set_up(mc, -1);
            printf("ok up\n");
        } else if (strncmp(line, "dump ", 5) == 0) {
            printf("dumped %ld\n", dump(bootstrap, topic, np, line + 5));
        } else if (strcmp(line, "quit") == 0) {
            break;
        } else {
            printf("unknown command '%s'\n", line);
        }
        fflush(stdout);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(owner);
    return 0;
}
