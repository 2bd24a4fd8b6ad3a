// Debian's Chromium, headless, driven through playwright-core (pinned in ../sdk), with MQTT.js
// running in a page. Started as
//   node browser.mjs '{"url": "http://127.0.0.1:PORT/index.html", "userDataDir": DIR,
//                      "args": [extra Chromium flags]}'
// It opens the page (index.html: MQTT.js and mqtt_session.js), prints {"ready": true, ...}
// and then takes JSON lines on stdin, each a mqtt_session.js command with an "id", run in the
// page; the answer is one JSON line with the same "id". One more command runs in the page
// without MQTT.js, on a bare WebSocket:
//   {op:"ws_probe", url, protocols, timeout, sendHex?, sendText?}
//     -> {opened, protocol, closeCode, wasClean, reason, received, error}
// Without sendHex/sendText it opens and closes (1000): did the handshake succeed, with which
// subprotocol. With them it sends those binary (hex) or text messages once open and waits for
// the server to close: `received` holds the messages that came (hex, or "text:..."), and
// closeCode/wasClean what the close frame said.
// Page console output and errors go to stderr.

import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const sdkRequire = createRequire(new URL("../sdk/package.json", import.meta.url));
const { chromium } = sdkRequire("playwright-core");

const config = JSON.parse(process.argv[2]);
const CHROMIUM = config.executablePath || "/usr/bin/chromium";
// As root, headless Chromium needs no sandbox; the rest keeps it from reaching the network
// on its own (updates, sync, component downloads).
const FLAGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-dev-shm-usage"];

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

async function wsProbe(cmd) {
  const probe = ({ url, protocols, timeout, sendHex, sendText }) => new Promise((resolve) => {
    let ws;
    try {
      ws = new WebSocket(url, protocols);
    } catch (e) {
      resolve({ opened: false, protocol: null, closeCode: null, error: String(e) });
      return;
    }
    ws.binaryType = "arraybuffer";
    let opened = false;
    let errored = null;
    const received = [];
    const hex = (buf) =>
      Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
    const bytes = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16)));
    const timer = setTimeout(() => {
      resolve({ opened, protocol: ws.protocol, closeCode: null, wasClean: null, received,
                error: "timeout" });
    }, timeout || 10000);
    ws.onopen = () => {
      opened = true;
      if (sendHex) for (const h of sendHex) ws.send(bytes(h));
      if (sendText) ws.send(sendText);
      if (!sendHex && !sendText) ws.close(1000);
    };
    ws.onmessage = (ev) => {
      received.push(typeof ev.data === "string" ? "text:" + ev.data : hex(ev.data));
    };
    ws.onerror = () => { errored = "error event"; };
    ws.onclose = (ev) => {
      clearTimeout(timer);
      resolve({ opened, protocol: ws.protocol, closeCode: ev.code, wasClean: ev.wasClean,
                reason: ev.reason, received, error: errored });
    };
  });
  return await page.evaluate(probe, cmd);
}

let context;
let page;
try {
  context = await chromium.launchPersistentContext(config.userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS.concat(config.args || []),
  });
  page = context.pages()[0] || await context.newPage();
  page.on("console", (msg) => process.stderr.write(`[page ${msg.type()}] ${msg.text()}\n`));
  page.on("pageerror", (err) => process.stderr.write(`[page error] ${err}\n`));
  await page.goto(config.url);
  await page.waitForFunction(() => window.sessionReady === true, null, { timeout: 15000 });
  const origin = await page.evaluate(() => window.location.origin);
  const version = context.browser() ? context.browser().version() : null;
  out({ ready: true, origin, version });
} catch (e) {
  out({ ready: false, error: String(e && e.stack || e) });
  if (context) await context.close().catch(() => {});
  process.exit(1);
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
let pending = 0;
let closing = false;

async function finish() {
  await context.close().catch(() => {});
  process.exit(0);
}

rl.on("line", (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  pending += 1;
  const run = cmd.op === "ws_probe"
    ? wsProbe(cmd).then((r) => ({ ok: true, ...r }))
    : page.evaluate((c) => window.session.handle(c), cmd);
  run.catch((e) => ({ ok: false, error: String(e && e.message || e) })).then((answer) => {
    out({ id: cmd.id, ...answer });
    pending -= 1;
    if (closing && pending === 0) finish();
  });
});
rl.on("close", () => {
  closing = true;
  if (pending === 0) finish();
});
