"""The hubs' PKI through the management API, driven by the Scaleway SDK: the certificate of a
new device, the hub's CA, renewal, custom device certificates, a custom hub CA with its proof of
possession, and the errors of each; the server CA (`GET …/server-ca`, `iothub ca server`); and,
end to end over mqtts, that what the API issues or accepts is what authenticates a device.

Certificates the customer would bring are made by the test with the openssl command; the ones
iothub issues are checked with it too (an independent reader of what iothub wrote)."""

import json
import shutil
import ssl
import subprocess
import uuid

import pytest

import mqttraw as m
from iotapi import (Api, api, create_api_key, iothub_only, poll, run_cli, server,  # noqa: F401
                    server_still_running, unique)

OPENSSL = shutil.which("openssl")

CA_CONFIG = """
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
"""


def openssl(*args, cwd=None, stdin=None):
    if OPENSSL is None:
        pytest.skip("the openssl command is not installed")
    r = subprocess.run([OPENSSL] + [str(a) for a in args], cwd=cwd, capture_output=True,
                       text=True, timeout=60, input=stdin)
    assert r.returncode == 0, "openssl %s failed:\n%s" % (" ".join(map(str, args)), r.stderr)
    return r.stdout


class Pki:
    """Certificates made with openssl in one directory."""

    def __init__(self, path):
        self.path = path
        (path / "openssl.cnf").write_text(CA_CONFIG)

    def file(self, name, text=None):
        p = self.path / name
        if text is not None:
            p.write_text(text)
        return p

    def ca(self, name):
        """A self-signed CA: returns its PEM (key in <name>.key)."""
        openssl("req", "-x509", "-config", self.path / "openssl.cnf", "-extensions", "v3_ca",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.path / (name + ".key"), "-out", self.path / (name + ".pem"),
                "-subj", "/CN=" + name, "-days", "30")
        return self.file(name + ".pem").read_text()

    def leaf(self, ca_name, cn, name=None):
        """A client certificate with common name `cn`, signed by CA `ca_name`."""
        name = name or unique("leaf")
        key, csr, crt = (self.path / (name + ext) for ext in (".key", ".csr", ".pem"))
        openssl("req", "-new", "-config", self.path / "openssl.cnf", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                "-out", csr, "-subj", "/CN=" + cn)
        openssl("x509", "-req", "-in", csr, "-CA", self.path / (ca_name + ".pem"),
                "-CAkey", self.path / (ca_name + ".key"), "-set_serial",
                str(uuid.uuid4().int >> 68), "-days", "5", "-extfile", self.path / "openssl.cnf",
                "-extensions", "v3_client", "-out", crt)
        return crt.read_text()

    def self_signed(self, cn):
        name = unique("self")
        openssl("req", "-x509", "-config", self.path / "openssl.cnf", "-extensions", "v3_client",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.path / (name + ".key"), "-out", self.path / (name + ".pem"),
                "-subj", "/CN=" + cn, "-days", "5")
        return self.file(name + ".pem").read_text()

    def text(self, pem):
        """`openssl x509 -text` of a certificate."""
        return openssl("x509", "-noout", "-text", "-nameopt", "RFC2253", stdin=pem)

    def fingerprint(self, pem):
        return openssl("x509", "-noout", "-fingerprint", "-sha256", stdin=pem).strip()

    def verifies(self, ca_pem, crt_pem, purpose="sslclient"):
        ca = self.file(unique("trust") + ".pem", ca_pem)
        crt = self.file(unique("crt") + ".pem", crt_pem)
        r = subprocess.run([OPENSSL, "verify", "-purpose", purpose, "-CAfile", str(ca), str(crt)],
                           capture_output=True, text=True, timeout=30)
        return r.returncode == 0


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


@pytest.fixture
def hub(api):
    return api.new_hub(name=unique("c31-hub"))


