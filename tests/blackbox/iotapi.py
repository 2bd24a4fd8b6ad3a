"""The management API under test: the real Scaleway JavaScript SDK (through sdk/driver.mjs), raw
HTTP for what the SDK cannot send, the admin token, and helpers that put devices on MQTT.

Test modules import the fixtures they use from here (`server`, `api`, `iothub_only`), so each
module gets one iothub (`--no-dev-hub`, management API on a free port) shared by its tests; tests
never depend on one another's state: every name they create is unique (`unique()`).
"""

import atexit
import http.client
import json
import os
import queue
import re
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

import brokers
import mqttraw as m

SDK_DIR = Path(__file__).resolve().parent / "sdk"
REGION = "fr-par"
API_PREFIX = "/iot/v1/regions/%s" % REGION
CALL_TIMEOUT = 60.0
WAIT = 10.0          # generous bound for an asynchronous effect to show
EPOCH = "1970-01-01T00:00:00.000Z"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

HUB_ORDER_BY = ["name_asc", "name_desc", "status_asc", "status_desc", "product_plan_asc",
                "product_plan_desc", "created_at_asc", "created_at_desc", "updated_at_asc",
                "updated_at_desc"]
DEVICE_ORDER_BY = ["name_asc", "name_desc", "status_asc", "status_desc", "hub_id_asc",
                   "hub_id_desc", "created_at_asc", "created_at_desc", "updated_at_asc",
                   "updated_at_desc", "allow_insecure_asc", "allow_insecure_desc"]


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def is_uuid(s):
    return isinstance(s, str) and bool(UUID_RE.match(s))


def is_iso(s):
    return isinstance(s, str) and bool(ISO_RE.match(s))


