"""SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK and topic matching."""

import pytest

import mqttraw as m
from brokers import assert_alive, expect_error_close


def test_suback_granted_qos(broker, version):
    c = broker.connected(version, "c02-granted")
    ack = c.subscribe([("c02/q0", 0), ("c02/q1", 1), ("c02/q2", 2)], mid=0x1234)
    assert ack.return_codes == [0, 1, 2]
    if version == 4:
        assert ack.raw == b"\x90\x05\x12\x34\x00\x01\x02"


@pytest.mark.parametrize("filt, matching, other", [
    ("c02/+/c", ["c02/b/c", "c02//c"], ["c02/b/d", "c02/b/c/d", "c02/c", "x/b/c"]),
    ("c02/#", ["c02", "c02/b", "c02/b/c", "c02/"], ["c03/b", "x/c02"]),
    ("c02/+", ["c02/b", "c02/"], ["c02", "c02/b/c"]),
    ("+/+", ["c02/b", "/b", "c02/"], ["c02", "c02/b/c"]),
    ("c02/+/#", ["c02/b", "c02/b/c", "c02/"], ["c02", "x/b"]),
    ("c02/exact", ["c02/exact"], ["c02/Exact", "c02/exact/", "c02/exac"]),
], ids=["plus-middle", "hash", "plus-end", "plus-plus", "plus-hash", "exact"])
def test_wildcard_matching(broker, version, filt, matching, other):
    sub = broker.connected(version, "c02-match-sub")
    pub = broker.connected(version, "c02-match-pub")
    sub.subscribe([(filt, 1), ("c02sentinel", 1)])
    sent = []
    for topic in other + matching:
        pub.publish_acked(topic, topic.encode(), qos=1)
        sent.append(topic)
    pub.publish_acked("c02sentinel", m.SENTINEL, qos=1)
    got = sub.collect_until("c02sentinel")
    assert [p.topic for p in got] == matching


def test_dollar_topics_not_matched_by_first_level_wildcards(broker, version):
    """MQTT 4.7.2: '#' and '+' at the first level do not match topics beginning with '$'."""
    hash_sub = broker.connected(version, "c02-dollar-hash")
    plus_sub = broker.connected(version, "c02-dollar-plus")
    dollar_sub = broker.connected(version, "c02-dollar-explicit")
    hash_sub.subscribe("#", 1)
    plus_sub.subscribe("+/c02dollar", 1)
    dollar_sub.subscribe("$c02/#", 1)
    pub = broker.connected(version, "c02-dollar-pub")
    pub.publish_acked("$c02/c02dollar", b"dollar", qos=1)
    pub.publish_acked("$c02dollar", b"dollar", qos=1)
    pub.publish_acked("x/c02dollar", m.SENTINEL, qos=1)
    got = [p for p in hash_sub.collect_until("x/c02dollar")
           if p.topic.startswith("$c02")]
    assert got == []
    assert plus_sub.collect_until("x/c02dollar") == []
    pkt = dollar_sub.expect_publish("$c02/c02dollar", b"dollar")
    dollar_sub.ack(pkt)


def test_subscription_qos_caps_delivery(broker, version):
    sub = broker.connected(version, "c02-cap-sub")
    sub.subscribe([("c02/cap/0", 0), ("c02/cap/1", 1), ("c02/cap/2", 2)])
    pub = broker.connected(version, "c02-cap-pub")
    for sub_qos in (0, 1, 2):
        for pub_qos in (0, 1, 2):
            pub.publish_acked("c02/cap/%d" % sub_qos, b"%d" % pub_qos, qos=pub_qos)
            pkt = sub.expect_publish("c02/cap/%d" % sub_qos, b"%d" % pub_qos)
            assert pkt.qos == min(sub_qos, pub_qos), pkt
            sub.ack(pkt)


def test_resubscribe_replaces(broker, version):
    """[MQTT-3.8.4-3]: a SUBSCRIBE for an existing filter replaces it; one copy, at the new QoS."""
    sub = broker.connected(version, "c02-replace-sub")
    sub.subscribe("c02/replace", 2)
    sub.subscribe("c02/replace", 1)
    pub = broker.connected(version, "c02-replace-pub")
    pub.publish_acked("c02/replace", b"once", qos=2)
    pub.publish_acked("c02/replace", m.SENTINEL, qos=2)
    got = sub.collect_until("c02/replace")
    assert [(p.payload, p.qos) for p in got] == [(b"once", 1)]


