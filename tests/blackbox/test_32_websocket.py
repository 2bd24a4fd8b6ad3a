"""MQTT over WebSocket (RFC 6455; MQTT 5 section 6, MQTT 3.1.1 section 6): iothub's ws and wss
listeners. Two independent clients: MQTT.js (Node, `web/mqttjs.mjs`, pinned in
`sdk/package-lock.json`) for real-world use, and a raw WebSocket client written here from
RFC 6455 (frames built and parsed by hand, over a plain or a TLS socket) carrying the raw MQTT
client of `mqttraw.py`, for what MQTT.js never sends: packets split across frames, fragmented
messages, control frames, refused upgrades and framing errors, each with the status or close
code the server must answer with. Plain TCP clients (mosquitto_pub/sub, raw) check that ws and
TCP clients meet on one broker. Device identity over ws/wss uses the IoT API (as in test_23 and
test_31). iothub only: the reference broker's WebSocket listener is not configured here."""

import base64
import hashlib
import json
import os
import queue
import socket
import ssl
import struct
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

import clients
import mqttraw as m
from brokers import assert_alive
from iotapi import api, insecure_device, poll, server, server_still_running, unique  # noqa: F401
from test_30_tls import server_ca

WEB_DIR = Path(__file__).resolve().parent / "web"
SDK_DIR = Path(__file__).resolve().parent / "sdk"
WAIT = 10.0
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


@pytest.fixture(autouse=True)
def iothub_only(broker_kind):
    if broker_kind != "iothub":
        pytest.skip("iothub's ws and wss listeners")


# --- RFC 6455 frames, by hand ---------------------------------------------------------------------