def poll(fn, timeout=WAIT, interval=0.05, what="condition"):
    """Call fn until it returns something truthy; return that. Fails the test after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


# --- the SDK driver -------------------------------------------------------------------------------

class ApiError(Exception):
    """A call the SDK answered with an error: `name` is the SDK's error class
    (ResourceNotFoundError, InvalidArgumentsError, …), `status` the HTTP status, `body` the
    parsed error body."""

    def __init__(self, method, error):
        self.method = method
        self.error = error
        self.name = error.get("name")
        self.status = error.get("status")
        self.body = error.get("body")
        self.details = error.get("details")
        self.message = error.get("message")
        super().__init__("%s failed: %s (status %s): %s; body %s" % (
            method, self.name, self.status, self.message, json.dumps(self.body)))

    def names_argument(self, field):
        """The error names `field` (in its details or its message)."""
        for d in self.details or []:
            if field in (d.get("argumentName") or ""):
                return True
        body = self.body if isinstance(self.body, dict) else {}
        for d in body.get("details") or []:
            if isinstance(d, dict) and field in str(d.get("argument_name", "")):
                return True
        return field in (self.message or "") or field in str(body.get("message", ""))


class Driver:
    """One `node sdk/driver.mjs` process for the whole session; calls are serialised."""

    def __init__(self):
        if not (SDK_DIR / "node_modules" / "@scaleway" / "sdk-iot").is_dir():
            pytest.fail("the SDK is not installed: run `npm ci` in %s" % SDK_DIR)
        self.proc = subprocess.Popen(["node", str(SDK_DIR / "driver.mjs")], cwd=str(SDK_DIR),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.answers = queue.Queue()
        self.lock = threading.Lock()
        self.next_id = 0
        self.stderr = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.answers.put),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr.append),
                         daemon=True).start()

    @staticmethod
    def _read(stream, sink):
        for line in stream:
            sink(line)
        sink(None)

    def call(self, method, args, profile, options=None, timeout=CALL_TIMEOUT):
        with self.lock:
            self.next_id += 1
            rid = self.next_id
            req = {"id": rid, "method": method, "args": args, "profile": profile}
            if options:
                req["options"] = options
            try:
                self.proc.stdin.write(json.dumps(req) + "\n")
                self.proc.stdin.flush()
            except OSError:
                pytest.fail("the SDK driver is gone:\n%s" % "".join(filter(None, self.stderr)))
            deadline = time.monotonic() + timeout
            while True:
                try:
                    line = self.answers.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    pytest.fail("the SDK driver did not answer %s within %ss" % (method, timeout))
                if line is None:
                    pytest.fail("the SDK driver exited:\n%s" % "".join(filter(None, self.stderr)))
                answer = json.loads(line)
                if answer.get("id") == rid:
                    return answer

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_driver = None


def driver():
    global _driver
    if _driver is None or _driver.proc.poll() is not None:
        _driver = Driver()
        atexit.register(_driver.close)
    return _driver


# --- the API, as a caller holding one secret key ----------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<HTTP %d %r>" % (self.status, self.body[:300])


class Api:
    """The management API at `url` as seen with secret key `token`."""

    def __init__(self, url, token, project_id=None, access_key=None):
        self.url = url
        self.token = token
        self.project_id = project_id
        self.access_key = access_key
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.created_hubs = []   # deleted (with their devices) after each test: see cleanup()

    def profile(self):
        p = {"apiURL": self.url, "secretKey": self.token, "defaultRegion": REGION}
        if self.project_id:
            p["defaultProjectId"] = self.project_id
        if self.access_key:
            p["accessKey"] = self.access_key
        return p

    def call(self, method, options=None, **args):
        """The SDK's result (camelCase, dates as ISO strings), or ApiError."""
        answer = driver().call(method, args, self.profile(), options)
        if answer["ok"]:
            if method == "createHub":
                self.created_hubs.append(answer["result"]["id"])
            return answer["result"]
        raise ApiError(method, answer["error"])

    def error(self, method, **args):
        """The call must fail: returns its ApiError."""
        try:
            result = self.call(method, **args)
        except ApiError as e:
            return e
        pytest.fail("%s(%r) succeeded, expected an error: %r" % (method, args, result))

    # raw HTTP
    def http(self, method, path, body=None, token=True, headers=None, query=None):
        """One request on a fresh connection. `path` is relative to /iot/v1/regions/fr-par/ unless
        it starts with '/'. `body`: a dict/list (sent as JSON), str or bytes (sent as is).
        `token`: True for this caller's key, None for no header, or a string."""
        if not path.startswith("/"):
            path = API_PREFIX + "/" + path
        if query:
            path += "?" + urlencode(query)
        hdrs = {}
        if token is True:
            token = self.token
        if token is not None:
            hdrs["X-Auth-Token"] = token
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = bytes(body)
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection(self.host, self.port, timeout=WAIT)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            out = Response(resp.status, resp.getheaders(), resp.read().decode("utf-8", "replace"))
        finally:
            conn.close()
        if (method == "POST" and path.split("?")[0] == API_PREFIX + "/hubs" and out.status == 200
                and isinstance(out.json, dict) and "id" in out.json):
            self.created_hubs.append(out.json["id"])
        return out

    def cleanup(self):
        """Delete the hubs this caller created (hub quotas are per project)."""
        hubs, self.created_hubs = self.created_hubs, []
        for hub_id in hubs:
            r = self.http("DELETE", "hubs/" + hub_id, query={"delete_devices": "true"})
            assert r.status in (200, 204, 404), "cleanup of hub %s: %r" % (hub_id, r)

    def http_streamed(self, method, path, head_extra, body_chunks):
        """A request whose body may be refused before it is all sent: the response is read on
        another thread while the body goes out, so an early answer (413) is not lost to a reset.
        `head_extra`: extra header lines (e.g. Content-Length). Returns a Response or None."""
        if not path.startswith("/"):
            path = API_PREFIX + "/" + path
        sock = socket.create_connection((self.host, self.port), timeout=WAIT)
        got = bytearray()
        done = threading.Event()

        def reader():
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    got.extend(chunk)
                    if _whole_response(bytes(got)):
                        break
            except OSError:
                pass
            done.set()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        head = "%s %s HTTP/1.1\r\nHost: %s:%d\r\nX-Auth-Token: %s\r\n" \
               "Content-Type: application/json\r\n%s\r\n" % (
                   method, path, self.host, self.port, self.token,
                   "".join(h + "\r\n" for h in head_extra))
        try:
            sock.sendall(head.encode())
            for chunk in body_chunks:
                if done.is_set():
                    break
                sock.sendall(chunk)
        except OSError:
            pass
        done.wait(WAIT)
        sock.close()
        return _whole_response(bytes(got))

    def as_key(self, key):
        """The same API seen with another key (a dict from `iothub apikey create`)."""
        return Api(self.url, key["secret_key"], key.get("project_id"), key.get("access_key"))

    # convenience
    def new_hub(self, name=None, wait=True, **kw):
        hub = self.call("createHub", name=name or unique("hub"), **kw)
        if wait:
            hub = self.wait_hub(hub["id"])
        return hub

    def wait_hub(self, hub_id, status="ready"):
        return poll(lambda: _if(self.call("getHub", hubId=hub_id), lambda h: h["status"] == status),
                    what="hub %s to be %s" % (hub_id, status))

    def disable_hub(self, hub_id):
        self.call("disableHub", hubId=hub_id)
        return self.wait_hub(hub_id, "disabled")

    def enable_hub(self, hub_id):
        self.call("enableHub", hubId=hub_id)
        return self.wait_hub(hub_id, "ready")

    def new_device(self, hub_id, name=None, **kw):
        return self.call("createDevice", hubId=hub_id, name=name or unique("dev"), **kw)["device"]


