"""Configured limits and their outcome on overflow: queued messages, in-flight window,
connections, topic length and levels."""

import time

import mqttraw as m
from brokers import assert_alive


def persistent_props(version):
    return {m.SESSION_EXPIRY_INTERVAL: 3600} if version == 5 else None


def test_queued_message_limit(broker_factory, version):
    """An offline persistent session keeps exactly the configured number of queued messages.
    Which ones (oldest or newest) is the broker's documented policy; only the count is checked,
    and that what is kept comes in order."""
    limit = 5
    broker = broker_factory(max_queued_messages=limit)
    props = persistent_props(version)
    c = broker.connected(version, "c14-queue", clean=False, props=props)
    c.subscribe("c14/queue", 1)
    c.disconnect()
    pub = broker.connected(version, "c14-queue-pub")
    n = 15
    for i in range(n):
        pub.publish_acked("c14/queue", b"%02d" % i, qos=1)
    c = broker.connected(version, "c14-queue", clean=False, props=props)
    pub.publish_acked("c14/queue-end", m.SENTINEL, qos=1)
    c.subscribe("c14/queue-end", 1)
    pub.publish_acked("c14/queue-end", m.SENTINEL, qos=1)
    got = [p for p in c.collect_until("c14/queue-end") if p.topic == "c14/queue"]
    payloads = [p.payload for p in got]
    assert len(payloads) == limit, payloads
    assert payloads == sorted(payloads)
    assert_alive(broker, version)


def test_inflight_window_v311(broker_factory):
    broker = broker_factory(max_inflight=2)
    sub = broker.connected(4, "c14-window")
    sub.subscribe("c14/window", 1)
    pub = broker.connected(4, "c14-window-pub")
    pub.publish_many("c14/window", [b"%d" % i for i in range(6)], qos=1)
    got = sub.collect_publishes(2, ack=False)
    sub.expect_nothing(0.5)
    for p in got:
        sub.ack(p)
    got += sub.collect_publishes(4)
    assert [p.payload for p in got] == [b"%d" % i for i in range(6)]


def test_max_connections(broker_factory, version):
    broker = broker_factory(max_connections=2)
    a = broker.connected(version, "c14-conn-a")
    b = broker.connected(version, "c14-conn-b")
    if broker.is_mosquitto:
        # mosquitto 2.0.11 admits max_connections + 1 clients (observed: its check runs before
        # the new connection is counted). iothub must admit exactly the limit.
        broker.connected(version, "c14-conn-extra")
    c = broker.raw(version)
    try:
        c.send_raw(m.connect_packet(version, "c14-conn-c"))
        got = c.expect_closed()
    except (ConnectionError, OSError):
        got = []
    # Refused: closed without a CONNACK (mosquitto), or with a failure CONNACK
    # (3.1.1 0x03 Server unavailable; v5 0x97 Quota exceeded or 0x89 Server busy).
    assert all(p.type == m.CONNACK and p.reason != 0 for p in got), got
    a.ping()
    b.disconnect()
    d = None
    for _ in range(50):
        d = broker.raw(version)
        d.send_raw(m.connect_packet(version, "c14-conn-d"))
        try:
            ack = d.expect_packet(m.CONNACK, timeout=2)
            if ack.reason == 0:
                break
        except AssertionError:
            pass
        d.close()
        time.sleep(0.1)
    assert ack.reason == 0
    d.ping()


def test_max_topic_levels(broker_factory, version):
    broker = broker_factory(max_topic_levels=4)
    sub = broker.connected(version, "c14-levels-sub")
    sub.subscribe("#", 1)
    pub = broker.connected(version, "c14-levels-pub")
    pub.publish_acked("c14/a/b/c", b"four levels", qos=1)
    sub.ack(sub.expect_publish("c14/a/b/c", b"four levels"))
    pub.send_raw(m.publish_packet(version, "c14/a/b/c/d", b"five levels", qos=1, mid=50))
    try:
        pkt = pub.read_packet()
    except ConnectionError:
        pkt = None
    if pkt is not None and pkt.type == m.PUBACK:
        assert version == 5 and pkt.reason >= 0x80, pkt
        pub.ping()
    else:
        # Refused by closing; v5 says why.
        assert pkt is None or (pkt.type == m.DISCONNECT and pkt.reason == m.RC_TOPIC_NAME_INVALID)
    other = broker.connected(version, "c14-levels-pub2")
    other.publish_acked("c14/end", m.SENTINEL, qos=1)
    assert sub.collect_until("c14/end") == []
    # A filter deeper than the limit is refused too.
    ack = sub.subscribe("c14/a/b/c/+", 1)
    assert ack.return_codes[0] >= 0x80
    assert_alive(broker, version)


def test_max_topic_length(broker_factory, version):
    broker = broker_factory(max_topic_length=32)
    sub = broker.connected(version, "c14-len-sub")
    sub.subscribe("c14/#", 1)
    pub = broker.connected(version, "c14-len-pub")
    pub.publish_acked("c14/" + "x" * 28, b"fits", qos=1)
    sub.ack(sub.expect_publish("c14/" + "x" * 28, b"fits"))
    pub.send_raw(m.publish_packet(version, "c14/" + "x" * 29, b"too long", qos=1, mid=51))
    try:
        pkt = pub.read_packet()
    except ConnectionError:
        pkt = None
    if pkt is not None and pkt.type == m.PUBACK:
        assert version == 5 and pkt.reason >= 0x80, pkt
    else:
        assert pkt is None or (pkt.type == m.DISCONNECT and pkt.reason == m.RC_TOPIC_NAME_INVALID)
    other = broker.connected(version, "c14-len-pub2")
    other.publish_acked("c14/end", m.SENTINEL, qos=1)
    assert sub.collect_until("c14/end") == []
    assert_alive(broker, version)


def test_many_connections_and_subscriptions(broker, version):
    clients = [broker.connected(version, "c14-many-%d" % i) for i in range(50)]
    for i, c in enumerate(clients):
        c.subscribe([("c14/many/%d/+" % i, 1), ("c14/many/all", 0)])
    pub = broker.connected(version, "c14-many-pub")
    pub.publish("c14/many/all", b"to all")
    for c in clients:
        c.expect_publish("c14/many/all", b"to all")
    for i in (0, 17, 49):
        pub.publish_acked("c14/many/%d/x" % i, b"to %d" % i, qos=1)
        clients[i].ack(clients[i].expect_publish("c14/many/%d/x" % i, b"to %d" % i))
