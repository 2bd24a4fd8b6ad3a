"""PUBLISH at QoS 0, 1 and 2 in both directions, ordering, re-delivery, and end-to-end checks with
independent clients (paho-mqtt, mosquitto_pub and mosquitto_sub)."""

import pytest

import clients
import mqttraw as m
from brokers import assert_alive


def test_qos0_roundtrip(broker, version):
    c = broker.connected(version, "c03-q0")
    c.subscribe("c03/q0", 0)
    c.publish("c03/q0", b"zero")
    pkt = c.expect_publish("c03/q0", b"zero", qos=0)
    assert pkt.mid is None and not pkt.dup and not pkt.retain
    if version == 4:
        assert pkt.raw == b"\x30\x0c\x00\x06c03/q0zero"


def test_qos1_inbound_flow(broker, version):
    sub = broker.connected(version, "c03-q1-sub")
    sub.subscribe("c03/q1", 1)
    c = broker.connected(version, "c03-q1-pub")
    c.publish("c03/q1", b"one", qos=1, mid=0x0A0B)
    ack = c.await_packet(m.PUBACK)
    assert ack.mid == 0x0A0B
    if version == 4:
        assert ack.raw == b"\x40\x02\x0a\x0b"
    else:
        assert ack.reason == m.RC_SUCCESS
    sub.ack(sub.expect_publish("c03/q1", b"one", qos=1))


def test_qos1_v5_puback_without_subscribers(broker):
    c = broker.connected(5, "c03-q1-nosub")
    c.publish("c03/nobody/listens", b"x", qos=1, mid=7)
    ack = c.await_packet(m.PUBACK)
    assert ack.mid == 7
    assert ack.reason in (m.RC_SUCCESS, m.RC_NO_MATCHING_SUBSCRIBERS)


def test_qos2_inbound_flow(broker, version):
    sub = broker.connected(version, "c03-q2-sub")
    sub.subscribe("c03/q2", 2)
    c = broker.connected(version, "c03-q2-pub")
    c.publish("c03/q2", b"two", qos=2, mid=0x0102)
    rec = c.await_packet(m.PUBREC)
    assert rec.mid == 0x0102
    if version == 4:
        assert rec.raw == b"\x50\x02\x01\x02"
    c.send_raw(m.ack_packet(version, m.PUBREL, 0x0102))
    comp = c.await_packet(m.PUBCOMP)
    if version == 4:
        assert comp.raw == b"\x70\x02\x01\x02"
    assert comp.reason == 0
    pkt = sub.expect_publish("c03/q2", b"two", qos=2)
    assert pkt.mid and not pkt.dup
    sub.ack(pkt)


def test_qos2_outbound_flow(broker, version):
    sub = broker.connected(version, "c03-q2o-sub")
    sub.subscribe("c03/q2o", 2)
    pub = broker.connected(version, "c03-q2o-pub")
    pub.publish_acked("c03/q2o", b"exactly once", qos=2)
    pkt = sub.expect_publish("c03/q2o", b"exactly once", qos=2)
    assert pkt.mid != 0
    sub.send_raw(m.ack_packet(version, m.PUBREC, pkt.mid))
    rel = sub.expect_packet(m.PUBREL)
    assert rel.mid == pkt.mid
    assert rel.flags == 0x02  # [MQTT-3.6.1-1]
    if version == 4:
        assert rel.raw == b"\x62\x02" + pkt.mid.to_bytes(2, "big")
    sub.send_raw(m.ack_packet(version, m.PUBCOMP, pkt.mid))
    sub.ping()


def test_qos1_outbound_packet_ids_distinct(broker, version):
    sub = broker.connected(version, "c03-ids-sub")
    sub.subscribe("c03/ids", 1)
    pub = broker.connected(version, "c03-ids-pub")
    for i in range(8):
        pub.publish_acked("c03/ids", b"%d" % i, qos=1)
    got = sub.collect_publishes(8, ack=False)
    assert [p.payload for p in got] == [b"%d" % i for i in range(8)]
    mids = [p.mid for p in got]
    assert 0 not in mids and len(set(mids)) == 8
    for p in got:
        sub.ack(p)


