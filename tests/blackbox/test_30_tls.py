"""MQTT over TLS (mosquitto's area 08): iothub's mqtts listener with the certificate of its own
server CA or one given in files; mosquitto_pub/sub (`--cafile`, `--cert`/`--key`), Python's ssl
module and `openssl s_client` as clients. TLS versions, bad input (garbage instead of a
ClientHello, stalled and failed handshakes, a too long client chain), certificates reloaded on
SIGHUP, client certificates at the TLS level, and connections that move to their session's
worker. iothub only: the reference broker's TLS listener is not configured by these tests.

Certificates other than the server CA's are made by the test with the openssl command."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

import clients
import mqttraw as m

OPENSSL = shutil.which("openssl")
WAIT = 10.0


@pytest.fixture(autouse=True)
def iothub_only(broker_kind):
    if broker_kind != "iothub":
        pytest.skip("iothub's mqtts listener")


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def server_ca(broker):
    return broker.data_dir / "server-ca.pem"


# --- certificates made by the test ----------------------------------------------------------------

def openssl(*args, cwd=None, check=True, stdin=None):
    if OPENSSL is None:
        pytest.skip("the openssl command is not installed")
    r = subprocess.run([OPENSSL] + [str(a) for a in args], cwd=cwd, capture_output=True,
                       text=True, timeout=30, input=stdin)
    if check:
        assert r.returncode == 0, "openssl %s failed:\n%s" % (" ".join(map(str, args)), r.stderr)
    return r


class Cert:
    def __init__(self, crt, key):
        self.crt, self.key = crt, key

    def der(self):
        return ssl.PEM_cert_to_DER_cert(self.crt.read_text())


EXTENSIONS = {
    "ca": "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    "server": "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
              "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    "client": "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
}


def make_ca(directory, name):
    crt, key = directory / (name + ".pem"), directory / (name + ".key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", crt, "-days", "30", "-subj", "/CN=" + name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return Cert(crt, key)


def issue(directory, ca, name, kind):
    """A certificate of `kind` (ca, server, client) for `name`, signed by `ca`."""
    crt, key = directory / (name + ".pem"), directory / (name + ".key")
    csr, ext = directory / (name + ".csr"), directory / (name + ".ext")
    ext.write_text(EXTENSIONS[kind])
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    openssl("x509", "-req", "-in", csr, "-CA", ca.crt, "-CAkey", ca.key, "-days", "30",
            "-set_serial", str(uuid.uuid4().int >> 66), "-extfile", ext, "-out", crt)
    return Cert(crt, key)


# --- clients --------------------------------------------------------------------------------------

class Mqtts:
    """A broker's mqtts listener, in the shape clients.Subscriber and clients.mosquitto_pub
    take: mosquitto tools connect to it with TLS, trusting `cafile`."""

    def __init__(self, broker, cafile, extra=()):
        self.host, self.port = "127.0.0.1", broker.mqtts_port
        self.cafile = cafile
        self.extra = list(extra)

    def mosquitto_sub_args(self, version):
        return ["-h", self.host, "-p", str(self.port), "--cafile", str(self.cafile),
                "-V", {3: "mqttv31", 4: "mqttv311", 5: "mqttv5"}[version]] + self.extra


def client_context(cafile, cert=None):
    ctx = ssl.create_default_context(cafile=str(cafile))
    if cert is not None:
        ctx.load_cert_chain(str(cert.crt), str(cert.key))
    return ctx


def tls_client(broker, cafile=None, version=4, ctx=None):
    """A raw MQTT client (mqttraw) over TLS to the broker's mqtts listener; the server's name is
    checked as 127.0.0.1."""
    ctx = ctx or client_context(cafile or server_ca(broker))
    c = m.Client(broker.host, broker.mqtts_port, version)
    c.sock = ctx.wrap_socket(c.sock, server_hostname="127.0.0.1")
    broker.clients.append(c)
    return c


def tls_echo(broker, cafile=None, version=4, payload=b"ping"):
    """Another TLS client can connect, subscribe, publish and receive its own message."""
    c = tls_client(broker, cafile, version)
    cid = unique("c30-echo")
    assert c.connect(cid).reason == 0
    topic = "c30/echo/" + cid
    c.subscribe(topic, 1)
    c.publish_acked(topic, payload, qos=1)
    c.ack(c.expect_publish(topic, payload))
    c.disconnect()


def served_certificate(port, cafile=None):
    """The DER certificate the server presents (verified against `cafile` when given)."""
    if cafile is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = client_context(cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.getpeercert(binary_form=True)


def client_hello():
    """The bytes of a real ClientHello, made with a memory BIO."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16" and len(hello) > 100, hello[:16]
    return hello