def apply_mask(data, key):
    """XOR `data` with the 4-byte `key` repeated (RFC 6455 section 5.3)."""
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(op, payload=b"", fin=True, mask=True, rsv=0, length=None, key=None):
    """One frame. A client's frames are masked (section 5.1); `mask=False` makes a bad one.
    `length` overrides the length field (the payload is sent as given)."""
    payload = bytes(payload)
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv << 4) | op
    maskbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([first, maskbit | n])
    elif n < 65536:
        head = bytes([first, maskbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([first, maskbit | 127]) + struct.pack("!Q", n)
    if mask:
        key = key or os.urandom(4)
        return head + key + apply_mask(payload, key)
    return head + payload


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, op, masked, payload):
        self.fin, self.rsv, self.op, self.masked, self.payload = fin, rsv, op, masked, payload

    @property
    def close_code(self):
        """The status code of a close frame (1005 when it has none)."""
        assert self.op == OP_CLOSE, self
        if not self.payload:
            return 1005
        assert len(self.payload) >= 2, "a close frame with a 1-byte payload: %r" % self
        return struct.unpack("!H", self.payload[:2])[0]

    @property
    def close_reason(self):
        return self.payload[2:].decode("utf-8")

    def __repr__(self):
        return "<frame op=%#x fin=%d rsv=%d masked=%d %r>" % (
            self.op, self.fin, self.rsv, self.masked, self.payload[:60])


class WsError(AssertionError):
    """The server broke RFC 6455."""


def parse_frame(buf):
    """(Frame, bytes used) for the first whole frame in buf, or (None, 0)."""
    if len(buf) < 2:
        return None, 0
    b0, b1 = buf[0], buf[1]
    n, pos = b1 & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None, 0
        n, pos = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None, 0
        n, pos = struct.unpack("!Q", buf[2:10])[0], 10
    key = None
    if b1 & 0x80:
        if len(buf) < pos + 4:
            return None, 0
        key, pos = buf[pos:pos + 4], pos + 4
    if len(buf) < pos + n:
        return None, 0
    payload = bytes(buf[pos:pos + n])
    if key is not None:
        payload = apply_mask(payload, key)
    return Frame(bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0x0F, bool(b1 & 0x80), payload), pos + n


class WsSocket:
    """A socket whose bytes travel in WebSocket frames: what mqttraw.Client sends goes out as one
    masked binary frame per write; what it reads is the payload of the server's binary frames.
    Server pings are answered; pongs are kept in `pongs`. A close frame from the server is kept
    in `close_frame`, answered with a close frame (as a client must, section 5.5.1) unless
    `answer_close` is False, and reads return b"" from then on. Every frame the server sends is
    checked: unmasked, no RSV bits, binary (never text) data frames, control frames unfragmented
    and at most 125 bytes."""

    def __init__(self, sock, buffered=b""):
        self.sock = sock
        self.buf = bytearray(buffered)
        self.data = bytearray()
        self.pongs = []
        self.frames = []  # every frame received, in order
        self.close_frame = None
        self.sent_close = False
        self.answer_close = True
        self.eof = False

    # the socket interface mqttraw.Client uses
    def sendall(self, data):
        self.sock.sendall(frame(OP_BINARY, data))

    def settimeout(self, t):
        self.sock.settimeout(t)

    def setsockopt(self, *args):
        self.sock.setsockopt(*args)

    def close(self):
        self.sock.close()

    def recv(self, n):
        """Bytes carried by binary frames; b"" once the server sent its close frame and then
        ended the TCP connection (socket.timeout while it has not ended it)."""
        while not self.data:
            if self.close_frame is not None and not self.eof:
                self._wait_eof()
            if self.close_frame is not None or self.eof:
                return b""
            f = self.next_frame()
            if f is None:
                return b""
        out = bytes(self.data[:n])
        del self.data[:n]
        return out

    # frames
    def send_frame(self, *args, **kw):
        data = frame(*args, **kw)
        if args and args[0] == OP_CLOSE:
            self.sent_close = True
        self.sock.sendall(data)

    def send_bytes(self, data):
        self.sock.sendall(data)

    def next_frame(self):
        """The next frame from the server (raises socket.timeout), None at the end of the TCP
        stream. Data frames add to `data`."""
        while True:
            f, used = parse_frame(self.buf)
            if f is not None:
                del self.buf[:used]
                self._check(f)
                self.frames.append(f)
                if f.op in (OP_BINARY, OP_CONTINUATION):
                    self.data += f.payload
                elif f.op == OP_PING:
                    self.sock.sendall(frame(OP_PONG, f.payload))
                elif f.op == OP_PONG:
                    self.pongs.append(f.payload)
                elif f.op == OP_CLOSE:
                    self.close_frame = f
                    if self.answer_close and not self.sent_close:
                        self.sent_close = True
                        try:
                            self.sock.sendall(frame(OP_CLOSE, f.payload[:2]))
                        except OSError:
                            pass
                return f
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                self.eof = True
                if self.buf:
                    raise WsError("the stream ended inside a frame: %r" % bytes(self.buf[:40]))
                return None
            self.buf += chunk

    def _check(self, f):
        if f.masked:
            raise WsError("server frames must not be masked (section 5.1): %r" % f)
        if f.rsv:
            raise WsError("RSV bits set without an extension: %r" % f)
        if self.close_frame is not None:
            raise WsError("a frame after the close frame (section 5.5.1): %r" % f)
        if f.op == OP_TEXT:
            raise WsError("MQTT travels in binary frames (MQTT 5 section 6): %r" % f)
        if f.op >= 0x8 and (not f.fin or len(f.payload) > 125):
            raise WsError("a fragmented or long control frame (section 5.5): %r" % f)
        if f.op not in (OP_CONTINUATION, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG):
            raise WsError("unknown opcode: %r" % f)

    def frame_until(self, pred, timeout=WAIT):
        """Read frames until one satisfies pred; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no such frame; got %r" % self.frames[-10:])
            self.sock.settimeout(left)
            try:
                f = self.next_frame()
            except socket.timeout:
                raise AssertionError("no such frame; got %r" % self.frames[-10:]) from None
            if f is None:
                raise AssertionError("the server closed the connection; frames %r"
                                     % self.frames[-10:])
            if pred(f):
                return f

    def expect_close(self, timeout=WAIT):
        """The server sends a close frame (data frames before it are kept) and then ends the
        TCP connection. Returns the close frame."""
        deadline = time.monotonic() + timeout
        while self.close_frame is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no close frame; got %r" % self.frames[-10:])
            self.sock.settimeout(left)
            try:
                f = self.next_frame()
            except socket.timeout:
                raise AssertionError("no close frame; got %r" % self.frames[-10:]) from None
            if f is None:
                raise AssertionError("TCP closed without a close frame; frames %r"
                                     % self.frames[-10:])
        self.expect_eof(max(1.0, deadline - time.monotonic()))
        return self.close_frame

    def _wait_eof(self):
        """Reads (with the socket's timeout) until the TCP connection ends; nothing may come
        after a close frame."""
        if self.buf:
            raise WsError("bytes after the close frame: %r" % bytes(self.buf[:40]))
        while not self.eof:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if chunk:
                raise WsError("bytes after the close frame: %r" % chunk[:40])
            self.eof = True

    def expect_eof(self, timeout=WAIT):
        """The server ends the TCP connection (nothing but the end may come)."""
        if self.eof:
            return
        self.sock.settimeout(timeout)
        try:
            self._wait_eof()
        except socket.timeout:
            raise AssertionError("the server did not close the TCP connection") from None


# --- the opening handshake ------------------------------------------------------------------------

def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def upgrade_request(path="/mqtt", key=None, protocol="mqtt", origin=None, version="13",
                    upgrade="websocket", connection="Upgrade", method="GET", extra=(),
                    host="127.0.0.1"):
    """The bytes of an upgrade request; a None field leaves its header out."""
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host]
    if upgrade is not None:
        lines.append("Upgrade: " + upgrade)
    if connection is not None:
        lines.append("Connection: " + connection)
    if key is not None:
        lines.append("Sec-WebSocket-Key: " + key)
    if version is not None:
        lines.append("Sec-WebSocket-Version: " + version)
    if protocol is not None:
        lines.append("Sec-WebSocket-Protocol: " + protocol)
    if origin is not None:
        lines.append("Origin: " + origin)
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpResponse:
    def __init__(self, status, reason, headers, body, rest):
        self.status, self.reason, self.body, self.rest = status, reason, body, rest
        self.headers = {}
        for k, v in headers:
            k = k.lower()
            self.headers[k] = self.headers[k] + ", " + v if k in self.headers else v

    def __repr__(self):
        return "<HTTP %d %r %r %r>" % (self.status, self.reason, self.headers, self.body[:200])


def read_response(sock, timeout=WAIT):
    """The server's HTTP response to an upgrade request. A 101 has no body (what follows it is
    frames, in `rest`); another status has a Content-Length body."""
    deadline = time.monotonic() + timeout
    buf = b""

    def more():
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no whole HTTP response; got %r" % buf[:300])
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise AssertionError("no whole HTTP response; got %r" % buf[:300]) from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise AssertionError("the server closed before a whole HTTP response: %r"
                                 % buf[:300])
        return chunk

    while b"\r\n\r\n" not in buf:
        buf += more()
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    proto, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    assert proto == "HTTP/1.1", lines[0]
    headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
    assert all(len(h) == 2 for h in headers), lines
    resp = HttpResponse(int(status), reason, headers, b"", rest)
    if resp.status == 101:
        return resp
    length = int(resp.headers.get("content-length", "0"))
    while len(rest) < length:
        rest += more()
    resp.body, resp.rest = rest[:length], rest[length:]
    return resp


def connect_socket(broker, tls=False, ctx=None, port=None):
    """A TCP (or TLS, trusting the server CA unless `ctx` says otherwise) connection to the ws
    (or wss) listener."""
    port = port or (broker.wss_port if tls else broker.ws_port)
    assert port, "the broker has no %s listener" % ("wss" if tls else "ws")
    s = socket.create_connection((broker.host, port), timeout=WAIT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        ctx = ctx or ssl.create_default_context(cafile=str(server_ca(broker)))
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s


def handshake(broker, tls=False, ctx=None, **req):
    """Send an upgrade request; returns (socket, response)."""
    s = connect_socket(broker, tls, ctx)
    s.sendall(upgrade_request(**req))
    return s, read_response(s)


def open_ws(broker, tls=False, ctx=None, **req):
    """A WsSocket after a successful upgrade (101, checked against RFC 6455 section 4.2.2)."""
    req.setdefault("key", new_key())
    s, resp = handshake(broker, tls, ctx, **req)
    check_switching(resp, req["key"], expected_protocols(req.get("protocol", "mqtt")))
    return WsSocket(s, resp.rest)


def expected_protocols(offered):
    """The subprotocols the server may pick from a Sec-WebSocket-Protocol header (the choice
    among several acceptable ones is the server's, RFC 6455 section 4.2.2): {None} when none
    was offered."""
    if offered is None:
        return {None}
    return {p for p in (x.strip() for x in offered.split(",")) if p in ("mqtt", "mqttv3.1")}


def check_switching(resp, key, protocols=("mqtt",)):
    """A 101 Switching Protocols as RFC 6455 section 4.2.2 has it, selecting one of
    `protocols` (None: no Sec-WebSocket-Protocol header)."""
    assert resp.status == 101, resp
    assert resp.headers.get("upgrade", "").lower() == "websocket", resp
    tokens = [t.strip().lower() for t in resp.headers.get("connection", "").split(",")]
    assert "upgrade" in tokens, resp
    assert resp.headers.get("sec-websocket-accept") == accept_for(key), resp
    assert resp.headers.get("sec-websocket-protocol") in protocols, resp
    assert "sec-websocket-extensions" not in resp.headers, resp


def mqtt_over(ws, version, broker=None):
    """A raw MQTT client (mqttraw) on an open WsSocket (closed with `broker`, if given)."""
    c = m.Client.__new__(m.Client)
    c.version, c.timeout = version, 5.0
    c.sock, c.buf, c.pending, c.connack, c.closed, c._next_mid = ws, b"", [], None, False, 0
    c.ws = ws
    if broker is not None:
        broker.clients.append(c)
    return c


def ws_client(broker, version=4, tls=False, ctx=None, **req):
    """A raw MQTT client (mqttraw) over a WebSocket to the broker's ws or wss listener."""
    return mqtt_over(open_ws(broker, tls, ctx, **req), version, broker)


def ws_connected(broker, version=4, client_id="", tls=False, **kw):
    c = ws_client(broker, version, tls)
    ack = c.connect(client_id, **kw)
    assert ack.reason == 0, ack
    return c


def expect_http_close(sock, timeout=WAIT):
    """After a refusal the server closes the connection."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "the server did not close the connection after refusing"
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise AssertionError("the server did not close the connection after refusing") \
                from None
        except (ConnectionResetError, ssl.SSLError):
            return
        if not chunk:
            return
        raise AssertionError("bytes after the refusal: %r" % chunk[:80])


def check_refusal(resp, status):
    """A refusal: the status, and a one-line text/plain body saying why."""
    assert resp.status == status, resp
    assert resp.headers.get("content-type", "").split(";")[0].strip() == "text/plain", resp
    text = resp.body.decode("utf-8")
    assert text.strip(), resp
    assert "\n" not in text.rstrip("\n"), "the body is more than one line: %r" % text
    assert "sec-websocket-accept" not in resp.headers, resp


def wait_for_log(broker, text, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in broker.log():
            return
        time.sleep(0.05)
    raise AssertionError("%r never appeared in the log:\n%s" % (text, broker.log()))


# --- MQTT.js, in Node -----------------------------------------------------------------------------

class JsDriver:
    """A Node process speaking JSON lines (web/mqttjs.mjs, web/browser.mjs): call() sends one
    command and waits for the answer with its id."""

    def __init__(self, argv, cwd, wait_ready=False, ready_timeout=60.0):
        if not (SDK_DIR / "node_modules" / "mqtt").is_dir():
            pytest.fail("MQTT.js is not installed: run `npm ci` in %s" % SDK_DIR)
        self.proc = subprocess.Popen(argv, cwd=str(cwd), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     bufsize=1)
        self.lines = queue.Queue()
        self.stderr = []
        self.answers = {}
        self.next_id = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines.put),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr.append),
                         daemon=True).start()
        self.info = None
        if wait_ready:
            line = self._line(ready_timeout, "the ready line")
            self.info = json.loads(line)
            if not self.info.get("ready"):
                self.close()
                pytest.fail("%s did not start: %s\n%s" % (argv[1], self.info.get("error"),
                                                         self.errors()))

    @staticmethod
    def _read(stream, sink):
        for line in stream:
            sink(line)
        sink(None)

    def errors(self):
        return "".join(x for x in self.stderr if x)[-4000:]

    def _line(self, timeout, what):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("node gave no %s within %ss:\n%s" % (what, timeout, self.errors()))
        if line is None:
            pytest.fail("node exited (%s):\n%s" % (self.proc.poll(), self.errors()))
        return line

    def call(self, op, timeout=WAIT + 20, check=True, **kw):
        with self.lock:
            self.next_id += 1
            rid = self.next_id
            kw.update(op=op, id=rid)
            try:
                self.proc.stdin.write(json.dumps(kw) + "\n")
                self.proc.stdin.flush()
            except OSError:
                pytest.fail("node is gone:\n%s" % self.errors())
            deadline = time.monotonic() + timeout
            while rid not in self.answers:
                answer = json.loads(self._line(max(0.0, deadline - time.monotonic()),
                                               "answer to %s" % op))
                self.answers[answer.get("id")] = answer
            answer = self.answers.pop(rid)
        if check and not answer.get("ok"):
            pytest.fail("MQTT.js %s failed: %s\n%s" % (op, answer, self.errors()))
        return answer

    # MQTT.js
    def connect(self, name, url, expect=True, **options):
        a = self.call("connect", name=name, url=url, options=options)
        if expect:
            assert a["connected"], "MQTT.js could not connect to %s: %r\n%s" % (
                url, a, self.errors())
        return a

    def subscribe(self, name, topic, qos=0):
        return self.call("subscribe", name=name, topic=topic, qos=qos)["granted"]

    def publish(self, name, topic, payload, qos=0, retain=False):
        self.call("publish", name=name, topic=topic, payload=payload, qos=qos, retain=retain)

    def messages(self, name, count=1, timeout=WAIT):
        return self.call("messages", name=name, count=count, timeout=int(timeout * 1000),
                         )["messages"]

    def end(self, name, force=False):
        self.call("end", name=name, force=force)

    def wait_closed(self, name, timeout=WAIT):
        return self.call("wait_closed", name=name, timeout=int(timeout * 1000))["closed"]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def mqttjs():
    d = JsDriver(["node", str(WEB_DIR / "mqttjs.mjs")], WEB_DIR)
    yield d
    d.close()


def ws_url(broker, tls=False, path="/mqtt"):
    port = broker.wss_port if tls else broker.ws_port
    return "%s://127.0.0.1:%d%s" % ("wss" if tls else "ws", port, path)


def js_options(broker, tls, version, client_id=None, **kw):
    """MQTT.js options for a protocol level (3 is MQTT 3.1: subprotocol mqttv3.1)."""
    opts = {"protocolVersion": version, "clientId": client_id or unique("js")}
    if version == 3:
        opts["protocolId"] = "MQIsdp"
    if tls:
        opts["caFile"] = str(server_ca(broker))
    opts.update(kw)
    return opts


TRANSPORTS = ["ws", "wss"]


# --- the listeners --------------------------------------------------------------------------------

def test_ready_file_names_ws_and_wss(broker):
    info = json.loads((broker.workdir / "ready.json").read_text())
    assert info["ws"] == "127.0.0.1:%d" % broker.ws_port, info
    assert info["wss"] == "127.0.0.1:%d" % broker.wss_port, info
    ports = {broker.port, broker.mqtts_port, broker.ws_port, broker.wss_port}
    assert len(ports) == 4, info
    for tls in (False, True):
        c = ws_connected(broker, 4, unique("c32-ready"), tls=tls)
        c.ping()
        c.disconnect()


@pytest.mark.parametrize("which", ["ws", "wss", "both"])
def test_listener_off(broker_factory, which):
    """`off`: the listener is not opened and the ready file does not name it; the others
    work."""
    args = []
    if which in ("ws", "both"):
        args += ["--ws", "off"]
    if which in ("wss", "both"):
        args += ["--wss", "off"]
    b = broker_factory(extra_args=args)
    info = json.loads((b.workdir / "ready.json").read_text())
    assert ("ws" in info) == (which == "wss"), info
    assert ("wss" in info) == (which == "ws"), info
    assert b.port and b.mqtts_port
    if which == "ws":
        c = ws_connected(b, 5, unique("c32-off"), tls=True)
        c.disconnect()
    if which == "wss":
        c = ws_connected(b, 5, unique("c32-off"), tls=False)
        c.disconnect()
    assert_alive(b)


def test_listeners_off_do_not_listen(broker_factory):
    """With both off, the process listens on the mqtt, mqtts and API ports only."""
    b = broker_factory(extra_args=["--ws", "off", "--wss", "off"])
    listening = listening_ports(b.proc.pid)
    api_port = int(b.api_url.rsplit(":", 1)[1])
    assert listening == {b.port, b.mqtts_port, api_port}, listening


def listening_ports(pid):
    """TCP ports process `pid` listens on (from /proc)."""
    inodes = set()
    fd_dir = Path("/proc/%d/fd" % pid)
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/%d/net/tcp" % pid, "/proc/%d/net/tcp6" % pid):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if f[3] == "0A" and f[9] in inodes:  # LISTEN
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


# --- the opening handshake ------------------------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=TRANSPORTS)
@pytest.mark.parametrize("offered", ["mqtt", "mqttv3.1", None, "foo, mqtt", "mqttv3.1, mqtt"],
                         ids=["mqtt", "mqttv3.1", "none", "foo-then-mqtt", "both"])
def test_upgrade_accepted(broker, tls, offered):
    """101 with the accept token and the subprotocol (RFC 6455 section 4.2.2): one the client
    offered, echoed; none when none was offered. MQTT then flows."""
    version = 3 if offered == "mqttv3.1" else 4
    c = ws_client(broker, version, tls, protocol=offered)
    assert c.connect(unique("c32-up")).reason == 0
    c.ping()
    c.disconnect()


@pytest.mark.parametrize("variant", ["connection-list", "case", "query", "lowercase-headers",
                                     "extra-headers"])
def test_upgrade_variants_accepted(broker, variant):
    """What browsers and libraries send: Connection: keep-alive, Upgrade (Firefox), any case
    in the header values, a query string on the path, header names in lower case, other
    headers (cookies, user agent, extensions the server does not take)."""
    key = new_key()
    if variant == "connection-list":
        req = upgrade_request(key=key, connection="keep-alive, Upgrade")
    elif variant == "case":
        req = upgrade_request(key=key, upgrade="WebSocket", connection="upgrade")
    elif variant == "query":
        req = upgrade_request(key=key, path="/mqtt?token=abc&x=1")
    elif variant == "lowercase-headers":
        req = ("GET /mqtt HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\n"
               "connection: Upgrade\r\nsec-websocket-key: %s\r\nsec-websocket-version: 13\r\n"
               "sec-websocket-protocol: mqtt\r\n\r\n" % key).encode()
    else:
        req = upgrade_request(key=key, extra=[
            "User-Agent: test/1.0", "Cookie: a=b", "Cache-Control: no-cache",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"])
    s = connect_socket(broker)
    s.sendall(req)
    resp = read_response(s)
    check_switching(resp, key)
    c = mqtt_over(WsSocket(s, resp.rest), 4, broker)
    assert c.connect(unique("c32-variant")).reason == 0
    c.disconnect()


def test_upgrade_and_frames_in_one_write(broker):
    """The request head and the first frames may arrive together."""
    key = new_key()
    s = connect_socket(broker)
    s.sendall(upgrade_request(key=key) + frame(OP_BINARY, m.connect_packet(5, "c32-one-write")) +
              frame(OP_BINARY, m.pingreq_packet()))
    resp = read_response(s)
    check_switching(resp, key)
    c = mqtt_over(WsSocket(s, resp.rest), 5, broker)
    assert c.expect_packet(m.CONNACK).reason == 0
    c.expect_packet(m.PINGRESP)
    c.disconnect()


BIG_HEADER = "X-Filler: " + "a" * 9000

REFUSALS = {
    # name: (request keyword arguments or raw bytes, status or the statuses allowed)
    "post": (dict(method="POST"), 405),
    "put": (dict(method="PUT"), 405),
    "other-path": (dict(path="/other"), 404),
    "path-prefix": (dict(path="/mqttx"), 404),
    "root": (dict(path="/"), 404),
    "no-upgrade": (dict(upgrade=None), 426),
    "upgrade-h2c": (dict(upgrade="h2c"), (400, 426)),
    "version-8": (dict(version="8"), 426),
    "no-version": (dict(version=None), (400, 426)),
    "no-connection": (dict(connection=None), 400),
    "connection-keep-alive": (dict(connection="keep-alive"), 400),
    "no-key": (dict(key=None), 400),
    "short-key": (dict(key=base64.b64encode(b"12345678").decode()), 400),
    "key-not-base64": (dict(key="not a base64 key!!!!!!!"), 400),
    "subprotocol-foo": (dict(protocol="foo"), 400),
    "subprotocol-mqttv5": (dict(protocol="mqttv5, wamp"), 400),
    "content-length-body": (dict(extra=["Content-Length: 5"]), 400),
    "chunked-body": (dict(extra=["Transfer-Encoding: chunked"]), 400),
    "garbage": (b"\x16\x03\x01\x00\xa5garbage\x00\xff\r\n\r\n", 400),
    "not-http": (b"HELLO THERE\r\n\r\n", 400),
    "http-1.0": (b"GET /mqtt HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"
                 b"\r\n\r\n", (400, 426)),  # HTTP/1.0 has no Upgrade (section 4.1)
    "mqtt-connect": (m.connect_packet(4, "plain-mqtt-on-ws") + b"\r\n\r\n", 400),
    "head-too-large": (dict(extra=[BIG_HEADER]), 431),
}


@pytest.mark.parametrize("tls", [False, True], ids=TRANSPORTS)
@pytest.mark.parametrize("case", list(REFUSALS))
def test_upgrade_refused(broker, case, tls):
    """Each refusal: its status and a one-line text/plain body, then the connection closes;
    the refusal is logged. Others are not affected."""
    req, status = REFUSALS[case]
    if isinstance(req, dict):
        data = upgrade_request(**dict({"key": new_key()}, **req))
        if case == "content-length-body":
            data += b"hello"
    else:
        data = req
    s = connect_socket(broker, tls)
    s.sendall(data)
    resp = read_response(s)
    if isinstance(status, tuple):
        assert resp.status in status, resp
        status = resp.status
    check_refusal(resp, status)
    if status == 426:
        assert resp.headers.get("sec-websocket-version") == "13", resp
    if status == 405:  # RFC 9110 section 15.5.6: a 405 names the allowed methods
        assert resp.headers.get("allow", "").replace(" ", "") == "GET", resp
    expect_http_close(s)
    wait_for_log(broker, "(%d)" % status)
    c = ws_connected(broker, 4, unique("c32-after"), tls=tls)
    c.disconnect()


def test_endless_head_is_refused_with_431(broker):
    """A head that never ends is refused once it passes 8192 bytes, without waiting for its
    end."""
    s = connect_socket(broker)
    # Just over the limit, then nothing more: the server reads all of it before it answers.
    s.sendall(b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"b" * 8500)
    resp = read_response(s)
    check_refusal(resp, 431)
    expect_http_close(s)


def test_head_just_under_the_limit_is_accepted(broker):
    key = new_key()
    base = upgrade_request(key=key, extra=["X-Filler: "])
    filler = 8192 - len(base) - 64  # well inside the limit, whatever the exact count
    s = connect_socket(broker)
    s.sendall(upgrade_request(key=key, extra=["X-Filler: " + "f" * filler]))
    check_switching(read_response(s), key)
    s.close()


# --- origins and the path -------------------------------------------------------------------------

def test_origins(broker_factory):
    allowed = ["https://app.example.com", "http://127.0.0.1:8000"]
    b = broker_factory(extra_args=["--ws-origins", ",".join(allowed)])
    for tls in (False, True):
        for origin in allowed:
            ws_client(b, 4, tls, origin=origin).close()
        # Devices send no Origin: always accepted.
        c = ws_client(b, 4, tls, origin=None)
        assert c.connect(unique("c32-no-origin")).reason == 0
        c.disconnect()
        for origin in ("https://evil.example.com", "https://app.example.com:8443",
                       "http://app.example.com", "null"):
            s, resp = handshake(b, tls, key=new_key(), origin=origin)
            check_refusal(resp, 403)
            expect_http_close(s)
    wait_for_log(b, "(403)")


def test_any_origin_by_default(broker):
    for origin in ("https://anything.example", "null", "http://127.0.0.1:1234"):
        c = ws_client(broker, 4, origin=origin)
        assert c.connect(unique("c32-any-origin")).reason == 0
        c.disconnect()


def test_custom_path(broker_factory, mqttjs):
    b = broker_factory(extra_args=["--ws-path", "/custom/mqtt-path"])
    for tls in (False, True):
        c = ws_client(b, 5, tls, path="/custom/mqtt-path")
        assert c.connect(unique("c32-path")).reason == 0
        c.disconnect()
        for path in ("/mqtt", "/custom", "/custom/mqtt-path/more"):
            s, resp = handshake(b, tls, key=new_key(), path=path)
            check_refusal(resp, 404)
            expect_http_close(s)
    mqttjs.connect("p", ws_url(b, path="/custom/mqtt-path"), **js_options(b, False, 5))
    mqttjs.end("p")
    a = mqttjs.connect("q", ws_url(b, path="/mqtt"), expect=False, **js_options(b, False, 5))
    assert not a["connected"], a


# --- frames ---------------------------------------------------------------------------------------

def test_packet_split_across_three_frames(broker, version):
    c = ws_client(broker, version)
    packet = m.connect_packet(version, unique("c32-split"))
    cuts = [1, len(packet) // 2, len(packet)]
    start = 0
    for cut in cuts:
        c.ws.send_frame(OP_BINARY, packet[start:cut])
        start = cut
    assert c.expect_packet(m.CONNACK).reason == 0
    # A PUBLISH split inside its remaining length and its topic.
    c.subscribe("c32/split", 1)
    pub = m.publish_packet(version, "c32/split", b"x" * 300, qos=1, mid=7)
    for part in (pub[:2], pub[2:5], pub[5:]):
        c.ws.send_frame(OP_BINARY, part)
    got = [c.read_packet(), c.read_packet()]
    assert sorted(p.type for p in got) == [m.PUBLISH, m.PUBACK], got
    assert next(p for p in got if p.type == m.PUBLISH).payload == b"x" * 300
    c.disconnect()


def test_several_packets_in_one_frame(broker, version):
    c = ws_client(broker, version)
    cid = unique("c32-many")
    c.ws.send_frame(OP_BINARY, m.connect_packet(version, cid) +
                    m.subscribe_packet(version, 1, [("c32/many", 1)]) +
                    m.publish_packet(version, "c32/many", b"first", qos=1, mid=2) +
                    m.publish_packet(version, "c32/many", b"second", qos=0) +
                    m.pingreq_packet())
    assert c.expect_packet(m.CONNACK).reason == 0
    got = [c.read_packet() for _ in range(5)]
    assert sorted(p.type for p in got) == sorted([m.SUBACK, m.PUBACK, m.PUBLISH, m.PUBLISH,
                                                 m.PINGRESP]), got
    assert [p.payload for p in got if p.type == m.PUBLISH] == [b"first", b"second"], got
    # The end of one packet and the start of the next in one frame.
    a = m.publish_packet(version, "c32/many", b"third", qos=0)
    b = m.publish_packet(version, "c32/many", b"fourth", qos=0)
    c.ws.send_frame(OP_BINARY, a[:4])
    c.ws.send_frame(OP_BINARY, a[4:] + b[:3])
    c.ws.send_frame(OP_BINARY, b[3:])
    assert c.expect_publish("c32/many").payload == b"third"
    assert c.expect_publish("c32/many").payload == b"fourth"
    c.disconnect()


def test_fragmented_message(broker, version):
    """One binary message in three fragments (FIN=0, continuation FIN=0, continuation FIN=1,
    section 5.4), with a ping between fragments (control frames may be interleaved)."""
    c = ws_connected(broker, version, unique("c32-frag"))
    c.subscribe("c32/frag", 1)
    pub = m.publish_packet(version, "c32/frag", b"fragmented payload " * 20, qos=1, mid=9)
    third = len(pub) // 3
    c.ws.send_frame(OP_BINARY, pub[:third], fin=False)
    c.ws.send_frame(OP_CONTINUATION, pub[third:2 * third], fin=False)
    c.ws.send_frame(OP_PING, b"between fragments")
    c.ws.send_frame(OP_CONTINUATION, pub[2 * third:], fin=True)
    got = [c.read_packet(), c.read_packet()]
    assert sorted(p.type for p in got) == [m.PUBLISH, m.PUBACK], got
    assert next(p for p in got if p.type == m.PUBLISH).payload == b"fragmented payload " * 20
    assert c.ws.pongs == [b"between fragments"], c.ws.pongs
    # Empty fragments are fragments too.
    c.ws.send_frame(OP_BINARY, b"", fin=False)
    c.ws.send_frame(OP_CONTINUATION, m.pingreq_packet(), fin=False)
    c.ws.send_frame(OP_CONTINUATION, b"", fin=True)
    c.expect_packet(m.PINGRESP)
    c.disconnect()


def test_frames_cut_anywhere_across_tcp_writes(broker):
    """Frames sent a few bytes at a time: headers (7-bit, 16-bit and 64-bit lengths), masks
    and payloads cut at every point."""
    c = ws_connected(broker, 5, unique("c32-trickle"))
    c.subscribe("c32/trickle", 0)
    data = b""
    payloads = [b"s" * 10, b"m" * 400, b"l" * 70000]
    for p in payloads:
        data += frame(OP_BINARY, m.publish_packet(5, "c32/trickle", p))
    step = 0
    pos = 0
    sizes = [1, 2, 3, 5, 7, 11, 13, 4096]
    while pos < len(data):
        n = sizes[step % len(sizes)]
        c.ws.send_bytes(data[pos:pos + n])
        pos += n
        step += 1
        if pos < 200:
            time.sleep(0.002)  # gives the server separate reads; no timing is asserted
    for p in payloads:
        assert c.expect_publish("c32/trickle", timeout=WAIT).payload == p
    c.disconnect()


@pytest.mark.parametrize("tls", [False, True], ids=TRANSPORTS)
def test_large_frames_both_ways(broker, tls):
    c = ws_connected(broker, 5, unique("c32-large"), tls=tls)
    c.subscribe("c32/large", 1)
    big = os.urandom(900_000)
    c.publish_acked("c32/large", big, qos=1)
    pkt = c.expect_publish("c32/large")
    assert pkt.payload == big
    c.ack(pkt)
    # Server frames carrying it: binary, not masked (checked by WsSocket), one or more.
    assert any(len(f.payload) > 65535 for f in c.ws.frames), "no 64-bit length frame"
    c.disconnect()


@pytest.mark.parametrize("payload", [b"", b"hello ping", bytes(range(125))],
                         ids=["empty", "short", "125-bytes"])
def test_ping_is_answered_with_pong(broker, payload):
    c = ws_connected(broker, 4, unique("c32-ping"))
    c.ws.send_frame(OP_PING, payload)
    c.ws.frame_until(lambda f: f.op == OP_PONG)
    assert c.ws.pongs == [payload]
    # A pong from the client (unsolicited, allowed by section 5.5.3) is ignored.
    c.ws.send_frame(OP_PONG, b"unsolicited")
    c.ping()
    c.disconnect()


def test_ping_before_connect_and_many_pings(broker):
    c = ws_client(broker, 4)
    c.ws.send_frame(OP_PING, b"early")
    c.ws.frame_until(lambda f: f.op == OP_PONG)
    assert c.connect(unique("c32-pings")).reason == 0
    for i in range(50):
        c.ws.send_frame(OP_PING, b"%d" % i)
    while len(c.ws.pongs) < 51:
        c.ws.frame_until(lambda f: f.op == OP_PONG)
    assert c.ws.pongs == [b"early"] + [b"%d" % i for i in range(50)]
    c.disconnect()


# --- closing --------------------------------------------------------------------------------------

def will_watcher(broker, topic, version=4):
    """A plain TCP client subscribed to the will topic."""
    w = broker.connected(version, unique("c32-watch"))
    w.subscribe(topic, 1)
    return w


@pytest.mark.parametrize("tls", [False, True], ids=TRANSPORTS)
@pytest.mark.parametrize("code", [1000, 1001, None], ids=["1000", "1001", "no-code"])
def test_client_close_is_echoed_and_the_will_published(broker, version, tls, code):
    """The client starts the closing handshake without DISCONNECT: the server answers with a
    close frame (the same code; 1000 for a close without one) and ends the TCP connection, and
    the will goes out as for a lost connection."""
    topic = unique("c32/will")
    watcher = will_watcher(broker, topic)
    c = ws_connected(broker, version, unique("c32-closer"), tls=tls,
                     will={"topic": topic, "payload": b"gone", "qos": 1})
    c.ws.send_frame(OP_CLOSE, b"" if code is None else close_payload(code, b"bye"))
    f = c.ws.expect_close()
    assert f.close_code == (1000 if code is None else code), f
    pkt = watcher.expect_publish(topic, b"gone")
    watcher.ack(pkt)
    watcher.disconnect()


def test_disconnect_then_close_publishes_no_will(broker, version):
    topic = unique("c32/nowill")
    watcher = will_watcher(broker, topic)
    c = ws_connected(broker, version, unique("c32-polite"),
                     will={"topic": topic, "payload": b"must not", "qos": 1})
    c.ws.sendall(m.disconnect_packet(version))
    f = c.ws.expect_close()
    assert f.close_code == 1000, f
    watcher.publish_acked(topic, m.SENTINEL, qos=1)
    assert watcher.collect_until(topic) == []
    watcher.disconnect()


def test_server_closes_without_waiting_for_the_answer(broker):
    """After DISCONNECT the server sends close 1000 and ends the connection even when the
    client never answers the close frame."""
    c = ws_connected(broker, 5, unique("c32-mute"))
    c.ws.answer_close = False
    c.ws.sendall(m.disconnect_packet(5))
    assert c.ws.expect_close(timeout=20).close_code == 1000


def test_takeover_sends_close_1000(broker, version):
    cid = unique("c32-taken")
    first = ws_connected(broker, version, cid)
    second = ws_connected(broker, version, cid)
    got = first.expect_closed()
    if version == 5:
        assert [p.reason for p in got if p.type == m.DISCONNECT] == [m.RC_SESSION_TAKEN_OVER], got
    else:
        assert got == [], got
    assert first.ws.close_frame is not None and first.ws.close_frame.close_code == 1000, \
        first.ws.frames
    first.ws.expect_eof()
    second.ping()
    second.disconnect()


def test_keepalive_expiry_sends_close_1000(broker, version):
    c = ws_connected(broker, version, unique("c32-idle"), keepalive=1)
    got = c.expect_closed(timeout=WAIT)
    if version == 5:
        assert [p.reason for p in got if p.type == m.DISCONNECT] == [m.RC_KEEP_ALIVE_TIMEOUT], got
    assert c.ws.close_frame is not None and c.ws.close_frame.close_code == 1000, c.ws.frames
    c.ws.expect_eof()


def test_mqtt_protocol_error_ends_with_a_close_frame(broker, version):
    """A malformed MQTT packet: the MQTT error handling (v5: DISCONNECT 0x81/0x82), then a close
    frame, then the end of the TCP connection."""
    c = ws_connected(broker, version, unique("c32-bad-mqtt"))
    c.ws.sendall(bytes([0x30, 0x02, 0xFF, 0xFF]))  # PUBLISH whose topic length overruns it
    got = c.expect_closed()
    if version == 5:
        disc = [p for p in got if p.type == m.DISCONNECT]
        assert disc and disc[-1].reason in (m.RC_MALFORMED_PACKET, m.RC_PROTOCOL_ERROR), got
    assert c.ws.close_frame is not None, c.ws.frames
    c.ws.expect_eof()
    assert_alive(broker)


FRAME_ERRORS = {
    # name: (bytes to send, close code)
    "unmasked": (lambda: frame(OP_BINARY, m.pingreq_packet(), mask=False), 1002),
    "text": (lambda: frame(OP_TEXT, m.pingreq_packet()), 1003),
    "rsv1": (lambda: frame(OP_BINARY, m.pingreq_packet(), rsv=4), 1002),
    "rsv2": (lambda: frame(OP_BINARY, m.pingreq_packet(), rsv=2), 1002),
    "rsv3": (lambda: frame(OP_BINARY, m.pingreq_packet(), rsv=1), 1002),
    "rsv-on-ping": (lambda: frame(OP_PING, b"x", rsv=4), 1002),
    "opcode-3": (lambda: frame(0x3, m.pingreq_packet()), 1002),
    "opcode-7": (lambda: frame(0x7, b""), 1002),
    "opcode-0xB": (lambda: frame(0xB, b""), 1002),
    "opcode-0xF": (lambda: frame(0xF, b"abc"), 1002),
    "unmasked-ping": (lambda: frame(OP_PING, b"x", mask=False), 1002),
    "fragmented-ping": (lambda: frame(OP_PING, b"x", fin=False), 1002),
    "long-ping": (lambda: frame(OP_PING, b"p" * 126), 1002),
    "orphan-continuation": (lambda: frame(OP_CONTINUATION, m.pingreq_packet()), 1002),
    "binary-inside-fragmented": (lambda: frame(OP_BINARY, b"\xc0", fin=False) +
                                 frame(OP_BINARY, b"\x00"), 1002),
    # Both a new message inside a fragmented one (1002) and a text frame (1003).
    "text-continuing-binary": (lambda: frame(OP_BINARY, b"\xc0", fin=False) +
                               frame(OP_TEXT, b"\x00"), (1002, 1003)),
    # Frames may batch packets past max_packet_size; only a length past 64 MiB is refused.
    "too-large": (lambda: frame(OP_BINARY, b"", length=64 * 1024 * 1024 + 1) + os.urandom(4) +
                  b"z" * 100, 1009),
    "64-bit-length-with-top-bit": (
        lambda: bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 63) + os.urandom(4), (1002, 1009)),
}


@pytest.mark.parametrize("tls", [False, True], ids=TRANSPORTS)
@pytest.mark.parametrize("case", list(FRAME_ERRORS))
def test_frame_error_closes_with_its_code(broker_factory, case, tls):
    """Framing errors (RFC 6455 sections 5.1, 5.2, 5.4, 5.5, 7.4.1): a close frame with the
    code, then the end of the TCP connection, without waiting for the client's answer. The
    session's will goes out, as for a lost connection; others are not affected."""
    b = broker_factory(max_packet_size=4096)
    make, codes = FRAME_ERRORS[case]
    codes = codes if isinstance(codes, tuple) else (codes,)
    topic = unique("c32/err-will")
    watcher = will_watcher(b, topic)
    c = ws_connected(b, 4, unique("c32-err"), tls=tls,
                     will={"topic": topic, "payload": b"err-will", "qos": 1})
    c.ws.answer_close = False
    try:
        c.ws.send_bytes(make())
    except (BrokenPipeError, ConnectionResetError):
        pass
    f = c.ws.expect_close()
    assert f.close_code in codes, "close code %d, expected %s (%r)" % (f.close_code, codes, f)
    wait_for_log(b, "(close code %d)" % f.close_code)
    watcher.ack(watcher.expect_publish(topic, b"err-will"))
    watcher.disconnect()
    assert_alive(b)
    c2 = ws_connected(b, 4, unique("c32-err-after"), tls=tls)
    c2.disconnect()


def test_a_frame_may_batch_packets_past_max_packet_size(broker_factory):
    """Packets need not line up with frames (MQTT 5.0 section 6.0): one frame carrying many
    packets, together over max_packet_size, is accepted; a single packet over the limit is
    refused as over TCP, and the connection then closes with a normal close frame."""
    limit = 4096
    b = broker_factory(max_packet_size=limit)
    c = ws_connected(b, 4, unique("c32-limit"))
    c.subscribe("c32/limit", 0)
    pub = next(p for p in (m.publish_packet(4, "c32/limit", b"q" * n) for n in range(limit, 0, -1))
               if len(p) == limit)
    c.ws.send_frame(OP_BINARY, pub * 3)
    for _ in range(3):
        assert len(c.expect_publish("c32/limit", timeout=WAIT).raw) == limit
    c.ws.answer_close = False
    big = m.publish_packet(4, "c32/limit", b"q" * (limit + 1))
    c.ws.send_frame(OP_BINARY, big)
    assert c.ws.expect_close().close_code == 1000
    assert_alive(b)


def test_frame_error_before_connect(broker):
    """A framing error before any MQTT packet: close frame, TCP end, no harm done."""
    ws = open_ws(broker)
    ws.answer_close = False
    ws.send_bytes(frame(OP_TEXT, b"hello"))
    assert ws.expect_close().close_code == 1003
    assert_alive(broker)


# --- slow clients ---------------------------------------------------------------------------------

def test_slow_upgrade_does_not_hold_up_others(broker_factory, mqttjs):
    """Clients sending the upgrade request one byte per 100 ms (slowloris) share the one worker
    with others, who are served meanwhile: the slow ones send the first half of their request,
    then wait until the others are done, then send the rest the same way. Each slow one is in
    the end served (101) or closed by the server (a timeout on the handshake is allowed)."""
    b = broker_factory(workers=1)
    request = upgrade_request(key=new_key(), host="h")
    half = len(request) // 2
    at_half = [threading.Event() for _ in range(3)]
    others_done = threading.Event()
    results = {}

    def slow(i):
        s = None
        try:
            s = connect_socket(b)
            for pos, byte in enumerate(request):
                if pos == half:
                    at_half[i].set()
                    others_done.wait(120)
                s.sendall(bytes([byte]))
                time.sleep(0.1)
            results[i] = read_response(s, timeout=WAIT).status
        except (AssertionError, OSError) as e:
            results[i] = "closed: %s" % e
        finally:
            at_half[i].set()
            if s is not None:
                s.close()

    threads = [threading.Thread(target=slow, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    for e in at_half:
        assert e.wait(60)
    try:
        for round_ in range(3):
            c = ws_connected(b, 5, unique("c32-fast"))
            c.subscribe("c32/fast", 1)
            c.publish_acked("c32/fast", b"fast %d" % round_, qos=1)
            c.ack(c.expect_publish("c32/fast", b"fast %d" % round_))
            c.disconnect()
        for tls in (False, True):
            name = "fast-%s" % tls
            mqttjs.connect(name, ws_url(b, tls), **js_options(b, tls, 4))
            mqttjs.subscribe(name, "c32/fastjs", 1)
            mqttjs.publish(name, "c32/fastjs", "hi", qos=1)
            assert [x["payload"] for x in mqttjs.messages(name)] == ["hi"]
            mqttjs.end(name)
        assert_alive(b)
    finally:
        others_done.set()
    for t in threads:
        t.join(timeout=len(request) * 0.1 + 60)
        assert not t.is_alive()
    for i in range(3):
        assert results[i] == 101 or str(results[i]).startswith("closed"), (i, results[i])


# --- MQTT.js --------------------------------------------------------------------------------------

@pytest.mark.versions([3, 4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("tls", [False, True], ids=TRANSPORTS)
def test_mqttjs_round_trip(broker, mqttjs, version, qos, tls):
    url = ws_url(broker, tls)
    topic = "c32/js/%d/%d/%s" % (version, qos, tls)
    mqttjs.connect("sub", url, **js_options(broker, tls, version))
    assert mqttjs.subscribe("sub", topic, qos) == [qos]
    mqttjs.connect("pub", url, **js_options(broker, tls, version))
    for i in range(5):
        mqttjs.publish("pub", topic, "message %d over %s" % (i, "wss" if tls else "ws"), qos=qos)
    got = mqttjs.messages("sub", 5)
    assert [x["payload"] for x in got] == ["message %d over %s" % (i, "wss" if tls else "ws")
                                           for i in range(5)], got
    assert all(x["qos"] == qos and x["topic"] == topic for x in got), got
    mqttjs.end("sub")
    mqttjs.end("pub")


@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("tls", [False, True], ids=TRANSPORTS)
def test_mqttjs_and_tcp_clients_meet(broker, mqttjs, version, qos, tls):
    """MQTT.js over ws/wss → mosquitto_sub on TCP, and mosquitto_pub on TCP → MQTT.js."""
    url = ws_url(broker, tls)
    up, down = "c32/up/%d/%s" % (qos, tls), "c32/down/%d/%s" % (qos, tls)
    sub = clients.Subscriber(broker, version, up, count=1, qos=qos)
    mqttjs.connect("js", url, **js_options(broker, tls, version))
    mqttjs.publish("js", up, "from MQTT.js", qos=qos)
    rc, lines = sub.output()
    assert rc == 0, lines
    assert "from MQTT.js" in lines, lines
    assert mqttjs.subscribe("js", down, qos) == [qos]
    clients.mosquitto_pub(broker, version, down, "from mosquitto_pub", qos=qos)
    got = mqttjs.messages("js")
    assert [(x["topic"], x["payload"], x["qos"]) for x in got] == [
        (down, "from mosquitto_pub", qos)], got
    mqttjs.end("js")


def test_mqttjs_retained_and_large(broker, mqttjs):
    big = uuid.uuid4().hex * 30000  # 960 kB, under the default 1 MiB packet limit
    mqttjs.connect("a", ws_url(broker), **js_options(broker, False, 5))
    mqttjs.publish("a", "c32/js/retained", big, qos=1, retain=True)
    mqttjs.end("a")
    mqttjs.connect("b", ws_url(broker, True), **js_options(broker, True, 4))
    mqttjs.subscribe("b", "c32/js/retained", 1)
    got = mqttjs.messages("b")
    assert len(got) == 1 and got[0]["payload"] == big and got[0]["retain"], \
        [(x["topic"], len(x["payload"])) for x in got]
    mqttjs.end("b")


def test_mqttjs_many_messages_in_order(broker, mqttjs):
    n = 300
    mqttjs.connect("s", ws_url(broker, True), **js_options(broker, True, 5))
    mqttjs.subscribe("s", "c32/js/many", 1)
    c = broker.connected(5, unique("c32-tcp-many"))
    c.publish_many("c32/js/many", [b"%d" % i for i in range(n)], qos=1)
    got = mqttjs.messages("s", n, timeout=30)
    assert [x["payload"] for x in got] == [str(i) for i in range(n)]
    c.disconnect()
    mqttjs.end("s")


def test_mqttjs_will_on_lost_connection(broker, mqttjs):
    """MQTT.js closes its WebSocket without DISCONNECT (end(force)): the will goes out."""
    topic = unique("c32/js-will")
    watcher = will_watcher(broker, topic)
    mqttjs.connect("w", ws_url(broker), **js_options(
        broker, False, 5, will={"topic": topic, "payload": "js gone", "qos": 1}))
    mqttjs.call("end", name="w", force=True)
    watcher.ack(watcher.expect_publish(topic, b"js gone"))
    watcher.disconnect()


def test_mqttjs_sees_the_takeover(broker, mqttjs):
    cid = unique("c32-js-taken")
    mqttjs.connect("first", ws_url(broker), **js_options(broker, False, 5, client_id=cid))
    second = ws_connected(broker, 5, cid)
    assert mqttjs.wait_closed("first")
    second.disconnect()


# --- devices: identity and authentication as over TCP ---------------------------------------------

@pytest.fixture
def hub(api):
    return api.new_hub(name=unique("c32-hub"))


def device_ws(server, device_id, version, tls=False, ctx=None, client_id=None, username=None):
    c = ws_client(server, version, tls, ctx)
    ack = c.connect(device_id if client_id is None else client_id, username=username)
    return c, ack


REFUSED = {4: 0x05, 5: m.RC_NOT_AUTHORIZED}


@pytest.mark.parametrize("tls", [False, True], ids=TRANSPORTS)
def test_insecure_device_connects(server, api, hub, version, tls):
    d = insecure_device(api, hub["id"])
    c, ack = device_ws(server, d["id"], version, tls)
    assert ack.reason == 0, ack
    c.subscribe("c32/dev", 0)  # the shared plan: subscriptions at QoS 0
    c.publish_acked("c32/dev", b"device over ws", qos=1)
    c.expect_publish("c32/dev", b"device over ws")
    assert poll(lambda: api.call("getDevice", deviceId=d["id"])["isConnected"])
    # The username carries the device id too.
    c2, ack = device_ws(server, d["id"], version, tls, client_id="", username=d["id"])
    assert ack.reason == 0, ack
    c2.disconnect()
    c.disconnect()


@pytest.mark.parametrize("tls", [False, True], ids=TRANSPORTS)
def test_device_requiring_mtls_is_refused_without_a_certificate(server, api, hub, version, tls):
    d = api.new_device(hub["id"])
    assert d["allowInsecure"] is False
    c, ack = device_ws(server, d["id"], version, tls)
    assert ack.reason == REFUSED[version], ack
    assert c.expect_closed() == []
    assert c.ws.close_frame.close_code == 1000, c.ws.frames
    c, ack = device_ws(server, d["id"], version, tls, client_id="c32-other", username=d["id"])
    assert ack.reason == REFUSED[version], ack


@pytest.mark.parametrize("tls", [False, True], ids=TRANSPORTS)
def test_unknown_client_is_refused(server, version, tls):
    c, ack = device_ws(server, str(uuid.uuid4()), version, tls)
    assert ack.reason == REFUSED[version], ack


def test_wss_asks_for_no_client_certificate(server, api, hub, tmp_path, version):
    """The WebSocket network has no mutual TLS (browsers abandon a WebSocket whose server asks
    for a certificate): the wss handshake sends no CertificateRequest, a certificate the client
    holds is never sent, and a device that does not allow insecure connections is refused there
    even with its certificate at hand, while the same certificate works over mqtts."""
    created = api.call("createDevice", hubId=hub["id"], name=unique("c32-cert"))
    d, cert = created["device"], created["certificate"]
    assert d["allowInsecure"] is False
    (tmp_path / "dev.pem").write_text(cert["crt"])
    (tmp_path / "dev.key").write_text(cert["key"])
    shown = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.wss_port, "-msg",
         "-CAfile", str(server_ca(server))],
        input=b"", capture_output=True, timeout=30)
    assert b"ServerHello" in shown.stdout, shown.stdout[-2000:]
    assert b"CertificateRequest" not in shown.stdout, shown.stdout[-2000:]
    ctx = ssl.create_default_context(cafile=str(server_ca(server)))
    ctx.load_cert_chain(str(tmp_path / "dev.pem"), str(tmp_path / "dev.key"))
    _, ack = device_ws(server, d["id"], version, tls=True, ctx=ctx)
    assert ack.reason == REFUSED[version], ack
    assert not api.call("getDevice", deviceId=d["id"])["isConnected"]


def test_mqttjs_device_over_ws_and_wss(server, api, hub, mqttjs):
    d = insecure_device(api, hub["id"])
    for tls in (False, True):
        name = "dev-%s" % tls
        mqttjs.connect(name, ws_url(server, tls), **js_options(
            server, tls, 5, client_id="c32-js-dev", username=d["id"]))
        assert mqttjs.subscribe(name, "c32/jsdev", 0) == [0]  # the shared plan: QoS 0
        mqttjs.publish(name, "c32/jsdev", "device via MQTT.js", qos=1)
        assert [x["payload"] for x in mqttjs.messages(name)] == ["device via MQTT.js"]
        mqttjs.end(name)
    secure = api.new_device(hub["id"])
    a = mqttjs.connect("refused", ws_url(server), expect=False,
                       **js_options(server, False, 5, client_id=secure["id"]))
    assert not a["connected"] and a["code"] == m.RC_NOT_AUTHORIZED, a
