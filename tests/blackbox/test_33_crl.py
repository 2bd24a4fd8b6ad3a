"""Certificate revocation lists for client certificates (mosquitto's test/ssl keeps a revoked
certificate among its bad cases): `tls_crl_file` names CRLs in PEM; a client certificate a CRL
of its issuer lists is refused at CONNECT ("not authorized", a hub event), on the custom-CA path
(chain under a hub's CA, device named by common name) and on the fingerprint path (a device's
custom certificate); the file is read again on SIGHUP, for new connections only; a bad file stops
the start, and on reload keeps the running CRLs.

The customer's CA, its certificates and CRLs are made with the openssl command (`openssl ca`
with an index file, as a small CA would run it); mosquitto_pub and Python's ssl module connect."""

import os
import shutil
import signal
import ssl
import subprocess
import time
import uuid

import pytest

import mqttraw as m
from iotapi import (WAIT, EventListener, admin_api, insecure_device, iothub_only,  # noqa: F401
                    msg_is, poll, start_server, stop_server, unique)
from test_00_cli import run_iothub

OPENSSL = shutil.which("openssl")
MOSQUITTO_PUB = os.environ.get("MOSQUITTO_PUB", "mosquitto_pub")
EVENT = "invalid device certificate"

CA_CONFIG = """
[ca]
default_ca = customer_ca
[customer_ca]
dir = .
database = index.txt
new_certs_dir = .
certificate = ca.pem
private_key = ca.key
crlnumber = crlnumber
default_md = sha256
default_crl_days = 7
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
"""


def openssl(*args, cwd):
    if OPENSSL is None:
        pytest.skip("the openssl command is not installed")
    r = subprocess.run([OPENSSL] + [str(a) for a in args], cwd=str(cwd), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, "openssl %s failed:\n%s" % (" ".join(map(str, args)), r.stderr)
    return r.stdout


class Cert:
    def __init__(self, crt, key):
        self.crt, self.key = crt, key

    def pem(self):
        return self.crt.read_text()


class CustomerCa:
    """A CA run with `openssl ca` in its own directory: issues client certificates, revokes
    them in its index, and publishes CRLs."""

    def __init__(self, path, name="customer"):
        self.path = path
        path.mkdir(parents=True)
        (path / "ca.cnf").write_text(CA_CONFIG)
        (path / "index.txt").write_text("")
        (path / "crlnumber").write_text("01\n")
        openssl("req", "-x509", "-config", "ca.cnf", "-extensions", "v3_ca", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
                "-out", "ca.pem", "-subj", "/CN=" + name, "-days", "30", cwd=path)
        self.cert = Cert(path / "ca.pem", path / "ca.key")

    def leaf(self, cn):
        name = unique("leaf")
        openssl("req", "-new", "-config", "ca.cnf", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
                "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=self.path)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-set_serial", str(uuid.uuid4().int >> 68), "-days", "5", "-extfile", "ca.cnf",
                "-extensions", "v3_client", "-out", name + ".pem", cwd=self.path)
        return Cert(self.path / (name + ".pem"), self.path / (name + ".key"))

    def revoke(self, cert):
        openssl("ca", "-config", "ca.cnf", "-revoke", cert.crt, "-crl_reason", "keyCompromise",
                cwd=self.path)

    def publish_crl(self, dest, *dates):
        """The CRL of what is revoked so far, written to `dest` by rename (as a CA tool
        replaces a file); `dates`: extra `openssl ca -gencrl` options."""
        tmp = self.path / unique("crl")
        openssl("ca", "-config", "ca.cnf", "-gencrl", "-out", tmp, *dates, cwd=self.path)
        os.replace(tmp, dest)
        return dest


@pytest.fixture
def ca(tmp_path):
    return CustomerCa(tmp_path / "customer-ca")


@pytest.fixture
def crl_file(tmp_path):
    return tmp_path / "revoked.crl"


@pytest.fixture
def make_server(tmp_path):
    started = []

    def make(crl_path):
        b = start_server(tmp_path / ("iothub%d" % len(started)),
                         ["--no-dev-hub", "--tls-crl-file", str(crl_path)])
        started.append(b)
        return b

    yield make
    for b in started:
        stop_server(b)


def custom_ca_hub(api, ca):
    """A hub whose CA is the customer's, with devices named by their certificates."""
    hub_id = api.new_hub(name=unique("c33-hub"), productPlan="plan_dedicated")["id"]
    api.disable_hub(hub_id)
    api.call("setHubCA", hubId=hub_id, caCertPem=ca.cert.pem(),
             challengeCertPem=ca.leaf(hub_id).pem())
    api.enable_hub(hub_id)
    return hub_id


def mosquitto_pub(server, cert, version, client_id):
    """Publish once over mqtts with client certificate `cert`; (accepted, output)."""
    args = [MOSQUITTO_PUB, "-d", "-h", "127.0.0.1", "-p", str(server.mqtts_port),
            "--cafile", str(server.data_dir / "server-ca.pem"),
            "--cert", str(cert.crt), "--key", str(cert.key),
            "-V", {4: "mqttv311", 5: "mqttv5"}[version], "-i", client_id,
            "-t", "c33/hello", "-m", "hello", "-q", "1"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=WAIT)
    out = r.stdout + r.stderr
    if r.returncode == 0:
        return True, out
    # v3.1.1: CONNACK 5; v5: 0x87 (mosquitto_pub prints both as "not authorised").
    assert "not authori" in out.lower(), out
    return False, out


def tls_client(server, cert, version=4):
    """A raw MQTT client over TLS presenting `cert`."""
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "server-ca.pem"))
    ctx.load_cert_chain(str(cert.crt), str(cert.key))
    c = m.Client("127.0.0.1", server.mqtts_port, version)
    c.sock = ctx.wrap_socket(c.sock, server_hostname="127.0.0.1")
    server.clients.append(c)
    return c


