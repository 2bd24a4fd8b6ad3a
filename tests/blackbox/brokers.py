"""Start and stop the brokers under test: iothub and Debian's mosquitto, each on a free port."""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import mqttraw

REPO_ROOT = Path(__file__).resolve().parents[2]
MOSQUITTO = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")
MOSQUITTO_PUB = os.environ.get("MOSQUITTO_PUB", "mosquitto_pub")
MOSQUITTO_SUB = os.environ.get("MOSQUITTO_SUB", "mosquitto_sub")
KINDS = ("mosquitto", "iothub")

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# Limit name -> iothub flag.
IOTHUB_FLAGS = {
    "max_packet_size": "--max-packet-size",
    "max_queued_messages": "--max-queued-messages",
    "max_inflight": "--max-inflight",
    "receive_maximum": "--receive-maximum",
    "topic_alias_maximum": "--topic-alias-maximum",
    "max_topic_length": "--max-topic-length",
    "max_topic_levels": "--max-topic-levels",
    "max_connections": "--max-connections",
    "max_keep_alive": "--max-keep-alive",
    "workers": "--workers",
}

# Limit name -> (mosquitto option, scope). Limits missing here have no mosquitto equivalent.
MOSQUITTO_OPTIONS = {
    "max_packet_size": ("max_packet_size", "global"),
    "max_queued_messages": ("max_queued_messages", "global"),
    "max_inflight": ("max_inflight_messages", "global"),
    # mosquitto announces max_inflight_messages as the v5 Receive Maximum.
    "receive_maximum": ("max_inflight_messages", "global"),
    "max_keep_alive": ("max_keepalive", "global"),
    "topic_alias_maximum": ("max_topic_alias", "listener"),
    "max_connections": ("max_connections", "listener"),
}
# Limits that do not change what a client can observe, so mosquitto may ignore them.
MOSQUITTO_IGNORED = {"workers"}


