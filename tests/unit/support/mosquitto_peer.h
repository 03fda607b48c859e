/* A real mosquitto broker for unit tests that talk MQTT: on 127.0.0.1, on a free port, with its
 * configuration in the test's scratch directory; the test stops it by PID. */
#ifndef MILLRACE_TEST_MOSQUITTO_PEER_H
#define MILLRACE_TEST_MOSQUITTO_PEER_H

#include <sys/types.h>

/* A TCP port on 127.0.0.1 nobody listens on right now. */
int mr_test_free_port(void);
/* Start /usr/sbin/mosquitto listening on 127.0.0.1:port (anonymous, no persistence), its
 * configuration written to dir/mosquitto.conf and its output discarded; returns once the port
 * accepts connections (at most 5 s). Returns the broker's PID, or -1. */
pid_t mr_test_mosquitto_start(const char *dir, int port);

#endif
