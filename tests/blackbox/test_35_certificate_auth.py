"""Certificate authentication end to end over mqtts, each refusal with its hub event: the
certificates iothub issues, a certificate presented with another device's client id, custom hub
CAs (a device named by the common name, intermediates and the full chain, dates, a wrong CA, an
empty or unknown common name, auto-provisioning), custom device certificates replaced, disabled
devices and hubs, and renewal. iothub only.

A refusal is CONNACK "not authorized" (3.1.1: 0x05; 5: 0x87 with a reason string that starts with
the event's message) and the hub event of PRODUCT.md's catalogue, on
`$SCW/events/error/device/<object-id>`. The object is the device the certificate identifies; when
the certificate ties the connection to a hub (its CA is the hub's) but to none of its devices, it
is `unknown` (except for a renewed certificate of the hub's own CA: its subject still names its
device, and the event is about it); when the certificate ties it to no hub at all (a missing intermediate, a foreign CA,
a custom certificate no device holds any more), the only link is the device the client id names,
so these are tried with the device's id as the client id.

Certificates are made by the test with the openssl command (test_31's `Pki`, plus `openssl ca`
for leaves with chosen validity dates, which `openssl x509 -req` of OpenSSL 3.0 cannot set)."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

import mqttraw as m
from brokers import expect_error_close
from iotapi import (REFUSED, EventListener, api, insecure_device, iothub_only, poll,  # noqa: F401
                    server, server_still_running, unique)
from test_31_certificates_api import CA_CONFIG, Pki, mqtts_connect, openssl

CA_SECTIONS = """
[ca]
default_ca = ca_default
[ca_default]
dir = .
database = ./index.txt
new_certs_dir = ./newcerts
serial = ./serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
[policy_any]
commonName = optional
organizationName = optional
"""


class DatedPki(Pki):
    """test_31's Pki, plus CAs with a chosen subject, intermediates and client certificates with
    any subject and validity dates (signed with `openssl ca`, which takes -startdate/-enddate)."""

    def __init__(self, path):
        super().__init__(path)
        (path / "ca.cnf").write_text(CA_CONFIG + CA_SECTIONS)
        (path / "newcerts").mkdir()
        (path / "index.txt").write_text("")
        (path / "serial").write_text("%016x\n" % (uuid.uuid4().int >> 65))

    def ca_named(self, name, subject):
        """A self-signed CA whose subject is `subject` (files <name>.pem/.key)."""
        openssl("req", "-x509", "-config", self.path / "openssl.cnf", "-extensions", "v3_ca",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.path / (name + ".key"), "-out", self.path / (name + ".pem"),
                "-subj", subject, "-days", "30")
        return self.file(name + ".pem").read_text()

    def _sign(self, ca_name, subject, extensions, start=None, end=None):
        name = unique("crt")
        key, csr, crt = (self.path / (name + ext) for ext in (".key", ".csr", ".pem"))
        openssl("req", "-new", "-config", self.path / "openssl.cnf", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                "-out", csr, "-subj", subject)
        stamp = "%Y%m%d%H%M%SZ"
        dates = ["-days", "5"] if start is None else \
            ["-startdate", start.strftime(stamp), "-enddate", end.strftime(stamp)]
        openssl("ca", "-batch", "-notext", "-config", self.path / "ca.cnf",
                "-cert", self.path / (ca_name + ".pem"), "-keyfile", self.path / (ca_name + ".key"),
                "-extensions", extensions, "-in", csr, "-out", crt, *dates, cwd=self.path)
        return name, crt.read_text(), key.read_text()

    def intermediate(self, ca_name, name):
        """A CA `name` signed by CA `ca_name` (files <name>.pem/.key)."""
        _, crt, key = self._sign(ca_name, "/CN=" + name, "v3_ca")
        self.file(name + ".pem", crt)
        self.file(name + ".key", key)
        return crt

    def client(self, ca_name, cn=None, subject=None, start=None, end=None):
        """(certificate PEM, key PEM) of a client certificate signed by CA `ca_name`, with common
        name `cn` (or the whole `subject`), valid from `start` to `end` (default: now, 5 days)."""
        _, crt, key = self._sign(ca_name, subject or "/CN=" + cn, "v3_client", start, end)
        return crt, key

    def self_signed_pair(self, cn):
        """(certificate PEM, key PEM) of a self-signed client certificate."""
        name = unique("self")
        openssl("req", "-x509", "-config", self.path / "openssl.cnf", "-extensions", "v3_client",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.path / (name + ".key"), "-out", self.path / (name + ".pem"),
                "-subj", "/CN=" + cn, "-days", "5")
        return self.file(name + ".pem").read_text(), self.file(name + ".key").read_text()


@pytest.fixture
def pki(tmp_path):
    return DatedPki(tmp_path)


@pytest.fixture
def hub(api):
    return api.new_hub(name=unique("c35-hub"))


def listen(server, api, hub_id, extra=()):
    """A device of the hub (insecure, over plain MQTT) subscribed to its events."""
    watcher = insecure_device(api, hub_id, name=unique("c35-watcher"))
    return EventListener(server, watcher["id"], extra=extra)


def expect_event(events, msg, object_id, severity="error"):
    """The next event with message `msg` is about device `object_id`, on its topic."""
    topic, event = events.wait_event(lambda t, e: e.get("msg") == msg)
    assert topic == "$SCW/events/%s/device/%s" % (severity, object_id), (topic, event)
    assert event["severity"] == severity, event
    assert event["object-type"] == "device", event
    assert event["object-id"] == object_id, event
    return event


def connected(server, pki, crt, key, client_id="", version=4):
    c, ack = mqtts_connect(server, pki, client_id, crt, key, version)
    assert ack.reason == 0, "refused: %r" % (ack,)
    return c, ack


def refused(server, pki, crt, key, msg, client_id="", events=None, object_id=None,
            detail=None):
    """The certificate is refused, on 3.1.1 and on 5, with CONNACK "not authorized"; with
    `events`, each refusal raises the event `msg` about `object_id`."""
    for version in (4, 5):
        c, ack = mqtts_connect(server, pki, client_id, crt, key, version)
        assert ack.reason == REFUSED[version], "v%d: expected CONNACK 0x%02x, got %r" % (
            version, REFUSED[version], ack)
        if version == 5:
            reason = ack.props.get(m.REASON_STRING)
            assert reason and reason.startswith(msg), ack
            if detail:
                assert detail in reason, ack
        c.expect_closed()
        if events is not None:
            expect_event(events, msg, object_id)


def is_connected(api, device_id):
    return api.call("getDevice", deviceId=device_id)["isConnected"]


def issued_device(api, hub_id, **kw):
    created = api.call("createDevice", hubId=hub_id, name=unique("c35-dev"), **kw)
    assert created["device"]["allowInsecure"] is False
    return created["device"], created["certificate"]["crt"], created["certificate"]["key"]


# --- certificates the hub issued ------------------------------------------------------------------

def test_an_issued_certificate_is_its_device_whatever_the_client_id(api, server, hub, pki,
                                                                    version):
    dev, crt, key = issued_device(api, hub["id"])
    events = listen(server, api, hub["id"])
    for client_id in ("", "c35-anything", str(uuid.uuid4()), dev["id"]):
        c, ack = connected(server, pki, crt, key, client_id, version)
        if version == 5 and client_id == "":
            # MQTT 5 section 3.2.2.3.7: an empty client id gets an Assigned Client Identifier.
            assert ack.props.get(m.ASSIGNED_CLIENT_IDENTIFIER) == dev["id"], ack
        assert poll(lambda: is_connected(api, dev["id"]), what="the device to show connected")
        event = expect_event(events, "device connected", dev["id"], "info")
        # The session is the device's, whatever the client called itself.
        assert event["client-id"] == dev["id"], (client_id, event)
        c.ping()
        c.disconnect()
        expect_event(events, "device disconnected", dev["id"], "info")
    # Without a certificate over mqtts, the device (not insecure) is refused.
    c, ack = mqtts_connect(server, pki, dev["id"], version=version)
    assert ack.reason == REFUSED[version], ack
    c.expect_closed()
    expect_event(events, "mutual TLS authentication is required", dev["id"])
    events.close()


def test_a_certificate_with_another_devices_client_id_acts_as_its_own_device(api, server, hub,
                                                                             pki, version):
    a, a_crt, a_key = issued_device(api, hub["id"], messageFilters={
        "publish": {"policy": "accept", "topics": ["c35/a/#"]},
        "subscribe": {"policy": "reject", "topics": []}})
    b, b_crt, b_key = issued_device(api, hub["id"], messageFilters={
        "publish": {"policy": "accept", "topics": ["c35/b/#"]},
        "subscribe": {"policy": "reject", "topics": []}})
    events = listen(server, api, hub["id"], extra=("c35/#",))

    # A's certificate, B's id as client id: the connection is A's.
    x, _ = connected(server, pki, a_crt, a_key, b["id"], version)
    event = expect_event(events, "device connected", a["id"], "info")
    assert event["client-id"] == a["id"], event
    assert poll(lambda: is_connected(api, a["id"]), what="A to show connected")
    assert is_connected(api, b["id"]) is False
    assert not [p for p in events.seen if b["id"].encode() in p.payload + p.topic.encode()], \
        events.seen

    # B connects with its own certificate: it takes over nothing of A's connection, nor A of B's.
    y, _ = connected(server, pki, b_crt, b_key, b["id"], version)
    expect_event(events, "device connected", b["id"], "info")
    x.ping()
    y.ping()

    # Publishes are checked against A's filters: B's topic is refused, A's allowed.
    refused_ack = x.publish_acked("c35/b/from-x", b"as b?", qos=1)
    if version == 5:
        assert refused_ack.reason == m.RC_NOT_AUTHORIZED, refused_ack
    ok_ack = x.publish_acked("c35/a/from-x", m.SENTINEL, qos=1)
    assert ok_ack.reason == 0, ok_ack
    before = events.client.collect_until("c35/a/from-x")
    assert not [p for p in before if p.topic == "c35/b/from-x"], before
    unauthorized = [p for p in before if p.topic.startswith("$SCW/events/")
                    and b"unauthorized topic c35/b/from-x" in p.payload]
    assert [p.topic for p in unauthorized] == ["$SCW/events/error/device/" + a["id"]], before
    # B's own filter still applies to B.
    y.publish_acked("c35/a/from-y", b"not b's", qos=1)
    y.publish_acked("c35/b/from-y", m.SENTINEL, qos=1)
    before = events.client.collect_until("c35/b/from-y")
    assert not [p for p in before if p.topic == "c35/a/from-y"], before
    for c in (x, y):
        c.disconnect()
    events.close()


def test_with_multiple_connections_the_client_id_of_another_device_is_refused(api, server, pki):
    hub = api.new_hub(name=unique("c35-dedicated"), productPlan="plan_dedicated")
    a, a_crt, a_key = issued_device(api, hub["id"], allowMultipleConnections=True)
    b, _, _ = issued_device(api, hub["id"])
    events = listen(server, api, hub["id"])
    # A keeps the client id it chose, so B's id would be B's session: refused.
    for version in (4, 5):
        c, ack = mqtts_connect(server, pki, b["id"], a_crt, a_key, version)
        assert ack.reason == REFUSED[version], ack
        c.expect_closed()
    assert is_connected(api, b["id"]) is False
    # Its own client id is fine, and the connection is A's.
    c, _ = connected(server, pki, a_crt, a_key, "c35-own-client", 5)
    event = expect_event(events, "device connected", a["id"], "info")
    assert event["client-id"] == "c35-own-client", event
    assert is_connected(api, b["id"]) is False
    # No event up to A's connection names B: nothing acted as B.
    assert not [p for p in events.seen if b["id"].encode() in p.payload + p.topic.encode()], \
        events.seen
    c.disconnect()
    events.close()


# --- a custom hub CA ------------------------------------------------------------------------------

@pytest.fixture
def custom(api, hub, pki):
    """The hub with a custom CA "root" (set while disabled, with its challenge) and a device."""
    hub_id = hub["id"]
    device = api.new_device(hub_id, name=unique("c35-sensor"))
    pki.ca("root")
    challenge, _ = pki.client("root", hub_id)
    api.disable_hub(hub_id)
    api.call("setHubCA", hubId=hub_id, caCertPem=pki.file("root.pem").read_text(),
             challengeCertPem=challenge)
    api.enable_hub(hub_id)
    return device


def test_custom_ca_identifies_the_device_by_common_name(api, server, hub, pki, custom):
    events = listen(server, api, hub["id"])
    crt, key = pki.client("root", custom["name"])
    for version in (4, 5):
        c, _ = connected(server, pki, crt, key, "c35-anything", version)
        event = expect_event(events, "device connected", custom["id"], "info")
        assert event["client-id"] == custom["id"], event
        assert poll(lambda: is_connected(api, custom["id"]), what="the device to show connected")
        c.disconnect()
        expect_event(events, "device disconnected", custom["id"], "info")
    # Disabled, the device it names is refused.
    api.call("disableDevice", deviceId=custom["id"])
    refused(server, pki, crt, key, "device is not enabled", client_id="c35-anything",
            events=events, object_id=custom["id"])
    events.close()


def test_custom_ca_intermediate_needs_the_full_chain(api, server, hub, pki, custom):
    events = listen(server, api, hub["id"])
    inter = pki.intermediate("root", "vendor-intermediate")
    leaf, key = pki.client("vendor-intermediate", custom["name"])
    c, _ = connected(server, pki, leaf + inter, key, "", 5)
    expect_event(events, "device connected", custom["id"], "info")
    # The leaf alone chains to nothing the hub knows: refused, and a refused attempt with the
    # device's client id takes nothing over.
    refused(server, pki, leaf, key, "invalid device certificate", client_id=custom["id"],
            events=events, object_id=custom["id"])
    refused(server, pki, leaf, key, "invalid device certificate", client_id="c35-other")
    c.ping()
    c.disconnect()
    expect_event(events, "device disconnected", custom["id"], "info")
    # The full chain on 3.1.1 too.
    c, _ = connected(server, pki, leaf + inter, key, "c35-anything", 4)
    expect_event(events, "device connected", custom["id"], "info")
    c.disconnect()
    events.close()


def test_custom_ca_refuses_a_leaf_out_of_its_dates(api, server, hub, pki, custom):
    events = listen(server, api, hub["id"])
    now = datetime.now(timezone.utc)
    expired = pki.client("root", custom["name"], start=now - timedelta(days=10),
                         end=now - timedelta(days=1))
    refused(server, pki, *expired, "invalid device certificate", client_id="c35-expired",
            events=events, object_id="unknown", detail="expired")
    early = pki.client("root", custom["name"], start=now + timedelta(days=1),
                       end=now + timedelta(days=10))
    refused(server, pki, *early, "invalid device certificate", client_id="c35-early",
            events=events, object_id="unknown", detail="not yet valid")
    assert is_connected(api, custom["id"]) is False
    events.close()


def test_custom_ca_refuses_a_leaf_of_another_ca(api, server, hub, pki, custom):
    events = listen(server, api, hub["id"])
    # A CA no hub knows: only the client id links the attempt to the device.
    pki.ca("intruder")
    crt, key = pki.client("intruder", custom["name"])
    refused(server, pki, crt, key, "invalid device certificate", client_id=custom["id"],
            events=events, object_id=custom["id"])
    # A CA with the same name as the hub's, another key: the hub's CA does not verify it.
    pki.ca_named("impostor", "/CN=root")
    crt, key = pki.client("impostor", custom["name"])
    refused(server, pki, crt, key, "invalid device certificate", client_id="c35-impostor",
            events=events, object_id="unknown")
    assert is_connected(api, custom["id"]) is False
    events.close()


def test_custom_ca_refuses_an_empty_common_name(api, server, hub, pki, custom):
    events = listen(server, api, hub["id"])
    crt, key = pki.client("root", subject="/O=c35-no-common-name")
    refused(server, pki, crt, key, "certificate common name cannot be empty",
            client_id="c35-nameless", events=events, object_id="unknown")
    events.close()


def test_custom_ca_refuses_an_unknown_name_without_auto_provisioning(api, server, hub, pki,
                                                                      custom):
    events = listen(server, api, hub["id"])
    name = unique("c35-stranger")
    crt, key = pki.client("root", name)
    refused(server, pki, crt, key, "could not identify device", client_id="c35-stranger",
            events=events, object_id="unknown")
    assert api.call("listDevices", hubId=hub["id"], name=name)["devices"] == []
    events.close()


def test_auto_provisioning_event(api, server, hub, pki, custom):
    api.call("updateHub", hubId=hub["id"], enableDeviceAutoProvisioning=True)
    events = listen(server, api, hub["id"])
    name = unique("c35-sn")
    crt, key = pki.client("root", name)
    c, _ = connected(server, pki, crt, key, "", 5)
    source = "%s:%d" % c.sock.getsockname()[:2]
    # Made before the CONNACK: the registry has it now.
    devices = api.call("listDevices", hubId=hub["id"], name=name)["devices"]
    assert len(devices) == 1, devices
    event = expect_event(events, "device was auto-provisioned", devices[0]["id"], "info")
    assert set(event) == {"time", "severity", "object-type", "object-id", "msg", "object-name",
                          "source-address"}, event
    assert event["object-name"] == name, event
    assert event["source-address"] == source, (event, source)
    device = api.call("getDevice", deviceId=event["object-id"])
    assert device["name"] == name and device["hubId"] == hub["id"], device
    assert source in device["description"], device
    connect_event = expect_event(events, "device connected", device["id"], "info")
    assert connect_event["client-id"] == device["id"], connect_event
    c.disconnect()
    expect_event(events, "device disconnected", device["id"], "info")
    # Once: the next connection is the device's, with no second provisioning event.
    mark = len(events.seen)
    c, _ = connected(server, pki, crt, key, "c35-again", 4)
    expect_event(events, "device connected", device["id"], "info")
    assert not [p for p in events.seen[mark:] if b"auto-provisioned" in p.payload], \
        events.seen[mark:]
    assert len(api.call("listDevices", hubId=hub["id"], name=name)["devices"]) == 1
    c.disconnect()
    events.close()


# --- custom device certificates -------------------------------------------------------------------

def test_a_custom_device_certificate_replaced(api, server, hub, pki, version):
    dev = api.new_device(hub["id"], name=unique("c35-own"))
    events = listen(server, api, hub["id"])
    old_crt, old_key = pki.self_signed_pair(unique("c35-own-old"))
    api.call("setDeviceCertificate", deviceId=dev["id"], certificatePem=old_crt)
    c, _ = connected(server, pki, old_crt, old_key, "c35-anything", version)
    expect_event(events, "device connected", dev["id"], "info")
    assert poll(lambda: is_connected(api, dev["id"]), what="the device to show connected")

    new_crt, new_key = pki.self_signed_pair(unique("c35-own-new"))
    api.call("setDeviceCertificate", deviceId=dev["id"], certificatePem=new_crt)
    # The connection made with the old certificate ends.
    expect_error_close(server, c, m.RC_NOT_AUTHORIZED)
    expect_event(events, "device security has changed, requires authentication", dev["id"])
    refused(server, pki, old_crt, old_key, "invalid device certificate", client_id=dev["id"],
            events=events, object_id=dev["id"])
    c, _ = connected(server, pki, new_crt, new_key, "", version)
    expect_event(events, "device connected", dev["id"], "info")
    c.disconnect()
    events.close()


# --- disabled devices and hubs --------------------------------------------------------------------

def test_a_disabled_device_is_refused_with_a_valid_certificate(api, server, hub, pki):
    dev, crt, key = issued_device(api, hub["id"])
    events = listen(server, api, hub["id"])
    api.call("disableDevice", deviceId=dev["id"])
    refused(server, pki, crt, key, "device is not enabled", client_id=dev["id"], events=events,
            object_id=dev["id"])
    refused(server, pki, crt, key, "device is not enabled", client_id="c35-anything",
            events=events, object_id=dev["id"])
    assert is_connected(api, dev["id"]) is False
    api.call("enableDevice", deviceId=dev["id"])
    c, _ = connected(server, pki, crt, key, "", 5)
    expect_event(events, "device connected", dev["id"], "info")
    c.disconnect()
    events.close()


def test_a_disabled_hub_refuses_valid_certificates(api, server, hub, pki):
    dev, crt, key = issued_device(api, hub["id"])
    api.disable_hub(hub["id"])
    # Nobody of the hub can be connected to see its events: the code and reason only.
    refused(server, pki, crt, key, "hub is not ready", client_id="c35-anything")
    assert is_connected(api, dev["id"]) is False
    api.enable_hub(hub["id"])
    c, _ = connected(server, pki, crt, key, "", 4)
    assert poll(lambda: is_connected(api, dev["id"]), what="the device to show connected")
    c.disconnect()


# --- renewal --------------------------------------------------------------------------------------

def test_renewal_disconnects_and_refuses_the_old_certificate(api, server, hub, pki, version):
    dev, crt, key = issued_device(api, hub["id"])
    events = listen(server, api, hub["id"])
    c, _ = connected(server, pki, crt, key, dev["id"], version)
    expect_event(events, "device connected", dev["id"], "info")
    renewed = api.call("renewDeviceCertificate", deviceId=dev["id"])["certificate"]
    expect_error_close(server, c, m.RC_NOT_AUTHORIZED)
    expect_event(events, "device security has changed, requires authentication", dev["id"])
    assert poll(lambda: not is_connected(api, dev["id"]), what="the device to show disconnected")
    # Signed by the hub's CA and still naming the device, but no longer the device's: the event
    # is about the device it was issued to, whatever the client id says.
    refused(server, pki, crt, key, "invalid device certificate", client_id="c35-stale",
            events=events, object_id=dev["id"])
    c, _ = connected(server, pki, renewed["crt"], renewed["key"], "", version)
    expect_event(events, "device connected", dev["id"], "info")
    c.disconnect()
    events.close()