def test_a_new_device_gets_a_certificate_from_its_hub_ca(api, hub, pki):
    name = unique("c31-thermo")
    created = api.call("createDevice", hubId=hub["id"], name=name)
    cert = created["certificate"]
    assert set(cert) == {"crt", "key"}, cert
    assert cert["key"].startswith("-----BEGIN RSA PRIVATE KEY-----"), cert["key"][:40]
    ca = api.call("getHubCA", hubId=hub["id"])["caCertPem"]
    assert pki.verifies(ca, cert["crt"]), "openssl does not verify the device certificate"
    text = pki.text(cert["crt"])
    assert "CN=" + name in text, text
    assert "TLS Web Client Authentication" in text, text
    assert "CA:FALSE" in text and "rsaEncryption" in text and "(2048 bit)" in text, text
    # Its key is the certificate's.
    key = pki.file("device.key", cert["key"])
    pub_from_key = openssl("pkey", "-in", key, "-pubout")
    pub_from_crt = openssl("x509", "-noout", "-pubkey", stdin=cert["crt"])
    assert pub_from_key == pub_from_crt
    # Ten years.
    dates = openssl("x509", "-noout", "-startdate", "-enddate", stdin=cert["crt"])
    start = int(dates.split("notBefore=")[1].split("\n")[0].split()[3])
    end = int(dates.split("notAfter=")[1].split("\n")[0].split()[3])
    assert end - start == 10, dates

    got = api.call("getDeviceCertificate", deviceId=created["device"]["id"])
    assert got["certificatePem"] == cert["crt"]
    assert got["device"]["id"] == created["device"]["id"]
    assert got["device"]["hasCustomCertificate"] is False


def test_the_hub_ca(api, server, hub, pki):
    ca = api.call("getHubCA", hubId=hub["id"])["caCertPem"]
    text = pki.text(ca)
    assert "CA:TRUE" in text, text
    assert hub["id"] in text, text
    assert "P-384" in text or "secp384r1" in text, text
    other = api.new_hub(name=unique("c31-other"))
    assert api.call("getHubCA", hubId=other["id"])["caCertPem"] != ca
    err = api.error("getHubCA", hubId=str(uuid.uuid4()))
    assert err.name == "ResourceNotFoundError" and err.status == 404, err
    # Another project sees nothing of it.
    stranger = api.as_key(create_api_key(server.data_dir))
    err = stranger.error("getHubCA", hubId=hub["id"])
    assert err.name == "ResourceNotFoundError", err