def wait_closed(sock, timeout=WAIT):
    """Reads (and ignores: an alert, say) until the server closes; returns when it did."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "the server did not close the connection"
        sock.settimeout(remaining)
        try:
            if not sock.recv(65536):
                return
        except ConnectionResetError:
            return
        except socket.timeout:
            raise AssertionError("the server did not close the connection") from None


def wait_for_log(broker, text, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in broker.log():
            return
        time.sleep(0.05)
    raise AssertionError("%r never appeared in the log:\n%s" % (text, broker.log()))


# --- the listener and its server CA ---------------------------------------------------------------

def test_ready_file_and_server_ca(broker):
    assert broker.mqtts_port and broker.mqtts_port != broker.port
    ca = server_ca(broker)
    assert ca.exists(), "no server CA in the data directory"
    assert "BEGIN CERTIFICATE" in ca.read_text()
    # The served certificate verifies against it, for the name 127.0.0.1.
    assert served_certificate(broker.mqtts_port, ca)
    # The API hands out the same CA, without authentication.
    with urllib.request.urlopen(broker.api_url + "/iot/v1/regions/fr-par/server-ca",
                                timeout=WAIT) as r:
        assert json.loads(r.read())["ca_cert_pem"] == ca.read_text()


def test_no_server_ca_when_the_certificate_comes_from_files(broker_factory, tmp_path):
    ca, server = server_files(tmp_path, "files")
    b = broker_factory(extra_args=["--tls-cert-file", str(server.crt),
                                   "--tls-key-file", str(server.key)])
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(b.api_url + "/iot/v1/regions/fr-par/server-ca", timeout=WAIT)
    assert e.value.code == 404


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_round_trip(broker, version, qos):
    target = Mqtts(broker, server_ca(broker))
    topic = "c30/round/%d/%d" % (version, qos)
    sub = clients.Subscriber(target, version, topic, count=1, qos=qos)
    clients.mosquitto_pub(target, version, topic, "hello over tls", qos=qos)
    rc, lines = sub.output()
    assert rc == 0, lines
    assert "hello over tls" in lines, lines


def test_mosquitto_large_retained_payload(broker, tmp_path):
    payload = (uuid.uuid4().hex * 20000)[:600_000]  # 600 kB of text
    f = tmp_path / "payload.txt"
    f.write_text(payload)
    target = Mqtts(broker, server_ca(broker))
    args = ["mosquitto_pub"] + target.mosquitto_sub_args(4) + [
        "-t", "c30/large", "-f", str(f), "-q", "1", "-r"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 0, r.stderr
    args = ["mosquitto_sub"] + target.mosquitto_sub_args(5) + [
        "-t", "c30/large", "-C", "1", "-W", "10", "-N"]
    r = subprocess.run(args, capture_output=True, timeout=WAIT + 5)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == payload


def test_mosquitto_many_messages(broker):
    target = Mqtts(broker, server_ca(broker))
    n = 2000
    sub = clients.Subscriber(target, 4, "c30/many", count=n, qos=1)
    lines = "".join("message %d\n" % i for i in range(n))
    args = ["mosquitto_pub"] + target.mosquitto_sub_args(4) + ["-t", "c30/many", "-q", "1", "-l"]
    r = subprocess.run(args, input=lines, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    rc, out = sub.output()
    assert rc == 0, out[-5:]
    got = [line for line in out if line.startswith("message ")]
    assert got == ["message %d" % i for i in range(n)], got[:5]


def test_raw_large_and_pipelined(broker):
    """Our own codec over Python's ssl: a payload of many records each way, then thousands of
    small packets in one write, answered in order (records gathered on the way out)."""
    c = tls_client(broker, version=5)
    assert c.connect("c30-raw").reason == 0
    c.subscribe("c30/raw/#", 0)
    big = os.urandom(900_000)
    c.publish_acked("c30/raw/big", big, qos=1)
    assert c.expect_publish("c30/raw/big").payload == big
    n = 3000
    c.send_raw(b"".join(m.publish_packet(5, "c30/raw/small", b"%d" % i, qos=1, mid=i + 1)
                        for i in range(n)))
    acks, payloads = set(), []
    while len(acks) < n or len(payloads) < n:
        pkt = c.read_packet(timeout=WAIT)
        if pkt.type == m.PUBACK:
            acks.add(pkt.mid)
        else:
            assert pkt.type == m.PUBLISH, pkt
            payloads.append(pkt.payload)
    assert payloads == [b"%d" % i for i in range(n)]
    c.disconnect()


def test_connections_move_to_their_sessions_worker(broker_factory):
    """With several workers most sessions live on a worker other than the one that accepted the
    TLS connection: the connection moves there with its TLS session and the bytes that came
    after CONNECT (sent here in the same write)."""
    b = broker_factory(workers=4)
    peers = []
    for i in range(24):
        c = tls_client(b, version=4 if i % 2 else 5)
        cid = "c30-move-%d" % i
        c.send_raw(m.connect_packet(c.version, cid) +
                   m.subscribe_packet(c.version, 1, [("c30/move/%d" % i, 1)]) +
                   m.publish_packet(c.version, "c30/move/%d" % i, b"self %d" % i, qos=1, mid=2))
        assert c.expect_packet(m.CONNACK).reason == 0
        got = [c.read_packet(), c.read_packet(), c.read_packet()]
        assert sorted(p.type for p in got) == [m.PUBLISH, m.PUBACK, m.SUBACK], got
        pub = next(p for p in got if p.type == m.PUBLISH)
        assert pub.payload == b"self %d" % i
        c.ack(pub)
        peers.append(c)
    # Across workers: each publishes to the next one's topic.
    for i, c in enumerate(peers):
        c.publish_acked("c30/move/%d" % ((i + 1) % len(peers)), b"from %d" % i, qos=1)
    for i, c in enumerate(peers):
        pkt = c.expect_publish("c30/move/%d" % i, b"from %d" % ((i - 1) % len(peers)))
        c.ack(pkt)
    for c in peers:
        c.disconnect()


@pytest.mark.versions([5])
def test_take_over_over_tls(broker_factory, version):
    b = broker_factory(workers=4)
    first = tls_client(b, version=5)
    assert first.connect("c30-taken", clean=False,
                         props={m.SESSION_EXPIRY_INTERVAL: 60}).reason == 0
    first.subscribe("c30/taken", 1)
    second = tls_client(b, version=5)
    ack = second.connect("c30-taken", clean=False, props={m.SESSION_EXPIRY_INTERVAL: 60})
    assert ack.reason == 0 and ack.session_present, ack
    first.expect_disconnect(m.RC_SESSION_TAKEN_OVER)
    second.publish_acked("c30/taken", b"still subscribed", qos=1)
    second.ack(second.expect_publish("c30/taken", b"still subscribed"))
    second.disconnect()


# --- versions -------------------------------------------------------------------------------------

def s_client(port, *args):
    return openssl("s_client", "-connect", "127.0.0.1:%d" % port, *args, check=False, stdin="")


def test_tls13_is_negotiated(broker):
    r = s_client(broker.mqtts_port, "-CAfile", server_ca(broker), "-verify_return_error",
                 "-brief")
    out = r.stdout + r.stderr
    assert "Protocol version: TLSv1.3" in out, out
    assert "Verification: OK" in out, out


@pytest.mark.parametrize("tls", ["-tls1_2", "-tls1_3"])
def test_resumption_gives_a_full_handshake(broker, tls):
    """No session is resumed (a resumed session would lack the client's intermediates): each
    reconnection offering the previous session gets a new one, and works."""
    r = s_client(broker.mqtts_port, tls, "-reconnect", "-CAfile", server_ca(broker))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert out.count("New, TLSv1.") >= 6, out
    assert "Reused, TLSv1." not in out, out
    tls_echo(broker)


def test_tls12_with_forward_secrecy_and_aead(broker):
    r = s_client(broker.mqtts_port, "-tls1_2", "-CAfile", server_ca(broker), "-brief")
    out = r.stdout + r.stderr
    assert "Protocol version: TLSv1.2" in out, out
    assert "Ciphersuite: ECDHE-" in out and ("GCM" in out or "CHACHA20" in out), out
    # CBC and static RSA key exchange are not offered.
    r = s_client(broker.mqtts_port, "-tls1_2", "-cipher", "AES128-SHA256:ECDHE-ECDSA-AES128-SHA")
    assert "Protocol version: TLSv1.2" not in r.stdout + r.stderr
    assert "Cipher is (NONE)" in r.stdout or "handshake failure" in r.stderr, r.stdout + r.stderr


def test_tls11_is_refused(broker):
    r = s_client(broker.mqtts_port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    out = r.stdout + r.stderr
    if "no protocols available" in out or "unknown option" in out:
        pytest.skip("this openssl cannot offer TLS 1.1: %s" % out.strip().splitlines()[-1])
    assert r.returncode != 0, out
    assert "alert protocol version" in out, out
    wait_for_log(broker, "TLS handshake with 127.0.0.1:")
    assert "unsupported protocol" in broker.log(), broker.log()
    tls_echo(broker)


def test_tls_min_version_13_refuses_12(broker_factory):
    b = broker_factory(extra_args=["--tls-min-version", "1.3"])
    r = s_client(b.mqtts_port, "-tls1_2")
    assert "Protocol version: TLSv1.2" not in r.stdout + r.stderr
    assert r.returncode != 0
    tls_echo(b)


# --- bad input ------------------------------------------------------------------------------------

MQTT_CONNECT = m.connect_packet(4, "plain-on-tls")


@pytest.mark.parametrize("garbage", [MQTT_CONNECT, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                     b"\x16\x03\x01\xff\xff" + b"\x00" * 200, b"\x00" * 70000],
                         ids=["mqtt-connect", "http", "bad-record", "zeros"])
def test_garbage_instead_of_client_hello(broker, garbage):
    with socket.create_connection(("127.0.0.1", broker.mqtts_port), timeout=WAIT) as s:
        try:
            s.sendall(garbage)
        except (BrokenPipeError, ConnectionResetError):
            pass
        wait_closed(s)
    wait_for_log(broker, "TLS handshake with 127.0.0.1:")
    assert "failed" in broker.log()
    tls_echo(broker)
    broker.check_running()


def test_stalled_handshakes_are_closed_after_the_timeout(broker_factory):
    b = broker_factory(extra_args=["--tls-handshake-timeout", "1"], workers=2)
    hello = client_hello()
    stalled = []
    started = time.monotonic()
    for i in range(6):
        s = socket.create_connection(("127.0.0.1", b.mqtts_port), timeout=WAIT)
        if i % 3 == 0:
            pass  # nothing at all
        elif i % 3 == 1:
            s.sendall(hello[: len(hello) // 2])
        else:
            s.sendall(hello[:3])
        stalled.append(s)
    # Meanwhile, others are served at once.
    tls_echo(b)
    clients_ok = time.monotonic()
    for s in stalled:
        wait_closed(s, timeout=WAIT)
        s.close()
    closed = time.monotonic()
    # Not before the timeout: a handshake is given the configured second.
    assert closed - started >= 0.9, closed - started
    assert clients_ok - started < closed - started
    wait_for_log(b, "not finished after 1 s")
    tls_echo(b)


def test_wrong_ca_client_refuses_the_server(broker, tmp_path):
    other = make_ca(tmp_path, "other-ca")
    target = Mqtts(broker, other.crt)
    args = ["mosquitto_pub"] + target.mosquitto_sub_args(4) + ["-t", "c30/x", "-m", "x"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=WAIT)
    assert r.returncode != 0, r.stdout + r.stderr
    with pytest.raises(ssl.SSLCertVerificationError):
        served_certificate(broker.mqtts_port, other.crt)
    # The server saw the client give up (an "unknown ca" alert), and goes on.
    wait_for_log(broker, "TLS handshake with 127.0.0.1:")
    tls_echo(broker)


# --- certificates from files, and SIGHUP ------------------------------------------------------------

def server_files(tmp_path, name):
    ca = make_ca(tmp_path, name + "-ca")
    return ca, issue(tmp_path, ca, name, "server")


def install(cert, crt_path, key_path):
    # Replaced by rename, as a certificate tool does.
    for src, dst in ((cert.crt, crt_path), (cert.key, key_path)):
        tmp = dst.with_suffix(".tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)


def test_given_certificate_is_served(broker_factory, tmp_path):
    ca, server = server_files(tmp_path, "given")
    b = broker_factory(extra_args=["--tls-cert-file", str(server.crt),
                                   "--tls-key-file", str(server.key)])
    assert served_certificate(b.mqtts_port, ca.crt) == server.der()
    tls_echo(b, ca.crt)
    target = Mqtts(b, ca.crt)
    sub = clients.Subscriber(target, 4, "c30/given", count=1, qos=1)
    clients.mosquitto_pub(target, 4, "c30/given", "given cert", qos=1)
    rc, lines = sub.output()
    assert rc == 0 and "given cert" in lines, lines


def test_sighup_reloads_certificates_and_keeps_clients(broker_factory, tmp_path):
    ca_a, cert_a = server_files(tmp_path, "first")
    ca_b, cert_b = server_files(tmp_path, "second")
    crt, key = tmp_path / "server.pem", tmp_path / "server.key"
    install(cert_a, crt, key)
    b = broker_factory(extra_args=["--tls-cert-file", str(crt), "--tls-key-file", str(key)],
                       workers=2)
    old = tls_client(b, ca_a.crt)
    assert old.connect("c30-old").reason == 0
    old.subscribe("c30/reload", 1)

    install(cert_b, crt, key)
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + WAIT
    while served_certificate(b.mqtts_port) != cert_b.der():
        assert time.monotonic() < deadline, "the new certificate is never served"
        time.sleep(0.05)
    # Every worker has it (SO_REUSEPORT spreads these over both).
    for _ in range(8):
        assert served_certificate(b.mqtts_port, ca_b.crt) == cert_b.der()
    with pytest.raises(ssl.SSLCertVerificationError):
        served_certificate(b.mqtts_port, ca_a.crt)

    # The client connected before the reload keeps its connection.
    new = tls_client(b, ca_b.crt)
    assert new.connect("c30-new").reason == 0
    new.publish_acked("c30/reload", b"after reload", qos=1)
    old.ack(old.expect_publish("c30/reload", b"after reload"))
    old.publish_acked("c30/reload", b"old still talks", qos=1)
    old.ack(old.expect_publish("c30/reload", b"old still talks"))

    # Files that cannot be used: the running certificate stays.
    crt.write_text("not a certificate\n")
    b.proc.send_signal(signal.SIGHUP)
    wait_for_log(b, "certificate reload failed")
    assert served_certificate(b.mqtts_port, ca_b.crt) == cert_b.der()
    old.disconnect()
    new.disconnect()


def test_bad_certificate_files_stop_the_start(tmp_path):
    from test_00_cli import run_iothub
    (tmp_path / "bad.pem").write_text("nothing\n")
    (tmp_path / "bad.key").write_text("nothing\n")
    r = run_iothub(["serve", "--mqtt", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
                    "--tls-cert-file", str(tmp_path / "bad.pem"),
                    "--tls-key-file", str(tmp_path / "bad.key")])
    assert r.returncode != 0
    assert "bad.pem" in r.stderr and "TLS certificate" in r.stderr, r.stderr
    r = run_iothub(["serve", "--mqtt", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
                    "--tls-cert-file", str(tmp_path / "bad.pem")])
    assert r.returncode != 0
    assert "tls_key_file" in r.stderr, r.stderr


# --- client certificates --------------------------------------------------------------------------

def connack_with_certificate(broker, cert, client_id, version=4):
    """CONNECT over TLS presenting `cert`; the CONNACK, which shows the handshake took it."""
    c = tls_client(broker, version=version, ctx=client_context(server_ca(broker), cert))
    ack = c.connect(client_id)
    c.close()
    return ack


def test_client_certificate_is_accepted_at_the_tls_level(broker, tmp_path):
    """The server asks for a certificate but does not judge it in the handshake: one from a CA
    no hub knows completes the handshake, and the hub (at CONNECT) decides what it proves.
    It proves nothing here, which the hub refuses with "not authorized", where the same
    client without a certificate is let onto the open development hub."""
    ca = make_ca(tmp_path, "devices-ca")
    cert = issue(tmp_path, ca, "c30-device", "client")
    target = Mqtts(broker, server_ca(broker), extra=["--cert", str(cert.crt), "--key", str(cert.key)])
    args = ["mosquitto_pub", "-d"] + target.mosquitto_sub_args(4) + ["-t", "c30/cert", "-m", "x",
                                                                     "-i", "c30-cert-pub"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=WAIT)
    assert "received CONNACK" in r.stdout, r.stdout + r.stderr
    for version in (4, 5):
        ack = connack_with_certificate(broker, cert, "c30-with-cert", version)
        assert ack.reason in (0, m.RC_NOT_AUTHORIZED if version == 5 else 5), ack
    assert "TLS handshake" not in broker.log(), broker.log()
    tls_echo(broker)


def test_too_long_client_chain_is_refused(broker, tmp_path):
    root = make_ca(tmp_path, "chain-root")
    chain, issuer = [], root
    for i in range(11):
        issuer = issue(tmp_path, issuer, "chain-int-%d" % i, "ca")
        chain.append(issuer)
    leaf = issue(tmp_path, issuer, "chain-leaf", "client")
    long_chain = tmp_path / "long-chain.pem"
    long_chain.write_text(leaf.crt.read_text() +
                          "".join(c.crt.read_text() for c in reversed(chain)))
    c = tls_client(broker, ctx=client_context(server_ca(broker), Cert(long_chain, leaf.key)))
    with pytest.raises((m.ProtocolError, ssl.SSLError, ConnectionError, OSError)):
        # TLS 1.3: the refusal arrives after the client's handshake returned.
        c.connect("c30-long-chain")
    wait_for_log(broker, "TLS handshake with 127.0.0.1:")
    assert "chain too long" in broker.log(), broker.log()
    # A chain of acceptable length is taken.
    short = issue(tmp_path, chain[1], "chain-short", "client")
    short_chain = tmp_path / "short-chain.pem"
    short_chain.write_text(short.crt.read_text() + chain[1].crt.read_text() +
                           chain[0].crt.read_text())
    ack = connack_with_certificate(broker, Cert(short_chain, short.key), "c30-short-chain")
    assert ack.reason in (0, 5), ack
