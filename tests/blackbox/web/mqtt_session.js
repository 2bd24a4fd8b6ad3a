// MQTT.js clients driven by commands, the same in Node (mqttjs.mjs) and in a browser page
// (index.html, driven by browser.mjs): each command is a plain object, each answer too.
//
//   {op:"connect", name, url, options}      -> {connected:true, sessionPresent, properties}
//                                              | {connected:false, error, code}
//   {op:"subscribe", name, topic, qos}      -> {granted:[qos or reason code, ...]}
//   {op:"publish", name, topic, payload, qos, retain} -> {} once the flow is complete
//   {op:"messages", name, count, timeout}   -> {messages:[{topic, payload, qos, retain}]}
//                                              (the first `count`, waited for up to `timeout` ms;
//                                              fewer when the time ran out)
//   {op:"end", name, force}                 -> {} once the client is closed
//   {op:"wait_closed", name, timeout}       -> {closed:bool}
//   {op:"state", name}                      -> {connected, closed, errors:[...]}
//
// MQTT.js never reconnects here (reconnectPeriod 0): a refused or closed connection stays so.
// Payloads are strings (UTF-8) both ways.

(function (root) {
  "use strict";

  function createMqttSession(mqtt) {
    const clients = new Map();

    function entry(name) {
      const e = clients.get(name);
      if (!e) throw new Error("no client named " + name);
      return e;
    }

    function waitFor(pred, timeout) {
      return new Promise((resolve) => {
        const deadline = Date.now() + timeout;
        (function check() {
          if (pred()) return resolve(true);
          if (Date.now() >= deadline) return resolve(false);
          setTimeout(check, 10);
        })();
      });
    }

    const ops = {
      connect(cmd) {
        const options = Object.assign({ reconnectPeriod: 0, connectTimeout: 10000 },
                                      cmd.options || {});
        const client = mqtt.connect(cmd.url, options);
        const e = { client, received: [], errors: [], closed: false };
        clients.set(cmd.name, e);
        client.on("message", (topic, payload, packet) => {
          e.received.push({ topic, payload: payload.toString(), qos: packet.qos,
                            retain: packet.retain });
        });
        client.on("close", () => { e.closed = true; });
        return new Promise((resolve) => {
          let done = false;
          const finish = (answer) => { if (!done) { done = true; resolve(answer); } };
          client.on("error", (err) => {
            e.errors.push(String(err && err.message || err));
            finish({ connected: false, error: String(err && err.message || err),
                     code: err && err.code !== undefined ? err.code : null });
          });
          client.on("connect", (connack) => {
            finish({ connected: true, sessionPresent: !!connack.sessionPresent,
                     properties: connack.properties || null });
          });
          client.on("close", () => finish({ connected: false, error: "closed", code: null }));
        });
      },

      subscribe(cmd) {
        const { client } = entry(cmd.name);
        return new Promise((resolve, reject) => {
          client.subscribe(cmd.topic, { qos: cmd.qos || 0 }, (err, granted) => {
            if (err) return reject(err);
            resolve({ granted: granted.map((g) => g.qos) });
          });
        });
      },

      publish(cmd) {
        const { client } = entry(cmd.name);
        return new Promise((resolve, reject) => {
          client.publish(cmd.topic, cmd.payload, { qos: cmd.qos || 0, retain: !!cmd.retain },
                         (err) => (err ? reject(err) : resolve({})));
        });
      },

      async messages(cmd) {
        const e = entry(cmd.name);
        const count = cmd.count || 1;
        await waitFor(() => e.received.length >= count, cmd.timeout || 10000);
        return { messages: e.received.splice(0, count) };
      },

      end(cmd) {
        const { client } = entry(cmd.name);
        return new Promise((resolve) => client.end(!!cmd.force, {}, () => resolve({})));
      },

      async wait_closed(cmd) {
        const e = entry(cmd.name);
        return { closed: await waitFor(() => e.closed, cmd.timeout || 10000) };
      },

      state(cmd) {
        const e = entry(cmd.name);
        return { connected: e.client.connected, closed: e.closed, errors: e.errors.slice() };
      },
    };

    return {
      async handle(cmd) {
        const fn = ops[cmd.op];
        if (!fn) return { ok: false, error: "unknown op " + cmd.op };
        try {
          return Object.assign({ ok: true }, await fn(cmd));
        } catch (err) {
          return { ok: false, error: String(err && err.message || err) };
        }
      },
    };
  }

  root.createMqttSession = createMqttSession;
  if (typeof module !== "undefined" && module.exports) module.exports = { createMqttSession };
})(typeof globalThis !== "undefined" ? globalThis : this);
