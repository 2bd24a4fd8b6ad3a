"""Devices of API hubs on MQTT: who may connect (client id or username = device id, insecure
only), take-over and multiple connections, live effects of API changes (disable, delete, security,
hub disabled), isolation between hubs and from the development hub, and the shared plan's service
level. The server runs without the development hub, so unknown clients are refused. iothub only."""

import uuid

import pytest

import mqttraw as m
from iotapi import (  # noqa: F401  (fixtures)
    REFUSED, EventListener, admin_api, api, assert_refused, device_client, device_connect,
    insecure_device, iothub_only, msg_is, poll, server, server_still_running, start_server,
    stop_server, unique)


@pytest.fixture
def hub(api):
    return api.new_hub(name=unique("c23-hub"))


@pytest.fixture
def dedicated(api):
    return api.new_hub(name=unique("c23-dedicated"), productPlan="plan_dedicated")


def listener_of(server, api, hub_id, **kw):
    """An event listener: another insecure device of the same hub."""
    return EventListener(server, insecure_device(api, hub_id, name=unique("c23-listener"))["id"],
                         **kw)


def expect_kicked(client, version):
    """The server closed this connection because of an API change: v5 DISCONNECT 0x87 with a
    reason string; 3.1.1 a plain close."""
    disc = client.expect_disconnect(m.RC_NOT_AUTHORIZED, timeout=10)
    if version == 5:
        assert disc.props.get(m.REASON_STRING), "DISCONNECT without a reason string: %r" % disc
    return disc


# --- who may connect ------------------------------------------------------------------------------