def test_qos2_duplicate_publish_delivered_once(broker, version):
    """A QoS 2 PUBLISH resent with DUP before PUBREL must not be delivered twice (4.3.3)."""
    sub = broker.connected(version, "c03-dup2-sub")
    sub.subscribe("c03/dup2", 2)
    pub = broker.connected(version, "c03-dup2-pub")
    pub.publish("c03/dup2", b"only once", qos=2, mid=42)
    assert pub.await_packet(m.PUBREC).mid == 42
    pub.publish("c03/dup2", b"only once", qos=2, mid=42, dup=True)
    assert pub.await_packet(m.PUBREC).mid == 42
    pub.send_raw(m.ack_packet(version, m.PUBREL, 42))
    assert pub.await_packet(m.PUBCOMP).mid == 42
    pub.publish_acked("c03/dup2", m.SENTINEL, qos=2)
    got = sub.collect_until("c03/dup2")
    assert [p.payload for p in got] == [b"only once"]


def test_pubrel_unknown_packet_id(broker, version):
    """PUBREL for an id with no stored state is answered with PUBCOMP (v5: reason 0x92)."""
    c = broker.connected(version, "c03-pubrel-unknown")
    c.send_raw(m.ack_packet(version, m.PUBREL, 999))
    comp = c.expect_packet(m.PUBCOMP)
    assert comp.mid == 999
    if version == 5:
        assert comp.reason in (m.RC_SUCCESS, m.RC_PACKET_ID_NOT_FOUND)
    c.ping()


def test_puback_unknown_packet_id_ignored(broker, version):
    c = broker.connected(version, "c03-puback-unknown")
    c.send_raw(m.ack_packet(version, m.PUBACK, 777))
    c.ping()
    c.subscribe("c03/after", 0)
    c.publish("c03/after", b"fine")
    c.expect_publish("c03/after", b"fine")


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_in_order_delivery(broker, version, qos):
    sub = broker.connected(version, "c03-order-sub")
    sub.subscribe("c03/order", qos)
    pub = broker.connected(version, "c03-order-pub")
    n = 60
    pub.publish_many("c03/order", [b"%03d" % i for i in range(n)], qos=qos)
    got = []
    while len(got) < n:
        pkt = sub.read_packet()
        if pkt.type == m.PUBLISH:
            sub.ack(pkt)
            got.append(pkt.payload)
    assert got == [b"%03d" % i for i in range(n)]


def test_dup_on_redelivery_after_reconnect(broker, version):
    """Unacknowledged QoS 1 and 2 messages are resent on reconnect with DUP=1 and the same id."""
    props = {m.SESSION_EXPIRY_INTERVAL: 300} if version == 5 else None
    sub = broker.connected(version, "c03-redeliver", clean=False, props=props)
    sub.subscribe([("c03/redeliver/1", 1), ("c03/redeliver/2", 2)])
    pub = broker.connected(version, "c03-redeliver-pub")
    pub.publish_acked("c03/redeliver/1", b"q1", qos=1)
    pub.publish_acked("c03/redeliver/2", b"q2", qos=2)
    first = sub.collect_publishes(2, ack=False)
    assert all(not p.dup for p in first)
    sub.drop()
    sub = broker.raw(version)
    ack = sub.connect("c03-redeliver", clean=False, props=props)
    assert ack.reason == 0 and ack.session_present
    again = sub.collect_publishes(2, ack=False)
    by_topic = {p.topic: p for p in first}
    for p in again:
        assert p.dup, p
        assert p.mid == by_topic[p.topic].mid
        assert p.qos == by_topic[p.topic].qos
        assert p.payload == by_topic[p.topic].payload
    for p in again:
        sub.ack(p)
    sub.ping()


def test_pubrel_resent_after_reconnect(broker, version):
    """After PUBREC the server owes a PUBREL; on reconnect it resends PUBREL, not the PUBLISH."""
    props = {m.SESSION_EXPIRY_INTERVAL: 300} if version == 5 else None
    sub = broker.connected(version, "c03-rel", clean=False, props=props)
    sub.subscribe("c03/rel", 2)
    pub = broker.connected(version, "c03-rel-pub")
    pub.publish_acked("c03/rel", b"q2", qos=2)
    pkt = sub.expect_publish("c03/rel", b"q2", qos=2)
    sub.send_raw(m.ack_packet(version, m.PUBREC, pkt.mid))
    sub.expect_packet(m.PUBREL)
    sub.drop()
    sub = broker.raw(version)
    ack = sub.connect("c03-rel", clean=False, props=props)
    assert ack.session_present
    rel = sub.expect_packet(m.PUBREL)
    assert rel.mid == pkt.mid
    sub.send_raw(m.ack_packet(version, m.PUBCOMP, pkt.mid))
    pub.publish_acked("c03/rel", m.SENTINEL, qos=2)
    assert sub.collect_until("c03/rel") == []