def _if(value, pred):
    return value if pred(value) else None


def _whole_response(data):
    """A Response once `data` holds a whole HTTP/1.1 response (Content-Length framed), else None."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
    length = 0
    for k, v in headers:
        if k.lower() == "content-length":
            length = int(v)
    body = data[end + 4:]
    if len(body) < length:
        return None
    return Response(status, headers, body[:length].decode("utf-8", "replace"))


def read_admin_token(data_dir):
    return (Path(data_dir) / "api-token").read_text().strip()


def admin_api(server):
    return Api(server.api_url, read_admin_token(server.data_dir))


def run_cli(*args, env=None, timeout=30):
    """`iothub ARGS…` to completion."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([str(brokers.iothub_binary())] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, env=full_env)


def create_api_key(data_dir, project_id=None):
    """A key of another project, made with `iothub apikey create … -o json`."""
    project_id = project_id or str(uuid.uuid4())
    r = run_cli("apikey", "create", "--data-dir", data_dir, "--project", project_id, "-o", "json")
    assert r.returncode == 0, "apikey create failed: %s %s" % (r.stdout, r.stderr)
    key = json.loads(r.stdout)
    assert key["project_id"] == project_id, key
    return key


# --- servers --------------------------------------------------------------------------------------

def start_server(workdir, extra_args=("--no-dev-hub",)):
    b = brokers.Broker("iothub", workdir, extra_args=list(extra_args))
    b.start()
    if not b.api_url:
        b.stop()
        pytest.fail("the ready file names no API address:\n%s" % b.log())
    return b


def stop_server(b):
    err = b.stop()
    if err:
        pytest.fail(err, pytrace=False)


@pytest.fixture(autouse=True)
def iothub_only(request):
    if request.config.getoption("--broker") == "mosquitto":
        pytest.skip("the management API and device registry are iothub's")
    if not brokers.iothub_binary().exists():
        pytest.fail("iothub binary not found at %s (set IOTHUB_BIN)" % brokers.iothub_binary())


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """One iothub for the module: no development hub, API on a free port."""
    if request.config.getoption("--broker") == "mosquitto":
        pytest.skip("the management API and device registry are iothub's")
    b = start_server(tmp_path_factory.mktemp("iothub"))
    yield b
    stop_server(b)


