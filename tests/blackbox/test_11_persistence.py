"""What survives a restart after SIGTERM: retained messages and persistent sessions
(subscriptions, queued and unacknowledged QoS 1/2 messages). mosquitto runs with persistence on
and saves at SIGTERM; iothub restarts on the same data directory."""

import mqttraw as m


def persistent_props(version):
    return {m.SESSION_EXPIRY_INTERVAL: 3600} if version == 5 else None


def test_retained_survives_restart(broker, version):
    pub = broker.connected(version, "c11-ret-pub")
    pub.publish_acked("c11/ret/a", b"kept across restart", qos=1, retain=True)
    pub.publish_acked("c11/ret/b", b"deleted", qos=1, retain=True)
    pub.publish_acked("c11/ret/b", b"", qos=1, retain=True)
    props = [(m.CONTENT_TYPE, "text/plain"), (m.USER_PROPERTY, ("k", "v"))] if version == 5 else None
    pub.publish_acked("c11/ret/c", b"with props", qos=2, retain=True, props=props)
    broker.restart()
    sub = broker.connected(version, "c11-ret-sub")
    sub.subscribe("c11/ret/#", 2)
    got = sorted(sub.collect_publishes(2), key=lambda p: p.topic)
    assert [(p.topic, p.payload, p.qos, p.retain) for p in got] == [
        ("c11/ret/a", b"kept across restart", 1, True), ("c11/ret/c", b"with props", 2, True)]
    if version == 5:
        assert got[1].props.get(m.CONTENT_TYPE) == "text/plain"
        assert got[1].props.all(m.USER_PROPERTY) == [("k", "v")]
    pub = broker.connected(version, "c11-ret-pub2")
    pub.publish_acked("c11/ret/z", m.SENTINEL, qos=1)
    assert sub.collect_until("c11/ret/z") == []


def test_subscriptions_survive_restart(broker, version):
    props = persistent_props(version)
    c = broker.connected(version, "c11-subs", clean=False, props=props)
    c.subscribe([("c11/subs/+", 2), ("c11/other", 1)])
    c.disconnect()
    broker.restart()
    c = broker.connected(version, "c11-subs", clean=False, props=props)
    assert c.connack.session_present is True
    pub = broker.connected(version, "c11-subs-pub")
    pub.publish_acked("c11/subs/x", b"after restart", qos=2)
    pkt = c.expect_publish("c11/subs/x", b"after restart", qos=2)
    c.ack(pkt)
    pub.publish_acked("c11/other", b"one", qos=2)
    c.ack(c.expect_publish("c11/other", b"one", qos=1))


def test_queued_messages_survive_restart(broker, version):
    props = persistent_props(version)
    c = broker.connected(version, "c11-queue", clean=False, props=props)
    c.subscribe("c11/queue", 2)
    c.disconnect()
    pub = broker.connected(version, "c11-queue-pub")
    for i in range(5):
        pub.publish_acked("c11/queue", b"q%d" % i, qos=(1, 2)[i % 2])
    broker.restart()
    c = broker.connected(version, "c11-queue", clean=False, props=props)
    assert c.connack.session_present
    got = c.collect_publishes(5)
    assert [(p.payload, p.qos) for p in got] == [(b"q%d" % i, (1, 2)[i % 2]) for i in range(5)]


def test_unacknowledged_messages_survive_restart(broker, version):
    props = persistent_props(version)
    c = broker.connected(version, "c11-unacked", clean=False, props=props)
    c.subscribe("c11/unacked", 1)
    pub = broker.connected(version, "c11-unacked-pub")
    pub.publish_acked("c11/unacked", b"not acked yet", qos=1)
    first = c.expect_publish("c11/unacked", b"not acked yet", qos=1)
    c.drop()
    broker.restart()
    c = broker.connected(version, "c11-unacked", clean=False, props=props)
    assert c.connack.session_present
    again = c.expect_publish("c11/unacked", b"not acked yet", qos=1)
    assert again.dup
    assert again.mid == first.mid
    c.ack(again)


def test_clean_session_not_restored(broker, version):
    c = broker.connected(version, "c11-clean", clean=True)
    c.subscribe("c11/clean", 1)
    broker.restart()
    c = broker.connected(version, "c11-clean", clean=False, props=persistent_props(version))
    assert c.connack.session_present is False


def test_inbound_qos2_survives_restart(broker, version):
    """A QoS 2 message acknowledged with PUBREC is delivered exactly once, restart or not."""
    props = persistent_props(version)
    sub = broker.connected(version, "c11-in2-sub", clean=False, props=props)
    sub.subscribe("c11/in2", 2)
    pub = broker.connected(version, "c11-in2", clean=False, props=props)
    pub.publish("c11/in2", b"exactly once", qos=2, mid=77)
    assert pub.await_packet(m.PUBREC).mid == 77
    pub.drop()
    broker.restart()
    sub = broker.connected(version, "c11-in2-sub", clean=False, props=props)
    pub = broker.connected(version, "c11-in2", clean=False, props=props)
    assert pub.connack.session_present
    pub.send_raw(m.ack_packet(version, m.PUBREL, 77))
    assert pub.await_packet(m.PUBCOMP).mid == 77
    pub.publish_acked("c11/in2", m.SENTINEL, qos=2)
    got = sub.collect_until("c11/in2")
    assert [p.payload for p in got] == [b"exactly once"]


def test_two_restarts(broker, version):
    pub = broker.connected(version, "c11-twice-pub")
    pub.publish_acked("c11/twice", b"v1", qos=1, retain=True)
    broker.restart()
    pub = broker.connected(version, "c11-twice-pub")
    pub.publish_acked("c11/twice", b"v2", qos=1, retain=True)
    broker.restart()
    sub = broker.connected(version, "c11-twice-sub")
    sub.subscribe("c11/twice", 1)
    sub.ack(sub.expect_publish("c11/twice", b"v2", qos=1))
