"""Retained messages: set, replace, delete, delivery on subscribe, flags."""

import pytest

import clients
import mqttraw as m


def test_retained_delivered_on_subscribe(broker, version):
    pub = broker.connected(version, "c04-pub")
    pub.publish_acked("c04/ret", b"kept", qos=1, retain=True)
    sub = broker.connected(version, "c04-sub")
    sub.subscribe("c04/ret", 1)
    pkt = sub.expect_publish("c04/ret", b"kept", qos=1)
    assert pkt.retain  # [MQTT-3.3.1-8]
    sub.ack(pkt)


def test_retained_replaced(broker, version):
    pub = broker.connected(version, "c04-replace-pub")
    pub.publish_acked("c04/replace", b"first", qos=1, retain=True)
    pub.publish_acked("c04/replace", b"second", qos=1, retain=True)
    sub = broker.connected(version, "c04-replace-sub")
    sub.subscribe("c04/replace", 1)
    pub.publish_acked("c04/replace", m.SENTINEL, qos=1)
    got = sub.collect_until("c04/replace")
    assert [(p.payload, p.retain) for p in got] == [(b"second", True)]


def test_retained_deleted_by_empty_payload(broker, version):
    pub = broker.connected(version, "c04-delete-pub")
    pub.publish_acked("c04/delete", b"soon gone", qos=1, retain=True)
    pub.publish_acked("c04/delete", b"", qos=1, retain=True)
    sub = broker.connected(version, "c04-delete-sub")
    sub.subscribe("c04/delete", 1)
    pub.publish_acked("c04/delete", m.SENTINEL, qos=1)
    # Neither the old message nor the empty one is retained [MQTT-3.3.1-10, 3.3.1-11].
    assert sub.collect_until("c04/delete") == []


def test_empty_retained_still_forwarded_live(broker, version):
    sub = broker.connected(version, "c04-empty-live-sub")
    sub.subscribe("c04/empty-live", 1)
    pub = broker.connected(version, "c04-empty-live-pub")
    pub.publish_acked("c04/empty-live", b"", qos=1, retain=True)
    pkt = sub.expect_publish("c04/empty-live", b"")
    sub.ack(pkt)


def test_retain_flag_cleared_on_live_delivery(broker, version):
    """3.1.1 [MQTT-3.3.1-9]; v5 with Retain As Published 0: live deliveries carry RETAIN 0."""
    sub = broker.connected(version, "c04-live-sub")
    sub.subscribe("c04/live", 1)
    pub = broker.connected(version, "c04-live-pub")
    pub.publish_acked("c04/live", b"live", qos=1, retain=True)
    pkt = sub.expect_publish("c04/live", b"live")
    assert not pkt.retain
    sub.ack(pkt)


def test_retained_qos_downgraded(broker, version):
    pub = broker.connected(version, "c04-down-pub")
    pub.publish_acked("c04/down", b"q2", qos=2, retain=True)
    sub = broker.connected(version, "c04-down-sub")
    sub.subscribe("c04/down", 0)
    pkt = sub.expect_publish("c04/down", b"q2", qos=0)
    assert pkt.retain


def test_retained_qos_kept_at_most_subscription(broker, version):
    pub = broker.connected(version, "c04-q-pub")
    pub.publish_acked("c04/q", b"q1", qos=1, retain=True)
    sub = broker.connected(version, "c04-q-sub")
    sub.subscribe("c04/q", 2)
    pkt = sub.expect_publish("c04/q", b"q1", qos=1)
    sub.ack(pkt)


def test_retained_wildcard(broker, version):
    pub = broker.connected(version, "c04-wild-pub")
    topics = ["c04/w/a", "c04/w/b", "c04/w/b/c", "c04/other"]
    for t in topics:
        pub.publish_acked(t, t.encode(), qos=1, retain=True)
    sub = broker.connected(version, "c04-wild-sub")
    sub.subscribe("c04/w/#", 1)
    got = sub.collect_publishes(3)
    assert sorted(p.topic for p in got) == ["c04/w/a", "c04/w/b", "c04/w/b/c"]
    assert all(p.retain and p.payload == p.topic.encode() for p in got)
    pub.publish_acked("c04/w/a", m.SENTINEL, qos=1)
    assert sub.collect_until("c04/w/a") == []


def test_retained_sent_again_on_resubscribe(broker, version):
    pub = broker.connected(version, "c04-again-pub")
    pub.publish_acked("c04/again", b"r", qos=1, retain=True)
    sub = broker.connected(version, "c04-again-sub")
    sub.subscribe("c04/again", 1)
    sub.ack(sub.expect_publish("c04/again", b"r"))
    # 3.1.1 [MQTT-3.8.4-3]: re-sending a SUBSCRIBE re-sends the retained messages.
    sub.subscribe("c04/again", 1)
    pkt = sub.expect_publish("c04/again", b"r")
    assert pkt.retain
    sub.ack(pkt)


def test_retained_not_matched_by_wildcard_on_dollar(broker, version):
    pub = broker.connected(version, "c04-dollar-pub")
    pub.publish_acked("$c04/ret", b"hidden", qos=1, retain=True)
    pub.publish_acked("c04/visible", b"shown", qos=1, retain=True)
    sub = broker.connected(version, "c04-dollar-sub")
    sub.subscribe("#", 1)
    got = []
    pub.publish_acked("c04/visible-sentinel", m.SENTINEL, qos=1)
    got = sub.collect_until("c04/visible-sentinel")
    assert "$c04/ret" not in [p.topic for p in got]
    assert "c04/visible" in [p.topic for p in got]


@pytest.mark.versions([3, 4, 5])
def test_mosquitto_clients_retained(broker, version):
    clients.mosquitto_pub(broker, version, "c04/cli", "retained by mosquitto_pub", qos=1,
                          retain=True)
    rc, lines = clients.mosquitto_sub_once(broker, version, "c04/cli")
    assert rc == 0
    assert lines == ["retained by mosquitto_pub"]


def test_paho_retained(broker, version):
    pub = clients.Paho(broker, version, "c04-paho-pub")
    pub.publish("c04/paho", b"paho retained", qos=1, retain=True)
    sub = clients.Paho(broker, version, "c04-paho-sub")
    sub.subscribe("c04/paho", 1)
    msg = sub.get()
    assert msg.payload == b"paho retained" and msg.retain
    pub.disconnect()
    sub.disconnect()