@pytest.fixture(scope="module")
def api(server):
    """The admin's API (the key in <data_dir>/api-token)."""
    return admin_api(server)


@pytest.fixture(autouse=True)
def server_still_running(request):
    """After each test the module's server is still up and its API still answers."""
    yield
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        srv.check_running()
        r = admin_api(srv).http("GET", "hubs", query={"page_size": 1})
        assert r.status == 200, "the API stopped answering: %r" % r
    if "api" in request.fixturenames:
        request.getfixturevalue("api").cleanup()


# --- devices on MQTT ------------------------------------------------------------------------------

REFUSED = {4: 0x05, 5: m.RC_NOT_AUTHORIZED}   # CONNACK "not authorized", per protocol level


def device_connect(server, device_id=None, version=4, client_id=None, username=None, clean=True,
                   will=None, props=None, keepalive=60):
    """A raw client that sent CONNECT as a device; returns (client, CONNACK). By default the
    client id is the device id."""
    c = server.raw(version)
    if client_id is None:
        client_id = device_id or ""
    ack = c.connect(client_id, clean, keepalive=keepalive, will=will, props=props,
                    username=username)
    return c, ack


def device_client(server, device_id, version=4, **kw):
    """A device connected successfully."""
    c, ack = device_connect(server, device_id, version, **kw)
    assert ack.reason == 0, "device %s refused: %r" % (device_id, ack)
    return c


def assert_refused(server, device_id=None, version=4, **kw):
    c, ack = device_connect(server, device_id, version, **kw)
    assert ack.reason == REFUSED[version], "expected CONNACK 0x%02x, got %r" % (
        REFUSED[version], ack)
    c.expect_closed()
    return ack


def insecure_device(api, hub_id, **kw):
    kw.setdefault("allowInsecure", True)
    return api.new_device(hub_id, **kw)


class EventListener:
    """A device subscribed to its hub's events (`<prefix>/#`, QoS 0) and, optionally, to more
    filters. Collects what it receives."""

    def __init__(self, server, device_id, prefix="$SCW/events", extra=(), version=4):
        self.client = device_client(server, device_id, version)
        self.prefix = prefix
        topics = [(prefix + "/#", 0)] + [(t, 0) for t in extra]
        ack = self.client.subscribe(topics)
        assert all(code < 0x80 for code in ack.return_codes), ack
        self.seen = []

    def _next(self, timeout):
        pkt = self.client.expect_packet(m.PUBLISH, timeout)
        self.client.ack(pkt)
        self.seen.append(pkt)
        return pkt

    def wait_event(self, pred=lambda t, e: True, timeout=WAIT):
        """The first event (topic, payload dict) matching pred(topic, event)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail("no matching event; got %r" % ([p.topic for p in self.seen],))
            try:
                pkt = self._next(left)
            except m.ProtocolError:
                pytest.fail("no matching event; got %r" % (
                    [(p.topic, p.payload) for p in self.seen],))
            if not pkt.topic.startswith(self.prefix + "/"):
                continue
            event = json.loads(pkt.payload)
            if pred(pkt.topic, event):
                return pkt.topic, event

    def events_until(self, topic, payload=m.SENTINEL, timeout=WAIT):
        """Events received before the sentinel message (topic, payload) arrives."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            pkt = self._next(max(0.01, deadline - time.monotonic()))
            if pkt.topic == topic and pkt.payload == payload:
                return out
            if pkt.topic.startswith(self.prefix + "/"):
                out.append((pkt.topic, json.loads(pkt.payload)))

    def close(self):
        self.client.disconnect()


def msg_is(text, object_id=None):
    def pred(topic, event):
        return event.get("msg") == text and (object_id is None or event.get("object-id") == object_id)
    return pred