def iothub_binary():
    path = Path(os.environ.get("IOTHUB_BIN", "build/iothub"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def _listener_port(address):
    """The port of a ready file's "host:port", or None for a listener that is absent or off."""
    if not address or address == "off":
        return None
    return int(address.rsplit(":", 1)[1])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class RawClients:
    """Raw clients of a running server at self.host:self.port, closed with it (self.clients)."""

    def raw(self, version=4, timeout=5.0):
        c = mqttraw.Client(self.host, self.port, version, timeout)
        self.clients.append(c)
        return c

    def connected(self, version=4, client_id="", clean=True, **kw):
        """A raw client with a successful CONNECT."""
        c = self.raw(version)
        ack = c.connect(client_id, clean, **kw)
        assert ack.reason == 0, ack
        c.connack = ack
        return c


class Broker(RawClients):
    """One broker process with its own data directory. Restartable with the same data."""

    def __init__(self, kind, workdir, limits=None, extra_args=()):
        self.kind = kind
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.limits = dict(limits or {})
        self.extra_args = list(extra_args)
        self.host = "127.0.0.1"
        self.port = None
        self.api_url = None
        self.mqtts_port = None  # iothub's MQTT-over-TLS listener
        self.ws_port = None     # iothub's MQTT-over-WebSocket listener (None when off)
        self.wss_port = None    # iothub's MQTT-over-WebSocket-over-TLS listener (None when off)
        self.proc = None
        self.starts = 0
        self.clients = []
        self.failures = []

    # lifecycle
    def start(self):
        self.starts += 1
        self.log_path = self.workdir / ("broker-%d.log" % self.starts)
        if self.kind == "iothub":
            self._start_iothub()
        else:
            self._start_mosquitto()
        return self

    def _start_iothub(self):
        binary = iothub_binary()
        if not binary.exists():
            pytest.fail("iothub binary not found at %s (set IOTHUB_BIN)" % binary)
        ready = self.workdir / "ready.json"
        if ready.exists():
            ready.unlink()
        # The management API always listens on a free port: no test binds the default 8080.
        args = [str(binary), "serve", "--mqtt", "127.0.0.1:0", "--api", "127.0.0.1:0",
                "--mqtts", "127.0.0.1:0",
                "--data-dir", str(self.data_dir), "--ready-file", str(ready),
                "--log-level", "warning"]
        # The WebSocket listeners too, unless the test chose their addresses (or "off").
        for flag in ("--ws", "--wss"):
            if flag not in self.extra_args:
                args += [flag, "127.0.0.1:0"]
        for name, value in self.limits.items():
            args += [IOTHUB_FLAGS[name], str(value)]
        args += self.extra_args
        self.proc = subprocess.Popen(args, stdout=open(self.log_path, "ab"),
                                     stderr=subprocess.STDOUT, cwd=str(self.workdir))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("iothub exited with %s before it was ready:\n%s"
                            % (self.proc.returncode, self.log()))
            if ready.exists():
                try:
                    info = json.loads(ready.read_text())
                    host, port = info["mqtt"].rsplit(":", 1)
                    self.host, self.port = host, int(port)
                    if "api" in info:
                        self.api_url = "http://" + info["api"]
                    if "mqtts" in info:
                        self.mqtts_port = int(info["mqtts"].rsplit(":", 1)[1])
                    self.ws_port = _listener_port(info.get("ws"))
                    self.wss_port = _listener_port(info.get("wss"))
                    return
                except (ValueError, KeyError):
                    pass
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        pytest.fail("iothub did not write its ready file within %ss:\n%s"
                    % (START_TIMEOUT, self.log()))

    def _start_mosquitto(self):
        for name in self.limits:
            if name not in MOSQUITTO_OPTIONS and name not in MOSQUITTO_IGNORED:
                pytest.skip("mosquitto has no equivalent of the iothub limit %s" % name)
        if self.port is None:
            self.port = free_port()
        lines = ["listener %d 127.0.0.1" % self.port]
        for name, value in self.limits.items():
            opt = MOSQUITTO_OPTIONS.get(name)
            if opt and opt[1] == "listener":
                lines.append("%s %s" % (opt[0], value))
        lines += [
            "allow_anonymous true",
            "persistence true",
            "persistence_location %s/" % self.data_dir,
            "autosave_interval 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "user root",
        ]
        for name, value in self.limits.items():
            opt = MOSQUITTO_OPTIONS.get(name)
            if opt and opt[1] == "global":
                lines.append("%s %s" % (opt[0], value))
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=open(self.log_path, "ab"),
                                     stderr=subprocess.STDOUT, cwd=str(self.workdir))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("mosquitto exited with %s at start:\n%s"
                            % (self.proc.returncode, self.log()))
            if port_accepts(self.host, self.port):
                return
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        pytest.fail("mosquitto did not accept connections within %ss" % START_TIMEOUT)

    def stop(self):
        """SIGTERM, then wait. Returns an error message, or None when it exited cleanly."""
        for c in self.clients:
            c.close()
        self.clients = []
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is not None:
            return "%s died during the test (exit status %s):\n%s" % (
                self.kind, proc.returncode, self.log())
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return "%s did not exit within %ss of SIGTERM:\n%s" % (
                self.kind, STOP_TIMEOUT, self.log())
        if proc.returncode != 0:
            how = ("killed by signal %d" % -proc.returncode if proc.returncode < 0
                   else "exit status %d" % proc.returncode)
            return "%s did not shut down cleanly (%s):\n%s" % (self.kind, how, self.log())
        return None

    def restart(self):
        """Stop with SIGTERM (which must succeed) and start again on the same data directory."""
        err = self.stop()
        if err:
            pytest.fail(err)
        self.start()
        return self

    def check_running(self):
        assert self.proc is not None and self.proc.poll() is None, \
            "%s is not running:\n%s" % (self.kind, self.log())

    def log(self):
        try:
            return Path(self.log_path).read_text(errors="replace")[-4000:]
        except OSError:
            return ""


    def mosquitto_sub_args(self, version):
        return ["-h", self.host, "-p", str(self.port),
                "-V", {3: "mqttv31", 4: "mqttv311", 5: "mqttv5"}[version]]

    @property
    def is_mosquitto(self):
        return self.kind == "mosquitto"

    @property
    def is_iothub(self):
        return self.kind == "iothub"


def assert_alive(broker, version=4):
    """Another client on the same broker can still connect, subscribe, publish and receive."""
    broker.check_running()
    c = broker.connected(version, "alive-check-%d" % version)
    c.subscribe("alive/check", 1)
    c.publish_acked("alive/check", b"still here", qos=1)
    pkt = c.expect_publish("alive/check", b"still here")
    c.ack(pkt)
    c.disconnect()


def expect_error_close(broker, client, reasons, mosquitto_reasons=None):
    """The server closes the connection after an error.

    MQTT 3.1.1 has no DISCONNECT from the server: the connection just closes. On MQTT 5 the server
    SHOULD send DISCONNECT with the reason code first (section 4.13). iothub must send it, with one
    of `reasons`. mosquitto 2.0.11 often closes without one; where it does send one, its reason code
    must be in `mosquitto_reasons` (defaults to `reasons`), and where it sends none we accept that.
    Returns the DISCONNECT packet, if any.
    """
    if isinstance(reasons, int):
        reasons = {reasons}
    got = client.expect_closed()
    others = [p for p in got if p.type not in (mqttraw.DISCONNECT, mqttraw.PUBLISH,
                                                mqttraw.PUBACK, mqttraw.PUBREC, mqttraw.PUBCOMP)]
    assert not others, "unexpected packets before close: %r" % (got,)
    disc = [p for p in got if p.type == mqttraw.DISCONNECT]
    if client.version < 5:
        assert not disc, "a 3.1.1 server has no DISCONNECT to send: %r" % (got,)
        return None
    if broker.is_iothub:
        assert disc, "expected DISCONNECT with one of %s before close, got %r" % (
            ["0x%02x" % r for r in sorted(reasons)], got)
    if disc:
        allowed = reasons if broker.is_iothub or mosquitto_reasons is None else mosquitto_reasons
        if isinstance(allowed, int):
            allowed = {allowed}
        assert disc[-1].reason in allowed, "DISCONNECT 0x%02x, expected one of %s" % (
            disc[-1].reason, ["0x%02x" % r for r in sorted(allowed)])
        return disc[-1]
    return None
