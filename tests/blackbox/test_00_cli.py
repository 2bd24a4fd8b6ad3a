"""The iothub binary itself: command line, configuration file, ready file, signals, workers and
the development hub. These tests run iothub only; with --broker=mosquitto they are skipped."""

import json
import signal
import socket
import subprocess
import time

import pytest

import mqttraw as m
from brokers import START_TIMEOUT, STOP_TIMEOUT, RawClients, iothub_binary, port_accepts

QUICK_EXIT = 15.0
RELOAD_TIMEOUT = 15.0


@pytest.fixture(autouse=True)
def iothub_only(request):
    if request.config.getoption("--broker") == "mosquitto":
        pytest.skip("tests of the iothub command line")
    if not iothub_binary().exists():
        pytest.fail("iothub binary not found at %s (set IOTHUB_BIN)" % iothub_binary())


def with_free_api_port(args):
    """`serve` arguments with the management API, the TLS listener and the WebSocket listeners on
    free ports (unless the test chose them), so no test binds the default 127.0.0.1:8080, 8883,
    8083 or 8084."""
    args = list(args)
    if args[:1] == ["serve"] and "--api" not in args and "--help" not in args:
        args += ["--api", "127.0.0.1:0"]
    for flag in ("--mqtts", "--ws", "--wss"):
        if args[:1] == ["serve"] and flag not in args and "--help" not in args:
            args += [flag, "127.0.0.1:0"]
    return args


def run_iothub(args, timeout=QUICK_EXIT, cwd=None):
    """Run iothub to completion; a server that does not exit fails the test."""
    args = with_free_api_port(args)
    try:
        return subprocess.run([str(iothub_binary())] + list(args), capture_output=True,
                              text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        pytest.fail("iothub %s did not exit within %ss" % (" ".join(args), timeout))


class Hub(RawClients):
    """One `iothub serve` process started with exactly the arguments given (plus a data directory
    and a ready file), its listener read from the ready file."""

    def __init__(self, workdir, args, ready_file=True):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ready = self.workdir / "ready.json"
        self.log_path = self.workdir / "iothub.log"
        self.clients = []
        full = ["serve", "--data-dir", str(self.workdir / "data")]
        if ready_file:
            full += ["--ready-file", str(self.ready)]
        full = [str(iothub_binary())] + with_free_api_port(full + list(args))
        self.proc = subprocess.Popen(full, stdout=open(self.log_path, "ab"),
                                     stderr=subprocess.STDOUT, cwd=str(self.workdir))
        self.address = None
        if ready_file:
            self.address = self.wait_ready()
            host, port = self.address.rsplit(":", 1)
            self.port = int(port)
            self.host = "127.0.0.1" if host == "0.0.0.0" else host

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("iothub exited with %s before it was ready:\n%s"
                            % (self.proc.returncode, self.log()))
            if self.ready.exists():
                try:
                    return json.loads(self.ready.read_text())["mqtt"]
                except (ValueError, KeyError):
                    pass
            time.sleep(0.02)
        pytest.fail("iothub did not write its ready file within %ss:\n%s"
                    % (START_TIMEOUT, self.log()))

    def log(self, tail=4000):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text if tail is None else text[-tail:]

    def check_running(self):
        assert self.proc.poll() is None, "iothub is not running:\n%s" % self.log()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self):
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("iothub did not exit within %ss:\n%s" % (STOP_TIMEOUT, self.log()))

    def close(self):
        for c in self.clients:
            c.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def hubs(tmp_path):
    """start(*args) starts an iothub; each is killed at the end if the test left it running."""
    started = []

    def start(*args, ready_file=True):
        h = Hub(tmp_path / ("hub%d" % len(started)), args, ready_file)
        started.append(h)
        return h

    yield start
    for h in started:
        h.close()


def stop_cleanly(hub):
    hub.signal(signal.SIGTERM)
    assert hub.wait_exit() == 0, hub.log()


