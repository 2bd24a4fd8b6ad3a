"""CONNECT and CONNACK: protocol levels, client identifiers, take-over."""

import pytest

import mqttraw as m
from brokers import assert_alive, expect_error_close


def test_connect_accepted(broker, version):
    c = broker.raw(version)
    ack = c.connect("c01-accept", clean=True)
    assert ack.reason == 0
    assert ack.session_present is False
    if version == 4:
        assert ack.raw == b"\x20\x02\x00\x00"
    else:
        assert ack.raw[2] == 0x00  # acknowledge flags
    c.ping()
    c.disconnect()


def test_connect_mqtt31_and_publish(broker):
    c = broker.raw(3)
    ack = c.connect("c01-v31", clean=True)
    assert ack.raw == b"\x20\x02\x00\x00"
    c.subscribe("c01/v31", 1)
    c.publish_acked("c01/v31", b"hello 3.1", qos=1)
    pkt = c.expect_publish("c01/v31", b"hello 3.1", qos=1)
    c.ack(pkt)
    c.disconnect()


def test_mqtt31_to_v5_crossover(broker):
    """A message published by a 3.1 client reaches 3.1.1 and 5 subscribers, and back."""
    subs = {v: broker.connected(v, "c01-x-%d" % v) for v in (3, 4, 5)}
    for s in subs.values():
        s.subscribe("c01/cross/#", 1)
    for v in (3, 4, 5):
        subs[v].publish_acked("c01/cross/%d" % v, b"from %d" % v, qos=1)
        for s in subs.values():
            pkt = s.expect_publish("c01/cross/%d" % v, b"from %d" % v, qos=1)
            s.ack(pkt)


def test_unsupported_protocol_level(broker):
    c = broker.raw(4)
    c.send_raw(m.connect_packet(4, "c01-badlevel")[:8] + b"\x07" + m.connect_packet(4, "c01-badlevel")[9:])
    got = c.expect_closed()
    # 3.1.1 [MQTT-3.1.2-2]: CONNACK 0x01 then close. A 5.0 server may answer 0x84 instead.
    assert len(got) <= 1
    if got:
        assert got[0].type == m.CONNACK
        assert got[0].body[1] in (0x01, 0x84), got
    assert_alive(broker)


def test_bad_protocol_name(broker, version):
    c = broker.raw(version)
    c.send_raw(m.connect_packet(version, "c01-badname", proto_name="MQTX"))
    got = c.expect_closed()
    # The server may close silently or refuse with a CONNACK; it never accepts.
    assert all(p.type == m.CONNACK and p.reason != 0 for p in got), got
    assert_alive(broker, version)


def test_reserved_connect_flag(broker, version):
    c = broker.raw(version)
    c.send_raw(m.connect_packet(version, "c01-reserved", reserved_flag=True))
    got = c.expect_closed()
    assert all(p.type == m.CONNACK and p.reason != 0 for p in got), got
    if version == 5 and got:
        assert got[0].reason == m.RC_MALFORMED_PACKET
    assert_alive(broker, version)


def test_will_qos_without_will_flag(broker, version):
    pkt = bytearray(m.connect_packet(version, "c01-willqos"))
    pkt[9] |= 0x08  # will QoS 1 with the will flag clear [MQTT-3.1.2-13]
    c = broker.raw(version)
    c.send_raw(bytes(pkt))
    got = c.expect_closed()
    assert all(p.type == m.CONNACK and p.reason != 0 for p in got), got
    assert_alive(broker, version)


def test_empty_client_id_v311_persistent_refused(broker):
    c = broker.raw(4)
    ack = c.connect("", clean=False)
    assert ack.raw == b"\x20\x02\x00\x02"  # identifier rejected [MQTT-3.1.3-8]
    c.expect_closed()
    assert_alive(broker)


def test_empty_client_id_v311_clean_accepted(broker):
    c = broker.raw(4)
    ack = c.connect("", clean=True)
    assert ack.raw == b"\x20\x02\x00\x00"
    c.subscribe("c01/anon", 0)
    c.publish("c01/anon", b"x")
    c.expect_publish("c01/anon", b"x")


def test_empty_client_id_v5_assigned(broker):
    ids = []
    for _ in range(2):
        c = broker.raw(5)
        ack = c.connect("", clean=True)
        assert ack.reason == 0
        assigned = ack.props.get(m.ASSIGNED_CLIENT_IDENTIFIER)
        assert assigned, ack
        ids.append(assigned)
    assert ids[0] != ids[1]


def test_username_password_accepted(broker, version):
    c = broker.raw(version)
    ack = c.connect("c01-user", username="device", password=b"secret")
    assert ack.reason == 0


def test_takeover(broker, version):
    old = broker.connected(version, "c01-takeover")
    new = broker.connected(version, "c01-takeover")
    # MQTT 5 section 3.1.4: the old connection gets DISCONNECT 0x8E, then is closed. mosquitto
    # 2.0.11 closes it without a DISCONNECT, which expect_error_close accepts for mosquitto only.
    expect_error_close(broker, old, m.RC_SESSION_TAKEN_OVER)
    new.subscribe("c01/takeover", 0)
    new.publish("c01/takeover", b"mine")
    new.expect_publish("c01/takeover", b"mine")


def test_takeover_across_versions(broker):
    old = broker.connected(4, "c01-takeover-x")
    new = broker.connected(5, "c01-takeover-x")
    assert old.expect_closed() == []
    new.ping()


def test_client_id_characters(broker, version):
    """Ids beyond the 23 characters of [0-9a-zA-Z] that servers must accept are allowed here."""
    c = broker.raw(version)
    ack = c.connect("c01-a-rather-long-client-identifier-with-dashes/and/slashes")
    assert ack.reason == 0


def test_paho_connect(broker, version):
    from clients import Paho
    p = Paho(broker, version, "c01-paho")
    assert p.session_present is False
    p.disconnect()
