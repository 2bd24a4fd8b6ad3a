// Drives the real Scaleway JavaScript SDK (@scaleway/sdk-iot on @scaleway/sdk-client) for the
// black-box tests. One JSON request per line on stdin:
//   {"id":1,"method":"createHub","args":{...},"profile":{"apiURL":...,"secretKey":...,
//    "defaultRegion":"fr-par","defaultProjectId"?:...,"accessKey"?:...},"options"?:{...}}
// One JSON line per request on stdout, in completion order:
//   {"id":1,"ok":true,"result":...}
//   {"id":1,"ok":false,"error":{"name","status","message","body","details",...}}
// `args` is the SDK request object as is (camelCase). `options` goes to waiters (waitForHub).
// Results are what the SDK returns, camelCase, with dates as ISO 8601 strings.

import { createInterface } from "node:readline";
import { createClient } from "@scaleway/sdk-client";
import { Iotv1 } from "@scaleway/sdk-iot";

// The SDK sends X-Auth-Token only when it has both an access key and a secret key, and checks
// the access key's form. iothub authenticates with the secret alone, so any well-formed access
// key does when the test has none (the admin token file holds only the secret).
const PLACEHOLDER_ACCESS_KEY = "SCWXXXXXXXXXXXXXXXXX";

const apis = new Map();

function apiFor(profile) {
  const key = JSON.stringify(profile ?? {});
  let api = apis.get(key);
  if (!api) {
    const settings = { defaultRegion: "fr-par", ...profile };
    if (settings.secretKey && !settings.accessKey) settings.accessKey = PLACEHOLDER_ACCESS_KEY;
    api = new Iotv1.API(createClient(settings));
    apis.set(key, api);
  }
  return api;
}

// Methods the tests may call, each (api, args, options) -> Promise.
const DIRECT = [
  "createHub", "getHub", "updateHub", "enableHub", "disableHub", "deleteHub",
  "createDevice", "getDevice", "updateDevice", "enableDevice", "disableDevice", "deleteDevice",
  "getHubCA", "setHubCA", "renewDeviceCertificate", "getDeviceCertificate",
  "setDeviceCertificate",
];
const METHODS = Object.fromEntries(DIRECT.map((m) => [m, (api, args) => api[m](args)]));
// One page (the promise listX returns resolves to the first page asked for).
METHODS.listHubs = (api, args) => api.listHubs(args);
METHODS.listDevices = (api, args) => api.listDevices(args);
// Every page, through the SDK's pagination helper (enrichForPagination's all()).
METHODS.listHubsAll = (api, args) => api.listHubs(args).all();
METHODS.listDevicesAll = (api, args) => api.listDevices(args).all();
// Every page through the async iterator: one array per page.
METHODS.listHubsPages = async (api, args) => {
  const out = [];
  for await (const page of api.listHubs(args)) out.push(page);
  return out;
};
METHODS.listDevicesPages = async (api, args) => {
  const out = [];
  for await (const page of api.listDevices(args)) out.push(page);
  return out;
};
// The SDK waiter, polling every second (its minimum) for at most 30 s unless told otherwise.
METHODS.waitForHub = (api, args, options) =>
  api.waitForHub(args, { timeout: 30, minDelay: 1, maxDelay: 1, ...options });

function plain(value) {
  // Dates become ISO strings (JSON.stringify does that through toJSON); undefined fields are
  // dropped, so a field the server did not send (or sent malformed) is absent.
  return value === undefined ? null : JSON.parse(JSON.stringify(value));
}

function describeError(e) {
  const out = {
    name: e?.name ?? "Error",
    status: e?.status ?? null,
    message: e?.message ?? String(e),
    body: e?.body === undefined ? null : e.body,
    details: e?.details === undefined ? null : e.details,
  };
  for (const k of ["resource", "resourceId", "precondition", "helpMessage", "rawMessage"]) {
    if (e && e[k] !== undefined) out[k] = e[k];
  }
  return plain(out);
}

async function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return { id: null, ok: false, error: { name: "DriverError", message: `bad request line: ${e.message}` } };
  }
  const { id, method, args = {}, profile = {}, options = {} } = req;
  const fn = METHODS[method];
  if (!fn) {
    return { id, ok: false, error: { name: "DriverError", message: `unknown method ${method}` } };
  }
  try {
    const result = await fn(apiFor(profile), args, options);
    return { id, ok: true, result: plain(result) };
  } catch (e) {
    return { id, ok: false, error: describeError(e) };
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
let pending = 0;
let closing = false;
rl.on("line", (line) => {
  if (!line.trim()) return;
  pending += 1;
  handle(line).then((answer) => {
    process.stdout.write(JSON.stringify(answer) + "\n");
    pending -= 1;
    if (closing && pending === 0) process.exit(0);
  });
});
rl.on("close", () => {
  closing = true;
  if (pending === 0) process.exit(0);
});