def write_config(path, text):
    """Replace the file in one step, so a reload never reads it half written."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def connack_receive_maximum(hub):
    c = hub.raw(5)
    ack = c.connect("c00-rm", clean=True)
    assert ack.reason == 0, ack
    c.disconnect()
    return ack.props.get(m.RECEIVE_MAXIMUM, 65535)


def wait_receive_maximum(hub, want):
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while True:
        got = connack_receive_maximum(hub)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def reload_reports(hub):
    return sum(1 for line in hub.log(tail=None).splitlines() if "reload" in line.lower())


def wait_reload_report(hub, before):
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while time.monotonic() < deadline:
        if reload_reports(hub) > before:
            return True
        time.sleep(0.05)
    return False


# --- command line ---------------------------------------------------------------------------------

def test_serve_help_lists_flags():
    r = run_iothub(["serve", "--help"])
    assert r.returncode == 0, r.stderr
    for flag in ("--data-dir", "--mqtt", "--workers", "--config", "--log-level", "--ready-file"):
        assert flag in r.stdout, "%s missing from serve --help:\n%s" % (flag, r.stdout)


def test_no_subcommand_is_usage_error():
    r = run_iothub([])
    assert r.returncode != 0
    text = (r.stdout + r.stderr).lower()
    assert "subcommand" in text or "usage" in text or "--help" in text, text


def test_unknown_flag_is_error(tmp_path):
    r = run_iothub(["serve", "--no-such-flag", "--mqtt", "127.0.0.1:0",
                    "--data-dir", str(tmp_path / "data")])
    assert r.returncode != 0
    assert "--no-such-flag" in r.stdout + r.stderr


@pytest.mark.parametrize("flag,value", [("--receive-maximum", "0"), ("--workers", "-1"),
                                        ("--max-packet-size", "abc"), ("--mqtt", "nowhere")])
def test_bad_flag_value_is_error(tmp_path, flag, value):
    r = run_iothub(["serve", "--mqtt", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
                    flag, value])
    assert r.returncode != 0
    assert flag.lstrip("-") in (r.stdout + r.stderr).replace("_", "-"), r.stderr


# --- ready file -----------------------------------------------------------------------------------

def test_ready_file_names_a_working_port(hubs):
    hub = hubs("--mqtt", "127.0.0.1:0")
    info = json.loads(hub.ready.read_text())
    assert {"api", "mqtt"} <= set(info), info
    for key in ("mqtt", "api"):
        host, port = info[key].rsplit(":", 1)
        assert host == "127.0.0.1", info
        assert 0 < int(port) < 65536, info
    assert info["api"] != info["mqtt"], info
    for version in (4, 5):
        c = hub.raw(version)
        ack = c.connect("c00-ready-%d" % version)
        assert ack.reason == 0
        if version == 4:
            assert ack.raw == b"\x20\x02\x00\x00"
        c.ping()
        c.disconnect()
    stop_cleanly(hub)


# --- configuration file at start ------------------------------------------------------------------

def test_config_unknown_key_names_key_and_line(tmp_path):
    conf = tmp_path / "iothub.toml"
    conf.write_text('log_level = "warning"\nworkers = 1\nno_such_key = 3\n')
    r = run_iothub(["serve", "--config", str(conf), "--mqtt", "127.0.0.1:0",
                    "--data-dir", str(tmp_path / "data")])
    assert r.returncode != 0
    assert "no_such_key" in r.stderr, r.stderr
    assert ":3" in r.stderr or "line 3" in r.stderr, r.stderr


@pytest.mark.parametrize("line", ["receive_maximum = 0", "receive_maximum = 70000",
                                  "max_packet_size = 10", "workers = 5000"])
def test_config_value_out_of_range(tmp_path, line):
    key = line.split(" = ")[0]
    conf = tmp_path / "iothub.toml"
    conf.write_text(line + "\n")
    r = run_iothub(["serve", "--config", str(conf), "--mqtt", "127.0.0.1:0",
                    "--data-dir", str(tmp_path / "data")])
    assert r.returncode != 0
    assert key in r.stderr, r.stderr


def test_config_file_that_does_not_parse(tmp_path):
    conf = tmp_path / "iothub.toml"
    conf.write_text("workers = 1\nreceive_maximum = \n")
    r = run_iothub(["serve", "--config", str(conf), "--mqtt", "127.0.0.1:0",
                    "--data-dir", str(tmp_path / "data")])
    assert r.returncode != 0
    assert str(conf.name) in r.stderr, r.stderr


def test_missing_config_file(tmp_path):
    r = run_iothub(["serve", "--config", str(tmp_path / "absent.toml"), "--mqtt", "127.0.0.1:0",
                    "--data-dir", str(tmp_path / "data")])
    assert r.returncode != 0
    assert "absent.toml" in r.stdout + r.stderr


def test_port_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_iothub(["serve", "--mqtt", "127.0.0.1:%d" % port,
                        "--data-dir", str(tmp_path / "data")])
    assert r.returncode != 0
    assert str(port) in r.stderr, r.stderr
    assert "in use" in r.stderr.lower(), r.stderr


def test_port_held_by_another_iothub_is_in_use(hubs, tmp_path):
    # The listeners share their port between workers (SO_REUSEPORT); a second process must
    # still be refused the port, not silently handed half of the first one's clients.
    first = hubs("--mqtt", "127.0.0.1:0")
    r = run_iothub(["serve", "--mqtt", "127.0.0.1:%d" % first.port,
                    "--data-dir", str(tmp_path / "second")])
    assert r.returncode != 0
    assert "in use" in r.stderr.lower(), r.stderr
    first.check_running()
    c = first.connected(4, "c00-still-mine")
    c.disconnect()


def oversized_publish_outcome(hub, size):
    """A v5 client publishes a QoS 1 packet of `size` bytes in total. Returns the PUBACK, or the
    DISCONNECT the server sent before closing."""
    c = hub.connected(5, "c00-size")
    topic = "c00/size"
    overhead = len(m.publish_packet(5, topic, b"", qos=1, mid=1))
    payload = b"x" * (size - overhead - 1)
    packet = m.publish_packet(5, topic, payload, qos=1, mid=1)
    if len(packet) != size:
        payload = b"x" * (len(payload) + size - len(packet))
        packet = m.publish_packet(5, topic, payload, qos=1, mid=1)
    assert len(packet) == size
    c.send_raw(packet)
    try:
        pkt = c.read_packet()
    except ConnectionError:
        return None
    if pkt.type == m.DISCONNECT:
        c.expect_closed()
    else:
        c.disconnect()
    return pkt


def test_config_file_values_apply(hubs, tmp_path):
    conf = tmp_path / "iothub.toml"
    conf.write_text('mqtt = "127.0.0.1:0"\nmax_packet_size = 1000\nlog_level = "warning"\n')
    hub = hubs("--config", str(conf))
    c = hub.connected(5, "c00-props")
    assert c.connack.props.get(m.MAXIMUM_PACKET_SIZE) == 1000, c.connack
    c.disconnect()
    got = oversized_publish_outcome(hub, 2000)
    assert got is not None and got.type == m.DISCONNECT, got
    assert got.reason == m.RC_PACKET_TOO_LARGE, got
    stop_cleanly(hub)


def test_flag_overrides_config_file(hubs, tmp_path):
    conf = tmp_path / "iothub.toml"
    conf.write_text('mqtt = "127.0.0.1:1"\nmax_packet_size = 1000\n')
    hub = hubs("--config", str(conf), "--mqtt", "127.0.0.1:0", "--max-packet-size", "4000")
    assert hub.port != 1
    c = hub.connected(5, "c00-props")
    assert c.connack.props.get(m.MAXIMUM_PACKET_SIZE) == 4000, c.connack
    c.disconnect()
    got = oversized_publish_outcome(hub, 2000)
    assert got is not None and got.type == m.PUBACK and got.reason == 0, got
    stop_cleanly(hub)


# --- reload on SIGHUP -----------------------------------------------------------------------------

def test_sighup_applies_new_limits(hubs, tmp_path):
    conf = tmp_path / "iothub.toml"
    write_config(conf, 'mqtt = "127.0.0.1:0"\nreceive_maximum = 100\n')
    hub = hubs("--config", str(conf))
    assert connack_receive_maximum(hub) == 100
    held = hub.connected(5, "c00-held")
    write_config(conf, 'mqtt = "127.0.0.1:0"\nreceive_maximum = 7\n')
    hub.signal(signal.SIGHUP)
    assert wait_receive_maximum(hub, 7) == 7
    held.ping()
    held.disconnect()
    stop_cleanly(hub)


def test_sighup_with_broken_file_keeps_running_config(hubs, tmp_path):
    conf = tmp_path / "iothub.toml"
    write_config(conf, 'mqtt = "127.0.0.1:0"\nreceive_maximum = 9\n')
    hub = hubs("--config", str(conf))
    assert connack_receive_maximum(hub) == 9
    for broken in ("receive_maximum = 7\nthis is not toml\n",
                   "receive_maximum = 7\nno_such_key = 1\n",
                   "receive_maximum = 0\n"):
        write_config(conf, 'mqtt = "127.0.0.1:0"\n' + broken)
        before = reload_reports(hub)
        hub.signal(signal.SIGHUP)
        # The failed reload is reported in the log; once it is, the running values are checked.
        assert wait_reload_report(hub, before), "no report of the failed reload:\n" + hub.log()
        hub.check_running()
        assert connack_receive_maximum(hub) == 9, broken
    write_config(conf, 'mqtt = "127.0.0.1:0"\nreceive_maximum = 11\n')
    hub.signal(signal.SIGHUP)
    assert wait_receive_maximum(hub, 11) == 11
    hub.check_running()
    stop_cleanly(hub)


def test_sighup_changing_listener_keeps_old_one(hubs, tmp_path):
    conf = tmp_path / "iothub.toml"
    write_config(conf, 'mqtt = "127.0.0.1:0"\nreceive_maximum = 20\n')
    hub = hubs("--config", str(conf))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        other = s.getsockname()[1]
    write_config(conf, 'mqtt = "127.0.0.1:%d"\nreceive_maximum = 21\n' % other)
    hub.signal(signal.SIGHUP)
    # The limit in the same file is reloaded; the listener stays where it was.
    assert wait_receive_maximum(hub, 21) == 21
    hub.check_running()
    assert not port_accepts("127.0.0.1", other), "a listener was opened on reload"
    sub = hub.connected(5, "c00-listener")
    sub.subscribe("c00/listener", 1)
    sub.publish_acked("c00/listener", b"same port", qos=1)
    sub.expect_publish("c00/listener", b"same port")
    sub.disconnect()
    stop_cleanly(hub)


# --- signals --------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero(hubs, sig):
    hub = hubs("--mqtt", "127.0.0.1:0")
    c = hub.connected(4, "c00-sig")
    c.ping()
    hub.signal(sig)
    assert hub.wait_exit() == 0, hub.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_sends_disconnect_0x8b(hubs, sig):
    hub = hubs("--mqtt", "127.0.0.1:0")
    v5 = hub.connected(5, "c00-shutdown-v5")
    v5.ping()
    v311 = hub.connected(4, "c00-shutdown-v311")
    v311.ping()
    hub.signal(sig)
    got = v5.expect_closed(timeout=STOP_TIMEOUT)
    assert [p.type for p in got] == [m.DISCONNECT], got
    assert got[0].reason == 0x8B, got
    # MQTT 3.1.1 has no server DISCONNECT: the connection just closes.
    assert v311.expect_closed(timeout=STOP_TIMEOUT) == []
    assert hub.wait_exit() == 0, hub.log()


# --- workers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 4])
def test_many_clients_across_workers(hubs, workers):
    hub = hubs("--mqtt", "127.0.0.1:0", "--workers", str(workers))
    subs = []
    for i in range(20):
        version = 5 if i % 2 else 4
        s = hub.connected(version, "sub%d" % i)
        s.subscribe("c00/fan/#", 1)
        subs.append(s)
    pub = hub.connected(5, "pub")
    payloads = [b"m%d" % i for i in range(5)]
    for p in payloads:
        pub.publish_acked("c00/fan/x", p, qos=1)
    for s in subs:
        got = s.collect_publishes(len(payloads))
        assert [p.payload for p in got] == payloads
    # And the other way: each subscriber publishes to a topic only the publisher follows.
    pub.subscribe("c00/back/+", 1)
    for i, s in enumerate(subs):
        s.publish_acked("c00/back/%d" % i, b"from sub%d" % i, qos=1)
    got = pub.collect_publishes(len(subs))
    assert sorted(p.payload for p in got) == sorted(b"from sub%d" % i for i in range(len(subs)))
    for s in subs:
        s.disconnect()
    pub.disconnect()
    stop_cleanly(hub)


def test_persistent_sessions_resume_across_workers(hubs, version):
    hub = hubs("--mqtt", "127.0.0.1:0", "--workers", "4")
    props = {m.SESSION_EXPIRY_INTERVAL: 3600} if version == 5 else None
    ids = ["sess%d" % i for i in range(12)]
    for cid in ids:
        c = hub.connected(version, cid, clean=False, props=props)
        c.subscribe("c00/sess/" + cid, 1)
        c.disconnect()
    pub = hub.connected(5, "sess-pub")
    for cid in ids:
        pub.publish_acked("c00/sess/" + cid, b"queued for " + cid.encode(), qos=1)
    for cid in ids:
        c = hub.raw(version)
        ack = c.connect(cid, clean=False, props=props)
        assert ack.reason == 0 and ack.session_present, (cid, ack)
        pkt = c.expect_publish("c00/sess/" + cid, b"queued for " + cid.encode(), qos=1)
        c.ack(pkt)
        # Still subscribed after the move: a live message arrives too.
        pub.publish_acked("c00/sess/" + cid, b"live", qos=1)
        pkt = c.expect_publish("c00/sess/" + cid, b"live", qos=1)
        c.ack(pkt)
        c.disconnect()
    pub.disconnect()
    stop_cleanly(hub)


def test_take_over_across_workers(hubs):
    """A second connection with the same client id takes the session over, wherever either
    connection was accepted."""
    hub = hubs("--mqtt", "127.0.0.1:0", "--workers", "4")
    props = {m.SESSION_EXPIRY_INTERVAL: 3600}
    for i in range(8):
        cid = "takeover%d" % i
        first = hub.connected(5, cid, clean=False, props=props)
        first.subscribe("c00/take/" + cid, 1)
        second = hub.raw(5)
        ack = second.connect(cid, clean=False, props=props)
        assert ack.reason == 0 and ack.session_present, ack
        first.expect_disconnect(m.RC_SESSION_TAKEN_OVER)
        second.publish_acked("c00/take/" + cid, b"after take-over", qos=1)
        pkt = second.expect_publish("c00/take/" + cid, b"after take-over")
        second.ack(pkt)
        second.disconnect()
    stop_cleanly(hub)


# --- development hub ------------------------------------------------------------------------------

def test_dev_hub_closed_on_wildcard_address(hubs):
    hub = hubs("--mqtt", "0.0.0.0:0")
    assert hub.address.startswith("0.0.0.0:"), hub.address
    c = hub.raw(4)
    ack = c.connect("c00-dev-v311")
    assert ack.raw == b"\x20\x02\x00\x05", ack
    c.expect_closed()
    c = hub.raw(5)
    ack = c.connect("c00-dev-v5")
    assert ack.reason == m.RC_NOT_AUTHORIZED, ack
    assert ack.session_present is False
    c.expect_closed()
    hub.check_running()
    stop_cleanly(hub)


def test_dev_hub_forced_open(hubs):
    hub = hubs("--mqtt", "0.0.0.0:0", "--dev-hub")
    for version in (4, 5):
        c = hub.connected(version, "c00-dev-%d" % version)
        c.subscribe("c00/dev", 1)
        c.publish_acked("c00/dev", b"open", qos=1)
        c.ack(c.expect_publish("c00/dev", b"open"))
        c.disconnect()
    stop_cleanly(hub)


def test_no_dev_hub_on_loopback(hubs):
    hub = hubs("--mqtt", "127.0.0.1:0", "--no-dev-hub")
    c = hub.raw(4)
    ack = c.connect("c00-nodev")
    assert ack.raw == b"\x20\x02\x00\x05", ack
    c.expect_closed()
    stop_cleanly(hub)