def test_unsubscribe(broker, version):
    sub = broker.connected(version, "c02-unsub")
    sub.subscribe([("c02/unsub", 1), ("c02/keep", 1)])
    ack = sub.unsubscribe("c02/unsub")
    if version == 4:
        assert ack.raw[0] == 0xB0 and ack.raw[1] == 2
    else:
        assert ack.return_codes == [m.RC_SUCCESS]
    pub = broker.connected(version, "c02-unsub-pub")
    pub.publish_acked("c02/unsub", b"gone", qos=1)
    pub.publish_acked("c02/keep", m.SENTINEL, qos=1)
    assert sub.collect_until("c02/keep") == []


def test_unsubscribe_unknown_v5(broker):
    sub = broker.connected(5, "c02-unsub-unknown")
    sub.subscribe("c02/known", 0)
    ack = sub.unsubscribe(["c02/known", "c02/never"])
    assert ack.return_codes == [m.RC_SUCCESS, m.RC_NO_SUBSCRIPTION_EXISTED]


def test_unsubscribe_unknown_v311(broker):
    sub = broker.connected(4, "c02-unsub-unknown")
    ack = sub.unsubscribe("c02/never")
    assert ack.raw == b"\xb0\x02" + ack.raw[2:4]


def test_overlapping_subscriptions_v311(broker):
    """MQTT 3.1.1 section 3.3.5: with overlapping subscriptions the server must deliver respecting
    the highest QoS of the matches, and may or may not send several copies.

    iothub delivers one copy at the highest QoS (what the issue asks for). mosquitto 2.0.11 sends
    3.x clients one copy (allow_duplicate_messages defaults to false there), but at the QoS of
    whichever subscription its tree walk met first, not the highest: observed QoS 0 here. That is a
    known mosquitto deviation, so for mosquitto we check only that exactly one copy arrives.
    """
    sub = broker.connected(4, "c02-overlap")
    sub.subscribe([("c02/ov/#", 1), ("c02/ov/+", 2), ("c02/ov/x", 0)])
    pub = broker.connected(4, "c02-overlap-pub")
    pub.publish_acked("c02/ov/x", b"overlap", qos=2)
    pub.publish_acked("c02/ov/sentinel/deeper", m.SENTINEL, qos=2)
    got = sub.collect_until("c02/ov/sentinel/deeper")
    qos = sorted(p.qos for p in got)
    assert all(p.payload == b"overlap" for p in got)
    if broker.is_mosquitto:
        assert len(qos) == 1, got
    else:
        assert qos == [2], got


def test_overlapping_subscriptions_v5(broker):
    """MQTT 5 section 4.8.1 / 3.3.4: one copy at the highest QoS, or one copy per subscription;
    both are allowed. Each copy carries the identifiers of the subscriptions it answers."""
    sub = broker.connected(5, "c02-overlap5")
    sub.subscribe("c02/ov5/#", 1, props={m.SUBSCRIPTION_IDENTIFIER: 11})
    sub.subscribe("c02/ov5/+", 2, props={m.SUBSCRIPTION_IDENTIFIER: 12})
    pub = broker.connected(5, "c02-overlap5-pub")
    pub.publish_acked("c02/ov5/x", b"overlap", qos=2)
    pub.publish_acked("c02/ov5/s/deeper", m.SENTINEL, qos=2)
    got = sub.collect_until("c02/ov5/s/deeper")
    assert len(got) in (1, 2), got
    if len(got) == 1:
        assert got[0].qos == 2
        assert sorted(got[0].props.all(m.SUBSCRIPTION_IDENTIFIER)) == [11, 12]
    else:
        pairs = sorted((p.qos, tuple(p.props.all(m.SUBSCRIPTION_IDENTIFIER))) for p in got)
        assert pairs == [(1, (11,)), (2, (12,))]


def test_subscribe_several_and_unsubscribe_several(broker, version):
    c = broker.connected(version, "c02-several")
    ack = c.subscribe([("c02/s/%d" % i, i % 3) for i in range(10)])
    assert ack.return_codes == [i % 3 for i in range(10)]
    ack = c.unsubscribe(["c02/s/%d" % i for i in range(10)])
    if version == 5:
        assert ack.return_codes == [0] * 10


def test_large_number_of_subscribers(broker, version):
    subs = [broker.connected(version, "c02-many-%d" % i) for i in range(20)]
    for s in subs:
        s.subscribe("c02/many", 1)
    pub = broker.connected(version, "c02-many-pub")
    pub.publish_acked("c02/many", b"fanout", qos=1)
    for s in subs:
        s.ack(s.expect_publish("c02/many", b"fanout", qos=1))