def test_insecure_device_connects_with_its_id(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    c = device_client(server, d["id"], version)
    c.subscribe("c23/echo", 0)
    c.publish("c23/echo", b"hello")
    c.expect_publish("c23/echo", b"hello")
    c.disconnect()


def test_device_requiring_mtls_is_refused_on_plain_tcp(server, api, hub, version):
    d = api.new_device(hub["id"])
    assert d["allowInsecure"] is False
    events = listener_of(server, api, hub["id"])
    assert_refused(server, d["id"], version)
    topic, event = events.wait_event(lambda t, e: e.get("object-id") == d["id"])
    assert topic == "$SCW/events/error/device/" + d["id"], (topic, event)
    assert event["severity"] == "error" and event["object-type"] == "device", event
    assert event["msg"] == "mutual TLS authentication is required", event
    # The username path is no way around it.
    assert_refused(server, d["id"], version, client_id="c23-other", username=d["id"])
    events.close()


def test_username_carries_the_device_id(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    first = device_client(server, d["id"], version, client_id="c23-short", username=d["id"])
    first.ping()
    # The session's client id became the device id: a connection with the device id as client id
    # is the same client, and takes the session over.
    second = device_client(server, d["id"], version)
    if version == 5:
        first.expect_disconnect(m.RC_SESSION_TAKEN_OVER)
    else:
        assert first.expect_closed() == []
    second.ping()
    second.disconnect()


def test_username_with_empty_client_id(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    c = device_client(server, d["id"], version, client_id="", username=d["id"])
    c.subscribe("c23/empty", 0)
    c.publish("c23/empty", b"x")
    c.expect_publish("c23/empty", b"x")
    c.disconnect()


@pytest.mark.parametrize("who", ["unknown-uuid", "plain-name", "empty", "uuid-username",
                                 "deleted-hub-device"])
def test_unknown_client_refused(server, api, hub, version, who):
    kw = {"unknown-uuid": {"client_id": str(uuid.uuid4())},
          "plain-name": {"client_id": "c23-nobody"},
          "empty": {"client_id": ""},
          "uuid-username": {"client_id": "c23-nobody", "username": str(uuid.uuid4())}}.get(who)
    if who == "deleted-hub-device":
        gone = api.new_hub(name=unique("c23-gone"))
        d = insecure_device(api, gone["id"])
        api.call("deleteHub", hubId=gone["id"], deleteDevices=True)
        kw = {"client_id": d["id"]}
    assert_refused(server, version=version, **kw)


def test_disabled_device_refused(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    api.call("disableDevice", deviceId=d["id"])
    events = listener_of(server, api, hub["id"])
    assert_refused(server, d["id"], version)
    topic, event = events.wait_event(msg_is("device is not enabled", d["id"]))
    assert topic == "$SCW/events/error/device/" + d["id"], topic
    assert event["severity"] == "error" and event["object-type"] == "device"
    api.call("enableDevice", deviceId=d["id"])
    device_client(server, d["id"], version).disconnect()
    events.close()


def test_deleted_device_refused(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    api.call("deleteDevice", deviceId=d["id"])
    assert_refused(server, d["id"], version)


def test_device_of_disabled_hub_refused(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    api.disable_hub(hub["id"])
    assert_refused(server, d["id"], version)
    assert_refused(server, d["id"], version, client_id="c23-x", username=d["id"])
    api.enable_hub(hub["id"])
    device_client(server, d["id"], version).disconnect()


# --- one connection or several ----------------------------------------------------------------------

def test_second_connection_takes_the_first_over(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    first = device_client(server, d["id"], version)
    second = device_client(server, d["id"], version, client_id="c23-other", username=d["id"])
    if version == 5:
        first.expect_disconnect(m.RC_SESSION_TAKEN_OVER)
    else:
        assert first.expect_closed() == []
    second.ping()
    assert poll(lambda: api.call("getDevice", deviceId=d["id"])["isConnected"])
    second.disconnect()


def test_multiple_connections_allowed(server, api, dedicated, version):
    d = insecure_device(api, dedicated["id"], allowMultipleConnections=True)
    a = device_client(server, d["id"], version, client_id="c23-a", username=d["id"])
    b = device_client(server, d["id"], version, client_id="c23-b", username=d["id"])
    for c in (a, b):
        c.subscribe("c23/multi", 1)
    a.publish_acked("c23/multi", b"to both", qos=1)
    for c in (a, b):
        c.ack(c.expect_publish("c23/multi", b"to both"))
    # An empty client id gets one of its own.
    c, ack = device_connect(server, d["id"], version, client_id="", username=d["id"])
    assert ack.reason == 0, ack
    if version == 5:
        assigned = ack.props.get(m.ASSIGNED_CLIENT_IDENTIFIER)
        assert assigned and assigned not in ("c23-a", "c23-b"), ack
    c.subscribe("c23/multi", 1)
    b.publish_acked("c23/multi", b"to three", qos=1)
    for x in (a, b, c):
        x.ack(x.expect_publish("c23/multi", b"to three"))
    # Reusing one of the client ids takes that one connection over, and only it.
    a2 = device_client(server, d["id"], version, client_id="c23-a", username=d["id"])
    if version == 5:
        a.expect_disconnect(m.RC_SESSION_TAKEN_OVER)
    else:
        assert a.expect_closed() == []
    b.ping()
    c.ping()
    a2.ping()
    for x in (a2, b, c):
        x.disconnect()


def test_multiple_connections_need_distinct_ids_from_username(server, api, dedicated, version):
    # Without the flag, two different client ids for one device still mean one connection.
    d = insecure_device(api, dedicated["id"])
    a = device_client(server, d["id"], version, client_id="c23-a", username=d["id"])
    b = device_client(server, d["id"], version, client_id="c23-b", username=d["id"])
    if version == 5:
        a.expect_disconnect(m.RC_SESSION_TAKEN_OVER)
    else:
        assert a.expect_closed() == []
    b.ping()
    b.disconnect()


# --- live effects of API changes ------------------------------------------------------------------

def test_disabling_a_connected_device_closes_it(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    c = device_client(server, d["id"], version)
    c.ping()
    api.call("disableDevice", deviceId=d["id"])
    expect_kicked(c, version)
    assert_refused(server, d["id"], version)


def test_deleting_a_connected_device_closes_it(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    c = device_client(server, d["id"], version)
    c.ping()
    api.call("deleteDevice", deviceId=d["id"])
    expect_kicked(c, version)
    assert_refused(server, d["id"], version)


def test_requiring_mtls_closes_an_insecure_session(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    c = device_client(server, d["id"], version)
    c.ping()
    api.call("updateDevice", deviceId=d["id"], description="unchanged security")
    c.ping()  # other changes leave the session alone
    api.call("updateDevice", deviceId=d["id"], allowInsecure=False)
    expect_kicked(c, version)
    assert_refused(server, d["id"], version)


def test_disabling_the_hub_closes_all_its_devices(server, api, hub, version):
    devices = [insecure_device(api, hub["id"]) for _ in range(3)]
    clients = [device_client(server, d["id"], version) for d in devices]
    other_hub = api.new_hub(name=unique("c23-bystander"))
    bystander = device_client(server, insecure_device(api, other_hub["id"])["id"], version)
    api.call("disableHub", hubId=hub["id"])
    for c in clients:
        expect_kicked(c, version)
    bystander.ping()
    api.wait_hub(hub["id"], "disabled")
    for d in devices:
        assert_refused(server, d["id"], version)
    bystander.disconnect()


def test_deleting_the_hub_closes_its_devices(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    c = device_client(server, d["id"], version)
    c.ping()
    api.call("deleteHub", hubId=hub["id"], deleteDevices=True)
    expect_kicked(c, version)
    assert_refused(server, d["id"], version)


# --- isolation ------------------------------------------------------------------------------------

def test_hubs_are_isolated(server, api, version):
    hub_a = api.new_hub(name=unique("c23-iso-a"))
    hub_b = api.new_hub(name=unique("c23-iso-b"))
    a_sub = device_client(server, insecure_device(api, hub_a["id"])["id"], version)
    a_pub = device_client(server, insecure_device(api, hub_a["id"])["id"], version)
    b_sub = device_client(server, insecure_device(api, hub_b["id"])["id"], version)
    b_pub = device_client(server, insecure_device(api, hub_b["id"])["id"], version)
    for c in (a_sub, b_sub):
        c.subscribe("#", 0)
    a_pub.publish_acked("c23/iso", b"in A", qos=1)
    a_sub.expect_publish("c23/iso", b"in A")
    b_pub.publish_acked("c23/iso", m.SENTINEL, qos=1)
    assert b_sub.collect_until("c23/iso") == []
    a_pub.publish_acked("c23/iso", m.SENTINEL, qos=1)
    assert a_sub.collect_until("c23/iso") == []
    for c in (a_sub, a_pub, b_sub, b_pub):
        c.disconnect()


def test_development_hub_is_isolated(tmp_path, version):
    srv = start_server(tmp_path / "devhub", extra_args=["--dev-hub"])
    try:
        api = admin_api(srv)
        hub = api.new_hub(name=unique("c23-dev-iso"))
        a_sub = device_client(srv, insecure_device(api, hub["id"])["id"], version)
        a_pub = device_client(srv, insecure_device(api, hub["id"])["id"], version)
        dev = srv.connected(version, "c23-dev-client")
        for c in (a_sub, dev):
            c.subscribe("#", 0)
        a_pub.publish_acked("c23/iso", b"in the hub", qos=1)
        a_sub.expect_publish("c23/iso", b"in the hub")
        dev.publish("c23/iso", b"in the dev hub", qos=0)
        dev.expect_publish("c23/iso", b"in the dev hub")
        dev.publish("c23/iso", m.SENTINEL, qos=0)
        assert dev.collect_until("c23/iso") == []
        a_pub.publish_acked("c23/iso", m.SENTINEL, qos=1)
        assert a_sub.collect_until("c23/iso") == []
        # A client id that is no device's lands in the development hub, not in an API hub.
        stranger = srv.connected(version, str(uuid.uuid4()))
        stranger.subscribe("#", 0)
        a_pub.publish_acked("c23/iso", b"again", qos=1)
        stranger.publish("c23/iso", m.SENTINEL, qos=0)
        assert stranger.collect_until("c23/iso") == []
        for c in (a_sub, a_pub, dev, stranger):
            c.disconnect()
    finally:
        stop_server(srv)


# --- service level of the shared plan -------------------------------------------------------------

SHARED = "service level: %s"


def test_shared_plan_requires_clean_session(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    events = listener_of(server, api, hub["id"])
    props = {m.SESSION_EXPIRY_INTERVAL: 300} if version == 5 else None
    assert_refused(server, d["id"], version, clean=False, props=props)
    topic, event = events.wait_event(msg_is(
        SHARED % '"clean session" flag is mandatory to connect to a shared hub', d["id"]))
    assert topic == "$SCW/events/error/device/" + d["id"], topic
    device_client(server, d["id"], version, clean=True).disconnect()
    events.close()


def test_shared_plan_drops_retained_publish(server, api, hub, version):
    pub_dev = insecure_device(api, hub["id"])
    events = listener_of(server, api, hub["id"])
    sub = device_client(server, insecure_device(api, hub["id"])["id"], version)
    sub.subscribe("c23/ret", 0)
    pub = device_client(server, pub_dev["id"], version)
    pub.publish("c23/ret", b"retain me", qos=0, retain=True)
    pub.publish("c23/ret", m.SENTINEL, qos=0)
    assert sub.collect_until("c23/ret") == []
    events.wait_event(msg_is(SHARED % "publishing retained messages is forbidden on a shared hub",
                             pub_dev["id"]))
    # Nothing was retained.
    late = device_client(server, insecure_device(api, hub["id"])["id"], version)
    late.subscribe("c23/ret", 0)
    pub.publish("c23/ret", m.SENTINEL, qos=0)
    assert late.collect_until("c23/ret") == []
    for c in (sub, pub, late):
        c.disconnect()
    events.close()


def test_shared_plan_drops_qos2_publish(server, api, hub, version):
    pub_dev = insecure_device(api, hub["id"])
    events = listener_of(server, api, hub["id"])
    sub = device_client(server, insecure_device(api, hub["id"])["id"], version)
    sub.subscribe("c23/q2", 0)
    pub = device_client(server, pub_dev["id"], version)
    pub.publish("c23/q2", b"exactly once", qos=2)
    pub.publish("c23/q2", b"at least once", qos=1)
    sub.expect_publish("c23/q2", b"at least once")
    pub.publish("c23/q2", m.SENTINEL, qos=0)
    assert sub.collect_until("c23/q2") == []
    events.wait_event(msg_is(SHARED % "publishing QoS 2 messages is forbidden on a shared hub",
                             pub_dev["id"]))
    sub.disconnect()
    pub.close()
    events.close()


def test_shared_plan_refuses_qos_subscriptions(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    events = listener_of(server, api, hub["id"])
    c = device_client(server, d["id"], version)
    # MQTT 5 has no "QoS not supported" (0x9B) among SUBACK's reason codes (section 3.9.3):
    # the refusal is Not authorized.
    refused = m.SUBACK_FAILURE_V311 if version == 4 else m.RC_NOT_AUTHORIZED
    for qos in (1, 2):
        ack = c.subscribe("c23/subq", qos)
        assert ack.return_codes == [refused], ack
    ack = c.subscribe([("c23/subq/a", 0), ("c23/subq/b", 1), ("c23/subq/c", 0)])
    assert ack.return_codes == [0, refused, 0], ack
    events.wait_event(msg_is(SHARED % "subscribing with QoS 1-2 is forbidden on a shared hub",
                             d["id"]))
    # The QoS 0 subscriptions work; the refused one does not exist.
    c.publish("c23/subq/b", b"not subscribed", qos=0)
    c.publish("c23/subq/a", b"subscribed", qos=0)
    c.expect_publish("c23/subq/a", b"subscribed")
    c.disconnect()
    events.close()


def test_dedicated_plan_allows_everything(server, api, dedicated, version):
    d = insecure_device(api, dedicated["id"])
    props = {m.SESSION_EXPIRY_INTERVAL: 300} if version == 5 else None
    sub = device_client(server, d["id"], version, clean=False, props=props)
    assert sub.subscribe("c23/full", 2).return_codes == [2]
    pub = device_client(server, insecure_device(api, dedicated["id"])["id"], version)
    ack = pub.publish_acked("c23/full", b"exactly once", qos=2)
    assert ack.type == m.PUBCOMP, ack
    got = sub.expect_publish("c23/full", b"exactly once", qos=2)
    sub.ack(got)
    pub.publish_acked("c23/full/retained", b"kept", qos=1, retain=True)
    late = device_client(server, insecure_device(api, dedicated["id"])["id"], version)
    late.subscribe("c23/full/retained", 1)
    got = late.expect_publish("c23/full/retained", b"kept")
    assert got.retain
    late.ack(got)
    # The persistent session outlives the connection.
    sub.disconnect()
    pub.publish_acked("c23/full", b"while away", qos=1)
    back, ack = device_connect(server, d["id"], version, clean=False, props=props)
    assert ack.reason == 0 and ack.session_present, ack
    back.ack(back.expect_publish("c23/full", b"while away"))
    for c in (back, pub, late):
        c.disconnect()


# --- independent clients --------------------------------------------------------------------------

def test_paho_device_by_username(server, api, hub):
    import queue

    import paho.mqtt.client as paho

    d = insecure_device(api, hub["id"])
    got = queue.Queue()
    client = paho.Client(client_id="c23-paho", protocol=paho.MQTTv311)
    client.username_pw_set(d["id"])
    client.on_connect = lambda c, u, flags, rc: got.put(("connack", rc))
    client.on_subscribe = lambda c, u, mid, granted: got.put(("suback", list(granted)))
    client.on_message = lambda c, u, msg: got.put(("message", msg.topic, msg.payload))
    client.connect(server.host, server.port, 30)
    client.loop_start()
    try:
        assert got.get(timeout=10) == ("connack", 0)
        client.subscribe("c23/paho", 0)
        assert got.get(timeout=10) == ("suback", [0])
        client.publish("c23/paho", b"from paho", 1)
        assert got.get(timeout=10) == ("message", "c23/paho", b"from paho")
        assert poll(lambda: api.call("getDevice", deviceId=d["id"])["isConnected"])
    finally:
        client.disconnect()
        client.loop_stop()


def test_mosquitto_tools_as_devices(server, api, hub):
    from clients import Subscriber, mosquitto_pub

    sub_dev = insecure_device(api, hub["id"])
    pub_dev = insecure_device(api, hub["id"])
    sub = Subscriber(server, 4, "c23/tools", count=1, extra=["-i", sub_dev["id"]])
    mosquitto_pub(server, 4, "c23/tools", "from mosquitto_pub", qos=1,
                  extra=["-i", "c23-pub", "-u", pub_dev["id"]])
    rc, lines = sub.output()
    assert rc == 0, lines
    assert "from mosquitto_pub" in lines, lines
    # An unknown client id is refused.
    import subprocess

    import brokers
    r = subprocess.run([brokers.MOSQUITTO_PUB] + server.mosquitto_sub_args(4) + [
        "-t", "c23/tools", "-m", "x", "-i", "c23-nobody"], capture_output=True, text=True,
        timeout=10)
    assert r.returncode != 0, (r.stdout, r.stderr)
