#!/usr/bin/env node
// A Sparkplug B host built on third-party npm packages (sparkplug-payload decodes, mqtt
// subscribes; neither is millrace's code), for tests/integration/mqtt_output_sparkplug_edge_node.sh.
//
//   node sparkplug_host.js PORT GROUP [rebirth]
//
// Subscribes to spBv1.0/GROUP/# on mosquitto at 127.0.0.1:PORT and prints one JSON line per
// message: {"topic", "type", "device", "seq", "metrics": [{"name", "alias", "type", "value"}]}
// (64-bit values as numbers). Prints {"subscribed": true} once the subscription is acknowledged.
// With `rebirth`, after the first DDATA it publishes an NCMD "Node Control/Rebirth" = true to
// that edge node, as a SCADA host does when it lost track of the node.
"use strict";
const mqtt = require("mqtt");
const sparkplug = require("sparkplug-payload").get("spBv1.0");

const [port, group, mode] = process.argv.slice(2);
const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: "third-party-host" });
let asked = false;

function plain(v) {
    if (v !== null && typeof v === "object" && typeof v.toNumber === "function") {
        return v.toNumber();
    }
    return v;
}

client.on("connect", () => {
    client.subscribe(`spBv1.0/${group}/#`, { qos: 1 }, (err) => {
        if (err) {
            console.error(err);
            process.exit(1);
        }
        console.log(JSON.stringify({ subscribed: true }));
    });
});

client.on("message", (topic, buf) => {
    const parts = topic.split("/");
    const type = parts[2];
    if (type === "NCMD" || type === "DCMD" || type === "STATE") {
        return;
    }
    let p;
    try {
        p = sparkplug.decodePayload(buf);
    } catch (e) {
        console.log(JSON.stringify({ topic, type, error: String(e) }));
        return;
    }
    const out = {
        topic,
        type,
        node: parts[3],
        device: parts[4] || null,
        seq: p.seq === undefined || p.seq === null ? null : plain(p.seq),
        metrics: (p.metrics || []).map((m) => ({
            name: m.name === undefined ? null : m.name,
            alias: m.alias === undefined || m.alias === null ? null : plain(m.alias),
            type: m.type,
            value: plain(m.value),
        })),
    };
    console.log(JSON.stringify(out));
    if (mode === "rebirth" && type === "DDATA" && !asked) {
        asked = true;
        const cmd = sparkplug.encodePayload({
            timestamp: Date.now(),
            metrics: [{ name: "Node Control/Rebirth", type: "Boolean", value: true }],
        });
        client.publish(`spBv1.0/${group}/NCMD/${parts[3]}`, cmd, { qos: 1 });
    }
});

process.on("SIGTERM", () => client.end(true, () => process.exit(0)));
