// MQTT.js in Node, driven by JSON lines on stdin (see mqtt_session.js for the commands); each
// answer is one JSON line on stdout with the request's "id". Requests run concurrently.
// Options naming files ("caFile", "certFile", "keyFile") are read into MQTT.js's ca, cert and
// key, for wss. MQTT.js comes from ../sdk (pinned in its package-lock.json).

import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

const sdkRequire = createRequire(new URL("../sdk/package.json", import.meta.url));
const mqtt = sdkRequire("mqtt");
const { createMqttSession } = createRequire(import.meta.url)("./mqtt_session.js");

const session = createMqttSession(mqtt);

function withFiles(cmd) {
  const options = cmd.options;
  if (!options) return cmd;
  for (const [file, key] of [["caFile", "ca"], ["certFile", "cert"], ["keyFile", "key"]]) {
    if (options[file]) {
      options[key] = readFileSync(options[file]);
      delete options[file];
    }
  }
  return cmd;
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
let pending = 0;
let closing = false;
rl.on("line", (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  pending += 1;
  session.handle(withFiles(cmd)).then((answer) => {
    process.stdout.write(JSON.stringify({ id: cmd.id, ...answer }) + "\n");
    pending -= 1;
    if (closing && pending === 0) process.exit(0);
  });
});
rl.on("close", () => {
  closing = true;
  if (pending === 0) process.exit(0);
});