def test_renewal(api, hub, pki):
    created = api.call("createDevice", hubId=hub["id"], name=unique("c31-renew"))
    device_id = created["device"]["id"]
    renewed = api.call("renewDeviceCertificate", deviceId=device_id)
    assert renewed["device"]["id"] == device_id
    crt = renewed["certificate"]["crt"]
    assert crt != created["certificate"]["crt"]
    assert renewed["certificate"]["key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    ca = api.call("getHubCA", hubId=hub["id"])["caCertPem"]
    assert pki.verifies(ca, crt)
    assert api.call("getDeviceCertificate", deviceId=device_id)["certificatePem"] == crt
    err = api.error("renewDeviceCertificate", deviceId=str(uuid.uuid4()))
    assert err.name == "ResourceNotFoundError", err


def test_custom_device_certificate(api, hub, pki):
    a = api.new_device(hub["id"], name=unique("c31-a"))
    other_hub = api.new_hub(name=unique("c31-b-hub"))
    b = api.new_device(other_hub["id"], name=unique("c31-b"))
    own = pki.self_signed("anything")
    got = api.call("setDeviceCertificate", deviceId=a["id"], certificatePem=own)
    assert got["device"]["hasCustomCertificate"] is True
    assert pki.fingerprint(got["certificatePem"]) == pki.fingerprint(own)
    assert api.call("getDevice", deviceId=a["id"])["hasCustomCertificate"] is True
    assert pki.fingerprint(
        api.call("getDeviceCertificate", deviceId=a["id"])["certificatePem"]) == \
        pki.fingerprint(own)
    # Unique across hubs.
    err = api.error("setDeviceCertificate", deviceId=b["id"], certificatePem=own)
    assert err.name == "AlreadyExistsError" and err.status == 409, err
    # Not a certificate.
    err = api.error("setDeviceCertificate", deviceId=b["id"], certificatePem="junk")
    assert err.name == "InvalidArgumentsError" and err.names_argument("certificate_pem"), err
    err = api.error("setDeviceCertificate", deviceId=str(uuid.uuid4()), certificatePem=own)
    assert err.name == "ResourceNotFoundError", err
    # Renewal replaces it with an issued one again.
    renewed = api.call("renewDeviceCertificate", deviceId=a["id"])
    assert renewed["device"]["hasCustomCertificate"] is False
    assert api.call("setDeviceCertificate", deviceId=b["id"], certificatePem=own)


def test_custom_hub_ca(api, hub, pki):
    hub_id = hub["id"]
    issued = api.call("createDevice", hubId=hub_id, name=unique("c31-issued"))
    ca = pki.ca("customer")
    challenge = pki.leaf("customer", hub_id)

    # Only while the hub is disabled.
    err = api.error("setHubCA", hubId=hub_id, caCertPem=ca, challengeCertPem=challenge)
    assert err.name == "PreconditionFailedError" and err.status == 412, err
    api.disable_hub(hub_id)
    # The proof of possession: signed by that CA, common name = the hub id.
    err = api.error("setHubCA", hubId=hub_id, caCertPem=ca,
                    challengeCertPem=pki.leaf("customer", "not-the-hub"))
    assert err.name == "InvalidArgumentsError" and err.names_argument("challenge_cert_pem"), err
    pki.ca("intruder")
    err = api.error("setHubCA", hubId=hub_id, caCertPem=ca,
                    challengeCertPem=pki.leaf("intruder", hub_id))
    assert err.name == "InvalidArgumentsError" and err.names_argument("challenge_cert_pem"), err
    err = api.error("setHubCA", hubId=hub_id, caCertPem=challenge, challengeCertPem=challenge)
    assert err.name == "InvalidArgumentsError" and err.names_argument("ca_cert_pem"), err
    err = api.error("setHubCA", hubId=hub_id, caCertPem="junk", challengeCertPem=challenge)
    assert err.name == "InvalidArgumentsError" and err.names_argument("ca_cert_pem"), err
    err = api.error("setHubCA", hubId=str(uuid.uuid4()), caCertPem=ca, challengeCertPem=challenge)
    assert err.name == "ResourceNotFoundError", err
    assert api.call("getHub", hubId=hub_id)["hasCustomCa"] is False

    updated = api.call("setHubCA", hubId=hub_id, caCertPem=ca, challengeCertPem=challenge)
    assert updated["id"] == hub_id and updated["hasCustomCa"] is True, updated
    assert pki.fingerprint(api.call("getHubCA", hubId=hub_id)["caCertPem"]) == \
        pki.fingerprint(ca)

    # Irreversible: issued certificates deleted, no renewal, no certificate at creation.
    err = api.error("getDeviceCertificate", deviceId=issued["device"]["id"])
    assert err.name == "ResourceNotFoundError", err
    err = api.error("renewDeviceCertificate", deviceId=issued["device"]["id"])
    assert err.name == "PreconditionFailedError", err
    created = api.call("createDevice", hubId=hub_id, name=unique("c31-after"))
    assert not created.get("certificate"), created
    # Custom device certificates still work, and auto-provisioning can be enabled now.
    own = pki.leaf("customer", "own")
    assert api.call("setDeviceCertificate", deviceId=created["device"]["id"], certificatePem=own)
    h = api.call("updateHub", hubId=hub_id, enableDeviceAutoProvisioning=True)
    assert h["enableDeviceAutoProvisioning"] is True
    assert api.enable_hub(hub_id)["hasCustomCa"] is True


def test_auto_provisioning_needs_a_custom_ca(api, hub):
    err = api.error("updateHub", hubId=hub["id"], enableDeviceAutoProvisioning=True)
    assert err.name == "PreconditionFailedError", err


def test_the_server_ca(api, server):
    printed = run_cli("ca", "server", "--data-dir", server.data_dir)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("-----BEGIN CERTIFICATE-----"), printed.stdout
    again = run_cli("ca", "server", "--data-dir", server.data_dir)
    assert again.stdout == printed.stdout
    # Public: no key needed. 404 while the server has none (its TLS certificate came from
    # its configuration).
    r = api.http("GET", "server-ca", token=None)
    assert r.status in (200, 404), r
    if r.status == 200:
        assert r.json == {"ca_cert_pem": printed.stdout}, r.json
    else:
        assert r.json["type"] == "not_found", r.json


def test_the_cli_shows_the_key_once_and_reads_certificates(api, hub, server, pki):
    base = ["--api-url", server.api_url, "--data-dir", server.data_dir]
    r = run_cli("device", "create", "--hub", hub["id"], "--name", unique("c31-cli"), *base,
                "-o", "json", timeout=60)
    assert r.returncode == 0, r.stderr
    created = json.loads(r.stdout)
    assert created["certificate"]["key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    device_id = created["device"]["id"]
    r = run_cli("device", "get-certificate", device_id, *base, "-o", "table")
    assert r.returncode == 0 and r.stdout == created["certificate"]["crt"], (r.stdout, r.stderr)
    r = run_cli("hub", "get-ca", hub["id"], *base, "-o", "table")
    assert r.returncode == 0, r.stderr
    assert r.stdout == api.call("getHubCA", hubId=hub["id"])["caCertPem"]
    own = pki.file("own.pem", pki.self_signed("cli"))
    r = run_cli("device", "set-certificate", device_id, "--cert", own, *base, "-o", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["device"]["has_custom_certificate"] is True


# --- end to end over mqtts (the TLS listener's own tests: test_30_tls.py) ---------------------

def mqtts_connect(server, pki, client_id, crt=None, key=None, version=4):
    """CONNECT over mqtts with client certificate `crt` (PEM, leaf first) and `key`; returns
    (client, CONNACK)."""
    if not getattr(server, "mqtts_port", None):
        pytest.skip("the server has no mqtts listener")
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "server-ca.pem"))
    if crt is not None:
        name = unique("chain")
        ctx.load_cert_chain(str(pki.file(name + ".pem", crt)), str(pki.file(name + ".key", key)))
    c = m.Client("127.0.0.1", server.mqtts_port, version)
    c.sock = ctx.wrap_socket(c.sock, server_hostname="127.0.0.1")
    server.clients.append(c)
    return c, c.connect(client_id)


def test_issued_certificates_authenticate_over_mqtts(api, server, hub, pki):
    created = api.call("createDevice", hubId=hub["id"], name=unique("c31-tls"))
    device_id = created["device"]["id"]
    assert created["device"]["allowInsecure"] is False
    cert = created["certificate"]
    c, ack = mqtts_connect(server, pki, device_id, cert["crt"], cert["key"])
    assert ack.reason == 0, ack
    assert poll(lambda: api.call("getDevice", deviceId=device_id)["isConnected"])
    # Without the certificate: insecure, refused.
    _, ack = mqtts_connect(server, pki, device_id)
    assert ack.reason == 0x05, ack
    # Renewal disconnects it; the old certificate is refused, the new one accepted.
    renewed = api.call("renewDeviceCertificate", deviceId=device_id)["certificate"]
    c.expect_closed()
    _, ack = mqtts_connect(server, pki, device_id, cert["crt"], cert["key"])
    assert ack.reason == 0x05, ack
    _, ack = mqtts_connect(server, pki, "any-client-id", renewed["crt"], renewed["key"], 5)
    assert ack.reason == 0, ack


def test_custom_ca_and_auto_provisioning_over_mqtts(api, server, hub, pki):
    hub_id = hub["id"]
    ca = pki.ca("vendor-root")
    api.disable_hub(hub_id)
    api.call("setHubCA", hubId=hub_id, caCertPem=ca, challengeCertPem=pki.leaf("vendor-root", hub_id))
    api.call("updateHub", hubId=hub_id, enableDeviceAutoProvisioning=True)
    api.enable_hub(hub_id)
    name = unique("c31-sn")
    leaf = pki.leaf("vendor-root", name, name="provisioned")
    key = (pki.path / "provisioned.key").read_text()
    _, ack = mqtts_connect(server, pki, "", leaf, key, 5)
    assert ack.reason == 0, ack
    devices = api.call("listDevices", hubId=hub_id, name=name)["devices"]
    assert [d["name"] for d in devices] == [name], devices
    assert devices[0]["allowInsecure"] is False
    assert "127.0.0.1" in devices[0]["description"], devices[0]