def test_inbound_qos2_state_survives_reconnect(broker, version):
    """The client resends PUBREL after reconnecting; the message is delivered exactly once."""
    props = {m.SESSION_EXPIRY_INTERVAL: 300} if version == 5 else None
    sub = broker.connected(version, "c03-in2-sub")
    sub.subscribe("c03/in2", 2)
    pub = broker.connected(version, "c03-in2", clean=False, props=props)
    pub.publish("c03/in2", b"once", qos=2, mid=5)
    assert pub.await_packet(m.PUBREC).mid == 5
    pub.drop()
    pub = broker.raw(version)
    assert pub.connect("c03-in2", clean=False, props=props).session_present
    pub.send_raw(m.ack_packet(version, m.PUBREL, 5))
    comp = pub.await_packet(m.PUBCOMP)
    assert comp.mid == 5 and comp.reason == 0
    pub.publish_acked("c03/in2", m.SENTINEL, qos=2)
    got = sub.collect_until("c03/in2")
    assert [p.payload for p in got] == [b"once"]


def test_payload_sizes(broker, version):
    c = broker.connected(version, "c03-sizes")
    c.subscribe("c03/size", 1)
    for size in (0, 1, 127, 128, 16383, 16384, 200000):
        payload = bytes(i % 251 for i in range(size))
        c.publish_acked("c03/size", payload, qos=1)
        c.ack(c.expect_publish("c03/size", payload))


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_roundtrip(broker, version, qos):
    sub = clients.Paho(broker, version, "c03-paho-sub")
    assert sub.subscribe("c03/paho/#", qos) == [qos]
    pub = clients.Paho(broker, version, "c03-paho-pub")
    for i in range(5):
        pub.publish("c03/paho/%d" % i, b"paho %d" % i, qos=qos)
    got = [sub.get() for _ in range(5)]
    assert [(g.topic, g.payload, g.qos) for g in got] == [
        ("c03/paho/%d" % i, b"paho %d" % i, qos) for i in range(5)]
    sub.disconnect()
    pub.disconnect()


@pytest.mark.versions([3, 4, 5])
def test_mosquitto_clients_end_to_end(broker, version):
    sub = clients.Subscriber(broker, version, "c03/cli", qos=1)
    clients.mosquitto_pub(broker, version, "c03/cli", "from mosquitto_pub", qos=1)
    rc, lines = sub.output()
    assert rc == 0, lines
    assert "from mosquitto_pub" in lines


def test_raw_to_paho_and_back(broker, version):
    p = clients.Paho(broker, version, "c03-mixed-paho")
    p.subscribe("c03/mixed/to-paho", 2)
    raw = broker.connected(version, "c03-mixed-raw")
    raw.subscribe("c03/mixed/to-raw", 2)
    raw.publish_acked("c03/mixed/to-paho", b"raw says hi", qos=2)
    msg = p.get()
    assert (msg.topic, msg.payload, msg.qos) == ("c03/mixed/to-paho", b"raw says hi", 2)
    p.publish("c03/mixed/to-raw", b"paho says hi", qos=2)
    raw.ack(raw.expect_publish("c03/mixed/to-raw", b"paho says hi", qos=2))
    p.disconnect()


def test_order_per_publisher_across_workers(broker_factory, version):
    """Several publishers (likely on different worker threads) to one subscriber: each
    publisher's messages arrive in the order it sent them (MQTT 4.6, ordered topic)."""
    broker = broker_factory(workers=4)
    sub = broker.connected(version, "c03-workers-sub")
    sub.subscribe("c03/workers/+", 1)
    pubs = [broker.connected(version, "c03-workers-pub-%d" % i) for i in range(6)]
    n = 15  # below every Receive Maximum announced (mosquitto 20), so no PUBACK is awaited
    for i, p in enumerate(pubs):
        for j in range(n):
            p.publish("c03/workers/%d" % i, b"%d:%03d" % (i, j), qos=1)
    seen = {i: [] for i in range(len(pubs))}
    for _ in range(n * len(pubs)):
        pkt = sub.expect_packet(m.PUBLISH)
        sub.ack(pkt)
        i = int(pkt.topic.rsplit("/", 1)[1])
        seen[i].append(pkt.payload)
    for i in seen:
        assert seen[i] == [b"%d:%03d" % (i, j) for j in range(n)]
    for p in pubs:
        for _ in range(n):
            p.await_packet(m.PUBACK)