def assert_revoked(server, cert, version, client_id=""):
    """CONNACK "not authorized" (3.1.1: 5, 5: 0x87), in MQTT 5 with the reason."""
    c = tls_client(server, cert, version)
    ack = c.connect(client_id)
    assert ack.reason == (m.RC_NOT_AUTHORIZED if version == 5 else 0x05), ack
    if version == 5:
        reason = ack.props.get(m.REASON_STRING) or ""
        assert reason.startswith(EVENT + ": certificate revoked"), ack
    c.expect_closed()


def wait_for_log(server, text, timeout=WAIT):
    poll(lambda: text in server.log(), timeout, what="%r in the log" % text)


def test_custom_ca_path_revocation_and_reload(ca, crl_file, make_server, version):
    a, b = ca.leaf("sensor-a"), ca.leaf("sensor-b")
    ca.revoke(a)
    ca.publish_crl(crl_file)
    server = make_server(crl_file)
    api = admin_api(server)
    hub_id = custom_ca_hub(api, ca)
    api.new_device(hub_id, name="sensor-a", allowInsecure=False)
    # Several connections allowed: a new one with b's certificate never takes over the old.
    dev_b = api.new_device(hub_id, name="sensor-b", allowInsecure=False,
                           allowMultipleConnections=True)
    events = EventListener(server, insecure_device(api, hub_id)["id"])

    accepted, out = mosquitto_pub(server, a, version, unique("c33-a"))
    assert not accepted, out
    _, event = events.wait_event(msg_is(EVENT))
    assert event["severity"] == "error", event
    assert_revoked(server, a, version)
    events.wait_event(msg_is(EVENT))
    accepted, out = mosquitto_pub(server, b, version, unique("c33-b"))
    assert accepted, out

    # b connected, then revoked too: new connections are refused, the open one stays.
    old = tls_client(server, b, version)
    assert old.connect(unique("c33-old")).reason == 0
    old.subscribe("c33/hello", 1)
    ca.revoke(b)
    ca.publish_crl(crl_file)
    server.proc.send_signal(signal.SIGHUP)
    poll(lambda: not mosquitto_pub(server, b, version, unique("c33-b"))[0],
         what="b refused after the reload")
    events.wait_event(msg_is(EVENT))
    old.publish_acked("c33/hello", b"still here", qos=1)
    old.ack(old.expect_publish("c33/hello", b"still here"))
    assert poll(lambda: api.call("getDevice", deviceId=dev_b["id"])["isConnected"])
    old.disconnect()
    events.close()


