#!/usr/bin/env node
// A Sparkplug B edge node built with the npm package sparkplug-client (a third-party
// implementation, not millrace's code), for tests/integration/mqtt_sparkplug_client.sh.
//
//   node sparkplug_edge_node.js PORT
//
// Connects to mosquitto on 127.0.0.1:PORT as group Plant1, edge node Edge1, and publishes:
//   NBIRTH  (seq 0, bdSeq added by the library) Uptime (alias 1, Int64 = 100)
//   DBIRTH  Press7: Temperature (alias 10, Double 20.5), Running (alias 11, Boolean true),
//           Mode (alias 12, String "AUTO")
//   DDATA   by alias only: Temperature 21.75, Running false, metric timestamps T0 + 1 s
//   then one DDATA with a sequence number skipped (as if a message was lost); millrace must
//   answer with NCMD Node Control/Rebirth; on it the node rebirths (NBIRTH + DBIRTH again) and
//   publishes a last DDATA Temperature 23.5 at T0 + 3 s, then stops with an NDEATH.
// Prints one line per event ("rebirth requested") and exits 0, or exits 1 after 10 s.
"use strict";
const sparkplug = require("sparkplug-client");

const port = process.argv[2];
const T0 = 1800000000000; // 2027-01-15T08:00:00Z in ms
const client = sparkplug.newClient({
    serverUrl: `tcp://127.0.0.1:${port}`,
    username: "",
    password: "",
    groupId: "Plant1",
    edgeNode: "Edge1",
    clientId: "sparkplug-client-edge1",
    version: "spBv1.0",
    publishDeath: true, // stop() publishes the NDEATH (bdSeq of the birth) before disconnecting
});

function births(t) {
    client.publishNodeBirth({
        timestamp: t,
        metrics: [
            { name: "Node Control/Rebirth", type: "Boolean", value: false },
            { name: "Uptime", alias: 1, type: "Int64", value: 100 },
        ],
    });
    client.publishDeviceBirth("Press7", {
        timestamp: t,
        metrics: [
            { name: "Temperature", alias: 10, type: "Double", value: 20.5 },
            { name: "Running", alias: 11, type: "Boolean", value: true },
            { name: "Mode", alias: 12, type: "String", value: "AUTO" },
        ],
    });
}

let phase = 0;
client.on("birth", () => {
    if (phase !== 0) {
        return;
    }
    phase = 1;
    births(T0);
    client.publishDeviceData("Press7", {
        timestamp: T0 + 1000,
        metrics: [
            { alias: 10, type: "Double", value: 21.75, timestamp: T0 + 1000 },
            { alias: 11, type: "Boolean", value: false, timestamp: T0 + 1000 },
        ],
    });
    client.seq++; // a lost message: the next DDATA skips one sequence number
    client.publishDeviceData("Press7", {
        timestamp: T0 + 2000,
        metrics: [{ alias: 10, type: "Double", value: 22.0 }],
    });
});

client.on("ncmd", (payload) => {
    const rebirth = (payload.metrics || []).some(
        (m) => m.name === "Node Control/Rebirth" && m.value === true
    );
    if (!rebirth || phase !== 1) {
        return;
    }
    phase = 2;
    console.log("rebirth requested");
    births(T0 + 2500);
    client.publishDeviceData("Press7", {
        timestamp: T0 + 3000,
        metrics: [{ alias: 10, type: "Double", value: 23.5 }],
    });
    setTimeout(() => {
        client.stop();
        setTimeout(() => process.exit(0), 300);
    }, 300);
});

client.on("error", (e) => {
    console.error(`sparkplug-client: ${e}`);
    process.exit(1);
});

setTimeout(() => {
    console.error(`timed out in phase ${phase}`);
    process.exit(1);
}, 10000);