def test_fingerprint_path_revocation(ca, crl_file, make_server):
    """A device's custom certificate, on a hub whose CA is iothub's own: the customer's CRL
    refuses it whether the client sends the CA certificate along or not."""
    own, kept = ca.leaf("own"), ca.leaf("kept")
    ca.revoke(own)
    ca.publish_crl(crl_file)
    server = make_server(crl_file)
    api = admin_api(server)
    hub_id = api.new_hub(name=unique("c33-fp"))["id"]
    dev = api.new_device(hub_id, name=unique("c33-own"), allowInsecure=False)
    api.call("setDeviceCertificate", deviceId=dev["id"], certificatePem=own.pem())
    dev2 = api.new_device(hub_id, name=unique("c33-kept"), allowInsecure=False)
    api.call("setDeviceCertificate", deviceId=dev2["id"], certificatePem=kept.pem())
    events = EventListener(server, insecure_device(api, hub_id)["id"])

    accepted, out = mosquitto_pub(server, own, 4, dev["id"])
    assert not accepted, out
    _, event = events.wait_event(msg_is(EVENT))
    assert event["object-id"] == dev["id"], event
    assert_revoked(server, own, 5, dev["id"])
    events.wait_event(msg_is(EVENT, dev["id"]))
    chain = Cert(ca.path / "own-chain.pem", own.key)
    chain.crt.write_text(own.pem() + ca.cert.pem())
    accepted, out = mosquitto_pub(server, chain, 5, dev["id"])
    assert not accepted, out
    events.wait_event(msg_is(EVENT, dev["id"]))
    accepted, out = mosquitto_pub(server, kept, 4, dev2["id"])
    assert accepted, out
    events.close()


def test_a_bad_crl_file_on_reload_keeps_the_running_crls(ca, crl_file, make_server):
    a, b = ca.leaf("sensor-a"), ca.leaf("sensor-b")
    ca.revoke(a)
    ca.publish_crl(crl_file)
    server = make_server(crl_file)
    api = admin_api(server)
    hub_id = custom_ca_hub(api, ca)
    api.new_device(hub_id, name="sensor-a", allowInsecure=False)
    api.new_device(hub_id, name="sensor-b", allowInsecure=False)

    crl_file.write_text("not a CRL\n")
    server.proc.send_signal(signal.SIGHUP)
    wait_for_log(server, "tls_crl_file: reload failed, keeping the running CRLs")
    assert str(crl_file) in server.log(), server.log()
    assert not mosquitto_pub(server, a, 4, unique("c33-a"))[0]
    assert mosquitto_pub(server, b, 4, unique("c33-b"))[0]
    server.check_running()


def test_an_expired_crl_still_revokes(ca, crl_file, make_server):
    a = ca.leaf("sensor-a")
    ca.revoke(a)
    # openssl 3's -crl_lastupdate / -crl_nextupdate: a CRL whose next update is long past.
    ca.publish_crl(crl_file, "-crl_lastupdate", "20200101000000Z",
                   "-crl_nextupdate", "20200201000000Z")
    server = make_server(crl_file)
    wait_for_log(server, "past its next update")
    api = admin_api(server)
    hub_id = custom_ca_hub(api, ca)
    api.new_device(hub_id, name="sensor-a", allowInsecure=False)
    assert not mosquitto_pub(server, a, 4, unique("c33-a"))[0]


def test_a_bad_crl_file_stops_the_start(tmp_path, ca):
    def start_with(path):
        return run_iothub(["serve", "--mqtt", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
                           "--tls-crl-file", str(path)])

    garbage = tmp_path / "garbage.crl"
    garbage.write_text("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
    empty = tmp_path / "empty.crl"
    empty.write_text("")
    only_a_certificate = tmp_path / "certificate.crl"
    only_a_certificate.write_text(ca.cert.pem())
    for path, why in ((garbage, "does not parse"), (empty, "no CRL"),
                      (only_a_certificate, "no CRL"), (tmp_path / "missing.crl", "cannot read")):
        r = start_with(path)
        assert r.returncode != 0, r
        assert str(path) in r.stderr and "tls_crl_file" in r.stderr, r.stderr
        assert why in r.stderr, r.stderr
